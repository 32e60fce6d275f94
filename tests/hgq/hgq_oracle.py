"""hgq_oracle: an independent numpy evaluation of HGQ2 models with HGQ2's Keras-side semantics.

It evaluates the kerasgen *description* the test files are written from (hgq_models.py), never
the files and never our C code, computing each HGQ2 layer as the trained Keras model does
(`model.predict`; read from calad0i/HGQ2 src/hgq/** and calad0i/quantizers) and plain Keras
layers with tests/keras/oracle.py. It reads each quantizer the way a converter must: its
serialized config (q_type, round/overflow mode, scaler, affine, trainable, is_weight, the
HardTanh/HardSigmoid config classes) and its internal quantizer's variables *by name*.

Arithmetic:
* Activations are float64 arrays of dyadic numbers and every sum and product goes through
  tests/keras/oracle.py's exactness guard (53 bits on the operands' finest grid, else
  OracleError): these are the exact values a bit-exact circuit computes. (Keras computes them
  in float32; HGQ2's own conversion test allows 1 LSB for that. We allow none.)
* Weights are quantized in IEEE float32 exactly as HGQ2 computes `qkernel`, `qbias` and
  `qscaler_and_qoffset` (frontends.md §3.3), including the batch-norm folds and their quirks,
  which are HGQ2's own computations and therefore what the model computes.
* Table functions (activations, softmax exp and 1/x, the table layers' per-pair MLPs) give a
  `Table`: the float64 value, a float32 evaluation as Keras does it, and a margin for
  implementation differences of transcendental functions (16 float32 ulps; 2^-16 relative
  for the table layers' MLPs). Quantizing a Table gives Q(float64 value); when the interval
  between the two evaluations (widened by the margin) straddles a rounding boundary of the
  quantizer, the sample is marked *ambiguous* (model.predict itself depends on the backend's
  float32 library there) and the tests draw other inputs.

Where the reference's tracer (HGQ2's _alkaid_keras_plugin) computes something else than the
model, this oracle follows the model: MODEL_OVER_TRACER lists those cases.

Entry point: evaluate(model, inputs) -> (outputs, ambiguous mask over the samples).
"""

import math
import os
import sys
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "keras"))
import oracle as ko  # noqa: E402

OracleError = ko.OracleError
f32 = np.float32

MODEL_OVER_TRACER = [
    ("activation quantizer with a scaler",
     "mirror_quantizer computes Q(x/s) and omits the final ·s; the Keras Quantizer computes "
     "Q(x/s)·s"),
    ("S_RND / S_RND_CONV rounding",
     "the tracer's symbolic quantize fails; at inference (training not True) the Keras "
     "quantizer rounds as RND / RND_CONV (we convert it: an extension)"),
    ("activation quantizer with is_weight=True, WRAP, trainable",
     "the tracer applies the full Q (round, wrap, zero pruned elements); Keras only rounds "
     "(KIF any mode; KBI when RND)"),
    ("QConv1D padding='causal'",
     "the tracer's conv handler refuses it; HGQ2 pads (k-1)*d on the left, then 'valid'"),
    ("QEinsumDenseT with a non-linear final activation",
     "the tracer applies the activation twice (in the handler and again in the base class); "
     "Keras once"),
    ("QDenseT / QConvT batch_norm with center=False",
     "the tracer's table uses beta = 1; Keras' BatchNormalization uses no offset (0)"),
    ("table layers' sub-network activations gelu, hard_silu",
     "the tracer tables tanh-approximated gelu and x·clip((x+1)/2, 0, 1); Keras uses the erf "
     "gelu and x·relu6(x+3)/6"),
    ("table layers' toq with a scaler or affine",
     "the tracer's table quantization ignores them; Keras' Quantizer applies them"),
]


class Table:
    """A table function's values before quantization (see the module's doc)."""

    def __init__(self, v64, v32, margin):
        self.v64 = np.asarray(v64, np.float64)
        self.v32 = np.asarray(v32, np.float64)
        self.margin = np.broadcast_to(np.asarray(margin, np.float64), self.v64.shape)

    @property
    def shape(self):
        return self.v64.shape

    @property
    def ndim(self):
        return self.v64.ndim

    def map(self, fn):
        """A shape operation (reshape, transpose, ...) applied to every part."""
        return Table(fn(self.v64), fn(self.v32), fn(self.margin))


def ulp32(v):
    v = np.abs(np.asarray(v, np.float64))
    e = np.floor(np.log2(np.where(v > 0, v, 1.0)))
    return np.where(v > 0, 2.0 ** (np.maximum(e, -126) - 23), 2.0 ** -149)


def _short_dyadic(v, bits=12):
    """True where v is a dyadic number of at most `bits` significant bits (exp(0) = 1,
    sigmoid(0) = 0.5: values every implementation gets exactly)."""
    v = np.asarray(v, np.float64)
    m, _ = np.frexp(np.abs(v))
    return (m * 2.0 ** bits) == np.round(m * 2.0 ** bits)


def table(v64, v32, transcendental=True, margin=None):
    """A Table from the two evaluations; `margin` defaults to 16 float32 ulps for
    transcendental functions (0 where both agree on a short dyadic value, 0 for rational
    functions, which float32 rounds correctly)."""
    v64 = np.asarray(v64, np.float64)
    v32 = np.asarray(v32, np.float32).astype(np.float64)
    if margin is None:
        margin = 16 * ulp32(v64) if transcendental else 0.0
        if transcendental:
            margin = np.where((v64 == v32) & _short_dyadic(v64), 0.0, margin)
    return Table(v64, v32, margin)


# ---- activations: float64 and float32 (Keras formulas) -------------------------------------

def _sig32(x):
    return f32(1) / (f32(1) + np.exp(-x))


def _hsig32(x):
    return np.clip(x + f32(3), f32(0), f32(6)) / f32(6)


F32_ACTIVATIONS = {
    "tanh": np.tanh, "exponential": np.exp, "sigmoid": _sig32,
    "silu": lambda x: x * _sig32(x), "swish": lambda x: x * _sig32(x),
    "softsign": lambda x: x / (f32(1) + np.abs(x)), "hard_sigmoid": _hsig32,
    "hard_silu": lambda x: x * _hsig32(x), "hard_swish": lambda x: x * _hsig32(x),
}
RATIONAL = {"softsign", "hard_sigmoid", "hard_silu", "hard_swish"}


def activation_fns(name):
    """(float64 fn, float32 fn, transcendental) of a Keras activation that makes a table."""
    fn64 = ko.TABLE_ACTIVATIONS[name]
    fn32 = F32_ACTIVATIONS.get(name)
    if fn32 is None:  # correctly rounded float32 of the float64 value; the margin covers it
        fn32 = lambda x, fn=fn64: f32(fn(np.asarray(x, np.float64)))  # noqa: E731
    return fn64, fn32, name not in RATIONAL


