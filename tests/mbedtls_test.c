/* SPDX-License-Identifier: MIT */
/*
 * The mbedTLS callbacks (include/mempipe/mbedtls.h): TLS 1.2 over one
 * duplex at capacities 1, 7, 4096, 65536 and SIZE_MAX, and the same over a
 * socketpair(2) with mbedTLS's own net_sockets callbacks as the reference: a
 * verified handshake (ECDSA P-256 key and self-signed certificate made
 * here), an echo each way, close_notify both ways, a peer that vanishes
 * mid-handshake. One thread stepping both sides (a side runs only when its
 * end's fd is ready, so a missed readiness change stalls and fails) and one
 * blocking thread per side; the receive timeout in both modes.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "mempipe/mbedtls.h"

#define MAX_CHUNK 16384u

/* As tests/gnutls_test.c: 8 MiB each way (MEMPIPE_TLS_BYTES), 1 MiB under
 * the sanitizers, 64 KiB per byte of capacity at most. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DEFAULT_BYTES (1u << 20)
#else
#define DEFAULT_BYTES (8u << 20)
#endif

static size_t echo_bytes(size_t cap)
{
    size_t total = DEFAULT_BYTES;
    const char *env = getenv("MEMPIPE_TLS_BYTES");
    if (env != NULL)
        total = strtoull(env, NULL, 0);
    if (cap != 0 && cap < 64 && cap * 65536 < total)
        total = cap * 65536;
    return total;
}

static const size_t caps[] = {1, 7, 4096, 65536, SIZE_MAX};
#define NCAPS (sizeof caps / sizeof caps[0])

/* ------------------------------------------------------------------------ */

static mbedtls_entropy_context g_entropy;
static mbedtls_ctr_drbg_context g_drbg;
static mbedtls_pk_context g_key;
static mbedtls_x509_crt g_crt;
static pthread_mutex_t g_drbg_mu = PTHREAD_MUTEX_INITIALIZER;

/* The DRBG is shared by both sides' threads. */
static int rng(void *ctx, unsigned char *out, size_t len)
{
    pthread_mutex_lock(&g_drbg_mu);
    int rc = mbedtls_ctr_drbg_random(ctx, out, len);
    pthread_mutex_unlock(&g_drbg_mu);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    mbedtls_entropy_init(&g_entropy);
    mbedtls_ctr_drbg_init(&g_drbg);
    mbedtls_pk_init(&g_key);
    mbedtls_x509_crt_init(&g_crt);
    if (mbedtls_ctr_drbg_seed(&g_drbg, mbedtls_entropy_func, &g_entropy, NULL,
                              0) != 0 ||
        mbedtls_pk_setup(&g_key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) !=
            0 ||
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(g_key), rng,
                            &g_drbg) != 0)
        return -1;
    mbedtls_x509write_cert w;
    mbedtls_x509write_crt_init(&w);
    mbedtls_mpi serial;
    mbedtls_mpi_init(&serial);
    unsigned char der[2048];
    int len = -1;
    if (mbedtls_mpi_lset(&serial, 1) == 0 &&
        mbedtls_x509write_crt_set_serial(&w, &serial) == 0 &&
        mbedtls_x509write_crt_set_subject_name(&w, "CN=localhost") == 0 &&
        mbedtls_x509write_crt_set_issuer_name(&w, "CN=localhost") == 0 &&
        mbedtls_x509write_crt_set_validity(&w, "20200101000000",
                                           "20991231235959") == 0 &&
        mbedtls_x509write_crt_set_basic_constraints(&w, 1, 0) == 0) {
        mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
        mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
        mbedtls_x509write_crt_set_subject_key(&w, &g_key);
        mbedtls_x509write_crt_set_issuer_key(&w, &g_key);
        len = mbedtls_x509write_crt_der(&w, der, sizeof der, rng, &g_drbg);
    }
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&w);
    /* The DER is written at the end of the buffer. */
    if (len <= 0 || mbedtls_x509_crt_parse_der(&g_crt, der + sizeof der - len,
                                               (size_t)len) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    mbedtls_x509_crt_free(&g_crt);
    mbedtls_pk_free(&g_key);
    mbedtls_ctr_drbg_free(&g_drbg);
    mbedtls_entropy_free(&g_entropy);
    return 0;
}

/* ------------------------------------------------------------------------ */

