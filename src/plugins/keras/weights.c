/*
 * Where a layer's weights are stored (spec frontends.md §7.2), as the kit's weight source.
 *
 *   - keras_v3 (`.keras`, Keras 3 `.weights.h5`): by position. The row's layout gives the role's
 *     index N; the tensor is `<level prefix>layers/<slot>/vars/N`, and a path asked for by a
 *     second-level plugin ("kq/quantizer/vars/1") is relative to `layers/<slot>/`; such a path
 *     naming a `vars` group gives the group's `name` attribute. The layer's own `vars` group's
 *     `name`, when the file has one (Keras >= 3.6), must name the layer.
 *   - legacy_h5 (`.h5` of Keras 3 or 2, the Keras 2 json + weights pair): by name. The layer's
 *     weights are the `weight_names` of its group (its own, or for a layer of a nested model the
 *     group of the top-level layer holding it, whose names then start with the layer's name);
 *     a role is found by the last component of the name, `:0` stripped, with Keras 2's
 *     `depthwise_kernel` for `kernel`; a path is found as the end of a name, and the path
 *     "weight_names" gives the layer's names as a list (HGQ2's plugin finds its quantizers'
 *     variables by their object names).
 * The source remembers which stored weights the op read and which had an integer dtype, so
 * that after a built-in row ran the tracer can refuse weights that do not match the config
 * (extra, integer), naming them.
 *
 * Thread rule: one job's thread.
 */
#include "plugins/keras/keras_int.h"

#include "graph/tensor.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { MAX_LAYER_WEIGHTS = 256 };

struct keras_layer_weights {
    keras_job *job;
    const alk_keras_layer *layer;
    const char *dir; /* keras_v3: "layers/dense"; legacy_h5: the group name */
    /* The stored weights of the layer: keras_v3 vars/0..n-1; legacy_h5 its names. */
    size_t n;
    const char **names;           /* legacy_h5: weight names in file order */
    const alk_value *names_value; /* legacy_h5: the same as a list of strings */
    const alk_value **stored;     /* the tensors, in the same order */
    bool *read;
    /* The first weight read with an integer dtype (a built-in layer's weights are floats). */
    const char *bad_role;
    size_t bad_index;
};

/* ---- The address index ---------------------------------------------------------------------- */

static uint64_t hash_str(const char *s) {
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        h = (h ^ *c) * 1099511628211ull;
    }
    return h;
}

