#!/usr/bin/python3
"""random_models: a seeded bug hunt with random Keras 3 / HGQ2 models (not a meson test).

Model number N of seed S is drawn from numpy default_rng((S, N, kind)) alone, so any model can
be rebuilt from its name (`hgq-S-N`, `keras-S-N`) and --samples (a draw the oracle cannot
evaluate on that many samples is replaced by the next). Each model is composed of layers the
converter supports, shape-checked by the oracle on a probe sample as it is built:

* `hgq`: HGQ2 models (tests/hgq/hgq_configs.py) -- QDense, QBatchNormDense, QEinsumDense,
  QEinsumDenseBatchnorm, QConv1D/2D (strides, same/valid/causal padding, groups, dilation,
  channels_first), QBatchNormalization, QAverage/QMax and global pools, QAdd, QSubtract,
  QMultiply, QMaximum, QMinimum, QAveragePow2, QSum, QMeanPow2, QUnaryFunctionLUT, Quantizer
  layers -- with random kif/kbi quantizers (every overflow and round mode, homogeneous axes,
  pruned and unsigned elements, trainable or frozen weight quantizers), linear / relu / relu6 /
  tanh / sigmoid activations (table ones always quantized by an oq), and Keras' shape layers
  between them (Flatten, Reshape, Permute, Concatenate, Cropping, ZeroPadding, UpSampling,
  RepeatVector, Activation, ReLU, Dropout, Add & co.);
* `keras`: plain Keras models -- Dense, EinsumDense, Conv1D/2D, DepthwiseConv1D/2D,
  Conv1D/2DTranspose, BatchNormalization, pools, ReLU / LeakyReLU / PReLU, activations (a table
  one followed by round(·16) unless outputs are quantized), merges, Dot and the shape layers --
  either with weights on the quarter grid (exact, no options) or with float32 weights and the
  precision options (`--weight-kif`, optionally `--layer-output-kif`).

Each model has one or two inputs, branches and merges, one to three outputs; a plain chain is
sometimes written as a Sequential. Every model is written as the Keras 3 `.keras`, the Keras 3
legacy `.h5` (not for models with ops: Keras' legacy config names an op by its class alone, and
Keras reads it back as the layer) and the Keras 3 `to_json()` + `.weights.h5` pair (plain Keras
models made only of layers with a Keras 2 config also as the Keras 2 `.h5` and JSON + weights);
every form must convert (`alkaidc convert --local`) to the same ALIR, and `alkaidc run` on
random inputs of the input grid must equal the oracle (tests/keras/oracle.py,
tests/hgq/hgq_oracle.py) bit for bit. Counted apart, not failures:
* an output averaging a non-power-of-two count (the only non-dyadic constant the generator makes,
  always a model output) follows the reference's float32-rounded SCM steps
  (run_models.KNOWN_TRACE_ISSUES): compared within 2^-16 of max(1, |value|) (README: within
  about 2^-21 of the value's range);
* a model some layer of which outputs values wider than float32's 24 bits: Keras rounds them
  itself, so no bit-exact answer exists (the oracle's exact value is only an idealisation; the
  converter follows the reference's float32 interval steps there);
* a refusal the model itself explains (a table over more than 2^24 grid points, a plain float
  model wider than 64 bits: LEGIT_REFUSALS);
and a model the oracle cannot evaluate exactly (a sum beyond 53 bits) is replaced by another.

Usage: random_models.py [--kind hgq|keras|both] [--seed S] [--count N] [--first I]
                        [--samples N] [--jobs N] [--keep DIR] [--name NAME]... [--print]
Exit status 0 when every model passed, 1 otherwise.
"""
import argparse
import concurrent.futures
import copy
import json
import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "hgq"))
import hgq_configs as hc  # noqa: E402
import hgq_models as hm  # noqa: E402
import hgq_oracle as ho  # noqa: E402
import kerasgen as kg  # noqa: E402
import models as km  # noqa: E402
import oracle as ko  # noqa: E402
import run_models as rm  # noqa: E402

MAX_ELEMENTS = 192  # per tensor: keeps the constant-matrix solver's work small
TOLERANCE = 2.0 ** -16  # non-dyadic averages, relative to max(1, |value|) (the module's doc)
FLOAT32_BITS = 24  # wider layer outputs are rounded by Keras itself: no exact answer exists
# Refusals with a reason the model itself gives: a table over a value of 2^24+ grid points, a
# plain float model whose exact form needs more than the 64 bits of an ALIR value.
LEGIT_REFUSALS = ("entries (limit 2^24)", "a plain float model has no exact fixed-point form",
                  "more than the 64 bits of an ALIR value", "bits of an ALIR value")

# Layers whose Keras 2 config the generator writes (models.k2_config covers their renames).
K2_CLASSES = {"Dense", "Conv1D", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU",
              "LeakyReLU", "PReLU", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D",
              "AveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
              "GlobalAveragePooling1D", "GlobalAveragePooling2D", "Flatten", "Reshape",
              "Permute", "RepeatVector", "Dropout", "Add", "Subtract", "Multiply", "Maximum",
              "Minimum", "Average", "Concatenate", "Dot", "ZeroPadding1D", "ZeroPadding2D",
              "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D", "Activation",
              "InputLayer"}


class Skip(Exception):
    """This op does not fit the tensor it was drawn for: draw another."""


# ---- the model under construction ---------------------------------------------------------

class NetMixin:
    """What both builders share: the rng, live tensors, tensors that must stay outputs."""

    def setup(self, rng):
        self.rng = rng
        self.terminal = []  # non-dyadic averages: model outputs only
        self.k2_ok = True
        self.shareable = []  # layers with weights, called once on one tensor so far

    def remember(self, layer, args):
        """A layer with weights called on one tensor may be called again (op_shared)."""
        if layer.kind == "layer" and layer.vars and len(layer.nodes) == 1 and \
                len(args) == 1 and isinstance(args[0], kg.Tensor) and \
                not isinstance(layer, kg._Model):
            layer.first_input_shape = tuple(args[0].shape)
            self.shareable.append(layer)

    def pick(self, seq, p=None):
        return seq[int(self.rng.choice(len(seq), p=p))]

    def chance(self, p):
        return bool(self.rng.random() < p)

    def after(self, res, outs):
        """Reject empty or huge results; remember the non-dyadic ones."""
        for o in outs:
            if 0 in o.shape or o.size > MAX_ELEMENTS:
                raise Skip("size")
        if any(isinstance(o, ko.Rounded) for o in outs):
            if getattr(self, "quantized_outputs", False):
                raise Skip("a non-dyadic average has no exact quantized output")
            self.terminal.append(res)
        return res


