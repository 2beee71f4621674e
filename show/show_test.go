package show_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/show"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/teacher"
	"github.com/deitkd/deitkd/traindata"
)

const testdata = "../testdata"

func idxSpec(name string) string { return "idx:" + filepath.Join(testdata, "idx", name) }

// makeStore labels data with a real precompute run of the model.
func makeStore(t *testing.T, o precompute.Options) string {
	t.Helper()
	o.Out, o.Workers, o.Threads, o.Seed, o.Scale, o.FlipP = filepath.Join(t.TempDir(), "labels"), 1, 1, 7, [2]float64{0.35, 1}, 0.5
	job, err := precompute.New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	if _, err := job.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return o.Out
}

// readNPY reads a float32 .npy file as numpy.load would, checking its header.
func readNPY(t *testing.T, path string) ([]float32, []int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x93NUMPY\x01\x00")) {
		t.Fatalf("%s: no .npy 1.0 magic", path)
	}
	hl := int(binary.LittleEndian.Uint16(b[8:]))
	h := string(b[10 : 10+hl])
	if (10+hl)%64 != 0 || !strings.HasSuffix(h, "\n") || !strings.Contains(h, "'descr': '<f4'") || !strings.Contains(h, "'fortran_order': False") {
		t.Fatalf("%s: header %q", path, h)
	}
	i, j := strings.Index(h, "'shape': ("), strings.Index(h, ")")
	var shape []int
	n := 1
	for _, f := range strings.Split(h[i+len("'shape': ("):j], ",") {
		if f = strings.TrimSpace(f); f != "" {
			d, _ := strconv.Atoi(f)
			shape, n = append(shape, d), n*d
		}
	}
	data := b[10+hl:]
	if len(data) != 4*n {
		t.Fatalf("%s: %d bytes of values for shape %v", path, len(data), shape)
	}
	out := make([]float32, n)
	for k := range out {
		out[k] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*k:]))
	}
	return out, shape
}

