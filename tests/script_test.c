/* SPDX-License-Identifier: MIT */
/*
 * The scripted peer (include/mempipe/script.h), SPEC.md R41-R47: a script
 * plays one end of a duplex against a real client written here, blocking
 * on another thread or stepped with the client in one thread.
 */
#include "kinds.h"
#include "testutil.h"

#include <mempipe/script.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIT(s) s, sizeof(s) - 1

/* Asserts a script's result and, on failure, prints its message. */
#define assert_script(expected, s, actual)                                     \
    do {                                                                       \
        int a_ = (actual);                                                     \
        if (a_ != (expected))                                                  \
            print_error("script error: %s\n", mempipe_script_error(s)          \
                                                  ? mempipe_script_error(s)    \
                                                  : "(none)");                 \
        assert_rc((expected), a_);                                             \
    } while (0)

static void assert_message(const mempipe_script *s, const char *want)
{
    const char *got = mempipe_script_error(s);
    if (got == NULL)
        fail_msg("no error message; expected\n  %s", want);
    if (strcmp(got, want) != 0)
        fail_msg("error message\n  got:      %s\n  expected: %s", got, want);
}

/* A script on the server end of a new duplex; *client is the other end. */
static mempipe_script *new_script(size_t cap, mempipe **client)
{
    mempipe *server;
    assert_rc(0, mempipe_duplex(cap, client, &server));
    mempipe_script *s = mempipe_script_new(server);
    assert_non_null(s);
    return s;
}

/* ---- a tiny HTTP/1.1 client ------------------------------------------- */

static const char req1[] = "GET /index.html HTTP/1.1\r\nHost: example\r\n\r\n";
static const char resp1[] = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"
                            "hello, world";
static const char req2[] = "GET /bye HTTP/1.1\r\nHost: example\r\n\r\n";
static const char resp2[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n"
                            "\r\nnope";

/* A response being received: headers up to the blank line, then
 * Content-Length bytes of body. */
struct http_rx {
    char buf[512];
    size_t len;
    size_t want; /* the whole response's length, once the headers are in */
};

/* Adds bytes; returns 1 once the response is complete. */
static int rx_feed(struct http_rx *rx, const void *p, size_t n)
{
    T_CHECK(rx->len + n < sizeof rx->buf, "response too long");
    memcpy(rx->buf + rx->len, p, n);
    rx->len += n;
    rx->buf[rx->len] = '\0';
    if (rx->want == 0) {
        const char *end = strstr(rx->buf, "\r\n\r\n");
        const char *cl = strstr(rx->buf, "Content-Length: ");
        if (end == NULL)
            return 0;
        T_CHECK(cl != NULL && cl < end, "no Content-Length in %s", rx->buf);
        rx->want = (size_t)(end + 4 - rx->buf) + strtoul(cl + 16, NULL, 10);
    }
    T_CHECK(rx->len <= rx->want, "%zu bytes past the response",
            rx->len - rx->want);
    return rx->len == rx->want;
}

static const char *rx_body(const struct http_rx *rx)
{
    return strstr(rx->buf, "\r\n\r\n") + 4;
}

/* Blocking client: two requests, then half-close and read to EOF. */
struct http_client {
    mempipe *end;
    size_t piece; /* write the requests in pieces of this size (0: whole) */
    struct http_rx rx[2];
    ssize_t eof; /* the read after the shutdown */
};

static void write_pieces(mempipe *e, const char *p, size_t n, size_t piece)
{
    size_t step = piece ? piece : n;
    for (size_t off = 0; off < n; off += step) {
        size_t k = n - off < step ? n - off : step;
        T_RC((ssize_t)k, mempipe_write(e, p + off, k));
        tu_progress++;
    }
}

static void read_response(mempipe *e, struct http_rx *rx)
{
    char buf[64];
    for (;;) {
        ssize_t n = mempipe_read(e, buf, sizeof buf);
        T_CHECK(n > 0, "read %zd (%s) in a response", n,
                mempipe_strerror((int)n));
        tu_progress++;
        if (rx_feed(rx, buf, (size_t)n))
            return;
    }
}

static void *http_client_main(void *arg)
{
    struct http_client *c = arg;
    char b;
    write_pieces(c->end, req1, strlen(req1), c->piece);
    read_response(c->end, &c->rx[0]);
    write_pieces(c->end, req2, strlen(req2), c->piece);
    read_response(c->end, &c->rx[1]);
    T_RC(0, mempipe_shutdown(c->end));
    c->eof = mempipe_read(c->end, &b, 1);
    return NULL;
}

static mempipe_script *http_script(size_t cap, mempipe **client)
{
    mempipe_script *s = new_script(cap, client);
    assert_rc(0, mempipe_script_expect(s, LIT(req1)));
    assert_rc(0, mempipe_script_send(s, LIT(resp1)));
    assert_rc(0, mempipe_script_expect(s, LIT(req2)));
    assert_rc(0, mempipe_script_send(s, LIT(resp2)));
    assert_rc(0, mempipe_script_expect_eof(s));
    assert_rc(0, mempipe_script_close(s));
    return s;
}

static void http_blocking(size_t cap, size_t piece)
{
    struct http_client c = {.piece = piece};
    pthread_t t;
    mempipe_script *s = http_script(cap, &c.end);
    tu_watchdog_start("an HTTP exchange with a blocking client");
    assert_int_equal(0, pthread_create(&t, NULL, http_client_main, &c));
    assert_script(0, s, mempipe_script_run(s));
    assert_int_equal(0, pthread_join(t, NULL));
    tu_watchdog_end();
    assert_null(mempipe_script_error(s));
    assert_string_equal("hello, world", rx_body(&c.rx[0]));
    assert_string_equal("nope", rx_body(&c.rx[1]));
    assert_rc(0, c.eof); /* the script's close, after expect_eof */
    mempipe_script_free(s);
    mempipe_close(c.end);
}

static void test_R41_http_exchange_blocking_client(void **state)
{
    (void)state;
    http_blocking(4096, 0);
    http_blocking(7, 0);
}

/* R41: pieces of every size, down to 1-byte writes. */
static void test_R41_requests_written_in_pieces_of_every_size(void **state)
{
    (void)state;
    static const size_t pieces[] = {1, 2, 3, 5, 16, 17, 40};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        http_blocking(4096, pieces[i]);
        http_blocking(3, pieces[i]);
    }
}

