"""Models for the torch tracer's conversion tests beyond torch_models.py, and broken or
unsupported graphs with the message the tracer must give.

`differences()`: where the reference computes another value than torch (a [quirk] of spec
frontends.md §4) or fails on something torch defines, a model on which torch's own forward pass is
the oracle; each Case's `target` names the difference (README "Differences from the reference").
`extras()`: forms of the table's rows the reference's models never use (keyword and positional
spellings, one-sided clamps, full reductions, every Tensor method of the unary map...), so that
every row of the tracer's table is exercised by a model.
`regressions()`: the smallest models of bugs found by hand or by the random-module sweep
(random_modules.py), each named after what went wrong.
`refusals()`: graphs that must fail, each with the text its message must contain.
"""
import collections
import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from torch_models import Case, _wrap


def _table(x):
    return torch.round(x * 16)


class _Buffer(nn.Module):
    """x op a float buffer read by get_attr."""

    def __init__(self, fn, values):
        super().__init__()
        self.register_buffer("w", torch.tensor(values, dtype=torch.float32))
        self.fn = fn

    def forward(self, x):
        return self.fn(x, self.w)


class _ConstantColumn(nn.Module):
    """A Linear layer whose input has constant columns (zeros padded in), which trips the
    reference's CMVM assertion."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(F.pad(x, (1, 1)))


class _PaddingIdx(nn.Module):
    """Embedding with padding_idx whose row is not zero: torch does not zero it at inference."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(8, 4, padding_idx=2)
        with torch.no_grad():
            w = np.random.default_rng(5).standard_normal((8, 4)).astype(np.float32)
            self.emb.weight.copy_(torch.tensor(np.round(w * 4) / 4))

    def forward(self, x):
        return self.emb(x.to(torch.long))


class _Table(nn.Module):
    """round(act(x) * 16) for an activation module built with its own parameters."""

    def __init__(self, act):
        super().__init__()
        self.act = act

    def forward(self, x):
        return _table(self.act(x))


def _integers(seed, shape=(3,), high=8):
    return lambda n: [np.random.default_rng(seed).integers(0, high, size=(n,) + shape)
                      .astype(np.float32)]


