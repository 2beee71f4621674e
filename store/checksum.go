package store

import (
	"context"
	"fmt"
)

// CheckSums reads every shard the manifest lists and compares its size and sha256 with the manifest's,
// so a reader that trusts the values it reads (the trainer) never trains on flipped bytes.
// It costs one sequential read of the store (see BenchmarkCheckSums). The error names the
// first shard that differs and wraps ErrChecksum; labels verify finds them all.
func (r *Reader) CheckSums(ctx context.Context) error {
	for i, s := range r.Manifest.Shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := checkFile(r.ShardPath(i), s); err != nil {
			return fmt.Errorf("%w (labels verify %s lists every problem)", err, r.Dir)
		}
	}
	return nil
}
