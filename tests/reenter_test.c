/* SPDX-License-Identifier: MIT */
/*
 * Wakers that re-enter the library from the thread that woke them (R24):
 * registering again, writing (to the peer and on the end whose call woke
 * them), closing the peer, closing the very end they belong to, and wakers
 * nested inside wakers deeper than any fixed bookkeeping. First on one
 * thread, where every wake runs inside the caller's own call, then on two,
 * where wakers of one end run on both threads of the other.
 *
 * A re-entry bug shows up as a deadlock (a watchdog aborts after 10 s), a
 * crash or a use-after-free (ASan), a data race (TSan) or a wrong byte.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* One thread. */

/* A reader waker that drains its end and registers itself again. */
struct drain {
    mempipe *end;
    mempipe_waker self;
    unsigned char got[256];
    size_t ngot;
    int calls;
    int eof;
};

static void drain_wake(void *ctx)
{
    struct drain *d = ctx;
    d->calls++;
    for (;;) {
        ssize_t n = mempipe_poll_read(d->end, d->got + d->ngot,
                                      sizeof d->got - d->ngot, &d->self);
        if (n == -EAGAIN)
            return; /* registered again, from inside the wake (R23, R24) */
        if (n == 0) {
            d->eof = 1;
            return;
        }
        T_CHECK(n > 0, "poll_read returned %zd", n);
        d->ngot += (size_t)n;
    }
}

static void test_R24_waker_registers_again_from_the_wake(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    struct drain d = {.end = a};
    d.self = (mempipe_waker){drain_wake, &d};
    drain_wake(&d); /* the first registration */
    assert_rc(0, d.ngot);
    unsigned char src[200];
    tu_pattern(src, sizeof src, 0, 42);
    size_t sent = 0;
    while (sent < sizeof src) {
        size_t len = 1 + sent % 4;
        if (len > sizeof src - sent)
            len = sizeof src - sent;
        /* The wake runs inside this call and drains, so the pipe never
         * fills and every write is accepted whole. */
        assert_rc(len, mempipe_poll_write(b, src + sent, len, NULL));
        sent += len;
        assert_rc(sent, d.ngot);
    }
    assert_memory_equal(src, d.got, sizeof src);
    assert_rc(0, mempipe_shutdown(b)); /* wakes it once more: EOF (R17) */
    assert_rc(1, d.eof);
    int calls = d.calls;
    assert_rc(1, mempipe_poll_write(a, "z", 1, NULL));
    assert_rc(calls, d.calls); /* nothing registered after EOF */
    mempipe_close(a);
    mempipe_close(b);
}

/* A reader waker of a that answers on a (a write to the peer, b). */
struct echo1 {
    mempipe *end;
    mempipe_waker self;
    int replies;
};

static void echo1_wake(void *ctx)
{
    struct echo1 *e = ctx;
    unsigned char c;
    ssize_t n;
    while ((n = mempipe_poll_read(e->end, &c, 1, &e->self)) == 1) {
        c = (unsigned char)(c ^ 0xFF);
        T_RC(1, mempipe_poll_write(e->end, &c, 1, NULL));
        e->replies++;
    }
    T_CHECK(n == -EAGAIN || n == 0, "poll_read returned %zd", n);
}

static void test_R24_waker_writes_to_the_other_end(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    struct echo1 e = {.end = a};
    e.self = (mempipe_waker){echo1_wake, &e};
    echo1_wake(&e);
    struct tu_counter bc = {0};
    mempipe_waker bw = tu_counter_waker(&bc);
    for (int i = 0; i < 1000; i++) {
        unsigned char c = (unsigned char)i, r = 0;
        /* b's reader waits; a's waker answers inside b's write, and its
         * write wakes b's reader: a wake nested in a wake. */
        assert_rc(-EAGAIN, mempipe_poll_read(b, &r, 1, &bw));
        assert_rc(1, mempipe_poll_write(b, &c, 1, NULL));
        assert_rc(i + 1, tu_calls(&bc));
        assert_rc(1, mempipe_poll_read(b, &r, 1, NULL));
        assert_rc((unsigned char)(c ^ 0xFF), r);
    }
    assert_rc(1000, e.replies);
    mempipe_close(b);
    mempipe_close(a);
}

/*
 * A chain: a's reader waker drains a, registers again, then writes one more
 * byte on b, the end whose write is running this very wake, which wakes it
 * again, nested. Depth `depth`; at the bottom it may close a, the end the
 * waker belongs to, from inside `depth` nested calls of its own slot.
 */
struct chain {
    mempipe *a, *b;
    mempipe_waker self;
    int left;
    int depth, max_depth;
    int close_at_bottom;
    int closed;
    size_t got;
};

