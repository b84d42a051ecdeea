/* SPDX-License-Identifier: MIT */
/*
 * Ping-pong: the lost-wakeup hunt. One byte at a time goes back and forth
 * through capacity-1 pipes, so every single transfer meets an empty or full
 * pipe and the waiting side must park and be woken (R6, R7, R11, R13, R25).
 * A lost wakeup anywhere shows up as a hang; a watchdog thread turns a hang
 * into an abort with a message after 10 s without a round trip, well before
 * the CTest timeout.
 *
 * Variants: both sides poll with the tests' parking waker (tu_park, a
 * condvar parker) on one duplex; the same over a pair of simplex pipes; one
 * side blocking (mempipe_read/mempipe_write, R29) against a polling side; a
 * loopback driven by one thread alternating (checking each wake is
 * delivered exactly once); and a loopback with its reader and writer on two
 * threads (R26).
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS 100000

/* ------------------------------------------------------------------------ */

/* One side of a ping-pong: it writes one pipe and reads another. */
struct side {
    mempipe *wend, *rend;
    int blocking; /* 1: mempipe_read/_write; 0: poll + park */
    int pinger;
    struct tu_park wpark, rpark;
    long rounds; /* completed */
};

static void send1(struct side *s, unsigned char v)
{
    if (s->blocking) {
        T_RC(1, mempipe_write(s->wend, &v, 1));
        return;
    }
    mempipe_waker w = {tu_park_wake, &s->wpark};
    for (;;) {
        unsigned seen = tu_park_prepare(&s->wpark);
        ssize_t n = mempipe_poll_write(s->wend, &v, 1, &w);
        if (n != -EAGAIN) {
            T_RC(1, n);
            return;
        }
        tu_park_wait(&s->wpark, seen);
    }
}

static ssize_t recv1(struct side *s, unsigned char *v)
{
    if (s->blocking)
        return mempipe_read(s->rend, v, 1);
    mempipe_waker w = {tu_park_wake, &s->rpark};
    for (;;) {
        unsigned seen = tu_park_prepare(&s->rpark);
        ssize_t n = mempipe_poll_read(s->rend, v, 1, &w);
        if (n != -EAGAIN)
            return n;
        tu_park_wait(&s->rpark, seen);
    }
}

/* The reply differs from the ping, so a stale or echoed byte is caught. */
static unsigned char pong_of(long i)
{
    return (unsigned char)(i * 7 + 3);
}

static void *side_main(void *arg)
{
    struct side *s = arg;
    unsigned char v = 0;
    for (long i = 0; i < ROUNDS; i++) {
        if (s->pinger) {
            send1(s, (unsigned char)i);
            T_RC(1, recv1(s, &v));
            T_RC(pong_of(i), v);
            atomic_fetch_add_explicit(&tu_progress, 1, memory_order_relaxed);
        } else {
            T_RC(1, recv1(s, &v));
            T_RC((unsigned char)i, v);
            send1(s, pong_of(i));
        }
        s->rounds = i + 1;
    }
    if (s->pinger)
        T_RC(0, mempipe_shutdown(s->wend)); /* the ponger then sees EOF */
    else
        T_RC(0, recv1(s, &v)); /* R5, R17 */
    return NULL;
}

/*
 * Runs a pinger and a ponger on two threads. a_w/a_r: the pipes the pinger
 * writes and reads; b_w/b_r: the ponger's.
 */
static void run_pair(const char *name, mempipe *a_w, mempipe *a_r,
                     int a_blocking, mempipe *b_w, mempipe *b_r, int b_blocking,
                     mempipe **ends, int nends)
{
    struct side sa = {
        .wend = a_w, .rend = a_r, .blocking = a_blocking, .pinger = 1};
    struct side sb = {
        .wend = b_w, .rend = b_r, .blocking = b_blocking, .pinger = 0};
    tu_park_init(&sa.wpark);
    tu_park_init(&sa.rpark);
    tu_park_init(&sb.wpark);
    tu_park_init(&sb.rpark);
    tu_watchdog_start(name);
    double t0 = tu_now();
    pthread_t ta, tb;
    assert_int_equal(0, pthread_create(&ta, NULL, side_main, &sa));
    assert_int_equal(0, pthread_create(&tb, NULL, side_main, &sb));
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    double secs = tu_now() - t0;
    tu_watchdog_end();
    assert_rc(ROUNDS, sa.rounds);
    assert_rc(ROUNDS, sb.rounds);
    printf("%-28s %d round trips, %6.2f s, %6.2f us per round trip\n", name,
           ROUNDS, secs, secs * 1e6 / ROUNDS);
    fflush(stdout);
    /* The ends close before the parkers go: close waits for a waker still
     * running on another thread and drops the stored ones (R22). */
    for (int i = 0; i < nends; i++)
        mempipe_close(ends[i]);
    tu_park_destroy(&sa.wpark);
    tu_park_destroy(&sa.rpark);
    tu_park_destroy(&sb.wpark);
    tu_park_destroy(&sb.rpark);
}

static void test_R25_pingpong_duplex_cap1_poll_both(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    assert_rc(0, mempipe_duplex(1, &a, &b));
    mempipe *ends[] = {a, b};
    run_pair("duplex poll/poll", a, a, 0, b, b, 0, ends, 2);
}

static void test_R29_pingpong_duplex_cap1_blocking_vs_poll(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    assert_rc(0, mempipe_duplex(1, &a, &b));
    mempipe *ends[] = {a, b};
    run_pair("duplex blocking/poll", a, a, 1, b, b, 0, ends, 2);
}

