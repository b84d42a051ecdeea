/* SPDX-License-Identifier: MIT */
/*
 * The one slow path of reads and writes (hook.h). Its steps, in order:
 *
 *   1. the direction: an end without a pipe that way is -EBADF;
 *   2. the budget (coop.h): a counted call on an exhausted thread yields;
 *   3. the pipe call: the inlined fast path when the end's fast pointer is
 *      set (the slow path was taken only for a budget or a tracer), else
 *      the pipe's general path, which sees what the fast path skips (R38);
 *   4. the probes (trace.h), and the budget's spend.
 *
 * A call is counted (may yield, spends one unit when it completes) when a
 * budget is set on this thread, the caller is not a blocking call, and it
 * has bytes to move: R8 and R14 say a zero-length call returns at once in
 * every state and wakes nothing, and a yield would call its waker.
 */
#include "hook.h"

#include "trace.h"

#include <errno.h>
#include <stdint.h>

/* Step 3: the call itself, on pipe p. */
static ssize_t run(struct mempipe__pipe *p, bool rd, bool fast,
                   const struct mempipe__io *io, const mempipe_waker *w)
{
    if (rd)
        return fast ? mempipe__pipe_read1(p, io->buf, io->len, w)
                    : mempipe__pipe_read(p, io->buf, io->len, w);
    if (fast && io->iovcnt == 1)
        return mempipe__pipe_write1(p, io->iov[0].iov_base, io->len, w);
    return mempipe__pipe_writev(p, io->iov, io->iovcnt, io->len, w);
}

ssize_t mempipe__hook_io(mempipe *end, const struct mempipe__io *io,
                         const mempipe_waker *w)
{
    bool rd = (io->op & MEMPIPE__OP_WRITE) == 0;
    struct mempipe__pipe *p = rd ? mempipe__end_rx(end) : mempipe__end_tx(end);
    if (p == NULL)
        return -EBADF; /* R30: a simplex end's wrong direction */
    /* Relaxed: as in the inline entries; a pointer cleared on another
     * thread is seen as soon as that thread's wake orders it. */
    bool fast = atomic_load_explicit(rd ? &end->rxf : &end->txf,
                                     memory_order_relaxed) != NULL;
    bool counted = mempipe__budget != 0 && io->len > 0 &&
                   (io->op & MEMPIPE__OP_BLOCKING) == 0;
    ssize_t n;
    if (counted && mempipe__coop_exhausted()) {
        n = mempipe__coop_yield(w); /* fires the read or write probe only */
        if (rd)
            MEMPIPE__PROBE3(read, end, io->len, n);
        else
            MEMPIPE__PROBE3(write, end, io->len, n);
        return n;
    }
    n = run(p, rd, fast, io, w);
    if (counted)
        mempipe__coop_spend(n);
    /* The slot's address only: after a waker ran, this call touches the
     * pipe no more (R32); the park probe fires only on -EAGAIN, when none
     * did. */
    if (rd)
        MEMPIPE__TRACE_IO(read, end, io->len, n, w, &p->rd);
    else
        MEMPIPE__TRACE_IO(write, end, io->len, n, w, &p->wr);
    return n;
}

ssize_t mempipe__hook_read(mempipe *end, void *buf, size_t len,
                           const mempipe_waker *w, unsigned how)
{
    struct mempipe__io io = {MEMPIPE__OP_READ | how, buf, NULL, 0, len};
    return mempipe__hook_io(end, &io, w);
}

ssize_t mempipe__hook_write(mempipe *end, const void *buf, size_t len,
                            const mempipe_waker *w, unsigned how)
{
    /* The cast drops const only for struct iovec's sake. */
    struct iovec one = {(void *)(uintptr_t)buf, len};
    struct mempipe__io io = {MEMPIPE__OP_WRITE | how, NULL, &one, 1, len};
    return mempipe__hook_io(end, &io, w);
}

ssize_t mempipe__hook_writev(mempipe *end, const struct iovec *iov, int iovcnt,
                             size_t total, const mempipe_waker *w, unsigned how)
{
    struct mempipe__io io = {MEMPIPE__OP_WRITE | how, NULL, iov, iovcnt, total};
    return mempipe__hook_io(end, &io, w);
}
