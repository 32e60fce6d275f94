#!/usr/bin/python3
"""Issue 11, "Done when" 2: every layer kernel of src/nn against an independent oracle.

The cases are drawn here (shapes, windows, paddings, weights), traced by nn_gen (one ALIR program
per group of cases, to keep the processes few) and run by `alkaidc run` on random inputs on each
case's input grid. The expected values come from numpy code written from the specification
(shared/spec/frontends.md sections 2.2, 2.3, 3.1, 3.3 and Keras's own formulas where the spec says
the port follows Keras) or from torch's own forward pass in float64 for the torch semantics. The
float32 paths (batch-norm folding, HGQ2's weight quantizers) are computed with np.float32
arithmetic. Outputs are compared bit for bit.

Weights are dyadic (few bits) where an exact sum is wanted, so that float64 sums are exact; the
float32 paths use arbitrary float32 values, whose products with the inputs are still exact in
float64 and whose single rounding equals the one `alkaidc run` does when it prints a value.
Values are compared exactly (0.0 equals numpy's -0.0: fixed point has no negative zero).

Usage: /usr/bin/python3 test_nn.py NN_GEN ALKAIDC [--samples N] [--seed S] [GROUP...]
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_trace_ops import quantize  # noqa: E402

torch.set_default_dtype(torch.float64)


class Group:
    def __init__(self, name):
        self.name = name
        self.cases = []

    def add(self, name, op, x, oracle, **params):
        """x = (shape, k, i, f); oracle(x) maps inputs (N, *shape[1:]) to outputs (N, ...)."""
        shape, k, i, f = x
        spec = dict(name=name, op=op, x=dict(shape=list(shape), k=k, i=i, f=f))
        spec.update(params)
        self.cases.append((spec, oracle))


def arr(a):
    a = np.asarray(a, dtype=np.float64)
    return dict(shape=list(a.shape), data=[float(v) for v in a.ravel()])


def dyadic(rng, shape, bits=3, scale=4):
    """Random multiples of 2^-bits in [-scale, scale)."""
    return rng.integers(-scale * 2**bits, scale * 2**bits, size=shape) / 2.0**bits


def float32s(rng, shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


# ---- Window geometry written from the frameworks' rules ----------------------------------------


def same_pads(n, k, s, d):
    """Keras/TF 'same' for a forward window."""
    out = -(-n // s)
    total = max(0, (out - 1) * s + (k - 1) * d + 1 - n)
    return total // 2, total - total // 2


def resolve_pads(padding, spatial, kernel, strides, dilation):
    if padding == "valid":
        return [(0, 0)] * len(spatial)
    if padding == "same":
        return [same_pads(*a) for a in zip(spatial, kernel, strides, dilation)]
    if padding == "causal":
        return [((k - 1) * d, 0) for k, d in zip(kernel, dilation)]
    return [tuple(p) for p in padding]


def to_last(x):
    return np.moveaxis(x, 1, -1)


def to_first(x):
    return np.moveaxis(x, -1, 1)


def taps(x, pads, kernel, strides, dilation, pad_value=0.0):
    """Yields (tap, patch (N, *out, C)) for a channels-last x: the input at o*s + t*d - before."""
    rank = len(kernel)
    xp = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)], constant_values=pad_value)
    out = [(x.shape[1 + a] + pads[a][0] + pads[a][1] - (kernel[a] - 1) * dilation[a] - 1)
           // strides[a] + 1 for a in range(rank)]
    for tap in itertools.product(*[range(k) for k in kernel]):
        sl = [slice(None)]
        for a in range(rank):
            start = tap[a] * dilation[a]
            sl.append(slice(start, start + (out[a] - 1) * strides[a] + 1, strides[a]))
        sl.append(slice(None))
        yield tap, xp[tuple(sl)]


def keras_conv(x, w, b, strides, dilation, padding, groups=1, channels_first=False):
    """Keras ConvND: w (*K, Cin/g, Cout), output channels blocked by group."""
    x = to_last(x) if channels_first else x
    kernel = w.shape[:-2]
    pads = resolve_pads(padding, x.shape[1:-1], kernel, strides, dilation)
    cig, cout = w.shape[-2], w.shape[-1]
    cog = cout // groups
    y = 0
    for tap, patch in taps(x, pads, kernel, strides, dilation):
        parts = [patch[..., g * cig:(g + 1) * cig] @ w[tap][:, g * cog:(g + 1) * cog]
                 for g in range(groups)]
        y = y + np.concatenate(parts, axis=-1)
    y = y + (b if b is not None else 0)
    return to_first(y) if channels_first else y


def keras_depthwise(x, w, b, strides, dilation, padding):
    """Keras DepthwiseConv: w (*K, Cin, dm), output channel c*dm + m."""
    kernel = w.shape[:-2]
    pads = resolve_pads(padding, x.shape[1:-1], kernel, strides, dilation)
    y = 0
    for tap, patch in taps(x, pads, kernel, strides, dilation):
        y = y + (patch[..., :, None] * w[tap]).reshape(patch.shape[:-1] + (-1,))
    return y + b


def keras_conv_transpose(x, w, b, strides, dilation, padding, output_padding):
    """Keras ConvNDTranspose as its JAX back-end computes it: the input dilated by the stride,
    padded (left, right) by Keras's conversion rule, correlated with the flipped kernel.
    w (*K, Cout, Cin)."""
    rank = x.ndim - 2
    kernel = w.shape[:-2]
    pads = []
    for a in range(rank):
        k = (kernel[a] - 1) * dilation[a] + 1
        s = strides[a]
        op = None if output_padding is None else output_padding[a]
        if padding == "valid":
            op = max(k, s) - k if op is None else op
            pads.append((k - 1, k - 1 + op))
        else:
            total = s + k - 2 if op is None else k + k % 2 - 2 + op
            left = min(total // 2 + total % 2, k - 1)
            pads.append((left, total - left))
    # Dilate the input by the strides.
    shape = [x.shape[0]] + [(n - 1) * s + 1 for n, s in zip(x.shape[1:-1], strides)] + \
        [x.shape[-1]]
    xd = np.zeros(shape)
    xd[(slice(None),) + tuple(slice(None, None, s) for s in strides)] = x
    # Flip the kernel spatially; swap to (*K, Cin, Cout); a stride-1 correlation with the pads.
    wf = np.flip(w, axis=tuple(range(rank))).swapaxes(-1, -2)
    y = 0
    for tap, patch in taps(xd, pads, kernel, [1] * rank, dilation):
        y = y + patch @ wf[tap]
    return y + b


def keras_pool(x, kind, pool, strides, padding):
    """Keras pools: max with padding excluded, average over the in-range taps only."""
    pads = resolve_pads(padding, x.shape[1:-1], pool, strides, [1] * len(pool))
    if kind == "max":
        patches = [p for _, p in taps(x, pads, pool, strides, [1] * len(pool), -np.inf)]
        return np.max(np.stack(patches), axis=0)
    total = sum(p for _, p in taps(x, pads, pool, strides, [1] * len(pool)))
    count = sum(p for _, p in taps(np.ones_like(x), pads, pool, strides, [1] * len(pool)))
    return total * (1.0 / count)  # the reference multiplies by the float64 reciprocal


def torch_conv(rank):
    return {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[rank]


def torch_conv_transpose(rank):
    return {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[rank]


def t64(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def torch_avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """torch's average pool with its divisor applied as a float64 reciprocal (the reference's
    x * (1/c)): the sum and the divisor both come from torch's own avg_pool."""
    rank = x.ndim - 2
    if rank == 1:
        # avg_pool1d has no divisor_override: the 2-D pool over (N, C, 1, L).
        one = lambda v: (1,) + (tuple(v) if isinstance(v, (tuple, list)) else (v,))  # noqa: E731
        y = torch_avg_pool(x[:, :, None, :], one(kernel), one(stride),
                           (0,) + one(padding)[1:], ceil_mode, count_include_pad,
                           divisor_override)
        return y[:, :, 0, :]
    pool = {2: F.avg_pool2d, 3: F.avg_pool3d}[rank]
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
              count_include_pad=count_include_pad)
    total = pool(t64(x), divisor_override=1, **kw).numpy()
    if divisor_override:
        return total * (1.0 / divisor_override)
    ones = t64(np.ones(x.shape[:2] + x.shape[2:]))
    count = pool(ones, divisor_override=1, **kw).numpy()
    divisor = np.rint(count / pool(ones, **kw).numpy())
    return total * (1.0 / divisor)


