package student

import (
	"math"
)

// AdamW is decoupled-weight-decay Adam (Loshchilov & Hutter) as
// torch.optim.AdamW: p ← p·(1 − lr·wd) − lr·m̂/(√v̂ + ε), the decay only on
// parameters whose Param.Decay is set (weights of linear layers and of the
// patch projection; never biases, norms, tokens or pos_embed, timm's
// groups). Moments are flat buffers in the model's parameter layout.
type AdamW struct {
	Beta1, Beta2, Eps float64 // 0.9, 0.999, 1e-8
	M, V              []float32
	T                 int // steps taken, for bias correction
}

// NewAdamW returns AdamW state for n parameters with torch's defaults.
func NewAdamW(n int) *AdamW {
	return &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, M: make([]float32, n), V: make([]float32, n)}
}

// Step updates every parameter of m from its gradient.
func (o *AdamW) Step(m *Model, lr, wd float64) {
	o.T++
	bc1 := 1 - math.Pow(o.Beta1, float64(o.T))
	bc2 := 1 - math.Pow(o.Beta2, float64(o.T))
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	stepSize := float32(lr / bc1)
	rbc2 := float32(1 / math.Sqrt(bc2))
	eps := float32(o.Eps)
	for _, s := range m.specs {
		p, g := m.params[s.off:s.off+s.n], m.grads[s.off:s.off+s.n]
		mm, vv := o.M[s.off:s.off+s.n], o.V[s.off:s.off+s.n]
		decay := float32(1)
		if s.decay {
			decay = float32(1 - lr*wd)
		}
		for i := range p {
			gi := g[i]
			mm[i] = b1*mm[i] + (1-b1)*gi
			vv[i] = b2*vv[i] + (1-b2)*gi*gi
			denom := float32(math.Sqrt(float64(vv[i])))*rbc2 + eps
			p[i] = p[i]*decay - stepSize*mm[i]/denom
		}
	}
}

// GradNorm is the global L2 norm of all gradients.
func GradNorm(m *Model) float64 {
	var s float64
	for _, g := range m.grads {
		s += float64(g) * float64(g)
	}
	return math.Sqrt(s)
}

// ClipGradNorm scales all gradients so that their global norm is at most
// maxNorm (torch.nn.utils.clip_grad_norm_: coefficient maxNorm/(norm+1e-6)
// when below 1) and returns the norm before clipping. maxNorm ≤ 0 only
// measures.
func ClipGradNorm(m *Model, maxNorm float64) float64 {
	n := GradNorm(m)
	if maxNorm > 0 {
		if c := maxNorm / (n + 1e-6); c < 1 {
			cf := float32(c)
			for i := range m.grads {
				m.grads[i] *= cf
			}
		}
	}
	return n
}

// Schedule is a linear warm-up to LR over WarmupSteps, then a cosine decay
// to MinLR at TotalSteps (nanoGPT's get_lr).
type Schedule struct {
	LR, MinLR   float64
	WarmupSteps int
	TotalSteps  int
}

// At is the learning rate of step (counted from 0).
func (s Schedule) At(step int) float64 {
	if step < s.WarmupSteps {
		return s.LR * float64(step+1) / float64(s.WarmupSteps)
	}
	if step >= s.TotalSteps {
		return s.MinLR
	}
	decay := float64(step-s.WarmupSteps) / float64(max(1, s.TotalSteps-s.WarmupSteps))
	return s.MinLR + 0.5*(s.LR-s.MinLR)*(1+math.Cos(math.Pi*decay))
}