/* The same client as a state machine of non-blocking calls, stepped in one
 * thread together with the script. */
struct poll_client {
    mempipe *end;
    int state; /* 0 req1, 1 resp1, 2 req2, 3 resp2, 4 shutdown+EOF, 5 done */
    size_t pos;
    struct http_rx rx[2];
};

/* One step; returns 1 if it made progress. */
static int poll_client_step(struct poll_client *c)
{
    const char *req = c->state == 0 ? req1 : req2;
    char buf[64];
    ssize_t n;
    switch (c->state) {
    case 0:
    case 2:
        n = mempipe_poll_write(c->end, req + c->pos, strlen(req) - c->pos,
                               NULL);
        if (n == -EAGAIN)
            return 0;
        T_CHECK(n > 0, "write: %s", mempipe_strerror((int)n));
        c->pos += (size_t)n;
        if (c->pos == strlen(req)) {
            c->state++;
            c->pos = 0;
        }
        return 1;
    case 1:
    case 3:
        n = mempipe_poll_read(c->end, buf, sizeof buf, NULL);
        if (n == -EAGAIN)
            return 0;
        T_CHECK(n > 0, "read: %zd (%s)", n, mempipe_strerror((int)n));
        if (rx_feed(&c->rx[c->state / 2], buf, (size_t)n))
            c->state++;
        return 1;
    case 4:
        T_RC(0, mempipe_shutdown(c->end));
        n = mempipe_poll_read(c->end, buf, sizeof buf, NULL);
        if (n == -EAGAIN)
            return 0;
        T_RC(0, n);
        c->state++;
        return 1;
    default:
        return 0;
    }
}

static void http_polled(size_t cap)
{
    struct poll_client c = {0};
    struct tu_counter woken = {0};
    mempipe_waker w = tu_counter_waker(&woken);
    mempipe_script *s = http_script(cap, &c.end);
    int rc = -EAGAIN, rounds = 0;
    while (rc == -EAGAIN || c.state < 5) {
        poll_client_step(&c);
        if (rc == -EAGAIN)
            rc = mempipe_script_poll(s, &w);
        if (rc != 0 && rc != -EAGAIN)
            break;
        assert_true(++rounds < 100000);
    }
    assert_script(0, s, rc);
    assert_true(tu_calls(&woken) > 0); /* it did wait, and was woken */
    assert_string_equal("hello, world", rx_body(&c.rx[0]));
    assert_string_equal("nope", rx_body(&c.rx[1]));
    assert_rc(0, mempipe_script_poll(s, &w)); /* done stays done */
    mempipe_script_free(s);
    mempipe_close(c.end);
}

static void test_R41_http_exchange_poll_client_one_thread(void **state)
{
    (void)state;
    http_polled(4096);
    http_polled(7);
    http_polled(1);
}

/* R41: one write may cover several expects. */
static void test_R41_one_write_covers_several_expects(void **state)
{
    (void)state;
    mempipe *c;
    mempipe_script *s = new_script(64, &c);
    assert_rc(0, mempipe_script_expect(s, LIT("ab")));
    assert_rc(0, mempipe_script_expect(s, LIT("")));
    assert_rc(0, mempipe_script_expect(s, LIT("cde")));
    assert_rc(0, mempipe_script_expect(s, LIT("f")));
    assert_rc(6, mempipe_write(c, "abcdef", 6));
    assert_rc(0, mempipe_shutdown(c));
    assert_script(0, s, mempipe_script_run(s));
    mempipe_script_free(s);
    mempipe_close(c);
}

/* ---- R42: mismatches ---------------------------------------------------- */

/* Plays a script of expects against bytes written up front, then EOF. */
static void mismatch_case(const char *const *expects, size_t nexp,
                          const char *wrote, size_t wlen, const char *msg)
{
    mempipe *c;
    mempipe_script *s = new_script(4096, &c);
    for (size_t i = 0; i < nexp; i++)
        assert_rc(0, mempipe_script_expect(s, expects[i], strlen(expects[i])));
    assert_rc((ssize_t)wlen, mempipe_write(c, wrote, wlen));
    assert_rc(0, mempipe_shutdown(c));
    assert_rc(-EPROTO, mempipe_script_run(s));
    assert_message(s, msg);
    /* Sticky: the same again, by poll and run. */
    assert_rc(-EPROTO, mempipe_script_poll(s, NULL));
    assert_rc(-EPROTO, mempipe_script_run(s));
    assert_message(s, msg);
    mempipe_script_free(s);
    mempipe_close(c);
}

