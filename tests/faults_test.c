/* SPDX-License-Identifier: MIT */
/*
 * The testing features of one end: injected faults (R48), statistics (R49)
 * and taps (R50). Each is checked for what the end's own calls return,
 * that the peer is unaffected, that a failed call changes nothing, for
 * reproducibility (the chunk seed), for bad input and, under TSan, for
 * statistics read while two threads move data.
 */
#include "kinds.h"
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

static mempipe_faults faults(void)
{
    mempipe_faults f;
    memset(&f, 0, sizeof f);
    return f;
}

/* ---- R48 faults ------------------------------------------------------- */

static void test_R48_caps_make_short_reads_and_writes(void **state)
{
    (void)state;
    mempipe *a, *b;
    unsigned char buf[64];
    assert_rc(0, mempipe_duplex(64, &a, &b));
    mempipe_faults f = faults();
    f.max_write = 3;
    assert_rc(0, mempipe_set_faults(a, &f));
    assert_rc(3, mempipe_poll_write(a, "0123456789", 10, NULL));
    struct iovec iov[2] = {{"ab", 2}, {"cd", 2}};
    assert_rc(3, mempipe_poll_writev(a, iov, 2, NULL));
    f = faults();
    f.max_read = 2;
    assert_rc(0, mempipe_set_faults(b, &f));
    assert_rc(2, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_memory_equal(buf, "01", 2);
    assert_rc(2, mempipe_read(b, buf, sizeof buf)); /* blocking, capped */
    assert_memory_equal(buf, "2a", 2);
    assert_rc(2, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_memory_equal(buf, "bc", 2);
    /* The peer is unaffected: b writes and a reads whole. */
    assert_rc(10, mempipe_poll_write(b, "0123456789", 10, NULL));
    assert_rc(10, mempipe_poll_read(a, buf, sizeof buf, NULL));
    mempipe_close(a);
    mempipe_close(b);
}

/* A blocking write delivers all of len, in capped pieces. */
static void *drain_main(void *arg)
{
    mempipe *e = arg;
    unsigned char buf[4096];
    size_t got = 0;
    ssize_t n;
    while ((n = mempipe_read(e, buf, sizeof buf)) > 0) {
        T_CHECK(tu_check_pattern(buf, (size_t)n, got, 3) < 0, "bad byte");
        got += (size_t)n;
    }
    return (void *)(uintptr_t)got;
}

static void test_R48_blocking_write_delivers_all_in_pieces(void **state)
{
    (void)state;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(16, &a, &b));
    mempipe_faults f = faults();
    f.max_write = 5;
    f.chunk_seed = 77;
    assert_rc(0, mempipe_set_faults(a, &f));
    static unsigned char src[10000];
    tu_pattern(src, sizeof src, 0, 3);
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, drain_main, b));
    assert_rc(sizeof src, mempipe_write(a, src, sizeof src));
    mempipe_stats st;
    assert_rc(0, mempipe_get_stats(a, &st));
    assert_true(st.writes >= sizeof src / 5); /* every piece at most 5 */
    assert_rc(0, mempipe_shutdown(a));
    void *got;
    assert_int_equal(0, pthread_join(t, &got));
    assert_int_equal(sizeof src, (size_t)(uintptr_t)got);
    mempipe_close(a);
    mempipe_close(b);
}

/* The caps one seed draws, for 64 writes of 100 bytes into a big pipe. */
static void draw_caps(unsigned seed, size_t caps[64])
{
    mempipe *a, *b;
    static unsigned char src[100];
    assert_rc(0, mempipe_duplex(1u << 20, &a, &b));
    mempipe_faults f = faults();
    f.max_write = 40;
    f.chunk_seed = seed;
    assert_rc(0, mempipe_set_faults(a, &f));
    for (int i = 0; i < 64; i++) {
        ssize_t n = mempipe_poll_write(a, src, sizeof src, NULL);
        assert_true(n >= 1 && n <= 40);
        caps[i] = (size_t)n;
    }
    mempipe_close(a);
    mempipe_close(b);
}

