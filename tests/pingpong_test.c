/*
 * Ping-pong: the lost-wakeup hunt. One byte at a time goes back and forth
 * through capacity-1 pipes, so every single transfer meets an empty or full
 * pipe and the waiting side must park and be woken (R6, R7, R11, R13, R25).
 * A lost wakeup anywhere shows up as a hang; a watchdog thread turns a hang
 * into an abort with a message after 10 s without a round trip, well before
 * the CTest timeout.
 *
 * Variants: both sides poll with a parking waker of this file (a condvar
 * parker) on one duplex; the same over a pair of simplex pipes; one side
 * blocking (mempipe_read/mempipe_write, R29) against a polling side; a
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

/* Failures inside worker threads: print expected/actual, then abort (cmocka's
 * assertions longjmp, which only works on the test's own thread). */
#define T_RC(expected, actual)                                                 \
    do {                                                                       \
        long long e_ = (long long)(expected), a_ = (long long)(actual);        \
        if (e_ != a_) {                                                        \
            fprintf(stderr, "%s:%d: %s: expected %lld (%s), got %lld (%s)\n",  \
                    __FILE__, __LINE__, #actual, e_,                           \
                    e_ < 0 ? mempipe_strerror((int)e_) : "count", a_,          \
                    a_ < 0 ? mempipe_strerror((int)a_) : "count");             \
            abort();                                                           \
        }                                                                      \
    } while (0)
#define T_CHECK(cond, ...)                                                     \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__,   \
                    #cond);                                                    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* ------------------------------------------------------------------------ */
/* A parking waker of our own: seq counts wakes; a waiter sleeps on a
 * condvar while seq still equals what it saw before its poll call. */

