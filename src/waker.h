/* SPDX-License-Identifier: MIT */
/*
 * waker slot: holds at most one waker for one role (reader or writer) of one
 * pipe. The role's owner stores into it; any thread that makes progress takes
 * it out and calls it, at most once per store.
 *
 * Lost-wakeup protocol (DESIGN.md): the waiter stores its waker, issues a
 * full fence, then re-checks the pipe; the thread making progress publishes
 * its change, issues a full fence, then takes the waker. With both fences in
 * the single total order of seq_cst fences, at least one side sees the
 * other's store: either the waiter sees the progress and does not wait, or
 * the progressing side sees the waker and calls it.
 */
#ifndef MEMPIPE_WAKER_H
#define MEMPIPE_WAKER_H

#include "mempipe.h"

#include <stdatomic.h>
#include <stdbool.h>

struct mempipe__slot {
    atomic_uint state;   /* SLOT_EMPTY, SLOT_FULL or SLOT_BUSY */
    atomic_uint calling; /* takers between take and the waker's return */
    mempipe_waker w;     /* valid while FULL; guarded by BUSY */
};

void mempipe__slot_init(struct mempipe__slot *s);

/*
 * Owner: stores w, replacing (never calling) what was there. The caller then
 * issues a seq_cst fence and re-checks the condition it waits for.
 */
void mempipe__slot_store(struct mempipe__slot *s, const mempipe_waker *w);

/*
 * Owner: withdraws its own stored waker without calling it (the re-check
 * found progress). If a taker got it first, that taker calls it: a spurious
 * wake, which wakers must tolerate.
 */
void mempipe__slot_cancel(struct mempipe__slot *s);

/*
 * Any thread, after publishing progress and a seq_cst fence: takes the
 * waker, if one is stored, and calls it outside every lock. The fast path is
 * one relaxed load.
 */
void mempipe__slot_wake(struct mempipe__slot *s);

/* Wakers this thread has run (mempipe__slot_wake): the stats' wakes. */
extern _Thread_local unsigned long mempipe__wakes_run;

/*
 * Owner, when its end closes: drops the stored waker and waits until no
 * other thread is still running a waker taken from this slot (not waiting
 * for a call running on this very thread, so a waker may close its own end).
 */
void mempipe__slot_drop(struct mempipe__slot *s);

/*
 * Any thread: whether a waker may be stored (a snapshot). A relaxed load:
 * the caller's seq_cst fence orders it (see mempipe__slot_wake).
 */
static inline bool mempipe__slot_full(const struct mempipe__slot *s)
{
    return atomic_load_explicit((atomic_uint *)&s->state,
                                memory_order_relaxed) == 1u /* SLOT_FULL */;
}

#endif
