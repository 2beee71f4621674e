package precompute

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/internal/half"
	"github.com/deitkd/deitkd/internal/ordered"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
)

// chunk is a run of consecutive images to do, the unit the reader, the workers and the
// batcher hand each other: with 28-pixel images a hand-off per image (a channel send and often
// a goroutine wake-up, microseconds) would cost as much as the teacher's work on the image.
type chunk struct {
	seq   int // position among the chunks of this run: the order the writer needs
	items []*item
}

// item is one image on its way through the pipeline.
type item struct {
	index int // image index in the source
	id    string
	label int32 // teacher class of the ground truth, or store.NoLabel
	views []dataset.View
	augs  []dataset.Augment // per view, with Options.Augment; nil without
	mixes []*store.Mixing   // per view, its partner and mix (nil: not mixed); nil without
	pix   *[]float32        // views×C×S×S, from pipeline.images; nil once copied into a batch
	notes dataset.Note      // what PIL's conversion lost, as Decode reported it
	err   error             // a per-image failure (the image is logged and skipped, or ends the run)
	stage string            // where err happened: "read", "decode", "render", "partner"
}

// batch is whole images in order, with their views' pixels side by side for one teacher run.
type batch struct {
	items  []*item
	rows   int
	input  *[]float32 // rows×C×S×S used, from pipeline.batches
	logits []float32  // rows×K
}

// pipeline holds what the stages share.
type pipeline struct {
	j       *Job
	per     int // float32 values per view
	views   int
	rows    int       // largest batch in rows: max(Batch, Views)
	chunk   int       // images per chunk
	window  int       // chunks between the reader and the batcher
	images  sync.Pool // *[]float32 of views×per
	batches sync.Pool // *[]float32 of rows×per

	decodeNS, teacherNS, writeNS atomic.Int64
	decoded                      atomic.Int64 // images read, decoded and rendered (or failed there)

	// storeFailed is set by the writer goroutine when the store refused a row or a failure;
	// Run reads it after the group is done.
	storeFailed bool
}

// Summary is what a run did.
type Summary struct {
	Out         string
	Images      int   // images in the dataset
	Total       int64 // images this run set out to label
	Done        int64 // labelled now
	Failed      int64 // could not be labelled: logged to the failure log and skipped
	Present     int64 // already in the store from an earlier run
	OtherShards int64 // belong to another --shard
	BeyondLimit int64 // index ≥ --limit
	NotInSource int64 // not in the --views-from store (failed there, beyond its --limit or shards)
	Rows        int64 // rows written now
	Elapsed     time.Duration

	// Labelled counts this run's images with a ground-truth label; Correct those whose view-0
	// teacher_hard equals it.
	Labelled, Correct int64

	// This run's labelled images that PIL's conversion (and so this one, for parity) renders
	// unlike the picture: 16-bit grey clipped to 8 bits (dataset.Note16Bit), the picture only
	// in alpha (NoteAlphaOnly), an EXIF orientation (NoteEXIFRotated): not applied, unless
	// EXIFTransposed.
	Clipped16, AlphaOnly, EXIFRotated NoteCount
	EXIFTransposed                    bool // Options.EXIFTranspose: the orientations were applied

	// Busy time summed over goroutines: decoding and rendering (all workers), teacher runs,
	// store writes; Workers decoded and the teacher ran on Threads intra-op threads.
	DecodeTime, TeacherTime, WriteTime time.Duration
	Workers, Threads                   int

	Failures []store.Failure // the first MaxReportedFailures
	Manifest store.Manifest  // as the store was left
}

// NoteCount counts images with one dataset.Note and names the first.
type NoteCount struct {
	Images int64
	First  string // the first such image's ID
}

func (c *NoteCount) add(id string) {
	if c.Images == 0 {
		c.First = id
	}
	c.Images++
}

// countNotes adds an image's notes to the summary's counts.
func (s *Summary) countNotes(id string, n dataset.Note) {
	if n&dataset.Note16Bit != 0 {
		s.Clipped16.add(id)
	}
	if n&dataset.NoteAlphaOnly != 0 {
		s.AlphaOnly.add(id)
	}
	if n&dataset.NoteEXIFRotated != 0 {
		s.EXIFRotated.add(id)
	}
}

// MaxReportedFailures bounds Summary.Failures; the failure log has them all.
const MaxReportedFailures = 20

