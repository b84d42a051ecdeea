/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: decodes its input into a sequence of public calls on a
 * duplex, a simplex and a loopback (and on NULL and closed-then-remade ends),
 * and checks every result against a small reference model: a plain FIFO per
 * direction plus the SPEC.md rules. Exact return values, bytes, EOF, -EPIPE,
 * -EAGAIN, -EINVAL, -EBADF, the state queries, and whether each counting
 * waker was called, are all compared after every call. Any difference
 * aborts (a libFuzzer crash) after printing the call that differed.
 *
 * The close outcomes (R37-R39: close_with_error, abort, rst_on_unread) and
 * the injected faults (R48: caps, drawn caps, fail_*_at, pending_every) are
 * modelled exactly too: the error each later read and write returns, the
 * bytes a reset discards, the counts that restart with each
 * mempipe_set_faults(), and the waker an injected pending calls at once.
 * Drawn caps (chunk_seed) are predicted by the model's own copy of feat.c's
 * seed derivation and hook.c's xorshift64*: the sequence is promised to be
 * the same on every run and machine, so a change to it is a change the
 * fuzzer reports.
 *
 * Input layout: three capacity selectors, then operations of one opcode byte
 * followed by argument bytes; a short input reads zeros past its end.
 * Opcodes 0-191 are the original twelve operations (op % 12); 192-255 the
 * four of R37-R39 and R48 ((op - 192) % 4).
 *
 * Build: fuzz/build.sh (clang -fsanitize=fuzzer,address,undefined).
 */
#include "mempipe.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- input decoding ---------------------------------------------------- */

struct in {
    const uint8_t *p;
    size_t n;
};

static uint8_t u8(struct in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static uint16_t u16(struct in *in)
{
    uint16_t lo = u8(in);
    return (uint16_t)(lo | (uint16_t)u8(in) << 8);
}

/* A length: mostly small, sometimes up to a few KiB. */
static size_t len_arg(struct in *in)
{
    uint8_t b = u8(in);
    if (b < 200)
        return b % 40;
    return u16(in) % 5000;
}

/* ---- the reference model ---------------------------------------------- */

#define NPIPES 3 /* 0, 1: the duplex's two directions; 2: simplex; */
                 /* the loopback is pipe 3 */
#define NP       4
#define NENDS    5 /* duplex A, duplex B, simplex reader, writer, loopback */
#define NWAKERS  4
#define MAX_DATA (1u << 20)

struct mpipe {
    unsigned char *q; /* q[head..tail) are the buffered bytes */
    size_t head, tail, qcap;
    size_t cap; /* M */
    int wclosed, rclosed;
    int rerr;      /* what a read returns once drained: 0 EOF, or R37's err */
    int werr;      /* what a write returns once read-closed: 0 -EPIPE, or err */
    int reset;     /* R38: the writer aborted (bytes gone, reads -ECONNRESET) */
    int rd, wr;    /* stored waker: counter index, or -1 */
    uint64_t wpos; /* bytes ever written: the data of the next write */
};

/* One direction of an end's injected faults (R48); 0 read, 1 write. */
struct mdir {
    size_t max;       /* cap per call, 0 none */
    uint64_t rng;     /* drawn caps' state; 0 fixed */
    uint64_t fail_at; /* 0 never */
    uint64_t counted; /* calls counted towards fail_at */
};

struct mend {
    mempipe *h;
    int open;
    int rx, tx; /* model pipe indices, or -1 */
    int rst;    /* R39 */
    struct mdir f[2];
    int fail_err;
    unsigned pending_every;
    uint64_t polls; /* poll calls with len > 0 since mempipe_set_faults */
};

static struct mpipe P[NP];
static struct mend E[NENDS];
static int calls[NWAKERS];    /* actual calls, by the wakers */
static int expected[NWAKERS]; /* calls the model predicts */
static const char *cur_op;

static void wake_count(void *ctx)
{
    calls[(int *)ctx - calls]++;
}

#define FAIL(...)                                                              \
    do {                                                                       \
        fprintf(stderr, "mempipe_fuzz: %s: ", cur_op);                         \
        fprintf(stderr, __VA_ARGS__);                                          \
        fprintf(stderr, "\n");                                                 \
        abort();                                                               \
    } while (0)

#define EXPECT_RC(want, got)                                                   \
    do {                                                                       \
        long long w_ = (long long)(want), g_ = (long long)(got);               \
        if (w_ != g_)                                                          \
            FAIL("%s: expected %lld, got %lld (%s)", #got, w_, g_,             \
                 g_ < 0 ? mempipe_strerror((int)g_) : "count");                \
    } while (0)

static size_t L(const struct mpipe *p)
{
    return p->tail - p->head;
}

/* The model's half of a waker slot being taken and called. */
static void model_wake(int *slot)
{
    if (*slot >= 0)
        expected[*slot]++;
    *slot = -1;
}

static void check_wakers(void)
{
    for (int i = 0; i < NWAKERS; i++)
        if (calls[i] != expected[i])
            FAIL("waker %d called %d times, model says %d", i, calls[i],
                 expected[i]);
}

static void fifo_push(struct mpipe *p, const unsigned char *b, size_t n)
{
    if (n == 0)
        return;
    if (p->tail + n > p->qcap && p->head > 0) { /* compact first */
        memmove(p->q, p->q + p->head, L(p));
        p->tail -= p->head;
        p->head = 0;
    }
    if (p->tail + n > p->qcap) {
        size_t nc = (p->tail + n) * 2;
        p->q = realloc(p->q, nc);
        if (p->q == NULL)
            abort();
        p->qcap = nc;
    }
    memcpy(p->q + p->tail, b, n);
    p->tail += n;
}

/* The stream's bytes: position-dependent so reordering shows. */
static void fill(unsigned char *b, size_t n, uint64_t pos, int pipe)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t x = (pos + i) * 0x9E3779B97F4A7C15ull + (uint64_t)pipe;
        b[i] = (unsigned char)(x >> 56);
    }
}

