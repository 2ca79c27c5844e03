package api

import (
	"time"

	"github.com/berth-cluster/berth/shared/slots"
)

// Session types.
const (
	SessionInteractive = "interactive"
	SessionBatch       = "batch"
)

// SessionCreate is the body of POST /v1/sessions.
type SessionCreate struct {
	Name        string            `json:"name,omitempty"`
	Image       string            `json:"image"`
	Type        string            `json:"type"`
	Command     []string          `json:"command,omitempty"`
	Resources   slots.Slots       `json:"resources"`
	ClusterSize int               `json:"cluster_size,omitempty"`
	Mounts      []string          `json:"mounts,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	// RunAsRoot runs the containers as root (with a reduced set of
	// capabilities) instead of the unprivileged container user; the
	// keypair's resource policy must have allow_root (else 403).
	RunAsRoot bool `json:"run_as_root,omitempty"`
	// Ports are what the session's containers serve (at most
	// MaxSessionPorts, names unique, ports 1–65535): recorded with each
	// container's address so that the managers can reach them through
	// the agent. Nothing is published on the node's own interfaces.
	Ports []SessionPort `json:"ports,omitempty"`
}

// MaxSessionPorts bounds a session's declared ports.
const MaxSessionPorts = 16

// Port protocols a session may declare.
const (
	PortHTTP = "http"
	PortTCP  = "tcp"
)

// SessionPort is a port a session declares.
type SessionPort struct {
	Name     string `json:"name"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
}

// StatusChange is one entry of a session's status_history.
type StatusChange struct {
	Status SessionStatus `json:"status"`
	At     time.Time     `json:"at"`
	Reason string        `json:"reason,omitempty"`
}

// SessionGPU is a GPU slice given to a container (GPUs land later).
type SessionGPU struct {
	UUID  string  `json:"uuid"`
	Share float64 `json:"share"`
}

// SessionContainer is one container of a session.
type SessionContainer struct {
	Agent  string          `json:"agent"`
	Status ContainerStatus `json:"status"`
	Slots  slots.Slots     `json:"slots"`
	GPUs   []SessionGPU    `json:"gpus"`
	// ImageDigest is the digest of the image the container runs, once its
	// agent reported it.
	ImageDigest string `json:"image_digest,omitempty"`
	// Address is the container's address on its session's network, as
	// its agent reported it ("" before that).
	Address string `json:"address"`
}

// Session is a compute session as API.md describes it.
type Session struct {
	ID             string             `json:"id"`
	Name           string             `json:"name"`
	Owner          string             `json:"owner"`
	AccessKey      string             `json:"access_key"`
	Image          string             `json:"image"`
	Type           string             `json:"type"`
	Status         SessionStatus      `json:"status"`
	StatusInfo     string             `json:"status_info"`
	StatusHistory  []StatusChange     `json:"status_history"`
	Requested      slots.Slots        `json:"requested"`
	Occupied       slots.Slots        `json:"occupied"`
	Containers     []SessionContainer `json:"containers"`
	CreatedAt      time.Time          `json:"created_at"`
	StartedAt      *time.Time         `json:"started_at"`
	TerminatedAt   *time.Time         `json:"terminated_at"`
	ExitCode       *int               `json:"exit_code"`
	LastActivityAt *time.Time         `json:"last_activity_at"`
	// Mounts are the storage folders the session's containers mount.
	Mounts []SessionMount `json:"mounts"`
	// RunAsRoot: the containers run as root (the policy allowed it).
	RunAsRoot bool `json:"run_as_root"`
	// Command is what the containers run (empty: the image's default).
	Command     []string `json:"command"`
	ClusterSize int      `json:"cluster_size"`
	// EnvNames are the names of the environment variables the session
	// was started with, sorted; their values are never shown again.
	EnvNames []string `json:"env_names"`
	// ImageDigest is the digest of the image the session runs (its first
	// container's, once reported; "" before).
	ImageDigest string `json:"image_digest"`
	// Ports are the ports the session declared (never null).
	Ports []SessionPort `json:"ports"`
}

// SessionMount is a storage folder mounted in a session.
type SessionMount struct {
	Folder   string `json:"folder"`
	Host     string `json:"host"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only"`
}
