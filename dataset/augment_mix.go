package dataset

import (
	"fmt"
	"math"
)

// RandomErasing's box sizes, timm's defaults (random_erasing.py): area 2%–⅓ of the view,
// log-uniform aspect 0.3–1/0.3, up to 10 tries.
const (
	eraseMinArea   = 0.02
	eraseMaxArea   = 1.0 / 3
	eraseMinAspect = 0.3
)

// Erase is one view's RandomErasing as timm's with mode "pixel" and one box: the box, whole
// pixels of the view at the size it was drawn for, as fractions of the view (not of the
// source image), filled with standard normal noise in the normalised tensor. The noise is a
// pure function of Seed, so the two fields replay the erasure exactly. A zero Box erases
// nothing.
type Erase struct {
	Box  Box    `json:"box"`
	Seed uint64 `json:"seed"`
}

// DrawErase is timm's RandomErasing._erase for view v of image index rendered at size×size:
// with probability p, up to 10 tries of an area in [2%, ⅓] and a log-uniform aspect in
// [0.3, 3.33], h = round(√(area·aspect)), w = round(√(area/aspect)) (half to even), kept when
// both are below the side, at a uniform position; drawn from the keyed generator of
// (seed, index, v). The zero Erase when nothing is erased.
func DrawErase(p float64, seed uint64, index, v, size int) Erase {
	if !(p > 0) || size < 2 {
		return Erase{}
	}
	r := newAugRNG(seed, augDomainErase, index, v)
	if r.Float64() > p { // timm: random.random() > probability skips
		return Erase{}
	}
	area := float64(size * size)
	lo, hi := math.Log(eraseMinAspect), math.Log(1/eraseMinAspect)
	for range 10 {
		target := r.Uniform(eraseMinArea, eraseMaxArea) * area
		aspect := math.Exp(r.Uniform(lo, hi))
		h := int(math.RoundToEven(math.Sqrt(target * aspect)))
		w := int(math.RoundToEven(math.Sqrt(target / aspect)))
		if w < size && h < size {
			top := r.Intn(size - h + 1) // random.randint(0, size-h) is inclusive
			left := r.Intn(size - w + 1)
			return Erase{Box: PixelBox(size, size, top, left, h, w), Seed: r.Uint64()}
		}
	}
	return Erase{}
}

// Apply fills the box of a channels×size×size normalised tensor with the noise, channel by
// channel, row by row. A box drawn for another size covers the same fraction of the view.
func (e Erase) Apply(dst []float32, channels, size int) {
	if e.Box == (Box{}) {
		return
	}
	top, left, h, w := pixelRect(e.Box, size, size)
	r := &RNG{state: mix64(e.Seed + golden)}
	n := size * size
	for c := range channels {
		for y := top; y < top+h; y++ {
			row := dst[c*n+y*size+left : c*n+y*size+left+w]
			for x := range row {
				row[x] = float32(r.normal())
			}
		}
	}
}

// MixConfig is timm's Mixup settings: Mixup's λ ~ Beta(MixupAlpha, MixupAlpha), CutMix's
// ~ Beta(CutMixAlpha, CutMixAlpha), an alpha of 0 turns that kind off; Prob is the chance a
// view is mixed at all, SwitchProb the chance of CutMix when both kinds are on. Every field is
// literal (DeiT's: 0.8, 1.0, 1.0, 0.5).
type MixConfig struct {
	MixupAlpha  float64 `json:"mixup_alpha"`
	CutMixAlpha float64 `json:"cutmix_alpha"`
	Prob        float64 `json:"prob"`
	SwitchProb  float64 `json:"switch_prob"`
}

// On reports whether any mixing can happen.
func (mc MixConfig) On() bool { return mc.Prob > 0 && (mc.MixupAlpha > 0 || mc.CutMixAlpha > 0) }

// Check names a setting out of range.
func (mc MixConfig) Check() error {
	for _, f := range []struct {
		name string
		v    float64
		prob bool
	}{{"mixup alpha", mc.MixupAlpha, false}, {"cutmix alpha", mc.CutMixAlpha, false}, {"mix probability", mc.Prob, true}, {"mix switch probability", mc.SwitchProb, true}} {
		if !(f.v >= 0) || math.IsInf(f.v, 0) || f.prob && f.v > 1 {
			return fmt.Errorf("%w: %s %v, want %s", ErrBadConfig, f.name, f.v, map[bool]string{false: "≥ 0", true: "0..1"}[f.prob])
		}
	}
	return nil
}

// Mix is one view mixed with a partner view (its pixels rendered the same way at the same
// size), as timm's Mixup mixes a batch element with its partner: Mixup gives
// λ·own + (1−λ)·partner; CutMix pastes the partner's pixels inside Box (fractions of the view,
// whole pixels at the size drawn for) and λ is 1 − the box's area fraction, timm's
// correct_lam. The label and teacher targets mix with the same λ.
type Mix struct {
	Lambda float32 `json:"lambda"`
	CutMix bool    `json:"cutmix"`
	Box    Box     `json:"box"` // CutMix only
}

