"""fixture_eval: an independent numpy evaluation of the two real HGQ2 files (issue 13, Done-when 2).

Reads ../shared/fixtures/keras/hgq2_*.keras with zipfile and h5py only: the layer list from
config.json, every weight from model.weights.h5 at the path and vars/N index that frontends.md
§7.2 gives (`layers/<slot>/vars/N`, `layers/<slot>/<kq|bq|iq|oq>/quantizer/vars/N` in the
quantizer's order), checking each dataset's dtype and shape and each `vars` group's `name`.
Nothing here comes from kerasgen descriptions or from hgq_oracle.py: the quantizer is
formulated in integers (a value on the grid 2^-f is the integer n = x·2^f; WRAP reduces n
modulo 2^(k+i'+f), SAT clamps n), layers accumulate int64 products, and only HGQ2's float32
batch-norm fold is computed in numpy float32 as HGQ2 computes it.

    model = FixtureModel(path); y = model.predict(x)   # x: (N, n_in) float64 on any grid
    model.input_format()                                # per-feature (k, i, f) of the first iq
    model.sample_inputs(n, seed)                        # the test inputs
"""

import io
import json
import re
import zipfile

import h5py
import numpy as np


class FixtureError(Exception):
    pass


def snake_case(name):
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def _round_half_even(v):
    return np.round(np.asarray(v, np.float64)).astype(np.int64)


class IntQuantizer:
    """A fixed-point quantizer read from `<group>/quantizer/vars` and its config."""

    ORDER = {("kif", False): ("i", "f", "k"), ("kif", True): ("f", "k", "i", "decay"),
             ("kbi", False): ("b", "i", "k"), ("kbi", True): ("b", "k", "i", "decay")}

    def __init__(self, h5, group, conf):
        c = conf["config"]
        self.q_type = c["q_type"]
        self.overflow = c["overflow_mode"].upper()
        self.round = c["round_mode"].upper()
        self.weight_branch = (self.overflow == "WRAP" and c["trainable"] and c["is_weight"] and
                              (self.q_type == "kif" or self.round == "RND"))
        names = self.ORDER[(self.q_type, self.overflow == "WRAP")]
        vars_group = h5[f"{group}/quantizer/vars"]
        if not vars_group.attrs["name"].startswith(f"fixed_point_quantizer_{self.q_type}"):
            raise FixtureError(f"{group}: unexpected quantizer {vars_group.attrs['name']}")
        if len(vars_group) != len(names):
            raise FixtureError(f"{group}: {len(vars_group)} variables, expected {names}")
        v = {n: vars_group[str(j)][()] for j, n in enumerate(names)}
        if v["k"].dtype != np.uint8 or v["k"].shape != v["i"].shape:
            raise FixtureError(f"{group}: k must be uint8 shaped like i")
        if "decay" in v and v["decay"].shape != ():
            raise FixtureError(f"{group}: i_decay_speed must be a scalar")
        self.k = v["k"].astype(np.int64)
        self.i = _round_half_even(v["i"])
        self.f = _round_half_even(v["f"]) if self.q_type == "kif" else \
            _round_half_even(v["b"]) - self.i

    def to_int(self, x):
        """(n, f): the quantized values as integers n on the grid 2^-f (f broadcast to x)."""
        x = np.asarray(x, np.float64)
        k, i, f = (np.broadcast_to(a, x.shape) for a in (self.k, self.i, self.f))
        scaled = np.ldexp(x, f)  # exact: a power-of-two scaling
        if self.round == "TRN":
            n = np.floor(scaled)
        elif self.round == "RND":
            n = np.floor(scaled + 0.5)
        elif self.round == "RND_CONV":
            n = np.round(scaled)
        else:
            raise FixtureError(f"round mode {self.round}")
        n = n.astype(np.int64)
        if self.weight_branch:
            return n, f
        i2 = np.maximum(i, -f)
        if self.overflow == "WRAP":
            width = i2 + k + f  # bits of n, sign included
            half = np.where(k > 0, np.left_shift(1, np.maximum(width - 1, 0)), 0)
            n = np.mod(n + half, np.left_shift(1, width)) - half
        else:
            top = np.left_shift(1, i2 + f) - 1
            low = -k * np.left_shift(1, i2 + f) if self.overflow == "SAT" else -k * top
            n = np.clip(n, low, top)
        return np.where(k + i + f > 0, n, 0), f

    def __call__(self, x):
        n, f = self.to_int(x)
        return np.ldexp(n.astype(np.float64), -f)


