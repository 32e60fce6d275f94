"""The torch models of the reference's test suite (spec frontends.md §6.2), as one table, and
a second table covering what those models leave out of §4.3-§4.5.

Each Case builds a fresh module the way the reference's harness does: the operation wrapped in a
module whose forward(x0, ..., x_{m-1}) returns `self._fn(x0, ...)` (a module operation becomes
the submodule `_fn`; a lambda is traced through). Shapes are per sample, without the batch axis
(the export adds the batch axis of 1). Fields other than the module say how the reference feeds
the case: the input format, whether the weights are perturbed, the data (kif-grid floats by
default, or the case's own), and for the three must-fail cases the error the reference raises.

torch 1.13 lacks classes the table covers (`ZeroPad1d`, `ZeroPad3d`, `CircularPad1d/2d/3d` are
torch 2.1's): stand-ins with the newer classes' module path, name and forward take their place,
so that the export sends what a newer client sends and torch's forward computes what the newer
classes compute.
"""
import collections
from functools import partial

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from torch_oracle import grid_data

Case = collections.namedtuple(
    "Case", "name group make shapes kif perturb data n fails target per_sample atol",
    defaults=((1, 4, 4), True, None, 2048, None, None, False, 0.0))
# make: () -> nn.Module; shapes: per-sample input shapes; kif: input format (k, i, f);
# perturb: the reference's weight perturbation (round(N(0,1)*4)/4, rng 42) before the run;
# data: None (kif-grid floats, rng = input index) or (n) -> list of arrays with the batch axis;
# fails: None, or (exception class name, text the reference's error contains);
# target (coverage cases): the node the case exists for, "<op>:<target>" as exported;
# per_sample: the model mixes samples when run on a batch (`x.t()`, `x.sum()`), so the oracle
# runs it one sample at a time, as the ALIR program sees them;
# atol: 0 (bit for bit), or the bound for a model with products by non-dyadic constants, which
# follow the reference's float rounding (README "Differences from the reference").


