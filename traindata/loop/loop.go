// Package loop is stage two's training loop: epochs of traindata batches through a
// student.Trainer, an evaluation after every epoch, OUT/metrics.jsonl, a checkpoint per epoch,
// exact resume, a stop on a non-finite loss, and the closing table; and the token analysis of
// a checkpoint over an eval set.
//
// It sits between traindata (which must not know the student) and student (which must not
// read the store), so that cmd/train stays flags and wiring. It reads no flags: everything
// comes in Options.
//
// Files in Options.Out:
//
//	run.json          the run's settings (Options.Settings, the model config and the recipe),
//	                  which a resume must match field for field, and where its inputs were
//	                  (Options.Inputs, not compared)
//	metrics.jsonl     one JSON object a line: {"kind":"train",...} per step, {"kind":"eval",...} per epoch
//	checkpoint.ckpt   the training state after the last finished epoch (student's Trainer.Save,
//	                  atomic), with the student's eval preprocessing and class names
//	                  (Set.Preprocess); LoadModel reads it for evaluation and export
package loop

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
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/deitkd/deitkd/internal/atomicfile"
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
	ErrOptions = errors.New("loop: bad option")
	ErrResume  = errors.New("loop: cannot resume")
)

// Options configures a run. Zero values mean the defaults given per field.
type Options struct {
	Train *traindata.Set
	Eval  *traindata.Set // optional: no eval records without it
	Model student.Config // the architecture; DropPath is the training's stochastic depth
	// Recipe is the student's recipe, read literally (student.NewRecipe fills one); its
	// StepsPerEpoch is set from Train. Recipe.Seed seeds the model's initialisation and
	// drop-path. Recipe.Epochs 0 trains no step: the initial model is evaluated (an eval record
	// of epoch 0, step 0) and saved as the checkpoint, so that it can be exported.
	Recipe student.TrainConfig
	Fuse   string // "softmax" (default: the mean of the two softmaxes) or "logits"
	Out    string // the run folder, created if missing
	// Resume continues the run in Out from its checkpoint (or starts it when Out holds no
	// checkpoint yet, so the same command can be rerun until the run is complete); without it,
	// Out must hold none of the run files. It never continues what it cannot trace to the
	// run.json it checks: a checkpoint or metrics.jsonl without run.json is refused, and so is
	// a metrics.jsonl that lacks records of the steps and epochs before the checkpoint.
	Resume bool
	// Settings are the data settings recorded in run.json next to the model and recipe
	// (store, sources, limit, seed, views per image, ...): a resume refuses other values,
	// naming the fields that differ. Anything json.Marshal takes.
	Settings any
	// Inputs, if set, say where the run's inputs are (the paths of its label stores): recorded
	// in run.json next to Settings but not compared, so that a resume may find a store that
	// moved, as long as Settings, which should carry what identifies each input, agree. A
	// resume logs an input that moved. Anything json.Marshal takes.
	Inputs any
	// Progress, if set, is called on the calling goroutine after every step, at the end of
	// every epoch's training and evaluation (Final). Default: nothing.
	Progress func(Progress)
	// Saved, if set, is called after each checkpoint is written, with its path and step.
	Saved func(path string, step int)
	// Log receives one-line notes. Default: nothing.
	Log func(string)
}

// Progress is the state of a run.
type Progress struct {
	Phase            string // "train" or "eval"
	Epoch, Epochs    int    // Epoch counts from 1
	Batch, Batches   int    // batches done in this phase of this epoch
	Step             int    // optimiser steps done
	Loss             float64
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
}

func (o *Options) applyDefaults() error {
	if o.Train == nil || o.Out == "" {
		return fmt.Errorf("%w: a training set and an output folder are required", ErrOptions)
	}
	if o.Fuse == "" {
		o.Fuse = "softmax"
	}
	if o.Recipe.WeightInit == "" {
		o.Recipe.WeightInit = student.InitTimm // as a run recorded before there was a choice
	}
	if o.Progress == nil {
		o.Progress = func(Progress) {}
	}
	if o.Log == nil {
		o.Log = func(string) {}
	}
	if o.Saved == nil {
		o.Saved = func(string, int) {}
	}
	c := o.Model.WithDefaults()
	t := o.Train
	switch {
	case c.ImageSize != t.Size():
		return fmt.Errorf("%w: the model takes %d×%d images, the data is rendered at %d", ErrOptions, c.ImageSize, c.ImageSize, t.Size())
	case c.Channels != t.Channels():
		return fmt.Errorf("%w: the model takes %d channels, the data has %d", ErrOptions, c.Channels, t.Channels())
	case c.Classes != t.Classes():
		return fmt.Errorf("%w: the model has %d classes, the label store %d", ErrOptions, c.Classes, t.Classes())
	}
	o.Recipe.StepsPerEpoch = t.BatchesPerEpoch()
	return nil
}

