/* SPDX-License-Identifier: MIT */
/* The TLS tests' shared harness (tlsutil.h). */
#include "tlsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const size_t tls_caps[TLS_NCAPS] = {1, 7, 4096, 65536, SIZE_MAX};

void tls_ends_open(struct tls_ends *e, size_t cap, int nonblock)
{
    e->s = e->c = NULL;
    e->sfd = e->cfd = -1;
    if (cap != TLS_SOCKETPAIR) {
        assert_rc(0, mempipe_duplex(cap, &e->s, &e->c));
        return;
    }
    int fd[2];
    assert_int_equal(0, socketpair(AF_UNIX, SOCK_STREAM, 0, fd));
    e->sfd = fd[0];
    e->cfd = fd[1];
    if (nonblock) {
        assert_int_equal(0, fcntl(e->sfd, F_SETFL, O_NONBLOCK));
        assert_int_equal(0, fcntl(e->cfd, F_SETFL, O_NONBLOCK));
    }
}

const char *tls_kind(size_t cap)
{
    static char buf[48];
    if (cap == TLS_SOCKETPAIR)
        return "socketpair";
    if (cap == SIZE_MAX)
        return "mempipe cap SIZE_MAX";
    snprintf(buf, sizeof buf, "mempipe cap %zu", cap);
    return buf;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DEFAULT_BYTES (1u << 20)
#else
#define DEFAULT_BYTES (8u << 20)
#endif

size_t tls_echo_bytes(size_t cap)
{
    const char *env = getenv("MEMPIPE_TLS_BYTES");
    size_t total = env != NULL ? strtoull(env, NULL, 0) : DEFAULT_BYTES;
    if (cap != TLS_SOCKETPAIR && cap < 64 && getenv("MEMPIPE_TLS_FULL") == NULL)
        return cap * (total / 128);
    return total;
}

size_t tls_chunk(uint64_t *rng, size_t left)
{
    size_t n = 1 + tu_rand(rng) % TLS_MAX_CHUNK;
    return n < left ? n : left;
}

void tls_finish(struct tls_state *st, int rc)
{
    st->err = rc;
    st->phase = rc < 0 ? TLS_FAILED : TLS_DONE;
}

/* A side's part of an outcome. */
static int ended(const struct tls_state *st)
{
    if (st->phase == TLS_DONE || st->phase == TLS_GONE)
        return 0;
    return st->phase == TLS_FAILED ? st->err : TLS_STALLED;
}

void tls_outcome_of(const struct tls_state *c, const struct tls_state *s,
                    const char *version, struct tls_outcome *out)
{
    out->client = ended(c);
    out->server = ended(s);
    out->version = version;
    out->client_got = c->recvd;
    out->server_got = s->recvd;
}

const char *(*tls_errname)(int code);

static const char *name_of(int code)
{
    return code == 0             ? "clean"
           : code == TLS_STALLED ? "stalled"
                                 : tls_errname(code);
}

/* Fails unless got (over cap) equals ref (called what). */
static void assert_same(const char *what, const struct tls_outcome *ref,
                        const struct tls_outcome *got, size_t cap)
{
    const char *rv = ref->version ? ref->version : "none";
    const char *gv = got->version ? got->version : "none";
    if (ref->client == got->client && ref->server == got->server &&
        strcmp(rv, gv) == 0 && ref->client_got == got->client_got &&
        ref->server_got == got->server_got)
        return;
    fail_msg("%s differs from %s:\n"
             "  %s: client %d (%s), server %d (%s), %s, client got %zu, "
             "server got %zu\n"
             "  %s: client %d (%s), server %d (%s), %s, client got %zu, "
             "server got %zu",
             tls_kind(cap), what, what, ref->client, name_of(ref->client),
             ref->server, name_of(ref->server), rv, ref->client_got,
             ref->server_got, tls_kind(cap), got->client, name_of(got->client),
             got->server, name_of(got->server), gv, got->client_got,
             got->server_got);
}

/* want, with TLS_TOTAL byte counts made total. */
static struct tls_outcome wanted(const struct tls_outcome *want, size_t total)
{
    struct tls_outcome w = *want;
    if (w.client_got == TLS_TOTAL)
        w.client_got = total;
    if (w.server_got == TLS_TOTAL)
        w.server_got = total;
    return w;
}

void tls_against_socketpair(tls_scenario run, int variant,
                            const struct tls_outcome *want)
{
    struct tls_outcome ref = {0}, got;
    size_t ref_total = 0;
    for (size_t i = 0; i < TLS_NCAPS; i++) {
        size_t total = tls_echo_bytes(tls_caps[i]);
        if (i == 0 || total != ref_total) {
            struct tls_outcome w = wanted(want, total);
            run(TLS_SOCKETPAIR, total, variant, &ref);
            assert_same("what the test wants", &w, &ref, TLS_SOCKETPAIR);
            ref_total = total;
        }
        run(tls_caps[i], total, variant, &got);
        assert_same("the socketpair", &ref, &got, tls_caps[i]);
    }
}

void tls_drain(mempipe *end, int fd)
{
    char buf[4096];
    if (end != NULL)
        while (mempipe_poll_read(end, buf, sizeof buf, NULL) > 0)
            ;
    else
        while (read(fd, buf, sizeof buf) > 0)
            ;
}

/* Reads exactly len bytes, waiting. */
static void read_exact(mempipe *end, int fd, unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n =
            end != NULL ? mempipe_read(end, buf, len) : read(fd, buf, len);
        if (n <= 0)
            fail_msg("raw read: %zd (%s)", n,
                     n < 0 && end != NULL ? mempipe_strerror((int)n)
                     : n < 0              ? strerror(errno)
                                          : "end of file");
        buf += n;
        len -= (size_t)n;
    }
}