def differences():
    """One model per deliberate difference from the reference (torch is the oracle)."""
    half, pos = (1, 2, 4), (0, 2, 4)
    c = []

    def add(name, make, shapes, kif=half, **kw):
        c.append(Case(name, "differences", make, shapes, kif, target=name, **kw))

    add("AvgPool2d counts the padding by default",
        lambda: _wrap(nn.AvgPool2d(2, padding=1)), [(3, 4, 4)], kif=(1, 4, 4))
    add("AvgPool1d counts the padding by default",
        lambda: _wrap(nn.AvgPool1d(2, stride=1, padding=1)), [(2, 6)], kif=(1, 4, 4))
    add("torch.chunk sizes (6 in 4 chunks: 2, 2, 2)",
        lambda: _wrap(lambda x: torch.chunk(x, 4, -1)[0] - torch.chunk(x, 4, -1)[2]), [(6,)])
    add("Embedding padding_idx row kept", _PaddingIdx, [(3,)], kif=(0, 3, 0), perturb=False,
        data=_integers(6), n=256)
    add("mean keepdim", lambda: _wrap(lambda x: x - x.mean(-1, keepdim=True)), [(4, 8)],
        kif=(1, 2, 2))
    add("torch.mean keepdim", lambda: _wrap(lambda x: x - torch.mean(x, dim=-1, keepdim=True)),
        [(4, 8)], kif=(1, 2, 2))
    add("AdaptiveAvgPool2d keeps its axes",
        lambda: _wrap(lambda x: nn.functional.adaptive_avg_pool2d(x, 1).squeeze(-1).squeeze(-1)),
        [(2, 4, 4)], kif=(1, 2, 2))
    add("torch.max(a, b)", lambda: _wrap(lambda x, y: torch.max(x, y), 2), [(8,), (8,)])
    add("torch.min(a, b)", lambda: _wrap(lambda x, y: torch.min(x, y), 2), [(8,), (8,)])
    add("x.max(dim)[0] and [1]",
        lambda: _wrap(lambda x: x.max(-1)[0] + x.max(-1)[1] + torch.min(x, -1)[1]), [(4, 8)],
        kif=(1, 2, 2))
    add("positional keepdim of methods", lambda: _wrap(lambda x: x - x.sum(-1, True)), [(4, 8)],
        kif=(1, 2, 2))
    add("Linear on constant columns", _ConstantColumn, [(4,)])
    add("Hardtanh module bounds", lambda: _wrap(nn.Hardtanh(-2.0, 2.0)), [(8,)], perturb=False)
    add("ELU module alpha", lambda: _Table(nn.ELU(alpha=0.5)), [(8,)], perturb=False)
    add("GELU tanh approximation", lambda: _Table(nn.GELU(approximate="tanh")), [(8,)],
        perturb=False)
    add("Softplus beta and threshold", lambda: _Table(nn.Softplus(beta=2, threshold=1)), [(8,)],
        perturb=False)
    add("F.softplus beta", lambda: _wrap(lambda x: _table(F.softplus(x, beta=0.5))), [(8,)])
    for mode in ("reflect", "replicate", "circular"):
        add(f"Conv2d padding_mode {mode}",
            lambda mode=mode: _wrap(nn.Conv2d(3, 4, 3, padding=1, padding_mode=mode)),
            [(3, 6, 6)], kif=(1, 4, 4))
    add("Conv1d same circular",
        lambda: _wrap(nn.Conv1d(2, 3, 4, padding="same", padding_mode="circular")), [(2, 8)],
        kif=(1, 4, 4))
    add("MaxPool2d ceil_mode", lambda: _wrap(nn.MaxPool2d(2, ceil_mode=True)), [(3, 5, 5)],
        kif=(1, 4, 4))
    add("AvgPool2d ceil_mode with padding",
        lambda: _wrap(nn.AvgPool2d(2, padding=1, ceil_mode=True)), [(3, 6, 6)], kif=(1, 4, 4))
    add("AvgPool2d ceil_mode valid count",
        lambda: _wrap(nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False)), [(3, 5, 5)],
        kif=(1, 4, 4))
    add("AvgPool2d divisor_override", lambda: _wrap(nn.AvgPool2d(2, divisor_override=2)),
        [(3, 4, 4)], kif=(1, 4, 4))
    add("AdaptiveAvgPool2d to 2", lambda: _wrap(nn.AdaptiveAvgPool2d(2)), [(2, 4, 4)],
        kif=(1, 4, 4))
    add("AdaptiveMaxPool1d to 3", lambda: _wrap(nn.AdaptiveMaxPool1d(3)), [(2, 6)],
        kif=(1, 4, 4))
    add("AdaptiveAvgPool2d to (None, 2)", lambda: _wrap(nn.AdaptiveAvgPool2d((None, 2))),
        [(2, 3, 4)], kif=(1, 4, 4))
    add("Upsample scale 1.5", lambda: _wrap(nn.Upsample(scale_factor=1.5)), [(2, 4, 4)])
    add("Upsample size (6, 10)", lambda: _wrap(nn.Upsample(size=(6, 10))), [(2, 4, 4)])
    add("interpolate scale 2.5 recomputed",
        lambda: _wrap(lambda x: F.interpolate(x, scale_factor=2.5, recompute_scale_factor=True)),
        [(2, 3)])
    add("F.pad negative crops", lambda: _wrap(lambda x: F.pad(x, (-1, 2, 1, -2))), [(4, 6)])
    add("x.T reverses every axis", lambda: _wrap(lambda x: x.T), [(2, 3)], per_sample=True)
    add("squeeze of a longer axis is a no-op", lambda: _wrap(lambda x: x.squeeze(1)), [(4,)])
    add("expand adds leading axes", lambda: _wrap(lambda x: x.expand(3, -1, -1)), [(4,)],
        per_sample=True)
    add("operator.pos on a tensor", lambda: _wrap(lambda x: +x), [(8,)])
    add("~ of an integer tensor", lambda: _wrap(lambda x: ~x.to(torch.int8)), [(8,)],
        kif=(1, 3, 0))
    add("floor_divide by 3", lambda: _wrap(lambda x: torch.floor_divide(x, 3)), [(8,)])
    add("remainder by 3", lambda: _wrap(lambda x: torch.remainder(x, 3)), [(8,)])
    add("floor_divide by -2", lambda: _wrap(lambda x: x // -2), [(8,)])
    add("remainder by -0.5", lambda: _wrap(lambda x: x % -0.5), [(8,)])
    add("div rounding_mode floor", lambda: _wrap(lambda x: torch.div(x, 3, rounding_mode="floor")),
        [(8,)])
    add("div rounding_mode trunc", lambda: _wrap(lambda x: torch.div(x, 2, rounding_mode="trunc")),
        [(8,)])
    add("number / tensor", lambda: _wrap(lambda x: torch.round(4 / (x + 1) * 16)), [(8,)],
        kif=pos)
    return c


def extras():
    """Spellings and forms of the table's rows that the reference's models leave out."""
    half = (1, 2, 4)
    c = []

    def add(name, make, shapes, kif=half, target=None, **kw):
        c.append(Case(name, "extras", make, shapes, kif, target=target or name, **kw))

    add("torch.add alpha", lambda: _wrap(lambda x, y: torch.add(x, y, alpha=2), 2), [(8,), (8,)])
    add("torch.sub alpha", lambda: _wrap(lambda x, y: torch.sub(x, y, alpha=0.5), 2),
        [(8,), (8,)])
    add("2 - x", lambda: _wrap(lambda x: 2 - x), [(8,)])
    add("clamp min only", lambda: _wrap(lambda x: torch.clamp(x, min=-1.0)), [(8,)])
    add("clamp max tensor", lambda: _wrap(lambda x, y: x.clamp(max=y), 2), [(8,), (8,)])
    add("argmax flattened", lambda: _wrap(lambda x: torch.argmax(x)), [(4, 8)], per_sample=True)
    add("x.max() full", lambda: _wrap(lambda x: x.max()), [(4, 8)], per_sample=True)
    add("repeat_interleave without dim", lambda: _wrap(lambda x: torch.repeat_interleave(x, 2)),
        [(2, 3)], per_sample=True)
    add("moveaxis tuples", lambda: _wrap(lambda x: torch.moveaxis(x, (1, 2), (3, 1))),
        [(2, 3, 4)])
    add("split pieces and shapes",
        lambda: _wrap(lambda x: torch.split(x, 2, -1)[-1] * x.shape[-1]), [(5,)])
    add("where with a number", lambda: _wrap(lambda x: torch.where(x > 0, x, 0.5)), [(8,)])
    # Divisors that are powers of two: x / c multiplies by the reciprocal, as the reference.
    add("x / buffer", lambda: _Buffer(lambda x, w: x / w, [2.0, -4.0, 0.5, 1.0]), [(4,)],
        perturb=False)
    add("buffer - x", lambda: _Buffer(lambda x, w: w - x, [2.0, -4.0, 0.5, 1.0]), [(4,)])
    add("outputs as a tuple", lambda: _wrap(lambda x: (x + 1, x * 2)), [(4,)])
    add("x.view((2, -1))", lambda: _wrap(lambda x: x.view((2, -1))), [(2, 4)])
    add("x.permute((1, 0, 2))", lambda: _wrap(lambda x: x.permute((1, 0, 2))), [(2, 4)],
        per_sample=True)
    add("x.repeat((1, 2))", lambda: _wrap(lambda x: x.repeat((1, 2))), [(4,)])
    add("stack dim -1", lambda: _wrap(lambda x, y: torch.stack((x, y), -1), 2), [(4,), (4,)])
    add("count_nonzero all", lambda: _wrap(lambda x: torch.count_nonzero(x)), [(4, 6)],
        kif=(1, 2, 0), per_sample=True)
    add("x.round()", lambda: _wrap(lambda x: x.round()), [(8,)])
    add("Tensor arithmetic methods", lambda: _wrap(
        lambda x, y: (x.add(y, alpha=2).sub(y).mul(y).maximum(x).minimum(y) + x.div(4)
                      + x.floor_divide(2) + x.remainder(2) + x.eq(y) + x.ne(y) + x.gt(y)
                      + x.ge(y) + x.lt(y) + x.le(y)), 2), [(8,), (8,)])
    add("Tensor.matmul", lambda: _wrap(lambda x, y: x.matmul(y), 2), [(4, 3), (3, 2)])
    add("Tensor.bitwise_not", lambda: _wrap(lambda x: (x > 0).bitwise_not()), [(8,)])
    for name in ("relu", "abs", "absolute", "sign", "floor", "ceil", "square", "neg",
                 "negative"):
        add(f"Tensor.{name}", lambda name=name: _wrap(lambda x: getattr(x, name)()), [(8,)],
            target=f"call_method:{name}")
    # The table functions of the unary map as Tensor methods, inputs moved into their domains.
    shifted = {"log": 1, "log1p": 1, "log2": 1, "log10": 1, "sqrt": 1, "rsqrt": 1,
               "reciprocal": 1, "arccosh": 1, "acosh": 1}
    scaled = {"tan": 4, "arcsin": 8, "asin": 8, "arccos": 8, "acos": 8, "arctanh": 8, "atanh": 8}
    for name in ("sigmoid", "tanh", "sinh", "cosh", "exp", "expm1", "sin", "cos", "arctan", "atan",
                 "arcsinh", "asinh", *shifted, *scaled):
        def make(name=name):
            def fn(x):
                x = x + shifted[name] if name in shifted else x / scaled.get(name, 1)
                return _table(getattr(x, name)())
            return _wrap(fn)
        add(f"Tensor.{name}", make, [(8,)], kif=(0, 2, 4) if name in shifted else half,
            target=f"call_method:{name}")
    return c


def _fq(x, f=4, lo=-8.0):
    """The fake quantizer of the tests' models: round to 2^-f, clamp to [lo, -lo)."""
    return torch.clamp(torch.round(x * 2 ** f) / 2 ** f, lo, -lo - 2.0 ** -f)


class _PoolThenLinear(nn.Module):
    """A Linear layer over a 3x3 average pool of four copies of one channel: its weights on the
    copies of two overlapping windows cancel (21 and -21), and with the 53-bit coefficients of
    the division by 9 the cancelling affine coefficient kept a double rounding residue (-4 beside
    terms near 2^55) whose lsb made the last adder's step 2^-62 of the output: ELIMIT, "needs
    values wider than 64 bits"."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AvgPool2d(3, stride=1)
        self.fc = nn.Linear(16, 1)
        row = [-1, 0, -1, 0, 7, 1, -7, 0, 15, 7, -13, -1, 0, 0, 0, 0]
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([row], dtype=torch.float32) / 64)
            self.fc.bias.zero_()

    def forward(self, x):
        x = self.pool(_fq(x[:, :1].repeat(1, 4, 1, 1) * 0.75))
        return self.fc(torch.flatten(x[:, :, :2, :2], 1))


class _TwoLinearsBySix(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(2, 3), nn.Linear(3, 1)
        with torch.no_grad():
            self.a.weight.copy_(torch.tensor([[14.0, -14], [14, -2], [10, 14]]) / 8)
            self.a.bias.copy_(torch.tensor([-2.0, -14, -10]) / 8)
            self.b.weight.copy_(torch.tensor([[5.0, -5, 3]]) / 8)
            self.b.bias.zero_()

    def forward(self, x):
        return self.b(self.a(x)) / 6


class _LinearOverPadding(nn.Module):
    """A Linear layer whose rows over a padding of 0.75 are constants only (seed 160: a
    convolution's bias over its zero padding, then a Linear layer)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[-0.875, -0.875, 0, 0.5, 0.5],
                                               [-0.625, -0.125, -0.25, -0.25, 0]]))
            self.fc.bias.copy_(torch.tensor([-0.25, 0.75]))

    def forward(self, x):
        return self.fc(F.pad(x, (1, 1, 1, 1), value=0.75))