def apply_activation(name, x, where):
    """A Keras activation on exact values: exact ones exactly, the others as a Table."""
    if name is None or name in ko.EXACT_ACTIVATIONS:
        return ko.activation(name, _exact(x, where), where)
    if name not in ko.TABLE_ACTIVATIONS:
        raise OracleError(f"{where}: unsupported activation {name!r}")
    fn64, fn32, trans = activation_fns(name)
    x = _exact(x, where)
    with np.errstate(all="ignore"):
        return table(fn64(x), fn32(x.astype(f32)), trans)


def _exact(x, where):
    if isinstance(x, Table):
        raise OracleError(f"{where}: a table function's output must be quantized first")
    if isinstance(x, ko.Rounded):
        raise OracleError(f"{where}: a rounded (non-dyadic) value feeds another layer")
    return np.asarray(x, np.float64).view(np.ndarray)


# ---- quantizers (frontends.md §3.1, HGQ2 fixed_point_quantizer.py, quantizers) --------------

ROUND_MODES = ("TRN", "RND", "RND_CONV", "TRN_ZERO", "RND_ZERO", "RND_MIN_INF", "RND_INF")


def round_fn(mode, xs, xp=np):
    """The quantizers package's round modes on x·2^f (xp: the dtype's arithmetic)."""
    half = xs.dtype.type(0.5)
    if mode == "TRN":
        return np.floor(xs)
    if mode == "RND":
        return np.floor(xs + half)
    if mode == "RND_CONV":
        return np.round(xs)
    if mode == "TRN_ZERO":
        return np.floor(np.abs(xs)) * np.sign(xs)
    if mode == "RND_ZERO":
        return -np.floor(-np.abs(xs) + half) * np.sign(xs)
    if mode == "RND_MIN_INF":
        return -np.floor(-xs + half)
    if mode == "RND_INF":
        return np.floor(np.abs(xs) + half) * np.sign(xs)
    raise OracleError(f"round mode {mode}")


def fixed_q(x, k, i, f, overflow, rnd, round_only=False):
    """The internal fixed-point quantizer at inference, in x's dtype (float64 for exact
    activations, float32 for HGQ2's weight path): saturate (non-WRAP) on i' = max(i, -f),
    round on 2^-f, wrap (WRAP) into [-k·2^i', 2^i'), zero where k + i + f <= 0 (the original
    i). `round_only`: the WRAP weight branch, which only rounds."""
    t = x.dtype.type
    k, i, f = (np.broadcast_to(np.asarray(v, x.dtype), x.shape) for v in (k, i, f))
    two = t(2)
    if round_only:
        return round_fn(rnd, x * two ** f) / two ** f
    i2 = np.maximum(i, -f)
    if overflow in ("SAT", "SAT_SYM"):
        top = two ** i2 - two ** -f
        low = -k * two ** i2 if overflow == "SAT" else -top * k
        x = np.where(x > top, top, np.where(x < low, low, x))
    elif overflow != "WRAP":
        raise OracleError(f"overflow mode {overflow}")
    y = round_fn(rnd, x * two ** f) / two ** f
    if overflow == "WRAP":
        bk = i2 + k
        bias = k * two ** (bk - 1)
        y = np.mod(y + bias, two ** bk) - bias
    return np.where(k + i + f > 0, y, t(0)).astype(x.dtype)


SUGAR_CONFIGS = {"HardTanhConfig": ("SAT", None), "HardSigmoidConfig": ("SAT", (0.25, 0.5))}


class Quantizer:
    """One HGQ2 quantizer read from its serialized config and its internal quantizer's
    variables (an Obj whose child `quantizer` holds k, i, f or b, i by name)."""

    def __init__(self, conf, obj, where):
        self.where = where
        cls, c = conf["class_name"], conf["config"]
        q_type = c["q_type"].lower()
        if q_type not in ("kif", "kbi"):
            raise OracleError(f"{where}: {q_type} quantizer (only fixed-point ones convert)")
        self.q_type = q_type
        rnd = c["round_mode"].upper()
        self.round = rnd[2:] if rnd.startswith("S_") else rnd
        if cls in SUGAR_CONFIGS:
            self.overflow, self.affine = SUGAR_CONFIGS[cls]
        else:
            self.overflow = c["overflow_mode"].upper()
            self.affine = None if c.get("affine") is None else tuple(c["affine"])
        if self.overflow not in ("WRAP", "SAT", "SAT_SYM"):
            raise OracleError(f"{where}: overflow mode {self.overflow}")
        self.scaler = c.get("scaler")
        self.trainable = c.get("trainable", True)
        self.is_weight = c.get("is_weight", False)
        inner = _child(obj, "quantizer")
        v = {var.name: np.asarray(var.value) for var in inner.vars}
        if v["k"].dtype != np.uint8:
            raise OracleError(f"{where}: k is {v['k'].dtype}, not uint8")
        self.k = v["k"].astype(np.float64)
        self.i = np.round(v["i"].astype(np.float64))
        if q_type == "kif":
            self.f = np.round(v["f"].astype(np.float64))
        else:
            self.f = np.round(v["b"].astype(np.float64)) - self.i
        # The Keras-side WRAP branch of a trainable weight quantizer rounds only.
        self.round_only = (self.overflow == "WRAP" and self.trainable and self.is_weight and
                           (q_type == "kif" or self.round == "RND"))

    def _core(self, x):
        return fixed_q(x, self.k, self.i, self.f, self.overflow, self.round, self.round_only)

    def _pipeline64(self, x):
        """Quantizer.call on exact float64 values: /scaler, Q, ·scaler, affine."""
        s = self.scaler
        if s is not None:
            if math.frexp(s)[0] != 0.5:
                raise OracleError(f"{self.where}: a non-power-of-two scaler on activations "
                                  "has no exact value")
            x = x / s
        y = self._core(x)
        if s is not None:
            y = y * s
        if self.affine is not None:
            a, b = self.affine
            y = ko.ex_add(ko.ex_mul(y, a, self.where), b, self.where)
        return y

    def act(self, ctx, x):
        """The activation quantizer (Keras: Quantizer.call, training None)."""
        if isinstance(x, Table):
            y = self._pipeline64(x.v64)
            lo = self._pipeline64(np.minimum(x.v64, x.v32) - x.margin)
            hi = self._pipeline64(np.maximum(x.v64, x.v32) + x.margin)
            ctx.flag(lo != hi, self.where)
            return y
        return self._pipeline64(_exact(x, self.where))

    def weight(self, w):
        """HGQ2's weight path (kq(kernel), bq(bias), ...) in IEEE float32."""
        x = np.asarray(w, f32)
        s = self.scaler
        if s is not None:
            x = x / f32(s)
        y = self._core(x)
        if s is not None:
            y = y * f32(s)
        if self.affine is not None:
            y = y * f32(self.affine[0]) + f32(self.affine[1])
        return y.astype(f32)


def _child(obj, attr):
    for a, c in obj.children:
        if a == attr:
            return c
    raise OracleError(f"{obj.name}: no {attr}")


