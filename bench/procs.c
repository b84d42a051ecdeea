/* SPDX-License-Identifier: MIT */
/*
 * The two-process workloads (issue 14): W1 and W2 with their two sides in
 * two processes made with fork(), in the placements of threads.c (as is,
 * split across two CPUs, both on one CPU), run by the same loops
 * (w1_writer, w1_reader, w2_pinger, w2_ponger):
 *
 *   W1x  bulk: 1 GiB (64 MiB with --quick) in 64 KiB blocking writes from
 *        the parent, then shutdown; the child reads into a 64 KiB buffer
 *        until EOF. Two groups: capacity 64 KiB, and capacity 1 MiB. GB/s
 *        by the parent's wall clock from the child's "ready" (attached,
 *        pinned) to its "done" (EOF read): fork, attach and exit are
 *        outside the window.
 *   W2x  ping-pong: the parent writes 64 B, the child reads all 64 and
 *        writes them back, the parent reads all 64; 200,000 round trips
 *        (5,000 with --quick). Microseconds per round trip, by the
 *        parent's wall clock over its own loop.
 *
 * mempipe ("mempipe shm"): the parent makes an shm pipe (W1x
 * mempipe_shm_simplex, W2x mempipe_shm_duplex); the child inherits the
 * memfd's fd and attaches it (mempipe_shm_attach); both use the blocking
 * mempipe_write and mempipe_read. The kernel rows: the pipes (one per
 * direction) and the socketpair of sides_open(), made before the fork,
 * so with their default buffers (64 KiB pipes); in W1x's 1 MiB group the
 * pipe gets F_SETPIPE_SZ 1 MiB and the socketpair SO_SNDBUF and SO_RCVBUF
 * 1 MiB on both ends.
 *
 * wakes/MiB, W1x only and every impl: the voluntary context switches of
 * the writer's and the reader's process over the timed window
 * (getrusage(RUSAGE_THREAD), each process has one thread), i.e. how often
 * each went to sleep and had to be woken. shm ends sleep on their own
 * futex words, not on the parkers that wakes.c reads for W1, so the W1
 * count cannot be taken here; this one costs two getrusage calls a side.
 * W2 reports no wake-ups, and neither does W2x.
 *
 * The child dies with the parent (PR_SET_PDEATHSIG): a bench killed by a
 * timeout leaves no process behind.
 */
#include "bench.h"

#include <mempipe.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG 64

/* The connection of one run, before the fork: both sides, and the fd the
 * child attaches (mempipe; -1 for the kernel). */
struct pconn {
    struct side mine, theirs; /* the parent's side, the child's */
    int shm_fd;
};

/* Pipes whose F_SETPIPE_SZ was refused, sockets whose buffers came out
 * smaller than asked: noted under the group. */
static unsigned long pipe_big_refused, sock_small;
static int sock_got; /* the last short buffer seen, for the note */

static void sock_bufs(int fd, int size)
{
    static const int opt[2] = {SO_SNDBUF, SO_RCVBUF};
    for (int i = 0; i < 2; i++) {
        int got = 0;
        socklen_t len = sizeof got;
        if (setsockopt(fd, SOL_SOCKET, opt[i], &size, sizeof size) != 0 ||
            getsockopt(fd, SOL_SOCKET, opt[i], &got, &len) != 0)
            die("SO_SNDBUF/SO_RCVBUF: %s", strerror(errno));
        /* Linux reports twice what it was asked (its bookkeeping), less
         * when net.core.wmem_max/rmem_max clip the request. */
        if (got < size) {
            sock_small++;
            sock_got = got;
        }
    }
}

static void pconn_open(struct pconn *c, enum impl impl, bool duplex, size_t cap)
{
    c->shm_fd = -1;
    if (impl != IMPL_MEMPIPE) {
        sides_open(&c->mine, &c->theirs, impl);
        if (cap == 64 * KIB) /* default buffers: 64 KiB pipes (make_pipe) */
            return;
        if (impl == IMPL_PIPE) {
            if (fcntl(c->mine.wfd, F_SETPIPE_SZ, (int)cap) < 0)
                pipe_big_refused++;
        } else {
            sock_bufs(c->mine.wfd, (int)cap);
            sock_bufs(c->theirs.rfd, (int)cap);
        }
        return;
    }
    c->mine = c->theirs = (struct side){.impl = impl, .rfd = -1, .wfd = -1};
    int rc = duplex ? mempipe_shm_duplex(cap, &c->mine.mp, &c->shm_fd)
                    : mempipe_shm_simplex(cap, &c->mine.mp, &c->shm_fd);
    if (rc != 0)
        die("mempipe_shm_%s: %s", duplex ? "duplex" : "simplex",
            mempipe_strerror(rc));
}

