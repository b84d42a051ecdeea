/* SPDX-License-Identifier: MIT */
/*
 * mempipe/glib.h — mempipe ends in a GLib main loop and as GIO streams.
 *
 * Link with -lmempipe_glib (pkg-config mempipe-glib, CMake target
 * mempipe::mempipe_glib) and GIO (gio-2.0, GLib 2.64 or later).
 *
 * Two things:
 *
 * 1. A GSource over one end, like g_socket_create_source() over a socket:
 *
 *        GSource *src = mempipe_glib_source_new(end, G_IO_IN);
 *        g_source_set_callback(src, (GSourceFunc)on_ready, data, NULL);
 *        g_source_attach(src, context);
 *        g_source_unref(src);
 *        ...
 *        static gboolean on_ready(mempipe *end, GIOCondition cond,
 *                                 gpointer data)
 *        {   ... mempipe_poll_read(end, buf, len, NULL) until -EAGAIN ...
 *            return G_SOURCE_CONTINUE; }
 *
 *    It is fed by mempipe wakers, not by a file descriptor: no fd is made
 *    and no syscall is made for it while the loop's own thread makes the
 *    progress; a wake from another thread wakes the context
 *    (g_main_context_wakeup's mechanism). The conditions, level-triggered
 *    as a socket's:
 *
 *      G_IO_IN   a read would not wait: bytes are buffered, or end of file,
 *                or an error is pending (a read returns > 0, 0 or < 0);
 *      G_IO_OUT  a write would not wait: there is room, or the pipe is
 *                closed so the write fails at once (-EPIPE, or the peer's
 *                error);
 *      G_IO_HUP  as a socket's POLLHUP: nothing can flow either way any
 *                more. Every direction the end has is finished: reading,
 *                every byte was read and a read returns 0 (end of file) or
 *                an error; writing, a write fails. So the peer's
 *                mempipe_close() (or abort) gives G_IO_HUP, and its
 *                mempipe_shutdown() alone does not (G_IO_IN, then a read
 *                of 0: a half-close, as with shutdown(2) on a socket); on
 *                a simplex end its one direction decides;
 *      G_IO_ERR  a watched direction ended in an error, not a clean close:
 *                a read (once the bytes are read) or a write fails with an
 *                error other than 0 or -EPIPE (-ECONNRESET after the
 *                peer's mempipe_abort(), the peer's
 *                mempipe_close_with_error() code, an injected failure).
 *
 *    G_IO_IN watches the reading direction, G_IO_OUT the writing one;
 *    G_IO_HUP and G_IO_ERR are always reported (as by
 *    g_socket_create_source(), whatever cond says), and a cond of only
 *    G_IO_HUP and/or G_IO_ERR watches the reading direction (the writing
 *    one of a simplex writer end). G_IO_PRI and G_IO_NVAL are accepted and
 *    never reported. The callback is given the conditions that hold,
 *    filtered to cond | G_IO_HUP | G_IO_ERR; it is called only when one
 *    holds (a wake that finds nothing is not passed on).
 *
 *    One difference from a socket: a socket reports POLLHUP as soon as the
 *    peer closed, bytes still unread; here G_IO_HUP (and the end of a read
 *    direction) comes once the bytes before the end were read. A loop that
 *    reads on G_IO_IN until 0 sees the same bytes and the same end either
 *    way, and one that stops at the first G_IO_HUP loses nothing buffered.
 *
 * 2. A GIOStream over a duplex (or loopback) end: mempipe_glib_iostream_new()
 *    gives a GIOStream whose input and output streams are pollable
 *    (GPollableInputStream, GPollableOutputStream), so GIO code written for
 *    a GSocketConnection runs on it unchanged: g_output_stream_write_all(),
 *    g_output_stream_write_all_async(), GDataInputStream's read_line, the
 *    async and pollable calls.
 *
 * Threads: a source belongs to the thread that iterates its context; its
 * prepare and check count as the end's reader (when it watches reading) and
 * writer (when it watches writing) for the one-reader, one-writer rule
 * (SPEC R26), and its wakers take the slot of the directions it watches
 * (a poll call of the same direction with a waker of its own replaces
 * the source's waker until the source's next prepare or check stores it
 * again). The peer end may be used from any
 * thread with any API: blocking calls, wakers, fds, or another source on
 * another context.
 */
