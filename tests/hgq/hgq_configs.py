"""hgq_configs: HGQ2 layers and quantizers described for kerasgen exactly as HGQ2 saves them.

Read from calad0i/HGQ2 (HEAD; src/hgq/quantizer/**, src/hgq/layers/**) and Keras 3.10:

* A quantizer (`Quant`) is saved in two places. Its `QuantizerConfig` is serialized inside the
  owning layer's config (`kq_conf`, `iq_conf`, ...): `q_type, place, scaler, qnoise_factor,
  affine`, then the default config of (q_type, place) (hgq/quantizer/config.py) with the
  user's overrides. Its state lives in the weights: the public `Quantizer` layer has no
  variables of its own; its internal `FixedPointQuantizerKIF/KBI` holds k (uint8), i and f
  (KIF) or b and i (KBI), plus a scalar `i_decay_speed` for WRAP, saved in Keras' generic
  order (trainable variables first, each group in creation order):
  KIF non-WRAP i, f, k; KIF WRAP f, k, i, i_decay_speed; KBI non-WRAP b, i, k; KBI WRAP b, k,
  i, i_decay_speed (i is not trainable under WRAP). `HardTanhConfig` / `HardSigmoidConfig`
  (the RNN pre-activation quantizers) drop ic, k0, i0, overflow_mode and affine from their
  config: SAT and affine (0.25, 0.5) for the sigmoid are implied by the class.
* A layer (`QLayer`) has its HGQ2 config in HGQ2's key order, module `hgq.layers.<file>`,
  registered name `hgq>Class` (`hgq2>QConvT1D/2D`, which HGQ2 registers twice, the second
  registration winning), a build_config, its own variables in vars/N order and its
  sub-objects as (attribute, Obj) children: Keras saves a child under the first attribute name
  that reaches it, public names (HGQ2's properties kq, bq, iq, oq, ...) before private ones.
  Children are listed in Keras' tracking order (the order the attributes were assigned), which
  only matters for the legacy .h5 weight order.
* Legacy .h5 weight names are variable paths: `<layer>/<var>` and, for a quantizer built in its
  layer's build(), `<layer>/<layer>_kq/<internal quantizer>/<var>` (Functional models; a
  Sequential adds its own name in front).

Values are stored as given (float32 with the rounding residue a trained model has; k uint8).
"""

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "keras"))
import kerasgen as kg  # noqa: E402
import models as km  # noqa: E402  (Keras 3.10 base-class config pieces)

INF = float("inf")


# ---- serialized helper objects -------------------------------------------------------------

def _hgq_obj(module, cls, config):
    return {"module": module, "class_name": cls, "config": config,
            "registered_name": f"hgq>{cls}"}


def minmax(lo, hi):
    return _hgq_obj("hgq.constraints", "MinMax", {"min_value": float(lo), "max_value": float(hi)})


def const_constraint(value):
    return _hgq_obj("hgq.constraints", "Constant", {"value": float(value)})


def monol1(l1):
    return _hgq_obj("hgq.regularizers", "MonoL1", {"l1": l1})


def constant_init(value):
    return km.init("Constant", value=value)


# The default configs of hgq/quantizer/config.py, in their key order.
def _kbi(overflow, decay, homogeneous, is_weight, bmax):
    return {"k0": True, "b0": 8, "i0": 2, "round_mode": "RND", "overflow_mode": overflow,
            "bc": minmax(0, bmax), "ic": None, "br": monol1(1e-8), "ir": None,
            "i_decay_speed": decay, "homogeneous_axis": homogeneous, "heterogeneous_axis": None,
            "bw_mapper": None, "trainable": True, "is_weight": is_weight}


def _kif(overflow, decay, homogeneous, is_weight):
    return {"k0": True, "i0": 2, "f0": 6, "round_mode": "RND", "overflow_mode": overflow,
            "ic": minmax(-23, 23), "ir": monol1(1e-8), "fc": minmax(-24, 24),
            "fr": monol1(1e-8), "i_decay_speed": decay, "homogeneous_axis": homogeneous,
            "heterogeneous_axis": None, "bw_mapper": None, "trainable": True,
            "is_weight": is_weight}


def default_config(q_type, place):
    """A copy of HGQ2's default config of (q_type, place)."""
    if q_type == "kbi":
        base = {"weight": _kbi("SAT_SYM", INF, [], True, 23),
                "datalane": _kbi("WRAP", 0.01, [0], False, 24)}
    else:
        base = {"weight": _kif("SAT_SYM", INF, [], True),
                "datalane": _kif("WRAP", 0.01, [0], False)}
    if place == "table":  # the weight defaults, fully homogeneous, not a weight
        cfg = base["weight"]
        cfg.update(homogeneous_axis=None, heterogeneous_axis=[], is_weight=False)
        return cfg
    if place == "bias":  # the datalane defaults with no homogeneous axis
        cfg = base["datalane"]
        cfg["homogeneous_axis"] = []
        return cfg
    return base[place]


def rhe(x):
    """round_conv: round half to even, as HGQ2 rounds its stored bit widths."""
    return np.round(np.asarray(x, np.float64))


