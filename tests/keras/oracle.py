"""oracle: an independent numpy evaluation of a Keras test model (issue 12).

The oracle evaluates the *description* a model file is written from (a kerasgen Functional or
Sequential, the same Python objects models.py builds), never the files and never our C code.
Each layer is computed with the semantics Keras 3 gives it (read from keras/src/layers/** and
keras/src/ops/**, JAX backend where backends differ), on the batch of inputs, in exact
arithmetic:

* Values are float64 arrays of dyadic numbers. Every sum and product goes through a helper
  that also evaluates the same expression on absolute values and asserts that the result and
  every partial sum fit 53 bits on the finest grid of the operands: a float64 result checked
  this way is the exact rational result (OracleError otherwise).
* Float32 steps the reference takes on constants are taken here too (frontends.md §2.2, §8):
  batch-norm folding `scale = gamma / sqrt(var + eps)`, `offset = beta - mean * scale` in
  numpy float32; a division by a constant c is a product with the float64 reciprocal 1/c
  (§8.6). When 1/c is not a power of two the product is computed exactly in integers and
  rounded once to float64 (`Rounded`); such a value may only be a model output.
* Table functions (activations, sin, exp, c / x, ...) give `Pending` float64 arrays, as the
  reference composes a float64 function; elementwise arithmetic with constants stays pending
  (in float64, the same operations in the same order as the composed function), and
  round/floor/ceil or a quantizer turns them into exact values (the table). Any other use of
  a pending array is an error, as in the reference.
* The precision options of issue 12 (Options.weight_kif, Options.layer_output_kif) quantize
  float weights (kernels, biases, the folded batch-norm scale and offset, PReLU alpha,
  embeddings) with Q(w; K, I, F, RND, SAT) and every node's output with Q(y; K, I, F, TRN,
  WRAP) (Q as frontends.md §3.1).

Where the reference computes a different value than Keras (a [quirk] of frontends.md), this
file computes what Keras computes; KERAS_OVER_REFERENCE lists those cases (README).

Entry point: evaluate(model, inputs, options=None) -> list of output arrays (batch first).
"""

import math

import numpy as np

KERAS_OVER_REFERENCE = [
    ("ReLU / LeakyReLU / PReLU on rank >= 3",
     "the reference builds the negative part on x[None] and fails to broadcast; Keras is "
     "elementwise on any rank"),
    ("Conv*Transpose with kernel (dilated) < stride",
     "output length (n-1)*s + k in the reference; Keras (JAX padding rule) gives n*s for "
     "'same' and 'valid', the tail positions being 0 (+ bias)"),
    ("Conv*Transpose output_padding",
     "Keras' JAX rule: 'valid' pads output_padding on the right; 'same' uses pad_len = "
     "k + k%2 - 2 + output_padding, left = min(ceil(pad_len/2), k-1)"),
    ("Conv1D padding='causal'", "refused by the reference; Keras pads (k-1)*d on the left"),
    ("ExtractPatches strides=None", "reference uses stride 1; Keras uses the patch size"),
    ("Flatten(data_format='channels_first')",
     "reference ravels as is; Keras moves the channel axis last first"),
    ("Mean keepdims=True", "reference drops the kept axis (wrong broadcasts downstream)"),
    ("Max/Min initial", "reference ignores it; Keras takes max(max(x), initial)"),
    ("Gelu op approximate=True (the ops.gelu default)",
     "reference tables the exact-erf gelu; Keras uses the tanh approximation"),
    ("Elu op alpha", "reference ignores alpha (uses 1)"),
    ("GetItem key starting with an int, None or Ellipsis",
     "reference indexes with the list (numpy fancy indexing); Keras indexes with the tuple"),
    ("Dot layer axes on a rank-2 second input",
     "Keras batch_dot semantics (same einsum as the reference)"),
    ("Random* preprocessing layers (training=True recorded in the node by Keras)",
     "reference refuses the node (training must be False); Keras' predict runs them in "
     "inference mode: identity for flips, rotations, contrasts, ... at their saved sizes"),
    ("Identity layer", "not in the reference's tables (unknown layer); Keras: identity"),
    ("Normalization", "Keras divides by std; the reference multiplies by float32(1/std): "
     "equal here because the test std are powers of two (non-power-of-two std are refused "
     "by this oracle as not exact in Keras either)"),
]


class OracleError(Exception):
    pass


# ---- exactness ------------------------------------------------------------------------------

EXACT_BITS = 53


class Pending(np.ndarray):
    """float64 values of a table function not yet quantized (the reference's RetardedFVArray)."""


class Rounded(np.ndarray):
    """A value rounded to float64 once (a product with a non-dyadic reciprocal)."""


def _pending(a):
    return np.asarray(a, np.float64).view(Pending)


def _plain(a):
    return np.asarray(a, np.float64).view(np.ndarray)


def frac_bits(a):
    """The smallest f with a * 2^f integral everywhere (0 for integers); a must be finite."""
    a = np.asarray(a, np.float64).ravel()
    a = a[a != 0]
    if a.size == 0:
        return 0
    if not np.all(np.isfinite(a)):
        raise OracleError("non-finite value where an exact value was expected")
    mant, expo = np.frexp(np.abs(a))
    m = (mant * 2.0 ** 53).astype(np.int64)
    low = (m & -m).astype(np.float64)
    tz = np.frexp(low)[1] - 1
    return int(max(0, np.max(53 - expo.astype(np.int64) - tz)))


def _fits(bound, f, what):
    """|every partial result| <= bound on the grid 2^-f must fit EXACT_BITS bits."""
    top = float(np.max(bound)) if np.size(bound) else 0.0
    if top == 0.0:
        return
    need = math.floor(math.log2(top)) + 1 + f
    if need > EXACT_BITS:
        raise OracleError(f"{what}: needs {need} bits, not exact in float64")


def ex_einsum(eq, a, b, what="einsum"):
    a, b = _plain(a), _plain(b)
    out = np.einsum(eq, a, b)
    _fits(np.einsum(eq, np.abs(a), np.abs(b)), frac_bits(a) + frac_bits(b), what)
    return out


def ex_add(a, b, what="add"):
    a, b = _plain(a), _plain(b)
    _fits(np.abs(a) + np.abs(b), max(frac_bits(a), frac_bits(b)), what)
    return a + b


