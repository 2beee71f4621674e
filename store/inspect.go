package store

import (
	"cmp"
	"context"
	"math"
	"slices"

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
	for shard := range r.Manifest.Shards {
		if err := r.ScanRows(ctx, shard, cols, func(_ int, row *StoredRow) error {
			t := Target{Hard: row.TeacherHard, Mode: md.Store.Mode, NumClasses: md.NumClasses, Logits: row.Logits}
			if md.Store.Mode == schema.ModeTopK {
				t.Index, t.LogSumExp = row.TopKIndex, row.LogSumExp
			}
			s.HardHist[t.Hard]++
			dense = Dense(t, 1, dense)
			var h float64
			for _, p := range dense {
				if p > 0 {
					h -= float64(p) * math.Log(float64(p))
				}
			}
			entropy += h
			y := row.Label // NoLabel where null
			if y < 0 || int(y) >= md.NumClasses {
				return nil
			}
			s.Labelled++
			s.LabelHist[y]++
			if t.Hard == y {
				top1++
			}
			if inTop5(t, y) {
				top5++
			}
			return nil
		}); err != nil {
			return nil, err
		}
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
