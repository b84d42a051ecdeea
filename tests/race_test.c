/* SPDX-License-Identifier: MIT */
/*
 * Close races: an end is closed (or shut down) at a random moment while a
 * thread is blocked in mempipe_read/mempipe_write on the other side, or
 * parked through a poll waker. Every iteration must end, in EOF for a reader
 * (R5, R19, R20, R27) and in -EPIPE or a partial count for a writer (R10,
 * R18, R28), with no byte written before the close lost to a reader that is
 * still open (R21). A watchdog aborts with a message after 10 s without an
 * iteration completing.
 *
 * Two of them again without blocking, aimed at their narrowest window: a
 * shutdown from a third thread against a writer streaming poll writes (every
 * byte a write reports accepted must come before EOF, and EOF must stay), and
 * a reader's close against a writer spinning on poll writes (nothing may be
 * accepted once the reader is gone, R1, R10).
 *
 * Then the lifetime races of R22: both ends closed at once from two threads
 * (the last close frees; run under ASan/TSan), and close racing with a slow
 * waker running on another thread (close must wait for it, and no waker may
 * start once close has returned).
 */
#include "testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ITERS       500  /* per close race and pipe kind */
#define FREE_ITERS  1000 /* both ends closed at once */
#define WAKER_ITERS 1000 /* close against a running waker */
#define CAP         8    /* small, so writers block */
#define WRITE_LEN   64   /* more than CAP + what a reader takes first */

/* ------------------------------------------------------------------------ */

/* A random short delay: nothing, a spin of up to max_us, or a sleep. */
static void rdelay(uint64_t *rng, unsigned max_us)
{
    uint64_t r = tu_rand(rng);
    unsigned us = (unsigned)((r >> 8) % (max_us + 1));
    if (us == 0 || (r & 3) == 0)
        return;
    if (r & 4) {
        double until = tu_now() + us * 1e-6;
        while (tu_now() < until)
            ;
        return;
    }
    struct timespec ts = {0, (long)us * 1000};
    nanosleep(&ts, NULL);
}

/*
 * A thread announces it is running before its first call, and the thread
 * that closes waits for that before its random delay: otherwise, on a
 * loaded machine, thread start-up alone would put most closes before the
 * first call and the race would seldom be run.
 */
static void announce(atomic_int *started)
{
    atomic_store(started, 1);
}

static void await_start(atomic_int *started)
{
    while (!atomic_load(started))
        sched_yield();
}

enum kind { DUPLEX, SIMPLEX };

/* rd reads what wr writes: a duplex (rd = a, wr = b) or a simplex. */
static void make_pipe_cap(enum kind k, size_t cap, mempipe **rd, mempipe **wr)
{
    if (k == DUPLEX)
        assert_rc(0, mempipe_duplex(cap, rd, wr));
    else
        assert_rc(0, mempipe_simplex(cap, rd, wr));
}

static void make_pipe(enum kind k, mempipe **rd, mempipe **wr)
{
    make_pipe_cap(k, CAP, rd, wr);
}

static const char *kind_name(enum kind k)
{
    return k == DUPLEX ? "duplex" : "simplex";
}

/* A reader or writer thread's work, blocking or poll + park. */
struct job {
    mempipe *end;
    int poll;      /* 0: blocking call; 1: poll + park */
    uint64_t seed; /* pattern */
    struct tu_park park;
    int parked; /* poll mode: waited at least once */
    atomic_int started;
    unsigned char buf[WRITE_LEN];
    size_t got;  /* reader: bytes before EOF */
    ssize_t ret; /* writer: the blocking call's result, or poll total */
};

/* Reads to EOF into j->buf; checks the pattern as it goes. */
static void read_to_eof(struct job *j, uint64_t *rng)
{
    mempipe_waker w = {tu_park_wake, &j->park};
    for (;;) {
        size_t want = 1 + (size_t)(tu_rand(rng) % 16);
        unsigned char tmp[16];
        ssize_t n;
        if (!j->poll) {
            n = mempipe_read(j->end, tmp, want);
        } else {
            for (;;) {
                unsigned seen = tu_park_prepare(&j->park);
                n = mempipe_poll_read(j->end, tmp, want, &w);
                if (n != -EAGAIN)
                    break;
                j->parked = 1;
                tu_park_wait(&j->park, seen);
            }
        }
        if (n == 0)
            return;
        T_CHECK(n > 0 && (size_t)n <= want, "read returned %zd", n);
        T_CHECK(j->got + (size_t)n <= WRITE_LEN, "too many bytes: %zu + %zd",
                j->got, n);
        long bad = tu_check_pattern(tmp, (size_t)n, j->got, j->seed);
        T_CHECK(bad < 0, "byte %zu is wrong", j->got + (size_t)bad);
        j->got += (size_t)n;
    }
}

