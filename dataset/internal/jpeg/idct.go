package jpeg

// deitkd: this file replaces the standard library's dct.go.

type block [blockSize]int32

const blockSize = 8 * 8

// libjpeg's jidctint.c ("islow"): an integer implementation of the Loeffler-Ligtenberg-
// Moschytz IDCT with 13-bit constants, two passes (columns, then rows), the first scaled up by
// 2^PASS1_BITS. Translated operation for operation so the results are libjpeg's to the bit.
const (
	constBits = 13
	pass1Bits = 2

	fix0_298631336 = 2446
	fix0_390180644 = 3196
	fix0_541196100 = 4433
	fix0_765366865 = 6270
	fix0_899976223 = 7373
	fix1_175875602 = 9633
	fix1_501321110 = 12299
	fix1_847759065 = 15137
	fix1_961570560 = 16069
	fix2_053119869 = 16819
	fix2_562915447 = 20995
	fix3_072711026 = 25172
)

// idctIslow inverse-transforms the dequantised block b (natural order, row-major), level-shifts
// by 128 and writes 8×8 samples to dst with the given stride. Out-of-range values saturate, as
// libjpeg-turbo's SIMD code (which Debian's PIL runs) does; its C table would wrap values far
// outside, which only corrupt data produces. Arithmetic is int32: libjpeg's JLONG is wider, but
// for the coefficients a valid 8-bit JPEG can hold (|dequantised| < 2^14) no sum reaches 2^31,
// and libjpeg-turbo's SIMD path itself works in 16- and 32-bit lanes.
func idctIslow(b *block, dst []byte, stride int) {
	var ws [blockSize]int32
	// Pass 1: columns; results scaled up by 2^pass1Bits.
	for c := range 8 {
		if b[8+c]|b[16+c]|b[24+c]|b[32+c]|b[40+c]|b[48+c]|b[56+c] == 0 {
			dc := b[c] << pass1Bits
			ws[c], ws[8+c], ws[16+c], ws[24+c] = dc, dc, dc, dc
			ws[32+c], ws[40+c], ws[48+c], ws[56+c] = dc, dc, dc, dc
			continue
		}
		// Even part.
		z2, z3 := b[16+c], b[48+c]
		z1 := (z2 + z3) * fix0_541196100
		tmp2 := z1 + z3*-fix1_847759065
		tmp3 := z1 + z2*fix0_765366865
		tmp0 := (b[c] + b[32+c]) << constBits
		tmp1 := (b[c] - b[32+c]) << constBits
		tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
		tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2
		// Odd part.
		tmp0, tmp1, tmp2, tmp3 = b[56+c], b[40+c], b[24+c], b[8+c]
		z1 = tmp0 + tmp3
		z2 = tmp1 + tmp2
		z3 = tmp0 + tmp2
		z4 := tmp1 + tmp3
		z5 := (z3 + z4) * fix1_175875602
		tmp0 *= fix0_298631336
		tmp1 *= fix2_053119869
		tmp2 *= fix3_072711026
		tmp3 *= fix1_501321110
		z1 *= -fix0_899976223
		z2 *= -fix2_562915447
		z3 = z3*-fix1_961570560 + z5
		z4 = z4*-fix0_390180644 + z5
		tmp0 += z1 + z3
		tmp1 += z2 + z4
		tmp2 += z2 + z3
		tmp3 += z1 + z4
		const n, r = constBits - pass1Bits, 1 << (constBits - pass1Bits - 1)
		ws[c] = (tmp10 + tmp3 + r) >> n
		ws[56+c] = (tmp10 - tmp3 + r) >> n
		ws[8+c] = (tmp11 + tmp2 + r) >> n
		ws[48+c] = (tmp11 - tmp2 + r) >> n
		ws[16+c] = (tmp12 + tmp1 + r) >> n
		ws[40+c] = (tmp12 - tmp1 + r) >> n
		ws[24+c] = (tmp13 + tmp0 + r) >> n
		ws[32+c] = (tmp13 - tmp0 + r) >> n
	}
	// Pass 2: rows, descaled by 8 (2^3) and the pass-1 scaling.
	for y := range 8 {
		w := (*[8]int32)(ws[y*8 : y*8+8])
		d := (*[8]byte)(dst[y*stride : y*stride+8])
		if w[1]|w[2]|w[3]|w[4]|w[5]|w[6]|w[7] == 0 {
			v := rangeLimit((w[0] + 1<<(pass1Bits+2)) >> (pass1Bits + 3))
			*d = [8]byte{v, v, v, v, v, v, v, v}
			continue
		}
		z2, z3 := w[2], w[6]
		z1 := (z2 + z3) * fix0_541196100
		tmp2 := z1 + z3*-fix1_847759065
		tmp3 := z1 + z2*fix0_765366865
		tmp0 := (w[0] + w[4]) << constBits
		tmp1 := (w[0] - w[4]) << constBits
		tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
		tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2
		tmp0, tmp1, tmp2, tmp3 = w[7], w[5], w[3], w[1]
		z1 = tmp0 + tmp3
		z2 = tmp1 + tmp2
		z3 = tmp0 + tmp2
		z4 := tmp1 + tmp3
		z5 := (z3 + z4) * fix1_175875602
		tmp0 *= fix0_298631336
		tmp1 *= fix2_053119869
		tmp2 *= fix3_072711026
		tmp3 *= fix1_501321110
		z1 *= -fix0_899976223
		z2 *= -fix2_562915447
		z3 = z3*-fix1_961570560 + z5
		z4 = z4*-fix0_390180644 + z5
		tmp0 += z1 + z3
		tmp1 += z2 + z4
		tmp2 += z2 + z3
		tmp3 += z1 + z4
		const n, r = constBits + pass1Bits + 3, 1 << (constBits + pass1Bits + 2)
		d[0] = rangeLimit((tmp10 + tmp3 + r) >> n)
		d[7] = rangeLimit((tmp10 - tmp3 + r) >> n)
		d[1] = rangeLimit((tmp11 + tmp2 + r) >> n)
		d[6] = rangeLimit((tmp11 - tmp2 + r) >> n)
		d[2] = rangeLimit((tmp12 + tmp1 + r) >> n)
		d[5] = rangeLimit((tmp12 - tmp1 + r) >> n)
		d[3] = rangeLimit((tmp13 + tmp0 + r) >> n)
		d[4] = rangeLimit((tmp13 - tmp0 + r) >> n)
	}
}

func rangeLimit(x int32) byte {
	x += 128
	if uint32(x) <= 255 {
		return byte(x)
	}
	if x < 0 {
		return 0
	}
	return 255
}