// ImagesPerSecond is this run's throughput over images labelled.
func (s Summary) ImagesPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Done) / s.Elapsed.Seconds()
}

// DecodeShare is the fraction of the pipeline's busy time spent decoding and rendering images
// (against teacher runs and store writes).
func (s Summary) DecodeShare() float64 {
	busy := s.DecodeTime + s.TeacherTime + s.WriteTime
	if busy <= 0 {
		return 0
	}
	return float64(s.DecodeTime) / float64(busy)
}

// Run labels every image of the job not yet in the store, then closes the store. It returns
// the summary and nil when every image was tried (some may have failed and been skipped:
// Summary.Failed), ErrInterrupted when ctx ended first, or the fatal error (with OnErrorFail,
// the first failed image). Whatever happens, every image finished before the end stays in
// the store.
func (j *Job) Run(ctx context.Context) (Summary, error) {
	if j.ran {
		return Summary{}, errors.New("precompute: Run called twice")
	}
	j.ran = true
	o := j.opts
	sum := j.plan()
	before := j.w.Manifest() // what earlier runs stored; this run's share is the growth
	p := j.newPipeline()
	start := time.Now()
	err := p.run(ctx, func(ctx context.Context, in <-chan *batch) error { return p.write(ctx, in, &sum, start) })

	// Close even after an error or a cancellation: the writer only ever wrote whole images,
	// so what it holds becomes one more finished shard and a rerun resumes after it.
	// After the store failed (a full disk), Close fails again finishing the same shard: the
	// first error says it all, and joining the second would print it twice.
	if cerr := j.w.Close(); cerr != nil && !p.storeFailed {
		err = errors.Join(err, cerr)
	}
	sum.Elapsed = time.Since(start)
	sum.DecodeTime = time.Duration(p.decodeNS.Load())
	sum.TeacherTime = time.Duration(p.teacherNS.Load())
	sum.WriteTime = time.Duration(p.writeNS.Load())
	sum.Manifest = j.w.Manifest()
	// Done and Rows count what is durably stored (listed in finished shards), not what was
	// handed to the writer: rows of a shard that could not be finished are lost and a rerun
	// labels them again.
	sum.Done = sum.Manifest.Images - before.Images
	sum.Rows = sum.Manifest.Rows - before.Rows
	o.Progress(Progress{Total: sum.Total, Done: sum.Done, Failed: sum.Failed, Rows: sum.Rows, Decoded: p.decoded.Load(),
		Elapsed: sum.Elapsed, Final: true})
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w after %d of %d images (every finished image is stored; rerun the same command to resume)",
			ErrInterrupted, sum.Done+sum.Failed, sum.Total)
	}
	return sum, err
}

// newPipeline sizes the pipeline's chunks, window and buffers from the options.
func (j *Job) newPipeline() *pipeline {
	o := j.opts
	p := &pipeline{j: j, per: dataset.TensorLen(j.cfg.Channels, j.cfg.Crop), views: o.Views, rows: max(o.Batch, o.Views)}
	batchImages := max(1, o.Batch/o.Views)
	window := o.Window
	if window == 0 {
		// Two batches of images, so workers fill the next batch while the teacher runs one,
		// and four per worker of slack for reordering behind a slow image (a large JPEG).
		window = 2*batchImages + 4*o.Workers
	}
	// A chunk is small enough that every worker has one while a batch fills (so all decode in
	// parallel), and no larger than 16 images, past which a hand-off costs nothing per image.
	p.chunk = max(1, min(16, batchImages/(2*o.Workers), window/(2*o.Workers)))
	p.window = max(1, window/p.chunk)
	p.images.New = func() any { b := make([]float32, p.views*p.per); return &b }
	p.batches.New = func() any { b := make([]float32, p.rows*p.per); return &b }
	return p
}

// run is the labelling pipeline: the reader, Workers decoders and the batcher as one ordered
// pool (ordered.Run: chunks read in order, decoded in parallel, packed into teacher batches
// in order), then the teacher (when the job has one: precompute --teacher-off runs the same
// pipeline without it), then sink, which takes every batch in order.
func (p *pipeline) run(ctx context.Context, sink func(ctx context.Context, in <-chan *batch) error) error {
	g, gctx := errgroup.WithContext(ctx)
	batches := make(chan *batch, 1)
	scored := make(chan *batch, 1)
	g.Go(func() error { return p.feed(gctx, batches) })
	g.Go(func() error { return p.teach(gctx, batches, scored) })
	g.Go(func() error { return sink(gctx, scored) })
	return g.Wait()
}

