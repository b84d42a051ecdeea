/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a scribbling peer for the shared-memory pipes
 * (docs/shm.md, Test plan, "Scribbler fuzzer"). Each input makes one shm
 * duplex or simplex end with a small capacity, maps the peer fd itself and
 * plays the peer process from this one: not through mempipe_shm_attach()
 * (that would link the two ends in one core and bypass the shared words)
 * but as a raw peer writing side 1's words of struct mempipe__shm_hdr
 * (src/shm.h) and the bytes of the data areas, honestly or not, between
 * calls of every kind on our end (side 0). After each call it checks that
 * the return value is one the header documents for that call, and, while
 * the peer has been honest, the exact value a socket-like pipe gives.
 *
 * What is checked, after every operation:
 *  - the return value is in the call's documented set: counts within the
 *    requested length, 0, -EAGAIN, -EPIPE, -EPROTO, -ECONNRESET, -EBUSY and
 *    -EINVAL exactly where the call was misused, -EBADF on a simplex
 *    writer's read side, -ETIMEDOUT for the timeout-0 calls, and for the
 *    peer's close errors only an errno the peer's state word carried;
 *  - the bytes a read returns are the bytes of the data area at our read
 *    position, and the bytes a write or commit took are in the data area at
 *    our write position (so an offset computed wrongly inside the mapping,
 *    which ASan cannot see, is caught); peek and reserve spans lie exactly
 *    there, inside the ring's cap bytes;
 *  - the positions our end publishes (pos[].wpos, pos[].rpos, wend) are the
 *    counts its calls returned, unless the peer scribbled them;
 *  - our end never writes a word the peer owns (side[1], the peer's
 *    positions);
 *  - the snapshots (readable, writable, unread) stay within the capacity,
 *    shut_state within its two bits, describe NUL-terminates;
 *  - while the peer only did what an honest peer does: no -EPROTO ever,
 *    reads and writes move exactly min(len, what is there), -EAGAIN only
 *    when nothing is there, EOF only after every byte, and the snapshots
 *    are exact;
 *  - after the close: GONE is published, and no descriptor is left open.
 *
 * ASan sees every access of the library outside the mapping (a fault) and,
 * through manual poisoning of the library's own view of the mapping, every
 * access to the bytes no field or ring owns: the unused tail of each data
 * area past cap, the header's padding, and the immutable part of the
 * header (docs/shm.md: copied at create, never read again).
 *
 * The fake peer holds side 1's liveness lock (an OFD lock on byte 1, as
 * attach takes it) unless the first byte says not to or an operation drops
 * it (the peer "dies"): without it, a wait of our end that lasts a slice
 * (50 ms: the notifier thread, started by the first stored waker) judges
 * the peer dead, which is its close. Blocking calls are made with timeout 0
 * only, so no call of ours waits.
 *
 * Input layout: byte 0 chooses the kind (bit 0: simplex), the capacity
 * (bits 1-3, caps[]) and whether the peer takes its lock (bit 4 clear);
 * then operations of one opcode byte (op % NOPS) and argument bytes; a
 * short input reads zeros past its end.
 *
 * Build: fuzz/build.sh OUTDIR shm_fuzz (clang -fsanitize=fuzzer,address,
 * undefined); with EXTRA_CFLAGS=-DSHM_FUZZ_TRACE each call of ours is
 * traced with the counts. Seeds: fuzz/shm_seeds.sh writes fuzz/shm-corpus/.
 */
#include "input.h"
#include "mempipe.h"
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SHM_FUZZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SHM_FUZZ_ASAN 1
#endif
#ifdef SHM_FUZZ_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(a, n)   ASAN_POISON_MEMORY_REGION((a), (n))
#define UNPOISON(a, n) ASAN_UNPOISON_MEMORY_REGION((a), (n))
#else
#define POISON(a, n)   ((void)(a), (void)(n))
#define UNPOISON(a, n) ((void)(a), (void)(n))
#endif

/* ---- input decoding ---------------------------------------------------- */

static uint64_t u64(struct in *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)u8(in) << (8 * i);
    return v;
}

/* ---- the state of one input --------------------------------------------- */

static const size_t caps[8] = {1, 2, 5, 8, 13, 64, 4095, 4097};

static mempipe *E;         /* our end: side 0 */
static int simplex;        /* our end is a simplex writer: no rx ring */
static size_t cap;         /* every ring's capacity */
static int ti, ri;         /* the ring we write (0) and read (1, or -1) */
static unsigned char *map; /* the fake peer's own mapping */
static size_t maplen;
static struct mempipe__shm_hdr *h; /* = map */
static unsigned char *lmap;        /* the library's mapping (its view) */
static uint64_t off[2];            /* ring i's area, from the header we made */
static int pfd = -1;               /* the peer fd (kept: fallocate) */
static int lockfd = -1;            /* the peer's liveness lock, or -1 */

/* What our end's calls returned: bytes written (committed), bytes read
 * (consumed). Exact: the library's own positions must be these. */
static uint64_t our_w, our_r;
static int shut_wr;   /* we shut down or closed our writing side */
static int shut_rd;   /* we shut our reading side */
static int rsv_open;  /* a reservation is open */
static size_t rsv_n;  /* its total */
static int peek_open; /* a peek is open: 1, maybe (a later peek failed): 2 */
static size_t peek_n; /* the bytes it showed */
static size_t rlowat = 1, wlowat = 1;

/* The fake peer: its positions and what it stored. */
static uint64_t pw, pr;  /* the peer's write position (ring ri), read (ti) */
static unsigned pstate;  /* the state word as last stored by any op */
static int honest;       /* every word of the peer's was one an honest peer
                          * would store */
static int maybe_dead;   /* the peer may have been judged dead (no lock) */
static int own_scrib;    /* the peer wrote one of our position words */
static int reset_seen;   /* the peer's state ever had RESET */
static int rclosed_seen; /* ... RCLOSED or GONE (our writes fail) */
static int wclosed_seen; /* ... WCLOSED or GONE (EOF after the bytes) */
/* The peer's RESET, surely seen by our end: present when a call of ours
 * pulled (the *_seen above may have been stored and taken back between
 * two pulls: only the notifier thread could have seen them). */
static int sure_reset;
/* A word our end surely took as a protocol error (R72: from then on reads
 * and writes fail, no byte moves): an unknown state bit, an rpos past what
 * we wrote, a wpos with the top bit or, with our read position known
 * exactly (nothing discarded), past it + cap; a write-closed peer's wend
 * below its wpos or past our read position + cap. */
static int sure_proto;
/* Every errno the peer's state word carried for our reader (RERR) and for
 * our writer (WERR): a close error must be one of them. */
static uint8_t rerrs[4096 / 8], werrs[4096 / 8];

/* The peer's words as it left them: our end must never change them. */
struct peerwords {
    unsigned state, want;
    int cpu;
    uint64_t wend, rxt, txt, wpos, rpos;
};
static struct peerwords pshadow;

static atomic_uint wakes; /* calls of the counting waker (any thread) */
static unsigned long opno;
static const char *cur_op = "(start)";

#define FAIL(...)                                                              \
    do {                                                                       \
        fprintf(stderr, "shm_fuzz: op %lu %s: ", opno, cur_op);                \
        fprintf(stderr, __VA_ARGS__);                                          \
        fprintf(stderr, "\n");                                                 \
        abort();                                                               \
    } while (0)

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "shm_fuzz: op %lu %s: failed: %s: ", opno, cur_op, \
                    #cond);                                                    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fprintf(stderr, "\n");                                             \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* ---- wakers ---------------------------------------------------------------
 */

static void wake_count(void *ctx)
{
    (void)ctx;
    atomic_fetch_add_explicit(&wakes, 1, memory_order_relaxed);
}