def torch_max_pool(x, kernel, stride, padding, dilation, ceil_mode):
    rank = x.ndim - 2
    pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[rank]
    return pool(t64(x), kernel, stride, padding, dilation, ceil_mode).numpy()


def win(kernel, strides=None, dilation=None, padding="valid", output_padding=None, groups=1,
        channels_first=False, ceil_mode=False):
    rank = len(kernel)
    return dict(kernel=list(kernel), strides=list(strides or [1] * rank),
                dilation=list(dilation or [1] * rank), padding=padding,
                output_padding=None if output_padding is None else list(output_padding),
                groups=groups, channels_first=channels_first, ceil_mode=ceil_mode)


def torch_pads(padding, rank):
    """torch's int/tuple padding as explicit pairs for the window."""
    if isinstance(padding, str):
        return padding
    p = [padding] * rank if isinstance(padding, int) else list(padding)
    return [[v, v] for v in p]


# ---- Groups of cases -----------------------------------------------------------------------------


def conv_cases(rng):
    g = Group("conv")
    X = lambda shape: (shape, 1, 2, 2)  # noqa: E731
    # Keras ConvND: 1/2/3-D, strides, dilation, groups, every padding, both layouts.
    for rank, spatial, kernel, strides, dilation, padding, groups, cin, cout, cf in [
        (1, (9,), (3,), (2,), (1,), "same", 1, 2, 3, False),
        (1, (8,), (3,), (1,), (2,), "causal", 2, 4, 2, False),
        (1, (7,), (2,), (3,), (1,), "valid", 1, 1, 2, True),
        (2, (5, 6), (3, 2), (2, 1), (1, 2), "same", 1, 2, 2, False),
        (2, (6, 5), (3, 3), (1, 2), (2, 1), "valid", 2, 4, 4, False),
        (2, (4, 5), (2, 3), (2, 2), (1, 1), "same", 1, 3, 2, True),
        (2, (5, 5), (3, 3), (2, 2), (1, 1), [[2, 0], [1, 3]], 1, 2, 2, False),
        (3, (3, 4, 3), (2, 2, 2), (1, 2, 1), (1, 1, 2), "same", 1, 2, 2, False),
        (3, (4, 3, 3), (2, 1, 2), (2, 1, 1), (1, 1, 1), "valid", 2, 2, 2, True),
    ]:
        shape = (1, cin) + spatial if cf else (1,) + spatial + (cin,)
        w = dyadic(rng, kernel + (cin // groups, cout))
        b = dyadic(rng, (cout,))
        oracle = (lambda w, b, s, d, p, gr, cf: lambda x: keras_conv(x, w, b, s, d, p, gr, cf))(
            w, b, strides, dilation, padding, groups, cf)
        g.add("keras_conv%dd_%s_g%d%s" % (rank, padding if isinstance(padding, str) else "pairs",
                                         groups, "_cf" if cf else ""), "conv", X(shape), oracle,
              window=win(kernel, strides, dilation, padding, groups=groups, channels_first=cf),
              kernel=arr(w), bias=arr(b))
    # torch ConvNd: weight (Cout, Cin/g, *K), channels first, int/tuple/'same' padding.
    for rank, spatial, kernel, stride, dilation, padding, groups, cin, cout in [
        (1, (9,), (3,), 2, 1, 1, 1, 2, 3),
        (2, (6, 5), (3, 2), (1, 2), (2, 1), (2, 1), 2, 4, 2),
        (2, (5, 5), (3, 3), 1, 2, "same", 1, 2, 2),
        (3, (3, 4, 4), (2, 3, 2), 1, 1, (1, 0, 1), 2, 2, 4),
    ]:
        w = dyadic(rng, (cout, cin // groups) + kernel)
        b = dyadic(rng, (cout,))
        oracle = (lambda w, b, st, d, p, gr, r: lambda x: torch_conv(r)(
            t64(x), t64(w), t64(b), st, p, d, gr).numpy())(w, b, stride, dilation, padding,
                                                          groups, rank)
        st = [stride] * rank if isinstance(stride, int) else list(stride)
        dl = [dilation] * rank if isinstance(dilation, int) else list(dilation)
        g.add("torch_conv%dd_g%d" % (rank, groups), "conv", X((1, cin) + spatial), oracle,
              window=win(kernel, st, dl, torch_pads(padding, rank), groups=groups,
                         channels_first=True),
              kernel=arr(w), bias=arr(b), torch=True)
    # Keras DepthwiseConv1D/2D.
    for spatial, kernel, strides, dilation, padding, cin, dm in [
        ((8,), (3,), (1,), (2,), "same", 3, 2),
        ((5, 6), (2, 3), (2, 1), (1, 1), "valid", 2, 3),
        ((5, 5), (3, 3), (2, 2), (1, 1), "same", 2, 1),
    ]:
        w = dyadic(rng, kernel + (cin, dm))
        b = dyadic(rng, (cin * dm,))
        oracle = (lambda w, b, s, d, p: lambda x: keras_depthwise(x, w, b, s, d, p))(
            w, b, strides, dilation, padding)
        g.add("depthwise%dd_%s" % (len(kernel), padding), "depthwise",
              X((1,) + spatial + (cin,)), oracle,
              window=win(kernel, strides, dilation, padding), kernel=arr(w), bias=arr(b))
    # Dense, EinsumDense, Linear.
    w = dyadic(rng, (5, 3))
    b = dyadic(rng, (3,))
    g.add("dense", "dense", X((1, 2, 5)), lambda x: x @ w + b, kernel=arr(w), bias=arr(b))
    g.add("dense_no_bias", "dense", X((1, 5)), lambda x: x @ w, kernel=arr(w))
    we = dyadic(rng, (4, 2, 3))
    be = dyadic(rng, (2, 1))
    g.add("einsum_dense", "einsum_dense", X((1, 3, 4)),
          lambda x: np.einsum("abc,cde->abde", x, we) + be, equation="abc,cde->abde",
          kernel=arr(we), bias=arr(be))
    # Keras Dot (batch_dot): per sample, a tensordot over the two axes (batch excluded).
    for a_shape, b_shape, axes in [((1, 4, 3), (1, 4, 5), (1, 1)), ((1, 3, 2), (1, 2, 4), (2, 1)),
                                   ((1, 2, 3, 2), (1, 3, 2), (-2, 1))]:
        na, nb = int(np.prod(a_shape)), int(np.prod(b_shape))

        def oracle(x, a_shape=a_shape, b_shape=b_shape, axes=axes, na=na):
            a = x[:, :na].reshape((len(x),) + a_shape[1:])
            b = x[:, na:].reshape((len(x),) + b_shape[1:])
            ax0, ax1 = axes[0] % len(a_shape) - 1, axes[1] % len(b_shape) - 1
            return np.stack([np.tensordot(a[s], b[s], axes=(ax0, ax1)) for s in range(len(x))])
        g.add("dot_%d_%d" % axes, "dot", X((1, na + nb)), oracle, a_shape=list(a_shape),
              b_shape=list(b_shape), axis0=axes[0], axis1=axes[1])
    wl = dyadic(rng, (3, 5))
    g.add("linear", "linear", X((1, 2, 5)), lambda x: x @ wl.T + b, kernel=arr(wl), bias=arr(b))
    return g


def transpose_cases(rng):
    g = Group("conv_transpose")
    X = lambda shape: (shape, 1, 2, 2)  # noqa: E731
    # Keras ConvNDTranspose (one group, w (*K, Cout, Cin)), every rule of the padding conversion:
    # valid/same with output_padding None and given, kernels smaller than the stride.
    for spatial, kernel, strides, dilation, padding, op, cin, cout in [
        ((4,), (3,), (2,), (1,), "valid", None, 2, 2),
        ((4,), (1,), (3,), (1,), "valid", None, 2, 1),
        ((5,), (2,), (2,), (2,), "same", None, 1, 2),
        ((4,), (3,), (2,), (1,), "same", (1,), 2, 2),
        ((3,), (1,), (2,), (1,), "same", None, 2, 2),
        ((3, 4), (3, 2), (2, 1), (1, 2), "same", None, 2, 3),
        ((3, 3), (2, 3), (2, 3), (1, 1), "valid", (1, 2), 2, 2),
        ((3, 4), (4, 3), (2, 2), (1, 1), "same", (0, 1), 1, 2),
        ((2, 3, 2), (2, 2, 3), (2, 1, 2), (1, 1, 1), "same", None, 2, 2),
    ]:
        w = dyadic(rng, kernel + (cout, cin))
        b = dyadic(rng, (cout,))
        oracle = (lambda w, b, s, d, p, op: lambda x: keras_conv_transpose(x, w, b, s, d, p, op))(
            w, b, strides, dilation, padding, op)
        g.add("keras_convT%dd_%s_op%s" % (len(kernel), padding, "".join(map(str, op or "n"))),
              "conv_transpose", X((1,) + spatial + (cin,)), oracle,
              window=win(kernel, strides, dilation, padding, output_padding=op),
              kernel=arr(w), bias=arr(b))
    # torch ConvTransposeNd: weight (Cin, Cout/g, *K), groups, output_padding, dilation.
    for spatial, kernel, stride, padding, op, groups, dilation, cin, cout in [
        ((5,), (3,), 2, 1, 1, 1, 1, 2, 2),
        ((4, 3), (3, 2), (2, 3), (1, 0), (1, 2), 2, (1, 1), 4, 2),
        ((3, 4), (2, 2), 1, 0, 0, 2, 2, 2, 4),
        ((2, 3, 2), (2, 2, 2), (2, 1, 2), (0, 1, 1), (1, 0, 0), 1, 1, 1, 2),
    ]:
        rank = len(kernel)
        w = dyadic(rng, (cin, cout // groups) + kernel)
        b = dyadic(rng, (cout,))
        oracle = (lambda w, b, st, p, op, gr, d, r: lambda x: torch_conv_transpose(r)(
            t64(x), t64(w), t64(b), st, p, op, gr, d).numpy())(w, b, stride, padding, op,
                                                               groups, dilation, rank)
        expand = lambda v: [v] * rank if isinstance(v, int) else list(v)  # noqa: E731
        g.add("torch_convT%dd_g%d" % (rank, groups), "conv_transpose", X((1, cin) + spatial),
              oracle,
              window=win(kernel, expand(stride), expand(dilation),
                         [[p, p] for p in expand(padding)], output_padding=expand(op),
                         groups=groups, channels_first=True),
              kernel=arr(w), bias=arr(b), torch=True)
    return g


def pool_cases(rng):
    g = Group("pool")
    X = lambda shape: (shape, 1, 3, 2)  # noqa: E731
    # Keras pools: valid and same (padding excluded), 1/2/3-D, both layouts. Average windows
    # are sized so that every divisor is a power of two: the reference multiplies by the float64
    # reciprocal, and a non-dyadic one (1/3) costs the SCM solver minutes per product today.
    for kind, spatial, pool, strides, padding, cf in [
        ("max", (7,), (3,), (2,), "same", False),
        ("avg", (7,), (2,), (1,), "same", False),
        ("avg", (6, 5), (2, 2), (2, 2), "valid", False),
        ("max", (5, 5), (3, 2), (2, 1), "same", True),
        ("avg", (5, 6), (2, 2), (2, 1), "same", False),
        ("avg", (5, 4), (4, 2), (1, 2), "valid", True),
        ("max", (3, 4, 3), (2, 2, 2), (1, 2, 2), "same", False),
        ("avg", (3, 3, 2), (2, 2, 1), (2, 1, 1), "same", True),
    ]:
        shape = (1, 2) + spatial if cf else (1,) + spatial + (2,)
        oracle = (lambda k, p, s, pad, cf: lambda x: (to_first if cf else (lambda y: y))(
            keras_pool(to_last(x) if cf else x, k, p, s, pad)))(kind, pool, strides, padding, cf)
        g.add("keras_%spool%dd_%s%s" % (kind, len(pool), padding, "_cf" if cf else ""), "pool",
              X(shape), oracle, kind=kind,
              window=win(pool, strides, padding=padding, channels_first=cf))
    # torch pools: padding, dilation (max), ceil_mode, count_include_pad, divisor_override.
    for kind, spatial, kernel, stride, padding, dilation, ceil, include, divisor in [
        ("max", (7,), (3,), 2, 1, 2, False, False, 0),
        ("max", (6, 5), (3, 2), (2, 2), (1, 1), (1, 2), True, False, 0),
        ("max", (4, 5, 4), (2, 3, 2), (2, 2, 1), (1, 1, 0), 1, True, False, 0),
        ("avg", (7,), (4,), 2, 2, 1, False, True, 0),
        ("avg", (6,), (2,), 2, 1, 1, True, True, 0),
        ("avg", (6, 7), (2, 2), (2, 2), (1, 1), 1, True, False, 0),
        ("avg", (5, 5), (2, 4), (2, 2), (1, 2), 1, False, True, 0),
        ("avg", (5, 6), (3, 2), (2, 2), (1, 0), 1, False, True, 4),
        ("avg", (3, 4, 5), (2, 2, 2), (1, 2, 2), (1, 0, 1), 1, True, False, 0),
    ]:
        rank = len(kernel)
        expand = lambda v: [v] * rank if isinstance(v, int) else list(v)  # noqa: E731
        if kind == "max":
            oracle = (lambda k, s, p, d, c: lambda x: torch_max_pool(x, k, s, p, d, c))(
                kernel, stride, padding, dilation, ceil)
        else:
            oracle = (lambda k, s, p, c, i, dv: lambda x: torch_avg_pool(x, k, s, p, c, i, dv))(
                kernel, stride, padding, ceil, include, divisor)
        g.add("torch_%spool%dd%s%s%s" % (kind, rank, "_ceil" if ceil else "",
                                         "_incl" if include else "", "_div" if divisor else ""),
              "pool", X((1, 2) + spatial), oracle, kind=kind,
              window=win(kernel, expand(stride), expand(dilation),
                         [[p, p] for p in expand(padding)], channels_first=True, ceil_mode=ceil),
              count_include_pad=include, divisor_override=divisor)
    # Global pools (Keras keepdims both ways, torch's adaptive form channels first).
    for kind, shape, cf, keep in [("max", (1, 4, 3, 2), False, False),
                                  ("avg", (1, 8, 3), False, True),
                                  ("avg", (1, 3, 2, 4), True, True),
                                  ("max", (1, 2, 2, 3, 2), True, True),
                                  ("avg", (1, 2, 2, 4, 2), False, False)]:
        axes = tuple(range(2, len(shape))) if cf else tuple(range(1, len(shape) - 1))
        count = int(np.prod([shape[a] for a in axes]))
        if kind == "max":
            oracle = (lambda a, k: lambda x: np.max(x, axis=a, keepdims=k))(axes, keep)
        else:
            oracle = (lambda a, k, c: lambda x: np.sum(x, axis=a, keepdims=k) * (1.0 / c))(
                axes, keep, count)
        g.add("global_%s_%dd%s%s" % (kind, len(shape) - 2, "_cf" if cf else "",
                                     "_keep" if keep else ""),
              "global_pool", X(shape), oracle, kind=kind, channels_first=cf, keepdims=keep)
    return g


def f32_fold(gamma, beta, mean, var, eps):
    """The frameworks' float32 batch-norm fold (numpy float32 arithmetic)."""
    g = np.float32(1) if gamma is None else gamma
    b = np.float32(0) if beta is None else beta
    scale = g / np.sqrt(var + np.float32(eps))
    return scale, b - mean * scale


def on_axes(v, ndim, shape, axes):
    target = [1] * ndim
    for a in axes:
        target[a] = shape[a]
    return np.asarray(v, dtype=np.float64).reshape(target)


def norm_cases(rng):
    g = Group("norm")
    X = lambda shape: (shape, 1, 3, 3)  # noqa: E731
    for name, shape, axes, has_gamma, has_beta, eps in [
        ("bn_last", (1, 3, 4), [-1], True, True, 1e-3),
        ("bn_axis1", (1, 3, 2, 2), [1], True, False, 1e-5),
        ("bn_two_axes", (1, 2, 3, 2), [1, 2], False, True, 0.001),
    ]:
        n = int(np.prod([shape[a] for a in axes]))
        gamma = float32s(rng, (n,)) if has_gamma else None
        beta = float32s(rng, (n,)) if has_beta else None
        mean = float32s(rng, (n,))
        var = float32s(rng, (n,), 0.05, 3.0)
        scale, offset = f32_fold(gamma, beta, mean, var, eps)
        oracle = (lambda s, o, sh, ax: lambda x: x * on_axes(s, len(sh), sh, ax) +
                  on_axes(o, len(sh), sh, ax))(scale, offset, shape, axes)
        g.add(name, "bn", X(shape), oracle, axes=axes, eps=eps, mean=arr(mean), var=arr(var),
              gamma=None if gamma is None else arr(gamma),
              beta=None if beta is None else arr(beta))
    for invert in (False, True):
        mean = float32s(rng, (4,))
        var = np.concatenate([float32s(rng, (3,), 0.05, 3.0), np.float32([1e-16])])
        std = np.maximum(np.sqrt(var), np.float32(1e-7))
        scale, offset = (std, mean) if invert else (np.float32(1) / std,
                                                    -mean * (np.float32(1) / std))
        oracle = (lambda s, o: lambda x: x * s.astype(np.float64) + o.astype(np.float64))(
            scale, offset)
        g.add("normalization%s" % ("_invert" if invert else ""), "normalization", X((1, 2, 4)),
              oracle, axes=[-1], invert=invert, mean=arr(mean), var=arr(var))
    return g


def keras_relu(x, threshold, slope, max_value):
    """Keras's ReLU.static_call: x (x > th, clipped to max) minus slope * relu(th - x)."""
    pos = np.where(x > threshold, x, 0.0)
    if max_value is not None:
        pos = np.clip(pos, 0.0, max_value)
    return pos - slope * np.maximum(threshold - x, 0.0)


def activation_cases(rng):
    g = Group("activation")
    X = (1, 3, 5), 1, 3, 2
    # Slopes and thresholds are dyadic: a non-dyadic slope (Keras's default 0.3) costs the SCM
    # solver minutes today, and a non-dyadic threshold enters as the reference's constant addition,
    # which keeps float32 precision only (trace-alir 1.6). 0.625 is off the inputs' 0.25 grid.
    for th, slope, maxv in [(0, 0, None), (0, 0.375, None), (0.5, 0.25, 6.0), (1, 0, 2.5),
                            (0.625, 0.5, None), (0, 0, 4.0)]:
        g.add("relu_th%g_s%g_m%s" % (th, slope, maxv), "relu", X,
              (lambda th, s, m: lambda x: keras_relu(x, th, s, m))(th, slope, maxv),
              threshold=th, negative_slope=slope, max_value=maxv)
    alpha = dyadic(rng, (3, 5), 2, 1)
    g.add("prelu", "relu", X, lambda x: np.maximum(x, 0) - alpha * np.maximum(-x, 0),
          threshold=0, negative_slope=0, alpha=arr(alpha))
    zero = np.zeros((1, 5))
    g.add("prelu_zero_is_relu", "relu", X, lambda x: np.maximum(x, 0), threshold=0,
          negative_slope=0, alpha=arr(zero))
    exact = {"linear": lambda x: x, "relu": lambda x: np.maximum(x, 0),
             "relu6": lambda x: np.clip(x, 0, 6), "hard_tanh": lambda x: np.clip(x, -1, 1)}
    for name, fn in exact.items():
        g.add("keras_" + name, "activation", X, fn, map="keras", act=name)
    torch_exact = {"hardtanh": lambda x: np.clip(x, -1, 1), "abs": np.abs, "sign": np.sign,
                   "round": np.round, "floor": np.floor, "ceil": np.ceil,
                   "neg": np.negative, "square": np.square,
                   "flatten": lambda x: x.reshape(len(x), -1)}
    for name, fn in torch_exact.items():
        # np.ravel drops the batch axis too: flatten's output is (15,).
        g.add("torch_" + name, "activation", X, fn, map="torch", act=name,
              batchless=name == "flatten")
    # Table functions: pending until round(f(x) * 16) tabulates them (the tests' usual probe).
    for name, fn in KERAS_TABLES.items():
        g.add("keras_" + name, "activation", X, (lambda fn: lambda x: np.round(fn(x) * 16))(fn),
              map="keras", act=name, scale=16)
    positive = (1, 3, 5), 0, 3, 2  # log, sqrt, ... on values >= 0 (log(0) is masked to 0)
    for name, (fn, domain) in TORCH_TABLES.items():
        x = positive if domain == "positive" else ((1, 3, 5), 0, 0, 4) if domain == "unit" else X
        g.add("torch_" + name, "activation", x,
              (lambda fn: lambda x: table_round(fn, x, 16))(fn), map="torch", act=name, scale=16)
    return g


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def erf(x):
    return torch.special.erf(t64(x)).numpy()


def hard_sigmoid(x):
    return np.clip(x + 3.0, 0.0, 6.0) / 6.0


def elu(x):
    return np.where(x > 0, x, np.exp(x) - 1)


# frontends 2.3 (Keras) and 4.5 (torch), in float64 as the reference hands them to numpy.
KERAS_TABLES = {
    "tanh": np.tanh, "exponential": np.exp, "sigmoid": sigmoid,
    "silu": lambda x: x * sigmoid(x), "swish": lambda x: x * sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2))), "elu": elu,
    "selu": lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 *
                                                     (np.exp(x) - 1)),
    "softplus": lambda x: np.log1p(np.exp(x)), "softsign": lambda x: x / (1 + np.abs(x)),
    "hard_sigmoid": hard_sigmoid, "hard_silu": lambda x: x * hard_sigmoid(x),
    "hard_swish": lambda x: x * hard_sigmoid(x), "log_sigmoid": lambda x: -np.log1p(np.exp(-x)),
}

TORCH_TABLES = {
    "sigmoid": (sigmoid, None), "hardsigmoid": (lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0), None),
    "hardswish": (lambda x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0), None),
    "logsigmoid": (lambda x: -np.log1p(np.exp(-x)), None), "sinh": (np.sinh, None),
    "expm1": (np.expm1, None), "sin": (np.sin, None), "arctan": (np.arctan, None),
    "log": (np.log, "positive"), "log2": (np.log2, "positive"), "sqrt": (np.sqrt, "positive"),
    "rsqrt": (lambda x: 1 / np.sqrt(x), "positive"), "reciprocal": (lambda x: 1 / x, None),
    "asin": (np.arcsin, "unit"), "atanh": (np.arctanh, "unit"),
}