// plan counts what the run will do.
func (j *Job) plan() Summary {
	s := Summary{Out: j.opts.Out, Images: j.src.Len(), EXIFTransposed: j.opts.EXIFTranspose,
		Workers: j.opts.Workers, Threads: j.opts.Threads}
	n := j.limit()
	s.BeyondLimit = int64(j.src.Len() - n)
	for i := range n {
		switch {
		case !j.w.Owns(int64(i)):
			s.OtherShards++
		case j.from != nil && j.from.views[i] == nil:
			s.NotInSource++
		case j.w.Done().Contains(int64(i)):
			s.Present++
		default:
			s.Total++
		}
	}
	return s
}

func (j *Job) limit() int {
	if j.opts.Limit > 0 {
		return min(j.opts.Limit, j.src.Len())
	}
	return j.src.Len()
}

// read yields the images still to do, in index order and in chunks. Without a store (the
// teacher-off feed) that is every image below the limit.
func (p *pipeline) read(_ context.Context, yield func(*chunk) error) error {
	j := p.j
	c := &chunk{}
	emit := func() error {
		if err := yield(c); err != nil {
			return err
		}
		c = &chunk{seq: c.seq + 1}
		return nil
	}
	for i := range j.limit() {
		if j.w != nil && (!j.w.Owns(int64(i)) || j.w.Done().Contains(int64(i))) || (j.from != nil && j.from.views[i] == nil) {
			continue
		}
		c.items = append(c.items, &item{index: i})
		if len(c.items) == p.chunk {
			if err := emit(); err != nil {
				return err
			}
		}
	}
	if len(c.items) > 0 {
		return emit()
	}
	return nil
}

// decode loads each image of c once and renders all its views into one pooled buffer. A
// failure stays with the item: the writer decides what it does, in order.
func (p *pipeline) decode(ctx context.Context, c *chunk) (*chunk, error) {
	t0 := time.Now()
	for _, it := range c.items {
		if err := ctx.Err(); err != nil {
			return nil, err // the run is ending: decode nothing more
		}
		p.render(it, p.j)
		p.decoded.Add(1)
	}
	p.decodeNS.Add(int64(time.Since(t0)))
	return c, nil
}

func (p *pipeline) render(it *item, j *Job) {
	src := j.src.Item(it.index)
	it.id, it.label = src.ID, store.NoLabel
	if src.Label >= 0 {
		it.label = int32(src.Label)
		if j.labels != nil {
			it.label = j.labels[src.Label]
		}
	}
	img, err := dataset.LoadImage(j.src, it.index, j.cfg) // Load, or drafted with --jpeg-draft
	if err != nil {
		it.err, it.stage = err, "decode"
		var pe *fs.PathError
		if errors.As(err, &pe) {
			it.stage = "read"
		}
		return
	}
	it.notes = img.Notes
	buf := p.images.Get().(*[]float32)
	it.views = make([]dataset.View, p.views)
	for v := range p.views {
		var view dataset.View
		if j.from != nil {
			view = j.from.views[it.index][v] // the --views-from store's box and flip
		} else {
			view, err = dataset.ViewFor(img.Width, img.Height, it.index, v, j.cfg, j.vc)
		}
		dst := (*buf)[v*p.per : (v+1)*p.per]
		if err == nil && (v == 0 || !j.opts.Augment.On()) {
			err = dataset.Render(dst, img, view, j.cfg.Crop, j.cfg)
		} else if err == nil {
			var stage string
			if stage, err = p.renderAugmented(dst, it, img, view, v); err != nil {
				p.images.Put(buf)
				it.err, it.stage = err, stage
				return
			}
		}
		if err != nil {
			p.images.Put(buf)
			it.err, it.stage = fmt.Errorf("render %s view %d (%d×%d): %w", it.id, v, img.Width, img.Height, err), "render"
			return
		}
		it.views[v] = view
	}
	it.pix = buf
}

