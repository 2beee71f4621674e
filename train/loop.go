package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deitkd/deitkd/export"
	"github.com/deitkd/deitkd/internal/atomicfile"
	"github.com/deitkd/deitkd/internal/fielddiff"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/student"
	"github.com/deitkd/deitkd/traindata"
)

// File names inside Options.Out.
const (
	RunFile        = "run.json"
	MetricsFile    = "metrics.jsonl"
	CheckpointFile = "checkpoint.ckpt"
)

// Sentinel errors.
var (
	ErrOptions = errors.New("train: bad option")
	ErrResume  = errors.New("train: cannot resume")
)

// FolderError is a run refused for what its output folder (Options.Out) holds; it wraps
// ErrOptions or ErrResume and says what the folder holds. Starting over in another folder,
// or after deleting this one, always works; Resumable says that resuming (Options.Resume)
// would also continue what is there. The caller words these ways out in its own terms
// (cmd/train in flags).
type FolderError struct {
	Resumable bool
	err       error
}

func (e *FolderError) Error() string { return e.err.Error() }
func (e *FolderError) Unwrap() error { return e.err }

// Progress is the state of a run.
type Progress struct {
	Phase            string  // "train" or "eval"
	Epoch, Epochs    int     // Epoch counts from 1
	Batch, Batches   int     // batches done in this phase of this epoch
	Step             int     // optimiser steps done
	Loss             float64 // mean of this epoch's step losses so far (the epoch's train_loss when Final)
	ImagesPerSec     float64
	Elapsed          time.Duration // in this phase of this epoch
	Final            bool          // the phase of this epoch is done
	ResumedFromBatch int           // batches of this epoch done before a resume
}

// TrainRecord is a metrics.jsonl line per step.
type TrainRecord struct {
	Kind     string  `json:"kind"` // "train"
	Epoch    int     `json:"epoch"`
	Step     int     `json:"step"`
	Loss     float64 `json:"loss"`
	CECls    float64 `json:"ce_cls"`
	CEDist   float64 `json:"ce_dist"`
	KL       float64 `json:"kl"`
	LR       float64 `json:"lr"`
	GradNorm float64 `json:"grad_norm"`
	ImgS     float64 `json:"img_s"` // rows per second of this step, data waits included
}

// EvalRecord is a metrics.jsonl line per epoch. Accuracies are fractions in [0, 1]. Without
// an eval set the line has kind "epoch" and only the training fields.
type EvalRecord struct {
	Kind      string  `json:"kind"` // "eval" (or "epoch")
	Epoch     int     `json:"epoch"`
	Step      int     `json:"step"`
	N         int     `json:"n"`
	Top1Cls   float64 `json:"top1_cls"`
	Top1Dist  float64 `json:"top1_dist"`
	Top1Fused float64 `json:"top1_fused"`
	Top5Cls   float64 `json:"top5_cls"`
	Top5Dist  float64 `json:"top5_dist"`
	Top5Fused float64 `json:"top5_fused"`
	TrainLoss float64 `json:"train_loss"` // mean of the epoch's step losses
	TrainImgS float64 `json:"train_img_s"`
	EpochS    float64 `json:"epoch_s"` // wall time of the epoch's training, seconds
}

// epochRecord is the line per epoch of a run without an eval set.
type epochRecord struct {
	Kind      string  `json:"kind"` // "epoch"
	Epoch     int     `json:"epoch"`
	Step      int     `json:"step"`
	TrainLoss float64 `json:"train_loss"`
	TrainImgS float64 `json:"train_img_s"`
	EpochS    float64 `json:"epoch_s"`
}

// Summary is what a run did.
type Summary struct {
	Epochs     []EvalRecord // one per epoch trained in this process or before a resume
	Steps      int
	Checkpoint string // the last checkpoint written, "" if none
	Params     int
	Exports    []string // the files Options.Export wrote
}

// runFile is the content of run.json.
type runFile struct {
	Model    student.Config      `json:"model"`
	Recipe   student.TrainConfig `json:"recipe"`
	Fuse     student.Fuse        `json:"fuse"`
	Settings settings            `json:"settings"`
	Inputs   inputs              `json:"inputs"` // not compared: see inputs
}

