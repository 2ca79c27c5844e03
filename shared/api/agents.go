package api

import (
	"time"

	"github.com/berth-cluster/berth/shared/slots"
)

// Agent statuses.
const (
	AgentAlive = "ALIVE"
	// AgentDisconnected: silent past the heartbeat timeout, within the
	// disconnect grace; its sessions and slots are kept.
	AgentDisconnected = "DISCONNECTED"
	AgentLost         = "LOST"
)

// Agent is GET /v1/agents: a node as the manager knows it.
type Agent struct {
	ID              string      `json:"id"`
	Address         string      `json:"address"`
	Status          string      `json:"status"`
	Schedulable     bool        `json:"schedulable"`
	Capacity        slots.Slots `json:"capacity"`
	Occupied        slots.Slots `json:"occupied"`
	Used            AgentUsage  `json:"used"`
	GPUs            []AgentGPU  `json:"gpus"`
	FolderHosts     []string    `json:"folder_hosts"`
	Images          []Image     `json:"images"`
	Node            NodeInfo    `json:"node"`
	LastHeartbeatAt time.Time   `json:"last_heartbeat_at"`
	Version         string      `json:"version"`
	// StatusInfo says, for a DISCONNECTED agent, since when and until
	// when its sessions are kept; empty otherwise.
	StatusInfo string `json:"status_info,omitempty"`

	// Approved: sessions may be placed on the agent. One that joined with
	// a token without auto_approve waits for POST /v1/agents/{id}/approve.
	Approved bool `json:"approved"`
	// JoinToken is the id of the agent token it joined with ("" for the
	// managers' shared -agent-token).
	JoinToken string `json:"join_token,omitempty"`

	// ProjectQuotaHosts are the folder hosts whose folders the agent
	// bounds with the filesystem's project quotas (see AgentRegister).
	ProjectQuotaHosts []string `json:"project_quota_hosts"`

	// Simulated: the agent runs no containers (berth-agent -runtime sim);
	// sessions placed on it only pretend to run. See AgentRegister.
	Simulated bool `json:"simulated"`
}

// AgentGPU is one GPU of an agent (GPUs land with a later issue).
type AgentGPU struct {
	UUID            string  `json:"uuid"`
	Name            string  `json:"name"`
	MemoryBytes     int64   `json:"memory_bytes"`
	SharesTotal     float64 `json:"shares_total"`
	SharesAllocated float64 `json:"shares_allocated"`
	Fake            bool    `json:"fake"`
}

// NodeInfo is what the agent's fingerprint found besides capacity.
type NodeInfo struct {
	Hostname          string `json:"hostname"`
	Arch              string `json:"arch"`
	Kernel            string `json:"kernel"`
	CPUs              int    `json:"cpus"`
	MemoryBytes       int64  `json:"memory_bytes"`
	ReservedCPU       string `json:"reserved_cpu"`
	ReservedMemBytes  int64  `json:"reserved_mem_bytes"`
	ContainerdVersion string `json:"containerd_version"`
	CgroupVersion     int    `json:"cgroup_version"`
	// Network is how the agent networks sessions (absent: an agent
	// without session networks, whose containers have loopback only).
	Network *NodeNetwork `json:"network,omitempty"`
}

// NodeNetwork is the agent's session networking, as its fingerprint found
// and its flags set it.
type NodeNetwork struct {
	// Mode is "bridge-per-session": each session its own bridge and subnet.
	Mode string `json:"mode"`
	// CNIPlugins are the plugins found in -cni-bin-dir.
	CNIPlugins []string `json:"cni_plugins"`
	// Egress: sessions may reach beyond the node (-session-egress; a
	// policy's allow_egress can still deny it).
	Egress bool `json:"egress"`
	// CIDR is -session-cidr.
	CIDR string `json:"cidr"`
}

// Image is a container image present on an agent.
type Image struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// AgentUsage is what an agent measured: totals over its containers.
type AgentUsage struct {
	CPUSeconds       float64 `json:"cpu_seconds"`
	MemoryWorkingSet int64   `json:"memory_working_set_bytes"`
	Containers       int     `json:"containers"`
}

