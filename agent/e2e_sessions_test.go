package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent"
	"github.com/berth-cluster/berth/agent/fingerprint"
	"github.com/berth-cluster/berth/agent/runtime/containerd"
	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// Compute sessions end to end: a real manager, a real agent, real
// containers on a private containerd.

// slowMachine bounds every wait: containers start in a fraction of a second
// on an idle machine, but CI machines are small and busy.
const slowMachine = 90 * time.Second

// fourCores is this machine as the agent sees it, with four cores: the
// walkthrough needs an agent that holds more than the policy's two cores
// (CFS quotas do not care how many cores there really are).
type fourCores struct{ fingerprint.System }

func (fourCores) NumCPU() int { return 4 }

type sessionCluster struct {
	t      testing.TB
	s      *server.Server
	socket string // the private containerd's
	rt     *containerd.Runtime
	admin  string
	user   string // a plain user's login token
	// agentCfg is the agent's configuration; stopAgent stops it (as a
	// restart's first half does).
	agentCfg  agent.Config
	stopAgent func()
}

// startSessionCluster starts containerd with the base image, a dev manager,
// and an agent on them; it sets the default policy to 2 cores, 4 GiB and
// the idle timeout (seconds, 0 = never) and makes a user.
func startSessionCluster(t *testing.T, idleTimeout int) *sessionCluster {
	t.Helper()
	return startSessionClusterWith(t, idleTimeout, nil)
}

