package leader

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/sched"
	"github.com/berth-cluster/berth/manager/state"
)

// schedulerRetry is how long the scheduler waits after a pass failed (a
// proposal that timed out, a refused plan) before it tries again.
const schedulerRetry = 100 * time.Millisecond

// scheduler is the leader's admission loop: it decides (sched) and proposes
// the decision whole as a Plan, which the FSM holds to its invariants. It
// holds nothing the state does not: a new leader resumes from the PENDING
// sessions in the log. What it remembers (the head of the queue's last try)
// only saves writes.
type scheduler struct {
	l   *Leader
	opt sched.Options
	m   *metrics
	// head is the session that blocked the queue at the last pass, and
	// headDigest the agents' digest as that pass left them.
	head       string
	headDigest uint64
}

func (l *Leader) newScheduler() *scheduler {
	return &scheduler{l: l, opt: l.cfg.Sched, m: l.metrics}
}

// run wakes whenever an entry is applied after the state it last examined
// (a create, a session ending, an agent appearing, its own plan). It does
// not poll: without a new entry nothing that admission reads can change.
// Its own plan wakes it once more; that pass finds nothing new to write.
func (sc *scheduler) run(ctx context.Context) {
	var seen uint64
	for {
		if _, err := sc.l.cfg.Cluster.WaitIndex(ctx, seen); err != nil {
			return
		}
		next, err := sc.pass(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			sc.l.log.Warn("scheduler pass failed; retrying", "err", err, "retry_in", schedulerRetry)
			select {
			case <-ctx.Done():
				return
			case <-time.After(schedulerRetry):
			}
			continue
		}
		seen = next
	}
}

// pass plans one batch from the current state and proposes it. It returns
// the applied index of the state it planned from.
func (sc *scheduler) pass(ctx context.Context) (uint64, error) {
	// The index is read before the state: the state is then at least as
	// new, so an entry is never taken as seen without having been read.
	seen := sc.l.cfg.Cluster.AppliedIndex()
	tx := sc.l.cfg.Cluster.Read()
	pending, byID, err := readPending(tx)
	if err != nil {
		return 0, err
	}
	sc.m.pending.Set(float64(len(pending)))
	if len(pending) == 0 {
		return seen, nil
	}
	start := time.Now()
	view := sched.NewCluster(sched.StateSource(tx))
	before, err := view.Digest()
	if err != nil {
		return 0, err
	}
	ds, err := sched.Schedule(view, pending, sc.opt)
	if err != nil {
		return 0, fmt.Errorf("schedule: %w", err)
	}
	// What the agents will look like once this plan's placements are in:
	// the head's next try is counted only against a change from that.
	after, err := view.Digest()
	if err != nil {
		return 0, err
	}
	plan, head := sc.planOf(ds, byID, before)
	if len(plan.Placements) > 0 || len(plan.Waits) > 0 {
		if err := sc.commit(ctx, plan, byID); err != nil {
			return 0, err
		}
		sc.m.planDuration.Observe(time.Since(start).Seconds())
	}
	sc.head, sc.headDigest = head, after
	return seen, nil
}

// readPending lists the PENDING sessions in creation order, as requests
// and by id.
func readPending(tx *state.Txn) ([]sched.Request, map[string]*state.Session, error) {
	var pending []sched.Request
	byID := map[string]*state.Session{}
	err := tx.EachPending(func(s *state.Session) bool {
		pending = append(pending, sched.RequestOf(s))
		byID[s.ID] = s
		return true
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read pending sessions: %w", err)
	}
	return pending, byID, nil
}

// commit proposes the plan and records what it did.
func (sc *scheduler) commit(ctx context.Context, plan fsm.Plan, byID map[string]*state.Session) error {
	plan.At = sc.l.now()
	res, err := proposeValue[*fsm.PlanResult](ctx, sc.l.cfg.Cluster, plan)
	if err != nil {
		return fmt.Errorf("propose a plan of %d placements: %w", len(plan.Placements), err)
	}
	now := sc.l.cfg.Now()
	sc.m.plans.Inc()
	sc.m.placements.Add(float64(len(res.Placed)))
	for _, id := range res.Placed {
		sc.m.admissionWait.Observe(now.Sub(byID[id].CreatedAt).Seconds())
	}
	if len(res.Placed) == 0 && len(res.Refused) > 0 {
		// Every placement was refused: the state moved under the plan.
		// The next pass sees the new state; a short pause keeps a
		// disagreement (a bug) from becoming a busy loop.
		sc.l.log.Warn("plan refused", "placements", len(res.Refused), "first", res.Refused[0].Info)
		select {
		case <-ctx.Done():
		case <-time.After(schedulerRetry):
		}
	}
	return nil
}

// planOf turns decisions into a plan: every placement, and the waits worth
// a write. A wait is written when its reason changed, and for the session
// blocking the head of the queue when the agents changed since its last
// try (that is what a try is: a look at a different cluster); otherwise
// rewriting the same reason every pass would fill the log. It returns the
// blocking session, if any.
func (sc *scheduler) planOf(ds []sched.Decision, byID map[string]*state.Session, digest uint64) (fsm.Plan, string) {
	plan := fsm.Plan{Version: fsm.PlanVersion}
	head := ""
	for _, d := range ds {
		id := d.Request.SessionID
		if d.Failure == nil {
			plan.Placements = append(plan.Placements, placement(d))
			continue
		}
		newTry := false
		if d.Blocking {
			head = id
			newTry = id != sc.head || digest != sc.headDigest
		}
		if (newTry || d.Failure.Reason != byID[id].Info()) && len(plan.Waits) < sc.opt.Batch {
			plan.Waits = append(plan.Waits, fsm.Wait{SessionID: id, Info: d.Failure.Reason})
		}
	}
	return plan, head
}

// placement is a decision as the plan carries it: every container's agent
// and GPU slices, the whole of what the leader decided.
func placement(d sched.Decision) fsm.Placement {
	p := fsm.Placement{SessionID: d.Request.SessionID, Containers: make([]fsm.PlacedContainer, len(d.Agents))}
	for i, a := range d.Agents {
		p.Containers[i].Agent = a
		if i < len(d.GPUs) {
			p.Containers[i].GPUs = d.GPUs[i]
		}
	}
	return p
}
