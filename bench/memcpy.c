/* SPDX-License-Identifier: MIT */
/*
 * The physical limit: memcpy of a cache-resident 64 KiB block until 1 GiB
 * has moved, and of 256 MiB into another 256 MiB (DRAM bound). A pipe moves
 * every byte twice (into its buffer, out to the reader), so half the cached
 * rate is the ceiling of the bulk workloads.
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

/* Tells the compiler that dst is used, so no copy is optimised away. */
static inline void clobber(void *dst)
{
    __asm__ __volatile__("" : : "r"(dst) : "memory");
}

static unsigned char *touched(size_t len)
{
    unsigned char *p = malloc(len);
    if (p == NULL)
        die("out of memory (%zu bytes)", len);
    memset(p, 0x5a, len); /* fault every page in before timing */
    return p;
}

static double copy_rate(unsigned char *dst, const unsigned char *src,
                        size_t block, size_t total)
{
    memcpy(dst, src, block); /* warm caches and TLB */
    clobber(dst);
    double t0 = cpu_sec();
    for (size_t done = 0; done < total; done += block) {
        memcpy(dst, src, block);
        clobber(dst);
    }
    return (double)total / (cpu_sec() - t0) / 1e9;
}

void run_memcpy(const struct opts *o, double *cached_gbps)
{
    size_t total = o->quick ? 128 * MIB : GIB;
    size_t big = o->quick ? 64 * MIB : 256 * MIB;
    struct row rows[2] = {
        {.id = "memcpy",
         .workload = "memcpy 64 KiB (cache)",
         .placement = "-",
         .impl = "memcpy",
         .unit = "GB/s",
         .sense = HIGHER_BETTER},
        {.id = "memcpyD",
         .workload = "memcpy 256 MiB (DRAM)",
         .placement = "-",
         .impl = "memcpy",
         .unit = "GB/s",
         .sense = HIGHER_BETTER},
    };
    if (o->quick)
        rows[1].workload = "memcpy 64 MiB (DRAM)";
    unsigned char *src = touched(64 * KIB), *dst = touched(64 * KIB);
    unsigned char *bsrc = touched(big), *bdst = touched(big);
    for (int r = 0; r < o->runs; r++) {
        struct sample s = {.value = copy_rate(dst, src, 64 * KIB, total)};
        row_add(&rows[0], &s);
        s.value = copy_rate(bdst, bsrc, big, total);
        row_add(&rows[1], &s);
    }
    free(src);
    free(dst);
    free(bsrc);
    free(bdst);
    table_group(rows, 2);
    *cached_gbps = row_median(&rows[0]);
}
