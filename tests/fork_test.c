/* SPDX-License-Identifier: MIT */
/*
 * SPEC R34: fork(). An end inherited across fork() may only be closed in the
 * child; that close frees the child's copy and touches nothing the parent
 * shares: the parent's pollable fds keep telling the truth (a level-
 * triggered loop neither spins on a stale "ready" nor misses bytes), and
 * the pipe goes on working in the parent. New pipes made in the child work
 * normally, blocking calls included, even when a parent thread was inside
 * the parker at the moment of the fork.
 *
 * Children report by exit status: 0 is success, anything else (an abort
 * from T_RC/T_CHECK, a kill after a hang) fails the test in the parent.
 */
#include "testutil.h"

#include "end.h"
#include "park.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * ThreadSanitizer refuses, by default, a child that starts threads after a
 * fork of a multi-threaded parent; this test does exactly that on purpose.
 */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#if defined(UNDER_TSAN)
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "die_after_fork=0";
}
#endif

/* 1 if fd polls readable now (timeout 0). */
static int ready(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, 0);
    assert_true(n >= 0);
    return n > 0 && (p.revents & POLLIN) != 0;
}

/* Each fd polls as its condition says: readable fd while a read would not
 * return -EAGAIN, writable fd while a write would not. */
static void expect_fds(const char *when, int rfd, int want_r, int wfd,
                       int want_w)
{
    int r = ready(rfd), w = ready(wfd);
    if (r != want_r || w != want_w)
        fail_msg("%s: readable fd %s (want %s), writable fd %s (want %s)", when,
                 r ? "ready" : "not ready", want_r ? "ready" : "not ready",
                 w ? "ready" : "not ready", want_w ? "ready" : "not ready");
}

/* Waits for the child, at most `seconds`; kills it after that. Returns its
 * exit status, or -1 if it was killed for hanging. */
static int reap(pid_t pid, int seconds)
{
    double limit = tu_now() + seconds;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        assert_true(r >= 0);
        if (r == pid) {
            if (WIFEXITED(st))
                return WEXITSTATUS(st);
            fprintf(stderr, "child %d died of signal %d\n", (int)pid,
                    WIFSIGNALED(st) ? WTERMSIG(st) : 0);
            return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        }
        if (tu_now() > limit) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void test_R34_child_close_leaves_parent_fds_alone(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    unsigned char buf[64];
    memset(buf, 'x', sizeof buf);
    assert_rc(0, mempipe_duplex(sizeof buf, &a, &b));
    int ra = mempipe_readable_fd(a), wa = mempipe_writable_fd(a);
    int rb = mempipe_readable_fd(b), wb = mempipe_writable_fd(b);
    assert_true(ra >= 0 && wa >= 0 && rb >= 0 && wb >= 0);
    /* a -> b full: b readable, a not writable. b -> a empty: a not
     * readable, b writable. A close in either order changes all of it. */
    assert_rc(64, mempipe_poll_write(a, buf, sizeof buf, NULL));
    expect_fds("before fork, a", ra, 0, wa, 0);
    expect_fds("before fork, b", rb, 1, wb, 1);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* b first: its close would set a's readable fd (EOF) and a's
         * writable fd (-EPIPE) and clear its own readable fd (drained). */
        mempipe_close(b);
        mempipe_close(a);
        _exit(0);
    }
    assert_int_equal(0, reap(pid, 20));

    /* Nothing changed for the parent: its fds still match its pipe. */
    assert_rc(-EAGAIN, mempipe_poll_read(a, buf, sizeof buf, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "y", 1, NULL));
    expect_fds("after the child closed, a", ra, 0, wa, 0);
    expect_fds("after the child closed, b", rb, 1, wb, 1);

    /* And the pipe works fully in the parent, the fds following it. */
    assert_rc(64, mempipe_poll_read(b, buf, sizeof buf, NULL));
    expect_fds("b drained, a", ra, 0, wa, 1);
    expect_fds("b drained, b", rb, 0, wb, 1);
    assert_rc(2, mempipe_poll_write(b, "hi", 2, NULL));
    expect_fds("b wrote, a", ra, 1, wa, 1);
    assert_rc(2, mempipe_poll_read(a, buf, sizeof buf, NULL));
    assert_memory_equal(buf, "hi", 2);
    expect_fds("a read, a", ra, 0, wa, 1);
    mempipe_close(b);
    expect_fds("b closed, a", ra, 1, wa, 1); /* EOF, -EPIPE */
    assert_rc(0, mempipe_poll_read(a, buf, sizeof buf, NULL));
    assert_rc(-EPIPE, mempipe_poll_write(a, "y", 1, NULL));
    mempipe_close(a);
}

/* ---- blocking in the child --------------------------------------------- */

struct pingpong {
    mempipe *end;
    int rounds;
    atomic_int stop; /* parent's background pair: run until set */
};

/* Echoes: reads a byte, writes it back, `rounds` times (or until stop). */
static void *echo_main(void *arg)
{
    struct pingpong *p = arg;
    unsigned char c;
    for (int i = 0; p->rounds == 0 || i < p->rounds; i++) {
        ssize_t n = mempipe_read(p->end, &c, 1);
        if (n == 0)
            break; /* the other side closed */
        T_RC(1, n);
        T_RC(1, mempipe_write(p->end, &c, 1));
    }
    return NULL;
}

