/*
 * Checks of version 1 B-trees on the raw image, before libhdf5 1.10 walks them: an old-style
 * group's symbol table (h5py writes these groups by default, libver "earliest", so most Keras
 * .h5 files hold them) and a chunked dataset's chunk index.
 *
 * A symbol table message names a B-tree and a local heap. The B-tree's leaves point to symbol
 * table nodes ("SNOD"), each holding up to 2 × leaf K entries: a link's name (an offset into the
 * heap's data segment) and its object header address. A chunk index's leaves point to the
 * chunks, each key giving its size. libhdf5 trusts all of it:
 *   - it reads each node at its address with the size the superblock's K values give, and an
 *     address near 2^64 wraps its end-of-file check: the metadata accumulator then copies from
 *     a NULL buffer (found by fuzzing through H5Gget_info);
 *   - it decodes as many symbol node entries as the node claims into an array of 2 × leaf K;
 *   - it recurses into B-tree children without comparing levels (a cycle recurses for ever, a
 *     node listed twice doubles the work at each level);
 *   - it reads names, B-tree keys and soft-link values from the heap with strcmp/strdup
 *     without a bound, and walks the heap's free list without bounding the entry it reads.
 * So before libhdf5 sees one, this file checks: the heap ("HEAP", version 0, its data segment
 * inside the image, a free list of entries inside it and no longer than it can hold); every
 * B-tree node ("TREE", the tree's node type, the level one less than its parent's, at most 2 ×
 * K children, the whole node inside the image, a group's keys names in the heap); every symbol
 * node ("SNOD", version 1, at most 2 × leaf K entries, the whole node inside the image, every
 * name in the heap, a soft link's value in the heap, a hard link's header inside the image);
 * every chunk inside the image; no node visited twice; no more nodes than the image can hold
 * side by side.
 *
 * Thread rule: reentrant; reads only the image of the guard it is given.
 */
#define _GNU_SOURCE /* memrchr */
#include "plugins/keras/h5_guard_int.h"

#include "core/vec.h"

#include <stdlib.h>
#include <string.h>

enum {
    MAX_LEVEL = 32,      /* of a B-tree: levels of 2 × K children; real ones have 1 to 3 */
    CACHE_SOFT_LINK = 2, /* a symbol entry's cache types: nothing, a group, a soft link */
    FREE_LIST_END = 1,   /* libhdf5's end of a local heap's free list (offsets are 8-aligned) */
    GROUP_NODES = 0,     /* B-tree node types */
    CHUNK_NODES = 1,
};

/* One B-tree's walk: its node type and sizes, a group's heap, the nodes seen. */
typedef struct tree_walk {
    const alk__kh5_guard *g;
    unsigned node_type;  /* GROUP_NODES or CHUNK_NODES */
    uint64_t max_kids;   /* 2 × K */
    uint64_t key_size;   /* a group's: a heap offset; a chunk's: size, filter mask, offsets */
    uint64_t tree_node;  /* bytes of a B-tree node, as libhdf5 reads it */
    uint64_t names_end;  /* a name starting below this heap offset has its NUL in the heap */
    uint64_t entry_size; /* bytes of a symbol node entry */
    uint64_t snod_size;  /* bytes of a symbol node, as libhdf5 reads it */
    uint64_t budget;     /* nodes that may still be visited */
    alk_vec visited;     /* uint64_t: image offset of every node visited */
} tree_walk;

/* Whether heap offset `offset` starts a NUL-terminated name inside the data segment. */
static bool name_sound(const tree_walk *w, uint64_t offset) {
    return offset < w->names_end;
}

/*
 * Checks the local heap at file address `addr` and records its data segment in `w`: libhdf5
 * reads the segment whole and walks its free list when it loads the heap, reading each entry's
 * next offset and size (2 lengths) after checking only that the entry starts inside.
 */
