package dataset

import (
	"math"
	"strconv"
)

// RandAugment's pixel operations on 8-bit images (1 or 3 channels), each the PIL call timm's
// timm/data/auto_augment.py makes (auto_contrast … sharpness, shear_x … translate_y_rel),
// reproduced step by step from Pillow's C (libImaging Geometry.c, Filter.c, Blend.c,
// Convert.c) so that outputs equal Pillow 9.4's bit for bit (TestAugmentOpsMatchPIL). Each
// takes its argument after timm's level→arg mapping (see AugmentOp.args) and returns a new
// image; the input is left as it was.

// autoContrast is ImageOps.autocontrast(img): per channel, the lowest and highest values
// present are stretched to 0 and 255 (int(ix·scale + offset), clamped).
func autoContrast(m *Image) *Image {
	lut := make([][256]uint8, m.Channels)
	for ch, h := range histograms(m) {
		lo, hi := 0, 255
		for lo < 256 && h[lo] == 0 {
			lo++
		}
		for hi >= 0 && h[hi] == 0 {
			hi--
		}
		if hi <= lo {
			lut[ch] = identityLUT()
			continue
		}
		scale := 255.0 / float64(hi-lo)
		offset := float64(-lo) * scale
		for ix := range 256 {
			v := int(float64(float64(ix)*scale) + offset)
			lut[ch][ix] = uint8(clampInt(v, 0, 255))
		}
	}
	return applyLUT(m, lut)
}

// equalize is ImageOps.equalize(img): per channel, step = (count − count of the highest value
// present) // 255, and value i maps to (step//2 + Σ_{j<i} h[j]) // step.
func equalize(m *Image) *Image {
	lut := make([][256]uint8, m.Channels)
	for ch, h := range histograms(m) {
		var total, last, nonzero int
		for _, c := range h {
			if c != 0 {
				total += c
				last = c
				nonzero++
			}
		}
		step := 0
		if nonzero > 1 {
			step = (total - last) / 255
		}
		if step == 0 {
			lut[ch] = identityLUT()
			continue
		}
		n := step / 2
		for i := range 256 {
			lut[ch][i] = uint8(min(n/step, 255))
			n += h[i]
		}
	}
	return applyLUT(m, lut)
}

func pointLUT(m *Image, f func(int) int) *Image {
	var l [256]uint8
	for i := range l {
		l[i] = uint8(f(i))
	}
	lut := make([][256]uint8, m.Channels)
	for ch := range lut {
		lut[ch] = l
	}
	return applyLUT(m, lut)
}

// invert is ImageOps.invert: 255 − v.
func invert(m *Image) *Image { return pointLUT(m, func(i int) int { return 255 - i }) }

// posterize keeps the bits high bits of each value (ImageOps.posterize; timm returns the image
// itself for bits ≥ 8).
func posterize(m *Image, bits int) *Image {
	if bits >= 8 {
		return copyImage(m)
	}
	mask := ^(1<<(8-bits) - 1)
	return pointLUT(m, func(i int) int { return i & mask })
}

// solarize is ImageOps.solarize: values at or above thresh become 255 − v.
func solarize(m *Image, thresh int) *Image {
	return pointLUT(m, func(i int) int {
		if i < thresh {
			return i
		}
		return 255 - i
	})
}

// solarizeAdd is timm's solarize_add: min(255, v + add) below thresh (128), v above.
func solarizeAdd(m *Image, add, thresh int) *Image {
	return pointLUT(m, func(i int) int {
		if i < thresh {
			return min(255, i+add)
		}
		return i
	})
}

// blend is Image.blend(degenerate, m, factor) (ImagingBlend): out = d + α·(m − d) in float32
// (α is a C float), truncated, clamped to 0..255 when α is outside [0, 1]. ImageEnhance's
// Color, Contrast, Brightness and Sharpness are this blend against their degenerate images.
func blend(d, m *Image, factor float64) *Image {
	a := float32(factor)
	out := NewImage(m.Width, m.Height, m.Channels)
	inside := a >= 0 && a <= 1
	for i, v := range m.Pix {
		d0 := d.Pix[i]
		t := float32(d0) + float32(a*float32(int(v)-int(d0)))
		if inside {
			out.Pix[i] = uint8(t)
		} else {
			out.Pix[i] = truncU8(t)
		}
	}
	return out
}

// luma is Pillow's RGB→L conversion (Convert.c's L24): (19595·R + 38470·G + 7471·B + 0x8000) >> 16.
func luma(r, g, b uint8) uint8 {
	return uint8((int(r)*19595 + int(g)*38470 + int(b)*7471 + 0x8000) >> 16)
}