int keras_weights_index(keras_job *job, alk_diag *diag) {
    const alk_value *weights = alk_value_get(job->payload, "weights");
    size_t n = weights != NULL && weights->kind == ALK_VALUE_MAP ? weights->as.map.len : 0;
    size_t cap = 16;
    while (cap < 2 * n) {
        cap *= 2;
    }
    job->index.slots = alk_arena_calloc(&job->arena, cap, sizeof(*job->index.slots));
    if (job->index.slots == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    job->index.cap = cap;
    for (size_t i = 0; i < n; i++) {
        const alk_value_pair *p = &weights->as.map.pairs[i];
        size_t s = (size_t)hash_str(p->key->as.str.bytes) & (cap - 1);
        while (job->index.slots[s] != NULL) {
            s = (s + 1) & (cap - 1);
        }
        job->index.slots[s] = p;
    }
    return ALK_OK;
}

static const alk_value *lookup(const keras_job *job, const char *address) {
    if (job->index.cap == 0) {
        return NULL;
    }
    size_t s = (size_t)hash_str(address) & (job->index.cap - 1);
    while (job->index.slots[s] != NULL) {
        if (strcmp(job->index.slots[s]->key->as.str.bytes, address) == 0) {
            return job->index.slots[s]->value;
        }
        s = (s + 1) & (job->index.cap - 1);
    }
    return NULL;
}

/* ---- The sources ------------------------------------------------------------------------------
 */

static bool legacy_init(keras_layer_weights *w) {
    keras_job *job = w->job;
    const char *group = w->layer->legacy_group;
    w->dir = group;
    const alk_value *names = alk_value_get(alk_value_get(job->payload, "weight_names"), group);
    size_t n = names != NULL && names->kind == ALK_VALUE_ARRAY ? names->as.array.len : 0;
    w->names = alk_arena_calloc(&job->arena, n + 1, sizeof(*w->names));
    w->stored = alk_arena_calloc(&job->arena, n + 1, sizeof(*w->stored));
    const alk_value **items = alk_arena_calloc(&job->arena, n + 1, sizeof(*items));
    if (w->names == NULL || w->stored == NULL || items == NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = names->as.array.items[i]->as.str.bytes;
        /* Inside a nested model, the group holds every layer of it: keep this layer's. */
        if (w->layer->nested && !alk_keras_legacy_owns(name, w->layer->name)) {
            continue;
        }
        char address[1024];
        (void)snprintf(address, sizeof(address), "%s/%s", group, name);
        items[w->n] = names->as.array.items[i];
        w->names[w->n] = name;
        w->stored[w->n++] = lookup(job, address);
    }
    w->names_value = alk_value_new_array(&job->arena, items, w->n);
    return w->names_value != NULL;
}

static bool v3_init(keras_layer_weights *w) {
    keras_job *job = w->job;
    w->dir = w->layer->weights_dir != NULL ? w->layer->weights_dir : "";
    w->stored = alk_arena_calloc(&job->arena, MAX_LAYER_WEIGHTS + 1, sizeof(*w->stored));
    if (w->stored == NULL) {
        return false;
    }
    /* vars/0, vars/1, ... up to the first one missing. */
    while (w->n < MAX_LAYER_WEIGHTS) {
        char address[1100];
        (void)snprintf(address, sizeof(address), "%s/vars/%zu", w->dir, w->n);
        const alk_value *v = lookup(job, address);
        if (v == NULL) {
            break;
        }
        w->stored[w->n++] = v;
    }
    return true;
}

keras_layer_weights *keras_layer_weights_new(keras_job *job, const alk_keras_layer *layer) {
    keras_layer_weights *w = alk_arena_calloc(&job->arena, 1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    w->job = job;
    w->layer = layer;
    bool ok = job->legacy ? legacy_init(w) : v3_init(w);
    w->read = ok ? alk_arena_calloc(&job->arena, w->n + 1, sizeof(*w->read)) : NULL;
    return w->read != NULL ? w : NULL;
}

/* Whether the tensor `v` holds integers or booleans (not a float dtype). */
static bool integer_dtype(const alk_value *v, alk_dtype *ret_dtype) {
    const alk_value *name = alk_value_get(v, "dtype");
    alk_dtype dtype;
    if (name == NULL || name->kind != ALK_VALUE_STR ||
        !alk_dtype_parse(name->as.str.bytes, &dtype)) {
        return false; /* the kit's decoder names a malformed tensor */
    }
    *ret_dtype = dtype;
    return dtype != ALK_DTYPE_F2 && dtype != ALK_DTYPE_F4 && dtype != ALK_DTYPE_F8 &&
           dtype != ALK_DTYPE_BF16;
}

/* Records that stored weight i was read as `role`. */
static const alk_value *mark(keras_layer_weights *w, size_t i, const char *role) {
    alk_dtype dtype;
    w->read[i] = true;
    /* Normalization's sample count is Keras's one integer weight. */
    if (w->bad_role == NULL && strcmp(role, "count") != 0 && integer_dtype(w->stored[i], &dtype)) {
        w->bad_role = role;
        w->bad_index = i;
    }
    return w->stored[i];
}

/* The last component of a legacy name without `:0`, compared with `role`. */
static bool legacy_role_is(const char *name, const char *role) {
    const char *last = strrchr(name, '/');
    last = last != NULL ? last + 1 : name;
    size_t n = strcspn(last, ":");
    return strlen(role) == n && strncmp(last, role, n) == 0;
}

const alk_value *keras_find_weight(const void *ctx, const char *role, size_t index,
                                   const char *path) {
    /* The source is the tracer's own object: the kit passes it back as given. */
    keras_layer_weights *w = (keras_layer_weights *)ctx;
    if (w == NULL) {
        return NULL;
    }
    if (role == NULL) {
        char address[1200];
        if (!w->job->legacy) {
            (void)snprintf(address, sizeof(address), "%s/%s", w->dir, path);
            const alk_value *tensor = lookup(w->job, address);
            size_t alen = strlen(address);
            if (tensor != NULL || alen < 5 || strcmp(address + alen - 5, "/vars") != 0) {
                return tensor;
            }
            /* A `vars` group: its `name` attribute (Keras >= 3.6), when the file has one. */
            return alk_value_get(alk_value_get(w->job->payload, "var_names"), address);
        }
        if (strcmp(path, "weight_names") == 0) {
            /* The layer's names as a list, for a second-level plugin that locates the weights of
             * its sub-objects by their names (HGQ2's quantizers). */
            return w->names_value;
        }
        size_t plen = strlen(path);
        for (size_t i = 0; i < w->n; i++) {
            size_t n = strlen(w->names[i]);
            if (n >= plen && strcmp(w->names[i] + n - plen, path) == 0 &&
                (n == plen || w->names[i][n - plen - 1] == '/')) {
                return w->stored[i];
            }
        }
        return NULL;
    }
    if (!w->job->legacy) {
        return index < w->n ? mark(w, index, role) : NULL;
    }
    for (int pass = 0; pass < 2; pass++) {
        /* Keras 2 calls a depthwise kernel `depthwise_kernel`. */
        const char *name = pass == 0                     ? role
                           : strcmp(role, "kernel") == 0 ? "depthwise_kernel"
                                                         : NULL;
        for (size_t i = 0; name != NULL && i < w->n; i++) {
            if (!w->read[i] && legacy_role_is(w->names[i], name) && w->stored[i] != NULL) {
                return mark(w, i, role);
            }
        }
    }
    return NULL;
}

/* ---- Checks -----------------------------------------------------------------------------------
 */

void keras_weights_check_before(alk_op *op, const keras_layer_weights *w) {
    if (w == NULL || w->job->legacy) {
        return;
    }
    char group[1100];
    (void)snprintf(group, sizeof(group), "%s/vars", w->dir);
    const alk_value *name = alk_value_get(alk_value_get(w->job->payload, "var_names"), group);
    if (name != NULL && name->kind == ALK_VALUE_STR &&
        strcmp(name->as.str.bytes, w->layer->name) != 0) {
        alk_op_fail(op, ALK_EINVAL,
                    "its weights should be at %s, but the file's %s belongs to '%s': the "
                    "weights do not follow the config's layers",
                    w->dir, group, name->as.str.bytes);
    }
}

/* The address of stored weight i, for messages. */
static void address_of(const keras_layer_weights *w, size_t i, char *out, size_t cap) {
    if (w->job->legacy) {
        (void)snprintf(out, cap, "%s/%s", w->dir, w->names[i]);
    } else {
        (void)snprintf(out, cap, "%s/vars/%zu", w->dir, i);
    }
}

void keras_weights_check_after(alk_op *op, const keras_layer_weights *w) {
    if (w == NULL || alk_op_failed(op)) {
        return;
    }
    char address[1200];
    if (w->bad_role != NULL) {
        alk_dtype dtype = ALK_DTYPE_F4;
        (void)integer_dtype(w->stored[w->bad_index], &dtype);
        const char *name = alk_dtype_numpy_name(dtype);
        address_of(w, w->bad_index, address, sizeof(address));
        alk_op_fail(op, ALK_EINVAL,
                    "weight '%s' (%s) has dtype %s; Keras stores this layer's weights as floats",
                    w->bad_role, address, name);
        return;
    }
    for (size_t i = 0; i < w->n; i++) {
        if (!w->read[i]) {
            address_of(w, i, address, sizeof(address));
            alk_op_fail(op, ALK_EINVAL,
                        "the file stores %zu weight(s) for it; %s is one %s with this config "
                        "does not have (the weights do not match the config)",
                        w->n, address, w->layer->class_name);
            return;
        }
    }
}
