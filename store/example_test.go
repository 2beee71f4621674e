package store_test

import (
	"context"
	"fmt"
	"os"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
)

// The precompute side writes rows with raw logits; the trainer side looks
// targets up by (image_id, view) and asks for probabilities at its τ.
func Example() {
	dir, _ := os.MkdirTemp("", "labels")
	defer os.RemoveAll(dir)
	// dataset.IDHash of the two ids: printf 'a.png\nb.png\n' | sha256sum
	const idHash = "06c1456d50bf5df64266930fe5cb927e986068972c7704ab3b0d4d8a5b86f696"
	md := schema.Metadata{
		SchemaVersion: schema.VersionPlain,
		Teacher:       schema.Teacher{File: "teacher.onnx", SHA256: "…", InputName: "input", InputShape: []int64{-1, 1, 28, 28}, OutputName: "logits"},
		NumClasses:    4,
		Preprocess:    dataset.Config{Resize: 28, Crop: 28, Interpolation: "bilinear", Mean: []float64{0.5}, Std: []float64{0.5}, Channels: 1},
		Views:         schema.Views{Count: 1},
		Store:         schema.StoreConfig{Mode: schema.ModeTopK, K: 2, DType: schema.Float32},
		Dataset:       schema.Dataset{Name: "example", ImageCount: 2, IDHash: idHash},
		CreatedBy:     "example",
	}
	w, err := store.OpenWriter(dir, md, store.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, id := range []string{"a.png", "b.png"} {
		if w.Done().Contains(int64(i)) { // resume: skip what a killed run finished
			continue
		}
		logits := []float32{0, 3, 1, 0}
		if i == 1 {
			logits = []float32{2, 0, 0, 0}
		}
		w.Write(store.Row{ImageIndex: int64(i), ImageID: id, Label: 1, View: 0, Crop: [4]float32{0, 0, 1, 1}, Logits: logits})
	}
	if err := w.Close(); err != nil {
		fmt.Println(err)
		return
	}

	r, err := store.OpenReader(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	targets, err := r.LoadTargets(context.Background(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	t, _ := targets.Lookup("a.png", 0)
	fmt.Println("hard:", t.Hard, "top-2:", t.Index, t.Logits)
	fmt.Printf("τ=1: %.3f\n", store.Dense(t, 1, nil))
	fmt.Printf("τ=4: %.3f\n", store.Dense(t, 4, nil)) // exact here: the unstored logits are equal
	// Output:
	// hard: 1 top-2: [1 2] [3 1]
	// τ=1: [0.040 0.810 0.110 0.040]
	// τ=4: [0.185 0.392 0.238 0.185]
}
