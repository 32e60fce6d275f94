/*
 * libFuzzer harness for the ALIR JSON reader (alk_alir_parse: spec versions 2, 3 and 4, plain or
 * gzip, with validation). A document that parses must survive the rest of the path a user's file
 * takes: it is written back as version-4 JSON, which must parse again to an equal program and
 * write the same bytes (the writer and the reader agree), and, when it is small, it is compiled
 * and run by the interpreter on a few samples (NaN-free inputs never crash it).
 *
 * Built with clang -fsanitize=fuzzer when clang is available (tests/fuzz/meson.build); the
 * corpus-replay runner (replay.c) calls the same entry point from `meson test` in every build.
 */
#include "alir/interp.h"
#include "alir/json.h"
#include "core/alloc.h"
#include "core/vec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_RUN_OPS = 4096, MAX_RUN_IO = 1024, SAMPLES = 4 };

/* Runs `program` on a few deterministic samples (zeros, ones, alternating signs). */
static void run_samples(const alk_program *program) {
    if (program->n_ops > MAX_RUN_OPS || program->n_in > MAX_RUN_IO || program->n_out > MAX_RUN_IO) {
        return;
    }
    alk_interp *interp = NULL;
    alk_diag diag = {{0}};
    if (alk_interp_new(program, &interp, &diag) != ALK_OK) {
        return;
    }
    double *in = alk_calloc((size_t)SAMPLES * program->n_in + 1, sizeof(double));
    double *out = alk_calloc((size_t)SAMPLES * program->n_out + 1, sizeof(double));
    if (in != NULL && out != NULL) {
        for (size_t s = 0; s < SAMPLES; s++) {
            for (size_t i = 0; i < program->n_in; i++) {
                in[s * program->n_in + i] = s == 0 ? 0.0 : (s == 1 ? 1.0 : (i % 2 ? -3.5 : 7.25));
            }
        }
        (void)alk_interp_run(interp, in, SAMPLES, out, &diag);
    }
    alk_free(in);
    alk_free(out);
    alk_interp_free(interp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    alk_program *program = NULL;
    alk_diag diag = {{0}};
    if (alk_alir_parse(data, size, &program, &diag) != ALK_OK) {
        return 0;
    }
    alk_buf first;
    alk_buf second;
    alk_buf_init(&first);
    alk_buf_init(&second);
    alk_program *again = NULL;
    if (alk_alir_to_json(program, &first) == ALK_OK) {
        if (alk_alir_parse(first.data, first.len, &again, &diag) != ALK_OK ||
            !alk_program_equal(program, again)) {
            abort(); /* the writer produced what the reader refuses, or reads differently */
        }
        if (alk_alir_to_json(again, &second) == ALK_OK &&
            (second.len != first.len || memcmp(first.data, second.data, first.len) != 0)) {
            abort();
        }
    }
    run_samples(program);
    alk_program_free(again);
    alk_program_free(program);
    alk_buf_fini(&first);
    alk_buf_fini(&second);
    return 0;
}
