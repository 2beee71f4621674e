package store

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deitkd/deitkd/schema"
)

const crashEnv = "DEITKD_STORE_CRASH_DIR"

func crashMeta() schema.Metadata { return testMeta(schema.ModeTopK, schema.Float16, 20, 5, 2, 300) }

// TestCrashHelper is the writer process TestCrash kills; it does nothing
// unless started by TestCrash.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("helper process for TestCrash")
	}
	md := crashMeta()
	w, err := OpenWriter(dir, md, smallOpts(FormatParquet))
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < md.Dataset.ImageCount; i++ {
		for _, r := range synthRows(1, i, md.NumClasses, md.Views.Count) {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5 * time.Millisecond) // the teacher's time
	}
	t.Fatal("helper finished before it was killed")
}

// TestCrash kills a writer (SIGKILL) in the middle of a shard, reopens the
// store, checks that it reports exactly the images of finished shards,
// completes the run, and compares with an uninterrupted run.
func TestCrash(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(45 * time.Second)
	for killed := false; !killed; {
		select {
		case err := <-exited:
			t.Fatalf("helper exited before the kill: %v", err)
		case <-deadline:
			cmd.Process.Kill()
			t.Fatal("helper made no progress in 45 s")
		case <-time.After(time.Millisecond):
		}
		m, err := ReadManifest(filepath.Join(dir, "manifest.json"))
		tmps, _ := filepath.Glob(filepath.Join(dir, ".part-*.tmp"))
		if err == nil && len(m.Shards) >= 2 && len(tmps) == 1 {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-exited
			killed = true
		}
	}
	// What the manifest lists after the kill is what must be reported done.
	m, err := ReadManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]bool{}
	for _, s := range m.Shards {
		if err := readImageIndices(filepath.Join(dir, s.File), FormatParquet, memory.DefaultAllocator, func(i int64) { want[i] = true }); err != nil {
			t.Fatal(err)
		}
	}
	w, err := OpenWriter(dir, crashMeta(), smallOpts(FormatParquet))
	if err != nil {
		t.Fatal(err)
	}
	if w.Done().Len() != len(want) || len(want) == 0 {
		t.Fatalf("reopen reports %d images done, finished shards hold %d", w.Done().Len(), len(want))
	}
	for i := range want { // as many as reported: every one of them, and only those
		if !w.Done().Contains(i) {
			t.Fatalf("image %d is in a finished shard but not reported done", i)
		}
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(tmps) != 0 {
		t.Fatalf("temporary files left after reopen: %v", tmps)
	}
	w.Abort()
	if err := writeStore(dir, crashMeta(), smallOpts(FormatParquet), 1); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(context.Background(), dir)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify after completing: %v %v", err, rep.Problems)
	}
	clean := t.TempDir()
	if err := writeStore(clean, crashMeta(), smallOpts(FormatParquet), 1); err != nil {
		t.Fatal(err)
	}
	if rowsOf(t, dir) != rowsOf(t, clean) {
		t.Fatal("rows after crash and resume differ from an uninterrupted run")
	}
	t.Logf("killed after %d of %s images were in finished shards", len(want), strconv.FormatInt(crashMeta().Dataset.ImageCount, 10))
}

// readImageIndices calls fn for each image_index in a shard.
func readImageIndices(path string, f Format, mem memory.Allocator, fn func(int64)) error {
	sr, err := openShard(path, f, mem)
	if err != nil {
		return err
	}
	defer sr.Close()
	return sr.scan(context.Background(), []int{1}, func(rec arrow.RecordBatch) error {
		for _, v := range rec.Column(0).(*array.Int64).Int64Values() {
			fn(v)
		}
		return nil
	})
}
