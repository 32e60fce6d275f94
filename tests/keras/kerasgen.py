"""kerasgen: Keras model files written the way Keras writes them, without Keras.

Needs only Debian's python3-numpy and python3-h5py (and the standard library's zipfile, json).
Every Keras test model of the project is generated with it; tests/keras/test_kerasgen.py checks
the layout against the real HGQ2 files in ../shared/fixtures/keras (Keras 3.9 and 3.10).

Describing a model
------------------
    import numpy as np, kerasgen as kg

    m = kg.Functional("functional")
    x = m.input((16,), name="input_layer")                       # a kg.Tensor
    dense = kg.Layer("Dense", "dense", {"units": 4, "activation": "relu", "use_bias": True},
                     vars=[kg.Var("kernel", np.ones((16, 4), "f4")),
                           kg.Var("bias", np.zeros(4, "f4"))])
    y = m.call(dense, x, out_shape=(4,))                          # a kg.Tensor
    m.output(y)
    kg.write_keras(m, "model.keras")              # Keras 3 .keras zip
    kg.write_h5(m, "model.h5", keras=3)           # legacy full-model .h5 as Keras 3 writes it
    kg.write_h5(m, "model_k2.h5", keras=2)        # the same as Keras 2 (tf.keras 2.x) writes it
    kg.write_json_pair(m, "model.json", "weights.h5")   # Keras 2 to_json() + save_weights()

kg.Var(name, value, trainable=True, path=None, name_k2=None)
    One variable: `name` as Keras names it ("kernel", "moving_mean", "b"); `value` a numpy array
    whose dtype is stored as is (float32 for Keras weights; uint8/uint32 for HGQ2 k and ebops;
    bfloat16 is not available without ml_dtypes). `trainable` orders legacy .h5 weights
    (trainable first). `path` overrides the legacy weight name (default: the names of the owning
    objects joined by "/", then the variable name: "dense/kernel"; Keras 2 adds ":0").
    `name_k2` is the variable's name in Keras 2 files when it differs (DepthwiseConv2D's
    "depthwise_kernel").
kg.Obj(class_name, name, vars=(), children=())
    A saveable object inside a layer (an HGQ2 quantizer, a sub-layer): `vars` in `vars/N`
    order; `children` a list of (attribute, Obj) or (attribute, [Obj, ...]) in tracking order.
    In model.weights.h5 a child is stored at `<parent path>/<attribute>`, a list item at
    `<parent path>/<attribute>/<snake_case class>[_N]` (Keras' container slots).
kg.Layer(class_name, name, config=None, *, module="keras.layers", registered_name=DEFAULT,
         vars=(), children=(), kind="layer", config_k2=None, dtype="float32", out_shape=None,
         built_at_init=False)
    A layer (kind="layer": its config gets "name", "trainable" and the dtype policy first, as
    Keras' Layer.get_config does) or an op (kind="op": config gets "name" only; ops have no
    weights slot). `registered_name` defaults to None for module "keras.layers" and "keras", else
    the class name; give "hgq>QDense" for HGQ2 layers. `config_k2` is the config written in Keras
    2 files instead of `config` (Keras 2 names some fields differently). `out_shape` (without
    the batch axis) is the layer's output shape in a Sequential (default: its input's).
    `built_at_init`: the layer is built in its constructor (Keras' _build_at_init: Activation,
    ReLU, LeakyReLU, pools, Dropout & co., Identity), so its entry has no build_config. A
    layer attribute `build_config_value` replaces the recorded build_config (a multi-argument
    build() records {"shapes_dict": {...}}).
kg.Functional(name, flat_io=False) and
kg.Sequential(name, input_shape, layers, input_name="input_layer")
    A model; either can be called as a layer of a Functional (nested models). `flat_io`: a
    model made with one input (output) tensor rather than a list, keras.Model(x, y): Keras 3
    writes its input_layers (output_layers) as one [name, node, tensor] triple, not a list of
    them (Keras 2 always writes lists). Functional:
      input(shape, name=None, dtype="float32") -> Tensor          shape without the batch axis
      call(layer, inputs, *, out_shape=None, kwargs=None, n_outputs=1, args=None,
         out_dtype="float32")
          -> Tensor or a tuple of n_outputs Tensors (out_shape: one shape, or a list of
          n_outputs shapes; out_dtype likewise). `inputs` is a Tensor or a list of them (a
          list becomes one list argument, as Concatenate takes it); `args` overrides the whole
          positional argument list (tensors, numbers, tagged values); `kwargs` are call kwargs
          (tensors allowed). out_shape (without batch) defaults to the first input's shape.
      output(*tensors)
    Layer ordering and node indices follow Keras (Function.map_graph: depth order, then first
    traversal; a Functional's own node index starts at 1).

Writers and views
-----------------
    write_keras(model, path, keras_version="3.10.0", date_saved=DATE)   .keras zip
    write_weights_h5(model, path)          the Keras 3 `.weights.h5` (= model.weights.h5)
    write_h5(model, path, keras=3|2)       legacy full-model .h5
    write_json_pair(model, json_path, weights_path, keras=2)
    keras_config(model) -> dict            config.json (Keras 3)
    legacy_config(model, keras) -> dict    the `model_config` of a legacy .h5 / model.json
    v3_weights(model) -> {address: ndarray}, v3_var_names(model) -> {vars group: name}
    legacy_weights(model, keras) -> (layer_names, {layer: [weight names]}, {address: ndarray})
    tensor_ref(t) -> the {"class_name": "__keras_tensor__", ...} dict of a Tensor
    snake_case(class_name) -> Keras' naming.to_snake_case
"""

