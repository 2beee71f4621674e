package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/export"
	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/student"
	"github.com/deitkd/deitkd/train"
)

const testdata = "../../testdata"

func idx(name string) string { return "idx:" + filepath.Join(testdata, "idx", name) }

// labelStore labels testdata/idx/NAME with the tiny grey teacher: a real precompute run.
func labelStore(t *testing.T, name string, views int) string {
	t.Helper()
	return labelStoreSeed(t, name, views, 1)
}

// labelStoreSeed is labelStore with the views' seed, which makes another store of the same
// images and teacher.
func labelStoreSeed(t *testing.T, name string, views int, seed uint64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	job, err := precompute.New(precompute.Options{Model: filepath.Join(testdata, "models", "tiny_gray.onnx"), Data: idx(name), Out: dir,
		Mean: []float64{0.286}, Std: []float64{0.353}, Workers: 1, Threads: 1, Views: views, Seed: seed, Scale: [2]float64{0.35, 1}})
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
func runTrain(t *testing.T, args ...string) (int, string, string) {
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
	code, stdout, stderr := runTrain(t, args...)
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
	// Stored views are replayed: no train-time crop range is chosen, said or recorded.
	if runJSON, err := os.ReadFile(filepath.Join(out, "run.json")); err != nil || strings.Contains(string(runJSON), "aug_scale") ||
		strings.Contains(stderr, "train-time views are whole images") {
		t.Errorf("a stored-view run chose a train-time crop range (%v):\n%s\n%s", err, runJSON, stderr)
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
	if code, _, stderr := runTrain(t, append(args, "--resume")...); code != exitOK {
		t.Fatalf("resume of a finished run: exit %d\n%s", code, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl")); !bytes.Equal(before, after) {
		t.Errorf("resume of a finished run changed metrics.jsonl")
	}
	// --resume with another recipe is refused, naming the field.
	code, _, stderr = runTrain(t, append(args, "--resume", "--alpha", "0.7")...)
	if code != exitFatal || !strings.Contains(stderr, "recipe.loss.alpha") {
		t.Errorf("resume with another alpha: exit %d\n%s", code, stderr)
	}
	// A run into a used folder without --resume is a usage error.
	if code, _, stderr := runTrain(t, args...); code != exitUsage || !strings.Contains(stderr, "--resume") {
		t.Errorf("second run into %s: exit %d\n%s", out, code, stderr)
	}

	// --analyze: one cosine per block and the input.
	code, stdout, stderr = runTrain(t, "--analyze", filepath.Join(out, "checkpoint.ckpt"), "--eval-data", idx("t10k"), "--labels", lab)
	if code != exitOK || !strings.Contains(stdout, "input (embedding)") || !strings.Contains(stdout, "after block 2") {
		t.Errorf("--analyze: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestResumeStoreIdentity: a resume compares the label stores by identity, not by path: the
// same store named by a relative path, or moved, resumes; another store at the same path
// (here one precomputed with another view seed) is refused, naming the store and the key.
func TestResumeStoreIdentity(t *testing.T) {
	lab, evalLab := labelStore(t, "train", 1), labelStore(t, "t10k", 1)
	other, otherEval := labelStoreSeed(t, "train", 1, 2), labelStoreSeed(t, "t10k", 1, 2)
	out := filepath.Join(t.TempDir(), "run")
	args := func(lab, evalLab string) []string {
		return []string{"--labels", lab, "--data", idx("train"), "--eval-data", idx("t10k"), "--eval-labels", evalLab, "--out", out, "--epochs", "1"}
	}
	if code, _, stderr := runTrain(t, args(lab, evalLab)...); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	type storeID struct {
		TeacherSHA256  string `json:"teacher_sha256"`
		DatasetIDHash  string `json:"dataset_id_hash"`
		ManifestSHA256 string `json:"manifest_sha256"`
	}
	var rec struct { // run.json as train writes it
		Settings struct {
			LabelsStore     *storeID `json:"labels_store"`
			EvalLabelsStore *storeID `json:"eval_labels_store"`
		} `json:"settings"`
		Inputs struct {
			Labels     string `json:"labels"`
			EvalLabels string `json:"eval_labels"`
		} `json:"inputs"`
	}
	b, _ := os.ReadFile(filepath.Join(out, "run.json"))
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if id := rec.Settings.LabelsStore; id == nil || len(id.TeacherSHA256) != 64 || len(id.DatasetIDHash) != 64 || len(id.ManifestSHA256) != 64 ||
		rec.Settings.EvalLabelsStore == nil || rec.Inputs.Labels != lab || rec.Inputs.EvalLabels != evalLab {
		t.Fatalf("run.json records %s", b)
	}

	cwd, _ := os.Getwd()
	rel, err := filepath.Rel(cwd, lab)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runTrain(t, append(args(rel+"/", evalLab), "--resume")...); code != exitOK || !strings.Contains(stderr, "nothing to do") {
		t.Fatalf("resume naming the store by the relative path %s: exit %d\n%s", rel, code, stderr)
	}
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(lab, moved); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runTrain(t, append(args(moved, evalLab), "--resume")...)
	if code != exitOK || !strings.Contains(stderr, "inputs.labels: the run had \""+lab+"\", now \""+moved+"\"") {
		t.Fatalf("resume against the moved store: exit %d, want 0 and a note of the move\n%s", code, stderr)
	}
	for _, tc := range []struct {
		name         string
		labels, eval string
		want         string
	}{
		{"another train store", other, evalLab, "settings.labels_store.manifest_sha256: the run had"},
		{"another eval store", moved, otherEval, "settings.eval_labels_store.manifest_sha256: the run had"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runTrain(t, append(args(tc.labels, tc.eval), "--resume")...)
			if code != exitFatal || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want %d naming %q\n%s", code, exitFatal, tc.want, stderr)
			}
		})
	}
	// The same, at the path the run recorded.
	if err := os.Rename(other, lab); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runTrain(t, append(args(lab, evalLab), "--resume")...); code != exitFatal || !strings.Contains(stderr, "labels_store.manifest_sha256") {
		t.Fatalf("resume against another store at the recorded path: exit %d\n%s", code, stderr)
	}
}

// TestResumeLegacyRunFile: a run.json written before store identities (the stores' paths in
// its settings, no inputs) still resumes, by path, with a note; another path is refused.
func TestResumeLegacyRunFile(t *testing.T) {
	lab := labelStore(t, "train", 1)
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"--labels", lab, "--data", idx("train"), "--out", out, "--epochs", "1"}
	if code, _, stderr := runTrain(t, args...); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	path := filepath.Join(out, "run.json")
	var run map[string]any
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	st := run["settings"].(map[string]any)
	delete(st, "labels_store")
	delete(run, "inputs")
	st["labels"] = lab + "/" // as the user typed it
	b, _ = json.MarshalIndent(run, "", "  ")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runTrain(t, append(args, "--resume")...)
	if code != exitOK || !strings.Contains(stderr, "records its label stores by path only") {
		t.Fatalf("resume of a legacy run.json: exit %d\n%s", code, stderr)
	}
	elsewhere := filepath.Join(t.TempDir(), "labels")
	if err := os.Rename(lab, elsewhere); err != nil {
		t.Fatal(err)
	}
	args[1] = elsewhere
	code, _, stderr = runTrain(t, append(args, "--resume")...)
	if code != exitFatal || !strings.Contains(stderr, "settings.labels: the run had \""+lab+"/\", now \""+elsewhere+"\"") {
		t.Fatalf("resume of a legacy run.json from another path: exit %d\n%s", code, stderr)
	}
}

// TestExportBothWays: train --export and the export command on train's checkpoint, with
// --labels and without, write the same bytes — also for a student at --img 32 trained from a
// 28-pixel store, whose preprocessing is the store's scaled to 32 (issue 15).
func TestExportBothWays(t *testing.T) {
	lab := labelStore(t, "train", 1)
	out := filepath.Join(t.TempDir(), "run")
	code, _, stderr := runTrain(t, "--labels", lab, "--data", idx("train"), "--out", out, "--epochs", "1",
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
	if got, want := st.Metadata[schema.KeyPreprocess], `{"resize":32,"crop":32,"interpolation":"bilinear","mean":[0.286],"std":[0.353],"channels":1}`; got != want {
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
		{"bad fuse", []string{"--labels", lab, "--data", idx("train"), "--out", out, "--fuse", "max"}, exitUsage, `invalid value "max" for flag -fuse`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runTrain(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, stderr)
			}
		})
	}
}

// TestUsedFolder: a checkpoint without the run.json that says how it was made is never
// trained over: without --resume it is a usage error saying how to continue or start over,
// with --resume a fatal one naming what is missing; the checkpoint is kept.
func TestUsedFolder(t *testing.T) {
	lab := labelStore(t, "train", 1)
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"--labels", lab, "--data", idx("train"), "--out", out, "--epochs", "1"}
	if code, _, stderr := runTrain(t, args...); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	ckpt := filepath.Join(out, "checkpoint.ckpt")
	before, _ := os.ReadFile(ckpt)
	os.Remove(filepath.Join(out, "run.json"))
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"new run", append(args, "--lr", "0.01"), exitUsage, []string{"checkpoint.ckpt", "give --resume to continue it", "delete the folder"}},
		{"resume", append(args, "--resume"), exitFatal, []string{"holds checkpoint.ckpt but no run.json", "delete the folder"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runTrain(t, tc.args...)
			for _, w := range tc.want {
				if code != tc.code || !strings.Contains(stderr, w) {
					t.Fatalf("exit %d, want %d with %q:\n%s", code, tc.code, w, stderr)
				}
			}
			if now, _ := os.ReadFile(ckpt); !bytes.Equal(now, before) {
				t.Fatalf("the refused run changed the checkpoint")
			}
		})
	}
}

