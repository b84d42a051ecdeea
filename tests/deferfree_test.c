/* SPDX-License-Identifier: MIT */
/*
 * R32: a close from inside a waker is safe, whichever call runs the waker
 * and whichever ends it closes; the pipe's memory is freed only once the
 * outermost library call on it has returned.
 *
 * Every test runs with the tests' counting allocator in its poisoning mode
 * (tu_poison_setup: 0xdd over each block as it is freed), so a call that
 * touches a freed pipe reads garbage pointers and crashes even without
 * ASan; under ASan the first stray access is reported at once. The
 * teardown checks that every byte was freed: deferring loses no free.
 */
#include "kinds.h"
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* A waker that closes up to two ends (in order) and counts its calls. */
struct closer {
    mempipe *first, *second;
    int calls;
};

static void closer_wake(void *ctx)
{
    struct closer *c = ctx;
    c->calls++;
    mempipe_close(c->first);
    mempipe_close(c->second);
    c->first = c->second = NULL;
}

/* A duplex of capacity cap whose waker w closes a, then b, when called. */
static mempipe_waker tear_down_on_wake(struct closer *c, size_t cap,
                                       mempipe **a, mempipe **b)
{
    assert_rc(0, mempipe_duplex(cap, a, b));
    *c = (struct closer){.first = *a, .second = *b};
    return (mempipe_waker){closer_wake, c};
}

/* A loopback reader waker that reads to EOF, then closes the end. */
struct eof_closer {
    mempipe *end;
    mempipe_waker self;
    int closed;
};

static void eof_closer_wake(void *ctx)
{
    struct eof_closer *c = ctx;
    char buf[64];
    for (;;) {
        ssize_t n = mempipe_poll_read(c->end, buf, sizeof buf, &c->self);
        if (n > 0)
            continue;
        if (n == 0 || n == -EPIPE) {
            mempipe_close(c->end);
            c->closed = 1;
        }
        return; /* -EAGAIN: stored again */
    }
}

static void test_R32_loopback_waker_closes_end_inside_its_shutdown(void **state)
{
    (void)state;
    mempipe *e = NULL;
    char buf[8];
    assert_rc(0, mempipe_loopback(16, &e));
    struct eof_closer c = {.end = e};
    c.self = (mempipe_waker){eof_closer_wake, &c};
    assert_rc(-EAGAIN, mempipe_poll_read(e, buf, sizeof buf, &c.self));
    /* The shutdown wakes the reader, which sees EOF and closes e: the
     * shutdown then still wakes the writer slot and runs the fd hook. */
    assert_rc(0, mempipe_shutdown(e));
    assert_rc(1, c.closed);
}

static void test_R32_loopback_waker_closes_end_inside_its_write(void **state)
{
    (void)state;
    mempipe *e = NULL;
    char buf[8];
    assert_rc(0, mempipe_loopback(16, &e));
    struct closer c = {.first = e};
    mempipe_waker w = {closer_wake, &c};
    assert_rc(-EAGAIN, mempipe_poll_read(e, buf, sizeof buf, &w));
    /* The write's own wake closes the end it is writing. */
    assert_rc(3, mempipe_poll_write(e, "abc", 3, NULL));
    assert_rc(1, c.calls);
}

/* The waker of a tears the connection down (a, then b) inside b's call. */
static void test_R32_waker_tears_down_inside_peer_write(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    char buf[8];
    struct closer c;
    mempipe_waker w = tear_down_on_wake(&c, 16, &a, &b);
    assert_rc(-EAGAIN, mempipe_poll_read(a, buf, sizeof buf, &w));
    assert_rc(3, mempipe_poll_write(b, "abc", 3, NULL));
    assert_rc(1, c.calls);
}

static void test_R32_waker_tears_down_inside_peer_writev(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    char buf[8];
    struct closer c;
    mempipe_waker w = tear_down_on_wake(&c, 16, &a, &b);
    assert_rc(-EAGAIN, mempipe_poll_read(a, buf, sizeof buf, &w));
    struct iovec iov[2] = {{"ab", 2}, {"cd", 2}};
    assert_rc(4, mempipe_poll_writev(b, iov, 2, NULL));
    assert_rc(1, c.calls);
}

