/*
 * Checks of a raw HDF5 image that libhdf5 1.10 leaves out, made before libhdf5 reads the parts
 * concerned (found by fuzzing; tests/fuzz/known_libhdf5 lists what remains).
 *
 * Variable-length strings (Keras' `name` attributes, Keras 3's name lists and model config) live
 * in global heap collections and are reached through references stored in the attribute; libhdf5
 * 1.10 trusts both. A collection whose objects do not tile it makes H5HG's decoder loop forever
 * or wrap its pointer, and H5HG_read copy past the collection; a reference to an object index
 * past the collection's table makes H5HG_read copy from wild memory; a reference claiming up to
 * 4 GiB (or of characters claiming kilobytes each) makes H5T__conv_vlen allocate and clear that
 * much before it reads the object. So:
 *   - alk__kh5_guard_init walks every collection of the image (every "GCOL" signature: libhdf5
 *     decodes one only where its signature is) and refuses one whose objects do not tile it;
 *   - alk__kh5_guard_vlen_attribute, called before each read of a variable-length string
 *     attribute, finds the attribute message in its object's header and checks each reference:
 *     an existing object of a checked collection, at least as long as the claimed length, of
 *     one-byte characters.
 * Dense storage is reached the same way: a group's link info message (and an object's attribute
 * info message) gives the addresses of a fractal heap and B-trees, which libhdf5 reads without
 * checking them against the end of the file. alk__kh5_guard_attributes, called for every object
 * before libhdf5 reads its attributes or links, refuses addresses outside the image; it checks
 * an old-style group's symbol table whole (h5_guard_btree.c) for the same reason. The root
 * group's header is checked by alk__kh5_guard_init, since libhdf5 reads it while it opens the
 * file. File addresses count from the superblock, as for libhdf5 (whatever its base field says).
 *
 * The parser knows what h5py writes for Keras: superblocks 0 to 3, object headers version 1 and
 * 2 with continuation chunks, attribute messages version 1 to 3 kept in the header. An attribute
 * it cannot find there (dense storage) is refused rather than read unchecked. Every read of the
 * image is bounds-checked; a malformed header is refused.
 *
 * Thread rule: reentrant; a guard only reads the image it was made for.
 */
#define _GNU_SOURCE /* memmem */
#include "plugins/keras/h5_guard_int.h"

#include <inttypes.h>
#include <string.h>

enum {
    MSG_DATASPACE = 0x01,
    MSG_LINK_INFO = 0x02,
    MSG_DATATYPE = 0x03,
    MSG_LINK = 0x06,
    MSG_LAYOUT = 0x08,
    MSG_ATTRIBUTE = 0x0c,
    MSG_CONTINUATION = 0x10,
    MSG_SYMBOL_TABLE = 0x11,
    MSG_ATTRIBUTE_INFO = 0x15,
    CLASS_VLEN = 9,
    MAX_CHUNKS = 64, /* of one object header: Keras' have one or two */
};

static bool read_k_values(alk__kh5_guard *g, uint64_t extension);

/*
 * The superblock's base address, sizes of offsets and lengths and symbol table K values, and
 * the file address of the root group's header.
 */
