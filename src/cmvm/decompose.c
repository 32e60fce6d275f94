/*
 * Graph decomposition W = W1 * W2 with a delay budget (spec cmvm.md §4).
 *
 * Design: the reference materialises n x (m+1) x (m+1) sum/difference arrays and their CSD
 * digits (O(n·m²·B) memory) and runs an O(m³) Prim. Here a distance is the sum of NAF weights
 * computed directly with the popcount identity of spec §3.2 (O(m²) memory, §14.1 item 5), and
 * Prim keeps, for every node outside the tree, its best edge into the tree. That edge is the
 * lexicographic minimum of (penalised cost, in-node), and the next node taken is the minimum of
 * (cost, out-node, in-node): exactly the first minimum of the reference's scan, which walks
 * out-nodes then in-nodes in ascending order with a strict "<". A penalised edge depends only on
 * the in-node's depth, fixed once that node joins, so the keys never go stale.
 *
 * Values stay exact: centred entries are below 2^30 (alk_cmvm_check), so sums and differences
 * fit in int64 and in double. (The reference computes them in float32, which rounds only above
 * 2^24; there it would no longer reconstruct W, so we do not copy that.)
 *
 * The distances do not depend on dc, so they are computed once (alk__decomp_new) and shared,
 * read-only, by the trees of every dc the search tries (alk__decomp_build).
 *
 * Thread rule: alk__decomp_new's result is immutable; alk__decomp_build may run on it from
 * several threads at once.
 */
#include "cmvm/cmvm_int.h"
#include "core/alloc.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

int alk__mat_copy(const alk__mat *src, alk__mat *ret_copy) {
    size_t n = (size_t)src->rows * src->cols;
    alk__mat c = {src->rows, src->cols, alk_malloc((n + 1) * sizeof(double))};
    if (c.v == NULL) {
        return ALK_ENOMEM;
    }
    memcpy(c.v, src->v, n * sizeof(double));
    *ret_copy = c;
    return ALK_OK;
}

void alk__mat_fini(alk__mat *m) {
    if (m != NULL) {
        alk_free(m->v);
        m->v = NULL;
        m->rows = m->cols = 0;
    }
}

static int mat_alloc(alk__mat *m, uint32_t rows, uint32_t cols) {
    size_t n;
    if (!alk_mul_size(rows, cols, &n)) {
        return ALK_ELIMIT;
    }
    m->rows = rows;
    m->cols = cols;
    m->v = alk_calloc(n == 0 ? 1 : n, sizeof(double));
    return m->v == NULL ? ALK_ENOMEM : ALK_OK;
}

/* ceil(log2(float(max(c, 1)))) as the reference's float pipeline computes it. */
static float edge_latency(int64_t c) {
    float x = (float)(c > 1 ? c : 1);
    return ceilf(log2f(x));
}

struct alk__decomp {
    uint32_t n;
    uint32_t m;
    int32_t *shift0;
    int32_t *shift1;
    int64_t *centred; /* n x m */
    int64_t *aug;     /* column-major A = [0 | C]: node a's column is aug[a*n .. a*n+n) */
    int64_t *dist;    /* (m+1) x (m+1), NULL when only dc = -1 is needed */
    int8_t *sign;
};

void alk__decomp_free(alk__decomp *d) {
    if (d == NULL) {
        return;
    }
    alk_free(d->shift0);
    alk_free(d->shift1);
    alk_free(d->centred);
    alk_free(d->aug);
    alk_free(d->dist);
    alk_free(d->sign);
    alk_free(d);
}

