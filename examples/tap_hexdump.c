/* SPDX-License-Identifier: MIT */
/*
 * tap_hexdump.c: see every byte an end writes and reads (mempipe_set_tap),
 * hex-dumped as `hexdump -C` does, on a short request/response exchange.
 * The tap runs inside the client's calls, after the bytes moved; it must not
 * call into the client's end, but it may print. At the end the dumped byte
 * counts are checked against the end's statistics (mempipe_get_stats).
 * Build: cc -std=c11 tap_hexdump.c -lmempipe
 */
#include <mempipe.h>

#include <stdio.h>
#include <string.h>

struct dump {
    const char *who;
    unsigned long long off[2]; /* stream offset per direction */
};

/* One call's bytes: 16 per line, offset, hex in two groups of 8, text. */
static void hexdump_tap(void *ctx, int dir, const void *data, size_t len)
{
    struct dump *d = ctx;
    const unsigned char *p = data;
    printf("%s %s %zu bytes:\n", d->who,
           dir == MEMPIPE_TAP_WRITE ? "wrote" : "read", len);
    for (size_t i = 0; i < len; i += 16) {
        printf("  %08llx ", d->off[dir] + i);
        for (size_t j = 0; j < 16; j++) {
            if (j == 8)
                putchar(' ');
            if (i + j < len)
                printf(" %02x", p[i + j]);
            else
                printf("   ");
        }
        printf("  |");
        for (size_t j = 0; j < 16 && i + j < len; j++)
            putchar(p[i + j] >= 0x20 && p[i + j] < 0x7f ? p[i + j] : '.');
        printf("|\n");
    }
    d->off[dir] += len;
}

int main(void)
{
    static const char request[] = "GET /status HTTP/1.1\r\n"
                                  "Host: example.test\r\n\r\n";
    static const char response[] = "HTTP/1.1 200 OK\r\n"
                                   "Content-Length: 3\r\n\r\nok\n";
    mempipe *client, *server;
    struct dump d = {"client", {0, 0}};
    char buf[256];
    size_t got = 0;
    ssize_t n;

    if (mempipe_duplex(4096, &client, &server) < 0 ||
        mempipe_set_tap(client, hexdump_tap, &d) < 0)
        return 1;

    /* The client asks; the server (this thread too) reads and answers. */
    mempipe_write(client, request, sizeof request - 1);
    n = mempipe_read(server, buf, sizeof buf); /* the request is buffered */
    if (n != (ssize_t)(sizeof request - 1))
        return 1;
    mempipe_write(server, response, sizeof response - 1);
    mempipe_close(server); /* the client reads the response, then EOF */
    while ((n = mempipe_read(client, buf, sizeof buf)) > 0)
        got += (size_t)n;

    mempipe_stats st;
    int rc = mempipe_get_stats(client, &st);
    mempipe_close(client);
    if (rc < 0 || got != sizeof response - 1 ||
        d.off[MEMPIPE_TAP_WRITE] != st.bytes_written ||
        d.off[MEMPIPE_TAP_READ] != st.bytes_read ||
        st.bytes_written != sizeof request - 1) {
        printf("tap_hexdump: the dump missed bytes\n");
        return 1;
    }
    printf("tap_hexdump: dumped %llu bytes written, %llu read\n",
           d.off[MEMPIPE_TAP_WRITE], d.off[MEMPIPE_TAP_READ]);
    return 0;
}