/* Writes WRITE_LEN bytes until done or closed; j->ret gets the result. */
static void write_all(struct job *j)
{
    tu_pattern(j->buf, WRITE_LEN, 0, j->seed);
    if (!j->poll) {
        j->ret = mempipe_write(j->end, j->buf, WRITE_LEN);
        return;
    }
    mempipe_waker w = {tu_park_wake, &j->park};
    size_t off = 0;
    while (off < WRITE_LEN) {
        unsigned seen = tu_park_prepare(&j->park);
        ssize_t n =
            mempipe_poll_write(j->end, j->buf + off, WRITE_LEN - off, &w);
        if (n == -EAGAIN) {
            j->parked = 1;
            tu_park_wait(&j->park, seen);
            continue;
        }
        if (n == -EPIPE)
            break;
        T_CHECK(n > 0, "poll_write returned %zd (%s)", n,
                mempipe_strerror((int)n));
        off += (size_t)n;
    }
    /* As mempipe_write would report it (R28). */
    j->ret = off > 0 ? (ssize_t)off : -EPIPE;
}

static void *reader_thread(void *arg)
{
    struct job *j = arg;
    announce(&j->started);
    uint64_t rng = j->seed * 7 + 1;
    read_to_eof(j, &rng);
    return NULL;
}

static void *writer_thread(void *arg)
{
    struct job *j = arg;
    announce(&j->started);
    write_all(j);
    return NULL;
}

static uint64_t base_seed;

/*
 * Blocked reader, peer closes: the writer end (this thread) writes a few
 * bytes with random pauses, pauses again, closes. The reader must get every
 * one of them, then EOF (R5, R19, R20, R21).
 */
static void reader_vs_close(enum kind k)
{
    char what[64];
    snprintf(what, sizeof what, "%s: blocked reader + peer close",
             kind_name(k));
    tu_watchdog_start(what);
    uint64_t rng = base_seed ^ 0xA1;
    int parked = 0;
    for (int it = 0; it < ITERS; it++) {
        mempipe *rd = NULL, *wr = NULL;
        make_pipe(k, &rd, &wr);
        struct job *j = calloc(1, sizeof *j);
        assert_non_null(j);
        j->end = rd;
        j->poll = it & 1;
        j->seed = base_seed + (uint64_t)it;
        tu_park_init(&j->park);
        pthread_t t;
        assert_int_equal(0, pthread_create(&t, NULL, reader_thread, j));
        if (it % 8 != 7) /* one in 8 may close before the first call */
            await_start(&j->started);

        size_t total = (size_t)(tu_rand(&rng) % (WRITE_LEN + 1));
        unsigned char src[WRITE_LEN];
        tu_pattern(src, total, 0, j->seed);
        size_t off = 0;
        while (off < total) {
            size_t n = 1 + (size_t)(tu_rand(&rng) % CAP);
            if (n > total - off)
                n = total - off;
            assert_rc(n, mempipe_write(wr, src + off, n));
            off += n;
            rdelay(&rng, 30);
        }
        rdelay(&rng, 100);
        mempipe_close(wr);
        pthread_join(t, NULL);
        assert_rc(total, j->got); /* nothing lost before EOF */
        parked += j->parked;
        mempipe_close(rd);
        tu_park_destroy(&j->park);
        free(j);
        atomic_fetch_add(&tu_progress, 1);
    }
    tu_watchdog_end();
    printf("%-44s %d iterations, poll reader parked in %d of %d\n", what, ITERS,
           parked, ITERS / 2);
    fflush(stdout);
}

