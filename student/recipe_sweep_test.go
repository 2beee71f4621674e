package student

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// readIDX reads a gzipped IDX file: images as float32 in [0,1] or labels.
func readIDX(t *testing.T, path string) ([]float32, []int) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	nd := int(raw[3])
	n := int(binary.BigEndian.Uint32(raw[4:]))
	body := raw[4+4*nd:]
	if nd == 1 {
		y := make([]int, n)
		for i := range y {
			y[i] = int(body[i])
		}
		return nil, y
	}
	x := make([]float32, len(body))
	for i, v := range body {
		x[i] = (float32(v)/255 - 0.2860) / 0.3530 // Fashion-MNIST mean and std
	}
	return x, nil
}

// TestRecipeSweep trains fm-tiny on a subset of Fashion-MNIST with the
// short recipe at a few learning rates and reports test accuracy; it is
// how the recipe defaults were chosen. Minutes of CPU: it runs only when
// DEITKD_FASHION_MNIST names the folder of the four .gz IDX files.
// DEITKD_SWEEP_TRAIN (default 10000), DEITKD_SWEEP_EPOCHS (5) and
// DEITKD_SWEEP_TEST (10000 test images) size it;
// DEITKD_SWEEP_LRS lists learning rates (default "1e-3 2e-3").
func TestRecipeSweep(t *testing.T) {
	dir := os.Getenv("DEITKD_FASHION_MNIST")
	if dir == "" {
		t.Skip("DEITKD_FASHION_MNIST not set")
	}
	env := func(k string, d int) int {
		if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
			return v
		}
		return d
	}
	nTrain, epochs, nTest := env("DEITKD_SWEEP_TRAIN", 10000), env("DEITKD_SWEEP_EPOCHS", 5), env("DEITKD_SWEEP_TEST", 10000)
	lrs := []float64{1e-3, 2e-3}
	if s := os.Getenv("DEITKD_SWEEP_LRS"); s != "" {
		lrs = nil
		for _, f := range splitFields(s) {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatal(err)
			}
			lrs = append(lrs, v)
		}
	}
	xtr, _ := readIDX(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"))
	_, ytr := readIDX(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"))
	xte, _ := readIDX(t, filepath.Join(dir, "t10k-images-idx3-ubyte.gz"))
	_, yte := readIDX(t, filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"))
	const B, per = 128, 28 * 28
	steps := nTrain / B
	for _, lr := range lrs {
		for _, loss := range []Distill{DistillNone} {
			t.Run(fmt.Sprintf("lr=%g/%s", lr, loss), func(t *testing.T) {
				m, err := New(Config{}, 0)
				if err != nil {
					t.Fatal(err)
				}
				tc := shortRecipe(t, B, steps, loss)
				tc.Epochs, tc.LR = epochs, lr
				tr, err := NewTrainer(m, tc)
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				var last float64
				for e := 0; e < epochs; e++ {
					perm := tr.rng.Perm(nTrain)
					for s := 0; s < steps; s++ {
						b := Batch{Images: make([]float32, 0, B*per)}
						for _, i := range perm[s*B : (s+1)*B] {
							img := xtr[i*per : (i+1)*per]
							if tr.rng.IntN(2) == 1 { // horizontal flip
								flipped := make([]float32, per)
								for y := 0; y < 28; y++ {
									for x := 0; x < 28; x++ {
										flipped[y*28+x] = img[y*28+27-x]
									}
								}
								img = flipped
							}
							b.Images = append(b.Images, img...)
							b.Labels = append(b.Labels, ytr[i])
						}
						st, err := tr.TrainStep(b)
						if err != nil {
							t.Fatal(err)
						}
						last = st.Loss.Total
					}
					var ev EvalCounts
					for i := 0; i+500 <= min(nTest, len(yte)); i += 500 {
						c, err := m.Eval(Batch{Images: xte[i*per : (i+500)*per], Labels: yte[i : i+500]}, "")
						if err != nil {
							t.Fatal(err)
						}
						ev.Add(c)
					}
					t.Logf("epoch %d loss %.3f test top-1 cls %.4f dist %.4f fused %.4f (%.0f s, %d train images)",
						e+1, last, float64(ev.Top1Cls)/float64(ev.N), float64(ev.Top1Dist)/float64(ev.N),
						float64(ev.Top1Fused)/float64(ev.N), time.Since(start).Seconds(), nTrain)
				}
			})
		}
	}
}

func splitFields(s string) []string {
	var out []string
	f := ""
	for _, r := range s + " " {
		if r == ' ' || r == ',' {
			if f != "" {
				out = append(out, f)
			}
			f = ""
			continue
		}
		f += string(r)
	}
	return out
}
