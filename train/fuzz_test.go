package train

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/deitkd/deitkd/student"
)

// FuzzTruncateMetrics: any metrics.jsonl gives a kept file or ErrResume, never a panic; what
// is kept is a subset of the file's lines in their order, and truncating it again keeps it.
func FuzzTruncateMetrics(f *testing.F) {
	f.Add([]byte(`{"kind":"train","step":0,"epoch":1}`+"\n"+`{"kind":"epoch","step":1,"epoch":1}`+"\n"), 1, 1)
	f.Add([]byte(`{"kind":"train","step":0}`+"\n"+`{"kind":"train","step":1}`+"\n"+`{"kind":"tr`), 2, 0)
	f.Add([]byte("\n\n{}\n"), 0, 0)
	f.Add([]byte(`{"kind":"eval","epoch":-3}`+"\n"+`not json`+"\n"+`{}`), 0, 1)
	f.Fuzz(func(t *testing.T, data []byte, step, epoch int) {
		step, epoch = step%64, epoch%16
		if step < 0 || epoch < 0 {
			return
		}
		p := filepath.Join(t.TempDir(), MetricsFile)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := truncateMetrics(p, step, epoch)
		if err != nil {
			if !errors.Is(err, ErrResume) {
				t.Fatalf("error %v does not wrap ErrResume", err)
			}
			after, _ := os.ReadFile(p)
			if !bytes.Equal(after, data) {
				t.Fatal("a refused file was changed")
			}
			return
		}
		kept, _ := os.ReadFile(p)
		rest := data
		for _, line := range bytes.SplitAfter(kept, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			i := bytes.Index(rest, bytes.TrimSuffix(line, []byte("\n")))
			if i < 0 {
				t.Fatalf("kept line %q is not in the file, in order", line)
			}
			rest = rest[i+len(line)-1:]
		}
		if _, err := truncateMetrics(p, step, epoch); err != nil {
			t.Fatalf("truncating a kept file again: %v", err)
		}
		again, _ := os.ReadFile(p)
		if !bytes.Equal(again, kept) {
			t.Fatal("truncating a kept file again changed it")
		}
	})
}

// FuzzRunFile: any run.json is read by readSettings and compared by checkRun with an error
// wrapping ErrResume or none, never a panic; a file equal to what the run writes passes.
func FuzzRunFile(f *testing.F) {
	want := runFile{Fuse: "logits", Recipe: student.TrainConfig{WeightInit: student.InitTimm}, Settings: settings{Labels: "/x"}, Inputs: inputs{Labels: "/x"}}
	good, _ := json.Marshal(want)
	f.Add(good)
	f.Add([]byte(`{"settings":null}`))
	f.Add([]byte(`{"model":{"dim":"64"},"settings":[1,2]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, RunFile)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var v settings
		if _, err := readSettings(dir, &v); err != nil && !errors.Is(err, ErrResume) {
			t.Fatalf("readSettings: %v does not wrap ErrResume", err)
		}
		err := checkRun(p, want, func(string) {})
		if err != nil && !errors.Is(err, ErrResume) {
			t.Fatalf("checkRun: %v does not wrap ErrResume", err)
		}
		if bytes.Equal(data, good) && err != nil {
			t.Fatalf("the run's own file refused: %v", err)
		}
	})
}