/*
 * Blocked writer, peer closes: this thread reads some bytes, pauses, closes
 * the reading end. The writer (WRITE_LEN bytes, more than fit) must end with
 * a partial count no smaller than what was read, or -EPIPE if nothing was
 * accepted (R10, R19, R20, R28).
 */
static void writer_vs_close(enum kind k)
{
    char what[64];
    snprintf(what, sizeof what, "%s: blocked writer + peer close",
             kind_name(k));
    tu_watchdog_start(what);
    uint64_t rng = base_seed ^ 0xB2;
    int parked = 0, epipe = 0;
    for (int it = 0; it < ITERS; it++) {
        mempipe *rd = NULL, *wr = NULL;
        make_pipe(k, &rd, &wr);
        struct job *j = calloc(1, sizeof *j);
        assert_non_null(j);
        j->end = wr;
        j->poll = it & 1;
        j->seed = base_seed + (uint64_t)it;
        tu_park_init(&j->park);
        pthread_t t;
        assert_int_equal(0, pthread_create(&t, NULL, writer_thread, j));
        if (it % 8 != 7) /* one in 8 may close before the first call */
            await_start(&j->started);

        /* Read r bytes, leaving the writer unable to finish. */
        size_t r = (size_t)(tu_rand(&rng) % (WRITE_LEN - 2 * CAP));
        if (it % 8 == 7)
            r = 0; /* then the close may come before the first write */
        size_t got = 0;
        unsigned char tmp[WRITE_LEN];
        while (got < r) {
            ssize_t n = mempipe_read(rd, tmp, r - got);
            assert_true(n > 0);
            assert_rc(-1, tu_check_pattern(tmp, (size_t)n, got, j->seed));
            got += (size_t)n;
            rdelay(&rng, 20);
        }
        rdelay(&rng, 100);
        mempipe_close(rd);
        pthread_join(t, NULL);
        if (j->ret == -EPIPE) {
            assert_rc(0, r); /* it had accepted nothing */
            epipe++;
        } else {
            /* At least what was read, at most that plus one full pipe. */
            if (j->ret < (ssize_t)r || j->ret > (ssize_t)(r + CAP)) {
                fprintf(stderr, "writer returned %zd after %zu were read\n",
                        j->ret, r);
                fail();
            }
        }
        parked += j->parked;
        mempipe_close(wr);
        tu_park_destroy(&j->park);
        free(j);
        atomic_fetch_add(&tu_progress, 1);
    }
    tu_watchdog_end();
    printf("%-44s %d iterations, -EPIPE in %d, poll writer parked in %d of "
           "%d\n",
           what, ITERS, epipe, parked, ITERS / 2);
    fflush(stdout);
}

/* Shuts the writer's end down after a random delay, from its own thread. */
struct shut {
    mempipe *end;
    uint64_t rng;
    atomic_int *writer_started;
};

static void *shutdown_thread(void *arg)
{
    struct shut *s = arg;
    if (s->writer_started != NULL)
        await_start(s->writer_started);
    rdelay(&s->rng, 150);
    T_RC(0, mempipe_shutdown(s->end));
    return NULL;
}

/*
 * Blocked writer, its own direction shut down from another thread (R17,
 * R18, R28). This thread reads to EOF with pauses: it must receive exactly
 * the bytes the writer reports accepted (R5, R21), nothing more or less.
 */