static void test_R48_chunk_seed_is_reproducible(void **state)
{
    (void)state;
    size_t x[64], y[64], z[64];
    draw_caps(12345, x);
    draw_caps(12345, y);
    draw_caps(54321, z);
    assert_memory_equal(x, y, sizeof x);
    assert_memory_not_equal(x, z, sizeof x);
    int distinct = 0; /* drawn, not fixed */
    for (int i = 1; i < 64; i++)
        distinct += x[i] != x[0];
    assert_true(distinct > 0);
}

static void test_R48_fail_write_at_nth_and_every_later(void **state)
{
    (void)state;
    mempipe *a, *b;
    unsigned char buf[8];
    assert_rc(0, mempipe_duplex(4, &a, &b));
    mempipe_faults f = faults();
    f.fail_write_at = 3;
    f.fail_err = -EIO;
    assert_rc(0, mempipe_set_faults(a, &f));
    assert_rc(0, mempipe_poll_write(a, "x", 0, NULL));  /* len 0: not counted */
    assert_rc(2, mempipe_poll_write(a, "ab", 2, NULL)); /* 1 */
    assert_rc(2, mempipe_poll_write(a, "cd", 2, NULL)); /* 2 */
    /* Full: pending calls are not counted. */
    assert_rc(-EAGAIN, mempipe_poll_write(a, "e", 1, NULL));
    assert_rc(4, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(-EIO, mempipe_poll_write(a, "e", 1, NULL)); /* 3 */
    assert_rc(-EIO, mempipe_write(a, "e", 1));            /* later */
    assert_rc(0, mempipe_readable(b));                    /* nothing moved */
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, NULL));
    /* A new set_faults restarts the count. */
    assert_rc(0, mempipe_set_faults(a, &f));
    assert_rc(1, mempipe_poll_write(a, "f", 1, NULL));
    assert_rc(0, mempipe_set_faults(a, NULL)); /* cleared */
    for (int i = 0; i < 3; i++)
        assert_rc(1, mempipe_poll_write(a, "g", 1, NULL));
    mempipe_stats st;
    assert_rc(0, mempipe_get_stats(a, &st));
    assert_int_equal(2, st.faults);
    assert_int_equal(2, st.failed);
    mempipe_close(a);
    mempipe_close(b);
}

/* Reads count EOF (not pending) too; a failed read takes no byte. */
static void test_R48_fail_read_at(void **state)
{
    (void)state;
    mempipe *a, *b;
    unsigned char buf[8];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    mempipe_faults f = faults();
    f.fail_read_at = 2;
    f.fail_err = -ECONNRESET;
    assert_rc(0, mempipe_set_faults(b, &f));
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(2, mempipe_poll_write(a, "hi", 2, NULL));
    assert_rc(1, mempipe_poll_read(b, buf, 1, NULL)); /* 1 */
    assert_rc(-ECONNRESET, mempipe_poll_read(b, buf, 1, NULL));
    assert_rc(-ECONNRESET, mempipe_read(b, buf, 1));
    assert_rc(1, mempipe_readable(b)); /* the byte is still there */
    assert_rc(0, mempipe_set_faults(b, NULL));
    assert_rc(1, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_int_equal('i', buf[0]);
    mempipe_close(a);
    mempipe_close(b);
}

/* Every Nth poll call with bytes to move is pending once, its waker called
 * before it returns; blocking calls are not counted. */
static void test_R48_pending_every(void **state)
{
    (void)state;
    mempipe *a, *b;
    unsigned char buf[8];
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    assert_rc(0, mempipe_duplex(64, &a, &b));
    mempipe_faults f = faults();
    f.pending_every = 3;
    assert_rc(0, mempipe_set_faults(a, &f));
    assert_rc(1, mempipe_poll_write(a, "1", 1, &w));
    assert_rc(1, mempipe_poll_write(a, "2", 1, &w));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "3", 1, &w)); /* the 3rd */
    expect_calls(1, &c);
    assert_rc(2, mempipe_readable(b));               /* nothing moved */
    assert_rc(1, mempipe_write(a, "3", 1));          /* blocking: not counted */
    assert_rc(0, mempipe_poll_write(a, "x", 0, &w)); /* len 0: not counted */
    assert_rc(3, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(3, mempipe_poll_write(b, "abc", 3, NULL));
    assert_rc(3, mempipe_poll_read(a, buf, sizeof buf, &w)); /* 4th */
    assert_rc(1, mempipe_poll_write(a, "4", 1, &w));         /* 5th */
    assert_rc(-EAGAIN, mempipe_poll_read(a, buf, 1, &w));    /* 6th */
    expect_calls(2, &c);
    mempipe_close(a);
    mempipe_close(b);
}

