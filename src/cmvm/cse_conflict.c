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
 * Design. Every live key (pair count >= 2, spec §5.2 counting) has an entry holding its count
 * and the list of its occurrences (pairs of digits). Every digit has the list of the occurrences
 * that use it: one node per (key, occurrence), linked into the key's list and into both digits'
 * lists (doubly linked, so any removal is O(1)); a digit's live degree is the length of its list.
 * Removing a digit walks its list only: every key using it loses that occurrence and, below two,
 * dies. A key's conflicts are computed when it competes for selection: the sum over its
 * occurrences' digits of the other keys there. Entries are listed per count; selection scans the
 * highest non-empty count (in the end game, where most extractions happen, a count of two or
 * three). Incremental degrees with a heap per count were tried: every digit change then moves
 * every key on the digit, ten times slower.
 *
 * The entries are built from the digits by listing every pair of digits of every column and
 * sorting them by key (a radix sort); later keys all contain the newest signal, so they are new
 * by construction and come from the pairs of its rows alone.
 *
 * Thread rule: the structure belongs to one CSE state (one call, one thread).
 */
#include "cmvm/cse_int.h"
#include "core/alloc.h"

#include <math.h>
#include <string.h>

#define NONE UINT32_MAX

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
    uint32_t degree; /* its conflicts when it last competed for selection */
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

/* A pair of digits of the new signal's rows, before it is known to recur. */
typedef struct new_pair {
    uint64_t key;
    uint32_t out;
    uint32_t k[2];
    int32_t pos[2];
} new_pair;

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
    digit_column *cols;
    new_pair *pending; /* the new signal's pairs of the current extraction */
    size_t n_pending;
    size_t cap_pending;
    new_pair *sorted; /* scratch of the radix sort, cap_sorted items */
    size_t cap_sorted;
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
    st->work += 2;
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
    st->work += 2;
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
        (*digit_degree(cf, o->out, k, p, st->n_bits))--;
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

/* ---- building from the current digits ---- */

/*
 * The key of digit (e, row ke, p, neg) with digit (f, row kf, q, fneg) of the same column, and
 * the rows and positions of its id0 and id1 digits.
 */
static uint64_t pair_key(uint32_t e, uint32_t ke, int p, bool neg, uint32_t f, uint32_t kf, int q,
                         bool fneg, uint32_t k[2], int32_t pos[2]) {
    bool sub = neg != fneg;
    if (e == f) {
        /* A self pair goes (higher, lower): shift < 0, id0's digit is the higher one. */
        int lo = p < q ? p : q, hi = p < q ? q : p;
        k[0] = k[1] = ke;
        pos[0] = hi;
        pos[1] = lo;
        return alk__make_key(e, e, lo - hi, sub);
    }
    if (e < f) {
        k[0] = ke, k[1] = kf, pos[0] = p, pos[1] = q;
        return alk__make_key(e, f, q - p, sub);
    }
    k[0] = kf, k[1] = ke, pos[0] = q, pos[1] = p;
    return alk__make_key(f, e, p - q, sub);
}

static int pending_push(alk__conflict *cf, new_pair pr) {
    if (cf->n_pending == cf->cap_pending) {
        void *items = cf->pending;
        int rv = alk_grow(&items, &cf->cap_pending, sizeof(new_pair), cf->n_pending + 1);
        cf->pending = items;
        if (rv != ALK_OK) {
            return rv;
        }
    }
    cf->pending[cf->n_pending++] = pr;
    return ALK_OK;
}

/* Sorts the pending pairs by key: LSD radix sort by bytes, skipping bytes all keys share. */
static int sort_pending(alk__cse *st) {
    alk__conflict *cf = st->cf;
    size_t n = cf->n_pending;
    st->work += 4 * n;
    if (n < 2) {
        return ALK_OK;
    }
    if (cf->cap_sorted < n) {
        void *items = cf->sorted;
        int rv = alk_grow(&items, &cf->cap_sorted, sizeof(new_pair), n);
        cf->sorted = items;
        if (rv != ALK_OK) {
            return rv;
        }
    }
    new_pair *from = cf->pending, *to = cf->sorted;
    for (int shift = 0; shift < 64; shift += 8) {
        size_t start[257] = {0};
        for (size_t i = 0; i < n; i++) {
            start[((from[i].key >> shift) & 0xFF) + 1]++;
        }
        if (start[((from[0].key >> shift) & 0xFF) + 1] == n) {
            continue; /* every key has this byte */
        }
        for (int b = 0; b < 256; b++) {
            start[b + 1] += start[b];
        }
        for (size_t i = 0; i < n; i++) {
            to[start[(from[i].key >> shift) & 0xFF]++] = from[i];
        }
        new_pair *t = from;
        from = to;
        to = t;
    }
    if (from != cf->pending) {
        memcpy(cf->pending, from, n * sizeof(new_pair));
    }
    return ALK_OK;
}

