package reproduce

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/deitkd/deitkd/internal/atomicfile"
)

// Record is what Run keeps of a finished job, in OUT/jobs/ID.json: the job counts as done
// while its command is unchanged.
type Record struct {
	ID       string    `json:"id"`
	Command  string    `json:"command"`
	WallS    float64   `json:"wall_s"`
	Finished time.Time `json:"finished"`
}

// recordPath, logPath and outputPath are the files Run keeps per job.
func recordPath(s Settings, id string) string { return filepath.Join(s.Out, "jobs", id+".json") }
func logPath(s Settings, id string) string    { return filepath.Join(s.Out, "logs", id+".log") }

// OutputPath is where a job's standard output is kept (the token analysis is read from it).
func OutputPath(s Settings, id string) string { return filepath.Join(s.Out, "logs", id+".out") }

// ReadRecord returns the record of a finished job, or nil if it has none or its command is
// not cmd.
func ReadRecord(s Settings, id, cmd string) *Record {
	b, err := os.ReadFile(recordPath(s, id))
	if err != nil {
		return nil
	}
	var r Record
	if json.Unmarshal(b, &r) != nil || r.Command != cmd {
		return nil
	}
	return &r
}

// Env returns the environment a job runs with beyond the process's own: with several student
// runs at a time, each gets one BLAS thread, so that they do not fight over the cores.
func (p *Plan) Env(j Job) []string {
	if j.Kind != "store" && p.Settings.Jobs > 1 {
		return []string{"OPENBLAS_NUM_THREADS=1"}
	}
	return nil
}

// CommandLine is the job as one shell line, with its environment.
func (p *Plan) CommandLine(j Job) string {
	env := p.Env(j)
	if len(env) == 0 {
		return j.Command(p.Settings)
	}
	return strings.Join(env, " ") + " " + j.Command(p.Settings)
}

// Run executes every job of p not yet done: the stores one at a time (each uses every core),
// then the student runs and the analyses Settings.Jobs at a time. It writes progress and the
// estimated time left to w. On the first failure it lets the running jobs finish and returns
// an error naming the failed job and its log. Cancelling ctx interrupts the running commands
// (SIGINT; a student run keeps its last finished epoch and resumes from it).
func (p *Plan) Run(ctx context.Context, w io.Writer) error {
	s := p.Settings
	jobs := p.Jobs()
	var todo []Job
	for _, j := range jobs {
		if ReadRecord(s, j.ID, p.CommandLine(j)) == nil {
			todo = append(todo, j)
		}
	}
	fmt.Fprintf(w, "reproduce: %d jobs, %d done before, %d to run; results under %s\n", len(jobs), len(jobs)-len(todo), len(todo), s.Out)
	if len(todo) == 0 {
		return nil
	}
	pr := newProgress(w, todo, s.Jobs)
	stop := pr.heartbeat(time.Minute)
	defer stop()

	byKind := map[string][]Job{}
	for _, j := range todo {
		byKind[j.Kind] = append(byKind[j.Kind], j)
	}
	// The stores one at a time (each uses every core), then the student runs, then the
	// analyses of their checkpoints, Settings.Jobs at a time.
	for _, phase := range []struct {
		kind  string
		width int
	}{{"store", 1}, {"train", s.Jobs}, {"analyze", s.Jobs}} {
		if err := p.pool(ctx, byKind[phase.kind], phase.width, pr); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "reproduce: all %d jobs done in %s\n", len(todo), fmtDuration(time.Since(pr.start)))
	return nil
}

// pool runs jobs in order, width at a time. After a failure it starts no more and returns
// the first error once the running ones have finished.
func (p *Plan) pool(ctx context.Context, jobs []Job, width int, pr *progress) error {
	queue := make(chan Job)
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for range width {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				if err := p.runJob(ctx, j, pr); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, j := range jobs {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		queue <- j
	}
	close(queue)
	wg.Wait()
	if first != nil {
		return first
	}
	if ctx.Err() != nil {
		return fmt.Errorf("reproduce: interrupted; finished jobs are kept, rerun to continue: %w", ctx.Err())
	}
	return nil
}

// runJob runs one command, its output into the job's log, and records it when it succeeds.
func (p *Plan) runJob(ctx context.Context, j Job, pr *progress) error {
	s := p.Settings
	line := p.CommandLine(j)
	for _, f := range []string{logPath(s, j.ID), recordPath(s, j.ID)} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
	}
	logf, err := os.Create(logPath(s, j.ID))
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "$ %s\n", line)
	cmd := exec.CommandContext(ctx, filepath.Join(s.Bin, j.Bin), j.Args...)
	cmd.Env = append(os.Environ(), p.Env(j)...)
	cmd.Stderr = logf
	cmd.Stdout = logf
	var outf *os.File
	if j.Kind == "analyze" {
		if outf, err = os.Create(OutputPath(s, j.ID)); err != nil {
			return err
		}
		defer outf.Close()
		cmd.Stdout = io.MultiWriter(logf, outf)
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = time.Minute
	pr.begin(j)
	t0 := time.Now()
	err = cmd.Run()
	wall := time.Since(t0)
	pr.end(j, wall, err)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("reproduce: job %s failed (%v); its command and output: %s", j.ID, err, logPath(s, j.ID))
	}
	rec := Record{ID: j.ID, Command: line, WallS: wall.Seconds(), Finished: time.Now().UTC()}
	b, _ := json.MarshalIndent(rec, "", " ")
	return atomicfile.WriteFile(recordPath(s, j.ID), append(b, '\n'))
}

