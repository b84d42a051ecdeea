/* SPDX-License-Identifier: MIT */
/*
 * The blocking front-end: poll with a parking waker, sleep, poll again.
 * It knows only the poll API and the parker. Each end has its own parker per
 * direction, living as long as the end, so a late or spurious wake after the
 * call returned touches valid memory and only bumps a counter.
 *
 * Timeouts (R51) are a deadline on CLOCK_MONOTONIC taken when the call
 * starts; a signal's early return from the sleep re-parks until the same
 * deadline. When it passes, one last poll without a waker takes what may
 * have arrived with the deadline, and the parking waker left in the slot
 * is withdrawn: a timed-out call leaves nothing stored behind.
 */
#include "end.h"
#include "hold.h"
#include "hook.h"
#include "shm.h"

#include <errno.h>

/*
 * Where a blocking call sleeps: the end's parker for the role, or, on an
 * shm end, the end's bell in the shared mapping, which the peer process
 * rings as well as this one (shm.h). w is the waker its polls store.
 */
struct sleeper {
    mempipe *end;
    struct mempipe__parker *pk;
    bool rd, shm;
};

static void sleeper_init(struct sleeper *s, mempipe *end, bool rd,
                         mempipe_waker *w)
{
    s->end = end;
    s->rd = rd;
    s->pk = rd ? &end->rpark : &end->wpark;
    s->shm = end->core->shm != NULL;
    if (s->shm) {
        mempipe__shm_blk_waker(end, rd, w);
    } else {
        w->wake = mempipe__park_wake;
        w->ctx = s->pk;
    }
}

/* Before a round's poll: what the wait compares with; an shm end then
 * takes in what its peer did, for the checks that read the pipe directly. */
static unsigned sleeper_prepare(struct sleeper *s)
{
    if (!s->shm)
        return mempipe__park_prepare(s->pk);
    unsigned seen = mempipe__shm_blk_prepare(s->end);
    mempipe__end_pull(s->end);
    return seen;
}

/* After a pending poll: 0 (poll again) or -ETIMEDOUT. room: see shm.h. */
static int sleeper_wait(struct sleeper *s, unsigned seen,
                        const struct timespec *dl, size_t room)
{
    if (s->shm)
        return mempipe__shm_blk_wait(s->end, s->rd, seen, dl, room);
    return mempipe__park_wait_until(s->pk, seen, dl);
}

/* A writer's wait for room on an shm end is for a page at least (or the
 * capacity): copying as soon as a page is free overlaps the two processes,
 * waiting for all of it serialises them (docs/shm.md, Measured). */
#define WRITE_ROOM 4096

/* The deadline timeout_ms from now in *ts, or NULL for none (negative). */
static const struct timespec *deadline(int timeout_ms, struct timespec *ts)
{
    if (timeout_ms < 0)
        return NULL;
    mempipe__park_deadline(ts, timeout_ms);
    return ts;
}

/*
 * Blocks until a read of the slices moves a byte, or reports EOF or an
 * error, or the deadline passes. timeout_ms 0 is one try, with no waker
 * stored. Each call runs inside a hold frame (hold.h) on the pipe it moves
 * bytes through: a waker that one of its rounds runs may close this very
 * end and its peer (R32), and the loop then still touches the end (its
 * parker, the next round, which sees the close).
 */
static ssize_t read_some(mempipe *end, const struct iovec *iov, int iovcnt,
                         size_t total, int timeout_ms)
{
    mempipe_waker w;
    struct sleeper sl;
    sleeper_init(&sl, end, true, &w);
    const mempipe_waker *wk = timeout_ms == 0 ? NULL : &w;
    struct timespec ts;
    const struct timespec *dl = deadline(timeout_ms, &ts);
    struct mempipe__hold frame;
    mempipe__hold_enter(&frame, mempipe__end_rx(end));
    ssize_t n;
    struct mempipe__pipe *rx = mempipe__end_rx(end);
    for (;;) {
        unsigned seen = sleeper_prepare(&sl);
        /* R65: with a read mark, wait for min(its worth, total) first. */
        size_t lw = rx == NULL ? 1
                               : atomic_load_explicit(&rx->ring.rlowat,
                                                      memory_order_relaxed);
        if (lw > 1 && wk != NULL && total > 1)
            n = mempipe__pipe_poll_fill(rx, total < lw ? total : lw, wk);
        else
            n = 1;
        if (n == 1)
            n = mempipe__end_readv(end, iov, iovcnt, total, wk,
                                   MEMPIPE__OP_BLOCKING);
        if (n != -EAGAIN)
            break; /* R27: bytes, EOF or an error */
        if (wk == NULL || sleeper_wait(&sl, seen, dl, 0) == -ETIMEDOUT) {
            n = mempipe__end_readv(end, iov, iovcnt, total, NULL,
                                   MEMPIPE__OP_BLOCKING);
            /* Ours, stored by the last round, whatever this one returns:
             * bytes below the read mark (R65) do not take it. */
            if (wk != NULL)
                mempipe__slot_cancel(&rx->rd);
            if (n == -EAGAIN)
                n = -ETIMEDOUT; /* R51 */
            break;
        }
    }
    mempipe__hold_leave(&frame);
    return n;
}

