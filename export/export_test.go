package export

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/student"
)

// testModel is a student of architecture c whose parameters are drawn from seed with
// magnitudes larger than timm's init (as scripts/student_golden.py does), so attention is far
// from uniform, every norm weight and bias matters, and the logits spread over several units:
// a wrong transpose or a dropped bias then shows far above the tolerance.
func testModel(t testing.TB, c student.Config, seed uint64) *student.Model {
	t.Helper()
	m, err := student.New(c, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, p := range m.Params() {
		std, base := 0.15, 0.0
		switch {
		case strings.HasSuffix(p.Name, "norm1.weight") || strings.HasSuffix(p.Name, "norm2.weight") || p.Name == "norm.weight":
			std, base = 0.1, 1
		case strings.HasSuffix(p.Name, ".bias"):
			std = 0.05
		case strings.HasPrefix(p.Name, "patch_embed"):
			std = 0.3
		}
		for i := range p.Data {
			p.Data[i] = float32(base + std*rng.NormFloat64())
		}
	}
	return m
}

// testImages are n seeded standard-normal images for c, as a normalised batch looks.
func testImages(c student.Config, n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 11))
	x := make([]float32, n*c.Channels*c.ImageSize*c.ImageSize)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// fuse is student.Model.Eval's fusion of the two heads (B, K each), in float64 as there:
// the mean of the softmaxes, or of the logits. dist nil means a plain ViT (dist = cls).
func fuse(cls, dist []float32, K int, mode student.Fuse) []float32 {
	if dist == nil {
		dist = cls
	}
	out := make([]float32, len(cls))
	for r := 0; r < len(cls)/K; r++ {
		if mode == student.FuseLogits {
			for j := 0; j < K; j++ {
				out[r*K+j] = (cls[r*K+j] + dist[r*K+j]) / 2
			}
			continue
		}
		for _, src := range [][]float32{cls, dist} {
			row := src[r*K : (r+1)*K]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, float64(v))
			}
			s := 0.0
			for _, v := range row {
				s += math.Exp(float64(v) - mx)
			}
			for j, v := range row {
				out[r*K+j] += float32(math.Exp(float64(v)-mx) / s / 2)
			}
		}
	}
	return out
}

func maxAbsDiff(t testing.TB, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("lengths %d and %d", len(a), len(b))
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// spread is max |v|: the logits must be far from zero for a difference to mean anything.
func spread(x []float32) float64 {
	s := 0.0
	for _, v := range x {
		s = math.Max(s, math.Abs(float64(v)))
	}
	return s
}
