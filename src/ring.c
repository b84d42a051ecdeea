/* SPDX-License-Identifier: MIT */
/*
 * The SPSC segment ring. See ring.h for the shape.
 *
 * Memory ordering, in one place:
 *  - The producer fills segment bytes and links new segments with plain
 *    stores, then publishes them with a seq_cst (so also release)
 *    compare-and-swap of wpos. The consumer
 *    loads wpos with acquire before touching any byte or `next` link below
 *    it, so it sees them complete.
 *  - The consumer stores rpos with release after it is done with the bytes
 *    below it; the producer loads it with acquire. The producer never writes
 *    into bytes the consumer may still read: a segment is written once,
 *    front to back, and only reused after the consumer gave it back.
 *  - A drained segment travels consumer -> producer through `spare` with an
 *    acq_rel exchange, which orders the consumer's last reads of it before
 *    the producer's first writes into it.
 */
#include "ring.h"

#include "alloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define MIN_SEG 256         /* data bytes of the first segment */
#define MAX_SEG (64 * 1024) /* data bytes of the largest segment */

/*
 * Every ring's head and tail before its first write: it holds nothing
 * (base 0, cap 0), so both sides find it exhausted and move on, the
 * producer linking its first segment as `first` (the stub itself is never
 * written: one for all rings, which saves each ring 16 bytes).
 */
struct mempipe__seg mempipe__ring_stub = {NULL, 0, 0};
#define STUB (&mempipe__ring_stub)

/* The largest segment: min(capacity, 64 KiB). */
static size_t max_seg(const struct mempipe__ring *r)
{
    return r->cap < MAX_SEG ? r->cap : MAX_SEG;
}

void mempipe__ring_init(struct mempipe__ring *r, size_t capacity)
{
    r->cap = capacity;
    atomic_init(&r->wpos, 0);
    r->wnext = 0;
    atomic_init(&r->rpos, 0);
    atomic_init(&r->cut, SIZE_MAX);
    atomic_init(&r->spare, NULL);
    atomic_init(&r->rexam, 0);
    atomic_init(&r->rlowat, 1);
    atomic_init(&r->wlowat, 1);
    atomic_init(&r->rwant, 0);
    atomic_init(&r->wneed, 0);
    r->rlen = UINT32_MAX;
    r->rpeek = 0;
    r->seg_size = max_seg(r) < MIN_SEG ? max_seg(r) : MIN_SEG;
    r->first = NULL;
    r->tail = STUB;
    r->head = STUB;
    r->rpos_seen = 0;
    r->wpos_seen = 0;
    r->rsv = 0;
    r->rsv_seg = NULL;
    r->peeked = 0;
    r->wadj = r->radj = (uintptr_t)MEMPIPE__SEG_DATA(STUB);
    r->rend = 0;
    r->wlimit = r->rlimit = 0; /* the stub holds nothing: general path */
}

/* Producer: links n after t (plain stores, published by the next wpos). */
static void seg_link(struct mempipe__ring *r, struct mempipe__seg *t,
                     struct mempipe__seg *n)
{
    if (t == STUB)
        r->first = n;
    else
        t->next = n;
}

/* Consumer: the segment after h, whose bytes are published. */
static struct mempipe__seg *seg_next(const struct mempipe__ring *r,
                                     const struct mempipe__seg *h)
{
    return h == STUB ? r->first : h->next;
}

/*
 * Producer: recomputes wlimit = min(end of tail, rpos_seen + cap) after the
 * tail or rpos_seen changed. The sum saturates (capacity may be SIZE_MAX).
 */
static void set_wlimit(struct mempipe__ring *r)
{
    size_t seg_end = r->tail->base + r->tail->cap;
    size_t room_end =
        r->cap > SIZE_MAX - r->rpos_seen ? SIZE_MAX : r->rpos_seen + r->cap;
    r->wlimit = seg_end < room_end ? seg_end : room_end;
}

size_t mempipe__ring_room(struct mempipe__ring *r, size_t want)
{
    if (r->tail == NULL) { /* flat: the view of rpos is shm.c's to raise */
        size_t rd = atomic_load_explicit(&r->rpos, memory_order_acquire);
        size_t used = r->wnext - rd;
        (void)want;
        return used >= r->cap ? 0 : r->cap - used;
    }
    size_t w = r->wnext;
    size_t room = r->cap - (w - r->rpos_seen);
    if (room < want) {
        /* Acquire: pairs with the consumer's release store of rpos. */
        r->rpos_seen = atomic_load_explicit(&r->rpos, memory_order_acquire);
        room = r->cap - (w - r->rpos_seen);
        set_wlimit(r);
    }
    return room;
}

