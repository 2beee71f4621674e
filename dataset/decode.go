package dataset

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"io"

	"github.com/deitkd/deitkd/dataset/internal/jpeg"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// Sentinel errors of decoding. Errors from Decode wrap exactly one of them, so callers can tell
// a file that is not an image from one that is broken.
var (
	ErrEmpty    = errors.New("dataset: empty file")
	ErrNotImage = errors.New("dataset: not an image")
	ErrTooLarge = errors.New("dataset: image dimensions too large")
	ErrCorrupt  = errors.New("dataset: corrupt or truncated image")
	// ErrUnsupported: a real image that these decoders cannot read (arithmetic-coded or
	// 12-bit JPEG, netpbm .ppm/.pgm, ...), which PIL might.
	ErrUnsupported = errors.New("dataset: unsupported image format or feature")
	ErrChannels    = errors.New("dataset: channels must be 1 or 3")
	// ErrBadConfig is wrapped by errors of Config, ViewConfig and the render functions' arguments.
	ErrBadConfig = errors.New("dataset: bad preprocessing config")
)

// MaxPixels is the largest width×height Decode accepts: 2^26 pixels (e.g. 8192×8192), far above
// any training image, small enough that a forged header cannot make us allocate gigabytes.
const MaxPixels = 1 << 26

// Image is a decoded 8-bit image: Height rows of Width pixels of Channels (1 or 3) interleaved
// samples, as PIL holds an "L" or "RGB" image. Decode also says what PIL's conversion lost
// (Notes) and the file's EXIF orientation, which it does not apply.
type Image struct {
	Width, Height, Channels int
	Pix                     []uint8 // len Width*Height*Channels, row-major
	Notes                   Note    // set by Decode; pixels are PIL's whatever they say
	Orientation             int     // EXIF Orientation 1..8 as PIL's getexif() reads it; 0: none
}

// NewImage returns a zeroed image.
func NewImage(width, height, channels int) *Image {
	return &Image{Width: width, Height: height, Channels: channels, Pix: make([]uint8, width*height*channels)}
}

type format int

const (
	fmtUnknown format = iota
	fmtJPEG
	fmtPNG
	fmtGIF
	fmtWebP
	fmtBMP
	fmtTIFF
	fmtPNM
)

// sniff recognises a format by its magic bytes, never by a file name.
func sniff(b []byte) format {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return fmtJPEG
	case len(b) >= 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n":
		return fmtPNG
	case len(b) >= 6 && (string(b[:6]) == "GIF87a" || string(b[:6]) == "GIF89a"):
		return fmtGIF
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return fmtWebP
	case len(b) >= 2 && string(b[:2]) == "BM":
		return fmtBMP
	case len(b) >= 4 && (string(b[:4]) == "II*\x00" || string(b[:4]) == "MM\x00*"):
		return fmtTIFF
	case len(b) >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6' && (b[2] == ' ' || b[2] == '\n' || b[2] == '\r' || b[2] == '\t'):
		return fmtPNM
	}
	return fmtUnknown
}

// Decode decodes an image file's bytes, recognised by content, into channels (1 or 3) 8-bit
// samples exactly as PIL's Image.open(f).convert("L") or .convert("RGB") would (see convert).
// The dimensions are checked from the header before any pixel is decoded.
//
// JPEGs go through libjpeg-turbo when the package is built with cgo (and without the purego
// tag), with PIL's settings, so the pixels are the same either way; a JPEG libjpeg-turbo
// refuses goes through the pure-Go decoder. CMYK and YCCK JPEGs are PIL's to the bit in both
// builds (libjpeg's CMYK output, inverted as PIL's "CMYK;I" raw mode, then cmyk2rgb; see
// convert), except a 4-component JPEG without Adobe's APP14 marker, which libjpeg and PIL
// read as CMYK and the pure-Go decoder refuses (ErrUnsupported).
// libjpeg-turbo, as PIL through it, carries on past damaged entropy-coded data (a warning,
// not an error) where the pure-Go decoder stops: of 1,500 copies of a JPEG with 1 to 4 random
// bits flipped, 122 decode with cgo and fail with ErrCorrupt under -tags purego. A file cut
// short fails in both, as in PIL.
func Decode(data []byte, channels int) (*Image, error) {
	return decode(data, channels, 0, 0, haveTurbo, nil)
}

