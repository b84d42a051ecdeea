/* SPDX-License-Identifier: MIT */
/*
 * The OpenSSL BIO adapter (include/mempipe/openssl.h): the BIO's own
 * contract (retry flags, EOF, controls, close flag), then real TLS 1.3 over
 * one duplex: a handshake and a 16 MiB echo with both SSL objects stepped in
 * turn on one thread (non-blocking BIOs) and again with one thread per side
 * (blocking BIOs), close_notify both ways, and a peer that vanishes
 * mid-handshake. Under injected faults (mempipe_set_faults): the handshake
 * with every call of both ends capped at k bytes, k = 1..32, and with the
 * Nth read or write of either side failing, for every N the handshake
 * reaches. The key and self-signed certificate are made here.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mempipe/openssl.h"

#define ECHO_TOTAL (16u << 20) /* bytes echoed by each TLS test */
#define PIPE_CAP   (64u << 10) /* capacity of each direction */
#define MAX_CHUNK  16384u      /* one TLS record of plaintext at most */

/* ------------------------------------------------------------------------ */
/* Key, certificate and SSL objects                                          */
/* ------------------------------------------------------------------------ */

static EVP_PKEY *g_key;
static X509 *g_cert;

static EVP_PKEY *make_key(void)
{
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    if (kc != NULL && EVP_PKEY_keygen_init(kc) > 0 &&
        EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1) > 0)
        EVP_PKEY_keygen(kc, &key);
    EVP_PKEY_CTX_free(kc);
    return key;
}

/* A self-signed certificate for "localhost", valid for an hour. */
static X509 *make_cert(EVP_PKEY *key)
{
    X509 *x = X509_new();
    if (x == NULL)
        return NULL;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *san =
        X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost");
    if (san == NULL || !X509_add_ext(x, san, -1) ||
        !X509_sign(x, key, EVP_sha256())) {
        X509_EXTENSION_free(san);
        X509_free(x);
        return NULL;
    }
    X509_EXTENSION_free(san);
    return x;
}

static int group_setup(void **state)
{
    (void)state;
    g_key = make_key();
    g_cert = g_key != NULL ? make_cert(g_key) : NULL;
    return g_cert != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    X509_free(g_cert);
    EVP_PKEY_free(g_key);
    return 0;
}

/* One TLS 1.3 client and server over one duplex. */
struct tls {
    SSL_CTX *sctx, *cctx;
    SSL *s, *c;
    mempipe *se, *ce; /* server's end, client's end */
};

static void tls_open(struct tls *t, int blocking)
{
    memset(t, 0, sizeof *t);
    assert_rc(0, mempipe_duplex(PIPE_CAP, &t->se, &t->ce));

    t->sctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(t->sctx);
    assert_int_equal(1, SSL_CTX_set_min_proto_version(t->sctx, TLS1_3_VERSION));
    assert_int_equal(1, SSL_CTX_use_certificate(t->sctx, g_cert));
    assert_int_equal(1, SSL_CTX_use_PrivateKey(t->sctx, g_key));

    t->cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(t->cctx);
    assert_int_equal(1, SSL_CTX_set_min_proto_version(t->cctx, TLS1_3_VERSION));
    assert_int_equal(
        1, X509_STORE_add_cert(SSL_CTX_get_cert_store(t->cctx), g_cert));
    SSL_CTX_set_verify(t->cctx, SSL_VERIFY_PEER, NULL);

    t->s = SSL_new(t->sctx);
    t->c = SSL_new(t->cctx);
    assert_non_null(t->s);
    assert_non_null(t->c);
    assert_int_equal(1, SSL_set1_host(t->c, "localhost"));

    BIO *sb = mempipe_bio_new(t->se);
    BIO *cb = mempipe_bio_new(t->ce);
    assert_non_null(sb);
    assert_non_null(cb);
    if (blocking) {
        BIO_set_nbio(sb, 0);
        BIO_set_nbio(cb, 0);
    }
    SSL_set_bio(t->s, sb, sb); /* each SSL now owns its BIO */
    SSL_set_bio(t->c, cb, cb);
    SSL_set_accept_state(t->s);
    SSL_set_connect_state(t->c);
}

