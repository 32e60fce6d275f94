#!/usr/bin/python3
"""Self-checks of the HGQ2 test side, no C code involved (meson test `hgq_oracle`):

1. the quantizer on hand-worked values in every round and overflow mode, both arithmetics
   (float64 activations, float32 weights), HGQ2's branches (WRAP weights round only, pruning,
   round-half-even bit widths, S_ modes, scaler, affine, HardSigmoid/HardTanh configs);
2. the float32 weight path against a second formulation (integers; float64 steps rounded to
   float32, which equals float32 arithmetic for + − × / sqrt), and the batch-norm folds;
3. the oracle on the two real fixtures against fixture_eval.py's independent evaluation, bit
   for bit on 1,000 inputs, and against what HGQ2 documents for them;
4. the models: every class of frontends.md §3.4 covered, each model written and its
   model.weights.h5 holding every enabled quantizer in HGQ2's layout, the broken models
   really broken, MODELS.md current, ambiguity detection working.
Usage: test_hgq.py [FIXTURES_DIR]
"""
import io
import json
import math
import os
import sys
import tempfile
import unittest
import zipfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "keras"))
import fixture_eval as fe  # noqa: E402
import hgq_configs as hc  # noqa: E402
import hgq_models as hm  # noqa: E402
import hgq_oracle as ho  # noqa: E402
import test_kerasgen as tk  # noqa: E402

FIXTURES = os.path.join(sys.argv[1] if len(sys.argv) > 1 else
                        os.environ.get("ALK_FIXTURES", os.path.join(HERE, "..", "..", "..",
                                                                    "shared", "fixtures")),
                        "keras")
f32 = np.float32


def quant(q_type="kif", overflow="WRAP", rnd="TRN", k=1, i=2, f=2, b=None, place="datalane",
          **kw):
    """A parsed quantizer with scalar bit widths (stored as given)."""
    shape = (1, 1)
    q = hc.Quant(q_type, place, rnd, overflow, k=np.full(shape, k, np.uint8),
                 i=np.full(shape, i, np.float32),
                 f=None if q_type == "kbi" else np.full(shape, f, np.float32),
                 b=None if b is None else np.full(shape, b, np.float32), **kw)
    return ho.Quantizer(q.config(), q.obj("q", hc.Names(), ""), "test")


def act(q, xs):
    ctx = ho.Ctx(len(xs))
    return list(q.act(ctx, np.array(xs, np.float64).reshape(-1, 1)).ravel())