void tls_read_record(mempipe *end, int fd)
{
    unsigned char hdr[5], body[TLS_MAX_CHUNK + 2048];
    read_exact(end, fd, hdr, sizeof hdr);
    size_t len = (size_t)hdr[3] << 8 | hdr[4];
    assert_true(len <= sizeof body);
    read_exact(end, fd, body, len);
}

void tls_send_cut_hello(mempipe *end, int fd)
{
    /* A handshake record of 64 bytes, of which a ClientHello's first 6. */
    static const unsigned char part[] = {22, 3, 1, 0, 64, 1, 0, 0, 60, 3, 3};
    ssize_t n = end != NULL ? mempipe_write(end, part, sizeof part)
                            : write(fd, part, sizeof part);
    assert_int_equal(sizeof part, n); /* blocking: all of it */
}

void tls_close_raw(mempipe **end, int *fd)
{
    mempipe_close(*end);
    *end = NULL;
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* ------------------------------------------------------------------------ */
/* Throughput                                                               */
/* ------------------------------------------------------------------------ */

static int quiet; /* the throughput mode prints its table only */

double tls_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double tls_report(const char *lib, const char *mode, size_t cap, size_t total,
                  double seconds)
{
    double mbs = 2.0 * (double)total / seconds / 1e6;
    if (!quiet)
        printf("# %s %s, %s: %zu bytes each way, %.1f MB/s\n", lib, mode,
               tls_kind(cap), total, mbs);
    return mbs;
}

#define BENCH_MAX_RUNS 15

int tls_bench_runs(void)
{
    const char *env = getenv("MEMPIPE_TLS_BENCH");
    if (env == NULL)
        return 0;
    int n = atoi(env);
    return n < 1 ? 1 : n > BENCH_MAX_RUNS ? BENCH_MAX_RUNS : n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void tls_bench(const char *lib, const char *mode, tls_scenario run,
               const struct tls_outcome *want)
{
    static const size_t links[] = {TLS_SOCKETPAIR, 4096, 65536, SIZE_MAX};
    enum { NLINKS = sizeof links / sizeof links[0] };
    static int header;
    int runs = tls_bench_runs();
    double v[NLINKS][BENCH_MAX_RUNS];
    if (!header++)
        printf("| library | mode | link | bytes each way | MB/s (median of "
               "%d, both ways) | min-max | vs socketpair |\n"
               "|---|---|---|---:|---:|---:|---:|\n",
               runs);
    quiet = 1;
    /* Interleaved, so that a noisy machine slows every link alike. */
    for (int r = 0; r < runs; r++)
        for (int i = 0; i < NLINKS; i++) {
            size_t total = tls_echo_bytes(links[i]);
            struct tls_outcome w = wanted(want, total), got;
            run(links[i], total, 0, &got);
            assert_same("what the test wants", &w, &got, links[i]);
            v[i][r] = got.mbs;
        }
    quiet = 0;
    double ref = 0;
    for (int i = 0; i < NLINKS; i++) {
        qsort(v[i], (size_t)runs, sizeof v[i][0], cmp_double);
        double med = runs % 2 ? v[i][runs / 2]
                              : (v[i][runs / 2 - 1] + v[i][runs / 2]) / 2;
        if (i == 0)
            ref = med;
        printf("| %s | %s | %s | %zu | %.0f | %.0f-%.0f | %.2f |\n", lib, mode,
               tls_kind(links[i]), tls_echo_bytes(links[i]), med, v[i][0],
               v[i][runs - 1], med / ref);
    }
}
