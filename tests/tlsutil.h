/* SPDX-License-Identifier: MIT */
/*
 * The harness tests/gnutls_test.c and tests/mbedtls_test.c share (linked by
 * those two only): the links they run TLS over (a mempipe duplex at each
 * capacity, or the socketpair(2) reference), how much they echo, the
 * application-visible outcome they compare with the reference's, the raw
 * peer of the vanishing-peer tests, and the throughput mode.
 */
#ifndef MEMPIPE_TLSUTIL_H
#define MEMPIPE_TLSUTIL_H

#include "testutil.h"

/* A link's capacity; 0 is the socketpair reference. */
#define TLS_SOCKETPAIR 0
extern const size_t tls_caps[];
#define TLS_NCAPS 5 /* 1, 7, 4096, 65536, SIZE_MAX */

/* Plaintext per record at most, so the largest chunk an echo writes. */
#define TLS_MAX_CHUNK 16384u

/*
 * The two ends (server's, client's) of a link: a mempipe duplex of
 * capacity cap (the fds -1), or for TLS_SOCKETPAIR a socketpair (the ends
 * NULL; O_NONBLOCK if nonblock).
 */
struct tls_ends {
    mempipe *s, *c;
    int sfd, cfd;
};
void tls_ends_open(struct tls_ends *e, size_t cap, int nonblock);

/* "socketpair", "mempipe cap N" or "mempipe cap SIZE_MAX" (a static
 * buffer). */
const char *tls_kind(size_t cap);

/*
 * Bytes an echo sends each way over a link of capacity cap: 8 MiB (1 MiB
 * under the sanitizers; MEMPIPE_TLS_BYTES=N: N). Below 64 bytes of
 * capacity, where every few bytes are a wake-up, 1/128 of that per byte of
 * capacity (64 KiB at 1, 448 KiB at 7), unless MEMPIPE_TLS_FULL is set.
 */
size_t tls_echo_bytes(size_t cap);

/* The next chunk an echo writes: 1..TLS_MAX_CHUNK bytes, at most left. */
size_t tls_chunk(uint64_t *rng, size_t left);

/*
 * What the application saw of one run. Compared field by field (but mbs)
 * with the socketpair reference's run of the same scenario: the adapter
 * must give the same.
 */
struct tls_outcome {
    int client, server;  /* how each side ended: 0 a clean close (or, for a
                            side not run, nothing), TLS_STALLED, or else the
                            library's error code */
    const char *version; /* the protocol the client agreed, the library's
                            name ("TLS1.3", "TLSv1.2"), NULL if its
                            handshake did not finish */
    size_t client_got;   /* application bytes the client received ... */
    size_t server_got;   /* ... and the server, each checked */
    double mbs;          /* an echo's MB/s (both ways), not compared */
};
#define TLS_STALLED 1        /* neither finished nor failed: a lost wake-up */
#define TLS_TOTAL   SIZE_MAX /* in a wanted outcome: the bytes sent each way */

/*
 * How far a side got, which its part of an outcome is made from. Each test's
 * side holds one.
 */
enum {
    TLS_HANDSHAKE,
    TLS_DATA,
    TLS_BYE,
    TLS_BYE_WAIT, /* a client waiting for the answer to its close_notify */
    TLS_DONE,
    TLS_FAILED,
    TLS_GONE /* the raw peer of a vanishing-peer test, which never ran */
};
struct tls_state {
    int phase;    /* the enum above */
    int err;      /* the library's error code, in TLS_FAILED */
    int shook;    /* the handshake finished */
    size_t recvd; /* application bytes received, checked */
};
/* The side ended with rc: 0 cleanly (TLS_DONE), negative failed. */
void tls_finish(struct tls_state *st, int rc);
/* The outcome of client c and server s, the client having agreed version
 * (NULL if its handshake did not finish). */
void tls_outcome_of(const struct tls_state *c, const struct tls_state *s,
                    const char *version, struct tls_outcome *out);

/* The library's name of an error code; each test sets it. */
extern const char *(*tls_errname)(int code);

/*
 * One scenario over a link of capacity cap (TLS_SOCKETPAIR included),
 * sending total bytes each way where it sends any; variant is the
 * scenario's own (the vanishing-peer tests: 1 the server goes, 0 the
 * client).
 */
typedef void (*tls_scenario)(size_t cap, size_t total, int variant,
                             struct tls_outcome *out);

/*
 * Runs run(..., variant, ...) at every capacity of tls_caps, and over the
 * socketpair with the same total (once per total, tls_echo_bytes()): the
 * socketpair must end as want says and every capacity as the socketpair
 * did.
 */
void tls_against_socketpair(tls_scenario run, int variant,
                            const struct tls_outcome *want);

/*
 * The raw peer of the vanishing-peer tests, on an end or (end NULL) an fd.
 * tls_drain takes every byte there is now without waiting (so that the
 * close that follows discards nothing: a socket closed with bytes unread
 * resets its peer instead). Waiting: tls_read_record reads exactly one TLS
 * record (its 5-byte header and the length it gives), a server's part when
 * the ClientHello comes; tls_send_cut_hello sends the first bytes of a
 * ClientHello's record, a client's part that the server waits to complete.
 */
void tls_drain(mempipe *end, int fd);
void tls_read_record(mempipe *end, int fd);
void tls_send_cut_hello(mempipe *end, int fd);
/* The end (or fd) goes away. */
void tls_close_raw(mempipe **end, int *fd);

/*
 * The calling thread's CPU time in seconds (user and system): what a
 * one-thread echo is timed by, so that time spent descheduled by the
 * neighbours of a shared machine does not count (bench/ does the same).
 */
double tls_thread_cpu(void);

/*
 * An echo printed as "# <lib> <mode>, <kind>: N bytes each way, X MB/s",
 * X counting both ways (nothing in the throughput mode); returns X.
 */
double tls_report(const char *lib, const char *mode, size_t cap, size_t total,
                  double seconds);

/*
 * The throughput mode: MEMPIPE_TLS_BENCH=N (tls_bench_runs() returns N, at
 * most 15; 0 when unset) runs the echo run (variant 0) N times, interleaved,
 * over the socketpair and mempipe at 4096, 65536 and SIZE_MAX, each ending as
 * want says, then prints one table row each: the median MB/s, the spread and
 * the ratio to the socketpair's median.
 */
int tls_bench_runs(void);
void tls_bench(const char *lib, const char *mode, tls_scenario run,
               const struct tls_outcome *want);

#endif
