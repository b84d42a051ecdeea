/* SPDX-License-Identifier: MIT */
/*
 * The socket calls added by issue 12 (SPEC R51-R58): timeouts, vectored
 * reads and blocking writev, read-exactly, wakers after short writes,
 * readiness polls, read-side shutdown, drain and unread. White-box where a
 * rule is about what stays stored: the tests look at the waker slots.
 */
#include "testutil.h"

#include "end.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double ms_since(double t0)
{
    return (tu_now() - t0) * 1000.0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool rd_stored(const mempipe *e)
{
    return mempipe__slot_full(&mempipe__end_rx(e)->rd);
}

static bool wr_stored(const mempipe *e)
{
    return mempipe__slot_full(&mempipe__end_tx(e)->wr);
}

/* A thread that does one thing on an end after a delay. */
enum act { ACT_WRITE, ACT_READ_ALL, ACT_SHUTDOWN, ACT_CLOSE, ACT_SHUT_READ };
struct later {
    mempipe *end;
    enum act act;
    int delay_ms;
    size_t len;
    pthread_t t;
};

static void *later_main(void *arg)
{
    struct later *l = arg;
    sleep_ms(l->delay_ms);
    unsigned char buf[256];
    switch (l->act) {
    case ACT_WRITE:
        memset(buf, 'x', sizeof buf);
        T_RC((ssize_t)l->len, mempipe_write(l->end, buf, l->len));
        break;
    case ACT_READ_ALL:
        for (size_t got = 0; got < l->len;) {
            ssize_t n = mempipe_read(l->end, buf, sizeof buf);
            T_CHECK(n > 0, "read %zd", n);
            got += (size_t)n;
        }
        break;
    case ACT_SHUTDOWN:
        T_RC(0, mempipe_shutdown(l->end));
        break;
    case ACT_CLOSE:
        mempipe_close(l->end);
        break;
    case ACT_SHUT_READ:
        T_RC(0, mempipe_shutdown_read(l->end));
        break;
    }
    return NULL;
}

static void later_start(struct later *l, mempipe *end, enum act act,
                        int delay_ms, size_t len)
{
    l->end = end;
    l->act = act;
    l->delay_ms = delay_ms;
    l->len = len;
    assert_int_equal(0, pthread_create(&l->t, NULL, later_main, l));
}

static void later_join(struct later *l)
{
    pthread_join(l->t, NULL);
}

/* ---- R51: timeouts ------------------------------------------------------ */

static void test_R51_read_timeout_zero_tries_once(void **s)
{
    (void)s;
    mempipe *a, *b;
    char c;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(-ETIMEDOUT, mempipe_read_timeout(a, &c, 1, 0));
    assert_false(rd_stored(a));                      /* nothing left behind */
    assert_rc(0, mempipe_read_timeout(a, &c, 0, 0)); /* R8 first */
    assert_rc(2, mempipe_poll_write(b, "hi", 2, NULL));
    assert_rc(1, mempipe_read_timeout(a, &c, 1, 0));
    assert_int_equal('h', c);
    assert_rc(0, mempipe_shutdown(b));
    assert_rc(1, mempipe_read_timeout(a, &c, 1, 0));
    assert_rc(0, mempipe_read_timeout(a, &c, 1, 0)); /* EOF, not a timeout */
    mempipe_close(a);
    mempipe_close(b);
}

static void test_R51_read_timeout_waits_then_times_out(void **s)
{
    (void)s;
    mempipe *a, *b;
    char c;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    double t0 = tu_now();
    assert_rc(-ETIMEDOUT, mempipe_read_timeout(a, &c, 1, 60));
    double took = ms_since(t0);
    assert_true(took >= 59.0);
    assert_true(took < 5000.0);
    /* The parking waker is withdrawn: the peer's write wakes nobody. */
    assert_false(rd_stored(a));
    assert_rc(1, mempipe_poll_write(b, "z", 1, NULL));
    assert_rc(1, mempipe_read_timeout(a, &c, 1, 60)); /* not lost */
    mempipe_close(a);
    mempipe_close(b);
}

static void test_R51_read_timeout_returns_bytes_that_come_in_time(void **s)
{
    (void)s;
    mempipe *a, *b;
    char buf[16];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    struct later l;
    later_start(&l, b, ACT_WRITE, 20, 3);
    double t0 = tu_now();
    assert_rc(3, mempipe_read_timeout(a, buf, sizeof buf, 10000));
    assert_true(ms_since(t0) < 5000.0);
    later_join(&l);
    /* A negative timeout is no limit: the peer's shutdown ends it. */
    later_start(&l, b, ACT_SHUTDOWN, 20, 0);
    assert_rc(0, mempipe_read_timeout(a, buf, sizeof buf, -1));
    later_join(&l);
    mempipe_close(a);
    mempipe_close(b);
}

static void test_R51_write_timeout_partial_and_none(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    double t0 = tu_now();
    /* The partial count when the time runs out part-way. */
    assert_rc(4, mempipe_write_timeout(a, "abcdefgh", 8, 30));
    assert_true(ms_since(t0) >= 29.0);
    assert_false(wr_stored(a));
    /* Nothing at all: -ETIMEDOUT, for 0 too. */
    assert_rc(-ETIMEDOUT, mempipe_write_timeout(a, "e", 1, 20));
    assert_rc(-ETIMEDOUT, mempipe_write_timeout(a, "e", 1, 0));
    assert_false(wr_stored(a));
    assert_rc(4, mempipe_readable(b));
    /* In time: a reader drains, every byte goes. */
    struct later l;
    later_start(&l, b, ACT_READ_ALL, 10, 4 + 200);
    unsigned char big[200];
    memset(big, 'y', sizeof big);
    assert_rc(200, mempipe_write_timeout(a, big, sizeof big, 10000));
    later_join(&l);
    /* Errors as mempipe_write(). */
    assert_rc(0, mempipe_shutdown(a));
    assert_rc(-EPIPE, mempipe_write_timeout(a, "x", 1, 10));
    assert_rc(-EINVAL, mempipe_write_timeout(NULL, "x", 1, 10));
    assert_rc(-EINVAL, mempipe_write_timeout(a, NULL, 1, 10));
    assert_rc(-EINVAL, mempipe_read_timeout(NULL, big, 1, 10));
    assert_rc(-EINVAL, mempipe_read_timeout(b, NULL, 1, 10));
    mempipe_close(a);
    mempipe_close(b);
    mempipe *r, *w;
    assert_rc(0, mempipe_simplex(4, &r, &w));
    assert_rc(-EBADF, mempipe_read_timeout(w, big, 1, 10));
    assert_rc(-EBADF, mempipe_write_timeout(r, "x", 1, 10));
    mempipe_close(r);
    mempipe_close(w);
}

static void on_signal(int sig)
{
    (void)sig;
}

struct pester {
    pthread_t target;
    atomic_int stop;
    int sent;
};

static void *pester_main(void *arg)
{
    struct pester *p = arg;
    while (!atomic_load(&p->stop)) {
        pthread_kill(p->target, SIGUSR1);
        p->sent++;
        sleep_ms(3);
    }
    return NULL;
}

/* R35 with R51: signals neither cut the timeout short nor stretch it. */
static void test_R51_signals_neither_cut_nor_stretch_the_timeout(void **s)
{
    (void)s;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART */
    sigaction(SIGUSR1, &sa, &old);
    mempipe *a, *b;
    char c;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    struct pester p = {pthread_self(), 0, 0};
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, pester_main, &p));
    double t0 = tu_now();
    assert_rc(-ETIMEDOUT, mempipe_read_timeout(a, &c, 1, 100));
    double took = ms_since(t0);
    atomic_store(&p.stop, 1);
    pthread_join(t, NULL);
    assert_true(p.sent > 5);
    assert_true(took >= 99.0);
    assert_true(took < 3000.0);
    sigaction(SIGUSR1, &old, NULL);
    mempipe_close(a);
    mempipe_close(b);
}

