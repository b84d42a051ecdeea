/* SPDX-License-Identifier: MIT */
/*
 * Allocation failure sweep through the allocator hook (mempipe_set_allocator),
 * in the manner of Lua's ltests.c: for every API path, fail its 1st, 2nd, ...
 * allocation until the path completes without a failure. Every failed path
 * must return -ENOMEM (or a short count, for a write that placed some bytes
 * first), leak nothing, and leave every pipe and its bytes intact: each
 * iteration reads the pipe back and a bystander pipe is checked throughout.
 *
 * The test allocator keeps a header before each block, so it also checks
 * that the library frees with the size it allocated, and it counts live
 * bytes, which must return to 0 once everything is closed (LeakSanitizer
 * checks the same in the ASan build).
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the test allocator ------------------------------------------------ */

struct talloc {
    long long nallocs; /* allocations attempted so far */
    long long fail_at; /* fail allocation number fail_at (0: never) */
    int fail_rest;     /* and every one after it too */
    int failed;        /* an allocation was failed since armed */
    long long live;    /* bytes allocated and not freed */
    long long blocks;  /* blocks allocated and not freed */
    int bad_ctx;       /* the hook saw a ctx other than its own */
    int bad_size;      /* a free's old_size did not match */
};

#define HDR   16 /* keeps the library's blocks 16-byte aligned */
#define MAGIC 0x6d656d70u

static struct talloc ta;
static long long fail_points; /* injected failures over the whole run */

static void *failing_realloc(void *ctx, void *ptr, size_t old_size,
                             size_t new_size)
{
    struct talloc *t = ctx;
    if (t != &ta)
        ta.bad_ctx = 1;
    if (ptr != NULL) {
        unsigned char *raw = (unsigned char *)ptr - HDR;
        size_t had;
        unsigned magic;
        memcpy(&had, raw, sizeof had);
        memcpy(&magic, raw + sizeof had, sizeof magic);
        if (had != old_size || magic != MAGIC)
            t->bad_size = 1;
        if (new_size == 0) {
            t->live -= (long long)had;
            t->blocks--;
            memset(raw, 0xdd, HDR); /* a double free would trip MAGIC */
            free(raw);
            return NULL;
        }
    } else if (new_size == 0) {
        return NULL;
    }
    t->nallocs++;
    if (t->fail_at != 0 && (t->nallocs == t->fail_at ||
                            (t->fail_rest && t->nallocs > t->fail_at))) {
        t->failed = 1;
        fail_points++;
        return NULL;
    }
    unsigned char *raw;
    if (ptr != NULL) {
        raw = realloc((unsigned char *)ptr - HDR, new_size + HDR);
        if (raw == NULL)
            return NULL;
        t->live -= (long long)old_size;
        t->blocks--;
    } else {
        raw = malloc(new_size + HDR);
        if (raw == NULL)
            return NULL;
    }
    unsigned magic = MAGIC;
    memcpy(raw, &new_size, sizeof new_size);
    memcpy(raw + sizeof new_size, &magic, sizeof magic);
    t->live += (long long)new_size;
    t->blocks++;
    return raw + HDR;
}

/* Fails the n-th allocation from now on (n >= 1). */
static void arm(long long n)
{
    ta.fail_at = ta.nallocs + n;
    ta.failed = 0;
}

/* Lets n more allocations succeed, then fails every one (n >= 0). */
static void arm_all_after(long long n)
{
    arm(n + 1);
    ta.fail_rest = 1;
}

static void disarm(void)
{
    ta.fail_at = 0;
    ta.fail_rest = 0;
}

static int setup(void **state)
{
    (void)state;
    memset(&ta, 0, sizeof ta);
    return mempipe_set_allocator(failing_realloc, &ta);
}

static int teardown(void **state)
{
    (void)state;
    int leaked = ta.live != 0 || ta.blocks != 0;
    if (leaked)
        fprintf(stderr, "alloc_test: %lld bytes in %lld blocks leaked\n",
                ta.live, ta.blocks);
    int rc = mempipe_set_allocator(NULL, NULL);
    return leaked || ta.bad_ctx || ta.bad_size || rc != 0 ? -1 : 0;
}

static void assert_allocator_sane(void)
{
    assert_int_equal(ta.bad_ctx, 0);
    assert_int_equal(ta.bad_size, 0);
}

/* ---- helpers ------------------------------------------------------------ */

/* A bystander pipe with bytes in it, made before a sweep and read back
 * (and re-filled) after every failed step. */
struct bystander {
    mempipe *r, *w;
    uint64_t pos; /* stream position of the next byte to read */
};

