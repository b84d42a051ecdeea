/* SPDX-License-Identifier: MIT */
/*
 * ring: a single-producer/single-consumer byte queue.
 *
 * Storage is a chain of segments. The producer appends to the tail segment,
 * the consumer reads from the head segment and hands a drained segment back
 * through a one-slot cache (`spare`) for the producer to reuse, so steady
 * transfer allocates nothing and memory follows the bytes buffered, not the
 * capacity. The ring knows nothing of wakers, capacity or closing: the pipe
 * decides how much may be written.
 *
 * Positions are free-running byte counts (wpos = bytes ever written, rpos =
 * bytes ever read); L = wpos - rpos. The producer alone stores rpos's
 * counterpart wpos, the consumer alone stores rpos.
 *
 * End of stream lives in wpos itself: its top bit (MEMPIPE__RING_CLOSED),
 * set by mempipe__ring_close_write from any thread. The producer publishes
 * with a compare-and-swap that fails once the bit is set, so the consumer
 * sees "closed" and the final byte count in one load, and no byte can be
 * published after the consumer saw end of stream — even when shutdown runs
 * on another thread while a write is in progress.
 */
#ifndef MEMPIPE_RING_H
#define MEMPIPE_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#define MEMPIPE__CACHELINE 64

/* The top bit of wpos: write-closed. Positions never reach 2^63 bytes. */
#define MEMPIPE__RING_CLOSED ((size_t)1 << (sizeof(size_t) * 8 - 1))

struct mempipe__seg {
    struct mempipe__seg *next; /* set by the producer before publishing */
    size_t base;               /* stream position of data[0] */
    size_t cap;                /* data bytes, which follow the header */
};

/* The bytes of a segment: right after its header. */
#define MEMPIPE__SEG_DATA(s) ((unsigned char *)((s) + 1))

struct mempipe__ring {
    /*
     * Producer's cache line: written on every write. wlimit is the stream
     * position up to which the producer may write without looking at
     * anything else: min(end of the tail segment, rpos_seen + capacity).
     * The fast path is one compare against it. wadj is the tail segment's
     * data address minus its stream position, so that position p lives at
     * address wadj + p (unsigned arithmetic, no out-of-range pointer).
     */
    _Alignas(MEMPIPE__CACHELINE) atomic_size_t wpos; /* | RING_CLOSED */
    size_t wnext; /* producer's own copy of the position, without the bit */
    size_t wlimit;
    uintptr_t wadj;
    struct mempipe__seg *tail; /* producer-owned */
    size_t rpos_seen;          /* producer's last view of rpos */
    /* An open reservation (mempipe_write_reserve, R62): the fresh segment
     * of its second span, not yet linked (NULL: one span), and the bytes
     * reserved from wnext (0: none; two spans of at most one segment each,
     * so at most 128 KiB). While one is open, wlimit is wnext, so the fast
     * path declines every write. */
    struct mempipe__seg *rsv_seg;
    uint32_t rsv;

    /*
     * Consumer's cache line: written on every read. rlimit is the position
     * up to which the consumer may read without looking at anything else:
     * min(rend, wpos_seen), with rend the end of the head segment.
     */
    _Alignas(MEMPIPE__CACHELINE) atomic_size_t rpos;
    size_t rlimit;
    uintptr_t radj;            /* as wadj, for the head segment */
    size_t rend;               /* stream position just past the head */
    struct mempipe__seg *head; /* consumer-owned */
    size_t wpos_seen;          /* consumer's last view of wpos, no bit */
    /* The position up to which the consumer examined the bytes
     * (mempipe_read_consume_examined, R64): a peek waits for bytes past
     * it. Written by the consumer before its waker's fence; the producer's
     * wake reads it (relaxed, ordered by the fences of R25). */
    atomic_size_t rexam;
    /* An open peek (mempipe_read_peek, R63): the bytes it showed (0: none;
     * two spans of at most one segment each). While one is open, rend is
     * rpos, so the fast path declines every read. */
    uint32_t peeked;
    /* Whether the waker the reader stored is a peek's (R65: a new mark
     * re-targets it past the examined bytes too). */
    unsigned char rpeek;

