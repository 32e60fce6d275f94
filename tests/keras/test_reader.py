#!/usr/bin/python3
"""The C reader of Keras model files against h5py and zipfile.

Models written by kerasgen in every form (.keras, Keras 3 and Keras 2 .h5, the model JSON +
weights pairs) and the real HGQ2 fixtures are read by keras_dump (the C reader) and by h5py;
the payloads must agree: format, config text, metadata, every weight address, dtype, shape,
byte and widened value (alk_tensor_to_f64 against numpy's astype(float64), every binary16
pattern included), var_names, weight_names, layer_names. Then broken files (truncated and
corrupt archives, a zip bomb, garbled HDF5, missing or npz or sharded weights, wrong dtypes and
shapes, links out of the file, limits) must fail with the error naming the culprit.

Usage: /usr/bin/python3 test_reader.py KERAS_DUMP [FIXTURES_DIR]
"""
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile

import h5py
import msgpack
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kerasgen as kg  # noqa: E402

DUMP = None
TMP = None
FAILURES = []

DTYPE_CODES = {"float16": "f2", "float32": "f4", "float64": "f8", "uint8": "u1",
               "uint16": "u2", "uint32": "u4", "uint64": "u8", "int8": "i1", "int16": "i2",
               "int32": "i4", "int64": "i8", "bool": "b1"}


def fail(message):
    FAILURES.append(message)
    print("FAIL", message)


def path(name):
    return os.path.join(TMP, name)


def write(name, data):
    with open(path(name), "wb") as f:
        f.write(data)
    return path(name)


def dump(*args, limits=()):
    """Runs keras_dump; returns (payload dict, None) or (None, stderr text)."""
    cmd = [DUMP]
    for lim in limits:
        cmd += ["--limit", lim]
    proc = subprocess.run(cmd + list(args), capture_output=True, timeout=120)
    if proc.returncode < 0 or proc.returncode > 1:
        return None, f"keras_dump crashed or misused (status {proc.returncode}): " \
                     f"{proc.stderr.decode(errors='replace')}"
    if proc.returncode != 0:
        return None, proc.stderr.decode()
    return json.loads(proc.stdout), None


# ---- the oracle: what h5py and zipfile see ---------------------------------------------------

