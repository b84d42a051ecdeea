/* SPDX-License-Identifier: MIT */
/*
 * Bridges, differential (SPEC R80-R86): one scripted program of socket
 * operations run three times, and what each side observes compared step
 * by step:
 *
 *   plain    a socketpair(AF_UNIX, SOCK_STREAM): side A is s[0], side S
 *            is s[1];
 *   thread   side A is a mempipe end whose peer is bridged
 *            (mempipe_bridge_fd) to s[0] of a socketpair; side S is s[1];
 *   step     the same with a thread-less bridge (mempipe_bridge_new),
 *            stepped by the test until nothing can move.
 *
 * So side S is a real socket in every run, and side A is a socket in the
 * first and a mempipe end in the others: a bridge is right when A's code
 * cannot tell. The operations (all non-blocking): write n bytes (A:
 * mempipe_poll_write, S: send(MSG_DONTWAIT | MSG_NOSIGNAL)), read up to n
 * (looping until n bytes, or what stopped it: EOF, EAGAIN, an error),
 * shutdown of the writing side, close. Compared after every step: the
 * write's count or error, the read's byte count and what stopped it, and
 * each open side's state as poll(2) would tell it (the bytes waiting to be
 * read, POLLRDHUP, POLLHUP; for A in a bridged run mempipe_readable and
 * mempipe_shut_state). The bytes themselves are checked against each
 * direction's pattern.
 *
 * The bridge's thread moves bytes and shutdowns later than the kernel
 * does, so before each next step the thread run waits (up to 5 s) until
 * both sides' states are the plain run's; the step run steps its bridge
 * until no pollfd is ready, and is compared at once. Each script also says
 * what the socketpair gives, so that the plain run checks the script.
 *
 * Known differences, each listed on its step with the bridged result
 * instead (the state is compared as usual):
 *   - an end closed with bytes unread is an EOF to its peer (R9), where an
 *     AF_UNIX socket reports ECONNRESET once; and the bridge's socket had
 *     handed those bytes to the end, so its close is clean too;
 *   - a reset the bridge passes on is mempipe_close_with_error(-ECONNRESET)
 *     (R82, R37): every later read gets -ECONNRESET, where the socket
 *     reports it once and then EOF, and writes get -ECONNRESET where an
 *     AF_UNIX socket gives EPIPE.
 */
#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define A 0 /* a mempipe end in the bridged runs */
#define S 1 /* a socket in every run */

/* How a read stopped when it got fewer bytes than asked: EOF is 0. */
#define ALL 1 /* it got every byte it asked for */

enum kind { PLAIN, THREAD, STEP };
static const char *const kind_name[] = {"plain", "thread", "step"};

/* ---- scripts ----------------------------------------------------------- */

struct step {
    char op; /* 'w' write, 'r' read, 's' shutdown(SHUT_WR), 'c' close */
    int side;
    int n;     /* bytes to write, or to read at most */
    long rc;   /* the socketpair's: write's count or -errno; read's bytes */
    long stop; /* read: ALL, 0 (EOF) or -errno */
    /* A known difference: what the bridged runs get instead, and why. */
    const char *why;
    long brc, bstop;
};

#define W(sd, k, r)                                                            \
    {                                                                          \
        .op = 'w', .side = (sd), .n = (k), .rc = (r)                           \
    }
#define RD(sd, k, r, end)                                                      \
    {                                                                          \
        .op = 'r', .side = (sd), .n = (k), .rc = (r), .stop = (end)            \
    }
#define SHUT(sd)                                                               \
    {                                                                          \
        .op = 's', .side = (sd)                                                \
    }
#define CLOSE(sd)                                                              \
    {                                                                          \
        .op = 'c', .side = (sd)                                                \
    }
#define END                                                                    \
    {                                                                          \
        .op = 0                                                                \
    }

