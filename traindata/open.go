package traindata

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
)

// Set is a source joined to a label store (or, for evaluation, a source alone): the images it
// uses, their stored views, and how to render them.
type Set struct {
	opts    Options
	src     dataset.Source
	meta    schema.Metadata // the store's, or for an eval set without a store the reference's
	stored  bool            // rows come from a store
	eval    bool            // an eval set: view 0 of each image, in order
	targets *store.Targets  // nil without a store
	cfg     dataset.Config  // render config, defaults applied
	images  []entry         // the images used, in source order
	rows    []storedView    // per image, its stored views sorted by view number
	fixed   bool            // single-view store: random views at train time
	replay  bool            // an augmented store (schema version 2): stored views replay their augmentation and mix
	vc      dataset.ViewConfig
	// labelOf is each image's label in the store's class space, by source index, for a
	// replayed mix's partner (-1: not an image of the set, no label known).
	labelOf map[int32]int32
	cache   *imageCache
}

// entry is one image of a set.
type entry struct {
	src   int32 // source index (= image_index)
	label int32 // ground truth in the store's class space
	first int32 // its first row in Set.rows
	count int32 // its stored rows
}

// storedView is one stored row's geometry and, in an augmented store, its replay parameters.
type storedView struct {
	view int32
	flip bool
	box  dataset.Box
	aug  dataset.Augment
	mix  *store.Mixing // nil: not mixed
}

// Open opens a training set: the store o.Labels joined to the source o.Data, checked against
// each other and against the student's input (see the package comment), with the store's
// targets loaded. Images of the source without rows in the store (failures of precompute, or a
// store made with --limit) are skipped and counted in the log, as are images without a label.
func Open(ctx context.Context, o Options) (*Set, error) {
	if err := o.applyDefaults(); err != nil {
		return nil, err
	}
	if o.Labels == "" {
		return nil, fmt.Errorf("%w: no label store", ErrOptions)
	}
	s, err := openStored(ctx, o)
	if err != nil {
		return nil, err
	}
	V := s.meta.Views.Count
	if s.meta.Augment != nil {
		if s.augmented() {
			return nil, fmt.Errorf("%w: label store %s holds augmented views (%s), replayed as stored: no train-time RandAugment, erasing or mixing on top",
				ErrOptions, o.Labels, schema.KeyAugment)
		}
		s.replay = true
		if s.vc, err = storeViews(s.meta, [2]float64{}); err != nil {
			return nil, err
		}
		s.labelOf = make(map[int32]int32, len(s.images))
		for _, e := range s.images {
			s.labelOf[e.src] = e.label
		}
	}
	if s.augmented() && V != 1 {
		return nil, fmt.Errorf("%w: RandAugment, erasing and mixing run at train time against a single-view store only; "+
			"%s has %d views per image, which are replayed as stored", ErrOptions, o.Labels, V)
	}
	if V == 1 {
		s.fixed = true
		// Its fresh views are drawn with the store's settings, AugScale over its scale; the
		// batches give each epoch its own seed.
		if s.vc, err = storeViews(s.meta, o.AugScale); err != nil {
			return nil, err
		}
		vc := s.vc
		o.Log(fmt.Sprintf("label store has one view per image: fixed teacher — each epoch renders a fresh random "+
			"resized crop (scale %g–%g, ratio %.3g–%.3g, flip p %g) against the image's one teacher target",
			vc.Scale[0], vc.Scale[1], vc.Ratio[0], vc.Ratio[1], max(vc.FlipP, 0)))
		if vc.Scale[0] < 0.2 && s.meta.Preprocess.Crop <= 32 {
			o.Log(fmt.Sprintf("crops of %g of a %d-pixel image are mostly blur: a scale range of 0.35 to 1 keeps a recognisable object", vc.Scale[0], s.meta.Preprocess.Crop))
		}
		if s.augmented() {
			o.Log(s.augmentNote())
		}
	} else {
		if o.ViewsPerImage > V {
			what := "views per image"
			if o.RepeatedAug {
				what = "views per image (repeated augmentation: distinct stored views)"
			}
			return nil, fmt.Errorf("%w: %d %s, the store has %d", ErrOptions, o.ViewsPerImage, what, V)
		}
		what := "its exact crop and flip"
		if s.replay {
			what = "its exact crop, flip, RandAugment ops, erased box and Mixup/CutMix partner (" + schema.KeyAugment + "), the ground truth λ-mixed with the partner's"
		}
		o.Log(fmt.Sprintf("label store has %d views per image: each epoch replays %d stored view(s) of each image, "+
			"%s, with that view's teacher target", V, o.ViewsPerImage, what))
	}
	if o.RepeatedAug {
		o.Log(fmt.Sprintf("repeated augmentation: each epoch is %d rows, the first %d images of its order %d times each "+
			"(RASampler's epoch, cut to the image count)", s.RowsPerEpoch(), (s.Len()+o.ViewsPerImage-1)/o.ViewsPerImage, o.ViewsPerImage))
	}
	return s, nil
}