#define SOCKETPAIR 0

struct side {
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    mempipe *end;
    mbedtls_net_context net; /* the socketpair reference's fd */
    int phase, err, want;    /* want: POLLIN or POLLOUT, after WANT_* */
    size_t total, sent, recvd, pending, have;
    uint64_t rng;
    unsigned char buf[MAX_CHUNK];
};

struct link {
    size_t cap;
    struct side c, s;
};

static void side_open(struct side *sd, int endpoint, int blocking)
{
    mbedtls_ssl_config_init(&sd->conf);
    mbedtls_ssl_init(&sd->ssl);
    assert_int_equal(0, mbedtls_ssl_config_defaults(
                            &sd->conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                            MBEDTLS_SSL_PRESET_DEFAULT));
    mbedtls_ssl_conf_rng(&sd->conf, rng, &g_drbg);
    mbedtls_ssl_conf_min_version(&sd->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    if (endpoint == MBEDTLS_SSL_IS_SERVER) {
        assert_int_equal(0,
                         mbedtls_ssl_conf_own_cert(&sd->conf, &g_crt, &g_key));
    } else {
        mbedtls_ssl_conf_ca_chain(&sd->conf, &g_crt, NULL);
        mbedtls_ssl_conf_authmode(&sd->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    }
    assert_int_equal(0, mbedtls_ssl_setup(&sd->ssl, &sd->conf));
    if (endpoint == MBEDTLS_SSL_IS_CLIENT)
        assert_int_equal(0, mbedtls_ssl_set_hostname(&sd->ssl, "localhost"));
    if (sd->end != NULL && blocking)
        mbedtls_ssl_set_bio(&sd->ssl, sd->end, mempipe_mbedtls_send_blocking,
                            NULL, mempipe_mbedtls_recv_timeout);
    else if (sd->end != NULL)
        mbedtls_ssl_set_bio(&sd->ssl, sd->end, mempipe_mbedtls_send,
                            mempipe_mbedtls_recv, NULL);
    else if (blocking)
        mbedtls_ssl_set_bio(&sd->ssl, &sd->net, mbedtls_net_send, NULL,
                            mbedtls_net_recv_timeout);
    else
        mbedtls_ssl_set_bio(&sd->ssl, &sd->net, mbedtls_net_send,
                            mbedtls_net_recv, NULL);
    sd->want = POLLIN | POLLOUT;
}

static void link_open(struct link *l, size_t cap, int blocking)
{
    memset(l, 0, sizeof *l);
    l->cap = cap;
    l->s.net.fd = l->c.net.fd = -1;
    if (cap != SOCKETPAIR) {
        assert_rc(0, mempipe_duplex(cap, &l->s.end, &l->c.end));
    } else {
        int fd[2];
        assert_int_equal(0, socketpair(AF_UNIX, SOCK_STREAM, 0, fd));
        l->s.net.fd = fd[0];
        l->c.net.fd = fd[1];
        if (!blocking) {
            assert_int_equal(0, mbedtls_net_set_nonblock(&l->s.net));
            assert_int_equal(0, mbedtls_net_set_nonblock(&l->c.net));
        }
    }
    side_open(&l->s, MBEDTLS_SSL_IS_SERVER, blocking);
    side_open(&l->c, MBEDTLS_SSL_IS_CLIENT, blocking);
}

static void side_close(struct side *sd)
{
    mbedtls_ssl_free(&sd->ssl);
    mbedtls_ssl_config_free(&sd->conf);
    mempipe_close(sd->end);
    sd->end = NULL;
    if (sd->net.fd >= 0)
        close(sd->net.fd);
    sd->net.fd = -1;
}

static void link_close(struct link *l)
{
    side_close(&l->c);
    side_close(&l->s);
}

static const char *kind(const struct link *l)
{
    static char buf[48];
    if (l->cap == SOCKETPAIR)
        return "socketpair";
    snprintf(buf, sizeof buf, "mempipe cap %zu", l->cap);
    return buf;
}

static void errstr(int rc, char *buf, size_t len)
{
    mbedtls_strerror(rc, buf, len);
}

/* ------------------------------------------------------------------------ */
/* One thread: a side runs only when its fd says it can progress            */
/* ------------------------------------------------------------------------ */

enum { HANDSHAKE, DATA, BYE, BYE_WAIT, DONE, FAILED };

static int runnable(struct side *sd)
{
    if (sd->phase >= DONE)
        return 0;
    struct pollfd p[2];
    int n = 0;
    if (sd->end != NULL) {
        if (sd->want & POLLIN)
            p[n++] = (struct pollfd){mempipe_readable_fd(sd->end), POLLIN, 0};
        if (sd->want & POLLOUT)
            p[n++] = (struct pollfd){mempipe_writable_fd(sd->end), POLLIN, 0};
    } else {
        p[n++] = (struct pollfd){sd->net.fd, (short)sd->want, 0};
    }
    return poll(p, (nfds_t)n, 0) > 0;
}

static int again(struct side *sd, int rc)
{
    if (rc == MBEDTLS_ERR_SSL_WANT_READ) {
        sd->want |= POLLIN;
        return 1;
    }
    if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
        sd->want |= POLLOUT;
        return 1;
    }
    sd->err = rc;
    sd->phase = FAILED;
    return 0;
}

static void step(struct side *sd, int client)
{
    int rc;
    sd->want = 0;
    for (;;) {
        switch (sd->phase) {
        case HANDSHAKE:
            rc = mbedtls_ssl_handshake(&sd->ssl);
            if (rc != 0) {
                again(sd, rc);
                return;
            }
            if (client)
                assert_int_equal(0, mbedtls_ssl_get_verify_result(&sd->ssl));
            sd->phase = DATA;
            break;
        case DATA: {
            int moved = 0;
            if (client && sd->sent < sd->total) {
                if (sd->pending == 0) {
                    size_t n = 1 + tu_rand(&sd->rng) % MAX_CHUNK;
                    sd->pending =
                        n < sd->total - sd->sent ? n : sd->total - sd->sent;
                }
                tu_pattern(sd->buf, sd->pending, sd->sent, 1);
                rc = mbedtls_ssl_write(&sd->ssl, sd->buf, sd->pending);
                if (rc > 0) {
                    sd->sent += (size_t)rc; /* may be a part: go on */
                    sd->pending -= (size_t)rc;
                    moved = 1;
                } else if (!again(sd, rc)) {
                    return;
                }
            }
            if (!client && sd->have > 0) {
                rc = mbedtls_ssl_write(&sd->ssl, sd->buf, sd->have);
                if (rc > 0) {
                    memmove(sd->buf, sd->buf + rc, sd->have - (size_t)rc);
                    sd->have -= (size_t)rc;
                    moved = 1;
                } else if (!again(sd, rc)) {
                    return;
                }
            }
            if (client || sd->have == 0) {
                unsigned char in[MAX_CHUNK];
                rc = mbedtls_ssl_read(&sd->ssl, client ? in : sd->buf,
                                      MAX_CHUNK);
                if (rc > 0 && client) {
                    assert_int_equal(
                        -1, tu_check_pattern(in, (size_t)rc, sd->recvd, 1));
                    sd->recvd += (size_t)rc;
                    moved = 1;
                } else if (rc > 0) {
                    sd->have = (size_t)rc;
                    sd->recvd += (size_t)rc;
                    moved = 1;
                } else if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY && !client) {
                    sd->phase = BYE;
                    moved = 1;
                } else if (!again(sd, rc)) {
                    return;
                }
            }
            if (client && sd->recvd == sd->total)
                sd->phase = BYE;
            if (!moved && sd->phase == DATA)
                return;
            atomic_fetch_add(&tu_progress, 1);
            break;
        }
        case BYE:
            rc = mbedtls_ssl_close_notify(&sd->ssl);
            if (rc != 0) {
                again(sd, rc);
                return;
            }
            /* Sent (a retry after WANT_WRITE only flushes; a call after
             * that would send a second alert). */
            sd->phase = client ? BYE_WAIT : DONE;
            break;
        case BYE_WAIT: /* the client waits for the server's answer */
            rc = mbedtls_ssl_read(&sd->ssl, sd->buf, 1);
            if (rc != MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
                again(sd, rc);
                return;
            }
            sd->phase = DONE;
            return;
        default:
            return;
        }
    }
}

