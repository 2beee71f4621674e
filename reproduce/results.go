package reproduce

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/train"
)

// StoreResult is what a finished store job left: its size, speed and the teacher's accuracy.
type StoreResult struct {
	Rows    int64
	Images  int64
	Bytes   int64   // shard files on disk
	WallS   float64 // the precompute command's wall time
	Top1    float64 // the teacher's top-1 over every row (views included) with a label
	Entropy float64 // mean entropy of the teacher's distribution, nats
}

// RunResult is what a finished student run left in its metrics.jsonl.
type RunResult struct {
	Final  train.EvalRecord   // the last epoch's evaluation
	Epochs []train.EvalRecord // every epoch's evaluation
	ImgS   float64            // mean training img/s over the epochs
	WallS  float64            // the train command's wall time, evaluation included
}

// Results holds everything the report shows, by job ID.
type Results struct {
	Stores   map[string]*StoreResult
	Runs     map[string]*RunResult
	Analyses map[string][]float64 // cosine by depth: index 0 the input, i after block i
	Missing  []string             // jobs with no result yet
}

// Collect reads the results of every finished job of p. Jobs not finished are listed in
// Missing; a finished job whose files cannot be read is an error naming them.
func (p *Plan) Collect(ctx context.Context) (*Results, error) {
	s := p.Settings
	res := &Results{Stores: map[string]*StoreResult{}, Runs: map[string]*RunResult{}, Analyses: map[string][]float64{}}
	for _, j := range p.Jobs() {
		rec := ReadRecord(s, j.ID, p.CommandLine(j))
		if rec == nil {
			res.Missing = append(res.Missing, j.ID)
			continue
		}
		switch j.Kind {
		case "store":
			r, err := readStore(ctx, j.Dir)
			if err != nil {
				return nil, err
			}
			r.WallS = rec.WallS
			res.Stores[j.ID] = r
		case "train":
			r, err := ReadMetrics(filepath.Join(j.Dir, train.MetricsFile))
			if err != nil {
				return nil, err
			}
			r.WallS = rec.WallS
			res.Runs[j.ID] = r
		case "analyze":
			cos, err := ReadAnalysis(OutputPath(s, j.ID))
			if err != nil {
				return nil, err
			}
			res.Analyses[j.ID] = cos
		}
	}
	return res, nil
}

func readStore(ctx context.Context, dir string) (*StoreResult, error) {
	r, err := store.OpenReader(dir)
	if err != nil {
		return nil, err
	}
	sum, err := store.Inspect(ctx, r)
	if err != nil {
		return nil, err
	}
	out := &StoreResult{Rows: sum.Rows, Images: sum.Images, Top1: sum.Top1, Entropy: sum.MeanEntropy}
	for _, sh := range r.Manifest.Shards {
		out.Bytes += sh.Bytes
	}
	return out, nil
}

// ReadMetrics reads the evaluation records of a train run's metrics.jsonl.
func ReadMetrics(path string) (*RunResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r RunResult
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if !strings.Contains(string(b), `"kind":"eval"`) {
			continue
		}
		var e train.EvalRecord
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		r.Epochs = append(r.Epochs, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(r.Epochs) == 0 {
		return nil, fmt.Errorf("%s: no evaluation record", path)
	}
	r.Final = r.Epochs[len(r.Epochs)-1]
	for _, e := range r.Epochs {
		r.ImgS += e.TrainImgS / float64(len(r.Epochs))
	}
	return &r, nil
}

// ReadAnalysis reads the cosines printed by train --analyze: one line per depth whose last
// field is the value.
func ReadAnalysis(path string) ([]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cos []float64
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %q: %w", path, i+1, line, err)
		}
		cos = append(cos, v)
	}
	if len(cos) < 2 {
		return nil, fmt.Errorf("%s: no cosines", path)
	}
	return cos, nil
}

// Stat is a mean over seeds with its spread.
type Stat struct {
	N              int
	Mean, Min, Max float64
}

// NewStat summarises xs; NaN values (missing results) are left out.
func NewStat(xs []float64) Stat {
	s := Stat{Min: math.Inf(1), Max: math.Inf(-1)}
	for _, x := range xs {
		if math.IsNaN(x) {
			continue
		}
		s.N++
		s.Mean += x
		s.Min = math.Min(s.Min, x)
		s.Max = math.Max(s.Max, x)
	}
	if s.N == 0 {
		return Stat{Mean: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	s.Mean /= float64(s.N)
	return s
}

// Percent formats a fraction as "84.12 ± 0.30" percent: the mean and half the range over the
// seeds; "—" when there is no result.
func (s Stat) Percent() string {
	if s.N == 0 {
		return "—"
	}
	if s.N == 1 {
		return fmt.Sprintf("%.2f", 100*s.Mean)
	}
	return fmt.Sprintf("%.2f ± %.2f", 100*s.Mean, 50*(s.Max-s.Min))
}

// CellStat summarises one value of a cell's runs over the seeds.
func (r *Results) CellStat(c *Cell, value func(*RunResult) float64) Stat {
	var xs []float64
	for _, j := range c.Runs {
		if rr := r.Runs[j.ID]; rr != nil {
			xs = append(xs, value(rr))
		}
	}
	return NewStat(xs)
}

// Head values of a run's final evaluation.
func TopCls(r *RunResult) float64   { return r.Final.Top1Cls }
func TopDist(r *RunResult) float64  { return r.Final.Top1Dist }
func TopFused(r *RunResult) float64 { return r.Final.Top1Fused }
