/*
 * Keras model files: format detection, the three readers of model_file.h and the checks of a
 * decoded payload. The containers are read by zip_archive.c and h5_image.c; this file decides
 * what a file is, which of its parts to read, and assembles the payload.
 *
 * A file is told by its first bytes: "PK\3\4" (or an empty archive's "PK\5\6") is a `.keras`
 * zip, the HDF5 signature (at offset 0 or a power of two from 512, where a user block ends) an
 * `.h5`, a `{` a JSON text. Inside an HDF5 file, the root attribute `model_config` makes it a full
 * legacy model; `layer_names` at the root or `layers`/`vars` groups make it a weights-only file,
 * which needs its model JSON (alk_keras_pair_read).
 *
 * Thread rule: reentrant (see h5_image.c for HDF5).
 */
#include "plugins/keras/model_file_int.h"

#include "core/alloc.h"
#include "graph/tensor.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void alk_keras_file_limits_default(alk_keras_file_limits *limits) {
    *limits = (alk_keras_file_limits){
        .max_entries = 1024,
        .max_total_bytes = (uint64_t)1 << 30,
        .max_string_bytes = (size_t)16 << 20,
        .max_tensor_elements = (size_t)16 << 20,
        .max_dims = 8,
        .max_depth = 64,
        .max_objects = (size_t)1 << 20,
    };
}

/* ---- the reader's state (model_file_int.h) ------------------------------------------------ */

int alk__kf_charge_bytes(alk__kf_reader *r, uint64_t bytes, const char *what, alk_diag *diag) {
    if (bytes > r->limits->max_total_bytes - r->total_bytes) {
        return alk_diag_set(diag, ALK_ELIMIT,
                            "%s needs %" PRIu64 " bytes, past the limit of %" PRIu64
                            " bytes read from one model",
                            what, bytes, r->limits->max_total_bytes);
    }
    r->total_bytes += bytes;
    return ALK_OK;
}

int alk__kf_charge_objects(alk__kf_reader *r, size_t n, const char *what, alk_diag *diag) {
    if (n > r->limits->max_objects - r->objects) {
        return alk_diag_set(diag, ALK_ELIMIT,
                            "%s: the model has more than %zu HDF5 objects "
                            "and names",
                            what, r->limits->max_objects);
    }
    r->objects += n;
    return ALK_OK;
}

