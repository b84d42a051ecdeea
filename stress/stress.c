/* SPDX-License-Identifier: MIT */
/*
 * mempipe stress: many threads and pipes for a set time, exiting non-zero on
 * any hang, lost or corrupted byte, or unexpected error.
 *
 *   stress [seconds] [runners]        (defaults 60 and 4)
 *
 * Each runner thread loops over sessions until the time is up. A session is
 * one pipe and the threads that drive it, of one of three shapes:
 *
 *  threads  a duplex with a writer and a reader thread per end, each mixing
 *           blocking calls, poll calls with a semaphore waker, and writev.
 *           A reader may stop early; its end is then closed (racing with the
 *           peer's writes, which must end in -EPIPE, and the peer's reads,
 *           which must drain then see EOF).
 *  echo     a duplex whose end A is driven only by wakers: every waker call
 *           (on whichever thread made progress) re-enters the library to
 *           read A, write the bytes back and register again; when the input
 *           ends it shuts A down and, in half the sessions, closes A from
 *           inside the waker. End B's threads check the echo byte for byte.
 *  simplex  a writer and a reader thread, either of which may close early.
 *
 * Every byte is checked against its stream position (tu-style pattern), and
 * every stream's byte count and checksum are compared between the writer
 * and the reader. A watchdog thread fails the run if no operation completes
 * for WATCHDOG seconds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_tryjoin_np */
#endif
#include "mempipe.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WATCHDOG 20 /* seconds without any progress: a hang */
#define MAXIO    20000

