/* SPDX-License-Identifier: MIT */
/*
 * The rule tests' fifth kind (kinds.h, TU_SHMP): an shm pipe whose peer end
 * is in a child process. The test keeps its end (fx.w) and holds, for the
 * child's (fx.r), a stand-in handle that only this file knows: every call
 * the rule bodies make on it is carried to the child over a socket, made
 * there on the real end, and its result (bytes included) carried back.
 *
 * Wakers stay process-local, as the API says: a waker stored through the
 * stand-in is one of the child's, which, when the child's end calls it,
 * sends a message back here, where the test's own waker is called (its
 * function and context are this process's; the child only carries them).
 *
 * With in-process pipes a waker has run by the time the call whose
 * progress satisfied it returns; the rule bodies count on that. So both
 * sides run without notifier threads (mempipe__shm_manual) and every call
 * through these wrappers, on any end, settles both sides before it
 * returns: this side's end (mempipe__shm_settle), then the child's (a
 * round trip, whose wakes arrive before its answer). Blocking calls are
 * made on a thread of the child's, so a test's other threads go on.
 *
 * kinds.h maps the calls the rule bodies make (mempipe_poll_read and the
 * rest below) onto these wrappers, for every kind: on any other end a
 * wrapper is the library's call, then the settle if an xproc pipe is open.
 */
#ifndef MEMPIPE_XPROC_H
#define MEMPIPE_XPROC_H

#include "mempipe.h"
#include <sys/uio.h>

/*
 * Forks a child that attaches fd (the caller's: still open here after, for
 * it to close) and serves the rule bodies' calls on its end. *local is
 * the caller's end of the same pipe, settled after every call from now
 * on. Returns the attach's result in the child: 0 and *peer set to the
 * stand-in, or its error (the child is gone then, nothing else made).
 */
int xp_open(int fd, mempipe *local, mempipe **peer);

ssize_t xp_poll_read(mempipe *end, void *buf, size_t len,
                     const mempipe_waker *waker);
ssize_t xp_poll_write(mempipe *end, const void *buf, size_t len,
                      const mempipe_waker *waker);
ssize_t xp_poll_writev(mempipe *end, const struct iovec *iov, int iovcnt,
                       const mempipe_waker *waker);
ssize_t xp_read(mempipe *end, void *buf, size_t len);
ssize_t xp_write(mempipe *end, const void *buf, size_t len);
size_t xp_readable(const mempipe *end);
size_t xp_writable(const mempipe *end);
size_t xp_capacity(const mempipe *end);
int xp_shutdown(mempipe *end);
int xp_poll_shutdown(mempipe *end, const mempipe_waker *waker);
int xp_poll_flush(mempipe *end, const mempipe_waker *waker);
/* The stand-in's close also ends the child (its exit status checked). */
void xp_close(mempipe *end);

#ifndef XP_IMPL
#define mempipe_poll_read     xp_poll_read
#define mempipe_poll_write    xp_poll_write
#define mempipe_poll_writev   xp_poll_writev
#define mempipe_read          xp_read
#define mempipe_write         xp_write
#define mempipe_readable      xp_readable
#define mempipe_writable      xp_writable
#define mempipe_capacity      xp_capacity
#define mempipe_shutdown      xp_shutdown
#define mempipe_poll_shutdown xp_poll_shutdown
#define mempipe_poll_flush    xp_poll_flush
#define mempipe_close         xp_close
#endif

#endif
