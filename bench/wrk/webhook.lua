-- wrk script: distinct, validly signed `POST /webhook` requests (v1 scheme, 1 KiB JSON body).
--
--   wrk -t T -c C -d D -s webhook.lua http://127.0.0.1:PORT/ \
--       SECRET SOURCE_ID TIMESTAMP RUN_ID POOL_PER_THREAD CLOSE [DELAY_MS]
--
-- Every request has its own delivery id (X-Webhook-Id = RUN_ID-THREAD-SEQ) and its own body
-- (the body carries run, thread and seq, and a filler derived from them), signed as
-- v1=hex(HMAC-SHA256(SECRET, "TIMESTAMP.BODY")). The first POOL_PER_THREAD requests of each
-- thread are built and signed in init(), before wrk starts its clock, into one C buffer of
-- fixed-size records, so sending one costs a copy. If a thread runs past its pool it signs
-- further requests as it sends them (counted as `live`; the driver sizes pools so that this
-- does not happen). HMAC comes from the libcrypto wrk itself links, through LuaJIT's FFI.
-- CLOSE = 1 adds `Connection: close` (wrk then reconnects for every request). DELAY_MS > 0
-- makes each connection wait a random time averaging DELAY_MS after every answer (wrk's
-- delay()): about connections * 1000 / DELAY_MS requests/s instead of as fast as the server
-- answers.
--
-- done() prints one line `BENCH-WRK {json}` with wrk's counters, latency percentiles (us), the
-- latency histogram, and per thread `sent` (requests handed to wrk to write), `live` and the
-- time init() took to build the pool.

local ffi = require("ffi")
ffi.cdef [[
typedef struct evp_md_st EVP_MD;
typedef struct hmac_ctx_st HMAC_CTX;
const EVP_MD *EVP_sha256(void);
HMAC_CTX *HMAC_CTX_new(void);
int HMAC_Init_ex(HMAC_CTX *ctx, const void *key, int len, const EVP_MD *md, void *impl);
int HMAC_Update(HMAC_CTX *ctx, const unsigned char *data, size_t len);
int HMAC_Final(HMAC_CTX *ctx, unsigned char *md, unsigned int *len);
void *malloc(size_t size);
]]
local C = ffi.C

local BODY_LEN = 1024
local threads = {}
local thread_count = 0

-- Runs in the main Lua state, once per thread, before that thread's init().
function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

-- Per-thread state (globals so that done() can read them through thread:get()).
sent = 0
live = 0
pool_n = 0
init_s = 0
verify_call = false

local L            -- record length
local pool         -- uint8_t* of pool_n records
local scratch      -- one record, for requests past the pool
local template     -- record with placeholders
local off_did, off_seq, off_fill, fill_len, off_sig, off_body
local ts_dot
local hctx = C.HMAC_CTX_new()
local md = ffi.new("unsigned char[32]")
local mdlen = ffi.new("unsigned int[1]")
local HEX = ffi.new("const char[17]", "0123456789abcdef")

local function put_dec10(p, n)
  for i = 9, 0, -1 do
    p[i] = 48 + n % 10
    n = math.floor(n / 10)
  end
end

