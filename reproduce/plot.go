package reproduce

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Plots writes the report's figures into dir: tokens.png (cosine between the two tokens after
// each block), views.png (fused top-1 against stored views per image) and curves.png (fused
// top-1 after each epoch of the runs of sections 1 and 2). A figure with no data yet is still written,
// empty, so that the report's links hold.
func (p *Plan) Plots(dir string, r *Results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, fn := range map[string]func(*Results) (*plot.Plot, error){
		"tokens.png": p.plotTokens, "views.png": p.plotViews, "curves.png": p.plotCurves,
	} {
		pl, err := fn(r)
		if err != nil {
			return fmt.Errorf("reproduce: %s: %w", name, err)
		}
		if err := pl.Save(16*vg.Centimeter, 11*vg.Centimeter, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("reproduce: %s: %w", name, err)
		}
	}
	return nil
}

// newPlot is a plot with its title and axis labels.
func newPlot(title, x, y string) *plot.Plot {
	pl := plot.New()
	pl.Title.Text, pl.X.Label.Text, pl.Y.Label.Text = title, x, y
	return pl
}

func (p *Plan) plotTokens(r *Results) (*plot.Plot, error) {
	pl := newPlot("cosine(class token, second token) after each block", "depth (0: input embedding)", "cosine, mean over test images and seeds")
	pl.Y.Min, pl.Y.Max = -0.1, 1.05
	pl.Legend.Top, pl.Legend.Left = false, true
	pl.Legend.YOffs = vg.Centimeter * 2
	var args []any
	for _, c := range []struct{ key, name string }{{"hard", "distillation token (hard)"}, {"none", "control: two class tokens (none)"}} {
		cos := r.meanCos(p, c.key)
		if len(cos) == 0 {
			continue
		}
		xy := make(plotter.XYs, len(cos))
		for i, v := range cos {
			xy[i] = plotter.XY{X: float64(i), Y: v}
		}
		args = append(args, c.name, xy)
	}
	if len(args) > 0 {
		if err := plotutil.AddLinePoints(pl, args...); err != nil {
			return nil, err
		}
		last := float64(len(r.meanCos(p, "hard")) - 1)
		if last > 0 {
			if err := addMarkers(pl, "paper, distillation token (input, last block)", 4, plotter.XYs{{X: 0, Y: 0.06}, {X: last, Y: 0.93}}); err != nil {
				return nil, err
			}
			if err := addMarkers(pl, "paper, two class tokens (last block)", 6, plotter.XYs{{X: last, Y: 0.999}}); err != nil {
				return nil, err
			}
		}
	}
	pl.Add(plotter.NewGrid())
	return pl, nil
}

// addMarkers adds points drawn as plotutil's glyph shape, with a legend entry.
func addMarkers(pl *plot.Plot, name string, shape int, xys plotter.XYs) error {
	sc, err := plotter.NewScatter(xys)
	if err != nil {
		return err
	}
	sc.GlyphStyle.Shape = plotutil.Shape(shape)
	sc.GlyphStyle.Radius = vg.Points(4)
	pl.Add(sc)
	pl.Legend.Add(name, sc)
	return nil
}

// errXYs are points with an asymmetric error bar (the range over seeds).
type errXYs struct {
	plotter.XYs
	lo, hi []float64
}

func (e errXYs) YError(i int) (float64, float64) { return e.lo[i], e.hi[i] }

func (p *Plan) plotViews(r *Results) (*plot.Plot, error) {
	pl := newPlot("fixed (V=1) against consistent teaching (V stored views)", "stored views per image V (log scale)", "fused test top-1, % (mean, range over seeds)")
	pl.X.Scale = plot.LogScale{}
	pl.X.Min, pl.X.Max = 0.8, 1.25
	for _, v := range p.Settings.Views {
		pl.X.Max = math.Max(pl.X.Max, 1.25*float64(v))
	}
	pl.X.Tick.Marker = plot.ConstantTicks(p.viewTicks())
	pl.Legend.Top = true
	i := 0
	for _, mode := range []struct{ key, name string }{{"hard", "hard"}, {SoftCode, "soft τ=1, α=0.5"}, {"none", "none (control)"}} {
		var e errXYs
		keys := []string{mode.key}
		vs := []int{1}
		for _, v := range p.Settings.Views {
			keys = append(keys, fmt.Sprintf("%s-v%d", mode.key, v))
			vs = append(vs, v)
		}
		for k, key := range keys {
			st := r.CellStat(p.Cell(key), TopFused)
			if st.N == 0 {
				continue
			}
			// Shift the two modes apart a little so that their bars do not overlap.
			x := float64(vs[k]) * math.Pow(1.06, float64(i-1))
			e.XYs = append(e.XYs, plotter.XY{X: x, Y: 100 * st.Mean})
			e.lo = append(e.lo, 100*(st.Mean-st.Min))
			e.hi = append(e.hi, 100*(st.Max-st.Mean))
		}
		if len(e.XYs) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(e.XYs)
		if err != nil {
			return nil, err
		}
		line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		bars, err := plotter.NewYErrorBars(e)
		if err != nil {
			return nil, err
		}
		bars.Color = plotutil.Color(i)
		pl.Add(line, points, bars)
		pl.Legend.Add(mode.name, line, points)
		i++
	}
	pl.Add(plotter.NewGrid())
	return pl, nil
}

func (p *Plan) viewTicks() []plot.Tick {
	t := []plot.Tick{{Value: 1, Label: "1"}}
	for _, v := range p.Settings.Views {
		t = append(t, plot.Tick{Value: float64(v), Label: fmt.Sprint(v)})
	}
	return t
}

func (p *Plan) plotCurves(r *Results) (*plot.Plot, error) {
	pl := newPlot("test top-1 (fused) after each epoch, mean over seeds (sections 1 and 2)", "epoch", "fused test top-1, %")
	pl.Legend.Top, pl.Legend.Left = false, false
	var args []any
	for _, key := range []string{"none", SoftPaper, SoftCode, "hard", "vit-hard", "cnn1-hard"} {
		c := p.Cell(key)
		var sum []float64
		var n []int
		for _, j := range c.Runs {
			rr := r.Runs[j.ID]
			if rr == nil {
				continue
			}
			for _, e := range rr.Epochs {
				for len(sum) < e.Epoch {
					sum, n = append(sum, 0), append(n, 0)
				}
				sum[e.Epoch-1] += e.Top1Fused
				n[e.Epoch-1]++
			}
		}
		var xy plotter.XYs
		for i := range sum {
			if n[i] > 0 {
				xy = append(xy, plotter.XY{X: float64(i + 1), Y: 100 * sum[i] / float64(n[i])})
			}
		}
		if len(xy) > 0 {
			args = append(args, c.Key, xy)
		}
	}
	if len(args) > 0 {
		if err := plotutil.AddLinePoints(pl, args...); err != nil {
			return nil, err
		}
	}
	pl.Add(plotter.NewGrid())
	return pl, nil
}
