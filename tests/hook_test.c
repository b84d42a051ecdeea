/* SPDX-License-Identifier: MIT */
/*
 * Which calls call the allocator hook (mempipe_realloc_fn in mempipe.h), and
 * on which thread. Every public call below runs tagged with its name in a
 * thread-local variable, readers and writers on threads of their own; the
 * hook records the tag of each invocation. Every invocation must come from
 * inside a call that the header lists for it (allocating or freeing), on
 * that call's thread; and each listed call must really call the hook where
 * it has to (so the list is not longer than the truth either).
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

/* The header's list: which calls may allocate, which may free. */
static const struct {
    const char *call;
    bool allocs, frees;
} listed[] = {
    {"mempipe_duplex", true, false},
    {"mempipe_simplex", true, false},
    {"mempipe_loopback", true, false},
    {"mempipe_poll_write", true, true},
    {"mempipe_poll_writev", true, true},
    {"mempipe_write", true, true},
    {"mempipe_readable_fd", true, true},
    {"mempipe_writable_fd", true, true},
    {"mempipe_poll_read", false, true},
    {"mempipe_read", false, true},
    {"mempipe_close", false, true},
    {"mempipe_writev", true, true},
    {"mempipe_write_timeout", true, true},
    {"mempipe_fd", true, true},
    {"mempipe_poll_readv", false, true},
    {"mempipe_readv", false, true},
    {"mempipe_read_full", false, true},
    {"mempipe_read_timeout", false, true},
};
#define NLISTED (sizeof listed / sizeof listed[0])

/* The call this thread is inside, or NULL. */
static _Thread_local const char *current;

#define TAGGED(name, stmt)                                                     \
    do {                                                                       \
        current = name;                                                        \
        stmt;                                                                  \
        current = NULL;                                                        \
    } while (0)

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    long allocs[NLISTED], frees[NLISTED];
    long stray;           /* invocations outside every listed call */
    char stray_what[256]; /* the first of them */
    long long live;       /* bytes allocated and not freed */
} seen;

static void record(bool alloc)
{
    const char *tag = current;
    pthread_mutex_lock(&log_mu);
    size_t i = 0;
    while (i < NLISTED && (tag == NULL || strcmp(tag, listed[i].call) != 0))
        i++;
    bool ok = i < NLISTED && (alloc ? listed[i].allocs : listed[i].frees);
    if (ok && alloc)
        seen.allocs[i]++;
    else if (ok)
        seen.frees[i]++;
    else if (seen.stray++ == 0)
        snprintf(seen.stray_what, sizeof seen.stray_what,
                 "the hook was called to %s inside %s",
                 alloc ? "allocate" : "free",
                 tag != NULL ? tag : "no mempipe call on that thread");
    pthread_mutex_unlock(&log_mu);
}

static void *hook(void *ctx, void *ptr, size_t old_size, size_t new_size)
{
    (void)ctx;
    if (new_size == 0) {
        if (ptr != NULL) {
            record(false);
            pthread_mutex_lock(&log_mu);
            seen.live -= (long long)old_size;
            pthread_mutex_unlock(&log_mu);
            free(ptr);
        }
        return NULL;
    }
    record(true);
    void *p = realloc(ptr, new_size);
    if (p != NULL) {
        pthread_mutex_lock(&log_mu);
        seen.live += (long long)new_size - (long long)old_size;
        pthread_mutex_unlock(&log_mu);
    }
    return p;
}

static long count(const char *call, bool alloc)
{
    for (size_t i = 0; i < NLISTED; i++)
        if (strcmp(call, listed[i].call) == 0) {
            pthread_mutex_lock(&log_mu);
            long n = alloc ? seen.allocs[i] : seen.frees[i];
            pthread_mutex_unlock(&log_mu);
            return n;
        }
    fail_msg("%s is not on the list", call);
    return 0;
}

/* The call must have called the hook (in the setup the test made). */
static void expect_called(const char *call, bool alloc)
{
    if (count(call, alloc) == 0)
        fail_msg("%s never called the hook to %s (stray calls: %ld, the "
                 "first: %s)",
                 call, alloc ? "allocate" : "free", seen.stray,
                 seen.stray != 0 ? seen.stray_what : "none");
}

/* ---- the calls, on threads of their own --------------------------------- */

enum { BURST = 1 << 20, CHUNK = 4096 };
static unsigned char src[BURST], dst[BURST];