/* The BIOs are BIO_NOCLOSE: SSL_free frees them, then the ends close. */
static void tls_close(struct tls *t)
{
    SSL_free(t->s);
    SSL_free(t->c);
    SSL_CTX_free(t->sctx);
    SSL_CTX_free(t->cctx);
    mempipe_close(t->se);
    mempipe_close(t->ce);
}

static int want(SSL *ssl, int rc)
{
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 1;
    ERR_print_errors_fp(stderr);
    fail_msg("SSL error %d (want WANT_READ/WANT_WRITE)", e);
    return 0;
}

/* Steps both handshakes in turn until both are done. */
static void handshake_stepped(struct tls *t)
{
    int cdone = 0, sdone = 0;
    for (int round = 0; !(cdone && sdone); round++) {
        assert_true(round < 100); /* a TLS 1.3 handshake takes a few */
        if (!cdone) {
            int rc = SSL_do_handshake(t->c);
            cdone = rc == 1 || !want(t->c, rc);
        }
        if (!sdone) {
            int rc = SSL_do_handshake(t->s);
            sdone = rc == 1 || !want(t->s, rc);
        }
    }
    assert_int_equal(TLS1_3_VERSION, SSL_version(t->c));
    assert_int_equal(X509_V_OK, SSL_get_verify_result(t->c));
}

/* ------------------------------------------------------------------------ */
/* The BIO itself                                                            */
/* ------------------------------------------------------------------------ */

static void test_bio_nonblocking_retry_flags_and_pending(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[16];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    BIO *ba = mempipe_bio_new(a);
    BIO *bb = mempipe_bio_new(b);
    assert_non_null(ba);
    assert_non_null(bb);
    assert_ptr_equal(a, mempipe_bio_get_end(ba));

    /* Empty: would block, with the retry-read flags (not EOF). */
    assert_int_equal(-1, BIO_read(bb, buf, sizeof buf));
    assert_true(BIO_should_retry(bb));
    assert_true(BIO_should_read(bb));
    assert_int_equal(0, BIO_eof(bb));

    /* Short write into a capacity of 8, then full: retry-write. */
    assert_int_equal(8, BIO_write(ba, "0123456789", 10));
    assert_int_equal(-1, BIO_write(ba, "x", 1));
    assert_true(BIO_should_retry(ba));
    assert_true(BIO_should_write(ba));

    assert_int_equal(8, (int)BIO_ctrl_pending(bb));
    assert_int_equal(0, (int)BIO_wpending(ba));
    assert_int_equal(1, (int)BIO_flush(ba));
    assert_int_equal(5, BIO_read(bb, buf, 5));
    assert_memory_equal(buf, "01234", 5);
    assert_int_equal(3, (int)BIO_ctrl_pending(bb));
    assert_int_equal(3, BIO_puts(ba, "abc"));
    assert_int_equal(6, BIO_read(bb, buf, sizeof buf));
    assert_memory_equal(buf, "567abc", 6);

    /* A BIO of another kind is not a mempipe BIO. */
    BIO *mem = BIO_new(BIO_s_mem());
    assert_null(mempipe_bio_get_end(mem));
    assert_null(mempipe_bio_get_end(NULL));
    assert_null(mempipe_bio_new(NULL));
    BIO_free(mem);

    BIO_free(ba);
    BIO_free(bb);
    mempipe_close(a);
    mempipe_close(b);
}

static void test_bio_eof_reads_zero_without_retry(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[8];
    assert_rc(0, mempipe_duplex(64, &a, &b));
    BIO *bb = mempipe_bio_new(b);
    assert_rc(2, mempipe_write(a, "hi", 2));
    assert_rc(0, mempipe_shutdown(a));
    /* Buffered bytes come first (R5), then EOF every time. */
    assert_int_equal(2, BIO_read(bb, buf, sizeof buf));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(0, BIO_read(bb, buf, sizeof buf));
        assert_false(BIO_should_retry(bb));
        assert_int_equal(1, BIO_eof(bb));
    }
    BIO_free(bb);
    mempipe_close(a);
    mempipe_close(b);
}

