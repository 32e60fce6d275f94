/*
 * Improved mode's CSE selection (issue 14): exact counts, ties broken by conflicts.
 *
 * The reference's greedy takes the pattern ("key") with the best score and breaks ties by the
 * key's order. Most extractions happen among keys that occur only two or three times, where
 * ties are the rule and where one extraction destroys other candidates by consuming digits they
 * need. This selection takes the largest count, and among equal counts the key whose digits are
 * shared with the fewest other live keys -- the min-degree rule of greedy independent sets: it
 * keeps more candidates alive, so more digits end up shared (spec §14.2 "conflict-aware
 * scoring"). On the da4ml paper's Table 2 matrices this saves 1.5-2 % of the adders.
 *
 * Design. Every live key (pair count >= 2, spec §5.2 counting) has an entry holding its count,
 * its degree and the list of its occurrences (pairs of digits). Every digit has the list of the
 * occurrences that use it: one node per (key, occurrence), linked into the key's list and into
 * both digits' lists (doubly linked, so any removal is O(1)); a digit's live degree is the length
 * of its list. Removing a digit walks its list only: every key using it loses that occurrence
 * and, below two, dies. Entries are listed per count; selection scans the highest non-empty
 * count. A key's degree (the other keys on the digits of its occurrences) is counted when it
 * competes while counts are high, and kept up to date from the end game on (track_from_now).
 * Keeping degrees in a heap per count was tried: every digit change then moved every key on the
 * digit, ten times slower.
 *
 * Keys are found signal by signal (keys_of): the pairs of one signal's digits with the digits of
 * its columns, counted per partner signal and (shift, sub), give its keys and their occurrences
 * together; an extraction's new signal is the higher signal of all its keys.
 *
 * Thread rule: the structure belongs to one CSE state (one call, one thread).
 */
#include "cmvm/cse_int.h"
#include "core/alloc.h"

#include <math.h>
#include <string.h>

#define NONE UINT32_MAX

/* Degrees are kept up to date once no key occurs more often than this (see track_from_now). */
enum { TRACK_COUNT = 3 };

/* One occurrence: id0's digit at p in row k0 of column `out`, id1's at p + shift in row k1. */
typedef struct occ {
    uint32_t entry;
    uint32_t out;
    uint32_t k[2]; /* rows of the two digits: side 0 = id0's, side 1 = id1's */
    int32_t pos[2];
    uint32_t key_prev, key_next;       /* in the entry's list */
    uint32_t dig_prev[2], dig_next[2]; /* in each digit's list */
} occ;

typedef struct entry {
    uint64_t key;
    uint64_t rank;   /* tie order (larger first) */
    float gap;       /* |latency(id0) - latency(id1)| for the -dc methods, else 0 */
    uint32_t count;  /* occurrences */
    uint32_t degree; /* its conflicts: the other keys on the digits of its occurrences */
    uint32_t head;   /* first occurrence */
    uint32_t slot;   /* position in by_count[count], or NONE when not selectable */
} entry;

/* The selectable entries of one count, in any order. */
typedef struct id_list {
    uint32_t *items;
    size_t len;
    size_t cap;
} id_list;

/* The per-column arrays of one digit position: its list head and live degree. */
typedef struct digit_column {
    uint32_t *head;
    uint32_t *degree;
    size_t rows; /* rows with room */
} digit_column;

/* A pair of digits met while the keys of one signal are counted (see keys_of). */
typedef struct met_pair {
    uint32_t cell; /* its key's counter */
    uint32_t out;
    uint32_t k[2];
    int32_t pos[2];
} met_pair;

/*
 * Scratch of keys_of: per partner signal met, a block of counters indexed by (shift, sub), with
 * the entry made for each; the pairs met, in order.
 */
typedef struct grouping {
    uint32_t *block_of; /* per signal: its block, or NONE */
    size_t cap_signals;
    uint32_t *owner; /* per block: the partner signal */
    uint32_t *count; /* per block: per_block counters */
    uint32_t *id;    /* per counter: the entry, or NONE */
    size_t n_blocks;
    size_t cap_blocks;
    uint32_t per_block;
    met_pair *pairs;
    size_t n_pairs;
    size_t cap_pairs;
} grouping;

