/* SPDX-License-Identifier: MIT */
/*
 * The cooperative budget (mempipe_budget_set / mempipe_budget_left): exactly
 * N completions then a yield, pending results spend nothing, unlimited by
 * default, per thread, ignored by blocking calls, argument errors never
 * hidden, and a small executor in which an always-ready task cannot starve
 * its neighbour.
 */
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

/* Every test leaves this thread unlimited, whatever it asserted. */
static int reset_budget(void **state)
{
    (void)state;
    mempipe_budget_set(0);
    return 0;
}

static void test_budget_exactly_n_ready_results_then_yield(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    char buf[8];
    assert_rc(0, mempipe_duplex(64, &a, &b));

    mempipe_budget_set(5);
    assert_rc(5, mempipe_budget_left());
    /* Five ready results of all three kinds, the count going down. */
    assert_rc(2, mempipe_poll_write(a, "ab", 2, &w));
    assert_rc(4, mempipe_budget_left());
    struct iovec iov[2] = {{"cd", 2}, {"ef", 2}};
    assert_rc(4, mempipe_poll_writev(a, iov, 2, &w));
    assert_rc(3, mempipe_budget_left());
    assert_rc(3, mempipe_poll_read(b, buf, 3, &w));
    assert_rc(2, mempipe_budget_left());
    assert_rc(1, mempipe_poll_write(b, "z", 1, &w));
    assert_rc(1, mempipe_budget_left());
    assert_rc(1, mempipe_poll_read(a, buf, sizeof buf, &w));
    assert_rc(0, mempipe_budget_left());
    assert_rc(0, tu_calls(&c));

    /* The sixth yields, whichever call it is, calling its waker at once. */
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, &w));
    assert_rc(1, tu_calls(&c));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "x", 1, &w));
    assert_rc(2, tu_calls(&c));
    assert_rc(-EAGAIN, mempipe_poll_writev(a, iov, 2, &w));
    assert_rc(3, tu_calls(&c));
    assert_rc(0, mempipe_budget_left());
    /* ...and the pipe was not touched: the 3 unread bytes are still there. */
    assert_rc(3, mempipe_readable(b));

    /* A new budget lets calls complete again. */
    mempipe_budget_set(1);
    assert_rc(3, mempipe_poll_read(b, buf, sizeof buf, &w));
    assert_memory_equal(buf, "def", 3);
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, &w));
    assert_rc(4, tu_calls(&c));
    mempipe_close(a);
    mempipe_close(b);
}

static void test_budget_yield_does_not_store_the_waker(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    char buf[8];
    assert_rc(0, mempipe_duplex(4, &a, &b));

    mempipe_budget_set(1);
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, NULL)); /* L=0 */
    assert_rc(1, mempipe_budget_left());     /* pending: nothing spent */
    assert_rc(0, mempipe_poll_flush(b, &w)); /* flush ignores the budget */
    assert_rc(1, mempipe_budget_left());
    /* Exhaust it, then yield on an empty pipe with a waker. */
    assert_rc(4, mempipe_poll_write(b, "1234", 4, NULL));
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, &w));
    assert_rc(1, tu_calls(&c)); /* called by the yield itself */
    /* Had it been stored, the peer's write would call it again. */
    mempipe_budget_set(0);
    assert_rc(3, mempipe_poll_write(a, "abc", 3, NULL));
    assert_rc(1, tu_calls(&c));
    /* Same for a yielded write on a full pipe: space freed calls nothing. */
    mempipe_budget_set(1);
    assert_rc(3, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(b, "x", 1, &w));
    assert_rc(2, tu_calls(&c));
    mempipe_budget_set(0);
    assert_rc(4, mempipe_poll_read(a, buf, sizeof buf, NULL));
    assert_rc(2, tu_calls(&c));
    mempipe_close(a);
    mempipe_close(b);
}

