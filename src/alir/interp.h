/*
 * The bit-exact ALIR interpreter (spec trace-alir.md §4.2, §4.7, §4.8).
 *
 * alk_interp_new validates a program and compiles it into a flat list of steps with every shift,
 * mask and table offset precomputed; alk_interp_run then evaluates samples with int64 arithmetic.
 * Results equal the reference's C++ interpreter on every program it runs; where the reference is
 * undefined (shifts past 63 bits, signed overflow, inputs beyond int64) this interpreter computes
 * the mathematically wrapped two's-complement result instead of crashing.
 *
 * Thread rule: a compiled interpreter is immutable; alk_interp_run may be called from several
 * threads at once.
 */
#ifndef ALK_ALIR_INTERP_H
#define ALK_ALIR_INTERP_H

#include "alir/program.h"

typedef struct alk_interp alk_interp;

/*
 * Validates and compiles `program`, which is borrowed: it must outlive the interpreter (lookup
 * tables are read from it). The caller owns the result (alk_interp_free).
 */
int alk_interp_new(const alk_program *program, alk_interp **ret_interp, alk_diag *diag);

/* Frees `interp`; NULL is a no-op. */
void alk_interp_free(alk_interp *interp);

/*
 * Evaluates `n_samples` samples: `inputs` holds n_samples x n_in doubles (row-major), `outputs`
 * receives n_samples x n_out doubles; both stay owned by the caller. Each read op truncates its
 * input toward -inf on its own grid and wraps it into its format. Returns ALK_EINVAL naming the
 * sample and op for a NaN/infinite input or a lookup index outside its table.
 */
int alk_interp_run(const alk_interp *interp, const double *inputs, size_t n_samples,
                   double *outputs, alk_diag *diag);

/* Number of steps (ops) one sample evaluates. */
size_t alk_interp_n_ops(const alk_interp *interp);

#endif
