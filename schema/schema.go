package schema

import (
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
)

// The schema versions this package writes and reads; a file of another version is refused
// with ErrVersion. Version 2 adds the nullable replay columns of a store whose views were
// augmented (Metadata.Augment: RandAugment's ops, the erased box, the Mixup/CutMix partner,
// λ and box); a store without augmentation is written as VersionPlain, exactly as before
// version 2 existed.
const (
	VersionPlain = 1
	Version      = 2 // the newest
)

// VersionFor is the schema version of a store with (augmented) or without replay columns.
func VersionFor(augmented bool) int {
	if augmented {
		return Version
	}
	return VersionPlain
}

// Column names of schema version 1, in file order.
const (
	ColImageID       = "image_id"
	ColImageIndex    = "image_index"
	ColLabel         = "label"
	ColView          = "view"
	ColCrop          = "crop"
	ColFlip          = "flip"
	ColTeacherHard   = "teacher_hard"
	ColTeacherLogits = "teacher_logits" // mode full
	ColTopKIndex     = "topk_index"     // mode topk
	ColTopKLogit     = "topk_logit"     // mode topk
	ColLogSumExp     = "logsumexp"      // mode topk
)

// Column names schema version 2 adds, after those of version 1: each view's replay
// parameters (dataset.Augment, dataset.Mix), null where the view has none.
const (
	ColRandAugment = "randaugment" // list<struct<name: utf8, magnitude: float32>>: the ops applied, in order
	ColEraseBox    = "erase_box"   // list<float32> of 4: (top, left, height, width), fractions of the view
	ColEraseSeed   = "erase_seed"  // uint64: the erased box's noise
	ColMixIndex    = "mix_index"   // int64: the partner's image_index
	ColMixView     = "mix_view"    // int32: the partner's view
	ColMixLambda   = "mix_lambda"  // float32: the own view's weight λ
	ColMixBox      = "mix_box"     // list<float32> of 4: CutMix's pasted box, fractions of the view; null for Mixup
)

// OpType is the element type of the randaugment column: one RandAugment op
// (dataset.AugmentOp), its name and signed magnitude.
var OpType = arrow.StructOf(
	arrow.Field{Name: "name", Type: arrow.BinaryTypes.String},
	arrow.Field{Name: "magnitude", Type: arrow.PrimitiveTypes.Float32},
)

// Sentinel errors. Errors returned by this package wrap one of them.
var (
	ErrVersion  = errors.New("schema: unsupported schema version")
	ErrMismatch = errors.New("schema: mismatch")
	ErrMetadata = errors.New("schema: bad metadata")
)

// Mode is how a store keeps the teacher's logits.
type Mode string

const (
	ModeFull Mode = "full" // all K logits per row
	ModeTopK Mode = "topk" // the k largest logits, their classes, and logsumexp over all K
)

// DType is the element type of the stored logits.
type DType string

const (
	Float32 DType = "float32"
	Float16 DType = "float16"
)

// ArrowType returns the Arrow type of d.
func (d DType) ArrowType() (arrow.DataType, error) {
	switch d {
	case Float32:
		return arrow.PrimitiveTypes.Float32, nil
	case Float16:
		return arrow.FixedWidthTypes.Float16, nil
	}
	return nil, fmt.Errorf("%w: deitkd.store.dtype %q (want float32 or float16)", ErrMetadata, string(d))
}

