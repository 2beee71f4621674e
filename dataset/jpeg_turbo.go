//go:build cgo && !purego

package dataset

// JPEG decoding through libjpeg-turbo (Debian's libjpeg62-turbo-dev), the library Pillow
// decodes with: with the settings PIL uses — islow IDCT, fancy upsampling, JCS_RGB,
// JCS_GRAYSCALE or JCS_CMYK output — the pixels are PIL's to the bit, at about a third of the
// pure-Go decoder's CPU time (SIMD Huffman, IDCT, upsampling and colour conversion). CMYK and
// YCCK files come out of libjpeg as CMYK (libjpeg converts YCCK itself, as it does for PIL);
// like PIL's "CMYK;I" raw mode each sample is then inverted (Adobe's convention), and
// cmyk2rgb/rgb2l give RGB or L as PIL's convert does. Build with -tags purego (or
// CGO_ENABLED=0) for the pure-Go decoder alone; the fidelity tests hold for both (CMYK and
// YCCK included: fourToRGB in decode.go does what libjpeg does here).

/*
#cgo LDFLAGS: -ljpeg
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
} dk_err;

static void dk_error_exit(j_common_ptr c) {
	dk_err *e = (dk_err *)c->err;
	(*c->err->format_message)(c, e->msg);
	longjmp(e->jb, 1);
}

// Warnings (extraneous bytes, bad Huffman codes) are tolerated, as PIL tolerates them, except
// the one for data ending early: PIL refuses a truncated file, and so do we.
static void dk_emit_message(j_common_ptr c, int level) {
	dk_err *e = (dk_err *)c->err;
	if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
		(*c->err->format_message)(c, e->msg);
		longjmp(e->jb, 1);
	}
}

static void dk_output_message(j_common_ptr c) {}

enum { DK_OK = 0, DK_ERROR = 1, DK_COLORSPACE = 2, DK_SIZE = 3 };

// dk_decode decodes data at 1/denom scale into out (cap bytes, rows packed): a grayscale
// JPEG as 1 sample a pixel, a YCbCr or RGB one as 3, a CMYK or YCCK one as 4 (CMYK, samples
// as stored, not inverted). It reports the output size and samples a pixel, or DK_COLORSPACE
// for a colour space PIL does not open (none libjpeg reports today), DK_SIZE when out is too
// small, DK_ERROR with libjpeg's message in msg.
static int dk_decode(const unsigned char *data, unsigned long n, int denom, unsigned char *out,
                     size_t cap, int *w, int *h, int *ch, char *msg) {
	struct jpeg_decompress_struct d;
	dk_err e;
	d.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = dk_error_exit;
	e.pub.emit_message = dk_emit_message;
	e.pub.output_message = dk_output_message;
	if (setjmp(e.jb)) {
		jpeg_destroy_decompress(&d);
		memcpy(msg, e.msg, JMSG_LENGTH_MAX);
		return DK_ERROR;
	}
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, data, n);
	jpeg_read_header(&d, TRUE);
	switch (d.jpeg_color_space) {
	case JCS_GRAYSCALE:
		d.out_color_space = JCS_GRAYSCALE;
		break;
	case JCS_YCbCr:
	case JCS_RGB:
		d.out_color_space = JCS_RGB;
		break;
	case JCS_CMYK:
	case JCS_YCCK: // PIL's JpegDecode.c asks for JCS_CMYK for its "CMYK;I" raw mode
		d.out_color_space = JCS_CMYK;
		break;
	default:
		jpeg_destroy_decompress(&d);
		return DK_COLORSPACE;
	}
	d.dct_method = JDCT_ISLOW;
	d.do_fancy_upsampling = TRUE;
	d.scale_num = 1;
	d.scale_denom = denom;
	jpeg_calc_output_dimensions(&d); // the size, before start reads a progressive file whole
	size_t stride = (size_t)d.output_width * d.output_components;
	*w = d.output_width;
	*h = d.output_height;
	*ch = d.output_components;
	if (stride * d.output_height > cap) {
		jpeg_destroy_decompress(&d);
		return DK_SIZE;
	}
	jpeg_start_decompress(&d);
	JSAMPROW rows[16];
	while (d.output_scanline < d.output_height) {
		int k = d.output_height - d.output_scanline;
		if (k > 16) k = 16;
		for (int i = 0; i < k; i++) rows[i] = out + (d.output_scanline + i) * stride;
		jpeg_read_scanlines(&d, rows, k);
	}
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	return DK_OK;
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// haveTurbo: JPEGs decode through libjpeg-turbo, and Draft can use its reduced-scale IDCT.
const haveTurbo = true

var errTurboColorspace = errors.New("colour space left to the Go decoder")

// decodeJPEGTurbo decodes a JPEG whose header says w×h at 1/denom scale (denom 1, 2, 4 or 8)
// into channels samples a pixel, in buf if it is large enough (a CMYK or YCCK file needs 4
// bytes a pixel there). A file libjpeg refuses returns an error, and the caller decodes it
// with the Go decoder, which also classifies what is wrong.
func decodeJPEGTurbo(data []byte, channels, w, h, denom int, buf []uint8) (*Image, error) {
	ow, oh := (w+denom-1)/denom, (h+denom-1)/denom
	need := ow * oh * 3
	if cap(buf) >= ow*oh*4 {
		need = ow * oh * 4 // room for CMYK: the header does not say, and this avoids a retry
	}
	if cap(buf) < need {
		buf = make([]uint8, need)
	}
	buf = buf[:need]
	var cw, chh, cc C.int
	var msg [C.JMSG_LENGTH_MAX]C.char
	rc := C.dk_decode((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), C.int(denom),
		(*C.uchar)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &cw, &chh, &cc, &msg[0])
	if rc == C.DK_SIZE && len(buf) < ow*oh*4 {
		// A 4-component file: decode again into room for CMYK. The size check comes before
		// jpeg_start_decompress, so the first try cost the header and the tables only.
		buf = make([]uint8, ow*oh*4)
		rc = C.dk_decode((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), C.int(denom),
			(*C.uchar)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &cw, &chh, &cc, &msg[0])
	}
	switch rc {
	case C.DK_OK:
	case C.DK_COLORSPACE:
		return nil, errTurboColorspace
	case C.DK_SIZE:
		return nil, errors.New("libjpeg: output larger than the header's size")
	default:
		return nil, errors.New("libjpeg: " + C.GoString(&msg[0]))
	}
	if int(cw) != ow || int(chh) != oh {
		return nil, errors.New("libjpeg: output size differs from the header's")
	}
	n := ow * oh
	m := &Image{Width: ow, Height: oh, Channels: channels}
	switch {
	case cc == 4: // CMYK → "CMYK;I" (inverted) → RGB (→ L), in place, as the L case below
		cmykInvertedToRGB(buf[:n*3], buf[:n*4])
		if channels == 1 {
			rgbToL(buf[:n], buf[:n*3])
		}
		m.Pix = buf[:n*channels]
	case int(cc) == channels:
		m.Pix = buf[:n*channels]
	case cc == 1: // grey → RGB: replicate, from the end so nothing is overwritten unread
		for i := n - 1; i >= 0; i-- {
			v := buf[i]
			buf[3*i], buf[3*i+1], buf[3*i+2] = v, v, v
		}
		m.Pix = buf
	default: // RGB → L, in place: sample i is written after samples 3i..3i+2 are read
		rgbToL(buf[:n], buf)
		m.Pix = buf[:n]
	}
	return m, nil
}
