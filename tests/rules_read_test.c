/* SPDX-License-Identifier: MIT */
/*
 * SPEC.md R4-R9: mempipe_poll_read. Every rule is checked on each end kind
 * where it applies (duplex, simplex, loopback), with exact return values,
 * exact bytes, and exact waker call counts.
 */
#define TU_XPROC_KIND /* the bodies also run with fx.r in a child */
#include "kinds.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* R4: bytes come out oldest first, min(L, len) at a time              */
/* ------------------------------------------------------------------ */

static void R4_reads_min_of_buffered_and_len(enum kind k)
{
    struct fx f;
    unsigned char out[16];
    fx_open(&f, k, 64);
    assert_rc(8, mempipe_poll_write(f.w, "abcdefgh", 8, NULL));
    assert_rc(3, mempipe_poll_read(f.r, out, 3, NULL));
    assert_memory_equal(out, "abc", 3);
    assert_int_equal(5, mempipe_readable(f.r));
    /* Never waits to fill len: 5 of the 16 asked for. */
    memset(out, 'X', sizeof out);
    assert_rc(5, mempipe_poll_read(f.r, out, sizeof out, NULL));
    assert_memory_equal(out, "defgh", 5);
    assert_int_equal('X', out[5]); /* nothing past k was written */
    assert_int_equal(0, mempipe_readable(f.r));
    fx_close(&f);
}
KIND_TESTS(R4_reads_min_of_buffered_and_len)

/* Bytes of several writes come out as one ordered stream. */
static void R4_reads_span_writes_in_order(enum kind k)
{
    struct fx f;
    unsigned char out[16];
    fx_open(&f, k, 64);
    assert_rc(2, mempipe_poll_write(f.w, "ab", 2, NULL));
    assert_rc(3, mempipe_poll_write(f.w, "cde", 3, NULL));
    assert_rc(1, mempipe_poll_write(f.w, "f", 1, NULL));
    assert_rc(4, mempipe_poll_read(f.r, out, 4, NULL));
    assert_memory_equal(out, "abcd", 4);
    assert_rc(1, mempipe_poll_write(f.w, "g", 1, NULL));
    expect_read(f.r, "efg", 3);
    fx_close(&f);
}
KIND_TESTS(R4_reads_span_writes_in_order)

/* 3 MiB in random pieces through a small pipe: none lost or repeated. */
static void R4_random_pieces_none_lost_or_repeated(enum kind k)
{
    enum { M = 70000, TOTAL = 3 << 20, MAXPIECE = 100000 };
    struct fx f;
    unsigned char *buf = malloc(MAXPIECE);
    uint64_t rng = 99 + (uint64_t)k, wpos = 0, rpos = 0;
    assert_non_null(buf);

    fx_open(&f, k, M);
    while (rpos < TOTAL) {
        size_t len = 1 + (size_t)(tu_rand(&rng) % MAXPIECE);
        if (wpos < TOTAL && (tu_rand(&rng) & 1)) {
            if (len > TOTAL - wpos)
                len = (size_t)(TOTAL - wpos);
            tu_pattern(buf, len, wpos, 31);
            ssize_t n = mempipe_poll_write(f.w, buf, len, NULL);
            size_t room = M - (size_t)(wpos - rpos);
            assert_rc(
                room == 0 ? -EAGAIN : (long long)(len < room ? len : room), n);
            if (n > 0)
                wpos += (uint64_t)n;
        } else {
            size_t have = (size_t)(wpos - rpos);
            ssize_t n = mempipe_poll_read(f.r, buf, len, NULL);
            assert_rc(
                have == 0 ? -EAGAIN : (long long)(len < have ? len : have), n);
            if (n > 0) {
                assert_int_equal(-1,
                                 tu_check_pattern(buf, (size_t)n, rpos, 31));
                rpos += (uint64_t)n;
            }
        }
    }
    assert_int_equal(TOTAL, wpos);
    fx_close(&f);
    free(buf);
}
KIND_TESTS(R4_random_pieces_none_lost_or_repeated)

/* ------------------------------------------------------------------ */
/* R5: EOF after the buffered bytes, every time                        */
/* ------------------------------------------------------------------ */

