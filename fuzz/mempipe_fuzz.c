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
 * The socket calls of issue 12 (R51-R58) are modelled too: see "the socket
 * calls of issue 12" below for what exactly, and which blocking calls are
 * issued only where they cannot wait. So are the zero-copy windows and the
 * low-water marks of issue 11 (R62-R66), with the cooperative budget: see
 * "the zero-copy windows and marks of issue 11" below.
 *
 * Input layout: three capacity selectors, then operations of one opcode byte
 * followed by argument bytes; a short input reads zeros past its end.
 * Opcodes 0-119, 126, 133-144 and 157-191 are the original twelve
 * operations (op % 12); 192-255 the four of R37-R39 and R48
 * ((op - 192) % 4); 145-156 the ten of issue 12 (op - 145: 0 and 10
 * poll_readv, 1 poll_readable, 2 and 11 poll_writable, 3 shutdown_read, 4
 * read_timeout, 5 write_timeout, 6 drain, 7 read_full, 8 readv, 9 the
 * blocking writev); 120-125 and 127-132 the seven of issue 11 (index
 * op - 120, or op - 121 above 126: 0 and 6 write_reserve, 1 and 7
 * write_commit, 2 and 8 read_peek, 3 and 9 read_consume and
 * _consume_examined, 4 and 11 set_read_lowat and _write_lowat, 5
 * wait_readable and _writable, 10 budget_set). Both sets of twelve were
 * taken from the original operations (one of each op % 12) because no
 * input of corpus/ or regressions/ used any of them as an opcode, so every
 * stored input still decodes to the same calls: checked by building with
 * -DMEMPIPE_FUZZ_TRACE (one line per operation: offset, opcode, call,
 * bytes taken) and comparing the traces of all stored inputs before and
 * after (for issue 11: the same 22,938 operations of the 68 inputs). An
 * input found since that used them decodes differently now. Every value is
 * in use again: a new operation must take values the same way, or share
 * an opcode through a selector byte.
 *
 * Build: fuzz/build.sh (clang -fsanitize=fuzzer,address,undefined).
 */
#include "input.h"
#include "mempipe.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    int rshut;     /* R56: the reader shut its reading side (rclosed too) */
    int rd, wr;    /* stored waker: counter index, or -1 */
    uint64_t wpos; /* bytes ever written: the data of the next write */
    uint64_t rpos; /* bytes ever read (not discarded): R57's drain */
    /* Issue 11 (R62-R66). taken: bytes ever taken from the FIFO, read or
     * discarded (the ring's read position). */
    uint64_t taken;
    size_t rlowat, wlowat; /* R65's marks, 1 by default */
    /* What the stored reader's waker waits for (R65): wpos reaching rwant,
     * from the len of the call that stored it (SIZE_MAX: readiness) and,
     * for a peek's, a byte past the examined ones (R64). The writer's:
     * wneed bytes free, from wlen (the bytes its call still had). */
    uint64_t rwant;
    size_t rlen, wneed, wlen;
    int rpeek;
    size_t rsv; /* the open reservation's bytes (R62), 0 none */
    struct iovec rsv_iov[2];
    int rsv_n;
    size_t peeked; /* the open peek's bytes (R63), 0 none */
    struct iovec pk_iov[2];
    int pk_n;
    uint64_t rexam; /* the examined position (R64) */
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

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* R65: the stored reader's target, from its call's len and the mark now
 * (also when the mark changes under it); a peek's also past the examined
 * bytes (R64). Positions are the ring's: taken is its read position. */
static void model_reader_target(struct mpipe *p)
{
    p->rwant = p->taken + min_sz(p->rlen, p->rlowat);
    if (p->rpeek && p->rwant < p->rexam + 1)
        p->rwant = p->rexam + 1;
}

/* A pending read call of len bytes (peek: 1 for a peek) stores waker wi. */
static void model_reader_waits(struct mpipe *p, int wi, size_t len, int peek)
{
    if (wi < 0)
        return; /* nothing stored: whatever was stays, with its target */
    p->rd = wi;
    p->rlen = len;
    p->rpeek = peek;
    model_reader_target(p);
}

/* A pending write call with len bytes left stores waker wi. */
static void model_writer_waits(struct mpipe *p, int wi, size_t len)
{
    if (wi < 0)
        return;
    p->wr = wi;
    p->wlen = len;
    p->wneed = p->wlowat; /* R65: the mark's worth, whatever len */
}

/* A progress point for the reader's waker (bytes published, a new read
 * mark): called only if closed or its target reached; else it stays. */
static void model_progress_reader(struct mpipe *p)
{
    if (p->wclosed || p->rclosed || p->wpos >= p->rwant)
        model_wake(&p->rd);
}

/* The same for the writer's (bytes taken, a new write mark). */
static void model_progress_writer(struct mpipe *p)
{
    if (p->wclosed || p->rclosed || p->cap - L(p) >= p->wneed)
        model_wake(&p->wr);
}

/* Every byte buffered leaves the FIFO unread (a reset, a read close). */
static void fifo_drop(struct mpipe *p)
{
    p->taken += L(p);
    p->head = p->tail;
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
    P[i].rlowat = P[i].wlowat = 1;
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
    fifo_drop(&P[i]);
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
    fifo_drop(p);       /* R21: unread bytes discarded */
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
    if (dir == 0) /* rclosed: this end's own read-side shutdown (R56) */
        return L(p) == 0 && !p->wclosed && !p->rclosed;
    return !p->wclosed && !p->rclosed && L(p) == p->cap;
}

/*
 * The cooperative budget (coop.c): the model's copy of this thread's
 * mempipe__budget (0 unlimited, else 1 + the calls that may complete), and
 * whether the call running now is counted, so spends one unit unless it
 * ends pending. Set by the operation that sets it; the copy calls with
 * bytes to move and the reserve and peek calls meet it (hook.c).
 */
static unsigned budget;
static int spend_due;

/* A call that ran (was not decided by a fault or a yield) spends. */
static void model_spend(ssize_t n)
{
    /* Misuse (-EBUSY, -EINVAL: R66) changes nothing, the budget included. */
    if (spend_due && n != -EAGAIN && n != -EBUSY && n != -EINVAL && budget > 1)
        budget--;
    spend_due = 0;
}

/* A yield: waker wi called at once, not stored (coop.c). */
static int model_yield(int wi, ssize_t *r)
{
    if (wi >= 0)
        expected[wi]++;
    *r = -EAGAIN;
    return 1;
}

/*
 * The faults of a call of *len bytes by open end e in direction dir. Returns
 * 1 when a fault or the budget decides the call (its result in *r: an
 * injected pending or a yield, which calls waker wi at once, or fail_err),
 * else 0 with *len cut to the call's cap. Zero-length calls are never
 * touched (R8, R14), nor blocking ones by the budget.
 */
