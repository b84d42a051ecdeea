/* SPDX-License-Identifier: MIT */
/*
 * The GLib adapter's GSource: readiness of one end, fed by mempipe wakers.
 *
 * prepare and check look at the end with mempipe_poll_readable() and
 * mempipe_poll_writable(), which move no byte and, when the direction
 * would wait, store our waker. dispatch looks once more and runs the
 * callback with what holds. So the source needs no fd and the loop thread
 * makes no syscall for it.
 *
 * The lost wake-up argument. A stored waker may run on any thread at any
 * time after it was stored, even before the prepare that stored it has
 * returned. What it must guarantee: if the loop thread is about to block in
 * poll(), or is blocked there, on a view of the end that the wake made
 * stale, the poll returns and the source looks again. Two cases:
 *
 *   - The wake runs on another thread: it wakes the context
 *     (g_main_context_wakeup(), a write to the context's wakeup fd, which
 *     every poll of the context watches). Whether it lands before, during
 *     or after our prepare, the next poll returns at once, and the check
 *     that follows looks at the end with the wake's cause visible (mempipe
 *     ran the waker after publishing that cause).
 *
 *   - The wake runs on the loop thread itself (its own write to the peer,
 *     say, from a callback): that thread is not in poll(), and the next
 *     thing GLib does for this source is a prepare or a check, which looks
 *     at the end again, unless the thread is between this source's prepare
 *     and its check (another source's prepare, or GLib's own bookkeeping,
 *     ran the wake). `window` is 1 exactly there, and then the wake is
 *     treated as one from another thread. Otherwise it does nothing: no
 *     eventfd write, no extra iteration.
 *
 * `thread` is the thread that ran the source's last prepare, `ctx` its
 * context; a wake compares `thread` with its own. The three fields are
 * GLib atomics (seq_cst), stored before the prepare stores the waker, and
 * mempipe orders a waker's store before its call (the slot's release and
 * acquire), so a wake of a waker stored by a prepare sees that prepare's
 * thread, context and window.
 *
 * Lifetime. A stored waker stays in the end until it runs, is replaced, or
 * the end is closed, and the source may be destroyed and freed long before
 * any of those. So a waker's ctx is not a pointer but the source's number
 * in a registry (a hash table under one mutex): a wake looks its number up
 * and finds nothing once the source is disposed (the dispose function
 * removes it, under the same mutex, before GLib frees the source), and a
 * wake that finds it reads it under the mutex, so the source cannot be
 * freed meanwhile. Nothing is allocated per wake or per stored
 * waker, so a waker dropped by a close leaks nothing. A destroyed source
 * is not woken; its context is alive while it is not destroyed (freeing a
 * context destroys its sources first), up to the race every GLib source
 * woken from another thread has with a context freed at that very moment
 * (include/mempipe/glib.h says so).
 */
#define G_LOG_DOMAIN "mempipe"

#include "glib_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if !GLIB_CHECK_VERSION(2, 64, 0)
#error "the mempipe GLib adapter needs GLib 2.64 (dispose functions)"
#endif

#define DIR_READ  1u
#define DIR_WRITE 2u

/* Every bit a GIOCondition has. */
#define ALL_CONDS                                                              \
    (G_IO_IN | G_IO_OUT | G_IO_PRI | G_IO_ERR | G_IO_HUP | G_IO_NVAL)

/* What a finished direction is, once learnt (end of file and errors
 * never end, so the look that tells them apart is made once). */
#define FIN     1u /* no byte will come (read) or go (write) any more */
#define FIN_ERR 2u /* ... and it ends with an error, not a clean close */

struct msource {
    GSource base;
    mempipe *end;                    /* plain source: the caller's end */
    struct mempipe__glib_conn *conn; /* or a stream's connection */
    GIOCondition cond;               /* reported: asked | G_IO_HUP | ERR */
    unsigned has;                    /* DIR_READ | DIR_WRITE the end has */
    unsigned dirs;                   /* of those, the watched ones */
    uintptr_t id;                    /* the waker's ctx: a registry key */
    unsigned rfin, wfin;             /* FIN bits; context thread only */
    gint window;     /* atomic: 1 from this source's prepare to its check */
    gpointer thread; /* atomic: the GThread that ran the last prepare */
    gpointer ctx;    /* atomic: the GMainContext it was prepared in */
};

/* ------------------------------------------------------------------------ */
/* The registry: waker numbers to live sources                               */
/* ------------------------------------------------------------------------ */