/*
 * Blocks until every byte of the slices is accepted (R28), the pipe closes
 * or memory runs out (the count so far, else the error), or the deadline
 * passes (the count so far, else -ETIMEDOUT). total is their checked sum;
 * 0 still makes one call (R14: -EPIPE on a closed pipe).
 */
static ssize_t write_all(mempipe *end, const struct iovec *iov, int iovcnt,
                         size_t total, int timeout_ms)
{
    mempipe_waker w;
    struct sleeper sl;
    sleeper_init(&sl, end, false, &w);
    const mempipe_waker *wk = timeout_ms == 0 ? NULL : &w;
    struct timespec ts;
    const struct timespec *dl = deadline(timeout_ms, &ts);
    size_t done = 0;
    int i = 0;      /* the first slice not wholly accepted */
    size_t off = 0; /* bytes of it accepted */
    ssize_t rc = 0;
    bool last = false; /* the round after the deadline */
    struct mempipe__hold frame;
    mempipe__hold_enter(&frame, mempipe__end_tx(end));
    for (;;) {
        unsigned seen = sleeper_prepare(&sl);
        /* The rest of a slice cut part-way alone, else the slices left in
         * one gathering call (iov may be NULL when iovcnt is 0). */
        ssize_t n;
        const mempipe_waker *now = last ? NULL : wk;
        if (off > 0)
            n = mempipe__end_write(end, (char *)iov[i].iov_base + off,
                                   iov[i].iov_len - off, now,
                                   MEMPIPE__OP_BLOCKING);
        else
            n = mempipe__end_writev(end, i == 0 ? iov : iov + i, iovcnt - i,
                                    total - done, now, MEMPIPE__OP_BLOCKING);
        if (n == -EAGAIN) {
            if (last) {
                rc = -ETIMEDOUT; /* R51 */
                break;
            }
            if (wk == NULL ||
                sleeper_wait(&sl, seen, dl, WRITE_ROOM) == -ETIMEDOUT)
                last = true;
            continue;
        }
        if (n < 0) { /* R28: the bytes accepted so far, else the error */
            rc = n;
            break;
        }
        done += (size_t)n;
        for (size_t k = (size_t)n; k > 0;) { /* move the cursor past n */
            size_t left = iov[i].iov_len - off;
            if (k < left) {
                off += k;
                break;
            }
            k -= left;
            i++;
            off = 0;
        }
        while (i < iovcnt && iov[i].iov_len == 0)
            i++;
        if (done == total || last)
            break;
    }
    if (last && wk != NULL) /* ours, stored by an earlier round */
        mempipe__slot_cancel(&mempipe__end_tx(end)->wr);
    mempipe__hold_leave(&frame);
    return done > 0 ? (ssize_t)done : rc;
}

ssize_t mempipe_read(mempipe *end, void *buf, size_t len)
{
    return mempipe_read_timeout(end, buf, len, -1);
}

ssize_t mempipe_read_timeout(mempipe *end, void *buf, size_t len,
                             int timeout_ms)
{
    if (end == NULL || (buf == NULL && len > 0))
        return -EINVAL; /* R30 */
    struct iovec one = {buf, len};
    return read_some(end, &one, 1, len, timeout_ms);
}

ssize_t mempipe_readv(mempipe *end, const struct iovec *iov, int iovcnt)
{
    ssize_t total = mempipe__iov_total(iov, iovcnt);
    if (end == NULL || total < 0)
        return -EINVAL;
    return read_some(end, iov, iovcnt, (size_t)total, -1);
}

