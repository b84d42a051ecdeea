/* SPDX-License-Identifier: MIT */
/*
 * Zero-copy windows and low-water marks (issue 11, SPEC R62-R66):
 * reserve/commit, peek/consume, consume_examined, the read and write marks
 * for wakers, readiness and blocking calls, and every misuse.
 */
#include "testutil.h"

#include "end.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static size_t span_total(const struct iovec *iov, int n)
{
    size_t t = 0;
    for (int i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

/* Writes len bytes of the pattern into the reserved spans. */
static void fill_spans(const struct iovec *iov, int n, size_t len, uint64_t pos,
                       uint64_t seed)
{
    for (int i = 0; i < n && len > 0; i++) {
        size_t k = iov[i].iov_len < len ? iov[i].iov_len : len;
        tu_pattern(iov[i].iov_base, k, pos, seed);
        pos += k;
        len -= k;
    }
}

/* ---- R62: reserve and commit ------------------------------------------- */

static void test_R62_reserve_commit_round_trip(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    struct iovec iov[2];
    int n = mempipe_write_reserve(a, 10, iov, NULL);
    assert_rc(1, n);
    assert_int_equal(10, span_total(iov, n));
    memcpy(iov[0].iov_base, "0123456789", 10);
    assert_int_equal(0, mempipe_readable(b)); /* nothing published yet */
    assert_rc(0, mempipe_write_commit(a, 10));
    char buf[16];
    assert_rc(10, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_memory_equal(buf, "0123456789", 10);
    /* More than the room: up to the room. */
    n = mempipe_write_reserve(a, 1000, iov, NULL);
    assert_true(n >= 1);
    assert_int_equal(64, span_total(iov, n));
    /* A prefix only: the next reserve starts after it. */
    memcpy(iov[0].iov_base, "abc", 3);
    assert_rc(0, mempipe_write_commit(a, 3));
    n = mempipe_write_reserve(a, 2, iov, NULL);
    assert_int_equal(2, span_total(iov, n));
    memcpy(iov[0].iov_base, "de", 2);
    assert_rc(0, mempipe_write_commit(a, 2));
    assert_rc(5, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_memory_equal(buf, "abcde", 5);
    /* Commit 0 ends a reservation and publishes nothing. */
    assert_true(mempipe_write_reserve(a, 4, iov, NULL) >= 1);
    assert_rc(0, mempipe_write_commit(a, 0));
    assert_int_equal(0, mempipe_readable(b));
    mempipe_close(a);
    mempipe_close(b);
}

/* Across a segment boundary: two spans, the bytes in order. */
static void test_R62_two_spans_at_a_segment_boundary(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(1 << 20, &a, &b));
    unsigned char tmp[4096];
    uint64_t pos = 0, got = 0;
    int saw_two = 0;
    for (int round = 0; round < 400; round++) {
        size_t want = 1 + (size_t)(round * 37 % 3000);
        struct iovec iov[2];
        int n = mempipe_write_reserve(a, want, iov, NULL);
        assert_true(n == 1 || n == 2);
        size_t t = span_total(iov, n);
        assert_true(t >= 1 && t <= want);
        saw_two |= n == 2;
        fill_spans(iov, n, t, pos, 11);
        assert_rc(0, mempipe_write_commit(a, t));
        pos += t;
        while (got < pos) {
            ssize_t k = mempipe_poll_read(b, tmp, sizeof tmp, NULL);
            assert_true(k > 0);
            assert_true(tu_check_pattern(tmp, (size_t)k, got, 11) < 0);
            got += (uint64_t)k;
        }
    }
    assert_true(saw_two);
    mempipe_close(a);
    mempipe_close(b);
}

/*
 * A commit after the pipe closed is -EPIPE (or the reader's error) and ends
 * the reservation, also a commit of 0 bytes (found by the fuzzer: 0 was
 * returned for it).
 */
static void test_R62_commit_after_a_close_fails_also_for_0(void **s)
{
    (void)s;
    mempipe *a, *b;
    struct iovec iov[2];
    assert_rc(0, mempipe_duplex(16, &a, &b));
    assert_rc(1, mempipe_write_reserve(a, 4, iov, NULL));
    assert_rc(0, mempipe_shutdown(a));
    assert_rc(-EPIPE, mempipe_write_commit(a, 0));
    assert_rc(-EINVAL, mempipe_write_commit(a, 0)); /* it is over */
    assert_rc(1, mempipe_write_reserve(b, 4, iov, NULL));
    assert_rc(0, mempipe_close_with_error(a, -EIO));
    assert_rc(-EIO, mempipe_write_commit(b, 0));
    assert_rc(-EINVAL, mempipe_write_commit(b, 0));
    mempipe_close(b);
}

static void test_R62_full_pipe_stores_the_waker(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(8, mempipe_poll_write(a, "12345678", 8, NULL));
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    struct iovec iov[2];
    assert_rc(-EAGAIN, mempipe_write_reserve(a, 4, iov, &w));
    char buf[8];
    assert_rc(8, mempipe_poll_read(b, buf, 8, NULL));
    assert_int_equal(1, tu_calls(&c));
    assert_true(mempipe_write_reserve(a, 4, iov, &w) >= 1);
    /* The reader goes: the commit fails, and the reservation is over. */
    mempipe_close(b);
    assert_rc(-EPIPE, mempipe_write_commit(a, 4));
    assert_rc(-EINVAL, mempipe_write_commit(a, 0));
    assert_rc(-EPIPE, mempipe_write_reserve(a, 4, iov, NULL));
    mempipe_close(a);
}

/* ---- R63: peek and consume ---------------------------------------------- */

static void test_R63_peek_consume_round_trip(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    struct iovec iov[2];
    assert_rc(-EAGAIN, mempipe_read_peek(b, iov, &w));
    assert_rc(5, mempipe_poll_write(a, "hello", 5, NULL));
    assert_int_equal(1, tu_calls(&c));
    int n = mempipe_read_peek(b, iov, NULL);
    assert_rc(1, n);
    assert_int_equal(5, iov[0].iov_len);
    assert_memory_equal(iov[0].iov_base, "hello", 5);
    assert_int_equal(5, mempipe_readable(b)); /* nothing taken */
    /* Peeking again shows a view that may have grown. */
    assert_rc(3, mempipe_poll_write(a, "abc", 3, NULL));
    n = mempipe_read_peek(b, iov, NULL);
    assert_int_equal(8, span_total(iov, n));
    assert_rc(0, mempipe_read_consume(b, 2));
    assert_int_equal(6, mempipe_readable(b));
    char buf[8];
    assert_rc(6, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_memory_equal(buf, "lloabc", 6);
    /* EOF: 0, every time. */
    assert_rc(0, mempipe_shutdown(a));
    assert_rc(0, mempipe_read_peek(b, iov, NULL));
    assert_rc(0, mempipe_read_peek(b, iov, &w));
    mempipe_close(a);
    mempipe_close(b);
}

static void test_R63_consume_wakes_the_parked_writer(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    assert_rc(4, mempipe_poll_write(a, "wxyz", 4, NULL));
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    assert_rc(-EAGAIN, mempipe_poll_write(a, "!", 1, &w));
    struct iovec iov[2];
    assert_rc(1, mempipe_read_peek(b, iov, NULL));
    assert_int_equal(0, tu_calls(&c)); /* a peek frees nothing */
    assert_rc(0, mempipe_read_consume(b, 1));
    assert_int_equal(1, tu_calls(&c));
    mempipe_close(a);
    mempipe_close(b);
}

/* The bytes a peek shows stay valid while the writer aborts (ASan). */
static void test_R63_peek_survives_the_peers_abort(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(1 << 16, &a, &b));
    unsigned char big[3000];
    tu_pattern(big, sizeof big, 0, 5);
    assert_rc(sizeof big, mempipe_poll_write(a, big, sizeof big, NULL));
    struct iovec iov[2];
    int n = mempipe_read_peek(b, iov, NULL);
    assert_true(n >= 1);
    mempipe_abort(a);
    size_t seen = 0;
    for (int i = 0; i < n; i++) { /* still readable memory */
        assert_true(tu_check_pattern(iov[i].iov_base, iov[i].iov_len, seen, 5) <
                    0);
        seen += iov[i].iov_len;
    }
    assert_rc(-ECONNRESET, mempipe_read_peek(b, iov, NULL));
    assert_rc(0, mempipe_read_consume(b, 0));
    assert_rc(-ECONNRESET, mempipe_read_peek(b, iov, NULL));
    assert_rc(-ECONNRESET, mempipe_poll_read(b, big, 1, NULL));
    mempipe_close(b);
}

/* ---- R64: examined ------------------------------------------------------ */

static void test_R64_examined_waits_for_new_bytes(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(3, mempipe_poll_write(a, "GET", 3, NULL));
    struct iovec iov[2];
    assert_rc(1, mempipe_read_peek(b, iov, NULL));
    /* An incomplete request: looked at all, took none. */
    assert_rc(0, mempipe_read_consume_examined(b, 0, 3));
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    assert_rc(-EAGAIN, mempipe_read_peek(b, iov, &w)); /* 3 bytes there */
    assert_int_equal(3, mempipe_readable(b));
    assert_rc(2, mempipe_poll_write(a, " /", 2, NULL));
    assert_int_equal(1, tu_calls(&c));
    int n = mempipe_read_peek(b, iov, NULL);
    assert_int_equal(5, span_total(iov, n));
    assert_memory_equal(iov[0].iov_base, "GET /", 5);
    /* Consumed some, examined the rest, then the writer shut down: the
     * rest is shown, no wait for bytes that will never come. */
    assert_rc(0, mempipe_read_consume_examined(b, 4, 5));
    assert_rc(-EAGAIN, mempipe_read_peek(b, iov, NULL));
    assert_rc(0, mempipe_shutdown(a));
    n = mempipe_read_peek(b, iov, NULL);
    assert_rc(1, n);
    assert_int_equal(1, iov[0].iov_len);
    assert_rc(0, mempipe_read_consume(b, 1));
    assert_rc(0, mempipe_read_peek(b, iov, NULL));
    mempipe_close(a);
    mempipe_close(b);
}

/* ---- R65: low-water marks ------------------------------------------------ */

static void test_R65_read_mark_holds_back_wakers_not_reads(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(0, mempipe_set_read_lowat(b, 5));
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    char buf[16];
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, &w));
    assert_rc(3, mempipe_poll_write(a, "abc", 3, NULL));
    assert_int_equal(0, tu_calls(&c)); /* below the mark */
    assert_rc(-EAGAIN, mempipe_poll_readable(b, NULL));
    assert_rc(-ETIMEDOUT, mempipe_wait_readable(b, 0));
    assert_rc(2, mempipe_poll_write(a, "de", 2, NULL));
    assert_int_equal(1, tu_calls(&c)); /* at the mark */
    assert_rc(1, mempipe_poll_readable(b, NULL));
    /* A direct read below the mark returns what there is. */
    assert_rc(0, mempipe_set_read_lowat(b, 10));
    assert_rc(5, mempipe_poll_read(b, buf, sizeof buf, NULL));
    /* A waker stored for a short read waits for that much only. */
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, 2, &w));
    assert_rc(2, mempipe_poll_write(a, "fg", 2, NULL));
    assert_int_equal(2, tu_calls(&c));
    assert_rc(2, mempipe_poll_read(b, buf, 2, NULL));
    /* Lowering the mark under a stored waker wakes it at once if met. */
    assert_rc(-EAGAIN, mempipe_poll_readable(b, &w));
    assert_rc(3, mempipe_poll_write(a, "hij", 3, NULL));
    assert_int_equal(2, tu_calls(&c));
    assert_rc(0, mempipe_set_read_lowat(b, 3));
    assert_int_equal(3, tu_calls(&c));
    /* EOF wakes whatever the mark. */
    assert_rc(3, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(0, mempipe_set_read_lowat(b, 64));
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, &w));
    assert_rc(0, mempipe_shutdown(a));
    assert_int_equal(4, tu_calls(&c));
    mempipe_close(a);
    mempipe_close(b);
}

