/* SPDX-License-Identifier: MIT */
/*
 * The GLib adapter's GIOStream: a GInputStream and a GOutputStream over one
 * duplex (or loopback) end, both pollable, sharing a connection that owns
 * the end.
 *
 * Why a connection of its own and not just the end in each stream: the
 * streams outlive a close (GIO keeps a closed stream usable for its errors)
 * and so do their pollable sources, which must then not touch the freed
 * end; the connection keeps the end's pointer under a lock, cleared by the
 * close, and the sources look only under that lock. And a blocking call
 * with a GCancellable waits on a waker of its own, whose ctx must stay
 * valid until the end is closed (a waker left stored after a cancelled
 * wait may still run): the parkers live in the connection, which is freed
 * only after mempipe_close().
 */
#define G_LOG_DOMAIN "mempipe"

#include "glib_internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/uio.h>

/* ------------------------------------------------------------------------ */
/* The connection                                                            */
/* ------------------------------------------------------------------------ */

/* A parker for blocking calls with a cancellable: a count of wakes. */
struct park {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned seq;
};

struct mempipe__glib_conn {
    atomic_int refs;
    pthread_mutex_t mu;   /* the close against the sources' looks */
    mempipe *_Atomic end; /* NULL once closed */
    struct park rd, wr;   /* the reading and the writing call's */
};

static void park_init(struct park *p)
{
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->seq = 0;
}

