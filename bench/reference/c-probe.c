// Ceiling probe: the product's webhook hot path in plain C, one thread, epoll, and nothing
// more. It is not a server anyone should run; it tells the benchmark how fast the work the
// product must do per webhook can go on this machine, so that the product's figures can be
// read as a fraction of that ceiling (bench/README.md, "The C ceiling probe").
//
//   cc -O2 -o c-probe c-probe.c -lcrypto
//
// Per loop pass (one epoll_wait; with WEBHOOK_BUSY_POLL_US=N, after a pass that found work,
// non-blocking ones for up to N microseconds first):
//   - accept every pending connection (accept4, non-blocking, TCP_NODELAY);
//   - read each readable connection once, parse every complete request head in its buffer
//     (request line; Host, Content-Length, Content-Type, Connection, X-Source-Id,
//     X-Timestamp, X-Signature, X-Webhook-Id), and once its body is in, handle it:
//     POST /webhook: Host check, source lookup, timestamp within 300 s, HMAC-SHA256 (libcrypto
//     EVP_MAC, key = the whole whsec_ string) over "<ts>.<body>", CRYPTO_memcmp with the hex
//     of `X-Signature: v1=`, delivery-id dedupe (64-bit FNV-1a digest in an open-addressing
//     set of at most 100,000, oldest out), evt_ + 32 hex event id (xoshiro256** seeded from
//     RAND_bytes), the notification line and the event-log line appended to two buffers;
//   - then ONE write of the pass's log lines to WEBHOOK_STATE_DIR/events.log (fdatasync when
//     WEBHOOK_FSYNC=1), ONE write of the pass's notification lines to stdout, and the answers
//     (one write per connection; keep-alive, or close after a `Connection: close` request).
//
// Left out on purpose (the product does them): UTF-8 validation of the body, JSON parsing of
// the body (the event type is found by a plain scan for a "type" or "event" string member),
// defusing `<channel` in the content, other signature schemes, sources.json and
// server.json, the persisted dedupe journal, log rotation, the notification backlog bound and
// 503, connection cap and slow-client timers, the other routes and the MCP tools.
// Protocol spoken for bench/run: WEBHOOK_HOST / WEBHOOK_PORT (0 = any), `listening on
// HOST:PORT` on stderr, MCP `initialize` answered on stdin, events queued until
// `notifications/initialized`, exit 0 on stdin EOF, POST /pair, POST /pair/complete,
// GET /health.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK 65536
#define HEAD_MAX 16384
#define BODY_MAX (1024 * 1024)
#define CONTENT_MAX (16 * 1024)
#define WINDOW_S 300
#define DEDUPE_MAX 100000
#define DEDUPE_SLOTS (1u << 18) // a power of two, well above DEDUPE_MAX
#define MAX_SOURCES 16

// ------------------------------------------------------------------ growable byte buffer

typedef struct { char *p; size_t len, cap; } buf_t;

static void buf_reserve(buf_t *b, size_t more) {
    if (b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) { perror("realloc"); exit(70); }
    b->cap = cap;
}
static inline void buf_add(buf_t *b, const void *s, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}
#define buf_lit(b, s) buf_add((b), (s), sizeof(s) - 1)
static void buf_str(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }

// A JSON string literal of n bytes (taken as UTF-8 as they are): runs that need no escaping
// are copied whole.
static unsigned char needs_esc[256];
static void buf_json(buf_t *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    buf_reserve(b, n + 2);
    b->p[b->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!needs_esc[c]) continue;
        buf_add(b, s + run, i - run);
        run = i + 1;
        char e[6] = {'\\', 0, 0, 0, 0, 0};
        size_t el = 2;
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        default: e[1] = 'u'; e[2] = '0'; e[3] = '0'; e[4] = hex[c >> 4]; e[5] = hex[c & 15]; el = 6;
        }
        buf_add(b, e, el);
    }
    buf_add(b, s + run, n - run);
    buf_lit(b, "\"");
}