// draftDenom is JpegImagePlugin.draft's scale for a W×H image requested at w×h:
// min(W//w, H//h), rounded down to 8, 4, 2 or 1.
func draftDenom(W, H, w, h int) int {
	if w <= 0 || h <= 0 {
		return 1
	}
	s := min(W/w, H/h)
	for _, d := range []int{8, 4, 2} {
		if s >= d {
			return d
		}
	}
	return 1
}

// decode is Decode, and with draftW, draftH > 0 Decode with PIL's Image.draft(mode, (w, h))
// applied first: a JPEG at least twice as large as w×h on both sides is decoded at 1/2, 1/4
// or 1/8 scale (the smallest that keeps both sides at least w and h; libjpeg's reduced-size
// IDCT), so the image returned is smaller than the file's. Pixels differ from Decode's (see
// Config.Draft for how much); with the scale they equal PIL's after draft, CMYK and YCCK
// JPEGs included (PIL drafts those too, keeping them CMYK). Other formats and pure-Go builds
// (-tags purego) decode as Decode does. turbo false forces the pure-Go decoder (tests compare).
// A JPEG decoded by libjpeg-turbo lands in buf when its capacity suffices (the caller then
// owns the image only until it reuses buf); nil allocates.
func decode(data []byte, channels, draftW, draftH int, turbo bool, buf []uint8) (*Image, error) {
	if channels != 1 && channels != 3 {
		return nil, fmt.Errorf("%w, not %d", ErrChannels, channels)
	}
	if len(data) == 0 {
		return nil, ErrEmpty
	}
	f := sniff(data)
	if f == fmtUnknown {
		return nil, ErrNotImage
	}
	if f == fmtPNM {
		return nil, fmt.Errorf("%w: netpbm (.ppm/.pgm)", ErrUnsupported)
	}
	var cfgFn func(io.Reader) (image.Config, error)
	var decFn func(io.Reader) (image.Image, error)
	switch f {
	case fmtJPEG:
		cfgFn, decFn = jpeg.DecodeConfig, jpeg.DecodeRaw
	case fmtPNG:
		cfgFn, decFn = png.DecodeConfig, png.Decode
	case fmtGIF:
		cfgFn, decFn = gif.DecodeConfig, gif.Decode
	case fmtWebP:
		cfgFn, decFn = webp.DecodeConfig, webp.Decode
	case fmtBMP:
		cfgFn, decFn = bmp.DecodeConfig, bmp.Decode
	case fmtTIFF:
		cfgFn, decFn = tiff.DecodeConfig, tiff.Decode
	}
	cfg, err := cfgFn(bytes.NewReader(data))
	if err != nil {
		return nil, decodeError("header", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("%w: %d×%d", ErrCorrupt, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, fmt.Errorf("%w: %d×%d is over %d pixels", ErrTooLarge, cfg.Width, cfg.Height, MaxPixels)
	}
	if f == fmtJPEG && turbo {
		denom := draftDenom(cfg.Width, cfg.Height, draftW, draftH)
		if m, err := decodeJPEGTurbo(data, channels, cfg.Width, cfg.Height, denom, buf); err == nil {
			setOrientation(m, data, f)
			return m, nil
		}
	}
	m, err := decFn(bytes.NewReader(data))
	if err != nil {
		return nil, decodeError("pixels", err)
	}
	if f == fmtGIF {
		m = gifTrueColors(data, m)
	}
	b := m.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 || int64(b.Dx())*int64(b.Dy()) > MaxPixels {
		return nil, fmt.Errorf("%w: decoded %d×%d", ErrCorrupt, b.Dx(), b.Dy())
	}
	out := convert(m, f, channels)
	setOrientation(out, data, f)
	return out, nil
}

// setOrientation records the file's EXIF orientation, and NoteEXIFRotated when it is not 1.
func setOrientation(m *Image, data []byte, f format) {
	m.Orientation = orientation(data, f)
	if m.Orientation > 1 {
		m.Notes |= NoteEXIFRotated
	}
}

// decodeError sorts a decoder's error: features it lacks are ErrUnsupported, anything else
// (bad data, early end) ErrCorrupt.
func decodeError(stage string, err error) error {
	var je jpeg.UnsupportedError
	var pe png.UnsupportedError
	var te tiff.UnsupportedError
	if errors.As(err, &je) || errors.As(err, &pe) || errors.As(err, &te) {
		return fmt.Errorf("%w: %s: %v", ErrUnsupported, stage, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrCorrupt, stage, err)
}

// convert turns a decoded Go image into PIL's "RGB" or "L" pixels.
//
// PIL's rules, which Go's color.Color.RGBA() does not follow and so are written out here:
//   - alpha is dropped, never premultiplied (RGBA→RGB keeps the colour of transparent pixels);
//   - L = (R·19595 + G·38470 + B·7471 + 0x8000) >> 16 (ITU-R 601-2 in 16-bit fixed point,
//     checked against PIL 9.4 on all 2^24 colours);
//   - 16-bit grey (PIL mode "I") is clamped to 0..255, not scaled; 16-bit colour keeps the high
//     byte (PIL's "RGB;16B" raw mode);
//   - CMYK → RGB: nk = 255-K, R = nk - C·nk/255 with PIL's MULDIV255 rounding, where a JPEG's
//     C, M, Y, K are its stored samples inverted (PIL's "CMYK;I": Adobe's convention, which PIL
//     assumes for every CMYK JPEG); CMYK → L goes through RGB, as PIL's convert("L") does;
//   - CMYK/YCCK JPEG: libjpeg's fancy upsampling of subsampled components and, for YCCK, its
//     YCbCr tables, then the above (fourToRGB; libjpeg-turbo itself in cgo builds);
//   - YCbCr JPEG: libjpeg's islow IDCT (internal/jpeg), fancy (triangle) chroma upsampling and
//     fixed-point colour conversion (jpeg.go); lossy WebP: libwebp's (webp.go).
//
// Known differences from PIL, none in the test set: a 4-component JPEG without an Adobe
// marker is refused under -tags purego (libjpeg-turbo decodes it as CMYK, as PIL does); a
// GIF whose first frame does not cover its logical screen gives the frame alone; EXIF
// orientation is not applied, as PIL's open and torchvision's loader do not apply it (Decode
// reports it: Image.Orientation, NoteEXIFRotated); BMP and TIFF are decoded by
// golang.org/x/image without fidelity tests.
func convert(m image.Image, f format, channels int) *Image {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	out := NewImage(w, h, channels)
	var rgb *Image // 3-channel intermediate when converting colour to L
	dst := out
	if channels == 1 {
		switch m.(type) {
		case *image.Gray, *image.Gray16:
		default:
			rgb = NewImage(w, h, 3)
			dst = rgb
		}
	}
	switch src := m.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := src.Pix[y*src.Stride : y*src.Stride+w]
			putGrayRow(dst, y, row)
		}
	case *image.Gray16:
		row := make([]uint8, w)
		for y := 0; y < h; y++ {
			p := src.Pix[y*src.Stride:]
			for x := 0; x < w; x++ {
				v := uint16(p[2*x])<<8 | uint16(p[2*x+1])
				if v > 255 {
					out.Notes |= Note16Bit
				}
				row[x] = uint8(min(v, 255))
			}
			putGrayRow(dst, y, row)
		}
	case *image.YCbCr:
		if f == fmtWebP {
			webpToRGB(dst.Pix, src)
		} else {
			jpegToRGB(dst.Pix, src)
		}
	case *image.NYCbCrA:
		webpToRGB(dst.Pix, &src.YCbCr)
	case *jpeg.FourComponent:
		fourToRGB(dst.Pix, src)
	case *image.CMYK:
		for y := 0; y < h; y++ {
			p := src.Pix[y*src.Stride:]
			d := dst.Pix[y*w*3:]
			for x := 0; x < w; x++ {
				nk := 255 - int(p[4*x+3])
				d[3*x] = cmyk1(int(p[4*x]), nk)
				d[3*x+1] = cmyk1(int(p[4*x+1]), nk)
				d[3*x+2] = cmyk1(int(p[4*x+2]), nk)
			}
		}
	case *image.NRGBA:
		copyRGB(dst.Pix, src.Pix, src.Stride, w, h, 4, 1)
	case *image.RGBA:
		// Go gives RGBA (premultiplied) only for opaque sources (PNG without alpha, RGB JPEG),
		// where premultiplied and straight colour are equal.
		copyRGB(dst.Pix, src.Pix, src.Stride, w, h, 4, 1)
	case *image.NRGBA64:
		copyRGB(dst.Pix, src.Pix, src.Stride, w, h, 8, 2)
	case *image.RGBA64:
		copyRGB(dst.Pix, src.Pix, src.Stride, w, h, 8, 2)
	case *image.Paletted:
		pal := make([][3]uint8, 256)
		for i, c := range src.Palette {
			pal[i] = straightRGB(c)
		}
		for y := 0; y < h; y++ {
			p := src.Pix[y*src.Stride:]
			d := dst.Pix[y*w*3:]
			for x := 0; x < w; x++ {
				c := pal[p[x]]
				d[3*x], d[3*x+1], d[3*x+2] = c[0], c[1], c[2]
			}
		}
	default:
		// Any other model (rare TIFF and BMP layouts): straight colour through NRGBA.
		for y := 0; y < h; y++ {
			d := dst.Pix[y*w*3:]
			for x := 0; x < w; x++ {
				c := straightRGB(m.At(b.Min.X+x, b.Min.Y+y))
				d[3*x], d[3*x+1], d[3*x+2] = c[0], c[1], c[2]
			}
		}
	}
	if rgb != nil {
		rgbToL(out.Pix, rgb.Pix)
	}
	if alphaVaries(m) && constant(out.Pix, channels) {
		out.Notes |= NoteAlphaOnly
	}
	return out
}

// alphaVaries reports whether an image with an alpha channel has two pixels of different
// alpha (for a palette, two used entries of different alpha). Opaque models give false.
func alphaVaries(m image.Image) bool {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	samples := func(pix []uint8, stride, px, at int) bool { // the byte at `at` of each pixel
		first := pix[at]
		for y := 0; y < h; y++ {
			p := pix[y*stride:]
			for x := 0; x < w; x++ {
				if p[px*x+at] != first {
					return true
				}
			}
		}
		return false
	}
	switch src := m.(type) {
	case *image.NRGBA:
		return samples(src.Pix, src.Stride, 4, 3)
	case *image.NRGBA64:
		return samples(src.Pix, src.Stride, 8, 6) || samples(src.Pix, src.Stride, 8, 7)
	case *image.NYCbCrA:
		return samples(src.A, src.AStride, 1, 0)
	case *image.Paletted:
		var used [256]bool
		for y := 0; y < h; y++ {
			for _, i := range src.Pix[y*src.Stride : y*src.Stride+w] {
				used[i] = true
			}
		}
		first := -1
		for i, c := range src.Palette {
			if !used[i] {
				continue
			}
			_, _, _, a := c.RGBA()
			if first < 0 {
				first = int(a)
			} else if int(a) != first {
				return true
			}
		}
	}
	return false
}

// constant reports whether every pixel of pix (channels samples each) equals the first.
func constant(pix []uint8, channels int) bool {
	for i := channels; i < len(pix); i++ {
		if pix[i] != pix[i%channels] {
			return false
		}
	}
	return true
}

// putGrayRow writes one row of grey samples into a 1- or 3-channel image (L→RGB replicates).
func putGrayRow(dst *Image, y int, row []uint8) {
	w := dst.Width
	if dst.Channels == 1 {
		copy(dst.Pix[y*w:(y+1)*w], row)
		return
	}
	d := dst.Pix[y*w*3:]
	for x, v := range row {
		d[3*x], d[3*x+1], d[3*x+2] = v, v, v
	}
}

// copyRGB copies the first three samples of each px-byte pixel; step 2 takes the high byte of
// big-endian 16-bit samples, as PIL's "RGB;16B" raw mode does.
func copyRGB(dst, src []uint8, stride, w, h, px, step int) {
	for y := 0; y < h; y++ {
		s := src[y*stride:]
		d := dst[y*w*3:]
		for x := 0; x < w; x++ {
			d[3*x] = s[px*x]
			d[3*x+1] = s[px*x+step]
			d[3*x+2] = s[px*x+2*step]
		}
	}
}

// straightRGB returns a colour's non-premultiplied 8-bit RGB.
func straightRGB(c color.Color) [3]uint8 {
	switch c := c.(type) {
	case color.NRGBA:
		return [3]uint8{c.R, c.G, c.B}
	case color.RGBA:
		if c.A == 0xFF || c.A == 0 {
			return [3]uint8{c.R, c.G, c.B}
		}
	case color.Gray:
		return [3]uint8{c.Y, c.Y, c.Y}
	case color.Gray16:
		v := uint8(min(c.Y, 255))
		return [3]uint8{v, v, v}
	}
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	return [3]uint8{n.R, n.G, n.B}
}

// cmyk1 is PIL's cmyk2rgb for one channel: CLIP8(nk - MULDIV255(c, nk)).
func cmyk1(c, nk int) uint8 {
	t := c*nk + 128
	v := nk - ((t>>8)+t)>>8
	return uint8(max(v, 0))
}

// cmykInvertedToRGB is PIL's unpacker for the "CMYK;I" raw mode (each sample inverted, as
// Adobe's CMYK JPEGs store them) followed by cmyk2rgb, from 4 samples a pixel in src to 3 in
// dst. dst may be src[:len(src)/4*3]: pixel i's samples are all read before 3i..3i+2 are
// written, and no later pixel's lie there.
func cmykInvertedToRGB(dst, src []uint8) {
	for i := range len(src) / 4 {
		p := src[4*i : 4*i+4 : 4*i+4]
		c, m, y, nk := 255-int(p[0]), 255-int(p[1]), 255-int(p[2]), int(p[3]) // nk = 255-(255-k)
		d := dst[3*i : 3*i+3 : 3*i+3]
		d[0], d[1], d[2] = cmyk1(c, nk), cmyk1(m, nk), cmyk1(y, nk)
	}
}

// fourToRGB is libjpeg's decoding of a CMYK or YCCK JPEG to JCS_CMYK (fancy upsampling of
// the subsampled components, YCCK→CMYK with jdcolor.c's tables), then PIL's "CMYK;I" and
// cmyk2rgb, as cmykInvertedToRGB. For YCCK, libjpeg's stored C is 255 - R of the YCbCr part,
// so the inverted C PIL converts is that R (and so on for M, Y); K passes through.
func fourToRGB(dst []uint8, f *jpeg.FourComponent) {
	p := f.Planes
	w, h := p.Rect.Dx(), p.Rect.Dy()
	up := newChromaUpsampler(p, w, h)
	c1, c2 := make([]uint8, w), make([]uint8, w)
	for y := range h {
		if up != nil {
			up.row(c1, p.Cb, y)
			up.row(c2, p.Cr, y)
		} else { // not a layout the decoder accepts for 4 components; replicate
			for x := range w {
				ci := p.COffset(p.Rect.Min.X+x, p.Rect.Min.Y+y)
				c1[x], c2[x] = p.Cb[ci], p.Cr[ci]
			}
		}
		yrow := p.Y[y*p.YStride : y*p.YStride+w]
		krow := f.K[y*f.KStride : y*f.KStride+w]
		d := dst[y*w*3 : (y+1)*w*3]
		for x, yy := range yrow {
			var c, m, ye int
			if f.YCCK {
				Y, cb, cr := int32(yy), c1[x], c2[x]
				c = int(clampU8(Y + jCrR[cr]))
				m = int(clampU8(Y + (jCbG[cb]+jCrG[cr])>>16))
				ye = int(clampU8(Y + jCbB[cb]))
			} else {
				c, m, ye = 255-int(yy), 255-int(c1[x]), 255-int(c2[x])
			}
			nk := int(krow[x]) // 255 - (255 - K): PIL's inverted K, then cmyk2rgb's 255 - k
			d[3*x], d[3*x+1], d[3*x+2] = cmyk1(c, nk), cmyk1(m, nk), cmyk1(ye, nk)
		}
	}
}

// rgbToL is PIL's rgb2l: L24 = R·19595 + G·38470 + B·7471 + 0x8000, then >> 16.
func rgbToL(dst, rgb []uint8) {
	for i := range dst {
		p := rgb[3*i : 3*i+3]
		dst[i] = uint8((uint32(p[0])*19595 + uint32(p[1])*38470 + uint32(p[2])*7471 + 0x8000) >> 16)
	}
}