-- Writes request number `seq` (0-based) of this thread into record `r`.
local function build(r, seq)
  ffi.copy(r, template, L)
  put_dec10(r + off_did, seq)
  put_dec10(r + off_seq, seq)
  -- Filler: an 8-hex-digit token derived from (tid, seq), repeated; makes bodies differ
  -- everywhere, which also keeps LuaJIT's sampled string hash from colliding.
  local tok = bit.bxor(bit.tobit(seq * 2654435761), bit.tobit(tid * 40503 + 12345))
  local f = r + off_fill
  for i = 0, 7 do
    f[i] = HEX[bit.band(bit.rshift(tok, 28 - 4 * i), 15)]
  end
  local have = 8
  while have < fill_len do
    local n = math.min(have, fill_len - have)
    ffi.copy(f + have, f, n)
    have = have + n
  end
  C.HMAC_Init_ex(hctx, nil, 0, nil, nil)
  C.HMAC_Update(hctx, ts_dot, #ts_dot)
  C.HMAC_Update(hctx, r + off_body, BODY_LEN)
  C.HMAC_Final(hctx, md, mdlen)
  local s = r + off_sig
  for j = 0, 31 do
    local b = md[j]
    s[2 * j] = HEX[bit.rshift(b, 4)]
    s[2 * j + 1] = HEX[bit.band(b, 15)]
  end
end

function init(args)
  local t0 = os.clock()
  verify_call = (tid == 1)
  local secret, source_id, ts, run_id = args[1], args[2], args[3], args[4]
  pool_n = tonumber(args[5])
  local close = args[6] == "1"
  local delay_ms = tonumber(args[7] or "0")
  if delay_ms > 0 then
    -- wrk looks for a global delay() after init() to decide whether to pace requests. The
    -- waits are exponential with mean DELAY_MS, so that the connections do not fall into
    -- step and arrivals are spread like independent senders' (Poisson), not in bursts.
    math.randomseed(tid * 7919 + os.time())
    function delay()
      return math.floor(-math.log(1 - math.random()) * delay_ms + 0.5)
    end
  end
  ts_dot = ts .. "."
  C.HMAC_Init_ex(hctx, secret, #secret, C.EVP_sha256(), nil)

  local host = wrk.host .. ":" .. wrk.port
  local did_prefix = string.format("%s-%d-", run_id, tid)
  local body_head = string.format('{"type":"bench.event","run":"%s","thread":%d,"seq":"', run_id, tid)
  local body_mid = '","data":"'
  local body_tail = '"}'
  fill_len = BODY_LEN - #body_head - 10 - #body_mid - #body_tail
  assert(fill_len >= 8, "run id too long")
  local head = "POST /webhook HTTP/1.1\r\n"
    .. "Host: " .. host .. "\r\n"
    .. "Content-Type: application/json\r\n"
    .. "Content-Length: " .. BODY_LEN .. "\r\n"
    .. "X-Source-Id: " .. source_id .. "\r\n"
    .. "X-Timestamp: " .. ts .. "\r\n"
    .. (close and "Connection: close\r\n" or "")
    .. "X-Webhook-Id: " .. did_prefix
  off_did = #head
  head = head .. string.rep("0", 10) .. "\r\nX-Signature: v1="
  off_sig = #head
  head = head .. string.rep("0", 64) .. "\r\n\r\n"
  off_body = #head
  off_seq = off_body + #body_head
  off_fill = off_seq + 10 + #body_mid
  local t = head .. body_head .. string.rep("0", 10) .. body_mid .. string.rep("x", fill_len) .. body_tail
  L = #t
  assert(L - off_body == BODY_LEN)
  template = ffi.new("uint8_t[?]", L)
  ffi.copy(template, t, L)
  scratch = ffi.new("uint8_t[?]", L)
  if pool_n > 0 then
    pool = ffi.cast("uint8_t*", C.malloc(pool_n * L))
    assert(pool ~= nil, "out of memory for the request pool")
    for i = 0, pool_n - 1 do
      build(pool + i * L, i)
    end
  end
  init_s = os.clock() - t0
end

function request()
  if verify_call then
    -- wrk calls request() once on the first thread before starting, only to check that the
    -- string parses as HTTP; that request is never sent, so it is not counted.
    verify_call = false
    build(scratch, 0)
    return ffi.string(scratch, L)
  end
  local seq = sent
  sent = seq + 1
  if seq < pool_n then
    return ffi.string(pool + seq * L, L)
  end
  live = live + 1
  build(scratch, seq)
  return ffi.string(scratch, L)
end

function done(summary, latency, requests)
  local per = {}
  for _, t in ipairs(threads) do
    table.insert(per, string.format('{"tid":%d,"sent":%d,"live":%d,"pool":%d,"init_s":%.3f}',
      t:get("tid"), t:get("sent"), t:get("live"), t:get("pool_n"), t:get("init_s")))
  end
  -- Latency histogram as [microseconds, count] pairs, so that rounds can be merged exactly
  -- (wrk's counts, including the samples its coordinated-omission correction adds). In this
  -- wrk, #latency is the number of distinct values and latency(i) the i-th value and its
  -- count; each call scans from the minimum, so a very wide spread (seconds-long outliers)
  -- skips the histogram and the driver falls back to per-round percentiles.
  local hist = {}
  if summary.requests > 0 then
    local distinct = #latency
    if distinct * (latency.max - latency.min + 1) <= 4e8 then
      for i = 1, distinct do
        local us, c = latency(i)
        table.insert(hist, string.format("[%d,%d]", us, c))
      end
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-WRK {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d},"threads":[%s],' ..
    '"histogram":[%s]}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, table.concat(per, ","), table.concat(hist, ",")))
end