import io
import json
import re
import zipfile

import h5py
import numpy as np

DATE = "2025-08-25@17:12:09"
DEFAULT = object()
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # ZipFile.open(name, "w") stamps entries with this


def snake_case(name):
    """Keras' naming.to_snake_case: the slot name of a class in model.weights.h5."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def dtype_policy(name="float32"):
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
            "registered_name": None}


class Var:
    def __init__(self, name, value, trainable=True, path=None, name_k2=None):
        self.name = name
        self.name_k2 = name_k2
        self.value = np.asarray(value)
        self.trainable = trainable
        self.path = path


class Obj:
    """A saveable object with variables and child saveables (see the module's doc)."""

    def __init__(self, class_name, name, vars=(), children=()):
        self.class_name = class_name
        self.name = name
        self.vars = list(vars)
        self.children = list(children)

    def weights(self):
        """Keras' layer.weights: own variables, then each child's, in tracking order."""
        out = [(v, [self.name]) for v in self.vars]
        for _, child in self.children:
            for c in (child if isinstance(child, list) else [child]):
                out += [(v, [self.name] + scope) for v, scope in c.weights()]
        return out


class Layer(Obj):
    def __init__(self, class_name, name, config=None, *, module="keras.layers",
                 registered_name=DEFAULT, vars=(), children=(), kind="layer", config_k2=None,
                 dtype="float32", out_shape=None, built_at_init=False):
        super().__init__(class_name, name, vars, children)
        self.built_at_init = built_at_init
        self.out_shape = None if out_shape is None else tuple(out_shape)
        self.module = module
        if registered_name is DEFAULT:
            registered_name = None if module in ("keras.layers", "keras") else class_name
        self.registered_name = registered_name
        self.user_config = dict(config or {})
        self.user_config_k2 = None if config_k2 is None else dict(config_k2)
        self.kind = kind
        self.dtype = dtype
        self.nodes = []  # [(args, kwargs, input_tensors)] in call order
        self.first_node = 0

    def config(self):
        if self.kind == "op":
            return {"name": self.name, **self.user_config}
        return {"name": self.name, "trainable": True, "dtype": dtype_policy(self.dtype),
                **self.user_config}

    def config_k2(self):
        base = self.user_config if self.user_config_k2 is None else self.user_config_k2
        return {"name": self.name, "trainable": True, "dtype": self.dtype, **base}

    def is_layer(self):
        return self.kind == "layer"


class Tensor:
    def __init__(self, producer, node_index, tensor_index, shape, dtype="float32"):
        self.producer = producer
        self.node_index = node_index
        self.tensor_index = tensor_index
        self.shape = tuple(shape)
        self.dtype = dtype

    def history(self):
        return [self.producer.name, self.node_index, self.tensor_index]


def tensor_ref(t):
    """A tensor in a Keras 3 node: the serialized KerasTensor."""
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, *t.shape], "dtype": t.dtype, "keras_history": t.history()}}


