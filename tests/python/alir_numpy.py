#!/usr/bin/python3
"""Independent numpy evaluator ("oracle") for ALIR programs, spec version 4.

This module is written from the specification only -- shared/spec/trace-alir.md sections 4.1,
4.2, 4.4, 4.5 and 4.8 and shared/spec/cmvm.md sections 2.2-2.3 -- and deliberately NOT from the
C sources under src/ or client/, so that it can catch bugs in the C interpreter.  It uses only the
Python 3 standard library and numpy.

Semantics (spec 4.2, the integer form the C++ reference interpreter uses for `predict`):

* every op i has the fixed-point format (k, i, f) = minimal kif of its interval, width
  W = k + i + f; its value is an integer x meaning x * 2**-f;
* only read (-1), relu (2), quantize (3) and mux (6) wrap to their own width; all other ops
  trust the interval and keep the exact integer result;
* output j is (neg ? -x : x) converted to float64 and multiplied by 2**(out_shift - f);
  an output index of -1 gives 0.0.

Evaluation is vectorised over samples: one pass over the ops, each op computed for every sample
at once with numpy int64.  Whenever an intermediate could leave the int64 range (bound checked
per op from the actual operand magnitudes), that op falls back to numpy object arrays holding
exact Python ints, so the oracle never overflows silently.  Its results are therefore the exact
mathematical values of the table in 4.2; they equal the int64 interpreter's results whenever the
latter does not overflow (overflow is undefined behaviour in the reference anyway).

One consequence: an unsigned op of width 64 holding a value >= 2**63 keeps that exact value here,
while an int64 interpreter would see a negative number; the spec (values are "an int64 x") does
not cover that case.

Places where the spec leaves behaviour undefined (negative shift amounts in ops 0/1/2/3/4, mux
alignment exponents that are negative, a mux condition of width 0) are evaluated with the natural
mathematical reading and recorded in `AlirModel.warnings`.

CLI:
    /usr/bin/python3 alir_numpy.py MODEL.json[.gz] --input IN.txt --output OUT.txt
IN.txt holds one sample per line (numbers separated by spaces and/or commas); OUT.txt receives one
line per sample, the outputs separated by single spaces, each printed as repr(float(v)).
"""

import argparse
import gzip
import json
import math
import re
import sys

import numpy as np

__all__ = [
    "AlirError",
    "AlirLookupError",
    "AlirModel",
    "iceil_log2_f32",
    "llround",
    "load",
    "load_bytes",
    "minimal_kif",
    "read_samples",
    "format_samples",
]

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

# int64 arithmetic is used only while every intermediate is provably below 2**_SAFE_BITS in
# magnitude; otherwise the op is recomputed on exact Python ints (numpy object arrays).
_SAFE_BITS = 62

KNOWN_OPCODES = (-2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)


class AlirError(ValueError):
    """The file is not a valid ALIR v4 program (or uses something this oracle rejects)."""


class AlirLookupError(AlirError):
    """A lookup (opcode 8) index fell outside its table for at least one sample."""

    def __init__(self, message, op_index, bad_samples):
        super().__init__(message)
        self.op_index = op_index
        self.bad_samples = bad_samples  # numpy bool array over samples


# ---------------------------------------------------------------------------------------------
# Numeric primitives (cmvm.md 2.2 / 2.3 as the C++ JSON loader evaluates them)
# ---------------------------------------------------------------------------------------------


def iceil_log2_f32(x):
    """iceil_log2 of float32(x): biased_exponent - 127 + (mantissa != 0); sign ignored.

    x is a Python float (double); it is first rounded to float32 (round to nearest even, as a
    C double -> float conversion does).  Returns -127 for 0.
    """
    with np.errstate(over="ignore", under="ignore"):
        bits = int(np.array([x], dtype=np.float64).astype(np.float32).view(np.uint32)[0])
    exponent = (bits >> 23) & 0xFF
    mantissa = bits & 0x7FFFFF
    return exponent - 127 + (1 if mantissa else 0)


