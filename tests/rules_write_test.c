/* SPDX-License-Identifier: MIT */
/*
 * SPEC.md R10-R16: mempipe_poll_write, mempipe_poll_writev and
 * mempipe_poll_flush, on each end kind where a rule applies. A SIGPIPE
 * handler counts signals for the whole run: R10 allows none.
 */
#define TU_XPROC_KIND /* the bodies also run with fx.r in a child */
#include "kinds.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Counts SIGPIPE deliveries: R10 says there are none, ever. */
static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
    (void)sig;
    sigpipes++;
}

/* Closes the reading side of f's pipe (duplex b, simplex reader). */
static void close_reader(struct fx *f)
{
    mempipe_close(f->r);
    f->r = NULL;
}

/* ------------------------------------------------------------------ */
/* R10: -EPIPE once the pipe is closed either way, checked first       */
/* ------------------------------------------------------------------ */

static void R10_own_shutdown_gives_epipe_with_free_space(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    struct iovec iov = {.iov_base = "v", .iov_len = 1};
    fx_open(&f, k, 16);
    assert_rc(2, mempipe_poll_write(f.w, "ok", 2, NULL));
    assert_rc(0, mempipe_shutdown(f.w));
    assert_rc(-EPIPE, mempipe_poll_write(f.w, "x", 1, &w));
    assert_rc(-EPIPE, mempipe_poll_writev(f.w, &iov, 1, &w));
    assert_rc(-EPIPE, mempipe_write(f.w, "x", 1));
    assert_int_equal(0, mempipe_writable(f.w));
    /* The failed writes added nothing and stored nothing. */
    expect_read(f.r, "ok", 2);
    fx_close(&f);
    expect_calls(0, &c);
    assert_int_equal(0, sigpipes);
}
KIND_TESTS(R10_own_shutdown_gives_epipe_with_free_space)

/* Full and shut down: -EPIPE, not -EAGAIN (closed is checked first). */
static void R10_closed_checked_before_full(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    fx_open(&f, k, 2);
    assert_rc(2, mempipe_poll_write(f.w, "ab", 2, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, "c", 1, NULL));
    assert_rc(0, mempipe_shutdown(f.w));
    assert_rc(-EPIPE, mempipe_poll_write(f.w, "c", 1, &w));
    assert_rc(-EPIPE, mempipe_poll_write(f.w, "c", 0, &w));
    expect_read(f.r, "ab", 2);
    fx_close(&f);
    expect_calls(0, &c);
    assert_int_equal(0, sigpipes);
}
KIND_TESTS(R10_closed_checked_before_full)

/* The reader end gone: -EPIPE at once, with free space, no SIGPIPE. */
static void R10_reader_gone_gives_epipe(enum kind k)
{
    struct fx f;
    struct iovec iov[2] = {{.iov_base = "a", .iov_len = 1},
                           {.iov_base = "b", .iov_len = 1}};
    fx_open(&f, k, 16);
    assert_rc(1, mempipe_poll_write(f.w, "z", 1, NULL));
    close_reader(&f);
    assert_int_equal(0, mempipe_writable(f.w));
    assert_rc(-EPIPE, mempipe_poll_write(f.w, "x", 1, NULL));
    assert_rc(-EPIPE, mempipe_poll_writev(f.w, iov, 2, NULL));
    assert_rc(-EPIPE, mempipe_write(f.w, "x", 1));
    assert_rc(-EPIPE, mempipe_poll_write(f.w, "x", 0, NULL));
    mempipe_close(f.w);
    assert_int_equal(0, sigpipes);
}

static void test_R10_reader_gone_gives_epipe_duplex(void **s)
{
    (void)s;
    R10_reader_gone_gives_epipe(DUPLEX);
}

static void test_R10_reader_gone_gives_epipe_simplex(void **s)
{
    (void)s;
    R10_reader_gone_gives_epipe(SIMPLEX);
}

