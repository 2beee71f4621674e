package dataset

import (
	"encoding/binary"
	"math"
	"testing"
)

func f32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// TestMixApplyMatchesTorch: Mixup's and CutMix's pixel math equals timm's Mixup on torch
// tensors (x·λ + partner·(1−λ) in float32; the partner's box pasted) bit for bit.
func TestMixApplyMatchesTorch(t *testing.T) {
	var x []float32
	var cases []*augRefEntry
	var shape []int
	for _, e := range loadAugRef(t) {
		switch e.Kind {
		case "mix_input":
			x, shape = f32s(e.data), e.Shape
		case "mix":
			cases = append(cases, e)
		}
	}
	if len(cases) != 3 || len(shape) != 4 {
		t.Fatalf("%d mix cases, input shape %v", len(cases), shape)
	}
	C, H, W := shape[1], shape[2], shape[3]
	n := C * H * W
	for _, e := range cases {
		// The reference's tensors are 6×5; Apply takes square views, so pad each channel into a
		// 6×6 tensor and compare the 6×5 part (the box never reaches column 5).
		S := H
		pad := func(v []float32) []float32 {
			out := make([]float32, C*S*S)
			for c := range C {
				for y := range H {
					copy(out[c*S*S+y*S:c*S*S+y*S+W], v[c*H*W+y*W:c*H*W+(y+1)*W])
				}
			}
			return out
		}
		own, partner := pad(x[:n]), pad(x[n:2*n])
		m := Mix{Lambda: float32(e.Lam)}
		if e.Name == "cutmix" {
			yl, yh, xl, xh := e.Box[0], e.Box[1], e.Box[2], e.Box[3]
			m = Mix{Lambda: float32(1 - float64((yh-yl)*(xh-xl))/float64(S*S)), CutMix: true, Box: PixelBox(S, S, yl, xl, yh-yl, xh-xl)}
		}
		m.Apply(own, partner, C, S)
		want := pad(f32s(e.data))
		for i := range want {
			if math.Float32bits(own[i]) != math.Float32bits(want[i]) && i%S < W {
				t.Fatalf("%s λ %v: value %d is %v, torch's %v", e.Name, e.Lam, i, own[i], want[i])
			}
		}
	}
}

