package dataset

import (
	"image"
	"image/color"
)

// gifTrueColors puts back the colour of a GIF's transparent palette entry. Go's gif decoder
// replaces it by transparent black; PIL keeps the stored colour and convert("RGB") shows it, so
// pixels of that index must keep it too. It reads the stream up to the first image descriptor
// (header, colour tables, extension blocks); on anything unexpected it leaves m as it is.
func gifTrueColors(data []byte, m image.Image) image.Image {
	p, ok := m.(*image.Paletted)
	if !ok || len(data) < 13 {
		return m
	}
	var global []byte
	pos := 13
	if flags := data[10]; flags&0x80 != 0 {
		n := 3 << ((flags & 7) + 1)
		if pos+n > len(data) {
			return m
		}
		global = data[pos : pos+n]
		pos += n
	}
	trns := -1
	for pos < len(data) {
		switch data[pos] {
		case 0x21: // extension: label, then sub-blocks
			if pos+2 > len(data) {
				return m
			}
			label := data[pos+1]
			pos += 2
			first := true
			for pos < len(data) && data[pos] != 0 {
				n := int(data[pos])
				if pos+1+n > len(data) {
					return m
				}
				if label == 0xF9 && first && n >= 4 && data[pos+1]&1 != 0 {
					trns = int(data[pos+4])
				}
				first = false
				pos += 1 + n
			}
			pos++ // block terminator
		case 0x2C: // image descriptor: the first frame, which gif.Decode returned
			if pos+10 > len(data) || trns < 0 || trns >= len(p.Palette) {
				return m
			}
			table := global
			if flags := data[pos+9]; flags&0x80 != 0 {
				n := 3 << ((flags & 7) + 1)
				if pos+10+n > len(data) {
					return m
				}
				table = data[pos+10 : pos+10+n]
			}
			if 3*trns+3 > len(table) {
				return m
			}
			pal := make(color.Palette, len(p.Palette))
			copy(pal, p.Palette)
			pal[trns] = color.NRGBA{table[3*trns], table[3*trns+1], table[3*trns+2], 0}
			q := *p
			q.Palette = pal
			return &q
		default:
			return m
		}
	}
	return m
}