static void *burst_writer(void *arg)
{
    mempipe *w = arg;
    ssize_t n;
    TAGGED("mempipe_poll_write", n = mempipe_poll_write(w, src, BURST, NULL));
    T_RC(BURST, n);
    struct iovec iov[2] = {{src, 100}, {src + 100, 70000}};
    TAGGED("mempipe_poll_writev", n = mempipe_poll_writev(w, iov, 2, NULL));
    T_RC(70100, n);
    TAGGED("mempipe_write", n = mempipe_write(w, src, 200000));
    T_RC(200000, n);
    struct iovec wv[2] = {{src, 50000}, {src + 50000, 50000}};
    TAGGED("mempipe_writev", n = mempipe_writev(w, wv, 2));
    T_RC(100000, n);
    TAGGED("mempipe_write_timeout",
           n = mempipe_write_timeout(w, src, 100000, 1000));
    T_RC(100000, n);
    int rc;
    TAGGED("mempipe_shutdown", rc = mempipe_shutdown(w));
    T_RC(0, rc);
    return NULL;
}

/* A part with each kind of read, the rest with blocking reads, to EOF. */
static void *burst_reader(void *arg)
{
    mempipe *r = arg;
    size_t got = 0;
    ssize_t n;
    while (got < BURST / 4) {
        TAGGED("mempipe_poll_read", n = mempipe_poll_read(r, dst, CHUNK, NULL));
        T_CHECK(n > 0, "poll read: %zd (%s)", n, mempipe_strerror((int)n));
        got += (size_t)n;
    }
    struct iovec rv[2] = {{dst, 1000}, {dst + 1000, CHUNK}};
    while (got < BURST / 2) {
        TAGGED("mempipe_poll_readv", n = mempipe_poll_readv(r, rv, 2, NULL));
        T_CHECK(n > 0, "poll readv: %zd (%s)", n, mempipe_strerror((int)n));
        got += (size_t)n;
    }
    while (got < 3 * (BURST / 4)) {
        TAGGED("mempipe_readv", n = mempipe_readv(r, rv, 2));
        T_CHECK(n > 0, "readv: %zd (%s)", n, mempipe_strerror((int)n));
        got += (size_t)n;
    }
    while (got < BURST) {
        TAGGED("mempipe_read_full", n = mempipe_read_full(r, dst, CHUNK));
        T_RC(CHUNK, n);
        got += (size_t)n;
    }
    while (got < BURST + 200000) {
        TAGGED("mempipe_read_timeout",
               n = mempipe_read_timeout(r, dst, CHUNK, 1000));
        T_CHECK(n > 0, "read_timeout: %zd (%s)", n, mempipe_strerror((int)n));
        got += (size_t)n;
    }
    for (;;) {
        TAGGED("mempipe_read", n = mempipe_read(r, dst, CHUNK));
        T_CHECK(n >= 0, "read: %zd (%s)", n, mempipe_strerror((int)n));
        if (n == 0)
            break;
        got += (size_t)n;
    }
    T_RC(BURST + 70100 + 200000 + 200000, got);
    return NULL;
}

/* A blocking writer and reader at once, through a small pipe. */
static void *stream_writer(void *arg)
{
    mempipe *w = arg;
    ssize_t n;
    TAGGED("mempipe_write", n = mempipe_write(w, src, BURST));
    T_RC(BURST, n);
    TAGGED("mempipe_close", mempipe_close(w));
    return NULL;
}

static void *stream_reader(void *arg)
{
    mempipe *r = arg;
    size_t got = 0;
    ssize_t n;
    do {
        TAGGED("mempipe_read", n = mempipe_read(r, dst, sizeof dst));
        T_CHECK(n >= 0, "read: %zd (%s)", n, mempipe_strerror((int)n));
        got += (size_t)n;
    } while (n > 0);
    T_RC(BURST, got);
    return NULL;
}

/* Every call not on the list, on a thread of its own: none may call it. */
static void *unlisted(void *arg)
{
    mempipe **e = arg;
    char line[200];
    mempipe_waker w = {tu_counter_wake, &(struct tu_counter){0}};
    TAGGED("mempipe_readable", (void)mempipe_readable(e[0]));
    TAGGED("mempipe_writable", (void)mempipe_writable(e[0]));
    TAGGED("mempipe_capacity", (void)mempipe_capacity(e[0]));
    TAGGED("mempipe_describe", (void)mempipe_describe(e[0], line, sizeof line));
    TAGGED("mempipe_strerror", (void)mempipe_strerror(-EPIPE));
    TAGGED("mempipe_version", (void)mempipe_version());
    TAGGED("mempipe_budget_set", mempipe_budget_set(0));
    TAGGED("mempipe_budget_left", (void)mempipe_budget_left());
    TAGGED("mempipe_poll_flush", (void)mempipe_poll_flush(e[0], &w));
    TAGGED("mempipe_poll_shutdown", (void)mempipe_poll_shutdown(e[1], &w));
    TAGGED("mempipe_shutdown", (void)mempipe_shutdown(e[0]));
    TAGGED("mempipe_poll_readable", (void)mempipe_poll_readable(e[0], &w));
    TAGGED("mempipe_poll_writable", (void)mempipe_poll_writable(e[1], &w));
    TAGGED("mempipe_wait_readable", (void)mempipe_wait_readable(e[0], 0));
    TAGGED("mempipe_wait_writable", (void)mempipe_wait_writable(e[1], 0));
    TAGGED("mempipe_unread", (void)mempipe_unread(e[1]));
    TAGGED("mempipe_shut_state", (void)mempipe_shut_state(e[1]));
    TAGGED("mempipe_drain", (void)mempipe_drain(e[1], 0));
    TAGGED("mempipe_shutdown_read", (void)mempipe_shutdown_read(e[0]));
    return NULL;
}

