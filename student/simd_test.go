package student

import (
	"math"
	"math/rand/v2"
	"testing"
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
