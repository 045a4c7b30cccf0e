// Reference server on `Bun.serve`: same routes and per-webhook work as the product (see
// core.mjs, shared with the Node reference). Env: WEBHOOK_HOST (default 127.0.0.1),
// WEBHOOK_PORT (default 0 = any free port). Logs `listening on HOST:PORT` to stderr; exits 0
// on stdin EOF.
import { createCore, readStdinLines } from "./core.mjs";

const host = process.env.WEBHOOK_HOST || "127.0.0.1";
const port = Number(process.env.WEBHOOK_PORT || 0);
const BODY_MAX = 1024 * 1024;

const writeLine = (line: string) => process.stdout.write(line);
let core: ReturnType<typeof createCore>;

const server = Bun.serve({
  hostname: host,
  port,
  maxRequestBodySize: BODY_MAX,
  idleTimeout: 30,
  async fetch(req) {
    const body = Buffer.from(await req.arrayBuffer());
    const url = req.url;
    const start = url.indexOf("/", url.indexOf("//") + 2);
    const q = url.indexOf("?", start);
    const path = q < 0 ? url.slice(start) : url.slice(start, q);
    const r = core.handle(req.method, path, (name: string) => req.headers.get(name) ?? undefined, body);
    // Bun closes after answering a `Connection: close` request but does not say so in the
    // response unless told; without the header, clients that look only at the response
    // (wrk) would write their next request into the closing connection.
    const close = (req.headers.get("connection") || "").toLowerCase().includes("close");
    const headers = close ? { "Content-Type": "application/json", Connection: "close" } : { "Content-Type": "application/json" };
    return new Response(r.body, { status: r.status, headers });
  },
});

core = createCore(server.port, writeLine);
process.stderr.write(`listening on ${host}:${server.port}\n`);
readStdinLines(
  (line) => core.stdinLine(line),
  () => {
    server.stop(true);
    process.exit(0);
  },
);