// runFile is the content of run.json.
type runFile struct {
	Model    student.Config      `json:"model"`
	Recipe   student.TrainConfig `json:"recipe"`
	Fuse     string              `json:"fuse"`
	Settings any                 `json:"settings"`
	Inputs   any                 `json:"inputs,omitempty"` // not compared: see Options.Inputs
}

// Train runs (or with Resume continues) the training and returns its summary. A non-finite
// loss ends it with an error wrapping student.ErrNonFinite that names the step and the last
// good checkpoint, which is left as it was.
func Train(ctx context.Context, o Options) (*Summary, error) {
	if err := o.applyDefaults(); err != nil {
		return nil, err
	}
	m, err := student.NewInit(o.Model, o.Recipe.Seed, o.Recipe.WeightInit)
	if err != nil {
		return nil, err
	}
	// The checkpoint records the student's eval transform and class names, so that export
	// needs no label store and train --export writes what export writes.
	pre, err := o.Train.Preprocess()
	if err != nil {
		return nil, err
	}
	if err := m.SetPreprocess(pre, o.Train.Meta().ClassNames); err != nil {
		return nil, err
	}
	tr, err := student.NewTrainer(m, o.Recipe)
	if err != nil {
		return nil, err
	}
	run := runFile{Model: m.Config(), Recipe: tr.Config, Fuse: o.Fuse, Settings: o.Settings, Inputs: o.Inputs}
	run.Model.DropPath = o.Model.DropPath
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("loop: %w", err)
	}
	ckpt := filepath.Join(o.Out, CheckpointFile)
	sum := &Summary{Params: m.NumParams()}
	var records []EvalRecord
	runPath := filepath.Join(o.Out, RunFile)
	_, noRun := os.Stat(runPath)
	_, noCkpt := os.Stat(ckpt)
	_, noMetrics := os.Stat(filepath.Join(o.Out, MetricsFile))
	switch {
	case o.Resume && noRun == nil && noCkpt == nil:
		if err := checkRun(runPath, run, o.Log); err != nil {
			return nil, err
		}
		if err := tr.Load(ckpt); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrResume, err)
		}
		if records, err = truncateMetrics(filepath.Join(o.Out, MetricsFile), tr.Steps(), tr.Steps()/o.Recipe.StepsPerEpoch); err != nil {
			return nil, err
		}
		sum.Checkpoint = ckpt
		if tr.Steps() >= o.Recipe.StepsPerEpoch*tr.Config.Epochs {
			o.Log(fmt.Sprintf("the run in %s is complete (step %d): nothing to do", o.Out, tr.Steps()))
		} else {
			o.Log(fmt.Sprintf("resumed from %s at step %d (epoch %d)", ckpt, tr.Steps(), tr.Steps()/o.Recipe.StepsPerEpoch+1))
		}
	case o.Resume && noRun != nil && (noCkpt == nil || noMetrics == nil):
		// Whatever wrote these files did not record its settings: this run cannot be checked
		// against it, and starting over would overwrite its checkpoint or history.
		have := CheckpointFile
		if noCkpt != nil {
			have = MetricsFile
		}
		return nil, fmt.Errorf("%w: %s holds %s but no %s (the settings of the run that wrote it), so it cannot be continued; "+
			"to start over, give another --out or delete the folder", ErrResume, o.Out, have, RunFile)
	case o.Resume:
		// Nothing to resume from: the run never finished an epoch (or never began). Start it,
		// dropping what an interrupted first epoch wrote.
		if noRun == nil {
			if err := checkRun(runPath, run, o.Log); err != nil {
				return nil, err
			}
		}
		if _, err := truncateMetrics(filepath.Join(o.Out, MetricsFile), 0, 0); err != nil {
			return nil, err
		}
		if err := writeJSONAtomic(runPath, run); err != nil {
			return nil, err
		}
		o.Log(fmt.Sprintf("no checkpoint in %s yet: starting from step 0", o.Out))
	default:
		for _, f := range []string{CheckpointFile, RunFile, MetricsFile} {
			if _, err := os.Stat(filepath.Join(o.Out, f)); err == nil {
				return nil, fmt.Errorf("%w: %s already holds a run (%s): give --resume to continue it, or another --out (or delete the folder) to start over",
					ErrOptions, o.Out, f)
			}
		}
		if err := writeJSONAtomic(runPath, run); err != nil {
			return nil, err
		}
	}
	sum.Epochs = records
	mf, err := os.OpenFile(filepath.Join(o.Out, MetricsFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("loop: %w", err)
	}
	defer mf.Close()
	mw := bufio.NewWriter(mf)
	emit := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("loop: metrics record: %w", err)
		}
		mw.Write(append(b, '\n'))
		return nil
	}
	flush := func() error {
		if err := mw.Flush(); err != nil {
			return fmt.Errorf("loop: write %s: %w", mf.Name(), err)
		}
		return nil
	}
	defer flush()

	if o.Eval != nil {
		if acc, n := o.Eval.TeacherAccuracy(); n > 0 {
			o.Log(fmt.Sprintf("teacher top-1 on the eval set (its label store, view 0): %.2f%% of %d", 100*acc, n))
		}
	}

	spe, epochs := o.Recipe.StepsPerEpoch, tr.Config.Epochs
	// measure evaluates the model into rec, an epoch's record.
	measure := func(rec *EvalRecord) error {
		c, err := evaluate(ctx, m, o.Eval, o.Fuse, func(p Progress) {
			p.Epoch, p.Epochs, p.Step = rec.Epoch, epochs, tr.Steps()
			o.Progress(p)
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
			return fmt.Errorf("loop: sync %s: %w", mf.Name(), err)
		}
		if err := tr.Save(ckpt); err != nil {
			return err
		}
		sum.Checkpoint = ckpt
		o.Saved(ckpt, tr.Steps())
		return nil
	}
	if epochs == 0 && sum.Checkpoint == "" {
		// Nothing to train: the initial model is evaluated as epoch 0 and kept as the
		// checkpoint, which export reads.
		if o.Eval != nil {
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
		err := o.Train.Epoch(ctx, epoch, from, func(b *traindata.Batch) error {
			st, err := tr.TrainStep(student.Batch{Images: b.Images, Labels: b.Labels, TeacherHard: b.TeacherHard, TeacherProbs: b.TeacherProbs})
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
			o.Progress(Progress{Phase: "train", Epoch: epoch + 1, Epochs: epochs, Batch: from + steps, Batches: spe, Step: tr.Steps(),
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
		o.Progress(Progress{Phase: "train", Epoch: epoch + 1, Epochs: epochs, Batch: spe, Batches: spe, Step: tr.Steps(),
			Loss: rec.TrainLoss, ImagesPerSec: rec.TrainImgS, Elapsed: trainTime, Final: true, ResumedFromBatch: from})
		if o.Eval != nil {
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
	return sum, nil
}

// evaluate counts the model's correct predictions over the eval set.
func evaluate(ctx context.Context, m *student.Model, set *traindata.Set, fuse string, progress func(Progress)) (student.EvalCounts, error) {
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
		return fmt.Errorf("loop: %w", err)
	}
	var now map[string]any
	json.Unmarshal(wb, &now)
	if err := legacyRecipe(have, log); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrResume, path, err)
	}
	haveIn, nowIn := have["inputs"], now["inputs"]
	delete(have, "inputs")
	delete(now, "inputs")
	if d := diff("", have, now, nil); len(d) > 0 {
		return fmt.Errorf("%w: %s: %s (a resumed run continues exactly the run it resumes)", ErrResume, path, listDiffs(d))
	}
	if haveIn != nil && nowIn != nil {
		for _, d := range diff("inputs", haveIn, nowIn, nil) {
			log(d + " (moved: the settings that identify it agree)")
		}
	}
	return nil
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

// ReadSettings decodes the Settings recorded in dir's run.json into v, so that a caller can
// tell which form an older run recorded them in. ok is false when dir holds no run.json.
func ReadSettings(dir string, v any) (ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, RunFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("loop: %w", err)
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

// diff appends to out, in key order, each path where two JSON values differ, with both values.
func diff(path string, a, b any, out []string) []string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			p := k
			if path != "" {
				p = path + "." + k
			}
			out = diff(p, am[k], bm[k], out)
		}
		return out
	}
	if !reflect.DeepEqual(a, b) {
		return append(out, fmt.Sprintf("%s: the run had %s, now %s", path, literal(a, b), literal(b, a)))
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
		return nil, fmt.Errorf("loop: %w", err)
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
		return nil, fmt.Errorf("%w: %s %s of the run up to its checkpoint (step %d, epoch %d): its history was deleted or cut, "+
			"so continuing would leave a gap; restore the file, or give another --out (or delete the folder) to start over",
			ErrResume, path, what, step, epoch)
	}
	if err := writeFileAtomic(path, kept.Bytes()); err != nil {
		return nil, err
	}
	return evals, nil
}

func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("loop: encode %s: %w", path, err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("loop: write %s: %w", path, err)
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

// Analyze loads the model of a checkpoint and returns the cosine similarity between its class
// and distillation token representations at the input of the first block (index 0) and after
// each block (1..depth), averaged over every image of the eval set.
func Analyze(ctx context.Context, checkpoint string, set *traindata.Set) ([]float64, error) {
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
			return nil, fmt.Errorf("loop: analyze %s: cosine after block %d is NaN", checkpoint, i)
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