static atomic_ullong ops, bytes, sessions[3], early_closes, epipes, waker_calls;
static atomic_int stop;
static double deadline;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define DIE(...)                                                               \
    do {                                                                       \
        fprintf(stderr, "stress: FAIL: " __VA_ARGS__);                         \
        fprintf(stderr, "\n");                                                 \
        fflush(stderr);                                                        \
        _exit(1);                                                              \
    } while (0)

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static unsigned char pat(uint64_t pos, uint64_t seed)
{
    uint64_t x = (pos + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    x ^= x >> 29;
    return (unsigned char)(x ^ (x >> 8));
}

static void progress(uint64_t n)
{
    atomic_fetch_add_explicit(&ops, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&bytes, n, memory_order_relaxed);
}

/* ---- a waker that posts a semaphore (for poll-mode threads) ------------- */

static void sem_wake(void *ctx)
{
    atomic_fetch_add_explicit(&waker_calls, 1, memory_order_relaxed);
    sem_post(ctx);
}

/* ---- one stream: a writer thread and a reader thread --------------------- */

struct stream {
    mempipe *w, *r;   /* the ends written and read */
    uint64_t seed;    /* pattern seed */
    uint64_t len;     /* bytes the writer wants to send */
    uint64_t stop_at; /* the reader stops after this many (UINT64_MAX) */
    uint64_t rng_w, rng_r;
    /* results */
    uint64_t sent, got, sum_sent, sum_got;
    int writer_epipe, reader_eof;
    int shut_when_done; /* the writer thread shuts down after its last byte */
    atomic_int *reader_gone; /* set before the reading end is closed */
    atomic_int *writer_gone; /* set before the writing end is closed */
    sem_t wsem, rsem;
};

static uint64_t csum(uint64_t s, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s = (s ^ b[i]) * 0x100000001B3ull;
    return s;
}

static void *writer_main(void *arg)
{
    struct stream *st = arg;
    unsigned char *buf = malloc(MAXIO);
    mempipe_waker wk = {sem_wake, &st->wsem};
    st->sum_sent = 0xcbf29ce484222325ull;
    while (st->sent < st->len) {
        size_t n = 1 + rnd(&st->rng_w) % MAXIO;
        if (n > st->len - st->sent)
            n = (size_t)(st->len - st->sent);
        for (size_t i = 0; i < n; i++)
            buf[i] = pat(st->sent + i, st->seed);
        ssize_t r;
        int how = (int)(rnd(&st->rng_w) % 3);
        if (how == 0) {
            r = mempipe_write(st->w, buf, n);
        } else {
            struct iovec iov[3] = {
                {buf, n / 3}, {buf + n / 3, 0}, {buf + n / 3, n - n / 3}};
            for (;;) {
                r = how == 1 ? mempipe_poll_write(st->w, buf, n, &wk)
                             : mempipe_poll_writev(st->w, iov, 3, &wk);
                if (r != -EAGAIN)
                    break;
                sem_wait(&st->wsem); /* woken by space, shutdown or close */
            }
        }
        if (r == -EPIPE) {
            /* R10/R19: only once the reader is gone. */
            if (!atomic_load(st->reader_gone))
                DIE("-EPIPE on a write while the reader is alive (seed "
                    "%llu)",
                    (unsigned long long)st->seed);
            st->writer_epipe = 1;
            atomic_fetch_add(&epipes, 1);
            break;
        }
        if (r <= 0 || (size_t)r > n)
            DIE("write of %zu returned %zd (%s)", n, r,
                mempipe_strerror((int)r));
        st->sum_sent = csum(st->sum_sent, buf, (size_t)r);
        st->sent += (uint64_t)r;
        progress((uint64_t)r);
    }
    if (st->shut_when_done && !st->writer_epipe) {
        atomic_store(st->writer_gone, 1); /* before: EOF may follow at once */
        if (mempipe_shutdown(st->w) != 0)
            DIE("shutdown");
    }
    free(buf);
    return NULL;
}

static void *reader_main(void *arg)
{
    struct stream *st = arg;
    unsigned char *buf = malloc(MAXIO);
    mempipe_waker wk = {sem_wake, &st->rsem};
    st->sum_got = 0xcbf29ce484222325ull;
    while (st->got < st->stop_at) {
        size_t n = 1 + rnd(&st->rng_r) % MAXIO;
        ssize_t r;
        if (rnd(&st->rng_r) % 2) {
            r = mempipe_read(st->r, buf, n);
        } else {
            while ((r = mempipe_poll_read(st->r, buf, n, &wk)) == -EAGAIN)
                sem_wait(&st->rsem);
        }
        if (r == 0) {
            /* R5: EOF only once the writer is done, after every byte. */
            if (!atomic_load(st->writer_gone))
                DIE("EOF while the writer is alive (seed %llu)",
                    (unsigned long long)st->seed);
            st->reader_eof = 1;
            break;
        }
        if (r < 0 || (size_t)r > n)
            DIE("read of %zu returned %zd (%s)", n, r,
                mempipe_strerror((int)r));
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != pat(st->got + (uint64_t)i, st->seed))
                DIE("stream %llu: wrong byte at %llu",
                    (unsigned long long)st->seed,
                    (unsigned long long)(st->got + (uint64_t)i));
        st->sum_got = csum(st->sum_got, buf, (size_t)r);
        st->got += (uint64_t)r;
        progress((uint64_t)r);
    }
    free(buf);
    return NULL;
}

/* A stream over a pipe of capacity cap, with the sizes drawn from rng. */
static void stream_init(struct stream *st, mempipe *w, mempipe *r,
                        uint64_t *rng, atomic_int *rgone, atomic_int *wgone,
                        size_t cap)
{
    memset(st, 0, sizeof *st);
    st->w = w;
    st->r = r;
    st->seed = rnd(rng);
    /* Tiny pipes move a byte or so per call: keep their sessions short. */
    st->len = rnd(rng) % (cap < 256 ? 1 << 14 : 1 << 20);
    st->stop_at = UINT64_MAX;
    st->shut_when_done = 1;
    st->rng_w = rnd(rng);
    st->rng_r = rnd(rng);
    st->reader_gone = rgone;
    st->writer_gone = wgone;
    sem_init(&st->wsem, 0, 0);
    sem_init(&st->rsem, 0, 0);
}

