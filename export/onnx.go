package export

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/deitkd/deitkd/export/internal/onnxpb"
	"github.com/deitkd/deitkd/student"
)

// Opset is the ONNX operator set the graph uses. 17 is the first with LayerNormalization, so
// each norm is one node, as PyTorch exports it, instead of seven (ReduceMean, Sub, Pow, …)
// whose float32 rounding would differ from deitkd's kernel; ONNX Runtime has run opset 17
// since 1.13 (2022). GELU stays the Erf form (Gelu is opset 20), which ONNX Runtime fuses.
const Opset = 17

// irVersion is the ONNX IR version of opset 17 (ONNX 1.12's), the newest the generated
// types know.
const irVersion = 8

// Names of the graph's input and outputs.
const (
	InputName  = "input"       // N×C×H×W float32, normalised as the student's preprocessing
	FusedName  = "fused"       // N×K: the prediction, as Options.Fuse defines it
	ClsName    = "cls_logits"  // N×K: the class head's logits
	DistName   = "dist_logits" // N×K: the distillation head's logits (DeiT students only)
	batchParam = "N"           // the dynamic batch dimension
)

// ONNX writes m as an ONNX model (opset 17, dynamic batch) to w.
//
// The graph has one input, InputName: the N×C×H×W float32 batch normalised as the label
// store's preprocessing defines. Its outputs, each N×K float32 and in this order:
//   - FusedName: the prediction as opts.Fuse says, the mean of the two heads' softmaxes
//     (probabilities, not logits) or of their logits;
//   - ClsName: the class head's logits;
//   - DistName: the distillation head's logits.
//
// A plain ViT (Config.NoDistToken) has no DistName; its FusedName is the class head alone, as
// student.Model.Eval fuses it: softmax(cls) or cls. Initializers keep timm's names and shapes
// (linear weights are transposed inside the graph, which ONNX Runtime folds at load).
// Preprocessing and class names from opts go into metadata_props under schema.KeyPreprocess
// and schema.KeyClassNames, the keys schema.ModelMetadata reads, together with MetaConfig and MetaFuse.
func ONNX(w io.Writer, m *student.Model, opts Options) error {
	mp, err := buildONNX(m, opts)
	if err != nil {
		return err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(mp)
	if err != nil {
		return fmt.Errorf("export: encode ONNX model: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("export: write ONNX model: %w", err)
	}
	return nil
}

// graphBuilder appends nodes and initializers to one graph; each node gets a unique name
// and one output, named after what it computes.
type graphBuilder struct {
	g    *onnxpb.GraphProto
	seen map[string]bool
}

func (b *graphBuilder) unique(name string) string {
	n, i := name, 1
	for b.seen[n] {
		i++
		n = fmt.Sprintf("%s_%d", name, i)
	}
	b.seen[n] = true
	return n
}

// node adds op(inputs) with attrs and returns the name of its output.
func (b *graphBuilder) node(op, out string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	out = b.unique(out)
	b.g.Node = append(b.g.Node, &onnxpb.NodeProto{
		OpType: proto.String(op), Name: proto.String(out + "/" + op),
		Input: inputs, Output: []string{out}, Attribute: attrs,
	})
	return out
}

func (b *graphBuilder) floats(name string, shape []int, data []float32) string {
	name = b.unique(name)
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	b.g.Initializer = append(b.g.Initializer, &onnxpb.TensorProto{
		Name: proto.String(name), Dims: dims64(shape), RawData: raw,
		DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
	})
	return name
}

// scalar is a 0-D float32 constant.
func (b *graphBuilder) scalar(name string, v float32) string {
	return b.floats(name, nil, []float32{v})
}

// ints is an int64 constant of the given shape (nil: a scalar).
func (b *graphBuilder) ints(name string, shape []int, v ...int64) string {
	name = b.unique(name)
	b.g.Initializer = append(b.g.Initializer, &onnxpb.TensorProto{
		Name: proto.String(name), Dims: dims64(shape), Int64Data: v,
		DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)),
	})
	return name
}

func dims64(shape []int) []int64 {
	d := make([]int64, len(shape))
	for i, s := range shape {
		d[i] = int64(s)
	}
	return d
}

func attrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func attrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func attrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// tensorInfo declares a float32 graph input or output; a negative size is the batch.
func tensorInfo(name string, shape ...int) *onnxpb.ValueInfoProto {
	sp := &onnxpb.TensorShapeProto{}
	for _, s := range shape {
		d := &onnxpb.TensorShapeProto_Dimension{}
		if s < 0 {
			d.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: batchParam}
		} else {
			d.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(s)}
		}
		sp.Dim = append(sp.Dim, d)
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{
		Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Shape: sp}}}}
}

// lnEps is timm's DeiT LayerNorm epsilon (partial(nn.LayerNorm, eps=1e-6)), student's too.
const lnEps = 1e-6

