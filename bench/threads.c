/* SPDX-License-Identifier: MIT */
/*
 * The two-thread workloads, each in three placements (as is, split across
 * two cores, both on one core):
 *
 *   W1   bulk: 1 GiB written in 64 KiB blocking writes, then shutdown; the
 *        reader reads into a 64 KiB buffer until EOF. GB/s from thread start
 *        to both joined. W1s is the same with 4 KiB writes and reads.
 *        W1c is W1s with a slow consumer: the reader runs FNV-1a over
 *        every byte it reads (about 1 GB/s), so the writer is the one that
 *        parks, on a full pipe: the load the write mark is for. Its total
 *        is 256 MiB.
 *        "W1 lowat", "W1s lowat" and "W1c lowat" (mempipe only) are the
 *        same runs with the writer's low-water mark at half the capacity
 *        (mempipe_set_write_lowat, 32 KiB): a writer parked on a full pipe
 *        is woken once so much is free, whatever its call has left (R65),
 *        instead of at the first byte freed. For mempipe the table also
 *        shows the wake-ups per MiB moved, writer + reader, counted on the
 *        ends' parkers (wakes.c) over the whole run.
 *   W2   ping-pong: A writes 64 B, B reads all 64 and writes them back, A
 *        reads all 64; 200,000 round trips. Microseconds per round trip.
 *
 * mempipe uses one 64 KiB duplex and its blocking calls; pipe(2) one pipe
 * per direction (64 KiB each); socketpair one blocking AF_UNIX stream pair.
 * The sides and the W1/W2 loops are shared with procs.c, which runs them
 * in two processes (W1x, W2x).
 */
#include "bench.h"

#include <mempipe.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CAPACITY (64 * KIB)
#define LOWAT    (CAPACITY / 2) /* the write mark of the lowat rows */
#define MSG      64
#define W2_WARM  4000

struct link {
    struct side a, b;
};

void sides_open(struct side *a, struct side *b, enum impl impl)
{
    *a = *b = (struct side){.impl = impl, .rfd = -1, .wfd = -1};
    if (impl == IMPL_MEMPIPE) {
        int rc = mempipe_duplex(CAPACITY, &a->mp, &b->mp);
        if (rc != 0)
            die("mempipe_duplex: %s", mempipe_strerror(rc));
    } else if (impl == IMPL_PIPE) {
        int ab[2], ba[2];
        make_pipe(ab, false);
        make_pipe(ba, false);
        a->wfd = ab[1];
        b->rfd = ab[0];
        b->wfd = ba[1];
        a->rfd = ba[0];
    } else {
        int s[2];
        make_socketpair(s, false);
        a->rfd = a->wfd = s[0];
        b->rfd = b->wfd = s[1];
    }
}

static void link_open(struct link *l, enum impl impl)
{
    sides_open(&l->a, &l->b, impl);
}

void side_close(struct side *s)
{
    mempipe_close(s->mp);
    if (s->wfd >= 0 && s->wfd != s->rfd)
        close(s->wfd);
    if (s->rfd >= 0)
        close(s->rfd);
    s->mp = NULL;
    s->rfd = s->wfd = -1;
}

static void link_close(struct link *l)
{
    side_close(&l->a);
    side_close(&l->b);
}

void side_write_all(struct side *s, const void *buf, size_t len)
{
    if (s->impl != IMPL_MEMPIPE) {
        fd_write_all(s->wfd, buf, len);
        return;
    }
    ssize_t n = mempipe_write(s->mp, buf, len);
    if (n != (ssize_t)len)
        die("mempipe_write: %zd of %zu (%s)", n, len,
            n < 0 ? mempipe_strerror((int)n) : "short");
}

