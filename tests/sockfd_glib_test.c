/* SPDX-License-Identifier: MIT */
/*
 * mempipe_fd() under GLib's main loop (built where pkg-config finds
 * glib-2.0): the natural watches work as on a socket. A G_IO_OUT watch on a
 * full pipe waits instead of spinning, and fires when room appears;
 * G_IO_IN | G_IO_HUP fires after the peer's close; a GIOChannel watch does
 * the same. And the differential part at GLib's level: the twins' scripts
 * (testutil.h) on a mempipe duplex and a socketpair, with one main-context
 * iteration after every step reporting the same conditions for both.
 * Finally the documented "what to watch" of the two-fd calls: G_IO_IN on
 * both works, and G_IO_OUT on mempipe_writable_fd() spins (never use it).
 */
#include "testutil.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Sets src's callback and attaches it to ctx; returns src. */
static GSource *attach(GMainContext *ctx, GSource *src, GSourceFunc fn,
                       gpointer data)
{
    g_source_set_callback(src, fn, data, NULL);
    g_source_attach(src, ctx);
    return src;
}

/* ---- G_IO_OUT on a full pipe ----------------------------------------------
 */

struct out_watch {
    mempipe *a, *b;
    GMainLoop *loop;
    int full;       /* the pipe is full: a dispatch now is a spin */
    int while_full; /* dispatches of the G_IO_OUT watch while full */
    int dispatches; /* all of them */
    int rounds;     /* room made by the timer so far */
    size_t written; /* bytes the watch wrote */
};

static gboolean on_out(gint fd, GIOCondition cond, gpointer data)
{
    (void)fd;
    struct out_watch *w = data;
    w->dispatches++;
    if (w->full)
        w->while_full++;
    if (cond & G_IO_OUT) {
        char buf[64] = {0};
        ssize_t n;
        while ((n = mempipe_poll_write(w->a, buf, sizeof buf, NULL)) > 0)
            w->written += (size_t)n;
        w->full = n == -EAGAIN;
    }
    return G_SOURCE_CONTINUE;
}

/* Every 5 ms: read 16 bytes from the full pipe (room for the watch), 10
 * times, then stop the loop. */
static gboolean make_room(gpointer data)
{
    struct out_watch *w = data;
    char buf[16];
    if (w->rounds == 10) {
        g_main_loop_quit(w->loop);
        return G_SOURCE_REMOVE;
    }
    w->rounds++;
    w->full = 0;
    assert_rc(16, mempipe_poll_read(w->b, buf, sizeof buf, NULL));
    return G_SOURCE_CONTINUE;
}

static void test_R59_glib_out_watch_on_full_pipe_waits(void **state)
{
    (void)state;
    struct out_watch w = {0};
    assert_rc(0, mempipe_duplex(64, &w.a, &w.b));
    tu_fill(w.a, 64);
    w.full = 1;
    int fa = mempipe_fd(w.a);
    assert_true(fa >= 0);
    GMainContext *ctx = g_main_context_new();
    w.loop = g_main_loop_new(ctx, FALSE);
    GSource *out = attach(ctx, g_unix_fd_source_new(fa, G_IO_OUT),
                          G_SOURCE_FUNC(on_out), &w);
    GSource *timer = attach(ctx, g_timeout_source_new(5), make_room, &w);
    g_main_loop_run(w.loop);
    printf("G_IO_OUT on a full pipe: %d dispatches, %d while full, "
           "%zu bytes for 10 rooms of 16\n",
           w.dispatches, w.while_full, w.written);
    /* One dispatch per room made; a spinning fd would dispatch thousands
     * of times in the 55 ms. */
    assert_int_equal(w.written, 160);
    assert_true(w.while_full <= 2);
    assert_true(w.dispatches <= 12);
    g_source_destroy(out);
    g_source_unref(out);
    g_source_destroy(timer);
    g_source_unref(timer);
    g_main_loop_unref(w.loop);
    g_main_context_unref(ctx);
    mempipe_close(w.a);
    mempipe_close(w.b);
}

/* ---- G_IO_IN | G_IO_HUP after the peer's close ----------------------------
 */

struct hup_watch {
    mempipe *a, *b;
    GMainLoop *loop;
    int closed;        /* the timer closed a */
    int early;         /* dispatches before that */
    GIOCondition cond; /* what the dispatch after it reported */
    ssize_t read_rc;   /* the read it then made */
};