/*
 * A new mark re-targets a stored waker from its own call (R65): the waker of
 * a 6-byte read waits for min(8, 6) bytes under a mark of 8; a writer's
 * waits for the write mark's worth of room whatever its call has left (the
 * hysteresis); and a readiness waker ignores what a peek examined (found by
 * the fuzzer: the re-target used the mark alone, and the examined position
 * for every waker).
 */
static void test_R65_new_mark_keeps_each_wakers_call(void **s)
{
    (void)s;
    mempipe *a, *b;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    char buf[16];
    assert_rc(0, mempipe_duplex(16, &a, &b));
    assert_rc(-EAGAIN, mempipe_poll_read(a, buf, 6, &w));
    assert_rc(0, mempipe_set_read_lowat(a, 8));
    assert_rc(5, mempipe_poll_write(b, "12345", 5, NULL));
    assert_int_equal(0, tu_calls(&c)); /* 5 < min(8, 6) */
    assert_rc(2, mempipe_poll_write(b, "67", 2, NULL));
    assert_int_equal(1, tu_calls(&c)); /* 7 >= min(8, 6) */
    mempipe_close(a);
    mempipe_close(b);

    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(8, mempipe_poll_write(a, "abcdefgh", 8, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "xyz", 3, &w));
    assert_rc(0, mempipe_set_write_lowat(a, 8));
    assert_rc(3, mempipe_poll_read(b, buf, 3, NULL));
    assert_int_equal(1, tu_calls(&c)); /* 3 free: room for it, not 8 */
    assert_rc(5, mempipe_poll_read(b, buf, 5, NULL));
    assert_int_equal(2, tu_calls(&c)); /* 8 free: the mark */
    mempipe_close(a);
    mempipe_close(b);

    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(0, mempipe_set_read_lowat(b, 20));
    assert_rc(10, mempipe_poll_write(a, "0123456789", 10, NULL));
    struct iovec iov[2];
    assert_rc(1, mempipe_read_peek(b, iov, NULL));
    assert_rc(0, mempipe_read_consume_examined(b, 0, 10));
    assert_rc(-EAGAIN, mempipe_poll_readable(b, &w)); /* 10 < 20 */
    assert_rc(0, mempipe_set_read_lowat(b, 5));
    assert_int_equal(3, tu_calls(&c)); /* readable now: 10 >= 5 */
    assert_rc(1, mempipe_poll_readable(b, NULL));
    mempipe_close(a);
    mempipe_close(b);
}

