/* SPDX-License-Identifier: MIT */
/*
 * SPEC.md R17-R22: shutdown and close of duplex, simplex and loopback ends,
 * in every order and from other threads; bytes before EOF; memory freed by
 * the last close; wakers of a closed end never called.
 *
 * Tests that look at memory install a counting allocator, whose teardown
 * checks that the last close gave every byte back.
 */
#define TU_XPROC_KIND /* the bodies also run with fx.r in a child */
#include "kinds.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Lets a thread start and, likely, block before the main thread acts. The
 * outcome checked never depends on this delay, only how much it tests. */
static void settle(void)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ */
/* R17: shutdown half-closes, wakes the reader, is idempotent          */
/* ------------------------------------------------------------------ */

static void R17_shutdown_wakes_parked_reader(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    unsigned char out[4];
    fx_open(&f, k, 8);
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &w));
    assert_rc(0, mempipe_shutdown(f.w));
    expect_calls(1, &c);
    assert_rc(0, mempipe_poll_read(f.r, out, sizeof out, &w));
    /* Idempotent: more shutdowns return 0 and call nothing more. */
    assert_rc(0, mempipe_shutdown(f.w));
    assert_rc(0, mempipe_poll_shutdown(f.w, NULL));
    expect_calls(1, &c);
    fx_close(&f);
    expect_calls(1, &c);
}
KIND_TESTS(R17_shutdown_wakes_parked_reader)

/* Bytes buffered before the shutdown are read first. */
static void R17_shutdown_keeps_buffered_bytes(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    unsigned char out[8];
    fx_open(&f, k, 8);
    assert_rc(4, mempipe_poll_write(f.w, "data", 4, NULL));
    assert_rc(0, mempipe_poll_shutdown(f.w, &w));
    expect_read(f.r, "data", 4);
    assert_rc(0, mempipe_poll_read(f.r, out, sizeof out, NULL));
    fx_close(&f);
    expect_calls(0, &c);
}
KIND_TESTS(R17_shutdown_keeps_buffered_bytes)

/* poll_shutdown completes at once and never stores its waker. */
static void R17_poll_shutdown_never_stores_waker(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    unsigned char out[4];
    fx_open(&f, k, 2);
    assert_rc(2, mempipe_poll_write(f.w, "ab", 2, NULL)); /* full */
    for (int i = 0; i < 3; i++)
        assert_rc(0, mempipe_poll_shutdown(f.w, &w));
    expect_read(f.r, "ab", 2);
    assert_rc(0, mempipe_poll_read(f.r, out, sizeof out, NULL));
    fx_close(&f);
    expect_calls(0, &c);
}
KIND_TESTS(R17_poll_shutdown_never_stores_waker)

/* Also after the peer is gone. */
static void R17_shutdown_after_peer_gone(enum kind k)
{
    struct fx f;
    fx_open(&f, k, 8);
    mempipe_close(f.r);
    assert_rc(0, mempipe_shutdown(f.w));
    assert_rc(0, mempipe_shutdown(f.w));
    assert_rc(0, mempipe_poll_shutdown(f.w, NULL));
    mempipe_close(f.w);
}

static void test_R17_shutdown_after_peer_gone_duplex(void **s)
{
    (void)s;
    R17_shutdown_after_peer_gone(DUPLEX);
}

static void test_R17_shutdown_after_peer_gone_simplex(void **s)
{
    (void)s;
    R17_shutdown_after_peer_gone(SIMPLEX);
}

