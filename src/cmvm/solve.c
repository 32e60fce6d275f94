/*
 * The CMVM solver's entry points: input checks, one configuration (spec cmvm.md §7) and the
 * parallel search over decompose_dc (§8.1).
 *
 * Design: a configuration decomposes W = W1 * W2 (decompose.c), runs CSE + emission on each
 * stage (cse.c) and tightens the decomposition while the latency budget is exceeded, exactly as
 * the reference's _cmvm, method-name rewriting included. The search runs the candidate depths on
 * a small pool of pthreads (an atomic counter hands out depths) and keeps the cheapest by the
 * float sum of op costs, ties to the smallest depth. Improved mode then tries alternatives for the
 * chosen configuration with cse_conflict.c's selection, within a work budget relative to the
 * search (see improve), and keeps compat's solution unless one is no worse in cost and latency.
 *
 * Thread rule: every configuration owns its data; workers write only their own result slot, and
 * the caller reads the slots after joining them.
 */
#include "cmvm/cmvm.h"
#include "cmvm/cmvm_int.h"
#include "core/alloc.h"
#include "core/fxp.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

void alk_cmvm_options_init(alk_cmvm_options *options) {
    *options = (alk_cmvm_options){
        .method0 = ALK_CMVM_WMC,
        .method1 = ALK_CMVM_AUTO,
        .hard_dc = -1,
        .decompose_dc = -2,
        .search_all_decompose_dc = true,
        .mode = ALK_CMVM_IMPROVED,
        .threads = 0,
    };
}

/* Whether the reference's method string ends with "dc". */
static bool ends_with_dc(alk_cmvm_method m) {
    return m == ALK_CMVM_MC_DC || m == ALK_CMVM_MC_PDC || m == ALK_CMVM_WMC_DC ||
           m == ALK_CMVM_WMC_PDC || m == ALK_CMVM_DUMMY_DC;
}

/* method + "-dc" (only called for names not ending with "dc"). */
static alk_cmvm_method with_dc(alk_cmvm_method m) {
    switch (m) {
    case ALK_CMVM_MC:
        return ALK_CMVM_MC_DC;
    case ALK_CMVM_WMC:
        return ALK_CMVM_WMC_DC;
    default:
        return ALK_CMVM_DUMMY_DC;
    }
}

static bool is_float32(double v) {
    return (double)(float)v == v || isnan(v);
}

int alk_cmvm_check(const alk_cmvm_problem *problem, alk_diag *diag) {
    uint32_t n = problem->n_in, m = problem->n_out;
    if (n == 0 || m == 0) {
        return alk_diag_set(diag, ALK_EINVAL, "the kernel is empty (%u x %u)", n, m);
    }
    if (n > ALK_CMVM_MAX_DIM || m > ALK_CMVM_MAX_DIM) {
        return alk_diag_set(diag, ALK_ELIMIT, "the kernel is %u x %u; the limit is %u per side", n,
                            m, (unsigned)ALK_CMVM_MAX_DIM);
    }
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < m; j++) {
            double v = problem->kernel[(size_t)i * m + j];
            if (!isfinite(v)) {
                return alk_diag_set(diag, ALK_EINVAL, "kernel row %u, column %u: %s", i + 1, j + 1,
                                    isnan(v) ? "NaN" : "infinite value");
            }
            if (!is_float32(v) || (v != 0.0 && fabs(v) < 0x1p-126)) {
                return alk_diag_set(diag, ALK_EINVAL,
                                    "kernel row %u, column %u: %.17g is not a dyadic value "
                                    "exactly representable as float32",
                                    i + 1, j + 1, v);
            }
        }
    }
    for (uint32_t i = 0; problem->intervals != NULL && i < n; i++) {
        alk_qint q = problem->intervals[i];
        int e;
        if (!isfinite(q.min) || !isfinite(q.max) || !(q.min <= q.max) || !(q.step > 0) ||
            !isfinite(q.step) || frexp(q.step, &e) != 0.5 || !is_float32(q.min) ||
            !is_float32(q.max)) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "input %u: interval (%g, %g, %g) needs finite float32 bounds "
                                "min <= max and a power-of-two step",
                                i, q.min, q.max, q.step);
        }
    }
    for (uint32_t i = 0; problem->latencies != NULL && i < n; i++) {
        if (!isfinite(problem->latencies[i])) {
            return alk_diag_set(diag, ALK_EINVAL, "input %u: latency is not finite", i);
        }
    }
    int32_t *shift0 = alk_malloc(((size_t)n + 1) * sizeof(int32_t));
    int32_t *shift1 = alk_malloc(((size_t)m + 1) * sizeof(int32_t));
    size_t nm;
    int64_t *centred = NULL;
    if (alk_mul_size(n, m, &nm)) {
        centred = alk_malloc(nm * sizeof(int64_t));
    }
    int rv = ALK_OK;
    if (shift0 == NULL || shift1 == NULL || centred == NULL) {
        rv = alk_diag_set(diag, ALK_ENOMEM, "out of memory checking a %u x %u kernel", n, m);
    } else {
        alk__mat mat = {n, m, (double *)problem->kernel};
        uint32_t row, col;
        if (!alk__center(&mat, shift0, shift1, centred, &row, &col)) {
            rv = alk_diag_set(diag, ALK_EINVAL,
                              "kernel row %u, column %u: %.17g needs more than %d bits after "
                              "centring (the integer range of the solver)",
                              row + 1, col + 1, problem->kernel[(size_t)row * m + col],
                              ALK_CMVM_MAX_ENTRY_BITS);
        }
    }
    alk_free(shift0);
    alk_free(shift1);
    alk_free(centred);
    return rv;
}

