package student

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// sameBits reports the first index where got and want differ bit for bit (any NaN equals any
// NaN: the payload of a NaN is no result), or -1.
func sameBits(got, want []float32) int {
	for i := range want {
		g, w := got[i], want[i]
		if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
			return i
		}
	}
	return -1
}

// specialFloats are the inputs where the kernels branch or round at an edge: zeros of both
// signs, infinities, NaN, subnormals, exp32's overflow and underflow thresholds and their
// neighbours, the points where exp32's range reduction steps, and GELU's saturation.
func specialFloats() []float32 {
	inf := float32(math.Inf(1))
	s := []float32{0, float32(math.Copysign(0, -1)), inf, -inf, float32(math.NaN()), 1e-45, -1e-45, 1e-38, -1e-38,
		88.3762626647949, -87.3365447505531, 88.72, -88.72, 89, -104, 1, -1, 0.5, -0.5, 13, -13, 1e30, -1e30}
	for _, x := range []float32{88.3762626647949, -87.3365447505531} {
		s = append(s, math.Nextafter32(x, 0), math.Nextafter32(x, 2*x))
	}
	for k := -130; k <= 130; k++ { // x·log2(e) + ½ crossing an integer
		x := (float32(k) - 0.5) / 1.44269504088896341
		s = append(s, x, math.Nextafter32(x, inf), math.Nextafter32(x, -inf))
	}
	return s
}

// TestCKernelsMatchGo: the C kernels (both builds, the baseline's and AVX2's) give the Go
// kernels' results bit for bit, on random inputs of every length around the vector width and
// on the special values, GELU forward, forward with derivative and backward, and softmax rows
// of the widths the models use and odd ones.
func TestCKernelsMatchGo(t *testing.T) {
	if !haveCKernels {
		t.Skip("built without cgo")
	}
	defer setCKernelISA(true)
	r := rand.New(rand.NewPCG(3, 4))
	for _, avx2 := range []bool{false, true} {
		isa := setCKernelISA(avx2)
		if avx2 && isa != "avx2" {
			t.Log("the CPU has no AVX2: the baseline build only")
			continue
		}
		t.Run(isa, func(t *testing.T) {
			var inputs [][]float32
			for n := 0; n <= 40; n++ {
				inputs = append(inputs, randSlice(r, n, []float64{1, 3, 10}[n%3]))
			}
			inputs = append(inputs, randSlice(r, 100_003, 4), specialFloats())
			for _, x := range inputs {
				n := len(x)
				dout := randSlice(r, n, 1)
				want, got := make([]float32, n), make([]float32, n)
				wantG, gotG := make([]float32, n), make([]float32, n)
				for _, c := range []struct {
					name string
					c, g func()
				}{
					{"forward", func() { geluForwardC(got, x) }, func() { geluForwardGo(want, x) }},
					{"forward-grad", func() { geluForwardGradC(got, gotG, x) }, func() { geluForwardGradGo(want, wantG, x) }},
					{"backward", func() { geluBackwardC(got, x, dout) }, func() { geluBackwardGo(want, x, dout) }},
				} {
					c.c()
					c.g()
					if i := sameBits(got, want); i >= 0 {
						t.Fatalf("gelu %s, n %d: element %d (x = %g): C %g, Go %g", c.name, n, i, x[i], got[i], want[i])
					}
					if i := sameBits(gotG, wantG); i >= 0 {
						t.Fatalf("gelu %s, n %d: derivative %d (x = %g): C %g, Go %g", c.name, n, i, x[i], gotG[i], wantG[i])
					}
				}
			}
			for _, M := range []int{1, 3, 4, 5, 9, 37} {
				for _, C := range []int{1, 7, 8, 24, 64, 65} {
					x, w, b, g := randSlice(r, M*C, 2), randSlice(r, C, 1), randSlice(r, C, 1), randSlice(r, M*C, 1)
					x[0] = 40
					if i := sameBits(colSum(t, colSumC, g, C), colSum(t, colSumGo, g, C)); i >= 0 {
						t.Fatalf("column sum M %d, N %d: column %d differs", M, C, i)
					}
					out, mean, rstd := make([]float32, M*C), make([]float32, M), make([]float32, M)
					wOut, wMean, wRstd := make([]float32, M*C), make([]float32, M), make([]float32, M)
					layernormForwardC(out, mean, rstd, x, w, b, C, lnEps)
					layernormForwardGo(wOut, wMean, wRstd, x, w, b, C, lnEps)
					for _, c := range [][2][]float32{{out, wOut}, {mean, wMean}, {rstd, wRstd}} {
						if i := sameBits(c[0], c[1]); i >= 0 {
							t.Fatalf("layernorm forward M %d, C %d: element %d: C %g, Go %g", M, C, i, c[0][i], c[1][i])
						}
					}
					for mask := 1; mask < 8; mask++ { // which of dx, dγ, dβ are asked for
						grads := func(f func(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, C int)) [3][]float32 {
							var d [3][]float32
							for j, n := range []int{M * C, C, C} {
								if mask&(1<<j) != 0 {
									d[j] = make([]float32, n)
									for k := range d[j] {
										d[j][k] = float32(math.NaN()) // every element must be written
									}
								}
							}
							f(d[0], d[1], d[2], g, x, w, mean, rstd, C)
							return d
						}
						gotD, wantD := grads(layernormBackwardC), grads(layernormBackwardGo)
						for j := range gotD {
							if k := sameBits(gotD[j], wantD[j]); k >= 0 || (wantD[j] != nil && wantD[j][0] != wantD[j][0]) {
								t.Fatalf("layernorm backward M %d, C %d, gradients %03b: gradient %d element %d differs or is unwritten", M, C, mask, j, k)
							}
						}
					}
				}
			}
			for _, per := range []int{1, 7, 8, 9, 3264} {
				B := 5
				x, f := randSlice(r, B*per, 1), randSlice(r, B*per, 1)
				for _, mask := range [][]float32{nil, {0, 1, 1 / 0.7, 1, 0}} {
					for _, xx := range [][]float32{x, nil} {
						got, want := make([]float32, B*per), make([]float32, B*per)
						residualC(got, xx, f, mask, per)
						residualGo(want, xx, f, mask, per)
						if i := sameBits(got, want); i >= 0 {
							t.Fatalf("residual per %d, mask %v, x %v: element %d: C %g, Go %g", per, mask, xx != nil, i, got[i], want[i])
						}
					}
				}
				got, want := make([]float32, B*per), make([]float32, B*per)
				mulC(got, x, f)
				mulGo(want, x, f)
				if i := sameBits(got, want); i >= 0 {
					t.Fatalf("mul n %d: element %d: C %g, Go %g", B*per, i, got[i], want[i])
				}
			}
			ninf := float32(math.Inf(-1))
			for _, T := range []int{1, 2, 7, 8, 9, 16, 17, 51, 65, 197} {
				for _, std := range []float64{0.1, 3, 30} {
					a := randSlice(r, 5*T, std)
					a[0], a[T+T/2] = 0, ninf // a -Inf score (a masked one) and a zero
					if T > 1 {
						a[2*T+1] = float32(math.Copysign(0, -1)) // the row's maximum a -0 …
						for j := 2 * T; j < 3*T; j++ {
							if j != 2*T+1 {
								a[j] = -1 - float32(j%3)
							}
						}
						a[2*T+T-1] = 0 // … and a +0
						a[3*T+T/2] = float32(math.NaN())
						a[4*T+T-1] = 80 // one exp near the float32 overflow, the others underflowing
					}
					got, want := append([]float32{}, a...), append([]float32{}, a...)
					softmaxRowsC(got, T)
					softmaxRowsGo(want, T)
					if i := sameBits(got, want); i >= 0 {
						t.Fatalf("softmax T %d, std %g: element %d (score %g): C %g, Go %g", T, std, i, a[i], got[i], want[i])
					}
					d := randSlice(r, len(a), std)
					gotD, wantD := append([]float32{}, d...), append([]float32{}, d...)
					softmaxBackwardRowsC(want, gotD, T)
					softmaxBackwardRowsGo(want, wantD, T)
					if i := sameBits(gotD, wantD); i >= 0 {
						t.Fatalf("softmax backward T %d, std %g: element %d: C %g, Go %g", T, std, i, gotD[i], wantD[i])
					}
				}
			}
		})
	}
}

