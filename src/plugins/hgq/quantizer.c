/*
 * HGQ2 quantizers (spec frontends.md §3.1, §7.2): a quantizer's config, its stored variables, and
 * its two uses — on traced values (an activation quantizer, HGQ2's Keras Quantizer at inference)
 * and on weights in float32 (kq(kernel), bq(bias)). The arithmetic is src/nn's (alk_hgq_mirror,
 * alk_hgq_quantize_weight); this file reads and checks what a file says.
 *
 * A config is read as HGQ2's QuantizerConfig builds itself: `q_type` and `place` pick a default
 * config (q_type "default": kbi, or kif for the datalane), whose round and overflow modes,
 * `is_weight` and `trainable` the saved keys override. HardTanhConfig and HardSigmoidConfig save
 * neither overflow_mode nor affine: their classes imply SAT (a reloaded HardTanhConfig does not
 * know it was symmetric) and, for the sigmoid, affine (0.25, 0.5).
 *
 * The stored variables are the internal quantizer's, in Keras's generic order (trainable first,
 * each group in creation order): KBI b, i, k (WRAP: b, k, i, i_decay_speed, i not trainable),
 * KIF i, f, k (WRAP: f, k, i, i_decay_speed). Every one is checked before it is used, so a file
 * laid out otherwise fails naming the dataset instead of quantizing with the wrong numbers.
 *
 * Thread rule: one job's thread.
 */
#include "plugins/hgq/hgq_int.h"

#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Paths --------------------------------------------------------------------------------- */

bool hgq_path(alk_op *op, char *out, const char *prefix, const char *rest) {
    int n = snprintf(out, HGQ_PATH_MAX, "%s%s", prefix, rest);
    if (n < 0 || n >= HGQ_PATH_MAX) {
        alk_op_fail(op, ALK_EINVAL, "weight path %s%s is too long", prefix, rest);
        return false;
    }
    return true;
}

/* "<path>/" for a quantizer stored at `path`, "" for the Quantizer layer itself. */
static const char *slash_after(const char *path) {
    return path[0] != '\0' ? "/" : "";
}

/* How a message names the quantizer at `path`. */
static const char *quantizer_name(const char *path) {
    return path[0] != '\0' ? path : "the layer's quantizer";
}

/* ---- Config ---------------------------------------------------------------------------------- */

static const char *const place_names[] = {"weight", "bias", "datalane", "table", NULL};

/* The parts of a config the converter needs (the rest configures training). */
typedef struct config_view {
    const alk_value *inner; /* the map of keys */
    bool hard_tanh;         /* HardTanhConfig: SAT implied */
    bool hard_sigmoid;      /* HardSigmoidConfig: SAT and affine (0.25, 0.5) implied */
} config_view;

/* A string key of the config, NULL when absent or None; another kind fails the op. */
static const char *conf_str(alk_op *op, const config_view *c, const char *key, const char *path) {
    const alk_value *v = alk_value_get(c->inner, key);
    if (v == NULL || v->kind == ALK_VALUE_NIL) {
        return NULL;
    }
    if (v->kind != ALK_VALUE_STR) {
        alk_op_fail(op, ALK_EINVAL, "quantizer %s: %s: expected a string, got %s",
                    quantizer_name(path), key, alk_value_kind_name(v->kind));
        return NULL;
    }
    return v->as.str.bytes;
}

static bool conf_bool(alk_op *op, const config_view *c, const char *key, bool dflt,
                      const char *path) {
    const alk_value *v = alk_value_get(c->inner, key);
    if (v == NULL || v->kind == ALK_VALUE_NIL) {
        return dflt;
    }
    /* Python writes k0-like flags as bools, and a user may write 0/1. */
    if (v->kind == ALK_VALUE_BOOL || v->kind == ALK_VALUE_INT) {
        return v->kind == ALK_VALUE_BOOL ? v->as.boolean : v->as.integer != 0;
    }
    alk_op_fail(op, ALK_EINVAL, "quantizer %s: %s: expected a bool, got %s", quantizer_name(path),
                key, alk_value_kind_name(v->kind));
    return dflt;
}

static bool number_of(const alk_value *v, double *ret) {
    if (v != NULL && v->kind == ALK_VALUE_INT) {
        *ret = (double)v->as.integer;
        return true;
    }
    if (v != NULL && v->kind == ALK_VALUE_FLOAT) {
        *ret = v->as.number;
        return true;
    }
    return false;
}