#define BY_SEED 99
#define BY_LEN  1000

static void by_open(struct bystander *by)
{
    unsigned char buf[BY_LEN];
    assert_rc(0, mempipe_simplex(1 << 20, &by->r, &by->w));
    tu_pattern(buf, BY_LEN, 0, BY_SEED);
    assert_rc(BY_LEN, mempipe_poll_write(by->w, buf, BY_LEN, NULL));
    by->pos = 0;
}

/* Reads the bystander's bytes back and writes the same count again. */
static void by_check(struct bystander *by)
{
    unsigned char buf[BY_LEN];
    assert_rc(BY_LEN, mempipe_readable(by->r));
    assert_rc(BY_LEN, mempipe_poll_read(by->r, buf, BY_LEN, NULL));
    assert_rc(-1, tu_check_pattern(buf, BY_LEN, by->pos, BY_SEED));
    tu_pattern(buf, BY_LEN, by->pos + BY_LEN, BY_SEED);
    assert_rc(BY_LEN, mempipe_poll_write(by->w, buf, BY_LEN, NULL));
    by->pos += BY_LEN;
}

static void by_close(struct bystander *by)
{
    by_check(by);
    mempipe_close(by->w);
    mempipe_close(by->r);
}

/* Reads exactly n stream bytes of seed from end, starting at pos. */
static void read_back(mempipe *end, uint64_t pos, uint64_t n, uint64_t seed)
{
    static unsigned char buf[65536];
    while (n > 0) {
        size_t want = n < sizeof buf ? (size_t)n : sizeof buf;
        ssize_t r = mempipe_poll_read(end, buf, want, NULL);
        assert_true(r > 0);
        assert_rc(-1, tu_check_pattern(buf, (size_t)r, pos, seed));
        pos += (uint64_t)r;
        n -= (uint64_t)r;
    }
}

/* ---- creation ------------------------------------------------------------ */

enum kind { DUPLEX, SIMPLEX, LOOPBACK };
static const char *const kind_name[] = {"duplex", "simplex", "loopback"};

static int create(enum kind k, size_t cap, mempipe **x, mempipe **y)
{
    switch (k) {
    case DUPLEX:
        return mempipe_duplex(cap, x, y);
    case SIMPLEX:
        return mempipe_simplex(cap, x, y);
    case LOOPBACK:
        break;
    }
    return mempipe_loopback(cap, x);
}

static void test_R2_creation_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
    struct bystander by;
    by_open(&by);
    for (int k = DUPLEX; k <= LOOPBACK; k++) {
        long long n;
        for (n = 1;; n++) {
            mempipe *sentinel = (mempipe *)&ta; /* any recognisable value */
            mempipe *x = sentinel, *y = sentinel;
            long long live = ta.live;
            arm(n);
            int rc = create((enum kind)k, 4096, &x, &y);
            disarm();
            if (!ta.failed) {
                assert_rc(0, rc);
                mempipe_close(x);
                mempipe_close(y == sentinel ? NULL : y);
                assert_int_equal(ta.live, live);
                break;
            }
            /* R2: -ENOMEM, nothing allocated, out-pointers untouched. */
            assert_rc(-ENOMEM, rc);
            assert_ptr_equal(x, sentinel);
            assert_ptr_equal(y, sentinel);
            assert_int_equal(ta.live, live);
            by_check(&by);
        }
        printf("alloc_test: %s creation: %lld failure points\n", kind_name[k],
               n - 1);
        assert_true(n > 1); /* creation allocates, so something failed */
    }
    by_close(&by);
    assert_allocator_sane();
}

/* ---- writes ------------------------------------------------------------- */

/* How a write path is driven. */
enum wmode { W_POLL, W_POLLV, W_BLOCKING };
static const char *const wmode_name[] = {"poll_write", "poll_writev",
                                         "blocking write"};

static ssize_t write_with(enum wmode m, mempipe *w, const unsigned char *buf,
                          size_t len)
{
    if (m == W_POLL)
        return mempipe_poll_write(w, buf, len, NULL);
    if (m == W_BLOCKING)
        return mempipe_write(w, buf, len);
    /* Five slices, two of them empty, cut at uneven places. */
    struct iovec iov[5] = {
        {(void *)buf, len / 7},
        {NULL, 0},
        {(void *)(buf + len / 7), len / 2 - len / 7},
        {(void *)(buf + len), 0},
        {(void *)(buf + len / 2), len - len / 2},
    };
    return mempipe_poll_writev(w, iov, 5, NULL);
}

/*
 * One write scenario: a pipe of kind k holding `prior` bytes (of which
 * `drained` were already read, so segments sit in the spare cache), then a
 * write of len bytes with the n-th allocation failing.
 */