/* A waker that re-enters the library with the any-thread calls (it may run
 * on the notifier thread, while this thread is in a call on the end). */
static void wake_look(void *ctx)
{
    mempipe *e = ctx;
    atomic_fetch_add_explicit(&wakes, 1, memory_order_relaxed);
    if (mempipe_readable(e) > cap || mempipe_writable(e) > cap ||
        mempipe_unread(e) > cap) {
        fprintf(stderr, "shm_fuzz: a snapshot above the capacity\n");
        abort();
    }
    int st = mempipe_shut_state(e);
    if (st < 0 || st > 3) {
        fprintf(stderr, "shm_fuzz: shut_state %d in a waker\n", st);
        abort();
    }
}

static mempipe_waker wk_count = {wake_count, NULL};
static mempipe_waker wk_look = {wake_look, NULL};

static const mempipe_waker *waker_arg(struct in *in)
{
    uint8_t b = u8(in) % 4;
    return b == 0 || b == 3 ? NULL : b == 1 ? &wk_count : &wk_look;
}

/* ---- the mapping ----------------------------------------------------------
 */

static unsigned char *area(int ring)
{
    return map + off[ring];
}

static unsigned char byte_at(int ring, uint64_t pos)
{
    return area(ring)[pos % cap];
}

/* What each data area must hold: every byte the fake peer put there (its
 * writes and scribbles, holes punched), and for the ring we write, every
 * byte our calls wrote. The library writes only the free space of the ring
 * it writes: check_areas(). */
static unsigned char shadow[2][4097];

static void area_put(int ring, uint64_t pos, unsigned char b)
{
    area(ring)[pos % cap] = b;
    shadow[ring][pos % cap] = b;
}

static uint64_t ld64(_Atomic uint64_t *a)
{
    return atomic_load_explicit(a, memory_order_acquire);
}

static unsigned ld32(atomic_uint *a)
{
    return atomic_load_explicit(a, memory_order_acquire);
}

static void peer_words(struct peerwords *w)
{
    struct mempipe__shm_side *s = &h->side[1];
    memset(w, 0, sizeof *w); /* the padding too: compared with memcmp */
    w->state = ld32(&s->state);
    w->want = ld32(&s->want);
    w->cpu = atomic_load_explicit(&s->cpu, memory_order_relaxed);
    w->wend = ld64(&s->wend);
    w->rxt = ld64(&s->rx_target);
    w->txt = ld64(&s->tx_target);
    w->wpos = ri >= 0 ? ld64(&h->pos[ri].wpos) : 0;
    w->rpos = ld64(&h->pos[ti].rpos);
}

/* Our end's position words and closes, to tell whether a peer op wrote
 * them (then the position checks stop for this input). */
struct ownwords {
    uint64_t wpos, rpos, wend;
    unsigned state;
};

static void own_words(struct ownwords *w)
{
    memset(w, 0, sizeof *w);
    w->wpos = ld64(&h->pos[ti].wpos);
    w->rpos = ri >= 0 ? ld64(&h->pos[ri].rpos) : 0;
    w->wend = ld64(&h->side[0].wend);
    w->state = ld32(&h->side[0].state);
}

/*
 * ASan: in the library's view of the mapping, poison every byte that no
 * field or ring uses, and the immutable part of the header, which it reads
 * only at create (docs/shm.md). Granules are 8 bytes: each field starts on
 * one, so the poisoning never covers a field.
 */
static void poison_view(int on)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *v = lmap;
    if (v == NULL)
        return;
    if (!on) {
        UNPOISON(v, maplen);
        return;
    }
    /* 0x000-0x07f: immutable; 0x080 attach and pid1 stay readable. */
    POISON(v, offsetof(struct mempipe__shm_hdr, attach));
    size_t a_end = offsetof(struct mempipe__shm_hdr, pid1) + sizeof(int32_t);
    POISON(v + a_end, offsetof(struct mempipe__shm_hdr, side) - a_end);
    for (int s = 0; s < 2; s++) {
        size_t b = offsetof(struct mempipe__shm_hdr, side) +
                   (size_t)s * sizeof(struct mempipe__shm_side);
        size_t f_end = offsetof(struct mempipe__shm_side, tx_target) + 8;
        size_t bell = offsetof(struct mempipe__shm_side, bell);
        POISON(v + b + f_end, bell - f_end);
        POISON(v + b + bell + 8, sizeof(struct mempipe__shm_side) - bell - 8);
    }
    for (int i = 0; i < 2; i++) {
        size_t b = offsetof(struct mempipe__shm_hdr, pos) +
                   (size_t)i * sizeof(struct mempipe__shm_pos);
        size_t rp = offsetof(struct mempipe__shm_pos, rpos);
        POISON(v + b + 8, rp - 8);
        POISON(v + b + rp + 8, sizeof(struct mempipe__shm_pos) - rp - 8);
    }
    size_t hend = sizeof(struct mempipe__shm_hdr);
    POISON(v + hend, page - hend);
    int nrings = simplex ? 1 : 2;
    for (int i = 0; i < nrings; i++) {
        size_t size = (cap + page - 1) & ~(page - 1);
        POISON(v + off[i] + cap, size - cap);
    }
}

/* ---- checks ------------------------------------------------------------- */

static int errno_in(const uint8_t *set, long e)
{
    return e > 0 && e < 4096 && (set[e / 8] >> (e % 8) & 1);
}

static void note_state(unsigned st)
{
    unsigned re = (st >> MEMPIPE__RERR_SHIFT) & 0xfffu;
    unsigned we = (st >> MEMPIPE__WERR_SHIFT) & 0xfffu;
    /* Not EAGAIN: no close carries it (close_with_error refuses it, for a
     * poll call's -EAGAIN promises a stored waker); a peer's is -EPROTO. */
    if (re != EAGAIN)
        rerrs[re / 8] |= (uint8_t)(1u << (re % 8));
    if (we != EAGAIN)
        werrs[we / 8] |= (uint8_t)(1u << (we % 8));
    if (st & MEMPIPE__RESET)
        reset_seen = 1;
    if (st & (MEMPIPE__RCLOSED | MEMPIPE__SHM_GONE))
        rclosed_seen = 1;
    if (st & (MEMPIPE__WCLOSED | MEMPIPE__SHM_GONE))
        wclosed_seen = 1;
}

/* The honest-peer checks apply: nothing but an honest peer's words, alive
 * (its lock held), and no close or reset of its that changes the counts. */
static int exact(void)
{
    return honest && !maybe_dead;
}

/* A read's error: one of the peer's errnos (RERR), a reset, a protocol
 * error, or -EBUSY/-EINVAL/-EBADF where named by the caller. */
static int read_err_ok(long rc)
{
    return rc == -EPROTO || rc == -ECONNRESET || errno_in(rerrs, -rc);
}

static int write_err_ok(long rc)
{
    return rc == -EPIPE || rc == -EPROTO || errno_in(werrs, -rc);
}

/* -EPROTO while the peer was honest, and not the error it closed with. */
static int false_proto(long rc)
{
    return exact() && rc == -EPROTO && !errno_in(rerrs, EPROTO) &&
           !errno_in(werrs, EPROTO);
}

/* After every call of ours: the words the peer owns are as it left them,
 * ours are what our calls returned. */
