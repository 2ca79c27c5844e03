package leader

import (
	"fmt"
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

// activity is the leader's memory about sessions between Raft writes:
// activity not yet recorded (flushed as SessionsTouch by the idle duty),
// each agent's last CPU sample, and the container news last proposed.
type activity struct {
	touched *lastSeen

	mu      sync.Mutex
	samples map[string]cpuSample // by agent
	// reported is by agent, then container: a report's check walks only
	// its own agent's memos, not the whole cluster's.
	reported map[string]map[string]reportMemo
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

func newActivity() *activity {
	return &activity{touched: newLastSeen(), samples: map[string]cpuSample{}, reported: map[string]map[string]reportMemo{}}
}

// SessionUsed records that someone used a session through the API (an
// exec, its logs): activity that keeps it from its idle timeout. It is
// written with the idle duty's next round.
func (l *Leader) SessionUsed(id string) {
	if t := l.current(); t != nil {
		t.activity.touched.touch(id, l.now())
	}
}

// reconnected counts an agent's return from a disconnection as activity
// of the sessions it runs: the idle clock did not run while it was away
// (nobody could tell whether they were busy), and must not end them for
// the disconnection the moment it is over.
func (a *activity) reconnected(tx *state.Txn, agent string, now time.Time) error {
	ss, err := tx.OccupyingOnAgent(agent)
	if err != nil {
		return fmt.Errorf("read the sessions of agent %s: %w", agent, err)
	}
	for _, s := range ss {
		a.touched.touch(s.ID, now)
	}
	return nil
}

// noteCPU compares an agent's report with its previous one and marks the
// sessions whose containers used more than busyCPU of their requested
// cores in between. Containers the report lacks are forgotten.
func (a *activity) noteCPU(tx *state.Txn, agent string, now time.Time, reported []api.ContainerReport) error {
	a.mu.Lock()
	prev, had := a.samples[agent]
	next := cpuSample{at: now, cpu: make(map[string]float64, len(reported))}
	session := make(map[string]string, len(reported)) // container id → session id
	for _, r := range reported {
		if r.Status == api.ContainerRunning && r.SessionID != "" {
			next.cpu[r.ID] = r.CPUSeconds
			session[r.ID] = r.SessionID
		}
	}
	a.samples[agent] = next
	a.mu.Unlock()
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
			a.touched.touch(sid, now)
		}
	}
	return nil
}

// fresh keeps the news of an agent's report that were not proposed,
// identically, within reportRepeatAfter, and remembers them as proposed at
// now. Only this agent's memos are looked at (and the stale ones dropped),
// so a report costs what its own containers cost.
func (a *activity) fresh(agent string, news []fsm.ContainerReport, now time.Time) []fsm.ContainerReport {
	a.mu.Lock()
	defer a.mu.Unlock()
	memos := a.reported[agent]
	if memos == nil {
		if len(news) == 0 {
			return nil
		}
		memos = map[string]reportMemo{}
		a.reported[agent] = memos
	}
	var out []fsm.ContainerReport
	for _, n := range news {
		key := state.ContainerID(n.SessionID, n.Index)
		if m, ok := memos[key]; ok && sameNews(m.news, n) && now.Sub(m.at) < reportRepeatAfter {
			continue
		}
		out = append(out, n)
	}
	for _, n := range out {
		memos[state.ContainerID(n.SessionID, n.Index)] = reportMemo{news: n, at: now}
	}
	// Bound the memory: memos past their use are dropped.
	for k, m := range memos {
		if now.Sub(m.at) >= reportRepeatAfter {
			delete(memos, k)
		}
	}
	if len(memos) == 0 {
		delete(a.reported, agent)
	}
	return out
}

// lastSeen gathers, per key, the latest time something was used, until a
// duty drains the batch into one Raft entry (keypairs' last_used,
// sessions' last activity): a request costs no Raft round trip of its own.
type lastSeen struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func newLastSeen() *lastSeen { return &lastSeen{m: map[string]time.Time{}} }

// touch records a use of key at at (earlier times than the one kept are
// ignored).
func (l *lastSeen) touch(key string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if at.After(l.m[key]) {
		l.m[key] = at
	}
}

// drain returns and forgets what was gathered.
func (l *lastSeen) drain() map[string]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.m
	l.m = map[string]time.Time{}
	return out
}

// putBack returns what could not be written, so the next drain carries it.
func (l *lastSeen) putBack(m map[string]time.Time) {
	for k, at := range m {
		l.touch(k, at)
	}
}