int alk__decomp_new(const alk__mat *w, bool with_tree, alk__decomp **ret) {
    uint32_t n = w->rows, m = w->cols, nodes = m + 1;
    size_t nm, nn, an;
    if (!alk_mul_size(n, m, &nm) || !alk_mul_size(nodes, nodes, &nn) ||
        !alk_mul_size(nodes, n, &an)) {
        return ALK_ELIMIT;
    }
    alk__decomp *d = alk_calloc(1, sizeof(*d));
    if (d == NULL) {
        return ALK_ENOMEM;
    }
    d->n = n;
    d->m = m;
    d->shift0 = alk_malloc(((size_t)n + 1) * sizeof(int32_t));
    d->shift1 = alk_malloc(((size_t)m + 1) * sizeof(int32_t));
    d->centred = alk_malloc((nm + 1) * sizeof(int64_t));
    d->aug = alk_calloc(an + 1, sizeof(int64_t));
    if (with_tree) {
        d->dist = alk_malloc(nn * sizeof(int64_t));
        d->sign = alk_malloc(nn);
    }
    if (d->shift0 == NULL || d->shift1 == NULL || d->centred == NULL || d->aug == NULL ||
        (with_tree && (d->dist == NULL || d->sign == NULL))) {
        alk__decomp_free(d);
        return ALK_ENOMEM;
    }
    uint32_t bad_row, bad_col;
    if (!alk__center(w, d->shift0, d->shift1, d->centred, &bad_row, &bad_col)) {
        alk__decomp_free(d);
        return ALK_EINVAL;
    }
    for (uint32_t j = 0; j < m; j++) {
        for (uint32_t i = 0; i < n; i++) {
            d->aug[(size_t)(j + 1) * n + i] = d->centred[(size_t)i * m + j];
        }
    }
    /* Distances: dist = min(dist-, dist+), sign -1 when the sum is strictly cheaper. */
    for (uint32_t a = 0; with_tree && a < nodes; a++) {
        d->dist[(size_t)a * nodes + a] = 0;
        d->sign[(size_t)a * nodes + a] = 1;
        const int64_t *ca = d->aug + (size_t)a * n;
        for (uint32_t b = a + 1; b < nodes; b++) {
            const int64_t *cb = d->aug + (size_t)b * n;
            int64_t dminus = 0, dplus = 0;
            for (uint32_t i = 0; i < n; i++) {
                dminus += alk__naf_weight(ca[i] - cb[i]);
                dplus += alk__naf_weight(ca[i] + cb[i]);
            }
            int64_t dd = dplus < dminus ? dplus : dminus;
            int8_t sg = dplus < dminus ? -1 : 1;
            d->dist[(size_t)a * nodes + b] = d->dist[(size_t)b * nodes + a] = dd;
            d->sign[(size_t)a * nodes + b] = d->sign[(size_t)b * nodes + a] = sg;
        }
    }
    *ret = d;
    return ALK_OK;
}