static void writer_vs_shutdown(enum kind k)
{
    char what[64];
    snprintf(what, sizeof what, "%s: blocked writer + shutdown", kind_name(k));
    tu_watchdog_start(what);
    uint64_t rng = base_seed ^ 0xC3;
    int parked = 0, epipe = 0, complete = 0;
    for (int it = 0; it < ITERS; it++) {
        mempipe *rd = NULL, *wr = NULL;
        make_pipe(k, &rd, &wr);
        struct job *j = calloc(1, sizeof *j);
        assert_non_null(j);
        j->end = wr;
        j->poll = it & 1;
        j->seed = base_seed + (uint64_t)it;
        tu_park_init(&j->park);
        /* One in 8 may shut down before the first call. */
        struct shut s = {wr, tu_rand(&rng), it % 8 != 7 ? &j->started : NULL};
        pthread_t tw, ts;
        assert_int_equal(0, pthread_create(&tw, NULL, writer_thread, j));
        assert_int_equal(0, pthread_create(&ts, NULL, shutdown_thread, &s));

        size_t got = 0;
        unsigned char tmp[WRITE_LEN + 1];
        for (;;) {
            rdelay(&rng, 20);
            size_t want = 1 + (size_t)(tu_rand(&rng) % 16);
            ssize_t n = mempipe_read(rd, tmp, want);
            if (n == 0)
                break;
            assert_true(n > 0);
            assert_true(got + (size_t)n <= WRITE_LEN);
            assert_rc(-1, tu_check_pattern(tmp, (size_t)n, got, j->seed));
            got += (size_t)n;
        }
        pthread_join(tw, NULL);
        pthread_join(ts, NULL);
        size_t accepted = j->ret == -EPIPE ? 0 : (size_t)j->ret;
        epipe += j->ret == -EPIPE;
        complete += j->ret == WRITE_LEN;
        if (got != accepted) {
            /* Look again now that the writer has returned. */
            ssize_t late = mempipe_poll_read(rd, tmp, sizeof tmp, NULL);
            fprintf(stderr,
                    "iteration %d (%s writer): writer reports %zd accepted, "
                    "reader got %zu before EOF; a read after the writer "
                    "returned gives %zd\n",
                    it, j->poll ? "poll" : "blocking", j->ret, got, late);
        }
        assert_rc(accepted, got);
        parked += j->parked;
        mempipe_close(wr);
        mempipe_close(rd);
        tu_park_destroy(&j->park);
        free(j);
        atomic_fetch_add(&tu_progress, 1);
    }
    tu_watchdog_end();
    printf("%-44s %d iterations, -EPIPE in %d, complete in %d, poll writer "
           "parked in %d of %d\n",
           what, ITERS, epipe, complete, parked, ITERS / 2);
    fflush(stdout);
}

static void test_R19_blocked_reader_vs_peer_close_duplex(void **state)
{
    (void)state;
    reader_vs_close(DUPLEX);
}

static void test_R20_blocked_reader_vs_writer_close_simplex(void **state)
{
    (void)state;
    reader_vs_close(SIMPLEX);
}

static void test_R19_blocked_writer_vs_peer_close_duplex(void **state)
{
    (void)state;
    writer_vs_close(DUPLEX);
}

static void test_R20_blocked_writer_vs_reader_close_simplex(void **state)
{
    (void)state;
    writer_vs_close(SIMPLEX);
}

static void test_R18_blocked_writer_vs_own_shutdown_duplex(void **state)
{
    (void)state;
    writer_vs_shutdown(DUPLEX);
}

static void test_R18_blocked_writer_vs_own_shutdown_simplex(void **state)
{
    (void)state;
    writer_vs_shutdown(SIMPLEX);
}

/*
 * The same race without any blocking, aimed at its narrowest point: a writer
 * streaming small poll writes into a roomy pipe while another thread shuts
 * the direction down and the reader, caught up, is about to decide EOF. A
 * write that returns a count has accepted those bytes, so the reader must
 * see them before EOF (R5: buffered bytes always come before EOF, whatever
 * closed the pipe), and a read after EOF stays EOF.
 */
struct streamer {
    mempipe *end;
    uint64_t seed;
    size_t accepted;
    uint64_t rng;
    atomic_int started;
};

static void *streamer_thread(void *arg)
{
    struct streamer *s = arg;
    announce(&s->started);
    unsigned char buf[16];
    for (unsigned spins = 0;; spins++) {
        size_t len = 1 + (size_t)(tu_rand(&s->rng) % sizeof buf);
        tu_pattern(buf, len, s->accepted, s->seed);
        ssize_t n = mempipe_poll_write(s->end, buf, len, NULL);
        if (n == -EPIPE)
            return NULL;
        if (n == -EAGAIN) { /* full: spin, never park (see above) */
            if (spins % 64 == 63)
                sched_yield();
            continue;
        }
        T_CHECK(n > 0, "poll_write returned %zd", n);
        s->accepted += (size_t)n;
    }
}

