package student

// The memory plan of a graph: every value our ops make (a layer's output, the gradient of
// a layer's input) gets a buffer shared with values whose lifetimes do not overlap, as a
// compiler allocates registers. A value lives from the op that writes it to the last op
// that reads it; a backward reads only what its kernel's reads names (a linear's dx needs
// the weight, not x), so a forward output that no backward reads (fc1's output before the
// GELU that keeps its derivative, the residual branches) dies as soon as its consumers'
// forwards have run, and each activation's gradient as soon as the layer below has used
// it. Gorgonia sums the gradients of a value with several consumers with an add that
// overwrites its first operand in place: that value lives on through the sum.

import (
	"errors"
	"fmt"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// step is an op's place in the plan's execution order. The plan holds only if the tape
// machine runs the ops in that order (gorgonia compiles the same stable topological
// sort); check refuses a run that does not.
type step struct {
	pos   int
	clock *int // the position of the last op run, reset before every run
}

var errOrder = errors.New("ops run out of the memory plan's order")

func (s step) check() error {
	if s.clock == nil {
		return nil
	}
	if *s.clock >= s.pos {
		return fmt.Errorf("%w: op %d after %d", errOrder, s.pos, *s.clock)
	}
	*s.clock = s.pos
	return nil
}

// buffer is one value's memory need: size floats, written at def, last read at last.
type buffer struct {
	size, def, last int
	data            []float32
}

// sharing, when false, gives every value a buffer of its own (the tests' reference).
var sharing = true

// planMemory gives every op of g its output buffer and returns the floats allocated
// and the floats the values would take without sharing. clock is the graph's run clock.
func planMemory(g *G.ExprGraph, clock *int) (alloc, private int, err error) {
	order, err := G.Sort(g)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: sorting the graph: %v", ErrInternal, err)
	}
	slices.Reverse(order) // the tape machine's order (gorgonia's Compile)
	bufOf := map[*G.Node]*buffer{}
	var bufs []*buffer
	own := func(n *G.Node, t, size int) {
		b := &buffer{size: size, def: t, last: t}
		bufOf[n] = b
		bufs = append(bufs, b)
	}
	read := func(n *G.Node, t int) {
		if b := bufOf[n]; b != nil && t > b.last {
			b.last = t
		}
	}
	for t, n := range order {
		in := inputs(g, n)
		switch op := n.Op().(type) {
		case *kernelOp:
			op.at = step{pos: t, clock: clock}
			if op.out != nil {
				own(n, t, op.out.TotalSize())
			}
			for _, c := range in {
				read(c, t)
			}
		case *gradOp:
			op.at = step{pos: t, clock: clock}
			if op.sink == nil {
				own(n, t, op.shape.TotalSize())
			}
			nIn := len(op.fwd.inDims)
			r := op.fwd.k.reads(op.i, nIn)
			for j, c := range in {
				if j > nIn || (j < nIn && r[j]) { // j == nIn: the forward output, never read
					read(c, t)
				}
			}
		default:
			for _, c := range in {
				read(c, t)
			}
			if op != nil {
				if j := op.OverwritesInput(); j >= 0 && j < len(in) && bufOf[in[j]] != nil {
					bufOf[n] = bufOf[in[j]] // in place: the operand lives on as the result
				}
			}
		}
	}
	// Assign in order of definition: a buffer whose last read came before a value's
	// write is free for it (a value never shares with an input of the op writing it).
	var live, free []*buffer
	for _, b := range bufs {
		private += b.size
		if !sharing {
			b.data = make([]float32, b.size)
			alloc += b.size
			continue
		}
		live = slices.DeleteFunc(live, func(l *buffer) bool {
			if l.last < b.def {
				free = append(free, l)
				return true
			}
			return false
		})
		if i := slices.IndexFunc(free, func(f *buffer) bool { return f.size == b.size }); i >= 0 {
			b.data = free[i].data
			free = slices.Delete(free, i, i+1)
		} else {
			b.data = make([]float32, b.size)
			alloc += b.size
		}
		live = append(live, b)
	}
	for _, n := range order {
		switch op := n.Op().(type) {
		case *kernelOp:
			if b := bufOf[n]; b != nil {
				op.buf = b.data
				op.val = tensor.New(tensor.WithShape(op.out...), tensor.WithBacking(op.buf))
			}
		case *gradOp:
			op.buf = op.sink
			if b := bufOf[n]; b != nil {
				op.buf = b.data
			}
			op.val = tensor.New(tensor.WithShape(op.shape...), tensor.WithBacking(op.buf))
		}
	}
	return alloc, private, nil
}

// inputs are n's operands in order.
func inputs(g *G.ExprGraph, n *G.Node) []*G.Node {
	var in []*G.Node
	for it := g.From(n.ID()); it.Next(); {
		in = append(in, it.Node().(*G.Node))
	}
	return in
}