static bool read_superblock(alk__kh5_guard *g, uint64_t *ret_root, uint64_t *ret_extension) {
    /* Superblocks from version 2 on leave the K values out: libhdf5 takes its defaults, or those
     * of the superblock extension (read_k_values). Version 0 has no chunk index K either. */
    enum { DEFAULT_LEAF_K = 4, DEFAULT_INTERNAL_K = 16, DEFAULT_CHUNK_K = 32 };
    static const unsigned char signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    const unsigned char *p = g->bytes;
    for (size_t at = 0; at < g->len && g->len - at >= 16; at = at == 0 ? 512 : 2 * at) {
        if (memcmp(p + at, signature, 8) != 0) {
            continue;
        }
        unsigned version = p[at + 8];
        size_t base_at = version == 0 ? at + 24 : version == 1 ? at + 28 : at + 12;
        g->addr_size = version < 2 ? p[at + 13] : p[at + 9];
        g->length_size = version < 2 ? p[at + 14] : p[at + 10];
        /* After the base: three addresses (free space, end of file, driver information; from
         * version 2: extension, end of file, root header), then before version 2 the root
         * group's symbol table entry (a name offset, then the header's address). */
        size_t root_at =
            base_at + (version < 2 ? 4 * g->addr_size + g->length_size : 3 * g->addr_size);
        if (version > 3 || (g->addr_size != 4 && g->addr_size != 8) ||
            (g->length_size != 4 && g->length_size != 8) ||
            !alk__kh5_inside(g, root_at, g->addr_size)) {
            return false;
        }
        /* libhdf5 takes the superblock's position as the base, whatever the field says. */
        g->base = at;
        g->leaf_k = version < 2 ? (unsigned)alk__kh5_load_le(p + at + 16, 2) : DEFAULT_LEAF_K;
        g->internal_k =
            version < 2 ? (unsigned)alk__kh5_load_le(p + at + 18, 2) : DEFAULT_INTERNAL_K;
        g->chunk_k = version == 1 ? (unsigned)alk__kh5_load_le(p + at + 20, 2) : DEFAULT_CHUNK_K;
        *ret_root = alk__kh5_load_le(p + root_at, g->addr_size);
        *ret_extension =
            version < 2 ? UINT64_MAX : alk__kh5_load_le(p + base_at + g->addr_size, g->addr_size);
        return true;
    }
    return false;
}

/* The step from the object at `q` of a collection of `size` bytes to the next, or 0 when the
 * object does not fit in the collection. */
static uint64_t object_step(const alk__kh5_guard *g, const unsigned char *collection, uint64_t size,
                            uint64_t q, unsigned *ret_index, uint64_t *ret_object_size) {
    const uint64_t object_header = 8 + g->length_size; /* index, refs, reserved, size */
    unsigned index = (unsigned)alk__kh5_load_le(collection + q, 2);
    uint64_t object_size = alk__kh5_load_le(collection + q + 8, g->length_size);
    uint64_t room = size - q;
    uint64_t padded = (object_size + 7) & ~(uint64_t)7;
    *ret_index = index;
    *ret_object_size = object_size;
    if (index > 0) { /* header + size rounded up to 8 */
        return object_size <= room - object_header && padded <= room - object_header
                   ? object_header + padded
                   : 0;
    }
    /* The free-space object counts its header in its size. */
    return object_size >= object_header && object_size <= room ? object_size : 0;
}

/*
 * Calls `visit` for each object of the collection at image offset `at` (known to fit in the
 * image); returns false as soon as an object does not fit, or `visit` says stop (true).
 */
static bool walk_collection(const alk__kh5_guard *g, uint64_t at,
                            bool (*visit)(unsigned index, uint64_t size, void *data), void *data) {
    const unsigned char *c = g->bytes + at;
    const uint64_t header = 8 + g->length_size; /* "GCOL", version, reserved, size */
    const uint64_t object_header = 8 + g->length_size;
    uint64_t size = alk__kh5_load_le(c + 8, g->length_size);
    /* A tail shorter than an object header is free space, as for libhdf5. */
    for (uint64_t q = header; q < size && size - q >= object_header;) {
        unsigned index;
        uint64_t object_size;
        uint64_t step = object_step(g, c, size, q, &index, &object_size);
        if (step == 0) {
            return false;
        }
        if (visit != NULL && visit(index, object_size, data)) {
            return true;
        }
        q += step;
    }
    return true;
}

int alk__kh5_guard_init(alk__kh5_guard *g, const void *bytes, size_t len, const char *label,
                        alk_diag *diag) {
    *g = (alk__kh5_guard){.bytes = bytes, .len = len};
    uint64_t root;
    uint64_t extension;
    if (!read_superblock(g, &root, &extension) || !read_k_values(g, extension)) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "%s: not an HDF5 file this reader takes (superblock version 0 to 3 "
                            "with 4- or 8-byte offsets and lengths)",
                            label);
    }
    const size_t header = 8 + g->length_size;
    const unsigned char *p = bytes;
    for (const unsigned char *at = memmem(p, len, "GCOL", 4); at != NULL;
         at = memmem(at + 1, len - (size_t)(at + 1 - p), "GCOL", 4)) {
        size_t offset = (size_t)(at - p);
        if (len - offset < header) {
            break;
        }
        if (alk__kh5_load_le(at + 8, g->length_size) > len - offset) {
            continue; /* libhdf5 cannot read it from the image, so it never decodes it */
        }
        if (!walk_collection(g, offset, NULL, NULL)) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "%s: the global heap at byte %zu is malformed (its objects "
                                "overrun it or do not advance)",
                                label, offset);
        }
    }
    /* libhdf5 reads the root group's header while it opens the file, before any call of ours
     * could look at it: a chunk declaring 36 GB made it allocate that much. */
    return alk__kh5_guard_attributes(g, root, "the root group", label, diag);
}

