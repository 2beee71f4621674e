package student

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// TrainConfig is the recipe of a run, read literally: a zero LR, MinLR, warm-up, WD, Clip
// or Loss.Alpha/Smoothing means none (a clip of 0 does not clip, a warm-up of 0 starts at
// the peak), and Epochs 0 trains no step. NewRecipe returns a named recipe with every field
// filled; a caller overrides the fields its user set. Only fields whose zero is no valid value
// have a default (Batch, and in Loss Distill, Tau and KLNorm).
type TrainConfig struct {
	Recipe        Recipe  `json:"recipe,omitempty"`
	Epochs        int     `json:"epochs"`
	StepsPerEpoch int     `json:"steps_per_epoch,omitempty"` // required: batches per epoch
	Batch         int     `json:"batch,omitempty"`           // rows per step; only NewRecipe's LR reads it
	LR            float64 `json:"lr"`
	MinLR         float64 `json:"min_lr"`
	WarmupFrac    float64 `json:"warmup_frac"`   // warm-up as a fraction of all steps
	WarmupEpochs  float64 `json:"warmup_epochs"` // or in epochs; wins when above 0
	WD            float64 `json:"wd"`
	Clip          float64 `json:"clip"` // global gradient norm; 0: no clipping
	// DropPath is the stochastic-depth rate of the last block; block i drops its branches
	// with probability DropPath·i/(Depth-1) (timm). 0: none.
	DropPath float64    `json:"drop_path"`
	Loss     LossConfig `json:"loss"`
	Seed     uint64     `json:"seed,omitempty"`
	// WeightInit is how the model's parameters are drawn from Seed ("": InitTimm, what a
	// run recorded before there was a choice).
	WeightInit WeightInit `json:"weight_init,omitempty"`
}

// NewRecipe returns the recipe name for steps of batch rows (0: 128) with every field
// filled, StepsPerEpoch aside. RecipeDefault ("" too) is tuned so that a run of a few epochs
// is strong: 5 epochs, lr 1e-3·batch/128, warm-up 3 % of all steps, wd 0.05, clip 1, min-lr
// 1e-5, no drop-path; RecipeDeiT is DeiT's ImageNet recipe: lr 5e-4·batch/512, 5 warm-up
// epochs, wd 0.05, min-lr 1e-5, label smoothing 0.1, drop-path 0.1, no clipping. The loss of
// all is DistillNone with α 0.5, τ 1 and KLBatch.
//
// RecipeFinetune continues a trained student (train --init), DeiT's fine-tuning at 384 scaled to
// our short runs. DeiT's README fine-tunes with --lr 5e-6 --weight-decay 1e-8 --epochs 30
// --min-lr 5e-6 at a total batch of 512 (main.py scales the rate by batch/512), leaving main.py's
// 5-epoch warm-up from 1e-6, drop-path 0.1 and smoothing 0.1 as in training: a hundredth of its
// training rate, held constant, no weight decay to speak of. Ours: the default recipe's training
// rate, 1e-3·batch/128, because our fine-tunes are 1–3 epochs, not 30, and a resolution change
// moves the patch embedding far: the 28-pixel demo student (85.70% fused) fine-tuned 1 epoch at
// 56 pixels over the 60,000 images reached 83.74% at 1e-4, 84.75% at 3e-4, 85.32% at 1e-3,
// 85.15% at 2e-3 and 84.79% at 3e-3 on the 10,000 test images (issue 19; README "Fine-tune at
// a higher resolution"; a 40-step probe on 5,000 images had favoured 1e-4, 81.58% against
// 80.28%); wd 1e-8 (DeiT's); a warm-up of 3% of the steps (the default recipe's: DeiT's is
// a sixth of its run, but here AdamW's moments start fresh on a network that already works, so
// a short one suffices); a cosine to 1e-6 (not DeiT's constant rate: a run of one epoch ends
// annealed); clip 1 and no drop-path or smoothing, as the default recipe that trained the
// student (DeiT: no drop-path change).
func NewRecipe(name Recipe, batch int) (TrainConfig, error) {
	if batch == 0 {
		batch = 128
	}
	c := TrainConfig{Epochs: 5, Batch: batch, WD: 0.05, MinLR: 1e-5, WeightInit: InitTimm,
		Loss: LossConfig{Distill: DistillNone, Alpha: 0.5, Tau: 1, KLNorm: KLBatch}}
	switch name {
	case "", RecipeDefault:
		c.Recipe = RecipeDefault
		c.WeightInit = InitTorch // a short run learns much faster from it (issue 16)
		c.LR = 1e-3 * float64(batch) / 128
		c.WarmupFrac = 0.03
		c.Clip = 1
	case RecipeFinetune:
		c.Recipe = RecipeFinetune
		// c.WeightInit stays InitTimm: only new heads are drawn, by Init, which draws New's.
		c.LR = 1e-3 * float64(batch) / 128
		c.MinLR = 1e-6
		c.WarmupFrac = 0.03
		c.WD = 1e-8
		c.Clip = 1
	case RecipeDeiT:
		c.Recipe = RecipeDeiT
		c.LR = 5e-4 * float64(batch) / 512
		c.WarmupEpochs = 5
		c.Loss.Smoothing = 0.1
		c.DropPath = 0.1
	default:
		return TrainConfig{}, fmt.Errorf("%w: recipe %q (default, deit, finetune)", ErrConfig, name)
	}
	return c, nil
}

