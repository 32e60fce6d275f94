"""numpy evaluation of the reference's example model, written from the specification
(shared/spec/trace-alir.md section 5 and converter/example.py's operation(x)), independently of
the C tracer. Only float64 numpy arithmetic is used: every value of this model is a dyadic
rational with few bits, so numpy computes it exactly.
"""
import numpy as np


def quantize_trn_wrap(x, k, i, f):
    """quantizers' fixed-point quantizer with TRN rounding and WRAP overflow (spec 2.10)."""
    i = max(i, -f)
    x = np.floor(x * 2.0**f) / 2.0**f
    half = k * 2.0 ** (i + k - 1)
    return np.mod(x + half, 2.0 ** (i + k)) - half


def operation(x):
    """The example model on one sample x of shape (R, C)."""
    x = quantize_trn_wrap(x, 1, 8, 4)
    a = np.maximum(x, 0)
    b = x[:, 1::2].T
    c = np.round(np.sin(b) * np.pi)
    d = np.repeat(c, 2, axis=0) * 3 + 4
    e = np.max(np.stack([d, -d * 2], axis=0), axis=0)
    f = c @ e.T
    g = np.einsum("ij,kj->ik", c, d)
    h = np.sum(g, axis=0)
    idx = np.argsort(h)[:2]
    j = h[idx].ravel()
    return j[None] + f[..., None] + a[-2::-4, :2] + ((a[0, -2:] > 0) & (a[-1, :2] > 0))
