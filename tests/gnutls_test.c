/* SPDX-License-Identifier: MIT */
/*
 * The GnuTLS transport adapter (include/mempipe/gnutls.h): real TLS 1.3
 * over one duplex at capacities 1, 7, 4096, 65536 and SIZE_MAX, and the same
 * over a socketpair(2) with GnuTLS's own socket transport as the reference:
 * a verified handshake, an echo of ECHO bytes each way, bye (close_notify)
 * both ways, and a peer that vanishes mid-handshake. Each runs on one thread
 * driven by wakers only (a side runs only when its waker fired or arm said
 * "now", so a lost wake-up stalls and fails) and with one blocking thread
 * per side. The key and self-signed certificate are made here.
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

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "mempipe/gnutls.h"

#define MAX_CHUNK 16384u /* one record of plaintext at most */

/*
 * Bytes echoed each way: 8 MiB, MEMPIPE_TLS_BYTES to change it, 1 MiB under
 * the sanitizers. Tiny capacities move a byte per wake-up, so they echo
 * 64 KiB per byte of capacity at most (64 KiB at 1, 448 KiB at 7).
 */
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
/* Key, certificate, credentials                                             */
/* ------------------------------------------------------------------------ */

static gnutls_x509_privkey_t g_key;
static gnutls_x509_crt_t g_crt;
static gnutls_certificate_credentials_t g_scred, g_ccred;

