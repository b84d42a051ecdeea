/* SPDX-License-Identifier: MIT */
/*
 * Bridges (mempipe.h, SPEC R80-R86): an end pumped to a real stream fd.
 * Each test talks to the bridge from both sides, the end's peer (a) and
 * the fd's peer (a socketpair's other socket, a pipe's other end, or a TCP
 * client on 127.0.0.1), and checks what each side sees against what the
 * socket rules say it would see over a real socket.
 */
#include "kinds.h" /* the counting allocator */

#include "../examples/http10.h" /* the responder bridge_tcp serves */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define SEED 0xb1d9eu

/* ---- helpers ----------------------------------------------------------- */

/* A connected TCP pair on 127.0.0.1: *srv the accepted side. */
static void tcp_pair(int *cli, int *srv)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    *cli = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(*cli >= 0);
    assert_int_equal(connect(*cli, (struct sockaddr *)&sa, sizeof sa), 0);
    *srv = accept(l, NULL, NULL);
    assert_true(*srv >= 0);
    close(l);
}

/* A duplex of capacity cap whose far end is bridged to s[0] of a fresh
 * socketpair: *a is the end's peer, s[1] the fd's peer. */
static mempipe_bridge *rig(size_t cap, mempipe **a, int s[2])
{
    mempipe *b;
    mempipe_bridge *br;
    assert_rc(0, mempipe_duplex(cap, a, &b));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    assert_rc(0, mempipe_bridge_fd(b, s[0], &br));
    return br;
}

/* The same over TCP on 127.0.0.1: *cli the fd's peer. */
static mempipe_bridge *rig_tcp(size_t cap, mempipe **a, int *cli)
{
    mempipe *b;
    mempipe_bridge *br;
    int srv;
    assert_rc(0, mempipe_duplex(cap, a, &b));
    tcp_pair(cli, &srv);
    assert_rc(0, mempipe_bridge_fd(b, srv, &br));
    return br;
}

/* Blocking full write to an fd. */
static void fd_write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        assert_true(k > 0);
        p += k;
        n -= (size_t)k;
    }
}

/* One side of a transfer: a mempipe end, or (e NULL) an fd. */
struct job {
    mempipe *e;
    int fd;
    size_t n;
    uint64_t seed;
};

/* Reads the side to EOF, checking the pattern; returns the bytes read. */
static size_t read_check(const struct job *j)
{
    unsigned char buf[8192];
    size_t pos = 0;
    for (;;) {
        ssize_t k = j->e != NULL ? mempipe_read(j->e, buf, sizeof buf)
                                 : read(j->fd, buf, sizeof buf);
        if (k < 0 && j->e == NULL && errno == EINTR)
            continue;
        assert_true(k >= 0);
        if (k == 0)
            return pos;
        assert_int_equal(tu_check_pattern(buf, (size_t)k, pos, j->seed), -1);
        pos += (size_t)k;
    }
}

/* Writes n pattern bytes into the side, then shuts its sending side. */
static void *writer(void *arg)
{
    struct job *j = arg;
    unsigned char buf[5000];
    for (size_t pos = 0; pos < j->n;) {
        size_t k = j->n - pos < sizeof buf ? j->n - pos : sizeof buf;
        tu_pattern(buf, k, pos, j->seed);
        if (j->e != NULL)
            assert_rc(k, mempipe_write(j->e, buf, k));
        else
            fd_write_all(j->fd, buf, k);
        pos += k;
    }
    if (j->e != NULL)
        assert_rc(0, mempipe_shutdown(j->e));
    else
        assert_int_equal(shutdown(j->fd, SHUT_WR), 0);
    return NULL;
}

/* ---- R80: bytes both ways, backpressure, EOF each way ------------------ */

/* The bytes of a transfer: n, or at most MEMPIPE_BRIDGE_BYTES if set (the
 * valgrind step sets it small). */
