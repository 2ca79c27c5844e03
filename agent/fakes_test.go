package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
)

// fakeRuntime holds containers in memory; tests change them behind the
// agent's back to simulate crashes and removals.
type fakeRuntime struct {
	mu         sync.Mutex
	containers map[string]runtime.Container
	images     map[string]bool
	runs       []runtime.Spec
	pids       map[string][]uint32 // container id → host pids of its task
	removed    []string
	listErr    error
	procs      []*fakeProcess

	// Images: pulled are the refs Pull was asked for; pull decides how a
	// pull goes (nil: it fails, no registry serves the image); used is
	// each image's last use; disk what ImageDisk says, and each removed
	// image frees imageBytes of it.
	pulled        []string
	pull          func(ctx context.Context, req runtime.PullRequest) error
	used          map[string]time.Time
	disk          runtime.DiskUsage
	imageBytes    int64
	removedImages []string

	// feed is Events: tests publish what containerd would (emit).
	feed runtime.Feed
	// afterList, when set, runs once List has read the containers, before
	// it returns (a test starts a container in between).
	afterList func()
}

func (f *fakeRuntime) Events(ctx context.Context) <-chan runtime.Event { return f.feed.Subscribe(ctx) }

// emit publishes an event as containerd would after a change.
func (f *fakeRuntime) emit(id string, kind runtime.EventKind) {
	f.feed.Publish(runtime.Event{ID: id, Kind: kind})
}

func newFakeRuntime(images ...string) *fakeRuntime {
	f := &fakeRuntime{containers: map[string]runtime.Container{}, images: map[string]bool{}}
	for _, i := range images {
		f.images[i] = true
	}
	return f
}

func (f *fakeRuntime) Version(context.Context) (string, error) { return "fake-1.0", nil }

func (f *fakeRuntime) Run(_ context.Context, s runtime.Spec) (runtime.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.images[s.Image] {
		return runtime.Container{}, fmt.Errorf("run %s: %w: %s", s.ID, runtime.ErrImageNotFound, s.Image)
	}
	f.runs = append(f.runs, s)
	c := runtime.Container{ID: s.ID, SessionID: s.SessionID, Index: s.Index, Image: s.Image, Labels: s.Labels, State: runtime.Running, StartedAt: time.Unix(100, 0)}
	f.containers[s.ID] = c
	return c, nil
}

func (f *fakeRuntime) List(context.Context) ([]runtime.Container, error) {
	f.mu.Lock()
	if f.listErr != nil {
		f.mu.Unlock()
		return nil, f.listErr
	}
	var out []runtime.Container
	for _, c := range f.containers {
		out = append(out, c)
	}
	after := f.afterList
	f.afterList = nil // once: what it runs may list again
	f.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if after != nil {
		after()
	}
	return out, nil
}

func (f *fakeRuntime) Stop(_ context.Context, id string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return runtime.ErrNotFound
	}
	c.State = runtime.Exited
	c.ExitCode = 143
	f.containers[id] = c
	return nil
}

func (f *fakeRuntime) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.containers[id]; !ok {
		return runtime.ErrNotFound
	}
	delete(f.containers, id)
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeRuntime) Exec(_ context.Context, id string, cmd []string, _ time.Duration) (runtime.ExecResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return runtime.ExecResult{}, runtime.ErrNotFound
	}
	if c.State != runtime.Running {
		return runtime.ExecResult{}, runtime.ErrNotRunning
	}
	return runtime.ExecResult{ExitCode: 0, Stdout: []byte(fmt.Sprint(cmd))}, nil
}

func (f *fakeRuntime) Usage(context.Context, string) (runtime.Usage, error) {
	return runtime.Usage{CPUSeconds: 1.5, MemoryWorkingSet: 1 << 20}, nil
}

func (f *fakeRuntime) Pids(_ context.Context, id string) ([]uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return nil, runtime.ErrNotFound
	}
	if c.State != runtime.Running {
		return nil, runtime.ErrNotRunning
	}
	return f.pids[id], nil
}

