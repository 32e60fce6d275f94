/*
 * Greedy common-subexpression elimination of one stage kernel (spec cmvm.md §5), in the
 * reference's exact selection order; the digits left per output are then summed by the emission
 * heap of emit.c (§6).
 *
 * Design. The reference keeps a sorted table of every two-digit pattern ("key") occurring at
 * least twice, rescans it in full to select, and after each extraction recounts every pattern
 * that touches the two consumed signals. The table is however a pure function of the current
 * digits, and the selected key is the maximum of (score, key) in the table's order (a ">=" scan
 * keeps the last of equal scores; the order is (id1, id0, sub, shift)). So this file keeps the
 * same choice with far less work (spec §14.1):
 *
 *  - digits live as bitsets: the row of signal e in output o is a pair of 64-bit masks (positive
 *    and negative digits), stored per output in `columns`; every signal lists the outputs where it
 *    has a row (`slots`), and keeps "bit planes" (per digit position, the outputs holding it), so
 *    the exact count of a key is a handful of popcounts;
 *  - an extraction only removes digits of its two operands and adds the new signal's digits, so
 *    the count of a key between existing signals can only shrink, and a key that falls below two
 *    occurrences never comes back. Keys of the new signal are counted from its few digits (in
 *    per-signal blocks of (shift, sub) counters) and queued when they occur twice;
 *  - keys are packed into a uint64 whose numeric order is the reference's table order. There is
 *    no count table: every live key is one entry of a max-heap of (score, key, stamp), queued
 *    once when its count is first known. A score depends only on the count and on ops that
 *    never change and, except in one case, never grows when the count shrinks; so an entry whose
 *    signals changed since its stamp over-estimates its score. Selection recounts and re-sifts
 *    the heap top until it is exact (lazy greedy): it is then the maximum of (score, key) over
 *    all live keys, as the reference's scan finds it, and a key found below two occurrences
 *    leaves for good. The exception, wmc-dc/wmc-pdc with a negative overlap (whose unsigned
 *    product wraps, spec §5.4), lives in a side list rescored exactly at every selection.
 *    (A hash table of counts beside the heap cost two thirds of the time in cache misses.)
 *
 * Float arithmetic (scores, intervals, latencies) copies the reference's float32/double mixing.
 * Counts follow the reference exactly, including the overestimate for overlapping self pairs.
 *
 * Thread rule: one call owns all its state; concurrent calls share nothing.
 */
