package traindata_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/traindata"
)

const testdata = "../testdata"

// Fashion-MNIST-like statistics the test stores are made with.
var (
	fmMean = []float64{0.286}
	fmStd  = []float64{0.353}
)

func idxSpec(name string) string { return "idx:" + filepath.Join(testdata, "idx", name) }

// storeKey names a store made once per test binary.
type storeKey struct {
	data  string
	views int
	topk  bool
	limit int
}

var (
	storesMu sync.Mutex
	stores   = map[storeKey]string{}
	storeDir string
)

func TestMain(m *testing.M) {
	var err error
	if storeDir, err = os.MkdirTemp("", "traindata-test-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(storeDir)
	os.Exit(code)
}

// makeStore labels data with the tiny grey teacher (a real precompute run) and returns the
// store folder; stores are shared by the tests of one run.
func makeStore(t testing.TB, data string, views int, topk bool) string {
	t.Helper()
	return makeStoreOf(t, storeKey{data, views, topk, 0})
}

// makeStoreLimit labels the first limit images of data (all for 0).
func makeStoreLimit(t testing.TB, data string, views, limit int) string {
	t.Helper()
	return makeStoreOf(t, storeKey{data, views, false, limit})
}

func makeStoreOf(t testing.TB, k storeKey) string {
	t.Helper()
	storesMu.Lock()
	defer storesMu.Unlock()
	data, views, topk := k.data, k.views, k.topk
	if dir, ok := stores[k]; ok {
		return dir
	}
	dir := filepath.Join(storeDir, fmt.Sprintf("%s-%d-%d", filepath.Base(data), views, k.limit))
	if topk {
		dir += "-topk"
	}
	o := precompute.Options{Model: filepath.Join(testdata, "models", "tiny_gray.onnx"), Data: data, Out: dir,
		Mean: fmMean, Std: fmStd, Workers: 1, Threads: 1, Views: views, Seed: 7, Scale: [2]float64{0.35, 1}, Limit: k.limit}
	if topk {
		o.StoreMode, o.TopK, o.DType = schema.ModeTopK, 3, schema.Float16
	}
	job, err := precompute.New(o)
	if err != nil {
		t.Fatalf("precompute.New: %v", err)
	}
	defer job.Close()
	if _, err := job.Run(context.Background()); err != nil {
		t.Fatalf("precompute: %v", err)
	}
	stores[k] = dir
	return dir
}

// storedRow is a row's geometry and teacher label as the store file has it.
type storedRow struct {
	crop [4]float32
	flip bool
	hard int32
}

// readRows reads (image_id, view) → row straight from the store's files.
func readRows(t testing.TB, dir string) map[[2]any]storedRow {
	t.Helper()
	r, err := store.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[[2]any]storedRow{}
	err = r.Scan(context.Background(), []string{schema.ColImageID, schema.ColView, schema.ColCrop, schema.ColFlip, schema.ColTeacherHard},
		func(rec arrow.RecordBatch) error {
			ids := rec.Column(0).(*array.String)
			views := rec.Column(1).(*array.Int32)
			crops := rec.Column(2).(*array.FixedSizeList)
			cv := crops.ListValues().(*array.Float32)
			flips := rec.Column(3).(*array.Boolean)
			hard := rec.Column(4).(*array.Int32)
			for i := range int(rec.NumRows()) {
				var sr storedRow
				off, _ := crops.ValueOffsets(i)
				for c := range 4 {
					sr.crop[c] = cv.Value(int(off) + c)
				}
				sr.flip, sr.hard = flips.Value(i), hard.Value(i)
				out[[2]any{ids.Value(i), int(views.Value(i))}] = sr
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// collect returns copies of every batch of an epoch (eval when epoch < 0).
func collect(t testing.TB, s *traindata.Set, epoch int) []traindata.Batch {
	t.Helper()
	var out []traindata.Batch
	fn := func(b *traindata.Batch) error {
		c := *b
		c.Images = append([]float32(nil), b.Images...)
		c.Labels = append([]int(nil), b.Labels...)
		c.TeacherHard = append([]int(nil), b.TeacherHard...)
		c.TeacherProbs = append([]float32(nil), b.TeacherProbs...)
		c.ImageIndex = append([]int(nil), b.ImageIndex...)
		c.ImageID = append([]string(nil), b.ImageID...)
		c.View = append([]dataset.View(nil), b.View...)
		c.TargetView = append([]int(nil), b.TargetView...)
		c.Augment = append([]dataset.Augment(nil), b.Augment...)
		c.Mix = append([]dataset.Mix(nil), b.Mix...)
		c.MixPartner = append([]int(nil), b.MixPartner...)
		c.MixLambda = append([]float32(nil), b.MixLambda...)
		c.MixLabels = append([]int(nil), b.MixLabels...)
		c.MixTeacherHard = append([]int(nil), b.MixTeacherHard...)
		out = append(out, c)
		return nil
	}
	var err error
	if epoch < 0 {
		err = s.Eval(context.Background(), fn)
	} else {
		err = s.Epoch(context.Background(), epoch, 0, fn)
	}
	if err != nil {
		t.Fatalf("epoch %d: %v", epoch, err)
	}
	return out
}

func renderConfig() dataset.Config {
	cfg, _ := dataset.Config{Crop: 28, Mean: []float64{0.286}, Std: []float64{0.353}, Channels: 1}.Defaults()
	return cfg
}
