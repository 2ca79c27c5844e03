package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// The scheduler is driven here by proposing entries directly: sessions as
// the HTTP API would create them, agents as registration would record them
// (they never beat, so the heartbeat timeout is made long).

func proposeOK(t testing.TB, s *server.Server, c fsm.Command) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := s.Propose(ctx, c)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		t.Fatalf("propose %T: %v", c, err)
	}
	return r.Value
}

// labSetup records the policy "lab" (2 cpu, 2 containers per session), a
// keypair on it, and two agents of 4 cpu and 8 GiB.
func labSetup(t testing.TB, s *server.Server, agents int) {
	t.Helper()
	proposeOK(t, s, fsm.PolicyCreate{Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "lab",
		TotalResourceSlots: slots.Limits{slots.CPU: 2000}, MaxContainersPerSession: 2}}})
	proposeOK(t, s, fsm.KeypairPut{Keypair: state.Keypair{AccessKey: "AKLAB", SecretKey: "s", User: testcluster.AdminEmail,
		IsActive: true, ResourcePolicy: "lab"}})
	for i := range agents {
		putAgent(t, s, fmt.Sprintf("a%d", i+1), slots.Slots{slots.CPU: 4000, slots.Mem: 8 << 30})
	}
}

func putAgent(t testing.TB, s *server.Server, id string, capacity slots.Slots) {
	t.Helper()
	proposeOK(t, s, fsm.AgentPut{Agent: state.Agent{ID: id, Secret: id, Address: "127.0.0.1:1", Status: state.AgentAlive,
		Schedulable: true, Capacity: capacity, LastHeartbeatAt: time.Now().UTC()}})
}

func createSession(t testing.TB, s *server.Server, id, ak string, cpuMilli int64) {
	t.Helper()
	proposeOK(t, s, fsm.SessionCreate{Session: state.Session{ID: id, AccessKey: ak, Image: "berth/base:latest",
		Type: api.SessionInteractive, ClusterSize: 1, Requested: slots.Slots{slots.CPU: cpuMilli, slots.Mem: 1 << 30},
		CreatedAt: time.Now().UTC()}})
}

// waitSession waits until the session is in status (and, if info is not
// empty, says it).
func waitSession(t testing.TB, s *server.Server, id string, status api.SessionStatus, info string) *state.Session {
	t.Helper()
	var got *state.Session
	testcluster.Eventually(t, 10*time.Second, func() error {
		got, _ = s.State().Read().Session(id)
		if got == nil || got.Status != status || (info != "" && got.StatusInfo != info) {
			return fmt.Errorf("session %s is %+v, want %s %q", id, got, status, info)
		}
		return nil
	})
	return got
}

func longHeartbeat(cfg *server.Config) { cfg.HeartbeatTimeout = time.Hour }

