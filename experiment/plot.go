package experiment

import (
	"bytes"
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/whorl-ml/whorl/job"
)

// series is one named curve of a training history.
type series struct {
	name  string
	stats []job.EpochStat
	color color.Color
}

// CurvesPNG draws curves.png: the rotation pretraining's loss and accuracy
// per pretraining epoch (top row) and the supervised runs', baseline and
// fine-tuning, per supervised epoch (bottom row): each phase on its own
// epoch axis.
func CurvesPNG(r Report) ([]byte, error) {
	pretext := []series{{"pretext (rotation)", r.Pretext.History, color.RGBA{R: 40, G: 90, B: 200, A: 255}}}
	supervised := []series{
		{"baseline", r.Baseline.History, color.RGBA{R: 200, G: 60, B: 40, A: 255}},
		{"fine-tune", r.Finetune.History, color.RGBA{R: 30, G: 150, B: 60, A: 255}},
	}
	title := "rotation pretraining"
	if r.Config.IsJoint() {
		title = "joint training"
		pretext = append(pretext, series{"labeled classes", classHistory(r.Pretext.History), color.RGBA{R: 150, G: 60, B: 170, A: 255}})
	}
	top, err := curvePlots(title, "pretraining epoch", pretext)
	if err != nil {
		return nil, err
	}
	bottom, err := curvePlots("supervised training on the labeled subset", "supervised epoch", supervised)
	if err != nil {
		return nil, err
	}
	return tilePNG([][]*plot.Plot{top, bottom}, 12*vg.Inch, 9*vg.Inch)
}

// classHistory is the joint mode's labeled-image curve of a pretraining
// history (its class loss and accuracy as the loss and accuracy).
func classHistory(h []job.EpochStat) []job.EpochStat {
	out := make([]job.EpochStat, len(h))
	for i, e := range h {
		out[i] = job.EpochStat{Epoch: e.Epoch, Loss: e.ClassLoss, Accuracy: e.ClassAccuracy}
	}
	return out
}

// curvePlots draws a phase's loss and accuracy panels for the given series.
func curvePlots(phase, xLabel string, all []series) ([]*plot.Plot, error) {
	loss, acc := plot.New(), plot.New()
	loss.Title.Text, loss.X.Label.Text, loss.Y.Label.Text = phase+": loss", xLabel, "cross-entropy"
	acc.Title.Text, acc.X.Label.Text, acc.Y.Label.Text = phase+": accuracy", xLabel, "accuracy"
	acc.Y.Min, acc.Y.Max = 0, 1
	for _, s := range all {
		if len(s.stats) == 0 {
			continue
		}
		lp, ap, vp := make(plotter.XYs, len(s.stats)), make(plotter.XYs, len(s.stats)), plotter.XYs{}
		for i, e := range s.stats {
			lp[i] = plotter.XY{X: float64(e.Epoch), Y: e.Loss}
			ap[i] = plotter.XY{X: float64(e.Epoch), Y: e.Accuracy}
			if e.ValidationAccuracy > 0 {
				vp = append(vp, plotter.XY{X: float64(e.Epoch), Y: e.ValidationAccuracy})
			}
		}
		if err := addLine(loss, s.name, lp, s.color, false); err != nil {
			return nil, err
		}
		if hasAccuracy(s.stats) {
			if err := addLine(acc, s.name+" (train)", ap, s.color, false); err != nil {
				return nil, err
			}
		}
		if len(vp) > 0 {
			if err := addLine(acc, s.name+" (validation)", vp, s.color, true); err != nil {
				return nil, err
			}
		}
	}
	acc.Legend.Top, acc.Legend.Left = false, false
	loss.Legend.Top = true
	return []*plot.Plot{loss, acc}, nil
}

// networkColors colour the frozen-feature evaluations' networks.
var networkColors = map[string]color.Color{
	NetPretrained: color.RGBA{R: 40, G: 90, B: 200, A: 255},
	NetBaseline:   color.RGBA{R: 200, G: 60, B: 40, A: 255},
	NetRandom:     color.RGBA{R: 120, G: 120, B: 120, A: 255},
}

