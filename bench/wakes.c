/* SPDX-License-Identifier: MIT */
/*
 * Wake-up counting for the two-thread rows, white-box: the only file of the
 * benchmark that sees the library's insides (src/ is on its include path
 * alone, bench/CMakeLists.txt).
 *
 * Each end has one parker per direction (struct mempipe's rpark and wpark,
 * src/end.h), on which its blocking reads and writes sleep. Every call of
 * the parking waker — the library deciding to wake that thread — adds 2
 * to the parker's word (src/park.h: bit 0 says a thread sleeps, bits 1..
 * count the wakes), whether the thread then still spins or has gone to
 * sleep in the futex. Reading the word after the run costs the measured
 * path nothing: no statistics feature is turned on (mempipe_get_stats
 * would send every call to the slow path), no waker of the bench's own is
 * put between the library and its parker.
 */
#include "bench.h"

#include "end.h"

#include <stdatomic.h>

unsigned bench_wakes(const mempipe *end, bool reader)
{
    const struct mempipe__parker *pk = reader ? &end->rpark : &end->wpark;
    /* Relaxed: read after the threads that park on it were joined. */
    return atomic_load_explicit(&pk->seq, memory_order_relaxed) >> 1;
}
