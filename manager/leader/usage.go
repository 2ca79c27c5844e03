package leader

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// driftContainers is the Slot of a drift between the containers the records
// place on an agent and those the agent reports running.
const driftContainers = "containers"

// RecalculateUsage is the manual's RECALCULATE USAGE: one usage check that
// always proposes the repair, so every manager mends its own copy.
func (l *Leader) RecalculateUsage(ctx context.Context) (*api.UsageRecalculation, error) {
	return l.checkUsage(ctx, true)
}

// checkUsage reconciles what the manager holds with what is: the derived
// occupancy against the session records (state.UsageDrifts), and the
// session records against what agents report running; and repairs what it
// finds. With always false (the periodic check) the repair entry is
// proposed only when this manager's occupancy drifted, so a healthy cluster
// writes nothing. One check runs at a time.
func (l *Leader) checkUsage(ctx context.Context, always bool) (*api.UsageRecalculation, error) {
	l.usageMu.Lock()
	defer l.usageMu.Unlock()
	out := &api.UsageRecalculation{Drift: []api.UsageDrift{}}
	tx := l.cfg.Cluster.Read()
	drift, err := tx.UsageDrifts()
	if err != nil {
		return nil, err
	}
	fixed := 0
	if always || len(drift) > 0 {
		resp, err := l.cfg.Cluster.Propose(ctx, fsm.UsageRecalculate{})
		if err != nil {
			return nil, err
		}
		if resp.Err != nil {
			return nil, resp.Err
		}
		r, err := fsm.Value[*fsm.UsageRecalculated](resp)
		if err != nil {
			return nil, err
		}
		out.Checked.Agents, out.Checked.Keypairs = r.Agents, r.Keypairs
		drift, fixed = r.Drift, len(r.Drift)
		tx = l.cfg.Cluster.Read()
	} else {
		agents, err := tx.Agents()
		if err != nil {
			return nil, err
		}
		if out.Checked.Keypairs, err = tx.CountKeypairs(); err != nil {
			return nil, err
		}
		out.Checked.Agents = len(agents)
	}
	for _, d := range drift {
		out.Drift = append(out.Drift, api.UsageDrift{Scope: d.Key, Slot: d.Slot,
			Recorded: driftValue(d.Slot, d.Recorded), Actual: driftValue(d.Slot, d.Actual)})
	}
	reported, repaired, err := l.reportDrift(ctx, tx)
	if err != nil {
		return nil, err
	}
	out.Drift = append(out.Drift, reported...)
	out.Fixed = fixed + repaired
	l.metrics.drift.Set(float64(len(out.Drift)))
	l.metrics.driftFound.Add(float64(len(out.Drift)))
	for _, d := range out.Drift {
		l.log.Warn("usage drift found", "scope", d.Scope, "slot", d.Slot, "recorded", d.Recorded, "actual", d.Actual)
	}
	return out, nil
}

// reportDrift compares, for every ALIVE agent whose report this leader
// holds, the containers the records say run there with those the agent
// reports running. A container the records hold as started and the agent
// no longer lists is recorded as gone (its session ends in ERROR, as the
// heartbeat would); one the agent runs for no session that should run
// there is stopped by the agent: at once when its session ended (the stop
// list of the desired state), after the orphan grace when the manager
// never knew it.
func (l *Leader) reportDrift(ctx context.Context, tx *state.Txn) (drift []api.UsageDrift, fixed int, err error) {
	t := l.current()
	if t == nil {
		return nil, 0, nil // no reports: this manager does not lead
	}
	agents, err := tx.Agents()
	if err != nil {
		return nil, 0, err
	}
	now := l.now()
	for _, ag := range agents {
		if ag.Status != state.AgentAlive {
			continue
		}
		if _, _, ok := t.agents.last(ag.ID); !ok {
			continue
		}
		report := t.agents.reported(ag.ID)
		if report == nil {
			continue
		}
		recorded, desired, err := recordedContainers(tx, ag.ID)
		if err != nil {
			return nil, 0, err
		}
		running := map[string]bool{}
		stray := 0
		for _, r := range report {
			if !r.Status.Present() {
				continue
			}
			running[r.ID] = true
			if !desired[r.ID] {
				stray++
			}
		}
		missing := 0
		for id := range recorded {
			if !running[id] {
				missing++
			}
		}
		if stray == 0 && missing == 0 {
			continue
		}
		drift = append(drift, api.UsageDrift{Scope: state.UsageAgent(ag.ID), Slot: driftContainers,
			Recorded: json.Number(strconv.Itoa(len(recorded))), Actual: json.Number(strconv.Itoa(len(running)))})
		if missing > 0 {
			news, err := sessionNews(tx, ag.ID, report, true)
			if err != nil {
				return nil, 0, err
			}
			if len(news) > 0 {
				applied, err := l.writeNews(ctx, ag.ID, now, news)
				if err != nil {
					return nil, 0, err
				}
				if !applied {
					continue
				}
			}
		}
		fixed++
	}
	return drift, fixed, nil
}

// recordedContainers is what the records place on an agent: the containers
// they hold as started (created or running) and every container that may
// run there (started or yet to start).
func recordedContainers(tx *state.Txn, agent string) (started, desired map[string]bool, err error) {
	ss, err := tx.OccupyingOnAgent(agent)
	if err != nil {
		return nil, nil, err
	}
	started, desired = map[string]bool{}, map[string]bool{}
	for _, s := range ss {
		for _, ct := range s.Containers {
			if ct.Agent != agent || ct.Status.Ended() {
				continue
			}
			id := state.ContainerID(s.ID, ct.Index)
			desired[id] = true
			if ct.Status.Present() {
				started[id] = true
			}
		}
	}
	return started, desired, nil
}

// driftValue writes a drift's quantity in the slot's wire unit.
func driftValue(slot string, v int64) json.Number {
	if slot == state.DriftSessions || !slices.Contains(slots.Known, slots.Name(slot)) {
		return json.Number(strconv.FormatInt(v, 10))
	}
	return slots.Format(slots.Name(slot), v)
}

// usageCheck is the periodic usage check.
type usageCheck struct{ l *Leader }

func (l *Leader) newUsageCheck() *usageCheck { return &usageCheck{l: l} }

func (u *usageCheck) run(ctx context.Context) { every(ctx, u.l.cfg.UsageCheckEvery, u.check) }

func (u *usageCheck) check(ctx context.Context) {
	out, err := u.l.checkUsage(ctx, false)
	if err != nil {
		if ctx.Err() == nil {
			u.l.log.Warn("periodic usage check", "err", err)
		}
		return
	}
	if len(out.Drift) > 0 {
		u.l.log.Warn("periodic usage check found drift", "differences", len(out.Drift), "fixed", out.Fixed,
			"scopes", strings.Join(driftScopes(out.Drift), ","))
	}
}

func driftScopes(ds []api.UsageDrift) []string {
	var out []string
	for _, d := range ds {
		if !slices.Contains(out, d.Scope) {
			out = append(out, d.Scope)
		}
	}
	return out
}