/* Write-closed by the end's own close is covered for a duplex in R19;
 * here the other direction of a duplex is still writable after a's
 * shutdown (only the pipe a writes is closed). */
static void test_R10_duplex_shutdown_closes_one_direction(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(0, mempipe_shutdown(a));
    assert_rc(-EPIPE, mempipe_poll_write(a, "x", 1, NULL));
    assert_rc(2, mempipe_poll_write(b, "ok", 2, NULL));
    expect_read(a, "ok", 2);
    mempipe_close(a);
    mempipe_close(b);
    assert_int_equal(0, sigpipes);
}

/* ------------------------------------------------------------------ */
/* R11: full is Pending                                                */
/* ------------------------------------------------------------------ */

static void R11_full_is_pending(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    struct iovec iov = {.iov_base = "v", .iov_len = 1};
    fx_open(&f, k, 3);
    assert_rc(3, mempipe_poll_write(f.w, "abc", 3, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, "d", 1, NULL));
    assert_rc(-EAGAIN, mempipe_poll_writev(f.w, &iov, 1, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, "d", 1, &w));
    expect_calls(0, &c);
    assert_int_equal(3, mempipe_readable(f.r));
    unsigned char out[1];
    assert_rc(1, mempipe_poll_read(f.r, out, 1, NULL));
    expect_calls(1, &c);
    assert_rc(1, mempipe_poll_write(f.w, "d", 5, NULL));
    expect_read(f.r, "bcd", 3);
    fx_close(&f);
    expect_calls(1, &c);
}
KIND_TESTS(R11_full_is_pending)

/* ------------------------------------------------------------------ */
/* R12: min(len, M - L) accepted, as one contiguous block              */
/* ------------------------------------------------------------------ */

static void R12_short_writes_are_contiguous(enum kind k)
{
    struct fx f;
    unsigned char out[8];
    fx_open(&f, k, 10);
    assert_rc(4, mempipe_poll_write(f.w, "0123", 4, NULL));
    assert_rc(6, mempipe_poll_write(f.w, "456789ABCD", 10, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, "E", 1, NULL));
    assert_rc(7, mempipe_poll_read(f.r, out, 7, NULL));
    assert_memory_equal(out, "0123456", 7);
    /* 7 free: the first 7 bytes of the call, nothing from its middle. */
    assert_rc(7, mempipe_poll_write(f.w, "abcdefghij", 10, NULL));
    unsigned char all[16];
    assert_rc(10, mempipe_poll_read(f.r, all, sizeof all, NULL));
    assert_memory_equal(all, "789abcdefg", 10);
    fx_close(&f);
}
KIND_TESTS(R12_short_writes_are_contiguous)

/* A write exactly filling the space, and one of 1 byte into 1 byte. */
static void R12_exact_fit(enum kind k)
{
    struct fx f;
    fx_open(&f, k, 5);
    assert_rc(5, mempipe_poll_write(f.w, "hello", 5, NULL));
    assert_int_equal(0, mempipe_writable(f.w));
    expect_read(f.r, "hello", 5);
    assert_rc(4, mempipe_poll_write(f.w, "abcd", 4, NULL));
    assert_rc(1, mempipe_poll_write(f.w, "efg", 3, NULL));
    expect_read(f.r, "abcde", 5);
    fx_close(&f);
}
KIND_TESTS(R12_exact_fit)

/* ------------------------------------------------------------------ */
/* R13: a write that accepted bytes wakes the parked reader, once      */
/* ------------------------------------------------------------------ */