static void test_budget_yield_with_null_waker_just_returns_eagain(void **state)
{
    (void)state;
    mempipe *end = NULL;
    char buf[4];
    assert_rc(0, mempipe_loopback(16, &end));
    mempipe_budget_set(1);
    assert_rc(2, mempipe_poll_write(end, "hi", 2, NULL));
    assert_rc(-EAGAIN, mempipe_poll_read(end, buf, sizeof buf, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(end, "x", 1, NULL));
    assert_rc(2, mempipe_readable(end));
    mempipe_close(end);
}

static void test_budget_pending_results_consume_nothing(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    char buf[8];
    assert_rc(0, mempipe_duplex(4, &a, &b));

    mempipe_budget_set(2);
    for (int i = 0; i < 10; i++) { /* empty: pending, stored, free */
        assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, &w));
        assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, NULL));
    }
    assert_rc(2, mempipe_budget_left());
    assert_rc(4, mempipe_poll_write(a, "abcd", 4, &w)); /* fills it */
    assert_rc(1, mempipe_budget_left());
    assert_rc(1, tu_calls(&c));    /* the stored read waker, by the write */
    for (int i = 0; i < 10; i++) { /* full: pending, stored, free */
        assert_rc(-EAGAIN, mempipe_poll_write(a, "e", 1, &w));
        struct iovec iov = {"ef", 2};
        assert_rc(-EAGAIN, mempipe_poll_writev(a, &iov, 1, &w));
    }
    assert_rc(1, mempipe_budget_left());
    assert_rc(4, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(0, mempipe_budget_left());
    assert_rc(2, tu_calls(&c)); /* the stored write waker, by the read */
    mempipe_close(a);
    mempipe_close(b);
}

static void test_budget_eof_and_errors_spend_one(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    char buf[4];
    assert_rc(0, mempipe_duplex(4, &a, &b));
    mempipe_budget_set(10);
    assert_rc(0, mempipe_shutdown(a)); /* ignores the budget */
    assert_rc(10, mempipe_budget_left());
    assert_rc(0, mempipe_poll_read(b, buf, sizeof buf, NULL)); /* EOF */
    assert_rc(-EPIPE, mempipe_poll_write(a, "x", 1, NULL));
    struct iovec iov = {"xy", 2};
    assert_rc(-EPIPE, mempipe_poll_writev(a, &iov, 1, NULL));
    assert_rc(7, mempipe_budget_left());
    mempipe_close(a);
    mempipe_close(b);
}

/*
 * SPEC R8 and R14: a zero-length call returns at once "in every state" and
 * wakes nothing, so the budget does not apply to it: it spends nothing ...
 */
static void test_R8_zero_len_ignores_budget_spends_nothing(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    char buf[4];
    struct iovec empty = {buf, 0};
    assert_rc(0, mempipe_duplex(4, &a, &b));
    mempipe_budget_set(10);
    assert_rc(0, mempipe_poll_read(b, buf, 0, NULL));
    assert_rc(0, mempipe_poll_write(a, buf, 0, NULL));
    assert_rc(0, mempipe_poll_writev(a, NULL, 0, NULL));
    assert_rc(0, mempipe_poll_writev(a, &empty, 1, NULL));
    assert_rc(10, mempipe_budget_left());
    assert_rc(0, mempipe_shutdown(a));
    assert_rc(-EPIPE, mempipe_poll_write(a, buf, 0, NULL)); /* R14 */
    assert_rc(0, mempipe_poll_read(b, buf, 0, NULL));
    assert_rc(10, mempipe_budget_left());
    mempipe_close(a);
    mempipe_close(b);
}

/* ... and it never yields: with the budget spent it still returns 0 (or
 * -EPIPE on a closed pipe) and never calls its waker. */
