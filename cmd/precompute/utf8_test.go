package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/deitkd/deitkd/store"
)

// TestNotUTF8Names: file and class folder names that are not UTF-8 (Latin-1) give a store
// whose image_id and class names are the escaped, valid UTF-8 ids (\xHH a byte), that Verify
// passes and DuckDB reads; a file that fails is logged under its escaped id too.
func TestNotUTF8Names(t *testing.T) {
	data := t.TempDir()
	files := map[string][]byte{"cat/caf\xe9.png": nil, "cat/ok.png": nil, "d\xf6g/x.png": nil, "d\xf6g/bad\xff.png": []byte("not an image")}
	for name, body := range files {
		if body == nil {
			m := image.NewGray(image.Rect(0, 0, 28, 28))
			for i := range m.Pix {
				m.Pix[i] = uint8(len(name) * i)
			}
			var buf bytes.Buffer
			if err := png.Encode(&buf, m); err != nil {
				t.Fatal(err)
			}
			body = buf.Bytes()
		}
		p := filepath.Join(data, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Skipf("file system takes no name that is not UTF-8: %v", err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Skipf("file system takes no name that is not UTF-8: %v", err)
		}
	}
	out := filepath.Join(t.TempDir(), "labels")
	code, stdout, stderr := runInProcess(t, "--model", filepath.Join(testdata, "models", "tiny_gray.onnx"), "--data", data,
		"--out", out, "--mean", "0.5", "--std", "0.5", "--workers", "1", "--threads", "1")
	if code != exitSkipped {
		t.Fatalf("exit %d, want %d (one image fails)\n%s%s", code, exitSkipped, stdout, stderr)
	}
	var ids []string
	for _, r := range readRows(t, out) {
		if !utf8.ValidString(r.id) {
			t.Errorf("image_id %q is not UTF-8", r.id)
		}
		if len(ids) == 0 || ids[len(ids)-1] != r.id {
			ids = append(ids, r.id)
		}
	}
	if want := []string{`cat/caf\xe9.png`, "cat/ok.png", `d\xf6g/x.png`}; !slices.Equal(ids, want) {
		t.Fatalf("ids %q, want %q", ids, want)
	}
	rep, err := store.Verify(context.Background(), out)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	r, err := store.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range r.Meta.ClassNames { // the teacher's; the folders' are escaped (dataset tests)
		if !utf8.ValidString(name) {
			t.Errorf("class name %q", name)
		}
	}
	fs, err := r.Failures()
	if err != nil || len(fs) != 1 || fs[0].ImageID != `d\xf6g/bad\xff.png` || !utf8.ValidString(fs[0].Err) {
		t.Errorf("failures %+v, %v", fs, err)
	}

	// DuckDB refused a shard with a raw name in it; it reads this one and the failure log.
	node, err := exec.LookPath("node")
	interop := filepath.Join("..", "..", "interop")
	if _, serr := os.Stat(filepath.Join(interop, "node_modules", "@duckdb", "node-api")); err != nil || serr != nil {
		t.Skip("node or interop/node_modules missing (make setup): DuckDB not checked")
	}
	abs, _ := filepath.Abs(out)
	script := `import { DuckDBInstance } from '@duckdb/node-api';
const d = process.argv[1];
const con = await (await DuckDBInstance.create(':memory:')).connect();
const a = await con.runAndReadAll("SELECT DISTINCT image_id FROM read_parquet('" + d + "/*.parquet') ORDER BY image_index");
const b = await con.runAndReadAll("SELECT image_id FROM read_parquet('" + d + "/failures/*.parquet')");
process.stdout.write([...a.getRowObjectsJson(), ...b.getRowObjectsJson()].map(r => r.image_id).join('\n'));`
	cmd := exec.Command(node, "--input-type=module", "-e", script, abs)
	cmd.Dir = interop
	var errb bytes.Buffer
	cmd.Stderr = &errb
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("DuckDB: %v\n%s", err, errb.String())
	}
	if want := `cat/caf\xe9.png` + "\ncat/ok.png\n" + `d\xf6g/x.png` + "\n" + `d\xf6g/bad\xff.png`; strings.TrimSpace(string(got)) != want {
		t.Fatalf("DuckDB reads\n%s\nwant\n%s", got, want)
	}
}