def _linear_8_3():
    fc = nn.Linear(8, 3)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[2, 2, 5, -1, -6, 3, 2, -2], [-4, 2, -5, -1, -7, 1, 5, -2],
                                      [-6, -4, -2, -6, 3, 5, 0, 3]], dtype=torch.float32) / 8)
        fc.bias.zero_()
    return _wrap(fc)


def regressions():
    """Minimal models of bugs found by hand or by the random-module sweep."""
    c = []

    def add(name, make, shapes, kif=(1, 3, 4), **kw):
        c.append(Case(name, "regressions", make, shapes, kif, target=name, **kw))

    # Products by non-dyadic constants are within about 2^-21 of the exact value, relative to its
    # range (README "Differences from the reference"); the bounds below are a few times that.
    add("Linear after AvgPool2d(3): cancelling coefficients of 1/9", _PoolThenLinear,
        [(2, 9, 9)], perturb=False, atol=2.0 ** -20)
    # The SCM adders of the double 1/0.3 and 1/9 kept steps from coefficients rounded to
    # float32, which end in long runs of zeros: x / 0.3 on integers was off by 8 and the average
    # over 9 by 1/64 of the input step.
    add("x / 0.3 on integers", lambda: _wrap(lambda x: x / 0.3), [(8,)], kif=(1, 6, 0),
        perturb=False, atol=2.0 ** -12)
    add("AvgPool2d(3) on integers", lambda: _wrap(nn.AvgPool2d(3, stride=1)), [(2, 4, 4)],
        kif=(1, 6, 0), perturb=False, atol=2.0 ** -16)
    # Two Linear layers give the coefficients of x / 6 a float32 rounding to 5 * 2^30: the
    # output came on a grid of 2^-5 instead of 2^-7 (found by random_modules.py, seed 51).
    add("x / 6 after two Linear layers", _TwoLinearsBySix, [(2,)], kif=(1, 3, 1),
        perturb=False, atol=2.0 ** -20)
    # The clamp's lower bound tests the sign of s + 8, s a sum of products known to be >= 0
    # only once CSE has made (x * 0.5) * x a square: the retrace pass then tested the top bit
    # of the now unsigned s + 8 (s >= 56) and returned -8 for the largest sums.
    add("clamp of a sum of squares after the retrace",
        lambda: _wrap(lambda x: torch.clamp((x * 0.5 * x).sum(-1), -8, 7.9375)), [(6,)],
        kif=(1, 3, 3), perturb=False)
    # max(v, o) muxed on the MSB of v - o, which for a difference known to be >= 0 (here
    # 0.5 - x / 8 in (0, 0.5]) is its top bit: -2.5 instead of -2 at x = 0 (seed 332).
    add("maximum with a difference known to be non-negative",
        lambda: _wrap(lambda x: torch.maximum(x * 0.75 - 2, x * 0.875 - 2.5)), [(8,)],
        kif=(0, 2, 4), perturb=False)
    add("minimum with a constant difference",
        lambda: _wrap(lambda x: torch.minimum(x, x + 1) + torch.maximum(x - 0.5, x)), [(8,)],
        kif=(1, 2, 4), perturb=False)
    # The solver's interval of the second column over the constant rows came out (0, 0), and
    # its stage 1 dropped the column as a zero input: 0.75 (the bias) for -0.1875.
    add("Linear over rows of a constant padding", _LinearOverPadding, [(2, 3)], kif=(1, 3, 4),
        perturb=False)
    # One-bit inputs are packed into lookup tables (spec cmvm.md §8.2); signed ones, (-1, 0),
    # gave negative addresses ("the table's interval does not cover the variable's values";
    # seed 349: a floor division by 2 before a Linear layer).
    add("Linear on signed one-bit inputs", _linear_8_3, [(8,)], kif=(1, 0, 0), perturb=False)
    add("Linear on signed one-bit halves", _linear_8_3, [(8,)], kif=(1, -1, 1), perturb=False)
    # torch's softplus is x above its threshold (20), exactly: log1p(exp(x)) is a little more,
    # and round(. * 8) of 20.3125 gave 163 for torch's 162 (seed 130).
    add("F.softplus above its default threshold",
        lambda: _wrap(lambda x: torch.round(F.softplus(x) * 8)), [(8,)], kif=(0, 5, 4),
        perturb=False)
    # With ceil_mode, torch's one window may be wider than the padded input (seed 201).
    add("AvgPool1d(2, ceil_mode=True) of one value",
        lambda: _wrap(nn.AvgPool1d(2, ceil_mode=True)), [(3, 1)], kif=(1, 3, 2), perturb=False)
    add("MaxPool1d(4, 3, padding=1, ceil_mode=True) of one value",
        lambda: _wrap(nn.MaxPool1d(4, 3, padding=1, ceil_mode=True)), [(3, 1)], kif=(1, 3, 2),
        perturb=False)
    # torch.round of a constant tie: the reference's half-to-even test slices the bits of x + 1/2
    # by x's format, which for a constant is its own value's: round(0.5) was 1 (seed 950).
    add("torch.round of constant ties", lambda: _wrap(lambda x: torch.cat(
        [x] + [torch.round(torch.clamp(x, c, c)) for c in (0.5, 2.5, -1.5, -2.5, 1.25)], -1)),
        [(2,)], kif=(1, 2, 4), perturb=False)
    # Half to even where adding 1/2 shortens the format: 2x - 1/2 on a grid of 1/2 plus 1/2 is
    # an integer, and the tie test read its lowest integer bit (round(2x - 1/2) was 2x; the
    # fake quantizer of a batch norm's output in seed 753).
    add("torch.round(2x - 0.5)", lambda: _wrap(lambda x: torch.round(x * 2 - 0.5)), [(8,)],
        kif=(0, 2, 1), perturb=False)
    add("torch.round(0.5 - x) of integers", lambda: _wrap(lambda x: torch.round(0.5 - x)), [(8,)],
        kif=(1, 3, 0), perturb=False)
    # The mux of leaky_relu(-x, 0.1) has the interval (-0.875, 1.0) on a step near 2^-30: the
    # reference's float32 count of its codes, 2^30 + 1, rounds to 2^30 and the format had a bit
    # too few: 1.0 wrapped to -1.0 (seeds 610, 760, 765, 986).
    add("F.leaky_relu(-x, 0.1) at the top of its interval",
        lambda: _wrap(lambda x: F.leaky_relu(-x, 0.1)), [(8,)], kif=(1, 0, 3), perturb=False,
        atol=2.0 ** -20)
    # x % 0.5 of values on a grid of 0.5 cancels to the constant 0, whose grid is 2^127: the
    # comparison aligned 0.5 to it and failed with ELIMIT (seed 557).
    add("comparison of a remainder that cancels to 0", lambda: _wrap(
        lambda x: (torch.remainder(torch.where(x < 0, x * 0, x), 0.5) > 0.5).float() + x),
        [(8,)], kif=(1, 2, 1), perturb=False)
    # x ^ 3 is 3 - x where 3 is all ones of the result's format; the one-bit x was complemented
    # in its own format: 1 - x (seed 586).
    add("xor of one-bit values with all ones", lambda: _wrap(lambda x: torch.cat(
        [(torch.clamp(torch.round(x), 0, 1).to(torch.int32) ^ 3).type_as(x),
         (torch.clamp(torch.round(x), 0, 1).to(torch.int32) ^ -1).type_as(x)], -1)), [(4,)],
        kif=(1, 2, 1), perturb=False)
    # argmax over copies of one value (a nearest upsampling): after CSE the comparisons of equal
    # copies cancel to the constant 0, and the retrace took NOT of that constant in its own
    # format (no bits): 0 instead of 1, and the last copy's index instead of the first (seed 87).
    add("argmax over the copies of an upsampling", lambda: _wrap(lambda x: torch.cat(
        [torch.argmax(torch.abs(F.interpolate(x, scale_factor=3)), 2, keepdim=True).type_as(x),
         torch.argmin(torch.abs(F.interpolate(x, scale_factor=3)), 2, keepdim=True).type_as(x)],
        -1)), [(2, 2)], kif=(1, 2, 4), perturb=False)
    return c


