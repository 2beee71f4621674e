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
#cgo LDFLAGS: -lm
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

// layernormForwardGo of kernels.go. Each row's sums are one chain of additions in column
// order, as in Go; four rows at a time keep four independent chains in flight.
DK_INLINE void dk_ln_fwd_body(float *out, float *mean, float *rstd, const float *inp, const float *w,
                              const float *b, intptr_t M, intptr_t C, float eps) {
	for (intptr_t i = 0; i < M; i += 4) {
		int R = M - i < 4 ? (int)(M - i) : 4;
		const float *x = inp + i * C;
		float s[4] = {0}, m[4] = {0}, vs[4] = {0};
		if (R == 4) {
			float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
			for (intptr_t j = 0; j < C; j++) s0 += x[j], s1 += x[C + j], s2 += x[2 * C + j], s3 += x[3 * C + j];
			s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3;
		} else {
			for (int q = 0; q < R; q++)
				for (intptr_t j = 0; j < C; j++) s[q] += x[q * C + j];
		}
		for (int q = 0; q < R; q++) m[q] = s[q] / (float)C;
		if (R == 4) {
			float v0 = 0, v1 = 0, v2 = 0, v3 = 0;
			for (intptr_t j = 0; j < C; j++) {
				float d0 = x[j] - m[0], d1 = x[C + j] - m[1], d2 = x[2 * C + j] - m[2], d3 = x[3 * C + j] - m[3];
				v0 += d0 * d0, v1 += d1 * d1, v2 += d2 * d2, v3 += d3 * d3;
			}
			vs[0] = v0, vs[1] = v1, vs[2] = v2, vs[3] = v3;
		} else {
			for (int q = 0; q < R; q++)
				for (intptr_t j = 0; j < C; j++) {
					float d = x[q * C + j] - m[q];
					vs[q] += d * d;
				}
		}
		for (int q = 0; q < R; q++) {
			float r = (float)(1.0 / __builtin_sqrt((double)(vs[q] / (float)C + eps)));
			const float *xr = x + q * C;
			float *o = out + (i + q) * C;
			intptr_t j = 0;
			for (; j + 8 <= C; j += 8) dk_store(o + j, (dk_load(xr + j) - m[q]) * r * dk_load(w + j) + dk_load(b + j));
			for (; j < C; j++) o[j] = (xr[j] - m[q]) * r * w[j] + b[j];
			mean[i + q] = m[q], rstd[i + q] = r;
		}
	}
}

// layernormBackwardGo of kernels.go: the rows in order, each row's two sums one chain each
// (four rows' chains at a time), the rest of the row across the columns in vectors.
DK_INLINE void dk_ln_bwd_body(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                              const float *w, const float *mean, const float *rstd, intptr_t M, intptr_t C) {
	if (dw) memset(dw, 0, C * sizeof(float));
	if (db) memset(db, 0, C * sizeof(float));
	for (intptr_t i = 0; i < M; i += 4) {
		int R = M - i < 4 ? (int)(M - i) : 4;
		const float *x = inp + i * C, *g = dout + i * C;
		float dm[4] = {0}, dnm[4] = {0};
		if (dinp && R == 4) {
			float a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
			float m0 = mean[i], m1 = mean[i + 1], m2 = mean[i + 2], m3 = mean[i + 3];
			float r0 = rstd[i], r1 = rstd[i + 1], r2 = rstd[i + 2], r3 = rstd[i + 3];
			for (intptr_t j = 0; j < C; j++) {
				float n0 = w[j] * g[j], n1 = w[j] * g[C + j], n2 = w[j] * g[2 * C + j], n3 = w[j] * g[3 * C + j];
				a0 += n0, a1 += n1, a2 += n2, a3 += n3;
				b0 += n0 * (x[j] - m0) * r0, b1 += n1 * (x[C + j] - m1) * r1;
				b2 += n2 * (x[2 * C + j] - m2) * r2, b3 += n3 * (x[3 * C + j] - m3) * r3;
			}
			dm[0] = a0, dm[1] = a1, dm[2] = a2, dm[3] = a3;
			dnm[0] = b0, dnm[1] = b1, dnm[2] = b2, dnm[3] = b3;
		} else if (dinp) {
			for (int q = 0; q < R; q++)
				for (intptr_t j = 0; j < C; j++) {
					float n = w[j] * g[q * C + j];
					dm[q] += n;
					dnm[q] += n * (x[q * C + j] - mean[i + q]) * rstd[i + q];
				}
		}
		for (int q = 0; q < R; q++) {
			const float *xr = x + q * C, *gr = g + q * C;
			float m = mean[i + q], r = rstd[i + q], a = dm[q] / (float)C, bb = dnm[q] / (float)C;
			float *dx = dinp ? dinp + (i + q) * C : 0;
			intptr_t j = 0;
			for (; j + 8 <= C; j += 8) {
				v8sf xv = dk_load(xr + j), gv = dk_load(gr + j);
				if (dx) dk_store(dx + j, (dk_load(w + j) * gv - a - (xv - m) * r * bb) * r);
				if (dw) dk_store(dw + j, dk_load(dw + j) + gv * (xv - m) * r);
				if (db) dk_store(db + j, dk_load(db + j) + gv);
			}
			for (; j < C; j++) {
				if (dx) dx[j] = (w[j] * gr[j] - a - (xr[j] - m) * r * bb) * r;
				if (dw) dw[j] += gr[j] * (xr[j] - m) * r;
				if (db) db[j] += gr[j];
			}
		}
	}
}