static void test_R42_mismatch_message_at_various_offsets(void **state)
{
    (void)state;
    const char *http[] = {"GET / HTTP/1.1\r\n", "Host: a\r\n\r\n"};
    const char *hello[] = {"HELLO"};
    const char *one[] = {"x"};
    const char *longer[] = {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    /* The first byte of all. */
    mismatch_case(one, 1, LIT("y"),
                  "step 1 of 1 (expect 1 bytes): mismatch at byte 0 of the "
                  "step, byte 0 of the stream: expected 78 \"x\", got 79 "
                  "\"y\"");
    /* Inside the second step: offsets in the step and the stream. */
    mismatch_case(http, 2, LIT("GET / HTTP/1.1\r\nHost: b\r\n\r\n"),
                  "step 2 of 2 (expect 11 bytes): mismatch at byte 6 of the "
                  "step, byte 22 of the stream: expected 61 0d 0a 0d 0a "
                  "\"a....\", got 62 0d 0a 0d 0a \"b....\"");
    /* The got window goes on with the bytes still in the pipe. */
    mismatch_case(hello, 1, LIT("HELP! more stuff here"),
                  "step 1 of 1 (expect 5 bytes): mismatch at byte 3 of the "
                  "step, byte 3 of the stream: expected 4c 4f \"LO\", got 50 "
                  "21 20 6d 6f 72 65 20 73 74 75 66 66 20 68 65 \"P! more "
                  "stuff he\"");
    /* Windows are at most 16 bytes. */
    mismatch_case(longer, 1, LIT("aaaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
                  "step 1 of 1 (expect 40 bytes): mismatch at byte 10 of the "
                  "step, byte 10 of the stream: expected 61 61 61 61 61 61 61 "
                  "61 61 61 61 61 61 61 61 61 \"aaaaaaaaaaaaaaaa\", got 62 62 "
                  "62 62 62 62 62 62 62 62 62 62 62 62 62 62 "
                  "\"bbbbbbbbbbbbbbbb\"");
    /* The last byte of the last step. */
    mismatch_case(http, 2, LIT("GET / HTTP/1.1\r\nHost: a\r\n\r\r"),
                  "step 2 of 2 (expect 11 bytes): mismatch at byte 10 of the "
                  "step, byte 26 of the stream: expected 0a \".\", got 0d "
                  "\".\"");
}

/* A mismatch that arrives 1 byte at a time from another thread is caught
 * at the same place. */
static void *write_bytewise(void *arg)
{
    mempipe *c = arg;
    static const char data[] = "GET / HTTP/1.0\r\n";
    for (size_t i = 0; i < sizeof data - 1; i++) {
        if (mempipe_write(c, data + i, 1) != 1)
            break; /* the script stopped reading: it closed */
        tu_progress++;
    }
    return NULL;
}

static void test_R42_mismatch_caught_in_one_byte_writes(void **state)
{
    (void)state;
    mempipe *c;
    pthread_t t;
    const char *prefix = "step 1 of 1 (expect 16 bytes): mismatch at byte 13 "
                         "of the step, byte 13 of the stream: expected 31 0d "
                         "0a \"1..\", got 30";
    mempipe_script *s = new_script(1, &c);
    assert_rc(0, mempipe_script_expect(s, LIT("GET / HTTP/1.1\r\n")));
    tu_watchdog_start("a mismatch in 1-byte writes");
    assert_int_equal(0, pthread_create(&t, NULL, write_bytewise, c));
    assert_rc(-EPROTO, mempipe_script_run(s));
    /* The got window may hold one more byte, by the writer's timing. */
    const char *m = mempipe_script_error(s);
    if (m == NULL || strncmp(m, prefix, strlen(prefix)) != 0)
        fail_msg("error message\n  got:      %s\n  expected: %s...", m, prefix);
    mempipe_script_free(s); /* closes: the writer stops */
    assert_int_equal(0, pthread_join(t, NULL));
    tu_watchdog_end();
    mempipe_close(c);
}

/* ---- R43: the end of the script ---------------------------------------- */

static void test_R43_leftover_script_on_early_eof(void **state)
{
    (void)state;
    mempipe *c;
    mempipe_script *s = new_script(64, &c);
    assert_rc(0, mempipe_script_expect(s, LIT("abc")));
    assert_rc(0, mempipe_script_expect(s, LIT("defgh")));
    assert_rc(0, mempipe_script_send(s, LIT("ok")));
    assert_rc(5, mempipe_write(c, "abcde", 5));
    assert_rc(0, mempipe_shutdown(c));
    assert_rc(-EPROTO, mempipe_script_run(s));
    assert_message(s, "script has 2 steps left: next is step 2 of 3 (expect "
                      "5 bytes), 2 bytes of it done; but the code under test "
                      "closed its writing side (EOF) at byte 5 of the stream");
    mempipe_script_free(s);
    mempipe_close(c);
}

static void test_R43_leftover_script_on_closed_reader(void **state)
{
    (void)state;
    mempipe *c;
    mempipe_script *s = new_script(64, &c);
    assert_rc(0, mempipe_script_expect(s, LIT("hi")));
    assert_rc(0, mempipe_script_send(s, LIT("hello")));
    assert_rc(0, mempipe_script_expect(s, LIT("bye")));
    assert_rc(2, mempipe_write(c, "hi", 2));
    mempipe_close(c); /* gone before the script sends */
    assert_rc(-EPROTO, mempipe_script_run(s));
    assert_message(s, "script has 2 steps left: next is step 2 of 3 (send 5 "
                      "bytes), 0 bytes of it done; but the code under test "
                      "closed its reading side (-32: broken pipe: the pipe is "
                      "shut down or the other end is closed) at byte 2 of "
                      "the stream");
    mempipe_script_free(s);
}

static void test_R43_unexpected_bytes_after_the_script(void **state)
{
    (void)state;
    mempipe *c;
    mempipe_script *s = new_script(64, &c);
    assert_rc(0, mempipe_script_expect(s, LIT("ping")));
    assert_rc(0, mempipe_script_send(s, LIT("pong")));
    assert_rc(7, mempipe_write(c, "pingxyz", 7));
    assert_rc(0, mempipe_shutdown(c));
    assert_rc(-EPROTO, mempipe_script_run(s));
    assert_message(s, "after the script (all 2 steps done): got bytes before "
                      "EOF at byte 4 of the stream: 78 79 7a \"xyz\"");
    mempipe_script_free(s);
    mempipe_close(c);
}

/* After the last step the script waits for EOF: -EAGAIN until then. */
static void test_R43_waits_for_eof_after_the_last_step(void **state)
{
    (void)state;
    mempipe *c;
    struct tu_counter woken = {0};
    mempipe_waker w = tu_counter_waker(&woken);
    char buf[8];
    mempipe_script *s = new_script(64, &c);
    assert_rc(0, mempipe_script_send(s, LIT("hi")));
    assert_rc(-EAGAIN, mempipe_script_poll(s, &w));
    assert_rc(-EAGAIN, mempipe_script_poll(s, &w));
    assert_rc(2, mempipe_read(c, buf, sizeof buf));
    assert_int_equal(0, tu_calls(&woken)); /* reading wakes no reader */
    assert_null(mempipe_script_error(s));
    assert_rc(0, mempipe_shutdown(c));
    assert_int_equal(1, tu_calls(&woken));
    assert_script(0, s, mempipe_script_poll(s, &w));
    mempipe_script_free(s);
    mempipe_close(c);
}

/* An empty script just waits for EOF too. */
static void test_R43_empty_script_expects_eof(void **state)
{
    (void)state;
    mempipe *c;
    mempipe_script *s = new_script(64, &c);
    assert_rc(-EAGAIN, mempipe_script_poll(s, NULL));
    mempipe_close(c);
    assert_script(0, s, mempipe_script_run(s));
    mempipe_script_free(s);
}

/* A last close skips the wait: bytes it never read are not an error. */
static void test_R43_last_close_does_not_wait_for_eof(void **state)
{
    (void)state;
    mempipe *c;
    char buf[8];
    mempipe_script *s = new_script(64, &c);
    assert_rc(0, mempipe_script_expect(s, LIT("a")));
    assert_rc(0, mempipe_script_send(s, LIT("b")));
    assert_rc(0, mempipe_script_close(s));
    assert_rc(4, mempipe_write(c, "axyz", 4));
    assert_script(0, s, mempipe_script_run(s));
    assert_rc(1, mempipe_read(c, buf, sizeof buf));
    assert_int_equal('b', buf[0]);
    assert_rc(0, mempipe_read(c, buf, sizeof buf));
    assert_rc(-EPIPE, mempipe_poll_write(c, "q", 1, NULL));
    mempipe_script_free(s);
    mempipe_close(c);
}

/* ---- R44: sends bigger than the pipe ----------------------------------- */

struct bulk {
    mempipe *end;
    size_t out, in; /* bytes the client writes, then reads */
    long bad_at;
};

#define SEED_OUT 11 /* client -> script */
#define SEED_IN  22 /* script -> client */

/* Writes everything first (blocking), and only then reads: deadlocks
 * against a script that sends without reading. */
static void *bulk_client(void *arg)
{
    struct bulk *b = arg;
    unsigned char buf[777];
    size_t done = 0;
    for (size_t off = 0; off < b->out; off += sizeof buf) {
        size_t k = b->out - off < sizeof buf ? b->out - off : sizeof buf;
        tu_pattern(buf, k, off, SEED_OUT);
        T_RC((ssize_t)k, mempipe_write(b->end, buf, k));
        tu_progress++;
    }
    b->bad_at = -1;
    while (done < b->in) {
        ssize_t n = mempipe_read(b->end, buf, sizeof buf);
        T_CHECK(n > 0, "read %zd (%s) after %zu bytes", n,
                mempipe_strerror((int)n), done);
        long bad = tu_check_pattern(buf, (size_t)n, done, SEED_IN);
        if (bad >= 0 && b->bad_at < 0)
            b->bad_at = (long)done + bad;
        done += (size_t)n;
        tu_progress++;
    }
    T_RC(0, mempipe_shutdown(b->end));
    return NULL;
}

static mempipe_script *bulk_script(size_t cap, struct bulk *b)
{
    mempipe_script *s = new_script(cap, &b->end);
    unsigned char *out = malloc(b->in), *in = malloc(b->out);
    assert_non_null(out);
    assert_non_null(in);
    tu_pattern(out, b->in, 0, SEED_IN);
    tu_pattern(in, b->out, 0, SEED_OUT);
    /* The script sends first, then expects what the client wrote first. */
    assert_rc(0, mempipe_script_send(s, out, b->in));
    assert_rc(0, mempipe_script_expect(s, in, b->out));
    free(out); /* the script copied both */
    free(in);
    return s;
}

static void test_R44_send_bigger_than_capacity_while_client_writes(void **s0)
{
    (void)s0;
    static const size_t caps[] = {1, 7, 4096};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        size_t cap = caps[i];
        struct bulk b = {.out = 3 * cap + 5000, .in = 5 * cap + 3000};
        pthread_t t;
        mempipe_script *s = bulk_script(cap, &b);
        tu_watchdog_start("a send bigger than the pipe, client writing");
        assert_int_equal(0, pthread_create(&t, NULL, bulk_client, &b));
        assert_script(0, s, mempipe_script_run(s));
        assert_int_equal(0, pthread_join(t, NULL));
        tu_watchdog_end();
        assert_int_equal(-1, b.bad_at);
        mempipe_script_free(s);
        mempipe_close(b.end);
    }
}

/* The same with a poll-driven client in one thread: the script never
 * waits for the client to read while the client waits to write. */
static void test_R44_send_bigger_than_capacity_polled(void **state)
{
    (void)state;
    static const size_t caps[] = {1, 7, 4096};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        size_t cap = caps[i];
        struct bulk b = {.out = 2 * cap + 300, .in = 3 * cap + 200};
        mempipe_script *s = bulk_script(cap, &b);
        unsigned char buf[300];
        size_t wrote = 0, got = 0;
        int rc = -EAGAIN, rounds = 0;
        while (rc == -EAGAIN) {
            ssize_t n;
            rc = mempipe_script_poll(s, NULL);
            /* Like bulk_client: write everything before reading. */
            if (wrote < b.out) {
                size_t k =
                    b.out - wrote < sizeof buf ? b.out - wrote : sizeof buf;
                tu_pattern(buf, k, wrote, SEED_OUT);
                n = mempipe_poll_write(b.end, buf, k, NULL);
                if (n > 0)
                    wrote += (size_t)n;
                else
                    assert_rc(-EAGAIN, n);
            } else if (got < b.in) {
                n = mempipe_poll_read(b.end, buf, sizeof buf, NULL);
                if (n > 0) {
                    assert_int_equal(
                        -1, tu_check_pattern(buf, (size_t)n, got, SEED_IN));
                    got += (size_t)n;
                } else {
                    assert_rc(-EAGAIN, n);
                }
            } else {
                assert_rc(0, mempipe_shutdown(b.end));
            }
            assert_true(++rounds < 1000000);
        }
        assert_script(0, s, rc);
        assert_int_equal(b.in, got);
        mempipe_script_free(s);
        mempipe_close(b.end);
    }
}

