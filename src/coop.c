/* SPDX-License-Identifier: MIT */
/*
 * The cooperative budget. See coop.h for the design, mempipe.h for the
 * contract; hook.c applies it in the one slow path.
 *
 * Accounting, when a budget is set, per call that passed its argument checks:
 *   - a blocking call's round (block.c says so: MEMPIPE__OP_BLOCKING): runs
 *     as if unlimited, spends 0;
 *   - a zero-length call (len 0, or slices that are all empty): runs as if
 *     unlimited, spends 0 and never yields, because SPEC R8/R14 say it
 *     returns at once in every state and wakes nothing (a yield would call
 *     the waker);
 *   - budget exhausted: yields (-EAGAIN, waker called at once), spends 0;
 *   - otherwise the pipe runs the call; -EAGAIN (empty or full pipe, waker
 *     stored) spends 0, and so does misuse (-EBUSY while a zero-copy window
 *     is open, -EINVAL: R66, it changes nothing); anything else (bytes, EOF,
 *     -EPIPE, -ENOMEM) is a completion and spends 1.
 */
#include "coop.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

_Thread_local unsigned mempipe__budget MEMPIPE__TLS_IE = 0;

void mempipe_budget_set(unsigned ops)
{
    /* Stored as 1 + ops; UINT_MAX ops saturates to UINT_MAX - 1, so that
     * mempipe_budget_left() keeps UINT_MAX for "unlimited". */
    if (ops == 0)
        mempipe__budget = 0;
    else
        mempipe__budget = ops == UINT_MAX ? UINT_MAX : ops + 1;
}

unsigned mempipe_budget_left(void)
{
    return mempipe__budget == 0 ? UINT_MAX : mempipe__budget - 1;
}

/*
 * Yields: the waker is called here, on the calling thread, before the call
 * returns -EAGAIN, so an executor re-queues the task behind the others. It
 * is not stored: no later pipe event calls it.
 */
ssize_t mempipe__coop_yield(const mempipe_waker *w)
{
    if (w != NULL)
        w->wake(w->ctx);
    return -EAGAIN;
}

/*
 * A completed call spends one unit. The budget is read again after the
 * call: a waker that the call ran on this thread may have polled (and
 * spent) or set a new budget meanwhile. Never below 1 (exhausted), never
 * from 0 (unlimited) to anything else.
 */
ssize_t mempipe__coop_spend(ssize_t n)
{
    /* Pending, and misuse (-EBUSY while a zero-copy window is open, R66:
     * it changes nothing), spend nothing. */
    if (n != -EAGAIN && n != -EBUSY && n != -EINVAL && mempipe__budget > 1)
        mempipe__budget--;
    return n;
}
