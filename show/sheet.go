package show

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// A tile of the contact sheet: a view's pixels magnified by a whole factor to at least
// minTile pixels (a 28-pixel Fashion-MNIST view is drawn 4×, 112 pixels: 16 characters of the
// 7-pixel font per line), its caption lines under it.
const (
	minTile  = 112
	gap      = 6 // pixels between tiles and around the sheet
	lineH    = 13
	charW    = 7
	captionN = 3 // lines under each tile
)

var (
	background = color.RGBA{0x20, 0x20, 0x20, 0xff}
	textColor  = color.RGBA{0xe8, 0xe8, 0xe8, 0xff}
	rightColor = color.RGBA{0x6c, 0xd0, 0x6c, 0xff} // the teacher's top-1 is the ground truth
	wrongColor = color.RGBA{0xf0, 0x60, 0x60, 0xff}
)

// tile is one row of the sheet: its view's 8-bit pixels (size×size×channels, HWC) and its
// caption: head and image id (its end kept where it is too long: ids differ at their ends),
// the teacher's top-1 class and probability (the name shortened, never the number), coloured
// by whether it is the ground truth, and the ground truth.
type tile struct {
	pix      []uint8
	head, id string
	teacher  string
	prob     float32
	truth    string
	right    bool
}

// contactSheet draws tiles of size×size views with channels channels in columns columns.
func contactSheet(tiles []tile, size, channels, columns int) *image.RGBA {
	k := max(1, (minTile+size-1)/size)
	side := size * k
	cellW, cellH := side+gap, side+captionN*lineH+gap
	columns = max(1, min(columns, len(tiles)))
	lines := (len(tiles) + columns - 1) / columns
	sheet := image.NewRGBA(image.Rect(0, 0, gap+columns*cellW, gap+lines*cellH))
	draw.Draw(sheet, sheet.Bounds(), image.NewUniform(background), image.Point{}, draw.Src)
	d := font.Drawer{Dst: sheet, Face: basicfont.Face7x13}
	for i, t := range tiles {
		x0, y0 := gap+(i%columns)*cellW, gap+(i/columns)*cellH
		for y := range side {
			for x := range side {
				p := t.pix[((y/k)*size+x/k)*channels:]
				c := color.RGBA{p[0], p[0], p[0], 0xff}
				if channels == 3 {
					c.G, c.B = p[1], p[2]
				}
				sheet.SetRGBA(x0+x, y0+y, c)
			}
		}
		n := side / charW
		p := fmt.Sprintf(" %.2f", t.prob)
		caption := [captionN]string{t.head + clipStart(t.id, n-len(t.head)), "T " + clip(t.teacher, n-2-len(p)) + p, "GT " + t.truth}
		for l, s := range caption {
			col := textColor
			if l == 1 {
				col = wrongColor
				if t.right {
					col = rightColor
				}
			}
			d.Src = image.NewUniform(col)
			d.Dot = fixed.P(x0, y0+side+(l+1)*lineH-2)
			d.DrawString(clip(s, side/charW))
		}
	}
	return sheet
}

// clipStart shortens s to its last n characters, the cut marked by "..".
func clipStart(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return ".." + string(r[len(r)-max(0, n-2):])
}

// clip shortens s to n characters, its end marked by "..".
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:max(0, n-2)]) + ".."
}