#include "cmvm/cse_int.h"
#include "core/alloc.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/*
 * Counting is mostly population counts. The build targets baseline x86-64, which has no popcnt
 * instruction (and libgcc's popcount call is slow), so the counting functions exist twice:
 * compiled for the popcnt instruction, picked at run time when the CPU has it, and portable.
 * Both share always-inlined bodies with the population count as a parameter.
 */
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define POPCOUNT(hw, x) ((hw) ? (uint32_t)__builtin_popcountll(x) : (uint32_t)alk__popcount64(x))

/* ---- heap of (score, key, stamp) ---- */

/*
 * A heap entry is the whole record of a live key: one 128-bit integer holding, from the top,
 * the score as a 40-bit monotone code, the 61-bit key, and the 27-bit stamp (the extraction at
 * which the score was computed). Its unsigned order is the order of (score, key): keys are
 * unique in the heap, so the stamp below them never decides.
 *
 * Score codes: the integer methods (mc, wmc) score count or count x overlap, an integer below
 * 2^39 (a uint32 count times an int8 overlap); the others score a float32, coded by its bits
 * made monotone (scores are never NaN and never -0.0).
 */
__extension__ typedef unsigned __int128 hentry;

enum { STAMP_BITS = 27 };

static inline hentry make_entry(uint64_t code, uint64_t key, uint32_t stamp) {
    return ((hentry)code << (ALK__KEY_BITS + STAMP_BITS)) | ((hentry)key << STAMP_BITS) | stamp;
}
static inline uint64_t entry_key(hentry e) {
    return (uint64_t)(e >> STAMP_BITS) & (((uint64_t)1 << ALK__KEY_BITS) - 1);
}
static inline uint32_t entry_stamp(hentry e) {
    return (uint32_t)e & ((1u << STAMP_BITS) - 1);
}
/* The (score, key) part: equal for two entries of one key with the same score. */
static inline hentry entry_rank(hentry e) {
    return e >> STAMP_BITS;
}

/* A 4-ary max-heap of entries: half the depth of a binary heap. */
typedef struct heap {
    hentry *items;
    size_t len;
    size_t cap;
} heap;

static void heap_sift_up(heap *h, size_t i, hentry e) {
    while (i > 0) {
        size_t parent = (i - 1) / 4;
        if (e <= h->items[parent]) {
            break;
        }
        h->items[i] = h->items[parent];
        i = parent;
    }
    h->items[i] = e;
}

/* The largest child of `i`, or SIZE_MAX for a leaf; the grandchildren are prefetched. */
static inline size_t heap_best_child(const heap *h, size_t i) {
    size_t c = 4 * i + 1, n = h->len;
    if (c >= n) {
        return SIZE_MAX;
    }
    const hentry *it = h->items;
    for (size_t g = 4 * c + 1, k = 0; k < 4 && g < n; k++, g += 4) {
        __builtin_prefetch(&it[g]);
    }
    if (c + 4 <= n) {
        size_t a = it[c + 1] > it[c] ? c + 1 : c;
        size_t b = it[c + 3] > it[c + 2] ? c + 3 : c + 2;
        return it[b] > it[a] ? b : a;
    }
    size_t best = c;
    for (size_t k = c + 1; k < n; k++) {
        best = it[k] > it[best] ? k : best;
    }
    return best;
}

static void heap_sift_down(heap *h, size_t i, hentry e) {
    for (;;) {
        size_t best = heap_best_child(h, i);
        if (best == SIZE_MAX || h->items[best] <= e) {
            break;
        }
        h->items[i] = h->items[best];
        i = best;
    }
    h->items[i] = e;
}

/* Appends `e` without restoring the order. */
static int heap_append(heap *h, hentry e) {
    if (h->len == h->cap) {
        void *items = h->items;
        int rv = alk_grow(&items, &h->cap, sizeof(hentry), h->len + 1);
        h->items = items;
        if (rv != ALK_OK) {
            return rv;
        }
    }
    h->items[h->len++] = e;
    return ALK_OK;
}

/*
 * Removes the top: the hole goes down along the larger children to a leaf and the last entry
 * rises from there (it usually belongs near the bottom, so this saves a comparison per level).
 */
static void heap_pop(heap *h) {
    hentry last = h->items[--h->len];
    if (h->len == 0) {
        return;
    }
    size_t i = 0;
    for (size_t best; (best = heap_best_child(h, i)) != SIZE_MAX; i = best) {
        h->items[i] = h->items[best];
    }
    heap_sift_up(h, i, last);
}

/* Floyd's bottom-up construction over items[0, len). */
static void heap_build(heap *h) {
    if (h->len < 2) {
        return;
    }
    for (size_t i = (h->len - 2) / 4 + 1; i-- > 0;) {
        heap_sift_down(h, i, h->items[i]);
    }
}

/*
 * The selection queue: entries bucketed by a monotone function of their score code, and the
 * top of the highest non-empty bucket is the maximum entry. Only that top bucket is kept in heap
 * order; entries added below it are appended as they come, and a bucket is swept (stale entries
 * recounted, dead ones dropped, lowered ones moved down) and heapified when it becomes the top.
 * Most keys die before they reach the top, and a sweep drops them in one sequential pass where a
 * single heap of every live key popped each of them from its root, missing the cache at every
 * level. There are 2^bucket_bits buckets (64 for tiny kernels, up to 4096, see queue_init).
 * Integer codes get a bucket each up to the last one; float codes are bucketed by their top
 * bits (sign, exponent, and some mantissa bits).
 */
enum { QUEUE_MIN_BITS = 6, QUEUE_MAX_BITS = 12 };

typedef struct queue {
    heap *buckets; /* 2^bucket_bits */
    uint64_t nonempty[(1 << QUEUE_MAX_BITS) / 64];
    uint64_t unsorted[(1 << QUEUE_MAX_BITS) / 64]; /* buckets not in heap order */
    uint32_t top;                                  /* the highest non-empty bucket, when len > 0 */
    uint32_t bucket_bits;
    size_t len;
    bool float_codes;
} queue;

/* A queue sized for a kernel of `cells` entries (more keys, more distinct scores). */
static int queue_init(queue *q, bool float_codes, size_t cells) {
    uint32_t bits = QUEUE_MIN_BITS;
    while (bits < QUEUE_MAX_BITS && ((size_t)4 << bits) < cells) {
        bits++;
    }
    *q = (queue){.float_codes = float_codes, .bucket_bits = bits};
    q->buckets = alk_calloc((size_t)1 << bits, sizeof(heap));
    return q->buckets == NULL ? ALK_ENOMEM : ALK_OK;
}

static void queue_fini(queue *q) {
    for (size_t b = 0; q->buckets != NULL && b < ((size_t)1 << q->bucket_bits); b++) {
        alk_free(q->buckets[b].items);
    }
    alk_free(q->buckets);
    q->buckets = NULL;
}

static inline uint32_t queue_bucket(const queue *q, hentry e) {
    uint64_t code = (uint64_t)(e >> (ALK__KEY_BITS + STAMP_BITS));
    if (q->float_codes) {
        return (uint32_t)(code >> (32 - q->bucket_bits));
    }
    uint32_t last = (1u << q->bucket_bits) - 1;
    return code < last ? (uint32_t)code : last;
}

static inline bool bit_get(const uint64_t *bits, uint32_t b) {
    return (bits[b / 64] >> (b % 64)) & 1;
}
static inline void bit_put(uint64_t *bits, uint32_t b, bool on) {
    bits[b / 64] = on ? bits[b / 64] | (1ull << (b % 64)) : bits[b / 64] & ~(1ull << (b % 64));
}

/* Adds `e`: sifted into the top bucket, appended (unordered) anywhere else. */
static int queue_add(queue *q, hentry e) {
    uint32_t b = queue_bucket(q, e);
    heap *h = &q->buckets[b];
    int rv = heap_append(h, e);
    if (rv != ALK_OK) {
        return rv;
    }
    if (q->len == 0 || b > q->top) {
        q->top = b; /* it was empty: one entry is in order */
    } else if (b == q->top && !bit_get(q->unsorted, b)) {
        heap_sift_up(h, h->len - 1, e);
    } else {
        bit_put(q->unsorted, b, h->len > 1);
    }
    bit_put(q->nonempty, b, true);
    q->len++;
    return ALK_OK;
}

/* Bucket `b` emptied; if it was the top, the next non-empty one becomes the top. */
static void queue_emptied(queue *q, uint32_t b) {
    bit_put(q->nonempty, b, false);
    bit_put(q->unsorted, b, false);
    if (q->len == 0 || b != q->top) {
        return;
    }
    uint32_t w = q->top / 64;
    while (q->nonempty[w] == 0) {
        w--;
    }
    q->top = w * 64 + 63 - (uint32_t)__builtin_clzll(q->nonempty[w]);
}

/* Removes the top entry (the top bucket is in order). */
static void queue_pop(queue *q) {
    heap *h = &q->buckets[q->top];
    heap_pop(h);
    q->len--;
    if (h->len == 0) {
        queue_emptied(q, q->top);
    }
}

/* Replaces the top entry (the top bucket is in order) with `e`, whose rank is lower. */
static int queue_lower_top(queue *q, hentry e) {
    if (queue_bucket(q, e) == q->top) {
        heap_sift_down(&q->buckets[q->top], 0, e);
        return ALK_OK;
    }
    queue_pop(q);
    return queue_add(q, e);
}

/* ---- the state's selection part for the reference's order ---- */

/* A key with its count, exact at extraction `stamp`. */
typedef struct counted_key {
    uint64_t key;
    uint32_t count;
    uint32_t stamp;
} counted_key;

struct alk__cse_lazy {
    /* The live selectable keys: every key is queued once, when its count is first known. */
    queue queue;
    /* Keys whose score grows when their count shrinks (spec §5.4 wrap): kept out of the heap. */
    counted_key *nonmono;
    size_t n_nonmono;
    size_t cap_nonmono;
    uint64_t min_code; /* threshold_code() */
};

typedef alk__cse state;

static void queue_fini(queue *q);

static void lazy_free(alk__cse_lazy *lazy) {
    if (lazy != NULL) {
        queue_fini(&lazy->queue);
        alk_free(lazy->nonmono);
        alk_free(lazy);
    }
}

static void state_fini(state *st) {
    if (st->columns != NULL) {
        for (uint32_t o = 0; o < st->n_out; o++) {
            alk_free(st->columns[o].rows);
        }
    }
    alk_free(st->columns);
    alk_free(st->shift0);
    alk_free(st->shift1);
    alk_free(st->ops);
    alk_free(st->sig);
    alk_free(st->slots);
    lazy_free(st->lazy);
    alk_free(st->input_rows);
    alk_free(st->plane_pos);
    alk_free(st->plane_neg);
    alk_free(st->pairs.counts);
    alk_free(st->pairs.owner);
    alk_free(st->pairs.touched);
    alk__conflict_free(st->cf, st->n_out);
}

/* Registers a new signal (its op already appended) with no slots yet. */
static int add_signal(state *st) {
    size_t e = st->n_ops - 1;
    if (e >= st->cap_signals) {
        void *sig = st->sig;
        int rv = alk_grow(&sig, &st->cap_signals, sizeof(signal_info), e + 1);
        st->sig = sig;
        if (rv != ALK_OK) {
            return rv;
        }
    }
    st->sig[e] = (signal_info){
        .slot_start = st->n_slots,
        .slot_len = 0,
        .last_change = 0,
        .pair_block = NO_BLOCK,
        .width = alk__interval_bw(st->ops[e].qint),
    };
    return ALK_OK;
}

/* Appends the row (expr, pos, neg) to output `o` and its slot to the last signal. */
static int add_row(state *st, uint32_t o, uint32_t expr, uint64_t pos, uint64_t neg) {
    column *c = &st->columns[o];
    if (c->len == c->cap) {
        void *rows = c->rows;
        int rv = alk_grow(&rows, &c->cap, sizeof(row), c->len + 1);
        c->rows = rows;
        if (rv != ALK_OK) {
            return rv;
        }
    }
    if (st->n_slots == st->cap_slots) {
        void *slots = st->slots;
        int rv = alk_grow(&slots, &st->cap_slots, sizeof(slot), st->n_slots + 1);
        st->slots = slots;
        if (rv != ALK_OK) {
            return rv;
        }
    }
    c->rows[c->len] = (row){.expr = expr, .pos = pos, .neg = neg};
    st->slots[st->n_slots++] = (slot){.out = o, .index = (uint32_t)c->len};
    st->sig[expr].slot_len++;
    c->len++;
    return ALK_OK;
}

/* NAF digits of v as (positive, negative) masks (spec §3.2: equals the MSB-first CSD rule). */
static void naf_masks(int64_t v, uint64_t *ret_pos, uint64_t *ret_neg) {
    uint64_t pos = 0, neg = 0;
    for (int p = 0; v != 0 && p < 64; p++) {
        if (v & 1) {
            int d = 2 - (int)(v & 3);
            if (d > 0) {
                pos |= 1ull << p;
            } else {
                neg |= 1ull << p;
            }
            v -= d;
        }
        v /= 2;
    }
    *ret_pos = pos;
    *ret_neg = neg;
}

/* ---- scores (spec §5.4) ---- */

static bool method_is_valid(alk_cmvm_method m) {
    return m == ALK_CMVM_MC || m == ALK_CMVM_MC_DC || m == ALK_CMVM_MC_PDC || m == ALK_CMVM_WMC ||
           m == ALK_CMVM_WMC_DC || m == ALK_CMVM_WMC_PDC;
}

/*
 * Score of `key` with `count` occurrences. *ret_eligible is false for keys that can never be
 * selected (wmc with a negative overlap); *ret_nonmono marks scores that grow when the count
 * shrinks.
 */
static double key_score(const state *st, uint64_t key, uint32_t count, bool *ret_eligible,
                        bool *ret_nonmono) {
    const alk__op *op0 = &st->ops[alk__key_id0(key)];
    const alk__op *op1 = &st->ops[alk__key_id1(key)];
    *ret_eligible = true;
    *ret_nonmono = false;
    switch (st->method) {
    case ALK_CMVM_MC:
        return (double)count;
    case ALK_CMVM_MC_DC:
    case ALK_CMVM_MC_PDC: {
        float factor = 1e9f;
        float score = (float)count - factor * fabsf(op0->latency - op1->latency);
        return (double)score;
    }
    default:
        break;
    }
    /* [quirk] the overlap uses ops[id1].data, not the key's shift (spec §5.4). */
    int8_t shift = (int8_t)op1->data;
    int accum, overlap, tail;
    alk__overlap_counts_bw(st->sig[alk__key_id0(key)].width, st->sig[alk__key_id1(key)].width,
                           shift, &accum, &overlap, &tail);
    if (st->method == ALK_CMVM_WMC) {
        if (overlap < 0) {
            *ret_eligible = false;
        }
        return (double)((int64_t)count * overlap);
    }
    /* [quirk] uint32 x int: a negative overlap wraps to ~4.29e9 (spec §5.4). */
    uint32_t product = count * (uint32_t)overlap;
    *ret_nonmono = overlap < 0;
    float score = (float)product - 256.0f * fabsf(op0->latency - op1->latency);
    return (double)score;
}

/* Whether the method's scores are float32 values (else integers, see hentry). */
static bool has_float_scores(alk_cmvm_method m) {
    return m != ALK_CMVM_MC && m != ALK_CMVM_WMC;
}

/* The heap code of a score of the solve's method (see hentry). */
static uint64_t score_code(const state *st, double score) {
    if (!has_float_scores(st->method)) {
        return (uint64_t)score;
    }
    float f = (float)score;
    uint32_t bits;
    memcpy(&bits, &f, sizeof(bits));
    return (bits >> 31) ? (uint32_t)~bits : bits | 0x80000000u;
}

/* The code of the method's acceptance threshold: the best score must be >= 0, or anything. */
static uint64_t threshold_code(const state *st) {
    if (st->method == ALK_CMVM_MC_PDC || st->method == ALK_CMVM_WMC_PDC) {
        return 0;
    }
    return score_code(st, 0.0);
}

/* The heap entry of `key` with `count` occurrences, counted at the current extraction. */
static hentry scored_entry(const state *st, uint64_t key, uint32_t count) {
    bool eligible, nonmono;
    double score = key_score(st, key, count, &eligible, &nonmono);
    return make_entry(score_code(st, score), key, st->extraction);
}

/*
 * Queues a live key whose count was just established (exact at extraction st->extraction). Keys
 * that can never be selected stay out; keys whose score grows when the count shrinks go to the
 * `nonmono` list, which is rescored exactly at every selection.
 */
static int queue_key(state *st, uint64_t key, uint32_t count) {
    bool eligible, nonmono;
    double score = key_score(st, key, count, &eligible, &nonmono);
    if (!eligible) {
        return ALK_OK;
    }
    if (nonmono) {
        if (st->lazy->n_nonmono == st->lazy->cap_nonmono) {
            void *items = st->lazy->nonmono;
            int rv = alk_grow(&items, &st->lazy->cap_nonmono, sizeof(counted_key),
                              st->lazy->n_nonmono + 1);
            st->lazy->nonmono = items;
            if (rv != ALK_OK) {
                return rv;
            }
        }
        st->lazy->nonmono[st->lazy->n_nonmono++] =
            (counted_key){.key = key, .count = count, .stamp = st->extraction};
        return ALK_OK;
    }
    hentry e = make_entry(score_code(st, score), key, st->extraction);
    return queue_add(&st->lazy->queue, e);
}

/* Gives signal `y` a new block of counters; false when out of memory. */
static bool pair_block_new(state *st, uint32_t y) {
    pair_counts *pc = &st->pairs;
    if (pc->n_blocks == pc->cap_blocks) {
        size_t cap = pc->cap_blocks < 64 ? 64 : pc->cap_blocks * 2;
        size_t per = (size_t)1 << pc->block_bits;
        if (cap * per > UINT32_MAX) {
            return false; /* `touched` holds 32-bit offsets; never near in practice */
        }
        uint32_t *counts = alk_realloc(pc->counts, cap * per * sizeof(uint32_t));
        if (counts == NULL) {
            return false;
        }
        pc->counts = counts;
        memset(counts + pc->cap_blocks * per, 0, (cap - pc->cap_blocks) * per * sizeof(uint32_t));
        uint32_t *owner = alk_realloc(pc->owner, cap * sizeof(uint32_t));
        if (owner == NULL) {
            return false;
        }
        pc->owner = owner;
        uint32_t *touched = alk_realloc(pc->touched, cap * per * sizeof(uint32_t));
        if (touched == NULL) {
            return false;
        }
        pc->touched = touched;
        pc->cap_blocks = cap;
    }
    uint32_t b = (uint32_t)pc->n_blocks++;
    pc->owner[b] = y;
    st->sig[y].pair_block = b;
    return true;
}

/* The counters of the new signal's keys with signal `y`, or NULL when out of memory. */
static inline uint32_t *pair_block(state *st, uint32_t y) {
    if (st->sig[y].pair_block == NO_BLOCK && !pair_block_new(st, y)) {
        return NULL;
    }
    return st->pairs.counts + ((size_t)st->sig[y].pair_block << st->pairs.block_bits);
}

/* Counts one more occurrence of (shift = su - sy, sub) in `block`. */
static inline void pair_count(state *st, uint32_t *block, int shift, bool sub) {
    pair_counts *pc = &st->pairs;
    uint32_t *c = &block[(uint32_t)(shift + (int)st->n_bits - 1) * 2 + sub];
    if ((*c)++ == 0) {
        pc->touched[pc->n_touched++] = (uint32_t)(c - pc->counts);
    }
}

/*
 * Queues the keys of the new signal `u` seen at least twice, and clears the counters. They are
 * new keys: every one of them contains the new signal.
 */
static int commit_pairs(state *st, uint32_t u) {
    pair_counts *pc = &st->pairs;
    int rv = ALK_OK;
    for (size_t t = 0; t < pc->n_touched; t++) {
        uint32_t at = pc->touched[t];
        uint32_t count = pc->counts[at];
        pc->counts[at] = 0;
        if (count >= 2 && rv == ALK_OK) {
            uint32_t y = pc->owner[at >> pc->block_bits];
            uint32_t index = at & ((1u << pc->block_bits) - 1);
            int shift = (int)(index / 2) - ((int)st->n_bits - 1);
            uint64_t key = alk__make_key(y, u, shift, index & 1);
            rv = queue_key(st, key, count);
        }
    }
    for (size_t b = 0; b < pc->n_blocks; b++) {
        st->sig[pc->owner[b]].pair_block = NO_BLOCK;
    }
    pc->n_blocks = 0;
    pc->n_touched = 0;
    return rv;
}

/* ---- initial keys ---- */

/*
 * Adds the occurrences of every key between inputs a <= b to `hist`, indexed by
 * (shift + 128) * 2 + sub, from the bit planes: digit position p of a pairs with position q of b
 * in the outputs where both planes hold a digit (a == b: p < q within one row, shift p - q).
 */
static ALWAYS_INLINE void pair_histogram_with(const state *st, uint32_t a, uint32_t b,
                                              uint32_t *hist, uint16_t *touched, size_t *n_touched,
                                              bool hw) {
    uint32_t words = st->n_words, bits = st->n_bits;
    const uint64_t *pa = st->plane_pos + (size_t)a * bits * words;
    const uint64_t *na = st->plane_neg + (size_t)a * bits * words;
    const uint64_t *pb = st->plane_pos + (size_t)b * bits * words;
    const uint64_t *nb = st->plane_neg + (size_t)b * bits * words;
    for (uint32_t p = 0; p < bits; p++) {
        for (uint32_t q = a == b ? p + 1 : 0; q < bits; q++) {
            uint32_t same = 0, diff = 0;
            for (uint32_t w = 0; w < words; w++) {
                uint64_t ap = pa[p * words + w], an = na[p * words + w];
                uint64_t bp = pb[q * words + w], bn = nb[q * words + w];
                same += POPCOUNT(hw, ap & bp) + POPCOUNT(hw, an & bn);
                diff += POPCOUNT(hw, ap & bn) + POPCOUNT(hw, an & bp);
            }
            int shift = a == b ? (int)p - (int)q : (int)q - (int)p;
            uint16_t h = (uint16_t)((shift + 128) << 1);
            if (same != 0) {
                touched[*n_touched] = h;
                *n_touched += hist[h] == 0;
                hist[h] += same;
            }
            if (diff != 0) {
                touched[*n_touched] = h | 1;
                *n_touched += hist[h | 1] == 0;
                hist[h | 1] += diff;
            }
        }
    }
}

static void pair_histogram_portable(const state *st, uint32_t a, uint32_t b, uint32_t *hist,
                                    uint16_t *touched, size_t *n_touched) {
    pair_histogram_with(st, a, b, hist, touched, n_touched, false);
}

__attribute__((target("popcnt"))) static void pair_histogram_popcnt(const state *st, uint32_t a,
                                                                    uint32_t b, uint32_t *hist,
                                                                    uint16_t *touched,
                                                                    size_t *n_touched) {
    pair_histogram_with(st, a, b, hist, touched, n_touched, true);
}

/* Queues the keys between inputs a <= b seen at least twice; *n_keys counts them. */
static int count_input_pair(state *st, uint32_t a, uint32_t b, uint32_t *hist, uint16_t *touched,
                            size_t *n_keys) {
    size_t n_touched = 0;
    if (st->has_popcnt) {
        pair_histogram_popcnt(st, a, b, hist, touched, &n_touched);
    } else {
        pair_histogram_portable(st, a, b, hist, touched, &n_touched);
    }
    int rv = ALK_OK;
    for (size_t t = 0; t < n_touched; t++) {
        uint16_t h = touched[t];
        uint32_t count = hist[h];
        hist[h] = 0;
        if (count >= 2 && rv == ALK_OK) {
            rv = queue_key(st, alk__make_key(a, b, (h >> 1) - 128, h & 1), count);
            (*n_keys)++;
        }
    }
    return rv;
}

/* Queues every key between inputs (the reference's initial table); *ret_n_keys counts them. */
static int queue_initial_keys(state *st, size_t *ret_n_keys) {
    int rv = ALK_OK;
    *ret_n_keys = 0;
    uint32_t *hist = alk_calloc(512, sizeof(uint32_t));
    uint16_t *touched = alk_malloc(512 * sizeof(uint16_t));
    if (hist == NULL || touched == NULL) {
        rv = ALK_ENOMEM;
        goto done;
    }
    for (uint32_t a = 0; a < st->n_in && rv == ALK_OK; a++) {
        if (st->sig[a].slot_len == 0) {
            continue;
        }
        for (uint32_t b = a; b < st->n_in && rv == ALK_OK; b++) {
            if (st->sig[b].slot_len != 0) {
                rv = count_input_pair(st, a, b, hist, touched, ret_n_keys);
                st->work += (uint64_t)st->n_bits * st->n_bits * st->n_words;
            }
        }
    }
done:
    alk_free(hist);
    alk_free(touched);
    return rv;
}

/* ---- bit planes of the inputs ---- */

/* The digit positions in use, and the sizes that follow from them. */
static void measure_digits(state *st) {
    uint64_t used = 0;
    for (uint32_t o = 0; o < st->n_out; o++) {
        for (size_t k = 0; k < st->columns[o].len; k++) {
            used |= st->columns[o].rows[k].pos | st->columns[o].rows[k].neg;
        }
    }
    st->n_bits = used == 0 ? 1 : (uint32_t)(64 - __builtin_clzll(used));
    /* (shift, sub) counters of a pair block: 2 * (2 * n_bits - 1), rounded up to a power of 2. */
    st->pairs.block_bits = 1;
    while ((1u << st->pairs.block_bits) < 2 * (2 * st->n_bits - 1)) {
        st->pairs.block_bits++;
    }
    st->n_words = (st->n_out + 63) / 64;
}

static int build_planes(state *st) {
    size_t cells;
    size_t room = st->n_in + 64;
    if (!alk_mul_size(room * st->n_bits, st->n_words, &cells)) {
        return ALK_ELIMIT;
    }
    st->plane_pos = alk_calloc(cells + 1, sizeof(uint64_t));
    st->plane_neg = alk_calloc(cells + 1, sizeof(uint64_t));
    if (st->plane_pos == NULL || st->plane_neg == NULL) {
        return ALK_ENOMEM;
    }
    st->plane_signals = room;
    for (uint32_t i = 0; i < st->n_in; i++) {
        const slot *sl = st->slots + st->sig[i].slot_start;
        for (uint32_t k = 0; k < st->sig[i].slot_len; k++) {
            const row *r = &st->columns[sl[k].out].rows[sl[k].index];
            uint64_t bit = 1ull << (sl[k].out % 64);
            size_t word = sl[k].out / 64;
            for (uint64_t m = r->pos | r->neg; m != 0; m &= m - 1) {
                int p = __builtin_ctzll(m);
                size_t cell = ((size_t)i * st->n_bits + (size_t)p) * st->n_words + word;
                if ((r->pos >> p) & 1) {
                    st->plane_pos[cell] |= bit;
                } else {
                    st->plane_neg[cell] |= bit;
                }
            }
        }
    }
    return ALK_OK;
}

/* Makes room in the planes for signal `e` (zeroed). */
static int planes_reserve(state *st, size_t e) {
    if (e < st->plane_signals || st->plane_pos == NULL) {
        return ALK_OK;
    }
    size_t room = st->plane_signals * 2 > e + 1 ? st->plane_signals * 2 : e + 1;
    size_t per = (size_t)st->n_bits * st->n_words, cells;
    if (!alk_mul_size(room, per, &cells)) {
        return ALK_ELIMIT;
    }
    uint64_t *pos = alk_realloc(st->plane_pos, (cells + 1) * sizeof(uint64_t));
    if (pos == NULL) {
        return ALK_ENOMEM;
    }
    st->plane_pos = pos;
    uint64_t *neg = alk_realloc(st->plane_neg, (cells + 1) * sizeof(uint64_t));
    if (neg == NULL) {
        return ALK_ENOMEM;
    }
    st->plane_neg = neg;
    size_t old = st->plane_signals * per;
    memset(pos + old, 0, (cells - old) * sizeof(uint64_t));
    memset(neg + old, 0, (cells - old) * sizeof(uint64_t));
    st->plane_signals = room;
    return ALK_OK;
}

/* Adds the digits (pos, neg) of signal `e` in output `o` to its bit planes. */
static void planes_set(state *st, uint32_t e, uint32_t o, uint64_t pos, uint64_t neg) {
    if (st->plane_pos == NULL) {
        return; /* a branch: the conflict-aware selection does not count with them */
    }
    uint64_t bit = 1ull << (o % 64);
    for (uint64_t m = pos | neg; m != 0; m &= m - 1) {
        int p = __builtin_ctzll(m);
        size_t cell = ((size_t)e * st->n_bits + (size_t)p) * st->n_words + o / 64;
        if ((pos >> p) & 1) {
            st->plane_pos[cell] |= bit;
        } else {
            st->plane_neg[cell] |= bit;
        }
    }
}

/* Clears the digits `removed` of signal `i` in output `o` from its bit planes. */
static void planes_clear(state *st, uint32_t i, uint32_t o, uint64_t removed) {
    if (st->plane_pos == NULL) {
        return;
    }
    uint64_t bit = 1ull << (o % 64);
    for (uint64_t m = removed; m != 0; m &= m - 1) {
        int p = __builtin_ctzll(m);
        size_t cell = ((size_t)i * st->n_bits + (size_t)p) * st->n_words + o / 64;
        st->plane_pos[cell] &= ~bit;
        st->plane_neg[cell] &= ~bit;
    }
}

/* ---- selection (spec §5.3, §5.4) ---- */

/* Occurrences of (shift, sub) between row r0 (first signal) and row r1 (second signal). */
static ALWAYS_INLINE uint32_t row_pair_count(const row *r0, const row *r1, int shift, bool sub,
                                             bool hw) {
    uint64_t p1 = r1->pos, n1 = r1->neg;
    /* Align row 1 on row 0: digit s1 of row 1 pairs with digit s1 - shift of row 0. For one
     * signal (shift < 0) the pairs are (higher, lower) = (s, s + shift). */
    if (shift >= 0) {
        p1 >>= shift;
        n1 >>= shift;
    } else {
        p1 <<= -shift;
        n1 <<= -shift;
    }
    uint64_t m = sub ? (r0->pos & n1) | (r0->neg & p1) : (r0->pos & p1) | (r0->neg & n1);
    return POPCOUNT(hw, m);
}

/* Exact number of occurrences of `key` now (spec §5.2), from the bitset rows. */
static ALWAYS_INLINE uint32_t recount_with(const state *st, uint64_t key, bool hw) {
    uint32_t id0 = alk__key_id0(key), id1 = alk__key_id1(key);
    int shift = alk__key_shift(key);
    bool sub = alk__key_sub(key);
    const slot *s0 = st->slots + st->sig[id0].slot_start;
    const slot *s1 = st->slots + st->sig[id1].slot_start;
    uint32_t l0 = st->sig[id0].slot_len, l1 = st->sig[id1].slot_len;
    uint32_t count = 0;
    uint32_t shorter = l0 < l1 ? l0 : l1;
    if (id1 < st->n_in || (size_t)st->n_bits * st->n_words <= 4 * (size_t)shorter) {
        /* Popcounts over the bit planes, pairing position p of id0 with p + shift of id1:
         * always for two inputs, and whenever cheaper than walking the rows. */
        uint32_t words = st->n_words, bits = st->n_bits;
        const uint64_t *p0 = st->plane_pos + (size_t)id0 * bits * words;
        const uint64_t *n0 = st->plane_neg + (size_t)id0 * bits * words;
        const uint64_t *p1 = st->plane_pos + (size_t)id1 * bits * words;
        const uint64_t *n1 = st->plane_neg + (size_t)id1 * bits * words;
        int first = shift < 0 ? -shift : 0;
        int last = shift > 0 ? (int)bits - shift : (int)bits;
        for (int p = first; p < last; p++) {
            const uint64_t *a_pos = p0 + (size_t)p * words, *a_neg = n0 + (size_t)p * words;
            const uint64_t *b_pos = p1 + (size_t)(p + shift) * words;
            const uint64_t *b_neg = n1 + (size_t)(p + shift) * words;
            for (uint32_t w = 0; w < words; w++) {
                uint64_t m = sub ? (a_pos[w] & b_neg[w]) | (a_neg[w] & b_pos[w])
                                 : (a_pos[w] & b_pos[w]) | (a_neg[w] & b_neg[w]);
                count += POPCOUNT(hw, m);
            }
        }
        return count;
    }
    /* An input has a dense output -> row map: walk the other signal's (short) slot list. */
    if (id0 < st->n_in && (id1 >= st->n_in || l1 <= l0)) {
        const int32_t *dense = st->input_rows + (size_t)id0 * st->n_out;
        for (uint32_t j = 0; j < l1; j++) {
            int32_t k = dense[s1[j].out];
            if (k >= 0) {
                const column *c = &st->columns[s1[j].out];
                count += row_pair_count(&c->rows[k], &c->rows[s1[j].index], shift, sub, hw);
            }
        }
        return count;
    }
    if (id1 < st->n_in) {
        const int32_t *dense = st->input_rows + (size_t)id1 * st->n_out;
        for (uint32_t i = 0; i < l0; i++) {
            int32_t k = dense[s0[i].out];
            if (k >= 0) {
                const column *c = &st->columns[s0[i].out];
                count += row_pair_count(&c->rows[s0[i].index], &c->rows[k], shift, sub, hw);
            }
        }
        return count;
    }
    uint32_t i = 0, j = 0;
    while (i < l0 && j < l1) {
        if (s0[i].out < s1[j].out) {
            i++;
            continue;
        }
        if (s0[i].out > s1[j].out) {
            j++;
            continue;
        }
        const column *c = &st->columns[s0[i].out];
        count += row_pair_count(&c->rows[s0[i].index], &c->rows[s1[j].index], shift, sub, hw);
        i++;
        j++;
    }
    return count;
}

static uint32_t recount_portable(const state *st, uint64_t key) {
    return recount_with(st, key, false);
}

__attribute__((target("popcnt"))) static uint32_t recount_popcnt(const state *st, uint64_t key) {
    return recount_with(st, key, true);
}

/* Exact number of occurrences of `key` now (spec §5.2). */
static inline uint32_t recount(const state *st, uint64_t key) {
    return st->has_popcnt ? recount_popcnt(st, key) : recount_portable(st, key);
}

/* Work units of one recount (see alk__cse.work). */
#define RECOUNT_WORK(st) ((uint64_t)(st)->n_bits * (st)->n_words + 4)

/* Whether a count of `key` made at extraction `stamp` may be stale (a signal lost digits since). */
static inline bool is_stale(const state *st, uint64_t key, uint32_t stamp) {
    return st->sig[alk__key_id0(key)].last_change > stamp ||
           st->sig[alk__key_id1(key)].last_change > stamp;
}

/*
 * Selects the key to extract, or NO_KEY. Counts only shrink for existing keys, so a stale heap
 * entry over-estimates its (monotone) score: the top is recounted and re-sifted until it is
 * exact, and is then the maximum of (score, key) over all live keys, as the reference's scan of
 * its table finds it (lazy greedy). A key whose count fell below two leaves for good.
 */
/*
 * Brings the (unsorted) top bucket up to date and into heap order: stale entries are recounted,
 * dead ones dropped, lowered ones moved to their lower bucket.
 */
static int sweep_top(state *st) {
    queue *q = &st->lazy->queue;
    uint32_t b = q->top;
    heap *h = &q->buckets[b];
    size_t kept = 0, n = h->len;
    int rv = ALK_OK;
    for (size_t i = 0; i < n; i++) {
        hentry e = h->items[i];
        uint64_t key = entry_key(e);
        st->work++;
        if (rv == ALK_OK && is_stale(st, key, entry_stamp(e))) {
            uint32_t count = recount(st, key);
            st->work += RECOUNT_WORK(st);
            q->len--;
            if (count < 2) {
                continue;
            }
            e = scored_entry(st, key, count);
            if (queue_bucket(q, e) != b) {
                rv = queue_add(q, e); /* below the top: appended */
                continue;
            }
            q->len++;
        }
        h->items[kept++] = e;
    }
    h->len = kept;
    heap_build(h);
    bit_put(q->unsorted, b, false);
    if (kept == 0) {
        queue_emptied(q, b);
    }
    return rv;
}

static int select_key(state *st, uint64_t *ret_key) {
    queue *q = &st->lazy->queue;
    bool have = false;
    hentry best = 0;
    while (q->len > 0) {
        if (bit_get(q->unsorted, q->top)) {
            int rv = sweep_top(st);
            if (rv != ALK_OK) {
                return rv;
            }
            continue;
        }
        hentry top = q->buckets[q->top].items[0];
        uint64_t key = entry_key(top);
        if (!is_stale(st, key, entry_stamp(top))) {
            best = top;
            have = true;
            break;
        }
        uint32_t count = recount(st, key);
        st->work += RECOUNT_WORK(st);
        if (count < 2) {
            queue_pop(q);
            continue;
        }
        hentry fresh = scored_entry(st, key, count);
        if (entry_rank(fresh) == entry_rank(top)) {
            /* Same score: still the maximum, now known to be exact. */
            best = q->buckets[q->top].items[0] = fresh;
            have = true;
            break;
        }
        int rv = queue_lower_top(q, fresh);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    /* Wrapping keys are rescored exactly; dead ones leave the list. */
    size_t kept = 0;
    for (size_t i = 0; i < st->lazy->n_nonmono; i++) {
        counted_key ck = st->lazy->nonmono[i];
        st->work++;
        if (is_stale(st, ck.key, ck.stamp)) {
            ck.count = recount(st, ck.key);
            st->work += RECOUNT_WORK(st);
            ck.stamp = st->extraction;
        }
        if (ck.count < 2) {
            continue;
        }
        st->lazy->nonmono[kept++] = ck;
        hentry e = scored_entry(st, ck.key, ck.count);
        if (!have || e > best) {
            best = e;
            have = true;
        }
    }
    st->lazy->n_nonmono = kept;
    *ret_key = have && (best >> (ALK__KEY_BITS + STAMP_BITS)) >= st->lazy->min_code
                   ? entry_key(best)
                   : NO_KEY;
    return ALK_OK;
}

/* ---- extraction (spec §5.6, §5.7) ---- */

/*
 * Counts the keys of the new signal's row (the last row of column `c`) with every other digit of
 * the column: key (y, u, su - sy, sub) for digit sy of row y and su of u (spec §5.2).
 */
static int increment_output(state *st, const column *c) {
    const row *ru = &c->rows[c->len - 1];
    st->work += (uint64_t)c->len * (uint64_t)alk__popcount64(ru->pos | ru->neg);
    for (uint32_t k = 0; k + 1 < c->len; k++) {
        const row *ry = &c->rows[k];
        uint32_t *block = pair_block(st, ry->expr);
        if (block == NULL) {
            return ALK_ENOMEM;
        }
        for (uint64_t mu = ru->pos | ru->neg; mu != 0; mu &= mu - 1) {
            int su = __builtin_ctzll(mu);
            bool nu = (ru->neg >> su) & 1;
            for (uint64_t m = ry->pos | ry->neg; m != 0; m &= m - 1) {
                int sy = __builtin_ctzll(m);
                pair_count(st, block, su - sy, nu != (bool)((ry->neg >> sy) & 1));
            }
        }
    }
    /* Self pairs: each digit with the higher digits of the same row (shift < 0). */
    uint64_t mu = ru->pos | ru->neg;
    if ((mu & (mu - 1)) == 0) {
        return ALK_OK;
    }
    uint32_t *block = pair_block(st, ru->expr);
    if (block == NULL) {
        return ALK_ENOMEM;
    }
    for (; mu != 0; mu &= mu - 1) {
        int su = __builtin_ctzll(mu);
        bool nu = (ru->neg >> su) & 1;
        for (uint64_t higher = mu & (mu - 1); higher != 0; higher &= higher - 1) {
            int sy = __builtin_ctzll(higher);
            pair_count(st, block, su - sy, nu != (bool)((ru->neg >> sy) & 1));
        }
    }
    return ALK_OK;
}

void alk__find_matches(const row *ra, const row *rb, bool same, int r, bool sub,
                       uint64_t *ret_match_pos, uint64_t *ret_match_neg) {
    if (!same) {
        uint64_t bp = rb->pos >> r, bn = rb->neg >> r;
        *ret_match_pos = ra->pos & (sub ? bn : bp);
        *ret_match_neg = ra->neg & (sub ? bp : bn);
        return;
    }
    /* One signal: greedy from the low end, as the reference's ascending walk. */
    uint64_t pos = ra->pos, neg = ra->neg, mp = 0, mn = 0;
    for (int s = 0; s + r < 64; s++) {
        uint64_t bit = 1ull << s, partner = 1ull << (s + r);
        bool here_pos = pos & bit, here_neg = neg & bit;
        if (!here_pos && !here_neg) {
            continue;
        }
        bool partner_pos = pos & partner, partner_neg = neg & partner;
        bool match = sub ? ((here_pos && partner_neg) || (here_neg && partner_pos))
                         : ((here_pos && partner_pos) || (here_neg && partner_neg));
        if (!match) {
            continue;
        }
        if (here_pos) {
            mp |= bit;
        } else {
            mn |= bit;
        }
        pos &= ~(bit | partner);
        neg &= ~(bit | partner);
    }
    *ret_match_pos = mp;
    *ret_match_neg = mn;
}

/*
 * Conflict-aware mode: clears the matched digits of one column (m of row ka, m << r of row kb)
 * one at a time, so that every key using a cleared digit loses exactly that occurrence.
 */
static int remove_digits_one_by_one(state *st, uint32_t o, uint32_t ka, uint32_t kb, uint64_t m,
                                    int r) {
    for (; m != 0; m &= m - 1) {
        int p = __builtin_ctzll(m);
        const uint32_t rows[2] = {ka, kb};
        const int positions[2] = {p, p + r};
        for (int side = 0; side < 2; side++) {
            row *rw = &st->columns[o].rows[rows[side]];
            rw->pos &= ~(1ull << positions[side]);
            rw->neg &= ~(1ull << positions[side]);
            int rv = alk__conflict_digit_removed(st, o, rows[side], positions[side]);
            if (rv != ALK_OK) {
                return rv;
            }
        }
    }
    return ALK_OK;
}

static int apply_key(state *st, uint64_t key) {
    uint32_t id0 = alk__key_id0(key), id1 = alk__key_id1(key);
    int shift = alk__key_shift(key);
    bool sub = alk__key_sub(key);
    if (st->n_ops + 1 >= ALK__MAX_EXPR) {
        return ALK_ELIMIT;
    }

    /* The new op (pair_to_op). */
    const alk__op *op0 = &st->ops[id0], *op1 = &st->ops[id1];
    float cost, dlat;
    alk__cost_add(op0->qint, op1->qint, shift, &cost, &dlat);
    float lat0 = op0->latency, lat1 = op1->latency;
    alk__op op = {
        .id0 = (int32_t)id0,
        .id1 = (int32_t)id1,
        .opcode = sub ? 1 : 0,
        .data = shift,
        .qint = alk__qint_add(op0->qint, op1->qint, shift, false, sub),
        .latency = (lat1 > lat0 ? lat1 : lat0) + dlat,
        .cost = cost,
    };
    int rv = alk__push_op(&st->ops, &st->n_ops, &st->cap_ops, op);
    if (rv != ALK_OK) {
        return rv;
    }
    rv = add_signal(st);
    if (rv != ALK_OK) {
        return rv;
    }
    uint32_t u = (uint32_t)(st->n_ops - 1);
    rv = planes_reserve(st, u);
    if (rv != ALK_OK) {
        return rv;
    }

    uint32_t a = id0, b = id1;
    int r = shift;
    bool flip = false;
    if (shift < 0) {
        a = id1;
        b = id0;
        r = -shift;
        flip = true;
    }
    bool same = a == b;
    st->extraction++;
    st->sig[a].last_change = st->sig[b].last_change = st->extraction;

    /* Walk the outputs where both a and b have rows (slots are sorted by output). */
    uint32_t la = st->sig[a].slot_len, lb = st->sig[b].slot_len;
    st->work += ((uint64_t)la + lb) / 4 + 1;
    size_t start_a = st->sig[a].slot_start, start_b = st->sig[b].slot_start;
    uint32_t i = 0, j = 0;
    while (i < la && j < lb) {
        slot sa = st->slots[start_a + i];
        slot sb = st->slots[start_b + j];
        if (sa.out < sb.out) {
            i++;
            continue;
        }
        if (sa.out > sb.out) {
            j++;
            continue;
        }
        i++;
        j++;
        column *c = &st->columns[sa.out];
        row *ra = &c->rows[sa.index];
        row *rb = &c->rows[sb.index];
        uint64_t mp, mn;
        alk__find_matches(ra, rb, same, r, sub, &mp, &mn);
        uint64_t m = mp | mn;
        if (m == 0) {
            continue;
        }
        if (st->cf != NULL) {
            rv = remove_digits_one_by_one(st, sa.out, sa.index, sb.index, m, r);
            if (rv != ALK_OK) {
                return rv;
            }
        } else {
            ra->pos &= ~m;
            ra->neg &= ~m;
            rb->pos &= ~(m << r);
            rb->neg &= ~(m << r);
        }
        planes_clear(st, a, sa.out, m);
        planes_clear(st, b, sa.out, m << r);
        uint64_t new_pos, new_neg;
        if (!flip) {
            new_pos = mp;
            new_neg = mn;
        } else if (!sub) {
            new_pos = mp << r;
            new_neg = mn << r;
        } else {
            new_pos = mn << r;
            new_neg = mp << r;
        }
        rv = add_row(st, sa.out, u, new_pos, new_neg);
        if (rv != ALK_OK) {
            return rv;
        }
        st->digits -= (uint64_t)alk__popcount64(m); /* 2 digits became 1, m times */
        planes_set(st, u, sa.out, new_pos, new_neg);
        /* add_row may move the column's rows; c stays valid (it is the column itself). */
        if (st->cf != NULL) {
            rv = alk__conflict_row_added(st, sa.out);
        } else if (st->lazy != NULL) {
            rv = increment_output(st, c);
        }
        if (rv != ALK_OK) {
            return rv;
        }
    }

    if (st->cf != NULL) {
        return alk__conflict_commit(st);
    }
    return st->lazy != NULL ? commit_pairs(st, u) : ALK_OK; /* a replay counts nothing */
}

/* ---- emission (spec §6) ---- */

static int emit(state *st, alk__stage *out) {
    alk__term *terms = NULL;
    size_t cap_terms = 0;
    int rv = ALK_ENOMEM;
    out->n_in = st->n_in;
    out->n_out = st->n_out;
    out->inp_shifts = alk_malloc(((size_t)st->n_in + 1) * sizeof(int32_t));
    out->out_idxs = alk_malloc(((size_t)st->n_out + 1) * sizeof(int32_t));
    out->out_shifts = alk_malloc(((size_t)st->n_out + 1) * sizeof(int32_t));
    out->out_negs = alk_malloc(((size_t)st->n_out + 1) * sizeof(bool));
    if (out->inp_shifts == NULL || out->out_idxs == NULL || out->out_shifts == NULL ||
        out->out_negs == NULL) {
        goto fail;
    }
    memcpy(out->inp_shifts, st->shift0, st->n_in * sizeof(int32_t));
    for (uint32_t o = 0; o < st->n_out; o++) {
        const column *c = &st->columns[o];
        size_t n_terms = 0;
        for (size_t k = 0; k < c->len; k++) {
            uint64_t m = c->rows[k].pos | c->rows[k].neg;
            while (m != 0) {
                int s = __builtin_ctzll(m);
                m &= m - 1;
                if (n_terms == cap_terms) {
                    void *items = terms;
                    rv = alk_grow(&items, &cap_terms, sizeof(alk__term), n_terms + 1);
                    terms = items;
                    if (rv != ALK_OK) {
                        goto fail;
                    }
                }
                terms[n_terms++] = (alk__term){
                    .id = (int32_t)c->rows[k].expr,
                    .neg = (c->rows[k].neg >> s) & 1,
                    .shift = s,
                };
            }
        }
        if (n_terms == 0) {
            out->out_idxs[o] = -1;
            out->out_shifts[o] = st->shift1[o];
            out->out_negs[o] = false;
        } else if (n_terms == 1) {
            out->out_idxs[o] = terms[0].id;
            out->out_shifts[o] = st->shift1[o] + terms[0].shift;
            out->out_negs[o] = terms[0].neg;
        } else {
            int32_t id, shift;
            bool neg;
            rv = alk__reduce_terms(&st->ops, &st->n_ops, &st->cap_ops, terms, n_terms, &id, &neg,
                                   &shift);
            if (rv != ALK_OK) {
                goto fail;
            }
            out->out_idxs[o] = id;
            out->out_shifts[o] = st->shift1[o] + shift;
            out->out_negs[o] = neg;
        }
    }
    out->ops = st->ops;
    out->n_ops = st->n_ops;
    out->cap_ops = st->cap_ops;
    out->work = st->work;
    out->pairs = st->pairs_at_start;
    st->ops = NULL;
    st->n_ops = st->cap_ops = 0;
    alk_free(terms);
    return ALK_OK;
fail:
    alk_free(terms);
    alk__stage_fini(out);
    return rv == ALK_OK ? ALK_ENOMEM : rv;
}

/* ---- the stage driver ---- */

/* Pairs of digits of one column in `st` (each pair is one occurrence of one key). */
static uint64_t digit_pairs(const state *st) {
    uint64_t pairs = 0;
    for (uint32_t o = 0; o < st->n_out; o++) {
        uint64_t t = 0;
        for (size_t r = 0; r < st->columns[o].len; r++) {
            t += (uint64_t)alk__popcount64(st->columns[o].rows[r].pos | st->columns[o].rows[r].neg);
        }
        pairs += t * (t - (t > 0)) / 2;
    }
    return pairs;
}

void alk__cse_log_fini(alk__cse_log *log) {
    if (log != NULL) {
        alk_free(log->keys);
        alk_free(log->work);
        alk_free(log->digits);
        memset(log, 0, sizeof(*log));
    }
}

/* Appends the extraction just made (its key, the work and digits after it) to `log`. */
static int log_extraction(const state *st, uint64_t key, alk__cse_log *log) {
    if (log->len == log->cap) {
        size_t cap = log->cap;
        void *keys = log->keys, *work = log->work, *digits = log->digits;
        int rv = alk_grow(&keys, &cap, sizeof(uint64_t), log->len + 1);
        log->keys = keys;
        if (rv == ALK_OK) {
            cap = log->cap;
            rv = alk_grow(&work, &cap, sizeof(uint64_t), log->len + 1);
            log->work = work;
        }
        if (rv == ALK_OK) {
            cap = log->cap;
            rv = alk_grow(&digits, &cap, sizeof(uint64_t), log->len + 1);
            log->digits = digits;
        }
        if (rv != ALK_OK) {
            return rv;
        }
        log->cap = cap;
    }
    log->keys[log->len] = key;
    log->work[log->len] = st->work;
    log->digits[log->len] = st->digits;
    log->len++;
    return ALK_OK;
}

static int cancelled(const state *st, alk_diag *diag) {
    if (st->quality->cancel != NULL &&
        atomic_load_explicit(st->quality->cancel, memory_order_relaxed)) {
        return alk_diag_set(diag, ALK_ECANCELED, "the CMVM solve was cancelled");
    }
    return ALK_OK;
}

/* Extractions with the conflict-aware selection until no key occurs twice. */
static int run_conflict(state *st, alk_diag *diag) {
    int rv = alk__conflict_start(st);
    while (rv == ALK_OK) {
        rv = cancelled(st, diag);
        uint64_t key = NO_KEY;
        if (rv == ALK_OK) {
            rv = alk__conflict_select(st, &key);
        }
        if (rv == ALK_OK && st->quality->work_limit != 0 && st->work > st->quality->work_limit) {
            rv = ALK_ELIMIT; /* over improved mode's budget: the caller drops this candidate */
        }
        if (rv != ALK_OK || key == NO_KEY) {
            break;
        }
        rv = apply_key(st, key);
    }
    return rv;
}

/*
 * Extractions in the reference's order (the lazy queue) until no key qualifies; each one goes to
 * `log` when it is not NULL.
 */
static int run_queue(state *st, alk__cse_log *log, alk_diag *diag) {
    st->lazy = alk_calloc(1, sizeof(alk__cse_lazy));
    if (st->lazy == NULL) {
        return ALK_ENOMEM;
    }
    st->lazy->min_code = threshold_code(st);
    st->has_popcnt = __builtin_cpu_supports("popcnt");
    int rv =
        queue_init(&st->lazy->queue, has_float_scores(st->method), (size_t)st->n_in * st->n_out);
    size_t n_keys = 0;
    if (rv == ALK_OK) {
        rv = queue_initial_keys(st, &n_keys);
    }
    if (rv == ALK_OK && n_keys > 0 && !method_is_valid(st->method)) {
        return alk_diag_set(diag, ALK_EINVAL, "unknown CSE method '%s'",
                            alk_cmvm_method_name(st->method));
    }
    if (log != NULL) {
        log->digits0 = st->digits;
        log->pairs0 = st->pairs_at_start;
        log->end_game = SIZE_MAX;
    }
    while (rv == ALK_OK) {
        rv = cancelled(st, diag);
        uint64_t key = NO_KEY;
        if (rv == ALK_OK) {
            rv = select_key(st, &key);
        }
        if (rv != ALK_OK || key == NO_KEY) {
            break;
        }
        if (log != NULL && log->end_game == SIZE_MAX &&
            recount(st, key) <= st->quality->end_game_count) {
            log->end_game = log->len;
        }
        rv = apply_key(st, key);
        if (rv == ALK_OK && log != NULL) {
            rv = log_extraction(st, key, log);
        }
    }
    if (log != NULL && log->end_game == SIZE_MAX) {
        log->end_game = log->len;
    }
    return rv;
}

/* Builds the digits of stage kernel `k` (spec §3) into `st`. */
static int state_init(state *st, const alk__mat *k, alk_cmvm_method method, const alk__fq *q,
                      const float *lat, const alk__quality *quality, bool planes, alk_diag *diag) {
    int64_t *centred = NULL;
    int rv = ALK_ENOMEM;
    uint32_t n = k->rows, m = k->cols;
    st->n_in = n;
    st->n_out = m;
    st->method = method;
    st->quality = quality;
    st->shift0 = alk_malloc(((size_t)n + 1) * sizeof(int32_t));
    st->shift1 = alk_malloc(((size_t)m + 1) * sizeof(int32_t));
    st->columns = alk_calloc((size_t)m + 1, sizeof(column));
    centred = alk_malloc(((size_t)n * m + 1) * sizeof(int64_t));
    st->input_rows = alk_malloc(((size_t)n * m + 1) * sizeof(int32_t));
    if (st->shift0 == NULL || st->shift1 == NULL || st->columns == NULL || centred == NULL ||
        st->input_rows == NULL) {
        goto done;
    }
    for (size_t cell = 0; cell < (size_t)n * m; cell++) {
        st->input_rows[cell] = -1;
    }
    uint32_t bad_row, bad_col;
    if (!alk__center(k, st->shift0, st->shift1, centred, &bad_row, &bad_col)) {
        rv = alk_diag_set(diag, ALK_EINVAL,
                          "stage kernel entry (%u, %u) does not fit in %d bits after centring",
                          bad_row, bad_col, ALK_CMVM_MAX_ENTRY_BITS);
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        alk__op op = {.id0 = (int32_t)i,
                      .id1 = -1,
                      .opcode = -1,
                      .data = 0,
                      .qint = q[i],
                      .latency = lat[i],
                      .cost = 0.0f};
        rv = alk__push_op(&st->ops, &st->n_ops, &st->cap_ops, op);
        if (rv == ALK_OK) {
            rv = add_signal(st);
        }
        if (rv != ALK_OK) {
            goto done;
        }
        /* Zero-range inputs never take part (spec §3.3). */
        if (q[i].min == 0.0f && q[i].max == 0.0f) {
            continue;
        }
        for (uint32_t o = 0; o < m; o++) {
            uint64_t pos, neg;
            naf_masks(centred[(size_t)i * m + o], &pos, &neg);
            if ((pos | neg) != 0) {
                st->input_rows[(size_t)i * m + o] = (int32_t)st->columns[o].len;
                rv = add_row(st, o, i, pos, neg);
                if (rv != ALK_OK) {
                    goto done;
                }
            }
        }
    }
    measure_digits(st);
    rv = planes ? build_planes(st) : ALK_OK;
    st->pairs_at_start = digit_pairs(st);
    for (uint32_t o = 0; o < st->n_out; o++) {
        for (size_t r = 0; r < st->columns[o].len; r++) {
            st->digits +=
                (uint64_t)alk__popcount64(st->columns[o].rows[r].pos | st->columns[o].rows[r].neg);
        }
    }
done:
    alk_free(centred);
    return rv;
}

/* Emits `st` into *ret_stage and frees it, also on failure. */
static int finish_stage(state *st, int rv, alk__stage *ret_stage, alk_diag *diag) {
    if (rv == ALK_OK) {
        rv = emit(st, ret_stage);
    }
    state_fini(st);
    if (rv == ALK_ENOMEM) {
        (void)alk_diag_set(diag, ALK_ENOMEM, "out of memory in the CMVM solver");
    }
    return rv;
}

int alk__solve_single(const alk__mat *k, alk_cmvm_method method, const alk__fq *q, const float *lat,
                      const alk__quality *quality, bool no_cse, alk__cse_log *ret_log,
                      alk__stage *ret_stage, alk_diag *diag) {
    state st = {0};
    int rv = state_init(&st, k, method, q, lat, quality, !quality->conflict_aware, diag);
    if (rv == ALK_OK && !no_cse && method != ALK_CMVM_DUMMY) {
        rv = quality->conflict_aware ? run_conflict(&st, diag) : run_queue(&st, ret_log, diag);
    }
    return finish_stage(&st, rv, ret_stage, diag);
}

int alk__cse_branch(const alk__mat *k, alk_cmvm_method method, const alk__fq *q, const float *lat,
                    const alk__cse_log *log, size_t n, const alk__quality *quality,
                    alk__stage *ret_stage, alk_diag *diag) {
    state st = {0};
    int rv = state_init(&st, k, method, q, lat, quality, false, diag);
    /* The first n extractions again, digits only: no counting, no selection. */
    for (size_t i = 0; i < n && rv == ALK_OK; i++) {
        rv = apply_key(&st, log->keys[i]);
    }
    if (rv == ALK_OK && method != ALK_CMVM_DUMMY) {
        rv = run_conflict(&st, diag);
    }
    return finish_stage(&st, rv, ret_stage, diag);
}

uint64_t alk__cse_log_pairs(const alk__cse_log *log, size_t n) {
    uint64_t digits = n == 0 ? log->digits0 : log->digits[n - 1];
    /* The pairs shrink about as the square of the digits. */
    return log->digits0 == 0 ? 0
                             : (uint64_t)((double)log->pairs0 * ((double)digits / log->digits0) *
                                          ((double)digits / log->digits0));
}
