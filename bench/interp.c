/*
 * Interpreter benchmark: samples/s and op-evaluations/s of alk_interp_run on one core.
 *
 * usage: bench_interp [MODEL.json[.gz]] [SAMPLES]
 * The default model is the largest ALIR fixture (shared/fixtures/alir/testdata_comb_upgraded.json,
 * 627 ops), found through $ALK_FIXTURES or ../shared/fixtures from the source root. Inputs are
 * drawn uniformly inside each input's interval (so lookups stay in their tables).
 */
#include "alir/interp.h"
#include "alir/json.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The interval each input is read with (the last read op of it). */
static void input_ranges(const alk_program *program, alk_qint *ranges) {
    for (uint32_t n = 0; n < program->n_in; n++) {
        ranges[n] = (alk_qint){0, 0, 1};
    }
    for (size_t i = 0; i < program->n_ops; i++) {
        const alk_alir_op *op = &program->ops[i];
        if (op->opcode == ALK_OP_READ) {
            ranges[alk_alir_op_data(program, op)[0]] = op->qint;
        }
    }
}

int main(int argc, char **argv) {
    char default_path[4096];
    const char *fixtures = getenv("ALK_FIXTURES");
    (void)snprintf(default_path, sizeof(default_path), "%s/alir/testdata_comb_upgraded.json",
                   fixtures != NULL ? fixtures : ALK_DEFAULT_FIXTURES);
    const char *path = argc > 1 ? argv[1] : default_path;
    size_t n_samples = argc > 2 ? strtoul(argv[2], NULL, 10) : 200000;

    alk_diag diag = {{0}};
    alk_program *program = NULL;
    alk_interp *interp = NULL;
    if (alk_alir_read_file(path, &program, &diag) != ALK_OK ||
        alk_interp_new(program, &interp, &diag) != ALK_OK) {
        fprintf(stderr, "bench_interp: %s\n", diag.message);
        return 1;
    }
    alk_qint *ranges = alk_calloc(program->n_in, sizeof(alk_qint));
    double *inputs = alk_calloc(n_samples * program->n_in, sizeof(double));
    double *outputs = alk_calloc(n_samples * program->n_out, sizeof(double));
    if (ranges == NULL || inputs == NULL || outputs == NULL) {
        fprintf(stderr, "bench_interp: out of memory\n");
        return 1;
    }
    input_ranges(program, ranges);
    srand(12345);
    for (size_t s = 0; s < n_samples; s++) {
        for (uint32_t n = 0; n < program->n_in; n++) {
            double u = (double)rand() / RAND_MAX;
            inputs[s * program->n_in + n] = ranges[n].min + u * (ranges[n].max - ranges[n].min);
        }
    }
    double best = 1e300;
    for (int round = 0; round < 5; round++) {
        double t0 = now_seconds();
        if (alk_interp_run(interp, inputs, n_samples, outputs, &diag) != ALK_OK) {
            fprintf(stderr, "bench_interp: %s\n", diag.message);
            return 1;
        }
        double elapsed = now_seconds() - t0;
        best = elapsed < best ? elapsed : best;
    }
    double ops = (double)alk_interp_n_ops(interp) * (double)n_samples;
    printf("model: %s (%zu ops, %u inputs, %u outputs)\n", path, program->n_ops, program->n_in,
           program->n_out);
    printf("samples: %zu, best of 5: %.3f s\n", n_samples, best);
    printf("samples/s: %.0f\n", (double)n_samples / best);
    printf("op-evaluations/s: %.0f (%.1f million)\n", ops / best, ops / best / 1e6);
    alk_free(ranges);
    alk_free(inputs);
    alk_free(outputs);
    alk_interp_free(interp);
    alk_program_free(program);
    return 0;
}