# ---- quantizers ----------------------------------------------------------------------------

class Names:
    """Keras' automatic names within one model: base, base_1, base_2, ..."""

    def __init__(self):
        self.used = {}

    def __call__(self, base):
        n = self.used.get(base, 0)
        self.used[base] = n + 1
        return base if n == 0 else f"{base}_{n}"


class Quant:
    """One HGQ2 quantizer: its config (as serialized) and its internal quantizer's state.

    k: uint8 array; KIF: i, f; KBI: b, i (float32 arrays as stored, residues included), all of
    the quantizer's weight shape (1 on homogeneous axes). q_type 'float' / 'dummy' give the
    unsupported quantizers (float: m, e, e0). `conf_class` HardTanhConfig / HardSigmoidConfig
    give HGQ2's sugar configs. `overrides` are extra config values (k0, i0, f0, b0, ...)."""

    def __init__(self, q_type="kif", place="datalane", round_mode="RND", overflow_mode="WRAP", *,
                 k=None, i=None, f=None, b=None, scaler=None, affine=None, trainable=True,
                 is_weight=None, homogeneous_axis=None, heterogeneous_axis=None,
                 conf_class="QuantizerConfig", i_decay_speed=None, overrides=None,
                 float_state=None):
        self.q_type = q_type
        self.place = place
        self.round_mode = round_mode
        self.overflow_mode = overflow_mode
        self.k = None if k is None else np.asarray(k, np.uint8)
        self.i = None if i is None else np.asarray(i, np.float32)
        self.f = None if f is None else np.asarray(f, np.float32)
        self.b = None if b is None else np.asarray(b, np.float32)
        self.scaler = scaler
        self.affine = affine
        self.trainable = trainable
        self.is_weight = is_weight
        self.homogeneous_axis = homogeneous_axis
        self.heterogeneous_axis = heterogeneous_axis
        self.conf_class = conf_class
        self.i_decay_speed = i_decay_speed
        self.overrides = dict(overrides or {})
        self.float_state = float_state  # (m, e, e0) of a float quantizer

    # -- what the quantizer means (effective integers of frontends.md §3.1) --
    @property
    def wrap(self):
        return self.effective_overflow() == "WRAP"

    def effective_overflow(self):
        if self.conf_class in ("HardTanhConfig", "HardSigmoidConfig"):
            return "SAT"
        return self.overflow_mode.upper()

    def kif(self):
        """(k, i, f) as float64 arrays of the weight shape."""
        k = self.k.astype(np.float64)
        if self.q_type == "kbi":
            i = rhe(self.i)
            return k, i, rhe(self.b) - i
        return k, rhe(self.i), rhe(self.f)

    # -- config.json --
    def config(self):
        if self.q_type == "dummy":
            cfg = {"q_type": "dummy", "place": self.place, "scaler": self.scaler,
                   "qnoise_factor": None, "affine": _affine_json(self.affine)}
            return _qconfig("QuantizerConfig", cfg)
        if self.q_type == "float":
            base = {"m0": 2, "e0": 4, "e00": 0, "mc": minmax(-1, 8), "ec": minmax(0, 4),
                    "e0c": minmax(-16, 16), "mr": monol1(1e-8), "er": monol1(1e-8),
                    "e0r": None, "homogeneous_axis": [], "heterogeneous_axis": None,
                    "bw_mapper": None, "trainable": True, "is_weight": self.place == "weight"}
        else:
            base = default_config(self.q_type, self.place)
        base["round_mode"] = self.round_mode
        if "overflow_mode" in base:
            base["overflow_mode"] = self.overflow_mode
        if self.homogeneous_axis is not None or self.heterogeneous_axis is not None:
            base["homogeneous_axis"] = self.homogeneous_axis
            base["heterogeneous_axis"] = self.heterogeneous_axis
        base["trainable"] = self.trainable
        if self.is_weight is not None:
            base["is_weight"] = self.is_weight
        if self.i_decay_speed is not None:
            base["i_decay_speed"] = self.i_decay_speed
        base.update(self.overrides)
        cfg = {"q_type": self.q_type, "place": self.place, "scaler": self.scaler,
               "qnoise_factor": None, "affine": _affine_json(self.affine), **base}
        if self.conf_class in ("HardTanhConfig", "HardSigmoidConfig"):
            for key in ("ic", "k0", "i0", "overflow_mode", "affine"):
                cfg.pop(key, None)
        return _qconfig(self.conf_class, cfg)

    # -- model.weights.h5 --
    def decay_value(self):
        if self.i_decay_speed is not None:
            return self.i_decay_speed
        return default_config(self.q_type, self.place)["i_decay_speed"]

    def internal_vars(self):
        """[(name, value, trainable at creation)] in vars/N order."""
        if self.q_type == "dummy":
            return []
        if self.q_type == "float":
            m, e, e0 = self.float_state
            return [("m", m, True), ("e", e, True), ("e0", e0, True)]
        decay = ("i_decay_speed", np.float32(self.decay_value()), False)
        if self.q_type == "kif":
            if self.wrap:
                return [("f", self.f, True), ("k", self.k, False), ("i", self.i, False), decay]
            return [("i", self.i, True), ("f", self.f, True), ("k", self.k, False)]
        if self.wrap:
            return [("b", self.b, True), ("k", self.k, False), ("i", self.i, False), decay]
        return [("b", self.b, True), ("i", self.i, True), ("k", self.k, False)]

    def internal_class(self):
        return {"kif": "FixedPointQuantizerKIF", "kbi": "FixedPointQuantizerKBI",
                "float": "FloatPointQuantizer", "dummy": "DummyQuantizer"}[self.q_type]

    def obj(self, name, names, scope):
        """The `Quantizer` layer called `name`; `scope` = the legacy path of its parent."""
        inner_name = names(kg.snake_case(self.internal_class()))
        path = f"{scope}/{name}/{inner_name}" if scope else f"{name}/{inner_name}"
        vars_ = [kg.Var(n, v, t and self.trainable, path=f"{path}/{n}")
                 for n, v, t in self.internal_vars()]
        inner = kg.Obj(self.internal_class(), inner_name, vars=vars_)
        q = kg.Obj("Quantizer", name, children=[("quantizer", inner)])
        q.quant = self  # the oracle reads the meaning from here
        return q


