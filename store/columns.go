package store

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/float16"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/internal/half"
	"github.com/deitkd/deitkd/schema"
)

// StoredRow is one row of a label file as read back, every column of the contract by name.
// ScanRows fills the columns it was asked for; the others keep their zero value.
type StoredRow struct {
	ImageID     string     // image_id; points into the record's buffer until fn returns (strings.Clone to keep it)
	ImageIndex  int64      // image_index
	Label       int32      // label, NoLabel where null
	View        int32      // view
	Crop        [4]float32 // crop: top, left, height, width
	Flip        bool       // flip
	TeacherHard int32      // teacher_hard
	// Logits are teacher_logits (mode full: all K) or topk_logit (mode topk: the k stored,
	// descending), float16 widened exactly. Reused from row to row: copy to keep.
	Logits    []float32
	TopKIndex []int32 // topk_index, mode topk; reused from row to row
	LogSumExp float32 // logsumexp, mode topk
	// Augment is randaugment (Ops, reused from row to row), erase_box and erase_seed; the
	// zero Augment where they are null. Schema version 2.
	Augment dataset.Augment
	// Mix is mix_index, mix_view, mix_lambda and mix_box; nil where they are null (not
	// mixed). Reused from one mixed row to the next: copy to keep. Schema version 2.
	Mix *Mixing
}

// A column is one column of the label-file contract as this package writes and reads it:
// the writer appends each row's value through put, ScanRows decodes it through get, and
// Export writes what value returns (JSON in jsonl; csvCell of it in csv).
//
// columns is the one place a column is added in this package: give it its entry here (one
// scalar line for a column of one value a row), a field in Row (what the writer is handed) or
// in derived (what the writer computes), and a field in StoredRow; schema.NewSchema gives its name and Arrow type, in the same order. Writer,
// Export, Verify, Inspect, LoadTargets and every ScanRows caller (traindata, precompute
// --views-from) then see it.
type column struct {
	name    string
	mode    schema.Mode // the store mode whose files have it; "" for every mode
	version int         // the first schema version that has it; 0: every version
	put     func(b array.Builder, r *Row, d *derived)
	get     func(a arrow.Array) func(i int, s *StoredRow)
	// value is s's value as Export writes it; nil is JSON's null and an empty csv cell.
	value func(s *StoredRow) any
}

