// Package ordered is deitkd's one ordered worker pool: items made in order by one producer,
// worked on by several goroutines at once, and handed on in the order they were made, by one
// goroutine, with a bounded number in between. Precompute's labelling pipeline (chunks of
// images decoded and rendered, packed in order into teacher batches), dataset.Feed (images
// rendered into their batch's buffer) and traindata (training and eval batches rendered
// ahead of the step) all run on it.
//
// It follows the house pipeline rules: an errgroup whose first error cancels the others,
// every channel send in a select with the context's end, producers closing their channels,
// back-pressure from a bounded window. It imports only the standard library and errgroup.
package ordered

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Run calls produce, which hands items in order to yield; workers goroutines call work on
// each; emit receives every result in the order its item was yielded, on one goroutine. Each
// is given the run's context, which ends when any of them fails: a stage that waits on
// something else (a free buffer, the next stage) selects on it. At
// most window items are between yield and the return of their emit: yield blocks until one
// is emitted, so memory is bounded and a slow emit holds back the workers and the producer.
//
// An error from produce, work or emit, or the end of ctx, stops everything; Run returns the
// first such error — the worker's or emit's own error rather than the cancellation it caused
// in the others — after every goroutine has returned. yield returns an error (which produce
// should return) once the run is stopping. workers and window below 1 count as 1.
func Run[In, Out any](ctx context.Context, workers, window int,
	produce func(ctx context.Context, yield func(In) error) error,
	work func(ctx context.Context, in In) (Out, error),
	emit func(ctx context.Context, out Out) error) error {
	workers, window = max(workers, 1), max(window, 1)
	type job struct {
		seq int
		in  In
	}
	type result struct {
		seq int
		out Out
	}
	g, gctx := errgroup.WithContext(ctx)
	tokens := make(chan struct{}, window) // one per item between yield and emit
	jobs := make(chan job, workers)
	done := make(chan result, window)
	g.Go(func() error {
		defer close(jobs)
		seq := 0
		return produce(gctx, func(in In) error {
			select {
			case tokens <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			select {
			case jobs <- job{seq, in}:
			case <-gctx.Done():
				return gctx.Err()
			}
			seq++
			return nil
		})
	})
	var running sync.WaitGroup
	running.Add(workers)
	g.Go(func() error { running.Wait(); close(done); return nil })
	for range workers {
		g.Go(func() error {
			defer running.Done()
			for j := range jobs {
				out, err := work(gctx, j.in)
				if err != nil {
					return err
				}
				select {
				case done <- result{j.seq, out}:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		pending := map[int]Out{}
		next := 0
		for {
			var r result
			var ok bool
			select {
			case r, ok = <-done:
			case <-gctx.Done():
				return gctx.Err()
			}
			if !ok {
				break
			}
			pending[r.seq] = r.out
			for {
				out, ready := pending[next]
				if !ready {
					break
				}
				delete(pending, next)
				next++
				if err := gctx.Err(); err != nil {
					return err // stopping: emit nothing more
				}
				if err := emit(gctx, out); err != nil {
					return err
				}
				<-tokens
			}
		}
		if len(pending) != 0 {
			return fmt.Errorf("ordered: internal error: %d results left out of order at %d", len(pending), next)
		}
		return nil
	})
	// errgroup keeps the first error returned: the failing goroutine's own, since the others
	// return the cancellation only after it.
	return g.Wait()
}