static void R5_shutdown_bytes_then_eof_forever(enum kind k)
{
    struct fx f;
    unsigned char out[4];
    fx_open(&f, k, 64);
    assert_rc(3, mempipe_poll_write(f.w, "xyz", 3, NULL));
    assert_rc(0, mempipe_shutdown(f.w));
    assert_int_equal(3, mempipe_readable(f.r));
    /* One byte at a time: every byte still comes before EOF. */
    for (int i = 0; i < 3; i++) {
        assert_rc(1, mempipe_poll_read(f.r, out, 1, NULL));
        assert_int_equal("xyz"[i], out[0]);
    }
    for (int i = 0; i < 5; i++)
        assert_rc(0, mempipe_poll_read(f.r, out, sizeof out, NULL));
    fx_close(&f);
}
KIND_TESTS(R5_shutdown_bytes_then_eof_forever)

/* EOF with nothing buffered at all; a waker passed at EOF is not stored. */
static void R5_eof_on_empty_stores_no_waker(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    unsigned char out[4];
    fx_open(&f, k, 8);
    assert_rc(0, mempipe_shutdown(f.w));
    assert_rc(0, mempipe_poll_read(f.r, out, sizeof out, &w));
    assert_rc(0, mempipe_poll_read(f.r, out, sizeof out, &w));
    assert_rc(0, mempipe_shutdown(f.w)); /* would call a stored reader */
    fx_close(&f);
    expect_calls(0, &c);
}
KIND_TESTS(R5_eof_on_empty_stores_no_waker)

/* Whatever closed the pipe: closing the writer end, not shutting down. */
static void R5_close_bytes_then_eof_duplex_simplex(enum kind k)
{
    struct fx f;
    unsigned char out[8];
    fx_open(&f, k, 64);
    assert_rc(5, mempipe_poll_write(f.w, "hello", 5, NULL));
    mempipe_close(f.w);
    assert_rc(2, mempipe_poll_read(f.r, out, 2, NULL));
    assert_memory_equal(out, "he", 2);
    expect_read(f.r, "llo", 3);
    for (int i = 0; i < 5; i++)
        assert_rc(0, mempipe_poll_read(f.r, out, sizeof out, NULL));
    mempipe_close(f.r);
}

static void test_R5_close_bytes_then_eof_duplex(void **s)
{
    (void)s;
    R5_close_bytes_then_eof_duplex_simplex(DUPLEX);
}

static void test_R5_close_bytes_then_eof_simplex(void **s)
{
    (void)s;
    R5_close_bytes_then_eof_duplex_simplex(SIMPLEX);
}

/* ------------------------------------------------------------------ */
/* R6: empty and open is Pending                                       */
/* ------------------------------------------------------------------ */

static void R6_empty_open_is_pending(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    unsigned char out[4];
    fx_open(&f, k, 8);
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, NULL));
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &w));
    expect_calls(0, &c); /* stored, not called yet */
    assert_rc(1, mempipe_poll_write(f.w, "q", 1, NULL));
    expect_calls(1, &c);
    expect_read(f.r, "q", 1);
    /* Drained again: Pending again, and the new waker is stored again. */
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &w));
    expect_calls(1, &c);
    assert_rc(2, mempipe_poll_write(f.w, "rs", 2, NULL));
    expect_calls(2, &c);
    expect_read(f.r, "rs", 2);
    fx_close(&f);
    expect_calls(2, &c);
}
KIND_TESTS(R6_empty_open_is_pending)

/* The other direction being shut down does not end this one (duplex). */
static void test_R6_duplex_pending_despite_other_direction_shutdown(void **s)
{
    (void)s;
    mempipe *a, *b;
    unsigned char out[4];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(0, mempipe_shutdown(b)); /* closes b -> a only */
    assert_rc(0, mempipe_poll_read(a, out, sizeof out, NULL));
    assert_rc(-EAGAIN, mempipe_poll_read(b, out, sizeof out, NULL));
    mempipe_close(a);
    mempipe_close(b);
}

/* ------------------------------------------------------------------ */
/* R7: a read that moved bytes wakes the parked writer, once           */
/* ------------------------------------------------------------------ */

