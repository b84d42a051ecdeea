/* SPDX-License-Identifier: MIT */
/*
 * SPEC.md R23-R26: waker slots (replace, at most once, empty after the
 * call), wakers that re-enter the library on either end (register again,
 * read, write, shut down, close their own end or the peer), every event
 * after a Pending result calling the stored waker, and a few threads
 * driving poll calls by wakers alone. The heavy concurrency stress lives in
 * stress_test.c, pingpong_test.c and race_test.c.
 */
#define TU_XPROC_KIND /* the bodies also run with fx.r in a child */
#include "kinds.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* R23: one slot per role; replace; at most once; empty after the call */
/* ------------------------------------------------------------------ */

static void R23_register_replaces_reader_waker(enum kind k)
{
    struct fx f;
    struct tu_counter a = {0}, b = {0};
    mempipe_waker wa = tu_counter_waker(&a), wb = tu_counter_waker(&b);
    unsigned char out[4];
    fx_open(&f, k, 8);
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &wa));
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &wb));
    assert_rc(1, mempipe_poll_write(f.w, "x", 1, NULL));
    expect_calls(0, &a);
    expect_calls(1, &b);
    assert_rc(1, mempipe_poll_write(f.w, "y", 1, NULL));
    expect_read(f.r, "xy", 2);
    assert_rc(0, mempipe_shutdown(f.w));
    fx_close(&f);
    expect_calls(0, &a);
    expect_calls(1, &b);
}
KIND_TESTS(R23_register_replaces_reader_waker)

static void R23_register_replaces_writer_waker(enum kind k)
{
    struct fx f;
    struct tu_counter a = {0}, b = {0};
    mempipe_waker wa = tu_counter_waker(&a), wb = tu_counter_waker(&b);
    unsigned char out[4];
    fx_open(&f, k, 2);
    assert_rc(2, mempipe_poll_write(f.w, "ab", 2, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, "c", 1, &wa));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, "c", 1, &wb));
    assert_rc(1, mempipe_poll_read(f.r, out, 1, NULL));
    expect_calls(0, &a);
    expect_calls(1, &b);
    assert_rc(1, mempipe_poll_read(f.r, out, 1, NULL));
    assert_rc(0, mempipe_shutdown(f.w));
    fx_close(&f);
    expect_calls(0, &a);
    expect_calls(1, &b);
}
KIND_TESTS(R23_register_replaces_writer_waker)

/* Called once; the slot is then empty, so later events call nothing until
 * the next Pending result stores a waker again. */
static void R23_called_once_then_slot_empty(enum kind k)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    unsigned char out[8];
    fx_open(&f, k, 8);
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &w));
    assert_rc(1, mempipe_poll_write(f.w, "1", 1, NULL));
    expect_calls(1, &c);
    assert_rc(1, mempipe_poll_write(f.w, "2", 1, NULL));
    assert_rc(0, mempipe_shutdown(f.w));
    expect_calls(1, &c);
    expect_read(f.r, "12", 2);
    fx_close(&f);
    expect_calls(1, &c);

    fx_open(&f, k, 8);
    for (int i = 1; i <= 5; i++) {
        assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &w));
        expect_calls(i, &c); /* not yet */
        assert_rc(1, mempipe_poll_write(f.w, "z", 1, NULL));
        expect_calls(i + 1, &c);
        expect_read(f.r, "z", 1);
    }
    fx_close(&f);
    expect_calls(6, &c);
}
KIND_TESTS(R23_called_once_then_slot_empty)

/* The waker struct is copied at the call: changing it later changes
 * nothing. */
static void R23_waker_is_copied(enum kind k)
{
    struct fx f;
    struct tu_counter a = {0}, b = {0};
    mempipe_waker w = tu_counter_waker(&a);
    unsigned char out[4];
    fx_open(&f, k, 8);
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &w));
    w.ctx = &b;
    w.wake = NULL;
    assert_rc(1, mempipe_poll_write(f.w, "c", 1, NULL));
    expect_calls(1, &a);
    expect_calls(0, &b);
    fx_close(&f);
}
KIND_TESTS(R23_waker_is_copied)

