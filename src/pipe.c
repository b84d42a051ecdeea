/* SPDX-License-Identifier: MIT */
/*
 * One direction of a mempipe: the SPEC.md rules.
 *
 * Lost-wakeup freedom (R25) rests on one pattern, used for data, space and
 * close alike:
 *
 *   waiter:      store waker (slot FULL)   ; fence(seq_cst) ; re-check state
 *   progressor:  publish (wpos/rpos/flags) ; fence(seq_cst) ; take waker
 *
 * The two fences are ordered in the single total order S of seq_cst fences.
 * If the progressor's fence comes first, the waiter's re-check (after its own
 * fence) must see the published change and does not wait. If the waiter's
 * fence comes first, the progressor's load of the slot must see FULL and it
 * calls the waker. No interleaving leaves a waiter stored with its condition
 * already true and nobody to call it.
 */
#include "pipe.h"

#include "hold.h"

#include <errno.h>
#include <stdint.h>

void mempipe__pipe_init(struct mempipe__pipe *p, size_t cap)
{
    mempipe__ring_init(&p->ring, cap); /* M lives in ring.cap */
    atomic_init(&p->flags, 0);
    mempipe__slot_init(&p->rd);
    mempipe__slot_init(&p->wr);
    atomic_init(&p->watch, NULL);
}

void mempipe__pipe_free(struct mempipe__pipe *p)
{
    mempipe__ring_free(&p->ring);
    struct mempipe__observer *o =
        atomic_load_explicit(&p->watch, memory_order_acquire);
    if (o != NULL)
        o->release(o, p);
    atomic_store_explicit(&p->watch, NULL, memory_order_relaxed);
}

#define full_fence mempipe__full_fence

/*
 * The role's owner stores w in slot s. An observer with a wake protocol of
 * its own hears of the wait first (pipe.h), before the store and its fence.
 */
static void store(struct mempipe__pipe *p, struct mempipe__slot *s,
                  unsigned role, const mempipe_waker *w)
{
    /* Acquire: pairs with the release that published the observer. */
    struct mempipe__observer *o =
        atomic_load_explicit(&p->watch, memory_order_acquire);
    if (o != NULL && o->waits != NULL)
        o->waits(o, p, role, w);
    mempipe__slot_store(s, w);
}

/*
 * Reader: discards every byte buffered, now and (the ring being closed)
 * for good, first recording where the discard began (ring.h's cut) so that
 * what was read stays told apart from what was thrown away (the stats, R49;
 * mempipe_drain, R57). Release: the cut before the read position moves
 * past it (mempipe__ring_delivered reads the position first).
 */
static void discard(struct mempipe__pipe *p)
{
    size_t none = SIZE_MAX;
    atomic_compare_exchange_strong_explicit(
        &p->ring.cut, &none,
        atomic_load_explicit(&p->ring.rpos, memory_order_relaxed),
        memory_order_release, memory_order_relaxed);
    while (mempipe__ring_read(&p->ring, NULL, (size_t)-1) > 0)
        ;
}

/* ---- what a stored waker waits for (R65) --------------------------------- */

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

static size_t rlowat(const struct mempipe__pipe *p)
{
    return atomic_load_explicit(&p->ring.rlowat, memory_order_relaxed);
}

static size_t wlowat(const struct mempipe__pipe *p)
{
    return atomic_load_explicit(&p->ring.wlowat, memory_order_relaxed);
}

/*
 * Reader: the stored waker's target from its call (rlen, rpeek) and the
 * mark now: it runs once min(len, mark) more bytes are buffered than the
 * read position, a peek's also once a byte came past the examined ones
 * (R64), or on a close. Relaxed: the slot store (or, for a new mark, the
 * fence) that follows orders it before the writer's check.
 */
