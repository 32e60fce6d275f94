/* Test helper: payloads as JSON (payload_json.h). */
#include "payload_json.h"

#include "core/alloc.h"
#include "graph/tensor.h"

#include <math.h>
#include <stdio.h>

static void put_string(alk_buf *out, const char *s, size_t len) {
    alk_buf_putc(out, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            alk_buf_putc(out, '\\');
            alk_buf_putc(out, (char)c);
        } else if (c < 0x20) {
            alk_buf_printf(out, "\\u%04x", c);
        } else {
            alk_buf_putc(out, (char)c);
        }
    }
    alk_buf_putc(out, '"');
}

static void put_value(alk_buf *out, const alk_value *v) {
    switch (v->kind) {
    case ALK_VALUE_NIL:
        alk_buf_puts(out, "null");
        break;
    case ALK_VALUE_BOOL:
        alk_buf_puts(out, v->as.boolean ? "true" : "false");
        break;
    case ALK_VALUE_INT:
        alk_buf_put_i64(out, v->as.integer);
        break;
    case ALK_VALUE_FLOAT:
        alk_buf_printf(out, "%.17g", v->as.number);
        break;
    case ALK_VALUE_STR:
        put_string(out, v->as.str.bytes, v->as.str.len);
        break;
    case ALK_VALUE_BIN:
        alk_buf_puts(out, "{\"$hex\": \"");
        for (size_t i = 0; i < v->as.str.len; i++) {
            alk_buf_printf(out, "%02x", (unsigned char)v->as.str.bytes[i]);
        }
        alk_buf_puts(out, "\"}");
        break;
    case ALK_VALUE_ARRAY:
        alk_buf_putc(out, '[');
        for (size_t i = 0; i < v->as.array.len; i++) {
            alk_buf_puts(out, i > 0 ? ", " : "");
            put_value(out, v->as.array.items[i]);
        }
        alk_buf_putc(out, ']');
        break;
    case ALK_VALUE_MAP:
        alk_buf_putc(out, '{');
        for (size_t i = 0; i < v->as.map.len; i++) {
            alk_buf_puts(out, i > 0 ? ", " : "");
            put_value(out, v->as.map.pairs[i].key);
            alk_buf_puts(out, ": ");
            put_value(out, v->as.map.pairs[i].value);
        }
        alk_buf_putc(out, '}');
        break;
    }
}

/* The widened elements of one tensor as a JSON list of "%a" strings. */
static int put_f64(alk_buf *out, const alk_value *tensor_map, alk_diag *diag) {
    alk_tensor tensor;
    int rv = alk_tensor_from_value(tensor_map, NULL, &tensor, diag);
    size_t n = rv == ALK_OK ? alk_tensor_elements(&tensor) : 0;
    double *values = rv == ALK_OK ? alk_calloc(n + 1, sizeof(double)) : NULL;
    if (rv == ALK_OK && values == NULL) {
        rv = alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    if (rv == ALK_OK) {
        rv = alk_tensor_to_f64(&tensor, values, diag);
    }
    alk_buf_putc(out, '[');
    for (size_t i = 0; rv == ALK_OK && i < n; i++) {
        double x = values[i];
        alk_buf_puts(out, i > 0 ? ", " : "");
        if (isnan(x)) {
            alk_buf_puts(out, "\"nan\"");
        } else if (isinf(x)) {
            alk_buf_puts(out, x > 0 ? "\"inf\"" : "\"-inf\"");
        } else {
            alk_buf_printf(out, "\"%a\"", x);
        }
    }
    alk_buf_putc(out, ']');
    alk_free(values);
    return rv;
}

int payload_to_json(const alk_value *payload, alk_buf *out, alk_diag *diag) {
    alk_buf_puts(out, "{\"payload\": ");
    put_value(out, payload);
    alk_buf_puts(out, ",\n\"f64\": {");
    const alk_value *weights = alk_value_get(payload, "weights");
    int rv = ALK_OK;
    for (size_t i = 0; rv == ALK_OK && weights != NULL && weights->kind == ALK_VALUE_MAP &&
                       i < weights->as.map.len;
         i++) {
        alk_buf_puts(out, i > 0 ? ",\n" : "\n");
        put_value(out, weights->as.map.pairs[i].key);
        alk_buf_puts(out, ": ");
        rv = put_f64(out, weights->as.map.pairs[i].value, diag);
    }
    alk_buf_puts(out, "}}\n");
    return rv;
}
