/* SPDX-License-Identifier: MIT */
/*
 * Ends: creation, argument checks, routing to the right pipe, close.
 *
 * Every public poll call checks its arguments here (R30) before any pipe is
 * touched, so a bad call changes nothing.
 */
#include "end.h"

#include "alloc.h"
#include "coop.h"
#include "fd.h"
#include "hold.h"
#include "trace.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

struct mempipe__core {
    struct mempipe__pipe pipes[2];
    struct mempipe ends[2];
    atomic_int refs; /* open ends */
    unsigned gen;    /* fork generation it was made in (fd.h) */
    int npipes;
    int nends;
};

static void core_free(struct mempipe__core *c)
{
    for (int i = 0; i < c->nends; i++) {
        mempipe__park_destroy(&c->ends[i].rpark);
        mempipe__park_destroy(&c->ends[i].wpark);
    }
    for (int i = 0; i < c->npipes; i++)
        mempipe__pipe_free(&c->pipes[i]);
    mempipe__free_aligned(c, sizeof *c);
    mempipe__pipes_made(-1);
}

/* One allocation for the whole pipe; the ends are wired by the caller. */
static struct mempipe__core *core_new(size_t cap, int npipes, int nends)
{
    struct mempipe__core *c = mempipe__alloc_aligned(sizeof *c);
    if (c == NULL)
        return NULL;
    memset(c, 0, sizeof *c);
    mempipe__pipes_made(1);
    c->gen = mempipe__fork_gen();
    c->npipes = npipes;
    for (int i = 0; i < npipes; i++)
        mempipe__pipe_init(&c->pipes[i], cap);
    for (int i = 0; i < nends; i++) {
        struct mempipe *e = &c->ends[i];
        e->core = c;
        if (mempipe__park_init(&e->rpark) != 0)
            goto fail;
        if (mempipe__park_init(&e->wpark) != 0) {
            mempipe__park_destroy(&e->rpark);
            goto fail;
        }
        c->nends = i + 1;
    }
    atomic_init(&c->refs, nends);
    return c;
fail:
    core_free(c);
    return NULL;
}

int mempipe_duplex(size_t max_buf_size, mempipe **a, mempipe **b)
{
    if (max_buf_size == 0 || a == NULL || b == NULL || a == b)
        return -EINVAL; /* R2 */
    struct mempipe__core *c = core_new(max_buf_size, 2, 2);
    if (c == NULL)
        return -ENOMEM;
    /* pipes[0] carries a -> b, pipes[1] carries b -> a. */
    c->ends[0].kind = c->ends[1].kind = MEMPIPE__DUPLEX;
    c->ends[0].tx = c->ends[1].rx = &c->pipes[0];
    c->ends[1].tx = c->ends[0].rx = &c->pipes[1];
    *a = &c->ends[0];
    *b = &c->ends[1];
    return 0;
}

int mempipe_simplex(size_t max_buf_size, mempipe **reader, mempipe **writer)
{
    if (max_buf_size == 0 || reader == NULL || writer == NULL ||
        reader == writer)
        return -EINVAL;
    struct mempipe__core *c = core_new(max_buf_size, 1, 2);
    if (c == NULL)
        return -ENOMEM;
    c->ends[0].kind = MEMPIPE__SIMPLEX_READER;
    c->ends[0].rx = &c->pipes[0];
    c->ends[1].kind = MEMPIPE__SIMPLEX_WRITER;
    c->ends[1].tx = &c->pipes[0];
    *reader = &c->ends[0];
    *writer = &c->ends[1];
    return 0;
}

int mempipe_loopback(size_t max_buf_size, mempipe **end)
{
    if (max_buf_size == 0 || end == NULL)
        return -EINVAL;
    struct mempipe__core *c = core_new(max_buf_size, 1, 1);
    if (c == NULL)
        return -ENOMEM;
    c->ends[0].kind = MEMPIPE__LOOPBACK;
    c->ends[0].rx = c->ends[0].tx = &c->pipes[0];
    *end = &c->ends[0];
    return 0;
}

/* Drops n references; the last one frees the core. Any thread. */
static void core_unref(void *obj, unsigned n)
{
    struct mempipe__core *c = obj;
    /* acq_rel: every end's last actions happen before the free. */
    if (atomic_fetch_sub_explicit(&c->refs, (int)n, memory_order_acq_rel) ==
        (int)n)
        core_free(c);
}

