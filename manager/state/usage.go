package state

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// Usage is what the occupying sessions of one keypair, or on one agent,
// hold: occupancy kept incrementally. It is derived, never written by
// itself: PutSession (and the restore of a snapshot, through Insert) moves a
// session's holdings out of the rows it left and into the rows it joins, in
// the same transaction, so it cannot drift from the session records;
// RecomputeUsage derives it afresh from them to prove so. Summing a
// keypair's sessions on every admission instead would cost what the keypair
// ever ran, at every scheduling pass and every plan, on every manager.
//
// Every write of a session must go through PutSession; a delete of a
// session, should one ever exist, must take its holdings out the same way.
type Usage struct {
	Key      string      `json:"key"` // "keypair/AK…" or "agent/ID"
	Slots    slots.Slots `json:"slots"`
	Sessions int         `json:"sessions"` // occupying sessions (keypair rows)
}

const (
	tableUsage   = "usage"
	usageKeypair = "keypair/"
	usageAgent   = "agent/"
	// usageGPU rows ("gpu/AGENT/UUID") hold the cuda.shares the sessions'
	// slices take of one GPU: the GPU ledger.
	usageGPU = "gpu/"
)

func gpuUsageKey(agent, uuid string) string { return usageGPU + agent + "/" + uuid }

// usageSchema is not among Tables(): being derived, it is not written to
// snapshots but rebuilt while their sessions are restored.
func usageSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableUsage, Indexes: map[string]*memdb.IndexSchema{
		"id": stringIndex("id", "Key", true, false),
	}}
}

func (t *Txn) usage(key string) (*Usage, error) { return first[Usage](t, tableUsage, "id", key) }

// addUsage adds sl (which may be negative) and sessions to a row; a row
// that comes to hold nothing is removed, so the table stays as small as
// what runs.
func (t *Txn) addUsage(key string, sl slots.Slots, sessions int) error {
	old, err := t.usage(key)
	if err != nil {
		return err
	}
	base, n := slots.Slots{}, &Usage{Key: key, Sessions: sessions}
	if old != nil {
		base = old.Slots
		n.Sessions += old.Sessions
	}
	n.Slots = base.Add(sl)
	if n.Sessions == 0 && len(n.Slots) == 0 {
		if old == nil {
			return nil
		}
		return t.remove(tableUsage, old)
	}
	if err := t.tx.Insert(tableUsage, n); err != nil {
		return fmt.Errorf("insert into %s: %w", tableUsage, err)
	}
	return nil
}

