package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// cmdPlot draws the PNGs of BENCHMARKS.md from the results files that
// exist.
func cmdPlot(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	results := fs.String("results", ".cache/bench/results", "results directory")
	out := fs.String("out", "bench/plots", "where the PNGs go")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o750); err != nil {
		return err
	}
	var q queryReport
	if readResult(filepath.Join(*results, "query.json"), &q) == nil {
		if err := plotQuery(q, filepath.Join(*out, "query-latency-vs-users.png")); err != nil {
			return err
		}
		fmt.Fprintln(stdout, filepath.Join(*out, "query-latency-vs-users.png"))
	}
	var in ingestReport
	if readResult(filepath.Join(*results, "ingest.json"), &in) == nil {
		if err := plotIngest(in, filepath.Join(*out, "ingest-vs-batch-size.png")); err != nil {
			return err
		}
		fmt.Fprintln(stdout, filepath.Join(*out, "ingest-vs-batch-size.png"))
	}
	var s soakReport
	if readResult(filepath.Join(*results, "soak.json"), &s) == nil && len(s.RSS) > 0 {
		if err := plotSoak(s, filepath.Join(*out, "soak-rss.png")); err != nil {
			return err
		}
		fmt.Fprintln(stdout, filepath.Join(*out, "soak-rss.png"))
	}
	return nil
}

func readResult(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

var (
	blue   = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	orange = color.RGBA{R: 255, G: 127, B: 14, A: 255}
	green  = color.RGBA{R: 44, G: 160, B: 44, A: 255}
	red    = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	grey   = color.RGBA{R: 120, G: 120, B: 120, A: 255}
)

func addLine(p *plot.Plot, pts plotter.XYs, c color.Color, dashed bool, name string) error {
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	l.Color, s.Color = c, c
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		s.Shape = draw.CrossGlyph{}
	}
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}

func plotQuery(q queryReport, path string) error {
	type pt struct{ users, p50, p99, p999 float64 }
	var real []pt
	for k, r := range q.Best {
		if r.Mode == "fixed" && r.Users > 0 {
			_ = k
			real = append(real, pt{float64(r.Users), r.P50ms, r.P99ms, r.P999ms})
		}
	}
	if len(real) == 0 {
		return nil
	}
	sort.Slice(real, func(i, j int) bool { return real[i].users < real[j].users })
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Query latency vs users (open loop, %.0f req/s offered)", q.Rate)
	p.X.Label.Text = "users in the projection (log scale)"
	p.Y.Label.Text = "latency (ms, from scheduled send)"
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	for _, r := range real {
		ticks = append(ticks, plot.Tick{Value: r.users, Label: humanCount(int(r.users))})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Legend.Top, p.Legend.Left = true, true
	var p50, p99, p999 plotter.XYs
	for _, r := range real {
		p50 = append(p50, plotter.XY{X: r.users, Y: r.p50})
		p99 = append(p99, plotter.XY{X: r.users, Y: r.p99})
		p999 = append(p999, plotter.XY{X: r.users, Y: r.p999})
	}
	bare := q.Best["bare-echo/fixed"]
	lo, hi := real[0].users, real[len(real)-1].users
	for _, l := range []struct {
		pts    plotter.XYs
		c      color.Color
		dashed bool
		name   string
	}{
		{p50, blue, false, "p50"}, {p99, orange, false, "p99"}, {p999, red, false, "p99.9"},
		{plotter.XYs{{X: lo, Y: bare.P50ms}, {X: hi, Y: bare.P50ms}}, green, true, "bare echo p50"},
		{plotter.XYs{{X: lo, Y: bare.P99ms}, {X: hi, Y: bare.P99ms}}, grey, true, "bare echo p99"},
	} {
		if err := addLine(p, l.pts, l.c, l.dashed, l.name); err != nil {
			return err
		}
	}
	p.Y.Min = 0
	for _, r := range real { // room for the legend above the lines
		p.Y.Max = max(p.Y.Max, r.p999*1.5)
	}
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}

func plotIngest(in ingestReport, path string) error {
	if len(in.Sweep) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Ingest rate vs batch size (%d messages, kfake on loopback)", in.Messages)
	p.X.Label.Text = "consumer batch size (messages per transaction, log scale)"
	p.Y.Label.Text = "messages/s"
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	for _, r := range in.Sweep {
		ticks = append(ticks, plot.Tick{Value: float64(r.BatchSize), Label: strconv.Itoa(r.BatchSize)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Legend.Top, p.Legend.Left = true, true
	var e2e plotter.XYs
	for _, r := range in.Sweep {
		e2e = append(e2e, plotter.XY{X: float64(r.BatchSize), Y: r.Rate})
	}
	sort.Slice(e2e, func(i, j int) bool { return e2e[i].X < e2e[j].X })
	lo, hi := e2e[0].X, e2e[len(e2e)-1].X
	if err := addLine(p, e2e, blue, false, "end to end (consumer + store)"); err != nil {
		return err
	}
	if err := addLine(p, plotter.XYs{{X: lo, Y: in.BestRaw.Rate}, {X: hi, Y: in.BestRaw.Rate}}, grey, true, "raw fetch"); err != nil {
		return err
	}
	if err := addLine(p, plotter.XYs{{X: lo, Y: in.BestRaw.Rate / 2}, {X: hi, Y: in.BestRaw.Rate / 2}}, green, true, "target: 0.5 × raw fetch"); err != nil {
		return err
	}
	p.Y.Min, p.Y.Max = 0, in.BestRaw.Rate*1.25
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}

func plotSoak(s soakReport, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Soak %s: service memory outside the mmap", s.Duration)
	p.X.Label.Text = "seconds"
	p.Y.Label.Text = "RssAnon (MiB)"
	var pts plotter.XYs
	for _, r := range s.RSS {
		pts = append(pts, plotter.XY{X: r.At, Y: r.AnonMiB})
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color = blue
	p.Add(l)
	p.Y.Min = 0
	return p.Save(7*vg.Inch, 3.5*vg.Inch, path)
}
