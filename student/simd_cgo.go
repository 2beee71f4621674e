//go:build cgo && !purego

package student

// The elementwise kernels that dominate a step after the matrix products (GELU's Φ and φ,
// softmax's exp) in C on eight floats at a time: the same float32 operations in the same order
// as the Go versions in kernels.go (exp32, normCDFPDF, softmaxRow), so the results are
// identical bit for bit; TestCKernelsMatchGo holds them equal, and -tags purego builds the Go
// versions alone.
//
// One body, compiled twice: for the x86-64 baseline (SSE2, each 8-wide operation split in
// two) and for AVX2, chosen at run time by __builtin_cpu_supports, so a binary runs on any
// x86-64 and is fast where there is AVX2; never -march=native. FMA is left out on purpose, and
// ISO C mode (-std=c11, whose default is -ffp-contract=off, a flag cgo refuses) keeps GCC from
// fusing a product and a sum: a fused multiply-add rounds once where Go (GOAMD64=v1) rounds
// twice, which would change the bits of every step, and of TestMetricsFixture. The softmax
// sum stays one serial chain for the same reason: a vector sum adds in another order.

/*
#cgo CFLAGS: -O2 -std=c11 -Wno-psabi
#include <stdint.h>
#include <string.h>

typedef float v8sf __attribute__((vector_size(32)));
typedef int32_t v8si __attribute__((vector_size(32)));
typedef uint32_t v8su __attribute__((vector_size(32)));

#define DK_INLINE static inline __attribute__((always_inline))

DK_INLINE v8sf dk_load(const float *p) { v8sf v; memcpy(&v, p, sizeof v); return v; }
DK_INLINE void dk_store(float *p, v8sf v) { memcpy(p, &v, sizeof v); }

// exp32 of kernels.go, lane by lane.
DK_INLINE v8sf dk_exp(v8sf x) {
	v8si over = x > 88.3762626647949f;
	v8si under = x < -87.3365447505531f;
	v8sf t = x * 1.44269504088896341f + 0.5f;
	v8su i = (v8su)__builtin_convertvector(t + 128.0f, v8si) - 128u; // truncation, as Go's int32()
	v8sf fx = __builtin_convertvector((v8si)i, v8sf);
	x = x - fx * 0.693359375f;
	x = x - fx * -2.12194440e-4f;
	v8sf z = x * x;
	v8sf y = (v8sf){0} + 1.9875691500e-4f;
	y = y * x + 1.3981999507e-3f;
	y = y * x + 8.3334519073e-3f;
	y = y * x + 4.1665795894e-2f;
	y = y * x + 1.6666665459e-1f;
	y = y * x + 5.0000001201e-1f;
	y = y * z + x + 1.0f;
	v8sf r = y * (v8sf)((i + 127u) << 23);
	v8si rb = ((v8si)r & ~(over | under)) | (over & 0x7f800000);
	return (v8sf)rb;
}

// normCDFPDF of kernels.go, lane by lane.
DK_INLINE void dk_normcdfpdf(v8sf x, v8sf *cdf, v8sf *pdf) {
	v8su xb = (v8su)x;
	v8su sign = xb & 0x80000000u;
	v8sf z = (v8sf)(xb & 0x7fffffffu) * 0.7071067811865476f;
	v8sf e = dk_exp(-z * z);
	v8sf t = 1.0f / (1.0f + 0.3275911f * z);
	v8sf poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
	v8sf erf = (v8sf)((v8su)(1.0f - poly * e) | sign);
	*cdf = 0.5f * (1.0f + erf);
	*pdf = 0.3989422804014327f * e;
}

// mode: 0 forward (out), 1 forward with the derivative (out, grad), 2 backward (out = dout·GELU').
DK_INLINE void dk_gelu_body(float *out, float *grad, const float *inp, const float *dout, intptr_t n, int mode) {
	for (intptr_t i = 0; i < n; i += 8) {
		float xb[8] = {0}, db[8] = {0}, ob[8], gb[8];
		intptr_t w = n - i < 8 ? n - i : 8;
		const float *xp = inp + i, *dp = dout ? dout + i : db;
		float *op = out + i, *gp = grad ? grad + i : gb;
		if (w < 8) { // the tail, through a padded copy: the same code for every element
			memcpy(xb, xp, w * sizeof(float));
			if (mode == 2) memcpy(db, dp, w * sizeof(float));
			xp = xb, dp = db, op = ob, gp = gb;
		}
		v8sf x = dk_load(xp), c, p;
		dk_normcdfpdf(x, &c, &p);
		if (mode == 0) dk_store(op, x * c);
		if (mode == 1) dk_store(op, x * c), dk_store(gp, c + x * p);
		if (mode == 2) dk_store(op, dk_load(dp) * (c + x * p));
		if (w < 8) {
			memcpy(out + i, ob, w * sizeof(float));
			if (mode == 1) memcpy(grad + i, gb, w * sizeof(float));
		}
	}
}

// softmaxRow of kernels.go on each of rows rows of T.
DK_INLINE void dk_softmax_body(float *a, intptr_t rows, intptr_t T) {
	for (intptr_t r = 0; r < rows; r++) {
		float *x = a + r * T;
		// The maximum in any order. Where Go's max differs, the result does not: a NaN score
		// makes every output NaN either way (through the sum), and exp32(v - mx) is the same
		// for mx -0 (kept here) and +0 (Go's max(-0, +0)).
		v8sf m = (v8sf){0} + x[0];
		intptr_t i = 0;
		for (; i + 8 <= T; i += 8) {
			v8sf v = dk_load(x + i);
			v8si gt = v > m;
			m = (v8sf)(((v8si)v & gt) | ((v8si)m & ~gt));
		}
		float mx = m[0];
		for (int l = 1; l < 8; l++) mx = m[l] > mx ? m[l] : mx;
		for (; i < T; i++) mx = x[i] > mx ? x[i] : mx;
		for (i = 0; i < T; i += 8) {
			float b[8];
			intptr_t w = T - i < 8 ? T - i : 8;
			float *p = x + i;
			if (w < 8) {
				for (int l = 0; l < 8; l++) b[l] = l < w ? p[l] : mx;
				p = b;
			}
			dk_store(p, dk_exp(dk_load(p) - mx));
			if (w < 8) memcpy(x + i, b, w * sizeof(float));
		}
		float s = 0;
		for (i = 0; i < T; i++) s += x[i];
		float inv = 1.0f / s;
		for (i = 0; i + 8 <= T; i += 8) dk_store(x + i, dk_load(x + i) * inv);
		for (; i < T; i++) x[i] *= inv;
	}
}

static int dk_avx2;

static void dk_kernels_init(void) {
	__builtin_cpu_init();
	dk_avx2 = __builtin_cpu_supports("avx2");
}

// dk_kernels_isa chooses the baseline (0) or AVX2 (1, where the CPU has it) and returns the choice.
static int dk_kernels_isa(int avx2) {
	dk_kernels_init();
	dk_avx2 = avx2 && dk_avx2;
	return dk_avx2;
}

__attribute__((target("avx2"))) static void dk_gelu_avx2(float *out, float *grad, const float *inp, const float *dout, intptr_t n, int mode) {
	dk_gelu_body(out, grad, inp, dout, n, mode);
}
static void dk_gelu_base(float *out, float *grad, const float *inp, const float *dout, intptr_t n, int mode) {
	dk_gelu_body(out, grad, inp, dout, n, mode);
}
static void dk_gelu(float *out, float *grad, const float *inp, const float *dout, intptr_t n, int mode) {
	if (dk_avx2) dk_gelu_avx2(out, grad, inp, dout, n, mode);
	else dk_gelu_base(out, grad, inp, dout, n, mode);
}

__attribute__((target("avx2"))) static void dk_softmax_avx2(float *a, intptr_t rows, intptr_t T) {
	dk_softmax_body(a, rows, T);
}
static void dk_softmax_base(float *a, intptr_t rows, intptr_t T) { dk_softmax_body(a, rows, T); }
static void dk_softmax(float *a, intptr_t rows, intptr_t T) {
	if (dk_avx2) dk_softmax_avx2(a, rows, T);
	else dk_softmax_base(a, rows, T);
}
*/
import "C"