    /* Shared, rarely written. */
    _Alignas(MEMPIPE__CACHELINE) _Atomic(struct mempipe__seg *) spare;
    size_t cap; /* capacity M */
    /* The first segment, linked from the shared empty stub (ring.c) by
     * the producer before it publishes its bytes, as any `next` link; in
     * flat mode (below) the ring's area instead. */
    union {
        struct mempipe__seg *first;
        const struct mempipe__flat *flat;
    };
    size_t seg_size; /* data size of the next fresh segment (producer) */
    /* Where the consumer stopped reading and began to discard (a reset,
     * R38; a read-side shutdown or close), or SIZE_MAX: the bytes read.
     * Set by the consumer before it discards; any thread may read it. */
    atomic_size_t cut;
    /*
     * What a stored waker waits for (R65), written by its side before it
     * stores the waker (so before that fence of R25) and read by the other
     * side's wake after its own: the reader's waker runs once wpos reaches
     * rwant, the writer's once wneed bytes are free (or on a close).
     */
    atomic_size_t rwant;
    atomic_uint wneed; /* at most the write mark, at most UINT32_MAX */
    /* The call each stored waker came from (R65): its len (UINT32_MAX and
     * above for a readiness call: only its minimum with the mark, at most
     * UINT32_MAX, matters) and, for the reader's, rpeek above, so that a
     * new mark re-targets it as that call would have. Each side's own,
     * plain: only the thread of that role stores a waker or sets its mark
     * (the reader's len is here for want of room on its line). */
    uint32_t rlen;
    /* The low-water marks (R65), 1 and 1 by default: set by the reader and
     * the writer, read by any thread (readiness of the fds). At most
     * UINT32_MAX (mempipe_set_read_lowat checks). */
    atomic_uint rlowat;
    atomic_uint wlowat;
};

/*
 * Flat mode: the ring of an shm pipe (shm.h). Its bytes are one area of
 * cap bytes in a shared mapping, position p at offset p mod cap; the
 * producer keeps the offset of wnext in wadj, the consumer that of rpos in
 * radj, and tail and head are NULL, which is how each side tells the mode
 * (no segment is ever allocated). wpos and rpos stay this process's own:
 * the side that owns one also stores it into the shared word here after
 * every move (ring.c), and shm.c raises the other one from the peer's
 * shared word. The inlined fast paths are never taken on a flat ring (an
 * shm end has no fast pointers, end.h), only the functions of ring.c.
 */
struct mempipe__flat {
    unsigned char *data;    /* the area, in this process's mapping */
    _Atomic uint64_t *wpos; /* shared: the producer's position */
    _Atomic uint64_t *rpos; /* shared: the consumer's position */
};

/* Sets up an empty flat ring of capacity cap on area f (kept by the
 * caller for the ring's life). */
void mempipe__ring_init_flat(struct mempipe__ring *r, size_t cap,
                             const struct mempipe__flat *f);

/* The empty segment every ring starts from (holds nothing, never written:
 * its successor is the ring's `first`). */
extern struct mempipe__seg mempipe__ring_stub;

/* Sets up an empty ring that allocates nothing until the first write. */
void mempipe__ring_init(struct mempipe__ring *r, size_t capacity);
/* Frees every segment. Only when neither side can run any more. */
void mempipe__ring_free(struct mempipe__ring *r);

/*
 * Producer: copies exactly min(max, bytes in iov past the first skip) bytes
 * from iov in order, starting skip bytes into the concatenation of the
 * slices, and publishes them. The caller guarantees that much space is free.
 * Returns the count, or -ENOMEM if a segment could not be allocated before
 * the first byte (a later failure returns the bytes copied so far), or
 * -EPIPE if the ring was write-closed meanwhile (nothing published).
 * On success the publishing compare-and-swap was a full barrier.
 */
ptrdiff_t mempipe__ring_write(struct mempipe__ring *r, const struct iovec *iov,
                              int iovcnt, size_t skip, size_t max);

/*
 * Consumer: copies up to len of the oldest bytes into the slices of iov in
 * order (len is at most their total), or discards them when iov is NULL,
 * and releases their space. Returns the count, 0 if empty.
 */
size_t mempipe__ring_readv(struct mempipe__ring *r, const struct iovec *iov,
                           size_t len);

/* Consumer: mempipe__ring_readv() into one buffer (NULL: discard). */
size_t mempipe__ring_read(struct mempipe__ring *r, void *buf, size_t len);

/*
 * Any thread: the bytes the consumer's reads took, which is the read
 * position, or where a discard began (cut) if one did: bytes discarded by a
 * reset (R38), a read-side shutdown or a close were never read.
 */
size_t mempipe__ring_delivered(const struct mempipe__ring *r);

/*
 * Producer: reserves up to want bytes of free space as one or two spans in
 * iov (the rest of the tail segment, then a fresh segment not yet linked)
 * and *spans their number; nothing is published. Returns the bytes
 * reserved (>= 1), 0 if there is no room, -ENOMEM if a segment was needed
 * for the first span and none could be had. Until the commit, the fast
 * path declines every write (R62).
 */
ptrdiff_t mempipe__ring_reserve(struct mempipe__ring *r, size_t want,
                                struct iovec iov[2], int *spans);

/*
 * Producer: ends the reservation, publishing its first n bytes (n at most
 * the bytes reserved; 0 publishes nothing). Returns n, or -EPIPE if the
 * ring was closed meanwhile (nothing published). A full barrier when it
 * publishes.
 */
ptrdiff_t mempipe__ring_commit(struct mempipe__ring *r, size_t n);

/*
 * Consumer: shows the buffered bytes (at most max), oldest first, as one
 * or two spans in
 * iov (*spans their number, 0 when empty) without releasing them; returns
 * their total. Until the consume, the fast path declines every read (R63).
 */
size_t mempipe__ring_peek(struct mempipe__ring *r, struct iovec iov[2],
                          size_t max, int *spans);

