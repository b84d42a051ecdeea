/* SPDX-License-Identifier: MIT */
/*
 * TLS over an in-memory pipe: a server thread and a client talk TLS 1.3 over
 * one mempipe duplex through mempipe BIOs, exactly as they would over a TCP
 * socket BIO. The certificate is self-signed and made at start-up.
 *
 *   build: cc tls_echo.c $(pkg-config --cflags --libs mempipe-openssl) -pthread
 */
#include <mempipe/openssl.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

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

static X509 *make_cert(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
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
    X509_add_ext(x, san, -1);
    X509_EXTENSION_free(san);
    X509_sign(x, key, EVP_sha256());
    return x;
}

/* The server: blocking I/O on its own thread, echo until close_notify. */
static void *server(void *arg)
{
    SSL *ssl = arg;
    char buf[4096];
    size_t n, w;
    if (SSL_accept(ssl) != 1)
        goto fail;
    while (SSL_read_ex(ssl, buf, sizeof buf, &n) == 1)
        if (SSL_write_ex(ssl, buf, n, &w) != 1)
            goto fail;
    if (SSL_get_error(ssl, 0) != SSL_ERROR_ZERO_RETURN)
        goto fail;
    SSL_shutdown(ssl); /* answer the client's close_notify */
    return NULL;
fail:
    ERR_print_errors_fp(stderr);
    return (void *)1;
}

int main(void)
{
    mempipe *server_end, *client_end;
    if (mempipe_duplex(64 * 1024, &server_end, &client_end) != 0)
        return 1;
    EVP_PKEY *key = make_key();
    X509 *cert = make_cert(key);

    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION);
    SSL_CTX_use_certificate(sctx, cert);
    SSL_CTX_use_PrivateKey(sctx, key);
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), cert); /* trust it */
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);

    /* One BIO per end, blocking because each side has its own thread. */
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    BIO *sb = mempipe_bio_new(server_end), *cb = mempipe_bio_new(client_end);
    BIO_set_nbio(sb, 0);
    BIO_set_nbio(cb, 0);
    SSL_set_bio(s, sb, sb);
    SSL_set_bio(c, cb, cb);
    SSL_set1_host(c, "localhost");

    pthread_t th;
    pthread_create(&th, NULL, server, s);
    int rc = 1;
    if (SSL_connect(c) == 1) {
        const char msg[] = "hello over TLS 1.3 in memory";
        char echo[sizeof msg] = {0};
        size_t n, got = 0;
        SSL_write_ex(c, msg, strlen(msg), &n);
        while (got < strlen(msg) &&
               SSL_read_ex(c, echo + got, strlen(msg) - got, &n) == 1)
            got += n;
        printf("%s, cipher %s: sent \"%s\", got back \"%s\"\n",
               SSL_get_version(c), SSL_get_cipher(c), msg, echo);
        rc = strcmp(msg, echo) != 0;
        SSL_shutdown(c); /* send close_notify; the server's reply... */
        SSL_shutdown(c); /* ...is read here */
    } else {
        ERR_print_errors_fp(stderr);
    }
    void *srv_failed;
    pthread_join(th, &srv_failed);
    /* The BIOs are BIO_NOCLOSE: free the SSLs (and BIOs), then the ends. */
    SSL_free(s);
    SSL_free(c);
    mempipe_close(server_end);
    mempipe_close(client_end);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc || srv_failed != NULL;
}
