/* SPDX-License-Identifier: MIT */
/*
 * The libuv adapter (include/mempipe/uv.h): a libuv loop echoes 16 MiB
 * back to peer threads that use blocking calls, once through a watch (the
 * end's fds under uv_poll) and once through the uv_async waker; readiness
 * for EOF and EPIPE; start/stop/close and bad arguments.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mempipe/uv.h"

#define ECHO_TOTAL (16u << 20)
#define PIPE_CAP   (16u << 10)
#define ECHO_BUF   (8u << 10)

/* ------------------------------------------------------------------------ */
/* Echo through a watch                                                      */
/* ------------------------------------------------------------------------ */

struct watch_echo {
    mempipe *end;
    mempipe_uv_watch w;
    unsigned char buf[ECHO_BUF];
    size_t len, off; /* buf[off..len) still to echo */
    int eof, closed;
    size_t echoed;
};

static void on_watch_closed(mempipe_uv_watch *w)
{
    struct watch_echo *e = w->data;
    e->closed = 1;
}

/*
 * Reads only into an empty buffer and writes it all back before reading
 * again, so the interest set changes all the time: READABLE while the
 * buffer is empty, WRITABLE while it holds bytes.
 */
static void on_echo_ready(mempipe_uv_watch *w, int status, int events)
{
    struct watch_echo *e = w->data;
    assert_int_equal(0, status);
    if ((events & MEMPIPE_UV_READABLE) && e->len == 0) {
        ssize_t n = mempipe_poll_read(e->end, e->buf, sizeof e->buf, NULL);
        if (n == 0)
            e->eof = 1;
        else if (n > 0)
            e->len = (size_t)n, e->off = 0;
        else
            assert_rc(-EAGAIN, n); /* a late readiness: poll again later */
    }
    if ((events & MEMPIPE_UV_WRITABLE) && e->off < e->len) {
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
    if (e->eof && e->len == 0) {
        assert_rc(0, mempipe_shutdown(e->end));
        mempipe_uv_watch_close(w, on_watch_closed);
        return;
    }
    int want = e->len == 0 ? MEMPIPE_UV_READABLE : MEMPIPE_UV_WRITABLE;
    assert_rc(0, mempipe_uv_watch_start(w, want, on_echo_ready));
}

static void test_uv_watch_echo_16MiB_with_blocking_peer(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(0, uv_loop_init(&loop));
    struct watch_echo *e = calloc(1, sizeof *e);
    assert_non_null(e);
    mempipe *peer_end;
    assert_rc(0, mempipe_duplex(PIPE_CAP, &e->end, &peer_end));
    e->w.data = e;
    assert_rc(0, mempipe_uv_watch_init(&loop, &e->w, e->end));
    assert_ptr_equal(e, e->w.data); /* init keeps the caller's data */
    assert_rc(
        0, mempipe_uv_watch_start(&e->w, MEMPIPE_UV_READABLE, on_echo_ready));
    struct tu_peer p;
    tu_peer_start(&p, peer_end, ECHO_TOTAL, 11);
    assert_int_equal(0, uv_run(&loop, UV_RUN_DEFAULT));
    tu_peer_join(&p);
    assert_int_equal(1, e->closed);
    assert_int_equal(ECHO_TOTAL, e->echoed);
    mempipe_close(e->end);
    mempipe_close(peer_end);
    assert_int_equal(0, uv_loop_close(&loop));
    free(e);
}

/* ------------------------------------------------------------------------ */
/* Echo through the uv_async waker                                           */
/* ------------------------------------------------------------------------ */

struct async_echo {
    mempipe *end;
    uv_async_t async;
    unsigned char buf[ECHO_BUF];
    size_t len, off;
    size_t echoed;
    int wakes, done;
};

/*
 * Moves bytes until a call is pending; its waker (uv_async_send from the
 * peer's thread) brings us back here on the loop thread.
 */
static void pump(struct async_echo *e)
{
    mempipe_waker wk = mempipe_uv_waker(&e->async);
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
             * and the async handle may go. */
            assert_rc(0, mempipe_shutdown(e->end));
            mempipe_close(e->end);
            e->end = NULL;
            uv_close((uv_handle_t *)&e->async, NULL);
            e->done = 1;
            return;
        }
        e->len = (size_t)n;
        e->off = 0;
    }
}

static void on_async(uv_async_t *a)
{
    struct async_echo *e = a->data;
    e->wakes++;
    pump(e);
}

static void test_uv_waker_echo_16MiB_with_blocking_peer(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(0, uv_loop_init(&loop));
    struct async_echo *e = calloc(1, sizeof *e);
    assert_non_null(e);
    mempipe *peer_end;
    assert_rc(0, mempipe_duplex(PIPE_CAP, &e->end, &peer_end));
    assert_int_equal(0, uv_async_init(&loop, &e->async, on_async));
    e->async.data = e;
    struct tu_peer p;
    tu_peer_start(&p, peer_end, ECHO_TOTAL, 12);
    pump(e);
    assert_int_equal(0, uv_run(&loop, UV_RUN_DEFAULT));
    tu_peer_join(&p);
    assert_int_equal(1, e->done);
    assert_int_equal(ECHO_TOTAL, e->echoed);
    assert_true(e->wakes > 0); /* the loop really waited on the waker */
    mempipe_close(peer_end);
    assert_int_equal(0, uv_loop_close(&loop));
    free(e);
}