static size_t sized(size_t n)
{
    const char *v = getenv("MEMPIPE_BRIDGE_BYTES");
    size_t cap = v != NULL ? (size_t)strtoull(v, NULL, 10) : 0;
    return cap > 0 && cap < n ? cap : n;
}

static void both_ways(size_t cap, int kind, size_t n)
{
    n = sized(n);
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(cap, &a, &b));
    int s[2];
    if (kind == 0)
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    else
        tcp_pair(&s[1], &s[0]);
    mempipe_bridge *br;
    assert_rc(0, mempipe_bridge_fd(b, s[0], &br));
    /* a writes SEED's stream to s[1]; s[1] writes SEED + 1's to a. */
    struct job ja = {.e = a, .n = n, .seed = SEED};
    struct job js = {.fd = s[1], .n = n, .seed = SEED + 1};
    struct job ra = {.fd = s[1], .seed = SEED}, rs = {.e = a, .seed = SEED + 1};
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, writer, &ja), 0);
    assert_int_equal(pthread_create(&t2, NULL, writer, &js), 0);
    assert_int_equal(read_check(&ra), n);
    assert_int_equal(read_check(&rs), n);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_rc(0, mempipe_bridge_join(br));
    mempipe_close(a);
    close(s[1]);
}

static void test_R80_bytes_both_ways_socketpair(void **state)
{
    (void)state;
    both_ways(1, 0, 64 * 1024);
    both_ways(7, 0, 256 * 1024);
    both_ways(4096, 0, 4u << 20);
    both_ways(65536, 0, 16u << 20);
}

static void test_R80_bytes_both_ways_tcp(void **state)
{
    (void)state;
    both_ways(7, 1, 256 * 1024);
    both_ways(65536, 1, 16u << 20);
}

/* Backpressure: with nobody reading the fd, the bridge takes no more from
 * the end than the socket buffer holds, and the end fills up. */
static void test_R80_backpressure_fills_the_end(void **state)
{
    (void)state;
    mempipe *a;
    int s[2];
    mempipe_bridge *br = rig(4096, &a, s);
    static unsigned char buf[1 << 20];
    size_t put = 0;
    double t0 = tu_now();
    /* Poll writes until -EAGAIN lasts: the socket and the end are full. */
    while (tu_now() - t0 < 5) {
        ssize_t k = mempipe_poll_write(a, buf, sizeof buf, NULL);
        if (k > 0) {
            put += (size_t)k;
            t0 = tu_now();
            continue;
        }
        assert_rc(-EAGAIN, k);
        if (tu_now() - t0 > 0.2)
            break;
        usleep(1000);
    }
    assert_true(put < sizeof buf);            /* it stopped: bounded */
    assert_int_equal(mempipe_writable(a), 0); /* the end is full */
    assert_true(put > 4096);                  /* the socket holds some */
    /* Drained, everything arrives in order. */
    assert_rc(0, mempipe_shutdown(a));
    unsigned char rb[8192];
    size_t got = 0;
    ssize_t k;
    while ((k = read(s[1], rb, sizeof rb)) > 0)
        got += (size_t)k;
    assert_int_equal(got, put);
    close(s[1]); /* the fd's peer is gone: the end reads EOF */
    assert_rc(0, mempipe_read(a, rb, sizeof rb));
    assert_rc(0, mempipe_bridge_join(br));
    mempipe_close(a);
}

/* ---- R81: half-close each way ------------------------------------------ */

