/* SPDX-License-Identifier: MIT */
/* Hold frames and the deferred free: see hold.h. */
#include "hold.h"

#include <stddef.h>

/* This thread's open frames, innermost first. Only this thread uses it. */
static _Thread_local struct mempipe__hold *frames;

void mempipe__hold_enter(struct mempipe__hold *h, const struct mempipe__pipe *p)
{
    h->pipe = p;
    h->outer = frames;
    h->deferred = 0;
    h->drop = NULL;
    h->obj = NULL;
    frames = h;
}

void mempipe__hold_leave(struct mempipe__hold *h)
{
    frames = h->outer;
    if (h->deferred > 0)
        h->drop(h->obj, h->deferred);
}

bool mempipe__hold_defer(const struct mempipe__pipe *p1,
                         const struct mempipe__pipe *p2,
                         void (*drop)(void *obj, unsigned n), void *obj)
{
    struct mempipe__hold *outermost = NULL;
    for (struct mempipe__hold *h = frames; h != NULL; h = h->outer)
        if (h->pipe != NULL && (h->pipe == p1 || h->pipe == p2))
            outermost = h;
    if (outermost == NULL)
        return false;
    outermost->deferred++;
    outermost->drop = drop;
    outermost->obj = obj;
    return true;
}
