package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/schema"
)

// interopDir holds the Node.js readers and their node_modules (make setup).
var interopDir = filepath.Join("..", "interop")

// runNode runs an interop script and decodes its JSON output. A missing
// node or missing packages fail the test: the interop check is part of
// make test, not optional.
func runNode(t *testing.T, script string, args ...string) nodeResult {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found on PATH: run `make setup` (it installs Node.js and the interop packages): %v", err)
	}
	for _, pkg := range []string{"@duckdb/node-api", "apache-arrow", "hyparquet", "hyparquet-compressors", "parquet-wasm"} {
		if _, err := os.Stat(filepath.Join(interopDir, "node_modules", pkg)); err != nil {
			t.Fatalf("interop/node_modules/%s missing: run `make setup`", pkg)
		}
	}
	abs := make([]string, len(args))
	for i, a := range args {
		abs[i], _ = filepath.Abs(a)
	}
	cmd := exec.Command(node, append([]string{script}, abs...)...)
	cmd.Dir = interopDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	var res nodeResult
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("node %s output: %v", script, err)
	}
	return res
}

type nodeResult struct {
	Rows     []map[string]any  `json:"rows"`
	Metadata map[string]string `json:"metadata"`
	Types    map[string]string `json:"types"`
}

// parquetReaders are the independent Parquet implementations the interop
// test reads our Parquet stores with: each must see the same rows and
// metadata. DuckDB is C++; hyparquet is pure JavaScript (ZSTD through
// hyparquet-compressors) and decodes FLOAT16 to numbers itself; parquet-wasm
// is arrow-rs in WebAssembly, its Arrow output read with apache-arrow.
// logitType, where set, is the type the reader must report for the logits
// column (n values of dtype): hyparquet reports the Parquet logical types,
// parquet-wasm the Arrow types restored from the stored Arrow schema.
var parquetReaders = []struct {
	name, script string
	logitType    func(dtype schema.DType, n int) string
}{
	{"duckdb", "read_parquet.mjs", nil},
	{"hyparquet", "read_parquet_hyparquet.mjs", func(dtype schema.DType, n int) string {
		if dtype == schema.Float16 {
			return "LIST<GROUP<FIXED_LEN_BYTE_ARRAY/FLOAT16>>"
		}
		return "LIST<GROUP<FLOAT>>"
	}},
	{"parquet-wasm", "read_parquet_wasm.mjs", func(dtype schema.DType, n int) string {
		if dtype == schema.Float16 {
			return fmt.Sprintf("FixedSizeList[%d]<Float16>", n)
		}
		return fmt.Sprintf("FixedSizeList[%d]<Float32>", n)
	}},
}

// TestInterop writes stores in Go and reads them back with DuckDB, hyparquet
// and parquet-wasm (Parquet) and apache-arrow (Arrow IPC) in Node.js; values must
// match what Go wrote exactly (float16 after rounding), and the metadata
// must decode to the metadata Go wrote.
func TestInterop(t *testing.T) {
	const seed, classes, k, views, images = 11, 12, 4, 2, 9
	for _, tc := range []storeCase{
		{"full-float32-parquet", schema.ModeFull, schema.Float32, FormatParquet},
		{"full-float16-parquet", schema.ModeFull, schema.Float16, FormatParquet},
		{"topk-float16-parquet", schema.ModeTopK, schema.Float16, FormatParquet},
		{"topk-float32-parquet", schema.ModeTopK, schema.Float32, FormatParquet},
		{"topk-float16-arrow", schema.ModeTopK, schema.Float16, FormatArrow},
		{"full-float32-arrow", schema.ModeFull, schema.Float32, FormatArrow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			md := testMeta(tc.mode, tc.dtype, classes, k, views, images)
			if err := writeStore(dir, md, Options{Format: tc.format, ShardRows: 6, RowGroupRows: 4}, seed); err != nil {
				t.Fatal(err)
			}
			check := func(t *testing.T, res nodeResult) {
				// Metadata.
				keys := make([]string, 0, len(res.Metadata))
				vals := make([]string, 0, len(res.Metadata))
				for k, v := range res.Metadata {
					keys = append(keys, k)
					vals = append(vals, v)
				}
				got, err := schema.Decode(keys, vals)
				if err != nil {
					t.Fatalf("metadata as read by node: %v", err)
				}
				if err := schema.Diff(got, md); err != nil || got.CreatedBy != md.CreatedBy {
					t.Fatalf("metadata as read by node differs: %v", err)
				}
				// Rows.
				if len(res.Rows) != images*views {
					t.Fatalf("node read %d rows, want %d", len(res.Rows), images*views)
				}
				n := 0
				for i := int64(0); i < images; i++ {
					for _, want := range synthRows(seed, i, classes, views) {
						compareNodeRow(t, res.Rows[n], want, md)
						n++
					}
				}
				t.Logf("node column types: %v", res.Types)
			}
			if tc.format == FormatArrow {
				files, _ := filepath.Glob(filepath.Join(dir, "*.arrow"))
				sort.Strings(files)
				check(t, runNode(t, "read_arrow.mjs", files...))
				return
			}
			for _, r := range parquetReaders {
				t.Run(r.name, func(t *testing.T) {
					res := runNode(t, r.script, dir)
					if r.logitType != nil {
						// The logits must be annotated FLOAT16 (not bare 2-byte
						// values) in a float16 store, plain float in a float32 one.
						col, n := schema.ColTeacherLogits, classes
						if tc.mode == schema.ModeTopK {
							col, n = schema.ColTopKLogit, k
						}
						if got, want := res.Types[col], r.logitType(tc.dtype, n); got != want {
							t.Errorf("%s sees %s as %q, want %q", r.name, col, got, want)
						}
					}
					check(t, res)
				})
			}
		})
	}
}

