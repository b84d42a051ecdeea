/* SPDX-License-Identifier: MIT */
/*
 * The printed table: one markdown table for the whole invocation, a group
 * of rows at a time (one workload and placement: mempipe and its kernel
 * baselines), then a summary of the issue-6 targets from the same numbers.
 */
#include "bench.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const impl_name[IMPL_COUNT] = {"mempipe", "pipe(2)", "socketpair"};
const char *const placement_name[PL_COUNT] = {"as is", "split", "one core"};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double row_median(const struct row *r)
{
    if (r->n == 0)
        return NAN;
    double s[MAX_RUNS];
    memcpy(s, r->v, sizeof(double) * (size_t)r->n);
    qsort(s, (size_t)r->n, sizeof s[0], cmp_double);
    return r->n % 2 ? s[r->n / 2] : (s[r->n / 2 - 1] + s[r->n / 2]) / 2;
}

double row_min(const struct row *r)
{
    double m = r->v[0];
    for (int i = 1; i < r->n; i++)
        m = r->v[i] < m ? r->v[i] : m;
    return m;
}

double row_max(const struct row *r)
{
    double m = r->v[0];
    for (int i = 1; i < r->n; i++)
        m = r->v[i] > m ? r->v[i] : m;
    return m;
}

void row_add(struct row *r, const struct sample *s)
{
    if (r->n == MAX_RUNS)
        die("more than %d runs", MAX_RUNS);
    r->v[r->n++] = s->value;
    r->allocs += s->allocs;
    r->ops += s->ops;
}

void table_header(const struct opts *o)
{
    printf("\n%d run%s per row: median, min-max spread. \"vs best kernel\": "
           "speed-up over the best of pipe(2)/socketpair in the same group "
           "(> 1 is faster, for every unit). \"vs limit\": share of half the "
           "cache-resident memcpy rate (a pipe copies each byte twice). "
           "allocs/op: allocations through mempipe_set_allocator in the "
           "timed loop after warm-up, per operation (chunk, round trip, "
           "write+read pair or message). Two-thread rows (W1, W1s, W2) are "
           "timed by the wall clock from thread start to join; one-thread "
           "rows by the thread's CPU time (user + system), which time spent "
           "descheduled by other processes does not inflate.\n\n",
           o->runs, o->runs == 1 ? "" : "s");
    printf("| workload | placement | impl | median | min-max | unit "
           "| vs best kernel | vs limit | allocs/op |\n");
    printf("|---|---|---|--:|--:|---|--:|--:|--:|\n");
    fflush(stdout);
}

/* Significant digits that keep 0.412 and 41200 both readable. */
static void fmt_num(char *buf, size_t len, double v)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else if (fabs(v) >= 100)
        snprintf(buf, len, "%.0f", v);
    else if (fabs(v) >= 10)
        snprintf(buf, len, "%.1f", v);
    else
        snprintf(buf, len, "%.3g", v);
}

static bool is_kernel(const struct row *r)
{
    return strcmp(r->impl, impl_name[IMPL_PIPE]) == 0 ||
           strcmp(r->impl, impl_name[IMPL_SOCKET]) == 0;
}

static double speedup(const struct row *r, double v, double base)
{
    return r->sense == HIGHER_BETTER ? v / base : base / v;
}

void table_group(const struct row *rows, int n)
{
    double best = NAN;
    for (int i = 0; i < n; i++) {
        if (!is_kernel(&rows[i]) || rows[i].n == 0)
            continue;
        double m = row_median(&rows[i]);
        bool better = rows[i].sense == HIGHER_BETTER ? m > best : m < best;
        if (isnan(best) || better)
            best = m;
    }
    for (int i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        if (r->n == 0)
            continue;
        double med = row_median(r);
        char m[32], lo[32], hi[32], vs[32] = "-", lim[32] = "-", al[32] = "-";
        fmt_num(m, sizeof m, med);
        fmt_num(lo, sizeof lo, row_min(r));
        fmt_num(hi, sizeof hi, row_max(r));
        if (!isnan(best))
            snprintf(vs, sizeof vs, "%.2fx", speedup(r, med, best));
        if (r->limit > 0)
            snprintf(lim, sizeof lim, "%.2f", med / r->limit);
        if (r->ops > 0)
            snprintf(al, sizeof al, "%.3g", (double)r->allocs / r->ops);
        printf("| %s | %s | %s | %s | %s-%s | %s | %s | %s | %s |\n",
               r->workload, r->placement, r->impl, m, lo, hi, r->unit, vs, lim,
               al);
        table_keep(r);
    }
    fflush(stdout);
}