def table_round(fn, x, scale):
    """round(f(x) * scale) as a table computes it: entries that are not finite are masked to 0
    (trace-alir 1.15)."""
    with np.errstate(all="ignore"):
        v = np.round(fn(x) * scale)
    return np.where(np.isfinite(v), v, 0.0)


def np_pad(x, pads, mode, value):
    """np.pad; 'wrap' periodic also for pads wider than the axis (numpy >= 1.25, JAX and torch's
    circular padding; numpy 1.24 restarts the period at each round, the design the port does not
    copy)."""
    if mode != "wrap":
        kw = {"constant_values": value} if mode == "constant" else {}
        return np.pad(x, pads, mode=mode, **kw)
    for axis, (before, after) in enumerate(pads):
        n = x.shape[axis]
        x = np.take(x, (np.arange(-before, n + after)) % n, axis=axis)
    return x


def spatial_cases(rng):
    g = Group("spatial")
    X = lambda shape: (shape, 1, 3, 2)  # noqa: E731
    for mode in ("constant", "edge", "reflect", "symmetric", "wrap"):
        for shape, pads, cf in [((1, 4, 3), [[2, 5]], False), ((1, 2, 3, 4), [[1, 3], [4, 0]], True),
                                ((1, 2, 3, 2, 2), [[3, 1], [0, 2], [2, 2]], False)]:
            axes = range(2, len(shape)) if cf else range(1, len(shape) - 1)
            np_pads = [(0, 0)] * len(shape)
            for a, p in zip(axes, pads):
                np_pads[a] = tuple(p)
            oracle = (lambda pp, m: lambda x: np_pad(x, pp, m, 0.75))(np_pads, mode)
            g.add("pad_%s_%dd%s" % (mode, len(pads), "_cf" if cf else ""), "pad", X(shape),
                  oracle, pads=pads, mode=mode, value=0.75, channels_first=cf)
    g.add("crop2d", "crop", X((1, 5, 6, 2)), lambda x: x[:, 1:4, 2:6, :],
          crops=[[1, 1], [2, 0]])
    g.add("crop1d_cf", "crop", X((1, 2, 7)), lambda x: x[:, :, 0:4], crops=[[0, 3]],
          channels_first=True)
    g.add("upsample2d", "upsample", X((1, 2, 3, 2)),
          lambda x: np.repeat(np.repeat(x, 2, axis=1), 3, axis=2), scale=[2, 3])
    g.add("upsample3d_cf", "upsample", X((1, 2, 2, 1, 2)),
          lambda x: np.repeat(np.repeat(np.repeat(x, 1, 2), 2, 3), 3, 4), scale=[1, 2, 3],
          channels_first=True)
    g.add("pixel_shuffle2d", "pixel_shuffle", X((1, 8, 2, 3)),
          lambda x: F.pixel_shuffle(t64(x), 2).numpy(), r=2)
    g.add("pixel_unshuffle2d", "pixel_unshuffle", X((1, 2, 4, 6)),
          lambda x: F.pixel_unshuffle(t64(x), 2).numpy(), r=2)
    g.add("pixel_shuffle1d", "pixel_shuffle", X((1, 6, 2)),
          lambda x: x.reshape(len(x), 2, 3, 2).transpose(0, 1, 3, 2).reshape(len(x), 2, 6), r=3)
    table = dyadic(rng, (5, 3), 4, 2)
    g.add("embedding", "embedding", ((1, 2, 3), 1, 3, 1),
          lambda x: table[np.clip(np.trunc(x).astype(int), 0, 4)], table=arr(table))
    for mode in ("one_hot", "multi_hot", "count"):
        def oracle(x, mode=mode):
            hot = np.stack([(x == c) for c in range(6)], axis=-1).astype(np.float64)
            if mode == "one_hot":
                return hot
            count = hot.sum(axis=-2)
            return count if mode == "count" else (count > 0).astype(np.float64)
        g.add("category_" + mode, "category", ((1, 4), 0, 3, 0), oracle, num_tokens=6,
              mode=mode)
    return g


