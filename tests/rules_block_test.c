/* SPDX-License-Identifier: MIT */
/*
 * SPEC.md R27-R29: the blocking calls, with the peer role on another
 * thread: reads that wait for data or EOF, writes that wait for all bytes
 * or return the count accepted before a close, and blocking and poll calls
 * mixed on one end.
 */
#define TU_XPROC_KIND /* the bodies also run with fx.r in a child */
#include "kinds.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Helpers: one blocking call on another thread                        */
/* ------------------------------------------------------------------ */

struct job {
    mempipe *end;
    int write; /* 1: mempipe_write(src, len); 0: mempipe_read(dst, len) */
    const unsigned char *src;
    unsigned char *dst;
    size_t len;
    ssize_t rc;
    pthread_t t;
};

static void *job_main(void *arg)
{
    struct job *j = arg;
    j->rc = j->write ? mempipe_write(j->end, j->src, j->len)
                     : mempipe_read(j->end, j->dst, j->len);
    return NULL;
}

static void job_start(struct job *j)
{
    j->rc = 12345;
    assert_int_equal(0, pthread_create(&j->t, NULL, job_main, j));
}

static ssize_t job_join(struct job *j)
{
    assert_int_equal(0, pthread_join(j->t, NULL));
    return j->rc;
}

/* Lets the thread reach its sleep before the main thread acts. The result
 * checked never depends on this delay; it only makes the test cover the
 * parked case most of the time. */
