/* SPDX-License-Identifier: MIT */
/*
 * Differential test: the same seeded random sequences of writes, writevs,
 * reads, shutdowns, closes and resets, on both ends, run on a mempipe duplex
 * and on a non-blocking socketpair(AF_UNIX, SOCK_STREAM). What the SPEC says
 * must match is compared; what it lets differ is not:
 *
 *   compared   the exact byte stream each end receives and its order (both
 *              are checked against the same intended stream, and the totals
 *              must be equal); -EPIPE on writes after the writer's own
 *              shutdown/close or the peer's close; EOF only after the peer's
 *              shutdown or close and only after every byte accepted before
 *              it; EOF again on every later read; the total delivered per
 *              direction when both ends finish.
 *   not        where a write would block or is cut short (capacities differ:
 *              mempipe's M against the kernel's ~208 KiB socket buffer), and
 *              how many bytes one read returns (the kernel may cut at skb
 *              edges). mempipe's counts are checked exactly against the SPEC
 *              model instead (R4, R12).
 *   known      After an end closes with unread bytes, the kernel reports
 *   difference ECONNRESET once to the peer's read (after the peer's buffered
 *              bytes); mempipe reads EOF (R9). The socket side accepts
 *              ECONNRESET exactly in that case and then expects EOF.
 *
 *   resets     Two operations have a socket analogue of a reset:
 *              mempipe_abort() against setsockopt(SO_LINGER {1, 0}) + close
 *              (no flush of the writer's tail first), and
 *              mempipe_set_rst_on_unread(end, 1) + close against a plain
 *              close (after the usual flush). Measured on Linux 6.18,
 *              AF_UNIX stream: SO_LINGER {1, 0} is accepted and changes
 *              nothing, it is the same as a plain close. Whether the peer
 *              sees a reset depends only on bytes unread in the closer's
 *              receive queue: with some, the peer's reads return every byte
 *              already buffered for it, then ECONNRESET once, then 0 on
 *              every later read; with none, the bytes, then 0. The peer's
 *              sends get EPIPE either way, the first one too, and they do
 *              not consume the pending ECONNRESET. mempipe (R38, R39): an
 *              abort always resets, rst_on_unread + close resets exactly
 *              when the closer had unread bytes (the kernel's condition);
 *              a reset discards the bytes buffered for the peer at once
 *              (mempipe_readable() 0, checked), the peer's every read is
 *              -ECONNRESET (sticky, never EOF), and its writes are
 *              -ECONNRESET unless it had shut down its own side (-EPIPE).
 *              Compared there: on both sides, every byte read before the
 *              reset is the intended stream in order, writes fail, and the
 *              ends open are the same; the kernel side still delivers every
 *              byte it accepted before its EOF. A direction whose writer
 *              mempipe reset is left out of the final delivered-total
 *              comparison (mempipe discarded what the kernel delivers).
 *
 *   issue 12   The socket calls of SPEC R51-R58 that have an analogue, in
 *   (R51-R58)  functions of their own (do_readv ... check_unread):
 *              mempipe_poll_readv, or the blocking mempipe_readv where it
 *              cannot wait, against readv(2); mempipe_read_full against
 *              recv(MSG_WAITALL), only where neither waits (len bytes
 *              buffered, or EOF or SHUT_RD after them; the socketpair is
 *              non-blocking), and there the count is exact on both: all len,
 *              or every byte up to EOF; mempipe_read_timeout(..., 0)
 *              against recv(MSG_DONTWAIT): -ETIMEDOUT exactly where the
 *              socket says EAGAIN, never -EAGAIN; mempipe_shutdown_read
 *              against shutdown(SHUT_RD); mempipe_unread against
 *              ioctl(SIOCOUTQ) for every open end after every step.
 *              Compared after a read-side shutdown: the peer's writes get
 *              EPIPE on both (the kernel's also when its buffer is full;
 *              mempipe's -EPIPE even after the reader's later abort, R56
 *              being that direction's first close), and the reader reads
 *              EOF on both once its buffered bytes are gone.
 *   known      SHUT_RD (R56): the kernel still returns the bytes buffered
 *   difference before it, then 0; mempipe discards them at once
 *              (mempipe_readable() 0, checked) and reads EOF, also over the
 *              peer's later reset, which the kernel still reports once
 *              after the bytes. Such a direction is left out of the final
 *              delivered-total comparison, as a reset one is.
 *   known      SIOCOUTQ on AF_UNIX counts the skbs' truesize (768 for a
 *   difference 10-byte send, measured), not bytes, so only zero against
 *              non-zero is compared: both are 0 exactly when the peer read
 *              every byte or closed; after the peer's SHUT_RD the kernel
 *              counts on until the bytes are read, mempipe says 0 (R58).
 *              mempipe's count is checked exactly against the model.
 *   known      A MSG_WAITALL recv that stops short at a pending reset
 *   difference returns the bytes and takes the reset with it (the next
 *              recv is 0), measured; the socket side then expects EOF.
 *
 *   issue 11   The zero-copy windows and the read mark (SPEC R62-R65), in
 *   (R62-R65)  functions of their own (zc_write ... check_ready):
 *              reserve + commit on mempipe in a quarter of the steps'
 *              writes and flushes, against the socket's plain send of the
 *              same pending tail: the stream must stay the same (each write
 *              checked as a write, the reserved total between a segment's
 *              worth and min(len, room), one time in four a prefix
 *              committed); mempipe_read_peek + mempipe_read_consume of a
 *              prefix against recv(MSG_PEEK | MSG_DONTWAIT) + recv of it:
 *              both views are the intended stream from the reader's
 *              position (mempipe's 1 or 2 spans may show fewer bytes than
 *              the kernel's copy; one span shows every byte), nothing shown
 *              answers as a read; mempipe_set_read_lowat against
 *              setsockopt(SO_RCVLOWAT), 1 to min(M, 300). Measured on
 *              AF_UNIX stream, and so what is compared: a MSG_DONTWAIT recv
 *              below the mark returns the bytes there are, as every mempipe
 *              poll read and read_timeout(0) do (all the sequences' reads);
 *              a blocking recv waits for min(mark, len) bytes (or EOF, an
 *              error, a shutdown) and after SO_RCVTIMEO returns what there
 *              is, as mempipe_read_timeout does: compared with 1 ms on both
 *              (both must have waited where the model says the mark is not
 *              met: in one sequence of 16, once per side, since the
 *              kernel's wait takes 4-22 ms). mempipe_poll_readable and
 *              _writable are checked against the model with the mark after
 *              every step.
 *   known      poll's POLLIN on AF_UNIX ignores SO_RCVLOWAT (set with one
 *   difference byte under a mark of 5, measured); mempipe's readiness and
 *              mempipe_fd's POLLIN start at the mark (R65). The revents run
 *              compares each against its own model at every step; the
 *              steps where they differ are counted. SO_RCVLOWAT 0 becomes
 *              1; mempipe_set_read_lowat(0) is -EINVAL. The write mark has
 *              no analogue (SO_SNDLOWAT: ENOPROTOOPT, measured), nor has
 *              consume_examined: both are the fuzzer's (fuzz/).
 *
 * Writes use a per-implementation "pending" tail: a try-write sends what it
 * can of the intended stream, and before a shutdown or close the writer
 * flushes the rest by pumping the peer's reads. So both implementations
 * deliver the same bytes whatever their capacities.
 *
 * revents    A second run of the same sequences asks mempipe_fd() of both
 *            mempipe ends first (so every call also keeps those fds in
 *            step) and, after every step, polls each open end's fd on both
 *            sides (POLLIN, POLLOUT, POLLRDHUP; SPEC R59, R60). Each side
 *            must match the model: POLLIN iff bytes are buffered for the
 *            end (mempipe: its read mark's worth, R65; the kernel ignores
 *            SO_RCVLOWAT) or its peer shut down or closed; POLLRDHUP iff
 *            the latter; POLLHUP iff also the end shut down or the peer
 *            closed; POLLOUT (mempipe) iff the end's pipe has room or its
 *            writes fail at once, (socket) at least where nothing it sent
 *            is unread or the peer closed (the kernel's POLLOUT depends on
 *            its buffer). So POLLRDHUP and POLLHUP, and POLLIN while no
 *            read mark above 1 is set, are compared exactly between the
 *            two; the kernel's POLLERR (a close with unread bytes) is not
 *            (mempipe_fd never reports it).
 *
 * MEMPIPE_DIFF_SEED=<n>   replays the one sequence <n> (printed on failure).
 * MEMPIPE_DIFF_COUNT=<n>  sequences to run (default 10000; 1000 under TSan).
 * MEMPIPE_DIFF_BASE=<n>   first seed (default 1), to explore other seeds.
 */
#include "shm.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

/*
 * The sequences are single-threaded, so ThreadSanitizer has nothing to find
 * in them and only slows their byte loops ~50x: a TSan build runs 1,000 by
 * default (the plain and ASan builds run all 10,000).
 */
#if defined(__SANITIZE_THREAD__)
#define DEFAULT_COUNT 1000
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DEFAULT_COUNT 1000
#endif
#endif
#ifndef DEFAULT_COUNT
#define DEFAULT_COUNT 10000
#endif

#define MAX_CHUNK 70000
#define MAX_IOV   4

enum { IMPL_MEMPIPE, IMPL_SOCKET, NIMPL };
static const char *const impl_name[NIMPL] = {"mempipe", "socketpair"};

/* One implementation's two ends and what the sequence did to them. */
struct side {
    int kind;
    mempipe *mp[2];
    int fd[2];
    int open[2]; /* the end is not closed */
    int shut[2]; /* the end write-closed its direction */
    /* Per direction d (end d writes, end 1-d reads), stream positions: */
    uint64_t intent[2];   /* bytes the sequence asked end d to send */
    uint64_t accepted[2]; /* bytes the implementation accepted */
    uint64_t received[2]; /* bytes end 1-d read */
    int eof[2];           /* end 1-d has read EOF */
    int reset_ok[2];      /* socket: one ECONNRESET allowed on this read */
    int rst[2];           /* mempipe: end d closed with a reset (R38, R39) */
    int rdshut[2];        /* end e shut its reading side (R56, SHUT_RD) */
    size_t mark[2];       /* end e's read mark (R65, SO_RCVLOWAT); 1 */
    int waited;           /* a marked read waited this sequence */
    size_t cap;           /* mempipe M */
};

