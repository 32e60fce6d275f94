/*
 * CMVM solver benchmark: time, internal cost and adder count of both modes on the kernel sizes
 * of issue 4, the improved-vs-compat comparison on 30 random kernels, and the da4ml paper's
 * Table 2 setup next to its published figures (issue 14).
 *
 * usage: bench_cmvm [--threads N] [--only NAME] [--skip-big] [--random30] [--no-search]
 *                   [--repeat N] [--table2 [COUNT]] [--scm [COMPAT_SECONDS]]
 * Kernels are uniform random integers in [-2^(b-1), 2^(b-1)) from a fixed xorshift seed (the
 * spec's §11.2 setup), inputs (-128, 127, 1), latency 0, default options (wmc, search on).
 * 512x512x8 (issue 14: improved no costlier than compat; minutes) runs only with --only.
 * Every solution is checked: stage1(stage0(e_i)) must rebuild row i of W exactly.
 */
#include "cmvm/cmvm.h"
#include "core/alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t next_random(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static double *random_kernel(uint64_t seed, uint32_t n, uint32_t m, int bits) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    double *w = malloc((size_t)n * m * sizeof(double));
    int64_t half = (int64_t)1 << (bits - 1);
    for (size_t i = 0; i < (size_t)n * m; i++) {
        w[i] = (double)((int64_t)(next_random(&s) % (uint64_t)(2 * half)) - half);
    }
    return w;
}

/* Exact evaluation of a solver stage (independent of the solver's intervals). */
static void eval_stage(const alk_program *p, const double *x, double *y, double *buf) {
    for (size_t i = 0; i < p->n_ops; i++) {
        const alk_alir_op *op = &p->ops[i];
        const uint32_t *addr = alk_alir_op_addr(p, op);
        const int64_t *data = alk_alir_op_data(p, op);
        if (op->opcode == ALK_OP_READ) {
            buf[i] = ldexp(x[data[0]], p->inp_shifts[data[0]]);
        } else {
            double b = ldexp(buf[addr[1]], (int)data[0]);
            buf[i] = op->opcode == ALK_OP_ADD ? buf[addr[0]] + b : buf[addr[0]] - b;
        }
    }
    for (uint32_t j = 0; j < p->n_out; j++) {
        int32_t idx = p->out_idxs[j];
        double v = idx < 0 ? 0.0 : ldexp(buf[idx], p->out_shifts[j]);
        y[j] = p->out_negs[j] ? -v : v;
    }
}

static int verify(const alk_cmvm_result *r, const double *w, uint32_t n, uint32_t m) {
    size_t most = r->stage0->n_ops > r->stage1->n_ops ? r->stage0->n_ops : r->stage1->n_ops;
    double *x = calloc(n, sizeof(double)), *mid = calloc(m, sizeof(double));
    double *y = calloc(m, sizeof(double)), *buf = calloc(most + 1, sizeof(double));
    int ok = 1;
    for (uint32_t i = 0; i < n && ok; i++) {
        x[i] = 1.0;
        eval_stage(r->stage0, x, mid, buf);
        eval_stage(r->stage1, mid, y, buf);
        for (uint32_t j = 0; j < m; j++) {
            if (y[j] != w[(size_t)i * m + j]) {
                ok = 0;
            }
        }
        x[i] = 0.0;
    }
    free(x);
    free(mid);
    free(y);
    free(buf);
    return ok;
}

/* CPU seconds (user + system) of the process so far: on a shared machine this is steadier than
 * wall time; wall time on an idle 2-core machine is about cpu / min(threads, tasks). */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static long peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

/* Solves once with `o`; returns 0 on success and fills time/cost/adders. */
static int run_with(const double *w, uint32_t n, uint32_t m, const alk_cmvm_options *o,
                    double *ret_time, double *ret_cpu, alk_cmvm_result *ret) {
    alk_cmvm_problem p = {n, m, w, NULL, NULL};
    alk_diag diag = {{0}};
    double t0 = now_seconds(), c0 = cpu_seconds();
    int rv = alk_cmvm_solve(&p, o, ret, &diag);
    *ret_time = now_seconds() - t0;
    *ret_cpu = cpu_seconds() - c0;
    if (rv != ALK_OK) {
        fprintf(stderr, "solve failed: %s\n", diag.message);
        return 1;
    }
    if (!verify(ret, w, n, m)) {
        fprintf(stderr, "WRONG SOLUTION for %ux%u\n", n, m);
        return 1;
    }
    return 0;
}

