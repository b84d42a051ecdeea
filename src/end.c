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
#include "feat.h"
#include "hold.h"
#include "hook.h"
#include "shm.h"
#include "trace.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

static void core_free(struct mempipe__core *c)
{
    if (c->shm != NULL)
        mempipe__shm_stop(c->shm); /* its notifier, before the pipes go */
    for (int i = 0; i < c->nends; i++) {
        mempipe__park_destroy(&c->ends[i].rpark);
        mempipe__park_destroy(&c->ends[i].wpark);
    }
    for (int i = 0; i < c->npipes; i++)
        mempipe__pipe_free(&c->pipes[i]);
    mempipe__feat_free(c);
    struct mempipe__shm *shm = c->shm;
    mempipe__free_aligned(c, sizeof *c);
    mempipe__pipes_made(-1);
    if (shm != NULL)
        mempipe__shm_free(shm); /* the mapping, after the pipes on it */
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

/* Sets an end's kind and pipes (indices, -1 for none) and its fast path. */
static void wire(struct mempipe *e, enum mempipe__kind kind, int rxi, int txi)
{
    e->kind = (unsigned char)kind;
    e->rxi = (signed char)rxi;
    e->txi = (signed char)txi;
    atomic_init(&e->rxf, mempipe__end_rx(e));
    atomic_init(&e->txf, mempipe__end_tx(e));
}

struct mempipe__core *
mempipe__core_flat(int npipes, size_t cap, const struct mempipe__flat f[2],
                   struct mempipe__observer *obs[2], struct mempipe__shm *shm,
                   enum mempipe__kind kind, int rxi, int txi)
{
    struct mempipe__core *c = core_new(cap, npipes, 2);
    if (c == NULL)
        return NULL;
    for (int i = 0; i < npipes; i++) {
        mempipe__ring_init_flat(&c->pipes[i].ring, cap, &f[i]);
        atomic_init(&c->pipes[i].watch, obs[i]);
    }
    c->shm = shm;
    wire(&c->ends[0], kind, rxi, txi);
    atomic_init(&c->ends[0].rxf, NULL); /* every call takes the slow path */
    atomic_init(&c->ends[0].txf, NULL);
    atomic_init(&c->refs, 1);
    return c;
}

mempipe *mempipe__core_second(struct mempipe__core *c, enum mempipe__kind kind,
                              int rxi, int txi)
{
    mempipe *e = &c->ends[1];
    wire(e, kind, rxi, txi);
    atomic_store_explicit(&e->rxf, NULL, memory_order_relaxed);
    atomic_store_explicit(&e->txf, NULL, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return e;
}

int mempipe_duplex(size_t max_buf_size, mempipe **a, mempipe **b)
{
    if (max_buf_size == 0 || a == NULL || b == NULL || a == b)
        return -EINVAL; /* R2 */
    struct mempipe__core *c = core_new(max_buf_size, 2, 2);
    if (c == NULL)
        return -ENOMEM;
    /* pipes[0] carries a -> b, pipes[1] carries b -> a. */
    wire(&c->ends[0], MEMPIPE__DUPLEX, 1, 0);
    wire(&c->ends[1], MEMPIPE__DUPLEX, 0, 1);
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
    wire(&c->ends[0], MEMPIPE__SIMPLEX_READER, 0, -1);
    wire(&c->ends[1], MEMPIPE__SIMPLEX_WRITER, -1, 0);
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
    wire(&c->ends[0], MEMPIPE__LOOPBACK, 0, 0);
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

void mempipe__core_ref(struct mempipe__core *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void mempipe__core_unref(struct mempipe__core *c)
{
    core_unref(c, 1);
}

/* The end that reads what e writes: its peer, or e itself (a loopback). */
static mempipe *reader_of(mempipe *e)
{
    struct mempipe__core *c = e->core;
    for (int i = 0; i < c->nends; i++)
        if (e->txi >= 0 && c->ends[i].rxi == e->txi)
            return &c->ends[i];
    return NULL;
}

/*
 * Every close: rerr is the error the peer reads instead of EOF (0: EOF),
 * werr the one its writes get instead of -EPIPE (0: -EPIPE); reset makes it
 * an abort (R38).
 */
static void end_close(mempipe *end, int rerr, int werr, bool reset)
{
    MEMPIPE__PROBE3(close, end, (size_t)0, (ssize_t)0);
    mempipe__fd_close_end(end); /* its pollable fds, if it asked (fd.c) */
    struct mempipe__core *c = end->core;
    struct mempipe__pipe *rx = mempipe__end_rx(end);
    struct mempipe__pipe *tx = mempipe__end_tx(end);
    if (MEMPIPE__UNLIKELY(c->gen != mempipe__fork_gen()))
        goto release; /* inherited across fork(): wake nobody (R34) */
    /* R39: bytes this end never read make its close an abort. */
    if (atomic_load_explicit(&end->rst, memory_order_relaxed) && rx != NULL &&
        mempipe__pipe_readable(rx) > 0)
        reset = true, rerr = werr = -ECONNRESET;
    /*
     * Drop this end's own wakers first (R22): once they are gone and no
     * other thread is inside one, nothing can call them any more. Then
     * close the directions, which wakes the peer's wakers (R19, R20).
     */
    if (rx != NULL)
        mempipe__slot_drop(&rx->rd);
    if (tx != NULL)
        mempipe__slot_drop(&tx->wr);
    /*
     * The reading side first: once the peer can see this end's EOF (or
     * error, or reset), its writes already fail, as when a socket closes
     * both ways at once (a peer that read EOF never gets a write through).
     */
    if (rx != NULL)
        mempipe__pipe_close_read(rx, werr ? MEMPIPE__WERR(werr) : 0);
    if (tx != NULL && reset) {
        /* The reader's fast path does not look at the flags: take it away
         * before the reset is published and woken, so that every read the
         * reader makes after seeing the reset goes where it is seen. */
        mempipe *peer = reader_of(end);
        if (peer != NULL)
            atomic_store_explicit(&peer->rxf, NULL, memory_order_relaxed);
        mempipe__pipe_reset(tx);
    } else if (tx != NULL) {
        mempipe__pipe_close_write(tx, rerr ? MEMPIPE__RERR(rerr) : 0);
    }

    if (c->shm != NULL)
        mempipe__shm_end_closed(c->shm, end); /* the peer process hears */

release:
    /*
     * R32: inside a call on this pipe (this close runs in a waker that the
     * call ran), the reference is dropped when the outermost such call
     * returns, which still touches the pipe; otherwise now.
     */
    if (!mempipe__hold_defer(rx, tx, core_unref, c))
        core_unref(c, 1);
}

void mempipe_close(mempipe *end)
{
    if (end != NULL)
        end_close(end, 0, 0, false);
}

int mempipe_close_with_error(mempipe *end, int err)
{
    /* An errno value, and not "pending": a read that returned -EAGAIN
     * forever would wait for a wake that never comes. */
    if (end == NULL || err >= 0 || err < -MEMPIPE__ERR_MAX || err == -EAGAIN)
        return -EINVAL;
    end_close(end, err, err, false);
    return 0;
}

void mempipe_abort(mempipe *end)
{
    if (end != NULL)
        end_close(end, -ECONNRESET, -ECONNRESET, true);
}

int mempipe_set_rst_on_unread(mempipe *end, int on)
{
    if (end == NULL)
        return -EINVAL;
    if (end->rxi < 0)
        return -EBADF; /* a simplex writer never reads */
    atomic_store_explicit(&end->rst, on != 0, memory_order_relaxed);
    return 0;
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
        return -EINVAL; /* R30; -EBADF is the slow path's (hook.c) */
    return mempipe__end_read(end, buf, len, waker, 0);
}

ssize_t mempipe_poll_write(mempipe *end, const void *buf, size_t len,
                           const mempipe_waker *waker)
{
    if (end == NULL || (buf == NULL && len > 0) || BAD_WAKER(waker))
        return -EINVAL;
    return mempipe__end_write(end, buf, len, waker, 0);
}

ssize_t mempipe__iov_total(const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || iovcnt > IOV_MAX || (iov == NULL && iovcnt > 0))
        return -EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_base == NULL && iov[i].iov_len > 0)
            return -EINVAL;
        if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
            return -EINVAL; /* the sum would overflow the return type */
        total += iov[i].iov_len;
    }
    return (ssize_t)total;
}

ssize_t mempipe_poll_writev(mempipe *end, const struct iovec *iov, int iovcnt,
                            const mempipe_waker *waker)
{
    ssize_t total = mempipe__iov_total(iov, iovcnt);
    if (end == NULL || total < 0 || BAD_WAKER(waker))
        return -EINVAL;
    return mempipe__end_writev(end, iov, iovcnt, (size_t)total, waker, 0);
}

ssize_t mempipe_poll_readv(mempipe *end, const struct iovec *iov, int iovcnt,
                           const mempipe_waker *waker)
{
    ssize_t total = mempipe__iov_total(iov, iovcnt);
    if (end == NULL || total < 0 || BAD_WAKER(waker))
        return -EINVAL;
    return mempipe__end_readv(end, iov, iovcnt, (size_t)total, waker, 0);
}

int mempipe_poll_readable(mempipe *end, const mempipe_waker *waker)
{
    if (end == NULL || BAD_WAKER(waker))
        return -EINVAL;
    if (end->rxi < 0)
        return -EBADF; /* a simplex writer never reads */
    mempipe__end_pull(end);
    return mempipe__pipe_poll_ready(mempipe__end_rx(end), MEMPIPE__ROLE_READER,
                                    waker);
}

int mempipe_poll_writable(mempipe *end, const mempipe_waker *waker)
{
    if (end == NULL || BAD_WAKER(waker))
        return -EINVAL;
    if (end->txi < 0)
        return -EBADF; /* a simplex reader never writes */
    mempipe__end_pull(end);
    return mempipe__pipe_poll_ready(mempipe__end_tx(end), MEMPIPE__ROLE_WRITER,
                                    waker);
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
    if (end->txi < 0)
        return -EBADF;
    mempipe__pipe_close_write(mempipe__end_tx(end), 0);
    MEMPIPE__PROBE3(shutdown, end, (size_t)0, (ssize_t)0);
    return 0;
}

int mempipe_shutdown(mempipe *end)
{
    return mempipe_poll_shutdown(end, NULL);
}

int mempipe_shutdown_read(mempipe *end)
{
    if (end == NULL)
        return -EINVAL;
    if (end->rxi < 0)
        return -EBADF; /* a simplex writer never reads */
    /* The reader's fast path does not look at the flags: take it away
     * first, so that every read after the shutdown is seen goes where the
     * shutdown is seen (as an abort does for its peer). */
    atomic_store_explicit(&end->rxf, NULL, memory_order_relaxed);
    mempipe__pipe_shut_read(mempipe__end_rx(end));
    MEMPIPE__PROBE3(shutdown, end, (size_t)1, (ssize_t)0);
    return 0;
}

int mempipe_shut_state(const mempipe *end)
{
    if (end == NULL)
        return -EINVAL;
    /* Acquire: as the other snapshots. A direction the end lacks (a simplex
     * end's) is shut from the start, as on a half-shut socket. */
    mempipe__end_pull(end);
    const struct mempipe__pipe *rx = mempipe__end_rx(end);
    const struct mempipe__pipe *tx = mempipe__end_tx(end);
    int st = 0;
    if (rx == NULL ||
        (mempipe__pipe_flags(rx) & (MEMPIPE__WCLOSED | MEMPIPE__RCLOSED)) != 0)
        st |= MEMPIPE_SHUT_READ;
    if (tx == NULL || mempipe__pipe_flags(tx) != 0)
        st |= MEMPIPE_SHUT_WRITE;
    return st;
}

size_t mempipe_unread(const mempipe *end)
{
    if (end == NULL || end->txi < 0)
        return 0;
    mempipe__end_pull(end);
    return mempipe__pipe_unread(mempipe__end_tx(end));
}

size_t mempipe_readable(const mempipe *end)
{
    if (end == NULL || end->rxi < 0)
        return 0;
    mempipe__end_pull(end);
    return mempipe__pipe_readable(mempipe__end_rx(end));
}

size_t mempipe_writable(const mempipe *end)
{
    if (end == NULL || end->txi < 0)
        return 0;
    mempipe__end_pull(end);
    return mempipe__pipe_writable(mempipe__end_tx(end));
}

size_t mempipe_capacity(const mempipe *end)
{
    if (end == NULL)
        return 0;
    return end->txi >= 0 ? mempipe__end_tx(end)->ring.cap
                         : mempipe__end_rx(end)->ring.cap;
}

/* ---- zero-copy windows and low-water marks (R62-R66) --------------------- */

/*
 * The zero-copy calls take the pipe calls directly while the end's fast
 * pointer for the direction is set and the thread has no budget or tracer;
 * otherwise the slow path (hook.c), which adds the testing features.
 */
static bool zc_fast(const _Atomic(struct mempipe__pipe *) *f)
{
    return atomic_load_explicit(f, memory_order_relaxed) != NULL &&
           !MEMPIPE__SLOW();
}

int mempipe_write_reserve(mempipe *end, size_t want, struct iovec iov[2],
                          const mempipe_waker *waker)
{
    if (end == NULL || iov == NULL || want == 0 || BAD_WAKER(waker))
        return -EINVAL;
    if (end->txi < 0)
        return -EBADF;
    if (zc_fast(&end->txf))
        return mempipe__pipe_reserve(mempipe__end_tx(end), want, iov, waker);
    return mempipe__hook_reserve(end, want, iov, waker);
}

int mempipe_write_commit(mempipe *end, size_t n)
{
    if (end == NULL)
        return -EINVAL;
    if (end->txi < 0)
        return -EBADF;
    if (zc_fast(&end->txf)) {
        ssize_t rc = mempipe__pipe_commit(mempipe__end_tx(end), n);
        return rc < 0 ? (int)rc : 0;
    }
    return mempipe__hook_commit(end, n);
}

int mempipe_read_peek(mempipe *end, struct iovec iov[2],
                      const mempipe_waker *waker)
{
    if (end == NULL || iov == NULL || BAD_WAKER(waker))
        return -EINVAL;
    if (end->rxi < 0)
        return -EBADF;
    if (zc_fast(&end->rxf))
        return mempipe__pipe_peek(mempipe__end_rx(end), iov, SIZE_MAX, waker);
    return mempipe__hook_peek(end, iov, waker);
}

int mempipe_read_consume_examined(mempipe *end, size_t consumed,
                                  size_t examined)
{
    if (end == NULL)
        return -EINVAL;
    if (end->rxi < 0)
        return -EBADF;
    if (zc_fast(&end->rxf))
        return mempipe__pipe_consume(mempipe__end_rx(end), consumed, examined);
    return mempipe__hook_consume(end, consumed, examined);
}

int mempipe_read_consume(mempipe *end, size_t n)
{
    return mempipe_read_consume_examined(end, n, n);
}

int mempipe_set_read_lowat(mempipe *end, size_t n)
{
    if (end == NULL)
        return -EINVAL;
    if (end->rxi < 0)
        return -EBADF;
    return mempipe__pipe_set_lowat(mempipe__end_rx(end), MEMPIPE__ROLE_READER,
                                   n);
}

int mempipe_set_write_lowat(mempipe *end, size_t n)
{
    if (end == NULL)
        return -EINVAL;
    if (end->txi < 0)
        return -EBADF;
    return mempipe__pipe_set_lowat(mempipe__end_tx(end), MEMPIPE__ROLE_WRITER,
                                   n);
}