static void R13_write_wakes_parked_reader_once(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    unsigned char out[8];
    fx_open(&f, k, 8);
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &w));
    expect_calls(0, &c);
    assert_rc(2, mempipe_poll_write(f.w, "ab", 2, NULL));
    expect_calls(1, &c);
    assert_rc(2, mempipe_poll_write(f.w, "cd", 2, NULL));
    assert_rc(4, mempipe_poll_write(f.w, "efghij", 6, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, "k", 1, NULL));
    expect_calls(1, &c);
    expect_read(f.r, "abcdefgh", 8);
    fx_close(&f);
    expect_calls(1, &c);
}
KIND_TESTS(R13_write_wakes_parked_reader_once)

/* writev wakes the parked reader the same way. */
static void R13_writev_wakes_parked_reader_once(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    struct iovec iov[3] = {{.iov_base = NULL, .iov_len = 0},
                           {.iov_base = "ab", .iov_len = 2},
                           {.iov_base = "c", .iov_len = 1}};
    unsigned char out[8];
    fx_open(&f, k, 8);
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &w));
    assert_rc(3, mempipe_poll_writev(f.w, iov, 3, NULL));
    expect_calls(1, &c);
    assert_rc(3, mempipe_poll_writev(f.w, iov, 3, NULL));
    expect_calls(1, &c);
    expect_read(f.r, "abcabc", 6);
    fx_close(&f);
}
KIND_TESTS(R13_writev_wakes_parked_reader_once)

/* ------------------------------------------------------------------ */
/* R14: len == 0                                                       */
/* ------------------------------------------------------------------ */

static void R14_zero_len_write(enum kind k)
{
    struct fx f;
    struct tu_counter rc = {0}, wc = {0};
    mempipe_waker rw = tu_counter_waker(&rc), ww = tu_counter_waker(&wc);
    unsigned char out[4];
    fx_open(&f, k, 2);

    /* Open and empty with a parked reader: 0, the reader is not woken. */
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &rw));
    assert_rc(0, mempipe_poll_write(f.w, "x", 0, &ww));
    assert_rc(0, mempipe_poll_write(f.w, NULL, 0, &ww));
    expect_calls(0, &rc);
    assert_int_equal(0, mempipe_readable(f.r));

    /* Full: 0, not -EAGAIN, and the waker is not stored. */
    assert_rc(2, mempipe_poll_write(f.w, "ab", 2, NULL)); /* wakes rc */
    expect_calls(1, &rc);
    assert_rc(0, mempipe_poll_write(f.w, "c", 0, &ww));
    assert_rc(0, mempipe_poll_write(f.w, NULL, 0, &ww));
    expect_read(f.r, "ab", 2); /* space freed: would call a stored writer */
    expect_calls(0, &wc);

    /* Closed: -EPIPE even for nothing. */
    assert_rc(0, mempipe_shutdown(f.w));
    assert_rc(-EPIPE, mempipe_poll_write(f.w, "c", 0, &ww));
    assert_rc(-EPIPE, mempipe_poll_write(f.w, NULL, 0, NULL));
    assert_rc(0, mempipe_poll_read(f.r, out, sizeof out, NULL));
    fx_close(&f);
    expect_calls(1, &rc);
    expect_calls(0, &wc);
}
KIND_TESTS(R14_zero_len_write)

/* A zero-length write keeps a waker stored earlier (nothing replaced). */
static void R14_zero_len_write_keeps_stored_waker(enum kind k)
{
    struct fx f;
    struct tu_counter a = {0}, b = {0};
    mempipe_waker wa = tu_counter_waker(&a), wb = tu_counter_waker(&b);
    unsigned char out[4];
    fx_open(&f, k, 1);
    assert_rc(1, mempipe_poll_write(f.w, "a", 1, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, "b", 1, &wa));
    assert_rc(0, mempipe_poll_write(f.w, "b", 0, &wb));
    assert_rc(1, mempipe_poll_read(f.r, out, sizeof out, NULL));
    expect_calls(1, &a);
    expect_calls(0, &b);
    fx_close(&f);
}
KIND_TESTS(R14_zero_len_write_keeps_stored_waker)

/* ------------------------------------------------------------------ */
/* R15: writev == one write of the concatenation                       */
/* ------------------------------------------------------------------ */

