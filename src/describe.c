/* SPDX-License-Identifier: MIT */
/*
 * mempipe_describe: a one-line snapshot of an end, for logs and debuggers.
 *
 * It only loads: the ring positions and the flags are atomics, each waker
 * slot's state is an atomic, the capacity and kind never change after
 * creation. So it never blocks, never takes a slot, and is data-race free
 * while other threads read, write, shut down or close the *other* end. The
 * fields are read one after another, not as one atomic snapshot: under
 * traffic, the numbers may come from slightly different moments.
 *
 * The format is documented (and promised) in mempipe.h.
 */
#include "end.h"
#include "shm.h"

#include <errno.h>
#include <stdio.h>

static const char *kind_name(enum mempipe__kind k)
{
    switch (k) {
    case MEMPIPE__DUPLEX:
        return "duplex";
    case MEMPIPE__SIMPLEX_READER:
        return "simplex-reader";
    case MEMPIPE__SIMPLEX_WRITER:
        return "simplex-writer";
    case MEMPIPE__LOOPBACK:
        return "loopback";
    }
    return "unknown";
}

static const char *state_name(unsigned flags)
{
    switch (flags & (MEMPIPE__WCLOSED | MEMPIPE__RCLOSED)) {
    case 0:
        return "open";
    case MEMPIPE__WCLOSED:
        return "write-closed";
    case MEMPIPE__RCLOSED:
        return "read-closed";
    }
    return "closed";
}

/*
 * Appends " <label>=<L>/<M> <state> wakers=<r|-><w|->" for pipe p at
 * buf[*at...] as snprintf would (truncated, always terminated), advancing
 * *at by the length needed even when it does not fit. Returns -1 only if
 * snprintf itself fails.
 */
static int put_pipe(char *buf, size_t len, size_t *at, const char *label,
                    const struct mempipe__pipe *p)
{
    /* Flags first: a snapshot that says "write-closed" was taken after the
     * close, so the L printed next includes every byte written before it. */
    unsigned flags = mempipe__pipe_flags(p);
    size_t used = mempipe__pipe_readable(p);
    /* rpos and wpos are loaded one after the other; while both sides run,
     * their difference can exceed what was ever buffered. L <= M always. */
    if (used > p->ring.cap)
        used = p->ring.cap;
    char *dst = *at < len ? buf + *at : NULL;
    size_t room = *at < len ? len - *at : 0;
    int n = snprintf(dst, room, " %s=%zu/%zu %s wakers=%c%c", label, used,
                     p->ring.cap, state_name(flags),
                     mempipe__slot_full(&p->rd) ? 'r' : '-',
                     mempipe__slot_full(&p->wr) ? 'w' : '-');
    if (n < 0)
        return -1;
    *at += (size_t)n;
    return 0;
}

int mempipe_describe(const mempipe *end, char *buf, size_t len)
{
    if (end == NULL || (buf == NULL && len > 0))
        return -EINVAL;

    const char *kind = kind_name(end->kind);
    int n = snprintf(buf, len, "%s", kind);
    if (n < 0)
        return -EINVAL;
    size_t at = (size_t)n;
    int rc = 0;
    if (end->kind == MEMPIPE__LOOPBACK) {
        rc = put_pipe(buf, len, &at, "rxtx", mempipe__end_rx(end));
    } else {
        if (rc == 0 && mempipe__end_rx(end) != NULL)
            rc = put_pipe(buf, len, &at, "rx", mempipe__end_rx(end));
        if (rc == 0 && mempipe__end_tx(end) != NULL)
            rc = put_pipe(buf, len, &at, "tx", mempipe__end_tx(end));
    }
    if (rc == 0 && end->core->shm != NULL) {
        int k = mempipe__shm_describe(end, at < len ? buf + at : NULL,
                                      at < len ? len - at : 0);
        if (k < 0)
            rc = -1;
        else
            at += (size_t)k;
    }
    if (rc != 0)
        return -EINVAL;
    return (int)at;
}