/* The elements of a dataspace message (0 for a null space); false when malformed: its
 * dimensions, and the maximum dimensions its flags announce, must lie inside it. */
static bool dataspace_elements(const alk__kh5_guard *g, const unsigned char *ds, uint64_t size,
                               uint64_t *ret_n) {
    if (size < 4 || ds[0] < 1 || ds[0] > 2) {
        return false;
    }
    unsigned rank = ds[1];
    uint64_t dims_at = ds[0] == 1 ? 8 : 4;
    if (ds[0] == 2 && ds[3] == 2) {
        *ret_n = 0; /* null space */
        return true;
    }
    uint64_t lists = (ds[2] & 0x01) ? 2 : 1; /* the sizes, and the maximum sizes */
    if (rank > 32 || dims_at + lists * rank * g->length_size > size) {
        return false;
    }
    uint64_t n = 1;
    for (unsigned d = 0; d < rank; d++) {
        uint64_t dim =
            alk__kh5_load_le(ds + dims_at + (uint64_t)d * g->length_size, g->length_size);
        if (dim != 0 && n > UINT64_MAX / dim) {
            return false;
        }
        n *= dim;
    }
    *ret_n = n;
    return true;
}

/* ---- datatypes ------------------------------------------------------------------------------ */

/* `at` + `n` when that lies within `end`, else 0 (no part of a datatype ends at 0). */
static uint64_t advance(uint64_t at, uint64_t n, uint64_t end) {
    return at <= end && n <= end - at ? at + n : 0;
}

/* The end of the name at `at` (NUL-terminated before `end`, padded with its NUL to a multiple
 * of 8 bytes before datatype version 3), or 0. */
static uint64_t name_end(const unsigned char *p, uint64_t at, uint64_t end, unsigned version) {
    const unsigned char *nul = at < end ? memchr(p + at, 0, end - at) : NULL;
    if (nul == NULL) {
        return 0;
    }
    uint64_t len = (uint64_t)(nul - (p + at));
    return advance(at, version < 3 ? (len + 8) / 8 * 8 : len + 1, end);
}

/* Bytes of a version-3 compound member's offset: as many as the compound's size needs. */
static uint64_t offset_bytes(uint64_t size) {
    uint64_t n = 1;
    while (n < 4 && (size >> (8 * n)) != 0) {
        n++;
    }
    return n;
}

/*
 * The end of the datatype at `at` of `p`, or 0 when some part of it lies at or beyond `end` or
 * it is not a datatype libhdf5 1.10 reads (version 1 to 3). libhdf5's decoder reads member and
 * enumeration names up to their NUL and member and base types recursively, trusting the
 * message's size: a name without its NUL made it copy past the object header.
 */