/* What the child sends on the control pipe when its loop is over. */
struct report {
    uint64_t nvcsw;
};

static uint64_t nvcsw_self(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0)
        die("getrusage: %s", strerror(errno));
    return (uint64_t)ru.ru_nvcsw;
}

/* A side's loop, its argument and its CPU (-1: not pinned). */
struct role {
    void *(*fn)(void *);
    void *arg;
    int cpu;
};

static _Noreturn void child_main(struct pconn *c, const int ctl[2],
                                 pid_t parent, const struct role *r)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(1);
    close(ctl[0]);
    pin_self(r->cpu);
    /* The parent's side: an inherited end may only be closed (R34). */
    side_close(&c->mine);
    if (c->shm_fd >= 0) {
        int rc = mempipe_shm_attach(c->shm_fd, &c->theirs.mp);
        if (rc != 0)
            die("child: mempipe_shm_attach: %s", mempipe_strerror(rc));
        close(c->shm_fd);
    }
    fd_write_all(ctl[1], "r", 1);
    uint64_t v0 = nvcsw_self();
    r->fn(r->arg);
    struct report rep = {.nvcsw = nvcsw_self() - v0};
    fd_write_all(ctl[1], &rep, sizeof rep);
    side_close(&c->theirs);
    _exit(0);
}

/* Reaps the child; dies unless it exited with 0. */
static void reap(pid_t pid, const char *what)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            die("waitpid: %s", strerror(errno));
    if (WIFSIGNALED(st))
        die("%s: the child process died of signal %d", what, WTERMSIG(st));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("%s: the child process exited with %d", what, WEXITSTATUS(st));
}