static void test_bio_write_to_closed_peer_fails_with_epipe(void **state)
{
    (void)state;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    BIO *ba = mempipe_bio_new(a);
    mempipe_close(b);
    ERR_clear_error();
    assert_true(BIO_write(ba, "x", 1) <= 0);
    assert_false(BIO_should_retry(ba));
    unsigned long e = ERR_peek_last_error();
    assert_int_equal(ERR_LIB_SYS, ERR_GET_LIB(e));
    assert_int_equal(EPIPE, ERR_GET_REASON(e));
    ERR_clear_error();
    BIO_free(ba);
    mempipe_close(a);
}

static void test_bio_close_flag_default_noclose_and_bio_close(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[4];
    assert_rc(0, mempipe_duplex(64, &a, &b));

    /* BIO_NOCLOSE by default: freeing the BIO leaves the end open. */
    BIO *ba = mempipe_bio_new(a);
    assert_int_equal(BIO_NOCLOSE, (int)BIO_get_close(ba));
    BIO_free(ba);
    assert_rc(1, mempipe_poll_write(a, "x", 1, NULL));
    assert_rc(1, mempipe_poll_read(b, buf, sizeof buf, NULL));

    /* BIO_CLOSE: freeing the BIO closes the end, so the peer sees EOF. */
    ba = mempipe_bio_new(a);
    assert_int_equal(1, (int)BIO_set_close(ba, BIO_CLOSE));
    assert_int_equal(BIO_CLOSE, (int)BIO_get_close(ba));
    BIO_free(ba); /* a is closed now */
    assert_rc(0, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(-EPIPE, mempipe_poll_write(b, "x", 1, NULL));
    mempipe_close(b);
}

struct delayed_write {
    mempipe *end;
    const char *msg;
};

static void *delayed_write_thread(void *arg)
{
    struct delayed_write *d = arg;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL); /* let the reader block first, usually */
    mempipe_write(d->end, d->msg, strlen(d->msg));
    mempipe_shutdown(d->end);
    return NULL;
}

static void test_bio_blocking_read_waits_for_bytes_then_eof(void **state)
{
    (void)state;
    mempipe *a, *b;
    char buf[16];
    assert_rc(0, mempipe_duplex(64, &a, &b));
    BIO *bb = mempipe_bio_new(b);
    assert_int_equal(1, (int)BIO_set_nbio(bb, 0));
    struct delayed_write d = {a, "late"};
    pthread_t th;
    assert_int_equal(0, pthread_create(&th, NULL, delayed_write_thread, &d));
    size_t got = 0;
    while (got < 4) {
        int n = BIO_read(bb, buf + got, (int)(sizeof buf - got));
        assert_true(n > 0); /* blocking: never a retry */
        got += (size_t)n;
    }
    assert_memory_equal(buf, "late", 4);
    assert_int_equal(0, BIO_read(bb, buf, sizeof buf));
    assert_int_equal(1, BIO_eof(bb));
    pthread_join(th, NULL);
    BIO_free(bb);
    mempipe_close(a);
    mempipe_close(b);
}

/* ------------------------------------------------------------------------ */
/* TLS 1.3, one thread, non-blocking BIOs                                    */
/* ------------------------------------------------------------------------ */

struct echo {
    unsigned char out[MAX_CHUNK], in[MAX_CHUNK], srv[MAX_CHUNK];
    size_t sent, recvd; /* client: plaintext written, read back */
    size_t pending;     /* client: length of the SSL_write to retry */
    size_t srv_len;     /* server: bytes read, not yet echoed */
    uint64_t rng;
};

/* One client step; returns nonzero if it moved anything. */
static int client_step(SSL *c, struct echo *e)
{
    int moved = 0;
    while (e->sent < ECHO_TOTAL) {
        if (e->pending == 0) {
            size_t n = 1 + tu_rand(&e->rng) % MAX_CHUNK;
            e->pending = n < ECHO_TOTAL - e->sent ? n : ECHO_TOTAL - e->sent;
            tu_pattern(e->out, e->pending, e->sent, 1);
        }
        size_t w = 0;
        int rc = SSL_write_ex(c, e->out, e->pending, &w);
        if (rc != 1) {
            want(c, rc); /* retried later with the same buffer and length */
            break;
        }
        assert_int_equal(e->pending, w);
        e->sent += w;
        e->pending = 0;
        moved = 1;
    }
    for (;;) {
        size_t r = 0;
        int rc = SSL_read_ex(c, e->in, sizeof e->in, &r);
        if (rc != 1) {
            want(c, rc);
            break;
        }
        long bad = tu_check_pattern(e->in, r, e->recvd, 1);
        assert_int_equal(-1, bad);
        e->recvd += r;
        moved = 1;
    }
    return moved;
}

