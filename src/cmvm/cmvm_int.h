/*
 * Private structures shared by the files of src/cmvm (not installed, not for plugins).
 *
 * Numbers follow the reference's types on purpose: intervals, latencies and costs are float32
 * (alk__fq, alk__op) because the reference computes them in float and bit-exact compat mode
 * depends on that rounding; kernels are exact dyadic doubles (alk__mat).
 */
#ifndef ALK_CMVM_CMVM_INT_H
#define ALK_CMVM_CMVM_INT_H

#include "cmvm/cmvm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A float32 interval (the reference's QInterval). */
typedef struct alk__fq {
    float min;
    float max;
    float step;
} alk__fq;

/* One op of a stage in the reference's form (spec §1.5): reads have opcode -1 and id0 = input. */
typedef struct alk__op {
    int32_t id0;
    int32_t id1;
    int32_t opcode;
    int32_t data;
    alk__fq qint;
    float latency;
    float cost;
} alk__op;

/* One solved stage before it becomes an alk_program. */
typedef struct alk__stage {
    uint32_t n_in;
    uint32_t n_out;
    int32_t *inp_shifts;
    int32_t *out_idxs;
    int32_t *out_shifts;
    bool *out_negs;
    alk__op *ops;
    size_t n_ops;
    size_t cap_ops;
    uint64_t work;  /* the CSE's work units (see cse_int.h) */
    uint64_t pairs; /* digit pairs of the kernel's digits (each an occurrence of a key) */
} alk__stage;

/* A dense matrix of exact dyadic values, row-major. */
typedef struct alk__mat {
    uint32_t rows;
    uint32_t cols;
    double *v;
} alk__mat;

/* How a CSE run selects (all zero = the reference's selection, compat mode). */
typedef struct alk__quality {
    const atomic_bool *cancel; /* the solve's cancellation flag (alk_cmvm_options), or NULL */
    bool conflict_aware;       /* improved mode's selection (cse_conflict.c) */
    uint32_t end_game_count;   /* see alk__cse_log.end_game */
    uint64_t tie_seed;         /* conflict-aware ties: 0 = the reference's key order */
    uint64_t work_limit;       /* conflict-aware runs stop with ALK_ELIMIT past it; 0 = none */
} alk__quality;

/*
 * Population count without the popcnt instruction: the build targets baseline x86-64, where
 * __builtin_popcountll becomes a libgcc call that dominated the CSE profile.
 */
static inline int alk__popcount64(uint64_t x) {
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (int)((x * 0x0101010101010101ull) >> 56);
}

/* --- numeric.c: primitives of spec §2 and §3 --- */

alk__fq alk__qint_add(alk__fq q0, alk__fq q1, int64_t shift, bool sub0, bool sub1);
/* What overlap_counts reads of one interval: its lsb location and bit width (int8 values). */
typedef struct alk__bw {
    int8_t lsb;
    int8_t bw;
} alk__bw;
alk__bw alk__interval_bw(alk__fq q);
/* overlap_counts of two intervals given by alk__interval_bw (precomputed per signal). */
void alk__overlap_counts_bw(alk__bw w0, alk__bw w1, int8_t shift1, int *ret_accum, int *ret_overlap,
                            int *ret_tail);
/* overlap_counts (spec §2.5): writes accum, overlap and tail as the reference's int8 values. */
void alk__overlap_counts(alk__fq q0, alk__fq q1, int8_t shift1, int *ret_accum, int *ret_overlap,
                         int *ret_tail);
/* cost_add (spec §2.6): the internal cost and latency step of q0 + q1 * 2^shift. */
void alk__cost_add(alk__fq q0, alk__fq q1, int64_t shift, float *ret_cost, float *ret_latency);
/* minimal_kif_one (spec §2.3). */
void alk__minimal_kif(double min, double max, double step, int *ret_k, int *ret_i, int *ret_f);
/* Number of non-zero digits of the non-adjacent form of v (spec §3.2 identity). */
int alk__naf_weight(int64_t v);
/* Surrogate cost/latency of an addition or subtraction (spec §10.2). */
void alk__surrogate_add(alk__fq q0, alk__fq q1, int64_t shift, bool sub, int64_t carry_size,
                        double *ret_cost, double *ret_latency);

/*
 * Centres `m` (spec §3.1): shift1[j] per column, then shift0[i] per row; writes the integer
 * matrix to `centred` (rows x cols, caller-allocated). Returns false when an entry does not fit
 * ALK_CMVM_MAX_ENTRY_BITS (then *ret_row and *ret_col name it).
 */
bool alk__center(const alk__mat *m, int32_t *shift0, int32_t *shift1, int64_t *centred,
                 uint32_t *ret_row, uint32_t *ret_col);

/* --- decompose.c: spec §4 --- */

/*
 * kernel_decompose(W, dc): fills *ret_w1 (n x m) and *ret_w2 (m x m), owned by the caller
 * (alk__mat_fini), with W = W1 * W2 exactly.
 */
int alk__kernel_decompose(const alk__mat *w, int dc, alk__mat *ret_w1, alk__mat *ret_w2);