def v3_view(h5):
    """keras_v3 weights and var_names of an open weights file."""
    weights, names = {}, {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            weights[name] = obj[()]
        elif name.split("/")[-1] == "vars" and "name" in obj.attrs:
            names[name] = obj.attrs["name"]

    h5.visititems(visit)
    return weights, names


def text_of(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def name_list(group, attr):
    if attr in group.attrs:
        values = list(group.attrs[attr])
    else:
        values, i = [], 0
        while f"{attr}{i}" in group.attrs:
            values += list(group.attrs[f"{attr}{i}"])
            i += 1
    return [text_of(v) for v in values]


def legacy_view(group):
    """legacy_h5 layer_names, weight_names and weights of a group (model_weights or a root)."""
    layers = name_list(group, "layer_names")
    names, weights = {}, {}
    for layer in layers + (["top_level_model_weights"]
                           if "top_level_model_weights" in group else []):
        wn = name_list(group[layer], "weight_names")
        if layer == "top_level_model_weights" and not wn:
            continue
        names[layer] = wn
        for w in wn:
            weights[f"{layer}/{w}"] = group[layer][w][()]
    return layers, names, weights


def check_tensor(where, got, f64, value):
    value = np.asarray(value)
    code = DTYPE_CODES[value.dtype.name]
    if got["dtype"] != code:
        return fail(f"{where}: dtype {got['dtype']} != {code}")
    if tuple(got["shape"]) != value.shape:
        return fail(f"{where}: shape {got['shape']} != {value.shape}")
    le = value.astype(value.dtype.newbyteorder("<"))
    if bytes.fromhex(got["data"]["$hex"]) != le.tobytes():
        return fail(f"{where}: data bytes differ")
    expect = value.astype(np.float64).ravel()
    mine = np.array([float.fromhex(x) for x in f64], dtype=np.float64)
    same = (mine.view(np.uint64) == expect.view(np.uint64)) | (np.isnan(mine) & np.isnan(expect))
    if mine.shape != expect.shape or not same.all():
        bad = int(np.flatnonzero(~same)[0]) if mine.shape == expect.shape else -1
        return fail(f"{where}: widened value {bad} differs from numpy's float64")


def check_payload(label, got, fmt, config_text, metadata, weights, var_names=None,
                  weight_names=None, layer_names=None):
    if got is None:
        return
    p = got["payload"]
    if p["format"] != fmt:
        fail(f"{label}: format {p['format']} != {fmt}")
    if p["config"] != config_text:
        fail(f"{label}: config text differs")
    if p.get("metadata") != metadata:
        fail(f"{label}: metadata {p.get('metadata')!r} != {metadata!r}")
    if set(p["weights"]) != set(weights):
        fail(f"{label}: addresses differ: only C {sorted(set(p['weights']) - set(weights))[:5]}"
             f", only h5py {sorted(set(weights) - set(p['weights']))[:5]}")
        return
    for address, value in weights.items():
        check_tensor(f"{label}: {address}", p["weights"][address], got["f64"][address], value)
    if fmt == "keras_v3" and p["var_names"] != var_names:
        fail(f"{label}: var_names differ")
    if fmt == "legacy_h5":
        if p["weight_names"] != weight_names:
            fail(f"{label}: weight_names {p['weight_names']} != {weight_names}")
        if p["layer_names"] != layer_names:
            fail(f"{label}: layer_names {p['layer_names']} != {layer_names}")


def check_keras_file(label, file_path):
    got, err = dump(file_path)
    if err:
        return fail(f"{label}: {err}")
    z = zipfile.ZipFile(file_path)
    with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as h5:
        weights, names = v3_view(h5)
    check_payload(label, got, "keras_v3", z.read("config.json").decode(),
                  z.read("metadata.json").decode(), weights, names)
    print(f"ok {label}: {len(weights)} tensors")


def check_h5_file(label, file_path):
    got, err = dump(file_path)
    if err:
        return fail(f"{label}: {err}")
    with h5py.File(file_path, "r") as h5:
        layers, names, weights = legacy_view(h5["model_weights"])
        metadata = {k: text_of(h5.attrs[k]) for k in ("keras_version", "backend")
                    if k in h5.attrs}
        config = text_of(h5.attrs["model_config"])
    check_payload(label, got, "legacy_h5", config, metadata, weights, None, names, layers)
    print(f"ok {label}: {len(weights)} tensors")


def check_pair(label, json_path, weights_path):
    got, err = dump(json_path, weights_path)
    if err:
        return fail(f"{label}: {err}")
    config = open(json_path).read()
    with h5py.File(weights_path, "r") as h5:
        if "layer_names" in h5.attrs:
            layers, names, weights = legacy_view(h5)
            metadata = {k: text_of(h5.attrs[k]) for k in ("keras_version", "backend")
                        if k in h5.attrs}
            check_payload(label, got, "legacy_h5", config, metadata, weights, None, names,
                          layers)
        else:
            weights, var_names = v3_view(h5)
            check_payload(label, got, "keras_v3", config, None, weights, var_names)
    print(f"ok {label}: {len(weights)} tensors")


# ---- models --------------------------------------------------------------------------------

def rng_f32(rng, *shape):
    return (rng.integers(-8, 8, size=shape) / 4).astype(np.float32)


def zoo_model(rng):
    """A functional model with two inputs, a shared layer, a sub-object tree, a nested model
    and a list container: the layouts a reader must address."""
    inner = kg.Functional("inner")
    xi = inner.input((4,), name="inner_in")
    inner.output(inner.call(kg.Layer("Dense", "inner_dense", {"units": 4},
                                     vars=[kg.Var("kernel", rng_f32(rng, 4, 4)),
                                           kg.Var("bias", rng_f32(rng, 4))]), xi))
    m = kg.Functional("zoo")
    a = m.input((8,), name="in_a")
    b = m.input((4,), name="in_b")
    d1 = kg.Layer("Dense", "dense", {"units": 4, "activation": "relu"},
                  vars=[kg.Var("kernel", rng_f32(rng, 8, 4)), kg.Var("bias", rng_f32(rng, 4))])
    bn = kg.Layer("BatchNormalization", "batch_normalization", {"axis": -1},
                  vars=[kg.Var("gamma", rng_f32(rng, 4)), kg.Var("beta", rng_f32(rng, 4)),
                        kg.Var("moving_mean", rng_f32(rng, 4), False),
                        kg.Var("moving_variance", np.ones(4, np.float32), False)])
    quant = kg.Obj("Quantizer", "q_kq", children=[
        ("quantizer", kg.Obj("FixedPointQuantizerKIF", "fixed_point_quantizer_kif",
                             vars=[kg.Var("i", rng_f32(rng, 4, 4)),
                                   kg.Var("f", rng_f32(rng, 4, 4)),
                                   kg.Var("k", np.ones((4, 4), np.uint8), False)]))])
    qd = kg.Layer("QDense", "q_dense", {"units": 4}, module="hgq.layers.core.dense",
                  registered_name="hgq>QDense",
                  vars=[kg.Var("kernel", rng_f32(rng, 4, 4)), kg.Var("bias", rng_f32(rng, 4)),
                        kg.Var("beta", np.float32(1e-5), False),
                        kg.Var("ebops", np.uint32(17), False)],
                  children=[("kq", quant)])
    listed = kg.Layer("Wrapper", "wrapper", module="custom.layers", registered_name="c>Wrapper",
                      children=[("parts", [kg.Obj("Dense", "part", [kg.Var("kernel",
                                                                           rng_f32(rng, 2))]),
                                           kg.Obj("Dense", "part_b",
                                                  [kg.Var("kernel", rng_f32(rng, 3))])])])
    h = m.call(bn, m.call(d1, a, out_shape=(4,)))
    h = m.call(qd, h, out_shape=(4,))
    h2 = m.call(qd, b, out_shape=(4,))  # shared: node 1
    h3 = m.call(inner, h2, out_shape=(4,))
    cat = kg.Layer("Concatenate", "concatenate", {"axis": -1})
    y = m.call(cat, [h, h3], out_shape=(8,))
    add = kg.Layer("Add", "add", module="keras.src.ops.numpy", kind="op")
    y = m.call(add, None, args=[y, 1.0], out_shape=(8,))
    m.output(m.call(listed, y), h2)
    return m


def dtype_model(rng):
    """One layer holding a variable of every dtype, scalar and empty ones, both byte orders."""
    half = np.arange(65536, dtype=np.uint16).view(np.float16)
    f4 = np.array([0.25, -0.0, np.inf, -np.inf, np.nan, 1e-45, 3.4e38, 1 / 3], np.float32)
    values = [
        ("half", half), ("f4", f4), ("f8", np.array([0.1, -2.5e-310, np.nan], np.float64)),
        ("u1", np.array([0, 255], np.uint8)), ("u2", np.array([65535], np.uint16)),
        ("u4", np.array([4294967295], np.uint32)),
        ("u8", np.array([2 ** 53, 2 ** 63 + 2 ** 20], np.uint64)),
        ("i1", np.array([-128, 127], np.int8)), ("i2", np.array([-32768], np.int16)),
        ("i4", np.array([-2 ** 31, 7], np.int32)),
        ("i8", np.array([-2 ** 63, 2 ** 53 - 1], np.int64)),
        ("b1", np.array([[True, False], [False, True]])), ("scalar", np.float32(-3.5)),
        ("empty", np.zeros((0, 3), np.float32)),
        ("big_f4", rng_f32(rng, 3, 2).astype(">f4")), ("big_i4", np.array([-5, 6], ">i4")),
        ("big_f2", half[:300].astype(">f2")),
    ]
    m = kg.Functional("dtypes")
    x = m.input((2,), name="x")
    layer = kg.Layer("Holder", "holder", module="custom.layers", registered_name="c>Holder",
                     vars=[kg.Var(n, v) for n, v in values])
    m.output(m.call(layer, x))
    return m


def sequential_model(rng):
    layers = [kg.Layer("Dense", "dense", {"units": 3}, out_shape=(3,),
                       vars=[kg.Var("kernel", rng_f32(rng, 5, 3)), kg.Var("bias", rng_f32(rng, 3))]),
              kg.Layer("ReLU", "re_lu", {"max_value": None}),
              kg.Layer("Dense", "dense_1", {"units": 2}, out_shape=(2,),
                       vars=[kg.Var("kernel", rng_f32(rng, 3, 2))])]
    return kg.Sequential("sequential", (5,), layers)


def check_all_forms(label, model):
    kg.write_keras(model, path(f"{label}.keras"))
    check_keras_file(f"{label}.keras", path(f"{label}.keras"))
    for keras in (3, 2):
        kg.write_h5(model, path(f"{label}_k{keras}.h5"), keras=keras)
        check_h5_file(f"{label}_k{keras}.h5", path(f"{label}_k{keras}.h5"))
        kg.write_json_pair(model, path(f"{label}_k{keras}.json"), path(f"{label}_k{keras}_w.h5"),
                           keras=keras)
        check_pair(f"{label}_k{keras} pair", path(f"{label}_k{keras}.json"),
                   path(f"{label}_k{keras}_w.h5"))
    # A Keras 3 config with its .weights.h5: the pair in keras_v3 form.
    with open(path(f"{label}_config.json"), "w") as f:
        f.write(json.dumps(kg.keras_config(model)))
    kg.write_weights_h5(model, path(f"{label}.weights.h5"))
    check_pair(f"{label} v3 pair", path(f"{label}_config.json"), path(f"{label}.weights.h5"))


def check_storage_variants(rng):
    """Datasets chunked, with shuffle and fletcher32, and with a user block before the
    superblock: read the same; an extendible dataset too."""
    model = sequential_model(rng)
    buf = io.BytesIO()
    with h5py.File(buf, "w", userblock_size=512) as f:
        f.create_group("vars").attrs["name"] = "sequential"
        for address, value in kg.v3_weights(model).items():
            f.create_dataset(address, data=value, chunks=True, shuffle=True, fletcher32=True,
                             maxshape=(None,) * value.ndim)
        for group, name in kg.v3_var_names(model).items():
            f.require_group(group).attrs["name"] = name
    file_path = keras_zip("storage.keras", json.dumps(kg.keras_config(model)), buf.getvalue())
    check_keras_file("chunked, shuffle, fletcher32, user block", file_path)
    # The newest file format: superblock 3, version 2 object headers with creation order, as
    # h5py writes with libver="latest" (the guard parses these headers itself).
    latest = io.BytesIO()
    with h5py.File(latest, "w", libver="latest", track_order=True) as f:
        for group, name in kg.v3_var_names(model).items():
            f.require_group(group).attrs["name"] = name
        for address, value in kg.v3_weights(model).items():
            f[address] = value
    file_path = keras_zip("latest.keras", json.dumps(kg.keras_config(model)), latest.getvalue())
    check_keras_file("superblock 3, object headers 2, creation order", file_path)


def keras_zip(name, config, weights, metadata='{"keras_version": "3.10.0"}', extra=()):
    """A .keras archive with the given parts (None leaves a part out)."""
    with zipfile.ZipFile(path(name), "w") as z:
        if metadata is not None:
            z.writestr("metadata.json", metadata)
        if config is not None:
            z.writestr("config.json", config)
        if weights is not None:
            z.writestr("model.weights.h5", weights)
        for entry, data in extra:
            z.writestr(entry, data)
    return path(name)


# ---- broken files --------------------------------------------------------------------------

def expect_error(label, args, name, *texts, limits=()):
    got, err = dump(*args, limits=limits)
    if got is not None:
        return fail(f"{label}: read without error")
    if "crashed" in err:
        return fail(f"{label}: {err}")
    if f": {name}: " not in err or not all(t in err for t in texts):
        return fail(f"{label}: expected {name} naming {texts}, got: {err.strip()}")
    print(f"ok {label}: {err.strip()[12:150]}")


def h5_bytes(build):
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        build(f)
    return buf.getvalue()


def patch_sizes(data, entry, new_size):
    """Rewrites an entry's uncompressed size in its local header and central directory."""
    z = zipfile.ZipFile(io.BytesIO(data))
    info = z.getinfo(entry)
    out = bytearray(data)
    struct.pack_into("<I", out, info.header_offset + 22, new_size)
    eocd = data.rindex(b"PK\x05\x06")
    cd, = struct.unpack_from("<I", data, eocd + 16)
    while True:
        name_len, = struct.unpack_from("<H", data, cd + 28)
        extra_len, comment_len = struct.unpack_from("<HH", data, cd + 30)
        if data[cd + 46:cd + 46 + name_len].decode() == entry:
            struct.pack_into("<I", out, cd + 24, new_size)
            return bytes(out)
        cd += 46 + name_len + extra_len + comment_len


def check_broken(rng):
    model = sequential_model(rng)
    good_keras = path("seq.keras")
    kg.write_keras(model, good_keras)
    data = open(good_keras, "rb").read()
    config = json.dumps(kg.keras_config(model))
    weights = kg._weights_h5_bytes(model)

    for cut in (10, len(data) // 2, len(data) - 30):
        expect_error(f"zip truncated at {cut}", [write(f"cut{cut}.keras", data[:cut])],
                     "EINVAL", "zip")
    # A zip bomb: the weights entry claims 4 GiB (both headers agree, as a crafted file's do).
    bomb = patch_sizes(data, "model.weights.h5", 0xfffffff0)
    expect_error("zip bomb (4 GiB claimed)", [write("bomb.keras", bomb)], "ELIMIT",
                 "model.weights.h5", "4294967280 bytes")
    small = patch_sizes(data, "model.weights.h5", 100)
    expect_error("entry holding more than it claims", [write("liar.keras", small)], "EINVAL",
                 "model.weights.h5")
    deflated = io.BytesIO()
    with zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", "{}")
        z.writestr("config.json", config)
        z.writestr("model.weights.h5", weights + bytes(1 << 20))
    expect_error("total decompressed bytes over the limit", [write("big.keras",
                 deflated.getvalue())], "ELIMIT", "model.weights.h5",
                 limits=["max_total_bytes=500000"])
    expect_error("entries over the limit",
                 [keras_zip("many.keras", config, weights,
                            extra=[(f"assets/{i}", b"") for i in range(40)])],
                 "ELIMIT", "43 entries", limits=["max_entries=32"])
    garbled = bytearray(weights)
    for i in range(0, 600, 7):
        garbled[i + 8] ^= 0x5a
    expect_error("garbled HDF5", [keras_zip("garbled.keras", config, bytes(garbled))],
                 "EINVAL", "model.weights.h5")
    # libhdf5 1.10 would loop forever on a global heap whose free-space object has size 0.
    heap = bytearray(weights)
    at = heap.index(b"GCOL")
    q = at + 16
    while struct.unpack_from("<H", heap, q)[0] != 0:
        q += 16 + (struct.unpack_from("<Q", heap, q + 8)[0] + 7) // 8 * 8
    struct.pack_into("<Q", heap, q + 8, 0)
    expect_error("global heap that would hang libhdf5",
                 [keras_zip("gheap.keras", config, bytes(heap))], "EINVAL", "model.weights.h5",
                 f"global heap at byte {at} is malformed")
    # A variable-length string's reference, as h5py writes the `name` attribute "sequential":
    # length, collection address, object index. libhdf5 1.10 would allocate the claimed length
    # and follow any index.
    for idx in range(1, 64):
        ref = struct.pack("<IQI", len("sequential"), at, idx)
        if ref in heap:
            break
    pos = weights.index(ref)
    huge = bytearray(weights)
    struct.pack_into("<I", huge, pos, 0x7fffffff)
    expect_error("string attribute claiming 2 GiB", [keras_zip("vlen_len.keras", config,
                                                              bytes(huge))],
                 "ELIMIT", "model.weights.h5", "claims 2147483647 bytes")
    wild = bytearray(weights)
    struct.pack_into("<I", wild, pos + 12, 999)
    expect_error("string attribute naming no heap object",
                 [keras_zip("vlen_idx.keras", config, bytes(wild))], "EINVAL",
                 "model.weights.h5", "points to no global heap object")
    # A string attribute's type (version 1, variable-length, UTF-8 string) whose size field
    # says 13 instead of a reference's 16: libhdf5 1.10 allocates the value by the field and
    # copies 16 bytes per string out of it (found by fuzz_keras).
    short_type = bytearray(weights)
    vlen_string = bytes.fromhex("1901010010000000")
    at = short_type.index(vlen_string)
    struct.pack_into("<I", short_type, at + 4, 13)
    expect_error("string attribute type of 13 bytes",
                 [keras_zip("vlen_size.keras", config, bytes(short_type))], "EINVAL",
                 "model.weights.h5", "attribute")
    expect_error("HDF5 cut short", [keras_zip("short.keras", config, weights[:len(weights) // 2])],
                 "EINVAL", "model.weights.h5")
    expect_error("missing model.weights.h5", [keras_zip("noweights.keras", config, None)],
                 "EINVAL", "no model.weights.h5", "'config.json'")
    expect_error("npz weights", [keras_zip("npz.keras", config, None,
                                           extra=[("model.weights.npz", b"PK")])],
                 "ENOTSUP", "model.weights.npz")
    expect_error("sharded weights in the archive",
                 [keras_zip("shard.keras", config, None,
                            extra=[("model.weights.json", b"{}"),
                                   ("model_00000.weights.h5", weights)])],
                 "ENOTSUP", "sharded")
    index = json.dumps({"metadata": {"total_size": 10}, "weight_map": {"/vars": "a.weights.h5"}})
    expect_error("a sharded-weights index given as the model",
                 [write("model.weights.json", index.encode())], "ENOTSUP", "sharded")
    expect_error("missing config.json", [keras_zip("noconfig.keras", None, weights)], "EINVAL",
                 "config.json")
    expect_error("config.json not JSON", [keras_zip("badjson.keras", "{\"a\": [1,", weights)],
                 "EINVAL", "config.json", "JSON error")
    expect_error("config.json not a model config",
                 [keras_zip("notcfg.keras", "{\"a\": 1}", weights)], "EINVAL", "config.json",
                 "class_name")
    expect_error("metadata.json not an object",
                 [keras_zip("meta.keras", config, weights, metadata="[1]")], "EINVAL",
                 "metadata.json")
    warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate name
    expect_error("two config.json entries",
                 [keras_zip("dup.keras", config, weights, extra=[("config.json", config)])],
                 "EINVAL", "two entries of the same name")
    compound = h5_bytes(lambda f: f.create_dataset(
        "layers/dense/vars/0", data=np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])))
    expect_error("compound dtype", [keras_zip("compound.keras", config, compound)], "EINVAL",
                 "layers/dense/vars/0", "compound")
    strings = h5_bytes(lambda f: f.create_dataset("layers/dense/vars/0", data=[b"ab", b"c"]))
    expect_error("string dataset", [keras_zip("strings.keras", config, strings)], "EINVAL",
                 "layers/dense/vars/0", "string")
    rank9 = h5_bytes(lambda f: f.create_dataset("layers/dense/vars/0",
                                                data=np.zeros((1,) * 9, np.float32)))
    expect_error("rank 9", [keras_zip("rank9.keras", config, rank9)], "ELIMIT",
                 "layers/dense/vars/0", "rank 9")
    expect_error("elements over the limit", [good_keras], "ELIMIT", "layers/dense/vars/0",
                 limits=["max_tensor_elements=10"])
    gzip = h5_bytes(lambda f: f.create_dataset("layers/dense/vars/0", data=np.zeros(100, "f4"),
                                               compression="gzip"))
    expect_error("gzip-compressed dataset", [keras_zip("gzip.keras", config, gzip)], "ENOTSUP",
                 "layers/dense/vars/0", "compressed")
    huge_chunks = h5_bytes(lambda f: f.create_dataset("w", shape=(4,), maxshape=(None,),
                                                      chunks=(1 << 22,), dtype="f4"))
    expect_error("chunks over the element limit", [keras_zip("chunk.keras", config, huge_chunks)],
                 "ELIMIT", "'w'", "chunks", limits=["max_tensor_elements=1000000"])

    def soft(f):
        f.create_dataset("layers/dense/vars/0", data=np.zeros(2, "f4"))
        f["layers/dense/vars/1"] = h5py.SoftLink("/layers/dense/vars/0")
    expect_error("soft link", [keras_zip("soft.keras", config, h5_bytes(soft))], "EINVAL",
                 "layers/dense/vars/1", "soft link")

    def external_link(f):
        f["layers/x"] = h5py.ExternalLink("/etc/passwd.h5", "/secret")
    expect_error("external link", [keras_zip("ext.keras", config, h5_bytes(external_link))],
                 "EINVAL", "layers/x", "external link")

    def external_storage(f):
        f.create_dataset("w", shape=(4,), dtype="f4", external=[("/etc/hostname", 0, 16)])
    expect_error("external storage", [keras_zip("extstore.keras", config,
                                                h5_bytes(external_storage))],
                 "EINVAL", "'w'", "external files")

    def deep(f):
        f.create_group("/".join(["g"] * 40))
    expect_error("nesting over the limit", [keras_zip("deep.keras", config, h5_bytes(deep))],
                 "ELIMIT", "deeper than 16", limits=["max_depth=16"])

    def bad_name_attr(f):
        f.create_group("layers/dense/vars").attrs["name"] = np.arange(3)
    expect_error("vars name attribute not a string",
                 [keras_zip("badattr.keras", config, h5_bytes(bad_name_attr))], "EINVAL",
                 "layers/dense/vars", "name")

    # Legacy files.
    kg.write_h5(model, path("seq_k2.h5"), keras=2)
    with h5py.File(path("seq_k2.h5"), "a") as f:
        del f["model_weights/dense/dense/kernel:0"]
    expect_error("legacy weight_names naming a missing dataset", [path("seq_k2.h5")], "EINVAL",
                 "dense/kernel:0", "layer 'dense'")
    kg.write_h5(model, path("seq_k3.h5"), keras=3)
    with h5py.File(path("seq_k3.h5"), "a") as f:
        del f["model_weights/dense_1"]
    expect_error("legacy layer_names listing a missing group", [path("seq_k3.h5")], "EINVAL",
                 "dense_1", "layer_names")
    kg.write_h5(model, path("noweights.h5"), keras=3)
    with h5py.File(path("noweights.h5"), "a") as f:
        del f["model_weights"]
    expect_error("legacy file without model_weights", [path("noweights.h5")], "EINVAL",
                 "model_weights")
    kg.write_json_pair(model, path("pair.json"), path("pair_w.h5"))
    expect_error("weights-only .h5 given alone", [path("pair_w.h5")], "EINVAL",
                 "only weights", "--weights")
    expect_error("model JSON given alone", [path("pair.json")], "EINVAL", "without weights",
                 "--weights")
    expect_error("Keras 3 .weights.h5 given alone",
                 [write("alone.weights.h5", weights)], "EINVAL", "Keras 3 weights file")
    expect_error("pair with a non-HDF5 weights file", [path("pair.json"), path("pair.json")],
                 "EINVAL", "weights file", "not an HDF5")
    expect_error("not a model file at all", [write("text.txt", b"hello")], "EINVAL",
                 "not a Keras model file")
    expect_error("an empty file", [write("empty", b"")], "EINVAL", "not a Keras model file")
    long_names = ["layer_%04d_%s" % (i, "x" * 40) for i in range(2000)]

    def chunked_names(f):
        # Keras splits attributes over 64 KiB into layer_names0, layer_names1, ...
        g = f.create_group("model_weights")
        arr = np.array([n.encode() for n in long_names])
        for i, part in enumerate(np.array_split(arr, 3)):
            g.attrs[f"layer_names{i}"] = part
        for n in long_names:
            g.create_group(n).attrs["weight_names"] = np.asarray([])
        f.attrs["model_config"] = json.dumps(kg.legacy_config(model, 3))
    write("chunked.h5", h5_bytes(chunked_names))
    got, err = dump(path("chunked.h5"))
    if err or got["payload"]["layer_names"] != long_names:
        fail(f"chunked layer_names: {err or 'names differ'}")
    else:
        print("ok chunked layer_names0..2: 2000 layers in order")
    expect_error("names over the object limit", [path("chunked.h5")], "ELIMIT", "layer_names",
                 limits=["max_objects=1000"])


def symbol_table_of(data, header):
    """The B-tree and local heap addresses of the symbol table message (0x11) in the version 1
    object header at `header` (as h5py writes old-style groups, 8-byte addresses), following
    continuation messages (0x10)."""
    chunks = [(header + 16, struct.unpack_from("<I", data, header + 8)[0])]
    for begin, length in chunks:
        q = begin
        while q < begin + length:
            kind, size = struct.unpack_from("<HH", data, q)
            if kind == 0x11:
                return struct.unpack_from("<QQ", data, q + 8)
            if kind == 0x10:
                chunks.append(struct.unpack_from("<QQ", data, q + 8))
            q += 8 + size
    raise ValueError(f"no symbol table message in the header at {header}")


def compact_dataset(f, name, value):
    """A dataset stored in its own header (compact layout), which h5py's high level does not
    write."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    group = f.require_group(name.rsplit("/", 1)[0])
    ds = h5py.h5d.create(group.id, name.rsplit("/", 1)[1].encode(), h5py.h5t.IEEE_F32LE,
                         h5py.h5s.create_simple(value.shape), dcpl=dcpl)
    ds.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(value, "<f4"))


def check_layouts(rng):
    """Data layouts the guard checks before libhdf5 reads a dataset: compact data (read like
    h5py reads it; a size that is not the dataset's refused: libhdf5 1.10 reads the dataset's
    size from it), chunk indexes h5py writes with libver "latest" refused as not taken."""
    value = rng_f32(rng, 3, 4)
    config = json.dumps(kg.keras_config(sequential_model(rng)))

    def compact(f):
        f.create_group("vars").attrs["name"] = "m"
        compact_dataset(f, "layers/d/vars/0", value)
    data = h5_bytes(compact)
    got, err = dump(keras_zip("compact.keras", config, data))
    tensor = (got or {}).get("payload", {}).get("weights", {}).get("layers/d/vars/0")
    if err or tensor is None or tensor["shape"] != [3, 4] or \
            bytes.fromhex(tensor["data"]["$hex"]) != value.astype("<f4").tobytes():
        fail(f"compact dataset: {err or tensor}")
    else:
        print("ok compact dataset read as h5py wrote it")
    # The layout message (version 3, class 0): its 2-byte size follows; make it 0.
    at = data.index(bytes([3, 0, 48, 0]))
    broken = bytearray(data)
    struct.pack_into("<H", broken, at + 2, 0)
    expect_error("compact data of 0 bytes for 12 elements",
                 [keras_zip("compact0.keras", config, bytes(broken))], "EINVAL",
                 "layers/d/vars/0", "data layout")
    latest = io.BytesIO()
    with h5py.File(latest, "w", libver="latest") as f:
        f.create_dataset("layers/d/vars/0", data=value, chunks=(1, 4))
    expect_error("chunks in a fixed array (libver latest)",
                 [keras_zip("farray.keras", config, latest.getvalue())], "ENOTSUP",
                 "layers/d/vars/0", "fixed or extensible array")


def check_broken_symbol_tables(rng):
    """Old-style groups (h5py's default): a symbol table's B-tree, symbol nodes and local heap,
    which libhdf5 1.10 trusts, are checked before libhdf5 reads them."""
    model = sequential_model(rng)
    kg.write_h5(model, path("stab.h5"), keras=2)
    with h5py.File(path("stab.h5"), "r") as f:
        group = h5py.h5o.get_info(f["model_weights"].id).addr
        root = h5py.h5o.get_info(f["/"].id).addr
    data = open(path("stab.h5"), "rb").read()
    tree, heap = symbol_table_of(data, group)
    root_tree, _ = symbol_table_of(data, root)
    child = tree + 24 + 8  # "TREE", type, level, entries, two siblings, then key 0, child 0
    node, = struct.unpack_from("<Q", data, child)
    heap_size, = struct.unpack_from("<Q", data, heap + 8)

    def patched(name, at, fmt, value):
        out = bytearray(data)
        struct.pack_into(fmt, out, at, value)
        return write(name, bytes(out))
    cases = [
        # libhdf5's end-of-file check wraps for an address near 2^64, and its metadata
        # accumulator copies from a NULL buffer (SEGV; found by fuzzing through H5Gget_info).
        ("B-tree child address past 2^63", "stab_child.h5", child, "<Q", 2**64 - 1,
         "model_weights"),
        ("B-tree child that is its own parent", "stab_cycle.h5", child, "<Q", tree,
         "model_weights"),
        ("B-tree node of the wrong level", "stab_level.h5", tree + 5, "<B", 1, "model_weights"),
        # libhdf5 decodes as many entries as a node claims into an array of 2 x leaf K.
        ("symbol node claiming 9 entries (2 x leaf K is 8)", "stab_nsyms.h5", node + 6, "<H",
         9, "model_weights"),
        ("link name outside the local heap", "stab_name.h5", node + 8, "<Q", heap_size + 8,
         "model_weights"),
        ("local heap data past the end of the file", "stab_heap.h5", heap + 24, "<Q",
         len(data), "model_weights"),
        ("root B-tree child outside the file", "stab_root.h5", root_tree + 32, "<Q",
         len(data) + 4096, "root group"),
        # A leaf K of 30000 makes libhdf5 read every symbol node as 2.4 MB.
        ("superblock group leaf K of 30000", "stab_k.h5", 16, "<H", 30000, "root group"),
    ]
    for label, name, at, fmt, value, where in cases:
        expect_error(label, [patched(name, at, fmt, value)], "EINVAL", "symbol table", where)


def check_wire_forms(rng):
    """The `model` map of a request: file bytes, the pair, and the decoded payload."""
    model = zoo_model(rng)
    kg.write_keras(model, path("wire.keras"))
    file_bytes = open(path("wire.keras"), "rb").read()
    direct, err = dump(path("wire.keras"))
    via_file, err2 = dump("--model", write("m_file.msgpack",
                                           msgpack.packb({"file": file_bytes}, use_bin_type=True)))
    if err or err2 or direct != via_file:
        fail(f"model.file: differs from reading the file ({err or err2})")
    kg.write_json_pair(model, path("wire.json"), path("wire_w.h5"))
    pair = {"file": open(path("wire.json"), "rb").read(),
            "weights_file": open(path("wire_w.h5"), "rb").read()}
    via_pair, err = dump("--model", write("m_pair.msgpack", msgpack.packb(pair)))
    direct_pair, err2 = dump(path("wire.json"), path("wire_w.h5"))
    if err or err2 or via_pair != direct_pair:
        fail(f"model.file + weights_file: differs from the pair ({err or err2})")
    # The decoded payload, as a client would send it, passes and comes back unchanged.
    p = direct["payload"]

    def decode(v):
        if isinstance(v, dict) and set(v) == {"$hex"}:
            return bytes.fromhex(v["$hex"])
        if isinstance(v, dict):
            return {k: decode(x) for k, x in v.items()}
        if isinstance(v, list):
            return [decode(x) for x in v]
        return v
    decoded = decode(p)
    via_decoded, err = dump("--model", write("m_dec.msgpack",
                                             msgpack.packb(decoded, use_bin_type=True)))
    if err or via_decoded != direct:
        fail(f"decoded keras_v3 payload: {err or 'changed'}")
    legacy = decode(direct_pair["payload"])
    via_legacy, err = dump("--model", write("m_leg.msgpack",
                                            msgpack.packb(legacy, use_bin_type=True)))
    if err or via_legacy != direct_pair:
        fail(f"decoded legacy payload: {err or 'changed'}")
    print("ok wire forms: file, pair and decoded payloads agree")

    def bad(label, mutate, name, *texts):
        payload = json.loads(json.dumps(p))
        payload = decode(payload)
        mutate(payload)
        expect_error(f"decoded payload: {label}",
                     ["--model", write("bad.msgpack", msgpack.packb(payload, use_bin_type=True))],
                     name, *texts)

    first = sorted(p["weights"])[0]
    bad("unknown dtype", lambda q: q["weights"][first].update(dtype="float32"), "EINVAL",
        first, "'dtype' is 'float32'")
    bad("shape and data disagree", lambda q: q["weights"][first].update(shape=[3, 1000]),
        "EINVAL", first, "'data' has")
    bad("unknown format", lambda q: q.update(format="saved_model"), "EINVAL", "model.format")
    bad("config not JSON", lambda q: q.update(config="{"), "EINVAL", "model.config")
    bad("file not bin", lambda q: q.update(file="x"), "EINVAL", "model.file")
    leg = json.loads(json.dumps(direct_pair["payload"]))
    leg = decode(leg)
    leg["weight_names"]["dense"] = leg["weight_names"]["dense"] + ["dense/missing:0"]
    expect_error("decoded payload: weight name without tensor",
                 ["--model", write("bad2.msgpack", msgpack.packb(leg, use_bin_type=True))],
                 "EINVAL", "dense/missing:0")
    expect_error("decoded payload: weights_file without file",
                 ["--model", write("bad3.msgpack", msgpack.packb({"weights_file": b"x"}))],
                 "EINVAL", "weights_file")


def main():
    global DUMP, TMP
    DUMP = sys.argv[1]
    fixtures = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("ALK_FIXTURES")
    rng = np.random.default_rng(12)
    with tempfile.TemporaryDirectory() as tmp:
        TMP = tmp
        for name in ("hgq2_jsc_16-64-32-32-5.keras", "hgq2_randmat_64x64_bw8.keras"):
            check_keras_file(name, os.path.join(fixtures, "keras", name))
        check_all_forms("zoo", zoo_model(rng))
        check_all_forms("dtypes", dtype_model(rng))
        check_all_forms("sequential", sequential_model(rng))
        check_storage_variants(rng)
        check_broken(rng)
        check_broken_symbol_tables(rng)
        check_layouts(rng)
        check_wire_forms(rng)
    if FAILURES:
        print(f"{len(FAILURES)} failures")
        sys.exit(1)
    print("all reader checks passed")


if __name__ == "__main__":
    main()