class _Wrap1(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self._fn = fn  # registers as a submodule when fn is a module

    def forward(self, x0):
        return self._fn(x0)


class _Wrap2(_Wrap1):
    def forward(self, x0, x1):
        return self._fn(x0, x1)


def _wrap(fn, n_inputs=1):
    return (_Wrap1, _Wrap2)[n_inputs - 1](fn)


# Stand-ins for the torch 2.1 classes this torch lacks: the same module path, name and forward.
if hasattr(nn, "ZeroPad1d"):
    ZeroPad1d, ZeroPad3d = nn.ZeroPad1d, nn.ZeroPad3d
else:
    class ZeroPad1d(nn.ConstantPad1d):
        __module__ = "torch.nn.modules.padding"

        def __init__(self, padding):
            super().__init__(padding, 0.0)

    class ZeroPad3d(nn.ConstantPad3d):
        __module__ = "torch.nn.modules.padding"

        def __init__(self, padding):
            super().__init__(padding, 0.0)

if hasattr(nn, "CircularPad1d"):
    CircularPad1d, CircularPad2d, CircularPad3d = (nn.CircularPad1d, nn.CircularPad2d,
                                                   nn.CircularPad3d)
else:
    class CircularPad1d(nn.Module):
        __module__ = "torch.nn.modules.padding"
        rank = 1

        def __init__(self, padding):
            super().__init__()
            self.padding = (padding,) * (2 * self.rank) if isinstance(padding, int) \
                else tuple(padding)

        def forward(self, x):
            return F.pad(x, self.padding, "circular")

    class CircularPad2d(CircularPad1d):
        __module__ = "torch.nn.modules.padding"
        rank = 2

    class CircularPad3d(CircularPad1d):
        __module__ = "torch.nn.modules.padding"
        rank = 3


class _Act(nn.Module):
    """round(activation(x) * 16): the reference quantizes table activations before comparing."""

    def __init__(self, cls):
        super().__init__()
        self.a = cls()

    def forward(self, x):
        return torch.round(self.a(x) * 16)


def _bn_identity_scale(weight, bias, running_mean, running_var):
    """gamma = sqrt(var + eps) in float32, so that scale = 1; beta 0.5, mean 0.25, var 1."""
    gamma = float(np.sqrt(np.float32(1.0) + np.float32(1e-5)))
    with torch.no_grad():
        for tensor, value in ((weight, gamma), (bias, 0.5), (running_mean, 0.25),
                              (running_var, 1.0)):
            tensor.fill_(value)


def _batch_norm_module(bn):
    m = _wrap(bn)
    _bn_identity_scale(bn.weight, bn.bias, bn.running_mean, bn.running_var)
    return m


class _FLinear(nn.Module):
    def __init__(self, in_f, out_f, with_bias=True):
        super().__init__()
        self.w = nn.Parameter(torch.randn(out_f, in_f))
        self.b = nn.Parameter(torch.randn(out_f)) if with_bias else None

    def forward(self, x):
        return F.linear(x, self.w, self.b)


class _FConv(nn.Module):
    def __init__(self, rank, ch_in, ch_out, k, padding=0, groups=1):
        super().__init__()
        self.w = nn.Parameter(torch.randn(ch_out, ch_in // groups, *(k,) * rank))
        self.b = nn.Parameter(torch.randn(ch_out))
        self.fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[rank]
        self.padding, self.groups = padding, groups

    def forward(self, x):
        return self.fn(x, self.w, self.b, stride=1, padding=self.padding, dilation=1,
                       groups=self.groups)


class _FConvTranspose(nn.Module):
    def __init__(self, rank, ch_in, ch_out, k):
        super().__init__()
        self.w = nn.Parameter(torch.randn(ch_in, ch_out, *(k,) * rank))
        self.b = nn.Parameter(torch.randn(ch_out))
        self.fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[rank]

    def forward(self, x):
        return self.fn(x, self.w, self.b, stride=2, padding=1, output_padding=1)


class _FBatchNorm(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.w = nn.Parameter(torch.ones(ch))
        self.b = nn.Parameter(torch.zeros(ch))
        self.register_buffer("running_mean", torch.zeros(ch))
        self.register_buffer("running_var", torch.ones(ch))

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.w, self.b, eps=1e-5)


def _f_batch_norm():
    m = _FBatchNorm(4)
    _bn_identity_scale(m.w, m.b, m.running_mean, m.running_var)
    return m


class _FPReLU(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(ch) * 0.25)

    def forward(self, x):
        return F.prelu(x, self.alpha)


class _Shared(nn.Module):
    """One ReLU submodule called twice (dump name `shared#1`)."""

    def __init__(self):
        super().__init__()
        self.shared = nn.ReLU()

    def forward(self, x):
        return self.shared(self.shared(x))


class _EmbeddingWrap(nn.Module):
    def __init__(self, padding_idx=None):
        super().__init__()
        self.emb = nn.Embedding(8, 4, padding_idx=padding_idx)

    def forward(self, x):
        return self.emb(x.to(torch.long))


class _FEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 4))

    def forward(self, x):
        return F.embedding(x.to(torch.long), self.w)


def _quarter_weights(seed, shape=(8, 4)):
    w = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return torch.tensor(np.round(w * 4) / 4)


def _embedding(padding_idx=None):
    m = _EmbeddingWrap(padding_idx)
    with torch.no_grad():
        m.emb.weight.copy_(_quarter_weights(0))
        if padding_idx is not None:
            m.emb.weight[padding_idx].zero_()  # the reference's test zeroes the row itself
    return m


def _f_embedding():
    m = _FEmbedding()
    with torch.no_grad():
        m.w.copy_(_quarter_weights(2))
    return m


def _integers(seed, shape=(3,), high=8):
    """The embedding tests' data: integers in [0, high) as float32, rng `seed`."""
    return lambda n: [np.random.default_rng(seed).integers(0, high, size=(n,) + shape)
                      .astype(np.float32)]


def _int32_grid(n, shapes=((8,), (8,)), kif=(1, 3, 0)):
    """The bitwise tests' data: the kif grid cast to int32 (torch needs integer tensors)."""
    return [grid_data((n,) + s, kif, seed=i).astype(np.int32) for i, s in enumerate(shapes)]


def _modules():
    c = []
    add = c.append
    add(Case("Linear[bias]", "modules", lambda: _wrap(nn.Linear(8, 4)), [(8,)]))
    add(Case("Linear[nobias]", "modules", lambda: _wrap(nn.Linear(8, 4, bias=False)), [(8,)]))
    for name, make, shape in [
            ("Conv1d", lambda: nn.Conv1d(3, 4, 3, padding=0), (3, 16)),
            ("Conv1d[same]", lambda: nn.Conv1d(3, 4, 3, padding="same"), (3, 16)),
            ("Conv2d", lambda: nn.Conv2d(3, 4, 3, padding=0), (3, 8, 8)),
            ("Conv2d[same]", lambda: nn.Conv2d(3, 4, 3, padding="same"), (3, 8, 8)),
            ("Conv2d[groups]", lambda: nn.Conv2d(4, 4, 3, groups=2), (4, 8, 8)),
            ("Conv3d", lambda: nn.Conv3d(3, 4, 3), (3, 4, 4, 4))]:
        add(Case(name, "modules", lambda make=make: _wrap(make()), [shape]))
    for name, make, shape in [("BatchNorm1d[rank2]", lambda: nn.BatchNorm1d(8), (8,)),
                              ("BatchNorm1d[rank3]", lambda: nn.BatchNorm1d(4), (4, 6)),
                              ("BatchNorm2d", lambda: nn.BatchNorm2d(4), (4, 6, 6))]:
        add(Case(name, "modules", lambda make=make: _batch_norm_module(make()), [shape],
                 kif=(1, 2, 4), perturb=False))
    add(Case("ReLU", "modules", lambda: _wrap(nn.ReLU()), [(8,)]))
    add(Case("LeakyReLU", "modules", lambda: _wrap(nn.LeakyReLU(0.25)), [(8,)]))
    add(Case("PReLU[scalar]", "modules", lambda: _wrap(nn.PReLU()), [(8,)]))
    add(Case("PReLU[channels]", "modules", lambda: _wrap(nn.PReLU(4)), [(4, 8)]))
    for cls in (nn.Sigmoid, nn.Tanh, nn.SiLU, nn.GELU, nn.ELU, nn.SELU, nn.Softplus, nn.Softsign,
                nn.Hardsigmoid, nn.Hardswish, nn.Hardtanh, nn.ReLU6, nn.LogSigmoid):
        add(Case(cls.__name__, "modules", lambda cls=cls: _Act(cls), [(8,)], kif=(1, 2, 4),
                 perturb=False))
    add(Case("Flatten", "modules", lambda: _wrap(nn.Flatten()), [(3, 4)]))
    add(Case("Unflatten", "modules", lambda: _wrap(nn.Unflatten(1, (2, 4))), [(8,)]))
    for name, make, shape in [
            ("MaxPool1d", lambda: nn.MaxPool1d(2), (4, 8)),
            ("AvgPool1d", lambda: nn.AvgPool1d(2), (4, 8)),
            ("MaxPool2d", lambda: nn.MaxPool2d(2), (4, 6, 6)),
            ("AvgPool2d", lambda: nn.AvgPool2d(2), (4, 6, 6)),
            ("MaxPool2d[pad]", lambda: nn.MaxPool2d(2, padding=1), (4, 6, 6)),
            ("AvgPool2d[pad,valid count]",
             lambda: nn.AvgPool2d(2, padding=1, count_include_pad=False), (4, 6, 6)),
            ("MaxPool3d", lambda: nn.MaxPool3d(2), (2, 4, 4, 4)),
            ("AdaptiveMaxPool1d", lambda: nn.AdaptiveMaxPool1d(1), (2, 4)),
            ("AdaptiveAvgPool1d", lambda: nn.AdaptiveAvgPool1d(1), (2, 4)),
            ("AdaptiveMaxPool2d", lambda: nn.AdaptiveMaxPool2d(1), (2, 4, 4)),
            ("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d(1), (2, 4, 4)),
            ("AdaptiveMaxPool3d", lambda: nn.AdaptiveMaxPool3d(1), (2, 2, 2, 2)),
            ("AdaptiveAvgPool3d", lambda: nn.AdaptiveAvgPool3d(1), (2, 2, 2, 2)),
            ("Dropout", lambda: nn.Dropout(0.5), (8,)),
            ("Identity", lambda: nn.Identity(), (8,)),
            ("Sequential", lambda: nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4)),
             (8,)),
            ("ZeroPad1d", lambda: ZeroPad1d(2), (3, 8)),
            ("ZeroPad2d", lambda: nn.ZeroPad2d((1, 2, 2, 1)), (3, 6, 6)),
            ("ZeroPad3d", lambda: ZeroPad3d(1), (2, 4, 4, 4)),
            ("ConstantPad1d", lambda: nn.ConstantPad1d(2, 0.5), (3, 8)),
            ("ConstantPad2d", lambda: nn.ConstantPad2d((1, 2, 2, 1), -0.25), (3, 6, 6)),
            ("ReflectionPad1d", lambda: nn.ReflectionPad1d(2), (3, 8)),
            ("ReflectionPad2d", lambda: nn.ReflectionPad2d(1), (3, 6, 6)),
            ("ReplicationPad1d", lambda: nn.ReplicationPad1d(2), (3, 8)),
            ("ReplicationPad2d", lambda: nn.ReplicationPad2d(1), (3, 6, 6)),
            ("ReplicationPad3d", lambda: nn.ReplicationPad3d(1), (2, 4, 4, 4)),
            ("CircularPad1d", lambda: CircularPad1d(2), (3, 8)),
            ("CircularPad2d", lambda: CircularPad2d(1), (3, 6, 6)),
            ("Upsample[scale]", lambda: nn.Upsample(scale_factor=2, mode="nearest"), (3, 4, 4)),
            ("Upsample[size]", lambda: nn.Upsample(size=(8, 8), mode="nearest"), (3, 4, 4)),
            ("UpsamplingNearest2d", lambda: nn.UpsamplingNearest2d(scale_factor=(2, 3)),
             (3, 4, 4)),
            ("PixelShuffle", lambda: nn.PixelShuffle(2), (12, 4, 4)),
            ("PixelUnshuffle", lambda: nn.PixelUnshuffle(2), (3, 4, 4)),
            ("ConvTranspose1d", lambda: nn.ConvTranspose1d(3, 4, 3, stride=2, padding=1,
                                                           output_padding=1), (3, 6)),
            ("ConvTranspose2d", lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1,
                                                           output_padding=1), (3, 4, 4)),
            ("ConvTranspose2d[stride1]", lambda: nn.ConvTranspose2d(3, 4, 3), (3, 4, 4)),
            ("ConvTranspose2d[groups]", lambda: nn.ConvTranspose2d(
                4, 4, 3, stride=2, padding=1, output_padding=1, groups=2), (4, 4, 4)),
            ("ConvTranspose3d", lambda: nn.ConvTranspose3d(2, 4, 3, stride=2, padding=1,
                                                           output_padding=1), (2, 3, 3, 3))]:
        add(Case(name, "modules", lambda make=make: _wrap(make()), [shape]))
    add(Case("shared ReLU", "modules", _Shared, [(8,)], perturb=False))
    add(Case("Embedding", "modules", _embedding, [(3,)], kif=(0, 3, 0), perturb=False,
             data=_integers(1), n=1024))
    add(Case("Embedding[padding_idx]", "modules", lambda: _embedding(2), [(3,)], kif=(0, 3, 0),
             perturb=False, data=_integers(2), n=256))
    return c