/* Unwraps a serialized config ({module, class_name, config, registered_name}). */
static bool config_view_of(alk_op *op, const alk_value *conf, const char *path, config_view *ret) {
    memset(ret, 0, sizeof(*ret));
    if (conf == NULL || conf->kind == ALK_VALUE_NIL) {
        return true; /* HGQ2's default for the place */
    }
    if (conf->kind != ALK_VALUE_MAP) {
        alk_op_fail(op, ALK_EINVAL, "quantizer %s: its config is a %s, not a QuantizerConfig",
                    quantizer_name(path), alk_value_kind_name(conf->kind));
        return false;
    }
    const alk_value *class_name = alk_value_get(conf, "class_name");
    const alk_value *inner = alk_value_get(conf, "config");
    if (class_name == NULL) {
        ret->inner = conf; /* the keys themselves */
        return true;
    }
    const char *cls = class_name->kind == ALK_VALUE_STR ? class_name->as.str.bytes : "";
    /* Keras 3's legacy .h5 writes registered classes as "hgq>QuantizerConfig". */
    cls = strncmp(cls, "hgq>", 4) == 0 ? cls + 4 : cls;
    if (inner == NULL || inner->kind != ALK_VALUE_MAP) {
        alk_op_fail(op, ALK_EINVAL, "quantizer %s: serialized %s without a config map",
                    quantizer_name(path), cls);
        return false;
    }
    ret->inner = inner;
    ret->hard_tanh = strcmp(cls, "HardTanhConfig") == 0;
    ret->hard_sigmoid = strcmp(cls, "HardSigmoidConfig") == 0;
    if (!ret->hard_tanh && !ret->hard_sigmoid && strcmp(cls, "QuantizerConfig") != 0) {
        alk_op_fail(op, ALK_EINVAL,
                    "quantizer %s: config class '%s' is not one of HGQ2's QuantizerConfig, "
                    "HardTanhConfig, HardSigmoidConfig",
                    quantizer_name(path), cls);
        return false;
    }
    return true;
}

/* One mode string against its accepted values (case-insensitive, as HGQ2 upper-cases them). */
static bool mode_ok(alk_op *op, const char *path, const char *key, const char *value,
                    const char *const *accepted, const char *hint) {
    for (size_t i = 0; accepted[i] != NULL; i++) {
        if (strcasecmp(value, accepted[i]) == 0) {
            return true;
        }
    }
    alk_op_fail(op, ALK_EINVAL, "quantizer %s: %s '%s' is not supported (%s)", quantizer_name(path),
                key, value, hint);
    return false;
}

