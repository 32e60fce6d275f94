/*
 * Keras model configs to graphs (model_graph.h): parsing every config form into one shape of
 * levels, layers and nodes, resolving tensor references, Keras's node order and weight slots.
 *
 * Design. A level is parsed in three passes: the layers (names indexed in a small hash table,
 * kinds, nested levels parsed recursively), the nodes (Keras 2 list nodes and Sequential chains
 * rewritten into Keras 3 {"args", "kwargs"} trees, so that later code reads one form), then the
 * references (every `__keras_tensor__` of every node resolved to a layer's node, which also
 * settles the base index of nested models). map_graph's DFS and depth rule run iteratively: a
 * chain of thousands of layers must not exhaust the C stack.
 *
 * Thread rule: parsing uses only its arena; the result is immutable.
 */
#include "plugins/keras/model_graph.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* A parse: the arena, the error, and the current nesting depth. */
typedef struct parser {
    alk_arena *arena;
    alk_diag *diag;
    int err;
    unsigned depth;
} parser;

/* Records the first error; later calls keep it. Returns the error code. */
__attribute__((format(printf, 3, 4))) static int fail(parser *p, int err, const char *fmt, ...) {
    if (p->err == ALK_OK) {
        va_list ap;
        va_start(ap, fmt);
        char text[sizeof(p->diag->message)];
        (void)vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        p->err = alk_diag_set(p->diag, err, "%s", text);
    }
    return p->err;
}

static int oom(parser *p) {
    return fail(p, ALK_ENOMEM, "out of memory");
}

static const char *str_at(const alk_value *map, const char *key) {
    const alk_value *v = alk_value_get(map, key);
    return v != NULL && v->kind == ALK_VALUE_STR ? v->as.str.bytes : NULL;
}

static bool str_eq(const char *a, const char *b) {
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static bool starts_with(const char *s, const char *prefix) {
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- Value builders for the rewritten nodes --------------------------------------------------
 */

static const alk_value *new_str(parser *p, const char *s) {
    const alk_value *v = alk_value_new_bytes(p->arena, ALK_VALUE_STR, s, strlen(s));
    if (v == NULL) {
        (void)oom(p);
    }
    return v;
}

static const alk_value *new_map(parser *p, const alk_value_pair *pairs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (pairs[i].key == NULL || pairs[i].value == NULL) {
            (void)oom(p);
            return NULL;
        }
    }
    const alk_value *v = alk_value_new_map(p->arena, pairs, n);
    if (v == NULL) {
        (void)oom(p);
    }
    return v;
}

static const alk_value *new_array(parser *p, const alk_value *const *items, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (items[i] == NULL) {
            (void)oom(p);
            return NULL;
        }
    }
    const alk_value *v = alk_value_new_array(p->arena, items, n);
    if (v == NULL) {
        (void)oom(p);
    }
    return v;
}

/* {"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, tensor]}} */
static const alk_value *tensor_value(parser *p, const alk_value *history) {
    alk_value_pair config = {new_str(p, "keras_history"), history};
    alk_value_pair pairs[2] = {{new_str(p, "class_name"), new_str(p, "__keras_tensor__")},
                               {new_str(p, "config"), new_map(p, &config, 1)}};
    return new_map(p, pairs, 2);
}

static const alk_value *history_value(parser *p, const char *layer, size_t node, size_t tensor) {
    const alk_value *items[3] = {new_str(p, layer), alk_value_new_int(p->arena, (int64_t)node),
                                 alk_value_new_int(p->arena, (int64_t)tensor)};
    return new_array(p, items, 3);
}

static const alk_value *empty_map(parser *p) {
    return new_map(p, NULL, 0);
}

/* ---- The layer-name index of a level ----------------------------------------------------------
 */

typedef struct name_index {
    alk_keras_layer **slots; /* open addressing; NULL = empty */
    size_t cap;              /* a power of two, at least twice the layers */
} name_index;

static uint64_t hash_str(const char *s) {
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        h = (h ^ *c) * 1099511628211ull;
    }
    return h;
}

static alk_keras_layer **name_slot(const name_index *index, const char *name) {
    size_t i = (size_t)hash_str(name) & (index->cap - 1);
    while (index->slots[i] != NULL && strcmp(index->slots[i]->name, name) != 0) {
        i = (i + 1) & (index->cap - 1);
    }
    return &index->slots[i];
}

/* The model's index lives behind its layers array: alk_keras_model_layer finds it again. */
typedef struct model_private {
    alk_keras_model model;
    name_index names;
} model_private;

alk_keras_layer *alk_keras_model_layer(const alk_keras_model *model, const char *name) {
    const model_private *mp = (const model_private *)model;
    if (name == NULL || mp->names.cap == 0) {
        return NULL;
    }
    return *name_slot(&mp->names, name);
}

alk_keras_node *alk_keras_layer_node(const alk_keras_layer *layer, size_t index) {
    if (layer == NULL || index < layer->first_node || index - layer->first_node >= layer->n_nodes) {
        return NULL;
    }
    return &layer->nodes[index - layer->first_node];
}

/* ---- Names and kinds --------------------------------------------------------------------------
 */

const char *alk_keras_kind_name(alk_keras_layer_kind kind) {
    switch (kind) {
    case ALK_KERAS_INPUT:
        return "input layer";
    case ALK_KERAS_OP:
        return "op";
    case ALK_KERAS_MODEL:
        return "model";
    case ALK_KERAS_LAYER:
        break;
    }
    return "layer";
}

static bool is_upper(char c) {
    return c >= 'A' && c <= 'Z';
}

static bool is_lower(char c) {
    return c >= 'a' && c <= 'z';
}

/* Python's \w for the ASCII range; other bytes (UTF-8 letters) count as word characters. */
static bool is_word(unsigned char c) {
    return c >= 0x80 || c == '_' || (c >= '0' && c <= '9') || is_upper((char)c) ||
           is_lower((char)c);
}