// Validate reports the first field that cannot work; it changes nothing.
func (c TrainConfig) Validate() error {
	switch {
	case c.StepsPerEpoch <= 0:
		return fmt.Errorf("%w: steps_per_epoch %d", ErrConfig, c.StepsPerEpoch)
	case c.Epochs < 0:
		return fmt.Errorf("%w: epochs %d", ErrConfig, c.Epochs)
	case !(c.LR >= 0 && c.MinLR >= 0 && c.WD >= 0 && c.WarmupFrac >= 0 && c.WarmupEpochs >= 0 && c.Clip >= 0):
		return fmt.Errorf("%w: negative (or NaN) lr, min_lr, wd, warm-up or clip in %+v", ErrConfig, c)
	case !(c.DropPath >= 0 && c.DropPath < 1):
		return fmt.Errorf("%w: drop_path %g outside [0, 1)", ErrConfig, c.DropPath)
	}
	return nil
}

// Schedule is the recipe's learning-rate schedule over all steps.
func (c TrainConfig) Schedule() Schedule {
	total := c.Epochs * c.StepsPerEpoch
	warm := int(math.Round(c.WarmupFrac * float64(total)))
	if c.WarmupEpochs > 0 {
		warm = int(math.Round(c.WarmupEpochs * float64(c.StepsPerEpoch)))
	}
	return Schedule{LR: c.LR, MinLR: c.MinLR, WarmupSteps: min(warm, total), TotalSteps: total}
}

// Trainer owns a model's training state: optimiser moments, step and the
// random stream of drop-path.
type Trainer struct {
	Model  *Model
	Config TrainConfig
	Opt    *AdamW
	step   int
	pcg    *rand.PCG
	rng    *rand.Rand
	graphs map[int]*graph
}

// StepStats describe one training step.
type StepStats struct {
	Step     int       `json:"step"` // the step just taken, from 0
	LR       float64   `json:"lr"`
	GradNorm float64   `json:"grad_norm"` // before clipping
	Loss     LossParts `json:"loss"`
}

// NewTrainer prepares to train m with recipe c, read literally (see TrainConfig).
func NewTrainer(m *Model, c TrainConfig) (*Trainer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.Loss = c.Loss.withDefaults()
	if err := c.Loss.validate(!m.cfg.NoDistToken); err != nil {
		return nil, err
	}
	pcg := rand.NewPCG(c.Seed, 0xd00d)
	return &Trainer{Model: m, Config: c, Opt: NewAdamW(len(m.params)), pcg: pcg, rng: rand.New(pcg), graphs: map[int]*graph{}}, nil
}

// Steps is the number of steps taken.
func (t *Trainer) Steps() int { return t.step }

