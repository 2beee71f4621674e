package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/export"
	"github.com/deitkd/deitkd/student"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	m, ckpt := tinyCheckpoint(t, dir)
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	code := run([]string{"--ckpt", ckpt, "--out", out, "--fuse", "logits",
		"--class-names", `["a","b","c","d","e","f","g","h","i","j"]`}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, name := range []string{export.ONNXFile, export.SafetensorsFile} {
		if !strings.Contains(stdout.String(), filepath.Join(out, name)) {
			t.Errorf("stdout %q does not name %s", stdout.String(), name)
		}
	}
	f := readSafetensors(t, filepath.Join(out, export.SafetensorsFile))
	if f.Metadata[export.MetaFuse] != export.FuseLogits || !strings.HasPrefix(f.Metadata[export.MetaClassNames], `["a",`) {
		t.Errorf("metadata %v", f.Metadata)
	}
	m2, err := f.Model()
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range m.Params() {
		if !reflect.DeepEqual(p.Data, m2.Params()[i].Data) {
			t.Errorf("%s differs from the checkpoint", p.Name)
		}
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--ckpt", "x"},
		{"--ckpt", "x", "--out", "y", "--format", "pt"},
		{"--ckpt", "x", "--out", "y", "--preprocess", "{"},
		{"--ckpt", "x", "--out", "y", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--ckpt", filepath.Join(t.TempDir(), "missing"), "--out", t.TempDir()}, &stdout, &stderr); code != 1 {
		t.Errorf("missing checkpoint: exit %d, want 1", code)
	}
}

// TestFuseNames checks that --fuse takes train's names: probs (the default) and logits reach
// the export, anything else is a usage error.
func TestFuseNames(t *testing.T) {
	dir := t.TempDir()
	_, ckpt := tinyCheckpoint(t, dir)
	for _, tc := range []struct{ fuse, want string }{{"probs", export.FuseSoftmax}, {"logits", export.FuseLogits}, {"mean", ""}} {
		t.Run(tc.fuse, func(t *testing.T) {
			out := filepath.Join(dir, tc.fuse)
			var stdout, stderr bytes.Buffer
			code := run([]string{"--ckpt", ckpt, "--out", out, "--format", "safetensors", "--fuse", tc.fuse}, &stdout, &stderr)
			if tc.want == "" {
				if code != 2 {
					t.Fatalf("exit %d, want 2 (usage): %s", code, stderr.String())
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			f := readSafetensors(t, filepath.Join(out, export.SafetensorsFile))
			if got := f.Metadata[export.MetaFuse]; got != tc.want {
				t.Errorf("fuse metadata %q, want %q", got, tc.want)
			}
		})
	}
}

// tinyCheckpoint saves a one-block fm-tiny student in dir and returns it and the file's path.
func tinyCheckpoint(t *testing.T, dir string) (*student.Model, string) {
	t.Helper()
	m, err := student.New(student.Config{Depth: 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "model.ckpt")
	if err := m.Save(ckpt); err != nil {
		t.Fatal(err)
	}
	return m, ckpt
}

// readSafetensors reads and parses the safetensors file at path.
func readSafetensors(t *testing.T, path string) *export.File {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := export.ReadSafetensors(raw)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