bool alk_keras_snake_case(const char *name, char *out, size_t cap) {
    /* Keras's to_snake_case: drop \W; `(.)([A-Z][a-z]+)` -> `\1_\2`; `([a-z])([A-Z])` ->
     * `\1_\2`; lower. Each substitution scans left to right without overlaps, like re.sub. */
    char word[256];
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)name; *c != '\0'; c++) {
        if (is_word(*c)) {
            if (n + 1 >= sizeof(word)) {
                return false;
            }
            word[n++] = (char)*c;
        }
    }
    word[n] = '\0';
    char step1[512];
    size_t m = 0;
    size_t i = 0;
    while (i < n) {
        /* A match at i: any character, then an upper-case letter and one or more lower-case. */
        if (i + 2 < n && is_upper(word[i + 1]) && is_lower(word[i + 2])) {
            size_t end = i + 2;
            while (end < n && is_lower(word[end])) {
                end++;
            }
            if (m + (end - i) + 2 >= sizeof(step1)) {
                return false;
            }
            step1[m++] = word[i];
            step1[m++] = '_';
            memcpy(step1 + m, word + i + 1, end - i - 1);
            m += end - i - 1;
            i = end;
            continue;
        }
        if (m + 2 >= sizeof(step1)) {
            return false;
        }
        step1[m++] = word[i++];
    }
    size_t o = 0;
    for (size_t k = 0; k < m; k++) {
        if (o + 3 > cap) {
            return false;
        }
        char c = step1[k];
        out[o++] = is_upper(c) ? (char)(c - 'A' + 'a') : c;
        if (is_lower(c) && k + 1 < m && is_upper(step1[k + 1])) {
            /* `([a-z])([A-Z])`: the upper-case letter is consumed with the match. */
            out[o++] = '_';
            out[o++] = (char)(step1[k + 1] - 'A' + 'a');
            k++;
        }
    }
    if (o >= cap) {
        return false;
    }
    out[o] = '\0';
    return true;
}

static bool is_model_class(const char *class_name, const char *module) {
    bool model_name = str_eq(class_name, "Functional") || str_eq(class_name, "Sequential") ||
                      str_eq(class_name, "Model");
    return model_name &&
           (module == NULL || str_eq(module, "keras") || starts_with(module, "keras."));
}

static alk_keras_layer_kind kind_of(const char *class_name, const char *module) {
    if (str_eq(class_name, "InputLayer")) {
        return ALK_KERAS_INPUT;
    }
    if (is_model_class(class_name, module)) {
        return ALK_KERAS_MODEL;
    }
    if (starts_with(module, "keras.src.ops.") || starts_with(module, "keras.ops") ||
        str_eq(module, "keras.src.activations.activations")) {
        return ALK_KERAS_OP;
    }
    return ALK_KERAS_LAYER;
}

/* The package of `registered` (`hgq>QDense` -> hgq) or else of `module`, copied. */
static const char *package_of(parser *p, const char *module, const char *registered) {
    const char *text = module;
    const char *end = strchr(module, '.');
    const char *sep = registered != NULL ? strchr(registered, '>') : NULL;
    if (sep != NULL && sep != registered) {
        text = registered;
        end = sep;
    }
    size_t len = end != NULL ? (size_t)(end - text) : strlen(text);
    const alk_value *v = alk_value_new_bytes(p->arena, ALK_VALUE_STR, text, len);
    if (v == NULL) {
        (void)oom(p);
        return "";
    }
    return v->as.str.bytes;
}

/* ---- Levels ---------------------------------------------------------------------------------- */

static alk_keras_model *parse_level(parser *p, const alk_value *entry, const char *name);

static model_private *new_model(parser *p, size_t n_layers) {
    model_private *mp = alk_arena_calloc(p->arena, 1, sizeof(*mp));
    size_t cap = 8;
    while (cap < 2 * n_layers + 2) {
        cap *= 2;
    }
    alk_keras_layer *layers = alk_arena_calloc(p->arena, n_layers + 1, sizeof(*layers));
    alk_keras_layer **slots = alk_arena_calloc(p->arena, cap, sizeof(*slots));
    if (mp == NULL || layers == NULL || slots == NULL) {
        (void)oom(p);
        return NULL;
    }
    mp->model.layers = layers;
    mp->names = (name_index){slots, cap};
    return mp;
}

/* Fills `layer` from a config.layers entry and indexes its name. */
static int init_layer(parser *p, model_private *mp, alk_keras_layer *layer,
                      const alk_value *entry) {
    const alk_value *config = alk_value_get(entry, "config");
    const char *name = str_at(entry, "name");
    if (name == NULL) {
        name = str_at(config, "name");
    }
    const char *class_name = str_at(entry, "class_name");
    size_t index = (size_t)(layer - mp->model.layers);
    if (entry->kind != ALK_VALUE_MAP || name == NULL || class_name == NULL) {
        return fail(p, ALK_EINVAL,
                    "model %s: layers[%zu] needs a name and a class_name (a map of strings)",
                    mp->model.name, index);
    }
    if (config != NULL && config->kind != ALK_VALUE_MAP) {
        return fail(p, ALK_EINVAL, "layer %s (%s): its config is a %s, not a map", name, class_name,
                    alk_value_kind_name(config->kind));
    }
    const char *module = str_at(entry, "module");
    if (module == NULL) {
        mp->model.keras2 = true;
    }
    const char *registered = str_at(entry, "registered_name");
    /* Keras 3's legacy .h5 writes a registered class's name (`hgq>QDense`) as its class_name,
     * without module or registered_name: the class is the part after '>'. */
    const char *sep = strchr(class_name, '>');
    if (registered == NULL && sep != NULL && sep != class_name && sep[1] != '\0') {
        registered = class_name;
        class_name = sep + 1;
    }
    *layer = (alk_keras_layer){
        .name = name,
        .class_name = class_name,
        .module = module != NULL ? module : "keras.layers",
        .registered_name = registered,
        .entry = entry,
        .config = config != NULL ? config : empty_map(p),
        .kind = kind_of(class_name, module),
    };
    layer->package = package_of(p, layer->module, registered);
    alk_keras_layer **slot = name_slot(&mp->names, name);
    if (*slot != NULL) {
        return fail(p, ALK_EINVAL, "model %s: two layers are named %s", mp->model.name, name);
    }
    *slot = layer;
    if (layer->kind == ALK_KERAS_MODEL && p->err == ALK_OK) {
        layer->model = parse_level(p, entry, name);
    }
    return p->err;
}