# ---- HGQ2 (frontends 3.1, 3.3) --------------------------------------------------------------------


# The numeric quantizer Q of 3.1 in float64 (the symbolic quantize's oracle): the one the
# operation tests use, written from trace-alir 2.10.
q_float64 = quantize


def f32(v):
    return np.float32(v)


def q_float32(x, k, i, f, overflow, rnd):
    """HGQ2's Keras-side FixedPointQuantizer at inference, in float32 (quantizers'
    _fixed_point_ops.py with numpy float32 arithmetic), zeroing included."""
    x, k, i, f = (np.asarray(v, dtype=np.float32) for v in (x, k, i, f))
    ii = np.maximum(i, -f)
    if overflow != "WRAP":
        eps = f32(2.0) ** -f
        top = f32(2.0) ** ii
        hi = top - eps
        lo = -top * k if overflow == "SAT" else -hi * k
        x = np.where(x > hi, hi, np.where(x < lo, lo, x))
    x = round32(x, f, rnd)
    if overflow == "WRAP":
        bits = ii + k
        bias = k * f32(2.0) ** (bits - f32(1))
        x = np.mod(x + bias, f32(2.0) ** bits) - bias
    return np.where(k + i + f > 0, x, f32(0))


def round32(x, f, rnd):
    scale = np.float32(2.0) ** np.asarray(f, dtype=np.float32)
    y = np.asarray(x, dtype=np.float32) * scale
    if rnd == "TRN":
        y = np.floor(y)
    elif rnd == "RND":
        y = np.floor(y + np.float32(0.5))
    else:
        y = np.round(y)
    return y / scale