struct alk__conflict {
    entry *entries;
    size_t n_entries;
    size_t cap_entries;
    uint32_t free_entry; /* free list through `head` */
    occ *occs;
    size_t n_occs;
    size_t cap_occs;
    uint32_t free_occ; /* free list through key_next */
    id_list *by_count; /* selectable entries */
    size_t n_counts;
    uint32_t top; /* no list above it is non-empty */
    /* Whether entries' degrees are kept up to date (from the end game on: see select). */
    bool tracking;
    digit_column *cols;
    grouping group;
};

/* ---- entries and their lists by count ---- */

/* Selection order among equal counts: whether entry a goes before entry b. */
static inline bool before(const entry *a, const entry *b) {
    if (a->gap != b->gap) {
        return a->gap < b->gap;
    }
    if (a->degree != b->degree) {
        return a->degree < b->degree;
    }
    return a->rank > b->rank;
}

/* Lists entry `id` under its count. */
static int list_insert(alk__conflict *cf, uint32_t id) {
    uint32_t c = cf->entries[id].count;
    if (c >= cf->n_counts) {
        size_t n = cf->n_counts, want = c + 1 > 2 * n ? c + 1 : 2 * n;
        id_list *h = alk_realloc(cf->by_count, want * sizeof(id_list));
        if (h == NULL) {
            return ALK_ENOMEM;
        }
        memset(h + n, 0, (want - n) * sizeof(id_list));
        cf->by_count = h;
        cf->n_counts = want;
    }
    id_list *h = &cf->by_count[c];
    if (h->len == h->cap) {
        void *items = h->items;
        int rv = alk_grow(&items, &h->cap, sizeof(uint32_t), h->len + 1);
        h->items = items;
        if (rv != ALK_OK) {
            return rv;
        }
    }
    cf->entries[id].slot = (uint32_t)h->len;
    h->items[h->len++] = id;
    cf->top = c > cf->top ? c : cf->top;
    return ALK_OK;
}

/* Takes entry `id` out of its count's list (if it is in one). */
static void list_remove(alk__conflict *cf, uint32_t id) {
    entry *e = &cf->entries[id];
    if (e->slot == NONE) {
        return;
    }
    id_list *h = &cf->by_count[e->count];
    uint32_t last = h->items[--h->len];
    h->items[e->slot] = last;
    cf->entries[last].slot = e->slot;
    e->slot = NONE;
}

static int entry_new(alk__cse *st, uint64_t key, uint32_t *ret_id) {
    alk__conflict *cf = st->cf;
    uint32_t id = cf->free_entry;
    if (id != NONE) {
        cf->free_entry = cf->entries[id].head;
    } else {
        if (cf->n_entries == cf->cap_entries) {
            void *items = cf->entries;
            int rv = alk_grow(&items, &cf->cap_entries, sizeof(entry), cf->n_entries + 1);
            cf->entries = items;
            if (rv != ALK_OK) {
                return rv;
            }
        }
        id = (uint32_t)cf->n_entries++;
    }
    bool latency_rule = st->method != ALK_CMVM_MC && st->method != ALK_CMVM_WMC;
    float l0 = st->ops[alk__key_id0(key)].latency, l1 = st->ops[alk__key_id1(key)].latency;
    uint64_t rank = key;
    if (st->quality->tie_seed != 0) {
        /* A seeded order of equal keys: a bijective mix of the key. */
        uint64_t z = (key ^ st->quality->tie_seed) * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 29)) * 0xBF58476D1CE4E5B9ull;
        rank = z ^ (z >> 32);
    }
    cf->entries[id] = (entry){
        .key = key,
        .rank = rank,
        .gap = latency_rule ? fabsf(l0 - l1) : 0.0f,
        .head = NONE,
        .slot = NONE,
    };
    *ret_id = id;
    return ALK_OK;
}

/* ---- digits and occurrences ---- */

