package api

import (
	"github.com/berth-cluster/berth/shared/slots"
)

// ResourceIndicator is GET /v1/resources/me: what a keypair may still
// start, as the console's resource indicator shows it. Every map carries all
// known slots; in Limits and Remaining null means unlimited.
type ResourceIndicator struct {
	// AccessKey is the keypair the figures are for.
	AccessKey      string       `json:"access_key"`
	ResourcePolicy string       `json:"resource_policy"`
	Limits         slots.Limits `json:"limits"`
	// Occupied is what the keypair's sessions hold now.
	Occupied  slots.Slots  `json:"occupied"`
	Remaining slots.Limits `json:"remaining"`
	Cluster   ClusterSlots `json:"cluster"`
	// Allocatable is the most one new single-container session could get
	// now: min(remaining, largest_agent_free) per slot.
	Allocatable slots.Slots `json:"allocatable"`
	Concurrency Concurrency `json:"concurrency"`
	// MaxContainersPerSession is the policy's bound on a session's
	// cluster_size, so a user can be offered sizes that will be accepted.
	MaxContainersPerSession int `json:"max_containers_per_session"`
	// AllowRoot: the policy lets sessions ask for root in their
	// containers (run_as_root), so a user can be offered the choice.
	AllowRoot bool `json:"allow_root"`
	// AllowedImages are the policy's allowed_images (empty: any image).
	AllowedImages []string `json:"allowed_images"`
}

// ClusterSlots are the alive agents' figures: their summed capacity, what
// of it is free, and per slot the most that is free on any one schedulable
// agent.
type ClusterSlots struct {
	Total            slots.Slots `json:"total"`
	Free             slots.Slots `json:"free"`
	LargestAgentFree slots.Slots `json:"largest_agent_free"`
}

// Concurrency counts a keypair's unfinished sessions against its policy's
// max_concurrent_sessions (Max nil: unlimited).
type Concurrency struct {
	Used int  `json:"used"`
	Max  *int `json:"max"`
}

// ResourcePolicyRequest describes the body of POST and PATCH
// /v1/resource-policies for documentation. The manager reads the body field
// by field, because in a PATCH an absent field stays as it is while null
// sets it unlimited, which a Go struct cannot tell apart.
type ResourcePolicyRequest struct {
	Name                    string              `json:"name,omitempty"`
	TotalResourceSlots      map[string]*float64 `json:"total_resource_slots,omitempty"`
	MaxContainersPerSession *int                `json:"max_containers_per_session,omitempty"`
	IdleTimeout             *int64              `json:"idle_timeout,omitempty"`
	MaxConcurrentSessions   *int                `json:"max_concurrent_sessions,omitempty"`
	MaxSessionLifetime      *int64              `json:"max_session_lifetime,omitempty"`
	AllowedVfolderHosts     []string            `json:"allowed_vfolder_hosts,omitempty"`
	MaxVfolderSize          *int64              `json:"max_vfolder_size,omitempty"`
	MaxVfolderCount         *int                `json:"max_vfolder_count,omitempty"`
	AllowRoot               *bool               `json:"allow_root,omitempty"`
	AllowedImages           []string            `json:"allowed_images,omitempty"`
	AllowEgress             *bool               `json:"allow_egress,omitempty"`
}