/* A replaced waker is not called by a close either. */
static void R23_replaced_waker_not_called_by_close(enum kind k)
{
    struct fx f;
    struct tu_counter a = {0}, b = {0};
    mempipe_waker wa = tu_counter_waker(&a), wb = tu_counter_waker(&b);
    unsigned char out[4];
    fx_open(&f, k, 8);
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &wa));
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &wb));
    if (k == LOOPBACK)
        assert_rc(0, mempipe_shutdown(f.w));
    else
        mempipe_close(f.w);
    expect_calls(0, &a);
    expect_calls(1, &b);
    assert_rc(0, mempipe_poll_read(f.r, out, sizeof out, NULL));
    mempipe_close(f.r);
    expect_calls(0, &a);
    expect_calls(1, &b);
}
KIND_TESTS(R23_replaced_waker_not_called_by_close)

/* ------------------------------------------------------------------ */
/* R24: wakers re-enter the library                                    */
/* ------------------------------------------------------------------ */

/* A reader waker that drains the end and registers itself again. */
struct drainer {
    mempipe *end;
    unsigned char buf[64];
    size_t got;
    int calls;
    int eof;
};

static void drainer_wake(void *ctx)
{
    struct drainer *d = ctx;
    mempipe_waker self = {drainer_wake, d};
    d->calls++;
    for (;;) {
        ssize_t n = mempipe_poll_read(d->end, d->buf + d->got,
                                      sizeof d->buf - d->got, &self);
        if (n > 0) {
            d->got += (size_t)n;
            continue;
        }
        if (n == 0)
            d->eof = 1;
        return; /* -EAGAIN: registered again */
    }
}

static void R24_waker_reads_and_registers_again(enum kind k)
{
    struct fx f;
    fx_open(&f, k, 16);
    struct drainer d = {.end = f.r};
    mempipe_waker self = {drainer_wake, &d};
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, d.buf, sizeof d.buf, &self));
    assert_rc(3, mempipe_poll_write(f.w, "abc", 3, NULL));
    assert_int_equal(1, d.calls);
    assert_int_equal(3, d.got);
    assert_int_equal(0, mempipe_readable(f.r));
    assert_rc(2, mempipe_poll_write(f.w, "de", 2, NULL));
    assert_int_equal(2, d.calls);
    assert_int_equal(5, d.got);
    assert_memory_equal(d.buf, "abcde", 5);
    assert_int_equal(0, d.eof);
    assert_rc(0, mempipe_shutdown(f.w));
    assert_int_equal(3, d.calls);
    assert_int_equal(1, d.eof);
    fx_close(&f);
    assert_int_equal(3, d.calls);
}
KIND_TESTS(R24_waker_reads_and_registers_again)

/* A writer waker that pushes the rest of a message whenever space frees. */
struct pusher {
    mempipe *end;
    const char *msg;
    size_t len, sent;
    int calls;
};

static void pusher_wake(void *ctx)
{
    struct pusher *p = ctx;
    mempipe_waker self = {pusher_wake, p};
    p->calls++;
    while (p->sent < p->len) {
        ssize_t n = mempipe_poll_write(p->end, p->msg + p->sent,
                                       p->len - p->sent, &self);
        if (n <= 0)
            return; /* -EAGAIN: registered again */
        p->sent += (size_t)n;
    }
}

static void R24_writer_waker_writes_more(enum kind k)
{
    struct fx f;
    unsigned char out[32];
    size_t got = 0;
    fx_open(&f, k, 4);
    struct pusher p = {f.w, "0123456789abcdefghij", 20, 0, 0};
    pusher_wake(&p); /* first push by hand: 4 fit, the rest waits */
    assert_int_equal(4, p.sent);
    int reads = 0, calls = p.calls = 0;
    while (got < 20) {
        /* While the message is unfinished the pusher is parked. */
        int parked = p.sent < p.len;
        ssize_t n =
            mempipe_poll_read(f.r, out + got, 1 + (size_t)(reads % 3), NULL);
        assert_true(n > 0);
        got += (size_t)n;
        reads++;
        /* A read that freed space ran the parked waker, which refilled. */
        calls += parked;
        assert_int_equal(calls, p.calls);
        assert_int_equal(p.sent - got, mempipe_readable(f.r));
        if (p.sent < p.len)
            assert_int_equal(4, mempipe_readable(f.r));
    }
    assert_true(calls >= 6);
    assert_memory_equal(out, "0123456789abcdefghij", 20);
    assert_int_equal(20, p.sent);
    fx_close(&f);
}
KIND_TESTS(R24_writer_waker_writes_more)

