/*
 * The CMVM and SCM solvers (spec cmvm.md): constant matrix-vector products and constant scalar
 * products turned into graphs of shifted adders.
 *
 * A CMVM problem is a kernel W (n_in rows = inputs, n_out columns = outputs, every entry a
 * dyadic rational) with an interval and an arrival latency per input; the solution computes
 * y_j = sum_i x_i * W[i, j] as two CombLogic stages, applied as stage1(stage0(x)) (spec §1.5,
 * §8.2). Each stage is an alk_program whose ops are reads (opcode -1, data (i,)) and shifted
 * additions/subtractions (opcodes 0/1, data (shift,)), with adder_size = carry_size = -1 as the
 * reference writes them.
 *
 * Two modes. ALK_CMVM_COMPAT reproduces the reference solver op for op, quirks included.
 * ALK_CMVM_IMPROVED (the default) solves every problem the compat way first, then spends a
 * bounded amount of extra work on alternatives selected conflict-aware (exact counts, ties
 * broken toward the pattern that destroys the fewest others; spec §14.2) and keeps the one with
 * the fewest adders among those no worse than compat's solution in both cost and output latency
 * (same cost model, spec §10.1) -- or compat's own. Kernels of 512 rows or more are cut into row
 * blocks solved separately to bound time and memory (see solve.c). Both modes share the fast
 * incremental engine (§14.1).
 *
 * Thread rule: the functions are reentrant; a solve may use `threads` worker threads of its own
 * and joins them before returning. A cache (alk_cmvm_cache) may be shared by the threads of one
 * job: it holds one mutex.
 */
#ifndef ALK_CMVM_CMVM_H
#define ALK_CMVM_CMVM_H

#include "alir/program.h"
#include "core/err.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The solver's names, one table each for every parser and printer (the rpc's solver_options,
 * `alkaidc cmvm/scm/trace-example`): X(ENUM, "name"), in enum order.
 *
 * CSE selection methods (spec §5.4). AUTO is valid for method1 only (spec §7 step 1). DUMMY_DC,
 * "dummy-dc", is what the reference derives from dummy with hard_dc = 0; it is refused as an
 * unknown method as soon as a stage has a pattern occurring twice (spec §7 step 1), so no parser
 * offers it to users.
 */
#define ALK_CMVM_METHOD_MAP(X)                                                                     \
    X(MC, "mc")                                                                                    \
    X(MC_DC, "mc-dc")                                                                              \
    X(MC_PDC, "mc-pdc")                                                                            \
    X(WMC, "wmc")                                                                                  \
    X(WMC_DC, "wmc-dc")                                                                            \
    X(WMC_PDC, "wmc-pdc")                                                                          \
    X(DUMMY, "dummy")                                                                              \
    X(AUTO, "auto")                                                                                \
    X(DUMMY_DC, "dummy-dc")

/* Solver modes: improved (the solver's default) and compat (the reference op for op). */
#define ALK_CMVM_MODE_MAP(X)                                                                       \
    X(IMPROVED, "improved")                                                                        \
    X(COMPAT, "compat")

typedef enum alk_cmvm_method {
#define ALK__CMVM_ENUM(e, name) ALK_CMVM_##e,
    ALK_CMVM_METHOD_MAP(ALK__CMVM_ENUM)
} alk_cmvm_method;

typedef enum alk_cmvm_mode { ALK_CMVM_MODE_MAP(ALK__CMVM_ENUM) } alk_cmvm_mode;
#undef ALK__CMVM_ENUM

/* The mode names as one string literal (" improved compat"), for usage and error messages. */
#define ALK__CMVM_NAME_ITEM(e, name) " " name
#define ALK_CMVM_MODE_NAMES ALK_CMVM_MODE_MAP(ALK__CMVM_NAME_ITEM)

/* The reference's method string ("wmc-dc") of `method`. */
const char *alk_cmvm_method_name(alk_cmvm_method method);

/* Parses a method string ("mc", "wmc-pdc", "auto", ...); ALK_EINVAL for an unknown name. */
int alk_cmvm_method_parse(const char *name, alk_cmvm_method *ret_method);

/* The name of `mode` ("improved", "compat"); parses one (ALK_EINVAL for an unknown name). */
const char *alk_cmvm_mode_name(alk_cmvm_mode mode);
int alk_cmvm_mode_parse(const char *name, alk_cmvm_mode *ret_mode);

