package store

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/deitkd/deitkd/internal/half"
	"github.com/deitkd/deitkd/schema"
)

// Target is the teacher's output for one (image, view), as the trainer's
// loss takes it.
type Target struct {
	Hard       int32       // argmax over all K logits
	Mode       schema.Mode // which of the fields below are set
	NumClasses int         // K
	Logits     []float32   // full: the K logits; topk: the k stored logits, descending
	Index      []int32     // topk: the classes of Logits; nil in mode full
	LogSumExp  float32     // topk: log Σ exp over all K logits
}

// Targets is an in-memory index (image_id, view) → Target over a whole
// store, for a trainer that visits images in random order. It keeps logits
// in their stored dtype (2 bytes each at float16): mode topk with k=10 costs
// about 70 bytes per row, so 60,000 images × 10 views fit in 42 MB; mode full
// costs 2K or 4K bytes per row, which suits small K. For stores that do not
// fit in memory, stream shards with Reader.Scan instead. Safe for
// concurrent Lookups.
type Targets struct {
	meta    schema.Metadata
	width   int              // logits per row
	byID    map[string]int32 // image_id → first row
	byIndex map[int64]int32  // image_index → first row
	views   []int32          // view of each row
	hard    []int32          // teacher_hard of each row
	f32     []float32        // rows × width when dtype is float32
	f16     []uint16         // rows × width when dtype is float16
	topk    []int32          // rows × k in mode topk
	lse     []float32        // mode topk
}

