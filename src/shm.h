/* SPDX-License-Identifier: MIT */
/*
 * shm: pipes whose rings live in a sealed memfd shared by two processes
 * (docs/shm.md has the design and the argument for each choice).
 *
 * Each process keeps an ordinary core (end.h) whose pipes are flat
 * (ring.h): the bytes are the shared area, and every flag and position a
 * pipe call reads is this process's own copy. What the peer process does
 * reaches those copies through its words in the shared header, which are
 * read here (mempipe__shm_pull), validated and applied: its positions raise
 * ours, its closes close ours as its own close would in-process. What this
 * process does reaches the peer through the shared words this side owns:
 * the ring's positions (stored by ring.c after every move), its closes
 * (published by the pipes' observer after every progress, with the wake of
 * any of the peer's waiters whose target is met), and what its waiters wait
 * for (the interest below). So pipe.c, block.c, hook.c and fd.c run
 * unchanged on an shm end; the seam is the end's core->shm and the pipes'
 * observer.
 *
 * Every word of the header has one writing side but `bell` (bumped by
 * both) and `attach` (one compare-and-swap); no loop of ours retries on a
 * word the peer writes; every offset into a data area comes from this
 * process's own positions, the peer's only ever give counts, checked.
 */
#ifndef MEMPIPE_SHM_H
#define MEMPIPE_SHM_H

#include "end.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define MEMPIPE__SHM_VERSION 1u
#define MEMPIPE__SHM_LINES   64u
/* The liveness slice: a waiting side checks that the peer lives this often
 * (R75: a death is seen within two of them). */
#define MEMPIPE__SHM_SLICE_MS 50

/* state[s]: side s's closes, in pipe.h's encoding (WCLOSED, RESET and the
 * reader's error for its write direction; RCLOSED and the writer's error
 * for its read direction), and GONE once its end is closed. */
#define MEMPIPE__SHM_GONE  8u
#define MEMPIPE__SHM_KNOWN (0xffffff00u | 0xfu)

/* want[s]: what side s's sleepers wait for. */
#define MEMPIPE__SHM_BLK_DATA   1u /* a blocking read */
#define MEMPIPE__SHM_BLK_SPACE  2u /* a blocking write */
#define MEMPIPE__SHM_NOTE_DATA  4u /* the notifier, for a waker or an fd */
#define MEMPIPE__SHM_NOTE_SPACE 8u

/* The futex bitset of a wake of bell[s]. */
#define MEMPIPE__SHM_B_DATA  1u
#define MEMPIPE__SHM_B_SPACE 2u
#define MEMPIPE__SHM_B_KICK  4u /* the notifier: look again, or stop */
#define MEMPIPE__SHM_B_ALL   7u

/* One side's block: 256 bytes; bell alone on its second line. */
struct mempipe__shm_side {
    _Alignas(256) atomic_uint state;
    atomic_uint want;
    atomic_int cpu; /* where side s began its last wait: the spin rule */
    uint32_t reserved;
    _Atomic uint64_t wend;         /* final write position, before WCLOSED */
    _Atomic uint64_t rx_target;    /* wake me when wpos >= this */
    _Atomic uint64_t tx_target;    /* wake me when rpos >= this */
    _Alignas(64) atomic_uint bell; /* side s's futex word */
};

/* One ring's positions, each on its own line. */
struct mempipe__shm_pos {
    _Alignas(256) _Atomic uint64_t wpos; /* the ring's writer's */
    _Alignas(64) _Atomic uint64_t rpos;  /* the ring's reader's */
};

/* The header page. 0x000-0x07f is written once by the creator before the
 * fd exists and copied by each side at create/attach, never read again. */
