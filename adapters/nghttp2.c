/* SPDX-License-Identifier: MIT */
/*
 * The nghttp2 adapter: one pump between a session's mem_send/mem_recv and
 * an end. It knows only the public API: mempipe_poll_* to move bytes,
 * mempipe_read/mempipe_write and mempipe_poll_readable/_writable with a
 * parker of its own to wait in blocking mode.
 *
 * The one state that outlives a call is the output nghttp2 handed over
 * and the pipe did not take yet (a pointer into nghttp2's buffer, valid
 * until its next mem_send, which only the pump calls). The pump's fixed
 * signature gives it no place, so it lives in a table keyed by the
 * session (see "Pending output" in the header), an entry only while
 * output waits.
 */
#include "mempipe/nghttp2.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define CHUNK 32768 /* bytes read per mem_recv; on the stack */

/* ------------------------------------------------------------------------ */
/* The table of pending output                                              */
/* ------------------------------------------------------------------------ */

struct entry {
    const nghttp2_session *s; /* the key; fixed for the entry's life */
    mempipe *end;             /* the end the output goes to */
    const uint8_t *tail;      /* the rest of mem_send's last chunk */
    size_t len;
    struct entry *next; /* chain; changed under the table's lock only */
};

/*
 * Chained hash, grown by doubling. Lookups, inserts and removals hold the
 * lock; an entry's tail/len are read and written without it, by the one
 * thread pumping that session (nobody else touches them).
 */
static struct {
    pthread_mutex_t mu;
    struct entry **bucket;
    size_t nbucket;
    /*
     * Entries in the table. A pump reads it (relaxed) to skip the lock
     * when it is 0. That is safe for the one entry the reader cares
     * about, its own session's: that entry was inserted by this thread or
     * by one whose hand-over of the session happens before this call, so
     * the insert's increment comes before this load in the counter's
     * modification order and the load sees at least 1 while it exists.
     */
    atomic_size_t count;
} table = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

static size_t slot(const nghttp2_session *s, size_t n)
{
    uintptr_t h = (uintptr_t)s;
    h ^= h >> 17;
    h *= (uintptr_t)0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 7) & (n - 1);
}

static struct entry *find_locked(const nghttp2_session *s)
{
    if (table.nbucket == 0)
        return NULL;
    struct entry *e = table.bucket[slot(s, table.nbucket)];
    while (e != NULL && e->s != s)
        e = e->next;
    return e;
}

static struct entry *find(const nghttp2_session *s)
{
    if (atomic_load_explicit(&table.count, memory_order_relaxed) == 0)
        return NULL;
    pthread_mutex_lock(&table.mu);
    struct entry *e = find_locked(s);
    pthread_mutex_unlock(&table.mu);
    return e;
}

/* Doubles the buckets (or makes the first 64); on failure keeps them. */
static void grow_locked(void)
{
    size_t n = table.nbucket ? table.nbucket * 2 : 64;
    struct entry **b = calloc(n, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < table.nbucket; i++) {
        for (struct entry *e = table.bucket[i], *next; e != NULL; e = next) {
            next = e->next;
            size_t k = slot(e->s, n);
            e->next = b[k];
            b[k] = e;
        }
    }
    free(table.bucket);
    table.bucket = b;
    table.nbucket = n;
}

/* Adds an entry for s (none exists); NULL if memory is short. */
static struct entry *insert(const nghttp2_session *s, mempipe *end,
                            const uint8_t *tail, size_t len)
{
    struct entry *e = malloc(sizeof *e);
    if (e == NULL)
        return NULL;
    e->s = s;
    e->end = end;
    e->tail = tail;
    e->len = len;
    pthread_mutex_lock(&table.mu);
    if (table.nbucket == 0 || atomic_load(&table.count) >= 2 * table.nbucket)
        grow_locked();
    if (table.nbucket == 0) {
        pthread_mutex_unlock(&table.mu);
        free(e);
        return NULL;
    }
    size_t k = slot(s, table.nbucket);
    e->next = table.bucket[k];
    table.bucket[k] = e;
    atomic_fetch_add_explicit(&table.count, 1, memory_order_relaxed);
    pthread_mutex_unlock(&table.mu);
    return e;
}

