#!/usr/bin/python3
"""Writes the seed corpus of the Keras model-file fuzzer (fuzz_keras.c) into
tests/fuzz/corpus_keras/ (checked in; run again after changing kerasgen or the readers): small
models in every file form written by tests/keras/kerasgen.py, request `model` maps in msgpack,
Python JSON configs, and broken files of each kind the reader refuses.

An input's first byte chooses the harness's reader; each seed is written once per reader that
takes its kind of file, named after it: file-NAME (0, a model file), pair-NAME (1, the weights
of a pair), json-NAME (2, Python JSON and its graph), payload-NAME (3, a `model` map in
msgpack). The seeds have stable names (the unit tests of the reader read some of them, without
the byte); inputs the fuzzer found carry their reader byte already and are added as they are,
under a name that says what they found. Needs Debian's python3-numpy, python3-h5py and
python3-msgpack."""
import io
import json
import os
import sys
import tempfile
import zipfile

import h5py
import msgpack
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "keras"))
import kerasgen as kg  # noqa: E402


def tiny_model():
    m = kg.Functional("tiny")
    x = m.input((2,), name="x")
    q = kg.Obj("Quantizer", "dense_kq", children=[
        ("quantizer", kg.Obj("FixedPointQuantizerKBI", "fixed_point_quantizer_kbi",
                             vars=[kg.Var("b", np.full((2, 2), 4, np.float32)),
                                   kg.Var("i", np.ones((2, 2), np.float32)),
                                   kg.Var("k", np.ones((2, 2), np.uint8), False)]))])
    dense = kg.Layer("QDense", "dense", {"units": 2, "activation": "relu"},
                     module="hgq.layers.core.dense", registered_name="hgq>QDense",
                     vars=[kg.Var("kernel", np.array([[0.25, -0.5], [1, 2]], np.float32)),
                           kg.Var("bias", np.array([0.5, 0], np.float32)),
                           kg.Var("beta", np.float32(1e-5), False),
                           kg.Var("ebops", np.uint32(3), False)],
                     children=[("kq", q)])
    m.output(m.call(dense, x))
    return m


def sequential_model():
    return kg.Sequential("seq", (3,), [
        kg.Layer("Dense", "dense", {"units": 2}, out_shape=(2,),
                 vars=[kg.Var("kernel", np.arange(6, dtype=np.float16).reshape(3, 2)),
                       kg.Var("bias", np.array([1, -1], np.int8))]),
        kg.Layer("BatchNormalization", "bn",
                 vars=[kg.Var("gamma", np.ones(2, ">f4")), kg.Var("beta", np.zeros(2, "f8")),
                       kg.Var("moving_mean", np.zeros(2, "f4"), False),
                       kg.Var("moving_variance", np.ones(2, "f4"), False)])])


def h5_bytes(build):
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        build(f)
    return buf.getvalue()