// Run trains (or with Options.Resume continues) the run, writes Options.Export after it, and
// returns its summary. A non-finite
// loss ends it with an error wrapping student.ErrNonFinite that names the step and the last
// good checkpoint, which is left as it was.
func (j *Job) Run(ctx context.Context) (*Summary, error) {
	m, err := j.initialModel()
	if err != nil {
		return nil, err
	}
	// The checkpoint records the student's eval transform and class names, so that export
	// needs no label store and train --export writes what export writes.
	pre, err := j.train.Preprocess()
	if err != nil {
		return nil, err
	}
	if err := m.SetPreprocess(pre, j.train.Meta().ClassNames); err != nil {
		return nil, err
	}
	tr, err := student.NewTrainer(m, j.recipe)
	if err != nil {
		return nil, err
	}
	run := runFile{Model: m.Config(), Recipe: tr.Config, Fuse: j.o.Fuse, Settings: j.settings, Inputs: j.inputs}
	if err := os.MkdirAll(j.o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	ckpt := filepath.Join(j.o.Out, CheckpointFile)
	sum := &Summary{Params: m.NumParams()}
	var records []EvalRecord
	runPath := filepath.Join(j.o.Out, RunFile)
	_, noRun := os.Stat(runPath)
	_, noCkpt := os.Stat(ckpt)
	_, noMetrics := os.Stat(filepath.Join(j.o.Out, MetricsFile))
	switch {
	case j.o.Resume && noRun == nil && noCkpt == nil:
		if err := checkRun(runPath, run, j.o.Log); err != nil {
			return nil, err
		}
		if err := tr.Load(ckpt); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrResume, err)
		}
		if records, err = truncateMetrics(filepath.Join(j.o.Out, MetricsFile), tr.Steps(), tr.Steps()/j.recipe.StepsPerEpoch); err != nil {
			return nil, err
		}
		sum.Checkpoint = ckpt
		if j.o.Init != "" {
			j.o.Log(fmt.Sprintf("the checkpoint wins: the weights are %s's, not those of the init file %s (the run began from it; its sha256 agrees)", ckpt, j.o.Init))
		}
		if tr.Steps() >= j.recipe.StepsPerEpoch*tr.Config.Epochs {
			j.o.Log(fmt.Sprintf("the run in %s is complete (step %d): nothing to do", j.o.Out, tr.Steps()))
		} else {
			j.o.Log(fmt.Sprintf("resumed from %s at step %d (epoch %d)", ckpt, tr.Steps(), tr.Steps()/j.recipe.StepsPerEpoch+1))
		}
	case j.o.Resume && noRun != nil && (noCkpt == nil || noMetrics == nil):
		// Whatever wrote these files did not record its settings: this run cannot be checked
		// against it, and starting over would overwrite its checkpoint or history.
		have := CheckpointFile
		if noCkpt != nil {
			have = MetricsFile
		}
		return nil, &FolderError{err: fmt.Errorf("%w: %s holds %s but no %s (the settings of the run that wrote it), so it cannot be continued",
			ErrResume, j.o.Out, have, RunFile)}
	case j.o.Resume:
		// Nothing to resume from: the run never finished an epoch (or never began). Start it,
		// dropping what an interrupted first epoch wrote.
		if noRun == nil {
			if err := checkRun(runPath, run, j.o.Log); err != nil {
				return nil, err
			}
		}
		if _, err := truncateMetrics(filepath.Join(j.o.Out, MetricsFile), 0, 0); err != nil {
			return nil, err
		}
		if err := writeJSONAtomic(runPath, run); err != nil {
			return nil, err
		}
		j.o.Log(fmt.Sprintf("no checkpoint in %s yet: starting from step 0", j.o.Out))
	default:
		for _, f := range []string{CheckpointFile, RunFile, MetricsFile} {
			if _, err := os.Stat(filepath.Join(j.o.Out, f)); err == nil {
				return nil, &FolderError{Resumable: true, err: fmt.Errorf("%w: %s already holds a run (%s)", ErrOptions, j.o.Out, f)}
			}
		}
		if err := writeJSONAtomic(runPath, run); err != nil {
			return nil, err
		}
	}
	sum.Epochs = records
	mf, err := os.OpenFile(filepath.Join(j.o.Out, MetricsFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer mf.Close()
	mw := bufio.NewWriter(mf)
	emit := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("train: metrics record: %w", err)
		}
		mw.Write(append(b, '\n'))
		return nil
	}
	flush := func() error {
		if err := mw.Flush(); err != nil {
			return fmt.Errorf("train: write %s: %w", mf.Name(), err)
		}
		return nil
	}
	defer flush()

	if j.eval != nil {
		if acc, n := j.eval.TeacherAccuracy(); n > 0 {
			j.o.Log(fmt.Sprintf("teacher top-1 on the eval set (its label store, view 0): %.2f%% of %d", 100*acc, n))
		}
	}

	spe, epochs := j.recipe.StepsPerEpoch, tr.Config.Epochs
	// measure evaluates the model into rec, an epoch's record.
	measure := func(rec *EvalRecord) error {
		c, err := evaluate(ctx, m, j.eval, j.o.Fuse, func(p Progress) {
			p.Epoch, p.Epochs, p.Step = rec.Epoch, epochs, tr.Steps()
			j.o.Progress(p)
		})
		if err != nil {
			return err
		}
		n := float64(c.N)
		rec.N = c.N
		rec.Top1Cls, rec.Top1Dist, rec.Top1Fused = float64(c.Top1Cls)/n, float64(c.Top1Dist)/n, float64(c.Top1Fused)/n
		rec.Top5Cls, rec.Top5Dist, rec.Top5Fused = float64(c.Top5Cls)/n, float64(c.Top5Dist)/n, float64(c.Top5Fused)/n
		return nil
	}
	// save makes the metrics so far durable, then the checkpoint, so that a checkpoint never
	// runs ahead of the history that leads to it.
	save := func() error {
		if err := flush(); err != nil {
			return err
		}
		if err := mf.Sync(); err != nil {
			return fmt.Errorf("train: sync %s: %w", mf.Name(), err)
		}
		if err := tr.Save(ckpt); err != nil {
			return err
		}
		sum.Checkpoint = ckpt
		j.o.Saved(ckpt, tr.Steps())
		return nil
	}
	if epochs == 0 && sum.Checkpoint == "" {
		// Nothing to train: the initial model is evaluated as epoch 0 and kept as the
		// checkpoint, which export reads.
		if j.eval != nil {
			rec := EvalRecord{Kind: "eval"}
			if err := measure(&rec); err != nil {
				return sum, err
			}
			if err := emit(rec); err != nil {
				return sum, err
			}
			sum.Epochs = append(sum.Epochs, rec)
		}
		if err := save(); err != nil {
			return sum, err
		}
	}
	for epoch := tr.Steps() / spe; epoch < epochs; epoch++ {
		from := tr.Steps() - epoch*spe
		start, last := time.Now(), time.Now()
		var lossSum float64
		var rows, steps int
		err := j.train.Epoch(ctx, epoch, from, func(b *traindata.Batch) error {
			st, err := tr.TrainStep(student.Batch{Images: b.Images, Labels: b.Labels, TeacherHard: b.TeacherHard, TeacherProbs: b.TeacherProbs,
				MixLambda: b.MixLambda, MixLabels: b.MixLabels, MixTeacherHard: b.MixTeacherHard})
			if err != nil {
				return err
			}
			now := time.Now()
			rec := TrainRecord{Kind: "train", Epoch: epoch + 1, Step: st.Step, Loss: st.Loss.Total, CECls: st.Loss.CECls, CEDist: st.Loss.CEDist,
				KL: st.Loss.KL, LR: st.LR, GradNorm: st.GradNorm, ImgS: float64(b.Len()) / now.Sub(last).Seconds()}
			last = now
			lossSum += st.Loss.Total
			rows += b.Len()
			steps++
			if err := emit(rec); err != nil {
				return err
			}
			el := now.Sub(start)
			j.o.Progress(Progress{Phase: "train", Epoch: epoch + 1, Epochs: epochs, Batch: from + steps, Batches: spe, Step: tr.Steps(),
				Loss: lossSum / float64(steps), ImagesPerSec: float64(rows) / el.Seconds(), Elapsed: el, ResumedFromBatch: from})
			return nil
		})
		if err != nil {
			flush()
			if errors.Is(err, student.ErrNonFinite) {
				where := "no checkpoint was written (the first epoch had not finished)"
				if sum.Checkpoint != "" {
					where = fmt.Sprintf("the last good checkpoint, %s, is kept (step %d)", sum.Checkpoint, epoch*spe)
				}
				return sum, fmt.Errorf("training stopped in epoch %d: %w; %s", epoch+1, err, where)
			}
			return sum, err
		}
		trainTime := time.Since(start)
		rec := EvalRecord{Kind: "eval", Epoch: epoch + 1, Step: tr.Steps(), TrainImgS: float64(rows) / trainTime.Seconds(), EpochS: trainTime.Seconds()}
		if steps > 0 {
			rec.TrainLoss = lossSum / float64(steps)
		}
		j.o.Progress(Progress{Phase: "train", Epoch: epoch + 1, Epochs: epochs, Batch: spe, Batches: spe, Step: tr.Steps(),
			Loss: rec.TrainLoss, ImagesPerSec: rec.TrainImgS, Elapsed: trainTime, Final: true, ResumedFromBatch: from})
		if j.eval != nil {
			if err := measure(&rec); err != nil {
				return sum, err
			}
			if err := emit(rec); err != nil {
				return sum, err
			}
		} else {
			rec.Kind = "epoch"
			if err := emit(epochRecord{rec.Kind, rec.Epoch, rec.Step, rec.TrainLoss, rec.TrainImgS, rec.EpochS}); err != nil {
				return sum, err
			}
		}
		sum.Epochs = append(sum.Epochs, rec)
		if err := save(); err != nil {
			return sum, err
		}
	}
	sum.Steps = tr.Steps()
	// The checkpoint records the preprocessing and class names, as for export.
	if len(j.o.Export) > 0 {
		if sum.Exports, err = writeExports(j.o.Export, sum.Checkpoint, j.o.Out, export.Options{Fuse: j.o.Fuse}); err != nil {
			return sum, err
		}
		for _, p := range sum.Exports {
			j.o.Log("exported " + p)
		}
	}
	return sum, nil
}

