/* SPDX-License-Identifier: MIT */
/*
 * Bridges (mempipe.h): an end pumped to a real stream fd, both ways.
 *
 * A bridge copies nothing itself. Towards the fd it peeks at the end's
 * bytes (mempipe_read_peek) and hands the spans to writev/sendmsg, then
 * consumes what the kernel took; from the fd it reserves room in the end
 * (mempipe_write_reserve), reads into it and commits what came. So each
 * byte is copied once, by the kernel, and a side is read only as far as
 * the other can take it now: backpressure both ways, no buffer of its own.
 *
 * Each direction is a tiny state machine run by step(): it moves bytes
 * until one side would wait, and records which (the pollfd events it
 * waits for). The ends of streams propagate as a socket's would:
 *
 *   end -> fd   EOF (the end's peer shut down or closed): shutdown(SHUT_WR)
 *               (a pipe fd: closed); the end's peer aborted (-ECONNRESET):
 *               the fd is reset (SO_LINGER {1, 0}, then closed), and the
 *               other direction ends too; the fd refuses bytes (EPIPE,
 *               ECONNRESET: its peer is gone): the end is read-shut, so
 *               the end's peer's writes fail with -EPIPE.
 *   fd -> end   EOF: mempipe_shutdown(end), after mempipe_shutdown_read(end)
 *               if the fd is shut both ways (POLLHUP: its peer closed), so
 *               that the end's peer's writes fail with -EPIPE as on a
 *               socket whose peer closed; ECONNRESET: the end is closed
 *               with -ECONNRESET for its peer's reads
 *               (mempipe_close_with_error); the end refuses bytes (-EPIPE:
 *               its peer's read side is gone): shutdown(SHUT_RD).
 *
 * When both directions are done the bridge closes the fd and the end.
 * SIGPIPE: sockets are written with MSG_NOSIGNAL; a pipe fd is written
 * with SIGPIPE blocked on the calling thread, and a SIGPIPE that write
 * raised is taken back with sigtimedwait before the mask is restored.
 */
#include "alloc.h"

#include <mempipe.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Bytes one reservation asks for: what a read from the fd may bring. */
#define CHUNK (64 * 1024)

struct mempipe_bridge {
    mempipe *end;
    int fd;
    int efd;     /* mempipe_fd(end): POLLIN/POLLOUT as the end's calls */
    int fl0;     /* fd's file status flags before the bridge */
    bool sock;   /* fd is a socket (else a pipe or FIFO) */
    bool e2f;    /* end -> fd still runs */
    bool f2e;    /* fd -> end still runs */
    short ewant; /* events awaited on efd */
    short fwant; /* events awaited on fd */
    int err;     /* the first error (negative), or 0 */
    bool done;   /* both directions over: fd and end closed */
    bool primed; /* the first step ran (a one-way fd's shutdowns) */
    bool thread; /* made by mempipe_bridge_fd: a thread runs it */
    pthread_t tid;
};

static void first_error(struct mempipe_bridge *b, int err)
{
    if (b->err == 0)
        b->err = err;
}

/* writev on a pipe with SIGPIPE held back; sendmsg(MSG_NOSIGNAL) on a
 * socket. Returns bytes or -errno. */
