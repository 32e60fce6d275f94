/*
 * HGQ2's attention layers (spec frontends.md §3.4): QMultiHeadAttention and its table form
 * QMultiHeadAttentionT, QLinformerAttention(T) and QSALTAttention, computed as HGQ2's Keras
 * layers compute them.
 *
 *   Q, K, V = the query/key/value projections (QEinsumDense, or QEinsumDenseT for the T forms):
 *             their iq (the layer's enable_iq), kq(kernel), bq(bias), their oq (always on);
 *   scores  = einsum(dot_product_equation, K, Q)     (SALT: then a QConv2D, channels first);
 *   P       = QSoftmax over the key attention axes, input_scaler 1/sqrt(key_dim), its oq;
 *   out     = output projection of einsum(combine_equation, P, V) (iq on, oq = enable_oq),
 *             then the layer's own oq when enable_oq (HGQ2 quantizes twice then, and so do we).
 * Linformer projects K and V along the attention axes first (QEinsumDense with iq and without
 * oq, or a QEinsumDenseT with the layer's iq/oq), SALT by 'bnd,nm->bmd' (or, clustered, after
 * zero-padding to a multiple of the projection size: 'bmnd,mn->bmd').
 *
 * Build-time state re-derived here, none of it being in the config: the projection equations
 * and bias axes (Keras's _build_proj_equation with letters a..: free dims, bound dims, output
 * dims), the dot-product and combine equations (Keras's _build_attention_equation), the softmax
 * axes (the last len(attention_axes) axes of the scores), its input_scaler 1/sqrt(key_dim), the
 * sub-layers' quantizer flags and configs (qkvo_* and softmax_* confs of the layer), the shared
 * input quantizer of fuse='qkv'/'kv' (one object, saved under the alphabetically first
 * projection holding it: key_dense), Linformer's projection equation and SALT's padding.
 *
 * Masks, causal masks and returning the attention scores are refused with a clear error (the
 * reference's masks path is untested; HGQ2's Linformer and SALT refuse causal masks themselves).
 *
 * Thread rule: one job's thread.
 */
#include "plugins/hgq/hgq_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef enum attn_family { ATTN_MHA, ATTN_LINFORMER, ATTN_SALT } attn_family;

/* The `arg` of the attention rows. */
typedef struct hgq_attn_kind {
    attn_family family;
    bool table; /* the T forms: QEinsumDenseT projections */
} hgq_attn_kind;

const hgq_attn_kind hgq_attn_mha = {ATTN_MHA, false}, hgq_attn_mha_t = {ATTN_MHA, true},
                    hgq_attn_linformer = {ATTN_LINFORMER, false},
                    hgq_attn_linformer_t = {ATTN_LINFORMER, true},
                    hgq_attn_salt = {ATTN_SALT, false};

/* Equations of ranks up to 20: parts of at most PART_MAX letters. */
enum { PART_MAX = 32, EQ_MAX = 3 * PART_MAX + 8 };

/* What every projection of one attention layer shares. */
typedef struct attn_cfg {
    const hgq_attn_kind *kind;
    const alk_value *iq_conf, *kq_conf, *bq_conf, *oq_conf, *toq_conf;
    bool enable_iq, enable_oq, ebops, use_bias;
    /* the T forms' sub-networks */
    int64_t n_hl, d_hl;
    const char *subnn_activation;
    bool batch_norm, bn_center, bn_scale;
    double bn_epsilon;
} attn_cfg;

/* One projection: where it is and which of its quantizers exist. */
typedef struct proj {
    const char *prefix;  /* "query_dense/" */
    const char *iq_path; /* NULL: no iq */
    bool oq;
    bool has_bias;
    char equation[EQ_MAX], bias_axes[PART_MAX];
} proj;

/* ---- Equations (Keras's multi_head_attention.py helpers) ------------------------------------ */