static void seg_free(struct mempipe__seg *s)
{
    mempipe__free(s, sizeof *s + s->cap);
}

void mempipe__ring_free(struct mempipe__ring *r)
{
    if (r->tail == NULL)
        return; /* flat: the area is the mapping's (shm.c) */
    struct mempipe__seg *sp =
        atomic_exchange_explicit(&r->spare, NULL, memory_order_acquire);
    struct mempipe__seg *s = r->head;
    while (s != NULL) {
        struct mempipe__seg *next = seg_next(r, s);
        /* The spare is normally not in the chain; but in a child of fork()
         * the copy may have been taken between the consumer's seg_put() of
         * its head and its move past it (R34): free that one once. */
        if (s == sp)
            sp = NULL;
        if (s != STUB)
            seg_free(s);
        s = next;
    }
    if (sp != NULL)
        seg_free(sp);
    if (r->rsv_seg != NULL) /* reserved and never committed */
        seg_free(r->rsv_seg);
    mempipe__ring_init(r, r->cap);
}

/*
 * Producer: a segment for a write that still has `want` bytes to place.
 * Segments grow by doubling towards max_seg as writes ask for more, and never
 * shrink, so the recycled spare normally fits.
 */
static size_t grow(const struct mempipe__ring *r, size_t size)
{
    return size > max_seg(r) / 2 ? max_seg(r) : size * 2;
}

static struct mempipe__seg *seg_get(struct mempipe__ring *r, size_t want)
{
    while (r->seg_size < want && r->seg_size < max_seg(r))
        r->seg_size = grow(r, r->seg_size);
    /* Acquire: pairs with the consumer's release in seg_put. */
    struct mempipe__seg *s =
        atomic_exchange_explicit(&r->spare, NULL, memory_order_acq_rel);
    if (s != NULL && s->cap < r->seg_size) {
        seg_free(s);
        s = NULL;
    }
    if (s == NULL) {
        s = mempipe__alloc(sizeof *s + r->seg_size);
        if (s == NULL)
            return NULL;
        s->cap = r->seg_size;
        /*
         * A pipe that needs fresh segments is a busy one: let the next
         * fresh segment be twice as large, up to max_seg, so that a full
         * pipe soon spans two segments and the one-slot spare cache keeps
         * it allocation-free. (Capping this at 4 KiB left a 64 KiB pipe of
         * 4 KiB writes cycling 16 segments through that one slot: an
         * allocation every few writes, measured in W1s.)
         */
        r->seg_size = grow(r, r->seg_size);
    }
    s->next = NULL;
    return s;
}

/* Consumer: gives a drained segment back; keeps one, frees the rest. */
static void seg_put(struct mempipe__ring *r, struct mempipe__seg *s)
{
    if (s == STUB)
        return;
    /* Release: our reads of s happen before the producer's reuse. */
    struct mempipe__seg *old =
        atomic_exchange_explicit(&r->spare, s, memory_order_acq_rel);
    if (old != NULL)
        seg_free(old);
}

/*
 * Producer: the part of slice v that a write copies, past the first *skip
 * bytes of the call (bytes written by an earlier round of it, used up
 * here) and at most room bytes; *left is its length (0: none of it).
 */
static const unsigned char *slice_part(const struct iovec *v, size_t *skip,
                                       size_t room, size_t *left)
{
    const unsigned char *src = v->iov_base;
    size_t n = v->iov_len;
    if (*skip >= n) {
        *skip -= n;
        *left = 0;
        return src;
    }
    src += *skip;
    n -= *skip;
    *skip = 0;
    *left = n < room ? n : room;
    return src;
}

/* ---- flat mode (ring.h): an shm ring's one area ------------------------- */

#define FLAT_W(r) ((r)->tail == NULL) /* the producer's test */
#define FLAT_R(r) ((r)->head == NULL) /* the consumer's test */

void mempipe__ring_init_flat(struct mempipe__ring *r, size_t cap,
                             const struct mempipe__flat *f)
{
    mempipe__ring_init(r, cap);
    r->flat = f;
    r->tail = NULL;
    r->head = NULL;
    r->wadj = 0; /* offsets of wnext and rpos in the area */
    r->radj = 0;
}

