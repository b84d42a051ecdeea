/* SPDX-License-Identifier: MIT */
/*
 * The mbedTLS callbacks (include/mempipe/mbedtls.h): TLS 1.2 over one
 * duplex at capacities 1, 7, 4096, 65536 and SIZE_MAX, each scenario run
 * the same way over a socketpair(2) with mbedTLS's own net_sockets
 * callbacks, whose application-visible outcome the duplex must match
 * (tlsutil.h): a verified handshake (ECDSA P-256 key and self-signed
 * certificate made here), an echo each way (8 MiB; less at capacities 1
 * and 7, tlsutil.h says how much), close_notify both ways, either peer
 * vanishing mid-handshake, and the read timeout in both modes. Each on one
 * thread stepping both sides (a side runs only when its end's fd is ready,
 * so a missed readiness change stalls and fails) and with one blocking
 * thread per side.
 *
 * MEMPIPE_TLS_BENCH=N runs the throughput mode (tlsutil.h) instead.
 */
#include "tlsutil.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

#define TRIES 100000 /* calls that may say "want" before a test fails */

/* ------------------------------------------------------------------------ */
/* Key and certificate                                                       */
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

static const char *errname(int code)
{
    const char *s = mbedtls_high_level_strerr(code);
    if (s == NULL)
        s = mbedtls_low_level_strerr(code);
    return s != NULL ? s : "unknown";
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    tls_errname = errname;
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
/* A link: a mempipe duplex through the callbacks, or a socketpair           */
/* ------------------------------------------------------------------------ */

struct side {
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    mempipe *end;            /* NULL over a socketpair (or once closed) */
    mbedtls_net_context net; /* the socketpair's fd */
    struct tls_state st;
    int want; /* POLLIN or POLLOUT, after WANT_* */
    size_t total, sent, pending, have;
    uint64_t rng;
    unsigned char buf[TLS_MAX_CHUNK];
};

struct link {
    size_t cap;
    struct side c, s;
};

/* The callbacks of a side: the adapter's or mbedTLS's own. */
static void set_bio(struct side *sd, int blocking)
{
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
}

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
    set_bio(sd, blocking);
    sd->want = POLLIN | POLLOUT;
}

static void link_open(struct link *l, size_t cap, int blocking)
{
    struct tls_ends e;
    memset(l, 0, sizeof *l);
    l->cap = cap;
    tls_ends_open(&e, cap, !blocking);
    l->s.end = e.s;
    l->s.net.fd = e.sfd;
    l->c.end = e.c;
    l->c.net.fd = e.cfd;
    side_open(&l->s, MBEDTLS_SSL_IS_SERVER, blocking);
    side_open(&l->c, MBEDTLS_SSL_IS_CLIENT, blocking);
}

static void side_close(struct side *sd)
{
    mbedtls_ssl_free(&sd->ssl);
    mbedtls_ssl_config_free(&sd->conf);
    tls_close_raw(&sd->end, &sd->net.fd);
}

/* The side's transport goes away; its context stays (and does no more
 * I/O). */
static void cut(struct side *sd)
{
    tls_close_raw(&sd->end, &sd->net.fd);
}

/* The raw peer of the vanishing-peer tests goes away (never having run). */
static void vanish(struct side *sd)
{
    side_close(sd);
    sd->st.phase = TLS_GONE;
}

static void link_close(struct link *l)
{
    side_close(&l->c);
    side_close(&l->s);
}

static void outcome(const struct link *l, struct tls_outcome *out)
{
    tls_outcome_of(&l->c.st, &l->s.st,
                   l->c.st.shook ? mbedtls_ssl_get_version(&l->c.ssl) : NULL,
                   out);
}

/* A client's handshake is done: it verified the server's certificate. */
static void handshake_done(struct side *sd, int client)
{
    if (client)
        assert_int_equal(0, mbedtls_ssl_get_verify_result(&sd->ssl));
    sd->st.shook = 1;
}