static uint64_t datatype_end(const unsigned char *p, uint64_t at, uint64_t end, unsigned depth) {
    enum { MAX_DEPTH = 8, CLASS_COMPOUND = 6, CLASS_ENUM = 8, CLASS_ARRAY = 10 };
    static const unsigned char property_bytes[] = {4, 12, 2, 0, 4, 0, 0, 0, 0, 0, 0};
    if (depth > MAX_DEPTH || advance(at, 8, end) == 0) {
        return 0;
    }
    unsigned version = p[at] >> 4;
    unsigned type_class = p[at] & 0x0f;
    uint64_t members = alk__kh5_load_le(p + at + 1, 2); /* compound and enum: the member count */
    uint64_t size = alk__kh5_load_le(p + at + 4, 4);
    uint64_t q = at + 8;
    if (version < 1 || version > 3 || type_class > CLASS_ARRAY) {
        return 0;
    }
    switch (type_class) {
    case 5: /* opaque: a tag of the length in the class bits */
        return advance(q, p[at + 1], end);
    case CLASS_COMPOUND:
        for (uint64_t i = 0; q != 0 && i < members; i++) {
            q = name_end(p, q, end, version);
            q = q != 0 ? advance(q, version < 3 ? 4 : offset_bytes(size), end) : 0;
            /* Version 1 keeps an array shape per member (dimensions, permutation, sizes). */
            q = q != 0 && version == 1 ? advance(q, 28, end) : q;
            q = q != 0 ? datatype_end(p, q, end, depth + 1) : 0;
        }
        return q;
    case CLASS_ENUM: {
        uint64_t base = q;
        q = datatype_end(p, q, end, depth + 1);
        for (uint64_t i = 0; q != 0 && i < members; i++) {
            q = name_end(p, q, end, version);
        }
        return q != 0 ? advance(q, members * alk__kh5_load_le(p + base + 4, 4), end) : 0;
    }
    case 9: /* variable-length: the base type */
        return datatype_end(p, q, end, depth + 1);
    case CLASS_ARRAY: {
        if (version < 2 || q >= end) {
            return 0;
        }
        uint64_t dims = p[q];
        q = advance(q, version == 2 ? 4 + 8 * dims : 1 + 4 * dims, end);
        return q != 0 ? datatype_end(p, q, end, depth + 1) : 0;
    }
    default:
        return advance(q, property_bytes[type_class], end);
    }
}

/* ---- object headers --------------------------------------------------------------------- */

/* A run of header messages: [begin, end) of the image. */
typedef struct chunk {
    uint64_t begin;
    uint64_t end;
} chunk;

/* Called for each message of a header; returns true to stop the walk. */
typedef bool (*message_visitor)(unsigned type, const unsigned char *data, uint64_t size,
                                void *context);

/* The first chunk of the header at image offset `at`; false when it is not a header. */
static bool first_chunk(const alk__kh5_guard *g, uint64_t at, bool *ret_v2, chunk *ret) {
    const unsigned char *p = g->bytes;
    if (alk__kh5_inside(g, at, 16) && p[at] == 1) {
        /* Version 1: version, reserved, messages (2), references (4), size (4), pad to 8. */
        uint64_t size = alk__kh5_load_le(p + at + 8, 4);
        *ret_v2 = false;
        *ret = (chunk){at + 16, at + 16 + size};
        return alk__kh5_inside(g, at + 16, size);
    }
    if (!alk__kh5_inside(g, at, 7) || memcmp(p + at, "OHDR", 4) != 0 || p[at + 4] != 2) {
        return false;
    }
    unsigned flags = p[at + 5];
    uint64_t q = at + 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0);
    size_t width = (size_t)1 << (flags & 3);
    if (!alk__kh5_inside(g, q, width)) {
        return false;
    }
    uint64_t size = alk__kh5_load_le(p + q, width);
    *ret_v2 = true;
    *ret = (chunk){q + width, q + width + size};
    return alk__kh5_inside(g, q + width, size);
}

/*
 * Calls `visit` for each message of the header at image offset `at`, following continuation
 * chunks (at most MAX_CHUNKS), until it returns true. Returns false when the header is malformed
 * (a message or chunk outside its bounds).
 */
