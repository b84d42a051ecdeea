/* SPDX-License-Identifier: MIT */
/*
 * The mbedTLS callbacks, built against an installed mempipe: a client
 * context over one end starts its handshake, and its ClientHello comes out
 * of the other end. It calls libmbedtls, libmbedx509 and libmbedcrypto
 * itself, so it links only if the adapter's target (or mempipe-mbedtls.pc,
 * which lists them: mbedTLS ships no .pc file) brings them along.
 */
#include <mempipe/mbedtls.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>

int main(void)
{
    mempipe *a, *b;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca; /* libmbedx509's, though empty */
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    unsigned char rec[5];
    char version[32];
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_x509_crt_init(&ca);
    mbedtls_ssl_config_init(&conf);
    mbedtls_ssl_init(&ssl);
    if (mempipe_duplex(64 * 1024, &a, &b) != 0 ||
        mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0) !=
            0 ||
        mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT,
                                    MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0)
        return 1;
    mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
    mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
    if (mbedtls_ssl_setup(&ssl, &conf) != 0)
        return 1;
    mbedtls_ssl_set_bio(&ssl, a, mempipe_mbedtls_send, mempipe_mbedtls_recv,
                        NULL);
    /* Nothing comes back: the handshake waits (non-blocking callbacks). */
    int hs = mbedtls_ssl_handshake(&ssl);
    /* A TLS record of type 22 (handshake): the ClientHello. */
    int ok = hs == MBEDTLS_ERR_SSL_WANT_READ &&
             mempipe_poll_read(b, rec, sizeof rec, NULL) == sizeof rec &&
             rec[0] == 22 && rec[1] == 3;
    mbedtls_ssl_free(&ssl);
    mbedtls_ssl_config_free(&conf);
    mbedtls_x509_crt_free(&ca);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    mempipe_close(a);
    mempipe_close(b);
    mbedtls_version_get_string(version);
    printf("mempipe-mbedtls with mbedTLS %s: %s\n", version,
           ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
