/*
 * Threaded stress: data flows both ways at once through one duplex, four
 * threads per duplex (a writer and a reader on each end), with every byte
 * checked against tu_pattern. The calls are mixed at random per chunk:
 * blocking mempipe_write/mempipe_read, poll calls that park on a waker of
 * this file (a condvar parker, independent of the library's own), and
 * mempipe_poll_writev with random slices (empty ones included). Chunk sizes
 * are random from a seed that is printed (set MEMPIPE_SEED to replay one).
 *
 * What it hunts: lost wakeups (R25, R29: a hang, caught by a watchdog that
 * aborts after 10 s without progress), bytes lost, repeated or reordered
 * (R4, R12, R15), EOF arriving early or late (R5, R17), and data races (run it
 * under TSan). Each end's writer shuts down when done while that end's reader
 * is still busy, so shutdown also races with the other direction.
 */
#include "testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Byte counts. The sanitizers slow every byte down (TSan by 5-15x, ASan by
 * 2-3x, and the pattern checks with them), so under them the counts are cut
 * to keep the whole file under about 60 s on two cores; the normal build
 * moves the full amounts (>= 1 MiB each way through capacities 1 and 7,
 * >= 256 MiB each way through 4096 and 65536), about 10 s on two idle cores.
 * Capacity 1 dominates: every byte is a hand-off between two threads.
 */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STRESS_TSAN 1
#endif
#if __has_feature(address_sanitizer)
#define STRESS_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define STRESS_TSAN 1
#endif
#if defined(__SANITIZE_ADDRESS__)
#define STRESS_ASAN 1
#endif

#define MIB (1024ull * 1024ull)
#if defined(STRESS_TSAN)
#define SMALL_BYTES (MIB / 2) /* TSan: scaled down, see above */
#define LARGE_BYTES (16 * MIB)
#elif defined(STRESS_ASAN)
#define SMALL_BYTES (MIB / 2) /* ASan+UBSan: scaled down, see above */
#define LARGE_BYTES (32 * MIB)
#else
#define SMALL_BYTES (1 * MIB)
#define LARGE_BYTES (256 * MIB)
#endif

/* Failures inside worker threads: print expected/actual, then abort (cmocka's
 * assertions longjmp, which only works on the test's own thread). */
#define T_RC(expected, actual)                                                 \
    do {                                                                       \
        long long e_ = (long long)(expected), a_ = (long long)(actual);        \
        if (e_ != a_) {                                                        \
            fprintf(stderr, "%s:%d: %s: expected %lld (%s), got %lld (%s)\n",  \
                    __FILE__, __LINE__, #actual, e_,                           \
                    e_ < 0 ? mempipe_strerror((int)e_) : "count", a_,          \
                    a_ < 0 ? mempipe_strerror((int)a_) : "count");             \
            abort();                                                           \
        }                                                                      \
    } while (0)
#define T_CHECK(cond, ...)                                                     \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__,   \
                    #cond);                                                    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* ------------------------------------------------------------------------ */
/* A parking waker of our own: seq counts wakes; a waiter sleeps on a
 * condvar while seq still equals what it saw before its poll call. */