def _respell(message, op, target, new_op, new_target):
    """The message with its `op`/`target` nodes recorded as `new_op`/`new_target`."""
    for node in message["model"]["graph"]["nodes"]:
        if node["op"] == op and node["target"] == target:
            node["op"], node["target"] = new_op, new_target
    return message


def respellings():
    """(Case, edit) pairs: names of the function table that fx never records with torch 1.13
    (F.upsample and F.upsample_nearest call F.interpolate, F.sigmoid and F.tanh the methods), but
    that another torch version may send; `edit(message)` gives the message such a client sends."""
    half = (1, 2, 4)
    interpolate = ("call_function", "torch.nn.functional.interpolate")
    return [
        (Case("F.upsample as sent", "extras",
              lambda: _wrap(lambda x: F.interpolate(x, scale_factor=2, mode="nearest")),
              [(3, 4, 4)], target="call_function:torch.nn.functional.upsample"),
         lambda m: _respell(m, *interpolate, "call_function", "torch.nn.functional.upsample")),
        (Case("F.upsample_nearest as sent", "extras",
              lambda: _wrap(lambda x: F.interpolate(x, size=(8, 12), mode="nearest")),
              [(3, 4, 4)], target="call_function:torch.nn.functional.upsample_nearest"),
         lambda m: _respell(m, *interpolate, "call_function",
                            "torch.nn.functional.upsample_nearest")),
        (Case("F.sigmoid as sent", "extras", lambda: _wrap(lambda x: _table(x.sigmoid())),
              [(8,)], half, False, target="call_function:torch.nn.functional.sigmoid"),
         lambda m: _respell(m, "call_method", "sigmoid", "call_function",
                            "torch.nn.functional.sigmoid")),
        (Case("F.tanh as sent", "extras", lambda: _wrap(lambda x: _table(x.tanh())),
              [(8,)], half, False, target="call_function:torch.nn.functional.tanh"),
         lambda m: _respell(m, "call_method", "tanh", "call_function",
                            "torch.nn.functional.tanh")),
    ]