def _affine_json(affine):
    return None if affine is None else [float(affine[0]), float(affine[1])]


def _qconfig(cls, cfg):
    return {"module": "hgq.quantizer.config", "class_name": cls, "config": cfg,
            "registered_name": f"hgq>{cls}"}


def multiple_quantizers(quants, layer, names):
    """QLayerBaseMultiInputs' iq: a MultipleQuantizers layer whose `quantizers` tuple holds
    one auto-named Quantizer per input (saved as iq/quantizers/quantizer, quantizer_1, ...)."""
    mq_name = names("multiple_quantizers")
    scope = f"{layer}/{mq_name}"
    items = [q.obj(names("quantizer"), names, scope) for q in quants]
    mq = kg.Obj("MultipleQuantizers", mq_name, children=[("quantizers", items)])
    mq.quants = quants
    return mq


# ---- layers --------------------------------------------------------------------------------

MODULES = {
    "QDense": "hgq.layers.core.dense", "QBatchNormDense": "hgq.layers.core.dense",
    "QEinsumDense": "hgq.layers.core.einsum_dense",
    "QEinsumDenseBatchnorm": "hgq.layers.einsum_dense_batchnorm",
    "QBatchNormalization": "hgq.layers.batch_normalization",
    "QAdd": "hgq.layers.ops.merge", "QSubtract": "hgq.layers.ops.merge",
    "QMultiply": "hgq.layers.ops.merge", "QMaximum": "hgq.layers.ops.merge",
    "QMinimum": "hgq.layers.ops.merge", "QAveragePow2": "hgq.layers.ops.merge",
    "QDot": "hgq.layers.ops.merge", "QEinsum": "hgq.layers.ops.einsum",
    "QSum": "hgq.layers.ops.accum", "QMeanPow2": "hgq.layers.ops.accum",
    "QUnaryFunctionLUT": "hgq.layers.activation",
    "QAffinedUnaryFunctionLUT": "hgq.layers.activation", "QSoftmax": "hgq.layers.softmax",
    "QDenseT": "hgq.layers.table.dense", "QEinsumDenseT": "hgq.layers.table.dense",
    "QConvT1D": "hgq.layers.table.conv", "QConvT2D": "hgq.layers.table.conv",
    "QMultiHeadAttention": "hgq.layers.attn.mha", "QMultiHeadAttentionT": "hgq.layers.attn.mha",
    "QLinformerAttention": "hgq.layers.attn.linformer",
    "QLinformerAttentionT": "hgq.layers.attn.linformer",
    "QSALTAttention": "hgq.layers.attn.salt", "QSimpleRNN": "hgq.layers.rnn.simple_rnn",
    "QGRU": "hgq.layers.rnn.gru", "QSimpleSNN": "hgq.layers.snn.base",
    "QLIF": "hgq.layers.snn.base", "Quantizer": "hgq.quantizer.quantizer",
}
for _d in ("1D", "2D", "3D"):
    MODULES[f"QConv{_d}"] = "hgq.layers.conv"
    for _p in ("AveragePooling", "MaxPooling", "GlobalAveragePooling", "GlobalMaxPooling"):
        MODULES[f"Q{_p}{_d}"] = "hgq.layers.pooling"


def registered_name(cls):
    return f"hgq2>{cls}" if cls in ("QConvT1D", "QConvT2D") else f"hgq>{cls}"


class QLayer(kg.Layer):
    """An HGQ2 layer: `config` is the whole config in HGQ2's key order (name, trainable and
    dtype included where HGQ2 puts them)."""

    def __init__(self, class_name, config, vars=(), children=(), build_config=None):
        super().__init__(class_name, config["name"], module=MODULES[class_name],
                         registered_name=registered_name(class_name), vars=vars,
                         children=children)
        self.full_config = config
        self.build_config_value = build_config

    def config(self):
        return dict(self.full_config)

    def child(self, attr):
        for a, c in self.children:
            if a == attr:
                return c
        return None