/* b's reader waker answers "ping" with "pong" on the other pipe, which in
 * turn wakes a's reader from inside the waker. */
struct ponger {
    mempipe *end;
    int calls;
    ssize_t rc_read, rc_write;
};

static void ponger_wake(void *ctx)
{
    struct ponger *p = ctx;
    unsigned char buf[8];
    p->calls++;
    p->rc_read = mempipe_poll_read(p->end, buf, sizeof buf, NULL);
    if (p->rc_read == 4 && memcmp(buf, "ping", 4) == 0)
        p->rc_write = mempipe_poll_write(p->end, "pong", 4, NULL);
}

static void test_R24_waker_reads_and_writes_other_end_duplex(void **s)
{
    (void)s;
    mempipe *a, *b;
    struct tu_counter ac = {0};
    mempipe_waker aw = tu_counter_waker(&ac);
    unsigned char out[8];
    assert_rc(0, mempipe_duplex(16, &a, &b));
    struct ponger p = {b, 0, 0, 0};
    mempipe_waker pw = {ponger_wake, &p};
    assert_rc(-EAGAIN, mempipe_poll_read(b, out, sizeof out, &pw));
    assert_rc(-EAGAIN, mempipe_poll_read(a, out, sizeof out, &aw));
    assert_rc(4, mempipe_poll_write(a, "ping", 4, NULL));
    assert_int_equal(1, p.calls);
    assert_rc(4, p.rc_read);
    assert_rc(4, p.rc_write);
    expect_calls(1, &ac); /* woken by the write made inside b's waker */
    expect_read(a, "pong", 4);
    mempipe_close(a);
    mempipe_close(b);
    assert_int_equal(1, p.calls);
}

/* A waker that shuts down its own end's writing side (the other pipe). */
struct shutter {
    mempipe *end;
    int calls;
    int rc;
};

static void shutter_wake(void *ctx)
{
    struct shutter *sh = ctx;
    sh->calls++;
    sh->rc = mempipe_shutdown(sh->end);
}

static void test_R24_waker_shuts_down_duplex(void **s)
{
    (void)s;
    mempipe *a, *b;
    struct tu_counter ac = {0};
    mempipe_waker aw = tu_counter_waker(&ac);
    unsigned char out[8];
    assert_rc(0, mempipe_duplex(16, &a, &b));
    struct shutter sh = {b, 0, 12345};
    mempipe_waker sw = {shutter_wake, &sh};
    assert_rc(-EAGAIN, mempipe_poll_read(b, out, sizeof out, &sw));
    assert_rc(-EAGAIN, mempipe_poll_read(a, out, sizeof out, &aw));
    assert_rc(2, mempipe_poll_write(a, "hi", 2, NULL));
    assert_int_equal(1, sh.calls);
    assert_rc(0, sh.rc);
    expect_calls(1, &ac);
    assert_rc(0, mempipe_poll_read(a, out, sizeof out, NULL)); /* EOF */
    expect_read(b, "hi", 2);
    assert_rc(-EPIPE, mempipe_poll_write(b, "x", 1, NULL));
    mempipe_close(a);
    mempipe_close(b);
}

/* A waker that closes the very end it was registered through. */
struct closer_waker {
    mempipe *end;
    int calls;
};

static void close_own_wake(void *ctx)
{
    struct closer_waker *cw = ctx;
    cw->calls++;
    mempipe_close(cw->end);
}

/* The reader's waker closes the reader, woken by the writer's write. */
static void R24_reader_waker_closes_own_end(enum kind k)
{
    struct fx f;
    unsigned char out[4];
    fx_open(&f, k, 16);
    struct closer_waker cw = {f.r, 0};
    mempipe_waker w = {close_own_wake, &cw};
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &w));
    assert_rc(3, mempipe_poll_write(f.w, "bye", 3, NULL));
    assert_int_equal(1, cw.calls);
    /* The reader is gone: the writer now gets -EPIPE (R19/R20). */
    assert_rc(-EPIPE, mempipe_poll_write(f.w, "x", 1, NULL));
    mempipe_close(f.w);
    assert_int_equal(1, cw.calls);
}