static void reader_target(struct mempipe__pipe *p)
{
    size_t need = min_sz(p->ring.rlen, rlowat(p));
    size_t pos = atomic_load_explicit(&p->ring.rpos, memory_order_relaxed);
    size_t want = need > SIZE_MAX - pos ? SIZE_MAX : pos + need;
    if (p->ring.rpeek) {
        size_t ex = atomic_load_explicit(&p->ring.rexam, memory_order_relaxed);
        if (want <= ex)
            want = ex + 1;
    }
    atomic_store_explicit(&p->ring.rwant, want, memory_order_relaxed);
}

/* Reader, before it stores the waker of a call of len bytes (SIZE_MAX: a
 * readiness call); peek: a peek's. */
static void reader_waits_for(struct mempipe__pipe *p, size_t len, bool peek)
{
    p->ring.rlen = (uint32_t)min_sz(len, UINT32_MAX); /* exact below a mark */
    p->ring.rpeek = peek;
    reader_target(p);
}

/*
 * Writer, before it stores its waker: it runs once need bytes are free. At
 * most UINT32_MAX: exact for every call under a mark; a drain of a pipe
 * larger than that (need = the capacity) is woken early, and its re-check
 * waits again.
 */
static void writer_needs(struct mempipe__pipe *p, size_t need)
{
    atomic_store_explicit(&p->ring.wneed, (unsigned)min_sz(need, UINT32_MAX),
                          memory_order_relaxed);
}

/*
 * Writer, before it stores its waker: under a write mark it waits for the
 * mark's worth of room, whatever its call has left (R65: the hysteresis of
 * Pipelines' resume threshold, which a smaller need would defeat).
 */
static void writer_waits_for(struct mempipe__pipe *p)
{
    writer_needs(p, wlowat(p));
}

/* Free space now (any thread; a snapshot). */
static size_t space(const struct mempipe__pipe *p)
{
    size_t used = mempipe__ring_used(&p->ring);
    return used >= p->ring.cap ? 0 : p->ring.cap - used;
}

ssize_t mempipe__pipe_readv(struct mempipe__pipe *p, const struct iovec *iov,
                            size_t total, const mempipe_waker *w)
{
    bool stored = false;

    if (total == 0) /* R8: nothing stored, nothing woken */
        return 0;
    if (p->ring.peeked != 0)
        return -EBUSY; /* R66: a copy read would take what a peek shows */
    for (;;) {
        /* Relaxed: a reset or a read-side shutdown is only ever seen as
         * soon as the fences of the wake (or the caller's own
         * synchronisation) make it visible. The fast path does not look:
         * the aborting writer (or the shutdown) took it away from this end
         * first (end.c). */
        unsigned fl = atomic_load_explicit(&p->flags, memory_order_relaxed);
        if (MEMPIPE__UNLIKELY(fl & (MEMPIPE__RESET | MEMPIPE__RCLOSED))) {
            if (stored)
                mempipe__slot_cancel(&p->rd);
            /* R38, R56: the bytes are gone, this call and every later one;
             * as the consumer this thread may discard them. This end's own
             * read-side shutdown reads EOF, a reset its error. */
            discard(p);
            return fl & MEMPIPE__RCLOSED ? 0 : MEMPIPE__RERR_OF(fl);
        }
        size_t n = mempipe__ring_readv(&p->ring, iov, total);
        if (n > 0) {
            if (stored)
                mempipe__slot_cancel(&p->rd);
            /* rpos is published (release); order it before the slot load. */
            full_fence();
            mempipe__pipe_progressed(p, MEMPIPE__ROLE_WRITER); /* R7 */
            return (ssize_t)n;
        }
        /*
         * End of stream is the closed bit in wpos (ring.h): the bit and the
         * final count arrive in one load, and no byte can be published after
         * the bit, so every byte written before the close is read before EOF
         * (R5), even when shutdown races a write on another thread.
         */
        int eof = mempipe__ring_eof(&p->ring);
        if (eof > 0) {
            if (stored)
                mempipe__slot_cancel(&p->rd);
            /* R5: EOF, every time; or the writer's error instead (R37).
             * Acquire, after the closed bit: the error was set with the
             * flag before that bit (close_write). */
            return MEMPIPE__RERR_OF(
                atomic_load_explicit(&p->flags, memory_order_acquire));
        }
        if (eof < 0)
            continue; /* closed, but bytes arrived since our read */
        if (w == NULL || stored)
            return -EAGAIN;                /* R6 */
        reader_waits_for(p, total, false); /* R65 */
        store(p, &p->rd, MEMPIPE__ROLE_READER, w);
        stored = true;
        full_fence(); /* then re-check: the waiter's half of R25 */
    }
}

