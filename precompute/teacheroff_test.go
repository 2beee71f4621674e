package precompute_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/deitkd/deitkd/precompute"
)

// TestTeacherOffIsThePipeline: --teacher-off (Feed) runs the labelling pipeline itself, the
// teacher stage taken out: over the test images (broken files among them) it feeds the images
// a labelling run with the same eval transform labels or fails, fails the same ones, and its
// first failure is word for word the first entry of that run's failure log.
func TestTeacherOffIsThePipeline(t *testing.T) {
	data := t.TempDir() // one class folder, mapped to the teacher's class 0, with two broken files
	for _, f := range []struct{ name, from string }{
		{"a.jpg", "jpeg/baseline420_45x33.jpg"}, {"b.png", ""}, {"c.webp", "other/lossy_46x34.webp"}, {"d.jpg", ""}, {"e.gif", "other/paletted_39x27.gif"},
	} {
		b := []byte("not an image")
		if f.from != "" {
			var err error
			if b, err = os.ReadFile(filepath.Join(testdata, "images", f.from)); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(filepath.Join(data, "a_class"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, "a_class", f.name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum := runJob(t, precompute.Options{Model: model("tiny_regnet.onnx"), Data: data, Out: filepath.Join(t.TempDir(), "labels"),
		ClassMapFile: writeFile(t, "classmap.tsv", "a_class\t0\n"), Views: 1, Batch: 4, Workers: 2})
	fed, err := precompute.Feed(context.Background(), precompute.FeedOptions{Data: data, Resize: 36, Crop: 32, Batch: 4, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if int64(fed.Images) != sum.Done+sum.Failed || int64(fed.Failed) != sum.Failed {
		t.Fatalf("teacher off fed %d images, %d failed; labelling did %d, failed %d", fed.Images, fed.Failed, sum.Done, sum.Failed)
	}
	if sum.Failed != 2 {
		t.Fatalf("%d failures, want the 2 broken files", sum.Failed)
	}
	if fed.FirstErr == nil || fed.FirstErr.Error() != sum.Failures[0].Err {
		t.Fatalf("first failure %v, labelling's %q", fed.FirstErr, sum.Failures[0].Err)
	}
}