// NewSchema returns the Arrow schema of md's version for md's store mode, k and
// dtype, with md encoded as its schema metadata. List elements are
// non-nullable: a row always holds every logit. Version 2 appends the replay columns,
// each nullable.
func NewSchema(md Metadata) (*arrow.Schema, error) {
	if err := md.Check(); err != nil {
		return nil, err
	}
	vt, err := md.Store.DType.ArrowType()
	if err != nil {
		return nil, err
	}
	fields := []arrow.Field{
		{Name: ColImageID, Type: arrow.BinaryTypes.String},
		{Name: ColImageIndex, Type: arrow.PrimitiveTypes.Int64},
		{Name: ColLabel, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: ColView, Type: arrow.PrimitiveTypes.Int32},
		{Name: ColCrop, Type: arrow.FixedSizeListOfNonNullable(4, arrow.PrimitiveTypes.Float32)},
		{Name: ColFlip, Type: arrow.FixedWidthTypes.Boolean},
		{Name: ColTeacherHard, Type: arrow.PrimitiveTypes.Int32},
	}
	switch md.Store.Mode {
	case ModeFull:
		fields = append(fields, arrow.Field{Name: ColTeacherLogits, Type: arrow.FixedSizeListOfNonNullable(int32(md.NumClasses), vt)})
	case ModeTopK:
		fields = append(fields,
			arrow.Field{Name: ColTopKIndex, Type: arrow.FixedSizeListOfNonNullable(int32(md.Store.K), arrow.PrimitiveTypes.Int32)},
			arrow.Field{Name: ColTopKLogit, Type: arrow.FixedSizeListOfNonNullable(int32(md.Store.K), vt)},
			arrow.Field{Name: ColLogSumExp, Type: arrow.PrimitiveTypes.Float32},
		)
	}
	if md.SchemaVersion >= 2 {
		// A box is a list of four, not crop's fixed_size_list: Parquet cannot store a null
		// fixed-size list (pqarrow refuses one).
		box := arrow.ListOfNonNullable(arrow.PrimitiveTypes.Float32)
		fields = append(fields,
			arrow.Field{Name: ColRandAugment, Type: arrow.ListOfNonNullable(OpType), Nullable: true},
			arrow.Field{Name: ColEraseBox, Type: box, Nullable: true},
			arrow.Field{Name: ColEraseSeed, Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
			arrow.Field{Name: ColMixIndex, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			arrow.Field{Name: ColMixView, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			arrow.Field{Name: ColMixLambda, Type: arrow.PrimitiveTypes.Float32, Nullable: true},
			arrow.Field{Name: ColMixBox, Type: box, Nullable: true},
		)
	}
	meta, err := md.Encode()
	if err != nil {
		return nil, err
	}
	return arrow.NewSchema(fields, &meta), nil
}

// Validate checks that s is a label-file schema equal to the one expected
// describes: first the schema version, then each column (name, type,
// nullability) in order, then each metadata key except created_by. The error
// names the first difference.
func Validate(s *arrow.Schema, expected Metadata) error {
	got, err := FromSchema(s)
	if err != nil {
		return err
	}
	want, err := NewSchema(expected)
	if err != nil {
		return err
	}
	if err := sameColumns(s, want); err != nil {
		return err
	}
	return Diff(got, expected)
}

// FromSchema decodes the metadata of s.
func FromSchema(s *arrow.Schema) (Metadata, error) {
	m := s.Metadata()
	return Decode(m.Keys(), m.Values())
}

func sameColumns(got, want *arrow.Schema) error {
	for i, w := range want.Fields() {
		if i >= got.NumFields() {
			return fmt.Errorf("%w: column %d %q: missing", ErrMismatch, i, w.Name)
		}
		g := got.Field(i)
		if g.Name != w.Name {
			return fmt.Errorf("%w: column %d: file has %q, want %q", ErrMismatch, i, g.Name, w.Name)
		}
		if !arrow.TypeEqual(g.Type, w.Type) {
			return fmt.Errorf("%w: column %q: file has type %s, want %s", ErrMismatch, w.Name, g.Type, w.Type)
		}
		if g.Nullable != w.Nullable {
			return fmt.Errorf("%w: column %q: file has nullable=%v, want %v", ErrMismatch, w.Name, g.Nullable, w.Nullable)
		}
	}
	if got.NumFields() > want.NumFields() {
		return fmt.Errorf("%w: column %d %q: not in the contract", ErrMismatch, want.NumFields(), got.Field(want.NumFields()).Name)
	}
	return nil
}
