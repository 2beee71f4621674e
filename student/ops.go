package student

// The bridge between our kernels and gorgonia: every layer is a kernel with
// a forward and a per-input backward; kernelOp makes it a gorgonia.Op whose
// SymDiff returns one gradOp node per differentiable input, so gorgonia's
// Backpropagate builds the backward graph and sums gradients where a node
// feeds several consumers (the residual stream).

import (
	"encoding/binary"
	"fmt"
	"hash"
	"hash/fnv"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// kernel is one layer: forward writes every element of out; backward
// writes every element of din, the gradient with respect to input i.
type kernel interface {
	name() string
	// outShape is the output's shape given the inputs' shapes; nil
	// means a scalar.
	outShape(in []tensor.Shape) (tensor.Shape, error)
	forward(out []float32, in [][]float32)
	backward(i int, din []float32, in [][]float32, out, dout []float32)
	// diff says for each input whether it has a gradient.
	diff(n int) []bool
	// reads says which of the n forward inputs the backward for input i reads (it never
	// reads out): the memory plan reuses the others' buffers once the forward is done.
	reads(i, n int) []bool
}

var opSeq atomic.Uint64

// kernelOp is a kernel as a gorgonia op. It returns the same tensor every run, on a
// buffer the graph's memory plan gives it (plan.go), shared with nodes whose values are
// never live at the same time.
type kernelOp struct {
	k      kernel
	id     uint64
	inDims []int
	out    tensor.Shape // nil: scalar
	buf    []float32
	val    *tensor.Dense
	scalar G.F32 // the value of a scalar output
	args   args
	at     step // the op's place in the plan's order
}

// args are an op's input values as float32 slices, reused every run so that a step
// allocates nothing of ours.
type args struct {
	in      [][]float32
	scalars []float32 // the backing of scalar inputs, one element each
}

// apply adds k as a node with the given inputs.
func apply(k kernel, inputs ...*G.Node) (*G.Node, error) {
	shapes := make([]tensor.Shape, len(inputs))
	dims := make([]int, len(inputs))
	for i, n := range inputs {
		shapes[i] = n.Shape()
		dims[i] = n.Dims()
	}
	s, err := k.outShape(shapes)
	if err != nil {
		return nil, fmt.Errorf("student: %s: %w", k.name(), err)
	}
	op := &kernelOp{k: k, id: opSeq.Add(1), inDims: dims, out: s}
	n, err := G.ApplyOp(op, inputs...)
	if err != nil {
		return nil, fmt.Errorf("student: apply %s: %w", k.name(), err)
	}
	return n, nil
}

func tensorType(dims int) hm.Type {
	if dims == 0 {
		return tensor.Float32
	}
	return G.TensorType{Dims: dims, Of: tensor.Float32}
}

func fnType(in []int, out int) hm.Type {
	ts := make([]hm.Type, 0, len(in)+1)
	for _, d := range in {
		ts = append(ts, tensorType(d))
	}
	ts = append(ts, tensorType(out))
	return hm.NewFnType(ts...)
}

func (op *kernelOp) Arity() int    { return len(op.inDims) }
func (op *kernelOp) Type() hm.Type { return fnType(op.inDims, len(op.out)) }
func (op *kernelOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	if op.out == nil {
		return tensor.ScalarShape(), nil
	}
	return op.out.Clone(), nil
}
func (op *kernelOp) ReturnsPtr() bool      { return false }
func (op *kernelOp) CallsExtern() bool     { return false }
func (op *kernelOp) OverwritesInput() int  { return -1 }
func (op *kernelOp) WriteHash(h hash.Hash) { writeHash(h, op.k.name(), op.id) }
func (op *kernelOp) Hashcode() uint32      { return hashOf(op) }
func (op *kernelOp) String() string        { return fmt.Sprintf("%s#%d", op.k.name(), op.id) }

func (op *kernelOp) Do(vals ...G.Value) (G.Value, error) {
	if err := op.at.check(); err != nil {
		return nil, fmt.Errorf("student: %s: %w", op.k.name(), err)
	}
	in, err := op.args.floats(vals)
	if err != nil {
		return nil, fmt.Errorf("student: %s: %w", op.k.name(), err)
	}
	if op.out == nil {
		var r [1]float32
		op.k.forward(r[:], in)
		op.scalar = G.F32(r[0])
		return &op.scalar, nil
	}
	op.k.forward(op.buf, in)
	return op.val, nil
}

func (op *kernelOp) DiffWRT(n int) []bool { return op.k.diff(n) }

func (op *kernelOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	d := op.k.diff(len(inputs))
	grads := make(G.Nodes, len(inputs))
	for i := range inputs {
		if !d[i] {
			continue
		}
		g := &gradOp{fwd: op, i: i, id: opSeq.Add(1), shape: inputs[i].Shape().Clone()}
		args := append(append(G.Nodes{}, inputs...), output, grad)
		n, err := G.ApplyOp(g, args...)
		if err != nil {
			return nil, fmt.Errorf("student: %s backward: %w", op.k.name(), err)
		}
		grads[i] = n
	}
	return grads, nil
}

// gradOp computes the gradient of a kernelOp's output with respect to its
// input i. Inputs: the forward inputs, the forward output, its gradient.
type gradOp struct {
	fwd   *kernelOp
	i     int
	id    uint64
	shape tensor.Shape
	buf   []float32
	val   *tensor.Dense
	// sink, when set, is where the result goes (a parameter's gradient in the model's
	// flat buffer): the plan makes it the op's buffer.
	sink []float32
	args args
	at   step
}

func (g *gradOp) Arity() int { return len(g.fwd.inDims) + 2 }
func (g *gradOp) Type() hm.Type {
	in := append(append([]int{}, g.fwd.inDims...), len(g.fwd.out), len(g.fwd.out))
	return fnType(in, g.fwd.inDims[g.i])
}
func (g *gradOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return g.shape.Clone(), nil }
func (g *gradOp) ReturnsPtr() bool                               { return false }
func (g *gradOp) CallsExtern() bool                              { return false }
func (g *gradOp) OverwritesInput() int                           { return -1 }
func (g *gradOp) WriteHash(h hash.Hash)                          { writeHash(h, "d"+g.fwd.k.name(), g.id) }
func (g *gradOp) Hashcode() uint32                               { return hashOf(g) }
func (g *gradOp) String() string {
	return fmt.Sprintf("d%s#%d/d%d", g.fwd.k.name(), g.fwd.id, g.i)
}

func (g *gradOp) Do(vals ...G.Value) (G.Value, error) {
	if err := g.at.check(); err != nil {
		return nil, fmt.Errorf("student: %s backward: %w", g.fwd.k.name(), err)
	}
	all, err := g.args.floats(vals)
	if err != nil {
		return nil, fmt.Errorf("student: %s backward: %w", g.fwd.k.name(), err)
	}
	n := len(g.fwd.inDims)
	g.fwd.k.backward(g.i, g.buf, all[:n], all[n], all[n+1])
	return g.val, nil
}

func writeHash(h hash.Hash, name string, id uint64) {
	h.Write([]byte(name))
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], id)
	h.Write(b[:])
}

func hashOf(op interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// floats returns the float32 data of each value; a scalar becomes a
// one-element slice. The slices are a's, valid until the next call.
func (a *args) floats(vals []G.Value) ([][]float32, error) {
	if len(a.in) != len(vals) {
		a.in, a.scalars = make([][]float32, len(vals)), make([]float32, len(vals))
	}
	for i, v := range vals {
		switch v := v.(type) {
		case *G.F32:
			a.scalars[i] = float32(*v)
			a.in[i] = a.scalars[i : i+1]
		case *tensor.Dense:
			if v.Dtype() != tensor.Float32 {
				return nil, fmt.Errorf("input %d: want float32 data, got %v", i, v.Dtype())
			}
			a.in[i] = v.Float32s() // Data() would allocate (through reflect) every call
		case tensor.Tensor:
			d, ok := v.Data().([]float32)
			if !ok {
				return nil, fmt.Errorf("input %d: want float32 data, got %T", i, v.Data())
			}
			a.in[i] = d
		default:
			return nil, fmt.Errorf("input %d: unsupported value %T", i, v)
		}
	}
	return a.in, nil
}