// writeExports writes the checkpoint's model in each of formats into dir.
func writeExports(formats []string, ckpt, dir string, o export.Options) ([]string, error) {
	m, err := student.LoadModel(ckpt)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range formats {
		path, err := export.WriteFile(dir, f, m, o)
		if err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// evaluate counts the model's correct predictions over the eval set.
func evaluate(ctx context.Context, m *student.Model, set *traindata.Set, fuse student.Fuse, progress func(Progress)) (student.EvalCounts, error) {
	var total student.EvalCounts
	start := time.Now()
	nb := set.BatchesPerEpoch()
	done := 0
	err := set.Eval(ctx, func(b *traindata.Batch) error {
		c, err := m.Eval(student.Batch{Images: b.Images, Labels: b.Labels}, fuse)
		if err != nil {
			return fmt.Errorf("eval batch %d: %w", b.Index, err)
		}
		total.Add(c)
		done++
		el := time.Since(start)
		progress(Progress{Phase: "eval", Batch: done, Batches: nb, ImagesPerSec: float64(total.N) / el.Seconds(), Elapsed: el, Final: done == nb})
		return nil
	})
	return total, err
}

// checkRun refuses to resume a run whose settings differ, naming the fields that differ, and
// logs the inputs that moved.
func checkRun(path string, want runFile, log func(string)) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrResume, err)
	}
	var have map[string]any
	if err := json.Unmarshal(b, &have); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrResume, path, err)
	}
	wb, err := json.Marshal(want)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var now map[string]any
	json.Unmarshal(wb, &now)
	legacyPlaces(have, log)
	if err := legacyRecipe(have, log); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrResume, path, err)
	}
	haveIn, nowIn := have["inputs"], now["inputs"]
	delete(have, "inputs")
	delete(now, "inputs")
	if d := diff("", have, now); len(d) > 0 {
		return fmt.Errorf("%w: %s: %s (a resumed run continues exactly the run it resumes)", ErrResume, path, listDiffs(d))
	}
	if haveIn != nil && nowIn != nil {
		for _, d := range diff("inputs", haveIn, nowIn) {
			log(d + " (moved: the settings that identify it agree)")
		}
	}
	return nil
}