ssize_t mempipe__pipe_read(struct mempipe__pipe *p, void *buf, size_t len,
                           const mempipe_waker *w)
{
    struct iovec one = {.iov_base = buf, .iov_len = len};
    return mempipe__pipe_readv(p, &one, len, w);
}

ssize_t mempipe__pipe_writev(struct mempipe__pipe *p, const struct iovec *iov,
                             int iovcnt, size_t total, const mempipe_waker *w)
{
    bool stored = false;
    size_t done = 0; /* bytes of iov accepted by earlier rounds */
    ssize_t rc;
    /* Only a write cut short by a full pipe goes round again after its
     * wake: then a waker that wake runs may close any end (R32), and this
     * frame keeps the pipe until the call returns. */
    struct mempipe__hold frame;
    bool held = false;

    if (p->ring.rsv != 0 && total != 0)
        return -EBUSY; /* R66: a copy write while a reservation is open (a
                        * zero-length one is R14's, as a read's is R8's) */
    for (;;) {
        /* Relaxed: a stale "open" only delays -EPIPE to the re-check after
         * the fence below, or to the next call. */
        unsigned fl = atomic_load_explicit(&p->flags, memory_order_relaxed);
        if (fl & (MEMPIPE__WCLOSED | MEMPIPE__RCLOSED)) {
            if (done > 0) {
                /* A short count after storing (R54): the close may have
                 * taken the waker before it was stored, so make sure it
                 * runs. */
                mempipe__pipe_progress(p, MEMPIPE__ROLE_WRITER);
                rc = (ssize_t)done;
                break;
            }
            if (stored)
                mempipe__slot_cancel(&p->wr);
            /* R10, R14: checked first. This end's own shutdown is -EPIPE;
             * a reader gone with an error (R37, R38) gives that error. */
            if (!(fl & MEMPIPE__WCLOSED) && MEMPIPE__WERR_OF(fl) != 0)
                return MEMPIPE__WERR_OF(fl);
            return -EPIPE;
        }
        if (total == 0)
            return 0; /* R14 */
        size_t want = total - done;
        size_t room = mempipe__ring_room(&p->ring, want);
        if (room > 0) {
            size_t put = want < room ? want : room;
            ptrdiff_t n = mempipe__ring_write(&p->ring, iov, iovcnt, done, put);
            if (n == -EPIPE)
                continue; /* closed meanwhile: the flags say how (R37) */
            if (n < 0) {  /* -ENOMEM before the first byte of this round */
                if (stored)
                    mempipe__slot_cancel(&p->wr);
                rc = done > 0 ? (ssize_t)done : n;
                break;
            }
            done += (size_t)n;
            /* Whole, or short for want of memory (R36), or nobody to tell:
             * nothing stays stored. Else the pipe filled part-way. */
            bool more = done < total && (size_t)n == put && w != NULL;
            if (!more && stored)
                mempipe__slot_cancel(&p->wr);
            if (more && !held) {
                mempipe__hold_enter(&frame, p);
                held = true;
            }
            /* wpos was published by a seq_cst compare-and-swap; order it
             * before the slot load. */
            mempipe__fence_after_rmw();
            mempipe__pipe_progressed(p, MEMPIPE__ROLE_READER); /* R13 */
            if (!more) {
                rc = (ssize_t)done; /* p untouched since the wake */
                break;
            }
            /* R54: store the waker as a pending write would, then fence and
             * look again: room freed since is written at once; none, and
             * the reader's next read will see the waker (the pattern of
             * R25), so the writer hears of the next free space. Each round
             * writes a byte at least, so the loop ends. */
            writer_waits_for(p); /* R65 */
            store(p, &p->wr, MEMPIPE__ROLE_WRITER, w);
            stored = true;
            full_fence();
            continue;
        }
        if (done > 0) { /* full after the re-check: stored (R54) */
            rc = (ssize_t)done;
            break;
        }
        if (w == NULL || stored)
            return -EAGAIN;  /* R11 */
        writer_waits_for(p); /* R65 */
        store(p, &p->wr, MEMPIPE__ROLE_WRITER, w);
        stored = true;
        full_fence(); /* then re-check room and flags */
    }
    if (held)
        mempipe__hold_leave(&frame); /* may free the pipe: the last touch */
    return rc;
}

