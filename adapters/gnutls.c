/* SPDX-License-Identifier: MIT */
/*
 * The GnuTLS transport adapter: push, vectored push, pull and pull-timeout
 * functions over one end. It knows only the public API: mempipe_poll_* in
 * non-blocking mode, mempipe_read/mempipe_write in blocking mode, and
 * mempipe_wait_readable() for a timed wait.
 *
 * Why a state and not just the end as the transport pointer:
 * gnutls_transport_set_errno() needs the session, which the callbacks are
 * not given; and the transport's calls store the armed waker themselves
 * when they find the pipe empty or full, so that mempipe_gnutls_arm() can
 * answer from what the last call saw. (mempipe_poll_readable() could arm
 * after the fact; the one-thread tests pin the present contract.)
 */
#include "mempipe/gnutls.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MAGIC 0x6d70676eu /* "mpgn" */
#define VEC_WINDOW  32          /* slices copied per mempipe_poll_writev() */

struct state {
    unsigned magic;
    gnutls_session_t session;
    mempipe *end;
    int blocking;
    int have_waker; /* waker is set: the poll calls pass it */
    mempipe_waker waker;
    /*
     * blocked[d]: the transport's last call found direction d (0 read,
     * 1 write) empty/full and stored `waker` there. Cleared by every call,
     * so after GNUTLS_E_AGAIN it tells whether a wake is really coming.
     * Only the session's thread reads and writes it.
     */
    int blocked[2];
};

/* Sets GnuTLS's session errno and errno itself; returns -1 for the caller. */
static ssize_t fail(struct state *st, ssize_t err)
{
    int e = (int)-err;
    gnutls_transport_set_errno(st->session, e);
    errno = e;
    return -1;
}

/* Starts a transport call: nothing is known blocked until it says so. */
static const mempipe_waker *begin(struct state *st)
{
    st->blocked[0] = st->blocked[1] = 0;
    return st->have_waker ? &st->waker : NULL;
}

/* A call on a session whose state was released (set_transport(s, NULL)). */
static ssize_t no_state(void)
{
    errno = EBADF; /* GnuTLS's default errno function reads errno */
    return -1;
}

static ssize_t pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
    struct state *st = ptr;
    if (st == NULL)
        return no_state();
    ssize_t n;
    if (st->blocking) {
        n = mempipe_read(st->end, buf, len);
    } else {
        n = mempipe_poll_read(st->end, buf, len, begin(st));
        if (n == -EAGAIN && st->have_waker)
            st->blocked[0] = 1;
    }
    return n >= 0 ? n : fail(st, n);
}

static ssize_t push(gnutls_transport_ptr_t ptr, const void *buf, size_t len)
{
    struct state *st = ptr;
    if (st == NULL)
        return no_state();
    ssize_t n;
    if (st->blocking) {
        n = mempipe_write(st->end, buf, len);
    } else {
        /* One poll write takes min(len, free space); if it was short, space
         * may have freed since (a reader on another thread), so go on until
         * all is taken or the pipe says -EAGAIN (storing the waker). */
        const mempipe_waker *w = begin(st);
        size_t done = 0;
        n = 0;
        while (done < len) {
            n = mempipe_poll_write(st->end, (const char *)buf + done,
                                   len - done, w);
            if (n <= 0)
                break;
            done += (size_t)n;
        }
        if (n == -EAGAIN && w != NULL)
            st->blocked[1] = 1;
        if (done > 0)
            return (ssize_t)done;
    }
    return n >= 0 ? n : fail(st, n);
}

/*
 * GnuTLS treats a vectored push that took less than everything as "would
 * block" and returns GNUTLS_E_AGAIN, so a short count must mean the pipe is
 * full now (a waker stored), never just "one call's worth".
 */