import "unsafe"

const haveCKernels = true

func init() { cKernelISA = isaName(C.dk_kernels_isa(1) != 0) }

func isaName(avx2 bool) string {
	if avx2 {
		return "avx2"
	}
	return "sse2"
}

// setCKernelISA chooses the baseline or (where the CPU has it) the AVX2 build of the C
// kernels, for tests of both on one machine, and returns the one in use.
func setCKernelISA(avx2 bool) string {
	cKernelISA = isaName(C.dk_kernels_isa(boolInt(avx2)) != 0)
	return cKernelISA
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func fptr(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&s[0]))
}

func geluForwardC(out, inp []float32) {
	C.dk_gelu(fptr(out), nil, fptr(inp), nil, C.intptr_t(len(inp)), 0)
}

func geluForwardGradC(out, grad, inp []float32) {
	C.dk_gelu(fptr(out), fptr(grad), fptr(inp), nil, C.intptr_t(len(inp)), 1)
}

func geluBackwardC(dinp, inp, dout []float32) {
	C.dk_gelu(fptr(dinp), nil, fptr(inp), fptr(dout), C.intptr_t(len(inp)), 2)
}

func softmaxRowsC(a []float32, T int) {
	C.dk_softmax(fptr(a), C.intptr_t(len(a)/T), C.intptr_t(T))
}
