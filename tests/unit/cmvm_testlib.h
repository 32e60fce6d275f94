/*
 * Helpers shared by the CMVM and SCM tests: an exact evaluator of solver stages (independent of
 * the solver and of the interpreter), the reference driver's text form of a stage, a small
 * deterministic RNG and the golden-file reader.
 */
#ifndef ALK_CMVM_TESTLIB_H
#define ALK_CMVM_TESTLIB_H

#include "alir/program.h"
#include "core/vec.h"

#include <stdint.h>

/* xorshift64*: reproducible kernels without depending on the C library's rand(). */
uint64_t tl_rand(uint64_t *state);
/* Uniform integer in [lo, hi]. */
int64_t tl_rand_range(uint64_t *state, int64_t lo, int64_t hi);

/*
 * Evaluates a solver stage exactly in double arithmetic (all values are dyadic and small):
 * reads scale input i by 2^inp_shifts[i], adders compute a +- b * 2^shift, outputs apply
 * 2^out_shift and the sign. Ignores the stage's intervals on purpose.
 */
void tl_eval_stage(const alk_program *p, const double *x, double *y);

/* Appends the reference driver's text form of a stage ("stage", shifts, "op" lines) to `out`. */
void tl_format_stage(const alk_program *p, alk_buf *out);

/* Path of a file under tests/data/cmvm (static buffer). */
const char *tl_data_path(const char *name);

/* Reads the file `name` under tests/data/cmvm into `out` (initialised here; the caller
 * finalises it), gunzipped when it is gzip, followed by a NUL byte (not counted in len). */
void tl_read_data(const char *name, alk_buf *out);

#endif