// account adds (sign 1) or takes out (sign -1) what a session holds.
func (t *Txn) account(s *Session, sign int64) error {
	if s == nil || !s.Status.Occupying() {
		return nil
	}
	scaled := func(sl slots.Slots) slots.Slots {
		out := make(slots.Slots, len(sl))
		for n, v := range sl {
			out[n] = sign * v
		}
		return out
	}
	if err := t.addUsage(usageKeypair+s.AccessKey, scaled(s.Holds()), int(sign)); err != nil {
		return err
	}
	for _, c := range s.Containers {
		if err := t.addUsage(usageAgent+c.Agent, scaled(c.Slots), 0); err != nil {
			return err
		}
		for _, g := range c.GPUs {
			if err := t.addUsage(gpuUsageKey(c.Agent, g.UUID), slots.Slots{slots.CUDAShares: sign * g.Share}, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// GPUUsage is what the occupying sessions' slices hold of each GPU of an
// agent (cuda.shares, slots units), by GPU uuid; GPUs nothing holds are
// absent.
func (t *Txn) GPUUsage(agent string) (map[string]int64, error) {
	prefix := usageGPU + agent + "/"
	it, err := t.tx.Get(tableUsage, "id_prefix", prefix)
	if err != nil {
		return nil, fmt.Errorf("list GPU usage of agent %s: %w", agent, err)
	}
	out := map[string]int64{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		u := raw.(*Usage)
		out[strings.TrimPrefix(u.Key, prefix)] = u.Slots[slots.CUDAShares]
	}
	return out, nil
}

// GPUUsages is GPUUsage of every agent whose GPUs hold anything, by agent
// id.
func (t *Txn) GPUUsages() (map[string]map[string]int64, error) {
	it, err := t.tx.Get(tableUsage, "id_prefix", usageGPU)
	if err != nil {
		return nil, fmt.Errorf("list GPU usage: %w", err)
	}
	out := map[string]map[string]int64{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		u := raw.(*Usage)
		agent, uuid, _ := strings.Cut(strings.TrimPrefix(u.Key, usageGPU), "/")
		if out[agent] == nil {
			out[agent] = map[string]int64{}
		}
		out[agent][uuid] = u.Slots[slots.CUDAShares]
	}
	return out, nil
}

// KeypairUsage is what a keypair's occupying sessions hold, and how many
// they are.
func (t *Txn) KeypairUsage(accessKey string) (slots.Slots, int, error) {
	u, err := t.usage(usageKeypair + accessKey)
	if err != nil || u == nil {
		return slots.Slots{}, 0, err
	}
	return u.Slots.Clone(), u.Sessions, nil
}

// AgentUsages is what the occupying sessions hold on each agent that holds
// anything, by agent id.
func (t *Txn) AgentUsages() (map[string]slots.Slots, error) {
	it, err := t.tx.Get(tableUsage, "id_prefix", usageAgent)
	if err != nil {
		return nil, fmt.Errorf("list agent usage: %w", err)
	}
	out := map[string]slots.Slots{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		u := raw.(*Usage)
		out[strings.TrimPrefix(u.Key, usageAgent)] = u.Slots
	}
	return out, nil
}

// Usages lists the stored usage rows by key.
func (t *Txn) Usages() ([]*Usage, error) { return list[Usage](t, tableUsage, "id") }

// RecomputeUsage derives every usage row afresh from the session records,
// by key: what Usages must equal.
func (t *Txn) RecomputeUsage() (map[string]*Usage, error) {
	out := map[string]*Usage{}
	add := func(key string, sl slots.Slots, sessions int) {
		u := out[key]
		if u == nil {
			u = &Usage{Key: key, Slots: slots.Slots{}}
			out[key] = u
		}
		u.Slots = u.Slots.Add(sl)
		u.Sessions += sessions
	}
	// By status: the sessions that ended, the bulk of the table on a
	// cluster that has run for a while, are never read.
	for _, status := range api.SessionStatuses() {
		if !status.Occupying() {
			continue
		}
		ss, err := t.SessionsInStatus(status)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			add(usageKeypair+s.AccessKey, s.Holds(), 1)
			for _, c := range s.Containers {
				add(usageAgent+c.Agent, c.Slots, 0)
				for _, g := range c.GPUs {
					add(gpuUsageKey(c.Agent, g.UUID), slots.Slots{slots.CUDAShares: g.Share}, 0)
				}
			}
		}
	}
	for k, u := range out {
		if u.Sessions == 0 && len(u.Slots) == 0 {
			delete(out, k)
		}
	}
	return out, nil
}

// UsageDrift is one difference between a stored usage row and what the
// session records make of it: Slot is a slot name, or "sessions" for the
// count of occupying sessions of a keypair.
type UsageDrift struct {
	Key      string `json:"key"`
	Slot     string `json:"slot"`
	Recorded int64  `json:"recorded"`
	Actual   int64  `json:"actual"`
}

// DriftSessions is the Slot of a drift in a keypair's count of occupying
// sessions (what concurrency_used shows).
const DriftSessions = "sessions"

// UsageDrifts compares the stored usage rows with RecomputeUsage and
// returns every difference, by key and slot. Nothing should ever differ
// (see Usage); the check exists so that a bug, if one ever slips in, is
// found, measured and repaired rather than trusted.
func (t *Txn) UsageDrifts() ([]UsageDrift, error) {
	drifts, _, err := t.usageDrifts()
	return drifts, err
}

// usageDrifts is UsageDrifts with the recomputed rows it compared against.
func (t *Txn) usageDrifts() ([]UsageDrift, map[string]*Usage, error) {
	want, err := t.RecomputeUsage()
	if err != nil {
		return nil, nil, err
	}
	have, err := t.Usages()
	if err != nil {
		return nil, nil, err
	}
	stored := make(map[string]*Usage, len(have))
	for _, u := range have {
		stored[u.Key] = u
	}
	keys := make(map[string]bool, len(want)+len(stored))
	for k := range want {
		keys[k] = true
	}
	for k := range stored {
		keys[k] = true
	}
	var out []UsageDrift
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		w, h := want[k], stored[k]
		if w == nil {
			w = &Usage{Key: k}
		}
		if h == nil {
			h = &Usage{Key: k}
		}
		names := map[string]bool{}
		for n := range w.Slots {
			names[string(n)] = true
		}
		for n := range h.Slots {
			names[string(n)] = true
		}
		for _, n := range slices.Sorted(maps.Keys(names)) {
			if rec, act := h.Slots[slots.Name(n)], w.Slots[slots.Name(n)]; rec != act {
				out = append(out, UsageDrift{Key: k, Slot: n, Recorded: rec, Actual: act})
			}
		}
		if h.Sessions != w.Sessions {
			out = append(out, UsageDrift{Key: k, Slot: DriftSessions, Recorded: int64(h.Sessions), Actual: int64(w.Sessions)})
		}
	}
	return out, want, nil
}

// RepairUsage rewrites every usage row that differs from the session
// records (the FSM's recalculate-usage entry) and returns what differed.
func (t *Txn) RepairUsage() ([]UsageDrift, error) {
	// One recomputation serves the comparison and the repair: this runs
	// inside Apply on every manager.
	drifts, want, err := t.usageDrifts()
	if err != nil || len(drifts) == 0 {
		return drifts, err
	}
	for _, k := range driftKeys(drifts) {
		if err := t.SetUsage(k, want[k]); err != nil {
			return nil, err
		}
	}
	return drifts, nil
}

func driftKeys(ds []UsageDrift) []string {
	var out []string
	for _, d := range ds {
		if len(out) == 0 || out[len(out)-1] != d.Key {
			out = append(out, d.Key)
		}
	}
	return out
}

// SetUsage overwrites one usage row (u nil or empty removes it). The FSM
// repairs drift with it; tests use it to inject drift. Nothing else may
// write usage: it is derived from the sessions.
func (t *Txn) SetUsage(key string, u *Usage) error {
	old, err := t.usage(key)
	if err != nil {
		return err
	}
	if u == nil || (u.Sessions == 0 && len(u.Slots) == 0) {
		if old == nil {
			return nil
		}
		return t.remove(tableUsage, old)
	}
	n := &Usage{Key: key, Slots: u.Slots.Clone(), Sessions: u.Sessions}
	if err := t.tx.Insert(tableUsage, n); err != nil {
		return fmt.Errorf("insert into %s: %w", tableUsage, err)
	}
	return nil
}

// UsageKeypair and UsageAgent are the usage keys of a keypair and of an
// agent.
func UsageKeypair(accessKey string) string { return usageKeypair + accessKey }

// UsageAgent: see UsageKeypair.
func UsageAgent(id string) string { return usageAgent + id }
