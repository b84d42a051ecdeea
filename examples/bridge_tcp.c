/* SPDX-License-Identifier: MIT */
/*
 * An HTTP/1.0 responder written against a mempipe end (http10.h), served
 * on 127.0.0.1 through a bridge: each accepted TCP connection is bridged
 * to one end of a duplex (mempipe_bridge_fd), and the responder serves the
 * other end with blocking calls, exactly as tests/bridge_test.c drives it
 * in memory.
 *
 *   bridge_tcp [PORT [COUNT]]   PORT 0 (default): any free port, printed
 *                               first; COUNT connections, then exit
 *                               (default: serve for ever)
 *
 * Then: curl http://127.0.0.1:PORT/hello
 */
#include "http10.h"

#include <mempipe.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    long count = argc > 2 ? atol(argv[2]) : -1;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int on = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((unsigned short)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(l, 16) != 0 ||
        getsockname(l, (struct sockaddr *)&sa, &len) != 0) {
        perror("bridge_tcp: listen");
        return 1;
    }
    printf("%d\n", ntohs(sa.sin_port));
    fflush(stdout);
    for (long i = 0; count < 0 || i < count; i++) {
        int c = accept(l, NULL, NULL);
        if (c < 0) {
            perror("bridge_tcp: accept");
            return 1;
        }
        mempipe *server = NULL, *wire = NULL;
        mempipe_bridge *b = NULL;
        int rc = mempipe_duplex(64 * 1024, &server, &wire);
        if (rc == 0)
            rc = mempipe_bridge_fd(wire, c, &b); /* takes wire and c */
        if (rc != 0) { /* nothing was taken: ours to close */
            fprintf(stderr, "bridge_tcp: %s\n", mempipe_strerror(rc));
            close(c);
            if (server != NULL)
                mempipe_close(server);
            if (wire != NULL)
                mempipe_close(wire);
            continue;
        }
        int status = http10_serve(server); /* the in-memory code, as is */
        mempipe_close(server);
        rc = mempipe_bridge_join(b);
        fprintf(stderr, "bridge_tcp: served %d, bridge %s\n", status,
                rc == 0 ? "closed cleanly" : mempipe_strerror(rc));
    }
    close(l);
    return 0;
}