static int server_step(SSL *s, struct echo *e)
{
    int moved = 0;
    for (;;) {
        int rc;
        if (e->srv_len > 0) {
            size_t w = 0;
            rc = SSL_write_ex(s, e->srv, e->srv_len, &w);
            if (rc == 1)
                e->srv_len = 0;
        } else {
            rc = SSL_read_ex(s, e->srv, sizeof e->srv, &e->srv_len);
        }
        if (rc != 1) {
            want(s, rc);
            return moved;
        }
        moved = 1;
    }
}

static void test_tls13_echo_16MiB_one_thread_stepped(void **state)
{
    (void)state;
    struct tls t;
    tls_open(&t, 0);
    handshake_stepped(&t);
    struct echo *e = calloc(1, sizeof *e);
    assert_non_null(e);
    e->rng = 42;
    int idle = 0;
    while (e->recvd < ECHO_TOTAL) {
        int moved = client_step(t.c, e);
        moved |= server_step(t.s, e);
        idle = moved ? 0 : idle + 1;
        assert_true(idle < 3); /* both sides waiting on each other: stuck */
    }
    assert_int_equal(ECHO_TOTAL, e->sent);
    assert_int_equal(ECHO_TOTAL, e->recvd);
    free(e);
    tls_close(&t);
}

/* ------------------------------------------------------------------------ */
/* TLS 1.3, one thread per side, blocking BIOs                               */
/* ------------------------------------------------------------------------ */

static void *blocking_echo_server(void *arg)
{
    SSL *s = arg;
    unsigned char buf[MAX_CHUNK];
    if (SSL_accept(s) != 1)
        return (void *)"SSL_accept failed";
    for (;;) {
        size_t r = 0, w = 0;
        int rc = SSL_read_ex(s, buf, sizeof buf, &r);
        if (rc != 1) {
            /* The client's close_notify ends the echo. */
            if (SSL_get_error(s, rc) != SSL_ERROR_ZERO_RETURN)
                return (void *)"SSL_read failed";
            break;
        }
        if (SSL_write_ex(s, buf, r, &w) != 1 || w != r)
            return (void *)"SSL_write failed";
    }
    if (SSL_shutdown(s) != 1) /* close_notify received already: done */
        return (void *)"SSL_shutdown failed";
    return NULL;
}

static void test_tls13_echo_16MiB_two_threads_blocking(void **state)
{
    (void)state;
    struct tls t;
    tls_open(&t, 1);
    pthread_t th;
    assert_int_equal(0, pthread_create(&th, NULL, blocking_echo_server, t.s));

    assert_int_equal(1, SSL_connect(t.c));
    assert_int_equal(X509_V_OK, SSL_get_verify_result(t.c));
    unsigned char *out = malloc(MAX_CHUNK), *in = malloc(MAX_CHUNK);
    assert_non_null(out);
    assert_non_null(in);
    uint64_t rng = 7;
    size_t done = 0;
    while (done < ECHO_TOTAL) {
        size_t n = 1 + tu_rand(&rng) % MAX_CHUNK;
        if (n > ECHO_TOTAL - done)
            n = ECHO_TOTAL - done;
        size_t w = 0;
        tu_pattern(out, n, done, 2);
        assert_int_equal(1, SSL_write_ex(t.c, out, n, &w));
        assert_int_equal(n, w);
        for (size_t got = 0; got < n;) {
            size_t r = 0;
            assert_int_equal(1, SSL_read_ex(t.c, in, n - got, &r));
            assert_int_equal(-1, tu_check_pattern(in, r, done + got, 2));
            got += r;
        }
        done += n;
    }
    /* close_notify: ours (returns 0), then wait for the server's (1). */
    assert_int_equal(0, SSL_shutdown(t.c));
    assert_int_equal(1, SSL_shutdown(t.c));
    void *err = NULL;
    pthread_join(th, &err);
    if (err != NULL)
        fail_msg("server thread: %s", (const char *)err);
    free(out);
    free(in);
    tls_close(&t);
}

