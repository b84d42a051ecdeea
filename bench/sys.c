/* SPDX-License-Identifier: MIT */
/*
 * The machine side of the benchmark: clock, CPU facts, pinning, RSS, the
 * counting allocator and the kernel baselines' fd helpers.
 */
#include "bench.h"

#include <mempipe.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_GIT_COMMIT
#define BENCH_GIT_COMMIT "unknown"
#endif

double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double cpu_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

_Noreturn void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mempipe_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* The first "model name" line of /proc/cpuinfo, or "unknown". */
static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *v = strchr(line, ':');
        if (v == NULL)
            break;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        snprintf(buf, len, "%s", v);
        buf[strcspn(buf, "\n")] = '\0';
        break;
    }
    fclose(f);
}

/*
 * The commit the binary measures. Asked of git at run time (the build-time
 * value may be stale after a commit without a rebuild), with "+dirty" when
 * src/ or include/ differ from it, since that is what the numbers depend on.
 */
static void git_commit(char *buf, size_t len)
{
    snprintf(buf, len, "%s", BENCH_GIT_COMMIT);
    FILE *p = popen("git rev-parse --short HEAD 2>/dev/null", "r");
    if (p == NULL)
        return;
    char line[64] = "";
    bool ok = fgets(line, sizeof line, p) != NULL;
    if (pclose(p) != 0 || !ok)
        return;
    line[strcspn(line, "\n")] = '\0';
    int dirty = system("git diff --quiet HEAD -- src include 2>/dev/null");
    snprintf(buf, len, "%s%s", line, dirty != 0 ? "+dirty(src)" : "");
}

void print_machine(void)
{
    char model[256], commit[96], date[64];
    cpu_model(model, sizeof model);
    git_commit(commit, sizeof commit);
    time_t t = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
    cpu_set_t set;
    int allowed = sched_getaffinity(0, sizeof set, &set) == 0
                      ? CPU_COUNT(&set)
                      : (int)sysconf(_SC_NPROCESSORS_ONLN);
    printf("- CPU: %s\n", model);
    printf("- cores: %ld online, %d usable by this process\n",
           sysconf(_SC_NPROCESSORS_ONLN), allowed);
    printf("- date: %s\n", date);
    printf("- git commit: %s (built from %s)\n", commit, BENCH_GIT_COMMIT);
    printf("- mempipe %s\n", mempipe_version());
}

void bench_cpus(int *a, int *b)
{
    cpu_set_t set;
    *a = *b = -1;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &set))
            continue;
        if (*a < 0) {
            *a = c;
        } else {
            *b = c;
            return;
        }
    }
    *b = *a;
}

void pin_self(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (rc != 0)
        die("pthread_setaffinity_np(cpu %d): %s", cpu, strerror(rc));
}

size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long size = 0, resident = 0;
    int got = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return got == 2 ? resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/*
 * The counting allocator. Relaxed atomics: the counts are read only after
 * the threads that allocate were joined, or as a window whose edges the
 * reading thread itself brackets, so no ordering with other data is needed.
 */
static atomic_uint_fast64_t n_allocs;
static atomic_int_fast64_t live_bytes;

static void *count_realloc(void *ctx, void *ptr, size_t old_size,
                           size_t new_size)
{
    (void)ctx;
    if (new_size == 0) {
        if (ptr != NULL)
            atomic_fetch_sub_explicit(&live_bytes, (int_fast64_t)old_size,
                                      memory_order_relaxed);
        free(ptr);
        return NULL;
    }
    void *p = realloc(ptr, new_size);
    if (p == NULL)
        return NULL;
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&live_bytes,
                              (int_fast64_t)new_size - (int_fast64_t)old_size,
                              memory_order_relaxed);
    return p;
}

void count_alloc_install(void)
{
    int rc = mempipe_set_allocator(count_realloc, NULL);
    if (rc != 0)
        die("mempipe_set_allocator: %s", mempipe_strerror(rc));
}

uint64_t count_allocs(void)
{
    return atomic_load_explicit(&n_allocs, memory_order_relaxed);
}

int64_t count_live_bytes(void)
{
    return atomic_load_explicit(&live_bytes, memory_order_relaxed);
}

unsigned long pipe_size_refused;

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        die("fcntl(O_NONBLOCK): %s", strerror(errno));
}

void make_pipe(int fds[2], bool nonblock)
{
    if (pipe(fds) != 0)
        die("pipe: %s", strerror(errno));
    /* 64 KiB is also Linux's default; set it anyway so that a changed
     * default cannot skew the baseline. An unprivileged user past the
     * per-user pipe quota is refused: counted and reported, not fatal. */
    if (fcntl(fds[1], F_SETPIPE_SZ, (int)(64 * KIB)) < 0)
        pipe_size_refused++;
    if (nonblock) {
        set_nonblock(fds[0]);
        set_nonblock(fds[1]);
    }
}

void make_socketpair(int fds[2], bool nonblock)
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
        die("socketpair: %s", strerror(errno));
    if (nonblock) {
        set_nonblock(fds[0]);
        set_nonblock(fds[1]);
    }
}

void fd_write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("write: %s", n < 0 ? strerror(errno) : "wrote 0");
        p += n;
        len -= (size_t)n;
    }
}

void fd_read_exact(int fd, void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("read: %s", n < 0 ? strerror(errno) : "unexpected EOF");
        p += n;
        len -= (size_t)n;
    }
}