static const size_t caps[] = {1,   2,   3,    7,    16,    255,
                              256, 257, 1000, 4096, 65536, SIZE_MAX};

static void model_pipe_init(int i, size_t cap)
{
    free(P[i].q);
    memset(&P[i], 0, sizeof P[i]);
    P[i].cap = cap;
    P[i].rd = P[i].wr = -1;
}

/* Makes the pipe of end e's kind, if all its ends are closed. */
static void make(int kind, size_t cap)
{
    int rc;
    switch (kind) {
    case 0:
        if (E[0].open || E[1].open)
            return;
        rc = mempipe_duplex(cap, &E[0].h, &E[1].h);
        EXPECT_RC(0, rc);
        model_pipe_init(0, cap);
        model_pipe_init(1, cap);
        E[0] = (struct mend){.h = E[0].h, .open = 1, .rx = 1, .tx = 0};
        E[1] = (struct mend){.h = E[1].h, .open = 1, .rx = 0, .tx = 1};
        break;
    case 1:
        if (E[2].open || E[3].open)
            return;
        rc = mempipe_simplex(cap, &E[2].h, &E[3].h);
        EXPECT_RC(0, rc);
        model_pipe_init(2, cap);
        E[2] = (struct mend){.h = E[2].h, .open = 1, .rx = 2, .tx = -1};
        E[3] = (struct mend){.h = E[3].h, .open = 1, .rx = -1, .tx = 2};
        break;
    default:
        if (E[4].open)
            return;
        rc = mempipe_loopback(cap, &E[4].h);
        EXPECT_RC(0, rc);
        model_pipe_init(3, cap);
        E[4] = (struct mend){.h = E[4].h, .open = 1, .rx = 3, .tx = 3};
        break;
    }
}

/* The model of write-closing pipe i (shutdown, or a writer's close) with
 * rerr for the reader instead of EOF; the first close decides (R5, R37). */
static void model_close_write(int i, int rerr)
{
    if (!P[i].wclosed)
        P[i].rerr = rerr;
    P[i].wclosed = 1;
    model_wake(&P[i].rd); /* R17 */
    model_wake(&P[i].wr); /* R18 */
}