// ProbesPNG draws probes.png: the test accuracy of the linear probe (left)
// and of the kNN (right) on each block's frozen features, one line per
// network (the RotNet paper's Table 1 as a picture). It needs r.Frozen.
func ProbesPNG(r Report) ([]byte, error) {
	if len(r.Frozen) == 0 {
		return nil, fmt.Errorf("plot probes: the report has no frozen-feature evaluations")
	}
	probe, knn := plot.New(), plot.New()
	probe.Title.Text, knn.Title.Text = "linear probe on frozen features", "weighted kNN on frozen features"
	var ticks []plot.Tick
	for _, p := range []*plot.Plot{probe, knn} {
		p.X.Label.Text, p.Y.Label.Text = "block", "test accuracy"
		p.Y.Min, p.Y.Max = 0, 1
		p.Legend.Top, p.Legend.Left = false, true
	}
	for _, f := range r.Frozen {
		pp, kp := plotter.XYs{}, plotter.XYs{}
		for _, b := range f.Blocks {
			if b.Probe != nil {
				pp = append(pp, plotter.XY{X: float64(b.Block), Y: b.Probe.TestAccuracy})
			}
			if b.KNN != nil {
				kp = append(kp, plotter.XY{X: float64(b.Block), Y: b.KNN.TestAccuracy})
			}
			if len(ticks) < b.Block {
				ticks = append(ticks, plot.Tick{Value: float64(b.Block), Label: fmt.Sprintf("%d (%d)", b.Block, b.Dim)})
			}
		}
		for _, l := range []struct {
			p   *plot.Plot
			xys plotter.XYs
		}{{probe, pp}, {knn, kp}} {
			if len(l.xys) == 0 {
				continue
			}
			if err := addLine(l.p, f.Network, l.xys, networkColors[f.Network], f.Network == NetRandom); err != nil {
				return nil, err
			}
		}
	}
	probe.X.Tick.Marker, knn.X.Tick.Marker = plot.ConstantTicks(ticks), plot.ConstantTicks(ticks)
	probe.X.Label.Text, knn.X.Label.Text = "block (features)", "block (features)"
	return tilePNG([][]*plot.Plot{{probe, knn}}, 12*vg.Inch, 4.5*vg.Inch)
}

// hasAccuracy reports whether a history measured training accuracy (the
// distributed pretraining reports only the loss).
func hasAccuracy(stats []job.EpochStat) bool {
	for _, e := range stats {
		if e.Accuracy > 0 {
			return true
		}
	}
	return false
}

// addLine adds a named line (dashed when dashed is set) to p.
func addLine(p *plot.Plot, name string, xys plotter.XYs, c color.Color, dashed bool) error {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return fmt.Errorf("plot %s: %w", name, err)
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

// ConfusionPNG draws confusion.png: the baseline's and the fine-tuned
// model's test confusion matrices side by side, counts in the cells.
func ConfusionPNG(r Report) ([]byte, error) {
	var plots []*plot.Plot
	for _, m := range []struct {
		name string
		res  ModelResult
	}{{"baseline", r.Baseline}, {"fine-tuned", r.Finetune}} {
		p, err := confusionPlot(fmt.Sprintf("%s: test accuracy %s", m.name, pct(m.res.TestAccuracy)), r.Dataset.Classes, m.res.Confusion)
		if err != nil {
			return nil, err
		}
		plots = append(plots, p)
	}
	return tilePNG([][]*plot.Plot{plots}, 12*vg.Inch, 5.5*vg.Inch)
}

// confGrid adapts a confusion matrix to plotter.GridXYZ: column c is the
// predicted class, row r counts from the bottom so true class 0 is on top.
type confGrid struct{ c Confusion }

func (g confGrid) Dims() (int, int)    { return len(g.c), len(g.c) }
func (g confGrid) Z(c, r int) float64  { return float64(g.c[len(g.c)-1-r][c]) }
func (g confGrid) X(c int) float64     { return float64(c) }
func (g confGrid) Y(r int) float64     { return float64(r) }
func (g confGrid) trueClass(r int) int { return len(g.c) - 1 - r }

func confusionPlot(title string, classes []string, c Confusion) (*plot.Plot, error) {
	k := len(c)
	if k == 0 || k != len(classes) {
		return nil, fmt.Errorf("plot confusion matrix %q: %d rows for %d classes", title, k, len(classes))
	}
	g := confGrid{c}
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, "predicted", "true"
	p.Add(plotter.NewHeatMap(g, moreland.SmoothBlueRed().Palette(64)))
	var lab plotter.XYLabels
	for r := range k {
		for col := range k {
			lab.XYs = append(lab.XYs, plotter.XY{X: float64(col), Y: float64(r)})
			lab.Labels = append(lab.Labels, fmt.Sprint(g.Z(col, r)))
		}
	}
	labels, err := plotter.NewLabels(lab)
	if err != nil {
		return nil, fmt.Errorf("plot confusion matrix %q: %w", title, err)
	}
	p.Add(labels)
	xt, yt := make([]plot.Tick, k), make([]plot.Tick, k)
	for i := range k {
		xt[i] = plot.Tick{Value: float64(i), Label: classes[i]}
		yt[i] = plot.Tick{Value: float64(i), Label: classes[g.trueClass(i)]}
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.ConstantTicks(xt), plot.ConstantTicks(yt)
	return p, nil
}

// tilePNG lays plots out in rows (each row as long as the first) and
// encodes the image as PNG.
func tilePNG(rows [][]*plot.Plot, w, h vg.Length) ([]byte, error) {
	img := vgimg.New(w, h)
	dc := draw.New(img)
	t := draw.Tiles{Rows: len(rows), Cols: len(rows[0]), PadX: vg.Inch / 2, PadY: vg.Inch / 3, PadTop: vg.Inch / 8,
		PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align(rows, t, dc)
	for i, row := range rows {
		for j, p := range row {
			p.Draw(canvases[i][j])
		}
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	return buf.Bytes(), nil
}
