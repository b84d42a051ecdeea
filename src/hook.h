/* SPDX-License-Identifier: MIT */
/*
 * hook: the one interposer. Every read and write of an end, poll or
 * blocking, enters through the inline entries below. The common case is one
 * load of the end's fast pointer and one test of this thread's slow word
 * (MEMPIPE__SLOW: a budget or a tracer), then the pipe's inlined fast path.
 * Everything else — a wrong direction (-EBADF), a peer's reset, the budget,
 * the probes, and the per-end features that clear the fast pointer — is one
 * out-of-line slow path, mempipe__hook_io(), told the operation and whether
 * the caller is a blocking call.
 */
#ifndef MEMPIPE_HOOK_H
#define MEMPIPE_HOOK_H

#include "coop.h"
#include "end.h"

#include <sys/types.h>
#include <sys/uio.h>

#define MEMPIPE__OP_READ     0u
#define MEMPIPE__OP_WRITE    1u
#define MEMPIPE__OP_BLOCKING 2u /* or-ed in by block.c: never yield */

/* One call, as the slow path sees it. Arguments already checked (R30). */
struct mempipe__io {
    unsigned op;             /* MEMPIPE__OP_READ or _WRITE, | _BLOCKING */
    const struct iovec *iov; /* a read's destination, a write's source */
    int iovcnt;
    size_t len; /* the slices' total */
};

/* The slow path. Any thread that may make the call it describes. */
ssize_t mempipe__hook_io(mempipe *end, const struct mempipe__io *io,
                         const mempipe_waker *w);

/*
 * Out-of-line doors into it, one per entry below, which build the
 * description in their own frame: built inline, it costs every fast call a
 * stack frame.
 */
ssize_t mempipe__hook_read(mempipe *end, void *buf, size_t len,
                           const mempipe_waker *w, unsigned how);
ssize_t mempipe__hook_readv(mempipe *end, const struct iovec *iov, int iovcnt,
                            size_t total, const mempipe_waker *w, unsigned how);
ssize_t mempipe__hook_write(mempipe *end, const void *buf, size_t len,
                            const mempipe_waker *w, unsigned how);
ssize_t mempipe__hook_writev(mempipe *end, const struct iovec *iov, int iovcnt,
                             size_t total, const mempipe_waker *w,
                             unsigned how);

/* A read of end: poll (how 0) or a blocking call's round. */
static inline ssize_t mempipe__end_read(mempipe *end, void *buf, size_t len,
                                        const mempipe_waker *w, unsigned how)
{
    struct mempipe__pipe *p =
        atomic_load_explicit(&end->rxf, memory_order_relaxed);
    if (MEMPIPE__UNLIKELY(p == NULL) || MEMPIPE__SLOW())
        return mempipe__hook_read(end, buf, len, w, how);
    return mempipe__pipe_read1(p, buf, len, w);
}

/*
 * A scattering read; total is the checked sum of the slices. One slice is
 * a read of one buffer, fast path included; more go to the slow path.
 */
static inline ssize_t mempipe__end_readv(mempipe *end, const struct iovec *iov,
                                         int iovcnt, size_t total,
                                         const mempipe_waker *w, unsigned how)
{
    if (iovcnt == 1)
        return mempipe__end_read(end, iov[0].iov_base, total, w, how);
    return mempipe__hook_readv(end, iov, iovcnt, total, w, how);
}

/* A write of one buffer. */
static inline ssize_t mempipe__end_write(mempipe *end, const void *buf,
                                         size_t len, const mempipe_waker *w,
                                         unsigned how)
{
    struct mempipe__pipe *p =
        atomic_load_explicit(&end->txf, memory_order_relaxed);
    if (MEMPIPE__UNLIKELY(p == NULL) || MEMPIPE__SLOW())
        return mempipe__hook_write(end, buf, len, w, how);
    return mempipe__pipe_write1(p, buf, len, w);
}

/* A gathering write; total is the checked sum of the slices. */
static inline ssize_t mempipe__end_writev(mempipe *end, const struct iovec *iov,
                                          int iovcnt, size_t total,
                                          const mempipe_waker *w, unsigned how)
{
    struct mempipe__pipe *p =
        atomic_load_explicit(&end->txf, memory_order_relaxed);
    if (MEMPIPE__UNLIKELY(p == NULL) || MEMPIPE__SLOW())
        return mempipe__hook_writev(end, iov, iovcnt, total, w, how);
    return mempipe__pipe_writev(p, iov, iovcnt, total, w);
}

#endif
