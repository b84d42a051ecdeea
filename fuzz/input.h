/* SPDX-License-Identifier: MIT */
/*
 * The fuzz targets' input decoding (mempipe_fuzz.c, shm_fuzz.c): bytes
 * taken from the front of the input, zeros once it is used up.
 */
#ifndef MEMPIPE_FUZZ_INPUT_H
#define MEMPIPE_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct in {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t u8(struct in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t u16(struct in *in)
{
    uint16_t lo = u8(in);
    return (uint16_t)(lo | (uint16_t)u8(in) << 8);
}

/* A length: mostly small, sometimes up to a few KiB. */
static inline size_t len_arg(struct in *in)
{
    uint8_t b = u8(in);
    if (b < 200)
        return b % 40;
    return u16(in) % 5000;
}

#endif