func compareNodeRow(t *testing.T, got map[string]any, want Row, md schema.Metadata) {
	t.Helper()
	where := fmt.Sprintf("%s view %d", want.ImageID, want.View)
	num := func(col string) float64 {
		var f float64
		switch v := got[col].(type) {
		case json.Number:
			f, _ = v.Float64()
		case string: // DuckDB writes BIGINT as a string
			fmt.Sscan(v, &f)
		default:
			t.Fatalf("%s: column %s is %T %v", where, col, got[col], got[col])
		}
		return f
	}
	list := func(col string) []float64 {
		raw, ok := got[col].([]any)
		if !ok {
			t.Fatalf("%s: column %s is %T", where, col, got[col])
		}
		out := make([]float64, len(raw))
		for i, v := range raw {
			out[i], _ = v.(json.Number).Float64()
		}
		return out
	}
	if got["image_id"] != want.ImageID || num("image_index") != float64(want.ImageIndex) || num("view") != float64(want.View) || got["flip"] != want.Flip {
		t.Fatalf("%s: node read %v", where, got)
	}
	if want.Label == NoLabel {
		if got["label"] != nil {
			t.Fatalf("%s: label %v, want null", where, got["label"])
		}
	} else if num("label") != float64(want.Label) {
		t.Fatalf("%s: label %v, want %d", where, got["label"], want.Label)
	}
	for j, c := range list("crop") {
		if float32(c) != want.Crop[j] || float64(float32(c)) != c {
			t.Fatalf("%s: crop[%d] %v, want %v", where, j, c, want.Crop[j])
		}
	}
	hard, lse := argmaxLSE(want.Logits)
	if num("teacher_hard") != float64(hard) {
		t.Fatalf("%s: teacher_hard %v, want %d", where, got["teacher_hard"], hard)
	}
	vals := want.Logits
	col := schema.ColTeacherLogits
	if md.Store.Mode == schema.ModeTopK {
		idx := make([]int32, md.Store.K)
		topK(want.Logits, idx)
		vals = make([]float32, len(idx))
		for j, c := range idx {
			vals[j] = want.Logits[c]
		}
		if fmt.Sprint(list("topk_index")) != strings.ReplaceAll(fmt.Sprint(idx), " ", " ") {
			t.Fatalf("%s: topk_index %v, want %v", where, got["topk_index"], idx)
		}
		if float32(num("logsumexp")) != lse {
			t.Fatalf("%s: logsumexp %v, want %v", where, got["logsumexp"], lse)
		}
		col = schema.ColTopKLogit
	}
	for j, v := range list(col) {
		if float32(v) != stored(vals[j], md.Store.DType) {
			t.Fatalf("%s: %s[%d] %v, want %v", where, col, j, v, stored(vals[j], md.Store.DType))
		}
	}
}
