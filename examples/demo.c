/* SPDX-License-Identifier: MIT */
/*
 * mempipe demo: the two ways to drive a pipe.
 *
 * Part 1 -- threads and blocking calls. A client thread and a server thread
 * talk over a duplex as if it were a socketpair: the server upper-cases what
 * it reads and echoes it back; shutdown() gives the server EOF; the server's
 * close gives the client EOF and makes the client's later writes fail with
 * -EPIPE (never a signal).
 *
 * Part 2 -- one thread and the poll API. A producer task and a consumer task
 * share one thread through a tiny run queue. A poll call that cannot make
 * progress returns -EAGAIN and stores the task's waker; the waker only puts
 * the task back on the queue, and the loop polls it again. This is the shape
 * of any event loop or async runtime built on mempipe.
 *
 * Every call returns a byte count (>= 0) or a negative errno value.
 */
#include <mempipe.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

/* ---- Part 1: two threads, blocking calls ------------------------------ */

static void *server(void *arg)
{
    mempipe *end = arg;
    char buf[64];
    ssize_t n;

    /* Read whatever has arrived (never waits to fill buf), echo it back. */
    while ((n = mempipe_read(end, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            buf[i] = (char)toupper((unsigned char)buf[i]);
        mempipe_write(end, buf, (size_t)n);
    }
    printf("  server: read returned %zd (EOF), closing\n", n);
    /* The client drains what we echoed, then reads EOF; its writes fail. */
    mempipe_close(end);
    return NULL;
}

static int part1_threads(void)
{
    static const char *lines[] = {"hello\n", "in-memory\n", "pipes\n"};
    mempipe *client, *srv;
    pthread_t tid;
    char reply[64];
    size_t got = 0;
    ssize_t n;

    /* 32 bytes each way: the lines (22 bytes) fit, so nothing deadlocks
     * even though the client sends everything before it reads. */
    if (mempipe_duplex(32, &client, &srv) < 0 ||
        pthread_create(&tid, NULL, server, srv) != 0)
        return 1;
    /* The server thread owns srv now; this thread uses only client. */

    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        n = mempipe_write(client, lines[i], strlen(lines[i]));
        printf("  client: wrote %zd bytes\n", n);
    }
    mempipe_shutdown(client); /* half-close: "no more requests" */

    /* The reply may come in pieces of any size; read until EOF. */
    while ((n = mempipe_read(client, reply + got, sizeof reply - got)) > 0) {
        printf("  client: read %zd bytes\n", n);
        got += (size_t)n;
    }
    printf("  client: read returned %zd (EOF); the reply:\n", n);
    for (size_t i = 0, start = 0; i < got; i++) {
        if (reply[i] == '\n') {
            printf("    %.*s\n", (int)(i - start), reply + start);
            start = i + 1;
        }
    }

    /* -EPIPE, no SIGPIPE: our sending side is shut down and the server has
     * closed (either alone would do; the next lines show the second). */
    ssize_t late = mempipe_write(client, "late", 4);
    printf("  client: write after the server closed -> %zd (%s)\n", late,
           mempipe_strerror((int)late));

    pthread_join(tid, NULL);
    mempipe_close(client);

    /* The peer's close alone is enough, even with free space (R19). */
    mempipe *x, *y;
    if (mempipe_duplex(32, &x, &y) < 0)
        return 1;
    mempipe_close(y);
    n = mempipe_write(x, "hi", 2);
    printf("  fresh duplex, peer closed: write -> %zd (%s)\n", n,
           mempipe_strerror((int)n));
    mempipe_close(x);

    const char *want = "HELLO\nIN-MEMORY\nPIPES\n";
    int ok = got == strlen(want) && memcmp(reply, want, got) == 0;
    return ok && late == -EPIPE && n == -EPIPE ? 0 : 1;
}

/* ---- Part 2: one thread, the poll API, a run queue of wakers ---------- */

#define TOTAL (64 * 1024) /* bytes the producer sends */
#define PIPE  1024        /* pipe capacity: far smaller than TOTAL */

struct task {
    const char *name;
    int (*poll)(struct task *); /* returns 1 when the task is finished */
    mempipe *end;
    size_t done;  /* bytes moved so far */
    int queued;   /* already on the run queue: don't push twice */
    int woken;    /* times its waker was called */
    int finished; /* poll returned 1 */
    int bad;      /* the consumer saw a wrong byte or a wrong total */
};

/* The run queue: a ring of task pointers. A task is on it at most once, so
 * it never holds more entries than there are tasks. */
static struct task *queue[2];
static unsigned q_head, q_len;

static void push(struct task *t)
{
    if (t->queued || t->finished)
        return;
    t->queued = 1;
    queue[(q_head + q_len++) % 2] = t;
}

/* The waker. It runs inside the other task's mempipe call, on this same
 * thread, so it must not poll the task itself: it only schedules it. */
static void wake(void *ctx)
{
    struct task *t = ctx;
    t->woken++;
    push(t);
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 31 + 7);
}