static void hup_seen(struct hup_watch *h, GIOCondition cond)
{
    char buf[8];
    if (!h->closed) {
        h->early++;
        return;
    }
    h->cond = cond;
    h->read_rc = mempipe_poll_read(h->b, buf, sizeof buf, NULL);
    g_main_loop_quit(h->loop);
}

static gboolean on_hup_fd(gint fd, GIOCondition cond, gpointer data)
{
    (void)fd;
    hup_seen(data, cond);
    return G_SOURCE_CONTINUE;
}

static gboolean on_hup_channel(GIOChannel *ch, GIOCondition cond, gpointer data)
{
    (void)ch;
    hup_seen(data, cond);
    return G_SOURCE_CONTINUE;
}

static gboolean close_peer(gpointer data)
{
    struct hup_watch *h = data;
    h->closed = 1;
    mempipe_close(h->a);
    return G_SOURCE_REMOVE;
}

/* how 0: g_unix_fd_add_full; 1: a GIOChannel watch. */
static void hup_after_close(int how)
{
    struct hup_watch h = {0};
    assert_rc(0, mempipe_duplex(8, &h.a, &h.b));
    tu_fill(h.b, 8); /* b's own pipe full: no G_IO_OUT before the close */
    int fb = mempipe_fd(h.b);
    assert_true(fb >= 0);
    GMainContext *ctx = g_main_context_new();
    h.loop = g_main_loop_new(ctx, FALSE);
    GIOCondition want = G_IO_IN | G_IO_OUT | G_IO_HUP | G_IO_ERR;
    GIOChannel *ch = NULL;
    GSource *src;
    if (how == 0) {
        src = attach(ctx, g_unix_fd_source_new(fb, want),
                     G_SOURCE_FUNC(on_hup_fd), &h);
    } else {
        ch = g_io_channel_unix_new(fb); /* does not close fb on unref */
        src = attach(ctx, g_io_create_watch(ch, want),
                     G_SOURCE_FUNC(on_hup_channel), &h);
    }
    GSource *timer = attach(ctx, g_timeout_source_new(20), close_peer, &h);
    g_main_loop_run(h.loop);
    assert_rc(0, h.early);
    assert_int_equal(h.cond, G_IO_IN | G_IO_OUT | G_IO_HUP);
    assert_rc(0, h.read_rc); /* EOF */
    g_source_destroy(src);
    g_source_unref(src);
    g_source_unref(timer);
    if (ch != NULL)
        g_io_channel_unref(ch);
    g_main_loop_unref(h.loop);
    g_main_context_unref(ctx);
    mempipe_close(h.b);
}

static void test_R60_glib_hup_after_peer_close(void **state)
{
    (void)state;
    hup_after_close(0);
}

static void test_R60_glib_io_channel_hup_after_peer_close(void **state)
{
    (void)state;
    hup_after_close(1);
}

/* ---- the twins under GLib --------------------------------------------------
 */

/* What a watch of every condition saw in one iteration, per fd. */
struct seen {
    GIOCondition cond;
};

static gboolean record(gint fd, GIOCondition cond, gpointer data)
{
    (void)fd;
    ((struct seen *)data)->cond = cond;
    return G_SOURCE_CONTINUE;
}