def _functional():
    c = []
    add = c.append
    for fn in (F.relu, F.sigmoid, F.tanh, F.silu, F.gelu, F.elu, F.selu, F.softplus,
               F.hardsigmoid, F.hardswish, F.hardtanh, F.relu6):
        add(Case(f"F.{fn.__name__}", "functional",
                 lambda fn=fn: _wrap(lambda x: torch.round(fn(x) * 16)), [(8,)], kif=(1, 2, 4),
                 perturb=False))
    add(Case("F.linear[bias]", "functional", lambda: _FLinear(8, 4), [(8,)]))
    add(Case("F.linear[nobias]", "functional", lambda: _FLinear(8, 4, False), [(8,)]))
    add(Case("F.conv1d", "functional", lambda: _FConv(1, 3, 4, 3, padding=1), [(3, 10)]))
    add(Case("F.conv2d", "functional", lambda: _FConv(2, 3, 4, 3, padding=1), [(3, 6, 6)]))
    add(Case("F.conv2d[groups]", "functional", lambda: _FConv(2, 4, 4, 3, groups=2),
             [(4, 6, 6)]))
    add(Case("F.conv3d", "functional", lambda: _FConv(3, 2, 4, 3, padding=1), [(2, 4, 4, 4)]))
    add(Case("F.batch_norm", "functional", _f_batch_norm, [(4,)], kif=(1, 2, 4), perturb=False))
    for name, fn, shape in [
            ("F.max_pool1d", partial(F.max_pool1d, kernel_size=2), (3, 8)),
            ("F.max_pool2d", partial(F.max_pool2d, kernel_size=2), (3, 4, 4)),
            ("F.max_pool3d", partial(F.max_pool3d, kernel_size=2), (2, 4, 4, 4)),
            ("F.avg_pool1d", partial(F.avg_pool1d, kernel_size=2), (3, 8)),
            ("F.avg_pool2d", partial(F.avg_pool2d, kernel_size=2), (3, 4, 4)),
            ("F.avg_pool3d", partial(F.avg_pool3d, kernel_size=2), (2, 4, 4, 4)),
            ("F.avg_pool2d[pad,valid count]",
             partial(F.avg_pool2d, kernel_size=2, padding=1, count_include_pad=False), (3, 4, 4)),
            ("F.adaptive_max_pool1d", partial(F.adaptive_max_pool1d, output_size=1), (3, 8)),
            ("F.adaptive_avg_pool2d", partial(F.adaptive_avg_pool2d, output_size=1), (3, 4, 4)),
            ("F.adaptive_max_pool3d", partial(F.adaptive_max_pool3d, output_size=1),
             (2, 2, 2, 2)),
            ("F.adaptive_avg_pool3d", partial(F.adaptive_avg_pool3d, output_size=1),
             (2, 2, 2, 2)),
            ("F.dropout", lambda x: F.dropout(x, p=0.5, training=False), (8,)),
            ("F.dropout1d", lambda x: F.dropout1d(x, p=0.5, training=False), (8,)),
            ("F.alpha_dropout", lambda x: F.alpha_dropout(x, p=0.5, training=False), (8,)),
            ("F.leaky_relu", lambda x: F.leaky_relu(x, negative_slope=0.125), (8,)),
            ("F.hardtanh[-2,2]", lambda x: F.hardtanh(x, min_val=-2.0, max_val=2.0), (8,)),
            ("F.pad[constant]", partial(F.pad, pad=(1, 2), mode="constant", value=0), (4, 6)),
            ("F.pad[replicate]", partial(F.pad, pad=(1, 2), mode="replicate"), (4, 6)),
            ("F.pad[reflect]", partial(F.pad, pad=(1, 2), mode="reflect"), (4, 6)),
            ("F.pad[circular]", partial(F.pad, pad=(1, 2), mode="circular"), (4, 6)),
            ("F.pad[(2,3)]", lambda x: F.pad(x, (2, 3), mode="constant", value=0), (5,)),
            ("F.interpolate[scale int]",
             partial(F.interpolate, scale_factor=2, mode="nearest"), (3, 4, 4)),
            ("F.interpolate[scale tuple]",
             partial(F.interpolate, scale_factor=(2, 3), mode="nearest"), (3, 4, 4)),
            ("F.interpolate[size tuple]",
             partial(F.interpolate, size=(8, 8), mode="nearest"), (3, 4, 4)),
            ("F.interpolate[size int]", partial(F.interpolate, size=8, mode="nearest"),
             (3, 4, 4)),
            ("F.pixel_shuffle", lambda x: F.pixel_shuffle(x, 2), (12, 4, 4)),
            ("F.pixel_unshuffle", lambda x: F.pixel_unshuffle(x, 2), (3, 4, 4))]:
        add(Case(name, "functional", lambda fn=fn: _wrap(fn), [shape]))
    add(Case("F.prelu[scalar]", "functional", lambda: _FPReLU(1), [(8,)]))
    add(Case("F.prelu[channels]", "functional", lambda: _FPReLU(4), [(4, 6)]))
    add(Case("F.elu[alpha 0.5]", "functional",
             lambda: _wrap(lambda x: torch.round(F.elu(x, alpha=0.5) * 16)), [(8,)],
             kif=(1, 2, 4), perturb=False))
    for rank, shape in ((1, (3, 6)), (2, (3, 4, 4)), (3, (2, 3, 3, 3))):
        add(Case(f"F.conv_transpose{rank}d", "functional",
                 lambda rank=rank, shape=shape: _FConvTranspose(rank, shape[0], 4, 3), [shape]))
    add(Case("F.embedding", "functional", _f_embedding, [(3,)], kif=(0, 3, 0), perturb=False,
             data=_integers(3), n=1024))
    return c


