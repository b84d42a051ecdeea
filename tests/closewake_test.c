/* SPDX-License-Identifier: MIT */
/*
 * R32: every mempipe_close() from inside a waker is safe. The memory of a
 * pipe is freed only when no library call on it is in progress on any
 * thread; the free is deferred until the outermost call that ran the waker
 * returns. (Issue 15: after a waker's close, the call that ran it still
 * touched the pipe: the slot's in-flight count, the fd hook, the second wake
 * of a shutdown; if that close was the last one, or another thread's close
 * was only waiting for the in-flight count, that memory was already freed.)
 *
 * First the deterministic cases, one per call that can run a waker, where the
 * waker's close is the last close of the pipe: the peer's poll write, writev,
 * read, shutdown, blocking write and read; a loopback's own write, read and
 * shutdown; a simplex; pollable fds; nested wakes; then two threads (an
 * executor's end closed by its waker while it is parked, and a close on
 * another thread that only waited for the running waker).
 *
 * Then a randomized stress: pairs of threads drive duplexes of capacity 1, 7,
 * 4096 and 65536; their wakers close ends (their own, the peer, both) at a
 * random moment, from whatever call runs them, while the other side keeps
 * calling; plus loopbacks whose waker closes the end inside its own calls.
 * Every byte read is checked. It runs for MEMPIPE_CLOSEWAKE_SECONDS (a few
 * seconds by default; CI runs it for 30 s under ASan and TSan), and prints
 * its seed (MEMPIPE_SEED replays the session parameters; the thread timing
 * is not replayable).
 *
 * Every test runs under a counting allocator that fills each freed block
 * with 0xdd, so a use after free also crashes without ASan (a waker or an fd
 * pointer read from freed memory is 0xdddd...), and whose teardown checks
 * that the deferred frees did happen (nothing is left allocated).
 *
 * The closes respect the caller's half of the contract (R22, R26): an end is
 * closed by a waker only while no other thread is inside a call on it, which
 * is when the waker runs on that end's own thread (inside that thread's call)
 * or when that end's thread is parked (an executor, with a state word).
 */
#include "kinds.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* One thread: the waker's close is the last close, inside the call. */

/* A waker that closes up to two ends, in order (NULL ends are skipped). */
struct closer {
    mempipe *end[2];
    int calls;
};

static void closer_wake(void *ctx)
{
    struct closer *c = ctx;
    c->calls++;
    mempipe_close(c->end[0]);
    mempipe_close(c->end[1]);
}

enum role { READER, WRITER };

/*
 * A duplex of capacity 4 whose end a has the closer parked in `role`:
 * READER, a's pipe in is empty; WRITER, a's pipe out is full. The closer
 * closes a and b, a first when a_first.
 */
static void park_closer(struct closer *cl, mempipe_waker *w, mempipe **a,
                        mempipe **b, enum role role, int a_first)
{
    unsigned char c;
    assert_rc(0, mempipe_duplex(4, a, b));
    cl->end[0] = a_first ? *a : *b;
    cl->end[1] = a_first ? *b : *a;
    cl->calls = 0;
    *w = (mempipe_waker){closer_wake, cl};
    if (role == READER) {
        assert_rc(-EAGAIN, mempipe_poll_read(*a, &c, 1, w));
    } else {
        assert_rc(4, mempipe_poll_write(*a, "abcd", 4, NULL));
        assert_rc(-EAGAIN, mempipe_poll_write(*a, "e", 1, w));
    }
}

/* After the call that ran the closer: it ran once, and the pipe is freed. */
static void expect_freed(struct closer *cl)
{
    assert_int_equal(1, cl->calls);
    assert_int_equal(0, tu_live()); /* freed once the outermost call ended */
}

/* The call on b that runs a's waker, and what it must return. */
enum call { POLL_WRITE, POLL_WRITEV, POLL_READ, SHUTDOWN, WRITE, READ };