/* ---- one configuration (spec §7) ---- */

typedef struct job {
    const alk__mat *kernel;
    const alk__decomp *decomp; /* centred kernel and distances, shared by every task */
    const alk__fq *q;
    const float *lat;
    alk_cmvm_method method0;
    alk_cmvm_method method1;
    alk__quality quality;
    float min_lat; /* minimal_latency of the kernel (spec §7 step 3) */
} job;

typedef struct config {
    alk__stage s0;
    alk__stage s1;
    float cost;
    int decompose_dc;
    /* Kept for improved mode (its jobs): the stages' kernels and methods, and the log of stage
     * 0's extractions in the reference's order (when the job asks for it). */
    alk__mat w1;
    alk__mat w2;
    alk_cmvm_method method0;
    alk_cmvm_method method1;
    alk__cse_log log;
} config;

static void config_fini(config *c) {
    alk__stage_fini(&c->s0);
    alk__stage_fini(&c->s1);
    alk__mat_fini(&c->w1);
    alk__mat_fini(&c->w2);
    alk__cse_log_fini(&c->log);
}

/*
 * The inputs of stage 1: latency and interval of each stage-0 output, (0, 0, inf) for zero
 * outputs (spec §7 step 5; the output shift and sign are ignored, as the reference does).
 * Returns the largest latency.
 */
static float stage1_inputs(const alk__stage *s0, alk__fq *q1, float *lat1) {
    float max_lat = 0.0f;
    for (uint32_t j = 0; j < s0->n_out; j++) {
        int32_t idx = s0->out_idxs[j];
        if (idx >= 0) {
            lat1[j] = s0->ops[idx].latency;
            q1[j] = s0->ops[idx].qint;
        } else {
            lat1[j] = 0.0f;
            q1[j] = (alk__fq){0.0f, 0.0f, INFINITY};
        }
        max_lat = lat1[j] > max_lat ? lat1[j] : max_lat;
    }
    return max_lat;
}

/* Whether the configurations of `jb` feed improved mode (which re-solves their stage 1). */
static bool improved_mode_job(const job *jb) {
    return jb->quality.end_game_count > 0 || jb->quality.conflict_aware;
}

/*
 * One configuration. `first_w1`/`first_w2` (may be NULL) are the decomposition of the first
 * attempt, already built by the caller; this function takes them over in every case.
 */
static int run_config(const job *jb, int hard_dc, int decompose_dc, alk__mat *first_w1,
                      alk__mat *first_w2, config *ret, alk_diag *diag) {
    alk_cmvm_method method0 = jb->method0, method1 = jb->method1;
    uint32_t n = jb->kernel->rows, m = jb->kernel->cols;
    alk__mat w1 = {0}, w2 = {0};
    bool prebuilt = first_w1 != NULL && first_w1->v != NULL;
    if (prebuilt) {
        w1 = *first_w1;
        w2 = *first_w2;
        first_w1->v = first_w2->v = NULL;
    }
    alk__fq *q1 = NULL;
    float *lat1 = NULL;
    config c = {0};
    int rv;

    if (method1 == ALK_CMVM_AUTO) {
        method1 =
            (hard_dc < 0 || hard_dc >= 5 || ends_with_dc(method0)) ? method0 : with_dc(method0);
    }
    if (hard_dc == 0 && !ends_with_dc(method0)) {
        method0 = with_dc(method0);
    }
    float min_lat = INFINITY;
    if (hard_dc >= 0) {
        min_lat = jb->min_lat;
    } else {
        hard_dc = INT_MAX;
    }
    float allowed = (float)hard_dc + min_lat;
    int log2_n = (int)ceilf(log2f((float)n));
    if (decompose_dc == -2) {
        decompose_dc = hard_dc < log2_n ? hard_dc : log2_n;
    } else {
        int d = hard_dc < decompose_dc ? hard_dc : decompose_dc;
        decompose_dc = d < log2_n ? d : log2_n;
    }
    q1 = alk_malloc(((size_t)m + 1) * sizeof(alk__fq));
    lat1 = alk_malloc(((size_t)m + 1) * sizeof(float));
    if (q1 == NULL || lat1 == NULL) {
        rv = ALK_ENOMEM;
        goto fail;
    }
    for (;;) {
        if (decompose_dc < 0) {
            if (method0 != ALK_CMVM_DUMMY) {
                method0 = method1 = ALK_CMVM_WMC_DC;
            } else {
                method0 = method1 = ALK_CMVM_DUMMY;
            }
        }
        config_fini(&c);
        if (!prebuilt) {
            alk__mat_fini(&w1);
            alk__mat_fini(&w2);
            rv = alk__decomp_build(jb->decomp, decompose_dc, &w1, &w2);
            if (rv != ALK_OK) {
                goto fail;
            }
        }
        prebuilt = false;
        rv = alk__solve_single(&w1, method0, jb->q, jb->lat, &jb->quality, false,
                               jb->quality.end_game_count > 0 ? &c.log : NULL, &c.s0, diag);
        if (rv != ALK_OK) {
            goto fail;
        }
        float max_lat0 = stage1_inputs(&c.s0, q1, lat1);
        bool both_wmc_dc = method0 == ALK_CMVM_WMC_DC && method1 == ALK_CMVM_WMC_DC;
        if (max_lat0 > allowed && (!both_wmc_dc || decompose_dc >= 0)) {
            decompose_dc--;
            continue;
        }
        rv = alk__solve_single(&w2, method1, q1, lat1, &jb->quality, false, NULL, &c.s1, diag);
        if (rv != ALK_OK) {
            goto fail;
        }
        float max_lat1 = alk__stage_max_latency(&c.s1);
        if (max_lat1 > allowed && (!both_wmc_dc || decompose_dc >= 0)) {
            decompose_dc--;
            continue;
        }
        break;
    }
    c.cost = alk__stage_cost(&c.s1, alk__stage_cost(&c.s0, 0.0f));
    c.decompose_dc = decompose_dc;
    if (improved_mode_job(jb)) {
        c.w1 = w1;
        c.w2 = w2;
        w1 = w2 = (alk__mat){0};
        c.method0 = method0;
        c.method1 = method1;
    }
    *ret = c;
    c = (config){0};
    rv = ALK_OK;
fail:
    config_fini(&c);
    alk__mat_fini(&w1);
    alk__mat_fini(&w2);
    alk_free(q1);
    alk_free(lat1);
    return rv;
}

