/* SPDX-License-Identifier: MIT */
/*
 * SPEC.md R1-R3: capacity, creation errors, and memory that follows the
 * bytes buffered rather than the capacity.
 *
 * Allocation figures come from a counting allocator installed with
 * mempipe_set_allocator() around the tests that need it; its teardown also
 * checks that every byte was given back once the last end closed (R22).
 */
#define TU_XPROC_KIND /* the bodies also run with fx.r in a child */
#include "kinds.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* R1: M bounds the unread bytes of one pipe                           */
/* ------------------------------------------------------------------ */

static void R1_capacity_bounds_unread(enum kind k)
{
    struct fx f;
    unsigned char src[32], out[32];
    tu_pattern(src, sizeof src, 0, 1);

    fx_open(&f, k, 10);
    assert_int_equal(10, mempipe_capacity(f.w));
    assert_int_equal(10, mempipe_capacity(f.r));
    assert_int_equal(10, mempipe_writable(f.w));
    assert_int_equal(0, mempipe_readable(f.r));

    assert_rc(7, mempipe_poll_write(f.w, src, 7, NULL));
    assert_int_equal(7, mempipe_readable(f.r));
    assert_int_equal(3, mempipe_writable(f.w));
    assert_rc(3, mempipe_poll_write(f.w, src + 7, 7, NULL));
    assert_int_equal(10, mempipe_readable(f.r));
    assert_int_equal(0, mempipe_writable(f.w));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, src + 10, 1, NULL));
    assert_int_equal(10, mempipe_readable(f.r));

    /* Reading 4 frees exactly 4. */
    assert_rc(4, mempipe_poll_read(f.r, out, 4, NULL));
    assert_memory_equal(out, src, 4);
    assert_int_equal(4, mempipe_writable(f.w));
    assert_rc(4, mempipe_poll_write(f.w, src + 10, 10, NULL));
    assert_int_equal(10, mempipe_readable(f.r));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, src + 14, 1, NULL));

    assert_rc(10, mempipe_poll_read(f.r, out, sizeof out, NULL));
    assert_memory_equal(out, src + 4, 10);
    assert_int_equal(0, mempipe_readable(f.r));
    assert_int_equal(10, mempipe_writable(f.w));
    fx_close(&f);
}
KIND_TESTS(R1_capacity_bounds_unread)

