/*
 * ALIR JSON v4 writer.
 *
 * The layout is Python's json.dump with separators (",", ":"): no spaces, no trailing newline,
 * keys in the order model, meta, spec_version. Floats use repr() (alk_fmt_double); numbers that
 * the program marks as integers are written as integers, as Python writes its ints.
 */
#include "alir/json.h"
#include "core/alloc.h"
#include "core/io.h"
#include "core/numfmt.h"

#include <math.h>
#include <string.h>

static void put_double(alk_buf *out, double value) {
    if (isnan(value)) {
        alk_buf_puts(out, "NaN");
        return;
    }
    if (isinf(value)) {
        alk_buf_puts(out, value < 0 ? "-Infinity" : "Infinity");
        return;
    }
    char text[ALK_FMT_DOUBLE_MAX];
    size_t n = alk_fmt_double(text, value);
    alk_buf_append(out, text, n);
}

/* A number the file had as an integer (or as a float, per `is_int`). */
static void put_number(alk_buf *out, double value, bool is_int) {
    if (is_int && isfinite(value) && fabs(value) < 0x1p63) {
        alk_buf_put_i64(out, (int64_t)value);
    } else if (is_int && isfinite(value)) {
        alk_buf_printf(out, "%.0f", value);
    } else {
        put_double(out, value);
    }
}

static void put_i32_list(alk_buf *out, const int32_t *values, size_t n) {
    alk_buf_putc(out, '[');
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            alk_buf_putc(out, ',');
        }
        alk_buf_put_i64(out, values[i]);
    }
    alk_buf_putc(out, ']');
}

static void put_qint_list(alk_buf *out, alk_qint q, uint8_t int_fields) {
    alk_buf_putc(out, '[');
    put_number(out, q.min, int_fields & ALK_INT_MIN);
    alk_buf_putc(out, ',');
    put_number(out, q.max, int_fields & ALK_INT_MAX);
    alk_buf_putc(out, ',');
    put_number(out, q.step, int_fields & ALK_INT_STEP);
    alk_buf_putc(out, ']');
}

static void put_op(alk_buf *out, const alk_program *program, const alk_alir_op *op) {
    const uint32_t *addr = alk_alir_op_addr(program, op);
    const int64_t *data = alk_alir_op_data(program, op);
    alk_buf_puts(out, "[[");
    for (uint32_t a = 0; a < op->n_addr; a++) {
        if (a > 0) {
            alk_buf_putc(out, ',');
        }
        alk_buf_put_i64(out, addr[a]);
    }
    alk_buf_puts(out, "],");
    alk_buf_put_i64(out, op->opcode);
    alk_buf_puts(out, ",[");
    for (uint32_t d = 0; d < op->n_data; d++) {
        if (d > 0) {
            alk_buf_putc(out, ',');
        }
        alk_buf_put_i64(out, data[d]);
    }
    alk_buf_puts(out, "],");
    put_qint_list(out, op->qint, op->int_fields);
    alk_buf_putc(out, ',');
    put_number(out, op->latency, op->int_fields & ALK_INT_LATENCY);
    alk_buf_putc(out, ',');
    put_number(out, op->cost, op->int_fields & ALK_INT_COST);
    alk_buf_putc(out, ']');
}

/* A JSON string; the reader admits only printable ASCII, so escaping '"' and '\' suffices. */
static void put_string(alk_buf *out, const char *s) {
    alk_buf_putc(out, '"');
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\') {
            alk_buf_putc(out, '\\');
        }
        alk_buf_putc(out, *s);
    }
    alk_buf_putc(out, '"');
}

static void put_table(alk_buf *out, const alk_table *table) {
    alk_buf_puts(out, "{\"spec\":{\"hash\":");
    put_string(out, table->hash);
    alk_buf_puts(out, ",\"out_qint\":{\"min\":");
    put_number(out, table->out_qint.min, table->out_qint_int_fields & ALK_INT_MIN);
    alk_buf_puts(out, ",\"max\":");
    put_number(out, table->out_qint.max, table->out_qint_int_fields & ALK_INT_MAX);
    alk_buf_puts(out, ",\"step\":");
    put_number(out, table->out_qint.step, table->out_qint_int_fields & ALK_INT_STEP);
    alk_buf_puts(out, "},\"inp_width\":");
    alk_buf_put_i64(out, table->inp_width);
    alk_buf_puts(out, "},\"table\":");
    put_i32_list(out, table->values, table->len);
    alk_buf_putc(out, '}');
}

int alk_alir_to_json(const alk_program *program, alk_buf *out) {
    alk_buf_puts(out, "{\"model\":[[");
    alk_buf_put_i64(out, program->n_in);
    alk_buf_putc(out, ',');
    alk_buf_put_i64(out, program->n_out);
    alk_buf_puts(out, "],");
    put_i32_list(out, program->inp_shifts, program->n_in);
    alk_buf_putc(out, ',');
    put_i32_list(out, program->out_idxs, program->n_out);
    alk_buf_putc(out, ',');
    put_i32_list(out, program->out_shifts, program->n_out);
    alk_buf_puts(out, ",[");
    for (uint32_t j = 0; j < program->n_out; j++) {
        alk_buf_puts(out, j > 0 ? "," : "");
        alk_buf_puts(out, program->out_negs[j] ? "true" : "false");
    }
    alk_buf_puts(out, "],[");
    for (size_t i = 0; i < program->n_ops; i++) {
        if (i > 0) {
            alk_buf_putc(out, ',');
        }
        put_op(out, program, &program->ops[i]);
    }
    alk_buf_puts(out, "],");
    alk_buf_put_i64(out, program->carry_size);
    alk_buf_putc(out, ',');
    alk_buf_put_i64(out, program->adder_size);
    alk_buf_putc(out, ',');
    if (program->n_tables == 0) {
        alk_buf_puts(out, "null");
    } else {
        alk_buf_putc(out, '[');
        for (size_t t = 0; t < program->n_tables; t++) {
            if (t > 0) {
                alk_buf_putc(out, ',');
            }
            put_table(out, &program->tables[t]);
        }
        alk_buf_putc(out, ']');
    }
    alk_buf_puts(out, "],\"meta\":\"ALIRModel\",\"spec_version\":4}");
    return alk_buf_error(out);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s);
    size_t m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int alk_alir_write_file(const alk_program *program, const char *path, alk_diag *diag) {
    alk_buf text;
    alk_buf packed;
    alk_buf_init(&text);
    alk_buf_init(&packed);
    int rv = alk_alir_to_json(program, &text);
    if (rv != ALK_OK) {
        rv = alk_diag_set(diag, rv, "%s: out of memory while writing JSON", path);
        goto done;
    }
    if (ends_with(path, ".gz")) {
        rv = alk_gzip(text.data, text.len, &packed, diag);
        if (rv == ALK_OK) {
            rv = alk_write_file(path, packed.data, packed.len, diag);
        }
    } else {
        rv = alk_write_file(path, text.data, text.len, diag);
    }
done:
    alk_buf_fini(&text);
    alk_buf_fini(&packed);
    return rv;
}