static int model_faults(int e, int dir, int blocking, size_t *len, int wi,
                        ssize_t *r)
{
    struct mend *m = &E[e];
    struct mdir *d = &m->f[dir];
    if (*len == 0)
        return 0;
    if (m->pending_every != 0 && !blocking &&
        ++m->polls % m->pending_every == 0)
        return model_yield(wi, r); /* called, not stored */
    if (budget == 1 && !blocking)
        return model_yield(wi, r); /* exhausted */
    if (d->fail_at != 0 && !model_would_wait(e, dir) &&
        ++d->counted >= d->fail_at) {
        *r = m->fail_err; /* changes nothing */
        return 1;
    }
    size_t cap = model_cap(d);
    if (cap < *len)
        *len = cap;
    spend_due = budget != 0 && !blocking;
    return 0;
}

/*
 * The same for a reserve (dir 1) or a peek (dir 0), hook.c's zc_begin:
 * counted whatever its length, and the cap goes to *max (SIZE_MAX: none).
 */
static int model_zc_faults(int e, int dir, int wi, size_t *max, ssize_t *r)
{
    struct mend *m = &E[e];
    struct mdir *d = &m->f[dir];
    if (m->pending_every != 0 && ++m->polls % m->pending_every == 0)
        return model_yield(wi, r);
    if (budget == 1)
        return model_yield(wi, r);
    if (d->fail_at != 0 && !model_would_wait(e, dir) &&
        ++d->counted >= d->fail_at) {
        *r = m->fail_err;
        return 1;
    }
    *max = model_cap(d);
    spend_due = budget != 0;
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

/*
 * The model of one read call of open end e (which has a pipe to read) for
 * at most len bytes: the faults first (R48, hook.c), then R8, R56, R38, R4,
 * R5/R37 and R6. The bytes it moves are copied to want; a pending poll
 * stores waker wi (-1: none). A blocking call passes blocking = 1 and wi =
 * -1 for each of its rounds: its parking waker is not a counting one.
 */
static ssize_t model_read(int e, size_t len, int blocking, int wi,
                          unsigned char *want)
{
    struct mpipe *p = &P[E[e].rx];
    ssize_t fr;
    if (model_faults(e, 0, blocking, &len, wi, &fr))
        return fr;
    if (len == 0) /* R8 */
        return 0;
    if (p->peeked != 0) /* R66: a copy read while a peek is open */
        return -EBUSY;
    if (p->rshut) /* R56: EOF, whatever the writer did (a reset too) */
        return 0;
    if (p->reset) /* R38: every read, the bytes gone */
        return -ECONNRESET;
    if (L(p) > 0) { /* R4 */
        size_t k = L(p) < len ? L(p) : len;
        memcpy(want, p->q + p->head, k);
        p->head += k;
        p->taken += k;
        p->rpos += k;
        model_progress_writer(p); /* R7, R65 */
        return (ssize_t)k;
    }
    if (p->wclosed) /* R5; R37: the writer's error instead */
        return p->rerr;
    model_reader_waits(p, wi, len, 0); /* R6; R23: replaces the old one */
    return -EAGAIN;
}

/*
 * Whether the read mark makes a blocking read of len bytes on open end e
 * with a timeout other than 0 wait first (block.c's read_some: for
 * min(len, mark) bytes, or a close, before its first round).
 */
static int model_mark_waits(int e, size_t len)
{
    const struct mpipe *p = &P[E[e].rx];
    size_t need = min_sz(len, p->rlowat);
    return p->rlowat > 1 && len > 1 && !p->wclosed && !p->rclosed &&
           L(p) < need;
}

/* Whether a blocking read of len bytes on open end e would wait (nothing
 * to read and nothing to report, or the mark not met), so block. With a
 * peek open its round is -EBUSY at once (R66), after the mark's wait. */
static int model_read_waits(int e, size_t len)
{
    if (len == 0)
        return 0;
    if (model_mark_waits(e, len))
        return 1;
    return P[E[e].rx].peeked == 0 && model_would_wait(e, 0);
}

/* Compares a call's result and bytes with the model's. */
static void expect_read(ssize_t want, ssize_t got, const unsigned char *wb,
                        const unsigned char *gb)
{
    EXPECT_RC(want, got);
    if (want > 0 && memcmp(wb, gb, (size_t)want) != 0)
        FAIL("read %zd bytes that differ from the model's FIFO", want);
}

static unsigned char
    want_buf[8 * 5000]; /* the bytes the model says a read moves */

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
    if (blocking && model_read_waits(e, len))
        return; /* would block forever in a single thread */
    ssize_t r =
        blocking ? mempipe_read(h, b, len) : mempipe_poll_read(h, b, len, w);
    ssize_t want = model_read(e, len, blocking, wi, want_buf);
    model_spend(want);
    expect_read(want, r, want_buf, b);
}

/* Expected result of a write of len bytes on open end e (len already cut
 * by an injected cap: a cap alone stores nothing, R54), and the model's
 * update; blocking writes are only issued when they complete at once. */
static ssize_t model_write(int e, size_t len, int wi, const unsigned char *b)
{
    struct mpipe *p = &P[E[e].tx];
    if (p->rsv != 0 && len != 0) /* R66: before the closes; R14 first */
        return -EBUSY;
    if (p->rclosed && !p->wclosed && p->werr != 0)
        return p->werr; /* R37, R38: the reader's error, unless shut down */
    if (p->wclosed || p->rclosed)
        return -EPIPE; /* R10, R14 */
    if (len == 0)
        return 0; /* R14 */
    if (L(p) == p->cap) {
        model_writer_waits(p, wi, len);
        return -EAGAIN; /* R11 */
    }
    size_t k = len < p->cap - L(p) ? len : p->cap - L(p);
    fifo_push(p, b, k);
    p->wpos += k;
    model_progress_reader(p); /* R13, R65 */
    if (k < len) /* R54: cut short by the full pipe, the waker stays */
        model_writer_waits(p, wi, len - k);
    return (ssize_t)k;
}

/* Whether a blocking write of len bytes by open end e could wait: not
 * while a reservation is open (-EBUSY at once, R66). */
