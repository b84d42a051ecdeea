/* SPDX-License-Identifier: MIT */
/*
 * The one-thread workloads, where no thread ever waits:
 *
 *   W3   ops: mempipe_poll_write 64 B then mempipe_poll_read 64 B,
 *        10,000,000 times, each moving exactly 64 B. Nanoseconds per
 *        write+read pair: the fixed cost of a call.
 *   W4   bulk: a 64 KiB poll_write, then read it all back, through a 64 KiB
 *        duplex until 1 GiB has moved. GB/s: the copy path, two copies
 *        per byte (memcpy in, memcpy out).
 *   W4zc the same 1 GiB in the same 64 KiB steps through the zero-copy
 *        windows, mempipe only: mempipe_write_reserve 64 KiB, memcpy from
 *        the same source buffer into the one or two spans (the one copy:
 *        the writer producing its bytes in place), mempipe_write_commit;
 *        then mempipe_read_peek and mempipe_read_consume until the step's
 *        bytes are taken, the reader checking the first and the last byte
 *        of each span in place instead of copying them out. What the
 *        application then does with the bytes is left out of both rows
 *        alike: W4's reader does not look at what it copied out either
 *        (one byte, once, at the end). So the rows differ by exactly the
 *        copy out, and W4zc's limit is one cached memcpy (vs limit), not
 *        half of it.
 *   W6   vectored: a 16 B header and a 48 B body gathered by one
 *        mempipe_poll_writev, scattered back into a header and a body by
 *        one mempipe_poll_readv, 2,000,000 times. Nanoseconds per pair:
 *        writev(2)/readv(2) against the slow path the slices take.
 *
 * The kernel runs the same loops with write(2)/read(2) on a non-blocking
 * pipe (64 KiB) and socketpair.
 */
#include "bench.h"

#include <mempipe.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define CAPACITY   (64 * KIB)
#define MSG        64
#define BULK       (64 * KIB)
#define W4_BYTE    0xa5 /* every source byte of W4 and W4zc */
#define WARM_PAIRS 10000

/* The connection of one run: a mempipe duplex, or one fd each way. */
struct conn {
    enum impl impl;
    mempipe *a, *b;
    int wfd, rfd;
    int fds[2];
};

static void conn_open(struct conn *c, enum impl impl)
{
    memset(c, 0, sizeof *c);
    c->impl = impl;
    if (impl == IMPL_MEMPIPE) {
        int rc = mempipe_duplex(CAPACITY, &c->a, &c->b);
        if (rc != 0)
            die("mempipe_duplex: %s", mempipe_strerror(rc));
        return;
    }
    if (impl == IMPL_PIPE) {
        make_pipe(c->fds, true);
        c->rfd = c->fds[0];
        c->wfd = c->fds[1];
    } else {
        make_socketpair(c->fds, true);
        c->wfd = c->fds[0];
        c->rfd = c->fds[1];
    }
}

static void conn_close(struct conn *c)
{
    if (c->impl == IMPL_MEMPIPE) {
        mempipe_close(c->a);
        mempipe_close(c->b);
        return;
    }
    close(c->fds[0]);
    close(c->fds[1]);
}

static size_t conn_write(struct conn *c, const void *buf, size_t len)
{
    ssize_t n = c->impl == IMPL_MEMPIPE
                    ? mempipe_poll_write(c->a, buf, len, NULL)
                    : write(c->wfd, buf, len);
    if (n <= 0)
        die("%s write: %zd (%s)", impl_name[c->impl], n,
            c->impl == IMPL_MEMPIPE ? mempipe_strerror((int)n)
                                    : strerror(errno));
    return (size_t)n;
}

static size_t conn_read(struct conn *c, void *buf, size_t len)
{
    ssize_t n = c->impl == IMPL_MEMPIPE
                    ? mempipe_poll_read(c->b, buf, len, NULL)
                    : read(c->rfd, buf, len);
    if (n <= 0)
        die("%s read: %zd (%s)", impl_name[c->impl], n,
            c->impl == IMPL_MEMPIPE ? mempipe_strerror((int)n)
                                    : strerror(errno));
    return (size_t)n;
}

