/* SPDX-License-Identifier: MIT */
/* The rule tests' kind whose peer end is in a child process (xproc.h). */
#define XP_IMPL
#include "xproc.h"

#include "shm.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
    XP_POLL_READ = 1,
    XP_READ,
    XP_POLL_WRITE,
    XP_WRITE,
    XP_POLL_WRITEV,
    XP_READABLE,
    XP_WRITABLE,
    XP_CAPACITY,
    XP_SHUTDOWN,
    XP_POLL_SHUTDOWN,
    XP_POLL_FLUSH,
    XP_CLOSE,
    XP_SYNC,
    XP_HELLO, /* the child's first word: its attach's result */
    XP_RESP,  /* a call's answer */
    XP_WAKE,  /* the child's end called a waker stored through it */
};

/* The most bytes one call carries each way: the rule bodies move at most
 * a few MiB per call; a larger one is refused loudly, not cut short. */
#define XP_MAX_BYTES ((uint64_t)64 << 20)

/* One message: this header, then len bytes. */
struct xp_msg {
    uint32_t op, id;
    int64_t rc;     /* an answer's return */
    uint64_t n;     /* a call's length or slice count */
    uint64_t wfn;   /* a waker's function and context, as this process's */
    uint64_t wctx;  /* values: the child only carries them */
    uint32_t wk;    /* 0 no waker (NULL), 1 a waker, 2 one whose wake is NULL */
    uint32_t nullb; /* the buffer (or slice array) passed was NULL */
    uint64_t len;
};

/* An infrastructure failure, not a rule's: loud, in the parent or the
 * child (never a cmocka assertion, which may be on a thread of ours). */
static void xp_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "xproc [%d]: ", (int)getpid());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static void xp_put(int fd, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            xp_die("send: %s", strerror(errno));
        c += k, n -= (size_t)k;
    }
}

/* Reads n bytes; false at a clean end of file before the first. */
static bool xp_get(int fd, void *p, size_t n)
{
    unsigned char *c = p;
    size_t got = 0;
    while (got < n) {
        ssize_t k = recv(fd, c + got, n - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k == 0 && got == 0)
            return false;
        if (k <= 0)
            xp_die("recv: %s", k == 0 ? "end of file" : strerror(errno));
        got += (size_t)k;
    }
    return true;
}

/* A message and its bytes, whole, under the sender's lock. */
static void xp_send(int fd, pthread_mutex_t *mu, struct xp_msg *m,
                    const void *data)
{
    pthread_mutex_lock(mu);
    xp_put(fd, m, sizeof *m);
    if (m->len > 0)
        xp_put(fd, data, m->len);
    pthread_mutex_unlock(mu);
}

/* The next message; its bytes malloc'ed in *data (NULL if none). */
static bool xp_recv(int fd, struct xp_msg *m, unsigned char **data)
{
    *data = NULL;
    if (!xp_get(fd, m, sizeof *m))
        return false;
    if (m->len > XP_MAX_BYTES + 65536)
        xp_die("a message of %llu bytes", (unsigned long long)m->len);
    if (m->len > 0) {
        *data = malloc(m->len);
        if (*data == NULL)
            xp_die("out of memory");
        if (!xp_get(fd, *data, m->len))
            xp_die("recv: end of file in a message");
    }
    return true;
}

static uint64_t fn_bits(void (*fn)(void *))
{
    uint64_t v = 0;
    memcpy(&v, &fn, sizeof fn);
    return v;
}

static void (*bits_fn(uint64_t v))(void *)
{
    void (*fn)(void *);
    memcpy(&fn, &v, sizeof fn);
    return fn;
}

static void xp_waker_out(struct xp_msg *m, const mempipe_waker *w)
{
    m->wk = w == NULL ? 0 : w->wake == NULL ? 2 : 1;
    if (w != NULL) {
        m->wfn = fn_bits(w->wake);
        m->wctx = (uint64_t)(uintptr_t)w->ctx;
    }
}

/* ------------------------------------------------------------------------ */
/* The child: the peer end's server                                          */
/* ------------------------------------------------------------------------ */

static int c_sock = -1;
static pthread_mutex_t c_mu = PTHREAD_MUTEX_INITIALIZER;
static mempipe *c_end;

/* A waker stored through the stand-in: what to ask the parent to call.
 * Kept until the end closes (it may call one at any time until then). */
