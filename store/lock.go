package store

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockName is the lock file of writer spec in the store folder: one per
// writer, so that the n writers of a split store run side by side while a
// second copy of any one of them is refused. Hidden and without a label
// file's extension, so globs, Verify and Merge pass it by.
func lockName(spec ShardSpec) string {
	if spec.split() {
		return ".lock-" + spec.String()
	}
	return ".lock"
}

// dirLock is an exclusive lock on a lock file of a store folder, held by
// whatever mutates the store (a Writer for its whole life, Merge while it
// runs). It is flock(2) on the open file, so the kernel drops it when its
// process dies, however it dies: a killed writer's lock never blocks the
// rerun. The file holds the holder's pid. It stays behind when released:
// removing it would let a process that opened it just before lock a file no
// longer in the folder while a third locks a new one.
type dirLock struct {
	f *os.File
}

// lockDir takes the lock file name in the store folder dir, without
// waiting. If another open file holds it (another process, or another
// writer in this one) the error wraps ErrLocked and names dir and the
// holder's pid.
func lockDir(dir, name string) (*dirLock, error) {
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock store %s: %w", dir, err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock store %s: flock %s: %w", dir, path, err)
	}
	if !held {
		// Empty only in the moment between the holder's flock and its write.
		holder := "another process"
		b, _ := io.ReadAll(io.LimitReader(f, 32))
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			holder = "process " + strconv.Itoa(pid)
		}
		f.Close()
		return nil, fmt.Errorf("store %s is being written by %s (lock %s): %w", dir, holder, path, ErrLocked)
	}
	if err = f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock store %s: write %s: %w", dir, path, err)
	}
	return &dirLock{f: f}, nil
}

// release empties the lock file and drops the lock (closing the file drops
// the flock). Safe to call on nil and more than once.
func (l *dirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	l.f.Truncate(0)
	l.f.Close()
	l.f = nil
}
