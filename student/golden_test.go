package student

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
)

// goldenTensor is one record of testdata/golden/student_fm_tiny.bin,
// written by scripts/student_golden.py.
type goldenTensor struct {
	shape []int
	data  []float32
}

func loadGolden(t *testing.T) map[string]goldenTensor {
	t.Helper()
	return loadGoldenFile(t, "../testdata/golden/student_fm_tiny.bin", "scripts/student_golden.py")
}

// loadGoldenFile reads a file of goldenTensor records that script wrote.
func loadGoldenFile(t *testing.T, path, script string) map[string]goldenTensor {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file (regenerate with /usr/bin/python3 %s): %v", script, err)
	}
	out := map[string]goldenTensor{}
	u32 := func() int {
		v := binary.LittleEndian.Uint32(raw)
		raw = raw[4:]
		return int(v)
	}
	for len(raw) > 0 {
		ln := u32()
		name := string(raw[:ln])
		raw = raw[ln:]
		nd := u32()
		shape := make([]int, nd)
		n := 1
		for i := range shape {
			shape[i] = u32()
			n *= shape[i]
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		raw = raw[4*n:]
		out[name] = goldenTensor{shape, data}
	}
	return out
}

func relErr(got, want []float32) float64 {
	var d, w float64
	for i := range want {
		e := float64(got[i]) - float64(want[i])
		d += e * e
		w += float64(want[i]) * float64(want[i])
	}
	if w == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / w)
}

// goldenModel is fm-tiny with the golden parameters, and the golden batch.
func goldenModel(t *testing.T, g map[string]goldenTensor) (*Model, Batch) {
	t.Helper()
	m, err := New(Config{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		ref, ok := g["param/"+p.Name]
		if !ok {
			t.Fatalf("golden file has no parameter %s", p.Name)
		}
		if fmt.Sprint(ref.shape) != fmt.Sprint(p.Shape) {
			t.Fatalf("%s: shape %v, PyTorch %v", p.Name, p.Shape, ref.shape)
		}
		copy(p.Data, ref.data)
	}
	n := 0
	for k := range g {
		if strings.HasPrefix(k, "param/") {
			n++
		}
	}
	if n != len(m.Params()) {
		t.Fatalf("PyTorch has %d parameters, deitkd %d", n, len(m.Params()))
	}
	var b Batch
	b.Images = g["images"].data
	for _, y := range g["labels"].data {
		b.Labels = append(b.Labels, int(y))
	}
	return m, b
}

type goldenCase struct {
	name string
	loss LossConfig
}

// goldenCases mirror CASES in scripts/student_golden.py.
var goldenCases = []goldenCase{
	{"none", LossConfig{Distill: "none"}},
	{"none_s0.1", LossConfig{Distill: "none", Smoothing: 0.1}},
	{"soft_t1_a0.5", LossConfig{Distill: "soft", Tau: 1, Alpha: 0.5}},
	{"soft_t3_a0.1_s0.1", LossConfig{Distill: "soft", Tau: 3, Alpha: 0.1, Smoothing: 0.1}},
	{"soft_t2_a0.5_numel", LossConfig{Distill: "soft", Tau: 2, Alpha: 0.5, KLNorm: "numel"}},
	{"hard", LossConfig{Distill: "hard", Alpha: 0.5}},
}

const gradCase = 3 // soft_t3_a0.1_s0.1: every parameter's gradient is golden for it

func targets(b Batch, g map[string]goldenTensor, c LossConfig) Batch {
	tl := g["teacher_logits"].data
	K := len(tl) / len(b.Labels)
	b.TeacherProbs = teacherProbs(tl, K, c.withDefaults().Tau)
	b.TeacherHard = nil
	for r := range b.Labels {
		best := 0
		for k := range K {
			if tl[r*K+k] > tl[r*K+best] {
				best = k
			}
		}
		b.TeacherHard = append(b.TeacherHard, best)
	}
	return b
}

func TestGoldenLogits(t *testing.T) {
	g := loadGolden(t)
	m, b := goldenModel(t, g)
	cls, dist, err := m.Infer(b.Images, len(b.Labels))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want []float32
	}{{"cls", cls, g["cls_logits"].data}, {"dist", dist, g["dist_logits"].data}} {
		if e := relErr(c.got, c.want); e > 1e-5 {
			t.Errorf("%s logits: relative error %.2e", c.name, e)
		}
	}
}

