/* write4: compress raw 4-sample-a-pixel data (PIL's inverted "CMYK;I" samples, as PIL hands
 * them to libjpeg) into a 4-component JPEG through libjpeg, which PIL cannot write: stored as
 * YCCK (Adobe transform 2) or CMYK (transform 0), with Y/C and K at 2x2 and the other two at
 * 1x1 (Photoshop's subsampling), or all at 1x1.
 *
 *     gcc -O2 -o /tmp/write4 write4.c -ljpeg
 *     /tmp/write4 in.raw W H quality ycck|cmyk 1|2 out.jpg
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

int main(int argc, char **argv) {
	if (argc != 8) {
		fprintf(stderr, "usage: write4 in.raw W H quality ycck|cmyk 1|2 out.jpg\n");
		return 2;
	}
	int w = atoi(argv[2]), h = atoi(argv[3]), q = atoi(argv[4]), sub = atoi(argv[6]);
	FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[7], "wb");
	if (!in || !out) { perror("open"); return 1; }
	unsigned char *pix = malloc((size_t)w * h * 4);
	if (fread(pix, 4, (size_t)w * h, in) != (size_t)w * h) { fprintf(stderr, "short input\n"); return 1; }
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr e;
	c.err = jpeg_std_error(&e);
	jpeg_create_compress(&c);
	jpeg_stdio_dest(&c, out);
	c.image_width = w;
	c.image_height = h;
	c.input_components = 4;
	c.in_color_space = JCS_CMYK;
	jpeg_set_defaults(&c);
	jpeg_set_colorspace(&c, strcmp(argv[5], "ycck") == 0 ? JCS_YCCK : JCS_CMYK);
	jpeg_set_quality(&c, q, TRUE);
	for (int i = 0; i < 4; i++) {
		int f = (i == 0 || i == 3) ? sub : 1;
		c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = f;
	}
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = pix + (size_t)c.next_scanline * w * 4;
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	fclose(out);
	return 0;
}
