/* SPDX-License-Identifier: MIT */
/* The parker of park.h: futex or mutex+condvar. */
#include "park.h"

#include "fence.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#if defined(MEMPIPE_USE_FUTEX)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define SLEEPING 1u

/*
 * Before sleeping, a parked thread spins for a while watching its word: when
 * the peer runs on another core, the wake usually comes within microseconds,
 * far sooner than a sleep and a futex wake-up round trip (tens of
 * microseconds on a virtual machine, each way). The spin is bounded in time
 * (SPIN_NS), so that it means the same on every CPU whatever PAUSE costs.
 *
 * When the peer shares this core, or is idle for long, spinning can only
 * waste the core, so the parker adapts: after MISS_LIMIT spins in a row that
 * ended in a sleep anyway, it sleeps at once, and probes with a spin only on
 * one park in PROBE_EVERY, to notice when the peer moves to another core.
 */
#define SPIN_NS     30000L
#define MISS_LIMIT  4u
#define PROBE_EVERY 64u

/* b - a in nanoseconds (a few seconds at most apart, or saturating). */
static long long diff_ns(const struct timespec *a, const struct timespec *b)
{
    return (long long)(b->tv_sec - a->tv_sec) * 1000000000LL +
           (b->tv_nsec - a->tv_nsec);
}