static void write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            perror("write");
            exit(74);
        }
        p += w;
        n -= (size_t)w;
    }
}

// ------------------------------------------------------------------ state

typedef struct { char id[37]; char secret[71]; char name[201]; size_t name_len; EVP_MAC_CTX *mac; } source_t;
static source_t sources[MAX_SOURCES];
static int n_sources;
static char pending_name[201] = "source";
static size_t pending_name_len = 6;

static uint64_t dd_slots[DEDUPE_SLOTS]; // 0 = empty
static uint64_t dd_ring[DEDUPE_MAX];    // insertion order, for oldest-out
static size_t dd_count, dd_head;

static uint64_t rng[4];
static int initialized;
static buf_t notif, queued, logbuf;
static int log_fd = -1, fsync_on;
static char host_ok[3][64];
static size_t host_ok_len[3];
static int port;

typedef struct conn {
    int fd;
    buf_t in;       // unparsed input
    buf_t out;      // answers not yet written
    int close_after; // a `Connection: close` request was answered
    int in_pass;    // on this pass's list of connections with answers
    int dead;       // closed by the peer while on the list
    struct conn *next_pass;
} conn_t;
static conn_t *pass_list;

static const char *hexd = "0123456789abcdef";

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t rng_next(void) { // xoshiro256**
    uint64_t r = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
    rng[2] ^= rng[0]; rng[3] ^= rng[1]; rng[1] ^= rng[2]; rng[0] ^= rng[3];
    rng[2] ^= t; rng[3] = rotl(rng[3], 45);
    return r;
}

static uint64_t fnv1a(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 0x100000001b3ULL; }
    return h;
}

static void dd_delete(uint64_t key) { // linear probing, backward-shift deletion
    size_t mask = DEDUPE_SLOTS - 1, i = key & mask;
    while (dd_slots[i] != key) { if (!dd_slots[i]) return; i = (i + 1) & mask; }
    for (;;) {
        dd_slots[i] = 0;
        size_t j = i;
        for (;;) {
            j = (j + 1) & mask;
            if (!dd_slots[j]) return;
            size_t home = dd_slots[j] & mask;
            // move j back to i unless its home lies cyclically in (i, j]
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) break;
        }
        dd_slots[i] = dd_slots[j];
        i = j;
    }
}

// 1 when new (and remembered), 0 when seen before.
static int dd_insert(uint64_t key) {
    if (!key) key = 1;
    size_t mask = DEDUPE_SLOTS - 1, i = key & mask;
    while (dd_slots[i]) {
        if (dd_slots[i] == key) return 0;
        i = (i + 1) & mask;
    }
    dd_slots[i] = key;
    if (dd_count == DEDUPE_MAX) {
        uint64_t old = dd_ring[dd_head];
        dd_ring[dd_head] = key;
        dd_head = (dd_head + 1) % DEDUPE_MAX;
        dd_delete(old);
    } else {
        dd_ring[(dd_head + dd_count++) % DEDUPE_MAX] = key;
    }
    return 1;
}

// received_at: ISO 8601 UTC with milliseconds; gmtime_r once per second.
static void iso_now(char out[25], time_t *sec_out) {
    static time_t cached = -1;
    static char prefix[21];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(prefix, sizeof prefix, "%Y-%m-%dT%H:%M:%S.", &tm);
        cached = ts.tv_sec;
    }
    int ms = (int)(ts.tv_nsec / 1000000);
    memcpy(out, prefix, 20);
    out[20] = (char)('0' + ms / 100); out[21] = (char)('0' + ms / 10 % 10); out[22] = (char)('0' + ms % 10);
    out[23] = 'Z'; out[24] = 0;
    *sec_out = ts.tv_sec;
}

