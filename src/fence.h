/* SPDX-License-Identifier: MIT */
/*
 * The full fence of the lost-wakeup protocol (see pipe.c).
 *
 * On x86-64 a locked read-modify-write of the stack is a full barrier and
 * costs less than MFENCE on current cores (the Linux kernel's smp_mb() made
 * the same switch). Elsewhere, the C11 seq_cst fence.
 *
 * ThreadSanitizer models neither (gcc says so with -Wtsan). That is safe
 * here: the fences only order a store before a load for the wakeup
 * handshake; every transfer of data is ordered by release/acquire pairs,
 * which TSan does model, so TSan still checks all data for races.
 */
#ifndef MEMPIPE_FENCE_H
#define MEMPIPE_FENCE_H

#include <stdatomic.h>

static inline void mempipe__full_fence(void)
{
#if defined(__x86_64__)
    __asm__ __volatile__("lock; orl $0, -8(%%rsp)" ::: "memory", "cc");
#else
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
    atomic_thread_fence(memory_order_seq_cst);
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic pop
#endif
#endif
}

/*
 * The same fence right after a seq_cst read-modify-write: on x86-64 the
 * locked instruction already was a full barrier, so only the compiler must
 * not move loads above it. Elsewhere (ARM's store-release exclusive lets
 * a later load pass it) a real fence.
 */
static inline void mempipe__fence_after_rmw(void)
{
#if defined(__x86_64__)
    __asm__ __volatile__("" ::: "memory");
#else
    mempipe__full_fence();
#endif
}

/* A spin-wait hint: PAUSE on x86, YIELD on ARM, nothing elsewhere. */
static inline void mempipe__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#if defined(__GNUC__)
#define MEMPIPE__LIKELY(x)   __builtin_expect(!!(x), 1)
#define MEMPIPE__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define MEMPIPE__LIKELY(x)   (x)
#define MEMPIPE__UNLIKELY(x) (x)
#endif

#endif