// renderAugmented renders random view v of it (image img, crop and flip view) with its
// augmentation drawn from (seed, image, v), and mixes in its partner when its Mix draw says
// so: the partner image and random view drawn from the same key (dataset.DrawPartner),
// rendered with their own crop, flip and augmentation (unmixed). It records both in it and
// returns the failing stage with an error.
func (p *pipeline) renderAugmented(dst []float32, it *item, img *dataset.Image, view dataset.View, v int) (string, error) {
	j := p.j
	ac, seed, size := j.opts.Augment, j.vc.Seed, j.cfg.Crop
	if it.augs == nil {
		it.augs, it.mixes = make([]dataset.Augment, p.views), make([]*store.Mixing, p.views)
	}
	a := ac.Draw(seed, it.index, v, size)
	it.augs[v] = a
	if err := dataset.RenderAugmented(dst, img, view, a, size, j.cfg); err != nil {
		return "render", fmt.Errorf("render %s view %d (%d×%d): %w", it.id, v, img.Width, img.Height, err)
	}
	m, ok := ac.Mix.Draw(seed, it.index, v, size)
	if !ok {
		return "", nil
	}
	pi, pv := dataset.DrawPartner(seed, it.index, v, j.src.Len(), p.views)
	pimg := img
	if pi != it.index {
		var err error
		if pimg, err = dataset.LoadImage(j.src, pi, j.cfg); err != nil {
			return "partner", fmt.Errorf("view %d's mix partner %s: %w", v, j.src.Item(pi).ID, err)
		}
	}
	pview, pa, err := dataset.DrawnView(pimg.Width, pimg.Height, pi, pv, j.cfg, j.vc, ac)
	partner := make([]float32, len(dst))
	if err == nil {
		err = dataset.RenderAugmented(partner, pimg, pview, pa, size, j.cfg)
	}
	if err != nil {
		return "partner", fmt.Errorf("view %d's mix partner %s view %d (%d×%d): %w", v, j.src.Item(pi).ID, pv, pimg.Width, pimg.Height, err)
	}
	m.Apply(dst, partner, j.cfg.Channels, size)
	it.mixes[v] = &store.Mixing{Index: int64(pi), View: int32(pv), Mix: m}
	return "", nil
}