static void rand_hex(char *out, size_t bytes) {
    unsigned char r[64];
    RAND_bytes(r, (int)bytes);
    for (size_t i = 0; i < bytes; i++) { out[2 * i] = hexd[r[i] >> 4]; out[2 * i + 1] = hexd[r[i] & 15]; }
    out[2 * bytes] = 0;
}

// ------------------------------------------------------------------ HTTP

typedef struct { const char *p; size_t n; } str_t;
typedef struct {
    str_t method, path, host, ctype, source, ts, sig, did, conn;
    long clen;
} req_t;

static int streq_ci(str_t s, const char *lit) { size_t n = strlen(lit); return s.n == n && !strncasecmp(s.p, lit, n); }

static void answer(conn_t *c, int status, const char *body, int close) {
    const char *reason = status == 200 ? "OK" : status == 401 ? "Unauthorized" : status == 404 ? "Not Found"
                       : status == 413 ? "Payload Too Large" : status == 431 ? "Request Header Fields Too Large" : "Bad Request";
    char head[256];
    size_t bl = strlen(body);
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
                      status, reason, bl, close ? "close" : "keep-alive");
    buf_add(&c->out, head, (size_t)hl);
    buf_add(&c->out, body, bl);
    if (close) c->close_after = 1;
    if (!c->in_pass) { c->in_pass = 1; c->next_pass = pass_list; pass_list = c; }
}

// The value of the first string member `"key":"…"` in s (plain scan, no unescaping).
static str_t json_member(const char *s, size_t n, const char *key) {
    str_t r = {0, 0};
    size_t kl = strlen(key);
    const char *end = s + n, *p = s;
    while ((p = memmem(p, (size_t)(end - p), key, kl))) {
        const char *q = p + kl;
        p = q;
        while (q < end && (*q == ' ' || *q == ':')) q++;
        if (q >= end || *q != '"' || q == p) continue;
        q++;
        const char *e = memchr(q, '"', (size_t)(end - q));
        if (!e) break;
        r.p = q; r.n = (size_t)(e - q);
        return r;
    }
    return r;
}