/*
 * A pthread mutex, not a GMutex: GLib's is a futex of its own, which
 * ThreadSanitizer cannot see, and this lock is what orders a wake's look
 * at a source before the source's free on another thread.
 */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static GHashTable *reg; /* id -> struct msource *; made once, kept */
static uintptr_t reg_next = 1;

static void reg_add(struct msource *s)
{
    pthread_mutex_lock(&reg_mu);
    if (reg == NULL)
        reg = g_hash_table_new(g_direct_hash, g_direct_equal);
    /* Numbers are never reused while their source lives (a wrap of the
     * counter, after 2^32 sources on a 32-bit system, skips the live
     * ones); a stale waker of a dead source that happens to wake a new one
     * is only a spurious wake. 0 is never used. */
    do
        s->id = reg_next++;
    while (s->id == 0 || g_hash_table_contains(reg, (gpointer)s->id));
    g_hash_table_insert(reg, (gpointer)s->id, s);
    pthread_mutex_unlock(&reg_mu);
}

/* The dispose function: GLib calls it when the last reference goes,
 * before finalize and the free (without the context's lock). */
static void reg_remove(GSource *base)
{
    struct msource *s = (struct msource *)base;
    pthread_mutex_lock(&reg_mu);
    if (g_hash_table_lookup(reg, (gpointer)s->id) == s)
        g_hash_table_remove(reg, (gpointer)s->id);
    pthread_mutex_unlock(&reg_mu);
}

static void source_wake(void *ctx)
{
    GMainContext *wake = NULL;
    pthread_mutex_lock(&reg_mu);
    struct msource *s = g_hash_table_lookup(reg, ctx);
    /*
     * Nothing to do for a source that is gone or destroyed, nor on the
     * thread that iterates the context outside the prepare-check window
     * (the top of this file). The mutex keeps the source whole while its
     * fields are read; the context outlives the source's destruction, so
     * the wake itself needs no lock (and g_main_context_wakeup() takes
     * none: a write to an eventfd, a pipe elsewhere).
     */
    if (s != NULL && !g_source_is_destroyed(&s->base) &&
        (g_atomic_pointer_get(&s->thread) != (gpointer)g_thread_self() ||
         g_atomic_int_get(&s->window)))
        wake = g_atomic_pointer_get(&s->ctx);
    pthread_mutex_unlock(&reg_mu);
    if (wake != NULL)
        g_main_context_wakeup(wake);
}

/* ------------------------------------------------------------------------ */
/* Looking at the end                                                        */
/* ------------------------------------------------------------------------ */

/* The reading direction, watched: G_IO_IN or 0 (w stored); learns rfin. */
static GIOCondition look_read(struct msource *s, mempipe *end,
                              const mempipe_waker *w)
{
    if (s->rfin != 0)
        return G_IO_IN;
    if (mempipe_poll_readable(end, w) != 1)
        return 0; /* -EAGAIN: w is stored */
    /*
     * A read would not wait. With bytes buffered that is all. With none,
     * it is end of file or an error, for good: only this thread reads, so
     * no byte left since poll_readable() saw them, and none can come after
     * the end (an abort discards the bytes, and its error stays). A read of
     * one byte then takes none and says which (mempipe has no other call
     * that tells a pending error from end of file).
     */
    if (mempipe_readable(end) > 0)
        return G_IO_IN;
    char c;
    ssize_t n = mempipe_poll_read(end, &c, 1, NULL);
    if (n == 0)
        s->rfin = FIN;
    else if (n < 0 && n != -EAGAIN)
        s->rfin = FIN | FIN_ERR;
    /* -EAGAIN: a yield of the thread's budget or an injected pending; the
     * next look asks again. */
    return G_IO_IN;
}

/* The writing direction, watched: G_IO_OUT or 0 (w stored); learns wfin. */
static GIOCondition look_write(struct msource *s, mempipe *end,
                               const mempipe_waker *w)
{
    if (s->wfin != 0)
        return G_IO_OUT;
    if (mempipe_poll_writable(end, w) != 1)
        return 0;
    /*
     * Room, or closed. Only this thread writes, so room seen stays; no
     * room means closed, for good. A zero-byte write moves nothing, counts
     * for no fault or budget, and returns the close's error (R14).
     */
    if (mempipe_writable(end) > 0)
        return G_IO_OUT;
    ssize_t n = mempipe_poll_write(end, NULL, 0, NULL);
    if (n == -EPIPE)
        s->wfin = FIN;
    else if (n < 0)
        s->wfin = FIN | FIN_ERR;
    return G_IO_OUT;
}

