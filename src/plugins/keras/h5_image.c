/*
 * HDF5 file images (libhdf5): Keras weights read from memory.
 *
 * A file image opens through the core driver without a backing store, so nothing touches the
 * disk; HDF5 copies the bytes once. Everything else that could reach outside the image is shut:
 * dynamic filter plugins are switched off for the process, every link access property list
 * carries an external-link callback that refuses the traversal, datasets with external or
 * virtual storage are refused, and the tree walk refuses soft and external links outright (Keras
 * writes hard links only). Filters that expand data (deflate, szip, scale-offset, n-bit) are
 * refused because HDF5 grows its inflate buffer without bound: a small chunk could inflate to
 * gigabytes before any check of ours ran; Keras never compresses its weights.
 *
 * Every size a file declares is checked before memory is allocated for it: dataset rank, element
 * and chunk counts and bytes (charged to the read's budget), attribute element counts and bytes,
 * link name lengths, the number of links visited (hard links may form cycles: the walk counts
 * visits, not objects, and stops at the depth limit). What libhdf5 1.10 trusts and misreads
 * (global heaps, string references, attribute messages, link indexes, symbol tables) is checked
 * on the raw image first, by h5_guard.c: the header of every group on a path before libhdf5
 * looks the next name up in it, and an object's header before libhdf5 opens or lists it or
 * reads an attribute.
 *
 * HDF5's automatic error printing is switched off (per thread: thread-safe builds keep it per
 * thread); when a call fails, the innermost message of HDF5's error stack is appended to ours.
 *
 * Thread rule: when libhdf5 is not thread-safe (H5is_library_threadsafe), a process-wide mutex
 * is held from alk__kh5_open to alk__kh5_close, so two reads never run HDF5 code at once. A
 * thread-safe libhdf5 serializes its own calls; open images then get distinct names, since the
 * core driver takes two open images of one name for the same file.
 */
#include "plugins/keras/model_file_int.h"

#include "core/alloc.h"
#include "graph/tensor.h"

#include <hdf5.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

struct alk__kh5 {
    hid_t file;
    hid_t lapl; /* link access: refuses external links */
    const char *label;
    bool locked;
    alk__kh5_guard guard; /* checks of what libhdf5 1.10 trusts (h5_guard.c) */
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t hdf5_mutex = PTHREAD_MUTEX_INITIALIZER;
static bool hdf5_ok;
static bool hdf5_threadsafe;
static atomic_ulong image_counter;

static void init_hdf5(void) {
    hbool_t threadsafe = 0;
    hdf5_ok = H5open() >= 0 && H5is_library_threadsafe(&threadsafe) >= 0;
    hdf5_threadsafe = threadsafe;
    /* Filters from shared libraries named by the file: never, for every HDF5 user of the
     * process (alkaid is the only one). */
    (void)H5PLset_loading_state(0);
}

/* ---- errors ------------------------------------------------------------------------------- */

/* The innermost message of HDF5's error stack. */
static herr_t innermost_error(unsigned n, const H5E_error2_t *error, void *data) {
    if (n == 0 && error->desc != NULL) {
        (void)snprintf(data, 160, "%s", error->desc);
    }
    return 0;
}

/* Sets `diag` to the message plus HDF5's own reason, clears HDF5's stack and returns `code`. */
static int fail(alk__kh5 *h5, alk_diag *diag, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(alk__kh5 *h5, alk_diag *diag, int code, const char *fmt, ...) {
    char message[400];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    char reason[160] = "";
    (void)H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_error, reason);
    (void)H5Eclear2(H5E_DEFAULT);
    return alk_diag_set(diag, code, "%s: %s%s%s%s", h5->label, message,
                        reason[0] != '\0' ? " (HDF5: " : "", reason, reason[0] != '\0' ? ")" : "");
}

/* ---- the guard's view of objects --------------------------------------------------------- */

/* The file address of the header of the object at `path` (relative to `loc`). */
static int header_address(alk__kh5 *h5, hid_t loc, const char *path, uint64_t *ret_addr,
                          alk_diag *diag) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    haddr_t addr;
    if (H5Oget_info_by_name3(loc, path, &info, H5O_INFO_BASIC, h5->lapl) < 0 ||
        H5VLnative_token_to_addr(h5->file, info.token, &addr) < 0) {
        return fail(h5, diag, ALK_EINVAL, "cannot locate the object '%.200s'", path);
    }
#else
    H5O_info_t info;
    if (H5Oget_info_by_name2(loc, path, &info, H5O_INFO_BASIC, h5->lapl) < 0) {
        return fail(h5, diag, ALK_EINVAL, "cannot locate the object '%.200s'", path);
    }
    haddr_t addr = info.addr;
#endif
    *ret_addr = addr;
    return ALK_OK;
}

/* Lets the guard check the header of the object at `path` (relative to `loc`). */
static int guard_header(alk__kh5 *h5, hid_t loc, const char *path, const char *what,
                        alk_diag *diag) {
    uint64_t header = 0;
    int rv = header_address(h5, loc, path, &header, diag);
    return rv != ALK_OK ? rv : alk__kh5_guard_attributes(&h5->guard, header, what, h5->label, diag);
}

/*
 * Lets the guard check the header of each group on the way to `path` (relative to `loc`) before
 * libhdf5 looks the next name up in it, then the object's own. With `ret_exists`, a name missing
 * on the way is not an error: *ret_exists says whether the object exists (and was checked).
 */