/*
 * The wake and the timeout race: a writer writes at about the deadline.
 * Whatever the outcome, no byte is lost: either the timed read returns it,
 * or it timed out and the byte is there for the next read.
 */
struct racer {
    mempipe *end;
    atomic_int go, done;
    int iters;
    uint64_t rng;
};

static void *race_writer(void *arg)
{
    struct racer *r = arg;
    for (int i = 0; i < r->iters; i++) {
        while (atomic_load(&r->go) <= i)
            sched_yield();
        struct timespec ts = {0, (long)(tu_rand(&r->rng) % 2000000)};
        nanosleep(&ts, NULL);
        unsigned char c = (unsigned char)i;
        T_RC(1, mempipe_write(r->end, &c, 1));
        while (atomic_load(&r->done) <= i)
            sched_yield();
    }
    return NULL;
}

static void test_R51_wake_racing_the_timeout_loses_nothing(void **s)
{
    (void)s;
    tu_watchdog_start("timeout races");
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    struct racer r = {b, 0, 0, 400, 42};
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, race_writer, &r));
    int timed_out = 0, in_time = 0;
    for (int i = 0; i < r.iters; i++) {
        atomic_store(&r.go, i + 1);
        unsigned char c = 0;
        ssize_t n = mempipe_read_timeout(a, &c, 1, 1);
        if (n == -ETIMEDOUT) {
            timed_out++;
            n = mempipe_read_timeout(a, &c, 1, 10000); /* it comes */
        } else {
            in_time++;
        }
        assert_rc(1, n);
        assert_int_equal((unsigned char)i, c);
        atomic_fetch_add(&tu_progress, 1);
        atomic_store(&r.done, i + 1);
    }
    pthread_join(t, NULL);
    printf("timeout races: %d in time, %d timed out first\n", in_time,
           timed_out);
    assert_true(timed_out > 0); /* both outcomes were exercised */
    assert_true(in_time > 0);
    mempipe_close(a);
    mempipe_close(b);
    tu_watchdog_end();
}