/*
 * A timed read that ends with bytes below the mark withdraws the waker it
 * parked with (R51, R65): a later write runs nobody's waker (found while
 * extending the fuzzer: it stayed stored, and the write ran it).
 */
static void test_R65_timed_read_below_the_mark_leaves_nothing_stored(void **s)
{
    (void)s;
    mempipe *a, *b;
    char buf[64];
    mempipe_stats st;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(0, mempipe_get_stats(a, &st)); /* a's calls count wakes */
    assert_rc(0, mempipe_set_read_lowat(b, 5));
    assert_rc(2, mempipe_poll_write(a, "xy", 2, NULL));
    assert_rc(2, mempipe_read_timeout(b, buf, sizeof buf, 1));
    assert_rc(6, mempipe_poll_write(a, "abcdef", 6, NULL));
    assert_rc(0, mempipe_get_stats(a, &st));
    assert_int_equal(0, st.wakes);
    mempipe_close(a);
    mempipe_close(b);
}

struct dribble {
    mempipe *end;
    pthread_t t;
};

static void *dribble_main(void *arg)
{
    struct dribble *d = arg;
    for (int i = 0; i < 5; i++) {
        sleep_ms(5);
        T_RC(1, mempipe_write(d->end, "x", 1));
    }
    return NULL;
}

