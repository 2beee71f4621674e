package student

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/deitkd/deitkd/dataset"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// lnEps is the LayerNorm epsilon of every norm, timm's DeiT
// (partial(nn.LayerNorm, eps=1e-6)).
const lnEps = 1e-6

// Batch is one batch of training or evaluation data, B = len(Labels).
type Batch struct {
	Images []float32 // (B, C, H, W), preprocessed
	Labels []int     // (B), ground truth in [0, K)
	// TeacherProbs (B, K) is the teacher's softmax at temperature τ (soft
	// distillation only; traindata fills it from the store).
	TeacherProbs []float32
	// TeacherHard (B) is the teacher's argmax (hard distillation only).
	TeacherHard []int
	// Mixed rows (Mixup/CutMix, timm's Mixup): MixLambda (B), when not nil, is each row's λ,
	// the weight of its own targets; 1−λ goes to its partner's, MixLabels (B) for the
	// ground-truth terms (the smoothed labels mixed as timm's mixup_target mixes them) and
	// MixTeacherHard (B) for hard distillation. TeacherProbs are given already mixed.
	MixLambda      []float32
	MixLabels      []int
	MixTeacherHard []int
}

func (b Batch) check(c Config) error {
	B := len(b.Labels)
	if B == 0 {
		return fmt.Errorf("%w: no labels", ErrBatch)
	}
	if want := B * c.Channels * c.ImageSize * c.ImageSize; len(b.Images) != want {
		return fmt.Errorf("%w: %d image values for %d labels, want %d", ErrBatch, len(b.Images), B, want)
	}
	for i, y := range b.Labels {
		if y < 0 || y >= c.Classes {
			return fmt.Errorf("%w: label %d of row %d outside [0, %d)", ErrBatch, y, i, c.Classes)
		}
	}
	return nil
}

func (b Batch) checkTargets(c LossConfig, K int) error {
	B := len(b.Labels)
	if b.MixLambda != nil {
		if len(b.MixLambda) != B || len(b.MixLabels) != B || c.Distill == "hard" && len(b.MixTeacherHard) != B {
			return fmt.Errorf("%w: mixed rows need %d λ, partner labels and (hard distillation) partner teacher labels", ErrBatch, B)
		}
		for i, l := range b.MixLambda {
			if !(l >= 0 && l <= 1) {
				return fmt.Errorf("%w: mix λ %v of row %d outside [0, 1]", ErrBatch, l, i)
			}
			if y := b.MixLabels[i]; y < 0 || y >= K {
				return fmt.Errorf("%w: partner label %d of row %d outside [0, %d)", ErrBatch, y, i, K)
			}
			if c.Distill == "hard" {
				if y := b.MixTeacherHard[i]; y < 0 || y >= K {
					return fmt.Errorf("%w: partner teacher label %d of row %d outside [0, %d)", ErrBatch, y, i, K)
				}
			}
		}
	}
	switch c.Distill {
	case "soft":
		if len(b.TeacherProbs) != B*K {
			return fmt.Errorf("%w: soft distillation needs %d teacher probabilities, got %d", ErrBatch, B*K, len(b.TeacherProbs))
		}
	case "hard":
		if len(b.TeacherHard) != B {
			return fmt.Errorf("%w: hard distillation needs %d teacher labels, got %d", ErrBatch, B, len(b.TeacherHard))
		}
		for i, y := range b.TeacherHard {
			if y < 0 || y >= K {
				return fmt.Errorf("%w: teacher label %d of row %d outside [0, %d)", ErrBatch, y, i, K)
			}
		}
	}
	return nil
}

// Param is one named parameter: timm's DeiT state-dict key, its shape,
// and views of its values and gradient in the model's flat buffers.
type Param struct {
	Name  string
	Shape []int
	Data  []float32
	Grad  []float32
	Decay bool // AdamW decays it: weights of linear layers and the patch projection
}

type paramSpec struct {
	name   string
	shape  []int
	off, n int
	decay  bool
}

// Model is a DeiT student: its config and its parameters in one flat
// buffer (llm.c), with the gradients in another of the same layout.
type Model struct {
	cfg    Config
	specs  []paramSpec
	index  map[string]int
	params []float32
	grads  []float32
	infer  map[int]*graph // forward-only graphs by batch size
	// What the model was trained on, for its checkpoints and exports (SetPreprocess);
	// nil when not recorded.
	pre        *dataset.Config
	classNames []string
}

// WeightInit is how a new model's parameters are drawn.
type WeightInit string

