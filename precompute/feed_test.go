package precompute

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestFeed: --teacher-off feeds every image of a folder (failures counted, not fatal), needs
// no model, refuses a missing crop, and prints the line scripts/bench_feed.sh reads.
func TestFeed(t *testing.T) {
	data := filepath.Join("..", "testdata", "images")
	sum, err := Feed(context.Background(), FeedOptions{Data: data, Crop: 32, Resize: 40, Batch: 4, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Images == 0 || sum.Images < sum.Failed {
		t.Fatalf("fed %d images, %d failed", sum.Images, sum.Failed)
	}
	var buf bytes.Buffer
	sum.Write(&buf)
	if !strings.Contains(buf.String(), "feed_img_per_s ") || !strings.Contains(buf.String(), "cpu_ms_per_img ") {
		t.Fatalf("summary %q lacks the figures", buf.String())
	}
	limited, err := Feed(context.Background(), FeedOptions{Data: data, Crop: 32, Limit: 3, Draft: true})
	if err != nil || limited.Images != 3 {
		t.Fatalf("limit 3: %d images, %v", limited.Images, err)
	}
	if _, err := Feed(context.Background(), FeedOptions{Data: data}); !errors.Is(err, ErrOptions) {
		t.Fatalf("no crop: err = %v, want ErrOptions", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Feed(ctx, FeedOptions{Data: data, Crop: 32}); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("cancelled: err = %v, want ErrInterrupted", err)
	}
}
