/*
 * ALIR JSON codec against the reference's own files (shared/fixtures/alir) and the exact text of
 * spec trace-alir.md §4.5.
 */
#include "alir/json.h"
#include "core/alloc.h"
#include "core/io.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const all_fixtures[] = {
    "alir/v2.json.gz",
    "alir/v3.json.gz",
    "alir/v2_upgraded.json",
    "alir/v2_upgraded.json.gz",
    "alir/v3_upgraded.json",
    "alir/v3_upgraded.json.gz",
    "alir/testdata_comb_upgraded.json",
    "alir/testdata_comb_upgraded.json.gz",
};

static alk_program *load(const char *name) {
    alk_program *program = NULL;
    alk_diag diag = {{0}};
    int rv = alk_alir_read_file(fixture_path(name), &program, &diag);
    cr_assert_eq(rv, ALK_OK, "%s: %s", name, diag.message);
    return program;
}

Test(alir_json, every_fixture_loads) {
    for (size_t i = 0; i < sizeof(all_fixtures) / sizeof(all_fixtures[0]); i++) {
        alk_program *program = load(all_fixtures[i]);
        cr_assert_gt(program->n_ops, 500, "%s", all_fixtures[i]);
        cr_assert_eq(program->n_tables, 1, "%s", all_fixtures[i]);
        alk_program_free(program);
    }
}

/* Shapes and op counts stated in the fixtures' README and spec §4.9. */
Test(alir_json, fixture_shapes_match_the_spec) {
    alk_program *v3 = load("alir/v3.json.gz");
    cr_assert_eq(v3->n_in, 64);
    cr_assert_eq(v3->n_out, 16);
    cr_assert_eq(v3->n_ops, 581);
    cr_assert_eq(v3->out_idxs[0], 554);
    cr_assert_eq(v3->out_shifts[15], 2);
    cr_assert_eq(v3->tables[0].len, 8192);
    cr_assert_eq(v3->tables[0].inp_width, 13);
    cr_assert_eq(strncmp(v3->tables[0].hash, "837144881154dab5", 16), 0);
    alk_program *comb = load("alir/testdata_comb_upgraded.json");
    cr_assert_eq(comb->n_in, 20);
    cr_assert_eq(comb->n_out, 24);
    cr_assert_eq(comb->n_ops, 627);
    cr_assert_eq(comb->carry_size, -1);
    cr_assert_eq(comb->tables[0].len, 256);
    alk_program_free(v3);
    alk_program_free(comb);
}

/* Our writer reproduces the reference's saved files byte for byte. */
Test(alir_json, writer_reproduces_reference_files_exactly) {
    static const char *const saved[] = {
        "alir/v2_upgraded.json",
        "alir/v3_upgraded.json",
        "alir/testdata_comb_upgraded.json",
    };
    for (size_t i = 0; i < sizeof(saved) / sizeof(saved[0]); i++) {
        alk_buf original;
        alk_buf written;
        alk_buf_init(&original);
        alk_buf_init(&written);
        read_whole_file(fixture_path(saved[i]), &original);
        alk_program *program = load(saved[i]);
        cr_assert_eq(alk_alir_to_json(program, &written), ALK_OK);
        cr_assert_eq(written.len, original.len, "%s: %zu vs %zu bytes", saved[i], written.len,
                     original.len);
        size_t first_diff = 0;
        while (first_diff < written.len && written.data[first_diff] == original.data[first_diff]) {
            first_diff++;
        }
        cr_assert_eq(first_diff, written.len, "%s differs at byte %zu: ...%.40s", saved[i],
                     first_diff, written.data + first_diff);
        alk_program_free(program);
        alk_buf_fini(&original);
        alk_buf_fini(&written);
    }
}

