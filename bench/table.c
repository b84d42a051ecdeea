/* SPDX-License-Identifier: MIT */
/*
 * The printed table: one markdown table for the whole invocation, a group
 * of rows at a time (one workload and placement: mempipe and its kernel
 * baselines), then a summary of the issue-6 and issue-11 targets from the
 * same numbers.
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
    r->wakes_w += s->wakes_w;
    r->wakes_r += s->wakes_r;
    r->bytes += s->bytes;
}

void table_header(const struct opts *o)
{
    printf(
        "\n%d run%s per row: median, min-max spread. \"vs best kernel\": "
        "speed-up over the best of pipe(2)/socketpair in the same group "
        "(> 1 is faster, for every unit). \"vs limit\": share of half the "
        "cache-resident memcpy rate (a pipe copies each byte twice; W4zc, "
        "which copies once, of the whole rate). "
        "allocs/op: allocations through mempipe_set_allocator in the "
        "timed loop after warm-up, per operation (chunk, round trip, "
        "write+read pair or message). wakes/MiB: wake-ups of the "
        "writer's + the reader's thread per MiB moved, all runs of the "
        "row (W1, W1s, W1c: the parking wakers the library called, counted on "
        "the ends' parkers; W1x, every impl: the voluntary context switches "
        "of the writer's + the reader's process). Two-thread rows (W1, W1s, "
        "W1c, W2) are timed by the wall clock from thread start to join, "
        "two-process rows (W1x, W2x; mempipe over shm ends, \"" IMPL_SHM_NAME
        "\") from the child's ready to the end; one-thread "
        "rows by the thread's CPU time (user + system), which time spent "
        "descheduled by other processes does not inflate.\n\n",
        o->runs, o->runs == 1 ? "" : "s");
    printf("| workload | placement | impl | median | min-max | unit "
           "| vs best kernel | vs limit | allocs/op | wakes/MiB |\n");
    printf("|---|---|---|--:|--:|---|--:|--:|--:|--:|\n");
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
        char wk[80] = "-";
        fmt_num(m, sizeof m, med);
        fmt_num(lo, sizeof lo, row_min(r));
        fmt_num(hi, sizeof hi, row_max(r));
        if (!isnan(best))
            snprintf(vs, sizeof vs, "%.2fx", speedup(r, med, best));
        if (r->limit > 0)
            snprintf(lim, sizeof lim, "%.2f", med / r->limit);
        if (r->ops > 0)
            snprintf(al, sizeof al, "%.3g", (double)r->allocs / r->ops);
        if (r->bytes > 0) {
            char w[32], rd[32];
            double mib = (double)r->bytes / (double)MIB;
            fmt_num(w, sizeof w, (double)r->wakes_w / mib);
            fmt_num(rd, sizeof rd, (double)r->wakes_r / mib);
            snprintf(wk, sizeof wk, "%s+%s", w, rd);
        }
        printf("| %s | %s | %s | %s | %s-%s | %s | %s | %s | %s | %s |\n",
               r->workload, r->placement, r->impl, m, lo, hi, r->unit, vs, lim,
               al, wk);
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

/* ---- targets of issues 6 and 11, checked from the kept rows ----------- */

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

/* A mempipe row's wake-ups (writer + reader) per MiB, over all its runs. */
static double wakes_per_mib(const char *id, const char *placement)
{
    const struct row *r = find(id, placement, impl_name[IMPL_MEMPIPE]);
    if (r == NULL || r->bytes == 0)
        return NAN;
    return (double)(r->wakes_w + r->wakes_r) / ((double)r->bytes / MIB);
}