// progress prints a line per finished job and a heartbeat, with the estimated time left: each
// job kind's speed (cost units per second of a job's wall time) is measured on the jobs of that
// kind finished so far, the jobs not yet finished are costed at it, and the student runs and
// analyses are divided among the jobs that run side by side.
type progress struct {
	w        io.Writer
	start    time.Time
	parallel int
	mu       sync.Mutex
	pending  map[string]Job // not finished yet, running included
	running  map[string]time.Time
	cost     map[string]float64 // finished cost by kind
	wall     map[string]float64 // finished wall seconds by kind
	done     int
	total    int
}

func newProgress(w io.Writer, todo []Job, parallel int) *progress {
	pr := &progress{w: w, start: time.Now(), parallel: parallel, pending: map[string]Job{}, running: map[string]time.Time{},
		cost: map[string]float64{}, wall: map[string]float64{}, total: len(todo)}
	for _, j := range todo {
		pr.pending[j.ID] = j
	}
	return pr
}

// defaultSpeed is a job kind's assumed speed in cost units per second before one has finished:
// 2 cores, fm-tiny, two student runs side by side.
var defaultSpeed = map[string]float64{"store": 250, "train": 150, "analyze": 150}

// eta is the estimated time left, as of now.
func (pr *progress) eta() time.Duration {
	var serial, shared float64
	for id, j := range pr.pending {
		speed := defaultSpeed[j.Kind]
		if pr.wall[j.Kind] > 0 {
			speed = pr.cost[j.Kind] / pr.wall[j.Kind]
		}
		secs := j.Cost / speed
		if t0, ok := pr.running[id]; ok {
			secs = math.Max(0, secs-time.Since(t0).Seconds())
		}
		if j.Kind == "store" {
			serial += secs
		} else {
			shared += secs
		}
	}
	return time.Duration((serial + shared/float64(max(1, pr.parallel))) * float64(time.Second))
}

func (pr *progress) begin(j Job) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.running[j.ID] = time.Now()
	fmt.Fprintf(pr.w, "reproduce: start %s\n", j.ID)
}

func (pr *progress) end(j Job, wall time.Duration, err error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	delete(pr.running, j.ID)
	if err != nil {
		fmt.Fprintf(pr.w, "reproduce: FAILED %s after %s: %v\n", j.ID, fmtDuration(wall), err)
		return
	}
	pr.done++
	delete(pr.pending, j.ID)
	pr.cost[j.Kind] += j.Cost
	pr.wall[j.Kind] += wall.Seconds()
	fmt.Fprintf(pr.w, "reproduce: [%d/%d] %s done in %s · elapsed %s · about %s left\n", pr.done, pr.total, j.ID,
		fmtDuration(wall), fmtDuration(time.Since(pr.start)), fmtDuration(pr.eta()))
}

// heartbeat prints the running jobs every period until the returned function is called.
func (pr *progress) heartbeat(period time.Duration) func() {
	t := time.NewTicker(period)
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				pr.mu.Lock()
				var names []string
				for id, t0 := range pr.running {
					names = append(names, fmt.Sprintf("%s (%s)", id, fmtDuration(time.Since(t0))))
				}
				sort.Strings(names)
				fmt.Fprintf(pr.w, "reproduce: running %s · %d/%d done · about %s left\n", strings.Join(names, ", "),
					pr.done, pr.total, fmtDuration(pr.eta()))
				pr.mu.Unlock()
			}
		}
	}()
	return func() { t.Stop(); close(quit) }
}

func fmtDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= time.Hour {
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	if d >= time.Minute {
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}
