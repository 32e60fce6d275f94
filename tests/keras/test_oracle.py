#!/usr/bin/python3
"""Self-checks of the Keras oracle (oracle.py) that need no C code:

* hand-worked values: a 2x2 convolution, pools with 'same' padding, a depthwise convolution,
  a transposed convolution whose kernel is shorter than its stride, the §6.1 batch-norm fold,
  ReLU's Keras formula, the quantizer Q of frontends.md §3.1, the exactness guard;
* a second, independent oracle: torch's own conv / conv-transpose / pool / upsampling / unfold
  (float64) after moving Keras' channels-last layout and kernels to torch's, on random data;
* every model of models.py evaluates (exactly) and writes in every form it declares.

Usage: test_oracle.py (run by meson: suite python)
"""
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kerasgen as kg  # noqa: E402
import models as M  # noqa: E402
import oracle as O  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - Debian's python3-torch is a test dependency
    torch = None


def run(layer, *inputs, kwargs=None, options=None):
    """One layer on concrete inputs through the oracle (inputs have a batch axis)."""
    args = [list(inputs)] if len(inputs) > 1 else [inputs[0]]
    return O.apply_layer(layer, args, kwargs or {}, options or O.Options())[0]


def with_weights(layer, **values):
    for v in layer.vars:
        if v.name in values:
            v.value = np.asarray(values[v.name], np.float32)
    return layer