struct tpark {
    atomic_uint seq;
    atomic_int sleepers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void tpark_init(struct tpark *p)
{
    atomic_init(&p->seq, 0);
    atomic_init(&p->sleepers, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
}

static void tpark_destroy(struct tpark *p)
{
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

static unsigned tpark_prepare(struct tpark *p)
{
    return atomic_load(&p->seq);
}

static void tpark_wake(void *ctx)
{
    struct tpark *p = ctx;
    /*
     * seq_cst increment, then seq_cst load of sleepers; the waiter does the
     * mirror image (sleepers, then seq under the mutex). In the single total
     * order one of them sees the other, so either the waiter sees the new seq
     * or we see the sleeper and signal under the mutex.
     */
    atomic_fetch_add(&p->seq, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

static void tpark_wait(struct tpark *p, unsigned seen)
{
    atomic_fetch_add(&p->sleepers, 1);
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->seq) == seen)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
}

/* ------------------------------------------------------------------------ */
/* Watchdog: aborts with a message if `progress` stands still for 10 s. */

static atomic_ulong progress;
/* What is being watched; NULL between watched sections. */
static _Atomic(const char *) watchdog_what;
static atomic_int watchdog_epoch;

/*
 * One detached thread for the whole run, so that a test whose assertion
 * fails (cmocka longjmps out of it) leaves nothing to join.
 */
static void *watchdog_main(void *arg)
{
    (void)arg;
    unsigned long last = 0;
    int epoch = -1, idle_ms = 0;
    for (;;) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        const char *what = atomic_load(&watchdog_what);
        unsigned long cur = atomic_load(&progress);
        int e = atomic_load(&watchdog_epoch);
        if (what == NULL || cur != last || e != epoch) {
            last = cur;
            epoch = e;
            idle_ms = 0;
            continue;
        }
        idle_ms += 100;
        if (idle_ms >= 10000) {
            fprintf(stderr,
                    "WATCHDOG: %s made no progress for 10 s (progress count "
                    "%lu): a lost wakeup or a hang\n",
                    what, cur);
            abort();
        }
    }
    return NULL;
}

static void watchdog_start(const char *what)
{
    static int created;
    atomic_fetch_add(&watchdog_epoch, 1);
    atomic_store(&watchdog_what, what);
    if (!created) {
        pthread_t t;
        created = 1;
        assert_int_equal(0, pthread_create(&t, NULL, watchdog_main, NULL));
        pthread_detach(t);
    }
}

static void watchdog_end(void)
{
    atomic_store(&watchdog_what, NULL);
}

/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */

/* One side of a ping-pong: it writes one pipe and reads another. */
struct side {
    mempipe *wend, *rend;
    int blocking; /* 1: mempipe_read/_write; 0: poll + park */
    int pinger;
    struct tpark wpark, rpark;
    long rounds; /* completed */
};

static void send1(struct side *s, unsigned char v)
{
    if (s->blocking) {
        T_RC(1, mempipe_write(s->wend, &v, 1));
        return;
    }
    mempipe_waker w = {tpark_wake, &s->wpark};
    for (;;) {
        unsigned seen = tpark_prepare(&s->wpark);
        ssize_t n = mempipe_poll_write(s->wend, &v, 1, &w);
        if (n != -EAGAIN) {
            T_RC(1, n);
            return;
        }
        tpark_wait(&s->wpark, seen);
    }
}

static ssize_t recv1(struct side *s, unsigned char *v)
{
    if (s->blocking)
        return mempipe_read(s->rend, v, 1);
    mempipe_waker w = {tpark_wake, &s->rpark};
    for (;;) {
        unsigned seen = tpark_prepare(&s->rpark);
        ssize_t n = mempipe_poll_read(s->rend, v, 1, &w);
        if (n != -EAGAIN)
            return n;
        tpark_wait(&s->rpark, seen);
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
            atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
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
    tpark_init(&sa.wpark);
    tpark_init(&sa.rpark);
    tpark_init(&sb.wpark);
    tpark_init(&sb.rpark);
    watchdog_start(name);
    double t0 = tu_now();
    pthread_t ta, tb;
    assert_int_equal(0, pthread_create(&ta, NULL, side_main, &sa));
    assert_int_equal(0, pthread_create(&tb, NULL, side_main, &sb));
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    double secs = tu_now() - t0;
    watchdog_end();
    assert_rc(ROUNDS, sa.rounds);
    assert_rc(ROUNDS, sb.rounds);
    printf("%-28s %d round trips, %6.2f s, %6.2f us per round trip\n", name,
           ROUNDS, secs, secs * 1e6 / ROUNDS);
    fflush(stdout);
    /* The ends close before the parkers go: close waits for a waker still
     * running on another thread and drops the stored ones (R22). */
    for (int i = 0; i < nends; i++)
        mempipe_close(ends[i]);
    tpark_destroy(&sa.wpark);
    tpark_destroy(&sa.rpark);
    tpark_destroy(&sb.wpark);
    tpark_destroy(&sb.rpark);
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
    struct tpark wpark, rpark;
    long got;
};

static void *lb_writer(void *arg)
{
    struct lb *l = arg;
    mempipe_waker w = {tpark_wake, &l->wpark};
    for (long i = 0; i < ROUNDS; i++) {
        unsigned char v = (unsigned char)(i * 13);
        for (;;) {
            unsigned seen = tpark_prepare(&l->wpark);
            ssize_t n = mempipe_poll_write(l->e, &v, 1, &w);
            if (n != -EAGAIN) {
                T_RC(1, n);
                break;
            }
            tpark_wait(&l->wpark, seen);
        }
    }
    T_RC(0, mempipe_shutdown(l->e));
    return NULL;
}

static void *lb_reader(void *arg)
{
    struct lb *l = arg;
    mempipe_waker w = {tpark_wake, &l->rpark};
    unsigned char v = 0;
    for (;;) {
        unsigned seen = tpark_prepare(&l->rpark);
        ssize_t n = mempipe_poll_read(l->e, &v, 1, &w);
        if (n == -EAGAIN) {
            tpark_wait(&l->rpark, seen);
            continue;
        }
        if (n == 0)
            break;
        T_RC(1, n);
        T_RC((unsigned char)(l->got * 13), v);
        l->got++;
        atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
    }
    return NULL;
}

static void test_R26_pingpong_loopback_two_threads(void **state)
{
    (void)state;
    struct lb l = {0};
    assert_rc(0, mempipe_loopback(1, &l.e));
    tpark_init(&l.wpark);
    tpark_init(&l.rpark);
    watchdog_start("loopback two threads");
    double t0 = tu_now();
    pthread_t tw, tr;
    assert_int_equal(0, pthread_create(&tw, NULL, lb_writer, &l));
    assert_int_equal(0, pthread_create(&tr, NULL, lb_reader, &l));
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    double secs = tu_now() - t0;
    watchdog_end();
    assert_rc(ROUNDS, l.got);
    mempipe_close(l.e);
    tpark_destroy(&l.wpark);
    tpark_destroy(&l.rpark);
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
