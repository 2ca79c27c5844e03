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
)

// Labels every container of Berth carries, so that an agent restarted while
// containers run can tell what each one is and re-attach instead of killing.
const (
	LabelSession = "berth.session"
	LabelIndex   = "berth.index"
	LabelSlots   = "berth.slots" // JSON of the slot assignment
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

// Image is an image the runtime holds.
type Image struct {
	Name   string
	Digest string
	Size   int64
}

// Errors a caller can act on.
var (
	ErrNotFound      = errors.New("no such container")
	ErrImageNotFound = errors.New("image not present on this node")
	ErrNotRunning    = errors.New("container is not running")
)

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
	// Usage measures a running container.
	Usage(ctx context.Context, id string) (Usage, error)
	// Logs opens the container's output (stdout and stderr, as written).
	Logs(ctx context.Context, id string) (io.ReadCloser, error)
	// ImportImage loads an OCI image tarball and returns what it added.
	ImportImage(ctx context.Context, r io.Reader) ([]Image, error)
	// Images lists the images present.
	Images(ctx context.Context) ([]Image, error)
	// Close releases the connection to the runtime.
	Close() error
}
