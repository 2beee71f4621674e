package store

import (
	"cmp"
	"context"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/deitkd/deitkd/internal/half"
	"github.com/deitkd/deitkd/schema"
)

// Summary is what Inspect reports about a store.
type Summary struct {
	Meta     schema.Metadata
	Format   Format
	Shards   int
	Rows     int64
	Images   int64
	Failures int
	// FirstFailures are the failure log's first MaxListedFailures entries by image index.
	FirstFailures []Failure
	HardHist      []int64 // rows per teacher_hard class
	LabelHist     []int64 // rows per ground-truth class
	Labelled      int64   // rows with a ground-truth label
	Top1          float64 // fraction of labelled rows whose teacher_hard is the label
	// Top5 is the fraction of labelled rows whose label is among the
	// teacher's five largest logits; Top5Known is false in mode topk with
	// k < 5, where it cannot be told.
	Top5      float64
	Top5Known bool
	// MeanEntropy is the mean entropy in nats of the teacher distribution at
	// τ=1 (mode topk: of Dense's reconstruction, exact at τ=1 up to how the
	// leftover mass spreads).
	MeanEntropy float64
}

// MaxListedFailures bounds Summary.FirstFailures; ExportFailures writes them all.
const MaxListedFailures = 10

// Inspect reads every row once and summarises the store.
func Inspect(ctx context.Context, r *Reader) (*Summary, error) {
	md := r.Meta
	s := &Summary{Meta: md, Format: r.Manifest.FileFormat, Shards: len(r.Manifest.Shards), Rows: r.Manifest.Rows, Images: r.Manifest.Images,
		HardHist: make([]int64, md.NumClasses), LabelHist: make([]int64, md.NumClasses), Top5Known: md.Store.Mode == schema.ModeFull || md.Store.K >= 5}
	fs, err := r.Failures()
	if err != nil {
		return nil, err
	}
	s.Failures = len(fs)
	slices.SortStableFunc(fs, func(a, b Failure) int { return cmp.Compare(a.ImageIndex, b.ImageIndex) })
	s.FirstFailures = fs[:min(len(fs), MaxListedFailures)]
	cols := []string{schema.ColLabel, schema.ColTeacherHard}
	if md.Store.Mode == schema.ModeFull {
		cols = append(cols, schema.ColTeacherLogits)
	} else {
		cols = append(cols, schema.ColTopKLogit, schema.ColTopKIndex, schema.ColLogSumExp)
	}
	var top1, top5 int64
	var entropy float64
	var dense []float32
	var logits []float32
	width := md.Width()
	err = r.Scan(ctx, cols, func(rec arrow.RecordBatch) error {
		labels := rec.Column(0).(*array.Int32)
		hard := rec.Column(1).(*array.Int32).Int32Values()
		vals := rec.Column(2).(*array.FixedSizeList).ListValues()
		var lse []float32
		var topI []int32
		if md.Store.Mode == schema.ModeTopK {
			topI = rec.Column(3).(*array.FixedSizeList).ListValues().(*array.Int32).Int32Values()
			lse = rec.Column(4).(*array.Float32).Float32Values()
		}
		for i := 0; i < labels.Len(); i++ {
			logits = floatsAt(vals, i*width, width, logits)
			t := Target{Hard: hard[i], Mode: md.Store.Mode, NumClasses: md.NumClasses, Logits: logits}
			if topI != nil {
				t.Index = topI[i*width : (i+1)*width]
				t.LogSumExp = lse[i]
			}
			s.HardHist[hard[i]]++
			dense = Dense(t, 1, dense)
			var h float64
			for _, p := range dense {
				if p > 0 {
					h -= float64(p) * math.Log(float64(p))
				}
			}
			entropy += h
			if labels.IsNull(i) {
				continue
			}
			y := labels.Value(i)
			if y < 0 || int(y) >= md.NumClasses {
				continue
			}
			s.Labelled++
			s.LabelHist[y]++
			if hard[i] == y {
				top1++
			}
			if inTop5(t, y) {
				top5++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.Rows > 0 {
		s.MeanEntropy = entropy / float64(s.Rows)
	}
	if s.Labelled > 0 {
		s.Top1 = float64(top1) / float64(s.Labelled)
		s.Top5 = float64(top5) / float64(s.Labelled)
	}
	return s, nil
}

func inTop5(t Target, y int32) bool {
	if t.Mode == schema.ModeTopK {
		for j := 0; j < 5 && j < len(t.Index); j++ {
			if t.Index[j] == y {
				return true
			}
		}
		return false
	}
	ly := t.Logits[y]
	above := 0
	for c, l := range t.Logits {
		if l > ly || (l == ly && int32(c) < y) {
			above++
		}
	}
	return above < 5
}

// floatsAt copies n values starting at off from a float32 or float16 array
// into dst.
func floatsAt(a arrow.Array, off, n int, dst []float32) []float32 {
	dst = dst[:0]
	switch v := a.(type) {
	case *array.Float32:
		dst = append(dst, v.Float32Values()[off:off+n]...)
	case *array.Float16:
		for _, x := range v.Values()[off : off+n] {
			dst = append(dst, half.ToFloat32(x.Uint16()))
		}
	}
	return dst
}
