/*
 * Optimisation passes of the tracer (spec trace-alir.md §3.7–3.9), in the reference's default
 * order: canon, DCE, CSE, DCE, null-quant, DCE ("fast"), then the retrace loop, the surrogate
 * cost model, the canonical sort and the bandwidth-minimising topological sort.
 *
 * Design. Every pass works on the fixed-size op records of trace/comb.h and reproduces the
 * reference's observable behaviour exactly, quirks included: CSE runs only when two ops are
 * equal as whole tuples; the canonical sort compares float32 keys; the surrogate writes ints or
 * floats where Python would. Sets of users are built once per pass as deduplicated adjacency
 * lists (CSR). Passes that change the op list build a new program and free the old one.
 *
 * Memory: alk_malloc; each pass frees its scratch before returning. Errors leave *comb as it was.
 *
 * Thread rule: the thread that owns the trace context.
 */
#include "trace/passes.h"
#include "alir/kif.h"
#include "core/alloc.h"
#include "trace/replay.h"
#include "trace/trace_int.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Users (is_used_in)                                                                       */
/* ---------------------------------------------------------------------------------------- */

/* Deduplicated users of every op: op indices, and -1 - j for output j. */
typedef struct users {
    size_t *start; /* n_ops + 1 */
    int64_t *items;
} users;

static void users_fini(users *u) {
    alk_free(u->start);
    alk_free(u->items);
    u->start = NULL;
    u->items = NULL;
}

static int64_t users_max(const users *u, size_t i) {
    int64_t m = INT64_MIN;
    for (size_t j = u->start[i]; j < u->start[i + 1]; j++) {
        if (u->items[j] > m) {
            m = u->items[j];
        }
    }
    return m;
}