class HandWorked(unittest.TestCase):
    def test_conv2d_2x2(self):
        # x (3x3, one channel) = 1..9, kernel [[1, 0.5], [-1, 2]], bias 0.25, valid:
        # y[0,0] = 1 + 0.5*2 - 4 + 2*5 + 0.25 = 8.25, y[0,1] = 2 + 1.5 - 5 + 12 + .25 = 10.75,
        # y[1,0] = 4 + 2.5 - 7 + 16 + .25 = 15.75, y[1,1] = 5 + 3 - 8 + 18 + .25 = 18.25.
        layer = M.make_layer("Conv2D", "c", M.conv_cfg(2, 1, 2), [("kernel", (2, 2, 1, 1)),
                                                                 ("bias", (1,))])
        with_weights(layer, kernel=np.array([[1, 0.5], [-1, 2]]).reshape(2, 2, 1, 1),
                     bias=[0.25])
        x = np.arange(1, 10, dtype=float).reshape(1, 3, 3, 1)
        y = run(layer, x)
        np.testing.assert_array_equal(y[0, :, :, 0], [[8.25, 10.75], [15.75, 18.25]])

    def test_conv2d_same_groups(self):
        # 'same' with k=2, s=1 pads (0, 1): the last row/column sees zeros. Groups 2: output
        # channel 0 reads input channel 0 only, output 1 reads input 1 only.
        layer = M.make_layer("Conv2D", "c", M.conv_cfg(2, 2, 2, padding="same", groups=2,
                                                       use_bias=False), [("kernel", (2, 2, 1, 2))])
        k = np.zeros((2, 2, 1, 2))
        k[:, :, 0, 0] = [[1, 0], [0, 0]]     # out 0: x[i, j] of channel 0
        k[:, :, 0, 1] = [[0, 0], [0, 1]]     # out 1: x[i+1, j+1] of channel 1
        with_weights(layer, kernel=k)
        x = np.zeros((1, 2, 2, 2))
        x[0, :, :, 0] = [[1, 2], [3, 4]]
        x[0, :, :, 1] = [[5, 6], [7, 8]]
        y = run(layer, x)
        np.testing.assert_array_equal(y[0, :, :, 0], [[1, 2], [3, 4]])
        np.testing.assert_array_equal(y[0, :, :, 1], [[8, 0], [0, 0]])

    def test_pools_same_padding(self):
        x = np.array([1.0, -2.0, 3.0, 0.5, -1.0]).reshape(1, 5, 1)
        # pool 2, stride 2, 'same': out 3, total pad 1 after; windows [1,-2], [3,.5], [-1].
        mx = M.make_layer("MaxPooling1D", "m", M.pool_cfg(1, 2, padding="same"))
        np.testing.assert_array_equal(run(mx, x).ravel(), [1.0, 3.0, -1.0])
        av = M.make_layer("AveragePooling1D", "a", M.pool_cfg(1, 2, padding="same"))
        # The padded position is left out of the count (TF semantics): the last mean is -1/1.
        np.testing.assert_array_equal(run(av, x).ravel(), [-0.5, 1.75, -1.0])
        # pool 3, stride 1, 'same': pads (1, 1); counts 2, 3, 3, 3, 2.
        av3 = M.make_layer("AveragePooling1D", "a3", M.pool_cfg(1, 3, strides=1, padding="same"))
        y = run(av3, x)
        self.assertIsInstance(y, O.Rounded)  # a product with float64(1/3)
        expect = [(1 - 2) * 0.5, 2 * (1 / 3), 1.5 * (1 / 3), 2.5 * (1 / 3), -0.5 * 0.5]
        np.testing.assert_array_equal(y.ravel(), expect)
        # Max 'same' never takes the padding: all-negative input keeps its values.
        mx3 = M.make_layer("MaxPooling1D", "m3", M.pool_cfg(1, 3, strides=1, padding="same"))
        np.testing.assert_array_equal(run(mx3, -np.abs(x)).ravel(), [-1, -1, -0.5, -0.5, -0.5])

    def test_depthwise(self):
        # 2 channels, depth multiplier 2, kernel 2 (1D): out channel c*2+m = sum_t x[t,c] k[t,c,m].
        layer = M.make_layer("DepthwiseConv1D", "d", M.depthwise_cfg(1, 2, depth_multiplier=2,
                                                                     use_bias=False),
                             [("kernel", (2, 2, 2))])
        k = np.array([[[1, 2], [3, 4]], [[0.5, -1], [0, 0.25]]])  # [t, c, m]
        with_weights(layer, kernel=k)
        x = np.array([[2.0, -4.0], [1.0, 8.0]]).reshape(1, 2, 2)  # [t, c]
        y = run(layer, x).ravel()
        # c0 m0: 2*1 + 1*0.5 = 2.5; c0 m1: 2*2 + 1*-1 = 3; c1 m0: -4*3 + 8*0 = -12;
        # c1 m1: -4*4 + 8*0.25 = -14.
        np.testing.assert_array_equal(y, [2.5, 3.0, -12.0, -14.0])

    def test_conv_transpose_short_kernel(self):
        # k=2 < s=3, 'valid': Keras gives n*s outputs; x[l] lands at 3l, 3l+1; 3l+2 is bias only.
        layer = M.make_layer("Conv1DTranspose", "t", M.conv_transpose_cfg(1, 1, 2, strides=3),
                             [("kernel", (2, 1, 1)), ("bias", (1,))])
        with_weights(layer, kernel=np.array([1.0, -2.0]).reshape(2, 1, 1), bias=[0.5])
        y = run(layer, np.array([1.0, 4.0]).reshape(1, 2, 1)).ravel()
        np.testing.assert_array_equal(y, [1.5, -1.5, 0.5, 4.5, -7.5, 0.5])
        self.assertEqual(O.conv_transpose_geometry(2, 2, 3, 1, "same", None), (6, 0))
        self.assertEqual(O.conv_transpose_geometry(4, 3, 2, 1, "same", None), (8, 0))
        self.assertEqual(O.conv_transpose_geometry(4, 3, 1, 1, "same", None), (4, 1))
        self.assertEqual(O.conv_transpose_geometry(4, 3, 2, 1, "valid", None), (9, 0))

    def test_batchnorm_fold(self):
        scale, offset = O.bn_fold([0.25], [0.5], [0.25], [0.0625], 0.0)
        self.assertEqual((scale[0], offset[0]), (1.0, 0.25))
        self.assertEqual(scale.dtype, np.float32)
        # eps added in float32: 1 + 1e-3 is rounded to float32 before the square root.
        s, _ = O.bn_fold([1.0], [0.0], [0.0], [1.0], 1e-3)
        self.assertEqual(s[0], np.float32(1) / np.sqrt(np.float32(1) + np.float32(1e-3)))

    def test_keras_relu(self):
        x = np.array([-2.0, -0.5, 0.0, 0.5, 1.0, 3.0, 7.0])
        np.testing.assert_array_equal(O.keras_relu(x), [0, 0, 0, 0.5, 1, 3, 7])
        np.testing.assert_array_equal(O.keras_relu(x, 0.25), [-0.5, -0.125, 0, 0.5, 1, 3, 7])
        np.testing.assert_array_equal(O.keras_relu(x, max_value=6.0), [0, 0, 0, 0.5, 1, 3, 6])
        # threshold 1: x <= 1 gives 0 (Keras uses x > threshold), slope applies to x - 1.
        np.testing.assert_array_equal(O.keras_relu(x, threshold=1.0), [0, 0, 0, 0, 0, 3, 7])
        np.testing.assert_array_equal(O.keras_relu(x, 0.5, 4.0, 1.0),
                                      [-1.5, -0.75, -0.5, -0.25, 0, 3, 4])

    def test_quantizer(self):
        x = np.array([-9.0, -8.0, -3.3, 0.26, 3.74, 7.5, 9.0])
        np.testing.assert_array_equal(O.quantize(x, 1, 2, 1, "SAT", "TRN"),
                                      [-4, -4, -3.5, 0, 3.5, 3.5, 3.5])
        np.testing.assert_array_equal(O.quantize(x, 1, 2, 1, "SAT_SYM", "RND"),
                                      [-3.5, -3.5, -3.5, 0.5, 3.5, 3.5, 3.5])
        # WRAP into [-4, 4): 7.5 -> -0.5, 9 -> 1, -9 -> -1.
        np.testing.assert_array_equal(O.quantize(x, 1, 2, 1, "WRAP", "TRN"),
                                      [-1, 0, -3.5, 0, 3.5, -0.5, 1])
        np.testing.assert_array_equal(O.quantize([0.25, 0.75, -0.25], 1, 2, 1, "WRAP",
                                                 "RND_CONV"), [0, 1, 0])
        np.testing.assert_array_equal(O.quantize(x, 0, 0, 0, "SAT", "RND"), np.zeros(7))

    def test_exactness_guard(self):
        big = np.array([2.0 ** 52, 1.0])
        O.ex_sum(np.array([[2.0 ** 51, 1.0]]), -1)
        with self.assertRaises(O.OracleError):
            O.ex_sum(big[None] * 2, -1)  # 2^53 + 2 needs 54 bits on the unit grid
        with self.assertRaises(O.OracleError):
            O.ex_mul(np.array([1 + 2.0 ** -30]), np.array([1 + 2.0 ** -30]))
        self.assertEqual(O.frac_bits(np.array([0.75, 3.0, 0.0])), 2)
        self.assertEqual(O.frac_bits(np.array([np.float32(0.1)])), 27)

    def test_pending_must_be_quantized(self):
        t = O.activation("tanh", np.array([[0.5]]), "t")
        self.assertIsInstance(t, O.Pending)
        with self.assertRaises(O.OracleError):
            O.activation("relu", t, "r")
        with self.assertRaises(O.OracleError):
            O.activation("softmax", np.array([[0.5]]), "s")