/* Failure context, printed with every failed check so the seed replays. */
static uint64_t cur_seed;
static int cur_step;
static int with_fd; /* the revents run: mempipe_fd asked and compared */
/* The shm runs (R73): the mempipe side is an shm duplex split as between
 * two processes (kinds.h's TU_SHMX), every word through the mapping. */
static int with_shm;
static unsigned long long n_revents;
static unsigned long long n_ops, n_bytes, n_eof, n_epipe, n_reset;
static unsigned long long n_abort, n_rst_close, n_mp_reset, n_mp_reset_w;
/* Issue 12's calls (R51-R58), counted apart. */
static unsigned long long n_readv, n_readv_blocking, n_read_full,
    n_waitall_exact;
static unsigned long long n_timed0, n_etimedout, n_shut_read, n_unread_checks;
static unsigned long long n_unread_nonzero;
/* Issue 11's (R62-R65). */
static unsigned long long n_zc_writes, n_zc_prefix, n_zc_two, n_peeks,
    n_peek_two, n_peek_fewer, n_marks, n_marked_reads, n_marked_waits,
    n_marked_below;
static unsigned long long n_ready_checks, n_held_by_mark;
static int zc_step; /* this step's mempipe writes reserve and commit */

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "diff_test: seed %" PRIu64 " step %d: ", cur_seed, \
                    cur_step);                                                 \
            fprintf(stderr, __VA_ARGS__);                                      \
            fprintf(stderr,                                                    \
                    "\n  replay: MEMPIPE_DIFF_SEED=%" PRIu64 " ./diff_test\n", \
                    cur_seed);                                                 \
            fail_msg("diff mismatch at seed %" PRIu64, cur_seed);              \
        }                                                                      \
    } while (0)

static uint64_t stream_seed(int dir)
{
    return cur_seed * 2 + (uint64_t)dir;
}

static ssize_t side_write(struct side *s, int e, const struct iovec *iov, int n)
{
    if (s->kind == IMPL_MEMPIPE)
        return n == 1 ? mempipe_poll_write(s->mp[e], iov[0].iov_base,
                                           iov[0].iov_len, NULL)
                      : mempipe_poll_writev(s->mp[e], iov, n, NULL);
    struct msghdr m = {0};
    m.msg_iov = (struct iovec *)iov;
    m.msg_iovlen = (size_t)n;
    ssize_t r = sendmsg(s->fd[e], &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    return r < 0 ? -errno : r;
}

static ssize_t side_read(struct side *s, int e, void *buf, size_t len)
{
    if (s->kind == IMPL_MEMPIPE)
        return mempipe_poll_read(s->mp[e], buf, len, NULL);
    ssize_t r = recv(s->fd[e], buf, len, MSG_DONTWAIT);
    return r < 0 ? -errno : r;
}

/* Whether direction d is write-closed (its writer shut down or closed). */
static int wclosed(const struct side *s, int d)
{
    return s->shut[d] || !s->open[d];
}

/*
 * A read on end e, checked against the model: bytes in order, EOF only after
 * every accepted byte, -EAGAIN only while open and empty. Returns the result.
 */
static ssize_t check_read(struct side *s, int e, size_t len, uint64_t buffered,
                          ssize_t r, const unsigned char *buf);

static ssize_t do_read(struct side *s, int e, size_t len, unsigned char *buf)
{
    uint64_t buffered = s->accepted[1 - e] - s->received[1 - e];
    return check_read(s, e, len, buffered, side_read(s, e, buf, len), buf);
}

/* The checks of do_read for a read of len that returned r into buf, with
 * `buffered` bytes in flight before it: any read call of end e. */
static ssize_t check_read(struct side *s, int e, size_t len, uint64_t buffered,
                          ssize_t r, const unsigned char *buf)
{
    int d = 1 - e; /* the direction end e reads */
    n_ops++;
    if (s->kind == IMPL_MEMPIPE && s->rdshut[e]) {
        /* R56: EOF at once, the bytes buffered discarded (a reset too). */
        CHECK(r == 0, "mempipe: end %d read %zd after its shutdown_read", e, r);
        s->eof[d] = 1;
        n_eof++;
        return r;
    }
    if (s->kind == IMPL_MEMPIPE && s->rst[d]) {
        /* R38: the bytes are gone, every read is -ECONNRESET. */
        CHECK(r == -ECONNRESET, "mempipe: end %d read %zd after the reset", e,
              r);
        n_mp_reset++;
        return r;
    }
    if (r > 0) {
        CHECK((uint64_t)r <= buffered && (size_t)r <= len,
              "%s: read %zd bytes on end %d with %" PRIu64 " buffered",
              impl_name[s->kind], r, e, buffered);
        long bad =
            tu_check_pattern(buf, (size_t)r, s->received[d], stream_seed(d));
        CHECK(bad < 0, "%s: end %d read a wrong byte at stream pos %" PRIu64,
              impl_name[s->kind], e, s->received[d] + (uint64_t)bad);
        if (s->kind == IMPL_MEMPIPE) /* R4: exactly min(L, len) */
            CHECK((uint64_t)r == (buffered < len ? buffered : len),
                  "mempipe: read %zd, want min(%" PRIu64 ", %zu)", r, buffered,
                  len);
        CHECK(!s->eof[d], "%s: bytes after EOF", impl_name[s->kind]);
        s->received[d] += (uint64_t)r;
        n_bytes += (uint64_t)r;
        return r;
    }
    CHECK(buffered == 0,
          "%s: read returned %zd on end %d with %" PRIu64 " bytes buffered",
          impl_name[s->kind], r, e, buffered);
    if (r == -ECONNRESET && s->kind == IMPL_SOCKET && s->reset_ok[d]) {
        s->reset_ok[d] = 0; /* the kernel reports it once */
        n_reset++;
        return r;
    }
    if (wclosed(s, d) || s->rdshut[e]) { /* SHUT_RD: EOF after the bytes */
        CHECK(r == 0, "%s: end %d read %zd, want EOF (peer %s)",
              impl_name[s->kind], e, r, s->open[d] ? "shut down" : "closed");
        s->eof[d] = 1;
        s->reset_ok[d] = 0;
        n_eof++;
        return r;
    }
    CHECK(r == -EAGAIN, "%s: end %d read %zd, want -EAGAIN", impl_name[s->kind],
          e, r);
    return r;
}

/* Cuts buf's len bytes into 1..MAX_IOV slices (empty ones too) by rng. */
static int split(unsigned char *buf, size_t len, uint64_t *rng,
                 struct iovec *iov)
{
    int n = 1 + (int)(tu_rand(rng) % MAX_IOV);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t piece =
            i == n - 1 ? len - off : (size_t)(tu_rand(rng) % (len - off + 1));
        iov[i].iov_base = buf + off;
        iov[i].iov_len = piece;
        off += piece;
    }
    return n;
}

/*
 * mempipe_write_reserve + mempipe_write_commit of the bytes a plain write
 * would take (R62): 1 or 2 spans for 1 to min(len, room) bytes (all of
 * them when they fit one segment: ring.c's largest is min(M, 64 KiB)),
 * the bytes written in place, and all of them committed, or one time in
 * four a prefix (0 included). Returns the count committed, or the
 * reserve's error (-EAGAIN when full, the closes as a write's).
 */
static ssize_t zc_write(struct side *s, int e, const unsigned char *data,
                        size_t len, uint64_t used, uint64_t *rng)
{
    struct iovec iov[2];
    int n = mempipe_write_reserve(s->mp[e], len, iov, NULL);
    if (n < 0)
        return n;
    CHECK(n == 1 || n == 2, "mempipe: reserve returned %d", n);
    size_t t = iov[0].iov_len + (n == 2 ? iov[1].iov_len : 0);
    uint64_t room = s->cap - used;
    size_t take = len < room ? len : (size_t)room;
    size_t seg = s->cap < 65536 ? s->cap : 65536;
    CHECK(t <= take && t >= (take < seg ? take : seg),
          "mempipe: reserved %zu bytes for %zu with room %" PRIu64, t, len,
          room);
    size_t put = tu_rand(rng) % 4 == 0 ? (size_t)(tu_rand(rng) % (t + 1)) : t;
    size_t off = 0;
    for (int i = 0; i < n && off < put; i++) {
        size_t k = iov[i].iov_len < put - off ? iov[i].iov_len : put - off;
        memcpy(iov[i].iov_base, data + off, k);
        off += k;
    }
    int rc = mempipe_write_commit(s->mp[e], put);
    CHECK(rc == 0, "mempipe: commit of %zu returned %d", put, rc);
    n_zc_writes++;
    n_zc_prefix += put < t;
    n_zc_two += n == 2;
    return (ssize_t)put;
}

/*
 * One write attempt of end e from its pending tail, cut to `len` bytes and
 * split into up to MAX_IOV slices by rng (on mempipe, in a zero-copy step,
 * reserved and committed instead: zc_write). Returns the result, which
 * must be -EPIPE exactly when the SPEC says so (R10).
 */
