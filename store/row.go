package store

import (
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/deitkd/deitkd/dataset"
)

// NoLabel marks a row whose ground-truth class is unknown; it is stored as
// null.
const NoLabel int32 = -1

// Row is one (image, view) as the precompute pipeline hands it to a Writer.
type Row struct {
	ImageIndex int64      // position in the source's canonical order
	ImageID    string     // path relative to the dataset root, '/' separated; valid UTF-8 (dataset.EscapeID)
	Label      int32      // ground-truth class, or NoLabel
	View       int32      // 0: eval view; 1..V-1: random views
	Crop       [4]float32 // top, left, height, width as fractions of the source image
	Flip       bool       // horizontal flip after the crop
	Logits     []float32  // raw teacher logits, length NumClasses; not retained
	// Augment and Mix are the view's replay parameters (schema version 2): what followed the
	// crop and flip, and the partner it was mixed with (nil: not mixed). A version-1 store
	// refuses a row with either.
	Augment dataset.Augment
	Mix     *Mixing
}

// Mixing is a stored view's Mixup or CutMix: the partner row, image index and view, whose
// pixels (rendered with its own crop, flip and Augment, unmixed) were mixed in as Mix says
// (Mix.Apply): columns mix_index, mix_view, mix_lambda and mix_box.
type Mixing struct {
	Index int64
	View  int32
	dataset.Mix
}

// argmaxLSE returns the first index of the largest logit and log Σ exp over
// all logits, accumulated in float64 after subtracting the maximum.
func argmaxLSE(logits []float32) (int32, float32) {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	m := float64(logits[best])
	var s float64
	for _, v := range logits {
		s += math.Exp(float64(v) - m)
	}
	return int32(best), float32(m + math.Log(s))
}

// topK writes into idx the k classes with the largest logits, by descending
// logit, ties to the lower class (so idx[0] is the argmax). It keeps a small
// sorted window: O(K·k) in the worst case, about O(K) for real logits where
// few values enter the window.
func topK(logits []float32, idx []int32) {
	k := len(idx)
	n := 0
	for c, v := range logits {
		if n == k && v <= logits[idx[k-1]] {
			continue
		}
		j := n
		if n < k {
			n++
		} else {
			j = k - 1
		}
		for j > 0 && v > logits[idx[j-1]] {
			idx[j] = idx[j-1]
			j--
		}
		idx[j] = int32(c)
	}
}

func checkRow(r *Row, numClasses int) error {
	if len(r.Logits) != numClasses {
		return fmt.Errorf("%w: %d logits, store has %d classes", ErrRow, len(r.Logits), numClasses)
	}
	for c, v := range r.Logits {
		if v-v != 0 { // NaN or ±Inf, in one cheap test per logit
			return fmt.Errorf("%w: logit %d is %v", ErrRow, c, v)
		}
	}
	if r.Label != NoLabel && (r.Label < 0 || int(r.Label) >= numClasses) {
		return fmt.Errorf("%w: label %d outside 0..%d", ErrRow, r.Label, numClasses-1)
	}
	if r.View < 0 {
		return fmt.Errorf("%w: view %d", ErrRow, r.View)
	}
	if r.ImageIndex < 0 {
		return fmt.Errorf("%w: image index %d", ErrRow, r.ImageIndex)
	}
	if r.Mix != nil && (r.Mix.Index < 0 || r.Mix.View < 1 || !(r.Mix.Lambda >= 0 && r.Mix.Lambda <= 1) || r.Mix.CutMix == (r.Mix.Box == dataset.Box{})) {
		return fmt.Errorf("%w: mix %+v: want a partner image, a random view ≥ 1, λ in [0, 1] and a box for CutMix only", ErrRow, *r.Mix)
	}
	if e := r.Augment.Erase.Box; e != (dataset.Box{}) && !unitBox(e) || r.Mix != nil && r.Mix.CutMix && !unitBox(r.Mix.Box) {
		return fmt.Errorf("%w: erase box %+v, mix %+v: a box must lie inside the view [0,1]²", ErrRow, r.Augment.Erase.Box, r.Mix)
	}
	if !utf8.ValidString(r.ImageID) { // a utf8 column holding other bytes is refused by readers (DuckDB)
		return fmt.Errorf("%w: image %d: image_id %q is not valid UTF-8 (dataset.EscapeID escapes such a name)", ErrRow, r.ImageIndex, r.ImageID)
	}
	return nil
}

// unitBox reports whether b is a non-empty box inside [0,1]² (false for NaN), with the slack of
// float32 whole-pixel fractions.
func unitBox(b dataset.Box) bool {
	in := func(v float32) bool { return v >= 0 && v <= 1 }
	return in(b.Top) && in(b.Left) && b.Height > 0 && b.Width > 0 && b.Top+b.Height <= 1+1e-6 && b.Left+b.Width <= 1+1e-6
}
