package student

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// synthetic is a learnable toy task: class k is a fixed random prototype
// image plus noise; at initialisation attention is near uniform, so the
// class token sees a linear function of the image and learns quickly.
func synthetic(n int, seed uint64) Batch {
	protos := randSlice(rand.New(rand.NewPCG(42, 42)), 10*28*28, 1)
	r := rand.New(rand.NewPCG(seed, 1))
	var b Batch
	for i := 0; i < n; i++ {
		k := r.IntN(10)
		img := randSlice(r, 28*28, 0.5)
		for j := range img {
			img[j] += protos[k*28*28+j]
		}
		b.Images = append(b.Images, img...)
		b.Labels = append(b.Labels, k)
		b.TeacherHard = append(b.TeacherHard, k)
	}
	return b
}

func slice(b Batch, lo, hi int) Batch {
	per := len(b.Images) / len(b.Labels)
	return Batch{Images: b.Images[lo*per : hi*per], Labels: b.Labels[lo:hi], TeacherHard: b.TeacherHard[lo:hi]}
}

var smallConfig = Config{Dim: 32, Depth: 2, Heads: 2, MLPRatio: 2}

// shortRecipe is the short recipe for batches of batch rows, stepsPerEpoch of them, with
// the distillation mode distill.
func shortRecipe(t testing.TB, batch, stepsPerEpoch int, distill Distill) TrainConfig {
	t.Helper()
	c, err := NewRecipe(RecipeDefault, batch)
	if err != nil {
		t.Fatal(err)
	}
	c.StepsPerEpoch, c.Loss.Distill = stepsPerEpoch, distill
	return c
}

func TestTrainingLearnsSyntheticTask(t *testing.T) {
	m, err := New(smallConfig, 1)
	if err != nil {
		t.Fatal(err)
	}
	const B, steps = 32, 40
	data := synthetic(B*8, 2)
	tc := shortRecipe(t, B, 8, "hard")
	tc.Epochs, tc.LR = steps/8, 3e-3
	tr, err := NewTrainer(m, tc)
	if err != nil {
		t.Fatal(err)
	}
	eval := synthetic(128, 3)
	before, err := m.Eval(eval, "")
	if err != nil {
		t.Fatal(err)
	}
	var first, last float64
	for s := 0; s < steps; s++ {
		i := s % 8
		st, err := tr.TrainStep(slice(data, i*B, (i+1)*B))
		if err != nil {
			t.Fatal(err)
		}
		if s == 0 {
			first = st.Loss.Total
		}
		last = st.Loss.Total
	}
	after, err := m.Eval(eval, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loss %.3f → %.3f; eval top-1 fused %d/%d → %d/%d", first, last, before.Top1Fused, before.N, after.Top1Fused, after.N)
	if !(last < 0.75*first) {
		t.Errorf("loss fell only from %.3f to %.3f", first, last)
	}
	if after.Top1Fused < after.N*6/10 {
		t.Errorf("eval top-1 %d/%d after training", after.Top1Fused, after.N)
	}
}

func TestScheduleAt(t *testing.T) {
	s := Schedule{LR: 1e-3, MinLR: 1e-5, WarmupSteps: 10, TotalSteps: 110}
	for _, tc := range []struct {
		name string
		step int
		want float64
	}{
		{"first warm-up step", 0, 1e-4},
		{"mid warm-up", 4, 5e-4},
		{"peak", 10, 1e-3},
		{"half-way down", 60, 1e-5 + 0.5*(1e-3-1e-5)},
		{"end", 110, 1e-5},
		{"past the end", 500, 1e-5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.At(tc.step); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("At(%d) = %g, want %g", tc.step, got, tc.want)
			}
		})
	}
	t.Run("recipes", func(t *testing.T) {
		c, err := NewRecipe("", 0)
		if err != nil {
			t.Fatal(err)
		}
		c.StepsPerEpoch = 100
		if s := c.Schedule(); s.WarmupSteps != 15 || s.LR != 1e-3 || s.TotalSteps != 500 || c.WD != 0.05 || c.Clip != 1 || c.Loss.Alpha != 0.5 || c.DropPath != 0 || c.Recipe != RecipeDefault {
			t.Errorf("short recipe %+v, schedule %+v", c, s)
		}
		c, err = NewRecipe("finetune", 256)
		if err != nil {
			t.Fatal(err)
		}
		c.StepsPerEpoch, c.Epochs = 469, 1
		if s := c.Schedule(); s.WarmupSteps != 14 || s.LR != 0.002 || s.MinLR != 1e-6 || c.WD != 1e-8 || c.Clip != 1 || c.DropPath != 0 ||
			c.Loss.Smoothing != 0 || c.WeightInit != InitTimm || c.Recipe != RecipeFinetune {
			t.Errorf("finetune recipe %+v, schedule %+v", c, s)
		}
		c, err = NewRecipe("deit", 1024)
		if err != nil {
			t.Fatal(err)
		}
		c.StepsPerEpoch, c.Epochs = 100, 300
		if s := c.Schedule(); s.WarmupSteps != 500 || s.LR != 1e-3 || c.Loss.Smoothing != 0.1 || c.Clip != 0 || c.DropPath != 0.1 || c.Recipe != RecipeDeiT {
			t.Errorf("deit recipe %+v, schedule %+v", c, s)
		}
		if _, err := NewRecipe("long", 8); !errors.Is(err, ErrConfig) {
			t.Errorf("NewRecipe(long): %v, want ErrConfig", err)
		}
	})
}