static inline uint32_t *digit_head(alk__conflict *cf, uint32_t o, uint32_t k, int p,
                                   uint32_t n_bits) {
    return &cf->cols[o].head[(size_t)k * n_bits + (size_t)p];
}
static inline uint32_t *digit_degree(alk__conflict *cf, uint32_t o, uint32_t k, int p,
                                     uint32_t n_bits) {
    return &cf->cols[o].degree[(size_t)k * n_bits + (size_t)p];
}

/* Which side of occurrence `n` sits on digit (k, p) of its column. */
static inline int side_of(const occ *n, uint32_t k, int p) {
    return n->k[0] == k && n->pos[0] == p ? 0 : 1;
}

/* Makes room for the lists and degrees of column `o`'s rows. */
static int reserve_column(alk__cse *st, uint32_t o) {
    digit_column *dc = &st->cf->cols[o];
    size_t rows = st->columns[o].cap;
    if (rows <= dc->rows) {
        return ALK_OK;
    }
    size_t cells = rows * st->n_bits, old = dc->rows * st->n_bits;
    uint32_t *head = alk_realloc(dc->head, cells * sizeof(uint32_t));
    if (head == NULL) {
        return ALK_ENOMEM;
    }
    dc->head = head;
    uint32_t *degree = alk_realloc(dc->degree, cells * sizeof(uint32_t));
    if (degree == NULL) {
        return ALK_ENOMEM;
    }
    dc->degree = degree;
    memset(head + old, 0xFF, (cells - old) * sizeof(uint32_t));
    memset(degree + old, 0, (cells - old) * sizeof(uint32_t));
    dc->rows = rows;
    return ALK_OK;
}

/*
 * Adds occurrence (out, k, pos) to entry `id` (not listed by count): links it into its list and
 * both digits' lists.
 */
static int occ_add(alk__cse *st, uint32_t id, uint32_t out, const uint32_t k[2],
                   const int32_t pos[2]) {
    alk__conflict *cf = st->cf;
    uint32_t n = cf->free_occ;
    if (n != NONE) {
        cf->free_occ = cf->occs[n].key_next;
    } else {
        if (cf->n_occs == cf->cap_occs) {
            void *items = cf->occs;
            int rv = alk_grow(&items, &cf->cap_occs, sizeof(occ), cf->n_occs + 1);
            cf->occs = items;
            if (rv != ALK_OK) {
                return rv;
            }
        }
        n = (uint32_t)cf->n_occs++;
    }
    entry *e = &cf->entries[id];
    occ *o = &cf->occs[n];
    st->work += 4;
    *o = (occ){.entry = id, .out = out, .key_prev = NONE, .key_next = e->head};
    if (e->head != NONE) {
        cf->occs[e->head].key_prev = n;
    }
    e->head = n;
    e->count++;
    for (int side = 0; side < 2; side++) {
        o->k[side] = k[side];
        o->pos[side] = pos[side];
        uint32_t *head = digit_head(cf, out, k[side], pos[side], st->n_bits);
        uint32_t *degree = digit_degree(cf, out, k[side], pos[side], st->n_bits);
        /* Every key already on the digit conflicts once more with this one, and it with them. */
        for (uint32_t m = cf->tracking ? *head : NONE; m != NONE;) {
            const occ *other = &cf->occs[m];
            cf->entries[other->entry].degree++;
            m = other->dig_next[side_of(other, k[side], pos[side])];
        }
        cf->entries[id].degree += *degree;
        st->work += cf->tracking ? *degree : 0;
        o->dig_prev[side] = NONE;
        o->dig_next[side] = *head;
        if (*head != NONE) {
            occ *h = &cf->occs[*head];
            h->dig_prev[side_of(h, k[side], pos[side])] = n;
        }
        *head = n;
        (*degree)++;
    }
    return ALK_OK;
}

/*
 * Unlinks occurrence `n` from its entry and digits and frees the node. The
 * entry leaves its count's list; the caller requeues or kills it.
 */
