"""hgq_models: the HGQ2 test models (issue 13) as kerasgen descriptions, with their inputs.

Every class of frontends.md §3.4 is in at least one model (`covered_classes()`, checked by
test_hgq.py). Configs are what HGQ2 (HEAD) over Keras 3.10 writes (hgq_configs.py); weights
are trained-looking float32 values and the quantizers' bit widths are drawn at random per
model (numpy default_rng seeded from the model's name) over HGQ2's own conversion-test grid
(frontends.md §3.5, HGQ2 tests/base.py): weight and bias quantizers of q_type kif / kbi, every
quantizer WRAP / SAT, rounding TRN / RND (kbi weights RND, as HGQ2's scope sets them), stored
with the residues training leaves (x.5 included, to exercise round-half-even), some elements
pruned (k + i + f <= 0), some unsigned (k = 0), homogeneous axes as configured. WRAP models
convert with auto-width inputs (no --input-kif: the first WRAP input quantizer defines the
input), SAT models with the explicit inputs_kif (1, 3, 8) of HGQ2's test; the data are HGQ2's
round(N(0,1)·scale, 1/256), clipped to that format.

    import hgq_models as hm
    for case in hm.cases(): case.name, case.model, case.kif, case.covers, ...
    hm.broken_cases()             models the converter must refuse naming the layer
    hm.write_forms(case, directory) -> {form: [file]}
"""

import os
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "keras"))
import hgq_configs as hc  # noqa: E402
import hgq_oracle as ho  # noqa: E402
import kerasgen as kg  # noqa: E402
import models as km  # noqa: E402

GRID = [(qt, ovf, rnd) for qt in ("kif", "kbi") for ovf in ("WRAP", "SAT")
        for rnd in ("TRN", "RND")]
SAT_INPUT = (1, 3, 8)  # HGQ2's inputs_kif for SAT models


def grid_name(g):
    return ",".join(g)


# ---- random quantizers and weights ---------------------------------------------------------

class Gen:
    """Random bit widths and weights of one model (deterministic from its name)."""

    def __init__(self, name):
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))

    def stored(self, ints, residue=True):
        """Integers stored as a trained float32 would hold them: a residue in (-0.45, 0.45)
        and, on some even values, an exact ±0.5 that round-half-even sends back."""
        ints = np.asarray(ints, np.float64)
        if not residue:
            return ints.astype(np.float32)
        u = self.rng.uniform(-0.45, 0.45, ints.shape)
        tie = (self.rng.random(ints.shape) < 0.15) & (ints % 2 == 0)
        u = np.where(tie, self.rng.choice([-0.5, 0.5], ints.shape), u)
        return (ints + u).astype(np.float32)

    def ints(self, lo, hi, shape):
        return self.rng.integers(lo, hi + 1, shape)

    def quant(self, shape, q_type="kif", place="datalane", overflow="WRAP", rnd="RND", *,
              i_range=None, f_range=None, b_range=None, k_one=0.9, prune=0.06, **kw):
        """A quantizer of weight shape `shape` with random k, i, f (or b)."""
        shape = tuple(shape)
        weight = place in ("weight", "bias")
        k = (self.rng.random(shape) < k_one).astype(np.uint8)
        i = self.ints(*(i_range or ((-2, 1) if weight else (-1, 3))), shape)
        wrap = overflow.upper() == "WRAP"
        if q_type == "kif":
            f = self.ints(*(f_range or ((1, 5) if weight else (0, 4))), shape)
            cut = self.rng.random(shape) < prune
            f = np.where(cut, -(k + i) - self.ints(0, 1, shape), f)
            return hc.Quant("kif", place, rnd, overflow, k=k, i=self.stored(i, not wrap),
                            f=self.stored(f), **kw)
        b = self.ints(*(b_range or ((1, 6) if weight else (0, 6))), shape)
        cut = self.rng.random(shape) < prune
        b, k = np.where(cut, 0, b), np.where(cut, 0, k).astype(np.uint8)
        return hc.Quant("kbi", place, rnd, overflow, k=k, i=self.stored(i, not wrap),
                        b=self.stored(b), **kw)

    def datalane(self, feature_shape, grid, q_type=None, homogeneous=None, **kw):
        """An activation quantizer (homogeneous over the batch axis unless given)."""
        qt, ovf, rnd = grid
        homogeneous = [0] if homogeneous is None else homogeneous
        shape = tuple(1 if a in homogeneous else d
                      for a, d in enumerate((None,) + tuple(feature_shape)))
        return self.quant(shape, q_type or "kif", "datalane", ovf, rnd,
                          homogeneous_axis=homogeneous, **kw)

    def weight(self, shape, grid, place="weight", **kw):
        """A weight / bias quantizer under HGQ2's test scope (kbi weights round RND)."""
        qt, ovf, rnd = grid
        return self.quant(shape, qt, place, ovf, "RND" if qt == "kbi" else rnd,
                          is_weight=True if place == "weight" else None, **kw)

    def floats(self, shape, scale=0.5):
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def coarse(self, shape, step=0.125, top=2.0):
        """Float32 values on a coarse grid (for HGQ2's float32 dot products, which are only
        order-independent when exact)."""
        return (np.round(self.rng.uniform(-top, top, shape) / step) * step).astype(np.float32)

    def variances(self, shape):
        return (np.abs(self.rng.standard_normal(shape)) + 0.5).astype(np.float32)


# ---- models --------------------------------------------------------------------------------

class HBuilder:
    """A kerasgen Functional built node by node; output shapes come from the oracle run on a
    probe sample (what Keras' symbolic call infers)."""

    def __init__(self, name):
        self.gen = Gen(name)
        self.names = hc.Names()
        self.m = kg.Functional("functional", flat_io=True)
        self.probe = {}

    def input(self, shape):
        n = len(self.m.inputs)
        t = self.m.input(tuple(shape), name="input_layer" if n == 0 else f"input_layer_{n}")
        self.probe[id(t)] = np.round(self.gen.rng.standard_normal((1,) + tuple(shape)) * 64) / 32
        return t

    def name(self, cls):
        return self.names(kg.snake_case(cls))

    def _probe(self, value):
        if isinstance(value, kg.Tensor):
            return self.probe[id(value)]
        if isinstance(value, list):
            return [self._probe(v) for v in value]
        return value

    def call(self, layer, args, kwargs=None, n_outputs=1, broken_shape=None):
        """Call `layer` on args; a broken layer (the oracle refuses it) gets `broken_shape`."""
        kwargs = dict(kwargs or {})
        try:
            outs = ho.apply_layer(layer, self._probe(args), self._probe(kwargs), ho.Ctx(1))
        except ho.OracleError:
            if broken_shape is None:
                raise
            outs = [np.zeros((1,) + tuple(broken_shape))]
        shapes = [tuple(o.shape[1:]) for o in outs]
        res = self.m.call(layer, None, args=list(args), kwargs=kwargs,
                          out_shape=shapes if n_outputs > 1 else shapes[0], n_outputs=n_outputs)
        res_list = list(res) if n_outputs > 1 else [res]
        for t, o in zip(res_list, outs):
            self.probe[id(t)] = o.v64 if isinstance(o, ho.Table) else np.asarray(o)
        return res

    def output(self, *tensors):
        self.m.flat_io = len(self.m.inputs) == 1 and len(tensors) == 1
        self.m.output(*tensors)
        return self.m


class Case(km.Case):
    """One HGQ2 test model. kif None: auto-width inputs. `data_scale`: the data's N(0,1)
    scale. `data()` draws HGQ2-style samples and drops those the oracle marks ambiguous."""

    def __init__(self, name, model, shapes, kif, covers, *, data_scale=2.0, legacy=False,
                 beyond_reference=False, expect_error=None, mutate=None, note=None):
        super().__init__(name, model, shapes, kif or SAT_INPUT, covers, legacy=legacy,
                         beyond_reference=beyond_reference, expect_error=expect_error,
                         mutate=mutate)
        self.kif = None if kif is None else tuple(kif)
        self.data_scale = data_scale
        self.note = note
        self._cache = {}
        self.dropped = 0

    def _draw(self, n, seed):
        rng = np.random.default_rng(seed)
        top = 8 - 2.0 ** -8
        return [np.clip(np.round(rng.standard_normal((n,) + s) * self.data_scale * 256) / 256,
                        -8, top) for s in self.shapes]

    def data(self, n, seed_base=0):
        """n samples on the 1/256 grid within (1, 3, 8); ambiguous ones replaced."""
        got, outs, tries = None, None, 0
        while True:
            datas = self._draw(int(n * 1.25) + 16, seed_base + 1000 * tries)
            y, amb = ho.evaluate(self.model, datas)
            keep = ~amb
            datas = [d[keep] for d in datas]
            y = [o[keep] for o in y]
            got = datas if got is None else [np.concatenate([a, b]) for a, b in zip(got, datas)]
            outs = y if outs is None else [np.concatenate([a, b]) for a, b in zip(outs, y)]
            self.dropped += int(amb.sum())
            tries += 1
            if len(got[0]) >= n or tries > 20:
                break
        got = [d[:n] for d in got]
        self._cache[id(got[0])] = [o[:n] for o in outs]
        return got

    def expected(self, datas):
        if id(datas[0]) in self._cache:
            return self._cache[id(datas[0])]
        y, amb = ho.evaluate(self.model, datas)
        if amb.any():
            raise ho.OracleError(f"{self.name}: ambiguous samples")
        return y