ssize_t mempipe_read_full(mempipe *end, void *buf, size_t len)
{
    if (end == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    unsigned char *p = buf;
    size_t done = 0;
    ssize_t n = 0;
    do { /* len 0 still makes one call: R8, and -EBADF */
        struct iovec one = {p == NULL ? NULL : p + done, len - done};
        n = read_some(end, &one, 1, len - done, -1);
        if (n <= 0)
            break; /* R53: EOF or an error ends it */
        done += (size_t)n;
    } while (done < len);
    return done > 0 ? (ssize_t)done : n;
}

ssize_t mempipe_write(mempipe *end, const void *buf, size_t len)
{
    return mempipe_write_timeout(end, buf, len, -1);
}

ssize_t mempipe_write_timeout(mempipe *end, const void *buf, size_t len,
                              int timeout_ms)
{
    if (end == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    /* The cast drops const only for struct iovec's sake. */
    struct iovec one = {(void *)(uintptr_t)buf, len};
    return write_all(end, &one, 1, len, timeout_ms);
}

ssize_t mempipe_writev(mempipe *end, const struct iovec *iov, int iovcnt)
{
    ssize_t total = mempipe__iov_total(iov, iovcnt);
    if (end == NULL || total < 0)
        return -EINVAL;
    return write_all(end, iov, iovcnt, (size_t)total, -1);
}

/*
 * Waits on pipe p in role `role` (reader: rpark and p->rd; writer: wpark
 * and p->wr) until check() says other than -EAGAIN or the deadline: the
 * loop of read_some() for a condition that moves no byte (R55, R57).
 */
static int wait_for(mempipe *end, struct mempipe__pipe *p, unsigned role,
                    int (*check)(struct mempipe__pipe *, unsigned,
                                 const mempipe_waker *),
                    int timeout_ms)
{
    bool rd = role == MEMPIPE__ROLE_READER;
    mempipe_waker w;
    struct sleeper sl;
    sleeper_init(&sl, end, rd, &w);
    const mempipe_waker *wk = timeout_ms == 0 ? NULL : &w;
    struct timespec ts;
    const struct timespec *dl = deadline(timeout_ms, &ts);
    struct mempipe__hold frame;
    mempipe__hold_enter(&frame, p);
    int rc;
    for (;;) {
        unsigned seen = sleeper_prepare(&sl);
        rc = check(p, role, wk);
        if (rc != -EAGAIN)
            break;
        if (wk == NULL || sleeper_wait(&sl, seen, dl, 0) == -ETIMEDOUT) {
            rc = check(p, role, NULL);
            if (rc == -EAGAIN) {
                if (wk != NULL) /* ours, stored by the last round */
                    mempipe__slot_cancel(rd ? &p->rd : &p->wr);
                rc = -ETIMEDOUT;
            }
            break;
        }
    }
    mempipe__hold_leave(&frame);
    return rc;
}

static int check_drained(struct mempipe__pipe *p, unsigned role,
                         const mempipe_waker *w)
{
    (void)role; /* the writer's */
    return mempipe__pipe_poll_drained(p, w);
}

int mempipe_drain(mempipe *end, int timeout_ms)
{
    if (end == NULL)
        return -EINVAL;
    struct mempipe__pipe *tx = mempipe__end_tx(end);
    if (tx == NULL)
        return -EBADF; /* a simplex reader writes nothing */
    return wait_for(end, tx, MEMPIPE__ROLE_WRITER, check_drained, timeout_ms);
}

int mempipe_wait_readable(mempipe *end, int timeout_ms)
{
    if (end == NULL)
        return -EINVAL;
    struct mempipe__pipe *rx = mempipe__end_rx(end);
    if (rx == NULL)
        return -EBADF;
    return wait_for(end, rx, MEMPIPE__ROLE_READER, mempipe__pipe_poll_ready,
                    timeout_ms);
}

int mempipe_wait_writable(mempipe *end, int timeout_ms)
{
    if (end == NULL)
        return -EINVAL;
    struct mempipe__pipe *tx = mempipe__end_tx(end);
    if (tx == NULL)
        return -EBADF;
    return wait_for(end, tx, MEMPIPE__ROLE_WRITER, mempipe__pipe_poll_ready,
                    timeout_ms);
}