def _iceil_log2_f32_of_int(n):
    """iceil_log2(float(n)) for a non-negative integer n, with an exact int -> float32 rounding.

    The reference converts the int64 argument straight to float (round to nearest, ties to even);
    going through a double first could double-round, so the rounding is done on the integer.
    """
    if n < 0:
        n = -n
    if n == 0:
        return -127
    length = n.bit_length()
    if length > 24:
        drop = length - 24
        mantissa = n >> drop
        rest = n - (mantissa << drop)
        half = 1 << (drop - 1)
        if rest > half or (rest == half and (mantissa & 1)):
            mantissa += 1
        n = mantissa << drop  # may now be a power of two with one more bit; fine
    # Now n is exactly representable as a float32 (ignoring range, irrelevant for int64 input).
    length = n.bit_length()
    return (length - 1) + (0 if n == (1 << (length - 1)) else 1)


def llround(v):
    """C llround: round a double to the nearest integer, halves away from zero."""
    if not math.isfinite(v):
        raise AlirError("llround of a non-finite value %r" % (v,))
    lower = math.floor(v)
    frac = v - lower  # exact for doubles
    if frac > 0.5 or (frac == 0.5 and v > 0):
        return int(lower) + 1
    return int(lower)


def minimal_kif(lo, hi, step):
    """(k, i, f) of an interval, as the reference's C++ JSON loader computes it.

    k = (min < 0); f = -iceil_log2(float32(step)); int_min = llround(min/step),
    int_max = llround(max/step); bits_arg = max(|int_min|, int_max + 1);
    bits = iceil_log2(float32(bits_arg)) if bits_arg > 0 else 0; i = bits - f.
    The zero interval (min == max == 0) gives (0, 0, 0).
    """
    lo = float(lo)
    hi = float(hi)
    step = float(step)
    if lo == 0.0 and hi == 0.0:
        return (0, 0, 0)
    k = 1 if lo < 0 else 0
    f = -iceil_log2_f32(step)
    int_min = llround(lo / step)
    int_max = llround(hi / step)
    bits_arg = max(abs(int_min), int_max + 1)
    bits = _iceil_log2_f32_of_int(bits_arg) if bits_arg > 0 else 0
    return (k, bits - f, f)


# ---------------------------------------------------------------------------------------------
# Exact-or-int64 vector helpers.  A value vector is a numpy array of dtype int64 or object
# (Python ints); `bits` is an upper bound on the bit length of |value| over all samples.
# ---------------------------------------------------------------------------------------------


def _as_obj(a):
    return a if a.dtype == object else a.astype(object)


def _bitlen(a):
    """Exact max bit length of |a| over the vector."""
    if a.size == 0:
        return 0
    if a.dtype == object:
        return max(abs(int(v)).bit_length() for v in a)
    return max(abs(int(a.min())), abs(int(a.max()))).bit_length()


def _normalise(a):
    """Return (vector, exact bits), converting object vectors back to int64 when they fit."""
    bits = _bitlen(a)
    if a.dtype == object:
        if bits <= 63:
            a = a.astype(np.int64)
    elif a.dtype != np.int64:
        a = a.astype(np.int64)
    return a, bits


def _shift(a, bits, n):
    """Multiply by 2**n for n >= 0, floor-divide by 2**-n (arithmetic shift) for n < 0."""
    if n == 0:
        return a, bits
    if n > 0:
        if a.dtype != object and bits + n <= _SAFE_BITS:
            return np.left_shift(a, n), bits + n
        return _as_obj(a) << n, bits + n
    m = -n
    if a.dtype == object:
        out = a >> m
    else:
        out = np.right_shift(a, min(m, 63))  # shifting an int64 by 63 already gives 0 / -1
    return out, max(bits - m, 1)


def _add(a, abits, b, bbits, subtract=False):
    bits = max(abits, bbits) + 1
    if a.dtype != object and b.dtype != object and bits <= _SAFE_BITS:
        return (a - b if subtract else a + b), bits
    a = _as_obj(a)
    b = _as_obj(b)
    return (a - b if subtract else a + b), bits


def _add_const(a, abits, c):
    """a + c for a Python int constant c."""
    bits = max(abits, abs(c).bit_length()) + 1
    if a.dtype != object and bits <= _SAFE_BITS:
        return a + np.int64(c), bits
    return _as_obj(a) + c, bits