struct c_fwd {
    uint64_t fn, ctx;
    struct c_fwd *next;
};
static struct c_fwd *c_fwds;
static pthread_mutex_t c_fwd_mu = PTHREAD_MUTEX_INITIALIZER;

static void c_fwd_wake(void *ctx)
{
    struct c_fwd *f = ctx;
    struct xp_msg m = {.op = XP_WAKE, .wfn = f->fn, .wctx = f->ctx};
    xp_send(c_sock, &c_mu, &m, NULL);
}

/* The waker to pass for m's: NULL, one that forwards, or one whose wake is
 * NULL (for the library to refuse, as the test meant). Kept for the
 * child's life: the end may call it at any time until closed. */
static const mempipe_waker *c_waker(const struct xp_msg *m, mempipe_waker *w)
{
    if (m->wk == 0)
        return NULL;
    if (m->wk == 2) {
        w->wake = NULL;
        w->ctx = (void *)(uintptr_t)m->wctx;
        return w;
    }
    struct c_fwd *f = malloc(sizeof *f);
    if (f == NULL)
        xp_die("out of memory");
    f->fn = m->wfn;
    f->ctx = m->wctx;
    pthread_mutex_lock(&c_fwd_mu);
    f->next = c_fwds;
    c_fwds = f;
    pthread_mutex_unlock(&c_fwd_mu);
    w->wake = c_fwd_wake;
    w->ctx = f;
    return w;
}

/* Makes call m on the child's end and answers it. */
static void c_serve(struct xp_msg *m, unsigned char *data)
{
    mempipe_waker wb;
    const mempipe_waker *w = c_waker(m, &wb);
    struct xp_msg a = {.op = XP_RESP, .id = m->id};
    unsigned char *out = NULL;
    switch (m->op) {
    case XP_POLL_READ:
    case XP_READ:
        if (!m->nullb && m->n > 0 && (out = malloc(m->n)) == NULL)
            xp_die("out of memory");
        a.rc = m->op == XP_READ
                   ? mempipe_read(c_end, m->nullb ? NULL : out, m->n)
                   : mempipe_poll_read(c_end, m->nullb ? NULL : out, m->n, w);
        a.len = a.rc > 0 ? (uint64_t)a.rc : 0;
        break;
    case XP_POLL_WRITE:
        a.rc = mempipe_poll_write(c_end, m->nullb ? NULL : data, m->n, w);
        break;
    case XP_WRITE:
        a.rc = mempipe_write(c_end, m->nullb ? NULL : data, m->n);
        break;
    case XP_POLL_WRITEV: {
        struct iovec *iov = NULL;
        if (!m->nullb && (iov = calloc(m->n + 1, sizeof *iov)) == NULL)
            xp_die("out of memory");
        size_t at = 0;
        for (uint64_t i = 0; !m->nullb && i < m->n; i++) {
            uint64_t len;
            memcpy(&len, data + at, sizeof len);
            at += sizeof len;
            bool null = data[at++] != 0;
            iov[i].iov_len = (size_t)len;
            iov[i].iov_base = null ? NULL : data + at;
            if (!null)
                at += (size_t)len;
        }
        a.rc = mempipe_poll_writev(c_end, iov, (int)(int64_t)m->n, w);
        free(iov);
        break;
    }
    case XP_READABLE:
        a.rc = (int64_t)mempipe_readable(c_end);
        break;
    case XP_WRITABLE:
        a.rc = (int64_t)mempipe_writable(c_end);
        break;
    case XP_CAPACITY:
        a.rc = (int64_t)mempipe_capacity(c_end);
        break;
    case XP_SHUTDOWN:
        a.rc = mempipe_shutdown(c_end);
        break;
    case XP_POLL_SHUTDOWN:
        a.rc = mempipe_poll_shutdown(c_end, w);
        break;
    case XP_POLL_FLUSH:
        a.rc = mempipe_poll_flush(c_end, w);
        break;
    case XP_SYNC:
        mempipe__shm_settle(c_end);
        break;
    default:
        xp_die("unknown call %u", (unsigned)m->op);
    }
    xp_send(c_sock, &c_mu, &a, out);
    free(out);
    free(data);
}

/* Blocking calls, each on a worker of the child's: an idle one, or a new
 * one if every worker is busy (a blocked call never waits for a worker). */
