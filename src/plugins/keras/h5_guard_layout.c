/*
 * The check of a dataset's data layout message on the raw image (h5_guard.c runs it on every
 * object header it walks), before libhdf5 1.10 opens or reads the dataset.
 *
 * libhdf5 1.10.8 copies a compact dataset's data of the size the message claims and later reads
 * the dataset's whole size from that copy (a size of 0 made it copy from NULL: found by
 * fuzzing); it reads a contiguous dataset's data and a chunked dataset's index at the address
 * the message gives, and an address near 2^64 wraps its end-of-file check. So: compact data
 * inside the message (h5_guard.c compares its size with the dataset's), contiguous data and
 * chunk indexes at an undefined address or inside the image, a version 1 B-tree index checked
 * whole (h5_guard_btree.c). Chunk indexes of version 4 layouts other than a single chunk or
 * implicit ones (fixed and extensible arrays, version 2 B-trees: h5py writes them only with
 * libver "latest" and chunks, Keras never) and virtual datasets are refused (ALK_ENOTSUP).
 *
 * Thread rule: reentrant; reads only the image of the guard it is given.
 */
#include "plugins/keras/h5_guard_int.h"

/* Whether `addr` (a file address of `n` bytes of data) is undefined or lies in the image. */
static bool data_address_sound(const alk__kh5_guard *g, uint64_t addr, uint64_t n) {
    const uint64_t undefined = alk__kh5_undefined(g);
    uint64_t at = alk__kh5_offset_of(g, addr);
    return addr == undefined || (at != UINT64_MAX && n <= g->len - at);
}

int alk__kh5_guard_layout(const alk__kh5_guard *g, const unsigned char *m, uint64_t size,
                          uint64_t *ret_compact) {
    enum {
        COMPACT = 0,
        CONTIGUOUS = 1,
        CHUNKED = 2,
        VIRTUAL = 3,
        INDEX_SINGLE = 1,
        INDEX_IMPLICIT = 2,
        INDEX_V2_BTREE = 5,
    };
    const uint64_t a = g->addr_size;
    *ret_compact = UINT64_MAX;
    if (size < 2 || m[0] < 1 || m[0] > 4) {
        return ALK_EINVAL;
    }
    unsigned version = m[0];
    unsigned layout = version < 3 ? (size >= 8 ? m[2] : 255) : m[1];
    uint64_t q = version < 3 ? 8 : 2;
    uint64_t dims = version < 3 ? m[1] : (layout == CHUNKED && size > 2 ? m[2] : 0);
    if (version < 3) {
        /* Dimensionality, class, reserved; the address (but for compact data); the sizes of
         * the dimensions (4 bytes each); a chunked layout's element size. */
        uint64_t addr_at = q;
        q += (layout != COMPACT ? a : 0) + 4 * dims + (layout == CHUNKED ? 4 : 0);
        if (layout > CHUNKED || q > size) {
            return ALK_EINVAL;
        }
        if (layout != COMPACT) {
            uint64_t addr = alk__kh5_load_le(m + addr_at, a);
            return layout == CHUNKED                ? alk__kh5_guard_chunk_index(g, addr, dims)
                   : data_address_sound(g, addr, 0) ? ALK_OK
                                                    : ALK_EINVAL;
        }
    }
    if (layout == COMPACT) {
        /* Version 1 and 2 count the data in 4 bytes, later versions in 2. */
        uint64_t width = version < 3 ? 4 : 2;
        if (q > size || size - q < width || alk__kh5_load_le(m + q, width) > size - q - width) {
            return ALK_EINVAL;
        }
        *ret_compact = alk__kh5_load_le(m + q, width);
        return ALK_OK;
    }
    if (layout == CONTIGUOUS) {
        return size >= q + a + g->length_size &&
                       data_address_sound(g, alk__kh5_load_le(m + q, a),
                                          alk__kh5_load_le(m + q + a, g->length_size))
                   ? ALK_OK
                   : ALK_EINVAL;
    }
    if (layout != CHUNKED) {
        return layout == VIRTUAL && version == 4 ? ALK_ENOTSUP : ALK_EINVAL;
    }
    if (version == 3) {
        /* Dimensionality, the B-tree's address, the chunk's sizes (4 bytes each). */
        return size >= 3 + a + 4 * dims
                   ? alk__kh5_guard_chunk_index(g, alk__kh5_load_le(m + 3, a), dims)
                   : ALK_EINVAL;
    }
    /* Version 4: flags, dimensionality, the width of a size, the sizes, the index type, its
     * information (a filtered single chunk: its size and filter mask), the index's address. */
    if (size < 5) {
        return ALK_EINVAL;
    }
    unsigned flags = m[2];
    uint64_t width = m[4];
    dims = m[3];
    q = 5 + width * dims;
    if (width < 1 || width > 8 || q >= size) {
        return ALK_EINVAL;
    }
    unsigned index = m[q++];
    if (index > INDEX_IMPLICIT) {
        return index <= INDEX_V2_BTREE ? ALK_ENOTSUP : ALK_EINVAL;
    }
    /* A filtered single chunk: its size and filter mask come first. Type 0 (a version 1
     * B-tree) never appears in a version 4 layout. */
    q += index == INDEX_SINGLE && (flags & 0x02) ? g->length_size + 4 : 0;
    if (index == 0 || q > size || size - q < a) {
        return ALK_EINVAL;
    }
    return data_address_sound(g, alk__kh5_load_le(m + q, a), 0) ? ALK_OK : ALK_EINVAL;
}