/* _build_proj_equation(free, bound, output): letters a.. in that order. */
static void proj_equation(size_t free_dims, size_t bound_dims, size_t output_dims, proj *p) {
    char in[PART_MAX], kernel[PART_MAX], out[PART_MAX];
    size_t ni = 0, nk = 0, no = 0, nb = 0, letter = 0;
    for (size_t i = 0; i < free_dims; i++, letter++) {
        in[ni++] = out[no++] = (char)('a' + letter);
    }
    for (size_t i = 0; i < bound_dims; i++, letter++) {
        in[ni++] = kernel[nk++] = (char)('a' + letter);
    }
    for (size_t i = 0; i < output_dims; i++, letter++) {
        kernel[nk++] = out[no++] = p->bias_axes[nb++] = (char)('a' + letter);
    }
    in[ni] = kernel[nk] = out[no] = p->bias_axes[nb] = '\0';
    (void)snprintf(p->equation, EQ_MAX, "%s,%s->%s", in, kernel, out);
}

/* _build_attention_equation(rank, attn_axes): the dot-product and combine equations. */
static size_t attention_equations(size_t rank, const int *axes, size_t n_axes, char *dot,
                                  char *combine) {
    char target[PART_MAX], source[PART_MAX], product[PART_MAX];
    size_t letter = rank, np = 0;
    for (size_t i = 0; i < rank; i++) {
        target[i] = (char)('a' + i);
    }
    target[rank] = '\0';
    bool attn[PART_MAX] = {false};
    for (size_t a = 0; a < n_axes; a++) {
        attn[axes[a]] = true;
    }
    for (size_t i = 0; i < rank; i++) {
        source[i] = !attn[i] || i == rank - 1 ? target[i] : (char)('a' + letter++);
    }
    source[rank] = '\0';
    /* batch dims (everything but the attention axes and the last), then the attention axes of
     * the target, then those of the source */
    for (size_t i = 0; i < rank; i++) {
        if (!attn[i] && i != rank - 1) {
            product[np++] = target[i];
        }
    }
    for (size_t a = 0; a < n_axes; a++) {
        product[np++] = target[axes[a]];
    }
    for (size_t a = 0; a < n_axes; a++) {
        product[np++] = source[axes[a]];
    }
    product[np] = '\0';
    (void)snprintf(dot, EQ_MAX, "%s,%s->%s", source, target, product);
    (void)snprintf(combine, EQ_MAX, "%s,%s->%s", product, source, target);
    return np;
}

/* ---- Projections ------------------------------------------------------------------------------
 */

/* A QEinsumDense projection: iq, einsum with kq(kernel) + bq(bias), oq. */
static alk_fva *dense_proj(alk_op *op, const attn_cfg *c, const proj *p, alk_fva *x) {
    if (p->iq_path != NULL) {
        x = hgq_apply_conf(op, c->iq_conf, HGQ_PLACE_DATALANE, p->iq_path, "", x);
    }
    char path[HGQ_PATH_MAX];
    alk_hgq_quantizer kq, bq;
    if (x == NULL || !hgq_path(op, path, p->prefix, "vars/0")) {
        return NULL;
    }
    alk_fva *kernel = alk_op_tensor_opt(op, path);
    if (kernel == NULL) {
        alk_op_fail(op, ALK_EINVAL, "dataset %s (a projection kernel) is missing", path);
        return NULL;
    }
    char kq_path[HGQ_PATH_MAX], bq_path[HGQ_PATH_MAX];
    if (!hgq_path(op, kq_path, p->prefix, "kq") ||
        !hgq_quantizer_read(op, c->kq_conf, HGQ_PLACE_WEIGHT, kq_path, &kq)) {
        return NULL;
    }
    alk_fva *qkernel = hgq_quantize_weight(op, &kq, kq_path, kernel);
    alk_fva *qbias = NULL;
    if (p->has_bias) {
        alk_fva *bias =
            hgq_path(op, path, p->prefix, "vars/1") ? alk_op_tensor_opt(op, path) : NULL;
        if (bias == NULL) {
            alk_op_fail(op, ALK_EINVAL, "dataset %s (a projection bias) is missing", path);
            return NULL;
        }
        if (!hgq_path(op, bq_path, p->prefix, "bq") ||
            !hgq_quantizer_read(op, c->bq_conf, HGQ_PLACE_BIAS, bq_path, &bq)) {
            return NULL;
        }
        qbias = hgq_quantize_weight(op, &bq, bq_path, bias);
    }
    size_t n = 1 + p->has_bias;
    hgq_check_own_vars(op, p->prefix, n + (c->ebops ? 2 : 0), n);
    alk_fva *y = alk_nn_einsum_dense(alk_op_trace(op), p->equation, x, qkernel, qbias);
    return p->oq ? hgq_apply_conf(op, c->oq_conf, HGQ_PLACE_DATALANE, p->prefix, "oq", y) : y;
}