void alk__mat_fini(alk__mat *m);
/* A deep copy of `src` (borrowed) into *ret_copy, owned by the caller. */
int alk__mat_copy(const alk__mat *src, alk__mat *ret_copy);

/* Centred kernel and column distances, shared by the decompositions of every dc. */
typedef struct alk__decomp alk__decomp;
/* Prepares `w` (borrowed); `with_tree` false skips the distances (only dc = -1 then). */
int alk__decomp_new(const alk__mat *w, bool with_tree, alk__decomp **ret);
/* Builds W1, W2 for `dc` from `d` (borrowed, read-only); the matrices are the caller's. */
int alk__decomp_build(const alk__decomp *d, int dc, alk__mat *ret_w1, alk__mat *ret_w2);
void alk__decomp_free(alk__decomp *d);

/* --- cse.c: spec §5 --- */

/*
 * The extractions of a run in the reference's order, for improved mode's branches: with it, the
 * state part way is rebuilt cheaply (alk__cse_branch) instead of being copied along every run.
 */
typedef struct alk__cse_log {
    uint64_t *keys;   /* in extraction order */
    uint64_t *work;   /* the run's work (alk__stage.work) after each */
    uint64_t *digits; /* the digits left after each */
    size_t len;
    size_t cap;
    size_t end_game;  /* the first extraction of a key with at most quality->end_game_count
                       * occurrences (len if none) */
    uint64_t digits0; /* digits, and pairs of digits of one column, at the start */
    uint64_t pairs0;
} alk__cse_log;

void alk__cse_log_fini(alk__cse_log *log);
/* About the pairs of digits of one column after the first n extractions of `log`. */
uint64_t alk__cse_log_pairs(const alk__cse_log *log, size_t n);

/*
 * Greedy CSE and emission of one stage kernel `k` (borrowed) with the input intervals and
 * latencies `q`/`lat` (borrowed, k->rows entries). On success *ret_stage is owned by the caller
 * (alk__stage_fini). `no_cse` builds the CSE-free emission used by minimal_latency.
 * With quality->conflict_aware the selection is improved mode's (exact counts, ties broken by
 * conflicts); otherwise it is the reference's, and a non-NULL `ret_log` (zeroed, the caller's:
 * alk__cse_log_fini, also on failure) records its extractions.
 */
int alk__solve_single(const alk__mat *k, alk_cmvm_method method, const alk__fq *q, const float *lat,
                      const alk__quality *quality, bool no_cse, alk__cse_log *ret_log,
                      alk__stage *ret_stage, alk_diag *diag);

/*
 * The same stage after the first `n` extractions of `log` (borrowed; made by alk__solve_single
 * on the same arguments), continued with the conflict-aware selection of `quality`.
 */
int alk__cse_branch(const alk__mat *k, alk_cmvm_method method, const alk__fq *q, const float *lat,
                    const alk__cse_log *log, size_t n, const alk__quality *quality,
                    alk__stage *ret_stage, alk_diag *diag);

/* --- emit.c: spec §6 --- */

/* Appends `op` to the growable array (*ops, *n_ops, *cap_ops). */
int alk__push_op(alk__op **ops, size_t *n_ops, size_t *cap_ops, alk__op op);

void alk__stage_fini(alk__stage *stage);
/* A deep copy of `src` (borrowed) into *ret_copy, owned by the caller. */
int alk__stage_copy(const alk__stage *src, alk__stage *ret_copy);
/* Largest output latency of a stage (0 for zero outputs). */
float alk__stage_max_latency(const alk__stage *stage);
/* Sum of op costs, accumulated in float as the reference does. */
float alk__stage_cost(const alk__stage *stage, float start);
/* Copies `stage` (borrowed) into a new alk_program owned by the caller. */
int alk__stage_to_program(const alk__stage *stage, alk_program **ret_program);
/* The program of a one-input, one-output stage (an SCM): `ops` (n_ops, borrowed), its output op
 * `out_id` shifted by `out_shift` and negated when `out_neg`; owned by the caller. */
int alk__scm_stage_to_program(alk__op *ops, size_t n_ops, int32_t out_id, int32_t out_shift,
                              bool out_neg, alk_program **ret_program);

/* Emission heap shared with SCM (spec §6 step 4): terms are (op id, sign, shift). */
typedef struct alk__term {
    int32_t id;
    bool neg;
    int32_t shift;
} alk__term;

/*
 * Reduces `terms` (n >= 2, borrowed) with the latency-ordered heap of spec §6, appending the
 * adders to `ops` (a growable array: *ops, *n_ops, *cap_ops). Writes the final op index, sign and
 * shift.
 */
int alk__reduce_terms(alk__op **ops, size_t *n_ops, size_t *cap_ops, const alk__term *terms,
                      size_t n, int32_t *ret_id, bool *ret_neg, int32_t *ret_shift);

/* --- scm_repeat.c --- */

/*
 * x * constant as a repeating digit pattern (see alk_scm_options): on success *ret_program is a
 * program owned by the caller, or NULL when no such form has fewer digits than the NAF.
 * `options` is borrowed (its k and interval are used for the pattern's own product).
 */
int alk__scm_repeat(double constant, const alk_scm_options *options, alk_program **ret_program,
                    alk_diag *diag);

#endif
