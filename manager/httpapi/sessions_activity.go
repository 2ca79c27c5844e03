package httpapi

import (
	"sync"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// busyCPU is the CPU utilization, per requested core, above which a
// session counts as active: 5 % of what it asked for. Averaging per core
// (not summing cores, as Backend.AI does) keeps a big idle session from
// looking busy because of background noise on many cores.
const busyCPU = 0.05

// reportRepeatAfter is how long the leader waits before proposing the very
// same container news again: if Apply took it and left the record as it
// was (the news did not apply to the session's state), repeating it every
// heartbeat would only fill the log.
const reportRepeatAfter = 30 * time.Second

// sessionTracker is the leader's memory about sessions between Raft
// writes: activity not yet recorded (flushed as SessionsTouch by the idle
// loop), each agent's last CPU sample, and the container news last
// proposed. None of it is replicated; a new leader starts empty.
type sessionTracker struct {
	touched *lastSeen

	mu       sync.Mutex
	samples  map[string]cpuSample // by agent
	reported map[string]reportMemo
}

// cpuSample is what an agent's containers had used, by container id, when
// it reported at at.
type cpuSample struct {
	at  time.Time
	cpu map[string]float64
}

type reportMemo struct {
	news fsm.ContainerReport
	at   time.Time
}

func newSessionTracker() *sessionTracker {
	return &sessionTracker{touched: newLastSeen(), samples: map[string]cpuSample{},
		reported: map[string]reportMemo{}}
}

// touch records activity of a session.
func (t *sessionTracker) touch(id string, at time.Time) { t.touched.touch(id, at) }

// DrainSessionActivity returns and forgets the session activity seen since
// the last call (API use, busy CPU), for the leader to record.
func (a *API) DrainSessionActivity() map[string]time.Time { return a.sessions.touched.drain() }

// NoteSessionActivity puts activity back that could not be recorded, so
// the next flush carries it.
func (a *API) NoteSessionActivity(m map[string]time.Time) {
	for id, at := range m {
		a.sessions.touch(id, at)
	}
}

// noteCPU compares an agent's report with its previous one and marks the
// sessions whose containers used more than busyCPU of their requested
// cores in between. Containers the report lacks are forgotten.
func (t *sessionTracker) noteCPU(tx *state.Txn, agent string, now time.Time, reported []api.ContainerReport) error {
	t.mu.Lock()
	prev, had := t.samples[agent]
	next := cpuSample{at: now, cpu: make(map[string]float64, len(reported))}
	session := make(map[string]string, len(reported)) // container id → session id
	for _, r := range reported {
		if r.Status == "running" && r.SessionID != "" {
			next.cpu[r.ID] = r.CPUSeconds
			session[r.ID] = r.SessionID
		}
	}
	t.samples[agent] = next
	t.mu.Unlock()
	elapsed := now.Sub(prev.at).Seconds()
	if !had || elapsed <= 0 {
		return nil
	}
	used := map[string]float64{} // by session
	count := map[string]int64{}
	for id, cpu := range next.cpu {
		before, ok := prev.cpu[id]
		if !ok || cpu < before { // new, or restarted: no interval to judge
			continue
		}
		sid := session[id]
		used[sid] += cpu - before
		count[sid]++
	}
	for sid, cpu := range used {
		s, err := tx.Session(sid)
		if err != nil {
			return err
		}
		if s == nil || s.Requested[slots.CPU] <= 0 {
			continue
		}
		cores := float64(s.Requested[slots.CPU]*count[sid]) / 1000
		if cpu/(elapsed*cores) > busyCPU {
			t.touch(sid, now)
		}
	}
	return nil
}

// fresh keeps the news that were not proposed, identically, within
// reportRepeatAfter, and remembers them as proposed at now.
func (t *sessionTracker) fresh(news []fsm.ContainerReport, now time.Time) []fsm.ContainerReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []fsm.ContainerReport
	for _, n := range news {
		key := state.ContainerID(n.SessionID, n.Index)
		if m, ok := t.reported[key]; ok && sameNews(m.news, n) && now.Sub(m.at) < reportRepeatAfter {
			continue
		}
		out = append(out, n)
	}
	for _, n := range out {
		t.reported[state.ContainerID(n.SessionID, n.Index)] = reportMemo{news: n, at: now}
	}
	// Bound the memory: memos past their use are dropped.
	for k, m := range t.reported {
		if now.Sub(m.at) >= reportRepeatAfter {
			delete(t.reported, k)
		}
	}
	return out
}

func sameNews(x, y fsm.ContainerReport) bool {
	return x.SessionID == y.SessionID && x.Index == y.Index && x.Status == y.Status && x.Reason == y.Reason &&
		sameExit(x.ExitCode, y.ExitCode) && x.ImageDigest == y.ImageDigest
}

func sameExit(x, y *int) bool {
	if x == nil || y == nil {
		return x == y
	}
	return *x == *y
}