static void check_words(void)
{
    struct peerwords now;
    peer_words(&now);
    if (memcmp(&now, &pshadow, sizeof now) != 0)
        FAIL("our end wrote a word of the peer's: state %x->%x want %x->%x "
             "cpu %d->%d wend %llx->%llx rx_target %llx->%llx tx_target "
             "%llx->%llx wpos %llx->%llx rpos %llx->%llx",
             pshadow.state, now.state, pshadow.want, now.want, pshadow.cpu,
             now.cpu, (unsigned long long)pshadow.wend,
             (unsigned long long)now.wend, (unsigned long long)pshadow.rxt,
             (unsigned long long)now.rxt, (unsigned long long)pshadow.txt,
             (unsigned long long)now.txt, (unsigned long long)pshadow.wpos,
             (unsigned long long)now.wpos, (unsigned long long)pshadow.rpos,
             (unsigned long long)now.rpos);
    if (own_scrib)
        return;
    struct ownwords o;
    own_words(&o);
    CHECK(o.wpos == our_w, "published wpos %llu, written %llu",
          (unsigned long long)o.wpos, (unsigned long long)our_w);
    if (ri >= 0)
        CHECK(o.rpos == our_r, "published rpos %llu, read %llu",
              (unsigned long long)o.rpos, (unsigned long long)our_r);
    /* After our shutdown its close is published; maybe by the notifier
     * thread, which was publishing too (push_state: "another thread of
     * ours told it"), a moment after the call returned: wait for it. */
    for (int i = 0; shut_wr && !(o.state & MEMPIPE__WCLOSED) && i < 100000;
         i++) {
        sched_yield();
        own_words(&o);
    }
    if (shut_wr)
        CHECK((o.state & MEMPIPE__WCLOSED) && o.wend == our_w,
              "after our shutdown: state %x wend %llu, written %llu", o.state,
              (unsigned long long)o.wend, (unsigned long long)our_w);
    CHECK(!(o.state & MEMPIPE__SHM_GONE), "GONE while open: state %x", o.state);
}

/* The snapshot calls, after every operation. */
static void check_snapshots(void)
{
    const char *was = cur_op;
    cur_op = "snapshots";
    size_t rd = mempipe_readable(E), wr = mempipe_writable(E);
    size_t un = mempipe_unread(E);
    int st = mempipe_shut_state(E);
    CHECK(rd <= cap && wr <= cap && un <= cap,
          "readable %zu writable %zu "
          "unread %zu cap %zu",
          rd, wr, un, cap);
    CHECK(wr + un <= cap, "writable %zu + unread %zu > cap %zu", wr, un, cap);
    CHECK(st >= 0 && st <= 3, "shut_state %d", st);
    CHECK(mempipe_capacity(E) == cap, "capacity %zu", mempipe_capacity(E));
    if (simplex)
        CHECK(rd == 0 && (st & MEMPIPE_SHUT_READ),
              "simplex writer: "
              "readable %zu shut_state %d",
              rd, st);
    if (exact()) {
        if (ri >= 0 && !shut_rd && !reset_seen)
            CHECK(rd == pw - our_r,
                  "readable %zu, the peer wrote %llu and "
                  "we read %llu",
                  rd, (unsigned long long)pw, (unsigned long long)our_r);
        if (!shut_wr && !rclosed_seen)
            CHECK(wr == cap - (our_w - pr) && un == our_w - pr,
                  "writable %zu unread %zu, we wrote %llu and the peer read "
                  "%llu",
                  wr, un, (unsigned long long)our_w, (unsigned long long)pr);
        if (rclosed_seen)
            CHECK(wr == 0 && un == 0 && (st & MEMPIPE_SHUT_WRITE),
                  "peer read-closed: writable %zu unread %zu shut %d", wr, un,
                  st);
        if (ri >= 0)
            CHECK(!(st & MEMPIPE_SHUT_READ) == !(wclosed_seen || shut_rd),
                  "shut_state %d, peer state %x, shut_rd %d", st, pstate,
                  shut_rd);
        CHECK(!(st & MEMPIPE_SHUT_WRITE) == !(rclosed_seen || shut_wr),
              "shut_state %d, peer state %x, shut_wr %d", st, pstate, shut_wr);
    }
    /* readable() pulled it. (A RESET without a close is not one.) */
    if ((pstate & MEMPIPE__RESET) &&
        (pstate & (MEMPIPE__WCLOSED | MEMPIPE__SHM_GONE)))
        sure_reset = 1;
    uint64_t w = ri >= 0 ? ld64(&h->pos[ri].wpos) : 0;
    uint64_t wend = ld64(&h->side[1].wend);
    int exact_r = !shut_rd && !reset_seen; /* our_r: our read position */
    if ((pstate & ~MEMPIPE__SHM_KNOWN) || ld64(&h->pos[ti].rpos) > our_w ||
        w >= (uint64_t)1 << 63 || (exact_r && w > our_r + cap))
        sure_proto = 1;
    /* The final count of a write-closed peer: never below its wpos. */
    if (ri >= 0 && (pstate & MEMPIPE__WCLOSED) &&
        (wend < w || (exact_r && wend > our_r + cap)))
        sure_proto = 1;
    cur_op = was;
}

/* A read of n bytes into buf from our position: the bytes of the area. */
static void took(const unsigned char *buf, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (buf[k] != byte_at(ri, our_r + k))
            FAIL("byte %zu of %zu read is %u, the ring has %u at %llu", k, n,
                 buf[k], byte_at(ri, our_r + k),
                 (unsigned long long)(our_r + k));
    our_r += n;
}

/* A write of n bytes from src: now in the area at our position. */
static void put(const unsigned char *src, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (src[k] != byte_at(ti, our_w + k))
            FAIL("byte %zu of %zu written is %u, the ring has %u at %llu", k, n,
                 src[k], byte_at(ti, our_w + k),
                 (unsigned long long)(our_w + k));
        shadow[ti][(our_w + k) % cap] = src[k];
    }
    our_w += n;
}

/* After each call of ours: the ring we read is as the peer left it (we
 * never write it), and the bytes we wrote that the peer has not read are
 * still there (while the peer's read position is one it really read to). */
static void check_areas(void)
{
    if (ri >= 0 && memcmp(area(ri), shadow[ri], cap) != 0)
        for (size_t k = 0; k < cap; k++)
            if (area(ri)[k] != shadow[ri][k])
                FAIL("the ring we read changed at offset %zu: %u, the peer "
                     "left %u",
                     k, area(ri)[k], shadow[ri][k]);
    if (!exact() || our_w - pr > cap)
        return;
    /* [pr, our_w): at most two spans of the area. */
    size_t o = (size_t)(pr % cap), n = (size_t)(our_w - pr);
    size_t first = cap - o < n ? cap - o : n;
    if (memcmp(area(ti) + o, shadow[ti] + o, first) == 0 &&
        memcmp(area(ti), shadow[ti], n - first) == 0)
        return;
    for (uint64_t p = pr; p < our_w; p++)
        if (byte_at(ti, p) != shadow[ti][p % cap])
            FAIL("unread byte at %llu changed: %u, we wrote %u",
                 (unsigned long long)p, byte_at(ti, p), shadow[ti][p % cap]);
}

/* A poll call's -EAGAIN with a waker stored it (the header: "-EAGAIN ...
 * if waker is non-NULL it is stored and called once ..."): describe shows
 * it in the role's slot, unless it was called since (w0: the count then). */
static void check_parked(int rd, const mempipe_waker *w, long long rc,
                         unsigned w0)
{
    if (rc != -EAGAIN || w == NULL)
        return;
    char d[200];
    mempipe_describe(E, d, sizeof d);
    const char *dir = strstr(d, rd ? "rx=" : "tx=");
    const char *wk = dir != NULL ? strstr(dir, "wakers=") : NULL;
    int stored = wk != NULL && wk[7 + (rd ? 0 : 1)] == (rd ? 'r' : 'w');
    CHECK(stored || atomic_load(&wakes) != w0,
          "-EAGAIN, and the waker is neither stored nor called: %s", d);
}

/* What an honest, live peer lets a read of len take now; -1 if the read
 * outcome is not predicted. */
