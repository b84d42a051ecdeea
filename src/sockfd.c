/* SPDX-License-Identifier: MIT */
/*
 * The socketpair behind mempipe_fd() (see sockfd.h and fd.c).
 *
 * Why a socket. A user who watches an fd for POLLOUT, or waits for POLLHUP,
 * needs a kernel object whose POLLOUT can be cleared and whose POLLHUP can
 * be raised: an eventfd or a pipe's read end is always writable (POLLOUT
 * would spin) and never hangs up. Of the objects every event loop can poll,
 * a connected stream socket is the one whose every bit the library can set
 * from outside by ordinary calls on its peer, each bit on its own:
 *
 *   POLLIN    s0's receive queue is not empty: one byte sent from s1 sets
 *             it, a recv on s0 clears it;
 *   POLLOUT   s0's bytes in flight (bytes it sent that s1 has not read,
 *             counted with their kernel overhead) are at most a quarter of
 *             its send buffer (Linux: unix_writable()): sending from s0
 *             until a send is short clears it, draining s1 sets it again;
 *   POLLRDHUP s0's receive side is shut: shutdown(s1, SHUT_WR), with
 *             POLLIN for good;
 *   POLLHUP   both sides of s0 are shut: its send side by
 *             shutdown(s1, SHUT_RD).
 *
 * Every change that makes a bit true wakes s0's pollers through the kernel
 * (data ready, write space, state change), so poll, epoll in both modes,
 * select and GLib see it; a change that makes a bit false wakes nobody.
 * Measured on Linux 6.18: with SO_SNDBUF set to 1 the buffer is 4608
 * bytes; one send of 8 KiB is cut at 4480 and leaves s0 unwritable; one recv
 * on s1 of 8 KiB takes them back and wakes an EPOLLOUT | EPOLLET watcher
 * exactly once (the first skb freed leaves too much in flight, only the last
 * one wakes); one byte from s1 makes one EPOLLIN event; the shutdowns one
 * event each. The two parts never touch the same queue or the same side:
 * the read part sends on s1 and receives on s0, the write part sends on s0
 * and receives on s1, and shutting s1's writing side leaves s0's sends to s1
 * working (and the reverse).
 *
 * Cost per transition: one syscall (set or clear; a fill of a send buffer
 * larger than 8 KiB, where SO_SNDBUF is refused, takes more), and for the
 * final shutdown of the write part from OFF two (drain, shutdown).
 */
#include "sockfd.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

/* No SIGPIPE from our sends, ever (they cannot meet a shut side, but a
 * signal must not be possible even so). */
#if defined(MSG_NOSIGNAL)
#define SEND_FLAGS (MSG_NOSIGNAL | MSG_DONTWAIT)
#else
#define SEND_FLAGS MSG_DONTWAIT
#endif

/* What a write part's fill sends from: larger than Linux's smallest send
 * buffer, so that one send normally fills it. Read-only: any thread. */
static const unsigned char zeros[8192];

static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return -errno;
#if defined(SO_NOSIGPIPE) /* where MSG_NOSIGNAL is missing */
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof on) != 0)
        return -errno;
#endif
    return 0;
}

int mempipe__sock_open(int s[2], bool reads, bool writes)
{
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s) !=
        0)
        return -errno;
    int rc = 0;
#else
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, s) != 0)
        return -errno;
    int rc = set_flags(s[0]);
    if (rc == 0)
        rc = set_flags(s[1]);
#endif
    (void)set_flags; /* used only where socketpair lacks the flags */
    /* The smallest send buffer (the kernel rounds 1 up to its minimum):
     * the fewer bytes a fill takes, the cheaper the drain. If refused, the
     * fill and drain loops just take more bytes: still correct. */
    int one = 1;
    (void)setsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof one);
    /* A side the end does not have is shut from the start, as on a socket
     * that shut it down: a simplex writer's read fails at once (-EBADF),
     * so POLLIN | POLLRDHUP; a simplex reader's write fails at once, so
     * POLLOUT, and POLLHUP once its receive side is shut too. */
    if (rc == 0 && !reads && shutdown(s[1], SHUT_WR) != 0)
        rc = -errno;
    if (rc == 0 && !writes && shutdown(s[1], SHUT_RD) != 0)
        rc = -errno;
    if (rc < 0)
        mempipe__sock_close(s);
    return rc;
}

void mempipe__sock_close(const int s[2])
{
    close(s[0]);
    close(s[1]);
}

/* Empties fd's receive queue (a stream: one recv takes every queued skb
 * up to len). */
static void drain(int fd, unsigned char *buf, size_t len)
{
    ssize_t n;
    do
        n = recv(fd, buf, len, MSG_DONTWAIT);
    while ((n < 0 && errno == EINTR) || n == (ssize_t)len);
}

int mempipe__sock_read_to(const int s[2], int from, int to)
{
    if (to == MEMPIPE__SOCK_SHUT) {
        /* A byte already queued may stay: RCV_SHUTDOWN keeps POLLIN. */
        return shutdown(s[1], SHUT_WR) == 0 ? to : from;
    }
    if (to == MEMPIPE__SOCK_ON) {
        /* OFF -> ON only, so at most one byte is ever queued: the send
         * cannot meet a full buffer. It can fail only for want of kernel
         * memory; then the part stays OFF and the next change retries. */
        ssize_t n;
        do
            n = send(s[1], zeros, 1, SEND_FLAGS);
        while (n < 0 && errno == EINTR);
        return n == 1 ? to : from;
    }
    unsigned char buf[64];
    drain(s[0], buf, sizeof buf);
    return to;
}

int mempipe__sock_write_to(const int s[2], int from, int to,
                           unsigned char *scratch)
{
    if (to == MEMPIPE__SOCK_OFF) {
        /*
         * Fill until a send is short (the buffer took what it could) or
         * fails with EAGAIN (it was full): either way s0 is no longer
         * writable. Any other failure (no kernel memory) leaves POLLOUT
         * uncertain: take the bytes back, stay ON, and let the next change
         * retry. (A short send cut by a failure after some bytes would
         * leave POLLOUT set while the pipe is full: a poller then spins on
         * -EAGAIN until the next change, never hangs.)
         */
        ssize_t n;
        do
            n = send(s[0], zeros, sizeof zeros, SEND_FLAGS);
        while (n == (ssize_t)sizeof zeros || (n < 0 && errno == EINTR));
        if (n >= 0 || errno == EAGAIN || errno == EWOULDBLOCK)
            return to;
        drain(s[1], scratch, MEMPIPE__SOCK_SCRATCH);
        return from;
    }
    /* ON or SHUT: s0's bytes back, which wakes its POLLOUT pollers. (In
     * ON nothing is in flight: a refused fill took its bytes back.) */
    if (from == MEMPIPE__SOCK_OFF)
        drain(s[1], scratch, MEMPIPE__SOCK_SCRATCH);
    if (to == MEMPIPE__SOCK_ON)
        return to;
    /* Drained first, so that the one moment between the two calls shows
     * POLLOUT without the hang-up: a write then fails at once, which is
     * already the truth. */
    return shutdown(s[1], SHUT_RD) == 0 ? to : MEMPIPE__SOCK_ON;
}