static bool walk_messages(const alk__kh5_guard *g, uint64_t at, message_visitor visit,
                          void *context) {
    chunk chunks[MAX_CHUNKS];
    bool v2;
    size_t n_chunks = 0;
    if (!first_chunk(g, at, &v2, &chunks[n_chunks++])) {
        return false;
    }
    const unsigned char *p = g->bytes;
    bool creation_order = v2 && (p[at + 5] & 0x04);
    const uint64_t message_header = v2 ? (creation_order ? 6 : 4) : 8;
    for (size_t c = 0; c < n_chunks; c++) {
        for (uint64_t q = chunks[c].begin; chunks[c].end - q >= message_header;) {
            unsigned type = v2 ? p[q] : (unsigned)alk__kh5_load_le(p + q, 2);
            uint64_t size = v2 ? alk__kh5_load_le(p + q + 1, 2) : alk__kh5_load_le(p + q + 2, 2);
            unsigned flags = v2 ? p[q + 3] : p[q + 4];
            uint64_t data = q + message_header;
            if (size > chunks[c].end - data) {
                return false;
            }
            /* A shared message (flag 0x02) holds a reference to a message stored elsewhere. */
            if (!(flags & 0x02) && visit(type, p + data, size, context)) {
                return true;
            }
            if (type == MSG_CONTINUATION) {
                if (size < g->addr_size + g->length_size || n_chunks == MAX_CHUNKS) {
                    return false;
                }
                uint64_t begin = alk__kh5_offset_of(g, alk__kh5_load_le(p + data, g->addr_size));
                uint64_t length = alk__kh5_load_le(p + data + g->addr_size, g->length_size);
                /* A version 2 continuation chunk is "OCHK", messages, checksum. */
                uint64_t skip = v2 ? 4 : 0;
                if (begin == UINT64_MAX || !alk__kh5_inside(g, begin, length) ||
                    length < 2 * skip || (v2 && memcmp(p + begin, "OCHK", 4) != 0)) {
                    return false;
                }
                chunks[n_chunks++] = (chunk){begin + skip, begin + length - skip};
            }
            q = data + size;
        }
    }
    return true;
}

/* Takes the K values of a "B-tree 'K' values" message (version 0: chunk index, group
 * internal and group leaf K). */
static bool take_k_values(unsigned type, const unsigned char *data, uint64_t size, void *context) {
    enum { MSG_BTREE_K = 0x13 };
    alk__kh5_guard *g = context;
    if (type == MSG_BTREE_K && size >= 7 && data[0] == 0) {
        g->chunk_k = (unsigned)alk__kh5_load_le(data + 1, 2);
        g->internal_k = (unsigned)alk__kh5_load_le(data + 3, 2);
        g->leaf_k = (unsigned)alk__kh5_load_le(data + 5, 2);
    }
    return false;
}

/* The K values a superblock extension (an object header at file address `extension`, or
 * undefined) sets, as libhdf5 takes them when it opens the file; false when malformed. */
static bool read_k_values(alk__kh5_guard *g, uint64_t extension) {
    const uint64_t undefined = alk__kh5_undefined(g);
    if (extension == UINT64_MAX || extension == undefined) {
        return true;
    }
    uint64_t at = alk__kh5_offset_of(g, extension);
    return at != UINT64_MAX && walk_messages(g, at, take_k_values, g);
}

/* The offset where an attribute message's part of `size` bytes ends (v1 pads to 8). */
static uint64_t part_end(unsigned version, uint64_t at, uint64_t size) {
    return at + (version == 1 ? (size + 7) & ~(uint64_t)7 : size);
}

/* An attribute message's parts, at offsets within the message. */
typedef struct attribute_parts {
    uint64_t name_at, name_size, dt_at, dt_size, ds_at, ds_size, data_at;
} attribute_parts;

/*
 * The parts of the attribute message `m` (size bytes), checked the way libhdf5's decoder would
 * need them and does not check: a known version, a name ending in its NUL inside the message,
 * type and shape inside the message.
 */
static bool attribute_parts_of(const unsigned char *m, uint64_t size, attribute_parts *ret) {
    if (size < 9 || m[0] < 1 || m[0] > 3) {
        return false;
    }
    unsigned version = m[0];
    attribute_parts a = {.name_at = version == 3 ? 9 : 8, .name_size = alk__kh5_load_le(m + 2, 2)};
    a.dt_size = alk__kh5_load_le(m + 4, 2);
    a.ds_size = alk__kh5_load_le(m + 6, 2);
    a.dt_at = part_end(version, a.name_at, a.name_size);
    a.ds_at = part_end(version, a.dt_at, a.dt_size);
    a.data_at = part_end(version, a.ds_at, a.ds_size);
    if (a.name_size == 0 || a.name_at + a.name_size > size || m[a.name_at + a.name_size - 1] != 0 ||
        a.data_at > size) {
        return false;
    }
    *ret = a;
    return true;
}

/*
 * Whether a link info or attribute info message (dense storage of a group's links or of an
 * object's attributes) is sound: a known version, and a fractal heap and index B-tree addresses
 * (two, or three with a creation-order index) each undefined or inside the image, the name index
 * defined when the heap is (the storage is dense then). libhdf5 opens the heap and the B-trees
 * at those addresses without checking them against the end of the file or against "undefined";
 * one just below 2^64 wraps its end-of-file check and the metadata accumulator copies from a
 * NULL buffer.
 */