struct tpark {
    atomic_uint seq;
    atomic_int sleepers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void tpark_init(struct tpark *p)
{
    atomic_init(&p->seq, 0);
    atomic_init(&p->sleepers, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
}

static void tpark_destroy(struct tpark *p)
{
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

static unsigned tpark_prepare(struct tpark *p)
{
    return atomic_load(&p->seq);
}

static void tpark_wake(void *ctx)
{
    struct tpark *p = ctx;
    /*
     * seq_cst increment, then seq_cst load of sleepers; the waiter does the
     * mirror image (sleepers, then seq under the mutex). In the single total
     * order one of them sees the other, so either the waiter sees the new seq
     * or we see the sleeper and signal under the mutex.
     */
    atomic_fetch_add(&p->seq, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

static void tpark_wait(struct tpark *p, unsigned seen)
{
    atomic_fetch_add(&p->sleepers, 1);
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->seq) == seen)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
}

/* ------------------------------------------------------------------------ */
/* Watchdog: aborts with a message if `progress` stands still for 10 s. */

static atomic_ulong progress;
/* What is being watched; NULL between watched sections. */
static _Atomic(const char *) watchdog_what;
static atomic_int watchdog_epoch;

/*
 * One detached thread for the whole run, so that a test whose assertion
 * fails (cmocka longjmps out of it) leaves nothing to join.
 */
static void *watchdog_main(void *arg)
{
    (void)arg;
    unsigned long last = 0;
    int epoch = -1, idle_ms = 0;
    for (;;) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        const char *what = atomic_load(&watchdog_what);
        unsigned long cur = atomic_load(&progress);
        int e = atomic_load(&watchdog_epoch);
        if (what == NULL || cur != last || e != epoch) {
            last = cur;
            epoch = e;
            idle_ms = 0;
            continue;
        }
        idle_ms += 100;
        if (idle_ms >= 10000) {
            fprintf(stderr,
                    "WATCHDOG: %s made no progress for 10 s (progress count "
                    "%lu): a lost wakeup or a hang\n",
                    what, cur);
            abort();
        }
    }
    return NULL;
}

static void watchdog_start(const char *what)
{
    static int created;
    atomic_fetch_add(&watchdog_epoch, 1);
    atomic_store(&watchdog_what, what);
    if (!created) {
        pthread_t t;
        created = 1;
        assert_int_equal(0, pthread_create(&t, NULL, watchdog_main, NULL));
        pthread_detach(t);
    }
}

static void watchdog_end(void)
{
    atomic_store(&watchdog_what, NULL);
}

/* ------------------------------------------------------------------------ */

static uint64_t base_seed;

/* One direction of the duplex: its writer thread and its reader thread. */
struct dir {
    mempipe *wend; /* writes this direction */
    mempipe *rend; /* reads it */
    uint64_t total;
    uint64_t seed; /* pattern */
    uint64_t wrng, rrng;
    size_t maxchunk;
    struct tpark wpark, rpark;
    uint64_t received;
};

static size_t rand_len(uint64_t *rng, size_t max)
{
    /* Half the time small (down to 1 byte), half the time up to max, so
     * both the byte-at-a-time and the large-copy paths are busy. */
    uint64_t r = tu_rand(rng);
    size_t lim = (r & 1) ? max : (max < 16 ? max : 16);
    return 1 + (size_t)((r >> 8) % lim);
}

static void write_poll(struct dir *d, const unsigned char *buf, size_t len)
{
    mempipe_waker w = {tpark_wake, &d->wpark};
    size_t off = 0;
    while (off < len) {
        unsigned seen = tpark_prepare(&d->wpark);
        ssize_t n = mempipe_poll_write(d->wend, buf + off, len - off, &w);
        if (n == -EAGAIN) {
            tpark_wait(&d->wpark, seen);
            continue;
        }
        T_CHECK(n > 0 && (size_t)n <= len - off, "poll_write returned %zd", n);
        off += (size_t)n;
    }
}

static void write_pollv(struct dir *d, const unsigned char *buf, size_t len)
{
    mempipe_waker w = {tpark_wake, &d->wpark};
    size_t off = 0;
    while (off < len) {
        /* Cut the rest into 1..6 random slices, empty ones allowed. */
        struct iovec iov[6];
        int cnt = 1 + (int)(tu_rand(&d->wrng) % 6);
        size_t at = off;
        for (int i = 0; i < cnt; i++) {
            size_t left = len - at;
            size_t s =
                i == cnt - 1 ? left : (size_t)(tu_rand(&d->wrng) % (left + 1));
            iov[i].iov_base = (void *)(buf + at);
            iov[i].iov_len = s;
            at += s;
        }
        unsigned seen = tpark_prepare(&d->wpark);
        ssize_t n = mempipe_poll_writev(d->wend, iov, cnt, &w);
        if (n == -EAGAIN) {
            tpark_wait(&d->wpark, seen);
            continue;
        }
        T_CHECK(n > 0 && (size_t)n <= len - off, "poll_writev returned %zd", n);
        off += (size_t)n;
    }
}

static void *writer_main(void *arg)
{
    struct dir *d = arg;
    unsigned char *buf = malloc(d->maxchunk);
    T_CHECK(buf != NULL, "out of memory");
    uint64_t pos = 0;
    while (pos < d->total) {
        size_t len = rand_len(&d->wrng, d->maxchunk);
        if (len > d->total - pos)
            len = (size_t)(d->total - pos);
        tu_pattern(buf, len, pos, d->seed);
        switch (tu_rand(&d->wrng) % 3) {
        case 0:
            T_RC(len, mempipe_write(d->wend, buf, len)); /* R28 */
            break;
        case 1:
            write_poll(d, buf, len);
            break;
        default:
            write_pollv(d, buf, len);
            break;
        }
        pos += len;
        atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
    }
    /* Half-close: the reader drains, then reads EOF (R5, R17). */
    T_RC(0, mempipe_shutdown(d->wend));
    free(buf);
    return NULL;
}

static ssize_t read_poll(struct dir *d, unsigned char *buf, size_t len)
{
    mempipe_waker w = {tpark_wake, &d->rpark};
    for (;;) {
        unsigned seen = tpark_prepare(&d->rpark);
        ssize_t n = mempipe_poll_read(d->rend, buf, len, &w);
        if (n != -EAGAIN)
            return n;
        tpark_wait(&d->rpark, seen);
    }
}

static void *reader_main(void *arg)
{
    struct dir *d = arg;
    unsigned char *buf = malloc(d->maxchunk);
    T_CHECK(buf != NULL, "out of memory");
    uint64_t pos = 0;
    for (;;) {
        size_t len = rand_len(&d->rrng, d->maxchunk);
        ssize_t n = (tu_rand(&d->rrng) & 1) ? mempipe_read(d->rend, buf, len)
                                            : read_poll(d, buf, len);
        if (n == 0)
            break; /* EOF */
        T_CHECK(n > 0 && (size_t)n <= len, "read returned %zd for len %zu", n,
                len);
        T_CHECK(pos + (uint64_t)n <= d->total,
                "read past the end: %" PRIu64 " + %zd > %" PRIu64, pos, n,
                d->total);
        long bad = tu_check_pattern(buf, (size_t)n, pos, d->seed);
        T_CHECK(bad < 0, "byte %" PRIu64 " (seed %" PRIu64 ") is wrong",
                pos + (uint64_t)bad, base_seed);
        pos += (uint64_t)n;
        atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
    }
    /* EOF after every byte, every time after (R5). */
    T_RC(0, mempipe_read(d->rend, buf, 1));
    d->received = pos;
    free(buf);
    return NULL;
}

static void stress(size_t cap, uint64_t bytes)
{
    char what[64];
    snprintf(what, sizeof what, "stress cap %zu", cap);
    watchdog_start(what);

    mempipe *a = NULL, *b = NULL;
    assert_rc(0, mempipe_duplex(cap, &a, &b));
    struct dir dirs[2];
    size_t maxchunk = 4 * cap + 64;
    if (maxchunk > 256 * 1024)
        maxchunk = 256 * 1024;
    for (int i = 0; i < 2; i++) {
        struct dir *d = &dirs[i];
        memset(d, 0, sizeof *d);
        d->wend = i == 0 ? a : b;
        d->rend = i == 0 ? b : a;
        d->total = bytes;
        d->seed = base_seed ^ (cap * 0x100000001b3ull) ^ (uint64_t)(i + 1);
        d->wrng = d->seed * 3 + 1;
        d->rrng = d->seed * 5 + 7;
        d->maxchunk = maxchunk;
        tpark_init(&d->wpark);
        tpark_init(&d->rpark);
    }

    double t0 = tu_now();
    pthread_t th[4];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            0, pthread_create(&th[2 * i], NULL, writer_main, &dirs[i]));
        assert_int_equal(
            0, pthread_create(&th[2 * i + 1], NULL, reader_main, &dirs[i]));
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    double secs = tu_now() - t0;
    watchdog_end();

    for (int i = 0; i < 2; i++)
        assert_rc(bytes, dirs[i].received);
    mempipe_close(a);
    mempipe_close(b);
    /* Close waited for every running waker (R22): the parkers are free. */
    for (int i = 0; i < 2; i++) {
        tpark_destroy(&dirs[i].wpark);
        tpark_destroy(&dirs[i].rpark);
    }
    double moved = 2.0 * (double)bytes;
    printf("stress cap %6zu: %10" PRIu64 " bytes each way, %6.2f s, "
           "%8.1f MB/s (both ways)\n",
           cap, bytes, secs, moved / secs / 1e6);
    fflush(stdout);
}

static void test_R25_stress_both_ways_cap_1(void **state)
{
    (void)state;
    stress(1, SMALL_BYTES);
}

static void test_R25_stress_both_ways_cap_7(void **state)
{
    (void)state;
    stress(7, SMALL_BYTES);
}

static void test_R25_stress_both_ways_cap_4096(void **state)
{
    (void)state;
    stress(4096, LARGE_BYTES);
}

static void test_R25_stress_both_ways_cap_65536(void **state)
{
    (void)state;
    stress(65536, LARGE_BYTES);
}

int main(void)
{
    const char *env = getenv("MEMPIPE_SEED");
    base_seed = env != NULL ? strtoull(env, NULL, 0)
                            : (uint64_t)time(NULL) * 2654435761u;
    printf("stress seed %" PRIu64 " (replay with MEMPIPE_SEED=%" PRIu64 ")\n",
           base_seed, base_seed);
    fflush(stdout);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R25_stress_both_ways_cap_1),
        cmocka_unit_test(test_R25_stress_both_ways_cap_7),
        cmocka_unit_test(test_R25_stress_both_ways_cap_4096),
        cmocka_unit_test(test_R25_stress_both_ways_cap_65536),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
