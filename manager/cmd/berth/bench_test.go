package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent"
	"github.com/berth-cluster/berth/agent/simfleet"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

// benchCluster is an in-process manager that accepts simulated agents, with
// a few of them joined, and the environment of a logged-in superadmin.
func benchCluster(t *testing.T, agents int) (*server.Server, map[string]string) {
	t.Helper()
	const token = "bench-agents-join-here"
	s := testcluster.StartDev(t, func(cfg *server.Config) { cfg.AgentToken, cfg.AllowSimulatedAgents = token, true }).Servers[0]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- simfleet.Run(ctx, simfleet.Config{Count: agents, StateDir: t.TempDir(), HTTPAddr: "127.0.0.1:0",
			Agent: agent.Config{Managers: []string{testcluster.URL(s)}, Token: token, HeartbeatEvery: 100 * time.Millisecond,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test"}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("fleet: %v", err)
		}
	})
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	testcluster.Eventually(t, 20*time.Second, func() error {
		r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/info", admin, nil)
		var info api.Info
		r.JSON(t, &info)
		if info.Agents.Alive != agents {
			return fmt.Errorf("%d of %d agents alive", info.Agents.Alive, agents)
		}
		return nil
	})
	return s, map[string]string{"BERTH_ADDR": testcluster.URL(s), "BERTH_TOKEN": admin}
}

func benchJSON(t *testing.T, res result) benchResult {
	t.Helper()
	var out benchResult
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("bench output (exit %d, stderr %q): %v\n%s", res.code, res.stderr, err, res.stdout)
	}
	return out
}

// berth bench sessions against a manager with three simulated agents:
// every session is created by the concurrent callers, placed, started by
// the agents and reported RUNNING; the figures hang together; the sessions
// are terminated afterwards. With --wait scheduled and --keep they are
// followed only to SCHEDULED and left.
func TestBenchSessionsFollowsEverySessionToTheState(t *testing.T) {
	s, env := benchCluster(t, 3)
	ctx := context.Background()
	cl, err := client.New(client.Config{Addrs: []string{env["BERTH_ADDR"]}, Token: env["BERTH_TOKEN"]})
	if err != nil {
		t.Fatal(err)
	}

	res := berth(t, env, "", "bench", "sessions", "-n", "24", "-c", "4", "--poll", "50ms", "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d: %s\n%s", res.code, res.stderr, res.stdout)
	}
	got := benchJSON(t, res)
	if got.Wait != string(api.SessionRunning) || got.Sessions != 24 || got.Created != 24 || got.Reached != 24 || got.Failed != 0 ||
		got.CreateErrors != 0 || got.Concurrency != 4 || got.Terminated != 24 {
		t.Fatalf("result %+v", got)
	}
	l, c := got.LatencyMS, got.CreateMS
	if got.SessionsPerSecond <= 0 || got.CreatesPerSecond <= 0 || got.WallSeconds <= 0 ||
		l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max || c.P50 <= 0 || c.P50 > c.P99 {
		t.Fatalf("figures do not hang together: %+v", got)
	}
	// The manager's span cannot be longer than what the caller waited.
	if got.ManagerSpanMS > got.WallSeconds*1000+100 {
		t.Fatalf("manager span %.1f ms, wall %.1f s", got.ManagerSpanMS, got.WallSeconds)
	}
	list, err := cl.ListSessions(ctx, url.Values{"limit": {"100"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 24 {
		t.Fatalf("%d sessions, want 24", len(list.Items))
	}
	for _, s := range list.Items {
		if s.Status != api.SessionTerminating && s.Status != api.SessionTerminated {
			t.Errorf("session %s is %s after the bench, want terminated", s.ID, s.Status)
		}
		if !strings.Contains(s.StatusInfo, "simulated agent") {
			t.Errorf("session %s: status_info %q", s.ID, s.StatusInfo)
		}
	}

	res = berth(t, env, "", "bench", "sessions", "-n", "6", "-c", "2", "--wait", "scheduled", "--keep", "--poll", "50ms")
	if res.code != 0 {
		t.Fatalf("exit %d: %s\n%s", res.code, res.stderr, res.stdout)
	}
	for _, want := range []string{"wait:", "SCHEDULED", "reached:", "sessions_per_s:", "p99_ms:", "terminated:"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, res.stdout)
		}
	}
	kept, err := cl.ListSessions(ctx, url.Values{"limit": {"6"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range kept.Items {
		if s.Status == api.SessionPending || s.Status == api.SessionTerminating || s.Status == api.SessionTerminated {
			t.Errorf("kept session %s is %s", s.ID, s.Status)
		}
	}
	_ = s
}

// Sessions that cannot be created are counted, named, and make the command
// fail; bad flags are refused all at once before anything is sent.
func TestBenchSessionsReportsWhatFailed(t *testing.T) {
	_, env := benchCluster(t, 1)
	// More cores than any agent has: refused at create. (An image no agent
	// has is no longer that: a registry may serve it.)
	res := berth(t, env, "", "bench", "sessions", "-n", "3", "-c", "2", "--cpu", "500", "-o", "json")
	if res.code == 0 || !strings.Contains(res.stderr, "3 of 3 sessions did not reach RUNNING (3 create errors, 0 failed)") ||
		!strings.Contains(res.stderr, "cpu 500") {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	if got := benchJSON(t, res); got.CreateErrors != 3 || got.Reached != 0 {
		t.Fatalf("result %+v", got)
	}

	res = berth(t, env, "", "bench", "sessions", "-n", "0", "-c", "0", "--wait", "done", "--cpu", "x", "--poll", "0s")
	for _, want := range []string{"-n 0: must be from 1 to 1000000", "-c 0: must be from 1 to 10000", `--wait "done": must be running or scheduled`,
		"--cpu: ", "--poll 0s: must be positive"} {
		if res.code == 0 || !strings.Contains(res.stderr, want) {
			t.Errorf("exit %d, stderr %q lacks %q", res.code, res.stderr, want)
		}
	}
}

func TestPercentilesAreNearestRank(t *testing.T) {
	var v []float64
	for i := 100; i >= 1; i-- {
		v = append(v, float64(i))
	}
	if got := percentilesOf(v); got != (percentiles{P50: 50, P90: 90, P99: 99, Max: 100}) {
		t.Fatalf("1..100: %+v", got)
	}
	if got := percentilesOf([]float64{7}); got != (percentiles{P50: 7, P90: 7, P99: 7, Max: 7}) {
		t.Fatalf("one value: %+v", got)
	}
	if got := percentilesOf(nil); got != (percentiles{}) {
		t.Fatalf("none: %+v", got)
	}
}
