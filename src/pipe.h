/* SPDX-License-Identifier: MIT */
/*
 * pipe: one direction. A ring, a capacity M, write-closed and read-closed
 * flags, and one waker slot per role. The SPEC.md rules about reading,
 * writing, shutdown and close live here; the pipe knows nothing of ends or
 * threads.
 */
#ifndef MEMPIPE_PIPE_H
#define MEMPIPE_PIPE_H

#include "fence.h"
#include "ring.h"
#include "waker.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define MEMPIPE__WCLOSED 1u /* the writer shut down or closed: EOF after L */
#define MEMPIPE__RCLOSED 2u /* the reader is gone or read-shut: -EPIPE */
#define MEMPIPE__RESET   4u /* the writer aborted: reads fail at once (R38) */

/*
 * Close outcomes beyond EOF and -EPIPE (R37, R38) live in the same word, so
 * that one read-modify-write publishes the close and its error together and
 * every reader of the flags sees both or neither. Bits 8..19: the positive
 * errno the reader gets instead of EOF once the bytes are read (0: EOF);
 * bits 20..31: the one the writer gets instead of -EPIPE (0: -EPIPE). An
 * error is only ever set with its close flag, so "flags == 0" still means
 * open both ways.
 */
#define MEMPIPE__ERR_MAX     4095 /* errno values fit in 12 bits */
#define MEMPIPE__RERR_SHIFT  8
#define MEMPIPE__WERR_SHIFT  20
#define MEMPIPE__RERR(err)   ((unsigned)-(err) << MEMPIPE__RERR_SHIFT)
#define MEMPIPE__WERR(err)   ((unsigned)-(err) << MEMPIPE__WERR_SHIFT)
#define MEMPIPE__RERR_OF(fl) (-(int)(((fl) >> MEMPIPE__RERR_SHIFT) & 0xfffu))
#define MEMPIPE__WERR_OF(fl) (-(int)(((fl) >> MEMPIPE__WERR_SHIFT) & 0xfffu))

struct mempipe__pipe {
    struct mempipe__ring ring;
    /* Shared line: read on every call, written only on state changes. */
    _Alignas(MEMPIPE__CACHELINE) atomic_uint flags;
    struct mempipe__slot rd; /* the reader's waker */
    struct mempipe__slot wr; /* the writer's waker */
    /* The observer (the pollable fds, fd.c): NULL until an end asks for
     * one; set once. On the shared line, which is written only on state
     * changes and registrations, so the check is normally an L1 hit and
     * costs no extra line per pipe. (The capacity M is ring.cap.) */
    _Atomic(struct mempipe__observer *) watch;
};

/*
 * An observer of a pipe: called through this one pointer after every
 * progress point (notify, from the thread that made the progress, after
 * its full fence) and once when the pipe is freed (release, no other thread
 * left). The pipe knows nothing else of it, so no front-end's header is
 * included here or in pipe.c. The pollable fds are one (fd.c).
 */
struct mempipe__observer {
    void (*notify)(struct mempipe__observer *o, struct mempipe__pipe *p);
    void (*release)(struct mempipe__observer *o, struct mempipe__pipe *p);
    /*
     * NULL, or called by the role's owner just before it stores waker w in
     * the role's slot (after the target of R65 is set), so that an observer
     * with a wake protocol of its own (shm.c: a peer in another process)
     * publishes what the role waits for before the store's fence.
     */
    void (*waits)(struct mempipe__observer *o, struct mempipe__pipe *p,
                  unsigned role, const mempipe_waker *w);
    /*
     * An observer of the observer (the pollable fds of an shm pipe, whose
     * watch is shm.c's): it calls this one's notify and release from its
     * own. NULL for the fds' own observer.
     */
    _Atomic(struct mempipe__observer *) inner;
};

void mempipe__pipe_init(struct mempipe__pipe *p, size_t cap);
void mempipe__pipe_free(struct mempipe__pipe *p);

/* Reader role. R4-R9, R25. buf may be NULL only when len is 0. */
ssize_t mempipe__pipe_read(struct mempipe__pipe *p, void *buf, size_t len,
                           const mempipe_waker *w);

