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

ssize_t mempipe__pipe_read(struct mempipe__pipe *p, void *buf, size_t len,
                           const mempipe_waker *w)
{
    bool stored = false;

    if (len == 0) /* R8: nothing stored, nothing woken */
        return 0;
    for (;;) {
        /* Relaxed: a reset is only ever seen as soon as the fences of the
         * wake (or the caller's own synchronisation) make it visible. The
         * fast path does not look: an aborting writer took it away from
         * this end first (end.c). */
        unsigned fl = atomic_load_explicit(&p->flags, memory_order_relaxed);
        if (MEMPIPE__UNLIKELY(fl & MEMPIPE__RESET)) {
            if (stored)
                mempipe__slot_cancel(&p->rd);
            /* R38: the bytes are gone, this call and every later one. As
             * the consumer this thread may discard them. Release: the cut
             * before the read position moves past it (feat.c reads the
             * position first). */
            size_t none = SIZE_MAX;
            atomic_compare_exchange_strong_explicit(
                &p->ring.cut, &none,
                atomic_load_explicit(&p->ring.rpos, memory_order_relaxed),
                memory_order_release, memory_order_relaxed);
            while (mempipe__ring_read(&p->ring, NULL, (size_t)-1) > 0)
                ;
            return MEMPIPE__RERR_OF(fl);
        }
        size_t n = mempipe__ring_read(&p->ring, buf, len);
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
            return -EAGAIN; /* R6 */
        mempipe__slot_store(&p->rd, w);
        stored = true;
        full_fence(); /* then re-check: the waiter's half of R25 */
    }
}

ssize_t mempipe__pipe_writev(struct mempipe__pipe *p, const struct iovec *iov,
                             int iovcnt, size_t total, const mempipe_waker *w)
{
    bool stored = false;

    for (;;) {
        /* Relaxed: a stale "open" only delays -EPIPE to the re-check after
         * the fence below, or to the next call. */
        unsigned fl = atomic_load_explicit(&p->flags, memory_order_relaxed);
        if (fl & (MEMPIPE__WCLOSED | MEMPIPE__RCLOSED)) {
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
        size_t room = mempipe__ring_room(&p->ring, total);
        if (room > 0) {
            if (stored)
                mempipe__slot_cancel(&p->wr);
            ptrdiff_t n = mempipe__ring_write(&p->ring, iov, iovcnt,
                                              total < room ? total : room);
            if (n == -EPIPE)
                continue; /* closed meanwhile: the flags say how (R37) */
            if (n < 0)
                return n; /* -ENOMEM before the first byte */
            /* wpos was published by a seq_cst compare-and-swap; order it
             * before the slot load. */
            mempipe__fence_after_rmw();
            mempipe__pipe_progressed(p, MEMPIPE__ROLE_READER); /* R13 */
            return n;
        }
        if (w == NULL || stored)
            return -EAGAIN; /* R11 */
        mempipe__slot_store(&p->wr, w);
        stored = true;
        full_fence(); /* then re-check room and flags */
    }
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
    while (mempipe__ring_read(&p->ring, NULL, (size_t)-1) > 0)
        ;
    full_fence();
    mempipe__pipe_progress(p, MEMPIPE__ROLE_WRITER); /* R19/R20: -EPIPE */
}

void mempipe__pipe_progress(struct mempipe__pipe *p, unsigned roles)
{
    /* A waker may close any end of this pipe, the last one included; the
     * frame keeps the memory until the wakes and the fd hook are done. */
    struct mempipe__hold frame;
    mempipe__hold_enter(&frame, p);
    if (roles & MEMPIPE__ROLE_READER)
        mempipe__slot_wake(&p->rd);
    if (roles & MEMPIPE__ROLE_WRITER)
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
     * stay allocated until the reader's next read or close discards them. */
    if (atomic_load_explicit(&p->flags, memory_order_acquire) & MEMPIPE__RESET)
        return 0;
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