static void run_stepped(struct link *l)
{
    for (;;) {
        int ran = 0;
        if (runnable(&l->c)) {
            step(&l->c, 1);
            ran = 1;
        }
        if (runnable(&l->s)) {
            step(&l->s, 0);
            ran = 1;
        }
        if (!ran)
            break;
    }
}

static void echo_stepped(size_t cap)
{
    struct link l;
    link_open(&l, cap, 0);
    l.c.total = echo_bytes(cap);
    l.c.rng = 42;
    double t0 = tu_now();
    run_stepped(&l);
    double dt = tu_now() - t0;
    if (l.c.phase != DONE || l.s.phase != DONE) {
        char ce[80], se[80];
        errstr(l.c.err, ce, sizeof ce);
        errstr(l.s.err, se, sizeof se);
        fail_msg("%s: stalled or failed: client phase %d (%s), server phase "
                 "%d (%s), %zu/%zu bytes echoed",
                 kind(&l), l.c.phase, ce, l.s.phase, se, l.c.recvd, l.c.total);
    }
    assert_int_equal(l.c.total, l.s.recvd);
    printf("# mbedtls one thread, %s: %zu bytes each way, %.1f MB/s\n",
           kind(&l), l.c.total, 2.0 * (double)l.c.total / dt / 1e6);
    link_close(&l);
}