/*
 * Reader role: the same into the slices of iov, in order; total is the
 * validated sum of their lengths (R52).
 */
ssize_t mempipe__pipe_readv(struct mempipe__pipe *p, const struct iovec *iov,
                            size_t total, const mempipe_waker *w);

/*
 * Writer role. R10-R15, R25. total is the validated sum of the slices. A
 * write cut short by a full pipe leaves w stored (R54).
 */
ssize_t mempipe__pipe_writev(struct mempipe__pipe *p, const struct iovec *iov,
                             int iovcnt, size_t total, const mempipe_waker *w);

/* Writer role: the general path for one buffer. */
ssize_t mempipe__pipe_write(struct mempipe__pipe *p, const void *buf,
                            size_t len, const mempipe_waker *w);

/*
 * Any thread. Write-closes and wakes both roles (R17, R18). Idempotent.
 * extra: 0, or MEMPIPE__RERR(err) for the error the reader gets instead of
 * EOF (R37), with MEMPIPE__RESET for an abort (R38); the first close's
 * outcome stays.
 */
void mempipe__pipe_close_write(struct mempipe__pipe *p, unsigned extra);

/*
 * Writer role, for an abort (R38): write-closes with MEMPIPE__RESET and
 * -ECONNRESET for the reader, also over an earlier shutdown or close (a
 * reset overrides EOF: the reader's later reads fail, never a silent EOF),
 * and wakes both roles. The bytes stay until the reader's next read or
 * close discards them; mempipe__pipe_readable() says 0 at once.
 */
void mempipe__pipe_reset(struct mempipe__pipe *p);

/*
 * Reader role, when the reader end closes: read-closes, wakes the writer
 * (R19, R20) and discards the bytes buffered (R21). extra: 0, or
 * MEMPIPE__WERR(err) for the error the writer gets instead of -EPIPE.
 */
void mempipe__pipe_close_read(struct mempipe__pipe *p, unsigned extra);

/*
 * Any thread: read-shuts the pipe (SHUT_RD, R56): the writer's writes fail
 * with -EPIPE from now on, and the reader's next read discards the bytes
 * buffered and reads EOF. Wakes both roles. Idempotent.
 */
void mempipe__pipe_shut_read(struct mempipe__pipe *p);

/*
 * The role's owner: 1 if its next read (MEMPIPE__ROLE_READER) or write
 * (MEMPIPE__ROLE_WRITER) would not wait; else stores w, if any, as that
 * call would, and returns -EAGAIN (R55). Moves no byte.
 */
int mempipe__pipe_poll_ready(struct mempipe__pipe *p, unsigned role,
                             const mempipe_waker *w);

/*
 * Writer role: 0 once the reader has read every byte written; the
 * reader's error or -EPIPE once it is gone or read-shut with some unread;
 * else stores w in the writer's slot and returns -EAGAIN (R57).
 */
int mempipe__pipe_poll_drained(struct mempipe__pipe *p, const mempipe_waker *w);

/*
 * Any thread: whether a read (write) would not wait now, the read (write)
 * low-water mark honoured (R55, R65): the pollable fds' conditions too.
 */
bool mempipe__pipe_read_ready(const struct mempipe__pipe *p);
bool mempipe__pipe_write_ready(const struct mempipe__pipe *p);

/*
 * Writer role, zero-copy (R62): reserves up to want bytes of free space as
 * 1 or 2 spans (the return value) in iov; -EAGAIN full (w stored as a
 * pending write would), -EPIPE or the reader's error when closed, -ENOMEM,
 * -EINVAL with a reservation already open (R66).
 */
int mempipe__pipe_reserve(struct mempipe__pipe *p, size_t want,
                          struct iovec iov[2], const mempipe_waker *w);

/* Writer role: publishes n reserved bytes and ends the reservation; n, or
 * -EINVAL (no reservation, too many: nothing changes), -EPIPE (closed). */
ssize_t mempipe__pipe_commit(struct mempipe__pipe *p, size_t n);

/*
 * Reader role (R63, R64): shows up to max buffered bytes as 1 or 2 spans
 * (the return value); 0 at EOF (or the writer's error, R37/R38); -EAGAIN
 * when empty or nothing new since the examined position (w stored).
 */