static void closes_both_inside(enum call call, ssize_t want, int with_fds)
{
    static const struct iovec iov[3] = {{"ab", 2}, {NULL, 0}, {"c", 1}};
    int reads = call == POLL_READ || call == READ;
    for (int a_first = 0; a_first < 2; a_first++) {
        struct closer cl;
        mempipe_waker w;
        mempipe *a, *b;
        unsigned char buf[4];
        /* A read on b wakes a's writer; a write or shutdown, a's reader. */
        park_closer(&cl, &w, &a, &b, reads ? WRITER : READER, a_first);
        for (int i = 0; i < 2 && with_fds; i++) {
            mempipe *e = i ? b : a; /* the fd hook reads the watch */
            assert_true(mempipe_readable_fd(e) >= 0);
            assert_true(mempipe_writable_fd(e) >= 0);
        }
        ssize_t n = -1;
        switch (call) {
        case POLL_WRITE:
            n = mempipe_poll_write(b, "x", 1, NULL);
            break;
        case POLL_WRITEV:
            n = mempipe_poll_writev(b, iov, 3, NULL);
            break;
        case POLL_READ:
            n = mempipe_poll_read(b, buf, 2, NULL);
            break;
        case SHUTDOWN: /* then a second wake, of b's writer */
            n = mempipe_shutdown(b);
            break;
        case WRITE: /* cap 4: goes on after the close, on a closed end */
            n = mempipe_write(b, "0123456789", 10);
            break;
        case READ:
            n = mempipe_read(b, buf, 3);
            break;
        }
        /* The call returns what it did before the close (R28 for the
         * blocking write: the bytes accepted). */
        assert_rc(want, n);
        if (reads)
            assert_memory_equal(buf, "abc", (size_t)n);
        expect_freed(&cl);
    }
}

/* b's write wakes a's reader, whose waker closes both ends: b's write must
 * not touch the pipe after its waker returns. */
static void test_R32_waker_closes_both_inside_the_peer_poll_write(void **s)
{
    (void)s;
    closes_both_inside(POLL_WRITE, 1, 0);
    closes_both_inside(POLL_WRITEV, 3, 0);
}

static void test_R32_waker_closes_both_inside_the_peer_poll_read(void **s)
{
    (void)s;
    closes_both_inside(POLL_READ, 2, 0);
}

/* shutdown wakes the reader, then the writer: the second wake came after the
 * first one's waker had freed the pipe. */
static void test_R32_waker_closes_both_inside_the_peer_shutdown(void **s)
{
    (void)s;
    closes_both_inside(SHUTDOWN, 0, 0);
}

/* Blocking calls: the waker runs inside the poll call inside the blocking
 * one, and a blocking write goes on after its first chunk. */
static void test_R32_waker_closes_both_inside_a_blocking_call(void **s)
{
    (void)s;
    closes_both_inside(WRITE, 4, 0);
    closes_both_inside(READ, 3, 0);
}

/* With pollable fds the fd hook runs after every wake and reads the watch. */
static void test_R32_waker_closes_both_with_pollable_fds(void **s)
{
    (void)s;
    closes_both_inside(POLL_WRITE, 1, 1);
    closes_both_inside(SHUTDOWN, 0, 1);
    closes_both_inside(POLL_READ, 2, 1);
}

/* A loopback's waker is run by the end's own calls (its only end). */
static void test_R32_loopback_waker_closes_its_end_inside_its_own_call(void **s)
{
    (void)s;
    unsigned char buf[4];
    for (int call = 0; call < 3; call++) {
        mempipe *e;
        assert_rc(0, mempipe_loopback(4, &e));
        struct closer cl = {{e, NULL}, 0};
        mempipe_waker w = {closer_wake, &cl};
        if (call < 2) {
            assert_rc(-EAGAIN, mempipe_poll_read(e, buf, 1, &w));
            if (call == 0)
                assert_rc(1, mempipe_poll_write(e, "x", 1, NULL));
            else
                assert_rc(0, mempipe_shutdown(e)); /* then a second wake */
        } else {
            assert_rc(4, mempipe_poll_write(e, "abcd", 4, NULL));
            assert_rc(-EAGAIN, mempipe_poll_write(e, "e", 1, &w));
            assert_rc(2, mempipe_poll_read(e, buf, 2, NULL));
        }
        expect_freed(&cl);
    }
}

/* A simplex reader's waker closes the reader and the writer inside the
 * writer's write or shutdown. */
static void test_R32_simplex_reader_waker_closes_both_ends(void **s)
{
    (void)s;
    unsigned char c;
    for (int call = 0; call < 4; call++) {
        mempipe *r, *wr;
        assert_rc(0, mempipe_simplex(4, &r, &wr));
        struct closer cl = {{call & 2 ? wr : r, call & 2 ? r : wr}, 0};
        mempipe_waker w = {closer_wake, &cl};
        assert_rc(-EAGAIN, mempipe_poll_read(r, &c, 1, &w));
        if (call & 1)
            assert_rc(0, mempipe_shutdown(wr));
        else
            assert_rc(1, mempipe_poll_write(wr, "x", 1, NULL));
        expect_freed(&cl);
    }
}

/*
 * Nested: a's reader waker drains a, registers again and writes a byte on b,
 * which wakes it again inside that write; at the bottom it closes both ends,
 * inside `depth` nested calls that each ran a waker.
 */
struct nest {
    mempipe *a, *b;
    mempipe_waker self;
    int left, closed;
};