static ssize_t vec_push(gnutls_transport_ptr_t ptr, const giovec_t *iov,
                        int iovcnt)
{
    struct state *st = ptr;
    if (st == NULL)
        return no_state();
    size_t done = 0;
    ssize_t n = 0;
    if (st->blocking) {
        for (int i = 0; i < iovcnt; i++) {
            n = mempipe_write(st->end, iov[i].iov_base, iov[i].iov_len);
            if (n < 0)
                break;
            done += (size_t)n;
            if ((size_t)n < iov[i].iov_len)
                break; /* closed part-way: report what was taken */
        }
        return done > 0 || n >= 0 ? (ssize_t)done : fail(st, n);
    }
    const mempipe_waker *w = begin(st);
    int i = 0;
    size_t off = 0; /* bytes of iov[i] already taken */
    for (;;) {
        while (i < iovcnt && off == iov[i].iov_len) {
            i++;
            off = 0;
        }
        if (i == iovcnt)
            break;
        struct iovec win[VEC_WINDOW];
        int cnt = 0;
        for (; cnt < VEC_WINDOW && i + cnt < iovcnt; cnt++)
            win[cnt] = iov[i + cnt];
        win[0].iov_base = (char *)win[0].iov_base + off;
        win[0].iov_len -= off;
        n = mempipe_poll_writev(st->end, win, cnt, w);
        if (n <= 0)
            break;
        done += (size_t)n;
        /* Advance (i, off) by n bytes. */
        for (size_t left = (size_t)n; left > 0;) {
            size_t room = iov[i].iov_len - off;
            if (left < room) {
                off += left;
                break;
            }
            left -= room;
            i++;
            off = 0;
        }
    }
    if (n == -EAGAIN && w != NULL)
        st->blocked[1] = 1;
    if (done > SSIZE_MAX)
        done = SSIZE_MAX; /* GnuTLS never offers this much */
    return done > 0 || n >= 0 ? (ssize_t)done : fail(st, n);
}

/* 1 if a read would not block (bytes or end of file), 0 if not within ms. */
static int wait_readable(struct state *st, unsigned ms)
{
    /* mempipe_wait_readable() waits on the end's own parker, no fd: a
     * timeout past INT_MAX ms is as good as none. */
    int timeout = ms == GNUTLS_INDEFINITE_TIMEOUT ? -1
                  : ms > INT_MAX                  ? INT_MAX
                                                  : (int)ms;
    int rc = mempipe_wait_readable(st->end, timeout);
    if (rc == -ETIMEDOUT)
        return 0;
    return rc > 0 ? 1 : (int)fail(st, rc);
}

/*
 * GnuTLS's contract: > 0 if data can be received, 0 on timeout, -1 (errno
 * set) on error; a zero timeout asks "now?". Non-blocking sessions never
 * wait here: any other timeout answers "ready" so that the pull that
 * follows returns bytes, end of file, or -EAGAIN with the waker stored (a
 * "not ready" here would be GNUTLS_E_AGAIN with nothing armed).
 */
static int pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms)
{
    struct state *st = ptr;
    if (st == NULL)
        return (int)no_state();
    begin(st);
    if (!st->blocking && ms != 0)
        return 1;
    return wait_readable(st, ms);
}

static struct state *get_state(gnutls_session_t s)
{
    if (s == NULL)
        return NULL;
    /* A new session's transport pointer is (void *)-1 (GnuTLS's "no fd"). */
    struct state *st = gnutls_transport_get_ptr(s);
    if (st == NULL || st == (void *)-1)
        return NULL;
    return st->magic == STATE_MAGIC ? st : NULL;
}

int mempipe_gnutls_set_transport(gnutls_session_t s, mempipe *end,
                                 unsigned flags)
{
    if (s == NULL || (end != NULL && (flags & ~MEMPIPE_GNUTLS_BLOCKING)))
        return -EINVAL;
    struct state *old = get_state(s);
    if (end == NULL) {
        if (old != NULL) {
            gnutls_transport_set_ptr(s, NULL);
            old->magic = 0;
            free(old);
        }
        return 0;
    }
    struct state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return -ENOMEM;
    st->magic = STATE_MAGIC;
    st->session = s;
    st->end = end;
    st->blocking = (flags & MEMPIPE_GNUTLS_BLOCKING) != 0;
    gnutls_transport_set_ptr(s, st);
    gnutls_transport_set_push_function(s, push);
    gnutls_transport_set_vec_push_function(s, vec_push);
    gnutls_transport_set_pull_function(s, pull);
    gnutls_transport_set_pull_timeout_function(s, pull_timeout);
    if (old != NULL) {
        old->magic = 0;
        free(old);
    }
    return 0;
}

int mempipe_gnutls_arm(gnutls_session_t s, const mempipe_waker *w)
{
    struct state *st = get_state(s);
    if (st == NULL || w == NULL || w->wake == NULL)
        return -EINVAL;
    if (st->blocking)
        return -EBADF;
    if (!st->have_waker || st->waker.wake != w->wake ||
        st->waker.ctx != w->ctx) {
        /* The last would-block stored another waker (or none): retry, and
         * this time the transport stores w. */
        st->waker = *w;
        st->have_waker = 1;
        st->blocked[0] = st->blocked[1] = 0;
        return 1;
    }
    int dir = gnutls_record_get_direction(s) ? 1 : 0;
    return st->blocked[dir] ? 0 : 1;
}

mempipe *mempipe_gnutls_get_end(gnutls_session_t s)
{
    struct state *st = get_state(s);
    return st != NULL ? st->end : NULL;
}