/* A duplex holds up to M in each direction at the same time. */
static void test_R1_duplex_holds_M_each_direction(void **state)
{
    (void)state;
    mempipe *a, *b;
    unsigned char x[16], y[16], out[16];
    tu_pattern(x, sizeof x, 0, 2);
    tu_pattern(y, sizeof y, 0, 3);

    assert_rc(0, mempipe_duplex(5, &a, &b));
    assert_rc(5, mempipe_poll_write(a, x, sizeof x, NULL));
    assert_rc(5, mempipe_poll_write(b, y, sizeof y, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(a, x, 1, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(b, y, 1, NULL));
    assert_int_equal(5, mempipe_readable(a));
    assert_int_equal(5, mempipe_readable(b));
    assert_int_equal(0, mempipe_writable(a));
    assert_int_equal(0, mempipe_writable(b));
    assert_int_equal(5, mempipe_capacity(a));
    assert_int_equal(5, mempipe_capacity(b));

    assert_rc(5, mempipe_poll_read(b, out, sizeof out, NULL));
    assert_memory_equal(out, x, 5);
    /* The other direction is still full. */
    assert_rc(-EAGAIN, mempipe_poll_write(b, y, 1, NULL));
    assert_rc(5, mempipe_poll_read(a, out, sizeof out, NULL));
    assert_memory_equal(out, y, 5);
    mempipe_close(a);
    mempipe_close(b);
}

/* 0 <= L <= M through a long random run, checked against a model. */
static void R1_random_ops_keep_L_within_M(enum kind k)
{
    enum { M = 97, OPS = 4000 };
    struct fx f;
    unsigned char buf[3 * M];
    uint64_t rng = 0x1234 + (uint64_t)k;
    uint64_t wpos = 0, rpos = 0;

    fx_open(&f, k, M);
    for (int i = 0; i < OPS; i++) {
        size_t len = (size_t)(tu_rand(&rng) % (2 * M));
        if (tu_rand(&rng) & 1) {
            size_t want = len < M - (wpos - rpos) ? len : M - (wpos - rpos);
            tu_pattern(buf, len, wpos, 7);
            ssize_t n = mempipe_poll_write(f.w, buf, len, NULL);
            if (len == 0)
                assert_rc(0, n);
            else if (want == 0)
                assert_rc(-EAGAIN, n);
            else
                assert_rc(want, n);
            if (n > 0)
                wpos += (uint64_t)n;
        } else {
            size_t want = len < wpos - rpos ? len : (size_t)(wpos - rpos);
            ssize_t n = mempipe_poll_read(f.r, buf, len, NULL);
            if (len == 0)
                assert_rc(0, n);
            else if (want == 0)
                assert_rc(-EAGAIN, n);
            else
                assert_rc(want, n);
            if (n > 0) {
                assert_int_equal(-1, tu_check_pattern(buf, (size_t)n, rpos, 7));
                rpos += (uint64_t)n;
            }
        }
        assert_int_equal(wpos - rpos, mempipe_readable(f.r));
        assert_true(mempipe_readable(f.r) <= M);
        assert_int_equal(M - (wpos - rpos), mempipe_writable(f.w));
    }
    assert_true(wpos > 10 * M); /* the run really wrapped many times */
    fx_close(&f);
}
KIND_TESTS(R1_random_ops_keep_L_within_M)

/* ------------------------------------------------------------------ */
/* R2: rejected creation                                               */
/* ------------------------------------------------------------------ */

static mempipe *const SENTINEL_A = (mempipe *)(uintptr_t)0x1111;
static mempipe *const SENTINEL_B = (mempipe *)(uintptr_t)0x2222;

static void test_R2_zero_capacity_rejected_duplex(void **state)
{
    (void)state;
    mempipe *a = SENTINEL_A, *b = SENTINEL_B;
    assert_rc(-EINVAL, mempipe_duplex(0, &a, &b));
    assert_ptr_equal(SENTINEL_A, a);
    assert_ptr_equal(SENTINEL_B, b);
    assert_int_equal(0, atomic_load(&tu_cnt.calls));
}

static void test_R2_zero_capacity_rejected_simplex(void **state)
{
    (void)state;
    mempipe *r = SENTINEL_A, *w = SENTINEL_B;
    assert_rc(-EINVAL, mempipe_simplex(0, &r, &w));
    assert_ptr_equal(SENTINEL_A, r);
    assert_ptr_equal(SENTINEL_B, w);
    assert_int_equal(0, atomic_load(&tu_cnt.calls));
}

static void test_R2_zero_capacity_rejected_loopback(void **state)
{
    (void)state;
    mempipe *e = SENTINEL_A;
    assert_rc(-EINVAL, mempipe_loopback(0, &e));
    assert_ptr_equal(SENTINEL_A, e);
    assert_int_equal(0, atomic_load(&tu_cnt.calls));
}

static void test_R2_null_out_pointers_rejected_duplex(void **state)
{
    (void)state;
    mempipe *a = SENTINEL_A, *b = SENTINEL_B;
    assert_rc(-EINVAL, mempipe_duplex(8, NULL, &b));
    assert_ptr_equal(SENTINEL_B, b);
    assert_rc(-EINVAL, mempipe_duplex(8, &a, NULL));
    assert_ptr_equal(SENTINEL_A, a);
    assert_rc(-EINVAL, mempipe_duplex(8, NULL, NULL));
    assert_rc(-EINVAL, mempipe_duplex(8, &a, &a));
    assert_ptr_equal(SENTINEL_A, a);
    assert_rc(-EINVAL, mempipe_duplex(0, NULL, NULL));
    assert_int_equal(0, atomic_load(&tu_cnt.calls));
}

static void test_R2_null_out_pointers_rejected_simplex(void **state)
{
    (void)state;
    mempipe *r = SENTINEL_A, *w = SENTINEL_B;
    assert_rc(-EINVAL, mempipe_simplex(8, NULL, &w));
    assert_ptr_equal(SENTINEL_B, w);
    assert_rc(-EINVAL, mempipe_simplex(8, &r, NULL));
    assert_ptr_equal(SENTINEL_A, r);
    assert_rc(-EINVAL, mempipe_simplex(8, NULL, NULL));
    assert_rc(-EINVAL, mempipe_simplex(8, &r, &r));
    assert_ptr_equal(SENTINEL_A, r);
    assert_int_equal(0, atomic_load(&tu_cnt.calls));
}

static void test_R2_null_out_pointer_rejected_loopback(void **state)
{
    (void)state;
    assert_rc(-EINVAL, mempipe_loopback(8, NULL));
    assert_rc(-EINVAL, mempipe_loopback(0, NULL));
    assert_int_equal(0, atomic_load(&tu_cnt.calls));
}

/* The allocator refuses every allocation: -ENOMEM, nothing kept. */
static void R2_out_of_memory_leaves_nothing(enum kind k)
{
    mempipe *x = SENTINEL_A, *y = SENTINEL_B;
    atomic_store(&tu_cnt.fail_at, 1);
    switch (k) {
    case DUPLEX:
        assert_rc(-ENOMEM, mempipe_duplex(8, &x, &y));
        break;
    case SIMPLEX:
        assert_rc(-ENOMEM, mempipe_simplex(8, &x, &y));
        break;
    case LOOPBACK:
        assert_rc(-ENOMEM, mempipe_loopback(8, &x));
        break;
    }
    assert_ptr_equal(SENTINEL_A, x);
    assert_ptr_equal(SENTINEL_B, y);
    assert_true(atomic_load(&tu_cnt.calls) >= 1);
    assert_int_equal(0, tu_live());
    /* The allocator may change at once: no pipe was left alive. */
    assert_rc(0, mempipe_set_allocator(tu_counting_realloc, &tu_cnt));
}
KIND_TESTS(R2_out_of_memory_leaves_nothing)

/* ------------------------------------------------------------------ */
/* R3: O(1) creation, memory follows the bytes buffered                */
/* ------------------------------------------------------------------ */

/* A SIZE_MAX pipe works: 1 MiB through it in odd-sized pieces. */
static void R3_size_max_pipe_moves_bytes(enum kind k)
{
    enum { N = 1 << 20 };
    struct fx f;
    unsigned char *src = malloc(N), *dst = malloc(N);
    assert_non_null(src);
    assert_non_null(dst);
    tu_pattern(src, N, 0, 11);

    /* The largest capacity there is: SIZE_MAX, or an shm ring's (R69), or
     * the largest this process has the address space to map (-ENOMEM is
     * the documented answer beyond: TSan reserves most of it). */
    size_t big = SIZE_MAX;
    if (tu_shm != 0) {
        big = MEMPIPE_SHM_MAX;
        /* MEMPIPE_TEST_SHM_BIG caps it where a tool pays for every mapped
         * byte: helgrind paints the whole mapping as new memory, 24 GiB of
         * its own for a 1 TiB ring (the valgrind step sets 64 MiB). */
        const char *env = getenv("MEMPIPE_TEST_SHM_BIG");
        unsigned long long cap = env != NULL ? strtoull(env, NULL, 0) : 0;
        if (cap > 0 && cap < big)
            big = (size_t)cap;
        int rc;
        while ((rc = fx_try_open_shm(&f, k, big)) == -ENOMEM &&
               big > ((size_t)1 << 24))
            big /= 2;
        assert_rc(0, rc);
        print_message("  shm: capacity %zu\n", big);
    } else {
        fx_open(&f, k, big);
    }
    assert_int_equal(big, mempipe_capacity(f.w));
    assert_int_equal(big, mempipe_capacity(f.r));
    assert_int_equal(big, mempipe_writable(f.w));
    size_t off = 0, step = 1;
    while (off < N) {
        size_t len = step < N - off ? step : N - off;
        assert_rc(len, mempipe_poll_write(f.w, src + off, len, NULL));
        off += len;
        step = step * 3 + 1;
    }
    assert_int_equal(N, mempipe_readable(f.r));
    assert_int_equal(big - N, mempipe_writable(f.w));
    assert_rc(N, mempipe_poll_read(f.r, dst, N, NULL));
    assert_memory_equal(src, dst, N);
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, dst, 1, NULL));
    assert_int_equal(big, mempipe_writable(f.w));
    fx_close(&f);
    free(src);
    free(dst);
}
KIND_TESTS(R3_size_max_pipe_moves_bytes)