// Draw is timm's Mixup._params_per_batch and cutmix_bbox_and_lam (rand_bbox: a cut of
// int(size·√(1−λ)) per side centred at a uniform pixel, each half cut//2, clipped) for view v
// of image index at size×size, from the keyed generator of (seed, index, v). ok is false when
// the view is not mixed (including λ = 1 and an empty CutMix box).
func (mc MixConfig) Draw(seed uint64, index, v, size int) (m Mix, ok bool) {
	if !mc.On() {
		return Mix{}, false
	}
	r := newAugRNG(seed, augDomainMix, index, v)
	if !(r.Float64() < mc.Prob) {
		return Mix{}, false
	}
	var lam float64
	switch {
	case mc.MixupAlpha > 0 && mc.CutMixAlpha > 0:
		m.CutMix = r.Float64() < mc.SwitchProb
		if m.CutMix {
			lam = r.beta(mc.CutMixAlpha)
		} else {
			lam = r.beta(mc.MixupAlpha)
		}
	case mc.MixupAlpha > 0:
		lam = r.beta(mc.MixupAlpha)
	default:
		m.CutMix = true
		lam = r.beta(mc.CutMixAlpha)
	}
	if lam == 1 {
		return Mix{}, false
	}
	if !m.CutMix {
		m.Lambda = float32(lam)
		return m, m.Lambda != 1
	}
	cut := int(float64(size) * math.Sqrt(1-lam))
	cy, cx := r.Intn(size), r.Intn(size)
	yl, yh := clampInt(cy-cut/2, 0, size), clampInt(cy+cut/2, 0, size)
	xl, xh := clampInt(cx-cut/2, 0, size), clampInt(cx+cut/2, 0, size)
	if yh <= yl || xh <= xl {
		return Mix{}, false
	}
	m.Box = PixelBox(size, size, yl, xl, yh-yl, xh-xl)
	m.Lambda = float32(1 - float64((yh-yl)*(xh-xl))/float64(size*size))
	return m, true
}

// DrawPartner is the partner a stored view v of image index is mixed with, where there is no
// batch to mirror (precompute's stored views): an image uniform over the other images of
// 0..images-1 (itself when it is the only one) and a view uniform over the random views
// 1..views-1 (view 0, the eval view, is never augmented), from the keyed generator of
// (seed, index, v), independent of the view's Mix draw. views must be at least 2.
func DrawPartner(seed uint64, index, v, images, views int) (partner, view int) {
	r := newAugRNG(seed, augDomainPartner, index, v)
	partner = index
	if images > 1 {
		if partner = r.Intn(images - 1); partner >= index {
			partner++
		}
	}
	return partner, 1 + r.Intn(views-1)
}

// DrawnView is random view v of image index (w×h pixels) and its augmentation as a store made
// with cfg, vc and ac draws them: ViewFor, then ac.Draw from vc's seed at cfg's crop. It is how
// precompute renders a mix partner and how train renders it again when replaying the store,
// which names the partner (image, view) but stores none of its parameters.
func DrawnView(w, h, index, v int, cfg Config, vc ViewConfig, ac AugmentConfig) (View, Augment, error) {
	view, err := ViewFor(w, h, index, v, cfg, vc)
	if err != nil {
		return View{}, Augment{}, err
	}
	return view, ac.Draw(vc.Seed, index, v, cfg.Crop), nil
}

// Apply mixes partner into dst, both channels×size×size tensors: for Mixup each value becomes
// own·λ + partner·(1−λ) in float32 as torch computes x·λ + x_partner·(1−λ) (1−λ rounded to
// float32 from λ); for CutMix the partner's values inside the box replace dst's.
func (m Mix) Apply(dst, partner []float32, channels, size int) {
	if !m.CutMix {
		l, k := m.Lambda, float32(1-float64(m.Lambda))
		for i, p := range partner {
			dst[i] = float32(dst[i]*l) + float32(p*k)
		}
		return
	}
	top, left, h, w := pixelRect(m.Box, size, size)
	n := size * size
	for c := range channels {
		for y := top; y < top+h; y++ {
			o := c*n + y*size + left
			copy(dst[o:o+w], partner[o:o+w])
		}
	}
}

// gamma is a Gamma(a, 1) draw (Marsaglia and Tsang; for a < 1 the a+1 draw times u^(1/a)).
func (r *RNG) gamma(a float64) float64 {
	if a < 1 {
		return r.gamma(a+1) * math.Pow(1-r.Float64(), 1/a)
	}
	d := a - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.normal()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := 1 - r.Float64()
		if math.Log(u) < 0.5*x*x+d-d*v+d*math.Log(v) {
			return d * v
		}
	}
}

// beta is a Beta(a, a) draw: X/(X+Y) of two Gamma(a) draws.
func (r *RNG) beta(a float64) float64 {
	x, y := r.gamma(a), r.gamma(a)
	if x+y == 0 {
		return 0.5
	}
	return x / (x + y)
}
