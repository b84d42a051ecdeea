/* SPDX-License-Identifier: MIT */
/*
 * pipe: one direction. A ring, a capacity M, write-closed and read-closed
 * flags, and one waker slot per role. The SPEC.md rules about reading,
 * writing, shutdown and close live here; the pipe knows nothing of ends or
 * threads.
 */
#ifndef MEMPIPE_PIPE_H
#define MEMPIPE_PIPE_H

#include "fd.h"
#include "fence.h"
#include "ring.h"
#include "waker.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define MEMPIPE__WCLOSED 1u /* the writer shut down or closed: EOF after L */
#define MEMPIPE__RCLOSED 2u /* the reader is gone: writes fail with -EPIPE */

struct mempipe__pipe {
    struct mempipe__ring ring;
    /* Shared line: read on every call, written only on state changes. */
    _Alignas(MEMPIPE__CACHELINE) atomic_uint flags;
    struct mempipe__slot rd; /* the reader's waker */
    struct mempipe__slot wr; /* the writer's waker */
    /* Pollable fds (fd.c): NULL until an end asks for one; set once. On the
     * shared line, which is written only on state changes and registrations,
     * so the check is normally an L1 hit and costs no extra line per pipe.
     * (The capacity M is ring.cap.) */
    _Atomic(struct mempipe__fdwatch *) watch;
};

void mempipe__pipe_init(struct mempipe__pipe *p, size_t cap);
void mempipe__pipe_free(struct mempipe__pipe *p);

/* Reader role. R4-R9, R25. buf may be NULL only when len is 0. */
ssize_t mempipe__pipe_read(struct mempipe__pipe *p, void *buf, size_t len,
                           const mempipe_waker *w);

/*
 * Writer role. R10-R15, R25. total is the validated sum of the slices.
 */
ssize_t mempipe__pipe_writev(struct mempipe__pipe *p, const struct iovec *iov,
                             int iovcnt, size_t total, const mempipe_waker *w);

/* Writer role: the general path for one buffer. */
ssize_t mempipe__pipe_write(struct mempipe__pipe *p, const void *buf,
                            size_t len, const mempipe_waker *w);

/* Any thread. Write-closes and wakes both roles (R17, R18). Idempotent. */
void mempipe__pipe_close_write(struct mempipe__pipe *p);

/*
 * Reader role, when the reader end closes: read-closes, wakes the writer
 * (R19, R20) and discards the bytes buffered (R21).
 */
void mempipe__pipe_close_read(struct mempipe__pipe *p);

/*
 * Pollable fds: every progress point calls this right after its wake, so
 * after its full fence (fd.c argues why that order suffices). An unwatched
 * pipe pays one relaxed load and one predictable branch, no syscall.
 */
static inline void mempipe__pipe_fd_hook(struct mempipe__pipe *p)
{
    if (MEMPIPE__UNLIKELY(
            atomic_load_explicit(&p->watch, memory_order_relaxed) != NULL))
        mempipe__fd_notify(p);
}

/*
 * Fast paths, inlined into the public poll calls. Each handles only the
 * common case — pipe open, everything fits in one segment — with the same
 * publish / fence / take protocol as the general path in pipe.c, and falls
 * back to it for everything else (short writes, segment changes, empty,
 * full, closed). Any hook added to the general path's progress points must
 * be added here too.
 */
static inline ssize_t mempipe__pipe_write1(struct mempipe__pipe *p,
                                           const void *buf, size_t len,
                                           const mempipe_waker *w)
{
    /* Relaxed flags: as in the general path. */
    if (MEMPIPE__LIKELY(
            atomic_load_explicit(&p->flags, memory_order_relaxed) == 0 &&
            len > 0 && mempipe__ring_put(&p->ring, buf, len) == len)) {
        /* wpos (a seq_cst CAS) before the slot load (R25). */
        mempipe__fence_after_rmw();
        if (MEMPIPE__UNLIKELY(mempipe__slot_full(&p->rd)))
            mempipe__slot_wake(&p->rd); /* R13 */
        mempipe__pipe_fd_hook(p);
        return (ssize_t)len;
    }
    return mempipe__pipe_write(p, buf, len, w);
}

static inline ssize_t mempipe__pipe_read1(struct mempipe__pipe *p, void *buf,
                                          size_t len, const mempipe_waker *w)
{
    size_t n;
    if (MEMPIPE__LIKELY(len > 0 &&
                        (n = mempipe__ring_get(&p->ring, buf, len)) > 0)) {
        mempipe__full_fence(); /* rpos before the slot load (R25) */
        if (MEMPIPE__UNLIKELY(mempipe__slot_full(&p->wr)))
            mempipe__slot_wake(&p->wr); /* R7 */
        mempipe__pipe_fd_hook(p);
        return (ssize_t)n;
    }
    return mempipe__pipe_read(p, buf, len, w);
}

/* Snapshots, any thread. */
size_t mempipe__pipe_readable(const struct mempipe__pipe *p);
size_t mempipe__pipe_writable(const struct mempipe__pipe *p);
unsigned mempipe__pipe_flags(const struct mempipe__pipe *p);

#endif
