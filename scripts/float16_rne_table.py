#!/usr/bin/python3
"""Write internal/half/testdata/float16_rne.txt: float32 bits -> numpy's float16 bits.

    /usr/bin/python3 scripts/float16_rne_table.py > internal/half/testdata/float16_rne.txt

(Debian's python3-numpy.) Each line is "F32HEX F16HEX", the float32 bit pattern and the bits
of np.float32(x).astype(np.float16), which rounds to nearest, ties to even, and gives ±inf
from |x| >= 65520. The inputs: float16 midpoints (exact ties) and the float32s one ulp either
side of them, at normal and subnormal float16s, at the tops of binades (where rounding up
moves to the next exponent), around 2^-25 (half the smallest subnormal), around the
65504/65520 overflow boundary, zeros, float32 subnormals, ±inf, a NaN, and random values
(seeded, so the file is the same every run).
"""
import sys
import warnings

import numpy as np

warnings.simplefilter("ignore")  # numpy warns about the overflowing casts


def f16(h):
    return np.array([h], dtype=np.uint16).view(np.float16)[0]


def f32_bits(x):
    return int(np.array([x], dtype=np.float32).view(np.uint32)[0])


def from_bits(b):
    return np.array([b], dtype=np.uint32).view(np.float32)[0]


inputs = []  # float32 bit patterns, in order, without repeats


def add(b):
    b &= 0xFFFFFFFF
    if b not in seen:
        seen.add(b)
        inputs.append(b)


seen = set()


def add_around(b):
    """b and its float32 neighbours one ulp below and above (same sign)."""
    for d in (-1, 0, 1):
        if 0 <= (b & 0x7FFFFFFF) + d <= 0x7F800000:
            add(b + d)


def midpoint(h):
    """The float32 bits of the value halfway between positive float16 h and h+1 (exact)."""
    lo, hi = np.float64(f16(h)), np.float64(f16(h + 1)) if h + 1 < 0x7C00 else np.float64(65536)
    m = np.float32((lo + hi) / 2)
    assert np.float64(m) == (lo + hi) / 2
    return f32_bits(m)


# Ties and near-ties: subnormals (low, around the subnormal/normal boundary), small normals,
# values near 1, tops of binades (midpoint between 0x?BFF and 0x?C00 and similar), large
# values, and the last gap below 65504.
hs = list(range(0, 8)) + [0x155, 0x2AA, 0x3FD, 0x3FE, 0x3FF, 0x400, 0x401, 0x402]
hs += [0x7FE, 0x7FF, 0x800, 0x1234, 0x2000, 0x2001, 0x33FF, 0x3555, 0x37FF]
hs += [0x3BFE, 0x3BFF, 0x3C00, 0x3C01, 0x3C02, 0x3E00, 0x3FFF, 0x4000, 0x4001, 0x43FF, 0x4BFF]
hs += [0x5000, 0x5555, 0x57FF, 0x6000, 0x6BFF, 0x7000, 0x77FF, 0x7BFD, 0x7BFE, 0x7BFF]
for h in hs:
    for s in (0, 0x80000000):
        add_around(midpoint(h) | s)

# Float16 values themselves (exact, round trip).
for h in [0x0001, 0x03FF, 0x0400, 0x3C00, 0x7BFF]:
    for s in (0, 0x80000000):
        add(f32_bits(np.float32(f16(h))) | s)

# Half the smallest subnormal (2^-25: ties to 0), 3*2^-25 (ties to 2*2^-24), and around them.
for x in (2.0**-25, 3 * 2.0**-25, 2.0**-26, 2.0**-24):
    for s in (0, 0x80000000):
        add_around(f32_bits(np.float32(x)) | s)

# Zeros, float32 subnormals, the smallest normal float32.
for b in (0x00000000, 0x00000001, 0x00400000, 0x007FFFFF, 0x00800000):
    for s in (0, 0x80000000):
        add(b | s)

# The overflow boundary: 65504 (max), 65519.996 (largest float32 below 65520), 65520, 65536,
# and far beyond; then ±inf and a NaN.
for x in (65504.0, 65519.99609375, 65520.0, 65536.0, 70000.0, 1e10, 3.4028234663852886e38):
    for s in (0, 0x80000000):
        add_around(f32_bits(np.float32(x)) | s)
for b in (0x7F800000, 0xFF800000, 0x7FC00000):
    add(b)

# Random values: uniform bits with exponents across the float16 range, and logit-like
# gaussians at several scales.
rng = np.random.default_rng(20240614)
for b in rng.integers(0, 1 << 23, size=120):
    e = int(rng.integers(127 - 26, 127 + 16))
    s = int(rng.integers(0, 2)) << 31
    add(s | (e << 23) | int(b))
for scale in (0.01, 1.0, 10.0, 1000.0):
    for x in rng.standard_normal(30).astype(np.float32) * np.float32(scale):
        add(f32_bits(x))

xs = np.array(inputs, dtype=np.uint32).view(np.float32)
hs16 = xs.astype(np.float16).view(np.uint16)
print("# float32 bits -> float16 bits from numpy %s: np.float32(x).astype(np.float16)" % np.__version__)
print("# made by: /usr/bin/python3 scripts/float16_rne_table.py > internal/half/testdata/float16_rne.txt")
for b, h in zip(inputs, hs16):
    print("%08x %04x" % (b, int(h)))
