"""models: every Keras test model of issue 12 as a kerasgen description, with its inputs.

Each `Case` holds a model described with kerasgen (tests/keras/kerasgen.py) exactly as Keras 3.10
serializes it: layer configs with every default in Keras' key order (read from keras-team/keras
v3.10.0 get_config()s), `build_config` where Keras records one (not for layers built in their
constructor), ops with module `keras.src.ops.numpy` & co. and their auto-config (constructor
arguments, no `name` for ops whose __init__ has none, e.g. Gelu, Elu, ExtractPatches), call
arguments as Keras records them (`training`, `mask` kwargs; constants as `__numpy__`, slices as
`__slice__`), weights in `vars/N` order and filled as the reference's harness does
(frontends.md §6.1: round(N(0,1)*4)/4, numpy default_rng(42), get_weights() order, float32).

A Case also carries its input shapes, the input kif (`--input-kif`), how test data are drawn,
which file forms to write (Keras 3 .keras always; `legacy` adds the Keras 3 .h5, Keras 2 .h5 and
Keras 2 json + weights pair, for which every layer has a Keras 2 config too), the precision
options for plain float models, and for broken models the error text expected.

    import models
    for case in models.cases(): case.name, case.model, case.covers, ...
    models.write_forms(case, directory) -> {form: [file, ...]}

Layer and op names are Keras' automatic names (snake_case of the class, `_N` for repeats).
"""

import copy
import json
import os
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kerasgen as kg  # noqa: E402
import oracle  # noqa: E402

KERAS_VERSION = "3.10.0"
L = "keras.layers"
NP = "keras.src.ops.numpy"
NN = "keras.src.ops.nn"
IMG = "keras.src.ops.image"
ACT = "keras.src.activations.activations"
PROBE = 0.25  # the value shape probes run on (in every function's domain)

# Layers Keras builds in their constructor (Layer._build_at_init): no build_config.
BUILT_AT_INIT = {"Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Identity", "Dropout",
                 "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout",
                 "GaussianNoise", "AlphaDropout"}
BUILT_AT_INIT |= {f"{k}{p}{d}" for k in ("Max", "Average", "GlobalMax", "GlobalAverage")
                  for p in ("Pooling",) for d in ("1D", "2D", "3D")}


# ---- config pieces as Keras 3 serializes them ------------------------------------------------

def init(cls, **config):
    return {"module": "keras.initializers", "class_name": cls, "config": config,
            "registered_name": None}


def glorot():
    return init("GlorotUniform", seed=None)


def zeros():
    return init("Zeros")


def ones():
    return init("Ones")


def tagged_numpy(value, dtype="float32"):
    return {"class_name": "__numpy__",
            "config": {"value": np.asarray(value).tolist(), "dtype": dtype}}


def sl(start=None, stop=None, step=None):
    return {"class_name": "__slice__", "config": {"start": start, "stop": stop, "step": step}}


ELLIPSIS = {"class_name": "__ellipsis__", "config": {}}


def dense_cfg(units, activation="linear", use_bias=True):
    return {"units": units, "activation": activation, "use_bias": use_bias,
            "kernel_initializer": glorot(), "bias_initializer": zeros(),
            "kernel_regularizer": None, "bias_regularizer": None, "kernel_constraint": None,
            "bias_constraint": None}


