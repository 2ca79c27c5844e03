// Package runtime is the agent's narrow view of a container runtime: run,
// list, stop, remove, exec, measure, and manage images. The product
// implementation is containerd (package agent/runtime/containerd); tests of
// the agent's logic use a fake behind this interface.
package runtime

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/berth-cluster/berth/shared/api"
)

// Labels every container of Berth carries, so that an agent restarted while
// containers run can tell what each one is and re-attach instead of killing.
const (
	LabelSession = "berth.session"
	LabelIndex   = "berth.index"
	LabelSlots   = "berth.slots" // JSON of the slot assignment
	// LabelGPUs is the JSON of the container's GPU slices, from which a
	// restarted agent rebuilds its GPU ledger.
	LabelGPUs = "berth.gpus"
	// LabelImageDigest is the digest of the image the container was made
	// from (set by the runtime: the session records the digest it ran).
	LabelImageDigest = "berth.image-digest"
)

// Spec is one container to run.
type Spec struct {
	ID         string // unique container id
	SessionID  string
	Index      int
	Image      string
	Command    []string
	Env        map[string]string
	WorkingDir string
	// MilliCPU is the CFS quota in thousandths of a core (0: no limit).
	MilliCPU int64
	// MemoryBytes is the memory limit; swap is off (0: no limit).
	MemoryBytes int64
	// Pids bounds the number of processes (0: the runtime's default bound).
	Pids   int64
	Labels map[string]string
	Mounts []Mount
	// GPU is how the container reaches its GPUs (zero: it has none).
	GPU GPUAccess
	// User is who the container's processes (and every exec) run as; the
	// zero User is root. The runtime keeps root's capabilities to a reduced
	// set and gives any other user none.
	User User
	// Home, when set, is where the container gets a directory of its own
	// from the host, owned by User and removed with the container: a
	// writable home whatever the image holds. Mounts below it go on top.
	Home string
	// NetNS, when set, is a network namespace (a pinned path) the
	// container joins: its session's network, which the agent made
	// before and removes after the container. Empty: a namespace of its
	// own with loopback only.
	NetNS string
}

// User is a numeric user and group inside the container.
type User struct {
	UID uint32
	GID uint32
	// AdditionalGIDs are supplementary groups (e.g. the storage folders'
	// group, so that a session can write the folders it mounts).
	AdditionalGIDs []uint32
}

// Root tells whether the user is root inside the container.
func (u User) Root() bool { return u.UID == 0 }

// GPUAccess is what a container needs of the host to use its GPUs. The
// environment (NVIDIA_VISIBLE_DEVICES, CUDA_*) is part of Spec.Env.
type GPUAccess struct {
	// CDIDevices are fully qualified CDI device names (nvidia.com/gpu=UUID),
	// injected into the OCI spec from the runtime's CDI spec directories.
	CDIDevices []string
	// DeviceNodes are host device nodes (/dev/nvidia0, …) made available
	// in the container at the same path, each with a cgroup allow rule.
	DeviceNodes []string
	// Mounts are bind mounts (driver libraries, the MPS pipe directory,
	// /dev/shm); each replaces any earlier mount at the same target.
	Mounts []Mount
	// BeforeStart runs between task create and start with the task's
	// cgroup directory (cgroup v2; "" on v1): the moment to cap what the
	// task may take before any of its code runs.
	BeforeStart func(ctx context.Context, cgroupDir string) error
}

// Empty tells whether the access grants nothing of the host.
func (g GPUAccess) Empty() bool {
	return len(g.CDIDevices) == 0 && len(g.DeviceNodes) == 0 && len(g.Mounts) == 0 && g.BeforeStart == nil
}

// Mount is a bind mount from the host.
type Mount struct {
	Source   string
	Target   string
	ReadOnly bool
}

// State of a container's task.
type State string

// Task states.
const (
	Created State = "created"
	Running State = "running"
	Exited  State = "exited"
	Unknown State = "unknown"
)

// Container is a container as the runtime sees it now.
type Container struct {
	ID        string
	SessionID string
	Index     int
	Image     string
	Labels    map[string]string
	State     State
	Pid       uint32
	StartedAt time.Time
	// Set once the task has exited.
	ExitCode  int
	ExitedAt  time.Time
	OOMKilled bool
	// ImageDigest is the digest of the image it was made from ("" when
	// the runtime did not record it).
	ImageDigest string
}

// Usage is what a running container consumes, from its cgroup.
type Usage struct {
	CPUSeconds       float64
	MemoryWorkingSet int64
	MemoryLimit      int64
}

// ExecResult is the outcome of a command run inside a container.
type ExecResult struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
}

// Image is an image the runtime holds: only whole ones (every blob of its
// platform present), so a pull that broke off is never one.
type Image struct {
	Name   string
	Digest string
	Size   int64
	// LastUsed is when a container was last made from it, or it was
	// pulled (image garbage collection removes the least recent first).
	LastUsed time.Time
}

// PullRequest is an image to pull from its registry.
type PullRequest struct {
	// Ref is the reference as the session names it ("python:3.12").
	Ref string
	// Registries are the credentials and TLS settings of registry hosts;
	// a host not among them is reached over HTTPS, anonymously.
	Registries []api.RegistryCredentials
	// Progress, when set, is called as bytes arrive (done, total of what
	// is known so far) and once at the end; at most every ProgressEvery.
	Progress func(done, total int64)
}