static void test_tls12_echo_close_notify_one_thread_fd_driven(void **state)
{
    (void)state;
    tu_watchdog_start("mbedtls one-thread echo");
    echo_stepped(SOCKETPAIR);
    for (size_t i = 0; i < NCAPS; i++)
        echo_stepped(caps[i]);
    tu_watchdog_end();
}

/* ------------------------------------------------------------------------ */
/* One thread per side, blocking                                             */
/* ------------------------------------------------------------------------ */

static int write_all(mbedtls_ssl_context *ssl, const unsigned char *p, size_t n)
{
    while (n > 0) {
        int rc = mbedtls_ssl_write(ssl, p, n);
        if (rc <= 0)
            return rc;
        p += rc;
        n -= (size_t)rc;
    }
    return 0;
}

static void *blocking_server(void *arg)
{
    struct side *sd = arg;
    if (mbedtls_ssl_handshake(&sd->ssl) != 0)
        return (void *)"handshake failed";
    for (;;) {
        int r = mbedtls_ssl_read(&sd->ssl, sd->buf, MAX_CHUNK);
        if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
            break;
        if (r <= 0)
            return (void *)"read failed";
        sd->recvd += (size_t)r;
        if (write_all(&sd->ssl, sd->buf, (size_t)r) != 0)
            return (void *)"write failed";
        atomic_fetch_add(&tu_progress, 1);
    }
    if (mbedtls_ssl_close_notify(&sd->ssl) != 0)
        return (void *)"close_notify failed";
    return NULL;
}

static void echo_threads(size_t cap)
{
    struct link l;
    link_open(&l, cap, 1);
    size_t total = echo_bytes(cap);
    pthread_t th;
    double t0 = tu_now();
    assert_int_equal(0, pthread_create(&th, NULL, blocking_server, &l.s));
    assert_int_equal(0, mbedtls_ssl_handshake(&l.c.ssl));
    assert_int_equal(0, mbedtls_ssl_get_verify_result(&l.c.ssl));
    unsigned char *in = malloc(MAX_CHUNK);
    assert_non_null(in);
    uint64_t r = 7;
    for (size_t done = 0; done < total;) {
        size_t n = 1 + tu_rand(&r) % MAX_CHUNK;
        if (n > total - done)
            n = total - done;
        tu_pattern(l.c.buf, n, done, 2);
        assert_int_equal(0, write_all(&l.c.ssl, l.c.buf, n));
        for (size_t got = 0; got < n;) {
            int rc = mbedtls_ssl_read(&l.c.ssl, in, n - got);
            if (rc <= 0)
                fail_msg("%s: read %d", kind(&l), rc);
            assert_int_equal(-1,
                             tu_check_pattern(in, (size_t)rc, done + got, 2));
            got += (size_t)rc;
        }
        done += n;
    }
    assert_int_equal(0, mbedtls_ssl_close_notify(&l.c.ssl));
    assert_int_equal(MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY,
                     mbedtls_ssl_read(&l.c.ssl, in, 1));
    double dt = tu_now() - t0;
    void *err = NULL;
    pthread_join(th, &err);
    if (err != NULL)
        fail_msg("%s: server thread: %s", kind(&l), (const char *)err);
    assert_int_equal(total, l.s.recvd);
    free(in);
    printf("# mbedtls two threads, %s: %zu bytes each way, %.1f MB/s\n",
           kind(&l), total, 2.0 * (double)total / dt / 1e6);
    link_close(&l);
}