/* ---- R45: shutdown, close, fail, expect_eof ---------------------------- */

static void test_R45_shutdown_client_reads_eof_then_writes(void **state)
{
    (void)state;
    mempipe *c;
    char buf[16];
    mempipe_script *s = new_script(64, &c);
    assert_rc(0, mempipe_script_send(s, LIT("last words")));
    assert_rc(0, mempipe_script_shutdown(s));
    assert_rc(0, mempipe_script_expect(s, LIT("bye")));
    assert_rc(-EAGAIN, mempipe_script_poll(s, NULL));
    assert_rc(10, mempipe_read(c, buf, sizeof buf));
    assert_memory_equal("last words", buf, 10);
    assert_rc(0, mempipe_read(c, buf, sizeof buf)); /* EOF */
    assert_rc(3, mempipe_write(c, "bye", 3));       /* still open this way */
    assert_rc(-EAGAIN, mempipe_script_poll(s, NULL));
    mempipe_close(c);
    assert_script(0, s, mempipe_script_run(s));
    mempipe_script_free(s);
}

static void test_R45_close_client_reads_eof_and_gets_epipe(void **state)
{
    (void)state;
    mempipe *c;
    char buf[16];
    mempipe_script *s = new_script(64, &c);
    assert_rc(0, mempipe_script_send(s, LIT("so long")));
    assert_rc(0, mempipe_script_close(s));
    assert_script(0, s, mempipe_script_run(s));
    assert_rc(7, mempipe_read(c, buf, sizeof buf));
    assert_rc(0, mempipe_read(c, buf, sizeof buf));
    assert_rc(-EPIPE, mempipe_write(c, "x", 1));
    mempipe_script_free(s); /* the end is already closed: not twice */
    mempipe_close(c);
}