/* ---- R52: vectored ------------------------------------------------------ */

static void test_R52_poll_readv_scatters_in_order(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(10, mempipe_poll_write(b, "0123456789", 10, NULL));
    char x[3], y[1], z[8];
    struct iovec iov[4] = {{x, 3}, {NULL, 0}, {y, 1}, {z, 8}};
    assert_rc(10, mempipe_poll_readv(a, iov, 4, NULL));
    assert_memory_equal(x, "012", 3);
    assert_memory_equal(y, "3", 1);
    assert_memory_equal(z, "456789", 6);
    /* Empty: -EAGAIN, the waker stored and called by the next write. */
    struct tu_counter cnt = {0};
    mempipe_waker w = tu_counter_waker(&cnt);
    assert_rc(-EAGAIN, mempipe_poll_readv(a, iov, 4, &w));
    assert_rc(0, mempipe_poll_readv(a, iov, 0, &w)); /* R8 */
    assert_rc(0, mempipe_poll_readv(a, NULL, 0, NULL));
    assert_rc(1, mempipe_poll_write(b, "!", 1, NULL));
    assert_int_equal(1, tu_calls(&cnt));
    assert_rc(1, mempipe_poll_readv(a, iov, 4, NULL));
    /* Bad slices change nothing. */
    assert_rc(1, mempipe_poll_write(b, "?", 1, NULL));
    struct iovec bad = {NULL, 1};
    mempipe_waker nowake = {NULL, NULL};
    assert_rc(-EINVAL, mempipe_poll_readv(a, &bad, 1, NULL));
    assert_rc(-EINVAL, mempipe_poll_readv(a, NULL, 1, NULL));
    assert_rc(-EINVAL, mempipe_poll_readv(a, iov, -1, NULL));
    assert_rc(-EINVAL, mempipe_poll_readv(a, iov, IOV_MAX + 1, NULL));
    assert_rc(-EINVAL, mempipe_poll_readv(a, iov, 4, &nowake));
    assert_rc(-EINVAL, mempipe_poll_readv(NULL, iov, 4, NULL));
    struct iovec huge[2] = {{x, SIZE_MAX / 2 + 1}, {y, SIZE_MAX / 2 + 1}};
    assert_rc(-EINVAL, mempipe_poll_readv(a, huge, 2, NULL));
    assert_rc(1, mempipe_readable(a));
    assert_rc(0, mempipe_shutdown(b));
    assert_rc(1, mempipe_poll_readv(a, iov, 4, NULL));
    assert_rc(0, mempipe_poll_readv(a, iov, 4, NULL)); /* EOF */
    mempipe_close(a);
    mempipe_close(b);
    mempipe *r, *wr;
    assert_rc(0, mempipe_simplex(4, &r, &wr));
    assert_rc(-EBADF, mempipe_poll_readv(wr, iov, 4, NULL));
    assert_rc(-EBADF, mempipe_readv(wr, iov, 4));
    assert_rc(-EBADF, mempipe_writev(r, iov, 4));
    mempipe_close(r);
    mempipe_close(wr);
}

/* Bytes that span segments, read into slices of odd sizes. */
static void test_R52_readv_across_segments(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(1 << 20, &a, &b));
    enum { N = 300000 };
    unsigned char *src = malloc(N), *dst = malloc(N);
    assert_non_null(src);
    assert_non_null(dst);
    tu_pattern(src, N, 0, 7);
    for (size_t off = 0; off < N; off += 777) {
        size_t k = N - off < 777 ? N - off : 777;
        assert_rc(k, mempipe_poll_write(b, src + off, k, NULL));
    }
    size_t got = 0;
    while (got < N) {
        struct iovec iov[3] = {
            {dst + got, 1},
            {dst + got + 1, 1000},
            {dst + got + 1001, N - got - 1001 < 70000 ? N - got - 1001 : 70000},
        };
        ssize_t n = mempipe_poll_readv(a, iov, got + 1001 < N ? 3 : 1, NULL);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_memory_equal(src, dst, N);
    free(src);
    free(dst);
    mempipe_close(a);
    mempipe_close(b);
}