static void R15_writev_concatenates_and_cuts(enum kind k)
{
    struct fx f;
    struct iovec iov[6] = {
        {.iov_base = "", .iov_len = 0},   {.iov_base = "ab", .iov_len = 2},
        {.iov_base = NULL, .iov_len = 0}, {.iov_base = "cde", .iov_len = 3},
        {.iov_base = "", .iov_len = 0},   {.iov_base = "f", .iov_len = 1},
    };
    fx_open(&f, k, 4);
    /* Cut to the free space inside the second non-empty slice. */
    assert_rc(4, mempipe_poll_writev(f.w, iov, 6, NULL));
    assert_rc(-EAGAIN, mempipe_poll_writev(f.w, iov, 6, NULL));
    expect_read(f.r, "abcd", 4);
    /* The caller resumes after the 4 accepted bytes. */
    struct iovec rest[2] = {{.iov_base = "e", .iov_len = 1},
                            {.iov_base = "f", .iov_len = 1}};
    assert_rc(2, mempipe_poll_writev(f.w, rest, 2, NULL));
    expect_read(f.r, "ef", 2);
    /* Everything fits: every slice, in order. */
    assert_rc(4, mempipe_poll_writev(f.w, iov + 2, 4, NULL));
    expect_read(f.r, "cdef", 4);
    fx_close(&f);
}
KIND_TESTS(R15_writev_concatenates_and_cuts)

static void R15_writev_empty_is_R14(enum kind k)
{
    struct fx f;
    struct tu_counter rc = {0}, wc = {0};
    mempipe_waker rw = tu_counter_waker(&rc), ww = tu_counter_waker(&wc);
    struct iovec empty[3] = {{.iov_base = NULL, .iov_len = 0},
                             {.iov_base = "x", .iov_len = 0},
                             {.iov_base = NULL, .iov_len = 0}};
    unsigned char out[4];
    fx_open(&f, k, 2);
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &rw));
    assert_rc(0, mempipe_poll_writev(f.w, NULL, 0, &ww));
    assert_rc(0, mempipe_poll_writev(f.w, empty, 0, &ww));
    assert_rc(0, mempipe_poll_writev(f.w, empty, 3, &ww));
    expect_calls(0, &rc); /* wakes nothing */
    assert_rc(2, mempipe_poll_write(f.w, "ab", 2, NULL));
    expect_calls(1, &rc);
    /* Full: still 0, nothing stored. */
    assert_rc(0, mempipe_poll_writev(f.w, empty, 3, &ww));
    assert_rc(0, mempipe_poll_writev(f.w, NULL, 0, &ww));
    expect_read(f.r, "ab", 2);
    expect_calls(0, &wc);
    /* Closed: -EPIPE. */
    assert_rc(0, mempipe_shutdown(f.w));
    assert_rc(-EPIPE, mempipe_poll_writev(f.w, empty, 3, &ww));
    assert_rc(-EPIPE, mempipe_poll_writev(f.w, NULL, 0, &ww));
    fx_close(&f);
    expect_calls(0, &wc);
}
KIND_TESTS(R15_writev_empty_is_R14)

/* A full writev stores its waker; freeing space calls it once. */
static void R15_writev_pending_stores_waker(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    struct iovec iov[2] = {{.iov_base = "p", .iov_len = 1},
                           {.iov_base = "q", .iov_len = 1}};
    unsigned char out[1];
    fx_open(&f, k, 1);
    assert_rc(1, mempipe_poll_writev(f.w, iov, 2, NULL));
    assert_rc(-EAGAIN, mempipe_poll_writev(f.w, iov + 1, 1, &w));
    expect_calls(0, &c);
    assert_rc(1, mempipe_poll_read(f.r, out, 1, NULL));
    assert_int_equal('p', out[0]);
    expect_calls(1, &c);
    assert_rc(1, mempipe_poll_writev(f.w, iov + 1, 1, NULL));
    expect_read(f.r, "q", 1);
    fx_close(&f);
}
KIND_TESTS(R15_writev_pending_stores_waker)