static void park_destroy(struct park *p)
{
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

static unsigned park_seq(struct park *p)
{
    pthread_mutex_lock(&p->mu);
    unsigned seq = p->seq;
    pthread_mutex_unlock(&p->mu);
    return seq;
}

/* The waker, and the cancellable's "cancelled" handler: any thread. */
static void park_wake(void *ctx)
{
    struct park *p = ctx;
    pthread_mutex_lock(&p->mu);
    p->seq++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void park_cancelled(GCancellable *cancellable, gpointer ctx)
{
    (void)cancellable;
    park_wake(ctx);
}

/* Sleeps until a wake after `seen` (the count before the poll call). */
static void park_wait(struct park *p, unsigned seen)
{
    pthread_mutex_lock(&p->mu);
    while (p->seq == seen)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static struct mempipe__glib_conn *conn_new(mempipe *end)
{
    struct mempipe__glib_conn *c = g_new0(struct mempipe__glib_conn, 1);
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->end, end);
    park_init(&c->rd);
    park_init(&c->wr);
    return c;
}

/* Closes the end, once: after this no waker of it runs (R22), so the
 * parkers may go with the connection. */
static void conn_close(struct mempipe__glib_conn *c)
{
    pthread_mutex_lock(&c->mu);
    mempipe *end = atomic_exchange(&c->end, NULL);
    mempipe_close(end);
    pthread_mutex_unlock(&c->mu);
}

void mempipe__glib_conn_ref(struct mempipe__glib_conn *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void mempipe__glib_conn_unref(struct mempipe__glib_conn *c)
{
    /* acq_rel: every use by the other holders before the free. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    conn_close(c); /* a stream never closed (or whose close was refused) */
    park_destroy(&c->rd);
    park_destroy(&c->wr);
    pthread_mutex_destroy(&c->mu);
    g_free(c);
}

mempipe *mempipe__glib_conn_lock(struct mempipe__glib_conn *c)
{
    pthread_mutex_lock(&c->mu);
    return atomic_load(&c->end);
}

void mempipe__glib_conn_unlock(struct mempipe__glib_conn *c)
{
    pthread_mutex_unlock(&c->mu);
}

/* The end for an operation GIO let through (so the stream is open). */
static mempipe *conn_end(struct mempipe__glib_conn *c)
{
    return atomic_load_explicit(&c->end, memory_order_acquire);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

static void set_error(GError **error, ssize_t err)
{
    int code;
    switch (err) {
    case -EPIPE:
        code = G_IO_ERROR_BROKEN_PIPE;
        break;
    case -ECONNRESET:
        code = G_IO_ERROR_CONNECTION_CLOSED; /* == BROKEN_PIPE in GIO */
        break;
    case -EAGAIN:
        code = G_IO_ERROR_WOULD_BLOCK;
        break;
    default:
        code = g_io_error_from_errno((gint)-err);
    }
    g_set_error_literal(error, G_IO_ERROR, code, mempipe_strerror((int)err));
}

/* A closed stream, for the pollable calls GIO does not check. */
static void set_closed(GError **error)
{
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                        "Stream is already closed");
}

/* A mempipe result for GIO: the count, or -1 with *error set. */
static gssize result(ssize_t n, GError **error)
{
    if (n >= 0)
        return n;
    set_error(error, n);
    return -1;
}

/* is_readable, is_writable: a call would not wait (a closed stream's
 * fails at once). */
static gboolean conn_ready(struct mempipe__glib_conn *c, int writing)
{
    mempipe *end = mempipe__glib_conn_lock(c);
    gboolean yes =
        end == NULL || (writing ? mempipe_poll_writable(end, NULL)
                                : mempipe_poll_readable(end, NULL)) == 1;
    mempipe__glib_conn_unlock(c);
    return yes;
}

/* create_source: a pollable source over a mempipe source of the stream's
 * end, or over one that is ready now once the stream is closed (as
 * GMemoryInputStream's). */
static GSource *conn_pollable_source(gpointer stream,
                                     struct mempipe__glib_conn *c,
                                     GIOCondition cond,
                                     GCancellable *cancellable)
{
    GSource *child = mempipe__glib_conn_source_new(c, cond);
    if (child == NULL)
        child = g_timeout_source_new(0);
    GSource *s = g_pollable_source_new_full(stream, child, cancellable);
    g_source_unref(child);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Blocking calls with a cancellable                                         */
/* ------------------------------------------------------------------------ */

/*
 * One poll call of a blocking read or write: returns its result, -EAGAIN
 * with w stored when it would wait.
 */
typedef ssize_t (*poll_fn)(mempipe *end, void *buf, size_t len,
                           const mempipe_waker *w);

static ssize_t poll_write_fn(mempipe *end, void *buf, size_t len,
                             const mempipe_waker *w)
{
    return mempipe_poll_write(end, buf, len, w);
}

/*
 * The wait of mempipe_read() or mempipe_write() (with_all: until all len
 * bytes are taken), on park p, stopped by cancellable. Returns the count
 * moved, or the error; -ECANCELED with *error set when cancelled before any
 * byte moved.
 */
static ssize_t wait_io(mempipe *end, struct park *p, poll_fn fn, char *buf,
                       size_t len, int with_all, GCancellable *cancellable,
                       GError **error)
{
    mempipe_waker w = {park_wake, p};
    gulong handler = 0;
    size_t done = 0;
    ssize_t n = 0;
    while (done < len || len == 0) {
        if (g_cancellable_is_cancelled(cancellable))
            break;
        unsigned seen = park_seq(p);
        n = fn(end, buf + done, len - done, &w);
        if (n >= 0) {
            done += (size_t)n;
            if (!with_all || n == 0)
                break;
            continue;
        }
        if (n != -EAGAIN)
            break;
        /*
         * Connected at the first wait only. If the cancellable was
         * cancelled meanwhile, g_cancellable_connect() runs the handler
         * at once (a wake) and returns 0; the loop then sees it.
         */
        if (handler == 0)
            handler = g_cancellable_connect(
                cancellable, G_CALLBACK(park_cancelled), p, NULL);
        park_wait(p, seen);
    }
    if (handler != 0)
        g_cancellable_disconnect(cancellable, handler);
    if (done > 0)
        return (ssize_t)done;
    if (n < 0 && n != -EAGAIN)
        return n;
    if (g_cancellable_set_error_if_cancelled(cancellable, error))
        return -ECANCELED;
    return n;
}

/* ------------------------------------------------------------------------ */
/* The input stream                                                          */
/* ------------------------------------------------------------------------ */

typedef struct {
    GInputStream parent;
    struct mempipe__glib_conn *conn;
} MempipeGlibInputStream;
typedef GInputStreamClass MempipeGlibInputStreamClass;

static void in_pollable_init(GPollableInputStreamInterface *iface);

G_DEFINE_TYPE_WITH_CODE(MempipeGlibInputStream, mempipe__glib_input_stream,
                        G_TYPE_INPUT_STREAM,
                        G_IMPLEMENT_INTERFACE(G_TYPE_POLLABLE_INPUT_STREAM,
                                              in_pollable_init))

#define IN_CONN(s) (((MempipeGlibInputStream *)(s))->conn)

static gssize in_read(GInputStream *stream, void *buf, gsize count,
                      GCancellable *cancellable, GError **error)
{
    mempipe *end = conn_end(IN_CONN(stream));
    ssize_t n;
    if (cancellable == NULL)
        n = mempipe_read(end, buf, count);
    else if ((n = wait_io(end, &IN_CONN(stream)->rd, mempipe_poll_read, buf,
                          count, 0, cancellable, error)) == -ECANCELED)
        return -1;
    return result(n, error);
}

/* Closing the input alone leaves the pipe as it is (as a socket's input
 * stream does); the iostream's close closes the end. */
static gboolean in_close(GInputStream *stream, GCancellable *cancellable,
                         GError **error)
{
    (void)stream;
    (void)cancellable;
    (void)error;
    return TRUE;
}

static gboolean in_is_readable(GPollableInputStream *stream)
{
    return conn_ready(IN_CONN(stream), 0);
}

static GSource *in_create_source(GPollableInputStream *stream,
                                 GCancellable *cancellable)
{
    return conn_pollable_source(stream, IN_CONN(stream), G_IO_IN, cancellable);
}

static gssize in_read_nonblocking(GPollableInputStream *stream, void *buf,
                                  gsize count, GError **error)
{
    mempipe *end = conn_end(IN_CONN(stream));
    if (end == NULL) {
        set_closed(error);
        return -1;
    }
    return result(mempipe_poll_read(end, buf, count, NULL), error);
}

static void in_pollable_init(GPollableInputStreamInterface *iface)
{
    iface->is_readable = in_is_readable;
    iface->create_source = in_create_source;
    iface->read_nonblocking = in_read_nonblocking;
}

static void in_finalize(GObject *object)
{
    mempipe__glib_conn_unref(IN_CONN(object));
    G_OBJECT_CLASS(mempipe__glib_input_stream_parent_class)->finalize(object);
}

static void
mempipe__glib_input_stream_class_init(MempipeGlibInputStreamClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = in_finalize;
    klass->read_fn = in_read;
    klass->close_fn = in_close;
}

static void mempipe__glib_input_stream_init(MempipeGlibInputStream *s)
{
    (void)s;
}

/* ------------------------------------------------------------------------ */
/* The output stream                                                         */
/* ------------------------------------------------------------------------ */

typedef struct {
    GOutputStream parent;
    struct mempipe__glib_conn *conn;
} MempipeGlibOutputStream;
typedef GOutputStreamClass MempipeGlibOutputStreamClass;

static void out_pollable_init(GPollableOutputStreamInterface *iface);

G_DEFINE_TYPE_WITH_CODE(MempipeGlibOutputStream, mempipe__glib_output_stream,
                        G_TYPE_OUTPUT_STREAM,
                        G_IMPLEMENT_INTERFACE(G_TYPE_POLLABLE_OUTPUT_STREAM,
                                              out_pollable_init))

#define OUT_CONN(s) (((MempipeGlibOutputStream *)(s))->conn)

static gssize out_write(GOutputStream *stream, const void *buf, gsize count,
                        GCancellable *cancellable, GError **error)
{
    mempipe *end = conn_end(OUT_CONN(stream));
    ssize_t n;
    if (cancellable == NULL)
        n = mempipe_write(end, buf, count);
    else if ((n = wait_io(end, &OUT_CONN(stream)->wr, poll_write_fn,
                          (char *)buf, count, 1, cancellable, error)) ==
             -ECANCELED)
        return -1;
    return result(n, error);
}

/* Closing the output is the shutdown: the peer reads end of file. */
static gboolean out_close(GOutputStream *stream, GCancellable *cancellable,
                          GError **error)
{
    (void)cancellable;
    (void)error;
    struct mempipe__glib_conn *c = OUT_CONN(stream);
    mempipe *end = mempipe__glib_conn_lock(c);
    if (end != NULL)
        mempipe_shutdown(end);
    mempipe__glib_conn_unlock(c);
    return TRUE;
}

static gboolean out_is_writable(GPollableOutputStream *stream)
{
    return conn_ready(OUT_CONN(stream), 1);
}

static GSource *out_create_source(GPollableOutputStream *stream,
                                  GCancellable *cancellable)
{
    return conn_pollable_source(stream, OUT_CONN(stream), G_IO_OUT,
                                cancellable);
}

static gssize out_write_nonblocking(GPollableOutputStream *stream,
                                    const void *buf, gsize count,
                                    GError **error)
{
    mempipe *end = conn_end(OUT_CONN(stream));
    if (end == NULL) {
        set_closed(error);
        return -1;
    }
    return result(mempipe_poll_write(end, buf, count, NULL), error);
}

#define VEC_WINDOW 64 /* slices per mempipe_poll_writev(); short is fine */

static GPollableReturn out_writev_nonblocking(GPollableOutputStream *stream,
                                              const GOutputVector *vectors,
                                              gsize n_vectors,
                                              gsize *bytes_written,
                                              GError **error)
{
    *bytes_written = 0;
    mempipe *end = conn_end(OUT_CONN(stream));
    if (end == NULL) {
        set_closed(error);
        return G_POLLABLE_RETURN_FAILED;
    }
    /* A partial write is a success: take a window of the slices whose sum
     * stays within what one call may return. */
    struct iovec iov[VEC_WINDOW];
    int cnt = 0;
    size_t total = 0;
    for (gsize i = 0; i < n_vectors && cnt < VEC_WINDOW; i++) {
        size_t len = vectors[i].size;
        if (len > (size_t)SSIZE_MAX - total)
            len = (size_t)SSIZE_MAX - total;
        iov[cnt].iov_base = (void *)vectors[i].buffer;
        iov[cnt].iov_len = len;
        cnt++;
        total += len;
        if (total == (size_t)SSIZE_MAX)
            break;
    }
    ssize_t n = mempipe_poll_writev(end, iov, cnt, NULL);
    if (n == -EAGAIN)
        return G_POLLABLE_RETURN_WOULD_BLOCK;
    if (n < 0) {
        set_error(error, n);
        return G_POLLABLE_RETURN_FAILED;
    }
    *bytes_written = (gsize)n;
    return G_POLLABLE_RETURN_OK;
}

static void out_pollable_init(GPollableOutputStreamInterface *iface)
{
    iface->is_writable = out_is_writable;
    iface->create_source = out_create_source;
    iface->write_nonblocking = out_write_nonblocking;
    iface->writev_nonblocking = out_writev_nonblocking;
}

static void out_finalize(GObject *object)
{
    mempipe__glib_conn_unref(OUT_CONN(object));
    G_OBJECT_CLASS(mempipe__glib_output_stream_parent_class)->finalize(object);
}

static void
mempipe__glib_output_stream_class_init(MempipeGlibOutputStreamClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = out_finalize;
    klass->write_fn = out_write;
    klass->close_fn = out_close;
}

static void mempipe__glib_output_stream_init(MempipeGlibOutputStream *s)
{
    (void)s;
}

/* ------------------------------------------------------------------------ */
/* The GIOStream                                                             */
/* ------------------------------------------------------------------------ */

typedef struct {
    GIOStream parent;
    struct mempipe__glib_conn *conn;
    GInputStream *in;
    GOutputStream *out;
} MempipeGlibIOStream;
typedef GIOStreamClass MempipeGlibIOStreamClass;

G_DEFINE_TYPE(MempipeGlibIOStream, mempipe__glib_iostream, G_TYPE_IO_STREAM)

static GInputStream *ios_get_input(GIOStream *stream)
{
    return ((MempipeGlibIOStream *)stream)->in;
}

static GOutputStream *ios_get_output(GIOStream *stream)
{
    return ((MempipeGlibIOStream *)stream)->out;
}

/*
 * Both streams (GIO's own close: the output's, so a shutdown, then the
 * input's), then the end, unless a stream refused because an operation of
 * it is pending (G_IO_ERROR_PENDING): the end must not be closed under a
 * running call, so it is then closed at the last unref.
 */
static gboolean ios_close(GIOStream *stream, GCancellable *cancellable,
                          GError **error)
{
    MempipeGlibIOStream *s = (MempipeGlibIOStream *)stream;
    gboolean ok = G_IO_STREAM_CLASS(mempipe__glib_iostream_parent_class)
                      ->close_fn(stream, cancellable, error);
    if (g_input_stream_is_closed(s->in) && g_output_stream_is_closed(s->out))
        conn_close(s->conn);
    return ok;
}

/* It never waits, so the async close is the sync one (GIO's default would
 * run it on a worker thread). */
static void ios_close_async(GIOStream *stream, int io_priority,
                            GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer data)
{
    static char tag; /* a function's address is no gpointer in ISO C */
    GTask *task = g_task_new(stream, cancellable, callback, data);
    g_task_set_source_tag(task, &tag);
    g_task_set_priority(task, io_priority);
    GError *error = NULL;
    if (ios_close(stream, cancellable, &error))
        g_task_return_boolean(task, TRUE);
    else
        g_task_return_error(task, error);
    g_object_unref(task);
}

static gboolean ios_close_finish(GIOStream *stream, GAsyncResult *result,
                                 GError **error)
{
    (void)stream;
    return g_task_propagate_boolean(G_TASK(result), error);
}

static void ios_finalize(GObject *object)
{
    MempipeGlibIOStream *s = (MempipeGlibIOStream *)object;
    g_object_unref(s->in);
    g_object_unref(s->out);
    mempipe__glib_conn_unref(s->conn);
    G_OBJECT_CLASS(mempipe__glib_iostream_parent_class)->finalize(object);
}

static void mempipe__glib_iostream_class_init(MempipeGlibIOStreamClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = ios_finalize;
    klass->get_input_stream = ios_get_input;
    klass->get_output_stream = ios_get_output;
    klass->close_fn = ios_close;
    klass->close_async = ios_close_async;
    klass->close_finish = ios_close_finish;
}

static void mempipe__glib_iostream_init(MempipeGlibIOStream *s)
{
    (void)s;
}

GIOStream *mempipe_glib_iostream_new(mempipe *end)
{
    g_return_val_if_fail(end != NULL, NULL);
    /* Zero-byte calls: they move nothing and say -EBADF for a missing
     * direction (R8, R14). */
    g_return_val_if_fail(mempipe_poll_read(end, NULL, 0, NULL) != -EBADF &&
                             mempipe_poll_write(end, NULL, 0, NULL) != -EBADF,
                         NULL);
    MempipeGlibIOStream *s =
        g_object_new(mempipe__glib_iostream_get_type(), NULL);
    s->conn = conn_new(end);
    MempipeGlibInputStream *in =
        g_object_new(mempipe__glib_input_stream_get_type(), NULL);
    MempipeGlibOutputStream *out =
        g_object_new(mempipe__glib_output_stream_get_type(), NULL);
    in->conn = s->conn;
    out->conn = s->conn;
    mempipe__glib_conn_ref(s->conn);
    mempipe__glib_conn_ref(s->conn);
    s->in = G_INPUT_STREAM(in);
    s->out = G_OUTPUT_STREAM(out);
    return G_IO_STREAM(s);
}

mempipe *mempipe_glib_iostream_get_end(GIOStream *stream)
{
    g_return_val_if_fail(
        G_TYPE_CHECK_INSTANCE_TYPE(stream, mempipe__glib_iostream_get_type()),
        NULL);
    return conn_end(((MempipeGlibIOStream *)stream)->conn);
}
