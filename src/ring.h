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
 * bytes ever read); L = wpos - rpos. The producer alone stores wpos, the
 * consumer alone stores rpos.
 */
#ifndef MEMPIPE_RING_H
#define MEMPIPE_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>

#define MEMPIPE__CACHELINE 64

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
     * The fast path is one compare against it.
     */
    _Alignas(MEMPIPE__CACHELINE) atomic_size_t wpos;
    size_t wlimit;
    unsigned char *wdata;      /* tail segment's bytes */
    size_t wbase;              /* tail segment's stream position */
    struct mempipe__seg *tail; /* producer-owned */
    size_t rpos_seen;          /* producer's last view of rpos */
    size_t seg_size;           /* data size of the next fresh segment */
    size_t cap;                /* capacity M, for wlimit */

    /*
     * Consumer's cache line: written on every read. rlimit is the position
     * up to which the consumer may read without looking at anything else:
     * min(end of the head segment, wpos_seen).
     */
    _Alignas(MEMPIPE__CACHELINE) atomic_size_t rpos;
    size_t rlimit;
    unsigned char *rdata;      /* head segment's bytes */
    size_t rbase;              /* head segment's stream position */
    struct mempipe__seg *head; /* consumer-owned */
    size_t wpos_seen;          /* consumer's last view of wpos */

    /* Shared, rarely written. */
    _Alignas(MEMPIPE__CACHELINE) _Atomic(struct mempipe__seg *) spare;
    size_t max_seg; /* largest segment data size: min(capacity, 64 KiB) */
    struct mempipe__seg stub; /* empty head/tail before the first write */
};

/* Sets up an empty ring that allocates nothing until the first write. */
void mempipe__ring_init(struct mempipe__ring *r, size_t capacity);
/* Frees every segment. Only when neither side can run any more. */
void mempipe__ring_free(struct mempipe__ring *r);

/*
 * Producer: copies exactly min(max, bytes in iov) bytes from iov in order
 * and publishes them. The caller guarantees that much space is free.
 * Returns the count, or -ENOMEM if a segment could not be allocated before
 * the first byte (a later failure returns the bytes copied so far).
 */
ptrdiff_t mempipe__ring_write(struct mempipe__ring *r, const struct iovec *iov,
                              int iovcnt, size_t max);

/*
 * Consumer: copies up to len of the oldest bytes to buf (or discards them
 * when buf is NULL) and releases their space. Returns the count, 0 if empty.
 */
size_t mempipe__ring_read(struct mempipe__ring *r, void *buf, size_t len);

/*
 * Producer: free space under capacity, refreshing its view of rpos only when
 * the cached view shows less than `want` free (one shared load saved).
 */
size_t mempipe__ring_room(struct mempipe__ring *r, size_t want);

/* Any thread: a snapshot of the bytes buffered. */
size_t mempipe__ring_used(const struct mempipe__ring *r);

/*
 * Fast paths, inlined into the poll calls: the common case is one segment,
 * one memcpy, one release store (Lua's zgetc: a compare, then the rare case
 * is a call). They return 0 when the case is not the simple one and the
 * caller takes the general path above. Memory ordering as in ring.c.
 */

/* Producer: all len bytes if they fit under wlimit, else 0. */
static inline size_t mempipe__ring_put(struct mempipe__ring *r,
                                       const void *src, size_t len)
{
    size_t pos = atomic_load_explicit(&r->wpos, memory_order_relaxed);
    if (r->wlimit - pos < len)
        return 0;
    memcpy(r->wdata + (pos - r->wbase), src, len);
    /* Release: the bytes are visible before the new wpos. */
    atomic_store_explicit(&r->wpos, pos + len, memory_order_release);
    return len;
}

/* Consumer: recomputes rlimit after wpos_seen or the head changed. */
static inline void mempipe__ring_set_rlimit(struct mempipe__ring *r)
{
    size_t end = r->rbase + r->head->cap;
    r->rlimit = r->wpos_seen - r->rbase < r->head->cap ? r->wpos_seen : end;
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
        /* Acquire: pairs with the producer's release store of wpos. */
        r->wpos_seen = atomic_load_explicit(&r->wpos, memory_order_acquire);
        mempipe__ring_set_rlimit(r);
        avail = r->rlimit - pos;
        if (avail < len && (avail == 0 || r->rlimit != r->wpos_seen))
            return 0;
    }
    size_t k = avail < len ? avail : len;
    memcpy(dst, r->rdata + (pos - r->rbase), k);
    /* Release: our reads of the bytes happen before the space is reused. */
    atomic_store_explicit(&r->rpos, pos + k, memory_order_release);
    return k;
}

#endif
