/* SPDX-License-Identifier: MIT */
/*
 * The libevent adapter: a watch is one persistent EV_READ event per
 * direction over the end's level-triggered fds (both signal with POLLIN),
 * so the base's own backend does the waiting and the core needs no
 * knowledge of libevent. The waker is one event_active() call.
 */
#include "mempipe/event.h"

#include <errno.h>
#include <stdlib.h>

struct mempipe_event_watch {
    mempipe *end;
    struct event *rev; /* over mempipe_readable_fd(end), or NULL */
    struct event *wev; /* over mempipe_writable_fd(end), or NULL */
    mempipe_event_cb cb;
    void *arg;
};

static void on_read_fd(evutil_socket_t fd, short what, void *ctx)
{
    mempipe_event_watch *w = ctx;
    (void)fd;
    (void)what;
    w->cb(w, EV_READ, w->arg);
}

static void on_write_fd(evutil_socket_t fd, short what, void *ctx)
{
    mempipe_event_watch *w = ctx;
    (void)fd;
    (void)what;
    w->cb(w, EV_WRITE, w->arg);
}

mempipe_event_watch *mempipe_event_watch_new(struct event_base *base,
                                             mempipe *end, mempipe_event_cb cb,
                                             void *arg)
{
    if (base == NULL || end == NULL || cb == NULL)
        return NULL;
    /* A simplex end has one direction: -EBADF for the other is expected. */
    int rfd = mempipe_readable_fd(end);
    int wfd = mempipe_writable_fd(end);
    if ((rfd < 0 && rfd != -EBADF) || (wfd < 0 && wfd != -EBADF) ||
        (rfd < 0 && wfd < 0))
        return NULL;
    mempipe_event_watch *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->end = end;
    w->cb = cb;
    w->arg = arg;
    /* Both fds report readiness as "readable", whichever direction. */
    if (rfd >= 0)
        w->rev = event_new(base, rfd, EV_READ | EV_PERSIST, on_read_fd, w);
    if (wfd >= 0)
        w->wev = event_new(base, wfd, EV_READ | EV_PERSIST, on_write_fd, w);
    if ((rfd >= 0 && w->rev == NULL) || (wfd >= 0 && w->wev == NULL)) {
        mempipe_event_watch_free(w);
        return NULL;
    }
    return w;
}

/* event_add (add) or event_del on the events picked by what. */
static int each(mempipe_event_watch *w, short what, int add)
{
    if (w == NULL || (what & ~(EV_READ | EV_WRITE)) != 0)
        return -EINVAL;
    if (((what & EV_READ) && w->rev == NULL) ||
        ((what & EV_WRITE) && w->wev == NULL))
        return -EBADF;
    struct event *evs[2] = {(what & EV_READ) ? w->rev : NULL,
                            (what & EV_WRITE) ? w->wev : NULL};
    for (int i = 0; i < 2; i++) {
        if (evs[i] == NULL)
            continue;
        int rc = add ? event_add(evs[i], NULL) : event_del(evs[i]);
        if (rc != 0)
            return -EIO; /* libevent gives no errno */
    }
    return 0;
}

int mempipe_event_watch_add(mempipe_event_watch *w, short what)
{
    return each(w, what, 1);
}

int mempipe_event_watch_del(mempipe_event_watch *w, short what)
{
    return each(w, what, 0);
}

mempipe *mempipe_event_watch_end(const mempipe_event_watch *w)
{
    return w != NULL ? w->end : NULL;
}

void mempipe_event_watch_free(mempipe_event_watch *w)
{
    if (w == NULL)
        return;
    /* event_free() deletes the event first: the fd leaves the backend's set
     * before the end, which owns it, may be closed. */
    if (w->rev != NULL)
        event_free(w->rev);
    if (w->wev != NULL)
        event_free(w->wev);
    free(w);
}

static void activate(void *ctx)
{
    /*
     * Takes the base's lock when threading is on, and wakes the loop if it
     * is waiting in another thread; an event already active just gains the
     * flag, so repeated wakes coalesce.
     */
    event_active(ctx, EV_READ, 0);
}

mempipe_waker mempipe_event_waker(struct event *ev)
{
    mempipe_waker w = {activate, ev};
    return w;
}
