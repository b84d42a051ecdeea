/* SPDX-License-Identifier: MIT */
/*
 * TLS over an in-memory pipe with GnuTLS: a server thread and a client talk
 * TLS 1.3 over one mempipe duplex through the mempipe transport, exactly as
 * they would over a TCP socket. The certificate is self-signed (ECDSA P-256)
 * and made at start-up; the client verifies it.
 *
 *   build: cc gnutls_echo.c $(pkg-config --cflags --libs mempipe-gnutls)
 * -pthread
 */
#include <mempipe/gnutls.h>

#include <gnutls/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char prio[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3";

/* The server: blocking I/O on its own thread, echo until close_notify. */
static void *server(void *arg)
{
    gnutls_session_t s = arg;
    char buf[4096];
    ssize_t n;
    if (gnutls_handshake(s) < 0)
        return (void *)1;
    while ((n = gnutls_record_recv(s, buf, sizeof buf)) > 0)
        if (gnutls_record_send(s, buf, (size_t)n) != n)
            return (void *)1;
    if (n < 0) /* 0 is the client's close_notify */
        return (void *)1;
    gnutls_bye(s, GNUTLS_SHUT_WR); /* answer it */
    return NULL;
}

int main(void)
{
    mempipe *server_end, *client_end;
    if (mempipe_duplex(64 * 1024, &server_end, &client_end) != 0)
        return 1;

    /* A P-256 key and a self-signed certificate for "localhost". */
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t crt;
    gnutls_x509_privkey_init(&key);
    gnutls_x509_privkey_generate(
        key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
        0);
    gnutls_x509_crt_init(&crt);
    gnutls_x509_crt_set_version(crt, 3);
    gnutls_x509_crt_set_serial(crt, "\x01", 1);
    gnutls_x509_crt_set_activation_time(crt, time(NULL) - 60);
    gnutls_x509_crt_set_expiration_time(crt, time(NULL) + 3600);
    gnutls_x509_crt_set_dn(crt, "CN=localhost", NULL);
    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost",
                                         9, GNUTLS_FSAN_SET);
    gnutls_x509_crt_set_key(crt, key);
    gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);

    gnutls_certificate_credentials_t scred, ccred;
    gnutls_certificate_allocate_credentials(&scred);
    gnutls_certificate_set_x509_key(scred, &crt, 1, key);
    gnutls_certificate_allocate_credentials(&ccred);
    gnutls_certificate_set_x509_trust(ccred, &crt, 1); /* trust it */

    gnutls_session_t s, c;
    gnutls_init(&s, GNUTLS_SERVER);
    gnutls_priority_set_direct(s, prio, NULL);
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, scred);
    gnutls_init(&c, GNUTLS_CLIENT);
    gnutls_priority_set_direct(c, prio, NULL);
    gnutls_credentials_set(c, GNUTLS_CRD_CERTIFICATE, ccred);
    gnutls_server_name_set(c, GNUTLS_NAME_DNS, "localhost", 9);
    gnutls_session_set_verify_cert(c, "localhost", 0);

    /* One end per session, blocking because each side has its own thread. */
    mempipe_gnutls_set_transport(s, server_end, MEMPIPE_GNUTLS_BLOCKING);
    mempipe_gnutls_set_transport(c, client_end, MEMPIPE_GNUTLS_BLOCKING);

    pthread_t th;
    pthread_create(&th, NULL, server, s);
    int rc = 1, hs = gnutls_handshake(c);
    if (hs == 0) {
        const char msg[] = "hello over TLS 1.3 in memory";
        char echo[sizeof msg] = {0};
        size_t got = 0;
        ssize_t n;
        gnutls_record_send(c, msg, strlen(msg));
        while (got < strlen(msg) &&
               (n = gnutls_record_recv(c, echo + got, strlen(msg) - got)) > 0)
            got += (size_t)n;
        char *desc = gnutls_session_get_desc(c);
        printf("%s: sent \"%s\", got back \"%s\"\n", desc, msg, echo);
        gnutls_free(desc);
        rc = strcmp(msg, echo) != 0;
        gnutls_bye(c, GNUTLS_SHUT_RDWR); /* close_notify, and the reply */
    } else {
        fprintf(stderr, "handshake: %s\n", gnutls_strerror(hs));
    }
    void *srv_failed;
    pthread_join(th, &srv_failed);
    /* Release the adapter's state, then the sessions, then the ends. */
    mempipe_gnutls_set_transport(s, NULL, 0);
    mempipe_gnutls_set_transport(c, NULL, 0);
    gnutls_deinit(s);
    gnutls_deinit(c);
    mempipe_close(server_end);
    mempipe_close(client_end);
    gnutls_certificate_free_credentials(scred);
    gnutls_certificate_free_credentials(ccred);
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    return rc || srv_failed != NULL;
}
