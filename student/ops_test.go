package student

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// checkGradients compares every kernel backward with central finite
// differences of f = Σ r·out for a random r. The kernels are float32, so
// eps is large (1e-2) and the tolerance is on the relative error of the
// whole gradient vector, up to 64 sampled elements per input.
func checkGradients(t *testing.T, k kernel, in [][]float32, shapes []tensor.Shape) {
	t.Helper()
	s, err := k.outShape(shapes)
	if err != nil {
		t.Fatal(err)
	}
	n := 1
	if s != nil {
		n = s.TotalSize()
	}
	r := rand.New(rand.NewPCG(7, 7))
	dout := randSlice(r, n, 1)
	out := make([]float32, n)
	k.forward(out, in)
	d := k.diff(len(in))
	analytic := make([][]float32, len(in))
	for i := range in {
		if d[i] {
			analytic[i] = make([]float32, len(in[i]))
			k.backward(i, analytic[i], in, out, dout)
		}
	}
	f := func() float64 {
		k.forward(out, in)
		var s float64
		for j := range out {
			s += float64(out[j]) * float64(dout[j])
		}
		return s
	}
	const eps = 1e-2
	for i := range in {
		if !d[i] {
			continue
		}
		idx := r.Perm(len(in[i]))
		if len(idx) > 64 {
			idx = idx[:64]
		}
		var num, ana []float32
		for _, j := range idx {
			v := in[i][j]
			in[i][j] = v + eps
			fp := f()
			in[i][j] = v - eps
			fm := f()
			in[i][j] = v
			num = append(num, float32((fp-fm)/(2*eps)))
			ana = append(ana, analytic[i][j])
		}
		if e := relErr(ana, num); e > 5e-3 {
			t.Errorf("input %d: relative error %.2e between backward and finite differences", i, e)
		}
	}
}

func TestFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sh := func(s ...int) tensor.Shape { return tensor.Shape(s) }
	B, T, D, NH, K := 2, 5, 8, 2, 6
	c := Config{ImageSize: 8, Channels: 2, Patch: 4, Dim: D, Depth: 1, Heads: NH, Classes: K}.WithDefaults()
	Tc := c.Tokens()
	cases := []struct {
		name   string
		k      kernel
		shapes []tensor.Shape
	}{
		{"layernorm", &lnKernel{eps: lnEps}, []tensor.Shape{sh(B, T, D), sh(D), sh(D)}},
		{"linear", &linearKernel{}, []tensor.Shape{sh(B, T, D), sh(3, D), sh(3)}},
		{"attention", &attnKernel{C: D, NH: NH}, []tensor.Shape{sh(B, T, 3*D)}},
		{"gelu", &geluKernel{}, []tensor.Shape{sh(B, T, D)}},
		{"gelu_cached", &geluKernel{grad: make([]float32, B*T*D)}, []tensor.Shape{sh(B, T, D)}},
		{"residual", &residualKernel{}, []tensor.Shape{sh(B, T, D), sh(B, T, D)}},
		{"residual_droppath", &residualKernel{mask: []float32{0, 1 / 0.7}}, []tensor.Shape{sh(B, T, D), sh(B, T, D)}},
		{"embed", &embedKernel{cfg: c}, []tensor.Shape{sh(B, 2, 8, 8), sh(D, 2, 4, 4), sh(D), sh(1, 1, D), sh(1, 1, D), sh(1, Tc, D)}},
		{"head_dist", &headKernel{tok: 1}, []tensor.Shape{sh(B, T, D), sh(K, D), sh(K)}},
	}
	for i, lc := range []LossConfig{
		{Distill: "none", Smoothing: 0.1},
		{Distill: "soft", Tau: 2, Alpha: 0.3, Smoothing: 0.1},
		{Distill: "soft", Tau: 1, Alpha: 0.5, KLNorm: "numel"},
		{Distill: "hard", Alpha: 0.5},
	} {
		b := Batch{Labels: []int{1, 4}, TeacherHard: []int{2, 0}, TeacherProbs: teacherProbs(randSlice(r, B*K, 2), K, lc.withDefaults().Tau)}
		cases = append(cases, struct {
			name   string
			k      kernel
			shapes []tensor.Shape
		}{fmt.Sprintf("loss_%d_%s", i, lc.Distill), &lossKernel{cfg: lc, batch: b}, []tensor.Shape{sh(B, K), sh(B, K)}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := make([][]float32, len(tc.shapes))
			for i, s := range tc.shapes {
				in[i] = randSlice(r, s.TotalSize(), 1)
			}
			checkGradients(t, tc.k, in, tc.shapes)
		})
	}
}

func TestParamCountsMatchTimm(t *testing.T) {
	for _, tc := range []struct {
		name   string
		noDist bool
		want   int
	}{
		{"deit-tiny", false, 5910800},   // timm deit_tiny_distilled_patch16_224
		{"deit-tiny", true, 5717416},    // timm deit_tiny_patch16_224
		{"deit-small", false, 22436432}, // timm deit_small_distilled_patch16_224
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Preset(map[bool]string{false: tc.name, true: "deit-tiny"}[tc.noDist])
			if err != nil {
				t.Fatal(err)
			}
			c.NoDistToken = tc.noDist
			n := paramCount(c)
			if n != tc.want {
				t.Errorf("%d parameters, timm has %d", n, tc.want)
			}
		})
	}
}

// paramCount is the parameter count of c without allocating a model.
func paramCount(c Config) int {
	c = c.WithDefaults()
	D, T, K, Hd := c.Dim, c.Tokens(), c.Classes, c.Hidden()
	n := D + T*D + D*c.Channels*c.Patch*c.Patch + D // cls, pos, patch proj
	n += c.Depth * (2*D + 3*D*D + 3*D + D*D + D + 2*D + Hd*D + Hd + D*Hd + D)
	n += 2*D + K*D + K
	if !c.NoDistToken {
		n += D + K*D + K
	}
	return n
}

func TestParamCountFormula(t *testing.T) {
	m, err := New(Config{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.NumParams() != paramCount(m.Config()) {
		t.Fatalf("model %d parameters, formula %d", m.NumParams(), paramCount(m.Config()))
	}
	// The README quotes fm-tiny as "206k parameters": a preset change must change it there too.
	if n := m.NumParams(); (n+500)/1000 != 206 {
		t.Errorf("fm-tiny has %d parameters, the README says 206k", n)
	}
}