static void remove_entry(struct entry *e)
{
    pthread_mutex_lock(&table.mu);
    struct entry **p = &table.bucket[slot(e->s, table.nbucket)];
    while (*p != e)
        p = &(*p)->next;
    *p = e->next;
    atomic_fetch_sub_explicit(&table.count, 1, memory_order_relaxed);
    pthread_mutex_unlock(&table.mu);
    free(e);
}

/* ------------------------------------------------------------------------ */
/* The pump                                                                  */
/* ------------------------------------------------------------------------ */

static _Thread_local int last_error; /* mempipe_nghttp2_error() */

struct pump {
    nghttp2_session *s;
    mempipe *end;
    const mempipe_waker *w; /* NULL: poll calls store nothing */
    const uint8_t *tail;    /* output handed over, not yet in the pipe */
    size_t len;
    int moved;    /* this round moved a byte or a chunk */
    int in_wait;  /* the last read found the pipe empty */
    int out_wait; /* the last write found the pipe full */
    int out_dead; /* writing was refused (-EPIPE): output is dropped */
    int yielded;  /* the thread's budget ran out: stop at once */
};

/*
 * A poll call said -EAGAIN. With the budget exhausted that was a yield (its
 * waker already called): every later call would yield too, so the pump
 * stops at once and its caller re-queues the task.
 */
static void would_block(struct pump *p, int *wait)
{
    *wait = 1;
    if (p->w != NULL && mempipe_budget_left() == 0)
        p->yielded = 1;
}

/* An nghttp2 error code as the pump's result. */
static int ng_fail(int code)
{
    last_error = code;
    return code == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
}

/*
 * Writes the waiting output. -EAGAIN leaves it waiting (the waker
 * stored); -EPIPE drops it (the reader is gone, or this end shut down:
 * the caller decides from want_read whether that ends the session cleanly).
 */
static int flush(struct pump *p)
{
    while (p->len > 0) {
        ssize_t n = mempipe_poll_write(p->end, p->tail, p->len, p->w);
        if (n > 0) {
            p->tail += n;
            p->len -= (size_t)n;
            p->moved = 1;
        } else if (n == -EAGAIN) {
            would_block(p, &p->out_wait);
            return 0;
        } else if (n == -EPIPE) {
            p->out_dead = 1;
            p->len = 0;
            return 0;
        } else {
            return (int)n; /* -ENOMEM (kept), an injected fault, ... */
        }
    }
    return 0;
}

/* The waiting output, then new chunks while the pipe takes them. */
static int send_out(struct pump *p)
{
    p->out_wait = 0;
    for (;;) {
        int rc = flush(p);
        if (rc < 0 || p->len > 0 || p->out_dead)
            return rc;
        if (!nghttp2_session_want_write(p->s))
            return 0;
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(p->s, &data);
        if (n < 0)
            return ng_fail((int)n);
        if (n == 0)
            return 0; /* nothing serializable now (flow control, ...) */
        p->tail = data;
        p->len = (size_t)n;
        p->moved = 1;
    }
}

/*
 * Feeds input to nghttp2, all of it. mem_recv stops early when a callback
 * returns NGHTTP2_ERR_PAUSE and is called again with the rest; a pause
 * counts at least the byte that produced it, so that makes progress (should
 * nghttp2 take nothing again and again, that is an error, not a spin). A
 * pause on the last bytes leaves the frame's own end (on_frame_recv, a
 * stream's close) to the next call, which needs no bytes: so one call with
 * none follows (nghttp2 takes NULL, 0; it does nothing when nothing waits).
 */
static int feed(struct pump *p, const uint8_t *buf, size_t n)
{
    int idle = 0;
    while (n > 0) {
        ssize_t r = nghttp2_session_mem_recv(p->s, buf, n);
        if (r < 0)
            return ng_fail((int)r);
        if (r == 0 && ++idle == 64)
            return ng_fail(NGHTTP2_ERR_INVALID_STATE);
        if (r > 0)
            idle = 0;
        buf += r;
        n -= (size_t)r;
    }
    ssize_t r = nghttp2_session_mem_recv(p->s, NULL, 0);
    if (r < 0)
        return ng_fail((int)r);
    p->moved = 1;
    return 0;
}