/* The layer entries of a Sequential config: `config.layers`, or the config itself (a list, as
 * early Keras 2 wrote it). */
static const alk_value *sequential_layers(const alk_value *config) {
    return config != NULL && config->kind == ALK_VALUE_ARRAY ? config
                                                             : alk_value_get(config, "layers");
}

/* Whether a Keras 2 Sequential keeps a first node of its own (tf.keras's _should_skip_first_node:
 * its first layer is an InputLayer, or carries the input shape). */
static bool sequential_has_input(const alk_value *config) {
    const alk_value *layers = sequential_layers(config);
    if (layers == NULL || layers->kind != ALK_VALUE_ARRAY || layers->as.array.len == 0) {
        return false;
    }
    const alk_value *first = layers->as.array.items[0];
    return str_eq(str_at(first, "class_name"), "InputLayer") ||
           alk_value_get(alk_value_get(first, "config"), "batch_input_shape") != NULL;
}

/* The index of a nested model's first listed node (frontends.md §2.1 step 3). */
static size_t model_first_node(const alk_keras_layer *layer) {
    if (str_eq(layer->class_name, "Sequential")) {
        bool keras2 = str_at(layer->entry, "module") == NULL;
        return keras2 && sequential_has_input(layer->config) ? 1 : 0;
    }
    return 1;
}

/* ---- Nodes ------------------------------------------------------------------------------------
 */

/* A Keras 2 list node [[layer, node, tensor(, kwargs)], ...] rewritten as {args, kwargs}. */
static int rewrite_list_node(parser *p, const alk_keras_layer *layer, size_t k,
                             const alk_value *data, alk_keras_node *node) {
    size_t n = data->as.array.len;
    const alk_value **tensors = alk_arena_calloc(p->arena, n + 1, sizeof(*tensors));
    if (tensors == NULL) {
        return oom(p);
    }
    node->kwargs = NULL;
    for (size_t i = 0; i < n; i++) {
        const alk_value *t = data->as.array.items[i];
        size_t len = t->kind == ALK_VALUE_ARRAY ? t->as.array.len : 0;
        if (len < 3 || len > 4 || t->as.array.items[0]->kind != ALK_VALUE_STR ||
            t->as.array.items[1]->kind != ALK_VALUE_INT ||
            t->as.array.items[2]->kind != ALK_VALUE_INT) {
            return fail(p, ALK_EINVAL,
                        "layer %s: inbound node %zu, input %zu is not [layer, node, tensor, "
                        "kwargs]",
                        layer->name, k, i);
        }
        const alk_value *history = new_array(p, t->as.array.items, 3);
        tensors[i] = tensor_value(p, history);
        if (len == 4) {
            /* Keras's loader keeps the last input's kwargs. */
            node->kwargs = t->as.array.items[3];
        }
    }
    const alk_value *arg = n == 1 ? tensors[0] : new_array(p, tensors, n);
    node->args = new_array(p, &arg, 1);
    if (node->kwargs == NULL || node->kwargs->kind != ALK_VALUE_MAP) {
        node->kwargs = empty_map(p);
    }
    return p->err;
}

/* Reads the inbound nodes of a Functional's layer. */
static int read_nodes(parser *p, alk_keras_layer *layer) {
    const alk_value *list = alk_value_get(layer->entry, "inbound_nodes");
    if (layer->kind == ALK_KERAS_INPUT) {
        /* The input node: no arguments. */
        layer->nodes = alk_arena_calloc(p->arena, 1, sizeof(*layer->nodes));
        if (layer->nodes == NULL) {
            return oom(p);
        }
        layer->n_nodes = 1;
        layer->nodes[0] =
            (alk_keras_node){.layer = layer, .args = new_array(p, NULL, 0), .kwargs = empty_map(p)};
        return p->err;
    }
    if (list == NULL || list->kind == ALK_VALUE_NIL) {
        return ALK_OK; /* a layer never called in this model */
    }
    if (list->kind != ALK_VALUE_ARRAY) {
        return fail(p, ALK_EINVAL, "layer %s: inbound_nodes is a %s, not a list", layer->name,
                    alk_value_kind_name(list->kind));
    }
    layer->n_nodes = list->as.array.len;
    layer->nodes = alk_arena_calloc(p->arena, layer->n_nodes + 1, sizeof(*layer->nodes));
    if (layer->nodes == NULL) {
        return oom(p);
    }
    layer->first_node = layer->kind == ALK_KERAS_MODEL ? model_first_node(layer) : 0;
    for (size_t k = 0; k < layer->n_nodes && p->err == ALK_OK; k++) {
        const alk_value *data = list->as.array.items[k];
        alk_keras_node *node = &layer->nodes[k];
        node->layer = layer;
        if (data->kind == ALK_VALUE_ARRAY) {
            (void)rewrite_list_node(p, layer, k, data, node);
            continue;
        }
        if (data->kind != ALK_VALUE_MAP) {
            return fail(p, ALK_EINVAL, "layer %s: inbound node %zu is a %s, not a map", layer->name,
                        k, alk_value_kind_name(data->kind));
        }
        node->args = alk_value_get(data, "args");
        node->kwargs = alk_value_get(data, "kwargs");
        if (node->args == NULL || node->args->kind == ALK_VALUE_NIL) {
            node->args = new_array(p, NULL, 0);
        }
        if (node->kwargs == NULL || node->kwargs->kind == ALK_VALUE_NIL) {
            node->kwargs = empty_map(p);
        }
        if (p->err == ALK_OK &&
            (node->args->kind != ALK_VALUE_ARRAY || node->kwargs->kind != ALK_VALUE_MAP)) {
            return fail(p, ALK_EINVAL,
                        "layer %s: inbound node %zu needs args (a list) and kwargs (a map)",
                        layer->name, k);
        }
    }
    return p->err;
}