static void chain_wake(void *ctx)
{
    struct chain *c = ctx;
    if (c->closed)
        return; /* a is closed: never touch it again */
    c->depth++;
    if (c->depth > c->max_depth)
        c->max_depth = c->depth;
    unsigned char buf[64];
    ssize_t n;
    while ((n = mempipe_poll_read(c->a, buf, sizeof buf, &c->self)) > 0) {
        T_RC(-1, tu_check_pattern(buf, (size_t)n, c->got, 7));
        c->got += (size_t)n;
    }
    T_RC(-EAGAIN, n);
    if (c->left > 0) {
        unsigned char byte;
        tu_pattern(&byte, 1, c->got, 7);
        c->left--;
        T_RC(1, mempipe_poll_write(c->b, &byte, 1, NULL)); /* re-wakes us */
    } else if (c->close_at_bottom) {
        c->closed = 1;
        mempipe_close(c->a); /* must not wait for the wakes around it */
    }
    c->depth--;
}

static void chain(int len, int close_at_bottom)
{
    mempipe *a = NULL, *b = NULL;
    assert_rc(0, mempipe_duplex(4096, &a, &b));
    struct chain c = {
        .a = a, .b = b, .left = len - 1, .close_at_bottom = close_at_bottom};
    c.self = (mempipe_waker){chain_wake, &c};
    unsigned char first;
    assert_rc(-EAGAIN, mempipe_poll_read(a, &first, 1, &c.self));
    tu_pattern(&first, 1, 0, 7);
    assert_rc(1, mempipe_poll_write(b, &first, 1, NULL));
    assert_rc(len, c.max_depth);
    assert_rc(0, c.depth);
    if (close_at_bottom) {
        /* a closed inside the chain: b's writes fail, b reads EOF (R19). */
        assert_rc(-EPIPE, mempipe_poll_write(b, "x", 1, NULL));
        assert_rc(0, mempipe_poll_read(b, &first, 1, NULL));
        mempipe_close(b);
        return;
    }
    assert_rc((size_t)len, c.got);
    mempipe_close(a);
    mempipe_close(b);
}

static void test_R24_nested_wakes_on_the_waking_end(void **state)
{
    (void)state;
    chain(8, 0);
    chain(64, 0); /* deeper than the library's nesting record (16) */
}

static void test_R24_nested_waker_closes_its_own_end_shallow(void **state)
{
    (void)state;
    chain(1, 1);
    chain(8, 1);
}

static void test_R24_nested_waker_closes_its_own_end_deep(void **state)
{
    (void)state;
    tu_watchdog_start("close from a waker nested 40 deep");
    chain(40, 1);
    atomic_fetch_add(&tu_progress, 1);
    tu_watchdog_end();
}

/* A waker that closes an end: its own, or the peer. */
struct closing {
    mempipe *victim;
    atomic_int calls;
    struct tu_park *notify; /* optional: wake a waiting thread afterwards */
};

static void closing_wake(void *ctx)
{
    struct closing *c = ctx;
    atomic_fetch_add(&c->calls, 1);
    mempipe_close(c->victim);
    if (c->notify != NULL)
        tu_park_wake(c->notify);
}

static void test_R24_reader_waker_closes_its_own_end(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    unsigned char c = 0;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    struct closing cl = {.victim = a};
    mempipe_waker w = {closing_wake, &cl};
    assert_rc(-EAGAIN, mempipe_poll_read(a, &c, 1, &w));
    assert_rc(1, mempipe_poll_write(b, "x", 1, NULL)); /* a closes inside */
    assert_rc(1, atomic_load(&cl.calls));
    assert_rc(-EPIPE, mempipe_poll_write(b, "y", 1, NULL)); /* R19 */
    assert_rc(0, mempipe_poll_read(b, &c, 1, NULL));
    mempipe_close(b);
}

static void test_R24_writer_waker_closes_its_own_end(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    unsigned char buf[4];
    assert_rc(0, mempipe_duplex(4, &a, &b));
    struct closing cl = {.victim = a};
    mempipe_waker w = {closing_wake, &cl};
    assert_rc(4, mempipe_poll_write(a, "abcd", 4, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "e", 1, &w));
    assert_rc(2, mempipe_poll_read(b, buf, 2, NULL)); /* a closes inside */
    assert_rc(1, atomic_load(&cl.calls));
    /* Written before the close: still there, then EOF (R21). */
    assert_rc(2, mempipe_poll_read(b, buf, 4, NULL));
    assert_memory_equal(buf, "cd", 2);
    assert_rc(0, mempipe_poll_read(b, buf, 4, NULL));
    mempipe_close(b);
}

