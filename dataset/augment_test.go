package dataset

import (
	"errors"
	"fmt"
	"math"
	"testing"
)

// TestAugmentOpArgs: each op's argument from its magnitude is timm's LEVEL_TO_ARG, values
// printed by Python from timm's formulas (a float32 magnitude such as 8.731 included).
func TestAugmentOpArgs(t *testing.T) {
	m8 := float32(8.731)
	for _, c := range []struct {
		name OpName
		mag  float32
		f    float64
		i    int
	}{
		{"Rotate", 9, 27.0, 0}, {"Rotate", -9, -27.0, 0}, {"Rotate", m8, 26.192999839782715, 0}, {"Rotate", 10, 30, 0},
		{"ShearX", 9, 0.27, 0}, {"ShearY", -m8, -0.2619299983978271, 0},
		{"TranslateXRel", 9, 0.405, 0}, {"TranslateYRel", -m8, -0.39289499759674074, 0},
		{"Color", 9, 1.7200000000000002, 0}, {"Sharpness", 0, 0.1, 0}, {"Contrast", m8, 1.671579990386963, 0},
		{"ColorIncreasing", 9, 1.81, 0}, {"BrightnessIncreasing", -9, 0.18999999999999995, 0},
		{"ContrastIncreasing", -10, 0.1, 0}, {"SharpnessIncreasing", -m8, 0.21421000480651853, 0},
		{"SharpnessIncreasing", 0, 1, 0},
		{"Posterize", 9, 0, 3}, {"PosterizeIncreasing", 9, 0, 1}, {"PosterizeIncreasing", 10, 0, 0}, {"PosterizeIncreasing", 0, 0, 4},
		{"Solarize", 9, 0, 230}, {"SolarizeIncreasing", 9, 0, 26}, {"SolarizeIncreasing", m8, 0, 33}, {"SolarizeIncreasing", 0, 0, 256},
		{"SolarizeAdd", 9, 0, 99}, {"SolarizeAdd", m8, 0, 96}, {"SolarizeAdd", 10, 0, 110},
	} {
		f, i := AugmentOp{c.name, c.mag}.args()
		if f != c.f || i != c.i {
			t.Errorf("%s %v: args %v, %d; timm's %v, %d", c.name, c.mag, f, i, c.f, c.i)
		}
	}
}

// TestAugmentOpApplyMatchesPIL: Apply at a magnitude equals PIL's output at timm's argument for
// that magnitude, for each op name of both lists that the reference has an argument for.
func TestAugmentOpApplyMatchesPIL(t *testing.T) {
	entries := loadAugRef(t)
	var in *Image
	for _, e := range entries {
		if e.Kind == "input" && e.Name == "rgb32" {
			in = e.image()
		}
	}
	find := func(op string, arg float64, resample string) *augRefEntry {
		for _, e := range entries {
			if e.Kind == "op" && e.Input == "rgb32" && e.Name == op && e.Resample == resample &&
				(e.Arg == nil && math.IsNaN(arg) || e.Arg != nil && float32(*e.Arg) == float32(arg)) {
				return e
			}
		}
		t.Fatalf("no reference for %s %v %s", op, arg, resample)
		return nil
	}
	fill := FillFor(ImageNetMean)
	for _, c := range []struct {
		op   AugmentOp
		ref  string
		arg  float64
		filt string
	}{
		{AugmentOp{"AutoContrast", 9}, "AutoContrast", math.NaN(), ""},
		{AugmentOp{"Equalize", 3}, "Equalize", math.NaN(), ""},
		{AugmentOp{"Invert", 0}, "Invert", math.NaN(), ""},
		{AugmentOp{"Rotate", 9}, "Rotate", 27, "bicubic"},
		{AugmentOp{"Rotate", -9}, "Rotate", -27, "bilinear"},
		{AugmentOp{"ShearX", 9}, "ShearX", 0.27, "bicubic"},
		{AugmentOp{"ShearY", -9}, "ShearY", -0.27, "bilinear"},
		{AugmentOp{"TranslateXRel", 9}, "TranslateXRel", 0.405, "bicubic"},
		{AugmentOp{"TranslateYRel", -9}, "TranslateYRel", -0.405, "bicubic"},
		{AugmentOp{"PosterizeIncreasing", 9}, "Posterize", 1, ""},
		{AugmentOp{"PosterizeIncreasing", 10}, "Posterize", 0, ""},
		{AugmentOp{"SolarizeIncreasing", 9}, "Solarize", 26, ""},
		{AugmentOp{"Solarize", 5}, "Solarize", 128, ""},
		{AugmentOp{"SolarizeAdd", 9}, "SolarizeAdd", 99, ""},
		{AugmentOp{"Color", 9}, "Color", 1.72, ""},
		{AugmentOp{"ColorIncreasing", -10}, "Color", 0.1, ""},
		{AugmentOp{"Contrast", 10}, "Contrast", 1.9, ""},
		{AugmentOp{"BrightnessIncreasing", 10}, "Brightness", 1.9, ""},
		{AugmentOp{"Sharpness", 9}, "Sharpness", 1.72, ""},
	} {
		name := fmt.Sprintf("%s/%v/%s", c.op.Name, c.op.Magnitude, c.filt)
		interp := c.filt
		if interp == "" {
			interp = "bilinear"
		}
		got, err := c.op.Apply(in, interp, fill)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := find(c.ref, c.arg, c.filt)
		if c.filt != "" && string(want.Fill) != string(fill) {
			t.Fatalf("reference fill %v, FillFor(ImageNet) %v", want.Fill, fill)
		}
		if string(got.Pix) != string(want.data) {
			t.Errorf("%s differs from PIL's %s(%v)", name, c.ref, c.arg)
		}
	}
}