/* Fills the modes and flags of `q` from the config (no weights yet). */
static bool parse_config(alk_op *op, const alk_value *conf, hgq_place place, const char *path,
                         alk_hgq_quantizer *q) {
    config_view c;
    if (!config_view_of(op, conf, path, &c)) {
        return false;
    }
    const char *place_name = conf_str(op, &c, "place", path);
    bool forced = place == HGQ_PLACE_FORCED_TABLE;
    int p = forced ? HGQ_PLACE_TABLE : (int)place;
    if (place_name != NULL) {
        for (p = 0; place_names[p] != NULL && strcasecmp(place_names[p], place_name) != 0; p++) {
        }
        if (place_names[p] == NULL) {
            alk_op_fail(op, ALK_EINVAL,
                        "quantizer %s: place '%s' is not one of weight, bias, datalane, table",
                        quantizer_name(path), place_name);
            return false;
        }
    }
    const char *q_type = conf_str(op, &c, "q_type", path);
    if (q_type == NULL || strcasecmp(q_type, "default") == 0) {
        q_type = p == HGQ_PLACE_DATALANE ? "kif" : "kbi";
    }
    if (strcasecmp(q_type, "float") == 0 || strcasecmp(q_type, "dummy") == 0) {
        alk_op_fail(op, ALK_EINVAL,
                    "quantizer %s is a %s quantizer (q_type '%s'): only fixed-point quantizers "
                    "(kbi, kif) can be converted",
                    quantizer_name(path),
                    strcasecmp(q_type, "float") == 0 ? "floating-point" : "dummy", q_type);
        return false;
    }
    if (strcasecmp(q_type, "kbi") != 0 && strcasecmp(q_type, "kif") != 0) {
        alk_op_fail(op, ALK_EINVAL, "quantizer %s: unknown q_type '%s' (kbi, kif are supported)",
                    quantizer_name(path), q_type);
        return false;
    }
    /* The defaults of (q_type, place): RND everywhere; SAT_SYM for weights and tables, WRAP for
     * the datalane and biases; only the weight place is a weight. */
    bool weight_like = p == HGQ_PLACE_WEIGHT || p == HGQ_PLACE_TABLE;
    const char *round = conf_str(op, &c, "round_mode", path);
    const char *overflow = conf_str(op, &c, "overflow_mode", path);
    round = round != NULL ? round : "RND";
    overflow = overflow != NULL ? overflow : weight_like ? "SAT_SYM" : "WRAP";
    if (c.hard_tanh || c.hard_sigmoid) {
        overflow = "SAT";
    }
    if (forced) {
        overflow = "SAT";
        round = "RND_CONV";
    }
    static const char *const rounds[] = {"TRN", "RND", "RND_CONV", "S_RND", "S_RND_CONV", NULL};
    static const char *const overflows[] = {"WRAP", "SAT", "SAT_SYM", NULL};
    if (alk_op_failed(op) ||
        !mode_ok(op, path, "round_mode", round, rounds,
                 "TRN, RND, RND_CONV; S_RND and S_RND_CONV round as RND and RND_CONV at "
                 "inference") ||
        !mode_ok(op, path, "overflow_mode", overflow, overflows, "WRAP, SAT, SAT_SYM are")) {
        return false;
    }
    if (alk_hgq_init(alk_op_trace(op), q, q_type, round, overflow) != ALK_OK) {
        return false;
    }
    q->is_weight = conf_bool(op, &c, "is_weight", p == HGQ_PLACE_WEIGHT, path);
    q->trainable = conf_bool(op, &c, "trainable", true, path);
    const alk_value *scaler = alk_value_get(c.inner, "scaler");
    if (scaler != NULL && scaler->kind != ALK_VALUE_NIL) {
        q->has_scaler = number_of(scaler, &q->scaler) && q->scaler != 0;
        if (!q->has_scaler) {
            alk_op_fail(op, ALK_EINVAL, "quantizer %s: scaler must be a non-zero number",
                        quantizer_name(path));
            return false;
        }
    }
    const alk_value *affine = alk_value_get(c.inner, "affine");
    if (c.hard_sigmoid) {
        q->has_affine = true;
        q->affine[0] = 0.25;
        q->affine[1] = 0.5;
    } else if (affine != NULL && affine->kind != ALK_VALUE_NIL) {
        q->has_affine = affine->kind == ALK_VALUE_ARRAY && affine->as.array.len == 2 &&
                        number_of(affine->as.array.items[0], &q->affine[0]) &&
                        number_of(affine->as.array.items[1], &q->affine[1]);
        if (!q->has_affine) {
            alk_op_fail(op, ALK_EINVAL, "quantizer %s: affine must be a pair of numbers",
                        quantizer_name(path));
            return false;
        }
    }
    return !alk_op_failed(op);
}

/* ---- Stored variables ----------------------------------------------------------------------- */

enum { MAX_VARS = 4 };

/* A stored variable's dtype and shape; false (and the op failed) when it is not a tensor. */
typedef struct stored_info {
    const char *dtype; /* NULL: nested lists (no dtype to check) */
    size_t ndim;
    size_t shape[ALK_FVA_MAX_DIM];
} stored_info;

static bool info_of(alk_op *op, const alk_value *v, const char *dataset, stored_info *ret) {
    memset(ret, 0, sizeof(*ret));
    if (v->kind != ALK_VALUE_MAP) {
        return true; /* nested lists: the decoder checks them */
    }
    const alk_value *dtype = alk_value_get(v, "dtype");
    const alk_value *shape = alk_value_get(v, "shape");
    if (dtype == NULL || dtype->kind != ALK_VALUE_STR || shape == NULL ||
        shape->kind != ALK_VALUE_ARRAY || shape->as.array.len > ALK_FVA_MAX_DIM) {
        alk_op_fail(op, ALK_EINVAL, "dataset %s is not a tensor {dtype, shape, data}", dataset);
        return false;
    }
    ret->dtype = dtype->as.str.bytes;
    ret->ndim = shape->as.array.len;
    for (size_t d = 0; d < ret->ndim; d++) {
        const alk_value *s = shape->as.array.items[d];
        if (s->kind != ALK_VALUE_INT || s->as.integer < 0) {
            alk_op_fail(op, ALK_EINVAL, "dataset %s has a malformed shape", dataset);
            return false;
        }
        ret->shape[d] = (size_t)s->as.integer;
    }
    return true;
}

