/* SPDX-License-Identifier: MIT */
/*
 * The nghttp2 pump (include/mempipe/nghttp2.h): a real HTTP/2 client and
 * server session, 100 concurrent streams each uploading a 64 KiB request
 * body and getting a 64 KiB response body back (every byte checked), then a
 * clean GOAWAY and close started by either side; and a peer that vanishes
 * mid-stream. Over one duplex at capacities 1, 7, 4096, 65536 and SIZE_MAX,
 * and over a socketpair(2) with a small socket pump written here (the
 * reference: the same outcome is required of both). Each runs on one
 * thread driven by wakers only (a side runs only when its waker fired, so
 * a lost wake-up stalls and fails) and with one blocking thread per side.
 * Then the pump's own contract: argument errors, nghttp2's errors, the
 * pipe's errors, pending output, faults and the budget.
 */
#include "kinds.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "mempipe/nghttp2.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/*
 * How slow the build runs: 0 natively, 1 under the sanitizers (about 1 s
 * per 64 KiB exchange there, for the byte checks), 2 under valgrind
 * (serialised threads, 20 to 50 times slower). Bodies shrink with it.
 */
static int slow(void)
{
    return RUNNING_ON_VALGRIND ? 2 : SANITIZED;
}

/* 100 streams with 64 KiB bodies each way; 16 KiB, 4 KiB when slow. */
#define NSTREAMS 100
#define BODY     (64u * 1024 >> (2 * slow()))

static const size_t caps[] = {1, 7, 4096, 65536, SIZE_MAX};

/*
 * Bytes per body at capacity cap: BODY, but tiny pipes move a few bytes
 * per wake-up (about 7 us a byte at capacity 1 with two threads), so below
 * 64 bytes of capacity a body is cap KiB (1 KiB at 1, 7 KiB at 7; a
 * quarter of that under the sanitizers, a sixteenth under valgrind), still
 * with 100 streams. MEMPIPE_NGHTTP2_FULL=1 runs 64 KiB at every capacity
 * (about 10 s at capacity 1 on one thread, 80 s on two).
 */
static size_t body_for(size_t cap)
{
    if (getenv("MEMPIPE_NGHTTP2_FULL") != NULL)
        return 64u * 1024;
    if (cap == 0 || cap >= 64)
        return BODY;
    return cap * (1024u >> (2 * slow()));
}
#define NCAPS      (sizeof caps / sizeof caps[0])
#define SOCKETPAIR 0 /* cap 0: the socketpair reference */

/* ------------------------------------------------------------------------ */
/* The application: a client uploading N bodies, a server answering each    */
/* ------------------------------------------------------------------------ */

struct stream {
    size_t sent, recvd;
    int bad; /* a byte differed from the pattern */
};

struct side {
    const char *who;
    nghttp2_session *s;
    int server;
    int n;       /* streams */
    size_t body; /* bytes each way per stream */
    struct stream st[NSTREAMS];
    int completed;  /* streams closed cleanly with every byte both ways */
    int failed;     /* streams closed otherwise */
    int goaway;     /* a GOAWAY was received */
    int close_done; /* terminate the session once n streams completed */
    int fast;       /* bodies are zeros, unchecked (the throughput runs) */
    int ping;       /* answer a GOAWAY with a PING (output for a gone peer) */
    int pause;      /* every data chunk returns NGHTTP2_ERR_PAUSE */
    long fail_at;   /* the body reader fails after this many bytes; -1 */
    size_t body_sent;
    /* transport: a mempipe end, or a socket (the reference) */
    mempipe *end;
    int fd;
    mempipe_waker waker;
    atomic_int woken;
    const uint8_t *tail; /* the socket pump's waiting output */
    size_t len;
    int in_wait;
    /* outcome */
    int done, rc, ngerr;
};

static uint64_t seed_of(int idx, int response)
{
    return (uint64_t)idx + (response ? 1000 : 1);
}

/* The stream's state and index (client streams 1, 3, 5, ...), or NULL. */
static struct stream *stream_of(struct side *sd, int32_t stream_id, int *idx)
{
    *idx = (stream_id - 1) / 2;
    if (stream_id <= 0 || !(stream_id & 1) || *idx >= sd->n)
        return NULL;
    return &sd->st[*idx];
}

static ssize_t read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf,
                         size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
    (void)s;
    (void)src;
    struct side *sd = user;
    int idx;
    struct stream *st = stream_of(sd, stream_id, &idx);
    if (st == NULL)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    size_t n = sd->body - st->sent;
    if (n > length)
        n = length;
    if (sd->fail_at >= 0 && sd->body_sent + n > (size_t)sd->fail_at)
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* the side breaks down */
    if (sd->fast)
        memset(buf, 0, n);
    else
        tu_pattern(buf, n, st->sent, seed_of(idx, sd->server));
    st->sent += n;
    sd->body_sent += n;
    if (st->sent == sd->body)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int on_chunk(nghttp2_session *s, uint8_t flags, int32_t stream_id,
                    const uint8_t *data, size_t len, void *user)
{
    (void)s;
    (void)flags;
    struct side *sd = user;
    int idx;
    struct stream *st = stream_of(sd, stream_id, &idx);
    if (st == NULL)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (st->recvd + len > sd->body ||
        (!sd->fast && tu_check_pattern(data, len, st->recvd,
                                       seed_of(idx, !sd->server)) != -1))
        st->bad = 1;
    st->recvd += len;
    atomic_fetch_add(&tu_progress, 1);
    return sd->pause ? NGHTTP2_ERR_PAUSE : 0;
}

