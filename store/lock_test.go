package store

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deitkd/deitkd/schema"
)

func lockMeta() schema.Metadata { return testMeta(schema.ModeTopK, schema.Float16, 20, 5, 2, 30) }

// wantLocked fails unless err wraps ErrLocked and names the store folder,
// the holder's pid and the lock file.
func wantLocked(t *testing.T, err error, dir string, pid int, lock string) {
	t.Helper()
	msg := "store " + dir + " is being written by process " + strconv.Itoa(pid) + " (lock " + filepath.Join(dir, lock) + ")"
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %v; want %v saying %q", err, ErrLocked, msg)
	}
}

func TestLock(t *testing.T) {
	md := lockMeta()
	t.Run("second-writer", func(t *testing.T) {
		dir := t.TempDir()
		w, err := OpenWriter(dir, md, smallOpts(FormatParquet))
		if err != nil {
			t.Fatal(err)
		}
		for i := int64(0); i < 28; i++ { // shards of 20 images; a row group of images 20..27 in a temporary file
			for _, r := range synthRows(1, i, md.NumClasses, md.Views.Count) {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
		}
		_, err = OpenWriter(dir, md, smallOpts(FormatParquet))
		wantLocked(t, err, dir, os.Getpid(), ".lock")
		// Refused before it touched the store: the shard in progress is still there.
		if tmps, _ := filepath.Glob(filepath.Join(dir, ".part-*.tmp")); len(tmps) != 1 {
			t.Fatalf("temporary files after the refused writer: %v", tmps)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, ".lock")); string(b) != strconv.Itoa(os.Getpid())+"\n" {
			t.Fatalf("lock file holds %q, want this process's pid", b)
		}
		for i := int64(28); i < md.Dataset.ImageCount; i++ {
			for _, r := range synthRows(1, i, md.NumClasses, md.Views.Count) {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, ".lock")); err != nil || len(b) != 0 {
			t.Fatalf("lock file after Close: %q, %v; want it empty", b, err)
		}
		w, err = OpenWriter(dir, md, smallOpts(FormatParquet))
		if err != nil {
			t.Fatalf("writer after the first closed: %v", err)
		}
		if w.Done().Len() != int(md.Dataset.ImageCount) {
			t.Fatalf("reopened writer finds %d images done, want %d", w.Done().Len(), md.Dataset.ImageCount)
		}
		w.Abort()
		w, err = OpenWriter(dir, md, smallOpts(FormatParquet))
		if err != nil {
			t.Fatalf("writer after the last aborted: %v", err)
		}
		w.Close()
		// The lock file left behind is no label file to Verify.
		rep, err := Verify(context.Background(), dir)
		if err != nil || !rep.OK() {
			t.Fatalf("Verify with the lock file there: %v %v", err, rep.Problems)
		}
	})
	t.Run("refused-open-releases", func(t *testing.T) {
		dir := t.TempDir()
		if err := writeStore(dir, md, smallOpts(FormatParquet), 1); err != nil {
			t.Fatal(err)
		}
		other := md
		other.Preprocess.Crop = 256
		if _, err := OpenWriter(dir, other, smallOpts(FormatParquet)); !errors.Is(err, schema.ErrMismatch) {
			t.Fatalf("OpenWriter with another crop: %v", err)
		}
		w, err := OpenWriter(dir, md, smallOpts(FormatParquet))
		if err != nil {
			t.Fatalf("a refused OpenWriter kept the lock: %v", err)
		}
		w.Abort()
	})
	t.Run("split-writers", func(t *testing.T) {
		dir := t.TempDir()
		var ws []*Writer
		for i := range 2 {
			opts := smallOpts(FormatParquet)
			opts.Shard = ShardSpec{Index: i, Count: 2}
			w, err := OpenWriter(dir, md, opts)
			if err != nil {
				t.Fatalf("writer %d of 2 beside the other: %v", i, err)
			}
			ws = append(ws, w)
		}
		_, err := OpenWriter(dir, md, Options{Shard: ShardSpec{Index: 1, Count: 2}})
		wantLocked(t, err, dir, os.Getpid(), ".lock-1-of-2")
		for i, w := range ws {
			for j := int64(i); j < md.Dataset.ImageCount; j += 2 {
				for _, r := range synthRows(1, j, md.NumClasses, md.Views.Count) {
					if err := w.Write(r); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if err := ws[0].Close(); err != nil {
			t.Fatal(err)
		}
		if err := ws[1].Close(); err != nil {
			t.Fatal(err)
		}
		// Merge writes the store too: refused while a writer is at work.
		w, err := OpenWriter(dir, md, Options{Shard: ShardSpec{Index: 0, Count: 2}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Merge(context.Background(), dir)
		wantLocked(t, err, dir, os.Getpid(), ".lock-0-of-2")
		w.Close()
		if _, err := Merge(context.Background(), dir); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(context.Background(), dir)
		if err != nil || !rep.OK() || rep.Rows != md.Dataset.ImageCount*int64(md.Views.Count) {
			t.Fatalf("Verify of the merged store beside its lock files: %v %+v", err, rep)
		}
		m, err := ReadManifest(filepath.Join(dir, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range m.Shards {
			if strings.Contains(s.File, "lock") {
				t.Fatalf("merged manifest lists %s", s.File)
			}
		}
	})
}

const lockEnv = "DEITKD_STORE_LOCK_DIR"

// TestLockHelper is the writer process TestLockProcess kills; it does
// nothing unless started by TestLockProcess.
func TestLockHelper(t *testing.T) {
	dir := os.Getenv(lockEnv)
	if dir == "" {
		t.Skip("helper process for TestLockProcess")
	}
	w, err := OpenWriter(dir, lockMeta(), smallOpts(FormatParquet))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	os.Stdout.WriteString("locked\n")
	time.Sleep(time.Minute)
	t.Fatal("helper was not killed within a minute")
}

// TestLockProcess runs a writer in another process: while it lives, a
// writer here is refused naming its pid; once it is killed (SIGKILL, so it
// releases nothing itself) the lock file it leaves is no obstacle.
func TestLockProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "locked" {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("helper exited without taking the lock: %v", cmd.Wait())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("helper did not take the lock in 30 s")
	}
	_, err = OpenWriter(dir, lockMeta(), smallOpts(FormatParquet))
	wantLocked(t, err, dir, cmd.Process.Pid, ".lock")
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if b, _ := os.ReadFile(filepath.Join(dir, ".lock")); string(b) != strconv.Itoa(cmd.Process.Pid)+"\n" {
		t.Fatalf("lock file after the kill holds %q, want the dead helper's pid", b)
	}
	w, err := OpenWriter(dir, lockMeta(), smallOpts(FormatParquet))
	if err != nil {
		t.Fatalf("writer after the holder was killed: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