static bool is_float_dtype(const char *dtype) {
    return strcmp(dtype, "f4") == 0 || strcmp(dtype, "f2") == 0 || strcmp(dtype, "f8") == 0 ||
           strcmp(dtype, "bf16") == 0;
}

void hgq_shape_text(const size_t *shape, size_t ndim, char *out, size_t cap) {
    size_t n = (size_t)snprintf(out, cap, "(");
    for (size_t d = 0; d < ndim && n < cap; d++) {
        n += (size_t)snprintf(out + n, cap - n, "%zu%s", shape[d],
                              d + 1 < ndim ? ", "
                              : ndim == 1  ? ","
                                           : "");
    }
    if (n < cap) {
        (void)snprintf(out + n, cap - n, ")");
    }
}

/* The variable names of the internal quantizer, in `vars/N` order. */
static size_t var_roles(const alk_hgq_quantizer *q, const char **roles) {
    bool wrap = q->overflow == ALK_WRAP;
    if (q->kind == ALK_HGQ_KBI) {
        const char *const order[2][4] = {{"b", "i", "k", NULL}, {"b", "k", "i", "i_decay_speed"}};
        memcpy(roles, order[wrap], sizeof(order[wrap]));
    } else {
        const char *const order[2][4] = {{"i", "f", "k", NULL}, {"f", "k", "i", "i_decay_speed"}};
        memcpy(roles, order[wrap], sizeof(order[wrap]));
    }
    return wrap ? 4 : 3;
}

/* The `name` of the internal quantizer's vars group, when the source knows it: Keras names it
 * after its class, so it tells a KBI from a KIF (or a float) quantizer. */
static bool check_group_name(alk_op *op, const alk_hgq_quantizer *q, const char *path) {
    char group[HGQ_PATH_MAX];
    if (!hgq_path(op, group, path, path[0] != '\0' ? "/quantizer/vars" : "quantizer/vars")) {
        return false;
    }
    const alk_value *name = alk_op_stored_opt(op, group);
    if (name == NULL || name->kind != ALK_VALUE_STR) {
        return true;
    }
    const char *want =
        q->kind == ALK_HGQ_KBI ? "fixed_point_quantizer_kbi" : "fixed_point_quantizer_kif";
    const char *n = name->as.str.bytes;
    bool known = strncmp(n, "fixed_point_quantizer_", 22) == 0 ||
                 strncmp(n, "float_point_quantizer", 21) == 0 ||
                 strncmp(n, "dummy_quantizer", 15) == 0;
    if (known && strncmp(n, want, strlen(want)) != 0) {
        alk_op_fail(op, ALK_EINVAL,
                    "quantizer %s: %s holds the variables of '%s', but its config says q_type "
                    "'%s' (the weights do not match the config)",
                    quantizer_name(path), group, n, q->kind == ALK_HGQ_KBI ? "kbi" : "kif");
        return false;
    }
    return true;
}

/* ---- Where the variables are --------------------------------------------------------------- */

/*
 * A legacy .h5 file names each variable by its object path ("q_dense/q_dense_kq/
 * fixed_point_quantizer_kbi/b"): HGQ2 names a layer's quantizers `<layer>_kq` (bq, iq, oq), the
 * quantizers of a multi-input layer's iq get automatic names ("quantizer_6") under a
 * `multiple_quantizers*` object and are told apart by order, and the internal quantizer's name is
 * automatic too. `object` becomes the component that identifies the quantizer, `nth` the rank of
 * a list entry (SIZE_MAX: none); false when `path` has no legacy form this plugin knows.
 */