static bool heap_sound(tree_walk *w, uint64_t addr) {
    const alk__kh5_guard *g = w->g;
    const unsigned char *p = g->bytes;
    const uint64_t length = g->length_size;
    uint64_t at = alk__kh5_offset_of(g, addr);
    /* "HEAP", version, 3 reserved, data size, free list head, data address. */
    if (at == UINT64_MAX || !alk__kh5_inside(g, at, 8 + 2 * length + g->addr_size) ||
        memcmp(p + at, "HEAP", 4) != 0 || p[at + 4] != 0) {
        return false;
    }
    uint64_t size = alk__kh5_load_le(p + at + 8, length);
    uint64_t free_block = alk__kh5_load_le(p + at + 8 + length, length);
    uint64_t data = alk__kh5_offset_of(g, alk__kh5_load_le(p + at + 8 + 2 * length, g->addr_size));
    if (size == 0 || data == UINT64_MAX || !alk__kh5_inside(g, data, size)) {
        return false;
    }
    /* Free blocks do not overlap, so a list longer than the segment holds has a cycle. */
    for (uint64_t n = 0; free_block != FREE_LIST_END; n++) {
        if (n > size / (2 * length) || free_block >= size || size - free_block < 2 * length) {
            return false;
        }
        uint64_t next = alk__kh5_load_le(p + data + free_block, length);
        uint64_t block_size = alk__kh5_load_le(p + data + free_block + length, length);
        if (next == 0 || block_size > size - free_block) {
            return false;
        }
        free_block = next;
    }
    /* A name is terminated when a NUL follows it anywhere in the segment: before the last. */
    const unsigned char *last_nul = memrchr(p + data, 0, size);
    w->names_end = last_nul != NULL ? (uint64_t)(last_nul - (p + data)) + 1 : 0;
    return true;
}

/* Counts a visit of the node at image offset `at` against the budget; ALK_EINVAL past it. */
static int visit(tree_walk *w, uint64_t at) {
    if (w->budget == 0) {
        return ALK_EINVAL;
    }
    w->budget--;
    return alk_vec_push(&w->visited, &at) == ALK_OK ? ALK_OK : ALK_ENOMEM;
}

/* A symbol node (a B-tree leaf's child) at file address `addr`. */
static int check_symbol_node(tree_walk *w, uint64_t addr) {
    const alk__kh5_guard *g = w->g;
    const unsigned char *p = g->bytes;
    uint64_t at = alk__kh5_offset_of(g, addr);
    if (at == UINT64_MAX || !alk__kh5_inside(g, at, w->snod_size) ||
        memcmp(p + at, "SNOD", 4) != 0 || p[at + 4] != 1) {
        return ALK_EINVAL;
    }
    uint64_t n = alk__kh5_load_le(p + at + 6, 2);
    if (n > 2 * (uint64_t)g->leaf_k) {
        return ALK_EINVAL;
    }
    /* Each entry: name offset, header address, cache type (4), reserved (4), scratch (16). */
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *e = p + at + 8 + i * w->entry_size;
        const unsigned char *cache = e + g->length_size + g->addr_size;
        uint64_t cache_type = alk__kh5_load_le(cache, 4);
        uint64_t header = alk__kh5_load_le(e + g->length_size, g->addr_size);
        if (!name_sound(w, alk__kh5_load_le(e, g->length_size)) || cache_type > CACHE_SOFT_LINK) {
            return ALK_EINVAL;
        }
        /* libhdf5 takes a soft link's value from the heap at the scratch pad's offset, and
         * opens any other entry's header at its address. */
        bool target_sound = cache_type == CACHE_SOFT_LINK
                                ? name_sound(w, alk__kh5_load_le(cache + 8, 4))
                                : alk__kh5_offset_of(g, header) != UINT64_MAX;
        if (!target_sound) {
            return ALK_EINVAL;
        }
    }
    return visit(w, at);
}

/* A chunk at file address `addr` of the size its key (at `key`) gives: inside the image. */
static int check_chunk(const tree_walk *w, uint64_t addr, const unsigned char *key) {
    uint64_t at = alk__kh5_offset_of(w->g, addr);
    return at != UINT64_MAX && alk__kh5_inside(w->g, at, alk__kh5_load_le(key, 4)) ? ALK_OK
                                                                                   : ALK_EINVAL;
}

/*
 * The B-tree node at file address `addr` and everything below it; `level` is the level it must
 * have (one less than its parent's), or -1 for the root.
 */