/* a's writer waker (a's pipe full) runs inside b's read, and closes both. */
static void test_R32_waker_tears_down_inside_peer_read(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    char buf[8];
    struct closer c;
    mempipe_waker w = tear_down_on_wake(&c, 4, &a, &b);
    assert_rc(4, mempipe_poll_write(a, "abcd", 4, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "e", 1, &w));
    assert_rc(2, mempipe_poll_read(b, buf, 2, NULL));
    assert_rc(1, c.calls);
}

static void test_R32_waker_tears_down_inside_peer_blocking_read(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    char buf[8];
    struct closer c;
    mempipe_waker w = tear_down_on_wake(&c, 4, &a, &b);
    assert_rc(4, mempipe_poll_write(a, "abcd", 4, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "e", 1, &w));
    assert_rc(4, mempipe_read(b, buf, sizeof buf));
    assert_rc(1, c.calls);
}

/* A blocking write that must go on after its first piece: the waker that
 * piece ran closed both ends, so the write ends with the bytes accepted. */
static void test_R32_waker_tears_down_inside_peer_blocking_write(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    char buf[8];
    struct closer c;
    mempipe_waker w = tear_down_on_wake(&c, 4, &a, &b);
    assert_rc(-EAGAIN, mempipe_poll_read(a, buf, sizeof buf, &w));
    assert_rc(4, mempipe_write(b, "abcdefgh", 8));
    assert_rc(1, c.calls);
}

/* a's own shutdown wakes a's parked writer, whose waker closes a and b. */
static void test_R32_waker_tears_down_inside_own_shutdown(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    struct closer c;
    mempipe_waker w = tear_down_on_wake(&c, 4, &a, &b);
    assert_rc(4, mempipe_poll_write(a, "abcd", 4, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "e", 1, &w));
    assert_rc(0, mempipe_shutdown(a));
    assert_rc(1, c.calls);
}

/* The peer's close runs a waker that closes the last end. */
static void test_R32_waker_closes_last_end_inside_peer_close(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    char buf[8];
    assert_rc(0, mempipe_duplex(4, &a, &b));
    struct closer c = {.first = a};
    mempipe_waker w = {closer_wake, &c};
    assert_rc(-EAGAIN, mempipe_poll_read(a, buf, sizeof buf, &w));
    mempipe_close(b); /* wakes a's reader (EOF), which closes a */
    assert_rc(1, c.calls);
}

/* With fds asked for, the hook after the wake has real work to do. */
static void test_R32_waker_tears_down_with_fds_watched(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    char buf[8];
    struct closer c;
    mempipe_waker w = tear_down_on_wake(&c, 16, &a, &b);
    assert_true(mempipe_readable_fd(a) >= 0);
    assert_true(mempipe_writable_fd(b) >= 0);
    assert_rc(-EAGAIN, mempipe_poll_read(a, buf, sizeof buf, &w));
    assert_rc(3, mempipe_poll_write(b, "abc", 3, NULL));
    assert_rc(1, c.calls);
}

/* Nested: a's waker, inside b's write, writes to b again (whose wake runs a
 * second waker that closes everything), then returns into the outer call. */
struct nester {
    mempipe *a, *b;
    struct closer inner;
    int calls;
};

static void nester_wake(void *ctx)
{
    struct nester *n = ctx;
    char buf[8];
    n->calls++;
    mempipe_waker w = {closer_wake, &n->inner};
    /* Drain what woke us, store the closer, and write once more. */
    while (mempipe_poll_read(n->a, buf, sizeof buf, &w) > 0)
        ;
    n->inner.first = n->a;
    n->inner.second = n->b;
    assert_rc(1, mempipe_poll_write(n->b, "z", 1, NULL));
}