static void test_R24_reader_waker_closes_the_peer(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    unsigned char c = 0;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    struct closing cl = {.victim = b};
    mempipe_waker w = {closing_wake, &cl};
    assert_rc(-EAGAIN, mempipe_poll_read(a, &c, 1, &w));
    /* b's write wakes a's reader, whose waker closes b: the write's return
     * is b's last use. */
    assert_rc(1, mempipe_poll_write(b, "x", 1, NULL));
    assert_rc(1, atomic_load(&cl.calls));
    assert_rc(1, mempipe_poll_read(a, &c, 1, NULL)); /* R21 */
    assert_rc('x', c);
    assert_rc(0, mempipe_poll_read(a, &c, 1, NULL)); /* then EOF */
    assert_rc(-EPIPE, mempipe_poll_write(a, "y", 1, NULL));
    mempipe_close(a);
}

/* The peer's close wakes a's reader, whose waker closes a: the last close
 * happens inside the first one. */
static void test_R24_peer_close_wakes_a_waker_that_closes_its_end(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        mempipe *a = NULL, *b = NULL;
        unsigned char c = 0;
        if (kind == 0)
            assert_rc(0, mempipe_duplex(4, &a, &b));
        else
            assert_rc(0, mempipe_simplex(4, &a, &b)); /* a reads */
        struct closing cl = {.victim = a};
        mempipe_waker w = {closing_wake, &cl};
        assert_rc(-EAGAIN, mempipe_poll_read(a, &c, 1, &w));
        mempipe_close(b);
        assert_rc(1, atomic_load(&cl.calls));
    }
}

/* ------------------------------------------------------------------------ */
/* Two threads. */

#define TWO_ITERS 300

struct poke {
    mempipe *b;
    int how; /* 0: write, 1: shutdown, 2: close */
    uint64_t rng;
};

static void *poke_thread(void *arg)
{
    struct poke *p = arg;
    struct timespec ts = {0, (long)(tu_rand(&p->rng) % 100) * 1000};
    nanosleep(&ts, NULL);
    if (p->how == 0)
        T_RC(1, mempipe_poll_write(p->b, "x", 1, NULL));
    else if (p->how == 1)
        T_RC(0, mempipe_shutdown(p->b));
    else
        mempipe_close(p->b);
    return NULL;
}

/*
 * This thread registers a waker on a, then waits; the other thread's write,
 * shutdown or close of b runs the waker there, and the waker closes a (its
 * own end) or b (the peer, only after a write: the write's return is b's
 * last use).
 */
static void test_R24_two_threads_waker_closes_an_end(void **state)
{
    (void)state;
    tu_watchdog_start("two threads: waker closes an end");
    uint64_t rng = 99;
    for (int it = 0; it < TWO_ITERS; it++) {
        mempipe *a = NULL, *b = NULL;
        unsigned char c = 0;
        assert_rc(0, mempipe_duplex(4, &a, &b));
        struct tu_park pk;
        tu_park_init(&pk);
        int how = it % 3;
        int close_peer = how == 0 && (it / 3) % 2;
        struct closing cl = {.victim = close_peer ? b : a, .notify = &pk};
        mempipe_waker w = {closing_wake, &cl};
        unsigned seen = tu_park_prepare(&pk);
        assert_rc(-EAGAIN, mempipe_poll_read(a, &c, 1, &w));
        struct poke p = {b, how, tu_rand(&rng)};
        pthread_t t;
        assert_int_equal(0, pthread_create(&t, NULL, poke_thread, &p));
        tu_park_wait(&pk, seen); /* no call on a in progress meanwhile */
        pthread_join(t, NULL);
        assert_rc(1, atomic_load(&cl.calls));
        if (close_peer) {
            assert_rc(1, mempipe_poll_read(a, &c, 1, NULL));
            assert_rc(0, mempipe_poll_read(a, &c, 1, NULL));
            mempipe_close(a);
        } else if (how != 2) {
            assert_rc(-EPIPE, mempipe_poll_write(b, "y", 1, NULL));
            mempipe_close(b);
        }
        tu_park_destroy(&pk);
        atomic_fetch_add(&tu_progress, 1);
    }
    tu_watchdog_end();
}

/*
 * An echo server driven only by wakers, as an executor would: a's reader and
 * writer wakers both run a pump, serialized by a try-lock with a "run again"
 * flag, so the pump runs on whichever thread woke it and re-enters the
 * library from there. One thread writes into b (its writes wake a's reader),
 * another reads b (its reads wake a's writer); every byte must come back.
 */
#define ECHO_BYTES (256 * 1024)

struct echo {
    mempipe *a;
    mempipe_waker self;
    atomic_int running, pending;
    unsigned char buf[100];
    size_t have, off;
    int eof, done;
    atomic_int wakes_t1, wakes_t2;
};

static _Thread_local int thread_id;

