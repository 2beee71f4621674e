package precompute

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
)

// ErrViewsFrom reports a --views-from store that cannot give this run its views: another data
// set, or rows that are not whole images of its own views.
var ErrViewsFrom = errors.New("precompute: the views-from store does not fit")

// sourceViews are the views of a --views-from store: for each image index of the data set the
// views the store holds, in view order, nil for an image it lacks (failed there, beyond its
// --limit or in no shard of it).
type sourceViews struct {
	views  [][]dataset.View
	images int // images with views
	meta   schema.Metadata
	from   schema.ViewsFrom
}

// readViewsFrom reads the rows (image, view, crop, flip) of the finished store at path (a
// folder or its manifest file) for src, whose identity ds must be the store's: the same image
// count and id list, and the same contents where the store recorded their hash.
func readViewsFrom(ctx context.Context, path string, src dataset.Source, ds schema.Dataset) (*sourceViews, error) {
	r, err := store.OpenReader(path)
	if err != nil {
		return nil, optionError(fmt.Errorf("views-from store: %w", err), "ViewsFrom")
	}
	sum, err := store.ManifestSHA256(path)
	if err != nil {
		return nil, optionError(fmt.Errorf("views-from store: %w", err), "ViewsFrom")
	}
	abs, err := filepath.Abs(r.Dir)
	if err != nil {
		return nil, optionError(fmt.Errorf("views-from store: %w", err), "ViewsFrom")
	}
	if r.Meta.Augment != nil {
		// Its views are more than boxes and flips: relabelling the boxes alone would store other pixels' labels.
		return nil, optionError(fmt.Errorf("%w: store %s holds augmented views (%s, schema version %d), which a views-from run does not replay", ErrViewsFrom, r.Dir, schema.KeyAugment, r.Meta.SchemaVersion), "ViewsFrom")
	}
	sv := &sourceViews{meta: r.Meta, from: schema.ViewsFrom{Path: abs, ManifestSHA256: sum}}
	d := r.Meta.Dataset
	switch {
	case d.ImageCount != ds.ImageCount:
		return nil, fmt.Errorf("%w: %s.image_count: store %s has %d images, this data set %d", ErrViewsFrom, schema.KeyDataset, r.Dir, d.ImageCount, ds.ImageCount)
	case d.IDHash != ds.IDHash:
		return nil, fmt.Errorf("%w: %s.id_hash: store %s was made from another image list (same count, other ids or order)", ErrViewsFrom, schema.KeyDataset, r.Dir)
	case d.ContentHash != "" && d.ContentHash != ds.ContentHash:
		return nil, fmt.Errorf("%w: %s.content_hash: the images changed since store %s was made from them (same ids, other bytes)", ErrViewsFrom, schema.KeyDataset, r.Dir)
	}
	count := r.Meta.Views.Count
	sv.views = make([][]dataset.View, src.Len())
	cols := []string{schema.ColImageID, schema.ColImageIndex, schema.ColView, schema.ColCrop, schema.ColFlip}
	for shard := range r.Manifest.Shards {
		err := r.ScanRows(ctx, shard, cols, func(row int, st *store.StoredRow) error {
			bad := func(format string, a ...any) error {
				return fmt.Errorf("%w: %s row %d (%s): %s", ErrViewsFrom, r.ShardPath(shard), row, st.ImageID, fmt.Sprintf(format, a...))
			}
			n, v := st.ImageIndex, int(st.View)
			switch {
			case n < 0 || n >= int64(src.Len()):
				return bad("image_index %d outside the data set's %d images", n, src.Len())
			case src.Item(int(n)).ID != st.ImageID:
				return bad("image_index %d is %s in the data set", n, src.Item(int(n)).ID)
			case v < 0 || v >= count:
				return bad("view %d outside 0..%d", v, count-1)
			}
			if sv.views[n] == nil {
				sv.views[n] = make([]dataset.View, count)
				for k := range sv.views[n] {
					sv.views[n][k].Index = -1 // not seen yet
				}
				sv.images++
			}
			if sv.views[n][v].Index != -1 {
				return bad("view %d stored twice", v)
			}
			c := st.Crop
			sv.views[n][v] = dataset.View{Index: v, Flip: st.Flip, Box: dataset.Box{Top: c[0], Left: c[1], Height: c[2], Width: c[3]}}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for n, vs := range sv.views {
		for v, view := range vs {
			if view.Index == -1 {
				return nil, fmt.Errorf("%w: store %s has image %s without view %d of its %d", ErrViewsFrom, r.Dir, src.Item(n).ID, v, count)
			}
		}
	}
	return sv, nil
}

// fitViewsFrom takes the views of the --views-from store for this run, whose preprocessing is
// pre: their count and parameters become the run's (and the new store's deitkd.views). A store
// made with another --exif-transpose is refused, since its boxes are fractions of the other
// orientation; a centre crop of another resize/crop ratio is only warned about, since view 0
// keeps the source's box whatever this run's --resize says.
func (j *Job) fitViewsFrom(pre dataset.Config) (schema.Views, error) {
	src, v := j.from.meta.Preprocess, j.from.meta.Views
	if src.EXIFTranspose != pre.EXIFTranspose {
		return v, fmt.Errorf("%w: %s.exif_transpose: store %s has %v, this run %v (its boxes are fractions of the image as it was turned)",
			ErrViewsFrom, schema.KeyPreprocess, j.from.from.Path, src.EXIFTranspose, pre.EXIFTranspose)
	}
	if j.opts.JPEGDraft && v.Count > 1 {
		return v, optionError(fmt.Errorf("%w: JPEG drafting renders the centre-crop view only, and store %s has %d views per image", ErrOptions, j.from.from.Path, v.Count), "JPEGDraft", "ViewsFrom")
	}
	if src.Resize*pre.Crop != pre.Resize*src.Crop {
		j.opts.Warn(fmt.Sprintf("store %s centre-cropped %d of %d pixels for view 0, this run would crop %d of %d: view 0 keeps the store's box (a resize of %.4g gives the same ratio)",
			j.from.from.Path, src.Crop, src.Resize, pre.Crop, pre.Resize, float64(pre.Crop)*float64(src.Resize)/float64(src.Crop)))
	}
	j.opts.Views = v.Count
	j.vc = dataset.ViewConfig{Seed: v.Seed, Scale: v.Scale, Ratio: v.Ratio, FlipP: v.FlipP}
	if v.FlipP == 0 {
		j.vc.FlipP = -1 // never: a stored 0 is no flips, ViewConfig's 0 the default
	}
	return v, nil
}