def _wrap(a, width, signed):
    """Keep the low `width` bits, sign-extended if `signed` (two's complement)."""
    if width <= 0:
        return np.zeros(a.shape, dtype=np.int64)
    if a.dtype != object and width <= 63:
        mask = np.int64((1 << width) - 1)
        y = np.bitwise_and(a, mask)
        if signed:
            half = np.int64(1 << (width - 1))
            y = np.bitwise_xor(y, half) - half
        return y
    # Exact path (also width 64, where an unsigned result may not fit int64).
    y = _as_obj(a) & ((1 << width) - 1)
    if signed:
        half = 1 << (width - 1)
        y = (y ^ half) - half
    return y


def _to_float64(a):
    """Integer vector -> float64, correctly rounded (nearest, ties to even) like a C cast."""
    if a.dtype == object:
        return np.array([float(v) for v in a], dtype=np.float64)
    return a.astype(np.float64)


# ---------------------------------------------------------------------------------------------
# Data model and loader (spec 4.1 / 4.5)
# ---------------------------------------------------------------------------------------------


class AlirOp:
    """One ALIR op: addr, opcode, data, qint = (min, max, step) and its derived kif / width."""

    __slots__ = ("addr", "opcode", "data", "qint", "latency", "cost", "k", "i", "f", "width")

    def __init__(self, addr, opcode, data, qint, latency, cost):
        self.addr = addr
        self.opcode = opcode
        self.data = data
        self.qint = qint
        self.latency = latency
        self.cost = cost
        self.k, self.i, self.f = minimal_kif(*qint)
        self.width = self.k + self.i + self.f

    def __repr__(self):
        return "AlirOp(addr=%r, opcode=%d, data=%r, qint=%r, kif=(%d, %d, %d))" % (
            self.addr, self.opcode, self.data, self.qint, self.k, self.i, self.f)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _int_list(value, what, lo=INT64_MIN, hi=INT64_MAX):
    if not isinstance(value, list):
        raise AlirError("%s must be a list" % what)
    out = []
    for j, v in enumerate(value):
        if not _is_int(v):
            raise AlirError("%s[%d] must be an integer, got %r" % (what, j, v))
        if v < lo or v > hi:
            raise AlirError("%s[%d] = %d out of range" % (what, j, v))
        out.append(v)
    return out


def _number(v, what):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise AlirError("%s must be a number, got %r" % (what, v))
    return float(v)


