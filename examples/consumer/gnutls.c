/* SPDX-License-Identifier: MIT */
/*
 * The GnuTLS adapter, built against an installed mempipe: a client session
 * over one end starts its handshake, and its ClientHello comes out of the
 * other end. It calls GnuTLS itself, so it links only if the adapter's
 * target (or mempipe-gnutls.pc) brings GnuTLS along.
 */
#include <mempipe/gnutls.h>

#include <stdio.h>

int main(void)
{
    mempipe *a, *b;
    gnutls_session_t s;
    gnutls_certificate_credentials_t cred;
    unsigned char rec[5];
    if (mempipe_duplex(64 * 1024, &a, &b) != 0 ||
        gnutls_certificate_allocate_credentials(&cred) < 0 ||
        gnutls_init(&s, GNUTLS_CLIENT) < 0 ||
        gnutls_set_default_priority(s) < 0 ||
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0 ||
        mempipe_gnutls_set_transport(s, a, 0) != 0)
        return 1;
    /* Nothing comes back: the handshake waits (non-blocking transport). */
    int hs = gnutls_handshake(s);
    /* A TLS record of type 22 (handshake): the ClientHello. */
    int ok = hs == GNUTLS_E_AGAIN && mempipe_gnutls_get_end(s) == a &&
             mempipe_poll_read(b, rec, sizeof rec, NULL) == sizeof rec &&
             rec[0] == 22 && rec[1] == 3;
    mempipe_gnutls_set_transport(s, NULL, 0);
    gnutls_deinit(s);
    gnutls_certificate_free_credentials(cred);
    mempipe_close(a);
    mempipe_close(b);
    printf("mempipe-gnutls with GnuTLS %s: %s\n", gnutls_check_version(NULL),
           ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