static int check_tree_node(tree_walk *w, uint64_t addr, int level) {
    const alk__kh5_guard *g = w->g;
    const unsigned char *p = g->bytes;
    uint64_t at = alk__kh5_offset_of(g, addr);
    /* "TREE", node type, level, children, left and right siblings. */
    if (at == UINT64_MAX || !alk__kh5_inside(g, at, w->tree_node) ||
        memcmp(p + at, "TREE", 4) != 0 || p[at + 4] != w->node_type ||
        (level < 0 ? p[at + 5] > MAX_LEVEL : p[at + 5] != level)) {
        return ALK_EINVAL;
    }
    int node_level = p[at + 5];
    uint64_t n = alk__kh5_load_le(p + at + 6, 2);
    if (n > w->max_kids) {
        return ALK_EINVAL;
    }
    int rv = visit(w, at);
    /* Keys and children alternate, with one key more than children. */
    const uint64_t pair = w->key_size + g->addr_size;
    const unsigned char *keys = p + at + 8 + 2 * g->addr_size;
    for (uint64_t i = 0; rv == ALK_OK && w->node_type == GROUP_NODES && n > 0 && i <= n; i++) {
        if (!name_sound(w, alk__kh5_load_le(keys + i * pair, g->length_size))) {
            rv = ALK_EINVAL;
        }
    }
    for (uint64_t i = 0; rv == ALK_OK && i < n; i++) {
        uint64_t child = alk__kh5_load_le(keys + i * pair + w->key_size, g->addr_size);
        rv = node_level > 0                ? check_tree_node(w, child, node_level - 1)
             : w->node_type == GROUP_NODES ? check_symbol_node(w, child)
                                           : check_chunk(w, child, keys + i * pair);
    }
    return rv;
}

static int compare_offsets(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Walks the tree from its root at `root`, then refuses it if a node was reached twice. */
static int walk_tree(tree_walk *w, uint64_t root) {
    const alk__kh5_guard *g = w->g;
    w->tree_node =
        8 + 2 * g->addr_size + w->max_kids * g->addr_size + (w->max_kids + 1) * w->key_size;
    /* Nodes of a real file lie side by side: no more than the image holds. */
    uint64_t smallest =
        w->snod_size != 0 && w->snod_size < w->tree_node ? w->snod_size : w->tree_node;
    w->budget = g->len / smallest + 1;
    alk_vec_init(&w->visited, sizeof(uint64_t));
    int rv = check_tree_node(w, root, -1);
    if (rv == ALK_OK && w->visited.len > 1) {
        /* A node reached twice (a shared child, or one listed twice) lists its links twice and
         * multiplies libhdf5's work at every level above it. */
        uint64_t *seen = w->visited.items;
        qsort(seen, w->visited.len, sizeof(*seen), compare_offsets);
        for (size_t i = 1; rv == ALK_OK && i < w->visited.len; i++) {
            rv = seen[i] == seen[i - 1] ? ALK_EINVAL : ALK_OK;
        }
    }
    alk_vec_fini(&w->visited);
    return rv;
}

int alk__kh5_guard_symbol_table(const alk__kh5_guard *g, const unsigned char *m, uint64_t size) {
    if (size < 2 * g->addr_size || g->leaf_k == 0 || g->internal_k == 0) {
        return ALK_EINVAL;
    }
    /* The sizes libhdf5 reads a node with, whatever the node claims to use. */
    tree_walk w = {.g = g,
                   .node_type = GROUP_NODES,
                   .max_kids = 2 * (uint64_t)g->internal_k,
                   .key_size = g->length_size,
                   .entry_size = g->length_size + g->addr_size + 24};
    w.snod_size = 8 + 2 * (uint64_t)g->leaf_k * w.entry_size;
    if (!heap_sound(&w, alk__kh5_load_le(m + g->addr_size, g->addr_size))) {
        return ALK_EINVAL;
    }
    return walk_tree(&w, alk__kh5_load_le(m, g->addr_size));
}

int alk__kh5_guard_chunk_index(const alk__kh5_guard *g, uint64_t addr, uint64_t dims) {
    const uint64_t undefined = alk__kh5_undefined(g);
    if (addr == undefined) {
        return ALK_OK;
    }
    if (g->chunk_k == 0 || dims == 0) {
        return ALK_EINVAL;
    }
    /* A key: the chunk's size in bytes, its filter mask, an 8-byte offset per dimension. */
    tree_walk w = {.g = g,
                   .node_type = CHUNK_NODES,
                   .max_kids = 2 * (uint64_t)g->chunk_k,
                   .key_size = 8 + 8 * dims};
    return walk_tree(&w, addr);
}