/* Solves once with the default options but `mode`, `threads` and `search`. */
static int run(const double *w, uint32_t n, uint32_t m, alk_cmvm_mode mode, unsigned threads,
               bool search, double *ret_time, double *ret_cpu, alk_cmvm_result *ret) {
    alk_cmvm_options o;
    alk_cmvm_options_init(&o);
    o.mode = mode;
    o.threads = threads;
    o.search_all_decompose_dc = search;
    return run_with(w, n, m, &o, ret_time, ret_cpu, ret);
}

/* Adder depth of one stage's ops, given the depth of each stage input; writes op depths. */
static int stage_depths(const alk_program *p, const int *input_depth, int *depth) {
    int most = 0;
    for (size_t i = 0; i < p->n_ops; i++) {
        const alk_alir_op *op = &p->ops[i];
        const uint32_t *addr = alk_alir_op_addr(p, op);
        if (op->opcode == ALK_OP_READ) {
            depth[i] = input_depth[alk_alir_op_data(p, op)[0]];
        } else {
            int a = depth[addr[0]], b = depth[addr[1]];
            depth[i] = (a > b ? a : b) + 1;
        }
    }
    for (uint32_t j = 0; j < p->n_out; j++) {
        int d = p->out_idxs[j] < 0 ? 0 : depth[p->out_idxs[j]];
        most = d > most ? d : most;
    }
    return most;
}

/* The largest number of adders on a path from an input to an output of both stages (the
 * paper's "adder depth": da4ml's latency with unit adder delays). */
static int adder_depth(const alk_cmvm_result *r) {
    size_t most_ops = r->stage0->n_ops > r->stage1->n_ops ? r->stage0->n_ops : r->stage1->n_ops;
    int *depth = calloc(most_ops + 1, sizeof(int));
    int *inputs = calloc((size_t)r->stage0->n_in + r->stage1->n_in + 1, sizeof(int));
    int *middle = inputs + r->stage0->n_in;
    (void)stage_depths(r->stage0, inputs, depth);
    for (uint32_t j = 0; j < r->stage0->n_out; j++) {
        middle[j] = r->stage0->out_idxs[j] < 0 ? 0 : depth[r->stage0->out_idxs[j]];
    }
    int d = stage_depths(r->stage1, middle, depth);
    free(depth);
    free(inputs);
    return d;
}

/*
 * The da4ml paper's Table 2 (arXiv 2507.04535; figures from the authors' artifact notebook,
 * calad0i/da4ml-ae table2.ipynb, spec cmvm.md §13): mean adders, mean adder depth and ms per
 * matrix of da4ml and of H_cmvm on random N x N matrices of integers 129..255, method wmc, no
 * search, per delay budget. H_cmvm's times were read off a plot (other hardware); it has none
 * for dc = 2 (NAN).
 */
static const int table2_dcs[3] = {-1, 0, 2};
static const struct {
    uint32_t n;
    double da4ml[3][3]; /* per dc: adders, depth, ms */
    double hcmvm[3][3];
} table2_published[] = {
    {2,
     {{8.6, 3.3, 0.1}, {9.1, 3.1, 0.1}, {8.7, 3.3, 0.1}},
     {{8.2, 4.4, 10.0}, {8.8, 3.1, 10.0}, {8.2, 3.7, NAN}}},
    {4,
     {{29.2, 6.0, 0.3}, {34.3, 4.1, 0.4}, {29.6, 5.9, 0.3}},
     {{27.6, 7.8, 475.5}, {32.1, 4.1, 468.7}, {28.1, 5.7, NAN}}},
    {8,
     {{98.1, 9.3, 1.5}, {124.9, 5.1, 2.4}, {101.8, 7.0, 1.5}},
     {{96.3, 11.9, 15169.1}, {117.2, 5.1, 17161.4}, {99.5, 7.1, NAN}}},
    {12,
     {{203.5, 11.7, 5.0}, {263.5, 6.0, 8.9}, {214.6, 8.0, 5.4}},
     {{200.4, 14.6, 170125.4}, {241.6, 6.0, 170125.4}, {206.8, 8.0, NAN}}},
    {16,
     {{343.2, 12.9, 13.6}, {446.9, 6.0, 24.2}, {357.3, 8.0, 15.4}},
     {{338.3, 16.3, 1207722.7}, {423.2, 6.0, 985586.7}, {353.3, 8.0, NAN}}},
};

