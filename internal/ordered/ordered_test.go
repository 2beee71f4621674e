package ordered

import (
	"context"
	"errors"
	"math/rand"
	"sync/atomic"
	"testing"
	"time"
)

func produceN(n int) func(context.Context, func(int) error) error {
	return func(_ context.Context, yield func(int) error) error {
		for i := range n {
			if err := yield(i); err != nil {
				return err
			}
		}
		return nil
	}
}

// TestOrderAndWindow: results come back in the order made although workers finish out of
// order, and never more than window items are between yield and emit.
func TestOrderAndWindow(t *testing.T) {
	for _, tc := range []struct {
		name               string
		workers, window, n int
	}{
		{"one worker", 1, 1, 50}, {"many workers, small window", 8, 3, 200}, {"window above n", 4, 500, 100}, {"none", 3, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var inFlight, most atomic.Int32
			var got []int
			err := Run(context.Background(), tc.workers, tc.window, func(_ context.Context, yield func(int) error) error {
				for i := range tc.n {
					if err := yield(i); err != nil {
						return err
					}
					if v := inFlight.Add(1); v > most.Load() {
						most.Store(v)
					}
				}
				return nil
			}, func(_ context.Context, i int) (int, error) {
				time.Sleep(time.Duration(rand.Intn(200)) * time.Microsecond)
				return i * 2, nil
			}, func(_ context.Context, v int) error {
				inFlight.Add(-1)
				got = append(got, v)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.n {
				t.Fatalf("%d results, want %d", len(got), tc.n)
			}
			for i, v := range got {
				if v != 2*i {
					t.Fatalf("result %d is %d: out of order", i, v)
				}
			}
			if m := int(most.Load()); m > tc.window {
				t.Fatalf("%d items in flight, window %d", m, tc.window)
			}
		})
	}
}

// TestErrors: a worker's or emit's error is what Run returns (not the cancellation it caused),
// and the end of ctx stops a run that would otherwise block forever.
func TestErrors(t *testing.T) {
	bad := errors.New("bad item")
	err := Run(context.Background(), 4, 4, produceN(1000), func(_ context.Context, i int) (int, error) {
		if i == 37 {
			return 0, bad
		}
		return i, nil
	}, func(context.Context, int) error { return nil })
	if !errors.Is(err, bad) {
		t.Fatalf("worker error: got %v", err)
	}
	stop := errors.New("emit stops")
	var emitted int
	err = Run(context.Background(), 4, 4, produceN(1000), func(_ context.Context, i int) (int, error) { return i, nil },
		func(_ context.Context, i int) error {
			emitted++
			if i == 10 {
				return stop
			}
			return nil
		})
	if !errors.Is(err, stop) || emitted != 11 {
		t.Fatalf("emit error: got %v after %d", err, emitted)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = Run(ctx, 2, 2, func(_ context.Context, yield func(int) error) error {
		for i := 0; ; i++ {
			if err := yield(i); err != nil {
				return err
			}
		}
	}, func(ctx context.Context, i int) (int, error) { return i, nil },
		func(context.Context, int) error { time.Sleep(time.Millisecond); return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled: got %v", err)
	}
}
