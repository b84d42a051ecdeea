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

/*
 * The fourth kind: the same bodies on shm pipes (src/shm.h), created and
 * attached in this process, duplex for DUPLEX and simplex for SIMPLEX
 * (no shm loopback). tu_shm is what fx_open makes: 0 in-process pipes,
 * TU_SHM an shm pipe whose two ends share one core (an attach in the
 * creating process, as users get it), TU_SHMX one whose sides are split
 * as between two processes (every word through the mapping, blocking
 * calls on the shared bells), linked only so that wakers run at once.
 * Set by each KIND_TESTS wrapper before its body.
 */
#define TU_SHM  1
#define TU_SHMX 2
/* The same as TU_SHMX but the reading side (fx.r) in a child process: the
 * rule bodies' calls on it are made there (xproc.h). The bodies' calls on
 * every end go through xproc.h's wrappers, which settle both sides. */
#define TU_SHMP 3
extern int tu_shm;

/* The rule tests (rules_*_test.c) and testutil.c define TU_XPROC_KIND
 * before this header: their bodies' calls are xproc.h's set, so they also
 * run as the xproc kind. Other users of KIND_TESTS drive more of the API
 * (fds, zero-copy, faults) than xproc.c carries to the child. */
#if defined(TU_INTERNALS) && defined(TU_XPROC_KIND)
#include "xproc.h"
#define KIND_TEST_XPROC(body)                                                  \
    KIND_TEST1(body, xproc_duplex, TU_SHMP, DUPLEX)                            \
    KIND_TEST1(body, xproc_simplex, TU_SHMP, SIMPLEX)
#define KIND_ENTRIES_XPROC(body)                                               \
    , cmocka_unit_test(test_##body##_xproc_duplex),                            \
        cmocka_unit_test(test_##body##_xproc_simplex)
#define KIND_ALLOC_XPROC(body)                                                 \
    , KIND_ALLOC1(body, xproc_duplex), KIND_ALLOC1(body, xproc_simplex)
#else /* not asked for, or no internals (no settle): no xproc kind */
#define KIND_TEST_XPROC(body)
#define KIND_ENTRIES_XPROC(body)
#define KIND_ALLOC_XPROC(body)
#endif

void fx_open(struct fx *f, enum kind k, size_t cap);
/* The shm fx_open of tu_shm's kind, but the creation's error returned
 * (-ENOMEM where the address space is short), nothing made then. */
int fx_try_open_shm(struct fx *f, enum kind k, size_t cap);
void fx_close(struct fx *f);

/* One cmocka test: body on kind k with fx_open making `shm` (kinds.h). */
#define KIND_TEST1(body, name, shm, k)                                         \
    static void test_##body##_##name(void **s)                                 \
    {                                                                          \
        (void)s;                                                               \
        tu_shm = (shm);                                                        \
        body(k);                                                               \
        tu_shm = 0;                                                            \
    }

/*
 * A test body taking a kind becomes seven cmocka tests: the three
 * in-process kinds, and the fourth, shm, as duplex and simplex, with both
 * ends sharing a core and split (kinds.h); nine with TU_XPROC_KIND, the
 * xproc duplex and simplex (fx.r in a child). The _INPROC forms are for the
 * few bodies about the in-process heap, which an shm pipe does not use
 * for its bytes (its memory is R77's, tests/shm_test.c).
 */
#define KIND_TESTS_INPROC(body)                                                \
    KIND_TEST1(body, duplex, 0, DUPLEX)                                        \
    KIND_TEST1(body, simplex, 0, SIMPLEX)                                      \
    KIND_TEST1(body, loopback, 0, LOOPBACK)
#define KIND_TESTS(body)                                                       \
    KIND_TESTS_INPROC(body)                                                    \
    KIND_TEST1(body, shm_duplex, TU_SHM, DUPLEX)                               \
    KIND_TEST1(body, shm_simplex, TU_SHM, SIMPLEX)                             \
    KIND_TEST1(body, shmx_duplex, TU_SHMX, DUPLEX)                             \
    KIND_TEST1(body, shmx_simplex, TU_SHMX, SIMPLEX)                           \
    KIND_TEST_XPROC(body)

#define KIND_ENTRIES_INPROC(body)                                              \
    cmocka_unit_test(test_##body##_duplex),                                    \
        cmocka_unit_test(test_##body##_simplex),                               \
        cmocka_unit_test(test_##body##_loopback)
#define KIND_ENTRIES(body)                                                     \
    KIND_ENTRIES_INPROC(body), cmocka_unit_test(test_##body##_shm_duplex),     \
        cmocka_unit_test(test_##body##_shm_simplex),                           \
        cmocka_unit_test(test_##body##_shmx_duplex),                           \
        cmocka_unit_test(test_##body##_shmx_simplex) KIND_ENTRIES_XPROC(body)

/* The same under the counting allocator. */
#define KIND_ALLOC1(body, name)                                                \
    cmocka_unit_test_setup_teardown(test_##body##_##name, tu_alloc_setup,      \
                                    tu_alloc_teardown)
#define KIND_ENTRIES_ALLOC_INPROC(body)                                        \
    KIND_ALLOC1(body, duplex), KIND_ALLOC1(body, simplex),                     \
        KIND_ALLOC1(body, loopback)
#define KIND_ENTRIES_ALLOC(body)                                               \
    KIND_ENTRIES_ALLOC_INPROC(body), KIND_ALLOC1(body, shm_duplex),            \
        KIND_ALLOC1(body, shm_simplex), KIND_ALLOC1(body, shmx_duplex),        \
        KIND_ALLOC1(body, shmx_simplex) KIND_ALLOC_XPROC(body)

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