static ssize_t do_write(struct side *s, int e, size_t len, uint64_t *rng,
                        unsigned char *buf)
{
    int d = e;
    tu_pattern(buf, len, s->accepted[d], stream_seed(d));
    struct iovec iov[MAX_IOV];
    int n = split(buf, len, rng, iov);
    uint64_t used = s->accepted[d] - s->received[d];
    int zc = s->kind == IMPL_MEMPIPE && zc_step && len > 0;
    ssize_t r =
        zc ? zc_write(s, e, buf, len, used, rng) : side_write(s, e, iov, n);
    n_ops++;
    int must_fail = s->shut[e] || !s->open[1 - e] || s->rdshut[1 - e];
    if (must_fail) {
        /* R38: the reader's reset, unless this end shut down first or the
         * reader had shut its reading side (R56: that first close of the
         * direction decided, -EPIPE); the kernel's send is EPIPE after any
         * close and after the reader's SHUT_RD, full or not (measured). */
        int want = s->kind == IMPL_MEMPIPE && !s->shut[e] && s->rst[1 - e] &&
                           !s->rdshut[1 - e]
                       ? -ECONNRESET
                       : -EPIPE;
        CHECK(r == want, "%s: write on end %d returned %zd, want %d",
              impl_name[s->kind], e, r, want);
        if (want == -EPIPE)
            n_epipe++;
        else
            n_mp_reset_w++;
        return r;
    }
    if (s->kind == IMPL_MEMPIPE) {
        /* R11/R12/R14: exactly min(len, M - L), -EAGAIN when full. */
        uint64_t room = s->cap - used;
        uint64_t want = len < room ? len : room;
        if (len > 0 && room == 0)
            CHECK(r == -EAGAIN, "mempipe: write %zd on a full pipe", r);
        else if (!zc) /* zc_write checked its own count */
            CHECK((uint64_t)r == want,
                  "mempipe: write of %zu returned %zd, want %" PRIu64, len, r,
                  want);
    } else {
        CHECK(r == -EAGAIN || (r >= 0 && (size_t)r <= len),
              "socketpair: write of %zu returned %zd", len, r);
    }
    if (r > 0)
        s->accepted[d] += (uint64_t)r;
    return r;
}

/* Sends end e's whole pending tail, reading the peer while it is full. */
static void flush(struct side *s, int e, uint64_t *rng, unsigned char *wbuf,
                  unsigned char *rbuf)
{
    while (s->accepted[e] < s->intent[e]) {
        uint64_t left = s->intent[e] - s->accepted[e];
        ssize_t r =
            do_write(s, e, left < MAX_CHUNK ? left : MAX_CHUNK, rng, wbuf);
        if (r == -EPIPE || r == -ECONNRESET)
            return; /* the reader is gone: nothing left to deliver */
        if (r == -EAGAIN) {
            ssize_t got = do_read(s, 1 - e, MAX_CHUNK, rbuf);
            CHECK(got > 0, "%s: full pipe but the reader got %zd",
                  impl_name[s->kind], got);
        }
    }
}

static void do_shutdown(struct side *s, int e, uint64_t *rng,
                        unsigned char *wbuf, unsigned char *rbuf)
{
    if (s->open[1 - e])
        flush(s, e, rng, wbuf, rbuf);
    int r;
    if (s->kind == IMPL_MEMPIPE) {
        r = mempipe_shutdown(s->mp[e]);
        CHECK(r == 0, "mempipe: shutdown returned %d", r); /* R17 */
    } else {
        /* The kernel's answer after the peer closed is not compared. */
        (void)shutdown(s->fd[e], SHUT_WR);
    }
    s->shut[e] = 1;
    n_ops++;
}

/*
 * Closes end e: mode 0 a plain close, 1 with rst_on_unread on (mempipe; the
 * socket's close is plain), 2 a reset (mempipe_abort; SO_LINGER {1, 0} and
 * close, without flushing the tail first).
 */
static void do_close(struct side *s, int e, int mode, uint64_t *rng,
                     unsigned char *wbuf, unsigned char *rbuf)
{
    if (mode != 2 && s->open[1 - e] && !s->shut[e])
        flush(s, e, rng, wbuf, rbuf);
    /* Bytes end e never read: the kernel then resets the peer's read, and
     * so does mempipe with rst_on_unread (R39). */
    int d_in = 1 - e;
    int unread = s->accepted[d_in] > s->received[d_in];
    if (s->kind == IMPL_MEMPIPE && s->rdshut[e])
        unread = 0; /* R56 discarded them: R39 sees none */
    if (s->kind == IMPL_SOCKET && unread)
        s->reset_ok[e] = 1;
    if (s->kind == IMPL_MEMPIPE) {
        if (mode == 1)
            CHECK(mempipe_set_rst_on_unread(s->mp[e], 1) == 0,
                  "mempipe: set_rst_on_unread failed");
        if (mode == 2)
            mempipe_abort(s->mp[e]);
        else
            mempipe_close(s->mp[e]);
        s->rst[e] = mode == 2 || (mode == 1 && unread);
        if (s->rst[e] && s->open[1 - e]) /* R38: discarded at once */
            CHECK(mempipe_readable(s->mp[1 - e]) == 0,
                  "mempipe: %zu bytes readable after the reset",
                  mempipe_readable(s->mp[1 - e]));
    } else {
        if (mode == 2) {
            struct linger lg = {1, 0};
            CHECK(setsockopt(s->fd[e], SOL_SOCKET, SO_LINGER, &lg, sizeof lg) ==
                      0,
                  "SO_LINGER: %s", strerror(errno));
        }
        close(s->fd[e]);
    }
    n_abort += mode == 2 && s->kind == IMPL_MEMPIPE;
    n_rst_close += mode == 1 && s->kind == IMPL_MEMPIPE;
    s->open[e] = 0;
    n_ops++;
}

/* ---- issue 12's calls (R51-R58) against their socket analogues ---------- */

/*
 * A scattering read into 1..MAX_IOV slices of buf, laid end to end so that
 * the bytes read are buf's first r: readv(2) on the socket; on mempipe
 * mempipe_poll_readv, or the blocking mempipe_readv where bytes, EOF or a
 * read-side shutdown make sure it does not wait (R52).
 */
static ssize_t do_readv(struct side *s, int e, size_t len, uint64_t *rng,
                        unsigned char *buf)
{
    int d = 1 - e;
    uint64_t buffered = s->accepted[d] - s->received[d];
    struct iovec iov[MAX_IOV];
    int n = split(buf, len, rng, iov);
    ssize_t r;
    if (s->kind == IMPL_SOCKET) {
        r = readv(s->fd[e], iov, n);
        r = r < 0 ? -errno : r;
    } else if (len % 2 == 1 &&
               (buffered >= (len < s->mark[e] ? len : s->mark[e]) ||
                wclosed(s, d) || s->rdshut[e])) { /* R65: the mark's worth */
        r = mempipe_readv(s->mp[e], iov, n);
        n_readv_blocking++;
    } else {
        r = mempipe_poll_readv(s->mp[e], iov, n, NULL);
    }
    n_readv += s->kind == IMPL_MEMPIPE;
    return check_read(s, e, len, buffered, r, buf);
}

/*
 * mempipe_read_full against recv(MSG_WAITALL) (R53), only where neither
 * waits: len bytes buffered, or EOF (or the reader's SHUT_RD) after what
 * is; else a plain read. There the count is exact on both: all len, or
 * every byte up to the EOF.
 */
static ssize_t do_read_full(struct side *s, int e, size_t len,
                            unsigned char *buf)
{
    int d = 1 - e;
    uint64_t buffered = s->accepted[d] - s->received[d];
    if (buffered < len && !wclosed(s, d) && !s->rdshut[e])
        return do_read(s, e, len, buf);
    ssize_t r;
    if (s->kind == IMPL_MEMPIPE) {
        r = mempipe_read_full(s->mp[e], buf, len);
    } else {
        r = recv(s->fd[e], buf, len, MSG_WAITALL);
        r = r < 0 ? -errno : r;
    }
    n_read_full += s->kind == IMPL_MEMPIPE;
    if (r > 0) {
        uint64_t want = buffered < len ? buffered : len;
        CHECK((uint64_t)r == want,
              "%s: read_full of %zu on end %d returned %zd, want %" PRIu64,
              impl_name[s->kind], len, e, r, want);
        n_waitall_exact++;
        /* Measured: a MSG_WAITALL recv that stops short at a pending
         * reset takes the reset with it (the bytes, then EOF). */
        if (s->kind == IMPL_SOCKET && (size_t)r < len)
            s->reset_ok[d] = 0;
    }
    return check_read(s, e, len, buffered, r, buf);
}

/*
 * mempipe_read_timeout(..., 0) against recv(MSG_DONTWAIT) (R51): the same
 * answers, except -ETIMEDOUT (never -EAGAIN) where the socket says EAGAIN.
 */
static ssize_t do_read_now(struct side *s, int e, size_t len,
                           unsigned char *buf)
{
    if (s->kind == IMPL_SOCKET)
        return do_read(s, e, len, buf);
    uint64_t buffered = s->accepted[1 - e] - s->received[1 - e];
    ssize_t r = mempipe_read_timeout(s->mp[e], buf, len, 0);
    n_timed0++;
    CHECK(r != -EAGAIN, "mempipe: read_timeout(0) on end %d: -EAGAIN", e);
    if (r == -ETIMEDOUT) {
        n_etimedout++;
        r = -EAGAIN; /* then checked to come exactly where EAGAIN would */
    }
    return check_read(s, e, len, buffered, r, buf);
}

/* The reads of issue 12, by `which` in 0..7: 3 readv, 2 read_full, 3
 * read_timeout(0). */
static void do_socket_read(struct side *s, int e, int which, size_t len,
                           uint64_t *rng, unsigned char *buf)
{
    if (which < 3)
        do_readv(s, e, len, rng, buf);
    else if (which < 5)
        do_read_full(s, e, len, buf);
    else
        do_read_now(s, e, len, buf);
}

/*
 * mempipe_shutdown_read against shutdown(SHUT_RD) (R56). After it the
 * peer's writes fail with EPIPE on both (do_write), and the reader reads
 * EOF: mempipe at once, its buffered bytes discarded (readable 0, checked
 * here); the kernel after the bytes buffered before it (check_read).
 */
static void do_shutdown_read(struct side *s, int e)
{
    if (s->kind == IMPL_MEMPIPE) {
        int r = mempipe_shutdown_read(s->mp[e]);
        CHECK(r == 0, "mempipe: shutdown_read returned %d", r);
        CHECK(mempipe_readable(s->mp[e]) == 0,
              "mempipe: %zu bytes readable after shutdown_read",
              mempipe_readable(s->mp[e]));
        n_shut_read++;
    } else {
        CHECK(shutdown(s->fd[e], SHUT_RD) == 0, "shutdown(SHUT_RD): %s",
              strerror(errno));
    }
    s->rdshut[e] = 1;
    n_ops++;
}