static int producer(struct task *t)
{
    unsigned char chunk[700]; /* not a divisor of PIPE: short writes happen */
    const mempipe_waker w = {wake, t};

    while (t->done < TOTAL) {
        size_t len =
            TOTAL - t->done < sizeof chunk ? TOTAL - t->done : sizeof chunk;
        for (size_t i = 0; i < len; i++)
            chunk[i] = pattern(t->done + i);
        ssize_t n = mempipe_poll_write(t->end, chunk, len, &w);
        if (n == -EAGAIN)
            return 0; /* full: w is stored; the consumer's read calls it */
        if (n < 0) {
            printf("  producer: %s\n", mempipe_strerror((int)n));
            return 1;
        }
        t->done += (size_t)n; /* n may be < len: take the rest next time */
    }
    mempipe_shutdown(t->end); /* the consumer reads EOF after the data */
    return 1;
}

static int consumer(struct task *t)
{
    unsigned char buf[512];
    const mempipe_waker w = {wake, t};

    for (;;) {
        ssize_t n = mempipe_poll_read(t->end, buf, sizeof buf, &w);
        if (n == -EAGAIN)
            return 0; /* empty: w is stored; the producer's write calls it */
        if (n <= 0) { /* 0 is EOF: every byte before it has been read */
            printf("  consumer: read -> %zd (%s)\n", n,
                   n == 0 ? "EOF" : mempipe_strerror((int)n));
            t->bad |= t->done != TOTAL;
            return 1;
        }
        for (ssize_t i = 0; i < n; i++)
            t->bad |= buf[i] != pattern(t->done + (size_t)i);
        t->done += (size_t)n;
    }
}

static int part2_poll(void)
{
    mempipe *a, *b;
    int rc = mempipe_duplex(PIPE, &a, &b);
    if (rc < 0) {
        printf("mempipe_duplex: %s\n", mempipe_strerror(rc));
        return 1;
    }
    struct task tasks[2] = {
        {.name = "producer", .poll = producer, .end = a},
        {.name = "consumer", .poll = consumer, .end = b},
    };
    push(&tasks[0]);
    push(&tasks[1]);

    /* The event loop: pop a task, poll it, until nobody is runnable. */
    int polls = 0;
    while (q_len > 0) {
        struct task *t = queue[q_head];
        q_head = (q_head + 1) % 2;
        q_len--;
        t->queued = 0;
        polls++;
        t->finished = t->poll(t);
    }

    int ok = 1;
    for (int i = 0; i < 2; i++) {
        struct task *t = &tasks[i];
        printf("  %s: %zu bytes, woken %d times, %s\n", t->name, t->done,
               t->woken, t->finished ? "finished" : "STUCK");
        ok &= t->finished && !t->bad && t->done == TOTAL;
    }
    printf("  %d polls in all; data %s\n", polls,
           tasks[1].bad ? "CORRUPT" : "checked, every byte in order");
    mempipe_close(a);
    mempipe_close(b);
    return ok ? 0 : 1;
}

int main(void)
{
    printf("mempipe %s\n\npart 1: two threads, blocking calls\n",
           mempipe_version());
    int bad = part1_threads();
    printf("\npart 2: one thread, poll API, %d bytes through a %d-byte pipe\n",
           TOTAL, PIPE);
    bad |= part2_poll();
    printf("\n%s\n", bad ? "demo FAILED" : "demo OK");
    return bad;
}