// buildONNX expresses m's forward pass as an ONNX graph, in the order of timm's
// VisionTransformerDistilled.forward: patch embedding, tokens, position embedding, blocks,
// norm, heads.
func buildONNX(m *student.Model, opts Options) (*onnxpb.ModelProto, error) {
	c := m.Config()
	if err := opts.check(m); err != nil {
		return nil, err
	}
	md, err := opts.metadata(c)
	if err != nil {
		return nil, err
	}
	params := map[string]student.Param{}
	for _, p := range m.Params() {
		params[p.Name] = p
	}
	b := &graphBuilder{g: &onnxpb.GraphProto{Name: proto.String("deitkd_student")}, seen: map[string]bool{InputName: true}}
	// w adds a parameter as an initializer under its timm name, once.
	var missing error
	w := func(name string) string {
		p, ok := params[name]
		if !ok {
			missing = fmt.Errorf("export: model has no parameter %s", name)
			return name
		}
		if b.seen[name] {
			return name
		}
		return b.floats(name, p.Shape, p.Data)
	}
	D, H, P, K := c.Dim, c.Heads, c.Patch, c.Classes
	hs := D / H
	distilled := !c.NoDistToken

	linear := func(x, prefix string) string { // x (N, T, in) → (N, T, out)
		wt := b.node("Transpose", prefix+".weight_t", []string{w(prefix + ".weight")}, attrInts("perm", 1, 0))
		y := b.node("MatMul", prefix+".matmul", []string{x, wt})
		return b.node("Add", prefix, []string{y, w(prefix + ".bias")})
	}
	layerNorm := func(x, prefix string) string {
		return b.node("LayerNormalization", prefix, []string{x, w(prefix + ".weight"), w(prefix + ".bias")},
			attrInt("axis", -1), attrFloat("epsilon", lnEps))
	}
	one, half := b.scalar("one", 1), b.scalar("half", 0.5)
	sqrt2 := b.scalar("sqrt2", float32(math.Sqrt2))
	gelu := func(x, prefix string) string { // exact: ½·x·(1 + erf(x/√2)), PyTorch's export pattern
		e := b.node("Erf", prefix+".erf", []string{b.node("Div", prefix+".div", []string{x, sqrt2})})
		y := b.node("Mul", prefix+".mul", []string{x, b.node("Add", prefix+".add", []string{e, one})})
		return b.node("Mul", prefix, []string{y, half})
	}
	qkvShape := b.ints("qkv_shape", []int{5}, 0, 0, 3, int64(H), int64(hs))
	mergeShape := b.ints("merge_heads_shape", []int{3}, 0, 0, int64(D))
	idx := []string{b.ints("index0", nil, 0), b.ints("index1", nil, 1), b.ints("index2", nil, 2)}
	scale := b.scalar("attn_scale", float32(1/math.Sqrt(float64(hs))))
	attention := func(x, prefix string) string { // (N, T, D) → (N, T, D)
		qkv := linear(x, prefix+".qkv")                                                                        // (N, T, 3D)
		qkv = b.node("Reshape", prefix+".qkv_split", []string{qkv, qkvShape})                                  // (N, T, 3, H, hs)
		qkv = b.node("Transpose", prefix+".qkv_heads", []string{qkv}, attrInts("perm", 2, 0, 3, 1, 4))         // (3, N, H, T, hs)
		q := b.node("Gather", prefix+".q", []string{qkv, idx[0]}, attrInt("axis", 0))                          // (N, H, T, hs)
		k := b.node("Gather", prefix+".k", []string{qkv, idx[1]}, attrInt("axis", 0))                          // (N, H, T, hs)
		v := b.node("Gather", prefix+".v", []string{qkv, idx[2]}, attrInt("axis", 0))                          // (N, H, T, hs)
		kt := b.node("Transpose", prefix+".k_t", []string{k}, attrInts("perm", 0, 1, 3, 2))                    // (N, H, hs, T)
		s := b.node("Mul", prefix+".scores", []string{b.node("MatMul", prefix+".qk", []string{q, kt}), scale}) // (N, H, T, T)
		a := b.node("Softmax", prefix+".attn", []string{s}, attrInt("axis", -1))                               // (N, H, T, T)
		o := b.node("MatMul", prefix+".av", []string{a, v})                                                    // (N, H, T, hs)
		o = b.node("Transpose", prefix+".heads_t", []string{o}, attrInts("perm", 0, 2, 1, 3))                  // (N, T, H, hs)
		o = b.node("Reshape", prefix+".merged", []string{o, mergeShape})                                       // (N, T, D)
		return linear(o, prefix+".proj")                                                                       // (N, T, D)
	}
	mlp := func(x, prefix string) string { // (N, T, D) → (N, T, D)
		h := gelu(linear(x, prefix+".fc1"), prefix+".act") // (N, T, hidden)
		return linear(h, prefix+".fc2")
	}

	// patch embedding: a P×P stride-P convolution, then patches as tokens
	x := b.node("Conv", "patch_embed.proj", []string{InputName, w("patch_embed.proj.weight"), w("patch_embed.proj.bias")},
		attrInts("kernel_shape", int64(P), int64(P)), attrInts("strides", int64(P), int64(P))) // (N, D, S, S)
	x = b.node("Reshape", "patch_embed.flatten", []string{x, b.ints("flatten_shape", []int{3}, 0, int64(D), -1)}) // (N, D, Np)
	x = b.node("Transpose", "patch_embed", []string{x}, attrInts("perm", 0, 2, 1))                                // (N, Np, D)
	// class (and distillation) tokens, broadcast over the batch
	tok := w("cls_token") // (1, 1, D)
	if distilled {
		tok = b.node("Concat", "tokens", []string{tok, w("dist_token")}, attrInt("axis", 1)) // (1, 2, D)
	}
	batch := b.node("Shape", "batch", []string{InputName}, attrInt("start", 0), attrInt("end", 1))                   // (1) = [N]
	bshape := b.node("Concat", "tokens_shape", []string{batch, b.ints("ones2", []int{2}, 1, 1)}, attrInt("axis", 0)) // [N, 1, 1]
	tok = b.node("Expand", "tokens_batch", []string{tok, bshape})                                                    // (N, 1 or 2, D)
	x = b.node("Concat", "embed", []string{tok, x}, attrInt("axis", 1))                                              // (N, T, D)
	x = b.node("Add", "pos_embed_add", []string{x, w("pos_embed")})                                                  // (N, T, D)
	for i := 0; i < c.Depth; i++ {
		pre := fmt.Sprintf("blocks.%d", i)
		x = b.node("Add", pre+".res1", []string{x, attention(layerNorm(x, pre+".norm1"), pre+".attn")})
		x = b.node("Add", pre+".res2", []string{x, mlp(layerNorm(x, pre+".norm2"), pre+".mlp")})
	}
	x = layerNorm(x, "norm")                             // (N, T, D)
	head := func(out, prefix string, token int) string { // (N, T, D) → (N, K)
		t := b.node("Gather", prefix+".token", []string{x, idx[token]}, attrInt("axis", 1)) // (N, D)
		b.seen[out] = false                                                                 // the output keeps its exact name
		return b.node("Gemm", out, []string{t, w(prefix + ".weight"), w(prefix + ".bias")}, attrInt("transB", 1))
	}
	b.seen[FusedName], b.seen[ClsName], b.seen[DistName] = true, true, true // reserved for the outputs
	cls := head(ClsName, "head", 0)
	dist := ""
	if distilled {
		dist = head(DistName, "head_dist", 1)
	}
	b.seen[FusedName] = false
	switch {
	case !distilled && opts.Fuse == student.FuseProbs:
		b.node("Softmax", FusedName, []string{cls}, attrInt("axis", 1))
	case !distilled:
		b.node("Identity", FusedName, []string{cls})
	case opts.Fuse == student.FuseProbs:
		pc := b.node("Softmax", "cls_probs", []string{cls}, attrInt("axis", 1))
		pd := b.node("Softmax", "dist_probs", []string{dist}, attrInt("axis", 1))
		b.node("Mul", FusedName, []string{b.node("Add", "probs_sum", []string{pc, pd}), half})
	default:
		b.node("Mul", FusedName, []string{b.node("Add", "logits_sum", []string{cls, dist}), half})
	}
	if missing != nil {
		return nil, missing
	}

	b.g.Input = []*onnxpb.ValueInfoProto{tensorInfo(InputName, -1, c.Channels, c.ImageSize, c.ImageSize)}
	b.g.Output = []*onnxpb.ValueInfoProto{tensorInfo(FusedName, -1, K), tensorInfo(ClsName, -1, K)}
	if distilled {
		b.g.Output = append(b.g.Output, tensorInfo(DistName, -1, K))
	}
	mp := &onnxpb.ModelProto{
		IrVersion:       proto.Int64(irVersion),
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(Opset)}},
		ProducerName:    proto.String("deitkd"),
		ProducerVersion: proto.String(opts.Producer),
		DocString:       proto.String(docString(distilled, opts.Fuse)),
		Graph:           b.g,
	}
	for _, kv := range md {
		mp.MetadataProps = append(mp.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(kv[0]), Value: proto.String(kv[1])})
	}
	return mp, nil
}

func docString(distilled bool, fuse student.Fuse) string {
	what := fuseWord(fuse)
	if !distilled {
		return "deitkd student (plain ViT): input: normalised N×C×H×W float32; outputs: fused (" + what + " of the class head), cls_logits"
	}
	return "deitkd student (DeiT): input: normalised N×C×H×W float32; outputs: fused (mean of the heads' " + what + "), cls_logits, dist_logits"
}