static void test_R48_bad_input_changes_nothing(void **state)
{
    (void)state;
    static const int bad[] = {0, 5, -EAGAIN, -4096};
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    mempipe_faults f = faults();
    assert_rc(-EINVAL, mempipe_set_faults(NULL, &f));
    assert_rc(-EINVAL, mempipe_set_faults(NULL, NULL));
    f.max_write = 1;
    assert_rc(0, mempipe_set_faults(a, &f));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mempipe_faults g = faults();
        g.fail_write_at = 1;
        g.fail_err = bad[i];
        assert_rc(-EINVAL, mempipe_set_faults(a, &g));
    }
    /* The earlier faults are still in effect. */
    assert_rc(1, mempipe_poll_write(a, "xy", 2, NULL));
    mempipe_close(a);
    mempipe_close(b);
}

static void test_R48_first_use_out_of_memory(void **state)
{
    (void)state;
    mempipe *a, *b;
    mempipe_stats st;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(2, mempipe_poll_write(a, "ab", 2, NULL));
    atomic_store(&tu_cnt.fail_at, atomic_load(&tu_cnt.calls) + 1);
    mempipe_faults f = faults();
    f.max_write = 1;
    assert_rc(-ENOMEM, mempipe_set_faults(a, &f));
    assert_rc(-ENOMEM, mempipe_set_tap(a, NULL, NULL));
    assert_rc(-ENOMEM, mempipe_get_stats(a, &st));
    assert_int_equal(2, st.bytes_written); /* the exact counts still */
    atomic_store(&tu_cnt.fail_at, 0);
    assert_rc(2, mempipe_poll_write(a, "cd", 2, NULL)); /* no fault set */
    mempipe_close(a);
    mempipe_close(b);
}

/* An end with faults takes the general path, which still sees a reset. */
static void test_R48_slow_end_still_sees_a_reset(void **state)
{
    (void)state;
    mempipe *a, *b;
    unsigned char buf[8];
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(0, mempipe_set_faults(b, NULL));
    assert_rc(6, mempipe_poll_write(a, "abcdef", 6, NULL));
    assert_rc(2, mempipe_poll_read(b, buf, 2, NULL));
    mempipe_abort(a);
    assert_rc(-ECONNRESET, mempipe_poll_read(b, buf, 2, NULL));
    mempipe_close(b);
}

/* ---- R49 stats ---------------------------------------------------------- */