var columns = []column{
	scalar[string, *array.StringBuilder, *array.String](schema.ColImageID, "",
		func(r *Row, _ *derived) string { return r.ImageID }, func(s *StoredRow) *string { return &s.ImageID }),
	scalar[int64, *array.Int64Builder, *array.Int64](schema.ColImageIndex, "",
		func(r *Row, _ *derived) int64 { return r.ImageIndex }, func(s *StoredRow) *int64 { return &s.ImageIndex }),
	{name: schema.ColLabel,
		put: func(b array.Builder, r *Row, _ *derived) {
			if r.Label == NoLabel {
				b.AppendNull()
			} else {
				b.(*array.Int32Builder).Append(r.Label)
			}
		},
		get: func(a arrow.Array) func(int, *StoredRow) {
			c := a.(*array.Int32)
			return func(i int, s *StoredRow) {
				s.Label = NoLabel
				if c.IsValid(i) {
					s.Label = c.Value(i)
				}
			}
		},
		value: func(s *StoredRow) any {
			if s.Label == NoLabel {
				return nil
			}
			return s.Label
		}},
	scalar[int32, *array.Int32Builder, *array.Int32](schema.ColView, "",
		func(r *Row, _ *derived) int32 { return r.View }, func(s *StoredRow) *int32 { return &s.View }),
	{name: schema.ColCrop,
		put: func(b array.Builder, r *Row, _ *derived) {
			l := b.(*array.FixedSizeListBuilder)
			l.Append(true)
			l.ValueBuilder().(*array.Float32Builder).AppendValues(r.Crop[:], nil)
		},
		get: func(a arrow.Array) func(int, *StoredRow) {
			c := a.(*array.FixedSizeList)
			v := c.ListValues().(*array.Float32).Float32Values()
			return func(i int, s *StoredRow) {
				off, _ := c.ValueOffsets(i)
				copy(s.Crop[:], v[off:off+4])
			}
		},
		value: func(s *StoredRow) any { return s.Crop }},
	scalar[bool, *array.BooleanBuilder, *array.Boolean](schema.ColFlip, "",
		func(r *Row, _ *derived) bool { return r.Flip }, func(s *StoredRow) *bool { return &s.Flip }),
	scalar[int32, *array.Int32Builder, *array.Int32](schema.ColTeacherHard, "",
		func(_ *Row, d *derived) int32 { return d.hard }, func(s *StoredRow) *int32 { return &s.TeacherHard }),
	{name: schema.ColTeacherLogits, mode: schema.ModeFull, put: putLogits, get: getLogits,
		value: func(s *StoredRow) any { return s.Logits }},
	{name: schema.ColTopKIndex, mode: schema.ModeTopK,
		put: func(b array.Builder, _ *Row, d *derived) {
			l := b.(*array.FixedSizeListBuilder)
			l.Append(true)
			l.ValueBuilder().(*array.Int32Builder).AppendValues(d.topk, nil)
		},
		get: func(a arrow.Array) func(int, *StoredRow) {
			c := a.(*array.FixedSizeList)
			v := c.ListValues().(*array.Int32).Int32Values()
			return func(i int, s *StoredRow) {
				lo, hi := c.ValueOffsets(i)
				s.TopKIndex = append(s.TopKIndex[:0], v[lo:hi]...)
			}
		},
		value: func(s *StoredRow) any { return s.TopKIndex }},
	{name: schema.ColTopKLogit, mode: schema.ModeTopK, put: putLogits, get: getLogits,
		value: func(s *StoredRow) any { return s.Logits }},
	scalar[float32, *array.Float32Builder, *array.Float32](schema.ColLogSumExp, schema.ModeTopK,
		func(_ *Row, d *derived) float32 { return d.lse }, func(s *StoredRow) *float32 { return &s.LogSumExp }),
	// Schema version 2: the replay parameters, each null where the view has none.
	{name: schema.ColRandAugment, version: 2,
		put: func(b array.Builder, r *Row, _ *derived) {
			l := b.(*array.ListBuilder)
			if len(r.Augment.Ops) == 0 {
				l.AppendNull()
				return
			}
			l.Append(true)
			sb := l.ValueBuilder().(*array.StructBuilder)
			for _, op := range r.Augment.Ops {
				sb.Append(true)
				sb.FieldBuilder(0).(*array.StringBuilder).Append(string(op.Name))
				sb.FieldBuilder(1).(*array.Float32Builder).Append(op.Magnitude)
			}
		},
		get: func(a arrow.Array) func(int, *StoredRow) {
			c := a.(*array.List)
			st := c.ListValues().(*array.Struct)
			names, mags := st.Field(0).(*array.String), st.Field(1).(*array.Float32)
			return func(i int, s *StoredRow) {
				s.Augment.Ops = s.Augment.Ops[:0]
				if c.IsNull(i) {
					return
				}
				lo, hi := c.ValueOffsets(i)
				for k := lo; k < hi; k++ {
					s.Augment.Ops = append(s.Augment.Ops, dataset.AugmentOp{Name: dataset.OpName(names.Value(int(k))), Magnitude: mags.Value(int(k))})
				}
			}
		},
		value: func(s *StoredRow) any {
			if len(s.Augment.Ops) == 0 {
				return nil
			}
			return s.Augment.Ops
		}},
	boxColumn(schema.ColEraseBox, func(r *Row) (dataset.Box, bool) { return r.Augment.Erase.Box, r.Augment.Erase.Box != dataset.Box{} },
		func(s *StoredRow, b dataset.Box, ok bool) { s.Augment.Erase.Box = b },
		func(s *StoredRow) (dataset.Box, bool) {
			return s.Augment.Erase.Box, s.Augment.Erase.Box != dataset.Box{}
		}),
	nullable[uint64, *array.Uint64Builder, *array.Uint64](schema.ColEraseSeed,
		func(r *Row) (uint64, bool) { return r.Augment.Erase.Seed, r.Augment.Erase.Box != dataset.Box{} },
		func(s *StoredRow, v uint64, ok bool) { s.Augment.Erase.Seed = v },
		func(s *StoredRow) (uint64, bool) { return s.Augment.Erase.Seed, s.Augment.Erase.Box != dataset.Box{} }),
	nullable[int64, *array.Int64Builder, *array.Int64](schema.ColMixIndex,
		func(r *Row) (int64, bool) { return mixOf(r).Index, r.Mix != nil },
		func(s *StoredRow, v int64, ok bool) { mixing(s, ok).Index = v },
		func(s *StoredRow) (int64, bool) { return storedMix(s).Index, s.Mix != nil }),
	nullable[int32, *array.Int32Builder, *array.Int32](schema.ColMixView,
		func(r *Row) (int32, bool) { return mixOf(r).View, r.Mix != nil },
		func(s *StoredRow, v int32, ok bool) { mixing(s, ok).View = v },
		func(s *StoredRow) (int32, bool) { return storedMix(s).View, s.Mix != nil }),
	nullable[float32, *array.Float32Builder, *array.Float32](schema.ColMixLambda,
		func(r *Row) (float32, bool) { return mixOf(r).Lambda, r.Mix != nil },
		func(s *StoredRow, v float32, ok bool) { mixing(s, ok).Lambda = v },
		func(s *StoredRow) (float32, bool) { return storedMix(s).Lambda, s.Mix != nil }),
	boxColumn(schema.ColMixBox, func(r *Row) (dataset.Box, bool) { return mixOf(r).Box, r.Mix != nil && r.Mix.CutMix },
		func(s *StoredRow, b dataset.Box, ok bool) {
			if s.Mix != nil || ok {
				m := mixing(s, true)
				m.Box, m.CutMix = b, ok
			}
		},
		func(s *StoredRow) (dataset.Box, bool) { return storedMix(s).Box, s.Mix != nil && s.Mix.CutMix }),
}