/* ------------------------------------------------------------------------ */
/* Handshakes under injected faults (mempipe_set_faults)                     */
/* ------------------------------------------------------------------------ */

static mempipe_faults no_faults(void)
{
    mempipe_faults f;
    memset(&f, 0, sizeof f);
    return f;
}

/* The largest single write and read a tap saw on one end. */
struct biggest {
    size_t len[2]; /* [MEMPIPE_TAP_WRITE], [MEMPIPE_TAP_READ] */
};

static void biggest_tap(void *ctx, int dir, const void *data, size_t len)
{
    struct biggest *b = ctx;
    (void)data;
    if (len > b->len[dir])
        b->len[dir] = len;
}

/* Every call of both ends moves at most k bytes: the handshake completes
 * and the first record crosses, for every k in 1..32. */
static void test_tls13_handshake_under_every_chunk_cap_1_to_32(void **state)
{
    (void)state;
    int runs = 0;
    tu_watchdog_start("handshakes under chunk caps");
    for (size_t k = 1; k <= 32; k++, runs++) {
        struct tls t;
        struct biggest cb = {{0, 0}}, sb = {{0, 0}};
        tls_open(&t, 0);
        mempipe_faults f = no_faults();
        f.max_read = f.max_write = k;
        assert_rc(0, mempipe_set_faults(t.ce, &f));
        assert_rc(0, mempipe_set_faults(t.se, &f));
        assert_rc(0, mempipe_set_tap(t.ce, biggest_tap, &cb));
        assert_rc(0, mempipe_set_tap(t.se, biggest_tap, &sb));
        handshake_stepped(&t);
        char buf[8];
        size_t n = 0;
        assert_int_equal(1, SSL_write_ex(t.c, "ping", 4, &n));
        assert_int_equal(1, SSL_read_ex(t.s, buf, sizeof buf, &n));
        assert_int_equal(4, n);
        assert_memory_equal(buf, "ping", 4);
        /* The caps held, and were met: every call took k bytes at most,
         * and each direction had a call of exactly k. */
        for (int dir = 0; dir < 2; dir++) {
            assert_int_equal(k, cb.len[dir]);
            assert_int_equal(k, sb.len[dir]);
        }
        tls_close(&t);
        tu_progress++;
    }
    tu_watchdog_end();
    print_message("%d handshakes, caps 1..32 on both ends\n", runs);
}

/* How one side's handshake ended. */
struct hs_end {
    int rc;            /* SSL_do_handshake()'s last result */
    int ssl_err;       /* SSL_get_error() of it, unless rc == 1 */
    unsigned long err; /* the first error it queued (0: none) */
};

/*
 * One step of one side. Returns nonzero while the side wants more. Both
 * SSLs share this thread's error queue, so each step starts it empty and
 * keeps the first error of a failure.
 */
static int hs_step(SSL *ssl, struct hs_end *h)
{
    ERR_clear_error();
    h->rc = SSL_do_handshake(ssl);
    if (h->rc == 1)
        return 0;
    h->ssl_err = SSL_get_error(ssl, h->rc);
    h->err = ERR_peek_error();
    ERR_clear_error();
    return h->ssl_err == SSL_ERROR_WANT_READ ||
           h->ssl_err == SSL_ERROR_WANT_WRITE;
}

/*
 * Steps both handshakes until each has completed or failed. A side that
 * fails closes its end, as a server closes the socket of a failed
 * handshake, so the other side meets end of file instead of waiting for
 * ever. Returns nonzero if both completed.
 */
static int handshake_until_settled(struct tls *t, struct hs_end *c,
                                   struct hs_end *s)
{
    int cwant = 1, swant = 1;
    for (int round = 0; cwant || swant; round++) {
        assert_true(round < 100); /* a TLS 1.3 handshake takes a few */
        if (cwant && !(cwant = hs_step(t->c, c)) && c->rc != 1) {
            mempipe_close(t->ce); /* t->c is never called again */
            t->ce = NULL;
        }
        if (swant && !(swant = hs_step(t->s, s)) && s->rc != 1) {
            mempipe_close(t->se);
            t->se = NULL;
        }
    }
    return c->rc == 1 && s->rc == 1;
}

