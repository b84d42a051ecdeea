/* SPDX-License-Identifier: MIT */
/*
 * Shared-memory pipes between processes (docs/shm.md; the proposed SPEC
 * rules R68-R79 of its "Proposed rules", which the test names follow):
 * the far end of each pipe lives in a CHILD PROCESS — forked and attaching
 * the inherited fd, or forked before the pipe exists and handed the fd
 * with SCM_RIGHTS, or the tests/shm_peer helper exec'd with the fd number
 * in argv — and the test drives it through a control socketpair with the
 * commands of shm_peer.h. Both sides move pattern streams, each byte read
 * checked at its position and each direction's checksum compared.
 *
 * Every wait is bounded: replies and exits (10 s), the events of the wake
 * and death tests (a few seconds), and alarm() per test as the last
 * resort. Every child is reaped: by the test, or by the teardown, which
 * kills what a failed test left.
 */
#include "testutil.h"

#include "shm.h" /* MEMPIPE__SHM_SLICE_MS, the header's layout */
#include "shm_peer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REPLY_MS 10000 /* a child's answer to one command */
#define EVENT_MS 5000  /* a wake-up the test waits for */

/*
 * R75: a dead peer is seen within 2 * MEMPIPE__SHM_SLICE_MS by a waiter.
 * Every wait is cut into slices and checks the peer's lock at each slice's
 * end, so a death is seen at the end of the slice it falls in (<= one
 * slice), or of the next one if the kernel had not yet released the dead
 * child's lock at that check (exit teardown: the second slice). The margin
 * on top is for this machine, not for the design: a shared 2-core VM whose
 * other tenant and our own child's teardown compete with the waiter for
 * the CPUs, and the sanitizer builds' slower syscalls and thread switches
 * (asan, tsan: the waiter and the notifier are instrumented). 150 ms is
 * three slices more than the design needs, yet well short of the give-up
 * time below, so a death that is not detected at all (the call would
 * never return) or only by some unrelated timeout still fails the test.
 * (Measured on this VM: 45-54 ms from the kill in every build, the
 * sanitizers' and valgrind's included, with both CPUs busy or idle.)
 */
#define DEATH_MARGIN_MS 150
#define DEATH_BOUND_MS  (2 * MEMPIPE__SHM_SLICE_MS + DEATH_MARGIN_MS)
#define DEATH_GIVEUP_MS 3000

/* ---- the test's state: children, pipes, wakers --------------------------
 *
 * In static storage, not on a test's stack: a failed assertion leaves the
 * test function by longjmp, and the teardown still finds what it left
 * open (children to kill and reap, ends to close, whose wakers point
 * here).
 */

/*
 * A child's exit is seen as the end of file of a descriptor whose other
 * end only the child holds (the kernel closes it as the process exits,
 * whatever kills it): the control socket, or in_child()'s pipe. Not a
 * pidfd: valgrind (3.19) does not know pidfd_open.
 */
struct kid {
    pid_t pid;
    int ctl; /* our end of the control socketpair */
    struct sp_reply last;
};

/* A waker that writes an eventfd and notes where and when it ran. */
struct ew {
    int efd;        /* -1: not made */
    pthread_t test; /* the test's thread */
    atomic_int calls, off_test;
    atomic_llong first_ns; /* when it first ran */
};

#define P_SIMPLEX 1u  /* mempipe_shm_simplex: we write, the child reads */
#define P_SCM     2u  /* the fd sent with SCM_RIGHTS to an older child */
#define P_EXEC    4u  /* the fd number to the shm_peer helper */
#define P_NOVIEW  8u  /* no header view of ours (R77 counts our pages) */
#define P_KEEPFD  16u /* the fd stays open, in fd, for the test */

/* Our end of an shm pipe whose other end a child attached. */
struct pair {
    mempipe *end;
    struct kid *kid;
    struct sp_stream s;
    const struct mempipe__shm_hdr *h; /* our read-only view of the header */
    int fd;                           /* P_KEEPFD: the pipe's fd */
    int busy;                         /* a thread of ours is in a call */
    struct ew w;
};

#define MAXKIDS  4
#define MAXPAIRS 2
static struct kid kids[MAXKIDS];
static struct pair pairs[MAXPAIRS];

enum how { INHERIT, SCM, EXEC };

/* ---- children ------------------------------------------------------------
 */

static void send_fd(int sock, int fd)
{
    char byte = 'f';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = u.buf,
                         .msg_controllen = sizeof u.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    assert_int_equal(1, sendmsg(sock, &msg, MSG_NOSIGNAL));
}

/* In the child: the fd the test sends, or -1. */
static int recv_fd(int sock)
{
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = u.buf,
                         .msg_controllen = sizeof u.buf};
    if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
        return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (c == NULL || c->cmsg_type != SCM_RIGHTS)
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

/* In a forked child, first: the ends it inherited are closed (R34, R76:
 * the one call allowed on them; it leaves the parent's pipes alone), so
 * that the child frees what it holds of them; the other children's
 * sockets are closed (a copy would keep them open past their children's
 * exits). */
static void child_drop_inherited(void)
{
    for (int i = 0; i < MAXPAIRS; i++)
        if (pairs[i].end != NULL && !pairs[i].busy)
            mempipe_close(pairs[i].end);
    for (int i = 0; i < MAXKIDS; i++)
        if (kids[i].pid != 0)
            close(kids[i].ctl);
}

/* The child: attach and serve. */
static _Noreturn void kid_main(int ctl, int ours, int fd, enum how how)
{
    close(ours);
    child_drop_inherited();
    if (how == SCM)
        fd = recv_fd(ctl);
    if (how == EXEC) {
        char a[16], b[16];
        snprintf(a, sizeof a, "%d", fd);
        snprintf(b, sizeof b, "%d", ctl);
        fcntl(ctl, F_SETFD, 0); /* fd itself has no FD_CLOEXEC (R68) */
        execl(MEMPIPE_SHM_PEER, "shm_peer", a, b, (char *)NULL);
        _exit(127);
    }
    _exit(sp_attach_serve(fd, ctl));
}

/* Forks a child that attaches fd (SCM: the fd sent later, send_fd). */
static struct kid *kid_new(int fd, enum how how)
{
    struct kid *k = NULL;
    for (int i = 0; i < MAXKIDS && k == NULL; i++)
        if (kids[i].pid == 0)
            k = &kids[i];
    assert_non_null(k);
    int sv[2];
    assert_int_equal(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        kid_main(sv[1], sv[0], fd, how);
    close(sv[1]);
    memset(k, 0, sizeof *k);
    k->pid = pid;
    k->ctl = sv[0];
    return k;
}

static void kid_send(struct kid *k, int op, int64_t arg)
{
    struct sp_cmd c = {.op = op, .arg = arg};
    assert_int_equal(sizeof c, send(k->ctl, &c, sizeof c, MSG_NOSIGNAL));
}

/* The child's next answer, within REPLY_MS. */
static int64_t kid_wait(struct kid *k)
{
    struct pollfd f = {.fd = k->ctl, .events = POLLIN};
    if (poll(&f, 1, REPLY_MS) != 1)
        fail_msg("child %d: no answer in %d ms", (int)k->pid, REPLY_MS);
    ssize_t n = recv(k->ctl, &k->last, sizeof k->last, MSG_WAITALL);
    if (n != (ssize_t)sizeof k->last)
        fail_msg("child %d: answer of %zd bytes (it died?)", (int)k->pid, n);
    return k->last.rc;
}

static int64_t kid_do(struct kid *k, int op, int64_t arg)
{
    kid_send(k, op, arg);
    return kid_wait(k);
}

/* Waits up to ms for pid's exit, seen as the end of file of fd (unread
 * bytes before it are dropped), and reaps it; closes fd. Returns the exit
 * status, 128 + the signal that killed it, or -1 when it had to be killed
 * for not exiting in time. */
static int reap(pid_t pid, int fd, int ms)
{
    double limit = tu_now() + ms / 1000.0;
    int late = 1;
    for (;;) {
        int left = (int)((limit - tu_now()) * 1000);
        struct pollfd f = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&f, 1, left) != 1)
            break;
        char scratch[sizeof(struct sp_reply)];
        if (read(fd, scratch, sizeof scratch) <= 0) {
            late = 0; /* EOF (or the reset of a killed child's socket) */
            break;
        }
    }
    close(fd);
    if (late)
        kill(pid, SIGKILL);
    int st = 0;
    pid_t r = waitpid(pid, &st, 0);
    if (r != pid || late)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Ends the control session (the child reads EOF, closes its end and
 * exits) and reaps it: its status as reap(). */
