package store

import (
	"context"
	"fmt"

	"github.com/deitkd/deitkd/internal/filehash"
)

// CheckSums reads every shard the manifest lists and compares its sha256 with the manifest's,
// so a reader that trusts the values it reads (the trainer) never trains on flipped bytes.
// It costs one sequential read of the store (see BenchmarkCheckSums). The error names the
// first shard that differs and wraps ErrChecksum; labels verify finds them all.
func (r *Reader) CheckSums(ctx context.Context) error {
	for i := range r.Manifest.Shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.checkSum(i); err != nil {
			return fmt.Errorf("%w (labels verify %s lists every problem)", err, r.Dir)
		}
	}
	return nil
}

// checkSum compares shard i's sha256 with the manifest's; the error names the shard.
func (r *Reader) checkSum(i int) error {
	p := r.ShardPath(i)
	sum, err := filehash.SHA256(p)
	if err != nil {
		return fmt.Errorf("shard %s: %w", p, err)
	}
	if want := r.Manifest.Shards[i].SHA256; sum != want {
		return fmt.Errorf("shard %s: %w: sha256 %s, manifest says %s", p, ErrChecksum, sum, want)
	}
	return nil
}
