/* SPDX-License-Identifier: MIT */
/*
 * The nghttp2 adapter, built against an installed mempipe: a client
 * session's pump writes the HTTP/2 connection preface into one end, and the
 * other end reads it. It calls libnghttp2 itself, so it links only if the
 * adapter's target (or mempipe-nghttp2.pc) brings nghttp2 along.
 */
#include <mempipe/nghttp2.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void wake(void *ctx)
{
    (void)ctx;
}

int main(void)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    mempipe *a, *b;
    nghttp2_session_callbacks *cb;
    nghttp2_session *s;
    char buf[64] = {0};
    if (mempipe_duplex(4096, &a, &b) != 0 ||
        nghttp2_session_callbacks_new(&cb) != 0)
        return 1;
    int ok = nghttp2_session_client_new(&s, cb, NULL) == 0;
    nghttp2_session_callbacks_del(cb);
    mempipe_waker w = {wake, NULL};
    /* The client waits for the server's SETTINGS: -EAGAIN, w armed. */
    ok = ok && nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0) == 0 &&
         mempipe_nghttp2_pump(s, a, &w) == -EAGAIN &&
         mempipe_poll_read(b, buf, sizeof buf, NULL) > 24 &&
         memcmp(buf, preface, 24) == 0;
    if (ok) {
        mempipe_nghttp2_release(s);
        nghttp2_session_del(s);
    }
    mempipe_close(a);
    mempipe_close(b);
    printf("mempipe-nghttp2 with nghttp2 %s: %s\n",
           nghttp2_version(0)->version_str, ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