static void test_R52_blocking_readv_and_writev(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(7, &a, &b));
    struct later l;
    later_start(&l, b, ACT_WRITE, 20, 5);
    char x[2], y[10];
    struct iovec iov[2] = {{x, 2}, {y, 10}};
    assert_rc(5, mempipe_readv(a, iov, 2)); /* waits for the bytes */
    later_join(&l);
    /* writev: more than the capacity, slices of odd sizes, all in order. */
    unsigned char src[1000];
    tu_pattern(src, sizeof src, 0, 3);
    struct iovec wv[5] = {{src, 1},
                          {src + 1, 0},
                          {src + 1, 498},
                          {src + 499, 500},
                          {src + 999, 1}};
    later_start(&l, b, ACT_READ_ALL, 5, sizeof src);
    assert_rc(sizeof src, mempipe_writev(a, wv, 5));
    later_join(&l);
    assert_rc(0, mempipe_writev(a, NULL, 0)); /* R14 */
    assert_rc(0, mempipe_shutdown(a));
    assert_rc(-EPIPE, mempipe_writev(a, NULL, 0));
    assert_rc(-EPIPE, mempipe_writev(a, wv, 5));
    struct iovec bad = {NULL, 3};
    assert_rc(-EINVAL, mempipe_writev(a, &bad, 1));
    assert_rc(-EINVAL, mempipe_readv(a, &bad, 1));
    assert_rc(-EINVAL, mempipe_readv(NULL, iov, 2));
    assert_rc(-EINVAL, mempipe_writev(NULL, iov, 2));
    mempipe_close(a);
    mempipe_close(b);
}

/* ---- R53: read exactly -------------------------------------------------- */

static void test_R53_read_full_waits_for_every_byte(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(3, &a, &b)); /* many small rounds */
    unsigned char src[500], dst[500];
    tu_pattern(src, sizeof src, 0, 9);
    struct later l;
    later_start(&l, b, ACT_WRITE, 5, 200); /* 200 'x' */
    assert_rc(200, mempipe_read_full(a, dst, 200));
    for (int i = 0; i < 200; i++)
        assert_int_equal('x', dst[i]);
    later_join(&l);
    /* EOF part-way: the count, then 0. */
    assert_rc(3, mempipe_poll_write(b, src, 3, NULL));
    assert_rc(0, mempipe_shutdown(b));
    assert_rc(3, mempipe_read_full(a, dst, sizeof dst));
    assert_memory_equal(src, dst, 3);
    assert_rc(0, mempipe_read_full(a, dst, sizeof dst));
    assert_rc(0, mempipe_read_full(a, dst, 0));
    assert_rc(-EINVAL, mempipe_read_full(NULL, dst, 1));
    assert_rc(-EINVAL, mempipe_read_full(a, NULL, 1));
    mempipe_close(a);
    mempipe_close(b);
    /* An error part-way: the count, then the error; before any: it. */
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(2, mempipe_poll_write(b, "ok", 2, NULL));
    assert_rc(0, mempipe_close_with_error(b, -EIO));
    assert_rc(2, mempipe_read_full(a, dst, 5));
    assert_rc(-EIO, mempipe_read_full(a, dst, 5));
    mempipe_close(a);
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(2, mempipe_poll_write(b, "ok", 2, NULL));
    mempipe_abort(b);
    assert_rc(-ECONNRESET, mempipe_read_full(a, dst, 5));
    mempipe_close(a);
    mempipe *r, *w;
    assert_rc(0, mempipe_simplex(4, &r, &w));
    assert_rc(-EBADF, mempipe_read_full(w, dst, 1));
    mempipe_close(r);
    mempipe_close(w);
}

/* ---- R54: a short write leaves its waker ------------------------------- */

static void test_R54_short_write_stores_its_waker(void **s)
{
    (void)s;
    mempipe *a, *b;
    char buf[16];
    assert_rc(0, mempipe_duplex(4, &a, &b));
    struct tu_counter cnt = {0};
    mempipe_waker w = tu_counter_waker(&cnt);
    assert_rc(4, mempipe_poll_write(a, "abcdefghij", 10, &w));
    assert_true(wr_stored(a));
    assert_int_equal(0, tu_calls(&cnt));
    assert_rc(1, mempipe_poll_read(b, buf, 1, NULL)); /* the next free space */
    assert_int_equal(1, tu_calls(&cnt));
    assert_rc(1, mempipe_poll_read(b, buf, 1, NULL));
    assert_int_equal(1, tu_calls(&cnt)); /* once per store */
    /* A vectored write too. */
    struct iovec iov[2] = {{"12", 2}, {"34", 2}};
    assert_rc(2, mempipe_poll_writev(a, iov, 2, &w));
    assert_true(wr_stored(a));
    assert_rc(2, mempipe_poll_read(b, buf, 2, NULL));
    assert_int_equal(2, tu_calls(&cnt));
    /* Short, and the reader closes: woken too. */
    assert_rc(2, mempipe_poll_write(a, "xyz", 3, &w));
    mempipe_close(b);
    assert_int_equal(3, tu_calls(&cnt));
    mempipe_close(a);
}

static void test_R54_whole_write_and_null_waker_store_nothing(void **s)
{
    (void)s;
    mempipe *a, *b;
    char buf[16];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    struct tu_counter cnt = {0};
    mempipe_waker w = tu_counter_waker(&cnt);
    assert_rc(4, mempipe_poll_write(a, "abcd", 4, &w)); /* fits whole */
    assert_false(wr_stored(a));
    assert_rc(4, mempipe_poll_write(a, "efghij", 6, NULL)); /* short, NULL */
    assert_false(wr_stored(a));
    assert_rc(8, mempipe_poll_read(b, buf, 8, NULL));
    assert_int_equal(0, tu_calls(&cnt));
    /* An injected cap cuts a write short on a pipe with room: nothing. */
    mempipe_faults f = {0};
    f.max_write = 2;
    assert_rc(0, mempipe_set_faults(a, &f));
    assert_rc(2, mempipe_poll_write(a, "abcd", 4, &w));
    assert_false(wr_stored(a));
    mempipe_close(a);
    mempipe_close(b);
}

