/* SPDX-License-Identifier: MIT */
/*
 * A tiny HTTP/1.0 responder written against a mempipe end: the code that
 * bridge_tcp.c serves on 127.0.0.1 through a bridge, and that
 * tests/bridge_test.c drives in memory, unchanged.
 */
#ifndef MEMPIPE_EXAMPLE_HTTP10_H
#define MEMPIPE_EXAMPLE_HTTP10_H

#include <mempipe.h>

#include <stdio.h>
#include <string.h>

/*
 * Reads one request from end (up to the blank line), answers it and shuts
 * its side down: "GET /hello" gets 200 and "hello from mempipe\n", any
 * other path 404, anything else 400. Returns the status sent, or a
 * negative errno if the connection failed first. Blocking calls; the
 * caller closes end after.
 */
static int http10_serve(mempipe *end)
{
    char req[2048];
    size_t len = 0;
    while (len < sizeof req - 1) {
        ssize_t n = mempipe_read(end, req + len, sizeof req - 1 - len);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL || strstr(req, "\n\n") != NULL)
            break;
    }
    req[len] = '\0';
    int status = 400;
    const char *body = "bad request\n";
    if (strncmp(req, "GET ", 4) == 0) {
        char path[256] = "";
        if (sscanf(req + 4, "%255s", path) == 1 &&
            strcmp(path, "/hello") == 0) {
            status = 200;
            body = "hello from mempipe\n";
        } else {
            status = 404;
            body = "not found\n";
        }
    }
    char resp[512];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.0 %d %s\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     status,
                     status == 200   ? "OK"
                     : status == 404 ? "Not Found"
                                     : "Bad Request",
                     strlen(body), body);
    ssize_t w = mempipe_write(end, resp, (size_t)n);
    if (w < 0)
        return (int)w;
    mempipe_shutdown(end);
    return status;
}

#endif