static void nest_wake(void *ctx)
{
    struct nest *n = ctx;
    unsigned char buf[8];
    if (n->closed)
        return; /* both ends are closed: never touch them again */
    ssize_t r;
    while ((r = mempipe_poll_read(n->a, buf, sizeof buf, &n->self)) > 0)
        ;
    T_RC(-EAGAIN, r);
    if (n->left-- > 0) {
        T_RC(1, mempipe_poll_write(n->b, "y", 1, NULL)); /* re-wakes us */
        return;
    }
    n->closed = 1;
    mempipe_close(n->b);
    mempipe_close(n->a);
}

static void test_R32_nested_waker_closes_both_at_the_bottom(void **s)
{
    (void)s;
    const int depths[] = {1, 8, 40};
    for (int i = 0; i < 3; i++) {
        mempipe *a, *b;
        unsigned char c;
        assert_rc(0, mempipe_duplex(4096, &a, &b));
        struct nest n = {.a = a, .b = b, .left = depths[i] - 1};
        n.self = (mempipe_waker){nest_wake, &n};
        assert_rc(-EAGAIN, mempipe_poll_read(a, &c, 1, &n.self));
        assert_rc(1, mempipe_poll_write(b, "y", 1, NULL));
        assert_int_equal(1, n.closed);
        assert_int_equal(0, tu_live());
    }
}

/* ------------------------------------------------------------------------ */
/* Two threads. */

/* An executor's end: RUNNING while its thread may be inside a call on it,
 * PARKED while it waits outside every call, CLOSED once a waker closed it. */
enum { RUNNING, PARKED, CLOSED };

static const size_t caps[] = {1, 7, 4096, 65536};

/* Claims a parked end for a close: fails unless its thread is parked. */
static int claim_parked(atomic_int *state)
{
    int parked = PARKED;
    /* seq_cst: the end's thread set PARKED after its last call returned,
     * so that call happens before our close. */
    return atomic_compare_exchange_strong(state, &parked, CLOSED);
}

/*
 * Thread A parks on a with its waker; the waker runs on this thread inside
 * its call on b, claims a (A is parked), closes a on A's behalf and closes b,
 * the end whose call is running it: the last close, inside this thread's
 * call. A wakes, sees CLOSED and never touches a again.
 */
struct exec {
    mempipe *a, *b;
    enum role role; /* where a's waker waits */
    int a_first;
    atomic_int state;
    struct tu_park park;
    int closed; /* by the waker, for this thread */
};

static void exec_wake(void *ctx)
{
    struct exec *x = ctx;
    T_CHECK(claim_parked(&x->state), "a's thread is not parked (state %d)",
            atomic_load(&x->state));
    mempipe_close(x->a_first ? x->a : x->b);
    mempipe_close(x->a_first ? x->b : x->a);
    x->closed = 1;
    tu_park_wake(&x->park);
}

static void *exec_thread(void *arg)
{
    struct exec *x = arg;
    mempipe_waker w = {exec_wake, x};
    unsigned char c = 0;
    unsigned seen = tu_park_prepare(&x->park);
    if (x->role == READER) {
        T_RC(-EAGAIN, mempipe_poll_read(x->a, &c, 1, &w));
    } else {
        ssize_t n;
        while ((n = mempipe_poll_write(x->a, "z", 1, &w)) == 1)
            ; /* fill the pipe */
        T_RC(-EAGAIN, n);
    }
    atomic_store(&x->state, PARKED); /* outside every call on a */
    while (atomic_load(&x->state) != CLOSED) {
        tu_park_wait(&x->park, seen);
        seen = tu_park_prepare(&x->park);
    }
    return NULL; /* a is closed: not touched again */
}

static void test_R32_executor_waker_closes_parked_end_and_its_runner(void **s)
{
    (void)s;
    tu_watchdog_start("executor: waker closes the parked end and the peer");
    uint64_t rng = 32;
    unsigned char buf[64];
    memset(buf, 'q', sizeof buf);
    for (int it = 0; it < 400; it++) {
        struct exec x = {.role = (it & 1) ? WRITER : READER,
                         .a_first = (it >> 1) & 1};
        size_t cap = caps[(it >> 2) % 4];
        int blocking = (it >> 4) & 1;
        assert_rc(0, mempipe_duplex(cap, &x.a, &x.b));
        atomic_init(&x.state, RUNNING);
        tu_park_init(&x.park);
        pthread_t t;
        assert_int_equal(0, pthread_create(&t, NULL, exec_thread, &x));
        while (atomic_load(&x.state) != PARKED) /* handshake: A is parked */
            sched_yield();
        size_t len = 1 + tu_rand(&rng) % sizeof buf;
        ssize_t n;
        if (x.role == READER)
            n = blocking ? mempipe_write(x.b, buf, len)
                         : mempipe_poll_write(x.b, buf, len, NULL);
        else
            n = blocking ? mempipe_read(x.b, buf, len)
                         : mempipe_poll_read(x.b, buf, len, NULL);
        /* The close came after the first chunk moved: its count stands. */
        size_t want = len < cap ? len : cap;
        assert_rc(want, n);
        assert_int_equal(1, x.closed);
        pthread_join(t, NULL);
        assert_int_equal(0, tu_live());
        tu_park_destroy(&x.park);
        atomic_fetch_add(&tu_progress, 1);
    }
    tu_watchdog_end();
}

