/*
 * Single constant multiplication by H(k) + overlapping digit patterns (spec cmvm.md §9).
 *
 * Design: a branch-and-bound search over signed-digit forms of the odd part of the constant.
 * State is an "expression": one signed-digit row (two 64-bit masks) per variable, where variable
 * 0 is x and every later variable is lhs + polarity * rhs * 2^gap. Each search level lists the
 * candidate patterns (same-source, template-based ODP, cross-variable), scores each by a greedy
 * selection of non-conflicting occurrences, and branches on every best candidate (and on every
 * combination of "pseudo" template occurrences), bounded by the best adder count found so far.
 * The order of everything (forms, scan directions, candidates, occurrences) follows the reference,
 * because the first strictly better solution wins; where the reference sorts with std::sort on
 * keys that can tie, `stl_sort` below repeats libstdc++'s introsort step for step, since that
 * decides which of two tied occurrences is picked.
 *
 * Errors inside the recursion are sticky in the search context (ctx->rv); functions return
 * "no result" and the entry point reports the error once.
 *
 * Thread rule: reentrant; one call owns all its state.
 */
#include "cmvm/cmvm.h"
#include "cmvm/cmvm_int.h"
#include "core/alloc.h"
#include "core/fxp.h"

#include <limits.h>
#include <math.h>
#include <string.h>

enum { MAXV = 64 };

typedef struct srow {
    uint64_t pos;
    uint64_t neg;
} srow;

typedef struct sdef {
    int32_t lhs;
    int32_t rhs;
    int8_t gap;
    int8_t polarity;
} sdef;

typedef struct sexpr {
    int n_rows; /* variables; defs[v - 1] defines variable v >= 1 */
    srow rows[MAXV];
    sdef defs[MAXV];
} sexpr;

static inline bool row_empty(srow r) {
    return (r.pos | r.neg) == 0;
}
static inline int row_sign(srow r, int s) {
    if ((r.pos >> s) & 1) {
        return 1;
    }
    if ((r.neg >> s) & 1) {
        return -1;
    }
    return 0;
}
static inline void row_clear(srow *r, int s) {
    r->pos &= ~(1ull << s);
    r->neg &= ~(1ull << s);
}
static inline void row_set(srow *r, int s, int sign) {
    row_clear(r, s);
    if (sign > 0) {
        r->pos |= 1ull << s;
    } else if (sign < 0) {
        r->neg |= 1ull << s;
    }
}
/* Signed-digit addition of sign * 2^s with carries; false past bit 62. */
static bool row_add(srow *r, int s, int delta) {
    while (delta != 0) {
        if (s >= 63) {
            return false;
        }
        int v = row_sign(*r, s) + delta;
        if (v == 0) {
            row_clear(r, s);
            return true;
        }
        if (v == 1 || v == -1) {
            row_set(r, s, v);
            return true;
        }
        row_clear(r, s);
        delta = v > 0 ? 1 : -1;
        s++;
    }
    return true;
}
static inline int row_msb(srow r) {
    uint64_t m = r.pos | r.neg;
    return m == 0 ? -1 : 63 - __builtin_clzll(m);
}
static inline int row_lsb(srow r) {
    uint64_t m = r.pos | r.neg;
    return m == 0 ? -1 : __builtin_ctzll(m);
}
static inline int row_popcount(srow r) {
    return alk__popcount64(r.pos) + alk__popcount64(r.neg);
}

/* ---- signed-digit enumeration (SDGenerator) ---- */

typedef struct sd_form {
    uint64_t pos;
    uint64_t neg;
} sd_form;

typedef struct sd_list {
    sd_form *items;
    size_t len;
    size_t cap;
    size_t limit;              /* forms wanted at most (SIZE_MAX: all) */
    const atomic_bool *cancel; /* polled every 2^16 forms, or NULL */
    int rv;
} sd_list;

/* Every signed-digit form of n with at most `rem` non-zero digits; digits tried -1, 0, +1. */
static void sd_recurse(sd_list *out, int64_t n, int rem, int depth, uint64_t pos, uint64_t neg) {
    if (out->rv != ALK_OK || out->len >= out->limit) {
        return;
    }
    if (n == 0) {
        if (out->cancel != NULL && (out->len & 0xFFFF) == 0 &&
            atomic_load_explicit(out->cancel, memory_order_relaxed)) {
            out->rv = ALK_ECANCELED;
            return;
        }
        if (out->len == out->cap) {
            void *items = out->items;
            out->rv = alk_grow(&items, &out->cap, sizeof(sd_form), out->len + 1);
            out->items = items;
            if (out->rv != ALK_OK) {
                return;
            }
        }
        out->items[out->len++] = (sd_form){pos, neg};
        return;
    }
    if (depth >= 63) {
        return; /* cannot be represented in a row; never reached for odd parts below 2^53 */
    }
    /* The NAF has the fewest non-zero digits of all forms (popcount(3n ^ n) of them, n >= 0
     * here): past the budget, this subtree holds no form, and skipping it changes nothing. */
    if (alk__popcount64(((uint64_t)n * 3) ^ (uint64_t)n) > rem) {
        return;
    }
    static const int digits[3] = {-1, 0, 1};
    for (int k = 0; k < 3; k++) {
        int d = digits[k];
        if (rem == 0 && d != 0) {
            continue;
        }
        int64_t next = n - d;
        if (next & 1) {
            continue;
        }
        uint64_t bit = 1ull << depth;
        sd_recurse(out, next >> 1, rem - (d != 0), depth + 1, d > 0 ? pos | bit : pos,
                   d < 0 ? neg | bit : neg);
    }
}

/* ---- templates (spec §9.4) ---- */

typedef struct triple {
    int n;
    int off[3];
    int sign[3];
} triple;

typedef struct tmpl {
    triple shape;
    uint64_t shape_pos; /* digits of the shape with sign +1 */
    uint64_t shape_neg;
    int max_off;
    int gap;
    int sigma;
    int q;
    int tau;
    int weight;
} tmpl;

typedef struct tmpl_list {
    tmpl *items;
    size_t len;
    size_t cap;
} tmpl_list;

static bool same_triple(const triple *a, const triple *b) {
    if (a->n != b->n) {
        return false;
    }
    for (int i = 0; i < a->n; i++) {
        if (a->off[i] != b->off[i] || a->sign[i] != b->sign[i]) {
            return false;
        }
    }
    return true;
}