static void occ_remove(alk__cse *st, uint32_t n) {
    alk__conflict *cf = st->cf;
    st->work += 4;
    occ *o = &cf->occs[n];
    uint32_t id = o->entry;
    list_remove(cf, id); /* its count changes: the caller requeues it */
    entry *e = &cf->entries[id];
    if (o->key_prev != NONE) {
        cf->occs[o->key_prev].key_next = o->key_next;
    } else {
        e->head = o->key_next;
    }
    if (o->key_next != NONE) {
        cf->occs[o->key_next].key_prev = o->key_prev;
    }
    e->count--;
    for (int side = 0; side < 2; side++) {
        uint32_t k = o->k[side];
        int p = o->pos[side];
        if (o->dig_prev[side] != NONE) {
            occ *prev = &cf->occs[o->dig_prev[side]];
            prev->dig_next[side_of(prev, k, p)] = o->dig_next[side];
        } else {
            *digit_head(cf, o->out, k, p, st->n_bits) = o->dig_next[side];
        }
        if (o->dig_next[side] != NONE) {
            occ *next = &cf->occs[o->dig_next[side]];
            next->dig_prev[side_of(next, k, p)] = o->dig_prev[side];
        }
        uint32_t *degree = digit_degree(cf, o->out, k, p, st->n_bits);
        (*degree)--;
        if (!cf->tracking) {
            continue;
        }
        e->degree -= *degree;
        st->work += *degree;
        for (uint32_t m = *digit_head(cf, o->out, k, p, st->n_bits); m != NONE;) {
            const occ *other = &cf->occs[m];
            cf->entries[other->entry].degree--;
            m = other->dig_next[side_of(other, k, p)];
        }
    }
    o->key_next = cf->free_occ;
    cf->free_occ = n;
}

/* Frees entry `id` and all its occurrences. */
static void entry_kill(alk__cse *st, uint32_t id) {
    alk__conflict *cf = st->cf;
    list_remove(cf, id);
    while (cf->entries[id].head != NONE) {
        occ_remove(st, cf->entries[id].head);
    }
    cf->entries[id].key = NO_KEY;
    cf->entries[id].head = cf->free_entry;
    cf->free_entry = id;
}

/* Whether the method accepts `key` with `count` occurrences (its latency rule, spec §5.4). */
static bool eligible(const alk__cse *st, uint64_t key, uint32_t count) {
    uint32_t id0 = alk__key_id0(key), id1 = alk__key_id1(key);
    float l0 = st->ops[id0].latency, l1 = st->ops[id1].latency;
    switch (st->method) {
    case ALK_CMVM_MC_DC:
        return l0 == l1;
    case ALK_CMVM_WMC_DC: {
        int accum, overlap, tail;
        alk__overlap_counts_bw(st->sig[id0].width, st->sig[id1].width, (int8_t)alk__key_shift(key),
                               &accum, &overlap, &tail);
        /* A concatenation (no overlap) costs nothing and adds no latency. */
        return overlap <= 0 || (float)count * (float)overlap - 256.0f * fabsf(l0 - l1) >= 0.0f;
    }
    default:
        return true;
    }
}

/* Entry `id`'s count changed (or it is new): listed under its count if selectable. */
static int requeue(alk__cse *st, uint32_t id) {
    entry *e = &st->cf->entries[id];
    list_remove(st->cf, id);
    if (e->count < 2) {
        entry_kill(st, id);
        return ALK_OK;
    }
    return eligible(st, e->key, e->count) ? list_insert(st->cf, id) : ALK_OK;
}

/* ---- finding keys ---- */

/*
 * Keys are found signal by signal. A key pairs digits of its two signals at a fixed (shift, sub):
 * counting the pairs of one signal's digits with every digit of its columns into a block of
 * (shift, sub) counters per partner signal finds its keys and their occurrences together, in
 * small arrays (no sort, no hash). The build counts each signal against the signals from itself
 * up; an extraction's new signal is the higher one of all its keys.
 */