int alk__kf_string(alk__kf_reader *r, const char *s, size_t len, const char *what,
                   const alk_value **ret_value, alk_diag *diag) {
    if (len > r->limits->max_string_bytes) {
        return alk_diag_set(diag, ALK_ELIMIT, "%s has %zu bytes; at most %zu", what, len,
                            r->limits->max_string_bytes);
    }
    if (memchr(s, '\0', len) != NULL || !alk_utf8_valid(s, len)) {
        return alk_diag_set(diag, ALK_EINVAL, "%s is not UTF-8 text", what);
    }
    const alk_value *v = alk_value_new_bytes(r->arena, ALK_VALUE_STR, s, len);
    if (v == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    *ret_value = v;
    return ALK_OK;
}

int alk__kf_put(alk_vec *map, const alk_value *key, const alk_value *value, alk_diag *diag) {
    alk_value_pair pair = {key, value};
    return alk_vec_push(map, &pair) == ALK_OK ? ALK_OK
                                              : alk_diag_set(diag, ALK_ENOMEM, "out of memory");
}

static void reader_init(alk__kf_reader *r, const alk_keras_file_limits *limits,
                        alk_keras_file_limits *defaults, alk_arena *arena) {
    if (limits == NULL) {
        alk_keras_file_limits_default(defaults);
        limits = defaults;
    }
    *r = (alk__kf_reader){.limits = limits, .arena = arena};
    alk_vec_init(&r->weights, sizeof(alk_value_pair));
    alk_vec_init(&r->var_names, sizeof(alk_value_pair));
    alk_vec_init(&r->weight_names, sizeof(alk_value_pair));
    alk_vec_init(&r->layer_names, sizeof(const alk_value *));
}

static void reader_fini(alk__kf_reader *r) {
    alk_vec_fini(&r->weights);
    alk_vec_fini(&r->var_names);
    alk_vec_fini(&r->weight_names);
    alk_vec_fini(&r->layer_names);
}

/* ---- building the payload ----------------------------------------------------------------- */

/* The payload map: format, config, metadata (when not NULL) and the collected maps. */
static int finish(alk__kf_reader *r, bool legacy, const alk_value *config,
                  const alk_value *metadata, const alk_value **ret_payload, alk_diag *diag) {
    alk_arena *a = r->arena;
    const char *format = legacy ? "legacy_h5" : "keras_v3";
    alk_value_pair pairs[6];
    size_t n = 0;
    pairs[n++] = (alk_value_pair){alk_value_new_bytes(a, ALK_VALUE_STR, "format", 6),
                                  alk_value_new_bytes(a, ALK_VALUE_STR, format, strlen(format))};
    pairs[n++] = (alk_value_pair){alk_value_new_bytes(a, ALK_VALUE_STR, "config", 6), config};
    if (metadata != NULL) {
        pairs[n++] =
            (alk_value_pair){alk_value_new_bytes(a, ALK_VALUE_STR, "metadata", 8), metadata};
    }
    pairs[n++] = (alk_value_pair){alk_value_new_bytes(a, ALK_VALUE_STR, "weights", 7),
                                  alk_value_new_map(a, r->weights.items, r->weights.len)};
    if (legacy) {
        pairs[n++] =
            (alk_value_pair){alk_value_new_bytes(a, ALK_VALUE_STR, "weight_names", 12),
                             alk_value_new_map(a, r->weight_names.items, r->weight_names.len)};
        pairs[n++] =
            (alk_value_pair){alk_value_new_bytes(a, ALK_VALUE_STR, "layer_names", 11),
                             alk_value_new_array(a, r->layer_names.items, r->layer_names.len)};
    } else {
        pairs[n++] = (alk_value_pair){alk_value_new_bytes(a, ALK_VALUE_STR, "var_names", 9),
                                      alk_value_new_map(a, r->var_names.items, r->var_names.len)};
    }
    for (size_t i = 0; i < n; i++) {
        if (pairs[i].key == NULL || pairs[i].value == NULL) {
            return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
        }
    }
    const alk_value *payload = alk_value_new_map(a, pairs, n);
    if (payload == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    *ret_payload = payload;
    return ALK_OK;
}

/* ---- JSON texts --------------------------------------------------------------------------- */

/* Parses `text` (Python's JSON, which Keras writes) into a scratch tree within the limits. */
static int parse_json(const alk_keras_file_limits *limits, const char *text, size_t len,
                      alk_arena *scratch, const alk_value **ret_value, alk_diag *diag) {
    /* The text is at most max_string_bytes long, which bounds its nodes too; nesting keeps the
     * value tree's default (64). */
    alk_value_limits value_limits;
    alk_value_limits_default(&value_limits);
    value_limits.max_string = limits->max_string_bytes;
    return alk_value_from_python_json(text, len, &value_limits, scratch, ret_value, diag);
}

/* Whether the JSON map `root` is the index of sharded weights (Keras' `.weights.json`). */
static bool is_shard_index(const alk_value *root) {
    return alk_value_get(root, "weight_map") != NULL && alk_value_get(root, "class_name") == NULL;
}

int alk__kf_check_config(const alk_keras_file_limits *limits, const char *text, size_t len,
                         const char *source, alk_diag *diag) {
    alk_arena scratch;
    alk_arena_init(&scratch, 0);
    const alk_value *root;
    int rv = parse_json(limits, text, len, &scratch, &root, diag);
    if (rv != ALK_OK) {
        alk_diag_prefix(diag, "%s: ", source);
    } else if (is_shard_index(root)) {
        rv = alk_diag_set(diag, ALK_ENOTSUP,
                          "%s is the index of sharded weights (a .weights.json); sharded "
                          "weights are not supported: save the model as one .keras file",
                          source);
    } else {
        const alk_value *class_name = alk_value_get(root, "class_name");
        const alk_value *config = alk_value_get(root, "config");
        if (class_name == NULL || class_name->kind != ALK_VALUE_STR || config == NULL) {
            rv = alk_diag_set(diag, ALK_EINVAL,
                              "%s is not a Keras model config (a JSON object with class_name "
                              "and config)",
                              source);
        }
    }
    alk_arena_fini(&scratch);
    return rv;
}

/* alk__kf_check_config, then the text as a STR value. */
static int check_config(alk__kf_reader *r, const char *text, size_t len, const char *source,
                        const alk_value **ret_config, alk_diag *diag) {
    int rv = alk__kf_check_config(r->limits, text, len, source, diag);
    return rv == ALK_OK ? alk__kf_string(r, text, len, source, ret_config, diag) : rv;
}

/* metadata.json: a JSON object, kept as text. */
static int check_metadata(alk__kf_reader *r, const char *text, size_t len,
                          const alk_value **ret_metadata, alk_diag *diag) {
    alk_arena scratch;
    alk_arena_init(&scratch, 0);
    const alk_value *root;
    int rv = parse_json(r->limits, text, len, &scratch, &root, diag);
    if (rv != ALK_OK) {
        alk_diag_prefix(diag, "metadata.json: ");
    } else if (root->kind != ALK_VALUE_MAP) {
        rv = alk_diag_set(diag, ALK_EINVAL, "metadata.json is not a JSON object");
    }
    alk_arena_fini(&scratch);
    return rv == ALK_OK ? alk__kf_string(r, text, len, "metadata.json", ret_metadata, diag) : rv;
}

/* ---- .keras ------------------------------------------------------------------------------- */

/* The entries of a .keras archive that matter, by index (-1: absent). */
typedef struct keras_entries {
    long config;
    long metadata;
    long weights;
    long npz;
    long shard; /* an index JSON or a shard of sharded weights */
} keras_entries;

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s);
    size_t k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Finds the entries (libzip has refused duplicate names already). */
static void find_entries(alk__kzip *zip, keras_entries *e) {
    *e = (keras_entries){-1, -1, -1, -1, -1};
    for (size_t i = 0; i < alk__kzip_count(zip); i++) {
        const char *name = alk__kzip_name(zip, i);
        long *slot = strcmp(name, "config.json") == 0         ? &e->config
                     : strcmp(name, "metadata.json") == 0     ? &e->metadata
                     : strcmp(name, "model.weights.h5") == 0  ? &e->weights
                     : strcmp(name, "model.weights.npz") == 0 ? &e->npz
                     : (ends_with(name, ".weights.json") || ends_with(name, ".weights.h5"))
                         ? &e->shard
                         : NULL;
        if (slot != NULL) { /* else assets/ or anything else Keras does not read either */
            *slot = (long)i;
        }
    }
}

/* Why an archive without model.weights.h5 cannot be read. */
static int missing_weights(alk__kzip *zip, const keras_entries *e, alk_diag *diag) {
    if (e->npz >= 0) {
        return alk_diag_set(diag, ALK_ENOTSUP,
                            "the archive keeps its weights in model.weights.npz; only HDF5 "
                            "weights are read: save with weights_format=\"h5\" (the default)");
    }
    if (e->shard >= 0) {
        return alk_diag_set(diag, ALK_ENOTSUP,
                            "the archive holds sharded weights ('%.200s'); sharded weights are "
                            "not supported: save the model as one .keras file",
                            alk__kzip_name(zip, (size_t)e->shard));
    }
    char names[256] = "";
    size_t len = 0;
    for (size_t i = 0; i < alk__kzip_count(zip) && i < 8; i++) {
        int n = snprintf(names + len, sizeof(names) - len, "%s'%.40s'", i > 0 ? ", " : "",
                         alk__kzip_name(zip, i));
        len = n > 0 && (size_t)n < sizeof(names) - len ? len + (size_t)n : len;
    }
    return alk_diag_set(diag, ALK_EINVAL,
                        "the archive has no model.weights.h5, so it is not a .keras model "
                        "(entries: %s%s)",
                        len > 0 ? names : "none", alk__kzip_count(zip) > 8 ? ", ..." : "");
}

/* Reads the JSON entry `index` ("config.json") and checks it with `check`. */
static int read_json_entry(alk__kf_reader *r, alk__kzip *zip, long index, bool config,
                           const alk_value **ret_value, alk_diag *diag) {
    char *text;
    size_t len;
    int rv = alk__kzip_read(r, zip, (size_t)index, r->limits->max_string_bytes, &text, &len, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    rv = config ? check_config(r, text, len, "config.json", ret_value, diag)
                : check_metadata(r, text, len, ret_value, diag);
    alk_free(text);
    return rv;
}

/* Keras 3 weights of an HDF5 image into the reader (the whole tree from the root). */
static int read_v3_weights(alk__kf_reader *r, const void *bytes, size_t len, const char *label,
                           alk_diag *diag) {
    alk__kh5 *h5;
    int rv = alk__kh5_open(bytes, len, label, &h5, diag);
    if (rv == ALK_OK) {
        rv = alk__kh5_read_tree(r, h5, "/", diag);
        alk__kh5_close(h5);
    }
    return rv;
}

static int read_keras_zip(alk__kf_reader *r, const void *bytes, size_t len,
                          const alk_value **ret_payload, alk_diag *diag) {
    alk__kzip *zip = NULL;
    keras_entries e;
    const alk_value *config = NULL;
    const alk_value *metadata = NULL;
    char *weights = NULL;
    size_t weights_len = 0;
    int rv = alk__kzip_open(r, bytes, len, &zip, diag);
    if (rv == ALK_OK) {
        find_entries(zip, &e);
    }
    if (rv == ALK_OK && e.weights < 0) {
        rv = missing_weights(zip, &e, diag);
    }
    if (rv == ALK_OK && e.config < 0) {
        rv = alk_diag_set(diag, ALK_EINVAL, "the archive has no config.json");
    }
    if (rv == ALK_OK) {
        rv = read_json_entry(r, zip, e.config, true, &config, diag);
    }
    if (rv == ALK_OK && e.metadata >= 0) {
        rv = read_json_entry(r, zip, e.metadata, false, &metadata, diag);
    }
    if (rv == ALK_OK) {
        rv = alk__kzip_read(r, zip, (size_t)e.weights, r->limits->max_total_bytes, &weights,
                            &weights_len, diag);
    }
    alk__kzip_close(zip);
    if (rv == ALK_OK) {
        rv = read_v3_weights(r, weights, weights_len, "model.weights.h5", diag);
    }
    alk_free(weights);
    if (rv == ALK_OK) {
        rv = finish(r, false, config, metadata, ret_payload, diag);
    }
    return rv;
}

/* ---- legacy .h5 --------------------------------------------------------------------------- */

/* {"keras_version", "backend"} from the root attributes present (NULL when neither is). */
static int legacy_metadata(alk__kf_reader *r, alk__kh5 *h5, const alk_value **ret_metadata,
                           alk_diag *diag) {
    static const char *const keys[] = {"keras_version", "backend"};
    alk_value_pair pairs[2];
    size_t n = 0;
    for (size_t i = 0; i < 2; i++) {
        const alk_value *value;
        int rv = alk__kh5_root_string(r, h5, keys[i], &value, diag);
        if (rv != ALK_OK) {
            return rv;
        }
        if (value != NULL) {
            pairs[n].key = alk_value_new_bytes(r->arena, ALK_VALUE_STR, keys[i], strlen(keys[i]));
            pairs[n++].value = value;
            if (pairs[n - 1].key == NULL) {
                return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
            }
        }
    }
    *ret_metadata = n > 0 ? alk_value_new_map(r->arena, pairs, n) : NULL;
    if (n > 0 && *ret_metadata == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    return ALK_OK;
}

/* Whether the root group holds a `layers` or a `vars` group (Keras 3 weights), in *ret_found. */
static int has_v3_groups(alk__kh5 *h5, bool *ret_found, alk_diag *diag) {
    bool layers = false;
    bool vars = false;
    int rv = alk__kh5_has_root_group(h5, "layers", &layers, diag);
    if (rv == ALK_OK && !layers) {
        rv = alk__kh5_has_root_group(h5, "vars", &vars, diag);
    }
    if (rv == ALK_OK) {
        *ret_found = layers || vars;
    }
    return rv;
}

/* Why an HDF5 file without `model_config` is not a model on its own. */
static int not_a_model(alk__kh5 *h5, const char *label, alk_diag *diag) {
    if (alk__kh5_has_root_attr(h5, "layer_names")) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "%s holds only weights (Keras save_weights): give the model JSON "
                            "with it (alkaidc convert model.json --weights FILE)",
                            label);
    }
    bool v3 = false;
    int rv = has_v3_groups(h5, &v3, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    if (v3) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "%s is a Keras 3 weights file (.weights.h5) without its model: "
                            "convert the .keras file, or give config.json with --weights",
                            label);
    }
    return alk_diag_set(diag, ALK_EINVAL,
                        "%s is an HDF5 file but not a Keras model (no root attribute "
                        "model_config)",
                        label);
}