/* A QEinsumDenseT projection: its own iq and toq, then its oq. */
static alk_fva *table_proj(alk_op *op, const attn_cfg *c, const proj *p, alk_fva *x) {
    hgq_einsum_t_spec spec = {
        .prefix = p->prefix,
        .equation = p->equation,
        .n_hl = c->n_hl,
        .d_hl = c->d_hl,
        .subnn_activation = c->subnn_activation,
        .has_bias = p->has_bias,
        .normalize_axes = p->has_bias ? p->bias_axes : NULL,
        .batch_norm = c->batch_norm,
        .bn_center = c->bn_center,
        .bn_scale = c->bn_scale,
        .bn_epsilon = c->bn_epsilon,
        .enable_iq = p->iq_path != NULL,
        .iq_conf = c->iq_conf,
        .toq_conf = c->toq_conf,
        .ebops = c->ebops,
    };
    alk_fva *y = hgq_einsum_dense_t_apply(op, &spec, x);
    return p->oq ? hgq_apply_conf(op, c->oq_conf, HGQ_PLACE_DATALANE, p->prefix, "oq", y) : y;
}

static alk_fva *project(alk_op *op, const attn_cfg *c, const proj *p, bool table, alk_fva *x) {
    return table ? table_proj(op, c, p, x) : dense_proj(op, c, p, x);
}

/* The iq path of a projection: its own, or for a fused projection the shared quantizer, saved
 * under the alphabetically first projection holding it. */
static const char *iq_path_of(const char *own, const char *shared, bool enabled) {
    return !enabled ? NULL : shared != NULL ? shared : own;
}

/* ---- Linformer and SALT key/value projections ----------------------------------------------- */