/* End of file while the session still wants to read. */
static int peer_closed(void)
{
    last_error = NGHTTP2_ERR_EOF;
    return -EPIPE;
}

/* One chunk of input, if the session wants to read. */
static int recv_in(struct pump *p)
{
    p->in_wait = 0;
    if (!nghttp2_session_want_read(p->s))
        return 0;
    uint8_t buf[CHUNK];
    ssize_t n = mempipe_poll_read(p->end, buf, sizeof buf, p->w);
    if (n > 0)
        return feed(p, buf, (size_t)n);
    if (n == 0)
        return peer_closed();
    if (n == -EAGAIN) {
        would_block(p, &p->in_wait);
        return 0;
    }
    return (int)n;
}

/*
 * Rounds of output then one chunk of input, until a round moves nothing.
 * Returns 0 (done), -EAGAIN (in_wait and/or out_wait say where) or an error.
 */
static int run(struct pump *p)
{
    for (;;) {
        p->moved = 0;
        int rc = send_out(p);
        if (rc == 0 && !p->yielded)
            rc = recv_in(p);
        if (rc < 0)
            return rc;
        if (p->yielded)
            return -EAGAIN;
        if (!p->moved)
            break;
    }
    int want_read = nghttp2_session_want_read(p->s);
    if (p->out_dead) /* the input was drained first: EOF or -EAGAIN */
        return want_read ? -EPIPE : 0;
    if (p->len > 0 || p->in_wait)
        return -EAGAIN;
    /* want_read is 0 here; so is want_write, or nothing can be made. */
    return 0;
}

/*
 * Blocking mode's wait for either direction: a parker's waker stored for
 * reading and for writing (mempipe_poll_readable/_writable store it
 * without moving a byte), then sleep until it is called.
 *
 * A stored waker stays in the pipe after the pump returns, and may even be
 * running on the peer's thread then, so its ctx must outlive the call: a
 * parker is never freed. Each blocking pump takes one from a pool and puts
 * it back when it returns; a late call of an old waker only bumps the seq
 * of whoever holds that parker next, a spurious wake that its loop
 * re-checks. The pool holds as many parkers as blocking pumps ever ran at
 * once.
 */
struct parker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned seq;        /* wakes so far; under mu */
    struct parker *next; /* in the pool */
};

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct parker *pool;

static struct parker *parker_get(void)
{
    pthread_mutex_lock(&pool_mu);
    struct parker *k = pool;
    if (k != NULL)
        pool = k->next;
    pthread_mutex_unlock(&pool_mu);
    if (k != NULL)
        return k;
    k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    if (pthread_mutex_init(&k->mu, NULL) != 0) {
        free(k);
        return NULL;
    }
    if (pthread_cond_init(&k->cv, NULL) != 0) {
        pthread_mutex_destroy(&k->mu);
        free(k);
        return NULL;
    }
    return k;
}

static void parker_put(struct parker *k)
{
    pthread_mutex_lock(&pool_mu);
    k->next = pool;
    pool = k;
    pthread_mutex_unlock(&pool_mu);
}