class AlirModel:
    """An ALIR v4 CombLogic program that can be evaluated on float64 samples."""

    def __init__(self, n_in, n_out, inp_shifts, out_idxs, out_shifts, out_negs, ops,
                 carry_size, adder_size, tables):
        self.n_in = n_in
        self.n_out = n_out
        self.inp_shifts = inp_shifts
        self.out_idxs = out_idxs
        self.out_shifts = out_shifts
        self.out_negs = out_negs
        self.ops = ops
        self.carry_size = carry_size
        self.adder_size = adder_size
        self.tables = tables  # list of numpy int64 arrays
        self.warnings = []
        self.lookup_pads = {}  # op index -> pad_left (4.4)
        self._validate()

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, doc):
        """Build from the decoded JSON document {"model": M, "meta": ..., "spec_version": 4}."""
        if not isinstance(doc, dict):
            raise AlirError("top level must be a JSON object")
        if doc.get("spec_version") != 4 or isinstance(doc.get("spec_version"), bool):
            raise AlirError("spec_version must be 4, got %r" % (doc.get("spec_version"),))
        if doc.get("meta") != "ALIRModel":
            raise AlirError("meta must be 'ALIRModel', got %r" % (doc.get("meta"),))
        model = doc.get("model")
        if not isinstance(model, list) or len(model) not in (8, 9):
            raise AlirError("model must be an array of 8 or 9 elements")

        shape = _int_list(model[0], "shape", 0)
        if len(shape) != 2:
            raise AlirError("shape must be [n_in, n_out]")
        n_in, n_out = shape
        inp_shifts = _int_list(model[1], "inp_shifts")
        out_idxs = _int_list(model[2], "out_idxs")
        out_shifts = _int_list(model[3], "out_shifts")
        if not isinstance(model[4], list):
            raise AlirError("out_negs must be a list")
        out_negs = []
        for j, v in enumerate(model[4]):
            if isinstance(v, bool):
                out_negs.append(v)
            elif _is_int(v):
                out_negs.append(v != 0)
            else:
                raise AlirError("out_negs[%d] must be a bool or int" % j)
        if len(inp_shifts) != n_in:
            raise AlirError("len(inp_shifts) = %d != n_in = %d" % (len(inp_shifts), n_in))
        for name, lst in (("out_idxs", out_idxs), ("out_shifts", out_shifts),
                          ("out_negs", out_negs)):
            if len(lst) != n_out:
                raise AlirError("len(%s) = %d != n_out = %d" % (name, len(lst), n_out))

        if not isinstance(model[5], list):
            raise AlirError("ops must be a list")
        ops = []
        for n, rec in enumerate(model[5]):
            if not isinstance(rec, list) or len(rec) != 6:
                raise AlirError("op %d must be an array of 6 elements" % n)
            addr = _int_list(rec[0], "op %d addr" % n, 0, (1 << 32) - 1)
            if not _is_int(rec[1]):
                raise AlirError("op %d opcode must be an integer" % n)
            data = _int_list(rec[2], "op %d data" % n)
            q = rec[3]
            if not isinstance(q, list) or len(q) != 3:
                raise AlirError("op %d qint must be [min, max, step]" % n)
            qint = tuple(_number(v, "op %d qint" % n) for v in q)
            ops.append(AlirOp(addr, rec[1], data, qint, rec[4], rec[5]))

        carry_size = model[6]
        adder_size = model[7]
        tables = []
        raw_tables = model[8] if len(model) == 9 else None
        if raw_tables is not None:
            if not isinstance(raw_tables, list):
                raise AlirError("lookup_tables must be null or a list")
            for t, entry in enumerate(raw_tables):
                if not isinstance(entry, dict) or "table" not in entry:
                    raise AlirError("lookup table %d has no 'table' key" % t)
                values = _int_list(entry["table"], "table %d" % t, -(1 << 31), (1 << 31) - 1)
                tables.append(np.array(values, dtype=np.int64))
        return cls(n_in, n_out, inp_shifts, out_idxs, out_shifts, out_negs, ops,
                   carry_size, adder_size, tables)

    def _validate(self):
        """Checks that mirror what the reference's loader rejects (spec 4.5 / 4.7)."""
        n_ops = len(self.ops)
        for n, op in enumerate(self.ops):
            where = "op %d (opcode %d)" % (n, op.opcode)
            if op.opcode not in KNOWN_OPCODES:
                raise AlirError("%s: unknown opcode" % where)
            if op.width > 64:
                raise AlirError("%s: width %d > 64 is not representable" % (where, op.width))
            for a in op.addr:
                if a >= n:
                    raise AlirError("%s: address %d is not an earlier op" % (where, a))
            need_addr, need_data = {
                -2: (1, 0), -1: (0, 1), 0: (2, 1), 1: (2, 1), 2: (1, 0), 3: (1, 1),
                4: (1, 2), 5: (0, 1), 6: (3, 1), 7: (2, 0), 8: (1, 1), 9: (1, 1), 10: (2, 2),
            }.get(op.opcode, (None, None))
            if op.opcode == 11:
                if len(op.data) != 2 * len(op.addr):
                    raise AlirError("%s: data must hold (p, s) per operand" % where)
            else:
                if len(op.addr) < need_addr or len(op.data) < need_data:
                    raise AlirError("%s: needs %d addresses and %d data entries"
                                    % (where, need_addr, need_data))
            if op.opcode == -1 and not 0 <= op.data[0] < self.n_in:
                raise AlirError("%s: reads input %d, n_in = %d" % (where, op.data[0], self.n_in))
            if op.opcode == 8:
                t = op.data[0]
                if not 0 <= t < len(self.tables):
                    raise AlirError("%s: table index %d out of range" % (where, t))
                p = self.ops[op.addr[0]]
                lo, _hi, step = p.qint
                if p.k:
                    pad = llround((lo + 2.0 ** p.i) / step)
                else:
                    pad = llround(lo / step)
                self.lookup_pads[n] = pad
            if op.opcode == 6:
                t, u = self.ops[op.addr[0]], self.ops[op.addr[1]]
                sh_t = op.f - t.f
                sh_u = op.f - u.f + op.data[0]
                if sh_t != 0 and sh_u != 0:
                    raise AlirError("%s: both mux alignment shifts are non-zero (%d, %d)"
                                    % (where, sh_t, sh_u))
        for j, idx in enumerate(self.out_idxs):
            if idx != -1 and not 0 <= idx < n_ops:
                raise AlirError("out_idxs[%d] = %d out of range" % (j, idx))

    # -- derived information -----------------------------------------------------------------

    def read_ops(self):
        """List of (op index, input index, qint) for every read op (opcode -1)."""
        return [(n, op.data[0], op.qint) for n, op in enumerate(self.ops) if op.opcode == -1]

    def input_intervals(self):
        """dict input index -> list of the qints of all read ops reading it."""
        out = {}
        for _n, d, q in self.read_ops():
            out.setdefault(d, []).append(q)
        return out

    # -- evaluation --------------------------------------------------------------------------

    def _warn(self, message):
        if message not in self.warnings:
            self.warnings.append(message)

    def predict(self, samples, lookup_oob="raise"):
        """Evaluate on float64 samples of shape (n_samples, n_in); returns (n_samples, n_out).

        lookup_oob: "raise" raises AlirLookupError on the first op whose index is out of range
        for any sample; "mask" instead clamps those indices (so evaluation can continue) and
        returns (result, bad) where bad is a bool array marking the samples that hit an
        out-of-range lookup (their outputs are meaningless).
        """
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise AlirError("samples must have shape (n, %d), got %r" % (self.n_in, x.shape))
        n_samples = x.shape[0]
        bad = np.zeros(n_samples, dtype=bool)
        vals = [None] * len(self.ops)  # per op: integer vector (int64 or object)
        bits = [0] * len(self.ops)  # per op: exact bit length bound of |value|

        for n, op in enumerate(self.ops):
            res = self._exec(n, op, x, vals, bits, bad, lookup_oob)
            vals[n], bits[n] = _normalise(res)

        out = np.zeros((n_samples, self.n_out), dtype=np.float64)
        for j, idx in enumerate(self.out_idxs):
            if idx == -1:
                continue  # stays 0.0
            v = vals[idx]
            if self.out_negs[j]:
                v = -_as_obj(v) if bits[idx] >= 63 else -v
            out[:, j] = np.ldexp(_to_float64(v), self.out_shifts[j] - self.ops[idx].f)
        if lookup_oob == "mask":
            return out, bad
        return out

    def _exec(self, n, op, x, vals, bits, bad, lookup_oob):
        """Compute op n for all samples; returns an int64 or object vector (not yet wrapped
        unless the op wraps)."""
        code = op.opcode
        f = op.f
        A = op.addr
        ops = self.ops

        def operand(j):
            return vals[A[j]], bits[A[j]], ops[A[j]]

        def shift_checked(v, b, amount, what):
            # `amount` > 0 means a right shift in the spec's table; negative is undefined there.
            if amount < 0:
                self._warn("op %d (opcode %d): negative %s shift %d evaluated as a left shift"
                           % (n, code, what, amount))
            return _shift(v, b, -amount)

        if code == -1:  # read: wrap_W(floor(in[d] * 2^(inp_shift + f)))
            d = op.data[0]
            with np.errstate(over="ignore"):
                scaled = np.floor(np.ldexp(x[:, d], self.inp_shifts[d] + f))
            if not np.all(np.isfinite(scaled)):
                raise AlirError("op %d: input %d is not finite after scaling" % (n, d))
            if scaled.size and np.max(np.abs(scaled)) < 2.0 ** 62:
                iv = scaled.astype(np.int64)
            else:
                iv = np.array([int(v) for v in scaled], dtype=object)  # exact for integral doubles
            return _wrap(iv, op.width, op.k)

        if code == -2:  # negate
            a, ab, _ = operand(0)
            return -_as_obj(a) if ab >= 63 else -a

        if code in (0, 1):  # add / sub with operand b scaled by 2^s
            a, ab, pa = operand(0)
            b, bb, pb = operand(1)
            s = op.data[0]
            F = max(pa.f, pb.f - s)
            a, ab = _shift(a, ab, F - pa.f)
            b, bb = _shift(b, bb, F - pb.f + s)
            r, rb = _add(a, ab, b, bb, subtract=(code == 1))
            r, _ = shift_checked(r, rb, F - f, "result")
            return r

        if code == 11:  # signed shifted sum
            terms = []
            for j in range(len(A)):
                p_t, s_t = op.data[2 * j], op.data[2 * j + 1]
                terms.append((operand(j), p_t != 0, s_t))
            if not terms:
                return np.zeros(x.shape[0], dtype=np.int64)
            F = max(t[0][2].f - t[2] for t in terms)
            acc, accb = np.zeros(x.shape[0], dtype=np.int64), 0
            for (v, vb, pv), positive, s_t in terms:
                v, vb = _shift(v, vb, F - pv.f + s_t)
                acc, accb = _add(acc, accb, v, vb, subtract=not positive)
            acc, _ = _shift(acc, accb, -(F - f))  # ">> (F - f), or << if negative"
            return acc

        if code == 2:  # relu
            a, ab, pa = operand(0)
            a = np.maximum(a, 0)
            r, _ = shift_checked(a, ab, pa.f - f, "relu")
            return _wrap(r, op.width, op.k)

        if code == 3:  # quantize: wrap_W(x_a >> (f_a - d - f))
            a, ab, pa = operand(0)
            d = op.data[0]
            r, _ = shift_checked(a, ab, pa.f - d - f, "quantize")
            return _wrap(r, op.width, op.k)

        if code == 4:  # add constant m * 2^-s
            a, ab, pa = operand(0)
            m, s = op.data[0], op.data[1]
            F = max(pa.f, s)
            a, ab = _shift(a, ab, F - pa.f)
            r, rb = _add_const(a, ab, m << (F - s))
            r, _ = shift_checked(r, rb, F - f, "result")
            return r

        if code == 5:  # constant
            return np.full(x.shape[0], op.data[0], dtype=np.int64)

        if code == 6:  # MSB mux
            t, tb, pt = operand(0)
            u, ub, pu = operand(1)
            c, _cb, pc = operand(2)
            d = op.data[0]
            if pc.width <= 0:
                self._warn("op %d: mux condition op %d has width 0; condition taken as 0"
                           % (n, A[2]))
                cond = np.zeros(x.shape[0], dtype=bool)
            else:
                # Bit W_c - 1 of x_c (sign bit if signed, top bit if unsigned).
                if c.dtype == object:
                    cond = np.array([(int(v) >> (pc.width - 1)) & 1 for v in c], dtype=bool)
                else:
                    cond = (np.right_shift(c, min(pc.width - 1, 63)) & 1).astype(bool)
            for amount in (f - pt.f, f - pu.f + d):
                if amount < 0:
                    self._warn("op %d: mux alignment exponent %d < 0 evaluated as a floor shift"
                               % (n, amount))
            t, _ = _shift(t, tb, f - pt.f)
            u, _ = _shift(u, ub, f - pu.f + d)
            if t.dtype == object or u.dtype == object:
                t, u = _as_obj(t), _as_obj(u)
            return _wrap(np.where(cond, t, u), op.width, op.k)

        if code == 7:  # multiply
            a, ab, _ = operand(0)
            b, bb, _ = operand(1)
            if a.dtype != object and b.dtype != object and ab + bb <= _SAFE_BITS:
                return a * b
            return _as_obj(a) * _as_obj(b)

        if code == 8:  # lookup
            a, ab, pa = operand(0)
            table = self.tables[op.data[0]]
            offset = ((1 << (pa.width - 1)) if pa.k else 0) - self.lookup_pads[n]
            idx, _ = _add_const(a, ab, offset)
            oob = np.asarray((idx < 0) | (idx >= len(table)), dtype=bool)
            if oob.any():
                first = int(np.argmax(oob))
                if lookup_oob == "raise":
                    raise AlirLookupError(
                        "op %d: lookup index %d out of range [0, %d) for sample %d "
                        "(%d samples affected)" % (n, int(idx[first]), len(table), first,
                                                    int(oob.sum())), n, oob)
                bad |= oob
                idx = np.where(oob, 0, idx)
            return table[np.asarray(idx, dtype=np.int64)]

        if code == 9:  # unary bit op
            a, ab, pa = operand(0)
            o = op.data[0]
            wa = pa.width
            if o == 0:  # NOT
                if op.k:
                    return ~a
                return _wrap(~a, wa, False) if wa > 0 else np.zeros(x.shape[0], np.int64)
            if o == 1:  # any
                return (a != 0).astype(np.int64)
            if o == 2:  # all
                mask = (1 << wa) - 1 if wa > 0 else 0
                if a.dtype != object and wa <= 62:
                    return (np.bitwise_and(a, np.int64(mask)) == mask).astype(np.int64)
                return np.array([(int(v) & mask) == mask for v in a], dtype=np.int64)
            raise AlirError("op %d: unknown unary bit op %d" % (n, o))

        if code == 10:  # binary bit op
            a, ab, pa = operand(0)
            b, bb, pb = operand(1)
            s, o = op.data[0], op.data[1]
            t = s + pa.f - pb.f
            a, _ = _shift(a, ab, max(-t, 0))
            b, _ = _shift(b, bb, max(t, 0))
            if a.dtype == object or b.dtype == object:
                a, b = _as_obj(a), _as_obj(b)
            if o == 0:
                return a & b
            if o == 1:
                return a | b
            if o == 2:
                return a ^ b
            raise AlirError("op %d: unknown binary bit op %d" % (n, o))

        raise AlirError("op %d: unknown opcode %d" % (n, code))