static ssize_t put(struct mempipe_bridge *b, const struct iovec *iov, int n)
{
    if (b->sock) {
        struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = n};
        ssize_t k = sendmsg(b->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        return k < 0 ? -errno : k;
    }
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    ssize_t k = writev(b->fd, iov, n);
    int e = errno;
    if (k < 0 && e == EPIPE && !was_pending) {
        /* Ours: take it back, so nobody sees a signal for it. */
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return k < 0 ? -e : k;
}

/* Ends end -> fd: the fd's sending side, as a socket's shutdown. */
static void stop_e2f(struct mempipe_bridge *b)
{
    b->e2f = false;
    b->ewant &= (short)~POLLIN;
    b->fwant &= (short)~POLLOUT;
}

static void stop_f2e(struct mempipe_bridge *b)
{
    b->f2e = false;
    b->ewant &= (short)~POLLOUT;
    b->fwant &= (short)~POLLIN;
}

/* Resets the fd as a socket's abortive close does, and ends both ways. */
static void reset_fd(struct mempipe_bridge *b)
{
    if (b->sock) {
        struct linger lg = {1, 0};
        (void)setsockopt(b->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    stop_e2f(b);
    stop_f2e(b);
}

/* The fd was reset: the end's peer reads -ECONNRESET (after the bytes
 * already in the end), and nothing more goes either way. */
static void end_reset(struct mempipe_bridge *b)
{
    (void)mempipe_close_with_error(b->end, -ECONNRESET);
    b->end = NULL;
    stop_e2f(b);
    stop_f2e(b);
}

/* end -> fd until one side would wait. */
static void pump_e2f(struct mempipe_bridge *b)
{
    while (b->e2f) {
        struct iovec iov[2];
        int n = mempipe_read_peek(b->end, iov, NULL);
        if (n == -EAGAIN) {
            b->ewant |= POLLIN;
            return;
        }
        if (n == 0) { /* EOF: the end's peer shut down or closed */
            if (b->sock)
                (void)shutdown(b->fd, SHUT_WR);
            stop_e2f(b);
            if (!b->sock) /* a pipe's write end: its EOF is its close */
                stop_f2e(b);
            return;
        }
        if (n < 0) {
            if (n == -ECONNRESET) {
                reset_fd(b);
            } else {
                first_error(b, n);
                stop_e2f(b);
            }
            return;
        }
        ssize_t k = put(b, iov, n);
        if (k == -EINTR) {
            (void)mempipe_read_consume(b->end, 0);
            continue;
        }
        if (k == -EAGAIN || k == -EWOULDBLOCK || k == 0) { /* fd full */
            (void)mempipe_read_consume(b->end, 0);
            b->fwant |= POLLOUT;
            return;
        }
        if (k < 0) {
            (void)mempipe_read_consume(b->end, 0);
            if (k == -ECONNRESET) { /* as a reset seen by a read */
                end_reset(b);
                return;
            }
            /* The fd's reader is gone: the end's peer learns it as
             * -EPIPE on its writes. */
            (void)mempipe_shutdown_read(b->end);
            if (k != -EPIPE)
                first_error(b, (int)k);
            stop_e2f(b);
            return;
        }
        (void)mempipe_read_consume(b->end, (size_t)k);
    }
}

/* The fd is shut both ways (POLLHUP): its peer closed, not just shut its
 * sending side, or the fd's sending side was shut as well. */
static bool hung_up(int fd)
{
    struct pollfd p = {.fd = fd, .events = 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) != 0;
}

/* fd -> end until one side would wait. */
static void pump_f2e(struct mempipe_bridge *b)
{
    while (b->f2e) {
        struct iovec iov[2];
        int n = mempipe_write_reserve(b->end, CHUNK, iov, NULL);
        if (n == -EAGAIN) {
            b->ewant |= POLLOUT;
            return;
        }
        if (n < 0) { /* -EPIPE or the reader's error: nobody reads */
            if (b->sock)
                (void)shutdown(b->fd, SHUT_RD);
            stop_f2e(b);
            if (!b->sock) /* a pipe's read end: nothing else to do */
                stop_e2f(b);
            return;
        }
        ssize_t k = readv(b->fd, iov, n);
        int e = errno;
        if (k > 0) {
            (void)mempipe_write_commit(b->end, (size_t)k);
            continue;
        }
        (void)mempipe_write_commit(b->end, 0);
        if (k < 0 && e == EINTR)
            continue;
        if (k < 0 && (e == EAGAIN || e == EWOULDBLOCK)) {
            b->fwant |= POLLIN;
            return;
        }
        if (k == 0) { /* EOF: the fd's peer shut down its sending side */
            if (hung_up(b->fd)) {
                /* Both ways shut (its peer closed): nothing the end's
                 * peer writes can go anywhere. Read-shut first, so that
                 * its writes fail -EPIPE once it reads the EOF. */
                (void)mempipe_shutdown_read(b->end);
                stop_e2f(b);
            }
            (void)mempipe_shutdown(b->end);
            stop_f2e(b);
            if (!b->sock)
                stop_e2f(b);
            return;
        }
        if (e == ECONNRESET) {
            end_reset(b);
            return;
        }
        first_error(b, -e);
        (void)mempipe_shutdown(b->end);
        stop_f2e(b);
    }
}

int mempipe_bridge_step(mempipe_bridge *b)
{
    if (b == NULL)
        return -EINVAL;
    if (b->done)
        return 1;
    if (!b->primed) {
        /* A pipe fd runs one way. Done here, not when the bridge is
         * made, so that a failed mempipe_bridge_fd changes nothing. */
        b->primed = true;
        if (!b->e2f) /* nobody takes what the end's peer writes */
            (void)mempipe_shutdown_read(b->end);
        if (!b->f2e) /* nothing comes: the end's peer reads EOF */
            (void)mempipe_shutdown(b->end);
    }
    b->ewant = b->fwant = 0;
    pump_e2f(b);
    pump_f2e(b);
    if (b->e2f && !b->f2e && b->sock && (b->ewant & POLLIN) && hung_up(b->fd)) {
        /* R86 in the other order: the fd's peer closed after the fd's
         * reading side was shut (the end's peer read-shut), while the end
         * has nothing to send. Nothing it sends later could go anywhere,
         * and poll would report the hang-up at every round: its peer's
         * writes fail -EPIPE from now on, as on the socket. */
        (void)mempipe_shutdown_read(b->end);
        stop_e2f(b);
    }
    if (b->e2f || b->f2e)
        return 0;
    b->done = true;
    close(b->fd);
    if (b->end != NULL)
        mempipe_close(b->end);
    b->end = NULL;
    return 1;
}

int mempipe_bridge_pollfds(const mempipe_bridge *b, struct pollfd *fds)
{
    if (b == NULL || fds == NULL)
        return -EINVAL;
    if (b->done)
        return 0;
    fds[0] = (struct pollfd){.fd = b->efd, .events = b->ewant};
    fds[1] = (struct pollfd){.fd = b->fd, .events = b->fwant};
    return 2;
}

/* Runs b to the end on this thread: step, wait, again. */
static void run(mempipe_bridge *b)
{
    struct pollfd fds[2];
    while (mempipe_bridge_step(b) == 0) {
        int n = mempipe_bridge_pollfds(b, fds);
        while (poll(fds, (nfds_t)n, -1) < 0 && errno == EINTR)
            ;
    }
}

static void *bridge_main(void *arg)
{
    /* SIGPIPE stays blocked on this thread for good: put() takes back a
     * SIGPIPE its write raised, and nothing else here raises one. */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    run(arg);
    return NULL;
}

/* What fd is: 1 stream socket, 0 pipe or FIFO, or a negative errno;
 * *fl its file status flags. */
static int classify(int fd, int *fl)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    *fl = fcntl(fd, F_GETFL);
    if (*fl < 0)
        return -errno;
    if (S_ISFIFO(st.st_mode)) /* one way: read-only or write-only */
        return (*fl & O_ACCMODE) == O_RDWR ? -EINVAL : 0;
    if (!S_ISSOCK(st.st_mode))
        return -ENOTSOCK;
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
        return -errno;
    if (type != SOCK_STREAM)
        return -EPROTOTYPE;
    len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 &&
        listening)
        return -EINVAL;
    struct sockaddr_storage peer;
    len = sizeof peer;
    if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0)
        return -ENOTCONN;
    return 1;
}