/* After both threads: nothing lost, nothing invented. */
static void stream_check(struct stream *st)
{
    if (st->got > st->sent)
        DIE("stream %llu: read %llu > sent %llu", (unsigned long long)st->seed,
            (unsigned long long)st->got, (unsigned long long)st->sent);
    if (st->reader_eof && (st->got != st->sent || st->sum_got != st->sum_sent))
        DIE("stream %llu: EOF after %llu of %llu bytes sent (sums %llx "
            "%llx)",
            (unsigned long long)st->seed, (unsigned long long)st->got,
            (unsigned long long)st->sent, (unsigned long long)st->sum_got,
            (unsigned long long)st->sum_sent);
    if (st->stop_at == UINT64_MAX && !st->reader_eof)
        DIE("stream %llu: the reader never saw EOF",
            (unsigned long long)st->seed);
    if (!st->writer_epipe && st->sent != st->len)
        DIE("stream %llu: the writer stopped early",
            (unsigned long long)st->seed);
    sem_destroy(&st->wsem);
    sem_destroy(&st->rsem);
}

static const size_t caps[] = {1, 7, 256, 4096, 65536, 1 << 20, SIZE_MAX};

static size_t pick_cap(uint64_t *rng)
{
    return caps[rnd(rng) % (sizeof caps / sizeof caps[0])];
}

/* ---- session: a duplex driven by four threads -----------------------------
 */

static void session_threads(uint64_t *rng)
{
    mempipe *e[2];
    size_t cap = pick_cap(rng);
    if (mempipe_duplex(cap, &e[0], &e[1]) != 0)
        DIE("duplex");
    atomic_int gone[2] = {0, 0}; /* end i is closing */
    atomic_int shut[2] = {0, 0}; /* end i's writing side is done */
    struct stream st[2];         /* st[i]: end i writes, end 1-i reads */
    pthread_t t[2][2];           /* t[i]: end i's writer and reader */
    for (int i = 0; i < 2; i++)
        stream_init(&st[i], e[i], e[1 - i], rng, &gone[1 - i], &shut[i], cap);
    /*
     * To end without a cycle (as with sockets, two readers that both stop
     * while both writers wait for space would wait forever): at most one
     * reader stops early, and at most one writer leaves EOF to its close
     * instead of shutting down.
     */
    int stopper = (int)(rnd(rng) % 3); /* 2: nobody stops early */
    if (stopper < 2) {
        st[1 - stopper].stop_at = rnd(rng) % (st[1 - stopper].len + 1);
        atomic_fetch_add(&early_closes, 1);
    }
    int lazy = (int)(rnd(rng) % 3);
    if (lazy < 2)
        st[lazy].shut_when_done = 0;
    for (int i = 0; i < 2; i++) {
        pthread_create(&t[i][0], NULL, writer_main, &st[i]);
        pthread_create(&t[i][1], NULL, reader_main, &st[1 - i]);
    }
    /* Close each end as soon as both its threads are done, so the close
     * races with the peer's reads and writes. */
    int done[2][2] = {{0, 0}, {0, 0}}, closed[2] = {0, 0};
    while (!closed[0] || !closed[1]) {
        int progressed = 0;
        for (int i = 0; i < 2; i++) {
            for (int k = 0; k < 2; k++)
                if (!done[i][k] && pthread_tryjoin_np(t[i][k], NULL) == 0)
                    done[i][k] = progressed = 1;
            if (closed[i] || !done[i][0] || !done[i][1])
                continue;
            atomic_store(&gone[i], 1);
            atomic_store(&shut[i], 1);
            mempipe_close(e[i]);
            closed[i] = progressed = 1;
        }
        if (!progressed)
            usleep(200);
    }
    for (int i = 0; i < 2; i++)
        stream_check(&st[i]);
    atomic_fetch_add(&sessions[0], 1);
}

/* ---- session: a simplex, either end may close first ------------------------
 */

