/*
 * Zip archives in memory (libzip): the container of a `.keras` file.
 *
 * libzip reads the archive from our buffer without copying it (zip_source_buffer_create) and
 * checks the central directory against the local headers (ZIP_CHECKCONS). The sizes an entry
 * declares are only claims: before reading, the declared size is checked against the caller's
 * bound and charged to the read's byte budget; while reading, at most one byte more than
 * declared is accepted, so an entry that inflates past its claim (a zip bomb) or stops short of
 * it is refused without ever holding more than the claim in memory. Keras stores its entries
 * uncompressed; deflate is accepted for archives repacked by other tools, nothing else.
 *
 * Thread rule: a handle belongs to one thread; libzip keeps no global state.
 */
#include "plugins/keras/model_file_int.h"

#include "core/alloc.h"

#include <inttypes.h>
#include <string.h>
#include <zip.h>

struct alk__kzip {
    zip_t *archive;
    size_t n_entries;
    const char **names; /* libzip's strings, valid while the archive is open */
};

int alk__kzip_open(alk__kf_reader *r, const void *bytes, size_t len, alk__kzip **ret_zip,
                   alk_diag *diag) {
    zip_error_t error;
    zip_error_init(&error);
    alk__kzip *zip = alk_calloc(1, sizeof(*zip));
    zip_source_t *source = zip != NULL ? zip_source_buffer_create(bytes, len, 0, &error) : NULL;
    int rv = ALK_OK;
    if (source == NULL) {
        rv = alk_diag_set(diag, ALK_ENOMEM, "out of memory");
        goto fail;
    }
    zip->archive = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
    if (zip->archive == NULL) {
        zip_source_free(source);
        /* libzip refuses duplicate names itself: which of two config.json would Keras take? */
        rv = zip_error_code_zip(&error) == ZIP_ER_EXISTS
                 ? alk_diag_set(diag, ALK_EINVAL, "the archive has two entries of the same name")
                 : alk_diag_set(diag, ALK_EINVAL, "not a readable zip archive: %s",
                                zip_error_strerror(&error));
        goto fail;
    }
    zip_int64_t n = zip_get_num_entries(zip->archive, 0);
    if (n < 0 || (uint64_t)n > r->limits->max_entries) {
        rv = alk_diag_set(diag, ALK_ELIMIT, "the archive has %" PRId64 " entries; at most %zu",
                          (int64_t)n, r->limits->max_entries);
        goto fail;
    }
    zip->n_entries = (size_t)n;
    zip->names = alk_calloc(zip->n_entries + 1, sizeof(*zip->names));
    if (zip->names == NULL) {
        rv = alk_diag_set(diag, ALK_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < zip->n_entries; i++) {
        const char *name = zip_get_name(zip->archive, i, 0);
        zip->names[i] = name != NULL ? name : "";
    }
    zip_error_fini(&error);
    *ret_zip = zip;
    return ALK_OK;
fail:
    zip_error_fini(&error);
    alk__kzip_close(zip);
    return rv;
}

void alk__kzip_close(alk__kzip *zip) {
    if (zip == NULL) {
        return;
    }
    if (zip->archive != NULL) {
        zip_discard(zip->archive); /* read-only: nothing to write back */
    }
    alk_free(zip->names);
    alk_free(zip);
}

size_t alk__kzip_count(const alk__kzip *zip) {
    return zip->n_entries;
}

const char *alk__kzip_name(const alk__kzip *zip, size_t index) {
    return zip->names[index];
}

/* The entry's metadata, refusing what we do not read: encryption, unusual methods. */
static int stat_entry(alk__kzip *zip, size_t index, zip_stat_t *st, alk_diag *diag) {
    const char *name = zip->names[index];
    zip_stat_init(st);
    if (zip_stat_index(zip->archive, index, 0, st) != 0) {
        return alk_diag_set(diag, ALK_EINVAL, "entry '%.200s': %s", name,
                            zip_strerror(zip->archive));
    }
    if (!(st->valid & ZIP_STAT_SIZE) || !(st->valid & ZIP_STAT_COMP_METHOD)) {
        return alk_diag_set(diag, ALK_EINVAL, "entry '%.200s' has no size or method", name);
    }
    if ((st->valid & ZIP_STAT_ENCRYPTION_METHOD) && st->encryption_method != ZIP_EM_NONE) {
        return alk_diag_set(diag, ALK_ENOTSUP, "entry '%.200s' is encrypted", name);
    }
    if (st->comp_method != ZIP_CM_STORE && st->comp_method != ZIP_CM_DEFLATE) {
        return alk_diag_set(diag, ALK_ENOTSUP,
                            "entry '%.200s' uses compression method %u; only stored and deflate "
                            "are read",
                            name, (unsigned)st->comp_method);
    }
    return ALK_OK;
}

int alk__kzip_read(alk__kf_reader *r, alk__kzip *zip, size_t index, uint64_t max_bytes,
                   char **ret_data, size_t *ret_len, alk_diag *diag) {
    const char *name = zip->names[index];
    zip_stat_t st;
    int rv = stat_entry(zip, index, &st, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    if (st.size > max_bytes || st.size > SIZE_MAX - 2) {
        return alk_diag_set(diag, ALK_ELIMIT,
                            "entry '%.200s' declares %" PRIu64 " bytes; at most %" PRIu64
                            " are read",
                            name, (uint64_t)st.size, max_bytes);
    }
    char what[240];
    (void)snprintf(what, sizeof(what), "entry '%.200s'", name);
    rv = alk__kf_charge_bytes(r, st.size, what, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    size_t declared = (size_t)st.size;
    /* Room for one byte past the claim (reading it proves the claim false) and a NUL. */
    char *data = alk_malloc(declared + 2);
    if (data == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory for %s", what);
    }
    zip_file_t *file = zip_fopen_index(zip->archive, index, 0);
    if (file == NULL) {
        alk_free(data);
        return alk_diag_set(diag, ALK_EINVAL, "%s: %s", what, zip_strerror(zip->archive));
    }
    size_t got = 0;
    while (got <= declared) {
        zip_int64_t n = zip_fread(file, data + got, declared + 1 - got);
        if (n < 0) {
            rv = alk_diag_set(diag, ALK_EINVAL, "%s is corrupt: %s", what, zip_file_strerror(file));
            break;
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    (void)zip_fclose(file);
    if (rv == ALK_OK && got != declared) {
        rv = got > declared ? alk_diag_set(diag, ALK_EINVAL,
                                           "%s declares %zu bytes but holds more (a zip bomb?)",
                                           what, declared)
                            : alk_diag_set(diag, ALK_EINVAL,
                                           "%s declares %zu bytes but holds only %zu (truncated?)",
                                           what, declared, got);
    }
    if (rv != ALK_OK) {
        alk_free(data);
        return rv;
    }
    data[declared] = '\0';
    *ret_data = data;
    *ret_len = declared;
    return ALK_OK;
}