static int model_write_waits(int e, size_t len)
{
    const struct mpipe *p = &P[E[e].tx];
    return p->rsv == 0 && !p->wclosed && !p->rclosed && len > p->cap - L(p);
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
    if (mode && model_write_waits(e, len))
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
        model_spend(want);
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
    model_spend(want);
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
    /* R22: this end's wakers are dropped, never called; its open
     * reservation and peek end with it. */
    if (m->rx >= 0) {
        P[m->rx].rd = -1;
        P[m->rx].peeked = 0;
    }
    if (m->tx >= 0) {
        P[m->tx].wr = -1;
        P[m->tx].rsv = 0;
    }
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

/* ---- the socket calls of issue 12 (R51-R58) ------------------------------ */

/*
 * What is modelled of them, and how (one thread must never block):
 *   exactly, in every state and on every end kind: mempipe_poll_readv (with
 *     the bad slices of R30, and the bytes around the slices checked
 *     untouched), mempipe_poll_readable and _writable (result and waker
 *     slot), mempipe_shutdown_read (its state and its effects on both ends),
 *     mempipe_unread (in check_state, after every call), and R54 in every
 *     poll write (model_write);
 *   exactly with timeout 0: mempipe_read_timeout, _write_timeout and
 *     mempipe_drain never wait then, and each round the call makes is
 *     modelled as the blocking front-end (block.c) makes it, since every
 *     round meets the injected caps and failures; -ETIMEDOUT where a poll
 *     would say -EAGAIN;
 *   with 1 ms, at most once per input (a real wait): the same, and the call
 *     parked its own waker in the slot, replacing what was stored there
 *     (never called), and withdrew it (R51: nothing left stored). Not while
 *     that direction has drawn caps: a spurious early return from the futex
 *     would make one more round, so one more draw;
 *   only where the model knows they cannot wait, else skipped (as
 *     mempipe_read and mempipe_write always were): those timeouts with a
 *     negative (for ever) or 1000 ms timeout, and mempipe_read_full,
 *     mempipe_readv and the blocking mempipe_writev: bytes for every round
 *     or EOF (an error, R56's 0) after them; every byte fits, or a close
 *     fails the write at once.
 */

static int waits_left; /* real 1 ms waits this input may still make */

/* A timeout argument (R51): mostly 0; for ever (-1 and INT_MIN, any negative
 * value) and 1000 ms, issued only where they will not wait; 1 ms. */
static int timeout_arg(struct in *in)
{
    uint8_t b = u8(in);
    if (b < 160)
        return 0;
    if (b < 200)
        return b & 1 ? INT_MIN : -1;
    if (b < 248)
        return 1000;
    return 1;
}

/* Whether a call of end e that would wait may do so: 1 ms, once per input,
 * and no drawn caps in direction dir (-1: a call that meets no fault). */
static int may_wait(int e, int dir, int timeout)
{
    if (timeout != 1 || waits_left == 0)
        return 0;
    if (dir >= 0 && E[e].f[dir].max != 0 && E[e].f[dir].rng != 0)
        return 0;
    waits_left--;
    return 1;
}

static const mempipe_waker no_wake = {NULL, NULL};

/* A waker argument of the new calls: as waker_arg, or one whose wake is
 * NULL (*bad: R30's -EINVAL, nothing stored). */
static const mempipe_waker *waker_arg_bad(struct in *in, int *idx, int *bad)
{
    uint8_t b = u8(in) % (NWAKERS + 3);
    *bad = b == NWAKERS + 2;
    *idx = b < NWAKERS ? b : -1;
    return b < NWAKERS ? &wakers[b] : *bad ? &no_wake : NULL;
}

/*
 * Slices (R52) drawn as op_writev draws them, bad shapes (R30) included,
 * laid out in base with `gap` guard bytes after each (a read's slices:
 * whatever lies around them must stay untouched).
 */
struct slices {
    struct iovec iov[8];
    const struct iovec *v; /* what the call is given */
    int cnt;
    size_t total; /* the sum of the passed slices, when good */
    size_t skip;  /* bytes of base before the first passed slice's data */
    size_t span;  /* bytes of base laid out */
    int bad;
};

#define GUARD 0xA5

static void slices_arg(struct in *in, struct slices *s, unsigned char *base,
                       size_t gap)
{
    uint8_t shape = u8(in);
    int n = u8(in) % 9;
    size_t lens[8];
    s->total = s->skip = s->span = 0;
    for (int i = 0; i < n; i++) {
        lens[i] = len_arg(in);
        s->iov[i].iov_base = base + s->span;
        s->iov[i].iov_len = lens[i];
        s->span += lens[i] + gap;
        s->total += lens[i];
    }
    s->v = s->iov;
    s->cnt = n;
    s->bad = 0;
    switch (shape % 16) {
    case 0:
        s->cnt = -1 - (int)(shape >> 4); /* negative */
        s->bad = 1;
        break;
    case 1:
        s->cnt = IOV_MAX + 1 + (shape >> 4); /* too many */
        s->bad = 1;
        break;
    case 2:
        if (n > 0) {
            s->v = NULL;
            s->bad = 1;
        }
        break;
    case 3:
        if (n > 0 && lens[n - 1] > 0) {
            s->iov[n - 1].iov_base = NULL; /* a NULL slice with bytes */
            s->bad = 1;
        }
        break;
    case 4:
        if (n >= 2) { /* lengths that sum past SSIZE_MAX */
            s->iov[0].iov_len = (size_t)SSIZE_MAX;
            s->iov[1].iov_len = 1 + lens[1];
            s->bad = 1;
        }
        break;
    case 5:
        if (n > 0) { /* an empty slice with a NULL base is fine */
            s->iov[0].iov_base = NULL;
            s->iov[0].iov_len = 0;
            s->total -= lens[0];
            s->skip = lens[0] + gap;
        }
        break;
    default:
        break;
    }
}

static unsigned char rv_buf[8 * 5001], rv_img[8 * 5001];

/* A scattering read moved the model's n bytes of want_buf into s's slices,
 * in order, and touched nothing else of rv_buf (guards, the slices' rest). */
static void check_scatter(const struct slices *s, size_t n)
{
    memset(rv_img, GUARD, s->span);
    size_t done = 0;
    for (int i = 0; i < s->cnt && done < n; i++) {
        size_t k = s->iov[i].iov_len < n - done ? s->iov[i].iov_len : n - done;
        if (k > 0)
            memcpy(rv_img + ((unsigned char *)s->iov[i].iov_base - rv_buf),
                   want_buf + done, k);
        done += k;
    }
    if (memcmp(rv_buf, rv_img, s->span) != 0)
        FAIL("the slices hold other bytes than the model's (%zu moved)", n);
}

static void op_poll_readv(struct in *in, int blocking)
{
    cur_op = blocking ? "mempipe_readv" : "mempipe_poll_readv";
    int e = end_arg(in);
    struct slices s;
    slices_arg(in, &s, rv_buf, 1);
    int wi = -1, bad = 0;
    const mempipe_waker *w = blocking ? NULL : waker_arg_bad(in, &wi, &bad);
    if (e == -2)
        return;
    mempipe *h = e >= 0 ? E[e].h : NULL;
    memset(rv_buf, GUARD, s.span);
    if (!blocking || e < 0 || s.bad || E[e].rx < 0 ||
        !model_read_waits(e, s.total)) {
        ssize_t r = blocking ? mempipe_readv(h, s.v, s.cnt)
                             : mempipe_poll_readv(h, s.v, s.cnt, w);
        ssize_t want;
        if (e < 0 || s.bad || bad)
            want = -EINVAL;   /* R30: nothing moves, nothing stored */
        else if (E[e].rx < 0) /* a simplex writer: R30's -EBADF (or R8) */
            want = r == 0 && s.total == 0 ? 0 : -EBADF;
        else
            want = model_read(e, s.total, blocking, wi, want_buf); /* R52 */
        model_spend(want);
        EXPECT_RC(want, r);
        check_scatter(&s, want > 0 ? (size_t)want : 0);
    } /* else a blocking readv that would block for ever */
}

/* R55 with R65: readiness from the mark's worth, or a close. */
static int model_ready(const struct mpipe *p, int wr)
{
    if (p->wclosed || p->rclosed)
        return 1;
    return wr ? p->cap - L(p) >= p->wlowat : L(p) >= p->rlowat;
}

static void op_poll_ready(struct in *in, int wr)
{
    cur_op = wr ? "mempipe_poll_writable" : "mempipe_poll_readable";
    int e = end_arg(in);
    int wi, bad;
    const mempipe_waker *w = waker_arg_bad(in, &wi, &bad);
    if (e == -2)
        return;
    mempipe *h = e >= 0 ? E[e].h : NULL;
    int r = wr ? mempipe_poll_writable(h, w) : mempipe_poll_readable(h, w);
    if (e < 0 || bad) {
        EXPECT_RC(-EINVAL, r);
        return;
    }
    int pi = wr ? E[e].tx : E[e].rx;
    if (pi < 0) {
        EXPECT_RC(-EBADF, r); /* a simplex end's wrong direction */
        return;
    }
    /* R55: no fault, no byte; ready when the call would not wait. */
    struct mpipe *p = &P[pi];
    EXPECT_RC(model_ready(p, wr) ? 1 : -EAGAIN, r);
    if (model_ready(p, wr))
        return;
    if (wr) /* as a pending call stores it, for the mark's worth (R65) */
        model_writer_waits(p, wi, SIZE_MAX);
    else
        model_reader_waits(p, wi, SIZE_MAX, 0);
}

static void op_shutdown_read(struct in *in)
{
    cur_op = "mempipe_shutdown_read";
    int e = end_arg(in);
    if (e == -2)
        return;
    int r = mempipe_shutdown_read(e >= 0 ? E[e].h : NULL);
    if (e < 0) {
        EXPECT_RC(-EINVAL, r);
        return;
    }
    if (E[e].rx < 0) {
        EXPECT_RC(-EBADF, r); /* a simplex writer never reads */
        return;
    }
    EXPECT_RC(0, r); /* idempotent */
    /* R56: the bytes are gone (readable 0), reads EOF, the writer -EPIPE
     * (a first read close: werr stays 0), both roles woken. */
    struct mpipe *p = &P[E[e].rx];
    p->rshut = 1;
    p->rclosed = 1;
    fifo_drop(p);
    model_wake(&p->rd);
    model_wake(&p->wr);
}

/*
 * The arguments of the new one-buffer calls: an end, a length, now and then
 * a NULL buffer, and a timeout for the timed ones. The buffer is the
 * stream's next bytes for a write.
 */
struct bufcall {
    int e;
    mempipe *h;
    size_t len;
    unsigned char *b;
    int t;
    ssize_t (*call)(const struct bufcall *c);
};

static unsigned char bc_buf[8192];

static ssize_t call_read_timeout(const struct bufcall *c)
{
    return mempipe_read_timeout(c->h, c->b, c->len, c->t);
}

static ssize_t call_write_timeout(const struct bufcall *c)
{
    return mempipe_write_timeout(c->h, c->b, c->len, c->t);
}

static ssize_t call_read_full(const struct bufcall *c)
{
    return mempipe_read_full(c->h, c->b, c->len);
}

/*
 * Decodes a one-buffer call of direction dir (0 read, 1 write) and answers
 * the cases that need no model: a closed end (skipped), R30's -EINVAL, and
 * a simplex end's wrong direction (-EBADF, or R8/R14's 0). Returns 1 when
 * the model must answer the call.
 */
static int bufcall_arg(struct in *in, struct bufcall *c, int dir, int timed)
{
    c->e = end_arg(in);
    c->len = len_arg(in);
    c->b = u8(in) % 8 == 0 ? NULL : bc_buf;
    c->t = timed ? timeout_arg(in) : 0;
    if (c->e == -2)
        return 0;
    c->h = c->e >= 0 ? E[c->e].h : NULL;
    if (c->e < 0 || (c->b == NULL && c->len > 0)) {
        EXPECT_RC(-EINVAL, c->call(c));
        return 0;
    }
    if ((dir ? E[c->e].tx : E[c->e].rx) < 0) {
        ssize_t r = c->call(c);
        if (!(r == -EBADF || (c->len == 0 && r == 0)))
            FAIL("a simplex end's wrong direction returned %zd", r);
        return 0;
    }
    return 1;
}

static void op_read_timeout(struct in *in)
{
    cur_op = "mempipe_read_timeout";
    struct bufcall c = {.call = call_read_timeout};
    if (!bufcall_arg(in, &c, 0, 1))
        return;
    int e = c.e;
    if (c.t != 0 && model_read_waits(e, c.len) && !may_wait(e, 0, c.t))
        return;
    /* Timeout 0 makes no mark wait (no waker: two rounds, below). */
    int marked = c.t != 0 && model_mark_waits(e, c.len);
    ssize_t r = c.call(&c);
    ssize_t want;
    if (marked) {
        /* R65: it parked for the mark's worth (its waker replaced the one
         * stored), and after the deadline made its one round. */
        P[E[e].rx].rd = -1;
        want = model_read(e, c.len, 1, -1, want_buf);
        if (want == -EAGAIN)
            want = -ETIMEDOUT;
        expect_read(want, r, want_buf, c.b);
        return;
    }
    /* block.c's read_some: one round, and after the deadline one more
     * without a waker (each meets the faults: a cap drawn), then R51. */
    want = model_read(e, c.len, 1, -1, want_buf);
    if (want == -EAGAIN) {
        want = model_read(e, c.len, 1, -1, want_buf);
        if (want == -EAGAIN)
            want = -ETIMEDOUT;
        if (c.t != 0) /* it parked in the slot, then withdrew */
            P[E[e].rx].rd = -1;
    }
    expect_read(want, r, want_buf, c.b);
}

/*
 * Where byte `done` of the slices' concatenation falls inside a slice (not
 * at its start): the bytes of that slice from there on; else 0.
 */
static size_t slice_rest(const struct iovec *iov, int iovcnt, size_t done)
{
    size_t start = 0;
    for (int i = 0; i < iovcnt; i++) {
        size_t end = start + iov[i].iov_len;
        if (done < end)
            return done > start ? end - done : 0;
        start = end;
    }
    return 0;
}

/*
 * block.c's write_all on the model: rounds until every byte of the slices
 * is accepted, each the rest of a slice cut part-way, else every slice
 * left, each meeting the faults. A pending round ends the call after one
 * more (the deadline's); *pended says whether one was (a timed call then
 * parked). The data is the concatenation of the slices.
 */
static ssize_t model_write_all(int e, const struct iovec *iov, int iovcnt,
                               size_t total, const unsigned char *data,
                               int *pended)
{
    size_t done = 0;
    int last = 0;
    ssize_t rc = 0;
    *pended = 0;
    for (;;) {
        size_t rest = slice_rest(iov, iovcnt, done);
        size_t k = rest > 0 ? rest : total - done;
        ssize_t n;
        if (!model_faults(e, 1, 1, &k, -1, &n))
            n = model_write(e, k, -1, data + done);
        if (n == -EAGAIN) {
            if (last) {
                rc = -ETIMEDOUT; /* R51 */
                break;
            }
            last = *pended = 1;
            continue;
        }
        if (n < 0) { /* R28: the count so far, else the error */
            rc = n;
            break;
        }
        done += (size_t)n;
        if (done == total || last)
            break;
    }
    return done > 0 ? (ssize_t)done : rc;
}

static void op_write_timeout(struct in *in)
{
    cur_op = "mempipe_write_timeout";
    struct bufcall c = {.call = call_write_timeout};
    if (!bufcall_arg(in, &c, 1, 1))
        return;
    int e = c.e;
    if (model_write_waits(e, c.len) && c.t != 0 && !may_wait(e, 1, c.t))
        return;
    struct mpipe *p = &P[E[e].tx];
    fill(bc_buf, c.len, p->wpos, E[e].tx);
    ssize_t r = c.call(&c);
    struct iovec one = {bc_buf, c.len};
    int pended;
    ssize_t want = model_write_all(e, &one, 1, c.len, bc_buf, &pended);
    if (pended && c.t != 0) /* it parked in the slot, then withdrew */
        p->wr = -1;
    EXPECT_RC(want, r);
}

static void op_writev_blocking(struct in *in)
{
    cur_op = "mempipe_writev";
    int e = end_arg(in);
    static unsigned char buf[8 * 5000];
    struct slices s;
    slices_arg(in, &s, buf, 0);
    if (e == -2)
        return;
    mempipe *h = e >= 0 ? E[e].h : NULL;
    if (e < 0 || s.bad) {
        EXPECT_RC(-EINVAL, mempipe_writev(h, s.v, s.cnt));
        return;
    }
    if (E[e].tx < 0) {
        ssize_t r = mempipe_writev(h, s.v, s.cnt);
        if (!(r == -EBADF || (s.total == 0 && r == 0)))
            FAIL("writev on a reader end returned %zd", r);
        return;
    }
    if (model_write_waits(e, s.total))
        return; /* would block for ever */
    fill(buf + s.skip, s.total, P[E[e].tx].wpos, E[e].tx);
    ssize_t r = mempipe_writev(h, s.v, s.cnt);
    int pended;
    EXPECT_RC(model_write_all(e, s.iov, s.cnt, s.total, buf + s.skip, &pended),
              r);
}

static void op_read_full(struct in *in)
{
    cur_op = "mempipe_read_full";
    struct bufcall c = {.call = call_read_full};
    if (!bufcall_arg(in, &c, 0, 0))
        return;
    int e = c.e;
    size_t len = c.len;
    const struct mpipe *p = &P[E[e].rx];
    if (p->peeked != 0 ? model_read_waits(e, len)
                       : len > L(p) && !p->wclosed && !p->rclosed)
        return; /* would wait for bytes nobody writes */
    ssize_t r = c.call(&c);
    /* R53: rounds until len, EOF or an error; the count, else the 0 or
     * the error. */
    size_t done = 0;
    ssize_t n;
    do {
        n = model_read(e, len - done, 1, -1, want_buf + done);
        if (n <= 0)
            break;
        done += (size_t)n;
    } while (done < len);
    expect_read(done > 0 ? (ssize_t)done : n, r, want_buf, c.b);
}

static void op_drain(struct in *in)
{
    cur_op = "mempipe_drain";
    int e = end_arg(in);
    int t = timeout_arg(in);
    if (e == -2)
        return;
    if (e < 0 || E[e].tx < 0) {
        EXPECT_RC(e < 0 ? -EINVAL : -EBADF,
                  mempipe_drain(e < 0 ? NULL : E[e].h, t));
        return;
    }
    /* R57: every byte written read (also before the reader went), else
     * the reader's error or -EPIPE once it is gone or read-shut, else
     * waiting; no fault applies. */
    struct mpipe *p = &P[E[e].tx];
    int want = p->rpos == p->wpos ? 0
               : !p->rclosed      ? -ETIMEDOUT
               : p->werr != 0     ? p->werr
                                  : -EPIPE;
    if (want == -ETIMEDOUT && t != 0 && !may_wait(e, -1, t))
        return;
    EXPECT_RC(want, mempipe_drain(E[e].h, t));
    if (want == -ETIMEDOUT && t != 0) /* parked in the writer's slot */
        p->wr = -1;
}

/* The state queries against the model, for every end and NULL. */
static void check_state(void)
{
    cur_op = "state";
    EXPECT_RC(0, mempipe_readable(NULL));
    EXPECT_RC(0, mempipe_writable(NULL));
    EXPECT_RC(0, mempipe_capacity(NULL));
    EXPECT_RC(0, mempipe_unread(NULL));
    for (int e = 0; e < NENDS; e++) {
        if (!E[e].open)
            continue;
        const struct mend *m = &E[e];
        size_t rd = m->rx >= 0 ? L(&P[m->rx]) : 0;
        size_t wr = 0, un = 0;
        if (m->tx >= 0) {
            const struct mpipe *p = &P[m->tx];
            wr = p->wclosed || p->rclosed ? 0 : p->cap - L(p);
            un = p->rclosed ? 0 : L(p); /* R58: never read once gone */
        }
        EXPECT_RC(rd, mempipe_readable(m->h));
        EXPECT_RC(wr, mempipe_writable(m->h));
        EXPECT_RC(un, mempipe_unread(m->h));
        EXPECT_RC(P[m->tx >= 0 ? m->tx : m->rx].cap, mempipe_capacity(m->h));
        /* R55 with R65: readiness follows the marks; no waker, no change. */
        if (m->rx >= 0)
            EXPECT_RC(model_ready(&P[m->rx], 0) ? 1 : -EAGAIN,
                      mempipe_poll_readable(m->h, NULL));
        if (m->tx >= 0)
            EXPECT_RC(model_ready(&P[m->tx], 1) ? 1 : -EAGAIN,
                      mempipe_poll_writable(m->h, NULL));
    }
    EXPECT_RC(budget == 0 ? UINT_MAX : budget - 1, mempipe_budget_left());
}

static void op_poll_readv1(struct in *in)
{
    op_poll_readv(in, 0);
}

static void op_readv(struct in *in)
{
    op_poll_readv(in, 1);
}

static void op_poll_readable(struct in *in)
{
    op_poll_ready(in, 0);
}

static void op_poll_writable(struct in *in)
{
    op_poll_ready(in, 1);
}

/* ---- the zero-copy windows and marks of issue 11 (R62-R66) --------------- */

/*
 * What is modelled of them, exactly, in every state and on every end kind:
 *   mempipe_write_reserve: the spans (1 or 2, none empty) and their total:
 *     min(want, room, the injected cap), exactly when that fits one segment
 *     (ring.c: min(capacity, 64 KiB)), else at least a segment's worth; the
 *     model's bytes are written into the spans just before the commit (so
 *     ASan sees them still writable then, whatever happened since);
 *   mempipe_write_commit of all, a prefix, none, or too many (R66);
 *   mempipe_read_peek: the spans' bytes against the model's FIFO (one span
 *     shows exactly min(L, cap); two at most that), checked again before
 *     every consume (R63: still readable, also across the writer's abort),
 *     the examined wait (R64), EOF and the close errors;
 *   mempipe_read_consume and _consume_examined, every misuse (R66);
 *   -EBUSY for every copy call during an open reservation or peek (R66);
 *   the marks (R65): each stored waker's target (wpos reaching
 *     taken + min(mark, its call's len), a peek's also past the examined
 *     bytes; min(mark, the bytes its call still had) free for a writer's),
 *     asked at each progress point; a new mark re-targets a stored waker
 *     and wakes it if met; readiness from the mark's worth (poll_readable
 *     and _writable after every call, in check_state; mempipe_wait_readable
 *     and _writable with timeout 0, 1 ms once per input, or where ready);
 *     the blocking reads' wait for the mark (model_mark_waits);
 *   the features: caps, drawn caps, fail_at and pending_every on reserve
 *     and peek (hook.c's zc_begin), and the cooperative budget
 *     (mempipe_budget_set: a yield, the spends) on them and on every poll
 *     call, checked with mempipe_budget_left after every call.
 * Not checked: statistics and taps (as elsewhere).
 */

#define MAX_SEG 65536 /* ring.c's largest segment */

static unsigned char zc_buf[2 * MAX_SEG];
static unsigned char pk_img[NP][2 * MAX_SEG]; /* the bytes each peek shows */

/* The spans a reserve or a peek returned: n of them (1 or 2), none empty;
 * their total. */
static size_t check_spans(const struct iovec *iov, int n)
{
    if (n != 1 && n != 2)
        FAIL("returned %d, want 1 or 2 spans", n);
    size_t t = 0;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_base == NULL || iov[i].iov_len == 0)
            FAIL("span %d of %d is empty", i, n);
        t += iov[i].iov_len;
    }
    return t;
}

