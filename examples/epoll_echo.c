/* SPDX-License-Identifier: MIT */
/*
 * epoll_echo: one thread, one epoll set, 1,000 echo conversations.
 *
 * Each conversation is a duplex pair: an echo server on one end, a client on
 * the other. The client sends a 64-byte message, waits for the echo, checks
 * every byte, and sends the next one. Nothing blocks: epoll (level-triggered)
 * watches mempipe_readable_fd() of every end, and mempipe_writable_fd() of an
 * end only while it has bytes it could not write yet; when an fd is ready the
 * loop calls the poll API (mempipe_poll_read / mempipe_poll_write with a NULL
 * waker) until it would return -EAGAIN.
 *
 * Then the very same loop runs over 1,000 non-blocking socketpairs, and the
 * program prints both rates and their ratio. Each phase runs for PHASE_SECS
 * seconds, then every client shuts down its sending side, every server
 * answers EOF with its own shutdown, and the phase ends when all have seen
 * EOF. Exit status 1 if any byte came back wrong or any call failed.
 *
 *   ./epoll_echo [pairs] [seconds]     (defaults: 1000 and 1.5)
 */
#define _GNU_SOURCE /* SOCK_NONBLOCK, MSG_NOSIGNAL, clock_gettime */
#include <mempipe.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64 /* bytes per message */

/* One side of a conversation: a mempipe end, or a socket. */
struct ep {
    mempipe *mp;  /* the mempipe end, or NULL for a socket */
    int sock;     /* the socket, or -1 */
    int rfd, wfd; /* what epoll watches for reading / writing */
    bool server;  /* echoes; otherwise a client that checks */
    bool rd_on, wr_on;
    bool eof_seen, shut;
    unsigned pair;
    unsigned char out[MSG]; /* bytes accepted but not yet written */
    size_t out_off, out_len;
    uint64_t sent, recvd; /* client: stream positions */
};