/* ---- References -------------------------------------------------------------------------------
 */

/* Whether `v` is the tagged value of a Keras tensor; its history in *ret_history. */
static bool is_tensor_value(const alk_value *v, const alk_value **ret_history) {
    if (v->kind != ALK_VALUE_MAP || !str_eq(str_at(v, "class_name"), "__keras_tensor__")) {
        return false;
    }
    *ret_history = alk_value_get(alk_value_get(v, "config"), "keras_history");
    return true;
}

/* A tagged value other than a tensor ({"class_name": "__numpy__", "config": ...}, or any Keras
 * object config): a leaf of Keras's flatten order. */
static bool is_object_value(const alk_value *v) {
    return v->kind == ALK_VALUE_MAP && str_at(v, "class_name") != NULL &&
           alk_value_get(v, "config") != NULL;
}

/* Resolves [layer, node, tensor] in `mp`'s level. */
static int resolve(parser *p, model_private *mp, const alk_value *history, const char *where,
                   alk_keras_ref *ret) {
    if (history == NULL || history->kind != ALK_VALUE_ARRAY || history->as.array.len != 3 ||
        history->as.array.items[0]->kind != ALK_VALUE_STR ||
        history->as.array.items[1]->kind != ALK_VALUE_INT ||
        history->as.array.items[2]->kind != ALK_VALUE_INT ||
        history->as.array.items[1]->as.integer < 0 || history->as.array.items[2]->as.integer < 0) {
        return fail(p, ALK_EINVAL, "%s: a tensor reference is not [layer, node, tensor]", where);
    }
    const char *name = history->as.array.items[0]->as.str.bytes;
    alk_keras_layer *layer = alk_keras_model_layer(&mp->model, name);
    if (layer == NULL) {
        return fail(p, ALK_EINVAL, "%s: refers to layer '%s', which the model does not have", where,
                    name);
    }
    *ret = (alk_keras_ref){layer, (size_t)history->as.array.items[1]->as.integer,
                           (size_t)history->as.array.items[2]->as.integer};
    return ALK_OK;
}

/* The pair of map `v` with the smallest key above `last` (NULL: the smallest), or NULL: maps are
 * visited in sorted key order, as Keras's tree.flatten does, without sorting them. */
static const alk_value_pair *next_key(const alk_value *v, const char *last) {
    const alk_value_pair *next = NULL;
    for (size_t i = 0; i < v->as.map.len; i++) {
        const alk_value_pair *pair = &v->as.map.pairs[i];
        const char *key = pair->key->as.str.bytes;
        if ((last == NULL || strcmp(key, last) > 0) &&
            (next == NULL || strcmp(key, next->key->as.str.bytes) < 0)) {
            next = pair;
        }
    }
    return next;
}

/* Appends the tensors of `v` in Keras's flatten order (maps by sorted key) to `refs` (NULL:
 * only count them in *n). */
static int collect_refs(parser *p, model_private *mp, const alk_value *v, const char *where,
                        alk_keras_ref *refs, size_t *n, unsigned depth) {
    const alk_value *history;
    if (depth > 64) {
        return fail(p, ALK_EINVAL, "%s: arguments nested too deep", where);
    }
    if (is_tensor_value(v, &history)) {
        if (refs != NULL && resolve(p, mp, history, where, &refs[*n]) != ALK_OK) {
            return p->err;
        }
        (*n)++;
        return ALK_OK;
    }
    if (v->kind == ALK_VALUE_ARRAY) {
        for (size_t i = 0; i < v->as.array.len && p->err == ALK_OK; i++) {
            (void)collect_refs(p, mp, v->as.array.items[i], where, refs, n, depth + 1);
        }
    } else if (v->kind == ALK_VALUE_MAP && !is_object_value(v)) {
        for (const alk_value_pair *pair = next_key(v, NULL); pair != NULL && p->err == ALK_OK;
             pair = next_key(v, pair->key->as.str.bytes)) {
            (void)collect_refs(p, mp, pair->value, where, refs, n, depth + 1);
        }
    }
    return p->err;
}

/* The tensor inputs of `node` (args, then kwargs). */
static int node_refs(parser *p, model_private *mp, alk_keras_node *node, size_t k) {
    char where[320];
    (void)snprintf(where, sizeof(where), "layer %s, inbound node %zu", node->layer->name, k);
    size_t n = 0;
    (void)collect_refs(p, mp, node->args, where, NULL, &n, 0);
    (void)collect_refs(p, mp, node->kwargs, where, NULL, &n, 0);
    node->inputs = alk_arena_calloc(p->arena, n + 1, sizeof(*node->inputs));
    if (node->inputs == NULL) {
        return oom(p);
    }
    node->n_inputs = 0;
    (void)collect_refs(p, mp, node->args, where, node->inputs, &node->n_inputs, 0);
    return collect_refs(p, mp, node->kwargs, where, node->inputs, &node->n_inputs, 0);
}

/* `input_layers` / `output_layers`: one [layer, node, tensor], a list of them, or a map of them
 * (flattened by sorted key, as Keras's tree does). Counts into *n; writes when refs != NULL. */
static int io_refs(parser *p, model_private *mp, const alk_value *v, const char *what,
                   alk_keras_ref *refs, size_t *n, unsigned depth) {
    char where[160];
    (void)snprintf(where, sizeof(where), "model %s: %s", mp->model.name, what);
    if (depth > 16) {
        return fail(p, ALK_EINVAL, "%s nested too deep", where);
    }
    if (v->kind == ALK_VALUE_ARRAY && v->as.array.len > 0 &&
        v->as.array.items[0]->kind == ALK_VALUE_STR) {
        if (refs != NULL && resolve(p, mp, v, where, &refs[*n]) != ALK_OK) {
            return p->err;
        }
        (*n)++;
        return ALK_OK;
    }
    if (v->kind == ALK_VALUE_ARRAY) {
        for (size_t i = 0; i < v->as.array.len && p->err == ALK_OK; i++) {
            (void)io_refs(p, mp, v->as.array.items[i], what, refs, n, depth + 1);
        }
        return p->err;
    }
    if (v->kind == ALK_VALUE_MAP) {
        for (const alk_value_pair *pair = next_key(v, NULL); pair != NULL && p->err == ALK_OK;
             pair = next_key(v, pair->key->as.str.bytes)) {
            (void)io_refs(p, mp, pair->value, what, refs, n, depth + 1);
        }
        return p->err;
    }
    return fail(p, ALK_EINVAL, "%s is a %s, not a list of [layer, node, tensor]", where,
                alk_value_kind_name(v->kind));
}

