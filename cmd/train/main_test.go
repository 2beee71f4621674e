package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/export"
	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/student"
)

const testdata = "../../testdata"

func idx(name string) string { return "idx:" + filepath.Join(testdata, "idx", name) }

// labelStore labels testdata/idx/NAME with the tiny grey teacher: a real precompute run.
func labelStore(t *testing.T, name string, views int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	job, err := precompute.New(precompute.Options{Model: filepath.Join(testdata, "models", "tiny_gray.onnx"), Data: idx(name), Out: dir,
		Mean: []float64{0.286}, Std: []float64{0.353}, Workers: 1, Threads: 1, Views: views, Seed: 1, Scale: [2]float64{0.35, 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	if _, err := job.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dir
}

// train runs the command with a small architecture and returns its exit code, stdout, stderr.
func train(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	small := []string{"--patch", "7", "--dim", "16", "--depth", "2", "--heads", "2", "--mlp-ratio", "2", "--batch", "2", "--workers", "2"}
	code := run(context.Background(), append(small, args...), &out, &errb, false)
	return code, out.String(), errb.String()
}

func TestTrainEndToEnd(t *testing.T) {
	lab := labelStore(t, "train", 4)
	evalLab := labelStore(t, "t10k", 1)
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"--labels", lab, "--data", idx("train"), "--eval-data", idx("t10k"), "--eval-labels", evalLab,
		"--out", out, "--epochs", "2", "--distill", "soft", "--tau", "2", "--views-per-image", "2", "--seed", "4", "--warmup", "1ep",
		"--export", "onnx,safetensors"}
	code, stdout, stderr := train(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"4 views per image", "teacher top-1 on the eval set", "data: 5 images × 2 view(s) per epoch, 5 steps of 2; distill soft"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("log lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(stdout, "top1 fused") || !strings.Contains(stdout, "checkpoint: "+filepath.Join(out, "checkpoint.ckpt")) {
		t.Errorf("closing table:\n%s", stdout)
	}
	f, err := os.Open(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kinds := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		kind := r["kind"].(string)
		kinds[kind]++
		want := map[string][]string{
			"train": {"step", "epoch", "loss", "ce_cls", "ce_dist", "kl", "lr", "img_s"},
			"eval":  {"epoch", "step", "top1_cls", "top1_dist", "top1_fused", "top5_cls", "top5_dist", "top5_fused"},
		}[kind]
		for _, k := range want {
			if _, ok := r[k]; !ok {
				t.Fatalf("%s record lacks %s: %s", kind, k, sc.Text())
			}
		}
		if kind == "train" && r["kl"].(float64) <= 0 {
			t.Errorf("soft distillation record without a KL term: %s", sc.Text())
		}
		if kind == "train" && r["step"].(float64) == 0 && r["lr"].(float64) >= 1e-3 {
			t.Errorf("--warmup 1ep: first step at lr %v", r["lr"])
		}
	}
	if kinds["train"] != 10 || kinds["eval"] != 2 {
		t.Fatalf("records %v, want 10 train and 2 eval", kinds)
	}
	for _, f := range []string{"student.onnx", "student.safetensors"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("--export: %s: %v", f, err)
		}
	}
	m, err := student.LoadModel(filepath.Join(out, "checkpoint.ckpt"))
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Config(); c.Dim != 16 || c.Classes != 10 || c.ImageSize != 28 {
		t.Errorf("checkpoint config %+v", c)
	}

	// --resume of a finished run has nothing left to do and changes nothing.
	before, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if code, _, stderr := train(t, append(args, "--resume")...); code != exitOK {
		t.Fatalf("resume of a finished run: exit %d\n%s", code, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl")); !bytes.Equal(before, after) {
		t.Errorf("resume of a finished run changed metrics.jsonl")
	}
	// --resume with another recipe is refused, naming the field.
	code, _, stderr = train(t, append(args, "--resume", "--alpha", "0.7")...)
	if code != exitFatal || !strings.Contains(stderr, "recipe.loss.alpha") {
		t.Errorf("resume with another alpha: exit %d\n%s", code, stderr)
	}
	// A run into a used folder without --resume is a usage error.
	if code, _, stderr := train(t, args...); code != exitUsage || !strings.Contains(stderr, "--resume") {
		t.Errorf("second run into %s: exit %d\n%s", out, code, stderr)
	}

	// --analyze: one cosine per block and the input.
	code, stdout, stderr = train(t, "--analyze", filepath.Join(out, "checkpoint.ckpt"), "--eval-data", idx("t10k"), "--labels", lab)
	if code != exitOK || !strings.Contains(stdout, "input (embedding)") || !strings.Contains(stdout, "after block 2") {
		t.Errorf("--analyze: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestExportBothWays: train --export and the export command on train's checkpoint, with
// --labels and without, write the same bytes — also for a student at --img 32 trained from a
// 28-pixel store, whose preprocessing is the store's scaled to 32 (issue 15).
func TestExportBothWays(t *testing.T) {
	lab := labelStore(t, "train", 1)
	out := filepath.Join(t.TempDir(), "run")
	code, _, stderr := train(t, "--labels", lab, "--data", idx("train"), "--out", out, "--epochs", "1",
		"--img", "32", "--patch", "8", "--export", "onnx,safetensors")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	files := []string{export.ONNXFile, export.SafetensorsFile}
	raw, err := os.ReadFile(filepath.Join(out, export.SafetensorsFile))
	if err != nil {
		t.Fatal(err)
	}
	st, err := export.ReadSafetensors(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Metadata[export.MetaPreprocess], `{"resize":32,"crop":32,"interpolation":"bilinear","mean":[0.286],"std":[0.353],"channels":1}`; got != want {
		t.Errorf("train --export embeds %s, want %s", got, want)
	}

	bin := filepath.Join(t.TempDir(), "export")
	build := exec.Command("go", "build", "-o", bin, "github.com/deitkd/deitkd/cmd/export")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	for _, args := range [][]string{{"--labels", lab}, nil} {
		dir := t.TempDir()
		cmd := exec.Command(bin, append([]string{"--ckpt", filepath.Join(out, "checkpoint.ckpt"), "--out", dir}, args...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("export %q: %v\n%s", args, err, b)
		}
		for _, f := range files {
			a, errA := os.ReadFile(filepath.Join(out, f))
			b, errB := os.ReadFile(filepath.Join(dir, f))
			if errA != nil || errB != nil || !bytes.Equal(a, b) {
				t.Errorf("export %q: %s differs from train --export's (%v, %v)", args, f, errA, errB)
			}
		}
	}
}

func TestTrainRefusals(t *testing.T) {
	lab := labelStore(t, "train", 1)
	out := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"store of another dataset", []string{"--labels", lab, "--data", idx("t10k"), "--out", out}, exitFatal, "deitkd.dataset.image_count"},
		{"other normalisation", []string{"--labels", lab, "--data", idx("train"), "--out", out, "--mean", "0.5"}, exitFatal, "deitkd.preprocess.mean"},
		{"three channels", []string{"--labels", lab, "--data", idx("train"), "--out", out, "--channels", "3"}, exitFatal, "deitkd.preprocess.channels"},
		{"no labels", []string{"--data", idx("train"), "--out", out}, exitUsage, "--labels, --data and --out are required"},
		{"bad warm-up", []string{"--labels", lab, "--data", idx("train"), "--out", out, "--warmup", "2"}, exitUsage, "--warmup"},
		{"bad fuse", []string{"--labels", lab, "--data", idx("train"), "--out", out, "--fuse", "max"}, exitUsage, "--fuse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := train(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, stderr)
			}
		})
	}
}

// TestNonFiniteLoss: a learning rate that blows the weights up stops the run with exit 1 and
// a message naming the step; the fixed-teacher log line is there too.
func TestNonFiniteLoss(t *testing.T) {
	lab := labelStore(t, "train", 1)
	out := filepath.Join(t.TempDir(), "run")
	code, _, stderr := train(t, "--labels", lab, "--data", idx("train"), "--out", out, "--epochs", "50", "--lr", "2000", "--distill", "none")
	if code != exitFatal || !strings.Contains(stderr, "non-finite loss at step") {
		t.Fatalf("exit %d, want 1 naming the step:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "fixed teacher") {
		t.Errorf("a single-view store's run does not say fixed teacher:\n%s", stderr)
	}
}

func TestParseWarmup(t *testing.T) {
	for _, tc := range []struct {
		in           string
		frac, epochs float64
		bad          bool
	}{
		{"", 0, 0, false}, {"0.05", 0.05, 0, false}, {"2ep", 0, 2, false}, {"0.5ep", 0, 0.5, false},
		{"1.5", 0, 0, true}, {"-1ep", 0, 0, true}, {"two", 0, 0, true},
	} {
		var tc2 student.TrainConfig
		err := parseWarmup(tc.in, &tc2)
		if (err != nil) != tc.bad || tc2.WarmupFrac != tc.frac || tc2.WarmupEpochs != tc.epochs {
			t.Errorf("parseWarmup(%q): frac %v epochs %v err %v", tc.in, tc2.WarmupFrac, tc2.WarmupEpochs, err)
		}
	}
	// An explicit 0 means no warm-up, not the recipe's default.
	z := student.TrainConfig{StepsPerEpoch: 100, Epochs: 5}
	if err := parseWarmup("0", &z); err != nil {
		t.Fatal(err)
	}
	z, err := z.WithDefaults()
	if err != nil || z.Schedule().WarmupSteps != 0 {
		t.Errorf("--warmup 0: %d warm-up steps (%v)", z.Schedule().WarmupSteps, err)
	}
}
