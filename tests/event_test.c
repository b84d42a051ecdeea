/* SPDX-License-Identifier: MIT */
/*
 * The libevent adapter (include/mempipe/event.h): an event_base echoes
 * 16 MiB back to peer threads that use blocking calls, once through a watch
 * (the end's fds as persistent events) and once through the event_active
 * waker; readiness for EOF and EPIPE; add/del/free and bad arguments.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/thread.h>

#include "mempipe/event.h"

#define ECHO_TOTAL (16u << 20)
#define PIPE_CAP   (16u << 10)
#define ECHO_BUF   (8u << 10)

/* ------------------------------------------------------------------------ */
/* Echo through a watch                                                      */
/* ------------------------------------------------------------------------ */

struct watch_echo {
    mempipe *end;
    mempipe_event_watch *w;
    unsigned char buf[ECHO_BUF];
    size_t len, off; /* buf[off..len) still to echo */
    int eof, freed;
    size_t echoed;
};

/*
 * Reads only into an empty buffer and writes it all back before reading
 * again, so the watched set changes all the time: EV_READ while the buffer
 * is empty, EV_WRITE while it holds bytes.
 */
static void on_echo_ready(mempipe_event_watch *w, short what, void *arg)
{
    struct watch_echo *e = arg;
    assert_ptr_equal(e->end, mempipe_event_watch_end(w));
    if (what == EV_READ) {
        assert_int_equal(0, e->len); /* EV_READ is only watched when empty */
        ssize_t n = mempipe_poll_read(e->end, e->buf, sizeof e->buf, NULL);
        if (n == 0)
            e->eof = 1;
        else if (n > 0)
            e->len = (size_t)n, e->off = 0;
        else
            assert_rc(-EAGAIN, n); /* a late readiness: poll again later */
    } else {
        assert_int_equal(EV_WRITE, what);
        ssize_t n =
            mempipe_poll_write(e->end, e->buf + e->off, e->len - e->off, NULL);
        if (n > 0) {
            e->off += (size_t)n;
            e->echoed += (size_t)n;
            if (e->off == e->len)
                e->off = e->len = 0;
        } else {
            assert_rc(-EAGAIN, n);
        }
    }
    if (e->eof) {
        assert_rc(0, mempipe_shutdown(e->end));
        mempipe_event_watch_free(w); /* nothing pending: the loop returns */
        e->freed = 1;
        return;
    }
    if (e->len == 0) {
        assert_rc(0, mempipe_event_watch_del(w, EV_WRITE));
        assert_rc(0, mempipe_event_watch_add(w, EV_READ));
    } else {
        assert_rc(0, mempipe_event_watch_del(w, EV_READ));
        assert_rc(0, mempipe_event_watch_add(w, EV_WRITE));
    }
}

static void test_event_watch_echo_16MiB_with_blocking_peer(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct watch_echo *e = calloc(1, sizeof *e);
    assert_non_null(e);
    mempipe *peer_end;
    assert_rc(0, mempipe_duplex(PIPE_CAP, &e->end, &peer_end));
    e->w = mempipe_event_watch_new(base, e->end, on_echo_ready, e);
    assert_non_null(e->w);
    assert_rc(0, mempipe_event_watch_add(e->w, EV_READ));
    struct tu_peer p;
    tu_peer_start(&p, peer_end, ECHO_TOTAL, 21);
    /* 1: it returned because nothing was left pending (the watch freed). */
    assert_int_equal(1, event_base_dispatch(base));
    tu_peer_join(&p);
    assert_int_equal(1, e->freed);
    assert_int_equal(ECHO_TOTAL, e->echoed);
    mempipe_close(e->end);
    mempipe_close(peer_end);
    event_base_free(base);
    free(e);
}

/* ------------------------------------------------------------------------ */
/* Echo through the event_active waker                                       */
/* ------------------------------------------------------------------------ */

struct waker_echo {
    mempipe *end;
    struct event *ev;
    struct event_base *base;
    unsigned char buf[ECHO_BUF];
    size_t len, off;
    size_t echoed;
    int wakes, done;
};

/*
 * Moves bytes until a call is pending; its waker (event_active from the
 * peer's thread) brings us back here on the loop thread.
 */