def _flatten_tensors(value):
    """The Tensors of a nested structure, in Keras' flatten order (dict keys sorted)."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flatten_tensors(v)]
    if isinstance(value, dict):
        return [t for k in sorted(value) for t in _flatten_tensors(value[k])]
    return []


def _serialize(value):
    """Call arguments as a Keras 3 node holds them (tensors as __keras_tensor__)."""
    if isinstance(value, Tensor):
        return tensor_ref(value)
    if isinstance(value, (list, tuple)):
        return [_serialize(v) for v in value]
    if isinstance(value, dict):
        return {k: _serialize(v) for k, v in value.items()}
    return value


class InputLayer(Layer):
    def __init__(self, name, shape, dtype="float32"):
        super().__init__("InputLayer", name)
        self.shape = tuple(shape)
        self.input_dtype = dtype
        self.nodes = [None]  # the input node, node index 0

    def config(self):
        return {"batch_shape": [None, *self.shape], "dtype": self.input_dtype, "sparse": False,
                "ragged": False, "name": self.name}

    def config_k2(self):
        return {"batch_input_shape": [None, *self.shape], "dtype": self.input_dtype,
                "sparse": False, "ragged": False, "name": self.name}


class _Model(Layer):
    """What Functional and Sequential share as layers of another model."""

    def save_layers(self):
        """The layers Keras saves under `layers/` (Functional: incl. InputLayers; no ops)."""
        return [l for l in self.ordered_layers() if l.is_layer()]

    def weights(self):
        out = []
        for layer in self.save_layers():
            out += [(v, scope) for v, scope in layer.weights()]
        return out

    def _weights_obj(self):
        """The model as a saveable: its layers as the `layers` container."""
        return Obj(self.class_name, self.name, children=[("layers", self.save_layers())])


class Functional(_Model):
    def __init__(self, name, flat_io=False):
        super().__init__("Functional", name, module="keras.src.models.functional",
                         registered_name="Functional")
        self.flat_io = flat_io
        self.inputs = []
        self.outputs = []
        self.first_node = 1  # node 0 of a Functional is its own input -> output node

    def input(self, shape, name=None, dtype="float32"):
        n = len(self.inputs)
        layer = InputLayer(name or ("input_layer" if n == 0 else f"input_layer_{n}"), shape,
                           dtype)
        t = Tensor(layer, 0, 0, shape, dtype)
        self.inputs.append(t)
        return t

    def call(self, layer, inputs, *, out_shape=None, kwargs=None, n_outputs=1, args=None,
             out_dtype="float32"):
        if args is None:
            args = [list(inputs) if isinstance(inputs, (list, tuple)) else inputs]
        kwargs = dict(kwargs or {})
        tensors = _flatten_tensors(args) + _flatten_tensors(kwargs)
        if out_shape is None:
            out_shape = tensors[0].shape if tensors else ()
        node_index = layer.first_node + len(layer.nodes)
        layer.nodes.append((args, kwargs, tensors))
        shapes = out_shape if n_outputs > 1 and isinstance(out_shape, list) else \
            [out_shape] * n_outputs
        dtypes = out_dtype if isinstance(out_dtype, list) else [out_dtype] * n_outputs
        outs = tuple(Tensor(layer, node_index, i, shapes[i], dtypes[i])
                     for i in range(n_outputs))
        return outs[0] if n_outputs == 1 else outs

    def output(self, *tensors):
        self.outputs = list(tensors)

    # -- Keras' Function.map_graph: which operations, in which order --
    def _graph(self):
        nodes_order, op_index, finished = [], {}, set()

        def visit(t):
            op, idx = t.producer, t.node_index
            key = (id(op), idx)
            if key in finished:
                return
            if op not in op_index:
                op_index[op] = len(op_index)
            if not isinstance(op, InputLayer):
                for parent in self._node_inputs(op, idx):
                    visit(parent)
            finished.add(key)
            nodes_order.append((op, idx))

        for t in self.outputs:
            visit(t)
        node_depth, op_depth = {}, {}
        for op, idx in reversed(nodes_order):
            depth = max(node_depth.setdefault((id(op), idx), 0), op_depth.get(op, 0))
            op_depth[op] = depth
            node_depth[(id(op), idx)] = depth
            if not isinstance(op, InputLayer):
                for parent in self._node_inputs(op, idx):
                    pk = (id(parent.producer), parent.node_index)
                    node_depth[pk] = max(depth + 1, node_depth.get(pk, 0))
        for t in self.inputs:
            if t.producer not in op_depth:
                op_depth[t.producer] = 0
                op_index[t.producer] = -1
        return sorted(op_depth, key=lambda op: (-op_depth[op], op_index[op]))

    @staticmethod
    def _node_inputs(op, node_index):
        return op.nodes[node_index - op.first_node][2]

    def ordered_layers(self):
        return self._graph()

    def _inbound_nodes_v3(self, layer):
        if isinstance(layer, InputLayer):
            return []
        return [{"args": _serialize(args), "kwargs": _serialize(kwargs)}
                for args, kwargs, _ in layer.nodes]

    def _io_layers(self, tensors, keras=3):
        if self.flat_io and keras == 3 and len(tensors) == 1:
            return tensors[0].history()
        return [t.history() for t in tensors]

    def config(self):
        layers = []
        for layer in self.ordered_layers():
            entry = layer_entry(layer)
            entry["name"] = layer.name
            entry["inbound_nodes"] = self._inbound_nodes_v3(layer)
            layers.append(entry)
        return {"name": self.name, "trainable": True, "layers": layers,
                "input_layers": self._io_layers(self.inputs),
                "output_layers": self._io_layers(self.outputs)}

    def build_config(self):
        return {"input_shape": None}


class Sequential(_Model):
    def __init__(self, name, input_shape, layers, input_name="input_layer"):
        super().__init__("Sequential", name, module="keras", registered_name=None)
        self.input_layer = InputLayer(input_name, input_shape)
        self.layers = list(layers)
        self.input_shape = tuple(input_shape)
        # Shapes along the chain for build configs: each layer may declare `out_shape`.
        shape = self.input_shape
        for layer in self.layers:
            layer.seq_input_shape = shape
            shape = layer.out_shape or shape

    def ordered_layers(self):
        return self.layers  # Sequential.layers leaves the InputLayer out

    def config(self):
        layers = [layer_entry(self.input_layer)]
        for layer in self.layers:
            entry = layer_entry(layer)
            if layer.is_layer() and not layer.built_at_init:
                entry["build_config"] = {"input_shape": [None, *layer.seq_input_shape]}
            layers.append(entry)
        return {"name": self.name, "trainable": True, "dtype": dtype_policy(), "layers": layers,
                "build_input_shape": [None, *self.input_shape]}

    def build_config(self):
        return {"input_shape": [None, *self.input_shape]}


def _build_input_shape(layer):
    """build_config of a called layer: the shapes of its first call's inputs (or the layer's
    own `build_config_value`, e.g. the {"shapes_dict": ...} of a multi-argument build())."""
    if getattr(layer, "build_config_value", None) is not None:
        return layer.build_config_value
    if isinstance(layer, (InputLayer, _Model)) or not layer.nodes or not layer.is_layer() \
            or layer.built_at_init:
        return None
    args, _, tensors = layer.nodes[0]
    first = args[0] if args else None
    if isinstance(first, (list, tuple)):
        return {"input_shape": [[None, *t.shape] for t in _flatten_tensors(first)]}
    return {"input_shape": [None, *tensors[0].shape]} if tensors else None


def layer_entry(layer):
    """One entry of config.layers: module, class_name, config, registered_name, build_config."""
    entry = {"module": layer.module, "class_name": layer.class_name, "config": layer.config(),
             "registered_name": layer.registered_name}
    build = layer.build_config() if isinstance(layer, _Model) else _build_input_shape(layer)
    if build is not None:
        entry["build_config"] = build
    return entry


def keras_config(model):
    """config.json of a Keras 3 .keras file."""
    entry = {"module": model.module, "class_name": model.class_name, "config": model.config(),
             "registered_name": model.registered_name, "build_config": model.build_config()}
    if isinstance(model, Sequential):
        entry["compile_config"] = {}
    return entry


# ---- Keras 3 weights: model.weights.h5 -----------------------------------------------------

def _v3_walk(obj, path, out_weights, out_names):
    """Keras' _save_state: `<path>/vars` (named) with vars/N, then the children's slots."""
    out_names[f"{path}/vars" if path else "vars"] = obj.name
    for i, v in enumerate(obj.vars):
        out_weights[f"{path}/vars/{i}" if path else f"vars/{i}"] = v.value
    for attr, child in obj.children:
        base = f"{path}/{attr}" if path else attr
        if isinstance(child, list):
            used = {}
            for c in child:
                slot = snake_case(c.class_name)
                if slot in used:
                    used[slot] += 1
                    slot = f"{slot}_{used[slot]}"
                else:
                    used[slot] = 0
                _v3_walk(_as_saveable(c), f"{base}/{slot}", out_weights, out_names)
        else:
            _v3_walk(_as_saveable(child), base, out_weights, out_names)


def _as_saveable(obj):
    return obj._weights_obj() if isinstance(obj, _Model) else obj


def _v3_tree(model):
    weights, names = {}, {}
    _v3_walk(_as_saveable(model), "", weights, names)
    return weights, names


def v3_weights(model):
    return _v3_tree(model)[0]


def v3_var_names(model):
    return _v3_tree(model)[1]


def _weights_h5_bytes(model):
    """model.weights.h5 as Keras' H5IOStore writes it (h5py defaults, groups made on demand)."""
    weights, names = _v3_tree(model)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for group, name in names.items():
            g = f.require_group(group)
            g.attrs["name"] = name
        for address, value in weights.items():
            f[address] = value
    return buf.getvalue()