// legacyPlaces rewrites a run.json as read (have) where an older train put a value elsewhere
// or spelt it otherwise: the drop-path rate in the model config (now the recipe's), the
// fusion "softmax" (now "probs"), the eval set's limit (then the training limit). A recipe "short" (now "default") is read by
// student.Recipe itself, in legacyRecipe.
func legacyPlaces(have map[string]any, log func(string)) {
	if m, ok := have["model"].(map[string]any); ok {
		if dp, ok := m["drop_path"]; ok {
			delete(m, "drop_path")
			if r, ok := have["recipe"].(map[string]any); ok {
				if _, has := r["drop_path"]; !has {
					r["drop_path"] = dp
				}
			}
			log(fmt.Sprintf("run.json records model.drop_path %v, where an older train kept it: read as recipe.drop_path", dp))
		}
	}
	if st, ok := have["settings"].(map[string]any); ok {
		if _, has := st["eval_limit"]; !has {
			lim := st["limit"]
			if lim == nil || st["eval_data"] == nil {
				lim = 0.0
			}
			st["eval_limit"] = lim
			log(fmt.Sprintf("run.json has no settings.eval_limit (an older train's, whose limit applied to the eval set too): read as %v", lim))
		}
	}
	if f, ok := have["fuse"].(string); ok {
		var v student.Fuse
		if v.UnmarshalText([]byte(f)) == nil && string(v) != f {
			log(fmt.Sprintf("run.json records fuse %q, an older train's word: read as %q", f, v))
			have["fuse"] = string(v)
		}
	}
}