def layer_base(name, dtype=None):
    return {"name": name, "trainable": True, "dtype": kg.dtype_policy(dtype or "float32")}


def qbase(oq=None, enable_iq=True, enable_ebops=True, beta0=1e-5):
    """QLayerBase.get_config's keys."""
    return {"enable_ebops": enable_ebops, "ebops_factor": 1.0, "beta0": constant_init(beta0),
            "enable_oq": oq is not None, "enable_iq": enable_iq,
            "oq_conf": oq.config() if oq is not None else None}


class Parts:
    """A layer's variables and children while it is being described."""

    def __init__(self, name, names):
        self.name = name
        self.names = names
        self.vars = []
        self.children = []

    def var(self, vname, value, trainable=True, dtype=np.float32):
        self.vars.append(kg.Var(vname, np.asarray(value, dtype), trainable,
                                path=f"{self.name}/{vname}"))

    def ebops(self, enabled, beta=1e-5, ebops=0):
        if enabled:
            self.var("beta", np.float32(beta), False)
            self.var("ebops", np.uint32(ebops), False, np.uint32)

    def quant(self, attr, q, name=None):
        if q is not None:
            self.children.append((attr, q.obj(name or f"{self.name}_{attr}", self.names,
                                              self.name)))

    def child(self, attr, obj):
        self.children.append((attr, obj))

    def layer(self, cls, config, build_config=None):
        return QLayer(cls, config, self.vars, self.children, build_config)


def single_input_tail(p, iq, oq):
    """The oq and iq children of a QLayerBaseSingleInput (created in that order)."""
    p.quant("oq", oq)
    p.quant("iq", iq)


def quantizer_layer(name, q, names):
    """A standalone `Quantizer` layer (its config: the layer base plus `config`)."""
    p = Parts(name, names)
    p.children.append(("quantizer", q.obj(name, names, "").children[0][1]))
    layer = p.layer("Quantizer", {**layer_base(name), "config": q.config()})
    layer.quant = q
    return layer


# ---- per-class descriptions (get_config key order of HGQ2 HEAD over Keras 3.10) -------------

def _conf(q):
    return None if q is None else q.config()


def einsum_free0_size(equation, input_shape):
    """HGQ2's _einsum_free0_size: the parallel loop count of an einsum dense layer (its
    `parallelization_factor` after build)."""
    inp, ker_out = equation.split(",", 1)
    ker, out = ker_out.split("->", 1)
    elided = len(input_shape) - len(inp) + 3
    inp = inp.replace("...", "?" * elided)
    n = 1
    for ax, dim in zip(inp[1:], input_shape[1:]):
        if ax not in ker and (ax in out or ax == "?"):
            n *= dim
    return n


def qdense(name, names, in_shape, kernel, bias=None, *, iq=None, kq, bq=None, oq=None,
           activation="linear", enable_ebops=True, bn=None, cls="QDense"):
    """QDense, or QBatchNormDense with bn = dict(scale, epsilon, gamma, mean, var)."""
    p = Parts(name, names)
    p.var("kernel", kernel)
    if bias is not None:
        p.var("bias", bias)
    if bn is not None and bn["scale"]:
        p.var("bn_gamma", bn["gamma"])
    p.ebops(enable_ebops)
    if bn is not None:
        p.var("moving_mean", bn["mean"], False)
        p.var("moving_variance", bn["var"], False)
    single_input_tail(p, iq, oq)
    p.quant("kq", kq)
    p.quant("bq", bq)
    cfg = {**layer_base(name), **km.dense_cfg(kernel.shape[1], activation, bias is not None),
           **qbase(oq, iq is not None, enable_ebops), "iq_conf": _conf(iq),
           "kq_conf": kq.config(), "bq_conf": _conf(bq),
           "parallelization_factor": int(np.prod(in_shape[:-1]))}
    if bn is not None:
        cfg.update({"scale": bn["scale"], "momentum": 0.99, "epsilon": bn["epsilon"],
                    "bn_gamma_initializer": km.ones(), "moving_mean_initializer": km.zeros(),
                    "moving_variance_initializer": km.ones(), "bn_gamma_regularizer": None,
                    "bn_gamma_constraint": None, "synchronized": False})
        cls = "QBatchNormDense"
    return p.layer(cls, cfg)


def qeinsum_dense(name, names, in_shape, equation, output_shape, kernel, bias=None,
                  bias_axes=None, *, iq=None, kq, bq=None, oq=None, activation="linear",
                  enable_ebops=True, bn=None):
    """QEinsumDense, or QEinsumDenseBatchnorm with bn = dict(gamma, mean, var) (HGQ2 saves
    none of normalize_axes, scale, center, epsilon, momentum for it: the class has no
    get_config of its own)."""
    p = Parts(name, names)
    p.var("kernel", kernel)
    if bias is not None:
        p.var("bias", bias)
    if bn is not None:
        p.var("gamma", bn["gamma"])
    p.ebops(enable_ebops)
    if bn is not None:
        p.var("moving_mean", bn["mean"], False)
        p.var("moving_variance", bn["var"], False)
    single_input_tail(p, iq, oq)
    p.quant("kq", kq)
    p.quant("bq", bq)
    cfg = {**layer_base(name),
           **km.einsum_dense_cfg(equation, output_shape, bias_axes, activation),
           **qbase(oq, iq is not None, enable_ebops), "iq_conf": _conf(iq),
           "kq_conf": kq.config(), "bq_conf": _conf(bq),
           "parallelization_factor": einsum_free0_size(equation, (None,) + tuple(in_shape))}
    return p.layer("QEinsumDenseBatchnorm" if bn is not None else "QEinsumDense", cfg)