/* The bridged runs' results where they knowingly differ. */
#define R9_UNREAD  "an end closed with bytes unread is an EOF to its peer (R9)"
#define R37_STICKY "the end closed with -ECONNRESET reports it on every read"
#define R37_WRITES "the end closed with -ECONNRESET fails writes with it"

#define MAXSTEPS 16

struct script {
    const char *name;
    struct step steps[MAXSTEPS];
};

/* Bytes both ways, and reads that find fewer than they ask. */
static const struct script bytes_both_ways = {
    "bytes both ways",
    {W(A, 5, 5), RD(S, 5, 5, ALL), W(S, 7, 7), RD(A, 7, 7, ALL), W(A, 3, 3),
     W(S, 4, 4), RD(S, 10, 3, -EAGAIN), RD(A, 10, 4, -EAGAIN),
     RD(A, 1, 0, -EAGAIN), END}};

/* A shuts its writing side: S reads EOF and can still send. */
static const struct script a_half_closes = {
    "A shuts down, then S",
    {W(A, 3, 3), SHUT(A), RD(S, 8, 3, 0), RD(S, 8, 0, 0), W(S, 2, 2),
     RD(A, 2, 2, ALL), W(A, 1, -EPIPE), SHUT(S), RD(A, 8, 0, 0),
     W(S, 1, -EPIPE), END}};

/* S shuts its writing side only: A reads EOF and can still send (POLLRDHUP
 * without POLLHUP: the end must not be read-shut). */
static const struct script s_half_closes = {
    "S shuts down, then A",
    {W(S, 3, 3), SHUT(S), RD(A, 8, 3, 0), RD(A, 8, 0, 0), W(A, 2, 2),
     RD(S, 2, 2, ALL), W(S, 1, -EPIPE), SHUT(A), RD(S, 8, 0, 0),
     W(A, 1, -EPIPE), END}};

/* R86: S closes (both ways): A reads EOF, and its writes fail -EPIPE. */
static const struct script s_closes = {
    "S closes: A reads EOF, then writes",
    {W(S, 3, 3), RD(A, 3, 3, ALL), CLOSE(S), RD(A, 8, 0, 0), W(A, 1, -EPIPE),
     W(A, 4, -EPIPE), RD(A, 8, 0, 0), SHUT(A), W(A, 1, -EPIPE), END}};

/* R86: the same with A writing before it reads, over bytes S sent. */
static const struct script s_closes_a_writes_first = {
    "S closes: A writes, then reads",
    {W(S, 2, 2), CLOSE(S), W(A, 4, -EPIPE), RD(A, 8, 2, 0), W(A, 1, -EPIPE),
     END}};

/* R86 with A's side already over: the socket is shut both ways by S's
 * shutdown alone (POLLHUP), and the bridge ends. */
static const struct script s_shuts_after_a = {
    "A shuts down, then S closes",
    {SHUT(A), RD(S, 8, 0, 0), W(S, 3, 3), CLOSE(S), RD(A, 8, 3, 0),
     W(A, 1, -EPIPE), END}};

/* A closes: S reads EOF, its writes fail with EPIPE. */
static const struct script a_closes = {"A closes",
                                       {W(A, 3, 3), RD(S, 3, 3, ALL), CLOSE(A),
                                        RD(S, 8, 0, 0), W(S, 1, -EPIPE),
                                        W(S, 1, -EPIPE), RD(S, 8, 0, 0), END}};

/* A closes with bytes unread. */
static const struct script a_closes_unread = {"A closes with bytes unread",
                                              {W(S, 4, 4),
                                               CLOSE(A),
                                               {.op = 'r',
                                                .side = S,
                                                .n = 8,
                                                .rc = 0,
                                                .stop = -ECONNRESET,
                                                .why = R9_UNREAD,
                                                .brc = 0,
                                                .bstop = 0},
                                               W(S, 1, -EPIPE),
                                               RD(S, 8, 0, 0),
                                               END}};