static void test_R24_reader_waker_closes_own_end_duplex(void **s)
{
    (void)s;
    R24_reader_waker_closes_own_end(DUPLEX);
}

static void test_R24_reader_waker_closes_own_end_simplex(void **s)
{
    (void)s;
    R24_reader_waker_closes_own_end(SIMPLEX);
}

/* The writer's waker closes the writer, woken by the reader's read. */
static void R24_writer_waker_closes_own_end(enum kind k)
{
    struct fx f;
    unsigned char out[4];
    fx_open(&f, k, 2);
    struct closer_waker cw = {f.w, 0};
    mempipe_waker w = {close_own_wake, &cw};
    assert_rc(2, mempipe_poll_write(f.w, "ab", 2, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, "c", 1, &w));
    assert_rc(1, mempipe_poll_read(f.r, out, 1, NULL));
    assert_int_equal(1, cw.calls);
    assert_int_equal('a', out[0]);
    expect_read(f.r, "b", 1);
    assert_rc(0, mempipe_poll_read(f.r, out, sizeof out, NULL));
    mempipe_close(f.r);
    assert_int_equal(1, cw.calls);
}

static void test_R24_writer_waker_closes_own_end_duplex(void **s)
{
    (void)s;
    R24_writer_waker_closes_own_end(DUPLEX);
}

static void test_R24_writer_waker_closes_own_end_simplex(void **s)
{
    (void)s;
    R24_writer_waker_closes_own_end(SIMPLEX);
}

/* The reader's waker closes the reader while the peer is closing: the
 * two closes nest and the last one frees (teardown checks the memory). */
static void R24_waker_closes_own_end_during_peer_close(enum kind k)
{
    struct fx f;
    unsigned char out[4];
    fx_open(&f, k, 16);
    struct closer_waker cw = {f.r, 0};
    mempipe_waker w = {close_own_wake, &cw};
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &w));
    mempipe_close(f.w);
    assert_int_equal(1, cw.calls);
    assert_int_equal(0, tu_live());
}

static void test_R24_waker_closes_own_end_during_peer_close_duplex(void **s)
{
    (void)s;
    R24_waker_closes_own_end_during_peer_close(DUPLEX);
}

static void test_R24_waker_closes_own_end_during_peer_close_simplex(void **s)
{
    (void)s;
    R24_waker_closes_own_end_during_peer_close(SIMPLEX);
}

/*
 * A waker that closes the peer. The peer must have no call in progress
 * (R22), so the wake comes from this end's own shutdown, which wakes the
 * writer parked on the same pipe (R18).
 */
struct peer_closer {
    mempipe *peer;
    int calls;
};

static void close_peer_wake(void *ctx)
{
    struct peer_closer *pc = ctx;
    pc->calls++;
    mempipe_close(pc->peer);
}

static void R24_waker_closes_peer(enum kind k)
{
    struct fx f;
    unsigned char out[4];
    fx_open(&f, k, 2);
    struct peer_closer pc = {f.r, 0};
    mempipe_waker w = {close_peer_wake, &pc};
    assert_rc(2, mempipe_poll_write(f.w, "ab", 2, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(f.w, "c", 1, &w));
    assert_rc(0, mempipe_shutdown(f.w));
    assert_int_equal(1, pc.calls);
    assert_rc(-EPIPE, mempipe_poll_write(f.w, "c", 1, NULL));
    if (k == DUPLEX) /* the peer's close also ended f.w's reading side */
        assert_rc(0, mempipe_poll_read(f.w, out, sizeof out, NULL));
    mempipe_close(f.w);
    assert_int_equal(1, pc.calls);
    assert_int_equal(0, tu_live());
}

static void test_R24_waker_closes_peer_duplex(void **s)
{
    (void)s;
    R24_waker_closes_peer(DUPLEX);
}

static void test_R24_waker_closes_peer_simplex(void **s)
{
    (void)s;
    R24_waker_closes_peer(SIMPLEX);
}

/* The waker runs on the thread that made progress. */
struct thread_probe {
    pthread_t seen;
    atomic_int calls;
};

static void probe_wake(void *ctx)
{
    struct thread_probe *tp = ctx;
    tp->seen = pthread_self();
    atomic_fetch_add(&tp->calls, 1);
}

struct write_job {
    mempipe *end;
    ssize_t rc;
};

static void *write_job_main(void *arg)
{
    struct write_job *j = arg;
    j->rc = mempipe_poll_write(j->end, "t", 1, NULL);
    return NULL;
}

static void R24_waker_runs_on_progress_thread(enum kind k)
{
    struct fx f;
    struct thread_probe tp = {.calls = 0};
    mempipe_waker w = {probe_wake, &tp};
    unsigned char out[4];
    pthread_t t;
    fx_open(&f, k, 8);
    assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &w));
    struct write_job j = {f.w, 12345};
    assert_int_equal(0, pthread_create(&t, NULL, write_job_main, &j));
    assert_int_equal(0, pthread_join(t, NULL));
    assert_rc(1, j.rc);
    assert_int_equal(1, atomic_load(&tp.calls));
    assert_true(pthread_equal(t, tp.seen));
    expect_read(f.r, "t", 1);
    fx_close(&f);
}
KIND_TESTS(R24_waker_runs_on_progress_thread)

