package export_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/deitkd/deitkd/export"
	"github.com/deitkd/deitkd/student"
)

// A student written as safetensors carries timm's DeiT keys and shapes; read back, it is the
// same model.
func Example() {
	m, err := student.New(student.Config{}, 1) // fm-tiny
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	if err := export.Safetensors(&buf, m, export.Options{Fuse: student.FuseLogits}); err != nil {
		log.Fatal(err)
	}
	f, err := export.ReadSafetensors(buf.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range f.Tensors[:4] {
		fmt.Println(t.Name, t.Shape)
	}
	fmt.Println(len(f.Tensors), "tensors; fuse:", f.Metadata[export.MetaFuse])
	// Output:
	// cls_token [1 1 64]
	// dist_token [1 1 64]
	// pos_embed [1 51 64]
	// patch_embed.proj.weight [64 1 4 4]
	// 59 tensors; fuse: logits
}
