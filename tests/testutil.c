/* SPDX-License-Identifier: MIT */
#ifdef TU_INTERNALS /* linked with the static library (tests/) */
#include "shm.h"
#endif

#define TU_XPROC_KIND /* fx_close and expect_read work on its stand-ins */
#include "kinds.h"    /* after shm.h: its call wrappers (xproc.h) */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void tu_assert_rc(long long expected, long long actual, const char *expr,
                  const char *file, int line)
{
    if (expected == actual)
        return;
    const char *en = expected < 0 && expected > -4096
                         ? mempipe_strerror((int)expected)
                         : "count";
    const char *an =
        actual < 0 && actual > -4096 ? mempipe_strerror((int)actual) : "count";
    fprintf(stderr, "%s:%d: %s: expected %lld (%s), got %lld (%s)\n", file,
            line, expr, expected, en, actual, an);
    fail_msg("%s: expected %lld, got %lld", expr, expected, actual);
}

void tu_counter_wake(void *ctx)
{
    struct tu_counter *c = ctx;
    atomic_fetch_add(&c->calls, 1);
}

mempipe_waker tu_counter_waker(struct tu_counter *c)
{
    mempipe_waker w = {tu_counter_wake, c};
    return w;
}

int tu_calls(struct tu_counter *c)
{
    return atomic_load(&c->calls);
}

uint64_t tu_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static unsigned char pattern_byte(uint64_t pos, uint64_t seed)
{
    uint64_t x = (pos + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    x ^= x >> 29;
    return (unsigned char)(x ^ (x >> 8));
}

void tu_pattern(unsigned char *buf, size_t len, uint64_t pos, uint64_t seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern_byte(pos + i, seed);
}

long tu_check_pattern(const unsigned char *buf, size_t len, uint64_t pos,
                      uint64_t seed)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != pattern_byte(pos + i, seed))
            return (long)i;
    return -1;
}

double tu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int tu_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -errno;
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

void tu_fill(mempipe *w, size_t n)
{
    char buf[64];
    memset(buf, 'x', sizeof buf);
    while (n > 0) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        assert_rc(k, mempipe_poll_write(w, buf, k, NULL));
        n -= k;
    }
}

const int tu_twin_scripts[][TU_TWIN_STEPS][2] = {
    {{TU_WR1, 0}, {TU_DRAIN, 1}, {TU_WR1, 1}, {TU_DRAIN, 0}},
    {{TU_FILL, 0}, {TU_DRAIN, 1}, {TU_FILL, 1}, {TU_FILL, 0}, {TU_DRAIN, 0}},
    {{TU_WR1, 0}, {TU_SHUT, 0}, {TU_DRAIN, 1}, {TU_SHUT, 1}, {TU_DRAIN, 0}},
    {{TU_SHUT, 1}, {TU_WR1, 0}, {TU_FILL, 0}, {TU_DRAIN, 1}, {TU_SHUT, 0}},
    {{TU_WR1, 0}, {TU_FILL, 1}, {TU_DRAIN, 0}, {TU_CLOSE, 0}, {TU_DRAIN, 1}},
    {{TU_FILL, 0}, {TU_CLOSE, 1}},
    {{TU_SHUT, 0}, {TU_DRAIN, 1}, {TU_CLOSE, 1}},
    {{TU_SHUT, 0}, {TU_SHUT, 1}, {TU_CLOSE, 0}},
    {{TU_FILL, 1}, {TU_SHUT, 0}, {TU_CLOSE, 0}, {TU_DRAIN, 1}},
    {{TU_FILL, 0}, {TU_FILL, 1}, {TU_CLOSE, 1}, {TU_DRAIN, 0}},
    {{TU_WR1, 1}, {TU_SHUT, 1}, {TU_FILL, 0}, {TU_DRAIN, 0}, {TU_CLOSE, 0}},
    {{TU_WR1, 0}, {TU_FILL, 1}, {TU_ABORT, 0}, {TU_DRAIN, 1}},
    {{TU_FILL, 0}, {TU_SHUT, 1}, {TU_ABORT, 1}},
    {{TU_WR1, 0}, {TU_WR1, 1}, {TU_CLOSE_ERR, 1}, {TU_DRAIN, 0}},
};
const size_t tu_twin_nscripts =
    sizeof tu_twin_scripts / sizeof tu_twin_scripts[0];