/* ------------------------------------------------------------------------ */
/* One thread: a side runs only when its fd says it can progress            */
/* ------------------------------------------------------------------------ */

static int runnable(struct side *sd)
{
    if (sd->st.phase >= TLS_DONE)
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
    tls_finish(&sd->st, rc);
    return 0;
}

static void step(struct side *sd, int client)
{
    int rc;
    sd->want = 0;
    for (;;) {
        switch (sd->st.phase) {
        case TLS_HANDSHAKE:
            rc = mbedtls_ssl_handshake(&sd->ssl);
            if (rc != 0) {
                again(sd, rc);
                return;
            }
            handshake_done(sd, client);
            sd->st.phase = TLS_DATA;
            break;
        case TLS_DATA: {
            int moved = 0;
            if (client && sd->sent < sd->total) {
                if (sd->pending == 0)
                    sd->pending = tls_chunk(&sd->rng, sd->total - sd->sent);
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
                unsigned char in[TLS_MAX_CHUNK];
                rc = mbedtls_ssl_read(&sd->ssl, client ? in : sd->buf,
                                      TLS_MAX_CHUNK);
                if (rc > 0 && client) {
                    assert_int_equal(
                        -1, tu_check_pattern(in, (size_t)rc, sd->st.recvd, 1));
                    sd->st.recvd += (size_t)rc;
                    moved = 1;
                } else if (rc > 0) {
                    sd->have = (size_t)rc;
                    sd->st.recvd += (size_t)rc;
                    moved = 1;
                } else if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY && !client) {
                    sd->st.phase = TLS_BYE;
                    moved = 1;
                } else if (!again(sd, rc)) {
                    return;
                }
            }
            if (client && sd->st.recvd == sd->total)
                sd->st.phase = TLS_BYE;
            if (!moved && sd->st.phase == TLS_DATA)
                return;
            atomic_fetch_add(&tu_progress, 1);
            break;
        }
        case TLS_BYE:
            rc = mbedtls_ssl_close_notify(&sd->ssl);
            if (rc != 0) {
                again(sd, rc);
                return;
            }
            /* Sent (a retry after WANT_WRITE only flushes; a call after
             * that would send a second alert). */
            sd->st.phase = client ? TLS_BYE_WAIT : TLS_DONE;
            break;
        case TLS_BYE_WAIT: /* the client waits for the server's answer */
            rc = mbedtls_ssl_read(&sd->ssl, sd->buf, 1);
            if (rc != MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
                again(sd, rc);
                return;
            }
            sd->st.phase = TLS_DONE;
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

static void echo_stepped(size_t cap, size_t total, int variant,
                         struct tls_outcome *out)
{
    (void)variant;
    struct link l;
    link_open(&l, cap, 0);
    l.c.total = total;
    l.c.rng = 42;
    double t0 = tls_thread_cpu();
    run_stepped(&l);
    outcome(&l, out);
    out->mbs =
        tls_report("mbedtls", "one thread", cap, total, tls_thread_cpu() - t0);
    link_close(&l);
}

/* Every byte echoed both ways, close_notify both ways, over TLS 1.2. */
static const struct tls_outcome clean_echo = {0,         0,         "TLSv1.2",
                                              TLS_TOTAL, TLS_TOTAL, 0};

static void test_tls12_echo_close_notify_one_thread_fd_driven(void **state)
{
    (void)state;
    tu_watchdog_start("mbedtls one-thread echo");
    tls_against_socketpair(echo_stepped, 0, &clean_echo);
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

/* Echoes until the client's close_notify, answers it. */
static void *blocking_server(void *arg)
{
    struct side *sd = arg;
    int rc = mbedtls_ssl_handshake(&sd->ssl);
    if (rc != 0)
        goto out;
    handshake_done(sd, 0);
    for (;;) {
        rc = mbedtls_ssl_read(&sd->ssl, sd->buf, TLS_MAX_CHUNK);
        if (rc <= 0) {
            rc = rc == 0 ? MBEDTLS_ERR_SSL_CONN_EOF : rc;
            break;
        }
        sd->st.recvd += (size_t)rc;
        if ((rc = write_all(&sd->ssl, sd->buf, (size_t)rc)) != 0)
            break;
        atomic_fetch_add(&tu_progress, 1);
    }
    if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        rc = mbedtls_ssl_close_notify(&sd->ssl);
out:
    tls_finish(&sd->st, rc);
    return NULL;
}

/* Sends total bytes in chunks, reading each back, then close_notify both
 * ways. */
static void blocking_client(struct side *sd, size_t total)
{
    unsigned char in[TLS_MAX_CHUNK];
    int rc = mbedtls_ssl_handshake(&sd->ssl);
    if (rc != 0)
        goto out;
    handshake_done(sd, 1);
    for (size_t done = 0; done < total;) {
        size_t n = tls_chunk(&sd->rng, total - done);
        tu_pattern(sd->buf, n, done, 2);
        if ((rc = write_all(&sd->ssl, sd->buf, n)) != 0)
            goto out;
        for (size_t got = 0; got < n;) {
            rc = mbedtls_ssl_read(&sd->ssl, in, n - got);
            if (rc <= 0) {
                rc = rc == 0 ? MBEDTLS_ERR_SSL_CONN_EOF : rc;
                goto out;
            }
            assert_int_equal(-1,
                             tu_check_pattern(in, (size_t)rc, done + got, 2));
            got += (size_t)rc;
            sd->st.recvd += (size_t)rc;
        }
        done += n;
    }
    if ((rc = mbedtls_ssl_close_notify(&sd->ssl)) == 0) {
        rc = mbedtls_ssl_read(&sd->ssl, in, 1); /* the server's answer */
        if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
            rc = 0;
    }
out:
    tls_finish(&sd->st, rc == 0  ? 0
                        : rc > 0 ? MBEDTLS_ERR_SSL_INTERNAL_ERROR
                                 : rc);
}

static void echo_threads(size_t cap, size_t total, int variant,
                         struct tls_outcome *out)
{
    (void)variant;
    struct link l;
    pthread_t th;
    link_open(&l, cap, 1);
    l.c.rng = 7;
    double t0 = tu_now();
    assert_int_equal(0, pthread_create(&th, NULL, blocking_server, &l.s));
    blocking_client(&l.c, total);
    double dt = tu_now() - t0;
    if (l.c.st.phase == TLS_FAILED)
        cut(&l.c); /* so that the server cannot wait for ever */
    pthread_join(th, NULL);
    outcome(&l, out);
    out->mbs = tls_report("mbedtls", "two threads", cap, total, dt);
    link_close(&l);
}

static void test_tls12_echo_close_notify_two_threads_blocking(void **state)
{
    (void)state;
    tu_watchdog_start("mbedtls two-thread echo");
    tls_against_socketpair(echo_threads, 0, &clean_echo);
    tu_watchdog_end();
}

/* ------------------------------------------------------------------------ */
/* A peer that vanishes mid-handshake                                        */
/* ------------------------------------------------------------------------ */

/*
 * The client sends its ClientHello (a real server reads it as it comes, a
 * raw one takes it), then the server (raw) or the client vanishes: the
 * other side's next handshake call fails.
 */
static void gone_stepped(size_t cap, size_t total, int server_goes,
                         struct tls_outcome *out)
{
    (void)total;
    struct link l;
    int rc, n = 0;
    link_open(&l, cap, 0);
    struct side *gone = server_goes ? &l.s : &l.c,
                *left = server_goes ? &l.c : &l.s;
    while ((rc = mbedtls_ssl_handshake(&l.c.ssl)) ==
               MBEDTLS_ERR_SSL_WANT_WRITE &&
           ++n < TRIES)
        if (server_goes)
            tls_drain(l.s.end, l.s.net.fd);
        else
            assert_int_equal(MBEDTLS_ERR_SSL_WANT_READ,
                             mbedtls_ssl_handshake(&l.s.ssl));
    assert_int_equal(MBEDTLS_ERR_SSL_WANT_READ, rc);
    if (server_goes)
        tls_drain(l.s.end, l.s.net.fd);
    vanish(gone);
    do
        rc = mbedtls_ssl_handshake(&left->ssl);
    while (rc == MBEDTLS_ERR_SSL_WANT_READ && ++n < TRIES);
    tls_finish(&left->st, rc);
    outcome(&l, out);
    link_close(&l);
}

static void test_tls_peer_gone_mid_handshake_one_thread(void **state)
{
    (void)state;
    const struct tls_outcome
        no_server = {MBEDTLS_ERR_SSL_CONN_EOF, 0, NULL, 0, 0, 0},
        no_client = {0, MBEDTLS_ERR_NET_CONN_RESET, NULL, 0, 0, 0};
    tls_against_socketpair(gone_stepped, 1, &no_server);
    tls_against_socketpair(gone_stepped, 0, &no_client);
}

/* Blocking: a side parked in its handshake on its own thread. */
static void *blocking_handshake(void *arg)
{
    struct side *sd = arg;
    tls_finish(&sd->st, mbedtls_ssl_handshake(&sd->ssl));
    return NULL;
}

/*
 * One side's handshake blocks on its thread while the other, raw, reads the
 * ClientHello (a server) or sends the start of one (a client), then
 * vanishes: the blocked side wakes with an error.
 */
static void gone_blocking(size_t cap, size_t total, int server_goes,
                          struct tls_outcome *out)
{
    (void)total;
    struct link l;
    pthread_t th;
    link_open(&l, cap, 1);
    struct side *gone = server_goes ? &l.s : &l.c;
    assert_int_equal(0, pthread_create(&th, NULL, blocking_handshake,
                                       server_goes ? &l.c : &l.s));
    if (server_goes)
        tls_read_record(gone->end, gone->net.fd);
    else
        tls_send_cut_hello(gone->end, gone->net.fd);
    vanish(gone);
    pthread_join(th, NULL);
    outcome(&l, out);
    link_close(&l);
}

static void test_tls_peer_gone_mid_handshake_blocking_side_wakes(void **s)
{
    (void)s;
    const struct tls_outcome
        no_server = {MBEDTLS_ERR_SSL_CONN_EOF, 0, NULL, 0, 0, 0},
        no_client = {0, MBEDTLS_ERR_SSL_CONN_EOF, NULL, 0, 0, 0};
    tu_watchdog_start("mbedtls blocking peer gone");
    tls_against_socketpair(gone_blocking, 1, &no_server);
    tls_against_socketpair(gone_blocking, 0, &no_client);
    tu_watchdog_end();
}

/* ------------------------------------------------------------------------ */
/* The read timeout, in both modes                                           */
/* ------------------------------------------------------------------------ */

/* Both sides' handshakes, stepped on one thread (non-blocking). */
static void handshake_stepped(struct link *l)
{
    for (int i = 0; i < TRIES && (!l->c.st.shook || !l->s.st.shook); i++) {
        if (!l->c.st.shook && mbedtls_ssl_handshake(&l->c.ssl) == 0)
            handshake_done(&l->c, 1);
        if (!l->s.st.shook && mbedtls_ssl_handshake(&l->s.ssl) == 0)
            handshake_done(&l->s, 0);
    }
    assert_true(l->c.st.shook && l->s.st.shook);
}

/* A non-blocking side's callbacks (and fd) start to block. */
static void make_blocking(struct side *sd)
{
    if (sd->end == NULL)
        assert_int_equal(0, mbedtls_net_set_block(&sd->net));
    set_bio(sd, 1);
}

/* The client sends "hi" 20 ms from now, on its own thread. */
static void *send_hi_later(void *arg)
{
    struct side *sd = arg;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    tls_finish(&sd->st,
               mbedtls_ssl_write(&sd->ssl, (const unsigned char *)"hi", 2) == 2
                   ? 0
                   : -1);
    return NULL;
}

/* mbedtls_ssl_read() within limits [lo, hi] seconds must return want. */
static void read_within(struct side *sd, size_t cap, int want, double lo,
                        double hi)
{
    unsigned char buf[16];
    double t0 = tu_now();
    int rc = mbedtls_ssl_read(&sd->ssl, buf, sizeof buf);
    double dt = tu_now() - t0;
    if (rc != want || dt < lo || dt > hi)
        fail_msg("%s: mbedtls_ssl_read %d (%s) after %.3f s, want %d within "
                 "%.3f-%.3f s",
                 tls_kind(cap), rc, rc < 0 ? errname(rc) : "bytes", dt, want,
                 lo, hi);
    if (rc > 0)
        sd->st.recvd += (size_t)rc;
}

/*
 * mbedtls_ssl_conf_read_timeout() in both modes, as mbedtls.h documents:
 * non-blocking callbacks (no receive-with-timeout) never wait, whatever the
 * timeout; blocking ones (mempipe_mbedtls_recv_timeout) wait up to it
 * (MBEDTLS_ERR_SSL_TIMEOUT), return bytes that come in time, and with 0
 * wait for ever. Over the socketpair the same, with mbedtls_net_recv and
 * mbedtls_net_recv_timeout.
 */
static void read_timeouts(size_t cap, size_t total, int variant,
                          struct tls_outcome *out)
{
    (void)variant;
    (void)total;
    struct link l;
    pthread_t th;
    link_open(&l, cap, 0);
    handshake_stepped(&l);
    mbedtls_ssl_conf_read_timeout(&l.s.conf, 200);
    read_within(&l.s, cap, MBEDTLS_ERR_SSL_WANT_READ, 0, 0.1);
    make_blocking(&l.s);
    make_blocking(&l.c);
    mbedtls_ssl_conf_read_timeout(&l.s.conf, 50);
    read_within(&l.s, cap, MBEDTLS_ERR_SSL_TIMEOUT, 0.045, 5);
    mbedtls_ssl_conf_read_timeout(&l.s.conf, 10000);
    assert_int_equal(0, pthread_create(&th, NULL, send_hi_later, &l.c));
    read_within(&l.s, cap, 2, 0, 5);
    pthread_join(th, NULL);
    mbedtls_ssl_conf_read_timeout(&l.s.conf, 0);
    assert_int_equal(0, pthread_create(&th, NULL, send_hi_later, &l.c));
    read_within(&l.s, cap, 2, 0.015, 5);
    pthread_join(th, NULL);
    tls_finish(&l.s.st, 0);
    outcome(&l, out);
    link_close(&l);
}

static void test_read_timeout_nonblocking_never_blocking_waits(void **state)
{
    (void)state;
    const struct tls_outcome want = {0, 0, "TLSv1.2", 0, 4, 0};
    tls_against_socketpair(read_timeouts, 0, &want);
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

static void test_throughput_vs_socketpair(void **state)
{
    (void)state;
    tu_watchdog_start("mbedtls throughput");
    tls_bench("mbedtls", "one thread, CPU time", echo_stepped, &clean_echo);
    tls_bench("mbedtls", "two threads, wall time", echo_threads, &clean_echo);
    tu_watchdog_end();
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callbacks_return_mbedtls_codes),
        cmocka_unit_test(
            test_recv_timeout_zero_waits_forever_nonzero_times_out),
        cmocka_unit_test(test_read_timeout_nonblocking_never_blocking_waits),
        cmocka_unit_test(test_tls12_echo_close_notify_one_thread_fd_driven),
        cmocka_unit_test(test_tls12_echo_close_notify_two_threads_blocking),
        cmocka_unit_test(test_tls_peer_gone_mid_handshake_one_thread),
        cmocka_unit_test(test_tls_peer_gone_mid_handshake_blocking_side_wakes),
    };
    const struct CMUnitTest bench[] = {
        cmocka_unit_test(test_throughput_vs_socketpair),
    };
    if (tls_bench_runs() > 0)
        return cmocka_run_group_tests(bench, group_setup, group_teardown);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
