package student

import (
	"math"
	"testing"
)

// TestResamplePosEmbedGolden compares the resampled positional embedding with timm's
// resample_abs_pos_embed run by Debian's torch 1.13 (scripts/pos_embed_golden.py): upsampled,
// much upsampled, downsampled, with two prefix rows and with one.
func TestResamplePosEmbedGolden(t *testing.T) {
	gold := loadGoldenFile(t, "../testdata/golden/pos_embed_resample.bin", "scripts/pos_embed_golden.py")
	for _, name := range []string{"up4to7", "up14to24", "down7to4", "up4to7_cls"} {
		t.Run(name, func(t *testing.T) {
			in, out, pre := gold[name+"/in"], gold[name+"/out"], gold[name+"/prefix"]
			if len(in.shape) != 3 || len(out.shape) != 3 || len(pre.data) != 1 {
				t.Fatalf("golden records of %s missing", name)
			}
			prefix, D := int(pre.data[0]), in.shape[2]
			g := int(math.Round(math.Sqrt(float64(in.shape[1] - prefix))))
			G := int(math.Round(math.Sqrt(float64(out.shape[1] - prefix))))
			got := resamplePosEmbed(in.data, prefix, g, G, D)
			if len(got) != len(out.data) {
				t.Fatalf("%d values, want %d", len(got), len(out.data))
			}
			worst := 0.0
			for i := range got {
				if i < prefix*D && got[i] != in.data[i] {
					t.Fatalf("prefix value %d changed: %v, was %v", i, got[i], in.data[i])
				}
				worst = max(worst, math.Abs(float64(got[i])-float64(out.data[i])))
			}
			if worst > 1e-6 {
				t.Errorf("%d×%d→%d×%d: largest difference from torch %.3g, want ≤ 1e-6", g, g, G, G, worst)
			}
			t.Logf("%d×%d→%d×%d, D=%d, prefix %d: largest difference from torch %.3g", g, g, G, G, D, prefix, worst)
		})
	}
}

// TestAAWeightsSumToOne: every output position's weights are normalised (a constant grid stays
// constant), both ways.
func TestAAWeightsSumToOne(t *testing.T) {
	for _, c := range [][2]int{{4, 7}, {7, 4}, {14, 24}, {24, 14}, {3, 3}} {
		_, w := aaWeights(c[0], c[1])
		for i, ws := range w {
			var s float64
			for _, v := range ws {
				s += float64(v)
			}
			if math.Abs(s-1) > 1e-6 {
				t.Errorf("%d→%d: output %d weights sum to %v", c[0], c[1], i, s)
			}
		}
	}
}
