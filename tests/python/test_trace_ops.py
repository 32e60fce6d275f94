#!/usr/bin/python3
"""Issue 5, "Done when" 3: every operation group of the reference's operation tests, traced by
the C tracer (trace_ops_gen) and run by `alkaidc run`, equals a numpy evaluation of the same
function, as the reference's tests/test_ops.py checks it:

    expected = quantize(fn(quantize(x, *inp_kifs)), 1, 12, 12)

on 2,000 samples of randn * 32, where inp_kifs are the input formats K, I, F below (the same
list as trace_ops_gen.c's FVArray.from_kif): the inputs are quantized from this test's own
formats, never from the program under test, and every read op of the program must carry the
interval from_kif gives for its input (spec trace-alir.md 1.5). A case whose numpy result is
the same for every sample compares constants and fails. The numpy functions below are written
from the specification
(trace-alir.md sections 1-2) and numpy's own semantics; the float quantizer is the one of spec 2.10
(quantizers' get_fixed_quantizer_np). Where the reference defines a function differently from
plain numpy (np.mean over a count that is not a power of two multiplies by the double
reciprocal, quirk 19), the numpy side says so.

Usage: /usr/bin/python3 test_trace_ops.py TRACE_OPS_GEN ALKAIDC [--samples N] [NAME...]
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

K = [1, 0, 1, 1, 0, 1, 0, 1]
I = [3, 2, -1, 4, 0, 2, 5, 1]
F = [2, 3, 4, 0, 5, 1, -1, 3]


def weights():
    w = np.empty((8, 8))
    for r in range(8):
        for c in range(8):
            w[r, c] = (((r * 8 + c) * 37 + 11) % 256 - 128) / 32.0
    return w


W = weights()


def quantize(x, k, i, f, overflow="WRAP", rnd="TRN"):
    """quantizers.get_fixed_quantizer_np (spec 2.10), element-wise with broadcasting."""
    x = np.asarray(x, dtype=np.float64)
    k, i, f = (np.asarray(v, dtype=np.int64) for v in (k, i, f))
    ii = np.maximum(i, -f)
    step = 2.0 ** -f
    if overflow in ("SAT", "SAT_SYM"):
        hi = 2.0**ii - step
        lo = -(2.0**ii) * k if overflow == "SAT" else -hi * k
        x = np.clip(x, lo, hi)
    sf = 2.0**f
    if rnd == "TRN":
        x = np.floor(x * sf) / sf
    elif rnd == "RND":
        x = np.floor(x * sf + 0.5) / sf
    else:
        x = np.round(x * sf) / sf
    if overflow == "WRAP":
        half = k * 2.0 ** (ii + k - 1)
        x = np.mod(x + half, 2.0 ** (ii + k)) - half
    return np.where(k + i + f <= 0, 0.0, x)


def relu(x, i=None, f=None, rnd="TRN"):
    x = np.maximum(x, 0)
    if f is not None:
        if rnd == "RND":
            x = x + 2.0 ** (-f - 1)
        x = np.floor(x * 2.0**f) / 2.0**f
    if i is not None:
        x = np.mod(x, 2.0**i)
    return x


def bitop(a, b, op):
    sf = 2**16
    p, q = (a * sf).astype(np.int64), (b * sf).astype(np.int64)
    return {"and": p & q, "or": p | q, "xor": p ^ q}[op] / sf


def sort_tied(x):
    s = np.sort(x, axis=-1)
    return np.any(np.diff(s, axis=-1) == 0, axis=-1)


FUNCS = {}
for kif in [(1, 3, 3), (0, 4, -2), (1, 0, 0), (0, 4, 2), (1, 2, -1)]:
    for ov in ["WRAP", "SAT", "SAT_SYM"]:
        for rd in ["TRN", "RND", "RND_CONV"]:
            name = "quantize_%d_%d_%d_%s_%s" % (kif + (ov, rd))
            FUNCS[name] = (lambda kif, ov, rd: lambda x: quantize(x, *kif, ov, rd))(kif, ov, rd)

for n, (s0, s1) in enumerate([(0.5, 0.5), (1.0, -2.0), (-3.5, 0.125), (-2.0, -2.0)]):
    FUNCS["shift_add%d" % n] = (lambda s0, s1: lambda x: x[..., :4] * s0 + x[..., 4:] * s1)(s0, s1)

FUNCS.update({
    "lut_sin": lambda x: quantize(np.sin(x), 1, 3, 3, "SAT", "RND_CONV"),
    "lut_tanh": lambda x: quantize(np.tanh(x), 1, 3, 3, "SAT", "RND_CONV"),
    "lut_tanh_sin": lambda x: quantize(np.tanh(np.sin(x)), 1, 3, 3, "SAT", "RND_CONV"),
    "relu_mix": lambda x: relu(x * 2 * (np.arange(8) % 2) - 1 + np.arange(-8, 8, 2)),
    "relu_i1": lambda x: relu(x, i=1),
    "relu_f1_rnd": lambda x: relu(x, f=1, rnd="RND"),
    "abs": np.abs,
    "max": lambda x: np.max(x, axis=-1),
    "min": lambda x: np.min(x, axis=-1),
    "mux": lambda x: np.where(x[..., :1] < x[..., 1:], x[..., :7], x[..., 1:]),
    "cmp": lambda x: x[..., :4] >= x[..., 4:],
    "mux2": lambda x: np.where(x[..., :4] <= x[..., 4:], x[..., 4:] * -2, x[..., :4] * 7),
    "mul": lambda x: x[..., :4] * x[..., 4:],
    "square": np.square,
    "power3": lambda x: x[..., :3] ** 3,
    "einsum0": lambda x: np.einsum("...i,...i->...i", x[..., :4], x[..., 4:]),
    "einsum1": lambda x: np.einsum("nij,njk->nik", x.reshape(-1, 4, 2), x.reshape(-1, 2, 4)),
    "cmvm0": lambda x: np.einsum("...i,ij->...j", x, W),
    "cmvm1": lambda x: np.einsum("...i,ij->...", x, W),
    "cmvm2": lambda x: x @ W,
    "cmvm3": lambda x: np.einsum("ij,...j->...i", W, x),
    "dot0": lambda x: x @ W,
    "mmm": lambda x: x.reshape(-1, 2, 4) @ x.reshape(-1, 4, 2),
    "maximum_w": lambda x: np.maximum(x[..., None, :], W),
    "minimum_w": lambda x: np.minimum(x[..., None, :], W),
    "multi_cadd": lambda x: x * 2.0 ** np.arange(-8, 8, 2) + 2 + 3.75,
    "prod": lambda x: np.prod(x[..., :3], axis=-1, keepdims=True),
    "mean": lambda x: np.mean(x, axis=-1, keepdims=True),
    "sum": lambda x: np.sum(x, axis=-1, keepdims=True),
    "clip0": lambda x: np.clip(x, -1.0, 2.0),
    "clip1": lambda x: np.minimum(np.maximum(x[..., :4], x[..., 4:]), 1.5),
    "where1": lambda x: np.where(x - 3 == 0, x * 2, x / 2),
    "where2": lambda x: np.where(x != 0, x, -1),
    "where3": lambda x: np.where(x >= 1.375, -1, x),
    "any": lambda x: np.any(x, axis=-1, keepdims=True),
    "all": lambda x: np.all(x, axis=-1, keepdims=True),
    "floor": np.floor,
    "ceil": np.ceil,
    "round": np.round,
    "sign": np.sign,
    "signbit": np.signbit,
    "const_propagation": lambda x: x * 3 - 2 + 1.5 - 0.5 * x - 0.25 * x + 0.5,
    "argmax": lambda x: np.argmax(x, axis=-1),
    "argmin4": lambda x: np.argmin(x[..., :4], axis=-1),
    "count_nonzero": lambda x: np.count_nonzero(x, axis=-1),
    "tanh_floor": lambda x: np.floor(np.tanh(x) * 32),
    "tanh_rnd": lambda x: np.round(np.tanh(x) * 32),
    "exp_floor": lambda x: np.floor(np.exp(x * 0.03125)),
    "sort8": lambda x: np.sort(x, axis=-1),
    "sort7": lambda x: np.sort(x[..., :7], axis=-1),
    "bitonic8": lambda x: np.sort(x, axis=-1),
    "bitonic5": lambda x: np.sort(x[..., :5], axis=-1),
    "sort_axis0": lambda x: np.sort(x.reshape(-1, 4, 2), axis=-2)[:, :3, :],
    "views": lambda x: np.concatenate(
        [(x[:, ::-3][:, :, None] - x[:, -1:-6:-2][:, None, :]).reshape(len(x), -1),
         np.swapaxes(x.reshape(-1, 2, 4), 1, 2).reshape(len(x), -1)], axis=1),
    "stack_repeat": lambda x: np.repeat(np.stack([x[:, :4], -x[:, 4:]], axis=2), 2, axis=1),
    "sort_by": lambda x: np.take_along_axis(x[:, :4], np.argsort(x[:, 4:], axis=-1), axis=-1),
    "histogram": lambda x: np.stack([np.histogram(r, np.array([-4, -1, 0, 1.5, 6.0]))[0]
                                     for r in x]),
    "bitand": lambda x: bitop(x[..., :4], x[..., 4:], "and"),
    "bitxor": lambda x: bitop(x[..., :4], x[..., 4:], "xor"),
    "bitor": lambda x: bitop(x[..., :4], x[..., 4:], "or"),
})

# ---- Issue 11: pending tables, quantize with broadcast formats, pad/take/tile, image patches ----
# Written from trace-alir.md 2.10-2.12 and frontends 2.2-2.3: the table functions are the float64
# formulas of the activation maps, composed as numpy composes them on the float values; a table
# function followed by a quantizer is quantize(fn(x)).

SCALE8 = np.array([0.37, -1.3, 2.5, 0.1, -0.75, 3.3, 1.0, -2.2])
OFFSET8 = np.array([0.5, -0.25, 0.1, 1.7, -3.0, 0.33, 0.0, 2.0])
erf = np.vectorize(math.erf)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def hard_sigmoid(x):
    return np.clip(x + 3.0, 0.0, 6.0) / 6.0


def hardsigmoid_torch(x):
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


ACTIVATIONS = {
    "sigmoid": sigmoid,
    "silu": lambda x: x * sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "elu_alpha": lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1)),
    "selu": lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1)),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "hard_sigmoid": hard_sigmoid,
    "hard_silu": lambda x: x * hard_sigmoid(x),
    "hardsigmoid": hardsigmoid_torch,
    "hardswish": lambda x: x * hardsigmoid_torch(x),
    "log_sigmoid": lambda x: -np.log1p(np.exp(-x)),
    "rsqrt": lambda x: 1 / np.sqrt(x),
    "exponential": np.exp,
    "reciprocal": lambda x: np.divide(1, x, where=x != 0, out=np.full_like(x, np.inf)),
}


def activation_case(name):
    fn = ACTIVATIONS[name]
    if name == "rsqrt":
        return lambda x: quantize(fn(np.abs(x) * 0.0625 + 0.125), 1, 7, 8, "SAT", "RND_CONV")
    return lambda x: quantize(fn(x * 0.0625), 1, 7, 8, "SAT", "RND_CONV")


def pad_wrap(a, pads):
    """np.pad(a, pads, 'wrap') as numpy >= 1.25 computes it: periodic on every axis (Debian's
    numpy 1.24 repeats partial periods once a pad exceeds the axis)."""
    for axis, (before, after) in enumerate(pads):
        n = a.shape[axis]
        a = np.take(a, (np.arange(-before, n + after)) % n, axis=axis)
    return a


def pad(a, pads, mode, value=1.5):
    """np.pad on the trailing axes of a batch of samples."""
    pads = [(0, 0)] * (a.ndim - len(pads)) + list(pads)
    if mode == "wrap":
        return pad_wrap(a, pads)
    if mode == "constant":
        return np.pad(a, pads, mode, constant_values=value)
    return np.pad(a, pads, mode)


def patches(img, size, strides, dilation, pads, value, transposed=False, output_padding=None):
    """extract_patches(_transposed) from frontends 2.2: img (B, *S, C) -> (B, *out, K_vol * C),
    output o and tap t read o*s + t*d - before (forward) or (o + before - t*d) / s when exact."""
    spatial, ch = img.shape[1:-1], img.shape[-1]
    rank = len(spatial)
    output_padding = output_padding or [0] * rank
    out = []
    for d in range(rank):
        n, k, s, dl, (b, a) = spatial[d], size[d], strides[d], dilation[d], pads[d]
        if transposed:
            out.append((n - 1) * s - b - a + dl * (k - 1) + output_padding[d] + 1)
        else:
            out.append((n + b + a - (k - 1) * dl - 1) // s + 1)
    res = np.full((img.shape[0],) + tuple(out) + (int(np.prod(size)) * ch,), float(value))
    for o in np.ndindex(*out):
        for tap_index, tap in enumerate(np.ndindex(*size)):
            pos = []
            for d in range(rank):
                if transposed:
                    num = o[d] + pads[d][0] - tap[d] * dilation[d]
                    p = num // strides[d] if num % strides[d] == 0 else -1
                else:
                    p = o[d] * strides[d] + tap[d] * dilation[d] - pads[d][0]
                pos.append(p)
            if all(0 <= p < n for p, n in zip(pos, spatial)):
                res[(slice(None),) + o + (slice(tap_index * ch, (tap_index + 1) * ch),)] = \
                    img[(slice(None),) + tuple(pos) + (slice(None),)]
    return res


def same_pads(spatial, size, strides, dilation):
    """Keras 'same': out = ceil(n / s), total = max(0, (out - 1) s + (k - 1) d + 1 - n)."""
    pads = []
    for n, k, s, d in zip(spatial, size, strides, dilation):
        total = max(0, (-(-n // s) - 1) * s + (k - 1) * d + 1 - n)
        pads.append((total // 2, total - total // 2))
    return pads


def per_sample(fn):
    return lambda x: np.stack([fn(row) for row in x])


def kif_case(ov, rd):
    k, i, f = np.array([[1, 0, 1, 1]]), np.array([[2], [-2]]), np.array([[1, 3, 2, 4]])
    return lambda x: quantize(x.reshape(-1, 2, 4), k, i, f, ov, rd)


def stored_case(x):
    v = np.swapaxes(ACTIVATIONS["softsign"](x).reshape(-1, 4, 2), 1, 2)
    return np.tile(pad(v, [(1, 0), (0, 2)], "constant", 0.75), (1, 1, 2)) * 3


FUNCS.update({
    "pend_round_tanh16": lambda x: np.round(np.tanh(x) * 16),
    "pend_sigmoid3m1": lambda x: quantize(sigmoid(x) * 3 - 1, 1, 2, 6, "WRAP", "RND"),
    "pend_bn": lambda x: quantize(np.tanh(x) * SCALE8 + OFFSET8, 1, 4, 6, "SAT", "RND_CONV"),
    "pend_bn2d": lambda x: OFFSET8[:4] * sigmoid(x.reshape(-1, 2, 4)) - np.array([[0.25], [-1.5]]),
    "pend_abs": lambda x: quantize(np.abs(np.sin(x) - 0.25), 0, 1, 7),
    "pend_relu": lambda x: np.maximum(np.tanh(x * 0.125) - 0.3, 0),
    "pend_clip": lambda x: quantize(np.clip(np.tanh(x * 0.25) * 2, -0.5, OFFSET8), 1, 1, 6,
                                    "SAT_SYM", "RND"),
    "pend_maxmin": lambda x: quantize(np.minimum(0.75, np.maximum(SCALE8 * 0.25, sigmoid(x))), 0,
                                      0, 8, "WRAP", "RND_CONV"),
    "pend_floor": lambda x: np.floor(sigmoid(x) * 10),
    "pend_ceil": lambda x: np.ceil(np.tanh(x) * 8 + 0.5),
    "pend_neg_sub": lambda x: quantize(2 - (-np.exp(x * 0.0625)) / 4, 1, 4, 8, "WRAP", "RND"),
    "pend_pow": lambda x: quantize((np.abs(x) * 0.25) ** 1.5, 0, 6, 4, "SAT", "RND"),
    "pend_pow3": lambda x: quantize(np.tanh(x) ** 3, 1, 0, 10),
    "pend_square": lambda x: quantize(np.square(np.sin(x)), 0, 0, 10, "WRAP", "RND_CONV"),
    "pend_rdiv": lambda x: quantize(3 / (np.abs(x) + 1), 0, 2, 8, "WRAP", "RND_CONV"),
    "pend_divide_arr": lambda x: SCALE8 / (np.abs(x) + 0.5),
    "pend_div": lambda x: quantize(np.tanh(x) / 3, 1, 1, 10, "WRAP", "RND_CONV"),
    "pend_div_ceil": lambda x: np.concatenate([np.ceil(x / 0.35), np.floor(x / 0.35)], axis=1),
    "pend_bn_shared": lambda x: np.tanh(x[:, :1]) * SCALE8 + OFFSET8,
    "pend_chain": lambda x: quantize(np.tanh(np.sin(x) * 2), 1, 1, 8, "SAT", "TRN"),
    "pend_negfactor": lambda x: quantize(sigmoid(-x * 0.5), 0, 0, 9, "WRAP", "RND"),
    "pend_kif": lambda x: quantize(np.tanh(x.reshape(-1, 2, 4) * 0.25) * 3, [[1, 0, 1, 1]],
                                   [[2], [-2]], [[1, 3, 2, 4]], "SAT", "RND"),
    "pend_stored": stored_case,
    "pend_patches": lambda x: patches(ACTIVATIONS["gelu"](x).reshape(-1, 8, 1), [3], [2], [1],
                                      same_pads([8], [3], [2], [1]), -0.5),
    "pad_view": lambda x: np.concatenate(
        [pad(x[:, ::-2], [(4, 3)], "reflect"),
         pad(np.swapaxes(x.reshape(-1, 2, 4), 1, 2), [(0, 1), (1, 0)], "constant",
             0.1).reshape(len(x), -1)], axis=1),
    "pad_singleton": lambda x: np.concatenate(
        [pad(x[:, :1], [(2, 3)], "reflect"), pad(x[:, 1:2], [(3, 1)], "symmetric")], axis=1),
    "pad_reflect_rounds": lambda x: np.concatenate(
        [pad(x[:, :3], [(1, 9)], "reflect"), pad(x[:, :3], [(9, 1)], "reflect")], axis=1),
    "pad_symmetric_rounds": lambda x: np.concatenate(
        [pad(x[:, :2], [(1, 9)], "symmetric"), pad(x[:, :2], [(9, 1)], "symmetric")], axis=1),
    "take0": lambda x: np.take(x, [7, -1, 0, 3, -8, 2, 2], axis=-1),
    "take1": lambda x: np.take(x.reshape(-1, 2, 4), [-1, 0, -4, 2, 3], axis=-1),
    "tile0": per_sample(lambda r: np.tile(r.reshape(2, 4), (2, 1, 3))),
    "tile1": per_sample(lambda r: np.tile(r.reshape(2, 4).T, 2)),
    "p1_same": lambda x: patches(x.reshape(-1, 8, 1), [3], [2], [1],
                                 same_pads([8], [3], [2], [1]), -1.25),
    "p1_dilated": lambda x: patches(x.reshape(-1, 4, 1), [2], [1], [2], [(0, 0)], 0),
    "p1_explicit": lambda x: patches(x.reshape(-1, 4, 2), [3], [2], [1], [(2, 1)], 0.5),
    "p2_same": lambda x: patches(x.reshape(-1, 4, 2, 1), [3, 2], [2, 1], [1, 1],
                                 same_pads([4, 2], [3, 2], [2, 1], [1, 1]), 0),
    "p2_dilated": lambda x: patches(x.reshape(-1, 2, 2, 2), [2, 2], [1, 1], [2, 1],
                                    [(1, 1), (0, 1)], -2),
    "p3_same": lambda x: patches(x.reshape(-1, 2, 2, 2, 1), [2, 2, 2], [1, 2, 1], [1, 1, 1],
                                 same_pads([2, 2, 2], [2, 2, 2], [1, 2, 1], [1, 1, 1]), 0),
    "pt1": lambda x: patches(x.reshape(-1, 4, 2), [3], [2], [1], [(1, 1)], 0, True, [1]),
    "pt2": lambda x: patches(x.reshape(-1, 2, 2, 2), [3, 2], [2, 2], [1, 2], [(0, 1), (1, 0)],
                             0.25, True, [1, 0]),
    "pt3": lambda x: patches(x.reshape(-1, 2, 2, 2, 1), [2, 2, 2], [2, 2, 2], [1, 1, 1],
                             [(0, 0)] * 3, 0, True),
})
for _name in ACTIVATIONS:
    FUNCS["act_" + _name] = activation_case(_name)
for _ov in ["WRAP", "SAT", "SAT_SYM"]:
    for _rd in ["TRN", "RND", "RND_CONV"]:
        FUNCS["kif_%s_%s" % (_ov, _rd)] = kif_case(_ov, _rd)
for _mode in ["constant", "edge", "reflect", "symmetric", "wrap"]:
    FUNCS["pad_" + _mode] = (lambda m: lambda x: pad(x.reshape(-1, 2, 4), [(3, 5), (6, 2)], m))(
        _mode)
    FUNCS["pad_%s_small" % _mode] = (
        lambda m: lambda x: pad(x.reshape(-1, 2, 4), [(1, 1), (2, 3)], m))(_mode)

# Samples whose result depends on how ties are broken (an unstable sort of keys).
TIE_MASKS = {"sort_by": lambda xq: sort_tied(xq[:, 4:])}


def from_kif_interval(k, i, f):
    """FVArray.from_kif's interval of one input (spec 1.5): (-k 2^i, 2^i - 2^-f, 2^-f)."""
    return [-k * 2.0**i, 2.0**i - 2.0**-f, 2.0**-f]