func (t *Trainer) graph(B int) (*graph, error) {
	if gr, ok := t.graphs[B]; ok {
		return gr, nil
	}
	lc := t.Config.Loss
	gr, err := t.Model.build(B, &lc)
	if err != nil {
		return nil, err
	}
	t.graphs[B] = gr
	return gr, nil
}

// dropPathMasks draws, per block branch and sample, 0 or 1/keep with keep
// = 1 − rate·i/(depth−1) for block i (timm: torch.linspace(0, rate, depth)).
func (t *Trainer) dropPathMasks(gr *graph) {
	rate, L := t.Config.DropPath, t.Model.cfg.Depth
	for j, k := range gr.residual {
		i := j / 2
		p := 0.0
		if L > 1 {
			p = rate * float64(i) / float64(L-1)
		}
		if p == 0 {
			k.mask = nil
			continue
		}
		if k.mask == nil {
			k.mask = make([]float32, gr.B)
		}
		keep := 1 - p
		for b := range k.mask {
			k.mask[b] = 0
			if t.rng.Float64() < keep {
				k.mask[b] = float32(1 / keep)
			}
		}
	}
}

// Gradients runs forward and backward on b (drop-path as configured), leaving the
// gradients in the model's Params, and returns the loss; it changes no
// parameter.
func (t *Trainer) Gradients(b Batch) (LossParts, error) {
	m := t.Model
	if err := b.check(m.cfg); err != nil {
		return LossParts{}, err
	}
	if err := b.checkTargets(t.Config.Loss, m.cfg.Classes); err != nil {
		return LossParts{}, err
	}
	gr, err := t.graph(len(b.Labels))
	if err != nil {
		return LossParts{}, err
	}
	t.dropPathMasks(gr)
	gr.loss.batch = b
	if err := gr.run(b.Images); err != nil {
		return LossParts{}, fmt.Errorf("step %d: %w", t.step, err)
	}
	if gr.loss.err != nil {
		return LossParts{}, fmt.Errorf("step %d: %w", t.step, gr.loss.err)
	}
	return gr.loss.parts, nil
}

// TrainStep takes one optimisation step on b: forward, loss, backward,
// clipping, AdamW at the scheduled learning rate. A NaN or Inf loss or
// gradient returns ErrNonFinite naming the step and leaves the parameters
// as they were.
func (t *Trainer) TrainStep(b Batch) (StepStats, error) {
	parts, err := t.Gradients(b)
	if err != nil {
		return StepStats{}, err
	}
	st := StepStats{Step: t.step, Loss: parts, LR: t.Config.Schedule().At(t.step)}
	if math.IsNaN(parts.Total) || math.IsInf(parts.Total, 0) {
		return st, fmt.Errorf("%w at step %d: %g", ErrNonFinite, t.step, parts.Total)
	}
	st.GradNorm = ClipGradNorm(t.Model, t.Config.Clip)
	if math.IsNaN(st.GradNorm) || math.IsInf(st.GradNorm, 0) {
		return st, fmt.Errorf("%w at step %d: gradient norm %g", ErrNonFinite, t.step, st.GradNorm)
	}
	t.Opt.Step(t.Model, st.LR, t.Config.WD)
	t.step++
	return st, nil
}

// ------------------------------------------------------------------- eval

// EvalCounts are correct predictions counted over batches; divide by N.
type EvalCounts struct {
	N                            int
	Top1Cls, Top1Dist, Top1Fused int
	Top5Cls, Top5Dist, Top5Fused int
}

// Add accumulates o into e.
func (e *EvalCounts) Add(o EvalCounts) {
	e.N += o.N
	e.Top1Cls += o.Top1Cls
	e.Top1Dist += o.Top1Dist
	e.Top1Fused += o.Top1Fused
	e.Top5Cls += o.Top5Cls
	e.Top5Dist += o.Top5Dist
	e.Top5Fused += o.Top5Fused
}