/* The spans hold img's bytes, in order. */
static void check_span_bytes(const struct iovec *iov, int n,
                             const unsigned char *img)
{
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (memcmp(iov[i].iov_base, img + off, iov[i].iov_len) != 0)
            FAIL("span %d holds other bytes than the model's", i);
        off += iov[i].iov_len;
    }
}

/* Copies len bytes of img into the spans, in order. */
static void fill_spans(const struct iovec *iov, int n, const unsigned char *img,
                       size_t len)
{
    for (int i = 0; i < n && len > 0; i++) {
        size_t k = min_sz(iov[i].iov_len, len);
        memcpy(iov[i].iov_base, img, k);
        img += k;
        len -= k;
    }
}

static void op_reserve(struct in *in)
{
    cur_op = "mempipe_write_reserve";
    int e = end_arg(in);
    size_t want = len_arg(in);
    uint8_t how = u8(in);
    int wi, bad;
    const mempipe_waker *w = waker_arg_bad(in, &wi, &bad);
    if (how % 8 == 0) /* more than a segment */
        want = how & 8 ? SIZE_MAX : 3 * MAX_SEG / 2;
    int null_iov = (how >> 4) % 8 == 0;
    if (e == -2)
        return;
    mempipe *h = e >= 0 ? E[e].h : NULL;
    struct iovec iov[2] = {{NULL, 0}, {NULL, 0}};
    int r = mempipe_write_reserve(h, want, null_iov ? NULL : iov, w);
    if (e < 0 || null_iov || want == 0 || bad) {
        EXPECT_RC(-EINVAL, r); /* R66: nothing reserved, nothing stored */
        return;
    }
    if (E[e].tx < 0) {
        EXPECT_RC(-EBADF, r);
        return;
    }
    struct mpipe *p = &P[E[e].tx];
    ssize_t rc;
    size_t max;
    if (p->rsv != 0) {
        /* R66: a second reserve, checked before any fault or the budget */
        EXPECT_RC(-EINVAL, r);
        spend_due = 0;
        return;
    }
    if (model_zc_faults(e, 1, wi, &max, &rc)) {
        EXPECT_RC(rc, r);
        return;
    }
    size_t ask = min_sz(want, max);
    if (p->rclosed && !p->wclosed && p->werr != 0)
        rc = p->werr; /* R62 as a write: R37, R38 */
    else if (p->wclosed || p->rclosed)
        rc = -EPIPE;
    else if (L(p) == p->cap) {
        model_writer_waits(p, wi, ask); /* as a pending write */
        rc = -EAGAIN;
    } else
        rc = 1; /* spans: checked below */
    model_spend(rc);
    if (rc != 1) {
        EXPECT_RC(rc, r);
        return;
    }
    size_t t = check_spans(iov, r);
    size_t take = min_sz(ask, p->cap - L(p));
    size_t least = min_sz(take, min_sz(p->cap, MAX_SEG));
    if (t > take || t < least)
        FAIL("reserved %zu bytes, want %zu (at least %zu)", t, take, least);
    p->rsv = t;
    memcpy(p->rsv_iov, iov, sizeof iov);
    p->rsv_n = r;
}

