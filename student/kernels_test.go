package student

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randSlice(r *rand.Rand, n int, std float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * std)
	}
	return x
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// Naive references: the definitions, in float64, loop by loop.

func naiveLayerNorm(x, w, b []float32, M, C int) []float32 {
	out := make([]float32, M*C)
	for i := 0; i < M; i++ {
		var m, v float64
		for j := 0; j < C; j++ {
			m += float64(x[i*C+j])
		}
		m /= float64(C)
		for j := 0; j < C; j++ {
			d := float64(x[i*C+j]) - m
			v += d * d
		}
		v /= float64(C)
		for j := 0; j < C; j++ {
			out[i*C+j] = float32((float64(x[i*C+j])-m)/math.Sqrt(v+lnEps)*float64(w[j]) + float64(b[j]))
		}
	}
	return out
}

func naiveLinear(x, w, b []float32, M, IC, OC int) []float32 {
	out := make([]float32, M*OC)
	for i := 0; i < M; i++ {
		for o := 0; o < OC; o++ {
			s := float64(b[o])
			for k := 0; k < IC; k++ {
				s += float64(x[i*IC+k]) * float64(w[o*IC+k])
			}
			out[i*OC+o] = float32(s)
		}
	}
	return out
}

func naiveAttention(qkv []float32, B, T, C, NH int) []float32 {
	hs := C / NH
	out := make([]float32, B*T*C)
	at := func(b, t, s, h, j int) float64 { return float64(qkv[(b*T+t)*3*C+s*C+h*hs+j]) }
	for b := 0; b < B; b++ {
		for h := 0; h < NH; h++ {
			for t := 0; t < T; t++ {
				sc := make([]float64, T)
				mx := math.Inf(-1)
				for u := 0; u < T; u++ {
					for j := 0; j < hs; j++ {
						sc[u] += at(b, t, 0, h, j) * at(b, u, 1, h, j)
					}
					sc[u] /= math.Sqrt(float64(hs))
					mx = math.Max(mx, sc[u])
				}
				var z float64
				for u := range sc {
					sc[u] = math.Exp(sc[u] - mx)
					z += sc[u]
				}
				for j := 0; j < hs; j++ {
					var s float64
					for u := 0; u < T; u++ {
						s += sc[u] / z * at(b, u, 2, h, j)
					}
					out[(b*T+t)*C+h*hs+j] = float32(s)
				}
			}
		}
	}
	return out
}

func TestKernelsAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	t.Run("layernorm", func(t *testing.T) {
		M, C := 37, 24
		x, w, b := randSlice(r, M*C, 2), randSlice(r, C, 1), randSlice(r, C, 1)
		out, mean, rstd := make([]float32, M*C), make([]float32, M), make([]float32, M)
		layernormForward(out, mean, rstd, x, w, b, M, C, lnEps)
		if d := maxAbsDiff(out, naiveLayerNorm(x, w, b, M, C)); d > 1e-5 {
			t.Errorf("max |diff| %.2e", d)
		}
	})
	t.Run("linear", func(t *testing.T) {
		M, IC, OC := 33, 20, 12
		x, w, b := randSlice(r, M*IC, 1), randSlice(r, OC*IC, 1), randSlice(r, OC, 1)
		out := make([]float32, M*OC)
		matmulForward(out, x, w, b, M, IC, OC)
		if d := maxAbsDiff(out, naiveLinear(x, w, b, M, IC, OC)); d > 1e-4 {
			t.Errorf("max |diff| %.2e", d)
		}
	})
	t.Run("attention", func(t *testing.T) {
		B, T, C, NH := 3, 7, 12, 3
		qkv := randSlice(r, B*T*3*C, 1)
		out, att := make([]float32, B*T*C), make([]float32, B*NH*T*T)
		attentionForward(out, att, qkv, B, T, C, NH)
		if d := maxAbsDiff(out, naiveAttention(qkv, B, T, C, NH)); d > 1e-5 {
			t.Errorf("max |diff| %.2e", d)
		}
	})
	t.Run("gelu", func(t *testing.T) {
		x := randSlice(r, 5000, 3)
		out := make([]float32, len(x))
		geluForward(out, x, len(x))
		for i, v := range x {
			want := 0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2))
			if d := math.Abs(float64(out[i]) - want); d > 1e-6*math.Max(1, math.Abs(want)) {
				t.Fatalf("gelu(%g) = %g, want %g", v, out[i], want)
			}
		}
	})
	t.Run("normCDFPDF", func(t *testing.T) {
		for x := -9.0; x <= 9; x += 0.001 {
			cdf, pdf := normCDFPDF(float32(x))
			xf := float64(float32(x))
			if d := math.Abs(float64(cdf) - 0.5*(1+math.Erf(xf/math.Sqrt2))); d > 3e-7 {
				t.Fatalf("Φ(%g) off by %.2e", x, d)
			}
			want := math.Exp(-xf*xf/2) / math.Sqrt(2*math.Pi)
			if d := math.Abs(float64(pdf) - want); d > (1e-6+3e-7*xf*xf)*want { // float32 rounding of x²/2 moves the exponent by ~x²·1e-7
				t.Fatalf("φ(%g) off by %.2e", x, d)
			}
		}
	})
	t.Run("exp32", func(t *testing.T) {
		for x := -80.0; x <= 88; x += 0.01 {
			want := math.Exp(float64(float32(x)))
			if d := math.Abs(float64(exp32(float32(x)))-want) / want; d > 5e-7 {
				t.Fatalf("exp32(%g) relative error %.2e", x, d)
			}
		}
	})
}