static int read_legacy_h5(alk__kf_reader *r, const void *bytes, size_t len,
                          const alk_value **ret_payload, alk_diag *diag) {
    alk__kh5 *h5;
    const char *label = "the .h5 file";
    int rv = alk__kh5_open(bytes, len, label, &h5, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    const alk_value *text = NULL;
    const alk_value *config = NULL;
    const alk_value *metadata = NULL;
    rv = alk__kh5_root_string(r, h5, "model_config", &text, diag);
    if (rv == ALK_OK && text == NULL) {
        rv = not_a_model(h5, label, diag);
    }
    if (rv == ALK_OK) {
        rv = check_config(r, text->as.str.bytes, text->as.str.len,
                          "the root attribute model_config", &config, diag);
    }
    if (rv == ALK_OK) {
        rv = legacy_metadata(r, h5, &metadata, diag);
    }
    bool weights = false;
    if (rv == ALK_OK) {
        rv = alk__kh5_has_root_group(h5, "model_weights", &weights, diag);
    }
    if (rv == ALK_OK && !weights) {
        rv = alk_diag_set(diag, ALK_EINVAL, "%s has a model_config but no model_weights group",
                          label);
    }
    if (rv == ALK_OK) {
        rv = alk__kh5_read_legacy(r, h5, "/model_weights", diag);
    }
    alk__kh5_close(h5);
    if (rv == ALK_OK) {
        rv = finish(r, true, config, metadata, ret_payload, diag);
    }
    return rv;
}

/* ---- entries ------------------------------------------------------------------------------ */

static bool is_zip(const unsigned char *p, size_t len) {
    return len >= 4 && p[0] == 'P' && p[1] == 'K' &&
           ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6));
}