// mixOf is r's mixing, the zero Mixing when r is not mixed.
func mixOf(r *Row) Mixing {
	if r.Mix == nil {
		return Mixing{}
	}
	return *r.Mix
}

func storedMix(s *StoredRow) Mixing {
	if s.Mix == nil {
		return Mixing{}
	}
	return *s.Mix
}

// mixing is the Mixing a mix column's valid value goes into (s.Mix, made when nil); for a
// null value (ok false) s.Mix becomes nil, as the four mix columns are null together, and
// the value goes nowhere.
func mixing(s *StoredRow, ok bool) *Mixing {
	if !ok {
		s.Mix = nil
		return &Mixing{}
	}
	if s.Mix == nil {
		s.Mix = &Mixing{}
	}
	return s.Mix
}

// nullable is the entry of a nullable column of one value of type T a row (schema version
// 2): in gives the value and whether it is there (false: null), set takes what a row holds,
// out what export writes (nil for null).
func nullable[T any, B interface {
	Append(T)
	AppendNull()
}, A interface {
	Value(int) T
	IsNull(int) bool
}](name string, in func(*Row) (T, bool), set func(*StoredRow, T, bool), out func(*StoredRow) (T, bool)) column {
	return column{name: name, version: 2,
		put: func(b array.Builder, r *Row, _ *derived) {
			if v, ok := in(r); ok {
				b.(B).Append(v)
			} else {
				b.(B).AppendNull()
			}
		},
		get: func(a arrow.Array) func(int, *StoredRow) {
			c := a.(A)
			return func(i int, s *StoredRow) {
				var zero T
				if c.IsNull(i) {
					set(s, zero, false)
					return
				}
				set(s, c.Value(i), true)
			}
		},
		value: func(s *StoredRow) any {
			if v, ok := out(s); ok {
				return v
			}
			return nil
		}}
}

// boxColumn is the entry of a nullable box column (list<float32> of four: top, left, height,
// width as fractions of the view; a list, not crop's fixed_size_list, since Parquet writers
// cannot store a null fixed-size list), schema version 2, as nullable's.
func boxColumn(name string, in func(*Row) (dataset.Box, bool), set func(*StoredRow, dataset.Box, bool), out func(*StoredRow) (dataset.Box, bool)) column {
	return column{name: name, version: 2,
		put: func(b array.Builder, r *Row, _ *derived) {
			l := b.(*array.ListBuilder)
			bx, ok := in(r)
			if !ok {
				l.AppendNull()
				return
			}
			l.Append(true)
			l.ValueBuilder().(*array.Float32Builder).AppendValues([]float32{bx.Top, bx.Left, bx.Height, bx.Width}, nil)
		},
		get: func(a arrow.Array) func(int, *StoredRow) {
			c := a.(*array.List)
			v := c.ListValues().(*array.Float32).Float32Values()
			return func(i int, s *StoredRow) {
				if c.IsNull(i) {
					set(s, dataset.Box{}, false)
					return
				}
				off, _ := c.ValueOffsets(i)
				set(s, dataset.Box{Top: v[off], Left: v[off+1], Height: v[off+2], Width: v[off+3]}, true)
			}
		},
		value: func(s *StoredRow) any {
			if bx, ok := out(s); ok {
				return [4]float32{bx.Top, bx.Left, bx.Height, bx.Width}
			}
			return nil
		}}
}