class HandWorked(unittest.TestCase):
    """Q(x; k, i, f) worked out by hand from frontends.md §3.1 and the quantizers package."""

    def check(self, q, xs, expect):
        self.assertEqual(act(q, xs), expect)
        w = q.weight(np.array(xs, f32).reshape(-1, 1)).ravel().tolist()
        if not q.round_only:  # activations and non-WRAP weights: the same Q in float32
            self.assertEqual(w, expect)

    def test_wrap(self):
        # k=1 i=2 f=2: [-4, 4) on 0.25; wrap adds/removes 8.
        self.check(quant(rnd="TRN"), [1.3, -1.3, 4.1, 5.0, -4.2], [1.25, -1.5, -4.0, -3.0, 3.75])
        # unsigned: [0, 4), wrap modulo 4
        self.check(quant(k=0), [-1.0, 5.3], [3.0, 1.25])

    def test_round_modes(self):
        self.check(quant(rnd="RND"), [1.3, 1.375, -1.375], [1.25, 1.5, -1.25])
        self.check(quant(rnd="RND_CONV"), [1.375, 1.125, -1.375], [1.5, 1.0, -1.5])
        self.check(quant(rnd="S_RND"), [1.375, -1.375], [1.5, -1.25])  # inference = RND
        self.check(quant(rnd="S_RND_CONV"), [1.125], [1.0])
        self.check(quant(rnd="TRN_ZERO"), [-1.3, 1.3], [-1.25, 1.25])
        self.check(quant(rnd="RND_ZERO"), [-1.375, 1.375], [-1.25, 1.25])
        self.check(quant(rnd="RND_INF"), [-1.375, 1.375], [-1.5, 1.5])
        self.check(quant(rnd="RND_MIN_INF"), [-1.375, 1.375], [-1.5, 1.25])

    def test_saturation(self):
        self.check(quant(overflow="SAT"), [5.0, -5.0, 3.9], [3.75, -4.0, 3.75])
        self.check(quant(overflow="SAT_SYM"), [5.0, -5.0], [3.75, -3.75])
        self.check(quant(overflow="SAT", k=0), [-1.0, 9.0], [0.0, 3.75])
        self.check(quant(overflow="sat_sym", rnd="rnd"), [-9.0], [-3.75])  # case-insensitive

    def test_narrow_and_pruned(self):
        # i=-3 f=4: [-0.125, 0.125) on 1/16, modulo 0.25.
        self.check(quant(i=-3, f=4), [0.1, 0.2], [0.0625, -0.0625])
        self.check(quant(i=-3, f=2), [1.3, -7.0], [0.0, 0.0])  # k + i + f = 0: pruned
        self.check(quant(k=0, i=0, f=0), [3.0], [0.0])

    def test_kbi_and_stored_widths(self):
        self.check(quant("kbi", b=3, i=1), [1.3, 2.2], [1.25, -2.0])  # f = b − i = 2
        # round half to even of the stored widths: i 2.5 -> 2, f 1.5 -> 2, b 3.5 -> 4
        self.check(quant(i=2.5, f=1.5), [4.1], [-4.0])
        self.check(quant("kbi", b=3.5, i=1.5), [1.3], [1.25])

    def test_weight_branches(self):
        """The Keras-side WRAP branch of trainable weight quantizers rounds only."""
        q = quant(place="weight", is_weight=True, rnd="TRN")
        self.assertTrue(q.round_only)
        self.assertEqual(q.weight(np.array([[5.3]], f32)).item(), 5.25)  # no wrap
        self.assertEqual(act(q, [5.3]), [5.25])
        pruned = quant(place="weight", is_weight=True, i=-3, f=2)
        self.assertEqual(pruned.weight(np.array([[1.3]], f32)).item(), 1.25)  # no pruning
        self.assertFalse(quant("kbi", b=3, i=1, place="weight", is_weight=True,
                               rnd="TRN").round_only)  # KBI: only when RND
        self.assertTrue(quant("kbi", b=3, i=1, place="weight", is_weight=True,
                              rnd="RND").round_only)
        self.assertTrue(quant("kbi", b=3, i=1, place="weight", is_weight=True,
                              rnd="S_RND").round_only)
        self.assertFalse(quant(place="weight", is_weight=True, trainable=False).round_only)
        self.assertFalse(quant(place="weight", is_weight=True, overflow="SAT").round_only)

    def test_scaler_affine_sugar(self):
        q = quant(rnd="TRN", scaler=0.25)
        self.assertEqual(act(q, [0.9, 1.3]), [0.875, -0.75])  # Q(3.6) = 3.5, Q(5.2) = -3
        q = quant(overflow="SAT", rnd="RND", affine=(0.5, -0.25))
        self.assertEqual(act(q, [1.3, 9.0]), [0.375, 1.625])
        hs = hm.hard_sigmoid(hm.Gen("x"), (1, 1))
        hs.f[...] = 2
        q = ho.Quantizer(hs.config(), hs.obj("praq", hc.Names(), ""), "praq")
        self.assertEqual((q.overflow, q.affine), ("SAT", (0.25, 0.5)))
        self.assertEqual(act(q, [0.9, 3.0, -3.0]), [0.75, 0.9375, 0.0])
        self.assertNotIn("overflow_mode", hs.config()["config"])
        ht = hm.hard_tanh(hm.Gen("x"), (1, 1))
        self.assertEqual(ho.Quantizer(ht.config(), ht.obj("paq", hc.Names(), ""), "p")
                         .overflow, "SAT")

    def test_refusals(self):
        for q_type in ("float", "dummy"):
            q = hc.Quant(q_type, "weight", float_state=(np.zeros(1), np.zeros(1), np.zeros(1)))
            with self.assertRaises(ho.OracleError):
                ho.Quantizer(q.config(), q.obj("q", hc.Names(), ""), "t")
        q = hc.Quant("kif", "datalane", "RND", "WRAP_SM", k=np.ones(1, np.uint8),
                     i=np.ones(1, np.float32), f=np.ones(1, np.float32))
        with self.assertRaises(ho.OracleError):
            ho.Quantizer(q.config(), q.obj("q", hc.Names(), ""), "t")

    def test_ambiguity(self):
        """A table value at a rounding boundary is ambiguous, a short dyadic one is not."""
        q = quant(overflow="SAT", rnd="TRN", f=3)
        ctx = ho.Ctx(3)
        v = np.array([[0.5], [0.3], [math.tanh(0.2553)]])
        # 0.5 exact (both evaluations agree on a short dyadic): not ambiguous
        t = ho.table(v, np.float32(v), True)
        q.act(ctx, t)
        self.assertEqual(ctx.ambiguous.tolist(), [False, False, False])
        # a value within the margin below 0.25 (a TRN boundary on 1/8)
        near = np.array([[0.25 - 2e-8], [0.3], [0.25 + 0.01]])
        ctx = ho.Ctx(3)
        q.act(ctx, ho.table(near, np.float32(near), True))
        self.assertEqual(ctx.ambiguous.tolist(), [True, False, False])
        # a rational function: only a float32 rounding across the boundary is ambiguous
        ctx = ho.Ctx(3)
        q.act(ctx, ho.table(near, np.float32(near), False))
        self.assertEqual(ctx.ambiguous.tolist(), [False, False, False])
        closer = np.array([[0.25 - 1e-9], [0.3], [0.25]])  # float32 rounds the first to 0.25
        ctx = ho.Ctx(3)
        q.act(ctx, ho.table(closer, np.float32(closer), False))
        self.assertEqual(ctx.ambiguous.tolist(), [True, False, False])