// AgentRegister is POST /v1/agents/register. A new agent authenticates
// with a join token (header X-Berth-Agent-Token: the managers' shared
// -agent-token or an issued one); an agent that already has an id (from
// its state dir) sends it with its secret to register again.
type AgentRegister struct {
	ID       string      `json:"id,omitempty"`
	Address  string      `json:"address"`
	Capacity slots.Slots `json:"capacity"`
	Node     NodeInfo    `json:"node"`
	Images   []Image     `json:"images"`
	GPUs     []GPUDevice `json:"gpus,omitempty"`
	// GPUShareQuantum is the agent's allocation quantum of cuda.shares
	// (slots units; 10 = 0.1 GPU): slices on it are multiples of it.
	GPUShareQuantum int64 `json:"gpu_share_quantum,omitempty"`
	// FolderHosts are the storage folder hosts this agent can mount
	// (-folder-host names); sessions mounting folders are placed only
	// where their hosts are.
	FolderHosts []string `json:"folder_hosts"`
	Version     string   `json:"version"`

	// ProjectQuotaHosts are those of FolderHosts whose filesystem enforces
	// project quotas (ext4 or XFS mounted with prjquota), found when the
	// agent starts: there it makes each folder's max_vfolder_size a hard
	// limit before a container mounts the folder read-write.
	ProjectQuotaHosts []string `json:"project_quota_hosts"`

	// Simulated: the agent's runtime is a simulation (berth-agent -runtime
	// sim, for benchmarks and development): nothing placed on it runs.
	// Managers refuse such an agent unless started with
	// -allow-simulated-agents, and once an agent has said it is simulated
	// it stays so. It is what the agent says of itself: honesty, not a
	// security boundary.
	Simulated bool `json:"simulated,omitempty"`
}

// AgentRegistered answers a registration: the id to keep and the secret the
// agent authenticates its heartbeats with (and the manager its calls to the
// agent). The secret is sent only when it is new.
type AgentRegistered struct {
	ID     string `json:"id"`
	Secret string `json:"secret,omitempty"`
}

// ContainerReport is one container an agent runs, as it reports it.
type ContainerReport struct {
	ID        string          `json:"id"`
	SessionID string          `json:"session_id"`
	Index     int             `json:"index"`
	Status    ContainerStatus `json:"status"` // not ContainerScheduled
	ExitCode  *int            `json:"exit_code,omitempty"`
	Reason    string          `json:"reason,omitempty"` // e.g. oom-killed, image-missing
	StartedAt *time.Time      `json:"started_at,omitempty"`
	ExitedAt  *time.Time      `json:"exited_at,omitempty"`
	// Usage measured from the task's cgroup.
	CPUSeconds       float64 `json:"cpu_seconds"`
	MemoryWorkingSet int64   `json:"memory_working_set_bytes"`
	// GPUMemoryBytes is the GPU memory of the task's processes, where NVML
	// can attribute it.
	GPUMemoryBytes int64 `json:"gpu_memory_bytes,omitempty"`
	// ImageDigest is the digest of the image the container was made from.
	ImageDigest string `json:"image_digest,omitempty"`
	// Address is the container's address on its session's network.
	Address string `json:"address,omitempty"`
}

// AgentHeartbeat is POST /v1/agents/{id}/heartbeat, authenticated with the
// agent's secret (Authorization: Bearer SECRET).
type AgentHeartbeat struct {
	Address    string            `json:"address"`
	Capacity   slots.Slots       `json:"capacity"`
	Images     []Image           `json:"images"`
	Containers []ContainerReport `json:"containers"`
	Errors     []string          `json:"errors,omitempty"`
	// GPUs is the inventory (nil: not reported, no change); GPUUsage what
	// each GPU measured.
	GPUs            []GPUDevice `json:"gpus,omitempty"`
	GPUUsage        []GPUUsage  `json:"gpu_usage,omitempty"`
	GPUShareQuantum int64       `json:"gpu_share_quantum,omitempty"`
	// FolderHosts: see AgentRegister (nil: not reported, no change).
	FolderHosts []string `json:"folder_hosts,omitempty"`
	// Pulls are the image pulls under way (and those that failed since
	// the last heartbeat).
	Pulls []ImagePull `json:"pulls,omitempty"`
}