/* Sends `rounds` bytes through the echo and checks each comes back. */
static void ping(mempipe *end, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        unsigned char c = (unsigned char)i, back = 0;
        T_RC(1, mempipe_write(end, &c, 1));
        T_RC(1, mempipe_read(end, &back, 1));
        T_CHECK(back == c, "round %d: sent %d, got %d", i, c, back);
    }
}

static void *pinger_main(void *arg)
{
    struct pingpong *p = arg;
    while (!atomic_load(&p->stop))
        ping(p->end, 16);
    mempipe_shutdown(p->end);
    return NULL;
}

/*
 * The child: a new duplex whose parkers share the parent's busy buckets,
 * and a blocking ping-pong across two threads on it.
 */
static void child_pingpong(const struct mempipe__parker *like,
                           mempipe *inherited_a, mempipe *inherited_b)
{
    static mempipe *made[4096][2];
    unsigned want = mempipe__park_bucket(like);
    int i;
    for (i = 0; i < 4096; i++) {
        T_RC(0, mempipe_duplex(8, &made[i][0], &made[i][1]));
        if (mempipe__park_bucket(&made[i][1]->rpark) == want)
            break;
    }
    T_CHECK(i < 4096, "no pipe in bucket %u", want);
    struct pingpong echo = {.end = made[i][1], .rounds = 200};
    /*
     * A stack of its own: glibc would hand the child's thread the cached
     * stack of a parent thread, and so its pthread_t, which
     * ThreadSanitizer still counts as alive ("dup thread with used id").
     */
    enum { STACK = 1 << 20 };
    void *stack = aligned_alloc(4096, STACK);
    T_CHECK(stack != NULL, "no memory for a stack");
    pthread_attr_t attr;
    T_RC(0, pthread_attr_init(&attr));
    T_RC(0, pthread_attr_setstack(&attr, stack, STACK));
    pthread_t t;
    T_RC(0, pthread_create(&t, &attr, echo_main, &echo));
    pthread_attr_destroy(&attr);
    ping(made[i][0], 200);
    T_RC(0, pthread_join(t, NULL));
    free(stack);
    for (int j = 0; j <= i; j++) {
        mempipe_close(made[j][0]);
        mempipe_close(made[j][1]);
    }
    /* The parent's busy pair, as inherited mid-call: closing is allowed,
     * and leaves nothing allocated (valgrind checks the child's leaks). */
    mempipe_close(inherited_a);
    mempipe_close(inherited_b);
}

static void test_R34_child_blocks_on_new_pipes(void **state)
{
    (void)state;
    /* In the parent, two threads ping-pong with blocking calls, so that at
     * any instant one of them may be inside the parker (condvar build: may
     * hold its bucket's mutex) when this thread forks. */
    mempipe *a = NULL, *b = NULL;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    struct pingpong echo = {.end = b};
    struct pingpong pinger = {.end = a};
    pthread_t te, tp;
    assert_int_equal(0, pthread_create(&te, NULL, echo_main, &echo));
    assert_int_equal(0, pthread_create(&tp, NULL, pinger_main, &pinger));

    for (int k = 0; k < 40; k++) {
        /* Alternate the bucket of the echo's read and the pinger's. */
        const struct mempipe__parker *like = k % 2 ? &b->rpark : &a->rpark;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            child_pingpong(like, a, b);
            _exit(0);
        }
        int st = reap(pid, 20);
        if (st != 0)
            fail_msg("fork %d: the child %s", k,
                     st < 0 ? "hung in a blocking call on a new pipe"
                            : "failed");
    }
    atomic_store(&pinger.stop, 1);
    assert_int_equal(0, pthread_join(tp, NULL));
    assert_int_equal(0, pthread_join(te, NULL));
    mempipe_close(a);
    mempipe_close(b);
}

/* The child may also fork again: a grandchild's close of ends it inherited
 * twice leaves the parent's fds alone too. */
static void test_R34_grandchild_close_leaves_parent_fds_alone(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    assert_rc(0, mempipe_duplex(8, &a, &b));
    int ra = mempipe_readable_fd(a), wb = mempipe_writable_fd(b);
    assert_true(ra >= 0 && wb >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pid_t g = fork();
        if (g == 0) {
            mempipe_close(b);
            mempipe_close(a);
            _exit(0);
        }
        int st = 0;
        bool ok = g > 0 && waitpid(g, &st, 0) == g && WIFEXITED(st) &&
                  WEXITSTATUS(st) == 0;
        mempipe_close(b);
        mempipe_close(a);
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(0, reap(pid, 20));
    expect_fds("after the grandchild closed", ra, 0, wb, 1);
    char c;
    assert_rc(-EAGAIN, mempipe_poll_read(a, &c, 1, NULL));
    mempipe_close(a);
    mempipe_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R34_child_close_leaves_parent_fds_alone),
        cmocka_unit_test(test_R34_child_blocks_on_new_pipes),
        cmocka_unit_test(test_R34_grandchild_close_leaves_parent_fds_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
