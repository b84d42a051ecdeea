/* SPDX-License-Identifier: MIT */
/*
 * SPEC.md R30: bad input to every public function of include/mempipe.h.
 * Each bad call runs on a fresh pipe holding known bytes in every
 * direction, with a counting waker; afterwards the bytes are read back
 * exactly, the pipe must still be open (Pending, not EOF), the free space
 * the same, and the waker never called (a failed call stores nothing).
 */
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

enum kind { DUPLEX, SIMPLEX, LOOPBACK };
enum { CAP = 16 };

/*
 * rd reads what wr writes. A duplex also carries bytes back (b -> a); a
 * simplex has the wrong-direction handles: no_rd (its writer end cannot
 * read) and no_wr (its reader end cannot write).
 */
struct st {
    enum kind kind;
    mempipe *wr, *rd;
    mempipe *no_rd, *no_wr;
};

static struct tu_counter bad_calls;
static mempipe_waker bad_waker;

static void st_open(struct st *s, enum kind k)
{
    memset(s, 0, sizeof *s);
    s->kind = k;
    atomic_store(&bad_calls.calls, 0);
    bad_waker = tu_counter_waker(&bad_calls);
    switch (k) {
    case DUPLEX:
        assert_rc(0, mempipe_duplex(CAP, &s->wr, &s->rd));
        assert_rc(3, mempipe_poll_write(s->rd, "BA2", 3, NULL));
        break;
    case SIMPLEX:
        assert_rc(0, mempipe_simplex(CAP, &s->rd, &s->wr));
        s->no_rd = s->wr;
        s->no_wr = s->rd;
        break;
    case LOOPBACK:
        assert_rc(0, mempipe_loopback(CAP, &s->wr));
        s->rd = s->wr;
        break;
    }
    assert_rc(3, mempipe_poll_write(s->wr, "AB1", 3, NULL));
}

static void expect_exact(mempipe *e, const char *want)
{
    unsigned char buf[CAP + 1];
    size_t n = strlen(want);
    assert_int_equal(n, mempipe_readable(e));
    assert_rc(n, mempipe_poll_read(e, buf, sizeof buf, NULL));
    assert_memory_equal(buf, want, n);
    assert_rc(-EAGAIN, mempipe_poll_read(e, buf, sizeof buf, NULL));
}

/* The bytes, the open state and the free space are as st_open left them,
 * and no waker was stored by the bad call. */
static void st_check(struct st *s)
{
    assert_int_equal(CAP - 3, mempipe_writable(s->wr));
    assert_int_equal(CAP, mempipe_capacity(s->wr));
    expect_exact(s->rd, "AB1"); /* frees space: calls a stored writer */
    if (s->kind == DUPLEX) {
        assert_int_equal(CAP - 3, mempipe_writable(s->rd));
        expect_exact(s->wr, "BA2");
    }
    /* Still open both ways: new bytes go through (and would call a stored
     * reader waker). */
    assert_rc(2, mempipe_poll_write(s->wr, "ok", 2, NULL));
    expect_exact(s->rd, "ok");
    if (s->kind == DUPLEX) {
        assert_rc(2, mempipe_poll_write(s->rd, "ko", 2, NULL));
        expect_exact(s->wr, "ko");
    }
    assert_int_equal(0, tu_calls(&bad_calls));
}

static void st_close(struct st *s)
{
    if (s->rd != s->wr)
        mempipe_close(s->rd);
    mempipe_close(s->wr);
    assert_int_equal(0, tu_calls(&bad_calls));
}

/* One bad call on a fresh pipe of kind k; S names its handles. */
#define BAD(k, expected, call)                                                 \
    do {                                                                       \
        struct st S;                                                           \
        st_open(&S, (k));                                                      \
        assert_rc((expected), (call));                                         \
        st_check(&S);                                                          \
        st_close(&S);                                                          \
    } while (0)