/* Offset off advanced by n (n <= cap) within an area of cap bytes. */
static size_t flat_adv(size_t off, size_t n, size_t cap)
{
    return n >= cap - off ? off + n - cap : off + n;
}

/* Up to 2 spans of n bytes (n <= cap) of the area from offset off. */
static int flat_spans(const struct mempipe__ring *r, size_t off, size_t n,
                      struct iovec iov[2])
{
    size_t first = r->cap - off < n ? r->cap - off : n;
    int k = 0;
    if (first > 0) {
        iov[k].iov_base = r->flat->data + off;
        iov[k].iov_len = first;
        k++;
    }
    if (n > first) {
        iov[k].iov_base = r->flat->data;
        iov[k].iov_len = n - first;
        k++;
    }
    return k;
}

/* Producer: publishes [pos, pos + n) here (the private compare-and-swap,
 * which fails once closed) and then in the shared word for the peer. */
static int flat_publish(struct mempipe__ring *r, size_t pos, size_t n)
{
    if (!mempipe__ring_publish(r, pos, n))
        return 0;
    /* Release: the bytes before the position, for the peer's acquire. */
    atomic_store_explicit(r->flat->wpos, (uint64_t)(pos + n),
                          memory_order_release);
    r->wadj = flat_adv(r->wadj, n, r->cap);
    return 1;
}

static ptrdiff_t flat_write(struct mempipe__ring *r, const struct iovec *iov,
                            int iovcnt, size_t skip, size_t max)
{
    size_t start = r->wnext;
    size_t off = r->wadj;
    size_t done = 0;
    for (int i = 0; i < iovcnt && done < max; i++) {
        size_t left;
        const unsigned char *src =
            slice_part(&iov[i], &skip, max - done, &left);
        if (left == 0)
            continue;
        struct iovec sp[2];
        int k = flat_spans(r, off, left, sp);
        for (int j = 0; j < k; j++) {
            memcpy(sp[j].iov_base, src, sp[j].iov_len);
            src += sp[j].iov_len;
        }
        off = flat_adv(off, left, r->cap);
        done += left;
    }
    if (done == 0)
        return 0;
    return flat_publish(r, start, done) ? (ptrdiff_t)done : -EPIPE;
}

/* Consumer: the bytes buffered, from this process's view of wpos. */
static size_t flat_avail(const struct mempipe__ring *r, size_t pos)
{
    size_t w = atomic_load_explicit(&r->wpos, memory_order_acquire) &
               ~MEMPIPE__RING_CLOSED;
    size_t n = w - pos;
    return n > r->cap ? 0 : n; /* past a discard: nothing to read */
}

/* Consumer: moves the read position n bytes on; publishes it to the peer
 * unless the bytes were discarded (shared: the bytes the peer may count as
 * delivered, mempipe_drain). */
static void flat_release(struct mempipe__ring *r, size_t pos, size_t n,
                         bool delivered)
{
    r->radj = flat_adv(r->radj, n, r->cap);
    /* Release: our reads of the bytes happen before the space is reused. */
    atomic_store_explicit(&r->rpos, pos + n, memory_order_release);
    if (delivered)
        atomic_store_explicit(r->flat->rpos, (uint64_t)(pos + n),
                              memory_order_release);
}

static size_t flat_readv(struct mempipe__ring *r, const struct iovec *iov,
                         size_t len)
{
    size_t pos = atomic_load_explicit(&r->rpos, memory_order_relaxed);
    size_t take = flat_avail(r, pos);
    if (take > len)
        take = len;
    if (take == 0)
        return 0;
    if (iov != NULL) {
        struct iovec sp[2];
        int k = flat_spans(r, r->radj, take, sp);
        size_t room = iov->iov_len;
        unsigned char *dst = iov->iov_base;
        for (int j = 0; j < k; j++) {
            const unsigned char *src = sp[j].iov_base;
            size_t left = sp[j].iov_len;
            while (left > 0) {
                if (room == 0) {
                    iov++;
                    dst = iov->iov_base;
                    room = iov->iov_len;
                    continue;
                }
                size_t c = left < room ? left : room;
                memcpy(dst, src, c);
                dst += c;
                src += c;
                room -= c;
                left -= c;
            }
        }
    }
    flat_release(r, pos, take, iov != NULL);
    return take;
}