/* ---- the search (spec §8.1) ---- */

typedef struct task {
    const job *jb;
    bool block; /* a row block of a partitioned solve (see solve_partitioned) */
    alk__mat block_kernel;
    uint32_t block_first; /* first row of the block */
    alk_cmvm_method block_method;
    int hard_dc;
    int decompose_dc;
    alk__mat w1; /* prebuilt first decomposition, or empty */
    alk__mat w2;
    bool skip; /* same decomposition as an earlier task: its result would be identical */
    config result;
    int rv;
    alk_diag diag;
} task;

typedef struct pool {
    task *tasks;
    size_t n_tasks;
    atomic_size_t next;
} pool;

static void *worker(void *arg) {
    pool *p = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n_tasks) {
            return NULL;
        }
        task *t = &p->tasks[i];
        if (t->block) {
            t->rv = alk__solve_single(&t->block_kernel, t->block_method, t->jb->q + t->block_first,
                                      t->jb->lat + t->block_first, &t->jb->quality, false, NULL,
                                      &t->result.s0, &t->diag);
        } else if (!t->skip) {
            t->rv = run_config(t->jb, t->hard_dc, t->decompose_dc, &t->w1, &t->w2, &t->result,
                               &t->diag);
        }
    }
}

static unsigned thread_count(unsigned wanted, size_t n_tasks) {
    if (wanted == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        wanted = cores > 0 ? (unsigned)cores : 1;
    }
    if (wanted > n_tasks) {
        wanted = (unsigned)n_tasks;
    }
    return wanted == 0 ? 1 : wanted;
}

/* Runs every task on up to `threads` threads (the caller's included). */
static void run_tasks(pool *p, unsigned threads) {
    pthread_t ids[64];
    unsigned started = 0;
    threads = threads > 64 ? 64 : threads;
    for (unsigned t = 1; t < threads; t++) {
        if (pthread_create(&ids[started], NULL, worker, p) != 0) {
            break; /* fewer threads is fine: the caller works too */
        }
        started++;
    }
    (void)worker(p);
    for (unsigned t = 0; t < started; t++) {
        (void)pthread_join(ids[t], NULL);
    }
}

static int max_decompose_dc(const alk__decomp *decomp, int hard_dc, int *ret_maxd) {
    alk__mat w1 = {0}, w2 = {0};
    int rv = alk__decomp_build(decomp, hard_dc, &w1, &w2);
    if (rv != ALK_OK) {
        return rv;
    }
    uint32_t most = 0;
    for (uint32_t j = 0; j < w2.cols; j++) {
        uint32_t count = 0;
        for (uint32_t r = 0; r < w2.rows; r++) {
            count += w2.v[(size_t)r * w2.cols + j] != 0.0;
        }
        most = count > most ? count : most;
    }
    int d = alk_iceil_log2((float)most);
    *ret_maxd = d > 0 ? d : 0;
    alk__mat_fini(&w1);
    alk__mat_fini(&w2);
    return ALK_OK;
}

void alk_cmvm_result_fini(alk_cmvm_result *result) {
    if (result == NULL) {
        return;
    }
    alk_program_free(result->stage0);
    alk_program_free(result->stage1);
    memset(result, 0, sizeof(*result));
}

size_t alk_cmvm_count_adders(const alk_program *program) {
    size_t n = 0;
    for (size_t i = 0; i < program->n_ops; i++) {
        n += program->ops[i].opcode == ALK_OP_ADD || program->ops[i].opcode == ALK_OP_SUB;
    }
    return n;
}