/* A blocking client for fail steps: writes its request, reads until an
 * error, then reads once more. */
struct fail_client {
    mempipe *end;
    char got[32];
    size_t len;
    ssize_t first, again;
};

static void *fail_client_main(void *arg)
{
    struct fail_client *c = arg;
    ssize_t n;
    T_RC(3, mempipe_write(c->end, "req", 3));
    while ((n = mempipe_read(c->end, c->got + c->len, sizeof c->got - c->len)) >
           0) {
        c->len += (size_t)n;
        tu_progress++;
    }
    c->first = n;
    c->again = mempipe_read(c->end, c->got, sizeof c->got);
    return NULL;
}

static void test_R45_fail_client_reads_sent_bytes_then_the_error(void **st)
{
    (void)st;
    static const int errs[] = {-ECONNRESET, -EIO};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        struct fail_client c = {0};
        pthread_t t;
        mempipe_script *s = new_script(4, &c.end);
        assert_rc(0, mempipe_script_expect(s, LIT("req")));
        assert_rc(0, mempipe_script_send(s, LIT("partial reply")));
        assert_rc(0, mempipe_script_fail(s, errs[i]));
        tu_watchdog_start("a fail step");
        assert_int_equal(0, pthread_create(&t, NULL, fail_client_main, &c));
        assert_script(0, s, mempipe_script_run(s)); /* no EOF wait */
        assert_int_equal(0, pthread_join(t, NULL));
        tu_watchdog_end();
        assert_int_equal(13, c.len);
        assert_memory_equal("partial reply", c.got, 13);
        assert_rc(errs[i], c.first); /* not EOF */
        assert_rc(errs[i], c.again); /* on every read */
        /* Once the fail step has returned (not merely once the client read
         * the error: the close takes the two directions one after the
         * other), writes get the error too, not -EPIPE. */
        assert_rc(errs[i], mempipe_write(c.end, "x", 1));
        mempipe_script_free(s);
        mempipe_close(c.end);
    }
}

