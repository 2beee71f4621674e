package dataset

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

// TestFeed: batches come in index order, each image's slot is exactly its Render of view 0,
// and images that fail are reported in place with zero pixels.
func TestFeed(t *testing.T) {
	src, err := Open(filepath.Join("..", "testdata", "images"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := Config{Resize: 40, Crop: 32}.Defaults()
	per := TensorLen(3, 32)
	for _, opts := range []FeedOptions{{Workers: 1, Batch: 64}, {Workers: 3, Batch: 4, Ahead: 1}, {Workers: 2, Batch: 5, Limit: 7}} {
		var got []Item
		next := 0
		st, err := Feed(context.Background(), src, cfg, opts, func(b FeedBatch) error {
			if b.Index != next {
				t.Fatalf("batch %d, want %d", b.Index, next)
			}
			next++
			for k, it := range b.Items {
				want := make([]float32, per)
				if werr := feedOne(want, src, it.Index, cfg, new([]uint8)); (werr != nil) != (b.Errs[k] != nil) {
					t.Fatalf("%s: error %v, alone %v", it.ID, b.Errs[k], werr)
				}
				if !slices.Equal(b.Pix[k*per:(k+1)*per], want) {
					t.Fatalf("%s: pixels differ from rendering it alone", it.ID)
				}
			}
			got = append(got, b.Items...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		n := src.Len()
		if opts.Limit > 0 {
			n = opts.Limit
		}
		if st.Images != n || len(got) != n {
			t.Fatalf("%+v: fed %d (%d items), want %d", opts, st.Images, len(got), n)
		}
		for i, it := range got {
			if it.Index != i {
				t.Fatalf("item %d has index %d", i, it.Index)
			}
		}
	}
}

// TestFeedStops: an error from the callback ends the feed and is returned; so does a
// cancelled context.
func TestFeedStops(t *testing.T) {
	src, err := Open(filepath.Join("..", "testdata", "images"))
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	_, err = Feed(context.Background(), src, Config{Crop: 16}, FeedOptions{Batch: 2, Workers: 2}, func(FeedBatch) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v, want the callback's", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Feed(ctx, src, Config{Crop: 16}, FeedOptions{Batch: 2, Workers: 2}, func(FeedBatch) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
