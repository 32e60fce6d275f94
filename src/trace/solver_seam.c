/*
 * The one seam between the tracer and the CMVM/SCM solvers (cmvm/cmvm.h).
 *
 * TEMPORARY STAND-IN. The solver library (src/cmvm) is being written in parallel. Its entry
 * points are referenced weakly here: when libalkaid is linked with them, they are used (through
 * the job's cache when enabled); while they are missing, the symbols resolve to NULL and:
 *   * SCM falls back to `standin_scm`: the constant's non-adjacent form summed with the
 *     reference's emission heap (cmvm.md §6, one input, no CSE). It reproduces the reference for
 *     constants whose NAF has at most two digits (3, 5, 7, 0.75, ...), which covers the example
 *     model; other constants get a correct but different adder graph.
 *   * CMVM reports ALK_ENOTSUP and the caller realises the product as plain constant products
 *     summed with the tracing reduce (the reference's "offload" path), which is exact but not
 *     op-for-op equal to the reference.
 * Once src/cmvm links, delete the stand-ins and the weak pragmas; nothing else changes.
 *
 * Thread rule: as the trace context (one thread at a time).
 */
#include "core/alloc.h"
#include "trace/trace_int.h"

#include <string.h>

#pragma weak alk_scm_solve
#pragma weak alk_cmvm_solve
#pragma weak alk_cmvm_cache_new
#pragma weak alk_cmvm_cache_free
#pragma weak alk_cmvm_cache_solve
#pragma weak alk_cmvm_cache_scm

bool alk__solvers_linked(void);
bool alk__solvers_linked(void) {
    return alk_scm_solve != NULL && alk_cmvm_solve != NULL;
}

void alk__trace_free_cache(alk_trace *t);
void alk__trace_free_cache(alk_trace *t) {
    if (t->cache != NULL && alk_cmvm_cache_free != NULL) {
        alk_cmvm_cache_free(t->cache);
    }
    t->cache = NULL;
}

static int get_cache(alk_trace *t, alk_cmvm_cache **ret) {
    *ret = NULL;
    if (!t->solver.use_cache || alk_cmvm_cache_new == NULL) {
        return ALK_OK;
    }
    if (t->cache == NULL) {
        int rv = alk_cmvm_cache_new(&t->cache);
        if (rv != ALK_OK) {
            return alk__trace_set_error(t, rv, "cannot create the solver cache");
        }
    }
    *ret = t->cache;
    return ALK_OK;
}

/* ---- SCM stand-in ---- */

typedef struct term {
    double lat_key; /* rounded latency */
    bool neg;
    int la;
    alk_qint q;
    uint32_t id;
    int shift;
    double lat;
} term;

static bool term_less(const term *a, const term *b) {
    if (a->lat_key != b->lat_key) {
        return a->lat_key < b->lat_key;
    }
    if (a->neg != b->neg) {
        return !a->neg;
    }
    if (a->la != b->la) {
        return a->la < b->la;
    }
    if (a->q.min != b->q.min) {
        return a->q.min < b->q.min;
    }
    if (a->q.max != b->q.max) {
        return a->q.max < b->q.max;
    }
    if (a->q.step != b->q.step) {
        return a->q.step < b->q.step;
    }
    if (a->id != b->id) {
        return a->id < b->id;
    }
    return a->shift < b->shift;
}

static term make_term(alk_qint q, double lat, uint32_t id, int shift, bool neg) {
    float top = fabsf((float)(q.max + q.step)), bottom = fabsf((float)q.min);
    int la = (int)truncf(log2f(top > bottom ? top : bottom)) + shift;
    return (term){roundf((float)lat), neg, la, q, id, shift, lat};
}