static int finish(config *best, alk_cmvm_result *ret_result) {
    alk_cmvm_result r = {0};
    int rv = alk__stage_to_program(&best->s0, &r.stage0);
    if (rv == ALK_OK) {
        rv = alk__stage_to_program(&best->s1, &r.stage1);
    }
    if (rv != ALK_OK) {
        alk_cmvm_result_fini(&r);
        return rv;
    }
    r.cost = best->cost;
    r.adders = alk_cmvm_count_adders(r.stage0) + alk_cmvm_count_adders(r.stage1);
    r.latency = alk__stage_max_latency(&best->s1);
    r.decompose_dc = best->decompose_dc;
    *ret_result = r;
    return ALK_OK;
}

/*
 * Improved mode on large kernels (PART_MIN_ROWS inputs or more, where one global CSE would take
 * minutes): the rows are cut into blocks of PART_ROWS inputs, each block's x_b . W_b is solved
 * on its own (CSE without decomposition, in parallel), and every output sums its block partial
 * sums with the latency-ordered adder heap of spec §6. CSE then only shares patterns inside a
 * block, but the work and memory stay bounded per block. There is no search over decompose_dc,
 * and the result may cost more than compat's (global) solution. Stage 1 is the identity.
 *
 * Block size: the work and the memory grow with the block, the CSE quality too. On a random
 * 1024 x 1024 8-bit kernel (2 threads): 128 rows 7.8 s, 0.7 GB; 48 rows 0.2 GB but +9 % cost;
 * 192 rows 15 s, 1.1 GB, -3 %; 256 rows 18 s, 1.6 GB, -6 % (too close to the 2 GB budget: the
 * memory is the queue's live keys, which grow with the block).
 */
enum { PART_MIN_ROWS = 513, PART_ROWS = 128 };