/* Linformer: K, V projected along the attention axes to lin_kv_proj_dim. */
static void linformer_kv(alk_op *op, const attn_cfg *c, const int *axes, size_t n_axes,
                         alk_fva **key, alk_fva **value) {
    int64_t dims[ALK_FVA_MAX_DIM];
    size_t n_dims = alk_op_int_list(op, "lin_kv_proj_dim", dims, ALK_FVA_MAX_DIM);
    bool table = strcmp(alk_op_str(op, "lin_kv_proj_mode", c->kind->table ? "dense_t" : "dense"),
                        "dense_t") == 0;
    size_t rank = alk_fva_ndim(*value);
    if (alk_op_failed(op)) {
        return;
    }
    if (n_dims != n_axes || rank + n_axes > 26 || alk_fva_ndim(*key) != rank) {
        alk_op_fail(op, ALK_EINVAL,
                    "lin_kv_proj_dim must give one size per attention axis (%zu), and key and "
                    "value one rank",
                    n_axes);
        return;
    }
    if (table && !c->kind->table) {
        alk_op_fail(op, ALK_EINVAL, "lin_kv_proj_mode 'dense_t' needs QLinformerAttentionT");
        return;
    }
    static const char letters[] = "abcdefghijklmnopqrstuvwxyz";
    char in[PART_MAX], kernel[PART_MAX], out[PART_MAX];
    memcpy(in, letters, rank);
    memcpy(out, letters, rank);
    in[rank] = out[rank] = '\0';
    for (size_t a = 0; a < n_axes; a++) {
        kernel[a] = in[axes[a]];
        kernel[n_axes + a] = out[axes[a]] = letters[rank + a];
    }
    kernel[2 * n_axes] = '\0';
    proj k = {.prefix = "_lin_k_proj/"}, v = {.prefix = "_lin_v_proj/"};
    if (alk_op_bool(op, "share_kv_proj", false)) {
        v.prefix = k.prefix;
    }
    /* dense: QEinsumDense's defaults (iq on, oq off); dense_t: the layer's iq and oq. */
    char k_iq[HGQ_PATH_MAX], v_iq[HGQ_PATH_MAX];
    if (!hgq_path(op, k_iq, k.prefix, "iq") || !hgq_path(op, v_iq, v.prefix, "iq")) {
        return;
    }
    bool iq = !table || c->enable_iq;
    k.iq_path = iq ? k_iq : NULL;
    v.iq_path = iq ? v_iq : NULL;
    k.oq = v.oq = table && c->enable_oq;
    (void)snprintf(k.equation, EQ_MAX, "%s,%s->%s", in, kernel, out);
    memcpy(v.equation, k.equation, EQ_MAX);
    *key = project(op, c, &k, table, *key);
    *value = project(op, c, &v, table, *value);
}

/* SALT: 'bnd,nm->bmd' projections, or with clustering 'bmnd,mn->bmd' on the input zero-padded
 * to a multiple of the projection size and reshaped (HGQ2 reshapes the value only when it pads
 * it, as its Keras layer does). */
static alk_fva *salt_proj(alk_op *op, const attn_cfg *c, const char *prefix, bool cluster,
                          bool reshape_always, int64_t dim, alk_fva *x) {
    alk_trace *t = alk_op_trace(op);
    proj p = {.prefix = prefix};
    char iq[HGQ_PATH_MAX];
    if (x == NULL || !hgq_path(op, iq, prefix, "iq")) {
        return NULL;
    }
    p.iq_path = iq;
    if (alk_fva_ndim(x) != 3 || dim < 1) {
        alk_op_fail(op, ALK_EINVAL, "SALT attention takes rank-3 inputs and lin_kv_proj_dim >= 1");
        return NULL;
    }
    (void)snprintf(p.equation, EQ_MAX, "%s", cluster ? "bmnd,mn->bmd" : "bnd,nm->bmd");
    if (cluster) {
        size_t length = alk_fva_shape(x)[1];
        size_t padded = (length + (size_t)dim - 1) / (size_t)dim * (size_t)dim;
        if (padded > length || reshape_always) {
            const int64_t pads[3][2] = {{0, 0}, {0, (int64_t)(padded - length)}, {0, 0}};
            x = alk_fva_pad(t, x, pads, ALK_PAD_CONSTANT, 0.0);
            const int64_t shape[4] = {-1, dim, (int64_t)(padded / (size_t)dim),
                                      (int64_t)alk_fva_shape(x)[2]};
            x = alk_fva_reshape(t, x, 4, shape);
        }
    }
    return dense_proj(op, c, &p, x);
}

