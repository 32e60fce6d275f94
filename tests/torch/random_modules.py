"""Random torch modules for hunting conversion bugs: a seeded generator and the sweep that runs it.

`build(seed)` composes a small module from the tracer's supported layers and operations (README
"Torch models -> Support"): Linear, convolutions with stride, padding, dilation, groups and
padding modes, transposed convolutions, batch norm, pools, exact and table activations,
arithmetic with numbers and between branches, clamp, where, comparisons, reductions, slicing,
reshapes, permutes, pads, cat/split/stack, upsampling, pixel shuffles. Weights have a few
fractional bits; values are fake-quantized (round to 2^-f, clamp) wherever their width would
grow past a few bits, so torch's float64 forward pass is exact and is the oracle, bit for bit.

Products by non-dyadic constants (an average over 9, a mean over 6, x / 3) follow the
reference's float rounding, within about 2^-21 of the range of the value (README "Differences
from the reference"), so the generator uses them only as the last operation of a module and the
comparison then allows RandomCase.atol, 2^-17 of a bound on that range: a layer computing the
wrong thing is off by more.

The same seed always builds the same module (numpy's default_rng(seed) drives every choice;
weights come from it too). `cases(seeds)` gives torch_models.Case rows for the conversion test;
run this file for the sweep:

    PYTHONPATH=client/python:tests/torch python3 tests/torch/random_modules.py --count 300
    ... --seed 17 --show      # print one module's steps and its fx graph

Every failure (a wrong value, a refusal, a crash, a limit) is printed with its seed and the
steps that built the module; --keep DIR keeps the graph messages of the failures.
"""
import argparse
import collections
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from torch_models import Case
from torch_oracle import grid_data

RandomCase = collections.namedtuple("RandomCase", "seed module shapes kif steps atol")
# steps: one line per operation, how the module was built (for reports);
# atol: 0 (bit for bit) or the bound of the non-dyadic last operation.

_DEBUG = bool(os.environ.get("ALK_RANDOM_DEBUG"))  # print the draws torch refused

_ACTIVATIONS = ("sigmoid", "tanh", "silu", "gelu", "elu", "softsign", "hardsigmoid",
                "hardswish", "logsigmoid", "softplus")


class _Net1(nn.Module):
    def __init__(self, mods, steps, outputs):
        super().__init__()
        self.mods = nn.ModuleList(mods)
        self._steps = steps  # (fn(self, *tensors), argument indices)
        self._outputs = outputs

    def run(self, values):
        for fn, args in self._steps:
            values.append(fn(self, *[values[i] for i in args]))
        out = [values[i] for i in self._outputs]
        return out[0] if len(out) == 1 else tuple(out)

    def forward(self, x0):
        return self.run([x0])


class _Net2(_Net1):
    def forward(self, x0, x1):
        return self.run([x0, x1])


def fq(x, f, i):
    """The tests' fake quantizer: round half to even to 2^-f, clamp to [-2^i, 2^i - 2^-f]."""
    return torch.clamp(torch.round(x * 2 ** f) / 2 ** f, -2.0 ** i, 2.0 ** i - 2.0 ** -f)


class _Value:
    """A tensor of the module being built: its index among the forward's values, an example
    batch (shapes come from torch itself), and bounds on its grid and magnitude."""

    def __init__(self, index, example, f, m):
        self.index, self.example, self.f, self.m = index, example, f, m

    @property
    def shape(self):
        return tuple(self.example.shape[1:])

    @property
    def rank(self):
        return self.example.dim() - 1


class _Rejected(Exception):
    """The operation drawn does not fit the value (a shape or range it cannot take)."""


class _Builder:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.mods, self.steps, self.lines, self.values = [], [], [], []
        self.non_dyadic = 0.0  # the range bound of the non-dyadic last operation, if any

    # ---- drawing --------------------------------------------------------------------------
    def int(self, lo, hi):
        return int(self.rng.integers(lo, hi + 1))

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def chance(self, p):
        return self.rng.random() < p

    def dyadic(self, bits=3, frac=None, nonzero=False):
        frac = self.int(0, 3) if frac is None else frac
        while True:
            v = self.int(-(2 ** bits) + 1, 2 ** bits - 1) / 2 ** frac
            if v or not nonzero:
                return v

    def weights(self, shape, frac=None):
        frac = self.int(1, 3) if frac is None else frac
        w = self.rng.integers(-7, 8, size=shape) / 2 ** frac
        w[self.rng.random(shape) < 0.2] = 0
        return torch.tensor(w, dtype=torch.float32), frac

    # ---- the module -------------------------------------------------------------------------
    def add(self, line, fn, args, f, m, module=None):
        """Appends the step fn(net, *tensors) (fn(module, *tensors) for a module's call) if
        torch computes it on the examples; `line` shows it, {0}, {1} standing for the operands."""
        text = f"v{len(self.values)} = " + line.format(*[f"v{i}" for i in args])
        if module is not None:
            module.eval()  # a batch norm in training mode would update its statistics
        with torch.no_grad():
            example = fn(module, *[self.values[i].example for i in args])
        if (not isinstance(example, torch.Tensor) or example.dim() < 2
                or not 0 < example.numel() <= 1024 or example.dtype == torch.bool):
            raise _Rejected(text)
        if module is not None:
            self.mods.append(module)
            k, call = len(self.mods) - 1, fn
            fn = lambda net, *xs: call(net.mods[k], *xs)  # noqa: E731
        v = _Value(len(self.values), example, f, m)
        self.values.append(v)
        self.steps.append((fn, tuple(args)))
        self.lines.append(text)
        return v

    def quantize(self, v, f=None, i=None):
        f = self.int(1, 4) if f is None else f
        i = self.int(1, 4) if i is None else i
        return self.add(f"fq({{}}, f={f}, i={i})", lambda net, x: fq(x, f, i), [v.index], f,
                        2.0 ** i)

    def narrow(self, v):
        """A fake quantizer after operations that widen the grid or the range."""
        if v.f > 6 or v.m > 64 or self.chance(0.4):
            return self.quantize(v)
        return v


