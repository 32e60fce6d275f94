/*
 * Keras model files, read from memory into one value tree: the Keras payload of the wire
 * (frontends.md §7.2), whether the client sent the file's bytes or a decoded payload.
 *
 * Formats, detected from the bytes (never from a file name):
 *   - `.keras` (Keras 3): a zip of config.json, metadata.json and model.weights.h5;
 *   - legacy full-model `.h5` (Keras 3 and Keras 2): root attribute `model_config`, weights under
 *     group `model_weights` listed by the `layer_names` / `weight_names` attributes;
 *   - the pair model JSON + weights HDF5 (Keras 2 `to_json()` + `save_weights()`, or a Keras 3
 *     config with its `.weights.h5`), through alk_keras_pair_read.
 * Refused with a message saying why: weights in npz, sharded weights (a weights index JSON),
 * weights-only files passed as a model, and anything that is neither zip, HDF5 nor JSON.
 *
 * The payload (every string valid UTF-8, every node in the caller's arena):
 *   {"format":   "keras_v3" | "legacy_h5",
 *    "config":   str, the model config JSON text (config.json, `model_config`, model.json),
 *    "metadata": keras_v3: str, the text of metadata.json (absent without one);
 *                legacy_h5: map {"keras_version": str, "backend": str} (the keys present),
 *    "weights":  map, weight address -> tensor {"dtype", "shape", "data"} (graph/tensor.h):
 *                keras_v3: the dataset's path in model.weights.h5 ("layers/dense/vars/0");
 *                legacy_h5: the path under `model_weights` ("dense/dense/kernel:0"),
 *    "var_names":    keras_v3: map, `…/vars` group path -> its `name` attribute,
 *    "weight_names": legacy_h5: map, layer -> array of its weight names in file order,
 *    "layer_names":  legacy_h5: array, the layers in the file's order}
 * HDF5 datasets keep their element type: f2 f4 f8, bf16 (Keras' `dtype = "bfloat16"`
 * attribute), signed and unsigned integers of 1 to 8 bytes, b1 (h5py's boolean enum). The config
 * is checked to be a JSON object with `class_name` and `config`; it is not interpreted here.
 *
 * Safety: every size the file declares is checked against alk_keras_file_limits before memory is
 * allocated for it (archive entries, declared against actual entry sizes, total decompressed
 * bytes, dataset elements and rank, string and attribute lengths, group nesting, objects). Soft
 * and external HDF5 links, external and virtual dataset storage and every HDF5 filter that can
 * expand data (deflate, szip, plugins; plugin loading is switched off) are refused, so a file
 * can neither read other files nor inflate past the limits. What libhdf5 1.10 trusts and
 * misreads (global heap collections, variable-length string references, attribute messages) is
 * checked on the raw image before libhdf5 reads it (h5_guard.c). HDF5's error printing is
 * silenced; its innermost message is appended to ours.
 *
 * Thread rule: reentrant. HDF5 calls are serialized by one process-wide mutex (Debian's libhdf5
 * may be built without thread safety), so HDF5 reads of concurrent calls do not overlap.
 */
#ifndef ALK_PLUGINS_KERAS_MODEL_FILE_H
#define ALK_PLUGINS_KERAS_MODEL_FILE_H

#include "core/arena.h"
#include "core/err.h"
#include "graph/value.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct alk_keras_file_limits {
    size_t max_entries;         /* entries of a zip archive */
    uint64_t max_total_bytes;   /* decompressed entries plus dataset bytes of one read */
    size_t max_string_bytes;    /* one JSON text, attribute, link or weight name */
    size_t max_tensor_elements; /* elements of one dataset (and of one HDF5 chunk) */
    size_t max_dims;            /* rank of one dataset, at most ALK_TENSOR_MAX_DIMS */
    size_t max_depth;           /* nesting of HDF5 groups */
    size_t max_objects;         /* HDF5 links visited plus names listed in attributes */
} alk_keras_file_limits;

/* Defaults: 1024 entries, 1 GiB in total, 16 MiB strings, 16 Mi elements, 8 dims, depth 64,
 * 1 Mi objects. */
void alk_keras_file_limits_default(alk_keras_file_limits *limits);

/* Whether `bytes` (len bytes) start like a file alk_keras_file_read takes apart: a zip archive or
 * an HDF5 file (a model JSON is told from a graph message by its content, not here). */
bool alk_keras_file_is_container(const void *bytes, size_t len);

/*
 * Reads one model file: `bytes` (len bytes, borrowed for the call) of a `.keras` zip or a legacy
 * full-model `.h5`. On success *ret_payload is the payload above, allocated in `arena`
 * (borrowed; the payload lives as long as the arena); `limits` NULL means the defaults. Errors
 * name the culprit (the entry, dataset, attribute or limit): ALK_EINVAL for a malformed or
 * inconsistent file, ALK_ENOTSUP for npz or sharded weights, ALK_ELIMIT for a limit, ALK_ENOMEM.
 * A model JSON alone, a weights-only HDF5 file or a sharded-weights index is refused with a hint
 * to give the pair.
 */
int alk_keras_file_read(const void *bytes, size_t len, const alk_keras_file_limits *limits,
                        alk_arena *arena, const alk_value **ret_payload, alk_diag *diag);

/*
 * Reads the pair model JSON (`json`, json_len bytes) + weights HDF5 (`weights`, weights_len
 * bytes), both borrowed for the call: a Keras 2 weights file (`layer_names` at its root) gives
 * format "legacy_h5" with addresses relative to the file's root; a Keras 3 `.weights.h5` gives
 * "keras_v3". Ownership, limits and errors as alk_keras_file_read.
 */
int alk_keras_pair_read(const void *json, size_t json_len, const void *weights, size_t weights_len,
                        const alk_keras_file_limits *limits, alk_arena *arena,
                        const alk_value **ret_payload, alk_diag *diag);

/*
 * The payload of a request's `model` map (borrowed): `{"file": bin}` or `{"file": bin,
 * "weights_file": bin}` are read as above; otherwise `model` must itself be a decoded payload,
 * which is checked (formats, types, every tensor against the limits, every weight name of
 * `weight_names` present in `weights`) and returned as is. Other keys of `model` are ignored
 * (they stay readable in `model`). Ownership, limits and errors as alk_keras_file_read; errors
 * about the decoded form name the field ("model.weights['layers/dense/vars/0'].shape").
 */
int alk_keras_model_payload(const alk_value *model, const alk_keras_file_limits *limits,
                            alk_arena *arena, const alk_value **ret_payload, alk_diag *diag);

#endif