// legacyRecipe rewrites the recipe of a run.json as read (have) into the form this version
// writes: every field present, and the sentinels an older train recorded for an explicit zero
// (the smallest float64, 5e-324, for --wd, --min-lr, --warmup and --smoothing 0; a negative
// clip for --clip 0 and for the deit recipe's "no clipping") read as the 0 they meant, so that
// such a run resumes. An old run's --alpha 0 was trained with α 0.5 and recorded so: it
// differs from a literal 0 and is refused as a different recipe.
func legacyRecipe(have map[string]any, log func(string)) error {
	raw, ok := have["recipe"]
	if !ok {
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	var c student.TrainConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("recipe: %w", err)
	}
	if m, ok := raw.(map[string]any); ok && m["recipe"] != nil && m["recipe"] != string(c.Recipe) {
		log(fmt.Sprintf("run.json records recipe.recipe %q, an older train's word: read as %q", m["recipe"], c.Recipe))
	}
	for _, f := range []struct {
		name string
		v    *float64
	}{{"min_lr", &c.MinLR}, {"warmup_frac", &c.WarmupFrac}, {"warmup_epochs", &c.WarmupEpochs}, {"wd", &c.WD}, {"loss.smoothing", &c.Loss.Smoothing}} {
		if *f.v == math.SmallestNonzeroFloat64 {
			log(fmt.Sprintf("run.json records recipe.%s %g, an older train's explicit 0: read as 0", f.name, *f.v))
			*f.v = 0
		}
	}
	if c.WeightInit == "" {
		c.WeightInit = student.InitTimm // the only init before there was a choice
	}
	if c.Clip < 0 {
		log(fmt.Sprintf("run.json records recipe.clip %g, an older train's \"no clipping\": read as 0", c.Clip))
		c.Clip = 0
	}
	if b, err = json.Marshal(c); err != nil {
		return err
	}
	var m any
	json.Unmarshal(b, &m)
	have["recipe"] = m
	return nil
}

// readSettings decodes the Settings recorded in dir's run.json into v, so that a caller can
// tell which form an older run recorded them in. ok is false when dir holds no run.json.
func readSettings(dir string, v any) (ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, RunFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("train: %w", err)
	}
	var run struct {
		Settings json.RawMessage `json:"settings"`
	}
	if err := json.Unmarshal(b, &run); err != nil {
		return false, fmt.Errorf("%w: %s: %w", ErrResume, filepath.Join(dir, RunFile), err)
	}
	if len(run.Settings) > 0 {
		if err := json.Unmarshal(run.Settings, v); err != nil {
			return false, fmt.Errorf("%w: %s: settings: %w", ErrResume, filepath.Join(dir, RunFile), err)
		}
	}
	return true, nil
}