#define NV(name, value)                                                        \
    {                                                                          \
        (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1,               \
            sizeof(value) - 1, NGHTTP2_NV_FLAG_NONE                            \
    }

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    struct side *sd = user;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        sd->goaway = 1;
        if (sd->ping && nghttp2_submit_ping(s, 0, NULL) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (!sd->server || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        (f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS))
        return 0;
    /* The request is complete: answer it with the response body. */
    nghttp2_nv nv[] = {NV(":status", "200")};
    nghttp2_data_provider prd = {{0}, read_body};
    return nghttp2_submit_response(s, f->hd.stream_id, nv, 1, &prd);
}

static int on_close(nghttp2_session *s, int32_t stream_id, uint32_t code,
                    void *user)
{
    struct side *sd = user;
    int idx;
    struct stream *st = stream_of(sd, stream_id, &idx);
    if (st == NULL)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (code == NGHTTP2_NO_ERROR && !st->bad && st->sent == sd->body &&
        st->recvd == sd->body)
        sd->completed++;
    else
        sd->failed++;
    if (sd->completed == sd->n && sd->close_done)
        return nghttp2_session_terminate_session(s, NGHTTP2_NO_ERROR);
    return 0;
}

static void on_wake(void *ctx)
{
    struct side *sd = ctx;
    atomic_store(&sd->woken, 1);
}

static void side_init(struct side *sd, int server, int n, size_t body)
{
    memset(sd, 0, sizeof *sd);
    sd->who = server ? "server" : "client";
    sd->server = server;
    sd->n = n;
    sd->body = body;
    sd->fail_at = -1;
    sd->fd = -1;
    sd->waker.wake = on_wake;
    sd->waker.ctx = sd;
    atomic_init(&sd->woken, 1);
    nghttp2_session_callbacks *cb;
    assert_int_equal(0, nghttp2_session_callbacks_new(&cb));
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    if (server) {
        assert_int_equal(0, nghttp2_session_server_new(&sd->s, cb, sd));
        nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
                                     NSTREAMS};
        assert_int_equal(0, nghttp2_submit_settings(sd->s, 0, &iv, 1));
    } else {
        assert_int_equal(0, nghttp2_session_client_new(&sd->s, cb, sd));
        assert_int_equal(0, nghttp2_submit_settings(sd->s, 0, NULL, 0));
        nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "http"),
                           NV(":authority", "mempipe"), NV(":path", "/up")};
        nghttp2_data_provider prd = {{0}, read_body};
        for (int i = 0; i < n; i++)
            assert_int_equal(2 * i + 1,
                             nghttp2_submit_request(sd->s, NULL, nv, 4,
                                                    body ? &prd : NULL, NULL));
    }
    nghttp2_session_callbacks_del(cb);
}

static void side_free(struct side *sd)
{
    if (sd->s != NULL) {
        assert_rc(0, mempipe_nghttp2_release(sd->s));
        nghttp2_session_del(sd->s);
        sd->s = NULL;
    }
    mempipe_close(sd->end);
    sd->end = NULL;
    if (sd->fd >= 0)
        close(sd->fd);
    sd->fd = -1;
}

/* ------------------------------------------------------------------------ */
/* The reference: the same pump over a non-blocking socket                   */
/* ------------------------------------------------------------------------ */

