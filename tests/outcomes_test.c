/* SPDX-License-Identifier: MIT */
/*
 * Close outcomes beyond EOF and -EPIPE: mempipe_close_with_error (R37),
 * mempipe_abort (R38) and mempipe_set_rst_on_unread (R39). Each is checked
 * for what the peer reads and writes afterwards, for every parked party it
 * must wake (wakers, blocking threads, pollable fds), for bad input, and
 * for races with the peer's concurrent reads and writes.
 */
#include "kinds.h"
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

static void put(mempipe *e, const char *s)
{
    assert_rc(strlen(s), mempipe_poll_write(e, s, strlen(s), NULL));
}

/* ---- R37 ------------------------------------------------------------- */

static void test_R37_peer_reads_bytes_then_error_every_time(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[16];
    assert_rc(0, mempipe_duplex(64, &a, &b));
    put(a, "hello");
    assert_rc(0, mempipe_close_with_error(a, -EIO));
    assert_rc(5, mempipe_readable(b));
    expect_read(b, "hello", 5);
    for (int i = 0; i < 3; i++) /* sticky, never a silent EOF */
        assert_rc(-EIO, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(-EIO, mempipe_read(b, buf, sizeof buf));
    assert_rc(0, mempipe_poll_read(b, buf, 0, NULL)); /* R8 still */
    /* Its writes get the error too, poll and blocking. */
    assert_rc(-EIO, mempipe_poll_write(b, "x", 1, NULL));
    assert_rc(-EIO, mempipe_write(b, "x", 1));
    struct iovec iov = {"xy", 2};
    assert_rc(-EIO, mempipe_poll_writev(b, &iov, 1, NULL));
    mempipe_close(b);
}

static void test_R37_simplex_both_directions(void **state)
{
    (void)state;
    mempipe *r, *w;
    char buf[8];
    assert_rc(0, mempipe_simplex(8, &r, &w));
    put(w, "ab");
    assert_rc(0, mempipe_close_with_error(w, -ECONNABORTED));
    expect_read(r, "ab", 2);
    assert_rc(-ECONNABORTED, mempipe_poll_read(r, buf, sizeof buf, NULL));
    mempipe_close(r);

    assert_rc(0, mempipe_simplex(8, &r, &w));
    assert_rc(0, mempipe_close_with_error(r, -ENOTCONN));
    assert_rc(-ENOTCONN, mempipe_poll_write(w, "ab", 2, NULL));
    mempipe_close(w);
}

/* Its own shutdown came first: the writer keeps -EPIPE, not the error. */
static void test_R37_own_shutdown_first_keeps_epipe(void **state)
{
    (void)state;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(0, mempipe_shutdown(b));
    assert_rc(0, mempipe_close_with_error(a, -EIO));
    assert_rc(-EPIPE, mempipe_poll_write(b, "x", 1, NULL));
    mempipe_close(b);
}

/* EOF already sent by a shutdown: the first close decides (R5). */
static void test_R37_after_shutdown_reader_keeps_eof(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[8];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    put(a, "z");
    assert_rc(0, mempipe_shutdown(a));
    assert_rc(0, mempipe_close_with_error(a, -EIO));
    expect_read(b, "z", 1);
    assert_rc(0, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(0, mempipe_poll_read(b, buf, sizeof buf, NULL));
    /* The other direction: b's writes meet the error (a's reading side
     * was open until this close). */
    assert_rc(-EIO, mempipe_poll_write(b, "x", 1, NULL));
    mempipe_close(b);
}

/* A failed call changes nothing: the end stays open and the caller's. */
static void test_R37_bad_error_rejected_nothing_closed(void **state)
{
    (void)state;
    static const int bad[] = {0, 1, EIO, -4096, INT_MIN, -EAGAIN};
    mempipe *a, *b;
    char buf[8];
    assert_rc(-EINVAL, mempipe_close_with_error(NULL, -EIO));
    assert_rc(0, mempipe_duplex(8, &a, &b));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_rc(-EINVAL, mempipe_close_with_error(a, bad[i]));
    put(a, "ok");
    expect_read(b, "ok", 2);
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(0, mempipe_close_with_error(a, -4095)); /* the largest */
    assert_rc(-4095, mempipe_poll_read(b, buf, sizeof buf, NULL));
    mempipe_close(b);
}

/* Parked peers are woken: a reader waker, a writer waker, both fds. */
static void test_R37_wakes_parked_peer_and_fds(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[8];
    struct tu_counter rd = {0}, wr = {0};
    mempipe_waker rw = tu_counter_waker(&rd), ww = tu_counter_waker(&wr);
    assert_rc(0, mempipe_duplex(2, &a, &b));
    int rfd = mempipe_readable_fd(b), wfd = mempipe_writable_fd(b);
    assert_true(rfd >= 0 && wfd >= 0);
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, &rw));
    put(b, "xy");
    assert_rc(-EAGAIN, mempipe_poll_write(b, "z", 1, &ww));
    struct pollfd pfd[2] = {{rfd, POLLIN, 0}, {wfd, POLLIN, 0}};
    assert_rc(0, poll(pfd, 2, 0));
    assert_rc(0, mempipe_close_with_error(a, -EIO));
    expect_calls(1, &rd);
    expect_calls(1, &wr);
    assert_rc(2, poll(pfd, 2, 0));
    assert_rc(-EIO, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(-EIO, mempipe_poll_write(b, "z", 1, NULL));
    mempipe_close(b);
}

struct blocked {
    mempipe *end;
    atomic_int started;
    ssize_t rc;
    int write;
};

static void *blocked_call(void *arg)
{
    struct blocked *bl = arg;
    char buf[64] = {0};
    atomic_store(&bl->started, 1);
    bl->rc = bl->write ? mempipe_write(bl->end, buf, sizeof buf)
                       : mempipe_read(bl->end, buf, sizeof buf);
    return NULL;
}

/* A blocking read and a blocking write, parked, get the outcome. Returns
 * what each returned. */
static void blocked_outcome(void (*closer)(mempipe *), ssize_t *rd_rc,
                            ssize_t *wr_rc)
{
    mempipe *a, *b, *c, *d;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    assert_rc(0, mempipe_duplex(4, &c, &d));
    put(d, "full"); /* d's writes now wait */
    struct blocked r = {.end = b}, w = {.end = d, .write = 1};
    pthread_t tr, tw;
    assert_int_equal(0, pthread_create(&tr, NULL, blocked_call, &r));
    assert_int_equal(0, pthread_create(&tw, NULL, blocked_call, &w));
    while (!atomic_load(&r.started) || !atomic_load(&w.started))
        sched_yield();
    for (int i = 0; i < 1000; i++)
        sched_yield(); /* let both park (either order is tested) */
    closer(a);
    closer(c);
    assert_int_equal(0, pthread_join(tr, NULL));
    assert_int_equal(0, pthread_join(tw, NULL));
    *rd_rc = r.rc;
    *wr_rc = w.rc;
    mempipe_close(b);
    mempipe_close(d);
}

static void close_eio(mempipe *e)
{
    assert_rc(0, mempipe_close_with_error(e, -EIO));
}

static void test_R37_wakes_blocked_threads(void **state)
{
    (void)state;
    ssize_t r, w;
    tu_watchdog_start("R37 blocked threads");
    blocked_outcome(close_eio, &r, &w);
    tu_watchdog_end();
    assert_rc(-EIO, r);
    assert_rc(-EIO, w);
}

/*
 * Closing is one event for the peer: once it has seen the close in one
 * direction (EOF, or the error), its writes in the other fail too, as when
 * a socket closes both ways at once. The peer runs on another thread while
 * the close is under way.
 */
struct seer {
    mempipe *end;
    atomic_int go;
    ssize_t seen, write;
};

static void *see_then_write(void *arg)
{
    struct seer *s = arg;
    char buf[8];
    for (long spins = 0; !atomic_load(&s->go); spins++)
        if (spins % 4096 == 4095)
            sched_yield(); /* valgrind runs one thread at a time */
    for (long spins = 1;; spins++) {
        s->seen = mempipe_poll_read(s->end, buf, sizeof buf, NULL);
        if (s->seen != -EAGAIN)
            break;
        if (spins % 4096 == 0)
            sched_yield();
    }
    s->write = mempipe_poll_write(s->end, "x", 1, NULL);
    return NULL;
}

static void test_R37_peer_that_saw_the_close_cannot_write(void **state)
{
    (void)state;
    tu_watchdog_start("R37 close is one event");
    double until = tu_now() + 3.0; /* at most 3,000 rounds or 3 s */
    for (int i = 0; i < 3000 && tu_now() < until; i++) {
        mempipe *a, *b;
        assert_rc(0, mempipe_duplex(64, &a, &b));
        /* A readable fd on b: the close's wake of b's reader then makes a
         * syscall, which widens the window between the two directions. */
        assert_true(mempipe_readable_fd(b) >= 0);
        struct seer s = {.end = b};
        pthread_t t;
        assert_int_equal(0, pthread_create(&t, NULL, see_then_write, &s));
        atomic_store(&s.go, 1);
        if (i % 2)
            mempipe_close(a);
        else
            assert_rc(0, mempipe_close_with_error(a, -EIO));
        assert_int_equal(0, pthread_join(t, NULL));
        assert_rc(i % 2 ? 0 : -EIO, s.seen);
        assert_rc(i % 2 ? -EPIPE : -EIO, s.write);
        mempipe_close(b);
        atomic_fetch_add(&tu_progress, 1);
    }
    tu_watchdog_end();
}

/* ---- R38 ------------------------------------------------------------- */

static void test_R38_abort_discards_both_directions(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[16];
    assert_rc(0, mempipe_duplex(64, &a, &b));
    put(a, "to b");
    put(b, "to a");
    mempipe_abort(a);
    assert_rc(0, mempipe_readable(b)); /* at once */
    for (int i = 0; i < 3; i++)        /* never a silent EOF */
        assert_rc(-ECONNRESET, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(-ECONNRESET, mempipe_read(b, buf, sizeof buf));
    assert_rc(-ECONNRESET, mempipe_poll_write(b, "x", 1, NULL));
    assert_rc(-ECONNRESET, mempipe_write(b, "x", 1));
    mempipe_close(b);
}

/* Small reads first, so the reader's fast path has bytes cached in its
 * window: the abort must still stop it at once. */
static void test_R38_abort_stops_a_reader_mid_segment(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[4];
    assert_rc(0, mempipe_duplex(4096, &a, &b));
    put(a, "0123456789");
    assert_rc(2, mempipe_poll_read(b, buf, 2, NULL));
    assert_rc(2, mempipe_poll_read(b, buf, 2, NULL));
    mempipe_abort(a);
    assert_rc(-ECONNRESET, mempipe_poll_read(b, buf, 2, NULL));
    mempipe_close(b);
}

/* An earlier shutdown (EOF on its way) or close_with_error is overridden. */
static void test_R38_abort_after_shutdown_overrides_eof(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[8];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    put(a, "late");
    assert_rc(0, mempipe_shutdown(a));
    mempipe_abort(a);
    assert_rc(0, mempipe_readable(b));
    assert_rc(-ECONNRESET, mempipe_poll_read(b, buf, sizeof buf, NULL));
    mempipe_close(b);
}

static void test_R38_simplex_abort_each_end(void **state)
{
    (void)state;
    mempipe *r, *w;
    char buf[8];
    assert_rc(0, mempipe_simplex(8, &r, &w));
    put(w, "abc");
    mempipe_abort(w);
    assert_rc(0, mempipe_readable(r));
    assert_rc(-ECONNRESET, mempipe_poll_read(r, buf, sizeof buf, NULL));
    mempipe_close(r);

    assert_rc(0, mempipe_simplex(8, &r, &w));
    put(w, "abc");
    mempipe_abort(r);
    assert_rc(-ECONNRESET, mempipe_poll_write(w, "x", 1, NULL));
    mempipe_close(w);
    mempipe_abort(NULL); /* a no-op */
}

static void abort_end(mempipe *e)
{
    mempipe_abort(e);
}

static void test_R38_wakes_blocked_threads(void **state)
{
    (void)state;
    ssize_t r, w;
    tu_watchdog_start("R38 blocked threads");
    blocked_outcome(abort_end, &r, &w);
    tu_watchdog_end();
    assert_rc(-ECONNRESET, r);
    assert_rc(-ECONNRESET, w);
}

/* The discarded bytes are freed by the peer's next read, not leaked. */
static void test_R38_discarded_bytes_are_freed(void **state)
{
    (void)state;
    mempipe *a, *b;
    char big[3000], buf[8];
    memset(big, 'q', sizeof big);
    assert_rc(0, mempipe_duplex(1u << 20, &a, &b));
    long long before = tu_live();
    assert_rc(sizeof big, mempipe_poll_write(a, big, sizeof big, NULL));
    assert_true(tu_live() > before);
    mempipe_abort(a);
    assert_rc(-ECONNRESET, mempipe_poll_read(b, buf, sizeof buf, NULL));
    mempipe_close(b); /* the teardown checks that nothing is left */
}

/*
 * Races: b's reader and writer threads keep calling while a's thread
 * aborts. Every byte b read before the reset is the next byte a wrote
 * (nothing reordered or invented), and from the first -ECONNRESET on, b
 * reads nothing else: no byte, no EOF.
 */
struct racer {
    mempipe *end;
    size_t got;
    long bad_at;
    int resets, eofs, after_reset;
};

static void *race_reader(void *arg)
{
    struct racer *r = arg;
    unsigned char buf[512];
    for (;;) {
        ssize_t n = mempipe_read(r->end, buf, sizeof buf);
        if (n == -ECONNRESET) {
            if (++r->resets == 3)
                return NULL;
            continue;
        }
        if (r->resets > 0) {
            r->after_reset++;
            return NULL;
        }
        if (n == 0) {
            r->eofs++;
            return NULL;
        }
        T_CHECK(n > 0, "read %zd", n);
        long bad = tu_check_pattern(buf, (size_t)n, r->got, 7);
        if (bad >= 0 && r->bad_at < 0)
            r->bad_at = (long)r->got + bad;
        r->got += (size_t)n;
    }
}

static void *race_writer(void *arg)
{
    struct racer *r = arg;
    unsigned char buf[256];
    uint64_t pos = 0;
    for (;;) {
        tu_pattern(buf, sizeof buf, pos, 9);
        ssize_t n = mempipe_write(r->end, buf, sizeof buf);
        if (n < 0) {
            r->resets += n == -ECONNRESET;
            return NULL;
        }
        pos += (uint64_t)n;
    }
}

static void test_R38_abort_races_peer_reads_and_writes(void **state)
{
    (void)state;
    tu_watchdog_start("R38 races");
    for (int i = 0; i < 200; i++) {
        mempipe *a, *b;
        size_t cap = i % 2 ? 64 : 4096;
        assert_rc(0, mempipe_duplex(cap, &a, &b));
        struct racer rd = {.end = b, .bad_at = -1}, wr = {.end = b};
        pthread_t tr, tw;
        assert_int_equal(0, pthread_create(&tr, NULL, race_reader, &rd));
        assert_int_equal(0, pthread_create(&tw, NULL, race_writer, &wr));
        unsigned char buf[256];
        uint64_t pos = 0;
        size_t want = (size_t)(i * 37) % 20000;
        while (pos < want) { /* a writes, and drains what b writes */
            tu_pattern(buf, sizeof buf, pos, 7);
            ssize_t n = mempipe_poll_write(a, buf, sizeof buf, NULL);
            if (n > 0)
                pos += (uint64_t)n;
            else
                sched_yield(); /* full: let b's reader run (valgrind
                                * runs one thread at a time) */
            while (mempipe_poll_read(a, buf, sizeof buf, NULL) > 0)
                ;
        }
        mempipe_abort(a);
        assert_int_equal(0, pthread_join(tr, NULL));
        assert_int_equal(0, pthread_join(tw, NULL));
        assert_int_equal(-1, rd.bad_at);
        assert_true(rd.got <= pos);
        assert_int_equal(3, rd.resets);
        assert_int_equal(0, rd.eofs);
        assert_int_equal(0, rd.after_reset);
        assert_int_equal(1, wr.resets);
        mempipe_close(b);
        atomic_fetch_add(&tu_progress, 1);
    }
    tu_watchdog_end();
}

/* ---- R39 ------------------------------------------------------------- */

static void test_R39_close_with_unread_bytes_is_a_reset(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[8];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(0, mempipe_set_rst_on_unread(a, 1));
    put(b, "unread");
    put(a, "sent");
    mempipe_close(a);
    assert_rc(0, mempipe_readable(b));
    assert_rc(-ECONNRESET, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(-ECONNRESET, mempipe_poll_write(b, "x", 1, NULL));
    mempipe_close(b);
}

/* Off (the default, or cleared), or nothing unread: a plain close (R9). */
static void test_R39_otherwise_a_plain_close(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[8];
    for (int mode = 0; mode < 3; mode++) {
        assert_rc(0, mempipe_duplex(8, &a, &b));
        if (mode == 1) {
            assert_rc(0, mempipe_set_rst_on_unread(a, 7));
            assert_rc(0, mempipe_set_rst_on_unread(a, 0));
        }
        if (mode == 2)
            assert_rc(0, mempipe_set_rst_on_unread(a, 1)); /* none unread */
        else
            put(b, "unread");
        put(a, "sent");
        mempipe_close(a);
        expect_read(b, "sent", 4);
        assert_rc(0, mempipe_poll_read(b, buf, sizeof buf, NULL));
        assert_rc(-EPIPE, mempipe_poll_write(b, "x", 1, NULL));
        mempipe_close(b);
    }
}

static void test_R39_bad_input(void **state)
{
    (void)state;
    mempipe *r, *w;
    assert_rc(-EINVAL, mempipe_set_rst_on_unread(NULL, 1));
    assert_rc(0, mempipe_simplex(8, &r, &w));
    assert_rc(-EBADF, mempipe_set_rst_on_unread(w, 1));
    assert_rc(0, mempipe_set_rst_on_unread(r, 1));
    put(w, "x");
    mempipe_close(r);
    assert_rc(-ECONNRESET, mempipe_poll_write(w, "x", 1, NULL));
    mempipe_close(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R37_peer_reads_bytes_then_error_every_time),
        cmocka_unit_test(test_R37_simplex_both_directions),
        cmocka_unit_test(test_R37_own_shutdown_first_keeps_epipe),
        cmocka_unit_test(test_R37_after_shutdown_reader_keeps_eof),
        cmocka_unit_test(test_R37_bad_error_rejected_nothing_closed),
        cmocka_unit_test(test_R37_wakes_parked_peer_and_fds),
        cmocka_unit_test(test_R37_wakes_blocked_threads),
        cmocka_unit_test(test_R37_peer_that_saw_the_close_cannot_write),
        cmocka_unit_test(test_R38_abort_discards_both_directions),
        cmocka_unit_test(test_R38_abort_stops_a_reader_mid_segment),
        cmocka_unit_test(test_R38_abort_after_shutdown_overrides_eof),
        cmocka_unit_test(test_R38_simplex_abort_each_end),
        cmocka_unit_test(test_R38_wakes_blocked_threads),
        cmocka_unit_test_setup_teardown(test_R38_discarded_bytes_are_freed,
                                        tu_alloc_setup, tu_alloc_teardown),
        cmocka_unit_test(test_R38_abort_races_peer_reads_and_writes),
        cmocka_unit_test(test_R39_close_with_unread_bytes_is_a_reset),
        cmocka_unit_test(test_R39_otherwise_a_plain_close),
        cmocka_unit_test(test_R39_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
