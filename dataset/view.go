package dataset

import (
	"fmt"
	"math"
)

// Box is a crop as fractions of the source image: (Top, Left, Height, Width), the label file's
// crop column. Fractions, not pixels, so the same row means the same region at any resolution
// the trainer renders it.
type Box struct {
	Top, Left, Height, Width float32
}

// View is one row's pixels: a crop box, a horizontal flip applied after the crop, and the view
// number, which fixes how the box is resampled (see Render).
type View struct {
	Index int // 0: the eval centre view; 1..V-1: random views
	Box   Box
	Flip  bool
}

// ViewConfig parameterises random views (torchvision's RandomResizedCrop and
// RandomHorizontalFlip). Zero values mean the defaults given per field.
//
// For 28×28 images (MNIST, Fashion-MNIST) torchvision's scale floor of 0.08 keeps crops of
// about 8×8 pixels, blown up 3.5 times: mostly blur. Scale (0.35, 1) keeps at least ~17×17,
// closer to the translations and small zooms that work on these sets. Flips suit
// Fashion-MNIST's clothes; digits are not mirror-symmetric (set FlipP to -1 for MNIST).
type ViewConfig struct {
	Seed  uint64
	Scale [2]float64 // area fraction range; zero: torchvision's (0.08, 1)
	Ratio [2]float64 // aspect ratio (w/h) range; zero: torchvision's (3/4, 4/3)
	FlipP float64    // flip probability; 0: torchvision's 0.5; negative: never flip
}

// Defaults returns vc with zero fields set to their defaults, or an error naming a bad range.
func (vc ViewConfig) Defaults() (ViewConfig, error) {
	if vc.Scale == [2]float64{} {
		vc.Scale = [2]float64{0.08, 1}
	}
	if vc.Ratio == [2]float64{} {
		vc.Ratio = [2]float64{3.0 / 4, 4.0 / 3}
	}
	if vc.FlipP == 0 {
		vc.FlipP = 0.5
	}
	// An area fraction above 1 is a crop larger than the image: every try fails and each view
	// silently becomes the clamped centre crop.
	if !(vc.Scale[0] > 0 && vc.Scale[0] <= vc.Scale[1] && vc.Scale[1] <= 1) {
		return vc, fmt.Errorf("%w: scale range %v,%v, want 0 < a ≤ b ≤ 1", ErrBadConfig, vc.Scale[0], vc.Scale[1])
	}
	if !(vc.Ratio[0] > 0 && vc.Ratio[0] <= vc.Ratio[1] && !math.IsInf(vc.Ratio[1], 0)) {
		return vc, fmt.Errorf("%w: ratio range %v,%v, want 0 < a ≤ b", ErrBadConfig, vc.Ratio[0], vc.Ratio[1])
	}
	if vc.FlipP > 1 || math.IsNaN(vc.FlipP) {
		return vc, fmt.Errorf("%w: flip probability %v, want 0..1 (negative: never)", ErrBadConfig, vc.FlipP)
	}
	return vc, nil
}

// CenterBox is view 0's box for a w×h source: the region Resize(cfg.Resize)+CenterCrop(cfg.Crop)
// keeps, as fractions (offsets and size in the resized image divided by its size).
func CenterBox(w, h int, cfg Config) (Box, error) {
	cfg, err := cfg.Defaults()
	if err != nil {
		return Box{}, err
	}
	rw, rh := ResizedSize(w, h, cfg.Resize)
	ox, oy := centerOffset(rw, cfg.Crop), centerOffset(rh, cfg.Crop)
	return Box{
		Top:    float32(float64(oy) / float64(rh)),
		Left:   float32(float64(ox) / float64(rw)),
		Height: float32(float64(cfg.Crop) / float64(rh)),
		Width:  float32(float64(cfg.Crop) / float64(rw)),
	}, nil
}

// ViewFor returns view number v of image index (of size w×h): v = 0 is the centre view; others
// are RandomView. It is a pure function of its arguments.
func ViewFor(w, h, index, v int, cfg Config, vc ViewConfig) (View, error) {
	if v == 0 {
		b, err := CenterBox(w, h, cfg)
		return View{Index: 0, Box: b}, err
	}
	return RandomView(w, h, index, v, vc)
}

