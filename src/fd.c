/* SPDX-License-Identifier: MIT */
/*
 * Pollable file descriptors: one level-triggered fd per end and direction,
 * made on first request, so any event loop can watch a mempipe.
 *
 * A pipe's watch holds up to two watchers, each mirroring one condition:
 *
 *   rd, the readable fd of the end that reads p:   L > 0 || WCLOSED
 *   wr, the writable fd of the end that writes p:  L < M || WCLOSED || RCLOSED
 *
 * which is exactly "the next read (write) would not return -EAGAIN". Each
 * watcher owns a kernel object the user polls for POLLIN: an eventfd whose
 * counter is 0 or 1 (Linux), or a pipe(2) whose read end holds 0 or 8 bytes
 * (everywhere else, or when the build sets MEMPIPE_FD_PIPE). `on` is the
 * state last given to the object: -1 no object, 0 clear, 1 set. Only a thread
 * holding `lock` changes `on` or touches the object, and it leaves the two
 * equal when it lets go, so `on` is what pollers see.
 *
 * Keeping `on` in step without a lock on the data path. pipe.c calls
 * the watch's notify (fd_notify) after every change of L or the flags, on the
 * thread that made it, after a full fence (the wake fence of R25). notify reads
 * the conditions and `on`, lock-free; if they agree it returns — no lock, no
 * syscall, the steady state of a busy pipe. Otherwise it takes the lock and
 * runs sync: read the condition c; if c != on, store on = c, update the
 * object, full fence, and read the condition again; repeat until they agree.
 *
 * Why no change is lost. Say thread T makes change X, fences (F_T), reads
 * `on` and skips because it matched T's condition, while a sync on thread U
 * had read the condition before X and is storing a stale c1. U fences (F_U)
 * after that store and re-reads. The seq_cst fences are totally ordered:
 *   - F_T before F_U: U's re-read sees X (it was published before F_T), so
 *     U corrects `on` before it lets go of the lock.
 *   - F_U before F_T: T's load of `on` sees c1 or a later store. If c1 is
 *     stale, T sees a mismatch and runs sync itself, under the lock, after U.
 * A later store is another sync, which re-reads after its own fence, so the
 * argument repeats. Hence after the last change, the last check in fence
 * order sees the final state and leaves `on` equal to it, both ways: a stale
 * set is cleared and a stale clear is set again, whatever mix of the reader
 * thread (draining), the writer thread (filling) and a closer (shutdown,
 * close) races. Only the end between a change and its notify can show a lag:
 * a poller may see the fd ready just after the state stopped being (its
 * call returns -EAGAIN, and the notify on its way clears the fd) or wake a
 * moment after the change; a change is never missed.
 *
 * The same handshake covers an fd made while the pipe is busy: the creator
 * publishes the watch and on = 0, fences, then syncs; a thread whose hook
 * loaded watch == NULL or on == -1 did so after its own fence, so the
 * creator's fence comes later and its sync sees that thread's change.
 *
 * Lifetime. The watch is freed with the pipe (last close), so a peer's
 * notify never touches freed memory. An end's close takes the lock, sets
 * on = -1 and closes its objects: nobody writes to a closed, possibly
 * reused, fd number, because the object is only touched under the lock
 * after seeing on >= 0.
 *
 * fork(). A child inherits the parent's watches, their locks as they were
 * at the fork (possibly held by a parent thread that does not exist in the
 * child) and descriptors of the very kernel objects the parent polls. The
 * child may only close inherited ends (SPEC R34), and that must touch
 * nothing the parent shares. So every watch records the fork generation it
 * was made in (a counter that a pthread_atfork child handler bumps), and a
 * watch of another generation is never signalled, cleared or locked: its
 * close only closes the child's own copies of the descriptors, and its
 * free never destroys its mutex (which may be locked); the memory is the
 * child's copy, freed as usual.
 *
 * Edge-triggered epoll: the object is written only when `on` goes 0 -> 1,
 * so EPOLLET reports one event each time the condition becomes true, not one
 * per write. After an event, read (write) until -EAGAIN, as with any
 * edge-triggered fd; the -EAGAIN proves the condition false, so the next time
 * it turns true `on` goes 0 -> 1 again and a new event comes.
 */
#include "fd.h"

#include "alloc.h"
#include "end.h"
#include "fence.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/eventfd.h>
#endif

/* eventfd where there is one, unless the build forces the pipe(2) fallback
 * (cmake -DMEMPIPE_FD_PIPE=ON) to test it. The fallback is always compiled. */
#if defined(__linux__) && !defined(MEMPIPE_FD_PIPE)
#define USE_EVENTFD 1
#else
#define USE_EVENTFD 0
#endif

struct watcher {
    atomic_int on; /* -1 no object, 0 clear, 1 set; stored under lock */
    int fd;        /* polled by the user: eventfd, or the pipe's read end */
    int sig;       /* written to set: the eventfd, or the pipe's write end */
};

