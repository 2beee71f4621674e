package train_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/student"
	"github.com/deitkd/deitkd/train"
)

const testdata = "../testdata"

var storeDir string

func TestMain(m *testing.M) {
	var err error
	if storeDir, err = os.MkdirTemp("", "loop-test-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(storeDir)
	os.Exit(code)
}

func idxSpec(name string) string { return "idx:" + filepath.Join(testdata, "idx", name) }

// labels makes (once) a label store of testdata/idx/NAME with the tiny grey teacher.
func labels(t testing.TB, name string, views int) string {
	t.Helper()
	dir := filepath.Join(storeDir, name+"-"+string(rune('0'+views)))
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err == nil {
		return dir
	}
	job, err := precompute.New(precompute.Options{Model: filepath.Join(testdata, "models", "tiny_gray.onnx"), Data: idxSpec(name), Out: dir,
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

// tiny is a student small enough that a test epoch takes milliseconds.
var tiny = student.Config{Patch: 7, Dim: 16, Depth: 2, Heads: 2, MLPRatio: 2}

func options(t testing.TB, out string, distill student.Distill, epochs int, lr float64) train.Options {
	t.Helper()
	return train.Options{Labels: labels(t, "train", 4), Data: idxSpec("train"), EvalData: idxSpec("t10k"), Out: out,
		Arch: tiny, Epochs: epochs, Batch: 2, Seed: 3, LR: lr, Distill: &distill, Alpha: 0.5, Tau: 1, KLNorm: "batch", Workers: 2}
}

// runJob resolves and runs o.
func runJob(ctx context.Context, o train.Options) (*train.Summary, error) {
	job, err := train.New(ctx, o)
	if err != nil {
		return nil, err
	}
	return job.Run(ctx)
}

// records reads metrics.jsonl as generic objects.
func records(t testing.TB, out string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(out, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out2 []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		out2 = append(out2, m)
	}
	return out2
}

func TestTrainWritesMetricsAndCheckpoint(t *testing.T) {
	for _, distill := range []student.Distill{student.DistillNone, student.DistillHard, student.DistillSoft} {
		t.Run(string(distill), func(t *testing.T) {
			out := t.TempDir()
			var phases []string
			o := options(t, out, distill, 2, 0)
			o.Progress = func(p train.Progress) {
				if p.Final {
					phases = append(phases, p.Phase)
				}
			}
			sum, err := runJob(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"train", "eval", "train", "eval"}; !reflect.DeepEqual(phases, want) {
				t.Errorf("final progress calls %v, want %v", phases, want)
			}
			recs := records(t, out)
			var trains, eval int
			for _, r := range recs {
				switch r["kind"] {
				case "train":
					trains++
					for _, k := range []string{"step", "epoch", "loss", "ce_cls", "ce_dist", "kl", "lr", "img_s", "grad_norm"} {
						if _, ok := r[k]; !ok {
							t.Fatalf("train record %v lacks %s", r, k)
						}
					}
					if distill == "soft" && r["kl"].(float64) <= 0 || distill == "hard" && r["ce_dist"].(float64) <= 0 {
						t.Errorf("%s: record %v lacks its teacher term", distill, r)
					}
				case "eval":
					eval++
					for _, k := range []string{"top1_cls", "top1_dist", "top1_fused", "top5_cls", "top5_dist", "top5_fused"} {
						v, ok := r[k].(float64)
						if !ok || v < 0 || v > 1 {
							t.Fatalf("eval record %v: %s = %v, want a fraction", r, k, r[k])
						}
					}
					if r["n"].(float64) != 3 {
						t.Errorf("eval over %v images, want 3", r["n"])
					}
				}
			}
			// 5 images, batch 2: 3 steps an epoch.
			if trains != 6 || eval != 2 || sum.Steps != 6 || len(sum.Epochs) != 2 {
				t.Fatalf("%d train and %d eval records, %d steps, %d epochs; want 6, 2, 6, 2", trains, eval, sum.Steps, len(sum.Epochs))
			}
			m, err := student.LoadModel(filepath.Join(out, train.CheckpointFile))
			if err != nil {
				t.Fatal(err)
			}
			if m.Config().Dim != 16 {
				t.Errorf("checkpoint holds %+v", m.Config())
			}
			var buf bytes.Buffer
			sum.WriteTable(&buf)
			if !strings.Contains(buf.String(), "top1 fused") || strings.Count(buf.String(), "\n") != 4 {
				t.Errorf("table:\n%s", buf.String())
			}
		})
	}
}

// stripTimes removes the fields that measure time from metrics records.
func stripTimes(recs []map[string]any) []map[string]any {
	for _, r := range recs {
		delete(r, "img_s")
		delete(r, "train_img_s")
		delete(r, "epoch_s")
	}
	return recs
}

// TestResume: a run interrupted in its second epoch and resumed writes the same metrics and
// ends with the same parameters as one that ran through.
func TestResume(t *testing.T) {
	whole := t.TempDir()
	if _, err := runJob(context.Background(), options(t, whole, "hard", 3, 0)); err != nil {
		t.Fatal(err)
	}
	cut := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	o := options(t, cut, "hard", 3, 0)
	o.Progress = func(p train.Progress) {
		if p.Phase == "train" && p.Epoch == 2 && p.Batch == 2 {
			cancel()
		}
	}
	if _, err := runJob(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v, want canceled", err)
	}
	if n := len(records(t, cut)); n != 3+1+2 {
		t.Fatalf("the interrupted run wrote %d records, want 6 (3 steps, 1 eval, 2 steps of epoch 2)", n)
	}
	// Without --resume the folder is refused; with another recipe the resume is.
	if _, err := runJob(context.Background(), options(t, cut, "hard", 3, 0)); !errors.Is(err, train.ErrOptions) {
		t.Fatalf("a new run into a used folder: %v", err)
	}
	o = options(t, cut, "hard", 3, 0.01)
	o.Resume = true
	if _, err := runJob(context.Background(), o); !errors.Is(err, train.ErrResume) || !strings.Contains(err.Error(), "recipe.lr") {
		t.Fatalf("resume with another lr: %v, want a refusal naming recipe.lr", err)
	}
	o = options(t, cut, "hard", 3, 0)
	o.Resume = true
	sum, err := runJob(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Epochs) != 3 {
		t.Errorf("resumed summary has %d epochs, want 3", len(sum.Epochs))
	}
	a, b := stripTimes(records(t, whole)), stripTimes(records(t, cut))
	if !reflect.DeepEqual(a, b) {
		for i := range min(len(a), len(b)) {
			if !reflect.DeepEqual(a[i], b[i]) {
				t.Fatalf("record %d: uninterrupted %v, resumed %v", i, a[i], b[i])
			}
		}
		t.Fatalf("%d records uninterrupted, %d resumed", len(a), len(b))
	}
	// Interrupted before its first checkpoint, --resume starts over and gives the same run.
	early := t.TempDir()
	ctx, cancel = context.WithCancel(context.Background())
	o = options(t, early, "hard", 3, 0)
	o.Progress = func(p train.Progress) {
		if p.Phase == "train" && p.Epoch == 1 && p.Batch == 2 {
			cancel()
		}
	}
	o.Resume = true // a fresh folder: --resume starts the run
	if _, err := runJob(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v, want canceled", err)
	}
	o = options(t, early, "hard", 3, 0)
	o.Resume = true
	if _, err := runJob(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if c := stripTimes(records(t, early)); !reflect.DeepEqual(a, c) {
		t.Fatalf("run interrupted in its first epoch and resumed: %d records, uninterrupted %d, or they differ", len(c), len(a))
	}

	ma, err := student.LoadModel(filepath.Join(whole, train.CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	mb, err := student.LoadModel(filepath.Join(cut, train.CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := ma.Params(), mb.Params()
	for i := range pa {
		if !reflect.DeepEqual(pa[i].Data, pb[i].Data) {
			t.Fatalf("parameter %s differs after resume", pa[i].Name)
		}
	}
}

// TestRefusesForeignRun: a folder whose files this run cannot trace to its own run.json is
// never trained into: without Resume any run file refuses it; with Resume a checkpoint without
// run.json is refused (and kept), and so is a metrics.jsonl that lost records before the
// checkpoint (deleted or cut), which would leave the history with a gap.
func TestRefusesForeignRun(t *testing.T) {
	ctx := context.Background()
	t.Run("new run, run.json only", func(t *testing.T) {
		out := t.TempDir()
		if err := os.WriteFile(filepath.Join(out, train.RunFile), []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := runJob(ctx, options(t, out, "hard", 1, 0))
		var fe *train.FolderError
		if !errors.Is(err, train.ErrOptions) || !strings.Contains(err.Error(), train.RunFile) || !errors.As(err, &fe) || !fe.Resumable {
			t.Fatalf("Train into a folder holding run.json: %v, want ErrOptions naming run.json, a resumable FolderError", err)
		}
	})

	// A run interrupted in its second epoch: a checkpoint at step 3 and metrics past it.
	interrupted := func(t *testing.T) string {
		out := t.TempDir()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		o := options(t, out, "hard", 3, 0)
		o.Progress = func(p train.Progress) {
			if p.Phase == "train" && p.Epoch == 2 && p.Batch == 2 {
				cancel()
			}
		}
		if _, err := runJob(ctx, o); !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted run: %v, want canceled", err)
		}
		return out
	}
	resume := func(t *testing.T, out string) error {
		o := options(t, out, "hard", 3, 0)
		o.Resume = true
		_, err := runJob(ctx, o)
		return err
	}
	unchanged := func(t *testing.T, out string, before map[string][]byte) {
		t.Helper()
		for f, b := range before {
			if now, _ := os.ReadFile(filepath.Join(out, f)); !bytes.Equal(now, b) {
				t.Errorf("the refused run changed %s", f)
			}
		}
	}
	read := func(out string, files ...string) map[string][]byte {
		m := map[string][]byte{}
		for _, f := range files {
			m[f], _ = os.ReadFile(filepath.Join(out, f))
		}
		return m
	}

	t.Run("resume without run.json", func(t *testing.T) {
		out := interrupted(t)
		os.Remove(filepath.Join(out, train.RunFile))
		before := read(out, train.CheckpointFile, train.MetricsFile)
		err := resume(t, out)
		if !errors.Is(err, train.ErrResume) || !strings.Contains(err.Error(), "no "+train.RunFile) || !strings.Contains(err.Error(), train.CheckpointFile) {
			t.Fatalf("resume of a checkpoint without run.json: %v, want ErrResume naming both", err)
		}
		unchanged(t, out, before)
	})
	t.Run("resume without run.json or checkpoint", func(t *testing.T) {
		out := interrupted(t)
		os.Remove(filepath.Join(out, train.RunFile))
		os.Remove(filepath.Join(out, train.CheckpointFile))
		before := read(out, train.MetricsFile)
		if err := resume(t, out); !errors.Is(err, train.ErrResume) || !strings.Contains(err.Error(), train.MetricsFile) {
			t.Fatalf("resume of metrics without run.json: %v, want ErrResume naming metrics.jsonl", err)
		}
		unchanged(t, out, before)
	})
	for _, tc := range []struct {
		name string
		keep int // lines of metrics.jsonl kept; -1: the file is deleted
		want string
	}{
		{"resume after metrics.jsonl was deleted", -1, "is missing"},
		{"resume after metrics.jsonl was cut", 2, "holds 2 of the 3 step records and 0 of the 1 epoch records"},
		{"resume after the epoch record was cut", 3, "holds 3 of the 3 step records and 0 of the 1 epoch records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := interrupted(t)
			path := filepath.Join(out, train.MetricsFile)
			if tc.keep < 0 {
				os.Remove(path)
			} else {
				b, _ := os.ReadFile(path)
				lines := strings.SplitAfter(string(b), "\n")
				os.WriteFile(path, []byte(strings.Join(lines[:tc.keep], "")), 0o644)
			}
			before := read(out, train.CheckpointFile, train.MetricsFile)
			err := resume(t, out)
			if !errors.Is(err, train.ErrResume) || !strings.Contains(err.Error(), train.MetricsFile) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("resume: %v, want ErrResume naming metrics.jsonl with %q", err, tc.want)
			}
			unchanged(t, out, before)
		})
	}
}

// TestResumeRefusalShowsLiteralValues: a refused resume shows the recorded value as it was
// given, even where run.json left a zero out (the recipe's seed 0), and names every field that
// differs.
func TestResumeRefusalShowsLiteralValues(t *testing.T) {
	out := t.TempDir()
	o := options(t, out, "hard", 1, 0)
	o.Seed = 0
	if _, err := runJob(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	o = options(t, out, "hard", 1, 0)
	o.Seed = 4
	o.Alpha = 0.7
	o.Resume = true
	_, err := runJob(context.Background(), o)
	if !errors.Is(err, train.ErrResume) || !strings.Contains(err.Error(), "recipe.seed: the run had 0, now 4") ||
		!strings.Contains(err.Error(), "recipe.loss.alpha: the run had 0.5, now 0.7") {
		t.Fatalf("resume with another seed and alpha: %v, want both named with their literal values", err)
	}
}

// TestNonFiniteStops: a learning rate that blows the weights up ends the run with
// student.ErrNonFinite naming the step, and the checkpoint of the last finished epoch stays.
func TestNonFiniteStops(t *testing.T) {
	out := t.TempDir()
	o := options(t, out, "none", 50, 2e3)
	var saved []byte
	o.Saved = func(path string, step int) { saved, _ = os.ReadFile(path) }
	sum, err := runJob(context.Background(), o)
	if !errors.Is(err, student.ErrNonFinite) || !strings.Contains(err.Error(), "step") {
		t.Fatalf("Train: %v, want a non-finite loss naming the step", err)
	}
	t.Log(err)
	if sum.Checkpoint == "" {
		t.Fatalf("diverged in the first epoch; raise the test's epochs or lower its lr so an epoch finishes first")
	}
	if !strings.Contains(err.Error(), "last good checkpoint") {
		t.Errorf("error does not point at the kept checkpoint: %v", err)
	}
	now, err := os.ReadFile(sum.Checkpoint)
	if err != nil || !bytes.Equal(now, saved) {
		t.Fatalf("checkpoint changed after the last finished epoch (or unreadable: %v)", err)
	}
	m, err := student.LoadModel(sum.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		for _, v := range p.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("kept checkpoint has a non-finite %s", p.Name)
			}
		}
	}
}

func TestAnalyze(t *testing.T) {
	out := t.TempDir()
	o := options(t, out, "hard", 1, 0)
	if _, err := runJob(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	cos, err := train.Analyze(context.Background(), train.AnalyzeOptions{Checkpoint: filepath.Join(out, train.CheckpointFile),
		EvalData: o.EvalData, Labels: o.Labels, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(cos) != tiny.Depth+1 {
		t.Fatalf("%d cosines for depth %d", len(cos), tiny.Depth)
	}
	for _, c := range cos {
		if !(c >= -1-1e-6 && c <= 1+1e-6) {
			t.Fatalf("cosine %v outside [-1, 1]", c)
		}
	}
	var buf bytes.Buffer
	train.WriteAnalysis(&buf, cos)
	if !strings.Contains(buf.String(), "after block 2") {
		t.Errorf("analysis table:\n%s", buf.String())
	}
}

func TestProgressPrinter(t *testing.T) {
	var buf bytes.Buffer
	p := train.ProgressPrinter(&buf, false, time.Hour)
	p(train.Progress{Phase: "train", Epoch: 1, Epochs: 2, Batch: 1, Batches: 3, Loss: 2.3})
	p(train.Progress{Phase: "train", Epoch: 1, Epochs: 2, Batch: 2, Batches: 3, Loss: 2.2}) // within the interval
	p(train.Progress{Phase: "train", Epoch: 1, Epochs: 2, Batch: 3, Batches: 3, Loss: 2.1, Final: true, Elapsed: time.Second})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "batch 3/3") || !strings.Contains(lines[1], "done in 1s") ||
		!strings.Contains(lines[1], "mean loss 2.1000") {
		t.Fatalf("lines %q", lines)
	}
	buf.Reset()
	p = train.ProgressPrinter(&buf, true, time.Second)
	p(train.Progress{Phase: "train", Epoch: 1, Epochs: 1, Batch: 3, Batches: 3, Loss: 2.1, Final: true})
	if !strings.Contains(buf.String(), "3/3") {
		t.Fatalf("bar %q", buf.String())
	}
}

// A run without an eval set writes one "epoch" record per epoch, holding only the training
// fields, and its progress shows the epoch's mean loss.
func TestEpochRecordWithoutEvalSet(t *testing.T) {
	out := t.TempDir()
	o := options(t, out, student.DistillHard, 2, 0)
	o.EvalData, o.EvalLabels = "", ""
	var last train.Progress
	o.Progress = func(p train.Progress) {
		if p.Final && p.Phase == "train" {
			last = p
		}
	}
	sum, err := runJob(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var epochs []map[string]any
	for _, r := range records(t, out) {
		switch r["kind"] {
		case "epoch":
			epochs = append(epochs, r)
		case "eval":
			t.Fatalf("eval record %v without an eval set", r)
		}
	}
	if len(epochs) != 2 {
		t.Fatalf("%d epoch records, want 2", len(epochs))
	}
	want := []string{"epoch", "epoch_s", "kind", "step", "train_img_s", "train_loss"}
	var keys []string
	for k := range epochs[1] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("epoch record keys %v, want %v", keys, want)
	}
	if got := epochs[1]["train_loss"].(float64); got != sum.Epochs[1].TrainLoss || got != last.Loss {
		t.Errorf("epoch 2 train_loss %v, summary %v, last progress %v: want one value", got, sum.Epochs[1].TrainLoss, last.Loss)
	}
}

// Limit limits the training images only, EvalLimit the eval images; a run.json written
// before there was an EvalLimit (whose limit limited both) resumes with EvalLimit = Limit and
// refuses another, naming settings.eval_limit.
func TestEvalLimit(t *testing.T) {
	evalN := func(out string) []float64 {
		var n []float64
		for _, r := range records(t, out) {
			if r["kind"] == "eval" {
				n = append(n, r["n"].(float64))
			}
		}
		return n
	}
	out := t.TempDir()
	o := options(t, out, student.DistillHard, 1, 0)
	o.Limit = 2
	sum, err := runJob(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if n := evalN(out); sum.Steps != 1 || !reflect.DeepEqual(n, []float64{3}) {
		t.Fatalf("Limit 2: %d steps and eval over %v images, want 1 step of 2 images and all 3 eval images", sum.Steps, n)
	}

	out = t.TempDir()
	o = options(t, out, student.DistillHard, 2, 0)
	o.Limit, o.EvalLimit = 2, 2
	ctx, cancel := context.WithCancel(context.Background())
	o.Progress = func(p train.Progress) {
		if p.Phase == "train" && p.Epoch == 2 {
			cancel()
		}
	}
	if _, err := runJob(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if n := evalN(out); !reflect.DeepEqual(n, []float64{2}) {
		t.Fatalf("EvalLimit 2: eval over %v images, want 2", n)
	}
	// Rewrite run.json as an older train wrote it: no eval_limit.
	path := filepath.Join(out, train.RunFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var run map[string]any
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	delete(run["settings"].(map[string]any), "eval_limit")
	if b, err = json.Marshal(run); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	o = options(t, out, student.DistillHard, 2, 0)
	o.Limit, o.Resume = 2, true
	if _, err := runJob(context.Background(), o); !errors.Is(err, train.ErrResume) || !strings.Contains(err.Error(), "settings.eval_limit") {
		t.Fatalf("resume of an old run (limit 2) with EvalLimit 0: %v, want a refusal naming settings.eval_limit", err)
	}
	o.EvalLimit = 2
	var logs []string
	o.Log = func(s string) { logs = append(logs, s) }
	if _, err := runJob(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if n := evalN(out); !reflect.DeepEqual(n, []float64{2, 2}) {
		t.Fatalf("resumed old run: eval over %v images, want 2, 2", n)
	}
	if !strings.Contains(strings.Join(logs, "\n"), "no settings.eval_limit") {
		t.Errorf("log %q does not say how the old run.json was read", logs)
	}
}
