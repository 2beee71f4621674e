package dataset

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// OpName is one of RandAugment's operations, spelled as timm's NAME_TO_OP spells it.
type OpName string

// timm's _RAND_TRANSFORMS and _RAND_INCREASING_TRANSFORMS (auto_augment.py), in its order:
// the index a draw picks is the position in these lists.
var (
	randTransforms = []OpName{
		"AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd",
		"Color", "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel",
	}
	randIncreasingTransforms = []OpName{
		"AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd",
		"ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing", "ShearX", "ShearY",
		"TranslateXRel", "TranslateYRel",
	}
)

// signed reports whether timm's level→arg for the op negates its argument with probability ½
// (_randomly_negate): the op's AugmentOp.Magnitude is then negative when negated.
func (n OpName) signed() bool {
	switch n {
	case "Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel",
		"ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing":
		return true
	}
	return false
}

func (n OpName) known() bool {
	for _, o := range randTransforms {
		if o == n {
			return true
		}
	}
	for _, o := range randIncreasingTransforms {
		if o == n {
			return true
		}
	}
	return false
}

// AugmentOp is one RandAugment operation applied to a view: its name and its magnitude on
// timm's 0..10 scale after the noise and clipping AugmentOp.__call__ draws, negative where
// timm's level→arg negated the argument (signed ops only). Two plain fields, so a list of them
// is a list<struct<name: utf8, magnitude: float32>> column; Apply needs nothing else.
type AugmentOp struct {
	Name      OpName  `json:"name"`
	Magnitude float32 `json:"magnitude"`
}

// levelDenom is timm's _LEVEL_DENOM: magnitude 10 is an op's full strength.
const levelDenom = 10.0

// args is timm's LEVEL_TO_ARG for the op: the float argument (degrees, factor, shear,
// translation fraction) or the integer one (bits, threshold, addend).
func (o AugmentOp) args() (f float64, i int) {
	level := math.Abs(float64(o.Magnitude))
	sign := 1.0
	if o.Magnitude < 0 {
		sign = -1
	}
	frac := level / levelDenom
	switch o.Name {
	case "Rotate":
		return sign * (frac * 30), 0
	case "ShearX", "ShearY":
		return sign * (frac * 0.3), 0
	case "TranslateXRel", "TranslateYRel":
		return sign * (frac * 0.45), 0
	case "Color", "Contrast", "Brightness", "Sharpness":
		return frac*1.8 + 0.1, 0
	case "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing":
		return math.Max(0.1, 1+sign*(frac*0.9)), 0
	case "Posterize":
		return 0, int(frac * 4)
	case "PosterizeIncreasing":
		return 0, 4 - int(frac*4)
	case "Solarize":
		return 0, min(256, int(frac*256))
	case "SolarizeIncreasing":
		return 0, 256 - min(256, int(frac*256))
	case "SolarizeAdd":
		return 0, min(128, int(frac*110))
	}
	return 0, 0
}

func (o AugmentOp) check() error {
	if !o.Name.known() {
		return fmt.Errorf("%w: RandAugment op %q", ErrBadConfig, o.Name)
	}
	m := float64(o.Magnitude)
	if !(math.Abs(m) <= levelDenom) || m < 0 && !o.Name.signed() {
		return fmt.Errorf("%w: RandAugment op %s magnitude %v, want 0..10 (negative for signed ops only)", ErrBadConfig, o.Name, o.Magnitude)
	}
	return nil
}

