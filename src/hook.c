/* SPDX-License-Identifier: MIT */
/*
 * The one slow path of reads and writes (hook.h). Its steps, in order:
 *
 *   1. the direction: an end without a pipe that way is -EBADF;
 *   2. the yields: an injected pending (mempipe_faults.pending_every), then
 *      the budget (coop.h) for a counted call on an exhausted thread;
 *   3. an injected failure (fail_*_at), then the injected cap on the bytes;
 *   4. the pipe call: the inlined fast path when the end's fast pointer is
 *      set (the slow path was taken only for a budget or a tracer), else
 *      the pipe's general path, which sees what the fast path skips (R38);
 *   5. the statistics and the tap (feat.h), the probes (trace.h), and the
 *      budget's spend.
 *
 * A call is counted (may yield, spends one unit when it completes) when a
 * budget is set on this thread, the caller is not a blocking call, and it
 * has bytes to move: R8 and R14 say a zero-length call returns at once in
 * every state and wakes nothing, and a yield would call its waker. The
 * injected faults skip zero-length calls for the same reason.
 */
#include "hook.h"

#include "feat.h"
#include "hold.h"
#include "shm.h"
#include "trace.h"

#include <errno.h>
#include <stdint.h>

/* Step 4: the call itself, on pipe p, moving at most len bytes. */
static ssize_t run(struct mempipe__pipe *p, bool rd, bool fast,
                   const struct mempipe__io *io, size_t len,
                   const mempipe_waker *w)
{
    if (rd && fast && io->iovcnt == 1)
        return mempipe__pipe_read1(p, io->iov[0].iov_base, len, w);
    if (rd)
        return mempipe__pipe_readv(p, io->iov, len, w);
    if (fast && io->iovcnt == 1)
        return mempipe__pipe_write1(p, io->iov[0].iov_base, len, w);
    return mempipe__pipe_writev(p, io->iov, io->iovcnt, len, w);
}