def load_bytes(raw):
    """Parse an ALIR v4 document from bytes (gzip detected by the magic bytes 1f 8b)."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise AlirError("not valid JSON: %s" % e)
    return AlirModel.from_dict(doc)


def load(path):
    """Load an ALIR v4 JSON file, plain or gzip-compressed."""
    with open(path, "rb") as fh:
        return load_bytes(fh.read())


# ---------------------------------------------------------------------------------------------
# Text formats of the CLI (same as the C tool's `run` command)
# ---------------------------------------------------------------------------------------------

_SEP = re.compile(r"[\s,]+")


def read_samples(text, n_in):
    """One sample per non-blank line; numbers separated by spaces and/or commas."""
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = [t for t in _SEP.split(line.strip()) if t]
        if not tokens:
            continue
        if len(tokens) != n_in:
            raise AlirError("line %d: %d values, expected %d" % (lineno, len(tokens), n_in))
        try:
            rows.append([float(t) for t in tokens])
        except ValueError as e:
            raise AlirError("line %d: %s" % (lineno, e))
    return np.array(rows, dtype=np.float64).reshape(len(rows), n_in)


def format_samples(values):
    """One line per row, values space-separated, each as repr(float(v))."""
    return "".join(" ".join(repr(float(v)) for v in row) + "\n" for row in values)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Evaluate an ALIR v4 program with numpy "
                                 "(independent oracle written from the spec).")
    ap.add_argument("model", help="ALIR JSON file (.json or gzip)")
    ap.add_argument("--input", required=True, help="input samples, one per line")
    ap.add_argument("--output", required=True, help="where to write the outputs")
    args = ap.parse_args(argv)
    try:
        model = load(args.model)
        with open(args.input, "r") as fh:
            samples = read_samples(fh.read(), model.n_in)
        result = model.predict(samples)
    except (AlirError, OSError) as e:
        print("alir_numpy: error: %s" % e, file=sys.stderr)
        return 1
    for w in model.warnings:
        print("alir_numpy: warning: %s" % w, file=sys.stderr)
    with open(args.output, "w") as fh:
        fh.write(format_samples(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
