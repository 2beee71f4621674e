package student

// The model's layers as kernels (see ops.go), in dependency order:
// LayerNorm → attention → MLP (linear, GELU) → block (residual with
// drop-path) → model (patch embedding with tokens, head). Each keeps what
// its backward needs from its forward of the same step.

import (
	"fmt"

	"gorgonia.org/tensor"
)

func lastDim(s tensor.Shape) (rows, cols int) {
	cols = s[len(s)-1]
	return s.TotalSize() / cols, cols
}

// ---------------------------------------------------------------- LayerNorm

// lnKernel: inputs x (…, C), weight (C), bias (C) → (…, C).
type lnKernel struct {
	eps        float32
	M, C       int
	mean, rstd []float32 // (M)
	// The backward makes every gradient in one pass (layernormBackward): the first of the
	// three backward calls after a forward makes the parameter gradients too, kept here for the
	// other two calls; fwd counts forwards, paramsOf is the forward they belong to.
	dweight, dbias []float32 // (C)
	fwd, paramsOf  uint64
}

func (k *lnKernel) name() string          { return "layernorm" }
func (k *lnKernel) diff(n int) []bool     { return []bool{true, true, true} }
func (k *lnKernel) reads(i, n int) []bool { return []bool{true, true, false} }
func (k *lnKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	k.M, k.C = lastDim(in[0])
	if in[1].TotalSize() != k.C || in[2].TotalSize() != k.C {
		return nil, fmt.Errorf("weight %v, bias %v for width %d", in[1], in[2], k.C)
	}
	k.mean, k.rstd = make([]float32, k.M), make([]float32, k.M)
	k.dweight, k.dbias = make([]float32, k.C), make([]float32, k.C)
	return in[0].Clone(), nil
}
func (k *lnKernel) forward(out []float32, in [][]float32) {
	layernormForward(out, k.mean, k.rstd, in[0], in[1], in[2], k.M, k.C, k.eps)
	k.fwd++
}
func (k *lnKernel) backward(i int, din []float32, in [][]float32, out, dout []float32) {
	done := k.paramsOf == k.fwd
	switch {
	case i == 0 && done:
		layernormBackward(din, nil, nil, dout, in[0], in[1], k.mean, k.rstd, k.M, k.C)
	case i == 0:
		layernormBackward(din, k.dweight, k.dbias, dout, in[0], in[1], k.mean, k.rstd, k.M, k.C)
	case !done:
		layernormBackward(nil, k.dweight, k.dbias, dout, in[0], in[1], k.mean, k.rstd, k.M, k.C)
	}
	k.paramsOf = k.fwd
	switch i {
	case 1:
		copy(din, k.dweight)
	case 2:
		copy(din, k.dbias)
	}
}

// ---------------------------------------------------------------- Attention

// attnKernel: qkv (B, T, 3C) → (B, T, C), multi-head scaled dot-product
// attention with the heads concatenated (timm's layout); the projection is
// a separate linear.
type attnKernel struct {
	B, T, C, NH int
	att         []float32 // (B, NH, T, T) softmax probabilities
}

func (k *attnKernel) name() string          { return "attention" }
func (k *attnKernel) diff(n int) []bool     { return []bool{true} }
func (k *attnKernel) reads(i, n int) []bool { return []bool{true} }
func (k *attnKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	s := in[0]
	if len(s) != 3 || s[2] != 3*k.C {
		return nil, fmt.Errorf("qkv shape %v, want (B, T, %d)", s, 3*k.C)
	}
	k.B, k.T = s[0], s[1]
	k.att = make([]float32, k.B*k.NH*k.T*k.T)
	return tensor.Shape{k.B, k.T, k.C}, nil
}
func (k *attnKernel) forward(out []float32, in [][]float32) {
	attentionForward(out, k.att, in[0], k.B, k.T, k.C, k.NH)
}
func (k *attnKernel) backward(i int, din []float32, in [][]float32, out, dout []float32) {
	attentionBackward(din, dout, in[0], k.att, k.B, k.T, k.C, k.NH)
}

// ---------------------------------------------------------------------- MLP

// linearKernel: x (…, IC), weight (OC, IC), bias (OC) → (…, OC).
type linearKernel struct{ M, IC, OC int }

func (k *linearKernel) name() string      { return "linear" }
func (k *linearKernel) diff(n int) []bool { return []bool{true, true, true} }

// reads: dx needs the weight, dW the input x, db neither.
func (k *linearKernel) reads(i, n int) []bool { return []bool{i == 1, i == 0, false} }
func (k *linearKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	k.M, k.IC = lastDim(in[0])
	if len(in[1]) != 2 || in[1][1] != k.IC || in[2].TotalSize() != in[1][0] {
		return nil, fmt.Errorf("x %v, weight %v, bias %v", in[0], in[1], in[2])
	}
	k.OC = in[1][0]
	s := in[0].Clone()
	s[len(s)-1] = k.OC
	return s, nil
}
func (k *linearKernel) forward(out []float32, in [][]float32) {
	matmulForward(out, in[0], in[1], in[2], k.M, k.IC, k.OC)
}
func (k *linearKernel) backward(i int, din []float32, in [][]float32, out, dout []float32) {
	switch i {
	case 0:
		matmulBackwardInput(din, dout, in[1], k.M, k.IC, k.OC)
	case 1:
		matmulBackwardWeight(din, dout, in[0], k.M, k.IC, k.OC)
	case 2:
		matmulBackwardBias(din, dout, k.M, k.OC)
	}
}