static bool legacy_object(alk_op *op, const char *path, char *object, size_t *nth) {
    *nth = SIZE_MAX;
    object[0] = '\0';
    if (path[0] == '\0') {
        return true; /* the Quantizer layer itself: every variable of the layer is its own */
    }
    static const char list[] = "iq/quantizers/quantizer";
    if (strncmp(path, list, sizeof(list) - 1) == 0) {
        const char *tail = path + sizeof(list) - 1;
        *nth = tail[0] == '\0'  ? 0
               : tail[0] == '_' ? (size_t)strtoul(tail + 1, NULL, 10)
                                : SIZE_MAX;
        return *nth != SIZE_MAX;
    }
    /* "kq" &c., or one sub-layer deep ("exp_table/oq"): HGQ2 names a sub-layer
     * "<layer>_<attribute>" (QSoftmax's tables) and its quantizers "<sub-layer>_oq". */
    const char *slash = strchr(path, '/');
    const char *q = slash != NULL ? slash + 1 : path;
    if ((strcmp(q, "kq") != 0 && strcmp(q, "bq") != 0 && strcmp(q, "iq") != 0 &&
         strcmp(q, "oq") != 0) ||
        (slash != NULL && strchr(q, '/') != NULL)) {
        return false;
    }
    int n = snprintf(object, HGQ_PATH_MAX, "%s_%.*s%s%s", alk_op_name(op),
                     slash != NULL ? (int)(slash - path) : 0, path, slash != NULL ? "_" : "", q);
    return n > 0 && n < HGQ_PATH_MAX;
}

/* Component `c` of a '/'-separated name: its start and length; false past the end. */
static bool component(const char *name, size_t c, const char **ret, size_t *ret_len) {
    for (; c > 0; c--) {
        name = strchr(name, '/');
        if (name == NULL) {
            return false;
        }
        name++;
    }
    *ret = name;
    *ret_len = strcspn(name, "/");
    return true;
}

/* Whether a legacy name has the component `object` (any name, when `object` is empty). */
static bool has_component(const char *name, const char *object) {
    const char *part;
    size_t len;
    for (size_t c = 0; object[0] != '\0' && component(name, c, &part, &len); c++) {
        if (len == strlen(object) && strncmp(part, object, len) == 0) {
            return true;
        }
    }
    return object[0] == '\0';
}

/* The list entry a legacy name belongs to: the component after a `multiple_quantizers*` one. */
static bool list_entry(const char *name, const char **ret, size_t *ret_len) {
    const char *part;
    size_t len;
    for (size_t c = 0; component(name, c, &part, &len); c++) {
        if (strncmp(part, "multiple_quantizers", 19) == 0) {
            return component(name, c + 1, ret, ret_len);
        }
    }
    return false;
}

static const char *name_at(const alk_value *names, size_t i) {
    const alk_value *item = names->as.array.items[i];
    return item->kind == ALK_VALUE_STR ? item->as.str.bytes : "";
}

/* Whether name i belongs to the list entry (entry, len). */
static bool in_entry(const alk_value *names, size_t i, const char *entry, size_t len) {
    const char *e;
    size_t n;
    return list_entry(name_at(names, i), &e, &n) && n == len && strncmp(e, entry, n) == 0;
}

/* The nth distinct list entry, in the order the names first list them. */
static bool nth_entry(const alk_value *names, size_t nth, const char **ret, size_t *ret_len) {
    size_t seen = 0;
    for (size_t i = 0; i < names->as.array.len; i++) {
        const char *e;
        size_t len;
        bool fresh = list_entry(name_at(names, i), &e, &len);
        for (size_t j = 0; fresh && j < i; j++) {
            fresh = !in_entry(names, j, e, len);
        }
        if (fresh && seen++ == nth) {
            *ret = e;
            *ret_len = len;
            return true;
        }
    }
    return false;
}

/* The last component of a name (":0" stripped) is `role`. */
static bool last_is(const char *name, const char *role) {
    const char *last = strrchr(name, '/');
    last = last != NULL ? last + 1 : name;
    size_t n = strcspn(last, ":");
    return n == strlen(role) && strncmp(last, role, n) == 0;
}

/*
 * Fills dataset[v] with where variable v (roles[v]) of the quantizer at `path` is: keras_v3
 * `<path>/quantizer/vars/<v>` (and dataset[n], the first one that must not exist), or the name of
 * a legacy file (a placeholder naming the object when absent; dataset[n] empty). Returns the number
 * of variables the file holds for the quantizer in a legacy file, n for keras_v3, SIZE_MAX after
 * failing.
 */