static void test_tls12_echo_close_notify_two_threads_blocking(void **state)
{
    (void)state;
    tu_watchdog_start("mbedtls two-thread echo");
    echo_threads(SOCKETPAIR);
    for (size_t i = 0; i < NCAPS; i++)
        echo_threads(caps[i]);
    tu_watchdog_end();
}

/* ------------------------------------------------------------------------ */
/* A peer that vanishes mid-handshake                                        */
/* ------------------------------------------------------------------------ */

/* Reads what the peer sent, so that the close discards nothing (a socket
 * closed with bytes unread resets its peer: ECONNRESET). */
static void drain(struct side *sd)
{
    unsigned char buf[4096];
    if (sd->end != NULL)
        while (mempipe_poll_read(sd->end, buf, sizeof buf, NULL) > 0)
            ;
    else
        while (read(sd->net.fd, buf, sizeof buf) > 0)
            ;
}

static int server_gone(size_t cap)
{
    struct link l;
    link_open(&l, cap, 0);
    int rc;
    while ((rc = mbedtls_ssl_handshake(&l.c.ssl)) == MBEDTLS_ERR_SSL_WANT_WRITE)
        drain(&l.s);
    assert_int_equal(MBEDTLS_ERR_SSL_WANT_READ, rc);
    drain(&l.s);
    side_close(&l.s);
    rc = mbedtls_ssl_handshake(&l.c.ssl);
    link_close(&l);
    return rc;
}

static int client_gone(size_t cap)
{
    struct link l;
    link_open(&l, cap, 0);
    assert_int_equal(MBEDTLS_ERR_SSL_WANT_READ,
                     mbedtls_ssl_handshake(&l.c.ssl));
    side_close(&l.c);
    int rc;
    do
        rc = mbedtls_ssl_handshake(&l.s.ssl);
    while (rc == MBEDTLS_ERR_SSL_WANT_READ);
    link_close(&l);
    return rc;
}

static void test_tls_peer_gone_mid_handshake_same_error_as_socketpair(void **s)
{
    (void)s;
    int ref_s = server_gone(SOCKETPAIR), ref_c = client_gone(SOCKETPAIR);
    assert_int_equal(MBEDTLS_ERR_SSL_CONN_EOF, ref_s);
    assert_int_equal(MBEDTLS_ERR_NET_CONN_RESET, ref_c);
    for (size_t i = 0; i < NCAPS; i++) {
        if (caps[i] < 4096)
            continue; /* the server's flight must fit to reach its error */
        assert_int_equal(ref_s, server_gone(caps[i]));
        assert_int_equal(ref_c, client_gone(caps[i]));
    }
}

static void *blocking_handshake(void *arg)
{
    struct side *sd = arg;
    return (void *)(intptr_t)mbedtls_ssl_handshake(&sd->ssl);
}

static void test_tls_server_gone_mid_handshake_blocking_client_wakes(void **s)
{
    (void)s;
    tu_watchdog_start("mbedtls blocking peer gone");
    struct link l;
    link_open(&l, 4096, 1);
    pthread_t th;
    assert_int_equal(0, pthread_create(&th, NULL, blocking_handshake, &l.c));
    char buf[64];
    assert_true(mempipe_read(l.s.end, buf, sizeof buf) > 0);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    drain(&l.s);
    side_close(&l.s);
    void *ret;
    pthread_join(th, &ret);
    assert_int_equal(MBEDTLS_ERR_SSL_CONN_EOF, (int)(intptr_t)ret);
    link_close(&l);
    tu_watchdog_end();
}

/* ------------------------------------------------------------------------ */
/* The callbacks' own contract                                               */
/* ------------------------------------------------------------------------ */