/*
 * The GnuTLS pattern: a writer that waits for its waker after every short
 * write and never retries until -EAGAIN. With R54 it never stalls.
 */
struct waits_after_short {
    mempipe *end;
    size_t total;
    struct tu_park park;
};

static void *short_writer(void *arg)
{
    struct waits_after_short *x = arg;
    unsigned char buf[300];
    uint64_t sent = 0;
    mempipe_waker w = {tu_park_wake, &x->park};
    while (sent < x->total) {
        size_t len =
            x->total - sent < sizeof buf ? x->total - sent : sizeof buf;
        tu_pattern(buf, len, sent, 5);
        unsigned seen = tu_park_prepare(&x->park);
        ssize_t n = mempipe_poll_write(x->end, buf, len, &w);
        if (n > 0)
            sent += (uint64_t)n;
        T_CHECK(n > 0 || n == -EAGAIN, "write: %zd", n);
        if (n == -EAGAIN || (size_t)n < len)
            tu_park_wait(&x->park, seen); /* short: wait, don't retry */
    }
    T_RC(0, mempipe_shutdown(x->end));
    return NULL;
}

static void test_R54_writer_waiting_after_short_writes_never_stalls(void **s)
{
    (void)s;
    static const size_t caps[] = {1, 7, 100, 4096};
    tu_watchdog_start("waits after short writes");
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        mempipe *a, *b;
        assert_rc(0, mempipe_duplex(caps[c], &a, &b));
        struct waits_after_short x = {a, 200000, {0}};
        tu_park_init(&x.park);
        pthread_t t;
        assert_int_equal(0, pthread_create(&t, NULL, short_writer, &x));
        unsigned char buf[512];
        uint64_t got = 0;
        for (;;) {
            ssize_t n = mempipe_read(b, buf, 1 + got % sizeof buf);
            assert_true(n >= 0);
            if (n == 0)
                break;
            assert_true(tu_check_pattern(buf, (size_t)n, got, 5) < 0);
            got += (uint64_t)n;
            atomic_fetch_add(&tu_progress, 1);
        }
        pthread_join(t, NULL);
        assert_int_equal(x.total, got);
        tu_park_destroy(&x.park);
        mempipe_close(a);
        mempipe_close(b);
    }
    tu_watchdog_end();
}

/* ---- R55: readiness without moving a byte -------------------------------- */

static void test_R55_poll_readable(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    struct tu_counter cnt = {0};
    mempipe_waker w = tu_counter_waker(&cnt);
    assert_rc(-EAGAIN, mempipe_poll_readable(a, NULL));
    assert_false(rd_stored(a)); /* NULL: nothing stored */
    assert_rc(-EAGAIN, mempipe_poll_readable(a, &w));
    assert_true(rd_stored(a));
    assert_rc(2, mempipe_poll_write(b, "hi", 2, NULL));
    assert_int_equal(1, tu_calls(&cnt));
    assert_rc(1, mempipe_poll_readable(a, &w));
    assert_false(rd_stored(a));        /* 1 stores nothing */
    assert_rc(2, mempipe_readable(a)); /* no byte taken */
    char buf[4];
    assert_rc(2, mempipe_poll_read(a, buf, 4, NULL));
    assert_rc(-EAGAIN, mempipe_poll_readable(a, &w));
    assert_rc(0, mempipe_shutdown(b)); /* EOF wakes and is ready */
    assert_int_equal(2, tu_calls(&cnt));
    assert_rc(1, mempipe_poll_readable(a, &w));
    mempipe_waker nowake = {NULL, NULL};
    assert_rc(-EINVAL, mempipe_poll_readable(a, &nowake));
    assert_rc(-EINVAL, mempipe_poll_readable(NULL, &w));
    mempipe_close(a);
    mempipe_close(b);
    /* A reset is ready at once (the read fails at once). */
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(1, mempipe_poll_write(b, "x", 1, NULL));
    mempipe_abort(b);
    assert_rc(1, mempipe_poll_readable(a, NULL));
    assert_rc(-ECONNRESET, mempipe_poll_read(a, buf, 1, NULL));
    mempipe_close(a);
    mempipe *r, *wr;
    assert_rc(0, mempipe_simplex(4, &r, &wr));
    assert_rc(-EBADF, mempipe_poll_readable(wr, NULL));
    assert_rc(-EBADF, mempipe_poll_writable(r, NULL));
    mempipe_close(r);
    mempipe_close(wr);
}

