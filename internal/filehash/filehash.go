// Package filehash computes the sha256 that deitkd records for whole files: a teacher model in
// the label-store metadata, a shard in the manifest. It imports nothing of deitkd.
package filehash

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
)

// SHA256 returns the hex sha256 of the file at path, read in a stream (a teacher can be
// hundreds of MB). Errors are the file system's, for the caller to wrap with what it was doing.
func SHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
