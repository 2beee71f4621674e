package dataset

// Transpose returns m turned upright for an EXIF orientation, as PIL's ImageOps.exif_transpose
// does: 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270,
// 7 TRANSVERSE, 8 ROTATE_90 (5 to 8 swap width and height). For any other orientation (0: none,
// 1: upright) it returns m itself. Otherwise the result is a new image; m is left as it was.
// The result keeps m's Notes (NoteEXIFRotated says the file asked for this) and has
// Orientation 0, as the transposed PIL image's getexif() has no Orientation tag.
func Transpose(m *Image, orientation int) *Image {
	w, h, c := m.Width, m.Height, m.Channels
	// Output pixel (x, y) is source pixel base + x·dx + y·dy (in pixels).
	var base, dx, dy int
	ow, oh := w, h
	switch orientation {
	case 2: // FLIP_LEFT_RIGHT: (W-1-x, y)
		base, dx, dy = w-1, -1, w
	case 3: // ROTATE_180: (W-1-x, H-1-y)
		base, dx, dy = (h-1)*w+w-1, -1, -w
	case 4: // FLIP_TOP_BOTTOM: (x, H-1-y)
		base, dx, dy = (h-1)*w, 1, -w
	case 5: // TRANSPOSE: (y, x)
		base, dx, dy = 0, w, 1
	case 6: // ROTATE_270, a quarter turn clockwise: (y, H-1-x)
		base, dx, dy = (h-1)*w, -w, 1
	case 7: // TRANSVERSE: (W-1-y, H-1-x)
		base, dx, dy = (h-1)*w+w-1, -w, -1
	case 8: // ROTATE_90, a quarter turn anticlockwise: (W-1-y, x)
		base, dx, dy = w-1, w, -1
	default:
		return m
	}
	if orientation >= 5 {
		ow, oh = h, w
	}
	out := &Image{Width: ow, Height: oh, Channels: c, Pix: make([]uint8, len(m.Pix)), Notes: m.Notes}
	if w == 0 || h == 0 {
		return out
	}
	o := 0
	for y := range oh {
		s := base + y*dy
		for range ow {
			copy(out.Pix[o:o+c], m.Pix[s*c:s*c+c])
			o += c
			s += dx
		}
	}
	return out
}

// upright is m transposed for its own EXIF orientation when cfg.EXIFTranspose is set.
func upright(m *Image, cfg Config) *Image {
	if !cfg.EXIFTranspose {
		return m
	}
	return Transpose(m, m.Orientation)
}