#define FOR_KINDS(k) for (enum kind k = DUPLEX; k <= LOOPBACK; k++)

static unsigned char scratch[64];

/* ------------------------------------------------------------------ */
/* Creation                                                            */
/* ------------------------------------------------------------------ */

static void test_R30_create_zero_capacity(void **state)
{
    (void)state;
    mempipe *x = (mempipe *)scratch, *y = (mempipe *)(scratch + 8);
    assert_rc(-EINVAL, mempipe_duplex(0, &x, &y));
    assert_rc(-EINVAL, mempipe_simplex(0, &x, &y));
    assert_rc(-EINVAL, mempipe_loopback(0, &x));
    assert_ptr_equal(scratch, x);
    assert_ptr_equal(scratch + 8, y);
}

static void test_R30_create_null_out_pointers(void **state)
{
    (void)state;
    mempipe *x = (mempipe *)scratch;
    assert_rc(-EINVAL, mempipe_duplex(CAP, NULL, &x));
    assert_rc(-EINVAL, mempipe_duplex(CAP, &x, NULL));
    assert_rc(-EINVAL, mempipe_duplex(CAP, &x, &x));
    assert_rc(-EINVAL, mempipe_simplex(CAP, NULL, &x));
    assert_rc(-EINVAL, mempipe_simplex(CAP, &x, NULL));
    assert_rc(-EINVAL, mempipe_simplex(CAP, &x, &x));
    assert_rc(-EINVAL, mempipe_loopback(CAP, NULL));
    assert_ptr_equal(scratch, x);
}

/* The extremes of a valid capacity: 1 and SIZE_MAX both work. */
static void test_R30_create_capacity_extremes(void **state)
{
    (void)state;
    static const size_t caps[] = {1, SIZE_MAX, SIZE_MAX - 1};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        mempipe *a, *b;
        unsigned char c;
        assert_rc(0, mempipe_duplex(caps[i], &a, &b));
        assert_int_equal(caps[i], mempipe_capacity(a));
        assert_int_equal(caps[i], mempipe_writable(a));
        assert_rc(1, mempipe_poll_write(a, "x", 1, NULL));
        assert_int_equal(caps[i] - 1, mempipe_writable(a));
        assert_rc(1, mempipe_poll_read(b, &c, 1, NULL));
        assert_int_equal('x', c);
        mempipe_close(a);
        mempipe_close(b);
        assert_rc(0, mempipe_simplex(caps[i], &a, &b));
        assert_int_equal(caps[i], mempipe_capacity(a));
        assert_int_equal(caps[i], mempipe_capacity(b));
        mempipe_close(a);
        mempipe_close(b);
        assert_rc(0, mempipe_loopback(caps[i], &a));
        assert_int_equal(caps[i], mempipe_capacity(a));
        mempipe_close(a);
    }
}

/*
 * A waker whose wake is NULL is -EINVAL on every call that takes a waker,
 * whether or not the call would have stored it: in every state of the
 * pipe (bytes to read, room to write, empty, full), never stored, nothing
 * moved. Before this rule it was stored and crashed the peer's next call.
 */