func TestAugmentOpRefusals(t *testing.T) {
	m := NewImage(4, 4, 3)
	for _, c := range []struct {
		op     AugmentOp
		interp string
		fill   []uint8
	}{
		{AugmentOp{"Rotate", 11}, "bilinear", []uint8{1, 2, 3}},
		{AugmentOp{"Solarize", -3}, "bilinear", []uint8{1, 2, 3}},
		{AugmentOp{"Blur", 3}, "bilinear", []uint8{1, 2, 3}},
		{AugmentOp{"Rotate", 3}, "lanczos", []uint8{1, 2, 3}},
		{AugmentOp{"Rotate", 3}, "bilinear", []uint8{1}},
		{AugmentOp{"Rotate", float32(math.NaN())}, "bilinear", []uint8{1, 2, 3}},
	} {
		if _, err := c.op.Apply(m, c.interp, c.fill); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%+v %s %v: err %v, want ErrBadConfig", c.op, c.interp, c.fill, err)
		}
	}
}

func TestFillFor(t *testing.T) {
	// timm's create_transform: tuple(min(255, round(255 * x)) for x in mean).
	if got := FillFor(ImageNetMean); string(got) != string([]uint8{124, 116, 104}) {
		t.Errorf("ImageNet fill %v, timm's (124, 116, 104)", got)
	}
	if got := FillFor([]float64{0.5, 0.2860, 1.5, -1}); string(got) != string([]uint8{128, 73, 255, 0}) {
		t.Errorf("fill %v", got)
	}
}

func TestParseRandAugment(t *testing.T) {
	for _, c := range []struct {
		spec string
		want RandAugment
	}{
		{"rand-m9-mstd0.5-inc1", RandAugment{Magnitude: 9, Layers: 2, MagnitudeStd: 0.5, Increasing: true, Prob: 0.5}},
		{"rand-m9-mstd0.5", RandAugment{Magnitude: 9, Layers: 2, MagnitudeStd: 0.5, Prob: 0.5}},
		{"rand", RandAugment{Magnitude: 10, Layers: 2, Prob: 0.5}},
		{"rand-n3-m7", RandAugment{Magnitude: 7, Layers: 3, Prob: 0.5}},
		{"rand-m9-mstd101", RandAugment{Magnitude: 9, Layers: 2, MagnitudeStd: math.Inf(1), Prob: 0.5}},
		{"rand-m9-p1", RandAugment{Magnitude: 9, Layers: 2, Prob: 1}},
	} {
		got, err := ParseRandAugment(c.spec)
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.spec, got, err, c.want)
		}
		if again, err := ParseRandAugment(got.String()); err != nil || again != got {
			t.Errorf("%q: String %q parses to %+v, %v", c.spec, got.String(), again, err)
		}
	}
	for _, bad := range []string{"", "augmix-m5", "rand-m", "rand-x9", "rand-m9-m8", "rand-inc0", "rand-m9.5",
		"rand-mmax20", "rand-w0", "rand-n0", "rand-p1.5", "rand-mstd1e400", "rand-m9-", "rand--m9", "Rand-m9"} {
		if _, err := ParseRandAugment(bad); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%q: err %v, want ErrBadConfig", bad, err)
		}
	}
}