def _maybe_child(obj, attr):
    for a, c in obj.children:
        if a == attr:
            return c
    return None


def quantizer(layer, cfg, attr, conf_key=None, where=None):
    """The quantizer of `layer` at attribute `attr` with config cfg[conf_key]."""
    conf = cfg[conf_key or f"{attr}_conf"]
    return Quantizer(conf, _child(layer, attr), where or f"{layer.name}/{attr}")


def layer_iq(layer, cfg, ctx, x):
    if cfg.get("enable_iq") and _maybe_child(layer, "iq") is not None:
        return quantizer(layer, cfg, "iq").act(ctx, x)
    return x


def layer_oq(layer, cfg, ctx, y):
    if cfg.get("enable_oq"):
        return quantizer(layer, cfg, "oq").act(ctx, y)
    return y


class Ctx:
    """The batch being evaluated: which samples are ambiguous (see Table)."""

    def __init__(self, n):
        self.n = n
        self.ambiguous = np.zeros(n, bool)
        self.where = {}
        self.max_bits = 0  # the widest exact layer output (significant bits)

    def note(self, outs):
        """Tracks the widest layer output: up to 24 bits, Keras' float32 holds it exactly."""
        for o in outs:
            if isinstance(o, (Table, ko.Rounded)) or not np.size(o):
                continue
            top = float(np.max(np.abs(o)))
            if top:
                bits = math.floor(math.log2(top)) + 1 + ko.frac_bits(o)
                self.max_bits = max(self.max_bits, bits)

    def flag(self, mask, where):
        mask = np.asarray(mask)
        if mask.ndim == 0 or not mask.any():
            return
        per_sample = mask.reshape(mask.shape[0], -1).any(axis=1)
        if per_sample.shape[0] == self.n:
            self.ambiguous |= per_sample
            self.where[where] = self.where.get(where, 0) + int(per_sample.sum())
        else:
            raise OracleError(f"{where}: an ambiguous table value outside the batch")


def _vars(obj):
    return {v.name: np.asarray(v.value) for v in obj.vars}


# ---- float32 weight folds (frontends.md §3.3) -----------------------------------------------

