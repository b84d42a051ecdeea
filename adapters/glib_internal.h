/* SPDX-License-Identifier: MIT */
/*
 * Between the two halves of the GLib adapter: glib.c (the GSource) and
 * glib_iostream.c (the streams). A stream's pollable source is a mempipe
 * source over the stream's connection, which the stream may close while
 * the source lives on: such a source looks at the end only under the
 * connection's lock, and not at all once it is closed.
 */
#ifndef MEMPIPE_GLIB_INTERNAL_H
#define MEMPIPE_GLIB_INTERNAL_H

#include "mempipe/glib.h"

/* The state a stream's input and output share (glib_iostream.c). */
struct mempipe__glib_conn;

void mempipe__glib_conn_ref(struct mempipe__glib_conn *c);
void mempipe__glib_conn_unref(struct mempipe__glib_conn *c);
/* Locks c and returns its end, or NULL once it is closed; then unlock. */
mempipe *mempipe__glib_conn_lock(struct mempipe__glib_conn *c);
void mempipe__glib_conn_unlock(struct mempipe__glib_conn *c);

/*
 * A source as mempipe_glib_source_new(end, cond) over c's end (checked by
 * the caller), holding a reference on c. Once c is closed it reports the
 * watched directions ready with G_IO_HUP, so that a pollable source's
 * callback runs and meets G_IO_ERROR_CLOSED.
 */
GSource *mempipe__glib_conn_source_new(struct mempipe__glib_conn *c,
                                       GIOCondition cond);

#endif /* MEMPIPE_GLIB_INTERNAL_H */
