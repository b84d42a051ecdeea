/* SPDX-License-Identifier: MIT */
/*
 * A libevent loop serves an echo over a mempipe end while a plain thread,
 * using blocking calls, talks to it from the other end.
 *
 *   build: cc event_echo.c $(pkg-config --cflags --libs mempipe-event) -pthread
 */
#include <mempipe/event.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct server {
    mempipe *end;
    char buf[4096];
    size_t len, off; /* buf[off..len) is still to echo */
};

static void on_ready(mempipe_event_watch *w, short what, void *arg)
{
    struct server *s = arg;
    if (what == EV_READ) {
        ssize_t n = mempipe_poll_read(s->end, s->buf, sizeof s->buf, NULL);
        if (n == 0) { /* the client is done: so are we */
            mempipe_shutdown(s->end);
            mempipe_event_watch_free(w); /* nothing left: the loop ends */
            return;
        }
        if (n > 0)
            s->len = (size_t)n, s->off = 0;
    } else {
        ssize_t n =
            mempipe_poll_write(s->end, s->buf + s->off, s->len - s->off, NULL);
        if (n > 0 && (s->off += (size_t)n) == s->len)
            s->len = s->off = 0;
    }
    /* -EAGAIN above just means "not yet": the watch calls us again.
     * Read while the buffer is empty, write while it is not. */
    mempipe_event_watch_del(w, s->len == 0 ? EV_WRITE : EV_READ);
    mempipe_event_watch_add(w, s->len == 0 ? EV_READ : EV_WRITE);
}

static void *client(void *arg)
{
    mempipe *end = arg;
    const char *lines[] = {"hello\n", "from a thread\n", "to libevent\n"};
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
    struct event_base *base = event_base_new();
    mempipe_event_watch *w =
        base ? mempipe_event_watch_new(base, s.end, on_ready, &s) : NULL;
    if (w == NULL || mempipe_event_watch_add(w, EV_READ) != 0) {
        fprintf(stderr, "cannot watch the end\n");
        return 1;
    }
    pthread_t th;
    pthread_create(&th, NULL, client, client_end);
    event_base_dispatch(base); /* returns once the watch is freed */
    pthread_join(th, NULL);
    mempipe_close(s.end); /* after the watch: the end owns the fds */
    mempipe_close(client_end);
    event_base_free(base);
    return 0;
}