static void test_R55_poll_writable(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    struct tu_counter cnt = {0};
    mempipe_waker w = tu_counter_waker(&cnt);
    assert_rc(1, mempipe_poll_writable(a, &w));
    assert_false(wr_stored(a));
    assert_rc(4, mempipe_poll_write(a, "abcd", 4, NULL));
    assert_rc(-EAGAIN, mempipe_poll_writable(a, &w));
    assert_true(wr_stored(a));
    char c;
    assert_rc(1, mempipe_poll_read(b, &c, 1, NULL));
    assert_int_equal(1, tu_calls(&cnt));
    assert_rc(1, mempipe_poll_writable(a, NULL));
    assert_rc(1, mempipe_poll_write(a, "e", 1, NULL));
    assert_rc(-EAGAIN, mempipe_poll_writable(a, &w));
    mempipe_close(b); /* closed: a write fails at once, so ready */
    assert_int_equal(2, tu_calls(&cnt));
    assert_rc(1, mempipe_poll_writable(a, &w));
    assert_rc(-EPIPE, mempipe_poll_write(a, "f", 1, NULL));
    mempipe_waker nowake = {NULL, NULL};
    assert_rc(-EINVAL, mempipe_poll_writable(a, &nowake));
    assert_rc(-EINVAL, mempipe_poll_writable(NULL, NULL));
    mempipe_close(a);
}

/* The blocking forms: wait_readable / wait_writable. */
static void test_R55_wait_readable_and_writable(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    assert_rc(-ETIMEDOUT, mempipe_wait_readable(a, 0));
    double t0 = tu_now();
    assert_rc(-ETIMEDOUT, mempipe_wait_readable(a, 30));
    assert_true(ms_since(t0) >= 29.0);
    assert_false(rd_stored(a)); /* withdrawn */
    struct later l;
    later_start(&l, b, ACT_WRITE, 20, 2);
    assert_rc(1, mempipe_wait_readable(a, 10000));
    later_join(&l);
    assert_rc(2, mempipe_readable(a)); /* nothing taken */
    assert_rc(1, mempipe_wait_writable(b, 0));
    assert_rc(2, mempipe_poll_write(b, "zz", 2, NULL)); /* now full */
    assert_rc(-ETIMEDOUT, mempipe_wait_writable(b, 20));
    assert_false(wr_stored(b));
    later_start(&l, a, ACT_READ_ALL, 20, 4);
    assert_rc(1, mempipe_wait_writable(b, -1));
    later_join(&l);
    later_start(&l, b, ACT_SHUTDOWN, 20, 0);
    assert_rc(1, mempipe_wait_readable(a, -1)); /* EOF is ready */
    later_join(&l);
    assert_rc(-EINVAL, mempipe_wait_readable(NULL, 0));
    assert_rc(-EINVAL, mempipe_wait_writable(NULL, 0));
    mempipe_close(a);
    mempipe_close(b);
    mempipe *r, *w;
    assert_rc(0, mempipe_simplex(4, &r, &w));
    assert_rc(-EBADF, mempipe_wait_readable(w, 0));
    assert_rc(-EBADF, mempipe_wait_writable(r, 0));
    mempipe_close(r);
    mempipe_close(w);
}

/* ---- R56: read-side shutdown -------------------------------------------- */

