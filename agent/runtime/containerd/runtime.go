// Package containerd is the product implementation of runtime.Runtime: it
// drives a containerd daemon (1.6 or later) through containerd's Go client.
//
// Everything the agent needs after a restart lives in containerd itself
// (container labels, the task, the shim-written log file), so a new Runtime
// on the same namespace re-attaches to running containers without any state
// of its own. The only in-memory state is a cache of OOM events seen since
// New, which only speeds up what List can also learn from containerd and the
// cgroup.
//
// Binaries that link this package must be built with -tags no_dynamic_plugins
// (see docs/DEPENDENCIES.md).
package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/identifiers"
	"github.com/containerd/containerd/namespaces"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/berth-cluster/berth/agent/runtime"
)

// Defaults for the zero values of Config.
const (
	DefaultNamespace   = "berth"
	DefaultSnapshotter = "overlayfs"
	DefaultPids        = 4096
	// dialTimeout bounds the wait for the socket in New: an agent started
	// before containerd should fail fast and clearly, not hang.
	dialTimeout = 5 * time.Second
)

// Config says which containerd to use and how.
type Config struct {
	// Socket is containerd's gRPC socket (required).
	Socket string
	// Namespace isolates Berth's containers and images (default "berth").
	Namespace string
	// LogDir holds one log file per container, written by the shim so that
	// output survives agent restarts (required), and the records of open
	// terminals (terminals.go), which a new Runtime on it ends.
	LogDir string
	// EndedLogRetention is how long the output of a removed container is
	// kept (under LogDir/ended) for GET logs of a finished session
	// (default 24h; negative: not kept).
	EndedLogRetention time.Duration
	// FIFODir is where exec output FIFOs are created (default: a
	// berth-fifo folder in the system temp dir).
	FIFODir string
	// TempDir is where ImportImage spools an archive while validating it
	// (default: the system temp dir). It needs room for the largest image.
	TempDir string
	// RuncRoot is runc's state directory (default: containerd's, under
	// /run/containerd). Private containerds (tests, dev) set their own.
	RuncRoot string
	// Snapshotter for container filesystems (default "overlayfs").
	Snapshotter string
	// DefaultPids bounds processes when a Spec asks for none (default 4096).
	DefaultPids int64
	// CgroupRoot is where cgroupfs is mounted (default /sys/fs/cgroup); it is
	// read to learn the cgroup version and, after an exit, OOM kill counts.
	CgroupRoot string
	// CDISpecDirs are where CDI specs are read when a Spec names CDI
	// devices (default: cdi's /etc/cdi and /var/run/cdi).
	CDISpecDirs []string
	// HomeDir holds the containers' home directories (Spec.Home), one per
	// container, removed with it. Required for a Spec with a Home.
	HomeDir string
	// Seccomp is the seccomp profile of every container; nil is
	// containerd's default profile (LoadSeccompProfile reads one).
	Seccomp *specs.LinuxSeccomp
	// UserNS, when set, runs every container in a user namespace whose ids
	// 0..Size-1 are the host's HostUID.. and HostGID.. (root in a container
	// is then an unprivileged host user). Each image's files are copied
	// once, owned by the mapped ids (containerd's remapped snapshot).
	UserNS *IDMap
	// Logger receives background problems (event stream lost, ...); nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock ended logs are aged by (default time.Now).
	Now func() time.Time
}

// Runtime implements runtime.Runtime on containerd.
type Runtime struct {
	client *ctrd.Client
	cfg    Config
	cg     cgroupInfo

	// Cancels the event watcher; wg waits for it in Close. feed hands
	// the events to Events' readers.
	stopEvents context.CancelFunc
	wg         sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error

	feed runtime.Feed

	mu  sync.Mutex
	oom map[string]bool // container id → an OOM event was seen for it
}

var _ runtime.Runtime = (*Runtime)(nil)