static int solve_partitioned(const job *jb, const alk_cmvm_options *options, config *ret,
                             alk_diag *diag) {
    uint32_t n = jb->kernel->rows, m = jb->kernel->cols;
    uint32_t block_rows = PART_ROWS;
    size_t n_blocks = ((size_t)n + block_rows - 1) / block_rows;
    task *tasks = alk_calloc(n_blocks, sizeof(task));
    alk__term *terms = alk_malloc((n_blocks + 1) * sizeof(alk__term));
    config c = {0};
    int rv = ALK_ENOMEM;
    if (tasks == NULL || terms == NULL) {
        goto done;
    }
    alk_cmvm_method method = jb->method0;
    if (options->hard_dc >= 0 && method != ALK_CMVM_DUMMY) {
        method = ALK_CMVM_WMC_DC; /* as the reference does without decomposition (spec §7) */
    }
    for (size_t b = 0; b < n_blocks; b++) {
        task *t = &tasks[b];
        uint32_t first = (uint32_t)(b * block_rows);
        uint32_t rows = n - first < block_rows ? n - first : block_rows;
        t->jb = jb;
        t->block = true;
        t->block_first = first;
        t->block_method = method;
        t->block_kernel = (alk__mat){rows, m, alk_malloc((size_t)rows * m * sizeof(double))};
        if (t->block_kernel.v == NULL) {
            goto done;
        }
        memcpy(t->block_kernel.v, jb->kernel->v + (size_t)first * m,
               (size_t)rows * m * sizeof(double));
    }
    pool p = {.tasks = tasks, .n_tasks = n_blocks};
    atomic_init(&p.next, 0);
    run_tasks(&p, thread_count(options->threads, n_blocks));
    for (size_t b = 0; b < n_blocks; b++) {
        if (tasks[b].rv != ALK_OK) {
            rv = tasks[b].rv;
            if (diag != NULL) {
                *diag = tasks[b].diag;
            }
            goto done;
        }
    }

    /* Stage 0: the reads of every input, then each block's adders, then the output sums. */
    alk__stage *s0 = &c.s0;
    s0->n_in = n;
    s0->n_out = m;
    s0->inp_shifts = alk_malloc(((size_t)n + 1) * sizeof(int32_t));
    s0->out_idxs = alk_malloc(((size_t)m + 1) * sizeof(int32_t));
    s0->out_shifts = alk_malloc(((size_t)m + 1) * sizeof(int32_t));
    s0->out_negs = alk_malloc(((size_t)m + 1) * sizeof(bool));
    size_t total = n;
    for (size_t b = 0; b < n_blocks; b++) {
        total += tasks[b].result.s0.n_ops - tasks[b].block_kernel.rows;
    }
    s0->ops = alk_malloc((total + 1) * sizeof(alk__op));
    s0->cap_ops = total + 1;
    if (s0->inp_shifts == NULL || s0->out_idxs == NULL || s0->out_shifts == NULL ||
        s0->out_negs == NULL || s0->ops == NULL) {
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        s0->ops[s0->n_ops++] = (alk__op){(int32_t)i, -1, -1, 0, jb->q[i], jb->lat[i], 0.0f};
    }
    int32_t *base = alk_malloc((n_blocks + 1) * sizeof(int32_t));
    if (base == NULL) {
        goto done;
    }
    for (size_t b = 0; b < n_blocks; b++) {
        const alk__stage *bs = &tasks[b].result.s0;
        int32_t rows = (int32_t)tasks[b].block_kernel.rows, first = (int32_t)tasks[b].block_first;
        base[b] = (int32_t)s0->n_ops - rows;
        memcpy(s0->inp_shifts + first, bs->inp_shifts, (size_t)rows * sizeof(int32_t));
        for (size_t i = (size_t)rows; i < bs->n_ops; i++) {
            alk__op op = bs->ops[i];
            op.id0 = op.id0 < rows ? first + op.id0 : base[b] + op.id0;
            op.id1 = op.id1 < rows ? first + op.id1 : base[b] + op.id1;
            s0->ops[s0->n_ops++] = op;
        }
    }
    for (uint32_t j = 0; j < m; j++) {
        size_t n_terms = 0;
        for (size_t b = 0; b < n_blocks; b++) {
            const alk__stage *bs = &tasks[b].result.s0;
            int32_t idx = bs->out_idxs[j], rows = (int32_t)tasks[b].block_kernel.rows;
            if (idx < 0) {
                continue;
            }
            int32_t id = idx < rows ? (int32_t)tasks[b].block_first + idx : base[b] + idx;
            terms[n_terms++] = (alk__term){id, bs->out_negs[j], bs->out_shifts[j]};
        }
        if (n_terms == 0) {
            s0->out_idxs[j] = -1;
            s0->out_shifts[j] = 0;
            s0->out_negs[j] = false;
        } else if (n_terms == 1) {
            s0->out_idxs[j] = terms[0].id;
            s0->out_shifts[j] = terms[0].shift;
            s0->out_negs[j] = terms[0].neg;
        } else {
            int32_t id, shift;
            bool neg;
            rv = alk__reduce_terms(&s0->ops, &s0->n_ops, &s0->cap_ops, terms, n_terms, &id, &neg,
                                   &shift);
            if (rv != ALK_OK) {
                alk_free(base);
                goto done;
            }
            s0->out_idxs[j] = id;
            s0->out_shifts[j] = shift;
            s0->out_negs[j] = neg;
        }
    }
    alk_free(base);

    /* Stage 1: the identity on the m sums. */
    alk__stage *s1 = &c.s1;
    s1->n_in = s1->n_out = m;
    s1->inp_shifts = alk_calloc((size_t)m + 1, sizeof(int32_t));
    s1->out_idxs = alk_malloc(((size_t)m + 1) * sizeof(int32_t));
    s1->out_shifts = alk_calloc((size_t)m + 1, sizeof(int32_t));
    s1->out_negs = alk_calloc((size_t)m + 1, sizeof(bool));
    s1->ops = alk_malloc(((size_t)m + 1) * sizeof(alk__op));
    if (s1->inp_shifts == NULL || s1->out_idxs == NULL || s1->out_shifts == NULL ||
        s1->out_negs == NULL || s1->ops == NULL) {
        rv = ALK_ENOMEM;
        goto done;
    }
    for (uint32_t j = 0; j < m; j++) {
        int32_t idx = s0->out_idxs[j];
        alk__fq q = idx >= 0 ? s0->ops[idx].qint : (alk__fq){0.0f, 0.0f, INFINITY};
        float lat = idx >= 0 ? s0->ops[idx].latency : 0.0f;
        s1->ops[s1->n_ops++] = (alk__op){(int32_t)j, -1, -1, 0, q, lat, 0.0f};
        s1->out_idxs[j] = idx >= 0 ? (int32_t)j : -1;
    }
    c.cost = alk__stage_cost(&c.s1, alk__stage_cost(&c.s0, 0.0f));
    c.decompose_dc = -1;
    *ret = c;
    c = (config){0};
    rv = ALK_OK;
done:
    for (size_t b = 0; tasks != NULL && b < n_blocks; b++) {
        alk__mat_fini(&tasks[b].block_kernel);
        config_fini(&tasks[b].result);
    }
    config_fini(&c);
    alk_free(tasks);
    alk_free(terms);
    return rv;
}

/* ---- improved mode ---- */

/* Improved mode's end game starts at the first extraction of a key occurring at most twice. */
enum { END_GAME_COUNT = 2 };

static size_t config_adders(const config *c) {
    size_t n = 0;
    for (size_t i = 0; i < c->s0.n_ops; i++) {
        n += c->s0.ops[i].opcode >= 0;
    }
    for (size_t i = 0; i < c->s1.n_ops; i++) {
        n += c->s1.ops[i].opcode >= 0;
    }
    return n;
}

/*
 * Improved mode's choice: among the candidates no worse than compat's solution `fallback` on
 * both cost and output latency (so it never loses to compat on either), the fewest adders, then
 * the lowest cost, then the lowest latency. Returns `best` or `candidate`.
 */
static config *pick_improvement(const config *fallback, config *best, config *candidate) {
    float lat_f = alk__stage_max_latency(&fallback->s1);
    float lat_c = alk__stage_max_latency(&candidate->s1);
    if (candidate->cost > fallback->cost || lat_c > lat_f) {
        return best;
    }
    size_t adders_b = config_adders(best), adders_c = config_adders(candidate);
    if (adders_c != adders_b) {
        return adders_c < adders_b ? candidate : best;
    }
    if (candidate->cost != best->cost) {
        return candidate->cost < best->cost ? candidate : best;
    }
    return lat_c < alk__stage_max_latency(&best->s1) ? candidate : best;
}

