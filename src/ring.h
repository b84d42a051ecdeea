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
    /* Producer's cache line: written on every write. */
    _Alignas(MEMPIPE__CACHELINE) atomic_size_t wpos;
    struct mempipe__seg *tail; /* producer-owned */
    size_t rpos_seen;          /* producer's last view of rpos */
    size_t seg_size;           /* data size of the next segment to make */

    /* Consumer's cache line: written on every read. */
    _Alignas(MEMPIPE__CACHELINE) atomic_size_t rpos;
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
size_t mempipe__ring_room(struct mempipe__ring *r, size_t capacity,
                          size_t want);
/* Any thread: a snapshot of the bytes buffered. */
size_t mempipe__ring_used(const struct mempipe__ring *r);

#endif
