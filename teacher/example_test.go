package teacher_test

import (
	"fmt"
	"log"

	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/teacher"
)

// Open a teacher, read what it expects, and run it on one image.
func Example() {
	m, err := teacher.Open("../testdata/models/tiny_regnet.onnx", teacher.Options{Threads: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	info := m.Info()
	fmt.Println("input:", info.Input, "output:", info.Output, "K:", info.NumClasses, "on", info.Provider)

	pre, classes, ok, err := schema.ModelMetadata(info.Metadata) // the deitkd keys it carries
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("preprocess given:", ok, pre.Resize, pre.Crop, pre.Interpolation, "classes:", classes)

	image := make([]float32, info.ImageSize()) // one preprocessed image, C×H×W
	logits, err := m.Run(image, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(logits), "logits")
	// Output:
	// input: "input" float32 [? 3 32 32] output: "logits" float32 [? 5] K: 5 on cpu
	// preprocess given: true 36 32 bilinear classes: [a_class b_class c_class d_class e_class]
	// 5 logits
}