def zip_bytes(entries, compression=zipfile.ZIP_STORED):
    """An archive with fixed timestamps, so that the seeds do not change between runs."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries:
            z.writestr(zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0)), data,
                       compress_type=compression)
    return buf.getvalue()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def seeds(tmp):
    for model, name in ((tiny_model(), "tiny"), (sequential_model(), "seq")):
        p = os.path.join(tmp, name)
        kg.write_keras(model, p + ".keras")
        keras = read(p + ".keras")
        yield f"{name}.keras", keras
        for keras_major in (3, 2):
            kg.write_h5(model, f"{p}{keras_major}.h5", keras=keras_major)
            yield f"{name}_k{keras_major}.h5", read(f"{p}{keras_major}.h5")
            kg.write_json_pair(model, f"{p}{keras_major}.json", f"{p}{keras_major}_w.h5",
                               keras=keras_major)
            yield f"{name}_k{keras_major}_weights.h5", read(f"{p}{keras_major}_w.h5")
        yield f"{name}_k2.json", read(p + "2.json")
        yield f"{name}_config.json", json.dumps(kg.keras_config(model)).encode()
        weights = kg._weights_h5_bytes(model)
        yield f"{name}.weights.h5", weights
        config = json.dumps(kg.keras_config(model))
        yield f"{name}_model_file.msgpack", msgpack.packb({"file": keras}, use_bin_type=True)
        yield f"{name}_model_pair.msgpack", msgpack.packb(
            {"file": read(p + "2.json"), "weights_file": read(p + "2_w.h5")}, use_bin_type=True)
        tensors = {a: {"dtype": "f4", "shape": list(v.shape),
                       "data": np.asarray(v, "<f4").tobytes()}
                   for a, v in kg.v3_weights(model).items()}
        yield f"{name}_decoded_v3.msgpack", msgpack.packb(
            {"format": "keras_v3", "config": config, "weights": tensors,
             "var_names": kg.v3_var_names(model)}, use_bin_type=True)
        layers, names, legacy = kg.legacy_weights(model, 2)
        yield f"{name}_decoded_legacy.msgpack", msgpack.packb(
            {"format": "legacy_h5", "config": json.dumps(kg.legacy_config(model, 2)),
             "metadata": {"keras_version": "2.9.0"}, "layer_names": layers,
             "weight_names": names,
             "weights": {a: {"dtype": "f4", "shape": list(v.shape),
                             "data": np.asarray(v, "<f4").tobytes()}
                         for a, v in legacy.items()}}, use_bin_type=True)
        # Broken archives: truncated, npz, sharded, deflated, without parts.
        yield f"{name}_truncated.keras", keras[: len(keras) // 2]
        yield f"{name}_npz.keras", zip_bytes([("config.json", config),
                                              ("model.weights.npz", b"PK")])
        yield f"{name}_sharded.keras", zip_bytes([("config.json", config),
                                                  ("model.weights.json", "{}"),
                                                  ("model_00000.weights.h5", weights)])
        yield f"{name}_deflated.keras", zip_bytes([("metadata.json", "{}"), ("config.json", config),
                                                   ("model.weights.h5", weights)],
                                                  zipfile.ZIP_DEFLATED)
        yield f"{name}_no_config.keras", zip_bytes([("model.weights.h5", weights)])
    # Configs for the keras tracer's graph (model_graph.c): a shared layer and a nested model
    # called twice, and a cycle.
    def t(layer, node):
        return {"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, 0]}}

    def entry(cls, name, nodes, module="keras.layers", config=None):
        return {"module": module, "class_name": cls, "name": name, "config": config or {},
                "inbound_nodes": [{"args": [t(*n)], "kwargs": {}} for n in nodes]}
    inp = {"module": "keras.layers", "class_name": "InputLayer", "name": "in",
           "config": {"batch_shape": [None, 4]}, "inbound_nodes": []}
    sub = entry("Functional", "sub", [("in", 0), ("sub", 1)], "keras.src.models.functional", {
        "name": "sub", "layers": [inp, entry("ReLU", "r", [("in", 0)])],
        "input_layers": [["in", 0, 0]], "output_layers": [["r", 0, 0]]})
    yield "graph_nested.json", json.dumps({
        "module": "keras.src.models.functional", "class_name": "Functional", "config": {
            "name": "m", "layers": [inp, entry("ReLU", "relu", [("in", 0), ("relu", 0)]),
                                    sub], "input_layers": [["in", 0, 0]],
            "output_layers": [["sub", 2, 0], ["relu", 1, 0]]}}).encode()
    yield "graph_cycle.json", json.dumps({
        "module": "keras.src.models.functional", "class_name": "Functional", "config": {
            "name": "m", "layers": [inp, entry("ReLU", "a", [("b", 0)]),
                                    entry("ReLU", "b", [("a", 0)])],
            "input_layers": [["in", 0, 0]], "output_layers": [["b", 0, 0]]}}).encode()
    yield "python_numbers.json", \
        b'{"class_name": "Functional", "config": {"a": [NaN, Infinity, -Infinity, 1e5]}}'
    yield "shard_index.json", json.dumps({"metadata": {"total_size": 1},
                                          "weight_map": {"/vars": "x"}}).encode()
    yield "deep_groups.h5", h5_bytes(lambda f: f.create_group("/".join(["g"] * 20)))
    yield "compound.h5", h5_bytes(lambda f: f.create_dataset(
        "layers/d/vars/0", data=np.zeros(2, dtype=[("a", "f4"), ("b", "u1")])))

    def links(f):
        f.create_dataset("layers/d/vars/0", data=np.arange(4, dtype="i2"))
        f["layers/d/vars/1"] = h5py.SoftLink("/layers/d/vars/0")
        f["layers/e"] = h5py.ExternalLink("other.h5", "/x")
    yield "links.h5", h5_bytes(links)

    def storage(f):
        f.create_dataset("a", data=np.arange(100, dtype="f4"), chunks=(10,), shuffle=True,
                         fletcher32=True)
        f.create_dataset("b", data=np.arange(100, dtype="f4"), compression="gzip")
        f.create_dataset("c", data=np.array([True, False]))
        f.create_dataset("d", data=np.float64(2.5))
        f.attrs["layer_names"] = [b"a"]
    yield "storage.h5", h5_bytes(storage)


READERS = {"file": 0, "pair": 1, "json": 2, "payload": 3}


def readers_of(name):
    """The harness's readers a seed is meant for, by its kind: an archive is a model file, an
    HDF5 file a model file or the weights of a pair, JSON a config (or a lone model file)."""
    if name.endswith(".msgpack"):
        return ["payload"]
    if name.endswith(".json"):
        return ["json", "file"]
    if name.endswith(".h5"):
        return ["file", "pair"]
    return ["file"]


def main():
    out = os.path.join(HERE, "corpus_keras")
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in seeds(tmp):
            for reader in readers_of(name):
                with open(os.path.join(out, f"{reader}-{name}"), "wb") as f:
                    f.write(bytes([READERS[reader]]) + data)


if __name__ == "__main__":
    main()