/* S closes with bytes unread: a reset, which the bridge passes on. */
static const struct script s_closes_unread = {"S closes with bytes unread",
                                              {W(S, 2, 2),
                                               W(A, 4, 4),
                                               CLOSE(S),
                                               RD(A, 8, 2, -ECONNRESET),
                                               {.op = 'r',
                                                .side = A,
                                                .n = 8,
                                                .rc = 0,
                                                .stop = 0,
                                                .why = R37_STICKY,
                                                .brc = 0,
                                                .bstop = -ECONNRESET},
                                               {.op = 'w',
                                                .side = A,
                                                .n = 1,
                                                .rc = -EPIPE,
                                                .why = R37_WRITES,
                                                .brc = -ECONNRESET},
                                               END}};

/* Both shut down, then both close; writes after one's own shutdown. */
static const struct script both_shut = {
    "both shut down",
    {W(A, 1, 1), W(S, 1, 1), SHUT(A), SHUT(S), W(A, 1, -EPIPE), W(S, 1, -EPIPE),
     RD(A, 8, 1, 0), RD(S, 8, 1, 0), CLOSE(A), CLOSE(S), END}};

/* ---- the two sides ----------------------------------------------------- */

#define SEED 0xd1ffu

/* A side's state as poll(2) tells it. */
struct state {
    long inq; /* bytes waiting to be read; -1: the side is closed */
    int hup;  /* 1: POLLRDHUP (no more bytes will come), 2: POLLHUP */
};

/* What one step observed. */
struct obs {
    long rc, stop;
    struct state st[2];
};

struct rig {
    enum kind kind;
    int fd[2];    /* fd[A] is -1 in a bridged run */
    mempipe *end; /* side A in a bridged run */
    mempipe_bridge *br;
    bool over; /* the step run's bridge returned 1 */
    bool open[2];
    uint64_t sent[2], got[2]; /* stream positions per side */
};

static bool is_end(const struct rig *r, int side)
{
    return side == A && r->end != NULL;
}