static void test_R29_pingpong_duplex_cap1_poll_vs_blocking(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    assert_rc(0, mempipe_duplex(1, &a, &b));
    mempipe *ends[] = {a, b};
    run_pair("duplex poll/blocking", a, a, 0, b, b, 1, ends, 2);
}

static void test_R25_pingpong_simplex_pair_cap1_poll(void **state)
{
    (void)state;
    mempipe *r1 = NULL, *w1 = NULL, *r2 = NULL, *w2 = NULL;
    assert_rc(0, mempipe_simplex(1, &r1, &w1)); /* pinger -> ponger */
    assert_rc(0, mempipe_simplex(1, &r2, &w2)); /* ponger -> pinger */
    mempipe *ends[] = {w1, r1, w2, r2};
    run_pair("simplex pair poll/poll", w1, r2, 0, w2, r1, 0, ends, 4);
}

/*
 * One thread alternates on a loopback of capacity 1, parking nowhere but
 * checking each wake: every Pending result must see its waker called exactly
 * once by the next progress (R7, R13, R23, R25).
 */
static void test_R25_pingpong_loopback_one_thread(void **state)
{
    (void)state;
    mempipe *e = NULL;
    struct tu_counter rc = {0}, wc = {0};
    mempipe_waker rw = tu_counter_waker(&rc), ww = tu_counter_waker(&wc);
    unsigned char v = 0, x = 0xEE;
    assert_rc(0, mempipe_loopback(1, &e));
    double t0 = tu_now();
    for (long i = 0; i < ROUNDS; i++) {
        unsigned char b = (unsigned char)i;
        assert_rc(-EAGAIN, mempipe_poll_read(e, &v, 1, &rw)); /* R6 */
        assert_rc(i, tu_calls(&rc));
        assert_rc(1, mempipe_poll_write(e, &b, 1, NULL));
        assert_rc(i + 1, tu_calls(&rc)); /* R13: woken once */
        assert_rc(-EAGAIN, mempipe_poll_write(e, &x, 1, &ww)); /* R11 */
        assert_rc(i, tu_calls(&wc));
        assert_rc(1, mempipe_poll_read(e, &v, 1, NULL));
        assert_rc(b, v);
        assert_rc(i + 1, tu_calls(&wc)); /* R7: woken once */
    }
    double secs = tu_now() - t0;
    /* No stray call afterwards: each registration was called once. */
    assert_rc(0, mempipe_shutdown(e));
    assert_rc(ROUNDS, tu_calls(&rc));
    assert_rc(ROUNDS, tu_calls(&wc));
    assert_rc(0, mempipe_poll_read(e, &v, 1, &rw));
    mempipe_close(e);
    printf("%-28s %d round trips, %6.2f s, %6.2f us per round trip\n",
           "loopback one thread", ROUNDS, secs, secs * 1e6 / ROUNDS);
    fflush(stdout);
}

/* A loopback with its writer and its reader on two threads (R26). */
struct lb {
    mempipe *e;
    struct tu_park wpark, rpark;
    long got;
};

static void *lb_writer(void *arg)
{
    struct lb *l = arg;
    mempipe_waker w = {tu_park_wake, &l->wpark};
    for (long i = 0; i < ROUNDS; i++) {
        unsigned char v = (unsigned char)(i * 13);
        for (;;) {
            unsigned seen = tu_park_prepare(&l->wpark);
            ssize_t n = mempipe_poll_write(l->e, &v, 1, &w);
            if (n != -EAGAIN) {
                T_RC(1, n);
                break;
            }
            tu_park_wait(&l->wpark, seen);
        }
    }
    T_RC(0, mempipe_shutdown(l->e));
    return NULL;
}

static void *lb_reader(void *arg)
{
    struct lb *l = arg;
    mempipe_waker w = {tu_park_wake, &l->rpark};
    unsigned char v = 0;
    for (;;) {
        unsigned seen = tu_park_prepare(&l->rpark);
        ssize_t n = mempipe_poll_read(l->e, &v, 1, &w);
        if (n == -EAGAIN) {
            tu_park_wait(&l->rpark, seen);
            continue;
        }
        if (n == 0)
            break;
        T_RC(1, n);
        T_RC((unsigned char)(l->got * 13), v);
        l->got++;
        atomic_fetch_add_explicit(&tu_progress, 1, memory_order_relaxed);
    }
    return NULL;
}

static void test_R26_pingpong_loopback_two_threads(void **state)
{
    (void)state;
    struct lb l = {0};
    assert_rc(0, mempipe_loopback(1, &l.e));
    tu_park_init(&l.wpark);
    tu_park_init(&l.rpark);
    tu_watchdog_start("loopback two threads");
    double t0 = tu_now();
    pthread_t tw, tr;
    assert_int_equal(0, pthread_create(&tw, NULL, lb_writer, &l));
    assert_int_equal(0, pthread_create(&tr, NULL, lb_reader, &l));
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    double secs = tu_now() - t0;
    tu_watchdog_end();
    assert_rc(ROUNDS, l.got);
    mempipe_close(l.e);
    tu_park_destroy(&l.wpark);
    tu_park_destroy(&l.rpark);
    printf("%-28s %d bytes one by one, %6.2f s\n", "loopback two threads",
           ROUNDS, secs);
    fflush(stdout);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R25_pingpong_duplex_cap1_poll_both),
        cmocka_unit_test(test_R29_pingpong_duplex_cap1_blocking_vs_poll),
        cmocka_unit_test(test_R29_pingpong_duplex_cap1_poll_vs_blocking),
        cmocka_unit_test(test_R25_pingpong_simplex_pair_cap1_poll),
        cmocka_unit_test(test_R25_pingpong_loopback_one_thread),
        cmocka_unit_test(test_R26_pingpong_loopback_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