static void webhook(conn_t *c, req_t *r, const char *body, size_t blen, int close) {
    static const char unauthorized[] = "{\"error\":\"unauthorized\",\"message\":\"invalid source, signature or timestamp\"}";
    source_t *src = NULL;
    for (int i = 0; i < n_sources; i++)
        if (r->source.n == strlen(sources[i].id) && !memcmp(r->source.p, sources[i].id, r->source.n)) src = &sources[i];
    if (!src || !r->ts.n || r->ts.n > 12 || r->sig.n != 67 || memcmp(r->sig.p, "v1=", 3)) { answer(c, 401, unauthorized, close); return; }
    long long ts = 0;
    for (size_t i = 0; i < r->ts.n; i++) {
        if (r->ts.p[i] < '0' || r->ts.p[i] > '9') { answer(c, 401, unauthorized, close); return; }
        ts = ts * 10 + (r->ts.p[i] - '0');
    }
    char received_at[25];
    time_t now;
    iso_now(received_at, &now);
    if (llabs((long long)now - ts) > WINDOW_S) { answer(c, 401, unauthorized, close); return; }
    unsigned char given[32], want[32];
    for (int i = 0; i < 32; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char h = r->sig.p[3 + 2 * i + k];
            int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (d < 0) { answer(c, 401, unauthorized, close); return; }
            v = v * 16 + d;
        }
        given[i] = (unsigned char)v;
    }
    size_t wl = 0;
    if (!EVP_MAC_init(src->mac, NULL, 0, NULL) // NULL key: the source's key again
        || !EVP_MAC_update(src->mac, (const unsigned char *)r->ts.p, r->ts.n)
        || !EVP_MAC_update(src->mac, (const unsigned char *)".", 1)
        || !EVP_MAC_update(src->mac, (const unsigned char *)body, blen)
        || !EVP_MAC_final(src->mac, want, &wl, sizeof want) || wl != 32 || CRYPTO_memcmp(given, want, 32))
        { answer(c, 401, unauthorized, close); return; }

    if (r->did.n) {
        uint64_t h = fnv1a(0xcbf29ce484222325ULL, r->source.p, r->source.n);
        h = fnv1a(h, "\n", 1);
        h = fnv1a(h, r->did.p, r->did.n);
        if (!dd_insert(h)) { answer(c, 200, "{\"received\":true,\"duplicate\":true}", close); return; }
    }

    char event_id[37] = "evt_";
    uint64_t a = rng_next(), b = rng_next();
    for (int i = 0; i < 16; i++) { event_id[4 + i] = hexd[(a >> (60 - 4 * i)) & 15]; event_id[20 + i] = hexd[(b >> (60 - 4 * i)) & 15]; }
    event_id[36] = 0;
    str_t type = json_member(body, blen < 4096 ? blen : 4096, "\"type\"");
    if (!type.p) type = json_member(body, blen < 4096 ? blen : 4096, "\"event\"");
    str_t ctype = r->ctype.n ? r->ctype : (str_t){"application/octet-stream", 24};
    size_t clen = blen;
    if (clen > CONTENT_MAX) { // cut at a UTF-8 boundary
        clen = CONTENT_MAX;
        while (clen > 0 && ((unsigned char)body[clen] & 0xC0) == 0x80) clen--;
    }

    buf_t *out = initialized ? &notif : &queued;
    buf_lit(out, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/claude/channel\",\"params\":{\"content\":");
    buf_json(out, body, clen);
    buf_lit(out, ",\"meta\":{\"source_id\":\"");
    buf_str(out, src->id);
    buf_lit(out, "\",\"source_name\":");
    buf_json(out, src->name, src->name_len);
    buf_lit(out, ",\"event_id\":\"");
    buf_add(out, event_id, 36);
    buf_lit(out, "\"");
    if (type.p) { buf_lit(out, ",\"event_type\":"); buf_json(out, type.p, type.n); }
    if (r->did.n) { buf_lit(out, ",\"delivery_id\":"); buf_json(out, r->did.p, r->did.n); }
    buf_lit(out, ",\"received_at\":\"");
    buf_add(out, received_at, 24);
    buf_lit(out, "\",\"content_type\":");
    buf_json(out, ctype.p, ctype.n);
    if (clen < blen) buf_lit(out, ",\"truncated\":\"true\"");
    buf_lit(out, "}}}\n");

    buf_lit(&logbuf, "{\"id\":\"");
    buf_add(&logbuf, event_id, 36);
    buf_lit(&logbuf, "\",\"source_id\":\"");
    buf_str(&logbuf, src->id);
    buf_lit(&logbuf, "\",\"source_name\":");
    buf_json(&logbuf, src->name, src->name_len);
    buf_lit(&logbuf, ",\"delivery_id\":");
    if (r->did.n) buf_json(&logbuf, r->did.p, r->did.n); else buf_lit(&logbuf, "null");
    buf_lit(&logbuf, ",\"type\":");
    if (type.p) buf_json(&logbuf, type.p, type.n); else buf_lit(&logbuf, "null");
    buf_lit(&logbuf, ",\"received_at\":\"");
    buf_add(&logbuf, received_at, 24);
    buf_lit(&logbuf, "\",\"content_type\":");
    buf_json(&logbuf, ctype.p, ctype.n);
    char num[32];
    int nl = snprintf(num, sizeof num, ",\"size\":%zu,\"body\":", blen);
    buf_add(&logbuf, num, (size_t)nl);
    buf_json(&logbuf, body, blen);
    buf_lit(&logbuf, "}\n");

    char resp[64];
    snprintf(resp, sizeof resp, "{\"received\":true,\"event_id\":\"%s\"}", event_id);
    answer(c, 200, resp, close);
}

