#!/usr/bin/python3
"""Issue 17: the latency and cost of every op our tools write, end to end, against the spec's
surrogate formulas (trace-alir.md 3.9 and cmvm.md 2.1-2.5, 10.2), recomputed here in Python
from each op's operands, and the program totals `alkaidc inspect` prints.

Programs: the example model traced by `alkaidc trace-example` (both solver modes) and converted
by `alkaidc convert --local`, every function of trace_ops_gen (the reference's operation tests:
muxes, relus, lookups large and small, products, bit operations, constant adds), and solutions
written by `alkaidc cmvm -o` / `alkaidc scm -o` (carry_size -1: the modulo-65535 path).

Opcode 11 is left out: the tracer never writes it (ternary fusion is a code generator's pass).
Where the spec words a formula as a product (0.3 y for bit operations) the float operations are
done in the reference's order (3 y / 5 * 2^-1), since the results are compared bit for bit.

Usage: /usr/bin/python3 test_metadata.py ALKAIDC TRACE_OPS_GEN SOURCE_ROOT [FUNCTION...]
(FUNCTION...: only these trace_ops_gen functions, for a quick run; the opcode coverage check is
then skipped.)
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alir_numpy import iceil_log2_f32, minimal_kif  # noqa: E402

LUT_X, LUT_Y = 6, 5


def int8(v):
    return (int(v) + 128) % 256 - 128


def f32(v):
    return float(np.float32(v))


def lsb_loc(x):
    """cmvm 2.1 on float32(x): exponent of the lowest set bit; 127 for 0 or NaN."""
    x = np.float32(x)
    if x == 0 or np.isnan(x):
        return 127
    bits = int(np.array([x], dtype=np.float32).view(np.uint32)[0])
    exponent, mantissa = (bits >> 23) & 0xFF, (bits & 0x7FFFFF) | (1 << 23)
    trailing = (mantissa & -mantissa).bit_length() - 1
    return int8(exponent + trailing - 150)


def bit_width(q):
    """cmvm 2.5's qint_to_bw, float32 arithmetic."""
    lo, hi, step = (np.float32(v) for v in q)
    if lo == hi == 0:
        return 0
    mn, mx = np.float32(lo / step), np.float32(hi / step)
    return int8(max(iceil_log2_f32(float(mn)), iceil_log2_f32(float(np.float32(mx + 1)))) +
                (1 if lo < 0 else 0))


def overlap_counts(q0, q1, shift1):
    """cmvm 2.5: (accum, overlap, tail) of operand 1 shifted by shift1 against operand 0,
    including the swap test's quirk."""
    r0, r1 = int8(-lsb_loc(q0[2])), int8(-lsb_loc(q1[2]) - shift1)
    l0, l1 = int8(r0 - bit_width(q0)), int8(r1 - bit_width(q1))
    s = sorted([l0, r0, l1, r1])
    if r0 < l0 or r1 < l0:
        s[1], s[2] = s[2], s[1]
    return int8(s[1] - s[0]), int8(s[2] - s[1]), int8(s[3] - s[2])


def width(q):
    return sum(minimal_kif(*q))


def cost_lat_add(q0, q1, shift, n_carry, sub):
    """cmvm 10.2: subtraction pays the whole span, addition the bits above the pass-through."""
    left, overlap, right = overlap_counts(q0, q1, shift)
    if overlap <= 0:
        return 0, 0
    cost = max(left + overlap + right - 1, 1) if sub else left + overlap
    return cost, (cost - 1 + n_carry - 1) // n_carry * 0.025390625 + 1.09375