/* Solver options; names follow solver_options_t (spec §1.3). */
typedef struct alk_cmvm_options {
    alk_cmvm_method method0;      /* stage-1 method; default WMC */
    alk_cmvm_method method1;      /* stage-2 method; default AUTO */
    int hard_dc;                  /* latency budget above the minimum; < 0 = none (default -1) */
    int decompose_dc;             /* -2 automatic (default), -1 no decomposition, >= 0 depth */
    bool search_all_decompose_dc; /* try decompose_dc = 0..max and keep the cheapest (default) */
    alk_cmvm_mode mode;           /* default ALK_CMVM_IMPROVED */
    unsigned threads;             /* worker threads of the search; 0 = one per online core */
    /* Polled between CSE steps; once it reads true the solve stops with ALK_ECANCELED. NULL:
     * never. Borrowed; it must outlive the solve. Not part of the cache key. */
    const atomic_bool *cancel;
} alk_cmvm_options;

/* Fills `options` (owned by the caller) with the defaults above. */
void alk_cmvm_options_init(alk_cmvm_options *options);

/* A problem. Every pointer is borrowed for the duration of the call that receives it. */
typedef struct alk_cmvm_problem {
    uint32_t n_in;
    uint32_t n_out;
    const double *kernel;      /* n_in x n_out, row-major */
    const alk_qint *intervals; /* n_in, or NULL for (-128, 127, 1) each */
    const double *latencies;   /* n_in, or NULL for 0 each */
} alk_cmvm_problem;

/* Limits checked before any allocation. */
enum {
    ALK_CMVM_MAX_DIM = 1 << 16,   /* rows or columns */
    ALK_CMVM_MAX_ENTRY_BITS = 30, /* |centred entry| < 2^30: sums stay within int32 */
};

typedef struct alk_cmvm_result {
    alk_program *stage0; /* applied first: n_in -> n_out */
    alk_program *stage1; /* applied to stage0's outputs: n_out -> n_out */
    double cost;         /* sum of op costs of both stages (internal model, spec §10.1) */
    size_t adders;       /* number of add/sub ops of both stages */
    double latency;      /* largest output latency of stage1 */
    int decompose_dc;    /* the decompose_dc of the chosen configuration */
} alk_cmvm_result;

/*
 * Checks that `problem` (borrowed) is solvable: dimensions within the limits, finite entries
 * exactly representable as float32 (the reference's input type), centred entries within
 * ALK_CMVM_MAX_ENTRY_BITS, intervals with min <= max and a positive power-of-two step. Errors
 * name the row and column.
 */
int alk_cmvm_check(const alk_cmvm_problem *problem, alk_diag *diag);

/*
 * Solves `problem` with `options` (both borrowed; NULL options = defaults). On success fills
 * *ret_result, whose programs the caller owns (alk_cmvm_result_fini).
 */
int alk_cmvm_solve(const alk_cmvm_problem *problem, const alk_cmvm_options *options,
                   alk_cmvm_result *ret_result, alk_diag *diag);

/* Frees the programs of `result` (owned by the caller) and zeroes it; NULL is a no-op. */
void alk_cmvm_result_fini(alk_cmvm_result *result);

/*
 * Composes stage1(stage0(x)) into one program (the caller owns *ret_program) that alkaidc run
 * and alk_interp evaluate exactly: the shifts and negations between the stages are folded into
 * the adders, every interval is recomputed exactly from `intervals` (n_in entries, borrowed; NULL
 * for (-128, 127, 1)) and costs/latencies follow the surrogate model of spec §10.2 with
 * carry_size -1. `stage0` and `stage1` are borrowed; a NULL `stage1` re-intervals `stage0` alone
 * (used for SCM programs).
 */
int alk_cmvm_compose(const alk_program *stage0, const alk_program *stage1,
                     const alk_qint *intervals, alk_program **ret_program, alk_diag *diag);

