"""Exports a torch module as the graph message of alkaid's `torch` tracer.

    from alkaid_client.torch import export
    message = export(model.eval(), [(1, 3, 8, 8)], inputs_kif=(1, 4, 4))
    result = Client().convert(message=message)         # or Client().convert_torch(...)

    python3 -m alkaid_client.torch model.py:Net --input-shape 1,3,8,8 -o graph.msgpack
    alkaidc convert graph.msgpack -o net.alir.json

The daemon has no Python and no torch, so the user's side captures the model once with torch.fx
symbolic tracing and sends the graph: nodes with their arguments as tagged msgpack values, the
attributes and parameters of every module a node calls, and every tensor the graph reads. The
format is docs/protocol.md, "Model payloads" (source: schemas/torch.json, whose module and
function name tables reach this file through _schema.PAYLOADS).

Two decisions shape the code. Function targets are named by object identity against the
table's names resolved in the installed torch, so the several spellings fx may record for one
function (torch 1.13 records `F.gelu` as `torch._C._nn.gelu`, the same object) arrive as one
name. Leaf modules are chosen by their type's name, so that classes newer than this torch
(`ZeroPad1d`, `CircularPad2d`) are leaves wherever the client has them.

Needs torch (Debian: python3-torch) and msgpack. Run as a module (`python3 -m`): this file's
name shadows the torch package when its directory is on sys.path.
"""

import argparse
import contextlib
import functools
import importlib
import importlib.util
import sys
import threading

import msgpack
import torch
import torch.fx

from . import _schema

__all__ = ["export", "pack", "canonical_function_name", "type_name"]

_PAYLOAD = _schema.PAYLOADS["torch"]

# Tensor dtypes as the daemon's type codes; floating types all travel as float32 (f4).
_INT_DTYPES = {"uint8": "u1", "uint16": "u2", "uint32": "u4", "uint64": "u8", "int8": "i1",
               "int16": "i2", "int32": "i4", "int64": "i8", "bool": "b1"}
_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")

# Factories that take a size, not a tensor: torch 1.13 does not hand a traced size to fx.
_SIZE_FACTORIES = ("zeros", "ones", "full")

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

# Tracing patches torch's module attributes (_traced_size_factories): one trace at a time.
_TRACE_LOCK = threading.Lock()


class ExportError(ValueError):
    """The module cannot be written as a graph message (the message names the culprit)."""


def type_name(cls):
    """`<module>.<qualname>` of a class: the `type` the daemon matches modules by."""
    return f"{cls.__module__}.{cls.__qualname__}"


@functools.lru_cache(maxsize=1)
def _function_table():
    """id(function object) -> canonical name, for the table names this torch has. The first
    name of the table wins for aliases; the objects are kept alive by their modules."""
    table = {}
    for name in _PAYLOAD["functions"]:
        module_name, attr = name.rsplit(".", 1)
        obj = getattr(importlib.import_module(module_name), attr, None)
        if obj is not None and id(obj) not in table:
            table[id(obj)] = name
    return table


def canonical_function_name(fn):
    """The name a call_function target is sent under (docs/protocol.md, "Function names")."""
    name = _function_table().get(id(fn))
    if name is not None:
        return name
    owner = getattr(fn, "__objclass__", None)  # method descriptors have no __module__
    module = getattr(fn, "__module__", None) or getattr(owner, "__module__", None) or "builtins"
    if module == "_operator":
        module = "operator"  # the public module re-exports every _operator function
    short = getattr(fn, "__name__", None)
    if short is not None and getattr(sys.modules.get(module), short, None) is fn:
        return f"{module}.{short}"
    qualname = getattr(fn, "__qualname__", None) or short or type(fn).__name__
    return f"{module}.{qualname}"


def _leaf_attrs():
    """Leaf type name -> the attributes always sent for it."""
    return {t: row["attrs"] for row in _PAYLOAD["modules"] for t in row["types"]}