static void test_R81_half_close_each_way(void **state)
{
    (void)state;
    mempipe *a;
    int s[2];
    mempipe_bridge *br = rig(64, &a, s);
    char c[8];
    /* The end's peer shuts down: the fd's peer reads its bytes, then EOF,
     * and can still send. */
    assert_rc(3, mempipe_write(a, "abc", 3));
    assert_rc(0, mempipe_shutdown(a));
    assert_int_equal(read(s[1], c, sizeof c), 3);
    assert_int_equal(read(s[1], c, sizeof c), 0);
    fd_write_all(s[1], "xyz", 3);
    assert_rc(3, mempipe_read_full(a, c, 3));
    assert_memory_equal(c, "xyz", 3);
    /* Then the fd's peer shuts down: the end reads EOF; both over. */
    assert_int_equal(shutdown(s[1], SHUT_WR), 0);
    assert_rc(0, mempipe_read(a, c, sizeof c));
    assert_rc(0, mempipe_bridge_join(br));
    mempipe_close(a);
    close(s[1]);
}

/* ---- R82: resets each way (TCP, where a reset is on the wire) ---------- */

static void test_R82_end_abort_resets_the_tcp_peer(void **state)
{
    (void)state;
    mempipe *a;
    int cli;
    mempipe_bridge *br = rig_tcp(4096, &a, &cli);
    mempipe_abort(a);
    char c[8];
    ssize_t k = read(cli, c, sizeof c);
    assert_int_equal(k, -1);
    assert_int_equal(errno, ECONNRESET);
    assert_rc(0, mempipe_bridge_join(br));
    close(cli);
}

static void test_R82_tcp_reset_reaches_the_end(void **state)
{
    (void)state;
    mempipe *a;
    int cli;
    mempipe_bridge *br = rig_tcp(4096, &a, &cli);
    fd_write_all(cli, "hi", 2);
    char c[8];
    assert_rc(2, mempipe_read_full(a, c, 2));
    struct linger lg = {1, 0};
    assert_int_equal(setsockopt(cli, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(cli); /* an RST */
    assert_rc(-ECONNRESET, mempipe_read(a, c, sizeof c));
    assert_rc(0, mempipe_bridge_join(br));
    mempipe_close(a);
}

/* The end's peer closes with the fd's peer still sending: the bridge
 * shuts the socket's receiving side, and the end's peer is gone. */
static void test_R82_end_close_ends_the_bridge(void **state)
{
    (void)state;
    mempipe *a;
    int s[2];
    mempipe_bridge *br = rig(64, &a, s);
    mempipe_close(a);
    char c[8];
    assert_int_equal(read(s[1], c, sizeof c), 0); /* EOF */
    assert_rc(0, mempipe_bridge_join(br));
    /* The bridge closed its socket: s1 sees the peer gone. */
    assert_int_equal(read(s[1], c, sizeof c), 0);
    close(s[1]);
}

/* ---- R83: pipe fds run one way ---------------------------------------- */

static void test_R83_pipe_read_end_pumps_into_the_end(void **state)
{
    (void)state;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(16, &a, &b));
    int p[2];
    assert_int_equal(pipe(p), 0);
    mempipe_bridge *br;
    assert_rc(0, mempipe_bridge_fd(b, p[0], &br));
    fd_write_all(p[1], "pipe", 4);
    char c[8];
    assert_rc(4, mempipe_read_full(a, c, 4));
    assert_memory_equal(c, "pipe", 4);
    /* Nobody takes the end's peer's writes (the bridge's first step ran
     * before the bytes came). */
    assert_rc(-EPIPE, mempipe_write(a, "x", 1));
    close(p[1]);
    assert_rc(0, mempipe_read(a, c, sizeof c));
    assert_rc(0, mempipe_bridge_join(br));
    mempipe_close(a);
}

static void test_R83_pipe_write_end_pumps_out_without_sigpipe(void **state)
{
    (void)state;
    /* SIGPIPE's default would kill the test: the bridge must raise none. */
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
    sigaction(SIGPIPE, &dfl, &old);
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(16, &a, &b));
    int p[2];
    assert_int_equal(pipe(p), 0);
    mempipe_bridge *br;
    assert_rc(0, mempipe_bridge_fd(b, p[1], &br));
    assert_rc(3, mempipe_write(a, "out", 3));
    char c[8];
    assert_int_equal(read(p[0], c, 3), 3);
    assert_memory_equal(c, "out", 3);
    /* Nothing comes back: the end's peer reads EOF. */
    assert_rc(0, mempipe_read(a, c, sizeof c));
    /* The pipe's reader goes: the next bytes meet EPIPE, without SIGPIPE,
     * and the end's peer's writes then fail with -EPIPE. */
    close(p[0]);
    assert_rc(1, mempipe_write(a, "y", 1));
    double t0 = tu_now();
    ssize_t k;
    while ((k = mempipe_write(a, "z", 1)) == 1 && tu_now() - t0 < 5)
        usleep(1000);
    assert_rc(-EPIPE, k);
    assert_rc(0, mempipe_bridge_join(br));
    mempipe_close(a);
    sigaction(SIGPIPE, &old, NULL);
}

