/* SPDX-License-Identifier: MIT */
/*
 * coop: the cooperative budget, tokio's `coop` for C executors.
 *
 * An executor that polls many tasks on one thread calls
 * mempipe_budget_set(n) before it polls each task. That task's poll calls
 * (mempipe_poll_read, _write, _writev) may then complete n times; the next
 * one yields: it returns -EAGAIN without touching the pipe and calls its
 * waker at once, so the executor re-queues the task behind the others. A task
 * looping on an always-ready pipe can no longer starve its neighbours.
 *
 * Cost when unused: after their argument checks the public poll calls test
 * one thread-local word, ORed with the USDT semaphore of the probes
 * (trace.h), in one predicted-not-taken branch (MEMPIPE__SLOW),
 * and otherwise run exactly as before. Behind that branch, out of line in
 * hook.c: the budget, and the read/write/park probes.
 *
 * Blocking calls ignore the budget: they neither yield nor spend. block.c
 * says so explicitly (MEMPIPE__OP_BLOCKING, hook.h), and wakers that a
 * blocking call runs on this thread still see the thread's real budget.
 */
#ifndef MEMPIPE_COOP_H
#define MEMPIPE_COOP_H

#include "fence.h" /* MEMPIPE__UNLIKELY */
#include "mempipe.h"
#include "trace.h" /* MEMPIPE__TRACED */

#include <stdbool.h>
#include <sys/types.h>

/*
 * initial-exec: one %fs-relative load instead of a __tls_get_addr call in a
 * shared library. The variable is 4 bytes of the static TLS surplus that
 * glibc keeps for libraries loaded with dlopen.
 */
#if defined(__GNUC__)
#define MEMPIPE__TLS_IE __attribute__((tls_model("initial-exec")))
#else
#define MEMPIPE__TLS_IE
#endif

/*
 * This thread's budget: 0 means unlimited (the default, so every thread
 * starts with it), otherwise 1 + the calls that may still complete, so 1 means
 * exhausted. Only this thread reads or writes it.
 */
extern _Thread_local unsigned mempipe__budget MEMPIPE__TLS_IE;

/*
 * The one hot-path test of each poll call: a budget on this thread, or a
 * tracer on the probes? Bitwise OR, so the compiler emits one branch.
 */
#define MEMPIPE__SLOW()                                                        \
    MEMPIPE__UNLIKELY((mempipe__budget | MEMPIPE__TRACED()) != 0)

/* True when this thread's budget is spent: the next counted call yields. */
static inline bool mempipe__coop_exhausted(void)
{
    return mempipe__budget == 1;
}

/* Calls w at once (if not NULL) and returns -EAGAIN: a yield. */
ssize_t mempipe__coop_yield(const mempipe_waker *w);

/* Spends one unit for a completed call (n != -EAGAIN); returns n. */
ssize_t mempipe__coop_spend(ssize_t n);

#endif
