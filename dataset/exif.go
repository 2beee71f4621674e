package dataset

import "encoding/binary"

// Note is a set of things PIL's conversion loses, which Decode reports without changing a
// pixel: the pixels are PIL's (and so torchvision's) either way, but a reader may want to know.
type Note uint8

const (
	// Note16Bit: 16-bit grey whose samples went over 255 and were clipped, as PIL's
	// convert("L") from mode "I"/"I;16" clips them (not scaled): the image may look white.
	Note16Bit Note = 1 << iota
	// NoteAlphaOnly: an image with alpha whose colour is one constant while alpha varies: the
	// picture is in the alpha channel, which convert("RGB") or ("L") drops, leaving it blank.
	NoteAlphaOnly
	// NoteEXIFRotated: an EXIF Orientation other than 1 (Image.Orientation), which PIL ignores
	// on open and torchvision's loader does not apply.
	NoteEXIFRotated
)

// orientation is the EXIF Orientation (1..8) of a JPEG (the first APP1 "Exif\0\0" segment
// before the scan), PNG (its eXIf chunk), WebP (its EXIF chunk) or TIFF (its IFD0) file, as
// PIL's getexif() finds it; 0 when there is none or it is malformed. Not read, as PIL would:
// XMP's tiff:Orientation and PNG's "Raw profile type exif" text chunk.
func orientation(data []byte, f format) int {
	switch f {
	case fmtJPEG:
		return exifOrientation(jpegEXIF(data))
	case fmtPNG:
		return exifOrientation(pngEXIF(data))
	case fmtWebP:
		return exifOrientation(webpEXIF(data))
	case fmtTIFF:
		return exifOrientation(data)
	}
	return 0
}

// jpegEXIF walks a JPEG's marker segments from SOI to SOS and returns the TIFF data of the
// first APP1 segment that starts "Exif\0\0", or nil.
func jpegEXIF(b []byte) []byte {
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xD8 {
		return nil
	}
	i := 2
	for i+1 < len(b) {
		if b[i] != 0xFF {
			return nil
		}
		m := b[i+1]
		i += 2
		switch {
		case m == 0xFF: // fill byte: the marker follows
			i--
			continue
		case m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7): // no length
			continue
		case m == 0xDA || m == 0xD9: // SOS, EOI: no more metadata segments
			return nil
		}
		if i+2 > len(b) {
			return nil
		}
		n := int(b[i])<<8 | int(b[i+1])
		if n < 2 || i+n > len(b) {
			return nil
		}
		seg := b[i+2 : i+n]
		if m == 0xE1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			return seg[6:]
		}
		i += n
	}
	return nil
}

// pngEXIF returns the data of a PNG's first eXIf chunk, or nil.
func pngEXIF(b []byte) []byte {
	i := 8
	for i+8 <= len(b) {
		n := binary.BigEndian.Uint32(b[i:])
		typ := string(b[i+4 : i+8])
		if uint64(n) > uint64(len(b)-i-8) {
			return nil
		}
		if typ == "eXIf" {
			return b[i+8 : i+8+int(n)]
		}
		if typ == "IEND" {
			return nil
		}
		i += 8 + int(n) + 4 // data, CRC
	}
	return nil
}

// webpEXIF returns the data of a WebP's first EXIF chunk, or nil.
func webpEXIF(b []byte) []byte {
	i := 12
	for i+8 <= len(b) {
		n := binary.LittleEndian.Uint32(b[i+4:])
		if uint64(n) > uint64(len(b)-i-8) {
			return nil
		}
		if string(b[i:i+4]) == "EXIF" {
			return b[i+8 : i+8+int(n)]
		}
		i += 8 + int(n) + int(n&1) // chunks are padded to even sizes
	}
	return nil
}

// exifOrientation reads tag 0x0112 (Orientation) from IFD0 of TIFF-structured EXIF data
// ("Exif\0\0" prefix allowed, as PIL's Exif.load allows it): a SHORT or LONG, count 1,
// 1..8. Anything else, or data that does not hold together, gives 0.
func exifOrientation(b []byte) int {
	if len(b) >= 6 && string(b[:6]) == "Exif\x00\x00" {
		b = b[6:]
	}
	if len(b) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(b[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(b[2:]) != 42 {
		return 0
	}
	off := uint64(bo.Uint32(b[4:]))
	if off+2 > uint64(len(b)) {
		return 0
	}
	n := uint64(bo.Uint16(b[off:]))
	if off+2+12*n > uint64(len(b)) {
		return 0
	}
	for k := range n {
		e := b[off+2+12*k : off+2+12*k+12]
		if bo.Uint16(e) != 0x0112 {
			continue
		}
		if bo.Uint32(e[4:]) != 1 {
			return 0
		}
		var v int
		switch bo.Uint16(e[2:]) {
		case 3: // SHORT
			v = int(bo.Uint16(e[8:]))
		case 4: // LONG
			v = int(bo.Uint32(e[8:]))
		default:
			return 0
		}
		if v < 1 || v > 8 {
			return 0
		}
		return v
	}
	return 0
}