static int is_clean_failure(const struct hs_end *h)
{
    return h->rc <= 0 &&
           (h->ssl_err == SSL_ERROR_SYSCALL || h->ssl_err == SSL_ERROR_SSL);
}

/*
 * For N = 1, 2, ...: the Nth read (write) call of the client's (server's)
 * end, and every later one, fails with -ECONNRESET, without a cap and then
 * with every call capped at 16 bytes (more calls, so more points, some
 * inside a record). Each run either completes (N is past the handshake's
 * calls: then the loop ends) or fails cleanly on both sides: the faulted
 * side with SSL_ERROR_SYSCALL and the injected ECONNRESET first in its
 * queue, the other with SSL_ERROR_SSL or SSL_ERROR_SYSCALL, in its
 * handshake or, if its handshake was already done (a client whose Finished
 * is out), in its next read. Returns the runs.
 */
static int handshake_fails_at_every_call(int client, int write)
{
    static const size_t caps[] = {0, 16};
    int runs = 0;
    tu_watchdog_start("handshakes failing at every call");
    for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
        int failed = 0, peer_done = 0;
        for (uint64_t n = 1;; n++, runs++) {
            assert_true(n < 1000); /* a handshake makes far fewer calls */
            struct tls t;
            tls_open(&t, 0);
            mempipe *faulted = client ? t.ce : t.se;
            mempipe_faults f = no_faults();
            f.max_read = f.max_write = caps[ci];
            if (write)
                f.fail_write_at = n;
            else
                f.fail_read_at = n;
            f.fail_err = -ECONNRESET;
            assert_rc(0, mempipe_set_faults(faulted, &f));
            struct hs_end c = {0, 0, 0}, s = {0, 0, 0};
            int done = handshake_until_settled(&t, &c, &s);
            struct hs_end *mine = client ? &c : &s, *peer = client ? &s : &c;
            tu_progress++;
            if (done) {
                /* Uncapped, the stats tell whether the fault ever fired
                 * (capped, they count the caps too). */
                if (caps[ci] == 0) {
                    mempipe_stats st;
                    assert_rc(0, mempipe_get_stats(faulted, &st));
                    assert_int_equal(0, st.faults);
                }
                tls_close(&t);
                runs++;
                break;
            }
            failed++;
            if (!is_clean_failure(mine) || mine->ssl_err != SSL_ERROR_SYSCALL)
                fail_msg("N=%llu cap %zu: the faulted side: rc %d, "
                         "SSL_get_error %d",
                         (unsigned long long)n, caps[ci], mine->rc,
                         mine->ssl_err);
            assert_int_equal(ERR_LIB_SYS, ERR_GET_LIB(mine->err));
            assert_int_equal(ECONNRESET, ERR_GET_REASON(mine->err));
            if (peer->rc == 1) {
                /* Done before the failure: its next read reports it. */
                char buf[16];
                size_t r = 0;
                SSL *p = client ? t.s : t.c;
                ERR_clear_error();
                peer->rc = SSL_read_ex(p, buf, sizeof buf, &r);
                peer->ssl_err = SSL_get_error(p, peer->rc);
                ERR_clear_error();
                peer_done++;
            }
            if (!is_clean_failure(peer))
                fail_msg("N=%llu cap %zu: the other side: rc %d, "
                         "SSL_get_error %d",
                         (unsigned long long)n, caps[ci], peer->rc,
                         peer->ssl_err);
            tls_close(&t);
        }
        print_message("%s %s fails at N: cap %zu: %d runs failed cleanly "
                      "(%d of them after the other side's handshake was "
                      "done), then one completed\n",
                      client ? "client" : "server", write ? "write" : "read",
                      caps[ci], failed, peer_done);
    }
    tu_watchdog_end();
    return runs;
}

/* Which side's end fails, in which direction; one test each (main). */
struct fail_point {
    int client, write;
};

