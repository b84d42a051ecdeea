/* SPDX-License-Identifier: MIT */
/*
 * The GnuTLS transport adapter (include/mempipe/gnutls.h): real TLS 1.3 over
 * one duplex at capacities 1, 7, 4096, 65536 and SIZE_MAX, each scenario run
 * the same way over a socketpair(2) with GnuTLS's own socket transport,
 * whose application-visible outcome the duplex must match (tlsutil.h): a
 * verified handshake, an echo each way (8 MiB; less at capacities 1 and 7,
 * tlsutil.h says how much), bye (close_notify) both ways, and either peer
 * vanishing mid-handshake. Each on one thread driven by wakers only (a side
 * runs only when its waker fired or arm said "now", so a lost wake-up stalls
 * and fails) and with one blocking thread per side. The key and self-signed
 * certificate are made here.
 *
 * MEMPIPE_TLS_BENCH=N runs the throughput mode (tlsutil.h) instead.
 */
#include "tlsutil.h"

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

/* ------------------------------------------------------------------------ */
/* Key, certificate, credentials                                             */
/* ------------------------------------------------------------------------ */

static gnutls_x509_privkey_t g_key;
static gnutls_x509_crt_t g_crt;
static gnutls_certificate_credentials_t g_scred, g_ccred;

#define GT(call) assert_int_equal(GNUTLS_E_SUCCESS, (call))
#define TRIES    100000 /* calls that may say "again" before a test fails */

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* the socketpair reference writes to closed */
    tls_errname = gnutls_strerror_name;
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

struct side {
    gnutls_session_t s;
    mempipe *end;     /* NULL over a socketpair (or once closed) */
    int fd;           /* -1 over a mempipe (or once closed) */
    atomic_int woken; /* the waker fired since the side last ran */
    int now;          /* arm said "call again now" */
    mempipe_waker waker;
    /* the echo */
    struct tls_state st;
    size_t total, sent, pending, have;
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
    int tiny = cap != TLS_SOCKETPAIR && cap < 6;
    if (tiny)
        flags |= GNUTLS_NO_TICKETS; /* a server's tickets meet the client's
                                       Finished: both writing, as above */
    GT(gnutls_init(&sd->s, flags));
    GT(gnutls_priority_set_direct(
        sd->s,
        tiny ? "NORMAL:-VERS-ALL:+VERS-TLS1.3:%DISABLE_TLS13_COMPAT_MODE"
             : "NORMAL:-VERS-ALL:+VERS-TLS1.3",
        NULL));
    sd->waker.wake = on_wake;
    sd->waker.ctx = sd;
    atomic_init(&sd->woken, 1);
    sd->now = 1;
    sd->buf = malloc(TLS_MAX_CHUNK);
    assert_non_null(sd->buf);
    if (sd->end != NULL) {
        assert_rc(0,
                  mempipe_gnutls_set_transport(
                      sd->s, sd->end, blocking ? MEMPIPE_GNUTLS_BLOCKING : 0));
        assert_ptr_equal(sd->end, mempipe_gnutls_get_end(sd->s));
    } else {
        gnutls_transport_set_int(sd->s, sd->fd);
    }
}

static void link_open(struct link *l, size_t cap, int blocking)
{
    struct tls_ends e;
    memset(l, 0, sizeof *l);
    l->cap = cap;
    tls_ends_open(&e, cap, !blocking);
    l->s.end = e.s;
    l->s.fd = e.sfd;
    l->c.end = e.c;
    l->c.fd = e.cfd;
    side_open(&l->s, GNUTLS_SERVER, blocking, cap);
    GT(gnutls_credentials_set(l->s.s, GNUTLS_CRD_CERTIFICATE, g_scred));
    side_open(&l->c, GNUTLS_CLIENT, blocking, cap);
    GT(gnutls_credentials_set(l->c.s, GNUTLS_CRD_CERTIFICATE, g_ccred));
    GT(gnutls_server_name_set(l->c.s, GNUTLS_NAME_DNS, "localhost", 9));
    gnutls_session_set_verify_cert(l->c.s, "localhost", 0);
}

/* The side's transport goes away; its session stays. */
static void cut(struct side *sd)
{
    if (sd->end != NULL)
        assert_rc(0, mempipe_gnutls_set_transport(sd->s, NULL, 0));
    tls_close_raw(&sd->end, &sd->fd);
}

