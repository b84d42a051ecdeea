/* SPDX-License-Identifier: MIT */
/*
 * Interrupting a thread blocked in mempipe_read() or mempipe_write().
 *
 * SPEC R33: the blocking calls are not cancellation points. A thread
 * cancelled while it sleeps in one keeps sleeping until the call can
 * complete, completes it (no byte lost or half accepted), and acts on the
 * cancellation at its next cancellation point. No lock is left held: the
 * peer's next call, and every other pipe whose parker shares the cancelled
 * one's parking-lot bucket (condvar build), go on working.
 *
 * SPEC R35: signals neither interrupt a blocking call nor lose bytes: a
 * handler installed without SA_RESTART runs, and the call still completes
 * with every byte (never -EINTR).
 *
 * "Blocked" is checked, not assumed: the thread's kernel state must be 'S'
 * (sleeping, which in a blocking call only its parker does) before the test
 * acts. Every wait is bounded; a hang trips the watchdog.
 */
#include "testutil.h"

#include "end.h" /* the ends' parkers, for the bucket of the parking lot */
#include "park.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- one blocking call on its own thread ------------------------------- */

struct blocked {
    mempipe *end;
    bool write;
    const unsigned char *src; /* write: len bytes */
    unsigned char *dst;       /* read: up to len bytes */
    size_t len;
    atomic_int tid;   /* the kernel's id of the thread, once started */
    atomic_long rc;   /* the call's result, once it returned */
    atomic_int after; /* 1 if the thread got past its cancellation point */
    atomic_int gone;  /* 1 once the thread is leaving, either way */
    bool disabled;    /* make the call with cancellation disabled */
    int state_after;  /* the cancellation state the call left */
    pthread_t t;
};

#define NOT_YET (-123456789L)

/*
 * Cancellation unwinds this frame without running its epilogue, which is
 * where AddressSanitizer unpoisons a frame's redzones; the thread's exit
 * then trips over them (a false stack-use-after-scope). The frame that is
 * unwound is therefore left uninstrumented.
 */
#if defined(__GNUC__)
#define NOT_ASAN __attribute__((no_sanitize_address))
#else
#define NOT_ASAN
#endif

static void leaving(void *arg)
{
    struct blocked *b = arg;
    atomic_store(&b->gone, 1);
}

NOT_ASAN static void *blocked_main(void *arg)
{
    struct blocked *b = arg;
    pthread_cleanup_push(leaving, b);
    if (b->disabled)
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    atomic_store(&b->tid, (int)syscall(SYS_gettid));
    ssize_t n = b->write ? mempipe_write(b->end, b->src, b->len)
                         : mempipe_read(b->end, b->dst, b->len);
    /* Read the state by setting it to what it was. */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &b->state_after);
    pthread_setcancelstate(b->state_after, NULL);
    atomic_store(&b->rc, (long)n);
    tu_progress++;
    pthread_testcancel(); /* a pending cancellation acts here */
    atomic_store(&b->after, 1);
    pthread_cleanup_pop(1);
    return NULL;
}

static void blocked_start(struct blocked *b)
{
    atomic_init(&b->tid, 0);
    atomic_init(&b->rc, NOT_YET);
    atomic_init(&b->after, 0);
    atomic_init(&b->gone, 0);
    assert_int_equal(0, pthread_create(&b->t, NULL, blocked_main, b));
}

/* The thread's scheduler state from /proc: 'S' sleeping, 'R' running... */
static char thread_state(int tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return '?'; /* gone */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold anything */
    return p != NULL && p[1] == ' ' ? p[2] : '?';
}

/*
 * Waits until the thread sleeps inside its blocking call: started, no
 * result yet, kernel state 'S'. Bounded: fails after 10 s.
 */
