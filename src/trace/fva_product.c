/*
 * Arrays of symbolic variables, part 4 of 7 (see fva_int.h): matrix products and einsum (spec
 * trace-alir.md §2.5, §2.6; cmvm.md §8.2).
 *
 * Design. A product of variables by a constant matrix is the reason this library exists: it is
 * solved as a constant-matrix-vector multiplication (CMVM), one input vector at a time, and the
 * solver's two-stage adder program is replayed onto the trace (replay.h) so its adders become
 * trace nodes. Before the solver, an optional offload hook and the binary-LUT packing take their
 * weights out of the matrix; the parts are summed per output as the reference does. Products of
 * two variable arrays, and collapsed (constant-valued) variable matrices, take the plain paths of
 * the reference (mmm, numeric tensordot). einsum reduces to these products through reshapes and
 * transposes, exactly as the reference's einsum does, so it creates the same nodes.
 *
 * Memory: arena, except the solver's programs and the CMVM result when it is not cached
 * (alk_malloc, freed before returning). Thread rule: the thread that owns the trace context.
 */
#include "trace/fva_int.h"
#include "core/require.h"
#include "trace/comb.h"
#include "trace/replay.h"

#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Products (§2.5, §2.6)                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Every element of a variable array is a single value (low == high): the reference then treats the
 * array as the constant matrix it is (see matmul_var), so no product of variables is made. */
static bool collapsed(const alk_fva *a) {
    for (size_t j = 0; j < a->size; j++) {
        alk_fvar *v = get(a, j).v;
        if (alk_fv_low(v) != alk_fv_high(v)) {
            return false;
        }
    }
    return true;
}

/* tensordot(a, b, axes=1) shapes: a.shape[:-1] + b.shape[1:]. */
static bool product_shape(alk_trace *t, const alk_fva *a, const alk_fva *b, size_t *ndim,
                          size_t *shape, size_t *k) {
    if (a->ndim == 0 || b->ndim == 0) {
        alk__trace_set_error(t, ALK_EINVAL, "matmul needs arrays of at least one dimension");
        return false;
    }
    *k = a->shape[a->ndim - 1];
    if (b->shape[0] != *k) {
        alk__trace_set_error(t, ALK_EINVAL,
                             "matrix shapes do not match: contraction of %zu and %zu elements", *k,
                             b->shape[0]);
        return false;
    }
    *ndim = a->ndim - 1 + b->ndim - 1;
    if (*ndim > ALK_FVA_MAX_DIM) {
        alk__trace_set_error(t, ALK_EINVAL, "matmul result has too many dimensions");
        return false;
    }
    size_t n = 0;
    for (size_t d = 0; d + 1 < a->ndim; d++) {
        shape[n++] = a->shape[d];
    }
    for (size_t d = 1; d < b->ndim; d++) {
        shape[n++] = b->shape[d];
    }
    return true;
}

/* mmm: out[i, j] = heap sum of a[i, :] * b[:, j]. Each product goes through binary_elem, so a
 * number times a variable is the scalar multiplication of the reference (SCM unless trivial). */
static alk_fva *mmm(alk_trace *t, const alk_fva *a, const alk_fva *b) {
    size_t ndim, shape[ALK_FVA_MAX_DIM], k;
    if (!product_shape(t, a, b, &ndim, shape, &k)) {
        return NULL;
    }
    size_t rows = a->size / (k ? k : 1), cols = b->size / (k ? k : 1);
    if (k == 0) {
        alk__trace_set_error(t, ALK_EINVAL, "matmul over an empty axis");
        return NULL;
    }
    alk_fva *r = alk__fva_new(t, ndim, shape, false, a->numeric ? b->hw : a->hw);
    alk_fvar **terms = alk__trace_alloc(t, k * sizeof(alk_fvar *));
    if (r == NULL || terms == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < rows && !failed(t); i++) {
        for (size_t j = 0; j < cols && !failed(t); j++) {
            for (size_t c = 0; c < k; c++) {
                elem x = get(a, i * k + c), y = get(b, c * cols + j);
                terms[c] = as_var(t, alk__fva_binary_elem(t, ALK_MUL, x, y), r->hw);
            }
            r->vars[i * cols + j] = alk__fva_heap_sum(t, terms, k);
        }
    }
    return done(t, r);
}

/* Sum of the parts of one output (np.sum(FVArray(parts), axis=0)). */
static alk_fvar *sum_parts(alk_trace *t, elem *parts, size_t n, alk_hwconf hw) {
    alk_fvar *items[3];
    for (size_t p = 0; p < n; p++) {
        items[p] = as_var(t, parts[p], hw);
    }
    return alk__fva_heap_sum(t, items, n);
}

/*
 * The value of a one-bit input whose bit is set: its step for (0, step), and -step for a signed
 * (-step, 0), which the reference's packing takes for (0, step) too (spec cmvm §8.2 [unsure]):
 * its addresses went negative and the lookup refused them ("the table's interval does not cover
 * the variable's values", a floor division by 2 before a Linear layer).
 */
static double bit_value(alk_fvar *x) {
    return alk_fv_low(x) < 0 ? alk_fv_low(x) : alk_fv_step(x);
}

/* Packs one-bit inputs into lookup tables (spec cmvm §8.2 step 2); zeroes the packed weights of
 * `w` and writes the LUT part of each output (a number 0.0 when a column has no group). */