#ifndef MEMPIPE_GLIB_H
#define MEMPIPE_GLIB_H

#include <gio/gio.h>

#include "../mempipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The callback of a mempipe_glib_source_new() source, set with
 * g_source_set_callback(source, (GSourceFunc)fn, user_data, notify) (or a
 * GClosure: g_source_set_closure(), with the end as a gpointer and the
 * condition as a GIOCondition). end is the source's end, cond the
 * conditions that hold. Return G_SOURCE_CONTINUE to keep watching,
 * G_SOURCE_REMOVE to destroy the source. Called on the thread iterating
 * the source's context. It may make any mempipe call on end (reads until
 * -EAGAIN are the usual), change the source's condition, destroy the
 * source, and close end once it returns G_SOURCE_REMOVE (or after
 * g_source_destroy() of the source).
 */
typedef gboolean (*mempipe_glib_source_func)(mempipe *end, GIOCondition cond,
                                             gpointer user_data);

/*
 * Makes a GSource that watches end for cond (G_IO_IN, G_IO_OUT, G_IO_HUP,
 * G_IO_ERR, G_IO_PRI, G_IO_NVAL, any combination; see the top of this
 * header for what each means). Attach it with g_source_attach(), set its
 * callback (a mempipe_glib_source_func) with g_source_set_callback(), and
 * unref it as any GSource. It has no fd: it is woken by the waker its
 * prepare and check store in end (mempipe_poll_readable(),
 * mempipe_poll_writable()). A wake on the thread iterating the context
 * costs no syscall; a wake from another thread (any thread: the one whose
 * mempipe call made the progress) calls g_main_context_wakeup() of the
 * source's context, and the context's next check looks at the end.
 *
 * The end stays the caller's: destroy the source (g_source_destroy(), or
 * G_SOURCE_REMOVE from its callback) before mempipe_close(end). Destroying
 * and freeing it is safe while a waker it stored may run on another
 * thread: a waker's ctx is a number looked up in the adapter's registry,
 * never a pointer into the source, so a late wake of a freed source does
 * nothing (and a stored waker needs nothing freed when the end is closed).
 * The GMainContext is another matter, as for every GLib source woken from
 * another thread (g_main_context_wakeup(), g_source_set_ready_time()): free
 * the context only when no other thread may be making progress on the end
 * at that moment (or destroy the source, then close the end, which waits
 * for a running waker, then free the context).
 *
 * Returns a new source (one reference, the caller's), or NULL with a
 * g_critical() (g_return_val_if_fail) if end is NULL, cond has a bit
 * that is no GIOCondition, or cond watches a direction the end does not
 * have (G_IO_IN on a simplex writer end, G_IO_OUT on a simplex reader end).
 * Any thread; the source is then used by the thread iterating its context.
 */
MEMPIPE_EXTERN GSource *mempipe_glib_source_new(mempipe *end,
                                                GIOCondition cond);

/*
 * Changes what a mempipe_glib_source_new() source watches (as
 * g_source_modify_unix_fd() does for an fd), with the rules and checks of
 * mempipe_glib_source_new(); the next check of the context uses it. A loop
 * that watches G_IO_OUT only while it has bytes to send saves making a new
 * source each time.
 * Returns TRUE, or FALSE with a g_critical() if source is NULL or not a
 * mempipe source, or cond is refused as by mempipe_glib_source_new()
 * (nothing changes then).
 * Thread: the one iterating the source's context (its callback included),
 * or any thread while the source is not attached.
 */
MEMPIPE_EXTERN gboolean mempipe_glib_source_set_condition(GSource *source,
                                                          GIOCondition cond);

