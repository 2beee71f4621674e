package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/schema"
)

// augmentedMeta is testMeta as a version-2 store: DeiT's augmentation recorded.
func augmentedMeta(mode schema.Mode, dtype schema.DType, classes, k, views int, images int64) schema.Metadata {
	md := testMeta(mode, dtype, classes, k, views, images)
	ra, _ := dataset.ParseRandAugment("rand-m9-mstd0.5-inc1")
	md.SchemaVersion = schema.Version
	md.Augment = &dataset.AugmentConfig{RandAugment: &ra, EraseProb: 0.25, Mix: dataset.MixConfig{MixupAlpha: 0.8, CutMixAlpha: 1, Prob: 1, SwitchProb: 0.5}}
	return md
}

// TestReplayColumns writes rows with and without each replay parameter into a version-2 store
// of each format and mode and reads back exactly what was written (null where a row has none),
// through ScanRows and Export; a version-1 store refuses a row with them.
func TestReplayColumns(t *testing.T) {
	ops, params := replayParams()
	for _, f := range []Format{FormatParquet, FormatArrow} {
		for _, mode := range []schema.Mode{schema.ModeFull, schema.ModeTopK} {
			t.Run(string(f)+"-"+string(mode), func(t *testing.T) {
				dir := t.TempDir()
				md := augmentedMeta(mode, schema.Float16, 12, 3, len(params), 3)
				w, err := OpenWriter(dir, md, smallOpts(f))
				if err != nil {
					t.Fatal(err)
				}
				var want []Row
				for i := range int64(3) {
					for v, r := range synthRows(5, i, 12, len(params)) {
						r.Augment, r.Mix = params[v].aug, params[v].mix
						if err := w.Write(r); err != nil {
							t.Fatal(err)
						}
						want = append(want, r)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				r, err := OpenReader(dir)
				if err != nil {
					t.Fatal(err)
				}
				if r.Meta.SchemaVersion != schema.Version || r.Manifest.SchemaVersion != schema.Version {
					t.Fatalf("schema version %d (manifest %d), want %d", r.Meta.SchemaVersion, r.Manifest.SchemaVersion, schema.Version)
				}
				n := 0
				for shard := range r.Manifest.Shards {
					err := r.ScanRows(context.Background(), shard, nil, func(_ int, s *StoredRow) error {
						wr := want[n]
						n++
						var mix *Mixing
						if s.Mix != nil {
							m := *s.Mix
							mix = &m
						}
						if len(s.Augment.Ops) != len(wr.Augment.Ops) || (len(wr.Augment.Ops) > 0 && !reflect.DeepEqual(s.Augment.Ops, wr.Augment.Ops)) ||
							s.Augment.Erase != wr.Augment.Erase || !reflect.DeepEqual(mix, wr.Mix) {
							t.Errorf("row %d (view %d): read %+v mix %+v, wrote %+v mix %+v", n-1, wr.View, s.Augment, mix, wr.Augment, wr.Mix)
						}
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				if n != len(want) {
					t.Fatalf("%d rows read, %d written", n, len(want))
				}
				if rep, err := Verify(context.Background(), dir); err != nil || len(rep.Problems) > 0 {
					t.Fatalf("Verify: %v %v", err, rep.Problems)
				}
				var buf bytes.Buffer
				if err := Export(context.Background(), r, &buf, "jsonl", 0); err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(buf.String(), "\n")
				for _, s := range []string{`"randaugment":null,"erase_box":null,"erase_seed":null,"mix_index":null,"mix_view":null,"mix_lambda":null,"mix_box":null`,
					`"randaugment":[{"name":"Rotate","magnitude":-8.25},{"name":"PosterizeIncreasing","magnitude":9}],"erase_box":[0.25,0.125,0.5,0.375],"erase_seed":9223372036854775813,"mix_index":2,"mix_view":3,"mix_lambda":0.625,"mix_box":null`,
					`"mix_index":0,"mix_view":1,"mix_lambda":0.75,"mix_box":[0.25,0.125,0.5,0.375]`} {
					if !strings.Contains(buf.String(), s) {
						t.Errorf("jsonl lacks %s; first rows:\n%s", s, strings.Join(lines[:min(3, len(lines))], "\n"))
					}
				}
			})
		}
	}
	t.Run("version-1-refuses", func(t *testing.T) {
		w, err := OpenWriter(t.TempDir(), testMeta(schema.ModeFull, schema.Float32, 12, 0, 4, 3), smallOpts(FormatParquet))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		r := synthRows(5, 0, 12, 4)[1]
		r.Augment.Ops = ops
		if err := w.Write(r); !errors.Is(err, ErrRow) || !strings.Contains(err.Error(), "schema version 1") {
			t.Errorf("an augmented row in a version-1 store: %v", err)
		}
	})
	t.Run("bad-values-refused", func(t *testing.T) {
		w, err := OpenWriter(t.TempDir(), augmentedMeta(schema.ModeFull, schema.Float32, 12, 0, 4, 3), smallOpts(FormatParquet))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		for name, set := range map[string]func(*Row){
			"lambda above 1":     func(r *Row) { r.Mix = &Mixing{Index: 1, View: 1, Mix: dataset.Mix{Lambda: 1.5}} },
			"view 0 partner":     func(r *Row) { r.Mix = &Mixing{Index: 1, View: 0, Mix: dataset.Mix{Lambda: 0.5}} },
			"cutmix without box": func(r *Row) { r.Mix = &Mixing{Index: 1, View: 1, Mix: dataset.Mix{Lambda: 0.5, CutMix: true}} },
			"erase box past edge": func(r *Row) {
				r.Augment.Erase = dataset.Erase{Box: dataset.Box{Top: 0.75, Left: 0, Height: 0.5, Width: 0.5}}
			},
		} {
			r := synthRows(5, 0, 12, 4)[1]
			set(&r)
			if err := w.Write(r); !errors.Is(err, ErrRow) {
				t.Errorf("%s: %v, want ErrRow", name, err)
			}
		}
	})
}

type replayParam struct {
	aug dataset.Augment
	mix *Mixing
}

// replayParams are four views' replay parameters: none (view 0), all of them with Mixup,
// one op with CutMix, erasing only.
func replayParams() ([]dataset.AugmentOp, []replayParam) {
	ops := []dataset.AugmentOp{{Name: "Rotate", Magnitude: -8.25}, {Name: "PosterizeIncreasing", Magnitude: 9}}
	box := dataset.Box{Top: 0.25, Left: 0.125, Height: 0.5, Width: 0.375}
	params := []replayParam{
		{}, // view 0: none
		{dataset.Augment{Ops: ops, Erase: dataset.Erase{Box: box, Seed: 1<<63 + 5}}, &Mixing{Index: 2, View: 3, Mix: dataset.Mix{Lambda: 0.625}}},
		{dataset.Augment{Ops: ops[:1]}, &Mixing{Index: 0, View: 1, Mix: dataset.Mix{Lambda: 0.75, CutMix: true, Box: box}}},
		{dataset.Augment{Erase: dataset.Erase{Box: box, Seed: 9}}, nil},
	}
	return ops, params
}

// writeReplayStore writes a version-2 store of three images, each view v with params[v].
func writeReplayStore(t *testing.T, dir string, md schema.Metadata, f Format, params []replayParam) []Row {
	t.Helper()
	w, err := OpenWriter(dir, md, smallOpts(f))
	if err != nil {
		t.Fatal(err)
	}
	var want []Row
	for i := range int64(3) {
		for v, r := range synthRows(5, i, md.NumClasses, len(params)) {
			r.Augment, r.Mix = params[v].aug, params[v].mix
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
			want = append(want, r)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

// TestInteropReplay reads a version-2 store with DuckDB, hyparquet and parquet-wasm: every
// replay column (with DuckDB, its type), null where the Go row has no such parameter.
func TestInteropReplay(t *testing.T) {
	_, params := replayParams()
	dir := t.TempDir()
	md := augmentedMeta(schema.ModeFull, schema.Float32, 12, 0, len(params), 3)
	want := writeReplayStore(t, dir, md, FormatParquet, params)
	for _, rd := range parquetReaders {
		t.Run(rd.name, func(t *testing.T) { checkReplayRead(t, rd.name, runNode(t, rd.script, dir), want) })
	}
	t.Run("apache-arrow", func(t *testing.T) {
		adir := t.TempDir()
		want := writeReplayStore(t, adir, md, FormatArrow, params)
		files, _ := filepath.Glob(filepath.Join(adir, "*.arrow"))
		sort.Strings(files)
		checkReplayRead(t, "apache-arrow", runNode(t, "read_arrow.mjs", files...), want)
	})
}

// checkReplayRead compares the replay columns a reader read with the rows Go wrote; DuckDB's
// column types are checked too.
func checkReplayRead(t *testing.T, reader string, res nodeResult, want []Row) {
	types := reader == "duckdb"
	for col, typ := range map[string]string{
		schema.ColRandAugment: "STRUCT(\"name\" VARCHAR, magnitude FLOAT)[]", schema.ColEraseBox: "FLOAT[]", schema.ColEraseSeed: "UBIGINT",
		schema.ColMixIndex: "BIGINT", schema.ColMixView: "INTEGER", schema.ColMixLambda: "FLOAT", schema.ColMixBox: "FLOAT[]",
	} {
		if types && res.Types[col] != typ {
			t.Errorf("DuckDB sees %s as %q, want %q", col, res.Types[col], typ)
		}
	}
	if len(res.Rows) != len(want) {
		t.Fatalf("%s read %d rows, want %d", reader, len(res.Rows), len(want))
	}
	box := func(b dataset.Box) string { return fmt.Sprint([]float32{b.Top, b.Left, b.Height, b.Width}) }
	for n, w := range want {
		got := res.Rows[n]
		cell := func(col string) string {
			v, ok := got[col]
			if !ok {
				t.Fatalf("row %d: no column %s", n, col)
			}
			if v == nil {
				return "null"
			}
			b, _ := json.Marshal(v)
			return strings.Trim(strings.ReplaceAll(string(b), ",", " "), `"`)
		}
		wantOps := "null"
		if len(w.Augment.Ops) > 0 {
			var parts []string
			for _, op := range w.Augment.Ops {
				parts = append(parts, fmt.Sprintf(`{"magnitude":%v "name":"%s"}`, op.Magnitude, op.Name)) // keys as json.Marshal sorts a map's
			}
			wantOps = "[" + strings.Join(parts, " ") + "]"
		}
		wantCells := map[string]string{schema.ColRandAugment: wantOps, schema.ColEraseBox: "null", schema.ColEraseSeed: "null",
			schema.ColMixIndex: "null", schema.ColMixView: "null", schema.ColMixLambda: "null", schema.ColMixBox: "null"}
		if e := w.Augment.Erase; e.Box != (dataset.Box{}) {
			wantCells[schema.ColEraseBox], wantCells[schema.ColEraseSeed] = box(e.Box), fmt.Sprint(e.Seed)
		}
		if m := w.Mix; m != nil {
			wantCells[schema.ColMixIndex], wantCells[schema.ColMixView], wantCells[schema.ColMixLambda] = fmt.Sprint(m.Index), fmt.Sprint(m.View), fmt.Sprint(m.Lambda)
			if m.CutMix {
				wantCells[schema.ColMixBox] = box(m.Box)
			}
		}
		for col, wc := range wantCells {
			if gc := cell(col); gc != wc {
				t.Errorf("row %d (view %d): %s reads %s as %s, want %s", n, w.View, reader, col, gc, wc)
			}
		}
	}
}
