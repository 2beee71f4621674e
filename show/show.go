package show

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/deitkd/deitkd/internal/atomicfile"
	"github.com/deitkd/deitkd/traindata"
)

// ErrRows: a row range the store does not have.
var ErrRows = errors.New("show: no such rows")

// Files written into Options.Tensors.
const (
	InputsFile = "inputs.npy" // float32 (N, C, H, W): the teacher's inputs, normalised
	RowsFile   = "rows.csv"   // one line per input, in its order: the row and its ids
)

// Options say which rows to show and where. Every field is literal except those whose
// comment names a default.
type Options struct {
	Labels string // the label store (a folder or its manifest.json)
	// Data are the store's images, as dataset.Open takes them (DIR, list:FILE, idx:PREFIX);
	// refused unless they are the images the store was made from (traindata.ErrMismatch
	// naming the deitkd.dataset field).
	Data string
	// First and Last are the rows shown, both included, numbered from 0 in the store's
	// (image_index, view) order (traindata.Set.Rows: rows of images without a label are not
	// counted).
	First, Last int
	Sheet       string // the contact sheet's PNG file; "": none
	Tensors     string // folder for InputsFile and RowsFile (made if missing); "": none
	Columns     int    // tiles per line of the sheet; 0: 8
	Workers     int    // rendering goroutines; 0: one per CPU
	Log         func(string)
}

// Summary is what Run wrote.
type Summary struct {
	Rows          int    // rows shown
	Size          int    // side of each rendered view
	Channels      int    // of each view
	Sheet, Inputs string // paths written ("" where not asked for)
	RowIDs        string // RowsFile's path
}