/* One direction of the socket, in the pump's terms: n, 0 (EOF), -errno. */
static ssize_t sock_io(int fd, void *buf, size_t len, int out)
{
    ssize_t n = out ? send(fd, buf, len, MSG_NOSIGNAL) : read(fd, buf, len);
    if (n >= 0)
        return n;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/*
 * What mempipe_nghttp2_pump() does, written for a socket the way an nghttp2
 * socket loop is: rounds of output (the waiting tail first) and one chunk
 * of input until a round moves nothing; EOF while wanting to read, -EPIPE;
 * writing refused, output dropped and the input drained first.
 */
static int sock_pump(struct side *sd)
{
    int dead = 0;
    for (;;) {
        int moved = 0;
        sd->in_wait = 0;
        while (!dead) {
            while (sd->len > 0) {
                ssize_t n = sock_io(sd->fd, (void *)sd->tail, sd->len, 1);
                if (n == -EAGAIN)
                    break;
                if (n == -EPIPE || n == -ECONNRESET) {
                    dead = 1;
                    sd->len = 0;
                    break;
                }
                if (n < 0)
                    return (int)n;
                sd->tail += n;
                sd->len -= (size_t)n;
                moved = 1;
            }
            if (sd->len > 0 || dead || !nghttp2_session_want_write(sd->s))
                break;
            ssize_t n = nghttp2_session_mem_send(sd->s, &sd->tail);
            if (n < 0) {
                sd->ngerr = (int)n;
                return n == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
            }
            if (n == 0)
                break;
            sd->len = (size_t)n;
            moved = 1;
        }
        if (nghttp2_session_want_read(sd->s)) {
            uint8_t buf[32768];
            ssize_t n = sock_io(sd->fd, buf, sizeof buf, 0);
            if (n == 0) {
                sd->ngerr = NGHTTP2_ERR_EOF;
                return -EPIPE;
            }
            if (n == -EAGAIN) {
                sd->in_wait = 1;
            } else if (n < 0) {
                return (int)n;
            } else {
                ssize_t r = nghttp2_session_mem_recv(sd->s, buf, (size_t)n);
                if (r != n) {
                    sd->ngerr = (int)r;
                    return r == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
                }
                moved = 1;
            }
        }
        if (!moved)
            break;
    }
    if (dead)
        return nghttp2_session_want_read(sd->s) ? -EPIPE : 0;
    return sd->len > 0 || sd->in_wait ? -EAGAIN : 0;
}

static short sock_events(const struct side *sd)
{
    return (short)((sd->in_wait ? POLLIN : 0) | (sd->len > 0 ? POLLOUT : 0));
}

/* ------------------------------------------------------------------------ */
/* A link: two sides over a mempipe duplex or a socketpair                   */
/* ------------------------------------------------------------------------ */

struct link {
    size_t cap;
    struct side c, s;
    /* a side that ends (0 or an error) closes its end or socket; first: */
    int drain;       /* ... it reads what it was sent (no reset) */
    int rst;         /* ... a mempipe end resets if bytes stay unread */
    unsigned budget; /* threads: each sets this budget first (0: none) */
    unsigned budget_after[2]; /* mempipe_budget_left() after the pump */
    double sec;               /* the exchange's time */
};

static const char *kind(const struct link *l)
{
    static char buf[48];
    if (l->cap == SOCKETPAIR)
        return "socketpair";
    snprintf(buf, sizeof buf, "mempipe cap %zu", l->cap);
    return buf;
}

static void link_open(struct link *l, size_t cap, int n, size_t body)
{
    memset(l, 0, sizeof *l);
    l->cap = cap;
    side_init(&l->c, 0, n, body);
    side_init(&l->s, 1, n, body);
    if (cap != SOCKETPAIR) {
        assert_rc(0, mempipe_duplex(cap, &l->c.end, &l->s.end));
    } else {
        int fd[2];
        assert_int_equal(0, socketpair(AF_UNIX, SOCK_STREAM, 0, fd));
        l->c.fd = fd[0];
        l->s.fd = fd[1];
    }
}

static void link_close(struct link *l)
{
    side_free(&l->c);
    side_free(&l->s);
}

/* Takes every byte the peer sent so far (so that a close resets nothing). */
static void drain(struct side *sd)
{
    char buf[4096];
    if (sd->end != NULL)
        while (mempipe_poll_read(sd->end, buf, sizeof buf, NULL) > 0)
            ;
    else
        while (read(sd->fd, buf, sizeof buf) > 0)
            ;
}

/* A side's pump returned rc (not -EAGAIN): it is done; close its transport. */
static void side_end(struct link *l, struct side *sd, int rc, int ngerr)
{
    sd->done = 1;
    sd->rc = rc;
    sd->ngerr = ngerr;
    if (l->drain)
        drain(sd);
    if (sd->end != NULL) {
        if (l->rst)
            assert_rc(0, mempipe_set_rst_on_unread(sd->end, 1));
        mempipe_close(sd->end);
        sd->end = NULL;
    } else {
        close(sd->fd);
        sd->fd = -1;
    }
}

/* Runs a side once, in the one-thread loop. */
static void step(struct link *l, struct side *sd)
{
    int rc;
    atomic_store(&sd->woken, 0);
    if (sd->end != NULL) {
        rc = mempipe_nghttp2_pump(sd->s, sd->end, &sd->waker);
        if (rc == -EAGAIN)
            return;
        /* Done or failed: no output is kept for it. */
        assert_int_equal(0, mempipe_nghttp2_pending(sd->s));
        side_end(l, sd, rc, mempipe_nghttp2_error());
    } else {
        rc = sock_pump(sd);
        if (rc == -EAGAIN)
            return;
        side_end(l, sd, rc, sd->ngerr);
    }
}

static int runnable(struct side *sd)
{
    if (sd->done)
        return 0;
    if (atomic_load(&sd->woken))
        return 1;
    if (sd->fd < 0)
        return 0; /* a mempipe side runs only when its waker fired */
    struct pollfd p = {sd->fd, sock_events(sd), 0};
    return poll(&p, 1, 0) > 0;
}

/*
 * One thread: runs whichever side is runnable until none is. A mempipe
 * side is runnable only when its waker fired, so a lost wake-up ends the
 * loop with a side not done: the caller's check fails.
 */
static void run_stepped(struct link *l)
{
    double t0 = tu_now();
    for (;;) {
        int ran = 0;
        if (runnable(&l->c)) {
            step(l, &l->c);
            ran = 1;
        }
        if (runnable(&l->s)) {
            step(l, &l->s);
            ran = 1;
        }
        if (!ran)
            break;
    }
    l->sec = tu_now() - t0;
    if (!l->c.done || !l->s.done)
        fail_msg("%s: stalled: client %s, server %s; %d/%d streams done",
                 kind(l), l->c.done ? "done" : "waiting",
                 l->s.done ? "done" : "waiting", l->c.completed, l->c.n);
}

/* One blocking thread per side. */
static void *side_thread(void *arg)
{
    struct link *l = ((void **)arg)[0];
    struct side *sd = ((void **)arg)[1];
    int rc;
    mempipe_budget_set(l->budget);
    if (sd->end != NULL) {
        rc = mempipe_nghttp2_pump(sd->s, sd->end, NULL);
        sd->ngerr = mempipe_nghttp2_error();
        l->budget_after[sd->server] = mempipe_budget_left();
    } else {
        while ((rc = sock_pump(sd)) == -EAGAIN) {
            struct pollfd p = {sd->fd, sock_events(sd), 0};
            poll(&p, 1, -1);
        }
    }
    mempipe_budget_set(0);
    sd->done = 1;
    sd->rc = rc;
    /* Closing as side_end() does, without its cmocka assertions. */
    if (l->drain)
        drain(sd);
    if (sd->end != NULL) {
        mempipe_close(sd->end);
        sd->end = NULL;
    } else {
        close(sd->fd);
        sd->fd = -1;
    }
    return NULL;
}

static void run_threads(struct link *l)
{
    if (l->s.fd >= 0) {
        fcntl(l->s.fd, F_SETFL, O_NONBLOCK);
        fcntl(l->c.fd, F_SETFL, O_NONBLOCK);
    }
    void *cargs[2] = {l, &l->c}, *sargs[2] = {l, &l->s};
    pthread_t ct, st;
    double t0 = tu_now();
    assert_int_equal(0, pthread_create(&st, NULL, side_thread, sargs));
    assert_int_equal(0, pthread_create(&ct, NULL, side_thread, cargs));
    pthread_join(ct, NULL);
    pthread_join(st, NULL);
    l->sec = tu_now() - t0;
}

static void run_link(struct link *l, int threads)
{
    if (threads) {
        run_threads(l);
        return;
    }
    if (l->s.fd >= 0) {
        fcntl(l->s.fd, F_SETFL, O_NONBLOCK);
        fcntl(l->c.fd, F_SETFL, O_NONBLOCK);
    }
    run_stepped(l);
}

/* ------------------------------------------------------------------------ */
/* The exchange, clean GOAWAY both ways                                      */
/* ------------------------------------------------------------------------ */

/* What the application saw: compared between mempipe and the socketpair. */
struct outcome {
    int rc[2], ngerr[2], completed[2], failed[2], goaway[2];
};

static struct outcome outcome_of(const struct link *l)
{
    struct outcome o = {{l->c.rc, l->s.rc},
                        {l->c.ngerr, l->s.ngerr},
                        {l->c.completed, l->s.completed},
                        {l->c.failed, l->s.failed},
                        {l->c.goaway, l->s.goaway}};
    return o;
}

static void assert_same(const struct outcome *want, const struct outcome *got,
                        const char *what)
{
    for (int i = 0; i < 2; i++) {
        const char *who = i ? "server" : "client";
        if (want->rc[i] != got->rc[i] || want->ngerr[i] != got->ngerr[i] ||
            want->completed[i] != got->completed[i] ||
            want->failed[i] != got->failed[i] ||
            want->goaway[i] != got->goaway[i])
            fail_msg("%s: %s: want rc %d (%s) ngerr %d, %d streams done, %d "
                     "failed, goaway %d; got rc %d (%s) ngerr %d, %d done, %d "
                     "failed, goaway %d",
                     what, who, want->rc[i], mempipe_strerror(want->rc[i]),
                     want->ngerr[i], want->completed[i], want->failed[i],
                     want->goaway[i], got->rc[i], mempipe_strerror(got->rc[i]),
                     got->ngerr[i], got->completed[i], got->failed[i],
                     got->goaway[i]);
    }
}

static double mbs(const struct link *l)
{
    return 2.0 * l->c.n * (double)l->c.body / l->sec / 1e6;
}

/*
 * 100 streams, 64 KiB each way, then the GOAWAY of `closer`: 0 the client,
 * 1 the server, 2 the server with a client that answers it with a PING
 * (which meets the server's close: writing is refused, the input drained,
 * and the session ends cleanly all the same).
 */
static struct outcome exchange(size_t cap, int threads, int closer)
{
    struct link l;
    link_open(&l, cap, NSTREAMS, body_for(cap));
    (closer ? &l.s : &l.c)->close_done = 1;
    l.c.ping = closer == 2;
    run_link(&l, threads);
    struct outcome o = outcome_of(&l);
    printf("# %s, %s, GOAWAY by the %s%s: %d x %zu bytes each way, %.3f s, "
           "%.1f MB/s\n",
           kind(&l), threads ? "two threads" : "one thread",
           closer ? "server" : "client", closer == 2 ? ", PING back" : "",
           l.c.n, l.c.body, l.sec, mbs(&l));
    link_close(&l);
    return o;
}

static void clean_exchanges(int threads)
{
    for (int closer = 0; closer < 3; closer++) {
        struct outcome ref = exchange(SOCKETPAIR, threads, closer);
        /* Both sessions end with 0, every stream complete, and the side
         * that did not start the close got the GOAWAY. */
        struct outcome want = {
            {0, 0}, {0, 0}, {NSTREAMS, NSTREAMS}, {0, 0}, {!!closer, !closer}};
        assert_same(&want, &ref, "socketpair");
        for (size_t i = 0; i < NCAPS; i++) {
            char what[64];
            snprintf(what, sizeof what, "mempipe cap %zu", caps[i]);
            struct outcome o = exchange(caps[i], threads, closer);
            assert_same(&ref, &o, what);
        }
    }
}

static void test_100_streams_64KiB_goaway_one_thread_wakers(void **state)
{
    (void)state;
    tu_watchdog_start("nghttp2 one-thread exchange");
    clean_exchanges(0);
    tu_watchdog_end();
}

static void test_100_streams_64KiB_goaway_two_threads_blocking(void **state)
{
    (void)state;
    tu_watchdog_start("nghttp2 two-thread exchange");
    clean_exchanges(1);
    tu_watchdog_end();
}

/* ------------------------------------------------------------------------ */
/* A peer that vanishes mid-stream                                           */
/* ------------------------------------------------------------------------ */

static size_t received(const struct side *sd)
{
    size_t n = 0;
    for (int i = 0; i < sd->n; i++)
        n += sd->st[i].recvd;
    return n;
}

static size_t unread(const struct side *sd)
{
    if (sd->end != NULL)
        return mempipe_readable(sd->end);
    int n = 0;
    assert_int_equal(0, ioctl(sd->fd, FIONREAD, &n));
    return (size_t)n;
}

/*
 * One thread. Both sides run until the survivor has half of what it is
 * sent; then the survivor alone, after a PING, until it waits (its output,
 * unread, piles up at the victim); then the victim vanishes: with rst, closing
 * with those bytes unread (a socket resets; a mempipe end with rst_on_unread
 * too), else after reading them (end of file, no reset). The survivor must then
 * fail, at once, not hang. Returns its outcome.
 */
static struct outcome vanish(size_t cap, int victim_is_server, int rst)
{
    struct link l;
    link_open(&l, cap, NSTREAMS, body_for(cap));
    if (cap == SOCKETPAIR) {
        fcntl(l.s.fd, F_SETFL, O_NONBLOCK);
        fcntl(l.c.fd, F_SETFL, O_NONBLOCK);
    }
    struct side *v = victim_is_server ? &l.s : &l.c;
    struct side *sv = victim_is_server ? &l.c : &l.s;
    size_t half = (size_t)sv->n * sv->body / 2;
    while (received(sv) < half) {
        int ran = 0;
        if (runnable(sv)) {
            step(&l, sv);
            ran = 1;
        }
        if (runnable(v)) {
            step(&l, v);
            ran = 1;
        }
        if (!ran || v->done || sv->done)
            fail_msg("%s: stalled or ended before half way", kind(&l));
    }
    /* The survivor pings, and runs until it waits: the victim has unread
     * bytes (at least the PING's first). */
    assert_int_equal(0, nghttp2_submit_ping(sv->s, 0, NULL));
    atomic_store(&sv->woken, 1);
    while (runnable(sv))
        step(&l, sv);
    assert_false(sv->done);
    if (rst)
        assert_true(unread(v) > 0); /* or there would be no reset */
    l.drain = !rst;
    l.rst = rst;
    side_end(&l, v, 0, 0);
    while (runnable(sv))
        step(&l, sv);
    if (!sv->done)
        fail_msg("%s: the %s hangs after its peer vanished", kind(&l), sv->who);
    assert_true(sv->completed < sv->n);
    struct outcome o = {{sv->rc, 0}, {sv->ngerr, 0}, {0, 0}, {0, 0}, {0, 0}};
    printf("# %s: %s gone%s: the %s got %d (%s) after %d streams\n", kind(&l),
           v->who, rst ? " with bytes unread" : "", sv->who, sv->rc,
           mempipe_strerror(sv->rc), sv->completed);
    link_close(&l);
    return o;
}

static void test_peer_gone_mid_stream_same_error_as_socketpair(void **state)
{
    (void)state;
    tu_watchdog_start("nghttp2 peer gone");
    for (int victim = 0; victim < 2; victim++) {
        for (int rst = 0; rst < 2; rst++) {
            struct outcome ref = vanish(SOCKETPAIR, victim, rst);
            assert_rc(rst ? -ECONNRESET : -EPIPE, ref.rc[0]);
            assert_int_equal(rst ? 0 : NGHTTP2_ERR_EOF, ref.ngerr[0]);
            for (size_t i = 0; i < NCAPS; i++) {
                struct outcome o = vanish(caps[i], victim, rst);
                assert_same(&ref, &o, "mempipe peer gone");
            }
        }
    }
    tu_watchdog_end();
}

/*
 * Two blocking threads: the victim's body reader fails half way (its pump
 * returns -EPROTO, NGHTTP2_ERR_CALLBACK_FAILURE) and its thread closes its
 * end at once; the survivor, blocked in its pump, must wake and fail.
 */
static void test_peer_gone_mid_stream_blocking_survivor_wakes(void **state)
{
    (void)state;
    tu_watchdog_start("nghttp2 blocking peer gone");
    for (int victim = 0; victim < 2; victim++) {
        for (size_t i = 0; i <= NCAPS; i++) {
            size_t cap = i < NCAPS ? caps[i] : SOCKETPAIR;
            struct link l;
            link_open(&l, cap, NSTREAMS, body_for(cap));
            struct side *v = victim ? &l.s : &l.c;
            struct side *sv = victim ? &l.c : &l.s;
            v->fail_at = (long)((size_t)v->n * v->body / 2);
            run_threads(&l);
            assert_rc(-EPROTO, v->rc);
            assert_int_equal(NGHTTP2_ERR_CALLBACK_FAILURE, v->ngerr);
            /* A socket closed with bytes unread resets; a mempipe end does
             * not (SPEC R9): its peer reads end of file. */
            if (sv->rc != -EPIPE &&
                (cap != SOCKETPAIR || sv->rc != -ECONNRESET))
                fail_msg("%s: the %s got %d (%s)", kind(&l), sv->who, sv->rc,
                         mempipe_strerror(sv->rc));
            /* End of file, or writing refused and no end of file yet: the
             * peer's close refuses writes before it ends the reading. */
            if (sv->rc == -EPIPE && sv->ngerr != NGHTTP2_ERR_EOF)
                assert_int_equal(0, sv->ngerr);
            assert_true(sv->completed < sv->n);
            link_close(&l);
        }
    }
    tu_watchdog_end();
}

/* ------------------------------------------------------------------------ */
/* The pump's own contract                                                   */
/* ------------------------------------------------------------------------ */

/*
 * One session (a client with one GET, or a server) on an end `sd.end`
 * whose peer `peer` the test plays by hand, and a counting waker.
 */
struct lone {
    struct side sd;
    mempipe *peer;
    struct tu_counter cnt;
    mempipe_waker wk;
};

static void lone_open(struct lone *x, int server, size_t cap)
{
    side_init(&x->sd, server, 1, 0);
    assert_rc(0, mempipe_duplex(cap, &x->sd.end, &x->peer));
    atomic_init(&x->cnt.calls, 0);
    x->wk = tu_counter_waker(&x->cnt);
}

static void lone_close(struct lone *x)
{
    side_free(&x->sd);
    mempipe_close(x->peer);
}

static void test_argument_errors_change_nothing(void **state)
{
    (void)state;
    struct lone x;
    lone_open(&x, 0, 64);
    nghttp2_session *s = x.sd.s;
    mempipe *a = x.sd.end, *r, *w;
    assert_rc(0, mempipe_simplex(64, &r, &w));
    mempipe_waker nowake = {NULL, &x.cnt};
    assert_rc(-EINVAL, mempipe_nghttp2_pump(NULL, a, &x.wk));
    assert_rc(-EINVAL, mempipe_nghttp2_pump(NULL, a, NULL));
    assert_rc(-EINVAL, mempipe_nghttp2_pump(s, NULL, &x.wk));
    assert_rc(-EINVAL, mempipe_nghttp2_pump(s, NULL, NULL));
    assert_rc(-EINVAL, mempipe_nghttp2_pump(s, a, &nowake));
    assert_rc(-EBADF, mempipe_nghttp2_pump(s, r, &x.wk)); /* cannot write */
    assert_rc(-EBADF, mempipe_nghttp2_pump(s, w, &x.wk)); /* cannot read */
    assert_rc(-EBADF, mempipe_nghttp2_pump(s, r, NULL));
    assert_rc(-EBADF, mempipe_nghttp2_pump(s, w, NULL));
    assert_int_equal(0, mempipe_nghttp2_error());
    /* Nothing was serialized, written or stored. */
    assert_int_equal(0, mempipe_readable(x.peer));
    assert_int_equal(0, mempipe_readable(r));
    assert_true(nghttp2_session_want_write(s));
    assert_int_equal(0, mempipe_nghttp2_pending(s));
    assert_int_equal(0, tu_calls(&x.cnt));
    char desc[160];
    assert_true(mempipe_describe(a, desc, sizeof desc) > 0);
    assert_null(strstr(desc, "wakers=r")); /* no waker stored either way */
    assert_null(strstr(desc, "wakers=-w"));
    assert_rc(-EINVAL, mempipe_nghttp2_release(NULL));
    assert_int_equal(0, mempipe_nghttp2_pending(NULL));
    assert_rc(0, mempipe_nghttp2_release(s)); /* nothing waits: harmless */
    /* The same session then works. */
    assert_rc(-EAGAIN, mempipe_nghttp2_pump(s, a, &x.wk));
    assert_true(mempipe_readable(x.peer) > 0);
    lone_close(&x);
    mempipe_close(r);
    mempipe_close(w);
}

/* The client's first bytes: the connection preface. */
static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static void test_pending_output_kept_across_calls_and_released(void **state)
{
    (void)state;
    struct lone x;
    lone_open(&x, 0, 7);
    nghttp2_session *s = x.sd.s;
    mempipe *other, *other_peer;
    assert_rc(0, mempipe_duplex(64, &other, &other_peer));
    /* The preface (24 bytes) and more, 7 bytes at a time. */
    assert_rc(-EAGAIN, mempipe_nghttp2_pump(s, x.sd.end, &x.wk));
    size_t pend = mempipe_nghttp2_pending(s);
    assert_true(pend >= sizeof preface - 1 - 7);
    assert_int_equal(7, mempipe_readable(x.peer));
    /* Its output waits for its end; another is refused, nothing changes. */
    assert_rc(-EINVAL, mempipe_nghttp2_pump(s, other, &x.wk));
    assert_rc(-EINVAL, mempipe_nghttp2_pump(s, other, NULL));
    assert_int_equal(pend, mempipe_nghttp2_pending(s));
    assert_int_equal(0, mempipe_readable(other_peer));
    /* Reading fires the waker (stored on the full pipe); each pump goes on
     * where the last stopped: the bytes arrive in order. */
    char got[64];
    size_t have = 0;
    while (have < sizeof preface - 1) {
        ssize_t n =
            mempipe_poll_read(x.peer, got + have, sizeof got - have, NULL);
        assert_true(n > 0);
        have += (size_t)n;
        assert_int_equal(1, tu_calls(&x.cnt));
        atomic_store(&x.cnt.calls, 0);
        assert_rc(-EAGAIN, mempipe_nghttp2_pump(s, x.sd.end, &x.wk));
    }
    assert_memory_equal(preface, got, sizeof preface - 1);
    assert_true(mempipe_nghttp2_pending(s) > 0);
    /* Released: forgotten; the session may be deleted. */
    assert_rc(0, mempipe_nghttp2_release(s));
    assert_int_equal(0, mempipe_nghttp2_pending(s));
    lone_close(&x);
    mempipe_close(other);
    mempipe_close(other_peer);
}

static void test_nghttp2_errors_are_EPROTO_with_the_code(void **state)
{
    (void)state;
    /* A server fed an HTTP/1.1 request where the preface should be. */
    struct lone r;
    lone_open(&r, 1, 4096);
    static const char http1[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_rc(sizeof http1 - 1,
              mempipe_poll_write(r.peer, http1, sizeof http1 - 1, NULL));
    assert_rc(-EPROTO, mempipe_nghttp2_pump(r.sd.s, r.sd.end, &r.wk));
    assert_int_equal(NGHTTP2_ERR_BAD_CLIENT_MAGIC, mempipe_nghttp2_error());
    assert_int_equal(0, mempipe_nghttp2_pending(r.sd.s));
    assert_string_not_equal(mempipe_strerror(-EPROTO),
                            mempipe_strerror(-123456));
    /* The next call's outcome replaces the code. */
    assert_rc(-EINVAL, mempipe_nghttp2_pump(NULL, r.sd.end, &r.wk));
    assert_int_equal(0, mempipe_nghttp2_error());
    lone_close(&r);

    /* A callback that fails: the client's body reader. */
    struct link l;
    link_open(&l, 65536, 1, 100);
    l.c.fail_at = 0;
    assert_rc(-EPROTO, mempipe_nghttp2_pump(l.c.s, l.c.end, &l.c.waker));
    assert_int_equal(NGHTTP2_ERR_CALLBACK_FAILURE, mempipe_nghttp2_error());
    assert_int_equal(0, mempipe_nghttp2_pending(l.c.s));
    link_close(&l);
}

/*
 * A client that sends PINGs and never reads the answers: the server's
 * output fills the pipe and waits, yet the server goes on reading (so two
 * peers writing into full pipes cannot deadlock), until nghttp2 sees the
 * flood of unanswered acks: -EPROTO, NGHTTP2_ERR_FLOODED.
 */
static void test_reads_while_output_waits_until_flooded(void **state)
{
    (void)state;
    struct lone r;
    lone_open(&r, 1, 4096);
    unsigned char buf[sizeof preface - 1 + 9 + 17];
    memcpy(buf, preface, sizeof preface - 1);
    /* An empty SETTINGS frame, then PINGs: length 8, type 6, stream 0. */
    static const unsigned char settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    static const unsigned char ping[17] = {0, 0, 8, 6, 0, 0, 0, 0, 0,
                                           1, 2, 3, 4, 5, 6, 7, 8};
    size_t len = sizeof preface - 1;
    memcpy(buf + len, settings, sizeof settings);
    len += sizeof settings;
    int rc = -EAGAIN, waited = 0;
    for (int pings = 0; pings < 100000 && rc == -EAGAIN; pings++) {
        memcpy(buf + len, ping, sizeof ping);
        len += sizeof ping;
        for (size_t off = 0; off < len && rc == -EAGAIN;) {
            ssize_t n = mempipe_poll_write(r.peer, buf + off, len - off, NULL);
            if (n > 0)
                off += (size_t)n;
            rc = mempipe_nghttp2_pump(r.sd.s, r.sd.end, &r.wk);
            if (mempipe_nghttp2_pending(r.sd.s) > 0)
                waited = 1;
        }
        len = 0;
    }
    assert_rc(-EPROTO, rc);
    assert_int_equal(NGHTTP2_ERR_FLOODED, mempipe_nghttp2_error());
    assert_true(waited);
    assert_int_equal(4096, mempipe_readable(r.peer)); /* full, never read */
    lone_close(&r);
}

/*
 * This end shut down while the session still has output and wants to read:
 * -EPIPE, with no nghttp2 code (not the peer's end of file).
 */
static void test_own_shutdown_is_EPIPE(void **state)
{
    (void)state;
    struct lone x;
    lone_open(&x, 0, 4096);
    assert_rc(0, mempipe_shutdown(x.sd.end));
    assert_rc(-EPIPE, mempipe_nghttp2_pump(x.sd.s, x.sd.end, &x.wk));
    assert_int_equal(0, mempipe_nghttp2_error());
    assert_int_equal(0, mempipe_nghttp2_pending(x.sd.s));
    assert_rc(-EPIPE, mempipe_nghttp2_pump(x.sd.s, x.sd.end, NULL));
    lone_close(&x);
}

/*
 * The pipe's memory running short: -ENOMEM with no nghttp2 code, the
 * output kept (pending), and once memory is back the exchange completes.
 * Under the counting allocator, which also checks that nothing leaks.
 */
static void test_pipe_ENOMEM_keeps_output_and_goes_on(void **state)
{
    (void)state;
    struct link l;
    link_open(&l, 65536, 4, 1000);
    l.c.close_done = 1;
    atomic_store(&tu_cnt.fail_at, atomic_load(&tu_cnt.calls) + 1);
    assert_rc(-ENOMEM, mempipe_nghttp2_pump(l.c.s, l.c.end, &l.c.waker));
    assert_int_equal(0, mempipe_nghttp2_error());
    size_t pend = mempipe_nghttp2_pending(l.c.s);
    assert_true(pend >= sizeof preface - 1);
    assert_rc(-ENOMEM, mempipe_nghttp2_pump(l.c.s, l.c.end, NULL));
    assert_int_equal(pend, mempipe_nghttp2_pending(l.c.s));
    atomic_store(&tu_cnt.fail_at, 0);
    run_stepped(&l); /* both sides' wakers start set */
    assert_rc(0, l.c.rc);
    assert_rc(0, l.s.rc);
    assert_int_equal(4, l.c.completed);
    assert_int_equal(4, l.s.completed);
    link_close(&l);
}

/* The end's own failures come through as they are. */
static void test_end_errors_pass_through(void **state)
{
    (void)state;
    struct link l;
    link_open(&l, 4096, 1, 100);
    mempipe_faults f = {0};
    f.fail_write_at = 2;
    f.fail_err = -EIO;
    assert_rc(0, mempipe_set_faults(l.c.end, &f));
    assert_rc(-EIO, mempipe_nghttp2_pump(l.c.s, l.c.end, &l.c.waker));
    assert_int_equal(0, mempipe_nghttp2_error());
    assert_int_equal(0, mempipe_nghttp2_pending(l.c.s));
    link_close(&l);

    /* The peer's mempipe_close_with_error() code. */
    link_open(&l, 4096, 1, 100);
    assert_rc(0, mempipe_close_with_error(l.s.end, -ETIMEDOUT));
    l.s.end = NULL;
    assert_rc(-ETIMEDOUT, mempipe_nghttp2_pump(l.c.s, l.c.end, NULL));
    link_close(&l);
}

/* Short reads and writes of every size, and spurious pendings, both ends. */
static void test_exchange_under_faults(void **state)
{
    (void)state;
    tu_watchdog_start("nghttp2 under faults");
    for (unsigned seed = 1; seed <= 3; seed++) {
        struct link l;
        link_open(&l, 4096, 20, 16384);
        l.c.close_done = 1;
        mempipe_faults f = {0};
        f.max_read = 1 + seed * 5;
        f.max_write = 3 * seed;
        f.chunk_seed = seed;
        f.pending_every = 3 + seed;
        assert_rc(0, mempipe_set_faults(l.c.end, &f));
        f.chunk_seed = seed + 100;
        assert_rc(0, mempipe_set_faults(l.s.end, &f));
        run_stepped(&l);
        struct outcome want = {{0, 0}, {0, 0}, {20, 20}, {0, 0}, {0, 1}};
        struct outcome o = outcome_of(&l);
        assert_same(&want, &o, "under faults");
        link_close(&l);
    }
    tu_watchdog_end();
}

/* A callback's NGHTTP2_ERR_PAUSE only splits the input: all is fed. */
static void test_callback_pause_only_splits_the_input(void **state)
{
    (void)state;
    for (int threads = 0; threads < 2; threads++) {
        struct link l;
        link_open(&l, 65536, 10, 16384);
        l.c.close_done = 1;
        l.c.pause = l.s.pause = 1;
        run_link(&l, threads);
        struct outcome want = {{0, 0}, {0, 0}, {10, 10}, {0, 0}, {0, 1}};
        struct outcome o = outcome_of(&l);
        assert_same(&want, &o, "paused chunks");
        link_close(&l);
    }
}

/*
 * The thread's budget: with a waker, a yield is -EAGAIN with the waker
 * called at once (the executor re-queues the task); blocking ignores it and
 * gives it back as it was.
 */
static void test_budget_yields_with_waker_blocking_ignores_it(void **state)
{
    (void)state;
    struct lone x;
    lone_open(&x, 0, 65536);
    mempipe_budget_set(1);
    assert_rc(-EAGAIN, mempipe_nghttp2_pump(x.sd.s, x.sd.end, &x.wk));
    assert_int_equal(1, tu_calls(&x.cnt)); /* called at once: the yield */
    assert_int_equal(0, mempipe_budget_left());
    mempipe_budget_set(0);
    lone_close(&x);

    struct link l;
    link_open(&l, 4096, 10, 4096);
    l.c.close_done = 1;
    l.budget = 1;
    run_threads(&l);
    assert_rc(0, l.c.rc);
    assert_rc(0, l.s.rc);
    assert_int_equal(10, l.c.completed);
    assert_int_equal(1, l.budget_after[0]);
    assert_int_equal(1, l.budget_after[1]);
    link_close(&l);
}

/* ------------------------------------------------------------------------ */
/* Throughput: 100 streams x 64 KiB each way, medians of 5 runs              */
/* ------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define RUNS 5 /* 1 when slow */

static double median_rate(size_t cap, int threads)
{
    double r[RUNS];
    int runs = slow() ? 1 : RUNS;
    for (int i = 0; i < runs; i++) {
        struct link l;
        link_open(&l, cap, NSTREAMS, BODY);
        l.c.fast = l.s.fast = 1;
        l.c.close_done = 1;
        run_link(&l, threads);
        assert_rc(0, l.c.rc);
        assert_rc(0, l.s.rc);
        assert_int_equal(NSTREAMS, l.c.completed);
        r[i] = mbs(&l);
        link_close(&l);
    }
    qsort(r, (size_t)runs, sizeof r[0], cmp_double);
    return r[runs / 2];
}

static void test_throughput_mempipe_vs_socketpair(void **state)
{
    (void)state;
    tu_watchdog_start("nghttp2 throughput");
    static const size_t bench_caps[] = {SOCKETPAIR, 65536, SIZE_MAX};
    for (int threads = 0; threads < 2; threads++) {
        for (size_t i = 0; i < 3; i++) {
            struct link k = {.cap = bench_caps[i]};
            printf("# throughput, %s, %s: %d streams x %u KiB each way, "
                   "median of %d: %.1f MB/s\n",
                   threads ? "two threads, blocking" : "one thread, wakers",
                   kind(&k), NSTREAMS, BODY / 1024, slow() ? 1 : RUNS,
                   median_rate(bench_caps[i], threads));
        }
    }
    tu_watchdog_end();
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN); /* the reference's close tests */
    /* MEMPIPE_TEST_FILTER=*throughput* runs one test (cmocka's filter). */
    const char *only = getenv("MEMPIPE_TEST_FILTER");
    if (only != NULL)
        cmocka_set_test_filter(only);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_100_streams_64KiB_goaway_one_thread_wakers),
        cmocka_unit_test(test_100_streams_64KiB_goaway_two_threads_blocking),
        cmocka_unit_test(test_peer_gone_mid_stream_same_error_as_socketpair),
        cmocka_unit_test(test_peer_gone_mid_stream_blocking_survivor_wakes),
        cmocka_unit_test(test_argument_errors_change_nothing),
        cmocka_unit_test(test_pending_output_kept_across_calls_and_released),
        cmocka_unit_test(test_nghttp2_errors_are_EPROTO_with_the_code),
        cmocka_unit_test(test_reads_while_output_waits_until_flooded),
        cmocka_unit_test(test_own_shutdown_is_EPIPE),
        cmocka_unit_test_setup_teardown(
            test_pipe_ENOMEM_keeps_output_and_goes_on, tu_alloc_setup,
            tu_alloc_teardown),
        cmocka_unit_test(test_end_errors_pass_through),
        cmocka_unit_test(test_exchange_under_faults),
        cmocka_unit_test(test_callback_pause_only_splits_the_input),
        cmocka_unit_test(test_budget_yields_with_waker_blocking_ignores_it),
        cmocka_unit_test(test_throughput_mempipe_vs_socketpair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
