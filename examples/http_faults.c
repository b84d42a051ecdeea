/* SPDX-License-Identifier: MIT */
/*
 * http_faults.c: test an incremental HTTP/1.1 request parser against every
 * read failure, every chunk size and reproducible random chunking, with
 * mempipe's fault injection (mempipe_set_faults).
 *
 * A client end sends one fixed request and half-closes; the server end reads
 * it with mempipe_read() and feeds whatever each read returns to the parser.
 * Both ends run on this one thread, stepped in turn, so every run is
 * deterministic and bounded: the server reads only once a byte or EOF is
 * waiting, so mempipe_read() never has to wait.
 *
 *   fail_read_at   for N = 1, 2, ...: the server's Nth read (and every later
 *                  one) fails with -ECONNRESET, then with -EIO. Each run must
 *                  give the exact request or that very error, at read N.
 *                  N grows until a run parses before the fault fires.
 *   chunk caps     for k = 1..64: every read and write moves at most k bytes.
 *   chunk seeds    caps drawn from a seed, plus spurious pending writes.
 *   bad input      malformed and truncated requests get a clean error.
 *
 * Prints one line per group and exits 0 only if every run held.
 * Build: cc -std=c11 http_faults.c -lmempipe
 */
#include <mempipe.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* The parser under test                                                   */
/* ---------------------------------------------------------------------- */

#define HEAD_MAX    2048 /* request line and headers, CRLFCRLF included */
#define BODY_MAX    1024
#define HEADERS_MAX 16

/* The parser's errors, besides the transport's own (a read's error). */
#define HTTP_EMALFORMED (-EBADMSG)  /* not a valid HTTP/1.1 request */
#define HTTP_ETRUNCATED (-EPROTO)   /* end of file before the request ended */
#define HTTP_ETOOBIG    (-EMSGSIZE) /* head or body over our limits */
#define HTTP_MORE       1           /* http_feed(): not complete yet */

struct http_header {
    const char *name, *value; /* NUL-terminated, inside the parser's buf */
};

struct http_request {
    const char *method, *target, *version;
    struct http_header headers[HEADERS_MAX];
    size_t nheaders;
    const unsigned char *body;
    size_t body_len;
};

struct http_parser {
    char buf[HEAD_MAX + BODY_MAX];
    size_t len;      /* bytes fed so far (up to the request's end) */
    size_t scan;     /* where the search for CRLFCRLF goes on */
    size_t head_len; /* 0 until the head is complete */
    size_t body_len; /* Content-Length, once the head is parsed */
    struct http_request req;
};