static void test_R5_shutdown_racing_poll_writes_loses_nothing(void **state)
{
    (void)state;
    tu_watchdog_start("shutdown vs streaming poll writes");
    uint64_t rng = base_seed ^ 0xE5;
    size_t bytes = 0;
    for (int it = 0; it < 2 * ITERS; it++) {
        mempipe *rd = NULL, *wr = NULL;
        /* Roomy, so the writer seldom waits, and bounded, so a late
         * shutdown on a loaded machine cannot pile up memory. */
        make_pipe_cap(it & 1 ? SIMPLEX : DUPLEX, 64 * 1024, &rd, &wr);
        struct streamer st = {wr, base_seed + (uint64_t)it, 0, tu_rand(&rng),
                              0};
        struct shut sh = {wr, tu_rand(&rng), &st.started};
        pthread_t tw, ts;
        assert_int_equal(0, pthread_create(&tw, NULL, streamer_thread, &st));
        assert_int_equal(0, pthread_create(&ts, NULL, shutdown_thread, &sh));
        size_t got = 0;
        unsigned char tmp[4096];
        ssize_t n;
        while ((n = mempipe_read(rd, tmp, sizeof tmp)) > 0) {
            long bad = tu_check_pattern(tmp, (size_t)n, got, st.seed);
            if (bad >= 0)
                fail_msg("iteration %d: byte %zu is wrong", it,
                         got + (size_t)bad);
            got += (size_t)n;
        }
        assert_rc(0, n);
        pthread_join(tw, NULL);
        pthread_join(ts, NULL);
        ssize_t late = mempipe_poll_read(rd, tmp, sizeof tmp, NULL);
        if (got != st.accepted || late != 0)
            fprintf(stderr,
                    "iteration %d (%s): the writer had %zu bytes accepted, "
                    "the reader got %zu before EOF, and a read after the "
                    "writer returned gives %zd (expected 0: EOF stays)\n",
                    it, it & 1 ? "simplex" : "duplex", st.accepted, got, late);
        assert_rc(st.accepted, got);
        assert_rc(0, late);
        bytes += got;
        mempipe_close(wr);
        mempipe_close(rd);
        atomic_fetch_add(&tu_progress, 1);
    }
    tu_watchdog_end();
    printf("%-44s %d iterations, %zu bytes\n",
           "shutdown vs streaming poll writes", 2 * ITERS, bytes);
    fflush(stdout);
}

/*
 * The reader's close against a writer streaming into a small pipe. The
 * pipe never holds more than M unread bytes (R1), so a writer can have had
 * at most (bytes read) + M accepted before the reader closed; after the
 * close every write fails with -EPIPE (R10, R19, R20). A larger total means
 * a write slipped into the space that the close freed by discarding the
 * unread bytes (R21), into a pipe nobody can read any more.
 */
struct pusher {
    mempipe *end;
    size_t accepted;
};

static void *pusher_thread(void *arg)
{
    struct pusher *p = arg;
    unsigned char buf[CAP];
    memset(buf, 0x3C, sizeof buf);
    /* Spinning on poll_write, not parking: the writer then re-checks the
     * pipe all the time, also while the close discards the unread bytes. */
    for (unsigned spins = 0;; spins++) {
        ssize_t n = mempipe_poll_write(p->end, buf, sizeof buf, NULL);
        if (n == -EPIPE)
            return NULL; /* the reader is gone */
        if (n == -EAGAIN) {
            if (spins % 64 == 63)
                sched_yield(); /* two cores shared by three threads */
            continue;
        }
        T_CHECK(n > 0, "poll_write returned %zd", n);
        p->accepted += (size_t)n;
    }
}