static int read_io(parser *p, model_private *mp, const alk_value *v, const char *what,
                   alk_keras_ref **ret_refs, size_t *ret_n) {
    if (v == NULL) {
        return fail(p, ALK_EINVAL, "model %s: %s is missing", mp->model.name, what);
    }
    size_t n = 0;
    if (io_refs(p, mp, v, what, NULL, &n, 0) != ALK_OK) {
        return p->err;
    }
    alk_keras_ref *refs = alk_arena_calloc(p->arena, n + 1, sizeof(*refs));
    if (refs == NULL) {
        return oom(p);
    }
    *ret_n = 0;
    (void)io_refs(p, mp, v, what, refs, ret_n, 0);
    *ret_refs = refs;
    return p->err;
}

/* Settles a nested model's base index from the references to it (a Keras 2 writer may count its
 * nodes from 0), then checks that every reference names an existing node. */
static int check_ref(parser *p, const alk_keras_ref *ref, const char *where) {
    const alk_keras_layer *layer = ref->layer;
    if (alk_keras_layer_node(layer, ref->node) == NULL) {
        return fail(p, ALK_EINVAL, "%s: refers to node %zu of layer %s, which has %zu node(s)%s",
                    where, ref->node, layer->name, layer->n_nodes,
                    layer->first_node > 0 ? " counted from 1" : "");
    }
    return ALK_OK;
}

static void lower_base(alk_keras_ref *refs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        alk_keras_layer *layer = refs[i].layer;
        if (layer->kind == ALK_KERAS_MODEL && refs[i].node < layer->first_node) {
            layer->first_node = refs[i].node;
        }
    }
}

static int check_refs(parser *p, model_private *mp) {
    alk_keras_model *m = &mp->model;
    for (size_t l = 0; l < m->n_layers; l++) {
        for (size_t k = 0; k < m->layers[l].n_nodes; k++) {
            lower_base(m->layers[l].nodes[k].inputs, m->layers[l].nodes[k].n_inputs);
        }
    }
    lower_base(m->inputs, m->n_inputs);
    lower_base(m->outputs, m->n_outputs);
    for (size_t l = 0; l < m->n_layers && p->err == ALK_OK; l++) {
        const alk_keras_layer *layer = &m->layers[l];
        for (size_t k = 0; k < layer->n_nodes && p->err == ALK_OK; k++) {
            char where[320];
            (void)snprintf(where, sizeof(where), "layer %s, inbound node %zu", layer->name, k);
            layer->nodes[k].index = layer->first_node + k;
            for (size_t i = 0; i < layer->nodes[k].n_inputs && p->err == ALK_OK; i++) {
                (void)check_ref(p, &layer->nodes[k].inputs[i], where);
            }
        }
    }
    for (size_t i = 0; i < m->n_inputs && p->err == ALK_OK; i++) {
        if (m->inputs[i].layer->kind != ALK_KERAS_INPUT) {
            return fail(p, ALK_EINVAL, "model %s: input %zu is layer %s, not an InputLayer",
                        m->name, i, m->inputs[i].layer->name);
        }
        (void)check_ref(p, &m->inputs[i], "input_layers");
    }
    for (size_t i = 0; i < m->n_outputs && p->err == ALK_OK; i++) {
        (void)check_ref(p, &m->outputs[i], "output_layers");
    }
    return p->err;
}

/* ---- Keras's node order (keras/src/ops/function.py map_graph) -----------------------------------
 */

/* Scratch state of one node during the order computation, indexed by its level-wide id. */
typedef struct node_state {
    alk_keras_node *node;
    bool finished, in_progress, in_depths;
    size_t seq; /* insertion order into map_graph's nodes_depths dict */
} node_state;

typedef struct frame {
    alk_keras_node *node;
    size_t next;
} frame;

static alk_keras_node *node_of(const alk_keras_ref *ref) {
    return alk_keras_layer_node(ref->layer, ref->node);
}