static void route(conn_t *c, req_t *r, const char *body, size_t blen, int close) {
    int host = 0;
    for (int i = 0; i < 3; i++) host |= r->host.n == host_ok_len[i] && !memcmp(r->host.p, host_ok[i], r->host.n);
    if (!host) { answer(c, 400, "{\"error\":\"bad_host\"}", close); return; }
    int post = r->method.n == 4 && !memcmp(r->method.p, "POST", 4);
#define PATH(lit) (r->path.n == sizeof(lit) - 1 && !memcmp(r->path.p, lit, sizeof(lit) - 1))
    if (post && PATH("/webhook")) { webhook(c, r, body, blen, close); return; }
    if (r->method.n == 3 && !memcmp(r->method.p, "GET", 3) && PATH("/health")) { answer(c, 200, "{\"status\":\"ok\"}", close); return; }
    if (post && PATH("/pair")) {
        str_t name = json_member(body, blen, "\"name\"");
        if (name.p && name.n <= 200) { memcpy(pending_name, name.p, name.n); pending_name_len = name.n; pending_name[name.n] = 0; }
        { answer(c, 200, "{\"pairing_code\":\"ABCDEF\",\"poll_token\":\"x\",\"expires_in\":300,\"interval\":2}", close); return; }
    }
    if (post && PATH("/pair/complete")) {
        str_t code = json_member(body, blen, "\"code\"");
        if (!code.p || code.n != 6 || strncasecmp(code.p, "ABCDEF", 6) || n_sources == MAX_SOURCES)
            { answer(c, 404, "{\"error\":\"unknown_code\"}", close); return; }
        source_t *s = &sources[n_sources++];
        memcpy(s->id, "src_", 4); rand_hex(s->id + 4, 16);
        memcpy(s->secret, "whsec_", 6); rand_hex(s->secret + 6, 32);
        memcpy(s->name, pending_name, pending_name_len + 1); s->name_len = pending_name_len;
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0), OSSL_PARAM_construct_end()};
        s->mac = EVP_MAC_CTX_new(mac);
        EVP_MAC_free(mac);
        if (!s->mac || !EVP_MAC_init(s->mac, (const unsigned char *)s->secret, strlen(s->secret), params)) {
            fprintf(stderr, "EVP_MAC_init failed\n");
            exit(70);
        }
        char resp[160];
        snprintf(resp, sizeof resp, "{\"source_id\":\"%s\",\"hmac_secret\":\"%s\"}", s->id, s->secret);
        { answer(c, 200, resp, close); return; }
    }
    answer(c, 404, "{\"error\":\"not_found\"}", close);
}

// Handles every complete request in c->in; leaves a partial one for the next read.
static void parse_requests(conn_t *c) {
    size_t off = 0;
    while (!c->close_after) {
        char *p = c->in.p + off;
        size_t avail = c->in.len - off;
        char *eoh = avail >= 4 ? memmem(p, avail, "\r\n\r\n", 4) : NULL;
        if (!eoh) {
            if (avail > HEAD_MAX) answer(c, 431, "{\"error\":\"head_too_large\"}", 1);
            break;
        }
        req_t r;
        memset(&r, 0, sizeof r);
        char *end = eoh + 2, *line = p;
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *sp1 = memchr(line, ' ', (size_t)(nl - line));
        char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(nl - sp1 - 1)) : NULL;
        if (!sp1 || !sp2) { answer(c, 400, "{\"error\":\"bad_request\"}", 1); break; }
        r.method = (str_t){line, (size_t)(sp1 - line)};
        r.path = (str_t){sp1 + 1, (size_t)(sp2 - sp1 - 1)};
        char *q = memchr(r.path.p, '?', r.path.n);
        if (q) r.path.n = (size_t)(q - r.path.p);
        for (line = nl + 1; line < end; line = nl + 1) {
            nl = memchr(line, '\n', (size_t)(end - line));
            char *colon = memchr(line, ':', (size_t)(nl - line));
            if (!colon) continue;
            str_t name = {line, (size_t)(colon - line)};
            char *v = colon + 1, *ve = nl;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            str_t val = {v, (size_t)(ve - v)};
            switch (name.n) {
            case 4: if (streq_ci(name, "host")) r.host = val; break;
            case 10: if (streq_ci(name, "connection")) r.conn = val; break;
            case 11:
                if (streq_ci(name, "x-source-id")) r.source = val;
                else if (streq_ci(name, "x-timestamp")) r.ts = val;
                else if (streq_ci(name, "x-signature")) r.sig = val;
                break;
            case 12:
                if (streq_ci(name, "content-type")) r.ctype = val;
                else if (streq_ci(name, "x-webhook-id")) r.did = val;
                break;
            case 14: if (streq_ci(name, "content-length")) r.clen = strtol(val.p, NULL, 10); break;
            }
        }
        size_t head_len = (size_t)(eoh + 4 - p);
        if (r.clen < 0 || r.clen > BODY_MAX) { answer(c, 413, "{\"error\":\"payload_too_large\"}", 1); break; }
        if (avail < head_len + (size_t)r.clen) break;
        int close = r.conn.n == 5 && !strncasecmp(r.conn.p, "close", 5);
        route(c, &r, p + head_len, (size_t)r.clen, close);
        off += head_len + (size_t)r.clen;
    }
    if (off) {
        memmove(c->in.p, c->in.p + off, c->in.len - off);
        c->in.len -= off;
    }
}