def int_formulation(w, k, i, f, overflow, rnd):
    """Q of float64 values in integers (n = x·2^f), a second formulation."""
    n = np.ldexp(np.asarray(w, np.float64), f.astype(np.int64))
    n = {"TRN": np.floor(n), "RND": np.floor(n + 0.5), "RND_CONV": np.round(n)}[rnd]
    n = n.astype(np.int64)
    i2 = np.maximum(i, -f).astype(np.int64)
    k = k.astype(np.int64)
    if overflow == "WRAP":
        width = i2 + k + f.astype(np.int64)
        half = np.where(k > 0, 2 ** np.maximum(width - 1, 0), 0)
        n = np.mod(n + half, 2 ** width) - half
    else:
        top = 2 ** (i2 + f.astype(np.int64)) - 1
        low = -k * (top + 1) if overflow == "SAT" else -k * top
        n = np.clip(n, low, top)
    return np.where(k + i + f > 0, np.ldexp(n.astype(np.float64), -f.astype(np.int64)), 0.0)


class WeightPath(unittest.TestCase):
    def test_against_integers(self):
        gen = hm.Gen("weights")
        w = gen.floats((40, 30), 2.0)
        for q_type in ("kif", "kbi"):
            for overflow in ("WRAP", "SAT", "SAT_SYM"):
                for rnd in ("TRN", "RND", "RND_CONV"):
                    for trainable in (True, False):
                        spec = gen.quant(w.shape, q_type, "weight", overflow, rnd,
                                         is_weight=True, trainable=trainable)
                        q = ho.Quantizer(spec.config(), spec.obj("kq", hc.Names(), ""), "kq")
                        k, i, f = spec.kif()
                        if q.round_only:  # rounding alone: a signed range that never clips
                            expect = int_formulation(w, np.ones_like(k), i + 40, f, "SAT",
                                                     rnd)
                        else:
                            expect = int_formulation(w, k, i, f, overflow, rnd)
                        got = q.weight(w).astype(np.float64)
                        self.assertTrue(np.array_equal(got, expect),
                                        (q_type, overflow, rnd, trainable))

    def test_non_dyadic_scaler(self):
        """x/s and Q·s in float32 = the float64 steps rounded to float32 (innocuous double
        rounding for × and /)."""
        gen = hm.Gen("scaler")
        w = gen.floats((50,), 1.0)
        spec = gen.quant((50,), "kif", "weight", "SAT", "RND", scaler=0.75)
        q = ho.Quantizer(spec.config(), spec.obj("kq", hc.Names(), ""), "kq")
        k, i, f = spec.kif()
        scaled = (w.astype(np.float64) / np.float64(f32(0.75))).astype(f32)
        expect = (int_formulation(scaled, k, i, f, "SAT", "RND") * np.float64(f32(0.75)))
        self.assertTrue(np.array_equal(q.weight(w), expect.astype(f32)))

    def test_folds(self):
        """The batch-norm folds against float64 steps rounded to float32."""
        gen = hm.Gen("folds")

        def r(v):
            return np.asarray(v, np.float64).astype(f32).astype(np.float64)

        gamma, var = gen.floats((6,)) + 1, gen.variances((6,))
        mean, beta = gen.floats((6,)), gen.floats((6,))
        kernel, bias = gen.floats((4, 6)), gen.floats((6,))
        g64, v64, m64, b64 = (x.astype(np.float64) for x in (gamma, var, mean, beta))
        s = r(g64 / r(np.sqrt(r(v64 + r(1e-7)))))
        k_ref = r(kernel.astype(np.float64) * s)
        b_ref = r(bias.astype(np.float64) + r(-m64 * s))
        k, b = ho.einsum_batchnorm_fold({"kernel": kernel, "bias": bias, "gamma": gamma,
                                         "moving_mean": mean, "moving_variance": var},
                                        {"equation": "bc,cC->bC", "bias_axes": "C"})
        self.assertTrue(np.array_equal(k, k_ref) and np.array_equal(b, b_ref))
        s = r(g64 / r(np.sqrt(r(v64 + r(0.001)))))
        o_ref = r(1.0 - r(m64 * s))  # center=False: beta = 1 (HGQ2's code)
        sc, off = ho.batchnorm_fold({"bn_gamma": gamma, "moving_mean": mean,
                                     "moving_variance": var},
                                    {"scale": True, "center": False, "epsilon": 0.001})
        self.assertTrue(np.array_equal(sc, s) and np.array_equal(off, o_ref))
        k2 = gen.coarse((6, 3))
        m2 = gen.coarse((6,), 0.25, 1.0)
        s2 = r(g64 / r(np.sqrt(r(v64 + r(0.001)))))
        kk, bb = ho.batchnorm_dense_fold({"kernel": k2, "bias": bias[:3], "bn_gamma": gamma,
                                          "moving_mean": m2, "moving_variance": var},
                                         {"scale": True, "epsilon": 0.001})
        self.assertTrue(np.array_equal(kk, r(s2[:, None] * k2.astype(np.float64))))
        self.assertTrue(np.array_equal(bb, r(bias[:3].astype(np.float64) -
                                             m2.astype(np.float64) @ k2.astype(np.float64))))
        with self.assertRaises(ho.OracleError):  # an order-dependent float32 dot is refused
            ho.batchnorm_dense_fold({"kernel": gen.floats((6, 3)), "bias": bias[:3],
                                     "bn_gamma": gamma, "moving_mean": mean,
                                     "moving_variance": var}, {"scale": True, "epsilon": 0.001})


