/*
 * Symbolic replay of a program (internal): the reference's CombLogic.__call__ with
 * quantize=False (spec trace-alir.md §4.3, §4.8). Each buffer slot holds either a traced variable
 * or a plain number, exactly as the Python interpreter holds FVariables or floats, and every op
 * is executed with the tracing operations — which is how solver results are spliced into a
 * trace (SCM, CMVM) and how the retrace pass rebuilds a whole program.
 */
#ifndef ALK_TRACE_REPLAY_H
#define ALK_TRACE_REPLAY_H

#include "trace/comb.h"
#include "trace/fvar.h"

/* A slot: a variable when `var` is set, else the number `num`. */
typedef struct alk__rval {
    alk_fvar *var;
    double num;
} alk__rval;

/*
 * Runs `comb` (borrowed) on the n_in values `in` (borrowed) and writes its n_out results to
 * `out` (caller's array). Errors are the trace's sticky error (also returned).
 */
int alk__comb_replay(alk_trace *t, const alk__comb *comb, const alk__rval *in, alk__rval *out);

/* Executes op `index` of `c` on the slots `buf` (earlier ops) and inputs `in` (may be NULL when
 * the op reads none): the reference's CombLogic.exec_op. */
int alk__exec_op(alk_trace *t, const alk__comb *c, size_t index, const alk__rval *buf,
                 const alk__rval *in, alk__rval *ret);

#endif