static void test_R65_blocking_read_waits_for_the_mark(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(0, mempipe_set_read_lowat(b, 5));
    struct dribble d = {a, 0};
    assert_int_equal(0, pthread_create(&d.t, NULL, dribble_main, &d));
    char buf[16];
    assert_rc(5, mempipe_read(b, buf, sizeof buf)); /* one call, all five */
    pthread_join(d.t, NULL);
    /* A read asking for less waits for that much only. */
    assert_int_equal(0, pthread_create(&d.t, NULL, dribble_main, &d));
    assert_rc(2, mempipe_read_full(b, buf, 2));
    pthread_join(d.t, NULL);
    mempipe_close(a);
    mempipe_close(b);
}

static void test_R65_write_mark_is_hysteresis(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(0, mempipe_set_write_lowat(a, 4));
    assert_rc(8, mempipe_poll_write(a, "12345678", 8, NULL));
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    assert_rc(-EAGAIN, mempipe_poll_write(a, "abcdefgh", 8, &w));
    char buf[8];
    assert_rc(1, mempipe_poll_read(b, buf, 1, NULL));
    assert_rc(2, mempipe_poll_read(b, buf, 2, NULL));
    assert_int_equal(0, tu_calls(&c)); /* 3 free: below the mark */
    assert_rc(-EAGAIN, mempipe_poll_writable(a, NULL));
    assert_rc(3, mempipe_writable(a)); /* a direct write is not held back */
    assert_rc(1, mempipe_poll_read(b, buf, 1, NULL));
    assert_int_equal(1, tu_calls(&c)); /* 4 free */
    assert_rc(1, mempipe_poll_writable(a, NULL));
    assert_rc(1, mempipe_wait_writable(a, 0));
    /* A close wakes whatever the mark. */
    assert_rc(4, mempipe_poll_write(a, "abcd", 4, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "e", 1, &w));
    mempipe_close(b);
    assert_int_equal(2, tu_calls(&c));
    mempipe_close(a);
}