// RandomView is torchvision's RandomResizedCrop.get_params followed by a flip draw, for view
// v ≥ 1 of image index, drawn from a counter-based generator keyed by (vc.Seed, index, v): any
// row can be regenerated alone. Up to 10 tries of a random area fraction in Scale and
// log-uniform aspect ratio in Ratio, rounded half-to-even to whole pixels as Python's round
// does; a try that does not fit falls through, and after 10 the centre crop clamped to Ratio
// (get_params' fallback) is used. The box is whole pixels, stored as fractions.
func RandomView(w, h, index, v int, vc ViewConfig) (View, error) {
	vc, err := vc.Defaults()
	if err != nil {
		return View{}, err
	}
	if v < 1 {
		return View{}, fmt.Errorf("%w: random view number %d, want ≥ 1", ErrBadConfig, v)
	}
	if w <= 0 || h <= 0 {
		return View{}, fmt.Errorf("%w: image size %d×%d", ErrBadConfig, w, h)
	}
	r := viewRNG(vc.Seed, index, v)
	area := float64(w * h)
	logR0, logR1 := math.Log(vc.Ratio[0]), math.Log(vc.Ratio[1])
	top, left, ch, cw := -1, -1, 0, 0
	for range 10 {
		target := area * r.Uniform(vc.Scale[0], vc.Scale[1])
		aspect := math.Exp(r.Uniform(logR0, logR1))
		tw := int(math.RoundToEven(math.Sqrt(target * aspect)))
		th := int(math.RoundToEven(math.Sqrt(target / aspect)))
		if 0 < tw && tw <= w && 0 < th && th <= h {
			top = r.Intn(h - th + 1)
			left = r.Intn(w - tw + 1)
			ch, cw = th, tw
			break
		}
	}
	if top < 0 {
		in := float64(w) / float64(h)
		switch {
		case in < vc.Ratio[0]:
			cw, ch = w, int(math.RoundToEven(float64(w)/vc.Ratio[0]))
		case in > vc.Ratio[1]:
			ch, cw = h, int(math.RoundToEven(float64(h)*vc.Ratio[1]))
		default:
			cw, ch = w, h
		}
		top, left = (h-ch)/2, (w-cw)/2
	}
	flip := vc.FlipP > 0 && r.Float64() < vc.FlipP
	return View{Index: v, Box: PixelBox(w, h, top, left, ch, cw), Flip: flip}, nil
}

// PixelBox turns a whole-pixel crop (top, left, height, width) of a w×h image into fractions.
// float32 keeps ~24 bits, so pixelRect recovers the integers for any side under 2^20.
func PixelBox(w, h, top, left, height, width int) Box {
	return Box{
		Top:    float32(float64(top) / float64(h)),
		Left:   float32(float64(left) / float64(w)),
		Height: float32(float64(height) / float64(h)),
		Width:  float32(float64(width) / float64(w)),
	}
}

// pixelRect is the whole-pixel crop a box stands for in a w×h image, clamped inside it.
func pixelRect(b Box, w, h int) (top, left, height, width int) {
	top = clampInt(int(math.Round(float64(b.Top)*float64(h))), 0, h-1)
	left = clampInt(int(math.Round(float64(b.Left)*float64(w))), 0, w-1)
	height = clampInt(int(math.Round(float64(b.Height)*float64(h))), 1, h-top)
	width = clampInt(int(math.Round(float64(b.Width)*float64(w))), 1, w-left)
	return
}

func clampInt(v, lo, hi int) int { return max(lo, min(v, hi)) }