/*
 * A's close of a waits for a's waker, running on this thread, which closes b
 * (the end whose call runs it) and returns only once A is inside its close:
 * A's close is then the last one, and it used to free the pipe while this
 * thread's call was still finishing its wake.
 */
struct inflight {
    mempipe *a, *b;
    atomic_int ready, inside, closing;
};

static void inflight_wake(void *ctx)
{
    struct inflight *f = ctx;
    mempipe_close(f->b); /* this thread's own end: legal (R24, R32) */
    atomic_store(&f->inside, 1);
    while (!atomic_load(&f->closing))
        sched_yield();
    for (int i = 0; i < 20; i++) /* let A reach the wait in its close */
        sched_yield();
}

static void *inflight_thread(void *arg)
{
    struct inflight *f = arg;
    unsigned char c;
    mempipe_waker w = {inflight_wake, f};
    T_RC(-EAGAIN, mempipe_poll_read(f->a, &c, 1, &w));
    atomic_store(&f->ready, 1);
    while (!atomic_load(&f->inside))
        sched_yield();
    atomic_store(&f->closing, 1);
    mempipe_close(f->a); /* waits for the waker running on the other thread */
    return NULL;
}

static void test_R32_close_waiting_for_a_waker_that_closed_its_runner(void **s)
{
    (void)s;
    tu_watchdog_start("close waiting for a waker that closes its runner");
    for (int it = 0; it < 300; it++) {
        struct inflight f;
        memset(&f, 0, sizeof f);
        assert_rc(0, mempipe_duplex(caps[it % 4], &f.a, &f.b));
        if (it & 4) /* and the fd hook after the wake */
            assert_true(mempipe_readable_fd(f.a) >= 0);
        pthread_t t;
        assert_int_equal(0, pthread_create(&t, NULL, inflight_thread, &f));
        while (!atomic_load(&f.ready))
            sched_yield();
        if (it & 1)
            assert_rc(1, mempipe_poll_write(f.b, "x", 1, NULL));
        else
            assert_rc(0, mempipe_shutdown(f.b));
        pthread_join(t, NULL);
        assert_int_equal(0, tu_live());
        atomic_fetch_add(&tu_progress, 1);
    }
    tu_watchdog_end();
}

/* ------------------------------------------------------------------------ */
/* Randomized: wakers close ends at random moments while both sides call.   */

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define CW_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define CW_SANITIZED 1
#endif

#if defined(CW_SANITIZED)
#define DEFAULT_SECONDS 2.0
#define SMALL_TOTAL     2048  /* bytes per direction, capacity 1 and 7 */
#define LARGE_TOTAL     65536 /* capacity 4096 and 65536 */
#else
#define DEFAULT_SECONDS 3.0
#define SMALL_TOTAL     8192
#define LARGE_TOTAL     (256 * 1024)
#endif
#define MAX_SESSIONS 1000000 /* the time bound comes first */
#define RUNNERS      3       /* pairs at once */

enum close_kind { CLOSE_OWN, CLOSE_PEER, CLOSE_BOTH, NKINDS };
static const char *const kind_name[NKINDS] = {"own", "peer", "both"};

static uint64_t base_seed;
static double seconds = DEFAULT_SECONDS;
static atomic_ullong st_pairs, st_loops, st_fired[NKINDS], st_parked_closes,
    st_self_closes, st_blocking_closes, st_loop_closes[3], st_unfired, st_bytes,
    st_epipe, st_eof, st_wakes;

struct session;

/* One end and the thread that drives it. */
struct side {
    struct session *s;
    struct side *peer;
    mempipe *end;
    int may_block;   /* some steps use mempipe_write / mempipe_read */
    int in_blocking; /* this thread is inside a blocking call */
    atomic_int state;
    atomic_int shut; /* set before this end's shutdown */
    atomic_int gone; /* set before this end's close */
    struct tu_park park;
    uint64_t seed, total, rng;
    uint64_t sent, got; /* accepted; read and checked */
    int eof, epipe;
    size_t maxchunk;
};

