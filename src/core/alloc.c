/*
 * Allocator indirection, fault injection and live-block accounting.
 *
 * The counters are C11 atomics so that worker threads may allocate concurrently; fault injection
 * is meant for single-threaded tests. Live accounting counts blocks, not bytes: a test compares
 * the count before and after a whole job to find leaks without a tool.
 */
#include "core/alloc.h"
#include "core/err.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static alk_allocator current = {malloc, realloc, free};

static atomic_ulong attempts;
static atomic_ulong fail_nth;
static atomic_bool fail_sticky;
static atomic_long live_blocks;

void alk_set_allocator(const alk_allocator *allocator) {
    if (allocator == NULL) {
        current = (alk_allocator){malloc, realloc, free};
    } else {
        current = *allocator;
    }
}

void alk_alloc_fail_at(unsigned long nth, bool sticky) {
    atomic_store(&attempts, 0);
    atomic_store(&fail_sticky, sticky);
    atomic_store(&fail_nth, nth);
}

unsigned long alk_alloc_count(void) {
    return atomic_load(&attempts);
}

long alk_alloc_live(void) {
    return atomic_load(&live_blocks);
}

/* Counts one attempt and says whether fault injection wants it to fail. */
static bool injected_failure(void) {
    unsigned long n = atomic_fetch_add(&attempts, 1) + 1;
    unsigned long nth = atomic_load(&fail_nth);
    if (nth == 0) {
        return false;
    }
    return n == nth || (n > nth && atomic_load(&fail_sticky));
}

void *alk_malloc(size_t size) {
    if (injected_failure()) {
        return NULL;
    }
    void *p = current.malloc(size == 0 ? 1 : size);
    if (p != NULL) {
        atomic_fetch_add(&live_blocks, 1);
    }
    return p;
}

void *alk_calloc(size_t count, size_t size) {
    size_t total;
    if (!alk_mul_size(count, size, &total)) {
        return NULL;
    }
    void *p = alk_malloc(total);
    if (p != NULL) {
        memset(p, 0, total);
    }
    return p;
}

void *alk_realloc(void *ptr, size_t size) {
    if (injected_failure()) {
        return NULL;
    }
    void *p = current.realloc(ptr, size == 0 ? 1 : size);
    if (p != NULL && ptr == NULL) {
        atomic_fetch_add(&live_blocks, 1);
    }
    return p;
}

void alk_free(void *ptr) {
    if (ptr == NULL) {
        return;
    }
    atomic_fetch_sub(&live_blocks, 1);
    current.free(ptr);
}

char *alk_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = alk_malloc(n);
    if (copy != NULL) {
        memcpy(copy, s, n);
    }
    return copy;
}

bool alk_mul_size(size_t a, size_t b, size_t *ret) {
    if (a != 0 && b > SIZE_MAX / a) {
        return false;
    }
    *ret = a * b;
    return true;
}

int alk_grow(void **items, size_t *cap, size_t elem_size, size_t need) {
    if (need <= *cap) {
        return ALK_OK;
    }
    size_t new_cap = *cap < 8 ? 8 : *cap;
    while (new_cap < need) {
        if (new_cap > SIZE_MAX / 2) {
            return ALK_ENOMEM;
        }
        new_cap *= 2;
    }
    size_t bytes;
    if (!alk_mul_size(new_cap, elem_size, &bytes)) {
        return ALK_ENOMEM;
    }
    void *p = alk_realloc(*items, bytes);
    if (p == NULL) {
        return ALK_ENOMEM;
    }
    *items = p;
    *cap = new_cap;
    return ALK_OK;
}