struct loop {
    int epfd;
    struct ep *eps;
    unsigned neps, live; /* live: ends that have not seen EOF */
    bool running;        /* clients send new messages */
    uint64_t msgs, errors;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The byte at stream position pos of conversation pair. */
static unsigned char pattern(unsigned pair, uint64_t pos)
{
    uint64_t x = (pos + 1) * 0x9E3779B97F4A7C15ull ^ pair;
    return (unsigned char)(x ^ (x >> 29));
}

/* ---- the two transports behind one interface --------------------------- */

static ssize_t ep_read(struct ep *e, void *buf, size_t len)
{
    if (e->mp != NULL)
        return mempipe_poll_read(e->mp, buf, len, NULL);
    ssize_t n = read(e->sock, buf, len);
    return n >= 0 ? n : -errno;
}

static ssize_t ep_write(struct ep *e, const void *buf, size_t len)
{
    if (e->mp != NULL)
        return mempipe_poll_write(e->mp, buf, len, NULL);
    ssize_t n = send(e->sock, buf, len, MSG_NOSIGNAL);
    return n >= 0 ? n : -errno;
}

static int ep_shutdown(struct ep *e)
{
    if (e->mp != NULL)
        return mempipe_shutdown(e->mp);
    return shutdown(e->sock, SHUT_WR) == 0 ? 0 : -errno;
}

static int ctl(struct loop *l, int op, int fd, uint32_t events, uint64_t tag)
{
    struct epoll_event ev = {.events = events, .data.u64 = tag};
    if (epoll_ctl(l->epfd, op, fd, &ev) != 0) {
        fprintf(stderr, "epoll_ctl: %s\n", strerror(errno));
        l->errors++;
        return -1;
    }
    return 0;
}

/*
 * What epoll watches for e. A mempipe end has two fds, each polled for
 * EPOLLIN, added and removed as needed; a socket has one fd whose event
 * mask changes. The tag is the end's index, doubled, plus 1 for writing.
 */
static void interest(struct loop *l, struct ep *e, bool rd, bool wr)
{
    uint64_t i = (uint64_t)(e - l->eps);
    if (e->mp != NULL) {
        if (rd != e->rd_on)
            ctl(l, rd ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, e->rfd, EPOLLIN, 2 * i);
        if (wr != e->wr_on) {
            if (wr && e->wfd < 0) {
                e->wfd = mempipe_writable_fd(e->mp); /* made on first need */
                if (e->wfd < 0) {
                    fprintf(stderr, "writable_fd: %s\n",
                            mempipe_strerror(e->wfd));
                    l->errors++;
                    return;
                }
            }
            ctl(l, wr ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, e->wfd, EPOLLIN,
                2 * i + 1);
        }
    } else if (rd != e->rd_on || wr != e->wr_on) {
        int op = !e->rd_on && !e->wr_on ? EPOLL_CTL_ADD
                 : !rd && !wr           ? EPOLL_CTL_DEL
                                        : EPOLL_CTL_MOD;
        ctl(l, op, e->sock, (rd ? EPOLLIN : 0u) | (wr ? EPOLLOUT : 0u), 2 * i);
    }
    e->rd_on = rd;
    e->wr_on = wr;
}

/* ---- the conversation --------------------------------------------------- */

/* Writes what is pending; watches the writing side only while some is. */
static void flush(struct loop *l, struct ep *e)
{
    while (e->out_len > 0) {
        ssize_t n = ep_write(e, e->out + e->out_off, e->out_len);
        if (n == -EAGAIN)
            break;
        if (n < 0) {
            fprintf(stderr, "write: %s\n", mempipe_strerror((int)n));
            l->errors++;
            e->out_len = 0;
            break;
        }
        e->out_off += (size_t)n;
        e->out_len -= (size_t)n;
    }
    /* A server reads only once its echo is out: no unbounded buffering. */
    interest(l, e, !e->eof_seen && (!e->server || e->out_len == 0),
             e->out_len > 0);
}

/* Client: the next message, or the end of the conversation. */
static void client_next(struct loop *l, struct ep *c)
{
    if (c->recvd != c->sent || c->out_len > 0)
        return; /* the current echo is not complete */
    if (!l->running) {
        if (!c->shut) {
            c->shut = true;
            if (ep_shutdown(c) < 0)
                l->errors++;
        }
        return;
    }
    for (size_t k = 0; k < MSG; k++)
        c->out[k] = pattern(c->pair, c->sent + k);
    c->sent += MSG;
    c->out_off = 0;
    c->out_len = MSG;
    flush(l, c);
}

static void on_readable(struct loop *l, struct ep *e)
{
    unsigned char buf[4096];
    size_t room = e->server ? sizeof e->out : sizeof buf;
    ssize_t n = ep_read(e, e->server ? e->out : buf, room);
    if (n == -EAGAIN)
        return; /* level-triggered: a spurious wake is harmless */
    if (n < 0) {
        fprintf(stderr, "read: %s\n", mempipe_strerror((int)n));
        l->errors++;
        n = 0;
    }
    if (n == 0) { /* EOF: the peer shut down */
        e->eof_seen = true;
        l->live--;
        interest(l, e, false, false);
        if (e->server && !e->shut) {
            e->shut = true;
            if (ep_shutdown(e) < 0)
                l->errors++;
        }
        return;
    }
    if (e->server) { /* echo */
        e->out_off = 0;
        e->out_len = (size_t)n;
        flush(l, e);
        return;
    }
    for (ssize_t k = 0; k < n; k++)
        if (buf[k] != pattern(e->pair, e->recvd + (uint64_t)k))
            l->errors++;
    e->recvd += (uint64_t)n;
    if (e->recvd > e->sent)
        l->errors++; /* more came back than was sent */
    if (e->recvd == e->sent && l->running)
        l->msgs++; /* a whole echo came back during the timed part */
    client_next(l, e);
}

/* Runs one phase; returns messages per second, or -1 on an error. */
static double run(struct ep *eps, unsigned pairs, double secs)
{
    struct loop l = {.eps = eps, .neps = 2 * pairs, .live = 2 * pairs};
    l.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l.epfd < 0)
        return -1;
    for (unsigned i = 0; i < l.neps; i++)
        interest(&l, &eps[i], true, false);
    l.running = true;
    double t0 = now(), t_end = t0 + secs, elapsed = 0;
    for (unsigned i = 0; i < l.neps; i++)
        if (!eps[i].server)
            client_next(&l, &eps[i]);
    struct epoll_event ev[256];
    while (l.live > 0 && l.errors == 0) {
        int n = epoll_wait(l.epfd, ev, 256, 5000);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            fprintf(stderr, "epoll_wait: %s\n", n ? strerror(errno) : "stuck");
            l.errors++;
            break;
        }
        for (int k = 0; k < n; k++) {
            struct ep *e = &eps[ev[k].data.u64 / 2];
            bool w, r;
            if (e->mp != NULL) { /* two fds: the tag says which */
                w = (ev[k].data.u64 & 1) != 0;
                r = !w;
            } else { /* one fd: the events say */
                w = (ev[k].events & EPOLLOUT) != 0;
                r = (ev[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0;
            }
            /* The flags drop events of an fd removed earlier in this batch. */
            if (w && e->wr_on) {
                flush(&l, e);
                if (!e->server)
                    client_next(&l, e);
            }
            if (r && e->rd_on)
                on_readable(&l, e);
        }
        if (l.running && now() >= t_end) {
            elapsed = now() - t0;
            l.running = false; /* clients finish their echo, then shut down */
            for (unsigned i = 0; i < l.neps; i++)
                if (!eps[i].server)
                    client_next(&l, &eps[i]);
        }
    }
    close(l.epfd);
    if (l.errors > 0) {
        fprintf(stderr, "%llu errors\n", (unsigned long long)l.errors);
        return -1;
    }
    return (double)l.msgs / elapsed;
}

/* ---- setting up the two transports -------------------------------------- */

static void ep_init(struct ep *e, unsigned pair, bool server)
{
    memset(e, 0, sizeof *e);
    e->sock = e->rfd = e->wfd = -1;
    e->pair = pair;
    e->server = server;
}

static int make_mempipes(struct ep *eps, unsigned pairs)
{
    for (unsigned i = 0; i < pairs; i++) {
        struct ep *s = &eps[2 * i], *c = &eps[2 * i + 1];
        ep_init(s, i, true);
        ep_init(c, i, false);
        int rc = mempipe_duplex(16 * 1024, &s->mp, &c->mp);
        if (rc < 0)
            return rc;
        s->rfd = mempipe_readable_fd(s->mp);
        c->rfd = mempipe_readable_fd(c->mp);
        if (s->rfd < 0)
            return s->rfd;
        if (c->rfd < 0)
            return c->rfd;
    }
    return 0;
}

static int make_sockets(struct ep *eps, unsigned pairs)
{
    for (unsigned i = 0; i < pairs; i++) {
        struct ep *s = &eps[2 * i], *c = &eps[2 * i + 1];
        int sv[2];
        ep_init(s, i, true);
        ep_init(c, i, false);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                       sv) != 0)
            return -errno;
        s->sock = s->rfd = s->wfd = sv[0];
        c->sock = c->rfd = c->wfd = sv[1];
    }
    return 0;
}