/* A Table 2 matrix: floor(u * 127) + 129 for uniform u in [0, 1), as the notebook draws them. */
static void table2_matrix(uint64_t *state, uint32_t n, double *w) {
    for (size_t i = 0; i < (size_t)n * n; i++) {
        w[i] = 129.0 + (double)(next_random(state) % 127);
    }
}

/*
 * Runs `count` matrices per N and budget in both modes, one thread, no search (the paper's
 * setup), and prints the means beside the published figures. Fails if improved is ever worse
 * than compat on cost or latency.
 */
static int table2(int count) {
    int worse = 0;
    printf("Table 2 setup: %d random NxN matrices of integers 129..255 per row, wmc, no search, "
           "1 thread\n",
           count);
    printf("%3s %3s | %-8s %8s %6s %8s | %8s %6s %8s | %8s %6s %8s | %8s %6s %10s\n", "dc", "N", "",
           "adders", "depth", "ms", "compat", "depth", "ms", "da4ml", "depth", "ms", "H_cmvm",
           "depth", "ms");
    for (int d = 0; d < 3; d++) {
        for (size_t t = 0; t < sizeof(table2_published) / sizeof(table2_published[0]); t++) {
            uint32_t n = table2_published[t].n;
            double sum[2][3] = {{0}};
            uint64_t state = 0x7AB1E2ull + n * 1000003ull + (uint64_t)d;
            double *w = malloc((size_t)n * n * sizeof(double));
            for (int k = 0; k < count; k++) {
                table2_matrix(&state, n, w);
                double cost[2], latency[2];
                for (int mode = 0; mode < 2; mode++) {
                    alk_cmvm_options o;
                    alk_cmvm_options_init(&o);
                    o.mode = mode == 0 ? ALK_CMVM_IMPROVED : ALK_CMVM_COMPAT;
                    o.threads = 1;
                    o.search_all_decompose_dc = false;
                    o.hard_dc = table2_dcs[d];
                    alk_cmvm_result r;
                    double wall, cpu;
                    if (run_with(w, n, n, &o, &wall, &cpu, &r) != 0) {
                        return 1;
                    }
                    sum[mode][0] += (double)r.adders;
                    sum[mode][1] += adder_depth(&r);
                    sum[mode][2] += cpu * 1e3;
                    cost[mode] = r.cost;
                    latency[mode] = r.latency;
                    alk_cmvm_result_fini(&r);
                }
                if (cost[0] > cost[1] || latency[0] > latency[1]) {
                    worse++;
                }
            }
            free(w);
            const double *da = table2_published[t].da4ml[d], *hc = table2_published[t].hcmvm[d];
            printf("%3d %3u | %-8s %8.1f %6.2f %8.3f | %8.1f %6.2f %8.3f | %8.1f %6.1f %8.1f | "
                   "%8.1f %6.1f %10.1f\n",
                   table2_dcs[d], n, "improved", sum[0][0] / count, sum[0][1] / count,
                   sum[0][2] / count, sum[1][0] / count, sum[1][1] / count, sum[1][2] / count,
                   da[0], da[1], da[2], hc[0], hc[1], hc[2]);
            fflush(stdout);
        }
    }
    printf("improved worse than compat (cost or latency) on %d problems\n", worse);
    return worse == 0 ? 0 : 1;
}

/* Sets *flag after `seconds` unless stopped first (a compat SCM run's deadline). */
typedef struct deadline {
    atomic_bool flag;
    atomic_bool stop;
    double seconds;
} deadline;

static void *deadline_thread(void *arg) {
    deadline *d = arg;
    double end = now_seconds() + d->seconds;
    while (!atomic_load(&d->stop) && now_seconds() < end) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&d->flag, true);
    return NULL;
}

/*
 * Issue 14's SCM constants: 1/3, 1/9, 0.1, 0.7 and 100 random float64 constants in (0, 1)
 * (test_scm's), improved mode with the tracer's k = 2, one thread: adders and ms each; with
 * compat_seconds > 0 compat runs too, given up after that long, and improved must not need
 * more adders where it finishes.
 */