static int guard_way(alk__kh5 *h5, hid_t loc, const char *path, const char *what, bool *ret_exists,
                     alk_diag *diag) {
    char *way = alk_strdup(path);
    if (way == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    int rv = ALK_OK;
    bool exists = true;
    /* Each prefix ending before an inner '/' (a leading one names the root, checked at open),
     * then the whole path. */
    char *cut = way;
    do {
        cut = strchr(cut + 1, '/');
        if (cut != NULL) {
            *cut = '\0';
        }
        if (ret_exists != NULL) {
            exists = H5Lexists(loc, way, h5->lapl) > 0;
            (void)H5Eclear2(H5E_DEFAULT);
        }
        if (exists) {
            rv = guard_header(h5, loc, way, what, diag);
        }
        if (cut != NULL) {
            *cut = '/';
        }
    } while (rv == ALK_OK && exists && cut != NULL);
    alk_free(way);
    if (rv == ALK_OK && ret_exists != NULL) {
        *ret_exists = exists;
    }
    return rv;
}

/*
 * Lets the guard check the attribute messages, link indexes and symbol table of the object at
 * `path` (relative to `loc`, which must exist) before libhdf5 decodes them, as every attribute
 * call and every listing of a group does, and first those of each group on the way there;
 * `what` names the attribute or group in errors.
 */
static int guard_object(alk__kh5 *h5, hid_t loc, const char *path, const char *what,
                        alk_diag *diag) {
    return guard_way(h5, loc, path, what, NULL, diag);
}

/* ---- open and close ----------------------------------------------------------------------- */

static herr_t refuse_external_link(const char *parent_file, const char *parent_group,
                                   const char *child_file, const char *child_object,
                                   unsigned *acc_flags, hid_t fapl, void *data) {
    (void)parent_file, (void)parent_group, (void)child_file, (void)child_object;
    (void)acc_flags, (void)fapl, (void)data;
    return -1;
}

int alk__kh5_open(const void *bytes, size_t len, const char *label, alk__kh5 **ret_h5,
                  alk_diag *diag) {
    (void)pthread_once(&init_once, init_hdf5);
    if (!hdf5_ok) {
        return alk_diag_set(diag, ALK_EINTERNAL, "%s: libhdf5 failed to initialize", label);
    }
    alk__kh5 *h5 = alk_calloc(1, sizeof(*h5));
    if (h5 == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    *h5 = (alk__kh5){.file = H5I_INVALID_HID, .lapl = H5I_INVALID_HID, .label = label};
    int rv = alk__kh5_guard_init(&h5->guard, bytes, len, label, diag);
    if (rv != ALK_OK) {
        alk_free(h5);
        return rv;
    }
    if (!hdf5_threadsafe) {
        (void)pthread_mutex_lock(&hdf5_mutex);
        h5->locked = true;
    }
    (void)H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    h5->lapl = H5Pcreate(H5P_LINK_ACCESS);
    if (fapl < 0 || h5->lapl < 0 || H5Pset_elink_cb(h5->lapl, refuse_external_link, NULL) < 0 ||
        H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 || H5Pset_file_image(fapl, (void *)bytes, len) < 0 ||
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        rv = fail(h5, diag, ALK_ENOMEM, "cannot prepare the file image");
    } else {
        char name[64];
        (void)snprintf(name, sizeof(name), "alkaid-image-%lu", atomic_fetch_add(&image_counter, 1));
        /* The root group's header was checked by alk__kh5_guard_init. */
        h5->file = H5Fopen(name, H5F_ACC_RDONLY, fapl);
        if (h5->file < 0) {
            rv = fail(h5, diag, ALK_EINVAL, "not a readable HDF5 file");
        }
    }
    if (fapl >= 0) {
        (void)H5Pclose(fapl);
    }
    if (rv != ALK_OK) {
        alk__kh5_close(h5);
        return rv;
    }
    *ret_h5 = h5;
    return ALK_OK;
}

void alk__kh5_close(alk__kh5 *h5) {
    if (h5 == NULL) {
        return;
    }
    if (h5->file >= 0) {
        (void)H5Fclose(h5->file);
    }
    if (h5->lapl >= 0) {
        (void)H5Pclose(h5->lapl);
    }
    (void)H5Eclear2(H5E_DEFAULT);
    if (h5->locked) {
        (void)pthread_mutex_unlock(&hdf5_mutex);
    }
    alk_free(h5);
}

/* ---- attributes --------------------------------------------------------------------------- */

/* Closes every valid id of `ids` (n of them). */
static void close_ids(const hid_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= 0) {
            (void)H5Idec_ref(ids[i]);
        }
    }
}

