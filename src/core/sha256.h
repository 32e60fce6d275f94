/*
 * SHA-256 (FIPS 180-4), used to name lookup tables the way the reference does (spec
 * trace-alir.md §1.15: the hex digest of the table bytes, the mask and the output precision).
 *
 * Streaming interface: init, any number of updates, final. No allocation; the state is embedded
 * by the caller. Thread rule: a state belongs to one thread.
 */
#ifndef ALK_CORE_SHA256_H
#define ALK_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct alk_sha256 {
    uint32_t state[8];
    uint64_t total_len;
    uint8_t block[64];
    size_t block_len;
} alk_sha256;

/* Starts a new digest in `ctx` (owned by the caller). */
void alk_sha256_init(alk_sha256 *ctx);

/* Hashes `len` bytes at `data` (borrowed). */
void alk_sha256_update(alk_sha256 *ctx, const void *data, size_t len);

/* Finishes the digest: 32 raw bytes into `digest` (caller's buffer). `ctx` must be re-initialised
 * before reuse. */
void alk_sha256_final(alk_sha256 *ctx, uint8_t digest[32]);

/* Finishes the digest as 64 lowercase hex digits plus a NUL into `hex` (caller's buffer). */
void alk_sha256_final_hex(alk_sha256 *ctx, char hex[65]);

#endif