/* R38: the writer of pipe i aborted. Its bytes are gone at once and the
 * reader gets -ECONNRESET, over an earlier shutdown or error too. */
static void model_reset(int i)
{
    P[i].wclosed = 1;
    P[i].reset = 1;
    P[i].rerr = -ECONNRESET;
    P[i].head = P[i].tail;
    model_wake(&P[i].rd);
    model_wake(&P[i].wr);
}

/* The reader of pipe i closed; its writer gets werr instead of -EPIPE. */
static void model_close_read(int i, int werr)
{
    struct mpipe *p = &P[i];
    if (!p->rclosed)
        p->werr = werr;
    p->rclosed = 1;
    model_wake(&p->wr); /* R19, R20 */
    p->head = p->tail;  /* R21: unread bytes discarded */
}

/* ---- the fault model (R48; hook.c's steps 2 and 3) --------------------- */

/* feat.c's seed_of: each direction's drawn-cap state. */
static uint64_t model_seed(unsigned seed, uint64_t salt)
{
    if (seed == 0)
        return 0;
    uint64_t s = ((uint64_t)seed * 0x9e3779b97f4a7c15u) ^ salt;
    return s != 0 ? s : salt;
}

/* This call's cap: none, fixed, or the next draw in [1, max]. */
static size_t model_cap(struct mdir *d)
{
    if (d->max == 0)
        return SIZE_MAX;
    if (d->rng == 0)
        return d->max;
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return 1 + (size_t)((d->rng * 0x2545f4914f6cdd1dull) % d->max);
}

/* Whether a call of end e in direction dir would be pending: nothing to
 * read and nothing to report, or no room and no close to report. */
static int model_would_wait(int e, int dir)
{
    const struct mpipe *p = &P[dir ? E[e].tx : E[e].rx];
    if (dir == 0)
        return L(p) == 0 && !p->wclosed;
    return !p->wclosed && !p->rclosed && L(p) == p->cap;
}

/*
 * The faults of a call of *len bytes by open end e in direction dir. Returns
 * 1 when a fault decides the call (its result in *r: an injected pending,
 * which calls waker wi at once, or fail_err), else 0 with *len cut to the
 * call's cap. Zero-length calls are never touched (R8, R14).
 */
static int model_faults(int e, int dir, int blocking, size_t *len, int wi,
                        ssize_t *r)
{
    struct mend *m = &E[e];
    struct mdir *d = &m->f[dir];
    if (*len == 0)
        return 0;
    if (m->pending_every != 0 && !blocking &&
        ++m->polls % m->pending_every == 0) {
        if (wi >= 0)
            expected[wi]++; /* called, not stored */
        *r = -EAGAIN;
        return 1;
    }
    if (d->fail_at != 0 && !model_would_wait(e, dir) &&
        ++d->counted >= d->fail_at) {
        *r = m->fail_err; /* changes nothing */
        return 1;
    }
    size_t cap = model_cap(d);
    if (cap < *len)
        *len = cap;
    return 0;
}

/* ---- checked calls ------------------------------------------------------- */

static mempipe_waker wakers[NWAKERS];

/* A waker argument: NULL or one of the counting wakers. */
static const mempipe_waker *waker_arg(struct in *in, int *idx)
{
    uint8_t b = u8(in) % (NWAKERS + 2);
    if (b >= NWAKERS) {
        *idx = -1;
        return NULL;
    }
    *idx = b;
    return &wakers[b];
}

/* End argument: an open end, or NULL (for the bad-argument rules). */
static int end_arg(struct in *in)
{
    uint8_t b = u8(in);
    if (b % 16 == 15)
        return -1; /* NULL */
    int e = b % NENDS;
    return E[e].open ? e : -2; /* -2: closed; the call is skipped */
}