/*
 * Random slices into two pipes of the same state: writev into one, write
 * of the concatenation into the other. Same returns, same bytes.
 */
static void R15_writev_matches_write_randomly(enum kind k)
{
    enum { M = 333, ROUNDS = 1500, MAXIOV = 9 };
    struct fx v, p;
    uint64_t rng = 4242 + (uint64_t)k, pos = 0;
    unsigned char src[MAXIOV * 64], cat[MAXIOV * 64], o1[M], o2[M];
    struct iovec iov[MAXIOV];

    fx_open(&v, k, M);
    fx_open(&p, k, M);
    for (int r = 0; r < ROUNDS; r++) {
        int n = (int)(tu_rand(&rng) % (MAXIOV + 1));
        size_t total = 0;
        for (int i = 0; i < n; i++) {
            size_t len = (size_t)(tu_rand(&rng) % 64);
            if (tu_rand(&rng) % 4 == 0)
                len = 0;
            tu_pattern(src + total, len, pos + total, 77);
            iov[i].iov_base = len || (tu_rand(&rng) & 1) ? src + total : NULL;
            iov[i].iov_len = len;
            total += len;
        }
        memcpy(cat, src, total);
        ssize_t nv = mempipe_poll_writev(v.w, iov, n, NULL);
        ssize_t np = mempipe_poll_write(p.w, cat, total, NULL);
        assert_rc(np, nv);
        if (np > 0)
            pos += (uint64_t)np;
        if (tu_rand(&rng) % 3 == 0) {
            size_t want = 1 + (size_t)(tu_rand(&rng) % M);
            ssize_t r1 = mempipe_poll_read(v.r, o1, want, NULL);
            ssize_t r2 = mempipe_poll_read(p.r, o2, want, NULL);
            assert_rc(r2, r1);
            if (r1 > 0)
                assert_memory_equal(o1, o2, (size_t)r1);
        }
    }
    assert_true(pos > 10 * M);
    fx_close(&v);
    fx_close(&p);
}
KIND_TESTS(R15_writev_matches_write_randomly)

/* Many slices, up to IOV_MAX of them. */
static void R15_writev_iov_max_slices(enum kind k)
{
    struct fx f;
    struct iovec *iov = calloc(IOV_MAX, sizeof *iov);
    unsigned char *src = malloc(IOV_MAX), *out = malloc(IOV_MAX + 1);
    assert_non_null(iov);
    assert_non_null(src);
    assert_non_null(out);
    tu_pattern(src, IOV_MAX, 0, 3);
    for (int i = 0; i < IOV_MAX; i++) {
        iov[i].iov_base = src + i;
        iov[i].iov_len = 1;
    }
    fx_open(&f, k, 2 * IOV_MAX);
    assert_rc(IOV_MAX, mempipe_poll_writev(f.w, iov, IOV_MAX, NULL));
    assert_rc(IOV_MAX, mempipe_poll_read(f.r, out, IOV_MAX + 1, NULL));
    assert_memory_equal(out, src, IOV_MAX);
    fx_close(&f);
    free(iov);
    free(src);
    free(out);
}
KIND_TESTS(R15_writev_iov_max_slices)

/* ------------------------------------------------------------------ */
/* R16: poll_flush returns 0 at once, always, and stores nothing       */
/* ------------------------------------------------------------------ */