def qconv(name, names, rank, out_spatial, kernel, bias=None, *, iq=None, kq, bq=None, oq=None,
          strides=1, padding="valid", data_format="channels_last", dilation_rate=1, groups=1,
          activation="linear", enable_ebops=True):
    p = Parts(name, names)
    p.var("kernel", kernel)
    if bias is not None:
        p.var("bias", bias)
    p.ebops(enable_ebops)
    single_input_tail(p, iq, oq)
    p.quant("kq", kq)
    p.quant("bq", bq)
    cfg = {**layer_base(name),
           **km.conv_cfg(rank, kernel.shape[-1], list(kernel.shape[:rank]), strides, padding,
                         data_format, dilation_rate, groups, activation, bias is not None),
           **qbase(oq, iq is not None, enable_ebops), "iq_conf": _conf(iq),
           "kq_conf": kq.config(), "bq_conf": _conf(bq),
           "parallelization_factor": int(np.prod(out_spatial))}
    return p.layer(f"QConv{rank}D", cfg)


def qbatchnorm(name, names, *, axis, epsilon, center, scale, gamma, beta, mean, var, iq=None,
               kq, bq, oq=None, enable_ebops=True):
    p = Parts(name, names)
    if scale:
        p.var("bn_gamma", gamma)
    if center:
        p.var("bn_beta", beta)
    p.var("moving_mean", mean, False)
    p.var("moving_variance", var, False)
    p.ebops(enable_ebops)
    single_input_tail(p, iq, oq)
    p.quant("kq", kq)
    p.quant("bq", bq)
    cfg = {**layer_base(name), **km.bn_cfg(axis, epsilon, center, scale),
           **qbase(oq, iq is not None, enable_ebops), "iq_conf": _conf(iq),
           "kq_conf": kq.config(), "bq_conf": bq.config()}
    return p.layer("QBatchNormalization", cfg)


def qpool(name, names, cls, rank, *, pool_size=2, strides=None, padding="valid",
          data_format="channels_last", keepdims=False, iq=None, oq=None, enable_ebops=True):
    p = Parts(name, names)
    p.ebops(enable_ebops)
    single_input_tail(p, iq, oq)
    if "Global" in cls:
        base = {"data_format": data_format, "keepdims": keepdims}
    else:
        base = km.pool_cfg(rank, pool_size, strides, padding, data_format)
    cfg = {**layer_base(name), **base, **qbase(oq, iq is not None, enable_ebops),
           "iq_conf": _conf(iq)}
    return p.layer(cls, cfg)


def qmerge(name, names, cls, iqs, *, oq=None, enable_ebops=True, extra=None, tail=None):
    """QAdd & co. (extra: Dot's axes/normalize before HGQ2's keys; tail: QEinsum's equation
    after them). iq_confs is always the list build() made of it."""
    p = Parts(name, names)
    p.ebops(enable_ebops)
    p.quant("oq", oq)
    if iqs:
        p.child("iq", multiple_quantizers(iqs, name, names))
    cfg = {**layer_base(name), **(extra or {}), **qbase(oq, bool(iqs), enable_ebops),
           "iq_confs": [q.config() for q in iqs] if iqs else None, **(tail or {})}
    return p.layer(cls, cfg)


def qreduce(name, names, cls, axes, keepdims, scale=None, *, iq=None, oq=None,
            enable_ebops=True):
    p = Parts(name, names)
    p.ebops(enable_ebops)
    single_input_tail(p, iq, oq)
    cfg = {**layer_base(name), **qbase(oq, iq is not None, enable_ebops), "iq_conf": _conf(iq),
           "axes": list(axes)}
    if cls == "QSum":
        cfg["scale"] = scale
    cfg["keepdims"] = keepdims
    return p.layer(cls, cfg)


def qlut(name, names, activation, *, iq=None, oq=None, affine=None, enable_ebops=True):
    """QUnaryFunctionLUT, or QAffinedUnaryFunctionLUT with affine = (scale, bias) arrays."""
    p = Parts(name, names)
    if affine is not None:
        p.var("scale", affine[0])
        p.var("bias", affine[1])
    p.ebops(enable_ebops)
    single_input_tail(p, iq, oq)
    cfg = {**layer_base(name), **qbase(oq, iq is not None, enable_ebops), "iq_conf": _conf(iq),
           "activation": activation, "allow_heterogeneous_table": True,
           "allow_heterogeneous_input": True}
    return p.layer("QAffinedUnaryFunctionLUT" if affine is not None else "QUnaryFunctionLUT",
                   cfg)


