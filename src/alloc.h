/* SPDX-License-Identifier: MIT */
/* Allocation through the user's hook (mempipe_set_allocator). */
#ifndef MEMPIPE_ALLOC_H
#define MEMPIPE_ALLOC_H

#include <stddef.h>

/* size bytes, or NULL. Any thread. */
void *mempipe__alloc(size_t size);
/* Frees what mempipe__alloc(size) returned; NULL is a no-op. */
void mempipe__free(void *ptr, size_t size);

/*
 * Cache-line aligned variants for structures whose fields are split across
 * cache lines (the ring's producer and consumer sides).
 */
void *mempipe__alloc_aligned(size_t size);
void mempipe__free_aligned(void *ptr, size_t size);

/* Counts pipes alive, so the allocator cannot change under them. */
void mempipe__pipes_made(int delta);

#endif