/* SALT's QConv2D on the scores (channels first, 'same', filters = heads). */
static alk_fva *salt_conv(alk_op *op, const attn_cfg *c, int64_t heads, alk_fva *scores) {
    int64_t size = alk_op_int(op, "conv_size", 3);
    bool separate = alk_op_bool(op, "separate_conv", false);
    alk_fva *x = hgq_apply_conf(op, c->iq_conf, HGQ_PLACE_DATALANE, "conv/", "iq", scores);
    alk_fva *kernel = alk_op_tensor_opt(op, "conv/vars/0");
    alk_fva *bias = alk_op_tensor_opt(op, "conv/vars/1");
    alk_hgq_quantizer kq, bq;
    if (x == NULL || alk_op_failed(op)) {
        return NULL;
    }
    if (kernel == NULL || bias == NULL) {
        alk_op_fail(op, ALK_EINVAL, "dataset conv/vars/%d (the scores' convolution) is missing",
                    kernel == NULL ? 0 : 1);
        return NULL;
    }
    if (!hgq_quantizer_read(op, c->kq_conf, HGQ_PLACE_WEIGHT, "conv/kq", &kq) ||
        !hgq_quantizer_read(op, c->bq_conf, HGQ_PLACE_BIAS, "conv/bq", &bq)) {
        return NULL;
    }
    hgq_check_own_vars(op, "conv/", 2 + (c->ebops ? 2 : 0), 2);
    size_t kernel_size[2] = {(size_t)size, (size_t)size};
    alk_nn_window w;
    alk_nn_window_init(&w, 2, kernel_size);
    w.padding = ALK_NN_PAD_SAME;
    w.channels_first = true;
    w.groups = separate ? (size_t)heads : 1;
    return alk_nn_conv(alk_op_trace(op), x, &w, hgq_quantize_weight(op, &kq, "conv/kq", kernel),
                       hgq_quantize_weight(op, &bq, "conv/bq", bias));
}

/* ---- The layer ----------------------------------------------------------------------------- */

/* Masks and the scores as a second output are not supported: refused by name. */
static bool plain_call(alk_op *op) {
    static const char *const masks[] = {"query_mask", "value_mask", "key_mask", "attention_mask"};
    for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
        const alk_arg *m = alk_op_kwarg(op, masks[i]);
        if (m != NULL && m->kind != ALK_ARG_NONE) {
            alk_op_fail(op, ALK_EINVAL, "%s is not supported", masks[i]);
            return false;
        }
    }
    static const char *const flags[] = {"use_causal_mask", "return_attention_scores"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        const alk_arg *f = alk_op_kwarg(op, flags[i]);
        if (f != NULL && f->kind == ALK_ARG_BOOL && f->as.boolean) {
            alk_op_fail(op, ALK_EINVAL, "%s=True is not supported", flags[i]);
            return false;
        }
    }
    return true;
}

static void read_cfg(alk_op *op, const hgq_attn_kind *kind, attn_cfg *c) {
    const alk_value *config = alk_op_config(op);
    *c = (attn_cfg){
        .kind = kind,
        .iq_conf = alk_value_get(config, "qkvo_iq_conf"),
        .kq_conf = alk_value_get(config, "qkvo_kq_conf"),
        .bq_conf = alk_value_get(config, "qkvo_bq_conf"),
        .oq_conf = alk_value_get(config, "qkvo_oq_conf"),
        .toq_conf = alk_value_get(config, "qkvo_toq_conf"),
        .enable_iq = alk_op_bool(op, "enable_iq", true),
        .enable_oq = alk_op_bool(op, "enable_oq", false),
        .use_bias = alk_op_bool(op, "use_bias", true),
        .n_hl = alk_op_int(op, "n_hl", 1),
        .d_hl = alk_op_int(op, "d_hl", 8),
        .subnn_activation = kind->table ? hgq_activation_name(op, "subnn_activation") : NULL,
        .batch_norm = alk_op_bool(op, "batch_norm", false),
        .bn_center = alk_op_bool(op, "bn_center", true),
        .bn_scale = alk_op_bool(op, "bn_scale", true),
        .bn_epsilon = alk_op_float(op, "bn_epsilon", 1e-3),
    };
    c->ebops = alk_op_bool(op, "enable_ebops", c->enable_iq);
}

/* The attention axes of the config for inputs of `rank` axes (default: every axis between the
 * batch and the features), positive. */
