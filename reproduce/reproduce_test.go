package reproduce

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/deitkd/deitkd/train"
)

// repoRoot is the module root, two levels up from this package's folder.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// tinyData makes a Fashion-MNIST folder from the committed 600-image test subset, used as
// both the training and the test split.
func tinyData(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(repoRoot(t), "testdata", "fmnist")
	for _, split := range []string{"train", "t10k"} {
		for _, kind := range []string{"images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"} {
			if err := os.Symlink(filepath.Join(src, "t10k-"+kind), filepath.Join(dir, split+"-"+kind)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func tinySettings(t *testing.T, out string) Settings {
	t.Helper()
	root := repoRoot(t)
	vit := filepath.Join(root, "testdata", "teacher", "vit_fmnist.onnx")
	if _, err := os.Stat(vit); err != nil {
		t.Fatalf("the committed ViT teacher is missing: %v", err)
	}
	return Settings{Data: tinyData(t), Out: out, Bin: buildBinaries(t), CNN: filepath.Join(root, "testdata", "teacher", "regnety_fmnist.onnx"),
		CNN1: filepath.Join(root, "testdata", "teacher", "regnety_fmnist_1ep.onnx"), ViT: vit, Limit: 192, Epochs: 1, Seeds: []int{0}, Views: []int{2}, Scale: "0.35,1", Analyze: 64, Jobs: 2}
}

// buildBinaries builds the real precompute and train commands the plan runs.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"github.com/deitkd/deitkd/cmd/precompute", "github.com/deitkd/deitkd/cmd/train")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// TestReproduceEndToEnd runs a whole reproduction at toy scale with the real commands and
// teachers, writes the report and the plots, checks that a rerun runs nothing, and that the
// command printed beside a cell reproduces its numbers.
func TestReproduceEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real precompute and train commands")
	}
	out := t.TempDir()
	s := tinySettings(t, out)
	p, err := NewPlan(s)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var log bytes.Buffer
	if err := p.Run(ctx, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "about") || !strings.Contains(log.String(), "left") {
		t.Errorf("no time-left estimate in the progress:\n%s", log.String())
	}
	res, err := p.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Missing) > 0 {
		t.Fatalf("missing results: %v", res.Missing)
	}
	// 8 stores, 11 cells of one seed, 2 analyses.
	if len(res.Stores) != 8 || len(res.Runs) != 11 || len(res.Analyses) != 2 {
		t.Fatalf("results: %d stores, %d runs, %d analyses", len(res.Stores), len(res.Runs), len(res.Analyses))
	}
	if v := res.Stores["stores/cnn-train-v2"]; v.Rows != 2*v.Images || v.Images != 192 {
		t.Errorf("two-view store: %d rows of %d images", v.Rows, v.Images)
	}
	if v := res.Stores["stores/cnn-train-v2-aug"]; v.Rows != 2*v.Images || v.Images != 192 {
		t.Errorf("two-view augmented store: %d rows of %d images", v.Rows, v.Images)
	}
	if cos := res.Analyses["analyses/hard-s0"]; len(cos) != 5 {
		t.Errorf("token cosines: %v, want the input and 4 blocks", cos)
	}

	var md bytes.Buffer
	p.Report(&md, res, Header{Command: "reproduce (test)", Machine: "test", Plots: "plots"})
	for _, want := range []string{"## 1. Distillation modes", "## 2. Teacher type", "## 3. Class and distillation tokens",
		"## 4. Fixed against consistent teaching", "## 5. Cost", "## 6. DeiT's data augmentation", p.SeedLoop(p.Cell(AugmentCell)), p.SeedLoop(p.Cell(StoredAugmentCell)),
		"stored with 2 views and replayed", "Stored and replayed against drawn at train time", "plots/tokens.png", p.SeedLoop(p.Cell("hard-v2"))} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(md.String(), "| — |") || strings.Contains(md.String(), "no result yet") {
		t.Errorf("report has empty cells:\n%s", md.String())
	}
	plots := filepath.Join(out, "plots")
	if err := p.Plots(plots, res); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tokens.png", "views.png", "curves.png"} {
		f, err := os.Open(filepath.Join(plots, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 300 {
			t.Errorf("%s: %v", name, err)
		}
	}

	// A rerun finds every job done and runs nothing.
	log.Reset()
	if err := p.Run(ctx, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "0 to run") {
		t.Errorf("rerun: %s", log.String())
	}

	// The command beside the cell, run by a shell for seed 0 into a fresh folder, gives the
	// same numbers.
	c := p.Cell("hard-v2")
	line := strings.Replace(p.SeedLoop(c), filepath.Join(out, "runs", "hard-v2-s$S"), filepath.Join(out, "again-s$S"), 1)
	sh := exec.Command("bash", "-c", line)
	if b, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, b)
	}
	again, err := ReadMetrics(filepath.Join(out, "again-s0", "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := again.Final, res.Runs[c.Runs[0].ID].Final; got.Top1Cls != want.Top1Cls || got.Top1Dist != want.Top1Dist || got.Top1Fused != want.Top1Fused {
		t.Errorf("the printed command gives %+v, the report %+v", got, want)
	}
}

func TestSeedLoopIsEachRunsCommand(t *testing.T) {
	s := Full()
	s.Data, s.Out, s.Bin, s.CNN, s.CNN1, s.ViT = "/data dir", "out/r", "bin", "cnn.onnx", "cnn1.onnx", "vit.onnx"
	s.Seeds = []int{3, 11}
	p, err := NewPlan(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Cells {
		loop := p.SeedLoop(c)
		body, ok := strings.CutPrefix(loop, "for S in 3 11; do ")
		if !ok || !strings.HasSuffix(body, "; done") {
			t.Fatalf("%s: %q", c.Key, loop)
		}
		body = strings.TrimSuffix(body, "; done")
		for i, seed := range []string{"3", "11"} {
			if got, want := strings.ReplaceAll(body, "$S", seed), p.CommandLine(c.Runs[i]); got != want {
				t.Errorf("%s seed %s:\n got %s\nwant %s", c.Key, seed, got, want)
			}
		}
	}
	// Paths with spaces are quoted for the shell.
	if !strings.Contains(p.CommandLine(p.Cell("hard").Runs[0]), "'idx:/data dir/train'") {
		t.Errorf("unquoted: %s", p.CommandLine(p.Cell("hard").Runs[0]))
	}
}

func TestPlanCells(t *testing.T) {
	s := Full()
	s.Data, s.Out, s.Bin, s.CNN, s.CNN1, s.ViT = "d", "o", "b", "c.onnx", "c1.onnx", "v.onnx"
	p, err := NewPlan(s)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"none": "--distill none", SoftPaper: "--distill soft --tau 3 --alpha 0.1", SoftCode: "--distill soft --tau 1 --alpha 0.5",
		"hard": "--distill hard", "vit-hard": "--labels o/stores/vit-train-v1", "hard-v32": "--labels o/stores/cnn-train-v32", "cnn1-hard": "--labels o/stores/cnn1-train-v1",
	}
	for key, frag := range want {
		c := p.Cell(key)
		if c == nil || len(c.Runs) != 2 {
			t.Fatalf("cell %s: %+v", key, c)
		}
		if cmd := p.CommandLine(c.Runs[0]); !strings.Contains(cmd, frag) {
			t.Errorf("%s: %s lacks %q", key, cmd, frag)
		}
	}
	// The augmentation cell is the hard cell with DeiT's augmentation flags, nothing else.
	hardCmd, augCmd := p.CommandLine(p.Cell("hard").Runs[0]), p.CommandLine(p.Cell(AugmentCell).Runs[0])
	if want := strings.Replace(hardCmd, "--aug-scale 0.35,1", "--aug-scale 0.35,1 "+strings.Join(DeiTAugmentFlags, " "), 1); strings.Replace(augCmd, "hard-deit-aug-s", "hard-s", 1) != want {
		t.Errorf("augmentation cell:\n got %s\nwant %s", augCmd, want)
	}
	// The stored-augmentation cell is the hard-v8 cell on the store made with DeiT's
	// augmentation flags, which is the 8-view store's command with them added.
	st, v8 := p.AugmentedStore(), p.StoreFor("cnn", "train", 8)
	if st == nil || st.Views != 8 || strings.Replace(p.CommandLine(st.Job), "cnn-train-v8-aug", "cnn-train-v8", 1) != p.CommandLine(v8.Job)+" "+strings.Join(DeiTAugmentFlags, " ") {
		t.Errorf("augmented store: %+v\n%s\n8-view store:\n%s", st, p.CommandLine(st.Job), p.CommandLine(v8.Job))
	}
	storedCmd := p.CommandLine(p.Cell(StoredAugmentCell).Runs[0])
	if want := strings.Replace(p.CommandLine(p.Cell("hard-v8").Runs[0]), "cnn-train-v8", "cnn-train-v8-aug", 1); strings.Replace(storedCmd, "hard-deit-aug-stored-s", "hard-v8-s", 1) != want {
		t.Errorf("stored-augmentation cell:\n got %s\nwant %s", storedCmd, want)
	}
	// Fixed-teacher runs crop at train time; consistent ones replay the stored crops.
	if !strings.Contains(p.CommandLine(p.Cell("hard").Runs[0]), "--aug-scale 0.35,1") ||
		strings.Contains(p.CommandLine(p.Cell("hard-v8").Runs[0]), "--aug-scale") {
		t.Error("--aug-scale belongs to the single-view runs only")
	}
	if st := p.StoreFor("cnn", "train", 32); st == nil || !strings.Contains(p.CommandLine(st.Job), "--views 32 --scale 0.35,1 --seed 0") {
		t.Errorf("32-view store: %+v", st)
	}
	for _, bad := range []func(*Settings){
		func(s *Settings) { s.Seeds = nil }, func(s *Settings) { s.Views = []int{1} }, func(s *Settings) { s.ViT = "" },
	} {
		b := s
		bad(&b)
		if _, err := NewPlan(b); err == nil {
			t.Errorf("NewPlan(%+v) accepted", b)
		}
	}
}

func TestStatAndCompare(t *testing.T) {
	a := NewStat([]float64{0.80, 0.82, math.NaN()})
	if a.N != 2 || math.Abs(a.Mean-0.81) > 1e-12 || a.Percent() != "81.00 ± 1.00" {
		t.Errorf("%+v %s", a, a.Percent())
	}
	if NewStat(nil).Percent() != "—" || NewStat([]float64{0.5}).Percent() != "50.00" {
		t.Error("empty or single stat")
	}
}

func TestPairedBySeed(t *testing.T) {
	r := &Results{Runs: map[string]*RunResult{}}
	run := func(id string, fused float64) Job {
		r.Runs[id] = &RunResult{Final: train.EvalRecord{Top1Fused: fused}}
		return Job{ID: id}
	}
	a := []Job{run("a0", 0.80), run("a1", 0.70)}
	b := []Job{run("b0", 0.79), run("b1", 0.68)} // worse per seed although b0 beats a1
	if got := r.paired(a, b, TopFused, TopFused); got != "**+1.50 points**, better with every seed (seed by seed +1.00, +2.00)" {
		t.Error(got)
	}
	if got := r.paired(b, a, TopFused, TopFused); !strings.Contains(got, "worse with every seed") {
		t.Error(got)
	}
	c := []Job{run("c0", 0.81), run("c1", 0.69)}
	if got := r.paired(c, a, TopFused, TopFused); !strings.Contains(got, "the seeds disagree (seed by seed +1.00, -1.00): no clear difference") {
		t.Error(got)
	}
	if got := r.paired([]Job{{ID: "missing"}}, a, TopFused, TopFused); got != "no result yet" {
		t.Error(got)
	}
	if got := r.paired(a[:1], b[:1], TopFused, TopFused); got != "+1.00 points (one seed)" {
		t.Error(got)
	}
}

func TestDifferenceInDifferences(t *testing.T) {
	p := &Plan{Settings: Settings{Seeds: []int{0, 1}}}
	r := &Results{Runs: map[string]*RunResult{}}
	for key, fused := range map[string][2]float64{"hard-v8": {0.70, 0.72}, "hard": {0.63, 0.64}, "none-v8": {0.68, 0.69}, "none": {0.62, 0.63}} {
		c := &Cell{Key: key}
		for i, f := range fused {
			id := fmt.Sprintf("%s-s%d", key, i)
			r.Runs[id] = &RunResult{Final: train.EvalRecord{Top1Fused: f}}
			c.Runs = append(c.Runs, Job{ID: id})
		}
		p.Cells = append(p.Cells, c)
	}
	// seed 0: (7 − 6) = +1; seed 1: (8 − 6) = +2.
	if got := r.didCells(p, "hard-v8", "hard", "none-v8", "none"); got != "**+1.50 points**, better with every seed (seed by seed +1.00, +2.00)" {
		t.Error(got)
	}
}

func TestReadMetricsAndAnalysisErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "metrics.jsonl")
	os.WriteFile(bad, []byte(`{"kind":"train","step":1}`+"\n"+`{"kind":"eval","epoch":1,"top1_fused":"x"}`+"\n"), 0o644)
	if _, err := ReadMetrics(bad); err == nil || !strings.Contains(err.Error(), bad+":2") {
		t.Errorf("ReadMetrics: %v", err)
	}
	os.WriteFile(bad, []byte(`{"kind":"train","step":1}`+"\n"), 0o644)
	if _, err := ReadMetrics(bad); err == nil || !strings.Contains(err.Error(), "no evaluation record") {
		t.Errorf("ReadMetrics without eval: %v", err)
	}
	ok := filepath.Join(dir, "ok.jsonl")
	os.WriteFile(ok, []byte(`{"kind":"eval","epoch":1,"top1_fused":0.5,"train_img_s":100}`+"\n"+`{"kind":"eval","epoch":2,"top1_fused":0.6,"train_img_s":300}`+"\n"), 0o644)
	if r, err := ReadMetrics(ok); err != nil || r.Final.Top1Fused != 0.6 || r.ImgS != 200 || len(r.Epochs) != 2 {
		t.Errorf("ReadMetrics: %+v %v", r, err)
	}
	an := filepath.Join(dir, "a.out")
	os.WriteFile(an, []byte("cosine(...)\n  input (embedding)   0.1000\n  after block 1  oops\n"), 0o644)
	if _, err := ReadAnalysis(an); err == nil || !strings.Contains(err.Error(), an+":3") {
		t.Errorf("ReadAnalysis: %v", err)
	}
	os.WriteFile(an, []byte("cosine(...)\n  input (embedding)   0.1000\n  after block 1    0.9000\n"), 0o644)
	if cos, err := ReadAnalysis(an); err != nil || len(cos) != 2 || cos[1] != 0.9 {
		t.Errorf("ReadAnalysis: %v %v", cos, err)
	}
}