/* R30 for end e's call that returned r: a NULL end (e -1) is -EINVAL, an
 * end without a pipe that way (none) -EBADF. Returns 1 if so. */
static int bad_end(int e, int none, int r)
{
    if (e >= 0 && !none)
        return 0;
    EXPECT_RC(e < 0 ? -EINVAL : -EBADF, r);
    return 1;
}

/* A count of the held bytes (reserved, shown) by how % 4: all, a prefix
 * (by x), more than held (-EINVAL), none. */
static size_t count_arg(uint8_t how, uint16_t x, size_t held)
{
    switch (how % 4) {
    case 0:
        return held;
    case 1:
        return x % (held + 1);
    case 2:
        return x & 1 ? SIZE_MAX : held + 1 + x % 4;
    default:
        return 0;
    }
}

static void op_commit(struct in *in)
{
    cur_op = "mempipe_write_commit";
    int e = end_arg(in);
    uint8_t how = u8(in);
    uint16_t x = u16(in);
    if (e == -2)
        return;
    mempipe *h = e >= 0 ? E[e].h : NULL;
    struct mpipe *p = e >= 0 && E[e].tx >= 0 ? &P[E[e].tx] : NULL;
    size_t rsv = p != NULL ? p->rsv : 0;
    size_t n = count_arg(how, x, rsv);
    /* The stream's next bytes go into the spans now: they must still be
     * writable (ASan), whatever happened since the reserve. */
    if (rsv > 0) {
        fill(zc_buf, rsv, p->wpos, E[e].tx);
        fill_spans(p->rsv_iov, p->rsv_n, zc_buf, rsv);
    }
    int r = mempipe_write_commit(h, n);
    if (bad_end(e, p == NULL, r))
        return;
    if (rsv == 0 || n > rsv) {
        EXPECT_RC(-EINVAL, r); /* R66: the reservation stays open */
        return;
    }
    p->rsv = 0; /* over, whatever the outcome */
    if (p->rclosed && !p->wclosed && p->werr != 0) {
        EXPECT_RC(p->werr, r); /* R62: nothing published */
        return;
    }
    if (p->wclosed || p->rclosed) {
        EXPECT_RC(-EPIPE, r);
        return;
    }
    EXPECT_RC(0, r);
    fifo_push(p, zc_buf, n);
    p->wpos += n;
    if (n > 0)
        model_progress_reader(p); /* R62: as a write */
}

