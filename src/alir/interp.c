/*
 * ALIR interpreter (see interp.h).
 *
 * Design: compilation turns each op into a `step` whose shifts are relative amounts computed
 * once from the operand formats; evaluation is one switch per op per sample over a buffer of
 * int64 slots (slot i = op i; no slot reuse, which keeps dumps and debugging simple and costs
 * 8 bytes per op). All arithmetic on values goes through uint64 so that overflow wraps instead of
 * being undefined, and every shift goes through shift_by(), which accepts any amount.
 */
#include "alir/interp.h"
#include "alir/kif.h"
#include "alir/validate.h"
#include "core/alloc.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

typedef struct sum_term {
    uint32_t slot;
    int32_t shift; /* left shift into the common format */
    bool negative;
} sum_term;

typedef struct step {
    int32_t opcode;
    uint32_t a, b, c;  /* operand slots */
    int32_t shift_a;   /* left shift of operand a (negative: right) */
    int32_t shift_b;   /* left shift of operand b */
    int32_t shift_out; /* right shift of the aligned result into the op's format */
    int32_t sub_op;    /* bit op code, or cond bit position for the mux */
    bool wrap_signed;  /* format of the wrap (ops that wrap) */
    uint64_t mask;     /* width mask of the wrap (or of the operand, for bit ops) */
    uint64_t sign;     /* sign bit of the wrap */
    int64_t constant;  /* constant, aligned constant of add-const, or lookup offset */
    double scale;      /* input scale of a read */
    uint32_t input;    /* input index of a read */
    const int32_t *table;
    int64_t table_len;
    size_t first_term; /* sum terms */
    uint32_t n_terms;
} step;

struct alk_interp {
    uint32_t n_in;
    uint32_t n_out;
    size_t n_steps;
    step *steps;
    sum_term *terms;
    int32_t *out_idxs;
    double *out_scales;
    bool *out_negs;
};

__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

/*
 * Adds align their operands in 128 bits: an operand shifted to the finer of the two formats can
 * need more than 64 bits while the result, shifted back into the op's format, fits (the adders of
 * a product by a non-dyadic constant, whose coefficients have 53 significant bits). Hardware
 * sizes such an adder as wide as it needs; the reference's int64 alignment overflows there
 * (undefined behaviour). x * 2^n, exact for n < 64; floor on the right.
 */
static inline i128 widen_shift(int64_t x, int32_t n) {
    if (n >= 0) {
        return n >= 128 ? 0 : (i128)((u128)(i128)x << n);
    }
    return n <= -64 ? (x < 0 ? -1 : 0) : (i128)(x >> -n);
}

/* floor(v * 2^-n) wrapped to 64 bits (n < 0: a left shift). */
static inline int64_t narrow_shift(i128 v, int32_t n) {
    if (n >= 0) {
        return (int64_t)(uint64_t)(u128)(n >= 128 ? (v < 0 ? -1 : 0) : v >> n);
    }
    return n <= -64 ? 0 : (int64_t)(uint64_t)((u128)v << -n);
}

/* x * 2^n for any n, with wrap-around on the left and floor on the right. */
static inline int64_t shift_by(int64_t x, int32_t n) {
    if (n >= 0) {
        return n >= 64 ? 0 : (int64_t)((uint64_t)x << n);
    }
    return n <= -64 ? (x < 0 ? -1 : 0) : x >> -n;
}

static inline uint64_t width_mask(int width) {
    return width >= 64 ? UINT64_MAX : (width <= 0 ? 0 : (UINT64_C(1) << width) - 1);
}

static inline uint64_t width_sign(int width) {
    return width <= 0 ? 0 : UINT64_C(1) << (width >= 64 ? 63 : width - 1);
}

/* Keeps the low bits of `x` selected by the step's mask, sign-extended when signed. */
static inline int64_t wrap(const step *s, int64_t x) {
    uint64_t u = (uint64_t)x & s->mask;
    if (s->wrap_signed) {
        u = (u ^ s->sign) - s->sign;
    }
    return (int64_t)u;
}

static void set_wrap(step *s, alk_kif kif) {
    int width = alk_kif_width(kif);
    s->wrap_signed = kif.k != 0;
    s->mask = width_mask(width);
    s->sign = width_sign(width);
}