def f32_exact_dot(a, b, where):
    """a @ b in float32 when every product and partial sum is exact in float32 (any
    summation order gives it); otherwise no order-independent value exists."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    y = a64 @ b64
    fb = ko.frac_bits(a64) + ko.frac_bits(b64)
    top = float(np.max(np.abs(a64) @ np.abs(b64))) if y.size else 0.0
    if top and math.floor(math.log2(top)) + 1 + fb > 24:
        raise OracleError(f"{where}: a float32 dot product whose value depends on the "
                          "summation order")
    return y.astype(f32)


def batchnorm_dense_fold(w, cfg):
    """QBatchNormDense: kernel·s with s = gamma/sqrt(var + epsilon), bias − mean @ kernel."""
    gamma = w["bn_gamma"] if cfg["scale"] else 1
    s = (gamma / np.sqrt(w["moving_variance"] + f32(cfg["epsilon"]))).astype(f32)
    kernel = (s[:, None] * w["kernel"]).astype(f32)
    offset = -f32_exact_dot(w["moving_mean"], w["kernel"], "QBatchNormDense offset")
    return kernel, (w["bias"] + offset).astype(f32)


def einsum_batchnorm_fold(w, cfg):
    """QEinsumDenseBatchnorm: Keras' epsilon() = 1e-7 (not the layer's), normalize_axes =
    bias_axes (not saved; Keras' reload default), gamma 1 without a gamma variable."""
    eq = cfg["equation"].replace("...", "0")
    kernel_axes = eq.split(",")[1].split("->")[0]
    normalize = cfg.get("normalize_axes") or cfg["bias_axes"]
    norm = "".join(c for c in kernel_axes if c in normalize)
    gamma = w["gamma"] if "gamma" in w else 1
    s = (gamma / np.sqrt(w["moving_variance"] + f32(1e-7))).astype(f32)
    kernel = np.einsum(f"{kernel_axes},{norm}->{kernel_axes}", w["kernel"], s).astype(f32)
    offset = (-w["moving_mean"] * s).astype(f32).reshape(w["bias"].shape)
    return kernel, (w["bias"] + offset).astype(f32)


def batchnorm_fold(w, cfg):
    """QBatchNormalization: scale = gamma/sqrt(var + eps), offset = beta − mean·scale, with
    beta = 1 when center=False (HGQ2's code: the model computes it)."""
    gamma = w["bn_gamma"] if cfg["scale"] else 1
    beta = w["bn_beta"] if cfg["center"] else 1
    s = (gamma / np.sqrt(w["moving_variance"] + f32(cfg["epsilon"]))).astype(f32)
    return s, (beta - (w["moving_mean"] * s).astype(f32)).astype(f32)


# ---- layer handlers: fn(layer, cfg, args, kwargs, ctx) -> value or list ---------------------

def _shim(cls):
    """A stand-in for tests/keras/oracle.py handlers that only read the class name."""
    return types.SimpleNamespace(class_name=cls, name=cls)


def h_quantizer(layer, cfg, args, kwargs, ctx):
    return Quantizer(cfg["config"], layer, layer.name).act(ctx, args[0])


def _dense_weights(layer, cfg):
    w = _vars(layer)
    cls = layer.class_name
    if cls == "QBatchNormDense":
        kernel, bias = batchnorm_dense_fold(w, cfg)
    elif cls == "QEinsumDenseBatchnorm":
        kernel, bias = einsum_batchnorm_fold(w, cfg)
    else:
        kernel, bias = w["kernel"], w.get("bias")
    qk = quantizer(layer, cfg, "kq").weight(kernel)
    qb = None if bias is None else quantizer(layer, cfg, "bq").weight(bias)
    return qk, qb


def h_dense(layer, cfg, args, kwargs, ctx):
    """QDense, QBatchNormDense, QEinsumDense, QEinsumDenseBatchnorm."""
    x = _exact(layer_iq(layer, cfg, ctx, args[0]), layer.name)
    qk, qb = _dense_weights(layer, cfg)
    eq = cfg.get("equation", "...c,cC->...C")
    y = ko.ex_einsum(eq, x, qk, layer.name)
    if qb is not None:
        y = ko.ex_add(y, qb, layer.name)
    y = apply_activation(cfg["activation"], y, layer.name)
    return layer_oq(layer, cfg, ctx, y)


def conv_nd(x, qk, qb, cfg):
    """Keras BaseConv on exact values (channels_first moved last inside)."""
    rank = len(cfg["kernel_size"])
    x = ko._to_last(x, cfg["data_format"])
    y = ko._conv_core(x, qk, cfg["groups"], ko._tuple(cfg["kernel_size"], rank),
                      ko._tuple(cfg["strides"], rank), ko._tuple(cfg["dilation_rate"], rank),
                      cfg["padding"])
    if qb is not None:
        y = ko.ex_add(y, qb, "convolution bias")
    return ko._from_last(y, cfg["data_format"])


def h_conv(layer, cfg, args, kwargs, ctx):
    x = _exact(layer_iq(layer, cfg, ctx, args[0]), layer.name)
    qk, qb = _dense_weights(layer, cfg)
    y = apply_activation(cfg["activation"], conv_nd(x, qk, qb, cfg), layer.name)
    return layer_oq(layer, cfg, ctx, y)


def h_batchnorm(layer, cfg, args, kwargs, ctx):
    x = _exact(layer_iq(layer, cfg, ctx, args[0]), layer.name)
    s, o = batchnorm_fold(_vars(layer), cfg)
    qs = quantizer(layer, cfg, "kq").weight(s)
    qo = quantizer(layer, cfg, "bq").weight(o)
    shape = [1] * x.ndim
    shape[cfg["axis"]] = x.shape[cfg["axis"]]
    y = ko.ex_add(ko.ex_mul(x, qs.reshape(shape), layer.name), qo.reshape(shape), layer.name)
    return layer_oq(layer, cfg, ctx, y)


def h_pool(layer, cfg, args, kwargs, ctx):
    x = _exact(layer_iq(layer, cfg, ctx, args[0]), layer.name)
    keras_cls = layer.class_name[1:]
    fn = ko._global_pool if keras_cls.startswith("Global") else ko._pool
    y = fn(_shim(keras_cls), cfg, [x], {}, ko.Options())
    if isinstance(y, ko.Rounded) and cfg.get("enable_oq"):
        raise OracleError(f"{layer.name}: a non-power-of-two average feeds a quantizer")
    return layer_oq(layer, cfg, ctx, y)


def multi_iq(layer, cfg, ctx, xs):
    if not cfg.get("enable_iq"):
        return [_exact(x, layer.name) for x in xs]
    items = _child(_child(layer, "iq"), "quantizers")
    confs = cfg["iq_confs"]
    if not isinstance(confs, list):
        confs = [confs] * len(xs)
    return [_exact(Quantizer(c, q, f"{layer.name}/iq/{j}").act(ctx, x), layer.name)
            for j, (c, q, x) in enumerate(zip(confs, items, xs))]


def h_merge(layer, cfg, args, kwargs, ctx):
    xs = multi_iq(layer, cfg, ctx, list(args[0]))
    cls = layer.class_name
    if cls == "QAveragePow2":
        y = xs[0]
        for x in xs[1:]:
            y = ko.ex_add(y, x, layer.name)
        y = ko.ex_mul(y, 2.0 ** round(math.log2(1.0 / len(xs))), layer.name)
    elif cls == "QDot":
        y = ko._dot_layer(_shim("Dot"), cfg, [xs], {}, ko.Options())
    elif cls == "QEinsum":
        y = ko.ex_einsum(cfg["equation"], xs[0], xs[1], layer.name)
    else:
        y = ko._merge(_shim(cls[1:]), cfg, [xs], {}, ko.Options())
    return layer_oq(layer, cfg, ctx, y)


def h_reduce(layer, cfg, args, kwargs, ctx):
    x = _exact(layer_iq(layer, cfg, ctx, args[0]), layer.name)
    axes = tuple(a % x.ndim for a in cfg["axes"])
    if layer.class_name == "QSum":
        scale = cfg["scale"]
    else:
        scale = 2.0 ** round(math.log2(1.0 / math.prod(x.shape[a] for a in axes)))
    y = ko.ex_mul(ko.ex_sum(x, axes, cfg["keepdims"], layer.name), scale, layer.name)
    return layer_oq(layer, cfg, ctx, y)


def h_lut(layer, cfg, args, kwargs, ctx):
    x = _exact(layer_iq(layer, cfg, ctx, args[0]), layer.name)
    name = cfg["activation"]
    if layer.class_name == "QAffinedUnaryFunctionLUT":
        # Keras computes activation(x·scale + bias) in float32: both evaluations are kept.
        w = _vars(layer)
        s, b = w["scale"], w["bias"]
        arg64 = x * s.astype(np.float64) + b.astype(np.float64)
        arg32 = (x.astype(f32) * s + b).astype(f32)
        if name in ko.EXACT_ACTIVATIONS:
            fn = ko.EXACT_ACTIVATIONS[name]
            y = table(fn(arg64), fn(arg32), False)
        elif name in ko.TABLE_ACTIVATIONS:
            fn64, fn32, trans = activation_fns(name)
            with np.errstate(all="ignore"):
                y = table(fn64(arg64), fn32(arg32), trans)
        else:
            raise OracleError(f"{layer.name}: unsupported activation {name!r}")
    else:
        y = apply_activation(name, x, layer.name)
    return layer_oq(layer, cfg, ctx, y)


def softmax(ctx, x, axes, stable, input_scaler, exp_iq, exp_oq, inv_iq, inv_oq, where):
    """QSoftmax's body after its own iq (exp/inv oq: SAT, RND_CONV as HGQ2 forces them)."""
    if stable:
        x = ko.ex_sub(np.max(x, axis=axes, keepdims=True), x, where)
        x = exp_iq.act(ctx, x)
    s = float(input_scaler)
    with np.errstate(all="ignore"):
        sign = -1.0 if stable else 1.0
        e64 = np.exp(sign * x * s)
        e32 = np.exp(f32(sign) * x.astype(f32) * f32(s))
    e = exp_oq.act(ctx, table(e64, e32, True))
    total = ko.ex_sum(e, axes, True, where)
    d_in = inv_iq.act(ctx, total)
    d64 = 1.0 / (d_in + 1e-7)
    d32 = f32(1) / (d_in.astype(f32) + f32(1e-7))
    d = inv_oq.act(ctx, table(d64, d32, False))
    return ko.ex_mul(e, d, where)


def _forced_table_oq(q):
    q.overflow, q.round = "SAT", "RND_CONV"
    q.round_only = False
    return q


def softmax_parts(obj, confs, where):
    """exp/inv table quantizers of a QSoftmax object, from the given configs."""
    exp_t, inv_t = _child(obj, "exp_table"), _child(obj, "inv_table")
    exp_iq = None
    if confs["exp_iq"] is not None and _maybe_child(exp_t, "iq") is not None:
        exp_iq = Quantizer(confs["exp_iq"], _child(exp_t, "iq"), f"{where}/exp_table/iq")
    return dict(
        exp_iq=exp_iq,
        exp_oq=_forced_table_oq(Quantizer(confs["exp_oq"], _child(exp_t, "oq"),
                                          f"{where}/exp_table/oq")),
        inv_iq=Quantizer(confs["inv_iq"], _child(inv_t, "iq"), f"{where}/inv_table/iq"),
        inv_oq=_forced_table_oq(Quantizer(confs["inv_oq"], _child(inv_t, "oq"),
                                          f"{where}/inv_table/oq")))


def h_softmax(layer, cfg, args, kwargs, ctx):
    x = _exact(layer_iq(layer, cfg, ctx, args[0]), layer.name)
    axes = tuple(a % x.ndim for a in cfg["axes"])
    parts = softmax_parts(layer, {"exp_iq": cfg["exp_iq_conf"], "exp_oq": cfg["exp_oq_conf"],
                                  "inv_iq": cfg["inv_iq_conf"], "inv_oq": cfg["inv_oq_conf"]},
                          layer.name)
    y = softmax(ctx, x, axes, cfg["stable"], cfg["input_scaler"], where=layer.name, **parts)
    return layer_oq(layer, cfg, ctx, y)


# -- table layers: per-element MLPs evaluated on the (quantized) inputs --

def _align(arr, letters, target):
    """arr (axes named by `letters`) transposed and reshaped to broadcast over `target`."""
    order = [c for c in target if c in letters]
    arr = np.transpose(arr, [letters.index(c) for c in order])
    return arr.reshape([arr.shape[order.index(c)] if c in letters else 1 for c in target])


def mlp_tables(x, mlp, sub_activation, x_letters, w_letters):
    """The table layer's sub-network (EinsumDense layers whose kernels are indexed by the
    `w_letters` axes of x) on every element of x: (float64 values, float32 values)."""
    free = sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") -
                  set(x_letters) - set(w_letters))
    hin, hout = free[0], free[1]
    if sub_activation in ko.EXACT_ACTIVATIONS or sub_activation is None:
        fn64 = fn32 = ko.EXACT_ACTIVATIONS[sub_activation or "linear"]
    else:
        fn64, fn32, _ = activation_fns(sub_activation)
    h64, h32 = x[..., None], x.astype(f32)[..., None]
    for j, (kernel, bias) in enumerate(mlp):
        last = j == len(mlp) - 1
        out = x_letters if last else x_letters + hout
        eq = f"{x_letters}{hin},{w_letters}{hin}{'' if last else hout}->{out}"
        h64 = np.einsum(eq, h64, kernel.astype(np.float64))
        h32 = np.einsum(eq, h32, kernel.astype(f32))
        if bias is not None:
            bl = w_letters + ("" if last else hout)
            h64 = h64 + _align(bias.astype(np.float64), bl, out)
            h32 = (h32 + _align(bias.astype(f32), bl, out)).astype(f32)
        if not last:
            with np.errstate(all="ignore"):
                h64, h32 = fn64(h64), fn32(h32).astype(f32)
    return h64, h32


