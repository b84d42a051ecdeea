/* SPDX-License-Identifier: MIT */
/*
 * mempipe_describe: the exact documented format for every kind and state,
 * snprintf-style truncation and return value, argument errors, and safety
 * while other threads use the end (run it under TSan: make tsan).
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Asserts the full description of end, printing both lines on mismatch. */
#define assert_describes(end, expected)                                        \
    check_description((end), (expected), __FILE__, __LINE__)

static void check_description(const mempipe *end, const char *expected,
                              const char *file, int line)
{
    char buf[256];
    int n = mempipe_describe(end, buf, sizeof buf);
    if (n < 0 || strcmp(buf, expected) != 0 || (size_t)n != strlen(expected))
        fail_msg("%s:%d: expected \"%s\" (%zu), got \"%s\" (%d)", file, line,
                 expected, strlen(expected), n < 0 ? "" : buf, n);
}

static void test_describe_fresh_ends_of_every_kind(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL, *r = NULL, *w = NULL, *l = NULL;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(0, mempipe_simplex(16, &r, &w));
    assert_rc(0, mempipe_loopback(32, &l));
    assert_describes(a, "duplex rx=0/8 open wakers=-- tx=0/8 open wakers=--");
    assert_describes(b, "duplex rx=0/8 open wakers=-- tx=0/8 open wakers=--");
    assert_describes(r, "simplex-reader rx=0/16 open wakers=--");
    assert_describes(w, "simplex-writer tx=0/16 open wakers=--");
    assert_describes(l, "loopback rxtx=0/32 open wakers=--");
    mempipe_close(a);
    mempipe_close(b);
    mempipe_close(r);
    mempipe_close(w);
    mempipe_close(l);
}

/* The example in mempipe.h, and the same pipes seen from the peer. */
static void test_describe_header_example(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    struct tu_counter c = {0};
    mempipe_waker wk = tu_counter_waker(&c);
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(5, mempipe_poll_write(b, "hello", 5, NULL));
    assert_rc(0, mempipe_shutdown(b));
    assert_rc(8, mempipe_poll_write(a, "12345678", 8, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "9", 1, &wk)); /* parks */
    assert_describes(
        a, "duplex rx=5/8 write-closed wakers=-- tx=8/8 open wakers=-w");
    assert_describes(
        b, "duplex rx=8/8 open wakers=-w tx=5/8 write-closed wakers=--");
    mempipe_close(a);
    mempipe_close(b);
}

static void test_describe_buffered_bytes_and_wakers_follow_the_calls(void **s)
{
    (void)s;
    mempipe *a = NULL, *b = NULL;
    struct tu_counter c = {0};
    mempipe_waker wk = tu_counter_waker(&c);
    char buf[8];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(-EAGAIN, mempipe_poll_read(a, buf, sizeof buf, &wk));
    assert_describes(a, "duplex rx=0/8 open wakers=r- tx=0/8 open wakers=--");
    assert_describes(b, "duplex rx=0/8 open wakers=-- tx=0/8 open wakers=r-");
    assert_rc(3, mempipe_poll_write(b, "abc", 3, NULL)); /* wakes a */
    assert_rc(1, tu_calls(&c));
    assert_describes(a, "duplex rx=3/8 open wakers=-- tx=0/8 open wakers=--");
    assert_rc(2, mempipe_poll_read(a, buf, 2, NULL));
    assert_describes(a, "duplex rx=1/8 open wakers=-- tx=0/8 open wakers=--");
    mempipe_close(a);
    mempipe_close(b);
}

static void test_describe_shutdown_and_close_each_way(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(4, mempipe_poll_write(a, "abcd", 4, NULL));
    assert_rc(2, mempipe_poll_write(b, "xy", 2, NULL));
    assert_rc(0, mempipe_shutdown(a));
    assert_describes(
        a, "duplex rx=2/8 open wakers=-- tx=4/8 write-closed wakers=--");
    /* b closes: it discards the 4 bytes it never read (R21), the pipe it
     * read is now closed both ways; the pipe it wrote is write-closed and
     * keeps its 2 bytes for a (R21). */
    mempipe_close(b);
    assert_describes(
        a, "duplex rx=2/8 write-closed wakers=-- tx=0/8 closed wakers=--");

    mempipe *c = NULL, *d = NULL;
    assert_rc(0, mempipe_duplex(8, &c, &d));
    mempipe_close(d); /* c's writes now fail: its tx is read-closed */
    assert_describes(
        c, "duplex rx=0/8 write-closed wakers=-- tx=0/8 read-closed wakers=--");
    mempipe_close(a);
    mempipe_close(c);
}

