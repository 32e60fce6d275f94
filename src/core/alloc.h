/*
 * The allocator of libalkaid.
 *
 * Every allocation of the library (and of jansson and zlib while the library drives them) goes
 * through these functions, so that an embedding program can replace the allocator and a test can
 * make the Nth allocation fail (curl's torture mode) to prove that every path cleans up.
 *
 * Thread rule: the fault-injection counters are atomics and may be armed from any thread, but a
 * torture test should run one job at a time to know which allocation failed.
 */
#ifndef ALK_CORE_ALLOC_H
#define ALK_CORE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* A replacement allocator: the three functions have the C library's contracts. */
typedef struct alk_allocator {
    void *(*malloc)(size_t size);
    void *(*realloc)(void *ptr, size_t size);
    void (*free)(void *ptr);
} alk_allocator;

void *alk_malloc(size_t size);
void *alk_calloc(size_t count, size_t size);
void *alk_realloc(void *ptr, size_t size);
/* Frees memory from the three functions above; NULL is a no-op. */
void alk_free(void *ptr);
/* Returns a copy of `s` owned by the caller (free with alk_free), or NULL on failure. */
char *alk_strdup(const char *s);

/*
 * Replaces the allocator (NULL restores the C library's). Call it before any allocation: memory
 * must be freed by the allocator that made it. `allocator` is copied.
 */
void alk_set_allocator(const alk_allocator *allocator);

/*
 * Fault injection: after this call, the `nth` allocation (1-based, counting malloc, calloc and
 * realloc) fails and returns NULL, and so does every later one while `sticky` is true. `nth == 0`
 * disarms. The allocation counter restarts at every call.
 */
void alk_alloc_fail_at(unsigned long nth, bool sticky);

/* Number of allocations attempted since the last alk_alloc_fail_at() call. */
unsigned long alk_alloc_count(void);

/* Number of live blocks (allocated and not yet freed) made through these functions. */
long alk_alloc_live(void);

/* Overflow-checked `a * b`: returns false (and leaves *ret untouched) when it overflows. */
bool alk_mul_size(size_t a, size_t b, size_t *ret);

/*
 * Grows an array `*items` of `elem_size`-byte elements so that it holds at least `need` elements,
 * doubling the capacity `*cap`. On failure returns ALK_ENOMEM and leaves the array as it was.
 */
int alk_grow(void **items, size_t *cap, size_t elem_size, size_t need);

#endif
