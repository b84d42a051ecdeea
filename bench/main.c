/* SPDX-License-Identifier: MIT */
/*
 * mempipe_bench: mempipe against pipe(2), socketpair and memcpy.
 *
 *   mempipe_bench [--quick] [--only W1,W3,...] [--runs N]
 *                 [--impl mempipe|pipe|socketpair|all] [--w3-iters N]
 *
 * Prints the machine, one markdown table with every workload, and the
 * issue-6, issue-11 and issue-14 targets checked against the medians. The
 * workloads are defined in threads.c (W1, W1s with their lowat rows, W1c,
 * W1b, W2), single.c (W3, W4 with W4zc, W6), many.c (W5), procs.c (W1x,
 * W2x: two processes) and memcpy.c.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mempipe_bench [options]\n"
            "  --quick          smaller sizes and 1 run (CI smoke)\n"
            "  --only LIST      workloads to run, comma-separated: memcpy, "
            "W1, W1s, W1c, W1b, W2, W3, W4, W5, W6, W1x, W2x\n"
            "  --runs N         runs per row (default 5, --quick 1; max %d)\n"
            "  --impl NAME      mempipe, pipe, socketpair or all (default)\n"
            "  --w3-iters N     W3 pairs per run after a fixed 10000-pair "
            "warm-up (for make callgrind)\n",
            MAX_RUNS);
}

static unsigned parse_only(const char *list)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"memcpy", W_MEMCPY}, {"W1", W_W1},   {"W1s", W_W1S},
                 {"W1c", W_W1C},       {"W1b", W_W1B}, {"W2", W_W2},
                 {"W3", W_W3},         {"W4", W_W4},   {"W5", W_W5},
                 {"W6", W_W6},         {"W1x", W_W1X}, {"W2x", W_W2X}};
    unsigned bits = 0;
    char *copy = strdup(list), *save = NULL;
    if (copy == NULL)
        die("out of memory");
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        while (i < sizeof names / sizeof names[0] &&
               strcasecmp(t, names[i].name) != 0)
            i++;
        if (i == sizeof names / sizeof names[0])
            die("--only: unknown workload '%s'", t);
        bits |= names[i].bit;
    }
    free(copy);
    return bits;
}

static unsigned parse_impl(const char *s)
{
    if (strcmp(s, "all") == 0)
        return (1u << IMPL_COUNT) - 1;
    if (strcmp(s, "mempipe") == 0)
        return 1u << IMPL_MEMPIPE;
    if (strcmp(s, "pipe") == 0)
        return 1u << IMPL_PIPE;
    if (strcmp(s, "socketpair") == 0)
        return 1u << IMPL_SOCKET;
    die("--impl: unknown implementation '%s'", s);
}

static unsigned long long parse_count(const char *opt, const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v == 0)
        die("%s: expected a positive number, got '%s'", opt, s);
    return v;
}

static void parse(int argc, char **argv, struct opts *o)
{
    int runs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--quick") == 0) {
            o->quick = true;
            continue;
        }
        if (v == NULL) {
            usage(stderr);
            die("unknown option or missing value: %s", a);
        }
        i++;
        if (strcmp(a, "--only") == 0) {
            o->only |= parse_only(v);
        } else if (strcmp(a, "--runs") == 0) {
            runs = (int)parse_count(a, v);
            if (runs > MAX_RUNS)
                die("--runs: at most %d", MAX_RUNS);
        } else if (strcmp(a, "--impl") == 0) {
            o->impls = parse_impl(v);
        } else if (strcmp(a, "--w3-iters") == 0) {
            o->w3_iters = parse_count(a, v);
            o->w3_iters_given = true;
        } else {
            usage(stderr);
            die("unknown option: %s", a);
        }
    }
    o->runs = runs > 0 ? runs : o->quick ? 1 : 5;
    if (!o->w3_iters_given)
        o->w3_iters = o->quick ? 200000 : 10000000;
}

int main(int argc, char **argv)
{
    struct opts o = {.impls = (1u << IMPL_COUNT) - 1};
    parse(argc, argv, &o);
    /* Before any pipe exists: every allocation of the library is counted. */
    count_alloc_install();
    double t0 = now_sec();

    printf("# mempipe_bench%s\n\n", o.quick ? " --quick" : "");
    print_machine();
    table_header(&o);

    bool all = o.only == 0;
    /* memcpy runs whenever a bulk row needs its limit. */
    double cached = 0;
    if (all || (o.only & (W_MEMCPY | W_W1 | W_W1S | W_W4 | W_W1X)))
        run_memcpy(&o, &cached);
    double half = cached / 2;
    if (all || (o.only & W_W1))
        run_w1(&o, W1_BULK, half);
    if (all || (o.only & W_W1S))
        run_w1(&o, W1_SMALL, half);
    if (all || (o.only & W_W1C))
        run_w1(&o, W1_SLOW, half);
    if (all || (o.only & W_W1B))
        run_wb(&o);
    if (all || (o.only & W_W2))
        run_w2(&o);
    if (all || (o.only & W_W1X))
        run_w1x(&o, half);
    if (all || (o.only & W_W2X))
        run_w2x(&o);
    if (all || (o.only & W_W3))
        run_w3(&o);
    if (all || (o.only & W_W4))
        run_w4(&o, cached);
    if (all || (o.only & W_W5))
        run_w5(&o);
    if (all || (o.only & W_W6))
        run_w6(&o);

    if (pipe_size_refused > 0)
        table_note("F_SETPIPE_SZ 64 KiB was refused for %lu pipes (per-user "
                   "pipe quota); they kept the default size.",
                   pipe_size_refused);
    table_targets();
    printf("\nTotal time: %.1f s\n", now_sec() - t0);
    return 0;
}