static void
test_R10_reader_close_racing_writes_accepts_nothing_after(void **state)
{
    (void)state;
    tu_watchdog_start("reader close vs streaming writes");
    uint64_t rng = base_seed ^ 0xF6;
    size_t worst = 0;
    for (int it = 0; it < 2 * ITERS; it++) {
        mempipe *rd = NULL, *wr = NULL;
        make_pipe(it & 1 ? SIMPLEX : DUPLEX, &rd, &wr);
        struct pusher pu = {wr, 0};
        pthread_t t;
        assert_int_equal(0, pthread_create(&t, NULL, pusher_thread, &pu));
        size_t r = (size_t)(tu_rand(&rng) % 4096), got = 0;
        unsigned char tmp[64];
        while (got < r) {
            size_t want = r - got < sizeof tmp ? r - got : sizeof tmp;
            ssize_t n = mempipe_read(rd, tmp, want);
            assert_true(n > 0);
            got += (size_t)n;
        }
        mempipe_close(rd);
        pthread_join(t, NULL);
        if (pu.accepted > r + CAP)
            fprintf(stderr,
                    "iteration %d (%s): %zu bytes read, then the reader "
                    "closed; the writer reports %zu accepted, more than "
                    "read + M = %zu\n",
                    it, it & 1 ? "simplex" : "duplex", r, pu.accepted, r + CAP);
        assert_true(pu.accepted <= r + CAP);
        assert_true(pu.accepted >= r);
        if (pu.accepted - r > worst)
            worst = pu.accepted - r;
        mempipe_close(wr);
        atomic_fetch_add(&tu_progress, 1);
    }
    tu_watchdog_end();
    printf("%-44s %d iterations, at most %zu accepted beyond the bytes "
           "read (M = %d)\n",
           "reader close vs streaming writes", 2 * ITERS, worst, CAP);
    fflush(stdout);
}

/* ------------------------------------------------------------------------ */
/* Both ends closed at once (R22: any order, any thread; the last frees). */

struct closer {
    mempipe *end;
    atomic_int *go;
};

static void *closer_thread(void *arg)
{
    struct closer *c = arg;
    atomic_fetch_add(c->go, 1);
    while (atomic_load(c->go) < 2)
        ; /* both threads close as close together as we can make them */
    mempipe_close(c->end);
    return NULL;
}

static void test_R22_both_ends_closed_concurrently(void **state)
{
    (void)state;
    tu_watchdog_start("both ends closed at once");
    struct tu_counter wakes = {0};
    mempipe_waker w = tu_counter_waker(&wakes);
    unsigned char buf[CAP];
    memset(buf, 0x5A, sizeof buf);
    for (int it = 0; it < FREE_ITERS; it++) {
        mempipe *x = NULL, *y = NULL;
        if (it & 1) {
            assert_rc(0, mempipe_simplex(CAP, &x, &y)); /* x reads */
            /* Something buffered, and the reader's waker parked or not. */
            if (it & 2)
                assert_rc(-EAGAIN, mempipe_poll_read(x, buf, 1, &w));
            else
                assert_rc(3, mempipe_poll_write(y, buf, 3, NULL));
        } else {
            assert_rc(0, mempipe_duplex(CAP, &x, &y));
            assert_rc(CAP, mempipe_poll_write(x, buf, CAP, NULL));
            assert_rc(-EAGAIN, mempipe_poll_write(x, buf, 1, &w));
            assert_rc(-EAGAIN, mempipe_poll_read(x, buf, 1, &w));
            if (it & 2)
                assert_rc(2, mempipe_poll_write(y, buf, 2, NULL));
        }
        atomic_int go = 0;
        struct closer cx = {x, &go}, cy = {y, &go};
        pthread_t tx, ty;
        assert_int_equal(0, pthread_create(&tx, NULL, closer_thread, &cx));
        assert_int_equal(0, pthread_create(&ty, NULL, closer_thread, &cy));
        pthread_join(tx, NULL);
        pthread_join(ty, NULL);
        atomic_fetch_add(&tu_progress, 1);
    }
    tu_watchdog_end();
    printf("%-44s %d iterations, %d wakes\n", "both ends closed at once",
           FREE_ITERS, tu_calls(&wakes));
    fflush(stdout);
}

/* ------------------------------------------------------------------------ */
/* Close against a slow waker running on another thread (R22). */

struct slow {
    atomic_int close_started;
    atomic_int close_returned;
    atomic_int calls;
    atomic_int late;    /* the waker ran (or was running) after close */
    atomic_int overlap; /* close began while the waker ran */
};

static void slow_wake(void *ctx)
{
    struct slow *s = ctx;
    atomic_fetch_add(&s->calls, 1);
    if (atomic_load(&s->close_returned))
        atomic_fetch_add(&s->late, 1);
    struct timespec ts = {0, 100 * 1000};
    nanosleep(&ts, NULL);
    if (atomic_load(&s->close_started))
        atomic_fetch_add(&s->overlap, 1);
    /* close must still be waiting for us */
    if (atomic_load(&s->close_returned))
        atomic_fetch_add(&s->late, 1);
}