static void test_R49_counts(void **state)
{
    (void)state;
    mempipe *a, *b;
    unsigned char buf[8];
    mempipe_stats st;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    assert_rc(3, mempipe_poll_write(a, "abc", 3, NULL)); /* before counting */
    assert_rc(0, mempipe_get_stats(a, &st));
    assert_int_equal(3, st.bytes_written); /* exact from the positions */
    assert_int_equal(0, st.writes);
    assert_rc(1, mempipe_poll_write(a, "d", 1, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "e", 1, NULL));
    assert_rc(0, mempipe_get_stats(b, &st)); /* b counts from here */
    assert_rc(4, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(0, mempipe_get_stats(a, &st));
    assert_int_equal(4, st.bytes_written);
    assert_int_equal(1, st.writes);
    assert_int_equal(1, st.pending_writes);
    assert_int_equal(4, st.peak_buffered);
    assert_rc(0, mempipe_get_stats(b, &st));
    assert_int_equal(4, st.bytes_read);
    assert_int_equal(1, st.reads);
    assert_int_equal(1, st.pending_reads);
    assert_int_equal(0, st.faults);
    assert_rc(-EINVAL, mempipe_get_stats(NULL, &st));
    assert_rc(-EINVAL, mempipe_get_stats(a, NULL));
    mempipe_close(a);
    mempipe_close(b);
}

/* The bytes a reset discards are not counted as read (found by the fuzzer
 * model's author: bytes_read was the read position, which the discard
 * moves). */
static void test_R49_bytes_read_leave_out_what_a_reset_discarded(void **state)
{
    (void)state;
    mempipe *a, *b;
    unsigned char buf[8];
    mempipe_stats st;
    assert_rc(0, mempipe_duplex(16, &a, &b));
    assert_rc(6, mempipe_poll_write(a, "abcdef", 6, NULL));
    assert_rc(2, mempipe_poll_read(b, buf, 2, NULL));
    mempipe_abort(a);
    assert_rc(-ECONNRESET, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(0, mempipe_get_stats(b, &st));
    assert_int_equal(2, st.bytes_read);
    mempipe_close(b);
}

/* A parked reader: its write peer's call wakes it (wakes), and the reader's
 * blocking call waited (parks). */
static void *read_one(void *arg)
{
    unsigned char c;
    T_RC(1, mempipe_read(arg, &c, 1));
    return NULL;
}

static void test_R49_wakes_and_parks(void **state)
{
    (void)state;
    mempipe *a, *b;
    mempipe_stats st;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    assert_rc(0, mempipe_get_stats(a, &st));
    assert_rc(0, mempipe_get_stats(b, &st));
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, read_one, b));
    for (int i = 0; i < 200000; i++) { /* until b's reader parked */
        char line[128];
        mempipe_describe(b, line, sizeof line);
        if (strstr(line, "wakers=r-") != NULL)
            break;
        sched_yield();
    }
    assert_rc(1, mempipe_poll_write(a, "z", 1, NULL));
    assert_int_equal(0, pthread_join(t, NULL));
    assert_rc(0, mempipe_get_stats(a, &st));
    assert_int_equal(1, st.wakes);
    assert_rc(0, mempipe_get_stats(b, &st));
    assert_true(st.parks >= 1);
    assert_int_equal(1, st.reads);
    mempipe_close(a);
    mempipe_close(b);
}

/* Under TSan: stats read while a writer and a reader thread move data. */
struct mover {
    mempipe *end;
    int write;
};

static void *mover_main(void *arg)
{
    struct mover *m = arg;
    unsigned char buf[300];
    memset(buf, 'm', sizeof buf);
    if (m->write) {
        for (int i = 0; i < 2000; i++)
            T_RC(sizeof buf, mempipe_write(m->end, buf, sizeof buf));
        T_RC(0, mempipe_shutdown(m->end));
        return NULL;
    }
    while (mempipe_read(m->end, buf, sizeof buf) > 0)
        ;
    return NULL;
}