/* The legacy files upgrade on load into exactly the programs the reference upgraded. */
Test(alir_json, legacy_versions_upgrade_like_the_reference) {
    static const char *const pairs[][2] = {
        {"alir/v2.json.gz", "alir/v2_upgraded.json"},
        {"alir/v3.json.gz", "alir/v3_upgraded.json"},
        {"alir/v2_upgraded.json.gz", "alir/v2_upgraded.json"},
        {"alir/v3_upgraded.json.gz", "alir/v3_upgraded.json"},
        {"alir/testdata_comb_upgraded.json.gz", "alir/testdata_comb_upgraded.json"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        alk_program *a = load(pairs[i][0]);
        alk_program *b = load(pairs[i][1]);
        cr_assert(alk_program_equal(a, b), "%s != %s", pairs[i][0], pairs[i][1]);
        alk_program_free(a);
        alk_program_free(b);
    }
}

Test(alir_json, write_then_read_gives_the_same_program) {
    char dir[] = "/tmp/alk-json-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    static const char *const names[] = {"out.json", "out.json.gz"};
    for (size_t n = 0; n < 2; n++) {
        for (size_t i = 0; i < sizeof(all_fixtures) / sizeof(all_fixtures[0]); i++) {
            char path[256];
            (void)snprintf(path, sizeof(path), "%s/%s", dir, names[n]);
            alk_program *a = load(all_fixtures[i]);
            alk_diag diag = {{0}};
            cr_assert_eq(alk_alir_write_file(a, path, &diag), ALK_OK, "%s", diag.message);
            alk_program *b = NULL;
            cr_assert_eq(alk_alir_read_file(path, &b, &diag), ALK_OK, "%s", diag.message);
            cr_assert(alk_program_equal(a, b), "%s via %s", all_fixtures[i], names[n]);
            alk_buf bytes;
            alk_buf_init(&bytes);
            read_whole_file(path, &bytes);
            cr_assert_eq(alk_is_gzip(bytes.data, bytes.len), n == 1);
            alk_buf_fini(&bytes);
            alk_program_free(a);
            alk_program_free(b);
            (void)unlink(path);
        }
    }
    (void)rmdir(dir);
}

/* The exact expected file of spec §4.5 (inputs x, y; outputs x + 4y, min(x, 0), 2^-20, -x*2^70). */
static const char spec_example[] =
    "{\"model\":[[2,4],[0,0],[3,6,0,4],[0,0,0,70],[false,false,false,false],[[[],5,[1],[9."
    "5367431640625e-07,9.5367431640625e-07,9.5367431640625e-07],0,0],[[],-1,[1],[0.0,3.0,1.0],0,"
    "0],[[],-1,[0],[-8.0,7.5,0.5],0,0],[[2,1],0,[2],[-8.0,19.5,0.5],1.119140625,2],[[2],-2,[],[-"
    "7.5,8.0,0.5],0,0],[[4],2,[],[0.0,8.0,0.5],0,2.5],[[5],-2,[],[-8.0,-0.0,0.5],0,0]],1,1,null]"
    ",\"meta\":\"ALIRModel\",\"spec_version\":4}";

Test(alir_json, builds_the_spec_example_byte_for_byte) {
    alk_program *p = NULL;
    cr_assert_eq(alk_program_new(2, 4, &p), ALK_OK);
    const double eps = 9.5367431640625e-07;
    uint32_t a_x = 2, a_xy[2] = {2, 1}, a_neg = 4, a_relu = 5;
    int64_t d1 = 1, d0 = 0, d2 = 2;
    alk_program_add_op(p, ALK_OP_CONST, NULL, 0, &d1, 1, (alk_qint){eps, eps, eps}, 0, 0);
    alk_program_add_op(p, ALK_OP_READ, NULL, 0, &d1, 1, (alk_qint){0, 3, 1}, 0, 0);
    alk_program_add_op(p, ALK_OP_READ, NULL, 0, &d0, 1, (alk_qint){-8, 7.5, 0.5}, 0, 0);
    alk_program_add_op(p, ALK_OP_ADD, a_xy, 2, &d2, 1, (alk_qint){-8, 19.5, 0.5}, 1.119140625, 2);
    alk_program_add_op(p, ALK_OP_NEG, &a_x, 1, NULL, 0, (alk_qint){-7.5, 8, 0.5}, 0, 0);
    alk_program_add_op(p, ALK_OP_RELU, &a_neg, 1, NULL, 0, (alk_qint){0, 8, 0.5}, 0, 2.5);
    alk_program_add_op(p, ALK_OP_NEG, &a_relu, 1, NULL, 0, (alk_qint){-8, -0.0, 0.5}, 0, 0);
    cr_assert_eq(alk_program_error(p), ALK_OK);
    for (size_t i = 0; i < p->n_ops; i++) {
        p->ops[i].int_fields = ALK_INT_LATENCY | ALK_INT_COST;
    }
    p->ops[3].int_fields = ALK_INT_COST;    /* latency 1.119140625, cost 2 */
    p->ops[5].int_fields = ALK_INT_LATENCY; /* latency 0, cost 2.5 */
    int32_t out_idxs[4] = {3, 6, 0, 4};
    memcpy(p->out_idxs, out_idxs, sizeof(out_idxs));
    p->out_shifts[3] = 70;
    alk_buf text;
    alk_buf_init(&text);
    cr_assert_eq(alk_alir_to_json(p, &text), ALK_OK);
    cr_assert_str_eq(text.data, spec_example);

    alk_program *q = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_alir_parse(spec_example, strlen(spec_example), &q, &diag), ALK_OK, "%s",
                 diag.message);
    cr_assert(alk_program_equal(p, q));
    alk_buf_fini(&text);
    alk_program_free(p);
    alk_program_free(q);
}