static bool is_hdf5(const unsigned char *p, size_t len) {
    static const unsigned char signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    /* The superblock sits at 0 or after a user block of 512, 1024, 2048, ... bytes. */
    for (size_t at = 0; at < len && len - at >= sizeof(signature); at = at == 0 ? 512 : 2 * at) {
        if (memcmp(p + at, signature, sizeof(signature)) == 0) {
            return true;
        }
    }
    return false;
}

/* Whether the text starts (after white space and a UTF-8 byte order mark) with '{'. */
static bool is_json_object(const unsigned char *p, size_t len) {
    size_t i = len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf ? 3 : 0;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) {
        i++;
    }
    return i < len && p[i] == '{';
}

bool alk_keras_file_is_container(const void *bytes, size_t len) {
    return is_zip(bytes, len) || is_hdf5(bytes, len);
}

/* A JSON file given alone: sharded index or model JSON, both refused with a hint. */
static int lone_json(alk__kf_reader *r, const char *text, size_t len, alk_diag *diag) {
    const alk_value *config;
    int rv = check_config(r, text, len, "the JSON file", &config, diag);
    if (rv == ALK_OK) {
        rv = alk_diag_set(diag, ALK_EINVAL,
                          "the JSON file is a model config without weights: give its weights "
                          "file too (alkaidc convert model.json --weights weights.h5)");
    }
    return rv;
}

