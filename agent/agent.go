package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/berth-cluster/berth/agent/fingerprint"
	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
	"github.com/berth-cluster/berth/shared/tlsfiles"
)

// Agent is one running berth-agent.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	facts    fingerprint.Facts
	capacity slots.Slots
	mgr      Manager
	conv     *converger
	metrics  *metrics
	listener net.Listener
	addr     string
	// streams are the open terminals and port tunnels, closed with a
	// reason when the agent stops.
	streams *streams

	// converging serialises convergence between the desired and resync loops.
	converging sync.Mutex

	// pulls fetches images; gc removes unused ones when the disk fills.
	// A pull starting or ending wakes convergence and the heartbeat
	// (converge, beat) and image collection (gcKick).
	pulls                  *puller
	gc                     *imageGC
	converge, beat, gcKick chan struct{}
	// reportKick prompts a report of the containers that changed, told
	// what the managers last heard (reports.go).
	reportKick chan struct{}
	told       told

	mu         sync.Mutex
	id         identity
	lastErrors []string
}

// New fingerprints the node and prepares the agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	facts, err := fingerprint.Read(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("fingerprint the node: %w", err)
	}
	id, err := loadIdentity(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	capacity := slots.Slots{
		slots.CPU: max(0, int64(facts.CPUs)*1000-cfg.ReservedMilliCPU),
		slots.Mem: max(0, facts.MemoryBytes-cfg.ReservedMemBytes),
	}
	for n, v := range cfg.GPUs.Capacity() {
		capacity[n] = v
	}
	mgr := cfg.Manager
	if mgr == nil {
		var dial *tls.Config
		if cfg.TLS != (tlsfiles.Files{}) {
			if dial, err = cfg.TLS.Client(); err != nil {
				return nil, fmt.Errorf("-tls-ca: %w", err)
			}
		}
		mgr = &httpManager{addrs: cfg.Managers, token: cfg.Token, tls: dial, shared: cfg.HTTPClient}
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	if cfg.TLS.Serving() {
		serve, err := cfg.TLS.Server(false)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("-tls-cert: %w", err)
		}
		ln = tls.NewListener(ln, serve)
	}
	addr := cfg.Advertise
	if addr == "" {
		addr = ln.Addr().String()
	}
	a := &Agent{cfg: cfg, log: cfg.Log, facts: facts, capacity: capacity, mgr: mgr, id: id, listener: ln, addr: addr, streams: newStreams(),
		conv: newConverger(cfg.Runtime, cfg.GPUs, cfg.Log, cfg.Now, cfg.OrphanGrace, cfg.StopGrace)}
	a.conv.folderHosts = cfg.FolderHosts
	a.conv.quotas.q = cfg.Quotas
	a.conv.quotas.hosts = findQuotaHosts(cfg.Quotas, cfg.FolderHosts, cfg.Log)
	a.conv.users = sessionUsers(cfg)
	a.conv.net = cfg.Network
	a.converge, a.beat, a.gcKick = make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{}, 1)
	a.reportKick = make(chan struct{}, 1)
	a.pulls = newPuller(cfg.Runtime, cfg.Log, cfg.Now, cfg.PullStall, cfg.Metrics)
	a.pulls.changed = func() { kick(a.converge); kick(a.beat); kick(a.gcKick) }
	a.conv.pulls = a.pulls
	a.gc = newImageGC(cfg.Runtime, cfg.Log, cfg.ImageGCHigh, cfg.ImageGCLow, a.conv.imagesWanted, a.pulls.pulling, cfg.Metrics)
	a.metrics = newMetrics(cfg.Metrics, a)
	return a, nil
}

// Addr is the address the agent's API listens on.
func (a *Agent) Addr() string { return a.addr }

// ID is the id the managers gave this agent ("" before registration).
func (a *Agent) ID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id.ID
}

// Run serves until ctx ends. Containers keep running when it returns: an
// agent restart must not disturb sessions.
func (a *Agent) Run(ctx context.Context) error {
	a.pulls.run(ctx)
	defer a.pulls.wait() // pulls end with ctx
	// ErrorLog: failed TLS handshakes and the like go to the structured log.
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("agent http server stopped", "err", err)
		}
	}()
	defer func() {
		// Terminals and tunnels first: they are hijacked connections,
		// which Shutdown leaves alone; their processes end with them.
		a.streams.closeAll("agent " + a.ID() + " is shutting down")
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
		wg.Wait()
	}()

	if d := a.cfg.StartAfter; d > 0 {
		// Agents of one process start apart, so their heartbeats do not
		// all reach the managers in the same instant.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
	// Re-attach: whatever runs now was started by an earlier run of this
	// agent; it is not started again.
	if existing, err := a.cfg.Runtime.List(ctx); err != nil {
		a.noteError(fmt.Errorf("list containers at start: %w", err))
	} else {
		a.conv.adopt(existing)
		a.conv.dropTaskless(ctx, existing)
		a.log.Info("re-attached to running containers", "count", len(existing))
		if a.cfg.Network != nil {
			// What no container owns any more (it ended while the agent
			// was down, or the agent died mid-start) is freed now.
			live := map[string]bool{}
			for _, ct := range existing {
				if ct.State != runtime.Created {
					live[ct.ID] = true
				}
			}
			if err := a.cfg.Network.Sweep(ctx, live); err != nil {
				a.noteError(fmt.Errorf("sweep session networks at start: %w", err))
			}
		}
	}
	if err := a.register(ctx); err != nil {
		return err // only ctx ending stops registration
	}
	// Subscribed before the loops start: no change after this is missed.
	events := a.cfg.Runtime.Events(ctx)
	loops := []func(context.Context){a.heartbeatLoop, a.desiredLoop, a.resyncLoop, a.gcLoop,
		func(ctx context.Context) { a.eventLoop(ctx, events) }}
	var looping sync.WaitGroup
	for _, loop := range loops {
		looping.Go(func() { loop(ctx) })
	}
	<-ctx.Done()
	// The loops end first: a converge still running could start a stop
	// (stops.Add) while waitStops waits, which sync.WaitGroup forbids and
	// which would let that stop outlive Run.
	looping.Wait()
	a.conv.waitStops() // stops under way end with ctx; none outlives Run
	return nil
}