// TestFailedJobNamesItsLog: a job that fails stops the run with an error naming the job and
// its log, and the jobs finished before it stay recorded.
func TestFailedJobNamesItsLog(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("uses /bin/false")
	}
	out := t.TempDir()
	p := &Plan{Settings: Settings{Out: out, Bin: "/bin", Jobs: 2}}
	p.Stores = []Store{{Job: Job{ID: "stores/ok", Kind: "store", Bin: "true", Cost: 1}}, {Job: Job{ID: "stores/bad", Kind: "store", Bin: "false", Cost: 1}}}
	err := p.Run(context.Background(), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "stores/bad") || !strings.Contains(err.Error(), filepath.Join(out, "logs", "stores", "bad.log")) {
		t.Fatalf("Run: %v", err)
	}
	if ReadRecord(p.Settings, "stores/ok", p.CommandLine(p.Stores[0].Job)) == nil {
		t.Error("the finished job was not recorded")
	}
	if ReadRecord(p.Settings, "stores/bad", p.CommandLine(p.Stores[1].Job)) != nil {
		t.Error("the failed job was recorded")
	}
}

// TestTimeLeft: unfinished jobs are costed at the speed their kind has shown, student runs
// shared among the jobs side by side, stores one at a time.
func TestTimeLeft(t *testing.T) {
	todo := []Job{
		{ID: "s1", Kind: "store", Cost: 100}, {ID: "s2", Kind: "store", Cost: 300},
		{ID: "r1", Kind: "train", Cost: 1000}, {ID: "r2", Kind: "train", Cost: 1000}, {ID: "r3", Kind: "train", Cost: 1000},
	}
	pr := newProgress(&bytes.Buffer{}, todo, 2)
	pr.end(todo[0], 2*time.Second, nil) // stores: 50 units/s
	pr.end(todo[2], 4*time.Second, nil) // runs: 250 units/s each
	// s2: 300/50 = 6 s alone; r2, r3: 4 s each, two at a time: 4 s.
	if got := pr.eta(); got != 10*time.Second {
		t.Errorf("eta %v, want 10s", got)
	}
	pr.running["r2"] = time.Now().Add(-3 * time.Second) // r2 has 1 s to go
	if got := pr.eta().Round(100 * time.Millisecond); got != 8500*time.Millisecond {
		t.Errorf("eta with r2 running 3s: %v, want 8.5s", got)
	}
	var log bytes.Buffer
	pr.w = &log
	pr.end(todo[1], 6*time.Second, nil)
	if !strings.Contains(log.String(), "[3/5] s2 done in 6s") {
		t.Errorf("progress line: %q", log.String())
	}
}
