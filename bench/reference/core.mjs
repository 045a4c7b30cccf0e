// Shared request logic of the two reference servers (Node `http` and `Bun.serve`).
//
// Both servers import this module so that the per-webhook work is the same code in both
// runtimes, and the same work the Swift product does on `POST /webhook` (v1 scheme):
// Host check, timestamp window, HMAC-SHA256 over "<ts>.<body>" with the whole secret string
// as key, constant-time compare, JSON.parse of the body, delivery-id dedupe, one
// `notifications/claude/channel` line on stdout, `200 {"received":true,"event_id":…}`.
//
// What the references leave out (the product does it, the benchmark does not ask them to):
// the on-disk event log, sources.json persistence, the other signature schemes, the
// connection cap and slowloris timers.

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

const ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const WINDOW_S = 300;
const CONTENT_MAX = 16 * 1024;
// The product remembers delivery ids for 24 h; the reference bounds the map by count too so
// its memory stays flat over a long run (oldest entries go first, Map keeps insertion order).
const DEDUPE_TTL_MS = 24 * 3600 * 1000;
const DEDUPE_MAX = Number(process.env.REF_DEDUPE_MAX || 100000);

export function createCore(port, writeLine) {
  const sources = new Map(); // source_id -> {name, secret}
  const pending = new Map(); // CODE -> {name, created}
  const seen = new Map(); // source_id + "\n" + delivery_id -> time
  const okHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
  let initialized = false;
  const queued = [];

  const json = (status, obj) => ({ status, body: JSON.stringify(obj) });
  const error = (status, code, message) => json(status, { error: code, message });
  const unauthorized = () => error(401, "unauthorized", "invalid source, signature or timestamp");

  function emit(line) {
    if (initialized) writeLine(line);
    else if (queued.length < 1000) queued.push(line);
  }

  function pairingCode() {
    const bytes = randomBytes(6);
    let code = "";
    for (const b of bytes) code += ALPHABET[b & 31];
    return code;
  }

  function parseJSONBody(headers, body) {
    const ct = (headers("content-type") || "").split(";")[0].trim().toLowerCase();
    if (ct !== "application/json") return { err: error(415, "unsupported_media_type", "use application/json") };
    try {
      const v = JSON.parse(body.toString("utf8"));
      if (v === null || typeof v !== "object" || Array.isArray(v)) return { err: error(400, "invalid_json", "expected an object") };
      return { v };
    } catch {
      return { err: error(400, "invalid_json", "body is not JSON") };
    }
  }

  function pair(headers, body) {
    const { v, err } = parseJSONBody(headers, body);
    if (err) return err;
    if (typeof v.name !== "string" || v.name === "") return error(400, "missing_field", "name");
    if (pending.size >= 16) return error(429, "too_many_pending", "too many pending pairings");
    const code = pairingCode();
    pending.set(code, { name: v.name, created: Date.now() });
    return json(200, { pairing_code: code, poll_token: randomBytes(16).toString("hex"), expires_in: 300, interval: 2 });
  }

  function complete(headers, body) {
    const { v, err } = parseJSONBody(headers, body);
    if (err) return err;
    const code = typeof v.code === "string" ? v.code.toUpperCase() : "";
    const p = pending.get(code);
    if (!p || Date.now() - p.created > 300_000) return error(404, "unknown_code", "unknown or expired code");
    pending.delete(code);
    const id = "src_" + randomBytes(16).toString("hex");
    const secret = "whsec_" + randomBytes(32).toString("hex");
    sources.set(id, { name: p.name, secret });
    return json(200, { source_id: id, hmac_secret: secret });
  }

  function remember(key, now) {
    if (seen.has(key)) return false;
    seen.set(key, now);
    if (seen.size > DEDUPE_MAX) {
      for (const [k, t] of seen) {
        if (seen.size <= DEDUPE_MAX && now - t < DEDUPE_TTL_MS) break;
        seen.delete(k);
      }
    }
    return true;
  }

  function webhook(headers, body) {
    const sourceId = headers("x-source-id");
    const src = sourceId ? sources.get(sourceId) : undefined;
    const ts = headers("x-timestamp");
    const sig = headers("x-signature");
    if (!src || !ts || !sig || !/^[0-9]{1,12}$/.test(ts)) return unauthorized();
    const now = Date.now();
    if (Math.abs(now / 1000 - Number(ts)) > WINDOW_S) return unauthorized();
    if (!sig.startsWith("v1=") || sig.length !== 67) return unauthorized();
    const given = Buffer.from(sig.slice(3), "hex");
    if (given.length !== 32) return unauthorized();
    const want = createHmac("sha256", src.secret).update(ts + ".").update(body).digest();
    if (!timingSafeEqual(given, want)) return unauthorized();

    const text = body.toString("utf8");
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      return error(400, "invalid_json", "body is not JSON");
    }
    const deliveryId = headers("x-webhook-id") || headers("x-delivery-id") || headers("x-github-delivery") || headers("webhook-id");
    if (deliveryId && !remember(sourceId + "\n" + deliveryId, now)) return json(200, { received: true, duplicate: true });

    const eventId = "evt_" + randomBytes(16).toString("hex");
    const meta = { source_id: sourceId, source_name: src.name, event_id: eventId };
    const eventType = headers("x-event-type") || (parsed && typeof parsed === "object" && (typeof parsed.event === "string" ? parsed.event : typeof parsed.type === "string" ? parsed.type : undefined));
    if (eventType) meta.event_type = eventType;
    if (deliveryId) meta.delivery_id = deliveryId;
    meta.received_at = new Date(now).toISOString();
    meta.content_type = headers("content-type") || "";
    let content = text;
    if (body.length > CONTENT_MAX) {
      content = body.subarray(0, CONTENT_MAX).toString("utf8").replace(/\uFFFD+$/, "");
      meta.truncated = "true";
    }
    emit(JSON.stringify({ jsonrpc: "2.0", method: "notifications/claude/channel", params: { content, meta } }) + "\n");
    return json(200, { received: true, event_id: eventId });
  }

  // One request: method, path, header getter (lower-case name -> string|undefined), body Buffer.
  function handle(method, path, headers, body) {
    const host = headers("host");
    if (!host || !okHosts.has(host)) return error(400, "bad_host", "Host must be a loopback name");
    if (method === "GET" && path === "/health") {
      return json(200, { status: "ok", sources: sources.size, pending: pending.size, mcp: initialized ? "connected" : "waiting" });
    }
    if (method !== "POST") return error(path === "/health" ? 405 : 404, "not_found", "no such route");
    if (headers("origin")) return error(403, "forbidden", "cross-origin requests are refused");
    switch (path) {
      case "/webhook": return webhook(headers, body);
      case "/pair": return pair(headers, body);
      case "/pair/complete": return complete(headers, body);
      default: return error(404, "not_found", "no such route");
    }
  }

  // Minimal MCP on stdin: answer `initialize`, start emitting after `notifications/initialized`.
  function stdinLine(line) {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      writeLine(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "parse error" } }) + "\n");
      return;
    }
    if (msg.method === "initialize") {
      const version = (msg.params && msg.params.protocolVersion) || "2025-06-18";
      writeLine(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result: { protocolVersion: version, capabilities: { tools: {}, experimental: { "claude/channel": {} } }, serverInfo: { name: "webhook-reference", version: "0" } } }) + "\n");
    } else if (msg.method === "notifications/initialized") {
      initialized = true;
      for (const l of queued.splice(0)) writeLine(l);
    } else if (msg.id !== undefined && msg.method !== undefined) {
      writeLine(JSON.stringify({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "method not found" } }) + "\n");
    }
  }

  return { handle, stdinLine };
}

// Splits stdin into lines, calls onLine for each, onEnd at EOF.
export function readStdinLines(onLine, onEnd) {
  let buf = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) onLine(line);
    }
  });
  process.stdin.on("end", onEnd);
  process.stdin.resume();
}
