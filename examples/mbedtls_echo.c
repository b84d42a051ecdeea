/* SPDX-License-Identifier: MIT */
/*
 * TLS over an in-memory pipe with mbedTLS: a server thread and a client talk
 * TLS 1.2 over one mempipe duplex through the mempipe callbacks, exactly as
 * they would over a TCP socket with mbedtls_net_send/recv. The certificate
 * is self-signed (ECDSA P-256) and made at start-up; the client verifies it.
 *
 *   build: cc mbedtls_echo.c $(pkg-config --cflags --libs mempipe-mbedtls)
 *          -pthread
 */
#include <mempipe/mbedtls.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static mbedtls_ctr_drbg_context drbg;
static pthread_mutex_t drbg_mu = PTHREAD_MUTEX_INITIALIZER;

/* One random generator for both threads, so under a lock. */
static int rng(void *ctx, unsigned char *out, size_t len)
{
    pthread_mutex_lock(&drbg_mu);
    int rc = mbedtls_ctr_drbg_random(ctx, out, len);
    pthread_mutex_unlock(&drbg_mu);
    return rc;
}

/* A P-256 key and a self-signed certificate for "localhost". */
static int make_cert(mbedtls_pk_context *key, mbedtls_x509_crt *crt)
{
    unsigned char der[1024];
    mbedtls_x509write_cert w;
    mbedtls_mpi serial;
    mbedtls_x509write_crt_init(&w);
    mbedtls_mpi_init(&serial);
    int len = -1;
    if (mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) ==
            0 &&
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*key), rng,
                            &drbg) == 0 &&
        mbedtls_mpi_lset(&serial, 1) == 0 &&
        mbedtls_x509write_crt_set_serial(&w, &serial) == 0 &&
        mbedtls_x509write_crt_set_subject_name(&w, "CN=localhost") == 0 &&
        mbedtls_x509write_crt_set_issuer_name(&w, "CN=localhost") == 0 &&
        mbedtls_x509write_crt_set_validity(&w, "20200101000000",
                                           "20991231235959") == 0) {
        mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
        mbedtls_x509write_crt_set_subject_key(&w, key);
        mbedtls_x509write_crt_set_issuer_key(&w, key);
        len = mbedtls_x509write_crt_der(&w, der, sizeof der, rng, &drbg);
    }
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&w);
    /* The DER is written at the end of the buffer. */
    return len > 0 ? mbedtls_x509_crt_parse_der(crt, der + sizeof der - len,
                                                (size_t)len)
                   : -1;
}

/* A TLS 1.2 endpoint's configuration. */
static int configure(mbedtls_ssl_config *conf, int endpoint)
{
    if (mbedtls_ssl_config_defaults(conf, endpoint,
                                    MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0)
        return -1;
    mbedtls_ssl_conf_rng(conf, rng, &drbg);
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    return 0;
}

/* A context over end, with the blocking callbacks (one thread a side). */
static int attach(mbedtls_ssl_context *ssl, const mbedtls_ssl_config *conf,
                  mempipe *end)
{
    if (mbedtls_ssl_setup(ssl, conf) != 0)
        return -1;
    /* Reads wait (mbedtls_ssl_conf_read_timeout: 0, for ever). */
    mbedtls_ssl_set_bio(ssl, end, mempipe_mbedtls_send_blocking, NULL,
                        mempipe_mbedtls_recv_timeout);
    return 0;
}

/* The server: echo until the client's close_notify, then answer it. */
static void *server(void *arg)
{
    mbedtls_ssl_context *ssl = arg;
    unsigned char buf[4096];
    int n;
    if (mbedtls_ssl_handshake(ssl) != 0)
        return (void *)1;
    while ((n = mbedtls_ssl_read(ssl, buf, sizeof buf)) > 0)
        if (mbedtls_ssl_write(ssl, buf, (size_t)n) != n)
            return (void *)1;
    if (n != MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        return (void *)1;
    mbedtls_ssl_close_notify(ssl);
    return NULL;
}

int main(void)
{
    mempipe *server_end, *client_end;
    mbedtls_entropy_context entropy;
    mbedtls_pk_context key;
    mbedtls_x509_crt crt;
    mbedtls_ssl_config sconf, cconf;
    mbedtls_ssl_context s, c;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_pk_init(&key);
    mbedtls_x509_crt_init(&crt);
    mbedtls_ssl_config_init(&sconf);
    mbedtls_ssl_config_init(&cconf);
    mbedtls_ssl_init(&s);
    mbedtls_ssl_init(&c);

    int rc = 1;
    if (mempipe_duplex(64 * 1024, &server_end, &client_end) != 0)
        return 1;
    /* The server shows the certificate; the client trusts it, and only it. */
    if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0) !=
            0 ||
        make_cert(&key, &crt) != 0 ||
        configure(&sconf, MBEDTLS_SSL_IS_SERVER) != 0 ||
        mbedtls_ssl_conf_own_cert(&sconf, &crt, &key) != 0 ||
        configure(&cconf, MBEDTLS_SSL_IS_CLIENT) != 0)
        goto out;
    mbedtls_ssl_conf_ca_chain(&cconf, &crt, NULL);
    mbedtls_ssl_conf_authmode(&cconf, MBEDTLS_SSL_VERIFY_REQUIRED);
    if (attach(&s, &sconf, server_end) != 0 ||
        attach(&c, &cconf, client_end) != 0 ||
        mbedtls_ssl_set_hostname(&c, "localhost") != 0)
        goto out;

    pthread_t th;
    pthread_create(&th, NULL, server, &s);
    int hs = mbedtls_ssl_handshake(&c);
    if (hs == 0) {
        const char msg[] = "hello over TLS 1.2 in memory";
        char echo[sizeof msg] = {0};
        size_t got = 0;
        int n;
        mbedtls_ssl_write(&c, (const unsigned char *)msg, strlen(msg));
        while (got < strlen(msg) &&
               (n = mbedtls_ssl_read(&c, (unsigned char *)echo + got,
                                     strlen(msg) - got)) > 0)
            got += (size_t)n;
        printf("%s, %s: sent \"%s\", got back \"%s\"\n",
               mbedtls_ssl_get_version(&c), mbedtls_ssl_get_ciphersuite(&c),
               msg, echo);
        rc = strcmp(msg, echo) != 0;
        /* close_notify, and the server's answer to it. */
        unsigned char one;
        if (mbedtls_ssl_close_notify(&c) != 0 ||
            mbedtls_ssl_read(&c, &one, 1) != MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
            rc = 1;
    } else {
        fprintf(stderr, "handshake: -0x%04x\n", (unsigned)-hs);
        mempipe_close(client_end); /* the server's handshake fails too */
        client_end = NULL;
    }
    void *srv_failed;
    pthread_join(th, &srv_failed);
    rc = rc || srv_failed != NULL;
out:
    /* The contexts, then the ends (the callbacks' contexts). */
    mbedtls_ssl_free(&s);
    mbedtls_ssl_free(&c);
    mempipe_close(server_end);
    mempipe_close(client_end);
    mbedtls_ssl_config_free(&sconf);
    mbedtls_ssl_config_free(&cconf);
    mbedtls_x509_crt_free(&crt);
    mbedtls_pk_free(&key);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    return rc;
}