/* ------------------------------------------------------------------ */
/* R25: every event after Pending calls the stored waker               */
/* ------------------------------------------------------------------ */

enum event { EV_DATA, EV_SPACE, EV_SHUTDOWN, EV_CLOSE };

/*
 * role 'r': the reader is Pending on an empty pipe; 'w': the writer is
 * Pending on a full one. Then one event; the waker must run exactly once,
 * and the retried call must now succeed (or report the end state).
 */
static void pending_then_event(enum kind k, char role, enum event ev)
{
    struct fx f;
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    unsigned char out[8];
    fx_open(&f, k, 4);
    if (role == 'r') {
        assert_rc(-EAGAIN, mempipe_poll_read(f.r, out, sizeof out, &w));
    } else {
        assert_rc(4, mempipe_poll_write(f.w, "full", 4, NULL));
        assert_rc(-EAGAIN, mempipe_poll_write(f.w, "!", 1, &w));
    }
    expect_calls(0, &c);
    switch (ev) {
    case EV_DATA:
        assert_rc(2, mempipe_poll_write(f.w, "ok", 2, NULL));
        break;
    case EV_SPACE:
        assert_rc(1, mempipe_poll_read(f.r, out, 1, NULL));
        break;
    case EV_SHUTDOWN:
        assert_rc(0, mempipe_shutdown(f.w));
        break;
    case EV_CLOSE:
        if (role == 'r') {
            mempipe_close(f.w);
            f.w = NULL;
        } else {
            mempipe_close(f.r);
            f.r = NULL;
        }
        break;
    }
    expect_calls(1, &c);
    /* The retry sees the event. */
    if (role == 'r') {
        ssize_t n = mempipe_poll_read(f.r, out, sizeof out, &w);
        assert_rc(ev == EV_DATA ? 2 : 0, n);
    } else {
        ssize_t n = mempipe_poll_write(f.w, "!", 1, &w);
        assert_rc(ev == EV_SPACE ? 1 : -EPIPE, n);
    }
    if (f.r != NULL && f.r != f.w)
        mempipe_close(f.r);
    if (f.w != NULL)
        mempipe_close(f.w);
    expect_calls(1, &c);
}

static void R25_pending_reader_woken_by_data(enum kind k)
{
    pending_then_event(k, 'r', EV_DATA);
}
KIND_TESTS(R25_pending_reader_woken_by_data)

static void R25_pending_reader_woken_by_shutdown(enum kind k)
{
    pending_then_event(k, 'r', EV_SHUTDOWN);
}
KIND_TESTS(R25_pending_reader_woken_by_shutdown)

static void R25_pending_writer_woken_by_space(enum kind k)
{
    pending_then_event(k, 'w', EV_SPACE);
}
KIND_TESTS(R25_pending_writer_woken_by_space)

static void R25_pending_writer_woken_by_shutdown(enum kind k)
{
    pending_then_event(k, 'w', EV_SHUTDOWN);
}
KIND_TESTS(R25_pending_writer_woken_by_shutdown)

static void test_R25_pending_reader_woken_by_close_duplex(void **s)
{
    (void)s;
    pending_then_event(DUPLEX, 'r', EV_CLOSE);
}

static void test_R25_pending_reader_woken_by_close_simplex(void **s)
{
    (void)s;
    pending_then_event(SIMPLEX, 'r', EV_CLOSE);
}