static void op_peek(struct in *in)
{
    cur_op = "mempipe_read_peek";
    int e = end_arg(in);
    uint8_t how = u8(in);
    int wi, bad;
    const mempipe_waker *w = waker_arg_bad(in, &wi, &bad);
    int null_iov = how % 8 == 0;
    if (e == -2)
        return;
    mempipe *h = e >= 0 ? E[e].h : NULL;
    struct iovec iov[2] = {{NULL, 0}, {NULL, 0}};
    int r = mempipe_read_peek(h, null_iov ? NULL : iov, w);
    if (e < 0 || null_iov || bad) {
        EXPECT_RC(-EINVAL, r);
        return;
    }
    if (E[e].rx < 0) {
        EXPECT_RC(-EBADF, r);
        return;
    }
    int pi = E[e].rx;
    struct mpipe *p = &P[pi];
    ssize_t rc;
    size_t max;
    if (model_zc_faults(e, 0, wi, &max, &rc)) {
        EXPECT_RC(rc, r);
        return;
    }
    /* R63 as a read (R56, R38, R5, R37), and R64: while no byte came past
     * the examined ones, pending, unless the writer has closed. An open
     * peek stays open through all of these. */
    if (p->rshut)
        rc = 0;
    else if (p->reset)
        rc = -ECONNRESET;
    else if ((p->wclosed || p->wpos > p->rexam) && L(p) > 0)
        rc = 1; /* spans: checked below */
    else if (p->wclosed)
        rc = p->rerr;
    else {
        model_reader_waits(p, wi, max, 1);
        rc = -EAGAIN;
    }
    model_spend(rc);
    if (rc != 1) {
        EXPECT_RC(rc, r);
        return;
    }
    size_t t = check_spans(iov, r);
    size_t avail = min_sz(L(p), max);
    if (t > avail || (r == 1 && t != avail))
        FAIL("peek shows %zu bytes in %d spans, want %s%zu", t, r,
             r == 1 ? "" : "at most ", avail);
    memcpy(pk_img[pi], p->q + p->head, t);
    check_span_bytes(iov, r, pk_img[pi]);
    p->peeked = t;
    memcpy(p->pk_iov, iov, sizeof iov);
    p->pk_n = r;
}