static size_t attention_axes(alk_op *op, size_t rank, int *axes) {
    int64_t values[ALK_FVA_MAX_DIM];
    size_t n = alk_op_int_list(op, "attention_axes", values, ALK_FVA_MAX_DIM);
    if (n == SIZE_MAX) {
        n = 0;
        for (size_t a = 1; a + 1 < rank; a++) {
            values[n++] = (int64_t)a;
        }
    }
    for (size_t a = 0; a < n; a++) {
        int64_t v = values[a] < 0 ? values[a] + (int64_t)rank : values[a];
        if (v < 1 || v + 1 >= (int64_t)rank) {
            alk_op_fail(op, ALK_EINVAL, "attention axis %lld is not an inner axis of %zu",
                        (long long)values[a], rank);
            return 0;
        }
        axes[a] = (int)v;
    }
    return n;
}

void hgq_attention(alk_op *op, const void *kind_arg) {
    const hgq_attn_kind *kind = kind_arg;
    alk_trace *t = alk_op_trace(op);
    alk_fva *query = alk_op_in(op, 0);
    alk_fva *value = alk_op_arg(op, 1) != NULL && alk_op_arg(op, 1)->kind != ALK_ARG_NONE
                         ? alk_op_in(op, 1)
                         : query;
    alk_fva *key = alk_op_arg(op, 2) != NULL && alk_op_arg(op, 2)->kind != ALK_ARG_NONE
                       ? alk_op_in(op, 2)
                       : value;
    attn_cfg c;
    read_cfg(op, kind, &c);
    int64_t heads = alk_op_int(op, "num_heads", -1), key_dim = alk_op_int(op, "key_dim", -1);
    if (query == NULL || !plain_call(op) || alk_op_failed(op)) {
        return;
    }
    size_t q_rank = alk_fva_ndim(query);
    if (heads < 1 || key_dim < 1 || q_rank < 3 || q_rank + 2 > 20) {
        alk_op_fail(op, ALK_EINVAL, "num_heads %lld, key_dim %lld on a query of %zu axes",
                    (long long)heads, (long long)key_dim, q_rank);
        return;
    }
    hgq_check_own_vars(op, "", c.ebops ? 2 : 0, 0);

    /* Linformer and SALT shrink K and V first. */
    if (kind->family == ATTN_LINFORMER) {
        int lin_axes[ALK_FVA_MAX_DIM];
        size_t n_lin = attention_axes(op, alk_fva_ndim(value), lin_axes);
        linformer_kv(op, &c, lin_axes, n_lin, &key, &value);
    } else if (kind->family == ATTN_SALT) {
        int64_t dim = alk_op_int(op, "lin_kv_proj_dim", -1);
        bool share = alk_op_bool(op, "share_kv_proj", false);
        key = salt_proj(op, &c, "_lin_k_proj/", alk_op_bool(op, "cluster_k_proj", false), true, dim,
                        key);
        value = salt_proj(op, &c, share ? "_lin_k_proj/" : "_lin_v_proj/",
                          alk_op_bool(op, "cluster_v_proj", false), false, dim, value);
    }
    if (key == NULL || value == NULL || alk_op_failed(op)) {
        return;
    }

    /* The projections (fuse: one shared input quantizer, stored under key_dense). */
    const char *fuse = alk_op_str(op, "fuse", "none");
    bool qkv = strcmp(fuse, "qkv") == 0, kv = qkv || strcmp(fuse, "kv") == 0;
    if (!qkv && !kv && strcmp(fuse, "none") != 0) {
        alk_op_fail(op, ALK_EINVAL, "fuse '%s' is not one of none, qkv, kv", fuse);
        return;
    }
    proj q = {.prefix = "query_dense/", .oq = true, .has_bias = c.use_bias};
    proj k = {.prefix = "key_dense/", .oq = true, .has_bias = false};
    proj v = {.prefix = "value_dense/", .oq = true, .has_bias = c.use_bias};
    q.iq_path = iq_path_of("query_dense/iq", qkv ? "key_dense/iq" : NULL, c.enable_iq);
    k.iq_path = iq_path_of("key_dense/iq", NULL, c.enable_iq);
    v.iq_path = iq_path_of("value_dense/iq", kv ? "key_dense/iq" : NULL, c.enable_iq);
    proj_equation(q_rank - 1, 1, 2, &q);
    proj_equation(alk_fva_ndim(key) - 1, 1, 2, &k);
    proj_equation(alk_fva_ndim(value) - 1, 1, 2, &v);
    alk_fva *Q = project(op, &c, &q, kind->table, query);
    alk_fva *K = project(op, &c, &k, kind->table, key);
    alk_fva *V = project(op, &c, &v, kind->table, value);
    if (Q == NULL || K == NULL || V == NULL) {
        return;
    }

    /* Scores, softmax over the key attention axes, combination. */
    size_t rank = alk_fva_ndim(Q);
    int axes[ALK_FVA_MAX_DIM];
    size_t n_axes = attention_axes(op, q_rank, axes);
    if (n_axes == 0 || alk_op_failed(op)) {
        if (!alk_op_failed(op)) {
            alk_op_fail(op, ALK_EINVAL, "no attention axes");
        }
        return;
    }
    char dot[EQ_MAX], combine[EQ_MAX];
    size_t scores_rank = attention_equations(rank, axes, n_axes, dot, combine);
    alk_fva *scores = alk_fva_einsum(t, dot, K, Q);
    if (kind->family == ATTN_SALT && alk_op_int(op, "conv_size", 3) > 0) {
        scores = salt_conv(op, &c, heads, scores);
    }
    const alk_value *config = alk_op_config(op);
    hgq_softmax_spec sm = {
        .n_axes = n_axes,
        .stable = alk_op_bool(op, "stable_softmax", true),
        .input_scaler = 1.0 / sqrt((double)key_dim),
        .ebops = c.ebops,
        .exp_iq = alk_value_get(config, "softmax_exp_iq_conf"),
        .exp_oq = alk_value_get(config, "softmax_exp_oq_conf"),
        .inv_iq = alk_value_get(config, "softmax_inv_iq_conf"),
        .inv_oq = alk_value_get(config, "softmax_inv_oq_conf"),
    };
    for (size_t a = 0; a < n_axes; a++) {
        sm.axes[a] = (int64_t)(scores_rank - n_axes + a);
    }
    hgq_check_own_vars(op, "_softmax/", c.ebops ? 2 : 0, 0);
    alk_fva *probs = hgq_softmax_body(op, &sm, "_softmax/", scores);
    probs = hgq_apply_conf(op, alk_value_get(config, "softmax_oq_conf"), HGQ_PLACE_DATALANE,
                           "_softmax/", "oq", probs);
    alk_fva *combined = probs != NULL ? alk_fva_einsum(t, combine, probs, V) : NULL;

    /* The output projection over (heads, value_dim) to output_shape. */
    int64_t out_dims[ALK_FVA_MAX_DIM];
    size_t n_out = alk_op_int_list(op, "output_shape", out_dims, ALK_FVA_MAX_DIM);
    proj o = {.prefix = "output_dense/",
              .iq_path = "output_dense/iq",
              .oq = c.enable_oq,
              .has_bias = c.use_bias};
    if (n_out != SIZE_MAX && q_rank + 1 + n_out > 26) {
        alk_op_fail(op, ALK_EINVAL, "output_shape of %zu axes on a query of %zu", n_out, q_rank);
        return;
    }
    proj_equation(q_rank - 1, 2, n_out == SIZE_MAX ? 1 : n_out, &o);
    alk_fva *out = combined != NULL ? project(op, &c, &o, kind->table, combined) : NULL;
    if (c.enable_oq) {
        out =
            hgq_apply_conf(op, alk_value_get(config, "oq_conf"), HGQ_PLACE_DATALANE, "", "oq", out);
    }
    alk_op_out(op, out);
}
