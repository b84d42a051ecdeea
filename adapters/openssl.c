/* SPDX-License-Identifier: MIT */
/*
 * The OpenSSL BIO adapter: a source/sink BIO whose reads and writes are
 * mempipe calls on one end. It knows only the public API: mempipe_poll_*
 * in non-blocking mode, mempipe_read/mempipe_write in blocking mode.
 */
#include "mempipe/openssl.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

/* What a mempipe BIO holds; BIO_get_data() points at it. */
struct bio_state {
    mempipe *end;
    int nbio; /* 1: poll calls and retry flags; 0: blocking calls */
    int eof;  /* a read returned end of file (for BIO_CTRL_EOF) */
};

static BIO_METHOD *bio_method;
static int bio_type;
static pthread_once_t bio_method_once = PTHREAD_ONCE_INIT;

/*
 * Puts a mempipe error on the OpenSSL error queue, the way a socket BIO's
 * failed send() leaves errno behind: ERR_LIB_SYS with the errno value as the
 * reason, so ERR_reason_error_string() and SSL's SSL_ERROR_SYSCALL callers
 * see "Broken pipe" rather than nothing.
 */
static void raise_error(ssize_t err, const char *what)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    ERR_raise_data(ERR_LIB_SYS, (int)-err, "%s: %s", what,
                   mempipe_strerror((int)err));
#else
    (void)what;
    ERR_put_error(ERR_LIB_SYS, 0, (int)-err, __FILE__, __LINE__);
#endif
}

/*
 * Old-style (int) read and write, not the _ex forms: OpenSSL then returns
 * -1 from BIO_read/BIO_write on would-block, as a socket BIO does, and 0
 * only at EOF. Lengths are ints here, so no count overflows.
 */
static int bio_read(BIO *bio, char *buf, int len)
{
    struct bio_state *st = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (st == NULL || buf == NULL || len <= 0)
        return len == 0 ? 0 : -1; /* as read(fd, buf, 0) */
    ssize_t n = st->nbio ? mempipe_poll_read(st->end, buf, (size_t)len, NULL)
                         : mempipe_read(st->end, buf, (size_t)len);
    if (n > 0)
        return (int)n;
    if (n == 0) {
        /* EOF: 0 without retry flags, which is how OpenSSL sees EOF. */
        st->eof = 1;
        return 0;
    }
    if (n == -EAGAIN) {
        BIO_set_retry_read(bio);
        return -1;
    }
    raise_error(n, "mempipe read");
    return -1;
}

static int bio_write(BIO *bio, const char *buf, int len)
{
    struct bio_state *st = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (st == NULL || buf == NULL || len <= 0)
        return len == 0 ? 0 : -1;
    ssize_t n = st->nbio ? mempipe_poll_write(st->end, buf, (size_t)len, NULL)
                         : mempipe_write(st->end, buf, (size_t)len);
    if (n > 0)
        return (int)n;
    if (n == -EAGAIN) {
        BIO_set_retry_write(bio);
        return -1;
    }
    raise_error(n, "mempipe write");
    return -1;
}

static int bio_puts(BIO *bio, const char *str)
{
    size_t len = strlen(str);
    return bio_write(bio, str, len > INT_MAX ? INT_MAX : (int)len);
}

static long bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    struct bio_state *st = BIO_get_data(bio);
    (void)ptr;
    if (st == NULL)
        return 0;
    switch (cmd) {
    case BIO_CTRL_PENDING: {
        size_t n = mempipe_readable(st->end);
        return n > LONG_MAX ? LONG_MAX : (long)n;
    }
    case BIO_CTRL_WPENDING:
        return 0; /* written bytes are in the pipe already */
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return st->eof;
    case BIO_C_SET_NBIO:
        st->nbio = num != 0;
        return 1;
    case BIO_CTRL_GET_CLOSE:
        return BIO_get_shutdown(bio);
    case BIO_CTRL_SET_CLOSE:
        BIO_set_shutdown(bio, (int)num);
        return 1;
    default:
        return 0;
    }
}

static int bio_create(BIO *bio)
{
    /* mempipe_bio_new() fills the state in; a bare BIO_new() gets none. */
    BIO_set_data(bio, NULL);
    BIO_set_init(bio, 0);
    BIO_set_shutdown(bio, BIO_NOCLOSE);
    return 1;
}

static int bio_destroy(BIO *bio)
{
    struct bio_state *st = BIO_get_data(bio);
    if (st == NULL)
        return 1;
    if (BIO_get_shutdown(bio) == BIO_CLOSE)
        mempipe_close(st->end);
    free(st);
    BIO_set_data(bio, NULL);
    BIO_set_init(bio, 0);
    return 1;
}

static void make_method(void)
{
    int type = BIO_get_new_index();
    if (type == -1)
        return;
    type |= BIO_TYPE_SOURCE_SINK;
    BIO_METHOD *m = BIO_meth_new(type, "mempipe");
    if (m == NULL)
        return;
    if (!BIO_meth_set_read(m, bio_read) || !BIO_meth_set_write(m, bio_write) ||
        !BIO_meth_set_puts(m, bio_puts) || !BIO_meth_set_ctrl(m, bio_ctrl) ||
        !BIO_meth_set_create(m, bio_create) ||
        !BIO_meth_set_destroy(m, bio_destroy)) {
        BIO_meth_free(m);
        return;
    }
    bio_type = type;
    bio_method = m;
}

/*
 * The method table is made once per process. pthread_once orders the store
 * of bio_method before every thread's return from pthread_once, so readers
 * need no atomics. If making it failed, bio_method stays NULL and every
 * mempipe_bio_new() returns NULL.
 */
static const BIO_METHOD *get_method(void)
{
    pthread_once(&bio_method_once, make_method);
    return bio_method;
}

BIO *mempipe_bio_new(mempipe *end)
{
    if (end == NULL)
        return NULL;
    const BIO_METHOD *m = get_method();
    if (m == NULL)
        return NULL;
    struct bio_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    BIO *bio = BIO_new(m);
    if (bio == NULL) {
        free(st);
        return NULL;
    }
    st->end = end;
    st->nbio = 1;
    BIO_set_data(bio, st);
    BIO_set_init(bio, 1);
    return bio;
}

mempipe *mempipe_bio_get_end(BIO *bio)
{
    const BIO_METHOD *m = get_method();
    if (bio == NULL || m == NULL || BIO_method_type(bio) != bio_type)
        return NULL;
    struct bio_state *st = BIO_get_data(bio);
    return st != NULL ? st->end : NULL;
}