static void settle(void)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* Waits (bounded, as hang detection) until the end has n bytes to read. */
static void wait_readable(mempipe *end, size_t n)
{
    double limit = tu_now() + 20.0;
    while (mempipe_readable(end) != n) {
        if (tu_now() > limit)
            fail_msg("readable stuck at %zu, want %zu", mempipe_readable(end),
                     n);
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* ------------------------------------------------------------------ */
/* R27: mempipe_read                                                   */
/* ------------------------------------------------------------------ */

static void R27_read_returns_buffered_at_once(enum kind k)
{
    struct fx f;
    unsigned char out[16];
    fx_open(&f, k, 16);
    assert_rc(3, mempipe_poll_write(f.w, "abc", 3, NULL));
    assert_rc(2, mempipe_read(f.r, out, 2));
    assert_memory_equal(out, "ab", 2);
    assert_rc(1, mempipe_read(f.r, out, sizeof out)); /* not waiting for 16 */
    assert_int_equal('c', out[0]);
    assert_rc(0, mempipe_read(f.r, out, 0)); /* len 0: at once */
    assert_rc(0, mempipe_read(f.r, NULL, 0));
    fx_close(&f);
}
KIND_TESTS(R27_read_returns_buffered_at_once)

static void R27_read_blocks_until_data(enum kind k)
{
    struct fx f;
    unsigned char out[16] = {0};
    fx_open(&f, k, 16);
    struct job j = {.end = f.r, .write = 0, .dst = out, .len = sizeof out};
    job_start(&j);
    settle();
    assert_rc(2, mempipe_poll_write(f.w, "hi", 2, NULL));
    assert_rc(2, job_join(&j));
    assert_memory_equal(out, "hi", 2);
    fx_close(&f);
}
KIND_TESTS(R27_read_blocks_until_data)

static void R27_read_blocks_until_shutdown_eof(enum kind k)
{
    struct fx f;
    unsigned char out[16];
    fx_open(&f, k, 16);
    struct job j = {.end = f.r, .write = 0, .dst = out, .len = sizeof out};
    job_start(&j);
    settle();
    assert_rc(0, mempipe_shutdown(f.w));
    assert_rc(0, job_join(&j));
    assert_rc(0, mempipe_read(f.r, out, sizeof out)); /* EOF again */
    fx_close(&f);
}
KIND_TESTS(R27_read_blocks_until_shutdown_eof)

static void R27_read_blocks_until_close_eof(enum kind k)
{
    struct fx f;
    unsigned char out[16];
    fx_open(&f, k, 16);
    struct job j = {.end = f.r, .write = 0, .dst = out, .len = sizeof out};
    job_start(&j);
    settle();
    mempipe_close(f.w);
    assert_rc(0, job_join(&j));
    mempipe_close(f.r);
}

static void test_R27_read_blocks_until_close_eof_duplex(void **s)
{
    (void)s;
    R27_read_blocks_until_close_eof(DUPLEX);
}

static void test_R27_read_blocks_until_close_eof_simplex(void **s)
{
    (void)s;
    R27_read_blocks_until_close_eof(SIMPLEX);
}

static void test_R27_read_errors(void **s)
{
    (void)s;
    mempipe *r, *w;
    unsigned char out[4];
    assert_rc(0, mempipe_simplex(8, &r, &w));
    assert_rc(-EBADF, mempipe_read(w, out, sizeof out));
    assert_rc(-EINVAL, mempipe_read(NULL, out, sizeof out));
    assert_rc(-EINVAL, mempipe_read(r, NULL, 1));
    mempipe_close(r);
    mempipe_close(w);
}

/* ------------------------------------------------------------------ */
/* R28: mempipe_write                                                  */
/* ------------------------------------------------------------------ */

static void R28_write_blocks_until_all_accepted(enum kind k)
{
    enum { N = 64 * 1024 };
    struct fx f;
    unsigned char *src = malloc(N), *dst = malloc(N);
    assert_non_null(src);
    assert_non_null(dst);
    tu_pattern(src, N, 0, 28);
    fx_open(&f, k, 16);
    struct job j = {.end = f.w, .write = 1, .src = src, .len = N};
    job_start(&j);
    size_t got = 0, piece = 1;
    while (got < N) {
        ssize_t n = mempipe_read(f.r, dst + got, piece);
        assert_true(n > 0);
        got += (size_t)n;
        piece = piece % 23 + 1;
    }
    assert_rc(N, job_join(&j));
    assert_memory_equal(src, dst, N);
    assert_int_equal(0, mempipe_readable(f.r));
    fx_close(&f);
    free(src);
    free(dst);
}
KIND_TESTS(R28_write_blocks_until_all_accepted)

static void R28_write_returns_at_once_when_it_fits(enum kind k)
{
    struct fx f;
    fx_open(&f, k, 16);
    assert_rc(5, mempipe_write(f.w, "hello", 5));
    assert_rc(0, mempipe_write(f.w, "x", 0));
    assert_rc(0, mempipe_write(f.w, NULL, 0));
    expect_read(f.r, "hello", 5);
    fx_close(&f);
}
KIND_TESTS(R28_write_returns_at_once_when_it_fits)

/*
 * 25 bytes into a 10-byte pipe; 5 are read; the pipe closes part-way: the
 * call returns the 15 accepted. how: 's' shutdown by another thread, 'c'
 * the reader closes.
 */
static void partial_then_close(enum kind k, char how)
{
    struct fx f;
    static const unsigned char src[25] = "ABCDEFGHIJKLMNOPQRSTUVWXY";
    unsigned char out[8];
    fx_open(&f, k, 10);
    struct job j = {.end = f.w, .write = 1, .src = src, .len = sizeof src};
    job_start(&j);
    wait_readable(f.r, 10);
    assert_rc(5, mempipe_poll_read(f.r, out, 5, NULL));
    assert_memory_equal(out, "ABCDE", 5);
    wait_readable(f.r, 10);
    if (how == 's') {
        assert_rc(0, mempipe_shutdown(f.w));
        assert_rc(15, job_join(&j));
        unsigned char rest[16];
        assert_rc(10, mempipe_poll_read(f.r, rest, sizeof rest, NULL));
        assert_memory_equal(rest, "FGHIJKLMNO", 10);
        assert_rc(0, mempipe_poll_read(f.r, rest, sizeof rest, NULL));
        fx_close(&f);
    } else {
        mempipe_close(f.r);
        assert_rc(15, job_join(&j));
        mempipe_close(f.w);
    }
}

static void R28_partial_then_shutdown_returns_count(enum kind k)
{
    partial_then_close(k, 's');
}
KIND_TESTS(R28_partial_then_shutdown_returns_count)

static void test_R28_partial_then_close_returns_count_duplex(void **s)
{
    (void)s;
    partial_then_close(DUPLEX, 'c');
}

static void test_R28_partial_then_close_returns_count_simplex(void **s)
{
    (void)s;
    partial_then_close(SIMPLEX, 'c');
}

/* Nothing accepted before the close: -EPIPE. */
static void none_then_close(enum kind k, char how)
{
    struct fx f;
    fx_open(&f, k, 4);
    assert_rc(4, mempipe_poll_write(f.w, "full", 4, NULL));
    struct job j = {
        .end = f.w, .write = 1, .src = (const void *)"more", .len = 4};
    job_start(&j);
    settle();
    if (how == 's') {
        assert_rc(0, mempipe_shutdown(f.w));
        assert_rc(-EPIPE, job_join(&j));
        expect_read(f.r, "full", 4);
        fx_close(&f);
    } else {
        mempipe_close(f.r);
        assert_rc(-EPIPE, job_join(&j));
        mempipe_close(f.w);
    }
}

static void R28_none_accepted_then_shutdown_epipe(enum kind k)
{
    none_then_close(k, 's');
}
KIND_TESTS(R28_none_accepted_then_shutdown_epipe)

static void test_R28_none_accepted_then_close_epipe_duplex(void **s)
{
    (void)s;
    none_then_close(DUPLEX, 'c');
}

static void test_R28_none_accepted_then_close_epipe_simplex(void **s)
{
    (void)s;
    none_then_close(SIMPLEX, 'c');
}

static void R28_write_on_closed_pipe_epipe_at_once(enum kind k)
{
    struct fx f;
    fx_open(&f, k, 4);
    assert_rc(0, mempipe_shutdown(f.w));
    assert_rc(-EPIPE, mempipe_write(f.w, "x", 1));
    assert_rc(-EPIPE, mempipe_write(f.w, "x", 0));
    fx_close(&f);
}
KIND_TESTS(R28_write_on_closed_pipe_epipe_at_once)

static void test_R28_write_errors(void **s)
{
    (void)s;
    mempipe *r, *w;
    assert_rc(0, mempipe_simplex(8, &r, &w));
    assert_rc(-EBADF, mempipe_write(r, "x", 1));
    assert_rc(-EINVAL, mempipe_write(NULL, "x", 1));
    assert_rc(-EINVAL, mempipe_write(w, NULL, 1));
    assert_int_equal(0, mempipe_readable(r));
    mempipe_close(r);
    mempipe_close(w);
}

/* ------------------------------------------------------------------ */
/* R29: blocking and poll calls mixed on one end                       */
/* ------------------------------------------------------------------ */

static void R29_mix_poll_and_blocking_reads(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    unsigned char out[8];
    fx_open(&f, k, 8);

    /* poll Pending, then a blocking write by the peer role wakes it. */
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &w));
    assert_rc(2, mempipe_write(f.w, "ab", 2));
    expect_calls(1, &c);
    assert_rc(2, mempipe_read(f.r, out, sizeof out));
    assert_memory_equal(out, "ab", 2);

    /* A blocking read on a thread, fed by a poll write. */
    struct job j = {.end = f.r, .write = 0, .dst = out, .len = sizeof out};
    job_start(&j);
    settle();
    assert_rc(1, mempipe_poll_write(f.w, "c", 1, NULL));
    assert_rc(1, job_join(&j));
    assert_int_equal('c', out[0]);

    /* poll again after the blocking call: its waker is stored and called. */
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &w));
    expect_calls(1, &c);
    assert_rc(1, mempipe_poll_write(f.w, "d", 1, NULL));
    expect_calls(2, &c);
    expect_read(f.r, "d", 1);

    /* And the end: a blocked reader sees EOF, then poll sees it too. */
    job_start(&j);
    settle();
    assert_rc(0, mempipe_shutdown(f.w));
    assert_rc(0, job_join(&j));
    assert_rc(0, mempipe_poll_read(f.r, out, sizeof out, &w));
    fx_close(&f);
    expect_calls(2, &c);
}
KIND_TESTS(R29_mix_poll_and_blocking_reads)