// AgentReport is POST /v1/agents/{id}/report, authenticated with the
// agent's secret: the containers whose state changed since the agent last
// told the managers (a report or a heartbeat), sent as the changes happen
// so that a session is RUNNING, or ended, without waiting for a heartbeat.
// A container listed with status gone is no longer in the runtime.
// Heartbeats still carry the whole list, with usage, and keep the agent
// alive; a report does neither.
type AgentReport struct {
	Containers []ContainerReport `json:"containers"`
}

// HeartbeatAnswer tells the agent the manager's view: the Raft index its
// desired containers are at, so it asks again only when they changed.
type HeartbeatAnswer struct {
	Status       string `json:"status"`
	DesiredIndex uint64 `json:"desired_index"`
}

// DesiredContainer is one container the manager wants an agent to run.
type DesiredContainer struct {
	ID         string            `json:"id"`
	SessionID  string            `json:"session_id"`
	Index      int               `json:"index"`
	Image      string            `json:"image"`
	Command    []string          `json:"command"`
	Env        map[string]string `json:"env"`
	WorkingDir string            `json:"working_dir"`
	Slots      slots.Slots       `json:"slots"`
	Mounts     []Mount           `json:"mounts"`
	// GPUs are the GPU slices of the container (none: NVIDIA_VISIBLE_DEVICES=void).
	GPUs []GPUSlice `json:"gpus,omitempty"`
	// RunAsRoot runs the container as root (its session's policy allows
	// it); otherwise as the agent's -container-uid.
	RunAsRoot bool `json:"run_as_root,omitempty"`
	// ClusterSize is the session's number of containers: the agent names
	// them all in each container's /etc/hosts.
	ClusterSize int `json:"cluster_size,omitempty"`
	// Ports are the ports the session declared, kept by the agent.
	Ports []SessionPort `json:"ports,omitempty"`
	// NoEgress keeps the session's containers from reaching beyond the
	// node (its policy's allow_egress is false).
	NoEgress bool `json:"no_egress,omitempty"`
}

// Mount is a host directory bind-mounted into a container. A storage
// folder's mount names its Host and Folder (id) instead of a Source: each
// agent finds the folder at PATH/FOLDER for its own -folder-host HOST=PATH.
type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only"`
	Host     string `json:"host,omitempty"`
	Folder   string `json:"folder,omitempty"`

	// LimitBytes is the folder's size limit in the desired state: its
	// policy's max_vfolder_size when the managers answer (absent:
	// unlimited). An agent whose folder host enforces project quotas makes
	// it the folder's hard limit. Session records do not keep it.
	LimitBytes *int64 `json:"limit_bytes,omitempty"`
}

// DesiredState is GET /v1/agents/{id}/desired?index=N: the containers the
// agent should run, at Raft index Index. With ?index= the call blocks until
// the state moves past N or ?wait= (default 30s) passes.
type DesiredState struct {
	Index      uint64             `json:"index"`
	Containers []DesiredContainer `json:"containers"`
	// Stop lists containers the managers ended on purpose (a terminated
	// session): the agent stops and removes them at once, without the
	// grace it gives containers it merely does not know.
	Stop []string `json:"stop,omitempty"`
	// Registries are the credentials of the registries that serve the
	// images of Containers (only those), for the agent to pull with.
	Registries []RegistryCredentials `json:"registries,omitempty"`
}

// ExecRequest runs a command in a session's container (POST
// /v1/sessions/{id}/exec, and the manager's call to the agent).
type ExecRequest struct {
	Command  []string `json:"command"`
	TimeoutS int      `json:"timeout_s,omitempty"`
	// Stream answers with the output as it comes (ExecEvent lines, one
	// JSON object each) instead of one ExecResult at the end.
	Stream bool `json:"stream,omitempty"`
}

// ExecResult is what the command did. Output is cut at 1 MiB per stream.
type ExecResult struct {
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
}