// ------------------------------------------------------------------ loop

static int ep;
static char listen_tag, stdin_tag;

static void conn_free(conn_t *c) {
    close(c->fd);
    free(c->in.p);
    free(c->out.p);
    free(c);
}

// Writes what the connection has to say; returns 0 when the connection is gone.
static int conn_flush(conn_t *c) {
    while (c->out.len) {
        ssize_t w = write(c->fd, c->out.p, c->out.len);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                return 1;
            }
            conn_free(c);
            return 0;
        }
        memmove(c->out.p, c->out.p + w, c->out.len - (size_t)w);
        c->out.len -= (size_t)w;
    }
    if (c->close_after) { conn_free(c); return 0; }
    return 1;
}

static void stdin_lines(void) {
    static buf_t in;
    buf_reserve(&in, READ_CHUNK);
    ssize_t n = read(0, in.p + in.len, READ_CHUNK);
    if (n == 0) exit(0);
    if (n < 0) { if (errno == EINTR || errno == EAGAIN) return; exit(0); }
    in.len += (size_t)n;
    size_t off = 0;
    char *nl;
    while ((nl = memchr(in.p + off, '\n', in.len - off))) {
        char *l = in.p + off;
        size_t ln = (size_t)(nl - l);
        if (memmem(l, ln, "\"method\":\"initialize\"", 21)) {
            const char *id = memmem(l, ln, "\"id\":", 5);
            size_t idn = 0;
            if (id) { id += 5; while (id + idn < nl && id[idn] != ',' && id[idn] != '}') idn++; }
            buf_t a = {0};
            buf_lit(&a, "{\"jsonrpc\":\"2.0\",\"id\":");
            if (idn) buf_add(&a, id, idn); else buf_lit(&a, "null");
            buf_lit(&a, ",\"result\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{\"tools\":{},"
                        "\"experimental\":{\"claude/channel\":{}}},\"serverInfo\":{\"name\":\"webhook-c-probe\",\"version\":\"0\"}}}\n");
            write_all(1, a.p, a.len);
            free(a.p);
        } else if (memmem(l, ln, "\"notifications/initialized\"", 27)) {
            initialized = 1;
            buf_add(&notif, queued.p, queued.len);
            queued.len = 0;
        }
        off += ln + 1;
    }
    memmove(in.p, in.p + off, in.len - off);
    in.len -= off;
}