static void test_R32_nested_wakes_close_everything(void **state)
{
    (void)state;
    struct nester n = {0};
    char buf[8];
    assert_rc(0, mempipe_duplex(16, &n.a, &n.b));
    mempipe_waker w = {nester_wake, &n};
    assert_rc(-EAGAIN, mempipe_poll_read(n.a, buf, sizeof buf, &w));
    assert_rc(2, mempipe_poll_write(n.b, "xy", 2, NULL));
    assert_rc(1, n.calls);
    assert_rc(1, n.inner.calls);
}

/*
 * Two threads, in the pattern of the issue that found R32: a's reader waker
 * runs on thread B inside b's write and closes b (the end whose call runs
 * it) after a pause, while thread A closes a, which waits for the running
 * waker and then drops the other reference. Before R32, A's close freed the
 * pipe while B's write was still in its wake epilogue.
 */
struct race {
    mempipe *a, *b;
    atomic_int stored; /* a's waker is stored: B may write */
    atomic_int in_waker;
};

static void race_wake(void *ctx)
{
    struct race *r = ctx;
    atomic_store(&r->in_waker, 1);
    for (int i = 0; i < 50; i++)
        sched_yield(); /* widen the window: A is waiting in its close */
    mempipe_close(r->b);
}

static void *race_writer(void *arg)
{
    struct race *r = arg;
    while (!atomic_load(&r->stored))
        sched_yield();
    T_RC(3, mempipe_poll_write(r->b, "abc", 3, NULL));
    return NULL;
}

static void
test_R32_two_threads_waker_closes_calling_end_while_peer_closes(void **state)
{
    (void)state;
    tu_watchdog_start("R32 two threads");
    double until = tu_now() + 4.0; /* at most 20,000 rounds or 4 s */
    for (int i = 0; i < 20000 && tu_now() < until; i++) {
        struct race r = {0};
        char buf[8];
        assert_rc(0, mempipe_duplex(16, &r.a, &r.b));
        if (i % 2)
            assert_true(mempipe_writable_fd(r.b) >= 0);
        mempipe_waker w = {race_wake, &r};
        assert_rc(-EAGAIN, mempipe_poll_read(r.a, buf, sizeof buf, &w));
        pthread_t t;
        assert_int_equal(0, pthread_create(&t, NULL, race_writer, &r));
        atomic_store(&r.stored, 1);
        while (!atomic_load(&r.in_waker))
            sched_yield();
        mempipe_close(r.a); /* waits for the waker, which closes b */
        assert_int_equal(0, pthread_join(t, NULL));
        atomic_fetch_add(&tu_progress, 1);
    }
    tu_watchdog_end();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_R32_loopback_waker_closes_end_inside_its_shutdown,
            tu_poison_setup, tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(
            test_R32_loopback_waker_closes_end_inside_its_write,
            tu_poison_setup, tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(
            test_R32_waker_tears_down_inside_peer_write, tu_poison_setup,
            tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(
            test_R32_waker_tears_down_inside_peer_writev, tu_poison_setup,
            tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(
            test_R32_waker_tears_down_inside_peer_read, tu_poison_setup,
            tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(
            test_R32_waker_tears_down_inside_peer_blocking_read,
            tu_poison_setup, tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(
            test_R32_waker_tears_down_inside_peer_blocking_write,
            tu_poison_setup, tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(
            test_R32_waker_tears_down_inside_own_shutdown, tu_poison_setup,
            tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(
            test_R32_waker_closes_last_end_inside_peer_close, tu_poison_setup,
            tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(
            test_R32_waker_tears_down_with_fds_watched, tu_poison_setup,
            tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(test_R32_nested_wakes_close_everything,
                                        tu_poison_setup, tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(
            test_R32_two_threads_waker_closes_calling_end_while_peer_closes,
            tu_poison_setup, tu_alloc_teardown),
    };
    /* MEMPIPE_TEST_FILTER=test_R32_... runs one test (cmocka's filter). */
    const char *only = getenv("MEMPIPE_TEST_FILTER");
    if (only != NULL)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
