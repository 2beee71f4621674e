package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestTeacherOff: --teacher-off feeds the images without a model or a store and prints the
// img/s line, listing the folder with --extensions; --jpeg-draft without it and --teacher-off without --crop are usage errors.
func TestTeacherOff(t *testing.T) {
	data := filepath.Join(testdata, "images")
	code, stdout, stderr := runInProcess(t, "--teacher-off", "--data", data, "--resize", "40", "--crop", "32",
		"--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "--batch", "4", "--jpeg-draft")
	if code != exitOK || !strings.Contains(stdout, "feed_img_per_s ") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// --extensions lists the folder as a labelling run would: the two GIFs alone here.
	code, stdout, stderr = runInProcess(t, "--teacher-off", "--data", data, "--crop", "32", "--extensions", "gif")
	if code != exitOK || !strings.Contains(stdout, "fed 2 images (0 failed)") {
		t.Fatalf("--extensions gif: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, stderr := runInProcess(t, "--teacher-off", "--data", data); code != exitUsage || !strings.Contains(stderr, "--crop") {
		t.Fatalf("no crop: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runInProcess(t, "--jpeg-draft", "--data", data, "--crop", "32"); code != exitUsage || !strings.Contains(stderr, "--teacher-off") {
		t.Fatalf("draft with the teacher: exit %d, stderr %q", code, stderr)
	}
}