static long long read_expect(size_t len)
{
    if (!exact() || ri < 0 || shut_rd || reset_seen || peek_open || len == 0)
        return -1;
    uint64_t avail = pw - our_r;
    return (long long)(avail < len ? avail : len);
}

/* A read-like call's result: rc bytes of buf (len asked), or an error. */
static void read_result(const char *what, long long rc, size_t len,
                        const unsigned char *buf, int timeout)
{
    cur_op = what;
    long long want = read_expect(len);
    if (simplex) {
        CHECK(rc == -EBADF, "on a simplex writer: %lld", rc);
        return;
    }
    if (sure_proto && len > 0 && peek_open != 1)
        CHECK(rc < 0
                  ? (rc != -EAGAIN && rc != -ETIMEDOUT) || errno_in(rerrs, -rc)
                  : rc == 0 && (shut_rd || reset_seen),
              "%lld after a protocol error", rc);
    if (rc > 0) {
        CHECK((size_t)rc <= len, "read %lld of %zu", rc, len);
        CHECK(peek_open != 1, "a copy read %lld during a peek", rc);
        peek_open = 0; /* a maybe-open peek was over */
        if (buf != NULL)
            took(buf, (size_t)rc);
        else
            our_r += (uint64_t)rc;
    } else if (rc == 0) {
        /* EOF (or len 0): every byte read first, unless we shut reading. */
        if (exact() && len > 0 && !shut_rd)
            CHECK(our_r == pw && wclosed_seen,
                  "EOF with %llu of %llu read, "
                  "peer state %x",
                  (unsigned long long)our_r, (unsigned long long)pw, pstate);
    } else if ((rc == -EAGAIN || rc == -ETIMEDOUT) && !errno_in(rerrs, -rc)) {
        CHECK(rc == (timeout ? -ETIMEDOUT : -EAGAIN), "%lld", rc);
    } else if (rc == -EBUSY && !errno_in(rerrs, EBUSY)) {
        /* Ours, not the errno the peer closed with (that one: below). */
        CHECK(peek_open && len > 0, "-EBUSY without a peek open");
    } else {
        CHECK(read_err_ok(rc), "%lld (%s)", rc, mempipe_strerror((int)rc));
        CHECK(!false_proto(rc), "-EPROTO from an honest peer");
    }
    if (want >= 0 && rc != -EBUSY) {
        if (want > 0)
            CHECK(rc == want, "read %lld, the honest peer has %lld for us", rc,
                  want);
        else if (!wclosed_seen)
            CHECK(rc == (timeout ? -ETIMEDOUT : -EAGAIN),
                  "read %lld with nothing there", rc);
    }
}

/* What an honest, live peer lets a write of len take; -1 if unknown. */
static long long write_expect(size_t len)
{
    if (!exact() || shut_wr || rclosed_seen || rsv_open || len == 0)
        return -1;
    uint64_t room = cap - (our_w - pr);
    return (long long)(room < len ? room : len);
}

static void write_result(const char *what, long long rc, size_t len,
                         const unsigned char *src, int timeout)
{
    cur_op = what;
    long long want = write_expect(len);
    if (sure_proto && len > 0 && !rsv_open)
        CHECK(rc < 0 &&
                  ((rc != -EAGAIN && rc != -ETIMEDOUT) || errno_in(werrs, -rc)),
              "%lld after a protocol error", rc);
    if (rc > 0) {
        CHECK((size_t)rc <= len, "wrote %lld of %zu", rc, len);
        CHECK(!rsv_open, "a copy write during a reservation");
        put(src, (size_t)rc);
    } else if (rc == 0) {
        CHECK(len == 0, "0 for a write of %zu", len);
    } else if ((rc == -EAGAIN || rc == -ETIMEDOUT) && !errno_in(werrs, -rc)) {
        CHECK(rc == (timeout ? -ETIMEDOUT : -EAGAIN), "%lld", rc);
    } else if (rc == -EBUSY && !errno_in(werrs, EBUSY)) {
        /* Ours, not the errno the peer closed with (that one: below). */
        CHECK(rsv_open && len > 0, "-EBUSY without a reservation");
    } else {
        CHECK(write_err_ok(rc), "%lld (%s)", rc, mempipe_strerror((int)rc));
        CHECK(!false_proto(rc), "-EPROTO from an honest peer");
        CHECK(shut_wr || rclosed_seen || !exact() || rc == -EPROTO,
              "%lld on a pipe open both ways", rc);
    }
    if (shut_wr && rc != -EBUSY && len > 0)
        CHECK(rc < 0, "wrote %lld after our shutdown", rc);
    if (want > 0)
        CHECK(rc == want, "wrote %lld, the honest peer left room for %lld", rc,
              want);
    else if (want == 0)
        CHECK(rc == (timeout ? -ETIMEDOUT : -EAGAIN),
              "wrote %lld into a full pipe", rc);
}

/* ---- our end's calls ------------------------------------------------------
 */

static unsigned char *xmalloc(size_t n)
{
    unsigned char *b = malloc(n ? n : 1);
    if (b == NULL)
        abort();
    return b;
}

/* A read (rd) or a write of len bytes, polled (with a waker or none) or
 * blocking with timeout 0. */
static void op_copy(struct in *in, int rd)
{
    uint8_t how = u8(in);
    size_t len = len_arg(in);
    const mempipe_waker *w = waker_arg(in);
    unsigned char *b = xmalloc(len);
    uint8_t seed = u8(in);
    for (size_t k = 0; k < len; k++)
        b[k] = (uint8_t)(seed + k * 7);
    int t = how & 1;
    unsigned w0 = atomic_load(&wakes);
    long long rc;
    if (rd) {
        rc = t ? mempipe_read_timeout(E, b, len, 0)
               : mempipe_poll_read(E, b, len, w);
        read_result(t ? "mempipe_read_timeout(0)" : "mempipe_poll_read", rc,
                    len, b, t);
    } else {
        rc = t ? mempipe_write_timeout(E, b, len, 0)
               : mempipe_poll_write(E, b, len, w);
        write_result(t ? "mempipe_write_timeout(0)" : "mempipe_poll_write", rc,
                     len, b, t);
    }
    if (!t)
        check_parked(rd, w, rc, w0);
    free(b);
}

/* poll_readv (rd) or poll_writev over up to 4 slices of the lengths the
 * input gives, each its own allocation. */
static void op_vec(struct in *in, int rd)
{
    struct iovec iov[4];
    int n = u8(in) % 5;
    size_t total = 0;
    uint8_t seed = u8(in);
    for (int i = 0; i < n; i++) {
        size_t l = len_arg(in) % 24;
        iov[i].iov_base = xmalloc(l);
        iov[i].iov_len = l;
        for (size_t k = 0; k < l; k++)
            ((unsigned char *)iov[i].iov_base)[k] = (uint8_t)(seed + 3 * k + i);
        total += l;
    }
    const mempipe_waker *w = waker_arg(in);
    unsigned w0 = atomic_load(&wakes);
    long long rc = rd ? mempipe_poll_readv(E, iov, n, w)
                      : mempipe_poll_writev(E, iov, n, w);
    check_parked(rd, w, rc, w0);
    unsigned char *flat = xmalloc(total), *o = flat;
    for (int i = 0; i < n; i++) {
        memcpy(o, iov[i].iov_base, iov[i].iov_len);
        o += iov[i].iov_len;
        free(iov[i].iov_base);
    }
    if (rd)
        read_result("mempipe_poll_readv", rc, total, flat, 0);
    else
        write_result("mempipe_poll_writev", rc, total, flat, 0);
    free(flat);
}

/* Spans of n bytes from stream position pos of ring i in the library's
 * view: exactly these, never anywhere else. */
