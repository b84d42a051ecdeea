/* SPDX-License-Identifier: MIT */
/*
 * bridge_epoll: a bridge without a thread, driven by the caller's epoll
 * loop (mempipe_bridge_new, _step, _pollfds, _join; docs/bridge.md).
 *
 * One thread, one epoll set, three parties:
 *
 *   app     code written against a mempipe end (app): it sends BYTES of a
 *           pattern, then shuts down, and checks that every byte comes
 *           back, then EOF;
 *   bridge  pumps the end's peer (wire) to s[0] of a socketpair, both
 *           ways, in steps (mempipe_bridge_step) when its fds are ready;
 *   echo    a plain non-blocking socket server on s[1]: it sends back
 *           what it reads, and shuts down after EOF.
 *
 * After each step the loop re-arms the bridge's two fds with the events
 * mempipe_bridge_pollfds gives (level-triggered). An fd awaited for no
 * event is taken out of the set, as epoll would still report its
 * EPOLLHUP. When a step returns 1 both directions are over and the bridge
 * has closed wire and s[0] (which leaves the set with them); join frees
 * it and says how it ended (a bridge not over is aborted instead: join
 * would run it to its end, blocking). Exit status 0 only if every byte came
 * back in order, EOF came after them, and the bridge ended cleanly.
 *
 *   ./bridge_epoll [bytes]     (default 4 MiB)
 */
#define _GNU_SOURCE /* MSG_NOSIGNAL, SOCK_NONBLOCK */
#include <mempipe.h>

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* epoll tags: which party an event is for. */
enum { T_BRIDGE_END, T_BRIDGE_FD, T_APP, T_ECHO };

static unsigned char pattern(uint64_t pos)
{
    return (unsigned char)(pos * 131u + (pos >> 9));
}

/* Sets fd's events in the epoll set ep (0: not in it); *in says whether
 * it is in the set now. */
