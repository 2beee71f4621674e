// Command export writes a student checkpoint as ONNX or timm-named safetensors:
//
//	export --ckpt FILE --out DIR [--format onnx,safetensors] [--fuse probs|logits]
//	       [--labels STORE] [--preprocess JSON] [--class-names JSON]
//
// It writes DIR/student.onnx and/or DIR/student.safetensors atomically, with the preprocessing
// and class names the checkpoint records (train records them). --labels takes them from the
// label store the student was trained on instead (its manifest.json), built as train builds
// them (traindata.ExportPreprocess at the student's input size), and refuses a store that does
// not fit the checkpoint: another class count or channel count, or, where the checkpoint
// records them, another preprocessing or other class names. A checkpoint that records no
// preprocessing needs --labels or --preprocess. --preprocess and --class-names give them
// directly and win over both. Flags and wiring only: the work is in packages export and
// traindata.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/export"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/student"
	"github.com/deitkd/deitkd/traindata"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run returns the exit code: 0 success, 1 a failed export, 2 a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ckpt := fs.String("ckpt", "", "student checkpoint (model or training state)")
	out := fs.String("out", "", "folder to write into (created if missing)")
	formats := fs.String("format", "onnx,safetensors", "comma-separated: onnx, safetensors")
	fuse := student.FuseProbs
	fs.Var(&fuse, "fuse", "ONNX output fused: probs (mean of the heads' softmaxes, as train's --fuse) or logits (mean of their logits)")
	labels := fs.String("labels", "", "label store folder the checkpoint was trained on, to embed its preprocessing and class names (default: the checkpoint's own; a store that does not fit it is refused)")
	pre := fs.String("preprocess", "", `preprocessing JSON, e.g. {"resize":28,"crop":28,"interpolation":"bilinear","mean":[0.286],"std":[0.353],"channels":1}`)
	names := fs.String("class-names", "", `class names as a JSON array, class index order`)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "export: "+format+"\n", a...)
		fs.Usage()
		return 2
	}
	if fs.NArg() != 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	if *ckpt == "" || *out == "" {
		return usage("--ckpt and --out are required")
	}
	var list []string
	for _, f := range strings.Split(*formats, ",") {
		f = strings.TrimSpace(f)
		if _, err := export.FileName(f); err != nil {
			return usage("%v", err)
		}
		list = append(list, f)
	}
	var givenPre *dataset.Config
	var givenNames []string
	if *pre != "" {
		givenPre = new(dataset.Config)
		if err := json.Unmarshal([]byte(*pre), givenPre); err != nil {
			return usage("--preprocess: %v", err)
		}
	}
	if *names != "" {
		if err := json.Unmarshal([]byte(*names), &givenNames); err != nil {
			return usage("--class-names: %v", err)
		}
	}

	m, err := student.LoadModel(*ckpt)
	if err != nil {
		fmt.Fprintf(stderr, "export: %v\n", err)
		return 1
	}
	// Options left nil take the checkpoint's record (export.Options).
	opts := export.Options{Fuse: fuse}
	switch {
	case *labels != "":
		man, err := store.ReadManifest(filepath.Join(*labels, "manifest.json"))
		if err != nil {
			fmt.Fprintf(stderr, "export: %v\n", err)
			return 1
		}
		md, c := man.Meta(), m.Config()
		p, err := traindata.FitExport(md, traindata.Trained{Size: c.ImageSize, Channels: c.Channels, Classes: c.Classes,
			Preprocess: m.Preprocess(), ClassNames: m.ClassNames()})
		if err != nil {
			fmt.Fprintf(stderr, "export: label store %s does not fit checkpoint %s: %v\n", *labels, *ckpt, err)
			return 1
		}
		opts.Preprocess = &p
		if len(md.ClassNames) > 0 {
			opts.ClassNames = md.ClassNames
		}
	case m.Preprocess() == nil && givenPre == nil:
		fmt.Fprintf(stderr, "export: checkpoint %s does not record the preprocessing it was trained with "+
			"(written before checkpoints recorded it, or not by train): pass --labels STORE, the label store it was trained on, "+
			"or --preprocess JSON\n", *ckpt)
		return 1
	}
	if givenPre != nil {
		opts.Preprocess = givenPre
	}
	if givenNames != nil {
		opts.ClassNames = givenNames
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(stderr, "export: %v\n", err)
		return 1
	}
	for _, f := range list {
		path, err := export.WriteFile(*out, f, m, opts)
		if err != nil {
			fmt.Fprintf(stderr, "export: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s\n", path)
	}
	return 0
}