static void wait_asleep(struct blocked *b)
{
    double limit = tu_now() + 10.0;
    for (;;) {
        int tid = atomic_load(&b->tid);
        if (tid != 0 && atomic_load(&b->rc) == NOT_YET &&
            thread_state(tid) == 'S')
            return;
        if (atomic_load(&b->rc) != NOT_YET)
            fail_msg("the blocking call returned %ld (%s) instead of blocking",
                     atomic_load(&b->rc),
                     mempipe_strerror((int)atomic_load(&b->rc)));
        if (tu_now() > limit)
            fail_msg("the blocking call's thread never went to sleep");
        sched_yield();
    }
}

/*
 * Joins, failing (not hanging) if the thread has not left within 10 s; the
 * join itself is pthread_join, whose ordering every race detector knows.
 * Returns the thread's result (PTHREAD_CANCELED if it was cancelled).
 */
static void *join_within(struct blocked *b)
{
    double limit = tu_now() + 10.0;
    while (!atomic_load(&b->gone)) {
        if (tu_now() > limit)
            fail_msg("the blocked thread did not finish within 10 s");
        sched_yield();
    }
    void *ret = NULL;
    assert_int_equal(0, pthread_join(b->t, &ret));
    return ret;
}

/*
 * Lets a cancellation request reach a sleeping thread: pthread_cancel()
 * signals it and returns at once. Nothing can be observed on the thread
 * when the request is correctly ignored, so this is a plain delay; it never
 * decides a result, it only makes a regression (a thread that dies in its
 * sleep, holding a lock) show every time instead of most times.
 */