// OpenEval opens an evaluation set: view 0 (the centre crop) of every image of o.Data.
// With o.Labels (an eval store) the store is checked against the source and the student as
// Open does, and its labels and stored view-0 boxes are used. Without one, preprocessing and
// classes come from ref (the training store's metadata), view 0 is computed as precompute
// computes it, and labels are the source's ground truth, which must then be in ref's class
// space: where both have class names they must agree.
func OpenEval(ctx context.Context, o Options, ref schema.Metadata) (*Set, error) {
	if err := o.applyDefaults(); err != nil {
		return nil, err
	}
	if o.Labels != "" {
		s, err := openStored(ctx, o)
		if err != nil {
			return nil, err
		}
		s.eval = true
		return s, nil
	}
	// The eval folder is listed as the training store's was (its precompute --extensions).
	src, err := dataset.OpenWith(o.Data, dataset.Options{Extensions: ref.Dataset.Extensions})
	if err != nil {
		return nil, err
	}
	s := &Set{opts: o, src: src, meta: ref, eval: true}
	if err := s.fitStudent(); err != nil {
		return nil, err
	}
	if a, b := src.ClassNames(), ref.ClassNames; a != nil && b != nil && !slices.Equal(a, b) {
		return nil, fmt.Errorf("%w: %s: eval source %s has %q, the label store %q (give the eval set its own label store, made with the same class map)",
			ErrMismatch, schema.KeyClassNames, o.Data, a, b)
	}
	n := s.limit()
	var unlabelled int
	for i := range n {
		it := src.Item(i)
		if it.Label < 0 {
			unlabelled++
			continue
		}
		if it.Label >= ref.NumClasses {
			return nil, fmt.Errorf("%w: %s: image %s has label %d, the store has %d classes", ErrMismatch, schema.KeyNumClasses, it.ID, it.Label, ref.NumClasses)
		}
		s.images = append(s.images, entry{src: int32(i), label: int32(it.Label)})
	}
	if unlabelled > 0 {
		o.Log(fmt.Sprintf("eval: %d images of %s have no label: skipped", unlabelled, o.Data))
	}
	if len(s.images) == 0 {
		return nil, fmt.Errorf("%w: %s: no labelled images", ErrEmpty, o.Data)
	}
	s.cache = newImageCache(src.Len(), o.CacheBytes)
	return s, nil
}

func (s *Set) limit() int {
	n := s.src.Len()
	if s.opts.Limit > 0 {
		n = min(n, s.opts.Limit)
	}
	return n
}