/* ---- R84: the step function in an epoll loop -------------------------- */

/* (Re)registers the bridge's fds with the epoll set. */
static void arm(int ep, const mempipe_bridge *br, bool *added)
{
    struct pollfd fds[2];
    int n = mempipe_bridge_pollfds(br, fds);
    for (int i = 0; i < n; i++) {
        struct epoll_event ev = {.events = 0, .data.fd = fds[i].fd};
        if (fds[i].events & POLLIN)
            ev.events |= EPOLLIN;
        if (fds[i].events & POLLOUT)
            ev.events |= EPOLLOUT;
        int op = added[i] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        assert_int_equal(epoll_ctl(ep, op, fds[i].fd, &ev), 0);
        added[i] = true;
    }
}

static void test_R84_step_in_an_epoll_loop(void **state)
{
    (void)state;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    int s[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s), 0);
    mempipe_bridge *br;
    assert_rc(0, mempipe_bridge_new(b, s[0], &br));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    assert_true(ep >= 0);
    bool added[2] = {false, false};
    /* One thread: 1000 bytes from the end's peer to the fd's peer, then
     * 1000 back, through a pipe of 8 bytes. */
    unsigned char out[1000], in[1000];
    tu_pattern(out, sizeof out, 0, SEED);
    size_t sent = 0, got = 0, back = 0, home = 0;
    int rc = 0, rounds = 0;
    while (rc == 0 && rounds++ < 100000) {
        ssize_t k;
        if (sent < sizeof out &&
            (k = mempipe_poll_write(a, out + sent, sizeof out - sent, NULL)) >
                0)
            sent += (size_t)k;
        while (got < sizeof in && (k = read(s[1], in + got, 64)) > 0)
            got += (size_t)k;
        if (got == sizeof in && back < sizeof in &&
            (k = write(s[1], in + back, sizeof in - back)) > 0)
            back += (size_t)k;
        if (back == sizeof in && home < sizeof in) {
            unsigned char h[64];
            while ((k = mempipe_poll_read(a, h, sizeof h, NULL)) > 0) {
                assert_int_equal(tu_check_pattern(h, (size_t)k, home, SEED),
                                 -1);
                home += (size_t)k;
            }
            if (home == sizeof in) {
                assert_rc(0, mempipe_shutdown(a));
                assert_int_equal(shutdown(s[1], SHUT_WR), 0);
            }
        }
        rc = mempipe_bridge_step(br);
        if (rc == 0) {
            arm(ep, br, added);
            struct epoll_event ev[2];
            (void)epoll_wait(ep, ev, 2, 10);
        }
    }
    assert_rc(1, rc);
    assert_int_equal(got, sizeof in);
    assert_int_equal(tu_check_pattern(in, sizeof in, 0, SEED), -1);
    assert_int_equal(home, sizeof in);
    assert_rc(1, mempipe_bridge_step(br)); /* over stays over */
    struct pollfd fds[2];
    assert_rc(0, mempipe_bridge_pollfds(br, fds));
    assert_rc(0, mempipe_bridge_join(br));
    close(ep);
    mempipe_close(a);
    close(s[1]);
}