// TestRandAugmentDraw: draws are pure functions of (seed, index, view), come from timm's
// increasing list, and have timm's statistics for rand-m9-mstd0.5-inc1: 2 layers at p 0.5
// (one op a view on average), magnitudes N(9, 0.5) clipped at 10, signed ops negated half the
// time.
func TestRandAugmentDraw(t *testing.T) {
	ra, err := ParseRandAugment("rand-m9-mstd0.5-inc1")
	if err != nil {
		t.Fatal(err)
	}
	inc := map[OpName]bool{}
	for _, n := range randIncreasingTransforms {
		inc[n] = true
	}
	var ops, neg, signed int
	var sum, sum2 float64
	names := map[OpName]int{}
	const N = 20000
	for i := range N {
		a, b := ra.Draw(7, i, 3), ra.Draw(7, i, 3)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("image %d: draws differ: %v %v", i, a, b)
		}
		for _, o := range a {
			if !inc[o.Name] {
				t.Fatalf("op %s is not in timm's increasing list", o.Name)
			}
			if err := o.check(); err != nil {
				t.Fatal(err)
			}
			m := math.Abs(float64(o.Magnitude))
			sum += m
			sum2 += m * m
			ops++
			names[o.Name]++
			if o.Name.signed() {
				signed++
				if o.Magnitude < 0 {
					neg++
				}
			}
		}
	}
	mean := sum / float64(ops)
	sd := math.Sqrt(sum2/float64(ops) - mean*mean)
	if r := float64(ops) / N; math.Abs(r-1) > 0.03 {
		t.Errorf("%.3f ops a view, want 1", r)
	}
	if math.Abs(mean-9) > 0.02 || math.Abs(sd-0.5) > 0.03 {
		t.Errorf("magnitude mean %.3f sd %.3f, want 9 and 0.5 (clipping at 10 barely shows)", mean, sd)
	}
	if r := float64(neg) / float64(signed); math.Abs(r-0.5) > 0.02 {
		t.Errorf("%.3f of signed ops negated", r)
	}
	if len(names) != len(randIncreasingTransforms) {
		t.Errorf("%d distinct ops drawn", len(names))
	}
	if fmt.Sprint(ra.Draw(7, 1, 3)) == fmt.Sprint(ra.Draw(7, 1, 4)) && fmt.Sprint(ra.Draw(7, 2, 3)) == fmt.Sprint(ra.Draw(7, 2, 4)) {
		t.Error("views 3 and 4 draw the same ops")
	}
}

func FuzzParseRandAugment(f *testing.F) {
	for _, s := range []string{"rand-m9-mstd0.5-inc1", "rand", "rand-n3-m7-p0.3", "rand-mstd101", "rand-inc0", "rand-m9-m9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		ra, err := ParseRandAugment(spec)
		if err != nil {
			if !errors.Is(err, ErrBadConfig) {
				t.Fatalf("%q: error %v does not wrap ErrBadConfig", spec, err)
			}
			return
		}
		again, err := ParseRandAugment(ra.String())
		if err != nil || again != ra {
			t.Fatalf("%q → %+v → %q → %+v, %v", spec, ra, ra.String(), again, err)
		}
		if ra.Layers < 1 || ra.Magnitude < 0 || !(ra.Prob >= 0 && ra.Prob <= 1) || !(ra.MagnitudeStd >= 0) {
			t.Fatalf("%q: %+v out of range", spec, ra)
		}
		for _, o := range ra.Draw(1, 2, 3) {
			if err := o.check(); err != nil {
				t.Fatalf("%q: drew %v", spec, err)
			}
		}
	})
}

// TestRenderAugmentedMatchesTimmPipeline: a whole train-time view in timm's order —
// torchvision's resized_crop of a RandomResizedCrop box, hflip, RandAugment ops at timm's
// arguments for their magnitudes (fill round(255·mean), the view's interpolation), ToTensor,
// Normalize — equals RenderAugmented bit for bit (an RGB photo, bicubic; Fashion-MNIST, bilinear).
func TestRenderAugmentedMatchesTimmPipeline(t *testing.T) {
	entries := loadAugRef(t)
	inputs := map[string]*Image{}
	n := 0
	for _, e := range entries {
		switch e.Kind {
		case "pipeline_input":
			inputs[e.Name] = e.image()
		case "pipeline":
			n++
			img := inputs[e.Name]
			cfg := Config{Crop: e.Size, Interpolation: e.Interp, Mean: e.Mean, Std: e.Std, Channels: img.Channels}
			v := View{Index: 1, Box: PixelBox(img.Width, img.Height, e.Box[0], e.Box[1], e.Box[2], e.Box[3]), Flip: e.Flip}
			var a Augment
			for _, o := range e.Ops {
				a.Ops = append(a.Ops, AugmentOp{Name: OpName(o[0].(string)), Magnitude: float32(o[1].(float64))})
			}
			got := make([]float32, TensorLen(img.Channels, e.Size))
			if err := RenderAugmented(got, img, v, a, e.Size, cfg); err != nil {
				t.Fatal(err)
			}
			want := f32s(e.data)
			bad := 0
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%s %v: %d of %d values differ from timm's pipeline", e.Name, a.Ops, bad, len(want))
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d pipeline cases in the reference", n)
	}
}
