package traindata

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/internal/ordered"
	"github.com/deitkd/deitkd/store"
)

// Batch is one batch of rows. Its slices belong to the Set and are reused for a later batch
// once the callback that received it returns: copy what must outlive the call.
type Batch struct {
	Epoch int // -1 for evaluation
	Index int // batch number within the epoch, from 0
	// Images (B, C, S, S): each row's view rendered at the student's size S.
	Images []float32
	Labels []int // (B) ground truth in the store's class space
	// TeacherHard (B) is the teacher's argmax for the row's view; nil for an eval set
	// without a store.
	TeacherHard []int
	// TeacherProbs (B, K) is the teacher's softmax at Options.Tau for the row's view (via
	// store.Dense); nil unless Options.Probs.
	TeacherProbs []float32
	// Pixels (B, S, S, C), with Options.Pixels: each row's view as 8-bit pixels, its crop and
	// flip only (dataset.RenderPixels: Images before ToTensor and Normalize, when no
	// augmentation follows); nil otherwise.
	Pixels []uint8
	// Per row: the image's source index and id, the view rendered (dataset.Render of View
	// gives the row's pixels, before an augmented store's replayed Augment and Mix), and the
	// stored view whose teacher target the row carries:
	// View.Index for a stored view, 0 for a fixed-teacher row's fresh random view.
	ImageIndex []int
	ImageID    []string
	View       []dataset.View
	TargetView []int
	// With Options' train-time augmentations (fixed teacher), per row: Augment, what followed
	// the crop and flip (RenderAugmented of View and Augment gives the row's pixels before
	// mixing); with Options.Mix on, the row's Mix with row MixPartner (-1: not mixed) and the
	// mixed targets student.Batch takes: MixLambda (1 for an unmixed row), the partner's label
	// and teacher argmax. TeacherProbs are then already the λ-mix of the two rows'. nil when off.
	// From an augmented store (schema version 2) the same fields hold each stored row's replayed
	// Augment and Mix, its partner another stored view (MixPartner -1: not a row of the batch),
	// MixLabels its image's label (the row's own where the partner has none in the set), and
	// MixTeacherHard and TeacherProbs the row's own target: the teacher labelled the mixed pixels.
	Augment        []dataset.Augment
	Mix            []dataset.Mix
	MixPartner     []int
	MixLambda      []float32
	MixLabels      []int
	MixTeacherHard []int

	scratch, scratchProbs []float32 // the unmixed rows while mixing
}

// Len is the number of rows.
func (b *Batch) Len() int { return len(b.Labels) }

// ref is one row of an epoch's plan: an image of the set and, for a stored view, its row in
// Set.rows; for a fresh random view (fixed teacher) row is -1 and draw numbers the view.
type ref struct {
	img  int32
	row  int32
	draw int32
}

// plan returns the rows of a training epoch in order: the images in a seeded permutation,
// each followed by its ViewsPerImage views; with RepeatedAug, the first Len() of those rows.
func (s *Set) plan(epoch int) []ref {
	n := len(s.images)
	perm := make([]int32, n)
	for i := range perm {
		perm[i] = int32(i)
	}
	r := dataset.NewRNG(s.opts.Seed, uint64(epoch), 1<<62) // one stream for the order, none of the images'
	for i := n - 1; i > 0; i-- {
		j := r.Intn(i + 1)
		perm[i], perm[j] = perm[j], perm[i]
	}
	k := s.opts.ViewsPerImage
	rows := s.RowsPerEpoch()
	out := make([]ref, 0, n*k)
	pick := make([]int32, 0, 64)
	for _, im := range perm {
		if len(out) >= rows {
			break
		}
		e := s.images[im]
		if s.fixed {
			for d := range k {
				out = append(out, ref{img: im, row: -1, draw: int32(d)})
			}
			continue
		}
		// k distinct stored views: a partial Fisher–Yates over the image's rows, keyed by
		// (seed, epoch, image index) so each image's draw is independent of the order.
		pick = pick[:0]
		for v := range e.count {
			pick = append(pick, e.first+v)
		}
		vr := dataset.NewRNG(s.opts.Seed, uint64(epoch), uint64(e.src))
		for d := range min(k, len(pick)) {
			j := d + vr.Intn(len(pick)-d)
			pick[d], pick[j] = pick[j], pick[d]
			out = append(out, ref{img: im, row: pick[d]})
		}
	}
	return out[:min(len(out), rows)]
}