static int build_order(parser *p, model_private *mp) {
    alk_keras_model *m = &mp->model;
    size_t n_nodes = 0;
    for (size_t l = 0; l < m->n_layers; l++) {
        n_nodes += m->layers[l].n_nodes;
    }
    node_state *states = alk_arena_calloc(p->arena, n_nodes + 1, sizeof(*states));
    frame *stack = alk_arena_calloc(p->arena, n_nodes + 1, sizeof(*stack));
    alk_keras_node **post = alk_arena_calloc(p->arena, n_nodes + 1, sizeof(*post));
    size_t *layer_depth = alk_arena_calloc(p->arena, m->n_layers + 1, sizeof(*layer_depth));
    m->order = alk_arena_calloc(p->arena, n_nodes + 1, sizeof(*m->order));
    if (states == NULL || stack == NULL || post == NULL || layer_depth == NULL ||
        m->order == NULL) {
        return oom(p);
    }
    /* Node ids: a running count over the layers. */
    size_t id = 0;
    for (size_t l = 0; l < m->n_layers; l++) {
        for (size_t k = 0; k < m->layers[l].n_nodes; k++) {
            m->layers[l].nodes[k].id = id;
            states[id++].node = &m->layers[l].nodes[k];
        }
    }
    m->n_nodes = n_nodes;
    size_t n_post = 0;
    /* The DFS from each output, in order (_build_map). */
    for (size_t o = 0; o < m->n_outputs && p->err == ALK_OK; o++) {
        size_t top = 0;
        alk_keras_node *start = node_of(&m->outputs[o]);
        if (states[start->id].finished) {
            continue;
        }
        stack[top++] = (frame){start, 0};
        states[start->id].in_progress = true;
        while (top > 0 && p->err == ALK_OK) {
            frame *f = &stack[top - 1];
            if (f->next < f->node->n_inputs) {
                alk_keras_node *child = node_of(&f->node->inputs[f->next++]);
                node_state *s = &states[child->id];
                if (s->finished) {
                    continue;
                }
                if (s->in_progress) {
                    return fail(p, ALK_EINVAL,
                                "model %s: layer %s is part of a cycle (its node %zu depends on "
                                "its own output)",
                                m->name, child->layer->name, child->index);
                }
                s->in_progress = true;
                stack[top++] = (frame){child, 0};
                continue;
            }
            states[f->node->id].in_progress = false;
            states[f->node->id].finished = true;
            post[n_post++] = f->node;
            top--;
        }
    }
    if (p->err != ALK_OK) {
        return p->err;
    }
    /* Depths, walking the post-order backwards; `seq` records first insertion into the dict. */
    size_t *depths = alk_arena_calloc(p->arena, n_nodes + 1, sizeof(*depths));
    if (depths == NULL) {
        return oom(p);
    }
    size_t seq = 0;
    for (size_t i = n_post; i-- > 0;) {
        alk_keras_node *node = post[i];
        node_state *s = &states[node->id];
        if (!s->in_depths) {
            s->in_depths = true;
            s->seq = seq++;
            depths[node->id] = 0;
        }
        size_t l = (size_t)(node->layer - m->layers);
        size_t depth = depths[node->id];
        if (layer_depth[l] > depth) {
            depth = layer_depth[l];
        }
        layer_depth[l] = depth;
        depths[node->id] = depth;
        for (size_t k = 0; k < node->n_inputs; k++) {
            alk_keras_node *parent = node_of(&node->inputs[k]);
            node_state *ps = &states[parent->id];
            if (!ps->finished) {
                continue; /* not part of the graph */
            }
            if (!ps->in_depths) {
                ps->in_depths = true;
                ps->seq = seq++;
                depths[parent->id] = 0;
            }
            if (depths[parent->id] < depth + 1) {
                depths[parent->id] = depth + 1;
            }
        }
    }
    /* Inputs that reach no output still run (depth 0), after the others. */
    for (size_t i = 0; i < m->n_inputs; i++) {
        alk_keras_node *node = node_of(&m->inputs[i]);
        node_state *s = &states[node->id];
        if (!s->in_depths) {
            s->in_depths = true;
            s->seq = seq++;
            depths[node->id] = 0;
        }
    }
    /* The order: depth descending, then dict insertion order (a counting pass per depth). */
    size_t max_depth = 0;
    for (size_t i = 0; i < n_nodes; i++) {
        if (states[i].in_depths && depths[i] > max_depth) {
            max_depth = depths[i];
        }
    }
    alk_keras_node **by_seq = alk_arena_calloc(p->arena, seq + 1, sizeof(*by_seq));
    if (by_seq == NULL) {
        return oom(p);
    }
    for (size_t i = 0; i < n_nodes; i++) {
        if (states[i].in_depths) {
            by_seq[states[i].seq] = states[i].node;
        }
    }
    size_t *count = alk_arena_calloc(p->arena, max_depth + 2, sizeof(*count));
    if (count == NULL) {
        return oom(p);
    }
    for (size_t i = 0; i < seq; i++) {
        count[max_depth - depths[by_seq[i]->id]]++;
    }
    size_t start = 0;
    for (size_t d = 0; d <= max_depth; d++) {
        size_t c = count[d];
        count[d] = start;
        start += c;
    }
    for (size_t i = 0; i < seq; i++) {
        m->order[count[max_depth - depths[by_seq[i]->id]]++] = by_seq[i];
    }
    m->n_order = seq;
    for (size_t i = 0; i < n_nodes; i++) {
        states[i].node->depth = depths[i];
    }
    return ALK_OK;
}

/* ---- Weight slots -------------------------------------------------------------------------------
 */

static int assign_slots(parser *p, alk_keras_model *m) {
    /* Counters per slot base: a linear list is enough (a level has few distinct classes). */
    typedef struct counter {
        const char *base;
        size_t uses;
    } counter;
    counter *counters = alk_arena_calloc(p->arena, m->n_layers + 1, sizeof(*counters));
    if (counters == NULL) {
        return oom(p);
    }
    size_t n_counters = 0;
    for (size_t l = 0; l < m->n_layers && p->err == ALK_OK; l++) {
        alk_keras_layer *layer = &m->layers[l];
        if (layer->kind == ALK_KERAS_OP || (m->sequential && layer->kind == ALK_KERAS_INPUT)) {
            continue;
        }
        char base[256];
        if (!alk_keras_snake_case(layer->class_name, base, sizeof(base))) {
            return fail(p, ALK_EINVAL, "layer %s: class name %s is too long", layer->name,
                        layer->class_name);
        }
        counter *c = NULL;
        for (size_t i = 0; i < n_counters && c == NULL; i++) {
            c = strcmp(counters[i].base, base) == 0 ? &counters[i] : NULL;
        }
        if (c == NULL) {
            c = &counters[n_counters++];
            const alk_value *copy = new_str(p, base);
            c->base = copy != NULL ? copy->as.str.bytes : "";
            c->uses = 0;
        } else {
            c->uses++;
        }
        char slot[280];
        if (c->uses == 0) {
            (void)snprintf(slot, sizeof(slot), "%s", base);
        } else {
            (void)snprintf(slot, sizeof(slot), "%s_%zu", base, c->uses);
        }
        const alk_value *copy = new_str(p, slot);
        layer->slot = copy != NULL ? copy->as.str.bytes : NULL;
    }
    return p->err;
}

/* ---- Sequential models as chains ----------------------------------------------------------------
 */

/* The batch shape of a Sequential without an InputLayer entry: Keras 3's build_input_shape, or
 * the first layer's batch_input_shape (Keras 2). */