static void check_spans(const struct iovec iov[2], int k, int ring,
                        uint64_t pos, size_t n)
{
    unsigned char *base = lmap + off[ring];
    size_t o = (size_t)(pos % cap);
    size_t first = cap - o < n ? cap - o : n;
    CHECK(k == (n > first ? 2 : 1), "%d spans for %zu bytes at offset %zu", k,
          n, o);
    CHECK((unsigned char *)iov[0].iov_base == base + o &&
              iov[0].iov_len == first,
          "span 0 at +%td len %zu, expected +%zu len %zu",
          (unsigned char *)iov[0].iov_base - base, iov[0].iov_len, o, first);
    if (k == 2)
        CHECK((unsigned char *)iov[1].iov_base == base &&
                  iov[1].iov_len == n - first,
              "span 1 at +%td len %zu, expected +0 len %zu",
              (unsigned char *)iov[1].iov_base - base, iov[1].iov_len,
              n - first);
}

static void op_peek(struct in *in)
{
    const mempipe_waker *w = waker_arg(in);
    struct iovec iov[2];
    memset(iov, 0, sizeof iov);
    unsigned w0 = atomic_load(&wakes);
    int rc = mempipe_read_peek(E, iov, w);
    cur_op = "mempipe_read_peek";
    check_parked(1, w, rc, w0);
    if (simplex) {
        CHECK(rc == -EBADF, "%d", rc);
        return;
    }
    if (rc == 1 || rc == 2) {
        size_t n = iov[0].iov_len + (rc == 2 ? iov[1].iov_len : 0);
        CHECK(n > 0 && n <= cap, "peek shows %zu", n);
        check_spans(iov, rc, ri, our_r, n);
        CHECK(peek_open != 1 || n >= peek_n, "a peek shrank from %zu to %zu",
              peek_n, n);
        if (exact() && !shut_rd && !reset_seen)
            CHECK(n == pw - our_r, "peek shows %zu, the peer has %llu", n,
                  (unsigned long long)(pw - our_r));
        peek_open = 1;
        peek_n = n;
        return;
    }
    if (peek_open)
        peek_open = 2; /* its bytes may stay shown until a consume */
    if (rc == 0 || rc == -EAGAIN)
        return;
    CHECK(read_err_ok(rc), "%d (%s)", rc, mempipe_strerror(rc));
    CHECK(!false_proto(rc), "-EPROTO from an honest peer");
}

static void op_consume(struct in *in)
{
    uint8_t how = u8(in);
    size_t n = len_arg(in), ex = n + u8(in) % 8;
    if (how & 2 && peek_open) {
        n = n % (peek_n + 1);
        ex = ex > peek_n ? peek_n : ex;
    }
    int rc;
    if (how & 1) {
        rc = mempipe_read_consume_examined(E, n, ex);
        cur_op = "mempipe_read_consume_examined";
    } else {
        ex = n;
        rc = mempipe_read_consume(E, n);
        cur_op = "mempipe_read_consume";
    }
    if (simplex) {
        CHECK(rc == -EBADF, "%d", rc);
        return;
    }
    int good = peek_open && n <= ex && ex <= peek_n;
    if (good && peek_open == 2 && rc == -EINVAL) {
        peek_open = 0; /* the failed peek had ended it */
        return;
    }
    if (!good) {
        CHECK(rc == -EINVAL, "consume(%zu, %zu) of %zu shown (open %d): %d", n,
              ex, peek_n, peek_open, rc);
        return;
    }
    CHECK(rc == 0, "consume(%zu, %zu) of %zu shown: %d", n, ex, peek_n, rc);
    peek_open = 0;
    our_r += n;
}

static void op_reserve(struct in *in)
{
    size_t want = len_arg(in);
    const mempipe_waker *w = waker_arg(in);
    uint8_t seed = u8(in);
    struct iovec iov[2];
    memset(iov, 0, sizeof iov);
    unsigned w0 = atomic_load(&wakes);
    int rc = mempipe_write_reserve(E, want, iov, w);
    cur_op = "mempipe_write_reserve";
    check_parked(0, w, rc, w0);
    if (want == 0 || rsv_open) {
        CHECK(rc == -EINVAL, "reserve(%zu) with one open %d: %d", want,
              rsv_open, rc);
        return;
    }
    long long expect = write_expect(want);
    if (rc == 1 || rc == 2) {
        size_t n = iov[0].iov_len + (rc == 2 ? iov[1].iov_len : 0);
        CHECK(n > 0 && n <= want && n <= cap, "reserved %zu of %zu", n, want);
        check_spans(iov, rc, ti, our_w, n);
        if (expect >= 0)
            CHECK((long long)n == expect, "reserved %zu, room for %lld", n,
                  expect);
        rsv_open = 1;
        rsv_n = n;
        /* Bytes in the spans (the library's view): what a commit takes. */
        for (int j = 0; j < rc; j++)
            memset(iov[j].iov_base, seed + j, iov[j].iov_len);
        return;
    }
    if (rc == -EAGAIN) {
        CHECK(expect <= 0, "-EAGAIN with room for %lld", expect);
        return;
    }
    CHECK(expect < 0, "reserve %d, room for %lld", rc, expect);
    CHECK(write_err_ok(rc), "%d (%s)", rc, mempipe_strerror(rc));
    CHECK(!false_proto(rc), "-EPROTO from an honest peer");
}

static void op_commit(struct in *in)
{
    uint8_t how = u8(in);
    size_t n = len_arg(in);
    if (how & 1 && rsv_open)
        n %= rsv_n + 1;
    int rc = mempipe_write_commit(E, n);
    cur_op = "mempipe_write_commit";
    if (!rsv_open || n > rsv_n) {
        CHECK(rc == -EINVAL, "commit(%zu) of %zu (open %d): %d", n, rsv_n,
              rsv_open, rc);
        return;
    }
    rsv_open = 0;
    if (rc == 0) { /* in place: the reserve's spans were checked */
        for (size_t k = 0; k < n; k++)
            shadow[ti][(our_w + k) % cap] = byte_at(ti, our_w + k);
        our_w += n;
        return;
    }
    CHECK(write_err_ok(rc), "%d (%s)", rc, mempipe_strerror(rc));
    CHECK(!false_proto(rc), "-EPROTO from an honest peer");
}

static void op_shutdown(struct in *in)
{
    uint8_t how = u8(in);
    int rc;
    if (how & 1) {
        rc = mempipe_shutdown_read(E);
        cur_op = "mempipe_shutdown_read";
        if (simplex) {
            CHECK(rc == -EBADF, "%d", rc);
            return;
        }
        CHECK(rc == 0, "%d", rc);
        shut_rd = 1;
        return;
    }
    if (how & 2) {
        rc = mempipe_poll_shutdown(E, waker_arg(in));
        cur_op = "mempipe_poll_shutdown";
    } else {
        rc = mempipe_shutdown(E);
        cur_op = "mempipe_shutdown";
    }
    CHECK(rc == 0, "%d", rc);
    shut_wr = 1;
}

static void op_lowat(struct in *in)
{
    uint8_t how = u8(in);
    size_t n = how & 2 ? u64(in) : len_arg(in);
    int rc;
    if (how & 1) {
        rc = mempipe_set_write_lowat(E, n);
        cur_op = "mempipe_set_write_lowat";
        if (n == 0 || n > cap)
            CHECK(rc == -EINVAL, "%zu: %d", n, rc);
        else
            CHECK(rc == 0, "%zu: %d", n, rc);
        if (rc == 0)
            wlowat = n;
        return;
    }
    rc = mempipe_set_read_lowat(E, n);
    cur_op = "mempipe_set_read_lowat";
    if (simplex)
        CHECK(rc == -EBADF || (rc == -EINVAL && n == 0), "%zu: %d", n, rc);
    else if (n == 0 || n > cap)
        CHECK(rc == -EINVAL, "%zu: %d", n, rc);
    else
        CHECK(rc == 0, "%zu: %d", n, rc);
    if (rc == 0)
        rlowat = n;
}

