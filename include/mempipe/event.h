/* SPDX-License-Identifier: MIT */
/*
 * mempipe/event.h — drive mempipe ends from a libevent event_base.
 *
 * Link with -lmempipe_event (pkg-config mempipe-event, CMake target
 * mempipe::mempipe_event) and libevent (libevent_pthreads for the waker).
 *
 * Two ways, freely mixed:
 *
 * 1. A watch: persistent, level-triggered events over the end's pollable
 *    fds (mempipe_readable_fd(), mempipe_writable_fd()). The callback gets
 *    EV_READ while the end can read (bytes buffered, or EOF) and EV_WRITE
 *    while it can write (free space, or the pipe is closed so the write
 *    fails with -EPIPE), on every loop iteration until it reads (writes)
 *    until -EAGAIN or deletes that direction. Spurious calls are possible:
 *    -EAGAIN from the poll API means "wait for the next one".
 *
 *        mempipe_event_watch *w =
 *            mempipe_event_watch_new(base, end, on_ready, arg);
 *        mempipe_event_watch_add(w, EV_READ);
 *        ...
 *        mempipe_event_watch_free(w);  then mempipe_close(end)
 *
 * 2. A waker that completes through event_active(): pass
 *    mempipe_event_waker(ev) to the poll calls, where ev is an event of
 *    yours, for example event_new(base, -1, 0, on_wake, arg). When the call
 *    can make progress the peer's thread (any thread) activates ev and
 *    on_wake runs on the loop thread, which polls again. Activations
 *    coalesce while ev is active: poll every pending direction in on_wake.
 *    Activating from another thread needs libevent's locking: call
 *    evthread_use_pthreads() once before event_base_new().
 *
 * Threads: a watch belongs to its base's loop thread. The peer end may be
 * used from any thread with any API; its progress reaches the loop through
 * the fds or the waker.
 */
#ifndef MEMPIPE_EVENT_H
#define MEMPIPE_EVENT_H

#include <event2/event.h>

#include "../mempipe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mempipe_event_watch mempipe_event_watch;

/*
 * Called on the loop thread with what == EV_READ (the end can read) or
 * EV_WRITE (the end can write), one direction per call, and the arg given
 * to mempipe_event_watch_new(). It may add or delete directions, free the
 * watch, and make any mempipe call on the end (but close the end only after
 * freeing the watch).
 */
typedef void (*mempipe_event_cb)(mempipe_event_watch *w, short what, void *arg);

/*
 * Makes a watch of end on base: asks the end for the fds of the directions
 * it has (both for a duplex or loopback end, one for a simplex end) and
 * makes one persistent event per fd. Nothing is watched until
 * mempipe_event_watch_add(). The end stays the caller's and must stay open
 * until the watch is freed.
 * Returns the watch, or NULL if an argument is NULL, an fd could not be
 * made, or memory is short (then nothing is left to free).
 * Loop thread (or before the loop runs).
 */
MEMPIPE_EXTERN mempipe_event_watch *
mempipe_event_watch_new(struct event_base *base, mempipe *end,
                        mempipe_event_cb cb, void *arg);

/*
 * Starts watching the directions in what (EV_READ | EV_WRITE); directions
 * already watched stay watched.
 * Returns 0; -EINVAL for a NULL watch or other bits; -EBADF for a direction
 * the end does not have (a simplex reader cannot become writable); -EIO if
 * event_add() failed. Loop thread.
 */
MEMPIPE_EXTERN int mempipe_event_watch_add(mempipe_event_watch *w, short what);

/* Stops watching the directions in what. Returns 0, -EINVAL, or -EIO if
 * event_del() failed. Loop thread. */
MEMPIPE_EXTERN int mempipe_event_watch_del(mempipe_event_watch *w, short what);

/* The end a watch was made for. */
MEMPIPE_EXTERN mempipe *mempipe_event_watch_end(const mempipe_event_watch *w);

/*
 * Deletes the events and frees the watch; no callback runs after it
 * returns. The end may be closed afterwards. NULL is a no-op. Loop thread.
 */
MEMPIPE_EXTERN void mempipe_event_watch_free(mempipe_event_watch *w);

/*
 * A waker that calls event_active(ev, EV_READ, 0); any thread may call it
 * once evthread_use_pthreads() was in force when ev's base was made. ev
 * must stay allocated while a waker made from it may be stored in a pipe:
 * close the mempipe end (after which none of its wakers runs, R22) before
 * event_free(ev).
 */
MEMPIPE_EXTERN mempipe_waker mempipe_event_waker(struct event *ev);

#ifdef __cplusplus
}
#endif

#endif /* MEMPIPE_EVENT_H */
