package dataset

import (
	"fmt"
	"math"
	"slices"
)

// Config is the eval transform: torchvision's Resize(Resize) (shorter side, PIL path),
// CenterCrop(Crop), ToTensor, Normalize(Mean, Std) on an image converted to Channels.
//
// It is deitkd's one preprocessing type: what a label store records under deitkd.preprocess
// (schema.Metadata.Preprocess), what a teacher or an exported student carries in its ONNX
// metadata under the same key, what a checkpoint records, and what every view is rendered
// with. It lives here, in the lowest package that needs it, so that schema, teacher-facing
// code and the trainer all name the same type; the JSON names are the label-file contract's.
//
// Zero values mean the defaults given per field (a model's metadata that leaves a field out
// says nothing about it); call Defaults to see them filled in. Mean and Std are float64 as
// written; pixels are normalised with their float32 values, as torch's float32 ops round.
type Config struct {
	Resize        int       `json:"resize"`        // shorter side before the crop; 0: Crop (no crop margin, so a Crop×Crop image passes unchanged)
	Crop          int       `json:"crop"`          // S, the square side given to the model; 0: 224
	Interpolation string    `json:"interpolation"` // "bilinear" (0: default, torchvision's) or "bicubic"
	Mean          []float64 `json:"mean"`          // per channel, or one value for all, subtracted after scaling to [0,1]; nil: DefaultNorm's
	Std           []float64 `json:"std"`           // per channel divisor, or one value for all; nil: DefaultNorm's
	Channels      int       `json:"channels"`      // 1 ("L") or 3 ("RGB"); 0: 3

	// Draft decodes a JPEG at 1/2, 1/4 or 1/8 scale when it is at least that many times
	// Resize on both sides (PIL's img.draft(mode, (Resize, Resize)); LoadImage and Feed
	// honour it), which is much faster for large photos. Off by default: it changes pixels. On
	// 16 photo-like JPEGs of 1000×750 to 2048×1536 (drafted at 1/2 or 1/4), the
	// Resize(256)+CenterCrop(224) tensor differed from the exact one by a mean absolute
	// 0.32/255 (0.28 to 0.39 per image), 14/255 at most for one sample, and took 2.8 times less
	// CPU; TestDecodeDraft checks one such case, TestDecodeDraftMatchesPIL that the drafted
	// pixels are PIL's. ImageNet-sized 500×375 files are never drafted for Resize 256. For the
	// eval view only: a random view of a drafted image would be drawn at its reduced size.
	// Pure-Go builds (-tags purego) ignore it. Recorded as jpeg_draft, absent when off.
	Draft bool `json:"jpeg_draft,omitempty"`

	// EXIFTranspose turns each image upright for its EXIF orientation after decoding, as PIL's
	// ImageOps.exif_transpose does (Transpose), so views are drawn on the upright image; LoadImage
	// and Feed honour it. Off by default: torchvision's ImageFolder does not apply it.
	// Recorded as exif_transpose, absent when off.
	EXIFTranspose bool `json:"exif_transpose,omitempty"`
}

// ImageNet's channel statistics, torchvision's and timm's defaults for 3 channels.
var (
	ImageNetMean = []float64{0.485, 0.456, 0.406}
	ImageNetStd  = []float64{0.229, 0.224, 0.225}
)

// DefaultNorm is the one table of default normalisation: ImageNet's statistics for 3 channels,
// mean 0.5 and std 0.5 (to [-1, 1]) for 1. Fresh slices each call.
func DefaultNorm(channels int) (mean, std []float64) {
	if channels == 3 {
		return slices.Clone(ImageNetMean), slices.Clone(ImageNetStd)
	}
	return []float64{0.5}, []float64{0.5}
}

// Defaults returns c with every zero field set to its default, and one-value Mean/Std repeated
// per channel, or an error naming the field that cannot be used.
func (c Config) Defaults() (Config, error) {
	if c.Channels == 0 {
		c.Channels = 3
	}
	if c.Channels != 1 && c.Channels != 3 {
		return c, fmt.Errorf("%w: channels %d, want 1 or 3", ErrBadConfig, c.Channels)
	}
	if c.Crop == 0 {
		c.Crop = 224
	}
	if c.Resize == 0 {
		c.Resize = c.Crop
	}
	if c.Crop < 0 || c.Resize < c.Crop {
		// torchvision would pad with zeros; a teacher should never be fed padding by accident.
		return c, fmt.Errorf("%w: resize %d must be at least crop %d", ErrBadConfig, c.Resize, c.Crop)
	}
	if c.Interpolation == "" {
		c.Interpolation = "bilinear"
	}
	if _, err := filterFor(c.Interpolation); err != nil {
		return c, err
	}
	if c.Mean == nil && c.Std == nil {
		c.Mean, c.Std = DefaultNorm(c.Channels)
	}
	var err error
	if c.Mean, err = PerChannel("mean", c.Mean, c.Channels); err != nil {
		return c, err
	}
	if c.Std, err = PerChannel("std", c.Std, c.Channels); err != nil {
		return c, err
	}
	for _, s := range c.Std { // checked in float32, the precision pixels are normalised in
		if s := float32(s); !(s > 0) || math.IsInf(float64(s), 0) {
			return c, fmt.Errorf("%w: std %v, want each value > 0", ErrBadConfig, c.Std)
		}
	}
	for _, m := range c.Mean {
		if m := float64(float32(m)); math.IsNaN(m) || math.IsInf(m, 0) {
			return c, fmt.Errorf("%w: mean %v, want finite values", ErrBadConfig, c.Mean)
		}
	}
	return c, nil
}