/* Issue 11: the zero-copy windows and the write low-water mark. */
static void targets_issue11(void)
{
    const char *mp = impl_name[IMPL_MEMPIPE];
    printf("\nTargets (issue 11), from the medians above:\n\n"
           "| target | measured | verdict |\n|---|--:|---|\n");
    double zc = med_of("W4zc", "-", mp);
    double w4 = zc / med_of("W4", "-", mp);
    target("W4zc >= 1.6x W4 mempipe (copy API)", w4, "x", w4 >= 1.6);
    const struct row *z = find("W4zc", "-", mp);
    double lim = z != NULL && z->limit > 0 ? zc / z->limit : NAN;
    target("W4zc >= 0.8x cached memcpy", lim, "x", lim >= 0.8);
    static const char *const ids[3][2] = {
        {"W1", "W1lowat"}, {"W1s", "W1slowat"}, {"W1c", "W1clowat"}};
    for (int k = 0; k < 3; k++)
        for (int pl = 0; pl < PL_COUNT; pl++) {
            char what[80];
            const char *pn = placement_name[pl];
            double r = med_of(ids[k][1], pn, mp) / med_of(ids[k][0], pn, mp);
            snprintf(what, sizeof what, "%s lowat >= %s throughput, %s",
                     ids[k][0], ids[k][0], pn);
            target(what, r, "x", r >= 1);
            double wk = wakes_per_mib(ids[k][1], pn);
            double w0 = wakes_per_mib(ids[k][0], pn);
            char base[32], unit[48];
            fmt_num(base, sizeof base, w0);
            snprintf(unit, sizeof unit, "vs %s", base);
            snprintf(what, sizeof what,
                     "%s lowat wake-ups/MiB >= 5%% below %s's, %s", ids[k][0],
                     ids[k][0], pn);
            target(what, wk, unit, wk <= 0.95 * w0);
        }
    printf("\nW3 instructions per pair (issue 11): `make callgrind` within "
           "+3 of the figure before the zero-copy windows (153.5).\n");
}

/* The speed-up of a row over the best kernel row of its group (> 1 is
 * faster, for either sense). */
static double vs_best_kernel(const char *id, const char *placement,
                             const char *impl)
{
    const struct row *r = find(id, placement, impl);
    double best = best_kernel(id, placement);
    return r == NULL ? NAN : speedup(r, row_median(r), best);
}

/* Issue 14: a bridge adds at most one copy; shm ends between processes
 * beat the kernel's pipes and sockets between the same processes. */
static void targets_issue14(void)
{
    printf("\nTargets (issue 14), from the medians above:\n\n"
           "| target | measured | verdict |\n|---|--:|---|\n");
    for (int pl = 0; pl < PL_COUNT; pl++) {
        char what[80];
        const char *pn = placement_name[pl];
        double r = med_of("W1b", pn, "mempipe + bridge") /
                   med_of("W1b", pn, impl_name[IMPL_SOCKET]);
        snprintf(what, sizeof what,
                 "W1b through a bridge >= 0.8x socketpair, %s", pn);
        target(what, r, "x", r >= 0.8);
    }
    static const struct {
        const char *id, *label;
        double want;
    } shm[] = {{"W1x", "W1x capacity 64 KiB", 2},
               {"W1x1M", "W1x capacity 1 MiB", 2},
               {"W2x", "W2x", 5}};
    for (size_t k = 0; k < sizeof shm / sizeof shm[0]; k++)
        for (int pl = 0; pl < PL_COUNT; pl++) {
            char what[80];
            const char *pn = placement_name[pl];
            double r = vs_best_kernel(shm[k].id, pn, IMPL_SHM_NAME);
            snprintf(what, sizeof what, "%s >= %gx best kernel, %s",
                     shm[k].label, shm[k].want, pn);
            target(what, r, "x", r >= shm[k].want);
        }
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
        if (strcmp(kept[i].impl, mp) != 0 &&
            strcmp(kept[i].impl, IMPL_SHM_NAME) != 0)
            continue;
        allocs += kept[i].allocs;
        ops += kept[i].ops;
    }
    target("zero allocations per op (all mempipe rows)",
           ops > 0 ? (double)allocs : NAN, "allocs", allocs == 0);
    printf("\nW3 instructions per pair: run `make callgrind` (issue 6: "
           "target <= 60; perf counters are often unavailable on shared "
           "VMs).\n");
    targets_issue11();
    targets_issue14();
}