static void test_callbacks_return_mbedtls_codes(void **state)
{
    (void)state;
    mempipe *a, *b;
    unsigned char buf[16];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_int_equal(MBEDTLS_ERR_SSL_WANT_READ,
                     mempipe_mbedtls_recv(b, buf, 16));
    assert_int_equal(
        8, mempipe_mbedtls_send(a, (const unsigned char *)"0123456789", 10));
    assert_int_equal(MBEDTLS_ERR_SSL_WANT_WRITE,
                     mempipe_mbedtls_send(a, (const unsigned char *)"x", 1));
    assert_int_equal(8, mempipe_mbedtls_recv(b, buf, 16));
    assert_memory_equal(buf, "01234567", 8);
    assert_int_equal(0, mempipe_mbedtls_send(a, buf, 0));
    assert_int_equal(MBEDTLS_ERR_NET_SEND_FAILED,
                     mempipe_mbedtls_send(NULL, buf, 1));
    assert_int_equal(MBEDTLS_ERR_NET_RECV_FAILED,
                     mempipe_mbedtls_recv(NULL, buf, 1));
    assert_int_equal(
        2, mempipe_mbedtls_send_blocking(a, (const unsigned char *)"hi", 2));
    mempipe_shutdown(a);
    assert_int_equal(2, mempipe_mbedtls_recv(b, buf, 16));
    assert_int_equal(0, mempipe_mbedtls_recv(b, buf, 16)); /* EOF */
    assert_int_equal(0, mempipe_mbedtls_recv_timeout(b, buf, 16, 10));
    assert_int_equal(MBEDTLS_ERR_NET_CONN_RESET,
                     mempipe_mbedtls_send(a, (const unsigned char *)"x", 1));
    mempipe_close(a);
    assert_int_equal(MBEDTLS_ERR_NET_CONN_RESET,
                     mempipe_mbedtls_send(b, (const unsigned char *)"x", 1));
    assert_int_equal(
        MBEDTLS_ERR_NET_CONN_RESET,
        mempipe_mbedtls_send_blocking(b, (const unsigned char *)"x", 1));
    mempipe_close(b);
}

struct delayed {
    mempipe *end;
    int ms;
};

static void *delayed_write(void *arg)
{
    struct delayed *d = arg;
    struct timespec ts = {0, d->ms * 1000L * 1000L};
    nanosleep(&ts, NULL);
    mempipe_write(d->end, "late", 4);
    return NULL;
}

static void test_recv_timeout_zero_waits_forever_nonzero_times_out(void **s)
{
    (void)s;
    mempipe *a, *b;
    unsigned char buf[16];
    assert_rc(0, mempipe_duplex(64, &a, &b));
    /* A timeout passes: MBEDTLS_ERR_SSL_TIMEOUT after about that long. */
    double t0 = tu_now();
    assert_int_equal(MBEDTLS_ERR_SSL_TIMEOUT,
                     mempipe_mbedtls_recv_timeout(b, buf, sizeof buf, 50));
    double dt = tu_now() - t0;
    assert_true(dt >= 0.045 && dt < 5);
    /* Bytes within the timeout are returned as soon as they come. */
    struct delayed d = {a, 20};
    pthread_t th;
    assert_int_equal(0, pthread_create(&th, NULL, delayed_write, &d));
    assert_int_equal(4, mempipe_mbedtls_recv_timeout(b, buf, sizeof buf, 5000));
    pthread_join(th, NULL);
    /* 0 is "for ever": still waiting well past any short timeout. */
    d.ms = 150;
    assert_int_equal(0, pthread_create(&th, NULL, delayed_write, &d));
    t0 = tu_now();
    assert_int_equal(4, mempipe_mbedtls_recv_timeout(b, buf, sizeof buf, 0));
    assert_true(tu_now() - t0 >= 0.1);
    pthread_join(th, NULL);
    /* The non-blocking recv never waits. */
    assert_int_equal(MBEDTLS_ERR_SSL_WANT_READ,
                     mempipe_mbedtls_recv(b, buf, 16));
    mempipe_close(a);
    mempipe_close(b);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callbacks_return_mbedtls_codes),
        cmocka_unit_test(
            test_recv_timeout_zero_waits_forever_nonzero_times_out),
        cmocka_unit_test(test_tls12_echo_close_notify_one_thread_fd_driven),
        cmocka_unit_test(test_tls12_echo_close_notify_two_threads_blocking),
        cmocka_unit_test(
            test_tls_peer_gone_mid_handshake_same_error_as_socketpair),
        cmocka_unit_test(
            test_tls_server_gone_mid_handshake_blocking_client_wakes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