ptrdiff_t mempipe__ring_write(struct mempipe__ring *r, const struct iovec *iov,
                              int iovcnt, size_t skip, size_t max)
{
    if (FLAT_W(r))
        return flat_write(r, iov, iovcnt, skip, max);
    size_t start = r->wnext;
    size_t pos = start;
    size_t done = 0;
    struct mempipe__seg *t = r->tail;

    for (int i = 0; i < iovcnt && done < max; i++) {
        size_t left;
        const unsigned char *src =
            slice_part(&iov[i], &skip, max - done, &left);
        while (left > 0) {
            size_t off = pos - t->base;
            if (off == t->cap) {
                struct mempipe__seg *n = seg_get(r, max - done);
                if (n == NULL)
                    goto out;
                n->base = pos;
                /* Plain store: published by the wpos release below. */
                seg_link(r, t, n);
                t = n;
                r->tail = n;
                off = 0;
            }
            size_t c = t->cap - off;
            if (c > left)
                c = left;
            memcpy(MEMPIPE__SEG_DATA(t) + off, src, c);
            src += c;
            left -= c;
            pos += c;
            done += c;
        }
    }
out:
    r->wadj = (uintptr_t)MEMPIPE__SEG_DATA(t) - t->base;
    set_wlimit(r);
    if (done == 0)
        return max == 0 ? 0 : -ENOMEM;
    /* The bytes and links above are visible before the new wpos; fails,
     * publishing nothing, if the ring was closed meanwhile. */
    if (!mempipe__ring_publish(r, start, done))
        return -EPIPE;
    return (ptrdiff_t)done;
}

size_t mempipe__ring_readv(struct mempipe__ring *r, const struct iovec *iov,
                           size_t len)
{
    if (FLAT_R(r))
        return flat_readv(r, iov, len);
    size_t pos = atomic_load_explicit(&r->rpos, memory_order_relaxed);
    size_t avail = r->wpos_seen - pos;
    if (avail < len) {
        /* Acquire: pairs with the producer's release store of wpos. */
        r->wpos_seen = atomic_load_explicit(&r->wpos, memory_order_acquire) &
                       ~MEMPIPE__RING_CLOSED;
        avail = r->wpos_seen - pos;
    }
    if (avail == 0 || len == 0) {
        mempipe__ring_set_rlimit(r);
        return 0;
    }
    size_t take = avail < len ? avail : len;
    /* The destination: slice `iov`, `room` bytes left in it at `dst`. */
    unsigned char *dst = iov == NULL ? NULL : iov->iov_base;
    size_t room = iov == NULL ? SIZE_MAX : iov->iov_len;

    struct mempipe__seg *h = r->head;
    size_t done = 0;

    while (done < take) {
        size_t off = pos - h->base;
        if (off == h->cap) {
            /* Drained, and bytes past it are published: next is linked. */
            struct mempipe__seg *n = seg_next(r, h);
            seg_put(r, h);
            h = n;
            r->head = n;
            r->radj = (uintptr_t)MEMPIPE__SEG_DATA(n) - n->base;
            r->rend = n->base + n->cap;
            continue;
        }
        if (room == 0) { /* the next slice (len is at most their total) */
            iov++;
            dst = iov->iov_base;
            room = iov->iov_len;
            continue;
        }
        size_t c = h->cap - off;
        if (c > take - done)
            c = take - done;
        if (c > room)
            c = room;
        if (dst != NULL) {
            memcpy(dst, MEMPIPE__SEG_DATA(h) + off, c);
            dst += c;
            room -= c;
        }
        pos += c;
        done += c;
    }
    mempipe__ring_set_rlimit(r);
    /* Release: our reads of the bytes happen before the space is reused. */
    atomic_store_explicit(&r->rpos, pos, memory_order_release);
    return done;
}

size_t mempipe__ring_read(struct mempipe__ring *r, void *buf, size_t len)
{
    struct iovec one = {buf, len};
    return mempipe__ring_readv(r, buf == NULL ? NULL : &one, len);
}

size_t mempipe__ring_delivered(const struct mempipe__ring *r)
{
    /* The position first: once it has moved past a cut, the cut (stored
     * before, release) is visible. */
    size_t pos = atomic_load_explicit(&r->rpos, memory_order_acquire);
    size_t cut = atomic_load_explicit(&r->cut, memory_order_acquire);
    return cut != SIZE_MAX && cut < pos ? cut : pos;
}