// Render writes view v of img at size×size into dst (len cfg.Channels·size·size, CHW float32):
// the box resampled with cfg's interpolation as PIL does (antialiased when shrinking), mirrored
// if v.Flip, then ToTensor and Normalize. Precompute and the trainer both call it, so a stored
// row and a replayed row are the same pixels; size may differ from cfg.Crop when the student
// trains at its own resolution.
//
// The two kinds of view resample as torchvision computes them:
//   - View 0 is Resize(R)+CenterCrop(S): PIL's resample of the whole image with the box as the
//     source window, so filters near the crop's edges read pixels just outside it. The float32
//     fractions are first turned back into the ratios CenterBox made them from (ox/rw, S/rw),
//     and sample centres computed as Resize computes them, (ox + i + 0.5)·(W/rw): with size = S
//     this is Preprocess bit for bit. (Straight from the float32 box, weights move by ~1e-7,
//     and since resize ratios like 5/6 put many sums exactly on a rounding edge, a tenth of a
//     level of mean error appeared.) At another size it is the same region resampled.
//   - Views ≥ 1 are torchvision's resized_crop: crop the whole-pixel box, then resize the crop
//     alone to size×size (filters clamp at the crop's edges), bit-exact with torchvision.
func Render(dst []float32, img *Image, v View, size int, cfg Config) error {
	cfg, err := cfg.Defaults()
	if err != nil {
		return err
	}
	if err := checkImage(dst, img, cfg, size); err != nil {
		return err
	}
	return resampleView(img, v, size, cfg, chwWriter(dst, size, cfg.Channels, makeLUT(cfg), v.Flip))
}

// resampleView hands emit the 8-bit rows of view v resampled at size×size (not yet flipped),
// as Render describes; cfg has its defaults.
func resampleView(img *Image, v View, size int, cfg Config, emit func(y int, row []uint8)) error {
	f, _ := filterFor(cfg.Interpolation)
	if v.Index == 0 {
		if !(v.Box.Width > 0 && v.Box.Height > 0) {
			return fmt.Errorf("%w: empty box %+v", ErrBadConfig, v.Box)
		}
		sx := boxSpan(v.Box.Left, v.Box.Width, img.Width, size)
		sy := boxSpan(v.Box.Top, v.Box.Height, img.Height, size)
		resampleWindow(img, 0, 0, img.Width, img.Height, sx, sy, f, 0, 0, size, size, emit)
	} else {
		top, left, ch, cw := pixelRect(v.Box, img.Width, img.Height)
		sx := span{scale: float64(cw) / float64(size), out: size}
		sy := span{scale: float64(ch) / float64(size), out: size}
		resampleWindow(img, left, top, cw, ch, sx, sy, f, 0, 0, size, size, emit)
	}
	return nil
}

// boxSpan maps the fractional window [start, start+length) of n source samples onto size
// outputs. With start = a/b and length = c/d as CenterBox made them (ox/rw, S/rw), it computes
// scale = n·c/(d·size) and off = start/length·size as exact integer ratios, so for size = S
// they are W/rw and ox, the values Resize uses.
func boxSpan(start, length float32, n, size int) span {
	a, b, ok1 := ratio(start)
	c, d, ok2 := ratio(length)
	if ok1 && ok2 && c > 0 {
		return span{
			off:   float64(a*d*int64(size)) / float64(b*c),
			scale: float64(int64(n)*c) / float64(d*int64(size)),
			out:   size,
		}
	}
	return span{
		off:   float64(start) / float64(length) * float64(size),
		scale: float64(length) * float64(n) / float64(size),
		out:   size,
	}
}

// ratio recovers p/q from float32(p/q) for q ≤ 2^12 (a resized side up to 4096): the first
// continued-fraction convergent that rounds to f. By Legendre's theorem p/q is a convergent
// when |f - p/q| < 1/(2q²), which float32's 2^-24 relative error guarantees for such q, and no
// other fraction with q ≤ 2^12 lies that close.
func ratio(f float32) (p, q int64, ok bool) {
	if f < 0 || f > 1 {
		return 0, 0, false
	}
	x := float64(f)
	hPrev, h := int64(0), int64(1) // h_{n-2}, h_{n-1}
	kPrev, k := int64(1), int64(0)
	for range 40 {
		a := math.Floor(x)
		hPrev, h = h, int64(a)*h+hPrev
		kPrev, k = k, int64(a)*k+kPrev
		if k > 1<<12 {
			return 0, 0, false
		}
		if float32(float64(h)/float64(k)) == f {
			return h, k, true
		}
		if x == a {
			return 0, 0, false
		}
		x = 1 / (x - a)
	}
	return 0, 0, false
}