/*
 * Makes a GIOStream over end, a duplex or loopback end (it reads and
 * writes), that owns end, as a GSocketConnection owns its socket:
 *
 *   - g_io_stream_get_input_stream(): a GInputStream that is a
 *     GPollableInputStream. Reads block in mempipe_read() (never EINTR);
 *     read_nonblocking uses mempipe_poll_read(); is_readable is G_IO_IN
 *     above; create_source is a mempipe_glib_source_new(end, G_IO_IN)
 *     under g_pollable_source_new_full() (with the cancellable, if any).
 *     Read returns 0 at end of file. Closing it alone changes nothing on
 *     the pipe (as a GSocketInputStream).
 *   - g_io_stream_get_output_stream(): a GOutputStream that is a
 *     GPollableOutputStream. Writes block in mempipe_write() until every
 *     byte is taken, or return the short count taken before the pipe
 *     closed; write_nonblocking and writev_nonblocking use
 *     mempipe_poll_write() and mempipe_poll_writev(); is_writable is
 *     G_IO_OUT above. Closing it is mempipe_shutdown(end): the peer reads
 *     the bytes, then end of file, and can still write to this end.
 *     Flushing does nothing (nothing is ever kept back).
 *   - g_io_stream_close() (sync or async; it never waits) closes both
 *     streams, then mempipe_close(end). If the stream is never closed,
 *     its last unref closes it (GIOStream's dispose does); a close that
 *     GIO refuses because an operation is pending (G_IO_ERROR_PENDING)
 *     leaves the end open until then too. The end must not be closed by
 *     the caller, nor used once the stream is closed. A socket closed
 *     with bytes unread resets its peer; an end discards them (SPEC R9)
 *     unless mempipe_set_rst_on_unread() on mempipe_glib_iostream_get_end()
 *     asks for the socket's way.
 *
 * Blocking calls with a GCancellable: a read or write that has to wait
 * waits on a waker of the stream's instead of in mempipe_read() or
 * mempipe_write(), and g_cancellable_cancel() from any thread stops the
 * wait at once with G_IO_ERROR_CANCELLED (a write that took some bytes
 * first returns their count instead). Without a cancellable the wait is
 * mempipe's own; it ends when the pipe can progress (or is closed).
 *
 * Errors (GError, domain G_IO_ERROR): -EPIPE is G_IO_ERROR_BROKEN_PIPE,
 * -ECONNRESET G_IO_ERROR_CONNECTION_CLOSED (GIO gives both codes one
 * value, as it does for a socket), -EAGAIN G_IO_ERROR_WOULD_BLOCK, any
 * other code g_io_error_from_errno() of it, with mempipe_strerror() as the
 * message. A closed stream: G_IO_ERROR_CLOSED (GIO's own checks).
 *
 * Returns a new GIOStream (the caller's reference), or NULL with a
 * g_critical() if end is NULL or is a simplex end (nothing is taken then:
 * the end stays the caller's).
 * Threads: as any GIOStream: one operation at a time per stream, the input
 * and the output stream independent (one reading thread and one writing
 * thread at a time: SPEC R26). Any thread may make it.
 */
MEMPIPE_EXTERN GIOStream *mempipe_glib_iostream_new(mempipe *end);

/*
 * Returns the end a mempipe_glib_iostream_new() stream owns, for calls GIO
 * does not make (mempipe_readable(), mempipe_set_faults(), a
 * mempipe_glib_source_new() of its own, ...); NULL once the stream is
 * closed, or with a g_critical() if stream is not such a stream. No
 * ownership is given: the stream still closes it. Calls on it count
 * against the one-reader, one-writer rule together with the stream's own.
 * Any thread.
 */
MEMPIPE_EXTERN mempipe *mempipe_glib_iostream_get_end(GIOStream *stream);

#ifdef __cplusplus
}
#endif

#endif /* MEMPIPE_GLIB_H */