# ---- operations: each takes the builder and a value, returns the new value ------------------

def _linear(b, v):
    n = v.shape[-1]
    out = b.int(1, 8)
    w, fw = b.weights((out, n))
    lin = nn.Linear(n, out, bias=b.chance(0.7))
    with torch.no_grad():
        lin.weight.copy_(w)
        if lin.bias is not None:
            lin.bias.copy_(b.weights((out,), fw)[0])
    return b.add(f"Linear({n}, {out})({{}})", lambda mod, x: mod(x), [v.index], v.f + fw,
                 v.m * n * 7 / 2 ** fw + 8, module=lin)


def _conv(b, v):
    rank = v.rank - 1
    cin = v.shape[0]
    groups = b.pick([g for g in (1, 2, 4) if cin % g == 0])
    cout = groups * b.int(1, 4 // groups + 1)
    k = b.int(1, 3)
    stride = b.int(1, 2)
    dilation = b.int(1, 2)
    if stride == 1 and b.chance(0.3):
        padding = b.pick(["same", "valid"])
    else:
        padding = b.int(0, 2)
    mode = "zeros" if padding == "valid" or b.chance(0.6) else \
        b.pick(["reflect", "replicate", "circular"])
    cls = (nn.Conv1d, nn.Conv2d)[rank - 1]
    conv = cls(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups,
               bias=b.chance(0.7), padding_mode=mode)
    w, fw = b.weights(tuple(conv.weight.shape))
    with torch.no_grad():
        conv.weight.copy_(w)
        if conv.bias is not None:
            conv.bias.copy_(b.weights((cout,), fw)[0])
    fan = cin // groups * k ** rank
    line = (f"{cls.__name__}({cin}, {cout}, {k}, stride={stride}, padding={padding!r}, "
            f"dilation={dilation}, groups={groups}, padding_mode={mode!r})({{}})")
    return b.add(line, lambda mod, x: mod(x), [v.index], v.f + fw, v.m * fan * 7 / 2 ** fw + 8,
                 module=conv)


def _conv_transpose(b, v):
    rank = v.rank - 1
    cin = v.shape[0]
    groups = b.pick([g for g in (1, 2) if cin % g == 0])
    cout = groups * b.int(1, 2)
    k = b.int(1, 3)
    stride = b.int(1, 2)
    padding = b.int(0, k - 1)
    output_padding = b.int(0, stride - 1)
    cls = (nn.ConvTranspose1d, nn.ConvTranspose2d)[rank - 1]
    conv = cls(cin, cout, k, stride=stride, padding=padding, output_padding=output_padding,
               groups=groups, bias=b.chance(0.5))
    w, fw = b.weights(tuple(conv.weight.shape))
    with torch.no_grad():
        conv.weight.copy_(w)
        if conv.bias is not None:
            conv.bias.copy_(b.weights((cout,), fw)[0])
    line = (f"{cls.__name__}({cin}, {cout}, {k}, stride={stride}, padding={padding}, "
            f"output_padding={output_padding}, groups={groups})({{}})")
    return b.add(line, lambda mod, x: mod(x), [v.index], v.f + fw,
                 v.m * cin * k ** rank * 7 / 2 ** fw + 8, module=conv)


def _batch_norm(b, v):
    """Folds exactly in float32 and float64: eps = 2^-10, var = 4^j - eps, so sqrt(var + eps)
    is 2^j; gamma, beta and the mean are dyadic."""
    c = v.shape[0]
    cls = (nn.BatchNorm1d, nn.BatchNorm1d, nn.BatchNorm2d)[v.rank - 1]
    bn = cls(c, eps=2.0 ** -10)
    j = [b.int(-1, 2) for _ in range(c)]
    with torch.no_grad():
        bn.running_var.copy_(torch.tensor([4.0 ** e - 2.0 ** -10 for e in j]))
        bn.running_mean.copy_(torch.tensor([b.dyadic(2, 2) for _ in range(c)]))
        bn.weight.copy_(torch.tensor([b.dyadic(2, 1, nonzero=True) for _ in range(c)]))
        bn.bias.copy_(torch.tensor([b.dyadic(2, 2) for _ in range(c)]))
    return b.add(f"{cls.__name__}({c}, var 4^{j})({{}})", lambda mod, x: mod(x), [v.index],
                 v.f + 4, (v.m + 1) * 16 + 2, module=bn)


def _pool(b, v):
    rank = v.rank - 1
    kind = b.pick(["max", "avg", "adaptive_max", "adaptive_avg"])
    size = v.shape[1:]
    if kind.startswith("adaptive"):
        # Average windows of a power-of-two size: the output sizes n / 2^j.
        outs = [b.pick([d for d in range(1, n + 1) if n % d == 0
                        and (kind == "adaptive_max" or not n // d & (n // d - 1))])
                for n in size]
        cls = getattr(nn, ("AdaptiveMaxPool", "AdaptiveAvgPool")[kind == "adaptive_avg"]
                      + f"{rank}d")
        pool = cls(outs[0] if rank == 1 else tuple(outs))
        count = int(np.prod([n // o for n, o in zip(size, outs)]))
        line = f"{cls.__name__}({outs})({{}})"
    else:
        k = b.int(2, 3) if kind == "max" else 2
        stride = b.pick([None, 1, 2])
        padding = b.int(0, k // 2)
        ceil_mode = b.chance(0.3)
        if kind == "max":
            dilation = b.int(1, 2)
            cls = getattr(nn, f"MaxPool{rank}d")
            pool = cls(k, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
            line = (f"{cls.__name__}({k}, stride={stride}, padding={padding}, "
                    f"dilation={dilation}, ceil_mode={ceil_mode})({{}})")
        else:
            # Divisors stay powers of two: padding counted, or none to leave out.
            include = padding == 0 or b.chance(0.7) and not ceil_mode
            cls = getattr(nn, f"AvgPool{rank}d")
            pool = cls(k, stride=stride, padding=padding, ceil_mode=ceil_mode and padding == 0,
                       count_include_pad=include)
            line = (f"{cls.__name__}({k}, stride={stride}, padding={padding}, "
                    f"ceil_mode={ceil_mode and padding == 0}, count_include_pad={include})({{}})")
        count = k ** rank
    if "avg" in kind and count & (count - 1):
        raise _Rejected("non-dyadic average")
    grow = int(np.log2(count)) if "avg" in kind else 0
    return b.add(line, lambda mod, x: mod(x), [v.index], v.f + grow, v.m, module=pool)


def _non_dyadic(b, v):
    """The last operation only: a product by a constant that is not dyadic."""
    choice = b.int(0, 3)
    if choice == 0 and v.rank >= 2 and min(v.shape[1:]) >= 3:
        rank = v.rank - 1
        cls = getattr(nn, f"AvgPool{rank}d")
        line = f"{cls.__name__}(3, stride=1)({{}})"
        out = b.add(line, lambda mod, x: mod(x), [v.index], 60, v.m, module=cls(3, stride=1))
    elif choice == 1 and v.shape[-1] in (3, 5, 6, 7):
        out = b.add("{}.mean(-1)", lambda net, x: x.mean(-1), [v.index], 60, v.m)
    elif choice == 2:
        d = b.pick([3, 5, 6, -3, 10])
        out = b.add(f"{{}} / {d}", lambda net, x: x / d, [v.index], 60, v.m)
    else:
        out = b.add("F.leaky_relu({}, 0.1)", lambda net, x: F.leaky_relu(x, 0.1), [v.index], 60,
                    v.m)
    b.non_dyadic = max(1.0, v.m)
    return out


def _activation(b, v):
    kind = b.int(0, 9)
    if kind == 0:
        spelling = b.pick(["F.relu", "torch.relu", "x.relu", "nn.ReLU"])
        fns = {"F.relu": F.relu, "torch.relu": torch.relu, "x.relu": lambda x: x.relu()}
        if spelling == "nn.ReLU":
            return b.add("nn.ReLU()({})", lambda mod, x: mod(x), [v.index], v.f, v.m,
                         module=nn.ReLU())
        fn = fns[spelling]
        return b.add(f"{spelling}({{}})", lambda net, x: fn(x), [v.index], v.f, v.m)
    if kind == 1:
        return b.add("nn.ReLU6()({})", lambda mod, x: mod(x), [v.index], v.f, min(v.m, 6),
                     module=nn.ReLU6())
    if kind == 2:
        lo = b.dyadic(2, 1)
        hi = lo + abs(b.dyadic(2, 1, nonzero=True))
        return b.add(f"nn.Hardtanh({lo}, {hi})({{}})", lambda mod, x: mod(x), [v.index], v.f,
                     max(abs(lo), abs(hi)), module=nn.Hardtanh(lo, hi))
    if kind == 3:
        k = b.int(1, 3)
        return b.add(f"nn.LeakyReLU(2^-{k})({{}})", lambda mod, x: mod(x), [v.index], v.f + k,
                     v.m, module=nn.LeakyReLU(2.0 ** -k))
    if kind == 4:
        n = b.pick([1, v.shape[0]])
        pr = nn.PReLU(n)
        with torch.no_grad():
            pr.weight.copy_(b.weights((n,), 2)[0])
        return b.add(f"nn.PReLU({n})({{}})", lambda mod, x: mod(x), [v.index], v.f + 2,
                     v.m * 2, module=pr)
    if kind == 5:
        name = b.pick(["abs", "neg", "sign", "square"])
        fn = getattr(torch, name)
        if name == "square":
            return b.narrow(b.add("torch.square({})", lambda net, x: fn(x), [v.index], 2 * v.f,
                                  v.m * v.m))
        return b.add(f"torch.{name}({{}})", lambda net, x: fn(x), [v.index], v.f, v.m)
    if kind == 6:
        lo = b.dyadic(2, 1)
        hi = lo + abs(b.dyadic(2, 2, nonzero=True))
        which = b.int(0, 2)
        if which == 0:
            return b.add(f"torch.clamp({{}}, {lo}, {hi})", lambda net, x: torch.clamp(x, lo, hi),
                         [v.index], v.f, v.m)
        if which == 1:
            return b.add(f"{{}}.clamp(min={lo})", lambda net, x: x.clamp(min=lo), [v.index], v.f,
                         v.m)
        return b.add(f"torch.clip({{}}, max={hi})", lambda net, x: torch.clip(x, max=hi),
                     [v.index], v.f, v.m)
    if kind == 7:
        c = b.dyadic(2, 2)
        s = 2.0 ** -b.int(0, 2)
        return b.add(f"torch.where({{0}} > {c}, {{0}}, {{0}} * {s})",
                     lambda net, x: torch.where(x > c, x, x * s), [v.index], v.f + 2, v.m)
    if kind == 8:
        c = b.dyadic(2, 2)
        return b.add(f"{{0}} * ({{0}} >= {c})", lambda net, x: x * (x >= c), [v.index], v.f, v.m)
    # A table function, quantized as the tests quantize them, on |x| <= 4: beyond, torch's
    # float32 and float64 forward passes round some ties apart (gelu(6.0625) is 6.0625 in
    # float32, a little less in float64), and the oracle is the float64 one.
    if v.m > 4:
        v = b.quantize(v, i=b.int(1, 2))
    name = b.pick(_ACTIVATIONS)
    q = b.int(2, 4)
    fn = getattr(F, name) if hasattr(F, name) else getattr(torch, name)
    return b.add(f"round(F.{name}({{}}) * 2^{q}) / 2^{q}",
                 lambda net, x: torch.round(fn(x) * 2 ** q) / 2 ** q, [v.index], q, v.m + 2)


def _arithmetic(b, v):
    kind = b.int(0, 5)
    if kind == 0:
        c = b.dyadic(3, b.int(0, 2), nonzero=True)
        return b.narrow(b.add(f"{{}} * {c}", lambda net, x: x * c, [v.index], v.f + 2,
                              v.m * abs(c)))
    if kind == 1:
        c = b.dyadic(3, 2)
        side = b.chance(0.5)
        return b.add(f"{c} - {{}}" if side else f"{{}} + {c}",
                     (lambda net, x: c - x) if side else (lambda net, x: x + c), [v.index],
                     max(v.f, 2), v.m + abs(c))
    if kind == 2:
        k = b.int(1, 3)
        return b.add(f"{{}} / {2 ** k}", lambda net, x: x / 2 ** k, [v.index], v.f + k, v.m)
    if kind == 3:
        k = b.int(0, 3)
        name = b.pick(["floor", "ceil", "round"])
        fn = getattr(torch, name)
        return b.add(f"torch.{name}({{}} * {2 ** k}) / {2 ** k}",
                     lambda net, x: fn(x * 2 ** k) / 2 ** k, [v.index], k, v.m + 1)
    if kind == 4:
        d = 2.0 ** b.int(-1, 1)
        return b.add(f"torch.remainder({{}}, {d})", lambda net, x: torch.remainder(x, d),
                     [v.index], v.f, d)
    d = 2.0 ** b.int(-1, 1)
    return b.add(f"{{}} // {d}", lambda net, x: x // d, [v.index], 0, v.m / d + 1)


def _reduction(b, v):
    dim = b.int(1, v.rank)
    keep = b.chance(0.4)
    n = v.shape[dim - 1]
    kind = b.pick(["sum", "amax", "amin", "max", "min", "mean"])
    if kind == "mean" and n & (n - 1):
        kind = "sum"
    if kind == "sum":
        return b.narrow(b.add(f"{{}}.sum({dim}, keepdim={keep})",
                              lambda net, x: x.sum(dim, keepdim=keep), [v.index], v.f, v.m * n))
    if kind == "mean":
        return b.add(f"torch.mean({{}}, dim={dim}, keepdim={keep})",
                     lambda net, x: torch.mean(x, dim=dim, keepdim=keep), [v.index],
                     v.f + int(np.log2(n)), v.m)
    if kind in ("amax", "amin"):
        fn = getattr(torch, kind)
        return b.add(f"torch.{kind}({{}}, {dim}, keepdim={keep})",
                     lambda net, x: fn(x, dim, keepdim=keep), [v.index], v.f, v.m)
    if b.chance(0.5):
        return b.add(f"{{}}.{kind}({dim}, {keep})[0]",
                     lambda net, x: getattr(x, kind)(dim, keep)[0], [v.index], v.f, v.m)
    return b.add(f"torch.{kind}({{}}, dim={dim}).values",
                 lambda net, x: getattr(torch, kind)(x, dim=dim).values, [v.index], v.f, v.m)


def _structure(b, v):
    kind = b.int(0, 9)
    if kind == 0:
        return b.add("torch.flatten({}, 1)", lambda net, x: torch.flatten(x, 1), [v.index], v.f,
                     v.m)
    if kind == 1:
        n = int(np.prod(v.shape))
        divisors = [d for d in range(1, n + 1) if n % d == 0]
        a = b.pick(divisors)
        shape = (a, n // a)
        if b.chance(0.5):
            return b.add(f"{{}}.view(-1, {shape[0]}, {shape[1]})",
                         lambda net, x: x.view(-1, *shape), [v.index], v.f, v.m)
        return b.add(f"{{}}.reshape(-1, {shape[0]}, {shape[1]})",
                     lambda net, x: x.reshape(-1, *shape), [v.index], v.f, v.m)
    if kind == 2 and v.rank >= 2:
        perm = [0] + [int(p) + 1 for p in b.rng.permutation(v.rank)]
        return b.add(f"{{}}.permute{tuple(perm)}", lambda net, x: x.permute(*perm), [v.index],
                     v.f, v.m)
    if kind == 3 and v.rank >= 2:
        d0, d1 = (int(d) + 1 for d in b.rng.choice(v.rank, 2, replace=False))
        return b.add(f"torch.transpose({{}}, {d0}, {d1})",
                     lambda net, x: torch.transpose(x, d0, d1), [v.index], v.f, v.m)
    if kind == 4:
        dim = b.int(1, v.rank)
        n = v.shape[dim - 1]
        start = b.int(-n, n - 1) if b.chance(0.5) else None
        stop = b.int(-n, n) if b.chance(0.5) else None
        step = b.int(1, 2)
        index = (slice(None),) * dim + (slice(start, stop, step),)
        bounds = ["" if e is None else e for e in (start, stop)]
        text = ":, " * dim + f"{bounds[0]}:{bounds[1]}:{step}"
        return b.add(f"{{}}[{text}]", lambda net, x: x[index], [v.index], v.f, v.m)
    if kind == 5:
        reps = [1] + [b.int(1, 2) for _ in range(v.rank)]
        return b.add(f"{{}}.repeat{tuple(reps)}", lambda net, x: x.repeat(*reps), [v.index], v.f,
                     v.m)
    if kind == 6 and v.rank <= 2:
        k = b.int(2, 3)
        return b.add(f"{{}}.unsqueeze(1).expand(-1, {k}, {', '.join(['-1'] * v.rank)})",
                     lambda net, x: x.unsqueeze(1).expand(-1, k, *[-1] * v.rank), [v.index],
                     v.f, v.m)
    if kind == 7:
        dims = min(v.rank, 2)
        pads = [b.int(0, 2) for _ in range(2 * dims)]
        mode = b.pick(["constant", "constant", "reflect", "replicate", "circular"])
        if mode != "constant" and v.rank < 2:
            mode = "constant"
        if mode == "reflect" and any(p >= n for p, n in zip(pads[::2], v.shape[::-1])):
            mode = "constant"
        value = b.dyadic(2, 2) if mode == "constant" else None
        kwargs = {"mode": mode} if value is None else {"mode": mode, "value": value}
        shown = ", ".join(f"{k}={w!r}" for k, w in kwargs.items())
        return b.add(f"F.pad({{}}, {pads}, {shown})", lambda net, x: F.pad(x, pads, **kwargs),
                     [v.index], max(v.f, 2), v.m + 2)
    if kind == 8:
        dim = b.int(1, v.rank)
        n = v.shape[dim - 1]
        if n < 2:
            raise _Rejected("split")
        if b.chance(0.5):
            size = b.int(1, n - 1)
            piece = b.int(0, -(-n // size) - 1)
            return b.add(f"torch.split({{}}, {size}, {dim})[{piece}]",
                         lambda net, x: torch.split(x, size, dim)[piece], [v.index], v.f, v.m)
        chunks = b.int(2, n)
        pieces = len(torch.chunk(v.example, chunks, dim))  # torch's count (6 in 4: 3)
        return b.add(f"torch.cat(torch.chunk({{}}, {chunks}, {dim}) reversed, {dim})",
                     lambda net, x: torch.cat([torch.chunk(x, chunks, dim)[j]
                                               for j in reversed(range(pieces))], dim),
                     [v.index], v.f, v.m)
    dim = b.int(1, v.rank)
    return b.add(f"torch.cat([{{0}}, {{0}} * 2], {dim})",
                 lambda net, x: torch.cat([x, x * 2], dim), [v.index], v.f, v.m * 2)


def _spatial(b, v):
    """Operations of channels-first tensors that are not convolutions or pools."""
    kind = b.int(0, 2)
    if kind == 0:
        s = b.int(2, 3)
        cls = nn.Upsample
        line = f"nn.Upsample(scale_factor={s})({{}})"
        return b.add(line, lambda mod, x: mod(x), [v.index], v.f, v.m,
                     module=cls(scale_factor=s, mode="nearest"))
    if kind == 1 and v.rank == 3:
        if v.shape[0] % 4 == 0:
            return b.add("nn.PixelShuffle(2)({})", lambda mod, x: mod(x), [v.index], v.f, v.m,
                         module=nn.PixelShuffle(2))
        if v.shape[1] % 2 == 0 and v.shape[2] % 2 == 0:
            return b.add("nn.PixelUnshuffle(2)({})", lambda mod, x: mod(x), [v.index], v.f, v.m,
                         module=nn.PixelUnshuffle(2))
    if v.rank == 3:
        pads = tuple(b.int(0, 2) for _ in range(4))
        cls = b.pick([nn.ZeroPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d])
        if cls is nn.ReflectionPad2d and (max(pads[:2]) >= v.shape[2]
                                          or max(pads[2:]) >= v.shape[1]):
            cls = nn.ZeroPad2d
        return b.add(f"nn.{cls.__name__}({pads})({{}})", lambda mod, x: mod(x), [v.index], v.f,
                     v.m, module=cls(pads))
    pads = (b.int(0, 2), b.int(0, 2))
    return b.add(f"nn.ReplicationPad1d({pads})({{}})", lambda mod, x: mod(x), [v.index], v.f,
                 v.m, module=nn.ReplicationPad1d(pads))


def _binary(b, v, w):
    """Two values of one shape (w is broadcast or cut to v's shape first when it can be)."""
    if v.shape != w.shape:
        raise _Rejected("shapes")
    kind = b.int(0, 7)
    ops = [("{0} + {1}", lambda net, x, y: x + y, max(v.f, w.f), v.m + w.m),
           ("{0} - {1}", lambda net, x, y: x - y, max(v.f, w.f), v.m + w.m),
           ("torch.mul({0}, {1})", lambda net, x, y: torch.mul(x, y), v.f + w.f, v.m * w.m),
           ("torch.maximum({0}, {1})", lambda net, x, y: torch.maximum(x, y), max(v.f, w.f),
            max(v.m, w.m)),
           ("torch.min({0}, {1})", lambda net, x, y: torch.min(x, y), max(v.f, w.f),
            max(v.m, w.m)),
           ("torch.where({0} > {1}, {0}, {1} * 2)",
            lambda net, x, y: torch.where(x > y, x, y * 2), max(v.f, w.f), max(v.m, 2 * w.m)),
           ("torch.add({0}, {1}, alpha=0.5)", lambda net, x, y: torch.add(x, y, alpha=0.5),
            max(v.f, w.f + 1), v.m + w.m)]
    if kind < len(ops):
        line, fn, f, m = ops[kind]
        return b.narrow(b.add(line, fn, [v.index, w.index], f, m))
    if v.rank >= 1:
        dim = b.int(1, v.rank)
        return b.add(f"torch.stack([{{0}}, {{1}}], {dim}).sum({dim})",
                     lambda net, x, y: torch.stack([x, y], dim).sum(dim), [v.index, w.index],
                     max(v.f, w.f), v.m + w.m)
    raise _Rejected("binary")


def _matmul(b, v, w):
    if v.rank != 2 or w.rank != 2 or v.shape[1] != w.shape[1]:
        raise _Rejected("matmul")
    if b.chance(0.5):
        out = b.add("torch.einsum('bij,bkj->bik', {0}, {1})",
                    lambda net, x, y: torch.einsum("bij,bkj->bik", x, y), [v.index, w.index],
                    v.f + w.f, v.m * w.m * v.shape[1])
    else:
        out = b.add("torch.matmul({0}, {1}.transpose(1, 2))",
                    lambda net, x, y: torch.matmul(x, y.transpose(1, 2)), [v.index, w.index],
                    v.f + w.f, v.m * w.m * v.shape[1])
    return b.quantize(out)


def _misc(b, v):
    """Reductions to indices and truth values, sorting, integer and bitwise operations, tiling,
    functional forms reading parameters, shared modules and identities. Integer and boolean
    results come back with type_as(x): the oracle runs the module in float64."""
    kind = b.int(0, 11)
    dim = b.int(1, v.rank)
    n = v.shape[dim - 1]
    if kind == 0:
        name = b.pick(["argmax", "argmin"])
        fn = getattr(torch, name)
        return b.add(f"torch.{name}({{0}}, {dim}, keepdim=True).type_as({{0}})",
                     lambda net, x: fn(x, dim, keepdim=True).type_as(x), [v.index], 0, n)
    if kind == 1 and n <= 3:
        return b.quantize(b.add(f"torch.prod({{}}, {dim})", lambda net, x: torch.prod(x, dim),
                                [v.index], v.f * n, v.m ** n))
    if kind == 2:
        c = b.dyadic(2, 2)
        name = b.pick(["all", "any"])
        return b.add(f"({{0}} > {c}).{name}({dim}).type_as({{0}})",
                     lambda net, x: getattr(x > c, name)(dim).type_as(x), [v.index], 0, 1)
    if kind == 3 and n <= 8:
        descending = b.chance(0.5)
        return b.add(f"torch.sort({{}}, {dim}, descending={descending})[0]",
                     lambda net, x: torch.sort(x, dim, descending=descending)[0], [v.index],
                     v.f, v.m)
    if kind == 4:
        r = b.int(2, 3)
        return b.add(f"torch.repeat_interleave({{}}, {r}, {dim})",
                     lambda net, x: torch.repeat_interleave(x, r, dim), [v.index], v.f, v.m)
    if kind == 5:
        reps = (1,) + tuple(b.int(1, 2) for _ in range(v.rank))
        return b.add(f"torch.tile({{}}, {reps})", lambda net, x: torch.tile(x, reps), [v.index],
                     v.f, v.m)
    if kind == 6:
        # Integer values through an integer dtype and back; & | ^ ~ on them.
        w = b.quantize(v, f=0, i=b.int(1, 3))
        name = b.pick(["&", "|", "^", "~"])
        c = b.int(0, 7)
        ops = {"&": lambda x: x & c, "|": lambda x: x | c, "^": lambda x: x ^ c,
               "~": lambda x: ~x}
        op = ops[name]
        shown = f"~{{}}" if name == "~" else f"{{}} {name} {c}"
        return b.add(f"({shown.format('{0}.to(torch.int32)')}).type_as({{0}})",
                     lambda net, x: op(x.to(torch.int32)).type_as(x), [w.index], 0, 16)
    if kind == 7:
        weight = nn.Parameter(b.weights((b.int(1, 4), v.shape[-1]))[0])
        holder = nn.Module()
        holder.weight = weight
        return b.add(f"F.linear({{}}, W{tuple(weight.shape)})",
                     lambda mod, x: F.linear(x, mod.weight), [v.index], v.f + 3,
                     v.m * v.shape[-1] * 7 + 8, module=holder)
    if kind == 8 and b.steps:
        # A module called a second time (its dump is renamed #1).
        mods = [m for m in b.mods if isinstance(m, (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Hardtanh))]
        if not mods:
            raise _Rejected("no module to share")
        mod = b.pick(mods)
        k = next(j for j, m in enumerate(b.mods) if m is mod)
        with torch.no_grad():
            example = mod(v.example)
        v2 = _Value(len(b.values), example, v.f + 3, v.m * 64 + 8)
        b.values.append(v2)
        b.steps.append((lambda net, x, k=k: net.mods[k](x), (v.index,)))
        b.lines.append(f"v{v2.index} = mods[{k}](v{v.index})  # shared")
        return b.narrow(v2)
    if kind == 9:
        cls = b.pick([nn.Identity, nn.Dropout, nn.Flatten])
        return b.add(f"nn.{cls.__name__}()({{}})", lambda mod, x: mod(x), [v.index], v.f, v.m,
                     module=cls())
    if kind == 10 and v.rank >= 2:
        s = b.int(2, 3)
        return b.add(f"F.interpolate({{}}, scale_factor={s})",
                     lambda net, x: F.interpolate(x, scale_factor=s, mode="nearest"), [v.index],
                     v.f, v.m)
    c = b.dyadic(2, 2)
    name = b.pick(["eq", "ne", "ge", "lt"])
    return b.add(f"{{0}} * torch.{name}({{0}}, {c})",
                 lambda net, x: x * getattr(torch, name)(x, c), [v.index], v.f, v.m)


def _unary_step(b, v):
    families = [(_linear, 3), (_activation, 4), (_arithmetic, 2), (_reduction, 1),
                (_structure, 3), (_misc, 2)]
    if v.rank >= 2:
        families += [(_conv, 3), (_pool, 2), (_batch_norm, 1), (_spatial, 1)]
        if v.rank <= 3:
            families.append((_conv_transpose, 1))
    elif v.rank == 1:
        families.append((_batch_norm, 1))
    fns, weights = zip(*families)
    p = np.array(weights, dtype=float)
    fn = fns[int(b.rng.choice(len(fns), p=p / p.sum()))]
    return fn(b, v)


def _input_shape(b):
    rank = b.pick([1, 2, 2, 3, 3])
    if rank == 1:
        return (b.int(2, 8),)
    if rank == 2:
        return (b.int(1, 4), b.int(3, 10))
    return (b.int(1, 4), b.int(3, 7), b.int(3, 7))


def build(seed):
    """The RandomCase of `seed` (deterministic)."""
    for attempt in range(100):
        try:
            return _build(seed, attempt)
        except _Rejected:
            continue
    raise RuntimeError(f"seed {seed}: no module after 100 attempts")


def _build(seed, attempt):
    b = _Builder(seed * 1000 + attempt)
    n_inputs = 2 if b.chance(0.3) else 1
    shape = _input_shape(b)
    kif = (int(b.chance(0.85)), b.int(1, 3), b.int(1, 4))
    shapes = [shape] * n_inputs
    for j in range(n_inputs):
        example = torch.tensor(grid_data((4,) + shape, kif, j))
        b.values.append(_Value(j, example, kif[2], 2.0 ** kif[1]))
        b.lines.append(f"v{j} = input{shape} kif {kif}")
    n_steps = b.int(2, 7)
    tries = 0
    while len(b.steps) < n_steps and tries < 200:
        tries += 1
        v = b.values[-1] if b.chance(0.7) else b.pick(b.values)
        try:
            if len(b.values) > 1 and b.chance(0.2):
                w = b.pick(b.values[:-1])
                (_matmul if b.chance(0.2) else _binary)(b, v, w)
            else:
                _unary_step(b, v)
        except _Rejected:
            continue
        except (RuntimeError, ValueError, IndexError, TypeError) as e:
            # torch refused the drawn configuration on the examples; draw another.
            if _DEBUG:
                print(f"  rejected by torch: {type(e).__name__}: {e}", file=sys.stderr)
            continue
    if len(b.steps) < 2:
        raise _Rejected("too few steps")
    last = b.values[-1]
    if b.chance(0.25):
        try:
            _non_dyadic(b, last)
        except (_Rejected, RuntimeError, ValueError):
            pass
    outputs = [len(b.values) - 1]
    if b.chance(0.2) and len(b.values) > n_inputs + 1:
        outputs.append(b.int(n_inputs, len(b.values) - 2))
    net = (_Net1, _Net2)[n_inputs - 1](b.mods, b.steps, outputs)
    net.eval()
    # Products by non-dyadic constants are within about 2^-21 of the value's range (README
    # "Differences from the reference"); v.m bounds the range.
    atol = b.non_dyadic * 2.0 ** -17
    lines = b.lines + [f"return {', '.join(f'v{i}' for i in outputs)}"]
    return RandomCase(seed, net, shapes, kif, lines, atol)


def cases(seeds, n=1000):
    """torch_models.Case rows of the random modules of `seeds`, for the conversion test."""
    out = []
    for seed in seeds:
        rc = build(seed)
        out.append(Case(f"random module {seed}", "random", lambda seed=seed: build(seed).module,
                        rc.shapes, rc.kif, perturb=False, n=n, target=f"random {seed}",
                        atol=rc.atol))
    return out


# ---- the sweep ----------------------------------------------------------------------------

def _check(rc, alkaidc, tmp, samples, extra):
    """'ok', or a one-line reason the conversion is wrong."""
    import torch_oracle
    from alkaid_client.torch import pack
    try:
        p = torch_oracle.prepare(rc.module, rc.shapes, rc.kif, samples, perturb=False)
    except Exception as e:  # the exporter's own bugs are findings too
        return f"export failed: {type(e).__name__}: {e}"
    path = os.path.join(tmp, f"{rc.seed}")
    with open(path + ".msgpack", "wb") as f:
        f.write(pack(p.message))
    r = subprocess.run([alkaidc, "convert", path + ".msgpack", "--local", "-o", path + ".json",
                        *extra], capture_output=True, text=True, timeout=600)
    if not np.isfinite(p.expected).all():
        # torch's -inf (a max pool window over padding only) has no fixed-point value.
        if r.returncode == 1 and "-inf" in r.stderr:
            return "ok"
        return f"torch gives non-finite values; conversion exit {r.returncode}: {r.stderr.strip()}"
    if r.returncode != 0:
        return f"convert failed (exit {r.returncode}): {r.stderr.strip()}"
    torch_oracle.write_run_input(path + ".in", p.inputs)
    r = subprocess.run([alkaidc, "run", path + ".json", "-i", path + ".in"], capture_output=True,
                       text=True, timeout=600)
    if r.returncode != 0:
        return f"run failed (exit {r.returncode}): {r.stderr.strip()[:500]}"
    got = torch_oracle.parse_run_output(r.stdout)
    bad = torch_oracle.compare(got, p.expected, rc.atol)
    if bad:
        worst = np.nanmax(np.abs(got - p.expected)) if got.shape == p.expected.shape else "-"
        return (f"{len(bad)} values differ from torch (of {p.expected.size}; largest "
                f"difference {worst}; first {bad[:3]})")
    return "ok"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--count", type=int, default=100, help="number of seeds")
    ap.add_argument("--seed", type=int, action="append", help="only these seeds")
    ap.add_argument("--samples", type=int, default=300, help="inputs per module")
    ap.add_argument("--alkaidc", default=os.environ.get("ALKAIDC", "build/client/alkaidc"))
    ap.add_argument("--solver-option", action="append", default=[])
    ap.add_argument("--keep", help="keep the graph messages of failures in this directory")
    ap.add_argument("--show", action="store_true", help="print the steps and the fx graph")
    args = ap.parse_args(argv)
    seeds = args.seed or range(args.start, args.start + args.count)
    extra = [a for o in args.solver_option for a in ("--solver-option", o)]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="alk-random-") as tmp:
        for seed in seeds:
            rc = build(seed)
            if args.show:
                print("\n".join(rc.steps))
                print(torch.fx.symbolic_trace(rc.module).graph)
            verdict = _check(rc, args.alkaidc, tmp, args.samples, extra)
            if verdict == "ok":
                print(f"seed {seed}: ok{' (atol %g)' % rc.atol if rc.atol else ''}", flush=True)
                continue
            failures += 1
            print(f"seed {seed}: FAIL {verdict}\n    " + "\n    ".join(rc.steps), flush=True)
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                src = os.path.join(tmp, f"{seed}.msgpack")
                if os.path.exists(src):
                    os.replace(src, os.path.join(args.keep, f"{seed}.msgpack"))
    print(f"{len(seeds)} modules, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