struct session {
    struct side side[2]; /* a, b */
    enum close_kind kind;
    int closer;  /* whose waker closes: 0 a's, 1 b's, 2 either */
    uint64_t at; /* once this many bytes moved (UINT64_MAX: never) */
    atomic_ullong moved;
    atomic_int fired;
};

/* The side whose thread this is (NULL on the runner threads). */
static _Thread_local struct side *cur_side;

/*
 * Claims e for a close by a waker on this thread: at once if this is e's own
 * thread (inside its call on e, R24), else only while e's thread is parked.
 */
static int claim(struct side *e)
{
    if (cur_side == e) {
        if (atomic_load(&e->gone))
            return 0; /* e's thread is closing e itself: the waker runs in
                       * that close */
        atomic_store(&e->state, CLOSED); /* only e's thread leaves RUNNING */
        return 1;
    }
    return claim_parked(&e->state);
}

static void close_claimed(struct side *e)
{
    atomic_store(&e->gone, 1); /* before: the peer may see EOF at once */
    mempipe_close(e->end);
    if (cur_side != e) {
        atomic_fetch_add(&st_parked_closes, 1);
        tu_park_wake(&e->park); /* it wakes, sees CLOSED and leaves */
    } else {
        atomic_fetch_add(&st_self_closes, 1);
        if (e->in_blocking)
            atomic_fetch_add(&st_blocking_closes, 1);
    }
}

/* x's waker, the session's moment has come: close per the session's kind. */
static void fire(struct session *s, struct side *x)
{
    struct side *y = x->peer, *me = cur_side;
    int zero = 0;
    if ((me != x && me != y) ||
        !atomic_compare_exchange_strong(&s->fired, &zero, 1))
        return;
    struct side *v[2] = {s->kind == CLOSE_PEER ? y : x, NULL};
    if (s->kind == CLOSE_BOTH) { /* the parked one first: it may fail */
        v[0] = me == x ? y : x;
        v[1] = me;
    }
    if ((v[1] != NULL && atomic_load(&me->gone)) || !claim(v[0])) {
        atomic_store(&s->fired, 0); /* not now: a later wake tries again */
        return;
    }
    if (v[1] != NULL)
        claim(v[1]); /* this thread's own end: always */
    close_claimed(v[0]);
    if (v[1] != NULL)
        close_claimed(v[1]);
    atomic_fetch_add(&st_fired[s->kind], 1);
}

static void side_wake(void *ctx)
{
    struct side *x = ctx;
    struct session *s = x->s;
    atomic_fetch_add_explicit(&st_wakes, 1, memory_order_relaxed);
    if ((s->closer == 2 || &s->side[s->closer] == x) &&
        atomic_load(&s->moved) >= s->at)
        fire(s, x);
    tu_park_wake(&x->park);
}

static size_t chunk(struct side *x)
{
    uint64_t r = tu_rand(&x->rng);
    size_t lim = (r & 1) ? x->maxchunk : 16;
    return 1 + (size_t)((r >> 8) % lim);
}

static void moved(struct side *x, ssize_t n)
{
    atomic_fetch_add(&x->s->moved, (uint64_t)n);
    atomic_fetch_add_explicit(&st_bytes, (uint64_t)n, memory_order_relaxed);
    atomic_fetch_add_explicit(&tu_progress, 1, memory_order_relaxed);
}

/* One write step; returns whether it made progress. */
static int side_write(struct side *x, unsigned char *buf, int blocking,
                      const mempipe_waker *w)
{
    if (x->sent == x->total) {
        atomic_store(&x->shut, 1);
        T_RC(0, mempipe_shutdown(x->end)); /* may run wakers that close */
        return 1;
    }
    size_t len = chunk(x);
    if (len > x->total - x->sent)
        len = (size_t)(x->total - x->sent);
    tu_pattern(buf, len, x->sent, x->seed);
    ssize_t n;
    x->in_blocking = blocking;
    n = blocking ? mempipe_write(x->end, buf, len)
                 : mempipe_poll_write(x->end, buf, len, w);
    x->in_blocking = 0;
    if (n == -EAGAIN && !blocking)
        return 0;
    if (n == -EPIPE) {
        /* R10, R19: only once the reader is gone (or this end closed inside
         * a blocking write, by a waker the write ran). */
        T_CHECK(atomic_load(&x->peer->gone) || atomic_load(&x->gone),
                "-EPIPE with the reader alive (seed %" PRIu64 ")", base_seed);
        x->epipe = 1;
        atomic_fetch_add(&st_epipe, 1);
        return 1;
    }
    T_CHECK(n > 0 && (size_t)n <= len, "write of %zu returned %zd (%s)", len, n,
            mempipe_strerror((int)n));
    x->sent += (uint64_t)n;
    moved(x, n);
    return 1;
}