/* Appends the `len`-byte string `s` as a STR value to `out` (a vector of const alk_value *). */
static int push_string(alk__kf_reader *r, const char *s, size_t len, const char *what, alk_vec *out,
                       alk_diag *diag) {
    const alk_value *v;
    int rv = alk__kf_string(r, s, len, what, &v, diag);
    if (rv == ALK_OK && alk_vec_push(out, &v) != ALK_OK) {
        rv = alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    return rv;
}

/* Fixed-length strings: `n` elements of `size` bytes, cut at the first NUL. */
static int read_fixed_strings(alk__kf_reader *r, alk__kh5 *h5, hid_t attr, hid_t file_type,
                              size_t n, const char *what, alk_vec *out, alk_diag *diag) {
    size_t size = H5Tget_size(file_type);
    size_t total;
    if (size == 0 || !alk_mul_size(size, n, &total) || total > r->limits->max_string_bytes) {
        return alk_diag_set(diag, ALK_ELIMIT, "%s: %s holds more than %zu bytes", h5->label, what,
                            r->limits->max_string_bytes);
    }
    char *buffer = alk_malloc(total + 1);
    hid_t mem_type = H5Tcopy(H5T_C_S1);
    int rv = ALK_OK;
    if (buffer == NULL || mem_type < 0) {
        rv = alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    } else if (H5Tset_size(mem_type, size) < 0 || H5Tset_strpad(mem_type, H5T_STR_NULLPAD) < 0 ||
               H5Tset_cset(mem_type, H5Tget_cset(file_type)) < 0 ||
               H5Aread(attr, mem_type, buffer) < 0) {
        rv = fail(h5, diag, ALK_EINVAL, "cannot read %s", what);
    }
    for (size_t i = 0; rv == ALK_OK && i < n; i++) {
        const char *s = buffer + i * size;
        const char *nul = memchr(s, '\0', size);
        rv = push_string(r, s, nul != NULL ? (size_t)(nul - s) : size, what, out, diag);
    }
    if (mem_type >= 0) {
        (void)H5Tclose(mem_type);
    }
    alk_free(buffer);
    return rv;
}

/* Variable-length strings: HDF5 allocates each one (inside the image's bounds); we copy them. */
static int read_variable_strings(alk__kf_reader *r, alk__kh5 *h5, hid_t attr, hid_t file_type,
                                 hid_t space, size_t n, const char *what, alk_vec *out,
                                 alk_diag *diag) {
    char **strings = alk_calloc(n + 1, sizeof(*strings));
    hid_t mem_type = H5Tcopy(H5T_C_S1);
    int rv = ALK_OK;
    bool read = false;
    if (strings == NULL || mem_type < 0) {
        rv = alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    } else if (H5Tset_size(mem_type, H5T_VARIABLE) < 0 ||
               H5Tset_cset(mem_type, H5Tget_cset(file_type)) < 0 ||
               H5Aread(attr, mem_type, strings) < 0) {
        rv = fail(h5, diag, ALK_EINVAL, "cannot read %s", what);
    } else {
        read = true;
    }
    for (size_t i = 0; rv == ALK_OK && i < n; i++) {
        const char *s = strings[i] != NULL ? strings[i] : "";
        size_t len = strnlen(s, r->limits->max_string_bytes + 1);
        rv = push_string(r, s, len, what, out, diag);
    }
    if (read) {
        (void)H5Dvlen_reclaim(mem_type, space, H5P_DEFAULT, strings);
    }
    if (mem_type >= 0) {
        (void)H5Tclose(mem_type);
    }
    alk_free(strings);
    return rv;
}

/*
 * Appends the strings of attribute `name` of the object at `path` (relative to `loc`) to `out`
 * (const alk_value *
 * STR values). A string attribute may be a scalar or 1-D, fixed or variable length; a numeric
 * attribute without elements (h5py's empty list, as Keras writes `weight_names` of a weightless
 * layer) gives no strings. *ret_scalar says whether the attribute was a scalar.
 */
static int read_strings(alk__kf_reader *r, alk__kh5 *h5, hid_t loc, const char *path,
                        const char *name, const char *what, alk_vec *out, bool *ret_scalar,
                        alk_diag *diag) {
    int rv = guard_object(h5, loc, path, what, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    hid_t ids[3] = {H5I_INVALID_HID, H5I_INVALID_HID, H5I_INVALID_HID};
    hid_t attr = ids[0] = H5Aopen_by_name(loc, path, name, H5P_DEFAULT, h5->lapl);
    hid_t type = attr >= 0 ? (ids[1] = H5Aget_type(attr)) : H5I_INVALID_HID;
    hid_t space = type >= 0 ? (ids[2] = H5Aget_space(attr)) : H5I_INVALID_HID;
    if (space < 0) {
        rv = fail(h5, diag, ALK_EINVAL, "cannot open %s", what);
        goto done;
    }
    H5S_class_t space_class = H5Sget_simple_extent_type(space);
    int rank = H5Sget_simple_extent_ndims(space);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    H5T_class_t type_class = H5Tget_class(type);
    if (space_class == H5S_NULL || rank > 1 || n < 0) {
        rv = alk_diag_set(diag, ALK_EINVAL, "%s: %s must be a string or a 1-D array of strings",
                          h5->label, what);
        goto done;
    }
    if (type_class != H5T_STRING) {
        if (n != 0 || (type_class != H5T_FLOAT && type_class != H5T_INTEGER)) {
            rv = alk_diag_set(diag, ALK_EINVAL, "%s: %s must hold strings", h5->label, what);
        }
        goto done;
    }
    rv = alk__kf_charge_objects(r, (size_t)n, what, diag);
    if (rv != ALK_OK) {
        goto done;
    }
    htri_t variable = H5Tis_variable_str(type);
    uint64_t header = 0;
    if (variable < 0) {
        rv = fail(h5, diag, ALK_EINVAL, "cannot read the type of %s", what);
    } else if (variable) {
        rv = header_address(h5, loc, path, &header, diag);
        if (rv == ALK_OK) {
            rv = alk__kh5_guard_vlen_attribute(&h5->guard, header, name,
                                               r->limits->max_string_bytes, what, h5->label, diag);
        }
        if (rv == ALK_OK) {
            rv = read_variable_strings(r, h5, attr, type, space, (size_t)n, what, out, diag);
        }
    } else {
        rv = read_fixed_strings(r, h5, attr, type, (size_t)n, what, out, diag);
    }
    *ret_scalar = space_class == H5S_SCALAR;
done:
    close_ids(ids, 3);
    return rv;
}

bool alk__kh5_has_root_attr(alk__kh5 *h5, const char *name) {
    bool found = H5Aexists(h5->file, name) > 0;
    (void)H5Eclear2(H5E_DEFAULT);
    return found;
}

/*
 * Opens the object at `path` (relative to `loc`) when it exists and has the HDF5 type `type`
 * (through hard or in-file soft links only), after the guard checked each group on the way and
 * the object itself: *ret_object is its id (the caller closes it), or H5I_INVALID_HID.
 */
static int open_if(alk__kh5 *h5, hid_t loc, const char *path, H5I_type_t type, const char *what,
                   hid_t *ret_object, alk_diag *diag) {
    bool exists = false;
    int rv = guard_way(h5, loc, path, what, &exists, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    hid_t object = exists ? H5Oopen(loc, path, h5->lapl) : H5I_INVALID_HID;
    if (object >= 0 && H5Iget_type(object) != type) {
        (void)H5Oclose(object);
        object = H5I_INVALID_HID;
    }
    (void)H5Eclear2(H5E_DEFAULT);
    *ret_object = object;
    return ALK_OK;
}

/* Whether `path` names a group, in *ret_group. */
static int find_group(alk__kh5 *h5, const char *path, bool *ret_group, alk_diag *diag) {
    char what[240];
    (void)snprintf(what, sizeof(what), "'%.200s'", path);
    hid_t group;
    int rv = open_if(h5, h5->file, path, H5I_GROUP, what, &group, diag);
    if (rv == ALK_OK) {
        *ret_group = group >= 0;
    }
    if (group >= 0) {
        (void)H5Oclose(group);
    }
    return rv;
}

int alk__kh5_has_root_group(alk__kh5 *h5, const char *name, bool *ret_found, alk_diag *diag) {
    return find_group(h5, name, ret_found, diag);
}

/* The scalar string attribute `name` of the object at `path` (relative to `loc`); NULL when there
 * is none. */
static int read_scalar_string(alk__kf_reader *r, alk__kh5 *h5, hid_t loc, const char *path,
                              const char *name, const char *what, const alk_value **ret_value,
                              alk_diag *diag) {
    int rv = guard_object(h5, loc, path, what, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    if (H5Aexists_by_name(loc, path, name, h5->lapl) <= 0) {
        (void)H5Eclear2(H5E_DEFAULT);
        *ret_value = NULL;
        return ALK_OK;
    }
    alk_vec strings;
    alk_vec_init(&strings, sizeof(const alk_value *));
    bool scalar = false;
    rv = read_strings(r, h5, loc, path, name, what, &strings, &scalar, diag);
    if (rv == ALK_OK && (!scalar || strings.len != 1)) {
        rv = alk_diag_set(diag, ALK_EINVAL, "%s: %s must be one string", h5->label, what);
    }
    if (rv == ALK_OK) {
        *ret_value = ALK_VEC_AT(&strings, const alk_value *, 0);
    }
    alk_vec_fini(&strings);
    return rv;
}

int alk__kh5_root_string(alk__kf_reader *r, alk__kh5 *h5, const char *name,
                         const alk_value **ret_value, alk_diag *diag) {
    char what[96];
    (void)snprintf(what, sizeof(what), "the root attribute '%.64s'", name);
    return read_scalar_string(r, h5, h5->file, "/", name, what, ret_value, diag);
}

/* ---- datasets ----------------------------------------------------------------------------- */

/* A little-endian IEEE binary16 type for reading half floats (HDF5 1.10 has no predefined one). */
static hid_t half_float_type(void) {
    hid_t type = H5Tcopy(H5T_IEEE_F32LE);
    if (type >= 0 && (H5Tset_fields(type, 15, 10, 5, 0, 10) < 0 || H5Tset_size(type, 2) < 0 ||
                      H5Tset_ebias(type, 15) < 0)) {
        (void)H5Tclose(type);
        type = H5I_INVALID_HID;
    }
    return type;
}

/* The payload dtype of a dataset's element type and the memory type to read it with (a new id,
 * or a predefined one: *ret_owned says whether to close it). */
static int element_type(alk__kf_reader *r, alk__kh5 *h5, hid_t dataset, hid_t type,
                        const char *address, alk_dtype *ret_dtype, hid_t *ret_mem_type,
                        bool *ret_owned, alk_diag *diag) {
    H5T_class_t type_class = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    /* Keras marks bfloat16 datasets with the attribute dtype = "bfloat16". */
    char what[240];
    (void)snprintf(what, sizeof(what), "the dtype attribute of '%.200s'", address);
    const alk_value *marker;
    int rv = read_scalar_string(r, h5, dataset, ".", "dtype", what, &marker, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    bool bfloat16 = marker != NULL && strcmp(marker->as.str.bytes, "bfloat16") == 0;
    *ret_owned = false;
    if (bfloat16 && size == 2 &&
        (type_class == H5T_INTEGER || type_class == H5T_OPAQUE || type_class == H5T_FLOAT)) {
        *ret_dtype = ALK_DTYPE_BF16;
        /* The raw 16-bit patterns: integers as little-endian u16, other classes as stored. */
        *ret_mem_type = type_class == H5T_INTEGER ? H5T_STD_U16LE : H5Tcopy(type);
        *ret_owned = type_class != H5T_INTEGER;
    } else if (type_class == H5T_FLOAT && (size == 2 || size == 4 || size == 8)) {
        *ret_dtype = size == 2 ? ALK_DTYPE_F2 : size == 4 ? ALK_DTYPE_F4 : ALK_DTYPE_F8;
        *ret_mem_type = size == 2 ? half_float_type() : size == 4 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE;
        *ret_owned = size == 2;
    } else if (type_class == H5T_INTEGER && (size == 1 || size == 2 || size == 4 || size == 8)) {
        static const alk_dtype signed_types[] = {
            ALK_DTYPE_I1, ALK_DTYPE_I2, 0, ALK_DTYPE_I4, 0, 0, 0, ALK_DTYPE_I8};
        static const alk_dtype unsigned_types[] = {
            ALK_DTYPE_U1, ALK_DTYPE_U2, 0, ALK_DTYPE_U4, 0, 0, 0, ALK_DTYPE_U8};
        bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
        *ret_dtype = is_signed ? signed_types[size - 1] : unsigned_types[size - 1];
        hid_t le_signed[] = {H5T_STD_I8LE, H5T_STD_I16LE, 0, H5T_STD_I32LE, 0, 0, 0, H5T_STD_I64LE};
        hid_t le_unsigned[] = {H5T_STD_U8LE, H5T_STD_U16LE, 0, H5T_STD_U32LE, 0, 0, 0,
                               H5T_STD_U64LE};
        *ret_mem_type = is_signed ? le_signed[size - 1] : le_unsigned[size - 1];
    } else if (type_class == H5T_ENUM && size == 1 && H5Tget_nmembers(type) == 2) {
        /* h5py's bool: an int8 enum {FALSE: 0, TRUE: 1}, read byte for byte. */
        *ret_dtype = ALK_DTYPE_B1;
        *ret_mem_type = H5Tcopy(type);
        *ret_owned = true;
    } else {
        static const char *const classes[] = {
            "integer",  "float",     "time", "string",          "bitfield", "opaque",
            "compound", "reference", "enum", "variable-length", "array"};
        return alk_diag_set(diag, ALK_EINVAL,
                            "%s: dataset '%.200s' has an unsupported element type (%s of %zu "
                            "bytes)",
                            h5->label, address,
                            (unsigned)type_class < 11 ? classes[type_class] : "unknown", size);
    }
    if (*ret_mem_type < 0) {
        return fail(h5, diag, ALK_ENOMEM, "cannot make a memory type for '%.200s'", address);
    }
    return ALK_OK;
}

/* Refuses storage that reaches outside the image or inflates data, and oversized chunks. */
static int check_storage(alk__kf_reader *r, alk__kh5 *h5, hid_t dcpl, size_t item,
                         const char *address, alk_diag *diag) {
    H5D_layout_t layout = H5Pget_layout(dcpl);
    if (layout != H5D_COMPACT && layout != H5D_CONTIGUOUS && layout != H5D_CHUNKED) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "%s: dataset '%.200s' has a virtual or unknown storage layout",
                            h5->label, address);
    }
    if (H5Pget_external_count(dcpl) != 0) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "%s: dataset '%.200s' keeps its data in external files", h5->label,
                            address);
    }
    int n_filters = H5Pget_nfilters(dcpl);
    for (int i = 0; i < n_filters; i++) {
        unsigned flags;
        size_t n_values = 0;
        unsigned config;
        H5Z_filter_t filter =
            H5Pget_filter2(dcpl, (unsigned)i, &flags, &n_values, NULL, 0, NULL, &config);
        if (filter != H5Z_FILTER_SHUFFLE && filter != H5Z_FILTER_FLETCHER32) {
            return alk_diag_set(diag, ALK_ENOTSUP,
                                "%s: dataset '%.200s' is compressed (HDF5 filter %d); only "
                                "uncompressed weights are read, as Keras writes them",
                                h5->label, address, (int)filter);
        }
    }
    if (n_filters < 0) {
        return fail(h5, diag, ALK_EINVAL, "cannot read the filters of '%.200s'", address);
    }
    if (layout == H5D_CHUNKED) {
        hsize_t chunk[H5S_MAX_RANK];
        int rank = H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk);
        size_t elements = 1;
        for (int d = 0; d < rank; d++) {
            if (chunk[d] > SIZE_MAX || !alk_mul_size(elements, (size_t)chunk[d], &elements) ||
                elements > r->limits->max_tensor_elements || elements > SIZE_MAX / item) {
                return alk_diag_set(diag, ALK_ELIMIT,
                                    "%s: dataset '%.200s' has chunks of more than %zu elements",
                                    h5->label, address, r->limits->max_tensor_elements);
            }
        }
        if (rank < 0) {
            return fail(h5, diag, ALK_EINVAL, "cannot read the chunks of '%.200s'", address);
        }
    }
    return ALK_OK;
}

