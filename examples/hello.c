/* SPDX-License-Identifier: MIT */
/* hello.c: a request and a reply over an in-memory "socketpair". */
#include <mempipe.h>
#include <stdio.h>

int main(void)
{
    mempipe *client, *server;
    char buf[64];
    ssize_t n;

    if (mempipe_duplex(4096, &client, &server) < 0) /* like socketpair() */
        return 1;
    mempipe_write(client, "ping\n", 5); /* fits in 4096 bytes: no wait */
    mempipe_shutdown(client);           /* half-close: "no more requests" */

    while ((n = mempipe_read(server, buf, sizeof buf)) > 0) /* until EOF */
        printf("server got %zd bytes: %.*s", n, (int)n, buf);
    mempipe_write(server, "pong\n", 5);
    mempipe_close(server); /* the client reads "pong", then EOF */

    while ((n = mempipe_read(client, buf, sizeof buf)) > 0)
        printf("client got %zd bytes: %.*s", n, (int)n, buf);
    n = mempipe_poll_write(client, "x", 1, NULL); /* never SIGPIPE */
    printf("then EOF; a write now: %s\n", mempipe_strerror((int)n));
    mempipe_close(client);
    return 0;
}