/* ---- W3 ---------------------------------------------------------------- */

/*
 * The mempipe loop is written out rather than going through conn_write so
 * that the instructions counted per pair (make callgrind) are the library's
 * plus a compare and a branch per call, not the bench's dispatch.
 */
static void w3_mempipe(mempipe *a, mempipe *b, uint64_t iters)
{
    unsigned char out[MSG], in[MSG];
    memset(out, 0x3c, sizeof out);
    for (uint64_t i = 0; i < iters; i++) {
        if (mempipe_poll_write(a, out, MSG, NULL) != MSG)
            die("W3: poll_write did not take 64 B at pair %llu",
                (unsigned long long)i);
        if (mempipe_poll_read(b, in, MSG, NULL) != MSG)
            die("W3: poll_read did not give 64 B at pair %llu",
                (unsigned long long)i);
    }
}

static void w3_fd(struct conn *c, uint64_t iters)
{
    unsigned char out[MSG], in[MSG];
    memset(out, 0x3c, sizeof out);
    for (uint64_t i = 0; i < iters; i++) {
        if (write(c->wfd, out, MSG) != MSG || read(c->rfd, in, MSG) != MSG)
            die("W3: %s did not move 64 B at pair %llu: %s", impl_name[c->impl],
                (unsigned long long)i, strerror(errno));
    }
}

static struct sample w3_once(const struct opts *o, enum impl impl)
{
    uint64_t iters = o->w3_iters;
    /*
     * The warm-up lets the ring grow its segments to their final size (a
     * few thousand pairs), so the counted window is steady state. It is
     * fixed under --w3-iters, so that callgrind's N and 2N runs differ by
     * exactly N pairs.
     */
    uint64_t warm = WARM_PAIRS;
    if (!o->w3_iters_given && iters / 100 > warm)
        warm = iters / 100;
    struct conn c;
    conn_open(&c, impl);
    if (impl == IMPL_MEMPIPE)
        w3_mempipe(c.a, c.b, warm);
    else
        w3_fd(&c, warm);

    uint64_t a0 = count_allocs();
    double t0 = cpu_sec();
    if (impl == IMPL_MEMPIPE)
        w3_mempipe(c.a, c.b, iters);
    else
        w3_fd(&c, iters);
    double dt = cpu_sec() - t0;
    struct sample s = {.value = dt / (double)iters * 1e9,
                       .allocs = count_allocs() - a0,
                       .ops = iters};
    if (impl != IMPL_MEMPIPE)
        s.allocs = s.ops = 0;
    conn_close(&c);
    return s;
}

/* One row per implementation from proto, each run of once() added to it,
 * the implementations interleaved run by run. */
static void run_group(const struct opts *o, struct row proto,
                      struct sample (*once)(const struct opts *, enum impl))
{
    struct row rows[IMPL_COUNT];
    for (int i = 0; i < IMPL_COUNT; i++) {
        rows[i] = proto;
        rows[i].impl = impl_name[i];
    }
    for (int r = 0; r < o->runs; r++)
        for (int i = 0; i < IMPL_COUNT; i++) {
            if (!(o->impls & (1u << i)))
                continue;
            struct sample s = once(o, i);
            row_add(&rows[i], &s);
        }
    table_group(rows, IMPL_COUNT);
}

void run_w3(const struct opts *o)
{
    run_group(o,
              (struct row){.id = "W3",
                           .workload = "W3 poll 64 B write+read",
                           .placement = "-",
                           .unit = "ns/pair",
                           .sense = LOWER_BETTER},
              w3_once);
}

/* ---- W4 ---------------------------------------------------------------- */