static void R29_mix_poll_and_blocking_writes(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    unsigned char out[16];
    fx_open(&f, k, 4);

    /* A blocking write fills the pipe; a poll write is then Pending. */
    assert_rc(4, mempipe_write(f.w, "abcd", 4));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, "e", 1, &w));
    assert_rc(2, mempipe_read(f.r, out, 2));
    expect_calls(1, &c);
    assert_rc(2, mempipe_poll_write(f.w, "efgh", 4, NULL));

    /* A blocking write on a thread, drained by poll reads. */
    struct job j = {
        .end = f.w, .write = 1, .src = (const void *)"ijklmn", .len = 6};
    job_start(&j);
    size_t got = 0;
    while (got < 10) {
        ssize_t n = mempipe_poll_read(f.r, out + got, sizeof out - got, NULL);
        if (n == -EAGAIN) {
            assert_rc(0, mempipe_read(f.r, out + got, 0));
            n = mempipe_read(f.r, out + got, sizeof out - got);
        }
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_rc(6, job_join(&j));
    assert_memory_equal(out, "cdefijklmn", 10); /* "gh" did not fit */

    /* poll after the blocking write: Pending stores, a read wakes. */
    assert_rc(4, mempipe_poll_write(f.w, "wxyz", 4, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, "!", 1, &w));
    expect_calls(1, &c);
    assert_rc(1, mempipe_poll_read(f.r, out, 1, NULL));
    expect_calls(2, &c);
    fx_close(&f);
    expect_calls(2, &c);
}
KIND_TESTS(R29_mix_poll_and_blocking_writes)