struct mempipe__fdwatch {
    struct mempipe__observer obs; /* first: the pipe's watch points here */
    pthread_mutex_t lock;         /* every change of `on` and of the objects */
    struct watcher rd; /* readable fd of the end that reads the pipe */
    struct watcher wr; /* writable fd of the end that writes the pipe */
    unsigned gen;      /* the fork generation it was made in */
};

/* ---- fork generations ---------------------------------------------------- */

/*
 * Bumped in every child, before fork() returns there; only a single-threaded
 * child writes it, so relaxed accesses suffice (fork orders the rest).
 */
static atomic_uint fork_gen;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
    atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
}

static void fork_register(void)
{
    /* If this fails (ENOMEM), children are not told apart: the behaviour
     * without this handler, which R34 does not promise. */
    pthread_atfork(NULL, NULL, fork_child);
}

unsigned mempipe__fork_gen(void)
{
    pthread_once(&fork_once, fork_register);
    return atomic_load_explicit(&fork_gen, memory_order_relaxed);
}

/* True for a watch inherited across fork(): see the top comment. */
static bool inherited(const struct mempipe__fdwatch *w)
{
    return w->gen != mempipe__fork_gen();
}

static void fd_release(struct mempipe__observer *o, struct mempipe__pipe *p);

/* ---- the conditions (snapshots of atomics, acquire) -------------------- */

static bool can_read(const struct mempipe__pipe *p)
{
    return mempipe__pipe_readable(p) > 0 ||
           (mempipe__pipe_flags(p) & MEMPIPE__WCLOSED) != 0;
}

static bool can_write(const struct mempipe__pipe *p)
{
    /* Either close flag makes a write return -EPIPE at once: ready. */
    return mempipe__pipe_flags(p) != 0 ||
           mempipe__pipe_readable(p) < p->ring.cap;
}

/* ---- the kernel objects ------------------------------------------------- */

static int open_eventfd(struct watcher *x)
{
#if defined(__linux__)
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    x->fd = x->sig = fd;
    return 0;
#else
    (void)x;
    return -ENOSYS;
#endif
}

static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return -errno;
    return 0;
}

static int open_pipe(struct watcher *x)
{
    int fds[2];
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) ||       \
    defined(__OpenBSD__) || defined(__DragonFly__)
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
        return -errno;
#else
    if (pipe(fds) != 0)
        return -errno;
    int rc = set_flags(fds[0]);
    if (rc == 0)
        rc = set_flags(fds[1]);
    if (rc < 0) {
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
#endif
    (void)set_flags; /* used only where pipe2 is missing */
    x->fd = fds[0];
    x->sig = fds[1];
    return 0;
}

static int open_object(struct watcher *x)
{
    if (USE_EVENTFD) {
        int rc = open_eventfd(x);
        if (rc != -ENOSYS && rc != -EINVAL)
            return rc;
        /* A kernel without eventfd: the fallback works everywhere. */
    }
    return open_pipe(x);
}

static void close_object(struct watcher *x)
{
    close(x->fd);
    if (x->sig != x->fd)
        close(x->sig);
    x->fd = x->sig = -1;
}

/*
 * 0 -> 1 only, so the counter (bytes) never exceeds 1 (8): the write cannot
 * meet a full eventfd or pipe, and EPOLLET sees one event per transition.
 */
static void object_set(const struct watcher *x)
{
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(x->sig, &one, sizeof one);
    while (n < 0 && errno == EINTR);
}

/* 1 -> 0: one read empties an eventfd (any count) or an 8-byte pipe. */
static void object_clear(const struct watcher *x)
{
    unsigned char buf[64];
    ssize_t n;
    do
        n = read(x->fd, buf, sizeof buf);
    while ((n < 0 && errno == EINTR) || n == (ssize_t)sizeof buf);
}

/* ---- keeping `on` in step ---------------------------------------------- */

/* Lock-free: true when this watcher needs nothing (see the top comment). */
static bool in_step(const struct watcher *x, bool cond)
{
    /* Relaxed: ordered after the caller's full fence; the handshake is
     * between that fence and the fence in sync(). */
    int on = atomic_load_explicit(&x->on, memory_order_relaxed);
    return on < 0 || on == (int)cond;
}

/*
 * Under w->lock: brings one watcher's kernel object in line with its
 * condition (can_read or can_write). Loops only while other threads keep
 * changing the state.
 */
static void sync_one(struct mempipe__pipe *p, struct watcher *x,
                     bool (*cond)(const struct mempipe__pipe *))
{
    for (;;) {
        int on = atomic_load_explicit(&x->on, memory_order_relaxed);
        bool c = cond(p);
        if (on < 0 || on == (int)c)
            return;
        atomic_store_explicit(&x->on, (int)c, memory_order_relaxed);
        if (c)
            object_set(x);
        else
            object_clear(x);
        mempipe__full_fence(); /* `on` before the re-read: the handshake */
    }
}

/* The observer's notify (pipe.h): the pipe loaded it with acquire, which
 * pairs with the release of the CAS in get_watch. */