def _mlp_weights(layer):
    seq = _child(layer, "module")
    out = []
    for sub in _child(seq, "layers"):
        w = _vars(sub)
        out.append((w["kernel"], w.get("bias")))
    return out


def mlp_margin(v):
    """Float32 einsum order and library activations differ by a few ulps of the partial
    values; 2^-16 relative covers the sub-networks of the tests."""
    return 2.0 ** -16 * np.maximum(1.0, np.abs(v))


def dense_t(layer, cfg, x, ctx):
    """QDenseT's body on x (..., n_in): broadcast to (..., n_in, n_out), iq, the per-pair
    tables, Keras BatchNormalization / sqrt(n_in), toq, sum over n_in, activation, oq."""
    n_out = cfg.get("n_out", cfg.get("filters"))
    n_in = x.shape[-1]
    x = np.broadcast_to(x[..., None], x.shape + (n_out,))
    x = _exact(layer_iq(layer, cfg, ctx, x), layer.name)
    letters = "abcdefghijklmn"[:x.ndim - 2] + "io"
    v64, v32 = mlp_tables(x, _mlp_weights(layer), cfg["subnn_activation"], letters, "io")
    if cfg["batch_norm"]:
        w = _vars(_child(layer, "bn_module"))
        g = w["gamma"] if cfg["bn_scale"] else np.ones_like(w["moving_mean"])
        b = w["beta"] if cfg["bn_center"] else np.zeros_like(w["moving_mean"])
        eps = cfg["bn_epsilon"]
        v64 = ((v64 - w["moving_mean"]) / np.sqrt(w["moving_variance"].astype(np.float64) + eps)
               * g + b) / math.sqrt(n_in)
        inv = (f32(1) / np.sqrt(w["moving_variance"] + f32(eps)) * g).astype(f32)
        v32 = ((v32 * inv + (-w["moving_mean"] * inv + b)) / f32(math.sqrt(n_in))).astype(f32)
    q = quantizer(layer, cfg, "toq").act(ctx, table(v64, v32, margin=mlp_margin(v64)))
    y = ko.ex_sum(q, -2, what=layer.name)
    y = apply_activation(cfg["activation"], y, layer.name)
    return layer_oq(layer, cfg, ctx, y)


def h_dense_t(layer, cfg, args, kwargs, ctx):
    return dense_t(layer, cfg, _exact(args[0], layer.name), ctx)


def h_conv_t(layer, cfg, args, kwargs, ctx):
    """QConvT1D/2D: Keras extract_patches (1D as a (k, 1) 2D patch), then QDenseT."""
    x = _exact(args[0], layer.name)
    rank = len(cfg["kernel_size"])
    fmt = cfg["data_format"]
    x = ko._to_last(x, fmt)
    size, strides, dil = (ko._tuple(cfg[k], rank) for k in ("kernel_size", "strides",
                                                           "dilation_rate"))
    if rank == 1:
        x, size, strides, dil = x[:, :, None, :], size + (1,), strides + (1,), dil + (1,)
    p = ko.patches(x, size, strides, dil, ko._pads(cfg["padding"], x.shape[1:-1], size,
                                                   strides, dil))
    p = p.reshape(p.shape[:-2] + (-1,))
    if rank == 1:
        p = p[:, :, 0]
    y = dense_t(layer, cfg, p, ctx)
    return y if fmt == "channels_last" else ko._from_last(y, fmt)


def einsum_t_geometry(equation):
    """QEinsumDenseT's build-time state from an explicit equation: (input, weight, output,
    presum letters, contract axes, output transpose)."""
    inp, rest = equation.split(",")
    w, out = rest.split("->")
    if "..." in equation:
        raise OracleError(f"{equation}: the tests use explicit equations")
    extra = "".join(c for c in w if c not in inp)
    presum = inp + extra
    contract = tuple(j for j, c in enumerate(inp) if c not in out)
    post = "".join(c for c in inp if c in out) + extra
    transpose = tuple(post.index(c) for c in out)
    return inp, w, out, presum, contract, transpose