// TestSchedulerPlacesWithinTheKeypairsQuota is the manual's walkthrough
// below the API: a 2-cpu policy, three 1-cpu sessions; two run, the third
// waits with the reason in numbers and is placed when one ends.
func TestSchedulerPlacesWithinTheKeypairsQuota(t *testing.T) {
	c := testcluster.StartDev(t, longHeartbeat)
	s := c.Servers[0]
	labSetup(t, s, 2)
	for _, id := range []string{"s1", "s2", "s3"} {
		createSession(t, s, id, "AKLAB", 1000)
	}
	s1 := waitSession(t, s, "s1", api.SessionScheduled, "")
	s2 := waitSession(t, s, "s2", api.SessionScheduled, "")
	waitSession(t, s, "s3", api.SessionPending, "cpu 2 + 1 > 2")
	// Concentrated placement (the default) packs both on one agent.
	if s1.Agents[0] != "a1" || s2.Agents[0] != "a1" {
		t.Errorf("placed on %v and %v, want both on a1", s1.Agents, s2.Agents)
	}
	// The scheduler settles: its waits are written once, not every pass.
	idx := s.AppliedIndex()
	time.Sleep(300 * time.Millisecond)
	if now := s.AppliedIndex(); now != idx {
		t.Errorf("the log grew from %d to %d with nothing to do: a busy scheduler", idx, now)
	}
	proposeOK(t, s, fsm.SessionTerminate{SessionID: "s1", At: time.Now().UTC(), Reason: "user-request"})
	proposeOK(t, s, fsm.SessionsReport{At: time.Now().UTC(), Agent: "a1",
		Reports: []fsm.ContainerReport{{SessionID: "s1", Status: "exited", ExitCode: new(int)}}})
	waitSession(t, s, "s1", api.SessionTerminated, "")
	s3 := waitSession(t, s, "s3", api.SessionScheduled, "")
	if s3.Attempts < 1 || !strings.HasPrefix(s3.StatusHistory[len(s3.StatusHistory)-1].Reason, "placed on a1") {
		t.Errorf("s3 attempts %d, history %+v", s3.Attempts, s3.StatusHistory)
	}
	metrics := scrape(t, s)
	for _, want := range []string{"berth_scheduler_placements_total 3", "berth_scheduler_pending 0",
		"berth_session_admission_wait_seconds_count 3"} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestSchedulerResumesAfterRestart: the queue is all in Raft. A session
// waiting for room when the only manager stops is placed by the next
// leadership once an agent appears.
func TestSchedulerResumesAfterRestart(t *testing.T) {
	c := testcluster.StartDev(t, longHeartbeat)
	labSetup(t, c.Servers[0], 0)
	createSession(t, c.Servers[0], "waits", "AKLAB", 1000)
	waitSession(t, c.Servers[0], "waits", api.SessionPending, "no agent is alive and schedulable")
	c.Kill(0)
	s := c.Restart(0)
	c.Leader()
	putAgent(t, s, "late", slots.Slots{slots.CPU: 1000, slots.Mem: 2 << 30})
	if got := waitSession(t, s, "waits", api.SessionScheduled, ""); got.Agents[0] != "late" {
		t.Errorf("placed on %v", got.Agents)
	}
}

// TestSchedulerDispersedAndDRF runs the other options end to end.
func TestSchedulerDispersedAndDRF(t *testing.T) {
	c := testcluster.StartDev(t, longHeartbeat, func(cfg *server.Config) {
		cfg.Placement, cfg.Scheduler = "dispersed", "drf"
	})
	s := c.Servers[0]
	labSetup(t, s, 2)
	createSession(t, s, "s1", "AKLAB", 1000)
	createSession(t, s, "s2", "AKLAB", 1000)
	a := waitSession(t, s, "s1", api.SessionScheduled, "")
	b := waitSession(t, s, "s2", api.SessionScheduled, "")
	if a.Agents[0] == b.Agents[0] {
		t.Errorf("dispersed placement put both on %v", a.Agents)
	}
}

func TestSchedulerOptionsAreValidated(t *testing.T) {
	cfg := testcluster.Config(t, "bad")
	cfg.Dev, cfg.Scheduler, cfg.Placement = true, "lifo", "random"
	_, err := server.Start(cfg)
	if err == nil || !strings.Contains(err.Error(), `-scheduler "lifo" must be fifo or drf`) ||
		!strings.Contains(err.Error(), `-placement "random" must be concentrated or dispersed`) {
		t.Fatalf("start with bad scheduler options: %v", err)
	}
}

func scrape(t testing.TB, s *server.Server) string {
	t.Helper()
	resp, err := http.Get(testcluster.URL(s) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// settle waits until the log stops growing: the scheduler has nothing
// more to write.
func settle(t testing.TB, s *server.Server) {
	t.Helper()
	testcluster.Eventually(t, 10*time.Second, func() error {
		before := s.AppliedIndex()
		time.Sleep(200 * time.Millisecond)
		if now := s.AppliedIndex(); now != before {
			return fmt.Errorf("the log still grows (%d → %d)", before, now)
		}
		return nil
	})
}

// TestSchedulerHeadOfLineIsSkippedAfterItsTries: a session that finds no
// room holds the queue; it is tried again only when the agents change
// (creating sessions behind it is no new try), and after three tries the
// sessions behind it go first.
func TestSchedulerHeadOfLineIsSkippedAfterItsTries(t *testing.T) {
	c := testcluster.StartDev(t, longHeartbeat)
	s := c.Servers[0]
	proposeOK(t, s, fsm.KeypairPut{Keypair: state.Keypair{AccessKey: "AKOPEN", SecretKey: "s", User: testcluster.AdminEmail,
		IsActive: true, ResourcePolicy: "default"}})
	putAgent(t, s, "a1", slots.Slots{slots.CPU: 4000, slots.Mem: 8 << 30})
	createSession(t, s, "fill", "AKOPEN", 3000)
	waitSession(t, s, "fill", api.SessionScheduled, "")
	createSession(t, s, "big", "AKOPEN", 2000)
	waitSession(t, s, "big", api.SessionPending, "no agent has cpu 2 free (largest 1)")
	createSession(t, s, "small", "AKOPEN", 1000)
	settle(t, s)
	if big := waitSession(t, s, "big", api.SessionPending, ""); big.Attempts != 1 {
		t.Errorf("big has %d tries after a create behind it, want 1", big.Attempts)
	}
	if small := waitSession(t, s, "small", api.SessionPending, ""); small.StatusInfo != "" || small.Attempts != 0 {
		t.Errorf("small, never tried, says %q after %d tries", small.StatusInfo, small.Attempts)
	}
	// Each new agent is a new try; the third lets small pass.
	putAgent(t, s, "a2", slots.Slots{slots.CPU: 500, slots.Mem: 1 << 30})
	settle(t, s)
	if big := waitSession(t, s, "big", api.SessionPending, ""); big.Attempts != 2 {
		t.Errorf("big has %d tries after an agent came, want 2", big.Attempts)
	}
	waitSession(t, s, "small", api.SessionPending, "")
	putAgent(t, s, "a3", slots.Slots{slots.CPU: 500, slots.Mem: 1 << 30})
	waitSession(t, s, "small", api.SessionScheduled, "")
	settle(t, s)
	// Its reason follows the numbers (small took a1's last core).
	waitSession(t, s, "big", api.SessionPending, "no agent has cpu 2 free (largest 0.5)")
}
