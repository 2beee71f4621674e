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

	"github.com/deitkd/deitkd/dataset"
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
		augmented         bool
	}{
		{"grey", "tiny_gray.onnx", idxSpec("train"), "", 2, 13, []float64{0.286}, []float64{0.353}, false},
		{"colour", "tiny_regnet.onnx", filepath.Join(testdata, "images"), classMap, 3, 17, nil, nil, false},
		{"grey-augmented", "tiny_gray.onnx", idxSpec("train"), "", 2, 13, []float64{0.286}, []float64{0.353}, true},
		{"colour-augmented", "tiny_regnet.onnx", filepath.Join(testdata, "images"), classMap, 3, 17, nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model := filepath.Join(testdata, "models", tc.model)
			po := precompute.Options{Model: model, Data: tc.data, ClassMapFile: tc.classMap, Views: 4, Mean: tc.mean, Std: tc.std}
			if tc.augmented {
				ra, _ := dataset.ParseRandAugment("rand-m9-mstd0.5-inc1")
				po.Augment = dataset.AugmentConfig{RandAugment: &ra, EraseProb: 0.25, Mix: dataset.MixConfig{MixupAlpha: 0.8, CutMixAlpha: 1, Prob: 1, SwitchProb: 0.5}}
			}
			dir := makeStore(t, po)
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
			if tc.augmented {
				checkMixedInputs(t, r, tc.data, recs[1:], inputs, C, S)
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
							want := inputs[((i*C+ch)*S+y)*S+x]
							if tc.augmented {
								// Erased noise and mixed values are no 8-bit pixels: the tile is
								// the input turned back into one, rounded and clipped.
								back := uint32(max(0, min(255, math.Round(float64((want*float32(sd)+float32(mu))*255)))))
								if px[ch] != back {
									t.Fatalf("tile %d (%d,%d) channel %d: pixel %d, the input %v is pixel %d", i, x, y, ch, px[ch], want, back)
								}
								continue
							}
							if got != want {
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

// checkMixedInputs checks the written inputs of an augmented store's mixed rows against their
// own and partner views rendered apart from the stored parameters (the partner's from its own
// stored row): Mixup rows are λ·own + (1−λ)·partner in float32, CutMix rows the partner inside
// the box and their own view outside. Every row's unmixed pixels are its own view's.
func checkMixedInputs(t *testing.T, r *store.Reader, data string, recs [][]string, inputs []float32, C, S int) {
	t.Helper()
	type row struct {
		view dataset.View
		aug  dataset.Augment
		mix  *store.Mixing
	}
	rows := map[[2]int64]row{}
	for shard := range r.Manifest.Shards {
		err := r.ScanRows(context.Background(), shard, nil, func(_ int, st *store.StoredRow) error {
			c := st.Crop
			rw := row{view: dataset.View{Index: int(st.View), Box: dataset.Box{Top: c[0], Left: c[1], Height: c[2], Width: c[3]}, Flip: st.Flip},
				aug: dataset.Augment{Ops: append([]dataset.AugmentOp(nil), st.Augment.Ops...), Erase: st.Augment.Erase}}
			if st.Mix != nil {
				m := *st.Mix
				rw.mix = &m
			}
			rows[[2]int64{st.ImageIndex, int64(st.View)}] = rw
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	src, err := dataset.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := r.Meta.Preprocess.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	render := func(i int64, rw row) []float32 {
		img, err := src.Load(int(i), C)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, C*S*S)
		if err := dataset.RenderAugmented(x, img, rw.view, rw.aug, S, cfg); err != nil {
			t.Fatal(err)
		}
		return x
	}
	var mixup, cutmix int
	for n, rec := range recs {
		index, _ := strconv.ParseInt(rec[1], 10, 64)
		view, _ := strconv.ParseInt(rec[3], 10, 64)
		rw := rows[[2]int64{index, view}]
		got := inputs[n*C*S*S : (n+1)*C*S*S]
		own := render(index, rw)
		if rw.mix == nil {
			if fmt.Sprint(got) != fmt.Sprint(own) {
				t.Fatalf("row %s (image %d view %d, not mixed): the input is not its own view", rec[0], index, view)
			}
			continue
		}
		p, ok := rows[[2]int64{rw.mix.Index, int64(rw.mix.View)}]
		if !ok {
			t.Fatalf("row %s: partner image %d view %d is not stored", rec[0], rw.mix.Index, rw.mix.View)
		}
		partner := render(rw.mix.Index, p)
		l := rw.mix.Lambda
		top, left := int(math.Round(float64(rw.mix.Box.Top)*float64(S))), int(math.Round(float64(rw.mix.Box.Left)*float64(S)))
		h, w := int(math.Round(float64(rw.mix.Box.Height)*float64(S))), int(math.Round(float64(rw.mix.Box.Width)*float64(S)))
		if rw.mix.CutMix {
			cutmix++
		} else {
			mixup++
		}
		for c := range C {
			for y := range S {
				for x := range S {
					k := (c*S+y)*S + x
					want := own[k]
					switch {
					case !rw.mix.CutMix:
						want = float32(own[k]*l) + float32(partner[k]*float32(1-float64(l)))
					case y >= top && y < top+h && x >= left && x < left+w:
						want = partner[k]
					}
					if got[k] != want {
						t.Fatalf("row %s (image %d view %d, %+v with image %d view %d) channel %d (%d,%d): input %v, want %v",
							rec[0], index, view, rw.mix.Mix, rw.mix.Index, rw.mix.View, c, x, y, got[k], want)
					}
				}
			}
		}
	}
	if mixup == 0 || cutmix == 0 {
		t.Fatalf("%d Mixup and %d CutMix rows: want both kinds", mixup, cutmix)
	}
	t.Logf("%d Mixup and %d CutMix rows checked", mixup, cutmix)
}