func TestGoldenLosses(t *testing.T) {
	g := loadGolden(t)
	_, b := goldenModel(t, g)
	cls, dist := g["cls_logits"].data, g["dist_logits"].data
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			bb := targets(b, g, c.loss)
			dc, dd := make([]float32, len(cls)), make([]float32, len(dist))
			p, err := Loss(cls, dist, bb, c.loss, dc, dd)
			if err != nil {
				t.Fatal(err)
			}
			want := float64(g["loss/"+c.name].data[0])
			if math.Abs(p.Total-want) > 1e-5*math.Max(1, math.Abs(want)) {
				t.Errorf("loss %.7f, PyTorch %.7f", p.Total, want)
			}
			if e := relErr(dc, g["dlogits/"+c.name+"/cls"].data); e > 1e-5 {
				t.Errorf("d/dcls: relative error %.2e", e)
			}
			if e := relErr(dd, g["dlogits/"+c.name+"/dist"].data); e > 1e-5 {
				t.Errorf("d/ddist: relative error %.2e", e)
			}
		})
	}
}

func TestGoldenGradients(t *testing.T) {
	g := loadGolden(t)
	m, b := goldenModel(t, g)
	c := goldenCases[gradCase]
	tr, err := NewTrainer(m, TrainConfig{StepsPerEpoch: 1, Loss: c.loss})
	if err != nil {
		t.Fatal(err)
	}
	// The second run of the compiled graph must give what the first gave:
	// run it first on another batch, so that nothing of one run can leak
	// into the next (buffers reused by the tape machine, cached state).
	other := targets(b, g, c.loss)
	other.Images = append([]float32(nil), b.Images...)
	for i := range other.Images {
		other.Images[i] = -other.Images[i]
	}
	other.Labels = append([]int(nil), b.Labels[1:]...)
	other.Labels = append(other.Labels, b.Labels[0])
	if _, err := tr.Gradients(other); err != nil {
		t.Fatal(err)
	}
	parts, err := tr.Gradients(targets(b, g, c.loss))
	if err != nil {
		t.Fatal(err)
	}
	if want := float64(g["loss/"+c.name].data[0]); math.Abs(parts.Total-want) > 1e-5*math.Abs(want) {
		t.Errorf("loss %.7f, PyTorch %.7f", parts.Total, want)
	}
	for _, p := range m.Params() {
		e := relErr(p.Grad, g["grad/"+p.Name].data)
		if e > 1e-4 {
			t.Errorf("%s: ‖g − g_ref‖/‖g_ref‖ = %.2e > 1e-4", p.Name, e)
		} else if testing.Verbose() {
			t.Logf("%-28s %.2e", p.Name, e)
		}
	}
}

func TestGoldenAdamW(t *testing.T) {
	g := loadGolden(t)
	m, _ := goldenModel(t, g)
	cfg := g["adamw/config"].data
	lr, wd, clip := float64(cfg[0]), float64(cfg[1]), float64(cfg[2])
	opt := NewAdamW(m.NumParams())
	for range 2 {
		for _, p := range m.Params() {
			copy(p.Grad, g["grad/"+p.Name].data)
		}
		ClipGradNorm(m, clip)
		opt.Step(m, lr, wd)
	}
	for _, p := range m.Params() {
		want := g["adamw/"+p.Name].data
		before := g["param/"+p.Name].data
		// compare the updates, not the parameters: they are ~1e-3 of them
		du, dw := make([]float32, len(want)), make([]float32, len(want))
		for i := range want {
			du[i], dw[i] = p.Data[i]-before[i], want[i]-before[i]
		}
		if e := relErr(du, dw); e > 1e-4 {
			t.Errorf("%s: update relative error %.2e", p.Name, e)
		}
	}
}