/* One read step; returns whether it made progress. */
static int side_read(struct side *x, unsigned char *buf, int blocking,
                     const mempipe_waker *w)
{
    size_t len = chunk(x);
    x->in_blocking = blocking;
    ssize_t n = blocking ? mempipe_read(x->end, buf, len)
                         : mempipe_poll_read(x->end, buf, len, w);
    x->in_blocking = 0;
    if (n == -EAGAIN && !blocking)
        return 0;
    if (n == 0) {
        /* R5: EOF only once the writer shut down or closed. */
        T_CHECK(atomic_load(&x->peer->shut) || atomic_load(&x->peer->gone),
                "EOF with the writer alive (seed %" PRIu64 ")", base_seed);
        x->eof = 1;
        atomic_fetch_add(&st_eof, 1);
        return 1;
    }
    T_CHECK(n > 0 && (size_t)n <= len, "read of %zu returned %zd (%s)", len, n,
            mempipe_strerror((int)n));
    long bad = tu_check_pattern(buf, (size_t)n, x->got, x->peer->seed);
    T_CHECK(bad < 0, "byte %" PRIu64 " is wrong (seed %" PRIu64 ")",
            x->got + (uint64_t)bad, base_seed);
    x->got += (uint64_t)n;
    moved(x, n);
    return 1;
}

/*
 * Drives one end until it read EOF and wrote everything (or met -EPIPE), or a
 * waker closed it; poll steps park on the side's waker when nothing moved.
 */
static void *side_main(void *arg)
{
    struct side *x = arg;
    cur_side = x;
    unsigned char *wbuf = malloc(x->maxchunk), *rbuf = malloc(x->maxchunk);
    T_CHECK(wbuf != NULL && rbuf != NULL, "out of memory");
    mempipe_waker w = {side_wake, x};
    int wdone = 0;
    for (;;) {
        int blocking = x->may_block && (tu_rand(&x->rng) & 1);
        unsigned seen = tu_park_prepare(&x->park);
        int progressed = 0;
        if (!wdone) {
            int shutting = x->sent == x->total;
            progressed |= side_write(x, wbuf, blocking, &w);
            wdone = shutting || x->epipe;
            if (atomic_load(&x->state) == CLOSED)
                break; /* a waker this call ran closed x */
        }
        if (!x->eof) {
            progressed |= side_read(x, rbuf, blocking, &w);
            if (atomic_load(&x->state) == CLOSED)
                break;
        }
        if (wdone && x->eof)
            break;
        if (progressed)
            continue;
        /* Nothing possible: park outside every call on x, so that a waker
         * on the other thread may close x meanwhile. */
        atomic_store(&x->state, PARKED);
        tu_park_wait(&x->park, seen);
        int parked = PARKED;
        if (!atomic_compare_exchange_strong(&x->state, &parked, RUNNING))
            break; /* CLOSED: a waker closed x on our behalf */
    }
    if (atomic_load(&x->state) != CLOSED) {
        /* Before the close: a waker that the close runs here must not
         * claim x again (claim()). */
        atomic_store(&x->gone, 1);
        mempipe_close(x->end);
    }
    free(wbuf);
    free(rbuf);
    return NULL;
}

static size_t pick_cap(uint64_t *rng)
{
    return caps[tu_rand(rng) % 4];
}