static size_t locate_vars(alk_op *op, const char *path, const char *const *roles, size_t n,
                          char (*dataset)[HGQ_PATH_MAX]) {
    const alk_value *names = alk_op_stored_opt(op, "weight_names");
    if (names == NULL || names->kind != ALK_VALUE_ARRAY) {
        for (size_t v = 0; v <= n; v++) {
            char rest[64];
            (void)snprintf(rest, sizeof(rest), "%squantizer/vars/%zu", slash_after(path), v);
            if (!hgq_path(op, dataset[v], path, rest)) {
                return SIZE_MAX;
            }
        }
        return n;
    }
    char object[HGQ_PATH_MAX];
    size_t nth;
    const char *entry = NULL;
    size_t entry_len = 0;
    if (!legacy_object(op, path, object, &nth) ||
        (nth != SIZE_MAX && !nth_entry(names, nth, &entry, &entry_len))) {
        alk_op_fail(op, ALK_EINVAL,
                    "quantizer %s: its variables are not in this legacy .h5 file (or cannot be "
                    "located in one: save the model as .keras)",
                    quantizer_name(path));
        return SIZE_MAX;
    }
    for (size_t v = 0; v < n; v++) {
        (void)snprintf(dataset[v], HGQ_PATH_MAX, "%s%s%s", object, object[0] ? "/" : "", roles[v]);
    }
    dataset[n][0] = '\0'; /* the count tells extra variables */
    bool found[MAX_VARS] = {false};
    size_t count = 0;
    for (size_t i = 0; i < names->as.array.len; i++) {
        const char *name = name_at(names, i);
        if (entry != NULL ? !in_entry(names, i, entry, entry_len) : !has_component(name, object)) {
            continue;
        }
        count++;
        for (size_t v = 0; v < n; v++) {
            if (!found[v] && last_is(name, roles[v])) {
                found[v] = hgq_path(op, dataset[v], name, "");
            }
        }
    }
    return alk_op_failed(op) ? SIZE_MAX : count;
}

static bool read_vars(alk_op *op, const char *path, alk_hgq_quantizer *q) {
    const char *roles[MAX_VARS] = {NULL};
    size_t n = var_roles(q, roles);
    stored_info info[MAX_VARS + 1];
    char dataset[MAX_VARS + 1][HGQ_PATH_MAX];
    size_t k_at = 0;
    size_t count = locate_vars(op, path, roles, n, dataset);
    if (count == SIZE_MAX) {
        return false;
    }
    for (size_t v = 0; v <= n; v++) {
        const alk_value *stored = dataset[v][0] != '\0' ? alk_op_stored_opt(op, dataset[v]) : NULL;
        if (v == n) {
            if (stored != NULL || count > n) {
                alk_op_fail(op, ALK_EINVAL,
                            "quantizer %s: the file stores more variables for it than the %zu "
                            "of a %s %s quantizer%s%s (the weights do not match the config)",
                            quantizer_name(path), n, q->kind == ALK_HGQ_KBI ? "kbi" : "kif",
                            q->overflow == ALK_WRAP ? "WRAP" : "non-WRAP",
                            stored != NULL ? ": " : "", stored != NULL ? dataset[v] : "");
                return false;
            }
            break;
        }
        if (stored == NULL) {
            alk_op_fail(op, ALK_EINVAL, "quantizer %s: dataset %s (%s) is missing",
                        quantizer_name(path), dataset[v], roles[v]);
            return false;
        }
        if (!info_of(op, stored, dataset[v], &info[v])) {
            return false;
        }
        bool is_k = strcmp(roles[v], "k") == 0;
        k_at = is_k ? v : k_at;
        const char *dtype = info[v].dtype;
        if (dtype != NULL && (is_k ? strcmp(dtype, "u1") != 0 : !is_float_dtype(dtype))) {
            alk_op_fail(op, ALK_EINVAL,
                        "quantizer %s: dataset %s (%s) has dtype %s; HGQ2 stores %s (the weights "
                        "do not match the config)",
                        quantizer_name(path), dataset[v], roles[v], dtype,
                        is_k ? "k as uint8" : "it as float32");
            return false;
        }
    }
    /* k, i and b or f share one shape; i_decay_speed is a scalar. */
    for (size_t v = 0; v < n; v++) {
        bool scalar = strcmp(roles[v], "i_decay_speed") == 0;
        const stored_info *want = &info[k_at];
        bool same = scalar ? info[v].ndim == 0
                           : info[v].ndim == want->ndim && memcmp(info[v].shape, want->shape,
                                                                  want->ndim * sizeof(size_t)) == 0;
        if (info[v].dtype != NULL && want->dtype != NULL && !same) {
            char got[96], expected[96];
            hgq_shape_text(info[v].shape, info[v].ndim, got, sizeof(got));
            hgq_shape_text(want->shape, scalar ? 0 : want->ndim, expected, sizeof(expected));
            alk_op_fail(op, ALK_EINVAL,
                        "quantizer %s: dataset %s (%s) has shape %s, expected %s (the weights do "
                        "not match the config)",
                        quantizer_name(path), dataset[v], roles[v], got, expected);
            return false;
        }
    }
    if (!check_group_name(op, q, path)) {
        return false;
    }
    for (size_t v = 0; v < n; v++) {
        if (strcmp(roles[v], "i_decay_speed") == 0) {
            continue; /* training state (often infinite): not needed, not decoded */
        }
        alk_fva *a = alk_op_tensor_opt(op, dataset[v]);
        switch (roles[v][0]) {
        case 'k':
            q->k = a;
            break;
        case 'b':
            q->b = a;
            break;
        case 'f':
            q->f = a;
            break;
        default:
            q->i = strcmp(roles[v], "i") == 0 ? a : q->i;
            break;
        }
    }
    return !alk_op_failed(op);
}