// startSessionClusterWith is startSessionCluster with the agent's
// configuration changed by tweak (nil: none).
func startSessionClusterWith(t *testing.T, idleTimeout int, tweak func(*agent.Config)) *sessionCluster {
	t.Helper()
	socket := testenv.Containerd(t)
	ns := testenv.Namespace(t)
	testenv.ImportBaseImage(t, socket, ns)
	c := testcluster.StartDev(t, func(cfg *server.Config) {
		cfg.AgentToken = "agent-token"
		cfg.IdleCheckEvery = 200 * time.Millisecond
		// Sessions' apps at SESSION.localhost (browsers resolve every
		// name under localhost to the loopback address).
		cfg.AppsAddr, cfg.AppsDomain = "127.0.0.1:0", "localhost"
	})
	sc := &sessionCluster{t: t, s: c.Servers[0], socket: socket}
	rt, err := containerd.New(context.Background(), containerd.Config{Socket: socket, Namespace: ns, LogDir: t.TempDir(), HomeDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	sc.rt = rt
	cfg := agent.Config{Managers: []string{testcluster.URL(sc.s)}, Token: "agent-token", StateDir: t.TempDir(),
		HTTPAddr: "127.0.0.1:0", HeartbeatEvery: 200 * time.Millisecond, StopGrace: time.Second, Host: fourCores{},
		Runtime: rt, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test"}
	if tweak != nil {
		tweak(&cfg)
	}
	sc.agentCfg = cfg
	_, sc.stopAgent = runRealAgent(t, cfg)

	sc.admin = testcluster.Login(t, sc.s, testcluster.AdminEmail, testcluster.AdminPassword)
	r := sc.do(sc.admin, http.MethodPatch, "/v1/resource-policies/default", map[string]any{
		"total_resource_slots": map[string]any{"cpu": 2, "mem": 4 << 30}, "idle_timeout": idleTimeout})
	sc.want(r, http.StatusOK)
	r = sc.do(sc.admin, http.MethodPost, "/v1/users", map[string]any{
		"email": "dev@example.com", "username": "dev", "password": "Passw0rd!", "role": api.RoleUser})
	sc.want(r, http.StatusCreated)
	sc.user = testcluster.Login(t, sc.s, "dev@example.com", "Passw0rd!")
	testcluster.Eventually(t, slowMachine, func() error {
		var l api.List[api.Agent]
		sc.do(sc.admin, http.MethodGet, "/v1/agents", nil).JSON(t, &l)
		if len(l.Items) != 1 || l.Items[0].Status != api.AgentAlive || len(l.Items[0].Images) == 0 {
			return fmt.Errorf("agents %+v", l.Items)
		}
		return nil
	})
	return sc
}

func (sc *sessionCluster) do(token, method, path string, body any) *testcluster.Response {
	sc.t.Helper()
	return testcluster.Do(sc.t, method, testcluster.URL(sc.s)+path, token, body)
}

func (sc *sessionCluster) want(r *testcluster.Response, status int) {
	sc.t.Helper()
	if r.Status != status {
		sc.t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
}

// start asks for a session of cpu cores and 1 GiB running command.
func (sc *sessionCluster) start(typ string, cpu float64, command ...string) api.Session {
	sc.t.Helper()
	r := sc.do(sc.user, http.MethodPost, "/v1/sessions", map[string]any{"image": testenv.BaseImageName, "type": typ,
		"command": command, "resources": map[string]any{"cpu": cpu, "mem": 1 << 30}})
	sc.want(r, http.StatusCreated)
	var s api.Session
	r.JSON(sc.t, &s)
	return s
}

func (sc *sessionCluster) get(id string) api.Session {
	sc.t.Helper()
	var s api.Session
	r := sc.do(sc.user, http.MethodGet, "/v1/sessions/"+id, nil)
	sc.want(r, http.StatusOK)
	r.JSON(sc.t, &s)
	return s
}

// wait waits until the session is in the status and returns it.
func (sc *sessionCluster) wait(id string, status api.SessionStatus) api.Session {
	sc.t.Helper()
	var s api.Session
	testcluster.Eventually(sc.t, slowMachine, func() error {
		if s = sc.get(id); s.Status != status {
			return fmt.Errorf("session %s is %s (%s), want %s", id, s.Status, s.StatusInfo, status)
		}
		return nil
	})
	return s
}

func (sc *sessionCluster) terminate(id string) {
	sc.t.Helper()
	sc.want(sc.do(sc.user, http.MethodDelete, "/v1/sessions/"+id, nil), http.StatusAccepted)
}

// The manual's walkthrough: with the default policy at 2 cores and 4 GiB a
// request for 3 cores is refused at once; two sessions of one core run; a
// third waits PENDING naming the cpu limit and runs when one of the two
// ends. exec works in a running session; a batch session ends with its
// command's exit code; ended containers leave containerd.
func TestSessionsWalkthroughOnContainerd(t *testing.T) {
	t.Parallel()
	sc := startSessionCluster(t, 0)

	r := sc.do(sc.user, http.MethodPost, "/v1/sessions", map[string]any{"image": testenv.BaseImageName, "type": "interactive",
		"resources": map[string]any{"cpu": 3, "mem": 1 << 30}})
	sc.want(r, http.StatusUnprocessableEntity)
	var p api.Problem
	r.JSON(t, &p)
	if !strings.Contains(p.Detail, "cpu 3 > 2 allowed by policy default") {
		t.Fatalf("the refusal does not give the numbers: %+v", p)
	}

	first := sc.start(api.SessionInteractive, 1, "sleep", "3600")
	second := sc.start(api.SessionInteractive, 1, "sleep", "3600")
	sc.wait(first.ID, api.SessionRunning)
	sc.wait(second.ID, api.SessionRunning)
	third := sc.start(api.SessionInteractive, 1, "sleep", "3600")
	testcluster.Eventually(t, slowMachine, func() error {
		s := sc.get(third.ID)
		if s.Status != api.SessionPending || !strings.Contains(s.StatusInfo, "cpu") {
			return fmt.Errorf("third session is %s with status_info %q; want PENDING naming the cpu limit", s.Status, s.StatusInfo)
		}
		t.Logf("the third session waits: %s", s.StatusInfo)
		return nil
	})

	r = sc.do(sc.user, http.MethodPost, "/v1/sessions/"+first.ID+"/exec", map[string]any{"command": []string{"echo", "hi"}})
	sc.want(r, http.StatusOK)
	var res api.ExecResult
	r.JSON(t, &res)
	if res.ExitCode != 0 || res.Stdout != "hi\n" {
		t.Fatalf("exec echo hi: %+v", res)
	}

	sc.terminate(first.ID)
	ended := sc.wait(first.ID, api.SessionTerminated)
	if last := ended.StatusHistory[len(ended.StatusHistory)-1]; last.Reason != "user-request" {
		t.Errorf("terminated with history %+v", ended.StatusHistory)
	}
	sc.wait(third.ID, api.SessionRunning)

	sc.terminate(second.ID)
	sc.terminate(third.ID)
	sc.wait(second.ID, api.SessionTerminated)
	sc.wait(third.ID, api.SessionTerminated)
	batch := sc.start(api.SessionBatch, 1, "sh", "-c", "echo finished work; exit 3")
	done := sc.wait(batch.ID, api.SessionTerminated)
	if done.ExitCode == nil || *done.ExitCode != 3 {
		t.Fatalf("batch session ended with exit code %v, want 3 (%+v)", done.ExitCode, done.StatusHistory)
	}
	testcluster.Eventually(t, slowMachine, func() error {
		cs, err := sc.rt.List(context.Background())
		if err != nil {
			return err
		}
		if len(cs) != 0 {
			return fmt.Errorf("%d containers still in containerd, e.g. %s (%s)", len(cs), cs[0].ID, cs[0].State)
		}
		return nil
	})
	// The container is gone; its output is kept for a while.
	r = sc.do(sc.user, http.MethodGet, "/v1/sessions/"+batch.ID+"/logs", nil)
	sc.want(r, http.StatusOK)
	if string(r.Body) != "finished work\n" {
		t.Fatalf("logs of the finished batch session: %q", r.Body)
	}
}

// An idle timeout of 4 s ends an idle session (reason idle-timeout) and
// spares one that keeps its half core busy. (The busy one's evidence is
// two heartbeats' CPU readings apart: the timeout leaves room for a
// loaded machine to send them late.)
func TestIdleTimeoutOnContainerd(t *testing.T) {
	t.Parallel()
	const timeout = 4
	sc := startSessionCluster(t, timeout)
	idle := sc.start(api.SessionInteractive, 0.5, "sleep", "3600")
	busy := sc.start(api.SessionInteractive, 0.5, "sh", "-c", "while :; do :; done")
	sc.wait(busy.ID, api.SessionRunning)

	s := sc.wait(idle.ID, api.SessionTerminated)
	reasons := ""
	for _, h := range s.StatusHistory {
		reasons += string(h.Status) + ":" + h.Reason + " "
	}
	if !strings.Contains(reasons, "TERMINATING:idle-timeout") {
		t.Fatalf("idle session history %s, want TERMINATING with reason idle-timeout", reasons)
	}
	// The busy one outlives the idle one by more than the timeout.
	deadline := time.Now().Add(timeout * time.Second)
	testcluster.Eventually(t, slowMachine, func() error {
		if b := sc.get(busy.ID); b.Status != api.SessionRunning {
			t.Fatalf("busy session is %s (%+v)", b.Status, b.StatusHistory)
		}
		if time.Now().Before(deadline) {
			return fmt.Errorf("watching the busy session until %s", deadline.Format(time.TimeOnly))
		}
		return nil
	})
	sc.terminate(busy.ID)
	sc.wait(busy.ID, api.SessionTerminated)
}