class FixtureModel:
    """One of the two fixtures as a chain of HGQ2 dense layers."""

    def __init__(self, path):
        with zipfile.ZipFile(path) as z:
            self.config = json.loads(z.read("config.json"))
            self.h5 = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
        top = self.config["config"]
        entries = [e for e in top["layers"] if e["class_name"] != "InputLayer"]
        counts = {}
        slots = []
        # Functional models list their InputLayer under layers/ too; Sequential ones do not.
        for e in top["layers"]:
            if e["class_name"] == "InputLayer" and self.config["class_name"] == "Sequential":
                continue
            s = snake_case(e["class_name"])
            n = counts.get(s, 0)
            counts[s] = n + 1
            slots.append((e, s if n == 0 else f"{s}_{n}"))
        self.layers = [self._layer(e, f"layers/{slot}") for e, slot in slots
                       if e["class_name"] != "InputLayer"]
        if len(self.layers) != len(entries):
            raise FixtureError("layer count")

    def _vars(self, group, names, name):
        g = self.h5[f"{group}/vars"]
        if g.attrs["name"] != name:
            raise FixtureError(f"{group}: vars name {g.attrs['name']!r}, expected {name!r}")
        if len(g) != len(names):
            raise FixtureError(f"{group}: {len(g)} variables, expected {names}")
        out = {}
        for j, n in enumerate(names):
            d = g[str(j)]
            want = np.uint32 if n == "ebops" else np.float32
            if d.dtype != want:
                raise FixtureError(f"{group}/vars/{j} ({n}): dtype {d.dtype}")
            out[n] = d[()]
        return out

    def _layer(self, entry, group):
        cfg, cls = entry["config"], entry["class_name"]
        if cls == "QDense":
            names = ["kernel"] + (["bias"] if cfg["use_bias"] else [])
        elif cls == "QEinsumDenseBatchnorm":
            names = ["kernel", "bias", "gamma"]
        else:
            raise FixtureError(f"{cls}: not in the fixtures")
        if cfg["enable_ebops"]:
            names += ["beta", "ebops"]
        if cls == "QEinsumDenseBatchnorm":
            names += ["moving_mean", "moving_variance"]
        w = self._vars(group, names, cfg["name"])
        q = {}
        for attr in ("iq", "kq", "bq", "oq"):
            conf = cfg.get(f"{attr}_conf")
            enabled = conf is not None and (attr not in ("iq", "oq") or cfg[f"enable_{attr}"])
            if enabled:
                q[attr] = IntQuantizer(self.h5, f"{group}/{attr}", conf)
        kernel, bias = w["kernel"], w.get("bias")
        if cls == "QEinsumDenseBatchnorm":
            if cfg["equation"] != "bc,cC->bC" or cfg["bias_axes"] != "C":
                raise FixtureError(f"{cfg['name']}: equation")
            # HGQ2: s = gamma / sqrt(var + epsilon()) with Keras' epsilon() = 1e-7, float32.
            s = w["gamma"] / np.sqrt(w["moving_variance"] + np.float32(1e-7))
            kernel = kernel * s[None, :]
            bias = bias + (-w["moving_mean"] * s)
        kn, kf = q["kq"].to_int(kernel)
        layer = {"name": cfg["name"], "iq": q.get("iq"), "oq": q.get("oq"),
                 "kernel": (kn, kf), "activation": cfg["activation"]}
        if bias is not None:
            layer["bias"] = q["bq"].to_int(bias)
        return layer

    def input_format(self):
        """(k, i, f) per input feature of the first layer's WRAP input quantizer."""
        q = self.layers[0]["iq"]
        return tuple(np.broadcast_to(a, q.k.shape).ravel() for a in (q.k, q.i, q.f))

    def sample_inputs(self, n=1000, seed=0):
        """Test inputs: per feature, uniform over 1.5 times the first quantizer's range (so
        that it wraps), on a grid 3 bits finer than its own."""
        k, i, f = self.input_format()
        rng = np.random.default_rng(seed)
        x = rng.uniform(-1.5, 1.5, (n, len(k))) * 2.0 ** i
        return np.round(x * 2.0 ** (f + 3)) / 2.0 ** (f + 3)

    def predict(self, x):
        x = np.asarray(x, np.float64)
        for layer in self.layers:
            x = self._dense(layer, x)
        return x

    @staticmethod
    def _dense(layer, x):
        xn, xf = layer["iq"].to_int(x)
        kn, kf = layer["kernel"]
        # Per element x·w = (xn·2^(F−xf))·(kn·2^(G−kf)) / 2^(F+G) on common exponents F, G.
        F, G = int(xf.max()), int(kf.max())
        xi = np.left_shift(xn, F - xf)
        ki = np.left_shift(kn, G - kf)
        acc = xi @ ki  # int64, exact
        shift = F + G
        if "bias" in layer:
            bn, bf = layer["bias"]
            top = max(shift, int(bf.max()))
            acc = np.left_shift(acc, top - shift) + np.left_shift(bn, top - bf)[None, :]
            shift = top
        if np.abs(acc).max() >= 2 ** 62:
            raise FixtureError("accumulator overflow")
        y = np.ldexp(acc.astype(np.float64), -shift)
        if layer["activation"] == "relu":
            y = np.maximum(y, 0.0)
        elif layer["activation"] != "linear":
            raise FixtureError(f"activation {layer['activation']}")
        return y