static void test_R30_waker_with_null_wake_rejected_everywhere(void **state)
{
    (void)state;
    const mempipe_waker nowake = {NULL, scratch};
    const struct iovec iov[1] = {{scratch, 1}};
    FOR_KINDS(k)
    {
        /* Bytes buffered, room free: the calls would not store. */
        BAD(k, -EINVAL, mempipe_poll_read(S.rd, scratch, 1, &nowake));
        BAD(k, -EINVAL, mempipe_poll_read(S.rd, scratch, 0, &nowake));
        BAD(k, -EINVAL, mempipe_poll_write(S.wr, "x", 1, &nowake));
        BAD(k, -EINVAL, mempipe_poll_write(S.wr, "x", 0, &nowake));
        BAD(k, -EINVAL, mempipe_poll_writev(S.wr, iov, 1, &nowake));
        BAD(k, -EINVAL, mempipe_poll_writev(S.wr, iov, 0, &nowake));
        BAD(k, -EINVAL, mempipe_poll_flush(S.wr, &nowake));
        BAD(k, -EINVAL, mempipe_poll_shutdown(S.wr, &nowake));
    }
    /* Empty and full: the calls would store; the peer's calls that would
     * have run the stored waker then run nothing. */
    mempipe *a, *b;
    unsigned char buf[4];
    assert_rc(0, mempipe_duplex(2, &a, &b));
    assert_rc(-EINVAL, mempipe_poll_read(a, buf, sizeof buf, &nowake));
    assert_rc(2, mempipe_poll_write(b, "xy", 2, NULL));
    assert_rc(-EINVAL, mempipe_poll_write(b, "z", 1, &nowake));
    assert_rc(-EINVAL, mempipe_poll_writev(b, iov, 1, &nowake));
    assert_rc(2, mempipe_poll_read(a, buf, sizeof buf, NULL));
    assert_rc(0, mempipe_shutdown(b));
    mempipe_close(a);
    mempipe_close(b);
}

static void test_R30_close_null(void **state)
{
    (void)state;
    mempipe_close(NULL);
}

/* ------------------------------------------------------------------ */
/* Poll calls                                                          */
/* ------------------------------------------------------------------ */

