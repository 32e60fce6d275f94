/*
 * A bump allocator for objects that die together (a job's traced variables and IR nodes).
 *
 * Memory comes in blocks from alk_malloc; alk_arena_fini frees them all at once. Individual
 * objects are never freed. Not thread-safe: one arena belongs to one job on one thread.
 */
#ifndef ALK_CORE_ARENA_H
#define ALK_CORE_ARENA_H

#include <stddef.h>

typedef struct alk_arena_block alk_arena_block;

typedef struct alk_arena {
    alk_arena_block *head;
    size_t block_size;
    size_t bytes_used;
} alk_arena;

/* Prepares an empty arena whose ordinary blocks hold `block_size` bytes (0: a default). */
void alk_arena_init(alk_arena *arena, size_t block_size);
/* Frees every block; every pointer the arena returned becomes invalid. */
void alk_arena_fini(alk_arena *arena);
/* Returns `size` bytes aligned for any object, owned by the arena; NULL when memory runs out. */
void *alk_arena_alloc(alk_arena *arena, size_t size);
/* Like alk_arena_alloc for `count * size` bytes, zeroed, with the multiplication checked. */
void *alk_arena_calloc(alk_arena *arena, size_t count, size_t size);

#endif
