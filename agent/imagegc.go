package agent

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/imageref"
)

// Image garbage collection: when the filesystem of the image store is
// fuller than -image-gc-high percent, the images no container uses (nor
// any the managers want started, nor any being pulled) are removed, least
// recently used first, until it is at most -image-gc-low percent full or
// nothing more may go.

// Defaults of -image-gc-high and -image-gc-low.
const (
	DefaultImageGCHigh = 85.0
	DefaultImageGCLow  = 70.0
	// imageGCEvery is how often the agent looks (and after every pull).
	imageGCEvery = 30 * time.Second
)

type imageGC struct {
	rt        runtime.Runtime
	log       *slog.Logger
	high, low float64 // percent of the disk
	// wanted are the images that must stay besides those containers use:
	// desired containers' (running or about to start) and pulls'.
	wanted  func() []string
	pulling func(string) bool

	used    prometheus.Gauge
	removed prometheus.Counter
	freed   prometheus.Counter
}

func newImageGC(rt runtime.Runtime, log *slog.Logger, high, low float64, wanted func() []string, pulling func(string) bool, reg prometheus.Registerer) *imageGC {
	g := &imageGC{rt: rt, log: log, high: high, low: low, wanted: wanted, pulling: pulling,
		used:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "berth_agent_image_disk_used_ratio", Help: "How full the filesystem of the image store is (0-1), as last measured."}),
		removed: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_agent_image_gc_removed_total", Help: "Images removed by image garbage collection."}),
		freed:   prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_agent_image_gc_freed_bytes_total", Help: "Bytes of the image store's disk freed by image garbage collection."}),
	}
	if reg != nil {
		reg.MustRegister(g.used, g.removed, g.freed)
	}
	return g
}

// collect runs one pass; it returns the images it removed.
func (g *imageGC) collect(ctx context.Context) ([]string, error) {
	du, err := g.rt.ImageDisk(ctx)
	if err != nil {
		return nil, err
	}
	ratio := float64(du.UsedBytes) / float64(du.TotalBytes)
	g.used.Set(ratio)
	if g.high >= 100 || ratio*100 < g.high {
		return nil, nil
	}
	imgs, err := g.rt.Images(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := g.rt.List(ctx)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, c := range cs {
		keep[imageref.Normal(c.Image)] = true
	}
	for _, name := range g.wanted() {
		keep[imageref.Normal(name)] = true
	}
	// Never used first, then the least recently used; names break ties so
	// the order does not depend on the runtime's.
	slices.SortFunc(imgs, func(x, y runtime.Image) int {
		if c := x.LastUsed.Compare(y.LastUsed); c != 0 {
			return c
		}
		return compareStrings(x.Name, y.Name)
	})
	g.log.Warn("image store over its high mark: removing unused images", "disk", du.Path,
		"used_percent", fmt.Sprintf("%.1f", ratio*100), "high", g.high, "low", g.low)
	var removed []string
	for _, im := range imgs {
		if ratio*100 <= g.low {
			break
		}
		if keep[imageref.Normal(im.Name)] || g.pulling(im.Name) {
			continue
		}
		if err := g.rt.RemoveImage(ctx, im.Name); err != nil {
			g.log.Warn("image gc could not remove an image", "image", im.Name, "err", err)
			continue
		}
		after, err := g.rt.ImageDisk(ctx)
		if err != nil {
			return removed, err
		}
		freed := du.UsedBytes - after.UsedBytes
		g.removed.Inc()
		if freed > 0 {
			g.freed.Add(float64(freed))
		}
		g.log.Info("image gc removed an image", "image", im.Name, "digest", im.Digest, "size", im.Size,
			"last_used", im.LastUsed, "freed_bytes", freed)
		removed = append(removed, im.Name)
		du = after
		ratio = float64(du.UsedBytes) / float64(du.TotalBytes)
		g.used.Set(ratio)
	}
	if ratio*100 > g.low {
		g.log.Warn("image store still over its low mark: everything left is in use or not an image",
			"disk", du.Path, "used_percent", fmt.Sprintf("%.1f", ratio*100), "low", g.low)
	}
	return removed, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// gcLoop collects every imageGCEvery and when kicked (a pull ended).
func (a *Agent) gcLoop(ctx context.Context) {
	t := time.NewTicker(imageGCEvery)
	defer t.Stop()
	for {
		if _, err := a.gc.collect(ctx); err != nil && ctx.Err() == nil {
			a.noteError(fmt.Errorf("image gc: %w", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.gcKick:
		}
	}
}