// TestFlagRefusals: a flag value no run can use is a usage error (exit 2) naming the flag and
// the value as given, before anything is opened or trained.
func TestFlagRefusals(t *testing.T) {
	lab := labelStore(t, "train", 1)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"negative epochs", []string{"--epochs", "-1"}, "--epochs -1: want ≥ 0 (0: evaluate the initial model, train nothing)"},
		{"batch 0", []string{"--batch", "0"}, "--batch 0: want ≥ 1"},
		{"tau 0", []string{"--tau", "0"}, "--tau 0: want > 0"},
		{"negative clip", []string{"--clip", "-1"}, "--clip -1: want ≥ 0 (0: no clipping)"},
		{"negative lr", []string{"--lr", "-1"}, "--lr -1: want ≥ 0 (0: the recipe's)"},
		{"NaN lr", []string{"--lr", "NaN"}, "--lr NaN: want ≥ 0"},
		{"negative min-lr", []string{"--min-lr", "-1e-5"}, "--min-lr -1e-05: want ≥ 0"},
		{"negative wd", []string{"--wd", "-0.1"}, "--wd -0.1: want ≥ 0 (0: none)"},
		{"min-lr above lr", []string{"--lr", "0.001", "--min-lr", "0.01"},
			"the final learning rate 0.01 (given) is above the peak 0.001 (given): want min_lr ≤ lr"},
		{"lr below the recipe's min-lr", []string{"--lr", "1e-6"},
			"the final learning rate 1e-05 (the recipe's) is above the peak 1e-06 (given)"},
		{"min-lr above the recipe's lr", []string{"--min-lr", "0.01"},
			"the final learning rate 0.01 (given) is above the peak 1.5625e-05 (the recipe's)"},
		{"alpha above 1", []string{"--alpha", "1.5"}, "--alpha 1.5: want in [0, 1]"},
		{"smoothing 1", []string{"--smoothing", "1"}, "--smoothing 1: want in [0, 1)"},
		{"negative drop-path", []string{"--drop-path", "-0.1"}, "--drop-path -0.1: want in [0, 1)"},
		{"views 0", []string{"--views-per-image", "0"}, "--views-per-image 0: want ≥ 1"},
		{"negative repeated-aug", []string{"--repeated-aug", "-1"}, "--repeated-aug -1: want ≥ 0 (0: off)"},
		{"repeated-aug with views-per-image", []string{"--repeated-aug", "3", "--views-per-image", "2"}, "--repeated-aug 3 with --views-per-image 2"},
		{"negative limit", []string{"--limit", "-1"}, "--limit -1: want ≥ 0"},
		{"negative workers", []string{"--workers", "-2"}, "--workers -2: want ≥ 1 (0: one per CPU)"},
		{"negative cache", []string{"--cache-mb", "-1"}, "--cache-mb -1: want ≥ 0 (0: no cache)"},
		{"bad distill", []string{"--distill", "kd"}, `invalid value "kd" for flag -distill: want none, soft or hard`},
		{"bad kl-norm", []string{"--kl-norm", "sum"}, `invalid value "sum" for flag -kl-norm: want batch or numel`},
		{"bad weight-init", []string{"--weight-init", "xavier"}, `invalid value "xavier" for flag -weight-init: "xavier": want timm or torch`},
		{"bad recipe", []string{"--recipe", "short"}, `invalid value "short" for flag -recipe: want default, deit or finetune`},
		{"bad fuse", []string{"--fuse", "softmax"}, `invalid value "softmax" for flag -fuse: want probs or logits`},
		{"bad randaugment", []string{"--randaugment", "rand-m9-inc0"}, `--randaugment: dataset: bad preprocessing config: RandAugment spec "rand-m9-inc0": section "inc0", want inc1`},
		{"erase above 1", []string{"--erase", "1.5"}, "--erase 1.5: want a probability in [0, 1] (0: none)"},
		{"negative mixup", []string{"--mixup", "-0.8"}, "--mixup -0.8: want an alpha ≥ 0 (0: none)"},
		{"NaN cutmix", []string{"--cutmix", "NaN"}, "--cutmix NaN: want an alpha ≥ 0"},
		{"mix-p above 1", []string{"--mix-p", "2"}, "--mix-p 2: want a probability in [0, 1]"},
		{"negative mix-switch", []string{"--mix-switch", "-1"}, "--mix-switch -1: want a probability in [0, 1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			args := append([]string{"--labels", lab, "--data", idx("train"), "--out", out}, tc.args...)
			code, _, stderr := runTrain(t, args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "{") {
				t.Fatalf("exit %d, want %d with %q (and no Go value dump):\n%s", code, exitUsage, tc.want, stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a refused run created %s", out)
			}
		})
	}
}

