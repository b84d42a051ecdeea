/* SPDX-License-Identifier: MIT */
/*
 * Pollable file descriptors, made on first request, so any event loop can
 * watch a mempipe: one level-triggered POLLIN fd per end and direction
 * (mempipe_readable_fd, mempipe_writable_fd), and one fd per end that polls
 * like a socket's (mempipe_fd).
 *
 * A pipe's watch holds up to four watchers, each mirroring one state of the
 * pipe (L the bytes buffered, M the capacity, "closed" WCLOSED or RCLOSED;
 * a reset comes with WCLOSED; R and W the read and write low-water marks,
 * 1 and 1 unless set, R65):
 *
 *   rd,  the readable fd of the end that reads p:   L >= R || closed
 *   wr,  the writable fd of the end that writes p:  M - L >= W || closed
 *   srd, the read part of mempipe_fd of the end that reads p:
 *          SHUT if closed, else ON if L >= R, else OFF
 *   swr, the write part of mempipe_fd of the end that writes p:
 *          SHUT if closed, else ON if M - L >= W, else OFF
 *
 * With the default marks, rd and wr are exactly "the next read (write)
 * would not return -EAGAIN"
 * (closed: EOF, an error, or -EPIPE at once; RCLOSED on the pipe an end
 * reads is its own read side shut, whose reads then return at once too).
 * srd and swr say the same with a third, final state: SHUT, the hang-up.
 * Each watcher owns a kernel object the user polls. rd and wr: an eventfd
 * whose counter is 0 or 1 (Linux), or a pipe(2) whose read end holds 0 or 8
 * bytes (everywhere else, or when the build sets MEMPIPE_FD_PIPE), polled
 * for POLLIN. srd and swr: the two parts of one private socketpair per end
 * (sockfd.c): srd gives its POLLIN and POLLRDHUP, swr its POLLOUT, both SHUT
 * its POLLHUP. A duplex end's socket thus follows two pipes, the one it
 * reads (srd, under that pipe's watch lock) and the one it writes (swr,
 * under the other's); the parts change disjoint kernel state, so the two
 * locks never need to be held together except to make the socket. A
 * loopback's two parts are on its one pipe; a simplex end has one part,
 * and the side it lacks is shut from the start.
 *
 * `on` is the state last given to the object: -1 no object, else OFF (0),
 * ON (1) or SHUT (2; srd and swr only, and final: a pipe never reopens).
 * Only a thread holding `lock` changes `on` or touches the object, and it
 * leaves the two equal when it lets go (but see "the kernel refused"
 * below), so `on` is what pollers see.
 *
 * Keeping `on` in step without a lock on the data path. pipe.c calls
 * the watch's notify (fd_notify) after every change of L or the flags, on the
 * thread that made it, after a full fence (the wake fence of R25). notify reads
 * the states and `on`, lock-free; if they agree it returns — no lock, no
 * syscall, the steady state of a busy pipe. Otherwise it takes the lock and
 * runs sync: read the state c; if c != on, store on = CHANGING + c, update
 * the object, store on = c, full fence, and read the state again; repeat
 * until they agree. CHANGING matches no state, so a thread whose change
 * meets an update under way takes the lock and waits for it: when a call
 * returns, the fds show its change (or a later one).
 *
 * Why no change is lost. Say thread T makes change X, fences (F_T), reads
 * `on` and skips because it matched T's state, while a sync on thread U
 * had read the state before X and is storing a stale c1. U fences (F_U)
 * after that store and re-reads. The seq_cst fences are totally ordered:
 *   - F_T before F_U: U's re-read sees X (it was published before F_T), so
 *     U corrects `on` before it lets go of the lock.
 *   - F_U before F_T: T's load of `on` sees c1 or a later store. If c1 is
 *     stale, T sees a mismatch and runs sync itself, under the lock, after U.
 * A later store is another sync, which re-reads after its own fence, so the
 * argument repeats. Hence after the last change, the last check in fence
 * order sees the final state and leaves `on` equal to it, every way: a stale
 * set is cleared and a stale clear is set again, whatever mix of the reader
 * thread (draining), the writer thread (filling) and a closer (shutdown,
 * close) races. Nothing in the argument depends on how many values a state
 * has, so it covers the three of srd and swr (and SHUT, being final, is never
 * stale); CHANGING is a store like the others, followed by the settled
 * value before the fence. Only the end between a change and its notify can
 * show a lag: a poller on another thread may see the fd ready just after
 * the state stopped being (its call returns -EAGAIN, and the notify on its
 * way clears the fd) or wake a moment after the change; a change is never
 * missed.
 *
 * The same handshake covers an fd made while the pipe is busy: the creator
 * publishes the watch and `on` (the state of the fresh object), fences, then
 * syncs; a thread whose hook loaded watch == NULL or on == -1 did so after
 * its own fence, so the creator's fence comes later and its sync sees that
 * thread's change. mempipe_fd does this for both parts of the socket at
 * once, holding both pipes' locks (in address order: the only place that
 * takes two, so no cycle).
 *
 * The kernel refused. The byte that sets srd and the fill that clears swr
 * are the only updates that can fail (no kernel memory for a socket
 * buffer). The object then keeps its state, sync stores that state back in
 * `on` and stops; the mismatch stays visible, so the next change of the pipe,
 * on whatever thread, retries. (The eventfd and pipe(2) writes cannot fail:
 * they never meet a full object.)
 *
 * Lifetime. The watch is freed with the pipe (last close), so a peer's
 * notify never touches freed memory. An end's close takes the lock, sets
 * on = -1 and closes its objects: nobody writes to a closed, possibly
 * reused, fd number, because the object is only touched under the lock
 * after seeing on >= 0. A socket's descriptors are closed once both its
 * parts are marked -1, each under its own pipe's lock.
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
 * child's copy, freed as usual. (Closing the child's copies of a socket
 * does not shut it: the parent's descriptors keep it open.)
 *
 * Edge-triggered epoll: the object is written only when `on` changes, so
 * EPOLLET reports one event each time a state becomes true, not one per
 * write. After an event, read (write) until -EAGAIN, as with any
 * edge-triggered fd; the -EAGAIN proves the state false, so the next time
 * it turns true `on` changes again and a new event comes.
 */