static int binary_lut(alk_trace *t, double *w, size_t k, size_t n_out, alk_fvar **v, elem *lut_part,
                      bool *ret_any) {
    int width = t->solver.binary_lut_width;
    bool *bit = alk__trace_alloc(t, k * sizeof(bool));
    size_t *active = alk__trace_alloc(t, k * sizeof(size_t));
    if (bit == NULL || active == NULL) {
        return t->error;
    }
    bool any_bit = false;
    for (size_t i = 0; i < k; i++) {
        int kk, ii, ff;
        alk__fv_kif(v[i], &kk, &ii, &ff);
        bit[i] = kk + ii + ff == 1;
        any_bit = any_bit || bit[i];
    }
    *ret_any = false;
    if (!any_bit) {
        return ALK_OK;
    }
    /* Groups per column first (on the unmodified matrix), then zero and build. */
    size_t *groups = alk__trace_alloc(t, (k + 1) * n_out * sizeof(size_t));
    size_t *n_groups = alk__trace_alloc(t, n_out * sizeof(size_t));
    if (groups == NULL || n_groups == NULL) {
        return t->error;
    }
    for (size_t j = 0; j < n_out; j++) {
        size_t n = 0;
        for (size_t i = 0; i < k; i++) {
            if (bit[i] && w[i * n_out + j] != 0.0) {
                active[n++] = i;
            }
        }
        /* Stable sort by (msb, msb - lsb + 1) of |w|. */
        for (size_t a = 1; a < n; a++) {
            for (size_t b = a; b > 0; b--) {
                double wa = fabs(w[active[b - 1] * n_out + j]), wb = fabs(w[active[b] * n_out + j]);
                int ea, eb;
                (void)frexp(wa, &ea);
                (void)frexp(wb, &eb);
                int ma = ea - 1, mb = eb - 1;
                int la = ma - lsb_i8(wa) + 1, lb = mb - lsb_i8(wb) + 1;
                if (ma < mb || (ma == mb && la <= lb)) {
                    break;
                }
                size_t tmp = active[b];
                active[b] = active[b - 1];
                active[b - 1] = tmp;
            }
        }
        n_groups[j] = width > 0 ? n / (size_t)width : 0;
        memcpy(groups + j * (k + 1), active, n * sizeof(size_t));
    }
    for (size_t j = 0; j < n_out; j++) {
        lut_part[j] = (elem){NULL, 0.0, NULL};
        alk_fvar **terms =
            alk__trace_alloc(t, (n_groups[j] ? n_groups[j] : 1) * sizeof(alk_fvar *));
        alk_fvar **addr = alk__trace_alloc(t, (size_t)width * sizeof(alk_fvar *));
        double *table = alk__trace_alloc(t, ((size_t)1 << width) * sizeof(double));
        if (terms == NULL || addr == NULL || table == NULL) {
            return t->error;
        }
        for (size_t g = 0; g < n_groups[j]; g++) {
            const size_t *idx = groups + j * (k + 1) + g * (size_t)width;
            for (int q = 0; q < width; q++) {
                alk_fvar *x = v[idx[q]];
                double one = bit_value(x);
                if (one != 1.0) {
                    x = alk_fv_mul_const(t, x, 1.0 / one);
                }
                addr[q] = alk_fv_mul_const(t, x, ldexp(1.0, q));
            }
            alk_fvar *address = alk__fva_heap_sum(t, addr, (size_t)width);
            /* The table is read in the order of the address node's raw values: a sum of
             * negated bits is a negated node, whose raw values run the other way. */
            size_t last = ((size_t)1 << width) - 1;
            bool reversed = address != NULL && alk_fv_factor(address) < 0;
            for (size_t c = 0; c <= last; c++) {
                double s = 0;
                for (int q = 0; q < width; q++) {
                    if (c & ((size_t)1 << q)) {
                        s += w[idx[q] * n_out + j] * bit_value(v[idx[q]]);
                    }
                }
                table[reversed ? last - c : c] = s;
            }
            alk_ftable *tab = alk_ftable_new(t, table, (size_t)1 << width);
            alk_qint range = {0.0, (double)(((size_t)1 << width) - 1), 1.0};
            terms[g] = alk_fv_lookup(t, address, tab, &range);
            *ret_any = true;
        }
        if (n_groups[j] > 0) {
            lut_part[j] = (elem){alk__fva_heap_sum(t, terms, n_groups[j]), 0, NULL};
        }
    }
    for (size_t j = 0; j < n_out; j++) {
        for (size_t g = 0; g < n_groups[j]; g++) {
            const size_t *idx = groups + j * (k + 1) + g * (size_t)width;
            for (int q = 0; q < width; q++) {
                w[idx[q] * n_out + j] = 0.0;
            }
        }
    }
    return t->error;
}

/*
 * Offload (spec cmvm §8.2 step 1): asks the hook which weights of `w` to realise as plain
 * products, takes them out of `w`, and writes their per-output sums (mmm of the reference: the
 * products of every input with the masked weights, zeros included, heap-summed) to `part`.
 */