/* The block of partner `b`, made on first use; NONE when out of memory. */
static uint32_t group_block(alk__conflict *cf, uint32_t b) {
    grouping *g = &cf->group;
    if (g->block_of[b] != NONE) {
        return g->block_of[b];
    }
    if (g->n_blocks == g->cap_blocks) {
        size_t cap = g->cap_blocks < 16 ? 16 : 2 * g->cap_blocks;
        uint32_t *owner = alk_realloc(g->owner, cap * sizeof(uint32_t));
        if (owner == NULL) {
            return NONE;
        }
        g->owner = owner;
        uint32_t *count = alk_realloc(g->count, cap * g->per_block * sizeof(uint32_t));
        if (count == NULL) {
            return NONE;
        }
        g->count = count;
        uint32_t *id = alk_realloc(g->id, cap * g->per_block * sizeof(uint32_t));
        if (id == NULL) {
            return NONE;
        }
        g->id = id;
        memset(count + g->cap_blocks * g->per_block, 0,
               (cap - g->cap_blocks) * g->per_block * sizeof(uint32_t));
        memset(id + g->cap_blocks * g->per_block, 0xFF,
               (cap - g->cap_blocks) * g->per_block * sizeof(uint32_t));
        g->cap_blocks = cap;
    }
    uint32_t block = (uint32_t)g->n_blocks++;
    g->owner[block] = b;
    g->block_of[b] = block;
    return block;
}

/*
 * Counts the pair of digit p of row ka (signal a) with digit q of row kb (signal b) of column
 * o: key (min, max, shift, sub) in the block of the partner signal.
 */
static int meet(alk__cse *st, uint32_t a, uint32_t ka, int p, bool neg, uint32_t b, uint32_t kb,
                int q, bool bneg, uint32_t o) {
    alk__conflict *cf = st->cf;
    grouping *g = &cf->group;
    met_pair pr = {.out = o};
    int shift;
    if (b == a) {
        /* A self pair goes (higher, lower): shift < 0, id0's digit is the higher one. */
        int lo = p < q ? p : q, hi = p < q ? q : p;
        shift = lo - hi;
        pr.k[0] = pr.k[1] = ka;
        pr.pos[0] = hi;
        pr.pos[1] = lo;
    } else if (a < b) {
        shift = q - p;
        pr.k[0] = ka, pr.k[1] = kb, pr.pos[0] = p, pr.pos[1] = q;
    } else {
        shift = p - q;
        pr.k[0] = kb, pr.k[1] = ka, pr.pos[0] = q, pr.pos[1] = p;
    }
    uint32_t block = group_block(cf, b);
    if (block == NONE) {
        return ALK_ENOMEM;
    }
    pr.cell = block * g->per_block + (uint32_t)(shift + (int)st->n_bits - 1) * 2 + (neg != bneg);
    g->count[pr.cell]++;
    if (g->n_pairs == g->cap_pairs) {
        void *items = g->pairs;
        int rv = alk_grow(&items, &g->cap_pairs, sizeof(met_pair), g->n_pairs + 1);
        g->pairs = items;
        if (rv != ALK_OK) {
            return rv;
        }
    }
    g->pairs[g->n_pairs++] = pr;
    st->work += 4;
    return ALK_OK;
}

/*
 * Finds the keys of signal `a`: its digits paired with the digits of its columns, of the signals
 * from `a` up (`upward`, the build) or of every signal (the newest one). Keys met twice or more
 * become live entries.
 */
