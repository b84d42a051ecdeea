/* SPDX-License-Identifier: MIT */
/*
 * The single-waiter slot. A waker is two pointers, which no portable C11
 * atomic swaps at once, so the slot is a tiny state machine instead:
 *
 *   EMPTY --store--> BUSY --> FULL --take--> BUSY --> EMPTY
 *
 * BUSY is held only while two pointers are copied, never while a waker runs;
 * whoever meets BUSY spins for those few instructions. `calling` counts the
 * takers that have copied the waker out and not yet returned from it, so that
 * close can wait for them (R22: no waker runs after its end's close).
 */
#include "waker.h"

#include "fence.h"

#include "trace.h"

#include <sched.h>

enum { SLOT_EMPTY = 0, SLOT_FULL = 1, SLOT_BUSY = 2 }; /* FULL: see waker.h */

/*
 * The slots whose wakers this thread is running right now, innermost first:
 * a list of frames on this thread's stack, so any nesting depth is tracked
 * and mempipe__slot_drop on this thread never waits for itself.
 */
struct calling_frame {
    const struct mempipe__slot *slot;
    struct calling_frame *outer;
};
static _Thread_local struct calling_frame *calling_now;

_Thread_local unsigned long mempipe__wakes_run;

void mempipe__slot_init(struct mempipe__slot *s)
{
    atomic_init(&s->state, SLOT_EMPTY);
    atomic_init(&s->calling, 0);
    s->w.wake = NULL;
    s->w.ctx = NULL;
}

/* Spins until this thread holds BUSY; returns the state it replaced. */
static unsigned lock_slot(struct mempipe__slot *s)
{
    unsigned cur = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        if (cur == SLOT_BUSY) {
            mempipe__cpu_relax();
            cur = atomic_load_explicit(&s->state, memory_order_relaxed);
            continue;
        }
        /* Acquire: pairs with the release that ended the previous BUSY, so
         * the waker fields and `calling` written under it are visible. */
        if (atomic_compare_exchange_weak_explicit(&s->state, &cur, SLOT_BUSY,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return cur;
    }
}

void mempipe__slot_store(struct mempipe__slot *s, const mempipe_waker *w)
{
    lock_slot(s);
    s->w = *w;
    /* Release: the fields are complete before a taker sees FULL. The caller's
     * following seq_cst fence orders this store before its re-check. */
    atomic_store_explicit(&s->state, SLOT_FULL, memory_order_release);
}

void mempipe__slot_cancel(struct mempipe__slot *s)
{
    unsigned cur = SLOT_FULL;
    /* Only FULL -> EMPTY: if a taker holds it, the taker will call it. */
    atomic_compare_exchange_strong_explicit(&s->state, &cur, SLOT_EMPTY,
                                            memory_order_relaxed,
                                            memory_order_relaxed);
}

void mempipe__slot_wake(struct mempipe__slot *s)
{
    /*
     * Relaxed is enough: the caller's seq_cst fence already ordered its
     * progress before this load. BUSY here means either another taker (it
     * will call the waker) or an owner mid-store (its fence comes after our
     * fence in the total order, so its re-check sees our progress): in both
     * cases we have nothing to do.
     */
    unsigned cur = atomic_load_explicit(&s->state, memory_order_relaxed);
    if (cur != SLOT_FULL)
        return;
    if (!atomic_compare_exchange_strong_explicit(&s->state, &cur, SLOT_BUSY,
                                                 memory_order_acquire,
                                                 memory_order_relaxed))
        return;
    mempipe_waker w = s->w;
    atomic_fetch_add_explicit(&s->calling, 1, memory_order_relaxed);
    /* Release: the copy and the `calling` increment are visible to the next
     * holder of BUSY (a dropper checks `calling` after taking BUSY). */
    atomic_store_explicit(&s->state, SLOT_EMPTY, memory_order_release);

    MEMPIPE__PROBE3(wake, s, w.wake, w.ctx); /* trace.h: slot, not end */
    struct calling_frame frame = {s, calling_now};
    calling_now = &frame;
    mempipe__wakes_run++;
    w.wake(w.ctx);
    calling_now = frame.outer;
    /* Release: the waker's effects happen before a dropper's return. */
    atomic_fetch_sub_explicit(&s->calling, 1, memory_order_release);
}

void mempipe__slot_drop(struct mempipe__slot *s)
{
    lock_slot(s);
    s->w.wake = NULL;
    s->w.ctx = NULL;
    atomic_store_explicit(&s->state, SLOT_EMPTY, memory_order_release);

    unsigned mine = 0;
    for (const struct calling_frame *f = calling_now; f != NULL; f = f->outer)
        mine += f->slot == s;
    /* Acquire: pairs with the takers' release decrement. */
    while (atomic_load_explicit(&s->calling, memory_order_acquire) > mine)
        sched_yield();
}