/* After a shutdown step the client already has its EOF: it keeps it. */
static void test_R45_fail_after_shutdown_keeps_eof(void **state)
{
    (void)state;
    mempipe *c;
    char buf[8];
    mempipe_script *s = new_script(64, &c);
    assert_rc(0, mempipe_script_send(s, LIT("hi")));
    assert_rc(0, mempipe_script_shutdown(s));
    assert_rc(0, mempipe_script_expect(s, LIT("ok")));
    assert_rc(0, mempipe_script_fail(s, -EIO));
    assert_rc(2, mempipe_write(c, "ok", 2));
    assert_script(0, s, mempipe_script_run(s));
    assert_rc(2, mempipe_read(c, buf, sizeof buf));
    assert_rc(0, mempipe_read(c, buf, sizeof buf));
    assert_rc(-EIO, mempipe_write(c, "x", 1));
    mempipe_script_free(s);
    mempipe_close(c);
}

static void test_R45_expect_eof_matches_a_shutdown(void **state)
{
    (void)state;
    mempipe *c;
    char buf[16];
    mempipe_script *s = new_script(64, &c);
    assert_rc(0, mempipe_script_expect(s, LIT("req")));
    assert_rc(0, mempipe_script_expect_eof(s));
    assert_rc(0, mempipe_script_send(s, LIT("resp")));
    assert_rc(3, mempipe_write(c, "req", 3));
    assert_rc(-EAGAIN, mempipe_script_poll(s, NULL)); /* not yet EOF */
    assert_rc(0, mempipe_readable(c));                /* nothing sent yet */
    assert_rc(0, mempipe_shutdown(c));
    assert_script(0, s, mempipe_script_run(s));
    assert_rc(4, mempipe_read(c, buf, sizeof buf));
    mempipe_script_free(s);
    mempipe_close(c);
}

static void test_R45_expect_eof_rejects_bytes_before_eof(void **state)
{
    (void)state;
    mempipe *c;
    mempipe_script *s = new_script(64, &c);
    assert_rc(0, mempipe_script_expect(s, LIT("req")));
    assert_rc(0, mempipe_script_expect_eof(s));
    assert_rc(0, mempipe_script_send(s, LIT("resp")));
    assert_rc(6, mempipe_write(c, "req!!!", 6));
    assert_rc(-EPROTO, mempipe_script_poll(s, NULL));
    assert_message(s, "step 2 of 3 (expect EOF): got bytes before EOF at byte "
                      "3 of the stream: 21 21 21 \"!!!\"");
    mempipe_script_free(s);
    mempipe_close(c);
}

/* ---- R46: poll and run ------------------------------------------------- */

/* While a send is blocked the waker is stored for both directions. */
static void test_R46_poll_stores_the_waker_in_both_directions(void **state)
{
    (void)state;
    mempipe *c;
    struct tu_counter woken = {0};
    mempipe_waker w = tu_counter_waker(&woken);
    char buf[16];
    mempipe_script *s = new_script(4, &c);
    assert_rc(0, mempipe_script_send(s, LIT("0123456789")));
    assert_rc(0, mempipe_script_expect(s, LIT("x")));
    assert_rc(-EAGAIN, mempipe_script_poll(s, &w)); /* 4 sent, blocked */
    assert_rc(1, mempipe_write(c, "x", 1));         /* the reading side */
    assert_int_equal(1, tu_calls(&woken));
    assert_rc(-EAGAIN, mempipe_script_poll(s, &w)); /* "x" read ahead */
    assert_rc(4, mempipe_read(c, buf, sizeof buf)); /* the writing side */
    assert_int_equal(2, tu_calls(&woken));
    assert_rc(-EAGAIN, mempipe_script_poll(s, &w));
    assert_rc(4, mempipe_read(c, buf, sizeof buf));
    assert_int_equal(3, tu_calls(&woken));
    assert_rc(-EAGAIN, mempipe_script_poll(s, &w)); /* all sent, "x" ok */
    assert_rc(2, mempipe_read(c, buf, sizeof buf));
    assert_memory_equal("89", buf, 2);
    assert_rc(0, mempipe_shutdown(c));
    assert_int_equal(4, tu_calls(&woken)); /* the EOF wait */
    assert_script(0, s, mempipe_script_poll(s, &w));
    mempipe_script_free(s);
    mempipe_close(c);
}