size_t mempipe__ring_used(const struct mempipe__ring *r)
{
    /* Load rpos first: wpos only grows, so the difference never wraps. */
    size_t rd = atomic_load_explicit(&r->rpos, memory_order_acquire);
    size_t w = atomic_load_explicit(&r->wpos, memory_order_acquire) &
               ~MEMPIPE__RING_CLOSED;
    return w - rd;
}

void mempipe__ring_close_write(struct mempipe__ring *r)
{
    atomic_fetch_or_explicit(&r->wpos, MEMPIPE__RING_CLOSED,
                             memory_order_seq_cst);
}

int mempipe__ring_eof(struct mempipe__ring *r)
{
    /* Acquire: pairs with the producer's publish, so the final count is
     * complete; the bit and the count come from one load. */
    size_t w = atomic_load_explicit(&r->wpos, memory_order_acquire);
    size_t pos = atomic_load_explicit(&r->rpos, memory_order_relaxed);
    if (!(w & MEMPIPE__RING_CLOSED))
        return 0;
    return (w & ~MEMPIPE__RING_CLOSED) == pos ? 1 : -1;
}

/* ---- zero-copy windows (R62-R64) ---------------------------------------- */

ptrdiff_t mempipe__ring_reserve(struct mempipe__ring *r, size_t want,
                                struct iovec iov[2], int *spans)
{
    if (FLAT_W(r)) {
        size_t room = mempipe__ring_room(r, want);
        size_t take = want < room ? want : room;
        if (take > UINT32_MAX)
            take = UINT32_MAX; /* rsv's range */
        if (take == 0)
            return 0;
        *spans = flat_spans(r, r->wadj, take, iov);
        r->rsv = (uint32_t)take;
        return (ptrdiff_t)take;
    }
    size_t room = mempipe__ring_room(r, want);
    size_t take = want < room ? want : room;
    if (take == 0)
        return 0;
    struct mempipe__seg *t = r->tail;
    size_t off = r->wnext - t->base;
    size_t first = t->cap - off; /* the rest of the tail segment */
    int n = 0;
    if (first > 0) {
        iov[n].iov_base = MEMPIPE__SEG_DATA(t) + off;
        iov[n].iov_len = first < take ? first : take;
        n++;
    }
    size_t got = n > 0 ? iov[0].iov_len : 0;
    if (got < take) {
        /* A fresh segment for the rest, linked only at the commit. */
        struct mempipe__seg *s = seg_get(r, take - got);
        if (s == NULL) {
            if (n == 0)
                return -ENOMEM;
        } else {
            size_t c = s->cap < take - got ? s->cap : take - got;
            iov[n].iov_base = MEMPIPE__SEG_DATA(s);
            iov[n].iov_len = c;
            n++;
            got += c;
            r->rsv_seg = s;
        }
    }
    r->rsv = (uint32_t)got; /* two spans of one segment each at most */
    r->wlimit = r->wnext;   /* the fast path declines while it is open */
    *spans = n;
    return (ptrdiff_t)got;
}

ptrdiff_t mempipe__ring_commit(struct mempipe__ring *r, size_t n)
{
    if (FLAT_W(r)) {
        r->rsv = 0;
        if (n == 0)
            return 0;
        return flat_publish(r, r->wnext, n) ? (ptrdiff_t)n : -EPIPE;
    }
    struct mempipe__seg *t = r->tail;
    size_t pos = r->wnext;
    size_t first = t->cap - (pos - t->base);
    struct mempipe__seg *s = r->rsv_seg;
    r->rsv = 0;
    r->rsv_seg = NULL;
    if (s != NULL && n > first) {
        /* The second span holds bytes: it becomes the tail. Plain stores,
         * published by the wpos release below. */
        s->base = t->base + t->cap;
        seg_link(r, t, s);
        t = s;
        r->tail = s;
    } else if (s != NULL) {
        seg_put(r, s); /* unused: back to the spare cache */
    }
    r->wadj = (uintptr_t)MEMPIPE__SEG_DATA(t) - t->base;
    set_wlimit(r);
    if (n == 0)
        return 0;
    /* The bytes the caller wrote in place are visible before the new wpos;
     * fails, publishing nothing, if the ring was closed meanwhile. */
    if (!mempipe__ring_publish(r, pos, n))
        return -EPIPE;
    return (ptrdiff_t)n;
}

