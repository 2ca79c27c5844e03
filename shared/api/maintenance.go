package api

import "encoding/json"

// UsageRecalculation is POST /v1/maintenance/recalculate-usage: what was
// checked, every difference found, and how many were fixed.
type UsageRecalculation struct {
	Checked struct {
		Agents   int `json:"agents"`
		Keypairs int `json:"keypairs"`
		// UsageDays is how many usage rows (one per day and keypair) were
		// checked against the sessions still held.
		UsageDays int `json:"usage_days"`
	} `json:"checked"`
	Drift []UsageDrift `json:"drift"`
	Fixed int          `json:"fixed"`
}

// UsageDrift is one difference. Scope is "keypair/ACCESS_KEY" or
// "agent/ID"; Slot is a slot name (values in its wire unit: cores, bytes,
// GPUs), "sessions" (a keypair's occupying sessions) or "containers" (the
// containers the records place on an agent against those it reports
// running). For a usage row, Scope is "usage/DAY/ACCESS_KEY" and Slot
// "allocated.SLOT" (slot-seconds in the slot's wire unit),
// "sessions.started|finished|failed", a "collected." one of these (what
// collected sessions left, which may only be checked not to be negative)
// or "measured.cpu_millis|peak_mem_bytes". Recorded is what the manager
// held; Actual what the session records, or for containers the agent, say.
type UsageDrift struct {
	Scope    string      `json:"scope"`
	Slot     string      `json:"slot"`
	Recorded json.Number `json:"recorded"`
	Actual   json.Number `json:"actual"`
}
