// Package sim is a simulated container runtime: runtime.Runtime in memory,
// for berth-agent -runtime sim. Nothing runs. A container "starts" after
// Config.StartDelay, then does what its command says it means to do
// (intent.go: `sleep N` sleeps, `exit N` exits with N, anything else runs
// until stopped), uses plausible CPU and memory within its limits
// (usage.go), writes a line to its log at start and at exit, and answers
// exec for the few commands it can read (exec.go). The agent above it is
// the real one: registration, heartbeats, desired-state queries,
// convergence and reports all take their product paths, which is what makes
// the simulation worth measuring.
//
// Every state is computed from the clock when it is asked for (a sleeping
// container has exited once its time has passed), so a test's clock decides
// everything. Events (a start, a stop, a removal) are published as they are
// done; the end of a container that exits by itself is published from a
// goroutine waiting on the clock, made only while someone reads Events.
//
// Images: the runtime holds Config.Images from the start and "pulls" any
// other image a container asks for at once (it is listed from then on);
// ImportImage records the names an OCI archive's index carries. No image
// content is stored: a pretended image's size is 0, an imported one's that
// of its manifest. Containers and images live in memory only: a
// restarted simulated agent has none, and the managers see its containers
// gone.
package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/berth-cluster/berth/agent/runtime"
)

// Version is what Version reports: the simulation, never a containerd.
const Version = "berth-sim/1"

// Defaults of Config.
const (
	DefaultImage = "berth/base:latest"
	// DefaultEndedLogRetention matches the containerd runtime's.
	DefaultEndedLogRetention = 24 * time.Hour
	// maxEndedLogs bounds the logs kept of removed containers, whatever
	// the retention: a simulated fleet runs many sessions in one process.
	maxEndedLogs = 10000
)