struct mempipe__shm_hdr {
    uint64_t magic; /* "mempipe\1" */
    uint32_t version;
    uint32_t nrings; /* 1 simplex, 2 duplex */
    uint32_t page;   /* the header's size */
    uint32_t lines;  /* MEMPIPE__SHM_LINES */
    uint64_t total;  /* bytes of the file */
    uint64_t off[2]; /* ring i's area */
    uint64_t size[2];
    uint64_t cap[2];
    int32_t pid0;                     /* informative (describe) */
    _Alignas(128) atomic_uint attach; /* 0 free, 1 taken: one CAS */
    int32_t pid1;
    struct mempipe__shm_side side[2]; /* at 0x100 */
    struct mempipe__shm_pos pos[2];   /* at 0x300 */
};

/* "mempipe\1" read as a little- or big-endian word, whichever this is. */
uint64_t mempipe__shm_magic(void);

/*
 * Any thread of an shm core's: brings this process's copies up to what the
 * peer published (its positions, its closes, its death once seen, a
 * protocol error), checking each word it reads. Wakes nobody: the callers
 * are about to look (a call's entry), or run the progress themselves (the
 * notifier). Lock-free; a no-op for two ends in one process.
 */
void mempipe__shm_pull(struct mempipe__shm *m);

/* Any call of an end: the pull, for an shm end only. */
static inline void mempipe__end_pull(const mempipe *e)
{
    if (MEMPIPE__UNLIKELY(e->core->shm != NULL))
        mempipe__shm_pull(e->core->shm);
}

/*
 * block.c, for an shm end: its blocking calls' waker for the reader (rd)
 * or writer role (it bumps the end's bell), the bell's value before a
 * round's poll, and the wait after a pending poll: spins while the peer
 * runs on another CPU, then publishes what the role waits for and sleeps
 * on the bell in slices of MEMPIPE__SHM_SLICE_MS, checking the peer's life
 * after each. Returns 0 (poll again) or -ETIMEDOUT once *dl (NULL: never)
 * passed. room: a writer's wait is for at least this much free space
 * (write_all waits for a page, not a byte; 0 elsewhere).
 */
void mempipe__shm_blk_waker(mempipe *e, bool rd, mempipe_waker *w);
unsigned mempipe__shm_blk_prepare(const mempipe *e);
int mempipe__shm_blk_wait(mempipe *e, bool rd, unsigned seen,
                          const struct timespec *dl, size_t room);

/* fd.c: an fd was made on shm end e; its notifier keeps it in step. */
void mempipe__shm_fd_made(mempipe *e);

/* end.c: end e of m's core closed (its pipes closed already): the peer
 * process is told the end is gone. Not for an end inherited by fork. */
void mempipe__shm_end_closed(struct mempipe__shm *m, const mempipe *e);

/* end.c, from the core's free: stops the notifier (before the pipes are
 * freed), then frees the rest (after). */
void mempipe__shm_stop(struct mempipe__shm *m);
void mempipe__shm_free(struct mempipe__shm *m);

/*
 * Tests only: 1 makes an attach in the creating process a second side of
 * its own, as another process's would be (its own core, every word through
 * the mapping, blocking calls on the bells), linked to the creator's only
 * so that each side's progress also runs the other's wakers at once, as
 * in-process pipes do (the rule tests' fourth kind). 0, the default: such
 * an attach shares the creator's core.
 */
extern int mempipe__shm_split;

/*
 * Tests only: 1 starts no notifier thread (in this process, for ends made
 * or attached while it is set): a stored waker or a watched fd then hears
 * of the peer's progress only from mempipe__shm_settle(). The rule tests'
 * kind whose peer is in a child process (tests/xproc.c) settles both
 * sides after every call, so that a waker has run, or not, by the time
 * the call returns, as with in-process pipes. 0, the default.
 */
extern int mempipe__shm_manual;

/* Tests only: what one pass of the notifier does for end e's side, on the
 * calling thread: the peer's words pulled, then every waker (and fd) they
 * satisfy run. Nothing for a non-shm end or one whose peer is here. A
 * waker run here may close e: the caller must not touch e after. */
void mempipe__shm_settle(mempipe *e);

/* describe.c: appends " shm side=S peer=<state>" as snprintf would;
 * returns the length it needs, or -1. */
int mempipe__shm_describe(const mempipe *e, char *buf, size_t room);

#endif