static void R16_flush_always_zero_stores_nothing(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    unsigned char out[4];
    fx_open(&f, k, 2);
    assert_rc(0, mempipe_poll_flush(f.w, &w)); /* empty */
    assert_rc(0, mempipe_poll_flush(f.r, &w));
    assert_rc(1, mempipe_poll_write(f.w, "a", 1, NULL));
    assert_rc(0, mempipe_poll_flush(f.w, &w)); /* partly full */
    assert_rc(1, mempipe_poll_write(f.w, "b", 1, NULL));
    assert_rc(0, mempipe_poll_flush(f.w, &w)); /* full */
    assert_rc(0, mempipe_poll_flush(f.w, NULL));
    assert_rc(2, mempipe_poll_read(f.r, out, sizeof out, NULL));
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, NULL));
    assert_rc(1, mempipe_poll_write(f.w, "c", 1, NULL));
    assert_rc(0, mempipe_shutdown(f.w));
    assert_rc(0, mempipe_poll_flush(f.w, &w)); /* shut down */
    assert_rc(0, mempipe_poll_flush(f.r, &w));
    assert_rc(1, mempipe_poll_read(f.r, out, sizeof out, NULL));
    assert_rc(0, mempipe_poll_read(f.r, out, sizeof out, NULL));
    if (f.r != f.w) {
        mempipe_close(f.r); /* the reader gone */
        f.r = f.w;
        assert_rc(0, mempipe_poll_flush(f.w, &w));
    }
    mempipe_close(f.w);
    /* Every event above (writes, reads, shutdown, close) happened after a
     * flush was given the waker: none called it. */
    expect_calls(0, &c);
}
KIND_TESTS(R16_flush_always_zero_stores_nothing)

/* Flushing does not disturb wakers stored by the real poll calls. */
static void R16_flush_keeps_stored_wakers(enum kind k)
{
    struct fx f;
    struct tu_counter rc = {0}, fc = {0};
    mempipe_waker rw = tu_counter_waker(&rc), fw = tu_counter_waker(&fc);
    unsigned char out[4];
    fx_open(&f, k, 4);
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &rw));
    assert_rc(0, mempipe_poll_flush(f.w, &fw));
    assert_rc(0, mempipe_poll_flush(f.r, &fw));
    expect_calls(0, &rc);
    assert_rc(1, mempipe_poll_write(f.w, "a", 1, NULL));
    expect_calls(1, &rc);
    expect_calls(0, &fc);
    fx_close(&f);
}
KIND_TESTS(R16_flush_keeps_stored_wakers)

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigpipe;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);

    const struct CMUnitTest tests[] = {
        KIND_ENTRIES(R10_own_shutdown_gives_epipe_with_free_space),
        KIND_ENTRIES(R10_closed_checked_before_full),
        cmocka_unit_test(test_R10_reader_gone_gives_epipe_duplex),
        cmocka_unit_test(test_R10_reader_gone_gives_epipe_simplex),
        cmocka_unit_test(test_R10_duplex_shutdown_closes_one_direction),
        KIND_ENTRIES(R11_full_is_pending),
        KIND_ENTRIES(R12_short_writes_are_contiguous),
        KIND_ENTRIES(R12_exact_fit),
        KIND_ENTRIES(R13_write_wakes_parked_reader_once),
        KIND_ENTRIES(R13_writev_wakes_parked_reader_once),
        KIND_ENTRIES(R14_zero_len_write),
        KIND_ENTRIES(R14_zero_len_write_keeps_stored_waker),
        KIND_ENTRIES(R15_writev_concatenates_and_cuts),
        KIND_ENTRIES(R15_writev_empty_is_R14),
        KIND_ENTRIES(R15_writev_pending_stores_waker),
        KIND_ENTRIES(R15_writev_matches_write_randomly),
        KIND_ENTRIES(R15_writev_iov_max_slices),
        KIND_ENTRIES(R16_flush_always_zero_stores_nothing),
        KIND_ENTRIES(R16_flush_keeps_stored_wakers),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (sigpipes != 0) {
        fprintf(stderr, "R10: %d SIGPIPE(s) raised\n", (int)sigpipes);
        failed++;
    }
    return failed;
}
