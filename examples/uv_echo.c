/* SPDX-License-Identifier: MIT */
/*
 * A libuv loop serves an echo over a mempipe end while a plain thread, using
 * blocking calls, talks to it from the other end: the shape of an in-process
 * server tested without sockets.
 *
 *   build: cc uv_echo.c $(pkg-config --cflags --libs mempipe-uv) -pthread
 */
#define _POSIX_C_SOURCE 200809L /* uv.h needs POSIX types under -std=c11 */
#include <mempipe/uv.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct server {
    mempipe *end;
    mempipe_uv_watch watch;
    char buf[4096];
    size_t len, off; /* buf[off..len) is still to echo */
};

static void on_ready(mempipe_uv_watch *w, int status, int events)
{
    struct server *s = w->data;
    if (status < 0) {
        fprintf(stderr, "uv_poll: %s\n", uv_strerror(status));
        mempipe_uv_watch_close(w, NULL);
        return;
    }
    if ((events & MEMPIPE_UV_READABLE) && s->len == 0) {
        ssize_t n = mempipe_poll_read(s->end, s->buf, sizeof s->buf, NULL);
        if (n == 0) { /* the client is done: so are we */
            mempipe_shutdown(s->end);
            mempipe_uv_watch_close(w, NULL);
            return;
        }
        if (n > 0)
            s->len = (size_t)n, s->off = 0;
    }
    if ((events & MEMPIPE_UV_WRITABLE) && s->off < s->len) {
        ssize_t n =
            mempipe_poll_write(s->end, s->buf + s->off, s->len - s->off, NULL);
        if (n > 0 && (s->off += (size_t)n) == s->len)
            s->len = s->off = 0;
    }
    /* -EAGAIN above just means "not yet": the watch calls us again. */
    mempipe_uv_watch_start(
        w, s->len == 0 ? MEMPIPE_UV_READABLE : MEMPIPE_UV_WRITABLE, on_ready);
}

static void *client(void *arg)
{
    mempipe *end = arg;
    const char *lines[] = {"hello\n", "from a thread\n", "to a libuv loop\n"};
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        char echo[64];
        size_t len = strlen(lines[i]), got = 0;
        mempipe_write(end, lines[i], len);
        while (got < len) {
            ssize_t n = mempipe_read(end, echo + got, len - got);
            if (n <= 0)
                return NULL;
            got += (size_t)n;
        }
        printf("client got back: %.*s", (int)got, echo);
    }
    mempipe_shutdown(end);
    return NULL;
}

int main(void)
{
    struct server s = {0};
    mempipe *client_end;
    if (mempipe_duplex(64 * 1024, &s.end, &client_end) != 0)
        return 1;
    uv_loop_t *loop = uv_default_loop();
    s.watch.data = &s;
    int rc = mempipe_uv_watch_init(loop, &s.watch, s.end);
    if (rc == 0)
        rc = mempipe_uv_watch_start(&s.watch, MEMPIPE_UV_READABLE, on_ready);
    if (rc < 0) {
        fprintf(stderr, "watch: %s\n", mempipe_strerror(rc));
        return 1;
    }
    pthread_t th;
    pthread_create(&th, NULL, client, client_end);
    uv_run(loop, UV_RUN_DEFAULT); /* returns once the watch is closed */
    pthread_join(th, NULL);
    mempipe_close(s.end); /* after the watch: the end owns the fds */
    mempipe_close(client_end);
    uv_loop_close(loop);
    return 0;
}