/*
 * SCM options. The reference's search (compat) is exhaustive over every signed-digit form of
 * the constant's odd part with at most k digits more than its NAF: milliseconds up to ~24-bit
 * odd parts, but minutes to hours for the 50-odd-bit ones of constants like 1/3 or 0.7, and it
 * fails ("wrong value") where its int64 template values wrap. Improved mode runs the same search
 * in the same order, without the wrapped templates, on odd parts of up to ALK_SCM_EXACT_BITS
 * bits (the reference's stated range) -- identical to compat unless that takes more than
 * ALK_SCM_EXACT_NODES search nodes. Longer odd parts (and searches cut short) follow one greedy
 * path through each of the first forms (ALK_SCM_GREEDY_NODES nodes in all, ~50 ms) and also try
 * the constant as a repeating digit pattern: a short multiple of a geometric series,
 * x * a * (1 + 2^p + 2^2p + ...) plus a few digits, the series built by an addition chain (1/3,
 * 0.1 and 0.7 are such); the fewer adders win.
 */
enum {
    ALK_SCM_MAX_K = 8,
    ALK_SCM_EXACT_BITS = 32,
    ALK_SCM_EXACT_NODES = 50000,
    ALK_SCM_GREEDY_NODES = 1000,
};

typedef struct alk_scm_options {
    int k;                     /* 0 <= k <= ALK_SCM_MAX_K */
    alk_qint interval;         /* of the input x */
    alk_cmvm_mode mode;        /* improved (default) or compat */
    const atomic_bool *cancel; /* polled: when set, the solve stops with ALK_ECANCELED; or NULL */
} alk_scm_options;

/* Defaults: k = 1 (the reference's default; its tracer uses 2), interval [-128, 127] step 1,
 * improved mode. */
void alk_scm_options_init(alk_scm_options *options);

/*
 * SCM (spec §9): x * constant by H(k)+ODP. `constant` must be finite, non-zero, with an odd part
 * below 2^53. `options` is borrowed (NULL = defaults). The caller owns *ret_program (shape
 * (1, 1)).
 */
int alk_scm_solve(double constant, const alk_scm_options *options, alk_program **ret_program,
                  alk_diag *diag);

/*
 * Parses a kernel in text form (the CLI's KERNEL.txt): one matrix row per line (rows = inputs),
 * numbers separated by spaces, tabs or commas, decimal or exponent notation; blank lines and lines
 * starting with '#' are skipped. Every number must be an exact dyadic rational: "0.375" is fine,
 * "0.1" is refused, as are ragged rows, NaN and infinities; errors name the line and column.
 * `text` (len bytes) is borrowed; on success the caller owns *ret_values (alk_free), rows x cols.
 */
int alk_cmvm_parse_kernel(const char *text, size_t len, uint32_t *ret_rows, uint32_t *ret_cols,
                          double **ret_values, alk_diag *diag);

/* Number of add/sub ops (opcodes 0 and 1) of `program` (borrowed). */
size_t alk_cmvm_count_adders(const alk_program *program);

/*
 * A memo cache for one job (spec §14.1 item 6): CMVM solutions keyed by the kernel bytes,
 * intervals, latencies and options that change the result; SCM programs keyed by (constant, k,
 * interval). Results are owned by the cache and stay valid until alk_cmvm_cache_free.
 */
typedef struct alk_cmvm_cache alk_cmvm_cache;

int alk_cmvm_cache_new(alk_cmvm_cache **ret_cache);
/* Frees `cache` and every result it holds; NULL is a no-op. */
void alk_cmvm_cache_free(alk_cmvm_cache *cache);

/*
 * Like alk_cmvm_solve, but answers a repeated problem from `cache` (borrowed). *ret_result points
 * into the cache (borrowed by the caller). *ret_hit (may be NULL) tells whether it was cached.
 */
int alk_cmvm_cache_solve(alk_cmvm_cache *cache, const alk_cmvm_problem *problem,
                         const alk_cmvm_options *options, const alk_cmvm_result **ret_result,
                         bool *ret_hit, alk_diag *diag);

/* Like alk_scm_solve through `cache`; *ret_program is borrowed from the cache. */
int alk_cmvm_cache_scm(alk_cmvm_cache *cache, double constant, const alk_scm_options *options,
                       const alk_program **ret_program, bool *ret_hit, alk_diag *diag);

/* Hits and misses since the cache was made (for tests and statistics). */
void alk_cmvm_cache_stats(const alk_cmvm_cache *cache, size_t *ret_hits, size_t *ret_misses);

#endif