int alk_keras_file_read(const void *bytes, size_t len, const alk_keras_file_limits *limits,
                        alk_arena *arena, const alk_value **ret_payload, alk_diag *diag) {
    alk_keras_file_limits defaults;
    alk__kf_reader r;
    reader_init(&r, limits, &defaults, arena);
    int rv;
    if (is_zip(bytes, len)) {
        rv = read_keras_zip(&r, bytes, len, ret_payload, diag);
    } else if (is_hdf5(bytes, len)) {
        rv = read_legacy_h5(&r, bytes, len, ret_payload, diag);
    } else if (is_json_object(bytes, len)) {
        rv = lone_json(&r, bytes, len, diag);
    } else {
        rv = alk_diag_set(diag, ALK_EINVAL,
                          "not a Keras model file: neither a .keras zip, an HDF5 .h5 file nor a "
                          "model JSON (%zu bytes)",
                          len);
    }
    reader_fini(&r);
    return rv;
}

/*
 * The weights of a pair from `h5`: Keras 2's (a root attribute layer_names; *ret_legacy true,
 * its metadata in *ret_metadata) or Keras 3's (a layers or vars group).
 */
static int read_weights_h5(alk__kf_reader *r, alk__kh5 *h5, const char *label, bool *ret_legacy,
                           const alk_value **ret_metadata, alk_diag *diag) {
    if (alk__kh5_has_root_attr(h5, "model_config")) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "%s is a full model (.h5 with model_config): convert it alone", label);
    }
    if (alk__kh5_has_root_attr(h5, "layer_names")) {
        *ret_legacy = true;
        int rv = legacy_metadata(r, h5, ret_metadata, diag);
        return rv == ALK_OK ? alk__kh5_read_legacy(r, h5, "/", diag) : rv;
    }
    bool v3 = false;
    int rv = has_v3_groups(h5, &v3, diag);
    if (rv == ALK_OK && !v3) {
        rv = alk_diag_set(diag, ALK_EINVAL,
                          "%s is not a Keras weights file (no layer_names attribute and no "
                          "layers or vars group)",
                          label);
    }
    return rv == ALK_OK ? alk__kh5_read_tree(r, h5, "/", diag) : rv;
}

