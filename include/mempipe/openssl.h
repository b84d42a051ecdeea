/* SPDX-License-Identifier: MIT */
/*
 * mempipe/openssl.h — an OpenSSL BIO over a mempipe end.
 *
 * Link with -lmempipe_openssl (pkg-config mempipe-openssl, CMake target
 * mempipe::mempipe_openssl) and OpenSSL (1.1.1 or later).
 *
 * The BIO is a source/sink: BIO_read takes bytes the peer end wrote,
 * BIO_write writes bytes for the peer to read. Hand it to SSL_set_bio() and
 * an SSL object talks TLS over an in-memory pipe exactly as it would over a
 * socket BIO, so TLS code is tested in one process without a network.
 *
 * Two modes, as with a socket BIO:
 *
 *   non-blocking (the default): reads and writes never wait. When nothing is
 *   buffered (read) or the pipe is full (write) the call fails with the
 *   retry flags set (BIO_should_retry(), BIO_should_read()/write()), so
 *   SSL_get_error() gives SSL_ERROR_WANT_READ / SSL_ERROR_WANT_WRITE. Use it
 *   from an event loop: watch mempipe_readable_fd()/mempipe_writable_fd(),
 *   or use mempipe_poll_* with a waker, and call SSL again when woken.
 *
 *   blocking, after BIO_set_nbio(bio, 0): reads wait for at least one byte
 *   (mempipe_read()), writes wait until every byte is taken
 *   (mempipe_write()). Use it with one thread per side.
 *
 * End of file: once the peer shut down or closed its end and every byte it
 * wrote has been read, BIO_read returns 0 without the retry flags and
 * BIO_eof() is 1 from then on. OpenSSL reports this to SSL callers as an
 * unexpected EOF (SSL_ERROR_SSL or SSL_ERROR_SYSCALL) unless close_notify
 * came first. Writing after the peer is gone fails without retry flags and
 * leaves an ERR_LIB_SYS error with reason EPIPE on the OpenSSL error queue.
 *
 * Controls (BIO_ctrl):
 *   BIO_ctrl_pending()   bytes buffered for reading (mempipe_readable()).
 *   BIO_wpending()       0: a write is in the pipe as soon as it returns.
 *   BIO_flush()          1: there is never anything to flush.
 *   BIO_eof()            1 once a read has returned end of file.
 *   BIO_set_nbio()       picks the mode above; 1 by default.
 *   BIO_get_close() / BIO_set_close():
 *       BIO_NOCLOSE (the default): the end stays the caller's; freeing the
 *       BIO (or the SSL that owns it) leaves it open, and the caller closes
 *       it with mempipe_close() after the BIO is freed.
 *       BIO_CLOSE: freeing the BIO calls mempipe_close(end); the caller must
 *       not close or use the end itself afterwards.
 * Other controls return 0 (not supported), as for a socket BIO.
 *
 * Threads: the BIO is used by one thread at a time (as any BIO), and that
 * thread is then the end's reader and writer for the R26 rule. The method
 * table behind every mempipe BIO is created once, thread-safely, on first
 * use and lives until the process exits.
 */
#ifndef MEMPIPE_OPENSSL_H
#define MEMPIPE_OPENSSL_H

#include <openssl/bio.h>

#include "../mempipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Makes a non-blocking BIO over end, with BIO_NOCLOSE (see above).
 * Returns the BIO (free it with BIO_free(), or let the SSL object that owns
 * it free it), or NULL if end is NULL or memory is short (then nothing is
 * allocated and the end is untouched).
 * Any thread.
 */
MEMPIPE_EXTERN BIO *mempipe_bio_new(mempipe *end);

/*
 * Returns the end a mempipe BIO was made over (for example to find the fds
 * to watch from SSL_get_rbio(ssl)), or NULL if bio is NULL or not a mempipe
 * BIO. The BIO keeps using the end; this gives no ownership.
 */
MEMPIPE_EXTERN mempipe *mempipe_bio_get_end(BIO *bio);

#ifdef __cplusplus
}
#endif

#endif /* MEMPIPE_OPENSSL_H */
