package agent

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
)

// What the managers hear of containers between heartbeats. A container that
// starts, exits, is OOM-killed, fails to start or vanishes is reported as
// it happens (POST /v1/agents/{id}/report), so a session is RUNNING, or
// ended, when its container is, not at the next heartbeat. Heartbeats stay:
// they keep the agent alive and carry usage and the whole list, which
// corrects anything a report missed.
//
// What prompts a report: the runtime's events (Runtime.Events: a task
// started, exited, was OOM-killed or deleted) and the end of every
// convergence pass (a start that failed, a pull that began, a container
// found gone). A report is the difference between the containers now and
// what the managers last heard, so a prompt that changed nothing sends
// nothing. Reports and heartbeats go out one at a time from one goroutine
// (heartbeatLoop): a heartbeat listed before a report can never reach the
// managers after it and undo it. A burst is coalesced without a timer:
// what happens while a report is on its way goes out together in the next
// one (the wake-up channel holds one pending prompt, as manager/batch does
// for session creates).

// told is what the managers last heard of each container, by id: the
// fields they compare with their records (leader.sessionNews).
type told struct {
	mu sync.Mutex
	m  map[string]api.ContainerReport
}

// changes are the reports in now that differ from what was told, and a
// gone report for each container told of that now lacks. A container the
// agent removed itself (its session ended, an orphan) is the common case;
// the managers ignore news of a container they have already ended.
func (t *told) changes(now []api.ContainerReport) []api.ContainerReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []api.ContainerReport
	listed := make(map[string]bool, len(now))
	for _, r := range now {
		listed[r.ID] = true
		if old, ok := t.m[r.ID]; !ok || !sameState(old, r) {
			out = append(out, r)
		}
	}
	for id, old := range t.m {
		if !listed[id] && old.Status != api.ContainerGone {
			out = append(out, api.ContainerReport{ID: id, SessionID: old.SessionID, Index: old.Index,
				Status: api.ContainerGone, Reason: "stopped"})
		}
	}
	return out
}

// heard records reports the managers accepted.
func (t *told) heard(rs []api.ContainerReport) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]api.ContainerReport{}
	}
	for _, r := range rs {
		if r.Status == api.ContainerGone {
			delete(t.m, r.ID)
			continue
		}
		t.m[r.ID] = r
	}
}

// heardAll records a heartbeat's whole list: it replaces what was told.
func (t *told) heardAll(rs []api.ContainerReport) {
	m := make(map[string]api.ContainerReport, len(rs))
	for _, r := range rs {
		if r.Status != api.ContainerGone {
			m[r.ID] = r
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m = m
}

// sameState compares what the managers act on; usage is not news.
func sameState(x, y api.ContainerReport) bool {
	return x.SessionID == y.SessionID && x.Index == y.Index && x.Status == y.Status && x.Reason == y.Reason &&
		sameExit(x.ExitCode, y.ExitCode) && x.Address == y.Address && x.ImageDigest == y.ImageDigest
}

func sameExit(x, y *int) bool {
	if x == nil || y == nil {
		return x == y
	}
	return *x == *y
}

// eventLoop turns the runtime's events into prompts to report.
func (a *Agent) eventLoop(ctx context.Context, events <-chan runtime.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				return
			}
			kick(a.reportKick)
		}
	}
}

// report sends what changed since the managers last heard, if anything.
// A report that fails is not retried on its own: the next prompt or the
// next heartbeat carries its news.
func (a *Agent) report(ctx context.Context) {
	now, err := a.conv.report(ctx, false)
	if err != nil {
		a.noteError(err)
		return
	}
	changed := a.told.changes(now)
	if len(changed) == 0 {
		return
	}
	id := a.credentials()
	ctx, cancel := context.WithTimeout(ctx, 2*a.cfg.HeartbeatEvery+5*time.Second)
	defer cancel()
	if err := a.mgr.Report(ctx, id.ID, id.Secret, changed); err != nil {
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("container report failed; the next heartbeat carries it", "err", err, "containers", len(changed))
		a.metrics.reportFailures.Inc()
		var p *api.Problem
		if errors.As(err, &p) && p.Status == http.StatusUnauthorized {
			kick(a.beat) // the heartbeat registers again
		}
		return
	}
	a.told.heard(changed)
	a.metrics.reports.Inc()
}