// PerChannel is the one per-channel expansion of a mean or std (named name in the error): v
// itself when it has a value per channel, a new slice of channels copies of its value when it
// has one, otherwise an error wrapping ErrBadConfig.
func PerChannel(name string, v []float64, channels int) ([]float64, error) {
	switch len(v) {
	case channels:
		return v, nil
	case 1:
		out := make([]float64, channels)
		for i := range out {
			out[i] = v[0]
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %s has %d values for %d channels", ErrBadConfig, name, len(v), channels)
}

func filterFor(name string) (filter, error) {
	switch name {
	case "bilinear", "":
		return bilinearFilter, nil
	case "bicubic":
		return bicubicFilter, nil
	}
	return filter{}, fmt.Errorf("%w: interpolation %q, want bilinear or bicubic", ErrBadConfig, name)
}

// ResizedSize is torchvision's size for Resize(r) of a w×h image: the shorter side becomes r,
// the longer int(r·long/short) (truncated, in float64 as Python computes it).
func ResizedSize(w, h, r int) (rw, rh int) {
	short, long := min(w, h), max(w, h)
	newLong := int(float64(r*long) / float64(short))
	if w <= h {
		return r, newLong
	}
	return newLong, r
}

// centerOffset is CenterCrop's int(round((size - crop) / 2.0)), Python's round being half-even.
func centerOffset(size, crop int) int {
	return int(math.RoundToEven(float64(size-crop) / 2))
}

// normLUT holds ToTensor+Normalize for every 8-bit value: (v/255 - mean)/std in float32, each
// operation rounded as torch's float32 ops round, so results are bit-identical to torchvision.
type normLUT [][256]float32

func makeLUT(c Config) normLUT {
	lut := make(normLUT, c.Channels)
	for ch := range lut {
		for v := range 256 {
			x := float32(v) / 255
			lut[ch][v] = (x - float32(c.Mean[ch])) / float32(c.Std[ch])
		}
	}
	return lut
}

// chwWriter returns an emit function for resampleWindow that normalises each 8-bit row of a
// size×size view into dst as CHW float32, mirrored left-right if flip.
func chwWriter(dst []float32, size, channels int, lut normLUT, flip bool) func(y int, row []uint8) {
	n := size * size
	if channels == 3 && !flip { // the common case in one pass over the row
		l0, l1, l2 := &lut[0], &lut[1], &lut[2]
		return func(y int, row []uint8) {
			d0 := dst[y*size : (y+1)*size]
			d1 := dst[n+y*size : n+(y+1)*size]
			d2 := dst[2*n+y*size : 2*n+(y+1)*size]
			d1, d2 = d1[:len(d0)], d2[:len(d0)]
			row = row[:3*len(d0)]
			for x := range d0 {
				p := row[3*x : 3*x+3 : 3*x+3]
				d0[x], d1[x], d2[x] = l0[p[0]], l1[p[1]], l2[p[2]]
			}
		}
	}
	return func(y int, row []uint8) {
		for ch := range channels {
			l := &lut[ch]
			d := dst[ch*n+y*size : ch*n+(y+1)*size]
			if flip {
				for x := range d {
					d[size-1-x] = l[row[x*channels+ch]]
				}
			} else {
				for x := range d {
					d[x] = l[row[x*channels+ch]]
				}
			}
		}
	}
}

// TensorLen is the number of float32 values one view takes: channels·size·size.
func TensorLen(channels, size int) int { return channels * size * size }

// Preprocess writes torchvision's eval transform of img — Resize(Resize), CenterCrop(Crop),
// ToTensor, Normalize — into dst (len Channels·Crop·Crop, CHW). img must have cfg's channel
// count (Load and Decode give it). It is the reference for view 0; pipelines call Render.
func Preprocess(dst []float32, img *Image, cfg Config) error {
	cfg, err := cfg.Defaults()
	if err != nil {
		return err
	}
	if err := checkImage(dst, img, cfg, cfg.Crop); err != nil {
		return err
	}
	f, _ := filterFor(cfg.Interpolation)
	rw, rh := ResizedSize(img.Width, img.Height, cfg.Resize)
	ox, oy := centerOffset(rw, cfg.Crop), centerOffset(rh, cfg.Crop)
	// PIL: scale = (double)(in1 - in0) / out with the box the whole image.
	sx := span{scale: float64(img.Width) / float64(rw), out: rw}
	sy := span{scale: float64(img.Height) / float64(rh), out: rh}
	emit := chwWriter(dst, cfg.Crop, cfg.Channels, makeLUT(cfg), false)
	resampleWindow(img, 0, 0, img.Width, img.Height, sx, sy, f, ox, oy, cfg.Crop, cfg.Crop, emit)
	return nil
}

func checkImage(dst []float32, img *Image, cfg Config, size int) error {
	if img.Channels != cfg.Channels {
		return fmt.Errorf("%w: image has %d channels, config %d", ErrBadConfig, img.Channels, cfg.Channels)
	}
	if size <= 0 {
		return fmt.Errorf("%w: output size %d", ErrBadConfig, size)
	}
	if want := TensorLen(cfg.Channels, size); len(dst) != want {
		return fmt.Errorf("%w: dst has %d values, want %d", ErrBadConfig, len(dst), want)
	}
	return nil
}
