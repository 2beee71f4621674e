package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDiskFull runs precompute onto a 200 KiB tmpfs (root only; skipped where mount fails):
// it fails with exit 1, the error is printed once, and the summary counts only the images
// the store durably holds (those a rerun will not redo).
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	disk := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", disk).Run() })
	spec := writeIDX(t, 6000)
	out := filepath.Join(disk, "labels")
	code, stdout, stderr := runInProcess(t, "--model", filepath.Join(testdata, "models", "tiny_gray.onnx"), "--data", spec,
		"--out", out, "--mean", "0.5", "--std", "0.5", "--workers", "1", "--threads", "1", "--shard-rows", "500", "--format", "arrow")
	if code != exitFatal {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitFatal, stdout, stderr)
	}
	if n := strings.Count(stderr, "no space left on device"); n != 1 {
		t.Errorf("stderr says \"no space left on device\" %d times, want once:\n%s", n, stderr)
	}
	m := regexp.MustCompile(`precompute: (\d+) images labelled \((\d+) rows\)`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no summary line in\n%s", stdout)
	}
	images, _ := strconv.Atoi(m[1])
	stored := map[int64]bool{}
	for _, r := range readRows(t, out) {
		stored[r.index] = true
	}
	if images != len(stored) {
		t.Errorf("summary says %d images labelled, the store holds %d", images, len(stored))
	}
	if images == 0 || images >= 6000 {
		t.Errorf("%d images stored: the disk did not fill part-way; resize the test", images)
	}
	if _, err := os.Stat(filepath.Join(out, "manifest.json")); err != nil {
		t.Error(err)
	}
	t.Logf("stdout:\n%sstderr:\n%s", stdout, stderr)
}