struct c_job {
    struct xp_msg m;
    unsigned char *data;
    struct c_job *next;
};
static pthread_mutex_t c_jmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c_jcv = PTHREAD_COND_INITIALIZER;
static struct c_job *c_jhead, **c_jtail = &c_jhead;
static int c_idle, c_queued; /* under c_jmu */

static void *c_worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&c_jmu);
    for (;;) {
        c_idle++;
        while (c_jhead == NULL)
            pthread_cond_wait(&c_jcv, &c_jmu);
        c_idle--;
        struct c_job *j = c_jhead;
        c_jhead = j->next;
        if (c_jhead == NULL)
            c_jtail = &c_jhead;
        c_queued--;
        pthread_mutex_unlock(&c_jmu);
        c_serve(&j->m, j->data);
        free(j);
        pthread_mutex_lock(&c_jmu);
    }
    return NULL;
}

static void c_submit(const struct xp_msg *m, unsigned char *data)
{
    struct c_job *j = malloc(sizeof *j);
    if (j == NULL)
        xp_die("out of memory");
    j->m = *m;
    j->data = data;
    j->next = NULL;
    pthread_mutex_lock(&c_jmu);
    *c_jtail = j;
    c_jtail = &j->next;
    c_queued++;
    bool spawn = c_idle < c_queued; /* no idle worker left for this one */
    pthread_cond_signal(&c_jcv);
    pthread_mutex_unlock(&c_jmu);
    pthread_t t;
    if (spawn) {
        if (pthread_create(&t, NULL, c_worker, NULL) != 0)
            xp_die("pthread_create");
        pthread_detach(t);
    }
}

_Noreturn static void c_main(int sock, int fd)
{
    /* A crash here is the child's own, not a test's to catch (cmocka's
     * handlers would go on running tests in this process). */
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
    c_sock = sock;
    struct xp_msg hello = {.op = XP_HELLO, .n = (uint64_t)getpid()};
    hello.rc = mempipe_shm_attach(fd, &c_end);
    close(fd);
    xp_send(c_sock, &c_mu, &hello, NULL);
    if (hello.rc != 0)
        _exit(0);
    for (;;) {
        struct xp_msg m;
        unsigned char *data;
        if (!xp_recv(c_sock, &m, &data))
            _exit(0); /* the parent is gone */
        if (m.op == XP_CLOSE) {
            mempipe_close(c_end);
            free(data);
            while (c_fwds != NULL) { /* no waker of the end's is left */
                struct c_fwd *n = c_fwds->next;
                free(c_fwds);
                c_fwds = n;
            }
            struct xp_msg a = {.op = XP_RESP, .id = m.id};
            xp_send(c_sock, &c_mu, &a, NULL);
            _exit(0);
        }
        if (m.op == XP_READ || m.op == XP_WRITE) {
            c_submit(&m, data); /* it may block: the server goes on */
            continue;
        }
        c_serve(&m, data);
    }
}

/* ------------------------------------------------------------------------ */
/* The parent: stand-ins and the settle                                      */
/* ------------------------------------------------------------------------ */

struct xp_done { /* an answer read by another thread than its caller's */
    struct xp_msg m;
    unsigned char *data;
    struct xp_done *next;
};

#define XP_SESSIONS 8

struct xp_sess {
    atomic_bool on;
    int sock;
    pid_t pid;
    _Atomic(mempipe *) local; /* this side's end; NULL once closed */
    pthread_mutex_t smu;      /* sends */
    pthread_mutex_t mu;       /* what follows */
    pthread_cond_t cv;
    bool reading;     /* a thread reads the socket: reader */
    pthread_t reader; /* it runs the wakes it reads, and may call again */
    uint32_t next;
    struct xp_done *done;
    char tag; /* &tag is the stand-in for the child's end */
};

static struct xp_sess sess[XP_SESSIONS];
static pthread_once_t sess_once = PTHREAD_ONCE_INIT;

static void sess_init(void)
{
    for (int i = 0; i < XP_SESSIONS; i++) {
        pthread_mutex_init(&sess[i].smu, NULL);
        pthread_mutex_init(&sess[i].mu, NULL);
        pthread_cond_init(&sess[i].cv, NULL);
    }
}

static struct xp_sess *sess_of(const mempipe *e)
{
    for (int i = 0; i < XP_SESSIONS; i++)
        if (e == (const mempipe *)(const void *)&sess[i].tag &&
            atomic_load(&sess[i].on))
            return &sess[i];
    return NULL;
}