const (
	// InitTimm is timm's DeiT: trunc-normal(0.02) (cut at ±2) linear weights, tokens and
	// position embedding, zero linear biases, LayerNorm ones and zeros, and
	// PyTorch's default (uniform ±1/√fan_in) for the patch convolution.
	InitTimm WeightInit = "timm"
	// InitTorch is PyTorch's module defaults, what a plain PyTorch model of
	// the same layers starts from: every linear layer's weight and bias
	// uniform in ±1/√fan_in (nn.Linear's kaiming_uniform(a=√5)), the patch
	// convolution likewise, LayerNorm ones and zeros, and zero tokens and
	// position embedding. Its weights are about 3.6× timm's at D=64: a short
	// run learns much faster from it (issue 16's parity runs).
	InitTorch WeightInit = "torch"
)

// String is the init's name, as a flag takes it.
func (w WeightInit) String() string { return string(w) }

// Set parses a flag value: timm or torch.
func (w *WeightInit) Set(s string) error {
	if !WeightInit(s).known() {
		return fmt.Errorf("%q: want timm or torch", s)
	}
	*w = WeightInit(s)
	return nil
}

func (w WeightInit) known() bool { return w == InitTimm || w == InitTorch }

// New returns a model of architecture c initialised as timm's DeiT with
// the given seed (InitTimm).
func New(c Config, seed uint64) (*Model, error) { return NewInit(c, seed, InitTimm) }