static bool dense_storage_sound(const alk__kh5_guard *g, unsigned type, const unsigned char *m,
                                uint64_t size) {
    if (size < 2 || m[0] != 0) {
        return false;
    }
    unsigned flags = m[1];
    /* The largest creation index, when tracked: 8 bytes for links, 2 for attributes. */
    uint64_t at = 2 + ((flags & 0x01) ? (type == MSG_LINK_INFO ? 8 : 2) : 0);
    unsigned n_addresses = (flags & 0x02) ? 3 : 2;
    if (size < at || (size - at) / g->addr_size < n_addresses) {
        return false;
    }
    const uint64_t undefined = alk__kh5_undefined(g);
    bool defined[3] = {false, false, false};
    for (unsigned a = 0; a < n_addresses; a++) {
        uint64_t addr = alk__kh5_load_le(m + at + (uint64_t)a * g->addr_size, g->addr_size);
        defined[a] = addr != undefined;
        if (defined[a] && alk__kh5_offset_of(g, addr) == UINT64_MAX) {
            return false;
        }
    }
    return !defined[0] || defined[1]; /* heap, then name index */
}

/*
 * Whether link message `m` (size bytes) decodes in libhdf5 1.10: version 1, known flags, a
 * known link type and character set, a name of 1 or more bytes and the link's target inside the
 * message, a hard link's address inside the image. A link libhdf5 fails to decode while it
 * builds a group's link table makes it free the table's uninitialised entries.
 */
static bool link_sound(const alk__kh5_guard *g, const unsigned char *m, uint64_t size) {
    enum { LINK_HARD = 0, LINK_SOFT = 1, LINK_EXTERNAL = 64 };
    if (size < 2 || m[0] != 1 || (m[1] & ~0x1fu) != 0) {
        return false;
    }
    unsigned flags = m[1];
    uint64_t q = 2;
    unsigned type = LINK_HARD;
    if (flags & 0x08) {
        type = q < size ? m[q++] : 2;
    }
    q += (flags & 0x04) ? 8 : 0; /* creation order */
    if ((flags & 0x10) && (q >= size || m[q++] > 1)) {
        return false; /* ASCII or UTF-8 */
    }
    uint64_t width = (uint64_t)1 << (flags & 0x03);
    if ((type > LINK_SOFT && type < LINK_EXTERNAL) || q > size || size - q < width) {
        return false;
    }
    uint64_t name = alk__kh5_load_le(m + q, width);
    q += width;
    if (name == 0 || name > size - q) {
        return false;
    }
    q += name;
    if (type == LINK_HARD) {
        return size - q >= g->addr_size &&
               alk__kh5_offset_of(g, alk__kh5_load_le(m + q, g->addr_size)) != UINT64_MAX;
    }
    /* A soft link's path, or a user-defined (external) link's data, after its 2-byte length. */
    return size - q >= 2 && alk__kh5_load_le(m + q, 2) > 0 &&
           alk__kh5_load_le(m + q, 2) <= size - q - 2;
}

/* Whether attribute message `m` (size bytes) is sound, with its parts in *ret: the parts inside
 * it, and its type and shape as libhdf5 decodes them (unless shared: a version 2 or 3 message
 * may hold a reference to a type or shape stored elsewhere instead). */
static bool attribute_sound(const alk__kh5_guard *g, const unsigned char *m, uint64_t size,
                            attribute_parts *ret) {
    uint64_t elements;
    if (!attribute_parts_of(m, size, ret)) {
        return false;
    }
    bool shared_type = m[0] > 1 && (m[1] & 0x01);
    bool shared_shape = m[0] > 1 && (m[1] & 0x02);
    if ((!shared_type && datatype_end(m, ret->dt_at, ret->dt_at + ret->dt_size, 0) == 0) ||
        (!shared_shape && !dataspace_elements(g, m + ret->ds_at, ret->ds_size, &elements))) {
        return false;
    }
    if (shared_type || shared_shape) {
        return true; /* the value's size is not known here; such attributes are refused later */
    }
    /* libhdf5 copies elements x the type's size field bytes of value without checking the
     * message's size. A variable-length element is a reference (length, collection, index):
     * libhdf5 allocates the value by the size field but reads references of their own size
     * from it, so a field that says less made it copy past the value. */
    const unsigned char *type = m + ret->dt_at;
    uint64_t item = alk__kh5_load_le(type + 4, 4);
    if ((type[0] & 0x0f) == CLASS_VLEN && item != 4 + g->addr_size + 4) {
        return false;
    }
    return item == 0 || elements <= (size - ret->data_at) / item;
}

