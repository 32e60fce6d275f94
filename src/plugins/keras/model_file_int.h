/*
 * Private to the model-file reader (model_file.c, zip_archive.c, h5_image.c): the state of one
 * read, which every part charges its bytes and objects to, and collects the payload's entries in.
 */
#ifndef ALK_PLUGINS_KERAS_MODEL_FILE_INT_H
#define ALK_PLUGINS_KERAS_MODEL_FILE_INT_H

#include "core/vec.h"
#include "plugins/keras/model_file.h"

#include <stdbool.h>

/* One read: its limits, budgets and the payload's growing maps. */
typedef struct alk__kf_reader {
    const alk_keras_file_limits *limits;
    alk_arena *arena;     /* the payload's; borrowed */
    uint64_t total_bytes; /* charged so far against limits->max_total_bytes */
    size_t objects;       /* charged so far against limits->max_objects */
    alk_vec weights;      /* alk_value_pair: address -> tensor */
    alk_vec var_names;    /* alk_value_pair: vars group path -> name */
    alk_vec weight_names; /* alk_value_pair: layer -> array of str */
    alk_vec layer_names;  /* const alk_value *: str */
} alk__kf_reader;

/* Charges `bytes` of `what` ("entry 'config.json'") to the byte budget; ALK_ELIMIT past it. */
int alk__kf_charge_bytes(alk__kf_reader *r, uint64_t bytes, const char *what, alk_diag *diag);

/* Charges `n` objects to the object budget; ALK_ELIMIT naming `what` past it. */
int alk__kf_charge_objects(alk__kf_reader *r, size_t n, const char *what, alk_diag *diag);

/*
 * A STR value holding a copy of `len` bytes at `s` (borrowed), after checking the length against
 * max_string_bytes and the bytes for UTF-8 without NUL; errors name `what`.
 */
int alk__kf_string(alk__kf_reader *r, const char *s, size_t len, const char *what,
                   const alk_value **ret_value, alk_diag *diag);

/* Appends the pair (key, value) to `map` (one of the reader's alk_value_pair vectors). */
int alk__kf_put(alk_vec *map, const alk_value *key, const alk_value *value, alk_diag *diag);

/*
 * Checks that `text` (len bytes, from `source`, named in errors) is a Keras model config: JSON as
 * Python writes it (NaN, Infinity) holding an object with a str `class_name` and a `config`, and
 * not the index of sharded weights (ALK_ENOTSUP). The text is parsed within the limits and not
 * kept: the tracer parses it itself.
 */
int alk__kf_check_config(const alk_keras_file_limits *limits, const char *text, size_t len,
                         const char *source, alk_diag *diag);

/* ---- zip archives (zip_archive.c, libzip) ------------------------------------------------- */

typedef struct alk__kzip alk__kzip;

/*
 * Opens the zip archive in `bytes` (len bytes, borrowed until alk__kzip_close) and checks its
 * entry count against the limits. Errors: ALK_EINVAL with libzip's reason, ALK_ELIMIT.
 */
int alk__kzip_open(alk__kf_reader *r, const void *bytes, size_t len, alk__kzip **ret_zip,
                   alk_diag *diag);

/* Closes `zip` (NULL: nothing). */
void alk__kzip_close(alk__kzip *zip);

/* Number of entries, and the name of entry `index` ("" for an unnamed entry). */
size_t alk__kzip_count(const alk__kzip *zip);
const char *alk__kzip_name(const alk__kzip *zip, size_t index);

/*
 * Reads the uncompressed bytes of entry `index` into *ret_data (NUL-terminated, *ret_len bytes;
 * the caller frees it with alk_free). The entry's
 * declared size is charged to the byte budget (and must be at most `max_bytes`) before anything
 * is read; an entry that holds more or fewer bytes than it declares, is encrypted or uses a
 * method other than stored or deflate is refused, naming the entry.
 */
int alk__kzip_read(alk__kf_reader *r, alk__kzip *zip, size_t index, uint64_t max_bytes,
                   char **ret_data, size_t *ret_len, alk_diag *diag);

/* ---- checks of a raw HDF5 image that libhdf5 1.10 leaves out (h5_guard.c) ---------------- */