bool hgq_quantizer_read(alk_op *op, const alk_value *conf, hgq_place place, const char *path,
                        alk_hgq_quantizer *ret) {
    alk_hgq_quantizer q;
    memset(&q, 0, sizeof(q));
    if (alk_op_failed(op) || !parse_config(op, conf, place, path, &q) || !read_vars(op, path, &q)) {
        return false;
    }
    *ret = q;
    return true;
}

bool hgq_quantizer_of(alk_op *op, const char *key, hgq_place place, const char *path,
                      alk_hgq_quantizer *ret) {
    return hgq_quantizer_read(op, alk_value_get(alk_op_config(op), key), place, path, ret);
}

/* ---- Use ------------------------------------------------------------------------------------- */

/* Whether the quantizer's variables (k's shape) broadcast to `x` (numpy rules); else fails the op
 * naming both shapes. */
static bool broadcasts(alk_op *op, const alk_hgq_quantizer *q, const char *path, const alk_fva *x,
                       const char *what) {
    if (x == NULL || q->k == NULL) {
        return false;
    }
    size_t nk = alk_fva_ndim(q->k), nx = alk_fva_ndim(x);
    const size_t *ks = alk_fva_shape(q->k), *xs = alk_fva_shape(x);
    bool ok = nk <= nx;
    for (size_t d = 0; ok && d < nk; d++) {
        size_t kd = ks[nk - 1 - d], xd = xs[nx - 1 - d];
        ok = kd == 1 || kd == xd;
    }
    if (!ok) {
        char kt[96], xt[96];
        hgq_shape_text(ks, nk, kt, sizeof(kt));
        hgq_shape_text(xs, nx, xt, sizeof(xt));
        alk_op_fail(op, ALK_EINVAL,
                    "quantizer %s: its variables of shape %s do not broadcast to %s of shape %s",
                    quantizer_name(path), kt, what, xt);
    }
    return ok;
}

alk_fva *hgq_quantize(alk_op *op, const alk_hgq_quantizer *q, const char *path, alk_fva *x) {
    if (alk_op_failed(op) || !broadcasts(op, q, path, x, "the values it quantizes")) {
        return NULL;
    }
    return alk_hgq_mirror(alk_op_trace(op), q, x);
}

alk_fva *hgq_quantize_weight(alk_op *op, const alk_hgq_quantizer *q, const char *path, alk_fva *w) {
    if (alk_op_failed(op) || !broadcasts(op, q, path, w, "the weight")) {
        return NULL;
    }
    return alk_hgq_quantize_weight(alk_op_trace(op), q, w);
}

