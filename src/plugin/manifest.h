/*
 * Plugin manifests: the `NAME.plugin` files that stand for Python entry points.
 *
 * Format: UTF-8 text, one `key = value` per line, `#` comments and blank lines ignored. Keys:
 * `group`, `name`, `library` (relative paths are relative to the manifest's directory) and `abi`;
 * all four are required and unknown keys are refused, so a typo never passes silently.
 */
#ifndef ALK_PLUGIN_MANIFEST_H
#define ALK_PLUGIN_MANIFEST_H

#include "core/err.h"

#include <stdint.h>

typedef struct alk_manifest {
    char *path; /* the manifest file */
    char *group;
    char *name;
    char *library; /* absolute or relative to the working directory */
    uint32_t abi;
} alk_manifest;

/* Reads the manifest at `path` (borrowed). On success the caller owns *ret_manifest's strings
 * (alk_manifest_fini). Errors name the file and line. */
int alk_manifest_read(const char *path, alk_manifest *ret_manifest, alk_diag *diag);

/* Frees the strings of `manifest` (owned by the caller) and zeroes it. */
void alk_manifest_fini(alk_manifest *manifest);

#endif