static void session_pair(uint64_t *rng)
{
    struct session *s = calloc(1, sizeof *s);
    T_CHECK(s != NULL, "out of memory");
    size_t cap = pick_cap(rng);
    T_RC(0, mempipe_duplex(cap, &s->side[0].end, &s->side[1].end));
    uint64_t big = cap < 256 ? SMALL_TOTAL : LARGE_TOTAL;
    s->kind = (enum close_kind)(tu_rand(rng) % NKINDS);
    s->closer = (int)(tu_rand(rng) % 3);
    uint64_t all = 0;
    for (int i = 0; i < 2; i++) {
        struct side *x = &s->side[i];
        x->s = s;
        x->peer = &s->side[1 - i];
        x->may_block = i == 1 && (tu_rand(rng) & 1); /* never both */
        atomic_init(&x->state, RUNNING);
        tu_park_init(&x->park);
        x->seed = tu_rand(rng);
        x->rng = tu_rand(rng);
        x->total = tu_rand(rng) % (big + 1);
        x->maxchunk = cap * 4 + 64 < 65536 ? cap * 4 + 64 : 65536;
        all += x->total;
    }
    /* One session in eight runs to the end without a close from a waker. */
    s->at = tu_rand(rng) % 8 == 0 ? UINT64_MAX : tu_rand(rng) % (all + 1);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        T_RC(0, pthread_create(&t[i], NULL, side_main, &s->side[i]));
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        struct side *x = &s->side[i], *y = x->peer;
        /* y read x's stream: a prefix, all of it if y saw EOF (R21). */
        T_CHECK(y->got <= x->sent, "read %" PRIu64 " > sent %" PRIu64, y->got,
                x->sent);
        T_CHECK(!y->eof || y->got == x->sent,
                "EOF after %" PRIu64 " of %" PRIu64 " bytes (seed %" PRIu64 ")",
                y->got, x->sent, base_seed);
        if (!atomic_load(&s->fired))
            T_CHECK(y->eof && y->got == x->total && !x->epipe,
                    "no close, yet %" PRIu64 " of %" PRIu64 " bytes, eof %d",
                    y->got, x->total, y->eof);
        tu_park_destroy(&x->park);
    }
    if (!atomic_load(&s->fired))
        atomic_fetch_add(&st_unfired, 1);
    free(s);
    atomic_fetch_add(&st_pairs, 1);
}

/* A loopback on this thread: its waker closes it inside its own read,
 * write or shutdown. */
enum { IN_READ, IN_WRITE, IN_SHUTDOWN };

struct loop {
    mempipe *e;
    int closed, call;
    uint64_t at, moved;
};

static void loop_wake(void *ctx)
{
    struct loop *l = ctx;
    atomic_fetch_add_explicit(&st_wakes, 1, memory_order_relaxed);
    if (l->closed || l->moved < l->at)
        return;
    l->closed = 1;
    mempipe_close(l->e); /* the end whose call runs this waker */
    atomic_fetch_add(&st_loop_closes[l->call], 1);
}

static void session_loopback(uint64_t *rng)
{
    struct loop l = {0};
    size_t cap = pick_cap(rng);
    T_RC(0, mempipe_loopback(cap, &l.e));
    uint64_t seed = tu_rand(rng);
    uint64_t total =
        tu_rand(rng) % ((cap < 256 ? SMALL_TOTAL : LARGE_TOTAL) + 1);
    /* Bytes written plus read; one in four at the very end (the shutdown). */
    l.at = tu_rand(rng) % 4 ? tu_rand(rng) % (2 * total + 2) : 2 * total;
    size_t maxchunk = cap * 2 < 4096 ? cap * 2 : 4096;
    unsigned char buf[4096];
    mempipe_waker w = {loop_wake, &l};
    uint64_t wpos = 0, rpos = 0;
    int shut = 0;
    while (!l.closed) {
        /* Write until full (the writer's waker is stored), ... */
        ssize_t n = 1;
        while (!l.closed && wpos < total && n > 0) {
            size_t len = 1 + (size_t)(tu_rand(rng) % maxchunk);
            if (len > total - wpos)
                len = (size_t)(total - wpos);
            tu_pattern(buf, len, wpos, seed);
            l.call = IN_WRITE;
            n = mempipe_poll_write(l.e, buf, len, &w);
            T_CHECK(n == -EAGAIN || (n > 0 && (size_t)n <= len),
                    "loopback write returned %zd (%s)", n,
                    mempipe_strerror((int)n));
            if (n > 0) {
                wpos += (uint64_t)n;
                l.moved += (uint64_t)n;
            }
        }
        /* ... then read until empty (the reader's waker is stored), ... */
        while (!l.closed) {
            l.call = IN_READ;
            n = mempipe_poll_read(l.e, buf, sizeof buf, &w);
            if (n <= 0)
                break;
            T_RC(-1, tu_check_pattern(buf, (size_t)n, rpos, seed));
            rpos += (uint64_t)n;
            l.moved += (uint64_t)n;
        }
        atomic_fetch_add_explicit(&tu_progress, 1, memory_order_relaxed);
        if (!l.closed && n == 0) {
            T_CHECK(shut && rpos == total,
                    "loopback EOF at %" PRIu64 " of %" PRIu64, rpos, total);
            break;
        }
        /* ... and shut down once all is written: that wakes the reader's
         * waker, then the writer's. */
        if (!l.closed && wpos == total && !shut) {
            l.call = IN_SHUTDOWN;
            T_RC(0, mempipe_shutdown(l.e));
            shut = 1;
        }
    }
    if (!l.closed)
        mempipe_close(l.e);
    atomic_fetch_add(&st_loops, 1);
}

static double deadline;
static atomic_ullong sessions_left;