// colorOp is ImageEnhance.Color: blend with the image converted to L and back.
func colorOp(m *Image, factor float64) *Image {
	d := copyImage(m)
	if m.Channels == 3 {
		for i := 0; i < len(d.Pix); i += 3 {
			l := luma(d.Pix[i], d.Pix[i+1], d.Pix[i+2])
			d.Pix[i], d.Pix[i+1], d.Pix[i+2] = l, l, l
		}
	}
	return blend(d, m, factor)
}

// contrast is ImageEnhance.Contrast: blend with a flat image of the L image's mean,
// int(mean + 0.5).
func contrast(m *Image, factor float64) *Image {
	var sum, n int
	if m.Channels == 3 {
		for i := 0; i < len(m.Pix); i += 3 {
			sum += int(luma(m.Pix[i], m.Pix[i+1], m.Pix[i+2]))
			n++
		}
	} else {
		for _, v := range m.Pix {
			sum += int(v)
		}
		n = len(m.Pix)
	}
	mean := uint8(int(float64(sum)/float64(n) + 0.5))
	d := NewImage(m.Width, m.Height, m.Channels)
	for i := range d.Pix {
		d.Pix[i] = mean
	}
	return blend(d, m, factor)
}

// brightness is ImageEnhance.Brightness: blend with black.
func brightness(m *Image, factor float64) *Image {
	return blend(NewImage(m.Width, m.Height, m.Channels), m, factor)
}

// sharpness is ImageEnhance.Sharpness: blend with ImageFilter.SMOOTH, the 3×3 kernel
// (1 1 1, 1 5 1, 1 1 1)/13 in float32 as ImagingFilter3x3 sums it (row below first, +0.5,
// truncated); the outermost rows and columns keep their values.
func sharpness(m *Image, factor float64) *Image {
	d := copyImage(m)
	w, h, c := m.Width, m.Height, m.Channels
	if w >= 3 && h >= 3 {
		k1, k5 := float32(1)/float32(13), float32(5)/float32(13)
		row := func(p []uint8, x int, kc float32) float32 {
			return float32(float32(float32(p[x-c])*k1)+float32(float32(p[x])*kc)) + float32(float32(p[x+c])*k1)
		}
		for y := 1; y < h-1; y++ {
			up, mid, down := m.Pix[(y-1)*w*c:y*w*c], m.Pix[y*w*c:(y+1)*w*c], m.Pix[(y+1)*w*c:(y+2)*w*c]
			out := d.Pix[y*w*c : (y+1)*w*c]
			for x := 1; x < w-1; x++ {
				for b := range c {
					i := x*c + b
					ss := float32(0.5)
					ss += row(down, i, k1)
					ss += row(mid, i, k5)
					ss += row(up, i, k1)
					out[i] = truncU8(ss)
				}
			}
		}
	}
	return blend(d, m, factor)
}

// affine is Image.transform(size, AFFINE, a, resample, fillcolor=fill) with a bilinear or
// bicubic filter (ImagingGenericTransform): output pixel (x, y) samples the input at
// (a0·(x+½) + a1·(y+½) + a2, a3·(x+½) + a4·(y+½) + a5); a point outside the input keeps the
// fill colour. The filters compute in float64 as Geometry.c does and truncate.
func affine(m *Image, a [6]float64, f filter, fill []uint8) *Image {
	w, h, c := m.Width, m.Height, m.Channels
	out := NewImage(w, h, c)
	bicubic := f.support == 2
	for y := range h {
		for x := range w {
			o := out.Pix[(y*w+x)*c : (y*w+x+1)*c]
			xin, yin := float64(x)+0.5, float64(y)+0.5
			xx := float64(float64(a[0]*xin)+float64(a[1]*yin)) + a[2]
			yy := float64(float64(a[3]*xin)+float64(a[4]*yin)) + a[5]
			if xx < 0 || xx >= float64(w) || yy < 0 || yy >= float64(h) {
				copy(o, fill)
				continue
			}
			if bicubic {
				bicubicAt(o, m, xx, yy)
			} else {
				bilinearAt(o, m, xx, yy)
			}
		}
	}
	return out
}

// floorC is Geometry.c's FLOOR: (int)floor(x) below 0, (int)x otherwise.
func floorC(x float64) int {
	if x < 0 {
		return int(math.Floor(x))
	}
	return int(x)
}