// Clock is the time the simulation runs on.
type Clock interface {
	Now() time.Time
	// After delivers the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the machine's clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// After implements Clock.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config says how the simulated node behaves.
type Config struct {
	// StartDelay is how long Run takes, like containerd creating and
	// starting a task (0: at once).
	StartDelay time.Duration
	// Images are the images the node has from the start (nil: DefaultImage).
	Images []string
	// EndedLogRetention is how long the log of a removed container stays
	// readable (0: DefaultEndedLogRetention; negative: not kept).
	EndedLogRetention time.Duration
	// Clock (nil: SystemClock).
	Clock Clock
}

// Runtime is the simulated runtime of one agent. It is safe for concurrent
// use.
type Runtime struct {
	cfg Config

	// feed hands the containers' events to Events' readers; done ends
	// the goroutines that wait to publish an exit.
	feed runtime.Feed
	done chan struct{}

	mu         sync.Mutex
	containers map[string]*container
	images     map[string]runtime.Image
	ended      map[string]endedLog
	closed     bool
}

// container is one simulated container and what was done to it.
type container struct {
	spec    runtime.Spec
	intent  intent
	created time.Time
	started time.Time
	// stopped is when Stop ended the process (zero: never stopped).
	stopped time.Time
	// load is the share of its CPU quota a busy process uses and mem the
	// share of its memory limit it holds (usage.go), fixed per container.
	load, mem float64
	// log is what it wrote besides the exit line (logs.go).
	log []byte
	// digest is the digest of the image it was made from.
	digest string
}

// New returns an empty simulated node holding cfg.Images.
func New(cfg Config) *Runtime {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Images == nil {
		cfg.Images = []string{DefaultImage}
	}
	if cfg.EndedLogRetention == 0 {
		cfg.EndedLogRetention = DefaultEndedLogRetention
	}
	r := &Runtime{cfg: cfg, containers: map[string]*container{}, images: map[string]runtime.Image{}, ended: map[string]endedLog{},
		done: make(chan struct{})}
	for _, name := range cfg.Images {
		r.images[name] = imageNamed(name)
	}
	return r
}

// imageNamed is the record of an image the simulation pretends to hold:
// a digest made from its name (stable across restarts), no bytes.
func imageNamed(name string) runtime.Image {
	sum := sha256.Sum256([]byte("berth-sim image " + name))
	return runtime.Image{Name: name, Digest: "sha256:" + hex.EncodeToString(sum[:])}
}

// Version implements runtime.Runtime.
func (r *Runtime) Version(context.Context) (string, error) { return Version, nil }

// Run records the container, waits StartDelay as containerd would take to
// create and start its task, and returns it as it is then.
func (r *Runtime) Run(ctx context.Context, s runtime.Spec) (runtime.Container, error) {
	if s.ID == "" {
		return runtime.Container{}, fmt.Errorf("run: container id: must not be empty")
	}
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	if _, ok := r.containers[s.ID]; ok {
		r.mu.Unlock()
		return runtime.Container{}, fmt.Errorf("run %s: container already exists", s.ID)
	}
	if s.Image == "" {
		r.mu.Unlock()
		return runtime.Container{}, fmt.Errorf("run %s: no image named: %w", s.ID, runtime.ErrImageNotFound)
	}
	if _, ok := r.images[s.Image]; !ok {
		r.images[s.Image] = imageNamed(s.Image) // pulled, as far as anyone can tell
	}
	im := r.images[s.Image]
	im.LastUsed = now
	r.images[s.Image] = im
	c := &container{spec: cloneSpec(s), intent: parseIntent(s.Command), created: now, digest: im.Digest}
	c.load, c.mem = shares(s.ID)
	// Created, no task yet: List shows it so while Run waits.
	r.containers[s.ID] = c
	r.mu.Unlock()

	if d := r.cfg.StartDelay; d > 0 {
		select {
		case <-r.cfg.Clock.After(d):
		case <-ctx.Done():
			r.mu.Lock()
			delete(r.containers, s.ID)
			r.mu.Unlock()
			return runtime.Container{}, fmt.Errorf("run %s: %w", s.ID, ctx.Err())
		}
	}
	if s.GPU.BeforeStart != nil {
		// No cgroup exists: "" is what cgroup v1 passes too.
		if err := s.GPU.BeforeStart(ctx, ""); err != nil {
			r.mu.Lock()
			delete(r.containers, s.ID)
			r.mu.Unlock()
			return runtime.Container{}, fmt.Errorf("run %s: before start: %w", s.ID, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.containers[s.ID] != c {
		return runtime.Container{}, fmt.Errorf("run %s: removed while starting: %w", s.ID, runtime.ErrNotFound)
	}
	c.started = r.cfg.Clock.Now()
	c.log = fmt.Appendf(nil, "[berth-sim] %s started %q (image %s): %s\n", c.started.UTC().Format(time.RFC3339Nano), s.Command, s.Image, c.intent)
	r.feed.Publish(runtime.Event{ID: s.ID, Kind: runtime.EventStarted})
	if c.intent.kind == finite && r.feed.Subscribed() {
		go r.publishExit(c)
	}
	return c.view(c.started), nil
}

// Events implements runtime.Runtime.
func (r *Runtime) Events(ctx context.Context) <-chan runtime.Event { return r.feed.Subscribe(ctx) }

// publishExit publishes the end of a container that exits by itself, once
// the clock reaches it, unless it was stopped or removed before.
func (r *Runtime) publishExit(c *container) {
	select {
	case <-r.cfg.Clock.After(c.intent.runs):
	case <-r.done:
		return
	}
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.containers[c.spec.ID] != c || !c.stopped.IsZero() {
		return // its stop or removal was published
	}
	if _, _, ended := c.exit(now); ended {
		r.feed.Publish(runtime.Event{ID: c.spec.ID, Kind: runtime.EventExited})
	}
}

// cloneSpec keeps what the container needs later and nothing the caller
// may change.
func cloneSpec(s runtime.Spec) runtime.Spec {
	s.Command = slices.Clone(s.Command)
	s.Labels = maps.Clone(s.Labels)
	s.Env = maps.Clone(s.Env)
	s.Mounts = slices.Clone(s.Mounts)
	s.GPU = runtime.GPUAccess{}
	return s
}

// exit is when and how the process ended by now, if it has.
func (c *container) exit(now time.Time) (at time.Time, code int, ok bool) {
	if c.started.IsZero() {
		return time.Time{}, 0, false
	}
	if c.intent.kind == finite {
		// At most 292 years later: no overflow.
		end := c.started.Add(c.intent.runs)
		if !end.After(now) && (c.stopped.IsZero() || !end.After(c.stopped)) {
			return end, c.intent.code, true
		}
	}
	if !c.stopped.IsZero() {
		// SIGTERM ends it: a shell or a program that does not catch it
		// exits with 128 + 15.
		return c.stopped, 143, true
	}
	return time.Time{}, 0, false
}

// view is the container as the runtime reports it at now.
func (c *container) view(now time.Time) runtime.Container {
	out := runtime.Container{ID: c.spec.ID, SessionID: c.spec.SessionID, Index: c.spec.Index, Image: c.spec.Image,
		ImageDigest: c.digest, Labels: maps.Clone(c.spec.Labels), State: runtime.Created}
	if c.started.IsZero() {
		return out
	}
	out.StartedAt, out.State = c.started, runtime.Running
	if at, code, ok := c.exit(now); ok {
		out.State, out.ExitCode, out.ExitedAt = runtime.Exited, code, at
	}
	return out
}

// List implements runtime.Runtime: every container, in id order.
func (r *Runtime) List(context.Context) ([]runtime.Container, error) {
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("list containers: the simulated runtime is closed")
	}
	out := make([]runtime.Container, 0, len(r.containers))
	for _, id := range slices.Sorted(maps.Keys(r.containers)) {
		out = append(out, r.containers[id].view(now))
	}
	return out, nil
}

// Stop implements runtime.Runtime. Every simulated process ends on
// SIGTERM, so grace is never used up; one that has ended stays as it was.
func (r *Runtime) Stop(_ context.Context, id string, _ time.Duration) error {
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return fmt.Errorf("stop %s: %w", id, runtime.ErrNotFound)
	}
	if c.started.IsZero() {
		return nil // no task: nothing to stop
	}
	if _, _, ended := c.exit(now); !ended {
		c.stopped = now
		r.feed.Publish(runtime.Event{ID: id, Kind: runtime.EventExited})
	}
	return nil
}

// Remove implements runtime.Runtime: the container goes, killed first if
// it runs; its log is kept for EndedLogRetention.
func (r *Runtime) Remove(_ context.Context, id string) error {
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return fmt.Errorf("remove: %w", runtime.ErrNotFound)
	}
	if _, _, ended := c.exit(now); !ended && !c.started.IsZero() {
		c.stopped = now
	}
	delete(r.containers, id)
	r.keepEndedLog(id, c, now)
	r.feed.Publish(runtime.Event{ID: id, Kind: runtime.EventDeleted})
	return nil
}

// Close implements runtime.Runtime.
func (r *Runtime) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		close(r.done)
	}
	r.closed = true
	return nil
}

// running returns a container whose process runs now.
func (r *Runtime) running(id string, now time.Time) (*container, error) {
	c, ok := r.containers[id]
	if !ok {
		return nil, runtime.ErrNotFound
	}
	if c.view(now).State != runtime.Running {
		return nil, runtime.ErrNotRunning
	}
	return c, nil
}

var _ runtime.Runtime = (*Runtime)(nil)
