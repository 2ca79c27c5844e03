package api

import "encoding/json"

// Usage is GET /v1/usage: per period (a day YYYY-MM-DD or a month
// YYYY-MM, UTC) and per key of the grouping, what was allocated, how many
// sessions started, finished and failed, and what agents measured.
type Usage struct {
	Items []UsageItem `json:"items"`
}

// UsageItem is one period of one key: a user's email, a keypair's access
// key, a domain, or a group as DOMAIN/GROUP.
type UsageItem struct {
	Period    string         `json:"period"`
	GroupBy   string         `json:"group_by"`
	Key       string         `json:"key"`
	Allocated UsageAllocated `json:"allocated"`
	Sessions  UsageSessions  `json:"sessions"`
	Measured  UsageMeasured  `json:"measured"`
}

// UsageAllocated is slot-seconds: what was held times for how long (cpu in
// core-seconds, mem in byte-seconds, cuda.device in GPU-seconds,
// cuda.shares in share-seconds). A session counts from its placement to its
// end, a running one up to the time of the request.
type UsageAllocated struct {
	CPU        json.Number `json:"cpu"`
	Mem        json.Number `json:"mem"`
	CUDADevice json.Number `json:"cuda.device"`
	CUDAShares json.Number `json:"cuda.shares"`
}

// UsageSessions counts the sessions placed in the period (started) and
// those that ended TERMINATED (finished) or ERROR (failed) in it.
type UsageSessions struct {
	Started  int64 `json:"started"`
	Finished int64 `json:"finished"`
	Failed   int64 `json:"failed"`
}

// UsageMeasured is what agents measured: CPU time used, and the largest
// working set one session (its containers together) reached.
type UsageMeasured struct {
	CPUSeconds   json.Number `json:"cpu_seconds"`
	PeakMemBytes int64       `json:"peak_mem_bytes"`
}

// Usage groupings and steps.
const (
	UsageByUser    = "user"
	UsageByGroup   = "group"
	UsageByDomain  = "domain"
	UsageByKeypair = "keypair"
	UsageStepDay   = "day"
	UsageStepMonth = "month"
)