static void test_R30_poll_read_bad_args(void **state)
{
    (void)state;
    FOR_KINDS(k)
    {
        BAD(k, -EINVAL,
            mempipe_poll_read(NULL, scratch, sizeof scratch, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_read(NULL, NULL, 0, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_read(S.rd, NULL, 1, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_read(S.rd, NULL, SIZE_MAX, &bad_waker));
        BAD(k, 0, mempipe_poll_read(S.rd, NULL, 0, &bad_waker)); /* R8 */
    }
    BAD(SIMPLEX, -EBADF,
        mempipe_poll_read(S.no_rd, scratch, sizeof scratch, &bad_waker));
    BAD(SIMPLEX, -EBADF, mempipe_poll_read(S.no_rd, scratch, 0, &bad_waker));
    BAD(SIMPLEX, -EBADF, mempipe_poll_read(S.no_rd, scratch, 1, NULL));
}

static void test_R30_poll_write_bad_args(void **state)
{
    (void)state;
    FOR_KINDS(k)
    {
        BAD(k, -EINVAL, mempipe_poll_write(NULL, "x", 1, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_write(NULL, NULL, 0, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_write(S.wr, NULL, 1, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_write(S.wr, NULL, SIZE_MAX, &bad_waker));
        BAD(k, 0, mempipe_poll_write(S.wr, NULL, 0, &bad_waker)); /* R14 */
    }
    BAD(SIMPLEX, -EBADF, mempipe_poll_write(S.no_wr, "x", 1, &bad_waker));
    BAD(SIMPLEX, -EBADF, mempipe_poll_write(S.no_wr, "x", 0, &bad_waker));
}

static void test_R30_poll_writev_bad_counts(void **state)
{
    (void)state;
    struct iovec one = {.iov_base = "zz", .iov_len = 2};
    FOR_KINDS(k)
    {
        BAD(k, -EINVAL, mempipe_poll_writev(NULL, &one, 1, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_writev(NULL, NULL, 0, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_writev(S.wr, &one, -1, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_writev(S.wr, &one, INT_MIN, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_writev(S.wr, NULL, -1, &bad_waker));
        /* Too many slices: rejected before any slice is looked at (only
         * one exists here; reading more would be caught by ASan). */
        BAD(k, -EINVAL,
            mempipe_poll_writev(S.wr, &one, IOV_MAX + 1, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_writev(S.wr, &one, INT_MAX, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_writev(S.wr, NULL, 1, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_writev(S.wr, NULL, IOV_MAX, &bad_waker));
        BAD(k, 0, mempipe_poll_writev(S.wr, NULL, 0, &bad_waker)); /* R15 */
    }
}

static void test_R30_poll_writev_null_slice_base(void **state)
{
    (void)state;
    /* A NULL base with a length, first or after good slices: nothing of
     * the good slices may be written either. */
    struct iovec first[2] = {{.iov_base = NULL, .iov_len = 3},
                             {.iov_base = "ab", .iov_len = 2}};
    struct iovec later[3] = {{.iov_base = "ab", .iov_len = 2},
                             {.iov_base = NULL, .iov_len = 0},
                             {.iov_base = NULL, .iov_len = 1}};
    struct iovec ok[2] = {{.iov_base = NULL, .iov_len = 0},
                          {.iov_base = NULL, .iov_len = 0}};
    FOR_KINDS(k)
    {
        BAD(k, -EINVAL, mempipe_poll_writev(S.wr, first, 2, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_writev(S.wr, later, 3, &bad_waker));
        BAD(k, 0, mempipe_poll_writev(S.wr, ok, 2, &bad_waker)); /* R15 */
    }
}

static void test_R30_poll_writev_length_overflow(void **state)
{
    (void)state;
    /* Bases are real but tiny: the call must reject the lengths before it
     * copies a byte. */
    struct iovec sum_ssize[2] = {{.iov_base = scratch, .iov_len = SSIZE_MAX},
                                 {.iov_base = scratch, .iov_len = 1}};
    struct iovec sum_wraps[2] = {
        {.iov_base = scratch, .iov_len = SIZE_MAX / 2 + 1},
        {.iov_base = scratch, .iov_len = SIZE_MAX / 2 + 1}}; /* wraps to 0 */
    struct iovec sum_wraps_small[3] = {
        {.iov_base = scratch, .iov_len = 4},
        {.iov_base = scratch, .iov_len = SIZE_MAX},
        {.iov_base = scratch, .iov_len = 2}}; /* wraps to 5 */
    struct iovec one_huge = {.iov_base = scratch, .iov_len = SIZE_MAX};
    struct iovec halves[2] = {
        {.iov_base = scratch, .iov_len = (size_t)SSIZE_MAX / 2 + 1},
        {.iov_base = scratch, .iov_len = (size_t)SSIZE_MAX / 2 + 1}};
    FOR_KINDS(k)
    {
        BAD(k, -EINVAL, mempipe_poll_writev(S.wr, sum_ssize, 2, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_writev(S.wr, sum_wraps, 2, &bad_waker));
        BAD(k, -EINVAL,
            mempipe_poll_writev(S.wr, sum_wraps_small, 3, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_writev(S.wr, &one_huge, 1, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_writev(S.wr, halves, 2, &bad_waker));
    }
}

/* The largest legal sum, SSIZE_MAX, is accepted and cut to the space. */
static void test_R30_poll_writev_sum_at_limit_is_valid(void **state)
{
    (void)state;
    FOR_KINDS(k)
    {
        struct st S;
        unsigned char src[CAP], out[CAP + 1];
        tu_pattern(src, sizeof src, 0, 30);
        struct iovec lim[2] = {{.iov_base = src, .iov_len = SSIZE_MAX - 1},
                               {.iov_base = src, .iov_len = 1}};
        st_open(&S, k);
        /* CAP - 3 bytes free: taken from the start of the first slice. */
        assert_rc(CAP - 3, mempipe_poll_writev(S.wr, lim, 2, NULL));
        assert_rc(CAP, mempipe_poll_read(S.rd, out, sizeof out, NULL));
        assert_memory_equal(out, "AB1", 3);
        assert_memory_equal(out + 3, src, CAP - 3);
        if (k != LOOPBACK)
            mempipe_close(S.rd);
        mempipe_close(S.wr);
    }
}

static void test_R30_poll_writev_wrong_direction(void **state)
{
    (void)state;
    struct iovec one = {.iov_base = "zz", .iov_len = 2};
    BAD(SIMPLEX, -EBADF, mempipe_poll_writev(S.no_wr, &one, 1, &bad_waker));
    BAD(SIMPLEX, -EBADF, mempipe_poll_writev(S.no_wr, NULL, 0, &bad_waker));
}

static void test_R30_poll_flush_bad_args(void **state)
{
    (void)state;
    FOR_KINDS(k)
    {
        BAD(k, -EINVAL, mempipe_poll_flush(NULL, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_flush(NULL, NULL));
        BAD(k, 0, mempipe_poll_flush(S.wr, &bad_waker)); /* R16 */
        BAD(k, 0, mempipe_poll_flush(S.rd, &bad_waker));
    }
}

static void test_R30_shutdown_bad_args(void **state)
{
    (void)state;
    FOR_KINDS(k)
    {
        BAD(k, -EINVAL, mempipe_poll_shutdown(NULL, &bad_waker));
        BAD(k, -EINVAL, mempipe_poll_shutdown(NULL, NULL));
        BAD(k, -EINVAL, mempipe_shutdown(NULL));
    }
    /* A reader end cannot shut down; the pipe stays open (st_check reads
     * Pending, not EOF, and writes go through). */
    BAD(SIMPLEX, -EBADF, mempipe_poll_shutdown(S.no_wr, &bad_waker));
    BAD(SIMPLEX, -EBADF, mempipe_shutdown(S.no_wr));
}

/* ------------------------------------------------------------------ */
/* Blocking calls                                                      */
/* ------------------------------------------------------------------ */

static void test_R30_blocking_read_bad_args(void **state)
{
    (void)state;
    FOR_KINDS(k)
    {
        BAD(k, -EINVAL, mempipe_read(NULL, scratch, sizeof scratch));
        BAD(k, -EINVAL, mempipe_read(S.rd, NULL, 1));
        BAD(k, 0, mempipe_read(S.rd, NULL, 0));
    }
    BAD(SIMPLEX, -EBADF, mempipe_read(S.no_rd, scratch, sizeof scratch));
}

static void test_R30_blocking_write_bad_args(void **state)
{
    (void)state;
    FOR_KINDS(k)
    {
        BAD(k, -EINVAL, mempipe_write(NULL, "x", 1));
        BAD(k, -EINVAL, mempipe_write(S.wr, NULL, 1));
        BAD(k, -EINVAL, mempipe_write(S.wr, NULL, SIZE_MAX));
        BAD(k, 0, mempipe_write(S.wr, NULL, 0));
    }
    BAD(SIMPLEX, -EBADF, mempipe_write(S.no_wr, "x", 1));
}

/* ------------------------------------------------------------------ */
/* State queries                                                       */
/* ------------------------------------------------------------------ */

static void test_R30_state_queries_bad_ends(void **state)
{
    (void)state;
    assert_int_equal(0, mempipe_readable(NULL));
    assert_int_equal(0, mempipe_writable(NULL));
    assert_int_equal(0, mempipe_capacity(NULL));
    BAD(SIMPLEX, 0, (long long)mempipe_readable(S.no_rd));
    BAD(SIMPLEX, 0, (long long)mempipe_writable(S.no_wr));
    BAD(SIMPLEX, CAP, (long long)mempipe_capacity(S.no_wr));
    BAD(SIMPLEX, CAP, (long long)mempipe_capacity(S.no_rd));
}

/* ------------------------------------------------------------------ */
/* Repeated shutdowns and writes after shutdown                        */
/* ------------------------------------------------------------------ */

static void test_R30_repeated_shutdowns_keep_bytes(void **state)
{
    (void)state;
    FOR_KINDS(k)
    {
        struct st S;
        unsigned char out[CAP];
        st_open(&S, k);
        for (int i = 0; i < 5; i++) {
            assert_rc(0, mempipe_shutdown(S.wr));
            assert_rc(0, mempipe_poll_shutdown(S.wr, &bad_waker));
        }
        assert_int_equal(3, mempipe_readable(S.rd));
        assert_rc(3, mempipe_poll_read(S.rd, out, sizeof out, NULL));
        assert_memory_equal(out, "AB1", 3);
        assert_rc(0, mempipe_poll_read(S.rd, out, sizeof out, NULL));
        if (k == DUPLEX) { /* the other direction is untouched */
            assert_rc(3, mempipe_poll_read(S.wr, out, sizeof out, NULL));
            assert_memory_equal(out, "BA2", 3);
            assert_rc(-EAGAIN, mempipe_poll_read(S.wr, out, sizeof out, NULL));
        }
        st_close(&S);
    }
}

static void test_R30_writes_after_shutdown_keep_bytes(void **state)
{
    (void)state;
    struct iovec one = {.iov_base = "zz", .iov_len = 2};
    FOR_KINDS(k)
    {
        struct st S;
        unsigned char out[CAP];
        st_open(&S, k);
        assert_rc(0, mempipe_shutdown(S.wr));
        for (int i = 0; i < 3; i++) {
            assert_rc(-EPIPE, mempipe_poll_write(S.wr, "x", 1, &bad_waker));
            assert_rc(-EPIPE, mempipe_poll_writev(S.wr, &one, 1, &bad_waker));
            assert_rc(-EPIPE, mempipe_write(S.wr, "x", 1));
        }
        assert_rc(3, mempipe_poll_read(S.rd, out, sizeof out, NULL));
        assert_memory_equal(out, "AB1", 3);
        assert_rc(0, mempipe_poll_read(S.rd, out, sizeof out, NULL));
        st_close(&S);
    }
}

/* The allocator cannot change under live pipes; the pipe is unaffected. */
static void *never_realloc(void *ctx, void *ptr, size_t old_size,
                           size_t new_size)
{
    (void)ctx;
    (void)ptr;
    (void)old_size;
    (void)new_size;
    return NULL;
}

static void test_R30_set_allocator_busy_with_live_pipe(void **state)
{
    (void)state;
    FOR_KINDS(k)
    {
        BAD(k, -EBUSY, mempipe_set_allocator(never_realloc, NULL));
        BAD(k, -EBUSY, mempipe_set_allocator(NULL, NULL));
    }
    /* No pipe left: it may change (and is put back at once). */
    assert_rc(0, mempipe_set_allocator(NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R30_create_zero_capacity),
        cmocka_unit_test(test_R30_create_null_out_pointers),
        cmocka_unit_test(test_R30_create_capacity_extremes),
        cmocka_unit_test(test_R30_close_null),
        cmocka_unit_test(test_R30_waker_with_null_wake_rejected_everywhere),
        cmocka_unit_test(test_R30_poll_read_bad_args),
        cmocka_unit_test(test_R30_poll_write_bad_args),
        cmocka_unit_test(test_R30_poll_writev_bad_counts),
        cmocka_unit_test(test_R30_poll_writev_null_slice_base),
        cmocka_unit_test(test_R30_poll_writev_length_overflow),
        cmocka_unit_test(test_R30_poll_writev_sum_at_limit_is_valid),
        cmocka_unit_test(test_R30_poll_writev_wrong_direction),
        cmocka_unit_test(test_R30_poll_flush_bad_args),
        cmocka_unit_test(test_R30_shutdown_bad_args),
        cmocka_unit_test(test_R30_blocking_read_bad_args),
        cmocka_unit_test(test_R30_blocking_write_bad_args),
        cmocka_unit_test(test_R30_state_queries_bad_ends),
        cmocka_unit_test(test_R30_repeated_shutdowns_keep_bytes),
        cmocka_unit_test(test_R30_writes_after_shutdown_keep_bytes),
        cmocka_unit_test(test_R30_set_allocator_busy_with_live_pipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