def softmax_tables(name, names, *, exp_iq, exp_oq, inv_iq, inv_oq, enable_ebops, stable):
    """QSoftmax's exp_table and inv_table (QUnaryFunctionLUT sub-layers)."""
    out = []
    for kind, iq, oq, ebops in (("inv", inv_iq, inv_oq, enable_ebops),
                                ("exp", exp_iq, exp_oq, enable_ebops and stable)):
        t = Parts(f"{name}_{kind}_table", names)
        t.ebops(ebops)
        single_input_tail(t, iq, oq)
        out.append((f"{kind}_table", kg.Obj("QUnaryFunctionLUT", t.name, t.vars, t.children)))
    return out


def qsoftmax(name, names, axes, *, stable=True, iq=None, oq=None, exp_iq=None, exp_oq, inv_iq,
             inv_oq, input_scaler=1.0, enable_ebops=True, parallelization_factor=1):
    p = Parts(name, names)
    p.ebops(enable_ebops)
    single_input_tail(p, iq, oq)
    for attr, obj in softmax_tables(name, names, exp_iq=exp_iq, exp_oq=exp_oq,
                                    inv_iq=inv_iq, inv_oq=inv_oq, enable_ebops=enable_ebops,
                                    stable=stable):
        p.child(attr, obj)
    cfg = {**layer_base(name), **qbase(oq, iq is not None, enable_ebops), "iq_conf": _conf(iq),
           "axes": list(axes), "stable": stable, "exp_oq_conf": exp_oq.config(),
           "exp_iq_conf": _conf(exp_iq) if stable else None, "inv_oq_conf": inv_oq.config(),
           "inv_iq_conf": inv_iq.config(), "allow_heterogeneous_table": False,
           "input_scaler": input_scaler, "parallelization_factor": parallelization_factor}
    return p.layer("QSoftmax", cfg)


# -- table layers --

def einsum_sub_layer(names, kernel, bias):
    """A keras EinsumDense of a table layer's per-pair MLP (vars: kernel, bias)."""
    name = names("einsum_dense")
    vars_ = [kg.Var("kernel", np.asarray(kernel, np.float32))]
    if bias is not None:
        vars_.append(kg.Var("bias", np.asarray(bias, np.float32)))
    return kg.Obj("EinsumDense", name, vars=vars_)


def mlp_module(names, layers):
    """The table layer's `module`: a Sequential of EinsumDense (its layers container)."""
    return kg.Obj("Sequential", names("sequential"),
                  children=[("layers", [einsum_sub_layer(names, k, b) for k, b in layers])])


def table_common(p, iq, oq, toq, mlp, bn_module=None):
    single_input_tail(p, iq, oq)
    p.quant("toq", toq, name=p.names("quantizer"))
    p.child("module", mlp_module(p.names, mlp))
    if bn_module is not None:
        p.child("bn_module", bn_module)


def qdense_t(name, names, in_shape, n_out, mlp, *, d_hl, subnn_activation="tanh",
             activation="linear", iq=None, oq=None, toq, bn=None, use_bias=True,
             enable_ebops=True, conv=None):
    """QDenseT (conv: QConvT1D/2D geometry dict); mlp = [(kernel, bias), ...]; bn = dict(
    center, scale, epsilon, gamma, beta, mean, var) for the Keras BatchNormalization."""
    p = Parts(name, names)
    p.ebops(enable_ebops)
    bn_obj = None
    if bn is not None:
        vars_ = ([kg.Var("gamma", bn["gamma"])] if bn["scale"] else []) + \
            ([kg.Var("beta", bn["beta"])] if bn["center"] else []) + \
            [kg.Var("moving_mean", bn["mean"], False),
             kg.Var("moving_variance", bn["var"], False)]
        bn_obj = kg.Obj("BatchNormalization", names("batch_normalization"), vars=vars_)
    table_common(p, iq, oq, toq, mlp, bn_obj)
    cfg = {"n_out": n_out, "n_hl": len(mlp) - 1, "d_hl": d_hl,
           "subnn_activation": subnn_activation, "activation": activation,
           "toq_conf": toq.config(), "use_bias": use_bias,
           "parallelization_factor": int(np.prod(in_shape[:-1])),
           "batch_norm": bn is not None, "bn_center": True if bn is None else bn["center"],
           "bn_scale": True if bn is None else bn["scale"], "bn_momentum": 0.99,
           "bn_epsilon": 0.001 if bn is None else bn["epsilon"], "table_idxs": [6, 5],
           **layer_base(name), **qbase(oq, iq is not None, enable_ebops), "iq_conf": _conf(iq)}
    if conv is None:
        return p.layer("QDenseT", cfg)
    cfg["filters"] = cfg.pop("n_out")
    cfg.update({"kernel_size": list(conv["kernel_size"]), "strides": list(conv["strides"]),
                "padding": conv["padding"], "data_format": conv["data_format"],
                "dilation_rate": list(conv["dilation_rate"]), "groups": 1})
    return p.layer(f"QConvT{len(conv['kernel_size'])}D", cfg)