static int kid_reap(struct kid *k)
{
    shutdown(k->ctl, SHUT_WR);
    int st = reap(k->pid, k->ctl, REPLY_MS);
    memset(k, 0, sizeof *k);
    return st;
}

static void kid_end(struct kid *k)
{
    pid_t pid = k->pid;
    int st = kid_reap(k);
    if (st != 0)
        fail_msg("child %d ended with status %d", (int)pid, st);
}

/* Runs fn(arg) in a forked child that exits with its result; the exit
 * status as reap(). For a child that only checks something and leaves. */
static int in_child(int (*fn)(void *), void *arg)
{
    int pfd[2];
    assert_int_equal(0, pipe2(pfd, O_CLOEXEC));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        child_drop_inherited();
        _exit(fn(arg)); /* pfd[1] closes with the process */
    }
    close(pfd[1]);
    return reap(pid, pfd[0], REPLY_MS);
}

/* ---- pipes with a child at the far end ---------------------------------- */

static struct pair *pair_open(size_t max, unsigned flags)
{
    struct pair *p = NULL;
    for (int i = 0; i < MAXPAIRS && p == NULL; i++)
        if (pairs[i].end == NULL)
            p = &pairs[i];
    assert_non_null(p);
    memset(p, 0, sizeof *p);
    p->fd = p->w.efd = -1;
    sp_init(&p->s, 0);
    if (flags & P_SCM) /* forked before the pipe exists: inherits nothing */
        p->kid = kid_new(-1, SCM);
    int fd = -1;
    if (flags & P_SIMPLEX)
        assert_rc(0, mempipe_shm_simplex(max, &p->end, &fd));
    else
        assert_rc(0, mempipe_shm_duplex(max, &p->end, &fd));
    if (!(flags & P_NOVIEW)) {
        void *v = mmap(NULL, sizeof *p->h, PROT_READ, MAP_SHARED, fd, 0);
        assert_true(v != MAP_FAILED);
        p->h = v;
    }
    if (flags & P_SCM)
        send_fd(p->kid->ctl, fd);
    else
        p->kid = kid_new(fd, flags & P_EXEC ? EXEC : INHERIT);
    if (flags & P_KEEPFD)
        p->fd = fd;
    else
        close(fd);                  /* handed on: the caller's copy (R68) */
    assert_rc(0, kid_wait(p->kid)); /* the child's attach */
    return p;
}

/* Our end closed, and what goes with it; the child is the caller's. */
static void pair_free(struct pair *p)
{
    mempipe_close(p->end); /* no waker runs after this (p->w is done) */
    if (p->h != NULL)
        munmap((void *)p->h, sizeof *p->h);
    if (p->w.efd >= 0)
        close(p->w.efd);
    if (p->fd >= 0)
        close(p->fd);
    memset(p, 0, sizeof *p);
}

static void pair_close(struct pair *p)
{
    kid_end(p->kid);
    pair_free(p);
}

static void model_drop(void);

static int setup(void **state)
{
    (void)state;
    alarm(30); /* the last resort: no test may hang */
    return 0;
}

/* What a failed test left: children killed and reaped, ends closed (but
 * one a thread of ours is still blocked in: left as it is). */
static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < MAXKIDS; i++)
        if (kids[i].pid != 0) {
            kill(kids[i].pid, SIGKILL);
            kid_reap(&kids[i]);
        }
    for (int i = 0; i < MAXPAIRS; i++)
        if (pairs[i].end != NULL && !pairs[i].busy)
            pair_free(&pairs[i]);
    model_drop();
    alarm(0);
    return 0;
}

/* Every byte each way arrived once, in order: our streams against what the
 * child's last answer says of its own. */
static void check_streams(const struct pair *p)
{
    const struct sp_stream *c = &p->kid->last.s;
    assert_int_equal(-1, p->s.bad);
    assert_int_equal(-1, c->bad);
    assert_int_equal(p->s.wr.pos, c->rd.pos);
    assert_int_equal(p->s.wr.sum, c->rd.sum);
    assert_int_equal(c->wr.pos, p->s.rd.pos);
    assert_int_equal(c->wr.sum, p->s.rd.sum);
}

/*
 * Waits until side `side` publishes that it waits (want & bits: a blocked
 * call, or its notifier): the one sign that a call in the other process,
 * or on another thread of ours, has got as far as its sleep. Nothing but
 * that word says so, hence the short naps between looks.
 */