/* Consumer: ends the peek, releasing its first n bytes (n <= peeked). */
void mempipe__ring_consume(struct mempipe__ring *r, size_t n);

/* Producer: the spans holding the first n reserved bytes; their number. */
int mempipe__ring_reserved(const struct mempipe__ring *r, size_t n,
                           struct iovec iov[2]);

/* Consumer: the spans holding the next n buffered bytes (n <= peeked). */
int mempipe__ring_view(const struct mempipe__ring *r, size_t n,
                       struct iovec iov[2]);

/*
 * Producer: free space under capacity, refreshing its view of rpos only when
 * the cached view shows less than `want` free (one shared load saved).
 */
size_t mempipe__ring_room(struct mempipe__ring *r, size_t want);

/* Any thread: a snapshot of the bytes buffered. */
size_t mempipe__ring_used(const struct mempipe__ring *r);

/*
 * Any thread: marks end of stream (idempotent). A seq_cst read-modify-write,
 * so it is ordered before the caller's following slot loads.
 */
void mempipe__ring_close_write(struct mempipe__ring *r);

/*
 * Consumer: true when the ring is write-closed and every byte before the
 * close has been read.
 */
int mempipe__ring_eof(struct mempipe__ring *r);
/* (It returns 1 at end of stream, 0 while open, and -1 when closed with
 * bytes still unread.) */

/*
 * Producer's publish: wpos from pos to pos + len, unless the ring was
 * closed meanwhile. seq_cst: on x86 a locked instruction, a full barrier,
 * which stands in for the lost-wakeup fence that follows every publish.
 */
static inline int mempipe__ring_publish(struct mempipe__ring *r, size_t pos,
                                        size_t len)
{
    size_t expect = pos;
    /* Release (in seq_cst): the bytes and links below pos + len are
     * visible to a consumer that acquires the new wpos. */
    if (!atomic_compare_exchange_strong_explicit(&r->wpos, &expect, pos + len,
                                                 memory_order_seq_cst,
                                                 memory_order_acquire))
        return 0; /* only RING_CLOSED can have changed it */
    r->wnext = pos + len;
    return 1;
}

/*
 * Fast paths, inlined into the poll calls: the common case is one segment,
 * one memcpy, one release store (Lua's zgetc: a compare, then the rare case
 * is a call). They return 0 when the case is not the simple one and the
 * caller takes the general path above. Memory ordering as in ring.c.
 */

/*
 * Copies n bytes. Up to 64 bytes inline, as at most two overlapping
 * fixed-size moves (no call, no loop: the small messages of protocol
 * tests); above that, libc's memcpy.
 */
static inline void mempipe__copy(unsigned char *d, const unsigned char *s,
                                 size_t n)
{
    if (n > 64) {
        memcpy(d, s, n);
    } else if (n >= 32) {
        memcpy(d, s, 32);
        memcpy(d + n - 32, s + n - 32, 32);
    } else if (n >= 16) {
        memcpy(d, s, 16);
        memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else if (n > 0) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
}

/*
 * Producer: all len bytes if they fit under wlimit and the ring is open,
 * else 0 (the general path then decides). On success, a full barrier.
 */
static inline size_t mempipe__ring_put(struct mempipe__ring *r, const void *src,
                                       size_t len)
{
    size_t pos = r->wnext;
    if (r->wlimit - pos < len)
        return 0;
    mempipe__copy((unsigned char *)(r->wadj + pos), src, len);
    return mempipe__ring_publish(r, pos, len) ? len : 0;
}

/* Consumer: recomputes rlimit after wpos_seen or the head changed. */
static inline void mempipe__ring_set_rlimit(struct mempipe__ring *r)
{
    r->rlimit = r->wpos_seen < r->rend ? r->wpos_seen : r->rend;
}

/*
 * Consumer: min(len, buffered) bytes if they all lie in the head segment,
 * else 0 (empty, or the bytes span segments: the general path decides).
 */
static inline size_t mempipe__ring_get(struct mempipe__ring *r, void *dst,
                                       size_t len)
{
    size_t pos = atomic_load_explicit(&r->rpos, memory_order_relaxed);
    size_t avail = r->rlimit - pos;
    if (avail < len) {
        /* Acquire: pairs with the producer's publish of wpos. */
        r->wpos_seen = atomic_load_explicit(&r->wpos, memory_order_acquire) &
                       ~MEMPIPE__RING_CLOSED;
        mempipe__ring_set_rlimit(r);
        avail = r->rlimit - pos;
        /* Fewer than len here: all of them only if none lie beyond the
         * head segment; and none at all is the general path's case. */
        if (avail < len && (avail == 0 || r->rlimit != r->wpos_seen))
            return 0;
    }
    size_t k = avail < len ? avail : len;
    mempipe__copy(dst, (const unsigned char *)(r->radj + pos), k);
    /* Release: our reads of the bytes happen before the space is reused. */
    atomic_store_explicit(&r->rpos, pos + k, memory_order_release);
    return k;
}

#endif