/* The pollable fds follow the marks (R65 with R59). */
static short revents(int fd, short events)
{
    struct pollfd p = {fd, events, 0};
    T_CHECK(poll(&p, 1, 0) >= 0, "poll");
    return p.revents & events;
}

static void test_R65_pollable_fds_honour_the_marks(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    int rfd = mempipe_readable_fd(b), wfd = mempipe_writable_fd(a);
    int sb = mempipe_fd(b), sa = mempipe_fd(a);
    assert_true(rfd >= 0 && wfd >= 0 && sb >= 0 && sa >= 0);
    assert_rc(0, mempipe_set_read_lowat(b, 3));
    assert_rc(0, mempipe_set_write_lowat(a, 4));
    assert_rc(2, mempipe_poll_write(a, "ab", 2, NULL));
    assert_int_equal(0, revents(rfd, POLLIN)); /* 2 < 3 */
    assert_int_equal(0, revents(sb, POLLIN));
    assert_rc(1, mempipe_poll_write(a, "c", 1, NULL));
    assert_int_equal(POLLIN, revents(rfd, POLLIN));
    assert_int_equal(POLLIN, revents(sb, POLLIN));
    assert_rc(2, mempipe_poll_write(a, "de", 2, NULL)); /* 3 free < 4 */
    assert_int_equal(0, revents(wfd, POLLIN));
    assert_int_equal(0, revents(sa, POLLOUT));
    char buf[8];
    assert_rc(1, mempipe_poll_read(b, buf, 1, NULL)); /* 4 free */
    assert_int_equal(POLLIN, revents(wfd, POLLIN));
    assert_int_equal(POLLOUT, revents(sa, POLLOUT));
    /* Lowering a mark shows at once. */
    assert_rc(4, mempipe_poll_read(b, buf, 4, NULL));
    assert_int_equal(0, revents(sb, POLLIN));
    assert_rc(1, mempipe_poll_write(a, "f", 1, NULL));
    assert_int_equal(0, revents(sb, POLLIN));
    assert_rc(0, mempipe_set_read_lowat(b, 1));
    assert_int_equal(POLLIN, revents(sb, POLLIN));
    assert_int_equal(POLLIN, revents(rfd, POLLIN));
    mempipe_close(a);
    mempipe_close(b);
}

/* ---- R66: misuse ----------------------------------------------------------
 */