/* The other direction stays fully open, and its waker is not called. */
static void test_R17_duplex_other_direction_stays_open(void **s)
{
    (void)s;
    mempipe *a, *b;
    struct tu_counter ar = {0}, bw = {0};
    mempipe_waker war = tu_counter_waker(&ar), wbw = tu_counter_waker(&bw);
    unsigned char out[8];
    assert_rc(0, mempipe_duplex(4, &a, &b));
    /* a waits to read b -> a; b waits to write the full b -> a. */
    assert_rc(-EAGAIN, mempipe_poll_read(a, out, sizeof out, &war));
    assert_rc(0, mempipe_shutdown(a)); /* closes a -> b only */
    expect_calls(0, &ar);
    assert_rc(0, mempipe_poll_read(b, out, sizeof out, NULL));
    assert_rc(4, mempipe_poll_write(b, "wxyz", 4, NULL)); /* wakes ar */
    expect_calls(1, &ar);
    assert_rc(-EAGAIN, mempipe_poll_write(b, "!", 1, &wbw));
    assert_int_equal(0, mempipe_writable(a));
    assert_rc(2, mempipe_poll_read(a, out, 2, NULL)); /* wakes bw */
    expect_calls(1, &bw);
    assert_memory_equal(out, "wx", 2);
    assert_rc(1, mempipe_poll_write(b, "!", 1, NULL));
    expect_read(a, "yz!", 3);
    assert_rc(0, mempipe_shutdown(b));
    assert_rc(0, mempipe_poll_read(a, out, sizeof out, NULL));
    mempipe_close(a);
    mempipe_close(b);
    expect_calls(1, &ar);
    expect_calls(1, &bw);
}

/* ------------------------------------------------------------------ */
/* R18: shutdown wakes a writer parked on the same pipe                */
/* ------------------------------------------------------------------ */

static void R18_shutdown_wakes_parked_writer(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    fx_open(&f, k, 3);
    assert_rc(3, mempipe_poll_write(f.w, "abc", 3, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, "d", 1, &w));
    assert_rc(0, mempipe_shutdown(f.w));
    expect_calls(1, &c);
    assert_rc(-EPIPE, mempipe_poll_write(f.w, "d", 1, &w));
    expect_read(f.r, "abc", 3);
    fx_close(&f);
    expect_calls(1, &c);
}
KIND_TESTS(R18_shutdown_wakes_parked_writer)

struct blocked_write {
    mempipe *end;
    size_t len;
    ssize_t rc;
};

static void *blocked_write_main(void *arg)
{
    struct blocked_write *bw = arg;
    static const char bytes[64] = "0123456789";
    bw->rc = mempipe_write(bw->end, bytes, bw->len);
    return NULL;
}

/* A writer blocked on another thread is interrupted: -EPIPE. */
static void R18_shutdown_interrupts_blocked_writer(enum kind k)
{
    struct fx f;
    pthread_t t;
    fx_open(&f, k, 4);
    assert_rc(4, mempipe_poll_write(f.w, "full", 4, NULL));
    struct blocked_write bw = {f.w, 8, 12345};
    assert_int_equal(0, pthread_create(&t, NULL, blocked_write_main, &bw));
    settle();
    assert_rc(0, mempipe_shutdown(f.w));
    assert_int_equal(0, pthread_join(t, NULL));
    assert_rc(-EPIPE, bw.rc);
    expect_read(f.r, "full", 4);
    fx_close(&f);
}
KIND_TESTS(R18_shutdown_interrupts_blocked_writer)

/* ------------------------------------------------------------------ */
/* R19: closing a duplex end                                           */
/* ------------------------------------------------------------------ */

static void test_R19_close_wakes_peer_reader(void **s)
{
    (void)s;
    mempipe *a, *b;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    unsigned char out[8];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(-EAGAIN, mempipe_poll_read(b, out, sizeof out, &w));
    mempipe_close(a);
    expect_calls(1, &c);
    assert_rc(0, mempipe_poll_read(b, out, sizeof out, &w));
    assert_rc(0, mempipe_poll_read(b, out, sizeof out, &w));
    mempipe_close(b);
    expect_calls(1, &c);
}

