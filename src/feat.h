/* SPDX-License-Identifier: MIT */
/*
 * feat: the per-end testing features — injected faults, statistics and a
 * tap (mempipe_set_faults, mempipe_get_stats, mempipe_set_tap). Their
 * record is allocated on an end's first use of any of them and lives until
 * the pipe is freed; from then on the end's fast pointers stay NULL, so its
 * calls go through the one slow path (hook.c), which applies them. Ends
 * that never use them pay nothing.
 */
#ifndef MEMPIPE_FEAT_H
#define MEMPIPE_FEAT_H

#include "end.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* One direction of one end: written only by the thread that makes that
 * direction's calls (R26), read by mempipe_get_stats on any thread. */
struct mempipe__dirfeat {
    size_t max;          /* cap per call, 0 none */
    uint64_t rng;        /* xorshift64* state for drawn caps; 0: fixed */
    uint64_t fail_at;    /* the counted call that fails first; 0 never */
    uint64_t counted;    /* calls counted for fail_at since set_faults */
    atomic_ullong moved; /* stats: calls that moved bytes */
    atomic_ullong pending, parks;
};

struct mempipe__feat {
    struct mempipe__dirfeat rd, wr;
    int fail_err;
    unsigned pending_every;
    atomic_ullong polls; /* poll calls with len > 0, both directions */
    void (*tap)(void *ctx, int dir, const void *data, size_t len);
    void *tap_ctx;
    atomic_ullong wakes, faults, failed; /* both directions: relaxed adds */
    atomic_size_t peak;                  /* the writer's thread only */
};

/* The end's record, or NULL if it never used a feature. Any thread. */
static inline struct mempipe__feat *mempipe__feat_of(const mempipe *e)
{
    /* Acquire: pairs with the release that installed it (feat.c). */
    return atomic_load_explicit(&e->core->feat[e - e->core->ends],
                                memory_order_acquire);
}

/* Pipe free: frees the records of the core's ends. No thread left. */
void mempipe__feat_free(struct mempipe__core *c);

#endif
