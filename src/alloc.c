/* SPDX-License-Identifier: MIT */
/*
 * The allocator hook and the version string.
 *
 * Every allocation of the library goes through one realloc-style function so
 * that tests can fail the Nth allocation (Lua's ltests.c does the same) and
 * embedders can use their own heap.
 */
#include "mempipe.h"

#include "alloc.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define ALIGN 64

static void *default_realloc(void *ctx, void *ptr, size_t old_size,
                             size_t new_size)
{
    (void)ctx;
    (void)old_size;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, new_size);
}

/*
 * The hook may only change while no pipe exists (mempipe_set_allocator
 * checks live_pipes), so plain reads of fn/ctx on the data path race with
 * nothing. The atomics below only make that check itself well defined.
 */
static mempipe_realloc_fn alloc_fn = default_realloc;
static void *alloc_ctx;
static atomic_long live_pipes;

/* The version string, from the header's macros (the one source). */
#define STR_(x) #x
#define STR(x)  STR_(x)
#define VERSION_STRING                                                         \
    STR(MEMPIPE_VERSION_MAJOR)                                                 \
    "." STR(MEMPIPE_VERSION_MINOR) "." STR(MEMPIPE_VERSION_PATCH)

const char *mempipe_version(void)
{
    return VERSION_STRING;
}

unsigned mempipe_version_number(void)
{
    return MEMPIPE_VERSION_HEX;
}

int mempipe_set_allocator(mempipe_realloc_fn fn, void *ctx)
{
    if (atomic_load_explicit(&live_pipes, memory_order_acquire) != 0)
        return -EBUSY;
    alloc_fn = fn ? fn : default_realloc;
    alloc_ctx = fn ? ctx : NULL;
    return 0;
}

void mempipe__pipes_made(int delta)
{
    atomic_fetch_add_explicit(&live_pipes, delta, memory_order_acq_rel);
}

void *mempipe__alloc(size_t size)
{
    if (size == 0)
        return NULL;
    return alloc_fn(alloc_ctx, NULL, 0, size);
}

void mempipe__free(void *ptr, size_t size)
{
    if (ptr != NULL)
        alloc_fn(alloc_ctx, ptr, size, 0);
}

/*
 * Over-allocates by ALIGN + a pointer, aligns up, and stores the raw pointer
 * just below the aligned block so that free can find it.
 */
void *mempipe__alloc_aligned(size_t size)
{
    if (size > SIZE_MAX - ALIGN - sizeof(void *))
        return NULL;
    unsigned char *raw = mempipe__alloc(size + ALIGN + sizeof(void *));
    if (raw == NULL)
        return NULL;
    uintptr_t p =
        ((uintptr_t)raw + sizeof(void *) + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1);
    ((void **)p)[-1] = raw;
    return (void *)p;
}

void mempipe__free_aligned(void *ptr, size_t size)
{
    if (ptr != NULL)
        mempipe__free(((void **)ptr)[-1], size + ALIGN + sizeof(void *));
}