/* The tensor {dtype, shape, data} of the open dataset `dataset`, its bytes in the arena. */
static int read_dataset(alk__kf_reader *r, alk__kh5 *h5, hid_t dataset, const char *address,
                        const alk_value **ret_tensor, alk_diag *diag) {
    hid_t ids[4] = {H5I_INVALID_HID, H5I_INVALID_HID, H5I_INVALID_HID, H5I_INVALID_HID};
    hid_t type = ids[0] = H5Dget_type(dataset);
    hid_t space = type >= 0 ? (ids[1] = H5Dget_space(dataset)) : H5I_INVALID_HID;
    hid_t dcpl = space >= 0 ? (ids[2] = H5Dget_create_plist(dataset)) : H5I_INVALID_HID;
    int rv = ALK_OK;
    if (dcpl < 0) {
        rv = fail(h5, diag, ALK_EINVAL, "cannot open dataset '%.200s'", address);
        goto done;
    }
    H5S_class_t space_class = H5Sget_simple_extent_type(space);
    int rank = H5Sget_simple_extent_ndims(space);
    if (space_class != H5S_SCALAR && space_class != H5S_SIMPLE) {
        rv = alk_diag_set(diag, ALK_EINVAL, "%s: dataset '%.200s' has no elements (null space)",
                          h5->label, address);
        goto done;
    }
    if (rank < 0 || (size_t)rank > r->limits->max_dims || rank > ALK_TENSOR_MAX_DIMS) {
        rv = alk_diag_set(diag, ALK_ELIMIT, "%s: dataset '%.200s' has rank %d; at most %zu",
                          h5->label, address, rank, r->limits->max_dims);
        goto done;
    }
    hsize_t dims[ALK_TENSOR_MAX_DIMS];
    size_t elements = 1;
    if (H5Sget_simple_extent_dims(space, dims, NULL) != rank) {
        rv = fail(h5, diag, ALK_EINVAL, "cannot read the shape of '%.200s'", address);
        goto done;
    }
    for (int d = 0; d < rank; d++) {
        if (dims[d] > SIZE_MAX || !alk_mul_size(elements, (size_t)dims[d], &elements) ||
            elements > r->limits->max_tensor_elements) {
            rv = alk_diag_set(diag, ALK_ELIMIT,
                              "%s: dataset '%.200s' has more than %zu elements (the limit)",
                              h5->label, address, r->limits->max_tensor_elements);
            goto done;
        }
    }
    alk_dtype dtype = ALK_DTYPE_F4;
    hid_t mem_type = H5I_INVALID_HID;
    bool owned = false;
    rv = element_type(r, h5, dataset, type, address, &dtype, &mem_type, &owned, diag);
    if (rv != ALK_OK) {
        goto done;
    }
    ids[3] = owned ? mem_type : H5I_INVALID_HID;
    rv = check_storage(r, h5, dcpl, H5Tget_size(type), address, diag);
    size_t nbytes = elements * alk_dtype_size(dtype); /* <= max_tensor_elements * 8 */
    char what[240];
    (void)snprintf(what, sizeof(what), "dataset '%.200s'", address);
    if (rv == ALK_OK) {
        rv = alk__kf_charge_bytes(r, nbytes, what, diag);
    }
    if (rv != ALK_OK) {
        goto done;
    }
    alk_value *data = alk_value_new(r->arena, ALK_VALUE_BIN);
    char *bytes = data != NULL ? alk_arena_alloc(r->arena, nbytes + 1) : NULL;
    if (bytes == NULL) {
        rv = alk_diag_set(diag, ALK_ENOMEM, "out of memory for %s", what);
        goto done;
    }
    if (nbytes > 0 && H5Dread(dataset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes) < 0) {
        rv = fail(h5, diag, ALK_EINVAL, "cannot read %s", what);
        goto done;
    }
    bytes[nbytes] = '\0';
    data->as.str.bytes = bytes;
    data->as.str.len = nbytes;
    const alk_value *shape_items[ALK_TENSOR_MAX_DIMS];
    for (int d = 0; d < rank; d++) {
        shape_items[d] = alk_value_new_int(r->arena, (int64_t)dims[d]);
        if (shape_items[d] == NULL) {
            rv = alk_diag_set(diag, ALK_ENOMEM, "out of memory");
            goto done;
        }
    }
    const char *dtype_name = alk_dtype_name(dtype);
    alk_value_pair fields[3] = {
        {alk_value_new_bytes(r->arena, ALK_VALUE_STR, "dtype", 5),
         alk_value_new_bytes(r->arena, ALK_VALUE_STR, dtype_name, strlen(dtype_name))},
        {alk_value_new_bytes(r->arena, ALK_VALUE_STR, "shape", 5),
         alk_value_new_array(r->arena, shape_items, (size_t)rank)},
        {alk_value_new_bytes(r->arena, ALK_VALUE_STR, "data", 4), data},
    };
    const alk_value *tensor = alk_value_new_map(r->arena, fields, 3);
    for (size_t i = 0; i < 3; i++) {
        if (fields[i].key == NULL || fields[i].value == NULL) {
            tensor = NULL;
        }
    }
    if (tensor == NULL) {
        rv = alk_diag_set(diag, ALK_ENOMEM, "out of memory");
        goto done;
    }
    *ret_tensor = tensor;
done:
    close_ids(ids, 4);
    return rv;
}

