// Package simfleet runs simulated agents (berth-agent -runtime sim): the
// real agent of package agent, with its registration, heartbeats,
// desired-state queries, convergence and API, on the in-memory runtime of
// agent/runtime/sim and a node of the size it is told, one or many in one
// process. Each agent has its own id and secret (its own state directory),
// its own API listener, its own loops, and starts a little after the one
// before, so that the heartbeats of a fleet spread over the interval.
package simfleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/agent"
	"github.com/berth-cluster/berth/agent/fsquota"
	"github.com/berth-cluster/berth/agent/gpu"
	"github.com/berth-cluster/berth/agent/runtime/sim"
	"github.com/berth-cluster/berth/shared/tlsfiles"
)

// MaxCount bounds -sim-count: each agent holds a listener and a few
// connections to the managers.
const MaxCount = 10000

// Defaults of the simulated node's size.
const (
	DefaultCPUs        = 16
	DefaultMemoryBytes = 64 << 30
)

// Config says how many agents to run and what they are like.
type Config struct {
	// Count is how many agents (1 to MaxCount).
	Count int
	// Agent is what every agent shares: managers, join token, TLS,
	// reserved resources, heartbeat interval, users, folder hosts, log,
	// version. StateDir, HTTPAddr, Advertise, Runtime, GPUs, Host, Quotas,
	// Metrics, Gatherer, HTTPClient and StartAfter are set per agent.
	Agent agent.Config
	// StateDir holds the agent's identity (Count 1), or one directory per
	// agent, sim-0000, sim-0001, … (Count > 1), so each keeps its id across
	// restarts.
	StateDir string
	// HTTPAddr is the agent's API listener (Count 1); with Count > 1 each
	// agent listens on its host with a port the system picks, and tells
	// the managers that address.
	HTTPAddr string
	// Advertise is the address the managers dial (Count 1 only).
	Advertise string
	// Runtime is the simulated runtime's behaviour (start delay, images).
	Runtime sim.Config
	// CPUs and MemoryBytes are each simulated node's size before
	// Agent.Reserved* (0: DefaultCPUs, DefaultMemoryBytes).
	CPUs        int
	MemoryBytes int64
	// FakeGPUs gives each node that many mock GPUs (as -fake-gpus), with
	// GPUShares per GPU and allocation quantum GPUQuantum (slots units; 0:
	// the gpu package's defaults).
	FakeGPUs              int
	GPUShares, GPUQuantum int64
	// Registry receives every agent's metrics, labelled simulated="true"
	// (and sim_agent="N" with Count > 1), and is what each agent's
	// /metrics serves; nil: no metrics.
	Registry *prometheus.Registry
	// Started, when set, is called with each agent once it is made (before
	// it registers): its API address, for the caller to print.
	Started func(index int, a *agent.Agent)
}

// Check reports every problem of the configuration at once.
func (c *Config) Check() error {
	var errs []error
	if c.Count < 1 || c.Count > MaxCount {
		errs = append(errs, fmt.Errorf("-sim-count %d: must be from 1 to %d", c.Count, MaxCount))
	}
	if c.CPUs < 0 {
		errs = append(errs, fmt.Errorf("-sim-cpus %d: must be positive", c.CPUs))
	}
	if c.MemoryBytes < 0 {
		errs = append(errs, fmt.Errorf("-sim-memory %d: must be positive", c.MemoryBytes))
	}
	if c.Runtime.StartDelay < 0 {
		errs = append(errs, fmt.Errorf("-sim-start-delay %s: must not be negative", c.Runtime.StartDelay))
	}
	if c.FakeGPUs < 0 || c.FakeGPUs > gpu.MaxFakeGPUs {
		errs = append(errs, fmt.Errorf("-fake-gpus %d: must be from 0 to %d", c.FakeGPUs, gpu.MaxFakeGPUs))
	}
	if c.Count > 1 && c.Advertise != "" {
		errs = append(errs, errors.New("-advertise-addr names one address: with -sim-count above 1 each simulated agent advertises the address it listens on (give -http-addr a host the managers reach)"))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("-state-dir is required"))
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			errs = append(errs, fmt.Errorf("-http-addr %q must be host:port", c.HTTPAddr))
		}
	}
	return errors.Join(errs...)
}