static void test_R66_misuse_is_einval_or_ebusy_and_changes_nothing(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(16, &a, &b));
    struct iovec iov[2];
    mempipe_waker nowake = {NULL, NULL};
    assert_rc(-EINVAL, mempipe_write_commit(a, 0)); /* no reservation */
    assert_rc(-EINVAL, mempipe_write_reserve(a, 0, iov, NULL));
    assert_rc(-EINVAL, mempipe_write_reserve(a, 4, NULL, NULL));
    assert_rc(-EINVAL, mempipe_write_reserve(a, 4, iov, &nowake));
    assert_rc(-EINVAL, mempipe_write_reserve(NULL, 4, iov, NULL));
    assert_rc(-EINVAL, mempipe_write_commit(NULL, 0));
    int n = mempipe_write_reserve(a, 4, iov, NULL);
    assert_rc(1, n);
    memcpy(iov[0].iov_base, "wxyz", 4);
    assert_rc(-EINVAL, mempipe_write_reserve(a, 4, iov, NULL)); /* second */
    assert_rc(-EBUSY, mempipe_poll_write(a, "q", 1, NULL));
    assert_rc(-EBUSY, mempipe_write(a, "q", 1));
    struct iovec one = {"q", 1};
    assert_rc(-EBUSY, mempipe_poll_writev(a, &one, 1, NULL));
    assert_rc(-EINVAL, mempipe_write_commit(a, 5)); /* more than reserved */
    assert_int_equal(0, mempipe_readable(b));
    assert_rc(0, mempipe_write_commit(a, 4)); /* still open: it works */
    assert_rc(1, mempipe_poll_write(a, "!", 1, NULL));
    /* Peek misuse. */
    assert_rc(-EINVAL, mempipe_read_consume(b, 0)); /* no peek */
    assert_rc(-EINVAL, mempipe_read_peek(b, NULL, NULL));
    assert_rc(-EINVAL, mempipe_read_peek(b, iov, &nowake));
    assert_rc(-EINVAL, mempipe_read_peek(NULL, iov, NULL));
    assert_rc(-EINVAL, mempipe_read_consume(NULL, 0));
    n = mempipe_read_peek(b, iov, NULL);
    assert_int_equal(5, span_total(iov, n));
    char buf[8];
    assert_rc(-EBUSY, mempipe_poll_read(b, buf, 1, NULL));
    assert_rc(-EBUSY, mempipe_read(b, buf, 1));
    assert_rc(-EINVAL, mempipe_read_consume(b, 6));
    assert_rc(-EINVAL, mempipe_read_consume_examined(b, 3, 2));
    assert_rc(-EINVAL, mempipe_read_consume_examined(b, 1, 6));
    assert_int_equal(5, mempipe_readable(b));
    assert_rc(0, mempipe_read_consume(b, 4));
    assert_rc(1, mempipe_poll_read(b, buf, 8, NULL));
    assert_int_equal('!', buf[0]);
    /* Marks. */
    assert_rc(-EINVAL, mempipe_set_read_lowat(b, 0));
    assert_rc(-EINVAL, mempipe_set_read_lowat(b, 17));
    assert_rc(-EINVAL, mempipe_set_write_lowat(a, 0));
    assert_rc(-EINVAL, mempipe_set_write_lowat(a, 17));
    assert_rc(-EINVAL, mempipe_set_read_lowat(NULL, 1));
    assert_rc(-EINVAL, mempipe_set_write_lowat(NULL, 1));
    assert_rc(0, mempipe_set_read_lowat(b, 16));
    mempipe_close(a);
    mempipe_close(b);
    mempipe *r, *w;
    assert_rc(0, mempipe_simplex(16, &r, &w));
    assert_rc(-EBADF, mempipe_write_reserve(r, 4, iov, NULL));
    assert_rc(-EBADF, mempipe_write_commit(r, 0));
    assert_rc(-EBADF, mempipe_read_peek(w, iov, NULL));
    assert_rc(-EBADF, mempipe_read_consume(w, 0));
    assert_rc(-EBADF, mempipe_read_consume_examined(w, 0, 0));
    assert_rc(-EBADF, mempipe_set_read_lowat(w, 1));
    assert_rc(-EBADF, mempipe_set_write_lowat(r, 1));
    /* Closing with a reservation or a peek open frees everything. */
    assert_true(mempipe_write_reserve(w, 100, iov, NULL) >= 1);
    mempipe_close(w);
    mempipe_close(r);
    assert_rc(0, mempipe_simplex(1 << 20, &r, &w));
    assert_rc(10, mempipe_poll_write(w, "0123456789", 10, NULL));
    assert_true(mempipe_write_reserve(w, 5000, iov, NULL) >= 1);
    assert_true(mempipe_read_peek(r, iov, NULL) >= 1);
    mempipe_close(r);
    mempipe_close(w);
}

/* ---- with the testing features (R48-R50) and the budget ------------------ */

struct seen {
    unsigned char bytes[64];
    size_t n[2];
};

static void tap(void *ctx, int dir, const void *data, size_t len)
{
    struct seen *sn = ctx;
    if (dir == MEMPIPE_TAP_WRITE) {
        memcpy(sn->bytes + sn->n[0], data, len);
        sn->n[0] += len;
    } else {
        sn->n[1] += len;
    }
}