/* With `skip_wrapped`, templates whose value P * (2^q + tau) overflows int64 are left out. */
static int build_templates(int max_gap, bool skip_wrapped, tmpl_list *out) {
    static const int signs[2] = {1, -1};
    sd_list reps = {.limit = SIZE_MAX};
    int rv = ALK_OK;
    for (int si = 0; si < 2 && rv == ALK_OK; si++) {
        int sigma = signs[si];
        for (int gap = 1; gap <= max_gap && rv == ALK_OK; gap++) {
            int64_t p_val = ((int64_t)1 << gap) + sigma;
            triple p_shape = {2, {0, gap, 0}, {sigma, 1, 0}};
            for (int ti = 0; ti < 2 && rv == ALK_OK; ti++) {
                int tau = signs[ti];
                for (int q = 1; q <= max_gap + 2 && rv == ALK_OK; q++) {
                    int64_t mult = ((int64_t)1 << q) + tau;
                    /* The reference multiplies in int64 and wraps past 2^63 (gap + q > 62). */
                    int64_t total = (int64_t)((uint64_t)p_val * (uint64_t)mult);
                    int64_t exact;
                    if (mult == 0 || total == 0 ||
                        (skip_wrapped && __builtin_mul_overflow(p_val, mult, &exact))) {
                        continue;
                    }
                    bool negative = total < 0;
                    reps.len = 0;
                    sd_recurse(&reps, negative ? -total : total, 3, 0, 0, 0);
                    rv = reps.rv;
                    for (size_t r = 0; r < reps.len && rv == ALK_OK; r++) {
                        uint64_t pos = negative ? reps.items[r].neg : reps.items[r].pos;
                        uint64_t neg = negative ? reps.items[r].pos : reps.items[r].neg;
                        triple t = {0};
                        uint64_t m = pos | neg;
                        while (m != 0 && t.n < 3) {
                            int s = __builtin_ctzll(m);
                            m &= m - 1;
                            t.off[t.n] = s;
                            t.sign[t.n] = ((pos >> s) & 1) ? 1 : -1;
                            t.n++;
                        }
                        if (m != 0 || t.n < 2) {
                            continue;
                        }
                        if (t.n == 2) {
                            triple negated = t;
                            negated.sign[0] = -t.sign[0];
                            negated.sign[1] = -t.sign[1];
                            if (same_triple(&t, &p_shape) || same_triple(&negated, &p_shape)) {
                                continue;
                            }
                        }
                        if (out->len == out->cap) {
                            void *items = out->items;
                            rv = alk_grow(&items, &out->cap, sizeof(tmpl), out->len + 1);
                            out->items = items;
                            if (rv != ALK_OK) {
                                break;
                            }
                        }
                        tmpl tp = {.shape = t,
                                   .gap = gap,
                                   .sigma = sigma,
                                   .q = q,
                                   .tau = tau,
                                   .weight = t.n};
                        for (int d = 0; d < t.n; d++) {
                            if (t.sign[d] > 0) {
                                tp.shape_pos |= 1ull << t.off[d];
                            } else {
                                tp.shape_neg |= 1ull << t.off[d];
                            }
                            tp.max_off = t.off[d] > tp.max_off ? t.off[d] : tp.max_off;
                        }
                        out->items[out->len++] = tp;
                    }
                }
            }
        }
    }
    alk_free(reps.items);
    return rv;
}

/* ---- occurrences ---- */

typedef struct socc {
    int8_t kind; /* 0 regular, 1 ODP (weight 3), 2 pseudo (weight 2) */
    int anchor;
    uint64_t source_mask;
    int8_t use_count;
    int32_t use_var[2];
    uint64_t use_mask[2];
    int8_t rep_count;
    int rep_shift[2];
    int8_t rep_sign[2];
} socc;

typedef struct occ_list {
    socc *items;
    size_t len;
    size_t cap;
} occ_list;

static void occ_list_fini(occ_list *l) {
    alk_free(l->items);
    l->items = NULL;
    l->len = l->cap = 0;
}

static int occ_push(occ_list *l, const socc *o) {
    if (l->len == l->cap) {
        void *items = l->items;
        int rv = alk_grow(&items, &l->cap, sizeof(socc), l->len + 1);
        l->items = items;
        if (rv != ALK_OK) {
            return rv;
        }
    }
    l->items[l->len++] = *o;
    return ALK_OK;
}

static int push_regular(occ_list *out, int var, int anchor, int gap, int rep_sign) {
    uint64_t mask = (1ull << anchor) | (1ull << (anchor + gap));
    socc o = {.kind = 0,
              .anchor = anchor,
              .source_mask = mask,
              .use_count = 1,
              .use_var = {var, -1},
              .use_mask = {mask, 0},
              .rep_count = 1,
              .rep_shift = {anchor, 0},
              .rep_sign = {(int8_t)rep_sign, 0}};
    return occ_push(out, &o);
}

static int enumerate_regular(int var, srow r, int gap, int sigma, occ_list *out) {
    uint64_t first = sigma > 0 ? r.pos & (r.pos >> gap) : r.neg & (r.pos >> gap);
    uint64_t second = sigma > 0 ? r.neg & (r.neg >> gap) : r.pos & (r.neg >> gap);
    for (int pass = 0; pass < 2; pass++) {
        uint64_t m = pass == 0 ? first : second;
        while (m != 0) {
            int a = __builtin_ctzll(m);
            m &= m - 1;
            int rv = push_regular(out, var, a, gap, pass == 0 ? 1 : -1);
            if (rv != ALK_OK) {
                return rv;
            }
        }
    }
    return ALK_OK;
}