/* Bytes allocated by one creation: the same for capacity 1 and SIZE_MAX,
 * and small ("a few hundred bytes"; checked as under 1 KiB). */
static long long creation_bytes(enum kind k, size_t cap, long *calls)
{
    struct fx f;
    long long before = atomic_load(&tu_cnt.total);
    long calls_before = atomic_load(&tu_cnt.calls);
    fx_open(&f, k, cap);
    long long bytes = atomic_load(&tu_cnt.total) - before;
    *calls = atomic_load(&tu_cnt.calls) - calls_before;
    assert_int_equal(bytes, tu_live());
    fx_close(&f);
    assert_int_equal(0, tu_live());
    return bytes;
}

static void R3_creation_cost_independent_of_capacity(enum kind k)
{
    long calls1, calls2, calls3;
    long long small = creation_bytes(k, 1, &calls1);
    long long mid = creation_bytes(k, (size_t)1 << 30, &calls2);
    long long huge = creation_bytes(k, SIZE_MAX, &calls3);
    print_message("  %s: creation allocates %lld bytes in %ld call(s)\n",
                  k == DUPLEX    ? "duplex"
                  : k == SIMPLEX ? "simplex"
                                 : "loopback",
                  small, calls1);
    assert_true(small > 0);
    assert_int_equal(small, mid);
    assert_int_equal(small, huge);
    assert_int_equal(calls1, calls3);
    assert_int_equal(calls1, calls2);
    assert_true(small < 1024);
}
KIND_TESTS_INPROC(
    R3_creation_cost_independent_of_capacity) /* the heap: not shm */