static void test_R46_error_is_sticky_and_null_until_then(void **state)
{
    (void)state;
    mempipe *c;
    mempipe_script *s = new_script(64, &c);
    assert_rc(0, mempipe_script_expect(s, LIT("ab")));
    assert_null(mempipe_script_error(s));
    assert_rc(-EAGAIN, mempipe_script_poll(s, NULL));
    assert_null(mempipe_script_error(s));
    assert_rc(1, mempipe_write(c, "a", 1));
    assert_rc(-EAGAIN, mempipe_script_poll(s, NULL));
    assert_rc(1, mempipe_write(c, "c", 1));
    assert_rc(-EPROTO, mempipe_script_poll(s, NULL));
    const char *m = mempipe_script_error(s);
    assert_non_null(m);
    assert_rc(1, mempipe_write(c, "b", 1)); /* too late: nothing changes */
    assert_rc(-EPROTO, mempipe_script_poll(s, NULL));
    assert_rc(-EPROTO, mempipe_script_run(s));
    assert_ptr_equal(m, mempipe_script_error(s));
    assert_message(s, "step 1 of 1 (expect 2 bytes): mismatch at byte 1 of "
                      "the step, byte 1 of the stream: expected 62 \"b\", "
                      "got 63 \"c\"");
    mempipe_script_free(s);
    mempipe_close(c);
}

/* ---- R47: building ----------------------------------------------------- */

static void test_R47_bad_input(void **state)
{
    (void)state;
    mempipe *c, *server;
    mempipe_waker nowake = {NULL, NULL};
    assert_null(mempipe_script_new(NULL));
    assert_rc(-EINVAL, mempipe_script_expect(NULL, "a", 1));
    assert_rc(-EINVAL, mempipe_script_send(NULL, "a", 1));
    assert_rc(-EINVAL, mempipe_script_fail(NULL, -EIO));
    assert_rc(-EINVAL, mempipe_script_shutdown(NULL));
    assert_rc(-EINVAL, mempipe_script_close(NULL));
    assert_rc(-EINVAL, mempipe_script_expect_eof(NULL));
    assert_rc(-EINVAL, mempipe_script_run(NULL));
    assert_rc(-EINVAL, mempipe_script_poll(NULL, NULL));
    assert_null(mempipe_script_error(NULL));
    mempipe_script_free(NULL);

    assert_rc(0, mempipe_duplex(64, &c, &server));
    mempipe_script *s = mempipe_script_new(server);
    assert_non_null(s);
    assert_rc(-EINVAL, mempipe_script_expect(s, NULL, 1));
    assert_rc(-EINVAL, mempipe_script_send(s, NULL, 1));
    assert_rc(0, mempipe_script_expect(s, NULL, 0));
    assert_rc(0, mempipe_script_send(s, NULL, 0));
    assert_rc(-EINVAL, mempipe_script_fail(s, 0));
    assert_rc(-EINVAL, mempipe_script_fail(s, EIO));
    assert_rc(-EINVAL, mempipe_script_fail(s, -EAGAIN));
    assert_rc(-EINVAL, mempipe_script_fail(s, -4096));
    assert_rc(-EINVAL, mempipe_script_poll(s, &nowake));
    /* Nothing above started the script or added a step. */
    assert_rc(0, mempipe_script_shutdown(s));
    assert_rc(-EINVAL, mempipe_script_shutdown(s)); /* twice */
    assert_rc(-EINVAL, mempipe_script_send(s, "a", 1));
    assert_rc(0, mempipe_script_expect(s, "a", 1));
    assert_rc(0, mempipe_script_expect_eof(s));
    assert_rc(-EINVAL, mempipe_script_expect_eof(s));
    assert_rc(-EINVAL, mempipe_script_expect(s, "a", 1));
    assert_rc(0, mempipe_script_close(s));
    assert_rc(-EINVAL, mempipe_script_close(s));
    assert_rc(-EINVAL, mempipe_script_fail(s, -EIO));
    assert_rc(-EINVAL, mempipe_script_expect(s, NULL, 0));
    mempipe_script_free(s);
    mempipe_close(c);
}

/* A simplex end cannot play both ways: -EBADF, sticky, with a message. */
static void test_R47_simplex_end_is_ebadf(void **state)
{
    (void)state;
    mempipe *r, *w;
    assert_rc(0, mempipe_simplex(64, &r, &w));
    mempipe_script *s = mempipe_script_new(r);
    assert_non_null(s);
    assert_rc(0, mempipe_script_send(s, LIT("x")));
    assert_rc(-EBADF, mempipe_script_run(s));
    assert_message(s, "step 1 of 1 (send 1 bytes): bad end: wrong direction "
                      "for this end after 0 bytes");
    assert_rc(-EBADF, mempipe_script_poll(s, NULL));
    mempipe_script_free(s);
    mempipe_close(w);
}

static void test_R47_builders_refuse_after_start(void **state)
{
    (void)state;
    mempipe *c;
    mempipe_script *s = new_script(64, &c);
    assert_rc(0, mempipe_script_expect(s, LIT("a")));
    assert_rc(-EAGAIN, mempipe_script_poll(s, NULL));
    assert_rc(-EBUSY, mempipe_script_expect(s, LIT("b")));
    assert_rc(-EBUSY, mempipe_script_send(s, LIT("b")));
    assert_rc(-EBUSY, mempipe_script_fail(s, -EIO));
    assert_rc(-EBUSY, mempipe_script_shutdown(s));
    assert_rc(-EBUSY, mempipe_script_close(s));
    assert_rc(-EBUSY, mempipe_script_expect_eof(s));
    assert_rc(1, mempipe_write(c, "a", 1));
    assert_rc(0, mempipe_shutdown(c));
    assert_script(0, s, mempipe_script_run(s)); /* the one step only */
    assert_rc(-EBUSY, mempipe_script_expect(s, LIT("b")));
    mempipe_script_free(s);
    mempipe_close(c);
}