int mempipe_bridge_new(mempipe *end, int fd, mempipe_bridge **out)
{
    if (end == NULL || fd < 0 || out == NULL)
        return -EINVAL;
    int fl;
    int kind = classify(fd, &fl);
    if (kind < 0)
        return kind;
    int efd = mempipe_fd(end);
    if (efd < 0)
        return efd;
    int acc = fl & O_ACCMODE;
    mempipe_bridge *b = mempipe__alloc(sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    if ((fl & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        int e = -errno;
        mempipe__free(b, sizeof *b);
        return e;
    }
    *b = (mempipe_bridge){
        .end = end, .fd = fd, .efd = efd, .fl0 = fl, .sock = kind == 1};
    /* A pipe fd runs one way: the way its access mode allows. */
    b->e2f = kind == 1 || acc == O_WRONLY;
    b->f2e = kind == 1 || acc == O_RDONLY;
    *out = b;
    return 0;
}

int mempipe_bridge_fd(mempipe *end, int fd, mempipe_bridge **out)
{
    if (out == NULL)
        return -EINVAL;
    mempipe_bridge *b = NULL;
    int rc = mempipe_bridge_new(end, fd, &b);
    if (rc != 0)
        return rc;
    b->thread = true;
    rc = pthread_create(&b->tid, NULL, bridge_main, b);
    if (rc != 0) {
        /* Nothing taken: the fd's flags back; the end is as it was (its
         * mempipe_fd, made on first request, stays with it). */
        (void)fcntl(fd, F_SETFL, b->fl0);
        mempipe__free(b, sizeof *b);
        return -rc;
    }
    *out = b;
    return 0;
}

int mempipe_bridge_join(mempipe_bridge *b)
{
    if (b == NULL)
        return -EINVAL;
    if (b->thread)
        pthread_join(b->tid, NULL);
    else
        run(b);
    int err = b->err;
    mempipe__free(b, sizeof *b);
    return err;
}

void mempipe_bridge_abort(mempipe_bridge *b)
{
    if (b == NULL || b->thread)
        return;
    if (!b->done) {
        reset_fd(b);
        close(b->fd);
        if (b->end != NULL)
            mempipe_abort(b->end);
    }
    mempipe__free(b, sizeof *b);
}