/*
 * Live bytes stay within (bytes buffered + C) for a C that depends on
 * neither N nor M, and fall back under C once drained. C = 256 KiB leaves
 * room for a few partly filled storage blocks of any sensible size; the
 * largest N below is 32 times that, so O(N) or O(M) overhead cannot pass.
 */
#define MEM_SLACK (256 * 1024)

static void R3_memory_follows_buffered_bytes(enum kind k)
{
    static const size_t sizes[] = {1, 4096, 1 << 20, 8 << 20};
    enum { CHUNK = 64 * 1024 };
    struct fx f;
    unsigned char *chunk = malloc(CHUNK);
    assert_non_null(chunk);

    fx_open(&f, k, SIZE_MAX);
    long long base = tu_live(); /* its size is checked by the test above */
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i], off = 0;
        while (off < n) {
            size_t len = n - off < CHUNK ? n - off : CHUNK;
            tu_pattern(chunk, len, off, 5);
            assert_rc(len, mempipe_poll_write(f.w, chunk, len, NULL));
            off += len;
        }
        assert_int_equal(n, mempipe_readable(f.r));
        long long full = tu_live();
        print_message("  buffered %zu: %lld bytes live (base %lld)\n", n, full,
                      base);
        assert_true(full >= (long long)n); /* the bytes are really stored */
        assert_true(full <= base + (long long)n + MEM_SLACK);

        for (off = 0; off < n;) {
            ssize_t got = mempipe_poll_read(f.r, chunk, CHUNK, NULL);
            assert_true(got > 0);
            assert_int_equal(-1, tu_check_pattern(chunk, (size_t)got, off, 5));
            off += (size_t)got;
        }
        assert_int_equal(0, mempipe_readable(f.r));
        long long drained = tu_live();
        print_message("  drained: %lld bytes live\n", drained);
        assert_true(drained <= base + MEM_SLACK);
    }
    fx_close(&f);
    assert_int_equal(0, tu_live());
    free(chunk);
}
KIND_TESTS_INPROC(R3_memory_follows_buffered_bytes) /* the heap: not shm */

