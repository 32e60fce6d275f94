/*
 * Allocation-failure loops (curl's torture mode): for n = 1, 2, ... the nth allocation of a whole
 * load + compile + run fails. Every run must end in a clean ALK_ENOMEM with every block freed,
 * until n passes the number of allocations the job makes, when it must succeed.
 */
#include "alir/interp.h"
#include "alir/json.h"
#include "core/alloc.h"
#include "testutil.h"

#include <criterion/criterion.h>

/* One job: parse `bytes`, compile, run 4 samples of zeros. */
static int load_and_run(const alk_buf *bytes, alk_diag *diag) {
    alk_program *program = NULL;
    alk_interp *interp = NULL;
    double inputs[4 * 64] = {0};
    double outputs[4 * 64];
    int rv = alk_alir_parse(bytes->data, bytes->len, &program, diag);
    if (rv == ALK_OK) {
        rv = alk_interp_new(program, &interp, diag);
    }
    if (rv == ALK_OK) {
        cr_assert_leq(program->n_in, 64);
        cr_assert_leq(program->n_out, 64);
        rv = alk_interp_run(interp, inputs, 4, outputs, diag);
    }
    alk_interp_free(interp);
    alk_program_free(program);
    return rv;
}

static void torture(const char *fixture) {
    alk_buf bytes;
    alk_buf_init(&bytes);
    read_whole_file(fixture_path(fixture), &bytes);
    long live = alk_alloc_live();
    unsigned long n = 1;
    for (;; n++) {
        alk_diag diag = {{0}};
        alk_alloc_fail_at(n, false);
        int rv = load_and_run(&bytes, &diag);
        unsigned long attempts = alk_alloc_count();
        alk_alloc_fail_at(0, false);
        cr_assert_eq(alk_alloc_live(), live, "%s: allocation %lu failed: %ld blocks leaked",
                     fixture, n, alk_alloc_live() - live);
        if (attempts < n) {
            cr_assert_eq(rv, ALK_OK, "%s: no failure injected but %s: %s", fixture,
                         alk_err_name(rv), diag.message);
            break;
        }
        cr_assert_eq(rv, ALK_ENOMEM, "%s: allocation %lu failed but the job returned %s: %s",
                     fixture, n, alk_err_name(rv), diag.message);
    }
    cr_assert_gt(n, 100, "%s: the job made only %lu allocations", fixture, n);
    alk_buf_fini(&bytes);
}

Test(alloc_fail, load_and_run_v4_gzip) {
    torture("alir/v3_upgraded.json.gz");
}

Test(alloc_fail, load_and_run_v2_upgrade) {
    torture("alir/v2.json.gz");
}