void mempipe_close(mempipe *end)
{
    if (end == NULL)
        return;
    MEMPIPE__PROBE3(close, end, (size_t)0, (ssize_t)0);
    mempipe__fd_close_end(end); /* its pollable fds, if it asked (fd.c) */
    struct mempipe__core *c = end->core;
    if (MEMPIPE__UNLIKELY(c->gen != mempipe__fork_gen()))
        goto release; /* inherited across fork(): wake nobody (R34) */
    /*
     * Drop this end's own wakers first (R22): once they are gone and no
     * other thread is inside one, nothing can call them any more. Then
     * close the directions, which wakes the peer's wakers (R19, R20).
     */
    if (end->rx != NULL)
        mempipe__slot_drop(&end->rx->rd);
    if (end->tx != NULL)
        mempipe__slot_drop(&end->tx->wr);
    if (end->tx != NULL)
        mempipe__pipe_close_write(end->tx);
    if (end->rx != NULL)
        mempipe__pipe_close_read(end->rx);

release:
    /*
     * R32: inside a call on this pipe (this close runs in a waker that the
     * call ran), the reference is dropped when the outermost such call
     * returns, which still touches the pipe; otherwise now.
     */
    if (!mempipe__hold_defer(end->rx, end->tx, core_unref, c))
        core_unref(c, 1);
}

/*
 * R30: a waker whose wake is NULL would crash the thread that runs it, in
 * the peer's call, long after this one returned: -EINVAL at once, from
 * every call that takes a waker, whether or not it would store it.
 */
#define BAD_WAKER(w) ((w) != NULL && (w)->wake == NULL)

ssize_t mempipe_poll_read(mempipe *end, void *buf, size_t len,
                          const mempipe_waker *waker)
{
    if (end == NULL || (buf == NULL && len > 0) || BAD_WAKER(waker))
        return -EINVAL; /* R30 */
    if (end->rx == NULL)
        return -EBADF;
    if (MEMPIPE__SLOW()) /* a budget or a tracer: coop.c */
        return mempipe__coop_read(end, buf, len, waker);
    return mempipe__pipe_read1(end->rx, buf, len, waker);
}

ssize_t mempipe_poll_write(mempipe *end, const void *buf, size_t len,
                           const mempipe_waker *waker)
{
    if (end == NULL || (buf == NULL && len > 0) || BAD_WAKER(waker))
        return -EINVAL;
    if (end->tx == NULL)
        return -EBADF;
    if (MEMPIPE__SLOW())
        return mempipe__coop_write(end, buf, len, waker);
    return mempipe__pipe_write1(end->tx, buf, len, waker);
}

ssize_t mempipe_poll_writev(mempipe *end, const struct iovec *iov, int iovcnt,
                            const mempipe_waker *waker)
{
    if (end == NULL || iovcnt < 0 || iovcnt > IOV_MAX ||
        (iov == NULL && iovcnt > 0) || BAD_WAKER(waker))
        return -EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_base == NULL && iov[i].iov_len > 0)
            return -EINVAL;
        if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
            return -EINVAL; /* the sum would overflow the return type */
        total += iov[i].iov_len;
    }
    if (end->tx == NULL)
        return -EBADF;
    if (MEMPIPE__SLOW())
        return mempipe__coop_writev(end, iov, iovcnt, total, waker);
    return mempipe__pipe_writev(end->tx, iov, iovcnt, total, waker);
}

int mempipe_poll_flush(mempipe *end, const mempipe_waker *waker)
{
    /* R16: never anything to flush, never stored */
    return end == NULL || BAD_WAKER(waker) ? -EINVAL : 0;
}

int mempipe_poll_shutdown(mempipe *end, const mempipe_waker *waker)
{
    /* Completes at once: the waker is never stored. */
    if (end == NULL || BAD_WAKER(waker))
        return -EINVAL;
    if (end->tx == NULL)
        return -EBADF;
    mempipe__pipe_close_write(end->tx);
    MEMPIPE__PROBE3(shutdown, end, (size_t)0, (ssize_t)0);
    return 0;
}

int mempipe_shutdown(mempipe *end)
{
    return mempipe_poll_shutdown(end, NULL);
}

size_t mempipe_readable(const mempipe *end)
{
    if (end == NULL || end->rx == NULL)
        return 0;
    return mempipe__pipe_readable(end->rx);
}

size_t mempipe_writable(const mempipe *end)
{
    if (end == NULL || end->tx == NULL)
        return 0;
    return mempipe__pipe_writable(end->tx);
}

size_t mempipe_capacity(const mempipe *end)
{
    if (end == NULL)
        return 0;
    return end->tx != NULL ? end->tx->ring.cap : end->rx->ring.cap;
}