// Apply returns the op applied to m (a new image), with timm's arguments: geometric ops
// resample with interpolation ("bilinear" or "bicubic", timm's hparams['interpolation'], the
// train transform's) and fill uncovered pixels with fill (one value per channel, timm's
// img_mean: FillFor of the normalisation mean).
func (o AugmentOp) Apply(m *Image, interpolation string, fill []uint8) (*Image, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	f, err := filterFor(interpolation)
	if err != nil {
		return nil, err
	}
	if len(fill) != m.Channels {
		return nil, fmt.Errorf("%w: fill %v for %d channels", ErrBadConfig, fill, m.Channels)
	}
	x, n := o.args()
	w, h := float64(m.Width), float64(m.Height)
	switch o.Name {
	case "AutoContrast":
		return autoContrast(m), nil
	case "Equalize":
		return equalize(m), nil
	case "Invert":
		return invert(m), nil
	case "Rotate":
		return rotate(m, x, f, fill), nil
	case "Posterize", "PosterizeIncreasing":
		return posterize(m, n), nil
	case "Solarize", "SolarizeIncreasing":
		return solarize(m, n), nil
	case "SolarizeAdd":
		return solarizeAdd(m, n, 128), nil
	case "Color", "ColorIncreasing":
		return colorOp(m, x), nil
	case "Contrast", "ContrastIncreasing":
		return contrast(m, x), nil
	case "Brightness", "BrightnessIncreasing":
		return brightness(m, x), nil
	case "Sharpness", "SharpnessIncreasing":
		return sharpness(m, x), nil
	case "ShearX":
		return affine(m, [6]float64{1, x, 0, 0, 1, 0}, f, fill), nil
	case "ShearY":
		return affine(m, [6]float64{1, 0, 0, x, 1, 0}, f, fill), nil
	case "TranslateXRel":
		return affine(m, [6]float64{1, 0, x * w, 0, 1, 0}, f, fill), nil
	case "TranslateYRel":
		return affine(m, [6]float64{1, 0, 0, 0, 1, x * h}, f, fill), nil
	}
	return nil, fmt.Errorf("%w: RandAugment op %q", ErrBadConfig, o.Name)
}

// FillFor is timm's RandAugment fill colour for a normalisation mean (create_transform's
// img_mean): min(255, round(255·mean)) per channel, Python's round (half to even).
func FillFor(mean []float64) []uint8 {
	out := make([]uint8, len(mean))
	for i, m := range mean {
		// The mean's float32 value, the one pixels are normalised with (and the one this
		// fill was computed from when Config's mean was float32).
		out[i] = uint8(max(0, min(255, math.RoundToEven(255*float64(float32(m))))))
	}
	return out
}

// RandAugment is a parsed RandAugment spec, timm's rand_augment_transform: Layers ops per
// view, each picked uniformly with replacement from timm's list (the increasing one with inc1),
// applied with probability Prob at magnitude Magnitude plus Gaussian noise of std MagnitudeStd
// (+Inf: uniform in [0, Magnitude]), clipped to [0, 10]. ParseRandAugment fills every field.
type RandAugment struct {
	Magnitude    int     // m: 0..10 is the ops' range (timm clips each draw at 10)
	Layers       int     // n (timm's default 2)
	MagnitudeStd float64 // mstd (timm's default 0; above 100: +Inf)
	Increasing   bool    // inc1
	Prob         float64 // p, each op's probability (timm's 0.5)
}

// ParseRandAugment parses timm's RandAugment spec: "rand" then dash-separated sections m<int>,
// n<int>, mstd<float>, inc1 and p<float> (as in rand-m9-mstd0.5-inc1), each a key and the
// value from its first digit, as timm's re.split(r'(\d.*)', …) splits them. Unlike timm it
// refuses what timm would ignore or misread: a section without a value, a repeated or unknown
// key, inc0 (timm's bool("0") is true, so inc0 would mean inc1), and the mmax and w sections,
// which are not implemented.
func ParseRandAugment(spec string) (RandAugment, error) {
	ra := RandAugment{Magnitude: levelDenom, Layers: 2, Prob: 0.5}
	parts := strings.Split(spec, "-")
	if parts[0] != "rand" {
		return ra, fmt.Errorf("%w: RandAugment spec %q must start with \"rand\"", ErrBadConfig, spec)
	}
	seen := map[string]bool{}
	for _, sec := range parts[1:] {
		i := strings.IndexAny(sec, "0123456789")
		if i < 0 {
			return ra, fmt.Errorf("%w: RandAugment spec %q: section %q has no value", ErrBadConfig, spec, sec)
		}
		key, val := sec[:i], sec[i:]
		if seen[key] {
			return ra, fmt.Errorf("%w: RandAugment spec %q: %q given twice", ErrBadConfig, spec, key)
		}
		seen[key] = true
		bad := func(want string) error {
			return fmt.Errorf("%w: RandAugment spec %q: section %q, want %s", ErrBadConfig, spec, sec, want)
		}
		switch key {
		case "m":
			v, err := strconv.Atoi(val)
			if err != nil || v > 100 {
				return ra, bad("m and an integer 0..100")
			}
			ra.Magnitude = v
		case "n":
			v, err := strconv.Atoi(val)
			if err != nil || v < 1 || v > 16 {
				return ra, bad("n and an integer 1..16")
			}
			ra.Layers = v
		case "mstd":
			v, err := strconv.ParseFloat(val, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return ra, bad("mstd and a number ≥ 0")
			}
			if v > 100 {
				v = math.Inf(1)
			}
			ra.MagnitudeStd = v
		case "inc":
			if val != "1" {
				return ra, bad("inc1 (timm reads inc0 as inc1)")
			}
			ra.Increasing = true
		case "p":
			v, err := strconv.ParseFloat(val, 64)
			if err != nil || !(v >= 0 && v <= 1) {
				return ra, bad("p and a probability 0..1")
			}
			ra.Prob = v
		case "mmax", "w":
			return ra, fmt.Errorf("%w: RandAugment spec %q: section %q is not implemented", ErrBadConfig, spec, sec)
		default:
			return ra, fmt.Errorf("%w: RandAugment spec %q: unknown section %q (m, n, mstd, inc, p)", ErrBadConfig, spec, sec)
		}
	}
	return ra, nil
}