/* Reads the dataset at `path` (relative to `base`) into r->weights under `address`. */
static int add_dataset(alk__kf_reader *r, alk__kh5 *h5, hid_t dataset, const char *address,
                       alk_diag *diag) {
    const alk_value *tensor;
    int rv = read_dataset(r, h5, dataset, address, &tensor, diag);
    const alk_value *key = NULL;
    if (rv == ALK_OK) {
        rv = alk__kf_string(r, address, strlen(address), "a weight address", &key, diag);
    }
    if (rv == ALK_OK) {
        rv = alk__kf_put(&r->weights, key, tensor, diag);
    }
    return rv;
}

/* ---- Keras 3: the whole tree -------------------------------------------------------------- */

/* Path buffer of the walk: "layers/dense/vars", grown and cut as the walk goes. */
typedef struct walk {
    alk__kf_reader *r;
    alk__kh5 *h5;
    alk_buf path;
    alk_diag *diag;
} walk;

static int walk_group(walk *w, hid_t group, size_t depth);

/* The `name` attribute of a `vars` group into r->var_names. */
static int add_var_name(walk *w, hid_t group) {
    char what[240];
    (void)snprintf(what, sizeof(what), "the name attribute of '%.200s'", w->path.data);
    const alk_value *name;
    int rv = read_scalar_string(w->r, w->h5, group, ".", "name", what, &name, w->diag);
    const alk_value *key = NULL;
    if (rv == ALK_OK && name != NULL) {
        rv = alk__kf_string(w->r, w->path.data, w->path.len, "a group path", &key, w->diag);
        if (rv == ALK_OK) {
            rv = alk__kf_put(&w->r->var_names, key, name, w->diag);
        }
    }
    return rv;
}

