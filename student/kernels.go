package student

// Kernels: each layer's forward and backward on flat row-major float32
// buffers, outputs first and sizes last (llm.c). The gorgonia ops in ops.go
// and layers.go call these; the naive references in kernels_test.go check
// them.

import (
	"math"
	"runtime"
	"sync"
)

// parallelFor splits [0,n) into one contiguous chunk per CPU and runs f on
// each. Work below minWork items runs inline: goroutine start-up would cost
// more than it saves.
func parallelFor(n, minWork int, f func(lo, hi int)) {
	p := runtime.GOMAXPROCS(0)
	if p > n {
		p = n
	}
	if p <= 1 || n < minWork {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + p - 1) / p
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			f(lo, hi)
		}(lo, hi)
	}
	wg.Wait()
}

// ---------------------------------------------------------------- LayerNorm

// layernormForward: out, inp (M, C); mean, rstd (M); weight, bias (C).
func layernormForward(out, mean, rstd, inp, weight, bias []float32, M, C int, eps float32) {
	parallelFor(M, 64, func(lo, hi int) {
		o, x := out[lo*C:hi*C], inp[lo*C:hi*C]
		if useC {
			layernormForwardC(o, mean[lo:hi], rstd[lo:hi], x, weight, bias, C, eps)
			return
		}
		layernormForwardGo(o, mean[lo:hi], rstd[lo:hi], x, weight, bias, C, eps)
	})
}

func layernormForwardGo(out, mean, rstd, inp, weight, bias []float32, C int, eps float32) {
	for i := range mean {
		x := inp[i*C : (i+1)*C]
		var s float32
		for _, v := range x {
			s += v
		}
		m := s / float32(C)
		var vs float32
		for _, v := range x {
			d := v - m
			vs += d * d
		}
		r := float32(1 / math.Sqrt(float64(vs/float32(C)+eps)))
		o := out[i*C : (i+1)*C]
		for j, v := range x {
			o[j] = (v-m)*r*weight[j] + bias[j]
		}
		mean[i], rstd[i] = m, r
	}
}

// layernormBackward: dinp, dout, inp (M, C); dweight, dbias, weight (C); mean, rstd (M).
// Every gradient asked for (a nil one is not) in one pass over dout and inp. The parameter
// gradients sum over the rows in row order, so a pass that makes them runs on one core
// (splitting the rows would change the order of the sums, and their bits); dinp alone is
// split across the cores.
func layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, M, C int) {
	f := layernormBackwardGo
	if useC {
		f = layernormBackwardC
	}
	if dweight != nil || dbias != nil {
		f(dinp, dweight, dbias, dout, inp, weight, mean, rstd, C)
		return
	}
	parallelFor(M, 64, func(lo, hi int) {
		f(dinp[lo*C:hi*C], nil, nil, dout[lo*C:hi*C], inp[lo*C:hi*C], weight, mean[lo:hi], rstd[lo:hi], C)
	})
}

func layernormBackwardGo(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, C int) {
	clear(dweight)
	clear(dbias)
	for i := range mean {
		x, g := inp[i*C:(i+1)*C], dout[i*C:(i+1)*C]
		m, r := mean[i], rstd[i]
		if dinp != nil {
			dx := dinp[i*C : (i+1)*C]
			var dnormMean, dnormNormMean float32
			for j := range x {
				dn := weight[j] * g[j]
				dnormMean += dn
				dnormNormMean += dn * (x[j] - m) * r
			}
			dnormMean /= float32(C)
			dnormNormMean /= float32(C)
			for j := range x {
				dn := weight[j] * g[j]
				dx[j] = (dn - dnormMean - (x[j]-m)*r*dnormNormMean) * r
			}
		}
		if dweight != nil {
			for j := range x {
				dweight[j] += g[j] * (x[j] - m) * r
			}
		}
		if dbias != nil {
			for j := range g {
				dbias[j] += g[j]
			}
		}
	}
}

// ------------------------------------------------------------------ Linear

// matmulForward: out (M, OC) = inp (M, IC) · weightᵀ (OC, IC) + bias (OC).
func matmulForward(out, inp, weight, bias []float32, M, IC, OC int) {
	beta := float32(0)
	if bias != nil {
		for i := 0; i < M; i++ {
			copy(out[i*OC:(i+1)*OC], bias)
		}
		beta = 1
	}
	sgemm(noT, tr, M, OC, IC, 1, inp, IC, weight, IC, beta, out, OC)
}