static void op_consume(struct in *in)
{
    int e = end_arg(in);
    uint8_t how = u8(in);
    uint16_t x = u16(in);
    uint8_t y = u8(in);
    int examined = how % 8 >= 4;
    cur_op =
        examined ? "mempipe_read_consume_examined" : "mempipe_read_consume";
    if (e == -2)
        return;
    mempipe *h = e >= 0 ? E[e].h : NULL;
    struct mpipe *p = e >= 0 && E[e].rx >= 0 ? &P[E[e].rx] : NULL;
    size_t pk = p != NULL ? p->peeked : 0;
    size_t c = count_arg(how, x, pk), xm = c;
    switch (how % 8) {
    case 4: /* consumed <= examined <= shown */
        c = x % (pk + 1);
        xm = c + y % (pk - c + 1);
        break;
    case 5: /* none consumed, all examined: "need more" */
        c = 0;
        xm = pk;
        break;
    case 6: /* consumed > examined: -EINVAL */
        c = 1 + x % (pk + 1);
        xm = c - 1 - y % c;
        break;
    case 7: /* examined > shown: -EINVAL */
        c = x % (pk + 1);
        xm = pk + 1 + y % 4;
        break;
    default:
        break;
    }
    /* R63: the spans still show the bytes they showed, whatever the
     * writer did since (its abort included). */
    if (pk > 0)
        check_span_bytes(p->pk_iov, p->pk_n, pk_img[E[e].rx]);
    int r = examined ? mempipe_read_consume_examined(h, c, xm)
                     : mempipe_read_consume(h, c);
    if (bad_end(e, p == NULL, r))
        return;
    if (pk == 0 || c > xm || xm > pk) {
        EXPECT_RC(-EINVAL, r); /* R66: the peek stays open */
        return;
    }
    EXPECT_RC(0, r);
    p->peeked = 0;
    p->rexam = p->taken + xm; /* R64 */
    /* After a reset or a read-side shutdown the model holds no bytes;
     * consumed after the latter they still count as read (R57's drain,
     * as the ring's cut). */
    if (!p->reset)
        p->rpos += c;
    if (!p->reset && !p->rshut) {
        p->head += c;
        p->taken += c;
    }
    if (c > 0)
        model_progress_writer(p); /* R63: as a read */
}

