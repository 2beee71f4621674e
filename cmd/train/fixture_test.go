package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/deitkd/deitkd/precompute"
)

var updateFixture = flag.Bool("update-fixture", false, "rewrite testdata/metrics_fm_tiny_2ep.jsonl from this build")

// fixturePath is the metrics.jsonl of the run TestMetricsFixture repeats, made by the build of
// the commit that last changed it: what a run computes must not change when the code that runs
// it is restructured. Rewrite it (go test ./cmd/train -run TestMetricsFixture -args
// -update-fixture) only in a commit meant to change what a run computes, and say so there.
const fixturePath = "testdata/metrics_fm_tiny_2ep.jsonl"

// TestMetricsFixture trains fm-tiny for 2 epochs on the first 2,000 Fashion-MNIST training
// images, labelled by the bundled RegNetY teacher, evaluated on the first 1,000 test images,
// with fixed seeds, and compares every loss, learning rate, gradient norm and accuracy of its
// metrics.jsonl with the committed reference, bit for bit (only timings may differ).
func TestMetricsFixture(t *testing.T) {
	const fm = "/usr/share/datasets/fashion-mnist"
	if _, err := os.Stat(filepath.Join(fm, "train-images-idx3-ubyte.gz")); err != nil {
		t.Fatalf("Fashion-MNIST (Debian's dataset-fashion-mnist, installed by make setup): %v", err)
	}
	teacher := filepath.Join(testdata, "teacher", "regnety_fmnist.onnx")
	dir := t.TempDir()
	label := func(name string, limit int) string {
		out := filepath.Join(dir, "labels-"+name)
		job, err := precompute.New(precompute.Options{Model: teacher, Data: "idx:" + filepath.Join(fm, name), Out: out, Limit: limit, Workers: 2, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer job.Close()
		if _, err := job.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return out
	}
	trainLab, testLab := label("train", 2000), label("t10k", 1000)
	out := filepath.Join(dir, "run")
	var stdout, stderr bytes.Buffer
	args := []string{"--labels", trainLab, "--data", "idx:" + filepath.Join(fm, "train"), "--eval-labels", testLab,
		"--eval-data", "idx:" + filepath.Join(fm, "t10k"), "--limit", "2000", "--out", out, "--epochs", "2", "--seed", "7", "--workers", "2"}
	if code := run(context.Background(), args, &stdout, &stderr, false); code != exitOK {
		t.Fatalf("train exit %d\n%s", code, stderr.String())
	}
	got := metricsWithoutTimes(t, filepath.Join(out, "metrics.jsonl"))
	if *updateFixture {
		var b bytes.Buffer
		for _, r := range got {
			j, _ := json.Marshal(r)
			b.Write(append(j, '\n'))
		}
		if err := os.WriteFile(fixturePath, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := metricsWithoutTimes(t, fixturePath)
	if len(got) != len(want) {
		t.Fatalf("%d metrics lines, the reference %s has %d", len(got), fixturePath, len(want))
	}
	for i := range want {
		g, _ := json.Marshal(got[i])
		w, _ := json.Marshal(want[i])
		if !bytes.Equal(g, w) {
			t.Fatalf("metrics line %d differs from %s:\n got  %s\n want %s", i+1, fixturePath, g, w)
		}
	}
}

// metricsWithoutTimes reads a metrics.jsonl with its timing fields removed.
func metricsWithoutTimes(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r map[string]any
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.UseNumber() // the numbers as written, digit for digit
		if err := d.Decode(&r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, k := range []string{"img_s", "train_img_s", "epoch_s"} {
			delete(r, k)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}
