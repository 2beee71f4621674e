package dataset_test

import (
	"fmt"
	"log"

	"github.com/deitkd/deitkd/dataset"
)

// A pipeline's use: open a source, and for each image load it, compute its views and render
// each into its slot of a batch.
func Example() {
	src, err := dataset.Open("../testdata/images")
	if err != nil {
		log.Fatal(err)
	}
	cfg := dataset.Config{Resize: 36, Crop: 32} // bilinear, ImageNet mean/std, RGB
	vc := dataset.ViewConfig{Seed: 1}
	const views = 3
	n := dataset.TensorLen(3, cfg.Crop)
	batch := make([]float32, views*n)

	fmt.Println(src.Len(), "images, classes", src.ClassNames())
	for i := range 2 {
		item := src.Item(i)
		img, err := src.Load(i, 3)
		if err != nil {
			log.Fatal(err)
		}
		for v := range views {
			view, err := dataset.ViewFor(img.Width, img.Height, i, v, cfg, vc)
			if err != nil {
				log.Fatal(err)
			}
			if err := dataset.Render(batch[v*n:(v+1)*n], img, view, cfg.Crop, cfg); err != nil {
				log.Fatal(err)
			}
			b := view.Box
			fmt.Printf("%s label %d view %d: box (%.3f %.3f %.3f %.3f) flip %v\n",
				item.ID, item.Label, v, b.Top, b.Left, b.Height, b.Width, view.Flip)
		}
	}
	// Output:
	// 21 images, classes [jpeg other png]
	// jpeg/baseline420_45x33.jpg label 0 view 0: box (0.056 0.163 0.889 0.653) flip false
	// jpeg/baseline420_45x33.jpg label 0 view 1: box (0.030 0.200 0.970 0.667) flip false
	// jpeg/baseline420_45x33.jpg label 0 view 2: box (0.000 0.489 0.303 0.289) flip true
	// jpeg/baseline422_41x29.jpg label 0 view 0: box (0.056 0.180 0.889 0.640) flip false
	// jpeg/baseline422_41x29.jpg label 0 view 1: box (0.172 0.146 0.655 0.390) flip true
	// jpeg/baseline422_41x29.jpg label 0 view 2: box (0.034 0.220 0.690 0.390) flip false
}