/* A blocked writer is woken by every event of R25 that concerns it. */
static void R29_blocked_writer_woken_by_space(enum kind k)
{
    struct fx f;
    unsigned char out[8];
    fx_open(&f, k, 4);
    assert_rc(4, mempipe_poll_write(f.w, "full", 4, NULL));
    struct job j = {
        .end = f.w, .write = 1, .src = (const void *)"XY", .len = 2};
    job_start(&j);
    settle();
    assert_rc(2, mempipe_poll_read(f.r, out, 2, NULL));
    assert_rc(2, job_join(&j));
    expect_read(f.r, "llXY", 4);
    fx_close(&f);
}
KIND_TESTS(R29_blocked_writer_woken_by_space)

int main(void)
{
    const struct CMUnitTest tests[] = {
        KIND_ENTRIES(R27_read_returns_buffered_at_once),
        KIND_ENTRIES(R27_read_blocks_until_data),
        KIND_ENTRIES(R27_read_blocks_until_shutdown_eof),
        cmocka_unit_test(test_R27_read_blocks_until_close_eof_duplex),
        cmocka_unit_test(test_R27_read_blocks_until_close_eof_simplex),
        cmocka_unit_test(test_R27_read_errors),
        KIND_ENTRIES(R28_write_blocks_until_all_accepted),
        KIND_ENTRIES(R28_write_returns_at_once_when_it_fits),
        KIND_ENTRIES(R28_partial_then_shutdown_returns_count),
        cmocka_unit_test(test_R28_partial_then_close_returns_count_duplex),
        cmocka_unit_test(test_R28_partial_then_close_returns_count_simplex),
        KIND_ENTRIES(R28_none_accepted_then_shutdown_epipe),
        cmocka_unit_test(test_R28_none_accepted_then_close_epipe_duplex),
        cmocka_unit_test(test_R28_none_accepted_then_close_epipe_simplex),
        KIND_ENTRIES(R28_write_on_closed_pipe_epipe_at_once),
        cmocka_unit_test(test_R28_write_errors),
        KIND_ENTRIES(R29_mix_poll_and_blocking_reads),
        KIND_ENTRIES(R29_mix_poll_and_blocking_writes),
        KIND_ENTRIES(R29_blocked_writer_woken_by_space),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