/*
 * A direction the source does not watch, for G_IO_HUP: it must not call
 * the end's reads or writes (another thread may be the reader or writer),
 * so it asks mempipe_shut_state(), which any thread may call (R67).
 * Returns 1 if that direction is finished: reading, nothing buffered and
 * the receive side shut; writing, the send side shut.
 */
static int other_finished(mempipe *end, unsigned dir)
{
    int st = mempipe_shut_state(end);
    if (st < 0)
        return 0;
    if (dir == DIR_WRITE)
        return (st & MEMPIPE_SHUT_WRITE) != 0;
    return (st & MEMPIPE_SHUT_READ) != 0 && mempipe_readable(end) == 0;
}

/* Whether direction dir (one the end has) is finished, and its FIN bits. */
static unsigned finished(struct msource *s, mempipe *end, unsigned dir)
{
    unsigned fin = dir == DIR_READ ? s->rfin : s->wfin;
    if (s->dirs & dir)
        return fin;
    return other_finished(end, dir) ? FIN : 0;
}

/*
 * The conditions that hold now, filtered to what is reported; arms the
 * waker in each watched direction that would wait. G_IO_HUP, as a
 * socket's POLLHUP: nothing can flow either way any more (every direction
 * the end has is finished); G_IO_ERR: a watched direction ended in an
 * error.
 */
static GIOCondition look(struct msource *s)
{
    mempipe *end = s->end;
    if (s->conn != NULL && (end = mempipe__glib_conn_lock(s->conn)) == NULL) {
        /* The stream was closed: ready, so that its user finds out. */
        mempipe__glib_conn_unlock(s->conn);
        return ((s->dirs & DIR_READ ? G_IO_IN : 0) |
                (s->dirs & DIR_WRITE ? G_IO_OUT : 0) | G_IO_HUP) &
               s->cond;
    }
    mempipe_waker w = {source_wake, (void *)s->id};
    GIOCondition ev = 0;
    if (s->dirs & DIR_READ)
        ev |= look_read(s, end, &w);
    if (s->dirs & DIR_WRITE)
        ev |= look_write(s, end, &w);
    if ((s->rfin | s->wfin) & FIN_ERR)
        ev |= G_IO_ERR;
    if ((s->rfin | s->wfin) != 0) {
        unsigned fin = FIN;
        if (s->has & DIR_READ)
            fin &= finished(s, end, DIR_READ);
        if (fin && (s->has & DIR_WRITE))
            fin &= finished(s, end, DIR_WRITE);
        if (fin)
            ev |= G_IO_HUP;
    }
    if (s->conn != NULL)
        mempipe__glib_conn_unlock(s->conn);
    return ev & s->cond;
}

/* ------------------------------------------------------------------------ */
/* GSourceFuncs                                                              */
/* ------------------------------------------------------------------------ */

static gboolean source_prepare(GSource *base, gint *timeout)
{
    struct msource *s = (struct msource *)base;
    *timeout = -1;
    /* All before the look that may store the waker (top of the file). */
    g_atomic_pointer_set(&s->ctx, g_source_get_context(base));
    g_atomic_pointer_set(&s->thread, g_thread_self());
    g_atomic_int_set(&s->window, 1);
    if (look(s) == 0)
        return FALSE;
    /* Ready: this iteration polls with a zero timeout, never blocks. */
    g_atomic_int_set(&s->window, 0);
    return TRUE;
}

static gboolean source_check(GSource *base)
{
    struct msource *s = (struct msource *)base;
    /* The poll is over: a wake on this thread from here on is followed by
     * this look or by the next prepare's. */
    g_atomic_int_set(&s->window, 0);
    return look(s) != 0;
}

static gboolean source_dispatch(GSource *base, GSourceFunc callback,
                                gpointer data)
{
    struct msource *s = (struct msource *)base;
    GIOCondition ev = look(s); /* what holds now, not at the check */
    if (ev == 0)
        return G_SOURCE_CONTINUE; /* a wake that found nothing */
    if (callback == NULL) {
        g_warning("a mempipe source was dispatched without a callback; "
                  "call g_source_set_callback()");
        return G_SOURCE_REMOVE;
    }
    mempipe *end = s->conn != NULL ? NULL : s->end;
    return ((mempipe_glib_source_func)(void (*)(void))callback)(end, ev, data);
}

static void source_finalize(GSource *base)
{
    struct msource *s = (struct msource *)base;
    if (s->conn != NULL)
        mempipe__glib_conn_unref(s->conn);
}

