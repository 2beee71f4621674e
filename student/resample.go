package student

// Resampling the positional embedding to another patch grid, as timm's
// resample_abs_pos_embed does when a checkpoint is loaded at another image
// size: the prefix rows (class, distillation token) are kept, and the grid
// of the other rows, seen as a (D, g, g) image, is resized to (D, G, G) by
// F.interpolate(mode='bicubic', antialias=True, align_corners=False).
//
// PyTorch's antialiased bicubic (aten/src/ATen/native/cpu/UpSampleKernel.cpp,
// as in torch 1.13) is PIL's: Keys' cubic with a = -0.5 (not the -0.75 of
// the plain bicubic), widened by the scale when downsampling, each output's
// weights normalised to sum to one, applied separably, the width first and
// then the height, in float32. This file follows it step for step so the
// result matches Debian's torch to float32 rounding
// (testdata/golden/pos_embed_resample.bin, scripts/pos_embed_golden.py).

// aaCubic is PyTorch's aa_filter for bicubic: Keys' kernel with a = -0.5.
func aaCubic(x float32) float32 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	switch {
	case x < 1:
		return ((a+2)*x-(a+3))*x*x + 1
	case x < 2:
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// aaWeights are, for each of out output positions along one axis of in
// inputs, the first input it reads and the normalised weights of the inputs
// from there (PyTorch's _compute_weights_aa).
func aaWeights(in, out int) (first []int, weights [][]float32) {
	scale := float32(in) / float32(out) // area_pixel_compute_scale, align_corners false
	support, invscale := float32(2), float32(1)
	if scale >= 1 {
		support, invscale = 2*scale, 1/scale
	}
	first, weights = make([]int, out), make([][]float32, out)
	for i := range out {
		center := scale * (float32(i) + 0.5)
		xmin := max(int(center-support+0.5), 0) // C's cast truncates toward zero, as Go's
		xsize := min(int(center+support+0.5), in) - xmin
		w := make([]float32, xsize)
		var total float32
		for j := range w {
			w[j] = aaCubic((float32(j+xmin) - center + 0.5) * invscale)
			total += w[j]
		}
		if total != 0 {
			for j := range w {
				w[j] /= total
			}
		}
		first[i], weights[i] = xmin, w
	}
	return first, weights
}

// resamplePosEmbed returns the positional embedding src, (prefix+g·g, D)
// row-major, resampled to (prefix+G·G, D): the prefix rows copied, the
// g×g grid interpolated to G×G. g == G returns a copy.
func resamplePosEmbed(src []float32, prefix, g, G, D int) []float32 {
	dst := make([]float32, (prefix+G*G)*D)
	copy(dst, src[:prefix*D])
	if g == G {
		copy(dst, src)
		return dst
	}
	fx, wx := aaWeights(g, G)
	grid := src[prefix*D:]        // (g, g, D)
	tmp := make([]float32, g*G*D) // (g, G, D): the width resampled
	for y := range g {
		for x := range G {
			out := tmp[(y*G+x)*D : (y*G+x+1)*D]
			for j, w := range wx[x] {
				in := grid[(y*g+fx[x]+j)*D : (y*g+fx[x]+j+1)*D]
				for d := range D {
					if j == 0 {
						out[d] = in[d] * w
					} else {
						out[d] += in[d] * w
					}
				}
			}
		}
	}
	fy, wy := aaWeights(g, G)
	res := dst[prefix*D:] // (G, G, D): then the height
	for y := range G {
		for x := range G {
			out := res[(y*G+x)*D : (y*G+x+1)*D]
			for j, w := range wy[y] {
				in := tmp[((fy[y]+j)*G+x)*D : ((fy[y]+j)*G+x+1)*D]
				for d := range D {
					if j == 0 {
						out[d] = in[d] * w
					} else {
						out[d] += in[d] * w
					}
				}
			}
		}
	}
	return dst
}