/* The waits with timeout 0, and the readiness calls. */
static void op_ready(struct in *in)
{
    uint8_t how = u8(in) % 6;
    const mempipe_waker *w = waker_arg(in);
    unsigned w0 = atomic_load(&wakes);
    int rc;
    switch (how) {
    case 0:
    case 1:
        rc = how ? mempipe_wait_readable(E, 0) : mempipe_poll_readable(E, w);
        cur_op = how ? "mempipe_wait_readable(0)" : "mempipe_poll_readable";
        if (!how)
            check_parked(1, w, rc, w0);
        if (simplex) {
            CHECK(rc == -EBADF, "%d", rc);
            return;
        }
        CHECK(rc == 1 || rc == (how ? -ETIMEDOUT : -EAGAIN), "%d", rc);
        if (exact() && !reset_seen && !shut_rd && !wclosed_seen && !peek_open)
            CHECK((rc == 1) == (pw - our_r >= rlowat),
                  "%d with %llu buffered, mark %zu", rc,
                  (unsigned long long)(pw - our_r), rlowat);
        if (shut_rd || sure_reset)
            CHECK(rc == 1, "%d after a shutdown or reset", rc);
        return;
    case 2:
    case 3:
        rc = how == 3 ? mempipe_wait_writable(E, 0)
                      : mempipe_poll_writable(E, w);
        if (how == 2)
            check_parked(0, w, rc, w0);
        cur_op =
            how == 3 ? "mempipe_wait_writable(0)" : "mempipe_poll_writable";
        CHECK(rc == 1 || rc == (how == 3 ? -ETIMEDOUT : -EAGAIN), "%d", rc);
        if (exact() && !shut_wr && !rclosed_seen)
            CHECK((rc == 1) == (cap - (our_w - pr) >= wlowat),
                  "%d with %llu free, mark %zu", rc,
                  (unsigned long long)(cap - (our_w - pr)), wlowat);
        if (shut_wr)
            CHECK(rc == 1, "%d after our shutdown", rc);
        return;
    case 4:
        rc = mempipe_drain(E, 0);
        cur_op = "mempipe_drain(0)";
        if (rc == 0 || rc == -ETIMEDOUT) {
            if (exact() && !rclosed_seen)
                CHECK((rc == 0) == (pr == our_w), "%d with %llu of %llu read",
                      rc, (unsigned long long)pr, (unsigned long long)our_w);
            return;
        }
        CHECK(write_err_ok(rc) || rc == -ECONNRESET, "%d (%s)", rc,
              mempipe_strerror(rc));
        CHECK(!false_proto(rc), "-EPROTO from an honest peer");
        return;
    default:
        rc = mempipe_poll_flush(E, w);
        cur_op = "mempipe_poll_flush";
        CHECK(rc == 0, "%d", rc);
        return;
    }
}

static void op_misc(struct in *in)
{
    uint8_t how = u8(in) % 4;
    if (how == 0) {
        char buf[160];
        size_t len = u8(in) % sizeof buf;
        memset(buf, 'x', sizeof buf);
        int rc = mempipe_describe(E, len ? buf : NULL, len);
        cur_op = "mempipe_describe";
        CHECK(rc > 0, "%d", rc);
        if (len > 0) {
            CHECK(memchr(buf, 0, len) != NULL, "not NUL-terminated");
            CHECK(strlen(buf) == ((size_t)rc < len ? (size_t)rc : len - 1),
                  "length %zu, returned %d", strlen(buf), rc);
            CHECK(rc >= (int)len || strstr(buf, " shm side=0 peer=") != NULL,
                  "%s", buf);
        }
        return;
    }
    if (how == 1) {
        int rc = mempipe_set_rst_on_unread(E, u8(in) & 1);
        cur_op = "mempipe_set_rst_on_unread";
        CHECK(rc == (simplex ? -EBADF : 0), "%d", rc);
        return;
    }
    /* The pollable fds: made once, polled level-triggered. */
    int fd = how == 2 ? (u8(in) & 1 ? mempipe_writable_fd(E)
                                    : mempipe_readable_fd(E))
                      : mempipe_fd(E);
    cur_op = how == 2 ? "mempipe_readable_fd/_writable_fd" : "mempipe_fd";
    CHECK(fd >= 0 || fd == -EBADF, "%d (%s)", fd, mempipe_strerror(fd));
    if (fd == -EBADF)
        CHECK(simplex && how == 2, "-EBADF");
}

/* ---- the fake peer --------------------------------------------------------
 */

/* A position or count word: a base and a small signed offset from it. */
static uint64_t pos_arg(struct in *in, uint64_t mine, uint64_t theirs)
{
    uint8_t b = u8(in);
    int8_t d = (int8_t)u8(in);
    uint64_t base;
    switch (b % 8) {
    case 0:
        base = 0;
        break;
    case 1:
        base = mine;
        break;
    case 2:
        base = theirs;
        break;
    case 3:
        base = theirs + cap;
        break;
    case 4:
        base = UINT64_MAX;
        break;
    case 5:
        base = (uint64_t)1 << 63;
        break;
    case 6:
        base = MEMPIPE_SHM_MAX;
        break;
    default:
        return u64(in);
    }
    return base + (uint64_t)(int64_t)d;
}

static const int good_errs[] = {0,      EIO,  ECONNRESET, EPIPE,
                                EPROTO, 4095, ETIMEDOUT,  ENOSPC};
/*
 * S1 (docs/RELIABILITY.md): a peer state word whose errno for our reader or
 * writer is EAGAIN makes our poll calls return -EAGAIN without storing the
 * waker, and a blocking call with a timeout spin at 100% CPU past its
 * deadline, for as long as the peer lives. src/shm.c now takes that
 * errno as a protocol error (8b7ecb6), so the fake peer writes it; build
 * with EXTRA_CFLAGS=-DSHM_FUZZ_S1=0 to write EINTR in its place (the
 * minimized input is fuzz/shm-crashes/s1-eagain-close-errno, which now
 * passes).
 */
#ifndef SHM_FUZZ_S1
#define SHM_FUZZ_S1 1 /* fixed: 8b7ecb6 */
#endif
#define S1_ERR (SHM_FUZZ_S1 ? EAGAIN : EINTR)
static const int any_errs[] = {S1_ERR, 0xfff, 0, 1};

/* S1 off: the errno fields of a state word the peer is about to store. */
static uint64_t s1_filter(uint64_t v)
{
    for (int sh = MEMPIPE__RERR_SHIFT;
         !SHM_FUZZ_S1 && sh <= MEMPIPE__WERR_SHIFT;
         sh += MEMPIPE__WERR_SHIFT - MEMPIPE__RERR_SHIFT)
        if (((v >> sh) & 0xfffu) == EAGAIN)
            v ^= (uint64_t)(EAGAIN ^ EINTR) << sh;
    return v;
}

/* Rings side 0's bell as the peer's push_state and wake_peer do. */
static void ring_ours(unsigned bits)
{
    atomic_fetch_add_explicit(&h->side[0].bell, 1, memory_order_release);
    syscall(SYS_futex, (void *)&h->side[0].bell, FUTEX_WAKE_BITSET, INT_MAX,
            NULL, NULL, bits);
}

static void store_state(unsigned st)
{
    atomic_store_explicit(&h->side[1].state, st, memory_order_release);
    pstate = st;
    note_state(st);
}

