/*
 * Bump allocator (see arena.h). Requests larger than a quarter block get a block of their own,
 * linked behind the current one so the current block's free tail is not wasted.
 */
#include "core/arena.h"
#include "core/alloc.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct alk_arena_block {
    alk_arena_block *next;
    size_t size;
    size_t used;
    alignas(max_align_t) unsigned char bytes[];
};

enum { DEFAULT_BLOCK = 64 * 1024 };

void alk_arena_init(alk_arena *arena, size_t block_size) {
    *arena = (alk_arena){.block_size = block_size == 0 ? DEFAULT_BLOCK : block_size};
}

void alk_arena_fini(alk_arena *arena) {
    alk_arena_block *block = arena->head;
    while (block != NULL) {
        alk_arena_block *next = block->next;
        alk_free(block);
        block = next;
    }
    arena->head = NULL;
    arena->bytes_used = 0;
}

static alk_arena_block *new_block(size_t size) {
    if (size > SIZE_MAX - sizeof(alk_arena_block)) {
        return NULL;
    }
    alk_arena_block *block = alk_malloc(sizeof(alk_arena_block) + size);
    if (block != NULL) {
        block->next = NULL;
        block->size = size;
        block->used = 0;
    }
    return block;
}

void *alk_arena_alloc(alk_arena *arena, size_t size) {
    const size_t align = alignof(max_align_t);
    if (size > SIZE_MAX - align) {
        return NULL;
    }
    size = (size + align - 1) & ~(align - 1);
    alk_arena_block *head = arena->head;
    if (head != NULL && head->size - head->used >= size) {
        void *p = head->bytes + head->used;
        head->used += size;
        arena->bytes_used += size;
        return p;
    }
    bool oversized = size > arena->block_size / 4;
    alk_arena_block *block = new_block(oversized ? size : arena->block_size);
    if (block == NULL) {
        return NULL;
    }
    block->used = size;
    arena->bytes_used += size;
    if (oversized && head != NULL) {
        block->next = head->next;
        head->next = block;
    } else {
        block->next = head;
        arena->head = block;
    }
    return block->bytes;
}

void *alk_arena_calloc(alk_arena *arena, size_t count, size_t size) {
    size_t total;
    if (!alk_mul_size(count, size, &total)) {
        return NULL;
    }
    void *p = alk_arena_alloc(arena, total);
    if (p != NULL) {
        memset(p, 0, total);
    }
    return p;
}