static void test_R8_zero_len_ignores_budget_when_exhausted(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    char buf[4];
    struct iovec empty = {buf, 0};
    assert_rc(0, mempipe_duplex(4, &a, &b));
    mempipe_budget_set(1);
    assert_rc(1, mempipe_poll_write(a, "x", 1, NULL));
    assert_rc(0, mempipe_budget_left()); /* exhausted */
    assert_rc(0, mempipe_poll_read(b, buf, 0, &w));
    assert_rc(0, mempipe_poll_write(a, buf, 0, &w));
    assert_rc(0, mempipe_poll_writev(a, NULL, 0, &w));
    assert_rc(0, mempipe_poll_writev(a, &empty, 1, &w));
    assert_rc(0, tu_calls(&c)); /* no yield called it */
    assert_rc(0, mempipe_shutdown(a));
    assert_rc(-EPIPE, mempipe_poll_write(a, buf, 0, &w));
    assert_rc(0, mempipe_poll_read(a, buf, 0, &w));
    assert_rc(0, tu_calls(&c));
    assert_rc(0, mempipe_budget_left());
    /* The byte is still there and nothing was stored for later. */
    assert_rc(1, mempipe_readable(b));
    mempipe_budget_set(0);
    assert_rc(1, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(0, tu_calls(&c));
    mempipe_close(a);
    mempipe_close(b);
}

static void test_budget_yield_comes_before_eof_and_epipe(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    char buf[4];
    assert_rc(0, mempipe_duplex(4, &a, &b));
    assert_rc(0, mempipe_shutdown(a));
    mempipe_budget_set(1);
    assert_rc(1, mempipe_budget_left());
    assert_rc(0, mempipe_poll_read(b, buf, sizeof buf, NULL)); /* spends */
    /* Exhausted: the pipe is not looked at, so no EOF and no -EPIPE. */
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "x", 1, NULL));
    mempipe_budget_set(0);
    assert_rc(0, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(-EPIPE, mempipe_poll_write(a, "x", 1, NULL));
    mempipe_close(a);
    mempipe_close(b);
}

static void test_budget_argument_errors_are_not_hidden(void **state)
{
    (void)state;
    mempipe *r = NULL, *wr = NULL;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    char buf[4];
    assert_rc(0, mempipe_simplex(8, &r, &wr));
    mempipe_budget_set(1);
    assert_rc(1, mempipe_poll_write(wr, "x", 1, NULL));
    assert_rc(0, mempipe_budget_left()); /* exhausted from here on */

    assert_rc(-EINVAL, mempipe_poll_read(NULL, buf, sizeof buf, &w));
    assert_rc(-EINVAL, mempipe_poll_read(r, NULL, 1, &w));
    assert_rc(-EINVAL, mempipe_poll_write(NULL, "x", 1, &w));
    assert_rc(-EINVAL, mempipe_poll_write(wr, NULL, 1, &w));
    assert_rc(-EINVAL, mempipe_poll_writev(wr, NULL, 1, &w));
    assert_rc(-EINVAL, mempipe_poll_writev(wr, NULL, -1, &w));
    assert_rc(-EBADF, mempipe_poll_read(wr, buf, sizeof buf, &w));
    assert_rc(-EBADF, mempipe_poll_write(r, "x", 1, &w));
    struct iovec iov = {"x", 1};
    assert_rc(-EBADF, mempipe_poll_writev(r, &iov, 1, &w));
    assert_rc(0, tu_calls(&c)); /* no yield: the waker was never called */
    assert_rc(0, mempipe_budget_left());

    /* Argument errors spend nothing either. */
    mempipe_budget_set(2);
    assert_rc(-EBADF, mempipe_poll_read(wr, buf, sizeof buf, NULL));
    assert_rc(-EINVAL, mempipe_poll_write(NULL, "x", 1, NULL));
    assert_rc(2, mempipe_budget_left());
    mempipe_close(r);
    mempipe_close(wr);
}

static void test_budget_unlimited_by_default(void **state)
{
    (void)state;
    mempipe *end = NULL;
    char buf[16];
    /* cmocka runs this before any test sets a budget on this thread. */
    assert_rc(UINT_MAX, mempipe_budget_left());
    assert_rc(0, mempipe_loopback(16, &end));
    for (int i = 0; i < 10000; i++) {
        assert_rc(16, mempipe_poll_write(end, "0123456789abcdef", 16, NULL));
        assert_rc(16, mempipe_poll_read(end, buf, sizeof buf, NULL));
    }
    assert_rc(UINT_MAX, mempipe_budget_left());
    mempipe_close(end);
}