// String is the spec in canonical form: every section, in the order m, n, mstd, inc, p
// (ParseRandAugment of it gives ra back).
func (ra RandAugment) String() string {
	s := fmt.Sprintf("rand-m%d-n%d", ra.Magnitude, ra.Layers)
	switch {
	case math.IsInf(ra.MagnitudeStd, 1):
		s += "-mstd101"
	default:
		s += "-mstd" + strconv.FormatFloat(ra.MagnitudeStd, 'g', -1, 64)
	}
	if ra.Increasing {
		s += "-inc1"
	}
	return s + "-p" + strconv.FormatFloat(ra.Prob, 'g', -1, 64)
}

// Draw picks view v of image index's ops, as RandAugment.__call__ and AugmentOp.__call__ draw
// them (op choice, probability, magnitude noise, sign), from the keyed generator of
// (seed, index, v): a pure function of its arguments. Ops not applied are left out.
func (ra RandAugment) Draw(seed uint64, index, v int) []AugmentOp {
	r := newAugRNG(seed, augDomainRandAugment, index, v)
	list := randTransforms
	if ra.Increasing {
		list = randIncreasingTransforms
	}
	var ops []AugmentOp
	for range ra.Layers {
		name := list[r.Intn(len(list))]
		if ra.Prob < 1 && r.Float64() > ra.Prob {
			continue
		}
		m := float64(ra.Magnitude)
		switch {
		case math.IsInf(ra.MagnitudeStd, 1):
			m = r.Uniform(0, m)
		case ra.MagnitudeStd > 0:
			m += ra.MagnitudeStd * r.normal()
		}
		m = max(0, min(m, levelDenom))
		if name.signed() && r.Float64() > 0.5 {
			m = -m
		}
		ops = append(ops, AugmentOp{Name: name, Magnitude: float32(m)})
	}
	return ops
}

// ApplyOps applies ops in order to m (returning m itself when there are none).
func ApplyOps(m *Image, ops []AugmentOp, interpolation string, fill []uint8) (*Image, error) {
	for _, o := range ops {
		var err error
		if m, err = o.Apply(m, interpolation, fill); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// The augmentations' streams, one per kind, so a view's RandAugment draw, erased box and mix
// are independent of each other and of its crop (newViewRNG's stream).
const (
	augDomainRandAugment = 1 + iota
	augDomainErase
	augDomainEraseNoise
	augDomainMix
	augDomainPartner
)

func newAugRNG(seed uint64, domain uint64, index, v int) *RNG {
	return viewRNG(mix64(seed^domain*golden), index, v)
}

// normal is a standard normal draw (Box–Muller on two uniforms; 1−u keeps the log finite).
func (r *RNG) normal() float64 {
	u1, u2 := r.Float64(), r.Float64()
	return math.Sqrt(-2*math.Log(1-u1)) * math.Cos(2*math.Pi*u2)
}