/* Up to len bytes; 0 at EOF. */
size_t side_read(struct side *s, void *buf, size_t len)
{
    ssize_t n;
    if (s->impl == IMPL_MEMPIPE) {
        n = mempipe_read(s->mp, buf, len);
        if (n < 0)
            die("mempipe_read: %s", mempipe_strerror((int)n));
        return (size_t)n;
    }
    do
        n = read(s->rfd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        die("read: %s", strerror(errno));
    return (size_t)n;
}

/* Exactly len bytes; false at EOF before the first byte. */
bool side_read_exact(struct side *s, void *buf, size_t len)
{
    unsigned char *p = buf;
    for (size_t got = 0; got < len;) {
        size_t n = side_read(s, p + got, len - got);
        if (n == 0) {
            if (got == 0)
                return false;
            die("EOF after %zu of %zu bytes", got, len);
        }
        got += n;
    }
    return true;
}

void side_shutdown(struct side *s)
{
    if (s->impl == IMPL_MEMPIPE) {
        mempipe_shutdown(s->mp);
    } else if (s->impl == IMPL_PIPE) {
        close(s->wfd);
        s->wfd = -1;
    } else if (shutdown(s->wfd, SHUT_WR) != 0) {
        die("shutdown: %s", strerror(errno));
    }
}

/* ---- W1 / W1s ---------------------------------------------------------- */

/* Stream byte p is (p % chunk) % 251: cheap to check at any offset. */
static unsigned char pattern_at(size_t p, size_t chunk)
{
    return (unsigned char)(p % chunk % 251);
}

void *w1_writer(void *arg)
{
    struct w1_arg *a = arg;
    pin_self(a->cpu);
    unsigned char *buf = malloc(a->chunk);
    if (buf == NULL)
        die("out of memory");
    for (size_t i = 0; i < a->chunk; i++)
        buf[i] = pattern_at(i, a->chunk);
    size_t chunks = a->total / a->chunk;
    uint64_t a0 = 0;
    for (size_t i = 0; i < chunks; i++) {
        if (i == a->warm)
            a0 = count_allocs();
        side_write_all(a->s, buf, a->chunk);
    }
    a->allocs = count_allocs() - a0;
    a->ops = chunks - a->warm;
    side_shutdown(a->s);
    free(buf);
    return NULL;
}

void *w1_reader(void *arg)
{
    struct w1_arg *a = arg;
    pin_self(a->cpu);
    unsigned char *buf = malloc(a->chunk);
    if (buf == NULL)
        die("out of memory");
    size_t pos = 0, n;
    uint32_t h = 2166136261u;
    while ((n = side_read(a->s, buf, a->chunk)) > 0) {
        if (buf[0] != pattern_at(pos, a->chunk))
            die("W1: wrong byte at offset %zu", pos);
        /* FNV-1a: each step waits for the last multiply, so the compiler
         * cannot vectorise it away; the result is stored below. */
        for (size_t i = 0; a->slow && i < n; i++)
            h = (h ^ buf[i]) * 16777619u;
        pos += n;
    }
    a->hash = h;
    if (pos != a->total)
        die("W1: read %zu of %zu bytes", pos, a->total);
    free(buf);
    return NULL;
}

void placement_cpus(enum placement pl, int *c0, int *c1)
{
    int a, b;
    bench_cpus(&a, &b);
    *c0 = *c1 = -1;
    if (pl == PL_SPLIT) {
        *c0 = a;
        *c1 = b;
    } else if (pl == PL_ONE) {
        *c0 = *c1 = a;
    }
}

static void spawn2(void *(*f0)(void *), void *a0, void *(*f1)(void *), void *a1)
{
    pthread_t t0, t1;
    int rc = pthread_create(&t0, NULL, f0, a0);
    if (rc == 0)
        rc = pthread_create(&t1, NULL, f1, a1);
    if (rc != 0)
        die("pthread_create: %s", strerror(rc));
    pthread_join(t0, NULL);
    pthread_join(t1, NULL);
}

static struct sample w1_once(enum impl impl, enum placement pl, size_t chunk,
                             size_t total, bool lowat, bool slow)
{
    struct link l;
    link_open(&l, impl);
    if (lowat) {
        int rc = mempipe_set_write_lowat(l.a.mp, LOWAT);
        if (rc != 0)
            die("mempipe_set_write_lowat: %s", mempipe_strerror(rc));
    }
    struct w1_arg w = {.s = &l.a, .chunk = chunk, .total = total};
    struct w1_arg r = {.s = &l.b, .chunk = chunk, .total = total, .slow = slow};
    w.warm = total / chunk / 16; /* the first 1/16 warms up */
    placement_cpus(pl, &w.cpu, &r.cpu);

    double t0 = now_sec();
    spawn2(w1_writer, &w, w1_reader, &r);
    double dt = now_sec() - t0;
    struct sample s = {
        .value = (double)total / dt / 1e9, .allocs = w.allocs, .ops = w.ops};
    if (impl == IMPL_MEMPIPE) {
        /* The writer sleeps on its end's write parker, the reader on its
         * end's read parker; both counts start at 0 with the pipe. */
        s.wakes_w = bench_wakes(l.a.mp, false);
        s.wakes_r = bench_wakes(l.b.mp, true);
        s.bytes = total;
    } else {
        s.allocs = s.ops = 0; /* the hook sees only mempipe's allocations */
    }
    link_close(&l);
    return s;
}

bool placement_possible(enum placement pl)
{
    int a, b;
    bench_cpus(&a, &b);
    return pl != PL_SPLIT || a != b;
}

/* The rows of a W1 group: mempipe, mempipe with the write mark, kernels. */
static const struct {
    enum impl impl;
    bool lowat;
} w1_rows[] = {{IMPL_MEMPIPE, false},
               {IMPL_MEMPIPE, true},
               {IMPL_PIPE, false},
               {IMPL_SOCKET, false}};
#define W1_ROWS ((int)(sizeof w1_rows / sizeof w1_rows[0]))

/* The row names of a W1 variant: id, then the workload's label. */
static const char *const w1_names[3][2][2] = {
    {{"W1", "W1 bulk, 64 KiB calls"},
     {"W1lowat", "W1 lowat, 64 KiB calls, mark 32 KiB"}},
    {{"W1s", "W1s bulk, 4 KiB calls"},
     {"W1slowat", "W1s lowat, 4 KiB calls, mark 32 KiB"}},
    {{"W1c", "W1c slow reader (FNV-1a), 4 KiB calls"},
     {"W1clowat", "W1c lowat, slow reader, mark 32 KiB"}},
};

void run_w1(const struct opts *o, enum w1_variant v, double limit)
{
    size_t chunk = v == W1_BULK ? 64 * KIB : 4 * KIB;
    size_t total = o->quick ? 64 * MIB : v == W1_SLOW ? 256 * MIB : GIB;
    for (int pl = 0; pl < PL_COUNT; pl++) {
        if (!placement_possible(pl)) {
            table_note("split placement skipped: one usable CPU");
            continue;
        }
        struct row rows[W1_ROWS];
        for (int i = 0; i < W1_ROWS; i++) {
            bool lw = w1_rows[i].lowat;
            rows[i] = (struct row){
                .id = w1_names[v][lw][0],
                .workload = w1_names[v][lw][1],
                .placement = placement_name[pl],
                .impl = impl_name[w1_rows[i].impl],
                .unit = "GB/s",
                .sense = HIGHER_BETTER,
                .limit = v == W1_SLOW ? 0 : limit,
            };
        }
        /* Runs interleave the rows so slow phases of a shared machine
         * hit all of them alike. The slow reader's rows are mempipe's
         * alone: they compare the mark with its absence. */
        for (int r = 0; r < o->runs; r++)
            for (int i = 0; i < W1_ROWS; i++) {
                if (!(o->impls & (1u << w1_rows[i].impl)) ||
                    (v == W1_SLOW && w1_rows[i].impl != IMPL_MEMPIPE))
                    continue;
                struct sample s = w1_once(w1_rows[i].impl, pl, chunk, total,
                                          w1_rows[i].lowat, v == W1_SLOW);
                row_add(&rows[i], &s);
            }
        table_group(rows, W1_ROWS);
    }
}

/* ---- W1b: through a bridge ------------------------------------------- */

/*
 * W1 from a mempipe end through a bridge (mempipe_bridge_fd) to a
 * socketpair, read at the socket's far side, against the same transfer
 * written straight into the socketpair. The writer and the reader are
 * pinned as the placement says; the bridge's thread shares their core
 * on one core and runs where it is scheduled otherwise. The bridge
 * copies nothing itself (it hands the end's bytes to sendmsg in place), so
 * the two rows differ by the bridge's hand-off, not by a copy.
 */
static struct sample wb_once(enum placement pl, bool bridged, size_t total)
{
    int s[2];
    make_socketpair(s, false);
    mempipe *a = NULL, *b = NULL;
    mempipe_bridge *br = NULL;
    struct side ws = {.impl = IMPL_SOCKET, .rfd = -1, .wfd = s[0]};
    struct side rs = {.impl = IMPL_SOCKET, .rfd = s[1], .wfd = -1};
    struct w1_arg w = {.s = &ws, .chunk = 64 * KIB, .total = total};
    struct w1_arg r = {.s = &rs, .chunk = 64 * KIB, .total = total};
    placement_cpus(pl, &w.cpu, &r.cpu);
    if (bridged) {
        /* The bridge's thread inherits this thread's CPU mask: on one
         * core it shares that core too, as it would on a 1-CPU machine. */
        cpu_set_t old;
        pthread_getaffinity_np(pthread_self(), sizeof old, &old);
        if (pl == PL_ONE)
            pin_self(w.cpu);
        int rc = mempipe_duplex(CAPACITY, &a, &b);
        if (rc == 0)
            rc = mempipe_bridge_fd(b, s[0], &br);
        pthread_setaffinity_np(pthread_self(), sizeof old, &old);
        if (rc != 0)
            die("bridge: %s", mempipe_strerror(rc));
        ws = (struct side){.impl = IMPL_MEMPIPE, .mp = a, .rfd = -1, .wfd = -1};
    }
    w.warm = total / w.chunk / 16;
    double t0 = now_sec();
    spawn2(w1_writer, &w, w1_reader, &r);
    double dt = now_sec() - t0;
    struct sample smp = {.value = (double)total / dt / 1e9};
    if (bridged) {
        mempipe_close(a);
        int rc = mempipe_bridge_join(br); /* it closed s[0] */
        if (rc != 0)
            die("mempipe_bridge_join: %s", mempipe_strerror(rc));
    } else {
        close(s[0]);
    }
    close(s[1]);
    return smp;
}

void run_wb(const struct opts *o)
{
    size_t total = o->quick ? 64 * MIB : GIB;
    for (int pl = 0; pl < PL_COUNT; pl++) {
        if (!placement_possible(pl))
            continue;
        struct row rows[2] = {
            {.id = "W1b",
             .workload = "W1b 64 KiB calls, end -> bridge -> socketpair",
             .placement = placement_name[pl],
             .impl = "mempipe + bridge",
             .unit = "GB/s",
             .sense = HIGHER_BETTER},
            {.id = "W1b",
             .workload = "W1b 64 KiB calls, end -> bridge -> socketpair",
             .placement = placement_name[pl],
             .impl = impl_name[IMPL_SOCKET],
             .unit = "GB/s",
             .sense = HIGHER_BETTER},
        };
        for (int r = 0; r < o->runs; r++)
            for (int i = 0; i < 2; i++) {
                struct sample smp = wb_once(pl, i == 0, total);
                row_add(&rows[i], &smp);
            }
        table_group(rows, 2);
    }
}

/* ---- W2 ---------------------------------------------------------------- */

void *w2_pinger(void *arg)
{
    struct w2_arg *a = arg;
    pin_self(a->cpu);
    unsigned char msg[MSG], back[MSG];
    uint64_t a0 = 0;
    for (size_t i = 0; i < a->trips; i++) {
        if (i == a->warm)
            a0 = count_allocs();
        memset(msg, (int)(i & 0xff), sizeof msg);
        side_write_all(a->s, msg, MSG);
        if (!side_read_exact(a->s, back, MSG) || back[MSG - 1] != msg[0])
            die("W2: bad echo in round trip %zu", i);
    }
    a->allocs = count_allocs() - a0;
    a->ops = a->trips - a->warm;
    side_shutdown(a->s);
    return NULL;
}

void *w2_ponger(void *arg)
{
    struct w2_arg *a = arg;
    pin_self(a->cpu);
    unsigned char msg[MSG];
    while (side_read_exact(a->s, msg, MSG))
        side_write_all(a->s, msg, MSG);
    return NULL;
}

static struct sample w2_once(enum impl impl, enum placement pl, size_t trips)
{
    struct link l;
    link_open(&l, impl);
    /* The warm-up covers the ring's segment growth (about 2,000 messages
     * per direction) so that the counted window is steady state. */
    struct w2_arg a = {.s = &l.a, .trips = trips, .warm = trips / 20};
    if (a.warm < W2_WARM)
        a.warm = W2_WARM;
    struct w2_arg b = {.s = &l.b};
    placement_cpus(pl, &a.cpu, &b.cpu);

    double t0 = now_sec();
    spawn2(w2_pinger, &a, w2_ponger, &b);
    double dt = now_sec() - t0;
    link_close(&l);
    struct sample s = {
        .value = dt / (double)trips * 1e6, .allocs = a.allocs, .ops = a.ops};
    if (impl != IMPL_MEMPIPE)
        s.allocs = s.ops = 0;
    return s;
}

void run_w2(const struct opts *o)
{
    size_t trips = o->quick ? 20000 : 200000;
    for (int pl = 0; pl < PL_COUNT; pl++) {
        if (!placement_possible(pl))
            continue;
        struct row rows[IMPL_COUNT];
        for (int i = 0; i < IMPL_COUNT; i++)
            rows[i] = (struct row){
                .id = "W2",
                .workload = "W2 ping-pong, 64 B",
                .placement = placement_name[pl],
                .impl = impl_name[i],
                .unit = "us/round trip",
                .sense = LOWER_BETTER,
            };
        for (int r = 0; r < o->runs; r++)
            for (int i = 0; i < IMPL_COUNT; i++) {
                if (!(o->impls & (1u << i)))
                    continue;
                struct sample s = w2_once(i, pl, trips);
                row_add(&rows[i], &s);
            }
        table_group(rows, IMPL_COUNT);
    }
}
