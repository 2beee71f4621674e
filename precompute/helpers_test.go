package precompute_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/internal/half"
	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/teacher"
)

const (
	testdata = "../testdata"
	models   = "../testdata/models"
)

func model(name string) string { return filepath.Join(models, name) }

// row is one stored row, decoded.
type row struct {
	id       string
	index    int64
	label    int32 // store.NoLabel for null
	view     int32
	crop     [4]float32
	flip     bool
	hard     int32
	logits   []float32 // mode full
	topIdx   []int32   // mode topk
	topLogit []float32
	lse      float32
}

// readStore reads every row of a store in file order (manifest order of shards) and its
// metadata. dir may also be a per-writer manifest file.
func readStore(t testing.TB, dir string) ([]row, schema.Metadata) {
	t.Helper()
	r, err := store.OpenReader(dir)
	if err != nil {
		t.Fatalf("OpenReader(%s): %v", dir, err)
	}
	var rows []row
	err = r.Scan(context.Background(), nil, func(rec arrow.RecordBatch) error {
		col := func(name string) arrow.Array {
			idx := rec.Schema().FieldIndices(name)
			if len(idx) != 1 {
				return nil
			}
			return rec.Column(idx[0])
		}
		ids := col(schema.ColImageID).(*array.String)
		idxs := col(schema.ColImageIndex).(*array.Int64)
		labels := col(schema.ColLabel).(*array.Int32)
		views := col(schema.ColView).(*array.Int32)
		crops := col(schema.ColCrop).(*array.FixedSizeList)
		cropVals := crops.ListValues().(*array.Float32)
		flips := col(schema.ColFlip).(*array.Boolean)
		hards := col(schema.ColTeacherHard).(*array.Int32)
		for i := range int(rec.NumRows()) {
			rw := row{id: ids.Value(i), index: idxs.Value(i), label: store.NoLabel, view: views.Value(i),
				flip: flips.Value(i), hard: hards.Value(i)}
			if labels.IsValid(i) {
				rw.label = labels.Value(i)
			}
			s, _ := crops.ValueOffsets(i)
			for c := range 4 {
				rw.crop[c] = cropVals.Value(int(s) + c)
			}
			if a := col(schema.ColTeacherLogits); a != nil {
				rw.logits = floats(a.(*array.FixedSizeList), i)
			}
			if a := col(schema.ColTopKIndex); a != nil {
				l := a.(*array.FixedSizeList)
				s, e := l.ValueOffsets(i)
				v := l.ListValues().(*array.Int32)
				for j := s; j < e; j++ {
					rw.topIdx = append(rw.topIdx, v.Value(int(j)))
				}
				rw.topLogit = floats(col(schema.ColTopKLogit).(*array.FixedSizeList), i)
				rw.lse = col(schema.ColLogSumExp).(*array.Float32).Value(i)
			}
			rows = append(rows, rw)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	return rows, r.Meta
}

// floats returns list element i as float32, whichever the stored dtype.
func floats(l *array.FixedSizeList, i int) []float32 {
	s, e := l.ValueOffsets(i)
	out := make([]float32, 0, e-s)
	switch v := l.ListValues().(type) {
	case *array.Float32:
		for j := s; j < e; j++ {
			out = append(out, v.Value(int(j)))
		}
	case *array.Float16:
		for j := s; j < e; j++ {
			out = append(out, half.ToFloat32(v.Value(int(j)).Uint16()))
		}
	}
	return out
}

// runJob runs precompute with o and returns the summary; it fails the test on any error.
func runJob(t testing.TB, o precompute.Options) precompute.Summary {
	t.Helper()
	job, err := precompute.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer job.Close()
	sum, err := job.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return sum
}

// reference renders view v of image i of src as the pipeline should, from first principles:
// dataset's own Load, ViewFor and Render.
func reference(t testing.TB, src dataset.Source, i, v int, cfg dataset.Config, vc dataset.ViewConfig) ([]float32, dataset.View) {
	t.Helper()
	img, err := src.Load(i, cfg.Channels)
	if err != nil {
		t.Fatalf("Load(%d): %v", i, err)
	}
	view, err := dataset.ViewFor(img.Width, img.Height, i, v, cfg, vc)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, dataset.TensorLen(cfg.Channels, cfg.Crop))
	if err := dataset.Render(dst, img, view, cfg.Crop, cfg); err != nil {
		t.Fatal(err)
	}
	return dst, view
}

// openTeacher opens a model for reference runs.
func openTeacher(t testing.TB, name string, threads int) *teacher.Model {
	t.Helper()
	m, err := teacher.Open(model(name), teacher.Options{Threads: threads})
	if err != nil {
		t.Fatalf("teacher.Open(%s): %v", name, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// writeFile writes a small text file into t.TempDir() and returns its path.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// imagesClassMap maps testdata/images' class folders onto tiny_regnet's first three classes.
func imagesClassMap(t testing.TB) string {
	return writeFile(t, "classmap.tsv", "# folder\tteacher class\njpeg\t0\nother\tb_class\npng\t2\n")
}

// maxAbsDiff is the largest |a[i]-b[i]|; lengths must agree.
func maxAbsDiff(t testing.TB, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("lengths %d and %d", len(a), len(b))
	}
	var m float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		if d < 0 {
			d = -d
		}
		m = max(m, d)
	}
	return m
}
