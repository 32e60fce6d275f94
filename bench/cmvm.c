/*
 * CMVM solver benchmark: time, internal cost and adder count of both modes on the kernel sizes
 * of issue 4, plus the improved-vs-compat comparison on 30 random kernels.
 *
 * usage: bench_cmvm [--threads N] [--only NAME] [--skip-big] [--random30] [--no-search]
 * Kernels are uniform random integers in [-2^(b-1), 2^(b-1)) from a fixed xorshift seed (the
 * spec's §11.2 setup), inputs (-128, 127, 1), latency 0, default options (wmc, search on).
 * Every solution is checked: stage1(stage0(e_i)) must rebuild row i of W exactly.
 */
#include "cmvm/cmvm.h"
#include "core/alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Solves once; returns 0 on success and fills time/cost/adders. */
static int run(const double *w, uint32_t n, uint32_t m, alk_cmvm_mode mode, unsigned threads,
               bool search, double *ret_time, double *ret_cpu, alk_cmvm_result *ret) {
    alk_cmvm_options o;
    alk_cmvm_options_init(&o);
    o.mode = mode;
    o.threads = threads;
    o.search_all_decompose_dc = search;
    alk_cmvm_problem p = {n, m, w, NULL, NULL};
    alk_diag diag = {{0}};
    double t0 = now_seconds(), c0 = cpu_seconds();
    int rv = alk_cmvm_solve(&p, &o, ret, &diag);
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

int main(int argc, char **argv) {
    unsigned threads = 2;
    const char *only = NULL;
    bool skip_big = false, random30 = false, search = true;
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
        } else {
            fprintf(stderr, "usage: bench_cmvm [--threads N] [--only NAME] [--skip-big] "
                            "[--random30] [--no-search]\n");
            return 2;
        }
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
    } cases[] = {
        {"16x16x8", 16, 16, 8, false},        {"32x32x8", 32, 32, 8, false},
        {"64x64x8", 64, 64, 8, false},        {"128x128x4", 128, 128, 4, false},
        {"16x64x6", 16, 64, 6, false},        {"64x16x6", 64, 16, 6, false},
        {"1024x1024x8", 1024, 1024, 8, true},
    };
    printf("%-12s %-9s %9s %8s %10s %8s %9s %8s\n", "kernel", "mode", "time_s", "cpu_s", "cost",
           "adders", "latency", "rss_MB");
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        if (only != NULL && strcmp(only, cases[c].name) != 0) {
            continue;
        }
        if (skip_big && cases[c].n >= 1024) {
            continue;
        }
        double *w = random_kernel(c + 1, cases[c].n, cases[c].m, cases[c].bits);
        for (int mode = 0; mode < 2; mode++) {
            alk_cmvm_mode md = mode == 0 ? ALK_CMVM_IMPROVED : ALK_CMVM_COMPAT;
            if (md == ALK_CMVM_COMPAT && cases[c].improved_only) {
                continue;
            }
            alk_cmvm_result r;
            double t, cpu;
            if (run(w, cases[c].n, cases[c].m, md, threads, search, &t, &cpu, &r) != 0) {
                return 1;
            }
            printf("%-12s %-9s %9.3f %8.3f %10.0f %8zu %9.3f %8ld\n", cases[c].name,
                   mode == 0 ? "improved" : "compat", t, cpu, r.cost, r.adders, r.latency,
                   peak_rss_mb());
            fflush(stdout);
            alk_cmvm_result_fini(&r);
        }
        free(w);
    }
    return 0;
}
