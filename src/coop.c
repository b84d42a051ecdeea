/* SPDX-License-Identifier: MIT */
/*
 * The cooperative budget, and the slow path of the poll calls, taken when
 * this thread has a budget or a tracer is attached. See coop.h for the
 * design, mempipe.h for the contract, trace.h for the probes.
 *
 * Accounting, when a budget is set, per call that passed its argument checks:
 *   - a blocking call's poll (parker waker): runs as if unlimited, spends 0;
 *   - a zero-length call (len 0, or slices that are all empty): runs as if
 *     unlimited, spends 0 and never yields, because SPEC R8/R14 say it
 *     returns at once in every state and wakes nothing (a yield would call
 *     the waker);
 *   - budget exhausted: yields (-EAGAIN, waker called at once), spends 0;
 *   - otherwise the pipe runs the call; -EAGAIN (empty or full pipe, waker
 *     stored) spends 0, anything else (bytes, EOF, -EPIPE, -ENOMEM) is a
 *     completion and spends 1.
 */
#include "coop.h"

#include "park.h"
#include "trace.h"

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

static bool exhausted(void)
{
    return mempipe__budget == 1;
}

/*
 * Only block.c passes the parker's wake function, and users cannot name it:
 * a blocking call, which must sleep rather than spin on yields.
 */
static bool blocking(const mempipe_waker *w)
{
    return w != NULL && w->wake == mempipe__park_wake;
}

/*
 * Yields: the waker is called here, on the calling thread, before the call
 * returns -EAGAIN, so an executor re-queues the task behind the others. It
 * is not stored: no later pipe event calls it.
 */
static ssize_t yield(const mempipe_waker *w)
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
static ssize_t spend(ssize_t n)
{
    if (n != -EAGAIN && mempipe__budget > 1)
        mempipe__budget--;
    return n;
}

/*
 * The executor's case: a budget, no tracer, not a blocking call, some bytes
 * to move. Tested first, and kept apart from the general case, so that
 * nothing but the result has to survive the pipe call (no probe arguments,
 * no flags).
 */
static bool lean(size_t len, const mempipe_waker *w)
{
    return MEMPIPE__LIKELY(MEMPIPE__TRACED() == 0 && len > 0 && !blocking(w));
}

/* Whether the budget applies: set, not a blocking call, not zero-length. */
static bool budgeted(size_t len, const mempipe_waker *w)
{
    return mempipe__budget != 0 && len > 0 && !blocking(w);
}

/*
 * Each slow call: the lean case; then the general one, for a tracer (fire
 * the probes), a blocking or a zero-length call (no budget), or a mix.
 */
ssize_t mempipe__coop_read(mempipe *end, void *buf, size_t len,
                           const mempipe_waker *w)
{
    if (lean(len, w))
        return exhausted() ? yield(w)
                           : spend(mempipe__pipe_read1(end->rx, buf, len, w));
    bool counted = budgeted(len, w);
    ssize_t n;
    if (counted && exhausted()) {
        n = yield(w);
        MEMPIPE__PROBE3(read, end, len, n);
        return n;
    }
    n = mempipe__pipe_read1(end->rx, buf, len, w);
    MEMPIPE__TRACE_IO(read, end, len, n, w, &end->rx->rd);
    return counted ? spend(n) : n;
}

ssize_t mempipe__coop_write(mempipe *end, const void *buf, size_t len,
                            const mempipe_waker *w)
{
    if (lean(len, w))
        return exhausted() ? yield(w)
                           : spend(mempipe__pipe_write1(end->tx, buf, len, w));
    bool counted = budgeted(len, w);
    ssize_t n;
    if (counted && exhausted()) {
        n = yield(w);
        MEMPIPE__PROBE3(write, end, len, n);
        return n;
    }
    n = mempipe__pipe_write1(end->tx, buf, len, w);
    MEMPIPE__TRACE_IO(write, end, len, n, w, &end->tx->wr);
    return counted ? spend(n) : n;
}

ssize_t mempipe__coop_writev(mempipe *end, const struct iovec *iov, int iovcnt,
                             size_t total, const mempipe_waker *w)
{
    if (lean(total, w))
        return exhausted() ? yield(w)
                           : spend(mempipe__pipe_writev(end->tx, iov, iovcnt,
                                                        total, w));
    bool counted = budgeted(total, w);
    ssize_t n;
    if (counted && exhausted()) {
        n = yield(w);
        MEMPIPE__PROBE3(write, end, total, n);
        return n;
    }
    n = mempipe__pipe_writev(end->tx, iov, iovcnt, total, w);
    MEMPIPE__TRACE_IO(write, end, total, n, w, &end->tx->wr);
    return counted ? spend(n) : n;
}
