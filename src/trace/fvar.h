/*
 * Symbolic fixed-point variables: the tracing API (spec trace-alir.md §1).
 *
 * A model is converted by replaying it on symbolic values. Each value (`alk_fvar`) carries its
 * exact interval (low, high, step), an estimated latency and the operation that made it; the
 * tracer (trace/emit.h) turns the recorded graph into an ALIR program.
 *
 * Everything lives in a per-job context, `alk_trace`, which owns an arena (every variable,
 * interval and lookup table of the job; freed at once by alk_trace_free), the hardware
 * configuration, the solver options and a cache for the CMVM/SCM solvers.
 *
 * Errors are sticky, like an SQLite builder: an operation that fails (bad argument, out of
 * memory) records ALK_EINVAL/ALK_ENOMEM and a message in the context and returns NULL; every
 * later operation returns NULL at once, and NULL operands propagate. A caller may therefore
 * chain calls and check alk_trace_error() once at the end. Nothing here asserts or aborts on
 * a caller's mistake.
 *
 * Identity. `alk_fvar *` is a *reference*: a hardware node seen through a power-of-two scale
 * factor (spec §1.3). Negation and scaling by powers of two return new references to the same
 * node and create no hardware. Pointer identity matters in one place, as in the reference:
 * alk_fv_mul(t, a, a) with the same pointer twice is a square (a non-negative interval).
 *
 * Ownership: every returned pointer is owned by the context and stays valid until
 * alk_trace_free. Pointer arguments are borrowed unless a function says otherwise.
 *
 * Thread rule: a context and everything made from it belong to one thread at a time.
 */
#ifndef ALK_TRACE_FVAR_H
#define ALK_TRACE_FVAR_H

#include "alir/program.h"
#include "cmvm/cmvm.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct alk_trace alk_trace;
typedef struct alk_fvar alk_fvar;
typedef struct alk_ftable alk_ftable;

/* Hardware configuration (cmvm.md §1.4). Only carry_size (and adder_size for products) feed the
 * latency estimates; the converters use (1, 1, -1). */
typedef struct alk_hwconf {
    int64_t adder_size;
    int64_t carry_size;
    double latency_cutoff;
} alk_hwconf;

/* HWConfig(1, 1, -1): the hardware configuration of the reference's converter entry points
 * (cmvm.md §1.4), and of every conversion that does not give one. The one place it is written. */
#define ALK_HWCONF_DEFAULT ((alk_hwconf){.adder_size = 1, .carry_size = 1, .latency_cutoff = -1.0})

/*
 * The offload hook of constant-matrix products (cmvm.md §8.2 step 1, the reference's
 * `offload_fn`): called with the k x n_out matrix (row-major) and the k input variables, both
 * borrowed for the call, and a mask of k x n_out entries, all false on entry. Weights whose mask
 * entry it sets are realised as plain products x_i * w_ij (summed per output) instead of going
 * to the solver. It returns ALK_OK, or an error code that stops the trace with the message it
 * wrote to `diag`.
 */
typedef int (*alk_offload_fn)(void *ctx, const double *weights, size_t k, size_t n_out,
                              alk_fvar *const *inputs, bool *mask, alk_diag *diag);

/* The widest packed binary-input table (2^16 entries); wider ones are refused. */
enum { ALK_BINARY_LUT_MAX_WIDTH = 16 };

/* Options for constant-matrix products (cmvm.md §1.3, §8.2). */
typedef struct alk_solver_options {
    alk_cmvm_options cmvm;  /* forwarded to the solver; mode COMPAT reproduces the reference */
    bool binary_lut;        /* pack one-bit inputs into lookup tables (default true) */
    int binary_lut_width;   /* inputs per packed table (default 6; 0 = 6; at most 16) */
    bool use_cache;         /* answer repeated identical problems from the job's cache */
    alk_offload_fn offload; /* NULL (default): nothing is offloaded */
    void *offload_ctx;      /* passed to `offload`, borrowed for the trace's life */
} alk_solver_options;

/*
 * The solver mode of constant products in a trace (a conversion's `solver_options.mode` when the
 * request names none, `alkaidc trace-example --mode`). The one place this default is written:
 * improved never costs more nor adds output latency against the reference's solutions, and the
 * traced values do not depend on the mode; "compat" gives the reference's adder graphs op for op.
 */
#define ALK_SOLVER_DEFAULT_MODE ALK_CMVM_IMPROVED

/* Fills `options` (owned by the caller) with the reference's defaults: the solver's binding
 * defaults (alk_cmvm_options_init) in ALK_SOLVER_DEFAULT_MODE on one thread, binary-LUT packing
 * on with width 6, cache on. */
void alk_solver_options_init(alk_solver_options *options);

typedef struct alk_trace_config {
    alk_hwconf hwconf;         /* default ALK_HWCONF_DEFAULT */
    alk_solver_options solver; /* see alk_solver_options_init */
    size_t arena_block;        /* arena block size in bytes; 0 = default */
} alk_trace_config;

