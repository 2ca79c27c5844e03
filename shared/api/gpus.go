package api

// The GPU contract between agents and managers. Quantities of cuda.shares
// are in slots units (hundredths of a GPU, see shared/slots): a whole GPU
// offers 100 by default.

// GPUDevice is one GPU an agent's inventory found, sent at registration and
// in heartbeats (AgentRegister.GPUs, AgentHeartbeat.GPUs).
type GPUDevice struct {
	UUID        string `json:"uuid"`
	Index       int    `json:"index"` // NVML index on the node
	Minor       int    `json:"minor"` // /dev/nvidia<minor>
	Name        string `json:"name"`
	MemoryBytes int64  `json:"memory_bytes"`
	MIG         bool   `json:"mig,omitempty"`
	// Shares is what the GPU offers of cuda.shares (slots units, 100 = 1.0).
	Shares int64 `json:"shares"`
	// Fake marks a mock device (-fake-gpus): nothing reaches a container.
	Fake bool `json:"fake,omitempty"`
}

// GPUSlice is the part of one GPU the manager gave a container
// (DesiredContainer.GPUs): Share is in slots units; a whole GPU
// (cuda.device) has Whole set and Share equal to the GPU's Shares.
type GPUSlice struct {
	UUID  string `json:"uuid"`
	Index int    `json:"index"`
	Minor int    `json:"minor"`
	Share int64  `json:"share"`
	Whole bool   `json:"whole,omitempty"`
	// MemoryBytes is the slice's GPU memory: Share/Shares of the GPU's.
	MemoryBytes int64 `json:"memory_bytes"`
	Fake        bool  `json:"fake,omitempty"`
}

// GPUUsage is what an agent measured of one GPU (AgentHeartbeat.GPUUsage).
type GPUUsage struct {
	UUID               string `json:"uuid"`
	MemoryUsedBytes    int64  `json:"memory_used_bytes"`
	UtilizationPercent int    `json:"utilization_percent"`
}
