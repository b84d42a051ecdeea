/* The parker of park.h: futex or mutex+condvar. */
#include "park.h"

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
 * microseconds on a virtual machine). The budget adapts per parker: it
 * doubles when spinning caught the wake and halves when it did not, so two
 * threads sharing one core, where spinning can never succeed, soon spin
 * almost not at all.
 */
#define SPIN_MIN   4u
#define SPIN_START 64u
#define SPIN_MAX   1024u

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Returns 1 if a wake arrived while spinning. */
static int spin_for_wake(struct mempipe__parker *pk, unsigned seen)
{
    unsigned limit = pk->spin;
    for (unsigned i = 0; i < limit; i++) {
        /* Acquire: as prepare(); the wake's effects are then visible. */
        if ((atomic_load_explicit(&pk->seq, memory_order_acquire) &
             ~SLEEPING) != seen) {
            pk->spin = limit * 2 > SPIN_MAX ? SPIN_MAX : limit * 2;
            return 1;
        }
        cpu_relax();
    }
    pk->spin = limit / 2 < SPIN_MIN ? SPIN_MIN : limit / 2;
    return 0;
}

int mempipe__park_init(struct mempipe__parker *pk)
{
    atomic_init(&pk->seq, 0);
    pk->spin = SPIN_START;
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

#if defined(MEMPIPE_USE_FUTEX)

static void futex(atomic_uint *addr, int op, unsigned val)
{
    syscall(SYS_futex, (unsigned *)addr, op | FUTEX_PRIVATE_FLAG, val, NULL,
            NULL, 0);
}

void mempipe__park_wait(struct mempipe__parker *pk, unsigned seen)
{
    if (spin_for_wake(pk, seen))
        return;
    unsigned cur = atomic_load_explicit(&pk->seq, memory_order_acquire);
    if ((cur & ~SLEEPING) != seen)
        return; /* woken since prepare() */
    /* Announce the sleep; fails if a wake changes the count meanwhile. The
     * bit may already be set by an earlier sleep that ended spuriously
     * (EINTR), without a wake to clear it. */
    if (!(cur & SLEEPING) && !atomic_compare_exchange_strong_explicit(
                                 &pk->seq, &cur, seen | SLEEPING,
                                 memory_order_acq_rel, memory_order_acquire))
        return;
    /* The kernel re-checks the word: a wake after the CAS makes it return. */
    futex(&pk->seq, FUTEX_WAIT, seen | SLEEPING);
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

#include <pthread.h>
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

static void lot_init(void)
{
    for (int i = 0; i < LOT_SIZE; i++) {
        pthread_mutex_init(&lot[i].mu, NULL);
        pthread_cond_init(&lot[i].cv, NULL);
    }
}

static unsigned bucket(const struct mempipe__parker *pk)
{
    uintptr_t a = (uintptr_t)pk;
    return (unsigned)((a >> 4) ^ (a >> 12)) % LOT_SIZE;
}

void mempipe__park_wait(struct mempipe__parker *pk, unsigned seen)
{
    if (spin_for_wake(pk, seen))
        return;
    pthread_once(&lot_once, lot_init);
    unsigned b = bucket(pk);
    pthread_mutex_lock(&lot[b].mu);
    while ((atomic_load_explicit(&pk->seq, memory_order_acquire) & ~SLEEPING) ==
           seen)
        pthread_cond_wait(&lot[b].cv, &lot[b].mu);
    pthread_mutex_unlock(&lot[b].mu);
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