/* Reads exactly len bytes of the control pipe; false at an early EOF. */
static bool ctl_read(int fd, void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("read (control pipe): %s", strerror(errno));
        if (n == 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

struct outcome {
    double dt; /* seconds */
    uint64_t nvcsw_mine, nvcsw_theirs;
};

/*
 * Runs mine->fn in this process and theirs->fn in a child on c's two
 * sides; times from the child's "ready" to the end of mine->fn, or to the
 * child's report when until_theirs. Closes c. This thread's CPU mask is
 * put back afterwards, so the rows after it run unpinned.
 */
static struct outcome two_procs(struct pconn *c, const struct role *mine,
                                const struct role *theirs, bool until_theirs,
                                const char *what)
{
    int ctl[2];
    if (pipe(ctl) != 0)
        die("pipe: %s", strerror(errno));
    cpu_set_t old;
    pthread_getaffinity_np(pthread_self(), sizeof old, &old);
    pin_self(mine->cpu);
    pid_t parent = getpid();
    fflush(NULL); /* no buffered output for the child to print again */
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0)
        child_main(c, ctl, parent, theirs);
    close(ctl[1]);
    side_close(&c->theirs);
    if (c->shm_fd >= 0)
        close(c->shm_fd); /* handed on: the child has its own copy */
    char ready;
    if (!ctl_read(ctl[0], &ready, 1)) {
        reap(pid, what);
        die("%s: the child process exited before it was ready", what);
    }
    struct outcome out;
    uint64_t v0 = nvcsw_self();
    double t0 = now_sec();
    mine->fn(mine->arg);
    double t1 = now_sec();
    out.nvcsw_mine = nvcsw_self() - v0;
    struct report rep;
    if (!ctl_read(ctl[0], &rep, sizeof rep)) {
        reap(pid, what);
        die("%s: the child process exited without its report", what);
    }
    out.dt = (until_theirs ? now_sec() : t1) - t0;
    out.nvcsw_theirs = rep.nvcsw;
    reap(pid, what);
    close(ctl[0]);
    side_close(&c->mine);
    pthread_setaffinity_np(pthread_self(), sizeof old, &old);
    return out;
}

/* The implementations of a group, in table order. */
static const enum impl impls[] = {IMPL_MEMPIPE, IMPL_PIPE, IMPL_SOCKET};
#define NIMPL ((int)(sizeof impls / sizeof impls[0]))

/* One run of a workload: capacity cap, n bytes or round trips. */
typedef struct sample (*once_fn)(enum impl impl, enum placement pl, size_t cap,
                                 size_t n);

/*
 * One group per placement: a row per implementation from proto, the runs
 * interleaved run by run (as threads.c does) so that slow phases of a
 * shared machine hit every row alike.
 */
static void run_groups(const struct opts *o, const struct row *proto,
                       once_fn once, size_t cap, size_t n)
{
    for (int pl = 0; pl < PL_COUNT; pl++) {
        if (!placement_possible(pl))
            continue;
        struct row rows[NIMPL];
        for (int i = 0; i < NIMPL; i++) {
            rows[i] = *proto;
            rows[i].placement = placement_name[pl];
            rows[i].impl =
                impls[i] == IMPL_MEMPIPE ? IMPL_SHM_NAME : impl_name[impls[i]];
        }
        for (int r = 0; r < o->runs; r++)
            for (int i = 0; i < NIMPL; i++) {
                if (!(o->impls & (1u << impls[i])))
                    continue;
                struct sample s = once(impls[i], pl, cap, n);
                row_add(&rows[i], &s);
            }
        table_group(rows, NIMPL);
    }
}

/* ---- W1x --------------------------------------------------------------- */

static struct sample w1x_once(enum impl impl, enum placement pl, size_t cap,
                              size_t total)
{
    struct pconn c;
    pconn_open(&c, impl, false, cap);
    struct w1_arg w = {.s = &c.mine, .chunk = 64 * KIB, .total = total};
    struct w1_arg r = {.s = &c.theirs, .chunk = 64 * KIB, .total = total};
    w.warm = total / w.chunk / 16; /* as W1: the first 1/16 warms up */
    placement_cpus(pl, &w.cpu, &r.cpu);
    struct role wr = {w1_writer, &w, w.cpu}, rd = {w1_reader, &r, r.cpu};
    struct outcome o = two_procs(&c, &wr, &rd, true, "W1x");
    struct sample s = {.value = (double)total / o.dt / 1e9,
                       .wakes_w = o.nvcsw_mine,
                       .wakes_r = o.nvcsw_theirs,
                       .bytes = total};
    if (impl == IMPL_MEMPIPE) { /* the hook sees only mempipe's */
        s.allocs = w.allocs;
        s.ops = w.ops;
    }
    return s;
}

void run_w1x(const struct opts *o, double limit)
{
    static const struct {
        size_t cap;
        const char *id, *workload;
    } groups[] = {
        {64 * KIB, "W1x", "W1x 2 processes, 64 KiB calls, capacity 64 KiB"},
        {MIB, "W1x1M", "W1x 2 processes, 64 KiB calls, capacity 1 MiB"},
    };
    size_t total = o->quick ? 64 * MIB : GIB;
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        pipe_big_refused = sock_small = 0;
        struct row proto = {.id = groups[g].id,
                            .workload = groups[g].workload,
                            .unit = "GB/s",
                            .sense = HIGHER_BETTER,
                            .limit = limit};
        run_groups(o, &proto, w1x_once, groups[g].cap, total);
        if (pipe_big_refused > 0)
            table_note("%s: F_SETPIPE_SZ %zu KiB was refused for %lu pipes; "
                       "they kept 64 KiB.",
                       groups[g].id, groups[g].cap / KIB, pipe_big_refused);
        if (sock_small > 0)
            table_note("%s: %lu socket buffers came out smaller than the "
                       "%zu KiB asked (the last: %d B; net.core.wmem_max, "
                       "rmem_max).",
                       groups[g].id, sock_small, groups[g].cap / KIB, sock_got);
    }
}

/* ---- W2x --------------------------------------------------------------- */

static struct sample w2x_once(enum impl impl, enum placement pl, size_t cap,
                              size_t trips)
{
    struct pconn c;
    pconn_open(&c, impl, true, cap);
    /* An shm ring is made whole, so the warm-up is for the caches alone. */
    struct w2_arg a = {.s = &c.mine, .trips = trips, .warm = trips / 20};
    struct w2_arg b = {.s = &c.theirs};
    placement_cpus(pl, &a.cpu, &b.cpu);
    struct role pi = {w2_pinger, &a, a.cpu}, po = {w2_ponger, &b, b.cpu};
    struct outcome o = two_procs(&c, &pi, &po, false, "W2x");
    struct sample s = {.value = o.dt / (double)trips * 1e6};
    if (impl == IMPL_MEMPIPE) {
        s.allocs = a.allocs;
        s.ops = a.ops;
    }
    return s;
}

void run_w2x(const struct opts *o)
{
    struct row proto = {.id = "W2x",
                        .workload = "W2x 2 processes, ping-pong 64 B",
                        .unit = "us/round trip",
                        .sense = LOWER_BETTER};
    run_groups(o, &proto, w2x_once, 64 * KIB, o->quick ? 5000 : 200000);
}
