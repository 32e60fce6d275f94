#!/usr/bin/env python3
"""kerasgen against the real files: the two HGQ2 models in ../shared/fixtures/keras (saved by
Keras 3.9 and 3.10) are described by hand with kerasgen, from their layer configs and weight
values, and written again; the archive, config.json, metadata.json and model.weights.h5 must
match the originals (every group, attribute, dataset path, dtype, shape and value). Only the
layout knowledge is ours (slots, vars/N order, sub-object paths); the names and numbers come
from the fixtures. Usage: test_kerasgen.py [FIXTURES_DIR]
"""
import io
import json
import os
import sys
import tempfile
import zipfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kerasgen as kg  # noqa: E402


def fixtures_dir():
    if len(sys.argv) > 1:
        return sys.argv[1]
    return os.path.join(os.environ.get("ALK_FIXTURES", "../shared/fixtures"))


class Fixture:
    """A .keras fixture opened with zipfile and h5py."""

    def __init__(self, path):
        self.zip = zipfile.ZipFile(path)
        self.config = json.loads(self.zip.read("config.json"))
        self.metadata = json.loads(self.zip.read("metadata.json"))
        self.h5 = h5py.File(io.BytesIO(self.zip.read("model.weights.h5")), "r")

    def vars(self, group):
        g = self.h5[group]
        return [g[str(i)][()] for i in range(len(g))]

    def name(self, group):
        return self.h5[group].attrs["name"]


def quantizer(fx, path, kind, wrap):
    """An HGQ2 `Quantizer` at `path`, holding its internal fixed-point quantizer (spec §7.2:
    KIF non-WRAP i, f, k; KIF WRAP f, k, i, i_decay_speed; KBI b, i, k)."""
    inner_vars = fx.vars(f"{path}/quantizer/vars")
    if kind == "kif" and not wrap:
        names, trainable = ["i", "f", "k"], [True, True, False]
    elif kind == "kif":
        names, trainable = ["f", "k", "i", "i_decay_speed"], [True, False, True, False]
    else:
        names, trainable = ["b", "i", "k"], [True, True, False]
    inner = kg.Obj(f"FixedPointQuantizer{kind.upper()}", fx.name(f"{path}/quantizer/vars"),
                   vars=[kg.Var(n, v, t) for n, v, t in zip(names, inner_vars, trainable)])
    return kg.Obj("Quantizer", fx.name(f"{path}/vars"), children=[("quantizer", inner)])


def hgq_layer(fx, entry, slot, var_names, trainable):
    """An HGQ2 layer from its config entry and the weights at layers/<slot>."""
    cfg = dict(entry["config"])
    name = cfg.pop("name")
    for key in ("trainable", "dtype"):
        cfg.pop(key)
    path = f"layers/{slot}"
    children = []
    for attr in ("bq", "iq", "kq", "oq"):
        if f"{path}/{attr}" in fx.h5:
            conf = cfg[f"{attr}_conf"]["config"]
            wrap = conf["overflow_mode"].upper() == "WRAP"
            children.append((attr, quantizer(fx, f"{path}/{attr}", conf["q_type"], wrap)))
    values = fx.vars(f"{path}/vars")
    layer = kg.Layer(entry["class_name"], name, cfg, module=entry["module"],
                     registered_name=entry["registered_name"],
                     vars=[kg.Var(n, v, t) for n, v, t in zip(var_names, values, trainable)],
                     children=children)
    return layer


DENSE_VARS = (["kernel", "bias", "beta", "ebops"], [True, True, False, False])
DENSE_NOBIAS_VARS = (["kernel", "beta", "ebops"], [True, False, False])
EINSUM_BN_VARS = (["kernel", "bias", "gamma", "beta", "ebops", "moving_mean", "moving_variance"],
                  [True, True, True, False, False, False, False])


def randmat_model(fx):
    """hgq2_randmat_64x64_bw8: Functional(input 64) -> QDense(64, no bias)."""
    layers = fx.config["config"]["layers"]
    m = kg.Functional(fx.config["config"]["name"])
    x = m.input((64,), name=layers[0]["name"])
    dense = hgq_layer(fx, layers[1], "q_dense", *DENSE_NOBIAS_VARS)
    m.output(m.call(dense, x, out_shape=(64,)))
    return m


def jsc_model(fx):
    """hgq2_jsc_16-64-32-32-5: Sequential of three QEinsumDenseBatchnorm and a QDense."""
    entries = fx.config["config"]["layers"]
    slots = ["q_einsum_dense_batchnorm", "q_einsum_dense_batchnorm_1",
             "q_einsum_dense_batchnorm_2", "q_dense"]
    layers = []
    for entry, slot in zip(entries[1:], slots):
        var_spec = DENSE_VARS if slot == "q_dense" else EINSUM_BN_VARS
        layer = hgq_layer(fx, entry, slot, *var_spec)
        layer.out_shape = (entry["config"].get("units") or entry["config"]["output_shape"][0],)
        layers.append(layer)
    return kg.Sequential(fx.config["config"]["name"], (16,), layers,
                         input_name=entries[0]["config"]["name"])