static void let_it_arrive(void)
{
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* ---- the parking lot ---------------------------------------------------- */

#define MAX_TRIES 4096

/*
 * A duplex whose end b's parker (read or write) hashes to the same bucket
 * as `like`: pipes are made (and kept, so that no address comes back)
 * until one matches; the others are closed. In the futex build every
 * parker is in "bucket" 0, so the first one matches.
 */
static void same_bucket_duplex(const struct mempipe__parker *like, bool rpark,
                               mempipe **a, mempipe **b)
{
    static mempipe *made[MAX_TRIES][2];
    unsigned want = mempipe__park_bucket(like);
    int i;
    for (i = 0; i < MAX_TRIES; i++) {
        assert_rc(0, mempipe_duplex(8, &made[i][0], &made[i][1]));
        const struct mempipe__parker *pk =
            rpark ? &made[i][1]->rpark : &made[i][1]->wpark;
        if (mempipe__park_bucket(pk) == want)
            break;
    }
    if (i == MAX_TRIES)
        fail_msg("no parker in bucket %u among %d pipes", want, MAX_TRIES);
    *a = made[i][0];
    *b = made[i][1];
    for (int j = 0; j < i; j++) {
        mempipe_close(made[j][0]);
        mempipe_close(made[j][1]);
    }
}

/* A blocking read on the pipe from a to b works: b sleeps, a writes. */
static void blocking_read_works(mempipe *a, mempipe *b)
{
    unsigned char got[8] = {0};
    struct blocked r = {.end = b, .dst = got, .len = sizeof got};
    blocked_start(&r);
    wait_asleep(&r);
    assert_rc(2, mempipe_write(a, "ok", 2));
    assert_null(join_within(&r));
    assert_rc(2, atomic_load(&r.rc));
    assert_memory_equal(got, "ok", 2);
}

/* A blocking write of b on a full pipe works: b sleeps, a drains. */
static void blocking_write_works(mempipe *a, mempipe *b)
{
    static const unsigned char msg[16] = "0123456789abcdef";
    unsigned char got[16];
    struct blocked w = {.end = b, .write = true, .src = msg, .len = 16};
    blocked_start(&w);
    wait_asleep(&w); /* 8 bytes in, waiting for room */
    size_t n = 0;
    while (n < sizeof got) {
        ssize_t k = mempipe_read(a, got + n, sizeof got - n);
        assert_true(k > 0);
        n += (size_t)k;
    }
    assert_null(join_within(&w));
    assert_rc(16, atomic_load(&w.rc));
    assert_memory_equal(got, msg, 16);
}

/* ---- R33: cancellation -------------------------------------------------- */

static void test_R33_cancelled_blocked_read_completes_then_exits(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    unsigned char got[8] = {0};
    assert_rc(0, mempipe_duplex(8, &a, &b));
    tu_watchdog_start("a cancelled blocked read");

    struct blocked r = {.end = b, .dst = got, .len = sizeof got};
    blocked_start(&r);
    wait_asleep(&r);
    assert_int_equal(0, pthread_cancel(r.t));
    let_it_arrive();
    /* Still asleep in its call, not dead with the bucket mutex held. */
    assert_rc(NOT_YET, atomic_load(&r.rc));

    /* The peer's write returns at once (a held lock would hang it). */
    assert_rc(3, mempipe_write(a, "abc", 3));
    tu_progress++;
    /* The read completes with the bytes; then the thread is cancelled at
     * its next cancellation point. */
    assert_ptr_equal(PTHREAD_CANCELED, join_within(&r));
    assert_rc(3, atomic_load(&r.rc));
    assert_memory_equal(got, "abc", 3);
    assert_int_equal(0, atomic_load(&r.after));
    assert_int_equal(PTHREAD_CANCEL_ENABLE, r.state_after);

    /* The same end still works, and so does a pipe sharing the bucket. */
    blocking_read_works(a, b);
    mempipe *c = NULL, *d = NULL;
    same_bucket_duplex(&b->rpark, true, &c, &d);
    blocking_read_works(c, d);
    blocking_write_works(c, d);
    tu_watchdog_end();
    mempipe_close(c);
    mempipe_close(d);
    mempipe_close(a);
    mempipe_close(b);
}

static void test_R33_cancelled_blocked_write_completes_then_exits(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    unsigned char msg[64], got[64];
    tu_pattern(msg, sizeof msg, 0, 33);
    assert_rc(0, mempipe_duplex(8, &a, &b));
    tu_watchdog_start("a cancelled blocked write");

    struct blocked w = {.end = b, .write = true, .src = msg, .len = 64};
    blocked_start(&w);
    wait_asleep(&w); /* 8 of 64 bytes in, waiting for room */
    assert_int_equal(0, pthread_cancel(w.t));
    let_it_arrive();
    assert_rc(NOT_YET, atomic_load(&w.rc));

    /* The peer drains; every read returns (none hangs on a lock), and the
     * writer places all 64 bytes before it is cancelled. */
    size_t n = 0;
    while (n < sizeof got) {
        ssize_t k = mempipe_read(a, got + n, sizeof got - n);
        if (k <= 0)
            fail_msg("read after %zu bytes: %zd (%s)", n, k,
                     mempipe_strerror((int)k));
        n += (size_t)k;
        tu_progress++;
    }
    assert_ptr_equal(PTHREAD_CANCELED, join_within(&w));
    assert_rc(64, atomic_load(&w.rc));
    assert_int_equal(0, atomic_load(&w.after));
    assert_int_equal(PTHREAD_CANCEL_ENABLE, w.state_after);
    assert_rc(-1, tu_check_pattern(got, sizeof got, 0, 33));
    assert_rc(0, mempipe_readable(a)); /* nothing more, nothing half */

    blocking_write_works(a, b);
    mempipe *c = NULL, *d = NULL;
    same_bucket_duplex(&b->wpark, false, &c, &d);
    blocking_write_works(c, d);
    blocking_read_works(c, d);
    tu_watchdog_end();
    mempipe_close(c);
    mempipe_close(d);
    mempipe_close(a);
    mempipe_close(b);
}

/* A blocking call that slept leaves a disabled cancellation state as it
 * found it, as it does an enabled one (checked in every test above). */
static void test_R33_blocking_calls_restore_the_cancel_state(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    unsigned char got[4];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    tu_watchdog_start("a blocked read with cancellation disabled");
    struct blocked r = {
        .end = b, .dst = got, .len = sizeof got, .disabled = true};
    blocked_start(&r);
    wait_asleep(&r);
    assert_rc(1, mempipe_write(a, "x", 1));
    assert_null(join_within(&r));
    assert_rc(1, atomic_load(&r.rc));
    assert_int_equal(PTHREAD_CANCEL_DISABLE, r.state_after);
    tu_watchdog_end();
    mempipe_close(a);
    mempipe_close(b);
}

/* ---- R35: signals ------------------------------------------------------- */

static atomic_int handled;

static void on_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

/* SIGUSR1 with a handler and without SA_RESTART, so an interruptible sleep
 * would return EINTR. */
static void install_handler(struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    assert_int_equal(0, sigaction(SIGUSR1, &sa, old));
}

/* Signals the sleeping thread `times` times, each once it is asleep again
 * and the previous signal was handled. */
static void pester(struct blocked *b, int times)
{
    for (int i = 0; i < times; i++) {
        wait_asleep(b);
        int before = atomic_load(&handled);
        assert_int_equal(0, pthread_kill(b->t, SIGUSR1));
        double limit = tu_now() + 10.0;
        while (atomic_load(&handled) == before) {
            if (tu_now() > limit)
                fail_msg("signal %d was never handled", i);
            sched_yield();
        }
        tu_progress++;
    }
}

static void test_R35_signals_do_not_interrupt_blocked_read(void **state)
{
    (void)state;
    struct sigaction old;
    install_handler(&old);
    mempipe *a = NULL, *b = NULL;
    unsigned char got[8] = {0};
    assert_rc(0, mempipe_duplex(8, &a, &b));
    tu_watchdog_start("a signalled blocked read");
    atomic_store(&handled, 0);

    struct blocked r = {.end = b, .dst = got, .len = sizeof got};
    blocked_start(&r);
    pester(&r, 20);
    /* Every signal was handled and the read is still waiting. */
    assert_rc(NOT_YET, atomic_load(&r.rc));
    assert_rc(5, mempipe_write(a, "hello", 5));
    assert_null(join_within(&r));
    assert_rc(5, atomic_load(&r.rc));
    assert_memory_equal(got, "hello", 5);
    tu_watchdog_end();
    mempipe_close(a);
    mempipe_close(b);
    assert_int_equal(0, sigaction(SIGUSR1, &old, NULL));
}

static void test_R35_signals_do_not_interrupt_blocked_write(void **state)
{
    (void)state;
    struct sigaction old;
    install_handler(&old);
    mempipe *a = NULL, *b = NULL;
    enum { LEN = 4096 };
    static unsigned char msg[LEN], got[LEN];
    tu_pattern(msg, sizeof msg, 0, 35);
    assert_rc(0, mempipe_duplex(64, &a, &b));
    tu_watchdog_start("a signalled blocked write");
    atomic_store(&handled, 0);

    struct blocked w = {.end = b, .write = true, .src = msg, .len = LEN};
    blocked_start(&w);
    size_t n = 0;
    /* Between drains, the writer sleeps for room and is signalled. */
    while (n < sizeof got) {
        if (n % 512 == 0 && atomic_load(&w.rc) == NOT_YET)
            pester(&w, 2);
        ssize_t k = mempipe_read(a, got + n, 64);
        if (k <= 0)
            fail_msg("read after %zu bytes: %zd (%s)", n, k,
                     mempipe_strerror((int)k));
        n += (size_t)k;
        tu_progress++;
    }
    assert_null(join_within(&w));
    assert_rc(LEN, atomic_load(&w.rc));
    assert_rc(-1, tu_check_pattern(got, sizeof got, 0, 35));
    assert_true(atomic_load(&handled) >= 2);
    tu_watchdog_end();
    mempipe_close(a);
    mempipe_close(b);
    assert_int_equal(0, sigaction(SIGUSR1, &old, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R33_cancelled_blocked_read_completes_then_exits),
        cmocka_unit_test(test_R33_cancelled_blocked_write_completes_then_exits),
        cmocka_unit_test(test_R33_blocking_calls_restore_the_cancel_state),
        cmocka_unit_test(test_R35_signals_do_not_interrupt_blocked_read),
        cmocka_unit_test(test_R35_signals_do_not_interrupt_blocked_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