/* mempipe_bridge_abort on a thread-less bridge: both peers see a reset. */
static void test_R84_abort_resets_both_sides(void **state)
{
    (void)state;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    int cli, srv;
    tcp_pair(&cli, &srv);
    mempipe_bridge *br;
    assert_rc(0, mempipe_bridge_new(b, srv, &br));
    assert_rc(0, mempipe_bridge_step(br));
    mempipe_bridge_abort(br);
    char c[4];
    assert_rc(-ECONNRESET, mempipe_read(a, c, sizeof c));
    assert_int_equal(read(cli, c, sizeof c), -1);
    assert_int_equal(errno, ECONNRESET);
    mempipe_bridge_abort(NULL); /* ignored */
    close(cli);
    mempipe_close(a);
}

/* ---- R85: bad input takes nothing ------------------------------------- */

static void still_works(mempipe *a, mempipe *b)
{
    char c[2];
    assert_rc(2, mempipe_write(a, "ok", 2));
    assert_rc(2, mempipe_read_full(b, c, 2));
}

static void test_R85_bad_input_takes_nothing(void **state)
{
    (void)state;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    mempipe_bridge *br = NULL;
    int s[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    assert_rc(-EINVAL, mempipe_bridge_fd(NULL, s[0], &br));
    assert_rc(-EINVAL, mempipe_bridge_fd(b, -1, &br));
    assert_rc(-EINVAL, mempipe_bridge_fd(b, s[0], NULL));
    assert_rc(-EINVAL, mempipe_bridge_new(NULL, s[0], &br));
    assert_rc(-EINVAL, mempipe_bridge_new(b, s[0], NULL));
    assert_rc(-EINVAL, mempipe_bridge_step(NULL));
    assert_rc(-EINVAL, mempipe_bridge_pollfds(NULL, NULL));
    assert_rc(-EINVAL, mempipe_bridge_join(NULL));

    int closed = dup(s[0]);
    close(closed);
    assert_rc(-EBADF, mempipe_bridge_fd(b, closed, &br));

    char path[] = "/tmp/mempipe-bridge-XXXXXX";
    int file = mkstemp(path);
    assert_true(file >= 0);
    unlink(path);
    assert_rc(-ENOTSOCK, mempipe_bridge_fd(b, file, &br));
    close(file);

    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    assert_rc(-EPROTOTYPE, mempipe_bridge_fd(b, udp, &br));
    close(udp);

    int lis = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lis, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lis, 1), 0);
    assert_rc(-EINVAL, mempipe_bridge_fd(b, lis, &br));
    close(lis);

    int lone = socket(AF_INET, SOCK_STREAM, 0);
    assert_rc(-ENOTCONN, mempipe_bridge_fd(b, lone, &br));
    close(lone);

    int p[2];
    assert_int_equal(pipe(p), 0);
    char fifo[64];
    snprintf(fifo, sizeof fifo, "/proc/self/fd/%d", p[0]);
    int rw = open(fifo, O_RDWR); /* a FIFO open both ways */
    assert_true(rw >= 0);
    assert_rc(-EINVAL, mempipe_bridge_fd(b, rw, &br));
    close(rw);
    close(p[0]);
    close(p[1]);

    /* Nothing was taken: the end and the socket work, the socket's flags
     * are as they were. */
    assert_null(br);
    still_works(a, b);
    still_works(b, a);
    assert_int_equal(fcntl(s[0], F_GETFL) & O_NONBLOCK, 0);
    assert_int_equal(write(s[0], "k", 1), 1);
    char c;
    assert_int_equal(read(s[1], &c, 1), 1);
    close(s[0]);
    close(s[1]);
    mempipe_close(a);
    mempipe_close(b);
}