// ProgressEvery is how often a pull reports its progress.
const ProgressEvery = 500 * time.Millisecond

// DiskUsage is the filesystem the images are stored on.
type DiskUsage struct {
	Path       string
	UsedBytes  int64
	TotalBytes int64
}

// Event says that a container's task changed state: it started, exited,
// was OOM-killed, or it (or the container) was deleted. It is a hint, not
// a record: List says what the container is now. Events can be lost (a
// broken stream, a slow reader) or repeated, so an agent still lists on
// its heartbeats and resyncs; an Event with an empty ID says some may have
// been lost (the runtime's stream was re-established).
type Event struct {
	ID   string
	Kind EventKind
}

// EventKind is what happened.
type EventKind string

// Event kinds.
const (
	EventStarted EventKind = "started"
	EventExited  EventKind = "exited"
	EventOOM     EventKind = "oom"
	EventDeleted EventKind = "deleted"
	// EventLost: events may have been missed; list to catch up.
	EventLost EventKind = "lost"
)

// EventBuffer is how many events a subscriber may fall behind before
// further ones are dropped for it (it lists anyway when it gets to them).
const EventBuffer = 256

// Errors a caller can act on.
var (
	ErrNotFound      = errors.New("no such container")
	ErrImageNotFound = errors.New("image not present on this node")
	ErrNotRunning    = errors.New("container is not running")
	// ErrCommandNotFound: the command of an exec (or a container) does not
	// exist in the container, so no process ran and there is no exit code.
	ErrCommandNotFound = errors.New("command not found in container")
	// ErrImageInUse: a container was made from the image.
	ErrImageInUse = errors.New("image is in use by a container")
)

// ExecOptions is a process to start in a running container (StartExec).
type ExecOptions struct {
	Command []string
	// Env is added to the container's environment (KEY=VALUE).
	Env []string
	// TTY gives the process a pseudo-terminal of Cols × Rows as its
	// standard streams and makes it the leader of a session of its own;
	// Stderr is then unused (a terminal has one output).
	TTY        bool
	Cols, Rows uint16
	// Stdin is copied to the process until it ends (nil: none), and is
	// read until it ends even when StartExec fails: close it then. Stdout
	// and Stderr receive the output as it is written; a writer that blocks
	// holds the process back when the pipe fills.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Process is a process started by StartExec.
type Process interface {
	// Resize changes the terminal's size (TTY processes only).
	Resize(ctx context.Context, cols, rows uint16) error
	// Wait blocks until the process has exited and its output has been
	// written out, and returns its exit code.
	Wait(ctx context.Context) (int, error)
	// Close ends the process with SIGKILL — a TTY process with every
	// process of its session, so nothing it started in the foreground or
	// background outlives it — and releases what it held. Safe after the
	// process exited, and more than once.
	Close() error
}

// Runtime runs containers.
type Runtime interface {
	// Version is the runtime's own version string.
	Version(ctx context.Context) (string, error)
	// Run creates the container and starts its task.
	Run(ctx context.Context, spec Spec) (Container, error)
	// List returns every container of Berth, with its task's state.
	List(ctx context.Context) ([]Container, error)
	// Stop ends the task: SIGTERM, then SIGKILL after grace.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove deletes the container, its task and its filesystem.
	Remove(ctx context.Context, id string) error
	// Exec runs a command in a running container, bounded by timeout.
	Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (ExecResult, error)
	// StartExec starts a process in a running container as Exec does (the
	// container's user, confinement, environment and working directory)
	// and returns at once: a terminal, or a command whose output streams.
	// A command that does not exist fails with ErrCommandNotFound.
	StartExec(ctx context.Context, id string, opts ExecOptions) (Process, error)
	// Usage measures a running container.
	Usage(ctx context.Context, id string) (Usage, error)
	// Pids lists the host process ids of a running container's task.
	Pids(ctx context.Context, id string) ([]uint32, error)
	// Logs opens the container's output (stdout and stderr, as written),
	// from the output written since since on (zero: all of it; a runtime
	// may start up to a few seconds earlier, never later). Reading on past
	// the end gets what is written meanwhile.
	Logs(ctx context.Context, id string, since time.Time) (io.ReadCloser, error)
	// ImportImage loads an OCI image tarball and returns what it added.
	ImportImage(ctx context.Context, r io.Reader) ([]Image, error)
	// Images lists the images present.
	Images(ctx context.Context) ([]Image, error)
	// Image finds a present image by name ("berth/base:latest" also finds
	// docker.io/berth/base:latest); ErrImageNotFound when it is absent.
	Image(ctx context.Context, name string) (Image, error)
	// Pull fetches an image from its registry and unpacks it for the
	// runtime's snapshotter; a pull that fails leaves no image behind.
	Pull(ctx context.Context, req PullRequest) (Image, error)
	// RemoveImage deletes an image no container was made from
	// (ErrImageInUse otherwise; ErrImageNotFound when absent).
	RemoveImage(ctx context.Context, name string) error
	// ImageDisk measures the filesystem the images are stored on.
	ImageDisk(ctx context.Context) (DiskUsage, error)
	// Events delivers the changes of Berth's containers as they happen,
	// until ctx ends (then the channel is closed). A reader that falls
	// EventBuffer behind loses events rather than holding the runtime up.
	Events(ctx context.Context) <-chan Event
	// Close releases the connection to the runtime.
	Close() error
}