/*
 * Completes an improved configuration whose stage 0 is in `c` (W2, method1 and decompose_dc
 * set): stage 1 solved with `quality`.
 */
static int solve_stage1(config *c, const alk__quality *quality, alk_diag *diag) {
    uint32_t m = c->w2.rows;
    alk__fq *q1 = alk_malloc(((size_t)m + 1) * sizeof(alk__fq));
    float *lat1 = alk_malloc(((size_t)m + 1) * sizeof(float));
    int rv = q1 == NULL || lat1 == NULL ? ALK_ENOMEM : ALK_OK;
    if (rv == ALK_OK) {
        (void)stage1_inputs(&c->s0, q1, lat1);
        alk__stage_fini(&c->s1);
        rv = alk__solve_single(&c->w2, c->method1, q1, lat1, quality, false, NULL, &c->s1, diag);
    }
    if (rv == ALK_OK) {
        c->cost = alk__stage_cost(&c->s1, alk__stage_cost(&c->s0, 0.0f));
    }
    alk_free(q1);
    alk_free(lat1);
    return rv;
}

/*
 * Improved mode's branch of configuration `from` (of job `jb`): its stage 0 after the first `n`
 * extractions of its log, continued with the conflict-aware selection of `quality`, then its
 * stage 1 solved the same way.
 */
static int branch_config(const job *jb, const alk__quality *quality, const config *from, size_t n,
                         config *ret, alk_diag *diag) {
    config c = {.decompose_dc = from->decompose_dc, .method1 = from->method1};
    int rv = alk__mat_copy(&from->w2, &c.w2);
    if (rv == ALK_OK) {
        rv = alk__cse_branch(&from->w1, from->method0, jb->q, jb->lat, &from->log, n, quality,
                             &c.s0, diag);
    }
    if (rv == ALK_OK) {
        rv = solve_stage1(&c, quality, diag);
    }
    if (rv == ALK_OK) {
        *ret = c;
        c = (config){0};
    }
    config_fini(&c);
    return rv;
}

/* `from` with its stage 1 solved again with `quality` (the reference's selection). */
static int restage_config(const alk__quality *quality, const config *from, config *ret,
                          alk_diag *diag) {
    config c = {.decompose_dc = from->decompose_dc, .method1 = from->method1};
    int rv = alk__mat_copy(&from->w2, &c.w2);
    if (rv == ALK_OK) {
        rv = alk__stage_copy(&from->s0, &c.s0);
    }
    if (rv == ALK_OK) {
        rv = solve_stage1(&c, quality, diag);
    }
    if (rv == ALK_OK) {
        *ret = c;
        c = (config){0};
    }
    config_fini(&c);
    return rv;
}

/*
 * Improved mode's budget rules. The work units are the CSE's (alk__stage.work, about 50
 * instructions each in either selection); the factors are measured with callgrind on random
 * kernels: a conflict-aware end game costs 1x (16x16) to 3x (64x64) the work compat's selection
 * spent on the same stretch, plus about 5 units per pair of digits it starts by listing; a whole
 * conflict-aware configuration 2x-3x compat's.
 */
enum {
    BRANCH_SEEDS = 4,                        /* tie orders tried on the end game */
    MAX_CANDIDATES = 2 * (BRANCH_SEEDS + 1), /* each also with its stage 1 re-solved */
    TAIL_FACTOR = 3,
    FULL_FACTOR_X2 = 6, /* 3 */
    PAIR_WORK = 5,
    /* Listing the pairs takes about 100 bytes each at the peak: a bound on the memory. */
    MAX_PAIRS = 1 << 22,
};

static uint64_t config_work(const config *c) {
    return c->s0.work + c->s1.work;
}

/*
 * The earliest point of `c`'s end game (a number of extractions of its log) from where a branch is
 * expected to cost at most `budget`: the conflict-aware end game costs about TAIL_FACTOR times
 * what compat's spent after that point, after listing the pairs of digits left. SIZE_MAX if none.
 */
static size_t affordable_start(const config *c, uint64_t budget) {
    const alk__cse_log *log = &c->log;
    for (size_t n = log->end_game; n < log->len; n++) {
        uint64_t done = n == 0 ? 0 : log->work[n - 1];
        uint64_t pairs = alk__cse_log_pairs(log, n);
        if (pairs <= MAX_PAIRS &&
            TAIL_FACTOR * (c->s0.work - done) + PAIR_WORK * pairs + n <= budget) {
            return n;
        }
    }
    return SIZE_MAX;
}

/*
 * Improved mode's candidates beside compat's chosen configuration (task `t`), within `budget`
 * work units, cheap and good ones first: the end game again from the earliest affordable
 * point, conflict-aware; the whole configuration solved conflict-aware; the end game with
 * BRANCH_SEEDS - 1 other tie orders. Each also with its stage 1 solved the reference's way
 * (`compat_quality`). The candidates go to `cands` (MAX_CANDIDATES, zeroed, owned by the
 * caller); *ret_chosen becomes the best one no worse than compat's (pick_improvement) or stays
 * compat's. A candidate that runs over the budget is dropped, and ends the list.
 */
