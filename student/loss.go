package student

import (
	"fmt"
	"math"

	"gorgonia.org/tensor"
)

// LossConfig chooses the training loss. Alpha and Smoothing are read literally (0: no
// teacher term, no smoothing); Distill, Tau and KLNorm, whose zero is no valid value, have
// defaults. NewRecipe fills every field.
type LossConfig struct {
	// Distill is DistillNone (default), DistillSoft or DistillHard.
	//   none: CE(cls, y), averaged with CE(dist, y) when the model has a
	//         distillation head (both heads learn the labels).
	//   soft: (1-α)·CE(cls, y) + α·τ²·KL(softmax(t/τ) ‖ softmax(dist/τ)).
	//   hard: (1-α)·CE(cls, y) + α·CE(dist, teacher_hard).
	Distill Distill `json:"distill,omitempty"`
	// Alpha is α, the weight of the teacher term: 0 leaves only CE(cls, y) (NewRecipe: 0.5).
	Alpha float64 `json:"alpha"`
	// Tau is τ, the soft distillation temperature (default 1).
	Tau float64 `json:"tau,omitempty"`
	// Smoothing is the label smoothing of CE(·, y); never applied to the
	// teacher's term.
	Smoothing float64 `json:"smoothing"`
	// KLNorm: "batch" (default) sums the KL over classes and averages over
	// the batch, the paper's definition and timm's; "numel" divides the sum
	// by B·K as DeiT's code does (its losses.py), making the teacher term K
	// times weaker; offered for parity.
	KLNorm KLNorm `json:"kl_norm,omitempty"`
}

func (c LossConfig) withDefaults() LossConfig {
	if c.Distill == "" {
		c.Distill = "none"
	}
	if c.Tau == 0 {
		c.Tau = 1
	}
	if c.KLNorm == "" {
		c.KLNorm = "batch"
	}
	return c
}

func (c LossConfig) validate(dist bool) error {
	c = c.withDefaults()
	switch {
	case c.Distill != DistillNone && c.Distill != DistillSoft && c.Distill != DistillHard:
		return fmt.Errorf("%w: distill %q (none, soft, hard)", ErrConfig, c.Distill)
	case c.Distill != "none" && !dist:
		return fmt.Errorf("%w: distill %q needs the distillation token", ErrConfig, c.Distill)
	case c.Alpha < 0 || c.Alpha > 1:
		return fmt.Errorf("%w: alpha %g outside [0, 1]", ErrConfig, c.Alpha)
	case c.Tau <= 0:
		return fmt.Errorf("%w: tau %g", ErrConfig, c.Tau)
	case c.Smoothing < 0 || c.Smoothing >= 1:
		return fmt.Errorf("%w: smoothing %g outside [0, 1)", ErrConfig, c.Smoothing)
	case c.KLNorm != KLBatch && c.KLNorm != KLNumel:
		return fmt.Errorf("%w: kl_norm %q (batch, numel)", ErrConfig, c.KLNorm)
	}
	return nil
}

// LossParts are one batch's loss and its terms, each already averaged over
// the batch (unweighted).
type LossParts struct {
	Total  float64 `json:"loss"`
	CECls  float64 `json:"ce_cls"`            // CE(cls, y) with smoothing
	CEDist float64 `json:"ce_dist,omitempty"` // none: CE(dist, y); hard: CE(dist, teacher_hard)
	KL     float64 `json:"kl,omitempty"`      // soft: τ²·KL, normalised by KLNorm
}

// Loss computes the loss of logits against a batch's targets; it is the
// function the training graph's loss op runs. clsLogits and distLogits are
// (B, K); distLogits is nil for a model without the distillation token.
// dCls and dDist, when not nil, receive the gradients.
func Loss(clsLogits, distLogits []float32, b Batch, c LossConfig, dCls, dDist []float32) (LossParts, error) {
	c = c.withDefaults()
	if err := c.validate(distLogits != nil); err != nil {
		return LossParts{}, err
	}
	B := len(b.Labels)
	if B == 0 || len(clsLogits)%B != 0 {
		return LossParts{}, fmt.Errorf("%w: %d logits for %d labels", ErrBatch, len(clsLogits), B)
	}
	K := len(clsLogits) / B
	if err := b.checkTargets(c, K); err != nil {
		return LossParts{}, err
	}
	var p LossParts
	wCls := 1 - c.Alpha
	if c.Distill == "none" {
		wCls = 1
		if distLogits != nil {
			wCls = 0.5
		}
	}
	ce := func(grad, logits []float32, y, y2 []int, eps, w float64) float64 {
		return crossEntropy(grad, logits, y, y2, b.MixLambda, eps, w, B, K)
	}
	p.CECls = ce(dCls, clsLogits, b.Labels, b.MixLabels, c.Smoothing, wCls)
	p.Total = wCls * p.CECls
	switch c.Distill {
	case "none":
		if distLogits != nil {
			p.CEDist = ce(dDist, distLogits, b.Labels, b.MixLabels, c.Smoothing, 0.5)
			p.Total += 0.5 * p.CEDist
		}
	case "hard":
		p.CEDist = ce(dDist, distLogits, b.TeacherHard, b.MixTeacherHard, 0, c.Alpha)
		p.Total += c.Alpha * p.CEDist
	case "soft":
		norm := float64(B)
		if c.KLNorm == "numel" {
			norm = float64(B * K)
		}
		p.KL = softKL(dDist, distLogits, b.TeacherProbs, c.Tau, c.Alpha, norm, B, K)
		p.Total += c.Alpha * p.KL
	}
	return p, nil
}

