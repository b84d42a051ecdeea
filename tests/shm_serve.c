/* SPDX-License-Identifier: MIT */
/* The pattern streams and the child's command loop: see shm_peer.h. Linked
 * into shm_test (its forked children, and the test's own side of the
 * streams) and into the shm_peer helper (exec). */
#include "shm_peer.h"

#include "testutil.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SP_CHUNK 65536
#define SP_SEED0 0x5348d0001ull /* the test's writes, the child's reads */
#define SP_SEED1 0x5348d0002ull /* the child's writes */

/* The copies' buffer: one call at a time per thread. */
static _Thread_local unsigned char buf[SP_CHUNK];

void sp_init(struct sp_stream *s, int peer)
{
    memset(s, 0, sizeof *s);
    s->wr.seed = peer ? SP_SEED1 : SP_SEED0;
    s->rd.seed = peer ? SP_SEED0 : SP_SEED1;
    s->wr.sum = s->rd.sum = 0xcbf29ce484222325ull;
    s->bad = -1;
}

uint64_t sp_sum(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* n bytes were written from p (the pattern at wr.pos). */
static void wrote(struct sp_stream *s, const unsigned char *p, size_t n)
{
    s->wr.sum = sp_sum(s->wr.sum, p, n);
    s->wr.pos += n;
}

/* n bytes were read into p: checked against the pattern at rd.pos. */
static void got(struct sp_stream *s, const unsigned char *p, size_t n)
{
    long at = tu_check_pattern(p, n, s->rd.pos, s->rd.seed);
    if (at >= 0 && s->bad < 0)
        s->bad = (int64_t)(s->rd.pos + (uint64_t)at);
    s->rd.sum = sp_sum(s->rd.sum, p, n);
    s->rd.pos += n;
}

static size_t piece(int64_t left)
{
    return left > SP_CHUNK ? SP_CHUNK : (size_t)left;
}

ssize_t sp_write(struct sp_stream *s, mempipe *e, int64_t n)
{
    int64_t done = 0;
    while (done < n) {
        size_t k = piece(n - done);
        tu_pattern(buf, k, s->wr.pos, s->wr.seed);
        ssize_t r = mempipe_write(e, buf, k);
        if (r <= 0)
            return done > 0 ? (ssize_t)done : r;
        wrote(s, buf, (size_t)r);
        done += r;
        if ((size_t)r < k)
            break; /* closed part-way: the next call says why */
    }
    return (ssize_t)done;
}

ssize_t sp_read(struct sp_stream *s, mempipe *e, int64_t n)
{
    int64_t done = 0;
    while (done < n) {
        ssize_t r = mempipe_read(e, buf, piece(n - done));
        if (r <= 0)
            return done > 0 ? (ssize_t)done : r;
        got(s, buf, (size_t)r);
        done += r;
    }
    return (ssize_t)done;
}

ssize_t sp_poll_write(struct sp_stream *s, mempipe *e, size_t n,
                      const mempipe_waker *w)
{
    if (n > SP_CHUNK)
        n = SP_CHUNK;
    tu_pattern(buf, n, s->wr.pos, s->wr.seed);
    ssize_t r = mempipe_poll_write(e, buf, n, w);
    if (r > 0)
        wrote(s, buf, (size_t)r);
    return r;
}

ssize_t sp_poll_read(struct sp_stream *s, mempipe *e, size_t n,
                     const mempipe_waker *w)
{
    if (n > SP_CHUNK)
        n = SP_CHUNK;
    ssize_t r = mempipe_poll_read(e, buf, n, w);
    if (r > 0)
        got(s, buf, (size_t)r);
    return r;
}

ssize_t sp_zwrite(struct sp_stream *s, mempipe *e, int64_t n, int tmo_ms)
{
    int64_t done = 0;
    while (done < n) {
        struct iovec iov[2];
        int k = mempipe_write_reserve(e, piece(n - done), iov, NULL);
        if (k == -EAGAIN) {
            int w = mempipe_wait_writable(e, tmo_ms);
            if (w < 0)
                return done > 0 ? (ssize_t)done : w;
            continue;
        }
        if (k < 0)
            return done > 0 ? (ssize_t)done : k;
        size_t total = 0;
        for (int i = 0; i < k; i++) {
            /* In place: the pattern straight into the shared ring. */
            tu_pattern(iov[i].iov_base, iov[i].iov_len, s->wr.pos + total,
                       s->wr.seed);
            total += iov[i].iov_len;
        }
        int c = mempipe_write_commit(e, total);
        if (c < 0)
            return done > 0 ? (ssize_t)done : c;
        for (int i = 0; i < k; i++)
            wrote(s, iov[i].iov_base, iov[i].iov_len);
        done += (int64_t)total;
    }
    return (ssize_t)done;
}

ssize_t sp_zread(struct sp_stream *s, mempipe *e, int64_t n, int tmo_ms)
{
    int64_t done = 0;
    while (done < n) {
        struct iovec iov[2];
        int k = mempipe_read_peek(e, iov, NULL);
        if (k == -EAGAIN) {
            int w = mempipe_wait_readable(e, tmo_ms);
            if (w < 0)
                return done > 0 ? (ssize_t)done : w;
            continue;
        }
        if (k <= 0)
            return done > 0 ? (ssize_t)done : k;
        size_t take = 0;
        for (int i = 0; i < k && done + (int64_t)take < n; i++) {
            size_t m = iov[i].iov_len;
            if ((int64_t)m > n - done - (int64_t)take)
                m = (size_t)(n - done - (int64_t)take);
            got(s, iov[i].iov_base, m); /* checked in place */
            take += m;
        }
        int c = mempipe_read_consume(e, take);
        if (c < 0)
            return done > 0 ? (ssize_t)done : c;
        done += (int64_t)take;
    }
    return (ssize_t)done;
}

/* One command on *e; *e becomes NULL once closed. */
static int64_t run(struct sp_stream *s, mempipe **e, const struct sp_cmd *c)
{
    switch (c->op) {
    case SP_W:
        return sp_write(s, *e, c->arg);
    case SP_WPOLL:
        return sp_poll_write(s, *e, (size_t)c->arg, NULL);
    case SP_R:
        return sp_read(s, *e, c->arg);
    case SP_RPOLL:
        return sp_poll_read(s, *e, (size_t)c->arg, NULL);
    case SP_ZW:
        return sp_zwrite(s, *e, c->arg, -1);
    case SP_ZR:
        return sp_zread(s, *e, c->arg, -1);
    case SP_SHUT:
        return mempipe_shutdown(*e);
    case SP_SHUTRD:
        return mempipe_shutdown_read(*e);
    case SP_CLOSE:
        mempipe_close(*e);
        *e = NULL;
        return 0;
    case SP_ABORT:
        mempipe_abort(*e);
        *e = NULL;
        return 0;
    case SP_ERR: {
        int rc = mempipe_close_with_error(*e, (int)c->arg);
        if (rc == 0)
            *e = NULL;
        return rc;
    }
    case SP_CAP:
        return (int64_t)mempipe_capacity(*e);
    default:
        return -ENOSYS;
    }
}

static int answer(int ctl, const struct sp_reply *r)
{
    return send(ctl, r, sizeof *r, MSG_NOSIGNAL) == (ssize_t)sizeof *r ? 0 : -1;
}

int sp_attach_serve(int fd, int ctl)
{
    struct sp_reply r;
    memset(&r, 0, sizeof r);
    sp_init(&r.s, 1);
    mempipe *e = NULL;
    int before = tu_count_fds();
    r.rc = mempipe_shm_attach(fd, &e);
    r.fds = tu_count_fds() - before;
    close(fd); /* R68: the attaching process may close it at once */
    if (answer(ctl, &r) != 0)
        return 2;
    for (;;) {
        struct sp_cmd c;
        ssize_t n = recv(ctl, &c, sizeof c, MSG_WAITALL);
        if (n == 0)
            break; /* the test is done with us */
        if (n != (ssize_t)sizeof c)
            return 2;
        r.rc = run(&r.s, &e, &c);
        if (answer(ctl, &r) != 0)
            return 2;
    }
    mempipe_close(e);
    return 0;
}
