/* SPDX-License-Identifier: MIT */
/*
 * script_http.c: a tiny HTTP/1.0 client, tested against a scripted server
 * (mempipe/script.h). The client is ordinary blocking code on a mempipe end;
 * the script plays the server on the other end, on its own thread.
 *
 * The first run follows the script; the second asks for the wrong path and
 * the script reports the mismatch.
 */
#include <mempipe.h>
#include <mempipe/script.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The code under test: GET path, read the reply until the server closes.
 * Returns the reply's length, or -1. */
static long http_get(mempipe *conn, const char *path, char *reply, size_t cap)
{
    char req[256];
    size_t len = 0;
    ssize_t n;
    int rlen = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
    if (rlen < 0 || (size_t)rlen >= sizeof req)
        return -1;
    if (mempipe_write(conn, req, (size_t)rlen) != rlen)
        return -1;
    while (len + 1 < cap &&
           (n = mempipe_read(conn, reply + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    reply[len] = '\0';
    return (long)len;
}

struct server {
    mempipe_script *script;
    int rc;
    char error[512];
};

static void *serve(void *arg)
{
    struct server *sv = arg;
    const char *msg;
    sv->rc = mempipe_script_run(sv->script);
    msg = mempipe_script_error(sv->script);
    snprintf(sv->error, sizeof sv->error, "%s", msg ? msg : "");
    /* Closes the server's end: a client still waiting reads EOF. */
    mempipe_script_free(sv->script);
    return NULL;
}

/* One client run against the script of a server that serves /hello. */
static int run(const char *path)
{
    static const char req[] = "GET /hello HTTP/1.0\r\n\r\n";
    static const char resp[] = "HTTP/1.0 200 OK\r\n\r\nhello, world\n";
    mempipe *client, *server;
    struct server sv;
    pthread_t t;
    char reply[256];
    long n;

    if (mempipe_duplex(64, &client, &server) < 0)
        return -ENOMEM;
    sv.script = mempipe_script_new(server); /* it owns server now */
    if (sv.script == NULL) {
        mempipe_close(server);
        mempipe_close(client);
        return -ENOMEM;
    }
    if (mempipe_script_expect(sv.script, req, sizeof req - 1) < 0 ||
        mempipe_script_send(sv.script, resp, sizeof resp - 1) < 0 ||
        mempipe_script_close(sv.script) < 0 ||
        pthread_create(&t, NULL, serve, &sv) != 0) {
        mempipe_script_free(sv.script);
        mempipe_close(client);
        return -EAGAIN;
    }

    n = http_get(client, path, reply, sizeof reply);
    pthread_join(t, NULL);
    mempipe_close(client);
    printf("GET %s: client got %ld bytes%s%s", path, n, n > 0 ? ": " : "",
           n > 0 ? reply : "\n");
    if (sv.rc != 0)
        printf("  script: %s\n  %s\n", mempipe_strerror(sv.rc), sv.error);
    else
        printf("  script: all steps matched\n");
    return sv.rc;
}

int main(void)
{
    if (run("/hello") != 0)
        return 1;
    if (run("/hullo") != -EPROTO) /* the script must catch this one */
        return 1;
    return 0;
}