// openStored opens a store-backed set.
func openStored(ctx context.Context, o Options) (*Set, error) {
	r, err := store.OpenReader(o.Labels)
	if err != nil {
		return nil, err
	}
	// The trainer uses every value it reads: a flipped byte must not become a label.
	if err := r.CheckSums(ctx); err != nil {
		return nil, err
	}
	// A folder is listed with the extensions precompute listed it with, so the same files
	// come in the same order; fitDataset then checks that they did.
	src, err := dataset.OpenWith(o.Data, dataset.Options{Extensions: r.Meta.Dataset.Extensions})
	if err != nil {
		return nil, err
	}
	s := &Set{opts: o, src: src, meta: r.Meta, stored: true}
	if err := s.fitDataset(r.Dir); err != nil {
		return nil, err
	}
	if err := s.fitStudent(); err != nil {
		return nil, fmt.Errorf("%w (label store %s)", err, r.Dir)
	}
	if err := s.join(ctx, r); err != nil {
		return nil, err
	}
	s.cache = newImageCache(src.Len(), o.CacheBytes)
	return s, nil
}

// fitDataset refuses a store made from another image list.
func (s *Set) fitDataset(dir string) error {
	d := s.meta.Dataset
	var listing string // how a folder was listed, which may be why the lists differ
	if !strings.HasPrefix(s.opts.Data, "list:") && !strings.HasPrefix(s.opts.Data, "idx:") {
		switch {
		case d.Extensions == nil:
			listing = "; the folder lists the files of torchvision's IMG_EXTENSIONS, as the store records"
		case slices.Equal(d.Extensions, []string{dataset.AllFiles}):
			listing = "; the folder lists every file, as the store records (made from every file)"
		default:
			listing = fmt.Sprintf("; the folder lists files ending in %s, as the store records", strings.Join(d.Extensions, ","))
		}
	}
	if n := int64(s.src.Len()); d.ImageCount != n {
		return fmt.Errorf("%w: %s.image_count: label store %s has %d images, source %s has %d%s",
			ErrMismatch, schema.KeyDataset, dir, d.ImageCount, s.opts.Data, n, listing)
	}
	if h := dataset.IDHash(s.src); d.IDHash != h {
		return fmt.Errorf("%w: %s.id_hash: label store %s was made from another image list than %s (same count, other ids or order%s)",
			ErrMismatch, schema.KeyDataset, dir, s.opts.Data, listing)
	}
	if d.ContentHash == "" { // a store made before content hashes were recorded
		return nil
	}
	// Two small reads a file (its size, first and last KiB), once at open.
	h, err := dataset.ContentHash(s.src)
	if err != nil {
		return err
	}
	if h != d.ContentHash {
		return fmt.Errorf("%w: %s.content_hash: the images of %s changed since label store %s was made from them (same ids, other bytes): label them again",
			ErrMismatch, schema.KeyDataset, s.opts.Data, dir)
	}
	return nil
}

// fitStudent checks the student's input against the metadata's preprocessing and classes,
// fills the options' zero fields from it, and sets the render config.
func (s *Set) fitStudent() error {
	o, md := &s.opts, s.meta
	pre := md.Preprocess
	field := func(name string) string { return schema.KeyPreprocess + "." + name }
	if o.Channels == 0 {
		o.Channels = pre.Channels
	}
	if o.Channels != pre.Channels {
		return fmt.Errorf("%w: %s: store has %d, student has %d", ErrMismatch, field("channels"), pre.Channels, o.Channels)
	}
	for _, f := range []struct {
		name        string
		store, want *[]float64
	}{{"mean", &pre.Mean, &o.Mean}, {"std", &pre.Std, &o.Std}} {
		if *f.want == nil {
			*f.want = *f.store
		}
		if !sameNorm(*f.store, *f.want, pre.Channels) {
			return fmt.Errorf("%w: %s: store has %v, student has %v", ErrMismatch, field(f.name), *f.store, *f.want)
		}
	}
	if o.Classes == 0 {
		o.Classes = md.NumClasses
	}
	if o.Classes != md.NumClasses {
		return fmt.Errorf("%w: %s: store has %d, student has %d", ErrMismatch, schema.KeyNumClasses, md.NumClasses, o.Classes)
	}
	if o.Size == 0 {
		o.Size = pre.Crop
	}
	cfg := dataset.Config{Resize: pre.Resize, Crop: pre.Crop, Interpolation: pre.Interpolation, Channels: pre.Channels,
		Mean: pre.Mean, Std: pre.Std}
	var err error
	if s.cfg, err = cfg.Defaults(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMismatch, schema.KeyPreprocess, err)
	}
	return nil
}

