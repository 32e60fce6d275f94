/*
 * Broken plugins for the loader tests, one per BROKEN_KIND (a compile-time switch):
 *   1 wrong ABI version, 2 short descriptor, 3 tracer without apply_model, 4 init fails,
 *   5 no entry symbol at all.
 */
#include "plugin/alk_plugin.h"

#include <stddef.h>

static int apply_model(void *state, alk_trace *trace, const alk_host *host, const alk_value *model,
                       alk_fva *const *inputs, size_t n_inputs, alk_diag *diag) {
    (void)state, (void)trace, (void)host, (void)model, (void)inputs, (void)n_inputs;
    return alk_diag_set(diag, ALK_EINTERNAL, "a broken plugin must never run");
}

static int failing_init(void **ret_state, alk_diag *diag) {
    (void)ret_state;
    return alk_diag_set(diag, ALK_EINVAL, "missing configuration file /etc/broken.conf");
}

#if BROKEN_KIND != 5
static const alk_plugin_descriptor descriptor = {
    .abi_version = BROKEN_KIND == 1 ? 99 : ALK_PLUGIN_ABI_VERSION,
    .struct_size =
        BROKEN_KIND == 2 ? offsetof(alk_plugin_descriptor, init) : sizeof(alk_plugin_descriptor),
    .group = ALK_GROUP_TRACER,
    .name = BROKEN_NAME,
    .init = BROKEN_KIND == 4 ? failing_init : NULL,
    .apply_model = BROKEN_KIND == 3 ? NULL : apply_model,
};

const alk_plugin_descriptor *alk_plugin_entry(void);
const alk_plugin_descriptor *alk_plugin_entry(void) {
    return &descriptor;
}
#else
int not_the_entry_point(void);
int not_the_entry_point(void) {
    return failing_init(NULL, NULL) + apply_model(NULL, NULL, NULL, NULL, NULL, 0, NULL);
}
#endif
