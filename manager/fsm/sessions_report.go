package fsm

import (
	"fmt"
	"time"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// reasonOOM is the reason an agent gives a container the OOM killer ended.
const reasonOOM = "oom-killed"

// applySessionsReport records what an agent reported about its containers
// and moves each session along its lifecycle. Reports about sessions that
// do not hold slots (PENDING, ended), about containers not placed on the
// reporting agent, or that change nothing are ignored, so a report
// repeated or delayed is harmless. It returns how many sessions changed.
func applySessionsReport(tx *state.Txn, index uint64, c *SessionsReport) (any, error) {
	type entry struct {
		s     *state.Session
		dirty bool
	}
	byID := map[string]*entry{}
	var order []*entry
	for _, r := range c.Reports {
		e := byID[r.SessionID]
		if e == nil {
			old, err := tx.Session(r.SessionID)
			if err != nil {
				return nil, err
			}
			if old == nil || !old.Status.Occupying() {
				continue
			}
			e = &entry{s: old.Copy()}
			byID[r.SessionID] = e
			order = append(order, e)
		}
		if r.Index < 0 || r.Index >= len(e.s.Containers) {
			continue
		}
		if updateContainer(&e.s.Containers[r.Index], c.Agent, r) {
			e.dirty = true
		}
	}
	changed := 0
	for _, e := range order {
		if advance(e.s, c.At) {
			e.dirty = true
		}
		if !e.dirty {
			continue
		}
		if err := tx.PutSession(index, e.s); err != nil {
			return nil, err
		}
		changed++
	}
	return changed, nil
}

// updateContainer applies one report; it reports whether anything changed.
// A container that ended stays ended: a late "running" cannot revive it.
func updateContainer(ct *state.SessionContainer, agent string, r ContainerReport) bool {
	if !r.Status.Reported() || ct.Agent != agent || ct.Status.Ended() {
		return false
	}
	// A container that was made never goes back to waiting for its image
	// (a report delayed behind a newer one).
	if r.Status == api.ContainerPulling && !ct.Status.Waiting() && ct.Status != "" {
		return false
	}
	changed := ct.Status != r.Status || (r.Reason != "" && ct.Reason != r.Reason)
	if r.ImageDigest != "" && ct.ImageDigest != r.ImageDigest {
		ct.ImageDigest = r.ImageDigest
		changed = true
	}
	ct.Status = r.Status
	if r.Reason != "" {
		ct.Reason = r.Reason
	}
	if r.Address != "" && ct.Address != r.Address {
		ct.Address = r.Address
		changed = true
	}
	if r.ExitCode != nil && (ct.ExitCode == nil || *ct.ExitCode != *r.ExitCode) {
		code := *r.ExitCode
		ct.ExitCode = &code
		changed = true
	}
	if r.Status == api.ContainerExited && r.ExitedAt != nil && ct.ExitedAt == nil {
		at := r.ExitedAt.UTC()
		ct.ExitedAt = &at
		changed = true
	}
	return changed
}

func allEnded(cs []state.SessionContainer) bool {
	for _, ct := range cs {
		if !ct.Status.Ended() {
			return false
		}
	}
	return true
}

// advance derives the session's status from its containers' and reports
// whether it changed.
func advance(s *state.Session, at time.Time) bool {
	if s.Status == api.SessionTerminating {
		if !allEnded(s.Containers) {
			return false
		}
		s.ExitCode = exitCode(s.Containers)
		transition(s, api.SessionTerminated, endTime(s, at), s.StatusInfo)
		return true
	}
	if status, reason, code, done := outcome(s); done {
		s.ExitCode = code
		transition(s, status, endTime(s, at), reason)
		return true
	}
	started, running, pulling := 0, 0, ""
	for _, ct := range s.Containers {
		if ct.Status == api.ContainerPulling && pulling == "" {
			pulling = ct.Reason
		}
		switch {
		case ct.Status == api.ContainerRunning:
			running++
			started++
		case ct.Status == api.ContainerCreated || ct.Status == api.ContainerExited:
			started++
		}
	}
	// A batch session whose first containers already finished still runs
	// while the others do.
	if s.Type == api.SessionBatch {
		running += countStatus(s.Containers, api.ContainerExited)
	}
	switch {
	case running == len(s.Containers) && s.Status != api.SessionRunning:
		if s.StartedAt == nil {
			s.StartedAt = &at
		}
		transition(s, api.SessionRunning, at, "containers running")
		return true
	case pulling != "" && s.Status == api.SessionScheduled:
		// Waiting for its image: the pull's progress is the status_info
		// while it lasts (the history keeps the first words only).
		transition(s, api.SessionPreparing, at, "pulling image "+s.Image)
		s.StatusInfo = pulling
		return true
	case pulling != "" && s.Status == api.SessionPreparing && s.StatusInfo != pulling:
		s.StatusInfo = pulling
		return true
	case started > 0 && s.Status == api.SessionScheduled:
		transition(s, api.SessionPreparing, at, "containers starting")
		return true
	case pulling == "" && started > 0 && s.Status == api.SessionPreparing && s.StatusInfo != "":
		// The pull is over; its progress is no longer news.
		s.StatusInfo = ""
		return true
	}
	return false
}

// endTime is when the containers that end the session ended: the latest
// exit time their agent reported, which is earlier than the report when the
// agent could not tell the managers at once (it was disconnected). It is
// held between the session's last change and the report, so the history
// stays in order whatever the agent's clock says; without a reported exit
// time it is the report's.
func endTime(s *state.Session, at time.Time) time.Time {
	var end time.Time
	for _, ct := range s.Containers {
		if ct.Status == api.ContainerExited && ct.ExitedAt != nil && ct.ExitedAt.After(end) {
			end = *ct.ExitedAt
		}
	}
	if end.IsZero() || end.After(at) {
		return at
	}
	if n := len(s.StatusHistory); n > 0 && end.Before(s.StatusHistory[n-1].At) {
		return s.StatusHistory[n-1].At
	}
	return end
}

// outcome says whether the containers end the session and how: a failed,
// vanished or OOM-killed container is an ERROR; an interactive session
// ends with its first exited container, a batch one when all have exited.
func outcome(s *state.Session) (status api.SessionStatus, reason string, code *int, done bool) {
	for i, ct := range s.Containers {
		switch {
		case ct.Status == api.ContainerFailed:
			reason := ct.Reason
			if reason == "" {
				reason = fmt.Sprintf("container %d failed", i)
			}
			return api.SessionError, reason, ct.ExitCode, true
		case ct.Status == api.ContainerGone:
			return api.SessionError, "container vanished", nil, true
		case ct.Status == api.ContainerExited && ct.Reason == reasonOOM:
			return api.SessionError, reasonOOM, ct.ExitCode, true
		}
	}
	exited := countStatus(s.Containers, api.ContainerExited)
	if exited == 0 {
		return "", "", nil, false
	}
	if s.Type != api.SessionBatch {
		for _, ct := range s.Containers {
			if ct.Status == api.ContainerExited {
				if ct.ExitCode == nil {
					return api.SessionTerminated, "exited", nil, true
				}
				return api.SessionTerminated, fmt.Sprintf("exited (code %d)", *ct.ExitCode), ct.ExitCode, true
			}
		}
	}
	if exited < len(s.Containers) {
		return "", "", nil, false
	}
	return api.SessionTerminated, "exited", exitCode(s.Containers), true
}

// exitCode is a batch session's: the first non-zero of its containers', else
// 0; nil when no container reported one.
func exitCode(cs []state.SessionContainer) *int {
	var first *int
	for _, ct := range cs {
		if ct.ExitCode == nil {
			continue
		}
		if *ct.ExitCode != 0 {
			code := *ct.ExitCode
			return &code
		}
		if first == nil {
			zero := 0
			first = &zero
		}
	}
	return first
}

func countStatus(cs []state.SessionContainer, status api.ContainerStatus) int {
	n := 0
	for _, ct := range cs {
		if ct.Status == status {
			n++
		}
	}
	return n
}
