/* SPDX-License-Identifier: MIT */
/*
 * mempipe_bench: shared pieces of the benchmark program.
 *
 * Every workload runs for mempipe and, in the same invocation, for the
 * kernel's pipe(2) and socketpair(AF_UNIX, SOCK_STREAM), with memcpy as the
 * physical limit. A workload reports one value per run; the table shows the
 * median of the runs, their min-max spread, and the ratio to the best kernel
 * baseline of the same workload and placement, taken from the same
 * invocation so that a noisy machine moves both sides of the ratio alike.
 */
#ifndef MEMPIPE_BENCH_H
#define MEMPIPE_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KIB ((size_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

#define MAX_RUNS 16

/* The implementations compared; memcpy only appears in its own rows. */
enum impl { IMPL_MEMPIPE, IMPL_PIPE, IMPL_SOCKET, IMPL_COUNT };

/* The impl column of mempipe's rows between two processes (W1x, W2x). */
#define IMPL_SHM_NAME "mempipe shm"

/* Where the two threads of W1/W1s/W2 (the two processes of W1x/W2x) run. */
enum placement { PL_ASIS, PL_SPLIT, PL_ONE, PL_COUNT };

/* Whether a bigger value is better (GB/s) or worse (us per round trip). */
enum sense { HIGHER_BETTER, LOWER_BETTER };

struct opts {
    bool quick;
    int runs;            /* runs per row; the median is reported */
    unsigned only;       /* bit per workload (W_*); all when 0 */
    unsigned impls;      /* bit per enum impl */
    uint64_t w3_iters;   /* W3 pairs per run */
    bool w3_iters_given; /* --w3-iters: no warm-up scaling, for callgrind */
};

enum {
    W_MEMCPY = 1u << 0,
    W_W1 = 1u << 1,
    W_W1S = 1u << 2,
    W_W2 = 1u << 3,
    W_W3 = 1u << 4,
    W_W4 = 1u << 5,
    W_W5 = 1u << 6,
    W_W6 = 1u << 7,
    W_W1C = 1u << 8,
    W_W1B = 1u << 9,
    W_W1X = 1u << 10,
    W_W2X = 1u << 11,
};

/* One measurement: the workload's value plus its steady-state allocations. */
struct sample {
    double value;
    uint64_t allocs; /* allocations in the counted window */
    uint64_t ops;    /* operations in the counted window */
    /* Wake-ups of the writer's and the reader's parker over bytes moved
     * (bytes 0: not counted; W1 and W1s, mempipe); for W1x, every impl,
     * the writer's and the reader's voluntary context switches. */
    uint64_t wakes_w, wakes_r, bytes;
};

/* The outcome of all runs of one (workload, placement, impl). */
struct row {
    const char *id;        /* "W1", "W5mem", ...: for the targets summary */
    const char *workload;  /* what the table shows */
    const char *placement; /* "-" where it does not apply */
    const char *impl;
    const char *unit;
    enum sense sense;
    int n;
    double v[MAX_RUNS];
    uint64_t allocs, ops; /* summed over the runs; ops 0: not counted */
    uint64_t wakes_w, wakes_r, bytes; /* summed; bytes 0: not counted */
    double limit; /* value of the physical limit, 0 if none */
};

/* ---- sys.c: clock, machine facts, pinning, the counting allocator ----- */

/* Wall clock, for the two-thread rows (thread start to join). */
double now_sec(void);
/*
 * The calling thread's CPU time (user + system), for the one-thread rows:
 * time spent descheduled by the neighbours of a shared machine does not
 * count, time in the kernel's read/write does.
 */
double cpu_sec(void);
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void print_machine(void);
/* The first two CPUs this process may run on; b == a when only one. */
void bench_cpus(int *a, int *b);
/* Pins the calling thread to cpu; -1 leaves it alone. */
void pin_self(int cpu);
/*
 * wakes.c: the wake-ups so far of an end's read (reader true) or write
 * parker, on which its blocking calls sleep; white-box, see there.
 */
struct mempipe;
unsigned bench_wakes(const struct mempipe *end, bool reader);
/* Resident set size of the process in bytes, from /proc/self/statm. */
size_t rss_bytes(void);
/* Installs the counting allocator; must run before any pipe is made. */
void count_alloc_install(void);
uint64_t count_allocs(void);    /* allocations (and growths) so far */
int64_t count_live_bytes(void); /* bytes allocated and not yet freed */
/*
 * A pipe(2) pair with F_SETPIPE_SZ 64 KiB; nonblock sets O_NONBLOCK.
 * pipe_size_refused counts pipes whose F_SETPIPE_SZ failed.
 */
