package train_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/student"
	"github.com/deitkd/deitkd/train"
)

// TestRepeatedAug: RepeatedAug n keeps an epoch at the image count's steps (5 images, batch
// 2: 3 steps, where n views per image alone make 8), for a single-view and a multi-view store;
// run.json records it (and views_per_image n); a run interrupted in epoch 2 resumes to the
// uninterrupted run's metrics, a resume without it is refused naming settings.repeated_aug, and
// giving it with views per image is refused.
func TestRepeatedAug(t *testing.T) {
	for _, views := range []int{1, 4} {
		t.Run(map[int]string{1: "fixed teacher", 4: "stored views"}[views], func(t *testing.T) {
			opts := func(out string, repeated, perImage int) train.Options {
				o := options(t, out, student.DistillSoft, 3, 0)
				o.Labels, o.RepeatedAug, o.ViewsPerImage = labels(t, "train", views), repeated, perImage
				return o
			}
			steps := func(o train.Options) (int, *train.Summary) {
				n := 0
				o.Progress = func(p train.Progress) {
					if p.Phase == "train" && p.Epoch == 1 && !p.Final {
						n = p.Batches
					}
				}
				sum, err := runJob(context.Background(), o)
				if err != nil {
					t.Fatal(err)
				}
				return n, sum
			}
			whole := t.TempDir()
			if n, _ := steps(opts(whole, 3, 0)); n != 3 {
				t.Errorf("repeated augmentation 3: %d steps per epoch, want 3 (5 images, batch 2)", n)
			}
			if n, _ := steps(opts(t.TempDir(), 0, 3)); n != 8 {
				t.Errorf("3 views per image: %d steps per epoch, want 8", n)
			}
			st, _ := settingsOf(t, opts(filepath.Join(t.TempDir(), "run"), 3, 0))
			if st["repeated_aug"] != 3.0 || st["views_per_image"] != 3.0 {
				t.Errorf("settings %v, want repeated_aug 3 and views_per_image 3", st)
			}
			if st, _ := settingsOf(t, opts(filepath.Join(t.TempDir(), "run"), 0, 0)); st["repeated_aug"] != nil {
				t.Errorf("off: settings %v record repeated_aug", st)
			}

			cut := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			o := opts(cut, 3, 0)
			o.Progress = func(p train.Progress) {
				if p.Phase == "train" && p.Epoch == 2 && p.Batch == 1 {
					cancel()
				}
			}
			if _, err := runJob(ctx, o); !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted run: %v, want canceled", err)
			}
			o = opts(cut, 0, 0)
			o.Resume = true
			if _, err := runJob(context.Background(), o); !errors.Is(err, train.ErrResume) || !strings.Contains(err.Error(), "settings.repeated_aug") {
				t.Fatalf("resume without repeated augmentation: %v, want ErrResume naming settings.repeated_aug", err)
			}
			o = opts(cut, 3, 0)
			o.Resume = true
			if _, err := runJob(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			if a, b := stripTimes(records(t, whole)), stripTimes(records(t, cut)); !reflect.DeepEqual(a, b) {
				t.Errorf("resumed run with repeated augmentation differs:\n%v\n%v", a, b)
			}
		})
	}
	o := options(t, t.TempDir(), student.DistillHard, 1, 0)
	o.RepeatedAug, o.ViewsPerImage = 3, 2
	if _, err := train.New(context.Background(), o); !errors.Is(err, train.ErrOptions) || !strings.Contains(err.Error(), "give one") {
		t.Errorf("repeated augmentation with views per image: %v, want ErrOptions", err)
	}
}
