/* Shared helpers for the cmocka tests. */
#ifndef MEMPIPE_TESTUTIL_H
#define MEMPIPE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>

#include <cmocka.h>

#include "mempipe.h"

/*
 * Asserts a mempipe return value, printing both values and their
 * mempipe_strerror() names on failure.
 */
#define assert_rc(expected, actual)                                            \
    tu_assert_rc((long long)(expected), (long long)(actual), #actual,          \
                 __FILE__, __LINE__)
void tu_assert_rc(long long expected, long long actual, const char *expr,
                  const char *file, int line);

/* A waker that counts its calls. */
struct tu_counter {
    atomic_int calls;
};
void tu_counter_wake(void *ctx);
mempipe_waker tu_counter_waker(struct tu_counter *c);
int tu_calls(struct tu_counter *c);

/* A small deterministic PRNG (xorshift64*), one per thread. */
uint64_t tu_rand(uint64_t *state);

/* Fills buf with the stream bytes at positions pos..pos+len-1 of seed. */
void tu_pattern(unsigned char *buf, size_t len, uint64_t pos, uint64_t seed);
/* Checks buf against tu_pattern; returns the first bad index or -1. */
long tu_check_pattern(const unsigned char *buf, size_t len, uint64_t pos,
                      uint64_t seed);

/* Monotonic seconds. */
double tu_now(void);

#endif
