package dataset

import "fmt"

// Augment is what a view gets after its crop and flip, in timm's transform order
// (transforms_factory.py: RandomResizedCrop, RandomHorizontalFlip, RandAugment, ToTensor,
// Normalize, RandomErasing): RandAugment's ops on the 8-bit view, then the erased box in the
// normalised tensor. Mixing joins two rendered views afterwards (Mix.Apply). The zero
// Augment is no augmentation.
type Augment struct {
	Ops   []AugmentOp `json:"ops,omitempty"`
	Erase Erase       `json:"erase"`
}

// AugmentConfig is a run's augmentations after the crop and flip: RandAugment's spec (nil or
// no layers: none), RandomErasing's probability (0: none) and Mixup/CutMix (no alpha above 0:
// none). Its fields are literal; the zero AugmentConfig is no augmentation.
type AugmentConfig struct {
	RandAugment *RandAugment `json:"randaugment,omitempty"`
	EraseProb   float64      `json:"erase_prob,omitempty"`
	Mix         MixConfig    `json:"mix"`
}

// On reports whether any augmentation is on.
func (ac AugmentConfig) On() bool {
	return ac.RandAugment != nil && ac.RandAugment.Layers > 0 || ac.EraseProb > 0 || ac.Mix.On()
}

// Check names a setting out of range.
func (ac AugmentConfig) Check() error {
	if !(ac.EraseProb >= 0 && ac.EraseProb <= 1) {
		return fmt.Errorf("%w: erase probability %v, want 0..1", ErrBadConfig, ac.EraseProb)
	}
	if ra := ac.RandAugment; ra != nil && (ra.Layers < 0 || ra.Magnitude < 0 || !(ra.Prob >= 0 && ra.Prob <= 1) || !(ra.MagnitudeStd >= 0)) {
		return fmt.Errorf("%w: RandAugment %+v", ErrBadConfig, *ra)
	}
	return ac.Mix.Check()
}

// Draw is view v of image index's augmentation at size×size (its mix aside: MixConfig.Draw),
// a pure function of its arguments, each kind from its own keyed stream of (seed, index, v).
func (ac AugmentConfig) Draw(seed uint64, index, v, size int) Augment {
	var a Augment
	if ac.RandAugment != nil {
		a.Ops = ac.RandAugment.Draw(seed, index, v)
	}
	a.Erase = DrawErase(ac.EraseProb, seed, index, v, size)
	return a
}

// RenderAugmented is Render with a's augmentations: the view resampled and flipped as Render
// does, a.Ops applied to its 8-bit pixels (resampling with cfg.Interpolation and filling with
// FillFor(cfg.Mean), as timm's create_transform sets RandAugment's interpolation and img_mean),
// then ToTensor and Normalize, then a.Erase. With the zero Augment it is Render.
func RenderAugmented(dst []float32, img *Image, v View, a Augment, size int, cfg Config) error {
	cfg, err := cfg.Defaults()
	if err != nil {
		return err
	}
	if len(a.Ops) == 0 {
		if err := Render(dst, img, v, size, cfg); err != nil {
			return err
		}
		a.Erase.Apply(dst, cfg.Channels, size)
		return nil
	}
	if err := checkImage(dst, img, cfg, size); err != nil {
		return err
	}
	c := cfg.Channels
	m, err := RenderPixels(img, v, size, cfg)
	if err != nil {
		return err
	}
	if m, err = ApplyOps(m, a.Ops, cfg.Interpolation, FillFor(cfg.Mean)); err != nil {
		return err
	}
	emit := chwWriter(dst, size, c, makeLUT(cfg), false)
	for y := range size {
		emit(y, m.Pix[y*size*c:(y+1)*size*c])
	}
	a.Erase.Apply(dst, c, size)
	return nil
}

// RenderPixels is view v of img as an 8-bit size×size image: resampled and flipped as Render
// does it, before ToTensor and Normalize (Render's output is these pixels normalised), as
// RandAugment's ops take it and as a picture of what the model is fed.
func RenderPixels(img *Image, v View, size int, cfg Config) (*Image, error) {
	cfg, err := cfg.Defaults()
	if err != nil {
		return nil, err
	}
	if img.Channels != cfg.Channels || size <= 0 {
		return nil, fmt.Errorf("%w: a %d-channel image at size %d, config %d channels", ErrBadConfig, img.Channels, size, cfg.Channels)
	}
	c := cfg.Channels
	m := NewImage(size, size, c)
	err = resampleView(img, v, size, cfg, func(y int, row []uint8) {
		out := m.Pix[y*size*c : (y+1)*size*c]
		if !v.Flip {
			copy(out, row)
			return
		}
		for x := range size {
			copy(out[(size-1-x)*c:(size-x)*c], row[x*c:(x+1)*c])
		}
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}