// feed runs the reader, the decoders and the batcher (ordered.Run, which restores index
// order): it packs whole images into teacher batches, an image's pixel buffer going back to
// its pool as it is copied in, and sends each full batch on, then the last.
func (p *pipeline) feed(ctx context.Context, out chan<- *batch) error {
	defer close(out)
	cur := p.newBatch()
	send := func(ctx context.Context) error {
		select {
		case out <- cur:
		case <-ctx.Done():
			return ctx.Err()
		}
		cur = p.newBatch()
		return nil
	}
	err := ordered.Run(ctx, p.j.opts.Workers, p.window, p.read, p.decode, func(ctx context.Context, c *chunk) error {
		for _, x := range c.items {
			cur.items = append(cur.items, x)
			if x.err != nil {
				continue
			}
			copy((*cur.input)[cur.rows*p.per:], *x.pix)
			p.images.Put(x.pix)
			x.pix = nil
			cur.rows += p.views
			if cur.rows+p.views > p.j.opts.Batch {
				if err := send(ctx); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(cur.items) > 0 {
		return send(ctx)
	}
	p.batches.Put(cur.input)
	return nil
}

func (p *pipeline) newBatch() *batch {
	return &batch{input: p.batches.Get().(*[]float32)}
}

// teach runs the teacher on each batch; without one (the teacher-off feed) it hands the
// batch on as it came.
func (p *pipeline) teach(ctx context.Context, in <-chan *batch, out chan<- *batch) error {
	defer close(out)
	for b := range in {
		if err := ctx.Err(); err != nil {
			return err
		}
		if b.rows > 0 && p.j.model != nil {
			t0 := time.Now()
			logits, err := p.j.model.Run((*b.input)[:b.rows*p.per], b.rows)
			p.teacherNS.Add(int64(time.Since(t0)))
			if err != nil {
				return fmt.Errorf("teacher on %s..%s: %w", b.items[0].id, b.items[len(b.items)-1].id, err)
			}
			b.logits = logits
		}
		p.batches.Put(b.input)
		b.input = nil
		select {
		case out <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// write appends each batch's rows to the store, image by image, and reports progress.
func (p *pipeline) write(ctx context.Context, in <-chan *batch, sum *Summary, start time.Time) error {
	j := p.j
	k := j.info.NumClasses
	progress := func() {
		j.opts.Progress(Progress{Total: sum.Total, Done: sum.Done, Failed: sum.Failed, Rows: sum.Rows,
			Decoded: p.decoded.Load(), Elapsed: time.Since(start)})
	}
	// A first report at once, and one a second whatever a batch takes (a batch of large
	// photos can take half a minute): the caller throttles what it shows.
	progress()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		var b *batch
		var ok bool
		select {
		case b, ok = <-in:
		case <-tick.C:
			progress()
			continue
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return nil
		}
		t0 := time.Now()
		r := 0
		for _, it := range b.items {
			if it.err != nil {
				if err := p.imageFailed(it, sum); err != nil {
					p.writeNS.Add(int64(time.Since(t0)))
					return err
				}
				continue
			}
			// A teacher output the store cannot hold is this image's failure, not the run's:
			// checked for every view before the first is written, so no image is half stored.
			if err := j.checkLogits(b.logits[r*k:(r+len(it.views))*k], k); err != nil {
				it.err, it.stage = fmt.Errorf("teacher output for %s: %w", it.id, err), "teacher"
				r += len(it.views)
				if err := p.imageFailed(it, sum); err != nil {
					p.writeNS.Add(int64(time.Since(t0)))
					return err
				}
				continue
			}
			for v, view := range it.views {
				logits := b.logits[r*k : (r+1)*k]
				row := store.Row{
					ImageIndex: int64(it.index), ImageID: it.id, Label: it.label, View: int32(v),
					Crop: [4]float32{view.Box.Top, view.Box.Left, view.Box.Height, view.Box.Width},
					Flip: view.Flip, Logits: logits,
				}
				if it.augs != nil {
					row.Augment, row.Mix = it.augs[v], it.mixes[v]
				}
				err := j.w.Write(row)
				if err != nil {
					p.storeFailed = true
					return err
				}
				if v == 0 && it.label != store.NoLabel {
					sum.Labelled++
					if argmax(logits) == it.label {
						sum.Correct++
					}
				}
				r++
			}
			sum.Done++
			sum.Rows += int64(len(it.views))
			sum.countNotes(it.id, it.notes)
		}
		p.writeNS.Add(int64(time.Since(t0)))
		progress()
	}
}

// checkLogits refuses teacher logits (views × k) the store cannot hold: a NaN or ±Inf, or in
// a float16 store a magnitude that would round to ±Inf. The error names view and class.
func (j *Job) checkLogits(logits []float32, k int) error {
	f16 := j.meta.Store.DType == schema.Float16
	for i, v := range logits {
		switch {
		case v-v != 0: // NaN or ±Inf
			return fmt.Errorf("view %d: teacher returned %v for class %d", i/k, v, i%k)
		case f16 && !fitsFloat16(v):
			return fmt.Errorf("view %d: teacher returned %v for class %d, outside float16's range (a float32 store holds it)", i/k, v, i%k)
		}
	}
	return nil
}

// fitsFloat16 is the store's own test of a float16 value (half.FromFloat32, which the
// writer converts with), so the two never disagree on where float16's range ends.
func fitsFloat16(v float32) bool {
	_, ok := half.FromFloat32(v)
	return ok
}

// imageFailed is the one place a per-image failure is decided: it goes to the store's failure
// log, and then the image is skipped (OnErrorSkip) or the run ends naming it (OnErrorFail).
func (p *pipeline) imageFailed(it *item, sum *Summary) error {
	f := store.Failure{ImageIndex: int64(it.index), ImageID: it.id, Stage: it.stage, Err: it.err.Error()}
	if err := p.j.w.Fail(f); err != nil {
		p.storeFailed = true
		return err
	}
	sum.Failed++
	if len(sum.Failures) < MaxReportedFailures {
		sum.Failures = append(sum.Failures, f)
	}
	if p.j.opts.OnError == OnErrorFail {
		return optionError(fmt.Errorf("image %d: %w (the run stops at a failed image)", it.index, it.err), "OnError")
	}
	return nil
}

// argmax is the first index of the largest value, as the store computes teacher_hard.
func argmax(v []float32) int32 {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return int32(best)
}
