package fsm

import (
	"maps"
	"slices"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
)

// Usage accounting and the garbage collection of finished sessions
// (manager/state/usage_days.go). The allocated slot-seconds and the
// session counts are derived from the session records as they change; what
// is measured and when a session may be removed are the leader's: it
// proposes them with its clock in the entry, and Apply verifies each
// session against the entry's own numbers.

// MaxCollectBatch is the most sessions (and marks) one SessionsCollect
// removes: the leader collects in batches so no entry is large.
const MaxCollectBatch = 1000

// SessionsCollect (entry 90) removes ended sessions that ended at or
// before Before (the leader's now − the retention) and forgets the marks of
// sessions collected at or before ForgetBefore. A session's usage stays in
// the usage rows; a GET of it answers that it was collected, and when,
// until its mark is forgotten.
type SessionsCollect struct {
	At           time.Time `json:"at"`
	Before       time.Time `json:"before"`
	Sessions     []string  `json:"sessions,omitempty"`
	ForgetBefore time.Time `json:"forget_before"`
	Forget       []string  `json:"forget,omitempty"`
}

// MsgType implements Command.
func (SessionsCollect) MsgType() MsgType { return MsgSessionsCollect }

// SessionsCollected is what a SessionsCollect removed.
type SessionsCollected struct {
	Collected int `json:"collected"`
	Forgotten int `json:"forgotten"`
}

func applySessionsCollect(tx *state.Txn, _ uint64, c *SessionsCollect) (any, error) {
	if len(c.Sessions) > MaxCollectBatch || len(c.Forget) > MaxCollectBatch {
		return nil, apierr.New(apierr.Invalid, "a collection removes at most %d sessions and %d marks", MaxCollectBatch, MaxCollectBatch)
	}
	out := &SessionsCollected{}
	for _, id := range c.Sessions {
		s, err := tx.Session(id)
		if err != nil {
			return nil, err
		}
		// Gone already, not ended, or ended after the cut: the leader's
		// view was stale; this one is not collected now.
		if s == nil || !s.Status.Ended() || endOf(s).After(c.Before) {
			continue
		}
		if err := tx.CollectSession(s, c.At); err != nil {
			return nil, err
		}
		out.Collected++
	}
	for _, id := range c.Forget {
		m, err := tx.CollectedSession(id)
		if err != nil {
			return nil, err
		}
		if m == nil || m.CollectedAt.After(c.ForgetBefore) {
			continue
		}
		if err := tx.ForgetCollected(m); err != nil {
			return nil, err
		}
		out.Forgotten++
	}
	return out, nil
}

// endOf is when a session ended: terminated_at, or its last status
// change for a record without one.
func endOf(s *state.Session) time.Time {
	if s.TerminatedAt != nil {
		return *s.TerminatedAt
	}
	if n := len(s.StatusHistory); n > 0 {
		return s.StatusHistory[n-1].At
	}
	return s.CreatedAt
}

// SessionsMeasured (entry 91) carries what the agents measured of sessions
// since the leader's last such entry: each container's CPU time so far (the
// agent's counter) and the largest working set the session's containers
// had together meanwhile. Apply adds the CPU time not yet recorded to the
// usage row of the day the entry is for (within the session's life), and
// the working set to that row's peak.
type SessionsMeasured struct {
	At       time.Time        `json:"at"`
	Sessions []SessionMeasure `json:"sessions"`
}

// SessionMeasure is one session's measurement.
type SessionMeasure struct {
	SessionID    string             `json:"session_id"`
	Containers   []ContainerMeasure `json:"containers,omitempty"`
	PeakMemBytes int64              `json:"peak_mem_bytes,omitempty"`
}

// ContainerMeasure is one container's CPU counter.
type ContainerMeasure struct {
	Index     int   `json:"index"`
	CPUMillis int64 `json:"cpu_millis"`
}

// MsgType implements Command.
func (SessionsMeasured) MsgType() MsgType { return MsgSessionsMeasured }

// MaxMeasureBatch is the most sessions one SessionsMeasured carries.
const MaxMeasureBatch = 1000

func applySessionsMeasured(tx *state.Txn, index uint64, c *SessionsMeasured) (any, error) {
	if len(c.Sessions) > MaxMeasureBatch {
		return nil, apierr.New(apierr.Invalid, "a measurement carries at most %d sessions", MaxMeasureBatch)
	}
	// One measurement per session, whatever the entry holds twice: the
	// last one wins, in session id order.
	byID := map[string]SessionMeasure{}
	for _, m := range c.Sessions {
		byID[m.SessionID] = m
	}
	changed := 0
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		m := byID[id]
		s, err := tx.Session(id)
		if err != nil {
			return nil, err
		}
		if s == nil {
			continue
		}
		u := state.UsageOf(s)
		if !u.Placed {
			continue // nothing ran: nothing to measure
		}
		// The day the measurement is for: the entry's, within the
		// session's life.
		at := c.At
		if at.Before(u.Start) {
			at = u.Start
		}
		if u.Ended && at.After(u.End) {
			at = u.End
		}
		n := s.Copy()
		// A counter lower than recorded (a container that restarted, a
		// delayed report) adds nothing; the next higher one adds what
		// it gained.
		var cpu int64
		for _, cm := range m.Containers {
			if cm.Index < 0 || cm.Index >= len(n.Containers) || cm.CPUMillis <= n.Containers[cm.Index].CPUMillis {
				continue
			}
			cpu += cm.CPUMillis - n.Containers[cm.Index].CPUMillis
			n.Containers[cm.Index].CPUMillis = cm.CPUMillis
		}
		peak := max(0, m.PeakMemBytes)
		if cpu == 0 && peak == 0 {
			continue
		}
		if err := tx.AddMeasured(state.Day(at), s, cpu, peak); err != nil {
			return nil, err
		}
		if cpu == 0 && peak <= s.PeakMemBytes {
			continue
		}
		n.PeakMemBytes = max(n.PeakMemBytes, peak)
		if err := tx.PutSession(index, n); err != nil {
			return nil, err
		}
		changed++
	}
	return changed, nil
}