def _tensor_functions():
    c = []
    add = c.append
    two = [(8,), (8,)]
    for name, fn in [("x+y", lambda x, y: x + y), ("x-y", lambda x, y: x - y),
                     ("x*y", lambda x, y: x * y), ("round(x/4)", lambda x, y: torch.round(x / 4)),
                     ("maximum", lambda x, y: torch.maximum(x, y)),
                     ("minimum", lambda x, y: torch.minimum(x, y)),
                     ("cat", lambda x, y: torch.cat([x, y], dim=-1)),
                     ("stack", lambda x, y: torch.stack([x, y], dim=0).sum(0)),
                     ("torch.add", lambda x, y: torch.add(x, y)),
                     ("torch.sub", lambda x, y: torch.sub(x, y)),
                     ("torch.mul", lambda x, y: torch.mul(x, y)),
                     ("round(torch.div(x,4))", lambda x, y: torch.round(torch.div(x, 4)))]:
        add(Case(name, "tensor functions", lambda fn=fn: _wrap(fn, 2), two))
    for name, fn in [("zeros_like", lambda x: x + torch.zeros_like(x)),
                     ("ones_like", lambda x: x + torch.ones_like(x)),
                     ("full_like", lambda x: x + torch.full_like(x, 42)),
                     ("ones", lambda x: x + torch.ones(x.shape, dtype=torch.int32)),
                     ("zeros", lambda x: x + torch.zeros(x.shape, dtype=torch.int32)),
                     ("full", lambda x: x + torch.full(x.shape, 42, dtype=torch.int32))]:
        add(Case(name, "tensor functions", lambda fn=fn: _wrap(fn), [(8,)]))
    for name, fn in [("x&y", lambda x, y: x & y), ("x|y", lambda x, y: x | y),
                     ("x^y", lambda x, y: x ^ y),
                     ("bitwise_and", lambda x, y: torch.bitwise_and(x, y)),
                     ("bitwise_or", lambda x, y: torch.bitwise_or(x, y)),
                     ("bitwise_xor", lambda x, y: torch.bitwise_xor(x, y))]:
        add(Case(name, "tensor functions", lambda fn=fn: _wrap(fn, 2), two, kif=(1, 3, 0),
                 data=_int32_grid))
    add(Case("~x.to(bool)", "tensor functions", lambda: _wrap(lambda x: ~(x.to(torch.bool))),
             [(16,)], kif=(1, 1, 0)))
    for name, fn, shape, kif in [
            ("sum", lambda x: torch.sum(x, dim=-1), (4, 8), (1, 2, 2)),
            ("mean", lambda x: torch.mean(x, dim=-1), (4, 8), (1, 2, 2)),
            ("prod", lambda x: torch.prod(x, dim=-1), (4, 3), (1, 1, 2)),
            ("amax", lambda x: torch.amax(x, dim=-1), (4, 8), (1, 2, 2)),
            ("amin", lambda x: torch.amin(x, dim=-1), (4, 8), (1, 2, 2)),
            ("all", lambda x: torch.all(x < 0, dim=-1), (4, 8), (1, 2, 2)),
            ("any", lambda x: torch.any(x < 0, dim=-1), (4, 8), (1, 2, 2)),
            ("abs", torch.abs, (8,), (1, 4, 4)),
            ("clamp", partial(torch.clamp, min=-4.0, max=4.0), (8,), (1, 4, 4)),
            ("sign", torch.sign, (8,), (1, 4, 4)),
            ("floor", torch.floor, (8,), (1, 4, 4)),
            ("ceil", torch.ceil, (8,), (1, 4, 4)),
            ("round", torch.round, (8,), (1, 4, 4)),
            ("argmax", lambda x: torch.argmax(x, dim=-1), (8,), (1, 4, 4)),
            ("argmin", lambda x: torch.argmin(x, dim=-1), (8,), (1, 4, 4)),
            ("amax[8]", lambda x: torch.amax(x, dim=-1), (8,), (1, 4, 4)),
            ("amin[8]", lambda x: torch.amin(x, dim=-1), (8,), (1, 4, 4)),
            ("x[:, :4]", lambda x: x[:, :4], (8, 8), (1, 4, 4)),
            ("x[:, 1]", lambda x: x[:, 1], (4, 8), (1, 4, 4)),
            ("x[..., :4]", lambda x: x[..., :4], (4, 8), (1, 4, 4)),
            ("x[:, None, :]", lambda x: x[:, None, :], (4, 8), (1, 4, 4)),
            ("torch.permute", lambda x: torch.permute(x, (0, 2, 1)), (4, 3), (1, 4, 4)),
            ("torch.transpose", lambda x: torch.transpose(x, 1, 2), (4, 3, 2), (1, 4, 4)),
            ("squeeze(unsqueeze)", lambda x: torch.squeeze(torch.unsqueeze(x, 1), 1), (4,),
             (1, 4, 4)),
            ("split", lambda x: torch.split(x, 3, dim=-1)[0] + torch.split(x, 3, dim=-1)[1],
             (6,), (1, 4, 4)),
            ("chunk", lambda x: torch.chunk(x, 2, dim=-1)[0] - torch.chunk(x, 2, dim=-1)[1],
             (6,), (1, 4, 4)),
            ("split[sections]", lambda x: torch.split(x, [2, 4], dim=-1)[0].sum(-1)
             + torch.split(x, [2, 4], dim=-1)[1].sum(-1), (6,), (1, 4, 4)),
            ("flatten", lambda x: torch.flatten(x, start_dim=1), (3, 4), (1, 4, 4)),
            ("squeeze()", lambda x: torch.squeeze(torch.unsqueeze(x, 1)), (4,), (1, 4, 4)),
            ("moveaxis", lambda x: torch.moveaxis(x, 1, 2), (2, 3, 4), (1, 4, 4)),
            ("repeat_interleave", lambda x: torch.repeat_interleave(x, 2, dim=-1), (8,),
             (1, 2, 2)),
            ("tile", lambda x: torch.tile(x, (1, 2)), (4,), (1, 2, 2)),
            ("max(dim).values", lambda x: torch.max(x, dim=-1).values, (4, 8), (1, 2, 2)),
            ("min(dim).values", lambda x: torch.min(x, dim=-1).values, (4, 8), (1, 2, 2)),
            ("sort(descending).values",
             lambda x: torch.sort(x, dim=-1, descending=True).values, (6,), (1, 4, 4)),
            ("count_nonzero", lambda x: torch.count_nonzero(x, dim=-1), (4, 6), (1, 2, 0)),
            ("torch.reshape", lambda x: torch.reshape(x, (-1, 2)), (3, 4), (1, 4, 4))]:
        add(Case(name, "tensor functions", lambda fn=fn: _wrap(fn), [shape], kif=kif))
    for name, fn, shapes in [("matmul", lambda x, y: torch.matmul(x, y), [(4, 3), (3, 2)]),
                             ("x@y", lambda x, y: x @ y, [(4, 3), (3, 2)]),
                             ("einsum", lambda x, y: torch.einsum("...ij,...jk->...ik", x, y),
                              [(4, 3), (3, 2)]),
                             ("x==y", lambda x, y: x == y, two),
                             ("x>y", lambda x, y: x > y, two),
                             ("x>=y", lambda x, y: x >= y, two),
                             ("x<y", lambda x, y: x < y, two),
                             ("x<=y", lambda x, y: x <= y, two),
                             ("where", lambda x, y: torch.where(x > 0, x, y), two)]:
        add(Case(name, "tensor functions", lambda fn=fn: _wrap(fn, 2), shapes, kif=(1, 2, 4)))
    return c