def qeinsum_dense_t(name, names, equation, output_shape, mlp, *, d_hl, parallelization_factor,
                    subnn_activation="tanh", activation="linear", bias_axes=None, iq=None,
                    oq=None, toq, bn=None, enable_ebops=True, dtype=None):
    """QEinsumDenseT; bn = dict(center, scale, epsilon, gamma, beta, mean, var,
    normalize_axes) with its own variables (bn_gamma, bn_beta, moving_mean, moving_variance)."""
    p = Parts(name, names)
    if bn is not None:
        if bn["scale"]:
            p.var("bn_gamma", bn["gamma"])
        if bn["center"]:
            p.var("bn_beta", bn["beta"])
        p.var("moving_mean", bn["mean"], False)
        p.var("moving_variance", bn["var"], False)
    p.ebops(enable_ebops)
    table_common(p, iq, oq, toq, mlp)
    cfg = {"equation": equation, "output_shape": list(output_shape), "n_hl": len(mlp) - 1,
           "d_hl": d_hl, "subnn_activation": subnn_activation, "activation": activation,
           "bias_axes": bias_axes, "normalize_axes": None if bn is None else bn["normalize_axes"],
           "toq_conf": toq.config(), "parallelization_factor": parallelization_factor,
           "batch_norm": bn is not None, "bn_center": True if bn is None else bn["center"],
           "bn_scale": True if bn is None else bn["scale"], "bn_momentum": 0.99,
           "bn_epsilon": 0.001 if bn is None else bn["epsilon"], "table_idxs": [6, 5],
           **layer_base(name, dtype), **qbase(oq, iq is not None, enable_ebops),
           "iq_conf": _conf(iq)}
    return p.layer("QEinsumDenseT", cfg)


# -- attention --

def mha_config(name, cls, *, num_heads, key_dim, value_dim, use_bias, attention_axes, confs,
               oq, enable_iq, enable_ebops, stable_softmax=True, fuse="none", extra=None):
    """QMultiHeadAttention & co.: Keras MultiHeadAttention.get_config over QLayerBase's, then
    HGQ2's keys; `confs` maps qkvo_*/softmax_* names to Quant (their configs are saved; the
    sub-layers' states are in the weights)."""
    cfg = {**layer_base(name), **qbase(oq, enable_iq, enable_ebops),
           "num_heads": num_heads, "key_dim": key_dim, "value_dim": value_dim, "dropout": 0.0,
           "use_bias": use_bias, "output_shape": None, "attention_axes": list(attention_axes),
           "kernel_initializer": km.glorot(), "bias_initializer": km.zeros(),
           "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
           "kernel_constraint": None, "bias_constraint": None, "seed": None}
    table = cls in ("QMultiHeadAttentionT", "QLinformerAttentionT")
    keys = ["qkvo_iq_conf", "qkvo_kq_conf", "qkvo_bq_conf", "qkvo_oq_conf", "softmax_iq_conf",
            "softmax_exp_iq_conf", "softmax_exp_oq_conf", "softmax_inv_iq_conf",
            "softmax_inv_oq_conf", "softmax_oq_conf"]
    for key in keys:
        if table and key in ("qkvo_kq_conf", "qkvo_bq_conf"):
            continue
        cfg[key] = confs[key].config()
    cfg.update({"softmax_allow_heterogeneous_table": False, "parallelization_factor": -1,
                "stable_softmax": stable_softmax})
    if not table:
        cfg["fuse"] = fuse
    cfg.update(extra or {})
    return cfg


# -- recurrent and spiking layers --

def rnn_base(name, *, enable_ebops, enable_iq, pf, return_sequences, go_backwards, unroll):
    """QRNN.get_config's own keys, then Keras RNN's (layer base first)."""
    return {"parallelization_factor": pf, "enable_ebops": enable_ebops, "enable_iq": enable_iq,
            "enable_oq": False, "beta0": constant_init(1e-5), **layer_base(name),
            "return_sequences": return_sequences, "return_state": False,
            "go_backwards": go_backwards, "stateful": False, "unroll": unroll,
            "zero_output_for_mask": False}


def _rnn_cell_keys(units, activation, use_bias, recurrent_activation=None):
    cfg = {"units": units, "activation": activation}
    if recurrent_activation is not None:
        cfg["recurrent_activation"] = recurrent_activation
    cfg.update({"use_bias": use_bias, "kernel_initializer": km.glorot(),
                "recurrent_initializer": km.init("Orthogonal", gain=1.0, seed=None),
                "bias_initializer": km.zeros(), "kernel_regularizer": None,
                "recurrent_regularizer": None, "bias_regularizer": None,
                "activity_regularizer": None, "kernel_constraint": None,
                "recurrent_constraint": None, "bias_constraint": None, "dropout": 0.0,
                "recurrent_dropout": 0.0})
    return cfg


