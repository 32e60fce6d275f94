/*
 * Private structures of src/trace (shared by its .c files; not for plugins, and not included
 * outside src/trace).
 *
 * A node (`alk_fnode`) is one future ALIR op; a reference (`alk_fvar`) is a node seen through a
 * power-of-two factor, with its own affine interval. The reference's FVariable objects map onto
 * references; its UUID identity maps onto node pointers (spec trace-alir.md §1.3).
 *
 * Numbers follow Python's semantics: doubles for intervals, float32 inside lsb/clog2 (core/fxp.h),
 * floor division and modulo with the sign of the divisor (py_* helpers below).
 */
#ifndef ALK_TRACE_TRACE_INT_H
#define ALK_TRACE_TRACE_INT_H

#include "alir/kif.h"
#include "core/arena.h"
#include "core/fxp.h"
#include "trace/fvar.h"

#include <math.h>
#include <stdarg.h>

/* Source kinds of a node (spec §1.1). */
typedef enum alk_fopr {
    ALK_FOPR_NEW,
    ALK_FOPR_CONST,
    ALK_FOPR_VADD,
    ALK_FOPR_CADD,
    ALK_FOPR_VMUL,
    ALK_FOPR_RELU,
    ALK_FOPR_WRAP,
    ALK_FOPR_MUX,
    ALK_FOPR_LOOKUP,
    ALK_FOPR_BIT_UNARY,
    ALK_FOPR_BIT_BINARY,
} alk_fopr;

/* An atom of an affine interval: one independent interval with an identity (its address). */
typedef struct alk_atom {
    alk_qint qint;
    uint32_t mark; /* scratch for merges; always 0 between operations */
} alk_atom;

typedef struct alk_affine_term {
    alk_atom *atom;
    double coeff;
} alk_affine_term;

/*
 * bias + sum coeff_a * atom_a, terms in the reference's dict insertion order (spec §1.2).
 * step_floor (0: none): the grid the hardware value lies on, for sums whose terms would say
 * finer; inexact: a coefficient was rounded on the way, so the value's adders may have dropped
 * bits the form still has (affine.c).
 */
typedef struct alk_affine {
    double bias;
    double step_floor;
    uint32_t n;
    bool inexact;
    bool cached;
    alk_qint qint;
    alk_affine_term terms[];
} alk_affine;

typedef struct alk_fnode {
    uint64_t serial; /* creation order; identity is the address */
    alk_fopr opr;
    uint8_t n_from;
    bool input;   /* an unquantized input (FVariableInput) */
    int64_t data; /* cadd packed constant, bit-op sub-op */
    alk_fvar *from[3];
    alk_ftable *table;
    double latency;
    alk_hwconf hwconf;
    /* Accumulated bounds of an unquantized input. */
    double bounds_low, bounds_high, bounds_step;
    /* Tracer scratch (see trace/emit.c); `mark` equals the tracer's generation when set. */
    uint64_t mark;     /* gathered in generation `mark` */
    uint64_t in_mark;  /* an input of generation `in_mark`, at position in_pos */
    uint64_t neg_mark; /* needs a negation op in generation `neg_mark` */
    int64_t in_pos;
    int64_t index;
    uint32_t refcount;
} alk_fnode;

struct alk_fvar {
    alk_fnode *node;
    alk_affine *affine;
    double factor;
};

struct alk_ftable {
    char hash[65];
    alk_qint out_qint;
    int inp_width;
    int f_out;
    size_t len;
    int32_t *values;
    uint8_t *mask;        /* NULL when every entry was finite */
    double *float_values; /* interpret_as(values, out kif), made on first use */
    /* The last slice made from this table by a lookup with an original interval. */
    struct alk_ftable *slice;
    int64_t slice_start, slice_stop, slice_stride;
};

struct alk_trace {
    alk_arena arena;
    alk_hwconf hwconf;
    alk_solver_options solver;
    alk_cmvm_cache *cache;
    int error;
    alk_diag diag;
    uint64_t next_serial;
    size_t n_vars;
    uint32_t allocations; /* counts arena requests, to poll the cancellation flag now and then */
    uint64_t generation;  /* tracer passes */
    /* Scratch for affine merges. */
    alk_affine_term *scratch;
    size_t scratch_cap;
    /* Named arrays for the trace dump (fvarray.c), newest first. */
    void *names;
    /* Time spent inside the CMVM/SCM solvers (solver_seam.c). */
    double solver_seconds;
};

/* ---- Python number semantics ---- */

/* Python float % (result has the divisor's sign). */
static inline double py_fmod(double a, double b) {
    double r = fmod(a, b);
    if (r != 0.0) {
        if ((r < 0.0) != (b < 0.0)) {
            r += b;
        }
    } else {
        r = copysign(0.0, b);
    }
    return r;
}

/* Python int // for int64 (floor division). */
static inline int64_t py_floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        q -= 1;
    }
    return q;
}

/* Python round() of a double (half to even). */
static inline double py_round(double x) {
    return nearbyint(x);
}

/* 2.0 ** get_lsb_loc(x): get_lsb_loc sees float32 and returns an int8. */
static inline int lsb_i8(double x) {
    return (int)(int8_t)alk_lsb_loc((float)x);
}
static inline double pow2_lsb(double x) {
    return ldexp(1.0, lsb_i8(x));
}
static inline int clog2_i8(double x) {
    return alk_iceil_log2((float)x);
}