static void R7_read_wakes_parked_writer_once(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    unsigned char out[8];
    fx_open(&f, k, 4);
    assert_rc(4, mempipe_poll_write(f.w, "abcd", 4, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, "e", 1, &w));
    expect_calls(0, &c);
    assert_rc(1, mempipe_poll_read(f.r, out, 1, NULL));
    expect_calls(1, &c);
    /* More reads with the writer not parked again: no more calls. */
    assert_rc(1, mempipe_poll_read(f.r, out, 1, NULL));
    assert_rc(2, mempipe_poll_read(f.r, out, sizeof out, NULL));
    expect_calls(1, &c);
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, NULL));
    expect_calls(1, &c);
    fx_close(&f);
    expect_calls(1, &c);
}
KIND_TESTS(R7_read_wakes_parked_writer_once)

/* A read that moved nothing (Pending) wakes nobody. */
static void test_R7_pending_read_wakes_no_writer_duplex(void **s)
{
    (void)s;
    mempipe *a, *b;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    unsigned char out[4];
    assert_rc(0, mempipe_duplex(2, &a, &b));
    /* a parks its writer on a -> b; b's read of the empty b -> a ... */
    assert_rc(2, mempipe_poll_write(a, "ab", 2, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "c", 1, &w));
    /* ... reads of the other pipe are not this pipe's progress. */
    assert_rc(-EAGAIN, mempipe_poll_read(a, out, sizeof out, NULL));
    expect_calls(0, &c);
    expect_read(b, "ab", 2);
    expect_calls(1, &c);
    mempipe_close(a);
    mempipe_close(b);
}

/* ------------------------------------------------------------------ */
/* R8: len == 0 returns 0 in every state, stores and wakes nothing     */
/* ------------------------------------------------------------------ */

static void R8_zero_len_read_every_state(enum kind k)
{
    struct fx f;
    struct tu_counter rc = {0}, wc = {0};
    mempipe_waker rw = tu_counter_waker(&rc), ww = tu_counter_waker(&wc);
    unsigned char out[4];
    fx_open(&f, k, 3);

    /* Empty and open: 0, not -EAGAIN; the waker is not stored. */
    assert_rc(0, mempipe_poll_read(f.r, out, 0, &rw));
    assert_rc(0, mempipe_poll_read(f.r, NULL, 0, &rw));
    assert_rc(1, mempipe_poll_write(f.w, "a", 1, NULL));
    expect_calls(0, &rc);

    /* Full with a parked writer: 0, the writer is not woken, the bytes
     * stay. */
    assert_rc(2, mempipe_poll_write(f.w, "bc", 2, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, "d", 1, &ww));
    assert_rc(0, mempipe_poll_read(f.r, out, 0, &rw));
    assert_rc(0, mempipe_poll_read(f.r, NULL, 0, NULL));
    expect_calls(0, &wc);
    assert_int_equal(3, mempipe_readable(f.r));

    /* Shut down with bytes left: 0 and the bytes are still there. */
    assert_rc(0, mempipe_shutdown(f.w)); /* wakes the parked writer (R18) */
    expect_calls(1, &wc);
    assert_rc(0, mempipe_poll_read(f.r, out, 0, &rw));
    expect_read(f.r, "abc", 3);
    /* At EOF: 0 as well. */
    assert_rc(0, mempipe_poll_read(f.r, out, 0, &rw));
    assert_rc(0, mempipe_poll_read(f.r, out, sizeof out, NULL));
    fx_close(&f);
    expect_calls(0, &rc);
    expect_calls(1, &wc);
}
KIND_TESTS(R8_zero_len_read_every_state)

/* A zero-length read does not replace a waker stored earlier. */
static void R8_zero_len_read_keeps_stored_waker(enum kind k)
{
    struct fx f;
    struct tu_counter a = {0}, b = {0};
    mempipe_waker wa = tu_counter_waker(&a), wb = tu_counter_waker(&b);
    unsigned char out[4];
    fx_open(&f, k, 8);
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &wa));
    assert_rc(0, mempipe_poll_read(f.r, out, 0, &wb));
    assert_rc(1, mempipe_poll_write(f.w, "z", 1, NULL));
    expect_calls(1, &a);
    expect_calls(0, &b);
    fx_close(&f);
}
KIND_TESTS(R8_zero_len_read_keeps_stored_waker)

