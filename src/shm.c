/* SPDX-License-Identifier: MIT */
/* Shared-memory pipes between processes: see shm.h and docs/shm.md. */
#include "shm.h"

#include "alloc.h"
#include "fd.h"
#include "fence.h"
#include "hold.h"
#include "pipe.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__linux__) && SIZE_MAX == UINT64_MAX &&                            \
    ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2
#define SHM_OK 1
#else
#define SHM_OK 0
#endif

uint64_t mempipe__shm_magic(void)
{
    uint64_t m;
    memcpy(&m, "mempipe\1", sizeof m);
    return m;
}

#if SHM_OK

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

_Static_assert(offsetof(struct mempipe__shm_hdr, attach) == 0x80, "layout");
_Static_assert(offsetof(struct mempipe__shm_hdr, side) == 0x100, "layout");
_Static_assert(offsetof(struct mempipe__shm_hdr, pos) == 0x300, "layout");
_Static_assert(sizeof(struct mempipe__shm_hdr) <= 4096, "one page");
_Static_assert(offsetof(struct mempipe__shm_side, bell) == 64, "layout");

#define SPIN_NS 30000 /* as park.c: the longest spin before a sleep */
#define ERRS_R  (0xfffu << MEMPIPE__RERR_SHIFT)
#define ERRS_W  (0xfffu << MEMPIPE__WERR_SHIFT)

/* The blocking calls' waker context: whose bell, which bit. */
struct blk {
    struct mempipe__shm *m;
    int side;
    unsigned bit;
};

/* What one role of this side waits for, under mu. */
struct interest {
    bool blk;      /* a blocking call sleeps */
    uint64_t blkt; /* its target */
    bool req;      /* a waker was stored by a poll call (the notifier) */
    uint64_t reqt; /* its target */
    size_t reqpos; /* the role's position then: a later one ends it */
    bool note;     /* the notifier's own interest (a stored waker, an fd) */
    uint64_t notet;
};

/* The watch of pipe i: first, so that the pipe's observer pointer is it. */
struct shmobs {
    struct mempipe__observer obs;
    struct mempipe__shm *m;
    int ring;
};

struct mempipe__shm {
    struct shmobs obs[2];
    struct mempipe__core *core;
    struct mempipe__shm_hdr *h;
    size_t maplen;
    int nrings;
    int side;   /* the side of core->ends[0] */
    int lockfd; /* the OFD lock of our side; -1 once closed */
    unsigned gen;
    dev_t dev;
    ino_t ino;
    struct mempipe__flat flat[2];
    struct blk blk[2][2]; /* [end][rd] */
    atomic_bool linked;   /* both ends in this process: ends[1] is in use */
    atomic_int dead;      /* the peer's death, seen */
    atomic_int proto;     /* a protocol error, seen: sticky */
    atomic_uint pushed;   /* our state as last published */
    pthread_mutex_t mu;   /* the interests, want and the targets */
    struct interest rx, tx;
    /* The notifier: started once, by the first waker stored or fd made. */
    pthread_mutex_t tmu;
    pthread_t thr;
    int thr_on;                /* under tmu: 1 started */
    atomic_bool stop;          /* the notifier's end is asked */
    atomic_bool orphan;        /* the core was freed on the notifier itself */
    struct mempipe__shm *next; /* the registry (atfork, local attach) */
    /* The split side in this process (shm.h), under link_mu; read
     * without it only to skip the lock when NULL. */
    _Atomic(struct mempipe__shm *) link;
    atomic_int inflight; /* other threads' forwards into this side */
};

int mempipe__shm_split;
int mempipe__shm_manual;

/* The links of split sides (mempipe__shm_split), both ways at once. */
static pthread_mutex_t link_mu = PTHREAD_MUTEX_INITIALIZER;
/* Set while this thread runs a linked side's progress: no echo back. */
static _Thread_local bool forwarding;

