package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
)

// TestOwnTeacherREADME runs the README's "Use your own teacher and data" section on a small
// tree: a teacher exported by its command (teacher/export/export_torchvision.py --arch
// squeezenet1_1, random weights, so ImageNet's 1000 class names and torchvision's eval
// preprocessing in its metadata: see testdata/teacher/squeezenet1_1_random.md), ImageNet-style
// synset folders, which precompute refuses without a class map with the message the README
// quotes, the README's one-line class map (run by the shell as written there), and precompute
// with it.
func TestOwnTeacherREADME(t *testing.T) {
	if _, err := exec.LookPath("awk"); err != nil {
		t.Skip("no awk for the README's one-liner")
	}
	model := filepath.Join(testdata, "teacher", "squeezenet1_1_random.onnx")
	data := filepath.Join(t.TempDir(), "train")
	synsets := []string{"n01440764", "n01443537", "n01484850"} // ImageNet's classes 0-2: tench, goldfish, great white shark
	images := []string{"baseline420_45x33.jpg", "progressive_56x42.jpeg"}
	for _, s := range synsets {
		if err := os.MkdirAll(filepath.Join(data, s), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range images {
			b, err := os.ReadFile(filepath.Join(testdata, "images", "jpeg", name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(data, s, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	args := func(out string, extra ...string) []string {
		return append([]string{"--model", model, "--data", data, "--out", out, "--workers", "1", "--threads", "1"}, extra...)
	}

	code, _, stderr := runInProcess(t, args(filepath.Join(t.TempDir(), "refused"))...)
	if want := `class 0 is "n01440764" in the dataset but "tench" in the teacher`; code != exitFatal || !strings.Contains(stderr, want) {
		t.Fatalf("synset folders without a class map: exit %d, want %d naming %q\n%s", code, exitFatal, want, stderr)
	}

	classMap := filepath.Join(t.TempDir(), "imagenet.classmap")
	oneLiner := `LC_ALL=C ls "$1" | awk '{print $0 "\t" NR-1}' > "$2"` // the README's line, with its paths as arguments
	if out, err := exec.Command("sh", "-c", oneLiner, "sh", data, classMap).CombinedOutput(); err != nil {
		t.Fatalf("the README's class-map line: %v\n%s", err, out)
	}
	out := filepath.Join(t.TempDir(), "labels")
	code, stdout, stderr := runInProcess(t, "--model", model, "--data", data, "--out", out, "--class-map", classMap)
	if code != exitOK {
		t.Fatalf("with the README's class map: exit %d\n%s", code, stderr)
	}
	// The default split of the cores, said in the summary: every core decodes, every core runs
	// the teacher.
	if want := fmt.Sprintf("%d workers), teacher", runtime.NumCPU()); !strings.Contains(stdout+stderr, want) ||
		!strings.Contains(stdout+stderr, fmt.Sprintf("(%d threads)", runtime.NumCPU())) {
		t.Fatalf("summary does not name the default split (%d workers, %d threads):\n%s%s", runtime.NumCPU(), runtime.NumCPU(), stdout, stderr)
	}
	verify(t, out)
	r, err := store.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Meta.NumClasses != 1000 || r.Meta.Preprocess.Crop != 224 || r.Meta.Preprocess.Resize != 256 {
		t.Fatalf("store records %d classes, crop %d, resize %d; the teacher is ImageNet's 1000 classes at 256/224",
			r.Meta.NumClasses, r.Meta.Preprocess.Crop, r.Meta.Preprocess.Resize)
	}
	for i, s := range synsets {
		if got := r.Meta.ClassMap[i]; got != (schema.ClassMapEntry{Folder: s, Class: i}) {
			t.Fatalf("class map entry %d: %+v, want folder %s class %d", i, got, s, i)
		}
	}
	rows := readRows(t, out)
	if len(rows) != len(synsets)*len(images) {
		t.Fatalf("%d rows, want %d", len(rows), len(synsets)*len(images))
	}
	for _, row := range rows {
		if len(row.logits) != 1000 {
			t.Fatalf("row %s: %d logits, want 1000", row.id, len(row.logits))
		}
	}
}