static int offload_part(alk_trace *t, double *w, size_t k, size_t n_out, alk_fvar **v, elem *part,
                        bool *ret_have) {
    *ret_have = false;
    size_t cells = k * n_out;
    bool *mask = alk__trace_alloc(t, (cells ? cells : 1) * sizeof(bool));
    double *w_off = alk__trace_alloc(t, (cells ? cells : 1) * sizeof(double));
    if (mask == NULL || w_off == NULL) {
        return t->error;
    }
    memset(mask, 0, cells * sizeof(bool));
    alk_diag diag = {{0}};
    int rv = t->solver.offload(t->solver.offload_ctx, w, k, n_out, v, mask, &diag);
    if (rv != ALK_OK) {
        return alk__trace_set_error(t, rv, "the offload hook failed: %s",
                                    diag.message[0] != '\0' ? diag.message : alk_err_name(rv));
    }
    bool any = false;
    for (size_t c = 0; c < cells; c++) {
        w_off[c] = mask[c] ? w[c] : 0.0;
        w[c] = mask[c] ? 0.0 : w[c];
        any = any || mask[c];
    }
    if (!any) {
        return ALK_OK;
    }
    size_t shape_v[1] = {k}, shape_w[2] = {k, n_out};
    alk_fva *products =
        mmm(t, alk_fva_from_vars(t, 1, shape_v, v), alk_fva_numbers(t, 2, shape_w, w_off));
    if (products == NULL) {
        return t->error;
    }
    for (size_t j = 0; j < n_out; j++) {
        part[j] = get(products, j);
    }
    *ret_have = true;
    return ALK_OK;
}

/*
 * Beyond the reference: inputs that are constants other than 0 (a padding value, a convolution's
 * bias alone over its zero padding) are multiplied here, in doubles, and their weights taken out
 * of `w` (k x n_out, row-major); returns the n_out sums to add to the outputs (NULL: out of
 * memory). The reference gives them to the solver, whose intervals of output sums follow quirks
 * of spec cmvm.md §6: a column over constants only could get the interval (0, 0), and stage 1
 * then dropped it as a zero input (a Linear after such a convolution lost the weights' part of
 * the rows over the padding). Zeros stay with the solver, which already leaves them out.
 */
static double *constant_part(alk_trace *t, double *w, size_t k, size_t n_out, alk_fvar **v) {
    double *offset = alk__trace_alloc(t, (n_out ? n_out : 1) * sizeof(double));
    if (offset == NULL) {
        return NULL;
    }
    memset(offset, 0, (n_out ? n_out : 1) * sizeof(double));
    for (size_t i = 0; i < k; i++) {
        double c = alk_fv_low(v[i]);
        if (c == 0.0 || c != alk_fv_high(v[i])) {
            continue;
        }
        for (size_t j = 0; j < n_out; j++) {
            offset[j] += (double)(float)w[i * n_out + j] * c;
            w[i * n_out + j] = 0.0;
        }
    }
    return offset;
}

/* cmvm(cm, v) of spec cmvm §8.2 for one vector `v` (k variables) and the k x n_out matrix `w`
 * (row-major, copied); writes n_out variables. */