// TestZeroEpochs: --epochs 0 trains nothing: the initial model is evaluated (one eval record,
// epoch 0, step 0), kept as the checkpoint and exported; a resume has nothing to do, and one
// asking for epochs is refused naming the recorded 0.
func TestZeroEpochs(t *testing.T) {
	lab := labelStore(t, "train", 1)
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"--labels", lab, "--data", idx("train"), "--eval-data", idx("t10k"), "--out", out, "--epochs", "0", "--export", "onnx"}
	code, stdout, stderr := runTrain(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	b, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var r map[string]any
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &r) != nil || r["kind"] != "eval" || r["epoch"] != 0.0 || r["step"] != 0.0 || r["n"] != 3.0 {
		t.Fatalf("metrics.jsonl of zero epochs:\n%s", b)
	}
	if !strings.Contains(stdout, "    0           -") {
		t.Errorf("closing table:\n%s", stdout)
	}
	for _, f := range []string{"checkpoint.ckpt", "student.onnx"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("zero epochs: %v", err)
		}
	}
	if code, _, stderr := runTrain(t, append(args, "--resume")...); code != exitOK || !strings.Contains(stderr, "nothing to do") {
		t.Errorf("resume of a run of zero epochs: exit %d\n%s", code, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl")); !bytes.Equal(after, b) {
		t.Errorf("the resume changed metrics.jsonl")
	}
	if code, _, stderr := runTrain(t, append(args, "--resume", "--epochs", "1")...); code != exitFatal || !strings.Contains(stderr, "recipe.epochs: the run had 0, now 1") {
		t.Errorf("resume of zero epochs with one: exit %d\n%s", code, stderr)
	}
}