// TestMixDraw: timm's Mixup parameters: λ ~ Beta(α, α) (mean ½, variance 1/(4(2α+1))),
// CutMix chosen with the switch probability, its λ exactly 1 − the box's area, the box inside
// the view; a pure function of (seed, index, view).
func TestMixDraw(t *testing.T) {
	mc := MixConfig{MixupAlpha: 0.8, CutMixAlpha: 1.0, Prob: 1, SwitchProb: 0.5}
	const N, S = 20000, 32
	var cut, mixed int
	var sum, sum2 float64
	for i := range N {
		m, ok := mc.Draw(5, i, 1, S)
		if m2, ok2 := mc.Draw(5, i, 1, S); m2 != m || ok2 != ok {
			t.Fatal("draws differ")
		}
		if !ok {
			continue
		}
		mixed++
		if m.CutMix {
			cut++
			top, left, h, w := pixelRect(m.Box, S, S)
			if top < 0 || left < 0 || top+h > S || left+w > S {
				t.Fatalf("box %+v outside the view", m.Box)
			}
			if want := float32(1 - float64(h*w)/float64(S*S)); m.Lambda != want {
				t.Fatalf("cutmix λ %v, box area gives %v", m.Lambda, want)
			}
			continue
		}
		l := float64(m.Lambda)
		if !(l > 0 && l < 1) {
			t.Fatalf("mixup λ %v", l)
		}
		sum += l
		sum2 += l * l
	}
	nm := float64(mixed - cut)
	mean, v := sum/nm, sum2/nm-(sum/nm)*(sum/nm)
	if math.Abs(mean-0.5) > 0.01 || math.Abs(v-1/(4*(2*0.8+1))) > 0.005 {
		t.Errorf("mixup λ mean %.4f variance %.4f, Beta(0.8, 0.8) has 0.5 and %.4f", mean, v, 1/(4*(2*0.8+1)))
	}
	if r := float64(cut) / float64(mixed); math.Abs(r-0.5) > 0.02 {
		t.Errorf("cutmix share %.3f, want 0.5", r)
	}
	if mixed < N*97/100 {
		t.Errorf("only %d of %d views mixed at prob 1", mixed, N)
	}
	half := MixConfig{MixupAlpha: 0.8, Prob: 0.5}
	n := 0
	for i := range N {
		if m, ok := half.Draw(5, i, 1, S); ok {
			n++
			if m.CutMix {
				t.Fatal("cutmix drawn with cutmix alpha 0")
			}
		}
	}
	if r := float64(n) / N; math.Abs(r-0.5) > 0.02 {
		t.Errorf("mixed share %.3f at prob 0.5", r)
	}
	if _, ok := (MixConfig{Prob: 1}).Draw(5, 1, 1, S); ok {
		t.Error("mixed with both alphas 0")
	}
	for _, bad := range []MixConfig{{MixupAlpha: -1}, {Prob: 1.5}, {SwitchProb: math.NaN()}, {CutMixAlpha: math.Inf(1)}} {
		if bad.Check() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestErase: timm's RandomErasing box statistics (area 2%–⅓ of the view up to rounding, aspect
// 0.3–3.3, applied with probability p), noise N(0, 1) only inside the box, the same for the
// same parameters.
func TestErase(t *testing.T) {
	const N, S, C = 4000, 32, 3
	var on int
	var sum, sum2, cnt float64
	for i := range N {
		e := DrawErase(0.25, 9, i, 2, S)
		if e != DrawErase(0.25, 9, i, 2, S) {
			t.Fatal("draws differ")
		}
		if e.Box == (Box{}) {
			continue
		}
		on++
		top, left, h, w := pixelRect(e.Box, S, S)
		if a := float64(h*w) / (S * S); a < 0.01 || a > 0.37 || h >= S || w >= S {
			t.Fatalf("box %dx%d (area %.3f)", h, w, a)
		}
		dst := make([]float32, C*S*S)
		for j := range dst {
			dst[j] = 7
		}
		e.Apply(dst, C, S)
		again := make([]float32, C*S*S)
		e.Apply(again, C, S)
		for j, v := range dst {
			c, y, x := j/(S*S), j/S%S, j%S
			_ = c
			inside := y >= top && y < top+h && x >= left && x < left+w
			if !inside && v != 7 {
				t.Fatalf("value outside the box changed")
			}
			if inside {
				if v != again[j] {
					t.Fatal("noise differs for the same parameters")
				}
				sum += float64(v)
				sum2 += float64(v) * float64(v)
				cnt++
			}
		}
	}
	if r := float64(on) / N; math.Abs(r-0.25) > 0.025 {
		t.Errorf("erased share %.3f, want 0.25", r)
	}
	if m, v := sum/cnt, sum2/cnt-(sum/cnt)*(sum/cnt); math.Abs(m) > 0.01 || math.Abs(v-1) > 0.01 {
		t.Errorf("noise mean %.4f variance %.4f", m, v)
	}
	if DrawErase(0, 9, 1, 2, S) != (Erase{}) {
		t.Error("erased at probability 0")
	}
}

// TestRenderAugmented: the zero Augment is Render bit for bit; Invert after the flip is the
// flipped view with each 8-bit value v rendered as 255 − v; an Erase changes only its box.
func TestRenderAugmented(t *testing.T) {
	img := NewImage(40, 30, 3)
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7 % 251)
	}
	cfg := Config{Crop: 16, Channels: 3}
	v := View{Index: 1, Box: PixelBox(40, 30, 3, 5, 20, 24), Flip: true}
	const S = 16
	n := TensorLen(3, S)
	plain, zero := make([]float32, n), make([]float32, n)
	if err := Render(plain, img, v, S, cfg); err != nil {
		t.Fatal(err)
	}
	if err := RenderAugmented(zero, img, v, Augment{}, S, cfg); err != nil {
		t.Fatal(err)
	}
	for i := range plain {
		if math.Float32bits(plain[i]) != math.Float32bits(zero[i]) {
			t.Fatal("zero Augment differs from Render")
		}
	}
	inv := make([]float32, n)
	if err := RenderAugmented(inv, img, v, Augment{Ops: []AugmentOp{{"Invert", 0}}}, S, cfg); err != nil {
		t.Fatal(err)
	}
	full, _ := cfg.Defaults()
	lut := makeLUT(full)
	for i := range plain {
		c := i / (S * S)
		u := -1
		for k := range 256 {
			if lut[c][k] == plain[i] {
				u = k
				break
			}
		}
		if u < 0 || inv[i] != lut[c][255-u] {
			t.Fatalf("value %d: inverted %v, want the value of 255-%d", i, inv[i], u)
		}
	}
	er := make([]float32, n)
	e := Erase{Box: PixelBox(S, S, 2, 3, 5, 4), Seed: 11}
	if err := RenderAugmented(er, img, v, Augment{Erase: e}, S, cfg); err != nil {
		t.Fatal(err)
	}
	changed := 0
	for i := range er {
		if er[i] != plain[i] {
			changed++
		}
	}
	if changed == 0 || changed > 3*5*4 {
		t.Errorf("%d values erased, want ≤ 60", changed)
	}
}

func TestDrawPartner(t *testing.T) {
	seen := map[int]bool{}
	views := map[int]bool{}
	for v := 1; v < 200; v++ {
		p, pv := DrawPartner(7, 3, v, 5, 4)
		if p2, pv2 := DrawPartner(7, 3, v, 5, 4); p2 != p || pv2 != pv {
			t.Fatalf("view %d: partner (%d, %d) then (%d, %d): not a pure function", v, p, pv, p2, pv2)
		}
		if p == 3 || p < 0 || p >= 5 || pv < 1 || pv >= 4 {
			t.Fatalf("view %d: partner (%d, %d), want another of 0..4 and a view of 1..3", v, p, pv)
		}
		seen[p], views[pv] = true, true
	}
	if len(seen) != 4 || len(views) != 3 {
		t.Errorf("partners %v, views %v: want every other image and every random view drawn", seen, views)
	}
	if p, _ := DrawPartner(7, 0, 1, 1, 2); p != 0 {
		t.Errorf("the only image's partner is %d, want itself", p)
	}
}
