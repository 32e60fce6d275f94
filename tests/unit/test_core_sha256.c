/*
 * SHA-256 against the FIPS 180-4 / NIST example vectors, including multi-block messages and a
 * million 'a's fed in uneven pieces (exercises the block buffering).
 */
#include "core/sha256.h"

#include <criterion/criterion.h>
#include <string.h>

static void check(const char *message, size_t len, const char *want) {
    alk_sha256 ctx;
    char hex[65];
    alk_sha256_init(&ctx);
    alk_sha256_update(&ctx, message, len);
    alk_sha256_final_hex(&ctx, hex);
    cr_assert_str_eq(hex, want, "message of %zu bytes", len);
}

Test(core_sha256, empty) {
    check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test(core_sha256, abc) {
    check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(core_sha256, two_blocks) {
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check(m, strlen(m), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test(core_sha256, four_blocks) {
    const char *m =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnop"
        "qklmnopqrlmnopqrsmnopqrstnopqrstu";
    check(m, strlen(m), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

Test(core_sha256, million_a_in_pieces) {
    static char chunk[1024];
    memset(chunk, 'a', sizeof(chunk));
    alk_sha256 ctx;
    alk_sha256_init(&ctx);
    size_t left = 1000000;
    size_t piece = 1;
    while (left > 0) {
        size_t n = piece < left ? piece : left;
        alk_sha256_update(&ctx, chunk, n);
        left -= n;
        piece = piece % 997 + 13;
    }
    char hex[65];
    alk_sha256_final_hex(&ctx, hex);
    cr_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