// crossEntropy returns the batch mean of CE with label smoothing ε, (1-ε)·(-log p_y) + ε·mean_k(-log p_k)
// (PyTorch's label_smoothing), and writes w·∂/∂logits = w·(p - q)/B into grad when not nil.
// With lam (mixed rows, Mixup/CutMix), row b's target is λ_b·q(y_b) + (1−λ_b)·q(y2_b), q being
// the smoothed one-hot ε/K + (1−ε)·[k = y], timm's mixup_target (off ε/K, on 1−ε+ε/K); CE is
// linear in the target, so the loss is λ·CE(y) + (1−λ)·CE(y2). Without lam, λ is 1 (y2 unused),
// which computes exactly the unmixed values.
func crossEntropy(grad, logits []float32, y, y2 []int, lam []float32, eps, w float64, B, K int) float64 {
	var total float64
	lp := make([]float64, K)
	for b := 0; b < B; b++ {
		logSoftmax(lp, logits[b*K:(b+1)*K], 1)
		var mean float64
		for _, v := range lp {
			mean += v
		}
		mean /= float64(K)
		l, yb, y2b := 1.0, y[b], y[b]
		if lam != nil {
			l, y2b = float64(lam[b]), y2[b]
		}
		total += -(1-eps)*(l*lp[yb]+(1-l)*lp[y2b]) - eps*mean
		if grad != nil {
			g := grad[b*K : (b+1)*K]
			for k := range g {
				q := eps / float64(K)
				if k == yb {
					q += (1 - eps) * l
				}
				if k == y2b {
					q += (1 - eps) * (1 - l)
				}
				g[k] = float32(w * (math.Exp(lp[k]) - q) / float64(B))
			}
		}
	}
	return total / float64(B)
}

// softKL returns τ²·Σ_b Σ_k t·(log t − log softmax(dist/τ))/norm and
// writes w·∂/∂dist = w·τ·(softmax(dist/τ) − t)/norm into grad.
func softKL(grad, logits, t []float32, tau, w, norm float64, B, K int) float64 {
	var total float64
	lq := make([]float64, K)
	for b := 0; b < B; b++ {
		logSoftmax(lq, logits[b*K:(b+1)*K], tau)
		tb := t[b*K : (b+1)*K]
		for k, tk := range tb {
			if tk > 0 {
				total += float64(tk) * (math.Log(float64(tk)) - lq[k])
			}
			if grad != nil {
				grad[b*K+k] = float32(w * tau * (math.Exp(lq[k]) - float64(tk)) / norm)
			}
		}
	}
	return tau * tau * total / norm
}

// logSoftmax writes log softmax(x/tau) into out, in float64.
func logSoftmax(out []float64, x []float32, tau float64) {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, float64(v)/tau)
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v)/tau - mx)
	}
	lse := mx + math.Log(s)
	for i, v := range x {
		out[i] = float64(v)/tau - lse
	}
}

// lossKernel is Loss as the graph's last op: inputs cls (B, K) and, with
// the distillation token, dist (B, K) → scalar. The forward computes the
// gradients too; the backward scales them by the incoming gradient.
type lossKernel struct {
	cfg         LossConfig
	batch       Batch // set before every run
	B, K        int
	hasDist     bool
	dCls, dDist []float32
	parts       LossParts
	err         error
}

func (k *lossKernel) name() string { return "loss" }
func (k *lossKernel) diff(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}
func (k *lossKernel) reads(i, n int) []bool { return make([]bool, n) } // the kept dCls, dDist
func (k *lossKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	k.B, k.K = in[0][0], in[0][1]
	k.hasDist = len(in) == 2
	k.dCls = make([]float32, k.B*k.K)
	if k.hasDist {
		k.dDist = make([]float32, k.B*k.K)
	}
	return nil, nil
}
func (k *lossKernel) forward(out []float32, in [][]float32) {
	var dist []float32
	if k.hasDist {
		dist = in[1]
	}
	k.parts, k.err = Loss(in[0], dist, k.batch, k.cfg, k.dCls, k.dDist)
	out[0] = float32(k.parts.Total)
	if k.err != nil {
		out[0] = float32(math.NaN())
	}
}
func (k *lossKernel) backward(i int, din []float32, in [][]float32, out, dout []float32) {
	src := k.dCls
	if i == 1 {
		src = k.dDist
	}
	for j, g := range src {
		din[j] = g * dout[0]
	}
}