/* The side goes away: its transport and its session. */
static void side_close(struct side *sd)
{
    cut(sd);
    if (sd->s != NULL)
        gnutls_deinit(sd->s);
    sd->s = NULL;
    free(sd->buf);
    sd->buf = NULL;
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
                   l->c.st.shook ? gnutls_protocol_get_name(
                                       gnutls_protocol_get_version(l->c.s))
                                 : NULL,
                   out);
}

/* ------------------------------------------------------------------------ */
/* One thread, driven by wakers                                              */
/* ------------------------------------------------------------------------ */

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
    if (sd->st.phase >= TLS_DONE)
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
    sd->st.err = rc;
    sd->st.phase = TLS_FAILED;
    return 0;
}

/* Runs a side until it would block; both sides' echo state machines. */
static void step(struct side *sd, int client)
{
    int rc;
    atomic_store(&sd->woken, 0);
    sd->now = 0;
    for (;;) {
        switch (sd->st.phase) {
        case TLS_HANDSHAKE:
            rc = gnutls_handshake(sd->s);
            if (rc < 0) {
                again(sd, rc);
                return;
            }
            sd->st.shook = 1;
            sd->st.phase = TLS_DATA;
            break;
        case TLS_DATA: {
            int moved = 0;
            if (client && sd->sent < sd->total) {
                if (sd->pending == 0) {
                    sd->pending = tls_chunk(&sd->rng, sd->total - sd->sent);
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
                unsigned char in[TLS_MAX_CHUNK];
                ssize_t r = gnutls_record_recv(sd->s, client ? in : sd->buf,
                                               TLS_MAX_CHUNK);
                if (r > 0 && client) {
                    assert_int_equal(
                        -1, tu_check_pattern(in, (size_t)r, sd->st.recvd, 1));
                    sd->st.recvd += (size_t)r;
                    moved = 1;
                } else if (r > 0) {
                    sd->have = (size_t)r;
                    sd->st.recvd += (size_t)r;
                    moved = 1;
                } else if (r == 0) {
                    /* The client's close_notify: the server answers. */
                    assert_false(client);
                    sd->st.phase = TLS_BYE;
                    moved = 1;
                } else if (!again(sd, (int)r)) {
                    return;
                }
            }
            if (client && sd->st.recvd == sd->total)
                sd->st.phase = TLS_BYE;
            if (!moved && sd->st.phase == TLS_DATA)
                return; /* both directions blocked; the last one armed */
            atomic_fetch_add(&tu_progress, 1);
            break;
        }
        case TLS_BYE:
            rc = gnutls_bye(sd->s, client ? GNUTLS_SHUT_RDWR : GNUTLS_SHUT_WR);
            if (rc < 0) {
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

/* Runs both sides until neither can run (done, failed or stalled). */
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
        tls_report("gnutls", "one thread", cap, total, tls_thread_cpu() - t0);
    link_close(&l);
}

/* Every byte echoed both ways, bye both ways, over TLS 1.3. */
static const struct tls_outcome clean_echo = {0,         0,         "TLS1.3",
                                              TLS_TOTAL, TLS_TOTAL, 0};

static void test_tls13_echo_bye_one_thread_wakers(void **state)
{
    (void)state;
    tu_watchdog_start("gnutls one-thread echo");
    tls_against_socketpair(echo_stepped, 0, &clean_echo);
    tu_watchdog_end();
}

/* ------------------------------------------------------------------------ */
/* One thread per side, blocking                                             */
/* ------------------------------------------------------------------------ */

/*
 * A blocking handshake as applications write it: again on a non-fatal
 * error (GnuTLS says GNUTLS_E_AGAIN once where a record is cut short by end
 * of file, over a socket too).
 */
static int handshake_blocking(gnutls_session_t s)
{
    int rc, n = 0;
    do
        rc = gnutls_handshake(s);
    while (rc < 0 && !gnutls_error_is_fatal(rc) && ++n < TRIES);
    return rc;
}

/* Echoes until the client's close_notify, answers it. */
static void *blocking_server(void *arg)
{
    struct side *sd = arg;
    int rc = handshake_blocking(sd->s);
    if (rc < 0)
        goto out;
    sd->st.shook = 1;
    for (;;) {
        ssize_t r = gnutls_record_recv(sd->s, sd->buf, TLS_MAX_CHUNK);
        if (r <= 0) {
            rc = (int)r; /* 0: close_notify */
            break;
        }
        sd->st.recvd += (size_t)r;
        ssize_t w = gnutls_record_send(sd->s, sd->buf, (size_t)r);
        if (w != r) {
            rc = w < 0 ? (int)w : GNUTLS_E_INTERNAL_ERROR;
            break;
        }
        atomic_fetch_add(&tu_progress, 1);
    }
    if (rc == 0)
        rc = gnutls_bye(sd->s, GNUTLS_SHUT_WR);
out:
    tls_finish(&sd->st, rc);
    return NULL;
}

/* Sends total bytes in chunks, reading each back, then bye both ways. */
static void blocking_client(struct side *sd, size_t total)
{
    unsigned char in[TLS_MAX_CHUNK];
    int rc = handshake_blocking(sd->s);
    if (rc < 0)
        goto out;
    sd->st.shook = 1;
    for (size_t done = 0; done < total;) {
        size_t n = tls_chunk(&sd->rng, total - done);
        tu_pattern(sd->buf, n, done, 2);
        ssize_t w = gnutls_record_send(sd->s, sd->buf, n);
        if (w < 0) {
            rc = (int)w;
            goto out;
        }
        assert_int_equal(n, w);
        for (size_t got = 0; got < n;) {
            ssize_t r = gnutls_record_recv(sd->s, in, n - got);
            if (r <= 0) {
                rc = r < 0 ? (int)r : GNUTLS_E_PREMATURE_TERMINATION;
                goto out;
            }
            assert_int_equal(-1,
                             tu_check_pattern(in, (size_t)r, done + got, 2));
            got += (size_t)r;
            sd->st.recvd += (size_t)r;
        }
        done += n;
    }
    rc = gnutls_bye(sd->s, GNUTLS_SHUT_RDWR); /* ours, then the answer */
out:
    tls_finish(&sd->st, rc);
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
    out->mbs = tls_report("gnutls", "two threads", cap, total, dt);
    link_close(&l);
}

static void test_tls13_echo_bye_two_threads_blocking(void **state)
{
    (void)state;
    tu_watchdog_start("gnutls two-thread echo");
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
    while ((rc = gnutls_handshake(l.c.s)) == GNUTLS_E_AGAIN &&
           gnutls_record_get_direction(l.c.s) == 1 && ++n < TRIES)
        if (server_goes)
            tls_drain(l.s.end, l.s.fd);
        else
            assert_int_equal(GNUTLS_E_AGAIN, gnutls_handshake(l.s.s));
    assert_int_equal(GNUTLS_E_AGAIN, rc);
    if (server_goes)
        tls_drain(l.s.end, l.s.fd);
    vanish(gone);
    do
        rc = gnutls_handshake(left->s);
    while (rc == GNUTLS_E_AGAIN && ++n < TRIES);
    tls_finish(&left->st, rc);
    outcome(&l, out);
    link_close(&l);
}

static void test_tls_peer_gone_mid_handshake_one_thread(void **state)
{
    (void)state;
    const struct tls_outcome
        no_server = {GNUTLS_E_PREMATURE_TERMINATION, 0, NULL, 0, 0, 0},
        no_client = {0, GNUTLS_E_PUSH_ERROR, NULL, 0, 0, 0};
    tls_against_socketpair(gone_stepped, 1, &no_server);
    tls_against_socketpair(gone_stepped, 0, &no_client);
}

/* Blocking: a side parked in its handshake on its own thread. */
static void *blocking_handshake(void *arg)
{
    struct side *sd = arg;
    tls_finish(&sd->st, handshake_blocking(sd->s));
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
        tls_read_record(gone->end, gone->fd);
    else
        tls_send_cut_hello(gone->end, gone->fd);
    vanish(gone);
    pthread_join(th, NULL);
    outcome(&l, out);
    link_close(&l);
}

static void test_tls_peer_gone_mid_handshake_blocking_side_wakes(void **s)
{
    (void)s;
    const struct tls_outcome
        no_server = {GNUTLS_E_PREMATURE_TERMINATION, 0, NULL, 0, 0, 0},
        no_client = {0, GNUTLS_E_UNEXPECTED_PACKET_LENGTH, NULL, 0, 0, 0};
    tu_watchdog_start("gnutls blocking peer gone");
    tls_against_socketpair(gone_blocking, 1, &no_server);
    tls_against_socketpair(gone_blocking, 0, &no_client);
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

/* Both sides' handshakes, stepped on one thread (non-blocking). */
static void handshake_stepped(struct link *l)
{
    for (int i = 0; i < TRIES && (!l->c.st.shook || !l->s.st.shook); i++) {
        if (!l->c.st.shook && gnutls_handshake(l->c.s) == 0)
            l->c.st.shook = 1;
        if (!l->s.st.shook && gnutls_handshake(l->s.s) == 0)
            l->s.st.shook = 1;
    }
    assert_true(l->c.st.shook && l->s.st.shook);
}

/* A non-blocking side's transport (mempipe or fd) starts to block. */
static void make_blocking(struct side *sd)
{
    if (sd->end != NULL) {
        assert_rc(0, mempipe_gnutls_set_transport(sd->s, sd->end,
                                                  MEMPIPE_GNUTLS_BLOCKING));
    } else {
        int fl = fcntl(sd->fd, F_GETFL);
        assert_int_equal(0, fcntl(sd->fd, F_SETFL, fl & ~O_NONBLOCK));
    }
}

/* The client sends "hi" 20 ms from now, on its own thread. */
static void *send_hi_later(void *arg)
{
    struct side *sd = arg;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    tls_finish(&sd->st, (int)gnutls_record_send(sd->s, "hi", 2) == 2 ? 0 : -1);
    return NULL;
}

/*
 * The record timeout of a blocking session (the pull-timeout function): 50
 * ms pass with nothing to read, GNUTLS_E_TIMEDOUT; bytes that come within
 * the timeout are returned. The same over the socketpair. Non-blocking,
 * over mempipe, it never waits (gnutls.h: one thread waiting for its own
 * peer would only stall).
 */
static void record_timeouts(size_t cap, size_t total, int variant,
                            struct tls_outcome *out)
{
    (void)variant;
    (void)total;
    struct link l;
    char buf[16];
    link_open(&l, cap, 0);
    handshake_stepped(&l);
    if (cap != TLS_SOCKETPAIR) {
        gnutls_record_set_timeout(l.s.s, 200);
        double t0 = tu_now();
        ssize_t r;
        int n = 0;
        do
            r = gnutls_record_recv(l.s.s, buf, sizeof buf);
        while (r == GNUTLS_E_AGAIN && ++n < 3 &&
               mempipe_gnutls_arm(l.s.s, &l.s.waker) == 1);
        assert_int_equal(GNUTLS_E_AGAIN, r);
        assert_true(tu_now() - t0 < 0.1);
    }
    make_blocking(&l.s);
    make_blocking(&l.c);
    gnutls_record_set_timeout(l.s.s, 50);
    double t0 = tu_now();
    ssize_t r = gnutls_record_recv(l.s.s, buf, sizeof buf);
    double dt = tu_now() - t0;
    if (r != GNUTLS_E_TIMEDOUT || dt < 0.045 || dt > 5)
        fail_msg("%s: %zd after %.3f s, want GNUTLS_E_TIMEDOUT after 0.05 s",
                 tls_kind(cap), r, dt);
    pthread_t th;
    gnutls_record_set_timeout(l.s.s, 10000);
    assert_int_equal(0, pthread_create(&th, NULL, send_hi_later, &l.c));
    r = gnutls_record_recv(l.s.s, buf, sizeof buf);
    pthread_join(th, NULL);
    if (r != 2 || memcmp(buf, "hi", 2) != 0)
        fail_msg("%s: %zd (%s), want \"hi\"", tls_kind(cap), r,
                 r < 0 ? gnutls_strerror_name((int)r) : "bytes");
    l.s.st.recvd = 2;
    tls_finish(&l.s.st, 0);
    outcome(&l, out);
    link_close(&l);
}

static void test_pull_timeout_blocking_waits_nonblocking_never(void **state)
{
    (void)state;
    const struct tls_outcome want = {0, 0, "TLS1.3", 0, 2, 0};
    tls_against_socketpair(record_timeouts, 0, &want);
}

static void test_throughput_vs_socketpair(void **state)
{
    (void)state;
    tu_watchdog_start("gnutls throughput");
    tls_bench("gnutls", "one thread, CPU time", echo_stepped, &clean_echo);
    tls_bench("gnutls", "two threads, wall time", echo_threads, &clean_echo);
    tu_watchdog_end();
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_transport_and_arm_argument_errors),
        cmocka_unit_test(test_pull_timeout_blocking_waits_nonblocking_never),
        cmocka_unit_test(test_tls13_echo_bye_one_thread_wakers),
        cmocka_unit_test(test_tls13_echo_bye_two_threads_blocking),
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