/* For g_source_set_closure(), and so for g_source_set_dummy_callback(),
 * which g_pollable_source_new_full() uses on its child sources. */
static gboolean source_closure_callback(mempipe *end, GIOCondition cond,
                                        gpointer data)
{
    GClosure *closure = data;
    GValue params[2] = {G_VALUE_INIT, G_VALUE_INIT};
    GValue result = G_VALUE_INIT;
    g_value_init(&result, G_TYPE_BOOLEAN);
    g_value_init(&params[0], G_TYPE_POINTER);
    g_value_set_pointer(&params[0], end);
    g_value_init(&params[1], G_TYPE_IO_CONDITION);
    g_value_set_flags(&params[1], cond);
    g_closure_invoke(closure, &result, 2, params, NULL);
    gboolean keep = g_value_get_boolean(&result);
    g_value_unset(&result);
    g_value_unset(&params[0]);
    g_value_unset(&params[1]);
    return keep;
}

static GSourceFuncs source_funcs = {
    .prepare = source_prepare,
    .check = source_check,
    .dispatch = source_dispatch,
    .finalize = source_finalize,
    .closure_callback = (GSourceFunc)(void (*)(void))source_closure_callback,
    .closure_marshal = NULL, /* g_cclosure_marshal_generic */
};

/* ------------------------------------------------------------------------ */
/* Making one                                                                */
/* ------------------------------------------------------------------------ */

/*
 * The directions end has (*has) and those cond watches (returned), or 0
 * (with a critical) if cond is no GIOCondition or asks for a direction the
 * end lacks. The zero-byte calls move nothing and return -EBADF for a
 * missing direction (R8, R14).
 */
static unsigned directions(mempipe *end, GIOCondition cond, unsigned *has)
{
    g_return_val_if_fail((cond & ~ALL_CONDS) == 0, 0);
    *has = (mempipe_poll_read(end, NULL, 0, NULL) != -EBADF ? DIR_READ : 0) |
           (mempipe_poll_write(end, NULL, 0, NULL) != -EBADF ? DIR_WRITE : 0);
    g_return_val_if_fail((*has & DIR_READ) || !(cond & G_IO_IN), 0);
    g_return_val_if_fail((*has & DIR_WRITE) || !(cond & G_IO_OUT), 0);
    unsigned dirs =
        (cond & G_IO_IN ? DIR_READ : 0) | (cond & G_IO_OUT ? DIR_WRITE : 0);
    if (dirs == 0) /* G_IO_HUP, G_IO_ERR only */
        dirs = *has & DIR_READ ? DIR_READ : DIR_WRITE;
    return dirs;
}

static GSource *make(mempipe *end, struct mempipe__glib_conn *conn,
                     GIOCondition cond)
{
    unsigned has, dirs = directions(end, cond, &has);
    if (dirs == 0)
        return NULL;
    GSource *base = g_source_new(&source_funcs, sizeof(struct msource));
    struct msource *s = (struct msource *)base;
    g_source_set_name(base, "mempipe");
    s->end = end;
    s->conn = conn;
    if (conn != NULL)
        mempipe__glib_conn_ref(conn);
    s->cond = cond | G_IO_HUP | G_IO_ERR;
    s->has = has;
    s->dirs = dirs;
    g_source_set_dispose_function(base, reg_remove);
    reg_add(s);
    return base;
}

GSource *mempipe_glib_source_new(mempipe *end, GIOCondition cond)
{
    g_return_val_if_fail(end != NULL, NULL);
    return make(end, NULL, cond);
}

GSource *mempipe__glib_conn_source_new(struct mempipe__glib_conn *c,
                                       GIOCondition cond)
{
    mempipe *end = mempipe__glib_conn_lock(c);
    GSource *s = NULL;
    if (end != NULL)
        s = make(end, c, cond);
    mempipe__glib_conn_unlock(c);
    return s;
}

gboolean mempipe_glib_source_set_condition(GSource *source, GIOCondition cond)
{
    g_return_val_if_fail(source != NULL, FALSE);
    g_return_val_if_fail(source->source_funcs == &source_funcs, FALSE);
    struct msource *s = (struct msource *)source;
    g_return_val_if_fail(s->conn == NULL, FALSE);
    unsigned has, dirs = directions(s->end, cond, &has);
    if (dirs == 0)
        return FALSE;
    s->cond = cond | G_IO_HUP | G_IO_ERR;
    s->dirs = dirs;
    return TRUE;
}