// sourceIndex finds id among the source's images, for the message of a row the source does
// not hold at its image_index: a linear search, on that error's path only.
func (s *Set) sourceIndex(id string) (int, bool) {
	for i := range s.src.Len() {
		if s.src.Item(i).ID == id {
			return i, true
		}
	}
	return 0, false
}

// sameNorm reports whether a and b give each of n channels the same value (one value standing
// for every channel: dataset.PerChannel) in float32, the precision pixels are normalised in.
func sameNorm(a, b []float64, n int) bool {
	a, err1 := dataset.PerChannel("mean", a, n)
	b, err2 := dataset.PerChannel("mean", b, n)
	if err1 != nil || err2 != nil {
		return false
	}
	for i := range a {
		if float32(a[i]) != float32(b[i]) {
			return false
		}
	}
	return true
}

// boxSlack allows the float32 rounding of top+height (each a whole-pixel fraction) past 1.
const boxSlack = 1e-6

// checkStored refuses a stored row the trainer must not use: a view outside [0, views), a
// label outside [0, classes) that is not NoLabel, a crop box outside the image [0,1]² or
// empty. The writer never stores them, so they mean a damaged or foreign file.
func checkStored(sv storedView, label, views int32, classes int) error {
	if sv.view < 0 || sv.view >= views {
		return fmt.Errorf("view %d outside 0..%d", sv.view, views-1)
	}
	if label != store.NoLabel && (label < 0 || int(label) >= classes) {
		return fmt.Errorf("label %d outside 0..%d", label, classes-1)
	}
	b := sv.box
	if !inUnitBox(b) {
		return fmt.Errorf("crop (top %v, left %v, height %v, width %v) is not a box inside the image [0,1]²", b.Top, b.Left, b.Height, b.Width)
	}
	return nil
}

// inUnitBox reports whether b is a non-empty box inside [0,1]² (false for NaN).
func inUnitBox(b dataset.Box) bool {
	inUnit := func(v float32) bool { return v >= 0 && v <= 1 }
	return inUnit(b.Top) && inUnit(b.Left) && b.Height > 0 && b.Width > 0 &&
		b.Top+b.Height <= 1+boxSlack && b.Left+b.Width <= 1+boxSlack
}