/* Relaxed: statistics, read one field after another (mempipe.h). */
static void add(atomic_ullong *c, unsigned long long n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* A counter of one direction, which one thread writes (R26): no lock. */
static void bump(atomic_ullong *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/*
 * Whether this call would be pending: nothing to read and nothing to report
 * (EOF, an error, a reset), or no room and no close to report. Stable until
 * the call: this thread is the pipe's only reader (writer), so only the
 * other side can change it, and only towards "not pending".
 */
static bool would_wait(const struct mempipe__pipe *p, bool rd)
{
    unsigned fl = mempipe__pipe_flags(p);
    if (rd)
        return mempipe__pipe_readable(p) == 0 &&
               (fl & (MEMPIPE__WCLOSED | MEMPIPE__RCLOSED)) == 0;
    return fl == 0 && mempipe__pipe_writable(p) == 0;
}

/* This call's cap (mempipe_faults): none, fixed, or drawn from the seed. */
static size_t cap_of(struct mempipe__dirfeat *d)
{
    if (d->max == 0)
        return SIZE_MAX;
    if (d->rng == 0)
        return d->max;
    /* xorshift64*: the same seed gives the same caps on every machine. */
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return 1 + (size_t)((d->rng * 0x2545f4914f6cdd1dull) % d->max);
}

/* Shows the n bytes a call moved to the tap, slice by slice. */
static void show(const struct mempipe__feat *ft, bool rd,
                 const struct mempipe__io *io, size_t n)
{
    int how = rd ? MEMPIPE_TAP_READ : MEMPIPE_TAP_WRITE;
    for (int i = 0; i < io->iovcnt && n > 0; i++) {
        size_t k = io->iov[i].iov_len < n ? io->iov[i].iov_len : n;
        if (k > 0)
            ft->tap(ft->tap_ctx, how, io->iov[i].iov_base, k);
        n -= k;
    }
}

/* Step 5's record of a call that ran; `woke` is wakers run during it. */
static void record(struct mempipe__feat *ft, struct mempipe__dirfeat *d,
                   const struct mempipe__pipe *p, bool rd, bool blocking,
                   const struct mempipe__io *io, ssize_t n, unsigned long woke)
{
    add(&ft->wakes, woke);
    if (n == -EAGAIN) {
        bump(&d->pending);
        if (blocking)
            bump(&d->parks);
        return;
    }
    if (n <= 0)
        return;
    bump(&d->moved);
    if (!rd) {
        size_t used = mempipe__pipe_readable(p);
        if (used > atomic_load_explicit(&ft->peak, memory_order_relaxed))
            atomic_store_explicit(&ft->peak, used, memory_order_relaxed);
    }
    if (ft->tap != NULL)
        show(ft, rd, io, (size_t)n);
}

ssize_t mempipe__hook_io(mempipe *end, const struct mempipe__io *io,
                         const mempipe_waker *w)
{
    bool rd = (io->op & MEMPIPE__OP_WRITE) == 0;
    bool blocking = (io->op & MEMPIPE__OP_BLOCKING) != 0;
    struct mempipe__pipe *p = rd ? mempipe__end_rx(end) : mempipe__end_tx(end);
    if (p == NULL)
        return -EBADF; /* R30: a simplex end's wrong direction */
    /* Relaxed: as in the inline entries; a pointer cleared on another
     * thread is seen as soon as that thread's wake orders it. */
    bool fast = atomic_load_explicit(rd ? &end->rxf : &end->txf,
                                     memory_order_relaxed) != NULL;
    struct mempipe__feat *ft = fast ? NULL : mempipe__feat_of(end);
    struct mempipe__dirfeat *d = ft == NULL ? NULL : rd ? &ft->rd : &ft->wr;
    bool moves = io->len > 0;
    bool counted = mempipe__budget != 0 && moves && !blocking;
    ssize_t n;

    /* Step 2. */
    if (d != NULL && ft->pending_every != 0 && moves && !blocking &&
        (atomic_fetch_add_explicit(&ft->polls, 1, memory_order_relaxed) + 1) %
                ft->pending_every ==
            0) {
        add(&ft->faults, 1);
        bump(&d->pending);
        return mempipe__coop_yield(w);
    }
    if (counted && mempipe__coop_exhausted()) {
        n = mempipe__coop_yield(w); /* fires the read or write probe only */
        if (d != NULL)
            bump(&d->pending);
        if (rd)
            MEMPIPE__PROBE3(read, end, io->len, n);
        else
            MEMPIPE__PROBE3(write, end, io->len, n);
        return n;
    }
    /* Step 3. */
    size_t len = io->len;
    if (d != NULL && moves) {
        if (d->fail_at != 0 && !would_wait(p, rd) &&
            ++d->counted >= d->fail_at) {
            add(&ft->faults, 1);
            add(&ft->failed, 1);
            return ft->fail_err; /* changes nothing */
        }
        size_t cap = cap_of(d);
        if (cap < len) {
            len = cap;
            add(&ft->faults, 1);
        }
    }
    /* Step 4, in a hold frame (hold.h): a waker that run() runs may close
     * this very end, and step 5 still reads p and ft (R32). An shm end
     * first takes in what its peer process did (shm.h). */
    mempipe__end_pull(end);
    struct mempipe__hold frame;
    mempipe__hold_enter(&frame, p);
    unsigned long woke = mempipe__wakes_run;
    n = run(p, rd, fast, io, len, w);
    if (d != NULL) /* step 5 */
        record(ft, d, p, rd, blocking, io, n, mempipe__wakes_run - woke);
    if (counted)
        mempipe__coop_spend(n);
    /* The slot's address only: the park probe fires only on -EAGAIN, when
     * no waker ran. */
    if (rd)
        MEMPIPE__TRACE_IO(read, end, io->len, n, w, &p->rd);
    else
        MEMPIPE__TRACE_IO(write, end, io->len, n, w, &p->wr);
    mempipe__hold_leave(&frame);
    return n;
}

ssize_t mempipe__hook_read(mempipe *end, void *buf, size_t len,
                           const mempipe_waker *w, unsigned how)
{
    struct iovec one = {buf, len};
    struct mempipe__io io = {MEMPIPE__OP_READ | how, &one, 1, len};
    return mempipe__hook_io(end, &io, w);
}

ssize_t mempipe__hook_readv(mempipe *end, const struct iovec *iov, int iovcnt,
                            size_t total, const mempipe_waker *w, unsigned how)
{
    struct mempipe__io io = {MEMPIPE__OP_READ | how, iov, iovcnt, total};
    return mempipe__hook_io(end, &io, w);
}

ssize_t mempipe__hook_write(mempipe *end, const void *buf, size_t len,
                            const mempipe_waker *w, unsigned how)
{
    /* The cast drops const only for struct iovec's sake. */
    struct iovec one = {(void *)(uintptr_t)buf, len};
    struct mempipe__io io = {MEMPIPE__OP_WRITE | how, &one, 1, len};
    return mempipe__hook_io(end, &io, w);
}

ssize_t mempipe__hook_writev(mempipe *end, const struct iovec *iov, int iovcnt,
                             size_t total, const mempipe_waker *w, unsigned how)
{
    struct mempipe__io io = {MEMPIPE__OP_WRITE | how, iov, iovcnt, total};
    return mempipe__hook_io(end, &io, w);
}

/* ---- zero-copy windows (R62-R64): the same steps around their calls ----- */

/*
 * Steps 1-3 for a reserve (rd false) or a peek (rd true): returns 1 with
 * *max the byte cap to apply, or 0 with *rc the call's early answer.
 */
static int zc_begin(mempipe *end, bool rd, const mempipe_waker *w, size_t *max,
                    int *rc)
{
    struct mempipe__pipe *p = rd ? mempipe__end_rx(end) : mempipe__end_tx(end);
    if (p == NULL) {
        *rc = -EBADF;
        return 0;
    }
    bool fast = atomic_load_explicit(rd ? &end->rxf : &end->txf,
                                     memory_order_relaxed) != NULL;
    struct mempipe__feat *ft = fast ? NULL : mempipe__feat_of(end);
    struct mempipe__dirfeat *d = ft == NULL ? NULL : rd ? &ft->rd : &ft->wr;
    *max = SIZE_MAX;
    mempipe__end_pull(end);
    if (d != NULL && ft->pending_every != 0 &&
        (atomic_fetch_add_explicit(&ft->polls, 1, memory_order_relaxed) + 1) %
                ft->pending_every ==
            0) {
        add(&ft->faults, 1);
        bump(&d->pending);
        *rc = (int)mempipe__coop_yield(w);
        return 0;
    }
    if (mempipe__budget != 0 && mempipe__coop_exhausted()) {
        if (d != NULL)
            bump(&d->pending);
        *rc = (int)mempipe__coop_yield(w);
        return 0;
    }
    if (d != NULL) {
        if (d->fail_at != 0 && !would_wait(p, rd) &&
            ++d->counted >= d->fail_at) {
            add(&ft->faults, 1);
            add(&ft->failed, 1);
            *rc = ft->fail_err;
            return 0;
        }
        size_t cap = cap_of(d);
        if (cap != SIZE_MAX) {
            *max = cap;
            add(&ft->faults, 1);
        }
    }
    return 1;
}

/* Step 5 for a reserve or a peek: a pending one is counted; the budget,
 * which misuse does not spend (R66: it changes nothing). */
static void zc_end(mempipe *end, bool rd, int rc)
{
    struct mempipe__feat *ft = mempipe__feat_of(end);
    if (ft != NULL && rc == -EAGAIN)
        bump(rd ? &ft->rd.pending : &ft->wr.pending);
    if (mempipe__budget != 0)
        mempipe__coop_spend(rc);
}

int mempipe__hook_reserve(mempipe *end, size_t want, struct iovec iov[2],
                          const mempipe_waker *w)
{
    size_t max;
    int rc;
    if (mempipe__end_tx(end) != NULL && mempipe__end_tx(end)->ring.rsv != 0)
        return -EINVAL; /* R66 first: misuse meets no fault, no budget */
    if (!zc_begin(end, false, w, &max, &rc))
        return rc;
    rc = mempipe__pipe_reserve(mempipe__end_tx(end), want < max ? want : max,
                               iov, w);
    zc_end(end, false, rc);
    return rc;
}

int mempipe__hook_peek(mempipe *end, struct iovec iov[2],
                       const mempipe_waker *w)
{
    size_t max;
    int rc;
    if (!zc_begin(end, true, w, &max, &rc))
        return rc;
    rc = mempipe__pipe_peek(mempipe__end_rx(end), iov, max, w);
    zc_end(end, true, rc);
    return rc;
}

int mempipe__hook_commit(mempipe *end, size_t n)
{
    struct mempipe__pipe *p = mempipe__end_tx(end);
    struct mempipe__feat *ft = mempipe__feat_of(end);
    struct iovec spans[2];
    int k = 0;
    mempipe__end_pull(end);
    if (ft != NULL && ft->tap != NULL && n <= p->ring.rsv)
        k = mempipe__ring_reserved(&p->ring, n, spans);
    /* A waker the commit's wake runs may close this end (R32). */
    struct mempipe__hold frame;
    mempipe__hold_enter(&frame, p);
    ssize_t rc = mempipe__pipe_commit(p, n);
    if (ft != NULL && rc > 0) {
        struct mempipe__io io = {MEMPIPE__OP_WRITE, spans, k, (size_t)rc};
        record(ft, &ft->wr, p, false, false, &io, rc, 0);
    }
    MEMPIPE__PROBE3(write, end, n, rc);
    mempipe__hold_leave(&frame);
    return rc < 0 ? (int)rc : 0;
}

int mempipe__hook_consume(mempipe *end, size_t consumed, size_t examined)
{
    struct mempipe__pipe *p = mempipe__end_rx(end);
    struct mempipe__feat *ft = mempipe__feat_of(end);
    size_t peeked = p->ring.peeked;
    /* The tap sees the bytes before they are released: their segments may
     * be reused once consumed. Only for a consume that will succeed. */
    if (ft != NULL && ft->tap != NULL && consumed > 0 && peeked != 0 &&
        consumed <= examined && examined <= peeked) {
        struct iovec spans[2];
        int k = mempipe__ring_view(&p->ring, consumed, spans);
        struct mempipe__io io = {MEMPIPE__OP_READ, spans, k, consumed};
        show(ft, true, &io, consumed);
    }
    /* A waker the consume's wake runs may close this end (R32). */
    struct mempipe__hold frame;
    mempipe__hold_enter(&frame, p);
    int rc = mempipe__pipe_consume(p, consumed, examined);
    if (ft != NULL && rc == 0 && consumed > 0)
        bump(&ft->rd.moved);
    MEMPIPE__PROBE3(read, end, consumed, rc == 0 ? (ssize_t)consumed : rc);
    mempipe__hold_leave(&frame);
    return rc;
}
