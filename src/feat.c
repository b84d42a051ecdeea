/* SPDX-License-Identifier: MIT */
/* The testing features' setters and statistics: see feat.h, mempipe.h. */
#include "feat.h"

#include "alloc.h"

#include <errno.h>
#include <string.h>

/*
 * The end's record, made on first use. Either of the end's threads (or a
 * thread asking for stats) may race to make it: one compare-and-swap wins.
 * Then the end's fast pointers are cleared for good, so its calls take the
 * slow path, which applies the record (hook.c).
 */
static struct mempipe__feat *get_feat(mempipe *e)
{
    struct mempipe__feat *f = mempipe__feat_of(e);
    if (f != NULL)
        return f;
    struct mempipe__feat *nf = mempipe__alloc(sizeof *nf);
    if (nf == NULL)
        return NULL;
    memset(nf, 0, sizeof *nf);
    _Atomic(struct mempipe__feat *) *slot = &e->core->feat[e - e->core->ends];
    /* Release: the zeroed record before any thread can see it. */
    if (!atomic_compare_exchange_strong_explicit(
            slot, &f, nf, memory_order_acq_rel, memory_order_acquire)) {
        mempipe__free(nf, sizeof *nf);
        return f; /* the other thread's */
    }
    /* Relaxed, as every access to them: a call that still loaded the old
     * pointer runs as if it had started before (feat.h). */
    atomic_store_explicit(&e->rxf, NULL, memory_order_relaxed);
    atomic_store_explicit(&e->txf, NULL, memory_order_relaxed);
    return nf;
}

void mempipe__feat_free(struct mempipe__core *c)
{
    for (int i = 0; i < 2; i++) {
        struct mempipe__feat *f =
            atomic_load_explicit(&c->feat[i], memory_order_acquire);
        mempipe__free(f, sizeof *f);
    }
}

/* A direction's PRNG state for drawn caps: distinct per direction, never
 * 0 (xorshift's fixed point). */
static uint64_t seed_of(unsigned seed, uint64_t salt)
{
    if (seed == 0)
        return 0;
    uint64_t s = ((uint64_t)seed * 0x9e3779b97f4a7c15u) ^ salt;
    return s != 0 ? s : salt;
}

int mempipe_set_faults(mempipe *end, const mempipe_faults *f)
{
    if (end == NULL)
        return -EINVAL;
    if (f != NULL && (f->fail_read_at != 0 || f->fail_write_at != 0) &&
        (f->fail_err >= 0 || f->fail_err < -MEMPIPE__ERR_MAX ||
         f->fail_err == -EAGAIN))
        return -EINVAL; /* a failure must say which error */
    struct mempipe__feat *ft = get_feat(end);
    if (ft == NULL)
        return -ENOMEM;
    static const mempipe_faults none;
    if (f == NULL)
        f = &none;
    ft->rd.max = f->max_read;
    ft->wr.max = f->max_write;
    ft->rd.rng = seed_of(f->chunk_seed, 0x5244u); /* "RD" */
    ft->wr.rng = seed_of(f->chunk_seed, 0x5752u); /* "WR" */
    ft->rd.fail_at = f->fail_read_at;
    ft->wr.fail_at = f->fail_write_at;
    ft->rd.counted = ft->wr.counted = 0;
    ft->fail_err = f->fail_err;
    ft->pending_every = f->pending_every;
    atomic_store_explicit(&ft->polls, 0, memory_order_relaxed);
    return 0;
}

int mempipe_set_tap(mempipe *end,
                    void (*fn)(void *ctx, int dir, const void *data,
                               size_t len),
                    void *ctx)
{
    if (end == NULL)
        return -EINVAL;
    struct mempipe__feat *ft = get_feat(end);
    if (ft == NULL)
        return -ENOMEM;
    ft->tap = fn;
    ft->tap_ctx = fn != NULL ? ctx : NULL;
    return 0;
}

/* A position without the ring's closed bit: bytes ever written / read. */
static uint64_t position(const atomic_size_t *pos)
{
    return atomic_load_explicit(pos, memory_order_acquire) &
           ~MEMPIPE__RING_CLOSED;
}

static uint64_t get(const atomic_ullong *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

int mempipe_get_stats(const mempipe *end, mempipe_stats *out)
{
    if (end == NULL || out == NULL)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    const struct mempipe__pipe *rx = mempipe__end_rx(end);
    const struct mempipe__pipe *tx = mempipe__end_tx(end);
    if (tx != NULL)
        out->bytes_written = position(&tx->ring.wpos);
    if (rx != NULL)
        out->bytes_read = mempipe__ring_delivered(&rx->ring);
    /* Counting starts here if it had not (mempipe.h says so): making the
     * record is the one change this call makes to the end, hence the cast. */
    struct mempipe__feat *ft = get_feat((mempipe *)(uintptr_t)end);
    if (ft == NULL)
        return -ENOMEM;
    out->writes = get(&ft->wr.moved);
    out->reads = get(&ft->rd.moved);
    out->pending_writes = get(&ft->wr.pending);
    out->pending_reads = get(&ft->rd.pending);
    out->wakes = get(&ft->wakes);
    out->parks = get(&ft->rd.parks) + get(&ft->wr.parks);
    out->faults = get(&ft->faults);
    out->failed = get(&ft->failed);
    out->peak_buffered = atomic_load_explicit(&ft->peak, memory_order_relaxed);
    return 0;
}
