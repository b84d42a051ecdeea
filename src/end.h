/* SPDX-License-Identifier: MIT */
/*
 * end: the handle users hold. A duplex core holds two pipes crossed and two
 * ends; a simplex core one pipe and a reader and a writer end; a loopback
 * core one pipe and one end playing both roles. The core is one allocation,
 * refcounted by its open ends: the last close frees it.
 */
#ifndef MEMPIPE_END_H
#define MEMPIPE_END_H

#include "mempipe.h"
#include "park.h"
#include "pipe.h"

struct mempipe__feat;

enum mempipe__kind {
    MEMPIPE__DUPLEX = 1,
    MEMPIPE__SIMPLEX_READER,
    MEMPIPE__SIMPLEX_WRITER,
    MEMPIPE__LOOPBACK,
};

/*
 * The end a user holds. Its reads and writes start with one load of the
 * fast pointer of their direction: the pipe, while calls may take the
 * inlined fast path; NULL when they must not (a simplex end's wrong
 * direction, a peer's abort, R38), which sends them to the one slow path
 * (hook.c). So every per-end feature that needs the slow path costs the fast
 * path nothing: it clears the pointer. The pipes themselves are found
 * through the indices (mempipe__end_rx/_tx), which never change.
 */
struct mempipe {
    _Atomic(struct mempipe__pipe *) rxf; /* reads' fast path, or NULL */
    _Atomic(struct mempipe__pipe *) txf; /* writes' fast path, or NULL */
    struct mempipe__core *core;
    unsigned char kind;        /* enum mempipe__kind */
    signed char rxi, txi;      /* core->pipes index it reads / writes, or -1 */
    _Atomic unsigned char rst; /* mempipe_set_rst_on_unread (R39) */
    struct mempipe__parker rpark; /* blocking reads sleep here */
    struct mempipe__parker wpark; /* blocking writes sleep here */
};

/*
 * One allocation for the whole pipe: the pipes first (cache-line aligned),
 * then the ends, refcounted by its open ends and the calls holding closes
 * (hold.h): the last reference frees it.
 */
struct mempipe__core {
    struct mempipe__pipe pipes[2];
    struct mempipe ends[2];
    atomic_int refs; /* open ends */
    unsigned gen;    /* fork generation it was made in (fd.h) */
    int npipes;
    int nends;
    /* Each end's testing features (feat.h), NULL until first used. In
     * what was padding: an idle pair stays 640 bytes. */
    _Atomic(struct mempipe__feat *) feat[2];
    /* An shm pipe's process-local state (shm.h), else NULL: its pipes are
     * flat (ring.h) and its ends have no fast pointers. */
    struct mempipe__shm *shm;
};

struct mempipe__shm;

/*
 * shm.c: a core of npipes flat pipes, pipe i on area f[i] with capacity
 * cap (each its observer obs[i]), two end slots, end 0 wired as kind with
 * pipe indices rxi, txi (-1: none) and no fast pointers, one reference.
 * NULL without memory.
 */
struct mempipe__core *
mempipe__core_flat(int npipes, size_t cap, const struct mempipe__flat f[2],
                   struct mempipe__observer *obs[2], struct mempipe__shm *shm,
                   enum mempipe__kind kind, int rxi, int txi);

/* shm.c: one more reference to c (its end is open), and its drop, which
 * frees c if it was the last. Any thread. */
void mempipe__core_ref(struct mempipe__core *c);
void mempipe__core_unref(struct mempipe__core *c);

/* shm.c: wires c's end 1 (an attach in the creating process) and takes
 * its reference. */
mempipe *mempipe__core_second(struct mempipe__core *c, enum mempipe__kind kind,
                              int rxi, int txi);

/* The pipe this end reads, or NULL (a simplex writer). Any thread. */
static inline struct mempipe__pipe *mempipe__end_rx(const struct mempipe *e)
{
    return e->rxi < 0 ? NULL : &e->core->pipes[e->rxi];
}

/* The pipe this end writes, or NULL (a simplex reader). Any thread. */
static inline struct mempipe__pipe *mempipe__end_tx(const struct mempipe *e)
{
    return e->txi < 0 ? NULL : &e->core->pipes[e->txi];
}

/*
 * The checked sum of iovcnt slices' lengths, or -EINVAL (R30): iov NULL
 * with iovcnt > 0, iovcnt negative or above IOV_MAX, a slice with a length
 * and no base, or a sum past SSIZE_MAX. Any thread.
 */
ssize_t mempipe__iov_total(const struct iovec *iov, int iovcnt);

#endif