// join reads the store in one scan (store.LoadTargets, which keeps the teacher targets): every
// row's image, label, view and geometry, joined to the source by image_index and checked
// against its image_id; then it groups the rows by image and checks the classes.
func (s *Set) join(ctx context.Context, r *store.Reader) error {
	type raw struct {
		src   int32
		label int32
		sv    storedView
	}
	var rows []raw
	views := int32(s.meta.Views.Count)
	each := func(shard, row int, st *store.StoredRow) error {
		id, ix := st.ImageID, st.ImageIndex
		if ix < 0 || ix >= int64(s.src.Len()) || s.src.Item(int(ix)).ID != id {
			si, ok := s.sourceIndex(id)
			if !ok {
				return fmt.Errorf("%w: label store %s has a row for %s, which source %s lacks", ErrMismatch, r.Dir, id, s.opts.Data)
			}
			return fmt.Errorf("%w: label store %s: %s has image_index %d, source %s puts it at %d", ErrMismatch, r.Dir, id, ix, s.opts.Data, si)
		}
		c := st.Crop
		sv := storedView{view: st.View, flip: st.Flip, box: dataset.Box{Top: c[0], Left: c[1], Height: c[2], Width: c[3]}}
		if len(st.Augment.Ops) > 0 {
			sv.aug.Ops = slices.Clone(st.Augment.Ops)
		}
		sv.aug.Erase = st.Augment.Erase
		if st.Mix != nil {
			m := *st.Mix
			if m.Index < 0 || m.Index >= int64(s.src.Len()) || m.View < 1 || m.View >= views {
				return fmt.Errorf("shard %s: %w: row %d (%s): mix partner image %d view %d outside the store's images and random views",
					r.ShardPath(shard), store.ErrContent, row, id, m.Index, m.View)
			}
			if !(m.Lambda >= 0 && m.Lambda <= 1) || m.CutMix && !inUnitBox(m.Box) {
				return fmt.Errorf("shard %s: %w: row %d (%s): mix_lambda %v, mix_box %v: want λ in [0, 1] and a box inside the view [0,1]²",
					r.ShardPath(shard), store.ErrContent, row, id, m.Lambda, m.Box)
			}
			sv.mix = &m
		}
		if e := sv.aug.Erase.Box; e != (dataset.Box{}) && !inUnitBox(e) {
			return fmt.Errorf("shard %s: %w: row %d (%s): erase_box %v is not a box inside the view [0,1]²", r.ShardPath(shard), store.ErrContent, row, id, e)
		}
		if err := checkStored(sv, st.Label, views, s.meta.NumClasses); err != nil {
			return fmt.Errorf("shard %s: %w: row %d (%s): %w", r.ShardPath(shard), store.ErrContent, row, id, err)
		}
		rows = append(rows, raw{src: int32(ix), label: st.Label, sv: sv})
		return nil
	}
	var err error
	if s.targets, err = r.LoadTargets(ctx, each); err != nil {
		return err
	}
	slices.SortFunc(rows, func(a, b raw) int {
		if a.src != b.src {
			return int(a.src - b.src)
		}
		return int(a.sv.view - b.sv.view)
	})
	n := s.limit()
	var unlabelled, missing int
	have := make([]bool, n)
	// A store made with a class map holds labels in the teacher's classes; the source's are
	// folder indices. srcToStore records the pairs to tell a class map from a mismatch.
	srcToStore := map[int32]int32{}
	mapped := false
	for lo := 0; lo < len(rows); {
		hi := lo
		for hi < len(rows) && rows[hi].src == rows[lo].src {
			hi++
		}
		si := rows[lo].src
		if int(si) >= n {
			lo = hi
			continue
		}
		have[si] = true
		label := rows[lo].label
		srcLabel := int32(s.src.Item(int(si)).Label)
		if label == store.NoLabel {
			label = srcLabel
		} else if srcLabel >= 0 {
			if prev, ok := srcToStore[srcLabel]; ok && prev != label {
				return fmt.Errorf("%w: %s: label store %s gives source class %d two classes (%d and %d): not this source's labels",
					ErrMismatch, schema.KeyClassNames, r.Dir, srcLabel, prev, label)
			}
			srcToStore[srcLabel] = label
			mapped = mapped || srcLabel != label
		}
		switch {
		case label < 0:
			unlabelled++
		case int(label) >= s.meta.NumClasses:
			return fmt.Errorf("%w: %s: image %s has label %d, the store has %d classes",
				ErrMismatch, schema.KeyNumClasses, s.src.Item(int(si)).ID, label, s.meta.NumClasses)
		default:
			s.images = append(s.images, entry{src: si, label: label, first: int32(len(s.rows)), count: int32(hi - lo)})
			for _, rw := range rows[lo:hi] {
				s.rows = append(s.rows, rw.sv)
			}
		}
		lo = hi
	}
	// Class names: equal where both have them, unless the store's labels show a class map.
	if a, b := s.src.ClassNames(), s.meta.ClassNames; a != nil && b != nil && !slices.Equal(a, b) && !mapped {
		return fmt.Errorf("%w: %s: source %s has %q, label store %s %q", ErrMismatch, schema.KeyClassNames, s.opts.Data, a, r.Dir, b)
	}
	for _, ok := range have {
		if !ok {
			missing++
		}
	}
	if missing > 0 {
		s.opts.Log(fmt.Sprintf("%d of %d images of %s have no rows in label store %s (failed at precompute, or beyond its limit): skipped",
			missing, n, s.opts.Data, r.Dir))
	}
	if unlabelled > 0 {
		s.opts.Log(fmt.Sprintf("%d images of %s have no label: skipped", unlabelled, s.opts.Data))
	}
	if len(s.images) == 0 {
		return fmt.Errorf("%w: label store %s and source %s share no labelled image", ErrEmpty, r.Dir, s.opts.Data)
	}
	return nil
}