static void test_describe_simplex_and_loopback_states(void **state)
{
    (void)state;
    mempipe *r = NULL, *w = NULL, *l = NULL;
    struct tu_counter c = {0};
    mempipe_waker wk = tu_counter_waker(&c);
    char buf[8];
    assert_rc(0, mempipe_simplex(4, &r, &w));
    assert_rc(4, mempipe_poll_write(w, "full", 4, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(w, "x", 1, &wk));
    assert_describes(r, "simplex-reader rx=4/4 open wakers=-w");
    assert_describes(w, "simplex-writer tx=4/4 open wakers=-w");
    mempipe_close(r); /* wakes the writer, read-closes, discards */
    assert_rc(1, tu_calls(&c));
    assert_describes(w, "simplex-writer tx=0/4 read-closed wakers=--");
    mempipe_close(w);

    assert_rc(0, mempipe_loopback(16, &l));
    assert_rc(-EAGAIN, mempipe_poll_read(l, buf, sizeof buf, &wk));
    assert_describes(l, "loopback rxtx=0/16 open wakers=r-");
    assert_rc(3, mempipe_poll_write(l, "abc", 3, NULL));
    assert_rc(0, mempipe_shutdown(l));
    assert_describes(l, "loopback rxtx=3/16 write-closed wakers=--");
    mempipe_close(l);
}

static void test_describe_huge_capacity_is_printed_in_full(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    char expected[128];
    assert_rc(0, mempipe_duplex(SIZE_MAX, &a, &b));
    snprintf(expected, sizeof expected,
             "duplex rx=0/%zu open wakers=-- tx=0/%zu open wakers=--",
             (size_t)SIZE_MAX, (size_t)SIZE_MAX);
    assert_describes(a, expected);
    mempipe_close(a);
    mempipe_close(b);
}

static void test_describe_truncates_like_snprintf(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    const char *full = "duplex rx=0/8 open wakers=-- tx=0/8 open wakers=--";
    const size_t n = strlen(full);
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(n, mempipe_describe(a, NULL, 0)); /* length only */
    for (size_t len = 0; len <= n + 2; len++) {
        char buf[128];
        memset(buf, '#', sizeof buf);
        assert_rc(n, mempipe_describe(a, buf, len));
        if (len == 0) {
            assert_int_equal('#', buf[0]); /* nothing written */
            continue;
        }
        size_t kept = len - 1 < n ? len - 1 : n;
        assert_memory_equal(buf, full, kept);
        assert_int_equal('\0', buf[kept]);
        assert_int_equal('#', buf[kept + 1]); /* nothing past the NUL */
    }
    mempipe_close(a);
    mempipe_close(b);
}

static void test_describe_argument_errors(void **state)
{
    (void)state;
    mempipe *l = NULL;
    char buf[8] = "keep";
    assert_rc(-EINVAL, mempipe_describe(NULL, buf, sizeof buf));
    assert_rc(-EINVAL, mempipe_describe(NULL, NULL, 0));
    assert_string_equal("keep", buf);
    assert_rc(0, mempipe_loopback(4, &l));
    assert_rc(-EINVAL, mempipe_describe(l, NULL, 1));
    mempipe_close(l);
}

/*
 * Two threads stream through a duplex in both directions while this thread
 * describes both ends over and over. Each line must parse, with L <= M and
 * open pipes; under TSan, any unsynchronised access would be reported.
 */
#define STREAM_BYTES (1u << 20)

struct streamer {
    mempipe *end;
    int writes; /* 1: write STREAM_BYTES then shut down; 0: read to EOF */
    size_t moved;
    atomic_int done;
};

static void *streamer_main(void *arg)
{
    struct streamer *s = arg;
    unsigned char buf[1000];
    if (s->writes) {
        for (size_t pos = 0; pos < STREAM_BYTES;) {
            size_t k = STREAM_BYTES - pos < sizeof buf ? STREAM_BYTES - pos
                                                       : sizeof buf;
            tu_pattern(buf, k, pos, 3);
            ssize_t n = mempipe_write(s->end, buf, k);
            if (n <= 0)
                break;
            pos += (size_t)n;
            s->moved = pos;
        }
        mempipe_shutdown(s->end);
    } else {
        for (;;) {
            ssize_t n = mempipe_read(s->end, buf, sizeof buf);
            if (n <= 0)
                break;
            if (tu_check_pattern(buf, (size_t)n, s->moved, 3) != -1)
                break;
            s->moved += (size_t)n;
        }
    }
    atomic_store(&s->done, 1);
    return NULL;
}

static int parse_side(const char *p, size_t *l, size_t *m, char *st, char *wk)
{
    return sscanf(p, "=%zu/%zu %15s wakers=%2s", l, m, st, wk) == 4;
}

static void check_live_line(const char *line)
{
    const char *rx = strstr(line, " rx=");
    const char *tx = strstr(line, " tx=");
    if (strncmp(line, "duplex rx=", 10) != 0 || rx == NULL || tx == NULL)
        fail_msg("bad line \"%s\"", line);
    size_t l, m;
    char st[16], wk[3];
    const char *sides[2] = {rx + 3, tx + 3};
    for (int i = 0; i < 2; i++) {
        if (!parse_side(sides[i], &l, &m, st, wk))
            fail_msg("unparsable \"%s\"", line);
        if (m != 64 || l > m)
            fail_msg("L/M out of range in \"%s\"", line);
        if (strcmp(st, "open") != 0 && strcmp(st, "write-closed") != 0)
            fail_msg("unexpected state in \"%s\"", line);
        if ((wk[0] != 'r' && wk[0] != '-') || (wk[1] != 'w' && wk[1] != '-'))
            fail_msg("bad wakers in \"%s\"", line);
    }
}

static void test_describe_is_safe_while_other_threads_use_the_end(void **s)
{
    (void)s;
    mempipe *a = NULL, *b = NULL;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    struct streamer st[4] = {
        {.end = a, .writes = 1},
        {.end = b, .writes = 0},
        {.end = b, .writes = 1},
        {.end = a, .writes = 0},
    };
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_rc(0, pthread_create(&th[i], NULL, streamer_main, &st[i]));
    char line[256];
    unsigned lines = 0;
    for (;;) {
        int done = 1;
        for (int i = 0; i < 4; i++)
            done &= atomic_load(&st[i].done);
        if (done)
            break;
        int n = mempipe_describe(lines % 2 ? b : a, line, sizeof line);
        assert_true(n > 0 && (size_t)n < sizeof line);
        check_live_line(line);
        lines++;
    }
    for (int i = 0; i < 4; i++)
        assert_rc(0, pthread_join(th[i], NULL));
    for (int i = 0; i < 4; i++)
        assert_rc(STREAM_BYTES, st[i].moved);
    assert_true(lines > 0);
    assert_describes(
        a,
        "duplex rx=0/64 write-closed wakers=-- tx=0/64 write-closed wakers=--");
    mempipe_close(a);
    mempipe_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_describe_fresh_ends_of_every_kind),
        cmocka_unit_test(test_describe_header_example),
        cmocka_unit_test(
            test_describe_buffered_bytes_and_wakers_follow_the_calls),
        cmocka_unit_test(test_describe_shutdown_and_close_each_way),
        cmocka_unit_test(test_describe_simplex_and_loopback_states),
        cmocka_unit_test(test_describe_huge_capacity_is_printed_in_full),
        cmocka_unit_test(test_describe_truncates_like_snprintf),
        cmocka_unit_test(test_describe_argument_errors),
        cmocka_unit_test(test_describe_is_safe_while_other_threads_use_the_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