// matmulBackwardInput: dinp (M, IC) = dout (M, OC) · weight (OC, IC).
func matmulBackwardInput(dinp, dout, weight []float32, M, IC, OC int) {
	sgemm(noT, noT, M, IC, OC, 1, dout, OC, weight, IC, 0, dinp, IC)
}

// matmulBackwardWeight: dweight (OC, IC) = doutᵀ (OC, M) · inp (M, IC).
func matmulBackwardWeight(dweight, dout, inp []float32, M, IC, OC int) {
	sgemm(tr, noT, OC, IC, M, 1, dout, OC, inp, IC, 0, dweight, IC)
}

// matmulBackwardBias: dbias (OC) = Σ_rows dout (M, OC), in row order.
func matmulBackwardBias(dbias, dout []float32, M, OC int) {
	if useC {
		colSumC(dbias, dout[:M*OC])
		return
	}
	colSumGo(dbias, dout[:M*OC])
}

// colSumGo: sum (N) = Σ_rows a (…, N), in row order.
func colSumGo(sum, a []float32) {
	clear(sum)
	for i := 0; i < len(a); i += len(sum) {
		for j, g := range a[i : i+len(sum)] {
			sum[j] += g
		}
	}
}

// -------------------------------------------------------------------- GELU

const invSqrt2 = 0.7071067811865476
const invSqrt2Pi = 0.3989422804014327

// useC selects the C versions of the elementwise kernels (simd_cgo.go) where the package is
// built with cgo; the Go versions below are the reference they equal bit for bit
// (TestCKernelsMatchGo), and the only ones under -tags purego. Tests set it.
var useC = haveCKernels

// cKernelISA names the instruction set of the C kernels in use ("avx2", "sse2"), or "go".
var cKernelISA = "go"

// geluForward: exact GELU, out = x·Φ(x) = ½x(1 + erf(x/√2)).
func geluForward(out, inp []float32, n int) {
	parallelFor(n, 1<<14, func(lo, hi int) {
		if useC {
			geluForwardC(out[lo:hi], inp[lo:hi])
			return
		}
		geluForwardGo(out[lo:hi], inp[lo:hi])
	})
}

// geluForwardGrad: geluForward that also writes GELU'(x) = Φ(x) + x·φ(x)
// into grad.
func geluForwardGrad(out, grad, inp []float32, n int) {
	parallelFor(n, 1<<14, func(lo, hi int) {
		if useC {
			geluForwardGradC(out[lo:hi], grad[lo:hi], inp[lo:hi])
			return
		}
		geluForwardGradGo(out[lo:hi], grad[lo:hi], inp[lo:hi])
	})
}

// geluBackward: dinp = dout · (Φ(x) + x·φ(x)).
func geluBackward(dinp, inp, dout []float32, n int) {
	parallelFor(n, 1<<14, func(lo, hi int) {
		if useC {
			geluBackwardC(dinp[lo:hi], inp[lo:hi], dout[lo:hi])
			return
		}
		geluBackwardGo(dinp[lo:hi], inp[lo:hi], dout[lo:hi])
	})
}

func geluForwardGo(out, inp []float32) {
	for i, x := range inp {
		cdf, _ := normCDFPDF(x)
		out[i] = x * cdf
	}
}

// geluForwardGradGo goes four elements at a time: one element's exp,
// division and polynomials are a long chain of dependent operations, and
// four independent chains keep the FPU busy (1.7× the scalar loop here).
func geluForwardGradGo(out, grad, inp []float32) {
	n := len(inp)
	i := 0
	for ; i+4 <= n; i += 4 {
		x := (*[4]float32)(inp[i : i+4])
		o := (*[4]float32)(out[i : i+4])
		g := (*[4]float32)(grad[i : i+4])
		var c, p [4]float32
		c[0], p[0] = normCDFPDF(x[0])
		c[1], p[1] = normCDFPDF(x[1])
		c[2], p[2] = normCDFPDF(x[2])
		c[3], p[3] = normCDFPDF(x[3])
		for j := range 4 {
			o[j] = x[j] * c[j]
			g[j] = c[j] + x[j]*p[j]
		}
	}
	for ; i < n; i++ {
		x := inp[i]
		cdf, pdf := normCDFPDF(x)
		out[i] = x * cdf
		grad[i] = cdf + x*pdf
	}
}