// LoadTargets reads the columns a trainer needs from every shard, in one scan. With each
// non-nil it reads every column and hands each row (its shard, its row within the shard, and
// every column) to each before checking its target, so that a trainer joins the rows to its
// images in the same scan; each must copy what it keeps (StoredRow's strings and slices point
// into the record). A row's target is refused when its values must not be trained on (see
// checkTarget); the error names the shard and the row.
func (r *Reader) LoadTargets(ctx context.Context, each func(shard, row int, s *StoredRow) error) (*Targets, error) {
	md := r.Meta
	t := &Targets{meta: md, width: md.Width(), byID: map[string]int32{}, byIndex: map[int64]int32{}}
	n := r.Manifest.Rows
	t.views = make([]int32, 0, n)
	t.hard = make([]int32, 0, n)
	if md.Store.DType == schema.Float16 {
		t.f16 = make([]uint16, 0, n*int64(t.width))
	} else {
		t.f32 = make([]float32, 0, n*int64(t.width))
	}
	var cols []string // every column when each wants them
	if each == nil {
		cols = []string{schema.ColImageID, schema.ColImageIndex, schema.ColView, schema.ColTeacherHard}
		if md.Store.Mode == schema.ModeTopK {
			cols = append(cols, schema.ColTopKLogit, schema.ColTopKIndex, schema.ColLogSumExp)
		} else {
			cols = append(cols, schema.ColTeacherLogits)
		}
	}
	if md.Store.Mode == schema.ModeTopK {
		t.topk = make([]int32, 0, n*int64(md.Store.K))
		t.lse = make([]float32, 0, n)
	}
	last := int64(-1) // image index of the previous row, across shards
	for shard := range r.Manifest.Shards {
		if err := r.ScanRows(ctx, shard, cols, func(row int, s *StoredRow) error {
			if each != nil {
				if err := each(shard, row, s); err != nil {
					return err
				}
			}
			if err := t.checkTarget(s); err != nil {
				return fmt.Errorf("shard %s: %w: row %d: %w", r.ShardPath(shard), ErrContent, row, err)
			}
			at := int32(len(t.views))
			if s.ImageIndex != last {
				last = s.ImageIndex
				if _, dup := t.byID[s.ImageID]; dup {
					return fmt.Errorf("store %s: %w: image %s appears in two places", r.Dir, ErrContent, s.ImageID)
				}
				id := strings.Clone(s.ImageID) // s.ImageID points into the record's buffer
				t.byID[id] = at
				t.byIndex[s.ImageIndex] = at
			}
			t.views = append(t.views, s.View)
			t.hard = append(t.hard, s.TeacherHard)
			if t.f16 != nil {
				for _, v := range s.Logits {
					h, _ := half.FromFloat32(v) // exact: a float16 widened, and finite (checkTarget)
					t.f16 = append(t.f16, h)
				}
			} else {
				t.f32 = append(t.f32, s.Logits...)
			}
			if md.Store.Mode == schema.ModeTopK {
				t.topk = append(t.topk, s.TopKIndex...)
				t.lse = append(t.lse, s.LogSumExp)
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// checkTarget refuses values a trainer must not use: a view below 0, a class outside [0, K),
// a non-finite logit or logsumexp. The writer never stores them, so they mean a damaged or
// foreign file.
func (t *Targets) checkTarget(s *StoredRow) error {
	K := int32(t.meta.NumClasses)
	if s.View < 0 {
		return fmt.Errorf("view %d", s.View)
	}
	if h := s.TeacherHard; h < 0 || h >= K {
		return fmt.Errorf("%s %d outside 0..%d", schema.ColTeacherHard, h, K-1)
	}
	name := schema.ColTeacherLogits
	if t.meta.Store.Mode == schema.ModeTopK {
		name = schema.ColTopKLogit
		for j, c := range s.TopKIndex {
			if c < 0 || c >= K {
				return fmt.Errorf("%s[%d] %d outside 0..%d", schema.ColTopKIndex, j, c, K-1)
			}
		}
		if v := s.LogSumExp; v-v != 0 {
			return fmt.Errorf("%s is %v", schema.ColLogSumExp, v)
		}
	}
	for j, v := range s.Logits {
		if v-v != 0 { // NaN or ±Inf
			return fmt.Errorf("%s[%d] is %v", name, j, v)
		}
	}
	return nil
}

// Lookup returns the target of (imageID, view), or an error wrapping
// ErrNotFound.
func (t *Targets) Lookup(imageID string, view int) (Target, error) {
	first, ok := t.byID[imageID]
	if !ok {
		return Target{}, fmt.Errorf("lookup %s view %d: %w", imageID, view, ErrNotFound)
	}
	return t.at(first, view, imageID)
}

// LookupIndex is Lookup by image index.
func (t *Targets) LookupIndex(imageIndex int64, view int) (Target, error) {
	first, ok := t.byIndex[imageIndex]
	if !ok {
		return Target{}, fmt.Errorf("lookup image %d view %d: %w", imageIndex, view, ErrNotFound)
	}
	return t.at(first, view, fmt.Sprint("image ", imageIndex))
}

// at finds the row of view among the rows of one image starting at first:
// rows are sorted by view, and normally view v sits at first+v.
func (t *Targets) at(first int32, view int, what string) (Target, error) {
	row := int(first) + view
	if row >= len(t.views) || int(t.views[row]) != view || (view > 0 && t.views[row-1] >= t.views[row]) {
		row = -1
		for r := int(first); r < len(t.views) && (r == int(first) || t.views[r] > t.views[r-1]); r++ {
			if int(t.views[r]) == view {
				row = r
				break
			}
		}
		if row < 0 {
			return Target{}, fmt.Errorf("lookup %s view %d: %w", what, view, ErrNotFound)
		}
	}
	return t.Row(row), nil
}

// Row returns the target of row i, in store order.
func (t *Targets) Row(i int) Target {
	out := Target{Hard: t.hard[i], Mode: t.meta.Store.Mode, NumClasses: t.meta.NumClasses, Logits: make([]float32, t.width)}
	lo := i * t.width
	if t.f16 != nil {
		for j, h := range t.f16[lo : lo+t.width] {
			out.Logits[j] = half.ToFloat32(h) // exact; arrow's Num.Float32 misreads subnormals
		}
	} else {
		copy(out.Logits, t.f32[lo:lo+t.width])
	}
	if t.meta.Store.Mode == schema.ModeTopK {
		k := t.meta.Store.K
		out.Index = append([]int32(nil), t.topk[i*k:(i+1)*k]...)
		out.LogSumExp = t.lse[i]
	}
	return out
}

// Dense writes the teacher's probabilities at temperature tau over all K
// classes into dst (grown if short) and returns it.
//
// Mode full: softmax(logits/tau), exact.
//
// Mode topk: the k stored logits are known, the K−k others only through
// logsumexp: at tau=1 their total mass is R = 1 − Σ_stored exp(l_i − lse),
// and Dense spreads R uniformly, which is exact for every stored class and
// for the total. At tau ≠ 1 the unstored logits' spread is needed and was not
// kept; Dense assumes every unstored class has the same logit u, the one
// that reproduces R at tau=1 (u = lse + log(R/(K−k)), never above the
// smallest stored logit), and then takes softmax over the stored logits and
// K−k copies of u at tau. So stored classes keep their exact ratios
// exp((l_i − l_j)/tau) to each other at every tau, probabilities sum to 1,
// and tau=1 is exact. The leftover mass is approximate: because x ↦ x^(1/tau)
// is concave for tau > 1, the true leftover Σ exp(l_j/tau) over unstored j
// is at most the uniform estimate, so Dense overstates the leftover for
// tau > 1 (slightly softer targets) and understates it for tau < 1 — the
// error is bounded by the spread of the unstored logits, which top-k
// selection keeps below the stored ones.
func Dense(t Target, tau float64, dst []float32) []float32 {
	k := t.NumClasses
	if cap(dst) < k {
		dst = make([]float32, k)
	}
	dst = dst[:k]
	if t.Mode == schema.ModeFull {
		softmax(t.Logits, tau, dst)
		return dst
	}
	stored := len(t.Index)
	lse := float64(t.LogSumExp)
	var kept float64
	for _, l := range t.Logits {
		kept += math.Exp(float64(l) - lse)
	}
	rest := k - stored
	leftover := 1 - kept
	if rest == 0 || leftover <= 0 {
		// Nothing unstored, or rounding (float16 logits) left no room: the
		// stored classes carry all the mass.
		for i := range dst {
			dst[i] = 0
		}
		m := float64(t.Logits[0])
		var s float64
		for _, l := range t.Logits {
			s += math.Exp((float64(l) - m) / tau)
		}
		for j, c := range t.Index {
			dst[c] = float32(math.Exp((float64(t.Logits[j])-m)/tau) / s)
		}
		return dst
	}
	u := lse + math.Log(leftover/float64(rest))
	m := max(float64(t.Logits[0]), u)
	s := float64(rest) * math.Exp((u-m)/tau)
	for _, l := range t.Logits {
		s += math.Exp((float64(l) - m) / tau)
	}
	pu := float32(math.Exp((u-m)/tau) / s)
	for i := range dst {
		dst[i] = pu
	}
	for j, c := range t.Index {
		dst[c] = float32(math.Exp((float64(t.Logits[j])-m)/tau) / s)
	}
	return dst
}

func softmax(logits []float32, tau float64, dst []float32) {
	m := float64(logits[0])
	for _, l := range logits {
		m = max(m, float64(l))
	}
	var s float64
	for i, l := range logits {
		e := math.Exp((float64(l) - m) / tau)
		dst[i] = float32(e)
		s += e
	}
	for i := range dst {
		dst[i] = float32(float64(dst[i]) / s)
	}
}