Refusal = collections.namedtuple("Refusal", "name message expect")
# message: a graph message (dict) to send; expect: text the error message must contain.


def _message(module, shapes, kif=(1, 4, 4), train=False, **kw):
    from alkaid_client.torch import export
    return export(module.train(train), [(1,) + tuple(s) for s in shapes], kif, **kw)


def _node(message, op, target=None):
    for n in message["model"]["graph"]["nodes"]:
        if n["op"] == op and (target is None or n["target"] == target):
            return n
    raise KeyError(op)


class Foo(nn.Module):
    """A third-party layer: its module names a package no plugin serves."""

    __module__ = "mypkg.layers"

    def forward(self, x):
        return x * 2


def refusals():
    lin = _message(_wrap(nn.Linear(4, 2)), [(4,)])
    r = []

    def broken(name, expect, edit, base=lin):
        m = copy.deepcopy(base)
        edit(m)
        r.append(Refusal(name, m, expect))

    def relu_of(ref):
        def edit(m):
            _node(m, "call_module")["args"] = [{"$node": ref}]
        return edit

    broken("dangling node reference", "refers to node 'nowhere', which is not in the graph",
           relu_of("nowhere"))
    broken("reference to itself", "refers to itself", relu_of("_fn"))

    def forward(m):
        nodes = m["model"]["graph"]["nodes"]
        nodes[1]["args"] = [{"$node": "output"}]
    broken("forward reference", "refers to node 'output', which comes after it", forward)

    two = _message(_wrap(lambda x: torch.relu(x) + 1), [(4,)])

    def cycle(m):
        nodes = m["model"]["graph"]["nodes"]
        relu, add = nodes[1], nodes[2]
        relu["args"] = [{"$node": add["name"]}]
    broken("cycle", "which comes after it (a forward reference or a cycle)", cycle, two)

    def short_bytes(m):
        t = m["model"]["tensors"]["_fn.weight"]
        t["data"] = t["data"][:-4]
    broken("tensor bytes do not match its shape", "_fn.weight", short_bytes)

    def bad_dtype(m):
        m["model"]["tensors"]["_fn.bias"]["dtype"] = "f3"
    broken("tensor with an unknown dtype", "_fn.bias", bad_dtype)
    broken("missing module entry", "module '_fn' is not in model.modules",
           lambda m: m["model"]["modules"].pop("_fn"))
    broken("missing tensor entry", "names tensor '_fn.weight', which is not in model.tensors",
           lambda m: m["model"]["tensors"].pop("_fn.weight"))

    def get_attr_missing(m):
        m["model"]["tensors"].pop("w")
    broken("missing get_attr tensor", "tensor 'w' is not in model.tensors", get_attr_missing,
           _message(_Buffer(lambda x, w: x * w, [1.0, 2.0, 3.0, 4.0]), [(4,)]))
    broken("payload version", "model.version is 2", lambda m: m["model"].update(version=2))
    broken("placeholders and inputs", "the graph has 1 placeholder (model inputs) but 2 inputs",
           lambda m: m["inputs"].append({"shape": [1, 4]}))

    def duplicate(m):
        nodes = m["model"]["graph"]["nodes"]
        nodes[1]["name"] = nodes[0]["name"]
    broken("duplicate node names", "node name 'x0' is used twice", duplicate)

    def output_first(m):
        nodes = m["model"]["graph"]["nodes"]
        nodes.insert(0, nodes.pop())
    broken("output not last", "the output node must be the last node", output_first)
    broken("no inputs", "inputs must be provided", lambda m: m.pop("inputs"))

    r.append(Refusal("unsupported module",
                     _message(_wrap(nn.Softmax(dim=-1)), [(4,)]),
                     "unsupported module torch.nn.modules.activation.Softmax at _fn"))
    r.append(Refusal("unsupported torch function",
                     _message(_wrap(lambda x: torch.erf(x)), [(4,)]),
                     "unsupported function torch.erf at node erf"))
    r.append(Refusal("unsupported operator",
                     _message(_wrap(lambda x: x.to(torch.int32) << 1), [(4,)]),
                     "unsupported function operator.lshift at node lshift"))
    r.append(Refusal("unsupported method",
                     _message(_wrap(lambda x: x.cumsum(0)), [(4,)]),
                     "unsupported method Tensor.cumsum at node cumsum"))
    r.append(Refusal("module of a package without plugin",
                     _message(_wrap(Foo()), [(4,)], leaf_modules=(Foo,)),
                     "unsupported module mypkg.layers.Foo at _fn: "))
    r.append(Refusal("dropout in training mode",
                     _message(_wrap(nn.Dropout(0.5)), [(4,)], train=True),
                     "dropout in training mode is not supported"))
    r.append(Refusal("F.dropout with its default training=True",
                     _message(_wrap(lambda x: F.dropout(x, 0.5)), [(4,)]),
                     "dropout in training mode is not supported"))
    r.append(Refusal("division by a traced tensor",
                     _message(_wrap(lambda x, y: x / y, 2), [(4,), (4,)]),
                     "division of array by array is not supported"))
    # torch's -inf where a dilated window reads only padding has no fixed-point value (seed 661;
    # the reference returns its pad constant, -2^31).
    r.append(Refusal("max pool window in the padding only",
                     _message(_wrap(nn.MaxPool1d(2, 2, padding=1, dilation=2)), [(2, 1)]),
                     "output 0 of the max pool reads only padding (torch gives -inf there)"))
    return r