/*
 * mempipe_unread against ioctl(SIOCOUTQ) (R58), for every open end. On
 * AF_UNIX SIOCOUTQ counts the skbs' truesize (768 for a 10-byte send,
 * measured), not bytes, so only "some left or none" is compared there;
 * mempipe's count is checked exactly against the model. Both are 0 once
 * the peer read everything or closed; after the peer's SHUT_RD the kernel
 * counts on until the reader reads the bytes, mempipe says 0 at once (they
 * are discarded).
 */
static void check_unread(struct side *s)
{
    for (int e = 0; e < 2; e++) {
        if (!s->open[e])
            continue;
        uint64_t left = s->accepted[e] - s->received[e];
        int peer_open = s->open[1 - e];
        if (s->kind == IMPL_MEMPIPE) {
            uint64_t want = peer_open && !s->rdshut[1 - e] ? left : 0;
            size_t got = mempipe_unread(s->mp[e]);
            CHECK(got == want,
                  "mempipe: unread on end %d is %zu, want %" PRIu64, e, got,
                  want);
        } else {
            int q = -1;
            CHECK(ioctl(s->fd[e], SIOCOUTQ, &q) == 0, "SIOCOUTQ: %s",
                  strerror(errno));
            CHECK((q != 0) == (peer_open && left > 0),
                  "socketpair: SIOCOUTQ on end %d is %d with %" PRIu64
                  " bytes unread (peer %s)",
                  e, q, left, peer_open ? "open" : "closed");
            n_unread_nonzero += q != 0;
        }
        n_unread_checks++;
    }
}

/* ---- issue 11's calls (R62-R65) against their socket analogues ---------- */

/*
 * mempipe_read_peek + mempipe_read_consume of a prefix against
 * recv(MSG_PEEK | MSG_DONTWAIT) + recv of that prefix (R63). The bytes
 * shown must be the intended stream from the reader's position on both:
 * mempipe shows 1 or 2 spans (one span shows every byte buffered; two at
 * most that: the common part of the two views is compared through the
 * stream), the kernel copies up to MAX_CHUNK across its skbs. A peek that
 * shows nothing answers as a read (check_read: EOF, -EAGAIN, the resets;
 * measured: MSG_PEEK takes a pending ECONNRESET as a read does). Then the
 * same share of each view, len % (shown + 1) bytes, is taken: consume on
 * mempipe, a recv of exactly that many on the socket.
 */
static void do_peek(struct side *s, int e, size_t len, unsigned char *buf)
{
    int d = 1 - e;
    uint64_t buffered = s->accepted[d] - s->received[d];
    struct iovec iov[2];
    int n = 1;
    if (s->kind == IMPL_MEMPIPE) {
        n = mempipe_read_peek(s->mp[e], iov, NULL);
        if (n <= 0) {
            check_read(s, e, len, buffered, n, buf);
            return;
        }
        CHECK(n <= 2, "mempipe: peek returned %d", n);
    } else {
        ssize_t r = recv(s->fd[e], buf, MAX_CHUNK, MSG_PEEK | MSG_DONTWAIT);
        if (r <= 0) {
            check_read(s, e, len, buffered, r < 0 ? -errno : r, buf);
            return;
        }
        iov[0] = (struct iovec){buf, (size_t)r};
    }
    /* The view, in place (mempipe's may be larger than buf: two 64 KiB
     * segments), against the stream. */
    size_t shown = 0;
    for (int i = 0; i < n; i++) {
        CHECK(iov[i].iov_len > 0, "%s: peek span %d empty", impl_name[s->kind],
              i);
        long bad = tu_check_pattern(iov[i].iov_base, iov[i].iov_len,
                                    s->received[d] + shown, stream_seed(d));
        CHECK(bad < 0, "%s: end %d peeks a wrong byte at stream pos %" PRIu64,
              impl_name[s->kind], e, s->received[d] + shown + (uint64_t)bad);
        shown += iov[i].iov_len;
    }
    CHECK(shown <= buffered, "%s: peek shows %zu, %" PRIu64 " buffered",
          impl_name[s->kind], shown, buffered);
    size_t k = len % (shown + 1); /* at most len: it fits buf */
    ssize_t r;
    if (s->kind == IMPL_MEMPIPE) {
        /* R63: one span shows every byte buffered (no faults here). */
        CHECK(n == 2 || shown == buffered,
              "mempipe: one span shows %zu of %" PRIu64, shown, buffered);
        n_peeks++;
        n_peek_two += n == 2;
        n_peek_fewer += shown < buffered;
        size_t c = k < iov[0].iov_len ? k : iov[0].iov_len;
        memcpy(buf, iov[0].iov_base, c); /* the prefix, for check_read */
        if (k > c)
            memcpy(buf + c, iov[1].iov_base, k - c);
        int rc = mempipe_read_consume(s->mp[e], k);
        CHECK(rc == 0, "mempipe: consume of %zu returned %d", k, rc);
        r = (ssize_t)k;
    } else {
        r = k == 0 ? 0 : recv(s->fd[e], buf, k, MSG_DONTWAIT);
        CHECK(r == (ssize_t)k, "socketpair: recv of the %zu peeked: %zd", k, r);
    }
    if (k > 0)
        check_read(s, e, k, buffered, r, buf); /* the prefix, taken */
    else
        n_ops++;
}

/*
 * The read mark: mempipe_set_read_lowat against setsockopt(SO_RCVLOWAT)
 * (R65), 1 to min(M, 300). Measured on AF_UNIX stream: the kernel stores
 * it (0 becomes 1) and honours it only in a blocking recv (do_read_marked);
 * poll's POLLIN ignores it (check_ready, check_revents) and a MSG_DONTWAIT
 * recv below it returns the bytes there are, as mempipe's poll calls do
 * (every other read of the sequences).
 */
static void do_set_mark(struct side *s, int e, size_t m)
{
    if (s->kind == IMPL_MEMPIPE) {
        int rc = mempipe_set_read_lowat(s->mp[e], m);
        CHECK(rc == 0, "mempipe: set_read_lowat(%zu) returned %d", m, rc);
        n_marks++;
    } else {
        int v = (int)m;
        CHECK(setsockopt(s->fd[e], SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) == 0,
              "SO_RCVLOWAT: %s", strerror(errno));
    }
    s->mark[e] = m;
    n_ops++;
}

/*
 * A blocking read under the mark with a 1 ms limit: mempipe_read_timeout
 * (..., 1) against a blocking recv with SO_RCVTIMEO 1 ms (R65, R51). Both
 * wait for min(mark, len) bytes, EOF, an error or a shutdown (measured:
 * the kernel's recv returns 2 of 2 buffered at once for len 2 under a mark
 * of 4, and after the timeout for len 64), and after the time give what is
 * there: the same bytes, or nothing (-ETIMEDOUT where the socket says
 * EAGAIN). Where the model says the mark is not met, both must have waited
 * (at least 0.99 ms). The kernel's wait takes 4-22 ms, so a read that
 * would wait runs in one sequence of 16 only, once per sequence and
 * side; elsewhere it is a poll read (do_read). First the mark is set to m
 * if it is 1 (without a mark above 1, a poll read), and with the peer able
 * to write, the end reads what is buffered and the peer writes fewer bytes
 * than the mark from its pending tail: the read then meets bytes below the
 * mark.
 */
static void do_read_marked(struct side *s, int e, size_t len, size_t m,
                           uint64_t *rng, unsigned char *wbuf,
                           unsigned char *buf)
{
    int d = 1 - e;
    if (s->mark[e] < 2 && m >= 2)
        do_set_mark(s, e, m);
    if (s->mark[e] < 2) {
        do_read(s, e, len, buf);
        return;
    }
    if (s->open[d] && !s->shut[d] && !s->rdshut[e]) {
        do_read(s, e, MAX_CHUNK, buf);
        size_t k = 1 + len % (s->mark[e] - 1);
        s->intent[d] += k;
        do_write(s, d, k, rng, wbuf);
    }
    uint64_t buffered = s->accepted[d] - s->received[d];
    size_t need = len < s->mark[e] ? len : s->mark[e];
    int waits = buffered < need && !wclosed(s, d) && !s->rdshut[e];
    if (waits && (s->waited || cur_seed % 16 != 0)) {
        do_read(s, e, len, buf);
        return;
    }
    s->waited |= waits;
    double t0 = tu_now();
    ssize_t r;
    if (s->kind == IMPL_MEMPIPE) {
        r = mempipe_read_timeout(s->mp[e], buf, len, 1);
        if (r == -ETIMEDOUT)
            r = -EAGAIN; /* then checked to come where EAGAIN would */
        n_marked_reads++;
        n_marked_waits += waits;
        n_marked_below += waits && buffered > 0;
    } else {
        int fl = fcntl(s->fd[e], F_GETFL);
        CHECK(fl >= 0 && fcntl(s->fd[e], F_SETFL, fl & ~O_NONBLOCK) == 0,
              "fcntl: %s", strerror(errno));
        r = recv(s->fd[e], buf, len, 0);
        r = r < 0 ? -errno : r;
        CHECK(fcntl(s->fd[e], F_SETFL, fl) == 0, "fcntl: %s", strerror(errno));
    }
    double ms = (tu_now() - t0) * 1000.0;
    CHECK(!waits || ms >= 0.99,
          "%s: end %d read %zd after %.3f ms with %" PRIu64
          " buffered under a mark of %zu (len %zu)",
          impl_name[s->kind], e, r, ms, buffered, s->mark[e], len);
    check_read(s, e, len, buffered, r, buf);
}

/*
 * mempipe_poll_readable and _writable (no waker) for every open end after
 * every step, against the model with the marks (R55, R65): readable from
 * the mark's worth or once the peer shut down or closed (or this end shut
 * its reading side), writable while there is room or a write fails at once.
 * The kernel's POLLIN, which ignores SO_RCVLOWAT, is compared in the
 * revents run (check_revents); here the steps where the two differ are
 * counted.
 */