/* log2(|x|) is an integer (Python's math.log2(...).is_integer()). */
static inline bool is_pow2_value(double x) {
    double e = log2(fabs(x));
    return isfinite(e) && e == floor(e);
}

/* ---- Context helpers (context.c) ---- */

/* Records the first error of the trace (sticky) and returns the recorded code. */
int alk__trace_set_error(alk_trace *t, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Arena memory that lives as long as the trace; NULL (and a sticky error) once the trace has
 * failed, is out of memory, or its job was cancelled. */
void *alk__trace_alloc(alk_trace *t, size_t size);
/* Prefixes the recorded error's message with more context (the handler kit's "layer NAME
 * (Class): "); nothing when no error is recorded. */
void alk__trace_prefix_error(alk_trace *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Affine intervals (affine.c). */
alk_affine *alk__affine_const(alk_trace *t, double bias);
alk_affine *alk__affine_atom(alk_trace *t, alk_qint qint);
alk_affine *alk__affine_add(alk_trace *t, alk_affine *a, alk_affine *b);
alk_affine *alk__affine_add_scalar(alk_trace *t, alk_affine *a, double c);
alk_affine *alk__affine_scale(alk_trace *t, const alk_affine *a, double c);
alk_qint alk__affine_qint(alk_affine *a);

/* The actual interval of a reference (inputs: their accumulated bounds). */
alk_qint alk__fv_qint(alk_fvar *v);
/* The reference's FVariable.kif (spec §1.5). */
void alk__fv_kif(alk_fvar *v, int *k, int *i, int *f);
/* The interval of the node itself: the reference scaled by 1/factor (spec §1.3, `unscaled`). */
alk_qint alk__fv_unscaled_qint(alk_trace *t, alk_fvar *v);
/* A constant with an explicit hwconf (from_const). */
alk_fvar *alk__fv_const_hw(alk_trace *t, double c, alk_hwconf hw);
/* A variable with an explicit hwconf. */
alk_fvar *alk__fv_new_hw(alk_trace *t, double low, double high, double step, double latency,
                         alk_hwconf hw);
/* as_new (spec §2.1): a fresh 'new' node with the reference's interval, factor and latency. */
alk_fvar *alk__fv_as_new(alk_trace *t, alk_fvar *v);
/* False, with the reference's error, when `v` is an unquantized input (FVArrayInput): only a
 * quantization may touch one. */
bool alk__fv_check_quantized(alk_trace *t, const alk_fvar *v);
/* v.lookup(table, original_qint) for an alk_ftable whose values are raw ints (tracer replay). */
alk_ftable *alk__ftable_from_ints(alk_trace *t, const char *hash, alk_qint out_qint,
                                  int64_t inp_width, const int32_t *values, size_t n);
/* interpret_as of the table's entries with its out kif; NULL after an allocation failure. */
const double *alk__ftable_float_values(alk_trace *t, alk_ftable *table);
/* The table's value for a number (numeric replay of a lookup, spec §4.3); EINVAL out of range. */
int alk__ftable_lookup_number(alk_trace *t, alk_ftable *table, double x, alk_qint qint_in,
                              double *ret);

/* Surrogate cost/latency helpers shared by fvar.c (latency estimates) and the passes. */
void alk__tr_overlap_counts(alk_qint q0, alk_qint q1, int shift1, int *accum, int *overlap,
                            int *tail);
/* Returns the latency step; *ret_cost and the int flags describe Python's result types. */
void alk__tr_cost_lat_add(alk_qint q0, alk_qint q1, int shift1, int64_t n_add, int64_t n_accum,
                          bool is_sub, double *ret_cost, double *ret_lat, bool *ret_is_int);
void alk__tr_cost_lat_mul(alk_qint q0, alk_qint q1, int64_t n_add, int64_t n_accum,
                          double *ret_cost, double *ret_lat);
/* Lookup latency (and, when want_cost, cost; may fail with ENOMEM). */
int alk__tr_cost_lat_lut(alk_qint q_in, const alk_ftable *table, const double *float_unused,
                         bool want_cost, double *ret_cost, double *ret_lat);

/* The solver seam (solver_seam.c): SCM program for x * c (cmvm.md §8.3), owned by the caller
 * unless *ret_borrowed is set. */
int alk__scm_program(alk_trace *t, double c, alk_program **ret_program, bool *ret_borrowed);
/* A CMVM solution through the job's cache (*ret borrowed) or owned in *owned (*ret_owned). */
int alk__cmvm_run(alk_trace *t, const alk_cmvm_problem *problem, const alk_cmvm_result **ret,
                  alk_cmvm_result *owned, bool *ret_owned);
/* Frees the job's solution cache, which the seam makes on first use (alk_trace_free calls it). */
void alk__trace_free_cache(alk_trace *t);

/* x * c through an SCM program (replay.c): replays `program` (borrowed) with x as its input and
 * writes the product to *ret on success; an error is also the trace's sticky error. */
int alk__replay_scm(alk_trace *t, const alk_program *program, alk_fvar *x, alk_fvar **ret);

#endif