static void test_R25_pending_writer_woken_by_close_duplex(void **s)
{
    (void)s;
    pending_then_event(DUPLEX, 'w', EV_CLOSE);
}

static void test_R25_pending_writer_woken_by_close_simplex(void **s)
{
    (void)s;
    pending_then_event(SIMPLEX, 'w', EV_CLOSE);
}

/* ------------------------------------------------------------------ */
/* R25/R26 with threads: poll calls driven only by wakers              */
/* ------------------------------------------------------------------ */

/* A one-shot flag a waker raises and a thread waits for. */
struct flag {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int set;
};

static void flag_init(struct flag *f)
{
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->set = 0;
}

static void flag_destroy(struct flag *f)
{
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
}

static void flag_wake(void *ctx)
{
    struct flag *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->set = 1;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/*
 * Waits for the flag and clears it. A lost wakeup would wait forever; the
 * 20 s limit turns that into a reported failure instead of a hang. It
 * bounds a wait for a wake that is due at once, not a speed.
 */
static int flag_wait(struct flag *f)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    int rc = 0;
    pthread_mutex_lock(&f->mu);
    while (!f->set && rc == 0)
        rc = pthread_cond_timedwait(&f->cv, &f->mu, &dl);
    int ok = f->set;
    f->set = 0;
    pthread_mutex_unlock(&f->mu);
    return ok ? 0 : -1;
}

/* One role of one end, driven by poll calls and its own waker. */
struct worker {
    mempipe *end;
    int writes;      /* 1: write the stream, then shut down; 0: read it */
    uint64_t total;  /* bytes of the stream */
    uint64_t seed;   /* pattern seed */
    uint64_t done;   /* bytes moved */
    long pendings;   /* Pending results met */
    const char *err; /* first failure, checked by the main thread */
    int eof;
    struct flag fl;
};

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    mempipe_waker w = {flag_wake, &wk->fl};
    unsigned char buf[97];
    uint64_t rng = wk->seed;
    for (;;) {
        size_t len = 1 + (size_t)(tu_rand(&rng) % sizeof buf);
        ssize_t n;
        if (wk->writes) {
            if (wk->done == wk->total) {
                if (mempipe_shutdown(wk->end) != 0)
                    wk->err = "shutdown failed";
                return NULL;
            }
            if (len > wk->total - wk->done)
                len = (size_t)(wk->total - wk->done);
            tu_pattern(buf, len, wk->done, wk->seed);
            n = mempipe_poll_write(wk->end, buf, len, &w);
        } else {
            n = mempipe_poll_read(wk->end, buf, len, &w);
            if (n == 0) {
                wk->eof = 1;
                return NULL;
            }
            if (n > 0 &&
                tu_check_pattern(buf, (size_t)n, wk->done, wk->seed) != -1) {
                wk->err = "bytes out of order";
                return NULL;
            }
        }
        if (n == -EAGAIN) {
            wk->pendings++;
            if (flag_wait(&wk->fl) != 0) {
                wk->err = "lost wakeup: waker not called for 20 s";
                return NULL;
            }
            continue;
        }
        if (n < 0) {
            wk->err = "unexpected error";
            return NULL;
        }
        wk->done += (uint64_t)n;
    }
}

static void run_workers(struct worker *wk, int n)
{
    pthread_t t[4];
    for (int i = 0; i < n; i++) {
        flag_init(&wk[i].fl);
        assert_int_equal(0, pthread_create(&t[i], NULL, worker_main, &wk[i]));
    }
    for (int i = 0; i < n; i++)
        assert_int_equal(0, pthread_join(t[i], NULL));
    for (int i = 0; i < n; i++) {
        if (wk[i].err != NULL)
            fail_msg("worker %d: %s", i, wk[i].err);
        assert_int_equal(wk[i].total, wk[i].done);
        if (!wk[i].writes)
            assert_int_equal(1, wk[i].eof);
    }
}

static void destroy_workers(struct worker *wk, int n)
{
    for (int i = 0; i < n; i++)
        flag_destroy(&wk[i].fl);
}

enum { STREAM = 256 * 1024 };