static void parker_wake(void *ctx)
{
    struct parker *k = ctx;
    pthread_mutex_lock(&k->mu);
    k->seq++;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

/* Waits until a read or a write on end would not wait. */
static int wait_both(mempipe *end, struct parker *k)
{
    mempipe_waker w = {parker_wake, k};
    pthread_mutex_lock(&k->mu);
    unsigned seen = k->seq; /* a wake from here on ends the wait */
    pthread_mutex_unlock(&k->mu);
    int r = mempipe_poll_readable(end, &w);
    if (r == 1)
        return 0;
    int wr = mempipe_poll_writable(end, &w);
    if (wr == 1)
        return 0;
    if (r != -EAGAIN)
        return r;
    if (wr != -EAGAIN)
        return wr;
    pthread_mutex_lock(&k->mu);
    while (k->seq == seen)
        pthread_cond_wait(&k->cv, &k->mu);
    pthread_mutex_unlock(&k->mu);
    return 0;
}

/*
 * Blocking mode: run() until it is done, waiting where it would return
 * -EAGAIN. It returns -EAGAIN only with output waiting or input wanted.
 * Input wanted alone: nothing can make output but input, so a blocking
 * read is right. Output alone: run() read until want_read was 0, so a
 * blocking write is. Both: either may move first (waiting for one could
 * deadlock two peers that both write into full pipes), so wait for both.
 */
static int run_blocking(struct pump *p, struct parker *k)
{
    for (;;) {
        int rc = run(p);
        if (rc != -EAGAIN)
            return rc;
        rc = 0;
        if (p->in_wait && p->len > 0) {
            rc = wait_both(p->end, k);
        } else if (p->len > 0) {
            ssize_t n = mempipe_write(p->end, p->tail, p->len);
            if (n > 0) { /* all, or short: the next write tells why */
                p->tail += n;
                p->len -= (size_t)n;
            } else if (n == -EPIPE) {
                p->out_dead = 1;
                p->len = 0;
            } else {
                rc = (int)n;
            }
        } else {
            uint8_t buf[CHUNK];
            ssize_t n = mempipe_read(p->end, buf, sizeof buf);
            if (n > 0)
                rc = feed(p, buf, (size_t)n);
            else if (n == 0)
                rc = peer_closed();
            else
                rc = (int)n;
        }
        if (rc < 0)
            return rc;
    }
}

int mempipe_nghttp2_pump(nghttp2_session *s, mempipe *end,
                         const mempipe_waker *w)
{
    last_error = 0;
    if (s == NULL || end == NULL || (w != NULL && w->wake == NULL))
        return -EINVAL;
    /* Zero-length calls check the direction and touch nothing (R8, R14). */
    ssize_t r = mempipe_poll_read(end, NULL, 0, NULL);
    if (r == -EBADF || mempipe_poll_write(end, NULL, 0, NULL) == -EBADF)
        return -EBADF;
    struct entry *e = find(s);
    if (e != NULL && e->end != end)
        return -EINVAL;

    struct pump p = {s, end, w, NULL, 0, 0, 0, 0, 0, 0};
    if (e != NULL) {
        p.tail = e->tail;
        p.len = e->len;
    }
    int rc;
    if (w != NULL) {
        rc = run(&p);
    } else {
        struct parker *k = parker_get();
        if (k == NULL)
            return -ENOMEM; /* nothing done */
        /* As mempipe_read/mempipe_write: blocking ignores the budget. */
        unsigned left = mempipe_budget_left();
        mempipe_budget_set(0);
        rc = run_blocking(&p, k);
        mempipe_budget_set(left == UINT_MAX ? 0 : left);
        parker_put(k);
    }

    /* Keep the waiting output for the next call, or drop the entry. */
    int keep = p.len > 0 && (rc == -EAGAIN || (rc == -ENOMEM && !last_error));
    if (keep && e != NULL) {
        e->tail = p.tail;
        e->len = p.len;
    } else if (keep && insert(s, end, p.tail, p.len) == NULL) {
        last_error = NGHTTP2_ERR_NOMEM;
        rc = -ENOMEM; /* the output is lost: the session is finished */
    } else if (!keep && e != NULL) {
        remove_entry(e);
    }
    return rc;
}

int mempipe_nghttp2_release(nghttp2_session *s)
{
    if (s == NULL)
        return -EINVAL;
    struct entry *e = find(s);
    if (e != NULL)
        remove_entry(e);
    return 0;
}

size_t mempipe_nghttp2_pending(const nghttp2_session *s)
{
    struct entry *e = s != NULL ? find(s) : NULL;
    return e != NULL ? e->len : 0;
}

int mempipe_nghttp2_error(void)
{
    return last_error;
}