static void *runner_main(void *arg)
{
    uint64_t rng =
        base_seed ^ ((uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull);
    while (tu_now() < deadline && atomic_fetch_sub(&sessions_left, 1) > 0) {
        if (tu_rand(&rng) % 6 == 0)
            session_loopback(&rng);
        else
            session_pair(&rng);
    }
    return NULL;
}

static void test_R32_random_waker_closes_while_both_sides_call(void **s)
{
    (void)s;
    tu_watchdog_start("random closes from wakers");
    atomic_store(&sessions_left, MAX_SESSIONS);
    double t0 = tu_now();
    deadline = t0 + seconds;
    pthread_t run[RUNNERS];
    for (uintptr_t i = 0; i < RUNNERS; i++)
        assert_int_equal(
            0, pthread_create(&run[i], NULL, runner_main, (void *)(i + 1)));
    for (int i = 0; i < RUNNERS; i++)
        pthread_join(run[i], NULL);
    tu_watchdog_end();
    printf("closewake: %.1f s, %llu pair sessions (%llu without a close), "
           "%llu loopback sessions; waker closes: own %llu, peer %llu, both "
           "%llu; ends closed by a waker: %llu while parked, %llu inside "
           "their own call (%llu blocking); loopback closes in read %llu, "
           "write %llu, shutdown %llu; %llu bytes checked, %llu -EPIPE, %llu "
           "EOF, %llu waker calls (seed %" PRIu64 ")\n",
           tu_now() - t0, (unsigned long long)st_pairs,
           (unsigned long long)st_unfired, (unsigned long long)st_loops,
           (unsigned long long)st_fired[CLOSE_OWN],
           (unsigned long long)st_fired[CLOSE_PEER],
           (unsigned long long)st_fired[CLOSE_BOTH],
           (unsigned long long)st_parked_closes,
           (unsigned long long)st_self_closes,
           (unsigned long long)st_blocking_closes,
           (unsigned long long)st_loop_closes[IN_READ],
           (unsigned long long)st_loop_closes[IN_WRITE],
           (unsigned long long)st_loop_closes[IN_SHUTDOWN],
           (unsigned long long)st_bytes, (unsigned long long)st_epipe,
           (unsigned long long)st_eof, (unsigned long long)st_wakes, base_seed);
    fflush(stdout);
    /* The run must have exercised what it is for. */
    for (int k = 0; k < NKINDS; k++)
        if (atomic_load(&st_fired[k]) == 0)
            fail_msg("no waker close of kind %s in %llu sessions", kind_name[k],
                     (unsigned long long)st_pairs);
    assert_true(atomic_load(&st_parked_closes) > 0);
    assert_true(atomic_load(&st_self_closes) > 0);
    assert_true(atomic_load(&st_loop_closes[IN_READ]) +
                    atomic_load(&st_loop_closes[IN_WRITE]) +
                    atomic_load(&st_loop_closes[IN_SHUTDOWN]) >
                0);
}

#define POISONED(t)                                                            \
    cmocka_unit_test_setup_teardown(t, tu_poison_setup, tu_alloc_teardown)

int main(void)
{
    const char *env = getenv("MEMPIPE_SEED");
    base_seed = env != NULL ? strtoull(env, NULL, 0)
                            : (uint64_t)time(NULL) * 2654435761u;
    env = getenv("MEMPIPE_CLOSEWAKE_SECONDS");
    if (env != NULL && atof(env) > 0)
        seconds = atof(env);
    env = getenv("MEMPIPE_TEST_FILTER"); /* e.g. "*random*" */
    if (env != NULL)
        cmocka_set_test_filter(env);
    printf("closewake seed %" PRIu64 " (replay with MEMPIPE_SEED=%" PRIu64
           "), random part %.0f s\n",
           base_seed, base_seed, seconds);
    fflush(stdout);
    const struct CMUnitTest tests[] = {
        POISONED(test_R32_waker_closes_both_inside_the_peer_poll_write),
        POISONED(test_R32_waker_closes_both_inside_the_peer_poll_read),
        POISONED(test_R32_waker_closes_both_inside_the_peer_shutdown),
        POISONED(test_R32_waker_closes_both_inside_a_blocking_call),
        POISONED(test_R32_waker_closes_both_with_pollable_fds),
        POISONED(test_R32_loopback_waker_closes_its_end_inside_its_own_call),
        POISONED(test_R32_simplex_reader_waker_closes_both_ends),
        POISONED(test_R32_nested_waker_closes_both_at_the_bottom),
        POISONED(test_R32_executor_waker_closes_parked_end_and_its_runner),
        POISONED(test_R32_close_waiting_for_a_waker_that_closed_its_runner),
        POISONED(test_R32_random_waker_closes_while_both_sides_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