static int users_build(const alk__comb *c, users *u) {
    size_t n = c->n_ops;
    u->start = alk_calloc(n + 1, sizeof(size_t));
    size_t total = c->n_out;
    for (size_t i = 0; i < n; i++) {
        if (c->ops[i].opcode != -1) {
            total += c->ops[i].n_addr;
        }
    }
    u->items = alk_malloc((total ? total : 1) * sizeof(int64_t));
    size_t *fill = alk_calloc(n + 1, sizeof(size_t));
    if (u->start == NULL || u->items == NULL || fill == NULL) {
        alk_free(fill);
        users_fini(u);
        return ALK_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const alk__cop *op = &c->ops[i];
        if (op->opcode == -1) {
            continue;
        }
        for (uint8_t k = 0; k < op->n_addr; k++) {
            u->start[op->addr[k] + 1]++;
        }
    }
    for (uint32_t j = 0; j < c->n_out; j++) {
        if (c->out_idxs[j] >= 0) {
            u->start[c->out_idxs[j] + 1]++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        u->start[i + 1] += u->start[i];
    }
    /* Fill, skipping repeats of the same user (sets in the reference). */
    for (size_t i = 0; i < n; i++) {
        const alk__cop *op = &c->ops[i];
        if (op->opcode == -1) {
            continue;
        }
        for (uint8_t k = 0; k < op->n_addr; k++) {
            uint32_t a = op->addr[k];
            bool repeat = false;
            for (uint8_t q = 0; q < k; q++) {
                repeat = repeat || op->addr[q] == a;
            }
            if (!repeat) {
                u->items[u->start[a] + fill[a]++] = (int64_t)i;
            }
        }
    }
    for (uint32_t j = 0; j < c->n_out; j++) {
        int32_t a = c->out_idxs[j];
        if (a >= 0) {
            u->items[u->start[a] + fill[a]++] = -1 - (int64_t)j;
        }
    }
    /* Compact the holes left by repeats. */
    size_t o = 0;
    size_t begin = 0;
    for (size_t i = 0; i < n; i++) {
        size_t end = u->start[i + 1];
        size_t count = fill[i];
        memmove(u->items + o, u->items + begin, count * sizeof(int64_t));
        u->start[i] = o;
        o += count;
        begin = end;
    }
    u->start[n] = o;
    alk_free(fill);
    return ALK_OK;
}

static void remap_op(alk__cop *op, uint32_t from, uint32_t to) {
    if (op->opcode == -1) {
        return;
    }
    for (uint8_t k = 0; k < op->n_addr; k++) {
        if (op->addr[k] == from) {
            op->addr[k] = to;
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* canon (§3.8.1)                                                                           */
/* ---------------------------------------------------------------------------------------- */

static alk__cop const_op(double val, double latency, double cost, uint8_t int_flags) {
    alk__cop op;
    memset(&op, 0, sizeof(op));
    double step = pow2_lsb(val);
    op.opcode = 5;
    op.n_data = 1;
    op.data[0] = (int64_t)trunc(val / step);
    op.qint = (alk_qint){val, val, step};
    op.latency = latency;
    op.cost = cost;
    op.int_flags = int_flags;
    return op;
}

static int const_propagation(alk_trace *t, alk__comb *c) {
    /* Constant inputs are evaluated with the op list as it was before the pass (qints of the
     * producers), so fold into a copy and swap at the end. */
    alk__cop *ops = alk_malloc((c->n_ops ? c->n_ops : 1) * sizeof(alk__cop));
    alk__rval *buf = alk_calloc(c->n_ops ? c->n_ops : 1, sizeof(alk__rval));
    if (ops == NULL || buf == NULL) {
        alk_free(ops);
        alk_free(buf);
        return ALK_ENOMEM;
    }
    memcpy(ops, c->ops, c->n_ops * sizeof(alk__cop));
    int rv = ALK_OK;
    for (size_t i = 0; i < c->n_ops; i++) {
        const alk__cop *op = &ops[i];
        if (op->opcode == -1 || op->opcode == 5) {
            continue;
        }
        bool all_const = true;
        for (uint8_t k = 0; k < op->n_addr; k++) {
            const alk__cop *src = &ops[op->addr[k]];
            if (src->opcode != 5) {
                all_const = false;
                break;
            }
            buf[op->addr[k]] = (alk__rval){NULL, (double)src->data[0] * src->qint.step};
        }
        if (!all_const) {
            continue;
        }
        alk__rval val;
        rv = alk__exec_op(t, c, i, buf, NULL, &val);
        if (rv != ALK_OK) {
            break;
        }
        ops[i] = const_op(val.num, op->latency, op->cost, op->int_flags);
    }
    if (rv == ALK_OK) {
        alk_free(c->ops);
        c->ops = ops;
        c->cap_ops = c->n_ops;
    } else {
        alk_free(ops);
    }
    alk_free(buf);
    return rv;
}

/*
 * A one-bit wrap (0, s, s) of buf * 2^d whose s is the source's MSB weight reads the source's
 * MSB directly (d = 0). That is the same bit only when buf * 2^d has its sign bit below s, which
 * then reads a copy of it: a signed source shifted right (d < 0). The reference rewrites every
 * d, and so reads another bit for d > 0 or an unsigned source (3x in [0, 21] quantized to
 * (0, 3, -2): bit 2^0 of x - x/4 became bit 2^2).
 */
static void canonicalize_msb_wraps(alk__comb *c) {
    for (size_t i = 0; i < c->n_ops; i++) {
        alk__cop *op = &c->ops[i];
        if (op->opcode != 3 || op->data[0] >= 0) {
            continue;
        }
        if (op->qint.min != 0 || op->qint.max != op->qint.step) {
            continue;
        }
        alk_kif src = alk_kif_of(c->ops[op->addr[0]].qint);
        if (src.k == 1 && op->qint.step == ldexp(1.0, src.i + src.k - 1)) {
            op->data[0] = 0;
        }
    }
}

static int canonicalize_outputs(alk__comb *c) {
    for (uint32_t j = 0; j < c->n_out; j++) {
        int32_t idx = c->out_idxs[j];
        int32_t s = c->out_shifts[j];
        bool n = c->out_negs[j];
        int rv;
        if (idx < 0) {
            alk__cop op = const_op(0, 0, 0, ALK__INT_LAT | ALK__INT_COST);
            op.qint = (alk_qint){0.0, 0.0, ldexp(1.0, 127)};
            op.data[0] = 0;
            c->out_idxs[j] = (int32_t)c->n_ops;
            rv = alk__comb_push(c, &op);
            if (rv != ALK_OK) {
                return rv;
            }
            c->out_shifts[j] = 0;
            c->out_negs[j] = false;
            continue;
        }
        alk__cop op = c->ops[idx];
        if (op.opcode == 5) {
            if (s != 0 || n) {
                double val = (double)op.data[0] * op.qint.step * ldexp(1.0, s) * (n ? -1 : 1);
                alk__cop k = const_op(val, 0, 0, ALK__INT_LAT | ALK__INT_COST);
                c->out_idxs[j] = (int32_t)c->n_ops;
                rv = alk__comb_push(c, &k);
                if (rv != ALK_OK) {
                    return rv;
                }
                c->out_shifts[j] = 0;
                c->out_negs[j] = false;
            }
            continue;
        }
        if (n) {
            alk__cop neg;
            memset(&neg, 0, sizeof(neg));
            neg.opcode = -2;
            neg.n_addr = 1;
            neg.addr[0] = (uint32_t)idx;
            neg.qint = (alk_qint){-op.qint.max, -op.qint.min, op.qint.step};
            neg.latency = op.latency;
            neg.cost = 0;
            neg.int_flags = (uint8_t)((op.int_flags & ALK__INT_LAT) | ALK__INT_COST);
            c->out_idxs[j] = (int32_t)c->n_ops;
            rv = alk__comb_push(c, &neg);
            if (rv != ALK_OK) {
                return rv;
            }
            c->out_negs[j] = false;
        }
    }
    return ALK_OK;
}

int alk__pass_canonicalize(alk_trace *t, alk__comb **comb) {
    int rv = const_propagation(t, *comb);
    if (rv != ALK_OK) {
        return rv;
    }
    canonicalize_msb_wraps(*comb);
    return canonicalize_outputs(*comb);
}

/* ---------------------------------------------------------------------------------------- */
/* DCE (§3.8.2)                                                                             */
/* ---------------------------------------------------------------------------------------- */

int alk__pass_dce(alk__comb **comb) {
    alk__comb *c = *comb;
    size_t n = c->n_ops;
    uint8_t *live = alk_calloc(n ? n : 1, 1);
    int64_t *map = alk_malloc((n ? n : 1) * sizeof(int64_t));
    alk__comb *d = NULL;
    int rv = ALK_ENOMEM;
    if (live == NULL || map == NULL) {
        goto fail;
    }
    for (uint32_t j = 0; j < c->n_out; j++) {
        if (c->out_idxs[j] >= 0) {
            live[c->out_idxs[j]] = 1;
        }
    }
    for (size_t i = n; i-- > 0;) {
        if (!live[i]) {
            continue;
        }
        for (uint8_t k = 0; k < c->ops[i].n_addr; k++) {
            live[c->ops[i].addr[k]] = 1;
        }
    }
    rv = alk__comb_new(c->n_in, c->n_out, &d);
    if (rv != ALK_OK) {
        goto fail;
    }
    memcpy(d->inp_shifts, c->inp_shifts, c->n_in * sizeof(int32_t));
    memcpy(d->out_shifts, c->out_shifts, c->n_out * sizeof(int32_t));
    memcpy(d->out_negs, c->out_negs, c->n_out * sizeof(bool));
    d->carry_size = c->carry_size;
    d->adder_size = c->adder_size;
    for (size_t i = 0; i < n; i++) {
        map[i] = (int64_t)d->n_ops - (live[i] ? 0 : 1);
        if (!live[i]) {
            continue;
        }
        alk__cop op = c->ops[i];
        if (op.opcode != -1) {
            for (uint8_t k = 0; k < op.n_addr; k++) {
                op.addr[k] = (uint32_t)map[op.addr[k]];
            }
        }
        rv = alk__comb_push(d, &op);
        if (rv != ALK_OK) {
            goto fail;
        }
    }
    for (uint32_t j = 0; j < c->n_out; j++) {
        d->out_idxs[j] = c->out_idxs[j] >= 0 ? (int32_t)map[c->out_idxs[j]] : -1;
    }
    /* Tables: renumbered in order of first use unless every table is still used. */
    if (c->n_tables > 0) {
        int64_t *tmap = alk_malloc(c->n_tables * sizeof(int64_t));
        if (tmap == NULL) {
            rv = ALK_ENOMEM;
            goto fail;
        }
        for (size_t k = 0; k < c->n_tables; k++) {
            tmap[k] = -1;
        }
        size_t distinct = 0;
        for (size_t i = 0; i < d->n_ops; i++) {
            if (d->ops[i].opcode == 8 && tmap[d->ops[i].data[0]] < 0) {
                tmap[d->ops[i].data[0]] = (int64_t)distinct++;
            }
        }
        if (distinct == c->n_tables) {
            for (size_t k = 0; k < c->n_tables && rv == ALK_OK; k++) {
                rv = alk__comb_push_table(d, c->tables[k]);
            }
        } else {
            alk_ftable **order = alk_calloc(distinct ? distinct : 1, sizeof(alk_ftable *));
            if (order == NULL) {
                rv = ALK_ENOMEM;
            } else {
                for (size_t k = 0; k < c->n_tables; k++) {
                    if (tmap[k] >= 0) {
                        order[tmap[k]] = c->tables[k];
                    }
                }
                for (size_t k = 0; k < distinct && rv == ALK_OK; k++) {
                    rv = alk__comb_push_table(d, order[k]);
                }
                for (size_t i = 0; i < d->n_ops; i++) {
                    if (d->ops[i].opcode == 8) {
                        d->ops[i].data[0] = tmap[d->ops[i].data[0]];
                    }
                }
                alk_free(order);
            }
        }
        alk_free(tmap);
        if (rv != ALK_OK) {
            goto fail;
        }
    }
    alk__comb_free(c);
    *comb = d;
    d = NULL;
    rv = ALK_OK;
fail:
    alk__comb_free(d);
    alk_free(live);
    alk_free(map);
    return rv;
}

/* ---------------------------------------------------------------------------------------- */
/* CSE (§3.8.3)                                                                             */
/* ---------------------------------------------------------------------------------------- */

/* Hash of a double consistent with numeric equality (0.0 == -0.0). */
static uint64_t hash_double(double x) {
    if (x == 0) {
        x = 0.0;
    }
    uint64_t u;
    memcpy(&u, &x, sizeof(u));
    return u * 0x9E3779B97F4A7C15ull;
}

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return h;
}

static uint64_t hash_op(const alk__cop *op, bool whole) {
    uint64_t h = (uint64_t)(int64_t)op->opcode * 1000003u;
    h = mix(h, op->n_addr);
    for (uint8_t k = 0; k < op->n_addr; k++) {
        h = mix(h, op->addr[k]);
    }
    h = mix(h, op->n_data);
    for (uint8_t k = 0; k < op->n_data; k++) {
        h = mix(h, (uint64_t)op->data[k]);
    }
    if (whole) {
        h = mix(h, hash_double(op->qint.min));
        h = mix(h, hash_double(op->qint.max));
        h = mix(h, hash_double(op->qint.step));
        h = mix(h, hash_double(op->latency));
        h = mix(h, hash_double(op->cost));
    }
    return h;
}

static bool op_equal(const alk__cop *a, const alk__cop *b, bool whole) {
    if (a->opcode != b->opcode || a->n_addr != b->n_addr || a->n_data != b->n_data) {
        return false;
    }
    for (uint8_t k = 0; k < a->n_addr; k++) {
        if (a->addr[k] != b->addr[k]) {
            return false;
        }
    }
    for (uint8_t k = 0; k < a->n_data; k++) {
        if (a->data[k] != b->data[k]) {
            return false;
        }
    }
    if (!whole) {
        return true;
    }
    return a->qint.min == b->qint.min && a->qint.max == b->qint.max &&
           a->qint.step == b->qint.step && a->latency == b->latency && a->cost == b->cost;
}

/* An open-addressing set of op snapshots. */
typedef struct opset {
    int64_t *slots; /* index into keys, or -1 */
    size_t cap;
    alk__cop *keys;
    size_t *owner; /* op index that inserted each key */
    size_t n;
} opset;

static int opset_init(opset *s, size_t n) {
    s->cap = 16;
    while (s->cap < 2 * n + 16) {
        s->cap *= 2;
    }
    s->slots = alk_malloc(s->cap * sizeof(int64_t));
    s->keys = alk_malloc((n ? n : 1) * sizeof(alk__cop));
    s->owner = alk_malloc((n ? n : 1) * sizeof(size_t));
    s->n = 0;
    if (s->slots == NULL || s->keys == NULL || s->owner == NULL) {
        return ALK_ENOMEM;
    }
    for (size_t j = 0; j < s->cap; j++) {
        s->slots[j] = -1;
    }
    return ALK_OK;
}

static void opset_fini(opset *s) {
    alk_free(s->slots);
    alk_free(s->keys);
    alk_free(s->owner);
}

/* Finds `op` (whole tuple or (addr, opcode, data)); inserts it when absent. Returns the owner
 * of an existing equal key, or SIZE_MAX after inserting. */
static size_t opset_find_or_add(opset *s, const alk__cop *op, size_t owner) {
    bool whole = op->opcode == 3 || op->opcode == 4 || op->opcode == 5;
    size_t mask = s->cap - 1;
    size_t h = (size_t)hash_op(op, whole) & mask;
    while (s->slots[h] >= 0) {
        const alk__cop *k = &s->keys[s->slots[h]];
        bool k_whole = k->opcode == 3 || k->opcode == 4 || k->opcode == 5;
        if (k_whole == whole && op_equal(k, op, whole)) {
            return s->owner[s->slots[h]];
        }
        h = (h + 1) & mask;
    }
    s->keys[s->n] = *op;
    s->owner[s->n] = owner;
    s->slots[h] = (int64_t)s->n++;
    return SIZE_MAX;
}

/* Whether two ops are equal as whole tuples (the reference's `len(set(ops)) == len(ops)`). */
static int has_duplicates(const alk__comb *c, bool *ret) {
    opset s;
    int rv = opset_init(&s, c->n_ops);
    if (rv != ALK_OK) {
        opset_fini(&s);
        return rv;
    }
    *ret = false;
    size_t mask = s.cap - 1;
    for (size_t i = 0; i < c->n_ops && !*ret; i++) {
        const alk__cop *op = &c->ops[i];
        size_t h = (size_t)hash_op(op, true) & mask;
        while (s.slots[h] >= 0) {
            if (op_equal(&s.keys[s.slots[h]], op, true)) {
                *ret = true;
                break;
            }
            h = (h + 1) & mask;
        }
        if (!*ret) {
            s.keys[s.n] = *op;
            s.slots[h] = (int64_t)s.n++;
        }
    }
    opset_fini(&s);
    return ALK_OK;
}

int alk__pass_cse(alk__comb **comb) {
    alk__comb *c = *comb;
    bool dup = false;
    int rv = has_duplicates(c, &dup);
    if (rv != ALK_OK || !dup) {
        return rv;
    }
    users u = {0};
    opset s;
    memset(&s, 0, sizeof(s));
    rv = users_build(c, &u);
    if (rv == ALK_OK) {
        rv = opset_init(&s, c->n_ops);
    }
    if (rv != ALK_OK) {
        users_fini(&u);
        opset_fini(&s);
        return rv;
    }
    /* In place: merged ops keep their slot, users are re-pointed before they are scanned. */
    for (size_t i = 0; i < c->n_ops; i++) {
        alk__cop *op = &c->ops[i];
        size_t j = opset_find_or_add(&s, op, i);
        if (j == SIZE_MAX) {
            continue;
        }
        alk_qint q0 = op->qint, q1 = c->ops[j].qint;
        alk__cop merged = *op;
        merged.qint.min = q1.min > q0.min ? q1.min : q0.min;
        merged.qint.max = q1.max < q0.max ? q1.max : q0.max;
        merged.qint.step = q1.step > q0.step ? q1.step : q0.step;
        c->ops[j] = merged;
        for (size_t k = u.start[i]; k < u.start[i + 1]; k++) {
            int64_t user = u.items[k];
            if (user >= 0) {
                remap_op(&c->ops[user], (uint32_t)i, (uint32_t)j);
            } else {
                c->out_idxs[-1 - user] = (int32_t)j;
            }
        }
    }
    users_fini(&u);
    opset_fini(&s);
    return ALK_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* null-quant elimination (§3.8.4)                                                          */
/* ---------------------------------------------------------------------------------------- */

static bool qint_eq(alk_qint a, alk_qint b) {
    return a.min == b.min && a.max == b.max && a.step == b.step;
}

int alk__pass_null_quant(alk__comb **comb) {
    alk__comb *c = *comb;
    size_t n = c->n_ops;
    int64_t *map = alk_malloc((n ? n : 1) * sizeof(int64_t));
    size_t *mapped = alk_malloc((n ? n : 1) * sizeof(size_t));
    if (map == NULL || mapped == NULL) {
        alk_free(map);
        alk_free(mapped);
        return ALK_ENOMEM;
    }
    size_t n_mapped = 0;
    for (size_t i = 0; i < n; i++) {
        map[i] = -1;
    }
#define MAPPED(x) (map[(x)] >= 0 ? (uint32_t)map[(x)] : (x))
    for (size_t i = 0; i < n; i++) {
        const alk__cop *op = &c->ops[i];
        if (op->opcode == 2 || op->opcode == 3) {
            if (op->opcode == 3 && op->data[0] != 0) {
                continue;
            }
            uint32_t src = MAPPED(op->addr[0]);
            if (!qint_eq(c->ops[src].qint, op->qint)) {
                continue;
            }
            map[i] = src;
            mapped[n_mapped++] = i;
        } else if (op->opcode == 9 && op->data[0] == 0) {
            const alk__cop *from = &c->ops[MAPPED(op->addr[0])];
            if (from->opcode == 9 && from->data[0] == 0) {
                map[i] = MAPPED(from->addr[0]);
                mapped[n_mapped++] = i;
            }
        }
    }
#undef MAPPED
    int rv = ALK_OK;
    if (n_mapped > 0) {
        users u = {0};
        rv = users_build(c, &u);
        if (rv == ALK_OK) {
            for (size_t m = 0; m < n_mapped; m++) {
                size_t i = mapped[m];
                for (size_t k = u.start[i]; k < u.start[i + 1]; k++) {
                    int64_t user = u.items[k];
                    if (user >= 0) {
                        alk__cop *op = &c->ops[user];
                        if (op->opcode != -1) {
                            for (uint8_t q = 0; q < op->n_addr; q++) {
                                if (map[op->addr[q]] >= 0) {
                                    op->addr[q] = (uint32_t)map[op->addr[q]];
                                }
                            }
                        }
                    } else {
                        c->out_idxs[-1 - user] = (int32_t)map[i];
                    }
                }
            }
        }
        users_fini(&u);
    }
    alk_free(map);
    alk_free(mapped);
    return rv;
}

/* ---------------------------------------------------------------------------------------- */
/* Orders (§3.8.5)                                                                          */
/* ---------------------------------------------------------------------------------------- */

/* Applies the permutation new_of_old (old index -> new index). */
static int permute(alk__comb **comb, const size_t *old_of_new, const size_t *new_of_old) {
    alk__comb *c = *comb;
    alk__cop *ops = alk_malloc((c->n_ops ? c->n_ops : 1) * sizeof(alk__cop));
    if (ops == NULL) {
        return ALK_ENOMEM;
    }
    for (size_t i = 0; i < c->n_ops; i++) {
        alk__cop op = c->ops[old_of_new[i]];
        if (op.opcode != -1) {
            for (uint8_t k = 0; k < op.n_addr; k++) {
                op.addr[k] = (uint32_t)new_of_old[op.addr[k]];
            }
        }
        ops[i] = op;
    }
    for (uint32_t j = 0; j < c->n_out; j++) {
        if (c->out_idxs[j] >= 0) {
            c->out_idxs[j] = (int32_t)new_of_old[c->out_idxs[j]];
        }
    }
    alk_free(c->ops);
    c->ops = ops;
    c->cap_ops = c->n_ops;
    return ALK_OK;
}

typedef struct sort_row {
    float key[7];
    size_t index;
} sort_row;

static int sort_row_cmp(const void *pa, const void *pb) {
    const sort_row *a = pa, *b = pb;
    for (int k = 6; k >= 0; k--) {
        if (a->key[k] < b->key[k]) {
            return -1;
        }
        if (a->key[k] > b->key[k]) {
            return 1;
        }
    }
    return a->index < b->index ? -1 : a->index > b->index;
}

int alk__pass_canonical_sort(alk__comb **comb) {
    alk__comb *c = *comb;
    size_t n = c->n_ops;
    sort_row *rows = alk_malloc((n ? n : 1) * sizeof(sort_row));
    size_t *old_of_new = alk_malloc((n ? n : 1) * sizeof(size_t));
    size_t *new_of_old = alk_malloc((n ? n : 1) * sizeof(size_t));
    float *depth = alk_malloc((n ? n : 1) * sizeof(float));
    int rv = ALK_ENOMEM;
    if (rows == NULL || old_of_new == NULL || new_of_old == NULL || depth == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const alk__cop *op = &c->ops[i];
        float d = -1.0f;
        for (uint8_t k = 0; k < op->n_addr; k++) {
            if (depth[op->addr[k]] > d) {
                d = depth[op->addr[k]];
            }
        }
        depth[i] = d + 1.0f;
        rows[i].key[6] = (float)op->latency;
        rows[i].key[5] = depth[i];
        rows[i].key[4] = (float)-op->opcode;
        rows[i].key[1] = (float)op->qint.min;
        rows[i].key[2] = (float)op->qint.max;
        rows[i].key[3] = (float)op->qint.step;
        rows[i].key[0] = op->n_data > 0 ? (float)op->data[0] : 0.0f;
        rows[i].index = i;
    }
    qsort(rows, n, sizeof(sort_row), sort_row_cmp);
    for (size_t i = 0; i < n; i++) {
        old_of_new[i] = rows[i].index;
        new_of_old[rows[i].index] = i;
    }
    rv = permute(comb, old_of_new, new_of_old);
fail:
    alk_free(rows);
    alk_free(old_of_new);
    alk_free(new_of_old);
    alk_free(depth);
    return rv;
}

typedef struct heap_key {
    int64_t a, b, c;
    size_t i;
} heap_key;

static bool heap_less(const heap_key *x, const heap_key *y) {
    if (x->a != y->a) {
        return x->a < y->a;
    }
    if (x->b != y->b) {
        return x->b < y->b;
    }
    if (x->c != y->c) {
        return x->c < y->c;
    }
    return x->i < y->i;
}

static void heap_push(heap_key *h, size_t *len, heap_key k) {
    size_t p = (*len)++;
    h[p] = k;
    while (p > 0) {
        size_t q = (p - 1) / 2;
        if (!heap_less(&h[p], &h[q])) {
            break;
        }
        heap_key tmp = h[p];
        h[p] = h[q];
        h[q] = tmp;
        p = q;
    }
}

static heap_key heap_pop(heap_key *h, size_t *len) {
    heap_key top = h[0];
    h[0] = h[--(*len)];
    size_t p = 0;
    for (;;) {
        size_t l = 2 * p + 1, r = l + 1, m = p;
        if (l < *len && heap_less(&h[l], &h[m])) {
            m = l;
        }
        if (r < *len && heap_less(&h[r], &h[m])) {
            m = r;
        }
        if (m == p) {
            break;
        }
        heap_key tmp = h[p];
        h[p] = h[m];
        h[m] = tmp;
        p = m;
    }
    return top;
}

int alk__pass_topo_sort(alk__comb **comb) {
    alk__comb *c = *comb;
    size_t n = c->n_ops;
    users u = {0};
    heap_key *keys = alk_malloc((n ? n : 1) * sizeof(heap_key));
    heap_key *heap = alk_malloc((n ? n : 1) * sizeof(heap_key));
    int64_t *killed = alk_calloc(n ? n : 1, sizeof(int64_t));
    int64_t *blocking = alk_malloc((n ? n : 1) * sizeof(int64_t));
    size_t *old_of_new = alk_malloc((n ? n : 1) * sizeof(size_t));
    size_t *new_of_old = alk_malloc((n ? n : 1) * sizeof(size_t));
    int rv = ALK_ENOMEM;
    if (keys == NULL || heap == NULL || killed == NULL || blocking == NULL || old_of_new == NULL ||
        new_of_old == NULL) {
        goto fail;
    }
    rv = users_build(c, &u);
    if (rv != ALK_OK) {
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (u.start[i + 1] > u.start[i]) {
            int64_t last = users_max(&u, i);
            if (last >= 0) {
                killed[last]++;
            }
        }
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const alk__cop *op = &c->ops[i];
        int64_t max_inp = -1;
        int64_t distinct = 0;
        for (uint8_t k = 0; k < op->n_addr; k++) {
            if ((int64_t)op->addr[k] > max_inp) {
                max_inp = op->addr[k];
            }
            bool repeat = false;
            for (uint8_t q = 0; q < k; q++) {
                repeat = repeat || op->addr[q] == op->addr[k];
            }
            distinct += !repeat;
        }
        blocking[i] = distinct;
        keys[i] = (heap_key){-killed[i], -max_inp, (int64_t)(u.start[i + 1] - u.start[i]), i};
        if (distinct == 0) {
            heap[len++] = keys[i];
        }
    }
    /* heapify: the pop order depends only on the keys, which are unique. */
    for (size_t j = len / 2; j-- > 0;) {
        size_t p = j;
        for (;;) {
            size_t l = 2 * p + 1, r = l + 1, m = p;
            if (l < len && heap_less(&heap[l], &heap[m])) {
                m = l;
            }
            if (r < len && heap_less(&heap[r], &heap[m])) {
                m = r;
            }
            if (m == p) {
                break;
            }
            heap_key tmp = heap[p];
            heap[p] = heap[m];
            heap[m] = tmp;
            p = m;
        }
    }
    size_t placed = 0;
    while (len > 0) {
        heap_key k = heap_pop(heap, &len);
        size_t i = k.i;
        for (size_t q = u.start[i]; q < u.start[i + 1]; q++) {
            int64_t user = u.items[q];
            if (user < 0) {
                continue;
            }
            if (--blocking[user] == 0) {
                heap_push(heap, &len, keys[user]);
            }
        }
        old_of_new[placed] = i;
        new_of_old[i] = placed;
        placed++;
    }
    if (placed != n) {
        rv = ALK_EINTERNAL;
        goto fail;
    }
    rv = permute(comb, old_of_new, new_of_old);
fail:
    users_fini(&u);
    alk_free(keys);
    alk_free(heap);
    alk_free(killed);
    alk_free(blocking);
    alk_free(old_of_new);
    alk_free(new_of_old);
    return rv;
}

/* ---------------------------------------------------------------------------------------- */
/* Surrogate (§3.9)                                                                         */
/* ---------------------------------------------------------------------------------------- */

/* A Python number: its value and whether it is an int. */
typedef struct pynum {
    double v;
    bool is_int;
} pynum;

static pynum pint(double v) {
    return (pynum){v, true};
}
static pynum pflt(double v) {
    return (pynum){v, false};
}

/* Effective consumers of a cadd: users, looking through negations, wraps and unary bit ops. */
static bool cadd_feeds_adder(const alk__comb *c, const users *u, size_t idx, int depth) {
    for (size_t k = u->start[idx]; k < u->start[idx + 1]; k++) {
        int64_t user = u->items[k];
        if (user < 0) {
            continue;
        }
        int32_t opc = c->ops[user].opcode;
        if (opc == -2 || opc == 3 || opc == 9) {
            if (depth < 4096 && cadd_feeds_adder(c, u, (size_t)user, depth + 1)) {
                return true;
            }
        } else if (opc == 0 || opc == 1 || opc == 6) {
            return true;
        }
    }
    return false;
}

static double cost_cadd(alk_qint q, int64_t value, int64_t fractional) {
    uint64_t mag = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    if (mag == 0) {
        return 0;
    }
    int64_t tz = __builtin_ctzll(mag);
    int64_t const_low = tz - fractional;
    alk_kif kif = alk_kif_of(q);
    int64_t bit_low = -kif.f;
    int64_t bit_high = kif.k + kif.i - 1;
    int64_t start = bit_low > const_low ? bit_low : const_low;
    int64_t span = bit_high - start + 1;
    if (span < 0) {
        span = 0;
    }
    return (double)(span - 1 > 0 ? span - 1 : 0) * 0.15;
}

/* _is_const_descendent (memoised except for bit-binary ops, as in the reference). */
static double const_descendent(const alk__comb *c, size_t idx, double *cache, uint32_t *cached,
                               uint32_t stamp, int depth) {
    if (cached[idx] == stamp) {
        return cache[idx];
    }
    const alk__cop *op = &c->ops[idx];
    double r = 0.0;
    if (depth > 100000) {
        return 0.0;
    }
    switch (op->opcode) {
    case 5:
        r = 1.0;
        break;
    case 10: {
        double a = const_descendent(c, op->addr[0], cache, cached, stamp, depth + 1);
        double b = const_descendent(c, op->addr[1], cache, cached, stamp, depth + 1);
        return a > b ? a : b;
    }
    case -2:
    case 3:
    case 9:
        r = const_descendent(c, op->addr[0], cache, cached, stamp, depth + 1);
        break;
    case 6:
        r = 0.5 * (const_descendent(c, op->addr[0], cache, cached, stamp, depth + 1) +
                   const_descendent(c, op->addr[1], cache, cached, stamp, depth + 1));
        break;
    default:
        r = 0.0;
    }
    cache[idx] = r;
    cached[idx] = stamp;
    return r;
}

int alk__pass_surrogate(alk_trace *t, alk__comb **comb) {
    alk__comb *c = *comb;
    size_t n = c->n_ops;
    int64_t n_add = ((c->adder_size % 65535) + 65535) % 65535;
    int64_t n_carry = ((c->carry_size % 65535) + 65535) % 65535;
    if (n_add == 0 || n_carry == 0) {
        return alk__trace_set_error(t, ALK_EINVAL,
                                    "adder_size and carry_size must not be multiples of 65535");
    }
    users u = {0};
    pynum *lat = alk_malloc((n ? n : 1) * sizeof(pynum));
    double *cache = alk_malloc((n ? n : 1) * sizeof(double));
    uint32_t *cached = alk_calloc(n ? n : 1, sizeof(uint32_t));
    uint32_t stamp = 0;
    int rv = ALK_ENOMEM;
    if (lat == NULL || cache == NULL || cached == NULL) {
        goto fail;
    }
    rv = users_build(c, &u);
    if (rv != ALK_OK) {
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        alk__cop *op = &c->ops[i];
        pynum cost = pint(0), dl = pint(0);
        alk_qint q0 = op->n_addr > 0 ? c->ops[op->addr[0]].qint : op->qint;
        alk_qint q1 = op->n_addr > 1 ? c->ops[op->addr[1]].qint : op->qint;
        switch (op->opcode) {
        case 0:
        case 1: {
            double cv, lv;
            bool is_int;
            alk__tr_cost_lat_add(q0, q1, (int)op->data[0], n_add, n_carry, op->opcode == 1, &cv,
                                 &lv, &is_int);
            cost = is_int ? pint(cv) : pint(cv);
            dl = is_int ? pint(lv) : pflt(lv);
            break;
        }
        case 2:
            if (!(q0.min >= 0)) {
                cost = pflt(alk_kif_width(alk_kif_of(op->qint)) * 0.5);
            }
            break;
        case 4:
            if (cadd_feeds_adder(c, &u, i, 0)) {
                double cc = cost_cadd(op->qint, op->data[0], op->data[1]);
                bool zero = op->data[0] == 0;
                cost = zero ? pint(0) : pflt(cc);
            }
            break;
        case 6: {
            /* A fresh cache per mux, as the reference makes one per op. */
            double sf = const_descendent(c, i, cache, cached, ++stamp, 0);
            cost = pflt(alk_kif_width(alk_kif_of(op->qint)) * (0.5 - 0.36 * sf));
            dl = pflt(0.5);
            break;
        }
        case 7: {
            double cv, lv;
            alk__tr_cost_lat_mul(q0, q1, n_add, n_carry, &cv, &lv);
            cost = pflt(cv);
            dl = pflt(lv);
            break;
        }
        case 8: {
            double cv, lv;
            if (op->data[0] < 0 || (size_t)op->data[0] >= c->n_tables) {
                rv = alk__trace_set_error(t, ALK_EINVAL, "op %zu uses a missing table", i);
                goto fail;
            }
            rv = alk__tr_cost_lat_lut(q0, c->tables[op->data[0]], NULL, true, &cv, &lv);
            if (rv != ALK_OK) {
                goto fail;
            }
            cost = pflt(cv);
            dl = pflt(lv);
            break;
        }
        case 10: {
            int x, y, z;
            alk__tr_overlap_counts(q0, q1, (int)op->data[0], &x, &y, &z);
            if (y > 0) {
                cost = pflt(3.0 * y / 5.0 * 0.5);
                dl = pflt(0.5);
            }
            break;
        }
        default:
            break;
        }
        /* latency = delta + max((latencies of the inputs..., 0)): Python's max keeps the
         * first of equal values, which decides whether the result is an int. */
        pynum m = op->n_addr > 0 ? lat[op->addr[0]] : pint(0);
        for (uint8_t k = 1; k < op->n_addr; k++) {
            if (lat[op->addr[k]].v > m.v) {
                m = lat[op->addr[k]];
            }
        }
        if (op->n_addr > 0 && 0 > m.v) {
            m = pint(0);
        }
        pynum l = {dl.v + m.v, dl.is_int && m.is_int};
        lat[i] = l;
        op->latency = l.v;
        op->cost = cost.v;
        op->int_flags =
            (uint8_t)((l.is_int ? ALK__INT_LAT : 0) | (cost.is_int ? ALK__INT_COST : 0));
    }
    rv = ALK_OK;
fail:
    users_fini(&u);
    alk_free(lat);
    alk_free(cache);
    alk_free(cached);
    return rv;
}

/* ---------------------------------------------------------------------------------------- */
/* Retrace (§3.8.7) and optimize (§3.7)                                                     */
/* ---------------------------------------------------------------------------------------- */

int alk__pass_retrace(alk_trace *t, alk__comb **comb) {
    alk__comb *c = *comb;
    alk_hwconf hw = {1, 1, -1.0};
    alk_fvar **inputs = alk_calloc(c->n_in ? c->n_in : 1, sizeof(alk_fvar *));
    alk__rval *in = alk_calloc(c->n_in ? c->n_in : 1, sizeof(alk__rval));
    alk__rval *out = alk_calloc(c->n_out ? c->n_out : 1, sizeof(alk__rval));
    alk_fvar **outputs = alk_calloc(c->n_out ? c->n_out : 1, sizeof(alk_fvar *));
    alk_qint *qints = alk_malloc((c->n_in ? c->n_in : 1) * sizeof(alk_qint));
    alk__comb *d = NULL;
    int rv = ALK_ENOMEM;
    if (inputs == NULL || in == NULL || out == NULL || outputs == NULL || qints == NULL) {
        alk__trace_set_error(t, ALK_ENOMEM, "out of memory in the retrace pass");
        goto fail;
    }
    /* inp_qint: the last read op of each input; (0, 0, 1) when there is none. */
    for (uint32_t j = 0; j < c->n_in; j++) {
        qints[j] = (alk_qint){0.0, 0.0, 1.0};
    }
    for (size_t i = 0; i < c->n_ops; i++) {
        if (c->ops[i].opcode == -1 && c->ops[i].data[0] >= 0 && c->ops[i].data[0] < c->n_in) {
            qints[c->ops[i].data[0]] = c->ops[i].qint;
        }
    }
    /* FVArray.from_kif(*inp_kifs).as_new(): the full range of each kif. */
    for (uint32_t j = 0; j < c->n_in; j++) {
        alk_kif kif = alk_kif_of(qints[j]);
        if (kif.k + kif.i + kif.f <= 0) {
            kif = (alk_kif){0, 0, 0};
        }
        double step = ldexp(1.0, -kif.f);
        double top = ldexp(1.0, kif.i);
        /* numpy's -high * k is -0.0 for unsigned formats. */
        alk_fvar *v = alk__fv_new_hw(t, -top * kif.k, top - step, step, 0.0, hw);
        inputs[j] = alk__fv_as_new(t, v);
        in[j] = (alk__rval){inputs[j], 0};
    }
    rv = t->error;
    if (rv != ALK_OK) {
        goto fail;
    }
    rv = alk__comb_replay(t, c, in, out);
    if (rv != ALK_OK) {
        goto fail;
    }
    alk_hwconf out_hw = c->n_in > 0 ? inputs[0]->node->hwconf : hw;
    for (uint32_t j = 0; j < c->n_out; j++) {
        outputs[j] = out[j].var != NULL ? out[j].var : alk__fv_const_hw(t, out[j].num, out_hw);
    }
    rv = t->error;
    if (rv != ALK_OK) {
        goto fail;
    }
    rv = alk__trace_comb(t, inputs, c->n_in, outputs, c->n_out, &d);
    if (rv != ALK_OK) {
        goto fail;
    }
    alk__comb_free(c);
    *comb = d;
fail:
    alk_free(inputs);
    alk_free(in);
    alk_free(out);
    alk_free(outputs);
    alk_free(qints);
    return rv;
}

static int fast_optimize(alk_trace *t, alk__comb **comb) {
    int rv = alk__pass_canonicalize(t, comb);
    if (rv == ALK_OK) {
        rv = alk__pass_dce(comb);
    }
    if (rv == ALK_OK) {
        rv = alk__pass_cse(comb);
    }
    if (rv == ALK_OK) {
        rv = alk__pass_dce(comb);
    }
    if (rv == ALK_OK) {
        rv = alk__pass_null_quant(comb);
    }
    if (rv == ALK_OK) {
        rv = alk__pass_dce(comb);
    }
    return rv;
}

int alk__optimize(alk_trace *t, alk__comb **comb) {
    alk__comb *before = NULL;
    int rv = ALK_OK;
    for (int round = 0;; round++) {
        rv = fast_optimize(t, comb);
        if (rv == ALK_OK) {
            rv = alk__comb_copy(*comb, &before);
        }
        if (rv == ALK_OK) {
            rv = alk__pass_canonical_sort(&before);
        }
        if (rv == ALK_OK) {
            rv = alk__pass_retrace(t, comb);
        }
        if (rv == ALK_OK) {
            rv = fast_optimize(t, comb);
        }
        if (rv == ALK_OK) {
            rv = alk__pass_canonical_sort(comb);
        }
        if (rv != ALK_OK) {
            goto fail;
        }
        bool same = alk__comb_equal(*comb, before);
        alk__comb_free(before);
        before = NULL;
        if (same) {
            break;
        }
        if (round > 2) {
            rv = alk__trace_set_error(t, ALK_EINVAL,
                                      "optimisation did not converge after 4 retrace rounds");
            goto fail;
        }
    }
    rv = alk__pass_surrogate(t, comb);
    if (rv == ALK_OK) {
        rv = alk__pass_canonical_sort(comb);
    }
    if (rv == ALK_OK) {
        rv = alk__pass_topo_sort(comb);
    }
fail:
    alk__comb_free(before);
    if (rv == ALK_ENOMEM) {
        alk__trace_set_error(t, ALK_ENOMEM, "out of memory while optimising");
    }
    return rv;
}