def einsum_dense_t(layer, cfg, x, ctx):
    eq = cfg["equation"]
    mlp = _mlp_weights(layer)
    inp, w, out, presum, contract, transpose = einsum_t_geometry(eq)
    kdims = dict(zip(w, mlp[0][0].shape[:len(w)]))
    extra = presum[len(inp):]
    x = x.reshape(x.shape + (1,) * len(extra))
    x = np.broadcast_to(x, x.shape[:len(inp)] + tuple(kdims[c] for c in extra))
    x = _exact(layer_iq(layer, cfg, ctx, x), layer.name)
    v64, v32 = mlp_tables(x, mlp, cfg["subnn_activation"], presum, w)
    n_in = math.prod(x.shape[a] for a in contract) if contract else 1
    if cfg["batch_norm"]:
        wv = _vars(layer)
        norm = cfg["normalize_axes"]
        sc = wv["bn_gamma"] if cfg["bn_scale"] else 1.0
        sc64 = sc / np.sqrt(wv["moving_variance"].astype(np.float64) + cfg["bn_epsilon"])
        sc32 = (f32(sc) if np.isscalar(sc) else sc) / np.sqrt(wv["moving_variance"] +
                                                               f32(cfg["bn_epsilon"]))
        off64, off32 = -wv["moving_mean"] * sc64, (-wv["moving_mean"] * sc32).astype(f32)
        if cfg["bn_center"]:
            off64, off32 = off64 + wv["bn_beta"], (off32 + wv["bn_beta"]).astype(f32)
        v64 = (v64 * _align(sc64, norm, presum) + _align(off64, norm, presum)) / math.sqrt(n_in)
        v32 = ((v32 * _align(sc32.astype(f32), norm, presum) + _align(off32, norm, presum)) /
               f32(math.sqrt(n_in))).astype(f32)
    q = quantizer(layer, cfg, "toq").act(ctx, table(v64, v32, margin=mlp_margin(v64)))
    y = ko.ex_sum(q, contract, what=layer.name) if contract else q
    y = np.transpose(y, transpose)
    y = apply_activation(cfg["activation"], y, layer.name)
    return layer_oq(layer, cfg, ctx, y)


def h_einsum_dense_t(layer, cfg, args, kwargs, ctx):
    return einsum_dense_t(layer, cfg, _exact(args[0], layer.name), ctx)


# -- attention (Keras MultiHeadAttention's equations, HGQ2's sub-layers) --