def write_weights_h5(model, path):
    with open(path, "wb") as out:
        out.write(_weights_h5_bytes(model))


def write_keras(model, path, keras_version="3.10.0", date_saved=DATE):
    """A .keras zip: metadata.json, config.json, model.weights.h5, stored uncompressed."""
    metadata = json.dumps({"keras_version": keras_version, "date_saved": date_saved})
    config = json.dumps(keras_config(model))
    with zipfile.ZipFile(path, "w") as zf:
        with zf.open("metadata.json", "w") as f:
            f.write(metadata.encode())
        with zf.open("config.json", "w") as f:
            f.write(config.encode())
        info = zipfile.ZipInfo("model.weights.h5", date_time=_ZIP_TIME)
        info.external_attr = 0o600 << 16
        zf.writestr(info, _weights_h5_bytes(model))


# ---- legacy .h5 ----------------------------------------------------------------------------

def _legacy_node_k2(layer, node):
    """A Keras 2 node: [[inbound layer, node index, tensor index, kwargs], ...]."""
    args, kwargs, tensors = node
    # tf.keras 2 drops the training and mask arguments the framework passed itself.
    plain = {k: v for k, v in kwargs.items()
             if not isinstance(v, Tensor) and k not in ("training", "mask")}
    return [[*t.history(), plain] for t in tensors]