/* The peer moved a position to pos: it wakes our side's sleepers whose
 * target that meets, as its wake_peer() would. */
static void peer_moved(_Atomic uint64_t *word, uint64_t pos, unsigned wants,
                       _Atomic uint64_t *target, unsigned bit)
{
    atomic_store_explicit(word, pos, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    if ((ld32(&h->side[0].want) & wants) && ld64(target) <= pos)
        ring_ours(bit);
}

/* The honest peer's write of n bytes into the ring it writes, as room
 * allows from the read position our end published (wr), or its read of n
 * of our bytes (check_areas() checks them while they are unread). */
static void peer_io(struct in *in, int wr)
{
    size_t n = len_arg(in);
    uint8_t seed = u8(in);
    unsigned gone = wr ? MEMPIPE__WCLOSED : MEMPIPE__RCLOSED;
    if ((wr && ri < 0) || (pstate & (gone | MEMPIPE__SHM_GONE)))
        return;
    uint64_t *pos = wr ? &pw : &pr;
    uint64_t most = wr ? cap - (pw - our_r) : our_w - pr;
    if (n > most)
        n = (size_t)most;
    for (size_t k = 0; wr && k < n; k++)
        area_put(ri, pw + k, (uint8_t)(seed ^ (pw + k)));
    *pos += n;
    struct mempipe__shm_side *us = &h->side[0];
    if (wr)
        peer_moved(&h->pos[ri].wpos, pw,
                   MEMPIPE__SHM_BLK_DATA | MEMPIPE__SHM_NOTE_DATA,
                   &us->rx_target, MEMPIPE__SHM_B_DATA);
    else
        peer_moved(&h->pos[ti].rpos, pr,
                   MEMPIPE__SHM_BLK_SPACE | MEMPIPE__SHM_NOTE_SPACE,
                   &us->tx_target, MEMPIPE__SHM_B_SPACE);
}

/* The honest peer's closes: shutdown, shutdown_read, close (with an
 * error), abort. */
static void peer_close(struct in *in)
{
    uint8_t how = u8(in);
    int err = good_errs[u8(in) % (sizeof good_errs / sizeof good_errs[0])];
    unsigned st = pstate;
    switch (how % 4) {
    case 0: /* shutdown */
        st |= MEMPIPE__WCLOSED;
        break;
    case 1: /* shutdown_read (its writer's error: none) */
        st |= MEMPIPE__RCLOSED;
        break;
    case 2: /* close_with_error(err), or close */
        st |= MEMPIPE__WCLOSED | MEMPIPE__RCLOSED | MEMPIPE__SHM_GONE;
        if (!(pstate & MEMPIPE__WCLOSED))
            st |= (unsigned)err << MEMPIPE__RERR_SHIFT;
        if (!(pstate & MEMPIPE__RCLOSED))
            st |= (unsigned)err << MEMPIPE__WERR_SHIFT;
        break;
    default: /* abort */
        st = (st & ~(0xfffu << MEMPIPE__RERR_SHIFT)) | MEMPIPE__WCLOSED |
             MEMPIPE__RESET | MEMPIPE__SHM_GONE | MEMPIPE__RCLOSED |
             MEMPIPE__RERR(-ECONNRESET);
        if (!(pstate & MEMPIPE__RCLOSED))
            st |= MEMPIPE__WERR(-ECONNRESET);
        break;
    }
    if (simplex)
        st &= ~(unsigned)(MEMPIPE__WCLOSED | MEMPIPE__RESET |
                          (0xfffu << MEMPIPE__RERR_SHIFT));
    if ((st & MEMPIPE__WCLOSED) && !(pstate & MEMPIPE__WCLOSED))
        atomic_store_explicit(&h->side[1].wend, pw, memory_order_release);
    /* A pipe with the peer's abort discards; and once it's reset, the
     * honest checks that count bytes stop (reset_seen). */
    if (st != pstate) {
        store_state(st);
        atomic_thread_fence(memory_order_seq_cst);
        ring_ours(MEMPIPE__SHM_B_ALL);
    }
}

/* The honest peer's wait: its want bits, targets and cpu. */
static void peer_wait(struct in *in)
{
    uint8_t how = u8(in);
    struct mempipe__shm_side *s = &h->side[1];
    atomic_store_explicit(&s->rx_target, pos_arg(in, pr, our_w),
                          memory_order_relaxed);
    atomic_store_explicit(&s->tx_target, pos_arg(in, pw, our_r),
                          memory_order_relaxed);
    atomic_store_explicit(&s->cpu, (int)(int8_t)u8(in), memory_order_relaxed);
    atomic_store_explicit(&s->want, how & 0xf, memory_order_release);
}

/* A hostile peer's words, each its own way. */
static void peer_scribble(struct in *in)
{
    uint8_t how = u8(in);
    struct mempipe__shm_side *s = &h->side[1];
    switch (how % 9) {
    case 0: { /* the state word: known bits, errnos, unknown bits */
        uint8_t b = u8(in);
        unsigned st = b & 0xf;
        unsigned re =
            (unsigned)(b & 0x10 ? any_errs[u8(in) % 4] : good_errs[u8(in) % 8]);
        unsigned we =
            (unsigned)(b & 0x20 ? any_errs[u8(in) % 4] : good_errs[u8(in) % 8]);
        st |= re << MEMPIPE__RERR_SHIFT | we << MEMPIPE__WERR_SHIFT;
        if (b & 0x40)
            st |= 0x10u << (u8(in) % 4); /* an unknown bit: -EPROTO */
        if (b & 0x80)
            st |= pstate; /* only adds (or clears nothing) */
        store_state(st);
        break;
    }
    case 1:
        atomic_store_explicit(&s->wend, pos_arg(in, pw, our_r),
                              memory_order_release);
        break;
    case 2:
        if (ri >= 0) {
            pw = pos_arg(in, pw, our_r);
            atomic_store_explicit(&h->pos[ri].wpos, pw, memory_order_release);
        }
        break;
    case 3:
        pr = pos_arg(in, pr, our_w);
        atomic_store_explicit(&h->pos[ti].rpos, pr, memory_order_release);
        break;
    case 4: /* any 8-byte word of the header page (ours too) */
    {
        size_t at = (size_t)(u16(in) % 4096) & ~(size_t)7;
        uint64_t v = pos_arg(in, pw, our_r);
        if (at == offsetof(struct mempipe__shm_hdr, side[1].state))
            v = s1_filter(v); /* its low half is the state */
        memcpy(map + at, &v, sizeof v);
        break;
    }
    case 5: /* the attach word */
        atomic_store_explicit(&h->attach, u8(in) % 4, memory_order_release);
        break;
    case 6: { /* bytes of either data area, in place or punched out */
        uint8_t b = u8(in);
        int ring = simplex ? 0 : b & 1;
        size_t at = u16(in) % cap, n = len_arg(in);
        if (b & 2) {
            size_t page = (size_t)sysconf(_SC_PAGESIZE);
            size_t first = at & ~(page - 1);
            if (fallocate(pfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                          (off_t)(off[ring] + first), (off_t)page) == 0) {
                size_t end = first + page < cap ? first + page : cap;
                memset(shadow[ring] + first, 0, end - first);
            }
        } else {
            for (size_t k = 0; k < n; k++)
                area_put(ring, at + k, (uint8_t)(b + k));
        }
        break;
    }
    case 7: /* our bell, rung at will, or the peer's own */
        if (u8(in) & 1)
            ring_ours(MEMPIPE__SHM_B_ALL);
        else
            atomic_fetch_add_explicit(&s->bell, 1, memory_order_release);
        break;
    default: /* die: the liveness lock goes */
        if (lockfd >= 0) {
            close(lockfd);
            lockfd = -1;
            maybe_dead = 1;
        }
        break;
    }
}

/* ---- the input ------------------------------------------------------------
 */

#define NOPS 16

static void run_op(uint8_t op, struct in *in)
{
    struct peerwords before_p, after_p;
    struct ownwords before_o, after_o;
    int peer = op % NOPS >= 11;
    if (peer) {
        peer_words(&before_p);
        own_words(&before_o);
    }
    switch (op % NOPS) {
    case 0:
    case 2:
        op_copy(in, op % NOPS == 0);
        break;
    case 1:
    case 3:
        op_vec(in, op % NOPS == 1);
        break;
    case 4:
        op_peek(in);
        break;
    case 5:
        op_consume(in);
        break;
    case 6:
        op_reserve(in);
        break;
    case 7:
        op_commit(in);
        break;
    case 8:
        op_shutdown(in);
        break;
    case 9:
        if (op & 16)
            op_lowat(in);
        else
            op_misc(in);
        break;
    case 10:
        op_ready(in);
        break;
    case 11:
    case 12:
        cur_op = "peer write/read";
        peer_io(in, op % NOPS == 11 || op & 16);
        break;
    case 13:
        cur_op = "peer close/wait";
        if (op & 16)
            peer_wait(in);
        else
            peer_close(in);
        break;
    default:
        cur_op = "peer scribble";
        peer_scribble(in);
        break;
    }
    if (peer) {
        peer_words(&after_p);
        own_words(&after_o);
        if (op % NOPS >= 14 &&
            (after_p.state != before_p.state || after_p.wend != before_p.wend ||
             after_p.wpos != before_p.wpos || after_p.rpos != before_p.rpos))
            honest = 0; /* a hostile word, whatever its value */
        if (memcmp(&after_o, &before_o, sizeof after_o) != 0)
            own_scrib = 1;
        note_state(after_p.state);
        pstate = after_p.state;
        pshadow = after_p;
        return;
    }
    check_words();
    check_areas();
    check_snapshots();
#ifdef SHM_FUZZ_TRACE
    fprintf(stderr,
            "op %lu %s: wrote %llu read %llu, peer wrote %llu read "
            "%llu state %x honest %d\n",
            opno, cur_op, (unsigned long long)our_w, (unsigned long long)our_r,
            (unsigned long long)pw, (unsigned long long)pr, pstate, honest);
#endif
}

static int fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void reset_state(void)
{
    E = NULL;
    map = lmap = NULL;
    h = NULL;
    pfd = lockfd = -1;
    our_w = our_r = pw = pr = 0;
    shut_wr = shut_rd = rsv_open = peek_open = 0;
    rsv_n = peek_n = 0;
    rlowat = wlowat = 1;
    pstate = 0;
    honest = 1;
    maybe_dead = own_scrib = reset_seen = sure_reset = sure_proto =
        rclosed_seen = wclosed_seen = 0;
    memset(rerrs, 0, sizeof rerrs);
    memset(werrs, 0, sizeof werrs);
    memset(shadow, 0, sizeof shadow); /* a fresh memfd reads zeros */
    rerrs[0] = werrs[0] = 1; /* errno 0: no error, never returned as one */
    opno = 0;
    cur_op = "(start)";
}

/* The peer's liveness token, as mempipe_shm_attach takes it. */
static int take_lock(void)
{
    char path[40];
    snprintf(path, sizeof path, "/proc/self/fd/%d", pfd);
    int lf = open(path, O_RDWR | O_CLOEXEC);
    if (lf < 0)
        return -1;
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 1;
    fl.l_len = 1;
    if (fcntl(lf, F_OFD_SETLK, &fl) != 0) {
        close(lf);
        return -1;
    }
    return lf;
}

static void close_end(struct in *in)
{
    uint8_t how = u8(in) % 4;
    int err = -good_errs[u8(in) % 8];
    poison_view(0); /* the close unmaps it */
    cur_op = "close";
    unsigned before = ld32(&h->side[0].state);
    int rc = 0;
    if (how == 1) {
        rc = mempipe_close_with_error(E, err);
        if (err == 0) {
            CHECK(rc == -EINVAL, "close_with_error(0): %d", rc);
            mempipe_close(E);
        } else {
            CHECK(rc == 0, "close_with_error(%d): %d", err, rc);
        }
    } else if (how == 2) {
        mempipe_abort(E);
    } else {
        mempipe_close(E);
    }
    E = NULL;
    unsigned st = ld32(&h->side[0].state);
    CHECK(st & MEMPIPE__SHM_GONE, "state %x after the close", st);
    CHECK(st & MEMPIPE__WCLOSED, "state %x after the close", st);
    if (!simplex)
        CHECK(st & MEMPIPE__RCLOSED, "state %x after the close", st);
    CHECK((st & before) == before, "the close cleared bits: %x -> %x", before,
          st);
    if (!own_scrib && !(before & MEMPIPE__WCLOSED))
        CHECK(ld64(&h->side[0].wend) == our_w, "wend %llu, written %llu",
              (unsigned long long)ld64(&h->side[0].wend),
              (unsigned long long)our_w);
    if (how == 2)
        CHECK(st & MEMPIPE__RESET, "state %x after the abort", st);
    if (how == 1 && rc == 0 && !own_scrib && !(before & MEMPIPE__WCLOSED) &&
        !(st & MEMPIPE__RESET))
        CHECK(MEMPIPE__RERR_OF(st) == err, "state %x after close(%d)", st, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct in in = {data, size};
    reset_state();
    int open_before[64];
    for (int fd = 0; fd < 64; fd++)
        open_before[fd] = fd_open(fd);

    uint8_t mode = u8(&in);
    simplex = mode & 1;
    cap = caps[(mode >> 1) & 7];
    ti = 0;
    ri = simplex ? -1 : 1;
    int rc = simplex ? mempipe_shm_simplex(cap, &E, &pfd)
                     : mempipe_shm_duplex(cap, &E, &pfd);
    if (rc != 0) {
        fprintf(stderr, "shm_fuzz: create: %s\n", mempipe_strerror(rc));
        abort();
    }
    struct stat st;
    if (fstat(pfd, &st) != 0)
        abort();
    maplen = (size_t)st.st_size;
    map = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, pfd, 0);
    if (map == MAP_FAILED)
        abort();
    h = (struct mempipe__shm_hdr *)map;
    wk_look.ctx = E;
    /* The layout as the creator wrote it: the peer's own copy. */
    off[0] = h->off[0];
    off[1] = simplex ? 0 : h->off[1];
    if (h->cap[0] != cap)
        abort();
    if (!(mode & 16))
        lockfd = take_lock();
    maybe_dead = lockfd < 0;
    /* Attached: the CAS is ours to do, with nobody to race. */
    atomic_store_explicit(&h->attach, 1, memory_order_release);
    h->pid1 = (int32_t)getpid();
    atomic_store_explicit(&h->side[1].state, 0, memory_order_release);

    /* The library's view: a reservation's span is its first data byte. */
    struct iovec iov[2];
    if (mempipe_write_reserve(E, 1, iov, NULL) != 1 ||
        mempipe_write_commit(E, 0) != 0)
        abort();
    lmap = (unsigned char *)iov[0].iov_base - off[0];
    peer_words(&pshadow);
    poison_view(1);

    for (; in.n > 1 && opno < 2000; opno++)
        run_op(u8(&in), &in);

    close_end(&in);
    munmap(map, maplen);
    close(pfd);
    if (lockfd >= 0)
        close(lockfd);
    cur_op = "after the close";
    for (int fd = 0; fd < 64; fd++)
        CHECK(fd_open(fd) == open_before[fd], "fd %d %s", fd,
              open_before[fd] ? "closed" : "left open");
    return 0;
}