FIXTURE_BUILDERS = (("hgq2_randmat_64x64_bw8.keras", tk.randmat_model),
                    ("hgq2_jsc_16-64-32-32-5.keras", tk.jsc_model))


class Fixtures(unittest.TestCase):
    def test_oracle_equals_independent_evaluation(self):
        for name, build in FIXTURE_BUILDERS:
            path = os.path.join(FIXTURES, name)
            model = fe.FixtureModel(path)
            x = model.sample_inputs()
            y, amb = ho.evaluate(build(tk.Fixture(path)), [x])
            self.assertFalse(amb.any())
            self.assertTrue(np.array_equal(y[0], model.predict(x)), name)

    def test_documented_behaviour(self):
        # randmat: a 64x64 matrix on the 2^-8 grid in [0, 1): the unsigned SAT_SYM kq with
        # f=8 keeps it exactly (HGQ2's "bw8"), and the WRAP iq repeats every 2^(i+1).
        model = fe.FixtureModel(os.path.join(FIXTURES, "hgq2_randmat_64x64_bw8.keras"))
        kn, kf = model.layers[0]["kernel"]
        raw = model.h5["layers/q_dense/vars/0"][()]
        self.assertTrue(np.array_equal(np.ldexp(kn.astype(np.float64), -kf), raw))
        self.assertTrue((raw >= 0).all() and (raw <= 1 - 2 ** -8).all())
        x = model.sample_inputs(200)
        _, i, _ = model.input_format()
        self.assertTrue(np.array_equal(model.predict(x), model.predict(x + 2.0 ** (i + 1))))
        # jsc: pruned kernel elements (k + i + f <= 0) are zero; ReLU outputs of the hidden
        # layers; Keras' epsilon 1e-7 in the fold, not the layer's 1e-3, matters here.
        jsc = fe.FixtureModel(os.path.join(FIXTURES, "hgq2_jsc_16-64-32-32-5.keras"))
        q = fe.IntQuantizer(jsc.h5, "layers/q_einsum_dense_batchnorm/kq",
                            jsc.config["config"]["layers"][1]["config"]["kq_conf"])
        pruned = (q.k + q.i + q.f) <= 0
        self.assertGreater(pruned.sum(), 100)
        self.assertTrue((jsc.layers[0]["kernel"][0][pruned] == 0).all())
        w = {n: jsc.h5[f"layers/q_einsum_dense_batchnorm/vars/{j}"][()] for j, n in
             enumerate(["kernel", "bias", "gamma", "beta", "ebops", "moving_mean",
                        "moving_variance"])}
        k7, _ = ho.einsum_batchnorm_fold(w, {"equation": "bc,cC->bC", "bias_axes": "C"})
        s3 = w["gamma"] / np.sqrt(w["moving_variance"] + f32(1e-3))
        self.assertFalse(np.array_equal(q(k7), q(w["kernel"] * s3[None, :])))