static void release(struct ep *eps, unsigned pairs)
{
    for (unsigned i = 0; i < 2 * pairs; i++) {
        if (eps[i].mp != NULL)
            mempipe_close(eps[i].mp); /* closes its fds too */
        else if (eps[i].sock >= 0)
            close(eps[i].sock);
        eps[i].mp = NULL;
        eps[i].sock = -1;
    }
}

/* Room for every descriptor: up to four per pair at once. */
static void raise_fd_limit(unsigned pairs)
{
    struct rlimit rl;
    rlim_t want = 4 * (rlim_t)pairs + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    unsigned pairs = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1000;
    double secs = argc > 2 ? strtod(argv[2], NULL) : 1.5;
    if (pairs == 0 || !(secs > 0)) {
        fprintf(stderr, "usage: %s [pairs] [seconds]\n", argv[0]);
        return 2;
    }
    raise_fd_limit(pairs);
    struct ep *eps = calloc(2 * (size_t)pairs, sizeof *eps);
    if (eps == NULL)
        return 1;

    int rc = make_mempipes(eps, pairs);
    if (rc < 0) {
        fprintf(stderr, "mempipe setup: %s\n", mempipe_strerror(rc));
        return 1;
    }
    double mp = run(eps, pairs, secs);
    release(eps, pairs);

    rc = make_sockets(eps, pairs);
    if (rc < 0) {
        fprintf(stderr, "socketpair setup: %s\n", mempipe_strerror(rc));
        return 1;
    }
    double sp = run(eps, pairs, secs);
    release(eps, pairs);
    free(eps);

    if (mp < 0 || sp < 0)
        return 1;
    printf("epoll echo, %u pairs, %d-byte messages, one thread, %.1f s each:\n",
           pairs, MSG, secs);
    printf("  mempipe fds:  %12.0f messages/s\n", mp);
    printf("  socketpairs:  %12.0f messages/s\n", sp);
    printf("  ratio:        %12.2fx\n", mp / sp);
    printf("every echoed byte checked: ok\n");
    return 0;
}