int mempipe__pipe_peek(struct mempipe__pipe *p, struct iovec iov[2], size_t max,
                       const mempipe_waker *w);

/* Reader role: releases consumed of the peeked bytes, having examined
 * examined of them (consumed <= examined <= peeked), ending the peek. */
int mempipe__pipe_consume(struct mempipe__pipe *p, size_t consumed,
                          size_t examined);

/*
 * Reader role: 1 once need bytes are buffered (or a close); else stores w
 * to be woken then, and -EAGAIN. The blocking reads' wait for the mark.
 */
int mempipe__pipe_poll_fill(struct mempipe__pipe *p, size_t need,
                            const mempipe_waker *w);

/* The role's owner: sets its low-water mark (R65); -EINVAL for 0, above
 * the capacity or above UINT32_MAX. */
int mempipe__pipe_set_lowat(struct mempipe__pipe *p, unsigned role, size_t n);

/* Any thread: bytes written and not yet read, 0 once never (R58). */
size_t mempipe__pipe_unread(const struct mempipe__pipe *p);

/*
 * The progress epilogue: every point that makes progress (bytes in or out,
 * a close flag) publishes it, issues the full fence of R25, and then calls
 * this, naming the role it may have unblocked. It is the only place that
 * wakes and notifies. The common case — nobody waiting, no pollable fd — is
 * two relaxed loads from the pipe's shared line and one branch; anything
 * else goes to mempipe__pipe_progress() in pipe.c, which runs the wakes and
 * the fd hook inside a hold frame (hold.h), so that a waker may close any
 * end, the last included, while this call still has work to do (R32).
 */
#define MEMPIPE__ROLE_READER 1u /* wake p->rd */
#define MEMPIPE__ROLE_WRITER 2u /* wake p->wr */

/* Out of line: the wakes, then the fds, inside a hold frame. */
void mempipe__pipe_progress(struct mempipe__pipe *p, unsigned roles);

static inline void mempipe__pipe_progressed(struct mempipe__pipe *p,
                                            unsigned role)
{
    const struct mempipe__slot *s =
        role == MEMPIPE__ROLE_READER ? &p->rd : &p->wr;
    /* Relaxed: ordered by the caller's fence (waker.h, fd.c). Bitwise OR,
     * so the compiler emits one branch. */
    if (MEMPIPE__UNLIKELY((int)mempipe__slot_full(s) |
                          (int)(atomic_load_explicit(
                                    &p->watch, memory_order_relaxed) != NULL)))
        mempipe__pipe_progress(p, role);
}

/*
 * Fast paths, inlined into the public poll calls. Each handles only the
 * common case — pipe open, everything fits in one segment — with the same
 * publish / fence / take protocol as the general path in pipe.c, and falls
 * back to it for everything else (short writes, segment changes, empty,
 * full, closed). Both end in the one epilogue above.
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
        mempipe__pipe_progressed(p, MEMPIPE__ROLE_READER); /* R13 */
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
        mempipe__pipe_progressed(p, MEMPIPE__ROLE_WRITER); /* R7 */
        return (ssize_t)n;
    }
    return mempipe__pipe_read(p, buf, len, w);
}

/*
 * shm.c, any thread: applies closes of the peer's, seen in its process's
 * shared state, to this process's flags as its own close would set them,
 * but wakes nobody (the caller runs the progress): fl holds MEMPIPE__WCLOSED
 * with its RERR (or MEMPIPE__RESET: a reset) for a pipe the peer writes,
 * MEMPIPE__RCLOSED with its WERR for one it reads (which also closes the
 * stream here, so a local write racing it publishes nothing). Idempotent:
 * the first close's outcome stays, as for local closes.
 */
void mempipe__pipe_mirror(struct mempipe__pipe *p, unsigned fl);

/* Snapshots, any thread. */
size_t mempipe__pipe_readable(const struct mempipe__pipe *p);
size_t mempipe__pipe_writable(const struct mempipe__pipe *p);
unsigned mempipe__pipe_flags(const struct mempipe__pipe *p);

#endif