int alk__decomp_build(const alk__decomp *d, int dc, alk__mat *ret_w1, alk__mat *ret_w2) {
    uint32_t n = d->n, m = d->m, nodes = m + 1;
    const int64_t *dist = d->dist, *aug = d->aug, *centred = d->centred;
    const int8_t *sign = d->sign;
    const int32_t *shift0 = d->shift0, *shift1 = d->shift1;
    alk__mat w1 = {0}, w2 = {0};
    int32_t *edges = alk_malloc((size_t)nodes * 2 * sizeof(int32_t));
    int32_t *depth = alk_calloc(nodes, sizeof(int32_t));
    int32_t *best_j = alk_malloc(nodes * sizeof(int32_t));
    int64_t *best_c = alk_malloc(nodes * sizeof(int64_t));
    bool *in_tree = alk_calloc(nodes, sizeof(bool));
    int rv = ALK_ENOMEM;
    if (edges == NULL || depth == NULL || best_j == NULL || best_c == NULL || in_tree == NULL) {
        goto fail;
    }
    if (dc != -1 && dist == NULL) {
        rv = ALK_EINTERNAL;
        goto fail;
    }

    /* Prim with the delay budget (spec §4.2). With dc = -1 the reference computes the tree and
     * discards it; we skip it. */
    float limit = -1.0f;
    if (dc >= 0) {
        int64_t max0 = 0;
        for (uint32_t j = 0; j < nodes; j++) {
            max0 = dist[j] > max0 ? dist[j] : max0;
        }
        float max_cost0 = (float)max0;
        limit = (float)((pow(2.0, dc) - 1) + ceil(log2((double)max_cost0 + 1e-32)));
    }
    const int64_t penalty = INT64_MAX / 2;
    in_tree[0] = true;
    for (uint32_t i = 1; i < nodes && dc != -1; i++) {
        int64_t c = dist[(size_t)i * nodes];
        if (dc >= 0 && fmaxf(edge_latency(c), 0.0f) + 1.0f > limit) {
            c = penalty;
        }
        best_c[i] = c;
        best_j[i] = 0;
    }
    for (uint32_t k = 1; k < nodes && dc != -1; k++) {
        uint32_t pick = 0;
        for (uint32_t i = 1; i < nodes; i++) {
            if (!in_tree[i] && (pick == 0 || best_c[i] < best_c[pick])) {
                pick = i;
            }
        }
        uint32_t from = (uint32_t)best_j[pick];
        in_tree[pick] = true;
        edges[2 * (k - 1)] = (int32_t)from;
        edges[2 * (k - 1) + 1] = (int32_t)pick;
        float lat = edge_latency(dist[(size_t)pick * nodes + from]);
        depth[pick] = (int32_t)(fmaxf(lat, (float)depth[from]) + 1.0f);
        for (uint32_t i = 1; i < nodes; i++) {
            if (in_tree[i]) {
                continue;
            }
            int64_t c = dist[(size_t)i * nodes + pick];
            if (dc >= 0) {
                float l = edge_latency(c);
                if (fmaxf(l, (float)depth[pick]) + 1.0f > limit) {
                    c = penalty;
                }
            }
            /* Ties keep the smaller in-node, which joined earlier or has a smaller index. */
            if (c < best_c[i] || (c == best_c[i] && (int32_t)pick < best_j[i])) {
                best_c[i] = c;
                best_j[i] = (int32_t)pick;
            }
        }
    }

    rv = mat_alloc(&w1, n, m);
    if (rv == ALK_OK) {
        rv = mat_alloc(&w2, m, m);
    }
    if (rv != ALK_OK) {
        goto fail;
    }
    if (dc == -1) {
        for (uint32_t i = 0; i < n; i++) {
            for (uint32_t j = 0; j < m; j++) {
                w1.v[(size_t)i * m + j] = ldexp((double)centred[(size_t)i * m + j], shift0[i]);
            }
        }
        for (uint32_t j = 0; j < m; j++) {
            w2.v[(size_t)j * m + j] = ldexp(1.0, shift1[j]);
        }
    } else {
        /* W2 columns as small integers first; scaled at the end. */
        uint32_t cnt = 0;
        for (uint32_t k = 0; k + 1 < nodes; k++) {
            uint32_t from = (uint32_t)edges[2 * k], to = (uint32_t)edges[2 * k + 1];
            int64_t s = sign[(size_t)to * nodes + from];
            bool any = false;
            for (uint32_t i = 0; i < n; i++) {
                if (aug[(size_t)to * n + i] - s * aug[(size_t)from * n + i] != 0) {
                    any = true;
                }
            }
            for (uint32_t r = 0; r < m; r++) {
                double v = from != 0 ? (double)s * w2.v[(size_t)r * m + (from - 1)] : 0.0;
                w2.v[(size_t)r * m + (to - 1)] = v;
            }
            if (any) {
                w2.v[(size_t)cnt * m + (to - 1)] = 1.0;
                for (uint32_t i = 0; i < n; i++) {
                    int64_t diff = aug[(size_t)to * n + i] - s * aug[(size_t)from * n + i];
                    w1.v[(size_t)i * m + cnt] = (double)diff;
                }
                cnt++;
            }
        }
        for (uint32_t i = 0; i < n; i++) {
            for (uint32_t j = 0; j < m; j++) {
                w1.v[(size_t)i * m + j] = ldexp(w1.v[(size_t)i * m + j], shift0[i]);
            }
        }
        for (uint32_t r = 0; r < m; r++) {
            for (uint32_t j = 0; j < m; j++) {
                w2.v[(size_t)r * m + j] = ldexp(w2.v[(size_t)r * m + j], shift1[j]);
            }
        }
    }
    *ret_w1 = w1;
    *ret_w2 = w2;
    w1.v = w2.v = NULL;
    rv = ALK_OK;
fail:
    alk__mat_fini(&w1);
    alk__mat_fini(&w2);
    alk_free(edges);
    alk_free(depth);
    alk_free(best_j);
    alk_free(best_c);
    alk_free(in_tree);
    return rv;
}

int alk__kernel_decompose(const alk__mat *w, int dc, alk__mat *ret_w1, alk__mat *ret_w2) {
    alk__decomp *d = NULL;
    int rv = alk__decomp_new(w, dc != -1, &d);
    if (rv == ALK_OK) {
        rv = alk__decomp_build(d, dc, ret_w1, ret_w2);
    }
    alk__decomp_free(d);
    return rv;
}