func (f *fakeRuntime) Logs(_ context.Context, id string, _ time.Time) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.containers[id]; !ok {
		return nil, runtime.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader([]byte("hello from " + id + "\n"))), nil
}

// StartExec starts a fakeProcess: it echoes its input, takes "exit N" as
// its end and records its sizes.
func (f *fakeRuntime) StartExec(_ context.Context, id string, o runtime.ExecOptions) (runtime.Process, error) {
	f.mu.Lock()
	c, ok := f.containers[id]
	f.mu.Unlock()
	switch {
	case !ok:
		return nil, runtime.ErrNotFound
	case c.State != runtime.Running:
		return nil, runtime.ErrNotRunning
	case o.Command[0] == "/bin/bash":
		// As containerd's does, the failed try still reads its input until
		// it ends.
		if o.Stdin != nil {
			go func() { _, _ = io.Copy(io.Discard, o.Stdin) }()
		}
		return nil, fmt.Errorf("exec %q: %w", o.Command[0], runtime.ErrCommandNotFound)
	}
	p := &fakeProcess{cmd: o.Command, sizes: [][2]uint16{{o.Cols, o.Rows}}, done: make(chan struct{})}
	f.mu.Lock()
	f.procs = append(f.procs, p)
	f.mu.Unlock()
	go p.run(o)
	return p, nil
}

type fakeProcess struct {
	cmd    []string
	mu     sync.Mutex
	sizes  [][2]uint16
	closed bool
	code   int
	done   chan struct{}
	once   sync.Once
}

func (p *fakeProcess) run(o runtime.ExecOptions) {
	defer p.once.Do(func() { close(p.done) })
	fmt.Fprintf(o.Stdout, "$ %s\n", strings.Join(p.cmd, " "))
	if o.Stdin == nil {
		return
	}
	buf := make([]byte, 4096)
	for {
		n, err := o.Stdin.Read(buf)
		if n > 0 {
			if _, err := o.Stdout.Write(buf[:n]); err != nil {
				return
			}
			var code int
			if _, err := fmt.Sscanf(string(buf[:n]), "exit %d", &code); err == nil {
				p.mu.Lock()
				p.code = code
				p.mu.Unlock()
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *fakeProcess) Resize(_ context.Context, cols, rows uint16) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sizes = append(p.sizes, [2]uint16{cols, rows})
	return nil
}

func (p *fakeProcess) Wait(ctx context.Context) (int, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.code, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (p *fakeProcess) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.once.Do(func() { close(p.done) })
	return nil
}

func (p *fakeProcess) state() (sizes [][2]uint16, closed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][2]uint16(nil), p.sizes...), p.closed
}

func (f *fakeRuntime) processes() []*fakeProcess {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeProcess(nil), f.procs...)
}

func (f *fakeRuntime) ImportImage(context.Context, io.Reader) ([]runtime.Image, error) {
	return nil, nil
}