static void test_R56_shutdown_read_discards_and_fails_the_writer(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    struct tu_counter cnt = {0};
    mempipe_waker w = tu_counter_waker(&cnt);
    assert_rc(4, mempipe_poll_write(b, "abcd", 4, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(b, "e", 1, &w)); /* parked */
    assert_rc(0, mempipe_shutdown_read(a));
    assert_int_equal(1, tu_calls(&cnt)); /* the parked writer is woken */
    assert_rc(0, mempipe_readable(a));
    assert_rc(-EPIPE, mempipe_poll_write(b, "e", 1, NULL));
    assert_rc(0, mempipe_writable(b));
    char buf[8];
    assert_rc(0, mempipe_poll_read(a, buf, sizeof buf, NULL)); /* EOF */
    assert_rc(0, mempipe_read(a, buf, sizeof buf));
    assert_rc(1, mempipe_poll_readable(a, NULL));
    assert_rc(0, mempipe_shutdown_read(a)); /* idempotent */
    /* The stats count the bytes read, not the ones discarded. */
    mempipe_stats st;
    assert_rc(0, mempipe_get_stats(a, &st));
    assert_int_equal(0, st.bytes_read);
    /* Its own writing direction stays open. */
    assert_rc(3, mempipe_poll_write(a, "xyz", 3, NULL));
    assert_rc(3, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(-EINVAL, mempipe_shutdown_read(NULL));
    mempipe_close(a);
    mempipe_close(b);
    mempipe *r, *wr;
    assert_rc(0, mempipe_simplex(4, &r, &wr));
    assert_rc(-EBADF, mempipe_shutdown_read(wr));
    assert_rc(0, mempipe_shutdown_read(r));
    assert_rc(-EPIPE, mempipe_poll_write(wr, "x", 1, NULL));
    mempipe_close(r);
    mempipe_close(wr);
    mempipe *lo;
    assert_rc(0, mempipe_loopback(4, &lo));
    assert_rc(0, mempipe_shutdown_read(lo));
    assert_rc(-EPIPE, mempipe_poll_write(lo, "x", 1, NULL));
    assert_rc(0, mempipe_poll_read(lo, buf, 1, NULL));
    mempipe_close(lo);
}

/* A reader blocked on another thread returns EOF; a blocked writer -EPIPE. */
static void test_R56_shutdown_read_interrupts_blocked_calls(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    struct later l;
    later_start(&l, a, ACT_SHUT_READ, 30, 0);
    char buf[8];
    assert_rc(0, mempipe_read(a, buf, sizeof buf));
    later_join(&l);
    mempipe_close(a);
    mempipe_close(b);
    assert_rc(0, mempipe_duplex(4, &a, &b));
    later_start(&l, a, ACT_SHUT_READ, 30, 0);
    assert_rc(4, mempipe_write(b, "abcdefgh", 8)); /* cut short by it */
    later_join(&l);
    assert_rc(-EPIPE, mempipe_write(b, "x", 1));
    mempipe_close(a);
    mempipe_close(b);
}

/* ---- R57: drain ---------------------------------------------------------- */

static void test_R57_drain_waits_for_the_peer_to_read(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(0, mempipe_drain(a, 0)); /* nothing written */
    assert_rc(10, mempipe_poll_write(a, "0123456789", 10, NULL));
    assert_rc(-ETIMEDOUT, mempipe_drain(a, 0));
    double t0 = tu_now();
    assert_rc(-ETIMEDOUT, mempipe_drain(a, 30));
    assert_true(ms_since(t0) >= 29.0);
    assert_false(wr_stored(a));
    struct later l;
    later_start(&l, b, ACT_READ_ALL, 20, 10);
    assert_rc(0, mempipe_drain(a, 10000));
    later_join(&l);
    /* After this end's own shutdown too. */
    assert_rc(2, mempipe_poll_write(a, "ab", 2, NULL));
    assert_rc(0, mempipe_shutdown(a));
    later_start(&l, b, ACT_READ_ALL, 10, 2);
    assert_rc(0, mempipe_drain(a, -1));
    later_join(&l);
    assert_rc(-EINVAL, mempipe_drain(NULL, 0));
    mempipe_close(a);
    mempipe_close(b);
    mempipe *r, *wr;
    assert_rc(0, mempipe_simplex(4, &r, &wr));
    assert_rc(-EBADF, mempipe_drain(r, 0));
    mempipe_close(r);
    mempipe_close(wr);
}

static void test_R57_drain_when_the_peer_goes(void **s)
{
    (void)s;
    mempipe *a, *b;
    char buf[16];
    /* Read them all, then closed: 0. */
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(3, mempipe_poll_write(a, "abc", 3, NULL));
    assert_rc(3, mempipe_poll_read(b, buf, sizeof buf, NULL));
    mempipe_close(b);
    assert_rc(0, mempipe_drain(a, 0));
    mempipe_close(a);
    /* Closed with bytes unread, while the drain waits: -EPIPE. */
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(3, mempipe_poll_write(a, "abc", 3, NULL));
    assert_rc(1, mempipe_poll_read(b, buf, 1, NULL));
    struct later l;
    later_start(&l, b, ACT_CLOSE, 20, 0);
    assert_rc(-EPIPE, mempipe_drain(a, 10000));
    later_join(&l);
    mempipe_close(a);
    /* Read-shut with bytes unread: -EPIPE, also before they are freed. */
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(3, mempipe_poll_write(a, "abc", 3, NULL));
    assert_rc(0, mempipe_shutdown_read(b));
    assert_rc(-EPIPE, mempipe_drain(a, 0));
    assert_rc(0, mempipe_poll_read(b, buf, 1, NULL)); /* discards */
    assert_rc(-EPIPE, mempipe_drain(a, 0));
    mempipe_close(a);
    mempipe_close(b);
    /* Read-shut after reading them all: 0. */
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(3, mempipe_poll_write(a, "abc", 3, NULL));
    assert_rc(3, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(0, mempipe_shutdown_read(b));
    assert_rc(0, mempipe_drain(a, 0));
    mempipe_close(a);
    mempipe_close(b);
    /* Closed with an error, or aborted: that error. */
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(3, mempipe_poll_write(a, "abc", 3, NULL));
    assert_rc(0, mempipe_close_with_error(b, -EPROTO));
    assert_rc(-EPROTO, mempipe_drain(a, 0));
    mempipe_close(a);
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(3, mempipe_poll_write(a, "abc", 3, NULL));
    mempipe_abort(b);
    assert_rc(-ECONNRESET, mempipe_drain(a, 0));
    mempipe_close(a);
}

/* ---- R58: unread --------------------------------------------------------- */

static void test_R58_unread_counts_what_the_peer_has_not_read(void **s)
{
    (void)s;
    mempipe *a, *b;
    char buf[16];
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_int_equal(0, mempipe_unread(a));
    assert_rc(10, mempipe_poll_write(a, "0123456789", 10, NULL));
    assert_int_equal(10, mempipe_unread(a));
    assert_int_equal(0, mempipe_unread(b));
    assert_rc(4, mempipe_poll_read(b, buf, 4, NULL));
    assert_int_equal(6, mempipe_unread(a));
    assert_rc(0, mempipe_shutdown_read(b));
    assert_int_equal(0, mempipe_unread(a)); /* never to be read */
    mempipe_close(b);
    assert_int_equal(0, mempipe_unread(a));
    mempipe_close(a);
    assert_int_equal(0, mempipe_unread(NULL));
    mempipe *r, *wr;
    assert_rc(0, mempipe_simplex(4, &r, &wr));
    assert_rc(2, mempipe_poll_write(wr, "ab", 2, NULL));
    assert_int_equal(0, mempipe_unread(r));
    assert_int_equal(2, mempipe_unread(wr));
    mempipe_close(r);
    mempipe_close(wr);
}

/* ---- R67: the shut state ---------------------------------------------- */

static void test_R67_shut_state_follows_every_close(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(0, mempipe_shut_state(a));
    assert_rc(2, mempipe_poll_write(b, "hi", 2, NULL));
    assert_rc(0, mempipe_shutdown(b)); /* a's read side, b's write side */
    assert_rc(MEMPIPE_SHUT_READ, mempipe_shut_state(a));
    assert_rc(MEMPIPE_SHUT_WRITE, mempipe_shut_state(b));
    assert_rc(2, mempipe_readable(a));      /* the bytes still there */
    assert_rc(0, mempipe_shutdown_read(b)); /* a's writes fail now */
    assert_rc(MEMPIPE_SHUT_READ | MEMPIPE_SHUT_WRITE, mempipe_shut_state(a));
    assert_rc(MEMPIPE_SHUT_READ | MEMPIPE_SHUT_WRITE, mempipe_shut_state(b));
    assert_rc(-EINVAL, mempipe_shut_state(NULL));
    mempipe_close(a);
    mempipe_close(b);
    assert_rc(0, mempipe_duplex(8, &a, &b));
    mempipe_abort(b);
    assert_rc(MEMPIPE_SHUT_READ | MEMPIPE_SHUT_WRITE, mempipe_shut_state(a));
    mempipe_close(a);
    mempipe *r, *w;
    assert_rc(0, mempipe_simplex(4, &r, &w));
    assert_rc(MEMPIPE_SHUT_WRITE, mempipe_shut_state(r));
    assert_rc(MEMPIPE_SHUT_READ, mempipe_shut_state(w));
    mempipe_close(r);
    assert_rc(MEMPIPE_SHUT_READ | MEMPIPE_SHUT_WRITE, mempipe_shut_state(w));
    mempipe_close(w);
    mempipe *l;
    assert_rc(0, mempipe_loopback(4, &l));
    assert_rc(0, mempipe_shutdown(l));
    assert_rc(MEMPIPE_SHUT_READ | MEMPIPE_SHUT_WRITE, mempipe_shut_state(l));
    mempipe_close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R51_read_timeout_zero_tries_once),
        cmocka_unit_test(test_R51_read_timeout_waits_then_times_out),
        cmocka_unit_test(test_R51_read_timeout_returns_bytes_that_come_in_time),
        cmocka_unit_test(test_R51_write_timeout_partial_and_none),
        cmocka_unit_test(test_R51_signals_neither_cut_nor_stretch_the_timeout),
        cmocka_unit_test(test_R51_wake_racing_the_timeout_loses_nothing),
        cmocka_unit_test(test_R52_poll_readv_scatters_in_order),
        cmocka_unit_test(test_R52_readv_across_segments),
        cmocka_unit_test(test_R52_blocking_readv_and_writev),
        cmocka_unit_test(test_R53_read_full_waits_for_every_byte),
        cmocka_unit_test(test_R54_short_write_stores_its_waker),
        cmocka_unit_test(test_R54_whole_write_and_null_waker_store_nothing),
        cmocka_unit_test(
            test_R54_writer_waiting_after_short_writes_never_stalls),
        cmocka_unit_test(test_R55_poll_readable),
        cmocka_unit_test(test_R55_poll_writable),
        cmocka_unit_test(test_R55_wait_readable_and_writable),
        cmocka_unit_test(test_R56_shutdown_read_discards_and_fails_the_writer),
        cmocka_unit_test(test_R56_shutdown_read_interrupts_blocked_calls),
        cmocka_unit_test(test_R57_drain_waits_for_the_peer_to_read),
        cmocka_unit_test(test_R57_drain_when_the_peer_goes),
        cmocka_unit_test(test_R58_unread_counts_what_the_peer_has_not_read),
        cmocka_unit_test(test_R67_shut_state_follows_every_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