static void pump(struct echo *e)
{
    for (;;) {
        if (e->off < e->have) {
            ssize_t n = mempipe_poll_write(e->a, e->buf + e->off,
                                           e->have - e->off, &e->self);
            if (n == -EAGAIN)
                return;
            T_CHECK(n > 0, "poll_write returned %zd", n);
            e->off += (size_t)n;
            continue;
        }
        if (e->eof) {
            if (!e->done)
                T_RC(0, mempipe_shutdown(e->a));
            e->done = 1;
            return;
        }
        ssize_t n = mempipe_poll_read(e->a, e->buf, sizeof e->buf, &e->self);
        if (n == -EAGAIN)
            return;
        T_CHECK(n >= 0, "poll_read returned %zd", n);
        if (n == 0)
            e->eof = 1;
        e->have = (size_t)n;
        e->off = 0;
    }
}

static void echo_wake(void *ctx)
{
    struct echo *e = ctx;
    if (thread_id == 1)
        atomic_fetch_add(&e->wakes_t1, 1);
    if (thread_id == 2)
        atomic_fetch_add(&e->wakes_t2, 1);
    atomic_store(&e->pending, 1);
    while (atomic_load(&e->pending)) {
        int idle = 0;
        if (!atomic_compare_exchange_strong(&e->running, &idle, 1))
            return; /* the pump is running (maybe around us): it re-runs */
        atomic_store(&e->pending, 0);
        pump(e);
        atomic_store(&e->running, 0);
    }
}

struct echo_side {
    mempipe *b;
    size_t done;
};

static void *echo_writer(void *arg)
{
    struct echo_side *s = arg;
    thread_id = 1;
    unsigned char buf[777];
    while (s->done < ECHO_BYTES) {
        size_t len = sizeof buf;
        if (len > ECHO_BYTES - s->done)
            len = ECHO_BYTES - s->done;
        tu_pattern(buf, len, s->done, 5);
        T_RC(len, mempipe_write(s->b, buf, len));
        s->done += len;
    }
    T_RC(0, mempipe_shutdown(s->b));
    return NULL;
}

static void *echo_reader(void *arg)
{
    struct echo_side *s = arg;
    thread_id = 2;
    unsigned char buf[333];
    ssize_t n;
    while ((n = mempipe_read(s->b, buf, sizeof buf)) > 0) {
        long bad = tu_check_pattern(buf, (size_t)n, s->done, 5);
        T_CHECK(bad < 0, "echoed byte %zu is wrong", s->done + (size_t)bad);
        s->done += (size_t)n;
        atomic_fetch_add_explicit(&tu_progress, 1, memory_order_relaxed);
    }
    T_RC(0, n);
    return NULL;
}

static void test_R24_two_threads_echo_driven_by_wakers(void **state)
{
    (void)state;
    tu_watchdog_start("two threads: echo driven by wakers");
    mempipe *a = NULL, *b = NULL;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    struct echo *e = calloc(1, sizeof *e);
    assert_non_null(e);
    e->a = a;
    e->self = (mempipe_waker){echo_wake, e};
    echo_wake(e); /* the first registration */
    struct echo_side w = {b, 0}, r = {b, 0};
    pthread_t tw, tr;
    assert_int_equal(0, pthread_create(&tw, NULL, echo_writer, &w));
    assert_int_equal(0, pthread_create(&tr, NULL, echo_reader, &r));
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    tu_watchdog_end();
    assert_rc(ECHO_BYTES, r.done);
    assert_rc(1, e->done);
    /* The pump ran on both threads. */
    assert_true(atomic_load(&e->wakes_t1) > 0);
    assert_true(atomic_load(&e->wakes_t2) > 0);
    printf("echo by wakers: %d bytes, pump woken %d times on the writer "
           "thread, %d on the reader thread\n",
           ECHO_BYTES, atomic_load(&e->wakes_t1), atomic_load(&e->wakes_t2));
    fflush(stdout);
    mempipe_close(a);
    mempipe_close(b);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R24_waker_registers_again_from_the_wake),
        cmocka_unit_test(test_R24_waker_writes_to_the_other_end),
        cmocka_unit_test(test_R24_nested_wakes_on_the_waking_end),
        cmocka_unit_test(test_R24_nested_waker_closes_its_own_end_shallow),
        cmocka_unit_test(test_R24_reader_waker_closes_its_own_end),
        cmocka_unit_test(test_R24_writer_waker_closes_its_own_end),
        cmocka_unit_test(test_R24_reader_waker_closes_the_peer),
        cmocka_unit_test(test_R24_peer_close_wakes_a_waker_that_closes_its_end),
        cmocka_unit_test(test_R24_two_threads_waker_closes_an_end),
        cmocka_unit_test(test_R24_two_threads_echo_driven_by_wakers),
        cmocka_unit_test(test_R24_nested_waker_closes_its_own_end_deep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
