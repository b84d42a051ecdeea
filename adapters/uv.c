/* SPDX-License-Identifier: MIT */
/*
 * The libuv adapter: a watch is one uv_poll_t per direction over the end's
 * level-triggered fds (readable when the end can read, writable fd readable
 * when the end can write), so libuv's own epoll does the waiting and the
 * core needs no knowledge of libuv. The waker is a one-line uv_async_send.
 */
#include "mempipe/uv.h"

#include <errno.h>
#include <stddef.h>

static void on_poll(uv_poll_t *h, int status, int events)
{
    mempipe_uv_watch *w = h->data;
    (void)events; /* always UV_READABLE: both fds signal with POLLIN */
    int which = h == &w->rpoll ? MEMPIPE_UV_READABLE : MEMPIPE_UV_WRITABLE;
    if (status < 0) {
        w->cb(w, status, 0);
        return;
    }
    w->cb(w, 0, which);
}

/* Makes the handle for one direction over fd. */
static int init_dir(uv_loop_t *loop, mempipe_uv_watch *w, int which, int fd)
{
    uv_poll_t *h = which == MEMPIPE_UV_READABLE ? &w->rpoll : &w->wpoll;
    int rc = uv_poll_init(loop, h, fd);
    if (rc < 0)
        return rc;
    h->data = w;
    w->have |= (unsigned char)which;
    w->open |= (unsigned char)which;
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    mempipe_uv_watch *w = h->data;
    w->open &=
        (unsigned char)~((uv_poll_t *)h == &w->rpoll ? MEMPIPE_UV_READABLE
                                                     : MEMPIPE_UV_WRITABLE);
    if (w->open == 0 && w->close_cb != NULL)
        w->close_cb(w);
}

int mempipe_uv_watch_init(uv_loop_t *loop, mempipe_uv_watch *w, mempipe *end)
{
    if (loop == NULL || w == NULL || end == NULL)
        return -EINVAL;
    void *data = w->data; /* the caller may have set it already */
    *w = (mempipe_uv_watch){0};
    w->data = data;
    w->end = end;
    /*
     * Both fds first, so that an error there leaves nothing to undo. A
     * simplex end has one direction: -EBADF for the other is expected.
     */
    int rfd = mempipe_readable_fd(end);
    int wfd = mempipe_writable_fd(end);
    if ((rfd < 0 && rfd != -EBADF) || (wfd < 0 && wfd != -EBADF) ||
        (rfd < 0 && wfd < 0)) {
        w->end = NULL;
        return rfd < 0 && rfd != -EBADF ? rfd : wfd;
    }
    int rc = rfd >= 0 ? init_dir(loop, w, MEMPIPE_UV_READABLE, rfd) : 0;
    if (rc == 0 && wfd >= 0)
        rc = init_dir(loop, w, MEMPIPE_UV_WRITABLE, wfd);
    if (rc < 0) {
        /*
         * uv_poll_init of the second handle failed (the fd is already
         * watched in this loop, -EEXIST): the first one must be closed, and
         * its memory, inside w, stays in use until the loop runs its close.
         */
        mempipe_uv_watch_close(w, NULL);
        return rc;
    }
    return 0;
}

int mempipe_uv_watch_start(mempipe_uv_watch *w, int events,
                           mempipe_uv_watch_cb cb)
{
    if (w == NULL || cb == NULL || w->end == NULL ||
        (events & ~(MEMPIPE_UV_READABLE | MEMPIPE_UV_WRITABLE)) != 0)
        return -EINVAL;
    if ((events & ~w->have) != 0)
        return -EBADF;
    w->cb = cb;
    static const int dirs[2] = {MEMPIPE_UV_READABLE, MEMPIPE_UV_WRITABLE};
    for (int i = 0; i < 2; i++) {
        int which = dirs[i];
        if (!(w->have & which))
            continue;
        uv_poll_t *h = which == MEMPIPE_UV_READABLE ? &w->rpoll : &w->wpoll;
        int rc = (events & which) ? uv_poll_start(h, UV_READABLE, on_poll)
                                  : uv_poll_stop(h);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int mempipe_uv_watch_stop(mempipe_uv_watch *w)
{
    if (w == NULL || w->end == NULL)
        return -EINVAL;
    if (w->have & MEMPIPE_UV_READABLE)
        uv_poll_stop(&w->rpoll);
    if (w->have & MEMPIPE_UV_WRITABLE)
        uv_poll_stop(&w->wpoll);
    return 0;
}

void mempipe_uv_watch_close(mempipe_uv_watch *w, mempipe_uv_close_cb close_cb)
{
    if (w == NULL || w->end == NULL)
        return;
    /*
     * uv_close() stops the poll handle at once (epoll forgets the fd before
     * uv_close returns), so the end, which owns the fds, may be closed right
     * after this call; only the handles' memory waits for the close
     * callbacks.
     */
    w->close_cb = close_cb;
    w->end = NULL; /* start/stop/close again: -EINVAL, not a double close */
    if (w->have & MEMPIPE_UV_READABLE)
        uv_close((uv_handle_t *)&w->rpoll, on_handle_closed);
    if (w->have & MEMPIPE_UV_WRITABLE)
        uv_close((uv_handle_t *)&w->wpoll, on_handle_closed);
}

static void async_wake(void *ctx)
{
    /* Thread-safe and async-signal-safe; coalesces repeated sends. */
    uv_async_send(ctx);
}

mempipe_waker mempipe_uv_waker(uv_async_t *async)
{
    mempipe_waker w = {async_wake, async};
    return w;
}
