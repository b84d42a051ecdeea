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
 * Input layout: three capacity selectors, then operations of one opcode byte
 * followed by argument bytes; a short input reads zeros past its end.
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
    int rd, wr;    /* stored waker: counter index, or -1 */
    uint64_t wpos; /* bytes ever written: the data of the next write */
};

struct mend {
    mempipe *h;
    int open;
    int rx, tx; /* model pipe indices, or -1 */
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
        E[0] = (struct mend){E[0].h, 1, 1, 0};
        E[1] = (struct mend){E[1].h, 1, 0, 1};
        break;
    case 1:
        if (E[2].open || E[3].open)
            return;
        rc = mempipe_simplex(cap, &E[2].h, &E[3].h);
        EXPECT_RC(0, rc);
        model_pipe_init(2, cap);
        E[2] = (struct mend){E[2].h, 1, 2, -1};
        E[3] = (struct mend){E[3].h, 1, -1, 2};
        break;
    default:
        if (E[4].open)
            return;
        rc = mempipe_loopback(cap, &E[4].h);
        EXPECT_RC(0, rc);
        model_pipe_init(3, cap);
        E[4] = (struct mend){E[4].h, 1, 3, 3};
        break;
    }
}

/* The model of write-closing pipe i (shutdown, or a writer's close). */
static void model_close_write(int i)
{
    P[i].wclosed = 1;
    model_wake(&P[i].rd); /* R17 */
    model_wake(&P[i].wr); /* R18 */
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
    if (len == 0) { /* R8 */
        EXPECT_RC(0, r);
    } else if (L(p) > 0) { /* R4 */
        size_t k = L(p) < len ? L(p) : len;
        EXPECT_RC(k, r);
        if (memcmp(b, p->q + p->head, k) != 0)
            FAIL("read %zu bytes that differ from the model's FIFO", k);
        p->head += k;
        model_wake(&p->wr);  /* R7 */
    } else if (p->wclosed) { /* R5 */
        EXPECT_RC(0, r);
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
    EXPECT_RC(model_write(e, len, wi, buf), r);
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
    EXPECT_RC(model_write(e, total, wi, data), r); /* R15 */
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
    model_close_write(E[e].tx);
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
    struct mend *m = &E[e];
    /* R22: this end's wakers are dropped, never called. */
    if (m->rx >= 0)
        P[m->rx].rd = -1;
    if (m->tx >= 0)
        P[m->tx].wr = -1;
    if (m->tx >= 0)
        model_close_write(m->tx); /* R19, R20 */
    if (m->rx >= 0) {
        struct mpipe *p = &P[m->rx];
        p->rclosed = 1;
        model_wake(&p->wr); /* R19, R20 */
        p->head = p->tail;  /* R21: unread bytes discarded */
    }
    mempipe_close(m->h);
    m->open = 0;
    m->h = NULL;
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