static int is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* Does a equal b, ignoring ASCII case? */
static int name_is(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

/* Cuts the NUL-terminated line at *p (CRLF-ended) off; NULL if none. */
static char *next_line(char **p)
{
    char *line = *p, *cr = strstr(line, "\r\n");
    if (cr == NULL)
        return NULL;
    *cr = '\0';
    *p = cr + 2;
    return line;
}

/* Parses the complete head, NUL-terminated, in place (CRLFs become NULs). */
static int parse_head(struct http_parser *p)
{
    struct http_request *r = &p->req;
    char *cur = p->buf;
    if (memchr(p->buf, '\0', p->head_len) != NULL)
        return HTTP_EMALFORMED;
    /* Lines end with CRLF: a lone CR or LF is malformed (RFC 9112 2.2). */
    for (size_t i = 0; i < p->head_len; i++) {
        char c = p->buf[i];
        if (c == '\r' && (i + 1 == p->head_len || p->buf[i + 1] != '\n'))
            return HTTP_EMALFORMED;
        if (c == '\n' && (i == 0 || p->buf[i - 1] != '\r'))
            return HTTP_EMALFORMED;
    }
    p->buf[p->head_len - 2] = '\0'; /* ends the last header line's CRLF */

    /* request-line = method SP request-target SP HTTP-version */
    char *line = next_line(&cur);
    char *sp1 = line != NULL ? strchr(line, ' ') : NULL;
    char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
    if (sp2 == NULL || sp1 == line || sp2 == sp1 + 1 || strchr(sp2 + 1, ' '))
        return HTTP_EMALFORMED;
    *sp1 = *sp2 = '\0';
    r->method = line;
    r->target = sp1 + 1;
    r->version = sp2 + 1;
    for (const char *m = r->method; *m != '\0'; m++)
        if (!is_tchar(*m))
            return HTTP_EMALFORMED;
    if (strcmp(r->version, "HTTP/1.1") != 0 &&
        strcmp(r->version, "HTTP/1.0") != 0)
        return HTTP_EMALFORMED;

    /* field-line = field-name ":" OWS field-value OWS */
    int have_length = 0;
    while ((line = next_line(&cur)) != NULL) {
        char *colon = strchr(line, ':');
        if (colon == NULL || colon == line)
            return HTTP_EMALFORMED;
        for (char *c = line; c < colon; c++)
            if (!is_tchar(*c)) /* also no space before the colon */
                return HTTP_EMALFORMED;
        if (r->nheaders == HEADERS_MAX)
            return HTTP_ETOOBIG;
        *colon = '\0';
        char *v = colon + 1, *end = v + strlen(v);
        while (*v == ' ' || *v == '\t')
            v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        r->headers[r->nheaders].name = line;
        r->headers[r->nheaders++].value = v;

        if (name_is(line, "Transfer-Encoding"))
            return HTTP_EMALFORMED; /* chunked bodies are not parsed here */
        if (name_is(line, "Content-Length")) {
            size_t n = 0;
            if (*v == '\0' || have_length)
                return HTTP_EMALFORMED;
            for (; *v != '\0'; v++) {
                if (*v < '0' || *v > '9')
                    return HTTP_EMALFORMED;
                n = n * 10 + (size_t)(*v - '0');
                if (n > BODY_MAX)
                    return HTTP_ETOOBIG;
            }
            p->body_len = n;
            have_length = 1;
        }
    }
    return 0;
}

static void http_init(struct http_parser *p)
{
    memset(p, 0, sizeof *p);
}

/*
 * Feeds the next n bytes of the stream (any split: one byte, half a CRLF, the
 * head and part of the body). Returns 0 once the request is complete (then
 * p->req holds it; bytes past its end are not taken), HTTP_MORE for more,
 * or an error; after an error or completion, do not feed again.
 */
static int http_feed(struct http_parser *p, const void *data, size_t n)
{
    const char *d = data;
    if (p->head_len == 0) {
        size_t take = n < HEAD_MAX - p->len ? n : HEAD_MAX - p->len;
        memcpy(p->buf + p->len, d, take);
        p->len += take;
        d += take;
        n -= take;
        /* Look for CRLFCRLF only in what is new (and the 3 bytes before). */
        size_t i = p->scan;
        while (i + 4 <= p->len && memcmp(p->buf + i, "\r\n\r\n", 4) != 0)
            i++;
        if (i + 4 > p->len) {
            p->scan = i;
            return p->len == HEAD_MAX ? HTTP_ETOOBIG : HTTP_MORE;
        }
        p->head_len = i + 4;
        int rc = parse_head(p); /* writes NULs into the head only */
        if (rc != 0)
            return rc;
        if (p->len > p->head_len + p->body_len)
            p->len = p->head_len + p->body_len; /* the next request's bytes */
    }
    /* The body: what the head's bytes did not bring already. */
    size_t need = p->head_len + p->body_len - p->len;
    size_t take = n < need ? n : need;
    memcpy(p->buf + p->len, d, take);
    p->len += take;
    if (take < need)
        return HTTP_MORE;
    p->req.body = (const unsigned char *)p->buf + p->head_len;
    p->req.body_len = p->body_len;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* One exchange over a duplex, with faults on either end                   */
/* ---------------------------------------------------------------------- */

#define PIPE_CAP                                                               \
    128 /* smaller than the request: the client meets a full pipe */
#define MAX_STEPS 100000

struct outcome {
    int rc;         /* 0: parsed; else the error the server got */
    uint64_t reads; /* mempipe_read() calls the server made */
};

/*
 * The client writes len bytes of req with poll writes, then shuts down; the
 * server (the same thread, in turn) reads with mempipe_read() and feeds the
 * parser. cf and sf are the client's and server's faults (NULL: none).
 */
static struct outcome exchange(const mempipe_faults *cf,
                               const mempipe_faults *sf, const char *req,
                               size_t len, struct http_parser *p)
{
    struct outcome o = {HTTP_MORE, 0};
    mempipe *client, *server;
    char buf[512];
    if ((o.rc = mempipe_duplex(PIPE_CAP, &client, &server)) < 0)
        return o;
    if ((cf != NULL && (o.rc = mempipe_set_faults(client, cf)) < 0) ||
        (sf != NULL && (o.rc = mempipe_set_faults(server, sf)) < 0))
        goto done;

    http_init(p);
    size_t sent = 0;
    int shut = 0;
    o.rc = HTTP_MORE;
    for (long step = 0; o.rc == HTTP_MORE; step++) {
        if (step == MAX_STEPS) {
            o.rc = -ETIMEDOUT; /* no progress: a bug in this loop */
            break;
        }
        if (sent < len) {
            ssize_t n =
                mempipe_poll_write(client, req + sent, len - sent, NULL);
            if (n > 0)
                sent += (size_t)n;
            else if (n != -EAGAIN) { /* -EAGAIN: full, or a spurious pending */
                o.rc = (int)n;
                break;
            }
        }
        if (sent == len && !shut) {
            mempipe_shutdown(client); /* "no more requests" */
            shut = 1;
        }
        /* Read only with a byte or EOF waiting: mempipe_read never parks. */
        if (mempipe_readable(server) == 0 && !shut)
            continue;
        ssize_t n = mempipe_read(server, buf, sizeof buf);
        o.reads++;
        if (n < 0)
            o.rc = (int)n; /* the transport's error, as it came */
        else if (n == 0)
            o.rc = HTTP_ETRUNCATED;
        else
            o.rc = http_feed(p, buf, (size_t)n);
    }
done:
    mempipe_close(server);
    mempipe_close(client);
    return o;
}

/* ---------------------------------------------------------------------- */
/* The checks                                                              */
/* ---------------------------------------------------------------------- */

#define BODY "{\"name\":\"widget\",\"qty\":3}"
static const char REQUEST[] = "POST /api/items?id=42 HTTP/1.1\r\n"
                              "Host: shop.example\r\n"
                              "User-Agent: http_faults/1.0\r\n"
                              "Content-Type:application/json  \r\n"
                              "Accept: */*\r\n"
                              "Content-Length: 25\r\n"
                              "\r\n" BODY;

static const struct http_header EXPECTED_HEADERS[] = {
    {"Host", "shop.example"},
    {"User-Agent", "http_faults/1.0"},
    {"Content-Type", "application/json"},
    {"Accept", "*/*"},
    {"Content-Length", "25"},
};
#define NEXPECTED (sizeof EXPECTED_HEADERS / sizeof EXPECTED_HEADERS[0])

static int failures;

static const char *err_name(int rc)
{
    switch (rc) {
    case HTTP_EMALFORMED:
        return "malformed request";
    case HTTP_ETRUNCATED:
        return "end of file mid-request";
    case HTTP_ETOOBIG:
        return "request too large";
    case HTTP_MORE:
        return "incomplete";
    default:
        return mempipe_strerror(rc);
    }
}

static void fail(const char *group, const char *what, long arg, int rc)
{
    printf("FAIL %s (%ld): %s; got %d (%s)\n", group, arg, what, rc,
           err_name(rc));
    failures++;
}

/* Is p->req exactly REQUEST? */
static int request_ok(const struct http_parser *p)
{
    const struct http_request *r = &p->req;
    if (strcmp(r->method, "POST") != 0 ||
        strcmp(r->target, "/api/items?id=42") != 0 ||
        strcmp(r->version, "HTTP/1.1") != 0 || r->nheaders != NEXPECTED)
        return 0;
    for (size_t i = 0; i < NEXPECTED; i++)
        if (strcmp(r->headers[i].name, EXPECTED_HEADERS[i].name) != 0 ||
            strcmp(r->headers[i].value, EXPECTED_HEADERS[i].value) != 0)
            return 0;
    return r->body_len == strlen(BODY) &&
           memcmp(r->body, BODY, r->body_len) == 0;
}

static struct http_parser parser; /* 3 KiB: not on the stack */

/* (a) The server's Nth read fails with err, for every N the parse reaches. */
static void fail_at_every_read(int err, const char *name)
{
    uint64_t n, errors = 0, parsed = 0;
    for (n = 1;; n++) {
        mempipe_faults cf = {0}, sf = {0};
        cf.max_write = 10; /* the request arrives in 10-byte pieces */
        sf.fail_read_at = n;
        sf.fail_err = err;
        struct outcome o =
            exchange(&cf, &sf, REQUEST, sizeof REQUEST - 1, &parser);
        if (o.rc == 0) {
            /* Parsed: only if the fault was never reached. */
            if (o.reads >= n || !request_ok(&parser))
                fail(name, "parsed, but wrongly or past the fault", (long)n, 0);
            else
                parsed++;
            break;
        }
        if (o.rc != err || o.reads != n)
            fail(name, "not the injected error at the Nth read", (long)n, o.rc);
        else
            errors++;
        if (n > sizeof REQUEST) { /* every read returns a byte at least */
            fail(name, "never completed", (long)n, o.rc);
            break;
        }
    }
    printf("fail_read_at = N with %s: %llu runs, %llu failed cleanly with it "
           "at read N, %llu parsed (the parse needs %llu reads)\n",
           name, (unsigned long long)n, (unsigned long long)errors,
           (unsigned long long)parsed, (unsigned long long)(n - 1));
}

/* (b) Every read and write capped at k bytes, for k = 1..64. */
static void every_chunk_size(void)
{
    int ok = 0;
    for (size_t k = 1; k <= 64; k++) {
        mempipe_faults cf = {0}, sf = {0};
        cf.max_write = k;
        sf.max_read = k;
        struct outcome o =
            exchange(&cf, &sf, REQUEST, sizeof REQUEST - 1, &parser);
        size_t need = (sizeof REQUEST - 1 + k - 1) / k;
        if (o.rc != 0 || !request_ok(&parser))
            fail("chunk caps", "not the exact request", (long)k, o.rc);
        else if (o.reads != need)
            fail("chunk caps", "not one read per k bytes", (long)k, 0);
        else
            ok++;
    }
    printf("chunk caps k = 1..64 (max_read = max_write = k): 64 runs, %d "
           "parsed the exact request\n",
           ok);
}

/* (c) Caps drawn from seeds, spurious pending writes, twice each. */
static void seeded_chunks(void)
{
    int ok = 0, runs = 0;
    for (unsigned seed = 1; seed <= 8; seed++) {
        uint64_t reads[2];
        for (int again = 0; again < 2; again++, runs++) {
            mempipe_faults cf = {0}, sf = {0};
            cf.max_write = 48;
            cf.chunk_seed = seed;
            cf.pending_every = 3; /* every 3rd write: -EAGAIN, no bytes */
            sf.max_read = 48;
            sf.chunk_seed = seed * 7919u;
            struct outcome o =
                exchange(&cf, &sf, REQUEST, sizeof REQUEST - 1, &parser);
            reads[again] = o.reads;
            if (o.rc != 0 || !request_ok(&parser))
                fail("chunk seeds", "not the exact request", (long)seed, o.rc);
            else if (again == 1 && reads[0] != reads[1])
                fail("chunk seeds", "the same seed split differently",
                     (long)seed, 0);
            else
                ok++;
        }
    }
    printf("chunk seeds 1..8, each run twice (max 48, pending_every 3): %d "
           "runs, %d parsed the exact request, split the same both times\n",
           runs, ok);
}

/* (d) Bad requests: a clean error, however they are split. */
static void bad_input(void)
{
    static const struct {
        const char *req;
        int err;
    } cases[] = {
        {"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc", HTTP_ETRUNCATED},
        {"GET /x HTTP/1.1\r\nHost: a", HTTP_ETRUNCATED},
        {"", HTTP_ETRUNCATED},
        {"GET /x HTTP/1.1\nHost: a\r\n\r\n", HTTP_EMALFORMED},
        {"GET /x HTTP/1.1\r\nHost : a\r\n\r\n", HTTP_EMALFORMED},
        {"GET /x HTTP/1.1\r\nNoColon\r\n\r\n", HTTP_EMALFORMED},
        {"GET  /x HTTP/1.1\r\n\r\n", HTTP_EMALFORMED},
        {"GET /x HTTP/2\r\n\r\n", HTTP_EMALFORMED},
        {"POST /x HTTP/1.1\r\nContent-Length: 1x\r\n\r\nab", HTTP_EMALFORMED},
        {"POST /x HTTP/1.1\r\nContent-Length: 99999\r\n\r\n", HTTP_ETOOBIG},
        {"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
         HTTP_EMALFORMED},
    };
    int ok = 0, runs = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t k = 0; k <= 3; k++, runs++) { /* uncapped, then 1..3 */
            mempipe_faults cf = {0}, sf = {0};
            cf.max_write = sf.max_read = k;
            struct outcome o =
                exchange(&cf, &sf, cases[i].req, strlen(cases[i].req), &parser);
            if (o.rc != cases[i].err) {
                printf("FAIL bad input %zu (cap %zu): want %s, got %s\n", i, k,
                       err_name(cases[i].err), err_name(o.rc));
                failures++;
            } else
                ok++;
        }
    }
    printf("bad input (11 requests, uncapped and caps 1..3): %d runs, %d got "
           "the expected error\n",
           runs, ok);
}

int main(void)
{
    fail_at_every_read(-ECONNRESET, "-ECONNRESET");
    fail_at_every_read(-EIO, "-EIO");
    every_chunk_size();
    seeded_chunks();
    bad_input();
    if (failures != 0) {
        printf("http_faults: %d checks FAILED\n", failures);
        return 1;
    }
    printf("http_faults: all held\n");
    return 0;
}