static int watch(int ep, int fd, uint32_t events, uint32_t tag, bool *in)
{
    struct epoll_event ev = {.events = events, .data.u32 = tag};
    int rc = 0;
    if (events == 0 && *in)
        rc = epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    else if (events != 0)
        rc = epoll_ctl(ep, *in ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
    if (rc != 0) {
        perror("bridge_epoll: epoll_ctl");
        return -1;
    }
    *in = events != 0;
    return 0;
}

static uint32_t to_epoll(short events)
{
    return ((events & POLLIN) ? EPOLLIN : 0u) |
           ((events & POLLOUT) ? EPOLLOUT : 0u);
}

/* The bridge's part: a step, then its fds re-armed. 1 once it is over. */
struct bridge_side {
    mempipe_bridge *b;
    bool in[2];
    unsigned long steps;
};

static int bridge_turn(int ep, struct bridge_side *bs)
{
    int rc = mempipe_bridge_step(bs->b);
    bs->steps++;
    if (rc != 0)
        return rc; /* 1: over, its fds closed; or an error */
    struct pollfd fds[2];
    int n = mempipe_bridge_pollfds(bs->b, fds);
    for (int i = 0; i < n; i++)
        if (watch(ep, fds[i].fd, to_epoll(fds[i].events),
                  i == 0 ? T_BRIDGE_END : T_BRIDGE_FD, &bs->in[i]) != 0)
            return -1;
    return 0;
}

/* The app: writes the pattern into its end, reads the echo and checks it. */
struct app {
    mempipe *end;
    int fd; /* mempipe_fd(end) */
    uint64_t total, sent, got;
    bool shut, eof, bad;
};

/* Whether k, a call's result, is an error; if so, says which call. */
static bool failed_call(const char *what, ssize_t k)
{
    if (k >= 0)
        return false;
    fprintf(stderr, "bridge_epoll: %s: %s\n", what, mempipe_strerror((int)k));
    return true;
}

static int app_turn(struct app *a)
{
    unsigned char buf[16384];
    while (!a->shut) {
        size_t n =
            a->total - a->sent < sizeof buf ? a->total - a->sent : sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(a->sent + i);
        ssize_t k = n > 0 ? mempipe_poll_write(a->end, buf, n, NULL) : 0;
        if (k == -EAGAIN)
            break;
        if (failed_call("app write", k))
            return -1;
        a->sent += (uint64_t)k;
        if (a->sent == a->total) { /* all sent: EOF follows them */
            if (mempipe_shutdown(a->end) != 0)
                return -1;
            a->shut = true;
        }
    }
    while (!a->eof) {
        ssize_t k = mempipe_poll_read(a->end, buf, sizeof buf, NULL);
        if (k == -EAGAIN)
            break;
        if (failed_call("app read", k))
            return -1;
        if (k == 0) {
            a->eof = true;
            break;
        }
        for (ssize_t i = 0; i < k; i++)
            if (buf[i] != pattern(a->got + (uint64_t)i))
                a->bad = true;
        a->got += (uint64_t)k;
    }
    return 0;
}

/* The echo server on the socketpair's other socket. */
struct echo {
    int fd;
    unsigned char buf[65536];
    size_t len; /* bytes read, not yet sent back */
    bool eof, shut;
    uint64_t echoed;
};

static int echo_turn(struct echo *e)
{
    for (;;) {
        if (e->len > 0) {
            ssize_t k =
                send(e->fd, e->buf, e->len, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (k < 0 && errno == EAGAIN)
                return 0; /* EPOLLOUT brings us back */
            if (k < 0) {
                perror("bridge_epoll: echo send");
                return -1;
            }
            e->echoed += (uint64_t)k;
            e->len -= (size_t)k;
            memmove(e->buf, e->buf + k, e->len);
            continue;
        }
        if (e->eof) {
            if (!e->shut && shutdown(e->fd, SHUT_WR) != 0) {
                perror("bridge_epoll: echo shutdown");
                return -1;
            }
            e->shut = true;
            return 0;
        }
        ssize_t k = recv(e->fd, e->buf, sizeof e->buf, MSG_DONTWAIT);
        if (k < 0 && errno == EAGAIN)
            return 0;
        if (k < 0) {
            perror("bridge_epoll: echo recv");
            return -1;
        }
        if (k == 0)
            e->eof = true;
        e->len = (size_t)k;
    }
}

int main(int argc, char **argv)
{
    uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 4u << 20;
    static struct echo echo;
    struct app app = {.total = total};
    struct bridge_side bs = {0};
    mempipe *wire;
    int s[2];
    if (mempipe_duplex(64 * 1024, &app.end, &wire) != 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s) != 0) {
        fprintf(stderr, "bridge_epoll: no duplex or socketpair\n");
        return 1;
    }
    int rc = mempipe_bridge_new(wire, s[0], &bs.b); /* takes wire, s[0] */
    if (rc != 0) {
        fprintf(stderr, "bridge_epoll: %s\n", mempipe_strerror(rc));
        return 1;
    }
    echo.fd = s[1];
    app.fd = mempipe_fd(app.end);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    bool app_in = false, echo_in = false;
    if (app.fd < 0 || ep < 0 ||
        watch(ep, app.fd, EPOLLIN | EPOLLOUT, T_APP, &app_in) != 0 ||
        watch(ep, echo.fd, EPOLLIN, T_ECHO, &echo_in) != 0)
        return 1;

    int over = bridge_turn(ep, &bs); /* the first step arms the bridge */
    bool failed = over < 0;
    while (!failed && !(over == 1 && app.eof)) {
        struct epoll_event ev[8];
        int n = epoll_wait(ep, ev, 8, 5000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "bridge_epoll: %s\n",
                    n == 0 ? "nothing moved for 5 s" : "epoll_wait failed");
            failed = true;
            break;
        }
        bool step = false;
        for (int i = 0; i < n && !failed; i++) {
            switch (ev[i].data.u32) {
            case T_APP:
                failed = app_turn(&app) != 0;
                /* Written out and shut: wait for reading only. */
                if (!failed && app.shut)
                    failed = watch(ep, app.fd, app.eof ? 0 : EPOLLIN, T_APP,
                                   &app_in) != 0;
                break;
            case T_ECHO:
                failed = echo_turn(&echo) != 0;
                if (!failed)
                    failed = watch(ep, echo.fd,
                                   echo.shut  ? 0
                                   : echo.len ? EPOLLOUT
                                              : EPOLLIN,
                                   T_ECHO, &echo_in) != 0;
                break;
            default:
                step = true;
            }
        }
        if (step && over == 0 && !failed) {
            over = bridge_turn(ep, &bs);
            failed = over < 0;
        }
    }
    watch(ep, app.fd, 0, T_APP, &app_in); /* out of the set before close */
    rc = -1;
    if (over == 1) {
        rc = mempipe_bridge_join(bs.b); /* over: frees it, says how it ended */
    } else {
        /* Not over (a failure above): join would run it to its end,
         * blocking; abort resets both sides and frees it. */
        mempipe_bridge_abort(bs.b);
    }
    mempipe_close(app.end);
    close(echo.fd);
    close(ep);

    bool ok = !failed && rc == 0 && app.eof && !app.bad && app.got == total &&
              echo.echoed == total;
    printf("bridge_epoll: %llu of %llu bytes out and back through a "
           "thread-less bridge in %lu steps%s, %s, bridge %s: %s\n",
           (unsigned long long)app.got, (unsigned long long)total, bs.steps,
           app.bad ? " (some came back wrong)" : "",
           app.eof ? "then EOF" : "no EOF",
           over != 1 ? "not over (aborted)"
           : rc == 0 ? "closed cleanly"
                     : mempipe_strerror(rc),
           ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