static void test_R62_R63_with_taps_stats_faults_and_budget(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    struct seen sn = {{0}, {0, 0}};
    assert_rc(0, mempipe_set_tap(a, tap, &sn));
    assert_rc(0, mempipe_set_tap(b, tap, &sn));
    mempipe_faults f = {0};
    f.max_write = 3;
    f.max_read = 2;
    assert_rc(0, mempipe_set_faults(a, &f));
    assert_rc(0, mempipe_set_faults(b, &f));
    struct iovec iov[2];
    int n = mempipe_write_reserve(a, 10, iov, NULL);
    assert_int_equal(3, span_total(iov, n)); /* the cap */
    memcpy(iov[0].iov_base, "abc", 3);
    assert_rc(0, mempipe_write_commit(a, 3));
    assert_int_equal(3, sn.n[0]);
    assert_memory_equal(sn.bytes, "abc", 3);
    n = mempipe_read_peek(b, iov, NULL);
    assert_int_equal(2, span_total(iov, n)); /* the cap */
    assert_rc(0, mempipe_read_consume(b, 2));
    assert_int_equal(2, sn.n[1]);
    mempipe_stats st;
    assert_rc(0, mempipe_get_stats(a, &st));
    assert_int_equal(1, st.writes);
    assert_int_equal(3, st.bytes_written);
    assert_rc(0, mempipe_get_stats(b, &st));
    assert_int_equal(1, st.reads);
    assert_int_equal(2, st.bytes_read);
    /* An exhausted budget yields: -EAGAIN, the waker called at once. */
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    mempipe_budget_set(1); /* one more call completes, then yields */
    assert_rc(1, mempipe_read_peek(b, iov, &w));
    assert_int_equal(0, tu_calls(&c));
    assert_rc(-EAGAIN, mempipe_write_reserve(a, 1, iov, &w));
    assert_int_equal(1, tu_calls(&c));
    assert_rc(-EAGAIN, mempipe_read_peek(b, iov, &w));
    assert_int_equal(2, tu_calls(&c));
    mempipe_budget_set(0);
    assert_rc(0, mempipe_read_consume(b, 1));
    /* The N-th call fails and changes nothing; every N-th poll is pending
     * once, its waker called at once. */
    assert_rc(1, mempipe_poll_write(a, "y", 1, NULL)); /* a byte to peek */
    mempipe_faults g = {0};
    g.fail_write_at = 1;
    g.fail_read_at = 1;
    g.fail_err = -EIO;
    assert_rc(0, mempipe_set_faults(a, &g));
    assert_rc(0, mempipe_set_faults(b, &g));
    assert_rc(-EIO, mempipe_write_reserve(a, 4, iov, NULL));
    assert_rc(-EINVAL, mempipe_write_commit(a, 0)); /* nothing reserved */
    assert_rc(1, mempipe_poll_write(a, "z", 1, NULL) == -EIO);
    assert_rc(-EIO, mempipe_read_peek(b, iov, NULL));
    assert_rc(-EINVAL, mempipe_read_consume(b, 0)); /* nothing shown */
    mempipe_faults h = {0};
    h.pending_every = 1;
    assert_rc(0, mempipe_set_faults(a, &h));
    assert_rc(0, mempipe_set_faults(b, &h));
    assert_rc(-EAGAIN, mempipe_write_reserve(a, 4, iov, &w));
    assert_int_equal(3, tu_calls(&c));
    assert_rc(-EAGAIN, mempipe_read_peek(b, iov, &w));
    assert_int_equal(4, tu_calls(&c));
    mempipe_close(a);
    mempipe_close(b);
}

/* ---- two threads, zero-copy both sides, with marks (TSan) ------------- */

struct zc_side {
    mempipe *end;
    uint64_t total;
    size_t keep; /* most bytes a "need more" consume may leave */
    struct tu_park park;
    pthread_t t;
};

static void *zc_writer(void *arg)
{
    struct zc_side *x = arg;
    mempipe_waker w = {tu_park_wake, &x->park};
    uint64_t pos = 0, rng = 99;
    while (pos < x->total) {
        unsigned seen = tu_park_prepare(&x->park);
        struct iovec iov[2];
        size_t want = 1 + (size_t)(tu_rand(&rng) % 5000);
        if (want > x->total - pos)
            want = (size_t)(x->total - pos);
        int n = mempipe_write_reserve(x->end, want, iov, &w);
        if (n == -EAGAIN) {
            tu_park_wait(&x->park, seen);
            continue;
        }
        T_CHECK(n == 1 || n == 2, "reserve: %d", n);
        size_t t = span_total(iov, n);
        size_t put = t == 1 ? 1 : t - (size_t)(tu_rand(&rng) % 2);
        fill_spans(iov, n, put, pos, 21);
        T_RC(0, mempipe_write_commit(x->end, put));
        pos += put;
        atomic_fetch_add(&tu_progress, 1);
    }
    T_RC(0, mempipe_shutdown(x->end));
    return NULL;
}