def einsum_dense_cfg(equation, output_shape, bias_axes=None, activation="linear"):
    return {"output_shape": list(output_shape), "equation": equation, "activation": activation,
            "bias_axes": bias_axes, "kernel_initializer": glorot(),
            "bias_initializer": zeros(), "kernel_regularizer": None, "bias_regularizer": None,
            "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}


def _nd(v, rank):
    return list(v) if isinstance(v, (list, tuple)) else [v] * rank


def conv_cfg(rank, filters, kernel_size, strides=1, padding="valid", data_format="channels_last",
             dilation_rate=1, groups=1, activation="linear", use_bias=True):
    return {"filters": filters, "kernel_size": _nd(kernel_size, rank),
            "strides": _nd(strides, rank), "padding": padding, "data_format": data_format,
            "dilation_rate": _nd(dilation_rate, rank), "groups": groups,
            "activation": activation, "use_bias": use_bias, "kernel_initializer": glorot(),
            "bias_initializer": zeros(), "kernel_regularizer": None, "bias_regularizer": None,
            "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}


def conv_transpose_cfg(rank, filters, kernel_size, strides=1, padding="valid",
                       data_format="channels_last", dilation_rate=1, activation="linear",
                       use_bias=True, output_padding=None, with_output_padding=False):
    cfg = {"filters": filters, "kernel_size": _nd(kernel_size, rank),
           "strides": _nd(strides, rank), "padding": padding}
    if with_output_padding:  # Keras >= 3.15 saves it (and only then does it survive a reload)
        cfg["output_padding"] = None if output_padding is None else _nd(output_padding, rank)
    cfg.update({"data_format": data_format, "dilation_rate": _nd(dilation_rate, rank),
                "activation": activation, "use_bias": use_bias,
                "kernel_initializer": glorot(), "bias_initializer": zeros(),
                "kernel_regularizer": None, "bias_regularizer": None,
                "activity_regularizer": None, "kernel_constraint": None,
                "bias_constraint": None})
    return cfg


def depthwise_cfg(rank, kernel_size, strides=1, padding="valid", depth_multiplier=1,
                  data_format="channels_last", dilation_rate=1, activation="linear",
                  use_bias=True):
    return {"depth_multiplier": depth_multiplier, "kernel_size": _nd(kernel_size, rank),
            "strides": _nd(strides, rank), "padding": padding, "data_format": data_format,
            "dilation_rate": _nd(dilation_rate, rank), "activation": activation,
            "use_bias": use_bias, "depthwise_initializer": glorot(),
            "bias_initializer": zeros(), "depthwise_regularizer": None,
            "bias_regularizer": None, "activity_regularizer": None,
            "depthwise_constraint": None, "bias_constraint": None}


def pool_cfg(rank, pool_size, strides=None, padding="valid", data_format="channels_last"):
    return {"pool_size": _nd(pool_size, rank),
            "padding": padding,
            "strides": _nd(pool_size if strides is None else strides, rank),
            "data_format": data_format}


def bn_cfg(axis=-1, epsilon=0.001, center=True, scale=True):
    return {"axis": axis, "momentum": 0.99, "epsilon": epsilon, "center": center,
            "scale": scale, "beta_initializer": zeros(), "gamma_initializer": ones(),
            "moving_mean_initializer": zeros(), "moving_variance_initializer": ones(),
            "beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None,
            "gamma_constraint": None, "synchronized": False}


def prelu_cfg(shared_axes=None):
    return {"alpha_initializer": zeros(), "alpha_regularizer": None, "alpha_constraint": None,
            "shared_axes": shared_axes}


# ---- Keras 2 (tf.keras 2.x) configs of the legacy subset -------------------------------------

def _k2_value(v):
    """Keras 3 nested objects to Keras 2's {class_name, config} (no module/registered_name)."""
    if isinstance(v, dict) and "module" in v and "class_name" in v:
        return {"class_name": v["class_name"], "config": _k2_value(v["config"])}
    if isinstance(v, dict):
        return {k: _k2_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_k2_value(x) for x in v]
    return v


def k2_config(class_name, cfg, input_rank):
    """The config tf.keras 2.x writes for the same layer (fields renamed where Keras 2 differs:
    LeakyReLU `alpha`, DepthwiseConv2D keeps Conv's `groups` and puts depth_multiplier last,
    BatchNormalization stores its axis as a list of positive axes after build)."""
    cfg = _k2_value(copy.deepcopy(cfg))
    if class_name == "LeakyReLU":
        cfg = {"alpha": cfg["negative_slope"]}
    elif class_name.startswith("DepthwiseConv"):
        dm = cfg.pop("depth_multiplier")
        keys = ["kernel_size", "strides", "padding", "data_format", "dilation_rate"]
        out = {k: cfg[k] for k in keys}
        out["groups"] = 1
        out.update({k: cfg[k] for k in ("activation", "use_bias", "bias_initializer",
                                         "bias_regularizer", "activity_regularizer",
                                         "bias_constraint")})
        out.update({"depth_multiplier": dm, "depthwise_initializer": cfg["depthwise_initializer"],
                    "depthwise_regularizer": None, "depthwise_constraint": None})
        cfg = out
    elif class_name == "BatchNormalization":
        cfg.pop("synchronized")
        cfg["axis"] = [cfg["axis"] % input_rank]
    elif class_name == "Dense":
        cfg = {**{k: cfg[k] for k in list(cfg)[:7]}, "activity_regularizer": None,
               **{k: cfg[k] for k in list(cfg)[7:]}}
    return cfg


# ---- building models ----------------------------------------------------------------------

class Builder:
    """A kerasgen Functional built call by call; each node's output shape and dtype come from
    the oracle run on a probe batch (what Keras' symbolic call would infer)."""

    def __init__(self, name="functional", flat_io=True, lenient=False):
        self.m = kg.Functional(name, flat_io=flat_io)
        self.lenient = lenient  # broken models: a node the oracle refuses keeps its input shape
        self.used = {}
        self.probe = {}

    def uname(self, cls):
        base = kg.snake_case(cls)
        n = self.used.get(base, 0)
        self.used[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def input(self, shape, probe_shape=None, dtype="float32"):
        n = len(self.m.inputs)
        t = self.m.input(shape, name="input_layer" if n == 0 else f"input_layer_{n}",
                         dtype=dtype)
        self.probe[id(t)] = np.full((1,) + tuple(probe_shape or shape), PROBE)
        return t

    def _probe_of(self, value):
        if isinstance(value, kg.Tensor):
            return self.probe[id(value)]
        if isinstance(value, list):
            return [self._probe_of(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._probe_of(v) for v in value)
        if isinstance(value, dict) and "class_name" not in value:
            return {k: self._probe_of(v) for k, v in value.items()}
        return value

    def node(self, layer, args, kwargs=None, n_outputs=1, out_shape=None, out_dtype=None):
        kwargs = dict(kwargs or {})
        try:
            outs = oracle.apply_layer(layer, self._probe_of(args), self._probe_of(kwargs),
                                      oracle.Options())
        except oracle.OracleError:
            if not self.lenient:
                raise
            outs = [oracle._flat(self._probe_of(args))[0]] * n_outputs
        shapes = [tuple(o.shape[1:]) for o in outs]
        if out_shape is not None:
            shapes = out_shape if n_outputs > 1 else [out_shape]
        dtypes = out_dtype or [_out_dtype(layer)] * n_outputs
        res = self.m.call(layer, None, args=list(args), kwargs=kwargs,
                          out_shape=shapes if n_outputs > 1 else shapes[0],
                          n_outputs=n_outputs, out_dtype=dtypes if n_outputs > 1 else dtypes[0])
        res_list = list(res) if n_outputs > 1 else [res]
        for t, o in zip(res_list, outs):
            self.probe[id(t)] = o
        return res

    def layer(self, cls, cfg, x, weights=(), name=None, kwargs=None, k2=None, **node_opts):
        """A keras.layers layer called on x (a tensor or a list of tensors)."""
        name = name or self.uname(cls)
        first = x[0] if isinstance(x, list) else x
        lay = make_layer(cls, name, cfg, weights, k2, len(first.shape) + 1)
        if kwargs is None:
            kwargs = default_kwargs(cls)
        return self.node(lay, [x], kwargs, **node_opts)

    def call(self, layer, x, kwargs=None, **node_opts):
        """Call an existing layer (shared layer) or model again."""
        return self.node(layer, [x], kwargs if kwargs is not None else default_kwargs(
            layer.class_name), **node_opts)

    def op(self, module, cls, cfg, args, kwargs=None, name=None, with_name=True, **node_opts):
        """A Keras op (Operation) node: config = {name?, constructor arguments}."""
        name = name or self.uname(cls)
        lay = kg.Layer(cls, name, cfg, module=module, kind="op")
        if not with_name:
            lay.config = lambda c=dict(cfg): dict(c)
        return self.node(lay, args, kwargs, **node_opts)

    def output(self, *tensors):
        self.m.output(*tensors)
        return self.m


def _out_dtype(layer):
    if layer.module == NP and layer.class_name in ("Equal", "Greater", "GreaterEqual", "Less",
                                                   "LessEqual", "All", "Any", "Signbit"):
        return "bool"
    if layer.module == NP and layer.class_name in ("Argmax", "Argmin", "CountNonzero"):
        return "int32"
    return "float32"


def default_kwargs(cls):
    """The call kwargs Keras' Layer.__call__ records for a plain call (keras 3.10 layer.py:
    `training` injected when the call signature's default is not None, `mask` when call()
    takes a mask and one tensor argument)."""
    if cls in ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
               "GaussianDropout", "GaussianNoise", "AlphaDropout"):
        return {"training": False}
    if cls.startswith("Random"):
        return {"training": True}
    if cls in ("BatchNormalization", "GlobalAveragePooling1D", "Functional", "Sequential",
               "Softmax"):
        return {"mask": None}
    return {}


WEIGHT_SPECS = {
    "kernel": (0.0, True), "bias": (0.0, True), "gamma": (1.0, True), "beta": (0.0, True),
    "moving_mean": (0.0, False), "moving_variance": (1.0, False), "alpha": (0.0, True),
    "embeddings": (0.0, True), "mean": (0.0, False), "variance": (1.0, False),
    "count": (0, False)}


def make_layer(cls, name, cfg, weights=(), k2=None, input_rank=None, module=L,
               registered_name=kg.DEFAULT, out_shape=None):
    """A keras.layers layer; `weights` = [(variable name, shape), ...] in vars/N order, filled
    with Keras' initial values (perturb_weights sets the test values)."""
    vars_ = []
    for w in weights:
        wname, shape = w[0], w[1]
        dtype = w[2] if len(w) > 2 else "float32"
        value, trainable = WEIGHT_SPECS[wname]
        name_k2 = "depthwise_kernel" if cls.startswith("DepthwiseConv") and wname == "kernel" \
            else None
        vars_.append(kg.Var(wname, np.full(shape, value, dtype), trainable, name_k2=name_k2))
    config_k2 = k2_config(cls, cfg, input_rank) if k2 else None
    return kg.Layer(cls, name, cfg, module=module, registered_name=registered_name,
                    vars=vars_, config_k2=config_k2, built_at_init=cls in BUILT_AT_INIT,
                    out_shape=out_shape)


def perturb_weights(model, seed=42):
    """The reference harness: every weight of ndim > 0, in get_weights() order, becomes
    round(N(0,1)*4)/4 (float32, numpy default_rng(seed)); scalars are kept."""
    rng = np.random.default_rng(seed)
    seen = set()
    for var, _ in model.weights():
        if id(var) in seen:
            continue
        seen.add(id(var))
        if var.value.ndim == 0:
            continue
        r = rng.standard_normal(var.value.shape).astype(np.float32)
        var.value = (np.round(r * np.float32(4)) / np.float32(4)).astype(var.value.dtype)


def float_weights(model, seed, scale=0.3):
    """Trained-looking float32 weights (no quarter steps): N(0,1)*scale; variances |.|+0.5."""
    rng = np.random.default_rng(seed)
    for var, _ in model.weights():
        shape = var.value.shape
        v = (rng.standard_normal(shape) * scale).astype(np.float32)
        if var.name == "moving_variance":
            v = np.abs(v) + np.float32(0.5)
        if var.name == "gamma":
            v = v + np.float32(1)
        var.value = v


def find_layer(model, name):
    for layer in model.ordered_layers():
        if layer.name == name:
            return layer
        if isinstance(layer, kg._Model):
            try:
                return find_layer(layer, name)
            except KeyError:
                pass
    raise KeyError(name)


# ---- the test cases -----------------------------------------------------------------------

class Case:
    """One test model: see the module's doc. `data(n)` gives the inputs (a list of float64
    arrays with the batch axis first) on the kif grid."""

    def __init__(self, name, model, shapes, kif=(1, 4, 4), covers=(), legacy=False,
                 data_hook=None, input_shapes=None, options=None, beyond_reference=False,
                 expect_error=None, mutate=None, plain_float=False, k2_model_class=None,
                 keras_version=KERAS_VERSION, data_kif=None):
        self.name = name
        self.model = model
        self.shapes = [tuple(s) for s in shapes]
        self.kif = tuple(kif)
        self.data_kif = tuple(data_kif or kif)
        self.covers = list(covers)
        self.legacy = legacy
        self.data_hook = data_hook
        self.input_shapes = input_shapes  # --input-shape per input (batch 1 included)
        self.options = options  # oracle.Options for the precision flags
        self.beyond_reference = beyond_reference
        self.expect_error = expect_error  # substrings the conversion error must contain
        self.mutate = mutate  # fn(config dict, weights {address: array}) for broken files
        self.plain_float = plain_float  # must fail without the precision options
        self.k2_model_class = k2_model_class
        self.keras_version = keras_version

    def data(self, n, seed_base=0):
        datas = [oracle.grid_data((n,) + s, self.data_kif, seed=seed_base + j)
                 for j, s in enumerate(self.shapes)]
        return self.data_hook(datas) if self.data_hook else datas

    def expected(self, datas):
        return oracle.evaluate(self.model, datas, self.options)

    def file_stem(self):
        return "".join(c if c.isalnum() else "_" for c in self.name)


def single(name, layer_fn, shape, kif=(1, 4, 4), covers=(), legacy=False, **case_opts):
    """A model applying layer_fn(builder, x) to one input (the harness's _run)."""
    b = Builder()
    x = b.input(shape)
    y = layer_fn(b, x)
    return Case(name, b.output(y), [shape], kif, covers, legacy, **case_opts)


def multi(name, fn, shapes, kif=(1, 4, 4), covers=(), legacy=False, as_list=True, **case_opts):
    """A model on several inputs: fn(builder, [x0, x1, ...])."""
    b = Builder(flat_io=False)
    xs = [b.input(s) for s in shapes]
    y = fn(b, xs)
    b.m.flat_io = False
    return Case(name, b.output(*(y if isinstance(y, tuple) else (y,))), shapes, kif, covers,
                legacy, **case_opts)


def round16(b, y):
    """ops.round(y * 16): a table function's output quantized (as the tests do)."""
    return b.op(NP, "Round", {"decimals": 0}, [b.op(NP, "Multiply", {}, [y, 16])])


def _dense(b, x, units, activation="linear", use_bias=True):
    cin = x.shape[-1]
    w = [("kernel", (cin, units))] + ([("bias", (units,))] if use_bias else [])
    return b.layer("Dense", dense_cfg(units, activation, use_bias), x, w, k2=True)


def _conv(b, x, rank, filters, kernel_size, groups=1, data_format="channels_last", **kw):
    cin = x.shape[0] if data_format == "channels_first" else x.shape[-1]
    ks = _nd(kernel_size, rank)
    cfg = conv_cfg(rank, filters, kernel_size, groups=groups, data_format=data_format, **kw)
    w = [("kernel", tuple(ks) + (cin // groups, filters))]
    if cfg["use_bias"]:
        w.append(("bias", (filters,)))
    return b.layer(f"Conv{rank}D", cfg, x, w, k2=True)


def _conv_t(b, x, rank, filters, kernel_size, data_format="channels_last", **kw):
    cin = x.shape[0] if data_format == "channels_first" else x.shape[-1]
    cfg = conv_transpose_cfg(rank, filters, kernel_size, data_format=data_format, **kw)
    w = [("kernel", tuple(_nd(kernel_size, rank)) + (filters, cin))]
    if cfg["use_bias"]:
        w.append(("bias", (filters,)))
    return b.layer(f"Conv{rank}DTranspose", cfg, x, w)


def _depthwise(b, x, rank, kernel_size, depth_multiplier=1, data_format="channels_last", **kw):
    cin = x.shape[0] if data_format == "channels_first" else x.shape[-1]
    cfg = depthwise_cfg(rank, kernel_size, depth_multiplier=depth_multiplier,
                        data_format=data_format, **kw)
    w = [("kernel", tuple(_nd(kernel_size, rank)) + (cin, depth_multiplier))]
    if cfg["use_bias"]:
        w.append(("bias", (cin * depth_multiplier,)))
    return b.layer(f"DepthwiseConv{rank}D", cfg, x, w, k2=True)


def _bn(b, x, **kw):
    c = ((None,) + tuple(x.shape))[kw.get("axis", -1)]  # Keras axes count the batch axis
    cfg = bn_cfg(**kw)
    w = ([("gamma", (c,))] if cfg["scale"] else []) + ([("beta", (c,))] if cfg["center"] else [])
    w += [("moving_mean", (c,)), ("moving_variance", (c,))]
    return b.layer("BatchNormalization", cfg, x, w, k2=True)


def _plain_layer(cls, cfg=None, k2=True):
    return lambda b, x: b.layer(cls, dict(cfg or {}), x, k2=k2)


def _set(model, layer_name, **values):
    layer = find_layer(model, layer_name)
    for v in layer.vars:
        if v.name in values:
            v.value = np.asarray(values[v.name], v.value.dtype).reshape(v.value.shape)


def _finish(case, hook=None):
    """Test weights: the harness's perturbation, then the case's own values."""
    perturb_weights(case.model)
    if hook:
        hook(case.model)
    return case


# Every test model, grouped as frontends.md §6.1 (and extras for §2.2 classes it misses).

def dense_cases():
    yield _finish(single("Dense[bias]", lambda b, x: _dense(b, x, 4, "relu"), (8,),
                         covers=["Dense", "activation relu"], legacy=True))
    yield _finish(single("Dense[nobias]", lambda b, x: _dense(b, x, 4, "hard_tanh", False), (8,),
                         covers=["Dense no bias", "activation hard_tanh"]))
    yield _finish(single(
        "EinsumDense", lambda b, x: b.layer("EinsumDense", einsum_dense_cfg(
            "...c,cd->...d", (4,)), x, [("kernel", (8, 4))]), (4, 8), covers=["EinsumDense"]))
    yield _finish(single(
        "EinsumDense[bias]", lambda b, x: b.layer("EinsumDense", einsum_dense_cfg(
            "abc,cde->abde", (4, 2, 3), bias_axes="be"), x,
            [("kernel", (8, 2, 3)), ("bias", (4, 1, 3))]), (4, 8),
        covers=["EinsumDense with a broadcast bias (bias_axes 'be' -> (4,1,3))"]))
    yield _finish(single("Dense[relu6]", lambda b, x: _dense(b, x, 6, "relu6"), (8,),
                         covers=["activation relu6 (strict map)"], legacy=True))
    for act in ("tanh", "sigmoid"):
        yield _finish(single(f"Dense[{act}]",
                             lambda b, x, a=act: round16(b, _dense(b, x, 4, a)), (8,),
                             kif=(1, 1, 3),
                             covers=[f"Dense activation {act} (strict map, table)"]))
    yield _finish(single("Dense[rank3]", lambda b, x: _dense(b, x, 3), (2, 4, 8),
                         covers=["Dense on a rank-4 input"]))


def conv_cases():
    specs = [
        ("Conv1D[valid]", 1, 4, 3, {}, (16, 3)),
        ("Conv1D[same]", 1, 4, 3, {"padding": "same"}, (16, 3)),
        ("Conv2D[valid]", 2, 4, (4, 3), {}, (8, 8, 3)),
        ("Conv2D[same]", 2, 4, (3, 4), {"padding": "same"}, (8, 8, 3)),
        ("Conv2D[g=2]", 2, 4, 3, {"groups": 2}, (6, 6, 4)),
        ("Conv2D[g=3]", 2, 6, 3, {"padding": "same", "groups": 3}, (6, 6, 6)),
        ("Conv1D[CF]", 1, 4, 3, {"data_format": "channels_first"}, (3, 16)),
        ("Conv2D[CF,same]", 2, 4, 3, {"padding": "same", "data_format": "channels_first"},
         (3, 8, 8)),
        ("Conv2D[CF,g=3]", 2, 6, 3, {"groups": 3, "data_format": "channels_first"}, (6, 6, 6)),
    ]
    for name, rank, f, k, kw, shape in specs:
        yield _finish(single(name, lambda b, x, r=rank, f=f, k=k, kw=kw: _conv(b, x, r, f, k, **kw),
                             shape, covers=[name.split("[")[0] + " " + str(kw)], legacy=rank == 2))
    extra = [
        ("Conv3D", 3, 3, 2, {"padding": "same"}, (4, 4, 4, 2), ["Conv3D"]),
        ("Conv2D[s2,d2]", 2, 3, 3, {"strides": 2, "padding": "same"}, (7, 7, 2),
         ["Conv2D strides 2 'same'"]),
        ("Conv2D[dil2]", 2, 3, 3, {"dilation_rate": 2, "use_bias": False}, (8, 8, 2),
         ["Conv2D dilation 2, no bias"]),
        ("Conv2D[relu]", 2, 3, 2, {"activation": "relu", "strides": (1, 2)}, (5, 6, 2),
         ["Conv2D activation, unequal strides"]),
    ]
    for name, rank, f, k, kw, shape, cov in extra:
        yield _finish(single(name, lambda b, x, r=rank, f=f, k=k, kw=kw: _conv(b, x, r, f, k, **kw),
                             shape, covers=cov, legacy=rank == 2))
    yield _finish(single("Conv1D[causal]", lambda b, x: _conv(b, x, 1, 3, 3, padding="causal",
                                                               dilation_rate=2), (10, 2),
                         covers=["Conv1D padding causal (Keras pads left)"],
                         beyond_reference=True))


def batchnorm_cases():
    def set_bn(m):
        _set(m, "batch_normalization", gamma=[0.25] * 8, beta=[0.5] * 8, moving_mean=[0.25] * 8,
             moving_variance=[0.0625] * 8)
    yield _finish(single("BatchNorm", lambda b, x: _bn(b, x, epsilon=0.0), (8,), kif=(1, 2, 4),
                         covers=["BatchNormalization (§6.1 values: scale 1, offset 0.25)"],
                         legacy=True), set_bn)

    def set_bn4(m):
        _set(m, "batch_normalization", gamma=[0.5, 2.0, -1.0], beta=[0.25, -0.5, 1.0],
             moving_mean=[1.0, 0.0, -0.5], moving_variance=[0.25, 4.0, 1.0])
    yield _finish(single("BatchNorm[conv]", lambda b, x: _bn(b, _conv(b, x, 2, 3, 2), epsilon=0.0),
                         (5, 5, 2), covers=["BatchNormalization after Conv2D, axis -1 rank 4"],
                         legacy=True), set_bn4)

    def set_bn_cf(m):
        _set(m, "batch_normalization", moving_mean=[0.5, -0.25, 1.0],
             moving_variance=[1.0, 0.25, 4.0])
    yield _finish(single("BatchNorm[axis1,nocenter,noscale]",
                         lambda b, x: _bn(b, x, axis=1, epsilon=0.0, center=False, scale=False),
                         (3, 4, 4), covers=["BatchNormalization axis=1, center/scale False"],
                         legacy=True), set_bn_cf)


def relu_cases():
    yield _finish(single("ReLU", _plain_layer("ReLU", {"max_value": None, "negative_slope": 0.0,
                                                       "threshold": 0.0}), (8,),
                         covers=["ReLU layer"], legacy=True))
    yield _finish(single("LeakyReLU", _plain_layer("LeakyReLU", {"negative_slope": 0.25}), (8,),
                         covers=["LeakyReLU"], legacy=True))
    yield _finish(single("PReLU", lambda b, x: b.layer(
        "PReLU", prelu_cfg(), x, [("alpha", (8,))], k2=True), (8,), covers=["PReLU"],
        legacy=True))
    for name, cfg, shape, cov in [
        ("ReLU[max6,rank3]", {"max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0},
         (4, 4, 2), ["ReLU max_value=6 on rank 3 (reference quirk: fails)"]),
        ("ReLU[threshold]", {"max_value": None, "negative_slope": 0.0, "threshold": 1.0}, (8,),
         ["ReLU threshold (ThresholdedReLU-like)"]),
        ("ReLU[all,rank3]", {"max_value": 4.0, "negative_slope": 0.25, "threshold": 0.5},
         (3, 5), ["ReLU slope+threshold+max on rank 3"]),
    ]:
        yield _finish(single(name, _plain_layer("ReLU", cfg), shape, covers=cov, legacy=True,
                             beyond_reference=len(shape) > 1))
    def dead_unit(b, x):
        # unit 1 of the Dense is never positive (bias -2, |x| <= 1): relu makes it a zero of
        # no grid (step 2^127), which the threshold comparison must not round to
        y = _dense(b, x, 2, "relu")
        return b.layer("ReLU", {"max_value": None, "negative_slope": 0.125, "threshold": 0.5},
                       y, k2=True)

    def set_dead(m):
        _set(m, "dense", kernel=[[0.5, 0.25], [0.25, 0], [-1, 0.5]], bias=[0.25, -2])
    yield _finish(single("ReLU[threshold,dead unit]", dead_unit, (3,), kif=(1, 0, 3),
                         covers=["ReLU threshold and slope after a Dense unit relu makes "
                                 "always 0 (the comparison with the threshold overflowed)"]),
                  set_dead)
    yield _finish(single("LeakyReLU[rank3]", _plain_layer("LeakyReLU", {"negative_slope": 0.125}),
                         (4, 3), covers=["LeakyReLU rank 3"], legacy=True,
                         beyond_reference=True))
    yield _finish(single("PReLU[shared]", lambda b, x: b.layer(
        "PReLU", prelu_cfg([1, 2]), x, [("alpha", (1, 1, 3))], k2=True), (4, 4, 3),
        covers=["PReLU shared_axes [1,2] on rank 4"], legacy=True, beyond_reference=True))


def op_relu_cases():
    for ns, mv, th in [(0.0, None, 0.0), (0.25, None, 0.0), (0.0, 6.0, 0.0), (0.0, None, 6.0)]:
        yield _finish(single(f"OpReLU[{ns},{mv},{th}]", lambda b, x, ns=ns, mv=mv, th=th: b.op(
            ACT, "ReLU", {"negative_slope": ns, "max_value": mv, "threshold": th}, [x]), (8,),
            covers=["keras.activations.relu op"]))


ACTIVATIONS = ["linear", "relu", "tanh", "sigmoid", "silu", "gelu", "elu", "selu", "softplus",
               "softsign", "exponential", "hard_silu", "hard_sigmoid", "log_sigmoid", "hard_tanh",
               "relu6"]


def activation_cases():
    for a in ACTIVATIONS:
        yield _finish(single(f"Activation[{a}]", lambda b, x, a=a: round16(
            b, b.layer("Activation", {"activation": a}, x)), (8,), kif=(1, 2, 4),
            covers=[f"Activation {a} (lenient map)"]))
    # Keras 3 writes a built-in's __name__ (swish -> silu); older files and hand-written configs
    # hold the aliases, which Keras still reads.
    for a in ("swish", "hard_swish"):
        yield _finish(single(f"Activation[{a}]", lambda b, x, a=a: round16(
            b, b.layer("Activation", {"activation": a}, x)), (8,), kif=(1, 2, 4),
            covers=[f"Activation alias {a}"]))


def unary_cases():
    fns = [("Sin", NP), ("Cos", NP), ("Tanh", NP), ("Sinh", NP), ("Cosh", NP), ("Arccos", NP),
           ("Arcsin", NP), ("Arctanh", NP), ("Arcsinh", NP), ("Log", NP), ("Exp", NP),
           ("Expm1", NP), ("Log1p", NP), ("Sigmoid", NN), ("Silu", NN), ("HardSigmoid", NN),
           ("HardSilu", NN), ("Gelu", NN), ("Elu", NN), ("Selu", NN), ("Sign", NP),
           ("Tan", NP), ("Sqrt", NP)]
    for cls, mod in fns:
        cfg, with_name = {}, True
        if cls == "Gelu":
            cfg, with_name = {"approximate": True}, False
        if cls == "Elu":
            cfg, with_name = {"alpha": 1.0}, False
        hook = None
        if cls in ("Log", "Sqrt"):
            hook = lambda ds: [np.maximum(2.0 ** -5, d) for d in ds]  # noqa: E731
        yield _finish(single(f"Unary[{cls}]", lambda b, x, c=cls, m=mod, cfg=cfg, wn=with_name:
                             round16(b, b.op(m, c, cfg, [x], with_name=wn)), (8,), kif=(1, -1, 5),
                             covers=[f"{cls} op"], data_hook=hook))
    yield _finish(single("Unary[Gelu,exact]", lambda b, x: round16(b, b.op(
        NN, "Gelu", {"approximate": False}, [x], with_name=False)), (8,), kif=(1, 1, 4),
        covers=["Gelu op approximate=False"]))
    yield _finish(single("Unary[Elu,alpha]", lambda b, x: round16(b, b.op(
        NN, "Elu", {"alpha": 0.5}, [x], with_name=False)), (8,), kif=(1, 1, 4),
        covers=["Elu op alpha=0.5 (reference quirk: alpha ignored)"], beyond_reference=True))
    yield _finish(single("Unary[Gelu,approx,wide]", lambda b, x: round16(b, b.op(
        NN, "Gelu", {"approximate": True}, [x], with_name=False)), (8,), kif=(1, 2, 4),
        covers=["Gelu op approximate=True where tanh-approx and erf differ after rounding "
                "(reference quirk)"], beyond_reference=True))
    yield _finish(single("Signbit", lambda b, x: b.op(NP, "Signbit", {}, [x]), (8,),
                         covers=["Signbit op"]))


def pooling_cases():
    specs = [
        ("Max1D", "MaxPooling1D", 1, 3, {"padding": "same"}, (8, 4)),
        ("Avg1D", "AveragePooling1D", 1, 2, {}, (8, 4)),
        ("Max2D", "MaxPooling2D", 2, (2, 3), {"padding": "same"}, (8, 8, 4)),
        ("Avg2D", "AveragePooling2D", 2, 2, {}, (8, 8, 4)),
        ("Max3D", "MaxPooling3D", 3, 2, {}, (4, 4, 4, 2)),
        ("Avg3D", "AveragePooling3D", 3, 2, {"strides": 1}, (3, 3, 3, 2)),
        ("Avg2D[same,4]", "AveragePooling2D", 2, 2, {"padding": "same", "strides": 1}, (5, 5, 2)),
        ("Avg1D[same,3]", "AveragePooling1D", 1, 3, {"padding": "same", "strides": 1}, (6, 2)),
        ("Max2D[CF]", "MaxPooling2D", 2, 2, {"data_format": "channels_first"}, (2, 6, 6)),
        ("Max1D[s1]", "MaxPooling1D", 1, 3, {"strides": 1}, (8, 3)),
    ]
    for name, cls, rank, ps, kw, shape in specs:
        yield _finish(single(f"Pool[{name}]", lambda b, x, c=cls, r=rank, ps=ps, kw=kw: b.layer(
            c, pool_cfg(r, ps, **kw), x, k2=True), shape, covers=[f"{cls} {kw}"],
            legacy=rank == 2))
    for cls, shape in [("GlobalMaxPooling1D", (4, 8)), ("GlobalAveragePooling1D", (4, 8)),
                       ("GlobalMaxPooling2D", (4, 4, 8)), ("GlobalAveragePooling2D", (4, 4, 8)),
                       ("GlobalMaxPooling3D", (2, 2, 2, 3)),
                       ("GlobalAveragePooling3D", (2, 2, 2, 3))]:
        yield _finish(single(f"Pool[{cls}]", lambda b, x, c=cls: b.layer(
            c, {"data_format": "channels_last", "keepdims": False}, x, k2=True), shape,
            covers=[cls], legacy="2D" in cls))
    yield _finish(single("Pool[GlobalAvg2D,keepdims,CF]", lambda b, x: b.layer(
        "GlobalAveragePooling2D", {"data_format": "channels_first", "keepdims": True}, x),
        (3, 4, 4), covers=["GlobalAveragePooling2D keepdims channels_first"]))


def reshape_cases():
    yield _finish(single("Reshape[Flatten]", _plain_layer("Flatten", {"data_format":
                                                                      "channels_last"}),
                         (4, 8), covers=["Flatten"], legacy=True))
    yield _finish(single("Reshape[Reshape]", _plain_layer("Reshape", {"target_shape": [8, 4]}),
                         (4, 8), covers=["Reshape layer"], legacy=True))
    yield _finish(single("Reshape[ops.reshape]", lambda b, x: b.op(NP, "Reshape", {
        "newshape": [-1, 4]}, [x]), (4, 8), covers=["Reshape op"]))
    yield _finish(single("Reshape[Ravel]", lambda b, x: b.op(NP, "Ravel", {}, [x]), (2, 3),
                         covers=["Ravel op (batch 1: per sample)"]))
    yield _finish(single("Reshape[Flatten,CF]", _plain_layer("Flatten", {
        "data_format": "channels_first"}), (3, 2, 4),
        covers=["Flatten channels_first (reference quirk: ignored)"], beyond_reference=True))


def binary_cases():
    two = [(8,), (8,)]

    def arith(cls):
        return lambda b, xs: b.op(NP, cls, {}, xs)
    for name, cls in [("add", "Add"), ("sub", "Subtract"), ("mul", "Multiply"),
                      ("max", "Maximum"), ("min", "Minimum")]:
        yield _finish(multi(f"BinaryOp[{name}]", arith(cls), two, covers=[f"{cls} op"]))

    def div_const(b, xs):
        m = b.op(NP, "Maximum", {}, [xs[0], 0.125])
        return b.op(NP, "Round", {"decimals": 0}, [b.op(NP, "TrueDivide", {}, [10, m])])
    yield _finish(multi("BinaryOp[div_const]", div_const, two,
                        covers=["TrueDivide constant / tensor (table)", "Maximum with a scalar"]))
    yield _finish(multi("BinaryOp[div]", lambda b, xs: b.op(NP, "Round", {"decimals": 0}, [
        b.op(NP, "TrueDivide", {}, [xs[0], 4])]), two, covers=["TrueDivide tensor / 4"]))
    yield _finish(multi("BinaryOp[concat]", lambda b, xs: b.op(NP, "Concatenate", {"axis": -1},
                                                                [xs]), two,
                        covers=["Concatenate op"]))
    yield _finish(single("BinaryOp[const]", lambda b, x: b.op(NP, "Divide", {}, [b.op(
        NP, "Subtract", {}, [b.op(NP, "Multiply", {}, [x, tagged_numpy(
            [0.5, -1.5, 2.0, 0.25, 1.0, -0.75, 3.0, 0.125])]), 1.5]), 2.0]), (8,),
        covers=["Multiply by a __numpy__ constant", "Subtract a scalar", "Divide op by 2"]))
    yield _finish(single("BinaryOp[rsub]", lambda b, x: b.op(NP, "Subtract", {}, [
        2.25, b.op(NP, "Minimum", {}, [x, tagged_numpy([[1.0], [-0.5], [0.25]])])]), (3, 4),
        covers=["scalar - tensor", "Minimum with a broadcast __numpy__ constant"]))
    yield _finish(single("BinaryOp[div3]", lambda b, x: b.op(NP, "TrueDivide", {}, [x, 3]), (8,),
                         covers=["tensor / 3: product with the float64 reciprocal, rounded "
                                 "output (§8.6)"]))


def reduction_cases():
    specs = [("sum", "Sum", {"axis": -1, "keepdims": False}),
             ("max", "Max", {"axis": -1, "keepdims": False, "initial": None}),
             ("min", "Min", {"axis": -1, "keepdims": False, "initial": None}),
             ("mean", "Mean", {"axis": 1, "keepdims": False}),
             ("prod", "Prod", {"axis": 1, "keepdims": False, "dtype": None}),
             ("count_nonzero", "CountNonzero", {"axis": 1})]
    for name, cls, cfg in specs:
        yield _finish(single(f"Reduction[{name}]", lambda b, x, c=cls, cfg=cfg: b.op(
            NP, c, cfg, [x]), (4, 8), kif=(1, 2, 2), covers=[f"{cls} op"]))
    for name, cls in [("all", "All"), ("any", "Any")]:
        yield _finish(single(f"Reduction[{name}]", lambda b, x, c=cls: b.op(
            NP, c, {"axis": 1, "keepdims": False}, [b.op(NP, "Less", {}, [x, 0])]), (4, 8),
            kif=(1, 2, 2), covers=[f"{cls} op", "Less with a scalar"]))
    yield _finish(single("Reduction[sum,axes,keepdims]", lambda b, x: b.op(
        NP, "Sum", {"axis": [1, 3], "keepdims": True}, [x]), (2, 3, 4), kif=(1, 2, 2),
        covers=["Sum over two axes with keepdims"]))
    yield _finish(single("Reduction[center]", lambda b, x: b.op(NP, "Subtract", {}, [
        x, b.op(NP, "Mean", {"axis": -1, "keepdims": True}, [x])]), (4, 8), kif=(1, 2, 2),
        covers=["Mean keepdims=True feeding a broadcast (reference quirk: keepdims ignored)"],
        beyond_reference=True))
    yield _finish(single("Reduction[max,initial]", lambda b, x: b.op(
        NP, "Max", {"axis": -1, "keepdims": False, "initial": 1.5}, [x]), (4, 8), kif=(1, 2, 2),
        covers=["Max initial (reference quirk: ignored)"], beyond_reference=True))


def average_cases():
    yield _finish(single("Average[unweighted]", lambda b, x: b.op(
        NP, "Average", {"axis": 1}, [x], kwargs={"weights": None}), (4, 8),
        covers=["Average op"]))
    yield _finish(single("Average[weighted]", lambda b, x: b.op(
        NP, "Average", {"axis": 1}, [x], kwargs={"weights": tagged_numpy(
            np.arange(4) + 0.5, "float64")}), (4, 8), covers=["Average op, __numpy__ weights"]))


def unary_op_cases():
    specs = [("abs", "Absolute", {}), ("clip", "Clip", {"x_min": -4.0, "x_max": 4.0}),
             ("sign", "Sign", {}), ("floor", "Floor", {}), ("ceil", "Ceil", {}),
             ("round", "Round", {"decimals": 0}), ("Abs", "Abs", {})]
    for name, cls, cfg in specs:
        yield _finish(single(f"UnaryOp[{name}]", lambda b, x, c=cls, cfg=cfg: b.op(
            NP, c, cfg, [x]), (8,), covers=[f"{cls} op"]))
    yield _finish(single("UnaryOp[negative]", lambda b, x: b.op(NP, "Negative", {}, [x]), (8,),
                         covers=["Negative op (-x; not in the reference's tables)"],
                         beyond_reference=True))


def contraction_cases():
    shapes = [(4, 3), (3, 2)]
    yield _finish(multi("Contraction[matmul]", lambda b, xs: b.op(NP, "Matmul", {}, xs), shapes,
                        kif=(1, 2, 4), covers=["Matmul op, two tensors"]))
    yield _finish(multi("Contraction[einsum]", lambda b, xs: b.op(
        NP, "Einsum", {"subscripts": "...ij,...jk->...ik"}, xs), shapes, kif=(1, 2, 4),
        covers=["Einsum op, two tensors"]))
    w = np.array([[0.5, -1.0], [0.25, 2.0], [-0.75, 1.5]], np.float32)
    yield _finish(single("Contraction[matmul,const]", lambda b, x: b.op(
        NP, "Matmul", {}, [x, tagged_numpy(w)]), (4, 3), kif=(1, 2, 4),
        covers=["Matmul op with a __numpy__ constant (CMVM)"]))
    yield _finish(single("Contraction[dot,const]", lambda b, x: b.op(
        NP, "Dot", {}, [x, tagged_numpy(w)]), (4, 3), kif=(1, 2, 4),
        covers=["Dot op with a constant"]))
    yield _finish(single("Contraction[einsum,const]", lambda b, x: b.op(
        NP, "Einsum", {"subscripts": "bij,jk->bki"}, [x, tagged_numpy(w)]), (4, 3), kif=(1, 2, 4),
        covers=["Einsum op with a constant and a transposed output"]))


def dot_cases():
    for name, axes, shapes in [("axes=-1", -1, [(4, 3), (3,)]), ("axes=1", 1, [(4, 3), (4, 5)]),
                               ("axes=(1,2)", [1, 2], [(4, 3), (5, 4)])]:
        yield _finish(multi(f"Dot[{name}]", lambda b, xs, a=axes: b.layer(
            "Dot", {"axes": a, "normalize": False}, xs, k2=True), shapes, kif=(1, 2, 4),
            covers=[f"Dot layer axes {axes}"], legacy=True))


def noop_cases():
    yield _finish(single("NoOp[Dropout]", lambda b, x: b.layer(
        "Dropout", {"rate": 0.5, "seed": None, "noise_shape": None}, x, k2=True), (8,),
        covers=["Dropout (kwargs training=False)"], legacy=True))
    specs = [("SpatialDropout1D", {"rate": 0.5, "seed": None, "name": None, "dtype": "float32"},
              (4, 3)),
             ("SpatialDropout2D", {"rate": 0.5, "seed": None, "name": None, "dtype": "float32",
                                   "data_format": "channels_last"}, (4, 4, 3)),
             ("SpatialDropout3D", {"rate": 0.5, "seed": None, "name": None, "dtype": "float32",
                                   "data_format": "channels_last"}, (2, 2, 2, 3)),
             ("GaussianDropout", {"rate": 0.25, "seed": None}, (8,)),
             ("GaussianNoise", {"stddev": 0.5, "seed": None}, (8,)),
             ("AlphaDropout", {"rate": 0.25, "seed": None, "noise_shape": None}, (8,)),
             ("RandomFlip", {"seed": None, "mode": "horizontal_and_vertical",
                             "data_format": "channels_last"}, (4, 4, 3)),
             ("RandomRotation", {"factor": [-0.1, 0.1], "data_format": "channels_last",
                                 "fill_mode": "reflect", "fill_value": 0.0,
                                 "interpolation": "bilinear", "seed": None}, (4, 4, 3)),
             ("RandomZoom", {"height_factor": 0.2, "width_factor": None,
                             "fill_mode": "reflect", "interpolation": "bilinear", "seed": None,
                             "fill_value": 0.0, "data_format": "channels_last"}, (4, 4, 3)),
             ("RandomTranslation", {"height_factor": 0.1, "width_factor": 0.1,
                                    "fill_mode": "reflect", "interpolation": "bilinear",
                                    "seed": None, "fill_value": 0.0,
                                    "data_format": "channels_last"}, (4, 4, 3)),
             ("RandomContrast", {"factor": [-0.2, 0.2], "value_range": [0, 255], "seed": None},
              (4, 4, 3)),
             ("RandomBrightness", {"factor": [-0.2, 0.2], "value_range": [0, 255],
                                   "seed": None}, (4, 4, 3)),
             ("Identity", {}, (8,))]
    for cls, cfg, shape in specs:
        yield _finish(single(f"NoOp[{cls}]", lambda b, x, c=cls, cfg=cfg: _spatial_noop(
            b, x, c, cfg), shape, covers=[f"{cls} (identity at inference)"],
            beyond_reference=cls.startswith("Random") or cls == "Identity"))


def _spatial_noop(b, x, cls, cfg):
    if cls.startswith("SpatialDropout"):
        # SpatialDropout's get_config writes its own keys (no trainable, dtype as a string).
        name = b.uname(cls)
        lay = kg.Layer(cls, name, built_at_init=True)
        full = dict(cfg, name=name)
        lay.config = lambda full=full: dict(full)
        return b.node(lay, [x], default_kwargs(cls))
    return b.layer(cls, cfg, x)


def pad_cases():
    for mode in ("constant", "edge", "reflect", "symmetric", "wrap"):
        yield _finish(single(f"Pad[{mode}]", lambda b, x, m=mode: b.op(
            NP, "Pad", {"pad_width": [[0, 0], [2, 3]], "mode": m}, [x],
            kwargs={"constant_values": 0 if m == "constant" else None}), (5,),
            covers=[f"Pad op mode {mode}"]))
    yield _finish(single("Pad[constant,value]", lambda b, x: b.op(
        NP, "Pad", {"pad_width": [[0, 0], [1, 0], [0, 2]], "mode": "constant"}, [x],
        kwargs={"constant_values": 1.5}), (3, 4), covers=["Pad constant_values 1.5, rank 3"]))


def getitem_cases():
    keys = [("slice", [sl(), sl(None, 4)], (8, 8)),
            ("slice_step", [sl(), sl(2, None, 2), sl(None, None, -1)], (8, 8)),
            ("index_array", [sl(), sl(None, None, 2), sl(8, 2, -2)], (8, 8)),
            ("ellipsis", [ELLIPSIS, sl(1, 3)], (4, 8)),
            ("int", [sl(), 1], (4, 8)),
            ("newaxis", [sl(), None, sl()], (4, 8))]
    for name, key, shape in keys:
        yield _finish(single(f"GetItem[{name}]", lambda b, x, k=key: b.op(
            NP, "GetItem", {}, [x, k]), shape, covers=[f"GetItem {name}"],
            beyond_reference=name in ("ellipsis",)))


def repeat_cases():
    yield _finish(single("Repeat[RepeatVector]", _plain_layer("RepeatVector", {"n": 4}), (8,),
                         kif=(1, 2, 4), covers=["RepeatVector"], legacy=True))
    yield _finish(single("Repeat[repeat]", lambda b, x: b.op(NP, "Repeat", {"repeats": 4,
                                                                           "axis": 1}, [x]),
                         (8,), kif=(1, 2, 4), covers=["Repeat op"]))


def nested_cases():
    # m0: Input(8) -> Dense(8, relu); m1: in -> m0 -> m0 (shared twice); outer: x -> m1(x).
    b0 = Builder("functional")
    x0 = b0.input((8,))
    m0 = b0.output(_dense(b0, x0, 8, "relu"))
    b1 = Builder("functional_1")
    x1 = b1.input((8,))
    m1 = b1.output(b1.call(m0, b1.call(m0, x1)))
    b = Builder("functional_2")
    x = b.input((8,))
    outer = b.output(b.call(m1, x))
    yield _finish(Case("Nested", outer, [(8,)], covers=[
        "nested Functional called twice (node indices 1, 2)", "three model levels"],
        legacy=True))

    # A shared layer called twice in one model and a Sequential inside a Functional.
    b = Builder("shared")
    x = b.input((6,))
    d = _dense(b, x, 6, "relu")
    shared = d.producer
    y = b.call(shared, d)
    seq = kg.Sequential("sequential", (6,), [
        make_layer("Dense", "dense_1", dense_cfg(4), [("kernel", (6, 4)), ("bias", (4,))], True,
                   2, out_shape=(4,)),
        make_layer("ReLU", "re_lu", {"max_value": None, "negative_slope": 0.0, "threshold": 0.0},
                   k2=True, input_rank=2)])
    z = b.call(seq, y, out_shape=(4,))
    yield _finish(Case("Nested[shared,sequential]", b.output(z), [(6,)], covers=[
        "a layer called twice (node index 1)", "a Sequential inside a Functional"],
        legacy=True))


def unknown_shape_cases():
    for shape in [(8, 2), (12, 3)]:
        b = Builder()
        x = b.input((None, None), probe_shape=shape)
        y = b.layer("MaxPooling1D", pool_cfg(1, 2), x, k2=True, out_shape=(None, None))
        yield _finish(Case(f"UnknownShape[{shape[0]}x{shape[1]}]", b.output(y), [shape],
                           kif=(1, 4, 4), data_kif=(1, 2, 4), input_shapes=[(1,) + shape],
                           covers=["unknown input shape: --input-shape given"]))


def sortlike_cases():
    for cls, cfg in [("Argmax", {"axis": -1, "keepdims": False}),
                     ("Argmin", {"axis": -1, "keepdims": False}),
                     ("Amax", {"axis": -1, "keepdims": False}),
                     ("Amin", {"axis": -1, "keepdims": False}), ("Sort", {"axis": -1})]:
        yield _finish(single(f"SortLike[{cls}]", lambda b, x, c=cls, cfg=cfg: b.op(
            NP, c, cfg, [x]), (8,), covers=[f"{cls} op"]))
    yield _finish(single("SortLike[argmax,axis1,keepdims]", lambda b, x: b.op(
        NP, "Argmax", {"axis": 1, "keepdims": True}, [x]), (4, 3), covers=["Argmax keepdims"]))


def axes_cases():
    yield _finish(single("MoveAxis", lambda b, x: b.op(NP, "Moveaxis", {
        "source": 1, "destination": 2}, [x]), (8, 4, 2), covers=["Moveaxis op"]))
    yield _finish(single("Transpose", lambda b, x: b.op(NP, "Transpose", {"axes": [0, 2, 1]},
                                                        [x]), (8, 4), covers=["Transpose op"]))
    yield _finish(single("ExpandDims", lambda b, x: b.op(NP, "ExpandDims", {"axis": 1}, [x]),
                         (8,), covers=["ExpandDims op"]))
    yield _finish(single("Permute", _plain_layer("Permute", {"dims": [2, 1]}), (3, 4),
                         covers=["Permute"], legacy=True))
    yield _finish(single("Permute[3d]", _plain_layer("Permute", {"dims": [3, 1, 2]}), (2, 3, 4),
                         covers=["Permute rank 4"], legacy=True))


def merge_cases():
    for cls in ("Add", "Concatenate", "Multiply", "Subtract", "Maximum", "Minimum", "Average"):
        shapes = [(3, 4), (3, 1), (1, 4)]
        if cls == "Concatenate":
            shapes = [(3, 4), (3, 4)]
        elif cls == "Subtract":
            shapes = [(3, 4), (3, 1)]
        elif cls == "Average":
            shapes = [(3, 4), (3, 1), (1, 4), (1, 1)]
        cfg = {"axis": -1} if cls == "Concatenate" else {}
        yield _finish(multi(f"Merge[{cls}]", lambda b, xs, c=cls, cfg=cfg: b.layer(
            c, cfg, xs, k2=True), shapes, kif=(1, 2, 3), covers=[f"{cls} layer (broadcasting)"],
            legacy=True))
    yield _finish(multi("Merge[Average3]", lambda b, xs: b.layer("Average", {}, xs),
                        [(4,), (4,), (4,)], kif=(1, 2, 3),
                        covers=["Average of 3 (float64 reciprocal of 3, rounded output)"]))
    yield _finish(multi("Merge[Concatenate,axis1]", lambda b, xs: b.layer(
        "Concatenate", {"axis": 1}, xs, k2=True), [(2, 4), (3, 4)], kif=(1, 2, 3),
        covers=["Concatenate axis 1"], legacy=True))


def extract_patches_cases():
    specs = [((2, 2), (1, 1), "valid", None, None), ((2, 2), (1, 1), "same", None, None),
             ((2, 1), (1, 2), "valid", None, None), ((1, 3), (2, 2), "same", None, None)]
    for size, strides, padding, _, _ in specs:
        yield _finish(single(f"ExtractPatches[{size},{strides},{padding}]",
                             lambda b, x, s=size, st=strides, p=padding: b.op(
                                 IMG, "ExtractPatches", {"size": list(s), "strides": list(st),
                                                         "dilation_rate": 1, "padding": p,
                                                         "data_format": None}, [x],
                                 with_name=False), (3, 4, 5), covers=["ExtractPatches"]))
    yield _finish(single("ExtractPatches[strides=None]", lambda b, x: b.op(
        IMG, "ExtractPatches", {"size": [2, 2], "strides": None, "dilation_rate": 1,
                                "padding": "valid", "data_format": None}, [x], with_name=False),
        (4, 6, 2), covers=["ExtractPatches strides null -> size (reference quirk: 1)"],
        beyond_reference=True))
    yield _finish(single("ExtractPatches[dil2,CF]", lambda b, x: b.op(
        IMG, "ExtractPatches", {"size": [2, 2], "strides": [1, 1], "dilation_rate": 2,
                                "padding": "valid", "data_format": "channels_first"}, [x],
        with_name=False), (2, 5, 5), covers=["ExtractPatches dilation 2 channels_first"]))


def geometry_cases():
    for name, cls, cfg, shape in [
            ("ZeroPadding[1D]", "ZeroPadding1D", {"padding": [2, 2], "data_format":
                                                  "channels_last"}, (8, 4)),
            ("ZeroPadding[2D]", "ZeroPadding2D", {"padding": [[1, 2], [3, 0]], "data_format":
                                                  "channels_last"}, (6, 6, 4)),
            ("ZeroPadding[3D]", "ZeroPadding3D", {"padding": [[1, 1], [1, 1], [1, 1]],
                                                  "data_format": "channels_last"}, (4, 4, 4, 3)),
            ("ZeroPadding[2D,CF]", "ZeroPadding2D", {"padding": [[0, 1], [2, 1]],
                                                     "data_format": "channels_first"}, (2, 3, 3)),
            ("Cropping[1D]", "Cropping1D", {"cropping": [1, 2]}, (8, 4)),
            ("Cropping[2D]", "Cropping2D", {"cropping": [[1, 2], [1, 0]], "data_format":
                                            "channels_last"}, (6, 6, 4)),
            ("Cropping[3D]", "Cropping3D", {"cropping": [[0, 1], [1, 1], [1, 0]],
                                            "data_format": "channels_last"}, (4, 4, 4, 3)),
            ("UpSampling[1D]", "UpSampling1D", {"size": 2}, (4, 3)),
            ("UpSampling[2D]", "UpSampling2D", {"size": [2, 3], "data_format": "channels_last",
                                                "interpolation": "nearest"}, (4, 4, 3)),
            ("UpSampling[3D]", "UpSampling3D", {"size": [2, 2, 2], "data_format":
                                                "channels_last"}, (2, 2, 2, 3)),
            ("UpSampling[2D,CF]", "UpSampling2D", {"size": [2, 1], "data_format":
                                                   "channels_first", "interpolation":
                                                   "nearest"}, (2, 3, 3))]:
        kif = (1, 2, 2) if cls.startswith("UpSampling") else (1, 4, 4)
        yield _finish(single(name, _plain_layer(cls, cfg), shape, kif=kif, covers=[cls],
                             legacy="2D" in cls))


def conv_transpose_cases():
    specs = [("1DT[same]", 1, 4, 3, {"strides": 2, "padding": "same"}, (8, 3)),
             ("1DT[valid]", 1, 4, 3, {"strides": 2, "padding": "valid"}, (8, 3)),
             ("2DT[same]", 2, 4, 3, {"strides": (2, 2), "padding": "same"}, (4, 4, 3)),
             ("2DT[valid]", 2, 4, 3, {"strides": (1, 1), "padding": "valid"}, (4, 4, 3)),
             ("3DT[same]", 3, 4, 3, {"strides": 2, "padding": "same"}, (2, 2, 2, 3))]
    for name, rank, f, k, kw, shape in specs:
        yield _finish(single(f"ConvTranspose[{name}]", lambda b, x, r=rank, f=f, k=k, kw=kw:
                             _conv_t(b, x, r, f, k, **kw), shape, covers=[f"Conv{rank}DTranspose "
                                                                          f"{kw}"]))
    extra = [("1DT[valid,k<s]", 1, 2, 2, {"strides": 3, "padding": "valid"}, (5, 2), True),
             ("1DT[same,k<s]", 1, 2, 2, {"strides": 3, "padding": "same"}, (5, 2), True),
             ("2DT[dil2,CF]", 2, 2, 2, {"dilation_rate": 2, "data_format": "channels_first"},
              (2, 3, 3), False),
             ("2DT[same,k4s2]", 2, 2, 4, {"strides": 2, "padding": "same", "use_bias": False},
              (3, 3, 2), False)]
    for name, rank, f, k, kw, shape, beyond in extra:
        yield _finish(single(f"ConvTranspose[{name}]", lambda b, x, r=rank, f=f, k=k, kw=kw:
                             _conv_t(b, x, r, f, k, **kw), shape,
                             covers=[f"Conv{rank}DTranspose {kw}"], beyond_reference=beyond))
    for name, padding, op in [("valid,op1", "valid", 1), ("same,op1", "same", 1)]:
        yield _finish(single(f"ConvTranspose[1DT,{name}]", lambda b, x, p=padding, op=op: _conv_t(
            b, x, 1, 2, 3, strides=2, padding=p, output_padding=op, with_output_padding=True),
            (4, 2), covers=[f"Conv1DTranspose output_padding {op} {padding} (Keras >= 3.15 "
                            "config)"], keras_version="3.15.1", beyond_reference=True))


def depthwise_cases():
    specs = [("1D", 1, 3, {"padding": "same"}, (8, 3)),
             ("2D[dm=2]", 2, 3, {"padding": "same", "depth_multiplier": 2}, (6, 6, 3)),
             ("2D[valid]", 2, 3, {}, (6, 6, 3)),
             ("2D[CF]", 2, 3, {"padding": "same", "data_format": "channels_first"}, (3, 6, 6)),
             ("1D[dm=2,valid]", 1, 2, {"depth_multiplier": 2, "strides": 2}, (9, 2)),
             ("2D[s2]", 2, (3, 2), {"strides": 2, "padding": "same"}, (7, 6, 2))]
    for name, rank, k, kw, shape in specs:
        yield _finish(single(f"DepthwiseConv[{name}]", lambda b, x, r=rank, k=k, kw=kw:
                             _depthwise(b, x, r, k, **kw), shape,
                             covers=[f"DepthwiseConv{rank}D {kw}"], legacy=rank == 2))


def preproc_cases():
    yield _finish(single("Rescaling", _plain_layer("Rescaling", {"scale": 0.25, "offset": 1.0},
                                                   k2=False), (8,), covers=["Rescaling"]))
    yield _finish(single("Rescaling[list]", _plain_layer(
        "Rescaling", {"scale": [0.5, 0.25, 2.0, 1.0], "offset": -1.0}, k2=False), (3, 4),
        covers=["Rescaling with a per-channel list"]))
    for name, invert, var in [("plain", False, [1.0, 1.0, 1.0, 1.0]),
                              ("scaled", False, [4.0, 4.0, 0.25, 0.25]),
                              ("invert", True, [1.0, 4.0, 0.25, 1.0]),
                              ("invert,1.5", True, [2.25, 1.0, 0.0625, 9.0])]:
        yield _finish(single(f"Normalization[{name}]", lambda b, x, i=invert, v=var: b.layer(
            "Normalization", {"axis": [-1], "invert": i, "mean": [0.0, 1.0, 2.0, 3.0],
                              "variance": v}, x), (4,), kif=(1, 2, 4),
            covers=[f"Normalization from config ({name})"]))

    def adapted(m):
        _set(m, "normalization", mean=[0.5, -1.0, 0.25], variance=[4.0, 0.25, 1.0])
    yield _finish(single("Normalization[adapted]", lambda b, x: b.layer(
        "Normalization", {"axis": [-1], "invert": False, "mean": None, "variance": None}, x,
        [("mean", (3,)), ("variance", (3,)), ("count", (), "int32")]), (2, 3), kif=(1, 2, 4),
        covers=["Normalization adapted: weights mean, variance, count"]), adapted)
    for mode in ("one_hot", "multi_hot", "count"):
        yield _finish(single(f"CategoryEncoding[{mode}]", lambda b, x, m=mode: b.layer(
            "CategoryEncoding", {"num_tokens": 6, "output_mode": m}, x), (4,), kif=(0, 3, 0),
            covers=[f"CategoryEncoding {mode}"],
            data_hook=lambda ds: [np.clip(d, 0, 5) for d in ds]))

    def emb_weights(m):
        rng = np.random.default_rng(0)
        w = np.round(rng.standard_normal((6, 4)).astype(np.float32) * 4) / 4
        _set(m, "embedding", embeddings=w)
    emb_cfg = {"input_dim": 6, "output_dim": 4, "embeddings_initializer": init(
        "RandomUniform", minval=-0.05, maxval=0.05, seed=None), "embeddings_regularizer": None,
        "activity_regularizer": None, "embeddings_constraint": None, "mask_zero": False}
    for shape in [(3,), (2, 3)]:
        yield _finish(single(f"Embedding[{len(shape)}d]", lambda b, x: b.layer(
            "Embedding", emb_cfg, x, [("embeddings", (6, 4))]), shape, kif=(0, 3, 0),
            covers=["Embedding"], data_hook=lambda ds: [
                np.random.default_rng(1).integers(0, 6, size=d.shape).astype(np.float64)
                for d in ds]), emb_weights)


def cmp_cases():
    for cls in ("Equal", "Greater", "GreaterEqual", "Less", "LessEqual"):
        yield _finish(multi(f"Cmp[{cls}]", lambda b, xs, c=cls: b.op(NP, c, {}, xs),
                            [(8,), (8,)], kif=(1, 2, 4), covers=[f"{cls} op"]))


def model_form_cases():
    """Sequential models, several inputs and outputs, Keras 2 `Model` class name."""
    seq = kg.Sequential("sequential", (8,), [
        make_layer("Dense", "dense", dense_cfg(8, "relu"), [("kernel", (8, 8)), ("bias", (8,))],
                   True, 2, out_shape=(8,)),
        make_layer("Dropout", "dropout", {"rate": 0.25, "seed": None, "noise_shape": None},
                   k2=True, input_rank=2),
        make_layer("Dense", "dense_1", dense_cfg(4), [("kernel", (8, 4)), ("bias", (4,))],
                   True, 2, out_shape=(4,))])
    yield _finish(Case("Sequential[mlp]", seq, [(8,)], covers=["Sequential"], legacy=True,
                       k2_model_class="Sequential"))
    seq2 = kg.Sequential("sequential", (6, 6, 2), [
        make_layer("Conv2D", "conv2d", conv_cfg(2, 3, 3, activation="relu"),
                   [("kernel", (3, 3, 2, 3)), ("bias", (3,))], True, 4, out_shape=(4, 4, 3)),
        make_layer("MaxPooling2D", "max_pooling2d", pool_cfg(2, 2), k2=True, input_rank=4,
                   out_shape=(2, 2, 3)),
        make_layer("Flatten", "flatten", {"data_format": "channels_last"}, k2=True,
                   input_rank=4, out_shape=(12,)),
        make_layer("Dense", "dense", dense_cfg(3), [("kernel", (12, 3)), ("bias", (3,))], True,
                   2, out_shape=(3,))])
    yield _finish(Case("Sequential[cnn]", seq2, [(6, 6, 2)], covers=["Sequential CNN"],
                       legacy=True))

    b = Builder(flat_io=False)
    x0, x1 = b.input((8,)), b.input((4,))
    h = _dense(b, x0, 4, "relu")
    s = b.layer("Add", {}, [h, x1], k2=True)
    o1 = _dense(b, s, 2)
    o2 = b.layer("Concatenate", {"axis": -1}, [h, s], k2=True)
    yield _finish(Case("MultiIO", b.output(o1, o2, h), [(8,), (4,)], covers=[
        "two inputs, three outputs (one of them also used inside)"], legacy=True,
        k2_model_class="Model"))


def cases():
    """Every working model (conversion must succeed and equal the oracle)."""
    groups = [dense_cases, conv_cases, batchnorm_cases, relu_cases, op_relu_cases,
              activation_cases, unary_cases, pooling_cases, reshape_cases, binary_cases,
              reduction_cases, average_cases, unary_op_cases, contraction_cases, dot_cases,
              noop_cases, pad_cases, getitem_cases, repeat_cases, nested_cases,
              unknown_shape_cases, sortlike_cases, axes_cases, merge_cases,
              extract_patches_cases, geometry_cases, conv_transpose_cases, depthwise_cases,
              preproc_cases, cmp_cases, model_form_cases, float_cases]
    out = []
    for g in groups:
        out.extend(g())
    names = [c.name for c in out]
    assert len(names) == len(set(names)), "duplicate case names"
    return out


# ---- plain float models and the precision options (issue 12) --------------------------------

WEIGHT_KIF = (1, 3, 8)
OUTPUT_KIF = (1, 6, 8)


def float_mlp():
    b = Builder()
    x = b.input((16,))
    h = _dense(b, x, 64, "relu")
    h = _dense(b, h, 32, "relu")
    y = _dense(b, h, 5)
    case = Case("Float[mlp]", b.output(y), [(16,)], covers=[
        "trained-looking float32 MLP 16-64-32-5: fails without --weight-kif, "
        "converts with --weight-kif/--layer-output-kif"],
        options=oracle.Options(WEIGHT_KIF, OUTPUT_KIF), plain_float=True)
    float_weights(case.model, 7)
    return case


def float_cnn():
    b = Builder()
    x = b.input((8, 8, 1))
    h = _conv(b, x, 2, 4, 3, activation="relu")
    h = b.layer("MaxPooling2D", pool_cfg(2, 2), h, k2=True)
    h = _bn(b, h)
    h = b.layer("PReLU", prelu_cfg([1, 2]), h, [("alpha", (1, 1, 4))], k2=True)
    h = b.layer("Flatten", {"data_format": "channels_last"}, h, k2=True)
    y = _dense(b, h, 3)
    case = Case("Float[cnn]", b.output(y), [(8, 8, 1)], covers=[
        "float32 CNN: Conv2D, pool, BatchNormalization (folded scale/offset quantized), "
        "PReLU alpha, Dense"], options=oracle.Options(WEIGHT_KIF, OUTPUT_KIF), plain_float=True)
    float_weights(case.model, 11)
    return case


def float_cases():
    yield float_mlp()
    yield float_cnn()


# ---- broken models: the conversion must fail naming the culprit -----------------------------

def _tiny(name="functional"):
    b = Builder(name, lenient=True)
    x = b.input((4,))
    return b, x


def broken_cases():
    out = []

    def add(name, build, expect, mutate=None):
        b, x = _tiny()
        y = build(b, x)
        case = _finish(Case(f"Broken[{name}]", b.output(y), [(4,)], expect_error=expect,
                            mutate=mutate))
        out.append(case)

    add("unknown layer", lambda b, x: _unknown(b, x, "LayerNormalization", "keras.layers", cfg={
        "axis": [-1], "epsilon": 0.001, "center": True, "scale": True, "rms_scaling": False,
        "beta_initializer": zeros(), "gamma_initializer": ones(), "beta_regularizer": None,
        "gamma_regularizer": None, "beta_constraint": None, "gamma_constraint": None},
        weights=[("gamma", (4,)), ("beta", (4,))]),
        ["layer_normalization", "LayerNormalization", "keras.layers"])
    add("custom layer", lambda b, x: _unknown(b, x, "MyBlock", "my_project.layers",
                                              registered="my_project>MyBlock"),
        ["my_block", "MyBlock", "my_project"])
    add("qkeras", lambda b, x: _unknown(b, x, "QDense", "qkeras.qlayers",
                                        registered="qkeras>QDense"),
        ["q_dense", "QDense", "QKeras"])
    add("softmax activation", lambda b, x: _dense(b, x, 3, "softmax"),
        ["dense", "softmax", "support"])
    add("softmax layer", lambda b, x: _unknown(b, x, "Softmax", "keras.layers",
                                               cfg={"axis": -1}), ["softmax", "support"])
    add("softmax op", lambda b, x: b.op(NN, "Softmax", {"axis": -1}, [x], with_name=False),
        ["softmax", "support"])
    add("custom activation", _custom_activation, ["activation", "custom"])
    add("mish", lambda b, x: _unknown_activation(b, x, "mish"), ["activation", "mish"])
    add("tensor division", lambda b, x: _tensor_div(b, x), ["true_divide", "TrueDivide"])
    add("dot normalize", lambda b, x: _dot_normalize(b, x), ["dot", "normalize"])
    add("bilinear", lambda b, x: _bilinear(b, x), ["up_sampling2d", "bilinear"])
    add("cycle", lambda b, x: _dense(b, _dense(b, x, 4), 4), ["cycle"], mutate=_make_cycle)
    add("kernel shape", lambda b, x: _dense(b, x, 3), ["dense", "kernel"],
        mutate=_weights_mutation("layers/dense/vars/0", lambda a: a[:, :2]))
    add("kernel dtype", lambda b, x: _dense(b, x, 3), ["dense", "int32"],
        mutate=_weights_mutation("layers/dense/vars/0", lambda a: a.astype(np.int32)))
    add("weight count", lambda b, x: _dense(b, x, 3), ["dense"],
        mutate=_weights_mutation("layers/dense/vars/1", None))
    add("extra weight", lambda b, x: _dense(b, x, 3), ["dense"],
        mutate=_weights_mutation("layers/dense/vars/2", lambda a: np.zeros(3, np.float32)))
    add("unknown tagged value", _bogus_arg, ["__bogus__"])
    add("missing weights", lambda b, x: _dense(b, x, 3), ["dense"],
        mutate=_weights_mutation("layers/dense/vars/0", None))
    return out


def _unknown(b, x, cls, module, registered=kg.DEFAULT, cfg=None, weights=()):
    """A layer without an oracle (the conversion must refuse it)."""
    name = b.uname(cls)
    lay = make_layer(cls, name, dict(cfg or {}), weights, module=module,
                     registered_name=registered)
    lay.built_at_init = cls == "Softmax"
    return b.m.call(lay, x, kwargs=default_kwargs(cls), out_shape=x.shape)


def _custom_activation(b, x):
    cfg = {"activation": {"module": "builtins", "class_name": "function", "config": "custom",
                          "registered_name": "function"}}
    lay = make_layer("Activation", b.uname("Activation"), cfg)
    return b.m.call(lay, x, out_shape=x.shape)


def _unknown_activation(b, x, name):
    lay = make_layer("Activation", b.uname("Activation"), {"activation": name})
    return b.m.call(lay, x, out_shape=x.shape)


def _tensor_div(b, x):
    lay = kg.Layer("TrueDivide", b.uname("TrueDivide"), {}, module=NP, kind="op")
    return b.m.call(lay, None, args=[x, x], out_shape=x.shape)


def _dot_normalize(b, x):
    lay = make_layer("Dot", b.uname("Dot"), {"axes": -1, "normalize": True})
    return b.m.call(lay, [x, x], out_shape=())


def _bilinear(b, x):
    r = b.layer("Reshape", {"target_shape": [2, 2, 1]}, x)
    lay = make_layer("UpSampling2D", b.uname("UpSampling2D"), {
        "size": [2, 2], "data_format": "channels_last", "interpolation": "bilinear"})
    return b.m.call(lay, r, out_shape=(4, 4, 1))


def _bogus_arg(b, x):
    lay = kg.Layer("Multiply", b.uname("Multiply"), {}, module=NP, kind="op")
    return b.m.call(lay, None, args=[x, {"class_name": "__bogus__", "config": {}}],
                    out_shape=x.shape)


def _make_cycle(config, weights):
    """dense's input becomes dense_1's output: dense -> dense_1 -> dense."""
    layers = config["config"]["layers"]
    first = next(l for l in layers if l["name"] == "dense")
    first["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = ["dense_1", 0, 0]


def _weights_mutation(address, fn):
    def mutate(config, weights):
        if fn is None:
            weights.pop(address)
        else:
            base = weights.get(address, weights[address.rsplit("/", 1)[0] + "/0"])
            weights[address] = fn(base)
    return mutate


# ---- writing the files ----------------------------------------------------------------------

def write_forms(case, directory):
    """Write every form of the case into directory: {form: [files...]} (the convert command's
    positional file, then --weights' file for the json pair)."""
    stem = os.path.join(directory, case.file_stem())
    forms = {}
    path = stem + ".keras"
    if case.mutate is None:
        kg.write_keras(case.model, path, keras_version=case.keras_version)
    else:
        _write_mutated_keras(case, path)
    forms["keras"] = [path]
    if case.legacy and case.mutate is None:
        kg.write_h5(case.model, stem + ".k3.h5", keras=3)
        forms["keras3_h5"] = [stem + ".k3.h5"]
        kg.write_h5(case.model, stem + ".k2.h5", keras=2)
        forms["keras2_h5"] = [stem + ".k2.h5"]
        kg.write_json_pair(case.model, stem + ".json", stem + ".weights.h5")
        if case.k2_model_class == "Model":
            with open(stem + ".json") as f:
                cfg = json.load(f)
            cfg["class_name"] = "Model"
            with open(stem + ".json", "w") as f:
                json.dump(cfg, f)
        forms["keras2_json"] = [stem + ".json", stem + ".weights.h5"]
    return forms


def _write_mutated_keras(case, path):
    import h5py
    import io
    config = kg.keras_config(case.model)
    weights = kg.v3_weights(case.model)
    names = kg.v3_var_names(case.model)
    case.mutate(config, weights)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for group, name in names.items():
            f.require_group(group).attrs["name"] = name
        for address, value in weights.items():
            f[address] = value
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": case.keras_version,
                                                 "date_saved": kg.DATE}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", buf.getvalue())


def table():
    """MODELS.md: the table of models (name, inputs, forms, what each covers) in Markdown."""
    lines = ["# Keras test models", "",
             "Generated by `/usr/bin/python3 tests/keras/models.py > tests/keras/MODELS.md` "
             "(test_oracle.py", "checks it is current). Forms: \"all 4\" = .keras, Keras 3 .h5, "
             "Keras 2 .h5, Keras 2 json + weights.", "",
             "| model | inputs (kif) | forms | covers |", "|---|---|---|---|"]
    for c in cases() + broken_cases():
        forms = "all 4" if c.legacy else ".keras"
        extra = " (beyond the reference)" if c.beyond_reference else ""
        if c.expect_error:
            extra = f"must fail naming {', '.join(c.expect_error)}"
        lines.append(f"| {c.name} | {', '.join(str(s) for s in c.shapes)} {c.kif} | {forms} | "
                     f"{'; '.join(c.covers)}{extra} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table())