ssize_t mempipe__pipe_write(struct mempipe__pipe *p, const void *buf,
                            size_t len, const mempipe_waker *w)
{
    /* A single slice; the cast drops const only for struct iovec's sake. */
    struct iovec one = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
    return mempipe__pipe_writev(p, &one, 1, len, w);
}

/*
 * Sets close flag `flag` with its outcome `extra`, unless that flag was set
 * already: the first close decides the outcome (an error set after the
 * peer saw EOF would break R5's "EOF on every call"). A compare-and-swap
 * loop, since the other close flag may change meanwhile.
 */
static void set_closed(struct mempipe__pipe *p, unsigned flag, unsigned extra)
{
    unsigned cur = atomic_load_explicit(&p->flags, memory_order_relaxed);
    do {
        if (cur & flag)
            return;
    } while (!atomic_compare_exchange_weak_explicit(
        &p->flags, &cur, cur | flag | extra, memory_order_release,
        memory_order_relaxed));
}

void mempipe__pipe_close_write(struct mempipe__pipe *p, unsigned extra)
{
    /* The flag first: it makes the writer's next call fail with -EPIPE.
     * Then the closed bit in wpos, which readers take as end of stream and
     * which makes a write racing on another thread publish nothing. The
     * fence then orders both before the slot loads (R25). */
    set_closed(p, MEMPIPE__WCLOSED, extra);
    mempipe__ring_close_write(&p->ring);
    full_fence();
    /* R17: the reader sees EOF; R18: a parked writer sees -EPIPE. */
    mempipe__pipe_progress(p, MEMPIPE__ROLE_READER | MEMPIPE__ROLE_WRITER);
}

void mempipe__pipe_reset(struct mempipe__pipe *p)
{
    unsigned cur = atomic_load_explicit(&p->flags, memory_order_relaxed);
    unsigned next;
    do /* the reader's error field becomes ECONNRESET, whatever it was */
        next = (cur & ~(0xfffu << MEMPIPE__RERR_SHIFT)) | MEMPIPE__WCLOSED |
               MEMPIPE__RESET | MEMPIPE__RERR(-ECONNRESET);
    while (!atomic_compare_exchange_weak_explicit(
        &p->flags, &cur, next, memory_order_release, memory_order_relaxed));
    mempipe__ring_close_write(&p->ring);
    full_fence();
    mempipe__pipe_progress(p, MEMPIPE__ROLE_READER | MEMPIPE__ROLE_WRITER);
}

void mempipe__pipe_mirror(struct mempipe__pipe *p, unsigned fl)
{
    unsigned cur = atomic_load_explicit(&p->flags, memory_order_relaxed);
    if ((fl & MEMPIPE__RESET) && !(cur & MEMPIPE__RESET)) {
        unsigned next;
        do /* as mempipe__pipe_reset, with the error the peer gave */
            next = (cur & ~(0xfffu << MEMPIPE__RERR_SHIFT)) | MEMPIPE__WCLOSED |
                   MEMPIPE__RESET | (fl & (0xfffu << MEMPIPE__RERR_SHIFT));
        while (!atomic_compare_exchange_weak_explicit(
            &p->flags, &cur, next, memory_order_release, memory_order_relaxed));
    } else if (fl & MEMPIPE__WCLOSED) {
        set_closed(p, MEMPIPE__WCLOSED, fl & (0xfffu << MEMPIPE__RERR_SHIFT));
    }
    if (fl & MEMPIPE__RCLOSED) {
        set_closed(p, MEMPIPE__RCLOSED, fl & (0xfffu << MEMPIPE__WERR_SHIFT));
        mempipe__ring_close_write(&p->ring);
    }
}