func TestNonFiniteLossKeepsParameters(t *testing.T) {
	m, err := New(smallConfig, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(m, shortRecipe(t, 8, 10, "hard"))
	if err != nil {
		t.Fatal(err)
	}
	b := synthetic(8, 1)
	if _, err := tr.TrainStep(b); err != nil {
		t.Fatal(err)
	}
	before := append([]float32(nil), m.params...)
	b.Images[5] = float32(math.Inf(1))
	_, err = tr.TrainStep(b)
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "step 1") {
		t.Fatalf("error %v, want ErrNonFinite at step 1", err)
	}
	for i := range before {
		if m.params[i] != before[i] {
			t.Fatalf("parameter %d changed by the failed step", i)
		}
	}
	if tr.Steps() != 1 {
		t.Errorf("steps %d after the failed step, want 1", tr.Steps())
	}
}

func TestCheckpointResumesExactly(t *testing.T) {
	cfg := smallConfig
	tc := shortRecipe(t, 16, 4, "hard")
	tc.DropPath = 0.2
	tc.Seed = 5
	data := synthetic(16*4, 4)
	newTrainer := func() *Trainer {
		m, err := New(cfg, 9)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(m, tc)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	a := newTrainer()
	for i := 0; i < 2; i++ {
		if _, err := a.TrainStep(slice(data, i*16, (i+1)*16)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "ckpt.bin")
	if err := a.Save(path); err != nil {
		t.Fatal(err)
	}
	b := newTrainer()
	if err := b.Load(path); err != nil {
		t.Fatal(err)
	}
	for i := 2; i < 4; i++ {
		sa, err := a.TrainStep(slice(data, i*16, (i+1)*16))
		if err != nil {
			t.Fatal(err)
		}
		sb, err := b.TrainStep(slice(data, i*16, (i+1)*16))
		if err != nil {
			t.Fatal(err)
		}
		if sa.Loss.Total != sb.Loss.Total || sa.Step != sb.Step {
			t.Fatalf("step %d: resumed run differs: %+v vs %+v", i, sa, sb)
		}
	}
	for i := range a.Model.params {
		if a.Model.params[i] != b.Model.params[i] {
			t.Fatalf("parameter %d differs after resuming", i)
		}
	}
	t.Run("model only", func(t *testing.T) {
		m, err := LoadModel(path)
		if err != nil {
			t.Fatal(err)
		}
		if m.Config() != cfg.WithDefaults() {
			t.Errorf("config %+v", m.Config())
		}
	})
	t.Run("architecture mismatch names the field", func(t *testing.T) {
		other := cfg
		other.Heads = 4
		m, err := New(other, 1)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(m, tc)
		if err != nil {
			t.Fatal(err)
		}
		err = tr.Load(path)
		if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "heads") {
			t.Errorf("error %v, want ErrMismatch naming heads", err)
		}
	})
	t.Run("corrupt file", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.bin")
		if err := writeFile(bad, []byte("DEITKD-STUDENT-1\nxxxxxxxxxxxx")); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadModel(bad); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("error %v, want ErrBadCheckpoint", err)
		}
	})
}