/* Sends m and waits for its answer, running the wakes that come first (on
 * this thread if it is the one reading). The answer's bytes in *data. */
static struct xp_msg xp_call(struct xp_sess *x, struct xp_msg *m,
                             const void *bytes, unsigned char **data)
{
    pthread_mutex_lock(&x->mu);
    m->id = ++x->next;
    pthread_mutex_unlock(&x->mu);
    xp_send(x->sock, &x->smu, m, bytes);
    pthread_mutex_lock(&x->mu);
    for (;;) {
        for (struct xp_done **d = &x->done; *d != NULL; d = &(*d)->next)
            if ((*d)->m.id == m->id) {
                struct xp_done *hit = *d;
                struct xp_msg a = hit->m;
                *d = hit->next;
                pthread_mutex_unlock(&x->mu);
                *data = hit->data;
                free(hit);
                return a;
            }
        bool mine = x->reading && pthread_equal(x->reader, pthread_self());
        if (x->reading && !mine) {
            pthread_cond_wait(&x->cv, &x->mu);
            continue;
        }
        bool outer = !x->reading;
        x->reading = true;
        x->reader = pthread_self();
        pthread_mutex_unlock(&x->mu);
        struct xp_msg a;
        unsigned char *bytes_in;
        if (!xp_recv(x->sock, &a, &bytes_in))
            xp_die("the peer's child %d ended", (int)x->pid);
        if (a.op == XP_WAKE) {
            /* The test's waker, on this thread: what it calls comes back
             * here (mine), so it may use the stand-in too. */
            bits_fn(a.wfn)((void *)(uintptr_t)a.wctx);
            pthread_mutex_lock(&x->mu);
        } else if (a.op == XP_RESP && a.id == m->id) {
            pthread_mutex_lock(&x->mu);
            if (outer) {
                x->reading = false;
                pthread_cond_broadcast(&x->cv);
            }
            pthread_mutex_unlock(&x->mu);
            *data = bytes_in;
            return a;
        } else if (a.op == XP_RESP) {
            struct xp_done *d = malloc(sizeof *d);
            if (d == NULL)
                xp_die("out of memory");
            d->m = a;
            d->data = bytes_in;
            pthread_mutex_lock(&x->mu);
            d->next = x->done;
            x->done = d;
        } else {
            xp_die("unexpected message %u", (unsigned)a.op);
        }
        if (outer) {
            x->reading = false;
        }
        pthread_cond_broadcast(&x->cv);
    }
}

/* Every open xproc pipe's two sides settled, this one's first: what the
 * last call's progress satisfied has run when it returns (xproc.h). */
static void xp_settle_all(void)
{
    for (int i = 0; i < XP_SESSIONS; i++) {
        struct xp_sess *x = &sess[i];
        if (!atomic_load(&x->on))
            continue;
        mempipe *l = atomic_load(&x->local);
        if (l != NULL)
            mempipe__shm_settle(l);
        if (!atomic_load(&x->on))
            continue; /* a waker closed the stand-in */
        struct xp_msg m = {.op = XP_SYNC};
        unsigned char *d;
        xp_call(x, &m, NULL, &d);
        free(d);
    }
}

