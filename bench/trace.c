/*
 * Tracer benchmark: traced variables per second, and the time to trace + emit (optimise, write
 * the ALIR program) two models on one core:
 *   * the reference's example model (spec trace-alir.md §5) at (16, 4);
 *   * a 16-64-32-32-5 dense network with 8-bit weights (seeded), ReLU and 8-bit activations:
 *     x -> quantize(1, 3, 4) -> [@ W + b -> relu -> quantize(0, 4, 4)] x3 -> @ W4 + b4.
 * Each model is traced REPEAT times in a fresh context; the best run is reported. The CMVM
 * solver runs in the conversions' default mode (improved; --compat for the reference's) without
 * the per-job cache's help across runs (a new context each time), but repeated identical
 * problems inside one job are answered from its cache.
 *
 * usage: bench_trace [REPEAT] [--compat | --improved] [--no-cache]
 */
#include "trace/emit.h"
#include "core/alloc.h"
#include "trace/example.h"
#include "trace/fvarray.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct result {
    double trace_s;  /* building the graph */
    double emit_s;   /* tracer + passes + program */
    double solver_s; /* inside the CMVM/SCM solvers (part of trace_s) */
    size_t n_vars;
    size_t n_ops;
    double cost;
} result;

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* One dense layer's weights and biases: 8-bit integers scaled by 2^-6 (so |w| < 2). */
static alk_fva *layer_weights(alk_trace *t, size_t n_in, size_t n_out) {
    double *w = malloc(n_in * n_out * sizeof(double));
    for (size_t j = 0; j < n_in * n_out; j++) {
        w[j] = (double)((int)(next_random() % 256) - 128) / 64.0;
    }
    size_t shape[2] = {n_in, n_out};
    alk_fva *a = alk_fva_numbers(t, 2, shape, w);
    free(w);
    return a;
}

static alk_fva *layer_bias(alk_trace *t, size_t n_out) {
    double *b = malloc(n_out * sizeof(double));
    for (size_t j = 0; j < n_out; j++) {
        b[j] = (double)((int)(next_random() % 256) - 128) / 16.0;
    }
    alk_fva *a = alk_fva_numbers(t, 1, &n_out, b);
    free(b);
    return a;
}

/* Emits `out` as a function of `x`, fills *r with the times since `t0` and the program's size,
 * and frees `t` (owned by the caller until then). */
static int emit_and_measure(alk_trace *t, const char *name, alk_fva *x, alk_fva *out, double t0,
                            result *r) {
    double t1 = now_seconds();
    alk_program *p = NULL;
    int rv = alk_fva_trace(t, &x, 1, &out, 1, true, &p);
    double t2 = now_seconds();
    if (rv != ALK_OK) {
        fprintf(stderr, "bench_trace: %s: %s\n", name, alk_trace_message(t));
        alk_trace_free(t);
        return 1;
    }
    *r = (result){t1 - t0,
                  t2 - t1,
                  alk_trace_solver_seconds(t),
                  alk_trace_n_vars(t),
                  p->n_ops,
                  alk_program_cost(p)};
    alk_program_free(p);
    alk_trace_free(t);
    return 0;
}

static int run_dense(const alk_trace_config *config, result *r) {
    static const size_t widths[5] = {16, 64, 32, 32, 5};
    rng_state = 0x2545F4914F6CDD1Dull;
    alk_trace *t = NULL;
    if (alk_trace_new(config, &t) != ALK_OK) {
        return 1;
    }
    double t0 = now_seconds();
    alk_fva *x = alk_fva_input(t, 1, &widths[0]);
    alk_fva *h = alk_fva_quantize(t, x, 1, 3, 4, ALK_WRAP, ALK_TRN);
    for (int l = 0; l < 4; l++) {
        alk_fva *w = layer_weights(t, widths[l], widths[l + 1]);
        alk_fva *b = layer_bias(t, widths[l + 1]);
        h = alk_fva_binary(t, ALK_ADD, alk_fva_matmul(t, h, w), b);
        if (l < 3) {
            h = alk_fva_quantize(t, alk_fva_relu(t, h, ALK_FV_NONE, ALK_FV_NONE, ALK_TRN), 0, 4, 4,
                                 ALK_WRAP, ALK_TRN);
        }
    }
    return emit_and_measure(t, "dense", x, h, t0, r);
}

static int run_example(const alk_trace_config *config, result *r) {
    size_t shape[2] = {16, 4};
    alk_trace *t = NULL;
    if (alk_trace_new(config, &t) != ALK_OK) {
        return 1;
    }
    double t0 = now_seconds();
    alk_fva *x = alk_fva_input(t, 2, shape);
    alk_fva *out = alk_example_operation(t, x);
    return emit_and_measure(t, "example", x, out, t0, r);
}

static void report(const char *name, int (*run)(const alk_trace_config *, result *),
                   const alk_trace_config *config, int repeat) {
    result best = {0};
    double best_total = 1e30;
    for (int k = 0; k < repeat; k++) {
        result r;
        if (run(config, &r) != 0) {
            exit(1);
        }
        if (r.trace_s + r.emit_s < best_total) {
            best_total = r.trace_s + r.emit_s;
            best = r;
        }
    }
    double tracer_s = best.trace_s - best.solver_s;
    printf("%s: %zu ops, cost %.1f\n"
           "  trace %.2f ms (of which solvers %.2f ms), emit+optimise %.2f ms, total %.2f ms\n"
           "  %zu variables: %.2f M vars/s traced (solver time excluded); tracer alone "
           "(total - solvers) %.2f ms\n",
           name, best.n_ops, best.cost, best.trace_s * 1e3, best.solver_s * 1e3, best.emit_s * 1e3,
           best_total * 1e3, best.n_vars, tracer_s > 0 ? (double)best.n_vars / tracer_s / 1e6 : 0.0,
           (best_total - best.solver_s) * 1e3);
}

int main(int argc, char **argv) {
    int repeat = 5;
    alk_trace_config config;
    alk_trace_config_init(&config);
    for (int j = 1; j < argc; j++) {
        if (strcmp(argv[j], "--compat") == 0) {
            config.solver.cmvm.mode = ALK_CMVM_COMPAT;
        } else if (strcmp(argv[j], "--improved") == 0) {
            config.solver.cmvm.mode = ALK_CMVM_IMPROVED;
        } else if (strcmp(argv[j], "--no-cache") == 0) {
            config.solver.use_cache = false;
        } else {
            repeat = atoi(argv[j]);
        }
    }
    if (repeat < 1) {
        repeat = 1;
    }
    printf("mode %s, cache %s, best of %d, 1 solver thread\n",
           config.solver.cmvm.mode == ALK_CMVM_COMPAT ? "compat" : "improved",
           config.solver.use_cache ? "on" : "off", repeat);
    report("example (16, 4)", run_example, &config, repeat);
    report("dense 16-64-32-32-5", run_dense, &config, repeat);
    return 0;
}
