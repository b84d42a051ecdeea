/* SPDX-License-Identifier: MIT */
/*
 * The USDT semaphore of trace.h. A tracer increments a probe's semaphore
 * while it is attached to that probe (the kernel does it for uprobes with a
 * reference counter, as bpftrace and perf use). All six probes share one
 * counter, so the hot poll calls test a single 16-bit word: sdt.h names a
 * probe's semaphore provider_probe_semaphore, and here those six names are
 * aliases of mempipe__semaphore. The ".probes" section is where sdt.h users
 * conventionally keep semaphores.
 */
#include "trace.h"

#if defined(MEMPIPE_USDT)
__attribute__((section(".probes"))) volatile unsigned short mempipe__semaphore =
    0;

#define ALIAS(name)                                                            \
    extern volatile unsigned short mempipe_##name##_semaphore                  \
        __attribute__((alias("mempipe__semaphore")))

ALIAS(read);
ALIAS(write);
ALIAS(park);
ALIAS(wake);
ALIAS(shutdown);
ALIAS(close);
#else
/* ISO C forbids an empty translation unit. */
typedef int mempipe__trace_unused;
#endif