def quantizer(rng, q_type, rnd, overflow, shape, is_weight=False, trainable=True, scaler=None,
              affine=None, kinds=(0, 1), bits=(2, 6), ints=(-1, 3)):
    """A random quantizer with k, b/i/f stored on `shape` (1 on homogeneous axes); values are the
    float32 weights HGQ2 stores (not yet rounded: b, i, f get +-0.3 and some exact halves)."""
    k = rng.choice(kinds, size=shape).astype(np.float32)
    jitter = lambda: rng.choice([-0.3, 0.0, 0.2, 0.5], size=shape)  # noqa: E731
    spec = dict(q_type=q_type, round_mode=rnd, overflow_mode=overflow, is_weight=is_weight,
                trainable=trainable, scaler=scaler, affine=affine, k=arr(k))
    i = (rng.integers(*ints, size=shape) + jitter()).astype(np.float32)
    if q_type == "kbi":
        b = (rng.integers(*bits, size=shape) + jitter()).astype(np.float32)
        spec.update(b=arr(b), i=arr(i))
        ki, kf = np.round(i), np.round(b) - np.round(i)
    else:
        f = (rng.integers(*bits, size=shape) + jitter()).astype(np.float32)
        spec.update(i=arr(i), f=arr(f))
        ki, kf = np.round(i), np.round(f)
    return spec, (k.astype(np.float64), ki.astype(np.float64), kf.astype(np.float64))