static void check_ready(struct side *s)
{
    if (s->kind != IMPL_MEMPIPE)
        return;
    for (int e = 0; e < 2; e++) {
        if (!s->open[e])
            continue;
        int d_in = 1 - e;
        uint64_t in = s->accepted[d_in] - s->received[d_in];
        uint64_t out = s->accepted[e] - s->received[e];
        int rd = wclosed(s, d_in) || s->rdshut[e] || in >= s->mark[e];
        int wr =
            s->shut[e] || !s->open[d_in] || s->rdshut[d_in] || out < s->cap;
        int r = mempipe_poll_readable(s->mp[e], NULL);
        CHECK(r == (rd ? 1 : -EAGAIN),
              "mempipe: poll_readable on end %d: %d with %" PRIu64
              " buffered, mark %zu",
              e, r, in, s->mark[e]);
        r = mempipe_poll_writable(s->mp[e], NULL);
        CHECK(r == (wr ? 1 : -EAGAIN),
              "mempipe: poll_writable on end %d: %d with %" PRIu64 " unread", e,
              r, out);
        n_ready_checks++;
        n_held_by_mark += !rd && in > 0;
    }
}

static void side_open(struct side *s, int kind, size_t cap)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->cap = cap;
    s->open[0] = s->open[1] = 1;
    s->mark[0] = s->mark[1] = 1;
    if (kind == IMPL_MEMPIPE && with_shm) {
        int fd;
        assert_rc(0, mempipe_shm_duplex(cap, &s->mp[0], &fd));
        mempipe__shm_split = 1;
        int rc = mempipe_shm_attach(fd, &s->mp[1]);
        mempipe__shm_split = 0;
        close(fd);
        assert_rc(0, rc);
        for (int e = 0; e < 2 && with_fd; e++)
            assert_true(mempipe_fd(s->mp[e]) >= 0);
    } else if (kind == IMPL_MEMPIPE) {
        assert_rc(0, mempipe_duplex(cap, &s->mp[0], &s->mp[1]));
        for (int e = 0; e < 2 && with_fd; e++)
            assert_true(mempipe_fd(s->mp[e]) >= 0);
    } else {
        /* Non-blocking, so that readv(2) and MSG_WAITALL never wait (every
         * other call passes MSG_DONTWAIT anyway). */
        assert_rc(0,
                  socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s->fd));
        struct timeval tv = {0, 1000}; /* do_read_marked's one blocking recv */
        for (int e = 0; e < 2; e++)
            assert_rc(0, setsockopt(s->fd[e], SOL_SOCKET, SO_RCVTIMEO, &tv,
                                    sizeof tv));
    }
}

/* revents of end e's fd now (POLLERR masked off on the socket side). */
static int side_revents(const struct side *s, int e)
{
    int fd = s->kind == IMPL_MEMPIPE ? mempipe_fd(s->mp[e]) : s->fd[e];
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP};
    CHECK(poll(&p, 1, 0) >= 0, "poll: %s", strerror(errno));
    int r = p.revents;
    if (s->kind == IMPL_SOCKET)
        r &= ~POLLERR;
    return r & (POLLIN | POLLOUT | POLLRDHUP | POLLHUP | POLLERR | POLLNVAL);
}

/* After a step: each open end's fd against the model, and against the
 * other side's (see the header comment). */
static void check_revents(const struct side sd[NIMPL])
{
    int got[NIMPL][2];
    for (int k = 0; k < NIMPL; k++) {
        const struct side *s = &sd[k];
        for (int e = 0; e < 2; e++) {
            if (!s->open[e])
                continue;
            int d_in = 1 - e, d_out = e;
            /* Its receive side is shut by the peer's shutdown or close, or
             * by its own SHUT_RD (R56); its send side by its own shutdown,
             * or the peer's close or SHUT_RD. */
            int rdhup = wclosed(s, d_in) || s->rdshut[e];
            int wshut = s->shut[e] || !s->open[1 - e] || s->rdshut[1 - e];
            uint64_t in = s->accepted[d_in] - s->received[d_in];
            uint64_t out = s->accepted[d_out] - s->received[d_out];
            int r = got[k][e] = side_revents(s, e);
            /* R65: mempipe_fd's POLLIN from the mark's worth; the kernel's
             * ignores SO_RCVLOWAT (measured). */
            int has = s->kind == IMPL_MEMPIPE
                          ? in >= s->mark[e] && !s->rst[d_in]
                          : in > 0;
            int want = has || rdhup ? POLLIN : 0;
            want |= rdhup ? POLLRDHUP : 0;
            want |= rdhup && wshut ? POLLHUP : 0;
            int mask = POLLIN | POLLRDHUP | POLLHUP | POLLERR | POLLNVAL;
            if (s->kind == IMPL_MEMPIPE) {
                want |= out < s->cap || wshut ? POLLOUT : 0;
                mask |= POLLOUT;
            } else if (out == 0 || !s->open[1 - e]) {
                want |= POLLOUT;
                mask |= POLLOUT;
            }
            CHECK((r & mask) == want,
                  "%s: end %d revents 0x%x, want 0x%x (of 0x%x): in %" PRIu64
                  " out %" PRIu64 " peer %s, own %s",
                  impl_name[k], e, (unsigned)r, (unsigned)want, (unsigned)mask,
                  in, out,
                  !s->open[1 - e]  ? "closed"
                  : s->shut[1 - e] ? "shut down"
                                   : "open",
                  s->shut[e] ? "shut down" : "open");
            n_revents++;
        }
    }
    for (int e = 0; e < 2; e++) {
        int same = POLLRDHUP | POLLHUP;
        if (sd[0].open[e])
            CHECK((got[0][e] & same) == (got[1][e] & same),
                  "end %d: hang-up bits 0x%x on mempipe_fd, 0x%x on the socket",
                  e, (unsigned)(got[0][e] & same),
                  (unsigned)(got[1][e] & same));
    }
}

/* Final phase: every open end sends its tail, shuts down, reads to EOF. */
static void finish(struct side *s, uint64_t *rng, unsigned char *wbuf,
                   unsigned char *rbuf)
{
    for (int e = 0; e < 2; e++)
        if (s->open[e] && !s->shut[e])
            do_shutdown(s, e, rng, wbuf, rbuf);
    for (int e = 0; e < 2; e++) {
        int d = 1 - e;
        if (!s->open[e])
            continue;
        int mp_reset = s->kind == IMPL_MEMPIPE && s->rst[d] && !s->rdshut[e];
        for (int guard = 0; !s->eof[d] && !mp_reset; guard++) {
            CHECK(guard < 1000000, "%s: no EOF", impl_name[s->kind]);
            ssize_t r = do_read(s, e, MAX_CHUNK, rbuf);
            CHECK(r != -EAGAIN, "%s: -EAGAIN after the peer shut down",
                  impl_name[s->kind]);
        }
        if (mp_reset) { /* R38: also over an EOF read before; sticky */
            do_read(s, e, 16, rbuf);
            do_read(s, e, 16, rbuf);
            continue;
        }
        /* R5: EOF every time after. (The kernel may still report a reset
         * that a later close of the peer raised, once: do_read allows it
         * only then.) */
        ssize_t r = do_read(s, e, 16, rbuf);
        if (r == -ECONNRESET)
            r = do_read(s, e, 16, rbuf);
        CHECK(r == 0, "%s: EOF not repeated: %zd", impl_name[s->kind], r);
    }
    for (int e = 0; e < 2; e++)
        if (s->open[e])
            do_close(s, e, 0, rng, wbuf, rbuf);
}

static const size_t caps[] = {1, 3, 64, 255, 256, 257, 4096, 65536, 1 << 20};