/*
 * Allocation failure at every point (the counting allocator fails every
 * allocation from the Nth on): new returns NULL and leaves the end to the
 * caller; builders return -ENOMEM; a run whose read-ahead or send cannot
 * allocate returns -ENOMEM. Nothing leaks (tu_alloc_teardown and each
 * round's tu_live() check) or is freed twice (ASan).
 */
static void test_R47_allocation_failure(void **state)
{
    (void)state;
    int completed = 0, nulls = 0, builds = 0, runs = 0;
    for (long at = 1; !completed; at++) {
        mempipe *c, *server;
        mempipe_script *s = NULL;
        unsigned char buf[16];
        size_t got = 0;
        int rc = 0;
        atomic_store(&tu_cnt.calls, 0);
        atomic_store(&tu_cnt.fail_at, at);
        assert_true(at < 200);
        rc = mempipe_duplex(4, &c, &server);
        if (rc != 0) {
            assert_rc(-ENOMEM, rc);
            goto next;
        }
        s = mempipe_script_new(server);
        if (s == NULL) {
            mempipe_close(server); /* still ours */
            nulls++;
            goto close;
        }
        if ((rc = mempipe_script_send(s, LIT("0123456789"))) != 0 ||
            (rc = mempipe_script_expect(s, LIT("ping"))) != 0 ||
            (rc = mempipe_script_close(s)) != 0) {
            assert_rc(-ENOMEM, rc);
            builds++;
            goto close;
        }
        rc = (int)mempipe_poll_write(c, "ping", 4, NULL);
        if (rc != 4) {
            assert_rc(-ENOMEM, rc);
            goto close;
        }
        /* The script sends 4, blocks, and reads "ping" ahead. */
        for (int i = 0; i < 100; i++) {
            ssize_t n;
            rc = mempipe_script_poll(s, NULL);
            if (rc != -EAGAIN)
                break;
            n = mempipe_poll_read(c, buf, sizeof buf, NULL);
            assert_true(n > 0 || n == -EAGAIN);
            if (n > 0)
                got += (size_t)n;
        }
        if (rc == -ENOMEM) {
            assert_non_null(mempipe_script_error(s));
            assert_rc(-ENOMEM, mempipe_script_poll(s, NULL));
            runs++;
            goto close;
        }
        assert_script(0, s, rc);
        for (ssize_t n; (n = mempipe_poll_read(c, buf, sizeof buf, NULL)) > 0;)
            got += (size_t)n;
        assert_int_equal(10, got); /* then EOF: the script closed */
        completed = 1;
    close:
        mempipe_script_free(s);
        mempipe_close(c);
    next:
        atomic_store(&tu_cnt.fail_at, 0);
        assert_int_equal(0, tu_live());
    }
    /* Every kind of failure point was hit. */
    assert_true(nulls > 0);
    assert_true(builds > 0);
    assert_true(runs > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R41_http_exchange_blocking_client),
        cmocka_unit_test(test_R41_requests_written_in_pieces_of_every_size),
        cmocka_unit_test(test_R41_http_exchange_poll_client_one_thread),
        cmocka_unit_test(test_R41_one_write_covers_several_expects),
        cmocka_unit_test(test_R42_mismatch_message_at_various_offsets),
        cmocka_unit_test(test_R42_mismatch_caught_in_one_byte_writes),
        cmocka_unit_test(test_R43_leftover_script_on_early_eof),
        cmocka_unit_test(test_R43_leftover_script_on_closed_reader),
        cmocka_unit_test(test_R43_unexpected_bytes_after_the_script),
        cmocka_unit_test(test_R43_waits_for_eof_after_the_last_step),
        cmocka_unit_test(test_R43_empty_script_expects_eof),
        cmocka_unit_test(test_R43_last_close_does_not_wait_for_eof),
        cmocka_unit_test(
            test_R44_send_bigger_than_capacity_while_client_writes),
        cmocka_unit_test(test_R44_send_bigger_than_capacity_polled),
        cmocka_unit_test(test_R45_shutdown_client_reads_eof_then_writes),
        cmocka_unit_test(test_R45_close_client_reads_eof_and_gets_epipe),
        cmocka_unit_test(test_R45_fail_client_reads_sent_bytes_then_the_error),
        cmocka_unit_test(test_R45_fail_after_shutdown_keeps_eof),
        cmocka_unit_test(test_R45_expect_eof_matches_a_shutdown),
        cmocka_unit_test(test_R45_expect_eof_rejects_bytes_before_eof),
        cmocka_unit_test(test_R46_poll_stores_the_waker_in_both_directions),
        cmocka_unit_test(test_R46_error_is_sticky_and_null_until_then),
        cmocka_unit_test(test_R47_bad_input),
        cmocka_unit_test(test_R47_simplex_end_is_ebadf),
        cmocka_unit_test(test_R47_builders_refuse_after_start),
        cmocka_unit_test_setup_teardown(test_R47_allocation_failure,
                                        tu_alloc_setup, tu_alloc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