static void *zc_reader(void *arg)
{
    struct zc_side *x = arg;
    mempipe_waker w = {tu_park_wake, &x->park};
    uint64_t pos = 0, rng = 7;
    for (;;) {
        unsigned seen = tu_park_prepare(&x->park);
        struct iovec iov[2];
        int n = mempipe_read_peek(x->end, iov, &w);
        if (n == -EAGAIN) {
            tu_park_wait(&x->park, seen);
            continue;
        }
        if (n == 0)
            break;
        T_CHECK(n == 1 || n == 2, "peek: %d", n);
        size_t t = span_total(iov, n), off = 0;
        for (int i = 0; i < n; i++) {
            T_CHECK(tu_check_pattern(iov[i].iov_base, iov[i].iov_len, pos + off,
                                     21) < 0,
                    "wrong byte near %llu", (unsigned long long)(pos + off));
            off += iov[i].iov_len;
        }
        size_t take = 1 + (size_t)(tu_rand(&rng) % t);
        /* Sometimes "need more": examined all, consumed a part. It must
         * leave the writer its mark's worth of room, or both would wait
         * for each other (as with Pipelines' pause threshold). */
        if (tu_rand(&rng) % 4 == 0) {
            if (t - take > x->keep)
                take = t - x->keep;
            T_RC(0, mempipe_read_consume_examined(x->end, take, t));
        } else {
            T_RC(0, mempipe_read_consume(x->end, take));
        }
        pos += take;
        atomic_fetch_add(&tu_progress, 1);
    }
    x->total = pos;
    return NULL;
}

static void test_R62_R65_two_threads_zero_copy_with_marks(void **s)
{
    (void)s;
    static const size_t caps[] = {1, 7, 4096, 65536};
    tu_watchdog_start("zero-copy threads");
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        mempipe *a, *b;
        assert_rc(0, mempipe_duplex(caps[c], &a, &b));
        if (caps[c] >= 4096) {
            assert_rc(0, mempipe_set_write_lowat(a, caps[c] / 2));
            assert_rc(0, mempipe_set_read_lowat(b, 100));
        }
        struct zc_side wr = {a, 3000000, 0, {0}, 0},
                       rd = {b, 0, caps[c] / 4, {0}, 0};
        if (caps[c] < 4096)
            wr.total = 20000;
        tu_park_init(&wr.park);
        tu_park_init(&rd.park);
        assert_int_equal(0, pthread_create(&wr.t, NULL, zc_writer, &wr));
        assert_int_equal(0, pthread_create(&rd.t, NULL, zc_reader, &rd));
        pthread_join(wr.t, NULL);
        pthread_join(rd.t, NULL);
        assert_int_equal(wr.total, rd.total);
        tu_park_destroy(&wr.park);
        tu_park_destroy(&rd.park);
        mempipe_close(a);
        mempipe_close(b);
    }
    tu_watchdog_end();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R62_reserve_commit_round_trip),
        cmocka_unit_test(test_R62_two_spans_at_a_segment_boundary),
        cmocka_unit_test(test_R62_commit_after_a_close_fails_also_for_0),
        cmocka_unit_test(test_R62_full_pipe_stores_the_waker),
        cmocka_unit_test(test_R63_peek_consume_round_trip),
        cmocka_unit_test(test_R63_consume_wakes_the_parked_writer),
        cmocka_unit_test(test_R63_peek_survives_the_peers_abort),
        cmocka_unit_test(test_R64_examined_waits_for_new_bytes),
        cmocka_unit_test(test_R65_read_mark_holds_back_wakers_not_reads),
        cmocka_unit_test(test_R65_blocking_read_waits_for_the_mark),
        cmocka_unit_test(test_R65_new_mark_keeps_each_wakers_call),
        cmocka_unit_test(
            test_R65_timed_read_below_the_mark_leaves_nothing_stored),
        cmocka_unit_test(test_R65_write_mark_is_hysteresis),
        cmocka_unit_test(test_R65_pollable_fds_honour_the_marks),
        cmocka_unit_test(
            test_R66_misuse_is_einval_or_ebusy_and_changes_nothing),
        cmocka_unit_test(test_R62_R63_with_taps_stats_faults_and_budget),
        cmocka_unit_test(test_R62_R65_two_threads_zero_copy_with_marks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
