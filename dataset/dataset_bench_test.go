package dataset

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"testing"
	"time"
)

// benchJPEG is an ImageNet-like 500×375 JPEG (quality 90, 4:2:0): smooth gradients, a disc and
// a bar for edges, and some grain so it does not compress to nothing.
func benchJPEG(b *testing.B) []byte { return benchJPEGT(b) }

func benchJPEGT(b testing.TB) []byte {
	b.Helper()
	const w, h = 500, 375
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	seed := uint32(1)
	for y := range h {
		for x := range w {
			seed = seed*1664525 + 1013904223
			n := float64(seed>>24)/32 - 4
			r := 128 + 100*math.Sin(float64(x)/w*math.Pi*1.7) + n
			g := 128 + 100*math.Cos(float64(y)/h*math.Pi*1.3) + n
			bl := 128 + 90*math.Sin(float64(x+y)/(w+h)*math.Pi*2.3) + n
			if dx, dy := float64(x-260), float64(y-170); dx*dx+dy*dy < 90*90 {
				r, g, bl = 220, 60+n, 40
			}
			if x > 90 && x < 120 {
				r, g, bl = 30, 40+n, 200
			}
			m.Set(x, y, color.RGBA{u8(r), u8(g), u8(bl), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func u8(v float64) uint8 { return uint8(max(0, min(255, math.Round(v)))) }

// BenchmarkDecodePreprocess: one core's decode + Resize(256) + CenterCrop(224) + normalise of a
// 500×375 JPEG, and its two halves, in img/s.
func BenchmarkDecodePreprocess(b *testing.B) {
	data := benchJPEG(b)
	cfg := Config{Resize: 256, Crop: 224}
	dst := make([]float32, TensorLen(3, 224))
	img, err := Decode(data, 3)
	if err != nil {
		b.Fatal(err)
	}
	view, err := ViewFor(img.Width, img.Height, 0, 0, cfg, ViewConfig{})
	if err != nil {
		b.Fatal(err)
	}
	// img/s is wall time; cpu-ms/img is this process's CPU time per image, which a busy shared
	// machine disturbs far less.
	var cpu0 time.Duration
	start := func(b *testing.B) { cpu0 = processCPU() }
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "img/s")
		if cpu := processCPU() - cpu0; cpu > 0 {
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/img")
		}
	}
	b.Run("decode+render", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		start(b)
		for b.Loop() {
			m, err := Decode(data, 3)
			if err != nil {
				b.Fatal(err)
			}
			if err := Render(dst, m, view, 224, cfg); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		start(b)
		for b.Loop() {
			if _, err := Decode(data, 3); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	// The standard library's decoder alone (Go's IDCT, no colour conversion): the reference
	// for what libjpeg's IDCT and colour conversion cost on top.
	b.Run("stdlib-jpeg-decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		start(b)
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("render", func(b *testing.B) {
		start(b)
		for b.Loop() {
			if err := Render(dst, img, view, 224, cfg); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("random-view", func(b *testing.B) {
		i := 0
		start(b)
		for b.Loop() {
			i++
			v, err := RandomView(img.Width, img.Height, i, 1, ViewConfig{})
			if err != nil {
				b.Fatal(err)
			}
			if err := Render(dst, img, v, 224, cfg); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
}

// BenchmarkOpenFashionMNIST: reading the 60,000 Fashion-MNIST training images (gzip) into
// memory, when installed.
func BenchmarkOpenFashionMNIST(b *testing.B) {
	const prefix = "/usr/share/datasets/fashion-mnist/train"
	if _, err := os.Stat(prefix + "-images-idx3-ubyte.gz"); err != nil {
		b.Skip("Fashion-MNIST not installed")
	}
	for b.Loop() {
		src, err := Open("idx:" + prefix)
		if err != nil {
			b.Fatal(err)
		}
		if src.Len() != 60000 {
			b.Fatalf("Len %d", src.Len())
		}
	}
}

// BenchmarkIDXRender: load + render of a 28×28 IDX image into a 28×28 view (the identity
// path), in img/s.
func BenchmarkIDXRender(b *testing.B) {
	src, err := Open("idx:../testdata/idx/train")
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Crop: 28, Channels: 1}
	dst := make([]float32, TensorLen(1, 28))
	i := 0
	for b.Loop() {
		i = (i + 1) % src.Len()
		m, err := src.Load(i, 1)
		if err != nil {
			b.Fatal(err)
		}
		v, err := ViewFor(m.Width, m.Height, i, 0, cfg, ViewConfig{})
		if err != nil {
			b.Fatal(err)
		}
		if err := Render(dst, m, v, 28, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "img/s")
}

// BenchmarkFeedFolder: Feed over the class-folder tree in $DEITKD_FEED_DIR (scripts/bench_feed.sh
// makes one) — listing, reading, decoding, Resize(256)+CenterCrop(224)+normalise, batches of 64
// on GOMAXPROCS workers — in img/s and CPU ms per image; $DEITKD_FEED_DRAFT=1 sets Config.Draft.
// Each iteration feeds the whole tree once (-benchtime 1x for one pass).
func BenchmarkFeedFolder(b *testing.B) {
	dir := os.Getenv("DEITKD_FEED_DIR")
	if dir == "" {
		b.Skip("DEITKD_FEED_DIR not set")
	}
	cfg := Config{Resize: 256, Crop: 224, Draft: os.Getenv("DEITKD_FEED_DRAFT") == "1"}
	var images, failed int
	cpu0 := processCPU()
	for b.Loop() {
		src, err := Open(dir) // listing is part of the pipeline
		if err != nil {
			b.Fatal(err)
		}
		st, err := Feed(b.Context(), src, cfg, FeedOptions{Batch: 64}, func(FeedBatch) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		images += st.Images
		failed += st.Failed
	}
	if failed > 0 {
		b.Fatalf("%d of %d images failed", failed, images)
	}
	b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "img/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/1000/float64(images), "cpu-ms/img")
}

// BenchmarkRenderAugmented: a 224×224 RGB random view with two RandAugment ops (a rotation
// and a colour op, bicubic) and an erased box, against the same view plain.
func BenchmarkRenderAugmented(b *testing.B) {
	img := NewImage(500, 375, 3)
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 31 % 253)
	}
	cfg := Config{Crop: 224, Interpolation: "bicubic"}
	v := View{Index: 1, Box: PixelBox(500, 375, 20, 30, 300, 400), Flip: true}
	dst := make([]float32, TensorLen(3, 224))
	for _, c := range []struct {
		name string
		a    Augment
	}{
		{"plain", Augment{}},
		{"rotate+color+erase", Augment{Ops: []AugmentOp{{"Rotate", 9}, {"ColorIncreasing", -9}}, Erase: Erase{Box: PixelBox(224, 224, 10, 10, 80, 60), Seed: 1}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(dst) * 4))
			for range b.N {
				if err := RenderAugmented(dst, img, v, c.a, 224, cfg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "img/s")
		})
	}
}