/* ---- examples/http10.h: the same code in memory and through a bridge -- */

static void *serve(void *arg)
{
    mempipe *e = arg;
    (void)http10_serve(e);
    mempipe_close(e);
    return NULL;
}

/* Sends req on w, reads the reply from r to EOF into buf. */
static size_t ask(mempipe *w, int fd, const char *req, char *buf, size_t cap)
{
    size_t n = 0;
    if (w != NULL) {
        assert_rc(strlen(req), mempipe_write(w, req, strlen(req)));
        ssize_t k;
        while ((k = mempipe_read(w, buf + n, cap - 1 - n)) > 0)
            n += (size_t)k;
        assert_rc(0, k);
    } else {
        fd_write_all(fd, req, strlen(req));
        ssize_t k;
        while ((k = read(fd, buf + n, cap - 1 - n)) > 0)
            n += (size_t)k;
        assert_int_equal(k, 0);
    }
    buf[n] = '\0';
    return n;
}

static void test_R80_http10_in_memory_and_through_a_bridge(void **state)
{
    (void)state;
    char buf[1024];
    const char *req = "GET /hello HTTP/1.0\r\n\r\n";
    /* In memory: the test is the client. */
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(16, &a, &b));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, serve, b), 0);
    ask(a, -1, req, buf, sizeof buf);
    pthread_join(t, NULL);
    mempipe_close(a);
    assert_non_null(strstr(buf, "HTTP/1.0 200 OK\r\n"));
    assert_non_null(strstr(buf, "\r\n\r\nhello from mempipe\n"));
    char mem[1024];
    memcpy(mem, buf, sizeof mem);
    /* Through a bridge to a socketpair: the same bytes. */
    int s[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    assert_rc(0, mempipe_duplex(16, &a, &b));
    mempipe_bridge *br;
    assert_rc(0, mempipe_bridge_fd(b, s[0], &br));
    assert_int_equal(pthread_create(&t, NULL, serve, a), 0);
    ask(NULL, s[1], req, buf, sizeof buf);
    pthread_join(t, NULL);
    assert_string_equal(buf, mem);
    close(s[1]);
    assert_rc(0, mempipe_bridge_join(br));
}

/* Each allocation the bridge makes can fail (its mempipe_fd's, its own):
 * -ENOMEM, nothing taken, and the next try works. */