def _in_kif(grid):
    return None if grid[1] == "WRAP" else SAT_INPUT


# ---- layer helpers: a layer with random weights and quantizers, called on x -----------------

def _iq(b, x, grid, on=True, **kw):
    return b.gen.datalane(x.shape, grid, **kw) if on else None


def dense(b, x, units, grid, *, activation="relu", bias=True, iq=True, oq=None, bn=None,
          enable_ebops=True, kq_kw=None, bq_kw=None, iq_kw=None):
    g = b.gen
    cin = x.shape[-1]
    cls = "QDense" if bn is None else "QBatchNormDense"
    layer = hc.qdense(b.name(cls), b.names, x.shape, g.floats((cin, units)),
                      g.floats((units,), 1.0) if bias else None,
                      iq=_iq(b, x, grid, iq, **(iq_kw or {})),
                      kq=g.weight((cin, units), grid, **(kq_kw or {})),
                      bq=g.weight((units,), grid, "bias", **(bq_kw or {})) if bias else None,
                      oq=oq, activation=activation, enable_ebops=enable_ebops, bn=bn)
    return b.call(layer, [x])


def einsum_dense(b, x, equation, out_shape, kernel_shape, bias_shape, bias_axes, grid, *,
                 bn=None, activation="linear", oq=None, enable_ebops=True):
    g = b.gen
    name = b.name("QEinsumDenseBatchnorm" if bn else "QEinsumDense")
    layer = hc.qeinsum_dense(name, b.names, x.shape, equation, out_shape,
                             g.floats(kernel_shape),
                             g.floats(bias_shape, 1.0) if bias_shape else None, bias_axes,
                             iq=_iq(b, x, grid), kq=g.weight(kernel_shape, grid),
                             bq=g.weight(bias_shape, grid, "bias") if bias_shape else None,
                             oq=oq, activation=activation, bn=bn, enable_ebops=enable_ebops)
    return b.call(layer, [x])


