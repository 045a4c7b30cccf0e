// Reference server on Node's `http` module: same routes and per-webhook work as the product
// (see core.mjs). Env: WEBHOOK_HOST (default 127.0.0.1), WEBHOOK_PORT (default 0 = any free
// port). Logs `listening on HOST:PORT` to stderr; exits 0 on stdin EOF.
import http from "node:http";
import { createCore, readStdinLines } from "./core.mjs";

const host = process.env.WEBHOOK_HOST || "127.0.0.1";
const port = Number(process.env.WEBHOOK_PORT || 0);
const BODY_MAX = 1024 * 1024;

// Pipes are written synchronously by Node on Linux, so each line is on stdout when write returns.
const writeLine = (line) => process.stdout.write(line);
let core;

const server = http.createServer((req, res) => {
  const send = ({ status, body }) => {
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
    res.end(body);
  };
  const declared = Number(req.headers["content-length"] || 0);
  if (declared > BODY_MAX) {
    res.shouldKeepAlive = false;
    send({ status: 413, body: '{"error":"payload_too_large","message":"body over 1 MiB"}' });
    req.resume();
    return;
  }
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    chunks.push(c);
  });
  req.on("end", () => {
    if (size > BODY_MAX) return send({ status: 413, body: '{"error":"payload_too_large","message":"body over 1 MiB"}' });
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
    const path = req.url.split("?")[0];
    const h = req.headers;
    send(core.handle(req.method, path, (name) => h[name], body));
  });
});
server.keepAliveTimeout = 30_000;
server.headersTimeout = 10_000;

server.listen(port, host, () => {
  const bound = server.address().port;
  core = createCore(bound, writeLine);
  process.stderr.write(`listening on ${host}:${bound}\n`);
  readStdinLines(
    (line) => core.stdinLine(line),
    () => {
      server.close();
      process.exit(0);
    },
  );
});
