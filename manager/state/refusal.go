package state

import (
	"fmt"
	"strings"

	"github.com/berth-cluster/berth/shared/slots"
)

// RefusalCode names the invariant a plan placement broke. Codes are part of
// the replicated state: never rename or reuse one. What a person reads is
// rendered from the code and the facts beside it when the session is read
// (Refusal.String), so rewording a message changes no replicated byte.
type RefusalCode string

// The invariants the plan applier checks (manager/fsm/plan_check.go), in
// the order it checks them.
const (
	RefusedKeypairMissing     RefusalCode = "keypair-missing"     // Subject: access key
	RefusedKeypairInactive    RefusalCode = "keypair-inactive"    // Subject: access key
	RefusedUserInactive       RefusalCode = "user-inactive"       // Subject: email
	RefusedPolicyMissing      RefusalCode = "policy-missing"      // Subject: policy
	RefusedClusterSize        RefusalCode = "cluster-size"        // Have: containers, Limit: max_containers_per_session
	RefusedConcurrency        RefusalCode = "concurrency"         // Have: occupying sessions, Limit: max_concurrent_sessions
	RefusedUnknownSlot        RefusalCode = "unknown-slot"        // Detail: the slot
	RefusedPolicySlots        RefusalCode = "policy-slots"        // Over: the keypair's totals
	RefusedContainerCount     RefusalCode = "container-count"     // Have: containers placed, Limit: cluster_size
	RefusedAgentMissing       RefusalCode = "agent-missing"       // Subject: agent, Container
	RefusedAgentLost          RefusalCode = "agent-lost"          // Subject: agent
	RefusedAgentUnschedulable RefusalCode = "agent-unschedulable" // Subject: agent
	RefusedAgentUnapproved    RefusalCode = "agent-unapproved"    // Subject: agent
	RefusedFolderHost         RefusalCode = "folder-host"         // Subject: agent, Detail: host
	RefusedAgentSlots         RefusalCode = "agent-slots"         // Subject: agent, Over: its capacity
	// GPU rules. gpu-devices, gpu-split and gpu-shares are what the frozen
	// allocation of old-format plans says when it finds no slices; the
	// last four judge the slices a plan carries; gpu-none is both.
	RefusedNoGPUs     RefusalCode = "gpu-none"        // Subject: agent
	RefusedGPUDevices RefusalCode = "gpu-devices"     // Subject: agent, Want: GPUs asked, Have: GPUs nothing holds
	RefusedGPUSplit   RefusalCode = "gpu-split"       // Subject: agent, Want: cuda.shares, Limit: the largest GPU
	RefusedGPUShares  RefusalCode = "gpu-shares"      // Subject: agent, Want: cuda.shares, Have: the most one container could get
	RefusedGPUUnknown RefusalCode = "gpu-unknown"     // Subject: agent, Container, Detail: uuid
	RefusedGPUSlices  RefusalCode = "gpu-slices"      // Subject: agent, Container, Detail: the slot, Want: what it takes there
	RefusedGPUUnasked RefusalCode = "gpu-unrequested" // Subject: agent, Container
	RefusedGPUOver    RefusalCode = "gpu-over"        // Subject: agent, Detail: uuid, Have: held, Want: the slice, Limit: its shares
	// RefusedSplitSession: a container is not on container 0's agent (plans
	// of version 2 and later).
	RefusedSplitSession RefusalCode = "split-session" // Subject: its agent, Detail: container 0's agent, Container
)

// Refusal is why the plan applier left a session PENDING: the invariant
// and the facts it was decided on, never prose.
type Refusal struct {
	Code RefusalCode `json:"code"`
	// Subject is the keypair, user, policy or agent the rule is about.
	Subject string `json:"subject,omitempty"`
	// Detail is a second name: a folder host, a GPU uuid, a slot.
	Detail string `json:"detail,omitempty"`
	// Container is the index of the container the rule is about.
	Container int `json:"container,omitempty"`
	// Have, Want and Limit are the numbers of the rule (slots units for
	// GPU shares).
	Have  int64 `json:"have,omitempty"`
	Want  int64 `json:"want,omitempty"`
	Limit int64 `json:"limit,omitempty"`
	// Over lists the slots where what is held plus what the session asks
	// is over a limit, in slots.Known order.
	Over []SlotOver `json:"over,omitempty"`
}

// SlotOver is one slot of a limit a placement would break: Have + Need >
// Limit.
type SlotOver struct {
	Slot  slots.Name `json:"slot"`
	Have  int64      `json:"have"`
	Need  int64      `json:"need"`
	Limit int64      `json:"limit"`
}

// RefusalCodes lists every code, for tests that render each.
func RefusalCodes() []RefusalCode {
	return []RefusalCode{RefusedKeypairMissing, RefusedKeypairInactive, RefusedUserInactive, RefusedPolicyMissing,
		RefusedClusterSize, RefusedConcurrency, RefusedUnknownSlot, RefusedPolicySlots, RefusedContainerCount,
		RefusedAgentMissing, RefusedAgentLost, RefusedAgentUnschedulable, RefusedAgentUnapproved, RefusedFolderHost,
		RefusedAgentSlots, RefusedNoGPUs, RefusedGPUDevices, RefusedGPUSplit, RefusedGPUShares, RefusedGPUUnknown,
		RefusedGPUSlices, RefusedGPUUnasked, RefusedGPUOver, RefusedSplitSession}
}

