/*
 * The one seam between the tracer and the CMVM/SCM solvers (cmvm/cmvm.h): every constant
 * product of a trace reaches the solvers through the two functions below, which add the job's
 * cache (alk_cmvm_cache, created on first use) and account the time spent solving.
 *
 * The reference solves every problem again (no memoisation); answering a repeated identical
 * problem from the cache returns the identical program, so results are unchanged while repeated
 * layers (convolutions, the 64 identical "x * 3" of the example model) cost one solve.
 *
 * Thread rule: as the trace context (one thread at a time).
 */
#include "core/alloc.h"
#include "trace/trace_int.h"

#include <string.h>
#include <time.h>

void alk__trace_free_cache(alk_trace *t) {
    alk_cmvm_cache_free(t->cache);
    t->cache = NULL;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double alk_trace_solver_seconds(const alk_trace *t) {
    return t->solver_seconds;
}

static int get_cache(alk_trace *t, alk_cmvm_cache **ret) {
    *ret = NULL;
    if (!t->solver.use_cache) {
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

int alk__scm_program(alk_trace *t, double c, alk_program **ret_program, bool *ret_borrowed) {
    /* cmvm.md §8.3: scm_solve(c, k=2) with the default interval, in the job's solver mode. */
    alk_scm_options options;
    alk_scm_options_init(&options);
    options.k = 2;
    options.mode = t->solver.cmvm.mode;
    options.cancel = t->solver.cmvm.cancel;
    alk_diag diag = {{0}};
    alk_cmvm_cache *cache = NULL;
    int rv = get_cache(t, &cache);
    if (rv != ALK_OK) {
        return rv;
    }
    double start = now_seconds();
    if (cache != NULL) {
        const alk_program *program = NULL;
        rv = alk_cmvm_cache_scm(cache, c, &options, &program, NULL, &diag);
        if (rv == ALK_OK) {
            *ret_program = (alk_program *)program;
            *ret_borrowed = true;
        }
    } else {
        rv = alk_scm_solve(c, &options, ret_program, &diag);
        *ret_borrowed = false;
    }
    t->solver_seconds += now_seconds() - start;
    if (rv != ALK_OK) {
        return alk__trace_set_error(t, rv, "multiplying by %.17g (SCM): %s", c, diag.message);
    }
    return ALK_OK;
}

int alk__cmvm_run(alk_trace *t, const alk_cmvm_problem *problem, const alk_cmvm_result **ret,
                  alk_cmvm_result *owned, bool *ret_owned) {
    *ret_owned = false;
    alk_diag diag = {{0}};
    alk_cmvm_cache *cache = NULL;
    int rv = get_cache(t, &cache);
    if (rv != ALK_OK) {
        return rv;
    }
    double start = now_seconds();
    if (cache != NULL) {
        rv = alk_cmvm_cache_solve(cache, problem, &t->solver.cmvm, ret, NULL, &diag);
    } else {
        memset(owned, 0, sizeof(*owned));
        rv = alk_cmvm_solve(problem, &t->solver.cmvm, owned, &diag);
        if (rv == ALK_OK) {
            *ret = owned;
            *ret_owned = true;
        }
    }
    t->solver_seconds += now_seconds() - start;
    if (rv != ALK_OK) {
        return alk__trace_set_error(t, rv, "constant matrix product (%u x %u, CMVM): %s",
                                    problem->n_in, problem->n_out, diag.message);
    }
    return ALK_OK;
}