/* The name of link `index` of `group` (alk_malloc'ed), checked to be a plain UTF-8 name. */
static int link_name(walk *w, hid_t group, hsize_t index, char **ret_name) {
    alk__kh5 *h5 = w->h5;
    const char *where = w->path.len > 0 ? w->path.data : "/";
    ssize_t len =
        H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, NULL, 0, h5->lapl);
    if (len < 0) {
        return fail(h5, w->diag, ALK_EINVAL, "cannot read link %llu of '%.200s'",
                    (unsigned long long)index, where);
    }
    if ((size_t)len > w->r->limits->max_string_bytes) {
        return alk_diag_set(w->diag, ALK_ELIMIT,
                            "%s: link %llu of '%.200s' has a name of %zd "
                            "bytes",
                            h5->label, (unsigned long long)index, where, len);
    }
    char *name = alk_malloc((size_t)len + 1);
    if (name == NULL) {
        return alk_diag_set(w->diag, ALK_ENOMEM, "out of memory");
    }
    if (H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, name, (size_t)len + 1,
                           h5->lapl) != len) {
        alk_free(name);
        return fail(h5, w->diag, ALK_EINVAL, "cannot read link %llu of '%.200s'",
                    (unsigned long long)index, where);
    }
    if (len == 0 || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
        !alk_utf8_valid(name, (size_t)len)) {
        alk_free(name);
        return alk_diag_set(w->diag, ALK_EINVAL,
                            "%s: link %llu of '%.200s' does not have a plain UTF-8 name", h5->label,
                            (unsigned long long)index, where);
    }
    *ret_name = name;
    return ALK_OK;
}