class HNet(NetMixin, hm.HBuilder):
    """An HGQ2 model (hgq_models.HBuilder) with plain Keras layers between HGQ2 ones."""

    def __init__(self, name, rng):
        hm.HBuilder.__init__(self, name)
        self.gen.rng = rng
        self.setup(rng)
        self.hgq = True

    def call(self, layer, args, kwargs=None, n_outputs=1, broken_shape=None):
        outs = ho.apply_layer(layer, self._probe(args), self._probe(dict(kwargs or {})),
                              ho.Ctx(1))
        if any(isinstance(o, ho.Table) for o in outs):
            raise Skip("an unquantized table value")
        for o in outs:
            if 0 in o.shape or o.size > MAX_ELEMENTS:
                raise Skip("size")
        res = hm.HBuilder.call(self, layer, args, kwargs, n_outputs, broken_shape)
        self.remember(layer, args)
        return self.after(res, outs)

    def keras(self, cls, cfg, x, kwargs=None):
        first = x[0] if isinstance(x, list) else x
        layer = km.make_layer(cls, self.name(cls), cfg, (), None, len(first.shape) + 1)
        return self.call(layer, [x], km.default_kwargs(cls) if kwargs is None else kwargs)

    def op(self, module, cls, cfg, args, kwargs=None):
        """A Keras op node (models.Builder.op's counterpart)."""
        return self.call(kg.Layer(cls, self.name(cls), cfg, module=module, kind="op"), args,
                         kwargs)


class KNet(NetMixin, km.Builder):
    """A plain Keras model (models.Builder)."""

    def __init__(self, rng):
        km.Builder.__init__(self, flat_io=True)
        self.setup(rng)
        self.hgq = False

    def node(self, layer, args, kwargs=None, n_outputs=1, out_shape=None, out_dtype=None):
        outs = ko.apply_layer(layer, self._probe_of(args), self._probe_of(dict(kwargs or {})),
                              ko.Options())
        for o in outs:
            if 0 in o.shape or o.size > MAX_ELEMENTS:
                raise Skip("size")
        res = km.Builder.node(self, layer, args, kwargs, n_outputs, out_shape, out_dtype)
        self.remember(layer, args)
        if layer.kind == "layer" and layer.class_name not in K2_CLASSES:
            self.k2_ok = False
        if layer.kind == "op":
            self.k2_ok = False
        return self.after(res, outs)

    def keras(self, cls, cfg, x, kwargs=None, weights=()):
        return self.layer(cls, cfg, x, list(weights), k2=True, kwargs=kwargs)


# ---- layers that only move data (both kinds) -----------------------------------------------