/* Many fill/drain cycles: memory does not creep. */
static void R3_steady_transfer_does_not_grow(enum kind k)
{
    enum { CHUNK = 3000, ROUNDS = 2000 };
    struct fx f;
    unsigned char buf[CHUNK];
    uint64_t wpos = 0, rpos = 0;

    fx_open(&f, k, SIZE_MAX);
    long long base = tu_live();
    long long peak = 0;
    for (int i = 0; i < ROUNDS; i++) {
        size_t len = CHUNK - (size_t)(i % 7);
        tu_pattern(buf, len, wpos, 9);
        assert_rc(len, mempipe_poll_write(f.w, buf, len, NULL));
        wpos += len;
        if (tu_live() > peak)
            peak = tu_live();
        ssize_t got = mempipe_poll_read(f.r, buf, sizeof buf, NULL);
        assert_rc(len, got);
        assert_int_equal(-1, tu_check_pattern(buf, len, rpos, 9));
        rpos += len;
    }
    assert_true(wpos > 5 * 1024 * 1024);
    assert_true(peak <= base + CHUNK + MEM_SLACK);
    fx_close(&f);
}
KIND_TESTS_INPROC(R3_steady_transfer_does_not_grow) /* the heap: not shm */

/* The hook is fixed while any pipe is alive (so the counts above are
 * trustworthy), and free again after the last close. */
static void test_R3_allocator_busy_while_pipe_alive(void **state)
{
    (void)state;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(16, &a, &b));
    assert_rc(-EBUSY, mempipe_set_allocator(NULL, NULL));
    assert_rc(-EBUSY, mempipe_set_allocator(tu_counting_realloc, &tu_cnt));
    mempipe_close(a);
    assert_rc(-EBUSY, mempipe_set_allocator(NULL, NULL));
    mempipe_close(b);
    assert_int_equal(0, tu_live());
    assert_rc(0, mempipe_set_allocator(tu_counting_realloc, &tu_cnt));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KIND_ENTRIES(R1_capacity_bounds_unread),
        cmocka_unit_test(test_R1_duplex_holds_M_each_direction),
        KIND_ENTRIES(R1_random_ops_keep_L_within_M),
        cmocka_unit_test_setup_teardown(test_R2_zero_capacity_rejected_duplex,
                                        tu_alloc_setup, tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(test_R2_zero_capacity_rejected_simplex,
                                        tu_alloc_setup, tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(test_R2_zero_capacity_rejected_loopback,
                                        tu_alloc_setup, tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(
            test_R2_null_out_pointers_rejected_duplex, tu_alloc_setup,
            tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(
            test_R2_null_out_pointers_rejected_simplex, tu_alloc_setup,
            tu_alloc_teardown),
        cmocka_unit_test_setup_teardown(
            test_R2_null_out_pointer_rejected_loopback, tu_alloc_setup,
            tu_alloc_teardown),
        KIND_ENTRIES_ALLOC(R2_out_of_memory_leaves_nothing),
        KIND_ENTRIES(R3_size_max_pipe_moves_bytes),
        KIND_ENTRIES_ALLOC_INPROC(R3_creation_cost_independent_of_capacity),
        KIND_ENTRIES_ALLOC_INPROC(R3_memory_follows_buffered_bytes),
        KIND_ENTRIES_ALLOC_INPROC(R3_steady_transfer_does_not_grow),
        cmocka_unit_test_setup_teardown(test_R3_allocator_busy_while_pipe_alive,
                                        tu_alloc_setup, tu_alloc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