/* Turns the pending pairs into entries: every key seen at least twice becomes live. */
static int commit_pending(alk__cse *st) {
    alk__conflict *cf = st->cf;
    int rv = sort_pending(st);
    for (size_t i = 0, j = 0; i < cf->n_pending && rv == ALK_OK; i = j) {
        for (j = i + 1; j < cf->n_pending && cf->pending[j].key == cf->pending[i].key; j++) {
        }
        if (j - i < 2) {
            continue;
        }
        uint32_t id;
        rv = entry_new(st, cf->pending[i].key, &id);
        for (size_t t = i; t < j && rv == ALK_OK; t++) {
            rv = occ_add(st, id, cf->pending[t].out, cf->pending[t].k, cf->pending[t].pos);
        }
        if (rv == ALK_OK) {
            rv = requeue(st, id);
        }
    }
    cf->n_pending = 0;
    return rv;
}

/* Pends the pairs of digit (row k, p) of column `o` with the digits of rows [from, len). */
static int pend_pairs(alk__cse *st, uint32_t o, uint32_t k, int p, uint32_t from) {
    const column *c = &st->columns[o];
    const row *r = &c->rows[k];
    bool neg = (r->neg >> p) & 1;
    for (uint32_t k2 = from; k2 < c->len; k2++) {
        const row *r2 = &c->rows[k2];
        uint64_t m2 = r2->pos | r2->neg;
        if (k2 == k) {
            m2 &= ~((2ull << p) - 1); /* each pair of one row once */
        }
        for (; m2 != 0; m2 &= m2 - 1) {
            int q = __builtin_ctzll(m2);
            new_pair pr = {.out = o};
            pr.key =
                pair_key(r->expr, k, p, neg, r2->expr, k2, q, (r2->neg >> q) & 1, pr.k, pr.pos);
            st->work += 2;
            int rv = pending_push(st->cf, pr);
            if (rv != ALK_OK) {
                return rv;
            }
        }
    }
    return ALK_OK;
}

int alk__conflict_start(alk__cse *st) {
    alk__conflict *cf = alk_calloc(1, sizeof(alk__conflict));
    if (cf == NULL) {
        return ALK_ENOMEM;
    }
    st->cf = cf;
    cf->free_entry = cf->free_occ = NONE;
    cf->cols = alk_calloc((size_t)st->n_out + 1, sizeof(digit_column));
    int rv = cf->cols == NULL ? ALK_ENOMEM : ALK_OK;
    /* Every pair of digits of a column is one occurrence of one key; columns one by one keep
     * the pending list short, then the keys are merged over the columns. */
    for (uint32_t o = 0; o < st->n_out && rv == ALK_OK; o++) {
        rv = reserve_column(st, o);
        const column *c = &st->columns[o];
        for (uint32_t k = 0; k < c->len && rv == ALK_OK; k++) {
            for (uint64_t m = c->rows[k].pos | c->rows[k].neg; m != 0 && rv == ALK_OK; m &= m - 1) {
                rv = pend_pairs(st, o, k, __builtin_ctzll(m), k);
            }
        }
    }
    return rv == ALK_OK ? commit_pending(st) : rv;
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
    alk_free(cf->pending);
    alk_free(cf->sorted);
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

/* Entry `id`'s conflicts: the other keys on the digits of its occurrences. */
static uint32_t entry_degree(alk__cse *st, uint32_t id) {
    alk__conflict *cf = st->cf;
    uint32_t sum = 0;
    for (uint32_t n = cf->entries[id].head; n != NONE; n = cf->occs[n].key_next) {
        const occ *o = &cf->occs[n];
        sum += *digit_degree(cf, o->out, o->k[0], o->pos[0], st->n_bits) +
               *digit_degree(cf, o->out, o->k[1], o->pos[1], st->n_bits) - 2;
    }
    return sum;
}

int alk__conflict_select(alk__cse *st, uint64_t *ret_key) {
    alk__conflict *cf = st->cf;
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
            e->degree = entry_degree(st, id);
            st->work += 2 + 2 * e->count;
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
    int rv = reserve_column(st, o);
    const column *c = &st->columns[o];
    uint32_t k = (uint32_t)c->len - 1;
    /* The new row's digits with every digit of the column, its own higher digits included. */
    for (uint64_t m = c->rows[k].pos | c->rows[k].neg; m != 0 && rv == ALK_OK; m &= m - 1) {
        rv = pend_pairs(st, o, k, __builtin_ctzll(m), 0);
    }
    return rv;
}

int alk__conflict_commit(alk__cse *st) {
    return commit_pending(st);
}