#define GT(call) assert_int_equal(GNUTLS_E_SUCCESS, (call))

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* the socketpair reference writes to closed */
    if (gnutls_x509_privkey_init(&g_key) < 0 ||
        gnutls_x509_privkey_generate(
            g_key, GNUTLS_PK_ECDSA,
            GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
        gnutls_x509_crt_init(&g_crt) < 0)
        return -1;
    time_t now = time(NULL);
    static const unsigned char serial[] = {1};
    if (gnutls_x509_crt_set_version(g_crt, 3) < 0 ||
        gnutls_x509_crt_set_serial(g_crt, serial, sizeof serial) < 0 ||
        gnutls_x509_crt_set_activation_time(g_crt, now - 60) < 0 ||
        gnutls_x509_crt_set_expiration_time(g_crt, now + 3600) < 0 ||
        gnutls_x509_crt_set_dn(g_crt, "CN=localhost", NULL) < 0 ||
        gnutls_x509_crt_set_subject_alt_name(
            g_crt, GNUTLS_SAN_DNSNAME, "localhost", 9, GNUTLS_FSAN_SET) < 0 ||
        gnutls_x509_crt_set_key(g_crt, g_key) < 0 ||
        gnutls_x509_crt_set_key_usage(g_crt, GNUTLS_KEY_DIGITAL_SIGNATURE) <
            0 ||
        gnutls_x509_crt_sign2(g_crt, g_crt, g_key, GNUTLS_DIG_SHA256, 0) < 0)
        return -1;
    if (gnutls_certificate_allocate_credentials(&g_scred) < 0 ||
        gnutls_certificate_set_x509_key(g_scred, &g_crt, 1, g_key) < 0 ||
        gnutls_certificate_allocate_credentials(&g_ccred) < 0 ||
        gnutls_certificate_set_x509_trust(g_ccred, &g_crt, 1) != 1)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    gnutls_certificate_free_credentials(g_scred);
    gnutls_certificate_free_credentials(g_ccred);
    gnutls_x509_crt_deinit(g_crt);
    gnutls_x509_privkey_deinit(g_key);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* A link: a mempipe duplex through the adapter, or a socketpair             */
/* ------------------------------------------------------------------------ */

#define SOCKETPAIR 0 /* cap 0 means the socketpair reference */

struct side {
    gnutls_session_t s;
    mempipe *end; /* NULL over a socketpair (or once closed) */
    int fd;       /* -1 over a mempipe (or once closed) */
    int blocking;
    atomic_int woken; /* the waker fired since the side last ran */
    int now;          /* arm said "call again now" */
    mempipe_waker waker;
    /* the echo */
    int phase, err;
    size_t total, sent, recvd, pending, have;
    uint64_t rng;
    unsigned char *buf;
};

struct link {
    size_t cap;
    struct side c, s; /* client, server */
};

static void on_wake(void *ctx)
{
    struct side *sd = ctx;
    atomic_store(&sd->woken, 1);
}

/*
 * TLS 1.3's middlebox compatibility mode has the client send a 6-byte
 * ChangeCipherSpec record while the server is still writing its first
 * flight: neither reads until its write is done, so below 6 bytes of
 * capacity each way the handshake deadlocks (as it would over a socket with
 * such buffers). Those capacities run without the compatibility mode.
 */
static void side_open(struct side *sd, unsigned flags, int blocking, size_t cap)
{
    if (cap != SOCKETPAIR && cap < 6)
        flags |= GNUTLS_NO_TICKETS; /* a server's tickets meet the client's
                                       Finished: both writing, as above */
    GT(gnutls_init(&sd->s, flags));
    GT(gnutls_priority_set_direct(
        sd->s,
        cap != SOCKETPAIR && cap < 6
            ? "NORMAL:-VERS-ALL:+VERS-TLS1.3:%DISABLE_TLS13_COMPAT_MODE"
            : "NORMAL:-VERS-ALL:+VERS-TLS1.3",
        NULL));
    sd->blocking = blocking;
    sd->waker.wake = on_wake;
    sd->waker.ctx = sd;
    atomic_init(&sd->woken, 1);
    sd->now = 1;
    sd->buf = malloc(MAX_CHUNK);
    assert_non_null(sd->buf);
    if (sd->end != NULL) {
        assert_rc(0,
                  mempipe_gnutls_set_transport(
                      sd->s, sd->end, blocking ? MEMPIPE_GNUTLS_BLOCKING : 0));
        assert_ptr_equal(sd->end, mempipe_gnutls_get_end(sd->s));
    } else {
        if (!blocking)
            assert_int_equal(0, fcntl(sd->fd, F_SETFL, O_NONBLOCK));
        gnutls_transport_set_int(sd->s, sd->fd);
    }
}

static void link_open(struct link *l, size_t cap, int blocking)
{
    memset(l, 0, sizeof *l);
    l->cap = cap;
    if (cap != SOCKETPAIR) {
        assert_rc(0, mempipe_duplex(cap, &l->s.end, &l->c.end));
        l->s.fd = l->c.fd = -1;
    } else {
        int fd[2];
        assert_int_equal(0, socketpair(AF_UNIX, SOCK_STREAM, 0, fd));
        l->s.fd = fd[0];
        l->c.fd = fd[1];
    }
    side_open(&l->s, GNUTLS_SERVER, blocking, cap);
    GT(gnutls_credentials_set(l->s.s, GNUTLS_CRD_CERTIFICATE, g_scred));
    side_open(&l->c, GNUTLS_CLIENT, blocking, cap);
    GT(gnutls_credentials_set(l->c.s, GNUTLS_CRD_CERTIFICATE, g_ccred));
    GT(gnutls_server_name_set(l->c.s, GNUTLS_NAME_DNS, "localhost", 9));
    gnutls_session_set_verify_cert(l->c.s, "localhost", 0);
}

/* The peer vanishes: its session and its end (or fd) go away. */
static void side_close(struct side *sd)
{
    if (sd->s != NULL) {
        if (sd->end != NULL)
            assert_rc(0, mempipe_gnutls_set_transport(sd->s, NULL, 0));
        gnutls_deinit(sd->s);
        sd->s = NULL;
    }
    mempipe_close(sd->end);
    sd->end = NULL;
    if (sd->fd >= 0)
        close(sd->fd);
    sd->fd = -1;
    free(sd->buf);
    sd->buf = NULL;
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

/* ------------------------------------------------------------------------ */
/* One thread, driven by wakers                                              */
/* ------------------------------------------------------------------------ */

enum { HANDSHAKE, DATA, BYE, DONE, FAILED };

/*
 * After GNUTLS_E_AGAIN: over a mempipe, arm the waker (or run again now);
 * over a socketpair, note nothing: runnable() polls the fd.
 */
static void blocked(struct side *sd)
{
    atomic_store(&sd->woken, 0);
    sd->now = 0;
    if (sd->end != NULL) {
        int rc = mempipe_gnutls_arm(sd->s, &sd->waker);
        assert_true(rc == 0 || rc == 1);
        sd->now = rc;
    }
}

static int runnable(struct side *sd)
{
    if (sd->phase >= DONE)
        return 0;
    if (sd->now || atomic_load(&sd->woken))
        return 1;
    if (sd->fd < 0)
        return 0;
    short ev = POLLIN;
    if (gnutls_record_get_direction(sd->s) || sd->pending > 0 || sd->have)
        ev |= POLLOUT;
    struct pollfd p = {sd->fd, ev, 0};
    return poll(&p, 1, 0) > 0;
}

/* A fatal GnuTLS error ends the side (the vanished-peer tests want one). */
static int again(struct side *sd, int rc)
{
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
        blocked(sd);
        return 1;
    }
    sd->err = rc;
    sd->phase = FAILED;
    return 0;
}

static void check_session(struct side *sd)
{
    assert_int_equal(GNUTLS_TLS1_3, gnutls_protocol_get_version(sd->s));
}

/* Runs a side until it would block; both sides' echo state machines. */
static void step(struct side *sd, int client)
{
    int rc;
    atomic_store(&sd->woken, 0);
    sd->now = 0;
    for (;;) {
        switch (sd->phase) {
        case HANDSHAKE:
            rc = gnutls_handshake(sd->s);
            if (rc < 0) {
                again(sd, rc);
                return;
            }
            check_session(sd);
            sd->phase = DATA;
            break;
        case DATA: {
            int moved = 0;
            if (client && sd->sent < sd->total) {
                if (sd->pending == 0) {
                    size_t n = 1 + tu_rand(&sd->rng) % MAX_CHUNK;
                    sd->pending =
                        n < sd->total - sd->sent ? n : sd->total - sd->sent;
                    tu_pattern(sd->buf, sd->pending, sd->sent, 1);
                }
                ssize_t w = gnutls_record_send(sd->s, sd->buf, sd->pending);
                if (w > 0) {
                    assert_int_equal(sd->pending, w);
                    sd->sent += (size_t)w;
                    sd->pending = 0;
                    moved = 1;
                } else if (!again(sd, (int)w)) {
                    return;
                }
            }
            if (!client && sd->have > 0) {
                ssize_t w = gnutls_record_send(sd->s, sd->buf, sd->have);
                if (w > 0) {
                    assert_int_equal(sd->have, w);
                    sd->have = 0;
                    moved = 1;
                } else if (!again(sd, (int)w)) {
                    return;
                }
            }
            if (client || sd->have == 0) {
                unsigned char in[MAX_CHUNK];
                ssize_t r =
                    gnutls_record_recv(sd->s, client ? in : sd->buf, MAX_CHUNK);
                if (r > 0 && client) {
                    assert_int_equal(
                        -1, tu_check_pattern(in, (size_t)r, sd->recvd, 1));
                    sd->recvd += (size_t)r;
                    moved = 1;
                } else if (r > 0) {
                    sd->have = (size_t)r;
                    sd->recvd += (size_t)r;
                    moved = 1;
                } else if (r == 0) {
                    /* The client's close_notify: the server answers. */
                    assert_false(client);
                    sd->phase = BYE;
                    moved = 1;
                } else if (!again(sd, (int)r)) {
                    return;
                }
            }
            if (client && sd->recvd == sd->total)
                sd->phase = BYE;
            if (!moved && sd->phase == DATA)
                return; /* both directions blocked; the last one armed */
            atomic_fetch_add(&tu_progress, 1);
            break;
        }
        case BYE:
            rc = gnutls_bye(sd->s, client ? GNUTLS_SHUT_RDWR : GNUTLS_SHUT_WR);
            if (rc < 0) {
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

/* Runs both sides until neither can run; fails if one is not done. */
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

static double echo_stepped(size_t cap)
{
    struct link l;
    link_open(&l, cap, 0);
    l.c.total = echo_bytes(cap);
    l.c.rng = 42;
    double t0 = tu_now();
    run_stepped(&l);
    double dt = tu_now() - t0;
    if (l.c.phase != DONE || l.s.phase != DONE)
        fail_msg("%s: stalled or failed: client phase %d (%s), server phase "
                 "%d (%s), %zu/%zu bytes echoed",
                 kind(&l), l.c.phase, gnutls_strerror(l.c.err), l.s.phase,
                 gnutls_strerror(l.s.err), l.c.recvd, l.c.total);
    assert_int_equal(l.c.total, l.s.recvd);
    double mbs = 2.0 * (double)l.c.total / dt / 1e6;
    printf("# gnutls one thread, %s: %zu bytes each way, %.1f MB/s\n", kind(&l),
           l.c.total, mbs);
    link_close(&l);
    return mbs;
}

static void test_tls13_echo_bye_one_thread_wakers(void **state)
{
    (void)state;
    tu_watchdog_start("gnutls one-thread echo");
    echo_stepped(SOCKETPAIR);
    for (size_t i = 0; i < NCAPS; i++)
        echo_stepped(caps[i]);
    tu_watchdog_end();
}

/* ------------------------------------------------------------------------ */
/* One thread per side, blocking                                             */
/* ------------------------------------------------------------------------ */

static void *blocking_server(void *arg)
{
    struct side *sd = arg;
    int rc;
    do
        rc = gnutls_handshake(sd->s);
    while (rc < 0 && !gnutls_error_is_fatal(rc));
    if (rc < 0)
        return (void *)gnutls_strerror(rc);
    for (;;) {
        ssize_t r = gnutls_record_recv(sd->s, sd->buf, MAX_CHUNK);
        if (r == 0)
            break; /* close_notify */
        if (r < 0)
            return (void *)gnutls_strerror((int)r);
        sd->recvd += (size_t)r;
        if (gnutls_record_send(sd->s, sd->buf, (size_t)r) != r)
            return (void *)"gnutls_record_send failed";
        atomic_fetch_add(&tu_progress, 1);
    }
    if ((rc = gnutls_bye(sd->s, GNUTLS_SHUT_WR)) < 0)
        return (void *)gnutls_strerror(rc);
    return NULL;
}

static double echo_threads(size_t cap)
{
    struct link l;
    link_open(&l, cap, 1);
    size_t total = echo_bytes(cap);
    pthread_t th;
    double t0 = tu_now();
    assert_int_equal(0, pthread_create(&th, NULL, blocking_server, &l.s));
    GT(gnutls_handshake(l.c.s));
    check_session(&l.c);
    unsigned char *in = malloc(MAX_CHUNK);
    assert_non_null(in);
    uint64_t rng = 7;
    for (size_t done = 0; done < total;) {
        size_t n = 1 + tu_rand(&rng) % MAX_CHUNK;
        if (n > total - done)
            n = total - done;
        tu_pattern(l.c.buf, n, done, 2);
        assert_int_equal(n, gnutls_record_send(l.c.s, l.c.buf, n));
        for (size_t got = 0; got < n;) {
            ssize_t r = gnutls_record_recv(l.c.s, in, n - got);
            if (r <= 0)
                fail_msg("%s: recv %zd (%s)", kind(&l), r,
                         gnutls_strerror((int)r));
            assert_int_equal(-1,
                             tu_check_pattern(in, (size_t)r, done + got, 2));
            got += (size_t)r;
        }
        done += n;
    }
    /* bye both ways: ours, then the server's answer. */
    GT(gnutls_bye(l.c.s, GNUTLS_SHUT_RDWR));
    double dt = tu_now() - t0;
    void *err = NULL;
    pthread_join(th, &err);
    if (err != NULL)
        fail_msg("%s: server thread: %s", kind(&l), (const char *)err);
    assert_int_equal(total, l.s.recvd);
    free(in);
    double mbs = 2.0 * (double)total / dt / 1e6;
    printf("# gnutls two threads, %s: %zu bytes each way, %.1f MB/s\n",
           kind(&l), total, mbs);
    link_close(&l);
    return mbs;
}

static void test_tls13_echo_bye_two_threads_blocking(void **state)
{
    (void)state;
    tu_watchdog_start("gnutls two-thread echo");
    echo_threads(SOCKETPAIR);
    for (size_t i = 0; i < NCAPS; i++)
        echo_threads(caps[i]);
    tu_watchdog_end();
}

/* ------------------------------------------------------------------------ */
/* A peer that vanishes mid-handshake                                        */
/* ------------------------------------------------------------------------ */

/* Takes every byte the peer sent so far, so that closing discards none (a
 * socket that closes with bytes unread resets the peer instead: ECONNRESET,
 * which mempipe does not model). */
static void drain(struct side *sd)
{
    char buf[4096];
    if (sd->end != NULL)
        while (mempipe_poll_read(sd->end, buf, sizeof buf, NULL) > 0)
            ;
    else
        while (read(sd->fd, buf, sizeof buf) > 0)
            ;
}

/* The server goes away after the ClientHello: the client fails, at once. */
static int server_gone(size_t cap)
{
    struct link l;
    link_open(&l, cap, 0);
    assert_int_equal(GNUTLS_E_AGAIN, gnutls_handshake(l.c.s));
    drain(&l.s);
    side_close(&l.s);
    int rc = gnutls_handshake(l.c.s);
    if (rc == GNUTLS_E_AGAIN)
        rc = gnutls_handshake(l.c.s); /* first arm, mempipe or not */
    assert_true(gnutls_error_is_fatal(rc));
    link_close(&l);
    return rc;
}

/* The client goes away after its ClientHello: the server's reply fails. */
static int client_gone(size_t cap)
{
    struct link l;
    link_open(&l, cap, 0);
    int rc = gnutls_handshake(l.c.s);
    assert_int_equal(GNUTLS_E_AGAIN, rc);
    side_close(&l.c);
    do
        rc = gnutls_handshake(l.s.s);
    while (rc == GNUTLS_E_AGAIN);
    assert_true(gnutls_error_is_fatal(rc));
    link_close(&l);
    return rc;
}

static void test_tls_peer_gone_mid_handshake_same_error_as_socketpair(void **s)
{
    (void)s;
    int ref_s = server_gone(SOCKETPAIR), ref_c = client_gone(SOCKETPAIR);
    assert_int_equal(GNUTLS_E_PREMATURE_TERMINATION, ref_s);
    assert_int_equal(GNUTLS_E_PUSH_ERROR, ref_c);
    for (size_t i = 0; i < NCAPS; i++) {
        if (caps[i] < 4096)
            continue; /* a ClientHello must fit to be sent in one call */
        assert_int_equal(ref_s, server_gone(caps[i]));
        assert_int_equal(ref_c, client_gone(caps[i]));
    }
}

/* Blocking: a client parked in the handshake is woken by the close. */
static void *blocking_handshake(void *arg)
{
    struct side *sd = arg;
    int rc = gnutls_handshake(sd->s);
    return (void *)(intptr_t)rc;
}

static int server_gone_blocking(size_t cap)
{
    struct link l;
    link_open(&l, cap, 1);
    pthread_t th;
    assert_int_equal(0, pthread_create(&th, NULL, blocking_handshake, &l.c));
    char buf[64];
    if (l.s.end != NULL)
        assert_true(mempipe_read(l.s.end, buf, sizeof buf) > 0);
    else
        assert_true(read(l.s.fd, buf, sizeof buf) > 0);
    /* Let the client finish sending, then take it all and vanish. */
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    if (l.s.fd >= 0)
        fcntl(l.s.fd, F_SETFL, O_NONBLOCK);
    drain(&l.s);
    side_close(&l.s);
    void *ret;
    pthread_join(th, &ret);
    int rc = (int)(intptr_t)ret;
    assert_true(gnutls_error_is_fatal(rc));
    link_close(&l);
    return rc;
}

static void test_tls_server_gone_mid_handshake_blocking_client_wakes(void **s)
{
    (void)s;
    tu_watchdog_start("gnutls blocking peer gone");
    int ref = server_gone_blocking(SOCKETPAIR);
    for (size_t i = 0; i < NCAPS; i++)
        if (caps[i] >= 4096)
            assert_int_equal(ref, server_gone_blocking(caps[i]));
    tu_watchdog_end();
}

/* ------------------------------------------------------------------------ */
/* The adapter's own contract                                                */
/* ------------------------------------------------------------------------ */

static void test_set_transport_and_arm_argument_errors(void **state)
{
    (void)state;
    mempipe *a, *b;
    gnutls_session_t s;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    GT(gnutls_init(&s, GNUTLS_CLIENT));
    struct tu_counter c = {0};
    mempipe_waker w = tu_counter_waker(&c), nowake = {NULL, NULL};
    assert_rc(-EINVAL, mempipe_gnutls_set_transport(NULL, a, 0));
    assert_rc(-EINVAL, mempipe_gnutls_set_transport(s, a, 2));
    assert_null(mempipe_gnutls_get_end(s));
    assert_null(mempipe_gnutls_get_end(NULL));
    assert_rc(-EINVAL, mempipe_gnutls_arm(s, &w)); /* no transport yet */
    assert_rc(0, mempipe_gnutls_set_transport(s, a, MEMPIPE_GNUTLS_BLOCKING));
    assert_rc(-EBADF, mempipe_gnutls_arm(s, &w));
    assert_rc(0, mempipe_gnutls_set_transport(s, a, 0)); /* replaces */
    assert_ptr_equal(a, mempipe_gnutls_get_end(s));
    assert_rc(-EINVAL, mempipe_gnutls_arm(s, NULL));
    assert_rc(-EINVAL, mempipe_gnutls_arm(s, &nowake));
    /* A new waker: "call again now"; nothing blocked yet: still now. */
    assert_rc(1, mempipe_gnutls_arm(s, &w));
    assert_rc(1, mempipe_gnutls_arm(s, &w));
    assert_rc(0, mempipe_gnutls_set_transport(s, NULL, 0));
    assert_null(mempipe_gnutls_get_end(s));
    assert_rc(0, mempipe_gnutls_set_transport(s, NULL, 0)); /* idempotent */
    gnutls_deinit(s);
    assert_int_equal(0, tu_calls(&c));
    mempipe_close(a);
    mempipe_close(b);
}

static void test_pull_timeout_blocking_waits_nonblocking_never(void **state)
{
    (void)state;
    struct link l;
    link_open(&l, 4096, 0);
    /* Handshake only (the client has nothing to send). */
    for (int i = 0; i < 100 && (l.c.phase != DATA || l.s.phase != DATA); i++) {
        int rc;
        if (l.c.phase == HANDSHAKE && (rc = gnutls_handshake(l.c.s)) == 0)
            l.c.phase = DATA;
        if (l.s.phase == HANDSHAKE && (rc = gnutls_handshake(l.s.s)) == 0)
            l.s.phase = DATA;
    }
    assert_int_equal(DATA, l.c.phase);
    assert_int_equal(DATA, l.s.phase);
    char buf[16];
    /* Non-blocking, 200 ms record timeout: would-block at once. */
    gnutls_record_set_timeout(l.s.s, 200);
    double t0 = tu_now();
    ssize_t r;
    do
        r = gnutls_record_recv(l.s.s, buf, sizeof buf);
    while (r == GNUTLS_E_AGAIN && tu_now() - t0 < 0.1 &&
           mempipe_gnutls_arm(l.s.s, &l.s.waker) == 1);
    assert_int_equal(GNUTLS_E_AGAIN, r);
    assert_true(tu_now() - t0 < 0.1);
    /* Blocking, 50 ms: GNUTLS_E_TIMEDOUT after about 50 ms. */
    assert_rc(0, mempipe_gnutls_set_transport(l.s.s, l.s.end,
                                              MEMPIPE_GNUTLS_BLOCKING));
    gnutls_record_set_timeout(l.s.s, 50);
    t0 = tu_now();
    r = gnutls_record_recv(l.s.s, buf, sizeof buf);
    double dt = tu_now() - t0;
    assert_int_equal(GNUTLS_E_TIMEDOUT, r);
    assert_true(dt >= 0.045 && dt < 5);
    /* Data within the timeout is returned. */
    assert_int_equal(2, gnutls_record_send(l.c.s, "hi", 2));
    r = gnutls_record_recv(l.s.s, buf, sizeof buf);
    assert_int_equal(2, r);
    assert_memory_equal(buf, "hi", 2);
    link_close(&l);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_transport_and_arm_argument_errors),
        cmocka_unit_test(test_pull_timeout_blocking_waits_nonblocking_never),
        cmocka_unit_test(test_tls13_echo_bye_one_thread_wakers),
        cmocka_unit_test(test_tls13_echo_bye_two_threads_blocking),
        cmocka_unit_test(
            test_tls_peer_gone_mid_handshake_same_error_as_socketpair),
        cmocka_unit_test(
            test_tls_server_gone_mid_handshake_blocking_client_wakes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