static int enumerate_cross(int lhs_var, srow lhs, int rhs_var, srow rhs, int gap, int sigma,
                           occ_list *out) {
    int max_lhs = row_msb(lhs), max_rhs = row_msb(rhs);
    if (max_lhs < 0 || max_rhs < gap) {
        return ALK_OK;
    }
    int max_anchor = max_lhs < max_rhs - gap ? max_lhs : max_rhs - gap;
    for (int a = 0; a <= max_anchor; a++) {
        int ls = row_sign(lhs, a);
        if (ls == 0) {
            continue;
        }
        int rs = row_sign(rhs, a + gap);
        if (rs == 0 || rs != ls * sigma) {
            continue;
        }
        socc o = {.kind = 0,
                  .anchor = a,
                  .source_mask = (1ull << a) | (1ull << (a + gap)),
                  .use_count = 2,
                  .use_var = {lhs_var, rhs_var},
                  .use_mask = {1ull << a, 1ull << (a + gap)},
                  .rep_count = 1,
                  .rep_shift = {a, 0},
                  .rep_sign = {(int8_t)ls, 0}};
        int rv = occ_push(out, &o);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    return ALK_OK;
}

/* Anchors a where (pos, neg) >> a contains the digits (need_pos, need_neg). */
static uint64_t shape_anchors(uint64_t pos, uint64_t neg, uint64_t need_pos, uint64_t need_neg) {
    uint64_t m = ~(uint64_t)0;
    while (need_pos != 0) {
        m &= pos >> __builtin_ctzll(need_pos);
        need_pos &= need_pos - 1;
    }
    while (need_neg != 0) {
        m &= neg >> __builtin_ctzll(need_neg);
        need_neg &= need_neg - 1;
    }
    return m;
}

/*
 * Occurrences of a template in row r at every anchor, both overall signs (enumerate_template):
 * anchors ascending, the positive occurrence before the negative one at the same anchor.
 */
static int enumerate_template(int var, srow r, const tmpl *t, int8_t kind, occ_list *out) {
    int max_anchor = 63 - t->max_off;
    if (max_anchor < 0 || row_empty(r)) {
        return ALK_OK;
    }
    int max_a = max_anchor < row_msb(r) ? max_anchor : row_msb(r);
    uint64_t limit = max_a >= 63 ? ~(uint64_t)0 : (2ull << max_a) - 1;
    uint64_t plus = shape_anchors(r.pos, r.neg, t->shape_pos, t->shape_neg) & limit;
    uint64_t minus = shape_anchors(r.pos, r.neg, t->shape_neg, t->shape_pos) & limit;
    uint64_t any = plus | minus;
    while (any != 0) {
        int a = __builtin_ctzll(any);
        any &= any - 1;
        if (a + t->q >= 64) {
            continue;
        }
        uint64_t mask = (t->shape_pos | t->shape_neg) << a;
        for (int oi = 0; oi < 2; oi++) {
            if (!(((oi == 0 ? plus : minus) >> a) & 1)) {
                continue;
            }
            int occ = oi == 0 ? 1 : -1;
            socc o = {.kind = kind,
                      .anchor = a,
                      .source_mask = mask,
                      .use_count = 1,
                      .use_var = {var, -1},
                      .use_mask = {mask, 0},
                      .rep_count = 2,
                      .rep_shift = {a, a + t->q},
                      .rep_sign = {(int8_t)(occ * t->tau), (int8_t)occ}};
            int rv = occ_push(out, &o);
            if (rv != ALK_OK) {
                return rv;
            }
        }
    }
    return ALK_OK;
}

/* ---- std::sort as libstdc++ (GCC 12) performs it, on an array of occurrence pointers ---- */

typedef struct occ_order {
    int boundary;
    bool ltr;
} occ_order;

static bool uses_boundary(const socc *o, int boundary) {
    return o->kind == 1 && boundary >= 0 && ((o->source_mask >> boundary) & 1) != 0;
}

static bool occ_less(const occ_order *ord, const socc *a, const socc *b) {
    bool ba = uses_boundary(a, ord->boundary), bb = uses_boundary(b, ord->boundary);
    if (ba != bb) {
        return ba;
    }
    if (a->anchor != b->anchor) {
        return ord->ltr ? a->anchor > b->anchor : a->anchor < b->anchor;
    }
    return a->source_mask < b->source_mask;
}

typedef const socc *optr;

static void stl_adjust_heap(optr *first, ptrdiff_t hole, ptrdiff_t len, optr value,
                            const occ_order *ord) {
    ptrdiff_t top = hole, child = hole;
    while (child < (len - 1) / 2) {
        child = 2 * (child + 1);
        if (occ_less(ord, first[child], first[child - 1])) {
            child--;
        }
        first[hole] = first[child];
        hole = child;
    }
    if ((len & 1) == 0 && child == (len - 2) / 2) {
        child = 2 * (child + 1);
        first[hole] = first[child - 1];
        hole = child - 1;
    }
    ptrdiff_t parent = (hole - 1) / 2;
    while (hole > top && occ_less(ord, first[parent], value)) {
        first[hole] = first[parent];
        hole = parent;
        parent = (hole - 1) / 2;
    }
    first[hole] = value;
}

static void stl_heap_sort(optr *first, optr *last, const occ_order *ord) {
    ptrdiff_t len = last - first;
    if (len >= 2) {
        for (ptrdiff_t parent = (len - 2) / 2;; parent--) {
            stl_adjust_heap(first, parent, len, first[parent], ord);
            if (parent == 0) {
                break;
            }
        }
    }
    while (last - first > 1) {
        --last;
        optr value = *last;
        *last = *first;
        stl_adjust_heap(first, 0, last - first, value, ord);
    }
}

static void stl_swap(optr *a, optr *b) {
    optr t = *a;
    *a = *b;
    *b = t;
}

static void stl_median_to_first(optr *result, optr *a, optr *b, optr *c, const occ_order *ord) {
    if (occ_less(ord, *a, *b)) {
        if (occ_less(ord, *b, *c)) {
            stl_swap(result, b);
        } else if (occ_less(ord, *a, *c)) {
            stl_swap(result, c);
        } else {
            stl_swap(result, a);
        }
    } else if (occ_less(ord, *a, *c)) {
        stl_swap(result, a);
    } else if (occ_less(ord, *b, *c)) {
        stl_swap(result, c);
    } else {
        stl_swap(result, b);
    }
}

static void stl_introsort(optr *first, optr *last, int depth, const occ_order *ord) {
    while (last - first > 16) {
        if (depth == 0) {
            stl_heap_sort(first, last, ord);
            return;
        }
        depth--;
        optr *mid = first + (last - first) / 2;
        stl_median_to_first(first, first + 1, mid, last - 1, ord);
        optr *lo = first + 1, *hi = last;
        for (;;) {
            while (occ_less(ord, *lo, *first)) {
                lo++;
            }
            hi--;
            while (occ_less(ord, *first, *hi)) {
                hi--;
            }
            if (!(lo < hi)) {
                break;
            }
            stl_swap(lo, hi);
            lo++;
        }
        stl_introsort(lo, last, depth, ord);
        last = lo;
    }
}

static void stl_linear_insert(optr *last, const occ_order *ord) {
    optr value = *last;
    optr *next = last - 1;
    while (occ_less(ord, value, *next)) {
        *last = *next;
        last = next;
        next--;
    }
    *last = value;
}

static void stl_insertion_sort(optr *first, optr *last, const occ_order *ord) {
    if (first == last) {
        return;
    }
    for (optr *i = first + 1; i != last; i++) {
        if (occ_less(ord, *i, *first)) {
            optr value = *i;
            memmove(first + 1, first, (size_t)(i - first) * sizeof(optr));
            *first = value;
        } else {
            stl_linear_insert(i, ord);
        }
    }
}

static void stl_sort(optr *first, optr *last, const occ_order *ord) {
    ptrdiff_t n = last - first;
    if (n <= 0) {
        return;
    }
    int lg = 63 - __builtin_clzll((unsigned long long)n);
    stl_introsort(first, last, 2 * lg, ord);
    if (n > 16) {
        stl_insertion_sort(first, first + 16, ord);
        for (optr *i = first + 16; i != last; i++) {
            stl_linear_insert(i, ord);
        }
    } else {
        stl_insertion_sort(first, last, ord);
    }
}

/* ---- candidate selection (select_compatible) ---- */

typedef struct pattern {
    int32_t lhs;
    int32_t rhs;
    int8_t gap;
    int8_t polarity;
} pattern;

typedef struct cand {
    int score;
    pattern pat;
    int existing_var;
    occ_list normal;
    occ_list pseudo;
} cand;

typedef struct cand_list {
    cand *items;
    size_t len;
    size_t cap;
} cand_list;

static void cand_fini(cand *c) {
    occ_list_fini(&c->normal);
    occ_list_fini(&c->pseudo);
}

static void cand_list_fini(cand_list *l) {
    for (size_t i = 0; i < l->len; i++) {
        cand_fini(&l->items[i]);
    }
    alk_free(l->items);
    l->items = NULL;
    l->len = l->cap = 0;
}

static bool used_by(const uint64_t *consumed, const socc *o) {
    for (int i = 0; i < o->use_count; i++) {
        if (consumed[o->use_var[i]] & o->use_mask[i]) {
            return true;
        }
    }
    return false;
}

/* Fills c->normal, c->pseudo and c->score from the candidate's occurrences `occs`. */
static int select_compatible(const occ_list *occs, srow r, bool ltr, cand *c, optr *scratch) {
    occ_order ord = {ltr ? row_msb(r) : row_lsb(r), ltr};
    optr *regular = scratch, *odp = scratch + occs->len, *pseudo = scratch + 2 * occs->len;
    size_t n_regular = 0, n_odp = 0, n_pseudo = 0;
    for (size_t i = 0; i < occs->len; i++) {
        const socc *o = &occs->items[i];
        if (o->kind == 0) {
            regular[n_regular++] = o;
        } else if (o->kind == 1) {
            odp[n_odp++] = o;
        } else {
            pseudo[n_pseudo++] = o;
        }
    }
    stl_sort(regular, regular + n_regular, &ord);
    stl_sort(odp, odp + n_odp, &ord);
    stl_sort(pseudo, pseudo + n_pseudo, &ord);
    uint64_t consumed[MAXV] = {0};
    int rv = ALK_OK;
    size_t i = 0;
    c->score = 0;
    for (int phase = 0; phase < 3 && rv == ALK_OK; phase++) {
        size_t n = phase == 1 ? n_regular : n_odp;
        for (size_t k = phase == 1 ? 0 : i; k < n && rv == ALK_OK; k++) {
            const socc *o = phase == 1 ? regular[k] : odp[k];
            if (phase == 0 && !uses_boundary(o, ord.boundary)) {
                break;
            }
            if (phase == 0) {
                i = k + 1;
            }
            if (used_by(consumed, o)) {
                continue;
            }
            for (int u = 0; u < o->use_count; u++) {
                consumed[o->use_var[u]] |= o->use_mask[u];
            }
            rv = occ_push(&c->normal, o);
            c->score++;
        }
    }
    for (size_t k = 0; k < n_pseudo && rv == ALK_OK; k++) {
        if (!used_by(consumed, pseudo[k])) {
            rv = occ_push(&c->pseudo, pseudo[k]);
        }
    }
    return rv;
}

/* ---- the search ---- */

typedef struct result {
    int adders;
    int n_rows;
    srow rows[MAXV];
    sdef defs[MAXV];
} result;

typedef struct ctx {
    int64_t target;
    int max_gap;
    const tmpl_list *templates;
    /* Templates are generated sigma-major, gap-minor, so each (sigma, gap) is one contiguous
     * range [first, first + count) in generation order (spec §14.1 item 7). */
    size_t *range_first; /* [2 * (max_gap + 1)] */
    size_t *range_count;
    size_t nodes;              /* search calls so far */
    size_t node_limit;         /* SIZE_MAX: unbounded (compat) */
    bool greedy;               /* follow the first best candidate only (improved mode) */
    const atomic_bool *cancel; /* polled every 64 nodes, or NULL */
    int rv;                    /* sticky error */
} ctx;

static int existing_var(const sexpr *e, pattern p) {
    int found = -1;
    for (int v = 1; v < e->n_rows; v++) {
        const sdef *d = &e->defs[v - 1];
        if (d->lhs == p.lhs && d->rhs == p.rhs && d->gap == p.gap && d->polarity == p.polarity) {
            found = v;
        }
    }
    return found;
}

/* Scores one candidate and keeps it in `top` when it reaches the best score so far. */
static void push_candidate(ctx *cx, const sexpr *e, pattern pat, occ_list *occs, srow sel_row,
                           bool ltr, cand_list *top, int *best_score, optr **scratch,
                           size_t *scratch_cap) {
    if (occs->len == 0 || cx->rv != ALK_OK) {
        return;
    }
    if (*scratch_cap < 3 * occs->len) {
        void *s = *scratch;
        cx->rv = alk_grow(&s, scratch_cap, sizeof(optr), 3 * occs->len);
        *scratch = s;
        if (cx->rv != ALK_OK) {
            return;
        }
    }
    cand c = {.pat = pat};
    cx->rv = select_compatible(occs, sel_row, ltr, &c, *scratch);
    if (cx->rv != ALK_OK || c.score == 0) {
        cand_fini(&c);
        return;
    }
    c.existing_var = existing_var(e, pat);
    int min_score = c.existing_var >= 0 ? 1 : 2;
    if (c.score < min_score || c.score < *best_score) {
        cand_fini(&c);
        return;
    }
    if (c.score > *best_score) {
        /* Only the best-scoring candidates are branched on. */
        for (size_t i = 0; i < top->len; i++) {
            cand_fini(&top->items[i]);
        }
        top->len = 0;
        *best_score = c.score;
    }
    if (top->len == top->cap) {
        void *items = top->items;
        cx->rv = alk_grow(&items, &top->cap, sizeof(cand), top->len + 1);
        top->items = items;
        if (cx->rv != ALK_OK) {
            cand_fini(&c);
            return;
        }
    }
    top->items[top->len++] = c;
}

static bool cand_before(const cand *a, const cand *b) {
    bool ea = a->existing_var >= 0, eb = b->existing_var >= 0;
    if (ea != eb) {
        return ea;
    }
    if (a->pat.gap != b->pat.gap) {
        return a->pat.gap < b->pat.gap;
    }
    if (a->pat.polarity != b->pat.polarity) {
        return a->pat.polarity > b->pat.polarity;
    }
    if (a->pat.lhs != b->pat.lhs) {
        return a->pat.lhs < b->pat.lhs;
    }
    return a->pat.rhs < b->pat.rhs;
}

static void top_candidates(ctx *cx, const sexpr *e, bool ltr, cand_list *top, int *best_score) {
    occ_list occs = {0};
    optr *scratch = NULL;
    size_t scratch_cap = 0;
    static const int sigmas[2] = {1, -1};
    *best_score = 0;
    for (int v = 0; v < e->n_rows && cx->rv == ALK_OK; v++) {
        srow r = e->rows[v];
        if (row_empty(r)) {
            continue;
        }
        int max_g = row_msb(r) - row_lsb(r);
        max_g = cx->max_gap < max_g ? cx->max_gap : max_g;
        for (int gap = 1; gap <= max_g && cx->rv == ALK_OK; gap++) {
            for (int si = 0; si < 2 && cx->rv == ALK_OK; si++) {
                int sigma = sigmas[si];
                occs.len = 0;
                cx->rv = enumerate_regular(v, r, gap, sigma, &occs);
                size_t range = (size_t)si * (size_t)(cx->max_gap + 1) + (size_t)gap;
                size_t first = cx->range_first[range], count = cx->range_count[range];
                for (size_t t = first; t < first + count && cx->rv == ALK_OK; t++) {
                    const tmpl *tp = &cx->templates->items[t];
                    cx->rv = enumerate_template(v, r, tp, tp->weight == 3 ? 1 : 2, &occs);
                }
                pattern pat = {v, v, (int8_t)gap, (int8_t)sigma};
                push_candidate(cx, e, pat, &occs, r, ltr, top, best_score, &scratch, &scratch_cap);
            }
        }
    }
    for (int lv = 0; lv < e->n_rows && cx->rv == ALK_OK; lv++) {
        srow lhs = e->rows[lv];
        if (row_empty(lhs)) {
            continue;
        }
        for (int rvar = 0; rvar < e->n_rows && cx->rv == ALK_OK; rvar++) {
            srow rhs = e->rows[rvar];
            if (rvar == lv || row_empty(rhs)) {
                continue;
            }
            int max_g = cx->max_gap < row_msb(rhs) ? cx->max_gap : row_msb(rhs);
            for (int gap = 1; gap <= max_g && cx->rv == ALK_OK; gap++) {
                for (int si = 0; si < 2 && cx->rv == ALK_OK; si++) {
                    occs.len = 0;
                    cx->rv = enumerate_cross(lv, lhs, rvar, rhs, gap, sigmas[si], &occs);
                    pattern pat = {lv, rvar, (int8_t)gap, (int8_t)sigmas[si]};
                    push_candidate(cx, e, pat, &occs, lhs, ltr, top, best_score, &scratch,
                                   &scratch_cap);
                }
            }
        }
    }
    occ_list_fini(&occs);
    alk_free(scratch);
    /* Candidate keys are unique, so any correct sort gives the reference's order. */
    for (size_t i = 1; i < top->len; i++) {
        cand c = top->items[i];
        size_t j = i;
        while (j > 0 && cand_before(&c, &top->items[j - 1])) {
            top->items[j] = top->items[j - 1];
            j--;
        }
        top->items[j] = c;
    }
}

static bool apply_occurrences(sexpr *e, int b_var, int polarity, const socc *occs, size_t n) {
    srow *dst = &e->rows[b_var];
    bool same_source = e->defs[b_var - 1].lhs == e->defs[b_var - 1].rhs;
    for (size_t i = 0; i < n; i++) {
        const socc *o = &occs[i];
        for (int u = 0; u < o->use_count; u++) {
            srow src = e->rows[o->use_var[u]];
            if ((o->use_mask[u] & (src.pos | src.neg)) != o->use_mask[u]) {
                return false;
            }
        }
        for (int u = 0; u < o->use_count; u++) {
            srow *src = &e->rows[o->use_var[u]];
            src->pos &= ~o->use_mask[u];
            src->neg &= ~o->use_mask[u];
        }
        for (int k = 0; k < o->rep_count; k++) {
            int sign = o->rep_sign[k];
            if (same_source && polarity < 0) {
                sign = -sign; /* the stored variable is v - v*2^gap = -P */
            }
            if (!row_add(dst, o->rep_shift[k], sign)) {
                return false;
            }
        }
    }
    return true;
}

/* GCC/Clang 128-bit integers; __extension__ keeps -Wpedantic quiet about them. */
__extension__ typedef __int128 i128;

/* The value of an expression in units of x, in 128-bit arithmetic. */
static i128 expr_value(const sexpr *e) {
    i128 val[MAXV];
    val[0] = 1;
    for (int v = 1; v < e->n_rows; v++) {
        const sdef *d = &e->defs[v - 1];
        i128 rhs = val[d->rhs] * ((i128)1 << d->gap);
        val[v] = d->polarity > 0 ? val[d->lhs] + rhs : val[d->lhs] - rhs;
    }
    i128 total = 0;
    for (int v = 0; v < e->n_rows; v++) {
        for (int s = 0; s < 64; s++) {
            int sg = row_sign(e->rows[v], s);
            if (sg != 0) {
                total += (i128)sg * val[v] * ((i128)1 << s);
            }
        }
    }
    return total;
}

static bool search(ctx *cx, const sexpr *e, bool ltr, int budget, result *out);

static bool finish(ctx *cx, const sexpr *e, int budget, result *out) {
    int terms = 0;
    for (int v = 0; v < e->n_rows; v++) {
        terms += row_popcount(e->rows[v]);
    }
    int cost = (e->n_rows - 1) + (terms > 1 ? terms - 1 : 0);
    if (cost >= budget) {
        return false;
    }
    if (expr_value(e) != (i128)cx->target) {
        cx->rv = ALK_EINTERNAL;
        return false;
    }
    out->adders = cost;
    out->n_rows = e->n_rows;
    memcpy(out->rows, e->rows, sizeof(e->rows));
    memcpy(out->defs, e->defs, sizeof(e->defs));
    return true;
}

static void update_best(ctx *cx, const sexpr *e, bool ltr, int budget, result *best, bool *found) {
    result *child = alk_malloc(sizeof(result));
    if (child == NULL) {
        cx->rv = ALK_ENOMEM;
        return;
    }
    int child_budget = *found ? best->adders : budget;
    if (search(cx, e, ltr, child_budget, child) && (!*found || child->adders < best->adders)) {
        *best = *child;
        *found = true;
    }
    alk_free(child);
}

/* Every combination of pseudo occurrences, grouped by source mask (pseudo_branches). */
typedef struct branch {
    uint64_t used;
    size_t n;
    size_t *idx; /* indices into the pseudo list */
} branch;

static void branches_free(branch *b, size_t n) {
    for (size_t i = 0; b != NULL && i < n; i++) {
        alk_free(b[i].idx);
    }
    alk_free(b);
}

static int pseudo_branches(const occ_list *pseudo, branch **ret, size_t *ret_n) {
    *ret = NULL;
    *ret_n = 0;
    if (pseudo->len == 0) {
        return ALK_OK;
    }
    size_t n = pseudo->len;
    /* Group ids in first-seen order of the source masks. */
    size_t *group = alk_malloc(n * sizeof(size_t));
    uint64_t *masks = alk_malloc(n * sizeof(uint64_t));
    branch *cur = alk_calloc(1, sizeof(branch));
    size_t n_cur = 1, n_groups = 0;
    int rv = ALK_OK;
    if (group == NULL || masks == NULL || cur == NULL) {
        rv = ALK_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        size_t g = 0;
        while (g < n_groups && masks[g] != pseudo->items[i].source_mask) {
            g++;
        }
        if (g == n_groups) {
            masks[n_groups++] = pseudo->items[i].source_mask;
        }
        group[i] = g;
    }
    for (size_t g = 0; g < n_groups && rv == ALK_OK; g++) {
        size_t members = 0;
        for (size_t i = 0; i < n; i++) {
            members += group[i] == g;
        }
        branch *next = alk_calloc(n_cur * members + 1, sizeof(branch));
        size_t n_next = 0;
        if (next == NULL) {
            rv = ALK_ENOMEM;
            break;
        }
        for (size_t b = 0; b < n_cur && rv == ALK_OK; b++) {
            if (cur[b].used & masks[g]) {
                next[n_next++] = cur[b];
                cur[b].idx = NULL;
                continue;
            }
            for (size_t i = 0; i < n && rv == ALK_OK; i++) {
                if (group[i] != g) {
                    continue;
                }
                branch nb = {cur[b].used | masks[g], cur[b].n + 1, NULL};
                nb.idx = alk_malloc(nb.n * sizeof(size_t));
                if (nb.idx == NULL) {
                    rv = ALK_ENOMEM;
                    break;
                }
                if (cur[b].n > 0) {
                    memcpy(nb.idx, cur[b].idx, cur[b].n * sizeof(size_t));
                }
                nb.idx[cur[b].n] = i;
                next[n_next++] = nb;
            }
        }
        branches_free(cur, n_cur);
        cur = next;
        n_cur = n_next;
    }
done:
    alk_free(group);
    alk_free(masks);
    if (rv != ALK_OK) {
        branches_free(cur, n_cur);
        return rv;
    }
    *ret = cur;
    *ret_n = n_cur;
    return ALK_OK;
}

static void branch_candidate(ctx *cx, const sexpr *e, const cand *c, bool ltr, int budget,
                             result *best, bool *found) {
    sexpr *base = alk_malloc(3 * sizeof(sexpr));
    socc *picked = NULL;
    branch *branches = NULL;
    size_t n_branches = 0;
    if (base == NULL) {
        cx->rv = ALK_ENOMEM;
        return;
    }
    sexpr *normal = base + 1, *with_pseudo = base + 2;
    *base = *e;
    int b_var = c->existing_var;
    if (b_var < 0) {
        if (base->n_rows >= MAXV) {
            cx->rv = ALK_ELIMIT;
            goto done;
        }
        base->defs[base->n_rows - 1] = (sdef){c->pat.lhs, c->pat.rhs, c->pat.gap, c->pat.polarity};
        base->rows[base->n_rows] = (srow){0, 0};
        b_var = base->n_rows++;
    }
    *normal = *base;
    if (apply_occurrences(normal, b_var, c->pat.polarity, c->normal.items, c->normal.len)) {
        update_best(cx, normal, ltr, budget, best, found);
    }
    if (cx->greedy) {
        goto done; /* one path: no pseudo-occurrence branches */
    }
    cx->rv = cx->rv != ALK_OK ? cx->rv : pseudo_branches(&c->pseudo, &branches, &n_branches);
    if (cx->rv == ALK_OK && n_branches > 0) {
        picked = alk_malloc((c->pseudo.len + 1) * sizeof(socc));
        if (picked == NULL) {
            cx->rv = ALK_ENOMEM;
        }
    }
    for (size_t b = 0; b < n_branches && cx->rv == ALK_OK; b++) {
        if (branches[b].n == 0) {
            continue;
        }
        for (size_t k = 0; k < branches[b].n; k++) {
            picked[k] = c->pseudo.items[branches[b].idx[k]];
        }
        *with_pseudo = *base;
        if (!apply_occurrences(with_pseudo, b_var, c->pat.polarity, c->normal.items,
                               c->normal.len)) {
            continue;
        }
        if (!apply_occurrences(with_pseudo, b_var, c->pat.polarity, picked, branches[b].n)) {
            continue;
        }
        update_best(cx, with_pseudo, ltr, budget, best, found);
    }
done:
    branches_free(branches, n_branches);
    alk_free(picked);
    alk_free(base);
}

static bool search(ctx *cx, const sexpr *e, bool ltr, int budget, result *out) {
    if (cx->rv != ALK_OK || e->n_rows - 1 >= budget || cx->nodes >= cx->node_limit) {
        return false;
    }
    cx->nodes++;
    if (cx->cancel != NULL && (cx->nodes & 63) == 0 &&
        atomic_load_explicit(cx->cancel, memory_order_relaxed)) {
        cx->rv = ALK_ECANCELED;
        return false;
    }
    cand_list top = {0};
    int best_score = 0;
    top_candidates(cx, e, ltr, &top, &best_score);
    if (cx->rv != ALK_OK) {
        cand_list_fini(&top);
        return false;
    }
    if (best_score == 0) {
        cand_list_fini(&top);
        return finish(cx, e, budget, out);
    }
    bool found = false;
    size_t branches = cx->greedy ? 1 : top.len;
    for (size_t i = 0; i < branches && cx->rv == ALK_OK; i++) {
        branch_candidate(cx, e, &top.items[i], ltr, budget, out, &found);
    }
    cand_list_fini(&top);
    return found && cx->rv == ALK_OK;
}

/* ---- entry point ---- */

static int assemble(const result *best, int t, bool out_neg, alk__fq q, alk_program **ret) {
    alk__op *ops = NULL;
    size_t n_ops = 0, cap_ops = 0;
    alk__term *terms = NULL;
    size_t n_terms = 0;
    void *items = NULL;
    int rv = alk_grow(&items, &cap_ops, sizeof(alk__op), (size_t)best->n_rows + 1);
    if (rv != ALK_OK) {
        return rv;
    }
    ops = items;
    ops[n_ops++] = (alk__op){0, -1, -1, 0, q, 0.0f, 0.0f};
    for (int v = 1; v < best->n_rows; v++) {
        const sdef *d = &best->defs[v - 1];
        alk__fq ql = ops[d->lhs].qint, qr = ops[d->rhs].qint;
        float cost, dlat;
        alk__cost_add(ql, qr, d->gap, &cost, &dlat);
        float l0 = ops[d->lhs].latency, l1 = ops[d->rhs].latency;
        ops[n_ops++] = (alk__op){d->lhs,
                                 d->rhs,
                                 d->polarity > 0 ? 0 : 1,
                                 d->gap,
                                 alk__qint_add(ql, qr, d->gap, false, d->polarity < 0),
                                 (l1 > l0 ? l1 : l0) + dlat,
                                 cost};
    }
    size_t max_terms = 0;
    for (int v = 0; v < best->n_rows; v++) {
        max_terms += (size_t)row_popcount(best->rows[v]);
    }
    terms = alk_malloc((max_terms + 1) * sizeof(alk__term));
    if (terms == NULL) {
        alk_free(ops);
        return ALK_ENOMEM;
    }
    for (int v = 0; v < best->n_rows; v++) {
        for (int s = 0; s < 64; s++) {
            int sg = row_sign(best->rows[v], s);
            if (sg != 0) {
                terms[n_terms++] = (alk__term){v, sg < 0, s};
            }
        }
    }
    int32_t final_id = 0, final_shift = 0;
    bool final_neg = false;
    if (n_terms == 1) {
        final_id = terms[0].id;
        final_shift = terms[0].shift;
        final_neg = terms[0].neg;
    } else if (n_terms > 1) {
        rv = alk__reduce_terms(&ops, &n_ops, &cap_ops, terms, n_terms, &final_id, &final_neg,
                               &final_shift);
    } else {
        rv = ALK_EINTERNAL; /* a non-zero constant always has a digit */
    }
    alk_free(terms);
    if (rv != ALK_OK) {
        alk_free(ops);
        return rv;
    }
    rv =
        alk__scm_stage_to_program(ops, n_ops, final_id, final_shift + t, final_neg != out_neg, ret);
    alk_free(ops);
    return rv;
}

/*
 * Searches every form of `forms` in both scan directions, in order, within cx's node limit;
 * best[0] keeps the best solution (best[1] is scratch) and *have tells whether there is one.
 */
static int search_forms(ctx *cx, const sd_list *forms, sexpr *e, result *best, bool *have) {
    int budget = *have ? best[0].adders : INT_MAX;
    for (size_t f = 0; f < forms->len && cx->rv == ALK_OK; f++) {
        for (int dir = 0; dir < 2 && cx->rv == ALK_OK; dir++) {
            e->n_rows = 1;
            e->rows[0] = (srow){forms->items[f].pos, forms->items[f].neg};
            if (search(cx, e, dir == 0, budget, &best[1])) {
                budget = best[1].adders;
                best[0] = best[1];
                *have = true;
            }
        }
    }
    return cx->rv;
}

/*
 * Replaces *program (owned by the caller) with the repeating-pattern form of x * constant
 * (scm_repeat.c) when that has fewer adders, or as many at a lower cost.
 */
static int try_repetition(double constant, const alk_scm_options *options, alk_program **program,
                          alk_diag *diag) {
    alk_program *other = NULL;
    int rv = alk__scm_repeat(constant, options, &other, diag);
    if (rv != ALK_OK || other == NULL) {
        return rv;
    }
    size_t mine = alk_cmvm_count_adders(*program), theirs = alk_cmvm_count_adders(other);
    if (theirs < mine || (theirs == mine && alk_program_cost(other) < alk_program_cost(*program))) {
        alk_program_free(*program);
        *program = other;
    } else {
        alk_program_free(other);
    }
    return ALK_OK;
}

void alk_scm_options_init(alk_scm_options *options) {
    *options = (alk_scm_options){
        .k = 1,
        .interval = {-128.0, 127.0, 1.0},
        .mode = ALK_CMVM_IMPROVED,
        .cancel = NULL,
    };
}

int alk_scm_solve(double constant, const alk_scm_options *options, alk_program **ret_program,
                  alk_diag *diag) {
    alk_scm_options defaults;
    if (options == NULL) {
        alk_scm_options_init(&defaults);
        options = &defaults;
    }
    int k = options->k;
    alk_qint interval = options->interval;
    bool bounded = options->mode != ALK_CMVM_COMPAT;
    if (k < 0 || k > ALK_SCM_MAX_K) {
        return alk_diag_set(diag, ALK_EINVAL, "scm: k = %d is outside [0, %d]", k, ALK_SCM_MAX_K);
    }
    if (!isfinite(constant)) {
        return alk_diag_set(diag, ALK_EINVAL, "scm: the constant is not finite");
    }
    if (constant != 0.0 && fabs(constant) < 0x1p-1022) {
        return alk_diag_set(diag, ALK_EINVAL, "scm: the constant %g is subnormal", constant);
    }
    if (constant == 0.0) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "scm: the constant is 0 (a product by 0 is the constant 0, not an "
                            "adder graph)");
    }
    bool out_neg = constant < 0;
    double abs_c = fabs(constant);
    int t = alk_lsb_loc_f64(abs_c);
    int64_t c_odd = (int64_t)round(abs_c * pow(2.0, -t));
    alk__fq q = {(float)interval.min, (float)interval.max, (float)interval.step};

    /* NAF digits of the odd part: weight and length. */
    int w0 = 0, n_bits = 0;
    srow naf = {0, 0};
    for (int64_t n = c_odd; n != 0; n_bits++) {
        if (n & 1) {
            int u = (n == 1 || n == -1) ? (int)n : 2 - (int)(((n & 3) + 4) & 3);
            row_set(&naf, n_bits, u);
            w0++;
            n -= u;
        }
        n >>= 1;
    }
    int max_gap = n_bits + 1 > 2 ? n_bits + 1 : 2;
    tmpl_list templates = {0};
    sd_list forms = {0};
    result *best = alk_malloc(2 * sizeof(result));
    int rv = best == NULL ? ALK_ENOMEM : build_templates(max_gap, bounded, &templates);
    /* Improved mode searches odd parts of up to 32 bits (the reference's stated range) in the
     * reference's order, longer ones one greedy path per form. Each form takes at least one
     * node: more forms than nodes cannot be searched. */
    bool long_odd = bounded && (c_odd >> ALK_SCM_EXACT_BITS) != 0;
    forms.limit = !bounded ? SIZE_MAX : long_odd ? ALK_SCM_GREEDY_NODES : ALK_SCM_EXACT_NODES;
    forms.cancel = options->cancel;
    if (rv == ALK_OK) {
        sd_recurse(&forms, c_odd, w0 + k, 0, 0, 0);
        rv = forms.rv;
    }
    ctx cx = {
        .target = c_odd,
        .max_gap = max_gap,
        .templates = &templates,
        .node_limit = bounded ? ALK_SCM_EXACT_NODES : SIZE_MAX,
        .cancel = options->cancel,
        .rv = ALK_OK,
    };
    size_t n_ranges = 2 * ((size_t)max_gap + 1);
    cx.range_first = alk_calloc(n_ranges, sizeof(size_t));
    cx.range_count = alk_calloc(n_ranges, sizeof(size_t));
    if (rv == ALK_OK && (cx.range_first == NULL || cx.range_count == NULL)) {
        rv = ALK_ENOMEM;
    }
    for (size_t ti = 0; rv == ALK_OK && ti < templates.len; ti++) {
        const tmpl *tp = &templates.items[ti];
        size_t range = (tp->sigma > 0 ? 0 : 1) * ((size_t)max_gap + 1) + (size_t)tp->gap;
        if (cx.range_count[range]++ == 0) {
            cx.range_first[range] = ti;
        }
    }
    sexpr *e = rv == ALK_OK ? alk_malloc(sizeof(sexpr)) : NULL;
    if (rv == ALK_OK && e == NULL) {
        rv = ALK_ENOMEM;
    }
    /* Improved mode: a long odd part, or a search that cannot finish within its nodes, takes one
     * greedy path per form instead, and a repeating digit pattern may give a shorter form. */
    bool have = false;
    bool cut_short = long_odd;
    if (rv == ALK_OK && !cut_short) {
        rv = search_forms(&cx, &forms, e, best, &have);
        cut_short = bounded && (cx.nodes >= cx.node_limit || forms.len >= forms.limit);
    }
    if (rv == ALK_OK && cut_short) {
        cx.greedy = true;
        cx.nodes = 0;
        cx.node_limit = ALK_SCM_GREEDY_NODES;
        rv = search_forms(&cx, &forms, e, best, &have);
    }
    if (rv == ALK_OK && !have) {
        best[0].n_rows = 1;
        best[0].rows[0] = naf;
    }
    if (rv == ALK_OK) {
        rv = assemble(&best[0], t, out_neg, q, ret_program);
    }
    if (rv == ALK_OK && cut_short) {
        rv = try_repetition(constant, options, ret_program, diag);
        if (rv != ALK_OK) {
            alk_program_free(*ret_program);
            *ret_program = NULL;
        }
    }
    alk_free(e);
    alk_free(best);
    alk_free(cx.range_first);
    alk_free(cx.range_count);
    alk_free(templates.items);
    alk_free(forms.items);
    if (rv == ALK_EINTERNAL) {
        return alk_diag_set(diag, rv, "scm: a substitution produced a wrong value for %.17g",
                            constant);
    }
    if (rv == ALK_ECANCELED) {
        return alk_diag_set(diag, rv, "scm: the solve of %.17g was cancelled", constant);
    }
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "scm: %s while solving %.17g", alk_strerror(rv), constant);
    }
    return ALK_OK;
}
