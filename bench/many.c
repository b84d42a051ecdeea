/* SPDX-License-Identifier: MIT */
/*
 * W5 many pairs: 1,000 duplex pairs; one thread echoes 64 B on each pair in
 * turn through the poll API (A writes, B reads, B writes back, A reads), 10
 * rounds after one warm-up round. Messages per second, a message being one
 * 64 B write and the read that takes it. The working set of 2,000 pipes
 * does not fit in L1, so this is the cost of a cold pipe.
 *
 * Also the memory of an idle pair: live bytes counted by the allocator hook
 * for 1,000 freshly made pairs, and the RSS growth, each divided by 1,000;
 * and the live bytes per pair once every pair has echoed (segments cached).
 * RSS is approximate: page granular, and it counts whatever else the
 * process touched meanwhile.
 */
#include "bench.h"

#include <mempipe.h>

#include <errno.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <string.h>
#include <unistd.h>

#define PAIRS  1000
#define ROUNDS 10
#define MSG    64

/* One pair: mempipe ends, or fds (A writes aw and reads ar; B likewise). */
struct pair {
    mempipe *a, *b;
    int aw, ar, bw, br;
};

struct mem {
    double hook, rss, warm; /* bytes per pair */
};

static void pairs_open(struct pair *p, enum impl impl, struct mem *m)
{
#if defined(__GLIBC__)
    /* Give free heap pages back first, or the pairs would reuse pages that
     * earlier runs left resident and RSS would not grow at all. */
    malloc_trim(0);
#endif
    int64_t live0 = count_live_bytes();
    size_t rss0 = rss_bytes();
    for (int i = 0; i < PAIRS; i++) {
        if (impl == IMPL_MEMPIPE) {
            int rc = mempipe_duplex(64 * KIB, &p[i].a, &p[i].b);
            if (rc != 0)
                die("mempipe_duplex #%d: %s", i, mempipe_strerror(rc));
        } else if (impl == IMPL_PIPE) {
            int ab[2], ba[2];
            make_pipe(ab, true);
            make_pipe(ba, true);
            p[i].aw = ab[1];
            p[i].br = ab[0];
            p[i].bw = ba[1];
            p[i].ar = ba[0];
        } else {
            int s[2];
            make_socketpair(s, true);
            p[i].aw = p[i].ar = s[0];
            p[i].bw = p[i].br = s[1];
        }
    }
    m->hook = (double)(count_live_bytes() - live0) / PAIRS;
    m->rss = ((double)rss_bytes() - (double)rss0) / PAIRS;
}

static void pairs_close(struct pair *p, enum impl impl)
{
    for (int i = 0; i < PAIRS; i++) {
        if (impl == IMPL_MEMPIPE) {
            mempipe_close(p[i].a);
            mempipe_close(p[i].b);
            continue;
        }
        close(p[i].ar);
        close(p[i].br);
        if (impl == IMPL_PIPE) {
            close(p[i].aw);
            close(p[i].bw);
        }
    }
}

static void mp_move(mempipe *w, mempipe *r, const void *out, void *in)
{
    if (mempipe_poll_write(w, out, MSG, NULL) != MSG ||
        mempipe_poll_read(r, in, MSG, NULL) != MSG)
        die("W5: mempipe did not move 64 B");
}

static void fd_move(int w, int r, const void *out, void *in)
{
    if (write(w, out, MSG) != MSG || read(r, in, MSG) != MSG)
        die("W5: fd did not move 64 B: %s", strerror(errno));
}

static void round_trip_all(struct pair *p, enum impl impl)
{
    unsigned char out[MSG], in[MSG];
    memset(out, 0x77, sizeof out);
    for (int i = 0; i < PAIRS; i++) {
        if (impl == IMPL_MEMPIPE) {
            mp_move(p[i].a, p[i].b, out, in);
            mp_move(p[i].b, p[i].a, in, out);
        } else {
            fd_move(p[i].aw, p[i].br, out, in);
            fd_move(p[i].bw, p[i].ar, in, out);
        }
    }
}

static struct sample w5_once(enum impl impl, struct mem *m)
{
    struct pair *p = calloc(PAIRS, sizeof *p);
    if (p == NULL)
        die("out of memory");
    pairs_open(p, impl, m);
    int64_t live0 = count_live_bytes();
    round_trip_all(p, impl); /* warm-up: first segments are made here */
    m->warm = m->hook + (double)(count_live_bytes() - live0) / PAIRS;

    uint64_t a0 = count_allocs();
    double t0 = cpu_sec();
    for (int r = 0; r < ROUNDS; r++)
        round_trip_all(p, impl);
    double dt = cpu_sec() - t0;
    uint64_t msgs = (uint64_t)PAIRS * ROUNDS * 2;
    struct sample s = {.value = (double)msgs / dt / 1e6,
                       .allocs = count_allocs() - a0,
                       .ops = msgs};
    if (impl != IMPL_MEMPIPE)
        s.allocs = s.ops = 0;
    pairs_close(p, impl);
    free(p);
    return s;
}

void run_w5(const struct opts *o)
{
    struct row rows[IMPL_COUNT];
    for (int i = 0; i < IMPL_COUNT; i++)
        rows[i] = (struct row){
            .id = "W5",
            .workload = "W5 1000 pairs echo, 64 B",
            .placement = "-",
            .impl = impl_name[i],
            .unit = "M msgs/s",
            .sense = HIGHER_BETTER,
        };
    struct row mem[3];
    const char *what[3] = {"mempipe (hook)", "mempipe (RSS)", "mempipe (hook)"};
    for (int k = 0; k < 3; k++)
        mem[k] = (struct row){
            .id = k < 2 ? "W5mem" : "W5warm",
            .workload = k < 2 ? "W5 idle pair, fresh" : "W5 pair after echo",
            .placement = "-",
            .impl = what[k],
            .unit = "B/pair",
            .sense = LOWER_BETTER,
        };
    for (int r = 0; r < o->runs; r++)
        for (int i = 0; i < IMPL_COUNT; i++) {
            if (!(o->impls & (1u << i)))
                continue;
            struct mem m;
            struct sample s = w5_once(i, &m);
            row_add(&rows[i], &s);
            if (i != IMPL_MEMPIPE)
                continue;
            struct sample ms[3] = {
                {.value = m.hook}, {.value = m.rss}, {.value = m.warm}};
            for (int k = 0; k < 3; k++)
                row_add(&mem[k], &ms[k]);
        }
    table_group(rows, IMPL_COUNT);
    table_group(mem, 3);
}