static void rig_open(struct rig *r, enum kind kind)
{
    *r = (struct rig){.kind = kind, .open = {true, true}};
    int s[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    r->fd[S] = s[1];
    if (kind == PLAIN) {
        r->fd[A] = s[0];
        return;
    }
    r->fd[A] = -1;
    mempipe *far;
    assert_rc(0, mempipe_duplex(4096, &r->end, &far));
    if (kind == THREAD)
        assert_rc(0, mempipe_bridge_fd(far, s[0], &r->br));
    else
        assert_rc(0, mempipe_bridge_new(far, s[0], &r->br));
}

static void side_close(struct rig *r, int side)
{
    if (is_end(r, side))
        mempipe_close(r->end);
    else
        close(r->fd[side]);
    r->open[side] = false;
}

static struct state side_state(const struct rig *r, int side)
{
    struct state st = {.inq = -1};
    if (!r->open[side])
        return st;
    if (is_end(r, side)) {
        int bits = mempipe_shut_state(r->end);
        assert_true(bits >= 0);
        st.inq = (long)mempipe_readable(r->end);
        if (bits & MEMPIPE_SHUT_READ)
            st.hup |= 1;
        if ((bits & MEMPIPE_SHUT_READ) && (bits & MEMPIPE_SHUT_WRITE))
            st.hup |= 2;
        return st;
    }
    int inq = 0;
    assert_int_equal(ioctl(r->fd[side], FIONREAD, &inq), 0);
    st.inq = inq;
    struct pollfd p = {.fd = r->fd[side], .events = POLLRDHUP};
    assert_true(poll(&p, 1, 0) >= 0);
    if (p.revents & POLLRDHUP)
        st.hup |= 1;
    if (p.revents & POLLHUP)
        st.hup |= 2;
    return st;
}

static bool same_state(const struct state *x, const struct state *y)
{
    return x[A].inq == y[A].inq && x[A].hup == y[A].hup &&
           x[S].inq == y[S].inq && x[S].hup == y[S].hup;
}

static long side_write(struct rig *r, int side, size_t n)
{
    unsigned char buf[64];
    assert_true(n <= sizeof buf);
    tu_pattern(buf, n, r->sent[side], SEED + (uint64_t)side);
    ssize_t k;
    if (is_end(r, side)) {
        k = mempipe_poll_write(r->end, buf, n, NULL);
    } else {
        k = send(r->fd[side], buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k < 0)
            k = -errno;
    }
    if (k > 0)
        r->sent[side] += (uint64_t)k;
    return (long)k;
}

/* Reads up to n bytes: *stop says what ended it short (ALL if nothing). */
static long side_read(struct rig *r, int side, size_t n, long *stop)
{
    unsigned char buf[64];
    assert_true(n <= sizeof buf);
    size_t got = 0;
    *stop = ALL;
    while (got < n) {
        ssize_t k;
        if (is_end(r, side)) {
            k = mempipe_poll_read(r->end, buf + got, n - got, NULL);
        } else {
            k = recv(r->fd[side], buf + got, n - got, MSG_DONTWAIT);
            if (k < 0)
                k = -errno;
        }
        if (k <= 0) {
            *stop = (long)k;
            break;
        }
        got += (size_t)k;
    }
    /* The bytes are the other side's stream, in order. */
    assert_int_equal(
        tu_check_pattern(buf, got, r->got[side], SEED + (uint64_t)(1 - side)),
        -1);
    r->got[side] += got;
    return (long)got;
}

static int side_shutdown(struct rig *r, int side)
{
    if (is_end(r, side))
        return mempipe_shutdown(r->end);
    return shutdown(r->fd[side], SHUT_WR) == 0 ? 0 : -errno;
}

/* Steps the thread-less bridge until none of its pollfds is ready. */
static void step_until_still(struct rig *r)
{
    for (int i = 0; !r->over; i++) {
        assert_true(i < 1000); /* a bridge that never rests */
        int rc = mempipe_bridge_step(r->br);
        assert_true(rc == 0 || rc == 1);
        if (rc == 1) {
            r->over = true;
            break;
        }
        struct pollfd fds[2];
        int n = mempipe_bridge_pollfds(r->br, fds);
        assert_int_equal(n, 2);
        /* An fd awaited for nothing is not watched (poll would report its
         * POLLHUP all the same). */
        for (int j = 0; j < n; j++)
            if (fds[j].events == 0)
                fds[j].fd = -1;
        int ready = poll(fds, (nfds_t)n, 0);
        assert_true(ready >= 0);
        if (ready == 0)
            break;
    }
}

/* The sides' states once the bridge has done what it can: at once on a
 * socketpair, after the steps for the step run, and for the thread run once
 * they are want's (or 5 s passed). */
static void settle(struct rig *r, const struct state *want, struct state *st)
{
    if (r->kind == STEP)
        step_until_still(r);
    double t0 = tu_now();
    for (;;) {
        st[A] = side_state(r, A);
        st[S] = side_state(r, S);
        if (r->kind != THREAD || want == NULL || same_state(st, want) ||
            tu_now() - t0 > 5)
            return;
        usleep(200);
    }
}

/* ---- running and comparing --------------------------------------------- */

/* Runs script s on a rig of kind; want is the plain run's observations
 * (NULL for the plain run itself). */
static void run(const struct script *s, enum kind kind, const struct obs *want,
                struct obs *obs)
{
    int fds0 = tu_count_fds();
    struct rig r;
    rig_open(&r, kind);
    for (int i = 0; s->steps[i].op != 0; i++) {
        const struct step *p = &s->steps[i];
        struct obs *o = &obs[i];
        *o = (struct obs){.stop = 0};
        assert_true(r.open[p->side]); /* a script's own mistake */
        switch (p->op) {
        case 'w':
            o->rc = side_write(&r, p->side, (size_t)p->n);
            break;
        case 'r':
            o->rc = side_read(&r, p->side, (size_t)p->n, &o->stop);
            break;
        case 's':
            o->rc = side_shutdown(&r, p->side);
            break;
        case 'c':
            side_close(&r, p->side);
            break;
        default:
            fail_msg("%s: step %d: no op '%c'", s->name, i + 1, p->op);
        }
        settle(&r, want != NULL ? want[i].st : NULL, o->st);
    }
    for (int side = 0; side < 2; side++)
        if (r.open[side])
            side_close(&r, side);
    if (r.br != NULL)
        assert_rc(0, mempipe_bridge_join(r.br));
    /* The bridge closed its socket and the end's fd. */
    assert_int_equal(tu_count_fds(), fds0);
}

static void show(const char *what, const struct obs *o)
{
    fprintf(stderr, "      %-7s rc %ld stop %ld, A (%ld, %d), S (%ld, %d)\n",
            what, o->rc, o->stop, o->st[A].inq, o->st[A].hup, o->st[S].inq,
            o->st[S].hup);
}

/* Prints each step where got is not what it should be; returns how many. */
static int compare(const struct script *s, enum kind kind,
                   const struct obs *plain, const struct obs *got)
{
    int bad = 0;
    for (int i = 0; s->steps[i].op != 0; i++) {
        const struct step *p = &s->steps[i];
        long rc = p->why != NULL ? p->brc : plain[i].rc;
        long stop = p->why != NULL ? p->bstop : plain[i].stop;
        if (got[i].rc == rc && got[i].stop == stop &&
            same_state(got[i].st, plain[i].st))
            continue;
        fprintf(stderr, "%s, %s run, step %d ('%c' on %s, n %d): differs%s%s\n",
                s->name, kind_name[kind], i + 1, p->op,
                p->side == A ? "A" : "S", p->n,
                p->why != NULL ? "; known difference: " : "",
                p->why != NULL ? p->why : "");
        show("plain", &plain[i]);
        show(kind_name[kind], &got[i]);
        bad++;
    }
    return bad;
}

static void differential(const struct script *const *scripts, size_t n)
{
    int bad = 0;
    for (size_t k = 0; k < n; k++) {
        const struct script *s = scripts[k];
        struct obs plain[MAXSTEPS], got[MAXSTEPS];
        run(s, PLAIN, NULL, plain);
        /* The script says what a socketpair does. */
        for (int i = 0; s->steps[i].op != 0; i++) {
            const struct step *p = &s->steps[i];
            if (plain[i].rc != p->rc || plain[i].stop != p->stop) {
                fprintf(stderr,
                        "%s: step %d: the socketpair gives rc %ld stop %ld, "
                        "the script says rc %ld stop %ld\n",
                        s->name, i + 1, plain[i].rc, plain[i].stop, p->rc,
                        p->stop);
                bad++;
            }
        }
        run(s, THREAD, plain, got);
        bad += compare(s, THREAD, plain, got);
        run(s, STEP, plain, got);
        bad += compare(s, STEP, plain, got);
    }
    assert_int_equal(bad, 0);
}

/* ---- tests ------------------------------------------------------------- */

static void test_R80_R81_bytes_and_half_close(void **state)
{
    (void)state;
    const struct script *const s[] = {&bytes_both_ways, &a_half_closes,
                                      &s_half_closes, &both_shut};
    differential(s, sizeof s / sizeof s[0]);
}

static void test_R82_closes_and_resets(void **state)
{
    (void)state;
    const struct script *const s[] = {&a_closes, &a_closes_unread,
                                      &s_closes_unread};
    differential(s, sizeof s / sizeof s[0]);
}

static void test_R86_fd_peer_close_fails_the_ends_writes(void **state)
{
    (void)state;
    const struct script *const s[] = {&s_closes, &s_closes_a_writes_first,
                                      &s_shuts_after_a};
    differential(s, sizeof s / sizeof s[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R80_R81_bytes_and_half_close),
        cmocka_unit_test(test_R82_closes_and_resets),
        cmocka_unit_test(test_R86_fd_peer_close_fails_the_ends_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