static void op_read(struct in *in, int blocking)
{
    cur_op = blocking ? "mempipe_read" : "mempipe_poll_read";
    int e = end_arg(in);
    size_t len = len_arg(in);
    int null_buf = u8(in) % 8 == 0;
    int wi = -1;
    const mempipe_waker *w = blocking ? NULL : waker_arg(in, &wi);
    if (e == -2)
        return;
    static unsigned char buf[8192];
    unsigned char *b = null_buf ? NULL : buf;
    mempipe *h = e >= 0 ? E[e].h : NULL;

    if (e < 0 || (b == NULL && len > 0)) { /* R30 */
        ssize_t r = blocking ? mempipe_read(h, b, len)
                             : mempipe_poll_read(h, b, len, w);
        EXPECT_RC(-EINVAL, r);
        return;
    }
    if (E[e].rx < 0) { /* a simplex writer */
        ssize_t r = blocking ? mempipe_read(h, b, len)
                             : mempipe_poll_read(h, b, len, w);
        /* R30's -EBADF; R8's 0 for len 0 is also allowed. */
        if (!(r == -EBADF || (len == 0 && r == 0)))
            FAIL("read on a writer end returned %zd", r);
        return;
    }
    struct mpipe *p = &P[E[e].rx];
    if (blocking && len > 0 && L(p) == 0 && !p->wclosed)
        return; /* would block forever in a single thread */
    ssize_t r =
        blocking ? mempipe_read(h, b, len) : mempipe_poll_read(h, b, len, w);
    ssize_t fr;
    if (model_faults(e, 0, blocking, &len, wi, &fr)) { /* R48 */
        EXPECT_RC(fr, r);
    } else if (len == 0) { /* R8 */
        EXPECT_RC(0, r);
    } else if (p->reset) { /* R38: every read, the bytes gone */
        EXPECT_RC(-ECONNRESET, r);
    } else if (L(p) > 0) { /* R4 */
        size_t k = L(p) < len ? L(p) : len;
        EXPECT_RC(k, r);
        if (memcmp(b, p->q + p->head, k) != 0)
            FAIL("read %zu bytes that differ from the model's FIFO", k);
        p->head += k;
        model_wake(&p->wr);  /* R7 */
    } else if (p->wclosed) { /* R5; R37: the writer's error instead */
        EXPECT_RC(p->rerr, r);
    } else { /* R6 */
        EXPECT_RC(-EAGAIN, r);
        if (w != NULL)
            p->rd = wi; /* R23: replaces the old one */
    }
}

/* Expected result of a write of len bytes on open end e, and the model's
 * update; blocking writes are only issued when they complete at once. */
static ssize_t model_write(int e, size_t len, int wi, const unsigned char *b)
{
    struct mpipe *p = &P[E[e].tx];
    if (p->rclosed && !p->wclosed && p->werr != 0)
        return p->werr; /* R37, R38: the reader's error, unless shut down */
    if (p->wclosed || p->rclosed)
        return -EPIPE; /* R10, R14 */
    if (len == 0)
        return 0; /* R14 */
    if (L(p) == p->cap) {
        if (wi >= 0)
            p->wr = wi;
        return -EAGAIN; /* R11 */
    }
    size_t k = len < p->cap - L(p) ? len : p->cap - L(p);
    fifo_push(p, b, k);
    p->wpos += k;
    model_wake(&p->rd); /* R13 */
    return (ssize_t)k;
}