func (f *fakeRuntime) Images(context.Context) ([]runtime.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []runtime.Image
	for n := range f.images {
		out = append(out, runtime.Image{Name: n, Digest: "sha256:0", LastUsed: f.used[n]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeRuntime) Image(_ context.Context, name string) (runtime.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.images[name] {
		return runtime.Image{}, fmt.Errorf("image %s: %w", name, runtime.ErrImageNotFound)
	}
	return runtime.Image{Name: name, Digest: "sha256:0"}, nil
}

func (f *fakeRuntime) Pull(ctx context.Context, req runtime.PullRequest) (runtime.Image, error) {
	f.mu.Lock()
	f.pulled = append(f.pulled, req.Ref)
	pull := f.pull
	f.mu.Unlock()
	err := fmt.Errorf("pull %s: no registry serves it", req.Ref)
	if pull != nil {
		err = pull(ctx, req)
	}
	if err != nil {
		return runtime.Image{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[req.Ref] = true
	return runtime.Image{Name: req.Ref, Digest: "sha256:1"}, nil
}

func (f *fakeRuntime) RemoveImage(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.images[name] {
		return fmt.Errorf("image %s: %w", name, runtime.ErrImageNotFound)
	}
	for _, c := range f.containers {
		if c.Image == name {
			return fmt.Errorf("image %s: container %s: %w", name, c.ID, runtime.ErrImageInUse)
		}
	}
	delete(f.images, name)
	f.removedImages = append(f.removedImages, name)
	f.disk.UsedBytes -= f.imageBytes
	return nil
}

func (f *fakeRuntime) ImageDisk(context.Context) (runtime.DiskUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.disk.TotalBytes == 0 {
		return runtime.DiskUsage{Path: "/fake", UsedBytes: 1, TotalBytes: 100}, nil
	}
	return f.disk, nil
}

func (f *fakeRuntime) Close() error { return nil }

// fakeManager answers the agent like the managers would, in memory.
type fakeManager struct {
	mu         sync.Mutex
	desired    api.DesiredState
	changed    chan struct{}
	registers  []api.AgentRegister
	secrets    []string
	heartbeats []api.AgentHeartbeat
	rejectHB   bool
	// reports are the agent's reports of changed containers; onReport,
	// when set, runs before a report is taken (a test holds one in flight).
	reports  [][]api.ContainerReport
	onReport func(ctx context.Context, changed []api.ContainerReport)
}

func (m *fakeManager) Report(ctx context.Context, _, _ string, changed []api.ContainerReport) error {
	m.mu.Lock()
	hook := m.onReport
	m.mu.Unlock()
	if hook != nil {
		hook(ctx, changed)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reports = append(m.reports, append([]api.ContainerReport(nil), changed...))
	return nil
}

// reported returns copies of the reports received so far.
func (m *fakeManager) reported() [][]api.ContainerReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][]api.ContainerReport(nil), m.reports...)
}

func newFakeManager() *fakeManager {
	return &fakeManager{desired: api.DesiredState{Index: 1}, changed: make(chan struct{})}
}

func (m *fakeManager) setDesired(cs ...api.DesiredContainer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.desired = api.DesiredState{Index: m.desired.Index + 1, Containers: cs}
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *fakeManager) Register(_ context.Context, req api.AgentRegister, secret string) (api.AgentRegistered, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.registers = append(m.registers, req)
	m.secrets = append(m.secrets, secret)
	if req.ID != "" {
		return api.AgentRegistered{ID: req.ID}, nil
	}
	return api.AgentRegistered{ID: "agent-test", Secret: "s3cret"}, nil
}

func (m *fakeManager) Heartbeat(_ context.Context, _, _ string, hb api.AgentHeartbeat) (api.HeartbeatAnswer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rejectHB {
		m.rejectHB = false
		return api.HeartbeatAnswer{}, &api.Problem{Status: 401, Title: "Not authenticated"}
	}
	m.heartbeats = append(m.heartbeats, hb)
	return api.HeartbeatAnswer{Status: api.AgentAlive, DesiredIndex: m.desired.Index}, nil
}

func (m *fakeManager) Desired(ctx context.Context, _, _ string, index uint64, wait time.Duration) (api.DesiredState, error) {
	m.mu.Lock()
	ds, ch := m.desired, m.changed
	m.mu.Unlock()
	if ds.Index > index {
		return ds, nil
	}
	select {
	case <-ch:
	case <-time.After(wait):
	case <-ctx.Done():
		return api.DesiredState{}, ctx.Err()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.desired, nil
}

func (m *fakeManager) lastHeartbeat() (api.AgentHeartbeat, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.heartbeats) == 0 {
		return api.AgentHeartbeat{}, 0
	}
	return m.heartbeats[len(m.heartbeats)-1], len(m.heartbeats)
}

// registrations returns copies of the registrations and the secrets sent.
func (m *fakeManager) registrations() ([]api.AgentRegister, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]api.AgentRegister(nil), m.registers...), append([]string(nil), m.secrets...)
}

func (f *fakeRuntime) runCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.runs)
}