// NewInit returns a model of architecture c with parameters drawn by init
// from the given seed ("" is InitTimm, the only init before there was a
// choice).
func NewInit(c Config, seed uint64, init WeightInit) (*Model, error) {
	if init == "" {
		init = InitTimm
	}
	if !init.known() {
		return nil, fmt.Errorf("%w: weight init %q (timm, torch)", ErrConfig, init)
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	m := &Model{cfg: c, index: map[string]int{}, infer: map[int]*graph{}}
	D, T, K, Hd, P := c.Dim, c.Tokens(), c.Classes, c.Hidden(), c.Patch
	add := func(name string, decay bool, shape ...int) {
		n := 1
		for _, s := range shape {
			n *= s
		}
		off := 0
		if len(m.specs) > 0 {
			l := m.specs[len(m.specs)-1]
			off = l.off + l.n
		}
		m.index[name] = len(m.specs)
		m.specs = append(m.specs, paramSpec{name, shape, off, n, decay})
	}
	add("cls_token", false, 1, 1, D)
	if !c.NoDistToken {
		add("dist_token", false, 1, 1, D)
	}
	add("pos_embed", false, 1, T, D)
	add("patch_embed.proj.weight", true, D, c.Channels, P, P)
	add("patch_embed.proj.bias", false, D)
	for i := 0; i < c.Depth; i++ {
		p := fmt.Sprintf("blocks.%d.", i)
		add(p+"norm1.weight", false, D)
		add(p+"norm1.bias", false, D)
		add(p+"attn.qkv.weight", true, 3*D, D)
		add(p+"attn.qkv.bias", false, 3*D)
		add(p+"attn.proj.weight", true, D, D)
		add(p+"attn.proj.bias", false, D)
		add(p+"norm2.weight", false, D)
		add(p+"norm2.bias", false, D)
		add(p+"mlp.fc1.weight", true, Hd, D)
		add(p+"mlp.fc1.bias", false, Hd)
		add(p+"mlp.fc2.weight", true, D, Hd)
		add(p+"mlp.fc2.bias", false, D)
	}
	add("norm.weight", false, D)
	add("norm.bias", false, D)
	add("head.weight", true, K, D)
	add("head.bias", false, K)
	if !c.NoDistToken {
		add("head_dist.weight", true, K, D)
		add("head_dist.bias", false, K)
	}
	l := m.specs[len(m.specs)-1]
	m.params = make([]float32, l.off+l.n)
	m.grads = make([]float32, l.off+l.n)

	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	truncNormal := func(x []float32, std float64) {
		for i := range x {
			// timm's trunc_normal_(std=0.02) truncates at ±2 absolute, not ±2σ: at this std
			// nothing is cut (an older New cut at ±2σ, 12% narrower than timm's).
			v := rng.NormFloat64() * std
			for math.Abs(v) > 2 {
				v = rng.NormFloat64() * std
			}
			x[i] = float32(v)
		}
	}
	uniform := func(x []float32, bound float64) {
		for i := range x {
			x[i] = float32((2*rng.Float64() - 1) * bound)
		}
	}
	// One pass in state-dict order, so that each init draws its stream in the same order.
	for _, p := range m.Params() {
		layer := strings.TrimSuffix(strings.TrimSuffix(p.Name, ".bias"), ".weight")
		switch {
		case layer == "norm" || strings.HasSuffix(layer, ".norm1") || strings.HasSuffix(layer, ".norm2"):
			if strings.HasSuffix(p.Name, ".weight") {
				for i := range p.Data {
					p.Data[i] = 1
				}
			} // LayerNorm biases: zeros
		case layer == "patch_embed.proj" || (init == InitTorch && layer != p.Name):
			// PyTorch's nn.Conv2d / nn.Linear default for weight and bias: ±1/√fan_in
			fanIn := 1
			for _, d := range m.specs[m.index[layer+".weight"]].shape[1:] {
				fanIn *= d
			}
			uniform(p.Data, 1/math.Sqrt(float64(fanIn)))
		case strings.HasSuffix(p.Name, ".bias"):
			// timm: zeros
		case init == InitTimm:
			truncNormal(p.Data, 0.02)
		} // InitTorch: tokens and position embedding stay zero
	}
	return m, nil
}

// Config returns the model's architecture.
func (m *Model) Config() Config { return m.cfg }

// Param is the parameter named name (timm's state-dict name).
func (m *Model) Param(name string) (Param, bool) {
	i, ok := m.index[name]
	if !ok {
		return Param{}, false
	}
	return m.Params()[i], true
}

// NumParams is the number of scalar parameters.
func (m *Model) NumParams() int { return len(m.params) }

// Params enumerates the parameters in timm's state-dict order.
func (m *Model) Params() []Param {
	out := make([]Param, len(m.specs))
	for i, s := range m.specs {
		out[i] = Param{Name: s.name, Shape: append([]int(nil), s.shape...),
			Data: m.params[s.off : s.off+s.n], Grad: m.grads[s.off : s.off+s.n], Decay: s.decay}
	}
	return out
}

// ------------------------------------------------------------------ graph

// graph is the model for one batch size as a compiled gorgonia program:
// forward only, or forward, loss and backward.
type graph struct {
	B         int
	g         *G.ExprGraph
	vm        G.VM
	x         []float32 // (B, C, H, W), bound to the input node
	cls, dist []float32 // (B, K) logits of the last run
	loss      *lossKernel
	residual  []*residualKernel // two per block, in order
	clock     int               // the plan position of the last op run (step.check)
	// floats is what the memory plan allocated for the ops' values, private what they
	// would take each with its own buffer.
	floats, private int
}

func (m *Model) node(g *G.ExprGraph, name string) *G.Node {
	s := m.specs[m.index[name]]
	v := tensor.New(tensor.WithShape(s.shape...), tensor.WithBacking(m.params[s.off:s.off+s.n]))
	return G.NewTensor(g, tensor.Float32, len(s.shape), G.WithShape(s.shape...), G.WithName(name), G.WithValue(v))
}

// build expresses the model as a gorgonia graph for batch size B. With a
// loss config it adds the loss and the gradients of every parameter,
// which land in m.grads after each run.
func (m *Model) build(B int, lc *LossConfig) (gr *graph, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: building the graph: %v", ErrInternal, r)
		}
	}()
	c := m.cfg
	D, H, K := c.Dim, c.Heads, c.Classes
	gr = &graph{B: B, g: G.NewGraph(), cls: make([]float32, B*K)}
	g := gr.g
	gr.x = make([]float32, B*c.Channels*c.ImageSize*c.ImageSize)
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(B, c.Channels, c.ImageSize, c.ImageSize), G.WithName("images"),
		G.WithValue(tensor.New(tensor.WithShape(B, c.Channels, c.ImageSize, c.ImageSize), tensor.WithBacking(gr.x))))
	var params G.Nodes
	p := func(name string) *G.Node {
		n := m.node(g, name)
		params = append(params, n)
		return n
	}
	must := func(n *G.Node, err error) *G.Node {
		if err != nil {
			panic(err)
		}
		return n
	}
	layerNorm := func(x *G.Node, prefix string) *G.Node {
		return must(apply(&lnKernel{eps: lnEps}, x, p(prefix+".weight"), p(prefix+".bias")))
	}
	linear := func(x *G.Node, prefix string) *G.Node {
		return must(apply(&linearKernel{}, x, p(prefix+".weight"), p(prefix+".bias")))
	}
	attention := func(x *G.Node, prefix string) *G.Node {
		qkv := linear(x, prefix+".qkv")                 // (B, T, 3D)
		y := must(apply(&attnKernel{C: D, NH: H}, qkv)) // (B, T, D)
		return linear(y, prefix+".proj")                // (B, T, D)
	}
	mlp := func(x *G.Node, prefix string) *G.Node {
		h := linear(x, prefix+".fc1") // (B, T, hidden)
		g := &geluKernel{}
		if lc != nil {
			g.grad = make([]float32, B*c.Tokens()*c.Hidden())
		}
		h = must(apply(g, h))           // (B, T, hidden)
		return linear(h, prefix+".fc2") // (B, T, D)
	}
	residual := func(x, f *G.Node) *G.Node {
		k := &residualKernel{}
		gr.residual = append(gr.residual, k)
		return must(apply(k, x, f))
	}
	block := func(x *G.Node, i int) *G.Node {
		pre := fmt.Sprintf("blocks.%d", i)
		x = residual(x, attention(layerNorm(x, pre+".norm1"), pre+".attn")) // (B, T, D)
		return residual(x, mlp(layerNorm(x, pre+".norm2"), pre+".mlp"))     // (B, T, D)
	}

	// model
	in := G.Nodes{x, p("patch_embed.proj.weight"), p("patch_embed.proj.bias"), p("cls_token")}
	if !c.NoDistToken {
		in = append(in, p("dist_token"))
	}
	in = append(in, p("pos_embed"))
	h := must(apply(&embedKernel{cfg: c}, in...)) // (B, T, D)
	for i := 0; i < c.Depth; i++ {
		h = block(h, i)
	}
	h = layerNorm(h, "norm")
	clsK := &headKernel{tok: 0, sink: gr.cls}
	outs := G.Nodes{must(apply(clsK, h, p("head.weight"), p("head.bias")))} // (B, K)
	if !c.NoDistToken {
		gr.dist = make([]float32, B*K)
		distK := &headKernel{tok: 1, sink: gr.dist}
		outs = append(outs, must(apply(distK, h, p("head_dist.weight"), p("head_dist.bias")))) // (B, K)
	}

	if lc != nil {
		gr.loss = &lossKernel{cfg: *lc}
		loss := must(apply(gr.loss, outs...))
		// Results are read from buffers the model owns (the sinks), never
		// from node values after a run: the tape machine may hand a dead
		// node's register to a later node, which then writes into it.
		grads, err := G.Grad(loss, params...)
		if err != nil {
			return nil, fmt.Errorf("%w: differentiating: %v", ErrInternal, err)
		}
		for i, gn := range grads {
			op, ok := gn.Op().(*gradOp)
			if !ok {
				return nil, fmt.Errorf("%w: gradient of %s is a %T, want a gradOp", ErrInternal, params[i].Name(), gn.Op())
			}
			s := m.specs[m.index[params[i].Name()]]
			op.sink = m.grads[s.off : s.off+s.n]
		}
	}
	if gr.floats, gr.private, err = planMemory(g, &gr.clock); err != nil {
		return nil, err
	}
	gr.vm = G.NewTapeMachine(g)
	return gr, nil
}

