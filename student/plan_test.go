package student

import (
	"errors"
	"testing"
)

// TestMemoryPlanChangesNoBit: training steps (drop-path on, so the residuals' masks are
// used), inference and the token analysis give the same bits with shared buffers as with a
// buffer per value, and the shared plan of DeiT-tiny's shape takes under half the memory.
func TestMemoryPlanChangesNoBit(t *testing.T) {
	defer func() { sharing = true }()
	cfg := Config{}.WithDefaults()
	type result struct {
		params, cls, dist []float32
		stats             []StepStats
		cos               []float64
	}
	run := func(share bool) result {
		sharing = share
		m, err := New(cfg, 3)
		if err != nil {
			t.Fatal(err)
		}
		rc := shortRecipe(t, 16, 10, "hard")
		rc.DropPath = 0.2
		tr, err := NewTrainer(m, rc)
		if err != nil {
			t.Fatal(err)
		}
		var r result
		for i := range 3 {
			st, err := tr.TrainStep(benchBatch(cfg, 16, uint64(i)))
			if err != nil {
				t.Fatal(err)
			}
			r.stats = append(r.stats, st)
		}
		imgs := benchBatch(cfg, 5, 9).Images
		if r.cls, r.dist, err = m.Infer(imgs, 5); err != nil {
			t.Fatal(err)
		}
		if r.cos, err = m.Analyze(imgs); err != nil {
			t.Fatal(err)
		}
		r.params = m.params
		return r
	}
	shared, own := run(true), run(false)
	for i := range own.stats {
		if shared.stats[i] != own.stats[i] {
			t.Errorf("step %d: shared buffers %+v, own buffers %+v", i, shared.stats[i], own.stats[i])
		}
	}
	for _, c := range []struct {
		name      string
		got, want []float32
	}{{"parameter", shared.params, own.params}, {"cls logit", shared.cls, own.cls}, {"dist logit", shared.dist, own.dist}} {
		if i := sameBits(c.got, c.want); i >= 0 {
			t.Errorf("%s %d: shared buffers %g, own buffers %g", c.name, i, c.got[i], c.want[i])
		}
	}
	for i := range own.cos {
		if shared.cos[i] != own.cos[i] {
			t.Errorf("analysis layer %d: shared buffers %g, own buffers %g", i, shared.cos[i], own.cos[i])
		}
	}

	sharing = true
	s := benchShapes[1]
	m, err := New(s.cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(m, shortRecipe(t, s.batch, 10, "hard"))
	if err != nil {
		t.Fatal(err)
	}
	gr, err := tr.graph(s.batch)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: the plan allocates %d MiB for values of %d MiB", s.name, gr.floats>>18, gr.private>>18)
	if 2*gr.floats > gr.private {
		t.Errorf("%s: the plan allocates %d floats for values of %d", s.name, gr.floats, gr.private)
	}
}

// TestPlanOrder: an op run before one the plan puts before it is refused.
func TestPlanOrder(t *testing.T) {
	clock := -1
	first, second := step{pos: 3, clock: &clock}, step{pos: 7, clock: &clock}
	if err := first.check(); err != nil {
		t.Fatal(err)
	}
	if err := second.check(); err != nil {
		t.Fatal(err)
	}
	if err := first.check(); !errors.Is(err, errOrder) {
		t.Errorf("op 3 after op 7: %v, want errOrder", err)
	}
}