def qsimple_rnn(name, names, *, units, kernel, rkernel, bias, iq, sq, kq, rkq, bq, paq,
                return_sequences, go_backwards=False, seq_len, activation="linear",
                enable_ebops=True):
    p = Parts(name, names)
    p.ebops(enable_ebops)
    cell = Parts("simple_rnn_cell", names)
    cell.var("kernel", kernel)
    cell.var("recurrent_kernel", rkernel)
    if bias is not None:
        cell.var("bias", bias)
    cell.quant("iq", iq)
    cell.quant("sq", sq, name="sq")
    cell.quant("kq", kq, name="kq")
    cell.quant("rkq", rkq, name="rkq")
    cell.quant("bq", bq, name="bq")
    cell.quant("paq", paq, name="paq")
    p.child("cell", kg.Obj("QSimpleRNNCell", cell.name, cell.vars, cell.children))
    cfg = {**rnn_base(name, enable_ebops=enable_ebops, enable_iq=True, pf=seq_len,
                      return_sequences=return_sequences, go_backwards=go_backwards,
                      unroll=True),
           **_rnn_cell_keys(units, activation, bias is not None), "seed": None,
           "iq_conf": iq.config(), "sq_conf": _conf(sq), "kq_conf": kq.config(),
           "rkq_conf": rkq.config(), "bq_conf": _conf(bq), "oq_conf": None,
           "paq_conf": paq.config()}
    return p.layer("QSimpleRNN", cfg)


def qgru(name, names, *, units, kernel, rkernel, bias, iq, sq, kq, rkq, bq, paq, praq, rhq,
         reset_after, return_sequences, go_backwards=False, activation="linear",
         recurrent_activation="linear", enable_ebops=True):
    p = Parts(name, names)
    p.ebops(enable_ebops)
    cell = Parts("qgru_cell", names)
    cell.var("kernel", kernel)
    cell.var("recurrent_kernel", rkernel)
    if bias is not None:
        cell.var("bias", bias)
    for attr, q in (("iq", iq), ("paq", paq), ("praq", praq), ("sq", sq), ("kq", kq),
                    ("rkq", rkq), ("bq", bq), ("rhq", rhq)):
        cell.quant(attr, q)
    p.child("cell", kg.Obj("QGRUCell", cell.name, cell.vars, cell.children))
    cfg = {**rnn_base(name, enable_ebops=enable_ebops, enable_iq=True, pf=1,
                      return_sequences=return_sequences, go_backwards=go_backwards,
                      unroll=True),
           **_rnn_cell_keys(units, activation, bias is not None, recurrent_activation),
           "reset_after": reset_after, "seed": None, "iq_conf": iq.config(),
           "paq_conf": paq.config(), "praq_conf": praq.config(), "sq_conf": sq.config(),
           "kq_conf": kq.config(), "rkq_conf": rkq.config(), "bq_conf": _conf(bq),
           "oq_conf": None, "rhq_conf": rhq.config()}
    return p.layer("QGRU", cfg)


def qsnn(name, names, *, units, threshold, gsf, iq, sq, oq, gsf_q, beta=None, beta_q=None,
         inhibition=False, reset_mechanism="subtract", return_sequences, seq_len,
         enable_ebops=True):
    """QSimpleSNN, or QLIF when `beta` (and its quantizer beta_q) is given."""
    lif = beta is not None
    cls, cell_cls = ("QLIF", "QLIFCell") if lif else ("QSimpleSNN", "QSimpleSNNCell")
    p = Parts(name, names)
    p.ebops(enable_ebops)
    cell = Parts("q_lif_cell" if lif else "q_spiking_neural_cell", names)
    if lif:
        cell.var("beta", np.float32(beta), False)
    cell.var("threshold", np.float32(threshold), False)
    cell.var("graded_spikes_factor", np.float32(gsf), False)
    cell.quant("oq", oq)
    cell.quant("iq", iq)
    cell.quant("graded_spikes_factor_q", gsf_q)
    cell.quant("sq", sq)
    cell.quant("beta_q", beta_q)
    p.child("cell", kg.Obj(cell_cls, cell.name, cell.vars, cell.children))
    neuron = {"units": units, "threshold": threshold, "spike_grad": None,
              "surrogate_disable": False, "inhibition": inhibition, "learn_threshold": False,
              "reset_mechanism": reset_mechanism, "detach_reset": True,
              "graded_spikes_factor": gsf, "learn_graded_spikes_factor": False}
    cell_cfg = {**layer_base(cell.name), **neuron, **qbase(oq, True, enable_ebops),
                "iq_conf": iq.config(), "graded_spikes_factor_q_conf": gsf_q.config(),
                "sq_conf": _conf(sq), "enable_sq": sq is not None, "standalone": False}
    if lif:
        cell_cfg.update({"beta_q_conf": beta_q.config(), "beta": beta, "learn_beta": False})
    base = rnn_base(name, enable_ebops=enable_ebops, enable_iq=True, pf=seq_len,
                    return_sequences=return_sequences, go_backwards=False, unroll=True)
    base["enable_oq"] = oq is not None
    base["cell"] = {"module": "hgq.layers.snn.base", "class_name": cell_cls,
                    "config": cell_cfg, "registered_name": f"hgq>{cell_cls}"}
    cfg = {**base, **neuron, "iq_conf": iq.config(), "sq_conf": _conf(sq), "oq_conf": _conf(oq),
           "enable_sq": sq is not None, "graded_spikes_factor_q_conf": gsf_q.config()}
    if lif:
        cfg.update({"beta": beta, "learn_beta": False, "beta_q_conf": beta_q.config()})
    return p.layer(cls, cfg)
