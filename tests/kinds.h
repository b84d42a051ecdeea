/* SPDX-License-Identifier: MIT */
/*
 * The end-kind fixture of the rules_*_test.c files: most SPEC rules hold for
 * every kind of end (duplex, simplex, loopback), so a test body taking a kind
 * becomes one cmocka test per kind. Also a counting allocator, whose teardown
 * checks that the last close gave every byte back (R22).
 *
 * The code is in testutil.c, which every test executable links.
 */
#ifndef MEMPIPE_KINDS_H
#define MEMPIPE_KINDS_H

#include "testutil.h"

/* ------------------------------------------------------------------ */
/* End kinds                                                           */
/* ------------------------------------------------------------------ */

enum kind { DUPLEX, SIMPLEX, LOOPBACK };

/* One direction under test: w writes what r reads (the same end for a
 * loopback). For a duplex, w is a and r is b. */
struct fx {
    enum kind kind;
    mempipe *w, *r;
};

void fx_open(struct fx *f, enum kind k, size_t cap);
void fx_close(struct fx *f);

/* A test body taking a kind becomes three cmocka tests. */
#define KIND_TESTS(body)                                                       \
    static void test_##body##_duplex(void **s)                                 \
    {                                                                          \
        (void)s;                                                               \
        body(DUPLEX);                                                          \
    }                                                                          \
    static void test_##body##_simplex(void **s)                                \
    {                                                                          \
        (void)s;                                                               \
        body(SIMPLEX);                                                         \
    }                                                                          \
    static void test_##body##_loopback(void **s)                               \
    {                                                                          \
        (void)s;                                                               \
        body(LOOPBACK);                                                        \
    }
#define KIND_ENTRIES(body)                                                     \
    cmocka_unit_test(test_##body##_duplex),                                    \
        cmocka_unit_test(test_##body##_simplex),                               \
        cmocka_unit_test(test_##body##_loopback)
/* The same under the counting allocator. */
#define KIND_ENTRIES_ALLOC(body)                                               \
    cmocka_unit_test_setup_teardown(test_##body##_duplex, tu_alloc_setup,      \
                                    tu_alloc_teardown),                        \
        cmocka_unit_test_setup_teardown(test_##body##_simplex, tu_alloc_setup, \
                                        tu_alloc_teardown),                    \
        cmocka_unit_test_setup_teardown(test_##body##_loopback,                \
                                        tu_alloc_setup, tu_alloc_teardown)

/* Reads exactly n bytes (in one call) and compares them with want. */
void expect_read(mempipe *e, const void *want, size_t n);
void expect_calls(int want, struct tu_counter *c);

/* ------------------------------------------------------------------ */
/* Counting allocator                                                  */
/* ------------------------------------------------------------------ */

struct tu_counting {
    atomic_llong live;   /* bytes handed out and not yet freed */
    atomic_llong total;  /* bytes ever handed out */
    atomic_long calls;   /* allocation calls, failed ones included */
    atomic_long fail_at; /* fail allocation number >= this (1-based); 0 off */
    atomic_int poison;   /* fill a block with 0xdd before freeing it */
};

extern struct tu_counting tu_cnt;

void *tu_counting_realloc(void *ctx, void *ptr, size_t old_size,
                          size_t new_size);
void tu_counting_reset(void);
/* cmocka setup/teardown: install the counting allocator; check that
 * nothing is left allocated and put the default allocator back. */
int tu_alloc_setup(void **state);
int tu_alloc_teardown(void **state);
/* tu_alloc_setup, and poison every freed block: a use after free then reads
 * 0xdd bytes (a garbage pointer) even without ASan. */
int tu_poison_setup(void **state);
/* Bytes allocated and not yet freed. */
long long tu_live(void);

#endif
