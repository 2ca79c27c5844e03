package httpapi_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
	"github.com/berth-cluster/berth/shared/slots"
)

// The concurrency limit under load and failover: one keypair sends many
// creates at once through all managers of a three-node cluster while the
// leader is killed; max_concurrent_sessions must hold at every instant of
// the recorded history, and no acknowledged session may be lost.

const (
	concLimit      = 5   // the policy's max_concurrent_sessions
	concCreates    = 200 // creates, all by one keypair
	concWorkers    = 40  // creates in flight at once
	concKillAfter  = 70  // acknowledged creates before the leader is killed
	concSecondHalf = 100 // creates from this one on are sent once the kill began
)

// simAgent is a simulated agent, a test tool: it registers through the real
// API and, every tick, asks the managers what it should run and heartbeats
// those very containers as running. It runs nothing; what the managers stop
// (a terminated session's containers) it simply no longer reports, so the
// session ends TERMINATED.
type simAgent struct {
	id string
	cl *client.Client // every manager; the agent's secret as the bearer
	hb api.AgentHeartbeat
}

// startSimAgent registers an agent of the capacity with the base image.
func startSimAgent(t *testing.T, addrs []string, name, capacity string) *simAgent {
	t.Helper()
	join, err := client.New(client.Config{Addrs: addrs, MaxAttempts: 30, RetryBackoff: 50 * time.Millisecond,
		Header: http.Header{api.AgentTokenHeader: {testAgentToken}}})
	if err != nil {
		t.Fatal(err)
	}
	in := registration(name+".test:6001", api.Image{Name: baseImage, Digest: "sha256:aa", Size: 1 << 20})
	in.Capacity = mustSlots(capacity)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := join.RegisterAgent(ctx, in)
	if err != nil {
		t.Fatalf("register simulated agent %s: %v", name, err)
	}
	cl, err := client.New(client.Config{Addrs: addrs, Token: reg.Secret, MaxAttempts: 30, RetryBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &simAgent{id: reg.ID, cl: cl, hb: api.AgentHeartbeat{Address: in.Address, Capacity: in.Capacity, Images: in.Images}}
}

// run beats every tick until ctx ends. Desired state first, then the beat:
// a report never lists a container the managers had not asked for when the
// beat began, and never omits one they still wanted then.
func (a *simAgent) run(ctx context.Context, every time.Duration, beats *atomic.Int64) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if ds, err := a.cl.AgentDesired(ctx, a.id, 0, 0); err == nil {
			hb := a.hb
			hb.Containers = make([]api.ContainerReport, 0, len(ds.Containers))
			for _, d := range ds.Containers {
				hb.Containers = append(hb.Containers, api.ContainerReport{ID: d.ID, SessionID: d.SessionID, Index: d.Index, Status: "running"})
			}
			if _, err := a.cl.AgentHeartbeat(ctx, a.id, hb); err == nil {
				beats.Add(1)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// listAllSessions pages through the caller's sessions.
func listAllSessions(ctx context.Context, cl *client.Client, query url.Values) ([]api.Session, error) {
	var out []api.Session
	q := url.Values{"limit": {"1000"}}
	for k, v := range query {
		q[k] = v
	}
	for {
		page, err := cl.ListSessions(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out, nil
		}
		q.Set("cursor", page.NextCursor)
	}
}

// rotated returns addrs starting at the i-th.
func rotated(addrs []string, i int) []string {
	i %= len(addrs)
	return append(slices.Clone(addrs[i:]), addrs[:i]...)
}

// occupyingStatus: the statuses that count against max_concurrent_sessions.
func occupyingStatus(s api.SessionStatus) bool {
	switch s {
	case api.SessionScheduled, api.SessionPreparing, api.SessionRunning, api.SessionTerminating:
		return true
	}
	return false
}

// occupancyEvent is a session starting (+1) or ceasing (-1) to occupy.
type occupancyEvent struct {
	at      time.Time
	delta   int
	session string
}

// peakOccupancy sweeps the enter and leave events of every history in time
// order and returns the most sessions occupying at once, with when.
//
// Events of equal time: enters are counted before leaves. Every time in a
// history is the At of the Raft entry that made the change, and entries
// written in one Apply share it; but no entry both enters and leaves — a
// Plan only makes PENDING sessions SCHEDULED; reports, terminations and
// agent loss only move occupying sessions on or out — so an equal time never
// comes from the FSM applying a leave and an enter together, and the FSM
// makes no promise about the order of two different entries that happen to
// carry the same time. Counting the enters first can only overstate the
// peak, never hide an over-admission behind a leave that was in fact
// applied later. (It is also what the FSM's own causality gives: a plan's
// time is read after the state it was planned from, so a leave that made
// room for it has a strictly earlier time unless the clock stood still.)
//
// Equally, a change between two occupying statuses (SCHEDULED → RUNNING →
// TERMINATING) is neither an enter nor a leave.
func peakOccupancy(sessions []api.Session) (peak int, at time.Time, events []occupancyEvent) {
	for _, s := range sessions {
		occupied := false
		for _, h := range s.StatusHistory {
			now := occupyingStatus(h.Status)
			switch {
			case now && !occupied:
				events = append(events, occupancyEvent{at: h.At, delta: 1, session: s.ID})
			case !now && occupied:
				events = append(events, occupancyEvent{at: h.At, delta: -1, session: s.ID})
			}
			occupied = now
		}
	}
	slices.SortStableFunc(events, func(x, y occupancyEvent) int {
		return cmp.Or(x.at.Compare(y.at), cmp.Compare(y.delta, x.delta)) // enters first at equal times
	})
	n := 0
	for _, e := range events {
		n += e.delta
		if n > peak {
			peak, at = n, e.at
		}
	}
	return peak, at, events
}

// occupyingAround lists the sessions the sweep counts as occupying just
// after t, to explain a failure.
func occupyingAround(events []occupancyEvent, t time.Time) []string {
	in := map[string]bool{}
	for _, e := range events {
		if e.at.After(t) {
			break
		}
		in[e.session] = e.delta > 0
	}
	var out []string
	for id, yes := range in {
		if yes {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func TestSessionConcurrencyLimitHoldsThroughLeaderFailover(t *testing.T) {
	started := time.Now()
	c := testcluster.Start(t, 3, withAgentToken, testcluster.InsecureRaft, func(cfg *server.Config) {
		// No silent agent may be declared lost while the cluster is busy.
		cfg.HeartbeatTimeout = 30 * time.Second
	})
	var addrs []string
	for _, s := range c.Servers {
		addrs = append(addrs, testcluster.URL(s))
	}
	leader := c.Leader()
	admin := testcluster.Login(t, leader, testcluster.AdminEmail, testcluster.AdminPassword)
	r := testcluster.Do(t, http.MethodPatch, testcluster.URL(leader)+"/v1/resource-policies/default", admin,
		map[string]any{"max_concurrent_sessions": concLimit})
	wantStatus(t, r, http.StatusOK)
	user := createUser(t, leader, admin, "many@example.com", "many", api.RoleUser)
	token := testcluster.Login(t, leader, user.User.Email, testPassword)

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	bg, stopBG := context.WithCancel(ctx)
	var bgDone sync.WaitGroup
	defer func() { stopBG(); bgDone.Wait() }()

	var beats atomic.Int64
	for i := range 2 {
		a := startSimAgent(t, rotated(addrs, i), fmt.Sprintf("sim%d", i), `{"cpu":64,"mem":549755813888}`)
		bgDone.Add(1)
		go func() { defer bgDone.Done(); a.run(bg, 100*time.Millisecond, &beats) }()
	}

	// One client per manager, each starting there: the creates are spread
	// over all three, and fail over when theirs is gone.
	users := make([]*client.Client, len(addrs))
	for i := range users {
		var err error
		if users[i], err = client.New(client.Config{Addrs: rotated(addrs, i), Token: token, MaxAttempts: 30,
			RetryBackoff: 50 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}

	// The terminator ends every RUNNING session of the keypair, so the
	// queue drains; PENDING ones are left to the scheduler.
	var terminated atomic.Int64
	bgDone.Add(1)
	go func() {
		defer bgDone.Done()
		cl := users[0]
		for bg.Err() == nil {
			running, err := listAllSessions(bg, cl, url.Values{"status": {string(api.SessionRunning)}})
			if err == nil {
				for _, s := range running {
					if _, err := cl.TerminateSession(bg, s.ID); err == nil {
						terminated.Add(1)
					}
				}
			}
			select {
			case <-bg.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	// The creates. Job n is named so that the sessions of one job can be
	// told apart from another's; a job whose answer was lost is sent again,
	// and may then exist twice (only acknowledged sessions are promised).
	type ack struct {
		id, via string // via: the manager the client tried first
		job     int
		at      time.Time
	}
	var (
		mu         sync.Mutex
		acked      []ack
		sends      = map[int]int{} // job → POSTs the test sent
		retried    int             // failed sends, retried
		retryWhy   []string        // the first failures, for the log
		refusals   []string        // answers that are neither 201 nor retryable
		killStart  = make(chan struct{})
		killDone   time.Time
		killWanted = make(chan struct{})
		wantOnce   sync.Once
	)
	jobs := make(chan int, concCreates)
	for n := range concCreates {
		jobs <- n
	}
	close(jobs)
	body := api.SessionCreate{Image: baseImage, Type: api.SessionInteractive,
		Resources: slots.Slots{slots.CPU: 500, slots.Mem: 256 << 20}}
	var workers sync.WaitGroup
	for w := range concWorkers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for n := range jobs {
				if n >= concSecondHalf {
					select {
					case <-killStart:
					case <-ctx.Done():
						return
					}
				}
				in := body
				in.Name = fmt.Sprintf("job-%03d", n)
				for attempt := 0; ctx.Err() == nil; attempt++ {
					cl := users[(n+w+attempt)%len(users)]
					mu.Lock()
					sends[n]++
					mu.Unlock()
					rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
					s, err := cl.CreateSession(rctx, in)
					rcancel()
					if err == nil {
						mu.Lock()
						acked = append(acked, ack{id: s.ID, via: cl.Addrs()[0], job: n, at: time.Now()})
						if len(acked) >= concKillAfter {
							wantOnce.Do(func() { close(killWanted) })
						}
						mu.Unlock()
						break
					}
					var p *api.Problem
					if errors.As(err, &p) && p.Status != http.StatusServiceUnavailable {
						mu.Lock()
						refusals = append(refusals, fmt.Sprintf("job %d: %v", n, err))
						mu.Unlock()
						break
					}
					// 503 after the client's own failover, or a connection
					// that broke: the create may or may not exist.
					mu.Lock()
					if retried++; len(retryWhy) < 3 {
						retryWhy = append(retryWhy, err.Error())
					}
					mu.Unlock()
					select {
					case <-ctx.Done():
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		}()
	}

	select {
	case <-killWanted:
	case <-ctx.Done():
		t.Fatalf("fewer than %d creates acknowledged before the deadline", concKillAfter)
	}
	old := c.Leader()
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	killAt := time.Now().UTC()
	close(killStart)
	c.Kill(c.Index(old))
	mu.Lock()
	killDone = time.Now()
	mu.Unlock()
	newLeader := c.Leader()
	t.Logf("killed leader %s after %d acknowledged creates; %s leads now", old.ID(), before, newLeader.ID())

	workers.Wait()
	mu.Lock()
	if len(refusals) > 0 {
		t.Errorf("creates refused: %s", strings.Join(refusals, "; "))
	}
	ackedIDs := map[string]ack{}
	afterKill := 0
	spread := map[string]int{}
	for _, a := range acked {
		ackedIDs[a.id] = a
		spread[a.via]++
		if a.at.After(killDone) {
			afterKill++
		}
	}
	nAcked, nRetried, why := len(acked), retried, strings.Join(retryWhy, "; ")
	mu.Unlock()
	if nAcked != concCreates {
		t.Fatalf("%d of %d creates acknowledged before the deadline", nAcked, concCreates)
	}
	if afterKill == 0 {
		t.Errorf("no create was acknowledged after the leader was killed: the failover was not exercised")
	}
	if len(spread) != len(addrs) {
		t.Errorf("the creates went first to %d managers, not all %d: %v", len(spread), len(addrs), spread)
	}
	t.Logf("%d creates acknowledged (%d after the kill; by the manager tried first %v), %d sends retried (%s); %s since the start",
		nAcked, afterKill, spread, nRetried, why, time.Since(started).Round(time.Millisecond))

	// (c) The queue drains: every session of the keypair, acknowledged or
	// not, ends — none stays PENDING once the terminator has run.
	leaderClient := users[c.Index(newLeader)]
	var all []api.Session
	testcluster.Eventually(t, 120*time.Second, func() error {
		var err error
		if all, err = listAllSessions(ctx, leaderClient, nil); err != nil {
			return err
		}
		byStatus := map[api.SessionStatus]int{}
		for _, s := range all {
			byStatus[s.Status]++
		}
		ended := byStatus[api.SessionTerminated] + byStatus[api.SessionCancelled] + byStatus[api.SessionError]
		if len(all) < nAcked || ended < len(all) {
			return fmt.Errorf("%d sessions, %d ended: %v (%d terminated by the test)", len(all), ended, byStatus, terminated.Load())
		}
		return nil
	})
	stopBG()
	bgDone.Wait()
	for _, s := range all {
		if s.Status != api.SessionTerminated && s.Status != api.SessionCancelled {
			t.Errorf("session %s ended %s (%s): %+v", s.ID, s.Status, s.StatusInfo, s.StatusHistory)
		}
	}

	// (a) Every acknowledged session is on every surviving manager, as the
	// leader has it.
	want := map[string]api.Session{}
	for _, s := range all {
		want[s.ID] = s
	}
	for id := range ackedIDs {
		if _, ok := want[id]; !ok {
			t.Errorf("acknowledged session %s (job %d, sent first to %s) is lost", id, ackedIDs[id].job, ackedIDs[id].via)
		}
	}
	for _, s := range c.Running() {
		testcluster.Eventually(t, 30*time.Second, func() error {
			r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/sessions?stale=true&limit=1000", token, nil)
			if r.Status != http.StatusOK {
				return fmt.Errorf("%s: %d %s", s.ID(), r.Status, r.Body)
			}
			var page api.List[api.Session]
			r.JSON(t, &page)
			have := map[string]api.Session{}
			for _, x := range page.Items {
				have[x.ID] = x
			}
			for id, w := range want {
				h, ok := have[id]
				if !ok {
					if _, promised := ackedIDs[id]; promised {
						return fmt.Errorf("%s lacks acknowledged session %s", s.ID(), id)
					}
					return fmt.Errorf("%s lacks session %s", s.ID(), id)
				}
				if h.Status != w.Status || len(h.StatusHistory) != len(w.StatusHistory) {
					return fmt.Errorf("%s has session %s %s with %d changes; the leader has %s with %d", s.ID(), id,
						h.Status, len(h.StatusHistory), w.Status, len(w.StatusHistory))
				}
			}
			if len(have) != len(want) {
				return fmt.Errorf("%s has %d sessions, the leader %d", s.ID(), len(have), len(want))
			}
			return nil
		})
	}

	// Sessions beyond the acknowledged ones come from sends whose answer
	// was lost; name them, so a duplicate made behind a single send (one
	// POST by the test, one 201, two sessions) is visible.
	perJob := map[string]int{}
	for _, s := range all {
		perJob[s.Name]++
	}
	mu.Lock()
	for name, n := range perJob {
		var job int
		if _, err := fmt.Sscanf(name, "job-%d", &job); err != nil {
			t.Errorf("session named %q was not made by this test", name)
			continue
		}
		if n > sends[job] {
			t.Errorf("job %d: %d sessions from %d POSTs", job, n, sends[job])
		}
		if n > 1 {
			t.Logf("job %d: %d sessions from %d POSTs (a lost answer was sent again)", job, n, sends[job])
		}
	}
	mu.Unlock()

	// (b) Never more than the limit occupying at any instant of the
	// history. Each history must also run forward in time: the sweep reads
	// it so. (It does here: the simulated agent reads the desired state
	// before each beat, so a report is always dated after what it reports
	// on.)
	for _, s := range all {
		for i := 1; i < len(s.StatusHistory); i++ {
			if s.StatusHistory[i].At.Before(s.StatusHistory[i-1].At) {
				t.Errorf("session %s: status_history goes back in time: %+v", s.ID, s.StatusHistory)
				break
			}
		}
	}
	peak, at, events := peakOccupancy(all)
	if peak > concLimit {
		t.Errorf("%d sessions occupied at %s, over max_concurrent_sessions %d: %v", peak, at.Format(time.RFC3339Nano),
			concLimit, occupyingAround(events, at))
	}
	if peak < concLimit {
		t.Errorf("at most %d sessions ever occupied: the limit of %d was never reached, so the test proved nothing", peak, concLimit)
	}
	left := 0
	for _, e := range events {
		left += e.delta
	}
	if left != 0 {
		t.Errorf("%d sessions still occupy by their histories", left)
	}
	across := len(occupyingAround(events, killAt))
	t.Logf("%d sessions (%d acknowledged), peak occupancy %d at %s, %d occupying when the leader was killed, %d terminations, %d heartbeats; %s in all",
		len(all), len(ackedIDs), peak, at.Format(time.StampMicro), across, terminated.Load(), beats.Load(),
		time.Since(started).Round(time.Millisecond))
}

// The sweep itself: changes among occupying statuses are no events, a
// session counts from its SCHEDULED to its end, and at equal times enters
// count before leaves.
func TestPeakOccupancySweep(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	hist := func(id string, steps ...any) api.Session {
		s := api.Session{ID: id}
		for i := 0; i < len(steps); i += 2 {
			s.StatusHistory = append(s.StatusHistory, api.StatusChange{Status: steps[i].(api.SessionStatus), At: at(steps[i+1].(int))})
		}
		return s
	}
	full := func(id string, from, to int) api.Session {
		return hist(id, api.SessionPending, 0, api.SessionScheduled, from, api.SessionPreparing, from+1,
			api.SessionRunning, from+2, api.SessionTerminating, to-1, api.SessionTerminated, to)
	}
	for _, tc := range []struct {
		name     string
		sessions []api.Session
		peak     int
		at       int
	}{
		{"one after another", []api.Session{full("a", 10, 20), full("b", 30, 40)}, 1, 10},
		{"overlapping", []api.Session{full("a", 10, 40), full("b", 20, 50), full("c", 45, 60)}, 2, 20},
		{"a leave and an enter at the same time count as both", []api.Session{full("a", 10, 20), full("b", 20, 30)}, 2, 20},
		{"cancelled while pending never occupies", []api.Session{full("a", 10, 20),
			hist("b", api.SessionPending, 0, api.SessionCancelled, 15)}, 1, 10},
		{"lost agent", []api.Session{hist("a", api.SessionPending, 0, api.SessionScheduled, 10, api.SessionError, 12),
			full("b", 11, 20)}, 2, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peak, when, events := peakOccupancy(tc.sessions)
			if peak != tc.peak || !when.Equal(at(tc.at)) {
				t.Fatalf("peak %d at %s, want %d at %s (events %+v)", peak, when, tc.peak, at(tc.at), events)
			}
		})
	}
}
