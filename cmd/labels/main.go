package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/deitkd/deitkd/show"
	"github.com/deitkd/deitkd/store"
)

const usage = `usage:
  labels inspect PATH
  labels verify PATH [--complete]
  labels merge DIR
  labels export PATH --format csv|jsonl [-n ROWS]
  labels failures PATH [--format csv|jsonl] [-n ROWS]
  labels show PATH --data SRC --rows A-B [--out FILE.png] [--tensors DIR] [--columns N]
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one subcommand and returns the exit code: 0 success, 1 a
// problem with the store, 2 a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("labels "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage+"\nflags:\n")
		fs.PrintDefaults()
	}
	// The format is checked here, at parse time, so that a bad one is a
	// usage error (exit 2) rather than a problem with the store.
	format := "jsonl"
	formats := strings.Join(store.ExportFormats, " or ")
	fs.Func("format", "export `FORMAT`: "+formats+" (default jsonl)", func(s string) error {
		if !slices.Contains(store.ExportFormats, s) {
			return fmt.Errorf("want %s", formats)
		}
		format = s
		return nil
	})
	limit := fs.Int64("n", 0, "export at most this many rows (0: all)")
	complete := fs.Bool("complete", false, "verify: ask for every image of the dataset, not only the store's --limit scope")
	data := fs.String("data", "", "show: the store's images, `SRC` as precompute took them (a class-folder DIR, list:FILE or idx:PREFIX); checked against the store's dataset identity")
	var rows [2]int
	rowsSet := false
	fs.Func("rows", "show: the rows `A-B` (both included; or one row A), numbered from 0 in the store's (image_index, view) order", func(v string) error {
		var err error
		rows, err = parseRows(v)
		rowsSet = err == nil
		return err
	})
	sheet := fs.String("out", "", "show: the contact sheet's `FILE.png`")
	tensors := fs.String("tensors", "", "show: write the rows' teacher inputs as `DIR`/inputs.npy (float32 N×C×H×W, normalised) and DIR/rows.csv")
	columns := fs.Int("columns", 8, "show: tiles per line of the contact sheet")
	// Accept flags before or after PATH.
	var pos []string
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		rest = fs.Args()
		if len(rest) > 0 {
			pos = append(pos, rest[0])
			rest = rest[1:]
		}
	}
	if len(pos) != 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	path := pos[0]
	var err error
	switch cmd {
	case "inspect":
		err = inspect(ctx, path, stdout)
	case "verify":
		return verify(ctx, path, store.VerifyOptions{Complete: *complete}, stdout, stderr)
	case "merge":
		var m *store.Manifest
		if m, err = store.Merge(ctx, path); err == nil {
			fmt.Fprintf(stdout, "merged %s: %d shards, %d rows, %d images\n", path, len(m.Shards), m.Rows, m.Images)
		}
	case "export":
		var r *store.Reader
		if r, err = store.OpenReader(path); err == nil {
			err = store.Export(ctx, r, stdout, format, *limit)
		} else if parent := filepath.Dir(filepath.Clean(path)); filepath.Base(filepath.Clean(path)) == "failures" && isStore(parent) {
			err = fmt.Errorf("%s is a store's failure log: labels failures %s lists it", path, parent)
		}
	case "show":
		if *data == "" || !rowsSet || (*sheet == "" && *tensors == "") {
			fmt.Fprintf(stderr, "labels show: give --data SRC, --rows A-B and --out FILE.png or --tensors DIR (or both)\n%s", usage)
			return 2
		}
		if *columns < 1 {
			fmt.Fprintf(stderr, "labels show: --columns %d: want ≥ 1\n", *columns)
			return 2
		}
		var sum show.Summary
		sum, err = show.Run(ctx, show.Options{Labels: path, Data: *data, First: rows[0], Last: rows[1], Sheet: *sheet, Tensors: *tensors,
			Columns: *columns, Log: func(n string) { fmt.Fprintf(stderr, "labels show: %s\n", n) }})
		if err == nil {
			if sum.Sheet != "" {
				fmt.Fprintf(stdout, "wrote %s: rows %d-%d, %d×%d views\n", sum.Sheet, rows[0], rows[1], sum.Size, sum.Size)
			}
			if sum.Inputs != "" {
				fmt.Fprintf(stdout, "wrote %s (float32 %d×%d×%d×%d) and %s\n", sum.Inputs, sum.Rows, sum.Channels, sum.Size, sum.Size, sum.RowIDs)
			}
		}
	case "failures":
		var r *store.Reader
		if r, err = store.OpenReader(path); err == nil {
			err = store.ExportFailures(r, stdout, format, *limit)
		}
	default:
		fmt.Fprintf(stderr, "labels: unknown command %q\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "labels %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// parseRows reads "A-B" (A ≤ B) or "A" as the rows A..B, both included.
func parseRows(v string) ([2]int, error) {
	a, b, isRange := strings.Cut(strings.TrimSpace(v), "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := lo, error(nil)
	if isRange {
		hi, err2 = strconv.Atoi(b)
	}
	if err1 != nil || err2 != nil || lo < 0 || hi < lo {
		return [2]int{}, fmt.Errorf("want A-B with 0 ≤ A ≤ B, or one row A")
	}
	return [2]int{lo, hi}, nil
}

func verify(ctx context.Context, path string, opts store.VerifyOptions, stdout, stderr io.Writer) int {
	rep, err := store.VerifyWith(ctx, path, opts)
	if err != nil {
		fmt.Fprintf(stderr, "labels verify: %v\n", err)
		return 1
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(stderr, "labels verify: %v\n", p.Err)
	}
	if !rep.OK() {
		fmt.Fprintf(stderr, "labels verify: %s: %d problem(s)\n", path, len(rep.Problems))
		return 1
	}
	fmt.Fprintf(stdout, "ok: %s: %d shards, %d rows, %d images, %d failed images; scope: %s\n", path, rep.Shards, rep.Rows, rep.Images, rep.Failures, rep.Scope())
	return 0
}

func inspect(ctx context.Context, path string, w io.Writer) error {
	r, err := store.OpenReader(path)
	if err != nil {
		return err
	}
	s, err := store.Inspect(ctx, r)
	if err != nil {
		return err
	}
	md := s.Meta
	fmt.Fprintf(w, "store      %s\n", r.Dir)
	fmt.Fprintf(w, "format     %s, %d shards, %d rows, %d images, %d failed\n", s.Format, s.Shards, s.Rows, s.Images, s.Failures)
	mode := string(md.Store.Mode)
	if md.Store.Mode == "topk" {
		mode = fmt.Sprintf("topk (k=%d)", md.Store.K)
	}
	fmt.Fprintf(w, "mode       %s, %s, %d classes, %d views per image\n", mode, md.Store.DType, md.NumClasses, md.Views.Count)
	fmt.Fprintf(w, "teacher    %s (sha256 %s), input %s %v, output %s\n", md.Teacher.File, short(md.Teacher.SHA256), md.Teacher.InputName, md.Teacher.InputShape, md.Teacher.OutputName)
	listed := "" // the default, torchvision's IMG_EXTENSIONS, is not shown
	switch exts := strings.Join(md.Dataset.Extensions, ","); exts {
	case "":
	case "*":
		listed = ", listed by --extensions all"
	default:
		listed = ", listed by --extensions " + exts
	}
	fmt.Fprintf(w, "dataset    %s%s, %d images, ids sha256 %s\n", md.Dataset.Name, listed, md.Dataset.ImageCount, short(md.Dataset.IDHash))
	fmt.Fprintf(w, "created by %s\n", md.CreatedBy)
	fmt.Fprintln(w, "\nschema")
	for _, f := range r.Schema.Fields() {
		null := ""
		if f.Nullable {
			null = ", nullable"
		}
		fmt.Fprintf(w, "  %-15s %s%s\n", f.Name, f.Type, null)
	}
	fmt.Fprintln(w, "\nmetadata")
	mm, _ := md.EncodeMap()
	keys := make([]string, 0, len(mm))
	for k := range mm {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := string(mm[k])
		if len(v) > 120 {
			v = v[:117] + "..."
		}
		fmt.Fprintf(w, "  %-22s %s\n", k, v)
	}
	if n := len(md.ClassMap); n > 0 {
		const shown = 20
		fmt.Fprintf(w, "\nclass map (%d folders → teacher classes, precompute --class-map)\n", n)
		for _, e := range md.ClassMap[:min(n, shown)] {
			name := ""
			if e.Class < len(md.ClassNames) {
				name = " " + md.ClassNames[e.Class]
			}
			fmt.Fprintf(w, "  %-24s → %5d%s\n", trunc(e.Folder, 24), e.Class, name)
		}
		if n > shown {
			fmt.Fprintf(w, "  ... %d more folders\n", n-shown)
		}
	}
	if s.Failures > 0 {
		fmt.Fprintf(w, "\nfailed images (%d; labels failures %s lists them all)\n", s.Failures, r.Dir)
		for _, f := range s.FirstFailures {
			fmt.Fprintf(w, "  %8d %s: %s: %s\n", f.ImageIndex, f.ImageID, f.Stage, f.Err)
		}
		if s.Failures > len(s.FirstFailures) {
			fmt.Fprintf(w, "  ... %d more\n", s.Failures-len(s.FirstFailures))
		}
	}
	fmt.Fprintln(w, "\nteacher")
	if s.Labelled > 0 {
		top5 := "n/a (k < 5)"
		if s.Top5Known {
			top5 = fmt.Sprintf("%.2f%%", 100*s.Top5)
		}
		fmt.Fprintf(w, "  top-1 vs ground truth  %.2f%% of %d labelled rows\n", 100*s.Top1, s.Labelled)
		fmt.Fprintf(w, "  top-5 vs ground truth  %s\n", top5)
	} else {
		fmt.Fprintln(w, "  no ground-truth labels")
	}
	fmt.Fprintf(w, "  mean entropy (τ=1)     %.4f nats (uniform: %.4f)\n", s.MeanEntropy, lnUniform(md.NumClasses))
	fmt.Fprintln(w, "\nclass histogram of teacher_hard (rows), most frequent first")
	type kv struct {
		class int
		n     int64
	}
	h := make([]kv, len(s.HardHist))
	for c, n := range s.HardHist {
		h[c] = kv{c, n}
	}
	sort.SliceStable(h, func(i, j int) bool { return h[i].n > h[j].n })
	predicted := 0 // classes with rows, first after the sort
	for predicted < len(h) && h[predicted].n > 0 {
		predicted++
	}
	top := h[:min(predicted, 20)]
	for _, e := range top {
		name := ""
		if e.class < len(md.ClassNames) {
			name = md.ClassNames[e.class]
		}
		fmt.Fprintf(w, "  %5d %-24s %8d  %s\n", e.class, trunc(name, 24), e.n, bar(e.n, h[0].n))
	}
	if predicted > len(top) {
		fmt.Fprintf(w, "  ... %d more classes; least frequent: %d rows\n", predicted-len(top), h[predicted-1].n)
	}
	if empty := len(h) - predicted; empty > 0 {
		fmt.Fprintf(w, "  %d of %d classes never predicted\n", empty, len(h))
	}
	return nil
}

// isStore says whether dir holds a store's manifest.
func isStore(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "manifest.json"))
	return err == nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

func bar(n, max int64) string {
	if max == 0 {
		return ""
	}
	return strings.Repeat("█", int(30*n/max))
}

func lnUniform(k int) float64 { return math.Log(float64(k)) }