def strip_shared_ids(value):
    """shared_object_id is a Python object id that Keras writes for shared configs."""
    if isinstance(value, dict):
        return {k: strip_shared_ids(v) for k, v in value.items() if k != "shared_object_id"}
    if isinstance(value, list):
        return [strip_shared_ids(v) for v in value]
    return value


def h5_listing(f):
    """Every group (with attributes) and dataset (dtype, shape, values) of an HDF5 file."""
    out = {}

    def visit(name, obj):
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in obj.attrs.items()}
        if isinstance(obj, h5py.Dataset):
            out[name] = ("dataset", obj.dtype.str, obj.shape, obj[()].tobytes(), attrs,
                         obj.chunks, obj.compression)
        else:
            out[name] = ("group", attrs)

    f.visititems(visit)
    out["/"] = ("group", dict(f.attrs))
    return out


def compare(fixture_path, build):
    fx = Fixture(fixture_path)
    model = build(fx)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        kg.write_keras(model, path, keras_version=fx.metadata["keras_version"],
                       date_saved=fx.metadata["date_saved"])
        ours = Fixture(path)
    name = os.path.basename(fixture_path)
    theirs_info = [(i.filename, i.compress_type, i.external_attr, i.create_system)
                   for i in fx.zip.infolist()]
    ours_info = [(i.filename, i.compress_type, i.external_attr, i.create_system)
                 for i in ours.zip.infolist()]
    assert ours_info == theirs_info, f"{name}: zip entries {ours_info} != {theirs_info}"
    for entry in ("metadata.json", "config.json"):
        assert ours.zip.getinfo(entry).date_time == fx.zip.getinfo(entry).date_time
    assert ours.metadata == fx.metadata, f"{name}: metadata"
    expect = strip_shared_ids(fx.config)
    got = strip_shared_ids(ours.config)
    if got != expect:
        a, b = json.dumps(got, indent=1).splitlines(), json.dumps(expect, indent=1).splitlines()
        first = next(i for i in range(min(len(a), len(b))) if a[i] != b[i])
        raise AssertionError(f"{name}: config.json differs at line {first}: {a[first]!r} vs "
                             f"{b[first]!r}")
    # Key order matters to readers that keep it (jansson does): compare the text order too.
    assert json.dumps(got) == json.dumps(expect), f"{name}: config.json key order differs"
    theirs, mine = h5_listing(fx.h5), h5_listing(ours.h5)
    assert set(mine) == set(theirs), (f"{name}: model.weights.h5 objects differ: only ours "
                                      f"{sorted(set(mine) - set(theirs))}, only theirs "
                                      f"{sorted(set(theirs) - set(mine))}")
    for key in theirs:
        assert repr(mine[key]) == repr(theirs[key]), f"{name}: {key}: {mine[key]!r:.200} vs " \
                                                     f"{theirs[key]!r:.200}"
    # The low-level types Keras (h5py) used: variable-length UTF-8 `name` attributes.
    for key, value in theirs.items():
        if value[0] == "group" and "name" in value[1]:
            t_theirs = fx.h5[key].attrs.get_id("name").get_type()
            t_mine = ours.h5[key].attrs.get_id("name").get_type()
            assert t_mine.is_variable_str() == t_theirs.is_variable_str()
            assert t_mine.get_cset() == t_theirs.get_cset()
    print(f"{name}: kerasgen writes the same archive ({len(theirs)} HDF5 objects)")


def main():
    base = os.path.join(fixtures_dir(), "keras")
    compare(os.path.join(base, "hgq2_randmat_64x64_bw8.keras"), randmat_model)
    compare(os.path.join(base, "hgq2_jsc_16-64-32-32-5.keras"), jsc_model)
    # snake_case against the spec's examples (frontends.md §7.2).
    for cls, slot in [("QDense", "q_dense"), ("Conv2D", "conv2d"),
                      ("Conv1DTranspose", "conv1d_transpose"),
                      ("QEinsumDenseBatchnorm", "q_einsum_dense_batchnorm"),
                      ("InputLayer", "input_layer"), ("ReLU", "re_lu"),
                      ("PReLU", "p_re_lu"), ("BatchNormalization", "batch_normalization")]:
        assert kg.snake_case(cls) == slot, (cls, kg.snake_case(cls), slot)
    print("ok")


if __name__ == "__main__":
    main()