/* Writes up to 64 KiB and reads every byte of it back; returns the count. */
static size_t w4_step(struct conn *c, const unsigned char *out,
                      unsigned char *in)
{
    size_t n = conn_write(c, out, BULK);
    for (size_t got = 0; got < n;)
        got += conn_read(c, in, BULK);
    return n;
}

static struct sample w4_once(enum impl impl, size_t total)
{
    unsigned char *out = malloc(BULK), *in = malloc(BULK);
    if (out == NULL || in == NULL)
        die("out of memory");
    memset(out, W4_BYTE, BULK);
    memset(in, 0, BULK);
    struct conn c;
    conn_open(&c, impl);
    for (int i = 0; i < 16; i++) /* warm-up: 1 MiB */
        w4_step(&c, out, in);

    uint64_t a0 = count_allocs(), steps = 0;
    size_t moved = 0;
    double t0 = cpu_sec();
    for (; moved < total; steps++)
        moved += w4_step(&c, out, in);
    double dt = cpu_sec() - t0;
    if (in[BULK - 1] != W4_BYTE)
        die("W4: wrong bytes read back");
    struct sample s = {.value = (double)moved / dt / 1e9,
                       .allocs = count_allocs() - a0,
                       .ops = steps};
    if (impl != IMPL_MEMPIPE)
        s.allocs = s.ops = 0;
    conn_close(&c);
    free(out);
    free(in);
    return s;
}

/*
 * One W4zc step: reserves and fills up to 64 KiB in place, then peeks and
 * consumes until all of it is taken. Returns the bytes moved.
 */
static size_t w4zc_step(mempipe *a, mempipe *b, const unsigned char *out)
{
    struct iovec iov[2];
    int k = mempipe_write_reserve(a, BULK, iov, NULL);
    if (k < 1)
        die("W4zc: write_reserve: %d (%s)", k, mempipe_strerror(k));
    size_t n = 0;
    for (int i = 0; i < k; i++) { /* the one copy */
        memcpy(iov[i].iov_base, out + n, iov[i].iov_len);
        n += iov[i].iov_len;
    }
    int rc = mempipe_write_commit(a, n);
    if (rc != 0)
        die("W4zc: write_commit: %s", mempipe_strerror(rc));
    for (size_t got = 0; got < n;) {
        k = mempipe_read_peek(b, iov, NULL);
        if (k < 1)
            die("W4zc: read_peek: %d (%s)", k, mempipe_strerror(k));
        size_t seen = 0;
        for (int i = 0; i < k; i++) { /* in place: the first, the last */
            const unsigned char *p = iov[i].iov_base;
            if (p[0] != W4_BYTE || p[iov[i].iov_len - 1] != W4_BYTE)
                die("W4zc: wrong bytes at offset %zu", got + seen);
            seen += iov[i].iov_len;
        }
        rc = mempipe_read_consume(b, seen);
        if (rc != 0)
            die("W4zc: read_consume: %s", mempipe_strerror(rc));
        got += seen;
    }
    return n;
}

static struct sample w4zc_once(size_t total)
{
    unsigned char *out = malloc(BULK);
    if (out == NULL)
        die("out of memory");
    memset(out, W4_BYTE, BULK);
    struct conn c;
    conn_open(&c, IMPL_MEMPIPE);
    for (int i = 0; i < 16; i++) /* warm-up: 1 MiB */
        w4zc_step(c.a, c.b, out);

    uint64_t a0 = count_allocs(), steps = 0;
    size_t moved = 0;
    double t0 = cpu_sec();
    for (; moved < total; steps++)
        moved += w4zc_step(c.a, c.b, out);
    double dt = cpu_sec() - t0;
    struct sample s = {.value = (double)moved / dt / 1e9,
                       .allocs = count_allocs() - a0,
                       .ops = steps};
    conn_close(&c);
    free(out);
    return s;
}

