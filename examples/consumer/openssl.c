/* SPDX-License-Identifier: MIT */
/*
 * The OpenSSL adapter, built against an installed mempipe: bytes written to
 * one end's BIO come out of the other's. It calls libssl and libcrypto
 * itself, so it links only if the adapter's target (or mempipe-openssl.pc)
 * brings OpenSSL along.
 */
#include <mempipe/openssl.h>

#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    mempipe *a, *b;
    char buf[16] = {0};
    if (OPENSSL_init_ssl(0, NULL) != 1 || mempipe_duplex(64, &a, &b) != 0)
        return 1;
    BIO *wa = mempipe_bio_new(a), *rb = mempipe_bio_new(b);
    int ok = wa != NULL && rb != NULL &&
             BIO_write(wa, "over a BIO", 10) == 10 &&
             BIO_read(rb, buf, sizeof buf - 1) == 10 &&
             strcmp(buf, "over a BIO") == 0;
    BIO_free(wa);
    BIO_free(rb);
    mempipe_close(a);
    mempipe_close(b);
    printf("mempipe-openssl with %s: %s\n", OpenSSL_version(OPENSSL_VERSION),
           ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