static void session_simplex(uint64_t *rng)
{
    mempipe *r, *w;
    size_t cap = pick_cap(rng);
    if (mempipe_simplex(cap, &r, &w) != 0)
        DIE("simplex");
    atomic_int rgone = 0, wgone = 0;
    struct stream st;
    stream_init(&st, w, r, rng, &rgone, &wgone, cap);
    int mode = (int)(rnd(rng) % 3);
    if (mode == 1) { /* the reader leaves early: the writer gets -EPIPE */
        st.stop_at = rnd(rng) % (st.len + 1);
        atomic_fetch_add(&early_closes, 1);
    }
    if (mode == 2) /* EOF comes from the writer's close (R20) */
        st.shut_when_done = 0;
    pthread_t tw, tr;
    pthread_create(&tw, NULL, writer_main, &st);
    pthread_create(&tr, NULL, reader_main, &st);
    if (mode == 1) {
        pthread_join(tr, NULL);
        atomic_store(&rgone, 1);
        mempipe_close(r);
        pthread_join(tw, NULL);
        atomic_store(&wgone, 1);
        mempipe_close(w);
    } else {
        pthread_join(tw, NULL);
        atomic_store(&wgone, 1);
        mempipe_close(w);
        pthread_join(tr, NULL);
        atomic_store(&rgone, 1);
        mempipe_close(r);
    }
    stream_check(&st);
    atomic_fetch_add(&sessions[2], 1);
}

/* ---- session: an echo driven only by re-entrant wakers ---------------------
 */

struct echo {
    mempipe *a;
    pthread_mutex_t mu;  /* one thread at a time in A's calls (R26) */
    atomic_int pending;  /* a wake arrived while another thread worked */
    atomic_int done;     /* A is finished: wakers must not touch it */
    atomic_int finished; /* A was closed by a waker */
    int close_in_waker;
    unsigned char stash[4096];
    size_t have, off; /* stash[off..have) waits to be written back */
    int eof;
    uint64_t echoed;
};

static void echo_wake(void *ctx);

/*
 * Does all the work possible on A: write the stash back, read more, and
 * register the wakers again when blocked (R24: re-entry from a waker).
 * Returns with the mutex released.
 */
static void echo_work(struct echo *ec)
{
    mempipe_waker wk = {echo_wake, ec};
    for (;;) {
        atomic_store(&ec->pending, 0);
        for (;;) {
            if (ec->off < ec->have) {
                ssize_t n = mempipe_poll_write(ec->a, ec->stash + ec->off,
                                               ec->have - ec->off, &wk);
                if (n == -EAGAIN)
                    break; /* the writer waker is stored */
                if (n <= 0)
                    DIE("echo write returned %zd (%s)", n,
                        mempipe_strerror((int)n));
                ec->off += (size_t)n;
                ec->echoed += (uint64_t)n;
                progress((uint64_t)n);
                continue;
            }
            if (ec->eof)
                break;
            ssize_t n =
                mempipe_poll_read(ec->a, ec->stash, sizeof ec->stash, &wk);
            if (n == -EAGAIN)
                break; /* the reader waker is stored */
            if (n < 0)
                DIE("echo read returned %zd (%s)", n, mempipe_strerror((int)n));
            if (n == 0) {
                ec->eof = 1;
                break;
            }
            ec->have = (size_t)n;
            ec->off = 0;
        }
        if (ec->eof && ec->off == ec->have) {
            /* Echo done: half-close; maybe close A from inside a waker. */
            if (mempipe_shutdown(ec->a) != 0)
                DIE("echo shutdown");
            atomic_store(&ec->done, 1);
            if (ec->close_in_waker) {
                mempipe_close(ec->a); /* R22, R24: from a waker */
                atomic_store(&ec->finished, 1);
            }
            pthread_mutex_unlock(&ec->mu);
            return;
        }
        pthread_mutex_unlock(&ec->mu);
        /* A wake that came while we held the lock is ours to handle. */
        if (!atomic_load(&ec->pending) || atomic_load(&ec->done) ||
            pthread_mutex_trylock(&ec->mu) != 0)
            return;
    }
}