func TestEvalAndAnalyze(t *testing.T) {
	g := loadGolden(t)
	m, b := goldenModel(t, g)
	cls, dist := g["cls_logits"].data, g["dist_logits"].data
	K := m.cfg.Classes
	for _, fuse := range []Fuse{FuseProbs, FuseLogits} {
		t.Run(string(fuse), func(t *testing.T) {
			e, err := m.Eval(b, fuse)
			if err != nil {
				t.Fatal(err)
			}
			want := EvalCounts{N: len(b.Labels)}
			for r, y := range b.Labels {
				c1, c5 := rank(cls[r*K:(r+1)*K], y)
				d1, d5 := rank(dist[r*K:(r+1)*K], y)
				want.Top1Cls += c1
				want.Top5Cls += c5
				want.Top1Dist += d1
				want.Top5Dist += d5
			}
			e.Top1Fused, e.Top5Fused = 0, 0
			if e != want {
				t.Errorf("counts %+v, want %+v", e, want)
			}
		})
	}
	sims, err := m.Analyze(b.Images, b.Images[:4*28*28])
	if err != nil {
		t.Fatal(err)
	}
	if len(sims) != m.cfg.Depth+1 {
		t.Fatalf("%d similarities, want %d", len(sims), m.cfg.Depth+1)
	}
	pr := func(n string) []float32 { p, _ := param(m, n); return p.Data }
	D := m.cfg.Dim
	a, d := make([]float32, D), make([]float32, D)
	for j := 0; j < D; j++ {
		a[j] = pr("cls_token")[j] + pr("pos_embed")[j]
		d[j] = pr("dist_token")[j] + pr("pos_embed")[D+j]
	}
	if want := cosine(a, d); math.Abs(sims[0]-want) > 1e-6 {
		t.Errorf("input similarity %g, want %g", sims[0], want)
	}
	for i, s := range sims {
		if !(s >= -1 && s <= 1) {
			t.Errorf("similarity %d = %g", i, s)
		}
	}
}

func TestPlainViT(t *testing.T) {
	c := smallConfig
	c.NoDistToken = true
	m, err := New(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := param(m, "dist_token"); ok {
		t.Error("plain ViT has a dist_token")
	}
	if _, err := NewTrainer(m, shortRecipe(t, 4, 1, "hard")); !errors.Is(err, ErrConfig) {
		t.Errorf("hard distillation without a dist token: %v", err)
	}
	tr, err := NewTrainer(m, shortRecipe(t, 4, 1, "none"))
	if err != nil {
		t.Fatal(err)
	}
	b := synthetic(4, 1)
	if _, err := tr.TrainStep(b); err != nil {
		t.Fatal(err)
	}
	cls, dist, err := m.Infer(b.Images, 4)
	if err != nil || dist != nil || len(cls) != 40 {
		t.Errorf("Infer: %d cls, dist %v, err %v", len(cls), dist, err)
	}
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }

// TestLiteralZeros: a recipe's zeros are read as given, not as the recipe's defaults. With
// hard distillation and α 0 the distillation head gets a gradient of exactly zero (only
// CE(cls, y) is left), so its weight, which is decayed, moves only by the weight decay: not
// at all with WD 0, by the factor 1 − lr·wd with WD 0.1. Clip 0 leaves the gradient as it was;
// a clip below its norm scales it to the clip.
func TestLiteralZeros(t *testing.T) {
	b := synthetic(8, 1)
	for _, tc := range []struct {
		name     string
		wd, clip float64
	}{{"wd=0,clip=0", 0, 0}, {"wd=0.1,clip=0.5", 0.1, 0.5}} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(smallConfig, 1)
			if err != nil {
				t.Fatal(err)
			}
			c := shortRecipe(t, 8, 1, "hard")
			c.Epochs, c.WarmupFrac, c.LR, c.MinLR = 1, 0, 0.1, 0.1
			c.Loss.Alpha, c.WD, c.Clip = 0, tc.wd, tc.clip
			tr, err := NewTrainer(m, c)
			if err != nil {
				t.Fatal(err)
			}
			if got := tr.Config; got.WD != tc.wd || got.Clip != tc.clip || got.Loss.Alpha != 0 {
				t.Fatalf("the trainer's recipe has wd %g, clip %g, alpha %g; want %g, %g, 0", got.WD, got.Clip, got.Loss.Alpha, tc.wd, tc.clip)
			}
			w, _ := param(m, "head_dist.weight")
			before := append([]float32(nil), w.Data...)
			st, err := tr.TrainStep(b)
			if err != nil {
				t.Fatal(err)
			}
			if st.Loss.Total != st.Loss.CECls {
				t.Errorf("α 0: loss %g, want CE(cls, y) %g alone", st.Loss.Total, st.Loss.CECls)
			}
			decay := float32(1 - st.LR*tc.wd)
			for i := range before {
				if w.Data[i] != before[i]*decay {
					t.Fatalf("head_dist.weight[%d]: %g → %g, want ×%g (wd %g)", i, before[i], w.Data[i], decay, tc.wd)
				}
			}
			after := GradNorm(m) // the gradient the optimiser used
			if st.GradNorm <= 0.5 {
				t.Fatalf("gradient norm %g: the batch does not exercise clipping", st.GradNorm)
			}
			if tc.clip == 0 && after != st.GradNorm {
				t.Errorf("clip 0: gradient norm %g before the step, %g used", st.GradNorm, after)
			}
			if tc.clip > 0 && math.Abs(after-tc.clip) > 1e-4 {
				t.Errorf("clip %g: gradient norm %g used (before: %g)", tc.clip, after, st.GradNorm)
			}
		})
	}
}