def ex_sub(a, b, what="subtract"):
    return ex_add(a, -_plain(b), what)


def ex_mul(a, b, what="multiply"):
    a, b = _plain(a), _plain(b)
    _fits(np.abs(a) * np.abs(b), frac_bits(a) + frac_bits(b), what)
    return a * b


def ex_sum(x, axis, keepdims=False, what="sum"):
    x = _plain(x)
    _fits(np.sum(np.abs(x), axis=axis, keepdims=keepdims), frac_bits(x), what)
    return np.sum(x, axis=axis, keepdims=keepdims)


def ex_prod(x, axis, keepdims=False, what="prod"):
    x = _plain(x)
    n = x.shape[axis] if isinstance(axis, int) else int(np.prod([x.shape[a] for a in axis]))
    _fits(np.prod(np.abs(x), axis=axis, keepdims=keepdims), frac_bits(x) * n, what)
    return np.prod(x, axis=axis, keepdims=keepdims)


def ex_scale(x, c, what="division"):
    """x * c for a float64 constant c (the reciprocal of a divisor, §8.6): exact when c is a
    power of two; otherwise the exact product rounded once to float64 (a Rounded array)."""
    x = _plain(x)
    c = np.asarray(c, np.float64)
    mant, _ = np.frexp(np.abs(c))
    if np.all((mant == 0.5) | (c == 0)):
        return ex_mul(x, c, what)
    fx = frac_bits(x)
    fc = frac_bits(c)
    xi = np.round(x * 2.0 ** fx).astype(object)
    ci = np.round(c * 2.0 ** fc).astype(object)
    xi, ci = np.broadcast_arrays(xi, ci)
    flat = [float(_exact_ratio(int(p) * int(q), fx + fc)) for p, q in zip(xi.ravel(), ci.ravel())]
    return np.array(flat, np.float64).reshape(xi.shape).view(Rounded)


def _exact_ratio(n, f):
    """n * 2^-f correctly rounded to float64 (Python's int / int division is)."""
    return n / (1 << f) if f >= 0 else float(n * (1 << -f))


# ---- quantizer (frontends.md §3.1) ---------------------------------------------------------

def quantize(x, k, i, f, overflow="WRAP", round_mode="TRN"):
    """Q(x; k, i, f, overflow, round) as the numpy quantizer of §3.1, on float64."""
    x = np.asarray(x, np.float64)
    k, i, f = float(k), float(i), float(f)
    if k + i + f <= 0:
        return np.zeros_like(x)
    i2 = max(i, -f)
    step = 2.0 ** -f
    if overflow == "SAT":
        x = np.clip(x, -k * 2.0 ** i2, 2.0 ** i2 - step)
    elif overflow == "SAT_SYM":
        x = np.clip(x, -k * (2.0 ** i2 - step), 2.0 ** i2 - step)
    if round_mode == "TRN":
        x = np.floor(x * 2.0 ** f) * step
    elif round_mode == "RND":
        x = np.floor(x * 2.0 ** f + 0.5) * step
    elif round_mode == "RND_CONV":
        x = np.round(x * 2.0 ** f) * step
    else:
        raise OracleError(f"round mode {round_mode}")
    if overflow == "WRAP":
        half = k * 2.0 ** (i2 + k - 1)
        x = np.mod(x + half, 2.0 ** (i2 + k)) - half
    return x


def grid_data(shape, kif, seed):
    """Inputs on the kif grid as the reference's harness draws them (§6.1):
    floor(uniform[-k*2^i, 2^i - 2^-f) * 2^f) / 2^f in float32, numpy default_rng(seed)."""
    k, i, f = kif
    rng = np.random.default_rng(seed)
    raw = rng.uniform(-(2.0 ** i) * k, 2.0 ** i - 2.0 ** -f, size=shape).astype(np.float32)
    return (np.floor(raw * 2.0 ** f).astype(np.float32) / np.float32(2.0 ** f)).astype(
        np.float64)


class Options:
    """The precision options of issue 12 (None = off): (K, I, F) triples."""

    def __init__(self, weight_kif=None, layer_output_kif=None):
        self.weight_kif = weight_kif
        self.layer_output_kif = layer_output_kif

    def weight(self, w):
        w = np.asarray(w, np.float64)
        if self.weight_kif is None:
            return w
        return quantize(w, *self.weight_kif, overflow="SAT", round_mode="RND")

    def output(self, y):
        if self.layer_output_kif is None or isinstance(y, Rounded):
            return y
        return _plain(quantize(_plain(y), *self.layer_output_kif, "WRAP", "TRN"))


# ---- activations (frontends.md §2.3; Keras 3 formulas in float64) ----------------------------

def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _hard_sigmoid(x):
    return np.clip(x + 3.0, 0.0, 6.0) / 6.0


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * (np.exp(x) - 1.0))


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805

TABLE_ACTIVATIONS = {
    "tanh": np.tanh,
    "exponential": np.exp,
    "sigmoid": _sigmoid,
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))),
    "elu": _elu,
    "selu": lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * (np.exp(x) - 1.0)),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "hard_sigmoid": _hard_sigmoid,
    "hard_silu": lambda x: x * _hard_sigmoid(x),
    "hard_swish": lambda x: x * _hard_sigmoid(x),
    "log_sigmoid": lambda x: -np.log1p(np.exp(-x)),
}
EXACT_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "hard_tanh": lambda x: np.clip(x, -1.0, 1.0),
}


def activation(name, x, where):
    """Apply a serialized Keras activation (a built-in's name; anything else is refused)."""
    if name is None:
        name = "linear"
    if not isinstance(name, str):
        raise OracleError(f"{where}: unsupported activation {name!r}")
    if name in EXACT_ACTIVATIONS:
        _no_pending(x, where)
        return _plain(EXACT_ACTIVATIONS[name](_plain(x)))
    if name in TABLE_ACTIVATIONS:
        return _table(TABLE_ACTIVATIONS[name], x, where)
    raise OracleError(f"{where}: unsupported activation {name!r}")


def _table(fn, x, where):
    if isinstance(x, Rounded):
        raise OracleError(f"{where}: a rounded value feeds a table")
    with np.errstate(all="ignore"):
        return _pending(fn(np.asarray(x, np.float64)))


