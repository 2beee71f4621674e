package dataset

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// ContentEdge is how many bytes at each end of a file ContentHash reads.
const ContentEdge = 1024

// contentBatch is how many files ContentHash hashes between two combinations: it bounds the
// per-file digests held at once.
const contentBatch = 4096

// contentWorkers is how many files ContentHash reads at once: the reads are small and wait
// on the disk (or the network), not the CPU.
const contentWorkers = 8

// ContentHash is a cheap hex sha256 of the bytes a source's images come from, which the
// label store records (schema.Dataset.ContentHash) so that a rerun or the trainer can tell
// the same ids with other pixels. For a folder or list source it is the sha256 over the files
// in index order of each file's sha256 of its size (8 bytes, little-endian), its first
// ContentEdge bytes and its last ContentEdge bytes (the whole file when it is smaller; read
// with ReadAt, two small reads a file): a change within the middle of a large file that keeps
// its size is not seen. For IDX files it is the sha256 of the image dimensions and every
// decoded pixel (they are in memory). A source of another kind gives "" (nothing to
// compare). An error names the image whose file cannot be read or is not a regular file.
func ContentHash(s Source) (string, error) {
	switch s := s.(type) {
	case *fileSource:
		return s.contentHash()
	case *idxSource:
		h := sha256.New()
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:8], uint64(s.rows))
		binary.LittleEndian.PutUint64(b[8:], uint64(s.cols))
		h.Write(b[:])
		h.Write(s.pix)
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	return "", nil
}

func (s *fileSource) contentHash() (string, error) {
	outer := sha256.New()
	sums := make([][sha256.Size]byte, min(contentBatch, len(s.items)))
	errs := make([]error, contentWorkers)
	for start := 0; start < len(s.items); start += contentBatch {
		n := min(contentBatch, len(s.items)-start)
		var wg sync.WaitGroup
		for w := range contentWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 2*ContentEdge)
				for j := w; j < n; j += contentWorkers {
					if errs[w] != nil {
						return
					}
					sums[j], errs[w] = s.fileDigest(start+j, buf)
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return "", err
			}
		}
		for _, d := range sums[:n] {
			outer.Write(d[:])
		}
	}
	return hex.EncodeToString(outer.Sum(nil)), nil
}

// fileDigest is item i's file's sha256 of its size, first and last ContentEdge bytes; buf
// holds 2*ContentEdge bytes.
func (s *fileSource) fileDigest(i int, buf []byte) (d [sha256.Size]byte, err error) {
	id := s.items[i].ID
	name := filepath.Join(s.root, filepath.FromSlash(s.paths[i]))
	// Stat before Open: opening a FIFO would wait for a writer.
	fi, err := os.Stat(name)
	if err != nil {
		return d, fmt.Errorf("content hash %s: %w", id, err)
	}
	if !fi.Mode().IsRegular() {
		return d, fmt.Errorf("content hash %s: %w (%s)", id, ErrNotRegular, fi.Mode().Type())
	}
	f, err := os.Open(name)
	if err != nil {
		return d, fmt.Errorf("content hash %s: %w", id, err)
	}
	defer f.Close()
	size := fi.Size()
	head := buf[:min(size, ContentEdge)]
	tail := buf[ContentEdge : ContentEdge+min(size, ContentEdge)]
	if _, err := f.ReadAt(head, 0); err != nil && !(err == io.EOF && len(head) == 0) {
		return d, fmt.Errorf("content hash %s: %w", id, err)
	}
	if _, err := f.ReadAt(tail, size-int64(len(tail))); err != nil && !(err == io.EOF && len(tail) == 0) {
		return d, fmt.Errorf("content hash %s: %w", id, err)
	}
	h := sha256.New()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(size))
	h.Write(b[:])
	h.Write(head)
	h.Write(tail)
	h.Sum(d[:0])
	return d, nil
}
