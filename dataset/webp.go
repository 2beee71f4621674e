package dataset

import "image"

// Lossy WebP colour, as libwebp gives it to PIL: VP8 stores limited-range BT.601 YUV 4:2:0
// (not JPEG's full range, which is what Go's color.YCbCr assumes), upsampled with libwebp's
// "fancy" upsampler (dsp/upsampling.c) and converted with its 14-bit fixed point (dsp/yuv.h).

func webpMultHi(v, coeff int32) int32 { return (v * coeff) >> 8 }

func webpClip8(v int32) uint8 {
	const fix2 = 6
	const mask2 = (256 << fix2) - 1
	if v&^mask2 == 0 {
		return uint8(v >> fix2)
	}
	if v < 0 {
		return 0
	}
	return 255
}

func webpPixel(d []uint8, y, u, v uint8) {
	Y, U, V := int32(y), int32(u), int32(v)
	d[0] = webpClip8(webpMultHi(Y, 19077) + webpMultHi(V, 26149) - 14234)
	d[1] = webpClip8(webpMultHi(Y, 19077) - webpMultHi(U, 6419) - webpMultHi(V, 13320) + 8708)
	d[2] = webpClip8(webpMultHi(Y, 19077) + webpMultHi(U, 33050) - 17685)
}

// webpToRGB writes a 4:2:0 lossy WebP frame as interleaved RGB into dst (len 3·w·h).
func webpToRGB(dst []uint8, src *image.YCbCr) {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	if src.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		jpegToRGB(dst, src) // not produced by VP8; keep some colour rather than none
		return
	}
	cw := (w + 1) / 2
	yrow := func(y int) []uint8 { return src.Y[y*src.YStride : y*src.YStride+w] }
	urow := func(r int) []uint8 { return src.Cb[r*src.CStride : r*src.CStride+cw] }
	vrow := func(r int) []uint8 { return src.Cr[r*src.CStride : r*src.CStride+cw] }
	out := func(y int) []uint8 { return dst[y*w*3 : (y+1)*w*3] }
	// EmitFancyRGB: row 0 alone, then row pairs (2k-1, 2k) between chroma rows k-1 and k, then
	// the last row alone when the height is even.
	webpPair(yrow(0), nil, urow(0), vrow(0), urow(0), vrow(0), out(0), nil, w)
	y := 1
	for ; y+1 < h; y += 2 {
		k := (y + 1) / 2
		webpPair(yrow(y), yrow(y+1), urow(k-1), vrow(k-1), urow(k), vrow(k), out(y), out(y+1), w)
	}
	if y < h { // h even: the last row
		k := (h - 1) / 2
		webpPair(yrow(h-1), nil, urow(k), vrow(k), urow(k), vrow(k), out(h-1), nil, w)
	}
}

// webpPair is libwebp's UPSAMPLE_FUNC for one pair of output rows (bottom may be nil).
func webpPair(topY, botY, topU, topV, curU, curV []uint8, topDst, botDst []uint8, n int) {
	last := (n - 1) >> 1
	tlU, tlV := int32(topU[0]), int32(topV[0])
	lU, lV := int32(curU[0]), int32(curV[0])
	webpPixel(topDst[0:], topY[0], uint8((3*tlU+lU+2)>>2), uint8((3*tlV+lV+2)>>2))
	if botY != nil {
		webpPixel(botDst[0:], botY[0], uint8((3*lU+tlU+2)>>2), uint8((3*lV+tlV+2)>>2))
	}
	for x := 1; x <= last; x++ {
		tU, tV := int32(topU[x]), int32(topV[x])
		uU, uV := int32(curU[x]), int32(curV[x])
		avgU := tlU + tU + lU + uU + 8
		avgV := tlV + tV + lV + uV + 8
		d12U, d12V := (avgU+2*(tU+lU))>>3, (avgV+2*(tV+lV))>>3
		d03U, d03V := (avgU+2*(tlU+uU))>>3, (avgV+2*(tlV+uV))>>3
		webpPixel(topDst[3*(2*x-1):], topY[2*x-1], uint8((d12U+tlU)>>1), uint8((d12V+tlV)>>1))
		if 2*x < n {
			webpPixel(topDst[3*(2*x):], topY[2*x], uint8((d03U+tU)>>1), uint8((d03V+tV)>>1))
		}
		if botY != nil {
			webpPixel(botDst[3*(2*x-1):], botY[2*x-1], uint8((d03U+lU)>>1), uint8((d03V+lV)>>1))
			if 2*x < n {
				webpPixel(botDst[3*(2*x):], botY[2*x], uint8((d12U+uU)>>1), uint8((d12V+uV)>>1))
			}
		}
		tlU, tlV, lU, lV = tU, tV, uU, uV
	}
	if n&1 == 0 {
		webpPixel(topDst[3*(n-1):], topY[n-1], uint8((3*tlU+lU+2)>>2), uint8((3*tlV+lV+2)>>2))
		if botY != nil {
			webpPixel(botDst[3*(n-1):], botY[n-1], uint8((3*lU+tlU+2)>>2), uint8((3*lV+tlV+2)>>2))
		}
	}
}