/* A writer thread and a reader thread on a small simplex. */
static void test_R25_two_threads_no_lost_wakeup_simplex(void **s)
{
    (void)s;
    mempipe *r, *w;
    assert_rc(0, mempipe_simplex(61, &r, &w));
    struct worker wk[2] = {
        {.end = w, .writes = 1, .total = STREAM, .seed = 5},
        {.end = r, .writes = 0, .total = STREAM, .seed = 5},
    };
    run_workers(wk, 2);
    print_message("  pending: writer %ld, reader %ld\n", wk[0].pendings,
                  wk[1].pendings);
    mempipe_close(w);
    mempipe_close(r);
    destroy_workers(wk, 2);
}

/* A loopback: its reader and writer roles on two threads (R26). */
static void test_R25_two_threads_no_lost_wakeup_loopback(void **s)
{
    (void)s;
    mempipe *e;
    assert_rc(0, mempipe_loopback(61, &e));
    struct worker wk[2] = {
        {.end = e, .writes = 1, .total = STREAM, .seed = 6},
        {.end = e, .writes = 0, .total = STREAM, .seed = 6},
    };
    run_workers(wk, 2);
    mempipe_close(e);
    destroy_workers(wk, 2);
}

/*
 * R26: each duplex end has its reader on one thread and its writer on
 * another; four threads in all, both directions at once.
 */
static void test_R26_duplex_reader_and_writer_threads_per_end(void **s)
{
    (void)s;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(53, &a, &b));
    struct worker wk[4] = {
        {.end = a, .writes = 1, .total = STREAM, .seed = 7},
        {.end = b, .writes = 0, .total = STREAM, .seed = 7},
        {.end = b, .writes = 1, .total = STREAM, .seed = 8},
        {.end = a, .writes = 0, .total = STREAM, .seed = 8},
    };
    run_workers(wk, 4);
    mempipe_close(a);
    mempipe_close(b);
    destroy_workers(wk, 4);
}

#define ALLOC_TEST(t)                                                          \
    cmocka_unit_test_setup_teardown(t, tu_alloc_setup, tu_alloc_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        KIND_ENTRIES(R23_register_replaces_reader_waker),
        KIND_ENTRIES(R23_register_replaces_writer_waker),
        KIND_ENTRIES(R23_called_once_then_slot_empty),
        KIND_ENTRIES(R23_waker_is_copied),
        KIND_ENTRIES(R23_replaced_waker_not_called_by_close),
        KIND_ENTRIES(R24_waker_reads_and_registers_again),
        KIND_ENTRIES(R24_writer_waker_writes_more),
        cmocka_unit_test(test_R24_waker_reads_and_writes_other_end_duplex),
        cmocka_unit_test(test_R24_waker_shuts_down_duplex),
        ALLOC_TEST(test_R24_reader_waker_closes_own_end_duplex),
        ALLOC_TEST(test_R24_reader_waker_closes_own_end_simplex),
        ALLOC_TEST(test_R24_writer_waker_closes_own_end_duplex),
        ALLOC_TEST(test_R24_writer_waker_closes_own_end_simplex),
        ALLOC_TEST(test_R24_waker_closes_own_end_during_peer_close_duplex),
        ALLOC_TEST(test_R24_waker_closes_own_end_during_peer_close_simplex),
        ALLOC_TEST(test_R24_waker_closes_peer_duplex),
        ALLOC_TEST(test_R24_waker_closes_peer_simplex),
        KIND_ENTRIES(R24_waker_runs_on_progress_thread),
        KIND_ENTRIES(R25_pending_reader_woken_by_data),
        KIND_ENTRIES(R25_pending_reader_woken_by_shutdown),
        KIND_ENTRIES(R25_pending_writer_woken_by_space),
        KIND_ENTRIES(R25_pending_writer_woken_by_shutdown),
        cmocka_unit_test(test_R25_pending_reader_woken_by_close_duplex),
        cmocka_unit_test(test_R25_pending_reader_woken_by_close_simplex),
        cmocka_unit_test(test_R25_pending_writer_woken_by_close_duplex),
        cmocka_unit_test(test_R25_pending_writer_woken_by_close_simplex),
        cmocka_unit_test(test_R25_two_threads_no_lost_wakeup_simplex),
        cmocka_unit_test(test_R25_two_threads_no_lost_wakeup_loopback),
        cmocka_unit_test(test_R26_duplex_reader_and_writer_threads_per_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