func bilinearAt(o []uint8, m *Image, xin, yin float64) {
	w, h, c := m.Width, m.Height, m.Channels
	xin -= 0.5
	yin -= 0.5
	x, y := floorC(xin), floorC(yin)
	dx, dy := xin-float64(x), yin-float64(y)
	x0, x1 := clampInt(x, 0, w-1)*c, clampInt(x+1, 0, w-1)*c
	lerp := func(a, b, d float64) float64 { return a + float64((b-a)*d) }
	r0 := m.Pix[clampInt(y, 0, h-1)*w*c:]
	for b := range c {
		v1 := lerp(float64(r0[x0+b]), float64(r0[x1+b]), dx)
		v2 := v1
		if y+1 >= 0 && y+1 < h {
			r1 := m.Pix[(y+1)*w*c:]
			v2 = lerp(float64(r1[x0+b]), float64(r1[x1+b]), dx)
		}
		o[b] = uint8(lerp(v1, v2, dy))
	}
}

// cubic is Geometry.c's BICUBIC macro: p1 + d·(p2 + d·(p3 + d·p4)).
func cubic(v1, v2, v3, v4, d float64) float64 {
	p1 := v2
	p2 := -v1 + v3
	p3 := 2*(v1-v2) + v3 - v4
	p4 := -v1 + v2 - v3 + v4
	return p1 + float64(d*(p2+float64(d*(p3+float64(d*p4)))))
}

func bicubicAt(o []uint8, m *Image, xin, yin float64) {
	w, h, c := m.Width, m.Height, m.Channels
	xin -= 0.5
	yin -= 0.5
	x, y := floorC(xin), floorC(yin)
	dx, dy := xin-float64(x), yin-float64(y)
	x--
	y--
	var xs [4]int
	for i := range xs {
		xs[i] = clampInt(x+i, 0, w-1) * c
	}
	rowAt := func(r []uint8, b int) float64 {
		return cubic(float64(r[xs[0]+b]), float64(r[xs[1]+b]), float64(r[xs[2]+b]), float64(r[xs[3]+b]), dx)
	}
	for b := range c {
		var v [4]float64
		v[0] = rowAt(m.Pix[clampInt(y, 0, h-1)*w*c:], b)
		for i := 1; i < 4; i++ {
			if y+i >= 0 && y+i < h {
				v[i] = rowAt(m.Pix[(y+i)*w*c:], b)
			} else {
				v[i] = v[i-1]
			}
		}
		r := cubic(v[0], v[1], v[2], v[3], dy)
		o[b] = truncU8(r)
	}
}

// rotate is Image.rotate(degrees, resample, fillcolor=fill) about the centre without expand:
// PIL's affine matrix, its cosines and sines rounded to 15 decimals as PIL rounds them
// (Python's round is exact decimal rounding, which strconv's 'f' formatting is too). An angle
// of 0 (mod 360) is PIL's copy; timm's magnitudes keep |degrees| ≤ 30, so PIL's other fast
// paths (90, 180, 270) never apply.
func rotate(m *Image, degrees float64, f filter, fill []uint8) *Image {
	angle := math.Mod(degrees, 360) // Python's %: the sign of the divisor
	if angle < 0 {
		angle += 360
	}
	if angle == 0 {
		return copyImage(m)
	}
	pi := math.Pi
	rad := -(angle * (pi / 180)) // math.radians: x·(π/180) with π/180 a double
	round15 := func(v float64) float64 {
		r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 15, 64), 64)
		return r
	}
	a := [6]float64{round15(math.Cos(rad)), round15(math.Sin(rad)), 0, round15(-math.Sin(rad)), round15(math.Cos(rad)), 0}
	cx, cy := float64(m.Width)/2, float64(m.Height)/2
	a[2] = float64(float64(a[0]*-cx)+float64(a[1]*-cy)) + a[2]
	a[5] = float64(float64(a[3]*-cx)+float64(a[4]*-cy)) + a[5]
	a[2] += cx
	a[5] += cy
	return affine(m, a, f, fill)
}

func histograms(m *Image) [][256]int {
	h := make([][256]int, m.Channels)
	c := m.Channels
	for i, v := range m.Pix {
		h[i%c][v]++
	}
	return h
}

func identityLUT() (l [256]uint8) {
	for i := range l {
		l[i] = uint8(i)
	}
	return l
}

func applyLUT(m *Image, lut [][256]uint8) *Image {
	out := NewImage(m.Width, m.Height, m.Channels)
	c := m.Channels
	for i, v := range m.Pix {
		out.Pix[i] = lut[i%c][v]
	}
	return out
}

func copyImage(m *Image) *Image {
	out := NewImage(m.Width, m.Height, m.Channels)
	copy(out.Pix, m.Pix)
	return out
}

// truncU8 is v clipped to [0, 255] and truncated toward zero, as Pillow's float-to-8-bit
// stores do.
func truncU8[T float32 | float64](v T) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v)
}