static int keys_of(alk__cse *st, uint32_t a, bool upward) {
    alk__conflict *cf = st->cf;
    grouping *g = &cf->group;
    int rv = ALK_OK;
    const slot *sl = st->slots + st->sig[a].slot_start;
    for (uint32_t i = 0; i < st->sig[a].slot_len && rv == ALK_OK; i++) {
        const column *c = &st->columns[sl[i].out];
        uint32_t ka = sl[i].index;
        const row *ra = &c->rows[ka];
        for (uint64_t m = ra->pos | ra->neg; m != 0 && rv == ALK_OK; m &= m - 1) {
            int p = __builtin_ctzll(m);
            bool neg = (ra->neg >> p) & 1;
            for (uint32_t kb = 0; kb < c->len && rv == ALK_OK; kb++) {
                const row *rb = &c->rows[kb];
                uint32_t b = rb->expr;
                if (upward && b < a) {
                    continue;
                }
                uint64_t mb = rb->pos | rb->neg;
                if (b == a) {
                    mb &= ~((2ull << p) - 1); /* the pairs of one row once */
                }
                for (; mb != 0 && rv == ALK_OK; mb &= mb - 1) {
                    int q = __builtin_ctzll(mb);
                    rv = meet(st, a, ka, p, neg, b, kb, q, (rb->neg >> q) & 1, sl[i].out);
                }
            }
        }
    }
    /* The keys met twice: entries with their occurrences, then listed by count. */
    for (size_t t = 0; t < g->n_pairs && rv == ALK_OK; t++) {
        const met_pair *pr = &g->pairs[t];
        if (g->count[pr->cell] < 2) {
            continue;
        }
        uint32_t *id = &g->id[pr->cell];
        if (*id == NONE) {
            uint32_t b = g->owner[pr->cell / g->per_block];
            uint32_t index = pr->cell % g->per_block;
            int shift = (int)(index / 2) - ((int)st->n_bits - 1);
            rv = entry_new(st, alk__make_key(a < b ? a : b, a < b ? b : a, shift, index & 1), id);
        }
        if (rv == ALK_OK) {
            rv = occ_add(st, *id, pr->out, pr->k, pr->pos);
        }
    }
    for (size_t t = 0; t < g->n_pairs; t++) {
        uint32_t cell = g->pairs[t].cell;
        if (g->id[cell] != NONE && rv == ALK_OK) {
            rv = requeue(st, g->id[cell]);
        }
        g->id[cell] = NONE;
        g->count[cell] = 0;
    }
    for (size_t b = 0; b < g->n_blocks; b++) {
        g->block_of[g->owner[b]] = NONE;
    }
    g->n_blocks = 0;
    g->n_pairs = 0;
    return rv;
}

/* Makes room in the grouping for the signals there are. */
static int group_reserve(alk__cse *st) {
    grouping *g = &st->cf->group;
    size_t old = g->cap_signals;
    if (st->n_ops <= old) {
        return ALK_OK;
    }
    void *items = g->block_of;
    int rv = alk_grow(&items, &g->cap_signals, sizeof(uint32_t), st->n_ops);
    g->block_of = items;
    if (rv == ALK_OK) {
        memset(g->block_of + old, 0xFF, (g->cap_signals - old) * sizeof(uint32_t));
    }
    return rv;
}

int alk__conflict_start(alk__cse *st) {
    alk__conflict *cf = alk_calloc(1, sizeof(alk__conflict));
    if (cf == NULL) {
        return ALK_ENOMEM;
    }
    st->cf = cf;
    cf->free_entry = cf->free_occ = NONE;
    cf->group.per_block = 2 * (2 * st->n_bits - 1);
    cf->cols = alk_calloc((size_t)st->n_out + 1, sizeof(digit_column));
    int rv = cf->cols == NULL ? ALK_ENOMEM : group_reserve(st);
    for (uint32_t o = 0; o < st->n_out && rv == ALK_OK; o++) {
        rv = reserve_column(st, o);
    }
    for (uint32_t a = 0; a < st->n_ops && rv == ALK_OK; a++) {
        rv = keys_of(st, a, true);
    }
    return rv;
}

void alk__conflict_free(alk__conflict *cf, uint32_t n_out) {
    if (cf == NULL) {
        return;
    }
    alk_free(cf->entries);
    alk_free(cf->occs);
    for (size_t c = 0; cf->by_count != NULL && c < cf->n_counts; c++) {
        alk_free(cf->by_count[c].items);
    }
    alk_free(cf->by_count);
    for (uint32_t o = 0; cf->cols != NULL && o < n_out; o++) {
        alk_free(cf->cols[o].head);
        alk_free(cf->cols[o].degree);
    }
    alk_free(cf->cols);
    alk_free(cf->group.block_of);
    alk_free(cf->group.owner);
    alk_free(cf->group.count);
    alk_free(cf->group.id);
    alk_free(cf->group.pairs);
    alk_free(cf);
}

/* ---- the extraction loop's hooks ---- */