size_t mempipe__ring_peek(struct mempipe__ring *r, struct iovec iov[2],
                          size_t max, int *spans)
{
    if (FLAT_R(r)) {
        size_t pos = atomic_load_explicit(&r->rpos, memory_order_relaxed);
        size_t avail = flat_avail(r, pos);
        if (avail > max)
            avail = max;
        if (avail > UINT32_MAX)
            avail = UINT32_MAX; /* peeked's range */
        *spans = avail == 0 ? 0 : flat_spans(r, r->radj, avail, iov);
        r->peeked = (uint32_t)avail;
        return avail;
    }
    size_t pos = atomic_load_explicit(&r->rpos, memory_order_relaxed);
    /* Acquire: pairs with the producer's publish of wpos. */
    r->wpos_seen = atomic_load_explicit(&r->wpos, memory_order_acquire) &
                   ~MEMPIPE__RING_CLOSED;
    size_t avail = r->wpos_seen - pos;
    if (avail > max)
        avail = max; /* an injected cap (R48) shows less */
    struct mempipe__seg *h = r->head;
    if (avail > 0 && pos - h->base == h->cap) {
        /* The head is drained and bytes follow: move to the next one. */
        struct mempipe__seg *n = seg_next(r, h);
        seg_put(r, h);
        h = n;
        r->head = n;
        r->radj = (uintptr_t)MEMPIPE__SEG_DATA(n) - n->base;
    }
    size_t hend = h->base + h->cap;
    int k = 0;
    if (avail > 0) {
        size_t c = hend - pos < avail ? hend - pos : avail;
        iov[k].iov_base = MEMPIPE__SEG_DATA(h) + (pos - h->base);
        iov[k].iov_len = c;
        k++;
        if (c < avail) { /* the rest lies in the next segment */
            struct mempipe__seg *n = seg_next(r, h);
            size_t d = n->cap < avail - c ? n->cap : avail - c;
            iov[k].iov_base = MEMPIPE__SEG_DATA(n);
            iov[k].iov_len = d;
            k++;
            avail = c + d;
        }
    }
    r->peeked = (uint32_t)avail; /* two spans of one segment each at most */
    if (avail > 0) {
        /* While the peek is open the fast path declines: rend (and so
         * rlimit) is the read position, until the consume. */
        r->rend = pos;
        r->rlimit = pos;
    }
    *spans = k;
    return avail;
}

void mempipe__ring_consume(struct mempipe__ring *r, size_t n)
{
    if (FLAT_R(r)) {
        r->peeked = 0;
        if (n > 0)
            flat_release(r,
                         atomic_load_explicit(&r->rpos, memory_order_relaxed),
                         n, true);
        return;
    }
    r->peeked = 0;
    r->rend = r->head->base + r->head->cap;
    (void)mempipe__ring_readv(r, NULL, n); /* releases drained segments */
}

int mempipe__ring_reserved(const struct mempipe__ring *r, size_t n,
                           struct iovec iov[2])
{
    if (FLAT_W(r))
        return flat_spans(r, r->wadj, n, iov);
    const struct mempipe__seg *t = r->tail;
    size_t off = r->wnext - t->base;
    size_t first = t->cap - off;
    int k = 0;
    if (first > 0 && n > 0) {
        iov[k].iov_base = MEMPIPE__SEG_DATA(t) + off;
        iov[k].iov_len = first < n ? first : n;
        n -= iov[k].iov_len;
        k++;
    }
    if (n > 0 && r->rsv_seg != NULL) {
        iov[k].iov_base = MEMPIPE__SEG_DATA(r->rsv_seg);
        iov[k].iov_len = n;
        k++;
    }
    return k;
}

int mempipe__ring_view(const struct mempipe__ring *r, size_t n,
                       struct iovec iov[2])
{
    if (FLAT_R(r))
        return flat_spans(r, r->radj, n, iov);
    size_t pos = atomic_load_explicit(&r->rpos, memory_order_relaxed);
    const struct mempipe__seg *h = r->head;
    int k = 0;
    if (pos - h->base == h->cap && n > 0) /* drained: bytes are past it */
        h = seg_next(r, h);
    while (n > 0 && k < 2) {
        size_t off = pos - h->base;
        size_t c = h->cap - off < n ? h->cap - off : n;
        iov[k].iov_base = MEMPIPE__SEG_DATA(h) + off;
        iov[k].iov_len = c;
        k++;
        n -= c;
        pos += c;
        if (n > 0)
            h = seg_next(r, h);
    }
    return k;
}