/* Runs sequence `seed` on both implementations and compares them. */
static void run_sequence(uint64_t seed, unsigned char *wbuf,
                         unsigned char *rbuf)
{
    struct side sd[NIMPL];
    uint64_t prng = seed * 0x9E3779B97F4A7C15ull + 1;
    size_t cap = caps[tu_rand(&prng) % (sizeof caps / sizeof caps[0])];
    size_t max_chunk = cap * 4 < MAX_CHUNK ? cap * 4 : MAX_CHUNK;
    int steps = 1 + (int)(tu_rand(&prng) % 60);
    /* The slicing of writes has its own stream per implementation, so
     * short writes do not shift the shared operation stream. */
    uint64_t slice_rng[NIMPL] = {seed + 7, seed + 7};

    cur_seed = seed;
    for (int k = 0; k < NIMPL; k++)
        side_open(&sd[k], k, cap);

    for (cur_step = 0; cur_step < steps; cur_step++) {
        uint64_t x = tu_rand(&prng);
        int e = (int)(x & 1);
        int op = (int)((x >> 1) % 110);
        size_t len = (size_t)(tu_rand(&prng) % (max_chunk + 1));
        if (len == 0)
            len = 1; /* len 0 is R8/R14, checked on mempipe alone below */
        /* R62: a quarter of the steps write (and flush) on mempipe with
         * reserve and commit; the socket sends as always. */
        zc_step = (x >> 33) % 4 == 0;
        size_t mark_max = cap < 300 ? cap : 300;
        size_t mark = (x >> 40) % 4 == 0 ? 1 : 1 + len % mark_max;
        size_t mark2 = mark_max < 2 ? 1 : 2 + len % (mark_max - 1);
        for (int k = 0; k < NIMPL; k++) {
            struct side *s = &sd[k];
            if (!s->open[e])
                continue;
            if (op < 35) { /* try-write: whatever fits now */
                s->intent[e] += len;
                uint64_t left = s->intent[e] - s->accepted[e];
                do_write(s, e, left < MAX_CHUNK ? left : MAX_CHUNK,
                         &slice_rng[k], wbuf);
            } else if (op < 45) { /* write all of it, pumping the peer */
                s->intent[e] += len;
                if (!s->shut[e] && s->open[1 - e])
                    flush(s, e, &slice_rng[k], wbuf, rbuf);
                else
                    do_write(s, e, len, &slice_rng[k], wbuf);
            } else if (op < 75) {
                do_read(s, e, len, rbuf);
            } else if (op < 83) { /* issue 12's reads: R51-R53 */
                do_socket_read(s, e, op - 75, len, &slice_rng[k], rbuf);
            } else if (op < 91) {
                do_shutdown(s, e, &slice_rng[k], wbuf, rbuf);
            } else if (op < 93) {
                do_shutdown_read(s, e); /* R56 */
            } else if (op >= 100) {     /* issue 11's: R63, R65 */
                if (op < 104)
                    do_peek(s, e, len, rbuf);
                else if (op < 107)
                    do_set_mark(s, e, mark);
                else
                    do_read_marked(s, e, len, mark2, &slice_rng[k], wbuf, rbuf);
            } else {
                /* 93-95 close, 96-97 rst_on_unread + close, 98-99 abort */
                do_close(s, e,
                         op < 96   ? 0
                         : op < 98 ? 1
                                   : 2,
                         &slice_rng[k], wbuf, rbuf);
            }
            check_unread(s); /* R58, after every step */
            check_ready(s);  /* R55, R65 */
        }
        if (with_fd)
            check_revents(sd);
    }
    cur_step = -1; /* the final phase */
    /* Closes follow the shared operation stream: the same ends are open. */
    int reader_open[2] = {sd[0].open[1], sd[0].open[0]};
    CHECK(sd[0].open[0] == sd[1].open[0] && sd[0].open[1] == sd[1].open[1],
          "the open ends differ");
    for (int k = 0; k < NIMPL; k++)
        finish(&sd[k], &slice_rng[k], wbuf, rbuf);

    /*
     * The differential part: where the reader stayed open to the end, both
     * delivered the same streams up to EOF. (Where it closed early, how far
     * it had read depends on the read counts, which are not compared.)
     */
    for (int d = 0; d < 2; d++) {
        /* R56: after its shutdown_read mempipe's reader discarded what the
         * kernel's still delivers. */
        if (!reader_open[d] || sd[IMPL_MEMPIPE].rst[d] || sd[0].rdshut[1 - d])
            continue;
        CHECK(sd[0].eof[d] && sd[1].eof[d],
              "direction %d: EOF seen by mempipe %d, socketpair %d", d,
              sd[0].eof[d], sd[1].eof[d]);
        CHECK(sd[0].received[d] == sd[1].received[d],
              "direction %d: mempipe delivered %" PRIu64
              " bytes, socketpair %" PRIu64,
              d, sd[0].received[d], sd[1].received[d]);
    }
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? strtoull(v, NULL, 0) : dflt;
}

/*
 * Runs the sequences the environment asks for (MEMPIPE_DIFF_*, the default
 * count divided by `fewer`) and returns their count; *first is the seed of
 * the first.
 */
static uint64_t run_sequences(uint64_t fewer, uint64_t *first)
{
    unsigned char *wbuf = malloc(MAX_CHUNK);
    unsigned char *rbuf = malloc(MAX_CHUNK);
    assert_non_null(wbuf);
    assert_non_null(rbuf);
    const char *one = getenv("MEMPIPE_DIFF_SEED");
    *first =
        one ? env_u64("MEMPIPE_DIFF_SEED", 1) : env_u64("MEMPIPE_DIFF_BASE", 1);
    uint64_t count =
        one ? 1 : env_u64("MEMPIPE_DIFF_COUNT", DEFAULT_COUNT) / fewer;
    for (uint64_t i = 0; i < count; i++)
        run_sequence(*first + i, wbuf, rbuf);
    free(wbuf);
    free(rbuf);
    return count;
}

static void
test_R4_R5_R9_R10_R21_random_sequences_match_socketpair(void **state)
{
    (void)state;
    uint64_t first, count = run_sequences(1, &first);
    printf("diff_test: %" PRIu64 " sequences from seed %" PRIu64
           ", %llu ops, %llu bytes delivered, %llu EOFs, %llu EPIPEs, "
           "%llu socket ECONNRESETs; %llu aborts, %llu rst_on_unread closes, "
           "mempipe -ECONNRESET on %llu reads and %llu writes\n",
           count, first, n_ops, n_bytes, n_eof, n_epipe, n_reset, n_abort,
           n_rst_close, n_mp_reset, n_mp_reset_w);
    printf("diff_test: issue 12: %llu readv (%llu blocking), %llu read_full "
           "(%llu exact counts, both), %llu read_timeout(0) (%llu "
           "-ETIMEDOUT), %llu shutdown_read, %llu unread checks (%llu "
           "SIOCOUTQ non-zero)\n",
           n_readv, n_readv_blocking, n_read_full, n_waitall_exact, n_timed0,
           n_etimedout, n_shut_read, n_unread_checks, n_unread_nonzero);
    printf("diff_test: issue 11: %llu reserve+commit writes (%llu a prefix, "
           "%llu in two spans), %llu peeks (%llu in two spans, %llu showing "
           "fewer than buffered), %llu read marks set, %llu marked "
           "read_timeout(1) (%llu waited, %llu with bytes below the mark), "
           "%llu readiness checks (%llu held back by the mark)\n",
           n_zc_writes, n_zc_prefix, n_zc_two, n_peeks, n_peek_two,
           n_peek_fewer, n_marks, n_marked_reads, n_marked_waits,
           n_marked_below, n_ready_checks, n_held_by_mark);
    assert_true(n_ops > count); /* every sequence did something */
}

/*
 * The same sequences with mempipe_fd() asked on both mempipe ends, and the
 * revents of both sides compared after every step (R59, R60). A fifth of
 * them by default: every call then also keeps two sockets in step.
 */
static void test_R59_R60_random_sequences_revents_match_socketpair(void **state)
{
    (void)state;
    with_fd = 1;
    uint64_t first, count = run_sequences(5, &first);
    with_fd = 0;
    printf("diff_test: %" PRIu64 " sequences from seed %" PRIu64
           " with mempipe_fd, %llu revents compared\n",
           count, first, n_revents);
    assert_true(n_revents > count); /* every sequence compared some */
}

/*
 * R73: the same sequences, a fifth of them, on an shm duplex whose two
 * sides are split as between two processes; then with mempipe_fd on both
 * (R59, R60 over the notifier-less split sides).
 */
static void test_R73_random_sequences_on_shm_match_socketpair(void **state)
{
    (void)state;
    with_shm = 1;
    unsigned long long ops0 = n_ops;
    uint64_t first, count = run_sequences(5, &first);
    printf("diff_test: shm: %" PRIu64 " sequences from seed %" PRIu64
           ", %llu ops\n",
           count, first, n_ops - ops0);
    unsigned long long rev0 = n_revents;
    with_fd = 1;
    count = run_sequences(5, &first);
    with_fd = 0;
    with_shm = 0;
    printf("diff_test: shm with mempipe_fd: %" PRIu64
           " sequences, %llu revents compared\n",
           count, n_revents - rev0);
    assert_true(n_revents - rev0 > count);
}

/* Zero lengths are mempipe-only rules (R8, R14): checked here directly. */
static void test_R8_R14_zero_lengths(void **state)
{
    (void)state;
    mempipe *a, *b;
    char c = 0;
    assert_rc(0, mempipe_duplex(4, &a, &b));
    assert_rc(0, mempipe_poll_write(a, &c, 0, NULL));
    assert_rc(0, mempipe_poll_read(b, &c, 0, NULL));
    assert_rc(0, mempipe_shutdown(a));
    assert_rc(-EPIPE, mempipe_poll_write(a, &c, 0, NULL));
    mempipe_close(a);
    mempipe_close(b);
}

/*
 * The one place where socketpair and mempipe knowingly differ, pinned so that
 * a kernel or library change shows: a close with unread bytes resets the
 * socket peer's read once, while mempipe reads the bytes, then EOF (R9, R21).
 */
