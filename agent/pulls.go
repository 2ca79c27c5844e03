package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/imageref"
)

// DefaultPullStall is how long a pull may go without a byte of progress
// before it is given up: a registry that accepts connections and sends
// nothing must not hold a session PREPARING for ever.
const DefaultPullStall = 2 * time.Minute

// pullReportEvery is how often the agent heartbeats while a pull runs, so
// that a session's progress is never older than twice this.
const pullReportEvery = time.Second

// errStalled ends a pull that made no progress for the stall time.
var errStalled = errors.New("no progress")

// puller runs the node's image pulls: one per image at a time, however many
// containers (and pre-pull requests) wait for it; each waiter holds the
// pull's handle and reads its outcome.
type puller struct {
	rt    runtime.Runtime
	log   *slog.Logger
	now   func() time.Time
	stall time.Duration
	// changed is called when a pull starts or ends: the agent then
	// converges and reports at once.
	changed func()
	m       *pullMetrics

	mu     sync.Mutex
	base   context.Context // pulls run until it ends (the agent's Run)
	active map[string]*pullHandle
	// ended are pulls that failed since the last report, reported once.
	ended []api.ImagePull
	wg    sync.WaitGroup
}

// pullHandle is one pull as its waiters see it.
type pullHandle struct {
	key, ref string
	done     chan struct{}

	mu          sync.Mutex
	got, total  int64
	lastMove    time.Time
	err         error
	image       runtime.Image
	requestedBy int // waiters that asked for it, for the log
}

func newPuller(rt runtime.Runtime, log *slog.Logger, now func() time.Time, stall time.Duration, reg prometheus.Registerer) *puller {
	if stall <= 0 {
		stall = DefaultPullStall
	}
	return &puller{rt: rt, log: log, now: now, stall: stall, changed: func() {}, active: map[string]*pullHandle{},
		base: context.Background(), m: newPullMetrics(reg)}
}

// run sets the context pulls live in; wait waits for them to end.
func (p *puller) run(ctx context.Context) {
	p.mu.Lock()
	p.base = ctx
	p.mu.Unlock()
}

func (p *puller) wait() { p.wg.Wait() }

// get returns the pull of ref under way, or starts one with creds.
func (p *puller) get(ref string, creds []api.RegistryCredentials) *pullHandle {
	key := imageref.Normal(ref)
	p.mu.Lock()
	if h := p.active[key]; h != nil {
		h.mu.Lock()
		h.requestedBy++
		h.mu.Unlock()
		p.mu.Unlock()
		return h
	}
	h := &pullHandle{key: key, ref: ref, done: make(chan struct{}), lastMove: p.now(), requestedBy: 1}
	p.active[key] = h
	ctx, cancel := context.WithCancelCause(p.base)
	p.wg.Add(1)
	p.mu.Unlock()
	p.m.active.Inc()
	p.log.Info("pulling image", "image", ref)
	start := p.now()
	go func() {
		defer p.wg.Done()
		defer cancel(nil)
		stop := p.watch(ctx, h, cancel)
		img, err := p.rt.Pull(ctx, runtime.PullRequest{Ref: ref, Registries: creds, Progress: h.progress(p.now)})
		stop()
		if cause := context.Cause(ctx); err != nil && errors.Is(cause, errStalled) {
			err = fmt.Errorf("pull %s: %w", ref, cause)
		}
		p.finish(h, img, err, p.now().Sub(start))
	}()
	p.changed()
	return h
}

// watch cancels the pull when it has not moved for the stall time.
func (p *puller) watch(ctx context.Context, h *pullHandle, cancel context.CancelCauseFunc) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(min(p.stall/4, time.Second))
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				h.mu.Lock()
				idle := p.now().Sub(h.lastMove)
				h.mu.Unlock()
				if idle > p.stall {
					cancel(fmt.Errorf("%w for %s: the registry stopped sending", errStalled, p.stall))
					return
				}
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

func (p *puller) finish(h *pullHandle, img runtime.Image, err error, took time.Duration) {
	h.mu.Lock()
	h.err, h.image = err, img
	got, total := h.got, h.total
	h.mu.Unlock()
	p.mu.Lock()
	delete(p.active, h.key)
	if err != nil {
		p.ended = append(p.ended, api.ImagePull{Image: h.ref, DoneBytes: got, TotalBytes: total, Error: err.Error()})
		if len(p.ended) > 16 {
			p.ended = p.ended[len(p.ended)-16:]
		}
	}
	p.mu.Unlock()
	close(h.done)
	p.m.active.Dec()
	if err != nil {
		p.m.pulls.WithLabelValues("failed").Inc()
		p.log.Warn("image pull failed", "image", h.ref, "bytes", got, "of", total, "took", took.Round(time.Millisecond), "err", err)
	} else {
		p.m.pulls.WithLabelValues("ok").Inc()
		p.m.bytes.Add(float64(img.Size))
		p.log.Info("pulled image", "image", h.ref, "digest", img.Digest, "bytes", img.Size, "took", took.Round(time.Millisecond))
	}
	p.changed()
}

// report is what the heartbeat says of the pulls: those under way, and
// those that failed since the last report.
func (p *puller) report() []api.ImagePull {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.ended
	p.ended = nil
	for _, k := range slices.Sorted(maps.Keys(p.active)) {
		h := p.active[k]
		h.mu.Lock()
		out = append(out, api.ImagePull{Image: h.ref, DoneBytes: h.got, TotalBytes: h.total})
		h.mu.Unlock()
	}
	return out
}

// busy reports whether a pull is under way, or a failure waits to be
// reported.
func (p *puller) busy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.active) > 0 || len(p.ended) > 0
}

// pulling reports whether an image (any form of its name) is being pulled.
func (p *puller) pulling(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active[imageref.Normal(name)] != nil
}

func (h *pullHandle) progress(now func() time.Time) func(done, total int64) {
	return func(done, total int64) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if done > h.got || total != h.total {
			h.lastMove = now()
		}
		h.got, h.total = done, total
	}
}

// finished reports whether the pull ended, and how.
func (h *pullHandle) finished() (bool, error) {
	select {
	case <-h.done:
		return true, h.err
	default:
		return false, nil
	}
}

// describe is the pull as a session's status_info says it:
// "pulling python:3.12: 312/1,024 MiB".
func (h *pullHandle) describe() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.total <= 0 {
		return "pulling " + h.ref
	}
	return fmt.Sprintf("pulling %s: %s", h.ref, mibPair(h.got, h.total))
}

// mibPair writes done/total in MiB (1024² bytes): whole MiB with
// thousands separators, or one decimal below 10 MiB.
func mibPair(done, total int64) string {
	const mib = 1 << 20
	if total < 10*mib {
		return fmt.Sprintf("%.1f/%.1f MiB", float64(done)/mib, float64(total)/mib)
	}
	return thousands(done/mib) + "/" + thousands(total/mib) + " MiB"
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

type pullMetrics struct {
	pulls  *prometheus.CounterVec
	bytes  prometheus.Counter
	active prometheus.Gauge
}

func newPullMetrics(reg prometheus.Registerer) *pullMetrics {
	m := &pullMetrics{
		pulls:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_agent_image_pulls_total", Help: "Image pulls that ended, by result (ok, failed)."}, []string{"result"}),
		bytes:  prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_agent_image_pulled_bytes_total", Help: "Size of the images pulled."}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "berth_agent_image_pulls_active", Help: "Image pulls under way."}),
	}
	if reg != nil {
		reg.MustRegister(m.pulls, m.bytes, m.active)
	}
	return m
}
