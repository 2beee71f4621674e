package store

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/schema"
)

// testMeta returns metadata for a small synthetic store.
func testMeta(mode schema.Mode, dtype schema.DType, classes, k, views int, images int64) schema.Metadata {
	names := make([]string, classes)
	for i := range names {
		names[i] = fmt.Sprintf("class %d", i)
	}
	md := schema.Metadata{
		SchemaVersion: schema.VersionPlain,
		Teacher:       schema.Teacher{File: "teacher.onnx", SHA256: strings.Repeat("0f", 32), InputName: "input", InputShape: []int64{-1, 3, 224, 224}, OutputName: "logits"},
		NumClasses:    classes,
		ClassNames:    names,
		Preprocess:    dataset.Config{Resize: 256, Crop: 224, Interpolation: "bilinear", Mean: []float64{0.485, 0.456, 0.406}, Std: []float64{0.229, 0.224, 0.225}, Channels: 3},
		Views:         schema.Views{Count: views, Seed: 1, Scale: [2]float64{0.08, 1}, Ratio: [2]float64{0.75, 4.0 / 3}, FlipP: 0.5},
		Store:         schema.StoreConfig{Mode: mode, DType: dtype},
		Dataset:       schema.Dataset{Name: "synthetic", ImageCount: images, IDHash: strings.Repeat("a1", 32)},
		CreatedBy:     "deitkd store tests",
	}
	if mode == schema.ModeTopK {
		md.Store.K = k
	}
	return md
}

// synthRows returns the rows of one image, deterministic in (seed, index):
// a teacher that is usually right, peaked on the true class, with a few
// look-alike neighbours (classes near the label) and gaussian noise, plus
// the crop boxes and flips of random-resized crops on a 500×375 image
// expressed as fractions of whole pixels, as package dataset makes them.
// Every 7th image has no label.
func synthRows(seed uint64, index int64, classes, views int) []Row {
	rng := rand.New(rand.NewPCG(seed, uint64(index)))
	label := int32(rng.IntN(classes))
	wnid := fmt.Sprintf("n%08d", 1440764+int(label)*1000)
	id := fmt.Sprintf("train/%s/%s_%d.JPEG", wnid, wnid, 10000+index)
	base := make([]float32, classes)
	for c := range base {
		base[c] = float32(rng.NormFloat64() * 1.5)
	}
	peak := label
	if rng.Float64() < 0.2 { // the teacher is wrong on a fifth of the images
		peak = int32(rng.IntN(classes))
	}
	base[peak] += 12
	for j := 1; j <= 4; j++ { // look-alikes
		base[(int(peak)+j*7)%classes] += float32(8 - j)
	}
	rows := make([]Row, views)
	const w, h = 500, 375
	for v := range rows {
		logits := make([]float32, classes)
		for c := range logits {
			logits[c] = base[c] + float32(rng.NormFloat64()*0.7)
		}
		crop := [4]float32{0, 0, 1, 1}
		if v == 0 {
			crop = [4]float32{float32(16) / h, float32(78) / w, float32(343) / h, float32(343) / w}
		} else {
			ch, cw := 40+rng.IntN(h-40), 40+rng.IntN(w-40)
			crop = [4]float32{float32(rng.IntN(h-ch+1)) / h, float32(rng.IntN(w-cw+1)) / w, float32(ch) / h, float32(cw) / w}
		}
		lab := label
		if index%7 == 3 {
			lab = NoLabel
		}
		rows[v] = Row{ImageIndex: index, ImageID: id, Label: lab, View: int32(v), Crop: crop, Flip: v > 0 && rng.IntN(2) == 1, Logits: logits}
	}
	return rows
}

// writeStore writes images [0, n) (those the writer owns) and closes.
func writeStore(dir string, md schema.Metadata, opts Options, seed uint64) error {
	return writeUpTo(dir, md, opts, seed, md.Dataset.ImageCount)
}

// writeUpTo writes the images before end that the writer owns and has not
// stored yet, and closes: a session that stops early, or its resumption.
func writeUpTo(dir string, md schema.Metadata, opts Options, seed uint64, end int64) error {
	w, err := OpenWriter(dir, md, opts)
	if err != nil {
		return err
	}
	for i := int64(0); i < end; i++ {
		if !w.Owns(i) || w.Done().Contains(i) {
			continue
		}
		for _, r := range synthRows(seed, i, md.NumClasses, md.Views.Count) {
			if err := w.Write(r); err != nil {
				w.Abort()
				return err
			}
		}
	}
	return w.Close()
}
