/* SPDX-License-Identifier: MIT */
/*
 * parker: puts one thread to sleep until a waker fires. The parker's wake
 * function is an ordinary mempipe_waker, so the blocking front-end is built
 * on the poll API alone.
 *
 * Protocol: seen = prepare(); poll(..., waker); if -EAGAIN: wait(seen).
 * Any wake after prepare() makes wait() return at once, so a wake that lands
 * between the poll and the sleep is never lost; spurious returns are
 * possible and the caller polls again.
 *
 * Futex on Linux (MEMPIPE_USE_FUTEX), a pthread mutex+condvar elsewhere or
 * when the option is off; both are built and tested. The condvar variant
 * keeps no mutex in the parker: sleepers share a small static table of
 * mutex+condvar buckets hashed by parker address (a "parking lot"), so a
 * parker costs 8 bytes either way and an idle pipe stays small.
 */
#ifndef MEMPIPE_PARK_H
#define MEMPIPE_PARK_H

#include <stdatomic.h>
#include <time.h>

struct mempipe__parker {
    /* Bit 0: a thread sleeps or is about to; bits 1..: wake count. */
    atomic_uint seq;
    /* Spins in a row that ended in a sleep anyway (park.c); only the parked
     * thread uses it (one reader and one writer thread per end, R26). */
    unsigned misses;
};

int mempipe__park_init(struct mempipe__parker *pk);
void mempipe__park_destroy(struct mempipe__parker *pk);
unsigned mempipe__park_prepare(struct mempipe__parker *pk);
void mempipe__park_wait(struct mempipe__parker *pk, unsigned seen);
/*
 * As mempipe__park_wait(), but returns -ETIMEDOUT instead of sleeping on
 * once CLOCK_MONOTONIC reaches *deadline (NULL: never), else 0 (woken, or
 * spuriously: poll again). A wake that races the deadline is never lost:
 * it bumps the count, which the caller's next prepare() sees.
 */
int mempipe__park_wait_until(struct mempipe__parker *pk, unsigned seen,
                             const struct timespec *deadline);
/* *ts = now + ms on CLOCK_MONOTONIC (ms >= 0). */
void mempipe__park_deadline(struct timespec *ts, int ms);
/* The waker function; ctx is the parker. Any thread. */
void mempipe__park_wake(void *pk);
/*
 * For tests: the parking-lot bucket whose mutex and condvar the parker
 * sleeps on (condvar build); 0 for every parker in the futex build.
 */
unsigned mempipe__park_bucket(const struct mempipe__parker *pk);

#endif