static void wait_want(const struct pair *p, int side, unsigned bits,
                      const char *what)
{
    double limit = tu_now() + EVENT_MS / 1000.0;
    while (
        !(atomic_load_explicit(&p->h->side[side].want, memory_order_acquire) &
          bits)) {
        if (tu_now() > limit)
            fail_msg("%s: side %d never waited (want bits %#x)", what, side,
                     bits);
        struct timespec ts = {0, 100 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Fills the pipe we write with poll writes; the last one stores w. */
static size_t fill(struct pair *p, const mempipe_waker *w)
{
    size_t total = 0;
    ssize_t r;
    while ((r = sp_poll_write(&p->s, p->end, 65536, w)) > 0)
        total += (size_t)r;
    assert_rc(-EAGAIN, r);
    return total;
}

/* ---- a blocking call on a thread of ours -------------------------------- */

struct blocked {
    pthread_t t;
    struct pair *p;
    int op; /* SP_R or SP_W */
    int64_t n;
    ssize_t rc;
    double t_ret; /* when the call returned */
    int efd;      /* written then */
};

static void *blocked_main(void *arg)
{
    struct blocked *b = arg;
    b->rc = b->op == SP_R ? sp_read(&b->p->s, b->p->end, b->n)
                          : sp_write(&b->p->s, b->p->end, b->n);
    b->t_ret = tu_now();
    uint64_t one = 1;
    T_CHECK(write(b->efd, &one, sizeof one) == (ssize_t)sizeof one, "eventfd");
    return NULL;
}

/* Static, as the pairs: a thread a failed test leaves blocked still
 * writes here when its call returns. */
static struct blocked blockeds[4];

/* The thread owns p's stream in its direction, and p is busy, until
 * blocked_join. */
static struct blocked *blocked_start(struct pair *p, int op, int64_t n)
{
    struct blocked *b = NULL;
    for (int i = 0; i < 4 && b == NULL; i++)
        if (blockeds[i].p == NULL)
            b = &blockeds[i];
    if (b == NULL)
        fail_msg("threads earlier tests left blocked hold every slot");
    memset(b, 0, sizeof *b);
    b->p = p;
    b->op = op;
    b->n = n;
    b->efd = eventfd(0, EFD_CLOEXEC);
    assert_true(b->efd >= 0);
    p->busy = 1;
    assert_int_equal(0, pthread_create(&b->t, NULL, blocked_main, b));
    return b;
}

/* The call's result, once it returned (within ms, else the test fails:
 * the thread is left blocked, p busy, the process ends with them). */
static ssize_t blocked_join(struct blocked *b, int ms, const char *what)
{
    struct pollfd f = {.fd = b->efd, .events = POLLIN};
    if (poll(&f, 1, ms) != 1)
        fail_msg("%s: still blocked after %d ms", what, ms);
    assert_int_equal(0, pthread_join(b->t, NULL));
    close(b->efd);
    b->p->busy = 0;
    b->p = NULL;
    return b->rc;
}

/* ---- a waker that writes an eventfd ------------------------------------- */

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void ew_wake(void *ctx)
{
    struct ew *w = ctx;
    long long zero = 0;
    atomic_compare_exchange_strong(&w->first_ns, &zero, now_ns());
    if (!pthread_equal(pthread_self(), w->test))
        atomic_fetch_add(&w->off_test, 1);
    atomic_fetch_add(&w->calls, 1);
    uint64_t one = 1;
    T_CHECK(write(w->efd, &one, sizeof one) == (ssize_t)sizeof one, "eventfd");
}

/* w's waker; w (a pair's) lives until the pair's end is closed. */
static mempipe_waker ew_init(struct ew *w)
{
    memset(w, 0, sizeof *w);
    w->efd = eventfd(0, EFD_CLOEXEC);
    assert_true(w->efd >= 0);
    w->test = pthread_self();
    return (mempipe_waker){ew_wake, w};
}

/* 1 once the waker ran (within ms), its count taken; else 0. */
static int ew_wait(struct ew *w, int ms)
{
    struct pollfd f = {.fd = w->efd, .events = POLLIN};
    if (poll(&f, 1, ms) != 1)
        return 0;
    uint64_t v;
    assert_int_equal(sizeof v, read(w->efd, &v, sizeof v));
    return 1;
}

/* The waker ran, and only ever on a thread other than the test's: the
 * progress came from the other process, so the end's notifier ran it. */
static void expect_notifier(struct ew *w)
{
    int calls = atomic_load(&w->calls);
    assert_true(calls >= 1);
    assert_int_equal(calls, atomic_load(&w->off_test));
}

/* poll(2) on one fd: its revents (0 after ms without any of events). */
static short poll1(int fd, short events, int ms)
{
    struct pollfd f = {.fd = fd, .events = events};
    int n = poll(&f, 1, ms);
    assert_true(n >= 0);
    return n == 0 ? 0 : f.revents;
}

/* ---- R68: create, attach, the fd ---------------------------------------- */

static void test_R68_duplex_bytes_in_order_both_ways(void **state)
{
    (void)state;
    mempipe *e;
    int fd;
    assert_rc(0, mempipe_shm_duplex(4096, &e, &fd));
    int fl = fcntl(fd, F_GETFD);
    assert_true(fl >= 0 && !(fl & FD_CLOEXEC)); /* exec inherits it */
    close(fd);
    mempipe_close(e);

    /* Capacity 1000: the rounds wrap the rings many times. */
    struct pair *p = pair_open(1000, 0);
    for (int i = 0; i < 200; i++) {
        int64_t n = 1 + (i * 37) % 700, m = 1 + (i * 53) % 1000;
        assert_rc(n, sp_write(&p->s, p->end, n));
        assert_rc(n, kid_do(p->kid, SP_R, n));
        assert_rc(m, kid_do(p->kid, SP_W, m));
        assert_rc(m, sp_read(&p->s, p->end, m));
    }
    check_streams(p);
    pair_close(p);
}

static void test_R68_simplex_bytes_one_way(void **state)
{
    (void)state;
    struct pair *p = pair_open(1000, P_SIMPLEX);
    unsigned char c;
    assert_rc(-EBADF, mempipe_poll_read(p->end, &c, 1, NULL));
    assert_rc(-EBADF, kid_do(p->kid, SP_WPOLL, 1)); /* the child reads */
    for (int i = 0; i < 200; i++) {
        int64_t n = 1 + (i * 61) % 1000;
        assert_rc(n, sp_write(&p->s, p->end, n));
        assert_rc(n, kid_do(p->kid, SP_R, n));
    }
    assert_rc(0, mempipe_shutdown(p->end));
    assert_rc(0, kid_do(p->kid, SP_R, SP_ALL)); /* EOF */
    check_streams(p);
    pair_close(p);
}

static void test_R68_fd_sent_with_scm_rights_attaches(void **state)
{
    (void)state;
    struct pair *p = pair_open(4096, P_SCM);
    assert_rc(3000, sp_write(&p->s, p->end, 3000));
    assert_rc(3000, kid_do(p->kid, SP_R, 3000));
    assert_rc(4096, kid_do(p->kid, SP_W, 4096));
    assert_rc(0, kid_do(p->kid, SP_SHUT, 0));
    assert_rc(4096, sp_read(&p->s, p->end, SP_ALL));
    check_streams(p);
    pair_close(p);
}

static void test_R68_attach_in_the_creating_process(void **state)
{
    (void)state;
    mempipe *a, *b;
    int fd;
    assert_rc(0, mempipe_shm_duplex(100, &a, &fd));
    assert_rc(0, mempipe_shm_attach(fd, &b));
    close(fd); /* at once: the ends keep the mapping */
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c);
    char buf[8];
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, &w));
    assert_rc(5, mempipe_poll_write(a, "hello", 5, NULL));
    assert_int_equal(1, tu_calls(&c)); /* linked ends: synchronously */
    assert_rc(5, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_memory_equal(buf, "hello", 5);
    assert_rc(3, mempipe_poll_write(b, "abc", 3, NULL));
    mempipe_close(b);
    assert_rc(3, mempipe_poll_read(a, buf, sizeof buf, NULL));
    assert_memory_equal(buf, "abc", 3);
    assert_rc(0, mempipe_poll_read(a, buf, sizeof buf, NULL));
    assert_rc(-EPIPE, mempipe_poll_write(a, "x", 1, NULL));
    mempipe_close(a);
}

/* A second attach from another process: -EBUSY, no descriptor left. */
static int attach_again(void *arg)
{
    int fd = *(int *)arg;
    mempipe *e = NULL;
    int n0 = tu_count_fds();
    int rc = mempipe_shm_attach(fd, &e);
    return rc == -EBUSY && e == NULL && tu_count_fds() == n0 ? 0 : 1;
}

static void test_R68_second_attach_is_ebusy(void **state)
{
    (void)state;
    /* In the creating process. */
    mempipe *a, *b, *e = NULL;
    int fd;
    assert_rc(0, mempipe_shm_duplex(4096, &a, &fd));
    assert_rc(0, mempipe_shm_attach(fd, &b));
    int n0 = tu_count_fds();
    assert_rc(-EBUSY, mempipe_shm_attach(fd, &e));
    assert_null(e);
    assert_int_equal(n0, tu_count_fds());
    close(fd);
    mempipe_close(b);
    mempipe_close(a);

    /* A child attached: a second child, and we, are refused. */
    struct pair *p = pair_open(4096, P_KEEPFD);
    assert_int_equal(0, in_child(attach_again, &p->fd));
    n0 = tu_count_fds();
    assert_rc(-EBUSY, mempipe_shm_attach(p->fd, &e));
    assert_null(e);
    assert_int_equal(n0, tu_count_fds());
    /* And the pipe between us and the first child is unharmed. */
    assert_rc(10, sp_write(&p->s, p->end, 10));
    assert_rc(10, kid_do(p->kid, SP_R, 10));
    check_streams(p);
    pair_close(p);
}

/* ---- R69: capacity -------------------------------------------------------
 */

static void test_R69_capacity_is_max_exactly(void **state)
{
    (void)state;
    /* 1000: not a page multiple (the mapping is rounded up, not this). */
    struct pair *p = pair_open(1000, 0);
    assert_int_equal(1000, mempipe_capacity(p->end));
    assert_rc(1000, kid_do(p->kid, SP_CAP, 0));
    assert_rc(1000, sp_poll_write(&p->s, p->end, 1500, NULL));
    assert_rc(-EAGAIN, sp_poll_write(&p->s, p->end, 1, NULL));
    assert_int_equal(0, mempipe_writable(p->end));
    assert_rc(1000, kid_do(p->kid, SP_R, 1000));
    assert_int_equal(1000, mempipe_writable(p->end));
    assert_rc(999, kid_do(p->kid, SP_W, 999));
    assert_int_equal(999, mempipe_readable(p->end));
    assert_rc(999, sp_read(&p->s, p->end, 999));
    check_streams(p);
    pair_close(p);

    p = pair_open(5000, P_SIMPLEX);
    assert_int_equal(5000, mempipe_capacity(p->end));
    assert_rc(5000, kid_do(p->kid, SP_CAP, 0));
    assert_rc(5000, fill(p, NULL));
    assert_rc(5000, kid_do(p->kid, SP_R, 5000));
    check_streams(p);
    pair_close(p);
}

/* ---- R70: bad input ------------------------------------------------------
 */

static void test_R70_create_rejects_bad_arguments(void **state)
{
    (void)state;
    int (*make[2])(size_t, mempipe **, int *) = {mempipe_shm_duplex,
                                                 mempipe_shm_simplex};
    const size_t bad[] = {0, MEMPIPE_SHM_MAX + 1, SIZE_MAX};
    mempipe *const none = (mempipe *)&make; /* a value to be left alone */
    int n0 = tu_count_fds();
    for (int k = 0; k < 2; k++) {
        mempipe *e = none;
        int fd = -7;
        assert_rc(-EINVAL, make[k](4096, NULL, &fd));
        assert_rc(-EINVAL, make[k](4096, &e, NULL));
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            assert_rc(-EINVAL, make[k](bad[i], &e, &fd));
        assert_ptr_equal(none, e);
        assert_int_equal(-7, fd);
        assert_int_equal(n0, tu_count_fds());
    }
    /* attach with a NULL end changes nothing: the slot stays free. */
    mempipe *a, *b;
    int fd;
    assert_rc(0, mempipe_shm_duplex(4096, &a, &fd));
    n0 = tu_count_fds();
    assert_rc(-EINVAL, mempipe_shm_attach(fd, NULL));
    assert_int_equal(n0, tu_count_fds());
    assert_rc(0, mempipe_shm_attach(fd, &b));
    close(fd);
    mempipe_close(b);
    mempipe_close(a);
}

/* attach(fd) fails with want, leaves *end alone and no descriptor open. */
static void expect_attach(int want, int fd, const char *what)
{
    mempipe *const none = (mempipe *)&want;
    mempipe *e = none;
    int n0 = tu_count_fds();
    int rc = mempipe_shm_attach(fd, &e);
    int n1 = tu_count_fds();
    if (rc == 0)
        mempipe_close(e);
    if (rc != want)
        fail_msg("%s: attach returned %d (%s), want %d (%s)", what, rc,
                 mempipe_strerror(rc), want, mempipe_strerror(want));
    assert_ptr_equal(none, e);
    if (n1 != n0)
        fail_msg("%s: %d descriptors before the attach, %d after", what, n0,
                 n1);
}

#define OUR_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* A memfd of size bytes whose first page is hdr (page bytes), made with
 * mfd_flags and sealed with seals (0: none). */
static int memfd_like(const unsigned char *hdr, size_t page, off_t size,
                      unsigned mfd_flags, int seals)
{
    int fd = memfd_create("shm-test-copy", MFD_CLOEXEC | mfd_flags);
    assert_true(fd >= 0);
    assert_int_equal(0, ftruncate(fd, size));
    size_t n = (off_t)page < size ? page : (size_t)size;
    assert_int_equal(n, pwrite(fd, hdr, n, 0));
    if (seals != 0)
        assert_int_equal(0, fcntl(fd, F_ADD_SEALS, seals));
    return fd;
}

/* A real pipe's header page and file size, for the copies. */
struct model {
    mempipe *end;
    int fd;
    size_t page;
    off_t size;
    _Alignas(struct mempipe__shm_hdr) unsigned char hdr[65536];
};

/* Static, as the pairs: the teardown closes it after a failure. */
static struct model model;

static struct model *model_open(void)
{
    struct model *m = &model;
    m->page = (size_t)sysconf(_SC_PAGESIZE);
    assert_true(m->page <= sizeof m->hdr);
    assert_rc(0, mempipe_shm_duplex(4096, &m->end, &m->fd));
    struct stat st;
    assert_int_equal(0, fstat(m->fd, &st));
    m->size = st.st_size;
    assert_int_equal(m->page, pread(m->fd, m->hdr, m->page, 0));
    return m;
}

static void model_close(struct model *m)
{
    close(m->fd);
    mempipe_close(m->end);
    m->end = NULL;
}

/* The teardown's: a model a failed test left open. */
static void model_drop(void)
{
    if (model.end != NULL)
        model_close(&model);
}

/* The control of the tests that refuse altered copies: an unaltered copy,
 * sealed as ours, attaches (a pipe nobody created here: its creator's side
 * looks gone at once); then the model is closed. */
static void model_close_after_control(struct model *m)
{
    int fd = memfd_like(m->hdr, m->page, m->size, MFD_ALLOW_SEALING, OUR_SEALS);
    mempipe *e;
    assert_rc(0, mempipe_shm_attach(fd, &e));
    mempipe_close(e);
    close(fd);
    model_close(m);
}

static void test_R70_attach_rejects_what_is_not_our_sealed_memfd(void **state)
{
    (void)state;
    struct model *m = model_open();
    int fd, pfd[2];

    expect_attach(-EBADF, -1, "fd -1");
    assert_int_equal(0, pipe2(pfd, O_CLOEXEC));
    close(pfd[1]);
    expect_attach(-EBADF, pfd[1], "a closed fd");
    expect_attach(-EINVAL, pfd[0], "a pipe");
    close(pfd[0]);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(0, ftruncate(fileno(f), m->size));
    assert_int_equal(m->page, pwrite(fileno(f), m->hdr, m->page, 0));
    expect_attach(-EINVAL, fileno(f), "a regular file with our header");
    fclose(f);
    int sv[2];
    assert_int_equal(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    expect_attach(-EINVAL, sv[0], "a socket");
    close(sv[0]);
    close(sv[1]);

    /* Memfds with our header and size: only the seals are wrong. */
    fd = memfd_like(m->hdr, m->page, m->size, 0, 0);
    expect_attach(-EINVAL, fd, "a memfd made without sealing");
    close(fd);
    fd = memfd_like(m->hdr, m->page, m->size, MFD_ALLOW_SEALING, 0);
    expect_attach(-EINVAL, fd, "a memfd not sealed");
    close(fd);
    fd = memfd_like(m->hdr, m->page, m->size, MFD_ALLOW_SEALING,
                    OUR_SEALS | F_SEAL_WRITE);
    expect_attach(-EINVAL, fd, "a memfd with F_SEAL_WRITE too");
    close(fd);
    fd = memfd_like(m->hdr, m->page, m->size, MFD_ALLOW_SEALING,
                    F_SEAL_SHRINK | F_SEAL_SEAL);
    expect_attach(-EINVAL, fd, "a memfd that may still grow");
    close(fd);
    fd = memfd_like(m->hdr, m->page, 100, MFD_ALLOW_SEALING, OUR_SEALS);
    expect_attach(-EINVAL, fd, "a sealed memfd smaller than a page");
    close(fd);
    /* The control: the same with our seals attaches. */
    model_close_after_control(m);
}

static void test_R70_seals_refuse_resizing(void **state)
{
    (void)state;
    mempipe *a, *b;
    int fd;
    assert_rc(0, mempipe_shm_duplex(4096, &a, &fd));
    struct stat st0, st1;
    assert_int_equal(0, fstat(fd, &st0));
    assert_int_equal(OUR_SEALS, fcntl(fd, F_GET_SEALS));
    errno = 0;
    assert_int_equal(-1, ftruncate(fd, 0));
    assert_int_equal(EPERM, errno);
    errno = 0;
    assert_int_equal(-1, ftruncate(fd, st0.st_size / 2));
    assert_int_equal(EPERM, errno);
    errno = 0;
    assert_int_equal(-1, ftruncate(fd, st0.st_size * 2));
    assert_int_equal(EPERM, errno);
    errno = 0;
    assert_int_equal(-1, fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
    assert_int_equal(EPERM, errno);
    assert_int_equal(0, fstat(fd, &st1));
    assert_int_equal(st0.st_size, st1.st_size);
    /* The file is as it was: it attaches and carries bytes. */
    assert_rc(0, mempipe_shm_attach(fd, &b));
    close(fd);
    char buf[4];
    assert_rc(4, mempipe_poll_write(a, "seal", 4, NULL));
    assert_rc(4, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_memory_equal(buf, "seal", 4);
    mempipe_close(b);
    mempipe_close(a);
}

/* ---- R71: validation of the header -------------------------------------- */

static void test_R71_attach_checks_magic_version_and_layout(void **state)
{
    (void)state;
    struct model *m = model_open();
    const struct mempipe__shm_hdr *h = (const void *)m->hdr;
    uint64_t page = m->page, size0 = h->size[0], cap0 = h->cap[0];
    uint64_t garbage;
    memcpy(&garbage, "mempipeX", 8);
    uint64_t next;
    memcpy(&next, "mempipe\2", 8);
#define AT(f) offsetof(struct mempipe__shm_hdr, f), sizeof h->f
    const struct {
        const char *what;
        size_t off, width;
        uint64_t v;
        int want;
    } cases[] = {
        {"garbage magic", AT(magic), garbage, -EINVAL},
        {"the magic of another format", AT(magic), next, -EINVAL},
        {"zero magic", AT(magic), 0, -EINVAL},
        {"version 2", AT(version), 2, -EPROTO},
        {"version 0", AT(version), 0, -EPROTO},
        {"nrings 0", AT(nrings), 0, -EPROTO},
        {"nrings 3", AT(nrings), 3, -EPROTO},
        {"another page size", AT(page), page * 2, -EPROTO},
        {"another cache line", AT(lines), 128, -EPROTO},
        {"ring 0 after a gap", AT(off[0]), page * 2, -EPROTO},
        {"ring 1 overlapping ring 0", AT(off[1]), page, -EPROTO},
        {"ring 0 not a page multiple", AT(size[0]), size0 + 1, -EPROTO},
        {"capacity 0", AT(cap[0]), 0, -EPROTO},
        {"capacity above the area", AT(cap[0]), size0 + 1, -EPROTO},
        {"capacity above MEMPIPE_SHM_MAX", AT(cap[0]),
         (uint64_t)MEMPIPE_SHM_MAX + 1, -EPROTO},
        {"rings of two capacities", AT(cap[1]), cap0 - 1, -EPROTO},
        {"attach word 2", AT(attach), 2, -EPROTO},
        {"attach word 1 (taken)", AT(attach), 1, -EBUSY},
    };
#undef AT
    unsigned char copy[sizeof m->hdr];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(copy, m->hdr, m->page);
        uint32_t v32 = (uint32_t)cases[i].v;
        if (cases[i].width == sizeof v32)
            memcpy(copy + cases[i].off, &v32, sizeof v32);
        else
            memcpy(copy + cases[i].off, &cases[i].v, sizeof cases[i].v);
        int fd =
            memfd_like(copy, m->page, m->size, MFD_ALLOW_SEALING, OUR_SEALS);
        expect_attach(cases[i].want, fd, cases[i].what);
        close(fd);
    }
    /* The control: the unchanged copy attaches. */
    model_close_after_control(m);
}

/* A file of another size than its header says (a page more), the header
 * intact: mempipe.h ("-EINVAL ... of another size") and docs/shm.md's
 * table of errors ("a size other than the header's") say -EINVAL. */
static void test_R71_file_of_another_size_is_einval(void **state)
{
    (void)state;
    struct model *m = model_open();
    int fd = memfd_like(m->hdr, m->page, m->size + (off_t)m->page,
                        MFD_ALLOW_SEALING, OUR_SEALS);
    expect_attach(-EINVAL, fd, "a file a page larger than its header says");
    close(fd);
    model_close(m);
}

/* ---- R73: the core rules across processes ------------------------------- */

#define BIG ((int64_t)8 << 20) /* 8 MiB through a 64 KiB pipe */

/* ------------------------------------------------------------------ */
/* R72: a peer that lies about its words                               */
/* ------------------------------------------------------------------ */

/*
 * Our duplex end with a raw fake peer: the file mapped here as the peer's
 * side (attach claimed by hand, no lock, no end), so the test writes the
 * peer's words itself. The creator (side 0) reads ring 1 and writes ring 0.
 */
struct fake {
    mempipe *a;
    struct mempipe__shm_hdr *h;
    size_t len;
};

static void fake_open(struct fake *f, size_t cap)
{
    int fd;
    assert_rc(0, mempipe_shm_duplex(cap, &f->a, &fd));
    struct stat st;
    assert_rc(0, fstat(fd, &st));
    f->len = (size_t)st.st_size;
    f->h = mmap(NULL, f->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(f->h != MAP_FAILED);
    close(fd);
    atomic_store(&f->h->attach, 1u);
}

static void fake_close(struct fake *f)
{
    mempipe_close(f->a);
    munmap(f->h, f->len);
}

/* After the lie: reads and writes -EPROTO, the bytes no longer shown. */
static void expect_proto(struct fake *f)
{
    char buf[64];
    assert_rc(-EPROTO, mempipe_poll_read(f->a, buf, sizeof buf, NULL));
    assert_rc(-EPROTO, mempipe_poll_write(f->a, "x", 1, NULL));
    assert_int_equal(0, mempipe_readable(f->a));
    assert_rc(-EPROTO, mempipe_poll_read(f->a, buf, sizeof buf, NULL));
}

static void test_R72_peer_position_past_the_capacity(void **state)
{
    (void)state;
    struct fake f;
    fake_open(&f, 64);
    /* An honest peer: 5 bytes in ring 1, read as such. */
    memcpy((char *)f.h + f.h->off[1], "hello", 5);
    atomic_store(&f.h->pos[1].wpos, 5);
    char buf[64];
    assert_rc(5, mempipe_poll_read(f.a, buf, sizeof buf, NULL));
    assert_memory_equal("hello", buf, 5);
    /* Then a write position more than the capacity past our read one. */
    atomic_store(&f.h->pos[1].wpos, 5 + 64 + 1);
    expect_proto(&f);
    fake_close(&f);
}

static void test_R72_peer_read_position_past_our_writes(void **state)
{
    (void)state;
    struct fake f;
    fake_open(&f, 64);
    assert_rc(3, mempipe_poll_write(f.a, "abc", 3, NULL));
    atomic_store(&f.h->pos[0].rpos, 4); /* read one byte never written */
    expect_proto(&f);
    fake_close(&f);
}

static void test_R72_peer_state_with_unknown_bits(void **state)
{
    (void)state;
    struct fake f;
    fake_open(&f, 64);
    atomic_store(&f.h->side[1].state, 0x10u);
    expect_proto(&f);
    fake_close(&f);
}

static void test_R72_peer_final_position_below_its_bytes(void **state)
{
    (void)state;
    struct fake f;
    fake_open(&f, 64);
    atomic_store(&f.h->pos[1].wpos, 10);
    atomic_store(&f.h->side[1].wend, 4); /* closed at 4 with 10 published */
    atomic_store(&f.h->side[1].state, MEMPIPE__WCLOSED);
    expect_proto(&f);
    fake_close(&f);
}

/* A peer that only takes back what it said (a lower position) is ignored:
 * our copies never go back, and nothing is read twice. */
static void test_R72_peer_position_going_back_is_ignored(void **state)
{
    (void)state;
    struct fake f;
    fake_open(&f, 64);
    memcpy((char *)f.h + f.h->off[1], "abcdef", 6);
    atomic_store(&f.h->pos[1].wpos, 6);
    char buf[64];
    assert_rc(6, mempipe_poll_read(f.a, buf, sizeof buf, NULL));
    atomic_store(&f.h->pos[1].wpos, 2);
    assert_rc(-EAGAIN, mempipe_poll_read(f.a, buf, sizeof buf, NULL));
    assert_int_equal(0, mempipe_readable(f.a));
    fake_close(&f);
}

/* R78: a peek's spans are the mapping's bytes, which the peer may change
 * while they are shown. */
static void test_R78_peeked_bytes_are_the_peers_to_change(void **state)
{
    (void)state;
    struct fake f;
    fake_open(&f, 64);
    char *area = (char *)f.h + f.h->off[1];
    memcpy(area, "hello", 5);
    atomic_store(&f.h->pos[1].wpos, 5);
    struct iovec iov[2];
    assert_rc(1, mempipe_read_peek(f.a, iov, NULL));
    assert_int_equal(5, iov[0].iov_len);
    assert_memory_equal("hello", iov[0].iov_base, 5);
    area[0] = 'j'; /* the hostile peer writes under our peek */
    assert_memory_equal("jello", iov[0].iov_base, 5);
    assert_rc(0, mempipe_read_consume(f.a, 5));
    fake_close(&f);
}

/* R79: where shm pipes exist (Linux here) they are made; elsewhere the
 * three calls answer -EOPNOTSUPP. */
static void test_R79_the_platform_answers(void **state)
{
    (void)state;
    mempipe *a = NULL;
    int fd = -1;
    int rc = mempipe_shm_duplex(64, &a, &fd);
#if defined(__linux__)
    assert_rc(0, rc);
    mempipe_close(a);
    close(fd);
#else
    assert_rc(-EOPNOTSUPP, rc);
    assert_rc(-EOPNOTSUPP, mempipe_shm_attach(0, &a));
#endif
}

static void test_R73_large_transfers_both_ways(void **state)
{
    (void)state;
    struct pair *p = pair_open(65536, 0);
    kid_send(p->kid, SP_R, BIG);
    assert_rc(BIG, sp_write(&p->s, p->end, BIG));
    assert_rc(BIG, kid_wait(p->kid));
    kid_send(p->kid, SP_W, BIG);
    assert_rc(BIG, sp_read(&p->s, p->end, BIG));
    assert_rc(BIG, kid_wait(p->kid));
    check_streams(p);
    pair_close(p);
}

static void test_R73_large_transfer_simplex(void **state)
{
    (void)state;
    struct pair *p = pair_open(65536, P_SIMPLEX);
    kid_send(p->kid, SP_R, SP_ALL);
    assert_rc(BIG, sp_write(&p->s, p->end, BIG));
    assert_rc(0, mempipe_shutdown(p->end));
    assert_rc(BIG, kid_wait(p->kid)); /* all of it, then EOF */
    check_streams(p);
    pair_close(p);
}

static void test_R73_backpressure_until_the_child_reads(void **state)
{
    (void)state;
    struct pair *p = pair_open(65536, 0);
    assert_int_equal(65536, fill(p, NULL));
    assert_rc(-EAGAIN, sp_poll_write(&p->s, p->end, 1, NULL));
    assert_int_equal(0, mempipe_writable(p->end));
    assert_int_equal(65536, mempipe_unread(p->end));
    assert_rc(1000, kid_do(p->kid, SP_R, 1000));
    assert_int_equal(1000, mempipe_writable(p->end));
    assert_rc(1000, sp_poll_write(&p->s, p->end, 65536, NULL));
    assert_rc(-EAGAIN, sp_poll_write(&p->s, p->end, 1, NULL));
    assert_rc(65536, kid_do(p->kid, SP_R, 65536));
    assert_int_equal(0, mempipe_unread(p->end));
    check_streams(p);
    pair_close(p);
}

static void test_R73_eof_after_the_bytes_when_the_child_shuts_down(void **s)
{
    (void)s;
    struct pair *p = pair_open(4096, 0);
    assert_rc(300, kid_do(p->kid, SP_W, 300));
    assert_rc(0, kid_do(p->kid, SP_SHUT, 0));
    assert_true(mempipe_shut_state(p->end) & MEMPIPE_SHUT_READ);
    assert_rc(300, sp_read(&p->s, p->end, SP_ALL)); /* the bytes, then EOF */
    char c;
    assert_rc(0, mempipe_read(p->end, &c, 1));
    assert_rc(0, mempipe_poll_read(p->end, &c, 1, NULL));
    /* A half-close: our direction still carries bytes. */
    assert_rc(50, sp_write(&p->s, p->end, 50));
    assert_rc(50, kid_do(p->kid, SP_R, 50));
    check_streams(p);
    pair_close(p);
}

static void test_R73_eof_then_epipe_when_the_child_closes(void **state)
{
    (void)state;
    struct pair *p = pair_open(4096, 0);
    assert_rc(100, sp_write(&p->s, p->end, 100));
    assert_rc(100, kid_do(p->kid, SP_R, 100));
    assert_rc(300, kid_do(p->kid, SP_W, 300));
    assert_rc(0, kid_do(p->kid, SP_CLOSE, 0));
    assert_rc(300, sp_read(&p->s, p->end, SP_ALL));
    check_streams(p);
    char c;
    assert_rc(0, mempipe_poll_read(p->end, &c, 1, NULL));
    assert_rc(-EPIPE, mempipe_poll_write(p->end, "x", 1, NULL));
    assert_rc(-EPIPE, mempipe_write(p->end, "x", 1));
    assert_int_equal(MEMPIPE_SHUT_READ | MEMPIPE_SHUT_WRITE,
                     mempipe_shut_state(p->end));
    pair_close(p);
}

static void test_R73_shutdown_both_ways(void **state)
{
    (void)state;
    struct pair *p = pair_open(4096, 0);
    assert_rc(200, sp_write(&p->s, p->end, 200));
    assert_rc(0, mempipe_shutdown(p->end));
    assert_rc(200, kid_do(p->kid, SP_R, SP_ALL)); /* then EOF */
    assert_rc(0, kid_do(p->kid, SP_RPOLL, 10));
    assert_rc(-EPIPE, mempipe_poll_write(p->end, "x", 1, NULL));
    assert_rc(100, kid_do(p->kid, SP_W, 100)); /* the other way still open */
    assert_rc(100, sp_read(&p->s, p->end, 100));
    assert_rc(0, kid_do(p->kid, SP_SHUT, 0));
    assert_rc(0, sp_read(&p->s, p->end, SP_ALL));
    assert_rc(-EPIPE, kid_do(p->kid, SP_WPOLL, 1));
    assert_int_equal(MEMPIPE_SHUT_READ | MEMPIPE_SHUT_WRITE,
                     mempipe_shut_state(p->end));
    check_streams(p);
    pair_close(p);
}

static void test_R73_child_shutdown_read_makes_our_writes_epipe(void **state)
{
    (void)state;
    struct pair *p = pair_open(4096, 0);
    assert_rc(100, sp_write(&p->s, p->end, 100)); /* buffered, never read */
    assert_rc(0, kid_do(p->kid, SP_SHUTRD, 0));
    assert_rc(-EPIPE, mempipe_poll_write(p->end, "x", 1, NULL));
    assert_rc(-EPIPE, mempipe_write(p->end, "x", 1));
    assert_int_equal(0, mempipe_unread(p->end)); /* they never will be */
    assert_rc(0, kid_do(p->kid, SP_RPOLL, 10));  /* the child reads EOF */
    assert_rc(10, kid_do(p->kid, SP_W, 10));     /* its writes go on */
    assert_rc(10, sp_read(&p->s, p->end, 10));
    assert_int_equal(-1, p->s.bad);
    pair_close(p);
}

static void test_R73_child_abort_resets_our_reads(void **state)
{
    (void)state;
    struct pair *p = pair_open(4096, 0);
    assert_rc(20, kid_do(p->kid, SP_W, 20));
    assert_rc(10, sp_write(&p->s, p->end, 10));
    assert_rc(0, kid_do(p->kid, SP_ABORT, 0));
    assert_int_equal(0, mempipe_readable(p->end)); /* discarded at once */
    char buf[32];
    assert_rc(-ECONNRESET, mempipe_poll_read(p->end, buf, sizeof buf, NULL));
    assert_rc(-ECONNRESET, mempipe_read(p->end, buf, sizeof buf));
    assert_rc(-ECONNRESET, mempipe_poll_read(p->end, buf, sizeof buf, NULL));
    assert_rc(-ECONNRESET, mempipe_poll_write(p->end, "x", 1, NULL));
    pair_close(p);
}

static void test_R73_child_close_with_error_gives_our_reads_it(void **state)
{
    (void)state;
    struct pair *p = pair_open(4096, 0);
    assert_rc(7, kid_do(p->kid, SP_W, 7));
    assert_rc(0, kid_do(p->kid, SP_ERR, -EIO));
    assert_rc(7, sp_read(&p->s, p->end, 7)); /* the bytes first */
    assert_int_equal(-1, p->s.bad);
    char buf[8];
    assert_rc(-EIO, mempipe_poll_read(p->end, buf, sizeof buf, NULL));
    assert_rc(-EIO, mempipe_read(p->end, buf, sizeof buf));
    assert_rc(-EIO, mempipe_poll_write(p->end, "x", 1, NULL));
    pair_close(p);
}

static void test_R73_zero_copy_across_processes(void **state)
{
    (void)state;
    struct pair *p = pair_open(65536, 0);
    const int64_t n = 200000; /* three wraps: spans split at the ring's end */
    kid_send(p->kid, SP_ZR, n);
    assert_rc(n, sp_zwrite(&p->s, p->end, n, EVENT_MS));
    assert_rc(n, kid_wait(p->kid));
    kid_send(p->kid, SP_ZW, n);
    assert_rc(n, sp_zread(&p->s, p->end, n, EVENT_MS));
    assert_rc(n, kid_wait(p->kid));
    /* Mixed: copies in on one side, windows on the other. */
    kid_send(p->kid, SP_R, n);
    assert_rc(n, sp_zwrite(&p->s, p->end, n, EVENT_MS));
    assert_rc(n, kid_wait(p->kid));
    kid_send(p->kid, SP_ZW, n);
    assert_rc(n, sp_read(&p->s, p->end, n));
    assert_rc(n, kid_wait(p->kid));
    check_streams(p);
    pair_close(p);
}

/* ---- R74: wakes across processes ---------------------------------------- */

/* The child's command (op, arg), with p's waker stored: the waker runs
 * for it, on the notifier. Returns the command's rc. */
static int64_t child_wakes(struct pair *p, int op, int64_t arg)
{
    ew_wait(&p->w, 0); /* a spurious call before, if any: not this one */
    int64_t rc = kid_do(p->kid, op, arg);
    if (!ew_wait(&p->w, EVENT_MS))
        fail_msg("the waker did not run for the child's command %d", op);
    expect_notifier(&p->w);
    return rc;
}

static void test_R74_read_waker_runs_when_the_child_writes(void **state)
{
    (void)state;
    struct pair *p = pair_open(4096, 0);
    mempipe_waker wk = ew_init(&p->w);
    for (int round = 1; round <= 3; round++) {
        assert_rc(-EAGAIN, sp_poll_read(&p->s, p->end, 100, &wk));
        assert_rc(10 * round, child_wakes(p, SP_W, 10 * round));
        assert_rc(10 * round, sp_poll_read(&p->s, p->end, 100, NULL));
    }
    /* The child's shutdown wakes it too, for EOF. */
    assert_rc(-EAGAIN, sp_poll_read(&p->s, p->end, 100, &wk));
    assert_rc(0, child_wakes(p, SP_SHUT, 0));
    assert_rc(0, sp_poll_read(&p->s, p->end, 100, NULL));
    check_streams(p);
    pair_close(p);
}

static void test_R74_write_waker_runs_when_the_child_frees_room(void **s)
{
    (void)s;
    struct pair *p = pair_open(65536, 0);
    mempipe_waker wk = ew_init(&p->w);
    for (int round = 1; round <= 3; round++) {
        fill(p, &wk);
        int64_t n = round == 1 ? 65536 : 5000;
        assert_rc(n, child_wakes(p, SP_R, n));
        assert_rc(5000, sp_poll_write(&p->s, p->end, 5000, NULL));
    }
    assert_rc(65536, kid_do(p->kid, SP_R, 65536));
    check_streams(p);
    pair_close(p);
}

static void test_R74_blocking_calls_both_ways(void **state)
{
    (void)state;
    struct pair *p = pair_open(65536, 0);
    struct blocked *b;
    /* Our blocked read, woken by the child's write. */
    b = blocked_start(p, SP_R, 100);
    wait_want(p, 0, MEMPIPE__SHM_BLK_DATA, "our read");
    assert_rc(100, kid_do(p->kid, SP_W, 100));
    assert_rc(100, blocked_join(b, EVENT_MS, "our read"));
    /* Our blocked write on a full pipe, woken by the child's read; the
     * child's read, past what was buffered, is woken by that write. */
    assert_int_equal(65536, fill(p, NULL));
    b = blocked_start(p, SP_W, 1000);
    wait_want(p, 0, MEMPIPE__SHM_BLK_SPACE, "our write");
    kid_send(p->kid, SP_R, 65536 + 1000);
    assert_rc(1000, blocked_join(b, EVENT_MS, "our write"));
    assert_rc(65536 + 1000, kid_wait(p->kid));
    /* The child's blocked write, woken by our reads. */
    kid_send(p->kid, SP_W, 3 * 65536);
    wait_want(p, 1, MEMPIPE__SHM_BLK_SPACE, "the child's write");
    assert_rc(3 * 65536, sp_read(&p->s, p->end, 3 * 65536));
    assert_rc(3 * 65536, kid_wait(p->kid));
    /* The child's blocked read, woken by our write. */
    kid_send(p->kid, SP_R, 10);
    wait_want(p, 1, MEMPIPE__SHM_BLK_DATA, "the child's read");
    assert_rc(10, sp_write(&p->s, p->end, 10));
    assert_rc(10, kid_wait(p->kid));
    check_streams(p);
    pair_close(p);
}

static void test_R74_fds_follow_the_childs_calls(void **state)
{
    (void)state;
    struct pair *p = pair_open(65536, 0);
    int rfd = mempipe_readable_fd(p->end), wfd = mempipe_writable_fd(p->end);
    int mfd = mempipe_fd(p->end);
    assert_true(rfd >= 0 && wfd >= 0 && mfd >= 0);
    for (int round = 1; round <= 2; round++) {
        assert_int_equal(0, poll1(rfd, POLLIN, 0));
        assert_int_equal(0, poll1(mfd, POLLIN, 0) & POLLIN);
        assert_rc(10, kid_do(p->kid, SP_W, 10));
        assert_true(poll1(rfd, POLLIN, EVENT_MS) & POLLIN);
        assert_true(poll1(mfd, POLLIN, EVENT_MS) & POLLIN);
        assert_rc(10, sp_poll_read(&p->s, p->end, 100, NULL));
    }
    assert_int_equal(0, poll1(rfd, POLLIN, 0));
    /* Writing: full, not writable; the child's read makes room. */
    fill(p, NULL);
    assert_int_equal(0, poll1(wfd, POLLIN, 0));
    assert_int_equal(0, poll1(mfd, POLLOUT, 0) & POLLOUT);
    assert_rc(65536, kid_do(p->kid, SP_R, 65536));
    assert_true(poll1(wfd, POLLIN, EVENT_MS) & POLLIN);
    assert_true(poll1(mfd, POLLOUT, EVENT_MS) & POLLOUT);
    /* The child's shutdown: EOF readable, POLLRDHUP on mempipe_fd. */
    assert_rc(0, kid_do(p->kid, SP_SHUT, 0));
    assert_true(poll1(rfd, POLLIN, EVENT_MS) & POLLIN);
    assert_true(poll1(mfd, POLLRDHUP, EVENT_MS) & POLLRDHUP);
    assert_rc(0, sp_poll_read(&p->s, p->end, 100, NULL));
    check_streams(p);
    pair_close(p);
}

/* ---- R75: the peer's death is its close --------------------------------- */

/* Kills the child now (reaped later): the time of the kill. */
static double kill_kid(struct pair *p)
{
    double t = tu_now();
    assert_int_equal(0, kill(p->kid->pid, SIGKILL));
    return t;
}

static void expect_soon(const char *what, double t_kill, double t_event)
{
    double ms = (t_event - t_kill) * 1000;
    print_message("      %s %.1f ms after the kill (bound %d ms)\n", what, ms,
                  DEATH_BOUND_MS);
    if (ms > DEATH_BOUND_MS)
        fail_msg("%s %.1f ms after the kill: above 2 * %d + %d ms", what, ms,
                 MEMPIPE__SHM_SLICE_MS, DEATH_MARGIN_MS);
}

/* After the death: EOF, -EPIPE, and the child died of the kill. */
static void expect_dead(struct pair *p)
{
    char c;
    assert_rc(0, mempipe_poll_read(p->end, &c, 1, NULL));
    assert_rc(-EPIPE, mempipe_poll_write(p->end, "x", 1, NULL));
    assert_int_equal(128 + SIGKILL, kid_reap(p->kid));
    pair_free(p);
}

static void test_R75_death_ends_a_blocked_read(void **state)
{
    (void)state;
    struct pair *p = pair_open(65536, 0);
    assert_rc(10, kid_do(p->kid, SP_W, 10));
    struct blocked *b;
    b = blocked_start(p, SP_R, SP_ALL); /* reads the 10, then waits */
    wait_want(p, 0, MEMPIPE__SHM_BLK_DATA, "our read");
    double t = kill_kid(p);
    assert_rc(10, blocked_join(b, DEATH_GIVEUP_MS, "read after the kill"));
    expect_soon("EOF", t, b->t_ret);
    assert_int_equal(-1, p->s.bad);
    char c;
    assert_rc(0, mempipe_read(p->end, &c, 1));
    expect_dead(p);
}

static void test_R75_death_ends_a_blocked_write(void **state)
{
    (void)state;
    struct pair *p = pair_open(65536, 0);
    assert_int_equal(65536, fill(p, NULL));
    struct blocked *b;
    b = blocked_start(p, SP_W, 1000);
    wait_want(p, 0, MEMPIPE__SHM_BLK_SPACE, "our write");
    double t = kill_kid(p);
    assert_rc(-EPIPE, blocked_join(b, DEATH_GIVEUP_MS, "write after the kill"));
    expect_soon("-EPIPE", t, b->t_ret);
    expect_dead(p);
}

static void test_R75_death_runs_a_stored_waker(void **state)
{
    (void)state;
    struct pair *p = pair_open(65536, 0);
    mempipe_waker wk = ew_init(&p->w);
    assert_rc(-EAGAIN, sp_poll_read(&p->s, p->end, 100, &wk));
    wait_want(p, 0, MEMPIPE__SHM_NOTE_DATA, "our notifier");
    double t = kill_kid(p);
    if (!ew_wait(&p->w, DEATH_GIVEUP_MS))
        fail_msg("the waker did not run %d ms after the kill", DEATH_GIVEUP_MS);
    expect_soon("the waker", t, (double)atomic_load(&p->w.first_ns) / 1e9);
    expect_notifier(&p->w);
    expect_dead(p);
}

static void test_R75_death_shows_on_the_fds(void **state)
{
    (void)state;
    struct pair *p = pair_open(65536, 0);
    int rfd = mempipe_readable_fd(p->end), mfd = mempipe_fd(p->end);
    assert_true(rfd >= 0 && mfd >= 0);
    assert_int_equal(0, poll1(rfd, POLLIN, 0));
    assert_int_equal(0, poll1(mfd, POLLIN | POLLRDHUP, 0) &
                            (POLLIN | POLLRDHUP | POLLHUP));
    wait_want(p, 0, MEMPIPE__SHM_NOTE_DATA, "our notifier");
    double t = kill_kid(p), t_r = -1, t_in = -1, t_hup = -1;
    while (t_r < 0 || t_in < 0 || t_hup < 0) {
        int left = DEATH_GIVEUP_MS - (int)((tu_now() - t) * 1000);
        if (left <= 0)
            fail_msg("after %d ms: readable fd %s, mempipe_fd POLLIN %s, "
                     "hang-up %s",
                     DEATH_GIVEUP_MS, t_r < 0 ? "no" : "yes",
                     t_in < 0 ? "no" : "yes", t_hup < 0 ? "no" : "yes");
        /* Only what is still to come: a level already seen would spin. */
        struct pollfd f[2] = {
            {.fd = t_r < 0 ? rfd : -1, .events = POLLIN},
            {.fd = mfd, .events = (short)((t_in < 0 ? POLLIN : 0) | POLLRDHUP)},
        };
        if (t_hup >= 0)
            f[1].fd = -1;
        assert_true(poll(f, 2, left) >= 0);
        double now = tu_now();
        if (t_r < 0 && (f[0].revents & POLLIN))
            t_r = now;
        if (t_in < 0 && (f[1].revents & POLLIN))
            t_in = now;
        if (t_hup < 0 && (f[1].revents & (POLLRDHUP | POLLHUP)))
            t_hup = now;
    }
    expect_soon("the readable fd's POLLIN", t, t_r);
    expect_soon("mempipe_fd's POLLIN", t, t_in);
    expect_soon("mempipe_fd's hang-up", t, t_hup);
    expect_dead(p);
}

/* ---- R76: fork and exec ------------------------------------------------- */

static void test_R76_fd_inherited_across_exec_attaches(void **state)
{
    (void)state;
    struct pair *p = pair_open(4096, P_EXEC);
    assert_rc(4000, kid_do(p->kid, SP_W, 4000)); /* fits: capacity 4096 */
    kid_send(p->kid, SP_R, SP_ALL);
    assert_rc(4000, sp_read(&p->s, p->end, 4000));
    assert_rc(7000, sp_write(&p->s, p->end, 7000));
    assert_rc(0, mempipe_shutdown(p->end));
    assert_rc(7000, kid_wait(p->kid));
    check_streams(p);
    pair_close(p);
}

/* In a forked child, after in_child closed the end it inherited (R34,
 * the one call allowed on it): a pipe made in the child works (R34). */
static int new_pipe_works(void *arg)
{
    (void)arg;
    mempipe *a, *b;
    int fd;
    char buf[4];
    if (mempipe_shm_duplex(64, &a, &fd) != 0)
        return 1;
    int ok =
        mempipe_shm_attach(fd, &b) == 0 && mempipe_write(a, "kid", 3) == 3 &&
        mempipe_read(b, buf, sizeof buf) == 3 && memcmp(buf, "kid", 3) == 0;
    close(fd);
    mempipe_close(b);
    mempipe_close(a);
    return ok ? 0 : 1;
}

static void test_R76_inherited_end_closed_in_a_child(void **state)
{
    (void)state;
    struct pair *p = pair_open(4096, 0);
    /* The end has a notifier (a stored waker) and fds when it is forked. */
    int mfd = mempipe_fd(p->end), rfd = mempipe_readable_fd(p->end);
    assert_true(mfd >= 0 && rfd >= 0);
    mempipe_waker wk = ew_init(&p->w);
    assert_rc(-EAGAIN, sp_poll_read(&p->s, p->end, 100, &wk));
    /* in_child closes the inherited end first (child_drop_inherited). */
    assert_int_equal(0, in_child(new_pipe_works, NULL));
    /* The real peer sees nothing closed. */
    assert_rc(-EAGAIN, kid_do(p->kid, SP_RPOLL, 10));
    assert_rc(4096, kid_do(p->kid, SP_CAP, 0));
    /* And our end works on: its waker, its fds, bytes both ways. */
    assert_int_equal(0, poll1(rfd, POLLIN, 0));
    assert_rc(5, kid_do(p->kid, SP_W, 5));
    if (!ew_wait(&p->w, EVENT_MS))
        fail_msg("the waker did not run after the child's close");
    assert_true(poll1(rfd, POLLIN, EVENT_MS) & POLLIN);
    assert_true(poll1(mfd, POLLIN, EVENT_MS) & POLLIN);
    assert_rc(5, sp_poll_read(&p->s, p->end, 100, NULL));
    assert_rc(20, sp_write(&p->s, p->end, 20));
    assert_rc(20, kid_do(p->kid, SP_R, 20));
    check_streams(p);
    pair_close(p);
}

/* ---- R77: memory --------------------------------------------------------- */

/* RssShmem of this process, in kB. */
static long rss_shmem_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "RssShmem: %ld kB", &kb) == 1)
            break;
    fclose(f);
    assert_true(kb >= 0);
    return kb;
}

static void test_R77_pages_are_touched_as_bytes_arrive(void **state)
{
    (void)state;
    long r0 = rss_shmem_kb();
    struct pair *p = pair_open((size_t)1 << 30, P_NOVIEW); /* 2 GiB of rings */
    long r1 = rss_shmem_kb();
    print_message("      RssShmem +%ld kB for a fresh 1 GiB duplex\n", r1 - r0);
    /* The header page (4 kB), and a little slack for pages of ours the
     * kernel counts as shmem: far below one ring's 1 GiB. */
    assert_in_range(r1 - r0, 0, 64);
    const int64_t mib = (int64_t)1 << 20;
    kid_send(p->kid, SP_R, mib);
    assert_rc(mib, sp_write(&p->s, p->end, mib));
    assert_rc(mib, kid_wait(p->kid));
    long r2 = rss_shmem_kb();
    print_message("      RssShmem +%ld kB after 1 MiB through it\n", r2 - r0);
    /* We wrote 1 MiB into ring 0: its first 256 pages, each touched once,
     * plus the header and the slack above. */
    assert_in_range(r2 - r0, 1024, 1024 + 64);
    check_streams(p);
    pair_close(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_R68_duplex_bytes_in_order_both_ways),
        T(test_R68_simplex_bytes_one_way),
        T(test_R68_fd_sent_with_scm_rights_attaches),
        T(test_R68_attach_in_the_creating_process),
        T(test_R68_second_attach_is_ebusy),
        T(test_R69_capacity_is_max_exactly),
        T(test_R70_create_rejects_bad_arguments),
        T(test_R70_attach_rejects_what_is_not_our_sealed_memfd),
        T(test_R70_seals_refuse_resizing),
        T(test_R71_attach_checks_magic_version_and_layout),
        T(test_R71_file_of_another_size_is_einval),
        T(test_R72_peer_position_past_the_capacity),
        T(test_R72_peer_read_position_past_our_writes),
        T(test_R72_peer_state_with_unknown_bits),
        T(test_R72_peer_final_position_below_its_bytes),
        T(test_R72_peer_position_going_back_is_ignored),
        T(test_R78_peeked_bytes_are_the_peers_to_change),
        T(test_R79_the_platform_answers),
        T(test_R73_large_transfers_both_ways),
        T(test_R73_large_transfer_simplex),
        T(test_R73_backpressure_until_the_child_reads),
        T(test_R73_eof_after_the_bytes_when_the_child_shuts_down),
        T(test_R73_eof_then_epipe_when_the_child_closes),
        T(test_R73_shutdown_both_ways),
        T(test_R73_child_shutdown_read_makes_our_writes_epipe),
        T(test_R73_child_abort_resets_our_reads),
        T(test_R73_child_close_with_error_gives_our_reads_it),
        T(test_R73_zero_copy_across_processes),
        T(test_R74_read_waker_runs_when_the_child_writes),
        T(test_R74_write_waker_runs_when_the_child_frees_room),
        T(test_R74_blocking_calls_both_ways),
        T(test_R74_fds_follow_the_childs_calls),
        T(test_R75_death_ends_a_blocked_read),
        T(test_R75_death_ends_a_blocked_write),
        T(test_R75_death_runs_a_stored_waker),
        T(test_R75_death_shows_on_the_fds),
        T(test_R76_fd_inherited_across_exec_attaches),
        T(test_R76_inherited_end_closed_in_a_child),
        T(test_R77_pages_are_touched_as_bytes_arrive),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