static const alk_value *sequential_shape(const alk_value *config, const alk_value *first) {
    const alk_value *shape = alk_value_get(config, "build_input_shape");
    if (shape == NULL || shape->kind == ALK_VALUE_NIL) {
        shape = alk_value_get(alk_value_get(first, "config"), "batch_input_shape");
    }
    return shape;
}

/* An InputLayer entry {"class_name": "InputLayer", "config": {"name", "batch_shape"}}. */
static const alk_value *input_entry(parser *p, const alk_value *shape) {
    alk_value_pair config[2] = {{new_str(p, "name"), new_str(p, "input_layer")},
                                {new_str(p, "batch_shape"),
                                 shape != NULL ? shape : alk_value_new(p->arena, ALK_VALUE_NIL)}};
    alk_value_pair entry[3] = {{new_str(p, "class_name"), new_str(p, "InputLayer")},
                               {new_str(p, "name"), new_str(p, "input_layer")},
                               {new_str(p, "config"), new_map(p, config, 2)}};
    return new_map(p, entry, 3);
}

static int parse_sequential(parser *p, model_private *mp, const alk_value *config) {
    alk_keras_model *m = &mp->model;
    const alk_value *list = sequential_layers(config);
    if (list == NULL || list->kind != ALK_VALUE_ARRAY) {
        return fail(p, ALK_EINVAL, "model %s: a Sequential config needs a list of layers", m->name);
    }
    size_t n = list->as.array.len;
    bool has_input = n > 0 && str_eq(str_at(list->as.array.items[0], "class_name"), "InputLayer");
    size_t at = 0;
    if (!has_input) {
        const alk_value *entry =
            input_entry(p, sequential_shape(config, n > 0 ? list->as.array.items[0] : NULL));
        if (p->err != ALK_OK) {
            return p->err;
        }
        (void)init_layer(p, mp, &m->layers[at++], entry);
    }
    for (size_t i = 0; i < n && p->err == ALK_OK; i++) {
        (void)init_layer(p, mp, &m->layers[at++], list->as.array.items[i]);
    }
    m->n_layers = at;
    if (p->err != ALK_OK) {
        return p->err;
    }
    if (m->n_layers < 1 || m->layers[0].kind != ALK_KERAS_INPUT) {
        return fail(p, ALK_EINVAL, "model %s: a Sequential model needs layers", m->name);
    }
    (void)read_nodes(p, &m->layers[0]);
    /* Each layer consumes the previous one's output: one node, args [that tensor]. */
    for (size_t l = 1; l < m->n_layers && p->err == ALK_OK; l++) {
        alk_keras_layer *layer = &m->layers[l];
        const alk_keras_layer *prev = &m->layers[l - 1];
        if (layer->kind == ALK_KERAS_INPUT) {
            return fail(p, ALK_EINVAL, "model %s: InputLayer %s in the middle of a Sequential",
                        m->name, layer->name);
        }
        layer->nodes = alk_arena_calloc(p->arena, 1, sizeof(*layer->nodes));
        if (layer->nodes == NULL) {
            return oom(p);
        }
        layer->n_nodes = 1;
        layer->first_node = layer->kind == ALK_KERAS_MODEL ? model_first_node(layer) : 0;
        const alk_value *arg = tensor_value(p, history_value(p, prev->name, prev->first_node, 0));
        layer->nodes[0] =
            (alk_keras_node){.layer = layer, .args = new_array(p, &arg, 1), .kwargs = empty_map(p)};
    }
    if (p->err != ALK_OK) {
        return p->err;
    }
    const alk_keras_layer *last = &m->layers[m->n_layers - 1];
    const alk_value *in = history_value(p, m->layers[0].name, 0, 0);
    const alk_value *out = history_value(p, last->name, last->first_node, 0);
    if (p->err != ALK_OK || read_io(p, mp, in, "inputs", &m->inputs, &m->n_inputs) != ALK_OK) {
        return p->err;
    }
    return read_io(p, mp, out, "outputs", &m->outputs, &m->n_outputs);
}

static int parse_functional(parser *p, model_private *mp, const alk_value *config) {
    alk_keras_model *m = &mp->model;
    const alk_value *list = alk_value_get(config, "layers");
    if (list == NULL || list->kind != ALK_VALUE_ARRAY) {
        return fail(p, ALK_EINVAL, "model %s: config.layers is missing or not a list", m->name);
    }
    m->n_layers = list->as.array.len;
    for (size_t l = 0; l < m->n_layers && p->err == ALK_OK; l++) {
        (void)init_layer(p, mp, &m->layers[l], list->as.array.items[l]);
    }
    for (size_t l = 0; l < m->n_layers && p->err == ALK_OK; l++) {
        (void)read_nodes(p, &m->layers[l]);
    }
    if (p->err != ALK_OK || read_io(p, mp, alk_value_get(config, "input_layers"), "input_layers",
                                    &m->inputs, &m->n_inputs) != ALK_OK) {
        return p->err;
    }
    return read_io(p, mp, alk_value_get(config, "output_layers"), "output_layers", &m->outputs,
                   &m->n_outputs);
}

/* Parses the model of config entry `entry` ({"class_name", "config", ...}) named `name`. */
static alk_keras_model *parse_level(parser *p, const alk_value *entry, const char *name) {
    if (p->depth >= ALK_KERAS_MAX_NESTING) {
        (void)fail(p, ALK_EINVAL, "model %s: models nested more than %d deep", name,
                   ALK_KERAS_MAX_NESTING);
        return NULL;
    }
    p->depth++;
    const char *class_name = str_at(entry, "class_name");
    const alk_value *config = alk_value_get(entry, "config");
    bool sequential = str_eq(class_name, "Sequential");
    const alk_value *list =
        sequential ? sequential_layers(config) : alk_value_get(config, "layers");
    size_t n = list != NULL && list->kind == ALK_VALUE_ARRAY ? list->as.array.len : 0;
    model_private *mp = new_model(p, n + 1);
    if (mp != NULL) {
        alk_keras_model *m = &mp->model;
        m->class_name = class_name;
        m->name = name;
        m->sequential = sequential;
        m->config = config;
        if (sequential) {
            (void)parse_sequential(p, mp, config);
        } else {
            (void)parse_functional(p, mp, config);
        }
        for (size_t l = 0; l < m->n_layers && p->err == ALK_OK; l++) {
            for (size_t k = 0; k < m->layers[l].n_nodes && p->err == ALK_OK; k++) {
                (void)node_refs(p, mp, &m->layers[l].nodes[k], k);
            }
        }
        if (p->err == ALK_OK && check_refs(p, mp) == ALK_OK && build_order(p, mp) == ALK_OK) {
            (void)assign_slots(p, m);
        }
    }
    p->depth--;
    return p->err == ALK_OK ? &mp->model : NULL;
}

