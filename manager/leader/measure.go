package leader

import (
	"context"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// What agents measure of sessions (each container's CPU counter, its
// working set) reaches the usage rows through the leader: every heartbeat's
// report is noted in the leader's memory (measurements), and the measure
// duty proposes, at least once a minute, one SessionsMeasured with every
// session whose counters rose or whose containers reported memory since the
// last one. A session that ended is proposed once more with the last
// figures its agent reported, at the next round. Apply records what the
// counters gained since the record, so a new leader, which starts with no
// memory, adds nothing twice; what the containers used between their last
// report and their end is not seen by anyone.

// maxCPUSeconds bounds a counter an agent may report (about 31,700 years of
// one core): beyond it, or below zero, the figure is not a measurement.
const maxCPUSeconds = 1e12

// measurements is the leader's memory of the agents' figures, by session.
type measurements struct {
	mu       sync.Mutex
	sessions map[string]*measured
}

type measured struct {
	cpu      map[int]int64 // by container index: the counter (ms) last reported
	proposed map[int]int64 // what was last proposed
	peak     int64         // the largest working set since the last proposal
	seen     time.Time     // the last report that named the session
}

func newMeasurements() *measurements { return &measurements{sessions: map[string]*measured{}} }

// note takes an agent's report: only the containers the records place on
// that agent count, so an agent cannot measure someone else's session.
func (m *measurements) note(tx *state.Txn, agent string, now time.Time, reports []api.ContainerReport) error {
	type sum struct {
		cpu map[int]int64
		mem int64
	}
	bySession := map[string]*sum{}
	for _, r := range reports {
		if r.SessionID == "" || r.ID != state.ContainerID(r.SessionID, r.Index) {
			continue
		}
		if !(r.CPUSeconds >= 0 && r.CPUSeconds <= maxCPUSeconds) || r.MemoryWorkingSet < 0 {
			continue
		}
		s, err := tx.Session(r.SessionID)
		if err != nil {
			return err
		}
		if s == nil || !state.UsageOf(s).Placed {
			continue
		}
		ct := containerOf(s, r.Index)
		if ct == nil || ct.Agent != agent {
			continue
		}
		x := bySession[r.SessionID]
		if x == nil {
			x = &sum{cpu: map[int]int64{}}
			bySession[r.SessionID] = x
		}
		x.cpu[r.Index] = int64(math.Round(r.CPUSeconds * 1000))
		if r.Status.Present() {
			x.mem += r.MemoryWorkingSet
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, x := range bySession {
		e := m.sessions[id]
		if e == nil {
			e = &measured{cpu: map[int]int64{}, proposed: map[int]int64{}}
			m.sessions[id] = e
		}
		for i, v := range x.cpu {
			e.cpu[i] = max(e.cpu[i], v)
		}
		e.peak = max(e.peak, x.mem)
		e.seen = now
	}
	return nil
}

// pending is what to propose: every session whose counters rose or that
// reported memory since the last proposal.
func (m *measurements) pending() []fsm.SessionMeasure {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []fsm.SessionMeasure
	for _, id := range slices.Sorted(maps.Keys(m.sessions)) {
		e := m.sessions[id]
		sm := fsm.SessionMeasure{SessionID: id, PeakMemBytes: e.peak}
		for _, i := range slices.Sorted(maps.Keys(e.cpu)) {
			if e.cpu[i] > e.proposed[i] {
				sm.Containers = append(sm.Containers, fsm.ContainerMeasure{Index: i, CPUMillis: e.cpu[i]})
			}
		}
		if len(sm.Containers) > 0 || sm.PeakMemBytes > 0 {
			out = append(out, sm)
		}
	}
	return out
}

// proposed records what was written, and forgets the sessions no report
// has named since before forgetBefore.
func (m *measurements) proposed(written []fsm.SessionMeasure, forgetBefore time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sm := range written {
		e := m.sessions[sm.SessionID]
		if e == nil {
			continue
		}
		for _, c := range sm.Containers {
			e.proposed[c.Index] = max(e.proposed[c.Index], c.CPUMillis)
		}
		if e.peak <= sm.PeakMemBytes {
			e.peak = 0
		}
	}
	for id, e := range m.sessions {
		if e.seen.Before(forgetBefore) && e.settled() {
			delete(m.sessions, id)
		}
	}
}

// settled: nothing of the session is left to propose. A counter never
// above what was proposed counts as proposed, a counter of 0 included
// (pending never proposes it): comparing the maps kept every session whose
// containers used no measurable CPU, for ever.
func (e *measured) settled() bool {
	if e.peak != 0 {
		return false
	}
	for i, v := range e.cpu {
		if v > e.proposed[i] {
			return false
		}
	}
	return true
}

// measure is the duty that writes the measurements.
type measure struct {
	l *Leader
	t *term
}

func (l *Leader) newMeasure(t *term) *measure { return &measure{l: l, t: t} }

func (d *measure) run(ctx context.Context) { every(ctx, d.l.cfg.MeasureEvery, d.round) }

func (d *measure) round(ctx context.Context) {
	now := d.l.now()
	all := d.t.measures.pending()
	for start := 0; start < len(all); start += fsm.MaxMeasureBatch {
		batch := all[start:min(len(all), start+fsm.MaxMeasureBatch)]
		if err := d.l.propose(ctx, fsm.SessionsMeasured{At: now, Sessions: batch}); err != nil {
			if ctx.Err() == nil {
				d.l.log.Warn("record measured usage", "sessions", len(batch), "err", err)
			}
			return // the next round proposes them again
		}
		d.t.measures.proposed(batch, now.Add(-3*d.l.cfg.MeasureEvery))
	}
	if len(all) == 0 {
		d.t.measures.proposed(nil, now.Add(-3*d.l.cfg.MeasureEvery))
	}
}