static void pump(struct waker_echo *e)
{
    mempipe_waker wk = mempipe_event_waker(e->ev);
    for (;;) {
        if (e->off < e->len) {
            ssize_t n = mempipe_poll_write(e->end, e->buf + e->off,
                                           e->len - e->off, &wk);
            if (n == -EAGAIN)
                return;
            assert_true(n > 0);
            e->off += (size_t)n;
            e->echoed += (size_t)n;
            continue;
        }
        ssize_t n = mempipe_poll_read(e->end, e->buf, sizeof e->buf, &wk);
        if (n == -EAGAIN)
            return;
        assert_true(n >= 0);
        if (n == 0) {
            /* Close the end first: then no waker of ours can still run,
             * and the event may be freed. */
            assert_rc(0, mempipe_shutdown(e->end));
            mempipe_close(e->end);
            e->end = NULL;
            e->done = 1;
            event_base_loopbreak(e->base);
            return;
        }
        e->len = (size_t)n;
        e->off = 0;
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct waker_echo *e = arg;
    (void)fd;
    assert_int_equal(EV_READ, what);
    e->wakes++;
    pump(e);
}

static void test_event_waker_echo_16MiB_with_blocking_peer(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct waker_echo *e = calloc(1, sizeof *e);
    assert_non_null(e);
    mempipe *peer_end;
    assert_rc(0, mempipe_duplex(PIPE_CAP, &e->end, &peer_end));
    e->base = base;
    e->ev = event_new(base, -1, 0, on_wake, e);
    assert_non_null(e->ev);
    struct tu_peer p;
    tu_peer_start(&p, peer_end, ECHO_TOTAL, 22);
    pump(e);
    /* The waker's event is never added, only activated: keep the loop
     * running while nothing is pending, until pump() breaks it. */
    assert_int_equal(0, event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY));
    tu_peer_join(&p);
    assert_int_equal(1, e->done);
    assert_int_equal(ECHO_TOTAL, e->echoed);
    assert_true(e->wakes > 0); /* the loop really waited on the waker */
    event_free(e->ev);
    mempipe_close(peer_end);
    event_base_free(base);
    free(e);
}

/* ------------------------------------------------------------------------ */
/* Readiness, del, bad arguments                                             */
/* ------------------------------------------------------------------------ */

struct seen {
    int readable, writable;
    ssize_t read_rc, write_rc;
    mempipe *end;
};

static void on_seen(mempipe_event_watch *w, short what, void *arg)
{
    struct seen *s = arg;
    char c;
    (void)w;
    if (what == EV_READ) {
        s->readable++;
        s->read_rc = mempipe_poll_read(s->end, &c, 1, NULL);
    } else {
        assert_int_equal(EV_WRITE, what);
        s->writable++;
        s->write_rc = mempipe_poll_write(s->end, "", 0, NULL);
    }
}

static void test_event_watch_readiness_eof_and_epipe(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    struct seen s = {.end = a};
    mempipe_event_watch *w = mempipe_event_watch_new(base, a, on_seen, &s);
    assert_non_null(w);
    assert_rc(0, mempipe_event_watch_add(w, EV_READ | EV_WRITE));

    /* Open and empty: writable, not readable. */
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(0, s.readable);
    assert_true(s.writable > 0);
    assert_rc(0, s.write_rc);

    /* Full: not writable. Deleted: nothing at all is reported. */
    assert_rc(4, mempipe_poll_write(a, "full", 4, NULL));
    assert_rc(0, mempipe_event_watch_del(w, EV_READ | EV_WRITE));
    assert_rc(1, mempipe_poll_write(b, "x", 1, NULL));
    s.readable = s.writable = 0;
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(0, s.readable);
    assert_int_equal(0, s.writable);

    /* Added again: the byte is readable; the pipe a writes is full. */
    assert_rc(0, mempipe_event_watch_add(w, EV_READ | EV_WRITE));
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_true(s.readable > 0);
    assert_rc(1, s.read_rc);
    assert_int_equal(0, s.writable);

    /* The peer closes: readable (EOF) and writable (-EPIPE), level. */
    mempipe_close(b);
    s.readable = s.writable = 0;
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(2, s.readable);
    assert_rc(0, s.read_rc);
    assert_int_equal(2, s.writable);
    assert_rc(-EPIPE, s.write_rc);

    mempipe_event_watch_free(w);
    mempipe_close(a);
    event_base_free(base);
}

static void test_event_watch_bad_arguments_and_simplex(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    mempipe *r, *wr;
    assert_rc(0, mempipe_simplex(16, &r, &wr));
    struct seen s = {.end = r};
    assert_null(mempipe_event_watch_new(NULL, r, on_seen, &s));
    assert_null(mempipe_event_watch_new(base, NULL, on_seen, &s));
    assert_null(mempipe_event_watch_new(base, r, NULL, &s));
    assert_rc(-EINVAL, mempipe_event_watch_add(NULL, EV_READ));
    assert_null(mempipe_event_watch_end(NULL));
    mempipe_event_watch_free(NULL);

    /* A simplex reader can only become readable. */
    mempipe_event_watch *w = mempipe_event_watch_new(base, r, on_seen, &s);
    assert_non_null(w);
    assert_rc(-EBADF, mempipe_event_watch_add(w, EV_WRITE));
    assert_rc(-EINVAL, mempipe_event_watch_add(w, EV_TIMEOUT));
    assert_rc(0, mempipe_event_watch_add(w, EV_READ));
    assert_rc(1, mempipe_poll_write(wr, "y", 1, NULL));
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_true(s.readable > 0);
    assert_rc(1, s.read_rc);
    mempipe_event_watch_free(w);
    mempipe_close(r);
    mempipe_close(wr);
    event_base_free(base);
}

int main(void)
{
    /* The waker activates events from the peer's threads. */
    if (evthread_use_pthreads() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_watch_echo_16MiB_with_blocking_peer),
        cmocka_unit_test(test_event_waker_echo_16MiB_with_blocking_peer),
        cmocka_unit_test(test_event_watch_readiness_eof_and_epipe),
        cmocka_unit_test(test_event_watch_bad_arguments_and_simplex),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    libevent_global_shutdown(); /* so LeakSanitizer sees no locks left */
    return rc;
}