def build_proj_equation(free_dims, bound_dims, output_dims):
    """Keras' _build_proj_equation: (equation, bias axes)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    inp = letters[:free_dims]
    out = inp
    bound = letters[free_dims:free_dims + bound_dims]
    outd = letters[free_dims + bound_dims:free_dims + bound_dims + output_dims]
    return f"{inp}{bound},{bound}{outd}->{out}{outd}", outd


def build_attention_equation(rank, attn_axes):
    """Keras' _build_attention_equation: (dot product, combine, scores rank)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    target = letters[:rank]
    batch = [j for j in range(rank) if j not in attn_axes and j != rank - 1]
    source, offset = "", rank
    for j in range(rank):
        if j in batch or j == rank - 1:
            source += target[j]
        else:
            source += letters[offset]
            offset += 1
    product = "".join([target[j] for j in batch] + [target[j] for j in attn_axes] +
                      [source[j] for j in attn_axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)


def _sub_dense(mha_cfg, equation, bias, enable_iq, enable_oq, table_layer):
    """The config HGQ2 gives an attention sub-layer (not saved: derived as build() does)."""
    cfg = {"equation": equation, "activation": "linear", "enable_iq": enable_iq,
           "enable_oq": enable_oq, "iq_conf": mha_cfg["qkvo_iq_conf"],
           "oq_conf": mha_cfg["qkvo_oq_conf"], "bias_axes": bias}
    if table_layer:
        cfg.update({"toq_conf": mha_cfg["qkvo_toq_conf"],
                    "subnn_activation": mha_cfg["subnn_activation"],
                    "batch_norm": mha_cfg["batch_norm"], "bn_center": mha_cfg["bn_center"],
                    "bn_scale": mha_cfg["bn_scale"], "bn_epsilon": mha_cfg["bn_epsilon"],
                    "normalize_axes": bias})
    else:
        cfg.update({"kq_conf": mha_cfg["qkvo_kq_conf"], "bq_conf": mha_cfg["qkvo_bq_conf"]})
    return cfg


def _run_sub(obj, cfg, x, ctx, table_layer, shared_iq=None):
    if shared_iq is not None and _maybe_child(obj, "iq") is None:
        obj = types.SimpleNamespace(name=obj.name, class_name=obj.class_name, vars=obj.vars,
                                    children=list(obj.children) + [("iq", shared_iq)])
    if table_layer:
        return einsum_dense_t(obj, cfg, x, ctx)
    return h_dense(obj, cfg, [x], {}, ctx)


def h_attention(layer, cfg, args, kwargs, ctx):
    cls = layer.class_name
    table_layer = cls in ("QMultiHeadAttentionT", "QLinformerAttentionT")
    q_in = _exact(args[0], layer.name)
    v_in = _exact(args[1], layer.name) if len(args) > 1 else q_in
    k_in = _exact(args[2], layer.name) if len(args) > 2 else v_in
    iq_on = cfg["enable_iq"]
    if cls.startswith("QLinformer"):
        k_in, v_in = _linformer_proj(layer, cfg, ctx, k_in, v_in, table_layer)
    elif cls == "QSALTAttention":
        k_in, v_in = _salt_proj(layer, cfg, ctx, k_in, v_in)
    fuse = cfg.get("fuse", "none")
    shared = _maybe_child(_child(layer, "key_dense"), "iq") if fuse != "none" else None
    r = q_in.ndim
    eq_q, b_q = build_proj_equation(r - 1, 1, 2)
    eq_k, _ = build_proj_equation(k_in.ndim - 1, 1, 2)
    eq_v, b_v = build_proj_equation(v_in.ndim - 1, 1, 2)
    bias = cfg["use_bias"]
    subs = {}
    for attr, x, eq, b, iq in (("query_dense", q_in, eq_q, b_q, iq_on),
                               ("key_dense", k_in, eq_k, None, iq_on),
                               ("value_dense", v_in, eq_v, b_v, iq_on)):
        sub_cfg = _sub_dense(cfg, eq, b if bias else None, iq, True, table_layer)
        subs[attr] = _run_sub(_child(layer, attr), sub_cfg, x, ctx, table_layer, shared)
    rank = r + 1
    attn_axes = tuple(cfg["attention_axes"] or range(1, rank - 2))
    dot_eq, combine_eq, scores_rank = build_attention_equation(rank, attn_axes)
    scores = ko.ex_einsum(dot_eq, subs["key_dense"], subs["query_dense"], layer.name)
    if cls == "QSALTAttention" and cfg["conv_size"] > 0:
        scores = _salt_conv(layer, cfg, ctx, scores)
    norm_axes = tuple(range(scores_rank - len(attn_axes), scores_rank))
    sm = _child(layer, "_softmax")
    parts = softmax_parts(sm, {"exp_iq": cfg["softmax_exp_iq_conf"],
                               "exp_oq": cfg["softmax_exp_oq_conf"],
                               "inv_iq": cfg["softmax_inv_iq_conf"],
                               "inv_oq": cfg["softmax_inv_oq_conf"]}, f"{layer.name}/_softmax")
    probs = softmax(ctx, scores, norm_axes, cfg["stable_softmax"],
                    1.0 / math.sqrt(float(cfg["key_dim"])), where=layer.name, **parts)
    probs = Quantizer(cfg["softmax_oq_conf"], _child(sm, "oq"), f"{layer.name}/_softmax/oq") \
        .act(ctx, probs)
    out = ko.ex_einsum(combine_eq, probs, subs["value_dense"], layer.name)
    eq_o, b_o = build_proj_equation(r - 1, 2, 1)
    out_cfg = _sub_dense(cfg, eq_o, b_o if bias else None, True, cfg["enable_oq"], table_layer)
    out = _run_sub(_child(layer, "output_dense"), out_cfg, out, ctx, table_layer)
    return layer_oq(layer, cfg, ctx, out)


def _linformer_proj(layer, cfg, ctx, k_in, v_in, table_layer):
    """QLinformerAttention: K and V projected along the attention axes first."""
    rank = v_in.ndim
    attn = tuple(cfg["attention_axes"] or range(1, rank - 1))
    dims = cfg["lin_kv_proj_dim"]
    dims = [dims] if isinstance(dims, int) else list(dims)
    t = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    inp = t[:rank]
    new = t[rank:rank + len(dims)]
    out = list(inp)
    for j, a in enumerate(attn):
        out[a] = new[j]
    eq = f"{inp},{''.join(inp[a] for a in attn)}{new}->{''.join(out)}"
    mode_t = cfg.get("lin_kv_proj_mode", "dense") == "dense_t"
    k_obj = _child(layer, "_lin_k_proj")
    v_obj = k_obj if cfg["share_kv_proj"] else _child(layer, "_lin_v_proj")
    res = []
    for obj, x in ((k_obj, k_in), (v_obj, v_in)):
        if mode_t:
            sub = _sub_dense(cfg, eq, None, cfg["enable_iq"], cfg["enable_oq"], True)
            res.append(einsum_dense_t(obj, sub, x, ctx))
        else:
            sub = _sub_dense(cfg, eq, None, True, False, False)
            res.append(h_dense(obj, sub, [x], {}, ctx))
    return res


def _salt_proj(layer, cfg, ctx, k_in, v_in):
    """QSALTAttention's K/V projections (optionally clustered: zero-padded and reshaped)."""
    p = cfg["lin_kv_proj_dim"]
    k_obj = _child(layer, "_lin_k_proj")
    v_obj = k_obj if cfg["share_kv_proj"] else _child(layer, "_lin_v_proj")
    res = []
    for obj, x, cluster in ((k_obj, k_in, cfg["cluster_k_proj"]),
                            (v_obj, v_in, cfg["cluster_v_proj"])):
        if cluster:
            pad = -(-x.shape[1] // p) * p - x.shape[1]
            x = np.pad(x, [(0, 0), (0, pad), (0, 0)])
            x = x.reshape(x.shape[0], p, -1, x.shape[2])
            eq = "bmnd,mn->bmd"
        else:
            eq = "bnd,nm->bmd"
        res.append(h_dense(obj, _sub_dense(cfg, eq, None, True, False, False), [x], {}, ctx))
    return res


def _salt_conv(layer, cfg, ctx, scores):
    c = cfg["conv_size"]
    sub = {"kernel_size": [c, c], "strides": [1, 1], "padding": "same",
           "data_format": "channels_first", "dilation_rate": [1, 1],
           "groups": cfg["num_heads"] if cfg["separate_conv"] else 1, "activation": "linear",
           "enable_iq": True, "enable_oq": False, "iq_conf": cfg["qkvo_iq_conf"],
           "kq_conf": cfg["qkvo_kq_conf"], "bq_conf": cfg["qkvo_bq_conf"]}
    return h_conv(_child(layer, "conv"), sub, [scores], {}, ctx)


# -- recurrent and spiking layers (unrolled as Keras' RNN loop runs them) --

def _cell_quant(cell, cfg, attr, conf_key=None):
    conf = cfg.get(conf_key or f"{attr}_conf")
    if conf is None or _maybe_child(cell, attr) is None:
        return None
    return Quantizer(conf, _child(cell, attr), f"{cell.name}/{attr}")


def _time_steps(cfg, n):
    return range(n - 1, -1, -1) if cfg["go_backwards"] else range(n)


def _finish_sequence(cfg, outputs):
    return np.stack(outputs, axis=1) if cfg["return_sequences"] else outputs[-1]


def h_simple_rnn(layer, cfg, args, kwargs, ctx):
    x = _exact(args[0], layer.name)
    cell = _child(layer, "cell")
    w = _vars(cell)
    q = {a: _cell_quant(cell, cfg, a) for a in ("iq", "sq", "kq", "rkq", "bq", "paq")}
    qk, qrk = q["kq"].weight(w["kernel"]), q["rkq"].weight(w["recurrent_kernel"])
    qb = q["bq"].weight(w["bias"]) if "bias" in w else None
    h = np.zeros((x.shape[0], cfg["units"]))
    outs = []
    for t in _time_steps(cfg, x.shape[1]):
        qs = q["sq"].act(ctx, h) if q["sq"] is not None else h
        qx = q["iq"].act(ctx, x[:, t])
        y = ko.ex_einsum("nc,cu->nu", qx, qk, layer.name)
        if qb is not None:
            y = ko.ex_add(y, qb, layer.name)
        y = ko.ex_add(y, ko.ex_einsum("nc,cu->nu", qs, qrk, layer.name), layer.name)
        h = _exact(apply_activation(cfg["activation"], q["paq"].act(ctx, y), layer.name),
                   layer.name)
        outs.append(h)
    return _finish_sequence(cfg, outs)


def h_gru(layer, cfg, args, kwargs, ctx):
    x = _exact(args[0], layer.name)
    cell = _child(layer, "cell")
    w = _vars(cell)
    q = {a: _cell_quant(cell, cfg, a) for a in ("iq", "sq", "kq", "rkq", "bq", "paq", "praq",
                                                "rhq")}
    u = cfg["units"]
    qk, qrk = q["kq"].weight(w["kernel"]), q["rkq"].weight(w["recurrent_kernel"])
    qb = q["bq"].weight(w["bias"]) if "bias" in w else None
    if qb is None:
        b_in = b_rec = 0.0
    elif cfg["reset_after"]:
        b_in, b_rec = qb[0], qb[1]
    else:
        b_in, b_rec = qb, 0.0
    h = np.zeros((x.shape[0], u))
    outs = []
    for t in _time_steps(cfg, x.shape[1]):
        qh = q["sq"].act(ctx, h)
        qx = q["iq"].act(ctx, x[:, t]) if q["iq"] is not None else x[:, t]
        mx = ko.ex_add(ko.ex_einsum("nc,cu->nu", qx, qk, layer.name), b_in, layer.name)
        if cfg["reset_after"]:
            inner = ko.ex_add(ko.ex_einsum("nc,cu->nu", qh, qrk, layer.name), b_rec,
                              layer.name)
        else:
            inner = ko.ex_einsum("nc,cu->nu", qh, qrk[:, :2 * u], layer.name)
        zr = ko.ex_add(mx[:, :2 * u], inner[:, :2 * u], layer.name)
        zr = _exact(q["praq"].act(ctx, apply_activation(cfg["recurrent_activation"], zr,
                                                        layer.name)), layer.name)
        z, r = zr[:, :u], zr[:, u:]
        if cfg["reset_after"]:
            rh = ko.ex_mul(r, q["rhq"].act(ctx, inner[:, 2 * u:]), layer.name)
        else:
            rh = ko.ex_einsum("nc,cu->nu", q["rhq"].act(ctx, ko.ex_mul(r, qh, layer.name)),
                              qrk[:, 2 * u:], layer.name)
        hh = _exact(q["paq"].act(ctx, apply_activation(
            cfg["activation"], ko.ex_add(mx[:, 2 * u:], rh, layer.name), layer.name)),
            layer.name)
        h = ko.ex_add(ko.ex_mul(z, qh, layer.name),
                      ko.ex_mul(ko.ex_sub(1.0, z, layer.name), hh, layer.name), layer.name)
        outs.append(h)
    return _finish_sequence(cfg, outs)


def h_snn(layer, cfg, args, kwargs, ctx):
    x = _exact(args[0], layer.name)
    cell = _child(layer, "cell")
    w = _vars(cell)
    iq = _cell_quant(cell, cfg, "iq")
    sq = _cell_quant(cell, cfg, "sq")
    oq = _cell_quant(cell, cfg, "oq") if cfg["enable_oq"] else None
    thr = w["threshold"].astype(np.float64)
    gsf = _cell_quant(cell, cfg, "graded_spikes_factor_q").weight(w["graded_spikes_factor"])
    beta = None
    if layer.class_name == "QLIF":
        beta = _cell_quant(cell, cfg, "beta_q").weight(w["beta"]).astype(np.float64)
    mem = np.zeros((x.shape[0], cfg["units"]))
    outs = []
    for t in _time_steps(cfg, x.shape[1]):
        xt = iq.act(ctx, x[:, t]) if iq is not None else x[:, t]
        mem = ko.ex_add(ko.ex_mul(mem, beta, layer.name) if beta is not None else mem, xt,
                        layer.name)
        score = ko.ex_sub(mem, thr, layer.name)
        spk = score > 0
        if cfg["inhibition"]:
            first_max = np.argmax(score, axis=1)
            spk = spk & (np.arange(cfg["units"])[None, :] == first_max[:, None])
        out = np.where(spk, gsf.astype(np.float64), 0.0)
        if oq is not None:
            out = oq.act(ctx, out)
        mech = cfg["reset_mechanism"]
        if mech == "subtract":
            mem = np.where(spk, ko.ex_sub(mem, thr, layer.name), mem)
        elif mech == "zero":
            mem = np.where(spk, 0.0, mem)
        if sq is not None:
            mem = sq.act(ctx, mem)
        outs.append(out)
    return _finish_sequence(cfg, outs)


HANDLERS = {"Quantizer": h_quantizer, "QDense": h_dense, "QBatchNormDense": h_dense,
            "QEinsumDense": h_dense, "QEinsumDenseBatchnorm": h_dense,
            "QBatchNormalization": h_batchnorm, "QSum": h_reduce, "QMeanPow2": h_reduce,
            "QUnaryFunctionLUT": h_lut, "QAffinedUnaryFunctionLUT": h_lut,
            "QSoftmax": h_softmax, "QDenseT": h_dense_t, "QEinsumDenseT": h_einsum_dense_t,
            "QConvT1D": h_conv_t, "QConvT2D": h_conv_t, "QSimpleRNN": h_simple_rnn,
            "QGRU": h_gru, "QSimpleSNN": h_snn, "QLIF": h_snn}
for _c in ("QAdd", "QSubtract", "QMultiply", "QMaximum", "QMinimum", "QAveragePow2", "QDot",
           "QEinsum"):
    HANDLERS[_c] = h_merge
for _c in ("QMultiHeadAttention", "QMultiHeadAttentionT", "QLinformerAttention",
           "QLinformerAttentionT", "QSALTAttention"):
    HANDLERS[_c] = h_attention
for _d in ("1D", "2D", "3D"):
    HANDLERS[f"QConv{_d}"] = h_conv
    for _p in ("AveragePooling", "MaxPooling", "GlobalAveragePooling", "GlobalMaxPooling"):
        HANDLERS[f"Q{_p}{_d}"] = h_pool


# ---- graph walk ----------------------------------------------------------------------------

def evaluate(model, inputs, ctx=None):
    """(outputs, ambiguous): the model's outputs on `inputs` (one float64 array per model
    input, batch first) and the mask of samples whose value depends on float32 libraries.
    `ctx` (a Ctx of the batch size) also reports the widest layer output."""
    inputs = [np.asarray(x, np.float64) for x in inputs]
    ctx = ctx or Ctx(inputs[0].shape[0])
    outs = _eval_model(model, inputs, ctx)
    return [_exact(o, "output") if not isinstance(o, ko.Rounded) else o for o in outs], \
        ctx.ambiguous


def _eval_model(model, inputs, ctx):
    if model.class_name == "Sequential":
        x = inputs[0]
        for layer in model.layers:
            x = apply_layer(layer, [x], {}, ctx)[0]
        return [x]
    values = {}
    for t, v in zip(model.inputs, inputs):
        values[(id(t.producer), t.node_index, t.tensor_index)] = v

    def get(t):
        key = (id(t.producer), t.node_index, t.tensor_index)
        if key not in values:
            args, kwargs, _ = t.producer.nodes[t.node_index - t.producer.first_node]
            outs = apply_layer(t.producer, ko.subst(args, get), ko.subst(kwargs, get), ctx)
            for j, o in enumerate(outs):
                values[(id(t.producer), t.node_index, j)] = o
        return values[key]

    return [get(t) for t in model.outputs]


def apply_layer(layer, args, kwargs, ctx):
    """One node: an HGQ2 layer by its handler, a nested model by evaluating it here (it may hold
    HGQ2 layers), anything else by tests/keras/oracle.py."""
    if ko._is_model(layer):
        outs = _eval_model(layer, args[0] if isinstance(args[0], list) else [args[0]], ctx)
    elif layer.module.startswith("hgq."):
        handler = HANDLERS.get(layer.class_name)
        if handler is None:
            raise OracleError(f"no oracle for {layer.class_name} ({layer.module})")
        out = handler(layer, layer.config(), args, kwargs, ctx)
        outs = list(out) if isinstance(out, list) else [out]
    else:
        for a in ko._flat(args):
            _exact(a, layer.name)
        outs = ko.apply_layer(layer, args, kwargs, ko.Options())
    ctx.note(outs)
    return outs