def conv(b, x, rank, filters, ksize, grid, *, strides=1, padding="valid", groups=1,
         dilation=1, data_format="channels_last", activation="linear", oq=None):
    g = b.gen
    cin = x.shape[0] if data_format == "channels_first" else x.shape[-1]
    kshape = (ksize,) * rank + (cin // groups, filters)
    layer = hc.qconv(b.name(f"QConv{rank}D"), b.names, rank, (1,), g.floats(kshape),
                     g.floats((filters,), 1.0), iq=_iq(b, x, grid), kq=g.weight(kshape, grid),
                     bq=g.weight((filters,), grid, "bias"), oq=oq, strides=strides,
                     padding=padding, data_format=data_format, dilation_rate=dilation,
                     groups=groups, activation=activation)
    out = b.call(layer, [x])
    spatial = out.shape[1:] if data_format == "channels_first" else out.shape[:-1]
    layer.full_config["parallelization_factor"] = int(np.prod(spatial))
    return out


def pool(b, x, cls, rank, grid, **kw):
    layer = hc.qpool(b.name(cls), b.names, cls, rank, iq=_iq(b, x, grid), **kw)
    return b.call(layer, [x])


def merge(b, xs, cls, grid, *, extra=None, tail=None, oq=None, shared_conf=False):
    iqs = [b.gen.datalane(x.shape, grid) for x in xs]
    layer = hc.qmerge(b.name(cls), b.names, cls, iqs, oq=oq, extra=extra, tail=tail)
    if shared_conf:
        # One QuantizerConfig object given for every input (iq_confs=conf): build() repeats
        # it and Keras' serialization marks the repeats with a shared_object_id.
        confs = layer.full_config["iq_confs"]
        assert all(c == confs[0] for c in confs)
        layer.full_config["iq_confs"] = [dict(confs[0], shared_object_id=140321456789)] * \
            len(confs)
    return b.call(layer, [xs])


def table_q(b, shape, grid, **kw):
    """A table-output quantizer (toq / LUT oq): kif on the model's grid."""
    return b.gen.quant(shape, "kif", "table", grid[1], grid[2], homogeneous_axis=None,
                       heterogeneous_axis=[], prune=0.0, **kw)


def mlp(g, w_shape, d_hl, n_hl=1, bias=True, scale=1.0):
    """A table layer's sub-network weights: [(kernel, bias)] of the EinsumDense chain."""
    layers, d_in = [], 1
    for _ in range(n_hl):
        layers.append((g.floats(w_shape + (d_in, d_hl), scale),
                       g.floats(w_shape + (d_hl,), scale) if bias else None))
        d_in = d_hl
    layers.append((g.floats(w_shape + (d_in,), scale), g.floats(w_shape, 0.2) if bias else None))
    return layers


# ---- the cases -----------------------------------------------------------------------------

def single(name, shape, fn, kif, covers, **opts):
    b = HBuilder(name)
    x = b.input(shape)
    y = fn(b, x)
    outs = y if isinstance(y, tuple) else (y,)
    return Case(name, b.output(*outs), [tuple(shape)], kif, covers, **opts)


def multi(name, shapes, fn, kif, covers, **opts):
    b = HBuilder(name)
    xs = [b.input(s) for s in shapes]
    y = fn(b, xs)
    outs = y if isinstance(y, tuple) else (y,)
    return Case(name, b.output(*outs), [tuple(s) for s in shapes], kif, covers, **opts)


def quantizer_cases():
    def qlayer(b, x, q):
        return b.call(hc.quantizer_layer(b.name("Quantizer"), q, b.names), [x])

    def q1(b, x):
        return qlayer(b, x, b.gen.datalane(x.shape, ("kif", "WRAP", "TRN"), prune=0.2))
    yield single("Quantizer[kif,WRAP,TRN]", (16,), q1, None,
                 ["Quantizer", "kif WRAP TRN, heterogeneous, 20% pruned (k+i+f <= 0)"])

    def q2(b, x):
        return qlayer(b, x, b.gen.datalane(x.shape, ("kbi", "SAT", "RND"), q_type="kbi",
                                           homogeneous=[0, 1]))
    yield single("Quantizer[kbi,SAT,RND,homogeneous]", (3, 6), q2, SAT_INPUT,
                 ["kbi activation quantizer SAT RND", "homogeneous axes (0, 1): k/i/f (1, 1, 6)"])

    def q3(b, x):
        q = b.gen.datalane(x.shape, ("kif", "sat_sym", "rnd_conv"), k_one=0.5)
        return qlayer(b, x, q)
    yield single("Quantizer[SAT_SYM,RND_CONV,lowercase]", (12,), q3, SAT_INPUT,
                 ["SAT_SYM and RND_CONV written in lower case (HGQ2 upper-cases them)",
                  "half the elements unsigned (k = 0)"])

    def q4(b, x):
        q = b.gen.datalane(x.shape, ("kif", "SAT", "RND"), scaler=0.25, affine=(0.5, -0.25))
        return qlayer(b, x, q)
    yield single("Quantizer[scaler,affine]", (8,), q4, SAT_INPUT,
                 ["scaler 0.25: Keras computes Q(x/s)·s (the reference's tracer omits ·s)",
                  "affine (0.5, -0.25)"], beyond_reference=True)

    def q5(b, x):
        return qlayer(b, x, b.gen.datalane(x.shape, ("kif", "WRAP", "S_RND")))
    yield single("Quantizer[S_RND]", (8,), q5, None,
                 ["S_RND: RND at inference (an extension: the reference fails)"],
                 beyond_reference=True)

    def q6(b, x):
        return qlayer(b, x, b.gen.datalane(x.shape, ("kbi", "WRAP", "RND_CONV"), q_type="kbi"))
    yield single("Quantizer[kbi,WRAP,RND_CONV]", (10,), q6, SAT_INPUT,
                 ["kbi activation quantizer WRAP RND_CONV (an explicit input format: "
                  "round-half-even cannot read an auto-width input)"])

    def q7(b, x):
        q = b.gen.datalane(x.shape, ("kif", "WRAP", "RND"), is_weight=True, prune=0.3)
        return qlayer(b, x, q)
    yield single("Quantizer[is_weight,WRAP]", (8,), q7, SAT_INPUT,
                 ["a trainable WRAP quantizer with is_weight=True: Keras only rounds (no wrap, "
                  "no pruning); the reference's tracer applies the full Q"],
                 beyond_reference=True)


def dense_cases():
    for g in GRID:
        yield single(f"QDense[{grid_name(g)}]", (12,),
                     lambda b, x, g=g: dense(b, x, 6, g, activation="relu" if g[2] == "TRN"
                                             else "linear"),
                     _in_kif(g), ["QDense", f"grid {grid_name(g)}"], legacy=g == GRID[0])

    def tanh_oq(b, x):
        oq = b.gen.datalane((5,), ("kif", "SAT", "RND_CONV"), i_range=(0, 1), f_range=(3, 6))
        return dense(b, x, 5, ("kif", "SAT", "RND"), activation="tanh", bias=False, oq=oq)
    yield single("QDense[tanh,oq,nobias]", (8,), tanh_oq, SAT_INPUT,
                 ["QDense tanh activation quantized by its oq (enable_oq)", "no bias"])

    def no_iq(b, x):
        return dense(b, x, 4, ("kbi", "SAT", "RND"), iq=False, enable_ebops=False)
    yield single("QDense[no iq,no ebops]", (6,), no_iq, SAT_INPUT,
                 ["enable_iq=False (no iq), enable_ebops=False (no beta/ebops variables)"])

    def scaled(b, x):
        return dense(b, x, 4, ("kif", "SAT", "RND"), kq_kw={"scaler": 0.75},
                     bq_kw={"scaler": 2.0})
    yield single("QDense[weight scaler]", (6,), scaled, SAT_INPUT,
                 ["kq scaler 0.75 (float32 x/s and Q·s), bq scaler 2"])

    def frozen(b, x):
        return dense(b, x, 4, ("kif", "WRAP", "TRN"), kq_kw={"trainable": False},
                     bq_kw={"trainable": False})
    yield single("QDense[WRAP weights, trainable false]", (6,), frozen, None,
                 ["WRAP weight quantizers with trainable=False: full Q (wrap and pruning), "
                  "not the round-only branch"])

    def sign_bits(b, x):
        # iq k = 1, i + f = 0: every input is {-2^i, 0}, the binary-LUT packing's signed case
        gen, g = b.gen, ("kif", "SAT", "RND")
        i = gen.ints(-1, 1, (1, 8))
        iq = hc.Quant("kif", "datalane", "RND", "SAT", k=np.ones((1, 8)), i=gen.stored(i),
                      f=gen.stored(-i), homogeneous_axis=[0])
        layer = hc.qdense(b.name("QDense"), b.names, x.shape, gen.floats((8, 3)),
                          gen.floats((3,), 1.0), iq=iq, kq=gen.weight((8, 3), g),
                          bq=gen.weight((3,), g, "bias"), activation="linear")
        return b.call(layer, [x])
    yield single("QDense[signed one-bit inputs]", (8,), sign_bits, SAT_INPUT,
                 ["iq k=1, i+f=0: inputs {-2^i, 0} packed into binary lookup tables (the "
                  "reference's address of a signed input is negative and its lookup fails)"],
                 beyond_reference=True)

    def pruned_columns(b, x):
        # Columns 0 and 1 of the kernel quantizer are pruned (k + i + f <= 0): those outputs are
        # the quantized bias, constants the oq rounds half to even and wraps (column 1 unsigned,
        # i = 1: 2.703125 -> 2.75 -> 0.75 modulo 2).
        gen, g = b.gen, ("kif", "SAT", "RND")
        kq = gen.weight((6, 4), g, prune=0.0)
        kq.k[:, :2], kq.i[:, :2], kq.f[:, :2] = 1, -2, 1
        bq = hc.Quant("kif", "bias", "RND", "SAT", k=np.ones(4), i=np.full(4, 3, np.float32),
                      f=np.full(4, 7, np.float32))
        oq = hc.Quant("kif", "datalane", "RND_CONV", "WRAP", k=np.array([[1, 0, 1, 1]]),
                      i=np.array([[3, 1, 3, 3]], np.float32),
                      f=np.array([[0, 2, 4, 4]], np.float32), homogeneous_axis=[0])
        layer = hc.qdense(b.name("QDense"), b.names, x.shape, gen.floats((6, 4)),
                          np.array([-1.9921875, 2.703125, 0.5, -0.25], np.float32), iq=None,
                          kq=kq, bq=bq, oq=oq, activation="linear")
        return b.call(layer, [x])
    yield single("QDense[pruned columns,oq]", (6,), pruned_columns, SAT_INPUT,
                 ["two kernel columns pruned: outputs = the bias, constants the oq quantizes "
                  "(round half to even to 2^0 and 2^-2, wrapped signed and unsigned); the "
                  "reference wraps an unsigned constant modulo 2^(i+1) and sends a "
                  "round-half-even constant through its bit network"], beyond_reference=True)

    def constant_inputs(b, x):
        # The first layer's columns 0, 1, 2 and 4 are pruned: those outputs are its bias,
        # constants the second layer's products take (the solver reads a zero-width interval as
        # no signal; these weights came out wrong in every column).
        gen, g = b.gen, ("kif", "SAT", "RND")
        kq = gen.weight((5, 5), g, prune=0.0)
        kq.k[:, [0, 1, 2, 4]], kq.i[:, [0, 1, 2, 4]], kq.f[:, [0, 1, 2, 4]] = 1, -2, 1
        bq = hc.Quant("kif", "bias", "RND", "SAT", k=np.ones(5), i=np.full(5, 2, np.float32),
                      f=np.full(5, 3, np.float32))
        first = hc.qdense(b.name("QDense"), b.names, x.shape, gen.floats((5, 5)),
                          np.array([-0.5, 0, 0.5, 0.25, -0.5], np.float32),
                          iq=_iq(b, x, g), kq=kq, bq=bq, activation="linear")
        y = b.call(first, [x])
        w = np.array([[0.125, -0.125, -0.5, -0.5], [0.6875, -0.3125, -0.25, 0.25],
                      [-0.125, -0.5, 0.25, 0.5], [0.125, 0.25, 0, 0.5], [0, -0.25, 0, -1]],
                     np.float32)
        kq2 = hc.Quant("kif", "weight", "RND", "SAT", k=np.ones((5, 4)),
                       i=np.full((5, 4), 1, np.float32), f=np.full((5, 4), 4, np.float32),
                       is_weight=True)
        second = hc.qdense(b.name("QDense"), b.names, y.shape, w, None, iq=None, kq=kq2,
                           activation="linear")
        return b.call(second, [y])
    yield single("QDense[constant inputs]", (5,), constant_inputs, SAT_INPUT,
                 ["a dense layer whose inputs include constants (the previous layer's pruned "
                  "columns give their bias): their products are constants; the constant-matrix "
                  "solver lost them"], beyond_reference=True)

    def half_even_after_bias(b, x):
        # y = x + bias with x on 2^-2 steps and bias -2^-5 + 1.5 (columns 0, 1), rounded half to
        # even at 2^-4 and 2^-1 by the oq: y + 2^-5 cancels the bias's finest bit
        # (trace-alir.md §1.11 step 4 then tested the wrong bits).
        iq = hc.Quant("kif", "datalane", "RND", "SAT", k=np.ones((1, 2)),
                      i=np.full((1, 2), 2, np.float32), f=np.full((1, 2), 2, np.float32),
                      homogeneous_axis=[0])
        kq = hc.Quant("kif", "weight", "RND", "SAT", k=np.ones((2, 2)),
                      i=np.full((2, 2), 1, np.float32), f=np.full((2, 2), 2, np.float32),
                      is_weight=True)
        bq = hc.Quant("kif", "bias", "RND", "SAT", k=np.ones(2), i=np.full(2, 2, np.float32),
                      f=np.full(2, 6, np.float32))
        oq = hc.Quant("kif", "datalane", "RND_CONV", "WRAP", k=np.ones((1, 2)),
                      i=np.array([[4, 1]], np.float32), f=np.array([[4, 1]], np.float32),
                      homogeneous_axis=[0])
        layer = hc.qdense(b.name("QDense"), b.names, x.shape,
                          np.array([[1, 0], [0, -0.75]], np.float32),
                          np.array([1.46875, -0.03125], np.float32), iq=iq, kq=kq, bq=bq, oq=oq,
                          activation="linear")
        return b.call(layer, [x])
    yield single("QDense[bias,oq RND_CONV]", (2,), half_even_after_bias, SAT_INPUT,
                 ["oq WRAP RND_CONV after a bias whose finest bit the +2^-(f+1) cancels (the "
                  "reference's round-half-even network then tests the wrong bits)"],
                 beyond_reference=True)

    def rank3(b, x):
        return dense(b, x, 3, ("kif", "SAT", "TRN"), iq_kw={"homogeneous": [0, 1]})
    yield single("QDense[rank3]", (4, 5), rank3, SAT_INPUT,
                 ["QDense on a rank-3 input, iq homogeneous over (0, 1)"])


def batchnorm_dense_cases():
    for scale, g in ((True, ("kif", "SAT", "RND")), (False, ("kbi", "WRAP", "TRN"))):
        def fn(b, x, scale=scale, g=g):
            gen = b.gen
            cin = x.shape[-1]
            bn = {"scale": scale, "epsilon": 0.001, "gamma": gen.floats((cin,), 0.3) + 1,
                  "mean": gen.coarse((cin,), 0.25, 1.0), "var": gen.variances((cin,))}
            layer = hc.qdense(b.name("QBatchNormDense"), b.names, x.shape,
                              gen.coarse((cin, 4), 0.125, 1.5), gen.floats((4,), 1.0),
                              iq=_iq(b, x, g), kq=gen.weight((cin, 4), g),
                              bq=gen.weight((4,), g, "bias"), bn=bn, activation="relu")
            return b.call(layer, [x])
        yield single(f"QBatchNormDense[scale={scale}]", (8,), fn, _in_kif(g),
                     ["QBatchNormDense: kq(s·kernel), bq(bias − mean@kernel) in float32 "
                      "(the offset is not scaled: HGQ2's formula)",
                      f"scale={scale}, grid {grid_name(g)}"])

    def no_ebops(b, x):
        gen = b.gen
        g = ("kif", "SAT", "RND")
        cin = x.shape[-1]
        bn = {"scale": True, "epsilon": 0.001, "gamma": gen.floats((cin,), 0.3) + 1,
              "mean": gen.coarse((cin,), 0.25, 1.0), "var": gen.variances((cin,))}
        layer = hc.qdense(b.name("QBatchNormDense"), b.names, x.shape,
                          gen.coarse((cin, 3), 0.125, 1.5), gen.floats((3,), 1.0),
                          iq=_iq(b, x, g), kq=gen.weight((cin, 3), g),
                          bq=gen.weight((3,), g, "bias"), bn=bn, enable_ebops=False)
        return b.call(layer, [x])
    yield single("QBatchNormDense[no ebops]", (5,), no_ebops, SAT_INPUT,
                 ["enable_ebops=False: vars kernel, bias, bn_gamma, moving_mean, "
                  "moving_variance (no beta/ebops between them; random_models found the "
                  "plugin expecting beta at vars/3)"])


def einsum_dense_cases():
    g = ("kbi", "SAT", "TRN")
    yield single("QEinsumDense[btc,cd->btd]", (3, 8),
                 lambda b, x: einsum_dense(b, x, "btc,cd->btd", (3, 4), (8, 4), (4,), "d", g),
                 SAT_INPUT, ["QEinsumDense on a rank-3 input"])
    g2 = ("kif", "WRAP", "RND")
    yield single("QEinsumDense[broadcast bias]", (4, 6),
                 lambda b, x: einsum_dense(b, x, "abc,cde->abde", (4, 2, 3), (6, 2, 3),
                                           (4, 1, 3), "be", g2, activation="relu"),
                 None, ["QEinsumDense bias_axes 'be' (bias (4, 1, 3) broadcast)"])
    for name, g, eq, shape, out, ks, ebops in (
            ("QEinsumDenseBatchnorm[jsc-like]", ("kif", "WRAP", "TRN"), "bc,cC->bC", (10,),
             (6,), (10, 6), True),
            ("QEinsumDenseBatchnorm[rank3]", ("kbi", "SAT", "RND"), "btc,cd->btd", (2, 5),
             (2, 4), (5, 4), True),
            ("QEinsumDenseBatchnorm[no ebops]", ("kif", "SAT", "TRN"), "bc,cd->bd", (4,),
             (3,), (4, 3), False)):
        def fn(b, x, g=g, eq=eq, out=out, ks=ks, ebops=ebops):
            gen = b.gen
            n = ks[-1]
            bn = {"gamma": gen.floats((n,), 0.3) + 1, "mean": gen.floats((n,)),
                  "var": gen.variances((n,))}
            return einsum_dense(b, x, eq, out, ks, (n,), eq[-1], g, bn=bn, activation="relu",
                                enable_ebops=ebops)
        yield single(name, shape, fn, _in_kif(g),
                     ["QEinsumDenseBatchnorm: s = gamma/sqrt(var + 1e-7) (Keras' epsilon(), "
                      "not the layer's), kq(kernel·s), bq(bias − mean·s) in float32"] +
                     ([] if ebops else ["enable_ebops=False: gamma, then moving_mean and "
                                        "moving_variance (no beta/ebops between them)"]))


def conv_cases():
    g1 = ("kif", "SAT", "TRN")
    yield single("QConv1D[causal,dilated]", (8, 3),
                 lambda b, x: conv(b, x, 1, 4, 3, g1, padding="causal", dilation=2,
                                   activation="relu"), SAT_INPUT,
                 ["QConv1D padding='causal' (HGQ2 pads (k−1)·d on the left; the reference's "
                  "conv handler refuses causal padding), dilation 2"], beyond_reference=True)
    g2 = ("kbi", "WRAP", "RND")
    yield single("QConv2D[same,strides,groups]", (6, 6, 4),
                 lambda b, x: conv(b, x, 2, 4, 3, g2, strides=2, padding="same", groups=2),
                 None, ["QConv2D same padding, strides 2, groups 2"])
    g3 = ("kif", "WRAP", "TRN")
    yield single("QConv2D[channels_first]", (2, 5, 5),
                 lambda b, x: conv(b, x, 2, 3, 2, g3, data_format="channels_first"), None,
                 ["QConv2D channels_first"])
    g4 = ("kbi", "SAT", "TRN")
    yield single("QConv3D", (4, 4, 3, 2),
                 lambda b, x: conv(b, x, 3, 2, 2, g4, activation="relu"), SAT_INPUT,
                 ["QConv3D"])


def batchnorm_cases():
    for name, g, shape, axis, center, scale in (
            ("QBatchNormalization", ("kif", "SAT", "RND"), (6,), -1, True, True),
            ("QBatchNormalization[center=False,axis=1]", ("kbi", "WRAP", "TRN"), (3, 4), 1,
             False, False)):
        def fn(b, x, g=g, axis=axis, center=center, scale=scale):
            gen = b.gen
            c = ((None,) + tuple(x.shape))[axis]
            layer = hc.qbatchnorm(b.name("QBatchNormalization"), b.names, axis=axis,
                                  epsilon=0.001, center=center, scale=scale,
                                  gamma=gen.floats((c,), 0.3) + 1, beta=gen.floats((c,)),
                                  mean=gen.floats((c,)), var=gen.variances((c,)),
                                  iq=_iq(b, x, g), kq=gen.weight((c,), g),
                                  bq=gen.weight((c,), g, "bias"))
            return b.call(layer, [x], {"mask": None})
        covers = ["QBatchNormalization: kq(gamma/sqrt(var+eps)), bq(beta − mean·scale)"]
        if not center:
            covers.append("center=False: HGQ2 uses beta = 1 (its code, so the model too); "
                          "scale=False; axis 1 of a rank-3 input")
        yield single(name, shape, fn, _in_kif(g), covers)


def pooling_cases():
    g = ("kif", "WRAP", "RND")

    def p1(b, x):
        a = pool(b, x, "QAveragePooling1D", 1, g, pool_size=2)
        a = pool(b, a, "QMaxPooling1D", 1, g, pool_size=2, strides=1, padding="same")
        a = pool(b, a, "QGlobalAveragePooling1D", 1, g)
        return a, pool(b, x, "QGlobalMaxPooling1D", 1, g, keepdims=True)
    yield single("Pooling1D", (8, 3), p1, None,
                 ["QAveragePooling1D (alias QAvgPool1D)", "QMaxPooling1D same, strides 1",
                  "QGlobalAveragePooling1D", "QGlobalMaxPooling1D keepdims (aliases "
                  "QGlobal*Pool*: the same classes, saved under these names)"])

    g2 = ("kif", "SAT", "TRN")

    def p2(b, x):
        a = pool(b, x, "QAveragePooling2D", 2, g2, pool_size=2)
        a = pool(b, a, "QGlobalMaxPooling2D", 2, g2, keepdims=True)
        m = pool(b, x, "QMaxPooling2D", 2, g2, pool_size=2)
        return a, pool(b, m, "QGlobalAveragePooling2D", 2, g2)
    yield single("Pooling2D", (4, 4, 2), p2, SAT_INPUT,
                 ["QAveragePooling2D", "QMaxPooling2D", "QGlobalAveragePooling2D",
                  "QGlobalMaxPooling2D"])

    g3 = ("kif", "WRAP", "TRN")

    def p3(b, x):
        a = pool(b, x, "QAveragePooling3D", 3, g3, pool_size=2)
        a = pool(b, a, "QGlobalMaxPooling3D", 3, g3)
        m = pool(b, x, "QMaxPooling3D", 3, g3, pool_size=2)
        return a, pool(b, m, "QGlobalAveragePooling3D", 3, g3)
    yield single("Pooling3D", (4, 4, 2, 2), p3, None,
                 ["QAveragePooling3D", "QMaxPooling3D", "QGlobalAveragePooling3D",
                  "QGlobalMaxPooling3D"])


def merge_cases():
    g = ("kif", "WRAP", "TRN")

    def m(b, xs):
        return tuple(merge(b, xs, c, g) for c in ("QAdd", "QSubtract", "QMultiply",
                                                   "QMaximum", "QMinimum"))
    yield multi("Merge", [(6,), (6,)], m, None,
                ["QAdd", "QSubtract", "QMultiply", "QMaximum", "QMinimum",
                 "iq lists: one quantizer per input (iq/quantizers/quantizer[_N])"],
                legacy=True)

    def max_of_table(b, x):
        # q in {0, 2^-i}: tanh's table, quantized by its oq, is 0.75 q; max(q, 0.75 q) is q, which
        # the reference's mux (testing the unsigned q - 0.75 q's top bit as a sign) got wrong.
        i = np.array([[-1, 0, 1, -2]], np.float32)
        q = hc.Quant("kif", "datalane", "TRN", "SAT", k=np.zeros((1, 4)), i=i, f=-i + 1,
                     homogeneous_axis=[0])
        y = b.call(hc.quantizer_layer(b.name("Quantizer"), q, b.names), [x])
        oq = hc.Quant("kif", "table", "TRN", "SAT", k=np.ones((1, 1)),
                      i=np.full((1, 1), 3, np.float32), f=np.full((1, 1), 3, np.float32),
                      homogeneous_axis=None, heterogeneous_axis=[])
        lut = b.call(hc.qlut(b.name("QUnaryFunctionLUT"), b.names, "tanh", oq=oq), [y])
        return b.call(km.make_layer("Maximum", b.name("Maximum"), {}), [[y, lut]])
    yield single("Maximum[x,table(x)]", (4,), max_of_table, SAT_INPUT,
                 ["a Keras Maximum of a one-bit value and its tanh table (a multiple of it): "
                  "the difference is never negative by its affine interval (the reference's "
                  "mux read its top bit as a sign)"], beyond_reference=True)

    g2 = ("kbi", "SAT", "RND")
    yield multi("QAveragePow2[3 inputs]", [(5,), (5,), (5,)],
                lambda b, xs: merge(b, xs, "QAveragePow2", g2, shared_conf=True), SAT_INPUT,
                ["QAveragePow2 of 3 inputs: sum·2^round(log2(1/3)) = sum/4",
                 "iq_confs: one config repeated with a shared_object_id"])

    def ein(b, xs):
        return merge(b, xs, "QEinsum", ("kif", "SAT", "RND"),
                     tail={"equation": "abc,acd->abd"})
    yield multi("QEinsum", [(3, 4), (4, 2)], ein, SAT_INPUT,
                ["QEinsum 'abc,acd->abd' (saved with the batch letter, as build() rewrites it)"])

    def dot(b, xs):
        return merge(b, xs, "QDot", ("kif", "WRAP", "RND"),
                     extra={"axes": -1, "normalize": False})
    yield multi("QDot", [(3, 4), (5, 4)], dot, None, ["QDot axes -1 (batch_dot)"])


def reduce_cases():
    g = ("kif", "SAT", "TRN")

    def s(b, x):
        layer = hc.qreduce(b.name("QSum"), b.names, "QSum", [2], True, 0.5,
                           iq=_iq(b, x, g))
        return b.call(layer, [x])
    yield single("QSum", (3, 4), s, SAT_INPUT, ["QSum axes (2,), keepdims, scale 0.5"])

    def mp(b, x):
        layer = hc.qreduce(b.name("QMeanPow2"), b.names, "QMeanPow2", [1, 2], False,
                           iq=_iq(b, x, ("kif", "WRAP", "RND")))
        return b.call(layer, [x])
    yield single("QMeanPow2", (3, 2, 4), mp, None,
                 ["QMeanPow2 over 3·2 = 6 elements: scale 2^round(log2(1/6)) = 1/8 (build-time "
                  "state, not in the config)"])


def lut_cases():
    g = ("kif", "WRAP", "RND")

    def tanh(b, x):
        layer = hc.qlut(b.name("QUnaryFunctionLUT"), b.names, "tanh", iq=_iq(b, x, g),
                        oq=table_q(b, (1, 8), ("kif", "SAT", "RND_CONV"), f_range=(3, 6),
                                   i_range=(0, 1)))
        return b.call(layer, [x])
    yield single("QUnaryFunctionLUT[tanh]", (8,), tanh, None,
                 ["QUnaryFunctionLUT tanh: iq, table, oq folded into the table"])

    def sig_then_q(b, x):
        layer = hc.qlut(b.name("QUnaryFunctionLUT"), b.names, "sigmoid",
                        iq=_iq(b, x, ("kif", "SAT", "TRN")))
        layer.full_config["enable_oq"] = False
        y = b.call(layer, [x])
        q = b.gen.datalane((6,), ("kif", "SAT", "RND"), i_range=(0, 1), f_range=(2, 5))
        return b.call(hc.quantizer_layer(b.name("Quantizer"), q, b.names), [y])
    yield single("QUnaryFunctionLUT[sigmoid,no oq]", (6,), sig_then_q, SAT_INPUT,
                 ["QUnaryFunctionLUT without oq: the table is quantized by the next layer "
                  "(a Quantizer)"])

    def affine(b, x):
        gen = b.gen
        layer = hc.qlut(b.name("QAffinedUnaryFunctionLUT"), b.names, "softsign",
                        iq=_iq(b, x, ("kif", "SAT", "RND")),
                        oq=table_q(b, (1, 6), ("kif", "SAT", "RND"), f_range=(3, 5),
                                   i_range=(0, 1)),
                        affine=(gen.floats((1,), 1.0), gen.floats((1,), 0.5)))
        return b.call(layer, [x])
    yield single("QAffinedUnaryFunctionLUT[softsign]", (6,), affine, SAT_INPUT,
                 ["QAffinedUnaryFunctionLUT: softsign(x·scale + bias), scale and bias weights"])


def softmax_quants(b, shape, inv_shape, stable):
    """exp/inv table quantizers as HGQ2 leaves them (oq: k0 0, SAT, RND_CONV; iq and oq
    homogeneous: allow_heterogeneous_table False)."""
    gen = b.gen
    tab = dict(homogeneous_axis=None, heterogeneous_axis=[], prune=0.0)
    ones = (1,) * (len(shape) + 1)
    inv_ones = (1,) * (len(inv_shape) + 1)
    exp_iq = gen.quant(ones, "kif", "datalane", "SAT", "RND", i_range=(2, 3),
                       f_range=(2, 3), **tab) if stable else None
    exp_oq = gen.quant(ones, "kif", "table", "SAT", "RND_CONV", i_range=(1, 1),
                       f_range=(4, 6), k_one=0.0, overrides={"k0": 0}, **tab)
    inv_iq = gen.quant(inv_ones, "kif", "datalane", "WRAP", "RND", i_range=(4, 4),
                       f_range=(3, 4), **tab)
    inv_oq = gen.quant(inv_ones, "kif", "table", "SAT", "RND_CONV", i_range=(1, 1),
                       f_range=(5, 7), k_one=0.0, overrides={"k0": 0}, **tab)
    return dict(exp_iq=exp_iq, exp_oq=exp_oq, inv_iq=inv_iq, inv_oq=inv_oq)


def softmax_cases():
    def stable(b, x):
        parts = softmax_quants(b, x.shape, (1,), True)
        layer = hc.qsoftmax(b.name("QSoftmax"), b.names, [1], **parts)
        return b.call(layer, [x], {"mask": None})
    yield single("QSoftmax[stable]", (8,), stable, SAT_INPUT,
                 ["QSoftmax stable: max − x, exp table (its iq and oq), sum, 1/x table, product",
                  "legacy .h5: the tables' quantizers are found as <layer>_exp_table_oq &c."],
                 data_scale=1.0, legacy=True)

    def unstable(b, x):
        parts = softmax_quants(b, x.shape, (1, 1), False)
        iq = b.gen.datalane(x.shape, ("kif", "WRAP", "RND"), i_range=(0, 1), f_range=(1, 2))
        oq = b.gen.datalane(x.shape, ("kif", "SAT", "RND"), i_range=(0, 0), f_range=(4, 6),
                            k_one=0.0)
        layer = hc.qsoftmax(b.name("QSoftmax"), b.names, [1, 2], stable=False, iq=iq, oq=oq,
                            input_scaler=0.5, **parts)
        return b.call(layer, [x], {"mask": None})
    yield single("QSoftmax[unstable,iq,oq,2 axes]", (3, 4), unstable, None,
                 ["QSoftmax stable=False over axes (1, 2), enable_iq, enable_oq, "
                  "input_scaler 0.5: exp(x·0.5) table without an input quantizer"],
                 data_scale=0.5)


def table_cases():
    g = ("kif", "SAT", "RND")

    def dense_t(b, x, bn_center=True):
        gen = b.gen
        n_in, n_out, d = x.shape[-1], 3, 4
        bn = {"center": bn_center, "scale": True, "epsilon": 0.001,
              "gamma": gen.floats((n_out,), 0.2) + 1, "beta": gen.floats((n_out,), 0.3),
              "mean": gen.floats((n_out,), 0.3), "var": gen.variances((n_out,))}
        layer = hc.qdense_t(b.name("QDenseT"), b.names, x.shape, n_out,
                            mlp(gen, (n_in, n_out), d), d_hl=d,
                            iq=gen.datalane(x.shape + (n_out,), g, f_range=(1, 3)),
                            toq=table_q(b, (1, 1, 1), g, f_range=(2, 4)), bn=bn)
        return b.call(layer, [x])
    yield single("QDenseT[bn]", (4,), dense_t, SAT_INPUT,
                 ["QDenseT: per-(input, output) tanh MLP tables, Keras BatchNormalization / "
                  "sqrt(n_in), toq, sum over inputs"])
    yield single("QDenseT[bn center=False]", (3,), lambda b, x: dense_t(b, x, False),
                 SAT_INPUT, ["QDenseT batch_norm with center=False: no offset in Keras (the "
                             "reference's tracer uses beta 1)"], beyond_reference=True)

    def einsum_t(b, x, act="relu", then_q=False):
        gen = b.gen
        layer = hc.qeinsum_dense_t(b.name("QEinsumDenseT"), b.names, "btc,cd->btd", (2, 2),
                                   mlp(gen, (3, 2), 3), d_hl=3, parallelization_factor=2,
                                   activation=act, bias_axes="d",
                                   iq=gen.datalane((2, 3, 2), g, f_range=(1, 3)),
                                   toq=table_q(b, (1, 1, 1, 1), g, f_range=(2, 4)))
        y = b.call(layer, [x])
        if then_q:
            q = b.gen.datalane((2, 2), ("kif", "SAT", "RND"), i_range=(0, 1), f_range=(3, 5))
            y = b.call(hc.quantizer_layer(b.name("Quantizer"), q, b.names), [y])
        return y
    yield single("QEinsumDenseT", (2, 3), einsum_t, SAT_INPUT,
                 ["QEinsumDenseT 'btc,cd->btd': presum (b,t,c,d), contract c, relu"])
    yield single("QEinsumDenseT[tanh]", (2, 3), lambda b, x: einsum_t(b, x, "tanh", True),
                 SAT_INPUT, ["QEinsumDenseT tanh activation then a Quantizer: Keras applies "
                             "it once (the reference's tracer twice)"], beyond_reference=True)

    def conv_t(b, x, rank):
        gen = b.gen
        ks, filters = (3,) if rank == 1 else (2, 2), 2
        cin = x.shape[-1]
        n_in = cin * int(np.prod(ks))
        geom = {"kernel_size": ks, "strides": (1,) * rank if rank == 1 else (2, 2),
                "padding": "same" if rank == 1 else "valid", "data_format": "channels_last",
                "dilation_rate": (1,) * rank}
        out_spatial = x.shape[:-1] if rank == 1 else tuple(s // 2 for s in x.shape[:-1])
        layer = hc.qdense_t(b.name(f"QConvT{rank}D"), b.names, out_spatial + (n_in,), filters,
                            mlp(gen, (n_in, filters), 3), d_hl=3, subnn_activation="relu",
                            iq=gen.datalane(out_spatial + (n_in, filters), g, f_range=(1, 3)),
                            toq=table_q(b, (1,) * (len(out_spatial) + 3), g, f_range=(2, 4)),
                            conv=geom)
        return b.call(layer, [x])
    yield single("QConvT1D", (5, 2), lambda b, x: conv_t(b, x, 1), SAT_INPUT,
                 ["QConvT1D kernel 3 same: patches then QDenseT (relu sub-networks)"])
    yield single("QConvT2D", (4, 4, 1), lambda b, x: conv_t(b, x, 2), SAT_INPUT,
                 ["QConvT2D kernel 2 strides 2"])


# -- attention --

def _attn_sub(b, name, in_shape, eq, out_shape, kshape, bshape, g, *, iq=True, oq=True,
              table_layer=False, t_cfg=None):
    """A query/key/value/output (or Linformer) projection of an attention layer."""
    gen = b.gen
    full_in = (1,) + tuple(in_shape)
    if table_layer:
        inp, w, out, presum, contract, _ = ho.einsum_t_geometry(eq)
        kd = dict(zip(w, kshape))
        presum_shape = tuple(in_shape) + tuple(kd[c] for c in presum[len(inp):])
        return hc.qeinsum_dense_t(
            name, b.names, eq, out_shape, mlp(gen, tuple(kshape), t_cfg["d_hl"], bias=bshape
                                              is not None),
            d_hl=t_cfg["d_hl"], parallelization_factor=hc.einsum_free0_size(eq, (None,) +
                                                                              tuple(in_shape)),
            bias_axes=t_cfg["bias_axes"], subnn_activation=t_cfg["subnn_activation"],
            iq=gen.datalane(presum_shape, g, f_range=(1, 3)) if iq else None,
            oq=gen.datalane(out_shape, g) if oq else None,
            toq=table_q(b, (1,) * (len(presum_shape) + 1), g, f_range=(2, 4)))
    return hc.qeinsum_dense(name, b.names, in_shape, eq, out_shape, gen.floats(kshape),
                            gen.floats(bshape, 1.0) if bshape else None, None,
                            iq=gen.datalane(full_in[1:], g) if iq else None,
                            kq=gen.weight(kshape, g),
                            bq=gen.weight(bshape, g, "bias") if bshape else None,
                            oq=gen.datalane(out_shape, g) if oq else None)


def attention(b, x, cls, g, *, heads=2, key_dim=2, fuse="none", lin=None, salt=False):
    """One attention layer called on (x, x); `lin`: the Linformer / SALT projection size."""
    gen = b.gen
    T, d = x.shape
    table_layer = cls in ("QMultiHeadAttentionT", "QLinformerAttentionT")
    t_cfg = {"d_hl": 2, "subnn_activation": "tanh"}
    name = b.name(cls)
    children, S = [], T
    extra = {}
    if lin is not None:
        S = lin
        if salt:
            eq, kshape, names = "bnd,nm->bmd", (T, lin), (b.name("QEinsumDense"),
                                                          b.name("QEinsumDense"))
        else:
            eq, kshape = "abc,bd->adc", (T, lin)
            names = ("lin_key", "lin_value") if table_layer else (b.name("QEinsumDense"),
                                                                  b.name("QEinsumDense"))
        for attr, nm in zip(("_lin_k_proj", "_lin_v_proj"), names):
            sub = _attn_sub(b, nm, (T, d), eq, (lin, d), kshape, None, g, oq=False,
                            table_layer=table_layer, t_cfg=dict(t_cfg, bias_axes=None))
            children.append((attr, sub))
        if salt:
            extra = {"lin_kv_proj_dim": lin, "share_kv_proj": False, "conv_size": 3,
                     "cluster_k_proj": False, "cluster_v_proj": False, "separate_conv": False}
        else:
            extra = {"lin_kv_proj_dim": [lin], "share_kv_proj": False,
                     "lin_kv_proj_mode": "dense_t" if table_layer else "dense"}
            if not table_layer:
                extra.update({"qkvo_kq_conf": None, "qkvo_bq_conf": None})  # set below
    eq_p, _ = ho.build_proj_equation(2, 1, 2)
    subs = {}
    for attr, nm, n_in, bias in (("query_dense", "query", T, True), ("key_dense", "key", S, False),
                                 ("value_dense", "value", S, True)):
        own_iq = fuse == "none" or (fuse == "kv" and attr == "query_dense")
        subs[attr] = _attn_sub(b, nm, (n_in, d), eq_p, (n_in, heads, key_dim),
                               (d, heads, key_dim), (heads, key_dim) if bias else None, g,
                               iq=own_iq, table_layer=table_layer,
                               t_cfg=dict(t_cfg, bias_axes="de" if bias else None))
    if fuse != "none":  # the value projection's iq, shared: saved where Keras meets it first
        shared = gen.datalane((T, d), g)
        subs["key_dense"].children.append(("iq", shared.obj("value_iq", b.names, "value")))
    eq_o, _ = ho.build_proj_equation(2, 2, 1)
    subs["output_dense"] = _attn_sub(b, "attention_output", (T, heads, key_dim), eq_o, (T, d),
                                     (heads, key_dim, d), (d,), g, oq=False,
                                     table_layer=table_layer, t_cfg=dict(t_cfg, bias_axes="e"))
    for attr in ("key_dense", "output_dense", "query_dense", "value_dense"):
        children.append((attr, subs[attr]))
    children.append(("_dropout_layer", kg.Obj("Dropout", b.names("dropout"))))
    sm_name = b.name("QSoftmax")
    parts = softmax_quants(b, (heads, T, S), (heads, T, 1), True)
    sm_oq = gen.datalane((heads, T, S), ("kif", "SAT", "RND"), i_range=(0, 0),
                         f_range=(4, 6), k_one=0.0)
    softmax = hc.qsoftmax(sm_name, b.names, [3], oq=sm_oq, input_scaler=1 / np.sqrt(key_dim),
                          **parts)
    children.append(("_softmax", softmax))
    if salt:
        ks = (3, 3, heads, heads)
        conv_layer = hc.qconv(b.name("QConv2D"), b.names, 2, (T, S), gen.floats(ks),
                              gen.floats((heads,), 0.5), iq=gen.datalane((heads, T, S), g),
                              kq=gen.weight(ks, g), bq=gen.weight((heads,), g, "bias"),
                              padding="same", data_format="channels_first")
        children.append(("conv", conv_layer))
    ref = subs["output_dense"]
    confs = {"qkvo_iq_conf": ref.child("iq").quant, "qkvo_oq_conf": subs["query_dense"]
             .child("oq").quant, "softmax_iq_conf": gen.datalane((heads, T, S), g),
             "softmax_exp_iq_conf": parts["exp_iq"], "softmax_exp_oq_conf": parts["exp_oq"],
             "softmax_inv_iq_conf": parts["inv_iq"], "softmax_inv_oq_conf": parts["inv_oq"],
             "softmax_oq_conf": sm_oq}
    if table_layer:
        confs["qkvo_toq_conf"] = ref.child("toq").quant
        extra.update({"qkvo_toq_conf": confs["qkvo_toq_conf"].config(), "n_hl": 1,
                      "d_hl": t_cfg["d_hl"], "subnn_activation": t_cfg["subnn_activation"],
                      "table_spec": [6, 5], "batch_norm": False, "bn_center": True,
                      "bn_scale": True, "bn_momentum": 0.99, "bn_epsilon": 0.001})
    else:
        confs["qkvo_kq_conf"] = ref.child("kq").quant
        confs["qkvo_bq_conf"] = ref.child("bq").quant
        if "qkvo_kq_conf" in extra:
            extra["qkvo_kq_conf"] = confs["qkvo_kq_conf"].config()
            extra["qkvo_bq_conf"] = confs["qkvo_bq_conf"].config()
    cfg = hc.mha_config(name, cls, num_heads=heads, key_dim=key_dim, value_dim=key_dim,
                        use_bias=True, attention_axes=[1], confs=confs, oq=None, enable_iq=True,
                        enable_ebops=True, fuse=fuse, extra=extra)
    p = hc.Parts(name, b.names)
    p.ebops(True)
    layer = hc.QLayer(cls, cfg, p.vars, children,
                      {"shapes_dict": {"query_shape": [None, T, d], "value_shape": [None, T, d]}})
    return b.call(layer, [x, x], {"query_mask": None, "value_mask": None})


def attention_cases():
    g = ("kif", "SAT", "RND")
    for cls, opts, covers in (
            ("QMultiHeadAttention", {}, ["QMultiHeadAttention self-attention, 2 heads: "
                                         "QEinsumDense projections, QSoftmax with input_scaler "
                                         "1/sqrt(key_dim) (not saved: derived)"]),
            ("QMultiHeadAttention", {"fuse": "qkv"}, ["fuse='qkv': one input quantizer "
                                                      "shared by the three projections"]),
            ("QMultiHeadAttentionT", {}, ["QMultiHeadAttentionT: QEinsumDenseT projections"]),
            ("QLinformerAttention", {"lin": 2}, ["QLinformerAttention: K/V projected to 2"]),
            ("QLinformerAttentionT", {"lin": 2}, ["QLinformerAttentionT: table projections"]),
            ("QSALTAttention", {"lin": 2, "salt": True}, ["QSALTAttention: 'bnd,nm->bmd' "
                                                          "projections, QConv2D 3x3 on the "
                                                          "scores"])):
        suffix = f"[{','.join(f'{k}={v}' for k, v in opts.items() if k != 'salt')}]" \
            if opts.get("fuse") else ""
        shape = (4, 4) if opts.get("lin") else (3, 4)
        yield single(f"{cls}{suffix}", shape,
                     lambda b, x, cls=cls, opts=opts: attention(b, x, cls, g, **opts),
                     SAT_INPUT, covers, data_scale=1.0)


# -- recurrent and spiking layers --

def hard_tanh(gen, shape, f_range=(2, 4)):
    return hc.Quant("kif", "datalane", "RND", "SAT", k=np.ones(shape, np.uint8),
                    i=np.zeros(shape, np.float32), f=gen.stored(gen.ints(*f_range, shape)),
                    conf_class="HardTanhConfig", homogeneous_axis=[0])


def hard_sigmoid(gen, shape, f_range=(2, 4)):
    return hc.Quant("kif", "datalane", "RND", "SAT", k=np.ones(shape, np.uint8),
                    i=np.ones(shape, np.float32), f=gen.stored(gen.ints(*f_range, shape)),
                    conf_class="HardSigmoidConfig", homogeneous_axis=[0])


def rnn_cases():
    g = ("kif", "WRAP", "RND")

    def srnn(b, x):
        gen = b.gen
        T, F = x.shape
        u = 3
        layer = hc.qsimple_rnn(b.name("QSimpleRNN"), b.names, units=u,
                               kernel=gen.floats((F, u)), rkernel=gen.floats((u, u)),
                               bias=gen.floats((u,), 0.5), iq=gen.datalane((F,), g), sq=None,
                               kq=gen.weight((F, u), g), rkq=gen.weight((u, u), g),
                               bq=gen.weight((u,), g, "bias"), paq=hard_tanh(gen, (1, u)),
                               return_sequences=True, seq_len=T)
        return b.call(layer, [x], {"training": False, "mask": None})
    yield single("QSimpleRNN", (4, 3), srnn, None,
                 ["QSimpleRNN unrolled, return_sequences: paq (HardTanhConfig: SAT implied), "
                  "no state quantizer"])

    for reset_after, back in ((True, False), (False, True)):
        def gru(b, x, reset_after=reset_after, back=back):
            gen = b.gen
            T, F = x.shape
            u = 2
            bshape = (2, 3 * u) if reset_after else (3 * u,)
            g2 = ("kbi", "SAT", "TRN")
            layer = hc.qgru(b.name("QGRU"), b.names, units=u, kernel=gen.floats((F, 3 * u)),
                            rkernel=gen.floats((u, 3 * u)), bias=gen.floats(bshape, 0.5),
                            iq=gen.datalane((F,), g2), sq=gen.datalane((u,), g2),
                            kq=gen.weight((F, 3 * u), g2), rkq=gen.weight((u, 3 * u), g2),
                            bq=gen.weight(bshape, g2, "bias"), paq=hard_tanh(gen, (1, u)),
                            praq=hard_sigmoid(gen, (1, 2 * u)), rhq=gen.datalane((u,), g2),
                            reset_after=reset_after, return_sequences=not back,
                            go_backwards=back)
            return b.call(layer, [x], {"training": False, "mask": None})
        yield single(f"QGRU[reset_after={reset_after}]", (3, 3), gru, SAT_INPUT,
                     ["QGRU unrolled: sq, iq, praq (HardSigmoidConfig: SAT, affine (0.25, 0.5) "
                      "implied), rhq, paq", "reset_after=True, return_sequences" if reset_after
                      else "reset_after=False, go_backwards, last output only"])


def snn_cases():
    g = ("kif", "WRAP", "TRN")

    def kbi(gen, b_bits, i_bits):
        return hc.Quant("kbi", "weight", "RND", "SAT_SYM", k=np.ones((), np.uint8),
                        i=np.float32(i_bits), b=gen.stored(np.array(b_bits)), is_weight=True)

    def simple(b, x):
        gen = b.gen
        T, u = x.shape
        layer = hc.qsnn(b.name("QSimpleSNN"), b.names, units=u, threshold=0.75, gsf=1.5,
                        iq=gen.datalane((u,), g), sq=gen.datalane((u,), g), oq=None,
                        gsf_q=kbi(gen, 4, 1), return_sequences=True, seq_len=T)
        return b.call(layer, [x], {"training": False, "mask": None})
    yield single("QSimpleSNN", (4, 4), simple, None,
                 ["QSimpleSNN: integrate, fire above the threshold, graded spikes (quantized "
                  "factor), subtract reset, state quantizer"], data_scale=2.0)

    def lif(b, x):
        gen = b.gen
        T, u = x.shape
        layer = hc.qsnn(b.name("QLIF"), b.names, units=u, threshold=0.5, gsf=1.0,
                        iq=gen.datalane((u,), g), sq=None,
                        oq=gen.datalane((u,), ("kif", "SAT", "RND"), i_range=(1, 1),
                                        f_range=(0, 1), prune=0.0),
                        gsf_q=kbi(gen, 3, 1), beta=0.5, beta_q=kbi(gen, 3, 0),
                        inhibition=True, reset_mechanism="zero", return_sequences=True,
                        seq_len=T)
        return b.call(layer, [x], {"training": False, "mask": None})
    yield single("QLIF", (4, 3), lif, None,
                 ["QLIF: leak beta 0.5 (quantized), winner-take-all inhibition, zero reset, "
                  "oq on the spikes, no state quantizer"], data_scale=2.0)


# ---- every model ---------------------------------------------------------------------------

def nested_cases():
    """HGQ2 layers inside a model called as a layer (the keras tracer's nested levels)."""
    def nested(b, x):
        # The Sequential's layers are built in its build(), inside its name scope: their legacy
        # .h5 names start with "sequential/", and the nested model's group holds them all.
        g = ("kif", "SAT", "RND")
        inner = HBuilder("nested-inner")
        inner.gen, inner.names = b.gen, b.names
        t = inner.m.input(tuple(x.shape), name="input_layer_1")
        inner.probe[id(t)] = b.probe[id(x)]
        y = dense(inner, t, 5, g, activation="relu")
        q = inner.gen.datalane(y.shape, ("kbi", "WRAP", "TRN"), q_type="kbi")
        z = inner.call(hc.quantizer_layer(inner.name("Quantizer"), q, inner.names), [y])
        chain = [y.producer, z.producer]
        for layer, t_out in zip(chain, (y, z)):
            layer.out_shape = tuple(t_out.shape)
            for v, scope in layer.weights():
                v.path = "sequential/" + (v.path or "/".join(scope + [v.name]))
        seq = kg.Sequential("sequential", tuple(x.shape), chain, input_name="input_layer_1")
        y = b.call(seq, [x], {"mask": None})
        return dense(b, y, 3, ("kbi", "WRAP", "TRN"), activation="linear")
    yield single("Nested[Sequential]", (6,), nested, SAT_INPUT,
                 ["a Sequential of a QDense and a Quantizer inside a Functional: in the legacy "
                  ".h5 its layers' quantizer variables sit in the Sequential's group"],
                 legacy=True)


def cases():
    """Every working model (conversion must succeed and equal the oracle)."""
    out = []
    for group in (quantizer_cases, dense_cases, batchnorm_dense_cases, einsum_dense_cases,
                  conv_cases, batchnorm_cases, pooling_cases, merge_cases, reduce_cases,
                  lut_cases, softmax_cases, table_cases, attention_cases, rnn_cases,
                  snn_cases, nested_cases):
        out.extend(group())
    names = [c.name for c in out]
    assert len(names) == len(set(names)), "duplicate case names"
    return out


ALL_CLASSES = sorted(set(hc.MODULES))


def covered_classes(case_list=None):
    """{class name: [case names]} of the HGQ2 classes the models hold (attention sub-layers
    and cells count for their outer layer only)."""
    found = {}
    for case in case_list or cases():
        for layer in case.model.ordered_layers():
            if layer.module.startswith("hgq."):
                found.setdefault(layer.class_name, []).append(case.name)
    return found


# ---- broken models: the conversion must fail naming the layer ------------------------------

def _layer_cfg(config, name):
    for entry in config["config"]["layers"]:
        if entry["config"].get("name") == name:
            return entry["config"]
    raise KeyError(name)


def _set_conf(layer, key, field, value):
    def mutate(config, weights):
        conf = _layer_cfg(config, layer)[key]
        (conf[0] if isinstance(conf, list) else conf)["config"][field] = value
    return mutate


def _weights(address, fn):
    def mutate(config, weights):
        if fn is None:
            weights.pop(address)
        else:
            weights[address] = fn(weights[address])
    return mutate


def _broken_dense(name, kq=None, mutate=None, expect=(), grid=("kif", "SAT", "RND"),
                  iq_kw=None):
    def fn(b, x):
        g = b.gen
        layer = hc.qdense(b.name("QDense"), b.names, x.shape, g.floats((4, 3)),
                          g.floats((3,)), iq=g.datalane(x.shape, grid, **(iq_kw or {})),
                          kq=kq or g.weight((4, 3), grid), bq=g.weight((3,), grid, "bias"))
        return b.call(layer, [x], broken_shape=(3,))
    return single(f"Broken[{name}]", (4,), fn, SAT_INPUT, [], expect_error=list(expect),
                  mutate=mutate)


def broken_cases():
    out = []
    out.append(_broken_dense("unknown q_type", mutate=_set_conf("q_dense", "kq_conf", "q_type",
                                                               "foo"),
                             expect=["q_dense", "foo"]))
    out.append(_broken_dense("WRAP_SM", mutate=_set_conf("q_dense", "iq_conf",
                                                         "overflow_mode", "WRAP_SM"),
                             expect=["q_dense", "WRAP_SM"]))
    gen = Gen("float")
    float_q = hc.Quant("float", "weight", float_state=(gen.floats((4, 3)), gen.floats((4, 3)),
                                                         gen.floats((4, 3))))
    out.append(_broken_dense("float quantizer", kq=float_q, expect=["q_dense", "float"]))
    out.append(_broken_dense("dummy quantizer", kq=hc.Quant("dummy", "weight"),
                             expect=["q_dense", "dummy"]))
    out.append(_broken_dense("missing quantizer weight", mutate=_weights(
        "layers/q_dense/kq/quantizer/vars/1", None), expect=["q_dense", "kq"]))
    out.append(_broken_dense("missing quantizer", mutate=_weights_group(
        "layers/q_dense/iq/quantizer/vars/"), expect=["q_dense", "iq"]))
    out.append(_broken_dense("k dtype", mutate=_weights(
        "layers/q_dense/kq/quantizer/vars/2", lambda a: a.astype(np.float32)),
        expect=["q_dense", "kq"]))
    out.append(_broken_dense("k shape", mutate=_weights(
        "layers/q_dense/kq/quantizer/vars/2", lambda a: a[:2]), expect=["q_dense", "kq"]))
    out.append(_broken_dense("unknown round mode", mutate=_set_conf(
        "q_dense", "bq_conf", "round_mode", "STOCHASTIC"), expect=["q_dense", "STOCHASTIC"]))
    out.append(_broken_dense("unknown class", mutate=_rename_class("q_dense", "QFoo"),
                             expect=["q_dense", "QFoo"]))

    def merge_float(b, xs):
        g = b.gen
        iqs = [g.datalane(x.shape, ("kif", "SAT", "RND")) for x in xs]
        iqs[1] = hc.Quant("float", "datalane", float_state=(g.floats((1, 4)), g.floats((1, 4)),
                                                             g.floats((1, 4))),
                          homogeneous_axis=[0])
        return b.call(hc.qmerge(b.name("QAdd"), b.names, "QAdd", iqs), [xs], broken_shape=(4,))
    out.append(multi("Broken[float iq in a list]", [(4,), (4,)], merge_float, SAT_INPUT, [],
                     expect_error=["q_add", "float"]))

    def quantizer_wrap_sm(b, x):
        q = b.gen.datalane(x.shape, ("kif", "WRAP_SM", "RND"))
        return b.call(hc.quantizer_layer(b.name("Quantizer"), q, b.names), [x],
                      broken_shape=(4,))
    out.append(single("Broken[Quantizer WRAP_SM]", (4,), quantizer_wrap_sm, SAT_INPUT, [],
                      expect_error=["quantizer", "WRAP_SM"]))
    return out


def _weights_group(prefix):
    def mutate(config, weights):
        for key in [k for k in weights if k.startswith(prefix)]:
            weights.pop(key)
    return mutate


def _rename_class(layer, cls):
    def mutate(config, weights):
        for entry in config["config"]["layers"]:
            if entry["config"].get("name") == layer:
                entry["class_name"] = cls
                entry["registered_name"] = f"hgq>{cls}"
                entry["module"] = "hgq.layers.core.foo"
    return mutate


# ---- files ---------------------------------------------------------------------------------

def write_forms(case, directory):
    """The .keras file (and, for `legacy` cases, the Keras 3 legacy .h5): {form: [file]}."""
    stem = os.path.join(directory, case.file_stem())
    path = stem + ".keras"
    if case.mutate is None:
        kg.write_keras(case.model, path)
    else:
        km._write_mutated_keras(case, path)
    forms = {"keras": [path]}
    if case.legacy and case.mutate is None:
        kg.write_h5(case.model, stem + ".k3.h5", keras=3)
        forms["keras3_h5"] = [stem + ".k3.h5"]
    return forms


def table():
    """MODELS.md: every model, its inputs and what it covers."""
    lines = ["# HGQ2 test models", "",
             "Generated by `/usr/bin/python3 tests/hgq/hgq_models.py > tests/hgq/MODELS.md` "
             "(test_hgq.py checks it", "is current). Inputs: `auto` = auto-width (no "
             "--input-kif; the first WRAP quantizer defines the input), else --input-kif. "
             "Forms: .keras, `+h5` = also the Keras 3 legacy .h5.", "",
             "| model | inputs | kif | forms | covers |", "|---|---|---|---|---|"]
    for c in cases() + broken_cases():
        kif = "auto" if c.kif is None else ",".join(map(str, c.kif))
        covers = "; ".join(c.covers)
        if c.beyond_reference:
            covers += " (beyond the reference)"
        if c.expect_error:
            covers = f"must fail naming {', '.join(c.expect_error)}"
        lines.append(f"| {c.name} | {', '.join(str(s) for s in c.shapes)} | {kif} | "
                     f"{'.keras +h5' if c.legacy else '.keras'} | {covers} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table())
