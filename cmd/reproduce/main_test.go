package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"--seeds", "0,x"}, {"--views", "8,"}, {"extra"}, {"--views", "1"}, {"--nope"}} {
		var stderr bytes.Buffer
		if code := run(context.Background(), args, &bytes.Buffer{}, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}

// TestMissingBinariesNamed: without the built commands the run stops at once and says how to
// build them.
func TestMissingBinariesNamed(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--out", dir, "--bin", filepath.Join(dir, "nobin")}, &bytes.Buffer{}, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "nobin/precompute") || !strings.Contains(stderr.String(), "go build -o") {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
}

// TestReportOnlyBeforeAnyJob writes a report that lists every job as missing, with its plots.
func TestReportOnlyBeforeAnyJob(t *testing.T) {
	dir := t.TempDir()
	report := filepath.Join(dir, "docs", "results.md")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--quick", "--out", filepath.Join(dir, "out"), "--report", report, "--report-only"},
		&stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "report-only") {
		t.Error("the report names --report-only as its command")
	}
	if !strings.Contains(string(b), "**Incomplete:** 41 jobs have no result yet") || !strings.Contains(string(b), "](results/tokens.png)") {
		t.Errorf("report:\n%s", b)
	}
	for _, png := range []string{"tokens.png", "views.png", "curves.png"} {
		if _, err := os.Stat(filepath.Join(dir, "docs", "results", png)); err != nil {
			t.Error(err)
		}
	}
}
