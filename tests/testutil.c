#include "testutil.h"

#include <stdio.h>
#include <time.h>

void tu_assert_rc(long long expected, long long actual, const char *expr,
                  const char *file, int line)
{
    if (expected == actual)
        return;
    const char *en = expected < 0 && expected > -4096
                         ? mempipe_strerror((int)expected)
                         : "count";
    const char *an =
        actual < 0 && actual > -4096 ? mempipe_strerror((int)actual) : "count";
    fprintf(stderr, "%s:%d: %s: expected %lld (%s), got %lld (%s)\n", file,
            line, expr, expected, en, actual, an);
    fail_msg("%s: expected %lld, got %lld", expr, expected, actual);
}

void tu_counter_wake(void *ctx)
{
    struct tu_counter *c = ctx;
    atomic_fetch_add(&c->calls, 1);
}

mempipe_waker tu_counter_waker(struct tu_counter *c)
{
    mempipe_waker w = {tu_counter_wake, c};
    return w;
}

int tu_calls(struct tu_counter *c)
{
    return atomic_load(&c->calls);
}

uint64_t tu_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static unsigned char pattern_byte(uint64_t pos, uint64_t seed)
{
    uint64_t x = (pos + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    x ^= x >> 29;
    return (unsigned char)(x ^ (x >> 8));
}

void tu_pattern(unsigned char *buf, size_t len, uint64_t pos, uint64_t seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern_byte(pos + i, seed);
}

long tu_check_pattern(const unsigned char *buf, size_t len, uint64_t pos,
                      uint64_t seed)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != pattern_byte(pos + i, seed))
            return (long)i;
    return -1;
}

double tu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