class Models(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cases = hm.cases()
        cls.broken = hm.broken_cases()

    def test_every_class_covered(self):
        spec = ["Quantizer", "QDense", "QBatchNormDense", "QEinsumDense",
                "QEinsumDenseBatchnorm", "QConv1D", "QConv2D", "QConv3D", "QBatchNormalization",
                "QAdd", "QSubtract", "QMultiply", "QMaximum", "QMinimum", "QAveragePow2",
                "QEinsum", "QDot", "QSum", "QMeanPow2", "QUnaryFunctionLUT",
                "QAffinedUnaryFunctionLUT", "QSoftmax", "QDenseT", "QEinsumDenseT", "QConvT1D",
                "QConvT2D", "QMultiHeadAttention", "QMultiHeadAttentionT",
                "QLinformerAttention", "QLinformerAttentionT", "QSALTAttention", "QSimpleRNN",
                "QGRU", "QSimpleSNN", "QLIF"]
        spec += [f"Q{p}{d}" for p in ("AveragePooling", "MaxPooling", "GlobalAveragePooling",
                                      "GlobalMaxPooling") for d in ("1D", "2D", "3D")]
        covered = hm.covered_classes(self.cases)
        self.assertEqual(sorted(set(spec) - set(covered)), [])
        self.assertEqual(sorted(set(spec)), sorted(hm.ALL_CLASSES))
        grids = {tuple(c.name[7:-1].split(",")) for c in self.cases
                 if c.name.startswith("QDense[")}
        self.assertTrue(set(hm.GRID) <= grids, "HGQ2's grid on QDense")

    def test_models_md_current(self):
        with open(os.path.join(HERE, "MODELS.md")) as f:
            self.assertEqual(f.read(), hm.table(), "regenerate MODELS.md")

    def test_files_hold_every_quantizer(self):
        with tempfile.TemporaryDirectory() as tmp:
            for case in self.cases:
                files = hm.write_forms(case, tmp)
                with zipfile.ZipFile(files["keras"][0]) as z:
                    config = json.loads(z.read("config.json"))
                    h5 = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
                check_layout(self, case, config, h5)
                if "keras3_h5" in files:
                    with h5py.File(files["keras3_h5"][0], "r") as f:
                        names = [n.decode() if isinstance(n, bytes) else n
                                 for n in f["model_weights"].attrs["layer_names"]]
                        self.assertTrue(any(n.startswith("q_") for n in names))

    def test_broken_models_are_broken(self):
        with tempfile.TemporaryDirectory() as tmp:
            for case in self.broken:
                path = hm.write_forms(case, tmp)["keras"][0]
                with zipfile.ZipFile(path) as z:
                    config = json.loads(z.read("config.json"))
                    h5 = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
                with self.assertRaises(Exception, msg=case.name):
                    check_layout(self, case, config, h5, strict=True)

    def test_oracle_runs_every_model(self):
        """Every model evaluates; every layer output fits float32's 24-bit significand, so
        Keras' float32 predict computes exactly the oracle's values (tables aside)."""
        for case in self.cases:
            datas = case.data(64)
            ctx = ho.Ctx(64)
            outs, _ = ho.evaluate(case.model, datas, ctx)
            self.assertTrue(all(np.isfinite(o).all() for o in outs), case.name)
            self.assertLess(case.dropped, 64, case.name)
            self.assertLessEqual(ctx.max_bits, 24, case.name)


QUANT_KEYS = ("iq", "kq", "bq", "oq")
VAR_ORDER = {("kif", False): ["i", "f", "k"], ("kif", True): ["f", "k", "i", "i_decay_speed"],
             ("kbi", False): ["b", "i", "k"], ("kbi", True): ["b", "k", "i", "i_decay_speed"]}


def check_quantizer_group(test, h5, group, conf, strict):
    """One quantizer at `group` as frontends.md §7.2 lays it out for its config."""
    c = conf["config"]
    q_type = c["q_type"]
    if q_type not in ("kif", "kbi"):
        raise ValueError(f"{group}: {q_type} quantizer")
    overflow = "SAT" if conf["class_name"] in ho.SUGAR_CONFIGS else c["overflow_mode"].upper()
    if overflow not in ("WRAP", "SAT", "SAT_SYM"):
        raise ValueError(f"{group}: overflow {overflow}")
    if c["round_mode"].upper().replace("S_", "") not in ho.ROUND_MODES:
        raise ValueError(f"{group}: round {c['round_mode']}")
    names = VAR_ORDER[(q_type, overflow == "WRAP")]
    vars_group = h5[f"{group}/quantizer/vars"]
    test.assertIn("name", vars_group.attrs)
    if len(vars_group) != len(names):
        raise ValueError(f"{group}: {len(vars_group)} variables")
    data = {n: vars_group[str(j)] for j, n in enumerate(names)}
    if data["k"].dtype != np.uint8 or data["k"].shape != data["i"].shape:
        raise ValueError(f"{group}: k {data['k'].dtype} {data['k'].shape}")
    for n in names:
        if n != "k" and data[n].dtype != np.float32:
            raise ValueError(f"{group}/{n}: {data[n].dtype}")


def check_layout(test, case, config, h5, strict=False):
    """Every enabled quantizer of every single-input HGQ2 layer and every iq list."""
    counts = {}
    for entry in config["config"]["layers"]:
        cls = entry["class_name"]
        slot = kg_slot(counts, cls)
        if not entry["module"].startswith("hgq."):
            continue
        if entry["module"] == "hgq.layers.core.foo":
            raise ValueError("unknown class")
        cfg = entry["config"]
        base = f"layers/{slot}"
        test.assertEqual(h5[f"{base}/vars"].attrs["name"], cfg["name"])
        if cls == "Quantizer":
            check_quantizer_group(test, h5, base, cfg["config"], strict)
            continue
        for key in QUANT_KEYS:
            conf = cfg.get(f"{key}_conf")
            if conf is None or (key in ("iq", "oq") and not cfg.get(f"enable_{key}", True)):
                continue
            if cls in ("QSimpleRNN", "QGRU", "QSimpleSNN", "QLIF"):
                check_quantizer_group(test, h5, f"{base}/cell/{key}", conf, strict)
            else:
                check_quantizer_group(test, h5, f"{base}/{key}", conf, strict)
        if cfg.get("iq_confs"):
            for j, conf in enumerate(cfg["iq_confs"]):
                item = "quantizer" if j == 0 else f"quantizer_{j}"
                check_quantizer_group(test, h5, f"{base}/iq/quantizers/{item}", conf, strict)
        if cfg.get("enable_ebops") and cls not in ("QSimpleRNN", "QGRU", "QSimpleSNN", "QLIF"):
            ebops = [h5[f"{base}/vars/{n}"] for n in h5[f"{base}/vars"]
                     if h5[f"{base}/vars/{n}"].dtype == np.uint32]
            test.assertEqual([e.shape for e in ebops], [()], f"{case.name}: ebops")


def kg_slot(counts, cls):
    s = hm.kg.snake_case(cls)
    n = counts.get(s, 0)
    counts[s] = n + 1
    return s if n == 0 else f"{s}_{n}"


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=1)