int xp_open(int fd, mempipe *local, mempipe **peer)
{
    pthread_once(&sess_once, sess_init);
    struct xp_sess *x = NULL;
    for (int i = 0; i < XP_SESSIONS && x == NULL; i++)
        if (!atomic_load(&sess[i].on))
            x = &sess[i];
    if (x == NULL)
        xp_die("more than %d xproc pipes open", XP_SESSIONS);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        xp_die("socketpair: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        xp_die("fork: %s", strerror(errno));
    if (pid == 0) {
        /* What the child inherited of this process's xproc pipes: the
         * ends closed (the one call allowed on an inherited end, which
         * leaves the parent's pipe alone: R34, R76), so that the child
         * holds nothing of theirs at its exit; their sockets too. */
        close(sv[0]);
        mempipe_close(local);
        for (int i = 0; i < XP_SESSIONS; i++)
            if (atomic_load(&sess[i].on)) {
                mempipe_close(atomic_load(&sess[i].local));
                close(sess[i].sock);
            }
        c_main(sv[1], fd);
    }
    close(sv[1]);
    x->sock = sv[0];
    x->pid = pid;
    x->reading = false;
    x->next = 0;
    x->done = NULL;
    struct xp_msg hello;
    unsigned char *d;
    if (!xp_recv(x->sock, &hello, &d) || hello.op != XP_HELLO)
        xp_die("child %d: no hello", (int)pid);
    if (hello.n != (uint64_t)pid || pid == getpid())
        xp_die("the peer's end is not in child %d", (int)pid);
    free(d);
    if (hello.rc != 0) {
        int st;
        close(x->sock);
        waitpid(pid, &st, 0);
        return (int)hello.rc;
    }
    atomic_store(&x->local, local);
    atomic_store(&x->on, true);
    *peer = (mempipe *)(void *)&x->tag;
    return 0;
}

/* The stand-in's close: the child closes its end and exits, reaped here
 * (a child that crashed or hung is the test's failure, loudly). */
static void xp_end(struct xp_sess *x)
{
    struct xp_msg m = {.op = XP_CLOSE};
    unsigned char *d;
    xp_call(x, &m, NULL, &d);
    free(d);
    atomic_store(&x->on, false);
    close(x->sock);
    int st = 0;
    for (int i = 0; i < 5000; i++) { /* 5 s */
        pid_t r = waitpid(x->pid, &st, WNOHANG);
        if (r == x->pid)
            break;
        if (r < 0)
            xp_die("waitpid: %s", strerror(errno));
        if (i == 4999)
            xp_die("child %d did not exit", (int)x->pid);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        xp_die("child %d ended with status %d", (int)x->pid, st);
    while (x->done != NULL) {
        struct xp_done *n = x->done->next;
        free(x->done->data);
        free(x->done);
        x->done = n;
    }
}

/* The wrappers: the child's call for a stand-in, the library's otherwise;
 * then the settle. */

static ssize_t rd_call(struct xp_sess *x, int op, void *buf, size_t len,
                       const mempipe_waker *waker)
{
    if (buf != NULL && len > XP_MAX_BYTES)
        xp_die("a read of %zu bytes through a stand-in", len);
    struct xp_msg m = {.op = (uint32_t)op, .n = len, .nullb = buf == NULL};
    xp_waker_out(&m, waker);
    unsigned char *d;
    struct xp_msg a = xp_call(x, &m, NULL, &d);
    if (a.rc > 0)
        memcpy(buf, d, (size_t)a.rc);
    free(d);
    return (ssize_t)a.rc;
}

static ssize_t wr_call(struct xp_sess *x, int op, const void *buf, size_t len,
                       const mempipe_waker *waker)
{
    if (buf != NULL && len > XP_MAX_BYTES)
        xp_die("a write of %zu bytes through a stand-in", len);
    struct xp_msg m = {.op = (uint32_t)op, .n = len, .nullb = buf == NULL};
    m.len = buf != NULL ? len : 0;
    xp_waker_out(&m, waker);
    unsigned char *d;
    struct xp_msg a = xp_call(x, &m, buf, &d);
    free(d);
    return (ssize_t)a.rc;
}

static int64_t plain_call(struct xp_sess *x, int op, const mempipe_waker *waker)
{
    struct xp_msg m = {.op = (uint32_t)op};
    xp_waker_out(&m, waker);
    unsigned char *d;
    struct xp_msg a = xp_call(x, &m, NULL, &d);
    free(d);
    return a.rc;
}

ssize_t xp_poll_read(mempipe *end, void *buf, size_t len,
                     const mempipe_waker *waker)
{
    struct xp_sess *x = sess_of(end);
    ssize_t rc = x != NULL ? rd_call(x, XP_POLL_READ, buf, len, waker)
                           : mempipe_poll_read(end, buf, len, waker);
    xp_settle_all();
    return rc;
}

ssize_t xp_read(mempipe *end, void *buf, size_t len)
{
    struct xp_sess *x = sess_of(end);
    ssize_t rc = x != NULL ? rd_call(x, XP_READ, buf, len, NULL)
                           : mempipe_read(end, buf, len);
    xp_settle_all();
    return rc;
}

ssize_t xp_poll_write(mempipe *end, const void *buf, size_t len,
                      const mempipe_waker *waker)
{
    struct xp_sess *x = sess_of(end);
    ssize_t rc = x != NULL ? wr_call(x, XP_POLL_WRITE, buf, len, waker)
                           : mempipe_poll_write(end, buf, len, waker);
    xp_settle_all();
    return rc;
}

ssize_t xp_write(mempipe *end, const void *buf, size_t len)
{
    struct xp_sess *x = sess_of(end);
    ssize_t rc = x != NULL ? wr_call(x, XP_WRITE, buf, len, NULL)
                           : mempipe_write(end, buf, len);
    xp_settle_all();
    return rc;
}

ssize_t xp_poll_writev(mempipe *end, const struct iovec *iov, int iovcnt,
                       const mempipe_waker *waker)
{
    struct xp_sess *x = sess_of(end);
    if (x == NULL) {
        ssize_t rc = mempipe_poll_writev(end, iov, iovcnt, waker);
        xp_settle_all();
        return rc;
    }
    if (iov != NULL && (iovcnt < 0 || iovcnt > IOV_MAX))
        xp_die("%d slices through a stand-in", iovcnt);
    /* The slices flattened: per slice its length, whether its base was
     * NULL, then its bytes. */
    size_t total = 0;
    for (int i = 0; iov != NULL && i < iovcnt; i++)
        total += 9 + (iov[i].iov_base != NULL ? iov[i].iov_len : 0);
    if (total > XP_MAX_BYTES)
        xp_die("a writev of %zu bytes through a stand-in", total);
    unsigned char *flat = malloc(total + 1);
    if (flat == NULL)
        xp_die("out of memory");
    size_t at = 0;
    for (int i = 0; iov != NULL && i < iovcnt; i++) {
        uint64_t len = iov[i].iov_len;
        memcpy(flat + at, &len, sizeof len);
        at += sizeof len;
        flat[at++] = iov[i].iov_base == NULL;
        if (iov[i].iov_base != NULL) {
            memcpy(flat + at, iov[i].iov_base, iov[i].iov_len);
            at += iov[i].iov_len;
        }
    }
    struct xp_msg m = {.op = XP_POLL_WRITEV,
                       .n = (uint64_t)(int64_t)iovcnt,
                       .nullb = iov == NULL,
                       .len = at};
    xp_waker_out(&m, waker);
    unsigned char *d;
    struct xp_msg a = xp_call(x, &m, flat, &d);
    free(d);
    free(flat);
    xp_settle_all();
    return (ssize_t)a.rc;
}

size_t xp_readable(const mempipe *end)
{
    struct xp_sess *x = sess_of(end);
    size_t n = x != NULL ? (size_t)plain_call(x, XP_READABLE, NULL)
                         : mempipe_readable(end);
    xp_settle_all();
    return n;
}

size_t xp_writable(const mempipe *end)
{
    struct xp_sess *x = sess_of(end);
    size_t n = x != NULL ? (size_t)plain_call(x, XP_WRITABLE, NULL)
                         : mempipe_writable(end);
    xp_settle_all();
    return n;
}

size_t xp_capacity(const mempipe *end)
{
    struct xp_sess *x = sess_of(end);
    size_t n = x != NULL ? (size_t)plain_call(x, XP_CAPACITY, NULL)
                         : mempipe_capacity(end);
    xp_settle_all();
    return n;
}

int xp_shutdown(mempipe *end)
{
    struct xp_sess *x = sess_of(end);
    int rc = x != NULL ? (int)plain_call(x, XP_SHUTDOWN, NULL)
                       : mempipe_shutdown(end);
    xp_settle_all();
    return rc;
}

int xp_poll_shutdown(mempipe *end, const mempipe_waker *waker)
{
    struct xp_sess *x = sess_of(end);
    int rc = x != NULL ? (int)plain_call(x, XP_POLL_SHUTDOWN, waker)
                       : mempipe_poll_shutdown(end, waker);
    xp_settle_all();
    return rc;
}

int xp_poll_flush(mempipe *end, const mempipe_waker *waker)
{
    struct xp_sess *x = sess_of(end);
    int rc = x != NULL ? (int)plain_call(x, XP_POLL_FLUSH, waker)
                       : mempipe_poll_flush(end, waker);
    xp_settle_all();
    return rc;
}

void xp_close(mempipe *end)
{
    struct xp_sess *x = sess_of(end);
    if (x != NULL) {
        xp_end(x);
    } else {
        /* This side's end of an xproc pipe: no settle of it from now. */
        for (int i = 0; end != NULL && i < XP_SESSIONS; i++) {
            mempipe *want = end;
            atomic_compare_exchange_strong(&sess[i].local, &want, NULL);
        }
        mempipe_close(end);
    }
    xp_settle_all();
}
