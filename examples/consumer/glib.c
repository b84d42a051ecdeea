/* SPDX-License-Identifier: MIT */
/*
 * The GLib adapter, built against an installed mempipe: GIO writes through
 * a GIOStream over one end, and a mempipe GSource on the other end's
 * context reads it. It calls GLib and GIO itself, so it links only if the
 * adapter's target (or mempipe-glib.pc) brings gio-2.0 along.
 */
#include <mempipe/glib.h>

#include <stdio.h>
#include <string.h>

static char got[16];

static gboolean on_readable(mempipe *end, GIOCondition cond, gpointer done)
{
    if ((cond & G_IO_IN) &&
        mempipe_poll_read(end, got, sizeof got - 1, NULL) > 0)
        *(int *)done = 1;
    return G_SOURCE_CONTINUE;
}

int main(void)
{
    mempipe *a, *b;
    if (mempipe_duplex(64, &a, &b) != 0)
        return 1;
    GIOStream *stream = mempipe_glib_iostream_new(a); /* owns a */
    GSource *src = mempipe_glib_source_new(b, G_IO_IN);
    int done = 0;
    g_source_set_callback(src, (GSourceFunc)(void (*)(void))on_readable, &done,
                          NULL);
    g_source_attach(src, NULL);
    g_output_stream_write_all(g_io_stream_get_output_stream(stream),
                              "over GLib", 9, NULL, NULL, NULL);
    while (!done)
        g_main_context_iteration(NULL, TRUE);
    g_source_destroy(src);
    g_source_unref(src);
    g_object_unref(stream); /* closes a */
    mempipe_close(b);
    int ok = strcmp(got, "over GLib") == 0;
    printf("mempipe-glib with GLib %u.%u.%u: %s\n", glib_major_version,
           glib_minor_version, glib_micro_version, ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
