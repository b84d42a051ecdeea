/* SPDX-License-Identifier: MIT */
/*
 * The blocking front-end: poll with a parking waker, sleep, poll again.
 * It knows only the poll API and the parker. Each end has its own parker per
 * direction, living as long as the end, so a late or spurious wake after the
 * call returned touches valid memory and only bumps a counter.
 */
#include "end.h"
#include "hold.h"
#include "hook.h"

#include <errno.h>

/*
 * Each call runs inside a hold frame (hold.h) on the pipe it moves bytes
 * through: a waker that one of its rounds runs may close this very end and
 * its peer (R32), and the loop then still touches the end (its parker, the
 * next round, which sees the close).
 */
ssize_t mempipe_read(mempipe *end, void *buf, size_t len)
{
    if (end == NULL || (buf == NULL && len > 0))
        return -EINVAL; /* R30 */
    mempipe_waker w = {mempipe__park_wake, &end->rpark};
    struct mempipe__hold frame;
    mempipe__hold_enter(&frame, mempipe__end_rx(end));
    ssize_t n;
    for (;;) {
        unsigned seen = mempipe__park_prepare(&end->rpark);
        n = mempipe__end_read(end, buf, len, &w, MEMPIPE__OP_BLOCKING);
        if (n != -EAGAIN)
            break; /* R27: bytes, EOF or an error */
        mempipe__park_wait(&end->rpark, seen);
    }
    mempipe__hold_leave(&frame);
    return n;
}

ssize_t mempipe_write(mempipe *end, const void *buf, size_t len)
{
    if (end == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    mempipe_waker w = {mempipe__park_wake, &end->wpark};
    const unsigned char *p = buf;
    size_t done = 0;
    ssize_t rc = 0;
    struct mempipe__hold frame;
    mempipe__hold_enter(&frame, mempipe__end_tx(end));
    do {
        unsigned seen = mempipe__park_prepare(&end->wpark);
        /* p may be NULL when len is 0 (R14: still a call, for -EPIPE);
         * NULL + 0 is undefined behaviour, so don't form it. */
        ssize_t n = mempipe__end_write(end, p == NULL ? NULL : p + done,
                                       len - done, &w, MEMPIPE__OP_BLOCKING);
        if (n == -EAGAIN) {
            mempipe__park_wait(&end->wpark, seen);
            continue;
        }
        if (n < 0) { /* R28: the bytes accepted so far, else the error */
            rc = n;
            break;
        }
        done += (size_t)n;
    } while (done < len);
    mempipe__hold_leave(&frame);
    return done > 0 ? (ssize_t)done : rc;
}
