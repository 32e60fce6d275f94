/*
 * The poison list (see poison.h): a fixed ring of entries searched linearly; it holds a handful
 * of entries in practice and is consulted only while it is not empty.
 *
 * Thread rule: loop thread only.
 */
#include "poison.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/sha256.h"

#include <stdio.h>
#include <string.h>

int alkd_poison_init(alkd_poison *poison, uint64_t ttl_ms) {
    *poison = (alkd_poison){.ttl_ns = ttl_ms * 1000000};
    poison->entries = alk_calloc(ALKD_POISON_MAX, sizeof(*poison->entries));
    return poison->entries != NULL ? ALK_OK : ALK_ENOMEM;
}

void alkd_poison_fini(alkd_poison *poison) {
    alk_free(poison->entries);
    *poison = (alkd_poison){0};
}

bool alkd_poison_empty(const alkd_poison *poison) {
    return poison->live == 0;
}

static void hash_u64(alk_sha256 *h, uint64_t x) {
    uint8_t bytes[8];
    for (int i = 0; i < 8; i++) {
        bytes[i] = (uint8_t)(x >> (8 * i));
    }
    alk_sha256_update(h, bytes, sizeof(bytes));
}

/* Each node as its kind, its size and its content, so that different trees hash differently. */
static void hash_value(alk_sha256 *h, const alk_value *v) {
    uint8_t kind = (uint8_t)v->kind;
    alk_sha256_update(h, &kind, 1);
    switch (v->kind) {
    case ALK_VALUE_NIL:
        break;
    case ALK_VALUE_BOOL:
        hash_u64(h, v->as.boolean);
        break;
    case ALK_VALUE_INT:
        hash_u64(h, (uint64_t)v->as.integer);
        break;
    case ALK_VALUE_FLOAT: {
        uint64_t bits;
        memcpy(&bits, &v->as.number, sizeof(bits));
        hash_u64(h, bits);
        break;
    }
    case ALK_VALUE_STR:
    case ALK_VALUE_BIN:
        hash_u64(h, v->as.str.len);
        alk_sha256_update(h, v->as.str.bytes, v->as.str.len);
        break;
    case ALK_VALUE_ARRAY:
        hash_u64(h, v->as.array.len);
        for (size_t i = 0; i < v->as.array.len; i++) {
            hash_value(h, v->as.array.items[i]);
        }
        break;
    case ALK_VALUE_MAP:
        hash_u64(h, v->as.map.len);
        for (size_t i = 0; i < v->as.map.len; i++) {
            hash_value(h, v->as.map.pairs[i].key);
            hash_value(h, v->as.map.pairs[i].value);
        }
        break;
    }
}

void alkd_poison_key(const alk_value *request, uint8_t ret_key[32]) {
    alk_sha256 h;
    alk_sha256_init(&h);
    for (size_t i = 0; request->kind == ALK_VALUE_MAP && i < request->as.map.len; i++) {
        const alk_value_pair *p = &request->as.map.pairs[i];
        const char *key = p->key->kind == ALK_VALUE_STR ? p->key->as.str.bytes : "";
        if (strcmp(key, "id") == 0 || strcmp(key, "timeout_ms") == 0) {
            continue; /* they do not change what is converted */
        }
        hash_value(&h, p->key);
        hash_value(&h, p->value);
    }
    alk_sha256_final(&h, ret_key);
}

const alkd_poison_entry *alkd_poison_find(alkd_poison *poison, const uint8_t key[32],
                                          uint64_t now) {
    for (size_t i = 0; i < ALKD_POISON_MAX && poison->live > 0; i++) {
        alkd_poison_entry *e = &poison->entries[i];
        if (e->expires != 0 && e->expires <= now) {
            e->expires = 0;
            poison->live--;
        } else if (e->expires != 0 && memcmp(e->key, key, sizeof(e->key)) == 0) {
            return e;
        }
    }
    return NULL;
}

void alkd_poison_add(alkd_poison *poison, const uint8_t key[32], int code, const char *message,
                     uint64_t now) {
    if (poison->ttl_ns == 0) {
        return;
    }
    alkd_poison_entry *e = &poison->entries[poison->next];
    poison->next = (poison->next + 1) % ALKD_POISON_MAX;
    poison->live += e->expires == 0;
    memcpy(e->key, key, sizeof(e->key));
    e->expires = now + poison->ttl_ns;
    e->code = code;
    (void)snprintf(e->message, sizeof(e->message), "%s", message);
}

void alkd_poison_clear(alkd_poison *poison) {
    memset(poison->entries, 0, ALKD_POISON_MAX * sizeof(*poison->entries));
    poison->live = 0;
    poison->next = 0;
}
