/*
 * pipe: one direction. A ring, a capacity M, write-closed and read-closed
 * flags, and one waker slot per role. The SPEC.md rules about reading,
 * writing, shutdown and close live here; the pipe knows nothing of ends or
 * threads.
 */
#ifndef MEMPIPE_PIPE_H
#define MEMPIPE_PIPE_H

#include "ring.h"
#include "waker.h"

#include <stdbool.h>
#include <sys/types.h>

#define MEMPIPE__WCLOSED 1u /* the writer shut down or closed: EOF after L */
#define MEMPIPE__RCLOSED 2u /* the reader is gone: writes fail with -EPIPE */

struct mempipe__pipe {
    struct mempipe__ring ring;
    /* Shared line: read on every call, written only on state changes. */
    _Alignas(MEMPIPE__CACHELINE) atomic_uint flags;
    size_t cap;                 /* M */
    struct mempipe__slot rd;    /* the reader's waker */
    struct mempipe__slot wr;    /* the writer's waker */
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
                             int iovcnt, size_t total,
                             const mempipe_waker *w);

/* Any thread. Write-closes and wakes both roles (R17, R18). Idempotent. */
void mempipe__pipe_close_write(struct mempipe__pipe *p);

/*
 * Reader role, when the reader end closes: read-closes, wakes the writer
 * (R19, R20) and discards the bytes buffered (R21).
 */
void mempipe__pipe_close_read(struct mempipe__pipe *p);

/* Snapshots, any thread. */
size_t mempipe__pipe_readable(const struct mempipe__pipe *p);
size_t mempipe__pipe_writable(const struct mempipe__pipe *p);
unsigned mempipe__pipe_flags(const struct mempipe__pipe *p);

#endif