static void fd_notify(struct mempipe__observer *o, struct mempipe__pipe *p)
{
    struct mempipe__fdwatch *w = (struct mempipe__fdwatch *)o;
    if (in_step(&w->rd, can_read(p)) && in_step(&w->wr, can_write(p)))
        return;
    if (inherited(w))
        return; /* a child's copy: the objects are the parent's (R34) */
    pthread_mutex_lock(&w->lock);
    sync_one(p, &w->rd, can_read);
    sync_one(p, &w->wr, can_write);
    pthread_mutex_unlock(&w->lock);
}

/* ---- creation and close -------------------------------------------------- */

static void watcher_init(struct watcher *x)
{
    atomic_init(&x->on, -1);
    x->fd = x->sig = -1;
}

/* The pipe's watch, made on first use. Either end may race to make it. */
static struct mempipe__fdwatch *get_watch(struct mempipe__pipe *p)
{
    struct mempipe__observer *o =
        atomic_load_explicit(&p->watch, memory_order_acquire);
    if (o != NULL)
        return (struct mempipe__fdwatch *)o; /* the only observer there is */
    struct mempipe__fdwatch *nw = mempipe__alloc(sizeof *nw);
    if (nw == NULL)
        return NULL;
    if (pthread_mutex_init(&nw->lock, NULL) != 0) {
        mempipe__free(nw, sizeof *nw);
        return NULL;
    }
    nw->obs.notify = fd_notify;
    nw->obs.release = fd_release;
    watcher_init(&nw->rd);
    watcher_init(&nw->wr);
    nw->gen = mempipe__fork_gen();
    /* Release: the initialised watch before any thread can see it. */
    if (atomic_compare_exchange_strong_explicit(&p->watch, &o, &nw->obs,
                                                memory_order_acq_rel,
                                                memory_order_acquire))
        return nw;
    pthread_mutex_destroy(&nw->lock); /* the other end won; o is theirs */
    mempipe__free(nw, sizeof *nw);
    return (struct mempipe__fdwatch *)o;
}

static int watch_fd(struct mempipe__pipe *p, bool rd)
{
    struct mempipe__fdwatch *w = get_watch(p);
    if (w == NULL)
        return -ENOMEM;
    struct watcher *x = rd ? &w->rd : &w->wr;
    pthread_mutex_lock(&w->lock);
    int rc = x->fd;
    if (atomic_load_explicit(&x->on, memory_order_relaxed) >= 0)
        goto out; /* asked before: the same fd */
    rc = open_object(x);
    if (rc < 0)
        goto out;
    atomic_store_explicit(&x->on, 0, memory_order_relaxed);
    /* on = 0 (and the watch) before reading the state: the creator's half
     * of the handshake, so a change whose hook saw no watcher is seen. */
    mempipe__full_fence();
    if (rd)
        sync_one(p, x, can_read);
    else
        sync_one(p, x, can_write);
    rc = x->fd;
out:
    pthread_mutex_unlock(&w->lock);
    return rc;
}

int mempipe_readable_fd(mempipe *end)
{
    if (end == NULL)
        return -EINVAL;
    if (mempipe__end_rx(end) == NULL)
        return -EBADF; /* a simplex writer never reads */
    return watch_fd(mempipe__end_rx(end), true);
}

int mempipe_writable_fd(mempipe *end)
{
    if (end == NULL)
        return -EINVAL;
    if (mempipe__end_tx(end) == NULL)
        return -EBADF; /* a simplex reader never writes */
    return watch_fd(mempipe__end_tx(end), false);
}

static void drop(struct mempipe__pipe *p, bool rd)
{
    struct mempipe__fdwatch *w =
        (struct mempipe__fdwatch *)atomic_load_explicit(&p->watch,
                                                        memory_order_acquire);
    if (w == NULL)
        return; /* nobody asked: no lock, no syscall */
    struct watcher *x = rd ? &w->rd : &w->wr;
    bool mine = !inherited(w); /* else: no lock, only our descriptors */
    if (mine)
        pthread_mutex_lock(&w->lock);
    if (atomic_load_explicit(&x->on, memory_order_relaxed) >= 0) {
        atomic_store_explicit(&x->on, -1, memory_order_relaxed);
        close_object(x);
    }
    if (mine)
        pthread_mutex_unlock(&w->lock);
}

void mempipe__fd_close_end(struct mempipe *end)
{
    if (mempipe__end_rx(end) != NULL)
        drop(mempipe__end_rx(end), true);
    if (mempipe__end_tx(end) != NULL)
        drop(mempipe__end_tx(end), false);
}

/* The observer's release (pipe.h): the pipe's last close; nobody left. */
static void fd_release(struct mempipe__observer *o, struct mempipe__pipe *p)
{
    (void)p;
    struct mempipe__fdwatch *w = (struct mempipe__fdwatch *)o;
    /* Every end closed its own fds already; this only guards a leak. */
    if (atomic_load_explicit(&w->rd.on, memory_order_relaxed) >= 0)
        close_object(&w->rd);
    if (atomic_load_explicit(&w->wr.on, memory_order_relaxed) >= 0)
        close_object(&w->wr);
    if (!inherited(w)) /* a parent thread may have held it at the fork */
        pthread_mutex_destroy(&w->lock);
    mempipe__free(w, sizeof *w);
}