// evalPlan is every image's view 0, in source order.
func (s *Set) evalPlan() ([]ref, error) {
	out := make([]ref, len(s.images))
	for i, e := range s.images {
		out[i] = ref{img: int32(i), row: -1}
		if !s.stored {
			continue
		}
		if e.count == 0 || s.rows[e.first].view != 0 {
			return nil, fmt.Errorf("%w: %s has no view 0 in the label store", ErrEmpty, s.src.Item(int(e.src)).ID)
		}
		out[i].row = e.first
	}
	return out, nil
}

// Epoch streams the batches of training epoch epoch (from 0), starting at batch from (to
// continue a run interrupted mid-epoch), to fn in order on the calling goroutine. Workers
// render ahead; an error from fn, a worker or ctx stops the stream and is returned.
func (s *Set) Epoch(ctx context.Context, epoch, from int, fn func(*Batch) error) error {
	if s.eval {
		return fmt.Errorf("%w: Epoch needs a training set (Open), not an eval set", ErrOptions)
	}
	return s.stream(ctx, s.plan(epoch), epoch, from, fn)
}

// StoredRows is the number of stored rows of the set's images (0 without a store).
func (s *Set) StoredRows() int { return len(s.rows) }

// Rows streams the set's stored rows lo..hi-1 to fn in batches, in the order of the store's
// rows by (image_index, view) — its file order for a store one precompute wrote — counting
// only the rows of images the set uses (an image without a label is not). Each row is its
// stored view exactly, crop box and flip (and in an augmented store its replayed augmentation
// and mix: the pixels the teacher labelled), rendered at Size without train-time
// augmentation, with that view's teacher target; Batch.Epoch is -1.
func (s *Set) Rows(ctx context.Context, lo, hi int, fn func(*Batch) error) error {
	if lo < 0 || hi > len(s.rows) || lo >= hi {
		return fmt.Errorf("%w: rows %d..%d of a set with %d stored rows", ErrOptions, lo, hi-1, len(s.rows))
	}
	var p []ref
	for i, e := range s.images {
		for r := e.first; r < e.first+e.count; r++ {
			if int(r) >= lo && int(r) < hi {
				p = append(p, ref{img: int32(i), row: r})
			}
		}
	}
	return s.stream(ctx, p, -1, 0, fn)
}

// Eval streams the eval batches: view 0 of every image, in source order.
func (s *Set) Eval(ctx context.Context, fn func(*Batch) error) error {
	p, err := s.evalPlan()
	if err != nil {
		return err
	}
	return s.stream(ctx, p, -1, 0, fn)
}

// stream renders the batches of plan from batch from on with Workers goroutines and hands
// them to fn in order (ordered.Run). At most Workers+2 batches exist at once: a batch is
// taken from the free list when its job is made and put back after fn, so memory stays
// bounded and a slow consumer holds the workers back.
func (s *Set) stream(ctx context.Context, plan []ref, epoch, from int, fn func(*Batch) error) error {
	B := s.opts.Batch
	nb := (len(plan) + B - 1) / B
	if from >= nb {
		return nil
	}
	W := min(s.opts.Workers, nb-from)
	free := make(chan *Batch, W+2) // never blocks: at most W+2 batches are out (the window)
	for range W + 2 {
		free <- s.newBatch()
	}
	type job struct {
		i int
		b *Batch
	}
	return ordered.Run(ctx, W, W+2, func(_ context.Context, yield func(job) error) error {
		for i := from; i < nb; i++ {
			if err := yield(job{i, nil}); err != nil {
				return err
			}
		}
		return nil
	}, func(_ context.Context, j job) (*Batch, error) {
		b := <-free
		lo, hi := j.i*B, min((j.i+1)*B, len(plan))
		if err := s.fill(b, plan[lo:hi], epoch, j.i); err != nil {
			return nil, err
		}
		return b, nil
	}, func(_ context.Context, b *Batch) error {
		if err := fn(b); err != nil {
			return err
		}
		free <- b
		return nil
	})
}