static void test_R49_stats_while_threads_move_data(void **state)
{
    (void)state;
    mempipe *a, *b;
    mempipe_stats st;
    assert_rc(0, mempipe_duplex(1024, &a, &b));
    assert_rc(0, mempipe_get_stats(a, &st));
    struct mover w = {a, 1}, r = {b, 0};
    pthread_t tw, tr;
    assert_int_equal(0, pthread_create(&tw, NULL, mover_main, &w));
    assert_int_equal(0, pthread_create(&tr, NULL, mover_main, &r));
    uint64_t last = 0;
    for (int i = 0; i < 2000; i++) {
        assert_rc(0, mempipe_get_stats(a, &st));
        assert_true(st.bytes_written >= last); /* never goes back */
        last = st.bytes_written;
        assert_rc(0, mempipe_get_stats(b, &st));
    }
    assert_int_equal(0, pthread_join(tw, NULL));
    assert_int_equal(0, pthread_join(tr, NULL));
    assert_rc(0, mempipe_get_stats(a, &st));
    assert_int_equal(2000 * 300, st.bytes_written);
    assert_true(st.writes >= 2000);
    assert_true(st.peak_buffered <= 1024);
    mempipe_close(a);
    mempipe_close(b);
}

/* ---- R50 taps ------------------------------------------------------------ */

struct log {
    unsigned char w[256], r[256];
    size_t nw, nr;
    int calls;
};

static void log_tap(void *ctx, int dir, const void *data, size_t len)
{
    struct log *l = ctx;
    l->calls++;
    unsigned char *to = dir == MEMPIPE_TAP_WRITE ? l->w : l->r;
    size_t *n = dir == MEMPIPE_TAP_WRITE ? &l->nw : &l->nr;
    memcpy(to + *n, data, len);
    *n += len;
}

static void test_R50_tap_sees_every_byte_in_order(void **state)
{
    (void)state;
    mempipe *a, *b;
    unsigned char buf[16];
    struct log l = {0};
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(0, mempipe_set_tap(a, log_tap, &l));
    assert_rc(3, mempipe_poll_write(a, "abc", 3, NULL));
    struct iovec iov[3] = {{"de", 2}, {"", 0}, {"fghij", 5}};
    assert_rc(5, mempipe_poll_writev(a, iov, 3, NULL)); /* cut at 8 */
    assert_rc(-EAGAIN, mempipe_poll_write(a, "k", 1, NULL));
    assert_rc(8, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(2, mempipe_write(a, "kl", 2));
    assert_rc(4, mempipe_poll_write(b, "WXYZ", 4, NULL));
    assert_rc(2, mempipe_poll_read(a, buf, 2, NULL));
    assert_rc(2, mempipe_read(a, buf, sizeof buf));
    assert_int_equal(10, l.nw);
    assert_memory_equal("abcdefghkl", l.w, 10);
    assert_int_equal(4, l.nr);
    assert_memory_equal("WXYZ", l.r, 4);
    int calls = l.calls;
    assert_rc(0, mempipe_set_tap(a, NULL, &l)); /* removed */
    assert_rc(1, mempipe_poll_write(a, "m", 1, NULL));
    assert_int_equal(calls, l.calls);
    assert_rc(-EINVAL, mempipe_set_tap(NULL, log_tap, &l));
    mempipe_close(a);
    mempipe_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R48_caps_make_short_reads_and_writes),
        cmocka_unit_test(test_R48_blocking_write_delivers_all_in_pieces),
        cmocka_unit_test(test_R48_chunk_seed_is_reproducible),
        cmocka_unit_test(test_R48_fail_write_at_nth_and_every_later),
        cmocka_unit_test(test_R48_fail_read_at),
        cmocka_unit_test(test_R48_pending_every),
        cmocka_unit_test(test_R48_bad_input_changes_nothing),
        cmocka_unit_test_setup_teardown(test_R48_first_use_out_of_memory,
                                        tu_alloc_setup, tu_alloc_teardown),
        cmocka_unit_test(test_R48_slow_end_still_sees_a_reset),
        cmocka_unit_test(test_R49_counts),
        cmocka_unit_test(test_R49_bytes_read_leave_out_what_a_reset_discarded),
        cmocka_unit_test(test_R49_wakes_and_parks),
        cmocka_unit_test(test_R49_stats_while_threads_move_data),
        cmocka_unit_test(test_R50_tap_sees_every_byte_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