void mempipe__pipe_close_read(struct mempipe__pipe *p, unsigned extra)
{
    /*
     * Also close the stream in wpos before the drain below frees space: a
     * write racing on another thread that read the flags just before could
     * otherwise fill that space and report bytes accepted that nobody can
     * ever read. With the bit set its publish fails and it gets -EPIPE.
     */
    set_closed(p, MEMPIPE__RCLOSED, extra);
    mempipe__ring_close_write(&p->ring);
    /* R21: nobody will read these; free their segments now, before the
     * wake: once a waker has run, this call touches the pipe no more. */
    discard(p);
    full_fence();
    mempipe__pipe_progress(p, MEMPIPE__ROLE_WRITER); /* R19/R20: -EPIPE */
}

void mempipe__pipe_shut_read(struct mempipe__pipe *p)
{
    /* As close_read, but another thread may be reading this pipe right
     * now, so the bytes are left for the reader's next read (or its close)
     * to discard: only the consumer may move the read position. The closed
     * bit stops the writer's publishes at once (no byte is accepted that
     * nobody will read). */
    set_closed(p, MEMPIPE__RCLOSED, 0);
    mempipe__ring_close_write(&p->ring);
    full_fence();
    /* R56: a parked reader reads EOF, a parked writer -EPIPE. */
    mempipe__pipe_progress(p, MEMPIPE__ROLE_READER | MEMPIPE__ROLE_WRITER);
}

bool mempipe__pipe_read_ready(const struct mempipe__pipe *p)
{
    /* Acquire: pairs with the releases that set the flags. A reset sets
     * WCLOSED with RESET. The read mark (R65): so many bytes at least. */
    unsigned fl = atomic_load_explicit(&p->flags, memory_order_acquire);
    return (fl & (MEMPIPE__WCLOSED | MEMPIPE__RCLOSED)) != 0 ||
           mempipe__ring_used(&p->ring) >= rlowat(p);
}

bool mempipe__pipe_write_ready(const struct mempipe__pipe *p)
{
    return atomic_load_explicit(&p->flags, memory_order_acquire) != 0 ||
           space(p) >= wlowat(p);
}

int mempipe__pipe_poll_ready(struct mempipe__pipe *p, unsigned role,
                             const mempipe_waker *w)
{
    bool rd = role == MEMPIPE__ROLE_READER;
    struct mempipe__slot *s = rd ? &p->rd : &p->wr;
    bool stored = false;
    for (;;) {
        if (rd ? mempipe__pipe_read_ready(p) : mempipe__pipe_write_ready(p)) {
            if (stored)
                mempipe__slot_cancel(s);
            return 1;
        }
        if (w == NULL || stored)
            return -EAGAIN;
        /* The waiter's half of R25, as a pending read or write. */
        if (rd)
            reader_waits_for(p, SIZE_MAX, false);
        else
            writer_waits_for(p);
        store(p, s, role, w);
        stored = true;
        full_fence();
    }
}

int mempipe__pipe_poll_fill(struct mempipe__pipe *p, size_t need,
                            const mempipe_waker *w)
{
    bool stored = false;
    for (;;) {
        unsigned fl = atomic_load_explicit(&p->flags, memory_order_acquire);
        if ((fl & (MEMPIPE__WCLOSED | MEMPIPE__RCLOSED)) != 0 ||
            mempipe__ring_used(&p->ring) >= need) {
            if (stored)
                mempipe__slot_cancel(&p->rd);
            return 1;
        }
        if (w == NULL || stored)
            return -EAGAIN;
        reader_waits_for(p, need, false); /* need is at most the mark */
        store(p, &p->rd, MEMPIPE__ROLE_READER, w);
        stored = true;
        full_fence();
    }
}