func (s *Set) newBatch() *Batch {
	B, per := s.opts.Batch, dataset.TensorLen(s.opts.Channels, s.opts.Size)
	b := &Batch{
		Images:     make([]float32, B*per),
		Labels:     make([]int, B),
		ImageIndex: make([]int, B),
		ImageID:    make([]string, B),
		View:       make([]dataset.View, B),
		TargetView: make([]int, B),
	}
	if s.opts.Pixels {
		b.Pixels = make([]uint8, B*per)
	}
	if s.targets != nil {
		b.TeacherHard = make([]int, B)
		if s.opts.Probs {
			b.TeacherProbs = make([]float32, B*s.opts.Classes)
		}
	}
	if s.fixed && s.augmented() || s.replay {
		b.Augment = make([]dataset.Augment, B)
	}
	if s.fixed && s.opts.Augment.Mix.On() || s.replay && s.meta.Augment.Mix.On() {
		b.Mix, b.MixPartner, b.MixLambda, b.MixLabels = make([]dataset.Mix, B), make([]int, B), make([]float32, B), make([]int, B)
		if b.TeacherHard != nil {
			b.MixTeacherHard = make([]int, B)
		}
	}
	return b
}

// fill renders the rows refs into b.
func (s *Set) fill(b *Batch, refs []ref, epoch, index int) error {
	n, per, K := len(refs), dataset.TensorLen(s.opts.Channels, s.opts.Size), s.opts.Classes
	b.Epoch, b.Index = epoch, index
	b.Images = b.Images[:n*per]
	b.Labels, b.ImageIndex, b.ImageID, b.View, b.TargetView = b.Labels[:n], b.ImageIndex[:n], b.ImageID[:n], b.View[:n], b.TargetView[:n]
	if b.TeacherHard != nil {
		b.TeacherHard = b.TeacherHard[:n]
	}
	if b.TeacherProbs != nil {
		b.TeacherProbs = b.TeacherProbs[:n*K]
	}
	if b.Pixels != nil {
		b.Pixels = b.Pixels[:n*per]
	}
	mixing := epoch >= 0 && b.Mix != nil && s.fixed // train-time mixing; an augmented store's is replayed (replayMix)
	if b.Augment != nil {
		b.Augment = b.Augment[:n]
	}
	if b.Mix != nil {
		b.Mix, b.MixPartner, b.MixLambda, b.MixLabels = b.Mix[:n], b.MixPartner[:n], b.MixLambda[:n], b.MixLabels[:n]
		if b.MixTeacherHard != nil {
			b.MixTeacherHard = b.MixTeacherHard[:n]
		}
	}
	var keys [][2]int // each row's augmentation key (image index, view number)
	seed := dataset.MixKey(s.opts.Seed, uint64(epoch))
	for r, rf := range refs {
		e := s.images[rf.img]
		img, err := s.image(int(e.src))
		if err != nil {
			return err
		}
		id := s.src.Item(int(e.src)).ID
		var v dataset.View
		switch {
		case rf.row >= 0:
			sv := s.rows[rf.row]
			v = dataset.View{Index: int(sv.view), Box: sv.box, Flip: sv.flip}
		case epoch < 0: // eval without a store: view 0 as precompute computes it
			box, err := dataset.CenterBox(img.Width, img.Height, s.cfg)
			if err != nil {
				return fmt.Errorf("view 0 of %s: %w", id, err)
			}
			v = dataset.View{Index: 0, Box: box}
		default: // fixed teacher: a fresh random view of this epoch
			vc := s.vc
			vc.Seed = seed
			if v, err = dataset.RandomView(img.Width, img.Height, int(e.src), 1+int(rf.draw), vc); err != nil {
				return fmt.Errorf("random view of %s: %w", id, err)
			}
		}
		var aug dataset.Augment
		if b.Augment != nil && rf.row < 0 && epoch >= 0 {
			aug = s.opts.Augment.Draw(seed, int(e.src), 1+int(rf.draw), s.opts.Size)
			b.Augment[r] = aug
		}
		if s.replay && rf.row >= 0 {
			aug = s.rows[rf.row].aug
			b.Augment[r] = aug
		}
		if mixing {
			keys = append(keys, [2]int{int(e.src), 1 + int(rf.draw)})
		}
		if err := dataset.RenderAugmented(b.Images[r*per:(r+1)*per], img, v, aug, s.opts.Size, s.cfg); err != nil {
			return fmt.Errorf("render %s view %d: %w", id, v.Index, err)
		}
		if b.Pixels != nil {
			m, err := dataset.RenderPixels(img, v, s.opts.Size, s.cfg)
			if err != nil {
				return fmt.Errorf("render %s view %d: %w", id, v.Index, err)
			}
			copy(b.Pixels[r*per:(r+1)*per], m.Pix)
		}
		target := 0 // the view whose teacher target goes with the row
		if rf.row >= 0 {
			target = v.Index
		}
		if s.targets != nil {
			t, err := s.targets.LookupIndex(int64(e.src), target)
			if err != nil {
				return fmt.Errorf("teacher target of %s: %w", id, err)
			}
			b.TeacherHard[r] = int(t.Hard)
			if b.TeacherProbs != nil {
				store.Dense(t, s.opts.Tau, b.TeacherProbs[r*K:(r+1)*K])
			}
		}
		b.Labels[r], b.ImageIndex[r], b.ImageID[r], b.View[r], b.TargetView[r] = int(e.label), int(e.src), id, v, target
		if s.replay && b.Mix != nil {
			if err := s.replayMix(b, r, rf); err != nil {
				return fmt.Errorf("render %s view %d: %w", id, v.Index, err)
			}
		}
	}
	if mixing {
		s.mixRows(b, seed, keys)
	}
	return nil
}