alk_fva *hgq_apply(alk_op *op, const char *key, hgq_place place, const char *path, alk_fva *x) {
    alk_hgq_quantizer q;
    if (x == NULL || !hgq_quantizer_of(op, key, place, path, &q)) {
        return NULL;
    }
    return hgq_quantize(op, &q, path, x);
}

alk_fva *hgq_apply_conf(alk_op *op, const alk_value *conf, hgq_place place, const char *prefix,
                        const char *where, alk_fva *x) {
    char path[HGQ_PATH_MAX];
    alk_hgq_quantizer q;
    if (x == NULL || !hgq_path(op, path, prefix, where) ||
        !hgq_quantizer_read(op, conf, place, path, &q)) {
        return NULL;
    }
    return hgq_quantize(op, &q, path, x);
}

alk_fva *hgq_quantized_weight(alk_op *op, const char *role, const char *key, hgq_place place,
                              const char *path, bool required) {
    alk_fva *w = required ? alk_op_weight(op, role) : alk_op_weight_opt(op, role);
    alk_hgq_quantizer q;
    if (w == NULL || !hgq_quantizer_of(op, key, place, path, &q)) {
        return NULL;
    }
    return hgq_quantize_weight(op, &q, path, w);
}

/* ---- The layer's own variables ------------------------------------------------------------- */

void hgq_check_own_vars(alk_op *op, const char *prefix, size_t n, size_t ebops_at) {
    char dataset[HGQ_PATH_MAX];
    if (!hgq_path(op, dataset, prefix, "vars") || alk_op_failed(op)) {
        return;
    }
    /* The group's `name` (Keras >= 3.6) is the layer's, when the source knows it. */
    const alk_value *name = alk_op_stored_opt(op, dataset);
    if (prefix[0] == '\0' && name != NULL && name->kind == ALK_VALUE_STR &&
        strcmp(name->as.str.bytes, alk_op_name(op)) != 0) {
        alk_op_fail(op, ALK_EINVAL,
                    "its variables should be at vars, but the file's vars belong to '%s' (the "
                    "weights do not follow the config's layers)",
                    name->as.str.bytes);
        return;
    }
    if (!hgq_path(op, dataset, prefix, "vars/0") || alk_op_stored_opt(op, dataset) == NULL) {
        return; /* a legacy file, or a layer without variables */
    }
    for (size_t v = 0; v <= n; v++) {
        char rest[32];
        (void)snprintf(rest, sizeof(rest), "vars/%zu", v);
        if (!hgq_path(op, dataset, prefix, rest)) {
            return;
        }
        const alk_value *stored = alk_op_stored_opt(op, dataset);
        if (v == n) {
            if (stored != NULL) {
                alk_op_fail(op, ALK_EINVAL,
                            "the file stores more than the %zu variables this config gives the "
                            "layer: %s (the weights do not match the config)",
                            n, dataset);
            }
            return;
        }
        if (stored == NULL) {
            alk_op_fail(op, ALK_EINVAL,
                        "dataset %s is missing: this config gives the layer %zu variables", dataset,
                        n);
            return;
        }
        stored_info info;
        if (ebops_at == HGQ_NO_EBOPS || v < ebops_at || v - ebops_at >= 2 ||
            !info_of(op, stored, dataset, &info) || info.dtype == NULL) {
            continue;
        }
        /* HGQ2's beta (float32) and ebops (uint32) scalars. */
        bool beta = v == ebops_at;
        bool ok =
            info.ndim == 0 && (beta ? is_float_dtype(info.dtype) : strcmp(info.dtype, "u4") == 0);
        if (!ok) {
            alk_op_fail(op, ALK_EINVAL,
                        "dataset %s should be HGQ2's %s (a %s scalar), got dtype %s with %zu axes "
                        "(the weights do not match the config)",
                        dataset, beta ? "beta" : "ebops", beta ? "float32" : "uint32", info.dtype,
                        info.ndim);
            return;
        }
    }
}

float *hgq_floats(alk_op *op, const alk_fva *a, const char *what) {
    if (a == NULL || alk_op_failed(op)) {
        return NULL;
    }
    size_t n = alk_fva_size(a);
    float *out = alk_malloc((n > 0 ? n : 1) * sizeof(float));
    if (out == NULL) {
        alk_op_fail(op, ALK_ENOMEM, "out of memory reading %s", what);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = (float)alk_fva_num_at(a, i);
    }
    return out;
}