// TestTrainStepCMatchesGo: a training step with the C kernels equals the step with the Go
// kernels bit for bit (loss, gradient norm and every parameter after AdamW).
func TestTrainStepCMatchesGo(t *testing.T) {
	if !haveCKernels {
		t.Skip("built without cgo")
	}
	defer func() { useC = haveCKernels }()
	run := func(c bool) ([]float32, StepStats) {
		useC = c
		cfg := Config{}.WithDefaults()
		m, err := New(cfg, 5)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(m, shortRecipe(t, 16, 10, "hard"))
		if err != nil {
			t.Fatal(err)
		}
		var st StepStats
		for i := range 2 {
			if st, err = tr.TrainStep(benchBatch(cfg, 16, uint64(i))); err != nil {
				t.Fatal(err)
			}
		}
		return m.params, st
	}
	pc, sc := run(true)
	pg, sg := run(false)
	if sc != sg {
		t.Errorf("C kernels %+v, Go kernels %+v", sc, sg)
	}
	if i := sameBits(pc, pg); i >= 0 {
		t.Errorf("parameter %d: C kernels %g, Go kernels %g", i, pc[i], pg[i])
	}
}

func colSum(t *testing.T, f func(sum, a []float32), a []float32, N int) []float32 {
	t.Helper()
	sum := make([]float32, N)
	for i := range sum {
		sum[i] = 7 // must be overwritten
	}
	f(sum, a)
	return sum
}

// TestLayerNormBackwardOnePass: the LayerNorm kernel gives the same gradients whichever of
// its three backward calls comes first (the first makes the parameter gradients for the
// others), and a new forward makes them anew.
func TestLayerNormBackwardOnePass(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	M, C := 13, 24
	shapes := []tensor.Shape{{M, C}, {C}, {C}}
	w, b := randSlice(r, C, 1), randSlice(r, C, 1)
	for _, order := range [][]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 1, 2}} {
		k := &lnKernel{eps: lnEps}
		if _, err := k.outShape(shapes); err != nil {
			t.Fatal(err)
		}
		out := make([]float32, M*C)
		for step := range 2 { // a second step on other inputs: no gradient of the first survives
			rs := rand.New(rand.NewPCG(uint64(step), 1))
			x, dout := randSlice(rs, M*C, 1), randSlice(rs, M*C, 1)
			in := [][]float32{x, w, b}
			k.forward(out, in)
			var d [3][]float32
			for _, i := range order {
				d[i] = make([]float32, len(in[i]))
				k.backward(i, d[i], in, out, dout)
			}
			var want [3][]float32
			want[0], want[1], want[2] = make([]float32, M*C), make([]float32, C), make([]float32, C)
			layernormBackwardGo(want[0], want[1], want[2], dout, x, w, k.mean, k.rstd, C)
			for i := range d {
				if j := sameBits(d[i], want[i]); j >= 0 {
					t.Fatalf("order %v, step %d: gradient %d element %d: %g, one pass %g", order, step, i, j, d[i][j], want[i][j])
				}
			}
		}
	}
}