// colSumGo of kernels.go: the rows in order, the columns in vectors.
DK_INLINE void dk_colsum_body(float *sum, const float *a, intptr_t M, intptr_t N) {
	memset(sum, 0, N * sizeof(float));
	for (intptr_t i = 0; i < M; i++) {
		const float *row = a + i * N;
		intptr_t j = 0;
		for (; j + 8 <= N; j += 8) dk_store(sum + j, dk_load(sum + j) + dk_load(row + j));
		for (; j < N; j++) sum[j] += row[j];
	}
}

// The softmax backward of attentionBackward, in place in d: each row's Σ a·d one chain in
// column order, as in Go.
DK_INLINE void dk_softmax_bwd_body(const float *a, float *d, intptr_t rows, intptr_t T) {
	for (intptr_t r = 0; r < rows; r++) {
		const float *ar = a + r * T;
		float *dr = d + r * T;
		float s = 0;
		for (intptr_t j = 0; j < T; j++) s += ar[j] * dr[j];
		intptr_t j = 0;
		for (; j + 8 <= T; j += 8) dk_store(dr + j, dk_load(ar + j) * (dk_load(dr + j) - s));
		for (; j < T; j++) dr[j] = ar[j] * (dr[j] - s);
	}
}

// out = x + s·f, s per block of per elements (mask; all 1 where mask is NULL, and x + 1·f
// is x + f exactly); with x NULL, out = s·f.
DK_INLINE void dk_residual_body(float *out, const float *x, const float *f, const float *mask, intptr_t B, intptr_t per) {
	for (intptr_t b = 0; b < B; b++) {
		float s = mask ? mask[b] : 1.0f;
		const float *fb = f + b * per, *xb = x ? x + b * per : 0;
		float *ob = out + b * per;
		intptr_t i = 0;
		if (xb) {
			for (; i + 8 <= per; i += 8) dk_store(ob + i, dk_load(xb + i) + s * dk_load(fb + i));
			for (; i < per; i++) ob[i] = xb[i] + s * fb[i];
		} else {
			for (; i + 8 <= per; i += 8) dk_store(ob + i, s * dk_load(fb + i));
			for (; i < per; i++) ob[i] = s * fb[i];
		}
	}
}

// out = a·b elementwise.
DK_INLINE void dk_mul_body(float *out, const float *a, const float *b, intptr_t n) {
	intptr_t i = 0;
	for (; i + 8 <= n; i += 8) dk_store(out + i, dk_load(a + i) * dk_load(b + i));
	for (; i < n; i++) out[i] = a[i] * b[i];
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
__attribute__((target("avx2"))) static void dk_ln_fwd_avx2(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, intptr_t M, intptr_t C, float eps) {
	dk_ln_fwd_body(out, mean, rstd, inp, w, b, M, C, eps);
}
static void dk_ln_fwd_base(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, intptr_t M, intptr_t C, float eps) {
	dk_ln_fwd_body(out, mean, rstd, inp, w, b, M, C, eps);
}
static void dk_ln_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, intptr_t M, intptr_t C, float eps) {
	if (dk_avx2) dk_ln_fwd_avx2(out, mean, rstd, inp, w, b, M, C, eps);
	else dk_ln_fwd_base(out, mean, rstd, inp, w, b, M, C, eps);
}