func geluBackwardGo(dinp, inp, dout []float32) {
	for i, x := range inp {
		cdf, pdf := normCDFPDF(x)
		dinp[i] = dout[i] * (cdf + x*pdf)
	}
}

// normCDFPDF returns the standard normal Φ(x) and φ(x) with one exp:
// erf(z) = 1 − t·P(t)·e^{−z²}, t = 1/(1 + p·z), z = |x|/√2 (Abramowitz &
// Stegun 7.1.26, |error| ≤ 1.5e-7, float32's own resolution near 1), and
// e^{−z²} = e^{−x²/2} is also φ's exponential.
func normCDFPDF(x float32) (cdf, pdf float32) {
	// |x| and the sign by bit operations: a branch on the sign of
	// activations is mispredicted half the time.
	const sign = 1 << 31
	xb := math.Float32bits(x)
	z := math.Float32frombits(xb&^sign) * invSqrt2
	e := exp32(-z * z)
	t := 1 / (1 + 0.3275911*z)
	poly := t * (0.254829592 + t*(-0.284496736+t*(1.421413741+t*(-1.453152027+t*1.061405429))))
	erf := math.Float32frombits(math.Float32bits(1-poly*e) | xb&sign) // erf(x/√2), odd
	return 0.5 * (1 + erf), invSqrt2Pi * e
}

// exp32 is Cephes' expf: range reduction by powers of two and a degree-6
// polynomial, within 2 ulp of exp over the float32 range; about four times
// cheaper than float64 math.Exp in the softmax and GELU loops.
func exp32(x float32) float32 {
	if x > 88.3762626647949 {
		return float32(math.Inf(1))
	}
	if x < -87.3365447505531 {
		return 0
	}
	// fx = floor(x·log2(e) + ½), with t + 128 > 0 so that truncation is
	// floor: math.Floor is a function call at the default GOAMD64=v1, and
	// a branch on t's sign is mispredicted in softmax and GELU, whose
	// arguments straddle 0 there.
	t := x*1.44269504088896341 + 0.5
	i := int32(t+128) - 128
	fx := float32(i)
	x -= fx * 0.693359375
	x -= fx * -2.12194440e-4
	z := x * x
	y := float32(1.9875691500e-4)
	y = y*x + 1.3981999507e-3
	y = y*x + 8.3334519073e-3
	y = y*x + 4.1665795894e-2
	y = y*x + 1.6666665459e-1
	y = y*x + 5.0000001201e-1
	y = y*z + x + 1
	return y * math.Float32frombits(uint32(i+127)<<23)
}

// --------------------------------------------------------------- Attention

// attentionForward: out (B, T, C) from qkv (B, T, 3C) laid out as timm's
// (3, NH, hs) per token; att (B, NH, T, T) keeps the softmax probabilities
// for the backward pass.
func attentionForward(out, att, qkv []float32, B, T, C, NH int) {
	hs := C / NH
	scale := float32(1 / math.Sqrt(float64(hs)))
	C3 := 3 * C
	parallelFor(B*NH, 2, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/NH, bh%NH
			base := b * T * C3
			q := qkv[base+h*hs:]
			k := qkv[base+C+h*hs:]
			v := qkv[base+2*C+h*hs:]
			a := att[bh*T*T : (bh+1)*T*T]
			sgemm(noT, tr, T, T, hs, scale, q, C3, k, C3, 0, a, T) // (T, T) = q·kᵀ/√hs
			softmaxRows(a, T)
			sgemm(noT, noT, T, hs, T, 1, a, T, v, C3, 0, out[b*T*C+h*hs:], C) // (T, hs) = att·v
		}
	})
}

// softmaxRows: each row of a (…, T) in place, its softmax.
func softmaxRows(a []float32, T int) {
	if useC {
		softmaxRowsC(a, T)
		return
	}
	softmaxRowsGo(a, T)
}

func softmaxRowsGo(a []float32, T int) {
	for t := 0; t < len(a); t += T {
		softmaxRow(a[t : t+T])
	}
}

func softmaxRow(r []float32) {
	mx := r[0]
	for _, v := range r[1:] {
		mx = max(mx, v)
	}
	var s float32
	for i, v := range r {
		e := exp32(v - mx)
		r[i] = e
		s += e
	}
	inv := 1 / s
	for i := range r {
		r[i] *= inv
	}
}

