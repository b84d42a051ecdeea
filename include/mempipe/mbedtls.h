/* SPDX-License-Identifier: MIT */
/*
 * mempipe/mbedtls.h — mbedTLS BIO callbacks over a mempipe end.
 *
 * Link with -lmempipe_mbedtls (pkg-config mempipe-mbedtls, CMake target
 * mempipe::mempipe_mbedtls) and mbedTLS (2.28 or 3.x): -lmbedtls -lmbedx509
 * -lmbedcrypto.
 *
 * The callbacks take the end as their context:
 *
 *   non-blocking, for an event loop or one thread stepping both sides:
 *     mbedtls_ssl_set_bio(ssl, end, mempipe_mbedtls_send,
 *                         mempipe_mbedtls_recv, NULL);
 *
 *   reads that wait, with mbedtls_ssl_conf_read_timeout() (0: for ever),
 *   for one thread per side:
 *     mbedtls_ssl_set_bio(ssl, end, mempipe_mbedtls_send_blocking,
 *                         NULL, mempipe_mbedtls_recv_timeout);
 *
 * mbedTLS calls the receive-with-timeout callback whenever one is set and
 * ignores the plain one, and its timeout 0 means "wait for ever": setting
 * mempipe_mbedtls_recv_timeout on a session that must not block stalls a
 * one-thread loop. Set it only where waiting is wanted.
 *
 * What mbedTLS sees:
 *   - nothing to read (non-blocking): MBEDTLS_ERR_SSL_WANT_READ; pipe full:
 *     MBEDTLS_ERR_SSL_WANT_WRITE (after taking what fits). Wait for
 *     mempipe_readable_fd(end) / mempipe_writable_fd(end) and call again.
 *   - the peer shut down or closed and every byte was read: 0 (end of
 *     file), which mbedTLS reports as MBEDTLS_ERR_SSL_CONN_EOF unless the
 *     peer's close_notify came first (MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY);
 *   - writing when the peer is gone (or after mempipe_shutdown(end)):
 *     MBEDTLS_ERR_NET_CONN_RESET, as mbedtls_net_send() reports EPIPE and
 *     ECONNRESET; never a SIGPIPE;
 *   - the timeout of mempipe_mbedtls_recv_timeout() passing with nothing to
 *     read: MBEDTLS_ERR_SSL_TIMEOUT;
 *   - any other mempipe error: MBEDTLS_ERR_NET_RECV_FAILED or
 *     MBEDTLS_ERR_NET_SEND_FAILED.
 * Counts are capped at INT_MAX per call (the callbacks return an int).
 *
 * Threads: a context is used by one thread at a time (as mbedTLS requires);
 * that thread is then the end's reader and writer for the R26 rule. No
 * waker is stored by these callbacks (their only context is the end):
 * loops wait on the end's fds.
 */
#ifndef MEMPIPE_MBEDTLS_H
#define MEMPIPE_MBEDTLS_H

#include <stddef.h>
#include <stdint.h>

#include "../mempipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * mbedtls_ssl_send_t over end (a mempipe *): writes as much of buf as fits
 * now without waiting. Returns the count taken (> 0), 0 for len 0,
 * MBEDTLS_ERR_SSL_WANT_WRITE if the pipe is full, MBEDTLS_ERR_NET_CONN_RESET
 * if the peer is gone or this end shut down, MBEDTLS_ERR_NET_SEND_FAILED for
 * other errors (a NULL end). buf is only read during the call.
 * Thread: the one thread writing the end.
 */
MEMPIPE_EXTERN int mempipe_mbedtls_send(void *end, const unsigned char *buf,
                                        size_t len);

/*
 * As mempipe_mbedtls_send(), but waits until all of buf (at most INT_MAX
 * bytes) is taken (mempipe_write()); if the peer goes away part-way it
 * returns the count taken, or MBEDTLS_ERR_NET_CONN_RESET if none was.
 * Never returns MBEDTLS_ERR_SSL_WANT_WRITE. For one thread per side.
 */
MEMPIPE_EXTERN int
mempipe_mbedtls_send_blocking(void *end, const unsigned char *buf, size_t len);

/*
 * mbedtls_ssl_recv_t over end: reads up to len buffered bytes into buf
 * without waiting. Returns the count (> 0), 0 at end of file (or for len 0),
 * MBEDTLS_ERR_SSL_WANT_READ if nothing is buffered,
 * MBEDTLS_ERR_NET_RECV_FAILED for errors (a NULL end, a simplex writer).
 * Thread: the one thread reading the end.
 */
MEMPIPE_EXTERN int mempipe_mbedtls_recv(void *end, unsigned char *buf,
                                        size_t len);

/*
 * mbedtls_ssl_recv_timeout_t over end: waits until a read would not block
 * (bytes or end of file), for at most timeout_ms milliseconds (0: for ever,
 * as mbedTLS defines it), then reads as mempipe_mbedtls_recv().
 * Returns as mempipe_mbedtls_recv(), or MBEDTLS_ERR_SSL_TIMEOUT if nothing
 * came within the timeout. Waiting with a timeout uses poll(2) on
 * mempipe_readable_fd(end) (made on the first such wait; an fd that cannot
 * be made gives MBEDTLS_ERR_NET_RECV_FAILED); waiting for ever is
 * mempipe_read().
 * Thread: the one thread reading the end; it sleeps while it waits.
 */
MEMPIPE_EXTERN int mempipe_mbedtls_recv_timeout(void *end, unsigned char *buf,
                                                size_t len,
                                                uint32_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* MEMPIPE_MBEDTLS_H */