// image returns source image i decoded, from the cache when it is there, turned upright for
// its EXIF orientation when the store's preprocessing records exif_transpose (as precompute
// decoded it).
func (s *Set) image(i int) (*dataset.Image, error) {
	if m := s.cache.get(i); m != nil {
		return m, nil
	}
	m, err := s.src.Load(i, s.opts.Channels)
	if err != nil {
		return nil, err
	}
	if s.meta.Preprocess.EXIFTranspose {
		m = dataset.Transpose(m, m.Orientation)
	}
	s.cache.put(i, m)
	return m, nil
}

// imageCache keeps decoded images while their pixels fit in a budget. Two workers that miss
// the same image both decode it; the first to store it wins. Images stay until the Set goes.
type imageCache struct {
	slots  []atomic.Pointer[dataset.Image]
	used   atomic.Int64
	budget int64
}

func newImageCache(n int, budget int64) *imageCache {
	return &imageCache{slots: make([]atomic.Pointer[dataset.Image], n), budget: budget}
}

func (c *imageCache) get(i int) *dataset.Image { return c.slots[i].Load() }

func (c *imageCache) put(i int, m *dataset.Image) {
	n := int64(len(m.Pix))
	if c.used.Add(n) > c.budget {
		c.used.Add(-n)
		return
	}
	if !c.slots[i].CompareAndSwap(nil, m) {
		c.used.Add(-n)
	}
}
