/* SPDX-License-Identifier: MIT */
/*
 * The blocking front-end: poll with a parking waker, sleep, poll again.
 * It knows only the poll API and the parker. Each end has its own parker per
 * direction, living as long as the end, so a late or spurious wake after the
 * call returned touches valid memory and only bumps a counter.
 */
#include "end.h"

#include <errno.h>

ssize_t mempipe_read(mempipe *end, void *buf, size_t len)
{
    if (end == NULL)
        return -EINVAL;
    mempipe_waker w = {mempipe__park_wake, &end->rpark};
    for (;;) {
        unsigned seen = mempipe__park_prepare(&end->rpark);
        ssize_t n = mempipe_poll_read(end, buf, len, &w);
        if (n != -EAGAIN)
            return n; /* R27: bytes, EOF or an error */
        mempipe__park_wait(&end->rpark, seen);
    }
}

ssize_t mempipe_write(mempipe *end, const void *buf, size_t len)
{
    if (end == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    mempipe_waker w = {mempipe__park_wake, &end->wpark};
    const unsigned char *p = buf;
    size_t done = 0;
    do {
        unsigned seen = mempipe__park_prepare(&end->wpark);
        /* p may be NULL when len is 0 (R14: still a call, for -EPIPE);
         * NULL + 0 is undefined behaviour, so don't form it. */
        ssize_t n = mempipe_poll_write(end, p == NULL ? NULL : p + done,
                                       len - done, &w);
        if (n == -EAGAIN) {
            mempipe__park_wait(&end->wpark, seen);
            continue;
        }
        if (n < 0) /* R28: the bytes accepted so far, else the error */
            return done > 0 ? (ssize_t)done : n;
        done += (size_t)n;
    } while (done < len);
    return (ssize_t)done;
}