def _no_pending(*arrays, where="layer"):
    for a in arrays:
        if isinstance(a, Pending):
            raise OracleError(f"{where}: a table function's output must be quantized first")
        if isinstance(a, Rounded):
            raise OracleError(f"{where}: a rounded (non-dyadic) value feeds another layer")


# ---- tagged call arguments (what a Keras 3 node holds) ----------------------------------------

def decode(value):
    """A serialized call argument to a Python value: __numpy__ -> ndarray, __slice__ -> slice,
    __ellipsis__ -> Ellipsis; lists stay lists."""
    if isinstance(value, dict) and "class_name" in value and "config" in value:
        cls, cfg = value["class_name"], value["config"]
        if cls == "__numpy__":
            return np.asarray(cfg["value"], dtype=cfg["dtype"]).astype(np.float64)
        if cls == "__slice__":
            return slice(decode(cfg["start"]), decode(cfg["stop"]), decode(cfg["step"]))
        if cls == "__ellipsis__":
            return Ellipsis
        raise OracleError(f"unknown tagged value {cls}")
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    return value


# ---- geometry helpers (channels last inside) ------------------------------------------------

def _tuple(v, rank):
    return tuple(v) if isinstance(v, (list, tuple)) else (v,) * rank


def _same_pads(n, k, s, d):
    """TF/Keras 'same': out = ceil(n/s), total pad split with the extra at the end."""
    out = -(-n // s)
    total = max(0, (out - 1) * s + (k - 1) * d + 1 - n)
    return total // 2, total - total // 2


def _pads(padding, spatial, ksize, strides, dilation):
    if padding == "valid":
        return [(0, 0)] * len(spatial)
    if padding == "same":
        return [_same_pads(n, k, s, d) for n, k, s, d in zip(spatial, ksize, strides, dilation)]
    if padding == "causal":
        return [((k - 1) * d, 0) for k, d in zip(ksize, dilation)]
    raise OracleError(f"padding {padding!r}")


def patches(x, ksize, strides, dilation, pads, fill=0.0):
    """(N, *S, C) -> (N, *out, Kvol, C): kernel position outermost (row-major), channel last."""
    rank = len(ksize)
    width = [(0, 0)] + list(pads) + [(0, 0)]
    xp = np.pad(_plain(x), width, constant_values=fill)
    out = [(x.shape[1 + j] + pads[j][0] + pads[j][1] - (ksize[j] - 1) * dilation[j] - 1)
           // strides[j] + 1 for j in range(rank)]
    if min(out) <= 0:
        raise OracleError("window larger than the padded input")
    parts = []
    for t in np.ndindex(*ksize):
        sl = [slice(None)]
        for j in range(rank):
            start = t[j] * dilation[j]
            sl.append(slice(start, start + strides[j] * (out[j] - 1) + 1, strides[j]))
        parts.append(xp[tuple(sl)])
    return np.stack(parts, axis=-2)


def _to_last(x, data_format):
    return np.moveaxis(x, 1, -1) if data_format == "channels_first" else x


def _from_last(x, data_format):
    return np.moveaxis(x, -1, 1) if data_format == "channels_first" else x


def _weights(layer):
    return {v.name: np.asarray(v.value) for v in layer.vars}


# ---- layer handlers: fn(layer, cfg, args, kwargs, opts) -> array or list --------------------

def _dense(layer, cfg, args, kwargs, opts):
    w = _weights(layer)
    x = args[0]
    y = ex_einsum("...c,cd->...d", x, opts.weight(w["kernel"]), "Dense")
    if "bias" in w:
        y = ex_add(y, opts.weight(w["bias"]), "Dense bias")
    return y


def _einsum_dense(layer, cfg, args, kwargs, opts):
    w = _weights(layer)
    y = ex_einsum(cfg["equation"], args[0], opts.weight(w["kernel"]), "EinsumDense")
    if "bias" in w:
        y = ex_add(y, opts.weight(w["bias"]), "EinsumDense bias")
    return y


def _conv_core(x, kernel, groups, ksize, strides, dilation, padding):
    """Keras conv on channels-last x with kernel (*K, Cin/g, Cout), groups contiguous."""
    spatial = x.shape[1:-1]
    p = patches(x, ksize, strides, dilation, _pads(padding, spatial, ksize, strides, dilation))
    kvol, cin = p.shape[-2], p.shape[-1]
    cout = kernel.shape[-1]
    p = p.reshape(p.shape[:-1] + (groups, cin // groups))
    k = kernel.reshape(kvol, cin // groups, groups, cout // groups).transpose(0, 2, 1, 3)
    y = ex_einsum("...kgc,kgco->...go", p, k, "convolution")
    return y.reshape(y.shape[:-2] + (cout,))


def _conv(layer, cfg, args, kwargs, opts):
    w = _weights(layer)
    rank = len(cfg["kernel_size"])
    depthwise = "depth_multiplier" in cfg
    kernel = opts.weight(w["kernel"])
    x = _to_last(_plain(args[0]), cfg["data_format"])
    if depthwise:
        cin, dm = kernel.shape[-2:]
        kernel = kernel.reshape(kernel.shape[:-2] + (1, cin * dm))
        groups = cin
    else:
        groups = cfg["groups"]
    y = _conv_core(x, kernel, groups, _tuple(cfg["kernel_size"], rank),
                   _tuple(cfg["strides"], rank), _tuple(cfg["dilation_rate"], rank),
                   cfg["padding"])
    if "bias" in w:
        y = ex_add(y, opts.weight(w["bias"]), "convolution bias")
    return _from_last(y, cfg["data_format"])


def conv_transpose_geometry(n, k, s, d, padding, output_padding):
    """Keras (JAX backend) transposed conv along one axis: (output length, offset b) where
    output o receives x[l] * w[t] for o = l*s + t*d - b."""
    keff = (k - 1) * d + 1
    if padding == "valid":
        op = max(keff, s) - keff if output_padding is None else output_padding
        left, right = keff - 1, keff - 1 + op
    elif padding == "same":
        pad_len = s + keff - 2 if output_padding is None else keff + keff % 2 - 2 + output_padding
        left = min(pad_len // 2 + pad_len % 2, keff - 1)
        right = pad_len - left
    else:
        raise OracleError(f"padding {padding!r}")
    length = (n - 1) * s + 1 + left + right - keff + 1
    return length, keff - 1 - left


def _conv_transpose(layer, cfg, args, kwargs, opts):
    w = _weights(layer)
    rank = len(cfg["kernel_size"])
    ksize = _tuple(cfg["kernel_size"], rank)
    strides = _tuple(cfg["strides"], rank)
    dil = _tuple(cfg["dilation_rate"], rank)
    opad = cfg.get("output_padding")
    opad = (None,) * rank if opad is None else _tuple(opad, rank)
    x = _to_last(_plain(args[0]), cfg["data_format"])
    kernel = opts.weight(w["kernel"])  # (*K, Cout, Cin)
    geo = [conv_transpose_geometry(x.shape[1 + j], ksize[j], strides[j], dil[j],
                                   cfg["padding"], opad[j]) for j in range(rank)]
    cout = kernel.shape[-2]
    shape = (x.shape[0],) + tuple(g[0] for g in geo) + (cout,)
    y, bound = np.zeros(shape), np.zeros(shape)
    f = frac_bits(x) + frac_bits(kernel)
    for t in np.ndindex(*ksize):
        c = np.einsum("...c,oc->...o", x, kernel[t])
        cb = np.einsum("...c,oc->...o", np.abs(x), np.abs(kernel[t]))
        src, dst = [slice(None)], [slice(None)]
        for j in range(rank):
            n, (length, b) = x.shape[1 + j], geo[j]
            off = t[j] * dil[j] - b
            ls = [l for l in range(n) if 0 <= l * strides[j] + off < length]
            if not ls:
                break
            src.append(slice(ls[0], ls[-1] + 1))
            dst.append(slice(ls[0] * strides[j] + off, ls[-1] * strides[j] + off + 1, strides[j]))
        else:
            y[tuple(dst)] += c[tuple(src)]
            bound[tuple(dst)] += cb[tuple(src)]
    _fits(bound, f, "transposed convolution")
    if "bias" in w:
        y = ex_add(y, opts.weight(w["bias"]), "transposed convolution bias")
    return _from_last(y, cfg["data_format"])


def _pool(layer, cfg, args, kwargs, opts):
    cls = layer.class_name
    x = _to_last(_plain(args[0]), cfg["data_format"])
    rank = x.ndim - 2
    ksize = _tuple(cfg["pool_size"], rank)
    strides = _tuple(cfg["strides"] if cfg["strides"] is not None else cfg["pool_size"], rank)
    pads = _pads(cfg["padding"], x.shape[1:-1], ksize, strides, (1,) * rank)
    if cls.startswith("Max"):
        y = np.max(patches(x, ksize, strides, (1,) * rank, pads, fill=-np.inf), axis=-2)
    else:
        s = patches(x, ksize, strides, (1,) * rank, pads)
        count = patches(np.ones((1,) + x.shape[1:-1] + (1,)), ksize, strides, (1,) * rank,
                        pads)
        y = ex_sum(s, -2, what="average pool")
        y = ex_scale(y, 1.0 / np.sum(count, axis=-2), "average pool")
    return _from_last(y, cfg["data_format"])


def _global_pool(layer, cfg, args, kwargs, opts):
    x = _to_last(_plain(args[0]), cfg["data_format"])
    axes = tuple(range(1, x.ndim - 1))
    keep = cfg["keepdims"]
    if layer.class_name.startswith("GlobalMax"):
        y = np.max(x, axis=axes, keepdims=keep)
    else:
        n = int(np.prod(x.shape[1:-1]))
        y = ex_scale(ex_sum(x, axes, keep, "global average"), 1.0 / n, "global average")
    return _from_last(y, cfg["data_format"]) if keep else y


def bn_fold(gamma, beta, mean, var, eps):
    """The reference's float32 folding (frontends.md §2.2 BatchNormalization, §8.8)."""
    f32 = np.float32
    var = np.asarray(var, f32)
    scale = (np.asarray(gamma, f32) / np.sqrt(var + f32(eps))).astype(f32)
    offset = (np.asarray(beta, f32) - np.asarray(mean, f32) * scale).astype(f32)
    return scale, offset


def _batch_norm(layer, cfg, args, kwargs, opts):
    w = _weights(layer)
    mean, var = w["moving_mean"], w["moving_variance"]
    gamma = w["gamma"] if cfg["scale"] else np.ones_like(mean)
    beta = w["beta"] if cfg["center"] else np.zeros_like(mean)
    scale, offset = bn_fold(gamma, beta, mean, var, cfg["epsilon"])
    x = _plain(args[0])
    shape = [1] * x.ndim
    for a in (cfg["axis"] if isinstance(cfg["axis"], list) else [cfg["axis"]]):
        shape[a] = x.shape[a]
    y = ex_mul(x, opts.weight(scale).reshape(shape), "BatchNormalization scale")
    return ex_add(y, opts.weight(offset).reshape(shape), "BatchNormalization offset")


def keras_relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """keras.activations.ReLU.static_call, exactly (frontends.md §2.2 ReLU)."""
    x = _plain(x)
    if negative_slope != 0.0 and max_value is None and threshold == 0:
        return np.where(x >= 0, x, ex_mul(x, negative_slope, "leaky relu"))
    neg = None
    if negative_slope != 0.0:
        neg = np.maximum(ex_add(-x, threshold, "relu"), 0.0) if threshold != 0 else \
            np.maximum(-x, 0.0)
    if threshold != 0:
        y = np.where(x > threshold, x, 0.0)
        clip = max_value is not None
    elif max_value == 6:
        y, clip = np.clip(x, 0.0, 6.0), False
    else:
        y, clip = np.maximum(x, 0.0), max_value is not None
    if clip:
        y = np.clip(y, 0.0, max_value)
    if neg is not None:
        y = ex_sub(y, ex_mul(neg, negative_slope, "relu slope"), "relu")
    return y


def _relu_layer(layer, cfg, args, kwargs, opts):
    cls = layer.class_name
    x = args[0]
    if cls == "LeakyReLU":
        return keras_relu(x, negative_slope=cfg["negative_slope"])
    if cls == "PReLU":
        alpha = opts.weight(_weights(layer)["alpha"])
        x = _plain(x)
        return ex_sub(np.maximum(x, 0.0), ex_mul(alpha, np.maximum(-x, 0.0), "PReLU"), "PReLU")
    return keras_relu(x, cfg["negative_slope"], cfg["max_value"], cfg["threshold"])


def _activation_layer(layer, cfg, args, kwargs, opts):
    return activation(cfg["activation"], args[0], f"layer {layer.name}")


def _rescaling(layer, cfg, args, kwargs, opts):
    scale = np.asarray(decode(cfg["scale"]), np.float32)
    offset = np.asarray(decode(cfg["offset"]), np.float32)
    return ex_add(ex_mul(args[0], scale, "Rescaling"), offset, "Rescaling")


def _normalization(layer, cfg, args, kwargs, opts):
    x = _plain(args[0])
    axes = cfg["axis"] if isinstance(cfg["axis"], list) else [cfg["axis"]]
    keep = sorted(a % x.ndim for a in axes)
    if cfg["mean"] is None:
        w = _weights(layer)
        mean, var = w["mean"], w["variance"]
    else:
        mean, var = cfg["mean"], cfg["variance"]
    shape = [x.shape[d] if d in keep else 1 for d in range(x.ndim)]
    mean = np.broadcast_to(np.asarray(mean, np.float32), shape).astype(np.float64)
    var = np.broadcast_to(np.asarray(var, np.float32), shape)
    std = np.maximum(np.sqrt(var), np.float32(1e-7)).astype(np.float64)
    if cfg["invert"]:
        return ex_add(mean, ex_mul(x, std, "Normalization"), "Normalization")
    mant = np.frexp(std)[0]
    if not np.all(mant == 0.5):
        raise OracleError(f"Normalization {layer.name}: std not a power of two, Keras rounds")
    return ex_mul(ex_sub(x, mean, "Normalization"), 1.0 / std, "Normalization")


def _permute(layer, cfg, args, kwargs, opts):
    return np.transpose(args[0], (0,) + tuple(cfg["dims"]))


def _reshape_layer(layer, cfg, args, kwargs, opts):
    x = args[0]
    return np.reshape(x, (x.shape[0],) + tuple(cfg["target_shape"]))


def _flatten(layer, cfg, args, kwargs, opts):
    x = args[0]
    if cfg.get("data_format") == "channels_first" and x.ndim > 2:
        x = np.moveaxis(x, 1, -1)
    return np.reshape(x, (x.shape[0], -1))


def _embedding(layer, cfg, args, kwargs, opts):
    emb = opts.weight(_weights(layer)["embeddings"])
    idx = np.trunc(_plain(args[0])).astype(np.int64)
    if idx.min() < 0 or idx.max() >= emb.shape[0]:
        raise OracleError(f"Embedding {layer.name}: index out of range in the test data")
    return emb[idx]


def _category_encoding(layer, cfg, args, kwargs, opts):
    x = _plain(args[0])
    v = cfg["num_tokens"]
    mode = cfg["output_mode"]
    if mode == "one_hot":
        if x.ndim > 1 and x.shape[-1] == 1:
            x = x.reshape(x.shape[:-1])
        return (x[..., None] == np.arange(v)).astype(np.float64)
    counts = np.sum(x[..., None] == np.arange(v), axis=-2).astype(np.float64)
    if mode == "count":
        return counts
    if mode == "multi_hot":
        return (counts > 0).astype(np.float64)
    raise OracleError(f"CategoryEncoding output_mode {mode}")


def _spatial_axes(x, cfg):
    rank = x.ndim - 2
    if cfg.get("data_format", "channels_last") == "channels_first":
        return list(range(2, 2 + rank))
    return list(range(1, 1 + rank))


def _pairs(value, rank):
    if isinstance(value, int):
        return [(value, value)] * rank
    if rank == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
        return [tuple(value)]
    return [tuple(v) if isinstance(v, (list, tuple)) else (v, v) for v in value]


def _zero_padding(layer, cfg, args, kwargs, opts):
    x = _plain(args[0])
    axes = _spatial_axes(x, cfg)
    width = [(0, 0)] * x.ndim
    for a, p in zip(axes, _pairs(cfg["padding"], len(axes))):
        width[a] = p
    return np.pad(x, width)


def _cropping(layer, cfg, args, kwargs, opts):
    x = args[0]
    axes = _spatial_axes(x, cfg)
    sl = [slice(None)] * x.ndim
    for a, (b, e) in zip(axes, _pairs(cfg["cropping"], len(axes))):
        sl[a] = slice(b, x.shape[a] - e)
    return x[tuple(sl)]


def _upsampling(layer, cfg, args, kwargs, opts):
    if cfg.get("interpolation", "nearest") != "nearest":
        raise OracleError(f"UpSampling {layer.name}: interpolation {cfg['interpolation']}")
    x = args[0]
    axes = _spatial_axes(x, cfg)
    for a, s in zip(axes, _tuple(cfg["size"], len(axes))):
        x = np.repeat(x, s, axis=a)
    return x


def _merge(layer, cfg, args, kwargs, opts):
    xs = [_plain(a) for a in args[0]]
    cls = layer.class_name
    if cls == "Concatenate":
        return np.concatenate(xs, axis=cfg["axis"])
    if cls == "Subtract":
        if len(xs) != 2:
            raise OracleError("Subtract takes two inputs")
        return ex_sub(xs[0], xs[1], "Subtract")
    y = xs[0]
    for x in xs[1:]:
        if cls in ("Add", "Average"):
            y = ex_add(y, x, cls)
        elif cls == "Multiply":
            y = ex_mul(y, x, cls)
        elif cls == "Maximum":
            y = np.maximum(y, x)
        elif cls == "Minimum":
            y = np.minimum(y, x)
    if cls == "Average":
        y = ex_scale(y, 1.0 / len(xs), "Average")
    return y


def _dot_layer(layer, cfg, args, kwargs, opts):
    if cfg["normalize"]:
        raise OracleError(f"Dot {layer.name}: normalize=True is not exact")
    x1, x2 = (_plain(a) for a in args[0])
    axes = cfg["axes"]
    axes = [axes, axes] if isinstance(axes, int) else list(axes)
    a1, a2 = axes[0] % x1.ndim, axes[1] % x2.ndim
    letters = "abcdefghijklmnopqrstuvwxyz"
    s1 = letters[:x1.ndim]
    s2 = [s1[0]] + list(letters[x1.ndim:x1.ndim + x2.ndim - 1])
    s2[a2] = s1[a1]
    out = s1.replace(s1[a1], "") + "".join(c for c in s2[1:] if c != s1[a1])
    return ex_einsum(f"{s1},{''.join(s2)}->{out}", x1, x2, "Dot")


def _repeat_vector(layer, cfg, args, kwargs, opts):
    x = args[0]
    return np.repeat(x[:, None, :], cfg["n"], axis=1)


def _identity(layer, cfg, args, kwargs, opts):
    return args[0]


# ---- op handlers ---------------------------------------------------------------------------

def _operands(args):
    """Operands of an arithmetic op: (value, is_tensor); constants decoded (numbers stay)."""
    return [(a, True) if isinstance(a, np.ndarray) else (decode(a), False) for a in args]


def _arith(layer, cfg, args, kwargs, opts):
    (a, ta), (b, tb) = _operands(args[:2])
    cls = layer.class_name
    if isinstance(a, Pending) or isinstance(b, Pending):
        # Arithmetic with a constant on a table function composes the float64 function.
        if ta and tb:
            raise OracleError(f"{layer.name}: {cls} of two tensors, one a table function")
        a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
        fn = {"Add": np.add, "Subtract": np.subtract, "Multiply": np.multiply,
              "TrueDivide": np.true_divide, "Divide": np.true_divide}.get(cls)
        if fn is None:
            raise OracleError(f"{layer.name}: {cls} on a table function")
        return _pending(fn(a64, b64))
    if cls == "Add":
        return ex_add(a, b, cls)
    if cls == "Subtract":
        return ex_sub(a, b, cls)
    if cls == "Multiply":
        return ex_mul(a, b, cls)
    if cls == "Maximum":
        return np.maximum(_plain(a), _plain(b))
    if cls == "Minimum":
        return np.minimum(_plain(a), _plain(b))
    if cls in ("TrueDivide", "Divide"):
        if ta and tb:
            raise OracleError(f"{layer.name}: tensor / tensor is not exact")
        if tb:  # constant / tensor: a table of c / v
            return _table(lambda v: np.float64(a) / v, b, layer.name)
        return ex_scale(a, 1.0 / np.asarray(b, np.float64), cls)
    raise OracleError(cls)


def _compare(layer, cfg, args, kwargs, opts):
    a, b = (_plain(v) for v, _ in _operands(args[:2]))
    fn = {"Equal": np.equal, "Greater": np.greater, "GreaterEqual": np.greater_equal,
          "Less": np.less, "LessEqual": np.less_equal}[layer.class_name]
    return fn(a, b).astype(np.float64)


def _axis(v):
    return tuple(v) if isinstance(v, list) else v


def _reduce(layer, cfg, args, kwargs, opts):
    x = _plain(args[0])
    cls = layer.class_name
    axis = _axis(cfg.get("axis"))
    keep = cfg.get("keepdims", False)
    if axis is None:
        raise OracleError(f"{layer.name}: axis=None reduces the batch axis")
    if cls == "Sum":
        return ex_sum(x, axis, keep)
    if cls in ("Max", "Min"):
        # Keras (jnp.max/min) folds `initial` into the reduction; the reference ignores it.
        y = (np.max if cls == "Max" else np.min)(x, axis=axis, keepdims=keep)
        if cfg.get("initial") is not None:
            y = (np.maximum if cls == "Max" else np.minimum)(y, cfg["initial"])
        return y
    if cls == "Prod":
        return ex_prod(x, axis, keep)
    if cls == "Mean":
        n = x.shape[axis] if isinstance(axis, int) else int(np.prod([x.shape[a] for a in axis]))
        return ex_scale(ex_sum(x, axis, keep, "mean"), 1.0 / n, "mean")
    if cls == "All":
        return np.all(x != 0, axis=axis, keepdims=keep).astype(np.float64)
    if cls == "Any":
        return np.any(x != 0, axis=axis, keepdims=keep).astype(np.float64)
    if cls == "CountNonzero":
        return np.count_nonzero(x, axis=axis).astype(np.float64)
    raise OracleError(cls)


def _average_op(layer, cfg, args, kwargs, opts):
    x = _plain(args[0])
    weights = kwargs.get("weights")
    weights = decode(weights) if weights is not None else None
    axis = cfg["axis"]
    if weights is None:
        return ex_scale(ex_sum(x, axis, what="average"), 1.0 / x.shape[axis], "average")
    w = np.asarray(weights, np.float64)
    shape = [1] * x.ndim
    shape[axis] = -1
    s = ex_sum(ex_mul(x, w.reshape(shape), "average"), axis, what="average")
    return ex_scale(s, 1.0 / np.sum(w), "average")


def _concat_op(layer, cfg, args, kwargs, opts):
    return np.concatenate([_plain(a) for a in args[0]], axis=cfg["axis"])


def _reshape_op(layer, cfg, args, kwargs, opts):
    return np.reshape(args[0], tuple(cfg["newshape"]))


def _ravel_op(layer, cfg, args, kwargs, opts):
    return np.ravel(args[0])


def _getitem(layer, cfg, args, kwargs, opts):
    key = decode(args[1])
    key = tuple(key) if isinstance(key, list) else key
    return args[0][key]


def _repeat_op(layer, cfg, args, kwargs, opts):
    return np.repeat(args[0], cfg["repeats"], axis=cfg["axis"])


def _transpose_op(layer, cfg, args, kwargs, opts):
    return np.transpose(args[0], _axis(cfg["axes"]))


def _expand_dims_op(layer, cfg, args, kwargs, opts):
    return np.expand_dims(args[0], _axis(cfg["axis"]))


def _moveaxis_op(layer, cfg, args, kwargs, opts):
    return np.moveaxis(args[0], _axis(cfg["source"]), _axis(cfg["destination"]))


def _einsum_op(layer, cfg, args, kwargs, opts):
    a, b = (v for v, _ in _operands(args[:2]))
    return ex_einsum(cfg["subscripts"], a, b, "Einsum")


def _matmul_op(layer, cfg, args, kwargs, opts):
    (a, _), (b, tb) = _operands(args[:2])
    if layer.class_name == "Dot" and (tb or np.ndim(b) != 2):
        # numpy dot of two batched tensors mixes samples: not a per-sample function.
        raise OracleError(f"{layer.name}: ops.dot is numpy dot; only a 2-D constant operand")
    return ex_einsum("...ij,...jk->...ik", a, b, layer.class_name)


def _abs_op(layer, cfg, args, kwargs, opts):
    return np.abs(_plain(args[0]))


def _negative_op(layer, cfg, args, kwargs, opts):
    return -_plain(args[0])


def _clip_op(layer, cfg, args, kwargs, opts):
    lo = cfg.get("x_min", cfg.get("a_min"))
    hi = cfg.get("x_max", cfg.get("a_max"))
    return np.clip(_plain(args[0]), lo, hi)


def _rounding(layer, cfg, args, kwargs, opts):
    x = args[0]
    if isinstance(x, Rounded):
        raise OracleError(f"{layer.name}: rounding a rounded value")
    cls = layer.class_name
    if cls == "Round" and cfg.get("decimals", 0) != 0:
        raise OracleError(f"{layer.name}: decimals != 0")
    fn = {"Round": np.round, "Floor": np.floor, "Ceil": np.ceil}[cls]
    return _plain(fn(np.asarray(x, np.float64)))


def _sortlike(layer, cfg, args, kwargs, opts):
    x = _plain(args[0])
    cls = layer.class_name
    if cls == "Sort":
        return np.sort(x, axis=cfg["axis"])
    fn = {"Argmax": np.argmax, "Argmin": np.argmin, "Amax": np.max, "Amin": np.min}[cls]
    axis = _axis(cfg["axis"])
    if axis is None:
        raise OracleError(f"{layer.name}: axis=None reduces the batch axis")
    if cls in ("Argmax", "Argmin"):
        return fn(x, axis=axis, keepdims=cfg["keepdims"]).astype(np.float64)
    return fn(x, axis=axis, keepdims=cfg["keepdims"])


UNARY_TABLES = {
    "Sin": np.sin, "Cos": np.cos, "Tan": np.tan, "Exp": np.exp, "Log": np.log,
    "Sqrt": np.sqrt, "Sinh": np.sinh, "Cosh": np.cosh, "Tanh": np.tanh, "Arccos": np.arccos,
    "Arcsin": np.arcsin, "Arctanh": np.arctanh, "Arcsinh": np.arcsinh, "Expm1": np.expm1,
    "Log1p": np.log1p,
}


def _unary_table(layer, cfg, args, kwargs, opts):
    return _table(UNARY_TABLES[layer.class_name], args[0], layer.name)


def _sign(layer, cfg, args, kwargs, opts):
    x = _plain(args[0])
    if layer.class_name == "Sign":
        return np.sign(x)
    return np.signbit(x).astype(np.float64)


def _nn_activation(layer, cfg, args, kwargs, opts):
    cls = layer.class_name
    if cls == "Gelu":
        if cfg.get("approximate", True):
            fn = lambda x: 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) *  # noqa: E731
                                                    (x + 0.044715 * x ** 3)))
        else:
            fn = TABLE_ACTIVATIONS["gelu"]
    elif cls == "Elu":
        alpha = cfg.get("alpha", 1.0)
        fn = lambda x: _elu(x, alpha)  # noqa: E731
    else:
        fn = TABLE_ACTIVATIONS[{"Sigmoid": "sigmoid", "Silu": "silu", "HardSigmoid":
                                "hard_sigmoid", "HardSilu": "hard_silu", "Selu": "selu"}[cls]]
    return _table(fn, args[0], layer.name)


def _relu_op(layer, cfg, args, kwargs, opts):
    return keras_relu(args[0], cfg["negative_slope"], cfg["max_value"], cfg["threshold"])


def _pad_op(layer, cfg, args, kwargs, opts):
    mode = cfg["mode"]
    width = [tuple(p) for p in cfg["pad_width"]]
    x = _plain(args[0])
    if mode == "constant":
        cv = kwargs.get("constant_values")
        return np.pad(x, width, mode="constant", constant_values=0 if cv is None else cv)
    return np.pad(x, width, mode=mode)


def _extract_patches(layer, cfg, args, kwargs, opts):
    size = _tuple(cfg["size"], 2)
    strides = cfg["strides"] or size
    strides = _tuple(strides, 2)
    dil = _tuple(cfg["dilation_rate"], 2)
    fmt = cfg.get("data_format") or "channels_last"
    x = _to_last(_plain(args[0]), fmt)
    p = patches(x, size, strides, dil, _pads(cfg["padding"], x.shape[1:-1], size, strides, dil))
    return _from_last(p.reshape(p.shape[:-2] + (-1,)), fmt)


L, NP, NN = "keras.layers", "keras.src.ops.numpy", "keras.src.ops.nn"
HANDLERS = {(L, "Dense"): _dense, (L, "EinsumDense"): _einsum_dense,
            (L, "BatchNormalization"): _batch_norm, (L, "Activation"): _activation_layer,
            (L, "ReLU"): _relu_layer, (L, "LeakyReLU"): _relu_layer, (L, "PReLU"): _relu_layer,
            (L, "Rescaling"): _rescaling, (L, "Normalization"): _normalization,
            (L, "Permute"): _permute, (L, "Reshape"): _reshape_layer, (L, "Flatten"): _flatten,
            (L, "Embedding"): _embedding, (L, "CategoryEncoding"): _category_encoding,
            (L, "Dot"): _dot_layer, (L, "RepeatVector"): _repeat_vector,
            (L, "Identity"): _identity,
            ("keras.src.ops.image", "ExtractPatches"): _extract_patches,
            ("keras.src.activations.activations", "ReLU"): _relu_op}
for _d in ("1D", "2D", "3D"):
    HANDLERS[(L, f"Conv{_d}")] = _conv
    HANDLERS[(L, f"Conv{_d}Transpose")] = _conv_transpose
    for _kind in ("Average", "Max"):
        HANDLERS[(L, f"{_kind}Pooling{_d}")] = _pool
        HANDLERS[(L, f"Global{_kind}Pooling{_d}")] = _global_pool
    HANDLERS[(L, f"ZeroPadding{_d}")] = _zero_padding
    HANDLERS[(L, f"Cropping{_d}")] = _cropping
    HANDLERS[(L, f"UpSampling{_d}")] = _upsampling
HANDLERS[(L, "DepthwiseConv1D")] = HANDLERS[(L, "DepthwiseConv2D")] = _conv
for _c in ("Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average", "Concatenate"):
    HANDLERS[(L, _c)] = _merge
NOOP_LAYERS = ["Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
               "GaussianDropout", "GaussianNoise", "AlphaDropout", "RandomFlip",
               "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
               "RandomBrightness"]  # not RandomCrop: it crops or resizes at inference
for _c in NOOP_LAYERS:
    HANDLERS[(L, _c)] = _identity
for _c in ("Add", "Subtract", "Multiply", "TrueDivide", "Divide", "Maximum", "Minimum"):
    HANDLERS[(NP, _c)] = _arith
for _c in ("Equal", "Greater", "GreaterEqual", "Less", "LessEqual"):
    HANDLERS[(NP, _c)] = _compare
for _c in ("Sum", "Max", "Min", "Prod", "Mean", "All", "Any", "CountNonzero"):
    HANDLERS[(NP, _c)] = _reduce
for _c in UNARY_TABLES:
    HANDLERS[(NP, _c)] = _unary_table
for _c in ("Round", "Floor", "Ceil"):
    HANDLERS[(NP, _c)] = _rounding
for _c in ("Argmax", "Argmin", "Amax", "Amin", "Sort"):
    HANDLERS[(NP, _c)] = _sortlike
for _c in ("Sigmoid", "Silu", "HardSigmoid", "HardSilu", "Gelu", "Elu", "Selu"):
    HANDLERS[(NN, _c)] = _nn_activation
HANDLERS.update({(NP, "Average"): _average_op, (NP, "Concatenate"): _concat_op,
                 (NP, "Reshape"): _reshape_op, (NP, "Ravel"): _ravel_op,
                 (NP, "GetItem"): _getitem, (NP, "Repeat"): _repeat_op,
                 (NP, "Transpose"): _transpose_op, (NP, "ExpandDims"): _expand_dims_op,
                 (NP, "Moveaxis"): _moveaxis_op, (NP, "Einsum"): _einsum_op,
                 (NP, "Matmul"): _matmul_op, (NP, "Dot"): _matmul_op,
                 (NP, "Absolute"): _abs_op, (NP, "Abs"): _abs_op, (NP, "Clip"): _clip_op,
                 (NP, "Negative"): _negative_op,
                 (NP, "Sign"): _sign, (NP, "Signbit"): _sign, (NP, "Pad"): _pad_op})

# Ops that may act on a pending table function (the reference composes them into the table).
PENDING_OK = {(NP, c) for c in ("Add", "Subtract", "Multiply", "TrueDivide", "Divide", "Round",
                                "Floor", "Ceil")} | {(NP, c) for c in UNARY_TABLES} | \
    {(NN, c) for c in ("Sigmoid", "Silu", "HardSigmoid", "HardSilu", "Gelu", "Elu", "Selu")}


# ---- graph walk ----------------------------------------------------------------------------

def evaluate(model, inputs, options=None):
    """The outputs of `model` (a kerasgen Functional or Sequential) on `inputs` (one array per
    model input, batch axis first), in the model's output order."""
    return _eval_model(model, [np.asarray(x, np.float64) for x in inputs], options or Options())


def _is_model(layer):
    return layer.class_name in ("Functional", "Sequential") and hasattr(layer, "ordered_layers")


def _eval_model(model, inputs, opts):
    if model.class_name == "Sequential":
        x = inputs[0]
        for layer in model.layers:
            x = apply_layer(layer, [x], {}, opts)[0]
        return [x]
    values = {}
    for t, v in zip(model.inputs, inputs):
        values[(id(t.producer), t.node_index, t.tensor_index)] = v
    active = set()

    def get(t):
        key = (id(t.producer), t.node_index, t.tensor_index)
        if key not in values:
            node = (id(t.producer), t.node_index)
            if node in active:
                raise OracleError(f"cycle through {t.producer.name}")
            active.add(node)
            args, kwargs, _ = t.producer.nodes[t.node_index - t.producer.first_node]
            outs = apply_layer(t.producer, subst(args, get), subst(kwargs, get), opts)
            for i, o in enumerate(outs):
                values[(id(t.producer), t.node_index, i)] = o
            active.discard(node)
        return values[key]

    return [get(t) for t in model.outputs]


def subst(value, get):
    """Tensors of a node's arguments replaced by their values (through lists and dicts)."""
    if hasattr(value, "producer") and hasattr(value, "tensor_index"):
        return get(value)
    if isinstance(value, list):
        return [subst(v, get) for v in value]
    if isinstance(value, tuple):
        return tuple(subst(v, get) for v in value)
    if isinstance(value, dict) and "class_name" not in value:
        return {k: subst(v, get) for k, v in value.items()}
    return value


def apply_layer(layer, args, kwargs, opts):
    """One node: the layer's body, its activation (strict map), the output quantizer option."""
    if _is_model(layer):
        sub_inputs = args[0] if isinstance(args[0], list) else [args[0]]
        return _eval_model(layer, sub_inputs, opts)
    key = (layer.module, layer.class_name)
    handler = HANDLERS.get(key)
    if handler is None:
        raise OracleError(f"no oracle for {layer.class_name} ({layer.module})")
    tensors = [a for a in _flat(args)]
    if key not in PENDING_OK:
        _no_pending(*tensors, where=f"{layer.class_name} {layer.name}")
    elif any(isinstance(a, Rounded) for a in tensors):
        raise OracleError(f"{layer.name}: a rounded value feeds another node")
    cfg = layer.config()
    # A recorded training=True (Random* layers) is ignored: predict() runs in inference mode.
    out = handler(layer, cfg, args, kwargs, opts)
    outs = list(out) if isinstance(out, list) else [out]
    if layer.class_name != "Activation" and layer.kind == "layer" and "activation" in cfg:
        if len(outs) != 1:
            raise OracleError(f"{layer.name}: activation on several outputs")
        outs = [activation(cfg["activation"], outs[0], f"layer {layer.name}")]
    return [opts.output(o) for o in outs]


def _flat(value):
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flat(v)]
    return []