int main(void) {
    for (int c = 0; c < 0x20; c++) needs_esc[c] = 1;
    needs_esc['"'] = needs_esc['\\'] = 1;
    if (RAND_bytes((unsigned char *)rng, sizeof rng) != 1) { fprintf(stderr, "RAND_bytes failed\n"); return 70; }
    const char *host = getenv("WEBHOOK_HOST") ? getenv("WEBHOOK_HOST") : "127.0.0.1";
    const char *port_s = getenv("WEBHOOK_PORT") ? getenv("WEBHOOK_PORT") : "0";
    const char *state = getenv("WEBHOOK_STATE_DIR") ? getenv("WEBHOOK_STATE_DIR") : ".";
    fsync_on = getenv("WEBHOOK_FSYNC") && !strcmp(getenv("WEBHOOK_FSYNC"), "1");
    char path[4096];
    snprintf(path, sizeof path, "%s/events.log", state);
    log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) { perror(path); return 73; }

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port_s))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) { fprintf(stderr, "WEBHOOK_HOST must be an IPv4 address\n"); return 64; }
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) || listen(lfd, 1024)) { perror("bind/listen"); return 69; }
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    port = ntohs(sa.sin_port);
    const char *names[3] = {"127.0.0.1", "localhost", "[::1]"};
    for (int i = 0; i < 3; i++) host_ok_len[i] = (size_t)snprintf(host_ok[i], sizeof host_ok[i], "%s:%d", names[i], port);

    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.ptr = &stdin_tag;
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    fprintf(stderr, "listening on %s:%d\n", host, port);

    // Off unless asked: WEBHOOK_BUSY_POLL_US=N makes the probe poll without blocking for N
    // microseconds after a pass that found work, as the product does by default, so that
    // bench/ab can show what that alone is worth to either server.
    long busy_poll_ns = getenv("WEBHOOK_BUSY_POLL_US") ? atol(getenv("WEBHOOK_BUSY_POLL_US")) * 1000 : 0;
    int found_work = 0;
    struct epoll_event evs[256];
    for (;;) {
        int n = 0;
        if (busy_poll_ns > 0 && found_work) {
            struct timespec t0, t;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            do {
                n = epoll_wait(ep, evs, 256, 0);
                clock_gettime(CLOCK_MONOTONIC, &t);
            } while (n == 0 && (t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < busy_poll_ns);
        }
        if (n == 0) n = epoll_wait(ep, evs, 256, -1);
        found_work = n > 0;
        if (n < 0) { if (errno == EINTR) continue; perror("epoll_wait"); return 71; }
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &listen_tag) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn_t *c = calloc(1, sizeof *c);
                    c->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
            } else if (tag == &stdin_tag) {
                stdin_lines();
            } else {
                conn_t *c = tag;
                if (evs[i].events & EPOLLOUT) {
                    if (!conn_flush(c)) continue;
                    if (!c->out.len) {
                        struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
                    }
                }
                if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || c->close_after) continue;
                buf_reserve(&c->in, READ_CHUNK);
                ssize_t r = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
                if (r > 0) {
                    c->in.len += (size_t)r;
                    parse_requests(c);
                } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    if (c->in_pass) c->dead = 1; else conn_free(c);
                }
            }
        }
        // The pass's events: log first (one write), then notifications (one write), then answers.
        if (logbuf.len) {
            write_all(log_fd, logbuf.p, logbuf.len);
            if (fsync_on) fdatasync(log_fd);
            logbuf.len = 0;
        }
        if (notif.len) {
            write_all(1, notif.p, notif.len);
            notif.len = 0;
        }
        while (pass_list) {
            conn_t *c = pass_list;
            pass_list = c->next_pass;
            c->in_pass = 0;
            if (c->dead) { conn_free(c); continue; }
            conn_flush(c);
        }
        if (notif.cap > (1u << 22)) { free(notif.p); notif = (buf_t){0}; }
        if (logbuf.cap > (1u << 22)) { free(logbuf.p); logbuf = (buf_t){0}; }
    }
}
