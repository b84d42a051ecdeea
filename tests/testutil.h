/* SPDX-License-Identifier: MIT */
/* Shared helpers for the cmocka tests. */
#ifndef MEMPIPE_TESTUTIL_H
#define MEMPIPE_TESTUTIL_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "mempipe.h"

/*
 * Asserts a mempipe return value, printing both values and their
 * mempipe_strerror() names on failure.
 */
#define assert_rc(expected, actual)                                            \
    tu_assert_rc((long long)(expected), (long long)(actual), #actual,          \
                 __FILE__, __LINE__)
void tu_assert_rc(long long expected, long long actual, const char *expr,
                  const char *file, int line);

/* A waker that counts its calls. */
struct tu_counter {
    atomic_int calls;
};
void tu_counter_wake(void *ctx);
mempipe_waker tu_counter_waker(struct tu_counter *c);
int tu_calls(struct tu_counter *c);

/* A small deterministic PRNG (xorshift64*), one per thread. */
uint64_t tu_rand(uint64_t *state);

/* Fills buf with the stream bytes at positions pos..pos+len-1 of seed. */
void tu_pattern(unsigned char *buf, size_t len, uint64_t pos, uint64_t seed);
/* Checks buf against tu_pattern; returns the first bad index or -1. */
long tu_check_pattern(const unsigned char *buf, size_t len, uint64_t pos,
                      uint64_t seed);

/* Monotonic seconds. */
double tu_now(void);

/* Open descriptors of this process (entries of /proc/self/fd), or -errno. */
int tu_count_fds(void);

/* Writes n bytes into w in poll writes of up to 64, each accepted whole. */
void tu_fill(mempipe *w, size_t n);

/*
 * Twins: a mempipe duplex (with mempipe_fd asked on both ends) and a
 * non-blocking AF_UNIX socketpair, driven through the same steps, so that
 * a test can compare what each end's fd reports after every step
 * (sockfd_test, sockfd_glib_test). Steps, each on end e of both:
 *   TU_WR1    write one byte;
 *   TU_FILL   write until -EAGAIN or an error (full, whatever the
 *             capacity: the socket's is ~208 KiB);
 *   TU_DRAIN  read until -EAGAIN, EOF or an error (empty);
 *   TU_SHUT   shut down the writing side;
 *   TU_CLOSE  close;
 *   TU_ABORT  mempipe_abort, against SO_LINGER {1, 0} + close;
 *   TU_CLOSE_ERR  mempipe_close_with_error(-ETIMEDOUT), against close.
 * tu_twin_scripts holds sequences of {step, end} pairs ending in TU_END;
 * none shuts down an end over its full pipe, the one state where the fd
 * knowingly differs (SPEC R60).
 */
enum tu_twin_op {
    TU_END,
    TU_WR1,
    TU_FILL,
    TU_DRAIN,
    TU_SHUT,
    TU_CLOSE,
    TU_ABORT,
    TU_CLOSE_ERR
};
struct tu_twin {
    mempipe *m[2];
    int mfd[2]; /* mempipe_fd(m[e]) */
    int s[2];
    int open[2];
};
#define TU_TWIN_STEPS 8
extern const int tu_twin_scripts[][TU_TWIN_STEPS][2];
extern const size_t tu_twin_nscripts;
void tu_twin_open(struct tu_twin *x, size_t cap);
void tu_twin_step(struct tu_twin *x, int op, int e);
void tu_twin_close(struct tu_twin *x); /* the ends still open */

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

/*
 * A parking waker of the tests' own (independent of the library's parker):
 * seq counts wakes; a waiter sleeps on a condvar while seq still equals what
 * it saw before its poll call. Use: seen = tu_park_prepare(p); poll call with
 * the waker {tu_park_wake, p}; on -EAGAIN, tu_park_wait(p, seen).
 */
struct tu_park {
    atomic_uint seq;
    atomic_int sleepers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};
void tu_park_init(struct tu_park *p);
void tu_park_destroy(struct tu_park *p);
unsigned tu_park_prepare(struct tu_park *p);
void tu_park_wake(void *ctx);
void tu_park_wait(struct tu_park *p, unsigned seen);

/*
 * Watchdog: aborts with a message if tu_progress stands still for 10 s
 * between tu_watchdog_start(what) and tu_watchdog_end(). Tests bump
 * tu_progress whenever they complete a step.
 */
extern atomic_ulong tu_progress;
void tu_watchdog_start(const char *what);
void tu_watchdog_end(void);

/*
 * A blocking peer for echo tests: one thread writes `total` pattern bytes
 * (seeded, random chunk sizes) to `end` and shuts it down; another reads
 * from `end` until EOF and checks every byte against the pattern.
 * tu_peer_join() asserts that all `total` bytes came back intact.
 */
struct tu_peer {
    mempipe *end;
    uint64_t seed;
    size_t total;
    size_t read_back;
    long bad_at; /* first mismatching position, or -1 */
    pthread_t wt, rt;
};
void tu_peer_start(struct tu_peer *p, mempipe *end, size_t total,
                   uint64_t seed);
void tu_peer_join(struct tu_peer *p);

#endif