struct wcase {
    enum kind kind;
    size_t cap;
    size_t prior;
    size_t drained;
    size_t len;
};

static void sweep_write(const struct wcase *c, enum wmode m,
                        struct bystander *by)
{
    const uint64_t seed = 1234;
    unsigned char *buf = malloc(c->prior + c->len);
    assert_non_null(buf);
    tu_pattern(buf, c->prior + c->len, 0, seed);
    long long n;
    for (n = 1;; n++) {
        mempipe *x, *y = NULL;
        long long live = ta.live;
        assert_rc(0, create(c->kind, c->cap, &x, &y));
        mempipe *w = c->kind == SIMPLEX ? y : x;
        mempipe *r = c->kind == DUPLEX ? y : x;
        if (c->prior > 0)
            assert_rc(c->prior, mempipe_poll_write(w, buf, c->prior, NULL));
        if (c->drained > 0) {
            unsigned char tmp[4096];
            size_t left = c->drained;
            while (left > 0) {
                size_t want = left < sizeof tmp ? left : sizeof tmp;
                assert_rc(want, mempipe_poll_read(r, tmp, want, NULL));
                left -= want;
            }
        }

        arm(n);
        ssize_t rc = write_with(m, w, buf + c->prior, c->len);
        disarm();
        if (!ta.failed) {
            assert_rc(c->len, rc);
        } else if (rc != -ENOMEM) {
            /* Bytes placed before the failure are kept: a short write (the
             * blocking write retries, and may then complete). */
            assert_true(rc > 0 && (size_t)rc <= c->len);
            if (m != W_BLOCKING)
                assert_true((size_t)rc < c->len);
        }
        size_t got = rc > 0 ? (size_t)rc : 0;
        /* Every byte accepted before and by this write reads back in
         * order, and nothing else; then the pipe still works. */
        assert_rc(c->prior - c->drained + got, mempipe_readable(r));
        read_back(r, c->drained, c->prior - c->drained + got, seed);
        assert_rc(-EAGAIN, mempipe_poll_read(r, buf, 1, NULL));
        assert_rc(3, mempipe_poll_write(w, "xyz", 3, NULL));
        assert_rc(3, mempipe_readable(r));
        mempipe_close(x);
        mempipe_close(y);
        assert_int_equal(ta.live, live);
        by_check(by);
        if (!ta.failed)
            break;
    }
    printf("alloc_test: %s %s of %zu (prior %zu, drained %zu): %lld "
           "failure points\n",
           kind_name[c->kind], wmode_name[m], c->len, c->prior, c->drained,
           n - 1);
    free(buf);
}

static const struct wcase wcases[] = {
    /* first write into a fresh pipe: one segment */
    {DUPLEX, 4096, 0, 0, 100},
    /* a write that needs several new, growing segments */
    {DUPLEX, (size_t)-1, 100, 0, 300000},
    {SIMPLEX, 1 << 20, 0, 0, 200000},
    /* the spare segment is too small: freed, a bigger one allocated */
    {LOOPBACK, (size_t)-1, 300, 300, 5000},
    /* a small capacity: segments never grow past it */
    {SIMPLEX, 300, 250, 200, 250},
};

static void test_R12_R15_writes_fail_cleanly_at_every_allocation(void **state)
{
    (void)state;
    struct bystander by;
    by_open(&by);
    for (size_t i = 0; i < sizeof wcases / sizeof wcases[0]; i++)
        for (int m = W_POLL; m <= W_BLOCKING; m++)
            sweep_write(&wcases[i], (enum wmode)m, &by);
    by_close(&by);
    assert_allocator_sane();
}

/* ---- reads, shutdown and close allocate nothing -------------------------- */

static void test_R21_R22_reads_and_closes_do_not_allocate(void **state)
{
    (void)state;
    unsigned char *buf = malloc(300000);
    assert_non_null(buf);
    tu_pattern(buf, 300000, 0, 5);
    for (int k = DUPLEX; k <= LOOPBACK; k++) {
        mempipe *x, *y = NULL;
        assert_rc(0, create((enum kind)k, (size_t)-1, &x, &y));
        mempipe *w = k == SIMPLEX ? y : x;
        mempipe *r = k == DUPLEX ? y : x;
        assert_rc(300000, mempipe_poll_write(w, buf, 300000, NULL));
        if (k == DUPLEX)
            assert_rc(300000, mempipe_poll_write(y, buf, 300000, NULL));

        /* Fail the very next allocation: none of these may need one. */
        arm(1);
        read_back(r, 0, 1000, 5);
        assert_rc(0, mempipe_shutdown(w));
        read_back(r, 1000, 299000 - 1, 5);
        unsigned char c;
        assert_rc(1, mempipe_read(r, &c, 1));
        assert_rc(0, mempipe_read(r, &c, 1)); /* EOF */
        mempipe_close(x); /* the duplex's x closes with 300000 unread */
        mempipe_close(y);
        assert_int_equal(ta.failed, 0);
        disarm();
        assert_int_equal(ta.live, 0);
    }
    free(buf);
    assert_allocator_sane();
}