static int max_i(int a, int b) {
    return a > b ? a : b;
}

/* Fills the step of op i; formats of all ops are in `kifs`. */
static void compile_op(const alk_program *program, size_t i, const alk_kif *kifs, step *s,
                       sum_term *terms, size_t *n_terms) {
    const alk_alir_op *op = &program->ops[i];
    const uint32_t *addr = alk_alir_op_addr(program, op);
    const int64_t *data = alk_alir_op_data(program, op);
    alk_kif out = kifs[i];
    *s = (step){.opcode = op->opcode};
    s->a = op->n_addr > 0 ? addr[0] : 0;
    s->b = op->n_addr > 1 ? addr[1] : 0;
    s->c = op->n_addr > 2 ? addr[2] : 0;
    switch (op->opcode) {
    case ALK_OP_READ:
        s->input = (uint32_t)data[0];
        s->scale = ldexp(1.0, program->inp_shifts[data[0]] + out.f);
        set_wrap(s, out);
        break;
    case ALK_OP_ADD:
    case ALK_OP_SUB: {
        int fa = kifs[s->a].f;
        int fb = kifs[s->b].f;
        int shift = (int)data[0];
        int common = max_i(fa, fb - shift);
        s->shift_a = common - fa;
        s->shift_b = common - fb + shift;
        s->shift_out = common - out.f;
        break;
    }
    case ALK_OP_RELU:
        s->shift_out = kifs[s->a].f - out.f;
        set_wrap(s, out);
        break;
    case ALK_OP_QUANTIZE:
        s->shift_out = kifs[s->a].f - (int)data[0] - out.f;
        set_wrap(s, out);
        break;
    case ALK_OP_ADD_CONST: {
        int fa = kifs[s->a].f;
        int const_shift = (int)data[1];
        int common = max_i(fa, const_shift);
        s->shift_a = common - fa;
        s->constant = shift_by(data[0], common - const_shift);
        s->shift_out = common - out.f;
        break;
    }
    case ALK_OP_CONST:
        s->constant = data[0];
        break;
    case ALK_OP_MUX:
        s->shift_a = out.f - kifs[s->a].f;
        s->shift_b = out.f - kifs[s->b].f + (int)data[0];
        s->sub_op = alk_kif_width(kifs[s->c]) - 1;
        set_wrap(s, out);
        break;
    case ALK_OP_LOOKUP: {
        alk_kif in = kifs[s->a];
        const alk_table *table = &program->tables[data[0]];
        int64_t sign_offset = in.k ? (int64_t)width_sign(alk_kif_width(in)) : 0;
        s->constant = sign_offset - alk_lookup_pad_left(program->ops[s->a].qint, in);
        s->table = table->values;
        s->table_len = (int64_t)table->len;
        break;
    }
    case ALK_OP_BIT_UNARY:
        s->sub_op = (int32_t)data[0];
        s->wrap_signed = out.k != 0;
        s->mask = width_mask(alk_kif_width(kifs[s->a]));
        break;
    case ALK_OP_BIT_BINARY: {
        int t = (int)data[0] + kifs[s->a].f - kifs[s->b].f;
        s->shift_a = t < 0 ? -t : 0;
        s->shift_b = t > 0 ? t : 0;
        s->sub_op = (int32_t)data[1];
        break;
    }
    case ALK_OP_SUM: {
        int common = INT32_MIN;
        for (uint32_t t = 0; t < op->n_addr; t++) {
            common = max_i(common, kifs[addr[t]].f - (int)data[2 * t + 1]);
        }
        s->first_term = *n_terms;
        s->n_terms = op->n_addr;
        for (uint32_t t = 0; t < op->n_addr; t++) {
            terms[(*n_terms)++] = (sum_term){
                .slot = addr[t],
                .shift = common - kifs[addr[t]].f + (int)data[2 * t + 1],
                .negative = data[2 * t] == 0,
            };
        }
        s->shift_out = common - out.f;
        break;
    }
    default: /* NEG and MUL need only their operands */
        break;
    }
}

