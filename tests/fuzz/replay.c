/*
 * Replays a fuzzing corpus through a harness (fuzz_*.c) without libFuzzer, so that `meson test`
 * exercises every corpus input in every build (plain and sanitized). Arguments are files or
 * directories of files. Fails when an input crashes (the harness aborts) or leaks
 * (alk_alloc_live differs after the input). A harness's LLVMFuzzerInitialize, when it has one,
 * runs first, as under libFuzzer: what it sets up for every input is not counted as a leak.
 */
#include "core/alloc.h"
#include "core/io.h"
#include "core/vec.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path) {
    alk_buf bytes;
    alk_buf_init(&bytes);
    alk_diag diag = {{0}};
    if (alk_read_file(path, (size_t)64 << 20, &bytes, &diag) != ALK_OK) {
        fprintf(stderr, "replay: %s\n", diag.message);
        alk_buf_fini(&bytes);
        return 1;
    }
    long live = alk_alloc_live();
    (void)LLVMFuzzerTestOneInput((const uint8_t *)bytes.data, bytes.len);
    int failed = alk_alloc_live() != live;
    if (failed) {
        fprintf(stderr, "replay: %s leaks %ld blocks\n", path, alk_alloc_live() - live);
    }
    alk_buf_fini(&bytes);
    return failed;
}

int main(int argc, char **argv) {
    if (LLVMFuzzerInitialize != NULL) {
        (void)LLVMFuzzerInitialize(&argc, &argv);
    }
    size_t count = 0;
    int failures = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            failures += replay_file(argv[i]);
            count++;
            continue;
        }
        DIR *dir = opendir(argv[i]);
        struct dirent *entry;
        while (dir != NULL && (entry = readdir(dir)) != NULL) {
            if (entry->d_name[0] == '.') {
                continue;
            }
            char path[4096];
            (void)snprintf(path, sizeof(path), "%s/%s", argv[i], entry->d_name);
            failures += replay_file(path);
            count++;
        }
        if (dir != NULL) {
            closedir(dir);
        }
    }
    printf("replayed %zu inputs, %d failures\n", count, failures);
    return failures == 0 && count > 0 ? 0 : 1;
}
