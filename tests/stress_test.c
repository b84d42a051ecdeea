/* SPDX-License-Identifier: MIT */
/*
 * Threaded stress: data flows both ways at once through one duplex, four
 * threads per duplex (a writer and a reader on each end), with every byte
 * checked against tu_pattern. The calls are mixed at random per chunk:
 * blocking mempipe_write/mempipe_read, poll calls that park on the tests'
 * waker tu_park (a condvar parker, independent of the library's own), and
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
    struct tu_park wpark, rpark;
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
    mempipe_waker w = {tu_park_wake, &d->wpark};
    size_t off = 0;
    while (off < len) {
        unsigned seen = tu_park_prepare(&d->wpark);
        ssize_t n = mempipe_poll_write(d->wend, buf + off, len - off, &w);
        if (n == -EAGAIN) {
            tu_park_wait(&d->wpark, seen);
            continue;
        }
        T_CHECK(n > 0 && (size_t)n <= len - off, "poll_write returned %zd", n);
        off += (size_t)n;
    }
}

static void write_pollv(struct dir *d, const unsigned char *buf, size_t len)
{
    mempipe_waker w = {tu_park_wake, &d->wpark};
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
        unsigned seen = tu_park_prepare(&d->wpark);
        ssize_t n = mempipe_poll_writev(d->wend, iov, cnt, &w);
        if (n == -EAGAIN) {
            tu_park_wait(&d->wpark, seen);
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
        atomic_fetch_add_explicit(&tu_progress, 1, memory_order_relaxed);
    }
    /* Half-close: the reader drains, then reads EOF (R5, R17). */
    T_RC(0, mempipe_shutdown(d->wend));
    free(buf);
    return NULL;
}

static ssize_t read_poll(struct dir *d, unsigned char *buf, size_t len)
{
    mempipe_waker w = {tu_park_wake, &d->rpark};
    for (;;) {
        unsigned seen = tu_park_prepare(&d->rpark);
        ssize_t n = mempipe_poll_read(d->rend, buf, len, &w);
        if (n != -EAGAIN)
            return n;
        tu_park_wait(&d->rpark, seen);
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
        atomic_fetch_add_explicit(&tu_progress, 1, memory_order_relaxed);
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
    tu_watchdog_start(what);

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
        tu_park_init(&d->wpark);
        tu_park_init(&d->rpark);
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
    tu_watchdog_end();

    for (int i = 0; i < 2; i++)
        assert_rc(bytes, dirs[i].received);
    mempipe_close(a);
    mempipe_close(b);
    /* Close waited for every running waker (R22): the parkers are free. */
    for (int i = 0; i < 2; i++) {
        tu_park_destroy(&dirs[i].wpark);
        tu_park_destroy(&dirs[i].rpark);
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