// Eval counts the correct class-head, distillation-head and fused
// predictions on b. fuse is FuseProbs ("" too: the mean of the two
// softmaxes, the paper) or FuseLogits (the mean of the logits, DeiT's and
// timm's code). Without a distillation token all three are the class head.
func (m *Model) Eval(b Batch, fuse Fuse) (EvalCounts, error) {
	if fuse != "" && fuse != FuseProbs && fuse != FuseLogits {
		return EvalCounts{}, fmt.Errorf("%w: fuse %q (probs, logits)", ErrConfig, fuse)
	}
	if err := b.check(m.cfg); err != nil {
		return EvalCounts{}, err
	}
	B, K := len(b.Labels), m.cfg.Classes
	cls, dist, err := m.Infer(b.Images, B)
	if err != nil {
		return EvalCounts{}, err
	}
	if dist == nil {
		dist = cls
	}
	fused := make([]float32, len(cls))
	lp := make([]float64, K)
	for i := range cls {
		fused[i] = (cls[i] + dist[i]) / 2
	}
	if fuse != FuseLogits {
		for r := 0; r < B; r++ {
			for j := range fused[r*K : (r+1)*K] {
				fused[r*K+j] = 0
			}
			for _, src := range [][]float32{cls, dist} {
				logSoftmax(lp, src[r*K:(r+1)*K], 1)
				for j, v := range lp {
					fused[r*K+j] += float32(math.Exp(v) / 2)
				}
			}
		}
	}
	e := EvalCounts{N: B}
	for r, y := range b.Labels {
		c1, c5 := rank(cls[r*K:(r+1)*K], y)
		d1, d5 := rank(dist[r*K:(r+1)*K], y)
		f1, f5 := rank(fused[r*K:(r+1)*K], y)
		e.Top1Cls += c1
		e.Top5Cls += c5
		e.Top1Dist += d1
		e.Top5Dist += d5
		e.Top1Fused += f1
		e.Top5Fused += f5
	}
	return e, nil
}

// rank reports whether y is the top-1 and among the top-5 scores.
func rank(s []float32, y int) (top1, top5 int) {
	higher := 0
	for j, v := range s {
		if v > s[y] || (v == s[y] && j < y) {
			higher++
		}
	}
	if higher == 0 {
		top1 = 1
	}
	if higher < 5 {
		top5 = 1
	}
	return
}

// Analyze returns the cosine similarity between the class and
// distillation token representations at the input of the first block
// (index 0) and after each block (1..Depth), averaged over all images of
// the given batches (each (B, C, H, W) with B = len/imageSize).
func (m *Model) Analyze(batches ...[]float32) ([]float64, error) {
	c := m.cfg
	if c.NoDistToken {
		return nil, fmt.Errorf("%w: the model has no distillation token", ErrConfig)
	}
	per := c.Channels * c.ImageSize * c.ImageSize
	D, T := c.Dim, c.Tokens()
	sums := make([]float64, c.Depth+1)
	n := 0
	for bi, imgs := range batches {
		if len(imgs) == 0 || len(imgs)%per != 0 {
			return nil, fmt.Errorf("%w: batch %d has %d values, not a multiple of %d", ErrBatch, bi, len(imgs), per)
		}
		B := len(imgs) / per
		gr, err := m.inferGraph(B)
		if err != nil {
			return nil, err
		}
		cos := func(layer int) func([]float32) {
			return func(h []float32) {
				for b := 0; b < B; b++ {
					sums[layer] += cosine(h[b*T*D:b*T*D+D], h[b*T*D+D:b*T*D+2*D])
				}
			}
		}
		// the residual stream entering block 0 is the first residual's
		// input x; after block i it is the output of its second residual.
		gr.residual[0].inputTap = cos(0)
		for i := 0; i < c.Depth; i++ {
			gr.residual[2*i+1].tap = cos(i + 1)
		}
		err = gr.run(imgs)
		for _, k := range gr.residual {
			k.tap, k.inputTap = nil, nil
		}
		if err != nil {
			return nil, err
		}
		n += B
	}
	for i := range sums {
		sums[i] /= float64(n)
	}
	return sums, nil
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}