void mempipe__park_deadline(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Whether CLOCK_MONOTONIC has reached *deadline (NULL: never). */
static int passed(const struct timespec *deadline)
{
    if (deadline == NULL)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return diff_ns(deadline, &now) >= 0;
}

/*
 * The blocking calls are not cancellation points (SPEC R33): cancellation is
 * disabled while the thread sleeps, and only then (the fast path and the
 * spin pay nothing), and the caller's state is restored after. Otherwise a
 * cancellation acting inside pthread_cond_wait() would unwind with the
 * bucket mutex locked, and every parker hashing to that bucket would hang
 * on it; and a cancelled call could not report the bytes it moved. Both
 * builds do the same, so a pending cancellation acts at the thread's next
 * cancellation point after the call returns.
 */
static int sleep_begin(void)
{
    int old = PTHREAD_CANCEL_ENABLE;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    return old;
}

static void sleep_end(int old)
{
    pthread_setcancelstate(old, NULL);
}

static int woken(struct mempipe__parker *pk, unsigned seen)
{
    /* Acquire: as prepare(); the wake's effects are then visible. */
    return (atomic_load_explicit(&pk->seq, memory_order_acquire) & ~SLEEPING) !=
           seen;
}

/*
 * Returns 1 if a wake arrived while spinning. Only the parked thread. The
 * spin stops at the deadline too (NULL: none).
 */
static int spin_for_wake(struct mempipe__parker *pk, unsigned seen,
                         const struct timespec *deadline)
{
    if (pk->misses >= MISS_LIMIT && ++pk->misses % PROBE_EVERY != 0)
        return 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        for (int i = 0; i < 32; i++) {
            if (woken(pk, seen)) {
                pk->misses = 0;
                return 1;
            }
            mempipe__cpu_relax();
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (diff_ns(&t0, &t) < SPIN_NS &&
             (deadline == NULL || diff_ns(deadline, &t) < 0));
    if (pk->misses < MISS_LIMIT)
        pk->misses++;
    return 0;
}

int mempipe__park_init(struct mempipe__parker *pk)
{
    atomic_init(&pk->seq, 0);
    pk->misses = 0;
    return 0;
}

void mempipe__park_destroy(struct mempipe__parker *pk)
{
    (void)pk;
}

unsigned mempipe__park_prepare(struct mempipe__parker *pk)
{
    /* Acquire: pairs with the waker's release, so what the waking thread
     * published before waking is visible to the poll that follows. */
    return atomic_load_explicit(&pk->seq, memory_order_acquire) & ~SLEEPING;
}

static int sleep_until(struct mempipe__parker *pk, unsigned seen,
                       const struct timespec *deadline);

int mempipe__park_wait_until(struct mempipe__parker *pk, unsigned seen,
                             const struct timespec *deadline)
{
    if (spin_for_wake(pk, seen, deadline))
        return 0;
    if (passed(deadline))
        return -ETIMEDOUT;
    return sleep_until(pk, seen, deadline);
}

void mempipe__park_wait(struct mempipe__parker *pk, unsigned seen)
{
    (void)mempipe__park_wait_until(pk, seen, NULL);
}

#if defined(MEMPIPE_USE_FUTEX)

static void futex(atomic_uint *addr, int op, unsigned val)
{
    syscall(SYS_futex, (unsigned *)addr, op | FUTEX_PRIVATE_FLAG, val, NULL,
            NULL, 0);
}

/* After the spin: sleeps until woken or the deadline (per build, below). */
static int sleep_until(struct mempipe__parker *pk, unsigned seen,
                       const struct timespec *deadline)
{
    unsigned cur = atomic_load_explicit(&pk->seq, memory_order_acquire);
    if ((cur & ~SLEEPING) != seen)
        return 0; /* woken since prepare() */
    /* Announce the sleep; fails if a wake changes the count meanwhile. The
     * bit may already be set by an earlier sleep that ended spuriously
     * (EINTR, a timeout), without a wake to clear it. */
    if (!(cur & SLEEPING) && !atomic_compare_exchange_strong_explicit(
                                 &pk->seq, &cur, seen | SLEEPING,
                                 memory_order_acq_rel, memory_order_acquire))
        return 0;
    /* The kernel re-checks the word: a wake after the CAS makes it return.
     * A signal makes it return too (EINTR, whatever SA_RESTART says): the
     * caller then polls again and parks again, so a blocking call never
     * returns -EINTR and loses nothing (SPEC R35). The deadline is
     * absolute on CLOCK_MONOTONIC (FUTEX_WAIT_BITSET's clock unless told
     * otherwise), so waits after a signal do not stretch it. */
    int old = sleep_begin();
    syscall(SYS_futex, (unsigned *)&pk->seq,
            FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, seen | SLEEPING, deadline,
            NULL, FUTEX_BITSET_MATCH_ANY);
    sleep_end(old);
    /* A timeout is told by the clock, not the errno: a wake that lands
     * with it is seen by the caller's next prepare() all the same. */
    return passed(deadline) ? -ETIMEDOUT : 0;
}

unsigned mempipe__park_bucket(const struct mempipe__parker *pk)
{
    (void)pk; /* no shared state between parkers */
    return 0;
}

void mempipe__park_wake(void *arg)
{
    struct mempipe__parker *pk = arg;
    unsigned cur = atomic_load_explicit(&pk->seq, memory_order_relaxed);
    unsigned next;
    do {
        next = (cur + 2) & ~SLEEPING;
        /* Release: pairs with prepare()'s acquire. */
    } while (!atomic_compare_exchange_weak_explicit(
        &pk->seq, &cur, next, memory_order_acq_rel, memory_order_relaxed));
    if (cur & SLEEPING) /* the syscall only when somebody sleeps */
        futex(&pk->seq, FUTEX_WAKE, 1);
}

#else

#include <stdint.h>

/*
 * The parking lot: sleepers whose parkers hash to one bucket share its mutex
 * and condvar; a wake broadcasts, and each sleeper re-checks its own word.
 * Collisions only cost a spurious wake-up.
 */
#define LOT_SIZE 64
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
} lot[LOT_SIZE];
static pthread_once_t lot_once = PTHREAD_ONCE_INIT;

static void lot_make(void)
{
    /* Timed waits measure CLOCK_MONOTONIC: a change of the wall clock
     * neither stretches nor cuts them. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    for (int i = 0; i < LOT_SIZE; i++) {
        pthread_mutex_init(&lot[i].mu, NULL);
        pthread_cond_init(&lot[i].cv, &attr);
    }
    pthread_condattr_destroy(&attr);
}

/*
 * In a child of fork(), a bucket's mutex may be locked by a parent thread
 * that the child does not have, and its condvar may count sleepers that are
 * not there: made anew (not destroyed: destroying a locked mutex is
 * undefined), so the child's new pipes can block (SPEC R34). Parkers of
 * inherited ends are never used in the child.
 */
static void lot_init(void)
{
    lot_make();
    pthread_atfork(NULL, NULL, lot_make);
}

static unsigned bucket(const struct mempipe__parker *pk)
{
    uintptr_t a = (uintptr_t)pk;
    return (unsigned)((a >> 4) ^ (a >> 12)) % LOT_SIZE;
}

unsigned mempipe__park_bucket(const struct mempipe__parker *pk)
{
    return bucket(pk);
}

/* After the spin: sleeps until woken or the deadline (per build, below). */
static int sleep_until(struct mempipe__parker *pk, unsigned seen,
                       const struct timespec *deadline)
{
    pthread_once(&lot_once, lot_init);
    unsigned b = bucket(pk);
    int rc = 0;
    /* pthread_cond_wait() is a cancellation point: see sleep_begin(). It
     * never fails with EINTR; a signal handler runs and the wait goes on.
     * The condvars run on CLOCK_MONOTONIC (lot_make), as the deadline. */
    int old = sleep_begin();
    pthread_mutex_lock(&lot[b].mu);
    while ((atomic_load_explicit(&pk->seq, memory_order_acquire) & ~SLEEPING) ==
           seen) {
        if (deadline == NULL) {
            pthread_cond_wait(&lot[b].cv, &lot[b].mu);
        } else if (pthread_cond_timedwait(&lot[b].cv, &lot[b].mu, deadline) ==
                   ETIMEDOUT) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&lot[b].mu);
    sleep_end(old);
    return rc;
}

void mempipe__park_wake(void *arg)
{
    struct mempipe__parker *pk = arg;
    pthread_once(&lot_once, lot_init);
    unsigned b = bucket(pk);
    /* Under the bucket's mutex, so a sleeper cannot miss it between its
     * check and its wait. Release: pairs with prepare()'s acquire. */
    pthread_mutex_lock(&lot[b].mu);
    atomic_fetch_add_explicit(&pk->seq, 2, memory_order_release);
    pthread_cond_broadcast(&lot[b].cv);
    pthread_mutex_unlock(&lot[b].mu);
}

#endif