/*
 * Whether every byte written was read (0), or can never be (the reader
 * gone or read-shut first: its error, else -EPIPE): the writer's view,
 * after an acquire of the flags that orders the positions read after it.
 */
static int drained(const struct mempipe__pipe *p, unsigned fl)
{
    size_t written = atomic_load_explicit(&p->ring.wpos, memory_order_acquire) &
                     ~MEMPIPE__RING_CLOSED;
    if (fl & MEMPIPE__RCLOSED) {
        /* The bytes read, not those discarded (ring.h's cut): all of them
         * were read before the reader went, or some never will be. */
        if (mempipe__ring_delivered(&p->ring) == written)
            return 0;
        return MEMPIPE__WERR_OF(fl) != 0 ? MEMPIPE__WERR_OF(fl) : -EPIPE;
    }
    return written == atomic_load_explicit(&p->ring.rpos, memory_order_acquire)
               ? 0
               : -EAGAIN;
}

int mempipe__pipe_poll_drained(struct mempipe__pipe *p, const mempipe_waker *w)
{
    bool stored = false;
    for (;;) {
        int rc =
            drained(p, atomic_load_explicit(&p->flags, memory_order_acquire));
        if (rc != -EAGAIN || w == NULL || stored) {
            if (stored && rc != -EAGAIN)
                mempipe__slot_cancel(&p->wr);
            return rc;
        }
        /* The read that empties the pipe wakes the writer's slot (R7, R65:
         * all of it free), the reader's close too (R19): the pattern of R25
         * once more. */
        writer_needs(p, p->ring.cap); /* all of it, whatever the mark */
        store(p, &p->wr, MEMPIPE__ROLE_WRITER, w);
        stored = true;
        full_fence();
    }
}

size_t mempipe__pipe_unread(const struct mempipe__pipe *p)
{
    /* Bytes the reader is gone or read-shut for are never read: none are
     * waiting for it (SIOCOUTQ after the peer's close). */
    if (atomic_load_explicit(&p->flags, memory_order_acquire) &
        MEMPIPE__RCLOSED)
        return 0;
    return mempipe__ring_used(&p->ring);
}

/*
 * Whether the reader's stored waker has what it waits for (R65): a close,
 * or wpos at its target. A waker not woken stays stored for the next
 * progress, which asks again; what it waits for only comes closer until
 * the reader acts, so no wake is lost. Relaxed loads, after the caller's
 * full fence: the waiter stored the target before its own fence (R25).
 */
static bool reader_wakes(const struct mempipe__pipe *p)
{
    if (atomic_load_explicit(&p->flags, memory_order_relaxed) &
        (MEMPIPE__WCLOSED | MEMPIPE__RCLOSED))
        return true;
    size_t w = atomic_load_explicit(&p->ring.wpos, memory_order_relaxed);
    return (w & MEMPIPE__RING_CLOSED) != 0 ||
           w >= atomic_load_explicit(&p->ring.rwant, memory_order_relaxed);
}

/* The same for the writer's: a close, or wneed bytes free. */
static bool writer_wakes(const struct mempipe__pipe *p)
{
    if (atomic_load_explicit(&p->flags, memory_order_relaxed) != 0)
        return true;
    return space(p) >=
           atomic_load_explicit(&p->ring.wneed, memory_order_relaxed);
}

void mempipe__pipe_progress(struct mempipe__pipe *p, unsigned roles)
{
    /* A waker may close any end of this pipe, the last one included; the
     * frame keeps the memory until the wakes and the fd hook are done. */
    struct mempipe__hold frame;
    mempipe__hold_enter(&frame, p);
    if ((roles & MEMPIPE__ROLE_READER) && reader_wakes(p))
        mempipe__slot_wake(&p->rd);
    if ((roles & MEMPIPE__ROLE_WRITER) && writer_wakes(p))
        mempipe__slot_wake(&p->wr);
    /* After the wakes, so after the caller's fence (fd.c argues why that
     * order suffices). An unwatched pipe makes no syscall. */
    /* Acquire: pairs with the release that published the observer, so it
     * is initialised. */
    struct mempipe__observer *o =
        atomic_load_explicit(&p->watch, memory_order_acquire);
    if (o != NULL)
        o->notify(o, p);
    mempipe__hold_leave(&frame);
}