// Meta is the metadata of the set's store (for an eval set without one, the reference's).
func (s *Set) Meta() schema.Metadata { return s.meta }

// Len is the number of images the set uses.
func (s *Set) Len() int { return len(s.images) }

// Size is the side images are rendered at; Channels and Classes the student's.
func (s *Set) Size() int     { return s.opts.Size }
func (s *Set) Channels() int { return s.opts.Channels }
func (s *Set) Classes() int  { return s.opts.Classes }

// Mean and Std are the normalisation, per channel as the store gives it.
func (s *Set) Mean() []float64 { return s.opts.Mean }
func (s *Set) Std() []float64  { return s.opts.Std }

// Preprocess is the student's eval transform, ExportPreprocess of the store at the student's
// size; train records it in the checkpoint for export.
func (s *Set) Preprocess() (dataset.Config, error) { return ExportPreprocess(s.meta, s.opts.Size) }

// TeacherAccuracy is the fraction of the set's images whose stored view-0 teacher label is
// their ground truth, and the number of images counted (0 without a store).
func (s *Set) TeacherAccuracy() (float64, int) {
	if s.targets == nil {
		return 0, 0
	}
	right, n := 0, 0
	for _, e := range s.images {
		t, err := s.targets.LookupIndex(int64(e.src), 0)
		if err != nil {
			continue // a store without view 0 for this image: not counted
		}
		n++
		if t.Hard == e.label {
			right++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return float64(right) / float64(n), n
}

// RowsPerEpoch is Len()·ViewsPerImage for a training set (Len() with RepeatedAug), Len()
// for an eval set.
func (s *Set) RowsPerEpoch() int {
	if s.eval || s.opts.RepeatedAug {
		return len(s.images)
	}
	return len(s.images) * s.opts.ViewsPerImage
}

// BatchesPerEpoch is the number of batches of an epoch; the last may be short.
func (s *Set) BatchesPerEpoch() int { return (s.RowsPerEpoch() + s.opts.Batch - 1) / s.opts.Batch }

// storeViews is the view configuration the store's random views were drawn with, from its
// deitkd.views (to draw a replayed mix's partner view again), with scale, when not zero, over
// its scale (a fixed-teacher run's train-time crops).
func storeViews(md schema.Metadata, scale [2]float64) (dataset.ViewConfig, error) {
	vc := dataset.ViewConfig{Seed: md.Views.Seed, Scale: md.Views.Scale, Ratio: md.Views.Ratio, FlipP: md.Views.FlipP}
	if vc.FlipP == 0 {
		vc.FlipP = -1 // the metadata's 0 means never; ViewConfig's 0 means the default
	}
	if scale != [2]float64{} {
		vc.Scale = scale
	}
	vc, err := vc.Defaults()
	if err != nil {
		return vc, fmt.Errorf("%w: %s: %w", ErrMismatch, schema.KeyViews, err)
	}
	return vc, nil
}