static int standin_scm(double c, alk_program **ret_program) {
    bool out_neg = c < 0;
    double mag = fabs(c);
    int e;
    (void)frexp(mag, &e);
    /* Odd part and its exponent from the double's bits. */
    int t_exp = 0;
    double odd = mag;
    while (odd != floor(odd)) {
        odd *= 2;
        t_exp--;
    }
    while (fmod(odd, 2.0) == 0) {
        odd /= 2;
        t_exp++;
    }
    if (!(odd < 9007199254740992.0)) {
        return ALK_EINVAL;
    }
    int64_t n = (int64_t)odd;
    term terms[70];
    size_t len = 0;
    alk_qint q_in = {-128, 127, 1};
    for (int pos = 0; n != 0 && pos < 64; pos++) {
        if (n & 1) {
            int64_t digit = 2 - (n & 3);
            if (n == 1 || n == -1) {
                digit = n;
            }
            terms[len++] = make_term(q_in, 0, 0, pos, digit < 0);
            n -= digit;
        }
        n /= 2;
    }
    alk_program *p = NULL;
    int rv = alk_program_new(1, 1, &p);
    if (rv != ALK_OK) {
        return rv;
    }
    p->carry_size = p->adder_size = -1;
    int64_t zero = 0;
    (void)alk_program_add_op(p, ALK_OP_READ, NULL, 0, &zero, 1, q_in, 0, 0);
    while (len > 1) {
        /* Pop the two smallest terms (a linear scan is enough for <= 64 digits). */
        term popped[2];
        for (int k = 0; k < 2; k++) {
            size_t best = 0;
            for (size_t j = 1; j < len; j++) {
                if (term_less(&terms[j], &terms[best])) {
                    best = j;
                }
            }
            popped[k] = terms[best];
            terms[best] = terms[--len];
        }
        term e0 = popped[0], e1 = popped[1];
        uint32_t addr[2];
        int64_t shift;
        int opcode;
        term r;
        if (e0.neg) {
            addr[0] = e1.id;
            addr[1] = e0.id;
            shift = e0.shift - e1.shift;
            opcode = 1 ^ e1.neg;
            r.shift = e1.shift;
            r.neg = e0.neg && e1.neg;
        } else {
            addr[0] = e0.id;
            addr[1] = e1.id;
            shift = e1.shift - e0.shift;
            opcode = e1.neg;
            r.shift = e0.shift;
            r.neg = false;
        }
        alk_qint qa = p->ops[addr[0]].qint, qb = p->ops[addr[1]].qint;
        double sc = ldexp(1.0, (int)shift);
        alk_qint q = {qa.min + (opcode ? -qb.max : qb.min) * sc,
                      qa.max + (opcode ? -qb.min : qb.max) * sc, fmin(qa.step, qb.step * sc)};
        double lat = fmax(e0.lat_key, e1.lat_key) + 1.1;
        int64_t idx = alk_program_add_op(p, opcode, addr, 2, &shift, 1, q, lat, 1);
        r = make_term(q, lat, (uint32_t)idx, r.shift, r.neg);
        terms[len++] = r;
    }
    p->out_idxs[0] = (int32_t)terms[0].id;
    p->out_shifts[0] = terms[0].shift + t_exp;
    p->out_negs[0] = terms[0].neg != out_neg;
    rv = alk_program_error(p);
    if (rv != ALK_OK) {
        alk_program_free(p);
        return rv;
    }
    (void)e;
    *ret_program = p;
    return ALK_OK;
}

int alk__scm_program(alk_trace *t, double c, alk_program **ret_program, bool *ret_borrowed) {
    alk_qint q = {-128, 127, 1};
    alk_diag diag = {{0}};
    int rv;
    if (alk_scm_solve == NULL) {
        rv = standin_scm(c, ret_program);
        *ret_borrowed = false;
        if (rv != ALK_OK) {
            return alk__trace_set_error(t, rv, "cannot multiply by %.17g", c);
        }
        return ALK_OK;
    }
    alk_cmvm_cache *cache = NULL;
    rv = get_cache(t, &cache);
    if (rv != ALK_OK) {
        return rv;
    }
    if (cache != NULL && alk_cmvm_cache_scm != NULL) {
        const alk_program *program = NULL;
        rv = alk_cmvm_cache_scm(cache, c, 2, q, &program, NULL, &diag);
        if (rv == ALK_OK) {
            *ret_program = (alk_program *)program;
            *ret_borrowed = true;
        }
    } else {
        rv = alk_scm_solve(c, 2, q, ret_program, &diag);
        *ret_borrowed = false;
    }
    if (rv != ALK_OK) {
        return alk__trace_set_error(t, rv, "SCM for %.17g: %s", c, diag.message);
    }
    return ALK_OK;
}

int alk__cmvm_run(alk_trace *t, const alk_cmvm_problem *problem, const alk_cmvm_result **ret,
                  alk_cmvm_result *owned, bool *ret_owned);

int alk__cmvm_run(alk_trace *t, const alk_cmvm_problem *problem, const alk_cmvm_result **ret,
                  alk_cmvm_result *owned, bool *ret_owned) {
    *ret_owned = false;
    if (alk_cmvm_solve == NULL) {
        return ALK_ENOTSUP;
    }
    alk_diag diag = {{0}};
    alk_cmvm_cache *cache = NULL;
    int rv = get_cache(t, &cache);
    if (rv != ALK_OK) {
        return rv;
    }
    if (cache != NULL && alk_cmvm_cache_solve != NULL) {
        rv = alk_cmvm_cache_solve(cache, problem, &t->solver.cmvm, ret, NULL, &diag);
    } else {
        memset(owned, 0, sizeof(*owned));
        rv = alk_cmvm_solve(problem, &t->solver.cmvm, owned, &diag);
        if (rv == ALK_OK) {
            *ret = owned;
            *ret_owned = true;
        }
    }
    if (rv != ALK_OK) {
        return alk__trace_set_error(t, rv, "CMVM (%u x %u): %s", problem->n_in, problem->n_out,
                                    diag.message);
    }
    return ALK_OK;
}
