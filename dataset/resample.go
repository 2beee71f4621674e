package dataset

import (
	"math"
	"sync"
)

// PIL's ImagingResample (libImaging/Resample.c) for 8-bit images, which torchvision's Resize and
// resized_crop call on PIL images: separable, horizontal pass first into an 8-bit intermediate,
// then vertical; when shrinking by s the filter's support is stretched by s (that is the
// antialiasing); weights are normalised per output pixel, then rounded to 22-bit fixed point.
// Every step is reproduced, so outputs equal PIL's bit for bit.

const precisionBits = 32 - 8 - 2 // Resample.c's PRECISION_BITS

type filter struct {
	fn      func(float64) float64
	support float64
}

var (
	bilinearFilter = filter{func(x float64) float64 {
		x = math.Abs(x)
		if x < 1 {
			return 1 - x
		}
		return 0
	}, 1}
	bicubicFilter = filter{func(x float64) float64 {
		const a = -0.5
		x = math.Abs(x)
		if x < 1 {
			return ((a+2)*x-(a+3))*x*x + 1
		}
		if x < 2 {
			return (((x-5)*x+8)*x - 4) * a
		}
		return 0
	}, 2}
)

// axis holds one direction's resampling for a window of outputs: for the window's i-th output,
// inputs lo[i]..lo[i]+n[i]-1 weighted by k[i*ksize:].
type axis struct {
	lo, n []int
	k     []int32
	ksize int
}

// span is one direction of a resample: output sample i (of out) is centred on source
// coordinate (off + i + 0.5)·scale. PIL's box (in0, in1) is off = in0/scale with
// scale = (in1-in0)/out; for Resize and resized_crop off is 0. Writing the centre this way lets
// view 0 reproduce Resize's arithmetic exactly (see Render).
type span struct {
	off, scale float64
	out        int
}

// identity reports whether PIL would skip this pass (same size, box = whole input).
func (s span) identity(in int) bool { return in == s.out && s.off == 0 && s.scale == 1 }

// makeAxis is precompute_coeffs + normalize_coeffs_8bpc for inSize input samples, computed
// only for outputs from..from+count-1 (a centre crop needs no others; computing only those keeps
// memory bounded by the crop when a thin image's resized side is huge).
func makeAxis(inSize int, sp span, f filter, from, count int) axis {
	scale := sp.scale
	filterscale := max(scale, 1)
	support := f.support * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	a := axis{lo: make([]int, count), n: make([]int, count), k: make([]int32, count*ksize), ksize: ksize}
	w := make([]float64, ksize)
	ss := 1 / filterscale
	for i := range count {
		xx := from + i
		center := (sp.off + float64(xx) + 0.5) * scale
		// int() truncates toward zero, as C's (int) cast does.
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), inSize) - xmin
		var ww float64
		for x := 0; x < xmax; x++ {
			w[x] = f.fn((float64(x+xmin) - center + 0.5) * ss)
			ww += w[x]
		}
		k := a.k[i*ksize : (i+1)*ksize]
		for x := 0; x < xmax; x++ {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				k[x] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				k[x] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		a.lo[i], a.n[i] = xmin, max(xmax, 0)
	}
	return a
}

func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// resampleWindow resamples the part of src inside the integer rectangle (cx, cy, cw, ch) (the
// image PIL sees: the whole image for Resize, the crop for resized_crop) along spans sx, sy,
// and hands emit the output rows oy..oy+oh-1, columns ox..ox+ow-1, as 8-bit interleaved
// samples (y counts from 0; row is reused after emit returns). Computing only this window
// equals cropping the full result: each output sample depends only on its own weights.
func resampleWindow(src *Image, cx, cy, cw, ch int, sx, sy span, f filter, ox, oy, ow, oh int, emit func(y int, row []uint8)) {
	c := src.Channels
	stride := ow * c
	hx, hy := sx.identity(cw), sy.identity(ch)

	// Rows of the (cropped) source the vertical pass reads.
	var ay axis
	y0, y1 := oy, oy+oh
	if !hy {
		ay = makeAxis(ch, sy, f, oy, oh)
		y0, y1 = ay.lo[0], 0
		for i := range oh {
			y0 = min(y0, ay.lo[i])
			y1 = max(y1, ay.lo[i]+ay.n[i])
		}
	}
	rows := y1 - y0
	bufs := resamplePool.Get().(*resampleBufs)
	defer resamplePool.Put(bufs)
	tmp := grow(&bufs.tmp, rows*stride)

	// Horizontal pass into an 8-bit intermediate, as PIL's.
	if hx {
		for y := range rows {
			s := src.Pix[((cy+y0+y)*src.Width+cx+ox)*c:]
			copy(tmp[y*stride:(y+1)*stride], s[:stride])
		}
	} else {
		ax := makeAxis(cw, sx, f, ox, ow)
		first := ((cy+y0)*src.Width + cx) * c
		last := ((cy+y0+rows-1)*src.Width + cx + cw) * c
		hpass(tmp, src.Pix[first:last], src.Width*c, rows, c, ax, ow)
	}
	if hy {
		for y := range oh {
			emit(y, tmp[y*stride:(y+1)*stride])
		}
		return
	}
	out := grow(&bufs.row, oh*stride)
	vpass(out, tmp, stride, ay, y0, oh, grow(&bufs.acc, stride))
	for yy := range oh {
		emit(yy, out[yy*stride:(yy+1)*stride])
	}
}

