// Package reproduce is `make reproduce`: DeiT's distillation findings checked at small scale on
// Fashion-MNIST with deitkd's own commands, written up as a Markdown report with PNG plots.
//
// A Plan is a list of jobs, each one deitkd command (bin/precompute or bin/train) with its own
// output folder under Settings.Out. Run executes them, finished jobs first skipped, so that a
// killed reproduction loses only the job in flight and a rerun picks up where it stopped; it
// prints progress and an estimate of the time left. Collect reads what the jobs left behind and
// Report writes the Markdown and the plots. Every number in the report comes from a file a
// job wrote, next to the command that wrote it.
package reproduce

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Settings is the scale of a reproduction. The zero values of the sizes are not valid: use
// Full or Quick and change fields.
type Settings struct {
	Data    string // folder with Fashion-MNIST's four IDX files
	Out     string // every job's folder is under it
	Bin     string // folder with the precompute and train binaries
	CNN     string // the RegNet teacher (ONNX)
	CNN1    string // the same RegNet trained for one epoch: a CNN of about the ViT's accuracy
	ViT     string // the transformer teacher (ONNX)
	Limit   int    // training images (the first Limit of the 60,000); also caps the test images
	Epochs  int    // student epochs
	Seeds   []int  // student seeds, one run each per cell
	Views   []int  // stored views per image of the consistent-teaching stores (V=1 is always run)
	Scale   string // RandomResizedCrop area range of the stored views and of train-time crops
	Analyze int    // test images the token analysis averages over
	Jobs    int    // student runs at a time
}

// Full is the scale of the committed docs/results.md: about 1.5 hours on 2 cores.
func Full() Settings {
	return Settings{Limit: 20000, Epochs: 3, Seeds: []int{0, 1}, Views: []int{8, 32}, Scale: "0.35,1", Analyze: 2000, Jobs: 2}
}

// Quick is `make reproduce-quick`: every cell of the report on 2,000 images for 2 epochs (1/15 of the training), under 15
// minutes on 2 cores. Its numbers show the pipeline works, not the findings.
func Quick() Settings {
	return Settings{Limit: 2000, Epochs: 2, Seeds: []int{0, 1}, Views: []int{8, 32}, Scale: "0.35,1", Analyze: 1000, Jobs: 2}
}

// Job is one command of the reproduction.
type Job struct {
	ID   string   // unique, a path under Settings.Out: "stores/cnn-train-v1", "runs/hard-s0"
	Kind string   // "store", "train" or "analyze"
	Bin  string   // "precompute" or "train"
	Args []string // the command's arguments; the output folder is among them
	Dir  string   // the job's folder
	// Cost estimates the job's work in training-image equivalents, for the time-left estimate.
	Cost float64
	// Needs lists the IDs of the jobs that must finish first.
	Needs []string
}