static void echo_wake(void *ctx)
{
    struct echo *ec = ctx;
    atomic_fetch_add_explicit(&waker_calls, 1, memory_order_relaxed);
    atomic_store(&ec->pending, 1);
    if (atomic_load(&ec->done) || pthread_mutex_trylock(&ec->mu) != 0)
        return;
    if (atomic_load(&ec->done)) {
        pthread_mutex_unlock(&ec->mu);
        return;
    }
    echo_work(ec);
}

static void session_echo(uint64_t *rng)
{
    mempipe *a, *b;
    size_t cap = pick_cap(rng);
    if (mempipe_duplex(cap, &a, &b) != 0)
        DIE("duplex");
    struct echo *ec = calloc(1, sizeof *ec);
    ec->a = a;
    pthread_mutex_init(&ec->mu, NULL);
    ec->close_in_waker = (int)(rnd(rng) & 1);
    atomic_int bgone = 0, bshut = 0;
    struct stream st;
    /* B writes the stream and reads it back through the echo. */
    stream_init(&st, b, b, rng, &bgone, &bshut, cap);
    st.len %= 1 << 18;
    pthread_t tw, tr;
    pthread_create(&tw, NULL, writer_main, &st);
    pthread_create(&tr, NULL, reader_main, &st);
    /* Kick the echo once from here; after that only wakers drive it. */
    echo_wake(ec);
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    stream_check(&st);
    if (!atomic_load(&ec->done))
        DIE("echo not done after EOF");
    if (ec->echoed != st.len)
        DIE("echoed %llu of %llu", (unsigned long long)ec->echoed,
            (unsigned long long)st.len);
    if (!ec->close_in_waker)
        mempipe_close(a); /* waits for a waker still running on A */
    else if (!atomic_load(&ec->finished))
        DIE("the echo did not close A");
    mempipe_close(b);
    /* Every waker registered through A is gone once A's close returned. */
    pthread_mutex_lock(&ec->mu);
    pthread_mutex_unlock(&ec->mu);
    pthread_mutex_destroy(&ec->mu);
    free(ec);
    atomic_fetch_add(&sessions[1], 1);
}

/* ---- runners, watchdog, main ------------------------------------------------
 */

static void *runner_main(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    while (!atomic_load(&stop) && now() < deadline) {
        switch (rnd(&rng) % 3) {
        case 0:
            session_threads(&rng);
            break;
        case 1:
            session_echo(&rng);
            break;
        default:
            session_simplex(&rng);
            break;
        }
    }
    return NULL;
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    unsigned long long last = 0;
    double since = now();
    while (!atomic_load(&stop)) {
        usleep(200000);
        unsigned long long cur = atomic_load(&ops);
        if (cur != last) {
            last = cur;
            since = now();
        } else if (now() - since > WATCHDOG) {
            DIE("no progress for %d s: a hang (ops %llu)", WATCHDOG, cur);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 60;
    int nrun = argc > 2 ? atoi(argv[2]) : 4;
    if (nrun < 1 || nrun > 64 || secs <= 0) {
        fprintf(stderr, "usage: stress [seconds] [runners 1..64]\n");
        return 2;
    }
    double t0 = now();
    deadline = t0 + secs;
    pthread_t wd, run[64];
    pthread_create(&wd, NULL, watchdog_main, NULL);
    for (int i = 0; i < nrun; i++)
        pthread_create(&run[i], NULL, runner_main, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < nrun; i++)
        pthread_join(run[i], NULL);
    atomic_store(&stop, 1);
    pthread_join(wd, NULL);
    printf("stress: PASS in %.1f s: %llu sessions (threads %llu, echo %llu, "
           "simplex %llu), %llu ops, %llu bytes checked, %llu early closes, "
           "%llu -EPIPE, %llu waker calls\n",
           now() - t0,
           (unsigned long long)(sessions[0] + sessions[1] + sessions[2]),
           (unsigned long long)sessions[0], (unsigned long long)sessions[1],
           (unsigned long long)sessions[2], (unsigned long long)ops,
           (unsigned long long)bytes, (unsigned long long)early_closes,
           (unsigned long long)epipes, (unsigned long long)waker_calls);
    return 0;
}
