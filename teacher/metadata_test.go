package teacher

import (
	"reflect"
	"testing"

	"github.com/deitkd/deitkd/schema"
)

// TestMetadataFromModel: Info.Metadata holds a model's metadata_props as written, so that
// schema.ModelMetadata reads what make_test_models.py embeds; a model without deitkd metadata
// has nothing to report.
func TestMetadataFromModel(t *testing.T) {
	p, names, ok, err := schema.ModelMetadata(open(t, "tiny_regnet.onnx", Options{}).Info().Metadata)
	if err != nil || !ok {
		t.Fatalf("ok %v, err %v", ok, err)
	}
	want := []string{"a_class", "b_class", "c_class", "d_class", "e_class"}
	if p.Resize != 36 || p.Crop != 32 || p.Interpolation != "bilinear" || p.Channels != 3 || !reflect.DeepEqual(names, want) {
		t.Errorf("preprocess %+v, class names %q", p, names)
	}
	md := open(t, "tiny_gray.onnx", Options{}).Info().Metadata
	if _, names, ok, err := schema.ModelMetadata(md); err != nil || ok || names != nil {
		t.Errorf("model without metadata: %q %v %v", names, ok, err)
	}
}
