package fsm

import (
	"slices"
	"strings"
	"time"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// PlanResult is what applying a plan did, for the scheduler's metrics and
// logs.
type PlanResult struct {
	// Placed are the sessions now SCHEDULED, in plan order.
	Placed []string
	// Refused are placements that broke an invariant, with the refusal as
	// people read it; those sessions stay PENDING.
	Refused []Wait
	// Stale are placements of sessions no longer PENDING (placed by an
	// earlier plan, cancelled) or unknown: ignored.
	Stale []string
}

func (p Plan) bodyVersion() (got, known int) { return max(1, p.Version), PlanVersion }

// applyPlan records each placement the plan decided, in order, once it
// holds to the invariants (plan_check.go) against the state as it is now
// plus the placements of this plan already admitted: a plan made from an
// old view, or by a deposed leader, can never over-admit. Nothing here
// chooses an agent or a slice.
func applyPlan(tx *state.Txn, index uint64, c *Plan) (any, error) {
	res := &PlanResult{}
	for _, p := range c.Placements {
		cs := make([]PlacedContainer, len(p.Containers))
		for i, pc := range p.Containers {
			cs[i] = PlacedContainer{Agent: pc.Agent, GPUs: slices.Clone(pc.GPUs)}
		}
		if err := admit(tx, index, p.SessionID, cs, checkSlices, max(1, c.Version) >= 2, c.At, res); err != nil {
			return nil, err
		}
	}
	if err := applyWaits(tx, index, c.Waits); err != nil {
		return nil, err
	}
	return res, nil
}

// admit checks one placement of a PENDING session with the GPU step pick
// and records it: SCHEDULED as placed, or PENDING with the refusal.
func admit(tx *state.Txn, index uint64, id string, cs []PlacedContainer, pick gpuStep, oneAgent bool, at time.Time, res *PlanResult) error {
	s, err := tx.Session(id)
	if err != nil {
		return err
	}
	if s == nil || s.Status != api.SessionPending {
		res.Stale = append(res.Stale, id)
		return nil
	}
	check := &placementCheck{tx: tx, s: s, size: max(1, s.ClusterSize), pick: pick, oneAgent: oneAgent}
	refusal, err := check.check(cs)
	if err != nil {
		return err
	}
	n := s.Copy()
	if refusal != nil {
		n.StatusInfo, n.Refusal = "", refusal
		n.Attempts++
		res.Refused = append(res.Refused, Wait{SessionID: s.ID, Info: refusal.String()})
	} else {
		placeSession(n, cs, at)
		res.Placed = append(res.Placed, s.ID)
	}
	return tx.PutSession(index, n)
}

// applyWaits records the scheduler's reasons for the sessions it could
// not place, each a try that failed.
func applyWaits(tx *state.Txn, index uint64, waits []Wait) error {
	for _, w := range waits {
		s, err := tx.Session(w.SessionID)
		if err != nil {
			return err
		}
		if s == nil || s.Status != api.SessionPending {
			continue
		}
		n := s.Copy()
		n.StatusInfo, n.Refusal = w.Info, nil
		n.Attempts++
		if err := tx.PutSession(index, n); err != nil {
			return err
		}
	}
	return nil
}

// placeSession makes a session SCHEDULED with container i on cs[i].Agent,
// holding the slices cs[i].GPUs. A container's cuda.shares is what its
// slices hold (the request rounded up to the agent's quantum).
func placeSession(s *state.Session, cs []PlacedContainer, at time.Time) {
	s.Containers = make([]state.SessionContainer, len(cs))
	agents := make([]string, len(cs))
	for i, c := range cs {
		held := s.Requested.Clone()
		if s.Requested[slots.CUDAShares] > 0 {
			total := int64(0)
			for _, g := range c.GPUs {
				total += g.Share
			}
			held[slots.CUDAShares] = max(total, s.Requested[slots.CUDAShares])
		}
		s.Containers[i] = state.SessionContainer{Index: i, Agent: c.Agent, Status: api.ContainerScheduled, Slots: held, GPUs: c.GPUs}
		agents[i] = c.Agent
	}
	distinct := slices.Compact(slices.Sorted(slices.Values(agents)))
	transition(s, api.SessionScheduled, at, "placed on "+strings.Join(distinct, ", "))
}