static void test_budget_unlimited_after_set_zero(void **state)
{
    (void)state;
    mempipe *end = NULL;
    char buf[4];
    assert_rc(0, mempipe_loopback(4, &end));
    mempipe_budget_set(3);
    assert_rc(3, mempipe_budget_left());
    assert_rc(1, mempipe_poll_write(end, "x", 1, NULL));
    mempipe_budget_set(0);
    assert_rc(UINT_MAX, mempipe_budget_left());
    for (int i = 0; i < 1000; i++) {
        assert_rc(1, mempipe_poll_write(end, "x", 1, NULL));
        assert_rc(1, mempipe_poll_read(end, buf, 1, NULL));
    }
    assert_rc(UINT_MAX, mempipe_budget_left());
    /* Exhausted, then 0 again: unlimited at once. */
    mempipe_budget_set(1);
    assert_rc(1, mempipe_poll_read(end, buf, 1, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(end, "x", 1, NULL));
    mempipe_budget_set(0);
    assert_rc(1, mempipe_poll_write(end, "x", 1, NULL));
    mempipe_close(end);
}

static void test_budget_set_uint_max_is_large_not_unlimited(void **state)
{
    (void)state;
    mempipe *end = NULL;
    assert_rc(0, mempipe_loopback(4, &end));
    mempipe_budget_set(UINT_MAX);
    assert_rc(UINT_MAX - 1, mempipe_budget_left());
    assert_rc(1, mempipe_poll_write(end, "x", 1, NULL));
    assert_rc(UINT_MAX - 2, mempipe_budget_left());
    mempipe_budget_set(UINT_MAX - 1);
    assert_rc(UINT_MAX - 1, mempipe_budget_left());
    mempipe_close(end);
}

struct other_thread {
    mempipe *end;
    unsigned left_at_start;
    unsigned left_after_set;
    long first, second, third;
};

static void *other_thread_main(void *arg)
{
    struct other_thread *t = arg;
    t->left_at_start = mempipe_budget_left();
    mempipe_budget_set(2);
    t->left_after_set = mempipe_budget_left();
    t->first = mempipe_poll_write(t->end, "t", 1, NULL);
    t->second = mempipe_poll_write(t->end, "t", 1, NULL);
    t->third = mempipe_poll_write(t->end, "t", 1, NULL);
    return NULL;
}

static void test_budget_is_per_thread(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    mempipe_budget_set(1);

    struct other_thread t = {.end = b};
    pthread_t th;
    assert_rc(0, pthread_create(&th, NULL, other_thread_main, &t));
    assert_rc(0, pthread_join(th, NULL));
    /* The new thread started unlimited and had its own budget of 2. */
    assert_rc(UINT_MAX, t.left_at_start);
    assert_rc(2, t.left_after_set);
    assert_rc(1, t.first);
    assert_rc(1, t.second);
    assert_rc(-EAGAIN, t.third);
    /* Its calls did not spend ours. */
    assert_rc(1, mempipe_budget_left());
    assert_rc(1, mempipe_poll_write(a, "m", 1, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "m", 1, NULL));
    assert_rc(2, mempipe_readable(a));
    mempipe_close(a);
    mempipe_close(b);
}

/*
 * Blocking calls on a thread whose budget is exhausted (or partly spent):
 * they must park and complete as usual, and spend nothing. A peer thread
 * (unlimited) feeds and drains the other end.
 */
#define BLOCK_BYTES 4096

struct blocker {
    mempipe *end;
    unsigned budget; /* set on the blocking thread; one poll spends 1 */
    long wrote, read1, read_rest;
    unsigned left_after;
    unsigned char in[BLOCK_BYTES];
    atomic_int done;
};

static void *blocker_main(void *arg)
{
    struct blocker *bl = arg;
    static const unsigned char out[BLOCK_BYTES] = {1, 2, 3};
    mempipe_budget_set(bl->budget);
    /* Completes (a zero-length call would not count, R8): spends 1. */
    long first = mempipe_poll_write(bl->end, out, 1, NULL);
    /* Capacity 8: the write parks many times before the peer drains it. */
    bl->wrote = first + mempipe_write(bl->end, out + 1, sizeof out - 1);
    /* Nothing buffered yet: the read parks until the peer writes. */
    bl->read1 = mempipe_read(bl->end, bl->in, sizeof bl->in);
    bl->read_rest = 0;
    while (bl->read1 > 0 && bl->read1 + bl->read_rest < BLOCK_BYTES) {
        long n =
            mempipe_read(bl->end, bl->in + bl->read1 + bl->read_rest,
                         sizeof bl->in - (size_t)(bl->read1 + bl->read_rest));
        if (n <= 0)
            break;
        bl->read_rest += n;
    }
    bl->left_after = mempipe_budget_left();
    atomic_store(&bl->done, 1);
    return NULL;
}

/* Waits for the thread, failing (not hanging) if it never finishes. */
static void join_within(pthread_t th, struct blocker *bl, int seconds)
{
    double until = tu_now() + seconds;
    while (!atomic_load(&bl->done) && tu_now() < until) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (!atomic_load(&bl->done))
        fail_msg("blocking calls with budget %u did not finish within %d s "
                 "(spinning on yields instead of parking?)",
                 bl->budget, seconds);
    assert_rc(0, pthread_join(th, NULL));
}

static void run_blocking_with_budget(unsigned budget)
{
    mempipe *a = NULL, *b = NULL;
    unsigned char buf[BLOCK_BYTES];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    struct blocker *bl = calloc(1, sizeof *bl);
    assert_non_null(bl);
    bl->end = a;
    bl->budget = budget;
    pthread_t th;
    assert_rc(0, pthread_create(&th, NULL, blocker_main, bl));
    /*
     * Drain what it writes, then feed its reads, with polls on this
     * (unlimited) thread, so that a blocked thread spinning on yields shows
     * up as a clear failure after 20 s instead of a hang here.
     */
    double until = tu_now() + 20;
    size_t got = 0;
    while (got < BLOCK_BYTES) {
        ssize_t n = mempipe_poll_read(b, buf + got, sizeof buf - got, NULL);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        assert_rc(-EAGAIN, n);
        if (tu_now() > until)
            fail_msg("the blocking writer (budget %u) moved %zu of %d bytes "
                     "in 20 s (spinning on yields instead of parking?)",
                     budget, got, BLOCK_BYTES);
        sched_yield();
    }
    assert_int_equal(1, buf[0]);
    assert_int_equal(3, buf[2]);
    unsigned char pat[BLOCK_BYTES];
    tu_pattern(pat, sizeof pat, 0, 7);
    size_t put = 0;
    while (put < BLOCK_BYTES) {
        ssize_t n = mempipe_poll_write(b, pat + put, sizeof pat - put, NULL);
        if (n > 0) {
            put += (size_t)n;
            continue;
        }
        assert_rc(-EAGAIN, n);
        if (tu_now() > until)
            fail_msg("the blocking reader (budget %u) took %zu of %d bytes "
                     "in 20 s (spinning on yields instead of parking?)",
                     budget, put, BLOCK_BYTES);
        sched_yield();
    }
    join_within(th, bl, 20);

    assert_rc(BLOCK_BYTES, bl->wrote);
    assert_true(bl->read1 > 0);
    assert_rc(BLOCK_BYTES, bl->read1 + bl->read_rest);
    assert_rc(-1, tu_check_pattern(bl->in, sizeof bl->in, 0, 7));
    /* Blocking calls spent nothing. */
    assert_rc(budget - 1, bl->left_after);
    free(bl);
    mempipe_close(a);
    mempipe_close(b);
}

static void test_budget_blocking_calls_ignore_it_when_exhausted(void **state)
{
    (void)state;
    run_blocking_with_budget(1); /* its one poll exhausts it */
}

static void test_budget_blocking_calls_do_not_spend_it(void **state)
{
    (void)state;
    run_blocking_with_budget(100); /* one poll below: 99 left after */
}

/* ---- a tiny single-threaded executor -------------------------------- */

enum { PENDING, DONE };

struct task;
struct executor {
    struct task *q[8];
    unsigned head, tail; /* q[head % 8] .. q[(tail - 1) % 8] */
    unsigned budget;
};

struct task {
    struct executor *ex;
    int (*poll)(struct task *);
    bool queued;
    mempipe_waker waker;
    unsigned polls;
    /* the spinner */
    mempipe *a, *b;
    unsigned long pairs, pairs_this_poll, max_pairs_per_poll;
    bool starved; /* it looped SPIN_CAP times without being stopped */
    /* the neighbour */
    unsigned rounds;
};

#define SPIN_CAP 100000ul

static void task_wake(void *ctx)
{
    struct task *t = ctx;
    if (t->queued)
        return;
    t->queued = true;
    t->ex->q[t->ex->tail++ % 8] = t;
}

/* Loops on an always-ready duplex: 64 bytes out, 64 bytes back, forever. */
static int spinner_poll(struct task *t)
{
    unsigned char out[64] = {0}, in[64];
    t->pairs_this_poll = 0;
    for (;;) {
        if (t->pairs_this_poll >= SPIN_CAP) {
            t->starved = true;
            return PENDING; /* not re-queued: the executor moves on */
        }
        ssize_t n = mempipe_poll_write(t->a, out, sizeof out, &t->waker);
        if (n == -EAGAIN)
            break;
        assert_rc(64, n);
        n = mempipe_poll_read(t->b, in, sizeof in, &t->waker);
        if (n == -EAGAIN)
            break;
        assert_rc(64, n);
        t->pairs++;
        t->pairs_this_poll++;
    }
    if (t->pairs_this_poll > t->max_pairs_per_poll)
        t->max_pairs_per_poll = t->pairs_this_poll;
    return PENDING;
}

/* Does a little real I/O of its own each turn; done after 3 turns. */
static int neighbour_poll(struct task *t)
{
    char buf[8];
    assert_rc(4, mempipe_poll_write(t->a, "ping", 4, &t->waker));
    assert_rc(4, mempipe_poll_read(t->a, buf, sizeof buf, &t->waker));
    if (++t->rounds == 3)
        return DONE;
    task_wake(t); /* yield to the others, like a tokio yield_now */
    return PENDING;
}

/* Runs until the neighbour is done or the queue empties. */
static void run_executor(struct executor *ex, struct task *neighbour)
{
    for (unsigned steps = 0; ex->head != ex->tail && steps < 1000; steps++) {
        struct task *t = ex->q[ex->head++ % 8];
        t->queued = false;
        t->polls++;
        mempipe_budget_set(ex->budget);
        int r = t->poll(t);
        mempipe_budget_set(0);
        if (t == neighbour && r == DONE)
            return;
    }
}

static void run_two_tasks(unsigned budget, struct task *spin, struct task *nb)
{
    struct executor ex = {.budget = budget};
    memset(spin, 0, sizeof *spin);
    memset(nb, 0, sizeof *nb);
    *spin = (struct task){.ex = &ex, .poll = spinner_poll};
    *nb = (struct task){.ex = &ex, .poll = neighbour_poll};
    spin->waker = (mempipe_waker){task_wake, spin};
    nb->waker = (mempipe_waker){task_wake, nb};
    assert_rc(0, mempipe_duplex(1024, &spin->a, &spin->b));
    assert_rc(0, mempipe_loopback(16, &nb->a));
    task_wake(spin); /* the spinner goes first */
    task_wake(nb);
    run_executor(&ex, nb);
    mempipe_close(spin->a);
    mempipe_close(spin->b);
    mempipe_close(nb->a);
}

static void test_budget_executor_ready_task_does_not_starve_another(void **s)
{
    (void)s;
    struct task spin, nb;
    run_two_tasks(16, &spin, &nb);
    assert_false(spin.starved);
    assert_rc(3, nb.rounds); /* the neighbour ran to completion */
    /* Each spinner turn did exactly 16 completions (8 pairs), then yielded
     * and was re-queued by its own waker, behind the neighbour. */
    assert_rc(3, spin.polls);
    assert_rc(8, spin.max_pairs_per_poll);
    assert_rc(24, spin.pairs);
    assert_rc(3, nb.polls);

    /* Control: without a budget the same spinner never yields; only the
     * test's cap ends its first turn (in a real executor, never). */
    run_two_tasks(0, &spin, &nb);
    assert_true(spin.starved);
    assert_rc(SPIN_CAP, spin.pairs);
}

/*
 * While a tracer is attached (the USDT semaphore is non-zero), the poll
 * calls take the general slow path, which fires the probes: the budget must
 * behave exactly the same there. White-box: set the semaphore as a tracer
 * would (before any thread starts, cleared after they are joined).
 */
#if defined(MEMPIPE_USDT)
#include "trace.h"
#endif

static void test_budget_same_rules_while_traced(void **state)
{
#if defined(MEMPIPE_USDT)
    void (*const tests[])(void **) = {
        test_budget_exactly_n_ready_results_then_yield,
        test_budget_yield_does_not_store_the_waker,
        test_budget_pending_results_consume_nothing,
        test_budget_eof_and_errors_spend_one,
        test_R8_zero_len_ignores_budget_spends_nothing,
        test_R8_zero_len_ignores_budget_when_exhausted,
        test_budget_yield_comes_before_eof_and_epipe,
        test_budget_argument_errors_are_not_hidden,
        test_budget_blocking_calls_ignore_it_when_exhausted,
        test_budget_blocking_calls_do_not_spend_it,
        test_budget_executor_ready_task_does_not_starve_another,
    };
    mempipe__semaphore = 1;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        tests[i](state);
        mempipe_budget_set(0); /* as reset_budget between tests */
    }
    mempipe__semaphore = 0;
#else
    (void)state;
    printf("built without USDT probes: no traced path to test\n");
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* First, before anything sets a budget on this thread. */
        cmocka_unit_test_teardown(test_budget_unlimited_by_default,
                                  reset_budget),
        cmocka_unit_test_teardown(
            test_budget_exactly_n_ready_results_then_yield, reset_budget),
        cmocka_unit_test_teardown(test_budget_yield_does_not_store_the_waker,
                                  reset_budget),
        cmocka_unit_test_teardown(
            test_budget_yield_with_null_waker_just_returns_eagain,
            reset_budget),
        cmocka_unit_test_teardown(test_budget_pending_results_consume_nothing,
                                  reset_budget),
        cmocka_unit_test_teardown(test_budget_eof_and_errors_spend_one,
                                  reset_budget),
        cmocka_unit_test_teardown(
            test_R8_zero_len_ignores_budget_spends_nothing, reset_budget),
        cmocka_unit_test_teardown(
            test_R8_zero_len_ignores_budget_when_exhausted, reset_budget),
        cmocka_unit_test_teardown(test_budget_yield_comes_before_eof_and_epipe,
                                  reset_budget),
        cmocka_unit_test_teardown(test_budget_argument_errors_are_not_hidden,
                                  reset_budget),
        cmocka_unit_test_teardown(test_budget_unlimited_after_set_zero,
                                  reset_budget),
        cmocka_unit_test_teardown(
            test_budget_set_uint_max_is_large_not_unlimited, reset_budget),
        cmocka_unit_test_teardown(test_budget_is_per_thread, reset_budget),
        cmocka_unit_test_teardown(
            test_budget_blocking_calls_ignore_it_when_exhausted, reset_budget),
        cmocka_unit_test_teardown(test_budget_blocking_calls_do_not_spend_it,
                                  reset_budget),
        cmocka_unit_test_teardown(
            test_budget_executor_ready_task_does_not_starve_another,
            reset_budget),
        cmocka_unit_test_teardown(test_budget_same_rules_while_traced,
                                  reset_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