static void op_write(struct in *in, int mode) /* 0 poll, 1 blocking */
{
    cur_op = mode ? "mempipe_write" : "mempipe_poll_write";
    int e = end_arg(in);
    size_t len = len_arg(in);
    int null_buf = u8(in) % 8 == 0;
    int wi = -1;
    const mempipe_waker *w = mode ? NULL : waker_arg(in, &wi);
    if (e == -2)
        return;
    static unsigned char buf[8192];
    mempipe *h = e >= 0 ? E[e].h : NULL;
    if (e < 0 || (null_buf && len > 0)) {
        ssize_t r = mode ? mempipe_write(h, NULL, len)
                         : mempipe_poll_write(h, null_buf ? NULL : buf, len, w);
        EXPECT_RC(-EINVAL, r);
        return;
    }
    if (E[e].tx < 0) {
        ssize_t r = mode ? mempipe_write(h, buf, len)
                         : mempipe_poll_write(h, buf, len, w);
        if (!(r == -EBADF || (len == 0 && r == 0)))
            FAIL("write on a reader end returned %zd", r);
        return;
    }
    struct mpipe *p = &P[E[e].tx];
    if (mode && !p->wclosed && !p->rclosed && len > p->cap - L(p))
        return; /* a blocking write that cannot complete at once */
    fill(buf, len, p->wpos, E[e].tx);
    ssize_t r = mode ? mempipe_write(h, null_buf ? NULL : buf, len)
                     : mempipe_poll_write(h, buf, len, w);
    ssize_t want;
    if (mode) { /* block.c: rounds until all of len, each capped (R48) */
        size_t done = 0;
        ssize_t rc = 0;
        do {
            size_t k = len - done;
            ssize_t n;
            if (!model_faults(e, 1, 1, &k, -1, &n))
                n = model_write(e, k, -1, buf + done);
            if (n < 0) { /* R28: the bytes so far, else the error */
                rc = n;
                break;
            }
            done += (size_t)n;
        } while (done < len);
        want = done > 0 ? (ssize_t)done : rc;
    } else {
        size_t k = len;
        if (!model_faults(e, 1, 0, &k, wi, &want))
            want = model_write(e, k, wi, buf);
    }
    EXPECT_RC(want, r);
}

static void op_writev(struct in *in)
{
    cur_op = "mempipe_poll_writev";
    int e = end_arg(in);
    uint8_t shape = u8(in);
    int iovcnt = u8(in) % 9;
    int wi;
    const mempipe_waker *w = waker_arg(in, &wi);
    static unsigned char buf[8 * 5000];
    struct iovec iov[8];
    size_t lens[8], total = 0;
    for (int i = 0; i < iovcnt; i++) {
        lens[i] = len_arg(in);
        total += lens[i];
    }
    if (e == -2)
        return;
    mempipe *h = e >= 0 ? E[e].h : NULL;
    int tx = e >= 0 ? E[e].tx : -1;
    fill(buf, total, tx >= 0 ? P[tx].wpos : 0, tx);
    size_t off = 0;
    for (int i = 0; i < iovcnt; i++) {
        iov[i].iov_base = buf + off;
        iov[i].iov_len = lens[i];
        off += lens[i];
    }
    /* Bad shapes (R30): each must be -EINVAL and change nothing. */
    const unsigned char *data = buf; /* the concatenation of the slices */
    const struct iovec *v = iov;
    int cnt = iovcnt;
    int bad = e < 0;
    switch (shape % 16) {
    case 0:
        cnt = -1 - (int)(shape >> 4); /* negative */
        bad = 1;
        break;
    case 1:
        cnt = IOV_MAX + 1 + (shape >> 4); /* too many */
        bad = 1;
        break;
    case 2:
        if (iovcnt > 0) {
            v = NULL;
            bad = 1;
        }
        break;
    case 3:
        if (iovcnt > 0 && lens[iovcnt - 1] > 0) {
            iov[iovcnt - 1].iov_base = NULL; /* a NULL slice with bytes */
            bad = 1;
        }
        break;
    case 4:
        if (iovcnt >= 2) { /* lengths that sum past SSIZE_MAX */
            iov[0].iov_len = (size_t)SSIZE_MAX;
            iov[1].iov_len = 1 + lens[1];
            bad = 1;
        }
        break;
    case 5:
        if (iovcnt > 0) { /* empty slices with NULL bases are fine */
            iov[0].iov_base = NULL;
            iov[0].iov_len = 0;
            total -= lens[0];
            data = buf + lens[0];
        }
        break;
    default:
        break;
    }
    ssize_t r = mempipe_poll_writev(h, v, cnt, w);
    if (bad) {
        EXPECT_RC(-EINVAL, r);
        return;
    }
    if (tx < 0) {
        if (!(r == -EBADF || (total == 0 && r == 0)))
            FAIL("writev on a reader end returned %zd", r);
        return;
    }
    ssize_t want;
    if (!model_faults(e, 1, 0, &total, wi, &want))
        want = model_write(e, total, wi, data); /* R15 */
    EXPECT_RC(want, r);
}