def hgq_cases(rng):
    g = Group("hgq")
    X = (1, 3, 4), 1, 4, 3
    n = 0
    # The symbolic mirror: kbi/kif, every round and overflow mode (S_ forms too), homogeneous axes.
    for q_type in ("kbi", "kif"):
        for overflow in ("WRAP", "SAT", "SAT_SYM"):
            for rnd in ("TRN", "RND", "RND_CONV", "S_RND", "S_RND_CONV"):
                shape = [(1, 3, 4), (1, 1, 4), (1, 3, 1), (1, 1, 1)][n % 4]
                scaler = [None, 0.5, None, 4.0][n % 4]
                affine = [None, None, [1.5, np.float32(0.3).item()], [-0.75, 2.0]][(n // 4) % 4]
                n += 1
                spec, (k, i, f) = quantizer(rng, q_type, rnd, overflow, shape, scaler=scaler,
                                            affine=affine)
                plain = rnd[2:] if rnd.startswith("S_") else rnd

                def oracle(x, k=k, i=i, f=f, ov=overflow, rd=plain, sc=scaler, af=affine):
                    v = x * (1.0 / sc) if sc else x
                    v = q_float64(v, k, i, f, ov, rd)
                    v = v * sc if sc else v  # Keras multiplies back (the reference does not)
                    return v * af[0] + af[1] if af else v
                g.add("mirror_%s_%s_%s" % (q_type, overflow, rnd), "hgq_mirror", X, oracle,
                      q=spec)
    # An activation left pending by one layer, tabulated by the next layer's input quantizer.
    for act, ov, rnd in (("tanh", "SAT", "RND"), ("sigmoid", "WRAP", "RND_CONV"),
                         ("gelu", "SAT_SYM", "TRN")):
        spec, (k, i, f) = quantizer(rng, "kif", rnd, ov, (1, 1, 4), bits=(3, 6), ints=(0, 2))
        fn = KERAS_TABLES[act]
        g.add("fold_%s_into_%s_%s" % (act, ov, rnd), "act_then_mirror", X,
              (lambda fn, k, i, f, ov, rd: lambda x: q_float64(fn(x), k, i, f, ov, rd))(
                  fn, k, i, f, ov, rnd), act=act, q=spec)
    # The Keras-side weight quantizer in float32: both types, every mode, the round-only branches
    # (trainable WRAP weight quantizers), scaler and affine.
    for q_type in ("kbi", "kif"):
        for overflow in ("WRAP", "SAT", "SAT_SYM"):
            for rnd in ("TRN", "RND", "RND_CONV", "S_RND"):
                for is_weight, trainable in ((True, True), (False, True), (True, False)):
                    shape = [(3, 4), (1, 4), (3, 1)][n % 3]
                    scaler = [None, 0.75, None, 2.0][n % 4]
                    affine = [None, [0.3, -0.1]][(n // 3) % 2]
                    n += 1
                    spec, _ = quantizer(rng, q_type, rnd, overflow, shape, is_weight, trainable,
                                        scaler, affine)
                    w = float32s(rng, (3, 4), -6, 6)
                    qw = keras_quantize(spec, w)
                    g.add("weight_%s_%s_%s_w%d_t%d" % (q_type, overflow, rnd, is_weight,
                                                       trainable), "hgq_weight",
                          ((1, 3, 4), 1, 3, 2), (lambda q: lambda x: x + q)(qw.astype(np.float64)),
                          q=spec, w=arr(w))
    return g


def keras_quantize(spec, w):
    """HGQ2's Quantizer.call at inference on float32 weights (frontends 3.1, Keras side)."""
    k = np.asarray(spec["k"]["data"], np.float32).reshape(spec["k"]["shape"])
    if spec["q_type"] == "kbi":
        b = np.round(np.asarray(spec["b"]["data"], np.float32).reshape(spec["b"]["shape"]))
        i = np.round(np.asarray(spec["i"]["data"], np.float32).reshape(spec["i"]["shape"]))
        f = b - i
    else:
        i = np.round(np.asarray(spec["i"]["data"], np.float32).reshape(spec["i"]["shape"]))
        f = np.round(np.asarray(spec["f"]["data"], np.float32).reshape(spec["f"]["shape"]))
    rnd = spec["round_mode"][2:] if spec["round_mode"].startswith("S_") else spec["round_mode"]
    x = np.asarray(w, np.float32)
    if spec["scaler"]:
        x = x / np.float32(spec["scaler"])
    wrap_weight = spec["overflow_mode"] == "WRAP" and spec["trainable"] and spec["is_weight"]
    if wrap_weight and (spec["q_type"] == "kif" or rnd == "RND"):
        x = round32(x, np.broadcast_to(f, x.shape), rnd)
    else:
        x = q_float32(x, np.broadcast_to(k, x.shape), np.broadcast_to(i, x.shape),
                      np.broadcast_to(f, x.shape), spec["overflow_mode"], rnd)
    if spec["scaler"]:
        x = x * np.float32(spec["scaler"])
    if spec["affine"]:
        x = x * np.float32(spec["affine"][0]) + np.float32(spec["affine"][1])
    return x.astype(np.float32)


def fused_cases(rng):
    g = Group("hgq_fused")
    # QBatchNormDense: kq(s[:, None] * kernel), bq(bias - mean @ kernel).
    for scale in (True, False):
        kq, _ = quantizer(rng, "kbi", "RND", "SAT_SYM", (5, 3), True, True, bits=(6, 9),
                          ints=(0, 2))
        bq, _ = quantizer(rng, "kbi", "RND", "WRAP", (3,), False, True, bits=(6, 9), ints=(1, 4))
        kernel, bias = float32s(rng, (5, 3)), float32s(rng, (3,))
        gamma = float32s(rng, (5,)) if scale else None
        mean, var = float32s(rng, (5,)), float32s(rng, (5,), 0.1, 2.0)
        s = (f32(1) if gamma is None else gamma) / np.sqrt(var + f32(1e-3))
        dot = (mean.astype(np.float64) @ kernel.astype(np.float64)).astype(np.float32)
        qk = keras_quantize(kq, s[:, None] * kernel).astype(np.float64)
        qb = keras_quantize(bq, bias + -dot).astype(np.float64)
        g.add("bn_dense%s" % ("" if scale else "_noscale"), "hgq_dense_bn", ((1, 5), 1, 2, 3),
              (lambda k, b: lambda x: x @ k + b)(qk, qb), kq=kq, bq=bq, kernel=arr(kernel),
              bias=arr(bias), gamma=None if gamma is None else arr(gamma), mean=arr(mean),
              var=arr(var), eps=1e-3)
    # QEinsumDenseBatchnorm: kernel 'cde', normalize axes 'de' (ordered as in the kernel),
    # epsilon 1e-7, bias of shape (d, e) (the default cast shape) and an explicit cast shape.
    for cast in (None, [3, 2]):
        kq, _ = quantizer(rng, "kif", "RND_CONV", "SAT", (1, 3, 2), True, True, bits=(6, 9),
                          ints=(0, 2))
        bq, _ = quantizer(rng, "kif", "RND", "WRAP", (3, 2) if cast is None else (3, 2), False,
                          True, bits=(6, 9), ints=(1, 4))
        kernel, bias = float32s(rng, (4, 3, 2)), float32s(rng, (3, 2))
        gamma = float32s(rng, (3, 2))
        mean, var = float32s(rng, (3, 2)), float32s(rng, (3, 2), 0.1, 2.0)
        s = gamma / np.sqrt(var + f32(1e-7))
        fused = kernel * s[None, :, :]
        offset = (-mean * s).reshape(cast or (3, 2))
        qk = keras_quantize(kq, fused).astype(np.float64)
        qb = keras_quantize(bq, bias + offset).astype(np.float64)
        g.add("einsum_bn%s" % ("_cast" if cast else ""), "hgq_einsum_bn", ((1, 2, 4), 1, 2, 3),
              (lambda k, b: lambda x: np.einsum("abc,cde->abde", x, k) + b)(qk, qb),
              kq=kq, bq=bq, kernel=arr(kernel), bias=arr(bias), gamma=arr(gamma), mean=arr(mean),
              var=arr(var), equation="abc,cde->abde", kernel_axes="cde", norm_axes="de",
              cast_shape=cast)
    # QBatchNormalization: kq(gamma/sqrt(var+eps)), bq(beta - mean*scale); center=False: beta 1.
    for center in (True, False):
        kq, _ = quantizer(rng, "kbi", "RND", "SAT_SYM", (4,), True, True, bits=(6, 9),
                          ints=(0, 2))
        bq, _ = quantizer(rng, "kbi", "RND", "WRAP", (4,), False, True, bits=(6, 9), ints=(1, 4))
        gamma, beta = float32s(rng, (4,)), float32s(rng, (4,))
        mean, var = float32s(rng, (4,)), float32s(rng, (4,), 0.1, 2.0)
        scale, offset = f32_fold(gamma, beta if center else f32(1), mean, var, 1e-3)
        qs = keras_quantize(kq, scale).astype(np.float64)
        qo = keras_quantize(bq, offset).astype(np.float64)
        g.add("bn%s" % ("" if center else "_nocenter"), "hgq_bn", ((1, 3, 4), 1, 3, 3),
              (lambda s, o: lambda x: x * s + o)(qs, qo), kq=kq, bq=bq, gamma=arr(gamma),
              beta=arr(beta), mean=arr(mean), var=arr(var), eps=1e-3, center=center, axes=[-1])
    return g


GROUPS = [conv_cases, transpose_cases, pool_cases, norm_cases, activation_cases, spatial_cases,
          hgq_cases, fused_cases]


# ---- Running -------------------------------------------------------------------------------------


def grid_inputs(rng, shape, k, i, f, samples):
    lo, hi = -k * 2 ** (i + f), 2 ** (i + f)
    return rng.integers(lo, hi, size=(samples,) + tuple(shape[1:])) / 2.0**f


def check_group(gen, alkaidc, group, rng, samples, tmp):
    cases_file = os.path.join(tmp, group.name + ".cases.json")
    with open(cases_file, "w") as fh:
        json.dump({"groups": [{"name": group.name, "cases": [c for c, _ in group.cases]}]}, fh)
    run = subprocess.run([gen, cases_file, tmp], capture_output=True, text=True)
    if run.returncode != 0:
        print("FAIL %-12s nn_gen: %s" % (group.name, run.stderr.strip()))
        return 1
    with open(os.path.join(tmp, group.name + ".shapes.json")) as fh:
        shapes = json.load(fh)
    xs = [grid_inputs(rng, c["x"]["shape"], c["x"]["k"], c["x"]["i"], c["x"]["f"], samples)
          for c, _ in group.cases]
    inp = os.path.join(tmp, group.name + ".in.txt")
    with open(inp, "w") as fh:
        flat = np.concatenate([x.reshape(samples, -1) for x in xs], axis=1)
        for row in flat:
            fh.write(" ".join(repr(float(v)) for v in row) + "\n")
    out = subprocess.run([alkaidc, "run", os.path.join(tmp, group.name + ".json"), "--input", inp],
                         capture_output=True, text=True)
    if out.returncode != 0:
        print("FAIL %-12s alkaidc run: %s" % (group.name, out.stderr.strip()))
        return 1
    got = np.array([[float(v) for v in line.split()] for line in out.stdout.splitlines()])
    status, at = 0, 0
    for (spec, oracle), x, shape in zip(group.cases, xs, shapes):
        size = int(np.prod(shape))
        mine = got[:, at:at + size]
        at += size
        want = np.asarray(oracle(x), dtype=np.float64)
        name = "%s/%s" % (group.name, spec["name"])
        if tuple(want.shape[1:]) != tuple(shape if spec.get("batchless") else shape[1:]):
            print("FAIL %-40s shape %s, oracle %s" % (name, shape, list(want.shape)))
            status = 1
            continue
        want = want.reshape(samples, -1)
        # Equal values (fixed point has no negative zero; numpy's -0.0 equals 0.0).
        bad = [(s, j) for s in range(samples) for j in range(size) if mine[s, j] != want[s, j]]
        if bad:
            s, j = bad[0]
            print("FAIL %-40s %d mismatches, e.g. sample %d output %d: alkaidc %r oracle %r" %
                  (name, len(bad), s, j, mine[s, j], want[s, j]))
            status = 1
        else:
            print("ok   %-40s %d samples x %d outputs" % (name, samples, size))
    return status


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("gen")
    parser.add_argument("alkaidc")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("groups", nargs="*")
    args = parser.parse_intermixed_args()
    rng = np.random.default_rng(args.seed)
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for make in GROUPS:
            group = make(rng)
            if args.groups and group.name not in args.groups:
                continue
            status |= check_group(args.gen, args.alkaidc, group, rng, args.samples, tmp)
    return status


if __name__ == "__main__":
    sys.exit(main())
