package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/export"
	"github.com/deitkd/deitkd/teacher"
)

// fmnistImages are the first n of the 600 real Fashion-MNIST test images of testdata/fmnist,
// preprocessed as the students below take them (28×28, the store's mean and std), NCHW.
func fmnistImages(t *testing.T, n int) []float32 {
	t.Helper()
	src, err := dataset.Open("idx:" + filepath.Join(testdata, "fmnist", "t10k"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := dataset.Config{Crop: 28, Channels: 1, Mean: []float64{0.286}, Std: []float64{0.353}}
	size := dataset.TensorLen(1, 28)
	x := make([]float32, n*size)
	for i := range n {
		img, err := src.Load(i, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := dataset.Preprocess(x[i*size:(i+1)*size], img, cfg); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

// onnxOutputs runs every output of the exported student at path over the n images x in ONNX
// Runtime.
func onnxOutputs(t *testing.T, path string, x []float32, n int) map[string][]float32 {
	t.Helper()
	got := map[string][]float32{}
	for _, name := range []string{export.FusedName, export.ClsName, export.DistName} {
		m, err := teacher.Open(path, teacher.Options{Output: name, Threads: 1})
		if err != nil {
			t.Fatalf("open %s for %s: %v", path, name, err)
		}
		y, err := m.Run(x, n)
		m.Close()
		if err != nil {
			t.Fatalf("run %s: %v", path, err)
		}
		got[name] = y
	}
	return got
}

// TestInitZeroEpochsReproducesLogits: a student trained and exported, then `train --init` of
// its safetensors export (and of its checkpoint) with --epochs 0 at the same resolution,
// exported again: ONNX Runtime gives bit-identical outputs of all three heads for both files on
// 600 real test images. run.json records the init file by sha256 and path; at --img 56 the
// log says the positional embedding was resampled.
func TestInitZeroEpochsReproducesLogits(t *testing.T) {
	lab := labelStore(t, "train", 1)
	base := []string{"--labels", lab, "--data", idx("train"), "--eval-data", idx("t10k")}
	orig := filepath.Join(t.TempDir(), "orig")
	if code, _, stderr := runTrain(t, append(base, "--out", orig, "--epochs", "2", "--export", "onnx,safetensors")...); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	const n = 600
	x := fmnistImages(t, n)
	want := onnxOutputs(t, filepath.Join(orig, export.ONNXFile), x, n)
	for _, file := range []string{export.SafetensorsFile, "checkpoint.ckpt"} {
		t.Run(file, func(t *testing.T) {
			initFile := filepath.Join(orig, file)
			out := filepath.Join(t.TempDir(), "init")
			code, stdout, stderr := runTrain(t, append(base, "--out", out, "--epochs", "0", "--init", initFile, "--export", "onnx")...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			if !strings.Contains(stderr, "train: init "+initFile) || strings.Contains(stderr, "resampled") {
				t.Errorf("log of an init at the same size:\n%s", stderr)
			}
			if !strings.Contains(stdout, "    0           -") {
				t.Errorf("closing table of zero epochs:\n%s", stdout)
			}
			got := onnxOutputs(t, filepath.Join(out, export.ONNXFile), x, n)
			for name, w := range want {
				g := got[name]
				if len(g) != len(w) || len(w) != n*10 {
					t.Fatalf("%s: %d values, want %d", name, len(g), len(w))
				}
				for i := range w {
					if math.Float32bits(g[i]) != math.Float32bits(w[i]) {
						t.Fatalf("%s[%d] (image %d): %v after --init %s --epochs 0, %v before", name, i, i/10, g[i], file, w[i])
					}
				}
			}
			b, err := os.ReadFile(filepath.Join(out, "run.json"))
			if err != nil {
				t.Fatal(err)
			}
			var run struct {
				Settings struct {
					Init struct {
						SHA256 string `json:"sha256"`
					} `json:"init"`
				} `json:"settings"`
				Inputs struct {
					Init string `json:"init"`
				} `json:"inputs"`
			}
			abs, _ := filepath.Abs(initFile)
			if err := json.Unmarshal(b, &run); err != nil || len(run.Settings.Init.SHA256) != 64 || run.Inputs.Init != abs {
				t.Errorf("run.json of an init run (%v):\n%s", err, b)
			}
		})
	}
	t.Run("img56", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "init56")
		code, _, stderr := runTrain(t, append(base, "--out", out, "--epochs", "0", "--img", "56", "--init", filepath.Join(orig, export.SafetensorsFile))...)
		if code != exitOK || !strings.Contains(stderr, "pos_embed resampled from a 4×4 to a 8×8 patch grid") {
			t.Errorf("--init at --img 56: exit %d\n%s", code, stderr)
		}
	})
}

// TestInitResume: a resume of an --init run is checked against the init file's sha256 (a
// changed file, or none, is refused naming settings.init); with the same file and a
// checkpoint, the checkpoint wins and the log says so.
func TestInitResume(t *testing.T) {
	lab := labelStore(t, "train", 1)
	base := []string{"--labels", lab, "--data", idx("train")}
	orig := filepath.Join(t.TempDir(), "orig")
	if code, _, stderr := runTrain(t, append(base, "--out", orig, "--epochs", "1", "--export", "safetensors")...); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	initFile := filepath.Join(t.TempDir(), "student.safetensors")
	b, err := os.ReadFile(filepath.Join(orig, export.SafetensorsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(initFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "ft")
	args := append(base, "--out", out, "--epochs", "1", "--init", initFile)
	if code, _, stderr := runTrain(t, args...); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runTrain(t, append(args, "--resume")...); code != exitOK || !strings.Contains(stderr, "the checkpoint wins") ||
		!strings.Contains(stderr, "nothing to do") {
		t.Errorf("resume with the same init file: exit %d\n%s", code, stderr)
	}
	noInit := append(base, "--out", out, "--epochs", "1", "--resume")
	if code, _, stderr := runTrain(t, noInit...); code != exitFatal || !strings.Contains(stderr, "settings.init") {
		t.Errorf("resume of an --init run without --init: exit %d\n%s", code, stderr)
	}
	// Another student's weights under the same name.
	other, err := os.ReadFile(filepath.Join(out, "checkpoint.ckpt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(initFile, other, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runTrain(t, append(args, "--resume")...); code != exitFatal || !strings.Contains(stderr, "settings.init.sha256: the run had") {
		t.Errorf("resume with a changed init file: exit %d\n%s", code, stderr)
	}
}

// TestInitRefusals: what --init cannot use is refused before anything is written, naming it.
func TestInitRefusals(t *testing.T) {
	lab := labelStore(t, "train", 1)
	base := []string{"--labels", lab, "--data", idx("train"), "--epochs", "0"}
	orig := filepath.Join(t.TempDir(), "orig")
	if code, _, stderr := runTrain(t, append(base, "--out", orig, "--export", "safetensors")...); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	st := filepath.Join(orig, export.SafetensorsFile)
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"missing file", []string{"--init", filepath.Join(orig, "nope.safetensors")}, exitUsage, "nope.safetensors"},
		{"not a student", []string{"--init", filepath.Join(orig, "run.json")}, exitFatal, "run.json"},
		{"another width", []string{"--init", st, "--dim", "32"}, exitFatal, "is [1 1 16] in the file, [1 1 32] in the model"},
		{"another depth", []string{"--init", st, "--depth", "3"}, exitFatal, "the file has 2 blocks, the model depth 3"},
		{"new heads without init", []string{"--init-heads", "new"}, exitUsage, "without an init file"},
		{"finetune without init", []string{"--recipe", "finetune"}, exitUsage, "the finetune recipe continues a trained student"},
		{"bad heads word", []string{"--init", st, "--init-heads", "fresh"}, exitUsage, "want keep or new"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			code, _, stderr := runTrain(t, append(append(base, "--out", out), c.args...)...)
			if code != c.code || !strings.Contains(stderr, c.msg) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, c.code, c.msg, stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a refused run wrote %s", out)
			}
		})
	}
}

// TestFinetuneRecipe: --recipe finetune with --init trains with the recipe's values, recorded
// in run.json under the word "finetune"; an explicit --lr still overrides its rate.
func TestFinetuneRecipe(t *testing.T) {
	lab := labelStore(t, "train", 1)
	base := []string{"--labels", lab, "--data", idx("train")}
	orig := filepath.Join(t.TempDir(), "orig")
	if code, _, stderr := runTrain(t, append(base, "--out", orig, "--epochs", "1")...); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, c := range []struct {
		args []string
		lr   float64
	}{{nil, 1e-3 * 2 / 128}, {[]string{"--lr", "3e-4"}, 3e-4}} {
		out := filepath.Join(t.TempDir(), "ft")
		args := append(append(base, "--out", out, "--epochs", "1", "--recipe", "finetune", "--init", filepath.Join(orig, "checkpoint.ckpt")), c.args...)
		if code, _, stderr := runTrain(t, args...); code != exitOK {
			t.Fatalf("%q: exit %d\n%s", c.args, code, stderr)
		}
		b, err := os.ReadFile(filepath.Join(out, "run.json"))
		if err != nil {
			t.Fatal(err)
		}
		var run struct {
			Recipe struct {
				Recipe     string  `json:"recipe"`
				LR         float64 `json:"lr"`
				MinLR      float64 `json:"min_lr"`
				WarmupFrac float64 `json:"warmup_frac"`
				WD         float64 `json:"wd"`
				Clip       float64 `json:"clip"`
				DropPath   float64 `json:"drop_path"`
			} `json:"recipe"`
		}
		if err := json.Unmarshal(b, &run); err != nil {
			t.Fatal(err)
		}
		r := run.Recipe
		if r.Recipe != "finetune" || r.LR != c.lr || r.MinLR != 1e-6 || r.WarmupFrac != 0.03 || r.WD != 1e-8 || r.Clip != 1 || r.DropPath != 0 {
			t.Errorf("%q: run.json's recipe %+v", c.args, r)
		}
	}
}