static void op_set_lowat(struct in *in)
{
    int e = end_arg(in);
    uint8_t how = u8(in);
    uint16_t x = u16(in);
    int wr = how & 1;
    cur_op = wr ? "mempipe_set_write_lowat" : "mempipe_set_read_lowat";
    if (e == -2)
        return;
    int pi = e < 0 ? -1 : wr ? E[e].tx : E[e].rx;
    size_t cap = pi >= 0 ? P[pi].cap : 16;
    size_t n;
    switch ((how >> 1) % 8) {
    case 0:
        n = 0; /* -EINVAL */
        break;
    case 1:
        n = 1;
        break;
    case 2:
        n = 2 + x % 7;
        break;
    case 3:
        n = cap / 2;
        break;
    case 4:
        n = cap;
        break;
    case 5:
        n = cap + 1; /* -EINVAL (0 for SIZE_MAX: too) */
        break;
    case 6:
        n = 1 + x % cap;
        break;
    default:
        n = (size_t)UINT32_MAX + (x & 1); /* above UINT32_MAX: -EINVAL */
        break;
    }
    mempipe *h = e >= 0 ? E[e].h : NULL;
    int r = wr ? mempipe_set_write_lowat(h, n) : mempipe_set_read_lowat(h, n);
    if (bad_end(e, pi < 0, r))
        return;
    if (n == 0 || n > cap || n > UINT32_MAX) {
        EXPECT_RC(-EINVAL, r); /* nothing changes */
        return;
    }
    EXPECT_RC(0, r);
    /* R65: a stored waker waits for the new mark's worth from now on, and
     * is called at once if that is met already. */
    struct mpipe *p = &P[pi];
    if (wr) {
        p->wlowat = n;
        p->wneed = n;
        model_progress_writer(p);
    } else {
        p->rlowat = n;
        model_reader_target(p);
        model_progress_reader(p);
    }
}

static void op_wait_ready(struct in *in)
{
    int e = end_arg(in);
    int wr = u8(in) & 1;
    int t = timeout_arg(in);
    cur_op = wr ? "mempipe_wait_writable" : "mempipe_wait_readable";
    if (e == -2)
        return;
    mempipe *h = e >= 0 ? E[e].h : NULL;
    int pi = e < 0 ? -1 : wr ? E[e].tx : E[e].rx;
    if (pi < 0) {
        EXPECT_RC(e < 0 ? -EINVAL : -EBADF, wr ? mempipe_wait_writable(h, t)
                                               : mempipe_wait_readable(h, t));
        return;
    }
    /* R55 with R65: ready from the mark's worth; never a fault or budget. */
    struct mpipe *p = &P[pi];
    int ready = model_ready(p, wr);
    if (!ready && t != 0 && !may_wait(e, -1, t))
        return;
    int r = wr ? mempipe_wait_writable(h, t) : mempipe_wait_readable(h, t);
    EXPECT_RC(ready ? 1 : -ETIMEDOUT, r);
    if (!ready && t != 0) /* it parked in the slot, then withdrew */
        *(wr ? &p->wr : &p->rd) = -1;
}

static void op_budget(struct in *in)
{
    static const unsigned ops[] = {0, 1, 2, 3, 5, 8, UINT_MAX - 1, UINT_MAX};
    cur_op = "mempipe_budget_set";
    unsigned n = ops[u8(in) % 8];
    mempipe_budget_set(n);
    budget = n == 0 ? 0 : n == UINT_MAX ? UINT_MAX : n + 1; /* coop.c */
}

/* Opcodes 120-125 and 127-132: see the layout at the top. */
static void (*const zc_ops[12])(struct in *) = {
    op_reserve, op_commit, op_peek, op_consume, op_set_lowat, op_wait_ready,
    op_reserve, op_commit, op_peek, op_consume, op_budget,    op_set_lowat,
};

/* Opcodes 145-156 (op - 145): see the layout at the top. */
static void (*const socket_ops[12])(struct in *) = {
    op_poll_readv1,  op_poll_readable,   op_poll_writable, op_shutdown_read,
    op_read_timeout, op_write_timeout,   op_drain,         op_read_full,
    op_readv,        op_writev_blocking, op_poll_readv1,   op_poll_writable,
};

/* Decodes and runs one operation (the layout at the top). */
static void run_op(uint8_t op, struct in *in)
{
    if (op >= 120 && op <= 132 && op != 126) {
        zc_ops[op < 126 ? op - 120 : op - 121](in);
        return;
    }
    if (op >= 145 && op <= 156) {
        socket_ops[op - 145](in);
        return;
    }
    if (op >= 192) {
        switch (op % 4) {
        case 0:
            op_close_with_error(in);
            break;
        case 1:
            op_abort(in);
            break;
        case 2:
            op_rst_on_unread(in);
            break;
        default:
            op_set_faults(in);
            break;
        }
        return;
    }
    switch (op % 12) {
    case 0:
    case 1:
        op_read(in, 0);
        break;
    case 2:
    case 3:
        op_write(in, 0);
        break;
    case 4:
        op_writev(in);
        break;
    case 5:
        op_read(in, 1);
        break;
    case 6:
        op_write(in, 1);
        break;
    case 7:
        op_shutdown(in, op & 16);
        break;
    case 8:
        op_flush(in);
        break;
    case 9:
        op_close(in);
        break;
    case 10:
        op_create(in);
        break;
    default:
        op_misc(in);
        break;
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
    waits_left = 1;
    mempipe_budget_set(0); /* this thread's: the last input may have set it */
    budget = 0;

    for (int ops = 0; in.n > 0 && ops < 4096; ops++) {
#ifdef MEMPIPE_FUZZ_TRACE
        /* The decoding, one line per operation (fuzz/README.md): where it
         * starts, its opcode, the call it made and the bytes it took. */
        size_t at = size - in.n;
        uint8_t op = u8(&in);
        cur_op = "(none)";
        run_op(op, &in);
        fprintf(stderr, "trace %zu op %u %s +%zu\n", at, op, cur_op,
                size - in.n - at);
#else
        run_op(u8(&in), &in);
#endif
        check_wakers();
        check_state();
    }
    mempipe_budget_set(0);
    budget = 0;
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