static void test_R19_close_peer_drains_then_eof(void **s)
{
    (void)s;
    mempipe *a, *b;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    unsigned char out[8];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(5, mempipe_poll_write(a, "12345", 5, NULL));
    mempipe_close(a);
    assert_int_equal(5, mempipe_readable(b));
    assert_rc(2, mempipe_poll_read(b, out, 2, &w));
    assert_memory_equal(out, "12", 2);
    expect_read(b, "345", 3);
    assert_rc(0, mempipe_poll_read(b, out, sizeof out, &w));
    mempipe_close(b);
    expect_calls(0, &c);
}

static void test_R19_close_wakes_peer_writer(void **s)
{
    (void)s;
    mempipe *a, *b;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    assert_rc(0, mempipe_duplex(3, &a, &b));
    assert_rc(3, mempipe_poll_write(b, "abc", 3, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(b, "d", 1, &w));
    mempipe_close(a);
    expect_calls(1, &c);
    assert_rc(-EPIPE, mempipe_poll_write(b, "d", 1, &w));
    assert_int_equal(0, mempipe_writable(b));
    mempipe_close(b);
    expect_calls(1, &c);
}

/* The peer's writes fail at once, even with free space. */
static void test_R19_close_peer_writes_fail_with_free_space(void **s)
{
    (void)s;
    mempipe *a, *b;
    struct iovec iov = {.iov_base = "v", .iov_len = 1};
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(1, mempipe_poll_write(b, "x", 1, NULL));
    mempipe_close(a);
    assert_int_equal(0, mempipe_writable(b));
    assert_rc(-EPIPE, mempipe_poll_write(b, "y", 1, NULL));
    assert_rc(-EPIPE, mempipe_poll_writev(b, &iov, 1, NULL));
    assert_rc(-EPIPE, mempipe_write(b, "y", 1));
    /* b's own shutdown still works and returns 0. */
    assert_rc(0, mempipe_shutdown(b));
    mempipe_close(b);
}

/* Both of the peer's parked roles are woken, each once. */
static void test_R19_close_wakes_peer_reader_and_writer(void **s)
{
    (void)s;
    mempipe *a, *b;
    struct tu_counter rc = {0}, wc = {0};
    mempipe_waker rw = tu_counter_waker(&rc), ww = tu_counter_waker(&wc);
    unsigned char out[4];
    assert_rc(0, mempipe_duplex(2, &a, &b));
    assert_rc(-EAGAIN, mempipe_poll_read(b, out, sizeof out, &rw));
    assert_rc(2, mempipe_poll_write(b, "ab", 2, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(b, "c", 1, &ww));
    mempipe_close(a);
    expect_calls(1, &rc);
    expect_calls(1, &wc);
    assert_rc(0, mempipe_poll_read(b, out, sizeof out, NULL));
    assert_rc(-EPIPE, mempipe_poll_write(b, "c", 1, NULL));
    mempipe_close(b);
    expect_calls(1, &rc);
    expect_calls(1, &wc);
}

/* ------------------------------------------------------------------ */
/* R20: closing a simplex end                                          */
/* ------------------------------------------------------------------ */

static void test_R20_close_writer_wakes_reader_eof(void **s)
{
    (void)s;
    mempipe *r, *w;
    struct tu_counter c = {0};
    mempipe_waker wk = tu_counter_waker(&c);
    unsigned char out[8];
    assert_rc(0, mempipe_simplex(8, &r, &w));
    assert_rc(-EAGAIN, mempipe_poll_read(r, out, sizeof out, &wk));
    mempipe_close(w);
    expect_calls(1, &c);
    assert_rc(0, mempipe_poll_read(r, out, sizeof out, &wk));
    mempipe_close(r);
    expect_calls(1, &c);
}

static void test_R20_close_writer_reader_drains_then_eof(void **s)
{
    (void)s;
    mempipe *r, *w;
    struct tu_counter c = {0};
    mempipe_waker wk = tu_counter_waker(&c);
    unsigned char out[8];
    assert_rc(0, mempipe_simplex(8, &r, &w));
    assert_rc(-EAGAIN, mempipe_poll_read(r, out, sizeof out, &wk));
    assert_rc(3, mempipe_poll_write(w, "end", 3, NULL));
    expect_calls(1, &c);
    mempipe_close(w);
    expect_read(r, "end", 3);
    assert_rc(0, mempipe_poll_read(r, out, sizeof out, &wk));
    assert_rc(0, mempipe_read(r, out, sizeof out));
    mempipe_close(r);
    expect_calls(1, &c);
}

static void test_R20_close_reader_wakes_writer_epipe(void **s)
{
    (void)s;
    mempipe *r, *w;
    struct tu_counter c = {0};
    mempipe_waker wk = tu_counter_waker(&c);
    assert_rc(0, mempipe_simplex(2, &r, &w));
    assert_rc(2, mempipe_poll_write(w, "ab", 2, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(w, "c", 1, &wk));
    mempipe_close(r);
    expect_calls(1, &c);
    assert_rc(-EPIPE, mempipe_poll_write(w, "c", 1, &wk));
    assert_int_equal(0, mempipe_writable(w));
    mempipe_close(w);
    expect_calls(1, &c);
}

static void test_R20_close_reader_epipe_with_free_space(void **s)
{
    (void)s;
    mempipe *r, *w;
    assert_rc(0, mempipe_simplex(64, &r, &w));
    mempipe_close(r);
    assert_rc(-EPIPE, mempipe_poll_write(w, "c", 1, NULL));
    assert_rc(-EPIPE, mempipe_write(w, "c", 1));
    assert_rc(0, mempipe_shutdown(w));
    mempipe_close(w);
}

/* A reader blocked on another thread returns EOF when the writer closes;
 * a writer blocked on another thread gets -EPIPE when the reader closes. */
struct blocked_read {
    mempipe *end;
    ssize_t rc;
};

static void *blocked_read_main(void *arg)
{
    struct blocked_read *br = arg;
    unsigned char out[8];
    br->rc = mempipe_read(br->end, out, sizeof out);
    return NULL;
}

static void test_R20_close_writer_ends_blocked_read(void **s)
{
    (void)s;
    mempipe *r, *w;
    pthread_t t;
    assert_rc(0, mempipe_simplex(8, &r, &w));
    struct blocked_read br = {r, 12345};
    assert_int_equal(0, pthread_create(&t, NULL, blocked_read_main, &br));
    settle();
    mempipe_close(w);
    assert_int_equal(0, pthread_join(t, NULL));
    assert_rc(0, br.rc);
    mempipe_close(r);
}

static void test_R20_close_reader_ends_blocked_write(void **s)
{
    (void)s;
    mempipe *r, *w;
    pthread_t t;
    assert_rc(0, mempipe_simplex(4, &r, &w));
    assert_rc(4, mempipe_poll_write(w, "full", 4, NULL));
    struct blocked_write bw = {w, 8, 12345};
    assert_int_equal(0, pthread_create(&t, NULL, blocked_write_main, &bw));
    settle();
    mempipe_close(r);
    assert_int_equal(0, pthread_join(t, NULL));
    assert_rc(-EPIPE, bw.rc);
    mempipe_close(w);
}

/* ------------------------------------------------------------------ */
/* R21: bytes written before a close reach the peer                    */
/* ------------------------------------------------------------------ */

static void R21_bytes_before_close_reach_peer(enum kind k)
{
    enum { N = 300 * 1024 };
    struct fx f;
    unsigned char *src = malloc(N), *dst = malloc(N + 1);
    assert_non_null(src);
    assert_non_null(dst);
    tu_pattern(src, N, 0, 21);
    fx_open(&f, k, N);
    size_t off = 0, step = 1000;
    while (off < N) {
        size_t len = step < N - off ? step : N - off;
        assert_rc(len, mempipe_poll_write(f.w, src + off, len, NULL));
        off += len;
        step += 777;
    }
    mempipe_close(f.w);
    assert_int_equal(N, mempipe_readable(f.r));
    off = 0;
    while (off < N) {
        ssize_t n = mempipe_poll_read(f.r, dst + off, 4099, NULL);
        assert_true(n > 0);
        off += (size_t)n;
    }
    assert_int_equal(N, off);
    assert_memory_equal(src, dst, N);
    assert_rc(0, mempipe_poll_read(f.r, dst, N, NULL));
    mempipe_close(f.r);
    free(src);
    free(dst);
}

static void test_R21_bytes_before_close_reach_peer_duplex(void **s)
{
    (void)s;
    R21_bytes_before_close_reach_peer(DUPLEX);
}

static void test_R21_bytes_before_close_reach_peer_simplex(void **s)
{
    (void)s;
    R21_bytes_before_close_reach_peer(SIMPLEX);
}

/* Bytes the closing end never read are discarded and their memory freed;
 * the bytes it sent stay for the peer. */
#define MEM_SLACK (256 * 1024)

static void test_R21_duplex_close_discards_unread(void **s)
{
    (void)s;
    enum { N = 1 << 20 };
    mempipe *a, *b;
    unsigned char *buf = malloc(N);
    assert_non_null(buf);
    tu_pattern(buf, N, 0, 4);
    assert_rc(0, mempipe_duplex(SIZE_MAX, &a, &b));
    long long base = tu_live();
    assert_rc(N, mempipe_poll_write(b, buf, N, NULL)); /* b -> a, unread */
    assert_rc(3, mempipe_poll_write(a, "a2b", 3, NULL));
    assert_true(tu_live() >= base + N);
    mempipe_close(a);
    assert_true(tu_live() <= base + MEM_SLACK);
    assert_int_equal(3, mempipe_readable(b));
    expect_read(b, "a2b", 3);
    assert_rc(0, mempipe_poll_read(b, buf, N, NULL));
    assert_rc(-EPIPE, mempipe_poll_write(b, buf, 1, NULL));
    mempipe_close(b);
    free(buf);
}

static void test_R21_simplex_reader_close_discards_unread(void **s)
{
    (void)s;
    enum { N = 1 << 20 };
    mempipe *r, *w;
    unsigned char *buf = malloc(N);
    assert_non_null(buf);
    tu_pattern(buf, N, 0, 4);
    assert_rc(0, mempipe_simplex(SIZE_MAX, &r, &w));
    long long base = tu_live();
    assert_rc(N, mempipe_poll_write(w, buf, N, NULL));
    assert_true(tu_live() >= base + N);
    mempipe_close(r);
    assert_true(tu_live() <= base + MEM_SLACK);
    assert_rc(-EPIPE, mempipe_poll_write(w, buf, 1, NULL));
    mempipe_close(w);
    free(buf);
}

static void test_R21_loopback_close_discards_unread(void **s)
{
    (void)s;
    enum { N = 1 << 20 };
    mempipe *e;
    unsigned char *buf = malloc(N);
    assert_non_null(buf);
    tu_pattern(buf, N, 0, 4);
    assert_rc(0, mempipe_loopback(SIZE_MAX, &e));
    assert_rc(N, mempipe_poll_write(e, buf, N, NULL));
    assert_true(tu_live() >= N);
    mempipe_close(e);
    assert_int_equal(0, tu_live());
    free(buf);
}

/* ------------------------------------------------------------------ */
/* R22: any order, any thread; last close frees; closed wakers silent  */
/* ------------------------------------------------------------------ */

/* Bytes buffered both ways; either end closes first; the one left sees
 * the rules of R19/R20 and the last close frees everything (teardown). */
static void close_in_order(enum kind k, int reader_first)
{
    struct fx f;
    unsigned char out[8];
    fx_open(&f, k, 1000);
    assert_rc(5, mempipe_poll_write(f.w, "hello", 5, NULL));
    if (k == DUPLEX)
        assert_rc(5, mempipe_poll_write(f.r, "world", 5, NULL));
    assert_true(tu_live() > 0);
    if (k == LOOPBACK) {
        mempipe_close(f.w);
        return;
    }
    if (reader_first) {
        mempipe_close(f.r);
        assert_true(tu_live() > 0); /* the writer end still holds the core */
        assert_rc(-EPIPE, mempipe_poll_write(f.w, "x", 1, NULL));
        if (k == DUPLEX) {
            expect_read(f.w, "world", 5);
            assert_rc(0, mempipe_poll_read(f.w, out, sizeof out, NULL));
        }
        mempipe_close(f.w);
    } else {
        mempipe_close(f.w);
        assert_true(tu_live() > 0);
        expect_read(f.r, "hello", 5);
        assert_rc(0, mempipe_poll_read(f.r, out, sizeof out, NULL));
        if (k == DUPLEX)
            assert_rc(-EPIPE, mempipe_poll_write(f.r, "x", 1, NULL));
        mempipe_close(f.r);
    }
}

static void test_R22_close_reader_side_first_duplex(void **s)
{
    (void)s;
    close_in_order(DUPLEX, 1);
}

static void test_R22_close_writer_side_first_duplex(void **s)
{
    (void)s;
    close_in_order(DUPLEX, 0);
}

static void test_R22_close_reader_first_simplex(void **s)
{
    (void)s;
    close_in_order(SIMPLEX, 1);
}

static void test_R22_close_writer_first_simplex(void **s)
{
    (void)s;
    close_in_order(SIMPLEX, 0);
}

static void test_R22_close_with_bytes_loopback(void **s)
{
    (void)s;
    close_in_order(LOOPBACK, 0);
}

/* Each end closed on its own thread, at the same time. */
struct closer {
    mempipe *end;
    atomic_int *go;
};

static void *closer_main(void *arg)
{
    struct closer *c = arg;
    while (!atomic_load(c->go))
        ;
    mempipe_close(c->end);
    return NULL;
}

static void R22_close_from_two_threads(enum kind k)
{
    enum { ROUNDS = 200 };
    for (int i = 0; i < ROUNDS; i++) {
        struct fx f;
        atomic_int go = 0;
        pthread_t t1, t2;
        unsigned char out[4];
        fx_open(&f, k, 16);
        assert_rc(3, mempipe_poll_write(f.w, "abc", 3, NULL));
        if (k == DUPLEX)
            assert_rc(-EAGAIN, mempipe_poll_read(f.w, out, sizeof out, NULL));
        struct closer c1 = {f.w, &go}, c2 = {f.r, &go};
        assert_int_equal(0, pthread_create(&t1, NULL, closer_main, &c1));
        assert_int_equal(0, pthread_create(&t2, NULL, closer_main, &c2));
        atomic_store(&go, 1);
        assert_int_equal(0, pthread_join(t1, NULL));
        assert_int_equal(0, pthread_join(t2, NULL));
        assert_int_equal(0, tu_live());
    }
}

static void test_R22_close_from_two_threads_duplex(void **s)
{
    (void)s;
    R22_close_from_two_threads(DUPLEX);
}

static void test_R22_close_from_two_threads_simplex(void **s)
{
    (void)s;
    R22_close_from_two_threads(SIMPLEX);
}

/* A loopback closed on a thread other than the one that made it. */
static void test_R22_close_on_other_thread_loopback(void **s)
{
    (void)s;
    mempipe *e;
    atomic_int go = 1;
    pthread_t t;
    assert_rc(0, mempipe_loopback(16, &e));
    assert_rc(2, mempipe_poll_write(e, "lo", 2, NULL));
    struct closer c = {e, &go};
    assert_int_equal(0, pthread_create(&t, NULL, closer_main, &c));
    assert_int_equal(0, pthread_join(t, NULL));
    assert_int_equal(0, tu_live());
}

/* The closed end's wakers are never called by the peer's later events. */
static void test_R22_closed_end_wakers_never_called_duplex(void **s)
{
    (void)s;
    mempipe *a, *b;
    struct tu_counter rc = {0}, wc = {0};
    mempipe_waker rw = tu_counter_waker(&rc), ww = tu_counter_waker(&wc);
    unsigned char out[4];
    assert_rc(0, mempipe_duplex(2, &a, &b));
    assert_rc(-EAGAIN, mempipe_poll_read(a, out, sizeof out, &rw));
    assert_rc(2, mempipe_poll_write(a, "ab", 2, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "c", 1, &ww));
    mempipe_close(a);
    /* Each would have called a stored waker of a's. */
    assert_rc(-EPIPE, mempipe_poll_write(b, "x", 1, NULL));
    assert_rc(1, mempipe_poll_read(b, out, 1, NULL)); /* frees space */
    assert_rc(0, mempipe_shutdown(b));
    assert_rc(1, mempipe_poll_read(b, out, sizeof out, NULL));
    mempipe_close(b);
    expect_calls(0, &rc);
    expect_calls(0, &wc);
}

static void test_R22_closed_end_wakers_never_called_simplex(void **s)
{
    (void)s;
    mempipe *r, *w;
    struct tu_counter rc = {0}, wc = {0};
    mempipe_waker rw = tu_counter_waker(&rc), ww = tu_counter_waker(&wc);
    unsigned char out[4];

    /* The reader's waker, then the reader closes; the writer acts. */
    assert_rc(0, mempipe_simplex(2, &r, &w));
    assert_rc(-EAGAIN, mempipe_poll_read(r, out, sizeof out, &rw));
    mempipe_close(r);
    assert_rc(-EPIPE, mempipe_poll_write(w, "x", 1, NULL));
    assert_rc(0, mempipe_shutdown(w));
    mempipe_close(w);
    expect_calls(0, &rc);

    /* The writer's waker, then the writer closes; the reader acts. */
    assert_rc(0, mempipe_simplex(2, &r, &w));
    assert_rc(2, mempipe_poll_write(w, "ab", 2, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(w, "c", 1, &ww));
    mempipe_close(w);
    expect_read(r, "ab", 2);
    assert_rc(0, mempipe_poll_read(r, out, sizeof out, NULL));
    mempipe_close(r);
    expect_calls(0, &wc);
}

static void test_R22_closed_end_wakers_never_called_loopback(void **s)
{
    (void)s;
    mempipe *e;
    struct tu_counter rc = {0}, wc = {0};
    mempipe_waker rw = tu_counter_waker(&rc), ww = tu_counter_waker(&wc);
    unsigned char out[4];
    assert_rc(0, mempipe_loopback(2, &e));
    assert_rc(-EAGAIN, mempipe_poll_read(e, out, sizeof out, &rw));
    mempipe_close(e); /* its own write-close must not call its reader */
    expect_calls(0, &rc);
    assert_rc(0, mempipe_loopback(2, &e));
    assert_rc(2, mempipe_poll_write(e, "ab", 2, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(e, "c", 1, &ww));
    mempipe_close(e); /* nor its writer */
    expect_calls(0, &wc);
}

/* A waker of b running on another thread: close(b) waits for it. */
struct slow_waker {
    atomic_int entered;
    atomic_int returned;
};

static void slow_wake(void *ctx)
{
    struct slow_waker *sw = ctx;
    atomic_store(&sw->entered, 1);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_store(&sw->returned, 1);
}

/* cmocka asserts only on the main thread: the result is checked there. */
static void *write_one_main(void *arg)
{
    struct blocked_write *bw = arg;
    bw->rc = mempipe_poll_write(bw->end, "!", 1, NULL);
    return NULL;
}

static void test_R22_close_waits_for_running_waker(void **s)
{
    (void)s;
    mempipe *a, *b;
    struct slow_waker sw = {0, 0};
    mempipe_waker w = {slow_wake, &sw};
    unsigned char out[4];
    pthread_t t;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(-EAGAIN, mempipe_poll_read(b, out, sizeof out, &w));
    struct blocked_write bw = {a, 1, 12345};
    assert_int_equal(0, pthread_create(&t, NULL, write_one_main, &bw));
    while (!atomic_load(&sw.entered))
        sched_yield();
    mempipe_close(b);
    /* Once close returned, no waker of b is running. */
    assert_int_equal(1, atomic_load(&sw.returned));
    assert_int_equal(0, pthread_join(t, NULL));
    assert_rc(1, bw.rc);
    mempipe_close(a);
}

static void test_R22_close_null_is_noop(void **s)
{
    (void)s;
    mempipe_close(NULL);
    mempipe_close(NULL);
    assert_int_equal(0, tu_live());
}

#define ALLOC_TEST(t)                                                          \
    cmocka_unit_test_setup_teardown(t, tu_alloc_setup, tu_alloc_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        KIND_ENTRIES(R17_shutdown_wakes_parked_reader),
        KIND_ENTRIES(R17_shutdown_keeps_buffered_bytes),
        KIND_ENTRIES(R17_poll_shutdown_never_stores_waker),
        cmocka_unit_test(test_R17_shutdown_after_peer_gone_duplex),
        cmocka_unit_test(test_R17_shutdown_after_peer_gone_simplex),
        cmocka_unit_test(test_R17_duplex_other_direction_stays_open),
        KIND_ENTRIES(R18_shutdown_wakes_parked_writer),
        KIND_ENTRIES(R18_shutdown_interrupts_blocked_writer),
        cmocka_unit_test(test_R19_close_wakes_peer_reader),
        cmocka_unit_test(test_R19_close_peer_drains_then_eof),
        cmocka_unit_test(test_R19_close_wakes_peer_writer),
        cmocka_unit_test(test_R19_close_peer_writes_fail_with_free_space),
        cmocka_unit_test(test_R19_close_wakes_peer_reader_and_writer),
        cmocka_unit_test(test_R20_close_writer_wakes_reader_eof),
        cmocka_unit_test(test_R20_close_writer_reader_drains_then_eof),
        cmocka_unit_test(test_R20_close_reader_wakes_writer_epipe),
        cmocka_unit_test(test_R20_close_reader_epipe_with_free_space),
        cmocka_unit_test(test_R20_close_writer_ends_blocked_read),
        cmocka_unit_test(test_R20_close_reader_ends_blocked_write),
        cmocka_unit_test(test_R21_bytes_before_close_reach_peer_duplex),
        cmocka_unit_test(test_R21_bytes_before_close_reach_peer_simplex),
        ALLOC_TEST(test_R21_duplex_close_discards_unread),
        ALLOC_TEST(test_R21_simplex_reader_close_discards_unread),
        ALLOC_TEST(test_R21_loopback_close_discards_unread),
        ALLOC_TEST(test_R22_close_reader_side_first_duplex),
        ALLOC_TEST(test_R22_close_writer_side_first_duplex),
        ALLOC_TEST(test_R22_close_reader_first_simplex),
        ALLOC_TEST(test_R22_close_writer_first_simplex),
        ALLOC_TEST(test_R22_close_with_bytes_loopback),
        ALLOC_TEST(test_R22_close_from_two_threads_duplex),
        ALLOC_TEST(test_R22_close_from_two_threads_simplex),
        ALLOC_TEST(test_R22_close_on_other_thread_loopback),
        ALLOC_TEST(test_R22_closed_end_wakers_never_called_duplex),
        ALLOC_TEST(test_R22_closed_end_wakers_never_called_simplex),
        ALLOC_TEST(test_R22_closed_end_wakers_never_called_loopback),
        ALLOC_TEST(test_R22_close_waits_for_running_waker),
        ALLOC_TEST(test_R22_close_null_is_noop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