def _nhwc_to_nchw(x):
    return np.moveaxis(x, -1, 1)


@unittest.skipIf(torch is None, "python3-torch not available")
class AgainstTorch(unittest.TestCase):
    """The oracle's Keras layers against torch's own forward pass (float64)."""

    def setUp(self):
        self.rng = np.random.default_rng(5)

    def q(self, shape):
        return np.round(self.rng.standard_normal(shape) * 4) / 4

    def t(self, a):
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))

    def test_conv(self):
        fns = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
        cases = [(1, (9,), 3, 2, 3, 1, 1, 1, "valid"), (1, (9,), 4, 4, 3, 2, 2, 2, "same"),
                 (2, (7, 6), 4, 6, (3, 2), (2, 1), (1, 2), 2, "same"),
                 (2, (6, 6), 6, 3, 3, 1, 1, 3, "valid"), (3, (4, 5, 4), 2, 4, 2, 1, 1, 1, "same")]
        for rank, spatial, cin, cout, k, s, d, g, padding in cases:
            ks = M._nd(k, rank)
            layer = M.make_layer(f"Conv{rank}D", "c", M.conv_cfg(
                rank, cout, k, strides=s, padding=padding, dilation_rate=d, groups=g),
                [("kernel", tuple(ks) + (cin // g, cout)), ("bias", (cout,))])
            kernel, bias = self.q(tuple(ks) + (cin // g, cout)), self.q((cout,))
            with_weights(layer, kernel=kernel, bias=bias)
            x = self.q((3,) + spatial + (cin,))
            y = run(layer, x)
            # torch: pad explicitly with Keras' (TF) 'same' split, then a valid convolution.
            pads = O._pads(padding, spatial, ks, M._nd(s, rank), M._nd(d, rank))
            xt = F.pad(self.t(_nhwc_to_nchw(x)), [p for pr in reversed(pads) for p in pr])
            wt = self.t(np.moveaxis(kernel, (-1, -2), (0, 1)))
            yt = fns[rank](xt, wt, self.t(bias), stride=M._nd(s, rank), dilation=M._nd(d, rank),
                           groups=g).numpy()
            np.testing.assert_array_equal(y, np.moveaxis(yt, 1, -1), str((rank, spatial, k)))

    def test_depthwise(self):
        for rank, spatial, cin, dm, k, s, padding in [(2, (6, 5), 3, 2, 3, 2, "same"),
                                                      (1, (8,), 2, 3, 2, 1, "valid")]:
            ks = M._nd(k, rank)
            layer = M.make_layer(f"DepthwiseConv{rank}D", "d", M.depthwise_cfg(
                rank, k, strides=s, padding=padding, depth_multiplier=dm),
                [("kernel", tuple(ks) + (cin, dm)), ("bias", (cin * dm,))])
            kernel, bias = self.q(tuple(ks) + (cin, dm)), self.q((cin * dm,))
            with_weights(layer, kernel=kernel, bias=bias)
            x = self.q((2,) + spatial + (cin,))
            y = run(layer, x)
            pads = O._pads(padding, spatial, ks, M._nd(s, rank), (1,) * rank)
            xt = F.pad(self.t(_nhwc_to_nchw(x)), [p for pr in reversed(pads) for p in pr])
            # torch groups=cin: output channel j reads input j // dm with kernel [.., j//dm, j%dm]
            wt = kernel.reshape(tuple(ks) + (cin * dm,))
            wt = self.t(np.moveaxis(wt, -1, 0)[:, None])
            fn = F.conv2d if rank == 2 else F.conv1d
            yt = fn(xt, wt, self.t(bias), stride=s, groups=cin).numpy()
            np.testing.assert_array_equal(y, np.moveaxis(yt, 1, -1))

    def test_conv_transpose(self):
        fns = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
        cases = [(1, (5,), 2, 3, 3, 2, 1, "same", None), (1, (5,), 2, 3, 2, 3, 1, "valid", None),
                 (1, (4,), 2, 2, 2, 3, 1, "same", None), (1, (4,), 1, 2, 3, 2, 1, "same", 1),
                 (1, (4,), 2, 2, 3, 2, 1, "valid", 1), (2, (3, 4), 3, 4, 3, 2, 1, "same", None),
                 (2, (3, 3), 2, 2, 2, 1, 2, "valid", None),
                 (2, (3, 3), 2, 3, 4, 2, 1, "same", None), (3, (2, 2, 2), 3, 4, 3, 2, 1, "same",
                                                             None)]
        for rank, spatial, cin, cout, k, s, d, padding, op in cases:
            layer = M.make_layer(f"Conv{rank}DTranspose", "t", M.conv_transpose_cfg(
                rank, cout, k, strides=s, padding=padding, dilation_rate=d, output_padding=op,
                with_output_padding=op is not None), [("kernel", (k,) * rank + (cout, cin)),
                                                      ("bias", (cout,))])
            kernel, bias = self.q((k,) * rank + (cout, cin)), self.q((cout,))
            with_weights(layer, kernel=kernel, bias=bias)
            x = self.q((2,) + spatial + (cin,))
            y = run(layer, x)
            # torch places x[l] * w[t] at l*s + t*d - padding like Keras with padding = b; its
            # length (n-1)s - 2b + d(k-1) + 1 may differ from Keras' (JAX padding rule): Keras'
            # extra tail positions receive no product (bias only), a shorter Keras output is
            # torch's cut.
            geo = [O.conv_transpose_geometry(n, k, s, d, padding, op) for n in spatial]
            wt = self.t(np.moveaxis(kernel, (-1, -2), (0, 1)))
            yt = np.moveaxis(fns[rank](self.t(_nhwc_to_nchw(x)), wt, self.t(bias), stride=s,
                                       padding=[b for _, b in geo], dilation=d).numpy(), 1, -1)
            common = tuple(slice(0, min(a, b)) for a, b in zip(y.shape[1:-1], yt.shape[1:-1]))
            where = str((rank, k, s, padding, op))
            np.testing.assert_array_equal(y[(slice(None),) + common],
                                          yt[(slice(None),) + common], where)
            tail = np.ones(y.shape[:-1], bool)
            tail[(slice(None),) + common] = False
            np.testing.assert_array_equal(y[tail], np.broadcast_to(bias, y[tail].shape), where)
            self.assertEqual([g[0] for g in geo], list(y.shape[1:-1]))

    def test_pools(self):
        x = self.q((2, 7, 6, 3))
        xt = self.t(_nhwc_to_nchw(x))
        mx = M.make_layer("MaxPooling2D", "m", M.pool_cfg(2, (3, 2), strides=(2, 1)))
        np.testing.assert_array_equal(run(mx, x), np.moveaxis(
            F.max_pool2d(xt, (3, 2), (2, 1)).numpy(), 1, -1))
        av = M.make_layer("AveragePooling2D", "a", M.pool_cfg(2, 2))
        np.testing.assert_array_equal(run(av, x), np.moveaxis(
            F.avg_pool2d(xt, 2).numpy(), 1, -1))
        # 'same' with k=3, s=1 pads (1, 1): torch's padding=1 excluding the padding from the
        # count, and max with -inf padding.
        mx3 = M.make_layer("MaxPooling2D", "m3", M.pool_cfg(2, 3, strides=1, padding="same"))
        np.testing.assert_array_equal(run(mx3, x), np.moveaxis(
            F.max_pool2d(xt, 3, 1, padding=1).numpy(), 1, -1))
        av3 = M.make_layer("AveragePooling2D", "a3", M.pool_cfg(2, 3, strides=1, padding="same"))
        ours, theirs = run(av3, x), np.moveaxis(F.avg_pool2d(
            xt, 3, 1, padding=1, count_include_pad=False).numpy(), 1, -1)
        # ours multiplies by float64(1/count) (§8.6), torch divides: equal within an ulp.
        np.testing.assert_allclose(ours, theirs, rtol=2 ** -51, atol=0)
        g = M.make_layer("GlobalAveragePooling2D", "g", {"data_format": "channels_last",
                                                         "keepdims": False})
        x4 = self.q((2, 4, 4, 3))
        np.testing.assert_array_equal(run(g, x4), F.adaptive_avg_pool2d(
            self.t(_nhwc_to_nchw(x4)), 1).numpy()[:, :, 0, 0])
        m3 = M.make_layer("MaxPooling3D", "m3d", M.pool_cfg(3, 2))
        x5 = self.q((2, 4, 4, 4, 2))
        np.testing.assert_array_equal(run(m3, x5), np.moveaxis(
            F.max_pool3d(self.t(np.moveaxis(x5, -1, 1)), 2).numpy(), 1, -1))

    def test_upsampling(self):
        x = self.q((2, 3, 4, 2))
        up = M.make_layer("UpSampling2D", "u", {"size": [2, 3], "data_format": "channels_last",
                                                "interpolation": "nearest"})
        np.testing.assert_array_equal(run(up, x), np.moveaxis(F.interpolate(
            self.t(_nhwc_to_nchw(x)), scale_factor=(2, 3), mode="nearest").numpy(), 1, -1))
        up3 = M.make_layer("UpSampling3D", "u3", {"size": [2, 1, 2],
                                                  "data_format": "channels_last"})
        x5 = self.q((1, 2, 3, 2, 2))
        np.testing.assert_array_equal(run(up3, x5), np.moveaxis(F.interpolate(
            self.t(np.moveaxis(x5, -1, 1)), scale_factor=(2, 1, 2), mode="nearest").numpy(),
            1, -1))

    def test_extract_patches(self):
        x = self.q((2, 5, 6, 3))
        op = kg.Layer("ExtractPatches", "e", {"size": [2, 3], "strides": [2, 1],
                                             "dilation_rate": 1, "padding": "valid",
                                             "data_format": None},
                      module="keras.src.ops.image", kind="op")
        y = O.apply_layer(op, [x], {}, O.Options())[0]
        cols = F.unfold(self.t(_nhwc_to_nchw(x)), (2, 3), stride=(2, 1)).numpy()
        # torch: (N, C*kh*kw, L) channel outermost; Keras: kernel position outermost.
        cols = cols.reshape(2, 3, 6, -1).transpose(0, 3, 2, 1).reshape(2, 2, 4, 18)
        np.testing.assert_array_equal(y, cols)


class EveryModel(unittest.TestCase):
    def test_models_evaluate_and_write(self):
        cases = M.cases()
        self.assertGreater(len(cases), 200)
        with tempfile.TemporaryDirectory() as tmp:
            for case in cases:
                outs = case.expected(case.data(64))
                for o in outs:
                    # batch first, or a reshape that keeps each sample contiguous (ops.reshape)
                    self.assertEqual(o.size % 64, 0, case.name)
                    self.assertFalse(isinstance(o, O.Pending), case.name)
                forms = M.write_forms(case, tmp)
                self.assertEqual(set(forms) == {"keras"}, not case.legacy, case.name)
            for case in M.broken_cases():
                M.write_forms(case, tmp)

    def test_every_handler_has_a_model(self):
        seen = set()

        def walk(model):
            for layer in model.layers if isinstance(model, kg.Sequential) else \
                    model.ordered_layers():
                seen.add((layer.module, layer.class_name))
                if isinstance(layer, kg._Model):
                    walk(layer)
        for case in M.cases():
            walk(case.model)
        self.assertEqual(sorted(set(O.HANDLERS) - seen), [])

    def test_models_md_is_current(self):
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "MODELS.md")) as f:
            self.assertEqual(f.read(), M.table(), "regenerate: models.py > MODELS.md")

    def test_configs_as_keras_writes_them(self):
        by_name = {c.name: c for c in M.cases()}
        cfg = kg.keras_config(by_name["Dense[bias]"].model)["config"]
        self.assertEqual(cfg["input_layers"], ["input_layer", 0, 0])  # keras.Model(x, y)
        dense = cfg["layers"][1]
        self.assertEqual(dense["build_config"], {"input_shape": [None, 8]})
        self.assertEqual(list(dense["config"])[:5], ["name", "trainable", "dtype", "units",
                                                     "activation"])
        relu = kg.keras_config(by_name["ReLU"].model)["config"]["layers"][1]
        self.assertNotIn("build_config", relu)  # built in its constructor
        gelu = kg.keras_config(by_name["Unary[Gelu]"].model)["config"]["layers"][1]
        self.assertEqual((gelu["module"], gelu["config"]), ("keras.src.ops.nn",
                                                            {"approximate": True}))
        self.assertEqual(gelu["registered_name"], "Gelu")
        drop = kg.keras_config(by_name["NoOp[Dropout]"].model)["config"]["layers"][1]
        self.assertEqual(drop["inbound_nodes"][0]["kwargs"], {"training": False})
        item = kg.keras_config(by_name["GetItem[slice]"].model)["config"]["layers"][1]
        self.assertEqual(item["inbound_nodes"][0]["args"][1][1],
                         {"class_name": "__slice__", "config": {"start": None, "stop": 4,
                                                                "step": None}})
        multi = kg.keras_config(by_name["MultiIO"].model)["config"]
        self.assertEqual(len(multi["output_layers"]), 3)
        nested = kg.keras_config(by_name["Nested"].model)["config"]
        inner = nested["layers"][1]["config"]["layers"]
        histories = [n["args"][0]["config"]["keras_history"] for n in inner[1]["inbound_nodes"]]
        self.assertEqual(histories, [["input_layer", 0, 0], ["functional", 1, 0]])


if __name__ == "__main__":
    unittest.main(verbosity=2)
