// Package agent is the berth-agent daemon: it fingerprints the node,
// registers with the managers, heartbeats what really runs and what it
// uses, learns the containers it should run and converges the runtime to
// them, and serves exec, logs, terminals and port tunnels to the managers.
package agent

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/agent/fingerprint"
	"github.com/berth-cluster/berth/agent/fsquota"
	"github.com/berth-cluster/berth/agent/gpu"
	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/flagenv"
	"github.com/berth-cluster/berth/shared/tlsfiles"
)

// DefaultContainerID is the uid and gid sessions run as unless told
// otherwise: 1000, named work, with its home at ContainerHome (as
// Backend.AI's sessions do).
const DefaultContainerID = 1000

// ContainerHome is the session's home and working directory: a directory of
// its own on the host (runtime.Spec.Home); folders mount below it.
const ContainerHome = "/home/work"

// Config is everything one agent needs.
type Config struct {
	Managers  []string // manager base URLs
	Token     string   // the cluster's agent join token
	StateDir  string
	HTTPAddr  string // listen address of the agent's API
	Advertise string // address managers dial (default: the bound address)
	// TLS: CA is what the managers' certificates are checked against
	// (https:// manager URLs; empty: the system roots); Cert and Key, when
	// given, serve the agent's own API over HTTPS (the managers then run
	// with -agent-tls).
	TLS tlsfiles.Files

	ReservedMilliCPU int64
	ReservedMemBytes int64

	// FolderHosts maps storage folder hosts to their directory on this
	// node (-folder-host NAME=PATH); a folder mounts from PATH/FOLDER-ID.
	FolderHosts map[string]string
	// Quotas are the filesystems' project quotas (nil: fsquota.System).
	// Folder hosts that enforce them are found once, at start.
	Quotas fsquota.Quotas

	// ContainerUID and ContainerGID are who sessions run as (-container-uid,
	// -container-gid; 0: DefaultContainerID). A session runs as root only
	// when its policy allowed it to ask (DesiredContainer.RunAsRoot).
	ContainerUID, ContainerGID uint32
	// FolderGID, when not 0, is the storage folders' group as containers
	// see it: every session gets it as a supplementary group, so it can
	// write the folders (0770) it mounts whatever its uid.
	FolderGID uint32

	HeartbeatEvery time.Duration // default 3s
	// OrphanGrace is how long a container the manager does not want keeps
	// running before the agent removes it (it may be a placement the agent
	// has not heard of yet).
	OrphanGrace time.Duration // default 30s
	StopGrace   time.Duration // SIGTERM → SIGKILL, default 10s
	DesiredWait time.Duration // blocking query wait, default 30s
	// ResyncEvery is how often the agent converges without news from the
	// managers: to notice containers that died or vanished without an
	// event, and to remove orphans whose grace has passed (default 5s).
	ResyncEvery time.Duration
	// StreamStall is how long a terminal, followed log, streamed exec or
	// port tunnel may wait on a manager that reads nothing before it is
	// closed (default 1m): output is held back, never piled up.
	StreamStall time.Duration

	// ImageGCHigh and ImageGCLow are percentages of the image store's
	// disk (-image-gc-high, -image-gc-low; 0: 85 and 70): past the high
	// mark unused images are removed, least recently used first, down to
	// the low one. 100 turns collection off.
	ImageGCHigh, ImageGCLow float64
	// PullStall gives up a pull without progress this long (0:
	// DefaultPullStall).
	PullStall time.Duration

	Runtime runtime.Runtime
	// Network gives every session its own network (agent/network); nil:
	// containers have loopback only.
	Network Network
	// Simulated: Runtime is a simulation (agent/runtime/sim) and the node
	// runs nothing. The agent says so when it registers, so the managers
	// (which accept it only with -allow-simulated-agents) and everyone who
	// looks at it know. It is the agent's word, not a proof.
	Simulated bool
	// HTTPClient, when set, sends every call to the managers (many agents
	// in one process share one pool of connections); nil: one of the
	// agent's own.
	HTTPClient *http.Client
	// StartAfter delays Run (registration, heartbeats and all), so that the
	// agents of one process start spread over a heartbeat interval.
	StartAfter time.Duration
	// GPUs are the node's GPUs (nil: none; every container still gets
	// NVIDIA_VISIBLE_DEVICES=void).
	GPUs     *gpu.Node
	Host     fingerprint.Host
	Manager  Manager // nil: the HTTP client of Managers
	Log      *slog.Logger
	Metrics  prometheus.Registerer
	Gatherer prometheus.Gatherer
	Now      func() time.Time
	Rand     io.Reader
	Version  string
}

func (c *Config) defaults() error {
	if c.HeartbeatEvery <= 0 {
		c.HeartbeatEvery = 3 * time.Second
	}
	if c.OrphanGrace <= 0 {
		c.OrphanGrace = 30 * time.Second
	}
	if c.StopGrace <= 0 {
		c.StopGrace = 10 * time.Second
	}
	if c.DesiredWait <= 0 {
		c.DesiredWait = 30 * time.Second
	}
	if c.ResyncEvery <= 0 {
		c.ResyncEvery = 5 * time.Second
	}
	if c.StreamStall <= 0 {
		c.StreamStall = time.Minute
	}
	if c.ImageGCHigh == 0 {
		c.ImageGCHigh = DefaultImageGCHigh
	}
	if c.ImageGCLow == 0 {
		c.ImageGCLow = min(DefaultImageGCLow, c.ImageGCHigh)
	}
	if c.ContainerUID == 0 {
		c.ContainerUID = DefaultContainerID
	}
	if c.ContainerGID == 0 {
		c.ContainerGID = DefaultContainerID
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Host == nil {
		c.Host = fingerprint.System{}
	}
	if c.Quotas == nil {
		c.Quotas = fsquota.System{}
	}
	if c.GPUs == nil {
		gpus, err := gpu.Open(gpu.Config{Log: c.Log})
		if err != nil {
			return err
		}
		c.GPUs = gpus
	}
	return nil
}

func (c *Config) validate() error {
	var errs []string
	if c.Manager == nil && len(c.Managers) == 0 {
		errs = append(errs, "-manager is required (a comma-separated list of manager URLs)")
	}
	if c.Manager == nil && c.Token == "" {
		errs = append(errs, "a join token is required: -token-file FILE or BERTH_AGENT_TOKEN (from berth agent token create, or the managers' -agent-token)")
	}
	if c.StateDir == "" {
		errs = append(errs, "-state-dir is required")
	}
	if c.Runtime == nil {
		errs = append(errs, "no container runtime")
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Sprintf("-http-addr %q must be host:port", c.HTTPAddr))
	}
	if err := c.TLS.Check("tls-", false); err != nil {
		errs = append(errs, err.Error())
	}
	if c.ReservedMilliCPU < 0 || c.ReservedMemBytes < 0 {
		errs = append(errs, "reserved resources must not be negative")
	}
	if c.ImageGCHigh <= 0 || c.ImageGCHigh > 100 || c.ImageGCLow <= 0 || c.ImageGCLow > c.ImageGCHigh {
		errs = append(errs, fmt.Sprintf("-image-gc-low %g and -image-gc-high %g must be percentages with 0 < low <= high <= 100 (100: no collection)", c.ImageGCLow, c.ImageGCHigh))
	}
	errs = append(errs, flagenv.CheckHosts(c.FolderHosts)...)
	if len(errs) > 0 {
		return errors.New("invalid agent configuration: " + strings.Join(errs, "; "))
	}
	return nil
}