/* Closing one end while the other keeps its bytes: nothing is lost. */
static void test_R21_close_keeps_peer_bytes_under_failures(void **state)
{
    (void)state;
    unsigned char buf[5000];
    tu_pattern(buf, sizeof buf, 0, 8);
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(1 << 16, &a, &b));
    assert_rc(sizeof buf, mempipe_poll_write(a, buf, sizeof buf, NULL));
    arm(1);
    mempipe_close(a);
    /* A write by b needs a segment: it fails with -EPIPE before any
     * allocation (R10 is checked first). */
    assert_rc(-EPIPE, mempipe_poll_write(b, buf, 10, NULL));
    read_back(b, 0, sizeof buf, 8);
    assert_int_equal(ta.failed, 0);
    disarm();
    assert_rc(0, mempipe_poll_read(b, buf, 1, NULL));
    mempipe_close(b);
    assert_int_equal(ta.live, 0);
    assert_allocator_sane();
}

/*
 * SPEC R36: a blocking write that runs out of memory part-way returns the
 * count accepted, on a pipe that is still open (not the -EPIPE case of
 * R28); the call for the rest returns -ENOMEM while memory stays short, and
 * succeeds once it is back. The reader gets exactly the accepted bytes.
 */
static void test_R36_blocking_write_short_count_then_enomem(void **state)
{
    (void)state;
    enum { LEN = 1 << 20, SEG = 64 << 10, SEGS = 4 };
    const uint64_t seed = 36;
    unsigned char *buf = malloc(LEN);
    assert_non_null(buf);
    tu_pattern(buf, LEN, 0, seed);
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex((size_t)-1, &a, &b));

    /* Room for SEGS segments of 64 KiB, then no memory at all. */
    arm_all_after(SEGS);
    ssize_t n = mempipe_write(a, buf, LEN);
    assert_true(ta.failed);
    assert_rc(SEGS * SEG, n);
    /* Short, but the pipe is open: writable, and a write is -ENOMEM. */
    assert_true(mempipe_writable(a) > 0);
    char line[160];
    assert_true(mempipe_describe(a, line, sizeof line) > 0);
    assert_non_null(strstr(line, "tx=262144/"));
    assert_non_null(strstr(line, " open "));
    assert_rc(-ENOMEM, mempipe_write(a, buf + n, LEN - (size_t)n));
    assert_rc(-ENOMEM, mempipe_poll_write(a, buf + n, 1, NULL));
    struct iovec iov = {buf + n, 100};
    assert_rc(-ENOMEM, mempipe_poll_writev(a, &iov, 1, NULL));
    /* The reader gets exactly the accepted bytes, then nothing. */
    assert_rc(n, mempipe_readable(b));
    read_back(b, 0, (uint64_t)n, seed);
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, 1, NULL));

    /* Memory back: the rest goes through and reads back in order. */
    disarm();
    assert_rc(LEN - n, mempipe_write(a, buf + n, LEN - (size_t)n));
    read_back(b, (uint64_t)n, (uint64_t)(LEN - n), seed);
    mempipe_close(a);
    mempipe_close(b);
    free(buf);
    assert_allocator_sane();
}

/* ---- mempipe_set_allocator itself -----------------------------------------
 */

static void test_set_allocator_busy_while_pipes_live(void **state)
{
    (void)state;
    mempipe *a, *b, *l;
    assert_rc(0, mempipe_duplex(16, &a, &b));
    assert_rc(-EBUSY, mempipe_set_allocator(NULL, NULL));
    mempipe_close(a);
    /* One end still open: the pipe's memory is still the hook's. */
    assert_rc(-EBUSY, mempipe_set_allocator(failing_realloc, &ta));
    assert_rc(0, mempipe_loopback(16, &l));
    mempipe_close(b);
    assert_rc(-EBUSY, mempipe_set_allocator(NULL, NULL));
    mempipe_close(l);
    assert_rc(0, mempipe_set_allocator(failing_realloc, &ta));
    assert_int_equal(ta.live, 0);
}