static void test_tls13_handshake_fails_at_every_call(void **state)
{
    const struct fail_point *fp = *state;
    print_message("%d handshakes\n",
                  handshake_fails_at_every_call(fp->client, fp->write));
}

/* ------------------------------------------------------------------------ */
/* Shutdown and a peer that goes away                                        */
/* ------------------------------------------------------------------------ */

/*
 * `from` sends close_notify; `to` reads it as SSL_ERROR_ZERO_RETURN, answers
 * with its own, and `from` completes its shutdown with 1. The other side's
 * half is still readable until then: a message written before the
 * close_notify arrives first.
 */
static void close_notify(SSL *from, SSL *to)
{
    char buf[32];
    size_t n = 0;
    assert_int_equal(1, SSL_write_ex(from, "last words", 10, &n));
    assert_int_equal(0, SSL_shutdown(from)); /* sent, peer's not yet seen */
    int rc = SSL_shutdown(from);
    assert_int_equal(-1, rc); /* waits for the peer's close_notify */
    assert_int_equal(SSL_ERROR_WANT_READ, SSL_get_error(from, rc));

    assert_int_equal(1, SSL_read_ex(to, buf, sizeof buf, &n));
    assert_int_equal(10, n);
    assert_memory_equal(buf, "last words", 10);
    rc = SSL_read_ex(to, buf, sizeof buf, &n);
    assert_int_equal(0, rc);
    assert_int_equal(SSL_ERROR_ZERO_RETURN, SSL_get_error(to, rc));
    assert_int_equal(SSL_RECEIVED_SHUTDOWN,
                     SSL_get_shutdown(to) & SSL_RECEIVED_SHUTDOWN);
    assert_int_equal(1, SSL_shutdown(to)); /* replies; both seen: done */
    assert_int_equal(1, SSL_shutdown(from));
}

static void test_tls_close_notify_client_first(void **state)
{
    (void)state;
    struct tls t;
    tls_open(&t, 0);
    handshake_stepped(&t);
    /* The server's session tickets reach the client on its first read. */
    char c;
    size_t n;
    assert_int_equal(0, SSL_read_ex(t.c, &c, 1, &n));
    ERR_clear_error();
    close_notify(t.c, t.s);
    tls_close(&t);
}

static void test_tls_close_notify_server_first(void **state)
{
    (void)state;
    struct tls t;
    tls_open(&t, 0);
    handshake_stepped(&t);
    close_notify(t.s, t.c);
    tls_close(&t);
}

/* Is the error queue's first entry "unexpected EOF" or a system error? */
static void assert_clear_ssl_error(SSL *ssl, int rc, int sys_reason)
{
    int e = SSL_get_error(ssl, rc);
    if (e != SSL_ERROR_SSL && e != SSL_ERROR_SYSCALL)
        fail_msg("SSL_get_error = %d, want SSL_ERROR_SSL or SSL_ERROR_SYSCALL",
                 e);
    /* The first error is the cause; OpenSSL may add more while it tries to
     * send an alert to the vanished peer (EPIPE). */
    unsigned long err = ERR_peek_error();
    if (sys_reason != 0) {
        assert_int_equal(ERR_LIB_SYS, ERR_GET_LIB(err));
        assert_int_equal(sys_reason, ERR_GET_REASON(err));
    } else {
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
        assert_int_equal(ERR_LIB_SSL, ERR_GET_LIB(err));
        assert_int_equal(SSL_R_UNEXPECTED_EOF_WHILE_READING,
                         ERR_GET_REASON(err));
#endif
    }
    ERR_clear_error();
}

static void test_tls_server_gone_mid_handshake_client_gets_eof_error(void **s)
{
    (void)s;
    struct tls t;
    tls_open(&t, 0);
    int rc = SSL_connect(t.c); /* ClientHello out, waits for ServerHello */
    assert_int_equal(-1, rc);
    assert_int_equal(SSL_ERROR_WANT_READ, SSL_get_error(t.c, rc));
    /* The server's side disappears without a word. */
    SSL_free(t.s);
    t.s = NULL;
    mempipe_close(t.se);
    t.se = NULL;
    ERR_clear_error();
    rc = SSL_connect(t.c);
    assert_true(rc <= 0);
    assert_clear_ssl_error(t.c, rc, 0);
    tls_close(&t);
}