extern unsigned long pipe_size_refused;
void make_pipe(int fds[2], bool nonblock);
void make_socketpair(int fds[2], bool nonblock);
/* write(2)/read(2) helpers that retry short transfers; die on error. */
void fd_write_all(int fd, const void *buf, size_t len);
void fd_read_exact(int fd, void *buf, size_t len);

/* ---- table.c: rows, statistics, the printed table -------------------- */

extern const char *const impl_name[IMPL_COUNT];
extern const char *const placement_name[PL_COUNT];
double row_median(const struct row *r);
double row_min(const struct row *r);
double row_max(const struct row *r);
void row_add(struct row *r, const struct sample *s);
void table_header(const struct opts *o);
/* Prints rows[0..n) with ratios to the best kernel row among them. */
void table_group(const struct row *rows, int n);
void table_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Remembers a row for the targets summary printed at the end. */
void table_keep(const struct row *r);
void table_targets(void);

/* ---- threads.c: one side of a connection, and the loops both files run */

/* One thread's (or process's) view of a connection: a mempipe end, or
 * read/write fds (-1 where unused; rfd == wfd for a socket). */
struct side {
    enum impl impl;
    struct mempipe *mp;
    int rfd, wfd;
};

/*
 * Two connected sides, a and b: for mempipe an in-process 64 KiB duplex,
 * for pipe(2) one pipe per direction (make_pipe), for socketpair one pair.
 */
void sides_open(struct side *a, struct side *b, enum impl impl);
/* Closes what the side holds and clears it (NULL end, fds -1: skipped). */
void side_close(struct side *s);
/* Blocking: all len bytes, or die. */
void side_write_all(struct side *s, const void *buf, size_t len);
/* Up to len bytes; 0 at EOF. */
size_t side_read(struct side *s, void *buf, size_t len);
/* Exactly len bytes; false at EOF before the first byte. */
bool side_read_exact(struct side *s, void *buf, size_t len);
/* The write direction's EOF: mempipe_shutdown, close, or SHUT_WR. */
void side_shutdown(struct side *s);

/* W1's writer and reader (thread functions: they take a struct w1_arg). */
struct w1_arg {
    struct side *s;
    int cpu;
    size_t chunk, total, warm; /* warm: chunks before the counted window */
    bool slow;                 /* the reader hashes every byte (W1c) */
    uint32_t hash;             /* the slow reader's FNV-1a, kept live */
    uint64_t allocs, ops;
};
void *w1_writer(void *arg);
void *w1_reader(void *arg);

/* W2's two sides (thread functions: they take a struct w2_arg). */
struct w2_arg {
    struct side *s;
    int cpu;
    size_t trips, warm;
    uint64_t allocs, ops;
};
void *w2_pinger(void *arg);
void *w2_ponger(void *arg);

/* The CPUs of the two sides for a placement (-1: not pinned). */
void placement_cpus(enum placement pl, int *c0, int *c1);
/* False for the split placement on a machine with one usable CPU. */
bool placement_possible(enum placement pl);

/* ---- the workloads, one file each ------------------------------------ */

/* memcpy.c: fills *cached_gbps with the cache-resident copy rate. */
void run_memcpy(const struct opts *o, double *cached_gbps);
/* threads.c: W1, W1s, W2 in three placements. */
/* W1's variants: 64 KiB calls, 4 KiB calls, 4 KiB calls to a slow reader. */
enum w1_variant { W1_BULK, W1_SMALL, W1_SLOW };
void run_w1(const struct opts *o, enum w1_variant v, double limit);
/* W1b: W1 through a bridge to a socketpair, against the socketpair. */
void run_wb(const struct opts *o);
void run_w2(const struct opts *o);
/* single.c: W3, W4 (and W4zc), W6. */
void run_w3(const struct opts *o);
/* W4's copy rows against half the cached memcpy rate, W4zc against all. */
void run_w4(const struct opts *o, double cached);
void run_w6(const struct opts *o);
/* many.c: W5. */
void run_w5(const struct opts *o);
/* procs.c: W1x and W2x, between two processes over shm ends. */
void run_w1x(const struct opts *o, double limit);
void run_w2x(const struct opts *o);

#endif