#include "fd.h"

#include "alloc.h"
#include "end.h"
#include "fence.h"
#include "shm.h"
#include "sockfd.h"

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

#define OFF  MEMPIPE__SOCK_OFF
#define ON   MEMPIPE__SOCK_ON
#define SHUT MEMPIPE__SOCK_SHUT
/* Added to the state `on` is moving to while the object is being updated
 * (under the lock); never seen by a thread holding it. */
#define CHANGING 4

/* A watch's watchers (see the top comment), by index. */
enum { RD, WR, SRD, SWR, NWATCHERS };

struct watcher {
    atomic_int on; /* -1 no object, OFF, ON, SHUT (+CHANGING); under lock */
    int fd;        /* polled by the user: eventfd, pipe's read end, or s0 */
    int sig;       /* the library's side: the eventfd, pipe's write end, s1 */
    unsigned char *scratch; /* swr only: what a drain of s1 reads into */
};

struct mempipe__fdwatch {
    struct mempipe__observer obs; /* first: the pipe's watch points here */
    pthread_mutex_t lock;         /* every change of `on` and of the objects */
    struct watcher x[NWATCHERS];  /* rd, wr, srd, swr */
    unsigned gen;                 /* the fork generation it was made in */
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

/* ---- the states (snapshots of atomics, acquire) ---------------------- */

/* What every watcher's state is computed from: one load of the flags, one
 * of the positions. */
struct snap {
    bool closed; /* WCLOSED or RCLOSED: every call returns at once */
    bool some;   /* L >= the read mark (R65; 1 by default: L > 0) */
    bool room;   /* M - L >= the write mark (1 by default: L < M) */
};

static struct snap snap_of(const struct mempipe__pipe *p)
{
    struct snap s = {true, true, true};
    if (mempipe__pipe_flags(p) & (MEMPIPE__WCLOSED | MEMPIPE__RCLOSED))
        return s;
    size_t used = mempipe__pipe_readable(p);
    /* Relaxed: a mark is set by its side, which then runs the progress
     * epilogue (mempipe__pipe_set_lowat), whose fence orders it before
     * this read in the notify that follows. */
    size_t rl = atomic_load_explicit(&p->ring.rlowat, memory_order_relaxed);
    size_t wl = atomic_load_explicit(&p->ring.wlowat, memory_order_relaxed);
    s.closed = false;
    s.some = used >= rl;
    s.room = used < p->ring.cap && p->ring.cap - used >= wl;
    return s;
}

/* Watcher i's state in snapshot s: see the top comment. */
static int state_in(struct snap s, int i)
{
    if (s.closed)
        return i == SRD || i == SWR ? SHUT : ON;
    return (i == RD || i == SRD ? s.some : s.room) ? ON : OFF;
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

/* Gives watcher i's object state `to` (it is in `from`); returns the state
 * it reached: `to`, or `from` where the kernel refused (sockfd.h). */
static int object_to(struct watcher *x, int i, int from, int to)
{
    const int s[2] = {x->fd, x->sig};
    if (i == SRD)
        return mempipe__sock_read_to(s, from, to);
    if (i == SWR)
        return mempipe__sock_write_to(s, from, to, x->scratch);
    if (to == ON)
        object_set(x);
    else
        object_clear(x);
    return to;
}

/* Lock-free: true when watcher i needs nothing (see the top comment). A
 * CHANGING value equals no state, so a change that meets an update under
 * way waits for it on the lock. */
static bool in_step(const struct mempipe__fdwatch *w, struct snap s, int i)
{
    /* Ordered after the caller's full fence: the handshake is between that
     * fence and the fence in sync_one(). Acquire: a settled value read from
     * sync_one's release store comes after the object's update, which this
     * thread's later polls then see. */
    int on = atomic_load_explicit(&w->x[i].on, memory_order_acquire);
    return on < 0 || on == state_in(s, i);
}

/*
 * Under w->lock: brings watcher i's kernel object in line with its state.
 * Loops only while other threads keep changing the pipe.
 */
static void sync_one(struct mempipe__pipe *p, struct mempipe__fdwatch *w, int i)
{
    struct watcher *x = &w->x[i];
    for (;;) {
        int on = atomic_load_explicit(&x->on, memory_order_relaxed);
        int c = state_in(snap_of(p), i);
        if (on < 0 || on == c)
            return;
        /* CHANGING while the object moves: a thread whose change comes
         * now sees a mismatch whatever its state and waits for the lock,
         * so that no call returns while the fd lags behind its change. */
        atomic_store_explicit(&x->on, CHANGING + c, memory_order_relaxed);
        int got = object_to(x, i, on, c);
        /* Release: the object's update before the settled value (in_step). */
        atomic_store_explicit(&x->on, got, memory_order_release);
        mempipe__full_fence(); /* `on` before the re-read: the handshake */
        if (got != c)
            return; /* the kernel refused: the next change retries */
    }
}

/* The observer's notify (pipe.h): the pipe loaded it with acquire, which
 * pairs with the release of the CAS in get_watch. */
static void fd_notify(struct mempipe__observer *o, struct mempipe__pipe *p)
{
    struct mempipe__fdwatch *w = (struct mempipe__fdwatch *)o;
    struct snap s = snap_of(p); /* after the caller's fence */
    if (in_step(w, s, RD) && in_step(w, s, WR) && in_step(w, s, SRD) &&
        in_step(w, s, SWR))
        return;
    if (inherited(w))
        return; /* a child's copy: the objects are the parent's (R34) */
    pthread_mutex_lock(&w->lock);
    for (int i = 0; i < NWATCHERS; i++)
        sync_one(p, w, i);
    pthread_mutex_unlock(&w->lock);
}

/* ---- creation and close -------------------------------------------------- */

static void watcher_init(struct watcher *x)
{
    atomic_init(&x->on, -1);
    x->fd = x->sig = -1;
    x->scratch = NULL;
}

/*
 * Where p's fd watch hangs: the pipe's watch, or, on an shm pipe, whose
 * watch is shm.c's observer from the start, that observer's inner one.
 */
static _Atomic(struct mempipe__observer *) *
watch_slot(const struct mempipe__pipe *p)
{
    /* Acquire: pairs with the release that published the observer. */
    struct mempipe__observer *o = atomic_load_explicit(
        (_Atomic(struct mempipe__observer *) *)&p->watch, memory_order_acquire);
    if (o != NULL && o->notify != fd_notify)
        return &o->inner;
    return (_Atomic(struct mempipe__observer *) *)&p->watch;
}

/* The pipe's watch, made on first use. Either end may race to make it. */
static struct mempipe__fdwatch *get_watch(struct mempipe__pipe *p)
{
    _Atomic(struct mempipe__observer *) *slot = watch_slot(p);
    struct mempipe__observer *o =
        atomic_load_explicit(slot, memory_order_acquire);
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
    nw->obs.waits = NULL;
    atomic_init(&nw->obs.inner, NULL);
    for (int i = 0; i < NWATCHERS; i++)
        watcher_init(&nw->x[i]);
    nw->gen = mempipe__fork_gen();
    /* Release: the initialised watch before any thread can see it. */
    if (atomic_compare_exchange_strong_explicit(
            slot, &o, &nw->obs, memory_order_acq_rel, memory_order_acquire))
        return nw;
    pthread_mutex_destroy(&nw->lock); /* the other end won; o is theirs */
    mempipe__free(nw, sizeof *nw);
    return (struct mempipe__fdwatch *)o;
}

static int watch_fd(struct mempipe__pipe *p, int i)
{
    struct mempipe__fdwatch *w = get_watch(p);
    if (w == NULL)
        return -ENOMEM;
    struct watcher *x = &w->x[i];
    pthread_mutex_lock(&w->lock);
    int rc = x->fd;
    if (atomic_load_explicit(&x->on, memory_order_relaxed) >= 0)
        goto out; /* asked before: the same fd */
    rc = open_object(x);
    if (rc < 0)
        goto out;
    atomic_store_explicit(&x->on, OFF, memory_order_relaxed);
    /* on (and the watch) before reading the state: the creator's half of
     * the handshake, so a change whose hook saw no watcher is seen. */
    mempipe__full_fence();
    sync_one(p, w, i);
    rc = x->fd;
out:
    pthread_mutex_unlock(&w->lock);
    return rc;
}

/* An fd made on an shm end: its notifier keeps it in step with the peer
 * process's progress (shm.h). Returns rc. */
static int shm_made(mempipe *end, int rc)
{
    if (rc >= 0 && end->core->shm != NULL) {
        mempipe__shm_pull(end->core->shm);
        mempipe__shm_fd_made(end);
    }
    return rc;
}

int mempipe_readable_fd(mempipe *end)
{
    if (end == NULL)
        return -EINVAL;
    if (mempipe__end_rx(end) == NULL)
        return -EBADF; /* a simplex writer never reads */
    return shm_made(end, watch_fd(mempipe__end_rx(end), RD));
}

int mempipe_writable_fd(mempipe *end)
{
    if (end == NULL)
        return -EINVAL;
    if (mempipe__end_tx(end) == NULL)
        return -EBADF; /* a simplex reader never writes */
    return shm_made(end, watch_fd(mempipe__end_tx(end), WR));
}

/* Both watches' locks, in address order (a and b may be NULL or equal):
 * mempipe_fd is the only place that holds two, so no cycle can form. */
static void lock_two(struct mempipe__fdwatch *a, struct mempipe__fdwatch *b)
{
    if (a == NULL || a == b) {
        a = b, b = NULL;
    } else if (b != NULL && (uintptr_t)b < (uintptr_t)a) {
        struct mempipe__fdwatch *t = a;
        a = b, b = t;
    }
    if (a != NULL)
        pthread_mutex_lock(&a->lock);
    if (b != NULL)
        pthread_mutex_lock(&b->lock);
}

static void unlock_two(struct mempipe__fdwatch *a, struct mempipe__fdwatch *b)
{
    if (a != NULL)
        pthread_mutex_unlock(&a->lock);
    if (b != NULL && b != a)
        pthread_mutex_unlock(&b->lock);
}

/*
 * Under both locks: makes the end's socket and hooks its parts, srd on the
 * pipe it reads (rw), swr on the pipe it writes (ww), either absent for a
 * simplex end. Returns s0 or a negative errno value; on error nothing
 * changed.
 */
static int sock_make(struct mempipe__pipe *rx, struct mempipe__fdwatch *rw,
                     struct mempipe__pipe *tx, struct mempipe__fdwatch *ww)
{
    unsigned char *scratch = NULL;
    if (ww != NULL && (scratch = mempipe__alloc(MEMPIPE__SOCK_SCRATCH)) == NULL)
        return -ENOMEM;
    int s[2];
    int rc = mempipe__sock_open(s, rw != NULL, ww != NULL);
    if (rc < 0) {
        mempipe__free(scratch, MEMPIPE__SOCK_SCRATCH);
        return rc;
    }
    /* `on` says what a fresh socket shows: not readable, writable. */
    if (rw != NULL) {
        rw->x[SRD].fd = s[0], rw->x[SRD].sig = s[1];
        atomic_store_explicit(&rw->x[SRD].on, OFF, memory_order_relaxed);
    }
    if (ww != NULL) {
        ww->x[SWR].fd = s[0], ww->x[SWR].sig = s[1];
        ww->x[SWR].scratch = scratch;
        atomic_store_explicit(&ww->x[SWR].on, ON, memory_order_relaxed);
    }
    /* Both `on`s (and the watches) before reading the states: the
     * creator's half of the handshake, as in watch_fd. */
    mempipe__full_fence();
    if (rw != NULL)
        sync_one(rx, rw, SRD);
    if (ww != NULL)
        sync_one(tx, ww, SWR);
    return s[0];
}

int mempipe_fd(mempipe *end)
{
    if (end == NULL)
        return -EINVAL;
    struct mempipe__pipe *rx = mempipe__end_rx(end);
    struct mempipe__pipe *tx = mempipe__end_tx(end);
    struct mempipe__fdwatch *rw = NULL, *ww = NULL;
    if (rx != NULL && (rw = get_watch(rx)) == NULL)
        return -ENOMEM;
    if (tx != NULL && (ww = get_watch(tx)) == NULL)
        return -ENOMEM;
    lock_two(rw, ww);
    /* The parts are made together and dropped together: either tells. */
    struct watcher *x = rw != NULL ? &rw->x[SRD] : &ww->x[SWR];
    int rc = atomic_load_explicit(&x->on, memory_order_relaxed) >= 0
                 ? x->fd /* asked before: the same fd */
                 : sock_make(rx, rw, tx, ww);
    unlock_two(rw, ww);
    return shm_made(end, rc);
}

/* What an end's close takes out of its socket's parts, to close after. */
struct sock_out {
    int s[2];
    unsigned char *scratch;
};

/*
 * Marks this end's watchers on p gone, under p's watch lock: the fd of
 * direction `obj` (RD or WR) is closed at once, the socket part `part`
 * (SRD or SWR) handed to `out`, closed once both parts are gone.
 */
static void drop(struct mempipe__pipe *p, int obj, int part,
                 struct sock_out *out)
{
    struct mempipe__fdwatch *w =
        (struct mempipe__fdwatch *)atomic_load_explicit(watch_slot(p),
                                                        memory_order_acquire);
    if (w == NULL)
        return;                /* nobody asked: no lock, no syscall */
    bool mine = !inherited(w); /* else: no lock, only our descriptors */
    if (mine)
        pthread_mutex_lock(&w->lock);
    struct watcher *x = &w->x[obj];
    if (atomic_load_explicit(&x->on, memory_order_relaxed) >= 0) {
        atomic_store_explicit(&x->on, -1, memory_order_relaxed);
        close_object(x);
    }
    x = &w->x[part];
    if (atomic_load_explicit(&x->on, memory_order_relaxed) >= 0) {
        atomic_store_explicit(&x->on, -1, memory_order_relaxed);
        out->s[0] = x->fd, out->s[1] = x->sig;
        if (x->scratch != NULL)
            out->scratch = x->scratch;
        x->fd = x->sig = -1;
        x->scratch = NULL;
    }
    if (mine)
        pthread_mutex_unlock(&w->lock);
}

void mempipe__fd_close_end(struct mempipe *end)
{
    struct sock_out out = {{-1, -1}, NULL};
    if (mempipe__end_rx(end) != NULL)
        drop(mempipe__end_rx(end), RD, SRD, &out);
    if (mempipe__end_tx(end) != NULL)
        drop(mempipe__end_tx(end), WR, SWR, &out);
    /* Both parts are marked gone: nobody touches the socket any more. */
    if (out.s[0] >= 0)
        mempipe__sock_close(out.s);
    mempipe__free(out.scratch, MEMPIPE__SOCK_SCRATCH);
}

/* The observer's release (pipe.h): the pipe's last close; nobody left. */
static void fd_release(struct mempipe__observer *o, struct mempipe__pipe *p)
{
    (void)p;
    struct mempipe__fdwatch *w = (struct mempipe__fdwatch *)o;
    /* Every end closed its own fds already (mempipe_close calls
     * mempipe__fd_close_end first, in a fork child too); this only guards
     * a leak of the eventfds. A socket is shared by two watches of a
     * duplex, so no guard could tell which of them should close it: it is
     * left to the end's close alone. */
    for (int i = RD; i <= WR; i++)
        if (atomic_load_explicit(&w->x[i].on, memory_order_relaxed) >= 0)
            close_object(&w->x[i]);
    if (!inherited(w)) /* a parent thread may have held it at the fork */
        pthread_mutex_destroy(&w->lock);
    mempipe__free(w, sizeof *w);
}