/* ------------------------------------------------------------------ */
/* R9: a vanished peer reads as EOF after its bytes                    */
/* ------------------------------------------------------------------ */

static void R9_peer_gone_reads_eof(enum kind k)
{
    struct fx f;
    unsigned char out[8];
    fx_open(&f, k, 16);
    assert_rc(4, mempipe_poll_write(f.w, "tail", 4, NULL));
    mempipe_close(f.w);
    assert_int_equal(4, mempipe_readable(f.r));
    expect_read(f.r, "tail", 4);
    for (int i = 0; i < 3; i++)
        assert_rc(0, mempipe_poll_read(f.r, out, sizeof out, NULL));
    assert_rc(0, mempipe_read(f.r, out, sizeof out));
    mempipe_close(f.r);
}

static void test_R9_peer_gone_reads_eof_duplex(void **s)
{
    (void)s;
    R9_peer_gone_reads_eof(DUPLEX);
}

static void test_R9_peer_gone_reads_eof_simplex(void **s)
{
    (void)s;
    R9_peer_gone_reads_eof(SIMPLEX);
}

/* Peer closed with nothing sent: EOF at once, never an error. */
static void test_R9_duplex_peer_gone_both_directions(void **s)
{
    (void)s;
    mempipe *a, *b;
    unsigned char out[8];
    assert_rc(0, mempipe_duplex(16, &a, &b));
    assert_rc(3, mempipe_poll_write(b, "b2a", 3, NULL));
    mempipe_close(b);
    /* a's reading is unaffected by b being gone ... */
    expect_read(a, "b2a", 3);
    assert_rc(0, mempipe_poll_read(a, out, sizeof out, NULL));
    /* ... only its writing fails (R19). */
    assert_rc(-EPIPE, mempipe_poll_write(a, "x", 1, NULL));
    assert_rc(0, mempipe_poll_read(a, out, sizeof out, NULL));
    mempipe_close(a);
}

/* A loopback has no peer; its own close-by-shutdown reads as EOF. */
static void test_R9_loopback_shutdown_reads_eof(void **s)
{
    (void)s;
    mempipe *e;
    unsigned char out[8];
    assert_rc(0, mempipe_loopback(16, &e));
    assert_rc(2, mempipe_poll_write(e, "lb", 2, NULL));
    assert_rc(0, mempipe_shutdown(e));
    expect_read(e, "lb", 2);
    assert_rc(0, mempipe_poll_read(e, out, sizeof out, NULL));
    assert_rc(0, mempipe_read(e, out, sizeof out));
    mempipe_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KIND_ENTRIES(R4_reads_min_of_buffered_and_len),
        KIND_ENTRIES(R4_reads_span_writes_in_order),
        KIND_ENTRIES(R4_random_pieces_none_lost_or_repeated),
        KIND_ENTRIES(R5_shutdown_bytes_then_eof_forever),
        KIND_ENTRIES(R5_eof_on_empty_stores_no_waker),
        cmocka_unit_test(test_R5_close_bytes_then_eof_duplex),
        cmocka_unit_test(test_R5_close_bytes_then_eof_simplex),
        KIND_ENTRIES(R6_empty_open_is_pending),
        cmocka_unit_test(
            test_R6_duplex_pending_despite_other_direction_shutdown),
        KIND_ENTRIES(R7_read_wakes_parked_writer_once),
        cmocka_unit_test(test_R7_pending_read_wakes_no_writer_duplex),
        KIND_ENTRIES(R8_zero_len_read_every_state),
        KIND_ENTRIES(R8_zero_len_read_keeps_stored_waker),
        cmocka_unit_test(test_R9_peer_gone_reads_eof_duplex),
        cmocka_unit_test(test_R9_peer_gone_reads_eof_simplex),
        cmocka_unit_test(test_R9_duplex_peer_gone_both_directions),
        cmocka_unit_test(test_R9_loopback_shutdown_reads_eof),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
