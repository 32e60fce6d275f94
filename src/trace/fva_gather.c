/* Placeholder while the array primitives are written (branch pend): every entry point records
 * ALK_EINVAL "not implemented yet" so that callers link and fail cleanly. */
#include "trace/fva_int.h"

#define NOT_YET(name)                                                                              \
    do {                                                                                           \
        if (!failed(t)) {                                                                          \
            alk__trace_set_error(t, ALK_EINVAL, "%s: not implemented yet", name);                  \
        }                                                                                          \
        return NULL;                                                                               \
    } while (0)

alk_fva *alk_fva_pad(alk_trace *t, const alk_fva *a, const int64_t (*pads)[2], alk_pad_mode mode,
                     double value) {
    (void)a, (void)pads, (void)mode, (void)value;
    NOT_YET("pad");
}
alk_fva *alk_fva_take(alk_trace *t, const alk_fva *a, const int64_t *indices, size_t n, int axis) {
    (void)a, (void)indices, (void)n, (void)axis;
    NOT_YET("take");
}
alk_fva *alk_fva_tile(alk_trace *t, const alk_fva *a, size_t n_reps, const size_t *reps) {
    (void)a, (void)n_reps, (void)reps;
    NOT_YET("tile");
}
void alk_patch_same_pads(alk_patch_spec *spec, const size_t *in_sizes) {
    (void)spec, (void)in_sizes;
}
alk_fva *alk_fva_patches(alk_trace *t, const alk_fva *images, const alk_patch_spec *spec,
                         double pad_value) {
    (void)images, (void)spec, (void)pad_value;
    NOT_YET("patches");
}
alk_fva *alk_fva_patches_transposed(alk_trace *t, const alk_fva *images, const alk_patch_spec *spec,
                                    double pad_value) {
    (void)images, (void)spec, (void)pad_value;
    NOT_YET("patches_transposed");
}
bool alk_fva_is_pending(const alk_fva *a) {
    (void)a;
    return false;
}
const char *alk_unary_fn_name(alk_unary_fn fn) {
    (void)fn;
    return NULL;
}
alk_fva *alk_fva_apply(alk_trace *t, const alk_fva *a, alk_unary_fn fn) {
    (void)a, (void)fn;
    NOT_YET("apply");
}
alk_fva *alk_fva_apply_with(alk_trace *t, const alk_fva *a, alk_unary_fn fn, double param) {
    (void)a, (void)fn, (void)param;
    NOT_YET("apply_with");
}
alk_fva *alk_fva_apply_custom(alk_trace *t, const alk_fva *a, alk_float_fn fn, void *user) {
    (void)a, (void)fn, (void)user;
    NOT_YET("apply_custom");
}
alk_fva *alk_fva_rdiv_scalar(alk_trace *t, double c, const alk_fva *a) {
    (void)a, (void)c;
    NOT_YET("rdiv_scalar");
}
alk_fva *alk_fva_power_real(alk_trace *t, const alk_fva *a, double e) {
    (void)a, (void)e;
    NOT_YET("power_real");
}
alk_fva *alk_fva_quantize_kif(alk_trace *t, const alk_fva *a, const alk_fva *k, const alk_fva *i,
                              const alk_fva *f, alk_overflow overflow, alk_round round) {
    (void)a, (void)k, (void)i, (void)f, (void)overflow, (void)round;
    NOT_YET("quantize_kif");
}
