package student

import (
	"math"
	"testing"
)

// TestMixedLossMatchesTimm: the ground-truth term of mixed rows equals timm's
// SoftTargetCrossEntropy against mixup_target (smoothing 0.1, K = 10), computed by PyTorch in
// float64 from these float32 logits (scripts/augment_reference.py's soft_ce case, λ as
// float32); a row with λ = 1 is the plain smoothed CE; the gradient matches finite differences.
func TestMixedLossMatchesTimm(t *testing.T) {
	logits := []float32{1.1060649156570435, 0.4571016728878021, 1.9604846239089966, 3.1480770111083984, -4.474116802215576, -0.5811713933944702, 2.0593647956848145, -0.7725012898445129, 2.0627598762512207, 2.168443441390991, 0.43680620193481445, -1.1172555685043335, -0.6232037544250488, 2.6613571643829346, 0.08447184413671494, 0.800451934337616, 3.050705909729004, 0.43765294551849365, 0.6122991442680359, -1.105169653892517, 0.4910379648208618, -0.924822986125946, 1.397384762763977, 0.5342194437980652, 2.5837411880493164, -0.48485201597213745, 2.5484066009521484, 1.1302510499954224, 3.867424249649048, 1.9819551706314087}
	const torchLoss = 2.6856940078967853
	b := Batch{Labels: []int{3, 7, 0}, MixLabels: []int{7, 3, 0}, MixLambda: []float32{0.7316, 0.3, 1}}
	cfg := LossConfig{Smoothing: 0.1}
	grad := make([]float32, len(logits))
	p, err := Loss(logits, nil, b, cfg, grad, nil)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(p.Total-torchLoss) > 1e-12 {
		t.Errorf("loss %.17g, timm's %.17g", p.Total, torchLoss)
	}
	// Row 2 (λ = 1) alone is crossEntropy's plain smoothed CE.
	one := Batch{Labels: []int{0}, MixLabels: []int{5}, MixLambda: []float32{1}}
	plain := Batch{Labels: []int{0}}
	a, _ := Loss(logits[20:], nil, one, cfg, nil, nil)
	c, _ := Loss(logits[20:], nil, plain, cfg, nil, nil)
	if a.Total != c.Total {
		t.Errorf("λ 1: %v, plain CE %v", a.Total, c.Total)
	}
	for i := range logits {
		const h = 1e-3
		x := append([]float32(nil), logits...)
		x[i] += h
		up, _ := Loss(x, nil, b, cfg, nil, nil)
		x[i] -= 2 * h
		down, _ := Loss(x, nil, b, cfg, nil, nil)
		if fd := (up.Total - down.Total) / (2 * h); math.Abs(fd-float64(grad[i])) > 1e-4 {
			t.Errorf("d/dlogit %d: %v, finite difference %v", i, grad[i], fd)
		}
	}
	for _, bad := range []Batch{
		{Labels: []int{1}, MixLabels: []int{1}, MixLambda: []float32{1.5}},
		{Labels: []int{1}, MixLabels: []int{10}, MixLambda: []float32{0.5}},
		{Labels: []int{1}, MixLambda: []float32{0.5}},
	} {
		if _, err := Loss(logits[:10], nil, bad, cfg, nil, nil); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	hard := LossConfig{Distill: DistillHard, Alpha: 0.5}
	hb := Batch{Labels: []int{1}, TeacherHard: []int{2}, MixLabels: []int{3}, MixLambda: []float32{0.5}}
	if _, err := Loss(logits[:10], logits[10:20], hb, hard, nil, nil); err == nil {
		t.Error("hard distillation of a mixed row without the partner's teacher label accepted")
	}
	hb.MixTeacherHard = []int{4}
	got, err := Loss(logits[:10], logits[10:20], hb, hard, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The teacher term is the λ-mix of CE against the two teacher labels (no smoothing).
	lp := make([]float64, 10)
	logSoftmax(lp, logits[10:20], 1)
	if want := -(0.5*lp[2] + 0.5*lp[4]); math.Abs(got.CEDist-want) > 1e-12 {
		t.Errorf("mixed hard term %v, want %v", got.CEDist, want)
	}
}