// register introduces the agent to the managers, retrying until they
// answer; the id and secret are kept in the state dir.
func (a *Agent) register(ctx context.Context) error {
	backoff := 500 * time.Millisecond
	for {
		err := a.registerOnce(ctx)
		if err == nil {
			return nil
		}
		a.log.Warn("registration failed; retrying", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (a *Agent) registerOnce(ctx context.Context) error {
	images, err := a.images(ctx)
	if err != nil {
		a.noteError(err)
	}
	a.mu.Lock()
	id := a.id
	a.mu.Unlock()
	req := api.AgentRegister{ID: id.ID, Address: a.addr, Capacity: a.capacity, Node: a.nodeInfo(ctx), Images: images,
		GPUs: a.cfg.GPUs.Devices(), GPUShareQuantum: a.cfg.GPUs.Quantum(),
		FolderHosts: a.folderHostNames(), ProjectQuotaHosts: a.quotaHostNames(), Version: a.cfg.Version, Simulated: a.cfg.Simulated}
	out, err := a.mgr.Register(ctx, req, id.Secret)
	var p *api.Problem
	if err != nil && id.ID != "" && errors.As(err, &p) && p.Status == http.StatusUnauthorized {
		// The managers do not know this id (their state was rebuilt, or the
		// agent was removed): join again as a new agent.
		a.log.Warn("the managers do not know this agent's id; registering as a new agent", "old_id", id.ID)
		id = identity{}
		req.ID = ""
		out, err = a.mgr.Register(ctx, req, "")
	}
	if err != nil {
		return err
	}
	if out.Secret != "" {
		id = identity{ID: out.ID, Secret: out.Secret}
		if err := saveIdentity(a.cfg.StateDir, id); err != nil {
			return err
		}
	}
	a.mu.Lock()
	a.id = id
	a.mu.Unlock()
	a.log.Info("registered", "agent", id.ID, "capacity", a.capacity.String(), "gpus", len(req.GPUs), "fake_gpus", a.cfg.GPUs.Fake(), "simulated", a.cfg.Simulated)
	return nil
}

func (a *Agent) nodeInfo(ctx context.Context) api.NodeInfo {
	v, err := a.cfg.Runtime.Version(ctx)
	if err != nil {
		a.noteError(fmt.Errorf("containerd version: %w", err))
	}
	return api.NodeInfo{Hostname: a.facts.Hostname, Arch: a.facts.Arch, Kernel: a.facts.Kernel, CPUs: a.facts.CPUs,
		MemoryBytes: a.facts.MemoryBytes, ReservedCPU: string(slots.Format(slots.CPU, a.cfg.ReservedMilliCPU)),
		ReservedMemBytes: a.cfg.ReservedMemBytes, ContainerdVersion: v, CgroupVersion: a.facts.CgroupVersion,
		Network: a.networkInfo()}
}

func (a *Agent) images(ctx context.Context) ([]api.Image, error) {
	imgs, err := a.cfg.Runtime.Images(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]api.Image, len(imgs))
	for i, im := range imgs {
		out[i] = api.Image{Name: im.Name, Digest: im.Digest, Size: im.Size}
	}
	return out, nil
}

// kick wakes a loop that waits on ch, without blocking: one wake-up
// pending is enough.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// noteError remembers a failure for the next heartbeat, so the managers see
// it (an agent with a broken containerd stays up and says so).
func (a *Agent) noteError(err error) {
	a.log.Warn("agent error", "err", err)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.lastErrors) < 16 {
		a.lastErrors = append(a.lastErrors, err.Error())
	}
}

func (a *Agent) takeErrors() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.lastErrors
	a.lastErrors = nil
	return out
}

func (a *Agent) credentials() identity {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id
}

// quotaHostNames are the folder hosts with project quotas, sorted, never nil.
func (a *Agent) quotaHostNames() []string {
	return append([]string{}, slices.Sorted(maps.Keys(a.conv.quotas.hosts))...)
}

// folderHostNames are the names of -folder-host, sorted; never nil, so an
// agent without hosts says so.
func (a *Agent) folderHostNames() []string {
	if out := slices.Sorted(maps.Keys(a.cfg.FolderHosts)); out != nil {
		return out
	}
	return []string{}
}