// geluKernel: exact (erf) GELU, any shape. In training graphs the
// forward also keeps the derivative, so the backward is one product.
type geluKernel struct {
	grad []float32 // GELU'(x); nil in forward-only graphs
}

func (k *geluKernel) name() string      { return "gelu" }
func (k *geluKernel) diff(n int) []bool { return []bool{true} }

// reads: with the kept derivative, not its input.
func (k *geluKernel) reads(i, n int) []bool { return []bool{k.grad == nil} }
func (k *geluKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return in[0].Clone(), nil
}
func (k *geluKernel) forward(out []float32, in [][]float32) {
	if k.grad == nil {
		geluForward(out, in[0], len(out))
		return
	}
	geluForwardGrad(out, k.grad, in[0], len(out))
}
func (k *geluKernel) backward(i int, din []float32, in [][]float32, out, dout []float32) {
	if k.grad == nil {
		geluBackward(din, in[0], dout, len(din))
		return
	}
	mul(din, dout, k.grad)
}

// -------------------------------------------------------------------- Block

// residualKernel: x (B, …), f (B, …) → x + mask[b]·f. mask is nil (no
// drop-path) or holds, per sample, 0 or 1/keep, drawn before every step
// (timm's drop_path, which scales the kept branches by 1/keep).
type residualKernel struct {
	B, per   int
	mask     []float32
	tap      func(out []float32) // when set, sees the output (Analyze)
	inputTap func(x []float32)   // when set, sees the input x (Analyze)
}

func (k *residualKernel) name() string          { return "residual" }
func (k *residualKernel) diff(n int) []bool     { return []bool{true, true} }
func (k *residualKernel) reads(i, n int) []bool { return []bool{false, false} }
func (k *residualKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if !in[0].Eq(in[1]) {
		return nil, fmt.Errorf("shapes %v and %v", in[0], in[1])
	}
	k.B = in[0][0]
	k.per = in[0].TotalSize() / k.B
	return in[0].Clone(), nil
}
func (k *residualKernel) forward(out []float32, in [][]float32) {
	x, f := in[0], in[1]
	if k.inputTap != nil {
		k.inputTap(x)
	}
	residual(out, x, f, k.mask, k.per)
	if k.tap != nil {
		k.tap(out)
	}
}
func (k *residualKernel) backward(i int, din []float32, in [][]float32, out, dout []float32) {
	if i == 0 || k.mask == nil {
		copy(din, dout)
		return
	}
	residual(din, nil, dout, k.mask, k.per)
}

// -------------------------------------------------------------------- Model

// embedKernel: the patch embedding and the tokens. Inputs: images (B, C,
// H, W), proj weight (D, C, P, P), proj bias (D), cls_token (1, 1, D),
// [dist_token (1, 1, D)], pos_embed (1, T, D) → (B, T, D) with rows
// [cls, dist, patch 0 … patch N-1] + pos_embed. The P×P stride-P
// convolution is a linear map of each flattened patch (im2col + sgemm).
type embedKernel struct {
	cfg      Config
	B, N, K  int       // K = C·P·P
	patches  []float32 // (B·N, K), kept for the weight gradient
	proj     []float32 // (B·N, D)
	dproj    []float32 // (B·N, D)
	nTok     int       // 2 with the dist token, else 1
	posInput int       // index of pos_embed among the inputs
}

func (k *embedKernel) name() string { return "embed" }
func (k *embedKernel) diff(n int) []bool {
	d := make([]bool, n)
	for i := 1; i < n; i++ {
		d[i] = true
	}
	return d
}

// reads: the weight gradient uses the patches kept from the forward, the others dout only.
func (k *embedKernel) reads(i, n int) []bool { return make([]bool, n) }
func (k *embedKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	c := k.cfg
	if len(in[0]) != 4 || in[0][1] != c.Channels || in[0][2] != c.ImageSize || in[0][3] != c.ImageSize {
		return nil, fmt.Errorf("images %v, want (B, %d, %d, %d)", in[0], c.Channels, c.ImageSize, c.ImageSize)
	}
	k.B, k.N, k.K = in[0][0], c.Patches(), c.Channels*c.Patch*c.Patch
	k.nTok = c.Tokens() - k.N
	k.posInput = len(in) - 1
	k.patches = make([]float32, k.B*k.N*k.K)
	k.proj = make([]float32, k.B*k.N*c.Dim)
	k.dproj = make([]float32, k.B*k.N*c.Dim)
	return tensor.Shape{k.B, c.Tokens(), c.Dim}, nil
}