void run_w4(const struct opts *o, double cached)
{
    size_t total = o->quick ? 64 * MIB : GIB;
    /* The copy rows, then the zero-copy row (index IMPL_COUNT). */
    struct row rows[IMPL_COUNT + 1];
    for (int i = 0; i < IMPL_COUNT; i++)
        rows[i] = (struct row){
            .id = "W4",
            .workload = "W4 1-thread bulk, 64 KiB",
            .placement = "-",
            .impl = impl_name[i],
            .unit = "GB/s",
            .sense = HIGHER_BETTER,
            .limit = cached / 2, /* two copies per byte */
        };
    rows[IMPL_COUNT] = rows[IMPL_MEMPIPE];
    rows[IMPL_COUNT].id = "W4zc";
    rows[IMPL_COUNT].workload = "W4zc 1-thread bulk, reserve+peek";
    rows[IMPL_COUNT].limit = cached; /* one copy per byte */
    for (int r = 0; r < o->runs; r++) {
        for (int i = 0; i < IMPL_COUNT; i++) {
            if (!(o->impls & (1u << i)))
                continue;
            struct sample s = w4_once(i, total);
            row_add(&rows[i], &s);
            if (i == IMPL_MEMPIPE) { /* right after the copy row's run */
                s = w4zc_once(total);
                row_add(&rows[IMPL_COUNT], &s);
            }
        }
    }
    /* The zero-copy row next to mempipe's copy row. */
    struct row shown[IMPL_COUNT + 1] = {rows[IMPL_MEMPIPE], rows[IMPL_COUNT],
                                        rows[IMPL_PIPE], rows[IMPL_SOCKET]};
    table_group(shown, IMPL_COUNT + 1);
}

/* ---- W6 ---------------------------------------------------------------- */

#define HDR 16

/* Gathers out into one message and scatters it back; n pairs. */
static void w6_loop(struct conn *c, uint64_t n)
{
    unsigned char hdr[HDR], body[MSG - HDR], ih[HDR], ib[MSG - HDR];
    memset(hdr, 0x11, sizeof hdr);
    memset(body, 0x22, sizeof body);
    struct iovec out[2] = {{hdr, HDR}, {body, MSG - HDR}};
    struct iovec in[2] = {{ih, HDR}, {ib, MSG - HDR}};
    for (uint64_t i = 0; i < n; i++) {
        ssize_t w, r;
        if (c->impl == IMPL_MEMPIPE) {
            w = mempipe_poll_writev(c->a, out, 2, NULL);
            r = mempipe_poll_readv(c->b, in, 2, NULL);
        } else {
            w = writev(c->wfd, out, 2);
            r = readv(c->rfd, in, 2);
        }
        if (w != MSG || r != MSG)
            die("W6: %s moved %zd/%zd of 64 B at pair %llu", impl_name[c->impl],
                w, r, (unsigned long long)i);
    }
    if (ib[MSG - HDR - 1] != 0x22 || ih[0] != 0x11)
        die("W6: wrong bytes read back");
}

static struct sample w6_once(const struct opts *o, enum impl impl)
{
    uint64_t iters = o->quick ? 100000 : 2000000;
    struct conn c;
    conn_open(&c, impl);
    w6_loop(&c, WARM_PAIRS);
    uint64_t a0 = count_allocs();
    double t0 = cpu_sec();
    w6_loop(&c, iters);
    double dt = cpu_sec() - t0;
    struct sample s = {.value = dt / (double)iters * 1e9,
                       .allocs = count_allocs() - a0,
                       .ops = iters};
    if (impl != IMPL_MEMPIPE)
        s.allocs = s.ops = 0;
    conn_close(&c);
    return s;
}

void run_w6(const struct opts *o)
{
    run_group(o,
              (struct row){.id = "W6",
                           .workload = "W6 poll writev+readv, 16+48 B",
                           .placement = "-",
                           .unit = "ns/pair",
                           .sense = LOWER_BETTER},
              w6_once);
}