static void test_R9_close_with_unread_bytes_is_eof_not_reset(void **state)
{
    (void)state;
    int fd[2];
    char buf[8];
    assert_rc(0, socketpair(AF_UNIX, SOCK_STREAM, 0, fd));
    assert_rc(2, send(fd[0], "ab", 2, MSG_NOSIGNAL));
    assert_rc(2, send(fd[1], "cd", 2, MSG_NOSIGNAL));
    close(fd[0]); /* with "cd" unread */
    assert_rc(2, recv(fd[1], buf, sizeof buf, MSG_DONTWAIT));
    ssize_t r = recv(fd[1], buf, sizeof buf, MSG_DONTWAIT);
    assert_rc(-ECONNRESET, r < 0 ? -errno : r);
    assert_rc(0, recv(fd[1], buf, sizeof buf, MSG_DONTWAIT));
    close(fd[1]);

    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(16, &a, &b));
    assert_rc(2, mempipe_poll_write(a, "ab", 2, NULL));
    assert_rc(2, mempipe_poll_write(b, "cd", 2, NULL));
    mempipe_close(a);
    assert_rc(2, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(0, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(-EPIPE, mempipe_poll_write(b, "x", 1, NULL));
    mempipe_close(b);
}

/*
 * The reset analogues, pinned as measured (Linux 6.18, AF_UNIX stream):
 * SO_LINGER {1, 0} changes nothing on AF_UNIX; only bytes unread by the
 * closer make a reset, which the peer reads after its buffered bytes, once,
 * then EOF; its sends get EPIPE. mempipe's abort (and rst_on_unread + close
 * with unread bytes) discards the peer's bytes at once and is sticky (R38).
 */
static ssize_t sock_rc(ssize_t r)
{
    return r < 0 ? -errno : r;
}

static void test_R38_R39_reset_as_measured_on_af_unix(void **state)
{
    (void)state;
    struct linger lg = {1, 0};
    char buf[8];
    for (int unread = 0; unread < 2; unread++) {
        int fd[2];
        assert_rc(0, socketpair(AF_UNIX, SOCK_STREAM, 0, fd));
        assert_rc(2, send(fd[0], "ab", 2, MSG_NOSIGNAL));
        if (unread)
            assert_rc(2, send(fd[1], "cd", 2, MSG_NOSIGNAL));
        assert_rc(0, setsockopt(fd[0], SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
        close(fd[0]);
        assert_rc(-EPIPE, sock_rc(send(fd[1], "x", 1, MSG_NOSIGNAL)));
        assert_rc(2, sock_rc(recv(fd[1], buf, sizeof buf, MSG_DONTWAIT)));
        if (unread)
            assert_rc(-ECONNRESET,
                      sock_rc(recv(fd[1], buf, sizeof buf, MSG_DONTWAIT)));
        assert_rc(0, sock_rc(recv(fd[1], buf, sizeof buf, MSG_DONTWAIT)));
        assert_rc(0, sock_rc(recv(fd[1], buf, sizeof buf, MSG_DONTWAIT)));
        assert_rc(-EPIPE, sock_rc(send(fd[1], "x", 1, MSG_NOSIGNAL)));
        close(fd[1]);
    }
    for (int how = 0; how < 2; how++) { /* abort; rst_on_unread + close */
        mempipe *a, *b;
        assert_rc(0, mempipe_duplex(16, &a, &b));
        assert_rc(2, mempipe_poll_write(a, "ab", 2, NULL));
        assert_rc(2, mempipe_poll_write(b, "cd", 2, NULL));
        if (how == 0) {
            mempipe_abort(a);
        } else {
            assert_rc(0, mempipe_set_rst_on_unread(a, 1));
            mempipe_close(a);
        }
        assert_rc(0, mempipe_readable(b));
        assert_rc(-ECONNRESET, mempipe_poll_write(b, "x", 1, NULL));
        assert_rc(-ECONNRESET, mempipe_poll_read(b, buf, sizeof buf, NULL));
        assert_rc(-ECONNRESET, mempipe_poll_read(b, buf, sizeof buf, NULL));
        assert_rc(-ECONNRESET, mempipe_poll_write(b, "x", 1, NULL));
        mempipe_close(b);
    }
}

/* ---- issue 12's calls as measured on AF_UNIX (Linux 6.18) ---------------- */

static double ms_since(double t0)
{
    return (tu_now() - t0) * 1000.0;
}

/*
 * R51: a blocking socket with SO_RCVTIMEO 1 ms returns EAGAIN after the
 * timeout (rounded up to jiffies: 4.2-22 ms measured over 300 tries at HZ
 * 250, never under 1 ms); mempipe_read_timeout(..., 1) returns -ETIMEDOUT
 * after it (measured on CLOCK_MONOTONIC from the call's start), and 0
 * tries once (-ETIMEDOUT where MSG_DONTWAIT says EAGAIN). On both a byte
 * that comes later waits for the next read.
 */
static void test_R51_read_timeout_vs_so_rcvtimeo(void **state)
{
    (void)state;
    char c;
    int fd[2];
    assert_rc(0, socketpair(AF_UNIX, SOCK_STREAM, 0, fd));
    struct timeval tv = {0, 1000};
    assert_rc(0, setsockopt(fd[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    assert_rc(-EAGAIN, sock_rc(recv(fd[1], &c, 1, MSG_DONTWAIT)));
    double t0 = tu_now();
    assert_rc(-EAGAIN, sock_rc(recv(fd[1], &c, 1, 0)));
    double took = ms_since(t0);
    assert_true(took >= 0.99);
    assert_true(took < 5000.0);
    assert_rc(1, sock_rc(send(fd[0], "x", 1, MSG_NOSIGNAL)));
    assert_rc(1, sock_rc(recv(fd[1], &c, 1, 0)));
    close(fd[0]);
    close(fd[1]);

    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(16, &a, &b));
    assert_rc(-ETIMEDOUT, mempipe_read_timeout(b, &c, 1, 0));
    t0 = tu_now();
    assert_rc(-ETIMEDOUT, mempipe_read_timeout(b, &c, 1, 1));
    took = ms_since(t0);
    assert_true(took >= 0.99);
    assert_true(took < 5000.0);
    assert_rc(1, mempipe_poll_write(a, "x", 1, NULL));
    assert_rc(1, mempipe_read_timeout(b, &c, 1, 1));
    assert_int_equal('x', c);
    mempipe_close(a);
    mempipe_close(b);
}

/*
 * R56 against SHUT_RD, as measured: with 3 bytes buffered, recv returns 3
 * then 0; the peer's sends get EPIPE at once (also when the writer had
 * filled the socket); the shut end still sends. A later close of the peer
 * with bytes unread still resets the read once (then 0). mempipe drops the
 * 3 bytes at once (readable 0, EOF), the peer's writes get -EPIPE, and the
 * peer's later abort does not turn that EOF into a reset.
 */
static void test_R56_shutdown_read_as_measured_on_af_unix(void **state)
{
    (void)state;
    char buf[8];
    int fd[2];
    assert_rc(0, socketpair(AF_UNIX, SOCK_STREAM, 0, fd));
    assert_rc(3, sock_rc(send(fd[1], "xyz", 3, MSG_NOSIGNAL)));
    assert_rc(0, sock_rc(shutdown(fd[0], SHUT_RD)));
    assert_rc(-EPIPE, sock_rc(send(fd[1], "q", 1, MSG_NOSIGNAL)));
    assert_rc(3, sock_rc(recv(fd[0], buf, sizeof buf, MSG_DONTWAIT)));
    assert_rc(0, sock_rc(recv(fd[0], buf, sizeof buf, MSG_DONTWAIT)));
    assert_rc(2, sock_rc(send(fd[0], "ok", 2, MSG_NOSIGNAL)));
    assert_rc(2, sock_rc(recv(fd[1], buf, sizeof buf, MSG_DONTWAIT)));
    assert_rc(2, sock_rc(send(fd[0], "ab", 2, MSG_NOSIGNAL))); /* unread */
    close(fd[1]);
    assert_rc(-ECONNRESET, sock_rc(recv(fd[0], buf, sizeof buf, MSG_DONTWAIT)));
    assert_rc(0, sock_rc(recv(fd[0], buf, sizeof buf, MSG_DONTWAIT)));
    close(fd[0]);
    /* A full socket: still EPIPE, not EAGAIN. */
    assert_rc(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd));
    static char big[65536];
    while (send(fd[1], big, sizeof big, MSG_NOSIGNAL) > 0)
        ;
    assert_rc(-EAGAIN, sock_rc(send(fd[1], big, 1, MSG_NOSIGNAL)));
    assert_rc(0, sock_rc(shutdown(fd[0], SHUT_RD)));
    assert_rc(-EPIPE, sock_rc(send(fd[1], big, 1, MSG_NOSIGNAL)));
    close(fd[0]);
    close(fd[1]);

    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(16, &a, &b));
    assert_rc(3, mempipe_poll_write(b, "xyz", 3, NULL));
    assert_rc(0, mempipe_shutdown_read(a));
    assert_rc(0, mempipe_readable(a));
    assert_rc(-EPIPE, mempipe_poll_write(b, "q", 1, NULL));
    assert_rc(0, mempipe_poll_read(a, buf, sizeof buf, NULL));
    assert_rc(2, mempipe_poll_write(a, "ok", 2, NULL));
    assert_rc(2, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(2, mempipe_poll_write(a, "ab", 2, NULL));
    mempipe_abort(b);
    assert_rc(0, mempipe_poll_read(a, buf, sizeof buf, NULL));
    mempipe_close(a);
}

/*
 * R53 against MSG_WAITALL, as measured: all len when they are there, every
 * byte up to EOF when fewer; a MSG_WAITALL recv that stops short at a
 * pending reset returns the bytes and takes the reset with it (then 0),
 * while one that gets all len leaves it for the next recv. mempipe's
 * read_full returns the same counts, then EOF (R9: a close is no reset).
 */
static void test_R53_read_full_vs_msg_waitall(void **state)
{
    (void)state;
    char buf[16];
    for (int all = 0; all < 2; all++) {
        int fd[2];
        assert_rc(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd));
        assert_rc(3, sock_rc(send(fd[0], "abc", 3, MSG_NOSIGNAL)));
        assert_rc(2, sock_rc(send(fd[0], "de", 2, MSG_NOSIGNAL)));
        assert_rc(2, sock_rc(send(fd[1], "zz", 2, MSG_NOSIGNAL)));
        close(fd[0]); /* with "zz" unread: a reset behind the bytes */
        assert_rc(5, sock_rc(recv(fd[1], buf, all ? 5 : 10, MSG_WAITALL)));
        if (all)
            assert_rc(-ECONNRESET,
                      sock_rc(recv(fd[1], buf, sizeof buf, MSG_WAITALL)));
        assert_rc(0, sock_rc(recv(fd[1], buf, sizeof buf, MSG_WAITALL)));
        close(fd[1]);

        mempipe *a, *b;
        assert_rc(0, mempipe_duplex(16, &a, &b));
        assert_rc(3, mempipe_poll_write(a, "abc", 3, NULL));
        assert_rc(2, mempipe_poll_write(a, "de", 2, NULL));
        mempipe_close(a);
        assert_rc(5, mempipe_read_full(b, buf, all ? 5 : 10));
        assert_rc(0, mempipe_read_full(b, buf, sizeof buf));
        mempipe_close(b);
    }
}

/*
 * R58 against SIOCOUTQ, as measured: on AF_UNIX the kernel counts the
 * skbs' truesize (more than the bytes: 768 for a 10-byte send), 0 once the
 * reader read them all or closed, and still counts after the reader's
 * SHUT_RD until it reads them. mempipe_unread counts bytes, and 0 at once
 * after the peer's shutdown_read.
 */
static void test_R58_unread_vs_siocoutq_as_measured(void **state)
{
    (void)state;
    char buf[16];
    int fd[2], q = -1;
    assert_rc(0, socketpair(AF_UNIX, SOCK_STREAM, 0, fd));
    assert_rc(0, ioctl(fd[0], SIOCOUTQ, &q));
    assert_int_equal(0, q);
    assert_rc(10, sock_rc(send(fd[0], "0123456789", 10, MSG_NOSIGNAL)));
    assert_rc(0, ioctl(fd[0], SIOCOUTQ, &q));
    assert_true(q > 10); /* not bytes */
    assert_rc(4, sock_rc(recv(fd[1], buf, 4, MSG_DONTWAIT)));
    assert_rc(0, ioctl(fd[0], SIOCOUTQ, &q));
    assert_true(q > 0);
    assert_rc(0, shutdown(fd[1], SHUT_RD));
    assert_rc(0, ioctl(fd[0], SIOCOUTQ, &q));
    assert_true(q > 0); /* the bytes are still there for the reader */
    assert_rc(6, sock_rc(recv(fd[1], buf, sizeof buf, MSG_DONTWAIT)));
    assert_rc(0, ioctl(fd[0], SIOCOUTQ, &q));
    assert_int_equal(0, q);
    assert_rc(2, sock_rc(send(fd[1], "ab", 2, MSG_NOSIGNAL)));
    close(fd[0]); /* the writer's view after the reader's close */
    assert_rc(0, ioctl(fd[1], SIOCOUTQ, &q));
    assert_int_equal(0, q);
    close(fd[1]);

    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(0, mempipe_unread(a));
    assert_rc(10, mempipe_poll_write(a, "0123456789", 10, NULL));
    assert_rc(10, mempipe_unread(a));
    assert_rc(4, mempipe_poll_read(b, buf, 4, NULL));
    assert_rc(6, mempipe_unread(a));
    assert_rc(0, mempipe_shutdown_read(b));
    assert_rc(0, mempipe_unread(a)); /* discarded: never read */
    assert_rc(2, mempipe_poll_write(b, "ab", 2, NULL));
    assert_rc(2, mempipe_unread(b));
    mempipe_close(a);
    assert_rc(0, mempipe_unread(b));
    mempipe_close(b);
}

/* ---- issue 11's calls as measured on AF_UNIX (Linux 6.18) ---------------- */

/*
 * R63 against MSG_PEEK, as measured: a peek shows the bytes of several
 * sends at once and takes nothing; a recv of a prefix then moves the view
 * on; at EOF it is 0, every time; a pending reset (a close with bytes
 * unread) is reported once by a peek as by a read, then 0. mempipe's peek
 * shows the same bytes (here one span: they lie in one segment), consume
 * moves it on, EOF is 0 every time, and after the writer's abort every
 * peek is -ECONNRESET (R38: sticky, the bytes gone).
 */
static void test_R63_peek_vs_msg_peek_as_measured(void **state)
{
    (void)state;
    char buf[16];
    int fd[2];
    assert_rc(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd));
    assert_rc(-EAGAIN, sock_rc(recv(fd[1], buf, sizeof buf, MSG_PEEK)));
    assert_rc(3, sock_rc(send(fd[0], "abc", 3, MSG_NOSIGNAL)));
    assert_rc(3, sock_rc(send(fd[0], "def", 3, MSG_NOSIGNAL)));
    assert_rc(6, sock_rc(recv(fd[1], buf, sizeof buf, MSG_PEEK)));
    assert_memory_equal(buf, "abcdef", 6);
    assert_rc(2, sock_rc(recv(fd[1], buf, 2, 0)));
    assert_rc(4, sock_rc(recv(fd[1], buf, sizeof buf, MSG_PEEK)));
    assert_memory_equal(buf, "cdef", 4);
    assert_rc(2, sock_rc(send(fd[1], "zz", 2, MSG_NOSIGNAL))); /* unread */
    close(fd[0]);
    assert_rc(4, sock_rc(recv(fd[1], buf, sizeof buf, 0)));
    assert_rc(-ECONNRESET, sock_rc(recv(fd[1], buf, sizeof buf, MSG_PEEK)));
    assert_rc(0, sock_rc(recv(fd[1], buf, sizeof buf, MSG_PEEK)));
    assert_rc(0, sock_rc(recv(fd[1], buf, sizeof buf, MSG_PEEK)));
    close(fd[1]);

    mempipe *a, *b;
    struct iovec iov[2];
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(-EAGAIN, mempipe_read_peek(b, iov, NULL));
    assert_rc(3, mempipe_poll_write(a, "abc", 3, NULL));
    assert_rc(3, mempipe_poll_write(a, "def", 3, NULL));
    assert_rc(1, mempipe_read_peek(b, iov, NULL));
    assert_int_equal(6, iov[0].iov_len);
    assert_memory_equal(iov[0].iov_base, "abcdef", 6);
    assert_rc(0, mempipe_read_consume(b, 2));
    assert_rc(1, mempipe_read_peek(b, iov, NULL));
    assert_int_equal(4, iov[0].iov_len);
    assert_memory_equal(iov[0].iov_base, "cdef", 4);
    assert_rc(0, mempipe_read_consume(b, 4));
    assert_rc(0, mempipe_shutdown(a));
    assert_rc(0, mempipe_read_peek(b, iov, NULL));
    assert_rc(0, mempipe_read_peek(b, iov, NULL));
    mempipe_close(a);
    mempipe_close(b);
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(2, mempipe_poll_write(a, "ab", 2, NULL));
    mempipe_abort(a);
    assert_rc(-ECONNRESET, mempipe_read_peek(b, iov, NULL));
    assert_rc(-ECONNRESET, mempipe_read_peek(b, iov, NULL));
    mempipe_close(b);
}

/*
 * R65 against SO_RCVLOWAT, as measured on AF_UNIX stream: the kernel keeps
 * the mark (0 becomes 1), poll's POLLIN ignores it (set with 3 bytes under
 * a mark of 5), a MSG_DONTWAIT recv below it returns the bytes there are,
 * and a blocking recv waits for min(mark, len) bytes: with 2 buffered under
 * a mark of 4 a recv of 2 returns at once, one of 64 after SO_RCVTIMEO
 * (1 ms), with the 2. mempipe: readiness honours the mark (the known
 * difference), a poll read and read_timeout(0) below it return the bytes
 * there are, and read_timeout waits for min(mark, len) as the blocking
 * recv does, then returns what there is; a mark of 0 is -EINVAL.
 */
static void test_R65_read_mark_vs_so_rcvlowat_as_measured(void **state)
{
    (void)state;
    char buf[64];
    int fd[2], v = 5;
    socklen_t vl = sizeof v;
    assert_rc(0, socketpair(AF_UNIX, SOCK_STREAM, 0, fd));
    assert_rc(0, setsockopt(fd[1], SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v));
    assert_rc(0, getsockopt(fd[1], SOL_SOCKET, SO_RCVLOWAT, &v, &vl));
    assert_int_equal(5, v);
    assert_rc(3, sock_rc(send(fd[0], "abc", 3, MSG_NOSIGNAL)));
    struct pollfd p = {.fd = fd[1], .events = POLLIN};
    assert_rc(1, poll(&p, 1, 0));
    assert_int_equal(POLLIN, p.revents & POLLIN); /* the mark ignored */
    assert_rc(3, sock_rc(recv(fd[1], buf, sizeof buf, MSG_DONTWAIT)));
    v = 4;
    assert_rc(0, setsockopt(fd[1], SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v));
    struct timeval tv = {0, 1000};
    assert_rc(0, setsockopt(fd[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    assert_rc(2, sock_rc(send(fd[0], "de", 2, MSG_NOSIGNAL)));
    assert_rc(2, sock_rc(recv(fd[1], buf, 2, 0))); /* min(4, 2): at once */
    assert_rc(2, sock_rc(send(fd[0], "fg", 2, MSG_NOSIGNAL)));
    double t0 = tu_now();
    assert_rc(2, sock_rc(recv(fd[1], buf, sizeof buf, 0)));
    assert_true(ms_since(t0) >= 0.99); /* waited for min(4, 64) */
    v = 0;
    assert_rc(0, setsockopt(fd[1], SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v));
    assert_rc(0, getsockopt(fd[1], SOL_SOCKET, SO_RCVLOWAT, &v, &vl));
    assert_int_equal(1, v);
    close(fd[0]);
    close(fd[1]);

    mempipe *a, *b;
    assert_rc(0, mempipe_duplex(64, &a, &b));
    assert_rc(0, mempipe_set_read_lowat(b, 5));
    assert_rc(3, mempipe_poll_write(a, "abc", 3, NULL));
    assert_rc(-EAGAIN, mempipe_poll_readable(b, NULL)); /* the mark kept */
    assert_rc(3, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(0, mempipe_set_read_lowat(b, 4));
    assert_rc(2, mempipe_poll_write(a, "de", 2, NULL));
    assert_rc(2, mempipe_read_timeout(b, buf, sizeof buf, 0));
    assert_rc(2, mempipe_poll_write(a, "fg", 2, NULL));
    assert_rc(2, mempipe_read_timeout(b, buf, 2, 1000)); /* at once */
    assert_rc(2, mempipe_poll_write(a, "hi", 2, NULL));
    t0 = tu_now();
    assert_rc(2, mempipe_read_timeout(b, buf, sizeof buf, 1));
    assert_true(ms_since(t0) >= 0.99);
    assert_memory_equal(buf, "hi", 2);
    assert_rc(-EINVAL, mempipe_set_read_lowat(b, 0));
    mempipe_close(a);
    mempipe_close(b);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* belt and braces: MSG_NOSIGNAL is used */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_R4_R5_R9_R10_R21_random_sequences_match_socketpair),
        cmocka_unit_test(
            test_R59_R60_random_sequences_revents_match_socketpair),
        cmocka_unit_test(test_R73_random_sequences_on_shm_match_socketpair),
        cmocka_unit_test(test_R8_R14_zero_lengths),
        cmocka_unit_test(test_R9_close_with_unread_bytes_is_eof_not_reset),
        cmocka_unit_test(test_R38_R39_reset_as_measured_on_af_unix),
        cmocka_unit_test(test_R51_read_timeout_vs_so_rcvtimeo),
        cmocka_unit_test(test_R53_read_full_vs_msg_waitall),
        cmocka_unit_test(test_R56_shutdown_read_as_measured_on_af_unix),
        cmocka_unit_test(test_R58_unread_vs_siocoutq_as_measured),
        cmocka_unit_test(test_R63_peek_vs_msg_peek_as_measured),
        cmocka_unit_test(test_R65_read_mark_vs_so_rcvlowat_as_measured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