int alk_keras_pair_read(const void *json, size_t json_len, const void *weights, size_t weights_len,
                        const alk_keras_file_limits *limits, alk_arena *arena,
                        const alk_value **ret_payload, alk_diag *diag) {
    alk_keras_file_limits defaults;
    alk__kf_reader r;
    reader_init(&r, limits, &defaults, arena);
    const alk_value *config = NULL;
    const alk_value *metadata = NULL;
    alk__kh5 *h5 = NULL;
    bool legacy = false;
    const char *label = "the weights file";
    int rv = ALK_OK;
    if (!is_json_object(json, json_len)) {
        rv = alk_diag_set(diag, ALK_EINVAL, "the model file of a pair must be a JSON config");
    }
    if (rv == ALK_OK) {
        rv = check_config(&r, json, json_len, "the model JSON", &config, diag);
    }
    if (rv == ALK_OK && !is_hdf5(weights, weights_len)) {
        rv = alk_diag_set(diag, ALK_EINVAL, "%s is not an HDF5 file", label);
    }
    if (rv == ALK_OK) {
        rv = alk__kh5_open(weights, weights_len, label, &h5, diag);
    }
    if (rv == ALK_OK) {
        rv = read_weights_h5(&r, h5, label, &legacy, &metadata, diag);
    }
    alk__kh5_close(h5);
    if (rv == ALK_OK) {
        rv = finish(&r, legacy, config, metadata, ret_payload, diag);
    }
    reader_fini(&r);
    return rv;
}