static int improve(const job *ij, const alk__quality *compat_quality, task *t, uint64_t budget,
                   config *cands, config **ret_chosen, alk_diag *diag) {
    config *fallback = &t->result;
    uint64_t spent = 0, branch_cost = 0;
    size_t n = 0;
    int rv = ALK_OK;
    size_t start = affordable_start(fallback, budget);
    for (int round = 0; round <= BRANCH_SEEDS && rv == ALK_OK; round++) {
        alk__quality quality = ij->quality;
        quality.work_limit = budget - spent;
        config c = {0};
        if (round == 1) {
            uint64_t expected =
                FULL_FACTOR_X2 * fallback->s0.work / 2 + PAIR_WORK * fallback->s0.pairs;
            if (spent + expected > budget || fallback->s0.pairs > MAX_PAIRS) {
                continue;
            }
            job full = *ij;
            full.quality = quality;
            rv = run_config(&full, t->hard_dc, t->decompose_dc, NULL, NULL, &c, diag);
        } else {
            /* The other tie orders cost about what the first branch did. */
            if (start == SIZE_MAX || spent + branch_cost > budget) {
                continue;
            }
            quality.tie_seed = (uint64_t)(round == 0 ? 0 : round - 1);
            rv = branch_config(ij, &quality, fallback, start, &c, diag);
            branch_cost = rv == ALK_OK ? config_work(&c) : branch_cost;
        }
        if (rv == ALK_ELIMIT) {
            config_fini(&c);
            rv = ALK_OK;
            break; /* over the budget */
        }
        if (rv == ALK_OK) {
            spent += config_work(&c);
            cands[n] = c;
            rv = restage_config(compat_quality, &cands[n], &cands[n + 1], diag);
            spent += rv == ALK_OK ? cands[n + 1].s1.work : 0;
            n += 2;
        }
    }
    for (size_t k = 0; k < n && rv == ALK_OK; k++) {
        *ret_chosen = pick_improvement(fallback, *ret_chosen, &cands[k]);
    }
    return rv;
}