// run executes the graph once on images; gorgonia panics become errors.
func (gr *graph) run(images []float32) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: running the graph: %v", ErrInternal, r)
		}
	}()
	copy(gr.x, images)
	gr.clock = -1
	defer gr.vm.Reset()
	if err := gr.vm.RunAll(); err != nil {
		return fmt.Errorf("%w: running the graph: %v", ErrInternal, err)
	}
	return nil
}

func (m *Model) inferGraph(B int) (*graph, error) {
	if gr, ok := m.infer[B]; ok {
		return gr, nil
	}
	gr, err := m.build(B, nil)
	if err != nil {
		return nil, err
	}
	m.infer[B] = gr
	return gr, nil
}

// Infer runs the model on B images (B, C, H, W) without drop-path and
// returns the class-head and distillation-head logits, (B, K) each; dist
// is nil for a model without the distillation token. The slices are the
// caller's.
func (m *Model) Infer(images []float32, B int) (cls, dist []float32, err error) {
	c := m.cfg
	if B <= 0 || len(images) != B*c.Channels*c.ImageSize*c.ImageSize {
		return nil, nil, fmt.Errorf("%w: %d image values for batch %d", ErrBatch, len(images), B)
	}
	gr, err := m.inferGraph(B)
	if err != nil {
		return nil, nil, err
	}
	if err := gr.run(images); err != nil {
		return nil, nil, err
	}
	cls = append([]float32(nil), gr.cls...)
	if gr.dist != nil {
		dist = append([]float32(nil), gr.dist...)
	}
	return cls, dist, nil
}
