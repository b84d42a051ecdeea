/* SPDX-License-Identifier: MIT */
/*
 * mempipe/gnutls.h — a GnuTLS session's transport over a mempipe end.
 *
 * Link with -lmempipe_gnutls (pkg-config mempipe-gnutls, CMake target
 * mempipe::mempipe_gnutls) and GnuTLS (3.6 or later).
 *
 * mempipe_gnutls_set_transport() installs GnuTLS's push, vectored push,
 * pull and pull-timeout functions so that the session reads what the
 * peer end wrote and writes for the peer end to read, exactly as it would
 * over a TCP socket (gnutls_transport_set_int()).
 *
 * Two modes, as with a socket:
 *
 *   non-blocking (flags 0): the transport never waits. An empty pipe (read)
 *   or a full one (write) makes GnuTLS return GNUTLS_E_AGAIN. A one-thread
 *   loop then calls mempipe_gnutls_arm() with a waker, and calls GnuTLS
 *   again when the waker fires (or at once if arm says so). An fd-based loop
 *   watches mempipe_readable_fd(end) or mempipe_writable_fd(end) instead,
 *   as gnutls_record_get_direction(s) says (0: read, 1: write).
 *
 *   blocking (MEMPIPE_GNUTLS_BLOCKING): reads wait for at least one byte
 *   (mempipe_read()), writes wait until every byte is taken
 *   (mempipe_write()). Use it with one thread per side.
 *
 * What GnuTLS sees (its errno, set with gnutls_transport_set_errno() and
 * errno itself):
 *   - would block: -1 with EAGAIN, so GNUTLS_E_AGAIN;
 *   - the peer shut down or closed and every byte was read: the pull returns
 *     0 (end of file), so GNUTLS_E_PREMATURE_TERMINATION unless the peer's
 *     close_notify came first (then gnutls_record_recv() returns 0);
 *   - writing when the peer is gone (or after mempipe_shutdown() of this
 *     end): -1 with EPIPE, so GNUTLS_E_PUSH_ERROR; never a SIGPIPE;
 *   - any other mempipe error: -1 with its errno value (GNUTLS_E_PULL_ERROR
 *     or GNUTLS_E_PUSH_ERROR).
 * A socket may also say ECONNRESET when the peer closed with bytes unread;
 * mempipe has no resets: the reader sees end of file, the writer EPIPE.
 *
 * A vectored push takes as much as it can: it keeps writing until every
 * byte is taken or the pipe is full (-EAGAIN), and reports the count taken
 * (GnuTLS then returns GNUTLS_E_AGAIN and sends the rest on the next call).
 *
 * The pull-timeout function (GnuTLS calls it when a handshake or record
 * timeout is set): in blocking mode it waits up to the timeout for bytes or
 * end of file with mempipe_wait_readable(end, ms) (no fd is made);
 * GNUTLS_INDEFINITE_TIMEOUT waits for ever. In non-blocking mode it never
 * waits: with a timeout of 0 it reports whether a read would take bytes or see
 * end of file now; with any other timeout it returns "ready" at once, and the
 * pull that follows returns the bytes, end of file or would-block. The deadline
 * of a non-blocking session is then its loop's business.
 *
 * Threads: a session is used by one thread at a time (as with any GnuTLS
 * session); that thread is then the end's reader and writer for the R26
 * rule.
 */
#ifndef MEMPIPE_GNUTLS_H
#define MEMPIPE_GNUTLS_H

#include <gnutls/gnutls.h>

#include "../mempipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* mempipe_gnutls_set_transport() flag: block (one thread per side). */
#define MEMPIPE_GNUTLS_BLOCKING 1u

/*
 * Makes end the transport of session s: installs the push, vectored push,
 * pull and pull-timeout functions and the transport pointer.
 * flags is 0 (non-blocking) or MEMPIPE_GNUTLS_BLOCKING.
 *
 * The adapter keeps a small state for the session (the end, the mode, the
 * armed waker). It is released by mempipe_gnutls_set_transport(s, NULL, 0),
 * which must be called before gnutls_deinit(s) (GnuTLS has no hook to free
 * it); after that the session must do no more I/O. Calling it again with
 * another end (or mode) replaces the state; the old end is not closed.
 * The end stays the caller's: close it with mempipe_close() after the last
 * GnuTLS call on the session.
 *
 * Returns 0.
 * Errors: -EINVAL if s is NULL, or end is non-NULL and flags has a bit other
 *         than MEMPIPE_GNUTLS_BLOCKING (nothing is changed);
 *         -ENOMEM if memory is short (nothing is changed).
 * Thread: the thread using the session, while no GnuTLS call on it runs.
 */
MEMPIPE_EXTERN int mempipe_gnutls_set_transport(gnutls_session_t s,
                                                mempipe *end, unsigned flags);

/*
 * For a one-thread loop, after a GnuTLS call on s returned GNUTLS_E_AGAIN
 * (or GNUTLS_E_INTERRUPTED): arms w for the direction GnuTLS waits on
 * (gnutls_record_get_direction(s)), or says to call GnuTLS again now.
 *
 * Returns 0 when w is armed: the transport's last call found the pipe empty
 * (read) or full (write) and stored w there, so w will be called once, when
 * that direction can progress (bytes, space, end of file or the peer's
 * close), by the thread that made the progress (the peer's, possibly inside
 * a mempipe call). Call GnuTLS again when w fires.
 * Returns 1 when the session may progress now and nothing is armed: GnuTLS
 * returned GNUTLS_E_AGAIN without the transport blocking (for example after
 * a TLS 1.3 post-handshake message), or w differs from the waker the
 * transport last stored (the first arm, or a new waker). Call GnuTLS again
 * at once; from now on every would-block stores w, so the next arm
 * normally returns 0.
 * w is copied; the session keeps the copy until the next arm or
 * mempipe_gnutls_set_transport(), and every would-block stores it in the
 * pipe, so w's ctx must stay valid until then and until the end is closed.
 * Errors: -EINVAL if s, w or w->wake is NULL, or s has no transport pointer
 *         (a transport not set by mempipe_gnutls_set_transport() is
 *         undefined behaviour);
 *         -EBADF if the session is in blocking mode (it never needs one).
 * Thread: the thread using the session.
 */
MEMPIPE_EXTERN int mempipe_gnutls_arm(gnutls_session_t s,
                                      const mempipe_waker *w);

/*
 * Returns the end a session's mempipe transport uses (for example to find
 * the fd to watch), or NULL if s is NULL or has no transport pointer. No
 * ownership is given. Thread: the thread using the session.
 */
MEMPIPE_EXTERN mempipe *mempipe_gnutls_get_end(gnutls_session_t s);

#ifdef __cplusplus
}
#endif

#endif /* MEMPIPE_GNUTLS_H */