/* A gzip file whose text is not JSON fails at its first byte: it is decompressed as the parser
 * reads it, so a bomb of 2 GiB of spaces after the `x` is never inflated to the 1 GiB limit
 * (ELIMIT) but refused as JSON (EINVAL) at line 1, column 1. Truncating the same stream inside
 * its first member is a gzip error, since the parser asks for the bytes that are missing. */
Test(alir_json, gzip_text_is_parsed_as_it_is_decompressed) {
    alk_diag diag = {{0}};
    alk_buf spaces;
    alk_buf_init(&spaces);
    cr_assert_eq(alk_buf_reserve(&spaces, 1 << 20), ALK_OK);
    memset(spaces.data, ' ', 1 << 20);
    spaces.len = 1 << 20;
    alk_buf bomb;
    alk_buf_init(&bomb);
    cr_assert_eq(alk_gzip("x", 1, &bomb, &diag), ALK_OK);
    alk_buf member;
    alk_buf_init(&member);
    cr_assert_eq(alk_gzip(spaces.data, spaces.len, &member, &diag), ALK_OK);
    for (int i = 0; i < 2048; i++) { /* members of 1 MiB each, as `cat` joins them */
        alk_buf_append(&bomb, member.data, member.len);
    }
    cr_assert_eq(alk_buf_error(&bomb), ALK_OK);
    alk_program *program = NULL;
    int rv = alk_alir_parse(bomb.data, bomb.len, &program, &diag);
    cr_assert_eq(rv, ALK_EINVAL, "%s: %s", alk_err_name(rv), diag.message);
    cr_assert(strstr(diag.message, "JSON error at line 1, column 1") != NULL, "%s", diag.message);

    alk_buf_reset(&member);
    cr_assert_eq(alk_gzip(spec_example, sizeof(spec_example) - 1, &member, &diag), ALK_OK);
    rv = alk_alir_parse(member.data, member.len - 9, &program, &diag);
    cr_assert_eq(rv, ALK_EINVAL);
    cr_assert(strstr(diag.message, "gzip: truncated stream") != NULL, "%s", diag.message);
    rv = alk_alir_parse(member.data, member.len, &program, &diag);
    cr_assert_eq(rv, ALK_OK, "%s", diag.message);
    alk_program_free(program);
    alk_buf_fini(&member);
    alk_buf_fini(&bomb);
    alk_buf_fini(&spaces);
}
