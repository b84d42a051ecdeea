/* SPDX-License-Identifier: MIT */
/*
 * mempipe/uv.h — drive mempipe ends from a libuv loop.
 *
 * Link with -lmempipe_uv (pkg-config mempipe-uv, CMake target
 * mempipe::mempipe_uv) and libuv.
 *
 * Two ways, freely mixed:
 *
 * 1. A watch: readiness callbacks for one end, from the end's pollable fds
 *    (mempipe_readable_fd(), mempipe_writable_fd()) under uv_poll_t handles.
 *    Level-triggered, like uv_poll: while the end can read (bytes buffered,
 *    or EOF), MEMPIPE_UV_READABLE is reported on every loop iteration until
 *    the callback reads it empty or stops the watch; the same for
 *    MEMPIPE_UV_WRITABLE while the end can write (free space, or the pipe is
 *    closed so the write fails with -EPIPE). The callback then calls the
 *    poll API (mempipe_poll_read(end, buf, len, NULL) and so on); a spurious
 *    callback is possible, so -EAGAIN just means "wait for the next one".
 *
 *        mempipe_uv_watch w;
 *        mempipe_uv_watch_init(loop, &w, end);
 *        mempipe_uv_watch_start(&w, MEMPIPE_UV_READABLE, on_ready);
 *        ...
 *        mempipe_uv_watch_close(&w, on_closed);  then mempipe_close(end)
 *
 * 2. A waker that completes through uv_async_send(): pass
 *    mempipe_uv_waker(&async) to the poll calls; when the call can make
 *    progress the peer's thread (any thread) sends the async handle and its
 *    callback runs on the loop thread, which polls again. uv_async_send()
 *    coalesces, so one callback may stand for several wakes: poll every
 *    pending direction in it.
 *
 * Threads: a watch belongs to its loop's thread, like any libuv handle. The
 * peer end may be used from any thread with any API (blocking calls
 * included); its progress reaches the loop through the fd or the async.
 */
#ifndef MEMPIPE_UV_H
#define MEMPIPE_UV_H

#include <uv.h>

#include "../mempipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Readiness bits, for mempipe_uv_watch_start() and the callback. */
#define MEMPIPE_UV_READABLE 1 /* the end can read: bytes or EOF */
#define MEMPIPE_UV_WRITABLE 2 /* the end can write: space, or -EPIPE */

typedef struct mempipe_uv_watch mempipe_uv_watch;

/*
 * Called on the loop thread. status is 0, or a negative libuv error from
 * uv_poll (then events is 0). events is MEMPIPE_UV_READABLE or
 * MEMPIPE_UV_WRITABLE (one direction per call). The callback may call
 * mempipe_uv_watch_start/stop/close on the watch, and any mempipe call on
 * the end (but not mempipe_close(end) before mempipe_uv_watch_close()).
 */
typedef void (*mempipe_uv_watch_cb)(mempipe_uv_watch *w, int status,
                                    int events);
typedef void (*mempipe_uv_close_cb)(mempipe_uv_watch *w);

/*
 * A watch. The caller allocates it (anywhere: stack, heap, inside its own
 * struct) and keeps it in place from init until the close callback ran.
 * Only `data` is public: it is the caller's, never touched by the library.
 */
struct mempipe_uv_watch {
    void *data;
    /* private */
    mempipe *end;
    uv_poll_t rpoll;    /* over mempipe_readable_fd(end) */
    uv_poll_t wpoll;    /* over mempipe_writable_fd(end) */
    unsigned char have; /* MEMPIPE_UV_* bits whose handle is initialized */
    unsigned char open; /* handles not closed yet */
    mempipe_uv_watch_cb cb;
    mempipe_uv_close_cb close_cb;
};

/*
 * Prepares w to watch end from loop: asks the end for the fds of the
 * directions it has (both for a duplex or loopback end, one for a simplex
 * end) and makes a uv_poll_t handle for each. Nothing is watched until
 * mempipe_uv_watch_start(). The end stays the caller's and must stay open
 * until mempipe_uv_watch_close() has been called.
 * Returns 0, or a negative errno: -EINVAL for a NULL argument, an error of
 * mempipe_readable_fd()/mempipe_writable_fd() (-EMFILE, -ENOMEM, ...), or
 * one of uv_poll_init() (-EEXIST: another handle of this loop already
 * polls the end's fd, for example a second watch of the same end). On
 * error there is nothing to close, but after a uv_poll_init() error w must
 * stay in place until the loop has run once (a handle may be closing).
 * Loop thread.
 */
MEMPIPE_EXTERN int mempipe_uv_watch_init(uv_loop_t *loop, mempipe_uv_watch *w,
                                         mempipe *end);

/*
 * Watches the directions in events (MEMPIPE_UV_READABLE |
 * MEMPIPE_UV_WRITABLE), replacing the previous set (a direction left out is
 * stopped), and sets the callback. events == 0 is mempipe_uv_watch_stop().
 * Returns 0; -EINVAL for a NULL watch or callback, unknown bits, or a watch
 * that is closing; -EBADF for a direction the end does not have (a simplex
 * reader cannot become writable); or a uv_poll_start() error.
 * Loop thread.
 */
MEMPIPE_EXTERN int mempipe_uv_watch_start(mempipe_uv_watch *w, int events,
                                          mempipe_uv_watch_cb cb);

/* Stops both directions; the watch can be started again. Returns 0 or
 * -EINVAL (NULL). Loop thread. */
MEMPIPE_EXTERN int mempipe_uv_watch_stop(mempipe_uv_watch *w);

/*
 * Stops and closes the watch's handles; no callback runs after this
 * returns. Once it has returned the end may be closed; once close_cb
 * (may be NULL) has run, on a later loop iteration, the watch's memory is
 * the caller's again. Loop thread.
 */
MEMPIPE_EXTERN void mempipe_uv_watch_close(mempipe_uv_watch *w,
                                           mempipe_uv_close_cb close_cb);

/*
 * A waker that calls uv_async_send(async); any thread may call it. The
 * async handle must be initialized (uv_async_init) and stay open while a
 * waker made from it may be stored in a pipe: close the mempipe end (after
 * which none of its wakers runs, R22) before uv_close() on the async.
 */
MEMPIPE_EXTERN mempipe_waker mempipe_uv_waker(uv_async_t *async);

#ifdef __cplusplus
}
#endif

#endif /* MEMPIPE_UV_H */