def factorizations(n, parts):
    """Shapes of `parts` dimensions > 1 whose product is n (a few of them)."""
    if parts == 1:
        return [(n,)]
    out = []
    for d in range(2, n):
        if n % d == 0:
            out += [(d,) + rest for rest in factorizations(n // d, parts - 1)]
    return out


def op_flatten(net, x):
    if len(x.shape) < 2:
        raise Skip("rank")
    return net.keras("Flatten", {"data_format": "channels_last"}, x)


def op_reshape(net, x):
    n = int(np.prod(x.shape))
    shapes = [s for r in (1, 2, 3) for s in factorizations(n, r) if s != tuple(x.shape)]
    if not shapes:
        raise Skip("prime")
    return net.keras("Reshape", {"target_shape": list(net.pick(shapes))}, x)


def op_permute(net, x):
    r = len(x.shape)
    if r < 2:
        raise Skip("rank")
    dims = list(net.rng.permutation(r) + 1)
    if dims == list(range(1, r + 1)):
        dims = dims[1:] + dims[:1]
    return net.keras("Permute", {"dims": [int(d) for d in dims]}, x)


def op_crop(net, x):
    r = len(x.shape) - 1
    if r not in (1, 2):
        raise Skip("rank")
    pairs = []
    for n in x.shape[:r]:
        if n < 3:
            raise Skip("small")
        a = int(net.rng.integers(0, 2))
        b = int(net.rng.integers(0 if a else 1, 2))
        pairs.append([a, b])
    if r == 1:
        return net.keras("Cropping1D", {"cropping": pairs[0]}, x)
    return net.keras("Cropping2D", {"cropping": pairs, "data_format": "channels_last"}, x)


def op_pad(net, x):
    r = len(x.shape) - 1
    if r not in (1, 2):
        raise Skip("rank")
    pairs = [[int(net.rng.integers(0, 3)), int(net.rng.integers(0, 2))] for _ in range(r)]
    if r == 1:
        return net.keras("ZeroPadding1D", {"padding": pairs[0],
                                           "data_format": "channels_last"}, x)
    return net.keras("ZeroPadding2D", {"padding": pairs, "data_format": "channels_last"}, x)


def op_upsample(net, x):
    r = len(x.shape) - 1
    if r == 1:
        return net.keras("UpSampling1D", {"size": int(net.rng.integers(2, 4))}, x)
    if r == 2:
        return net.keras("UpSampling2D", {"size": [int(net.rng.integers(1, 3)),
                                                    int(net.rng.integers(1, 3))],
                                           "data_format": "channels_last",
                                           "interpolation": "nearest"}, x)
    raise Skip("rank")


def op_repeat(net, x):
    if len(x.shape) != 1:
        raise Skip("rank")
    return net.keras("RepeatVector", {"n": int(net.rng.integers(2, 4))}, x)


def op_relu(net, x):
    if net.chance(0.4):
        return net.keras("Activation", {"activation": net.pick(["relu", "relu6",
                                                                "hard_tanh", "linear"])}, x)
    cfg = {"max_value": net.pick([None, 2.0, 6.0, 0.75]),
           "negative_slope": net.pick([0.0, 0.0, 0.25, 0.125]),
           "threshold": net.pick([0.0, 0.0, 0.5, 1.0])}
    if cfg["max_value"] is not None and cfg["max_value"] <= cfg["threshold"]:
        cfg["threshold"] = 0.0
    return net.keras("ReLU", cfg, x)


def op_dropout(net, x):
    return net.keras("Dropout", {"rate": 0.25, "seed": None, "noise_shape": None}, x)


def merge_keras(net, xs):
    """A Keras merge layer on tensors of one shape (Concatenate: on any common axis)."""
    cls = net.pick(["Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average",
                    "Concatenate"])
    if cls == "Subtract" and len(xs) != 2:
        cls = "Add"
    if cls == "Average" and len(xs) not in (2, 4):
        raise Skip("a non-dyadic average inside the model")
    cfg = {"axis": int(net.rng.integers(-len(xs[0].shape), 0))} if cls == "Concatenate" else {}
    return net.keras(cls, cfg, list(xs))


def concat_any(net, xs):
    """Concatenate tensors of one rank along an axis where only they differ."""
    r = len(xs[0].shape)
    if any(len(x.shape) != r for x in xs):
        raise Skip("ranks")
    axes = [a for a in range(r) if all(x.shape[:a] + x.shape[a + 1:] ==
                                       xs[0].shape[:a] + xs[0].shape[a + 1:] for x in xs)]
    if not axes:
        raise Skip("shapes")
    a = net.pick(axes)
    return net.keras("Concatenate", {"axis": a + 1 if net.chance(0.5) else a - r}, list(xs))


# ---- Keras ops (a functional model records keras.ops.* calls as op nodes) -------------------

NP = km.NP


def op_scale(net, x):
    return net.op(NP, "Multiply", {}, [x, net.pick([0.5, 2.0, -0.25, 0.75])])


def op_add_const(net, x):
    return net.op(NP, net.pick(["Add", "Subtract"]), {}, [x, net.pick([0.375, -1.25, 2.0])])


def op_clip(net, x):
    lo = net.pick([-2.0, -0.5, 0.0])
    return net.op(NP, "Clip", {"x_min": lo, "x_max": lo + net.pick([1.0, 2.5, 4.0])}, [x])


def op_unary(net, x):
    return net.op(NP, net.pick(["Absolute", "Negative", "Round", "Floor"]), {}, [x])


def op_max_const(net, x):
    return net.op(NP, net.pick(["Maximum", "Minimum"]), {}, [x, net.pick([0.0, 0.25, -1.0])])


def op_transpose(net, x):
    r = len(x.shape)
    if r < 2:
        raise Skip("rank")
    perm = [int(a) + 1 for a in net.rng.permutation(r)]
    return net.op(NP, "Transpose", {"axes": [0] + perm}, [x])


def op_reshape(net, x):
    n = int(np.prod(x.shape))
    shapes = [s for r in (1, 2) for s in factorizations(n, r)]
    return net.op(NP, "Reshape", {"newshape": [-1] + list(net.pick(shapes))}, [x])


def op_getitem(net, x):
    r = len(x.shape)
    key = [km.sl()]
    for n in x.shape:
        kind = net.pick(["all", "range", "step", "index"] if n > 2 else ["all"])
        if kind == "range":
            key.append(km.sl(int(net.rng.integers(0, 2)), int(n - net.rng.integers(0, 2))))
        elif kind == "step":
            key.append(km.sl(None, None, int(net.pick([2, -1]))))
        elif kind == "index" and r > 1:
            key.append(int(net.rng.integers(0, n)))
            r = 0  # one integer index at most (keeps a rank of at least 1)
        else:
            key.append(km.sl())
    return net.op(NP, "GetItem", {}, [x, key])


def op_reduce(net, x):
    r = len(x.shape)
    cls = net.pick(["Sum", "Mean", "Max"])
    if not r:
        raise Skip("rank")
    axis = int(net.rng.integers(1, r + 1))
    axis = axis if net.chance(0.5) else axis - r - 1  # the same axis counted from the end
    return net.op(NP, cls, {"axis": axis, "keepdims": net.chance(0.5)}, [x])


def op_pad(net, x):
    width = [[0, 0]] + [[int(net.rng.integers(0, 2)), int(net.rng.integers(0, 2))]
                        for _ in x.shape]
    return net.op(NP, "Pad", {"pad_width": width, "mode": "constant"}, [x],
                  kwargs={"constant_values": 0})


def op_binary(net, xs):
    """An op on two tensors of one shape (or a concatenation op)."""
    a, b = xs[:2]
    if a.shape != b.shape:
        raise Skip("shapes")
    cls = net.pick(["Add", "Subtract", "Multiply", "Maximum", "Minimum", "Concatenate"])
    if cls == "Concatenate":
        return net.op(NP, cls, {"axis": int(net.rng.integers(-len(a.shape), 0))}, [[a, b]])
    return net.op(NP, cls, {}, [a, b])


OP_OPS = [(op_scale, 1), (op_add_const, 1), (op_clip, 0.7), (op_unary, 0.7), (op_max_const, 0.7),
          (op_transpose, 0.7), (op_reshape, 0.5), (op_getitem, 1), (op_reduce, 0.5),
          (op_pad, 0.5)]

SHAPE_OPS = [(op_flatten, 2), (op_reshape, 2), (op_permute, 1.5), (op_crop, 1), (op_pad, 1),
             (op_upsample, 0.7), (op_repeat, 0.5), (op_relu, 1.5), (op_dropout, 0.3)]


# ---- HGQ2 layers ---------------------------------------------------------------------------

ROUND = ["TRN", "RND", "RND_CONV", "S_RND"]
OVERFLOW = ["WRAP", "SAT", "SAT_SYM"]


def rand_quant(net, shape, place, *, k_one=0.9, q_type=None, overflow=None, rnd=None,
               homogeneous=None, **kw):
    """A random HGQ2 quantizer of weight shape `shape` (place datalane/weight/bias/table)."""
    rng = net.rng
    q_type = q_type or net.pick(["kif", "kif", "kbi"])
    overflow = overflow or net.pick(OVERFLOW, p=[0.45, 0.4, 0.15])
    rnd = rnd or net.pick(ROUND, p=[0.4, 0.4, 0.15, 0.05])
    if net.chance(0.1):
        overflow, rnd = overflow.lower(), rnd.lower()
    weight = place in ("weight", "bias")
    lo_i, hi_i = (-2, 1) if weight else (-1, 3)
    lo_f, hi_f = (1, 6) if weight else (0, 5)
    i_range = (lo_i + int(rng.integers(0, 2)), hi_i + int(rng.integers(0, 2)))
    f_range = (lo_f, hi_f - int(rng.integers(0, 3)))
    if homogeneous is not None:
        kw["homogeneous_axis"] = homogeneous
    return net.gen.quant(shape, q_type, place, overflow, rnd, i_range=i_range,
                         f_range=f_range, b_range=(1, 7) if weight else (0, 7), k_one=k_one,
                         prune=net.pick([0.0, 0.06, 0.2]), **kw)


def rand_iq(net, feature_shape):
    """An activation quantizer: per element, per feature axis or one for all."""
    rank = len(feature_shape)
    choice = net.pick(["element", "all", "partial"], p=[0.6, 0.2, 0.2])
    if choice == "element":
        hom = [0]
    elif choice == "all":
        hom = list(range(rank + 1))
    else:
        hom = [0] + [a for a in range(1, rank + 1) if net.chance(0.5)]
    shape = tuple(1 if a in hom else d for a, d in enumerate((None,) + tuple(feature_shape)))
    return rand_quant(net, shape, "datalane", homogeneous=hom,
                      k_one=net.pick([1.0, 0.9, 0.5]))


def rand_wq(net, shape, place):
    """A weight or bias quantizer: trainable (the Keras-side WRAP branch only rounds) or not."""
    return rand_quant(net, shape, place, is_weight=True if place == "weight" else None,
                      trainable=net.chance(0.8))


def rand_activation(net):
    return net.pick(["linear", "relu", "relu6", "tanh", "sigmoid"],
                    p=[0.4, 0.3, 0.05, 0.15, 0.1])


def rand_oq(net, shape, activation):
    if activation in ("tanh", "sigmoid") or net.chance(0.25):
        return rand_iq(net, shape)
    return None


def iq_of(net, x):
    return rand_iq(net, x.shape) if net.chance(0.93) else None


def h_dense(net, x):
    g = net.gen
    if not x.shape:
        raise Skip("rank")
    cin = x.shape[-1]
    units = int(net.rng.integers(1, 9))
    act = rand_activation(net)
    bias = net.chance(0.8)
    cls = "QDense"
    bn = None
    if net.chance(0.25):
        cls = "QBatchNormDense"
        bn = {"scale": net.chance(0.7), "epsilon": net.pick([0.001, 1e-5]),
              "gamma": g.floats((cin,), 0.3) + 1, "mean": g.coarse((cin,), 0.25, 1.0),
              "var": g.variances((cin,))}
        kernel = g.coarse((cin, units), 0.125, 1.5)
        bias = True
    else:
        kernel = g.floats((cin, units))
    out_shape = x.shape[:-1] + (units,)
    layer = hc.qdense(net.name(cls), net.names, x.shape, kernel,
                      g.floats((units,), 1.0) if bias else None, iq=iq_of(net, x),
                      kq=rand_wq(net, (cin, units), "weight"),
                      bq=rand_wq(net, (units,), "bias") if bias else None,
                      oq=rand_oq(net, out_shape, act), activation=act,
                      enable_ebops=net.chance(0.8), bn=bn)
    return net.call(layer, [x])


def h_einsum_dense(net, x):
    g = net.gen
    r = len(x.shape)
    if r == 0:
        raise Skip("rank")
    letters = "acdefgh"[:r]
    d = int(net.rng.integers(1, 7))
    if r >= 2 and net.chance(0.4):
        # contract the last axis, add an output axis and broadcast the bias over the first
        e = int(net.rng.integers(2, 4))
        eq = f"b{letters},{letters[-1]}xy->b{letters[:-1]}xy"
        out = tuple(x.shape[:-1]) + (d, e)
        kshape, bshape, bias_axes = (x.shape[-1], d, e), (d, e), "xy"
        if net.chance(0.5):
            bshape, bias_axes = (1,) * (r - 1) + (1, e), "y"
            bshape = (e,)
    else:
        eq = f"b{letters},{letters[-1]}z->b{letters[:-1]}z"
        out = tuple(x.shape[:-1]) + (d,)
        kshape, bshape, bias_axes = (x.shape[-1], d), (d,), "z"
    act = rand_activation(net)
    bn = None
    cls = "QEinsumDense"
    if len(bshape) == 1 and net.chance(0.3):
        n = bshape[0]
        bn = {"gamma": g.floats((n,), 0.3) + 1, "mean": g.floats((n,)),
              "var": g.variances((n,))}
        cls = "QEinsumDenseBatchnorm"
    use_bias = bn is not None or net.chance(0.8)
    layer = hc.qeinsum_dense(net.name(cls), net.names, x.shape, eq, out, g.floats(kshape),
                             g.floats(bshape, 1.0) if use_bias else None,
                             bias_axes if use_bias else None, iq=iq_of(net, x),
                             kq=rand_wq(net, kshape, "weight"),
                             bq=rand_wq(net, bshape, "bias") if use_bias else None,
                             oq=rand_oq(net, out, act), activation=act, bn=bn)
    return net.call(layer, [x])


def keras_shape(net, cls, cfg, x, weights=()):
    """The output shape of the plain Keras layer `cls` on x (an HGQ2 layer's geometry)."""
    layer = km.make_layer(cls, "probe", cfg, weights, None, len(x.shape) + 1)
    out = ko.apply_layer(layer, [net.probe[id(x)]], {}, ko.Options())[0]
    if 0 in out.shape:
        raise Skip("empty")
    return tuple(out.shape[1:])


def h_conv(net, x):
    g = net.gen
    r = len(x.shape) - 1
    if r not in (1, 2):
        raise Skip("rank")
    cf = net.chance(0.15)
    fmt = "channels_first" if cf else "channels_last"
    cin = x.shape[0] if cf else x.shape[-1]
    groups = net.pick([gr for gr in (1, 2, 3) if cin % gr == 0])
    filters = groups * int(net.rng.integers(1, 4))
    k = int(net.rng.integers(1, 4))
    strides = int(net.pick([1, 1, 2]))
    dilation = 1 if strides > 1 or net.chance(0.8) else 2
    padding = net.pick(["valid", "same"] + (["causal"] if r == 1 and not cf else []))
    kshape = (k,) * r + (cin // groups, filters)
    out_shape = keras_shape(net, f"Conv{r}D", km.conv_cfg(r, filters, k, strides, padding, fmt,
                                                          dilation, groups),
                            x, [("kernel", kshape), ("bias", (filters,))])
    act = rand_activation(net)
    bias = net.chance(0.85)
    layer = hc.qconv(net.name(f"QConv{r}D"), net.names, r, out_shape[1:] if cf else
                     out_shape[:-1], g.floats(kshape),
                     g.floats((filters,), 1.0) if bias else None, iq=iq_of(net, x),
                     kq=rand_wq(net, kshape, "weight"),
                     bq=rand_wq(net, (filters,), "bias") if bias else None,
                     oq=rand_oq(net, out_shape, act), strides=strides, padding=padding,
                     data_format=fmt, dilation_rate=dilation, groups=groups, activation=act)
    return net.call(layer, [x])


def h_batchnorm(net, x):
    g = net.gen
    rank = len(x.shape)
    axis = net.pick([-1, -1] + list(range(1, rank + 1)))
    c = ((None,) + tuple(x.shape))[axis]
    center, scale = net.chance(0.8), net.chance(0.8)
    layer = hc.qbatchnorm(net.name("QBatchNormalization"), net.names, axis=axis,
                          epsilon=net.pick([0.001, 1e-5]), center=center, scale=scale,
                          gamma=g.floats((c,), 0.3) + 1, beta=g.floats((c,)),
                          mean=g.floats((c,)), var=g.variances((c,)), iq=iq_of(net, x),
                          kq=rand_wq(net, (c,), "weight"), bq=rand_wq(net, (c,), "bias"),
                          oq=rand_oq(net, x.shape, "linear"))
    return net.call(layer, [x], {"mask": None})


def h_pool(net, x):
    r = len(x.shape) - 1
    if r not in (1, 2):
        raise Skip("rank")
    kind = net.pick(["AveragePooling", "MaxPooling", "GlobalAveragePooling",
                     "GlobalMaxPooling"])
    cls = f"Q{kind}{r}D"
    if kind.startswith("Global"):
        kw = {"keepdims": net.chance(0.3)}
        cfg = {"data_format": "channels_last", "keepdims": kw["keepdims"]}
    else:
        kw = {"pool_size": int(net.pick([2, 2, 3])), "strides": net.pick([None, 1, 2]),
              "padding": net.pick(["valid", "same"])}
        cfg = km.pool_cfg(r, **kw)
    out_shape = keras_shape(net, f"{kind}{r}D", cfg, x)
    # an oq after a non-power-of-two average has no exact value: only on max pools
    oq = rand_oq(net, out_shape, "linear") if kind.endswith("MaxPooling") else None
    layer = hc.qpool(net.name(cls), net.names, cls, r, iq=iq_of(net, x), oq=oq, **kw)
    return net.call(layer, [x])


def h_quantizer(net, x):
    return net.call(hc.quantizer_layer(net.name("Quantizer"), rand_iq(net, x.shape),
                                       net.names), [x])


def h_lut(net, x):
    act = net.pick(["tanh", "sigmoid", "softsign", "relu"])
    oq = rand_iq(net, x.shape)
    layer = hc.qlut(net.name("QUnaryFunctionLUT"), net.names, act, iq=iq_of(net, x), oq=oq)
    return net.call(layer, [x])


def h_reduce(net, x):
    r = len(x.shape)
    axes = sorted({int(a) for a in net.rng.choice(np.arange(1, r + 1),
                                                  size=int(net.rng.integers(1, r + 1)),
                                                  replace=False)})
    if len(axes) == r and net.chance(0.5):
        axes = axes[:-1] or axes
    cls = net.pick(["QSum", "QMeanPow2"])
    layer = hc.qreduce(net.name(cls), net.names, cls, axes, net.chance(0.4),
                       net.pick([1.0, 0.5, 0.25]) if cls == "QSum" else None,
                       iq=iq_of(net, x))
    return net.call(layer, [x])


def h_merge(net, xs):
    cls = net.pick(["QAdd", "QSubtract", "QMultiply", "QMaximum", "QMinimum", "QAveragePow2"])
    if cls == "QSubtract" and len(xs) != 2:
        cls = "QAdd"
    iqs = [rand_iq(net, x.shape) for x in xs]
    out = xs[0].shape
    layer = hc.qmerge(net.name(cls), net.names, cls, iqs if net.chance(0.95) else [],
                      oq=rand_iq(net, out) if net.chance(0.2) else None)
    return net.call(layer, [list(xs)])


def h_softmax(net, x):
    """QSoftmax over the last axis (stable) or over every feature axis (unstable, with iq)."""
    r = len(x.shape)
    if r > 2 or int(np.prod(x.shape)) > 24:
        raise Skip("a small softmax only")
    stable = net.chance(0.6)
    axes = [r] if stable or r == 1 else list(range(1, r + 1))
    inv_shape = tuple(1 if a + 1 in axes else d for a, d in enumerate(x.shape))
    parts = hm.softmax_quants(net, x.shape, inv_shape, stable)
    kw = {}
    if not stable:
        kw = {"iq": net.gen.datalane(x.shape, ("kif", "WRAP", "RND"), i_range=(0, 1),
                                     f_range=(1, 2)), "input_scaler": 0.5}
    layer = hc.qsoftmax(net.name("QSoftmax"), net.names, axes, stable=stable, **kw, **parts)
    return net.call(layer, [x], {"mask": None})


def h_contract(net, xs):
    """QDot (batch dot over the last axes) or QEinsum of two rank-2 tensors."""
    a, b = xs[:2]
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise Skip("rank")
    grid = (None, net.pick(["WRAP", "SAT"]), net.pick(["TRN", "RND"]))
    if a.shape[1] == b.shape[1] and net.chance(0.5):
        return hm.merge(net, [a, b], "QDot", grid, extra={"axes": -1, "normalize": False})
    if a.shape[1] == b.shape[0]:
        return hm.merge(net, [a, b], "QEinsum", grid, tail={"equation": "abc,acd->abd"})
    if a.shape[0] == b.shape[0]:
        return hm.merge(net, [a, b], "QEinsum", grid, tail={"equation": "abc,abd->acd"})
    raise Skip("shapes")


HGQ_OPS = [(h_dense, 4), (h_einsum_dense, 1.5), (h_conv, 4), (h_batchnorm, 1.5),
           (h_pool, 2.5), (h_quantizer, 1), (h_lut, 0.8), (h_reduce, 0.6), (h_softmax, 0.4)]


# ---- plain Keras layers --------------------------------------------------------------------

def k_activation(net, allow_tables=True):
    acts = ["linear", "relu", "relu6", "hard_tanh"]
    # a table over a float model's unquantized (wide) values would be huge
    if allow_tables and (net.quantized_outputs or not net.float_weights):
        acts += ["tanh", "sigmoid", "silu", "hard_sigmoid", "softsign"]
    return net.pick(acts)


def k_finish_table(net, y, act):
    """round(y·16) after a table activation when outputs are not quantized."""
    if act in ko.TABLE_ACTIVATIONS and not net.quantized_outputs:
        return km.round16(net, y)
    return y


def k_dense(net, x):
    if not x.shape:
        raise Skip("rank")
    units = int(net.rng.integers(1, 9))
    act = k_activation(net)
    bias = net.chance(0.8)
    w = [("kernel", (x.shape[-1], units))] + ([("bias", (units,))] if bias else [])
    y = net.keras("Dense", km.dense_cfg(units, act, bias), x, weights=w)
    return k_finish_table(net, y, act)


def k_einsum_dense(net, x):
    r = len(x.shape)
    if r == 0:
        raise Skip("rank")
    letters = "acdefgh"[:r]
    d = int(net.rng.integers(1, 6))
    eq = f"b{letters},{letters[-1]}z->b{letters[:-1]}z"
    bias = net.chance(0.7)
    w = [("kernel", (x.shape[-1], d))] + ([("bias", (d,))] if bias else [])
    return net.keras("EinsumDense", km.einsum_dense_cfg(eq, x.shape[:-1] + (d,),
                                                        "z" if bias else None), x, weights=w)


def k_conv(net, x):
    r = len(x.shape) - 1
    if r not in (1, 2):
        raise Skip("rank")
    cf = net.chance(0.15)
    cin = x.shape[0] if cf else x.shape[-1]
    kind = net.pick(["conv", "conv", "depthwise", "transpose"])
    k = int(net.rng.integers(1, 4))
    strides = int(net.pick([1, 1, 2]))
    dilation = 1 if strides > 1 or net.chance(0.8) else 2
    padding = net.pick(["valid", "same"] + (["causal"] if r == 1 and kind == "conv" and not cf
                                            else []))
    act = k_activation(net, allow_tables=False)
    bias = net.chance(0.8)
    fmt = "channels_first" if cf else "channels_last"
    if kind == "depthwise":
        dm = int(net.pick([1, 1, 2]))
        cfg = km.depthwise_cfg(r, k, strides, padding, dm, fmt, dilation, act, bias)
        w = [("kernel", (k,) * r + (cin, dm))] + ([("bias", (cin * dm,))] if bias else [])
        return net.keras(f"DepthwiseConv{r}D", cfg, x, weights=w)
    if kind == "transpose":
        filters = int(net.rng.integers(1, 4))
        cfg = km.conv_transpose_cfg(r, filters, k, strides, padding, fmt,
                                    1 if strides > 1 else dilation, act, bias)
        w = [("kernel", (k,) * r + (filters, cin))] + ([("bias", (filters,))] if bias else [])
        net.k2_ok = False
        return net.keras(f"Conv{r}DTranspose", cfg, x, weights=w)
    groups = net.pick([gr for gr in (1, 2, 3) if cin % gr == 0])
    filters = groups * int(net.rng.integers(1, 4))
    cfg = km.conv_cfg(r, filters, k, strides, padding, fmt, dilation, groups, act, bias)
    w = [("kernel", (k,) * r + (cin // groups, filters))] + ([("bias", (filters,))] if bias
                                                              else [])
    return net.keras(f"Conv{r}D", cfg, x, weights=w)


def k_batchnorm(net, x):
    rank = len(x.shape)
    axis = net.pick([-1, -1] + list(range(1, rank + 1)))
    c = ((None,) + tuple(x.shape))[axis]
    cfg = km.bn_cfg(axis, net.pick([0.001, 1e-5]), net.chance(0.8), net.chance(0.8))
    w = ([("gamma", (c,))] if cfg["scale"] else []) + ([("beta", (c,))] if cfg["center"]
                                                       else [])
    w += [("moving_mean", (c,)), ("moving_variance", (c,))]
    return net.keras("BatchNormalization", cfg, x, weights=w)


def k_pool(net, x):
    r = len(x.shape) - 1
    if r not in (1, 2):
        raise Skip("rank")
    kind = net.pick(["AveragePooling", "MaxPooling", "GlobalAveragePooling",
                     "GlobalMaxPooling"])
    cls = f"{kind}{r}D"
    fmt = "channels_first" if net.chance(0.15) else "channels_last"
    if kind.startswith("Global"):
        cfg = {"data_format": fmt, "keepdims": net.chance(0.3)}
    else:
        cfg = km.pool_cfg(r, int(net.pick([2, 2, 3])), net.pick([None, 1, 2]),
                          net.pick(["valid", "same"]), fmt)
    return net.keras(cls, cfg, x)


def k_leaky(net, x):
    if net.chance(0.5):
        return net.keras("LeakyReLU", {"negative_slope": net.pick([0.25, 0.125, 0.5])}, x)
    shared = None
    w_shape = tuple(x.shape)
    if len(x.shape) > 1 and net.chance(0.5):
        shared = list(range(1, len(x.shape)))
        w_shape = (1,) * (len(x.shape) - 1) + (x.shape[-1],)
    return net.keras("PReLU", km.prelu_cfg(shared), x, weights=[("alpha", w_shape)])


def k_activation_layer(net, x):
    act = k_activation(net)
    return k_finish_table(net, net.keras("Activation", {"activation": act}, x), act)


def k_dot(net, xs):
    a, b = xs
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise Skip("rank")
    pairs = [(i, j) for i in (1, 2) for j in (1, 2) if a.shape[i - 1] == b.shape[j - 1]]
    if not pairs:
        raise Skip("shapes")
    i, j = net.pick(pairs)
    return net.keras("Dot", {"axes": [i, j] if i != j else i, "normalize": False}, [a, b])


KERAS_OPS = [(k_dense, 4), (k_einsum_dense, 1), (k_conv, 4), (k_batchnorm, 1.5),
             (k_pool, 2.5), (k_leaky, 1), (k_activation_layer, 1)]


# ---- composing a model ---------------------------------------------------------------------

def rand_shape(rng):
    rank = int(rng.choice([1, 2, 3], p=[0.35, 0.35, 0.3]))
    if rank == 1:
        return (int(rng.integers(2, 13)),)
    if rank == 2:
        return (int(rng.integers(3, 9)), int(rng.integers(1, 5)))
    return (int(rng.integers(3, 7)), int(rng.integers(3, 7)), int(rng.integers(1, 4)))


def op_nested(net, x):
    """A sub-model of one to three random layers (a Functional, or a Sequential of a chain)
    called as a layer: its layers share the outer model's names and random stream."""
    net.n_nested = getattr(net, "n_nested", 0) + 1
    sub = copy.copy(net)
    sub.m = kg.Functional(f"functional_{net.n_nested}", flat_io=True)
    sub.terminal = []
    t = sub.m.input(tuple(x.shape), name=f"input_layer_{10 + net.n_nested}")
    net.probe[id(t)] = net.probe[id(x)]
    ops = (HGQ_OPS if net.hgq else KERAS_OPS) + SHAPE_OPS
    y = t
    for _ in range(int(net.rng.integers(1, 4))):
        z = apply_random(sub, ops, y)
        if z is None or z in sub.terminal:
            break
        y = z
    if y is t:
        raise Skip("an empty sub-model")
    sub.m.output(y)
    model = sub.m
    chain = sequential_of(sub, [t], [y]) if net.chance(0.4) else None
    if chain is not None:
        name = f"sequential_{net.n_nested}"
        model = kg.Sequential(name, tuple(x.shape), chain,
                              input_name=f"input_layer_{10 + net.n_nested}")
        if net.hgq:  # built inside the Sequential's build(): its name scope in front (h5)
            for layer in chain:
                for v, scope in layer.weights():
                    v.path = f"{name}/" + (v.path or "/".join(scope + [v.name]))
    return net.call(model, [x] if net.hgq else x, {"mask": None})


def op_shared(net, x):
    """A layer of the model called again, on another tensor of its input shape."""
    # (a Keras layer with a table activation is followed by round(.16): not called again alone)
    used = [l for l in net.shareable if l.first_input_shape == tuple(x.shape) and
            (net.hgq or net.quantized_outputs or
             l.config().get("activation") not in ko.TABLE_ACTIVATIONS)]
    if not used:
        raise Skip("no layer of this input shape")
    layer = net.pick(used)
    return net.call(layer, [x] if net.hgq else x, dict(layer.nodes[0][1]))


def apply_random(net, ops, x, tries=12):
    """One op drawn by weight that fits x (None when none did)."""
    if not x.shape:
        return None  # one value per sample (a reduction over every axis): an output only
    fns, weights = zip(*ops)
    p = np.asarray(weights, float) / sum(weights)
    for _ in range(tries):
        fn = fns[int(net.rng.choice(len(fns), p=p))]
        try:
            return fn(net, x)
        except (Skip, ko.OracleError):
            continue
    return None


def merge_random(net, xs):
    """Two or more live tensors into one (a merge of equal shapes, or a concatenation)."""
    same = [x for x in xs if x.shape == xs[0].shape]
    try:
        if len(same) >= 2 and net.chance(0.25):
            return op_binary(net, same)
        if net.hgq and net.chance(0.15):
            return h_contract(net, xs)
        if len(same) >= 2:
            if net.hgq and net.chance(0.7):
                return h_merge(net, same[:int(net.rng.integers(2, min(3, len(same)) + 1))])
            if not net.hgq and len(same[0].shape) == 2 and net.chance(0.2):
                return k_dot(net, same[:2])
            return merge_keras(net, same[:2])
        return concat_any(net, xs[:2])
    except (Skip, ko.OracleError):
        return None


def compose(net, n_inputs, n_ops):
    """Builds the graph: a list of live tensors grown op by op, with branches and merges."""
    ops = (HGQ_OPS if net.hgq else KERAS_OPS) + SHAPE_OPS + OP_OPS + \
        [(op_nested, 0.5), (op_shared, 0.5)]
    shape = rand_shape(net.rng)
    inputs = [net.input(shape if j == 0 or net.chance(0.6) else rand_shape(net.rng))
              for j in range(n_inputs)]
    live = list(inputs)
    if n_inputs > 1:  # every input reaches an output: the branches join first
        branches = []
        for x in inputs:
            y = apply_random(net, ops, x) if net.chance(0.5) else None
            branches.append(x if y is None or y in net.terminal else y)
        y = merge_random(net, branches)
        if y is None:
            raise Skip("cannot join the inputs")
        live = [y]
    for _ in range(n_ops):
        if len(live) >= 2 and net.chance(0.25):
            y = merge_random(net, live[-2:])
            if y is not None:
                live = live[:-2] + [y]
                continue
        j = len(live) - 1 if net.chance(0.7) else int(net.rng.integers(0, len(live)))
        y = apply_random(net, ops, live[j])
        if y is None:
            continue
        if y in net.terminal:
            continue  # stays an output (terminal), x stays live
        if net.chance(0.75) or len(live) >= 3:
            live[j] = y
        else:
            live.append(y)  # a branch: x is used again later
    outs = [t for t in live if t not in inputs] + net.terminal
    return inputs, outs[:3] if outs else []


def input_kif_for(net, case_inputs, model):
    """HGQ2: auto-width inputs (None) when every consumer of every input is an HGQ2 layer
    whose input quantizer is WRAP and rounds TRN/RND (trace-alir.md §1.17); else (1, 3, 8)."""
    for t in case_inputs:
        for layer in model.ordered_layers():
            for node in getattr(layer, "nodes", []):
                if node is None or not any(u is t for u in node[2]):
                    continue
                if not layer.module.startswith("hgq"):
                    return hm.SAT_INPUT
                cfg = layer.config()
                confs = [cfg.get("iq_conf")] if "iq_conf" in cfg else cfg.get("iq_confs") or []
                if layer.class_name == "Quantizer":
                    confs = [cfg["config"]]
                if not cfg.get("enable_iq", True) or not confs:
                    return hm.SAT_INPUT
                for c in confs:
                    c = c["config"]
                    if c.get("overflow_mode", "SAT").upper() != "WRAP" or \
                            c["round_mode"].upper() not in ("TRN", "RND"):
                        return hm.SAT_INPUT
    return None


def sequential_of(net, inputs, outs):
    """The model as a Sequential when it is one chain of single-input layers, else None."""
    if len(inputs) != 1 or len(outs) != 1:
        return None
    chain, t = [], outs[0]
    while t is not inputs[0]:
        layer = t.producer
        if len(layer.nodes) != 1 or layer.kind == "op":
            return None
        _, _, tensors = layer.nodes[0]
        if len(tensors) != 1 or t.tensor_index != 0:
            return None
        layer.out_shape = tuple(t.shape)
        chain.append(layer)
        t = tensors[0]
    chain.reverse()
    return chain


class RandomCase:
    """Mixin of a random model's case: its name, kind, forms and comparison tolerance."""
    tolerance = 0.0
    max_bits = 0


class HCase(RandomCase, hm.Case):
    pass


class KCase(RandomCase, km.Case):
    pass


def build(kind, seed, index, samples=300):
    """Model `index` of `seed` (a RandomCase), or None when the oracle cannot make one."""
    name = f"{kind}-{seed}-{index}"
    rng = np.random.default_rng([seed, index, 0 if kind == "hgq" else 1])
    for attempt in range(8):
        net = HNet(name, rng) if kind == "hgq" else KNet(rng)
        if not net.hgq:
            net.quantized_outputs = net.chance(0.4)
            net.float_weights = net.quantized_outputs or net.chance(0.3)
        n_inputs = 2 if net.chance(0.2) else 1
        try:
            inputs, outs = compose(net, n_inputs, int(rng.integers(2, 9)))
        except (Skip, ko.OracleError):
            continue
        if not outs:
            continue
        chain = sequential_of(net, inputs, outs) if net.chance(0.35) else None
        try:
            case = finish(net, name, inputs, outs, chain, samples)
        except (Skip, ko.OracleError):
            continue
        if case is not None:
            return case
    return None


def finish(net, name, inputs, outs, chain, samples):
    shapes = [tuple(t.shape) for t in inputs]
    net.m.flat_io = len(inputs) == 1 and len(outs) == 1
    net.m.output(*outs)
    model = net.m
    if chain is not None:
        model = kg.Sequential("sequential", shapes[0], chain)
        if net.hgq:  # built inside the Sequential's build(): its name scope in front (h5)
            for layer in chain:
                for v, scope in layer.weights():
                    v.path = "sequential/" + (v.path or "/".join(scope + [v.name]))
    if net.hgq:
        kif = input_kif_for(net, inputs, net.m)
        case = HCase(name, model, shapes, kif, ["random"],
                     data_scale=float(net.pick([0.5, 1.0, 2.0, 4.0])))
        case.hgq = True
    else:
        kif = tuple(net.pick([(1, 2, 3), (1, 3, 4), (0, 2, 4), (1, 4, 2), (1, 1, 5)]))
        options = None
        if net.float_weights:
            options = ko.Options(weight_kif=(1, int(net.rng.integers(1, 4)),
                                             int(net.rng.integers(4, 9))),
                                 layer_output_kif=(1, int(net.rng.integers(3, 7)),
                                                   int(net.rng.integers(3, 8)))
                                 if net.quantized_outputs else None)
        case = KCase(name, model, shapes, kif, ["random"], options=options)
        case.hgq = False
        case.k2 = net.k2_ok
        set_keras_weights(net, model)
    case.tolerance = TOLERANCE if net.terminal and any(t in outs for t in net.terminal) else 0
    case.layers = [l.class_name for l in model.ordered_layers()]
    # the oracle must evaluate the model exactly on the test batch (else another model)
    datas = case.data(samples)
    if len(datas[0]) < samples:
        raise Skip("the oracle marks too many samples ambiguous")
    case.max_bits = widest_value(case, datas)
    return case


def significant_bits(values):
    """Significant bits of the widest exact value (0 for tables, rounded values, zeros)."""
    if isinstance(values, (ho.Table, ko.Rounded, ko.Pending)) or not np.size(values):
        return 0
    values = np.asarray(values, np.float64)
    top = float(np.max(np.abs(values)))
    return math.floor(math.log2(top)) + 1 + ko.frac_bits(values) if top else 0


def widest_value(case, datas):
    """The widest value any layer outputs on `datas`: beyond 24 significant bits Keras' float32
    rounds it and no bit-exact answer exists (the exact value is only the oracle's)."""
    if case.hgq:
        ctx = ho.Ctx(len(datas[0]))
        ho.evaluate(case.model, datas, ctx)
        return ctx.max_bits
    widest = [0]
    plain = ko.apply_layer

    def recording(layer, args, kwargs, opts):
        outs = plain(layer, args, kwargs, opts)
        widest[0] = max([widest[0]] + [significant_bits(o) for o in outs])
        return outs
    ko.apply_layer = recording
    try:
        case.expected(datas)
    finally:
        ko.apply_layer = plain
    return widest[0]


def set_keras_weights(net, model):
    """Quarter-grid weights (exact, no options) or trained-looking float32 weights."""
    if net.float_weights:
        km.float_weights(model, int(net.rng.integers(0, 2 ** 31)))
    else:
        km.perturb_weights(model, int(net.rng.integers(0, 2 ** 31)))
    for layer in model.ordered_layers():
        for v in layer.vars:
            if v.name == "moving_variance":
                v.value = (np.abs(v.value) + np.float32(0.25)).astype(np.float32)
            if v.name == "gamma" and not net.float_weights:
                v.value = np.where(v.value == 0, np.float32(1), v.value).astype(np.float32)


# ---- files and checks ----------------------------------------------------------------------

def has_ops(model):
    """Whether the model or one of its sub-models holds an op node."""
    return any(l.kind == "op" or (isinstance(l, kg._Model) and has_ops(l))
               for l in model.ordered_layers())


def write_forms(case, directory):
    """Every form: .keras, Keras 3 .h5, Keras 3 to_json() + .weights.h5 (and the Keras 2
    .h5 and JSON pair for plain models of Keras 2 layers)."""
    stem = os.path.join(directory, case.file_stem())
    forms = {}
    kg.write_keras(case.model, stem + ".keras")
    forms["keras"] = [stem + ".keras"]
    if not has_ops(case.model):
        # Keras 3's legacy config names an op node by its class alone ("Multiply"): Keras
        # reads it back as the layer, so no such .h5 exists of a model with ops
        kg.write_h5(case.model, stem + ".k3.h5", keras=3)
        forms["keras3_h5"] = [stem + ".k3.h5"]
    with open(stem + ".k3.json", "w") as f:
        json.dump(kg.keras_config(case.model), f)
    kg.write_weights_h5(case.model, stem + ".k3.weights.h5")
    forms["keras3_json"] = [stem + ".k3.json", stem + ".k3.weights.h5"]
    if getattr(case, "k2", False):
        kg.write_h5(case.model, stem + ".k2.h5", keras=2)
        forms["keras2_h5"] = [stem + ".k2.h5"]
        kg.write_json_pair(case.model, stem + ".k2.json", stem + ".k2.weights.h5")
        forms["keras2_json"] = [stem + ".k2.json", stem + ".k2.weights.h5"]
    return forms


class Forms:
    write_forms = staticmethod(write_forms)


class Runner(rm.Runner):
    """run_models.Runner with a tolerance for the non-dyadic cases and failure records."""

    def __init__(self, args, tmp):
        super().__init__(args, tmp, models=Forms)
        self.tolerant = []
        self.quiet = set()  # cases whose exact comparison is only a first try
        self.refused = []  # refusals the converter owes no value for (LEGIT_REFUSALS)
        self.beyond = []  # values Keras' float32 rounds: no bit-exact answer exists

    def fail(self, case, text):
        if case.name in self.quiet:
            self.known.append(case.name)
            return
        if "convert failed" in text and any(p in text for p in LEGIT_REFUSALS):
            self.refused.append(f"{case.name}: {text}")
            print(f"REFUSED {case.name}: {text[-200:]}", flush=True)
            return
        if "differ from the oracle" in text and case.max_bits > FLOAT32_BITS:
            self.beyond.append(case.name)
            return
        self.failures.append(f"{case.name}: {text}")
        print(f"FAIL {case.name} [{' '.join(case.layers)}]: {text}", flush=True)

    def check_run(self, case, alir_path, directory):
        if not case.tolerance:
            return super().check_run(case, alir_path, directory)
        self.quiet.add(case.name)
        n = len(self.known)
        super().check_run(case, alir_path, directory)
        self.quiet.discard(case.name)
        if len(self.known) == n:
            return
        # re-check within the tolerance (outputs differ by the float32-rounded SCM steps)
        self.tolerant.append(case.name)
        datas = case.data(self.samples)
        expected = np.concatenate([np.asarray(o, np.float64).reshape(self.samples, -1)
                                   for o in case.expected(datas)], axis=1)
        with open(os.path.join(directory, "out.txt")) as f:
            got = np.array([[float(v) for v in line.split()] for line in f])
        bound = case.tolerance * np.maximum(1.0, np.abs(expected))
        if got.shape != expected.shape or np.any(np.abs(got - expected) > bound):
            diff = np.max(np.abs(got - expected)) if got.shape == expected.shape else None
            self.fail(case, f"beyond the tolerance 2^-16 (relative): max difference {diff}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    build_dir = os.path.join(HERE, "..", "..", "build")
    ap.add_argument("--alkaidc", default=os.environ.get(
        "ALKAIDC", os.path.join(build_dir, "client", "alkaidc")))
    ap.add_argument("--kind", choices=("hgq", "keras", "both"), default="both")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", help="write the files into this directory and keep them")
    ap.add_argument("--name", action="append", default=[],
                    help="only this model (kind-seed-index), repeatable")
    ap.add_argument("--print", action="store_true", help="describe the models, run nothing")
    args = ap.parse_args()
    if args.name:
        todo = [(n.split("-")[0], int(n.split("-")[1]), int(n.split("-")[2]))
                for n in args.name]
    else:
        kinds = ("hgq", "keras") if args.kind == "both" else (args.kind,)
        todo = [(k, args.seed, i) for i in range(args.first, args.first + args.count)
                for k in kinds]
    start = time.monotonic()
    cases, dropped = [], []
    for kind, seed, index in todo:
        case = build(kind, seed, index, args.samples)
        if case is None:
            dropped.append(f"{kind}-{seed}-{index}")
            continue
        cases.append(case)
        if args.print:
            kif = "auto" if case.kif is None else ",".join(map(str, case.kif))
            opts = ""
            if not case.hgq and case.options is not None:
                opts = f" weight_kif={case.options.weight_kif} " \
                       f"output_kif={case.options.layer_output_kif}"
            print(f"{case.name}: {case.model.class_name} {case.shapes} kif={kif}{opts} "
                  f"tol={case.tolerance} {' '.join(case.layers)}")
    if args.print:
        return 0
    tmp = args.keep or tempfile.mkdtemp(prefix="random-models-", dir="/tmp")
    os.makedirs(tmp, exist_ok=True)
    runner = Runner(args, tmp)
    try:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(runner.check_model, cases))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    failed = {f.split(":")[0] for f in runner.failures}
    print(f"{len(cases)} models ({sum(c.hgq for c in cases)} HGQ2, "
          f"{sum(not c.hgq for c in cases)} Keras; {len(dropped)} not buildable), "
          f"{args.samples} samples each, {len(runner.tolerant)} compared within 2^-16, "
          f"{len(runner.refused)} refused for their size, {len(set(runner.beyond))} differing "
          f"beyond float32 ({sum(c.max_bits > FLOAT32_BITS for c in cases)} such models): "
          f"{len(failed)} failed, in {time.monotonic() - start:.1f} s")
    if failed:
        print("failed: " + " ".join(sorted(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