/* Fills `config` (owned by the caller) with the defaults above. */
void alk_trace_config_init(alk_trace_config *config);

/* Creates a context; `config` is copied (NULL = defaults). The caller owns *ret_trace. ALK_EINVAL
 * for an adder or carry size of 0 or a binary_lut_width above ALK_BINARY_LUT_MAX_WIDTH. */
int alk_trace_new(const alk_trace_config *config, alk_trace **ret_trace);

/* Sets the offload hook of the trace's constant-matrix products (see alk_offload_fn; NULL
 * removes it), for tracer plugins, which get their trace from the host. `ctx` is borrowed. */
void alk_trace_set_offload(alk_trace *trace, alk_offload_fn offload, void *ctx);

/* Frees `trace` and everything made from it; NULL is a no-op. */
void alk_trace_free(alk_trace *trace);

/* The first error of the context (ALK_OK if none) and its message (never NULL). */
int alk_trace_error(const alk_trace *trace);
const char *alk_trace_message(const alk_trace *trace);

/* Records an error made by the caller (a plugin naming its layer), unless one is recorded
 * already; returns the context's error. */
int alk_trace_fail(alk_trace *trace, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Number of variable references the context has made (for statistics and benchmarks). */
size_t alk_trace_n_vars(const alk_trace *trace);

/* Seconds spent inside the CMVM/SCM solvers so far (for statistics and benchmarks). */
double alk_trace_solver_seconds(const alk_trace *trace);

/* The context's hardware configuration. */
alk_hwconf alk_trace_hwconf(const alk_trace *trace);

/* ---- Making variables (§1.1, §1.5, §1.6, §1.17) ------------------------------------------ */

/* A variable with interval (low, high, step) and arrival latency; low == high gives a constant.
 * EINVAL when low > high or the step is not a positive finite number. */
alk_fvar *alk_fv_new(alk_trace *t, double low, double high, double step, double latency);

/* The full range of format (k, i, f): (-k*2^i, 2^i - 2^-f, 2^-f). */
alk_fvar *alk_fv_from_kif(alk_trace *t, int k, int i, int f);

/* The constant c, with scale factor 2^lsb(c) (§1.6). */
alk_fvar *alk_fv_const(alk_trace *t, double c);

/* An unquantized input (§1.17): its interval is the union of the formats it is quantized to
 * (alk_fv_quantize with WRAP and TRN or RND is the only operation allowed on it). */
alk_fvar *alk_fv_input(alk_trace *t);

/* ---- Properties ------------------------------------------------------------------------ */

double alk_fv_low(const alk_fvar *v);
double alk_fv_high(const alk_fvar *v);
double alk_fv_step(const alk_fvar *v);
double alk_fv_latency(const alk_fvar *v);
double alk_fv_factor(const alk_fvar *v);
bool alk_fv_is_const(const alk_fvar *v);
/* The variable's format (§1.5): k (sign), i (integer bits), f (fractional bits). */
void alk_fv_kif(const alk_fvar *v, int *ret_k, int *ret_i, int *ret_f);
/* Whether two references denote the same hardware node. */
bool alk_fv_same_node(const alk_fvar *a, const alk_fvar *b);

/* ---- Arithmetic (§1.7–1.9) ---------------------------------------------------------------- */

alk_fvar *alk_fv_add(alk_trace *t, alk_fvar *a, alk_fvar *b);
alk_fvar *alk_fv_sub(alk_trace *t, alk_fvar *a, alk_fvar *b);
alk_fvar *alk_fv_neg(alk_trace *t, alk_fvar *a);
alk_fvar *alk_fv_add_const(alk_trace *t, alk_fvar *a, double c);
/* c - a */
alk_fvar *alk_fv_rsub_const(alk_trace *t, alk_fvar *a, double c);
/* a * b: both variables (a constant operand folds; a == b squares). */
alk_fvar *alk_fv_mul(alk_trace *t, alk_fvar *a, alk_fvar *b);
/* a * c: free for powers of two, SCM otherwise (§1.8). */
alk_fvar *alk_fv_mul_const(alk_trace *t, alk_fvar *a, double c);
/* a / c = a * (1/c). */
alk_fvar *alk_fv_div_const(alk_trace *t, alk_fvar *a, double c);
/* a * 2^n. */
alk_fvar *alk_fv_shift(alk_trace *t, alk_fvar *a, int n);
/* a ** p for an integer p >= 0. */
alk_fvar *alk_fv_pow(alk_trace *t, alk_fvar *a, int p);

/* ---- Quantization (§1.10–1.12) ------------------------------------------------------------ */

typedef enum alk_overflow { ALK_WRAP, ALK_SAT, ALK_SAT_SYM } alk_overflow;
typedef enum alk_round { ALK_TRN, ALK_RND, ALK_RND_CONV } alk_round;

/* "Not given" for the optional integer arguments of relu and bit views. */
#define ALK_FV_NONE INT32_MIN

/* relu(v) with optional integer bits `i` and fractional bits `f` (ALK_FV_NONE = not given);
 * round is TRN or RND. */
alk_fvar *alk_fv_relu(alk_trace *t, alk_fvar *v, int i, int f, alk_round round);

/* Quantizes to (k, i, f) with the given overflow and rounding modes. */
alk_fvar *alk_fv_quantize(alk_trace *t, alk_fvar *v, int k, int i, int f, alk_overflow overflow,
                          alk_round round);

/* The bit slice v.bits[start:stop] (bit 0 = MSB; Python slice rules; ALK_FV_NONE = omitted). */
alk_fvar *alk_fv_bits(alk_trace *t, alk_fvar *v, int start, int stop);

/* ---- Comparisons, selection (§1.13, §1.14) -------------------------------------------------- */

alk_fvar *alk_fv_msb(alk_trace *t, alk_fvar *v);
alk_fvar *alk_fv_is_negative(alk_trace *t, alk_fvar *v);
alk_fvar *alk_fv_is_positive(alk_trace *t, alk_fvar *v);
/* 0/1 results. */
alk_fvar *alk_fv_gt(alk_trace *t, alk_fvar *a, alk_fvar *b);
alk_fvar *alk_fv_lt(alk_trace *t, alk_fvar *a, alk_fvar *b);
alk_fvar *alk_fv_ge(alk_trace *t, alk_fvar *a, alk_fvar *b);
alk_fvar *alk_fv_le(alk_trace *t, alk_fvar *a, alk_fvar *b);
alk_fvar *alk_fv_eq(alk_trace *t, alk_fvar *a, alk_fvar *b);
alk_fvar *alk_fv_ne(alk_trace *t, alk_fvar *a, alk_fvar *b);
alk_fvar *alk_fv_gt_const(alk_trace *t, alk_fvar *a, double c);
alk_fvar *alk_fv_lt_const(alk_trace *t, alk_fvar *a, double c);
alk_fvar *alk_fv_ge_const(alk_trace *t, alk_fvar *a, double c);
alk_fvar *alk_fv_le_const(alk_trace *t, alk_fvar *a, double c);

/* "MSB of c set ? a : b" (§1.14); `qint` (may be NULL) bounds the result. */
alk_fvar *alk_fv_mux(alk_trace *t, alk_fvar *c, alk_fvar *a, alk_fvar *b, const alk_qint *qint);
alk_fvar *alk_fv_max(alk_trace *t, alk_fvar *a, alk_fvar *b);
alk_fvar *alk_fv_min(alk_trace *t, alk_fvar *a, alk_fvar *b);
/* max/min with a number; +-infinity follow the reference (max with -inf is a no-op, with +inf
 * an error). */
alk_fvar *alk_fv_max_const(alk_trace *t, alk_fvar *a, double c);
alk_fvar *alk_fv_min_const(alk_trace *t, alk_fvar *a, double c);
alk_fvar *alk_fv_abs(alk_trace *t, alk_fvar *a);

/* ---- Bit operations (§1.16) --------------------------------------------------------------- */

alk_fvar *alk_fv_not(alk_trace *t, alk_fvar *v);
alk_fvar *alk_fv_any(alk_trace *t, alk_fvar *v);
alk_fvar *alk_fv_all(alk_trace *t, alk_fvar *v);
alk_fvar *alk_fv_and(alk_trace *t, alk_fvar *a, alk_fvar *b);
alk_fvar *alk_fv_or(alk_trace *t, alk_fvar *a, alk_fvar *b);
alk_fvar *alk_fv_xor(alk_trace *t, alk_fvar *a, alk_fvar *b);

/* ---- Lookup tables (§1.15) ---------------------------------------------------------------- */

/* A table of `n` float values (copied; non-finite entries are masked). */
alk_ftable *alk_ftable_new(alk_trace *t, const double *values, size_t n);
size_t alk_ftable_len(const alk_ftable *table);
/* Lowercase hex SHA-256 name of the table (§1.15). */
const char *alk_ftable_hash(const alk_ftable *table);
alk_qint alk_ftable_out_qint(const alk_ftable *table);

/* v.lookup(table): entry j holds the result for the raw node value low + j*step. A table object
 * is used as given (never reversed for a negative factor). `original_qint` (may be NULL) is the
 * interval the table was made for; it is sliced to v's interval. */
alk_fvar *alk_fv_lookup(alk_trace *t, alk_fvar *v, alk_ftable *table,
                        const alk_qint *original_qint);

/* v.lookup(values): like the reference given a numpy array: the values (entry j for the actual
 * value low + j*step, copied) are reversed for a negative-factor reference. */
alk_fvar *alk_fv_lookup_values(alk_trace *t, alk_fvar *v, const double *values, size_t n);

/* A float function of one variable, for tables made from functions (§2.10). */
typedef double (*alk_float_fn)(double x, void *user);

/* Evaluates fn at the n points of interval `qint` as numpy.linspace does (entry j <-> min +
 * j*step) and makes a table; `user` is passed through. */
alk_ftable *alk_ftable_from_fn(alk_trace *t, alk_float_fn fn, void *user, alk_qint qint);

#endif