static void op_shutdown(struct in *in, int poll)
{
    cur_op = poll ? "mempipe_poll_shutdown" : "mempipe_shutdown";
    int e = end_arg(in);
    int wi;
    const mempipe_waker *w = poll ? waker_arg(in, &wi) : NULL;
    if (e == -2)
        return;
    mempipe *h = e >= 0 ? E[e].h : NULL;
    int r = poll ? mempipe_poll_shutdown(h, w) : mempipe_shutdown(h);
    if (e < 0) {
        EXPECT_RC(-EINVAL, r);
        return;
    }
    if (E[e].tx < 0) {
        EXPECT_RC(-EBADF, r);
        return;
    }
    EXPECT_RC(0, r); /* R17: idempotent, the waker never stored */
    model_close_write(E[e].tx, 0);
}

static void op_flush(struct in *in)
{
    cur_op = "mempipe_poll_flush";
    int e = end_arg(in);
    int wi;
    const mempipe_waker *w = waker_arg(in, &wi);
    if (e == -2)
        return;
    EXPECT_RC(e < 0 ? -EINVAL : 0,
              mempipe_poll_flush(e >= 0 ? E[e].h : NULL, w)); /* R16 */
}

/*
 * The model of closing open end e: err for the peer instead of EOF and
 * -EPIPE (0: a plain close), or a reset (R38). With rst_on_unread and
 * bytes buffered for e, any close is a reset (R39).
 */
static void model_close(int e, int err, int reset)
{
    struct mend *m = &E[e];
    if (m->rst && m->rx >= 0 && L(&P[m->rx]) > 0)
        reset = 1;
    if (reset)
        err = -ECONNRESET;
    /* R22: this end's wakers are dropped, never called. */
    if (m->rx >= 0)
        P[m->rx].rd = -1;
    if (m->tx >= 0)
        P[m->tx].wr = -1;
    if (m->tx >= 0 && reset)
        model_reset(m->tx);
    else if (m->tx >= 0)
        model_close_write(m->tx, err); /* R19, R20 */
    if (m->rx >= 0)
        model_close_read(m->rx, err);
    m->open = 0;
    m->h = NULL;
}

static void op_close(struct in *in)
{
    cur_op = "mempipe_close";
    int e = end_arg(in);
    if (e == -2)
        return;
    if (e < 0) {
        mempipe_close(NULL); /* R22: a no-op */
        return;
    }
    mempipe *h = E[e].h;
    model_close(e, 0, 0);
    mempipe_close(h);
}

/* R37's errors: good ones, then ones that must be -EINVAL. */
static const int close_errs[] = {-EIO,    -ECONNRESET, -EPIPE, -ETIMEDOUT,
                                 -4095,   0,           1,      4096,
                                 -EAGAIN, -4096,       INT_MIN};
#define GOOD_CLOSE_ERRS 5

static void op_close_with_error(struct in *in)
{
    cur_op = "mempipe_close_with_error";
    int e = end_arg(in);
    int i = u8(in) % (sizeof close_errs / sizeof close_errs[0]);
    int err = close_errs[i];
    if (e == -2)
        return;
    if (e < 0 || i >= GOOD_CLOSE_ERRS) {
        /* -EINVAL, and nothing closes: the state checks show it. */
        EXPECT_RC(-EINVAL,
                  mempipe_close_with_error(e < 0 ? NULL : E[e].h, err));
        return;
    }
    mempipe *h = E[e].h;
    model_close(e, err, 0);
    EXPECT_RC(0, mempipe_close_with_error(h, err));
}

static void op_abort(struct in *in)
{
    cur_op = "mempipe_abort";
    int e = end_arg(in);
    if (e == -2)
        return;
    if (e < 0) {
        mempipe_abort(NULL); /* a no-op */
        return;
    }
    mempipe *h = E[e].h;
    model_close(e, -ECONNRESET, 1);
    mempipe_abort(h);
}