void tu_twin_open(struct tu_twin *x, size_t cap)
{
    assert_rc(0, mempipe_duplex(cap, &x->m[0], &x->m[1]));
    assert_rc(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, x->s));
    for (int e = 0; e < 2; e++) {
        x->mfd[e] = mempipe_fd(x->m[e]);
        assert_true(x->mfd[e] >= 0);
        x->open[e] = 1;
    }
}

void tu_twin_step(struct tu_twin *x, int op, int e)
{
    static char big[1 << 16];
    struct linger lg = {1, 0};
    switch (op) {
    case TU_WR1:
        assert_rc(1, mempipe_poll_write(x->m[e], "x", 1, NULL));
        assert_rc(1, send(x->s[e], "x", 1, MSG_NOSIGNAL));
        break;
    case TU_FILL:
        while (mempipe_poll_write(x->m[e], big, sizeof big, NULL) > 0)
            ;
        while (send(x->s[e], big, sizeof big, MSG_NOSIGNAL) > 0)
            ;
        break;
    case TU_DRAIN:
        while (mempipe_poll_read(x->m[e], big, sizeof big, NULL) > 0)
            ;
        while (recv(x->s[e], big, sizeof big, 0) > 0)
            ;
        break;
    case TU_SHUT:
        assert_rc(0, mempipe_shutdown(x->m[e]));
        assert_rc(0, shutdown(x->s[e], SHUT_WR));
        break;
    case TU_CLOSE:
    case TU_ABORT:
    case TU_CLOSE_ERR:
        if (op == TU_CLOSE)
            mempipe_close(x->m[e]);
        else if (op == TU_ABORT)
            mempipe_abort(x->m[e]);
        else
            assert_rc(0, mempipe_close_with_error(x->m[e], -ETIMEDOUT));
        if (op == TU_ABORT)
            assert_rc(
                0, setsockopt(x->s[e], SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
        close(x->s[e]);
        x->open[e] = 0;
        break;
    }
}

void tu_twin_close(struct tu_twin *x)
{
    for (int e = 0; e < 2; e++)
        if (x->open[e])
            tu_twin_step(x, TU_CLOSE, e);
}

/* ------------------------------------------------------------------------ */
/* The parking waker (struct tu_park, see testutil.h). */

void tu_park_init(struct tu_park *p)
{
    atomic_init(&p->seq, 0);
    atomic_init(&p->sleepers, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
}

void tu_park_destroy(struct tu_park *p)
{
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

unsigned tu_park_prepare(struct tu_park *p)
{
    return atomic_load(&p->seq);
}

void tu_park_wake(void *ctx)
{
    struct tu_park *p = ctx;
    /*
     * seq_cst increment, then seq_cst load of sleepers; the waiter does the
     * mirror image (sleepers, then seq under the mutex). In the single total
     * order one of them sees the other, so either the waiter sees the new seq
     * or we see the sleeper and signal under the mutex.
     */
    atomic_fetch_add(&p->seq, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

void tu_park_wait(struct tu_park *p, unsigned seen)
{
    atomic_fetch_add(&p->sleepers, 1);
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->seq) == seen)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
}

/* ------------------------------------------------------------------------ */
/* Watchdog: aborts with a message if tu_progress stands still for 10 s. */

atomic_ulong tu_progress;
/* What is being watched; NULL between watched sections. */
static _Atomic(const char *) watchdog_what;
static atomic_int watchdog_epoch;

/*
 * One detached thread for the whole run, so that a test whose assertion
 * fails (cmocka longjmps out of it) leaves nothing to join.
 */
static void *watchdog_main(void *arg)
{
    (void)arg;
    unsigned long last = 0;
    int epoch = -1, idle_ms = 0;
    for (;;) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        const char *what = atomic_load(&watchdog_what);
        unsigned long cur = atomic_load(&tu_progress);
        int e = atomic_load(&watchdog_epoch);
        if (what == NULL || cur != last || e != epoch) {
            last = cur;
            epoch = e;
            idle_ms = 0;
            continue;
        }
        idle_ms += 100;
        if (idle_ms >= 10000) {
            fprintf(stderr,
                    "WATCHDOG: %s made no progress for 10 s (progress count "
                    "%lu): a lost wakeup or a hang\n",
                    what, cur);
            abort();
        }
    }
    return NULL;
}

void tu_watchdog_start(const char *what)
{
    static int created;
    atomic_fetch_add(&watchdog_epoch, 1);
    atomic_store(&watchdog_what, what);
    if (!created) {
        pthread_t t;
        created = 1;
        assert_int_equal(0, pthread_create(&t, NULL, watchdog_main, NULL));
        pthread_detach(t);
    }
}

void tu_watchdog_end(void)
{
    atomic_store(&watchdog_what, NULL);
}

/* ------------------------------------------------------------------------ */
/* The end-kind fixture and counting allocator of kinds.h. */

int tu_shm;

/* An shm pipe of kind k, both ends here: split as between two processes
 * or sharing one core (kinds.h). */
int fx_try_open_shm(struct fx *f, enum kind k, size_t cap)
{
    int fd = -1;
    mempipe *local = NULL, *peer = NULL;
    f->kind = k;
#ifdef TU_INTERNALS
    /* The xproc kind's sides hear of each other only when settled. */
    mempipe__shm_manual = tu_shm == TU_SHMP;
#endif
    int made = k == DUPLEX ? mempipe_shm_duplex(cap, &local, &fd)
                           : mempipe_shm_simplex(cap, &local, &fd);
    if (made != 0)
        return made;
#ifdef TU_INTERNALS
    mempipe__shm_split = tu_shm == TU_SHMX;
    int rc = tu_shm == TU_SHMP ? xp_open(fd, local, &peer)
                               : mempipe_shm_attach(fd, &peer);
    mempipe__shm_split = 0;
#else
    int rc = mempipe_shm_attach(fd, &peer);
#endif
    close(fd);
    if (rc == -ENOMEM) { /* the attach's mapping did not fit: nothing made */
        mempipe_close(local);
        return rc;
    }
    assert_rc(0, rc);
    f->w = local; /* the duplex's a, the simplex's writer */
    f->r = peer;
    return 0;
}

static void fx_open_shm(struct fx *f, enum kind k, size_t cap)
{
    assert_rc(0, fx_try_open_shm(f, k, cap));
}

void fx_open(struct fx *f, enum kind k, size_t cap)
{
    f->kind = k;
    if (tu_shm != 0 && k != LOOPBACK) {
        fx_open_shm(f, k, cap);
        return;
    }
    switch (k) {
    case DUPLEX:
        assert_rc(0, mempipe_duplex(cap, &f->w, &f->r));
        break;
    case SIMPLEX:
        assert_rc(0, mempipe_simplex(cap, &f->r, &f->w));
        break;
    case LOOPBACK:
        assert_rc(0, mempipe_loopback(cap, &f->w));
        f->r = f->w;
        break;
    }
}

void fx_close(struct fx *f)
{
    if (f->r != f->w)
        mempipe_close(f->r);
    mempipe_close(f->w);
    f->w = f->r = NULL;
}

void expect_read(mempipe *e, const void *want, size_t n)
{
    unsigned char buf[256];
    assert_true(n <= sizeof buf);
    assert_rc(n, mempipe_poll_read(e, buf, sizeof buf, NULL));
    assert_memory_equal(buf, want, n);
}

void expect_calls(int want, struct tu_counter *c)
{
    assert_int_equal(want, tu_calls(c));
}

struct tu_counting tu_cnt;

/* Called through a volatile pointer: a plain memset before free() is a dead
 * store that the compiler removes. */
static void *(*volatile poison_fill)(void *, int, size_t) = memset;

void *tu_counting_realloc(void *ctx, void *ptr, size_t old_size,
                          size_t new_size)
{
    struct tu_counting *c = ctx;
    if (new_size == 0) {
        if (ptr != NULL) {
            atomic_fetch_sub(&c->live, (long long)old_size);
            if (atomic_load(&c->poison))
                poison_fill(ptr, 0xdd, old_size); /* the hook has the size */
            free(ptr);
        }
        return NULL;
    }
    long n = atomic_fetch_add(&c->calls, 1) + 1;
    long fail_at = atomic_load(&c->fail_at);
    if (fail_at != 0 && n >= fail_at)
        return NULL;
    void *p = realloc(ptr, new_size);
    if (p == NULL)
        return NULL;
    atomic_fetch_add(&c->live, (long long)new_size - (long long)old_size);
    atomic_fetch_add(&c->total, (long long)new_size - (long long)old_size);
    return p;
}

void tu_counting_reset(void)
{
    atomic_store(&tu_cnt.live, 0);
    atomic_store(&tu_cnt.total, 0);
    atomic_store(&tu_cnt.calls, 0);
    atomic_store(&tu_cnt.fail_at, 0);
    atomic_store(&tu_cnt.poison, 0);
}

int tu_alloc_setup(void **state)
{
    (void)state;
    tu_counting_reset();
    /* No pipe is alive between tests, so the hook may change. */
    assert_rc(0, mempipe_set_allocator(tu_counting_realloc, &tu_cnt));
    return 0;
}

int tu_poison_setup(void **state)
{
    tu_alloc_setup(state);
    atomic_store(&tu_cnt.poison, 1);
    return 0;
}

int tu_alloc_teardown(void **state)
{
    (void)state;
    /* R22: every end of the test is closed, so the last close freed
     * everything. */
    assert_int_equal(0, atomic_load(&tu_cnt.live));
    assert_rc(0, mempipe_set_allocator(NULL, NULL));
    return 0;
}

long long tu_live(void)
{
    return atomic_load(&tu_cnt.live);
}

#define PEER_BUF (8u << 10)

static void *peer_writer(void *arg)
{
    struct tu_peer *p = arg;
    unsigned char *buf = malloc(PEER_BUF * 4);
    uint64_t rng = p->seed;
    size_t done = 0;
    while (buf != NULL && done < p->total) {
        size_t n = 1 + tu_rand(&rng) % (PEER_BUF * 4);
        if (n > p->total - done)
            n = p->total - done;
        tu_pattern(buf, n, done, p->seed);
        if (mempipe_write(p->end, buf, n) != (ssize_t)n)
            break;
        done += n;
    }
    mempipe_shutdown(p->end);
    free(buf);
    return NULL;
}

static void *peer_reader(void *arg)
{
    struct tu_peer *p = arg;
    unsigned char buf[PEER_BUF];
    for (;;) {
        ssize_t n = mempipe_read(p->end, buf, sizeof buf);
        if (n <= 0)
            break;
        long bad = tu_check_pattern(buf, (size_t)n, p->read_back, p->seed);
        if (bad >= 0 && p->bad_at < 0)
            p->bad_at = (long)p->read_back + bad;
        p->read_back += (size_t)n;
    }
    return NULL;
}

void tu_peer_start(struct tu_peer *p, mempipe *end, size_t total, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    p->end = end;
    p->seed = seed;
    p->total = total;
    p->bad_at = -1;
    assert_int_equal(0, pthread_create(&p->wt, NULL, peer_writer, p));
    assert_int_equal(0, pthread_create(&p->rt, NULL, peer_reader, p));
}

void tu_peer_join(struct tu_peer *p)
{
    pthread_join(p->wt, NULL);
    pthread_join(p->rt, NULL);
    assert_int_equal(-1, p->bad_at);
    assert_int_equal(p->total, p->read_back);
}