// Run starts the agents and serves until ctx ends (or an agent stops with
// an error: then the others are stopped too).
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Check(); err != nil {
		return err
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = DefaultCPUs
	}
	if cfg.MemoryBytes == 0 {
		cfg.MemoryBytes = DefaultMemoryBytes
	}
	log := cfg.Agent.Log
	if log == nil {
		log = slog.Default()
	}
	httpClient, err := sharedClient(cfg.Agent.TLS, cfg.Count)
	if err != nil {
		return err
	}
	defer httpClient.CloseIdleConnections()
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "localhost"
	}
	every := cfg.Agent.HeartbeatEvery
	if every <= 0 {
		every = 3 * time.Second
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
		cancel()
	}
	for i := range cfg.Count {
		a, closeGPUs, err := newAgent(cfg, i, hostname, httpClient, every, log)
		if err != nil {
			fail(err)
			break
		}
		if cfg.Started != nil {
			cfg.Started(i, a)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer closeGPUs()
			if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				fail(fmt.Errorf("simulated agent %d: %w", i, err))
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// newAgent makes simulated agent i.
func newAgent(cfg Config, i int, hostname string, httpClient *http.Client, every time.Duration, log *slog.Logger) (*agent.Agent, func(), error) {
	ac := cfg.Agent
	ac.StateDir, ac.HTTPAddr, ac.Advertise = cfg.StateDir, cfg.HTTPAddr, cfg.Advertise
	name := hostname + "-sim"
	if cfg.Count > 1 {
		ac.StateDir = filepath.Join(cfg.StateDir, fmt.Sprintf("sim-%04d", i))
		host, _, _ := net.SplitHostPort(cmpOr(cfg.HTTPAddr, "127.0.0.1:0"))
		ac.HTTPAddr = net.JoinHostPort(host, "0")
		name = fmt.Sprintf("%s-sim-%04d", hostname, i)
		log = log.With("sim_agent", i)
		ac.StartAfter = time.Duration(i) * every / time.Duration(cfg.Count)
	}
	ac.Log = log
	ac.Simulated = true
	ac.HTTPClient = httpClient
	ac.Host = Host{CPUs: cfg.CPUs, MemoryBytes: cfg.MemoryBytes, Name: name}
	ac.Quotas = noQuotas{}
	ac.Runtime = sim.New(cfg.Runtime)
	gpus, err := fakeGPUs(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	ac.GPUs = gpus
	if cfg.Registry != nil {
		labels := prometheus.Labels{"simulated": "true"}
		if cfg.Count > 1 {
			labels["sim_agent"] = strconv.Itoa(i)
		}
		ac.Metrics = prometheus.WrapRegistererWith(labels, cfg.Registry)
		ac.Gatherer = cfg.Registry
	}
	a, err := agent.New(ac)
	if err != nil {
		gpus.Close()
		return nil, nil, fmt.Errorf("simulated agent %d: %w", i, err)
	}
	return a, func() { gpus.Close() }, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// fakeGPUs are a simulated node's GPUs: -fake-gpus mocks, or none. The
// host's own NVML is never asked: a GPU of the machine the simulation runs
// on is no GPU of a simulated node.
func fakeGPUs(cfg Config, log *slog.Logger) (*gpu.Node, error) {
	gc := gpu.Config{Shares: cfg.GPUShares, Quantum: cfg.GPUQuantum, Log: log}
	if cfg.FakeGPUs > 0 {
		m, err := gpu.FakeMachine(cfg.FakeGPUs)
		if err != nil {
			return nil, fmt.Errorf("-fake-gpus: %w", err)
		}
		gc.NVML, gc.Fake = gpu.NewNVML(m), true
	}
	return gpu.Open(gc)
}

// sharedClient is the one HTTP client of every agent of the process: a
// pool that keeps a connection or two per agent open between heartbeats,
// where Go's default keeps two in all and a fleet would open a new
// connection for nearly every call.
func sharedClient(files tlsfiles.Files, count int) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 2*count + 16
	tr.MaxIdleConnsPerHost = 2*count + 16
	if files != (tlsfiles.Files{}) {
		var err error
		var dial *tls.Config
		if dial, err = files.Client(); err != nil {
			return nil, fmt.Errorf("-tls-ca: %w", err)
		}
		tr.TLSClientConfig = dial
	}
	return &http.Client{Transport: tr}, nil
}

// Host is a simulated node's hardware, for the agent's fingerprint.
type Host struct {
	CPUs        int
	MemoryBytes int64
	Name        string
}

// NumCPU implements fingerprint.Host.
func (h Host) NumCPU() int { return h.CPUs }

// ReadFile implements fingerprint.Host: /proc/meminfo of the node's size;
// nothing else exists.
func (h Host) ReadFile(path string) ([]byte, error) {
	if path == "/proc/meminfo" {
		return fmt.Appendf(nil, "MemTotal: %d kB\n", h.MemoryBytes/1024), nil
	}
	return nil, fmt.Errorf("%s: %w (simulated node)", path, os.ErrNotExist)
}

// Exists implements fingerprint.Host: a simulated node has no files.
func (Host) Exists(string) bool { return false }

// Kernel implements fingerprint.Host.
func (Host) Kernel() (string, error) { return "simulated", nil }

// Hostname implements fingerprint.Host.
func (h Host) Hostname() (string, error) { return h.Name, nil }

// noQuotas: a simulated node mounts no folder, so it enforces no project
// quota (and never touches the host's filesystems).
type noQuotas struct{}

var errNoQuotas = errors.New("a simulated node has no project quotas")

func (noQuotas) Enforced(string) (bool, error) { return false, nil }
func (noQuotas) Label(context.Context, string, string) (uint32, error) {
	return 0, errNoQuotas
}
func (noQuotas) SetLimit(string, uint32, int64) error { return errNoQuotas }
func (noQuotas) ClearLimit(string, uint32) error      { return errNoQuotas }

var _ fsquota.Quotas = noQuotas{}