// New connects to containerd and starts watching its task events. A daemon that is
// not running is reported as such, naming the socket.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Socket == "" {
		return nil, errors.New("containerd runtime: no socket configured")
	}
	if cfg.LogDir == "" {
		return nil, errors.New("containerd runtime: no log dir configured")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if err := identifiers.Validate(cfg.Namespace); err != nil {
		return nil, fmt.Errorf("containerd runtime: namespace: %w", err)
	}
	if cfg.Snapshotter == "" {
		cfg.Snapshotter = DefaultSnapshotter
	}
	if cfg.DefaultPids == 0 {
		cfg.DefaultPids = DefaultPids
	}
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "/sys/fs/cgroup"
	}
	if cfg.FIFODir == "" {
		cfg.FIFODir = filepath.Join(os.TempDir(), "berth-fifo")
	}
	if len(cfg.CDISpecDirs) == 0 {
		cfg.CDISpecDirs = cdi.DefaultSpecDirs
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.EndedLogRetention == 0 {
		cfg.EndedLogRetention = DefaultEndedLogRetention
	}
	if err := os.MkdirAll(cfg.LogDir, 0o750); err != nil {
		return nil, fmt.Errorf("containerd runtime: log dir: %w", err)
	}
	if cfg.HomeDir != "" {
		// Searchable by others, so that a remapped root can reach the
		// homes; each home itself is 0750 and its user's.
		if err := os.MkdirAll(cfg.HomeDir, 0o711); err != nil {
			return nil, fmt.Errorf("containerd runtime: home dir: %w", err)
		}
		if err := os.Chmod(cfg.HomeDir, 0o711); err != nil {
			return nil, fmt.Errorf("containerd runtime: home dir: %w", err)
		}
		if cfg.UserNS != nil {
			if err := CheckTraversable(cfg.HomeDir); err != nil {
				return nil, fmt.Errorf("containerd runtime: home dir: %w", err)
			}
		}
	}

	if _, err := os.Stat(cfg.Socket); err != nil {
		return nil, fmt.Errorf("containerd is not running at %s: %w", cfg.Socket, err)
	}
	client, err := ctrd.New(cfg.Socket, ctrd.WithDefaultNamespace(cfg.Namespace), ctrd.WithTimeout(dialTimeout))
	if err != nil {
		return nil, fmt.Errorf("containerd is not reachable at %s: %w", cfg.Socket, err)
	}
	// A socket file can outlive its daemon; one cheap call proves it serves.
	vctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if _, err := client.Version(vctx); err != nil {
		client.Close()
		return nil, fmt.Errorf("containerd is not answering at %s: %w", cfg.Socket, err)
	}

	r := &Runtime{
		client: client,
		cfg:    cfg,
		cg:     detectCgroups(cfg.CgroupRoot),
		oom:    make(map[string]bool),
	}
	if n, err := r.sweepTerminals(ctx); err != nil {
		cfg.Logger.Warn("could not end every terminal an earlier agent left", "err", err)
	} else if n > 0 {
		cfg.Logger.Info("ended the terminals an earlier agent left open", "count", n)
	}
	evctx, stop := context.WithCancel(context.Background())
	r.stopEvents = stop
	r.wg.Add(2)
	go r.watchEvents(evctx)
	go r.clockLogs(evctx)
	return r, nil
}

// Close stops the event watcher and closes the connection. Containers keep
// running: their shims do not depend on the agent.
// Closing twice is harmless.
func (r *Runtime) Close() error {
	r.closeOnce.Do(func() {
		r.stopEvents()
		r.wg.Wait()
		r.closeErr = r.client.Close()
	})
	return r.closeErr
}

// Version is the daemon's version, e.g. "1.6.20~ds1".
func (r *Runtime) Version(ctx context.Context) (string, error) {
	v, err := r.client.Version(r.ns(ctx))
	if err != nil {
		return "", fmt.Errorf("containerd version: %w", err)
	}
	return v.Version, nil
}

// ns puts Berth's namespace on ctx; every containerd call needs one, and the
// client-side helpers (spec generation) read it from ctx, not the client.
func (r *Runtime) ns(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}

// load finds a container, mapping "absent" to runtime.ErrNotFound.
func (r *Runtime) load(ctx context.Context, id string) (ctrd.Container, error) {
	if err := identifiers.Validate(id); err != nil {
		return nil, fmt.Errorf("container %q: %w", id, runtime.ErrNotFound)
	}
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	return c, nil
}

// runningTask returns the container's task if it is running, else
// runtime.ErrNotRunning (or ErrNotFound for no container).
func (r *Runtime) runningTask(ctx context.Context, id string) (ctrd.Task, error) {
	c, err := r.load(ctx, id)
	if err != nil {
		return nil, err
	}
	t, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("container %s has no task: %w", id, runtime.ErrNotRunning)
	}
	if err != nil {
		return nil, fmt.Errorf("load task of %s: %w", id, err)
	}
	st, err := t.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("status of task %s: %w", id, err)
	}
	if st.Status != ctrd.Running {
		return nil, fmt.Errorf("container %s is %s: %w", id, st.Status, runtime.ErrNotRunning)
	}
	return t, nil
}

// logPath is where the shim writes a container's stdout and stderr.
func (r *Runtime) logPath(id string) string {
	return filepath.Join(r.cfg.LogDir, id+".log")
}

// DefaultEndedLogRetention is how long a removed container's output is kept
// when Config.EndedLogRetention is zero.
const DefaultEndedLogRetention = 24 * time.Hour

// endedLogPath is where a removed container's output is kept.
func (r *Runtime) endedLogPath(id string) string {
	return filepath.Join(r.cfg.LogDir, "ended", id+".log")
}