def mutations(messages, count, seed=0):
    """`count` graph messages made by breaking the given ones at random, as a careless or hostile
    client might: an argument, keyword or attribute replaced by a value of another kind, a target
    swapped for another name of the table, a node's field dropped, a tensor's shape changed.
    Deterministic for a seed."""
    import random

    from alkaid_client import _schema
    rng = random.Random(seed)
    functions = list(_schema.PAYLOADS["torch"]["functions"])
    odd = [None, 0, -1, 2 ** 40, 1.5, float("inf"), "x", [], [1, 2, 3], {},
           {"$node": "nowhere"}, {"$tuple": []}, {"$tuple": [0, None]},
           {"$slice": [None, None, 0]}, {"$slice": [1]}, {"$ellipsis": True},
           {"$dtype": "torch.complex64"}, {"$dtype": "torch.int8"}, {"$unknown": 1},
           {"$tensor": "w"}, {"$node": "x0", "$tuple": []}]
    out = []
    for _ in range(count):
        m = copy.deepcopy(rng.choice(messages))
        nodes = m["model"]["graph"]["nodes"]
        node = rng.choice(nodes)
        kind = rng.randrange(6)
        if kind == 0 and node["args"]:
            node["args"][rng.randrange(len(node["args"]))] = rng.choice(odd)
        elif kind == 1:
            node["kwargs"][rng.choice(list(node["kwargs"]) or ["dim"])] = rng.choice(odd)
        elif kind == 2 and node["op"] == "call_function":
            node["target"] = rng.choice(functions)
        elif kind == 3:
            node.pop(rng.choice(["name", "op", "target", "args", "kwargs"]))
        elif kind == 4 and m["model"]["modules"]:
            attrs = rng.choice(list(m["model"]["modules"].values()))["attrs"]
            attrs[rng.choice(list(attrs) or ["stride"])] = rng.choice(odd)
        elif m["model"]["tensors"]:
            tensor = rng.choice(list(m["model"]["tensors"].values()))
            tensor["shape"] = [rng.choice([0, 1, 2, 3, 7, 2 ** 31]) for _ in tensor["shape"]]
        else:
            node["args"].append(rng.choice(odd))
        out.append(m)
    return out