void table_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("\nNote: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}

/* ---- targets of issue 6, checked from the kept rows ------------------- */

#define KEEP_MAX 128
static struct row kept[KEEP_MAX];
static int nkept;

void table_keep(const struct row *r)
{
    if (nkept < KEEP_MAX)
        kept[nkept++] = *r;
}

static const struct row *find(const char *id, const char *placement,
                              const char *impl)
{
    for (int i = 0; i < nkept; i++)
        if (strcmp(kept[i].id, id) == 0 &&
            strcmp(kept[i].placement, placement) == 0 &&
            strcmp(kept[i].impl, impl) == 0)
            return &kept[i];
    return NULL;
}

static double med_of(const char *id, const char *placement, const char *impl)
{
    const struct row *r = find(id, placement, impl);
    return r != NULL ? row_median(r) : NAN;
}

/* The best kernel median for a workload and placement. */
static double best_kernel(const char *id, const char *placement)
{
    double p = med_of(id, placement, impl_name[IMPL_PIPE]);
    double s = med_of(id, placement, impl_name[IMPL_SOCKET]);
    const struct row *r = find(id, placement, impl_name[IMPL_PIPE]);
    if (r == NULL)
        r = find(id, placement, impl_name[IMPL_SOCKET]);
    if (r == NULL)
        return NAN;
    if (isnan(p) || isnan(s))
        return isnan(p) ? s : p;
    if (r->sense == HIGHER_BETTER)
        return p > s ? p : s;
    return p < s ? p : s;
}

static void target(const char *what, double got, const char *unit, bool ok)
{
    char g[32];
    fmt_num(g, sizeof g, got);
    printf("| %s | %s %s | %s |\n", what, g, unit,
           isnan(got) ? "not run"
           : ok       ? "met"
                      : "MISSED");
}

void table_targets(void)
{
    const char *mp = impl_name[IMPL_MEMPIPE];
    printf("\nTargets (issue 6), from the medians above:\n\n"
           "| target | measured | verdict |\n|---|--:|---|\n");

    double w3 = med_of("W3", "-", mp);
    target("W3 <= 8 ns per write+read pair", w3, "ns", w3 <= 8);
    double w3p = med_of("W3", "-", impl_name[IMPL_PIPE]) / w3;
    target("W3 >= 30x pipe(2)", w3p, "x", w3p >= 30);

    const struct row *w4 = find("W4", "-", mp);
    double w4r = w4 != NULL && w4->limit > 0 ? row_median(w4) / w4->limit : NAN;
    target("W4 >= 0.9x half cached memcpy", w4r, "x", w4r >= 0.9);

    for (int pl = 0; pl < PL_COUNT; pl++) {
        char what[64];
        const char *pn = placement_name[pl];
        double r = med_of("W1", pn, mp) / best_kernel("W1", pn);
        snprintf(what, sizeof what, "W1 >= 1.5x best kernel, %s", pn);
        target(what, r, "x", r >= 1.5);
    }
    double w2 = med_of("W2", placement_name[PL_SPLIT], mp);
    target("W2 split <= 1 us per round trip", w2, "us", w2 <= 1);

    double idle = med_of("W5mem", "-", "mempipe (hook)");
    target("W5 idle pair <= 512 B (hook)", idle, "B", idle <= 512);
    double w5s =
        med_of("W5", "-", mp) / med_of("W5", "-", impl_name[IMPL_SOCKET]);
    target("W5 >= 20x socketpair msgs/s", w5s, "x", w5s >= 20);

    uint64_t allocs = 0, ops = 0;
    for (int i = 0; i < nkept; i++) {
        if (strcmp(kept[i].impl, mp) != 0)
            continue;
        allocs += kept[i].allocs;
        ops += kept[i].ops;
    }
    target("zero allocations per op (all mempipe rows)",
           ops > 0 ? (double)allocs : NAN, "allocs", allocs == 0);
    printf("\nW3 instructions per pair: run `make callgrind` (target <= 60; "
           "perf counters are often unavailable on shared VMs).\n");
}