/* Looks for the first attribute message called `name` while checking every message libhdf5
 * decodes without bounds (attributes, types, shapes, links) or follows (dense storage, a
 * symbol table); stops at a malformed one. */
typedef struct attribute_search {
    const alk__kh5_guard *guard;
    const char *name;
    const unsigned char *message;
    uint64_t size;
    int status;        /* ALK_EINVAL at a malformed message, ALK_ENOMEM */
    bool symbol_table; /* the message at fault is a group's symbol table */
    /* The object's own shape, element size and compact data size (UINT64_MAX: none). */
    uint64_t elements, element_size, compact;
} attribute_search;

static bool match_attribute(unsigned type, const unsigned char *data, uint64_t size,
                            void *context) {
    attribute_search *s = context;
    attribute_parts a;
    uint64_t elements;
    bool sound = true;
    switch (type) {
    case MSG_LINK_INFO:
    case MSG_ATTRIBUTE_INFO:
        sound = dense_storage_sound(s->guard, type, data, size);
        break;
    case MSG_DATATYPE:
        sound = datatype_end(data, 0, size, 0) != 0;
        s->element_size = sound ? alk__kh5_load_le(data + 4, 4) : 0;
        break;
    case MSG_DATASPACE:
        sound = dataspace_elements(s->guard, data, size, &elements);
        s->elements = sound ? elements : 0;
        break;
    case MSG_LAYOUT:
        s->status = alk__kh5_guard_layout(s->guard, data, size, &s->compact);
        break;
    case MSG_LINK:
        sound = link_sound(s->guard, data, size);
        break;
    case MSG_SYMBOL_TABLE:
        s->status = alk__kh5_guard_symbol_table(s->guard, data, size);
        s->symbol_table = s->status != ALK_OK;
        break;
    case MSG_ATTRIBUTE:
        sound = attribute_sound(s->guard, data, size, &a);
        if (sound && s->name != NULL && s->message == NULL &&
            strcmp((const char *)data + a.name_at, s->name) == 0) {
            s->message = data;
            s->size = size;
        }
        break;
    default:
        break;
    }
    if (!sound) {
        s->status = ALK_EINVAL;
    }
    return s->status != ALK_OK;
}

/* Walks the header at file address `header_addr` with `s` (see match_attribute); on failure
 * sets `diag` naming `what` and the part at fault. */
static int search_header(const alk__kh5_guard *g, uint64_t header_addr, attribute_search *s,
                         const char *what, const char *label, alk_diag *diag) {
    uint64_t at = alk__kh5_offset_of(g, header_addr);
    s->compact = UINT64_MAX;
    if (at == UINT64_MAX || !walk_messages(g, at, match_attribute, s)) {
        s->status = ALK_EINVAL;
    }
    /* libhdf5 1.10.8 reads a compact dataset's whole size from the data the message holds. */
    if (s->status == ALK_OK && s->compact != UINT64_MAX &&
        (s->element_size == 0 || s->elements > UINT64_MAX / s->element_size ||
         s->elements * s->element_size != s->compact)) {
        s->status = ALK_EINVAL;
    }
    switch (s->status) {
    case ALK_OK:
        return ALK_OK;
    case ALK_ENOMEM:
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    case ALK_ENOTSUP:
        return alk_diag_set(diag, ALK_ENOTSUP,
                            "%s: the dataset whose header is at address %" PRIu64
                            " (reading %s) is virtual or keeps its chunks in an index this reader "
                            "does not take (a fixed or extensible array or a version 2 B-tree, "
                            "as h5py writes chunked datasets with libver \"latest\")",
                            label, header_addr, what);
    default:
        return alk_diag_set(diag, ALK_EINVAL,
                            "%s: the %s of the object whose header is at address %" PRIu64
                            " (reading %s) is malformed",
                            label,
                            s->symbol_table
                                ? "symbol table (its B-tree, nodes or name heap)"
                                : "header, or an attribute, link index or data layout in it,",
                            header_addr, what);
    }
}