class _Tracer(torch.fx.Tracer):
    """fx's tracer with the leaf rule of the protocol: the table's classes by type name, the
    caller's extra classes, then fx's own rule (torch.nn classes except Sequential)."""

    def __init__(self, leaf_types, extra_leaves):
        super().__init__()
        self._leaf_types = leaf_types
        self._extra_leaves = tuple(extra_leaves)

    def is_leaf_module(self, m, module_qualified_name):
        if type_name(type(m)) in self._leaf_types or type(m) in self._extra_leaves:
            return True
        return super().is_leaf_module(m, module_qualified_name)


@contextlib.contextmanager
def _traced_size_factories():
    """Records torch.zeros/ones/full with a traced size as call_function nodes of the
    original functions (fx.wrap for a module attribute). Newer torch dispatches these to fx
    by itself; the wrapper then gives the same node."""
    originals = {name: getattr(torch, name) for name in _SIZE_FACTORIES}

    def wrap(fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            proxies = []
            torch.fx.node.map_aggregate(
                (args, kwargs),
                lambda a: proxies.append(a) if isinstance(a, torch.fx.Proxy) else None)
            if not proxies:
                return fn(*args, **kwargs)
            return proxies[0].tracer.create_proxy("call_function", fn, args, kwargs)
        return call

    try:
        for name, fn in originals.items():
            setattr(torch, name, wrap(fn))
        yield
    finally:
        for name, fn in originals.items():
            setattr(torch, name, fn)


def _trace(module, leaf_types, extra_leaves):
    """The fx graph of `module`. fx stores tensor constants met while tracing as new
    attributes of the root (`_tensor_constant0`); they are returned and removed again, so
    that the user's module is left as it was."""
    before = set(vars(module))
    tracer = _Tracer(leaf_types, extra_leaves)
    try:
        with _TRACE_LOCK, _traced_size_factories():
            graph = tracer.trace(module)
    except (torch.fx.proxy.TraceError, TypeError, NotImplementedError, RuntimeError) as e:
        raise ExportError(f"torch.fx cannot trace {type_name(type(module))}: {e}") from e
    added = {name: getattr(module, name) for name in set(vars(module)) - before}
    for name in added:
        delattr(module, name)
    return graph, added


def _tensor_message(tensor, key):
    """A tensor as {dtype, shape, data}: C order, little-endian, floats as float32."""
    t = tensor.detach().cpu()
    kind = str(t.dtype).replace("torch.", "")
    if kind in _FLOAT_DTYPES:
        t, code = t.to(torch.float32), "f4"
    elif kind in _INT_DTYPES:
        code = _INT_DTYPES[kind]
    else:
        raise ExportError(f"tensor '{key}' has dtype {t.dtype}; only real floating, integer "
                          "and bool tensors can be sent")
    array = t.contiguous().numpy()
    data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
    return {"dtype": code, "shape": list(t.shape), "data": data}


class _Encoder:
    """Turns fx argument values into tagged msgpack values (docs/protocol.md, "Values"),
    collecting the tensors they name."""

    def __init__(self, tensors):
        self.tensors = tensors
        self.where = ""

    def value(self, v):
        # Order matters: bool is an int, torch.Size and named tuples are tuples.
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            if not _INT64_MIN <= v <= _INT64_MAX:
                raise ExportError(f"{self.where}: the integer {v} is outside int64")
            return v
        if isinstance(v, float):
            return v
        if isinstance(v, torch.fx.Node):
            return {"$node": v.name}
        if isinstance(v, tuple):
            return {"$tuple": [self.value(x) for x in v]}
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            return self.mapping(v)
        if isinstance(v, slice):
            return {"$slice": [self.value(v.start), self.value(v.stop), self.value(v.step)]}
        if v is Ellipsis:
            return {"$ellipsis": True}
        for cls, tag in ((torch.dtype, "$dtype"), (torch.device, "$device"),
                         (torch.memory_format, "$memory_format"), (torch.layout, "$layout")):
            if isinstance(v, cls):
                return {tag: str(v)}
        raise ExportError(f"{self.where}: a value of type {type(v).__name__} cannot be sent "
                          f"({v!r:.60})")

    def mapping(self, d):
        out = {}
        for k, v in d.items():
            if not isinstance(k, str) or k.startswith("$"):
                raise ExportError(f"{self.where}: dict key {k!r} is not a str without a "
                                  "leading '$'")
            out[k] = self.value(v)
        return out

    def tensor_key(self, tensor, key):
        if key not in self.tensors:
            self.tensors[key] = _tensor_message(tensor, key)
        return key


def _module_entry(encoder, path, module, required_attrs):
    """{type, attrs, params} of one called module; its parameters and buffers go to tensors."""
    encoder.where = f"module '{path}'"
    attrs = {}
    for name, v in vars(module).items():
        if name.startswith("_"):
            continue
        try:
            attrs[name] = encoder.value(v)
        except ExportError:
            continue  # a tensor or another object: nothing a handler reads as an attribute
    for name in required_attrs:
        if name not in attrs:
            attrs[name] = encoder.value(getattr(module, name, None))
    params = {}
    for role, tensor in list(module._parameters.items()) + list(module._buffers.items()):
        params[role] = None if tensor is None else encoder.tensor_key(tensor, f"{path}.{role}")
    return {"type": type_name(type(module)), "attrs": attrs, "params": params}


def _resolve_attr(root, target):
    obj = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _shapes(input_shapes):
    """One shape (a sequence of ints) or a sequence of shapes -> list of lists of ints."""
    shapes = list(input_shapes)
    if shapes and all(isinstance(d, int) for d in shapes):
        shapes = [shapes]
    out = []
    for n, shape in enumerate(shapes):
        dims = list(shape)
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
            raise ExportError(f"input_shapes[{n}] = {shape!r} is not a sequence of "
                              "non-negative ints")
        out.append(dims)
    return out


def _kif_triple(value, where):
    triple = list(value)
    if (len(triple) != 3 or not all(isinstance(x, int) and not isinstance(x, bool)
                                    for x in triple) or triple[0] not in (0, 1)):
        raise ExportError(f"{where} = {value!r} is not a (k, i, f) triple of ints with k 0 or 1")
    return triple


def _kifs(inputs_kif, n_inputs):
    """One triple for every input, or one triple per input."""
    items = list(inputs_kif)
    if items and all(isinstance(x, (list, tuple)) for x in items):
        if len(items) != n_inputs:
            raise ExportError(f"inputs_kif has {len(items)} triples for {n_inputs} inputs")
        return [_kif_triple(t, f"inputs_kif[{n}]") for n, t in enumerate(items)]
    return _kif_triple(items, "inputs_kif")


def export(module, input_shapes, inputs_kif=(1, 4, 4), *, leaf_modules=()):
    """The graph message of `module` for the daemon's `torch` tracer.

    input_shapes: one shape per `forward` argument, with the leading batch axis of 1 as torch
    users write it (`[(1, 3, 8, 8)]`; a single shape may be given bare). inputs_kif: one
    (k, i, f) fixed-point format for every input element, or one triple per input.
    leaf_modules: extra module classes to keep as single `call_module` nodes, for the
    daemon's second-level plugins. The module is traced as it is (call `.eval()` first) and
    left unchanged. Returns a dict to pass to Client.convert(message=...) or msgpack.
    """
    if not isinstance(module, torch.nn.Module):
        raise ExportError(f"export needs a torch.nn.Module, not {type(module).__name__}")
    shapes = _shapes(input_shapes)
    required_attrs = _leaf_attrs()
    graph, constants = _trace(module, set(required_attrs), leaf_modules)

    placeholders = [n.target for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(shapes):
        raise ExportError(f"forward takes {len(placeholders)} inputs ({', '.join(placeholders)})"
                          f" but input_shapes gives {len(shapes)}")
    kifs = _kifs(inputs_kif, len(shapes))

    tensors = {}
    encoder = _Encoder(tensors)
    modules = dict(module.named_modules())
    nodes, called = [], {}
    for node in graph.nodes:
        encoder.where = f"node '{node.name}'"
        target = node.target
        if node.op == "call_function":
            target = canonical_function_name(node.target)
        elif node.op == "call_module":
            called[target] = modules[target]
        elif node.op == "get_attr":
            value = constants[target] if target in constants else _resolve_attr(module, target)
            if not isinstance(value, torch.Tensor):
                raise ExportError(f"node '{node.name}' reads {target}, a "
                                  f"{type(value).__name__}, not a tensor")
            encoder.tensor_key(value, target)
        nodes.append({"name": node.name, "op": node.op, "target": str(target),
                      "args": [encoder.value(a) for a in node.args],
                      "kwargs": encoder.mapping(node.kwargs)})

    module_entries = {path: _module_entry(encoder, path, m, required_attrs.get(
        type_name(type(m)), ())) for path, m in called.items()}
    return {
        "framework": "torch",
        "model": {"version": _PAYLOAD["version"], "torch_version": str(torch.__version__),
                  "graph": {"nodes": nodes}, "modules": module_entries, "tensors": tensors},
        "inputs": [{"shape": s} for s in shapes],
        "inputs_kif": kifs,
    }


def pack(message):
    """The message as msgpack bytes (str as str, bytes as bin), as alkaidc reads it."""
    return msgpack.packb(message, use_bin_type=True)


def _ints(text, what):
    try:
        return [int(x) for x in text.split(",") if x.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be comma-separated ints, not {text!r}")


def _load_module(spec):
    """MODULE_FILE:NAME -> an nn.Module: NAME is a module instance, a class or a function
    returning one, called without arguments."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise ExportError(f"'{spec}' is not MODULE_FILE:NAME")
    loader_spec = importlib.util.spec_from_file_location("alkaid_export_model", path)
    if loader_spec is None:
        raise ExportError(f"cannot load '{path}' as Python")
    source = importlib.util.module_from_spec(loader_spec)
    sys.modules[loader_spec.name] = source  # lets the file's classes be found by fx
    loader_spec.loader.exec_module(source)
    obj = getattr(source, name, None)
    if obj is None:
        raise ExportError(f"'{path}' defines no '{name}'")
    if not isinstance(obj, torch.nn.Module):
        obj = obj()
    if not isinstance(obj, torch.nn.Module):
        raise ExportError(f"'{name}' in '{path}' gives a {type(obj).__name__}, not a module")
    return obj


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python3 -m alkaid_client.torch",
        description="Writes a torch module's graph message for `alkaidc convert`.")
    ap.add_argument("model", metavar="MODULE_FILE:NAME",
                    help="a Python file and the module, class or factory in it (the module "
                    "is put in eval mode)")
    ap.add_argument("--input-shape", action="append", required=True,
                    type=lambda t: _ints(t, "--input-shape"),
                    help="one forward argument's shape with the batch axis, e.g. 1,8 "
                    "(repeat per argument)")
    ap.add_argument("--input-kif", action="append", type=lambda t: _ints(t, "--input-kif"),
                    help="k,i,f of every input (default 1,4,4), or repeat once per input")
    ap.add_argument("-o", "--output", required=True, help="the msgpack file to write")
    args = ap.parse_args(argv)
    kif = args.input_kif or [(1, 4, 4)]
    try:
        module = _load_module(args.model).eval()
        message = export(module, args.input_shape, kif[0] if len(kif) == 1 else kif)
    except ExportError as e:
        print(f"alkaid_client.torch: {e}", file=sys.stderr)
        return 1
    with open(args.output, "wb") as f:
        f.write(pack(message))
    return 0


if __name__ == "__main__":
    sys.exit(main())
