/* SPDX-License-Identifier: MIT */
/*
 * Pollable fds (mempipe_readable_fd / mempipe_writable_fd): level-triggered
 * readiness in every state under poll(2), select(2) and epoll, the
 * documented edge-triggered behaviour, ownership (same fd, closed by
 * mempipe_close, none made unless asked), bad input, and threads blocked in
 * poll(2) woken by the peer.
 */
#include "testutil.h"

#include "end.h" /* white box: p->watch stays NULL unless asked */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAIT_MS 10000 /* a lost wakeup fails after this, it does not hang */

/* 1 if fd polls POLLIN now, 0 if not (poll with a zero timeout). */
static int ready(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, 0);
    if (n < 0)
        return -errno;
    if (n == 1 && (p.revents & ~POLLIN) != 0)
        return -EIO; /* POLLERR/POLLHUP/POLLNVAL: never expected */
    return n == 1;
}

/* ---- level-triggered states under poll(2) ---------------------------------
 */

static void test_fd_readable_follows_data(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[16];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    int rfd = mempipe_readable_fd(b);
    assert_true(rfd >= 0);
    assert_rc(0, ready(rfd)); /* empty */
    assert_rc(3, mempipe_poll_write(a, "abc", 3, NULL));
    assert_rc(1, ready(rfd)); /* data */
    assert_rc(1, ready(rfd)); /* level: still, nothing consumed */
    assert_rc(1, mempipe_poll_read(b, buf, 1, NULL));
    assert_rc(1, ready(rfd)); /* 2 left */
    assert_rc(2, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(0, ready(rfd)); /* drained */
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(0, ready(rfd));
    /* The other direction's readable fd is independent. */
    int rfd_a = mempipe_readable_fd(a);
    assert_true(rfd_a >= 0 && rfd_a != rfd);
    assert_rc(0, ready(rfd_a));
    assert_rc(2, mempipe_poll_write(b, "hi", 2, NULL));
    assert_rc(1, ready(rfd_a));
    assert_rc(0, ready(rfd));
    mempipe_close(a);
    mempipe_close(b);
}

static void test_fd_writable_follows_space(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[16];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    int wfd = mempipe_writable_fd(a);
    assert_true(wfd >= 0);
    assert_rc(1, ready(wfd)); /* empty: space */
    tu_fill(a, 5);
    assert_rc(1, ready(wfd)); /* 3 free */
    tu_fill(a, 3);
    assert_rc(0, ready(wfd)); /* full */
    assert_rc(-EAGAIN, mempipe_poll_write(a, "x", 1, NULL));
    assert_rc(0, ready(wfd));
    assert_rc(1, mempipe_poll_read(b, buf, 1, NULL));
    assert_rc(1, ready(wfd)); /* space freed */
    assert_rc(1, mempipe_poll_write(a, "y", 1, NULL));
    assert_rc(0, ready(wfd)); /* full again */
    assert_rc(8, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(1, ready(wfd));
    mempipe_close(a);
    mempipe_close(b);
}

static void test_fd_shutdown_makes_readable_eof(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[16];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    int rfd = mempipe_readable_fd(b);
    int wfd = mempipe_writable_fd(a);
    assert_true(rfd >= 0 && wfd >= 0);
    tu_fill(a, 8);
    assert_rc(0, ready(wfd)); /* full */
    assert_rc(1, ready(rfd));
    assert_rc(0, mempipe_shutdown(a));
    /* Writable while full: the pending error is -EPIPE (R10). */
    assert_rc(1, ready(wfd));
    assert_rc(-EPIPE, mempipe_poll_write(a, "x", 1, NULL));
    assert_rc(8, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(1, ready(rfd)); /* drained, but EOF is pending */
    assert_rc(0, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(1, ready(rfd)); /* EOF, every time */
    assert_rc(1, ready(wfd));
    mempipe_close(a);
    mempipe_close(b);
}

static void test_fd_shutdown_of_empty_pipe(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[4];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    int rfd = mempipe_readable_fd(b);
    assert_rc(0, ready(rfd));
    assert_rc(0, mempipe_shutdown(a));
    assert_rc(1, ready(rfd));
    assert_rc(0, mempipe_poll_read(b, buf, sizeof buf, NULL));
    mempipe_close(a);
    mempipe_close(b);
}

static void test_fd_peer_close_makes_writable_epipe(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[16];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    int wfd = mempipe_writable_fd(a);
    int rfd = mempipe_readable_fd(a);
    tu_fill(a, 8);
    assert_rc(0, ready(wfd));
    assert_rc(2, mempipe_poll_write(b, "ok", 2, NULL));
    mempipe_close(b);
    assert_rc(1, ready(wfd)); /* the reader is gone: -EPIPE pending */
    assert_rc(-EPIPE, mempipe_poll_write(a, "x", 1, NULL));
    assert_rc(1, ready(wfd));
    /* Readable after the peer's close: its last bytes, then EOF. */
    assert_rc(1, ready(rfd));
    assert_rc(2, mempipe_poll_read(a, buf, sizeof buf, NULL));
    assert_memory_equal(buf, "ok", 2);
    assert_rc(1, ready(rfd));
    assert_rc(0, mempipe_poll_read(a, buf, sizeof buf, NULL));
    mempipe_close(a);
}

static void test_fd_peer_close_with_empty_pipes(void **state)
{
    (void)state;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    int rfd = mempipe_readable_fd(a);
    assert_rc(0, ready(rfd));
    mempipe_close(b);
    assert_rc(1, ready(rfd)); /* EOF */
    mempipe_close(a);
}

static void test_fd_simplex_roles(void **state)
{
    (void)state;
    mempipe *r, *w;
    char buf[8];
    assert_rc(0, mempipe_simplex(4, &r, &w));
    int rfd = mempipe_readable_fd(r);
    int wfd = mempipe_writable_fd(w);
    assert_true(rfd >= 0 && wfd >= 0 && rfd != wfd);
    assert_rc(0, ready(rfd));
    assert_rc(1, ready(wfd));
    tu_fill(w, 4);
    assert_rc(1, ready(rfd));
    assert_rc(0, ready(wfd));
    assert_rc(4, mempipe_poll_read(r, buf, sizeof buf, NULL));
    assert_rc(0, ready(rfd));
    assert_rc(1, ready(wfd));
    tu_fill(w, 4);
    mempipe_close(r); /* R20: the writer gets -EPIPE */
    assert_rc(1, ready(wfd));
    assert_rc(-EPIPE, mempipe_poll_write(w, "x", 1, NULL));
    mempipe_close(w);
}

static void test_fd_simplex_writer_close_gives_reader_eof(void **state)
{
    (void)state;
    mempipe *r, *w;
    char buf[8];
    assert_rc(0, mempipe_simplex(4, &r, &w));
    int rfd = mempipe_readable_fd(r);
    assert_rc(2, mempipe_poll_write(w, "zz", 2, NULL));
    mempipe_close(w);
    assert_rc(1, ready(rfd));
    assert_rc(2, mempipe_poll_read(r, buf, sizeof buf, NULL));
    assert_rc(1, ready(rfd));
    assert_rc(0, mempipe_poll_read(r, buf, sizeof buf, NULL));
    mempipe_close(r);
}

static void test_fd_loopback_both_on_one_pipe(void **state)
{
    (void)state;
    mempipe *e;
    char buf[8];
    assert_rc(0, mempipe_loopback(4, &e));
    int rfd = mempipe_readable_fd(e);
    int wfd = mempipe_writable_fd(e);
    assert_true(rfd >= 0 && wfd >= 0 && rfd != wfd);
    assert_rc(0, ready(rfd));
    assert_rc(1, ready(wfd));
    tu_fill(e, 4);
    assert_rc(1, ready(rfd));
    assert_rc(0, ready(wfd));
    assert_rc(1, mempipe_poll_read(e, buf, 1, NULL));
    assert_rc(1, ready(rfd));
    assert_rc(1, ready(wfd));
    assert_rc(3, mempipe_poll_read(e, buf, sizeof buf, NULL));
    assert_rc(0, ready(rfd));
    assert_rc(0, mempipe_shutdown(e));
    assert_rc(1, ready(rfd)); /* EOF */
    assert_rc(1, ready(wfd)); /* -EPIPE */
    mempipe_close(e);
}

/* Bytes already buffered when the fd is first asked for count at once. */
static void test_fd_made_late_starts_in_the_right_state(void **state)
{
    (void)state;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    tu_fill(a, 4);
    int rfd = mempipe_readable_fd(b);
    int wfd = mempipe_writable_fd(a);
    assert_rc(1, ready(rfd));
    assert_rc(0, ready(wfd));
    mempipe_close(b);
    int rfd_a = mempipe_readable_fd(a);
    assert_rc(1, ready(rfd_a)); /* EOF already */
    assert_rc(1, ready(wfd));
    mempipe_close(a);
}

/* ---- select(2) and epoll ----------------------------------------------- */

/* 1 if select(2) reports fd readable now, 0 if not. */
static int select_ready(int fd)
{
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(fd, &rs);
    struct timeval tv = {0, 0};
    int n = select(fd + 1, &rs, NULL, NULL, &tv);
    if (n < 0)
        return -errno;
    return n == 1 && FD_ISSET(fd, &rs);
}

static void test_fd_select(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[8];
    assert_rc(0, mempipe_duplex(4, &a, &b));
    int rfd = mempipe_readable_fd(b);
    int wfd = mempipe_writable_fd(a);
    assert_true(rfd < FD_SETSIZE && wfd < FD_SETSIZE);
    assert_rc(0, select_ready(rfd));
    assert_rc(1, select_ready(wfd));
    tu_fill(a, 4);
    assert_rc(1, select_ready(rfd));
    assert_rc(0, select_ready(wfd));
    assert_rc(4, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(0, select_ready(rfd));
    assert_rc(1, select_ready(wfd));
    mempipe_close(b);
    assert_rc(1, select_ready(wfd)); /* -EPIPE pending */
    mempipe_close(a);
}

/* Events epoll_wait reports now (zero timeout); tags are 'r' and 'w'. */
static int epoll_now(int ep, int *got_r, int *got_w)
{
    struct epoll_event ev[4];
    /* Set on every path, the error one included: the callers read them. */
    *got_r = *got_w = 0;
    int n = epoll_wait(ep, ev, 4, 0);
    if (n < 0)
        return -errno;
    for (int i = 0; i < n; i++) {
        if (ev[i].data.u32 == 'r')
            *got_r = 1;
        if (ev[i].data.u32 == 'w')
            *got_w = 1;
    }
    return n;
}

static int epoll_add(int ep, int fd, uint32_t events, uint32_t tag)
{
    struct epoll_event ev = {.events = events, .data.u32 = tag};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static void test_fd_epoll_level(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[8];
    int r, w;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    assert_true(ep >= 0);
    assert_rc(0, epoll_add(ep, mempipe_readable_fd(b), EPOLLIN, 'r'));
    assert_rc(0, epoll_add(ep, mempipe_writable_fd(a), EPOLLIN, 'w'));
    assert_rc(1, epoll_now(ep, &r, &w));
    assert_rc(0, r);
    assert_rc(1, w);
    assert_rc(1, epoll_now(ep, &r, &w)); /* level: reported again */
    assert_rc(1, w);
    tu_fill(a, 4);
    assert_rc(1, epoll_now(ep, &r, &w));
    assert_rc(1, r);
    assert_rc(0, w);
    assert_rc(1, epoll_now(ep, &r, &w)); /* still readable, still full */
    assert_rc(1, r);
    assert_rc(1, mempipe_poll_read(b, buf, 1, NULL));
    assert_rc(2, epoll_now(ep, &r, &w)); /* 3 left and 1 free */
    assert_rc(3, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(1, epoll_now(ep, &r, &w));
    assert_rc(0, r);
    assert_rc(1, w);
    close(ep);
    mempipe_close(a);
    mempipe_close(b);
}

/*
 * EPOLLET, as documented: one event per false -> true transition. More bytes
 * while still readable bring none; after draining to -EAGAIN the next bytes
 * bring one. The writable fd likewise after filling to -EAGAIN.
 */
static void test_fd_epoll_edge(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[8];
    int r, w;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    assert_true(ep >= 0);
    assert_rc(0, epoll_add(ep, mempipe_readable_fd(b), EPOLLIN | EPOLLET, 'r'));
    assert_rc(0, epoll_add(ep, mempipe_writable_fd(a), EPOLLIN | EPOLLET, 'w'));
    assert_rc(1, epoll_now(ep, &r, &w)); /* writable from the start */
    assert_rc(1, w);
    assert_rc(0, epoll_now(ep, &r, &w)); /* edge consumed */

    assert_rc(1, mempipe_poll_write(a, "1", 1, NULL));
    assert_rc(1, epoll_now(ep, &r, &w)); /* readable: false -> true */
    assert_rc(1, r);
    assert_rc(0, epoll_now(ep, &r, &w));
    assert_rc(1, mempipe_poll_write(a, "2", 1, NULL));
    assert_rc(0, epoll_now(ep, &r, &w)); /* still readable: no new event */

    assert_rc(2, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(0, epoll_now(ep, &r, &w));
    assert_rc(1, mempipe_poll_write(a, "3", 1, NULL));
    assert_rc(1, epoll_now(ep, &r, &w)); /* drained, then new bytes */
    assert_rc(1, r);

    tu_fill(a, 3); /* full: writable goes false */
    assert_rc(-EAGAIN, mempipe_poll_write(a, "x", 1, NULL));
    assert_rc(0, epoll_now(ep, &r, &w));
    assert_rc(1, mempipe_poll_read(b, buf, 1, NULL));
    assert_rc(1, epoll_now(ep, &r, &w)); /* space: false -> true */
    assert_rc(1, w);
    assert_rc(1, mempipe_poll_read(b, buf, 1, NULL));
    assert_rc(0, epoll_now(ep, &r, &w)); /* more space: no new event */

    assert_rc(2, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(0, mempipe_shutdown(a));
    assert_rc(1, epoll_now(ep, &r, &w)); /* EOF: false -> true */
    assert_rc(1, r);
    close(ep);
    mempipe_close(a);
    mempipe_close(b);
}

/* ---- ownership --------------------------------------------------------- */

static void test_fd_same_fd_on_repeated_calls(void **state)
{
    (void)state;
    mempipe *a, *b, *e;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    assert_rc(0, mempipe_loopback(4, &e));
    int fds[6] = {mempipe_readable_fd(a), mempipe_writable_fd(a),
                  mempipe_readable_fd(b), mempipe_writable_fd(b),
                  mempipe_readable_fd(e), mempipe_writable_fd(e)};
    for (int i = 0; i < 6; i++) {
        assert_true(fds[i] >= 0);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(fds[i], fds[j]);
    }
    for (int k = 0; k < 3; k++) {
        assert_rc(fds[0], mempipe_readable_fd(a));
        assert_rc(fds[1], mempipe_writable_fd(a));
        assert_rc(fds[2], mempipe_readable_fd(b));
        assert_rc(fds[3], mempipe_writable_fd(b));
        assert_rc(fds[4], mempipe_readable_fd(e));
        assert_rc(fds[5], mempipe_writable_fd(e));
    }
    mempipe_close(a);
    mempipe_close(b);
    mempipe_close(e);
}

static void test_fd_nonblocking_cloexec_and_backend(void **state)
{
    (void)state;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    int fds[2] = {mempipe_readable_fd(a), mempipe_writable_fd(a)};
    for (int i = 0; i < 2; i++) {
        assert_true(fds[i] >= 0);
        int fl = fcntl(fds[i], F_GETFL);
        int fdfl = fcntl(fds[i], F_GETFD);
        assert_true(fl >= 0 && (fl & O_NONBLOCK) != 0);
        assert_true(fdfl >= 0 && (fdfl & FD_CLOEXEC) != 0);
        struct stat st;
        assert_rc(0, fstat(fds[i], &st));
#if defined(MEMPIPE_FD_PIPE) || !defined(__linux__)
        assert_true(S_ISFIFO(st.st_mode)); /* the pipe(2) fallback */
#else
        char path[64], link[64] = {0};
        snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
        assert_true(readlink(path, link, sizeof link - 1) > 0);
        assert_string_equal(link, "anon_inode:[eventfd]");
#endif
    }
    mempipe_close(a);
    mempipe_close(b);
}

static void test_fd_closed_by_mempipe_close(void **state)
{
    (void)state;
    mempipe *a, *b, *e;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    assert_rc(0, mempipe_loopback(4, &e));
    int fa[2] = {mempipe_readable_fd(a), mempipe_writable_fd(a)};
    int fb = mempipe_readable_fd(b);
    int fe[2] = {mempipe_readable_fd(e), mempipe_writable_fd(e)};
    mempipe_close(a); /* b stays open: only a's fds go */
    for (int i = 0; i < 2; i++) {
        errno = 0;
        assert_rc(-1, fcntl(fa[i], F_GETFD));
        assert_rc(EBADF, errno);
    }
    assert_true(fcntl(fb, F_GETFD) >= 0);
    assert_rc(1, ready(fb)); /* a's close gave b EOF */
    mempipe_close(b);
    errno = 0;
    assert_rc(-1, fcntl(fb, F_GETFD));
    assert_rc(EBADF, errno);
    mempipe_close(e);
    for (int i = 0; i < 2; i++) {
        errno = 0;
        assert_rc(-1, fcntl(fe[i], F_GETFD));
        assert_rc(EBADF, errno);
    }
}

/* Pipes whose fds nobody asked for open no descriptor and no watch. */
static void test_fd_none_made_unless_asked(void **state)
{
    (void)state;
    int before = tu_count_fds();
    assert_true(before > 0);
    mempipe *a, *b, *r, *w, *e;
    char buf[64];
    assert_rc(0, mempipe_duplex(16, &a, &b));
    assert_rc(0, mempipe_simplex(16, &r, &w));
    assert_rc(0, mempipe_loopback(16, &e));
    for (int i = 0; i < 100; i++) {
        tu_fill(a, 16);
        tu_fill(w, 16);
        tu_fill(e, 16);
        assert_rc(-EAGAIN, mempipe_poll_write(a, "x", 1, NULL));
        assert_rc(16, mempipe_poll_read(b, buf, sizeof buf, NULL));
        assert_rc(16, mempipe_read(r, buf, sizeof buf));
        assert_rc(16, mempipe_poll_read(e, buf, sizeof buf, NULL));
        assert_rc(-EAGAIN, mempipe_poll_read(e, buf, sizeof buf, NULL));
    }
    assert_rc(0, mempipe_shutdown(a));
    assert_rc(0, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(before, tu_count_fds());
    assert_null(atomic_load(&mempipe__end_rx(a)->watch));
    assert_null(atomic_load(&mempipe__end_tx(a)->watch));
    assert_null(atomic_load(&mempipe__end_rx(r)->watch));
    assert_null(atomic_load(&mempipe__end_rx(e)->watch));
    mempipe_close(w);
    mempipe_close(r);
    mempipe_close(b);
    mempipe_close(a);
    mempipe_close(e);
    assert_rc(before, tu_count_fds());

    /* Asked: exactly one descriptor per eventfd (two per pipe(2)). */
    assert_rc(0, mempipe_duplex(16, &a, &b));
    assert_true(mempipe_readable_fd(a) >= 0);
    int per = tu_count_fds() - before;
    assert_true(per == 1 || per == 2);
    assert_true(mempipe_writable_fd(a) >= 0);
    assert_rc(before + 2 * per, tu_count_fds());
    mempipe_close(a);
    mempipe_close(b);
    assert_rc(before, tu_count_fds());
}

static void test_fd_bad_input(void **state)
{
    (void)state;
    mempipe *r, *w;
    assert_rc(-EINVAL, mempipe_readable_fd(NULL));
    assert_rc(-EINVAL, mempipe_writable_fd(NULL));
    int before = tu_count_fds();
    assert_rc(0, mempipe_simplex(4, &r, &w));
    assert_rc(-EBADF, mempipe_readable_fd(w));
    assert_rc(-EBADF, mempipe_writable_fd(r));
    assert_rc(before, tu_count_fds()); /* nothing made on failure */
    mempipe_close(r);
    mempipe_close(w);
}

/* ---- threads ----------------------------------------------------------- */

#define ROUNDS 10000

struct pingpong {
    mempipe *a, *b;
    int fd;
    /* First failure seen by a thread (cmocka asserts on the main thread). */
    int bad_round;
    long expected, got;
    const char *what;
};

static void *blocked_reader(void *arg)
{
    struct pingpong *t = arg;
    for (int i = 0; i < ROUNDS; i++) {
        unsigned char c;
        long rc;
        /* The pipe is empty: the fd must not be ready before we block. */
        if ((rc = ready(t->fd)) != 0) {
            t->what = "readable fd ready on an empty pipe";
            t->expected = 0, t->got = rc, t->bad_round = i;
            return NULL;
        }
        /* Tell the writer we are about to block in poll(2). */
        if ((rc = mempipe_write(t->b, "r", 1)) != 1) {
            t->what = "announce", t->expected = 1, t->got = rc;
            t->bad_round = i;
            return NULL;
        }
        struct pollfd p = {.fd = t->fd, .events = POLLIN};
        if ((rc = poll(&p, 1, WAIT_MS)) != 1) {
            t->what = "poll(readable fd) woken", t->expected = 1;
            t->got = rc, t->bad_round = i;
            return NULL;
        }
        if ((rc = mempipe_poll_read(t->b, &c, 1, NULL)) != 1 ||
            c != (unsigned char)i) {
            t->what = "read after wake", t->expected = (unsigned char)i;
            t->got = rc == 1 ? c : rc, t->bad_round = i;
            return NULL;
        }
    }
    return NULL;
}

static void *announcing_writer(void *arg)
{
    struct pingpong *t = arg;
    for (int i = 0; i < ROUNDS; i++) {
        unsigned char c = (unsigned char)i, ann;
        if (mempipe_read(t->a, &ann, 1) != 1 ||
            mempipe_poll_write(t->a, &c, 1, NULL) != 1)
            return NULL; /* the reader failed and went away */
    }
    return NULL;
}

static void check_pingpong(const struct pingpong *t)
{
    if (t->what != NULL)
        fail_msg("round %d: %s: expected %ld, got %ld", t->bad_round, t->what,
                 t->expected, t->got);
}

static void test_fd_poll_blocked_reader_woken_by_writer(void **state)
{
    (void)state;
    struct pingpong t = {0};
    assert_rc(0, mempipe_duplex(64, &t.a, &t.b));
    t.fd = mempipe_readable_fd(t.b);
    assert_true(t.fd >= 0);
    pthread_t rd, wr;
    assert_rc(0, pthread_create(&rd, NULL, blocked_reader, &t));
    assert_rc(0, pthread_create(&wr, NULL, announcing_writer, &t));
    pthread_join(rd, NULL);
    mempipe_shutdown(t.b); /* frees the writer if the reader failed */
    pthread_join(wr, NULL);
    check_pingpong(&t);
    mempipe_close(t.a);
    mempipe_close(t.b);
}

/* The writer side: data on a simplex of capacity 1, announcements on the
 * duplex t (writer a -> reader b). */
struct wpair {
    struct pingpong t;
    mempipe *r, *w;
};

static void *announced_reader(void *arg)
{
    struct wpair *p = arg;
    for (int i = 0; i < ROUNDS; i++) {
        unsigned char ann, c;
        if (mempipe_read(p->t.b, &ann, 1) != 1)
            return NULL; /* the writer failed and went away */
        if (mempipe_poll_read(p->r, &c, 1, NULL) != 1 ||
            c != (unsigned char)i) {
            if (p->t.what == NULL) {
                p->t.what = "data byte", p->t.expected = (unsigned char)i;
                p->t.got = c, p->t.bad_round = i;
            }
            return NULL;
        }
    }
    return NULL;
}

static void *blocked_simplex_writer(void *arg)
{
    struct wpair *p = arg;
    struct pingpong *t = &p->t;
    for (int i = 0; i < ROUNDS; i++) {
        unsigned char c = (unsigned char)i;
        long rc;
        /* One byte fills the pipe; the reader waits for our announcement,
         * so the writable fd must be clear until we block. */
        if ((rc = mempipe_poll_write(p->w, &c, 1, NULL)) != 1) {
            t->what = "write into empty pipe", t->expected = 1;
            t->got = rc, t->bad_round = i;
            return NULL;
        }
        if ((rc = ready(t->fd)) != 0) {
            t->what = "writable fd ready on a full pipe", t->expected = 0;
            t->got = rc, t->bad_round = i;
            return NULL;
        }
        if ((rc = mempipe_write(t->a, "w", 1)) != 1) {
            t->what = "announce", t->expected = 1, t->got = rc;
            t->bad_round = i;
            return NULL;
        }
        struct pollfd pf = {.fd = t->fd, .events = POLLIN};
        if ((rc = poll(&pf, 1, WAIT_MS)) != 1) {
            t->what = "poll(writable fd) woken", t->expected = 1;
            t->got = rc, t->bad_round = i;
            return NULL;
        }
    }
    return NULL;
}

static void test_fd_poll_blocked_writer_woken_by_reader(void **state)
{
    (void)state;
    struct wpair p = {0};
    assert_rc(0, mempipe_duplex(64, &p.t.a, &p.t.b)); /* announcements */
    assert_rc(0, mempipe_simplex(1, &p.r, &p.w));     /* data, M = 1 */
    p.t.fd = mempipe_writable_fd(p.w);
    assert_true(p.t.fd >= 0);
    pthread_t rd, wr;
    assert_rc(0, pthread_create(&wr, NULL, blocked_simplex_writer, &p));
    assert_rc(0, pthread_create(&rd, NULL, announced_reader, &p));
    pthread_join(wr, NULL);
    mempipe_shutdown(p.t.a); /* frees the reader if the writer failed */
    pthread_join(rd, NULL);
    check_pingpong(&p.t);
    mempipe_close(p.r);
    mempipe_close(p.w);
    mempipe_close(p.t.a);
    mempipe_close(p.t.b);
}

/*
 * Both sides driven only by the fds, as an event loop would: the reader
 * polls the readable fd and reads until -EAGAIN, the writer writes until
 * -EAGAIN and polls the writable fd. A small capacity makes every call flip
 * the fds, so the reader clearing and the writer setting race all the time;
 * a lost update leaves one side asleep and fails its poll after WAIT_MS.
 * The main thread shuts the writing side down at the end (a third thread).
 */
#define STRESS_BYTES (256u * 1024u)
#define STRESS_SEED  0xfd5eedu

struct stress {
    mempipe *rd, *wr;
    int rfd, wfd;
    size_t got;
    const char *what;
    long expected, actual;
};

static void *stress_reader(void *arg)
{
    struct stress *s = arg;
    uint64_t rng = 7;
    unsigned char buf[97];
    for (;;) {
        struct pollfd p = {.fd = s->rfd, .events = POLLIN};
        long rc = poll(&p, 1, WAIT_MS);
        if (rc != 1) {
            s->what = "poll(readable fd)", s->expected = 1, s->actual = rc;
            return NULL;
        }
        for (;;) {
            size_t want = 1 + tu_rand(&rng) % sizeof buf;
            ssize_t n = mempipe_poll_read(s->rd, buf, want, NULL);
            if (n == -EAGAIN)
                break;
            if (n == 0)
                return NULL; /* EOF */
            if (n < 0) {
                s->what = "read", s->expected = 1, s->actual = n;
                return NULL;
            }
            long bad = tu_check_pattern(buf, (size_t)n, s->got, STRESS_SEED);
            if (bad >= 0) {
                s->what = "byte at stream offset", s->expected = -1;
                s->actual = (long)s->got + bad;
                return NULL;
            }
            s->got += (size_t)n;
        }
    }
}

static void *stress_writer(void *arg)
{
    struct stress *s = arg;
    uint64_t rng = 11;
    unsigned char buf[113];
    size_t put = 0;
    while (put < STRESS_BYTES) {
        size_t want = 1 + tu_rand(&rng) % sizeof buf;
        if (want > STRESS_BYTES - put)
            want = STRESS_BYTES - put;
        tu_pattern(buf, want, put, STRESS_SEED);
        ssize_t n = mempipe_poll_write(s->wr, buf, want, NULL);
        if (n > 0) {
            put += (size_t)n;
            continue;
        }
        if (n != -EAGAIN) {
            s->what = "write", s->expected = 1, s->actual = n;
            return NULL;
        }
        struct pollfd p = {.fd = s->wfd, .events = POLLIN};
        long rc = poll(&p, 1, WAIT_MS);
        if (rc != 1) {
            s->what = "poll(writable fd)", s->expected = 1, s->actual = rc;
            return NULL;
        }
    }
    return NULL;
}

static void run_stress(mempipe *rd, mempipe *wr)
{
    struct stress s = {.rd = rd, .wr = wr};
    s.rfd = mempipe_readable_fd(rd);
    s.wfd = mempipe_writable_fd(wr);
    assert_true(s.rfd >= 0 && s.wfd >= 0);
    pthread_t tr, tw;
    assert_rc(0, pthread_create(&tr, NULL, stress_reader, &s));
    assert_rc(0, pthread_create(&tw, NULL, stress_writer, &s));
    pthread_join(tw, NULL);
    assert_rc(0, mempipe_shutdown(wr)); /* the reader sees EOF by its fd */
    pthread_join(tr, NULL);
    if (s.what != NULL)
        fail_msg("%s: expected %ld, got %ld (after %zu bytes)", s.what,
                 s.expected, s.actual, s.got);
    assert_rc(STRESS_BYTES, s.got);
    assert_rc(1, ready(s.rfd)); /* EOF */
    assert_rc(1, ready(s.wfd)); /* -EPIPE */
}

static void test_fd_race_duplex_driven_by_fds(void **state)
{
    (void)state;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(61, &a, &b));
    run_stress(b, a);
    mempipe_close(a);
    mempipe_close(b);
}

/* One end, one pipe, both fds on it: a reader and a writer thread. */
static void test_fd_race_loopback_driven_by_fds(void **state)
{
    (void)state;
    mempipe *e;
    assert_rc(0, mempipe_loopback(61, &e));
    run_stress(e, e);
    mempipe_close(e);
}

/* Both ends ask for their fd on the same pipe at once: one watch, two fds. */
struct asker {
    mempipe *end;
    int readable;
    atomic_int *go;
    int fd;
};

static void *ask(void *arg)
{
    struct asker *k = arg;
    while (atomic_load(k->go) == 0)
        ;
    k->fd =
        k->readable ? mempipe_readable_fd(k->end) : mempipe_writable_fd(k->end);
    return NULL;
}

static void test_fd_both_ends_ask_at_once(void **state)
{
    (void)state;
    for (int i = 0; i < 200; i++) {
        mempipe *a, *b;
        atomic_int go = 0;
        assert_rc(0, mempipe_duplex(4, &a, &b));
        struct asker ka = {.end = a, .readable = 0, .go = &go};
        struct asker kb = {.end = b, .readable = 1, .go = &go};
        pthread_t ta, tb;
        assert_rc(0, pthread_create(&ta, NULL, ask, &ka));
        assert_rc(0, pthread_create(&tb, NULL, ask, &kb));
        atomic_store(&go, 1);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        assert_true(ka.fd >= 0 && kb.fd >= 0 && ka.fd != kb.fd);
        assert_rc(ka.fd, mempipe_writable_fd(a));
        assert_rc(kb.fd, mempipe_readable_fd(b));
        assert_rc(1, ready(ka.fd));
        assert_rc(0, ready(kb.fd));
        tu_fill(a, 4);
        assert_rc(0, ready(ka.fd));
        assert_rc(1, ready(kb.fd));
        mempipe_close(a);
        mempipe_close(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_readable_follows_data),
        cmocka_unit_test(test_fd_writable_follows_space),
        cmocka_unit_test(test_fd_shutdown_makes_readable_eof),
        cmocka_unit_test(test_fd_shutdown_of_empty_pipe),
        cmocka_unit_test(test_fd_peer_close_makes_writable_epipe),
        cmocka_unit_test(test_fd_peer_close_with_empty_pipes),
        cmocka_unit_test(test_fd_simplex_roles),
        cmocka_unit_test(test_fd_simplex_writer_close_gives_reader_eof),
        cmocka_unit_test(test_fd_loopback_both_on_one_pipe),
        cmocka_unit_test(test_fd_made_late_starts_in_the_right_state),
        cmocka_unit_test(test_fd_select),
        cmocka_unit_test(test_fd_epoll_level),
        cmocka_unit_test(test_fd_epoll_edge),
        cmocka_unit_test(test_fd_same_fd_on_repeated_calls),
        cmocka_unit_test(test_fd_nonblocking_cloexec_and_backend),
        cmocka_unit_test(test_fd_closed_by_mempipe_close),
        cmocka_unit_test(test_fd_none_made_unless_asked),
        cmocka_unit_test(test_fd_bad_input),
        cmocka_unit_test(test_fd_poll_blocked_reader_woken_by_writer),
        cmocka_unit_test(test_fd_poll_blocked_writer_woken_by_reader),
        cmocka_unit_test(test_fd_race_duplex_driven_by_fds),
        cmocka_unit_test(test_fd_race_loopback_driven_by_fds),
        cmocka_unit_test(test_fd_both_ends_ask_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