static void test_R60_glib_twins_report_the_same(void **state)
{
    (void)state;
    const GIOCondition all = G_IO_IN | G_IO_OUT | G_IO_HUP | G_IO_ERR;
    long compared = 0;
    for (size_t k = 0; k < tu_twin_nscripts; k++) {
        struct tu_twin x;
        tu_twin_open(&x, 8);
        GMainContext *ctx = g_main_context_new();
        struct seen seen[2][2] = {{{0}}}; /* [mempipe, socket][end] */
        GSource *src[2][2];
        for (int e = 0; e < 2; e++) {
            int fds[2] = {x.mfd[e], x.s[e]};
            for (int i = 0; i < 2; i++) {
                src[i][e] = attach(ctx, g_unix_fd_source_new(fds[i], all),
                                   G_SOURCE_FUNC(record), &seen[i][e]);
            }
        }
        for (int step = -1; step < TU_TWIN_STEPS; step++) {
            if (step >= 0) {
                int op = tu_twin_scripts[k][step][0];
                if (op == TU_END)
                    break;
                int e = tu_twin_scripts[k][step][1];
                if (op == TU_CLOSE || op == TU_ABORT || op == TU_CLOSE_ERR) {
                    /* Stop watching the fds before they are closed. */
                    for (int i = 0; i < 2; i++)
                        g_source_destroy(src[i][e]);
                }
                tu_twin_step(&x, op, e);
            }
            memset(seen, 0, sizeof seen);
            /* One non-blocking iteration: every source ready now
             * dispatches once (they share one priority). */
            g_main_context_iteration(ctx, FALSE);
            for (int e = 0; e < 2; e++) {
                if (!x.open[e])
                    continue;
                GIOCondition m = seen[0][e].cond;
                GIOCondition s = seen[1][e].cond & ~G_IO_ERR;
                if (m != s)
                    fail_msg("script %zu step %d end %d: GLib saw 0x%x on "
                             "mempipe_fd, 0x%x on the socket",
                             k, step, e, (unsigned)m, (unsigned)s);
                compared++;
            }
        }
        for (int e = 0; e < 2; e++)
            for (int i = 0; i < 2; i++) {
                if (!g_source_is_destroyed(src[i][e]))
                    g_source_destroy(src[i][e]);
                g_source_unref(src[i][e]);
            }
        g_main_context_unref(ctx);
        tu_twin_close(&x);
    }
    assert_true(compared > 50);
}

/* ---- the two-fd calls: what to watch ----------------------------------------
 */

static gboolean count(gint fd, GIOCondition cond, gpointer data)
{
    (void)fd;
    (void)cond;
    ++*(int *)data;
    return G_SOURCE_CONTINUE;
}

static gboolean quit_loop(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_REMOVE;
}

/* Runs ctx for ms milliseconds. */
static void run_for(GMainContext *ctx, guint ms)
{
    GMainLoop *loop = g_main_loop_new(ctx, FALSE);
    GSource *t = attach(ctx, g_timeout_source_new(ms), quit_loop, loop);
    g_main_loop_run(loop);
    g_source_unref(t);
    g_main_loop_unref(loop);
}

/*
 * mempipe_writable_fd() on a full pipe: a G_IO_IN watch (the documented
 * one) waits; a G_IO_OUT watch fires over and over, as an eventfd is always
 * writable (with the pipe(2) fallback it never fires at all, a read end is
 * never writable): the misuse the header warns about.
 */
static void test_glib_writable_fd_is_watched_for_g_io_in(void **state)
{
    (void)state;
    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    tu_fill(a, 8);
    int wfd = mempipe_writable_fd(a);
    assert_true(wfd >= 0);
    GMainContext *ctx = g_main_context_new();
    int in = 0, out = 0;
    GSource *sin = attach(ctx, g_unix_fd_source_new(wfd, G_IO_IN),
                          G_SOURCE_FUNC(count), &in);
    run_for(ctx, 20);
    assert_rc(0, in); /* full: waits */
    GSource *sout = attach(ctx, g_unix_fd_source_new(wfd, G_IO_OUT),
                           G_SOURCE_FUNC(count), &out);
    run_for(ctx, 20);
    printf("G_IO_OUT on mempipe_writable_fd of a full pipe: %d dispatches "
           "in 20 ms\n",
           out);
    assert_rc(0, in);
#if defined(MEMPIPE_FD_PIPE) || !defined(__linux__)
    assert_rc(0, out); /* a pipe's read end: never writable, never fires */
#else
    assert_true(out > 100); /* an eventfd: always writable, spins */
#endif
    g_source_destroy(sout);
    g_source_unref(sout);
    char buf[8];
    assert_rc(8, mempipe_poll_read(b, buf, sizeof buf, NULL));
    g_main_context_iteration(ctx, FALSE);
    assert_rc(1, in); /* room: G_IO_IN on the writable fd */
    g_source_destroy(sin);
    g_source_unref(sin);
    g_main_context_unref(ctx);
    mempipe_close(a);
    mempipe_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R59_glib_out_watch_on_full_pipe_waits),
        cmocka_unit_test(test_R60_glib_hup_after_peer_close),
        cmocka_unit_test(test_R60_glib_io_channel_hup_after_peer_close),
        cmocka_unit_test(test_R60_glib_twins_report_the_same),
        cmocka_unit_test(test_glib_writable_fd_is_watched_for_g_io_in),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