// Run renders rows First..Last of the store and writes the sheet and the tensors asked for.
func Run(ctx context.Context, o Options) (Summary, error) {
	if o.Columns == 0 {
		o.Columns = 8
	}
	switch {
	case o.Sheet == "" && o.Tensors == "":
		return Summary{}, fmt.Errorf("show: nothing to write: give a sheet file or a tensors folder")
	case o.First < 0 || o.Last < o.First:
		return Summary{}, fmt.Errorf("%w: rows %d-%d, want 0 ≤ first ≤ last", ErrRows, o.First, o.Last)
	case o.Columns < 1:
		return Summary{}, fmt.Errorf("show: %d columns, want ≥ 1", o.Columns)
	}
	if o.Log == nil {
		o.Log = func(string) {}
	}
	// traindata's notes on how a training run would use the store's views say nothing of these
	// rows; its notes on skipped images do.
	notes := func(n string) {
		if !strings.HasPrefix(n, "label store has ") && !strings.HasPrefix(n, "crops of ") {
			o.Log(n)
		}
	}
	s, err := traindata.Open(ctx, traindata.Options{Labels: o.Labels, Data: o.Data, Batch: 64, Pixels: o.Sheet != "",
		Probs: true, Tau: 1, Workers: o.Workers, Log: notes})
	if err != nil {
		return Summary{}, err
	}
	if o.Last >= s.StoredRows() {
		return Summary{}, fmt.Errorf("%w: rows %d-%d, label store %s has rows 0-%d (of its labelled images)",
			ErrRows, o.First, o.Last, o.Labels, s.StoredRows()-1)
	}
	names := s.Meta().ClassNames
	className := func(c int) string {
		if c >= 0 && c < len(names) {
			return names[c]
		}
		return "class " + strconv.Itoa(c)
	}
	sum := Summary{Rows: o.Last - o.First + 1, Size: s.Size(), Channels: s.Channels()}
	var tiles []tile
	var ids [][]string
	K := s.Classes()
	augmented := s.Meta().Augment != nil
	pass := func(inputs io.Writer) error {
		n := o.First
		return s.Rows(ctx, o.First, o.Last+1, func(b *traindata.Batch) error {
			if inputs != nil {
				if err := writeFloats(inputs, b.Images); err != nil {
					return err
				}
			}
			per := s.Channels() * s.Size() * s.Size()
			for r := range b.Len() {
				hard := b.TeacherHard[r]
				p := b.TeacherProbs[r*K+hard]
				ids = append(ids, []string{strconv.Itoa(n), strconv.Itoa(b.ImageIndex[r]), b.ImageID[r], strconv.Itoa(b.View[r].Index),
					strconv.Itoa(b.Labels[r]), strconv.Itoa(hard), strconv.FormatFloat(float64(p), 'g', 6, 32)})
				if b.Pixels != nil {
					pix := append([]uint8(nil), b.Pixels[r*per:(r+1)*per]...)
					if augmented {
						// Pixels are the crop and flip only; the teacher saw the input after the
						// replayed ops, erasing and mixing: its tensor, back to 8 bits.
						tensorPixels(pix, b.Images[r*per:(r+1)*per], s.Channels(), s.Size(), s.Mean(), s.Std())
					}
					tiles = append(tiles, tile{pix: pix, right: hard == b.Labels[r],
						head: fmt.Sprintf("%d v%d ", n, b.View[r].Index), id: b.ImageID[r], teacher: className(hard), prob: p, truth: className(b.Labels[r])})
				}
				n++
			}
			return nil
		})
	}
	if o.Tensors == "" {
		if err := pass(nil); err != nil {
			return sum, err
		}
	} else {
		if err := os.MkdirAll(o.Tensors, 0o755); err != nil {
			return sum, fmt.Errorf("show: %w", err)
		}
		sum.Inputs, sum.RowIDs = filepath.Join(o.Tensors, InputsFile), filepath.Join(o.Tensors, RowsFile)
		err := atomicfile.Write(sum.Inputs, func(w io.Writer) error {
			bw := bufio.NewWriterSize(w, 1<<20)
			if _, err := bw.Write(npyHeader(sum.Rows, s.Channels(), s.Size(), s.Size())); err != nil {
				return err
			}
			if err := pass(bw); err != nil {
				return err
			}
			return bw.Flush()
		})
		if err != nil {
			return sum, fmt.Errorf("show: write %s: %w", sum.Inputs, err)
		}
		err = atomicfile.Write(sum.RowIDs, func(w io.Writer) error {
			cw := csv.NewWriter(w)
			cw.Write([]string{"row", "image_index", "image_id", "view", "label", "teacher_hard", "teacher_prob"})
			cw.WriteAll(ids)
			return cw.Error()
		})
		if err != nil {
			return sum, fmt.Errorf("show: write %s: %w", sum.RowIDs, err)
		}
	}
	if o.Sheet != "" {
		if len(tiles) != sum.Rows {
			return sum, fmt.Errorf("show: %d tiles for %d rows", len(tiles), sum.Rows) // Pixels was asked for
		}
		img := contactSheet(tiles, s.Size(), s.Channels(), o.Columns)
		if err := atomicfile.Write(o.Sheet, func(w io.Writer) error { return png.Encode(w, img) }); err != nil {
			return sum, fmt.Errorf("show: write %s: %w", o.Sheet, err)
		}
		sum.Sheet = o.Sheet
	}
	return sum, nil
}

// tensorPixels writes into dst (S×S×C, 8-bit) the normalised C×S×S tensor x turned back into
// pixels, x·std + mean scaled to 0..255, rounded and clipped: for pixels ToTensor and Normalize
// made, the pixels themselves; for erased noise and mixed views, what they look like.
func tensorPixels(dst []uint8, x []float32, C, S int, mean, std []float64) {
	for c := range C {
		mu, sd := float32(mean[min(c, len(mean)-1)]), float32(std[min(c, len(std)-1)])
		for i := range S * S {
			v := math.Round(float64((x[c*S*S+i]*sd + mu) * 255))
			dst[i*C+c] = uint8(max(0, min(255, v)))
		}
	}
}
