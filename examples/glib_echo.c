/* SPDX-License-Identifier: MIT */
/*
 * An echo through a GLib main loop over one mempipe duplex, both sides on
 * the loop's thread:
 *
 *   - the server drives its end with a mempipe GSource: it reads what
 *     arrives and writes it back, watching G_IO_OUT only while it has bytes
 *     the pipe did not take (mempipe_glib_source_set_condition()), and shuts
 *     down at end of file;
 *   - the client is plain GIO code on a GIOStream made from its end, as it
 *     would be on a GSocketConnection: g_output_stream_write_all_async() of
 *     a few lines, a shutdown (closing the output stream), and
 *     GDataInputStream's read_line_async() until end of file.
 *
 * The pipe holds 16 bytes, so the lines go round in pieces.
 *
 *   build: cc glib_echo.c $(pkg-config --cflags --libs mempipe-glib)
 */
#include <mempipe/glib.h>

#include <stdio.h>
#include <string.h>

static const char text[] = "a GSource fed by mempipe wakers,\n"
                           "a GIOStream over the other end,\n"
                           "and no file descriptor between them.\n";

/* ---- the server: a source over the raw end ---- */

struct server {
    char buf[64];
    size_t have, off;
};

static gboolean on_server(mempipe *end, GIOCondition cond, gpointer data)
{
    struct server *s = data;
    (void)cond;
    for (;;) {
        if (s->have > 0) { /* first what is pending */
            ssize_t n = mempipe_poll_write(end, s->buf + s->off, s->have, NULL);
            if (n < 0) /* -EAGAIN: wait for G_IO_OUT; else the peer left */
                break;
            s->off += (size_t)n;
            s->have -= (size_t)n;
            continue;
        }
        ssize_t n = mempipe_poll_read(end, s->buf, sizeof s->buf, NULL);
        if (n == -EAGAIN)
            break;
        if (n <= 0) { /* end of file (or an error): done */
            mempipe_shutdown(end);
            return G_SOURCE_REMOVE;
        }
        s->have = (size_t)n;
        s->off = 0;
    }
    mempipe_glib_source_set_condition(g_main_current_source(),
                                      s->have > 0 ? G_IO_OUT : G_IO_IN);
    return G_SOURCE_CONTINUE;
}

/* ---- the client: GIO on a GIOStream ---- */

struct client {
    GMainLoop *loop;
    GIOStream *stream;
    GDataInputStream *lines;
    int n;
};

static void on_line(GObject *obj, GAsyncResult *res, gpointer data)
{
    struct client *c = data;
    GError *err = NULL;
    char *line = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(obj),
                                                      res, NULL, &err);
    if (line == NULL) { /* end of file, or an error */
        if (err != NULL)
            fprintf(stderr, "read_line: %s\n", err->message);
        g_clear_error(&err);
        g_main_loop_quit(c->loop);
        return;
    }
    printf("echo %d: %s\n", ++c->n, line);
    g_free(line);
    g_data_input_stream_read_line_async(c->lines, G_PRIORITY_DEFAULT, NULL,
                                        on_line, c);
}

static void on_written(GObject *obj, GAsyncResult *res, gpointer data)
{
    (void)data;
    GError *err = NULL;
    if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(obj), res, NULL,
                                          &err)) {
        fprintf(stderr, "write_all: %s\n", err->message);
        g_error_free(err);
    }
    /* Closing the output is mempipe_shutdown(): the server reads end of
     * file after the bytes, and the input stays open for the echo. */
    g_output_stream_close(G_OUTPUT_STREAM(obj), NULL, NULL);
}

int main(void)
{
    mempipe *server_end, *client_end;
    if (mempipe_duplex(16, &server_end, &client_end) != 0)
        return 1;
    GMainLoop *loop = g_main_loop_new(NULL, FALSE);

    struct server srv = {0};
    GSource *src = mempipe_glib_source_new(server_end, G_IO_IN);
    g_source_set_callback(src, (GSourceFunc)(void (*)(void))on_server, &srv,
                          NULL);
    g_source_attach(src, NULL);

    /* The stream owns client_end from here: g_object_unref() closes it. */
    struct client cl = {loop, mempipe_glib_iostream_new(client_end), NULL, 0};
    cl.lines = g_data_input_stream_new(g_io_stream_get_input_stream(cl.stream));
    g_output_stream_write_all_async(g_io_stream_get_output_stream(cl.stream),
                                    text, strlen(text), G_PRIORITY_DEFAULT,
                                    NULL, on_written, NULL);
    g_data_input_stream_read_line_async(cl.lines, G_PRIORITY_DEFAULT, NULL,
                                        on_line, &cl);

    g_main_loop_run(loop);

    /* The source first (it watches server_end), then the end. */
    g_source_destroy(src);
    g_source_unref(src);
    mempipe_close(server_end);
    g_object_unref(cl.lines);
    g_object_unref(cl.stream);
    g_main_loop_unref(loop);
    return cl.n == 3 ? 0 : 1;
}
