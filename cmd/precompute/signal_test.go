//go:build unix

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSignalBeforeRun: SIGINT or SIGTERM while the dataset is listed or the teacher is loaded
// stops the process at once, exit 1, naming the stage (it was swallowed until the run began, so
// `timeout` could not stop a slow listing). A FIFO stands in for the slow file: reading it
// blocks until a writer opens it, which never happens.
func TestSignalBeforeRun(t *testing.T) {
	model := filepath.Join(testdata, "models", "tiny_gray.onnx")
	tests := []struct {
		name  string
		sig   syscall.Signal
		args  func(fifo, out string) []string
		stage string
	}{
		{"SIGINT loading the teacher", syscall.SIGINT, func(fifo, out string) []string {
			return []string{"--model", fifo, "--data", writeIDX(t, 10), "--out", out, "--mean", "0.5", "--std", "0.5"}
		}, "while loading the teacher"},
		{"SIGTERM listing the dataset", syscall.SIGTERM, func(fifo, out string) []string {
			return []string{"--model", model, "--data", "list:" + fifo, "--out", out, "--mean", "0.5", "--std", "0.5"}
		}, "while listing the dataset"},
		{"SIGINT listing with --teacher-off", syscall.SIGINT, func(fifo, _ string) []string {
			return []string{"--teacher-off", "--crop", "28", "--data", "list:" + fifo}
		}, "while listing the dataset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fifo := filepath.Join(dir, "slow")
			if err := syscall.Mkfifo(fifo, 0o644); err != nil {
				t.Skip("mkfifo:", err)
			}
			c := command(tt.args(fifo, filepath.Join(dir, "out"))...)
			var stderr bytes.Buffer
			c.Stderr = &stderr
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond) // past the flag checks, into the blocking read
			start := time.Now()
			if err := c.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- c.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				c.Process.Kill()
				<-done
				t.Fatalf("still running 10 s after %v\n%s", tt.sig, stderr.String())
			}
			if code := c.ProcessState.ExitCode(); code != exitFatal {
				t.Fatalf("exit %d after %v, want %d\n%s", code, time.Since(start), exitFatal, stderr.String())
			}
			if msg := stderr.String(); !strings.Contains(msg, "interrupted "+tt.stage) {
				t.Fatalf("stderr %q does not say it was interrupted %s", msg, tt.stage)
			}
			if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
				t.Errorf("a store was created by a run interrupted before it began")
			}
		})
	}
}

// TestFirstLines: a run says at once what it is doing (before the teacher is loaded), then that
// labelling has begun, before the first batch is done.
func TestFirstLines(t *testing.T) {
	model := filepath.Join(testdata, "models", "tiny_gray.onnx")
	data := writeIDX(t, 20)
	code, _, stderr := runInProcess(t, "--model", model, "--data", data, "--out", filepath.Join(t.TempDir(), "out"),
		"--mean", "0.5", "--std", "0.5", "--workers", "1", "--threads", "1")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	lines := strings.Split(stderr, "\n")
	if len(lines) < 2 || lines[0] != "precompute: loading the teacher "+model+" and listing "+data ||
		lines[1] != "precompute: labelling 20 images" {
		t.Fatalf("first lines %q", lines)
	}
}
