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

enum mempipe__kind {
    MEMPIPE__DUPLEX = 1,
    MEMPIPE__SIMPLEX_READER,
    MEMPIPE__SIMPLEX_WRITER,
    MEMPIPE__LOOPBACK,
};

struct mempipe__core;

struct mempipe {
    struct mempipe__pipe *rx; /* the pipe this end reads, or NULL */
    struct mempipe__pipe *tx; /* the pipe this end writes, or NULL */
    struct mempipe__core *core;
    enum mempipe__kind kind;
    struct mempipe__parker rpark; /* blocking reads sleep here */
    struct mempipe__parker wpark; /* blocking writes sleep here */
};

#endif