/* Visits the link `name` of `group` (its path is w->path): a dataset is read, a group walked, a
 * soft or external link refused. */
static int visit_link(walk *w, hid_t group, const char *name, size_t depth) {
    alk__kh5 *h5 = w->h5;
    H5L_info_t link;
    if (H5Lget_info(group, name, &link, h5->lapl) < 0) {
        return fail(h5, w->diag, ALK_EINVAL, "cannot read link '%.200s'", w->path.data);
    }
    if (link.type != H5L_TYPE_HARD) {
        return alk_diag_set(w->diag, ALK_EINVAL,
                            "%s: '%.200s' is %s link; Keras writes hard links only", h5->label,
                            w->path.data, link.type == H5L_TYPE_SOFT ? "a soft" : "an external");
    }
    /* Opening decodes the object's header (a dataset's type and shape): guarded first. */
    char what[240];
    (void)snprintf(what, sizeof(what), "'%.200s'", w->path.data);
    int rv = guard_object(h5, group, name, what, w->diag);
    if (rv != ALK_OK) {
        return rv;
    }
    hid_t object = H5Oopen(group, name, h5->lapl);
    if (object < 0) {
        return fail(h5, w->diag, ALK_EINVAL, "cannot open '%.200s'", w->path.data);
    }
    H5I_type_t type = H5Iget_type(object);
    if (type == H5I_GROUP) {
        rv = walk_group(w, object, depth + 1);
    } else if (type == H5I_DATASET) {
        rv = add_dataset(w->r, h5, object, w->path.data, w->diag);
    } /* a committed datatype carries no weights */
    (void)H5Oclose(object);
    return rv;
}

/* Visits link `index` of `group` with the walk's path extended by the link's name. */
static int visit_index(walk *w, hid_t group, hsize_t index, size_t depth) {
    char *name = NULL;
    int rv = link_name(w, group, index, &name);
    if (rv != ALK_OK) {
        return rv;
    }
    size_t old_len = w->path.len;
    if (old_len > 0) {
        alk_buf_putc(&w->path, '/');
    }
    alk_buf_puts(&w->path, name);
    rv = alk_buf_error(&w->path) == ALK_OK ? visit_link(w, group, name, depth)
                                           : alk_diag_set(w->diag, ALK_ENOMEM, "out of memory");
    alk_free(name);
    if (w->path.data != NULL) {
        w->path.len = old_len;
        w->path.data[old_len] = '\0';
    }
    return rv;
}

static int walk_group(walk *w, hid_t group, size_t depth) {
    if (depth > w->r->limits->max_depth) {
        return alk_diag_set(w->diag, ALK_ELIMIT, "%s: groups nest deeper than %zu at '%.200s'",
                            w->h5->label, w->r->limits->max_depth, w->path.data);
    }
    const char *where = w->path.len > 0 ? w->path.data : "/";
    char what[240];
    (void)snprintf(what, sizeof(what), "the links of '%.200s'", where);
    int rv = guard_object(w->h5, group, ".", what, w->diag);
    if (rv != ALK_OK) {
        return rv;
    }
    H5G_info_t info;
    if (H5Gget_info(group, &info) < 0) {
        return fail(w->h5, w->diag, ALK_EINVAL, "cannot list group '%.200s'", where);
    }
    if (info.nlinks > SIZE_MAX) {
        info.nlinks = SIZE_MAX;
    }
    rv = alk__kf_charge_objects(w->r, (size_t)info.nlinks, "HDF5 links", w->diag);
    if (rv == ALK_OK && w->path.len > 0) {
        const char *last = strrchr(w->path.data, '/');
        if (strcmp(last != NULL ? last + 1 : w->path.data, "vars") == 0) {
            rv = add_var_name(w, group);
        }
    }
    for (hsize_t i = 0; rv == ALK_OK && i < info.nlinks; i++) {
        rv = visit_index(w, group, i, depth);
    }
    return rv;
}

int alk__kh5_read_tree(alk__kf_reader *r, alk__kh5 *h5, const char *root, alk_diag *diag) {
    walk w = {.r = r, .h5 = h5, .diag = diag};
    alk_buf_init(&w.path);
    alk_buf_puts(&w.path, "");
    hid_t group = H5Oopen(h5->file, root, h5->lapl);
    int rv = alk_buf_error(&w.path) != ALK_OK ? alk_diag_set(diag, ALK_ENOMEM, "out of memory")
             : group >= 0 && H5Iget_type(group) == H5I_GROUP
                 ? walk_group(&w, group, 0)
                 : fail(h5, diag, ALK_EINVAL, "cannot open group '%s'", root);
    if (group >= 0) {
        (void)H5Oclose(group);
    }
    alk_buf_fini(&w.path);
    return rv;
}

/* ---- legacy: layer_names and weight_names ------------------------------------------------- */

/*
 * The name list `name` of the group at `path` into `out`: the attribute itself, or, when Keras
 * split a long list, its chunks name0, name1, ... in order. *ret_found is false when neither
 * exists.
 */