size_t mempipe__pipe_readable(const struct mempipe__pipe *p)
{
    /* R38: after the writer's abort nothing is readable, though the bytes
     * stay allocated until the reader's next read or close discards them;
     * the same after the reader's own read-side shutdown (R56). */
    if (atomic_load_explicit(&p->flags, memory_order_acquire) &
        (MEMPIPE__RESET | MEMPIPE__RCLOSED))
        return 0; /* R56 too: a read-side shutdown discards them */
    /* rpos and wpos are two loads: while both sides run, the difference can
     * overshoot; L never exceeds M (R1). */
    size_t used = mempipe__ring_used(&p->ring);
    return used > p->ring.cap ? p->ring.cap : used;
}

size_t mempipe__pipe_writable(const struct mempipe__pipe *p)
{
    if (atomic_load_explicit(&p->flags, memory_order_acquire) != 0)
        return 0;
    size_t used = mempipe__ring_used(&p->ring);
    return used >= p->ring.cap ? 0 : p->ring.cap - used;
}

unsigned mempipe__pipe_flags(const struct mempipe__pipe *p)
{
    return atomic_load_explicit(&p->flags, memory_order_acquire);
}

/* ---- zero-copy windows (R62-R64) ---------------------------------------- */

int mempipe__pipe_reserve(struct mempipe__pipe *p, size_t want,
                          struct iovec iov[2], const mempipe_waker *w)
{
    bool stored = false;
    if (p->ring.rsv != 0)
        return -EINVAL; /* a second reserve before the commit */
    for (;;) {
        /* As a write: closes first (R10), with the reader's error. */
        unsigned fl = atomic_load_explicit(&p->flags, memory_order_relaxed);
        if (fl & (MEMPIPE__WCLOSED | MEMPIPE__RCLOSED)) {
            if (stored)
                mempipe__slot_cancel(&p->wr);
            if (!(fl & MEMPIPE__WCLOSED) && MEMPIPE__WERR_OF(fl) != 0)
                return MEMPIPE__WERR_OF(fl);
            return -EPIPE;
        }
        int spans = 0;
        ptrdiff_t n = mempipe__ring_reserve(&p->ring, want, iov, &spans);
        if (n != 0) {
            if (stored)
                mempipe__slot_cancel(&p->wr);
            return n < 0 ? (int)n : spans; /* -ENOMEM, or the spans */
        }
        if (w == NULL || stored)
            return -EAGAIN; /* full */
        writer_waits_for(p);
        store(p, &p->wr, MEMPIPE__ROLE_WRITER, w);
        stored = true;
        full_fence(); /* then re-check room and flags */
    }
}

ssize_t mempipe__pipe_commit(struct mempipe__pipe *p, size_t n)
{
    if (p->ring.rsv == 0 || n > p->ring.rsv)
        return -EINVAL; /* no reservation, or more than it holds */
    ptrdiff_t rc = mempipe__ring_commit(&p->ring, n);
    /* Nothing to publish, so the ring did not look: a commit of 0 after a
     * close fails too (R62; R14's zero-length write). Acquire: as below. */
    if (n == 0 && (atomic_load_explicit(&p->flags, memory_order_acquire) &
                   (MEMPIPE__WCLOSED | MEMPIPE__RCLOSED)) != 0)
        rc = -EPIPE;
    if (rc == -EPIPE) {
        /* Closed meanwhile: the reservation is over, nothing published. */
        unsigned fl = atomic_load_explicit(&p->flags, memory_order_acquire);
        if (!(fl & MEMPIPE__WCLOSED) && MEMPIPE__WERR_OF(fl) != 0)
            return MEMPIPE__WERR_OF(fl);
        return -EPIPE;
    }
    if (rc > 0) {
        /* wpos was published by a seq_cst compare-and-swap. */
        mempipe__fence_after_rmw();
        mempipe__pipe_progressed(p, MEMPIPE__ROLE_READER); /* R13 */
    }
    return rc;
}