// scalar is the entry of a column of one value of type T a row: the writer appends in(r, d)
// with a builder of type B, a reader sets *field(s) from an array of type A, and export writes
// *field(s). A new scalar column is one such line in columns.
func scalar[T any, B interface{ Append(T) }, A interface{ Value(int) T }](name string, mode schema.Mode,
	in func(*Row, *derived) T, field func(*StoredRow) *T) column {
	return column{name: name, mode: mode,
		put: func(b array.Builder, r *Row, d *derived) { b.(B).Append(in(r, d)) },
		get: func(a arrow.Array) func(int, *StoredRow) {
			c := a.(A)
			return func(i int, s *StoredRow) { *field(s) = c.Value(i) }
		},
		value: func(s *StoredRow) any { return *field(s) }}
}

// putLogits appends the stored logits (all K in mode full, the top k in mode topk) in the
// store's dtype.
func putLogits(b array.Builder, _ *Row, d *derived) {
	l := b.(*array.FixedSizeListBuilder)
	l.Append(true)
	switch vb := l.ValueBuilder().(type) {
	case *array.Float32Builder:
		vb.AppendValues(d.vals, nil)
	case *array.Float16Builder:
		vb.AppendValues(d.f16, nil)
	}
}

// getLogits reads stored logits as float32, float16 widened exactly (arrow's Num.Float32
// misreads subnormals).
func getLogits(a arrow.Array) func(int, *StoredRow) {
	c := a.(*array.FixedSizeList)
	switch v := c.ListValues().(type) {
	case *array.Float16:
		vals := v.Values()
		return func(i int, s *StoredRow) {
			lo, hi := c.ValueOffsets(i)
			s.Logits = s.Logits[:0]
			for _, x := range vals[lo:hi] {
				s.Logits = append(s.Logits, half.ToFloat32(x.Uint16()))
			}
		}
	default:
		vals := v.(*array.Float32).Float32Values()
		return func(i int, s *StoredRow) {
			lo, hi := c.ValueOffsets(i)
			s.Logits = append(s.Logits[:0], vals[lo:hi]...)
		}
	}
}

// columnsOf lists the columns of a store of md's mode and schema version, in file order.
func columnsOf(md schema.Metadata) []column {
	var out []column
	for _, c := range columns {
		if (c.mode == "" || c.mode == md.Store.Mode) && c.version <= md.SchemaVersion {
			out = append(out, c)
		}
	}
	return out
}

func columnNamed(name string) (column, bool) {
	for _, c := range columns {
		if c.name == name {
			return c, true
		}
	}
	return column{}, false
}

// derived is what the writer computes from a row's logits: teacher_hard, the stored logits
// (all K, or the top k), in mode topk their classes and logsumexp, in a float16 store the
// logits as float16.
type derived struct {
	hard int32
	lse  float32
	topk []int32   // mode topk: classes by descending logit
	vals []float32 // the logits to store
	f16  []float16.Num
}

// ScanRows streams shard i row by row, decoding the named columns (every column if none) into
// one StoredRow reused from row to row; row counts from 0 within the shard. It is ScanShard
// for readers that want values, not Arrow arrays.
func (r *Reader) ScanRows(ctx context.Context, i int, names []string, fn func(row int, s *StoredRow) error) error {
	if len(names) == 0 {
		for _, c := range columnsOf(r.Meta) {
			names = append(names, c.name)
		}
	}
	var s StoredRow
	row := 0
	return r.ScanShard(ctx, i, names, func(rec arrow.RecordBatch) error {
		gets := make([]func(int, *StoredRow), len(names))
		for j, name := range names {
			c, ok := columnNamed(name)
			if !ok {
				return fmt.Errorf("store %s: %w: no column %q", r.Dir, ErrContent, name)
			}
			gets[j] = c.get(rec.Column(rec.Schema().FieldIndices(name)[0]))
		}
		for k := range int(rec.NumRows()) {
			for _, get := range gets {
				get(k, &s)
			}
			if err := fn(row, &s); err != nil {
				return err
			}
			row++
		}
		return nil
	})
}