/* m's linked side with a reference on its core, or NULL. */
static struct mempipe__shm *link_get(struct mempipe__shm *m)
{
    pthread_mutex_lock(&link_mu);
    struct mempipe__shm *pm =
        atomic_load_explicit(&m->link, memory_order_relaxed);
    if (pm != NULL) {
        mempipe__core_ref(pm->core);
        atomic_fetch_add_explicit(&pm->inflight, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&link_mu);
    return pm;
}

/* The end of a forward into pm: its reference, then its count. */
static void link_put(struct mempipe__shm *pm)
{
    mempipe__core_unref(pm->core);
    atomic_fetch_sub_explicit(&pm->inflight, 1, memory_order_release);
}

static void unlink_side(struct mempipe__shm *m)
{
    pthread_mutex_lock(&link_mu);
    struct mempipe__shm *pm =
        atomic_load_explicit(&m->link, memory_order_relaxed);
    if (pm != NULL) {
        atomic_store_explicit(&pm->link, NULL, memory_order_relaxed);
        atomic_store_explicit(&m->link, NULL, memory_order_relaxed);
    }
    pthread_mutex_unlock(&link_mu);
    /* A forward into m on another thread holds a reference to its core:
     * wait for it, so that the close of the last end frees the core
     * before it returns, as in-process (unless this thread is one). */
    while (!forwarding &&
           atomic_load_explicit(&m->inflight, memory_order_acquire) != 0)
        sched_yield();
}

/* ---- the registry: every shm state of this process ---------------------- */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mempipe__shm *reg;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void reg_prepare(void)
{
    pthread_mutex_lock(&reg_mu);
}

static void reg_parent(void)
{
    pthread_mutex_unlock(&reg_mu);
}

/* In a fork child: our liveness locks are the parent's, and a child that
 * keeps its copies would keep a dead parent looking alive (docs/shm.md). */
static void reg_child(void)
{
    for (struct mempipe__shm *m = reg; m != NULL; m = m->next)
        if (m->lockfd >= 0) {
            close(m->lockfd);
            m->lockfd = -1;
        }
    pthread_mutex_unlock(&reg_mu);
}

static void reg_init(void)
{
    pthread_atfork(reg_prepare, reg_parent, reg_child);
}

static void reg_add(struct mempipe__shm *m)
{
    pthread_mutex_lock(&reg_mu);
    m->next = reg;
    reg = m;
    pthread_mutex_unlock(&reg_mu);
}

static void reg_del(struct mempipe__shm *m)
{
    pthread_mutex_lock(&reg_mu);
    for (struct mempipe__shm **p = &reg; *p != NULL; p = &(*p)->next)
        if (*p == m) {
            *p = m->next;
            break;
        }
    pthread_mutex_unlock(&reg_mu);
}

/* ---- futexes on shared words -------------------------------------------- */

static void bell_ring(atomic_uint *bell, unsigned bits)
{
    /* Release: what the ringer published before, for the sleeper. */
    atomic_fetch_add_explicit(bell, 1, memory_order_release);
    syscall(SYS_futex, (void *)bell, FUTEX_WAKE_BITSET, INT_MAX, NULL, NULL,
            bits);
}

/* Sleeps while *bell == seen, until *dl (absolute, CLOCK_MONOTONIC).
 * -ETIMEDOUT at the deadline, else 0 (woken, changed or spurious). */
static int bell_wait(atomic_uint *bell, unsigned seen, unsigned bits,
                     const struct timespec *dl)
{
    long rc = syscall(SYS_futex, (void *)bell, FUTEX_WAIT_BITSET, seen, dl,
                      NULL, bits);
    return rc != 0 && errno == ETIMEDOUT ? -ETIMEDOUT : 0;
}

static void now_plus(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static bool before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec ||
           (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* ---- sides and rings ------------------------------------------------------
 */

/* The ring side s writes, or -1 (a simplex reader). */
static int tx_ring(const struct mempipe__shm *m, int s)
{
    if (m->nrings == 2)
        return s;
    return s == 0 ? 0 : -1;
}

/* The ring side s reads, or -1 (a simplex writer). */
static int rx_ring(const struct mempipe__shm *m, int s)
{
    if (m->nrings == 2)
        return 1 - s;
    return s == 1 ? 0 : -1;
}

static int side_of(const struct mempipe__shm *m, const mempipe *e)
{
    return e == &m->core->ends[0] ? m->side : 1 - m->side;
}

static bool remote(const struct mempipe__shm *m)
{
    return !atomic_load_explicit(&m->linked, memory_order_acquire) &&
           m->gen == mempipe__fork_gen();
}

/* Raises the count in *a to v (keeping its closed bit, adding v's). */
static void raise_to(atomic_size_t *a, size_t v)
{
    size_t cur = atomic_load_explicit(a, memory_order_relaxed);
    for (;;) {
        size_t c = cur & ~MEMPIPE__RING_CLOSED;
        size_t n =
            (v & ~MEMPIPE__RING_CLOSED) > c ? v & ~MEMPIPE__RING_CLOSED : c;
        n |= (cur | v) & MEMPIPE__RING_CLOSED;
        /* Release: the peer's bytes (acquired by our load of its word)
         * before the position our reads acquire. A loop on our own word:
         * only this process's threads change it. */
        if (n == cur ||
            atomic_compare_exchange_weak_explicit(
                a, &cur, n, memory_order_acq_rel, memory_order_relaxed))
            return;
    }
}

/* ---- pull: the peer's words into this process's copies ------------------- */

static void set_proto(struct mempipe__shm *m)
{
    atomic_store_explicit(&m->proto, 1, memory_order_release);
}

void mempipe__shm_pull(struct mempipe__shm *m)
{
    if (!remote(m))
        return;
    struct mempipe__shm_hdr *h = m->h;
    int s = m->side, p = 1 - s;
    int ri = rx_ring(m, s), ti = tx_ring(m, s);
    /* Acquire: the peer's wend and positions stored before its state. */
    unsigned ps = atomic_load_explicit(&h->side[p].state, memory_order_acquire);
    /* Unknown bits, or "pending" as a close's errno (a read that returned
     * -EAGAIN forever would wait for a wake that never comes; in-process
     * mempipe_close_with_error refuses it): a protocol error. */
    if ((ps & ~MEMPIPE__SHM_KNOWN) || MEMPIPE__RERR_OF(ps) == -EAGAIN ||
        MEMPIPE__WERR_OF(ps) == -EAGAIN)
        set_proto(m);
    bool dead = atomic_load_explicit(&m->dead, memory_order_acquire) != 0;
    if (ri >= 0) {
        struct mempipe__pipe *rx = &m->core->pipes[ri];
        size_t cap = rx->ring.cap;
        /* The peer's word first, our own position after: the peer wrote
         * at most cap past the read position it had seen, which ours has
         * reached or passed since. */
        uint64_t w =
            atomic_load_explicit(&h->pos[ri].wpos, memory_order_acquire);
        uint64_t wend = 0;
        bool closed = (ps & (MEMPIPE__WCLOSED | MEMPIPE__SHM_GONE)) || dead;
        if (closed && (ps & MEMPIPE__WCLOSED))
            wend = atomic_load_explicit(&h->side[p].wend, memory_order_acquire);
        size_t rd = atomic_load_explicit(&rx->ring.rpos, memory_order_acquire);
        if (w > rd + cap || w >= MEMPIPE__RING_CLOSED)
            set_proto(m);
        else if (!atomic_load_explicit(&m->proto, memory_order_relaxed))
            raise_to(&rx->ring.wpos, (size_t)w);
        if (closed && !(ps & MEMPIPE__WCLOSED))
            wend = atomic_load_explicit(&rx->ring.wpos, memory_order_relaxed) &
                   ~MEMPIPE__RING_CLOSED; /* died or left: what came */
        if (closed && (wend > rd + cap || wend < w))
            set_proto(m);
        if (closed && !atomic_load_explicit(&m->proto, memory_order_acquire)) {
            /* The flags first, then the closed bit: the reader that sees
             * the bit finds the outcome (as pipe_close_write orders). */
            unsigned fl = ps & (MEMPIPE__WCLOSED | MEMPIPE__RESET | ERRS_R);
            mempipe__pipe_mirror(rx, fl != 0 ? fl | MEMPIPE__WCLOSED
                                             : MEMPIPE__WCLOSED);
            raise_to(&rx->ring.wpos, (size_t)wend | MEMPIPE__RING_CLOSED);
        }
    }
    if (ti >= 0) {
        struct mempipe__pipe *tx = &m->core->pipes[ti];
        uint64_t r =
            atomic_load_explicit(&h->pos[ti].rpos, memory_order_acquire);
        size_t w = atomic_load_explicit(&tx->ring.wpos, memory_order_acquire) &
                   ~MEMPIPE__RING_CLOSED;
        if (r > w)
            set_proto(m);
        else if (!atomic_load_explicit(&m->proto, memory_order_relaxed))
            raise_to(&tx->ring.rpos, (size_t)r);
        if (!atomic_load_explicit(&m->proto, memory_order_acquire) &&
            ((ps & (MEMPIPE__RCLOSED | MEMPIPE__SHM_GONE)) || dead))
            mempipe__pipe_mirror(tx, MEMPIPE__RCLOSED | (ps & ERRS_W));
    }
    /* A protocol error, found in any word: the peer reset the pipe both
     * ways, -EPROTO for reads and writes (R72). Last, so that a lie found
     * in the second ring still stops the first. */
    if (atomic_load_explicit(&m->proto, memory_order_acquire)) {
        if (ri >= 0) {
            struct mempipe__pipe *rx = &m->core->pipes[ri];
            mempipe__pipe_mirror(rx, MEMPIPE__RESET | MEMPIPE__RERR(-EPROTO));
            mempipe__ring_close_write(&rx->ring);
        }
        if (ti >= 0)
            mempipe__pipe_mirror(&m->core->pipes[ti],
                                 MEMPIPE__RCLOSED | MEMPIPE__WERR(-EPROTO));
    }
}

/* ---- push: our closes to the peer ---------------------------------------- */

/* Our side's closes, from the flags only this process sets. */
static unsigned own_state(struct mempipe__shm *m)
{
    int s = m->side;
    int ri = rx_ring(m, s), ti = tx_ring(m, s);
    unsigned st = 0;
    if (ti >= 0)
        st |= mempipe__pipe_flags(&m->core->pipes[ti]) &
              (MEMPIPE__WCLOSED | MEMPIPE__RESET | ERRS_R);
    if (ri >= 0)
        st |= mempipe__pipe_flags(&m->core->pipes[ri]) &
              (MEMPIPE__RCLOSED | ERRS_W);
    return st;
}

/* Publishes st | our closes if they changed, and wakes all of the peer. */
static void push_state(struct mempipe__shm *m, unsigned extra)
{
    struct mempipe__shm_hdr *h = m->h;
    int s = m->side, ti = tx_ring(m, s);
    unsigned cur = atomic_load_explicit(&m->pushed, memory_order_relaxed);
    unsigned st = own_state(m) | extra | cur;
    if (st == cur)
        return; /* the common case: nothing new to tell */
    unsigned old =
        atomic_fetch_or_explicit(&m->pushed, st, memory_order_acq_rel);
    if ((old | st) == old)
        return; /* another thread of ours told it */
    if ((st & MEMPIPE__WCLOSED) && ti >= 0) {
        /* The final count: with the closed bit set (it may not be yet, if
         * the close is on another thread between its two steps), no write
         * publishes past it. */
        size_t w = atomic_fetch_or_explicit(&m->core->pipes[ti].ring.wpos,
                                            MEMPIPE__RING_CLOSED,
                                            memory_order_seq_cst) &
                   ~MEMPIPE__RING_CLOSED;
        atomic_store_explicit(&h->side[s].wend, (uint64_t)w,
                              memory_order_release);
    }
    /* Release: wend and every position stored before, for the acquire of
     * the peer's pull. */
    atomic_fetch_or_explicit(&h->side[s].state, st, memory_order_release);
    mempipe__full_fence();
    bell_ring(&h->side[1 - s].bell, MEMPIPE__SHM_B_ALL);
}

/* The peer's waiters whose target our progress on ring i met. */
static void wake_peer(struct mempipe__shm *m, int i)
{
    struct mempipe__shm_hdr *h = m->h;
    int s = m->side, p = 1 - s;
    unsigned want =
        atomic_load_explicit(&h->side[p].want, memory_order_relaxed);
    if (want == 0)
        return; /* the common case: nobody there sleeps */
    if (i == tx_ring(m, s) &&
        (want & (MEMPIPE__SHM_BLK_DATA | MEMPIPE__SHM_NOTE_DATA)) &&
        atomic_load_explicit(&h->side[p].rx_target, memory_order_relaxed) <=
            atomic_load_explicit(&h->pos[i].wpos, memory_order_relaxed))
        bell_ring(&h->side[p].bell, MEMPIPE__SHM_B_DATA);
    if (i == rx_ring(m, s) &&
        (want & (MEMPIPE__SHM_BLK_SPACE | MEMPIPE__SHM_NOTE_SPACE)) &&
        atomic_load_explicit(&h->side[p].tx_target, memory_order_relaxed) <=
            atomic_load_explicit(&h->pos[i].rpos, memory_order_relaxed))
        bell_ring(&h->side[p].bell, MEMPIPE__SHM_B_SPACE);
}

/* ---- interests: what our sleepers wait for, published -------------------- */

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Under mu: want and the targets from the interests of both roles. The
 * targets before want; the caller's fence then orders both before its
 * re-check (the waiter's half of the protocol, docs/shm.md). */
static void publish(struct mempipe__shm *m)
{
    struct mempipe__shm_side *me = &m->h->side[m->side];
    unsigned want = 0;
    uint64_t rt = UINT64_MAX, tt = UINT64_MAX;
    if (m->rx.blk)
        want |= MEMPIPE__SHM_BLK_DATA, rt = min64(rt, m->rx.blkt);
    if (m->rx.req)
        want |= MEMPIPE__SHM_NOTE_DATA, rt = min64(rt, m->rx.reqt);
    if (m->rx.note)
        want |= MEMPIPE__SHM_NOTE_DATA, rt = min64(rt, m->rx.notet);
    if (m->tx.blk)
        want |= MEMPIPE__SHM_BLK_SPACE, tt = min64(tt, m->tx.blkt);
    if (m->tx.req)
        want |= MEMPIPE__SHM_NOTE_SPACE, tt = min64(tt, m->tx.reqt);
    if (m->tx.note)
        want |= MEMPIPE__SHM_NOTE_SPACE, tt = min64(tt, m->tx.notet);
    atomic_store_explicit(&me->rx_target, rt, memory_order_relaxed);
    atomic_store_explicit(&me->tx_target, tt, memory_order_relaxed);
    atomic_store_explicit(&me->want, want, memory_order_release);
}

/* The reader's target: the wpos its stored waker waits for (R65). */
static uint64_t rx_target_of(const struct mempipe__pipe *p)
{
    return atomic_load_explicit(&p->ring.rwant, memory_order_relaxed);
}

/* The writer's: the rpos at which need bytes are free. Never wraps: with
 * fewer than cap - need bytes written, any rpos will do (docs/shm.md). */
static uint64_t tx_target_of(const struct mempipe__pipe *p, size_t need)
{
    size_t cap = p->ring.cap;
    if (need > cap)
        need = cap;
    if (need == 0)
        need = 1;
    size_t w = atomic_load_explicit(&p->ring.wpos, memory_order_relaxed) &
               ~MEMPIPE__RING_CLOSED;
    return w + need > cap ? (uint64_t)(w + need - cap) : 0;
}

static size_t wneed_of(const struct mempipe__pipe *p)
{
    return atomic_load_explicit(&p->ring.wneed, memory_order_relaxed);
}

/* ---- the notifier: the peer's progress for our wakers and fds ----------- */

static bool peer_dead(struct mempipe__shm *m)
{
    if (m->lockfd < 0)
        return false; /* cannot tell (never here but in a fork child) */
    if (m->side == 0 &&
        atomic_load_explicit(&m->h->attach, memory_order_acquire) != 1)
        return false; /* nobody attached yet: nobody to die */
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 1 - m->side; /* the peer's byte */
    fl.l_len = 1;
    if (fcntl(m->lockfd, F_OFD_GETLK, &fl) != 0)
        return false;
    return fl.l_type == F_UNLCK;
}

/* Whether pipe p's fds are watched (fd.c hangs them on our observer). */
static bool fd_watched(const struct mempipe__shm *m, int ring)
{
    return ring >= 0 && atomic_load_explicit(&m->obs[ring].obs.inner,
                                             memory_order_acquire) != NULL;
}

/* Under mu: the notifier's interests from what is stored now. A poll
 * call's request (obs_waits) lasts until its slot is seen full or the
 * role's position moved (the call is over). */
static void note_recompute(struct mempipe__shm *m, struct mempipe__pipe *rx,
                           struct mempipe__pipe *tx)
{
    int s = m->side;
    if (rx != NULL) {
        struct interest *in = &m->rx;
        size_t rpos =
            atomic_load_explicit(&rx->ring.rpos, memory_order_relaxed);
        bool full = mempipe__slot_full(&rx->rd);
        if (in->req && (full || in->reqpos != rpos))
            in->req = false;
        in->note = full || fd_watched(m, rx_ring(m, s));
        in->notet = UINT64_MAX;
        if (full)
            in->notet = rx_target_of(rx);
        if (fd_watched(m, rx_ring(m, s)))
            in->notet = min64(in->notet, (uint64_t)rpos + 1);
    }
    if (tx != NULL) {
        struct interest *in = &m->tx;
        size_t wpos =
            atomic_load_explicit(&tx->ring.wpos, memory_order_relaxed) &
            ~MEMPIPE__RING_CLOSED;
        bool full = mempipe__slot_full(&tx->wr);
        if (in->req && (full || in->reqpos != wpos))
            in->req = false;
        in->note = full || fd_watched(m, tx_ring(m, s));
        in->notet = UINT64_MAX;
        if (full)
            in->notet = tx_target_of(tx, wneed_of(tx));
        if (fd_watched(m, tx_ring(m, s)))
            in->notet = min64(in->notet, tx_target_of(tx, 1));
    }
    publish(m);
}

/* The peer's words pulled, then every waker (and fd) of ours they satisfy
 * run, on this thread. A waker run here may close the end, its last
 * reference too: the frame keeps the core until the wakes are done (R32);
 * the caller touches m's core no more unless it holds a reference. */
static void run_wakes(struct mempipe__shm *m, struct mempipe__pipe *rx,
                      struct mempipe__pipe *tx)
{
    mempipe__shm_pull(m);
    mempipe__full_fence(); /* our copies before the slot loads (R25) */
    struct mempipe__hold frame;
    mempipe__hold_enter(&frame, rx != NULL ? rx : tx);
    if (rx != NULL)
        mempipe__pipe_progress(rx, MEMPIPE__ROLE_READER);
    if (tx != NULL)
        mempipe__pipe_progress(tx, MEMPIPE__ROLE_WRITER);
    mempipe__hold_leave(&frame);
}

static void *mempipe__shm_notifier(void *arg)
{
    struct mempipe__shm *m = arg;
    struct mempipe__shm_hdr *h = m->h;
    int s = m->side, ri = rx_ring(m, s), ti = tx_ring(m, s);
    struct mempipe__pipe *rx = ri >= 0 ? &m->core->pipes[ri] : NULL;
    struct mempipe__pipe *tx = ti >= 0 ? &m->core->pipes[ti] : NULL;
    for (;;) {
        unsigned b =
            atomic_load_explicit(&h->side[s].bell, memory_order_acquire);
        if (atomic_load_explicit(&m->stop, memory_order_acquire))
            break;
        pthread_mutex_lock(&m->mu);
        note_recompute(m, rx, tx);
        pthread_mutex_unlock(&m->mu);
        mempipe__full_fence(); /* interest before the look: the protocol */
        run_wakes(m, rx, tx);
        if (atomic_load_explicit(&m->orphan, memory_order_acquire)) {
            mempipe__free(m, sizeof *m); /* the core is gone: ours to free */
            return NULL;
        }
        if (atomic_load_explicit(&m->stop, memory_order_acquire))
            break;
        bool dead = atomic_load_explicit(&m->dead, memory_order_acquire);
        struct timespec dl;
        now_plus(&dl, MEMPIPE__SHM_SLICE_MS);
        if (bell_wait(&h->side[s].bell, b, MEMPIPE__SHM_B_ALL,
                      dead ? NULL : &dl) == -ETIMEDOUT &&
            peer_dead(m))
            atomic_store_explicit(&m->dead, 1, memory_order_release);
    }
    return NULL;
}

static void start_notifier(struct mempipe__shm *m)
{
    if (mempipe__shm_manual)
        return; /* the caller settles (shm.h) */
    pthread_mutex_lock(&m->tmu);
    if (!m->thr_on && !atomic_load_explicit(&m->stop, memory_order_relaxed)) {
        /* Its signals blocked from its first instruction: the caller's
         * handlers are not ours to run. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_create(&m->thr, NULL, mempipe__shm_notifier, m) == 0)
            m->thr_on = 1;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_mutex_unlock(&m->tmu);
}

void mempipe__shm_settle(mempipe *e)
{
    struct mempipe__shm *m = e != NULL ? e->core->shm : NULL;
    if (m == NULL || !remote(m))
        return;
    int s = m->side, ri = rx_ring(m, s), ti = tx_ring(m, s);
    mempipe__full_fence(); /* the caller's progress before the look */
    run_wakes(m, ri >= 0 ? &m->core->pipes[ri] : NULL,
              ti >= 0 ? &m->core->pipes[ti] : NULL);
}

static void kick(struct mempipe__shm *m)
{
    bell_ring(&m->h->side[m->side].bell, MEMPIPE__SHM_B_KICK);
}

/* ---- the pipes' observer ------------------------------------------------ */

static void blk_wake(void *ctx);

/* After every progress on pipe p, on the thread that made it, after its
 * full fence (pipe.h): our closes to the peer, the peer's waiters whose
 * target is met, then the fds. */
static void obs_notify(struct mempipe__observer *o, struct mempipe__pipe *p)
{
    struct shmobs *so = (struct shmobs *)o;
    struct mempipe__shm *m = so->m;
    if (remote(m)) {
        push_state(m, 0);
        wake_peer(m, so->ring);
    }
    struct mempipe__observer *in =
        atomic_load_explicit(&o->inner, memory_order_acquire);
    if (in != NULL)
        in->notify(in, p);
    struct mempipe__shm *pm;
    if (!forwarding &&
        atomic_load_explicit(&m->link, memory_order_relaxed) != NULL &&
        (pm = link_get(m)) != NULL) {
        /* A split side in this process: its wakers run now, on this
         * thread, as an in-process peer's would (the rule tests). */
        forwarding = true;
        mempipe__shm_pull(pm);
        mempipe__full_fence();
        mempipe__pipe_progress(&pm->core->pipes[so->ring],
                               MEMPIPE__ROLE_READER | MEMPIPE__ROLE_WRITER);
        forwarding = false;
        link_put(pm);
    }
}

static void obs_release(struct mempipe__observer *o, struct mempipe__pipe *p)
{
    struct mempipe__observer *in =
        atomic_load_explicit(&o->inner, memory_order_acquire);
    if (in != NULL)
        in->release(in, p);
}

/* The role's owner, before it stores w (pipe.h). A poll call's waker: the
 * request for the notifier, published before the store's fence, then our
 * copies refreshed, so the pipe's re-check after that fence sees what the
 * peer did before it could see the request. A blocking call's: nothing
 * here (mempipe__shm_blk_wait publishes, after its spin). */
static void obs_waits(struct mempipe__observer *o, struct mempipe__pipe *p,
                      unsigned role, const mempipe_waker *w)
{
    struct mempipe__shm *m = ((struct shmobs *)o)->m;
    if (!remote(m) || w->wake == blk_wake)
        return;
    bool rd = role == MEMPIPE__ROLE_READER;
    pthread_mutex_lock(&m->mu);
    struct interest *in = rd ? &m->rx : &m->tx;
    in->req = true;
    if (rd) {
        in->reqt = rx_target_of(p);
        in->reqpos = atomic_load_explicit(&p->ring.rpos, memory_order_relaxed);
    } else {
        in->reqt = tx_target_of(p, wneed_of(p));
        in->reqpos = atomic_load_explicit(&p->ring.wpos, memory_order_relaxed) &
                     ~MEMPIPE__RING_CLOSED;
    }
    publish(m);
    pthread_mutex_unlock(&m->mu);
    mempipe__full_fence();
    mempipe__shm_pull(m);
    /* A split side hears from its link (shm.h). */
    if (atomic_load_explicit(&m->link, memory_order_relaxed) == NULL)
        start_notifier(m);
}

void mempipe__shm_fd_made(mempipe *e)
{
    struct mempipe__shm *m = e->core->shm;
    if (m == NULL || !remote(m) ||
        atomic_load_explicit(&m->link, memory_order_relaxed) != NULL)
        return; /* a split side hears from its link (shm.h) */
    start_notifier(m);
    kick(m); /* it looks again: the fd is watched from now on */
}

/* ---- blocking calls ------------------------------------------------------ */

static void blk_wake(void *ctx)
{
    struct blk *b = ctx;
    bell_ring(&b->m->h->side[b->side].bell, b->bit);
}

void mempipe__shm_blk_waker(mempipe *e, bool rd, mempipe_waker *w)
{
    struct mempipe__shm *m = e->core->shm;
    w->wake = blk_wake;
    w->ctx = &m->blk[e == &m->core->ends[0] ? 0 : 1][rd ? 1 : 0];
}

unsigned mempipe__shm_blk_prepare(const mempipe *e)
{
    struct mempipe__shm *m = e->core->shm;
    /* Acquire: what a ringer published before its bump. */
    return atomic_load_explicit(&m->h->side[side_of(m, e)].bell,
                                memory_order_acquire);
}

/* Whether the wait is over: our bell rang, or the peer's position reached
 * the target (what the spin and the re-check look at). */
static bool blk_done(const struct mempipe__shm *m, bool rem, bool rd, int i,
                     atomic_uint *bell, unsigned seen, uint64_t target)
{
    if (atomic_load_explicit(bell, memory_order_acquire) != seen)
        return true;
    if (!rem || i < 0)
        return false;
    const struct mempipe__shm_pos *ps = &m->h->pos[i];
    uint64_t v = rd ? atomic_load_explicit(&ps->wpos, memory_order_acquire)
                    : atomic_load_explicit(&ps->rpos, memory_order_acquire);
    return v >= target;
}

static long ncpus(void)
{
    static atomic_long n;
    long v = atomic_load_explicit(&n, memory_order_relaxed);
    if (v == 0) {
        v = sysconf(_SC_NPROCESSORS_ONLN);
        if (v < 1)
            v = 1;
        atomic_store_explicit(&n, v, memory_order_relaxed);
    }
    return v;
}

int mempipe__shm_blk_wait(mempipe *e, bool rd, unsigned seen,
                          const struct timespec *dl, size_t room)
{
    struct mempipe__shm *m = e->core->shm;
    struct mempipe__shm_hdr *h = m->h;
    int s = side_of(m, e);
    atomic_uint *bell = &h->side[s].bell;
    bool rem = remote(m);
    struct mempipe__pipe *p = rd ? mempipe__end_rx(e) : mempipe__end_tx(e);
    int i = rd ? rx_ring(m, s) : tx_ring(m, s);
    size_t need = wneed_of(p) > room ? wneed_of(p) : room;
    uint64_t target = rd ? rx_target_of(p) : tx_target_of(p, need);
    int cpu = sched_getcpu();
    /* Spin on the peer's position while it runs on another CPU: between
     * processes a futex round trip is the whole cost of a small message
     * (docs/shm.md, Measured). A stale or lying cpu only decides this. */
    if (rem && ncpus() > 1 &&
        atomic_load_explicit(&h->side[1 - s].cpu, memory_order_relaxed) !=
            cpu) {
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (unsigned k = 1;; k++) {
            if (blk_done(m, rem, rd, i, bell, seen, target))
                return 0;
            mempipe__cpu_relax();
            if (k % 32 == 0) {
                clock_gettime(CLOCK_MONOTONIC, &t);
                if ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec -
                        t0.tv_nsec >
                    SPIN_NS)
                    break;
            }
        }
    }
    atomic_store_explicit(&h->side[s].cpu, cpu, memory_order_relaxed);
    struct interest *in = rd ? &m->rx : &m->tx;
    if (rem) {
        pthread_mutex_lock(&m->mu);
        in->blk = true;
        in->blkt = target;
        publish(m);
        pthread_mutex_unlock(&m->mu);
        mempipe__full_fence(); /* the interest before the re-check */
    }
    int rc = 0;
    unsigned bits = rd ? MEMPIPE__SHM_B_DATA : MEMPIPE__SHM_B_SPACE;
    while (!blk_done(m, rem, rd, i, bell, seen, target)) {
        struct timespec slice;
        now_plus(&slice, MEMPIPE__SHM_SLICE_MS);
        bool sliced = rem &&
                      !atomic_load_explicit(&m->dead, memory_order_acquire) &&
                      (dl == NULL || before(&slice, dl));
        if (bell_wait(bell, seen, bits, sliced ? &slice : dl) == 0)
            break; /* rang, or spurious: the caller polls again */
        if (!sliced) {
            rc = -ETIMEDOUT;
            break;
        }
        if (peer_dead(m)) {
            atomic_store_explicit(&m->dead, 1, memory_order_release);
            break; /* the next poll's pull sees it as the peer's close */
        }
    }
    if (rem) {
        pthread_mutex_lock(&m->mu);
        in->blk = false;
        publish(m);
        pthread_mutex_unlock(&m->mu);
    }
    return rc;
}

/* ---- close and free ------------------------------------------------------ */

void mempipe__shm_end_closed(struct mempipe__shm *m, const mempipe *e)
{
    (void)e;
    if (remote(m))
        push_state(m, MEMPIPE__SHM_GONE);
    unlink_side(m);
}

void mempipe__shm_stop(struct mempipe__shm *m)
{
    pthread_mutex_lock(&m->tmu);
    int on = m->thr_on;
    m->thr_on = 0;
    atomic_store_explicit(&m->stop, true, memory_order_release);
    pthread_mutex_unlock(&m->tmu);
    if (!on || m->gen != mempipe__fork_gen())
        return; /* none, or the parent's (a fork child has no such thread) */
    if (pthread_equal(pthread_self(), m->thr)) {
        /* A waker on the notifier closed the last end: it frees m itself
         * once its wakes are done (mempipe__shm_notifier()). */
        atomic_store_explicit(&m->orphan, true, memory_order_release);
        pthread_detach(m->thr);
        return;
    }
    kick(m);
    pthread_join(m->thr, NULL);
}

void mempipe__shm_free(struct mempipe__shm *m)
{
    reg_del(m);
    munmap((void *)m->h, m->maplen);
    if (m->lockfd >= 0)
        close(m->lockfd); /* the peer sees our side gone */
    bool mine = m->gen == mempipe__fork_gen();
    if (mine) { /* a fork child's copies may be locked: left alone */
        pthread_mutex_destroy(&m->mu);
        pthread_mutex_destroy(&m->tmu);
    }
    if (!atomic_load_explicit(&m->orphan, memory_order_acquire))
        mempipe__free(m, sizeof *m);
}

/* ---- create and attach --------------------------------------------------- */

/* A failed call's errno as ours: no descriptor, no feature, or memory. */
static int err_of(int e)
{
    if (e == EMFILE || e == ENFILE)
        return -e;
    if (e == ENOSYS || e == EINVAL || e == EPERM)
        return -EOPNOTSUPP;
    return -ENOMEM;
}

/* Our liveness token: a description of the file of our own (one that fork
 * or SCM_RIGHTS gave shares the sender's locks) with byte `side` locked. */
static int lock_open(int fd, int side, int *out)
{
    char path[40];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int lf = open(path, O_RDWR | O_CLOEXEC);
    if (lf < 0)
        return errno == EMFILE || errno == ENFILE ? -errno : -EOPNOTSUPP;
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = side;
    fl.l_len = 1;
    if (fcntl(lf, F_OFD_SETLK, &fl) != 0) {
        int e = errno;
        close(lf);
        return e == EAGAIN || e == EACCES ? -EBUSY : -EOPNOTSUPP;
    }
    *out = lf;
    return 0;
}

/* The private state for side `side` of the validated layout hd. */
static struct mempipe__shm *state_new(const struct mempipe__shm_hdr *hd,
                                      void *map, int side, int lockfd,
                                      const struct stat *st)
{
    struct mempipe__shm *m = mempipe__alloc(sizeof *m);
    if (m == NULL)
        return NULL;
    memset(m, 0, sizeof *m);
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        mempipe__free(m, sizeof *m);
        return NULL;
    }
    if (pthread_mutex_init(&m->tmu, NULL) != 0) {
        pthread_mutex_destroy(&m->mu);
        mempipe__free(m, sizeof *m);
        return NULL;
    }
    m->h = map;
    m->maplen = (size_t)hd->total;
    m->nrings = (int)hd->nrings;
    m->side = side;
    m->lockfd = lockfd;
    m->gen = mempipe__fork_gen();
    m->dev = st->st_dev;
    m->ino = st->st_ino;
    for (int i = 0; i < m->nrings; i++) {
        m->flat[i].data = (unsigned char *)map + hd->off[i];
        m->flat[i].wpos = &m->h->pos[i].wpos;
        m->flat[i].rpos = &m->h->pos[i].rpos;
        m->obs[i].obs.notify = obs_notify;
        m->obs[i].obs.release = obs_release;
        m->obs[i].obs.waits = obs_waits;
        atomic_init(&m->obs[i].obs.inner, NULL);
        m->obs[i].m = m;
        m->obs[i].ring = i;
    }
    for (int e = 0; e < 2; e++) {
        int s = e == 0 ? side : 1 - side;
        m->blk[e][1] = (struct blk){m, s, MEMPIPE__SHM_B_DATA};
        m->blk[e][0] = (struct blk){m, s, MEMPIPE__SHM_B_SPACE};
    }
    return m;
}

/* The kind and pipe indices of side s's end. */
static void wiring(int nrings, int s, enum mempipe__kind *k, int *rxi, int *txi)
{
    if (nrings == 2) {
        *k = MEMPIPE__DUPLEX;
        *rxi = 1 - s;
        *txi = s;
    } else {
        *k = s == 0 ? MEMPIPE__SIMPLEX_WRITER : MEMPIPE__SIMPLEX_READER;
        *rxi = s == 0 ? -1 : 0;
        *txi = s == 0 ? 0 : -1;
    }
}

/* The core of state m for side `side`, or NULL without memory. */
static struct mempipe__core *core_of(struct mempipe__shm *m, size_t cap)
{
    enum mempipe__kind k;
    int rxi, txi;
    wiring(m->nrings, m->side, &k, &rxi, &txi);
    struct mempipe__observer *obs[2] = {&m->obs[0].obs, &m->obs[1].obs};
    struct mempipe__core *c =
        mempipe__core_flat(m->nrings, cap, m->flat, obs, m, k, rxi, txi);
    if (c != NULL)
        m->core = c;
    return c;
}

static int shm_make(size_t max, int nrings, mempipe **local, int *peer_fd)
{
    if (local == NULL || peer_fd == NULL || max == 0 || max > MEMPIPE_SHM_MAX)
        return -EINVAL;
    pthread_once(&reg_once, reg_init);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t size = (max + page - 1) & ~(page - 1);
    struct mempipe__shm_hdr hd;
    memset(&hd, 0, sizeof hd);
    hd.version = MEMPIPE__SHM_VERSION;
    hd.nrings = (uint32_t)nrings;
    hd.page = (uint32_t)page;
    hd.lines = MEMPIPE__SHM_LINES;
    hd.total = page + (uint64_t)nrings * size;
    for (int i = 0; i < nrings; i++) {
        hd.off[i] = page + (uint64_t)i * size;
        hd.size[i] = size;
        hd.cap[i] = max;
    }
    hd.pid0 = (int32_t)getpid();
    int rc, lf = -1, pfd = -1;
    void *map = MAP_FAILED;
    struct mempipe__shm *m = NULL;
    int fd = memfd_create("mempipe-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return err_of(errno);
    if (ftruncate(fd, (off_t)hd.total) != 0) {
        rc = errno == EINVAL ? -EINVAL : -ENOMEM;
        goto fail;
    }
    map =
        mmap(NULL, (size_t)hd.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        rc = -ENOMEM;
        goto fail;
    }
    struct mempipe__shm_hdr *h = map;
    /* The immutable part, magic last (nobody can see the file yet). */
    memcpy((char *)h + sizeof hd.magic, (char *)&hd + sizeof hd.magic,
           offsetof(struct mempipe__shm_hdr, attach) - sizeof hd.magic);
    atomic_thread_fence(memory_order_release);
    h->magic = mempipe__shm_magic();
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) !=
        0) {
        rc = -EOPNOTSUPP;
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = lock_open(fd, 0, &lf)) != 0)
        goto fail;
    pfd = fcntl(fd, F_DUPFD, 3); /* no FD_CLOEXEC: exec inherits it */
    if (pfd < 0) {
        rc = err_of(errno);
        goto fail;
    }
    m = state_new(&hd, map, 0, lf, &st);
    if (m == NULL || core_of(m, max) == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    reg_add(m);
    close(fd);
    *local = &m->core->ends[0];
    *peer_fd = pfd;
    return 0;
fail:
    if (m != NULL) {
        pthread_mutex_destroy(&m->mu);
        pthread_mutex_destroy(&m->tmu);
        mempipe__free(m, sizeof *m);
    }
    if (pfd >= 0)
        close(pfd);
    if (lf >= 0)
        close(lf);
    if (map != MAP_FAILED)
        munmap(map, (size_t)hd.total);
    close(fd);
    return rc;
}

int mempipe_shm_duplex(size_t max, mempipe **local, int *peer_fd)
{
    return shm_make(max, 2, local, peer_fd);
}

int mempipe_shm_simplex(size_t max, mempipe **writer, int *reader_fd)
{
    return shm_make(max, 1, writer, reader_fd);
}

/* R71: every field of the immutable header against the file and itself. */
static int check(const struct mempipe__shm_hdr *hd, uint64_t size, size_t page)
{
    if (hd->magic != mempipe__shm_magic())
        return -EINVAL; /* not ours */
    if (hd->total != size)
        return -EINVAL; /* a file of another size than its header says */
    if (hd->version != MEMPIPE__SHM_VERSION ||
        hd->lines != MEMPIPE__SHM_LINES || hd->page != page ||
        (hd->nrings != 1 && hd->nrings != 2))
        return -EPROTO;
    uint64_t at = page;
    for (uint32_t i = 0; i < hd->nrings; i++) {
        if (hd->off[i] != at || hd->size[i] % page != 0 || hd->cap[i] == 0 ||
            hd->cap[i] > MEMPIPE_SHM_MAX || hd->cap[i] > hd->size[i] ||
            hd->size[i] - hd->cap[i] >= page || hd->cap[i] != hd->cap[0])
            return -EPROTO;
        at += hd->size[i]; /* each at most 2^40 + a page: no overflow */
    }
    return at == size ? 0 : -EPROTO;
}

int mempipe_shm_attach(int fd, mempipe **end)
{
    if (end == NULL)
        return -EINVAL;
    if (fd < 0 || fcntl(fd, F_GETFD) < 0)
        return -EBADF;
    pthread_once(&reg_once, reg_init);
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0)
        return errno == EINVAL ? -EINVAL : -EOPNOTSUPP;
    if (seals != (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
        return -EINVAL; /* not sealed as ours: it could shrink under us */
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -EBADF;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (st.st_size < (off_t)page)
        return -EINVAL;
    /* The header alone first: an attach in the creating process maps
     * nothing more. The copy is what is used from then on (R71). */
    void *map = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        return -ENOMEM;
    struct mempipe__shm_hdr hd;
    memset(&hd, 0, sizeof hd);
    memcpy(&hd, map, offsetof(struct mempipe__shm_hdr, attach));
    munmap(map, page);
    int rc = check(&hd, (uint64_t)st.st_size, page);
    if (rc != 0)
        return rc;
    unsigned zero = 0;
    /* The creator's end in this process: both ends then share its core,
     * an in-process pair whose bytes happen to be in the mapping. */
    pthread_mutex_lock(&reg_mu);
    struct mempipe__shm *creator = NULL;
    for (struct mempipe__shm *m = reg; m != NULL; m = m->next) {
        if (m->side != 0 || m->dev != st.st_dev || m->ino != st.st_ino ||
            m->gen != mempipe__fork_gen())
            continue;
        if (mempipe__shm_split) {
            creator = m;
            break;
        }
        if (!atomic_compare_exchange_strong_explicit(&m->h->attach, &zero, 1u,
                                                     memory_order_acq_rel,
                                                     memory_order_acquire)) {
            pthread_mutex_unlock(&reg_mu);
            return -EBUSY;
        }
        enum mempipe__kind k;
        int rxi, txi;
        wiring(m->nrings, 1, &k, &rxi, &txi);
        atomic_store_explicit(&m->linked, true, memory_order_release);
        *end = mempipe__core_second(m->core, k, rxi, txi);
        pthread_mutex_unlock(&reg_mu);
        return 0;
    }
    pthread_mutex_unlock(&reg_mu);
    map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
               0);
    if (map == MAP_FAILED)
        return -ENOMEM;
    struct mempipe__shm_hdr *h = map;
    /* Another process's: the lock before the claim, so "attached and
     * unlocked" always means gone (docs/shm.md, Peer death). */
    int lf = -1;
    if ((rc = lock_open(fd, 1, &lf)) != 0)
        goto fail;
    if (!atomic_compare_exchange_strong_explicit(&h->attach, &zero, 1u,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire)) {
        rc = zero == 1 ? -EBUSY : -EPROTO;
        goto fail;
    }
    h->pid1 = (int32_t)getpid();
    struct mempipe__shm *m = state_new(&hd, map, 1, lf, &st);
    if (m == NULL || core_of(m, (size_t)hd.cap[0]) == NULL) {
        if (m != NULL) {
            pthread_mutex_destroy(&m->mu);
            pthread_mutex_destroy(&m->tmu);
            mempipe__free(m, sizeof *m);
        }
        /* Claimed and left at once: the creator sees its peer gone. */
        atomic_fetch_or_explicit(&h->side[1].state,
                                 MEMPIPE__WCLOSED | MEMPIPE__RCLOSED |
                                     MEMPIPE__SHM_GONE,
                                 memory_order_release);
        rc = -ENOMEM;
        goto fail;
    }
    reg_add(m);
    if (creator != NULL) { /* split (tests): still registered? then link */
        pthread_mutex_lock(&reg_mu);
        for (struct mempipe__shm *c = reg; c != NULL; c = c->next)
            if (c == creator) {
                pthread_mutex_lock(&link_mu);
                atomic_store_explicit(&creator->link, m, memory_order_relaxed);
                atomic_store_explicit(&m->link, creator, memory_order_relaxed);
                pthread_mutex_unlock(&link_mu);
            }
        pthread_mutex_unlock(&reg_mu);
    }
    *end = &m->core->ends[0];
    return 0;
fail:
    if (lf >= 0)
        close(lf);
    munmap(map, (size_t)st.st_size);
    return rc;
}

int mempipe__shm_describe(const mempipe *e, char *buf, size_t room)
{
    struct mempipe__shm *m = e->core->shm;
    const char *peer = "linked";
    if (remote(m)) {
        unsigned ps = atomic_load_explicit(&m->h->side[1 - m->side].state,
                                           memory_order_acquire);
        if (atomic_load_explicit(&m->proto, memory_order_acquire))
            peer = "proto";
        else if (atomic_load_explicit(&m->dead, memory_order_acquire))
            peer = "dead";
        else if (ps & MEMPIPE__SHM_GONE)
            peer = "gone";
        else if (m->side == 0 &&
                 atomic_load_explicit(&m->h->attach, memory_order_acquire) == 0)
            peer = "none";
        else
            peer = "attached";
    } else if (m->gen != mempipe__fork_gen()) {
        peer = "inherited";
    }
    return snprintf(buf, room, " shm side=%d peer=%s", side_of(m, e), peer);
}

#else /* not Linux, or no lock-free 64-bit atomics: no shm pipes (R79) */

int mempipe_shm_duplex(size_t max, mempipe **local, int *peer_fd)
{
    (void)max, (void)local, (void)peer_fd;
    return -EOPNOTSUPP;
}

int mempipe_shm_simplex(size_t max, mempipe **writer, int *reader_fd)
{
    (void)max, (void)writer, (void)reader_fd;
    return -EOPNOTSUPP;
}

int mempipe_shm_attach(int fd, mempipe **end)
{
    (void)fd, (void)end;
    return -EOPNOTSUPP;
}

/* Never reached: no core has shm state here. */
void mempipe__shm_pull(struct mempipe__shm *m)
{
    (void)m;
}
void mempipe__shm_blk_waker(mempipe *e, bool rd, mempipe_waker *w)
{
    (void)e, (void)rd, (void)w;
}
unsigned mempipe__shm_blk_prepare(const mempipe *e)
{
    (void)e;
    return 0;
}
int mempipe__shm_blk_wait(mempipe *e, bool rd, unsigned seen,
                          const struct timespec *dl, size_t room)
{
    (void)e, (void)rd, (void)seen, (void)dl, (void)room;
    return 0;
}
void mempipe__shm_fd_made(mempipe *e)
{
    (void)e;
}
void mempipe__shm_end_closed(struct mempipe__shm *m, const mempipe *e)
{
    (void)m, (void)e;
}
void mempipe__shm_stop(struct mempipe__shm *m)
{
    (void)m;
}
void mempipe__shm_free(struct mempipe__shm *m)
{
    (void)m;
}
int mempipe__shm_describe(const mempipe *e, char *buf, size_t room)
{
    (void)e, (void)buf, (void)room;
    return 0;
}
void mempipe__shm_settle(mempipe *e)
{
    (void)e;
}

#endif