/* Fills the weight places of `model`'s layers: `prefix` is the keras_v3 path of the level
 * ("" at the top), `group` the top-level layer holding it (NULL at the top). */
static int assign_places(parser *p, alk_keras_model *model, const char *prefix, const char *group) {
    for (size_t l = 0; l < model->n_layers && p->err == ALK_OK; l++) {
        alk_keras_layer *layer = &model->layers[l];
        layer->nested = group != NULL;
        layer->legacy_group = group != NULL ? group : layer->name;
        if (layer->slot == NULL) {
            continue;
        }
        char dir[1024];
        int n = snprintf(dir, sizeof(dir), "%slayers/%s", prefix, layer->slot);
        if (n < 0 || (size_t)n + 2 >= sizeof(dir)) {
            return fail(p, ALK_EINVAL, "layer %s: its weight path is too long", layer->name);
        }
        const alk_value *copy = new_str(p, dir);
        layer->weights_dir = copy != NULL ? copy->as.str.bytes : NULL;
        if (layer->model != NULL && copy != NULL) {
            dir[n] = '/';
            dir[n + 1] = '\0';
            (void)assign_places(p, layer->model, dir, layer->legacy_group);
        }
    }
    return p->err;
}

int alk_keras_graph_parse(const alk_value *root, alk_arena *arena, alk_keras_model **ret_model,
                          alk_diag *diag) {
    parser p = {arena, diag, ALK_OK, 0};
    const char *class_name = str_at(root, "class_name");
    const alk_value *config = alk_value_get(root, "config");
    if (root == NULL || root->kind != ALK_VALUE_MAP || class_name == NULL || config == NULL) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "the model config needs class_name and config (a Keras model's "
                            "config.json)");
    }
    if (!is_model_class(class_name, str_at(root, "module"))) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "the model is a %s (module %s): only Functional and Sequential "
                            "models can be converted (a subclassed model has no graph to replay)",
                            class_name,
                            str_at(root, "module") != NULL ? str_at(root, "module") : "none");
    }
    const char *name = str_at(config, "name");
    alk_keras_model *model = parse_level(&p, root, name != NULL ? name : class_name);
    if (model != NULL && assign_places(&p, model, "", NULL) != ALK_OK) {
        model = NULL;
    }
    if (model == NULL) {
        return p.err != ALK_OK ? p.err : alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    *ret_model = model;
    return ALK_OK;
}

/* ---- Dispatch and weight names ------------------------------------------------------------------
 */

const char *alk_keras_dispatch_module(const alk_keras_layer *layer) {
    /* The config's module decides, as the reference dispatches on the class's __module__ (HGQ2
     * registers QConvT1D as `hgq2>QConvT1D`; its module is hgq.layers.table.conv); the
     * registered package only when the config has no module (Keras 3's legacy .h5 writes
     * `hgq>QDense` as the class name, Keras 2 custom layers). */
    const alk_value *module = alk_value_get(layer->entry, "module");
    if (module != NULL && module->kind == ALK_VALUE_STR) {
        return layer->module;
    }
    size_t n = strcspn(layer->module, ".");
    bool same = strlen(layer->package) == n && strncmp(layer->module, layer->package, n) == 0;
    return same ? layer->module : layer->package;
}

bool alk_keras_legacy_owns(const char *name, const char *layer) {
    size_t want = strlen(layer);
    for (const char *start = name;;) {
        const char *end = strchr(start, '/');
        if (end == NULL) {
            return false; /* the last component is the variable's own name */
        }
        if ((size_t)(end - start) == want && strncmp(start, layer, want) == 0) {
            return true;
        }
        start = end + 1;
    }
}

/* ---- Input shapes -------------------------------------------------------------------------------
 */

int alk_keras_model_input_shape(const alk_keras_model *model, size_t input, int64_t *ret_dims,
                                size_t cap, size_t *ret_ndim, alk_diag *diag) {
    if (input >= model->n_inputs) {
        return alk_diag_set(diag, ALK_EINVAL, "model %s has %zu inputs, not %zu", model->name,
                            model->n_inputs, input + 1);
    }
    const alk_keras_layer *layer = model->inputs[input].layer;
    const alk_value *shape = alk_value_get(layer->config, "batch_shape");
    if (shape == NULL || shape->kind == ALK_VALUE_NIL) {
        shape = alk_value_get(layer->config, "batch_input_shape");
    }
    if (shape == NULL || shape->kind == ALK_VALUE_NIL) {
        return ALK_ENOENT;
    }
    if (shape->kind != ALK_VALUE_ARRAY || shape->as.array.len == 0 || shape->as.array.len > cap) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "input layer %s: batch_shape must be a list of 1 to %zu sizes",
                            layer->name, cap);
    }
    for (size_t d = 0; d < shape->as.array.len; d++) {
        const alk_value *dim = shape->as.array.items[d];
        if (dim->kind == ALK_VALUE_NIL || (dim->kind == ALK_VALUE_INT && dim->as.integer == -1)) {
            ret_dims[d] = -1;
        } else if (dim->kind == ALK_VALUE_INT && dim->as.integer >= 0) {
            ret_dims[d] = dim->as.integer;
        } else {
            return alk_diag_set(diag, ALK_EINVAL,
                                "input layer %s: batch_shape[%zu] is not a size or None",
                                layer->name, d);
        }
    }
    *ret_ndim = shape->as.array.len;
    return ALK_OK;
}