def cost_lat_mul(q0, q1, n_add, n_carry):
    """3.9: b = clog2((hi - lo) / step) of each operand widened to include 0."""
    b = [iceil_log2_f32((max(q[1], 0) - min(q[0], 0)) / q[2]) for q in (q0, q1)]
    cost = min(b[0] * (b[1] + n_add - 1) // n_add, b[1] * (b[0] + n_add - 1) // n_add)
    lat = min(b[0] * ((b[1] - 2 + n_carry) // n_carry), b[1] * ((b[0] - 2 + n_carry) // n_carry))
    return cost * 0.75, lat * 0.025390625 + 1.09375


def luts_one_bit(bits_nd, top):
    """LUT6s for one output bit (3.9): up to 6 inputs one LUT unless constant; above, split on
    an input: at the top every input is tried, below the one whose halves agree most (the first
    on ties); identical halves need one side only."""
    d = bits_nd.ndim
    if d <= LUT_X:
        return 1 if np.unique(bits_nd).size > 1 else 0

    def split(axis):
        left, right = np.take(bits_nd, 0, axis=axis), np.take(bits_nd, 1, axis=axis)
        if np.array_equal(left, right):
            return luts_one_bit(left, False)
        return luts_one_bit(left, False) + luts_one_bit(right, False)

    if top:
        return min(split(axis) for axis in range(d))
    agree = [int(np.sum(np.take(bits_nd, 0, axis=a) == np.take(bits_nd, 1, axis=a)))
             for a in range(d)]
    return split(agree.index(max(agree)))


def cost_lat_lut(q_in, table):
    w = width(q_in)
    if w - LUT_X > 6:
        return 0.5 * 2.0 ** (w - LUT_X), max(w - LUT_X, 1) * 0.5
    extra = max(w - LUT_X, 0)
    lat = 0.075 + 0.2 * min(extra, 3) + 0.8 * max(extra - 3, 0)
    # The table padded to 2^w entries (spec 4.4's pad), rotated by half for a signed key so
    # that the position is the key's two's-complement code; padding reads as 0.
    k, i, _ = minimal_kif(*q_in)
    lo, _, step = q_in
    pad_left = round((lo + 2**i) / step) if k else round(lo / step)
    values = np.zeros(2**w, dtype=np.int64)
    values[pad_left:pad_left + len(table["table"])] = table["table"]
    if lo < 0:
        values = np.roll(values, 2**w // 2)
    out = table["spec"]["out_qint"]
    out_bw = width((out["min"], out["max"], out["step"]))
    total = 0.0
    for b in range(out_bw):
        column = (values >> b) & 1
        if np.all(column == column[0]):
            continue
        total += luts_one_bit(column.reshape((2,) * w), True)
    return total * max(1.0 + (0.5625 - 0.109375 * out_bw), 1), lat


def cost_cadd(q_out, m, s):
    m = abs(m)
    if m == 0:
        return 0
    k, i, f = minimal_kif(*q_out)
    trailing = (m & -m).bit_length() - 1
    low = max(-f, trailing - s)
    span = max(k + i - 1 - low + 1, 0)
    return max(span - 1, 0) * 0.15


def const_share(ops, j):
    """3.9's cd: 1 for a constant, looked through negations, wraps and unary bit ops, the mean
    over a mux's operands, the max over a binary bit op's."""
    op = ops[j]
    if op[1] == 5:
        return 1.0
    if op[1] in (-2, 3, 9):
        return const_share(ops, op[0][0])
    if op[1] == 10:
        return max(const_share(ops, op[0][0]), const_share(ops, op[0][1]))
    if op[1] == 6:
        return 0.5 * (const_share(ops, op[0][0]) + const_share(ops, op[0][1]))
    return 0.0


def consumers(users, j, ops):
    """Effective consumers of op j: through -2, 3 and 9 users; -1 for an output."""
    out = set()
    for c in users[j]:
        if c < 0:
            out.add(-1)
        elif ops[c][1] in (-2, 3, 9):
            out |= consumers(users, c, ops)
        else:
            out.add(ops[c][1])
    return out


def surrogate(doc):
    """[(cost, latency)] of every op of the program, from spec 3.9."""
    model = doc["model"]
    ops, carry, adder = model[5], model[6], model[7]
    tables = model[8] if len(model) > 8 else None
    n_add, n_carry = adder % 65535, carry % 65535
    users = {j: set() for j in range(len(ops))}
    for j, op in enumerate(ops):
        if op[1] != -1:
            for a in op[0]:
                users[a].add(j)
    for n, j in enumerate(model[2]):
        if j >= 0:
            users[j].add(-1 - n)
    result = []
    for j, (addr, opcode, data, q, _, _) in enumerate(ops):
        qa = [ops[a][3] for a in addr]
        if opcode in (0, 1):
            c, d = cost_lat_add(qa[0], qa[1], data[0], n_carry, opcode == 1)
        elif opcode == 2:
            c, d = (0, 0) if qa[0][0] >= 0 else (width(q) * 0.5, 0)
        elif opcode == 4:
            c = cost_cadd(q, data[0], data[1]) if consumers(users, j, ops) & {0, 1, 6} else 0
            d = 0
        elif opcode == 6:
            c, d = width(q) * (0.5 - 0.36 * const_share(ops, j)), 0.5
        elif opcode == 7:
            c, d = cost_lat_mul(qa[0], qa[1], n_add, n_carry)
        elif opcode == 8:
            c, d = cost_lat_lut(qa[0], tables[data[0]])
        elif opcode == 10:
            overlap = overlap_counts(qa[0], qa[1], data[0])[1]
            c, d = (0, 0) if overlap <= 0 else (3 * overlap / LUT_Y * 2.0 ** (LUT_Y - LUT_X), 0.5)
        elif opcode == 11:
            raise ValueError("op %d: no tool of ours writes opcode 11 (ternary fusion is a "
                             "code generator's pass)" % j)
        else:  # -2, -1, 3, 5, 9: wires
            c, d = 0, 0
        latency = d + max([result[a][1] for a in addr] + [0])
        result.append((c, latency))
    return result


def check_program(name, path, alkaidc):
    with open(path) as fh:
        doc = json.load(fh)
    ops = doc["model"][5]
    problems = []
    for j, ((cost, latency), op) in enumerate(zip(surrogate(doc), ops)):
        if (float(op[5]), float(op[4])) != (float(cost), float(latency)):
            problems.append("op %d (opcode %d): cost %r latency %r, the spec gives %r and %r"
                            % (j, op[1], op[5], op[4], cost, latency))
    # The totals alkaidc inspect prints: the cost summed in op order, and the span of the
    # output ops' latencies (an index of -1 reads the last op, spec 4.1).
    total = 0
    for op in ops:
        total += op[5]
    lats = [ops[j][4] for j in doc["model"][2]] or [0]
    lines = dict(line.split(": ", 1) for line in subprocess.run(
        [alkaidc, "inspect", path], capture_output=True, text=True, check=True).stdout.splitlines()
        if line.startswith(("cost:", "latency:")))
    want_latency = "%r .. %r" % (float(min(lats)), float(max(lats)))
    if lines.get("cost") != repr(float(total)) or lines.get("latency") != want_latency:
        problems.append("inspect prints cost %s, latency %s; the ops sum to %r, span %s"
                        % (lines.get("cost"), lines.get("latency"), float(total), want_latency))
    for p in problems[:3]:
        print("FAIL %-26s %s" % (name, p))
    if not problems:
        print("ok   %-26s %d ops" % (name, len(ops)))
    return bool(problems)


def main():
    alkaidc, gen, root = sys.argv[1:4]
    chosen = sys.argv[4:]
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        programs = []
        for shape, mode in (("4,5", "compat"), ("16,4", "compat"), ("5,8", "improved")):
            path = os.path.join(tmp, "example_%s_%s.json" % (shape, mode))
            subprocess.run([alkaidc, "trace-example", "--shape", shape, "--mode", mode, "-o",
                            path], check=True)
            programs.append(("example %s %s" % (shape, mode), path))
        path = os.path.join(tmp, "converted.json")
        subprocess.run([alkaidc, "convert", "--local", os.path.join(root, "examples",
                        "example_model.json"), "-o", path], check=True, capture_output=True)
        programs.append(("convert --local", path))
        kernel = os.path.join(tmp, "kernel.txt")
        np.savetxt(kernel, np.random.default_rng(3).integers(-64, 64, size=(6, 5)) / 8.0,
                   fmt="%r")
        for what, cmd in (("cmvm -o", [alkaidc, "cmvm", kernel]),
                          ("scm -o 1234.5", [alkaidc, "scm", "1234.5"]),
                          ("scm -o 0.1 improved", [alkaidc, "scm", "0.1", "--k", "0"])):
            path = os.path.join(tmp, what.replace(" ", "_") + ".json")
            subprocess.run(cmd + ["-o", path], check=True, capture_output=True)
            programs.append((what, path))
        names = chosen or subprocess.run([gen, "--list"], capture_output=True, text=True,
                                         check=True).stdout.split()
        for name in names:
            path = os.path.join(tmp, name + ".json")
            subprocess.run([gen, name, path], check=True)
            programs.append((name, path))
        seen = set()
        for name, path in programs:
            failed |= check_program(name, path, alkaidc)
            with open(path) as fh:
                seen |= {op[1] for op in json.load(fh)["model"][5]}
    missing = set(range(-2, 11)) - seen
    if missing and not chosen:
        print("FAIL no program has opcodes %s" % sorted(missing))
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
