package dataset

import "image"

// JPEG colour, as libjpeg(-turbo) gives it to PIL: chroma upsampled with the "fancy" triangle
// filter (do_fancy_upsampling, libjpeg's default and PIL's), then YCbCr→RGB with libjpeg's
// 16-bit fixed-point tables (jdcolor.c). Go's own YCbCr→RGB uses nearest-neighbour chroma and
// another rounding, a few levels off at colour edges. The planes come from internal/jpeg, Go's
// decoder with libjpeg's islow IDCT, so the whole chain is libjpeg's to the bit.

var (
	jCrR, jCbB, jCrG, jCbG [256]int32
)

func init() {
	const scale = 16
	const half = 1 << (scale - 1)
	fix := func(x float64) int32 { return int32(x*(1<<scale) + 0.5) }
	for i := range 256 {
		x := int32(i - 128)
		jCrR[i] = (fix(1.40200)*x + half) >> scale
		jCbB[i] = (fix(1.77200)*x + half) >> scale
		jCrG[i] = -fix(0.71414) * x
		jCbG[i] = -fix(0.34414)*x + half
	}
}

func clampU8(v int32) uint8 {
	if uint32(v) <= 255 {
		return uint8(v)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// jpegToRGB writes src as interleaved RGB into dst (len 3·w·h), a row at a time.
func jpegToRGB(dst []uint8, src *image.YCbCr) {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	up := newChromaUpsampler(src, w, h)
	if up == nil { // a ratio libjpeg box-filters (4:1:1, 4:1:0): Go's indexing is the same
		for y := range h {
			d := dst[y*w*3 : (y+1)*w*3]
			for x := range w {
				ci := src.COffset(src.Rect.Min.X+x, src.Rect.Min.Y+y)
				yccPixel(d[3*x:3*x+3], src.Y[src.YOffset(src.Rect.Min.X+x, src.Rect.Min.Y+y)], src.Cb[ci], src.Cr[ci])
			}
		}
		return
	}
	cb, cr := make([]uint8, w), make([]uint8, w)
	for y := range h {
		up.row(cb, src.Cb, y)
		up.row(cr, src.Cr, y)
		yrow := src.Y[y*src.YStride : y*src.YStride+w]
		d := dst[y*w*3 : (y+1)*w*3]
		cb, cr := cb[:len(yrow)], cr[:len(yrow)]
		for x, yy := range yrow {
			// yccPixel, inlined by hand: this loop is a fifth of decoding.
			Y, b, r := int32(yy), cb[x], cr[x]
			p := d[3*x : 3*x+3 : 3*x+3]
			p[0] = clampU8(Y + jCrR[r])
			p[1] = clampU8(Y + (jCbG[b]+jCrG[r])>>16)
			p[2] = clampU8(Y + jCbB[b])
		}
	}
}

// yccPixel is jdcolor.c's ycc_rgb_convert for one pixel.
func yccPixel(d []uint8, y, cb, cr uint8) {
	Y := int32(y)
	d[0] = clampU8(Y + jCrR[cr])
	d[1] = clampU8(Y + (jCbG[cb]+jCrG[cr])>>16)
	d[2] = clampU8(Y + jCbB[cb])
}

// chromaUpsampler produces full-width chroma rows as libjpeg-turbo's jdsample.c does. Edge
// rows and columns are replicated, as libjpeg's context rows are.
type chromaUpsampler struct {
	ratio     image.YCbCrSubsampleRatio
	stride    int
	w, cw, ch int
	tmp       []uint8
}

// newChromaUpsampler returns nil for subsampling ratios libjpeg box-filters.
func newChromaUpsampler(src *image.YCbCr, w, h int) *chromaUpsampler {
	u := &chromaUpsampler{ratio: src.SubsampleRatio, stride: src.CStride, w: w}
	switch src.SubsampleRatio {
	case image.YCbCrSubsampleRatio444:
		u.cw, u.ch = w, h
	case image.YCbCrSubsampleRatio422:
		u.cw, u.ch = (w+1)/2, h
	case image.YCbCrSubsampleRatio420:
		u.cw, u.ch = (w+1)/2, (h+1)/2
	case image.YCbCrSubsampleRatio440:
		u.cw, u.ch = w, (h+1)/2
	default:
		return nil
	}
	u.tmp = make([]uint8, 2*u.cw)
	return u
}

// row writes output row y of plane c (w samples) into out.
func (u *chromaUpsampler) row(out, c []uint8, y int) {
	line := func(r int) []uint8 { return c[r*u.stride : r*u.stride+u.cw] }
	switch u.ratio {
	case image.YCbCrSubsampleRatio444:
		copy(out, line(y))
	case image.YCbCrSubsampleRatio422: // h2v1
		h2v1(u.tmp, line(y))
		copy(out, u.tmp[:u.w])
	case image.YCbCrSubsampleRatio420: // h2v2
		in := y / 2
		near, far := line(in), line(in)
		if y%2 == 0 && in > 0 {
			far = line(in - 1)
		} else if y%2 == 1 && in+1 < u.ch {
			far = line(in + 1)
		}
		h2v2(u.tmp, near, far)
		copy(out, u.tmp[:u.w])
	case image.YCbCrSubsampleRatio440: // h1v2
		in := y / 2
		near, far, bias := line(in), line(in), int32(1)
		if y%2 == 0 && in > 0 {
			far = line(in - 1)
		} else if y%2 == 1 {
			bias = 2
			if in+1 < u.ch {
				far = line(in + 1)
			}
		}
		for x := range u.w {
			out[x] = uint8((int32(near[x])*3 + int32(far[x]) + bias) >> 2)
		}
	}
}

// h2v1 is jdsample.c's h2v1_fancy_upsample for one row (box filter when under 3 samples).
func h2v1(out, in []uint8) {
	n := len(in)
	if n <= 2 {
		for i, v := range in {
			out[2*i], out[2*i+1] = v, v
		}
		return
	}
	out[0] = in[0]
	out[1] = uint8((int32(in[0])*3 + int32(in[1]) + 2) >> 2)
	for i := 1; i < n-1; i++ {
		v := int32(in[i]) * 3
		out[2*i] = uint8((v + int32(in[i-1]) + 1) >> 2)
		out[2*i+1] = uint8((v + int32(in[i+1]) + 2) >> 2)
	}
	out[2*n-2] = uint8((int32(in[n-1])*3 + int32(in[n-2]) + 1) >> 2)
	out[2*n-1] = in[n-1]
}

// h2v2 is jdsample.c's h2v2_fancy_upsample for one output row: near is the chroma row this
// output row falls in, far the next-nearest (above for even rows, below for odd).
func h2v2(out, near, far []uint8) {
	n := len(near)
	if n <= 2 { // libjpeg's h2v2_upsample: box filter
		for i, v := range near {
			out[2*i], out[2*i+1] = v, v
		}
		return
	}
	sum := func(i int) int32 { return int32(near[i])*3 + int32(far[i]) }
	this, next := sum(0), sum(1)
	out[0] = uint8((this*4 + 8) >> 4)
	out[1] = uint8((this*3 + next + 7) >> 4)
	last := this
	this = next
	for i := 1; i < n-1; i++ {
		next = sum(i + 1)
		out[2*i] = uint8((this*3 + last + 8) >> 4)
		out[2*i+1] = uint8((this*3 + next + 7) >> 4)
		last, this = this, next
	}
	out[2*n-2] = uint8((this*3 + last + 8) >> 4)
	out[2*n-1] = uint8((this*4 + 7) >> 4)
}
