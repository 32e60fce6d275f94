/*
 * The tracer (spec trace-alir.md §3): turns the graph of traced variables between given inputs
 * and outputs into an ALIR program, optionally optimised with the reference's default passes
 * (canonicalisation, dead-code and common-subexpression elimination, null-quantizer removal,
 * the retrace loop, the surrogate cost model and the final orderings).
 *
 * Thread rule: runs on the thread that owns the trace context.
 */
#ifndef ALK_TRACE_EMIT_H
#define ALK_TRACE_EMIT_H

#include "alir/program.h"
#include "trace/fvar.h"

/*
 * Traces `outputs` (n_out references, borrowed) as functions of `inputs` (n_in references,
 * borrowed; each must have a positive factor). With `optimize`, runs the reference's optimize()
 * (spec §3.7). On success the caller owns *ret_program. Errors (a variable not derived from the
 * inputs, a pass that does not converge, ALK_ELIMIT for a value wider than ALIR's 64 bits, out
 * of memory) are also recorded in the context.
 */
int alk_trace_emit(alk_trace *t, alk_fvar *const *inputs, size_t n_in, alk_fvar *const *outputs,
                   size_t n_out, bool optimize, alk_program **ret_program);

#endif