// diff lists, in key order, each path where two JSON values of run files differ, with both
// values.
func diff(path string, a, b any) []string {
	var out []string
	for _, f := range fielddiff.All(path, a, b) {
		out = append(out, fmt.Sprintf("%s: the run had %s, now %s", f.Path, literal(f.A, f.B), literal(f.B, f.A)))
	}
	return out
}

// literal shows a JSON value of a run file. A missing one (nil) is a field that omitempty left
// out, so it was the zero of its type, which the value on the other side shows: a seed of 0 is
// "0", not "null".
func literal(v, other any) string {
	if v == nil {
		switch other.(type) {
		case float64:
			return "0"
		case string:
			return `""`
		case bool:
			return "false"
		default:
			return "none"
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// listDiffs joins the first few differences and counts the rest.
func listDiffs(d []string) string {
	const show = 3 // a changed batch already moves batch, lr and steps_per_epoch
	if len(d) <= show {
		return strings.Join(d, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(d[:show], "; "), len(d)-show)
}

// truncateMetrics keeps the metrics of the steps before step and the evals of epochs before
// epoch (counted from 0): what the checkpoint's state had produced. A record an interrupted run
// wrote after its last checkpoint is dropped, so that a resumed run's file equals an
// uninterrupted one's. The file must hold every one of those records (steps 0…step−1, epochs
// 1…epoch): a file deleted or cut short is refused, and left as it is, rather than continued
// with its history silently lost. It returns the kept eval records.
func truncateMetrics(path string, step, epoch int) ([]EvalRecord, error) {
	b, err := os.ReadFile(path)
	missing := errors.Is(err, os.ErrNotExist)
	if missing {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	var kept bytes.Buffer
	var evals []EvalRecord
	var steps, epochs int // records of steps 0…steps−1 and epochs 1…epochs kept, in order
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	last := len(lines) - 1
	for n, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r struct {
			Kind  string `json:"kind"`
			Step  int    `json:"step"`
			Epoch int    `json:"epoch"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			if n == last {
				break // a line cut by a crash can only be the last
			}
			return nil, fmt.Errorf("%w: %s line %d: %v", ErrResume, path, n+1, err)
		}
		keep := (r.Kind == "train" && r.Step < step) || (r.Kind != "train" && r.Epoch <= epoch)
		if !keep {
			continue
		}
		switch {
		case r.Kind == "train" && r.Step == steps:
			steps++
		case r.Kind != "train" && r.Epoch == epochs+1:
			epochs++
		}
		if r.Kind != "train" {
			var e EvalRecord
			json.Unmarshal(line, &e)
			evals = append(evals, e)
		}
		kept.Write(line)
		kept.WriteByte('\n')
	}
	if steps < step || epochs < epoch {
		what := "is missing"
		if !missing {
			what = fmt.Sprintf("holds %d of the %d step records and %d of the %d epoch records", steps, step, epochs, epoch)
		}
		return nil, &FolderError{err: fmt.Errorf("%w: %s %s of the run up to its checkpoint (step %d, epoch %d): its history was deleted or cut, "+
			"so continuing would leave a gap; restore the file", ErrResume, path, what, step, epoch)}
	}
	if err := writeFileAtomic(path, kept.Bytes()); err != nil {
		return nil, err
	}
	return evals, nil
}

func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("train: encode %s: %w", path, err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("train: write %s: %w", path, err)
	}
	return nil
}

// WriteTable prints the closing table: one line per epoch.
func (s *Summary) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "%5s  %10s  %9s  %9s  %10s  %10s  %9s\n", "epoch", "train loss", "top1 cls", "top1 dist", "top1 fused", "top5 fused", "img/s")
	for _, r := range s.Epochs {
		acc := func(v float64) string {
			if r.N == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f%%", 100*v)
		}
		if r.Epoch == 0 { // the initial model of a run of zero epochs: nothing trained
			fmt.Fprintf(w, "%5d  %10s  %9s  %9s  %10s  %10s  %9s\n", r.Epoch, "-", acc(r.Top1Cls), acc(r.Top1Dist), acc(r.Top1Fused), acc(r.Top5Fused), "-")
			continue
		}
		fmt.Fprintf(w, "%5d  %10.4f  %9s  %9s  %10s  %10s  %9.0f\n", r.Epoch, r.TrainLoss, acc(r.Top1Cls), acc(r.Top1Dist), acc(r.Top1Fused), acc(r.Top5Fused), r.TrainImgS)
	}
	if s.Checkpoint != "" {
		fmt.Fprintf(w, "checkpoint: %s (%d parameters)\n", s.Checkpoint, s.Params)
	}
}

// AnalyzeOptions name a checkpoint and the eval set to analyse it on.
type AnalyzeOptions struct {
	Checkpoint string
	EvalData   string // the images
	// EvalLabels is the eval set's label store; without one, Labels (the training store)
	// gives the preprocessing and classes. One of them is required.
	EvalLabels, Labels        string
	EvalLimit, Batch, Workers int       // as in Options
	Mean, Std                 []float64 // as in Options
}

// Analyze returns, for the checkpoint's model, the cosine similarity between its class and
// distillation token representations at the input of the first block (index 0) and after each
// block (1..depth), averaged over every image of the eval set.
func Analyze(ctx context.Context, o AnalyzeOptions) ([]float64, error) {
	if o.EvalData == "" || (o.EvalLabels == "" && o.Labels == "") {
		return nil, fmt.Errorf("%w: the analysis needs eval images and a label store for their preprocessing (the eval set's or the training one)", ErrOptions)
	}
	m, err := student.LoadModel(o.Checkpoint)
	if err != nil {
		return nil, err
	}
	c := m.Config()
	var ref schema.Metadata // preprocessing and classes when the eval set has no store of its own
	if o.EvalLabels == "" {
		r, err := store.OpenReader(o.Labels)
		if err != nil {
			return nil, err
		}
		ref = r.Meta
	}
	set, err := traindata.OpenEval(ctx, traindata.Options{Labels: o.EvalLabels, Data: o.EvalData, Limit: o.EvalLimit, Size: c.ImageSize,
		Channels: c.Channels, Classes: c.Classes, Mean: o.Mean, Std: o.Std, Batch: o.Batch, Workers: o.Workers}, ref)
	if err != nil {
		return nil, err
	}
	return analyze(ctx, o.Checkpoint, set)
}

// analyze loads the model of a checkpoint and returns the cosine similarity between its class
// and distillation token representations at the input of the first block (index 0) and after
// each block (1..depth), averaged over every image of the eval set.
func analyze(ctx context.Context, checkpoint string, set *traindata.Set) ([]float64, error) {
	m, err := student.LoadModel(checkpoint)
	if err != nil {
		return nil, err
	}
	c := m.Config()
	if c.ImageSize != set.Size() || c.Channels != set.Channels() {
		return nil, fmt.Errorf("%w: %s takes %d×%d×%d images, the eval set is rendered at %d×%d×%d",
			ErrOptions, checkpoint, c.Channels, c.ImageSize, c.ImageSize, set.Channels(), set.Size(), set.Size())
	}
	var sums []float64
	n := 0
	err = set.Eval(ctx, func(b *traindata.Batch) error {
		cos, err := m.Analyze(b.Images)
		if err != nil {
			return err
		}
		if sums == nil {
			sums = make([]float64, len(cos))
		}
		for i, v := range cos {
			sums[i] += v * float64(b.Len())
		}
		n += b.Len()
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range sums {
		sums[i] /= float64(n)
		if math.IsNaN(sums[i]) {
			return nil, fmt.Errorf("train: analyze %s: cosine after block %d is NaN", checkpoint, i)
		}
	}
	return sums, nil
}

// WriteAnalysis prints the cosine similarities as a table.
func WriteAnalysis(w io.Writer, cos []float64) {
	fmt.Fprintln(w, "cosine(class token, distillation token), mean over the eval set")
	for i, v := range cos {
		where := fmt.Sprintf("after block %d", i)
		if i == 0 {
			where = "input (embedding)"
		}
		fmt.Fprintf(w, "  %-18s %7.4f\n", where, v)
	}
}
