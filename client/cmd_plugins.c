/*
 * `alkaidc plugins [--plugin-dir DIR]...`: lists the plugins this machine would load — group,
 * name, library, ABI version, state and, for a refused plugin, the reason.
 */
#include "cli.h"

#include "core/alloc.h"
#include "plugin/registry.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char *state_name(alk_plugin_state state) {
    switch (state) {
    case ALK_PLUGIN_LOADED:
        return "loaded";
    case ALK_PLUGIN_ON_DEMAND:
        return "on-demand";
    default:
        return "refused";
    }
}

static void print_listing(const alk_plugin_info *infos, size_t n) {
    printf("%-20s %-14s %-4s %-10s %s\n", "GROUP", "NAME", "ABI", "STATE", "LIBRARY");
    for (size_t i = 0; i < n; i++) {
        printf("%-20s %-14s %-4u %-10s %s\n", infos[i].group, infos[i].name, infos[i].abi_version,
               state_name(infos[i].state), infos[i].library);
        if (infos[i].error != NULL) {
            printf("    refused: %s\n", infos[i].error);
        }
    }
}

int cmd_plugins(int argc, char **argv) {
    static const struct option options[] = {
        {"plugin-dir", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int remote = cli_plugins_remote(&argc, argv); /* a daemon's listing (cmd_daemon.c) */
    if (remote >= 0) {
        return remote;
    }
    const char *extra[16];
    size_t n_extra = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:h", options, NULL)) != -1) {
        if (c == 'h') {
            printf("usage: alkaidc plugins [--plugin-dir DIR]...\n\n"
                   "Lists the plugins found in DIR..., $ALKAID_PLUGIN_PATH and the built-in\n"
                   "plugin directory, with their state.\n");
            return EXIT_OK;
        }
        if (c != 'p' || n_extra == sizeof(extra) / sizeof(extra[0])) {
            return cli_usage_error("plugins", "bad option");
        }
        extra[n_extra++] = optarg;
    }
    if (optind != argc) {
        return cli_usage_error("plugins", "unexpected argument '%s'", argv[optind]);
    }
    alk_diag diag = {{0}};
    char **dirs = NULL;
    size_t n_dirs = 0;
    alk_generation *generation = NULL;
    alk_plugin_info *infos = NULL;
    size_t n = 0;
    int rv = alk_plugin_search_path(extra, n_extra, &dirs, &n_dirs);
    if (rv == ALK_OK) {
        alk_plugin_config config = {.dirs = (const char *const *)dirs, .n_dirs = n_dirs};
        rv = alk_generation_build(&config, NULL, &generation, &diag);
    }
    if (rv == ALK_OK) {
        rv = alk_generation_plugins(generation, &infos, &n);
    }
    if (rv == ALK_OK) {
        print_listing(infos, n);
    }
    alk_free(infos);
    alk_generation_unref(generation);
    alk_plugin_dirs_free(dirs, n_dirs);
    return rv == ALK_OK ? EXIT_OK : cli_fail(rv, &diag);
}