/* Exact number of replacements of a self key (its pair count counts overlapping chains). */
static uint32_t self_replacements(const alk__cse *st, uint64_t key) {
    uint32_t e = alk__key_id0(key), n = 0;
    const slot *s = st->slots + st->sig[e].slot_start;
    for (uint32_t i = 0; i < st->sig[e].slot_len; i++) {
        const row *r = &st->columns[s[i].out].rows[s[i].index];
        uint64_t mp, mn;
        alk__find_matches(r, r, true, -alk__key_shift(key), alk__key_sub(key), &mp, &mn);
        n += (uint32_t)alk__popcount64(mp | mn);
    }
    return n;
}

/* Entry `id`'s conflicts, counted: the other keys on the digits of its occurrences. */
static uint32_t entry_degree(alk__cse *st, uint32_t id) {
    alk__conflict *cf = st->cf;
    uint32_t sum = 0;
    for (uint32_t n = cf->entries[id].head; n != NONE; n = cf->occs[n].key_next) {
        const occ *o = &cf->occs[n];
        sum += *digit_degree(cf, o->out, o->k[0], o->pos[0], st->n_bits) +
               *digit_degree(cf, o->out, o->k[1], o->pos[1], st->n_bits) - 2;
        st->work += 2;
    }
    return sum;
}

/*
 * Degrees are counted for the candidates of each selection while counts are high (few keys per
 * count, many keys per digit), then kept up to date from the end game on (many keys of two or
 * three occurrences, few per digit): keeping them from the start would walk the long lists of
 * the first extractions at every change, counting them in the end game would rescan hundreds of
 * candidates at every selection.
 */
static void track_from_now(alk__cse *st) {
    alk__conflict *cf = st->cf;
    for (size_t id = 0; id < cf->n_entries; id++) {
        if (cf->entries[id].key != NO_KEY) {
            cf->entries[id].degree = entry_degree(st, (uint32_t)id);
        }
    }
    cf->tracking = true;
}

int alk__conflict_select(alk__cse *st, uint64_t *ret_key) {
    alk__conflict *cf = st->cf;
    while (!cf->tracking && cf->top >= 2 && cf->by_count[cf->top].len == 0) {
        cf->top--;
    }
    if (!cf->tracking && cf->top <= TRACK_COUNT) {
        track_from_now(st);
    }
    for (uint32_t c = cf->top; c >= 2; c--) {
        id_list *h = &cf->by_count[c];
        uint32_t best = NONE;
        for (size_t i = 0; i < h->len;) {
            uint32_t id = h->items[i];
            entry *e = &cf->entries[id];
            /* Overlapping self pairs can overstate a self key: it must still replace twice. */
            if (alk__key_id0(e->key) == alk__key_id1(e->key) && self_replacements(st, e->key) < 2) {
                list_remove(cf, id); /* stays live (its digits conflict) but is never selected */
                continue;
            }
            if (!cf->tracking) {
                e->degree = entry_degree(st, id);
            }
            st->work += 2;
            if (best == NONE || before(e, &cf->entries[best])) {
                best = id;
            }
            i++;
        }
        if (best != NONE) {
            /* The selected key leaves with its occurrences before its digits go. */
            *ret_key = cf->entries[best].key;
            entry_kill(st, best);
            return ALK_OK;
        }
        cf->top = c - 1;
    }
    *ret_key = NO_KEY;
    return ALK_OK;
}

int alk__conflict_digit_removed(alk__cse *st, uint32_t o, uint32_t k, int p) {
    alk__conflict *cf = st->cf;
    uint32_t *head = digit_head(cf, o, k, p, st->n_bits);
    while (*head != NONE) {
        uint32_t id = cf->occs[*head].entry;
        occ_remove(st, *head);
        int rv = requeue(st, id);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    return ALK_OK;
}

int alk__conflict_row_added(alk__cse *st, uint32_t o) {
    return reserve_column(st, o);
}

int alk__conflict_commit(alk__cse *st) {
    int rv = group_reserve(st);
    return rv == ALK_OK ? keys_of(st, (uint32_t)st->n_ops - 1, false) : rv;
}