static void op_rst_on_unread(struct in *in)
{
    cur_op = "mempipe_set_rst_on_unread";
    int e = end_arg(in);
    int on = u8(in) % 4; /* any non-zero is on */
    if (e == -2)
        return;
    int r = mempipe_set_rst_on_unread(e < 0 ? NULL : E[e].h, on);
    if (e < 0) {
        EXPECT_RC(-EINVAL, r);
    } else if (E[e].rx < 0) {
        EXPECT_RC(-EBADF, r); /* a simplex writer never reads */
    } else {
        EXPECT_RC(0, r);
        E[e].rst = on != 0;
    }
}

/* fail_err values: negative errnos, then ones R48 refuses with a failure. */
static const int fail_errs[] = {-EIO, -ECONNRESET, -EPIPE,  -ENOMEM, -4095,
                                0,    1,           -EAGAIN, -4096,   INT_MIN};
#define GOOD_FAIL_ERRS 5

static void op_set_faults(struct in *in)
{
    cur_op = "mempipe_set_faults";
    int e = end_arg(in);
    uint8_t how = u8(in);
    mempipe_faults f = {0};
    f.max_read = u8(in) % 8;
    f.max_write = u8(in) % 8;
    f.chunk_seed = how & 1 ? u8(in) : 0;
    f.fail_read_at = u8(in) % 8;
    f.fail_write_at = u8(in) % 8;
    int ei = u8(in) % (sizeof fail_errs / sizeof fail_errs[0]);
    f.fail_err = fail_errs[ei];
    f.pending_every = u8(in) % 6;
    if (how & 2)
        f.fail_read_at = 0;
    if (how & 4)
        f.fail_write_at = 0;
    int clear = how % 16 >= 12; /* NULL: clear them all */
    if (e == -2)
        return;
    int r = mempipe_set_faults(e < 0 ? NULL : E[e].h, clear ? NULL : &f);
    int bad = !clear && (f.fail_read_at != 0 || f.fail_write_at != 0) &&
              ei >= GOOD_FAIL_ERRS;
    if (e < 0 || bad) {
        EXPECT_RC(-EINVAL, r); /* and nothing changes */
        return;
    }
    EXPECT_RC(0, r);
    struct mend *m = &E[e];
    if (clear)
        memset(&f, 0, sizeof f);
    m->f[0] = (struct mdir){f.max_read, model_seed(f.chunk_seed, 0x5244u),
                            f.fail_read_at, 0};
    m->f[1] = (struct mdir){f.max_write, model_seed(f.chunk_seed, 0x5752u),
                            f.fail_write_at, 0};
    m->fail_err = f.fail_err;
    m->pending_every = f.pending_every;
    m->polls = 0;
}

static void op_create(struct in *in)
{
    cur_op = "create";
    uint8_t b = u8(in);
    size_t cap = caps[u8(in) % (sizeof caps / sizeof caps[0])];
    mempipe *x = (mempipe *)&E, *y = (mempipe *)&E;
    switch (b % 8) {
    case 0: /* R2: M == 0 */
        EXPECT_RC(-EINVAL, mempipe_duplex(0, &x, &y));
        EXPECT_RC(-EINVAL, mempipe_simplex(0, &x, &y));
        EXPECT_RC(-EINVAL, mempipe_loopback(0, &x));
        break;
    case 1: /* R2: NULL and aliased out-pointers */
        EXPECT_RC(-EINVAL, mempipe_duplex(cap, NULL, &y));
        EXPECT_RC(-EINVAL, mempipe_duplex(cap, &x, NULL));
        EXPECT_RC(-EINVAL, mempipe_duplex(cap, &x, &x));
        EXPECT_RC(-EINVAL, mempipe_simplex(cap, NULL, &y));
        EXPECT_RC(-EINVAL, mempipe_simplex(cap, &x, NULL));
        EXPECT_RC(-EINVAL, mempipe_loopback(cap, NULL));
        break;
    default:
        make(b % 3, cap);
        return;
    }
    if (x != (mempipe *)&E || y != (mempipe *)&E)
        FAIL("a failed creation wrote an out-pointer");
}