int alk__kh5_guard_attributes(const alk__kh5_guard *g, uint64_t header_addr, const char *what,
                              const char *label, alk_diag *diag) {
    attribute_search s = {.guard = g};
    return search_header(g, header_addr, &s, what, label, diag);
}

/* ---- variable-length references ----------------------------------------------------------- */

/* Finds object `index` of the collection at file address `addr`: its size. */
typedef struct lookup {
    unsigned index;
    uint64_t size;
    bool found;
} lookup;

static bool match_object(unsigned index, uint64_t size, void *data) {
    lookup *l = data;
    if (index == l->index && index > 0) {
        l->size = size;
        l->found = true;
    }
    return l->found;
}

static bool heap_object(const alk__kh5_guard *g, uint64_t addr, unsigned index,
                        uint64_t *ret_size) {
    uint64_t at = alk__kh5_offset_of(g, addr);
    const uint64_t header = 8 + g->length_size;
    if (at == UINT64_MAX || !alk__kh5_inside(g, at, header) ||
        memcmp(g->bytes + at, "GCOL", 4) != 0 ||
        alk__kh5_load_le(g->bytes + at + 8, g->length_size) > g->len - at) {
        return false;
    }
    lookup l = {.index = index};
    (void)walk_collection(g, at, match_object, &l); /* the collection was checked whole */
    *ret_size = l.size;
    return l.found;
}

int alk__kh5_guard_vlen_attribute(const alk__kh5_guard *g, uint64_t header_addr, const char *name,
                                  uint64_t max_len, const char *what, const char *label,
                                  alk_diag *diag) {
    attribute_search s = {.guard = g, .name = name};
    int rv = search_header(g, header_addr, &s, what, label, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    if (s.message == NULL) {
        return alk_diag_set(diag, ALK_ENOTSUP,
                            "%s: %s is kept outside its object header (dense attribute "
                            "storage), which this reader does not take",
                            label, what);
    }
    const unsigned char *m = s.message;
    attribute_parts a;
    (void)attribute_parts_of(m, s.size, &a); /* checked by attribute_sound */
    if (m[0] > 1 && (m[1] & 0x03) != 0) {
        return alk_diag_set(diag, ALK_ENOTSUP, "%s: %s has a shared type or shape", label, what);
    }
    uint64_t n;
    const uint64_t ref_size = 4 + g->addr_size + 4; /* length, collection, index */
    /* A string's characters are its base type, of one byte: libhdf5 sizes its conversion
     * buffer by length × base size, and clears it. */
    if (a.dt_size < 16 || (m[a.dt_at] & 0x0f) != CLASS_VLEN ||
        alk__kh5_load_le(m + a.dt_at + 12, 4) != 1 ||
        !dataspace_elements(g, m + a.ds_at, a.ds_size, &n) || n > (s.size - a.data_at) / ref_size) {
        return alk_diag_set(diag, ALK_EINVAL, "%s: the attribute message of %s is malformed", label,
                            what);
    }
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *ref = m + a.data_at + i * ref_size;
        uint64_t length = alk__kh5_load_le(ref, 4);
        uint64_t object_size;
        if (length == 0) {
            continue; /* an empty string: libhdf5 does not look at the heap */
        }
        if (length > max_len) {
            return alk_diag_set(diag, ALK_ELIMIT,
                                "%s: element %" PRIu64 " of %s claims %" PRIu64
                                " bytes; at most %" PRIu64,
                                label, i, what, length, max_len);
        }
        if (!heap_object(g, alk__kh5_load_le(ref + 4, g->addr_size),
                         (unsigned)alk__kh5_load_le(ref + 4 + g->addr_size, 4), &object_size) ||
            object_size < length) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "%s: element %" PRIu64 " of %s points to no global heap object "
                                "of its length",
                                label, i, what);
        }
    }
    return ALK_OK;
}