static int scm_bench(double compat_seconds) {
    static const double named[4] = {1.0 / 3.0, 1.0 / 9.0, 0.1, 0.7};
    uint64_t s = 0x5C3;
    double sum_adders = 0.0, sum_ms = 0.0, max_ms = 0.0;
    int worse = 0;
    printf("%-22s %7s %9s | %s\n", "constant", "adders", "ms", "compat");
    for (int i = 0; i < 104; i++) {
        double c = i < 4 ? named[i] : (double)((next_random(&s) >> 11) | 1) * 0x1p-53;
        alk_scm_options o;
        alk_scm_options_init(&o);
        o.k = 2;
        alk_program *p = NULL;
        alk_diag diag = {{0}};
        double t0 = cpu_seconds();
        if (alk_scm_solve(c, &o, &p, &diag) != ALK_OK) {
            fprintf(stderr, "scm %.17g: %s\n", c, diag.message);
            return 1;
        }
        double ms = (cpu_seconds() - t0) * 1e3;
        size_t adders = alk_cmvm_count_adders(p);
        alk_program_free(p);
        char compat[600] = "-";
        if (compat_seconds > 0) {
            deadline d = {.seconds = compat_seconds};
            pthread_t timer;
            (void)pthread_create(&timer, NULL, deadline_thread, &d);
            o.mode = ALK_CMVM_COMPAT;
            o.cancel = &d.flag;
            double c0 = now_seconds();
            int rv = alk_scm_solve(c, &o, &p, &diag);
            atomic_store(&d.stop, true);
            (void)pthread_join(timer, NULL);
            if (rv == ALK_OK) {
                size_t ca = alk_cmvm_count_adders(p);
                worse += adders > ca;
                snprintf(compat, sizeof(compat), "%zu adders in %.1f s", ca, now_seconds() - c0);
                alk_program_free(p);
            } else {
                snprintf(compat, sizeof(compat), "%s",
                         rv == ALK_ECANCELED ? "gave up" : diag.message);
            }
        }
        if (i < 4 || compat_seconds > 0) {
            printf("%-22.17g %7zu %9.2f | %s\n", c, adders, ms, compat);
        }
        if (i >= 4) {
            sum_adders += (double)adders;
            sum_ms += ms;
        }
        max_ms = ms > max_ms ? ms : max_ms;
    }
    printf("100 random constants: mean %.2f adders, mean %.1f ms; slowest of all 104: %.1f ms\n",
           sum_adders / 100.0, sum_ms / 100.0, max_ms);
    if (compat_seconds > 0) {
        printf("improved needs more adders than a finished compat run on %d constants\n", worse);
    }
    return worse == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    unsigned threads = 2;
    const char *only = NULL;
    bool skip_big = false, random30 = false, search = true;
    int table2_count = 0, repeat = 1;
    double scm_compat = -1.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--skip-big") == 0) {
            skip_big = true;
        } else if (strcmp(argv[i], "--random30") == 0) {
            random30 = true;
        } else if (strcmp(argv[i], "--no-search") == 0) {
            search = false;
        } else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            repeat = atoi(argv[++i]);
            repeat = repeat < 1 ? 1 : repeat;
        } else if (strcmp(argv[i], "--scm") == 0) {
            scm_compat = 0.0;
            if (i + 1 < argc && argv[i + 1][0] != '-') {
                scm_compat = atof(argv[++i]);
            }
        } else if (strcmp(argv[i], "--table2") == 0) {
            table2_count = 200;
            if (i + 1 < argc && argv[i + 1][0] != '-') {
                table2_count = atoi(argv[++i]);
            }
        } else {
            fprintf(stderr, "usage: bench_cmvm [--threads N] [--only NAME] [--skip-big] "
                            "[--random30] [--no-search] [--repeat N] [--table2 [COUNT]] "
                            "[--scm [COMPAT_SECONDS]]\n");
            return 2;
        }
    }
    if (table2_count > 0) {
        return table2(table2_count);
    }
    if (scm_compat >= 0.0) {
        return scm_bench(scm_compat);
    }
    if (random30) {
        /* Improved vs compat on 30 random kernels, sizes 8-64, 4-8 bits. */
        uint64_t s = 2026;
        double sum_change = 0.0, worst = -1e9, t_compat = 0.0, t_improved = 0.0;
        int worse = 0;
        printf("%-12s %10s %10s %8s %9s %9s\n", "kernel", "compat", "improved", "change",
               "t_compat", "t_impr");
        for (int k = 0; k < 30; k++) {
            uint32_t n = 8 + (uint32_t)(next_random(&s) % 57);
            uint32_t m = 8 + (uint32_t)(next_random(&s) % 57);
            int bits = 4 + (int)(next_random(&s) % 5);
            double *w = random_kernel(5000 + (uint64_t)k, n, m, bits);
            alk_cmvm_result rc, ri;
            double tc, ti, cc, ci;
            if (run(w, n, m, ALK_CMVM_COMPAT, threads, search, &tc, &cc, &rc) != 0 ||
                run(w, n, m, ALK_CMVM_IMPROVED, threads, search, &ti, &ci, &ri) != 0) {
                return 1;
            }
            double change = (ri.cost - rc.cost) / rc.cost * 100.0;
            sum_change += change;
            worst = change > worst ? change : worst;
            worse += ri.cost > rc.cost;
            t_compat += tc;
            t_improved += ti;
            char name[32];
            snprintf(name, sizeof(name), "%ux%u/%d", n, m, bits);
            printf("%-12s %10.0f %10.0f %7.2f%% %8.3fs %8.3fs\n", name, rc.cost, ri.cost, change,
                   tc, ti);
            alk_cmvm_result_fini(&rc);
            alk_cmvm_result_fini(&ri);
            free(w);
        }
        printf("mean cost change %.2f%%, worst %.2f%%, improved worse on %d of 30; time compat "
               "%.2fs, improved %.2fs\n",
               sum_change / 30.0, worst, worse, t_compat, t_improved);
        return worse == 0 ? 0 : 1;
    }
    static const struct {
        const char *name;
        uint32_t n, m;
        int bits;
        bool improved_only;
        bool by_name; /* only with --only NAME (minutes) */
    } cases[] = {
        {"16x16x8", 16, 16, 8, false, false},        {"32x32x8", 32, 32, 8, false, false},
        {"64x64x8", 64, 64, 8, false, false},        {"128x128x4", 128, 128, 4, false, false},
        {"16x64x6", 16, 64, 6, false, false},        {"64x16x6", 64, 16, 6, false, false},
        {"1024x1024x8", 1024, 1024, 8, true, false}, {"512x512x8", 512, 512, 8, false, true},
    };
    printf("%-12s %-9s %9s %8s %10s %8s %9s %8s\n", "kernel", "mode", "time_s", "cpu_s", "cost",
           "adders", "latency", "rss_MB");
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        if (only != NULL ? strcmp(only, cases[c].name) != 0 : cases[c].by_name) {
            continue;
        }
        if (skip_big && cases[c].n >= 1024) {
            continue;
        }
        double *w = random_kernel(c + 1, cases[c].n, cases[c].m, cases[c].bits);
        /* The modes alternate over the repeats; the least time of each is kept (on a shared
         * machine the least is the least disturbed). */
        double best_t[2] = {INFINITY, INFINITY}, best_cpu[2] = {INFINITY, INFINITY};
        alk_cmvm_result r[2] = {{0}};
        for (int k = 0; k < repeat; k++) {
            for (int mode = 0; mode < 2; mode++) {
                alk_cmvm_mode md = mode == 0 ? ALK_CMVM_IMPROVED : ALK_CMVM_COMPAT;
                if (md == ALK_CMVM_COMPAT && cases[c].improved_only) {
                    continue;
                }
                double t, cpu;
                alk_cmvm_result_fini(&r[mode]);
                if (run(w, cases[c].n, cases[c].m, md, threads, search, &t, &cpu, &r[mode]) != 0) {
                    return 1;
                }
                best_t[mode] = t < best_t[mode] ? t : best_t[mode];
                best_cpu[mode] = cpu < best_cpu[mode] ? cpu : best_cpu[mode];
            }
        }
        for (int mode = 0; mode < 2; mode++) {
            if (r[mode].stage0 == NULL) {
                continue;
            }
            printf("%-12s %-9s %9.3f %8.3f %10.0f %8zu %9.3f %8ld\n", cases[c].name,
                   mode == 0 ? "improved" : "compat", best_t[mode], best_cpu[mode], r[mode].cost,
                   r[mode].adders, r[mode].latency, peak_rss_mb());
            alk_cmvm_result_fini(&r[mode]);
        }
        fflush(stdout);
        free(w);
    }
    return 0;
}