static int read_name_list(alk__kf_reader *r, alk__kh5 *h5, const char *path, const char *name,
                          alk_vec *out, bool *ret_found, alk_diag *diag) {
    char attr[96];
    char what[400];
    bool scalar;
    *ret_found = true;
    (void)snprintf(what, sizeof(what), "attribute '%s' of '%.200s'", name, path);
    int guarded = guard_object(h5, h5->file, path, what, diag);
    if (guarded != ALK_OK) {
        return guarded;
    }
    if (H5Aexists_by_name(h5->file, path, name, h5->lapl) > 0) {
        (void)snprintf(what, sizeof(what), "attribute '%s' of '%.200s'", name, path);
        return read_strings(r, h5, h5->file, path, name, what, out, &scalar, diag);
    }
    for (size_t chunk = 0;; chunk++) {
        (void)snprintf(attr, sizeof(attr), "%.60s%zu", name, chunk);
        if (H5Aexists_by_name(h5->file, path, attr, h5->lapl) <= 0) {
            (void)H5Eclear2(H5E_DEFAULT);
            *ret_found = chunk > 0;
            return ALK_OK;
        }
        (void)snprintf(what, sizeof(what), "attribute '%s' of '%.200s'", attr, path);
        int rv = alk__kf_charge_objects(r, 1, what, diag);
        if (rv == ALK_OK) {
            rv = read_strings(r, h5, h5->file, path, attr, what, out, &scalar, diag);
        }
        if (rv != ALK_OK) {
            return rv;
        }
    }
}

/* Whether `name` is a relative HDF5 path without empty components. */
static bool plain_path(const char *name) {
    return name[0] != '\0' && name[0] != '/' && strstr(name, "//") == NULL &&
           name[strlen(name) - 1] != '/';
}

/* One layer group: its weight_names and the datasets they name. */
static int read_layer(alk__kf_reader *r, alk__kh5 *h5, const char *root, const alk_value *layer,
                      bool required, alk_diag *diag) {
    alk_buf path;
    alk_buf_init(&path);
    alk_buf_printf(&path, "%s/%s", root, layer->as.str.bytes);
    alk_vec names;
    alk_vec_init(&names, sizeof(const alk_value *));
    bool found = false;
    int rv = alk_buf_error(&path);
    if (rv != ALK_OK) {
        rv = alk_diag_set(diag, rv, "out of memory");
        goto done;
    }
    if (plain_path(layer->as.str.bytes)) {
        rv = find_group(h5, path.data, &found, diag);
    }
    if (rv == ALK_OK && !found) {
        rv = required ? alk_diag_set(diag, ALK_EINVAL,
                                     "%s: layer_names lists '%.200s', which has no group in '%s'",
                                     h5->label, layer->as.str.bytes, root)
                      : ALK_OK;
        goto done;
    }
    if (rv == ALK_OK) {
        rv = read_name_list(r, h5, path.data, "weight_names", &names, &found, diag);
    }
    if (rv == ALK_OK && !found) {
        rv = required ? alk_diag_set(diag, ALK_EINVAL,
                                     "%s: layer group '%.200s' has no weight_names attribute",
                                     h5->label, layer->as.str.bytes)
                      : ALK_OK;
        goto done;
    }
    for (size_t i = 0; rv == ALK_OK && i < names.len; i++) {
        const alk_value *weight = ALK_VEC_AT(&names, const alk_value *, i);
        alk_buf full; /* the dataset's path: "<root>/<layer>/<weight>" */
        alk_buf_init(&full);
        alk_buf_printf(&full, "%s/%s", path.data, weight->as.str.bytes);
        hid_t dataset = H5I_INVALID_HID;
        if (alk_buf_error(&full) != ALK_OK) {
            rv = alk_diag_set(diag, ALK_ENOMEM, "out of memory");
        } else if (!plain_path(weight->as.str.bytes)) {
            rv = alk_diag_set(diag, ALK_EINVAL,
                              "%s: layer '%.200s' lists the weight name "
                              "'%.200s', which is not a relative path",
                              h5->label, layer->as.str.bytes, weight->as.str.bytes);
        } else {
            const char *address = full.data + strlen(root) + 1; /* "<layer>/<weight>" */
            char what[240];
            (void)snprintf(what, sizeof(what), "weight '%.200s'", address);
            rv = open_if(h5, h5->file, full.data, H5I_DATASET, what, &dataset, diag);
            if (rv == ALK_OK && dataset < 0) {
                rv = alk_diag_set(diag, ALK_EINVAL,
                                  "%s: weight '%.200s' of layer '%.200s' has no dataset", h5->label,
                                  weight->as.str.bytes, layer->as.str.bytes);
            } else if (rv == ALK_OK) {
                rv = add_dataset(r, h5, dataset, address, diag);
            }
        }
        if (dataset >= 0) {
            (void)H5Oclose(dataset);
        }
        alk_buf_fini(&full);
    }
    if (rv == ALK_OK && (required || names.len > 0)) {
        const alk_value *array =
            alk_value_new_array(r->arena, (const alk_value *const *)names.items, names.len);
        rv = array != NULL ? alk__kf_put(&r->weight_names, layer, array, diag)
                           : alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
done:
    alk_vec_fini(&names);
    alk_buf_fini(&path);
    return rv;
}

int alk__kh5_read_legacy(alk__kf_reader *r, alk__kh5 *h5, const char *root, alk_diag *diag) {
    bool found = false;
    int rv = read_name_list(r, h5, root, "layer_names", &r->layer_names, &found, diag);
    if (rv == ALK_OK && !found) {
        rv = alk_diag_set(diag, ALK_EINVAL, "%s: group '%s' has no layer_names attribute",
                          h5->label, root);
    }
    /* An empty root prefix keeps "/" from doubling: "/" + "/" + layer. */
    const char *prefix = strcmp(root, "/") == 0 ? "" : root;
    for (size_t i = 0; rv == ALK_OK && i < r->layer_names.len; i++) {
        rv = read_layer(r, h5, prefix, ALK_VEC_AT(&r->layer_names, const alk_value *, i), true,
                        diag);
    }
    if (rv == ALK_OK) {
        /* Keras 3 adds the model's own variables in a group no layer name lists. */
        const alk_value *top;
        rv = alk__kf_string(r, "top_level_model_weights", 23, "a layer name", &top, diag);
        if (rv == ALK_OK) {
            rv = read_layer(r, h5, prefix, top, false, diag);
        }
    }
    return rv;
}