/* ------------------------------------------------------------------------ */
/* Readiness, stop, bad arguments                                            */
/* ------------------------------------------------------------------------ */

struct seen {
    int readable, writable;
    ssize_t read_rc, write_rc;
    mempipe *end;
};

static void on_seen(mempipe_uv_watch *w, int status, int events)
{
    struct seen *s = w->data;
    char c;
    assert_int_equal(0, status);
    if (events & MEMPIPE_UV_READABLE) {
        s->readable++;
        s->read_rc = mempipe_poll_read(s->end, &c, 1, NULL);
    }
    if (events & MEMPIPE_UV_WRITABLE) {
        s->writable++;
        s->write_rc = mempipe_poll_write(s->end, "", 0, NULL);
    }
}

static void close_watch_and_loop(uv_loop_t *loop, mempipe_uv_watch *w)
{
    mempipe_uv_watch_close(w, NULL);
    assert_int_equal(0, uv_run(loop, UV_RUN_DEFAULT)); /* runs the closes */
    assert_int_equal(0, uv_loop_close(loop));
}

static void test_uv_watch_readiness_eof_and_epipe(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(0, uv_loop_init(&loop));
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    struct seen s = {.end = a};
    mempipe_uv_watch w = {.data = &s};
    assert_rc(0, mempipe_uv_watch_init(&loop, &w, a));
    assert_rc(0, mempipe_uv_watch_start(
                     &w, MEMPIPE_UV_READABLE | MEMPIPE_UV_WRITABLE, on_seen));

    /* Open and empty: writable, not readable. */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(0, s.readable);
    assert_true(s.writable > 0);
    assert_rc(0, s.write_rc);

    /* Full: not writable. Stop, then nothing at all is reported. */
    assert_rc(4, mempipe_poll_write(a, "full", 4, NULL));
    assert_rc(0, mempipe_uv_watch_stop(&w));
    assert_rc(1, mempipe_poll_write(b, "x", 1, NULL));
    s.readable = s.writable = 0;
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(0, s.readable);
    assert_int_equal(0, s.writable);

    /* Started again: the byte is readable; the pipe a writes is full. */
    assert_rc(0, mempipe_uv_watch_start(
                     &w, MEMPIPE_UV_READABLE | MEMPIPE_UV_WRITABLE, on_seen));
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(s.readable > 0);
    assert_rc(1, s.read_rc);
    assert_int_equal(0, s.writable);

    /* The peer closes: readable (EOF) and writable (-EPIPE), level. */
    mempipe_close(b);
    s.readable = s.writable = 0;
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(2, s.readable);
    assert_rc(0, s.read_rc);
    assert_int_equal(2, s.writable);
    assert_rc(-EPIPE, s.write_rc);

    close_watch_and_loop(&loop, &w);
    mempipe_close(a);
}

static void test_uv_watch_bad_arguments_and_simplex(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(0, uv_loop_init(&loop));
    mempipe *r, *wr;
    assert_rc(0, mempipe_simplex(16, &r, &wr));
    mempipe_uv_watch w = {0};
    assert_rc(-EINVAL, mempipe_uv_watch_init(NULL, &w, r));
    assert_rc(-EINVAL, mempipe_uv_watch_init(&loop, NULL, r));
    assert_rc(-EINVAL, mempipe_uv_watch_init(&loop, &w, NULL));
    assert_rc(-EINVAL, mempipe_uv_watch_start(NULL, 1, on_seen));

    /* A simplex reader can only become readable. */
    struct seen s = {.end = r};
    w.data = &s;
    assert_rc(0, mempipe_uv_watch_init(&loop, &w, r));
    assert_rc(-EBADF, mempipe_uv_watch_start(&w, MEMPIPE_UV_WRITABLE, on_seen));
    assert_rc(-EINVAL, mempipe_uv_watch_start(&w, 4, on_seen));
    assert_rc(-EINVAL, mempipe_uv_watch_start(&w, MEMPIPE_UV_READABLE, NULL));
    assert_rc(0, mempipe_uv_watch_start(&w, MEMPIPE_UV_READABLE, on_seen));
    assert_rc(1, mempipe_poll_write(wr, "y", 1, NULL));
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(s.readable > 0);
    assert_rc(1, s.read_rc);

    /* After close, the watch refuses to start (no double close). */
    close_watch_and_loop(&loop, &w);
    assert_rc(-EINVAL, mempipe_uv_watch_start(&w, 1, on_seen));
    assert_rc(-EINVAL, mempipe_uv_watch_stop(&w));
    mempipe_close(r);
    mempipe_close(wr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uv_watch_echo_16MiB_with_blocking_peer),
        cmocka_unit_test(test_uv_waker_echo_16MiB_with_blocking_peer),
        cmocka_unit_test(test_uv_watch_readiness_eof_and_epipe),
        cmocka_unit_test(test_uv_watch_bad_arguments_and_simplex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
