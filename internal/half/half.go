// Package half converts between float32 and IEEE 754 binary16 (float16)
// bit patterns. Every float16 the label store writes goes through
// FromFloat32 and every one it reads through ToFloat32.
//
// arrow-go's float16.New truncates the mantissa and flushes float16
// subnormals to zero, and its Num.Float32 decodes subnormals at the wrong
// scale; this package does neither.
package half

import "math"

// MaxFloat16 is the largest finite float16, 65504. Finite float32s of
// magnitude below OverflowThreshold round to at most this.
const MaxFloat16 = 65504

// OverflowThreshold is the smallest magnitude, 65520, that rounds to ±Inf:
// it lies halfway between 65504 and 2^16, and ties go to the even
// significand, 2^16, which is beyond float16's range.
const OverflowThreshold = 65520

// FromFloat32 returns the bits of the float16 nearest to f, ties to the
// even significand, as numpy's astype(np.float16) and PyTorch's .half()
// round. Float16 subnormals (magnitudes below 2^-14, in steps of 2^-24) are
// rounded the same way; magnitudes up to and including 2^-25 (half the
// smallest subnormal) become a zero of f's sign.
//
// ok is false when the result is not f rounded to a finite float16: f is
// NaN or ±Inf, or f is finite with |f| ≥ 65520 and would round to ±Inf.
// h is then the NaN (payload kept in its top bits, made quiet) or the Inf
// of f's sign.
func FromFloat32(f float32) (h uint16, ok bool) {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	a := b &^ 0x8000_0000 // |f|
	switch {
	case a > 0x7f80_0000: // NaN
		return sign | 0x7e00 | uint16(a>>13)&0x3ff, false
	case a >= 0x477f_f000: // ≥ 65520, or +Inf
		return sign | 0x7c00, false
	case a >= 0x3880_0000: // ≥ 2^-14: a normal float16
		// Rebias the exponent (127 → 15) and keep 10 of the 23 mantissa
		// bits; a carry out of the mantissa moves to the next exponent,
		// which is the right result (and stays below 0x7c00 here).
		h = uint16((a - (127-15)<<23) >> 13)
		rem := a & 0x1fff
		if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
			h++
		}
		return sign | h, true
	case a <= 0x3300_0000: // ≤ 2^-25, float32 subnormals and zeros included
		return sign, true
	default: // 2^-25 < |f| < 2^-14: a float16 subnormal, or 2^-14 after rounding
		// |f| = m·2^(e-150) with a 24-bit significand m; in units of the
		// float16 subnormal step 2^-24 that is m >> (126-e), 14 ≤ shift ≤ 24.
		e := a >> 23
		m := a&0x7f_ffff | 0x80_0000
		shift := 126 - e
		h = uint16(m >> shift)
		rem, half := m&(1<<shift-1), uint32(1)<<(shift-1)
		if rem > half || (rem == half && h&1 == 1) {
			h++ // 0x400 is the smallest normal, 2^-14, as it should be
		}
		return sign | h, true
	}
}

// ToFloat32 returns the value of the float16 bits h as a float32. It is
// exact for every finite h and for ±Inf (float16 subnormals are normal
// float32s); a NaN stays a NaN of the same sign, with its payload in the
// top bits of the float32 mantissa.
func ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f80_0000 | man<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
	case man == 0: // ±0
		return math.Float32frombits(sign)
	default: // subnormal: man·2^-24, exact in float32
		v := float32(man) * (1.0 / (1 << 24))
		return math.Float32frombits(sign | math.Float32bits(v))
	}
}
