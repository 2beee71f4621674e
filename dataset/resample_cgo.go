//go:build cgo && !purego

package dataset

// The resampler's two passes in C, the same integer arithmetic as hpass and vpass (and PIL's
// Resample.c), so the result is identical; compiled with -O3, the vertical pass vectorises
// (widening multiply-adds over whole rows) and neither pays Go's bounds checks. About three
// times faster than the Go passes; TestResampleCMatchesGo holds them equal.

/*
#cgo CFLAGS: -O3
#include <stdint.h>

#define PRECISION_BITS (32 - 8 - 2)

static inline uint8_t dk_clip8(int32_t v) {
	v >>= PRECISION_BITS;
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

static void dk_hpass(uint8_t *dst, const uint8_t *src, intptr_t srcStride, intptr_t rows, intptr_t c,
                     const intptr_t *lo, const intptr_t *n, const int32_t *k, intptr_t ksize, intptr_t ow) {
	for (intptr_t y = 0; y < rows; y++) {
		const uint8_t *s = src + y * srcStride;
		uint8_t *d = dst + y * ow * c;
		if (c == 1) {
			for (intptr_t xx = 0; xx < ow; xx++) {
				const uint8_t *p = s + lo[xx];
				const int32_t *kk = k + xx * ksize;
				int32_t s0 = 1 << (PRECISION_BITS - 1);
				for (intptr_t x = 0; x < n[xx]; x++) s0 += p[x] * kk[x];
				d[xx] = dk_clip8(s0);
			}
			continue;
		}
		for (intptr_t xx = 0; xx < ow; xx++) {
			const uint8_t *p = s + 3 * lo[xx];
			const int32_t *kk = k + xx * ksize;
			int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
			for (intptr_t x = 0; x < n[xx]; x++) {
				int32_t kx = kk[x];
				s0 += p[3 * x] * kx;
				s1 += p[3 * x + 1] * kx;
				s2 += p[3 * x + 2] * kx;
			}
			d[3 * xx] = dk_clip8(s0);
			d[3 * xx + 1] = dk_clip8(s1);
			d[3 * xx + 2] = dk_clip8(s2);
		}
	}
}

static void dk_vpass(uint8_t *out, const uint8_t *tmp, intptr_t stride, const intptr_t *lo, const intptr_t *n,
                     const int32_t *k, intptr_t ksize, intptr_t y0, intptr_t oh, int32_t *acc) {
	for (intptr_t yy = 0; yy < oh; yy++) {
		const int32_t *kk = k + yy * ksize;
		const uint8_t *r = tmp + (lo[yy] - y0) * stride;
		for (intptr_t i = 0; i < stride; i++) acc[i] = 1 << (PRECISION_BITS - 1);
		for (intptr_t y = 0; y < n[yy]; y++, r += stride) {
			int32_t ky = kk[y];
			for (intptr_t i = 0; i < stride; i++) acc[i] += r[i] * ky;
		}
		uint8_t *row = out + yy * stride;
		for (intptr_t i = 0; i < stride; i++) row[i] = dk_clip8(acc[i]);
	}
}
*/
import "C"

import "unsafe"

const haveCResample = true

func hpassC(dst, src []uint8, srcStride, rows, c int, ax axis, ow int) {
	C.dk_hpass((*C.uint8_t)(unsafe.Pointer(&dst[0])), (*C.uint8_t)(unsafe.Pointer(&src[0])), C.intptr_t(srcStride),
		C.intptr_t(rows), C.intptr_t(c), (*C.intptr_t)(unsafe.Pointer(&ax.lo[0])), (*C.intptr_t)(unsafe.Pointer(&ax.n[0])),
		(*C.int32_t)(unsafe.Pointer(&ax.k[0])), C.intptr_t(ax.ksize), C.intptr_t(ow))
}

func vpassC(out, tmp []uint8, stride int, ay axis, y0, oh int, acc []int32) {
	C.dk_vpass((*C.uint8_t)(unsafe.Pointer(&out[0])), (*C.uint8_t)(unsafe.Pointer(&tmp[0])), C.intptr_t(stride),
		(*C.intptr_t)(unsafe.Pointer(&ay.lo[0])), (*C.intptr_t)(unsafe.Pointer(&ay.n[0])), (*C.int32_t)(unsafe.Pointer(&ay.k[0])),
		C.intptr_t(ay.ksize), C.intptr_t(y0), C.intptr_t(oh), (*C.int32_t)(unsafe.Pointer(&acc[0])))
}