struct poker {
    mempipe *peer;
    int fill; /* 1: write a byte (wakes a reader); 0: read one (a writer) */
    uint64_t rng;
    atomic_int started;
};

static void *poker_thread(void *arg)
{
    struct poker *p = arg;
    unsigned char c = 1;
    announce(&p->started);
    rdelay(&p->rng, 150);
    if (p->fill) {
        /* -EPIPE once a is closed: its close read-closes b's pipe (R19). */
        ssize_t n = mempipe_poll_write(p->peer, &c, 1, NULL);
        T_CHECK(n == 1 || n == -EPIPE, "poll_write returned %zd", n);
    } else {
        /* The byte a wrote stays readable after a's close (R21). */
        T_RC(1, mempipe_poll_read(p->peer, &c, 1, NULL));
    }
    return NULL;
}

static void test_R22_close_waits_for_running_waker(void **state)
{
    (void)state;
    tu_watchdog_start("close vs a running waker");
    uint64_t rng = base_seed ^ 0xD4;
    int calls = 0, overlaps = 0;
    for (int it = 0; it < WAKER_ITERS; it++) {
        mempipe *a = NULL, *b = NULL;
        assert_rc(0, mempipe_duplex(1, &a, &b));
        struct slow *s = calloc(1, sizeof *s);
        assert_non_null(s);
        mempipe_waker w = {slow_wake, s};
        unsigned char c = 0;
        struct poker p = {b, it & 1, tu_rand(&rng), 0};
        if (p.fill) {
            /* a's reader waits; b's write on the other thread wakes it. */
            assert_rc(-EAGAIN, mempipe_poll_read(a, &c, 1, &w));
        } else {
            /* a's writer waits for space; b's read wakes it. */
            assert_rc(1, mempipe_poll_write(a, &c, 1, NULL));
            assert_rc(-EAGAIN, mempipe_poll_write(a, &c, 1, &w));
        }
        pthread_t t;
        assert_int_equal(0, pthread_create(&t, NULL, poker_thread, &p));
        if (it % 8 != 7) /* one in 8 may close before the first call */
            await_start(&p.started);
        rdelay(&rng, 150);
        atomic_store(&s->close_started, 1);
        mempipe_close(a);
        atomic_store(&s->close_returned, 1);
        pthread_join(t, NULL);
        mempipe_close(b);
        if (atomic_load(&s->late) != 0) {
            fprintf(stderr, "iteration %d: the waker ran after close\n", it);
            fail();
        }
        assert_true(atomic_load(&s->calls) <= 1); /* R23: at most once */
        calls += atomic_load(&s->calls);
        overlaps += atomic_load(&s->overlap);
        free(s);
        atomic_fetch_add(&tu_progress, 1);
    }
    tu_watchdog_end();
    printf("%-44s %d iterations, waker ran in %d, close overlapped it in "
           "%d\n",
           "close vs a running waker", WAKER_ITERS, calls, overlaps);
    fflush(stdout);
}

int main(void)
{
    const char *env = getenv("MEMPIPE_SEED");
    base_seed = env != NULL ? strtoull(env, NULL, 0)
                            : (uint64_t)time(NULL) * 2654435761u;
    printf("race seed %" PRIu64 " (replay with MEMPIPE_SEED=%" PRIu64 ")\n",
           base_seed, base_seed);
    fflush(stdout);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R19_blocked_reader_vs_peer_close_duplex),
        cmocka_unit_test(test_R20_blocked_reader_vs_writer_close_simplex),
        cmocka_unit_test(test_R19_blocked_writer_vs_peer_close_duplex),
        cmocka_unit_test(test_R20_blocked_writer_vs_reader_close_simplex),
        cmocka_unit_test(test_R18_blocked_writer_vs_own_shutdown_duplex),
        cmocka_unit_test(test_R18_blocked_writer_vs_own_shutdown_simplex),
        cmocka_unit_test(test_R5_shutdown_racing_poll_writes_loses_nothing),
        cmocka_unit_test(
            test_R10_reader_close_racing_writes_accepts_nothing_after),
        cmocka_unit_test(test_R22_both_ends_closed_concurrently),
        cmocka_unit_test(test_R22_close_waits_for_running_waker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