// im2col: patches[b·N + i·S + j, c·P·P + u·P + v] = x[b, c, i·P+u, j·P+v],
// the order of a flattened (D, C, P, P) convolution weight.
func (k *embedKernel) im2col(x []float32) {
	c := k.cfg
	P, S, HW := c.Patch, c.ImageSize/c.Patch, c.ImageSize
	for b := 0; b < k.B; b++ {
		for i := 0; i < S; i++ {
			for j := 0; j < S; j++ {
				row := k.patches[(b*k.N+i*S+j)*k.K:]
				for ch := 0; ch < c.Channels; ch++ {
					for u := 0; u < P; u++ {
						src := x[((b*c.Channels+ch)*HW+i*P+u)*HW+j*P:]
						copy(row[(ch*P+u)*P:(ch*P+u)*P+P], src[:P])
					}
				}
			}
		}
	}
}

func (k *embedKernel) forward(out []float32, in [][]float32) {
	D, T := k.cfg.Dim, k.cfg.Tokens()
	k.im2col(in[0])
	matmulForward(k.proj, k.patches, in[1], in[2], k.B*k.N, k.K, D)
	pos := in[k.posInput]
	for b := 0; b < k.B; b++ {
		o := out[b*T*D : (b+1)*T*D]
		for t := 0; t < k.nTok; t++ { // cls, dist
			tok := in[3+t]
			for j := 0; j < D; j++ {
				o[t*D+j] = tok[j] + pos[t*D+j]
			}
		}
		for n := 0; n < k.N; n++ {
			t := k.nTok + n
			p := k.proj[(b*k.N+n)*D:]
			for j := 0; j < D; j++ {
				o[t*D+j] = p[j] + pos[t*D+j]
			}
		}
	}
}

func (k *embedKernel) backward(i int, din []float32, in [][]float32, out, dout []float32) {
	D, T := k.cfg.Dim, k.cfg.Tokens()
	switch {
	case i == 1 || i == 2: // proj weight, bias: gather the patch rows of dout
		for b := 0; b < k.B; b++ {
			copy(k.dproj[b*k.N*D:(b+1)*k.N*D], dout[(b*T+k.nTok)*D:(b+1)*T*D])
		}
		if i == 1 {
			matmulBackwardWeight(din, k.dproj, k.patches, k.B*k.N, k.K, D)
		} else {
			matmulBackwardBias(din, k.dproj, k.B*k.N, D)
		}
	case i == k.posInput: // pos_embed (1, T, D): Σ_b dout[b]
		clear(din)
		for b := 0; b < k.B; b++ {
			for j, g := range dout[b*T*D : (b+1)*T*D] {
				din[j] += g
			}
		}
	default: // token t = i-3: Σ_b dout[b, t]
		t := i - 3
		clear(din)
		for b := 0; b < k.B; b++ {
			for j, g := range dout[(b*T+t)*D : (b*T+t+1)*D] {
				din[j] += g
			}
		}
	}
}

// headKernel: h (B, T, D), weight (K, D), bias (K) → (B, K), a linear head
// on token tok; sink, when set, receives the logits.
type headKernel struct {
	tok        int
	B, T, D, K int
	x          []float32 // (B, D), the token's rows
	sink       []float32
}

func (k *headKernel) name() string      { return "head" }
func (k *headKernel) diff(n int) []bool { return []bool{true, true, true} }

// reads: dh needs the weight; dW uses the token rows kept in x.
func (k *headKernel) reads(i, n int) []bool { return []bool{false, i == 0, false} }
func (k *headKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if len(in[0]) != 3 || len(in[1]) != 2 || in[1][1] != in[0][2] {
		return nil, fmt.Errorf("h %v, weight %v", in[0], in[1])
	}
	k.B, k.T, k.D, k.K = in[0][0], in[0][1], in[0][2], in[1][0]
	k.x = make([]float32, k.B*k.D)
	return tensor.Shape{k.B, k.K}, nil
}
func (k *headKernel) forward(out []float32, in [][]float32) {
	for b := 0; b < k.B; b++ {
		copy(k.x[b*k.D:(b+1)*k.D], in[0][(b*k.T+k.tok)*k.D:])
	}
	matmulForward(out, k.x, in[1], in[2], k.B, k.D, k.K)
	if k.sink != nil {
		copy(k.sink, out)
	}
}
func (k *headKernel) backward(i int, din []float32, in [][]float32, out, dout []float32) {
	switch i {
	case 0:
		clear(din)
		for b := 0; b < k.B; b++ {
			row := din[(b*k.T+k.tok)*k.D : (b*k.T+k.tok+1)*k.D]
			matmulBackwardInput(row, dout[b*k.K:(b+1)*k.K], in[1], 1, k.D, k.K)
		}
	case 1:
		matmulBackwardWeight(din, dout, k.x, k.B, k.D, k.K)
	case 2:
		matmulBackwardBias(din, dout, k.B, k.K)
	}
}