static void run(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, fn, arg));
    assert_int_equal(0, pthread_join(t, NULL));
}

static void run2(void *(*f)(void *), void *fa, void *(*g)(void *), void *ga)
{
    pthread_t t, u;
    assert_int_equal(0, pthread_create(&t, NULL, f, fa));
    assert_int_equal(0, pthread_create(&u, NULL, g, ga));
    assert_int_equal(0, pthread_join(t, NULL));
    assert_int_equal(0, pthread_join(u, NULL));
}

static void test_hook_called_only_inside_the_listed_calls(void **state)
{
    (void)state;
    memset(&seen, 0, sizeof seen);
    assert_rc(0, mempipe_set_allocator(hook, NULL));
    tu_pattern(src, sizeof src, 0, 4);
    mempipe *a, *b, *r, *w, *l;
    int rc;

    /* A burst into a huge pipe, then drained: reads free segments. */
    TAGGED("mempipe_duplex", rc = mempipe_duplex((size_t)-1, &a, &b));
    assert_rc(0, rc);
    run(burst_writer, a);
    run(burst_reader, b);
    expect_called("mempipe_duplex", true);
    expect_called("mempipe_poll_write", true);
    expect_called("mempipe_poll_writev", true);
    expect_called("mempipe_write", true);
    expect_called("mempipe_poll_read", false);
    expect_called("mempipe_read", false);
    expect_called("mempipe_writev", true);
    expect_called("mempipe_write_timeout", true);
    expect_called("mempipe_poll_readv", false);
    expect_called("mempipe_readv", false);
    expect_called("mempipe_read_full", false);
    expect_called("mempipe_read_timeout", false);

    /* The fd calls allocate their bookkeeping. */
    TAGGED("mempipe_readable_fd", rc = mempipe_readable_fd(a));
    assert_true(rc >= 0);
    TAGGED("mempipe_writable_fd", rc = mempipe_writable_fd(b));
    assert_true(rc >= 0);
    expect_called("mempipe_readable_fd", true);
    TAGGED("mempipe_fd", rc = mempipe_fd(a));
    assert_true(rc >= 0);
    expect_called("mempipe_fd", true);

    /* Writer and reader at once, through 64 KiB, each on its thread. */
    TAGGED("mempipe_simplex", rc = mempipe_simplex(1 << 16, &r, &w));
    assert_rc(0, rc);
    run2(stream_writer, w, stream_reader, r);
    expect_called("mempipe_simplex", true);

    /* A cached segment too small for the next write: the write frees it.
     * Segments grow (512, then 8 KiB, ...); reading past the first puts it
     * in the cache, where the third write finds it too small. */
    TAGGED("mempipe_loopback", rc = mempipe_loopback((size_t)-1, &l));
    assert_rc(0, rc);
    ssize_t n;
    long before = 0;
    static const size_t sizes[] = {300, 5000, 5000};
    for (int i = 0; i < 3; i++) {
        before = count("mempipe_poll_write", false);
        TAGGED("mempipe_poll_write",
               n = mempipe_poll_write(l, src, sizes[i], NULL));
        assert_rc(sizes[i], n);
        if (i < 2) {
            TAGGED("mempipe_poll_read",
                   n = mempipe_poll_read(l, dst, sizes[i], NULL));
            assert_rc(sizes[i], n);
        }
    }
    if (count("mempipe_poll_write", false) == before)
        fail_msg("a write that could not reuse the cached segment freed "
                 "nothing");
    expect_called("mempipe_loopback", true);

    /* Nothing else calls it. */
    mempipe *e[2] = {a, b};
    run(unlisted, e);

    /* Close frees: bytes unread (the loopback's), then everything. */
    long long live = seen.live;
    TAGGED("mempipe_close", mempipe_close(l));
    TAGGED("mempipe_close", mempipe_close(r));
    TAGGED("mempipe_close", mempipe_close(a));
    TAGGED("mempipe_close", mempipe_close(b));
    expect_called("mempipe_close", false);
    assert_true(seen.live < live);
    if (seen.stray != 0)
        fail_msg("%ld hook invocations outside the listed calls; first: %s",
                 seen.stray, seen.stray_what);
    assert_int_equal(0, seen.live);
    assert_rc(0, mempipe_set_allocator(NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hook_called_only_inside_the_listed_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