// scratchPool holds the workers' scratch buffers, reused across steps.
var scratchPool sync.Pool

// scratch returns a buffer of at least n floats from scratchPool; Put it back.
func scratch(n int) *[]float32 {
	if b, ok := scratchPool.Get().(*[]float32); ok && cap(*b) >= n {
		return b
	}
	b := make([]float32, n)
	return &b
}

// attentionBackward: dqkv (B, T, 3C) from dout (B, T, C), qkv and the saved
// att (B, NH, T, T), with one (T, T) scratch buffer per worker.
func attentionBackward(dqkv, dout, qkv, att []float32, B, T, C, NH int) {
	hs := C / NH
	scale := float32(1 / math.Sqrt(float64(hs)))
	C3 := 3 * C
	parallelFor(B*NH, 2, func(lo, hi int) {
		buf := scratch(T * T)
		defer scratchPool.Put(buf)
		datt := (*buf)[:T*T]
		for bh := lo; bh < hi; bh++ {
			b, h := bh/NH, bh%NH
			base := b * T * C3
			q, k, v := qkv[base+h*hs:], qkv[base+C+h*hs:], qkv[base+2*C+h*hs:]
			dq, dk, dv := dqkv[base+h*hs:], dqkv[base+C+h*hs:], dqkv[base+2*C+h*hs:]
			do := dout[b*T*C+h*hs:]
			a := att[bh*T*T : (bh+1)*T*T]
			sgemm(tr, noT, T, hs, T, 1, a, T, do, C, 0, dv, C3)         // dv = attᵀ·dout
			sgemm(noT, tr, T, T, hs, 1, do, C, v, C3, 0, datt, T)       // datt = dout·vᵀ
			softmaxBackwardRows(a, datt, T)                             // in place in datt
			sgemm(noT, noT, T, hs, T, scale, datt, T, k, C3, 0, dq, C3) // dq = dpre·k/√hs
			sgemm(tr, noT, T, hs, T, scale, datt, T, q, C3, 0, dk, C3)  // dk = dpreᵀ·q/√hs
		}
	})
}

// softmaxBackwardRows: d (…, T) ← a·(d − Σ_row a·d), the gradient of each row's scores from
// that of its probabilities a, in place.
func softmaxBackwardRows(a, d []float32, T int) {
	if useC {
		softmaxBackwardRowsC(a, d, T)
		return
	}
	softmaxBackwardRowsGo(a, d, T)
}

func softmaxBackwardRowsGo(a, d []float32, T int) {
	for t := 0; t < len(a); t += T {
		ar, dr := a[t:t+T], d[t:t+T]
		var s float32
		for j := range ar {
			s += ar[j] * dr[j]
		}
		for j := range ar {
			dr[j] = ar[j] * (dr[j] - s)
		}
	}
}

// ---------------------------------------------------------------- Residual

// residual: out = x + mask[b]·f for each sample b of per elements (x + f where mask is nil);
// with x nil, out = mask[b]·f (the branch's gradient). One core: a pass over memory that
// two goroutines would not shorten by more than they cost to start.
func residual(out, x, f, mask []float32, per int) {
	if useC {
		residualC(out, x, f, mask, per)
		return
	}
	residualGo(out, x, f, mask, per)
}

func residualGo(out, x, f, mask []float32, per int) {
	for b := 0; b < len(out)/per; b++ {
		lo, hi := b*per, (b+1)*per
		s := float32(1)
		if mask != nil {
			s = mask[b]
		}
		switch {
		case x == nil:
			for i := lo; i < hi; i++ {
				out[i] = s * f[i]
			}
		case s == 1:
			for i := lo; i < hi; i++ {
				out[i] = x[i] + f[i]
			}
		default:
			for i := lo; i < hi; i++ {
				out[i] = x[i] + s*f[i]
			}
		}
	}
}

// mul: out = a·b elementwise.
func mul(out, a, b []float32) {
	parallelFor(len(out), 1<<14, func(lo, hi int) {
		if useC {
			mulC(out[lo:hi], a[lo:hi], b[lo:hi])
			return
		}
		mulGo(out[lo:hi], a[lo:hi], b[lo:hi])
	})
}

func mulGo(out, a, b []float32) {
	for i := range out {
		out[i] = a[i] * b[i]
	}
}