// naiveForward is the model written with the naive references, no
// gorgonia: (cls, dist) logits.
func naiveForward(m *Model, images []float32, B int) ([]float32, []float32) {
	c := m.cfg
	D, T, N, P, S, K := c.Dim, c.Tokens(), c.Patches(), c.Patch, c.ImageSize/c.Patch, c.Classes
	pr := func(n string) []float32 { p, _ := param(m, n); return p.Data }
	h := make([]float32, B*T*D)
	w, bias, pos := pr("patch_embed.proj.weight"), pr("patch_embed.proj.bias"), pr("pos_embed")
	for b := 0; b < B; b++ {
		for d := 0; d < D; d++ {
			h[(b*T+0)*D+d] = pr("cls_token")[d] + pos[d]
			h[(b*T+1)*D+d] = pr("dist_token")[d] + pos[D+d]
		}
		for n := 0; n < N; n++ {
			i, j := n/S, n%S
			for d := 0; d < D; d++ {
				s := float64(bias[d])
				for ch := 0; ch < c.Channels; ch++ {
					for u := 0; u < P; u++ {
						for v := 0; v < P; v++ {
							s += float64(w[((d*c.Channels+ch)*P+u)*P+v]) * float64(images[((b*c.Channels+ch)*c.ImageSize+i*P+u)*c.ImageSize+j*P+v])
						}
					}
				}
				h[(b*T+2+n)*D+d] = float32(s) + pos[(2+n)*D+d]
			}
		}
	}
	M := B * T
	for l := 0; l < c.Depth; l++ {
		p := fmt.Sprintf("blocks.%d.", l)
		a := naiveLayerNorm(h, pr(p+"norm1.weight"), pr(p+"norm1.bias"), M, D)
		a = naiveLinear(a, pr(p+"attn.qkv.weight"), pr(p+"attn.qkv.bias"), M, D, 3*D)
		a = naiveAttention(a, B, T, D, c.Heads)
		a = naiveLinear(a, pr(p+"attn.proj.weight"), pr(p+"attn.proj.bias"), M, D, D)
		for i := range h {
			h[i] += a[i]
		}
		a = naiveLayerNorm(h, pr(p+"norm2.weight"), pr(p+"norm2.bias"), M, D)
		a = naiveLinear(a, pr(p+"mlp.fc1.weight"), pr(p+"mlp.fc1.bias"), M, D, c.Hidden())
		for i, v := range a {
			a[i] = float32(0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2)))
		}
		a = naiveLinear(a, pr(p+"mlp.fc2.weight"), pr(p+"mlp.fc2.bias"), M, c.Hidden(), D)
		for i := range h {
			h[i] += a[i]
		}
	}
	h = naiveLayerNorm(h, pr("norm.weight"), pr("norm.bias"), M, D)
	tok := func(t int) []float32 {
		x := make([]float32, B*D)
		for b := 0; b < B; b++ {
			copy(x[b*D:(b+1)*D], h[(b*T+t)*D:])
		}
		return x
	}
	return naiveLinear(tok(0), pr("head.weight"), pr("head.bias"), B, D, K),
		naiveLinear(tok(1), pr("head_dist.weight"), pr("head_dist.bias"), B, D, K)
}

func TestNaiveForwardMatchesPyTorch(t *testing.T) {
	g := loadGolden(t)
	m, b := goldenModel(t, g)
	cls, dist := naiveForward(m, b.Images, len(b.Labels))
	if e := relErr(cls, g["cls_logits"].data); e > 1e-5 {
		t.Errorf("cls logits: relative error %.2e", e)
	}
	if e := relErr(dist, g["dist_logits"].data); e > 1e-5 {
		t.Errorf("dist logits: relative error %.2e", e)
	}
}

// TestGoldenTraining takes the ten steps of the golden script's training
// trajectory (hard distillation, constant lr 1e-3, wd 0.05, clip 1).
func TestGoldenTraining(t *testing.T) {
	g := loadGolden(t)
	m, b := goldenModel(t, g)
	c := LossConfig{Distill: "hard", Alpha: 0.5}
	tr, err := NewTrainer(m, TrainConfig{StepsPerEpoch: 10, Epochs: 1, LR: 1e-3, MinLR: 1e-3, WD: 0.05, Clip: 1, Loss: c})
	if err != nil {
		t.Fatal(err)
	}
	if s := tr.Config.Schedule(); s.WarmupSteps != 0 {
		t.Fatalf("schedule %+v, want no warm-up", s)
	}
	bb := targets(b, g, c)
	for i, want := range g["train/losses"].data {
		st, err := tr.TrainStep(bb)
		if err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(st.Loss.Total - float64(want)); d > 1e-4*math.Abs(float64(want)) {
			t.Errorf("step %d: loss %.6f, PyTorch %.6f", i, st.Loss.Total, want)
		}
	}
}