int alk_cmvm_solve(const alk_cmvm_problem *problem, const alk_cmvm_options *options,
                   alk_cmvm_result *ret_result, alk_diag *diag) {
    alk_cmvm_options defaults;
    if (options == NULL) {
        alk_cmvm_options_init(&defaults);
        options = &defaults;
    }
    if (options->method0 == ALK_CMVM_AUTO || options->method0 == ALK_CMVM_DUMMY_DC) {
        return alk_diag_set(diag, ALK_EINVAL, "method0 cannot be '%s'",
                            alk_cmvm_method_name(options->method0));
    }
    int rv = alk_cmvm_check(problem, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    uint32_t n = problem->n_in, m = problem->n_out;
    alk__mat kernel = {n, m, (double *)problem->kernel};
    alk__fq *q = alk_malloc(n * sizeof(alk__fq));
    float *lat = alk_malloc(n * sizeof(float));
    task *tasks = NULL;
    size_t n_tasks = 0;
    alk__decomp *decomp = NULL;
    config cands[MAX_CANDIDATES]; /* improved mode's candidates */
    memset(cands, 0, sizeof(cands));
    if (q == NULL || lat == NULL) {
        rv = ALK_ENOMEM;
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        alk_qint qi =
            problem->intervals != NULL ? problem->intervals[i] : (alk_qint){-128.0, 127.0, 1.0};
        q[i] = (alk__fq){(float)qi.min, (float)qi.max, (float)qi.step};
        lat[i] = problem->latencies != NULL ? (float)problem->latencies[i] : 0.0f;
    }
    if (options->mode != ALK_CMVM_COMPAT && n >= PART_MIN_ROWS) {
        job jb = {
            &kernel, NULL, q, lat, options->method0, options->method1, {.cancel = options->cancel},
            0.0f};
        config c = {0};
        rv = solve_partitioned(&jb, options, &c, diag);
        if (rv == ALK_OK) {
            rv = finish(&c, ret_result);
        }
        config_fini(&c);
        goto done;
    }
    /* The distances are needed unless the only configuration is "no decomposition". */
    int resolved_dc = options->decompose_dc;
    if (!options->search_all_decompose_dc) {
        int h = options->hard_dc < 0 ? INT_MAX : options->hard_dc;
        int log2_n = (int)ceilf(log2f((float)n));
        int d = resolved_dc == -2 ? h : (h < resolved_dc ? h : resolved_dc);
        resolved_dc = d < log2_n ? d : log2_n;
    }
    rv = alk__decomp_new(&kernel, options->search_all_decompose_dc || resolved_dc != -1, &decomp);
    if (rv != ALK_OK) {
        goto done;
    }
    /*
     * Every configuration runs the reference's selection (compat's solution is improved mode's
     * fallback); improved mode also keeps the log of each stage 0's extractions, and
     * without the search solves the configuration once more with the conflict-aware selection.
     */
    bool improved = options->mode != ALK_CMVM_COMPAT;
    alk__quality compat_quality = {
        .cancel = options->cancel,
        .end_game_count = improved ? END_GAME_COUNT : 0,
    };
    alk__quality improved_quality = {
        .conflict_aware = true,
        .cancel = options->cancel,
    };
    float min_lat = 0.0f;
    if (options->hard_dc >= 0 || options->search_all_decompose_dc) {
        alk__stage s = {0};
        rv = alk__solve_single(&kernel, ALK_CMVM_DUMMY, q, lat, &compat_quality, true, NULL, &s,
                               diag);
        min_lat = rv == ALK_OK ? alk__stage_max_latency(&s) : 0.0f;
        alk__stage_fini(&s);
        if (rv != ALK_OK) {
            goto done;
        }
    }
    job jobs[2] = {
        {&kernel, decomp, q, lat, options->method0, options->method1, compat_quality, min_lat},
        {&kernel, decomp, q, lat, options->method0, options->method1, improved_quality, min_lat},
    };

    int hard_dc = options->hard_dc;
    int first = options->decompose_dc, last = options->decompose_dc;
    if (options->search_all_decompose_dc) {
        hard_dc = hard_dc < 0 ? INT_MAX : hard_dc;
        int maxd;
        rv = max_decompose_dc(decomp, hard_dc, &maxd);
        if (rv != ALK_OK) {
            goto done;
        }
        first = 0;
        last = maxd;
    }
    n_tasks = (size_t)(last - first + 1);
    tasks = alk_calloc(n_tasks, sizeof(task));
    if (tasks == NULL) {
        rv = ALK_ENOMEM;
        goto done;
    }
    int log2_n = (int)ceilf(log2f((float)n));
    for (size_t k = 0; k < n_tasks; k++) {
        task *t = &tasks[k];
        t->jb = &jobs[0];
        t->hard_dc = hard_dc;
        t->decompose_dc = first + (int)k;
        /* Without a budget nothing is retried, so a depth whose decomposition equals an
         * earlier one gives the same solution; the earlier (smaller) depth wins the tie. */
        if (!options->search_all_decompose_dc || hard_dc != INT_MAX) {
            continue;
        }
        if (t->decompose_dc > log2_n) {
            /* Clamped to log2(n) inside the configuration (spec §8.1): a duplicate. */
            t->skip = log2_n >= first;
            continue;
        }
        rv = alk__decomp_build(decomp, t->decompose_dc, &t->w1, &t->w2);
        if (rv != ALK_OK) {
            goto done;
        }
        for (size_t e = 0; e < k; e++) {
            const task *u = &tasks[e];
            if (u->w1.v != NULL && memcmp(u->w1.v, t->w1.v, (size_t)n * m * sizeof(double)) == 0 &&
                memcmp(u->w2.v, t->w2.v, (size_t)m * m * sizeof(double)) == 0) {
                t->skip = true;
                break;
            }
        }
        if (t->skip) {
            alk__mat_fini(&t->w1);
            alk__mat_fini(&t->w2);
        }
    }
    pool p = {.tasks = tasks, .n_tasks = n_tasks};
    atomic_init(&p.next, 0);
    run_tasks(&p, thread_count(options->threads, n_tasks));

    /* The reference keeps the cheapest candidate, ties to the smallest depth. */
    size_t best = SIZE_MAX;
    uint64_t compat_work = 0;
    for (size_t k = 0; k < n_tasks; k++) {
        if (tasks[k].skip) {
            continue;
        }
        if (tasks[k].rv != ALK_OK) {
            rv = tasks[k].rv;
            if (diag != NULL) {
                *diag = tasks[k].diag;
            }
            goto done;
        }
        compat_work += tasks[k].result.s0.work + tasks[k].result.s1.work;
        if (best == SIZE_MAX || tasks[k].result.cost < tasks[best].result.cost) {
            best = k;
        }
    }
    config *chosen = &tasks[best].result;
    if (improved) {
        /* Spec §8.1's search is itself a search over alternatives: with it, improved mode adds
         * a tenth of compat's work (conversions; its memory traffic makes that about 15 % in
         * time); without it, up to five times compat's work (the five candidates of a 16x16
         * kernel). */
        uint64_t budget = options->search_all_decompose_dc ? compat_work / 10 : compat_work * 5;
        rv = improve(&jobs[1], &compat_quality, &tasks[best], budget, cands, &chosen, diag);
        if (rv != ALK_OK) {
            goto done;
        }
    }
    rv = finish(chosen, ret_result);
done:
    for (size_t k = 0; k < sizeof(cands) / sizeof(cands[0]); k++) {
        config_fini(&cands[k]);
    }
    for (size_t k = 0; tasks != NULL && k < n_tasks; k++) {
        config_fini(&tasks[k].result);
        alk__mat_fini(&tasks[k].w1);
        alk__mat_fini(&tasks[k].w2);
    }
    alk__decomp_free(decomp);
    alk_free(tasks);
    alk_free(q);
    alk_free(lat);
    if (rv == ALK_ENOMEM) {
        (void)alk_diag_set(diag, ALK_ENOMEM, "out of memory in the CMVM solver");
    }
    return rv;
}