// TestNonFiniteLoss: a learning rate that blows the weights up stops the run with exit 1 and
// a message naming the step; the fixed-teacher log line is there too.
func TestNonFiniteLoss(t *testing.T) {
	lab := labelStore(t, "train", 1)
	out := filepath.Join(t.TempDir(), "run")
	code, _, stderr := runTrain(t, "--labels", lab, "--data", idx("train"), "--out", out, "--epochs", "50", "--lr", "2000", "--distill", "none")
	if code != exitFatal || !strings.Contains(stderr, "non-finite loss at step") {
		t.Fatalf("exit %d, want 1 naming the step:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "fixed teacher") {
		t.Errorf("a single-view store's run does not say fixed teacher:\n%s", stderr)
	}
}

func TestParseWarmup(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want *train.Warmup
		bad  bool
	}{
		{"", nil, false}, {"0.05", &train.Warmup{Frac: 0.05}, false}, {"2ep", &train.Warmup{Epochs: 2}, false},
		{"0.5ep", &train.Warmup{Epochs: 0.5}, false}, {"0", &train.Warmup{}, false}, {"0ep", &train.Warmup{}, false},
		{"1.5", nil, true}, {"-1ep", nil, true}, {"two", nil, true},
	} {
		got, err := parseWarmup(tc.in)
		if (err != nil) != tc.bad || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseWarmup(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestLiteralZeroFlags: --wd, --clip, --min-lr, --smoothing, --warmup and --alpha 0 are
// recorded in run.json as the 0 they are (an older train recorded 5e-324, −1 and 0.5), and
// --recipe default and --fuse probs as those words (an older train: "short", "softmax"), with
// the drop-path rate in the recipe (an older train: in the model config); a run.json with
// those old sentinels, words and places still resumes.
func TestLiteralZeroFlags(t *testing.T) {
	lab := labelStore(t, "train", 1)
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"--labels", lab, "--data", idx("train"), "--out", out, "--epochs", "1", "--recipe", "default", "--drop-path", "0.05",
		"--wd", "0", "--clip", "0", "--min-lr", "0", "--smoothing", "0", "--warmup", "0", "--alpha", "0", "--weight-init", "torch"}
	if code, _, stderr := runTrain(t, args...); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	runPath := filepath.Join(out, "run.json")
	b, err := os.ReadFile(runPath)
	if err != nil {
		t.Fatal(err)
	}
	var run struct {
		Recipe map[string]any `json:"recipe"`
		Model  map[string]any `json:"model"`
		Fuse   string         `json:"fuse"`
	}
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	if run.Recipe["recipe"] != "default" || run.Fuse != "probs" || run.Recipe["drop_path"] != 0.05 || run.Model["drop_path"] != nil {
		t.Errorf("run.json records recipe %v, fuse %q, drop_path %v (model: %v); want default, probs, 0.05 in the recipe",
			run.Recipe["recipe"], run.Fuse, run.Recipe["drop_path"], run.Model["drop_path"])
	}
	r, loss := run.Recipe, run.Recipe["loss"].(map[string]any)
	for k, v := range map[string]any{"wd": r["wd"], "clip": r["clip"], "min_lr": r["min_lr"], "warmup_frac": r["warmup_frac"],
		"warmup_epochs": r["warmup_epochs"], "loss.smoothing": loss["smoothing"], "loss.alpha": loss["alpha"]} {
		if v != 0.0 {
			t.Errorf("run.json recipe.%s = %v, want 0", k, v)
		}
	}
	if r["weight_init"] != "torch" {
		t.Errorf("run.json recipe.weight_init = %v, want torch", r["weight_init"])
	}
	// An older train's run.json: the sentinels it wrote for the same flags.
	old := strings.NewReplacer(`"wd": 0,`, `"wd": 5e-324,`, `"clip": 0,`, `"clip": -1,`, `"min_lr": 0,`, `"min_lr": 5e-324,`,
		`"smoothing": 0,`, `"smoothing": 5e-324,`, `"recipe": "default",`, `"recipe": "short",`, `"fuse": "probs",`, `"fuse": "softmax",`,
		`"drop_path": 0.05,`, ``, `"model": {`, `"model": {"drop_path": 0.05,`).Replace(string(b))
	if strings.Count(old, "short")+strings.Count(old, "softmax")+strings.Count(old, `{"drop_path"`) != 3 {
		t.Fatalf("run.json not in the expected form:\n%s", b)
	}
	if err := os.WriteFile(runPath, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runTrain(t, append(args, "--resume")...)
	if code != exitOK || !strings.Contains(stderr, "recipe.wd 5e-324, an older train's explicit 0: read as 0") || !strings.Contains(stderr, "nothing to do") ||
		!strings.Contains(stderr, "model.drop_path 0.05") || !strings.Contains(stderr, `fuse "softmax"`) ||
		!strings.Contains(stderr, `recipe.recipe "short", an older train's word: read as "default"`) {
		t.Errorf("resume of a run.json with sentinels: exit %d\n%s", code, stderr)
	}
}