// Command is the job as a shell line, relative to the repository root.
func (j Job) Command(s Settings) string {
	parts := []string{filepath.Join(s.Bin, j.Bin)}
	for _, a := range j.Args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(a string) string {
	if a != "" && strings.IndexFunc(a, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:,=", r))
	}) < 0 {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

// Store is a label store of the plan.
type Store struct {
	Job
	Teacher string // "cnn", "cnn1" or "vit"
	Split   string // "train" or "test"
	Views   int
	// Augmented: DeiT's augmentation stored with each random view (precompute with
	// DeiTAugmentFlags, a schema-version-2 store), replayed by train.
	Augmented bool
}

// Cell is one configuration of the student, run once per seed.
type Cell struct {
	Key     string // "hard", "soft-t3-a0.1", "vit-hard", "hard-v8", ...
	Distill string // none, soft, hard
	Tau     float64
	Alpha   float64
	Teacher string // "cnn", "cnn1" or "vit"
	Views   int    // stored views per image of its training store
	// Augment are train's augmentation flags beyond crops and flips (none: crops and flips only).
	Augment []string
	Runs    []Job // one per seed, in Settings.Seeds order
}

// DeiTAugmentFlags are DeiT's train-time augmentation values (train.DeiTAugment, deit/main.py's
// defaults) as train flags, without the rest of --recipe deit (its learning rate, warm-up,
// drop-path and smoothing), so that a cell with them differs from its crops-and-flips cell in
// the augmentation alone.
var DeiTAugmentFlags = []string{"--randaugment", "rand-m9-mstd0.5-inc1", "--erase", "0.25", "--mixup", "0.8", "--cutmix", "1.0"}

// Plan is every job of a reproduction and the cells the report is made of.
type Plan struct {
	Settings Settings
	Stores   []Store
	Cells    []*Cell
	Analyses []Job // the token analysis of the hard and the none runs, one per seed
}

// Jobs returns every job in an order that respects Needs: stores, student runs, analyses.
func (p *Plan) Jobs() []Job {
	var js []Job
	for _, s := range p.Stores {
		js = append(js, s.Job)
	}
	for _, c := range p.Cells {
		js = append(js, c.Runs...)
	}
	return append(js, p.Analyses...)
}

// Cell returns the cell with key k, or nil.
func (p *Plan) Cell(k string) *Cell {
	for _, c := range p.Cells {
		if c.Key == k {
			return c
		}
	}
	return nil
}

// StoreFor returns the store of a teacher, split and view count, or nil.
func (p *Plan) StoreFor(teacher, split string, views int) *Store {
	for i := range p.Stores {
		s := &p.Stores[i]
		if s.Teacher == teacher && s.Split == split && s.Views == views && !s.Augmented {
			return s
		}
	}
	return nil
}

// Soft distillation settings of the report: the paper's "usual distillation" and DeiT's code;
// the cell of hard distillation with DeiT's augmentation at train time.
const (
	SoftPaper   = "soft-t3-a0.1"
	SoftCode    = "soft-t1-a0.5"
	AugmentCell = "hard-deit-aug"
	// StoredAugmentCell is hard distillation from the store with DeiT's augmentation stored
	// in its views (the first of Settings.Views), replayed: consistent teaching with the recipe.
	StoredAugmentCell = "hard-deit-aug-stored"
)

// AugmentedStore returns the teacher's training store with DeiT's augmentation stored, or nil.
func (p *Plan) AugmentedStore() *Store {
	for i := range p.Stores {
		if p.Stores[i].Augmented {
			return &p.Stores[i]
		}
	}
	return nil
}

// NewPlan lays out the jobs of s.
func NewPlan(s Settings) (*Plan, error) {
	switch {
	case s.Data == "" || s.Out == "" || s.Bin == "" || s.CNN == "" || s.CNN1 == "" || s.ViT == "":
		return nil, fmt.Errorf("reproduce: Data, Out, Bin, CNN, CNN1 and ViT must be set")
	case s.Limit <= 0 || s.Epochs <= 0 || len(s.Seeds) == 0 || s.Jobs <= 0 || s.Analyze <= 0:
		return nil, fmt.Errorf("reproduce: Limit, Epochs, Seeds, Jobs and Analyze must be positive")
	}
	for _, v := range s.Views {
		if v < 2 {
			return nil, fmt.Errorf("reproduce: consistent-teaching views %d: want 2 or more (V=1 is always run)", v)
		}
	}
	p := &Plan{Settings: s}
	testLimit := min(s.Limit, 10000)
	addStore := func(teacher, split string, views int, augment ...string) {
		model := map[string]string{"cnn": s.CNN, "cnn1": s.CNN1, "vit": s.ViT}[teacher]
		src, n := "train", s.Limit
		if split == "test" {
			src, n = "t10k", testLimit
		}
		id := fmt.Sprintf("stores/%s-%s-v%d", teacher, split, views)
		cost := float64(n*views) / 20
		if len(augment) > 0 {
			id += "-aug"
			cost *= 2 // a mixed view renders its partner too
		}
		dir := filepath.Join(s.Out, id)
		args := []string{"--model", model, "--data", "idx:" + filepath.Join(s.Data, src), "--out", dir,
			"--limit", strconv.Itoa(n)}
		if views > 1 {
			args = append(args, "--views", strconv.Itoa(views), "--scale", s.Scale, "--seed", "0")
		}
		args = append(args, augment...)
		p.Stores = append(p.Stores, Store{Job: Job{ID: id, Kind: "store", Bin: "precompute", Args: args, Dir: dir,
			Cost: cost}, Teacher: teacher, Split: split, Views: views, Augmented: len(augment) > 0})
	}
	for _, t := range []string{"cnn", "vit", "cnn1"} {
		addStore(t, "test", 1)
		addStore(t, "train", 1)
	}
	for _, v := range s.Views {
		addStore("cnn", "train", v)
	}
	if len(s.Views) > 0 {
		addStore("cnn", "train", s.Views[0], DeiTAugmentFlags...)
	}

	addCellOn := func(c *Cell, train *Store) {
		key, distill, tau, alpha, views, augment := c.Key, c.Distill, c.Tau, c.Alpha, c.Views, c.Augment
		test := p.StoreFor(c.Teacher, "test", 1)
		for _, seed := range s.Seeds {
			id := fmt.Sprintf("runs/%s-s%d", key, seed)
			dir := filepath.Join(s.Out, id)
			args := []string{"--labels", train.Dir, "--data", "idx:" + filepath.Join(s.Data, "train"),
				"--eval-data", "idx:" + filepath.Join(s.Data, "t10k"), "--eval-labels", test.Dir,
				"--limit", strconv.Itoa(s.Limit), "--eval-limit", strconv.Itoa(testLimit), "--preset", "fm-tiny", "--epochs", strconv.Itoa(s.Epochs),
				"--distill", distill}
			if distill == "soft" {
				args = append(args, "--tau", fmtFloat(tau), "--alpha", fmtFloat(alpha))
			}
			if views == 1 {
				args = append(args, "--aug-scale", s.Scale)
			}
			args = append(args, augment...)
			args = append(args, "--seed", strconv.Itoa(seed), "--workers", "1", "--out", dir, "--resume")
			c.Runs = append(c.Runs, Job{ID: id, Kind: "train", Bin: "train", Args: args, Dir: dir,
				Cost: float64(s.Limit*s.Epochs) + float64(testLimit*s.Epochs)/3, Needs: []string{train.ID, test.ID}})
		}
		p.Cells = append(p.Cells, c)
	}
	addCell := func(key, distill string, tau, alpha float64, teacher string, views int, augment ...string) {
		addCellOn(&Cell{Key: key, Distill: distill, Tau: tau, Alpha: alpha, Teacher: teacher, Views: views, Augment: augment},
			p.StoreFor(teacher, "train", views))
	}
	// 1. Table 3 of the paper: modes and heads, fixed teacher (one stored view, train-time crops).
	addCell("none", "none", 0, 0, "cnn", 1)
	addCell(SoftPaper, "soft", 3, 0.1, "cnn", 1)
	addCell(SoftCode, "soft", 1, 0.5, "cnn", 1)
	addCell("hard", "hard", 0, 0, "cnn", 1)
	// 2. Teacher type: the ViT against the RegNet, and against the RegNet of matching accuracy.
	addCell("vit-hard", "hard", 0, 0, "vit", 1)
	addCell("cnn1-hard", "hard", 0, 0, "cnn1", 1)
	// 4. Consistent teaching: the student sees exactly the crops the teacher labelled. The
	// labels-only runs on the same stored views are the control: they change the crops the
	// student sees in the same way (the stored views include the centre view, and an epoch
	// draws from a fixed set) without any teacher.
	for _, v := range s.Views {
		addCell(fmt.Sprintf("hard-v%d", v), "hard", 0, 0, "cnn", v)
		addCell(fmt.Sprintf("%s-v%d", SoftCode, v), "soft", 1, 0.5, "cnn", v)
	}
	for _, v := range s.Views {
		addCell(fmt.Sprintf("none-v%d", v), "none", 0, 0, "cnn", v)
	}
	// 6. DeiT's data augmentation at train time against the fixed teacher: the "hard" cell
	// (crops and flips) with RandAugment, random erasing, Mixup and CutMix added, the same
	// student, epochs and seeds.
	addCell(AugmentCell, "hard", 0, 0, "cnn", 1, DeiTAugmentFlags...)
	// ... and stored with the views and replayed: the teacher's label of each augmented,
	// mixed view is its output on those pixels.
	if st := p.AugmentedStore(); st != nil {
		addCellOn(&Cell{Key: StoredAugmentCell, Distill: "hard", Teacher: "cnn", Views: st.Views}, st)
	}
	// 3. Token similarity: the distillation-token student (hard) and the control, whose two
	// tokens are both trained on the labels (none): two class tokens.
	for _, key := range []string{"hard", "none"} {
		for _, run := range p.Cell(key).Runs {
			dir := filepath.Join(s.Out, "analyses", filepath.Base(run.ID))
			args := []string{"--analyze", filepath.Join(run.Dir, "checkpoint.ckpt"),
				"--eval-data", "idx:" + filepath.Join(s.Data, "t10k"), "--eval-labels", p.StoreFor("cnn", "test", 1).Dir,
				"--eval-limit", strconv.Itoa(min(s.Analyze, testLimit)), "--workers", "1"}
			p.Analyses = append(p.Analyses, Job{ID: "analyses/" + filepath.Base(run.ID), Kind: "analyze", Bin: "train",
				Args: args, Dir: dir, Cost: float64(min(s.Analyze, testLimit)) / 3, Needs: []string{run.ID}})
		}
	}
	return p, nil
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