static void test_tls_client_gone_mid_handshake_server_gets_epipe(void **s)
{
    (void)s;
    struct tls t;
    tls_open(&t, 0);
    int rc = SSL_connect(t.c);
    assert_int_equal(SSL_ERROR_WANT_READ, SSL_get_error(t.c, rc));
    SSL_free(t.c);
    t.c = NULL;
    mempipe_close(t.ce);
    t.ce = NULL;
    /* The ClientHello is still readable (R21); the ServerHello has nowhere
     * to go. */
    ERR_clear_error();
    rc = SSL_accept(t.s);
    assert_true(rc <= 0);
    assert_clear_ssl_error(t.s, rc, EPIPE);
    tls_close(&t);
}

static void *blocking_connect(void *arg)
{
    SSL *c = arg;
    ERR_clear_error(); /* the error queue is per thread */
    int rc = SSL_connect(c);
    int e = SSL_get_error(c, rc);
    unsigned long err = ERR_peek_error();
    ERR_clear_error();
    if (rc == 1)
        return (void *)"handshake succeeded with a vanished server";
    if (e != SSL_ERROR_SSL && e != SSL_ERROR_SYSCALL)
        return (void *)"not an SSL/SYSCALL error";
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
    if (ERR_GET_REASON(err) != SSL_R_UNEXPECTED_EOF_WHILE_READING)
        return (void *)"not an unexpected-EOF error";
#else
    (void)err;
#endif
    return NULL;
}

static void test_tls_server_gone_mid_handshake_blocking_client_wakes(void **s)
{
    (void)s;
    struct tls t;
    tls_open(&t, 1);
    pthread_t th;
    assert_int_equal(0, pthread_create(&th, NULL, blocking_connect, t.c));
    /* Take part of the ClientHello as a raw reader, then vanish: the client
     * thread is (or soon will be) parked waiting for the ServerHello. */
    char buf[64];
    assert_true(mempipe_read(t.se, buf, sizeof buf) > 0);
    SSL_free(t.s);
    t.s = NULL;
    mempipe_close(t.se);
    t.se = NULL;
    void *err = NULL;
    pthread_join(th, &err);
    if (err != NULL)
        fail_msg("client thread: %s", (const char *)err);
    tls_close(&t);
}

/* One test of test_tls13_handshake_fails_at_every_call per fail point. */
#define FAIL_AT_TEST(name, fp)                                                 \
    {                                                                          \
        "test_tls13_handshake_" name "_fails_at_every_call",                   \
            test_tls13_handshake_fails_at_every_call, NULL, NULL, (fp)         \
    }

int main(void)
{
    static struct fail_point fail_client_read = {1, 0},
                             fail_client_write = {1, 1},
                             fail_server_read = {0, 0},
                             fail_server_write = {0, 1};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bio_nonblocking_retry_flags_and_pending),
        cmocka_unit_test(test_bio_eof_reads_zero_without_retry),
        cmocka_unit_test(test_bio_write_to_closed_peer_fails_with_epipe),
        cmocka_unit_test(test_bio_close_flag_default_noclose_and_bio_close),
        cmocka_unit_test(test_bio_blocking_read_waits_for_bytes_then_eof),
        cmocka_unit_test(test_tls13_echo_16MiB_one_thread_stepped),
        cmocka_unit_test(test_tls13_echo_16MiB_two_threads_blocking),
        cmocka_unit_test(test_tls13_handshake_under_every_chunk_cap_1_to_32),
        FAIL_AT_TEST("client_read", &fail_client_read),
        FAIL_AT_TEST("client_write", &fail_client_write),
        FAIL_AT_TEST("server_read", &fail_server_read),
        FAIL_AT_TEST("server_write", &fail_server_write),
        cmocka_unit_test(test_tls_close_notify_client_first),
        cmocka_unit_test(test_tls_close_notify_server_first),
        cmocka_unit_test(
            test_tls_server_gone_mid_handshake_client_gets_eof_error),
        cmocka_unit_test(test_tls_client_gone_mid_handshake_server_gets_epipe),
        cmocka_unit_test(
            test_tls_server_gone_mid_handshake_blocking_client_wakes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