static void test_R85_allocation_failure_takes_nothing(void **state)
{
    (void)state;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    int s[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    mempipe_bridge *br = NULL;
    int failures = 0, rc;
    for (;;) {
        /* Fail the bridge's (failures+1)-th allocation. */
        atomic_store(&tu_cnt.fail_at,
                     atomic_load(&tu_cnt.calls) + failures + 1);
        rc = mempipe_bridge_new(b, s[0], &br);
        atomic_store(&tu_cnt.fail_at, 0);
        if (rc == 0)
            break;
        assert_rc(-ENOMEM, rc);
        assert_null(br);
        still_works(a, b);
        still_works(b, a);
        assert_true(++failures < 10);
    }
    assert_true(failures >= 1); /* at least the bridge's own block */
    assert_rc(0, mempipe_shutdown(a));
    assert_int_equal(shutdown(s[1], SHUT_WR), 0);
    assert_rc(0, mempipe_bridge_join(br));
    char c;
    assert_rc(0, mempipe_read(a, &c, 1));
    mempipe_close(a);
    close(s[1]);
}

/* ---- R80: an idle bridge sleeps --------------------------------------- */

/* CPU seconds this process spends over the next 0.3 s. */
static double cpu_over_300ms(void)
{
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    usleep(300000);
    getrusage(RUSAGE_SELF, &r1);
    return (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
           (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6 +
           (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
           (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
}

static void test_R80_idle_bridge_uses_no_cpu(void **state)
{
    (void)state;
    mempipe *a;
    int s[2];
    mempipe_bridge *br = rig(64, &a, s);
    usleep(20000); /* the bridge reaches its poll */
    double cpu = cpu_over_300ms();
    printf("idle bridge: %.4f s CPU over 0.3 s\n", cpu);
    assert_true(cpu < 0.03);
    mempipe_close(a);
    close(s[1]);
    assert_rc(0, mempipe_bridge_join(br));
}

/* R86: the fd's peer closes while the end's peer neither reads nor
 * writes. The fd shows POLLHUP from then on; the bridge must end (it used
 * to wait for the end only, woken by that POLLHUP again and again). */
/*
 * R86, the other order: the end's peer read-shut first (the fd's reading
 * side is shut), then the fd's peer closes while the end's peer sends
 * nothing. The fd hangs up; nothing the end's peer could send would go
 * anywhere, so the bridge ends at once (before the fix it stayed, its
 * poll reporting the hang-up at every round).
 */
static void test_R86_fd_peer_close_after_read_shut_ends_the_bridge(void **s)
{
    (void)s;
    int sv[2];
    mempipe *e, *p;
    mempipe_bridge *b;
    assert_rc(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    assert_rc(0, mempipe_duplex(4096, &e, &p));
    assert_rc(0, mempipe_bridge_new(e, sv[0], &b));
    assert_rc(0, mempipe_shutdown_read(p));
    assert_rc(0, mempipe_bridge_step(b)); /* the end's side: nothing yet */
    close(sv[1]);
    assert_rc(1, mempipe_bridge_step(b)); /* over */
    assert_rc(-EPIPE, mempipe_poll_write(p, "x", 1, NULL));
    assert_rc(0, mempipe_bridge_join(b));
    mempipe_close(p);
}

static void test_R86_fd_peer_close_leaves_no_busy_bridge(void **state)
{
    (void)state;
    mempipe *a;
    int s[2];
    mempipe_bridge *br = rig(64, &a, s);
    close(s[1]);
    usleep(20000); /* the bridge sees the close */
    double cpu = cpu_over_300ms();
    printf("bridge after its fd's peer closed: %.4f s CPU over 0.3 s\n", cpu);
    assert_true(cpu < 0.03);
    assert_int_equal(mempipe_shut_state(a),
                     MEMPIPE_SHUT_READ | MEMPIPE_SHUT_WRITE);
    assert_rc(-EPIPE, mempipe_write(a, "x", 1));
    mempipe_close(a);
    assert_rc(0, mempipe_bridge_join(br));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R80_bytes_both_ways_socketpair),
        cmocka_unit_test(test_R80_bytes_both_ways_tcp),
        cmocka_unit_test(test_R80_backpressure_fills_the_end),
        cmocka_unit_test(test_R80_idle_bridge_uses_no_cpu),
        cmocka_unit_test(test_R80_http10_in_memory_and_through_a_bridge),
        cmocka_unit_test(test_R81_half_close_each_way),
        cmocka_unit_test(test_R82_end_abort_resets_the_tcp_peer),
        cmocka_unit_test(test_R82_tcp_reset_reaches_the_end),
        cmocka_unit_test(test_R82_end_close_ends_the_bridge),
        cmocka_unit_test(test_R83_pipe_read_end_pumps_into_the_end),
        cmocka_unit_test(test_R83_pipe_write_end_pumps_out_without_sigpipe),
        cmocka_unit_test(test_R84_step_in_an_epoll_loop),
        cmocka_unit_test(test_R84_abort_resets_both_sides),
        cmocka_unit_test(test_R85_bad_input_takes_nothing),
        cmocka_unit_test(test_R86_fd_peer_close_leaves_no_busy_bridge),
        cmocka_unit_test(
            test_R86_fd_peer_close_after_read_shut_ends_the_bridge),
        cmocka_unit_test_setup_teardown(
            test_R85_allocation_failure_takes_nothing, tu_alloc_setup,
            tu_alloc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