// String renders the refusal for people: the session's status_info and
// the plan's answer. These are the words the scheduler uses for the same
// rule, so a session reads alike whichever of the two turned it down.
func (r *Refusal) String() string {
	shares := func(v int64) string { return string(slots.Format(slots.CUDAShares, v)) }
	switch r.Code {
	case RefusedKeypairMissing:
		return fmt.Sprintf("keypair %s does not exist", r.Subject)
	case RefusedKeypairInactive:
		return fmt.Sprintf("keypair %s is inactive", r.Subject)
	case RefusedUserInactive:
		return fmt.Sprintf("user %s is inactive", r.Subject)
	case RefusedPolicyMissing:
		return fmt.Sprintf("resource policy %s does not exist", r.Subject)
	case RefusedClusterSize:
		return fmt.Sprintf("cluster_size %d > max_containers_per_session %d", r.Have, r.Limit)
	case RefusedConcurrency:
		return fmt.Sprintf("concurrency %d/%d", r.Have, r.Limit)
	case RefusedUnknownSlot:
		return fmt.Sprintf("unknown slot %s", r.Detail)
	case RefusedPolicySlots:
		return overText(r.Over)
	case RefusedContainerCount:
		return fmt.Sprintf("placement names %d agents for %d containers", r.Have, r.Limit)
	case RefusedAgentMissing:
		return fmt.Sprintf("agent %s of container %d does not exist", r.Subject, r.Container)
	case RefusedAgentLost:
		return fmt.Sprintf("agent %s is lost", r.Subject)
	case RefusedAgentUnschedulable:
		return fmt.Sprintf("agent %s is not schedulable", r.Subject)
	case RefusedAgentUnapproved:
		return fmt.Sprintf("agent %s awaits approval (berth agent approve %s)", r.Subject, r.Subject)
	case RefusedFolderHost:
		return fmt.Sprintf("agent %s has no folder host %s", r.Subject, r.Detail)
	case RefusedAgentSlots:
		return fmt.Sprintf("agent %s: %s", r.Subject, overText(r.Over))
	case RefusedNoGPUs:
		return fmt.Sprintf("agent %s: it has no GPUs", r.Subject)
	case RefusedGPUDevices:
		return fmt.Sprintf("agent %s: cuda.device %d > %d GPUs free", r.Subject, r.Want, r.Have)
	case RefusedGPUSplit:
		return fmt.Sprintf("agent %s: cuda.shares %s is more than one GPU (%s) but not a whole number of GPUs: a fraction runs under one GPU's MPS daemon and cannot be held beside other GPUs",
			r.Subject, shares(r.Want), shares(r.Limit))
	case RefusedGPUShares:
		return fmt.Sprintf("agent %s: no GPU slices for cuda.shares %s (largest %s)", r.Subject, shares(r.Want), shares(r.Have))
	case RefusedGPUUnknown:
		return fmt.Sprintf("agent %s has no GPU %s (container %d)", r.Subject, r.Detail, r.Container)
	case RefusedGPUSlices:
		return fmt.Sprintf("agent %s: the GPU slices of container %d are not what %s %s takes there (one slice on one GPU, or whole GPUs nothing holds)",
			r.Subject, r.Container, r.Detail, slots.Format(slots.Name(r.Detail), r.Want))
	case RefusedGPUUnasked:
		return fmt.Sprintf("agent %s: container %d holds GPU slices it did not ask for", r.Subject, r.Container)
	case RefusedSplitSession:
		return fmt.Sprintf("container %d is on agent %s, not on agent %s with container 0: a session's containers run on one agent", r.Container, r.Subject, r.Detail)
	case RefusedGPUOver:
		return fmt.Sprintf("agent %s: GPU %s: cuda.shares %s + %s > %s", r.Subject, r.Detail, shares(r.Have), shares(r.Want), shares(r.Limit))
	}
	// A code this manager does not know (a snapshot from a newer one):
	// say so rather than nothing.
	return fmt.Sprintf("refused by the plan applier (%s)", r.Code)
}

// overText renders "cpu 2 + 1 > 2, mem 1GiB + 5GiB > 4GiB".
func overText(over []SlotOver) string {
	parts := make([]string, len(over))
	for i, o := range over {
		parts[i] = fmt.Sprintf("%s %s + %s > %s", o.Slot, amount(o.Slot, o.Have), amount(o.Slot, o.Need), amount(o.Slot, o.Limit))
	}
	return strings.Join(parts, ", ")
}

// amount is a quantity as reasons show it: wire decimals, memory in the
// largest binary unit that is exact ("4GiB").
func amount(n slots.Name, v int64) string {
	if n == slots.Mem {
		return slots.FormatSize(v)
	}
	return string(slots.Format(n, v))
}
