package dataset

import "image"

// JPEG colour, as libjpeg(-turbo) gives it to PIL: chroma upsampled with the "fancy" triangle
// filter (do_fancy_upsampling, libjpeg's default and PIL's), then YCbCr→RGB with libjpeg's
// 16-bit fixed-point tables (jdcolor.c). Go's own YCbCr→RGB uses nearest-neighbour chroma and
// another rounding, a few levels off at colour edges. Only the IDCT (Go's, not libjpeg's islow)
// still differs, by at most a level or so on some samples.

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
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// jpegToRGB writes src as interleaved RGB into dst (len 3·w·h).
func jpegToRGB(dst []uint8, src *image.YCbCr) {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	cb := upsampleJPEG(src.Cb, src.CStride, w, h, src.SubsampleRatio)
	cr := upsampleJPEG(src.Cr, src.CStride, w, h, src.SubsampleRatio)
	cbs, crs := w, w
	if cb == nil { // no upsampling method of libjpeg's to copy: Go's indexing (box filter)
		cb, cr, cbs, crs = nil, nil, 0, 0
	}
	for y := range h {
		yrow := src.Y[y*src.YStride : y*src.YStride+w]
		d := dst[y*w*3 : (y+1)*w*3]
		for x, yy := range yrow {
			var b, r uint8
			if cb != nil {
				b, r = cb[y*cbs+x], cr[y*crs+x]
			} else {
				ci := src.COffset(src.Rect.Min.X+x, src.Rect.Min.Y+y)
				b, r = src.Cb[ci], src.Cr[ci]
			}
			Y := int32(yy)
			d[3*x] = clampU8(Y + jCrR[r])
			d[3*x+1] = clampU8(Y + (jCbG[b]+jCrG[r])>>16)
			d[3*x+2] = clampU8(Y + jCbB[b])
		}
	}
}

// upsampleJPEG returns a w×h plane of a chroma component upsampled as libjpeg-turbo's
// jdsample.c does, or nil for subsampling ratios that libjpeg box-filters (4:1:1, 4:1:0), where
// Go's own indexing gives the same samples. Edge rows and columns are replicated, as libjpeg's
// context rows are.
func upsampleJPEG(c []uint8, stride, w, h int, ratio image.YCbCrSubsampleRatio) []uint8 {
	out := make([]uint8, w*h)
	switch ratio {
	case image.YCbCrSubsampleRatio444:
		for y := range h {
			copy(out[y*w:(y+1)*w], c[y*stride:y*stride+w])
		}
	case image.YCbCrSubsampleRatio422: // h2v1
		cw := (w + 1) / 2
		row := make([]uint8, 2*cw)
		for y := range h {
			h2v1(row, c[y*stride:y*stride+cw])
			copy(out[y*w:(y+1)*w], row)
		}
	case image.YCbCrSubsampleRatio420: // h2v2
		cw, ch := (w+1)/2, (h+1)/2
		row := make([]uint8, 2*cw)
		for y := range h {
			in := y / 2
			near := c[in*stride : in*stride+cw]
			far := near
			if y%2 == 0 && in > 0 {
				far = c[(in-1)*stride : (in-1)*stride+cw]
			} else if y%2 == 1 && in+1 < ch {
				far = c[(in+1)*stride : (in+1)*stride+cw]
			}
			h2v2(row, near, far)
			copy(out[y*w:(y+1)*w], row)
		}
	case image.YCbCrSubsampleRatio440: // h1v2
		ch := (h + 1) / 2
		for y := range h {
			in := y / 2
			near := c[in*stride : in*stride+w]
			far, bias := near, int32(1)
			if y%2 == 0 && in > 0 {
				far = c[(in-1)*stride : (in-1)*stride+w]
			} else if y%2 == 1 {
				bias = 2
				if in+1 < ch {
					far = c[(in+1)*stride : (in+1)*stride+w]
				}
			}
			for x := range w {
				out[y*w+x] = uint8((int32(near[x])*3 + int32(far[x]) + bias) >> 2)
			}
		}
	default:
		return nil
	}
	return out
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