def _methods():
    c = []
    for name, fn, shape, kif in [
            ("x.reshape(1,-1)", lambda x: x.reshape(1, -1), (3, 4), (1, 4, 4)),
            ("x.permute(0,2,1)", lambda x: x.permute(0, 2, 1), (4, 3), (1, 4, 4)),
            ("x.transpose(1,2)", lambda x: x.transpose(1, 2), (4, 3, 2), (1, 4, 4)),
            ("x.unsqueeze(1).squeeze(1)", lambda x: x.unsqueeze(1).squeeze(1), (4,), (1, 4, 4)),
            ("x.unsqueeze(1).squeeze()", lambda x: x.unsqueeze(1).squeeze(), (4,), (1, 4, 4)),
            ("x.flatten(start_dim=1)", lambda x: x.flatten(start_dim=1), (3, 4), (1, 4, 4)),
            ("x.view(-1,2)", lambda x: x.view(-1, 2), (2, 4), (1, 4, 4)),
            ("x.contiguous().reshape(-1)", lambda x: x.contiguous().reshape(-1), (2, 4),
             (1, 4, 4)),
            ("x.clone()+x.detach()", lambda x: x.clone() + x.detach(), (8,), (1, 4, 4)),
            ("x.to(float32)", lambda x: x.to(torch.float32), (8,), (1, 4, 4)),
            ("x.to(uint8)", lambda x: x.to(torch.uint8), (8,), (1, 4, 4)),
            ("x.to(int8)", lambda x: x.to(torch.int8), (8,), (1, 4, 4)),
            ("x.to(bool)", lambda x: x.to(torch.bool), (8,), (1, 4, 4)),
            ("x.sum(keepdim)", lambda x: x.sum(dim=-1, keepdim=True), (4, 8), (1, 2, 2)),
            ("x.sum(dim)", lambda x: x.sum(dim=-1), (4, 8), (1, 2, 2)),
            ("x.mean(dim)", lambda x: x.mean(dim=-1), (4, 8), (1, 2, 2)),
            ("x.amax(dim)", lambda x: x.amax(dim=-1), (4, 8), (1, 2, 2)),
            ("x.max(dim).values", lambda x: x.max(dim=-1).values, (8,), (1, 4, 4)),
            ("x.argmax", lambda x: x.argmax(dim=-1), (8,), (1, 4, 4)),
            ("x.argmin", lambda x: x.argmin(dim=-1), (8,), (1, 4, 4)),
            ("x.clamp", lambda x: x.clamp(min=-2.0, max=2.0), (8,), (1, 4, 4)),
            ("x.clip", lambda x: x.clip(-1.0, 1.0), (8,), (1, 4, 4)),
            ("x.expand", lambda x: x.unsqueeze(1).expand(-1, 3, -1), (4,), (1, 4, 4)),
            ("x.repeat", lambda x: x.repeat(1, 2, 1), (3, 4), (1, 4, 4)),
            ("x.mT", lambda x: x.mT, (3, 4), (1, 4, 4)),
            ("x.sigmoid", lambda x: torch.round(x.sigmoid() * 16), (8,), (1, 2, 4)),
            ("x.reshape(x.shape[0],-1)", lambda x: x.reshape(x.shape[0], -1), (3, 4), (1, 4, 4)),
            ("x+x.ndim", lambda x: x + x.ndim, (8,), (1, 4, 4)),
            ("x[..., :x.size(-1)//2]", lambda x: x[..., : x.size(-1) // 2], (8,), (1, 4, 4))]:
        c.append(Case(name, "methods", lambda fn=fn: _wrap(fn), [shape], kif=kif))
    return c


def _must_fail():
    return [
        Case("torch.max(x).indices", "must fail",
             lambda: _wrap(lambda x: torch.max(x, dim=-1).indices), [(8,)],
             fails=("NotImplementedError", "indices")),
        Case("x.requires_grad", "must fail", lambda: _wrap(lambda x: x.requires_grad), [(8,)],
             fails=("AttributeError", "requires_grad")),
        Case("F.softmax", "must fail", lambda: _wrap(lambda x: F.softmax(x, dim=-1)), [(8,)],
             fails=("NotImplementedError", "softmax")),
    ]


def cases():
    """Every case of spec §6.2, in groups: modules, functional, tensor functions, methods,
    must fail."""
    return _modules() + _functional() + _tensor_functions() + _methods() + _must_fail()


def _table(x):
    """round(x * 16): table functions are compared after this quantization (§6.2)."""
    return torch.round(x * 16)


def coverage_cases():
    """One model for every module class, function name and method of frontends.md §4.3-§4.5
    that the §6.2 models do not reach, each naming the node it exists for. Inputs of table
    functions are shifted into their domains (log of x + 1 on unsigned inputs, arcsin of x/8)."""
    pos, half = (0, 2, 4), (1, 2, 4)  # [0, 4) and [-4, 4) with 4 fractional bits
    one = [
        ("F.adaptive_max_pool2d", lambda x: F.adaptive_max_pool2d(x, 1), (2, 4, 4), None),
        ("F.adaptive_avg_pool1d", lambda x: F.adaptive_avg_pool1d(x, 1), (2, 4), None),
        # F.upsample and F.upsample_nearest call F.interpolate, which fx records.
        ("F.upsample", lambda x: F.upsample(x, scale_factor=2, mode="nearest"), (3, 4, 4),
         "call_function:torch.nn.functional.interpolate"),
        ("F.upsample_nearest", lambda x: F.upsample_nearest(x, scale_factor=2), (3, 4, 4),
         "call_function:torch.nn.functional.interpolate"),
        ("F.dropout2d", lambda x: F.dropout2d(x, training=False), (3, 4, 4), None),
        ("F.dropout3d", lambda x: F.dropout3d(x, training=False), (2, 2, 2, 2), None),
        # F.sigmoid and F.tanh call the tensor methods, which fx records.
        ("F.sigmoid", lambda x: _table(F.sigmoid(x)), (8,), "call_method:sigmoid"),
        ("F.tanh", lambda x: _table(F.tanh(x)), (8,), "call_method:tanh"),
        ("F.softsign", lambda x: _table(F.softsign(x)), (8,), None),
        ("F.logsigmoid", lambda x: _table(F.logsigmoid(x)), (8,), None),
        ("torch.clip", lambda x: torch.clip(x, -1.0, 1.0), (8,), None),
        ("torch.movedim", lambda x: torch.movedim(x, 1, 2), (2, 3, 4), None),
        ("torch.bitwise_not", lambda x: torch.bitwise_not(x.to(torch.bool)), (16,), None),
        ("torch.divide", lambda x: torch.round(torch.divide(x, 4)), (8,), None),
        ("torch.true_divide", lambda x: torch.round(torch.true_divide(x, 4)), (8,), None),
        ("torch.floor_divide", lambda x: torch.floor_divide(x, 2), (8,), None),
        ("torch.remainder", lambda x: torch.remainder(x, 2), (8,), None),
        ("torch.relu", torch.relu, (8,), None),
        ("torch.absolute", torch.absolute, (8,), None),
        ("torch.neg", torch.neg, (8,), None),
        ("torch.negative", torch.negative, (8,), None),
        ("torch.square", torch.square, (8,), None),
        ("torch.sigmoid", lambda x: _table(torch.sigmoid(x)), (8,), None),
        ("torch.selu", lambda x: _table(torch.selu(x)), (8,), None),
        ("torch.tanh", lambda x: _table(torch.tanh(x)), (8,), None),
        ("torch.sinh", lambda x: _table(torch.sinh(x)), (8,), None),
        ("torch.cosh", lambda x: _table(torch.cosh(x)), (8,), None),
        ("torch.exp", lambda x: _table(torch.exp(x)), (8,), None),
        ("torch.expm1", lambda x: _table(torch.expm1(x)), (8,), None),
        ("torch.sin", lambda x: _table(torch.sin(x)), (8,), None),
        ("torch.cos", lambda x: _table(torch.cos(x)), (8,), None),
        ("torch.tan", lambda x: _table(torch.tan(x / 4)), (8,), None),
        ("torch.arctan", lambda x: _table(torch.arctan(x)), (8,), None),
        ("torch.atan", lambda x: _table(torch.atan(x)), (8,), None),
        ("torch.arcsinh", lambda x: _table(torch.arcsinh(x)), (8,), None),
        ("torch.asinh", lambda x: _table(torch.asinh(x)), (8,), None),
    ]
    for name in ("arcsin", "asin", "arccos", "acos", "arctanh", "atanh"):
        fn = getattr(torch, name)
        one.append((f"torch.{name}", lambda x, fn=fn: _table(fn(x / 8)), (8,), None))
    c = [Case(name, "coverage", lambda fn=fn: _wrap(fn), [shape], kif=half,
              target=target or "call_function:" + name.replace("F.", "torch.nn.functional.", 1))
         for name, fn, shape, target in one]
    for name in ("log", "log1p", "log2", "log10", "sqrt", "rsqrt", "reciprocal", "arccosh",
                 "acosh"):
        fn = getattr(torch, name)
        c.append(Case(f"torch.{name}", "coverage", lambda fn=fn: _wrap(lambda x: _table(fn(x + 1))),
                      [(8,)], kif=pos, target=f"call_function:torch.{name}"))
    two = [("torch.concat", lambda x, y: torch.concat([x, y], dim=-1)),
           ("torch.concatenate", lambda x, y: torch.concatenate([x, y], axis=-1)),
           ("torch.subtract", torch.subtract), ("torch.multiply", torch.multiply)]
    for name in ("eq", "ne", "not_equal", "gt", "greater", "ge", "greater_equal", "lt", "less",
                 "le", "less_equal"):
        two.append((f"torch.{name}", getattr(torch, name)))
    two += [("operator.ne", lambda x, y: x != y)]
    c += [Case(name, "coverage", lambda fn=fn: _wrap(fn, 2), [(8,), (8,)], kif=half,
               target=f"call_function:{name}") for name, fn in two]
    # torch.equal gives one bool for the whole tensors, so a batch must be split into samples.
    c.append(Case("torch.equal", "coverage", lambda: _wrap(torch.equal, 2), [(2,), (2,)],
                  kif=(0, 2, 0), target="call_function:torch.equal", per_sample=True))
    for name, fn, shape, target, per_sample in [
            ("operator.mod", lambda x: x[..., : x.size(-1) % 5], (8,), None, False),
            ("operator.neg", lambda x: -x, (8,), None, False),
            ("operator.pos", lambda x: +x, (8,), None, False),
            ("x.T", lambda x: x.T, (4,), "call_function:builtins.getattr", True),
            ("x.t()", lambda x: x.t(), (4,), "call_method:t", True),
            ("x.size()", lambda x: x.reshape(x.size()), (3, 4), "call_method:size", False),
            ("x.float()", lambda x: x.float(), (8,), "call_method:float", False),
            ("x.double()", lambda x: x.double(), (8,), "call_method:double", False),
            ("x.int()", lambda x: x.int(), (8,), "call_method:int", False),
            ("x.long()", lambda x: x.long(), (8,), "call_method:long", False),
            ("x.to(int16)", lambda x: x.to(torch.int16), (8,), "call_method:to", False),
            ("x.to(int32)", lambda x: x.to(dtype=torch.int32), (8,), "call_method:to", False),
            ("x.to(int64)", lambda x: x.to(torch.int64), (8,), "call_method:to", False),
            ("x.to(device)", lambda x: x.to(torch.device("cpu")), (8,), "call_method:to", False),
            ("x.prod(dim)", lambda x: x.prod(dim=-1), (4, 3), "call_method:prod", False),
            ("x.amin(dim)", lambda x: x.amin(dim=-1), (4, 8), "call_method:amin", False),
            ("x.min(dim).values", lambda x: x.min(dim=-1).values, (4, 8), "call_method:min",
             False),
            ("x.all(dim)", lambda x: (x < 0).all(dim=-1), (4, 8), "call_method:all", False),
            ("x.any(dim)", lambda x: (x < 0).any(dim=-1), (4, 8), "call_method:any", False),
            ("x.sum()", lambda x: x.sum(), (4, 8), "call_method:sum", True),
            ("x.exp()", lambda x: _table(x.exp()), (8,), "call_method:exp", False),
            ("x.abs()", lambda x: x.abs(), (8,), "call_method:abs", False)]:
        c.append(Case(name, "coverage", lambda fn=fn: _wrap(fn), [shape],
                      kif=(1, 1, 2) if "prod" in name else half,
                      target=target or f"call_function:{name}", per_sample=per_sample))
    c.append(Case("x.expand_as(y)", "coverage", lambda: _wrap(
        lambda x, y: x.unsqueeze(1).expand_as(y), 2), [(4,), (3, 4)], kif=half,
        target="call_method:expand_as"))
    c.append(Case("x.type_as(y)", "coverage", lambda: _wrap(lambda x, y: x.type_as(y) + y, 2),
                  [(8,), (8,)], kif=half, target="call_method:type_as"))
    for cls, shape in [(nn.Dropout1d, (3, 4)), (nn.Dropout2d, (3, 4, 4)),
                       (nn.Dropout3d, (2, 2, 2, 2)), (nn.AlphaDropout, (8,)),
                       (nn.FeatureAlphaDropout, (3, 4)), (nn.AvgPool3d, (2, 4, 4, 4))]:
        c.append(Case(cls.__name__, "coverage", lambda cls=cls: _wrap(
            cls(2) if cls is nn.AvgPool3d else cls(0.5)), [shape],
            target=f"module:{cls.__module__}.{cls.__name__}"))
    for make, shape in [(lambda: nn.ConstantPad3d(1, 0.5), (2, 3, 3, 3)),
                        (lambda: nn.ReflectionPad3d(1), (2, 3, 3, 3)),
                        (lambda: CircularPad3d(1), (2, 3, 3, 3))]:
        cls = type(make())
        c.append(Case(cls.__name__, "coverage", lambda make=make: _wrap(make()), [shape],
                      target=f"module:{cls.__module__}.{cls.__name__}"))
    c.append(Case("BatchNorm3d", "coverage", lambda: _batch_norm_module(nn.BatchNorm3d(2)),
                  [(2, 2, 2, 2)], kif=(1, 2, 4), perturb=False,
                  target="module:torch.nn.modules.batchnorm.BatchNorm3d"))
    return c