// useC selects the C passes (resample_cgo.go) where the package is built with cgo; tests set
// it false to compare them with the Go passes, which are the reference and the purego build's.
var useC = haveCResample

// hpass resamples rows of src (row y at y·srcStride, c samples a pixel) along ax into dst
// (rows of ow·c samples).
func hpass(dst, src []uint8, srcStride, rows, c int, ax axis, ow int) {
	if useC {
		hpassC(dst, src, srcStride, rows, c, ax, ow)
		return
	}
	hpassGo(dst, src, srcStride, rows, c, ax, ow)
}

func hpassGo(dst, src []uint8, srcStride, rows, c int, ax axis, ow int) {
	stride := ow * c
	for y := range rows {
		s := src[y*srcStride:]
		d := dst[y*stride : (y+1)*stride]
		if c == 1 {
			for xx := range ow {
				lo, n := ax.lo[xx], ax.n[xx]
				k := ax.k[xx*ax.ksize : xx*ax.ksize+n]
				p := s[lo : lo+n]
				var s0 int32 = 1 << (precisionBits - 1)
				for x, kx := range k {
					s0 += int32(p[x]) * kx
				}
				d[xx] = clip8(s0)
			}
			continue
		}
		for xx := range ow {
			lo, n := ax.lo[xx], ax.n[xx]
			k := ax.k[xx*ax.ksize : xx*ax.ksize+n]
			p := s[3*lo : 3*(lo+n)]
			var s0, s1, s2 int32 = 1 << (precisionBits - 1), 1 << (precisionBits - 1), 1 << (precisionBits - 1)
			for x, kx := range k {
				q := p[3*x : 3*x+3 : 3*x+3]
				s0 += int32(q[0]) * kx
				s1 += int32(q[1]) * kx
				s2 += int32(q[2]) * kx
			}
			e := d[3*xx : 3*xx+3 : 3*xx+3]
			e[0], e[1], e[2] = clip8(s0), clip8(s1), clip8(s2)
		}
	}
}

// vpass resamples the intermediate tmp (rows of stride samples, the first being source row
// y0) along ay into oh rows of out; acc (len stride) is scratch. Whole rows are accumulated
// (row-major, so memory is read in order).
func vpass(out, tmp []uint8, stride int, ay axis, y0, oh int, acc []int32) {
	if useC {
		vpassC(out, tmp, stride, ay, y0, oh, acc)
		return
	}
	vpassGo(out, tmp, stride, ay, y0, oh, acc)
}

func vpassGo(out, tmp []uint8, stride int, ay axis, y0, oh int, acc []int32) {
	for yy := range oh {
		lo, n := ay.lo[yy]-y0, ay.n[yy]
		k := ay.k[yy*ay.ksize : yy*ay.ksize+n]
		for i := range acc {
			acc[i] = 1 << (precisionBits - 1)
		}
		for y, ky := range k {
			r := tmp[(lo+y)*stride : (lo+y+1)*stride]
			r = r[:len(acc)]
			for i, v := range r {
				acc[i] += int32(v) * ky
			}
		}
		row := out[yy*stride : (yy+1)*stride]
		for i, v := range acc {
			row[i] = clip8(v)
		}
	}
}

type resampleBufs struct {
	tmp, row []uint8
	acc      []int32
}

// resamplePool keeps the intermediate buffers (a few hundred KB per 224×224 view) between
// calls: decode workers render one view after another.
var resamplePool = sync.Pool{New: func() any { return new(resampleBufs) }}

func grow[T any](b *[]T, n int) []T {
	if cap(*b) < n {
		*b = make([]T, n)
	}
	*b = (*b)[:n]
	return *b
}