int alk_interp_new(const alk_program *program, alk_interp **ret_interp, alk_diag *diag) {
    int rv = alk_program_validate(program, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    alk_interp *interp = alk_calloc(1, sizeof(*interp));
    alk_kif *kifs = alk_calloc(program->n_ops, sizeof(alk_kif));
    if (interp == NULL || kifs == NULL) {
        rv = ALK_ENOMEM;
        goto fail;
    }
    interp->n_in = program->n_in;
    interp->n_out = program->n_out;
    interp->n_steps = program->n_ops;
    interp->steps = alk_calloc(program->n_ops, sizeof(step));
    interp->terms = alk_calloc(program->addr_len, sizeof(sum_term));
    interp->out_idxs = alk_calloc(program->n_out, sizeof(int32_t));
    interp->out_scales = alk_calloc(program->n_out, sizeof(double));
    interp->out_negs = alk_calloc(program->n_out, sizeof(bool));
    if (interp->steps == NULL || interp->terms == NULL || interp->out_idxs == NULL ||
        interp->out_scales == NULL || interp->out_negs == NULL) {
        rv = ALK_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < program->n_ops; i++) {
        kifs[i] = alk_kif_of(program->ops[i].qint);
    }
    size_t n_terms = 0;
    for (size_t i = 0; i < program->n_ops; i++) {
        compile_op(program, i, kifs, &interp->steps[i], interp->terms, &n_terms);
    }
    for (uint32_t j = 0; j < program->n_out; j++) {
        int32_t idx = program->out_idxs[j];
        interp->out_idxs[j] = idx;
        interp->out_negs[j] = program->out_negs[j];
        interp->out_scales[j] = idx < 0 ? 0.0 : ldexp(1.0, program->out_shifts[j] - kifs[idx].f);
    }
    alk_free(kifs);
    *ret_interp = interp;
    return ALK_OK;
fail:
    alk_free(kifs);
    alk_interp_free(interp);
    return alk_diag_set(diag, rv, "out of memory while compiling the program");
}

void alk_interp_free(alk_interp *interp) {
    if (interp == NULL) {
        return;
    }
    alk_free(interp->steps);
    alk_free(interp->terms);
    alk_free(interp->out_idxs);
    alk_free(interp->out_scales);
    alk_free(interp->out_negs);
    alk_free(interp);
}

size_t alk_interp_n_ops(const alk_interp *interp) {
    return interp->n_steps;
}

/* floor(v) reduced modulo 2^64 into int64, exact for every finite double. */
static int64_t floor_to_i64_wrapping(double v) {
    double fl = floor(v);
    if (fl >= -0x1p63 && fl < 0x1p63) {
        return (int64_t)fl;
    }
    double r = fmod(fl, 0x1p64); /* exact; |r| < 2^64 and r is an integer */
    if (r < 0) {
        r += 0x1p64;
    }
    return (int64_t)(uint64_t)r;
}

static int64_t bit_binary(int32_t op, int64_t a, int64_t b) {
    switch (op) {
    case ALK_BIT_AND:
        return a & b;
    case ALK_BIT_OR:
        return a | b;
    default:
        return a ^ b;
    }
}

static int64_t bit_unary(const step *s, int64_t x) {
    switch (s->sub_op) {
    case ALK_BIT_NOT:
        return s->wrap_signed ? ~x : (int64_t)(~(uint64_t)x & s->mask);
    case ALK_BIT_ANY:
        return x != 0;
    default:
        return ((uint64_t)x & s->mask) == s->mask;
    }
}

static int64_t sum_terms(const alk_interp *interp, const step *s, const int64_t *slot) {
    u128 acc = 0;
    const sum_term *terms = interp->terms + s->first_term;
    for (uint32_t t = 0; t < s->n_terms; t++) {
        u128 v = (u128)widen_shift(slot[terms[t].slot], terms[t].shift);
        acc = terms[t].negative ? acc - v : acc + v;
    }
    return narrow_shift((i128)acc, s->shift_out);
}

/* Runs every step of one sample; returns the index of a failing step or SIZE_MAX. */
static size_t run_sample(const alk_interp *interp, const double *in, int64_t *slot,
                         int64_t *ret_bad_index) {
    const step *steps = interp->steps;
    for (size_t i = 0; i < interp->n_steps; i++) {
        const step *s = &steps[i];
        int64_t x;
        switch (s->opcode) {
        case ALK_OP_NEG:
            x = (int64_t)(0 - (uint64_t)slot[s->a]);
            break;
        case ALK_OP_READ: {
            double v = in[s->input] * s->scale;
            if (!isfinite(v)) {
                *ret_bad_index = s->input;
                return i;
            }
            x = wrap(s, floor_to_i64_wrapping(v));
            break;
        }
        case ALK_OP_ADD:
        case ALK_OP_SUB: {
            u128 a = (u128)widen_shift(slot[s->a], s->shift_a);
            u128 b = (u128)widen_shift(slot[s->b], s->shift_b);
            x = narrow_shift((i128)(s->opcode == ALK_OP_ADD ? a + b : a - b), s->shift_out);
            break;
        }
        case ALK_OP_RELU:
            x = wrap(s, shift_by(slot[s->a] < 0 ? 0 : slot[s->a], -s->shift_out));
            break;
        case ALK_OP_QUANTIZE:
            x = wrap(s, shift_by(slot[s->a], -s->shift_out));
            break;
        case ALK_OP_ADD_CONST: {
            uint64_t a = (uint64_t)shift_by(slot[s->a], s->shift_a);
            x = shift_by((int64_t)(a + (uint64_t)s->constant), -s->shift_out);
            break;
        }
        case ALK_OP_CONST:
            x = s->constant;
            break;
        case ALK_OP_MUX: {
            bool cond = s->sub_op >= 0 && ((uint64_t)slot[s->c] >> s->sub_op) & 1;
            x = wrap(s, cond ? shift_by(slot[s->a], s->shift_a) : shift_by(slot[s->b], s->shift_b));
            break;
        }
        case ALK_OP_MUL:
            x = (int64_t)((uint64_t)slot[s->a] * (uint64_t)slot[s->b]);
            break;
        case ALK_OP_LOOKUP: {
            int64_t index = (int64_t)((uint64_t)slot[s->a] + (uint64_t)s->constant);
            if (index < 0 || index >= s->table_len) {
                *ret_bad_index = index;
                return i;
            }
            x = s->table[index];
            break;
        }
        case ALK_OP_BIT_UNARY:
            x = bit_unary(s, slot[s->a]);
            break;
        case ALK_OP_BIT_BINARY:
            x = bit_binary(s->sub_op, shift_by(slot[s->a], s->shift_a),
                           shift_by(slot[s->b], s->shift_b));
            break;
        default: /* ALK_OP_SUM; validation admits no other opcode */
            x = sum_terms(interp, s, slot);
            break;
        }
        slot[i] = x;
    }
    return SIZE_MAX;
}

int alk_interp_run(const alk_interp *interp, const double *inputs, size_t n_samples,
                   double *outputs, alk_diag *diag) {
    int64_t *slot = alk_calloc(interp->n_steps == 0 ? 1 : interp->n_steps, sizeof(int64_t));
    if (slot == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory for %zu interpreter slots",
                            interp->n_steps);
    }
    int rv = ALK_OK;
    for (size_t n = 0; n < n_samples; n++) {
        const double *in = inputs + n * interp->n_in;
        double *out = outputs + n * interp->n_out;
        int64_t bad = 0;
        size_t failed = run_sample(interp, in, slot, &bad);
        if (failed != SIZE_MAX) {
            if (interp->steps[failed].opcode == ALK_OP_READ) {
                rv = alk_diag_set(diag, ALK_EINVAL, "sample %zu: input %" PRId64 " is not finite",
                                  n, bad);
            } else {
                rv = alk_diag_set(diag, ALK_EINVAL,
                                  "sample %zu: op %zu (lookup) index %" PRId64
                                  " is outside its table of %" PRId64 " entries",
                                  n, failed, bad, interp->steps[failed].table_len);
            }
            break;
        }
        for (uint32_t j = 0; j < interp->n_out; j++) {
            int32_t idx = interp->out_idxs[j];
            if (idx < 0) {
                out[j] = 0.0;
                continue;
            }
            int64_t x = slot[idx];
            if (interp->out_negs[j]) {
                x = (int64_t)(0 - (uint64_t)x);
            }
            out[j] = (double)x * interp->out_scales[j];
        }
    }
    alk_free(slot);
    return rv;
}