def _legacy_nested(value):
    """Keras 3's legacy serialization of nested objects: {class_name, config} only."""
    if isinstance(value, dict):
        if "class_name" in value and "config" in value and "module" in value:
            if value["class_name"] == "__keras_tensor__":
                return value
            return {"class_name": value.get("registered_name") or value["class_name"],
                    "config": _legacy_nested(value["config"])}
        return {k: _legacy_nested(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_legacy_nested(v) for v in value]
    return value


def _legacy_layer(layer, model, keras):
    if isinstance(layer, _Model):
        inner = legacy_config(layer, keras)
        entry = {"class_name": inner["class_name"], "config": inner["config"]}
    elif keras == 2:
        entry = {"class_name": layer.class_name, "config": layer.config_k2()}
    else:
        entry = {"class_name": layer.registered_name or layer.class_name,
                 "config": _legacy_nested(layer.config())}
    if isinstance(model, Functional):
        entry["name"] = layer.name
        if keras == 2:
            entry["inbound_nodes"] = ([] if isinstance(layer, InputLayer)
                                      else [_legacy_node_k2(layer, n) for n in layer.nodes])
        else:
            entry["inbound_nodes"] = model._inbound_nodes_v3(layer)
    return entry


def legacy_config(model, keras):
    """The `model_config` of a legacy .h5 (and Keras 2 model.json without its version keys)."""
    if isinstance(model, Sequential):
        layers = [_legacy_layer(model.input_layer, model, keras)]
        layers += [_legacy_layer(l, model, keras) for l in model.layers]
        config = {"name": model.name, "layers": layers}
        if keras == 3:
            config = {"name": model.name, "trainable": True,
                      "dtype": _legacy_nested(dtype_policy()), "layers": layers,
                      "build_input_shape": [None, *model.input_shape]}
        return {"class_name": "Sequential", "config": config}
    config = {"name": model.name}
    if keras == 3:
        config["trainable"] = True
    config["layers"] = [_legacy_layer(l, model, keras) for l in model.ordered_layers()]
    config["input_layers"] = model._io_layers(model.inputs, keras)
    config["output_layers"] = model._io_layers(model.outputs, keras)
    return {"class_name": "Functional", "config": config}


def _weight_name(var, scope, keras):
    own = var.name_k2 if keras == 2 and var.name_k2 else var.name
    name = var.path or "/".join(scope + [own])
    return name + ":0" if keras == 2 and not name.endswith(":0") else name


def legacy_weights(model, keras):
    """(layer_names, {layer: [weight names]}, {address under model_weights: ndarray}).

    Keras' _legacy_weights: a layer's weights (own, then its children's) with the trainable
    ones first. Every layer of model.layers is listed (Functional: incl. InputLayers)."""
    layers = model.save_layers()
    layer_names, names, tensors = [], {}, {}
    for layer in layers:
        ws = layer.weights()
        ordered = [w for w in ws if w[0].trainable] + [w for w in ws if not w[0].trainable]
        wnames = [_weight_name(v, scope, keras) for v, scope in ordered]
        layer_names.append(layer.name)
        names[layer.name] = wnames
        for (v, _), wn in zip(ordered, wnames):
            tensors[f"{layer.name}/{wn}"] = v.value
    return layer_names, names, tensors


def _attr_strings(values, keras):
    """A list of names as Keras stores it: h5py 3 (Keras 3) makes variable-length strings of a
    list of bytes; Keras 2 under h5py 2 stored fixed-length ones (as in the Keras 2.0 and 2.3
    files of fastmachinelearning/example-models); an empty list is an empty float array."""
    encoded = [v.encode("utf8") for v in values]
    if not encoded:
        return np.asarray([])
    return encoded if keras == 3 else np.array(encoded)


def _attr_text(text, keras):
    """A scalar string attribute: variable-length either way (Keras 3 writes bytes, the Keras 2
    files seen write str)."""
    return text.encode("utf8") if keras == 3 else text


def _write_weight_groups(group, model, keras):
    """save_weights_to_hdf5_group: layer_names, backend, keras_version, one group per layer."""
    layer_names, names, tensors = legacy_weights(model, keras)
    group.attrs["layer_names"] = _attr_strings(layer_names, keras)
    group.attrs["backend"] = _attr_text("tensorflow", keras)
    group.attrs["keras_version"] = _attr_text("3.10.0" if keras == 3 else "2.9.0", keras)
    for layer in sorted(layer_names):
        g = group.create_group(layer)
        g.attrs["weight_names"] = _attr_strings(names[layer], keras)
        for wn in names[layer]:
            g.create_dataset(wn, data=tensors[f"{layer}/{wn}"])
    if keras == 3:
        g = group.create_group("top_level_model_weights")
        g.attrs["weight_names"] = _attr_strings([], keras)


def write_h5(model, path, keras=3):
    """A legacy full-model .h5 (model.save("x.h5")) of Keras 3 or Keras 2."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "3.10.0" if keras == 3 else "2.9.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = _attr_text(json.dumps(legacy_config(model, keras)), keras)
        _write_weight_groups(f.create_group("model_weights"), model, keras)


def write_json_pair(model, json_path, weights_path, keras=2):
    """model.to_json() and model.save_weights("w.h5") of Keras 2 (weights at the file's root)."""
    config = legacy_config(model, keras)
    config.update({"keras_version": "2.9.0", "backend": "tensorflow"})
    with open(json_path, "w") as f:
        f.write(json.dumps(config))
    with h5py.File(weights_path, "w") as f:
        _write_weight_groups(f, model, keras)