static void op_misc(struct in *in)
{
    cur_op = "misc";
    uint8_t b = u8(in);
    int code = (int)(int16_t)u16(in);
    switch (b % 3) {
    case 0:
        if (mempipe_strerror(code) == NULL) /* R31 */
            FAIL("strerror(%d) is NULL", code);
        break;
    case 1:
        if (mempipe_version_number() != MEMPIPE_VERSION_HEX)
            FAIL("version %s", mempipe_version());
        break;
    default: {
        int any = 0;
        for (int e = 0; e < NENDS; e++)
            any |= E[e].open;
        /* While pipes live the hook cannot change. */
        EXPECT_RC(any ? -EBUSY : 0, mempipe_set_allocator(NULL, NULL));
        break;
    }
    }
}

/* The state queries against the model, for every end and NULL. */
static void check_state(void)
{
    cur_op = "state";
    EXPECT_RC(0, mempipe_readable(NULL));
    EXPECT_RC(0, mempipe_writable(NULL));
    EXPECT_RC(0, mempipe_capacity(NULL));
    for (int e = 0; e < NENDS; e++) {
        if (!E[e].open)
            continue;
        const struct mend *m = &E[e];
        size_t rd = m->rx >= 0 ? L(&P[m->rx]) : 0;
        size_t wr = 0;
        if (m->tx >= 0) {
            const struct mpipe *p = &P[m->tx];
            wr = p->wclosed || p->rclosed ? 0 : p->cap - L(p);
        }
        EXPECT_RC(rd, mempipe_readable(m->h));
        EXPECT_RC(wr, mempipe_writable(m->h));
        EXPECT_RC(P[m->tx >= 0 ? m->tx : m->rx].cap, mempipe_capacity(m->h));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct in in = {data, size};
    memset(E, 0, sizeof E);
    memset(calls, 0, sizeof calls);
    memset(expected, 0, sizeof expected);
    for (int i = 0; i < NWAKERS; i++)
        wakers[i] = (mempipe_waker){wake_count, &calls[i]};
    for (int k = 0; k < 3; k++)
        make(k, caps[u8(&in) % (sizeof caps / sizeof caps[0])]);

    for (int ops = 0; in.n > 0 && ops < 4096; ops++) {
        uint8_t op = u8(&in);
        if (op >= 192) {
            switch (op % 4) {
            case 0:
                op_close_with_error(&in);
                break;
            case 1:
                op_abort(&in);
                break;
            case 2:
                op_rst_on_unread(&in);
                break;
            default:
                op_set_faults(&in);
                break;
            }
            check_wakers();
            check_state();
            continue;
        }
        switch (op % 12) {
        case 0:
        case 1:
            op_read(&in, 0);
            break;
        case 2:
        case 3:
            op_write(&in, 0);
            break;
        case 4:
            op_writev(&in);
            break;
        case 5:
            op_read(&in, 1);
            break;
        case 6:
            op_write(&in, 1);
            break;
        case 7:
            op_shutdown(&in, op & 16);
            break;
        case 8:
            op_flush(&in);
            break;
        case 9:
            op_close(&in);
            break;
        case 10:
            op_create(&in);
            break;
        default:
            op_misc(&in);
            break;
        }
        check_wakers();
        check_state();
    }
    /* Close everything: wakes as modelled, and LeakSanitizer checks that
     * the last close freed everything. */
    for (int e = 0; e < NENDS; e++) {
        if (!E[e].open)
            continue;
        uint8_t one = (uint8_t)e;
        struct in ein = {&one, 1};
        op_close(&ein);
        check_wakers();
    }
    cur_op = "after closing all";
    EXPECT_RC(0, mempipe_set_allocator(NULL, NULL));
    for (int i = 0; i < NP; i++) {
        free(P[i].q);
        P[i].q = NULL;
    }
    return 0;
}
