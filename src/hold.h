/* SPDX-License-Identifier: MIT */
/*
 * hold: deferred free (SPEC R32). A pipe's memory must outlive every library
 * call that is still running on it, including the call whose waker closed
 * the pipe's last end: after the waker returns, that call still touches the
 * pipe (the slot's in-flight count, the second wake of a close, the fd hook,
 * the next round of a blocking call).
 *
 * The calls that can run a waker and go on touching the pipe afterwards
 * open a *hold frame* on their own stack for as long as they do: the
 * progress epilogue's slow path (pipe.c), around the wakes and the fd hook,
 * and the blocking calls (block.c), around their whole loop. The frames of a
 * thread form a list, innermost first, in a thread-local; entering and
 * leaving one is a few plain stores, no atomic and no allocation, so only
 * slow paths pay for it and the inlined fast paths never do.
 *
 * A close that runs on a thread inside a frame on the same pipe does all of
 * its work at once except the last step, dropping its reference: that step
 * is handed to the outermost such frame, which drops it as it leaves. So the
 * memory is freed only after the outermost call on that pipe returns.
 *
 * Why that covers other threads too: a thread can only be inside a call on
 * a pipe while the end it calls is open (closing an end during another
 * thread's call on it is a caller bug), so a close on another thread cannot
 * free the pipe under it — unless that very end was closed by a waker
 * running inside the call, on the call's own thread, whose reference is then
 * held by that thread's frame until the call returns.
 */
#ifndef MEMPIPE_HOLD_H
#define MEMPIPE_HOLD_H

#include <stdbool.h>

struct mempipe__pipe;

struct mempipe__hold {
    const struct mempipe__pipe *pipe; /* the pipe this call is working on */
    struct mempipe__hold *outer;      /* the frame around it, or NULL */
    /* References handed over by closes inside this frame, and how to drop
     * them when it leaves (only an outermost frame of its pipe gets any). */
    unsigned deferred;
    void (*drop)(void *obj, unsigned n);
    void *obj;
};

/* Opens frame h (on the caller's stack) for a call working on p. */
void mempipe__hold_enter(struct mempipe__hold *h,
                         const struct mempipe__pipe *p);

/*
 * Closes frame h, the innermost; then drops the references handed to it, if
 * any (which may free the pipe: h's call must touch it no more).
 */
void mempipe__hold_leave(struct mempipe__hold *h);

/*
 * A close's last step. If this thread is inside a frame on pipe p1 or p2 (the
 * pipes of the end being closed; either may be NULL), hands one reference to
 * the outermost such frame, which will call drop(obj, n) as it leaves, and
 * returns true. Otherwise returns false: the caller drops it now.
 */
bool mempipe__hold_defer(const struct mempipe__pipe *p1,
                         const struct mempipe__pipe *p2,
                         void (*drop)(void *obj, unsigned n), void *obj);

#endif