// TestShowTensorsAreWhatTheTeacherSaw: the inputs written for rows of a multi-view store, run
// through the teacher by ONNX Runtime, give the stored logits (≤ 1e-4), in grey and in colour;
// rows.csv names each input's row, image and view in order; each tile of the contact sheet is
// its input's 8-bit pixels (normalised, they are the input exactly), magnified.
func TestShowTensorsAreWhatTheTeacherSaw(t *testing.T) {
	classMap := filepath.Join(t.TempDir(), "classmap.tsv")
	if err := os.WriteFile(classMap, []byte("jpeg\t3\nother\tb_class\npng\t4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, model, data string
		classMap          string
		first, last       int
		mean, std         []float64
	}{
		{"grey", "tiny_gray.onnx", idxSpec("train"), "", 2, 13, []float64{0.286}, []float64{0.353}},
		{"colour", "tiny_regnet.onnx", filepath.Join(testdata, "images"), classMap, 3, 17, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model := filepath.Join(testdata, "models", tc.model)
			dir := makeStore(t, precompute.Options{Model: model, Data: tc.data, ClassMapFile: tc.classMap, Views: 4, Mean: tc.mean, Std: tc.std})
			out := t.TempDir()
			sheet := filepath.Join(out, "sheet.png")
			sum, err := show.Run(context.Background(), show.Options{Labels: dir, Data: tc.data, First: tc.first, Last: tc.last,
				Sheet: sheet, Tensors: filepath.Join(out, "tensors"), Columns: 5})
			if err != nil {
				t.Fatal(err)
			}
			n := tc.last - tc.first + 1
			inputs, shape := readNPY(t, sum.Inputs)
			C, S := sum.Channels, sum.Size
			if fmt.Sprint(shape) != fmt.Sprint([]int{n, C, S, S}) {
				t.Fatalf("shape %v, want [%d %d %d %d]", shape, n, C, S, S)
			}
			f, err := os.Open(sum.RowIDs)
			if err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(f).ReadAll()
			f.Close()
			if err != nil || len(recs) != n+1 || strings.Join(recs[0], ",") != "row,image_index,image_id,view,label,teacher_hard,teacher_prob" {
				t.Fatalf("rows.csv: %v, %d lines %v", err, len(recs), recs)
			}
			m, err := teacher.Open(model, teacher.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			logits, err := m.Run(inputs, n)
			if err != nil {
				t.Fatal(err)
			}
			r, err := store.OpenReader(dir)
			if err != nil {
				t.Fatal(err)
			}
			tg, err := r.LoadTargets(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			K, views := r.Meta.NumClasses, map[string]bool{}
			for i, rec := range recs[1:] {
				if rec[0] != strconv.Itoa(tc.first+i) {
					t.Fatalf("input %d is row %s, want %d", i, rec[0], tc.first+i)
				}
				view, _ := strconv.Atoi(rec[3])
				views[rec[3]] = true
				want, err := tg.Lookup(rec[2], view)
				if err != nil {
					t.Fatal(err)
				}
				for k := range K {
					if d := math.Abs(float64(logits[i*K+k] - want.Logits[k])); d > 1e-4 {
						t.Fatalf("row %s (%s view %d) logit %d: the teacher on the written input gives %v, the store %v", rec[0], rec[2], view, k, logits[i*K+k], want.Logits[k])
					}
				}
				if rec[5] != strconv.Itoa(int(want.Hard)) {
					t.Fatalf("row %s: teacher_hard %s, stored %d", rec[0], rec[5], want.Hard)
				}
			}
			if len(views) < 2 {
				t.Fatalf("rows cover views %v only: the test would not cover random views", views)
			}

			b, err := os.ReadFile(sheet)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			k := (112 + S - 1) / S
			side := S * k
			cellW, cellH := side+6, side+3*13+6
			if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != 6+5*cellW || h != 6+((n+4)/5)*cellH {
				t.Fatalf("sheet %d×%d, want %d×%d", w, h, 6+5*cellW, 6+((n+4)/5)*cellH)
			}
			mean, std := r.Meta.Preprocess.Mean, r.Meta.Preprocess.Std
			for i := range n {
				x0, y0 := 6+(i%5)*cellW, 6+(i/5)*cellH
				// The teacher's line is green where its top-1 is the ground truth, red otherwise.
				want := color.RGBA{0xf0, 0x60, 0x60, 0xff}
				if recs[1+i][4] == recs[1+i][5] {
					want = color.RGBA{0x6c, 0xd0, 0x6c, 0xff}
				}
				found := false
				for y := y0 + side + 13; y < y0+side+26 && !found; y++ {
					for x := x0; x < x0+side && !found; x++ {
						found = color.RGBAModel.Convert(img.At(x, y)) == want
					}
				}
				if !found {
					t.Errorf("tile %d: no teacher line in %v (label %s, teacher %s)", i, want, recs[1+i][4], recs[1+i][5])
				}
				for y := range S {
					for x := range S {
						c := img.At(x0+x*k+k/2, y0+y*k+k/2)
						r, g, bl, _ := c.RGBA()
						px := []uint32{r >> 8, g >> 8, bl >> 8}
						for ch := range C {
							mu, sd := mean[min(ch, len(mean)-1)], std[min(ch, len(std)-1)]
							got := (float32(px[ch])/255 - float32(mu)) / float32(sd)
							if want := inputs[((i*C+ch)*S+y)*S+x]; got != want {
								t.Fatalf("tile %d (%d,%d) channel %d: pixel %d normalises to %v, the input is %v", i, x, y, ch, px[ch], got, want)
							}
						}
					}
				}
			}
		})
	}
}

// TestShowRefusals: images other than the store's, rows the store lacks, nothing to write.
func TestShowRefusals(t *testing.T) {
	dir := makeStore(t, precompute.Options{Model: filepath.Join(testdata, "models", "tiny_gray.onnx"), Data: idxSpec("train"), Views: 2,
		Mean: []float64{0.286}, Std: []float64{0.353}})
	out := filepath.Join(t.TempDir(), "s.png")
	for _, tc := range []struct {
		name string
		o    show.Options
		is   error
		want string
	}{
		{"other images", show.Options{Labels: dir, Data: idxSpec("t10k"), Last: 1, Sheet: out}, traindata.ErrMismatch, "deitkd.dataset"},
		{"rows beyond the store", show.Options{Labels: dir, Data: idxSpec("train"), First: 8, Last: 10, Sheet: out}, show.ErrRows, "has rows 0-9"},
		{"rows backwards", show.Options{Labels: dir, Data: idxSpec("train"), First: 3, Last: 2, Sheet: out}, show.ErrRows, "rows 3-2"},
		{"nothing to write", show.Options{Labels: dir, Data: idxSpec("train")}, nil, "nothing to write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := show.Run(context.Background(), tc.o)
			if err == nil || tc.is != nil && !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want %v with %q", err, tc.is, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatalf("a refused run wrote %s", out)
			}
		})
	}
}