def check_input_intervals(model):
    """Problems with the read ops: each must read an input with its from_kif interval."""
    problems = []
    for n, op in enumerate(model["model"][5]):
        if op[1] == -1:
            d = op[2][0]
            want = from_kif_interval(K[d], I[d], F[d])
            if [float(v) for v in op[3]] != want:
                problems.append("read op %d of input %d has interval %s, from_kif(%d, %d, %d) "
                                "is %s" % (n, d, op[3], K[d], I[d], F[d], want))
    return problems


def grid_rows():
    """Rows that walk every input through its whole grid (the from_kif formats K, I, F), so
    every table entry is read at least once."""
    k, i, f = (np.array(v) for v in (K, I, F))
    low, step = -k * 2.0**i, 2.0**-f
    n = np.round((2.0**i - step - low) / step).astype(int) + 1
    r = np.arange(int(n.max()))[:, None]
    return low + (r % n) * step


def bits(v):
    return struct.pack("<d", float(v))


def check(gen, alkaidc, name, x, tmp):
    model = os.path.join(tmp, name + ".json")
    subprocess.run([gen, name, model], check=True)
    with open(model) as fh:
        problems = check_input_intervals(json.load(fh))
    if problems:
        print("FAIL %-26s %s" % (name, "; ".join(problems)))
        return 1
    xq = quantize(x, np.array(K), np.array(I), np.array(F))
    want = quantize(np.asarray(FUNCS[name](xq), dtype=np.float64).reshape(len(x), -1), 1, 12, 12)
    if np.all(want == want[:1]):
        print("FAIL %-26s numpy gives the same result for every sample: it tests nothing" % name)
        return 1
    inp = os.path.join(tmp, "in.txt")
    with open(inp, "w") as fh:
        for row in x:
            fh.write(" ".join(repr(float(v)) for v in row) + "\n")
    out = subprocess.run([alkaidc, "run", model, "--input", inp], capture_output=True, text=True,
                         check=True)
    got = np.array([[float(v) for v in line.split()] for line in out.stdout.splitlines()])
    if got.shape != want.shape:
        print("FAIL %-26s shape %s, numpy %s" % (name, got.shape, want.shape))
        return 1
    keep = ~TIE_MASKS[name](xq) if name in TIE_MASKS else np.ones(len(x), bool)
    bad = [(s, j) for s in range(len(x)) if keep[s] for j in range(want.shape[1])
           if bits(got[s, j]) != bits(want[s, j])]
    if bad:
        s, j = bad[0]
        print("FAIL %-26s %d mismatches, e.g. sample %d output %d: alkaidc %r numpy %r (x=%s)" %
              (name, len(bad), s, j, got[s, j], want[s, j], list(xq[s])))
        return 1
    print("ok   %-26s %d samples x %d outputs" % (name, int(keep.sum()), want.shape[1]))
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("gen")
    parser.add_argument("alkaidc")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("names", nargs="*")
    args = parser.parse_intermixed_args()  # NAME... may follow --samples
    listed = subprocess.run([args.gen, "--list"], capture_output=True, text=True,
                            check=True).stdout.split()
    names = args.names or listed
    missing = [n for n in listed if n not in FUNCS]
    if missing:
        print("FAIL: no numpy oracle for", missing)
        return 1
    rng = np.random.default_rng(5)
    x = rng.standard_normal((args.samples, 8)) * 32
    x[::40] = rng.uniform(0, 1.0 / 32, size=(len(x[::40]), 8))  # inputs that all read as 0
    x = np.concatenate([grid_rows(), x])
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            status |= check(args.gen, args.alkaidc, name, x, tmp)
    return status


if __name__ == "__main__":
    sys.exit(main())