int mempipe__pipe_peek(struct mempipe__pipe *p, struct iovec iov[2], size_t max,
                       const mempipe_waker *w)
{
    bool stored = false;
    for (;;) {
        unsigned fl = atomic_load_explicit(&p->flags, memory_order_relaxed);
        if (MEMPIPE__UNLIKELY(fl & (MEMPIPE__RESET | MEMPIPE__RCLOSED))) {
            if (stored)
                mempipe__slot_cancel(&p->rd);
            /* As a read (R38, R56), but an open peek's bytes stay until
             * its consume: the caller may still be looking at them. */
            if (p->ring.peeked == 0)
                discard(p);
            return fl & MEMPIPE__RCLOSED ? 0 : MEMPIPE__RERR_OF(fl);
        }
        /* R64: bytes the reader examined are not news: while no byte came
         * past them, wait; once the stream is closed, none will, so show
         * what is left. */
        size_t wp = atomic_load_explicit(&p->ring.wpos, memory_order_acquire);
        size_t ex = atomic_load_explicit(&p->ring.rexam, memory_order_relaxed);
        bool closed = (wp & MEMPIPE__RING_CLOSED) != 0;
        int spans = 0;
        if (closed || (wp & ~MEMPIPE__RING_CLOSED) > ex) {
            if (mempipe__ring_peek(&p->ring, iov, max, &spans) > 0) {
                if (stored)
                    mempipe__slot_cancel(&p->rd);
                return spans;
            }
            if (closed) { /* nothing left after the closed bit: EOF (R5) */
                if (stored)
                    mempipe__slot_cancel(&p->rd);
                return MEMPIPE__RERR_OF(
                    atomic_load_explicit(&p->flags, memory_order_acquire));
            }
        }
        if (w == NULL || stored)
            return -EAGAIN;
        /* The target: the read mark's worth, and past what was examined. */
        reader_waits_for(p, max, true);
        store(p, &p->rd, MEMPIPE__ROLE_READER, w);
        stored = true;
        full_fence(); /* then re-check: the waiter's half of R25 */
    }
}

int mempipe__pipe_consume(struct mempipe__pipe *p, size_t consumed,
                          size_t examined)
{
    size_t peeked = p->ring.peeked;
    if (peeked == 0 || consumed > examined || examined > peeked)
        return -EINVAL; /* no peek, or more than it showed */
    size_t pos = atomic_load_explicit(&p->ring.rpos, memory_order_relaxed);
    /* Relaxed: read by this thread's next peek, and by the writer's wake
     * only through rwant, which a waiting peek sets from it. */
    atomic_store_explicit(&p->ring.rexam, pos + examined, memory_order_relaxed);
    mempipe__ring_consume(&p->ring, consumed);
    if (consumed > 0) {
        mempipe__full_fence(); /* rpos before the slot load (R25) */
        mempipe__pipe_progressed(p, MEMPIPE__ROLE_WRITER); /* R7 */
    }
    return 0;
}

int mempipe__pipe_set_lowat(struct mempipe__pipe *p, unsigned role, size_t n)
{
    if (n == 0 || n > p->ring.cap || n > UINT32_MAX)
        return -EINVAL; /* a mark the pipe can never reach */
    bool rd = role == MEMPIPE__ROLE_READER;
    atomic_store_explicit(rd ? &p->ring.rlowat : &p->ring.wlowat, (unsigned)n,
                          memory_order_relaxed);
    /* A waker this side has stored waits for the new mark from now on, as
     * the call that stored it would (min(n, its len); a peek's also past
     * the examined bytes), and is woken at once if that is met already:
     * the owner's own progress, which asks the gate again (and the fds,
     * which follow the marks). */
    if (rd)
        reader_target(p);
    else
        writer_needs(p, n);
    full_fence();
    mempipe__pipe_progress(p, role);
    return 0;
}