static void
test_set_allocator_passes_ctx_and_null_restores_default(void **state)
{
    (void)state;
    mempipe *a, *b;
    /* ctx reaches the hook: the allocator flags any other ctx. */
    long long before = ta.nallocs;
    assert_rc(0, mempipe_duplex(1 << 16, &a, &b));
    assert_rc(1000, mempipe_poll_write(a, memset((char[1000]){0}, 1, 1000),
                                       1000, NULL));
    assert_true(ta.nallocs > before);
    assert_true(ta.live > 0);
    mempipe_close(a);
    mempipe_close(b);
    assert_int_equal(ta.live, 0);
    assert_allocator_sane();

    /* NULL restores libc: the hook sees nothing any more. */
    assert_rc(0, mempipe_set_allocator(NULL, NULL));
    before = ta.nallocs;
    assert_rc(0, mempipe_duplex(1 << 16, &a, &b));
    assert_rc(1000, mempipe_poll_write(a, memset((char[1000]){0}, 2, 1000),
                                       1000, NULL));
    assert_int_equal(ta.nallocs, before);
    mempipe_close(a);
    mempipe_close(b);

    /* And a hook can be set again afterwards, with its own ctx. */
    assert_rc(0, mempipe_set_allocator(failing_realloc, &ta));
    assert_rc(0, mempipe_loopback(8, &a));
    assert_rc(1, mempipe_poll_write(a, "x", 1, NULL));
    assert_true(ta.nallocs > before);
    mempipe_close(a);
    assert_allocator_sane();
}

static void test_R3_creation_costs_little_with_huge_capacity(void **state)
{
    (void)state;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex((size_t)-1, &a, &b));
    /* O(1): a few KiB of core, nowhere near any capacity. */
    assert_true(ta.live > 0 && ta.live < 16384);
    mempipe_close(a);
    mempipe_close(b);
}

/*
 * R3, and the header's promise at mempipe_duplex(): once a burst has drained,
 * each direction keeps at most two segments (the head, which is also the
 * tail, and one cached spare) of at most 64 KiB each, whatever the burst
 * was, until the pipe is closed.
 */
static void test_R3_burst_drained_keeps_at_most_two_segments(void **state)
{
    (void)state;
    enum { BURST = 4 << 20, CHUNK = 1000 };
    /* A segment: 64 KiB of data after a header of three words. */
    const long long seg = (64 << 10) + 3 * (long long)sizeof(size_t);
    unsigned char *buf = malloc(BURST);
    assert_non_null(buf);
    tu_pattern(buf, BURST, 0, 3);
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex((size_t)-1, &a, &b));
    long long empty = ta.live;

    for (int round = 0; round < 3; round++) {
        /* Both directions at once hold the whole burst ... */
        assert_rc(BURST, mempipe_poll_write(a, buf, BURST, NULL));
        assert_rc(BURST, mempipe_poll_write(b, buf, BURST, NULL));
        assert_true(ta.live - empty >= 2LL * BURST);
        /* ... and give it back as it is read, small reads at a time. */
        read_back(b, (uint64_t)round * BURST, BURST, 3);
        read_back(a, (uint64_t)round * BURST, BURST, 3);
        long long kept = ta.live - empty;
        if (kept > 4 * seg)
            fail_msg("round %d: %lld bytes kept after the burst drained; at "
                     "most two segments per direction (%lld) expected",
                     round, kept, 4 * seg);
        /* Small traffic afterwards stays within them too. */
        for (int i = 0; i < 1000; i++) {
            unsigned char tmp[CHUNK];
            assert_rc(CHUNK, mempipe_poll_write(a, buf, CHUNK, NULL));
            assert_rc(CHUNK, mempipe_poll_read(b, tmp, CHUNK, NULL));
            assert_memory_equal(tmp, buf, CHUNK);
        }
        assert_true(ta.live - empty <= 4 * seg);
        tu_pattern(buf, BURST, (uint64_t)(round + 1) * BURST, 3);
    }
    mempipe_close(a);
    mempipe_close(b);
    free(buf);
    assert_allocator_sane();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_R2_creation_fails_cleanly_at_every_allocation, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_R12_R15_writes_fail_cleanly_at_every_allocation, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_R21_R22_reads_and_closes_do_not_allocate, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_R21_close_keeps_peer_bytes_under_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_R36_blocking_write_short_count_then_enomem, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_set_allocator_busy_while_pipes_live, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_set_allocator_passes_ctx_and_null_restores_default, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_R3_creation_costs_little_with_huge_capacity, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_R3_burst_drained_keeps_at_most_two_segments, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    printf("alloc_test: %lld allocation failures injected in all\n",
           fail_points);
    return failed;
}
