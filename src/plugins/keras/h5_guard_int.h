/*
 * Private to the HDF5 guard (h5_guard.c, h5_guard_btree.c, h5_guard_layout.c): bounds-checked
 * reads of the raw image, and the checks that h5_guard.c runs on an object's header: version 1
 * B-trees (a group's symbol table, a dataset's chunk index) and data layouts.
 */
#ifndef ALK_PLUGINS_KERAS_H5_GUARD_INT_H
#define ALK_PLUGINS_KERAS_H5_GUARD_INT_H

#include "plugins/keras/model_file_int.h"

#include <stdbool.h>
#include <stdint.h>

/* The little-endian unsigned integer of `size` bytes at `p`. */
static inline uint64_t alk__kh5_load_le(const unsigned char *p, size_t size) {
    uint64_t x = 0;
    for (size_t i = size; i-- > 0;) {
        x = (x << 8) | p[i];
    }
    return x;
}

/* Whether [at, at + n) lies in the image. */
static inline bool alk__kh5_inside(const alk__kh5_guard *g, uint64_t at, uint64_t n) {
    return at <= g->len && n <= g->len - at;
}

/* The image offset of file address `addr`, or UINT64_MAX when it is outside. */
static inline uint64_t alk__kh5_offset_of(const alk__kh5_guard *g, uint64_t addr) {
    return addr <= UINT64_MAX - g->base && g->base + addr < g->len ? g->base + addr : UINT64_MAX;
}

/* The undefined address ("all bits set" in the superblock's size of offsets). */
static inline uint64_t alk__kh5_undefined(const alk__kh5_guard *g) {
    return g->addr_size == 8 ? UINT64_MAX : UINT32_MAX;
}

/*
 * Checks the symbol table that the symbol table message `m` (size bytes) of a group's header
 * describes, as libhdf5 1.10 reads it to list the group or look a name up: its local heap, every
 * node of its B-tree and every symbol table node (h5_guard_btree.c). ALK_OK, ALK_EINVAL when
 * malformed, ALK_ENOMEM.
 */
int alk__kh5_guard_symbol_table(const alk__kh5_guard *g, const unsigned char *m, uint64_t size);

/*
 * Checks the version 1 B-tree of a chunked dataset's chunks at file address `addr` (undefined:
 * no chunk written yet), whose keys hold `dims` chunk offsets, as libhdf5 1.10 reads it to find
 * the chunks (h5_guard_btree.c): every node, and every chunk inside the image. ALK_OK,
 * ALK_EINVAL when malformed, ALK_ENOMEM.
 */
int alk__kh5_guard_chunk_index(const alk__kh5_guard *g, uint64_t addr, uint64_t dims);

/*
 * Checks data layout message `m` (size bytes) as libhdf5 1.10 reads it (h5_guard_layout.c):
 * compact data inside the message (*ret_compact its size, otherwise UINT64_MAX), data and chunk
 * indexes at undefined addresses or inside the image. ALK_OK, ALK_EINVAL when malformed,
 * ALK_ENOTSUP for virtual datasets and version 4 chunk indexes other than single and implicit,
 * ALK_ENOMEM.
 */
int alk__kh5_guard_layout(const alk__kh5_guard *g, const unsigned char *m, uint64_t size,
                          uint64_t *ret_compact);

#endif