static int cmvm_vector(alk_trace *t, const double *w_in, size_t k, size_t n_out, alk_fvar **v,
                       alk_hwconf hw, alk_fvar **out) {
    double *w = alk__trace_alloc(t, (k * n_out != 0 ? k * n_out : 1) * sizeof(double));
    elem *lut = alk__trace_alloc(t, (n_out ? n_out : 1) * sizeof(elem));
    elem *solved = alk__trace_alloc(t, (n_out ? n_out : 1) * sizeof(elem));
    elem *offloaded = alk__trace_alloc(t, (n_out ? n_out : 1) * sizeof(elem));
    if (w == NULL || lut == NULL || solved == NULL || offloaded == NULL) {
        return t->error;
    }
    memcpy(w, w_in, k * n_out * sizeof(double));
    /* An unquantized input has no interval for the solver (frontends.md §2.1 step 9). */
    for (size_t i = 0; i < k; i++) {
        if (v[i] != NULL && !alk__fv_check_quantized(t, v[i])) {
            return t->error;
        }
    }
    double *offset = constant_part(t, w, k, n_out, v);
    if (offset == NULL) {
        return t->error;
    }
    bool have_offload = false;
    if (t->solver.offload != NULL) {
        int rv = offload_part(t, w, k, n_out, v, offloaded, &have_offload);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    bool have_lut = false;
    if (t->solver.binary_lut) {
        int rv = binary_lut(t, w, k, n_out, v, lut, &have_lut);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    /* Only weights left after offload and LUT packing go to the solver; none left, no call. */
    bool any_weight = false;
    for (size_t j = 0; j < k * n_out; j++) {
        /* The reference hands the solver float32 weights (quirk). */
        w[j] = (double)(float)w[j];
        any_weight = any_weight || w[j] != 0.0;
    }
    bool have_solved = false;
    if (any_weight) {
        alk_qint *q = alk__trace_alloc(t, k * sizeof(alk_qint));
        double *lat = alk__trace_alloc(t, k * sizeof(double));
        if (q == NULL || lat == NULL) {
            return t->error;
        }
        for (size_t i = 0; i < k; i++) {
            /* The reference's solver stores intervals as float32 (cmvm.md §0): bounds that are
             * not float32 values (the outputs of an average over 3) are rounded, as it does. */
            q[i] = (alk_qint){(float)alk_fv_low(v[i]), (float)alk_fv_high(v[i]),
                              (float)alk_fv_step(v[i])};
            lat[i] = v[i]->node->latency;
        }
        /* The solver sees each input's interval and latency: it balances the adder tree by
         * when inputs arrive, which is why the same matrix can give different programs. */
        alk_cmvm_problem problem = {(uint32_t)k, (uint32_t)n_out, w, q, lat};
        const alk_cmvm_result *res = NULL;
        alk_cmvm_result owned;
        bool is_owned = false;
        int rv = alk__cmvm_run(t, &problem, &res, &owned, &is_owned);
        if (rv != ALK_OK) {
            return rv;
        }
        /* The solution is two programs (stage 0: inputs to intermediates, stage 1: to outputs);
         * replaying them with the tracing operations makes their adders nodes of this trace. */
        {
            alk__comb *c0 = NULL, *c1 = NULL;
            alk__rval *in = alk__trace_alloc(t, k * sizeof(alk__rval));
            alk__rval *mid = alk__trace_alloc(t, (n_out ? n_out : 1) * sizeof(alk__rval));
            alk__rval *fin = alk__trace_alloc(t, (n_out ? n_out : 1) * sizeof(alk__rval));
            alk_diag diag = {{0}};
            rv = in && mid && fin ? alk__comb_from_program(res->stage0, &c0, &diag) : t->error;
            if (rv == ALK_OK) {
                rv = alk__comb_from_program(res->stage1, &c1, &diag);
            }
            if (rv == ALK_OK &&
                (c0->n_in != k || c0->n_out != n_out || c1->n_in != n_out || c1->n_out != n_out)) {
                rv = alk__trace_set_error(t, ALK_EINTERNAL, "CMVM result has the wrong shape");
            }
            if (rv == ALK_OK) {
                for (size_t i = 0; i < k; i++) {
                    in[i] = (alk__rval){v[i], 0};
                }
                rv = alk__comb_replay(t, c0, in, mid);
            }
            if (rv == ALK_OK) {
                rv = alk__comb_replay(t, c1, mid, fin);
            }
            alk__comb_free(c0);
            alk__comb_free(c1);
            if (is_owned) {
                alk_cmvm_result_fini(&owned);
            }
            if (rv != ALK_OK) {
                return alk__trace_set_error(t, rv, "CMVM replay failed: %s", diag.message);
            }
            for (size_t j = 0; j < n_out; j++) {
                solved[j] = (elem){fin[j].var, fin[j].num, NULL};
            }
        }
        have_solved = true;
    }
    /* Each output is the heap sum of its parts in the reference's order (LUT, solved, offloaded);
     * an output with no part at all is the number 0 as a constant. */
    for (size_t j = 0; j < n_out && !failed(t); j++) {
        elem parts[3];
        size_t n = 0;
        if (have_lut) {
            parts[n++] = lut[j];
        }
        if (have_solved) {
            parts[n++] = solved[j];
        }
        if (have_offload) {
            parts[n++] = offloaded[j];
        }
        out[j] = n == 0 ? num_var(t, 0.0, hw) : sum_parts(t, parts, n, hw);
        if (offset[j] != 0.0) {
            out[j] = alk_fv_add_const(t, out[j], offset[j]);
        }
    }
    return t->error;
}

/* _matmul(a, b) with a variable array a (spec §2.5). */
static alk_fva *matmul_var(alk_trace *t, const alk_fva *a, const alk_fva *b) {
    if (collapsed(a)) {
        /* A constant matrix: numeric product, unless b has real variables. */
        alk_fva *am = alk__fva_new(t, a->ndim, a->shape, true, a->hw);
        if (am == NULL) {
            return NULL;
        }
        for (size_t j = 0; j < a->size; j++) {
            am->nums[j] = alk_fv_low(get(a, j).v);
        }
        alk_fva *bm = NULL;
        if (!b->numeric) {
            if (!collapsed(b)) {
                return alk_fva_matmul(t, am, b);
            }
            bm = alk__fva_new(t, b->ndim, b->shape, true, b->hw);
            if (bm == NULL) {
                return NULL;
            }
            for (size_t j = 0; j < b->size; j++) {
                bm->nums[j] = alk_fv_low(get(b, j).v);
            }
        } else {
            bm = alk_fva_copy(t, b);
        }
        alk_fva *r = alk_fva_matmul(t, am, bm);
        if (r == NULL) {
            return NULL;
        }
        alk_fva *out = alk__fva_new(t, r->ndim, r->shape, false, a->hw);
        if (out == NULL) {
            return NULL;
        }
        for (size_t j = 0; j < r->size; j++) {
            double x = get(r, j).n;
            out->vars[j] = alk__fv_new_hw(t, x, x, 1.0, 0.0, a->hw);
        }
        return done(t, out);
    }
    /* Variables times variables: plain products, summed per output (no solver applies). */
    if (!b->numeric) {
        return mmm(t, a, b);
    }
    size_t ndim, shape[ALK_FVA_MAX_DIM], k;
    if (!product_shape(t, a, b, &ndim, shape, &k)) {
        return NULL;
    }
    size_t rows = k ? a->size / k : 0, n_out = k ? b->size / k : 0;
    alk_fva *r = alk__fva_new(t, ndim, shape, false, a->hw);
    double *w = alk__trace_alloc(t, (b->size ? b->size : 1) * sizeof(double));
    alk_fvar **vec = alk__trace_alloc(t, (k ? k : 1) * sizeof(alk_fvar *));
    if (r == NULL || w == NULL || vec == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < b->size; j++) {
        w[j] = get(b, j).n;
    }
    /* One CMVM per row of `a` (the reference's loop over the leading axes): rows are solved
     * apart, since each has its own input intervals and latencies. */
    for (size_t i = 0; i < rows && !failed(t); i++) {
        for (size_t c = 0; c < k; c++) {
            vec[c] = get(a, i * k + c).v;
        }
        (void)cmvm_vector(t, w, k, n_out, vec, a->hw, r->vars + i * n_out);
    }
    return done(t, r);
}

alk_fva *alk_fva_matmul(alk_trace *t, const alk_fva *a, const alk_fva *b) {
    if (failed(t) || a == NULL || b == NULL) {
        return NULL;
    }
    if (!alk__fva_plain(t, a, "matmul") || !alk__fva_plain(t, b, "matmul")) {
        return NULL;
    }
    if (!a->numeric) {
        return matmul_var(t, a, b);
    }
    if (b->numeric) {
        /* numpy-level product of two numeric arrays (tensordot over one axis). */
        size_t ndim, shape[ALK_FVA_MAX_DIM], k;
        if (!product_shape(t, a, b, &ndim, shape, &k)) {
            return NULL;
        }
        alk_fva *r = alk__fva_new(t, ndim, shape, true, a->hw);
        if (r == NULL) {
            return NULL;
        }
        size_t rows = k ? a->size / k : 0, cols = k ? b->size / k : 0;
        for (size_t i = 0; i < rows; i++) {
            for (size_t j = 0; j < cols; j++) {
                double s = 0;
                for (size_t c = 0; c < k; c++) {
                    s += get(a, i * k + c).n * get(b, c * cols + j).n;
                }
                r->nums[i * cols + j] = s;
            }
        }
        return r;
    }
    /* _rmatmul(b, a): moveaxis(b, 0, -1) @ moveaxis(a, -1, 0), then the const axes first. */
    alk_fva *mat1 = alk_fva_moveaxis(t, a, -1, 0);
    alk_fva *mat0 = alk_fva_moveaxis(t, b, 0, -1);
    if (mat0 == NULL || mat1 == NULL) {
        return NULL;
    }
    alk_fva *r = alk_fva_matmul(t, mat0, mat1);
    if (r == NULL) {
        return NULL;
    }
    size_t ndim0 = mat0->ndim, ndim1 = mat1->ndim;
    int axes[ALK_FVA_MAX_DIM];
    size_t n = 0, total = ndim0 + ndim1 - 2;
    for (size_t d = ndim0 - 1; d < total; d++) {
        axes[n++] = (int)d;
    }
    for (size_t d = 0; d + 1 < ndim0; d++) {
        axes[n++] = (int)d;
    }
    return alk_fva_transpose(t, r, axes);
}

/* np.dot: a matrix product when the shapes chain, else (a scalar operand) an element-wise one. */
alk_fva *alk_fva_dot(alk_trace *t, const alk_fva *a, const alk_fva *b) {
    if (failed(t) || a == NULL || b == NULL) {
        return NULL;
    }
    if (!alk__fva_plain(t, a, "dot") || !alk__fva_plain(t, b, "dot")) {
        return NULL;
    }
    if (a->ndim > 0 && b->ndim > 0 && a->shape[a->ndim - 1] == b->shape[0]) {
        return alk_fva_matmul(t, a, b);
    }
    if (a->size != 1 && b->size != 1) {
        alk__trace_set_error(t, ALK_EINVAL, "dot of incompatible shapes");
        return NULL;
    }
    return alk_fva_binary(t, ALK_MUL, a, b);
}

/* ---- einsum ---- */

/* Subscript lists hold at most EINSUM_MAX_LETTERS entries; buffers leave room for the checks. */
enum { EINSUM_MAX_LETTERS = 60, EINSUM_BUF = 64 };

static bool is_letter(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Parses one subscript list, replacing "..." by '0'. */
static bool parse_subscripts(alk_trace *t, const char *s, size_t len, char *out, size_t *n) {
    *n = 0;
    while (len > 0 && s[0] == ' ') {
        s++;
        len--;
    }
    while (len > 0 && s[len - 1] == ' ') {
        len--;
    }
    for (size_t j = 0; j < len;) {
        if (s[j] == '.') {
            if (j + 3 <= len && s[j + 1] == '.' && s[j + 2] == '.') {
                if (*n >= EINSUM_MAX_LETTERS) {
                    alk__trace_set_error(t, ALK_EINVAL, "einsum: too many subscripts");
                    return false;
                }
                out[(*n)++] = '0';
                j += 3;
                continue;
            }
            alk__trace_set_error(t, ALK_EINVAL, "einsum: stray '.' in subscripts");
            return false;
        }
        if (!is_letter(s[j])) {
            alk__trace_set_error(t, ALK_EINVAL,
                                 "einsum: subscripts must be letters a-z, A-Z or '...', got '%c'",
                                 s[j]);
            return false;
        }
        if (*n >= EINSUM_MAX_LETTERS) {
            alk__trace_set_error(t, ALK_EINVAL, "einsum: too many subscripts");
            return false;
        }
        out[(*n)++] = s[j++];
    }
    for (size_t a = 0; a < *n; a++) {
        for (size_t b = a + 1; b < *n; b++) {
            if (out[a] == out[b]) {
                alk__trace_set_error(t, ALK_EINVAL,
                                     "einsum: subscript '%c' repeated in one operand",
                                     out[a] == '0' ? '.' : out[a]);
                return false;
            }
        }
    }
    return true;
}

static int find_char(const char *s, size_t n, char c) {
    for (size_t j = 0; j < n; j++) {
        if (s[j] == c) {
            return (int)j;
        }
    }
    return -1;
}

/* Replaces '0' (the ellipsis) by `fill` (nf letters). */
static bool expand_ellipsis(char *s, size_t *n, const char *fill, size_t nf) {
    int p = find_char(s, *n, '0');
    if (p < 0) {
        return true;
    }
    if (*n - 1 + nf > EINSUM_MAX_LETTERS) {
        return false;
    }
    memmove(s + p + nf, s + p + 1, *n - (size_t)p - 1);
    memcpy(s + p, fill, nf);
    *n = *n - 1 + nf;
    return true;
}

/*
 * An einsum equation resolved against its two operands: the reference's parse_einsum and the
 * shape work of its _einsum, all done before any node is made, so a bad equation fails with
 * nothing traced. After expansion of "...", letter j of in0 (in1) names axis j of a (b).
 */
typedef struct einsum_plan {
    char in0[EINSUM_BUF], in1[EINSUM_BUF], out[EINSUM_BUF];
    size_t n0, n1, no;
    size_t len[128]; /* the axis length each letter names (letters are ASCII) */
    /* Axes summed away before the product: in one operand only and not in the output. */
    int sum0[EINSUM_BUF], sum1[EINSUM_BUF];
    size_t ns0, ns1;
    /* Transposes of the summed operands to (inplace, invariant, contract) axis order. */
    int tr0[EINSUM_BUF], tr1[EINSUM_BUF];
    /* Element counts of the letter groups: inplace (in both operands and the output),
     * invariant 0/1 (in one operand and the output), contracted (in both operands only). */
    size_t I, L0, L1, C;
    /* The product's shape, (inplace, invariant 0, invariant 1), and its transpose to `out`. */
    int64_t pre[ALK_FVA_MAX_DIM];
    size_t n_pre;
    int perm[ALK_FVA_MAX_DIM];
} einsum_plan;

/* Splits "in0,in1->out", parses the three lists and checks the ellipsis rules and that every
 * output letter names an input axis. */
static bool einsum_parse(alk_trace *t, const char *equation, einsum_plan *p) {
    const char *arrow = strstr(equation, "->");
    const char *comma = strchr(equation, ',');
    if (arrow == NULL || comma == NULL || comma > arrow || strchr(comma + 1, ',') != NULL) {
        alk__trace_set_error(t, ALK_EINVAL,
                             "einsum equation '%s' must have the form 'in0,in1->out' (exactly "
                             "two operands)",
                             equation);
        return false;
    }
    if (!parse_subscripts(t, equation, (size_t)(comma - equation), p->in0, &p->n0) ||
        !parse_subscripts(t, comma + 1, (size_t)(arrow - comma - 1), p->in1, &p->n1) ||
        !parse_subscripts(t, arrow + 2, strlen(arrow + 2), p->out, &p->no)) {
        return false;
    }
    bool e0 = find_char(p->in0, p->n0, '0') >= 0, e1 = find_char(p->in1, p->n1, '0') >= 0;
    bool eo = find_char(p->out, p->no, '0') >= 0;
    if ((e0 || e1 || eo) && !eo) {
        alk__trace_set_error(t, ALK_EINVAL, "einsum '%s': output does not allow broadcasting",
                             equation);
        return false;
    }
    if (eo && !e0 && !e1) {
        alk__trace_set_error(t, ALK_EINVAL, "einsum '%s': output broadcasts but inputs do not",
                             equation);
        return false;
    }
    for (size_t j = 0; j < p->no; j++) {
        char c = p->out[j];
        if (c != '0' && find_char(p->in0, p->n0, c) < 0 && find_char(p->in1, p->n1, c) < 0) {
            alk__trace_set_error(t, ALK_EINVAL,
                                 "einsum '%s': output subscript '%c' not found in inputs", equation,
                                 c);
            return false;
        }
    }
    return true;
}

/* Replaces "..." in one operand's list (and the output's) by the `nb` broadcast axes it stands
 * for, or fails when the operand has too few axes. */
static bool einsum_expand_one(alk_trace *t, const char *equation, int which, const alk_fva *x,
                              char *in, size_t *n, einsum_plan *p, const char *free_letters) {
    int64_t nb = (int64_t)x->ndim - (int64_t)*n + 1;
    if (nb < 0) {
        alk__trace_set_error(t, ALK_EINVAL,
                             "einsum '%s': input %d needs at least %zu dimensions, got %u",
                             equation, which, *n - 1, x->ndim);
        return false;
    }
    expand_ellipsis(in, n, free_letters, (size_t)nb);
    expand_ellipsis(p->out, &p->no, free_letters, (size_t)nb);
    return true;
}

/* Expands "..." into free letters (in alphabetical order, as the reference picks them), then
 * checks the operands' ranks and that a letter shared by both names axes of one length. */
static bool einsum_expand(alk_trace *t, const char *equation, const alk_fva *a, const alk_fva *b,
                          einsum_plan *p) {
    bool e0 = find_char(p->in0, p->n0, '0') >= 0, e1 = find_char(p->in1, p->n1, '0') >= 0;
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    char free_letters[EINSUM_BUF];
    size_t nf = 0;
    for (const char *q = alphabet; *q; q++) {
        if (find_char(p->in0, p->n0, *q) < 0 && find_char(p->in1, p->n1, *q) < 0 &&
            find_char(p->out, p->no, *q) < 0) {
            free_letters[nf++] = *q;
        }
    }
    if (e0 && e1) {
        /* Both operands broadcast: "..." must stand for as many axes in each. */
        int64_t b0 = (int64_t)a->ndim - (int64_t)p->n0 + 1;
        int64_t b1 = (int64_t)b->ndim - (int64_t)p->n1 + 1;
        if (b0 != b1 || b0 < 0) {
            alk__trace_set_error(t, ALK_EINVAL, "einsum '%s': '...' expands to %lld and %lld axes",
                                 equation, (long long)b0, (long long)b1);
            return false;
        }
        expand_ellipsis(p->in0, &p->n0, free_letters, (size_t)b0);
        expand_ellipsis(p->in1, &p->n1, free_letters, (size_t)b0);
        expand_ellipsis(p->out, &p->no, free_letters, (size_t)b0);
    } else {
        if (e0) {
            if (!einsum_expand_one(t, equation, 0, a, p->in0, &p->n0, p, free_letters)) {
                return false;
            }
        } else if (p->n0 != a->ndim) {
            alk__trace_set_error(t, ALK_EINVAL, "einsum '%s': input 0 needs %zu dimensions, got %u",
                                 equation, p->n0, a->ndim);
            return false;
        }
        if (e1) {
            if (!einsum_expand_one(t, equation, 1, b, p->in1, &p->n1, p, free_letters)) {
                return false;
            }
        } else if (p->n1 != b->ndim) {
            alk__trace_set_error(t, ALK_EINVAL, "einsum '%s': input 1 needs %zu dimensions, got %u",
                                 equation, p->n1, b->ndim);
            return false;
        }
    }
    if (p->n0 != a->ndim || p->n1 != b->ndim) {
        alk__trace_set_error(t, ALK_EINVAL, "einsum '%s': operand dimensions do not match",
                             equation);
        return false;
    }
    for (size_t j = 0; j < p->n0; j++) {
        int q = find_char(p->in1, p->n1, p->in0[j]);
        if (q >= 0 && a->shape[j] != b->shape[q]) {
            alk__trace_set_error(t, ALK_EINVAL,
                                 "einsum '%s': sizes %zu and %zu differ for subscript '%c'",
                                 equation, a->shape[j], b->shape[q], p->in0[j]);
            return false;
        }
    }
    for (size_t j = 0; j < p->n0; j++) {
        p->len[(unsigned char)p->in0[j]] = a->shape[j];
    }
    for (size_t j = 0; j < p->n1; j++) {
        p->len[(unsigned char)p->in1[j]] = b->shape[j];
    }
    return true;
}

/* The axes of one operand's list that no other list names: summed before the product. */
static size_t einsum_direct_sums(const char *in, size_t n, const char *other, size_t n_other,
                                 const char *out, size_t no, int *sums, char *kept,
                                 size_t *ret_kept) {
    size_t ns = 0, nk = 0;
    for (size_t j = 0; j < n; j++) {
        if (find_char(out, no, in[j]) < 0 && find_char(other, n_other, in[j]) < 0) {
            sums[ns++] = (int)j;
        } else {
            kept[nk++] = in[j];
        }
    }
    *ret_kept = nk;
    return ns;
}

/* parse_einsum's classification of the letters, and the shapes derived from it. */
static bool einsum_classify(alk_trace *t, const char *equation, einsum_plan *p) {
    char contract[EINSUM_BUF], inplace[EINSUM_BUF], inv0[EINSUM_BUF], inv1[EINSUM_BUF];
    size_t nc = 0, ni = 0, nv0 = 0, nv1 = 0;
    for (size_t j = 0; j < p->n1; j++) {
        char c = p->in1[j];
        bool in_0 = find_char(p->in0, p->n0, c) >= 0, in_o = find_char(p->out, p->no, c) >= 0;
        if (in_0 && !in_o) {
            contract[nc++] = c;
        } else if (in_0 && in_o) {
            inplace[ni++] = c;
        } else if (!in_0 && in_o) {
            inv1[nv1++] = c;
        }
    }
    for (size_t j = 0; j < p->n0; j++) {
        char c = p->in0[j];
        if (find_char(p->in1, p->n1, c) < 0 && find_char(p->out, p->no, c) >= 0) {
            inv0[nv0++] = c;
        }
    }
    /* Letters left on each operand after its direct sums; the transposes index these lists. */
    char r0[EINSUM_BUF], r1[EINSUM_BUF];
    size_t m0, m1;
    p->ns0 = einsum_direct_sums(p->in0, p->n0, p->in1, p->n1, p->out, p->no, p->sum0, r0, &m0);
    p->ns1 = einsum_direct_sums(p->in1, p->n1, p->in0, p->n0, p->out, p->no, p->sum1, r1, &m1);
    size_t q0 = 0, q1 = 0;
    p->I = p->L0 = p->L1 = p->C = 1;
    for (size_t j = 0; j < ni; j++) {
        p->tr0[q0++] = find_char(r0, m0, inplace[j]);
        p->tr1[q1++] = find_char(r1, m1, inplace[j]);
        p->I *= p->len[(unsigned char)inplace[j]];
    }
    for (size_t j = 0; j < nv0; j++) {
        p->tr0[q0++] = find_char(r0, m0, inv0[j]);
        p->L0 *= p->len[(unsigned char)inv0[j]];
    }
    for (size_t j = 0; j < nv1; j++) {
        p->tr1[q1++] = find_char(r1, m1, inv1[j]);
        p->L1 *= p->len[(unsigned char)inv1[j]];
    }
    for (size_t j = 0; j < nc; j++) {
        p->tr0[q0++] = find_char(r0, m0, contract[j]);
        p->tr1[q1++] = find_char(r1, m1, contract[j]);
        p->C *= p->len[(unsigned char)contract[j]];
    }
    /* Every letter left on an operand is inplace, invariant or contracted (subscripts are unique
     * per list, and output letters must name input axes), so each transpose is a permutation. */
    alk_require(q0 == m0 && q1 == m1);
    p->n_pre = ni + nv0 + nv1;
    if (p->n_pre != p->no || p->n_pre > ALK_FVA_MAX_DIM) {
        alk__trace_set_error(t, ALK_EINVAL, "einsum '%s': unsupported output", equation);
        return false;
    }
    char pre_names[ALK_FVA_MAX_DIM];
    size_t np = 0;
    for (size_t j = 0; j < ni; j++) {
        pre_names[np++] = inplace[j];
    }
    for (size_t j = 0; j < nv0; j++) {
        pre_names[np++] = inv0[j];
    }
    for (size_t j = 0; j < nv1; j++) {
        pre_names[np++] = inv1[j];
    }
    for (size_t d = 0; d < np; d++) {
        p->pre[d] = (int64_t)p->len[(unsigned char)pre_names[d]];
    }
    /* out_transpose = argsort(position in the output of each pre axis). */
    for (size_t d = 0; d < p->no; d++) {
        p->perm[d] = find_char(pre_names, np, p->out[d]);
    }
    return true;
}

static bool plan_einsum(alk_trace *t, const char *equation, const alk_fva *a, const alk_fva *b,
                        einsum_plan *p) {
    return einsum_parse(t, equation, p) && einsum_expand(t, equation, a, b, p) &&
           einsum_classify(t, equation, p);
}

/*
 * The reference's _einsum for two operands: direct sums first, then for every (invariant 0,
 * inplace) pair one matrix product of an (L1 x C) block of b by a C-vector of a, written into a
 * flat (inplace, invariant 0, invariant 1) result that is reshaped and transposed at the end. The
 * loop order fixes the order products (and with them CMVM solutions) are made in.
 */
alk_fva *alk_fva_einsum(alk_trace *t, const char *equation, const alk_fva *a, const alk_fva *b) {
    if (failed(t) || a == NULL || b == NULL || equation == NULL) {
        return NULL;
    }
    if (!alk__fva_plain(t, a, "einsum") || !alk__fva_plain(t, b, "einsum")) {
        return NULL;
    }
    einsum_plan plan;
    if (!plan_einsum(t, equation, a, b, &plan)) {
        return NULL;
    }
    const alk_fva *x0 = a, *x1 = b;
    if (plan.ns0 > 0) {
        x0 = alk_fva_reduce(t, ALK_REDUCE_SUM, a, plan.sum0, plan.ns0, false);
    }
    if (plan.ns1 > 0) {
        x1 = alk_fva_reduce(t, ALK_REDUCE_SUM, b, plan.sum1, plan.ns1, false);
    }
    if (x0 == NULL || x1 == NULL) {
        return NULL;
    }
    alk_fva *f0 = alk_fva_ravel(t, alk_fva_transpose(t, x0, plan.tr0));
    alk_fva *f1 = alk_fva_ravel(t, alk_fva_transpose(t, x1, plan.tr1));
    if (f0 == NULL || f1 == NULL) {
        return NULL;
    }
    size_t L0 = plan.L0, L1 = plan.L1, I = plan.I, C = plan.C;
    bool numeric = a->numeric && b->numeric;
    alk_hwconf hw = !a->numeric ? a->hw : b->hw;
    size_t flat_shape[1] = {L0 * L1 * I};
    alk_fva *output = alk__fva_new(t, 1, flat_shape, numeric, hw);
    if (output == NULL) {
        return NULL;
    }
    for (size_t l0 = 0; l0 < L0 && !failed(t); l0++) {
        for (size_t i = 0; i < I && !failed(t); i++) {
            alk_index ia[1] = {ALK_SLICE((int64_t)(i * L1 * C), (int64_t)((i + 1) * L1 * C), 1)};
            alk_index ib[1] = {
                ALK_SLICE((int64_t)((i * L0 + l0) * C), (int64_t)((i * L0 + l0 + 1) * C), 1)};
            int64_t ashape[2] = {(int64_t)L1, (int64_t)C};
            alk_fva *A = alk_fva_reshape(t, alk_fva_index(t, f1, ia, 1), 2, ashape);
            alk_fva *B = alk_fva_index(t, f0, ib, 1);
            alk_fva *AB = alk_fva_matmul(t, A, B);
            if (AB == NULL) {
                return NULL;
            }
            for (size_t q = 0; q < L1; q++) {
                put(t, output, (i * L0 + l0) * L1 + q, get(AB, q));
            }
        }
    }
    alk_fva *r = alk_fva_reshape(t, output, plan.n_pre, plan.pre);
    return alk_fva_transpose(t, r, plan.perm);
}
