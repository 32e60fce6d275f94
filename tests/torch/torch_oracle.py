"""The torch side of a conversion test: inputs on the fixed-point grid, torch's own forward pass
as the oracle, and the graph message of the module (spec frontends.md §6.2).

    prepared = prepare(module, [(8,)], kif=(1, 4, 4))
    open(path, "wb").write(alkaid_client.torch.pack(prepared.message))  # alkaidc convert
    write_run_input(samples_path, prepared.inputs)      # for `alkaidc run`
    mismatches = compare(parse_run_output(stdout), prepared.expected)

Inputs follow the reference's harness: for input j, `default_rng(j)` draws uniform floats in
[-k*2^i, 2^i - 2^-f) and floors them to the grid step 2^-f. Weights may be perturbed as the
reference does (every parameter, then every buffer but `num_batches_tracked`, of rank >= 1 gets
round(N(0,1)*4)/4 from `default_rng(42)`; `running_var` at least 0.25). The oracle is torch's
forward pass on a float64 copy of the module ("the user's model is the truth"): one row per
sample, the outputs flattened in C order and concatenated in output order, as an ALIR program
numbers its outputs.
"""
import collections
import copy

import numpy as np
import torch

from alkaid_client.torch import export

Prepared = collections.namedtuple("Prepared", "message inputs expected")
# message: the graph message; inputs: (n, inputs) float64, the ALIR program's input rows;
# expected: (n, outputs) float64 torch results, or None for a case that must fail.


def grid_data(shape, kif, seed):
    """Random values on the kif grid, drawn as the reference's tests draw them (float32)."""
    k, i, f = kif
    rng = np.random.default_rng(seed)
    raw = rng.uniform(-(2.0 ** i) * k, 2.0 ** i - 2.0 ** -f, size=shape).astype(np.float32)
    return np.floor(raw * 2.0 ** f).astype(np.float32) / 2.0 ** f


def perturb_weights(module, seed=42, fbits=2):
    """The reference's weight perturbation: values on a grid of 2^-fbits, in place."""
    rng = np.random.default_rng(seed)
    step = 2.0 ** fbits
    with torch.no_grad():
        for p in module.parameters():
            if p.ndim == 0:
                continue
            r = rng.standard_normal(tuple(p.shape)).astype(np.float32)
            p.copy_(torch.tensor(np.round(r * step) / step))
        for name, b in module.named_buffers():
            if "num_batches_tracked" in name or b.ndim == 0:
                continue
            r = rng.standard_normal(tuple(b.shape)).astype(np.float32)
            value = np.round(r * step) / step
            if name.endswith("running_var"):
                value = np.maximum(value, 0.25).astype(np.float32)
            b.copy_(torch.tensor(value))


def forward(module, datas, dtype=torch.float64, per_sample=False):
    """torch's outputs for the batch `datas` (arrays with the batch axis first), computed by a
    copy of the module in `dtype`: (n, outputs) float64. per_sample: call the module once per
    sample (batch axis 1), for models whose result mixes the samples of a batch."""
    n = datas[0].shape[0]
    model = copy.deepcopy(module).to(dtype)
    # Floating inputs take the forward's dtype; integer inputs (bitwise cases) keep theirs.
    tensors = [torch.from_numpy(np.ascontiguousarray(d)).to(dtype) if d.dtype.kind == "f"
               else torch.from_numpy(np.ascontiguousarray(d)) for d in datas]
    batches = [[t[s:s + 1] for t in tensors] for s in range(n)] if per_sample else [tensors]
    rows = []
    with torch.no_grad():
        for batch in batches:
            out = model(*batch)
            outs = out if isinstance(out, (tuple, list)) else (out,)
            # torch.equal & co. return a Python bool: one output.
            rows.append(np.concatenate([np.asarray(torch.as_tensor(o).detach().to(
                torch.float64)).reshape(len(batch[0]), -1) for o in outs], axis=1))
    return np.concatenate(rows, axis=0)


def prepare(module, sample_shapes, kif=(1, 4, 4), n=2048, data=None, perturb=True,
            must_fail=False, per_sample=False):
    """Puts `module` in eval mode (perturbing its weights first if asked), draws `n` samples
    (or takes data(n), a list of arrays with the batch axis) and returns the Prepared case.
    sample_shapes are per sample; the export gives each input the batch axis of 1.
    per_sample: see forward()."""
    module.eval()
    if perturb:
        perturb_weights(module)
    datas = data(n) if data is not None else [
        grid_data((n,) + tuple(s), kif, seed=j) for j, s in enumerate(sample_shapes)]
    message = export(module, [(1,) + tuple(s) for s in sample_shapes], kif)
    inputs = np.concatenate([d.reshape(n, -1).astype(np.float64) for d in datas], axis=1)
    expected = None if must_fail else forward(module, datas, per_sample=per_sample)
    return Prepared(message, inputs, expected)


def prepare_case(case):
    """prepare() for a torch_models.Case."""
    return prepare(case.make(), case.shapes, case.kif, case.n, case.data, case.perturb,
                   case.fails is not None, case.per_sample)


def write_run_input(path, inputs):
    """`alkaidc run` input: one sample per line, the values as exact decimal floats."""
    with open(path, "w") as f:
        for row in inputs:
            f.write(" ".join(repr(float(v)) for v in row) + "\n")


def parse_run_output(text):
    """`alkaidc run` output -> (n, outputs) float64."""
    return np.array([[float(v) for v in line.split()] for line in text.splitlines()],
                    dtype=np.float64)


def compare(got, expected, atol=0.0):
    """(sample, output, got, expected) for every value that differs, with numpy's
    assert_array_equal rule (as the reference's tests): -0 equals 0, NaN equals NaN; with atol,
    values at most atol apart are equal too. A shape mismatch is one entry (-1, -1, got shape,
    expected shape)."""
    if got.shape != expected.shape:
        return [(-1, -1, got.shape, expected.shape)]
    differ = (got != expected) & ~(np.isnan(got) & np.isnan(expected))
    if atol:
        with np.errstate(invalid="ignore"):
            differ &= ~(np.abs(got - expected) <= atol)
    return [(s, j, got[s, j], expected[s, j]) for s, j in zip(*np.nonzero(differ))]