__attribute__((target("avx2"))) static void dk_ln_bwd_avx2(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, const float *mean, const float *rstd, intptr_t M, intptr_t C) {
	dk_ln_bwd_body(dinp, dw, db, dout, inp, w, mean, rstd, M, C);
}
static void dk_ln_bwd_base(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, const float *mean, const float *rstd, intptr_t M, intptr_t C) {
	dk_ln_bwd_body(dinp, dw, db, dout, inp, w, mean, rstd, M, C);
}
static void dk_ln_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, const float *mean, const float *rstd, intptr_t M, intptr_t C) {
	if (dk_avx2) dk_ln_bwd_avx2(dinp, dw, db, dout, inp, w, mean, rstd, M, C);
	else dk_ln_bwd_base(dinp, dw, db, dout, inp, w, mean, rstd, M, C);
}

__attribute__((target("avx2"))) static void dk_colsum_avx2(float *sum, const float *a, intptr_t M, intptr_t N) { dk_colsum_body(sum, a, M, N); }
static void dk_colsum_base(float *sum, const float *a, intptr_t M, intptr_t N) { dk_colsum_body(sum, a, M, N); }
static void dk_colsum(float *sum, const float *a, intptr_t M, intptr_t N) {
	if (dk_avx2) dk_colsum_avx2(sum, a, M, N);
	else dk_colsum_base(sum, a, M, N);
}
__attribute__((target("avx2"))) static void dk_softmax_bwd_avx2(const float *a, float *d, intptr_t rows, intptr_t T) { dk_softmax_bwd_body(a, d, rows, T); }
static void dk_softmax_bwd_base(const float *a, float *d, intptr_t rows, intptr_t T) { dk_softmax_bwd_body(a, d, rows, T); }
static void dk_softmax_bwd(const float *a, float *d, intptr_t rows, intptr_t T) {
	if (dk_avx2) dk_softmax_bwd_avx2(a, d, rows, T);
	else dk_softmax_bwd_base(a, d, rows, T);
}

__attribute__((target("avx2"))) static void dk_residual_avx2(float *out, const float *x, const float *f, const float *mask, intptr_t B, intptr_t per) { dk_residual_body(out, x, f, mask, B, per); }
static void dk_residual_base(float *out, const float *x, const float *f, const float *mask, intptr_t B, intptr_t per) { dk_residual_body(out, x, f, mask, B, per); }
static void dk_residual(float *out, const float *x, const float *f, const float *mask, intptr_t B, intptr_t per) {
	if (dk_avx2) dk_residual_avx2(out, x, f, mask, B, per);
	else dk_residual_base(out, x, f, mask, B, per);
}

__attribute__((target("avx2"))) static void dk_mul_avx2(float *out, const float *a, const float *b, intptr_t n) { dk_mul_body(out, a, b, n); }
static void dk_mul_base(float *out, const float *a, const float *b, intptr_t n) { dk_mul_body(out, a, b, n); }
static void dk_mul(float *out, const float *a, const float *b, intptr_t n) {
	if (dk_avx2) dk_mul_avx2(out, a, b, n);
	else dk_mul_base(out, a, b, n);
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

func layernormForwardC(out, mean, rstd, inp, weight, bias []float32, C_ int, eps float32) {
	C.dk_ln_fwd(fptr(out), fptr(mean), fptr(rstd), fptr(inp), fptr(weight), fptr(bias), C.intptr_t(len(mean)), C.intptr_t(C_), C.float(eps))
}

func layernormBackwardC(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, C_ int) {
	C.dk_ln_bwd(fptr(dinp), fptr(dweight), fptr(dbias), fptr(dout), fptr(inp), fptr(weight), fptr(mean), fptr(rstd), C.intptr_t(len(mean)), C.intptr_t(C_))
}

func colSumC(sum, a []float32) {
	C.dk_colsum(fptr(sum), fptr(a), C.intptr_t(len(a)/len(sum)), C.intptr_t(len(sum)))
}

func softmaxBackwardRowsC(a, d []float32, T int) {
	C.dk_softmax_bwd(fptr(a), fptr(d), C.intptr_t(len(a)/T), C.intptr_t(T))
}

func residualC(out, x, f, mask []float32, per int) {
	C.dk_residual(fptr(out), fptr(x), fptr(f), fptr(mask), C.intptr_t(len(out)/per), C.intptr_t(per))
}

func mulC(out, a, b []float32) {
	C.dk_mul(fptr(out), fptr(a), fptr(b), C.intptr_t(len(out)))
}