typedef struct alk__kh5_guard {
    const unsigned char *bytes; /* the image, borrowed */
    size_t len;
    uint64_t base;    /* file addresses are relative to it */
    size_t addr_size; /* the superblock's sizes of offsets and lengths */
    size_t length_size;
    unsigned leaf_k;     /* a symbol table node holds up to 2 × leaf_k links */
    unsigned internal_k; /* a group B-tree node has up to 2 × internal_k children */
    unsigned chunk_k;    /* a chunk index B-tree node, up to 2 × chunk_k */
} alk__kh5_guard;

/*
 * Prepares `g` for the image `bytes` (len bytes, borrowed while `g` is used) and checks every
 * global heap collection in it; `label` names the file in errors. ALK_EINVAL when the
 * superblock is not one this reader takes or a collection is malformed.
 */
int alk__kh5_guard_init(alk__kh5_guard *g, const void *bytes, size_t len, const char *label,
                        alk_diag *diag);

/*
 * Checks the attribute messages in the header of the object at file address `header_addr`
 * before libhdf5 decodes them (it decodes them all to find one): each must have a known version,
 * a name ending in its NUL inside the message, and its type and shape inside the message; its
 * link info and attribute info messages, before libhdf5 follows them: every heap and B-tree
 * address undefined or inside the image; and a group's symbol table (h5_guard_btree.c), before
 * libhdf5 lists it or looks a name up in it. `what` names the attribute looked for in errors.
 * ALK_EINVAL, or ALK_ENOMEM.
 */
int alk__kh5_guard_attributes(const alk__kh5_guard *g, uint64_t header_addr, const char *what,
                              const char *label, alk_diag *diag);

/*
 * Checks the variable-length string attribute `name` of the object whose header is at file
 * address `header_addr` before libhdf5 reads it: every string must name an existing object of a
 * checked collection, at least as long as it claims and at most `max_len` bytes. `what` names
 * the attribute in errors. ALK_EINVAL, ALK_ELIMIT, or ALK_ENOTSUP for dense attribute storage.
 */
int alk__kh5_guard_vlen_attribute(const alk__kh5_guard *g, uint64_t header_addr, const char *name,
                                  uint64_t max_len, const char *what, const char *label,
                                  alk_diag *diag);

/* ---- HDF5 file images (h5_image.c, libhdf5) ----------------------------------------------- */

typedef struct alk__kh5 alk__kh5;

/*
 * Opens the HDF5 file image `bytes` (len bytes, borrowed until alk__kh5_close; HDF5 reads a copy)
 * read-only, after alk__kh5_guard_init; `label` (borrowed for the life of the handle) names the
 * file in errors ("model.weights.h5"). Takes the process-wide HDF5 mutex when libhdf5 is not
 * thread-safe; alk__kh5_close releases it: the caller closes before opening another image.
 */
int alk__kh5_open(const void *bytes, size_t len, const char *label, alk__kh5 **ret_h5,
                  alk_diag *diag);

/* Closes `h5` and releases the HDF5 mutex (NULL: nothing). */
void alk__kh5_close(alk__kh5 *h5);

/* Whether the root group has an attribute called `name`. */
bool alk__kh5_has_root_attr(alk__kh5 *h5, const char *name);

/* Whether the root group has a link called `name` to a group, in *ret_found; the group's
 * header is checked by the guard first (ALK_EINVAL when malformed). */
int alk__kh5_has_root_group(alk__kh5 *h5, const char *name, bool *ret_found, alk_diag *diag);

/*
 * The string attribute `name` of the root group (fixed or variable length, str or bytes, as h5py
 * and Keras write them), as a STR value. *ret_value is NULL when the attribute does not exist.
 */
int alk__kh5_root_string(alk__kf_reader *r, alk__kh5 *h5, const char *name,
                         const alk_value **ret_value, alk_diag *diag);

/*
 * Keras 3 weights: every dataset under the group `root` ("/") into r->weights, addressed by its
 * path relative to `root`, and the `name` attribute of every group called `vars` into
 * r->var_names.
 */
int alk__kh5_read_tree(alk__kf_reader *r, alk__kh5 *h5, const char *root, alk_diag *diag);

/*
 * Legacy weights under the group `root` ("/model_weights", or "/" for a weights-only file): the
 * `layer_names` attribute (or its chunks layer_names0, 1, …) into r->layer_names, each layer's
 * `weight_names` into r->weight_names and the datasets they name into r->weights, addressed
 * "<layer>/<weight name>"; likewise `top_level_model_weights` when it lists weights.
 */
int alk__kh5_read_legacy(alk__kf_reader *r, alk__kh5 *h5, const char *root, alk_diag *diag);

#endif
