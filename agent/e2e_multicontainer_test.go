package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent"
	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/agent/runtime/containerd"
	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// Multi-container sessions end to end: one real manager, two real agents,
// each on its own namespace of one private containerd and offering one
// core, so a session of two one-core containers must span both.

// showEnv prints what a container of a session knows of itself.
var showEnv = []string{"sh", "-c", `echo "$BERTH_CONTAINER_INDEX $BERTH_CLUSTER_SIZE $BERTH_SESSION_ID"`}

// realAgent is one agent under test and the runtime of its namespace.
type realAgent struct {
	a    *agent.Agent
	rt   *containerd.Runtime
	ns   string
	cfg  agent.Config
	stop func() // ends the agent as kill -9 would: its containers run on
}

type multiCluster struct {
	*sessionCluster
	agents map[string]*realAgent // by agent id, once registered
}

// runRealAgent starts an agent with cfg until stop or the test's end.
func runRealAgent(t *testing.T, cfg agent.Config) (*agent.Agent, func()) {
	t.Helper()
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return a, stop
}

// startMultiCluster starts containerd, a dev manager placing concentrated
// (changed by tweak), and two agents of one core each; the default policy
// allows two containers per session.
func startMultiCluster(t *testing.T, tweak ...func(*server.Config)) *multiCluster {
	t.Helper()
	socket := testenv.Containerd(t)
	c := testcluster.StartDev(t, append([]func(*server.Config){func(cfg *server.Config) {
		cfg.AgentToken = "agent-token"
		cfg.Placement = "concentrated"
	}}, tweak...)...)
	mc := &multiCluster{sessionCluster: &sessionCluster{t: t, s: c.Servers[0]}, agents: map[string]*realAgent{}}
	var started []*realAgent
	for range 2 {
		ns := testenv.Namespace(t)
		testenv.ImportBaseImage(t, socket, ns)
		rt, err := containerd.New(context.Background(), containerd.Config{Socket: socket, Namespace: ns, LogDir: t.TempDir(), HomeDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rt.Close() })
		// Four cores less three reserved: one core to offer, whatever
		// this machine has.
		cfg := agent.Config{Managers: []string{testcluster.URL(mc.s)}, Token: "agent-token", StateDir: t.TempDir(),
			HTTPAddr: "127.0.0.1:0", ReservedMilliCPU: 3000, HeartbeatEvery: 200 * time.Millisecond, StopGrace: time.Second,
			Host: fourCores{}, Runtime: rt, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test"}
		a, stop := runRealAgent(t, cfg)
		started = append(started, &realAgent{a: a, rt: rt, ns: ns, cfg: cfg, stop: stop})
	}

	mc.admin = testcluster.Login(t, mc.s, testcluster.AdminEmail, testcluster.AdminPassword)
	r := mc.do(mc.admin, http.MethodPatch, "/v1/resource-policies/default", map[string]any{"max_containers_per_session": 2})
	mc.want(r, http.StatusOK)
	r = mc.do(mc.admin, http.MethodPost, "/v1/users", map[string]any{
		"email": "dev@example.com", "username": "dev", "password": "Passw0rd!", "role": api.RoleUser})
	mc.want(r, http.StatusCreated)
	mc.user = testcluster.Login(t, mc.s, "dev@example.com", "Passw0rd!")
	testcluster.Eventually(t, slowMachine, func() error {
		var l api.List[api.Agent]
		mc.do(mc.admin, http.MethodGet, "/v1/agents", nil).JSON(t, &l)
		if len(l.Items) != 2 {
			return fmt.Errorf("%d agents registered", len(l.Items))
		}
		for _, ag := range l.Items {
			if ag.Status != api.AgentAlive || len(ag.Images) == 0 || ag.Capacity[slots.CPU] != 1000 {
				return fmt.Errorf("agent %s is %s with cpu %d and %d images", ag.ID, ag.Status, ag.Capacity[slots.CPU], len(ag.Images))
			}
		}
		// An agent keeps its id once its identity file is written, which
		// may trail the manager's record of it.
		for _, ra := range started {
			if ra.a.ID() == "" {
				return fmt.Errorf("an agent does not know its id yet")
			}
		}
		return nil
	})
	for _, ra := range started {
		mc.agents[ra.a.ID()] = ra
	}
	if len(mc.agents) != 2 {
		t.Fatalf("the agents registered as %v", slices.Sorted(maps.Keys(mc.agents)))
	}
	return mc
}

// in is the cluster as seen by a subtest: its helpers fail t.
func (mc *multiCluster) in(t *testing.T) *multiCluster {
	sc := *mc.sessionCluster
	sc.t = t
	return &multiCluster{sessionCluster: &sc, agents: mc.agents}
}

// startCluster asks for a session of size containers of cpu cores and
// 256 MiB each, running the default command (a shell that waits).
func (mc *multiCluster) startCluster(size int, cpu float64) api.Session {
	mc.t.Helper()
	r := mc.do(mc.user, http.MethodPost, "/v1/sessions", map[string]any{"image": testenv.BaseImageName, "type": api.SessionInteractive,
		"cluster_size": size, "resources": map[string]any{"cpu": cpu, "mem": 256 << 20}})
	mc.want(r, http.StatusCreated)
	var s api.Session
	r.JSON(mc.t, &s)
	// A failed subtest must not leave the agents full for the next one.
	mc.t.Cleanup(func() {
		if mc.t.Failed() {
			mc.do(mc.user, http.MethodDelete, "/v1/sessions/"+s.ID, nil)
		}
	})
	return s
}

// containers lists what runs in the agent's namespace, by id.
func (mc *multiCluster) containers(ra *realAgent) map[string]runtime.Container {
	mc.t.Helper()
	cs, err := ra.rt.List(context.Background())
	if err != nil {
		mc.t.Fatalf("list containers of namespace %s: %v", ra.ns, err)
	}
	out := map[string]runtime.Container{}
	for _, c := range cs {
		out[c.ID] = c
	}
	return out
}

// checkContainer checks that container index of session s runs on agent
// ag, carries the session's labels and sees its own index in its env: read
// from its runtime directly, since the manager's exec reaches container 0
// only.
func (mc *multiCluster) checkContainer(s api.Session, index int, ag string) {
	mc.t.Helper()
	ra := mc.agents[ag]
	if ra == nil {
		mc.t.Fatalf("container %d of session %s is on %s, not one of the test's agents", index, s.ID, ag)
	}
	id := fmt.Sprintf("%s-%d", s.ID, index)
	c, ok := mc.containers(ra)[id]
	if !ok {
		mc.t.Fatalf("container %s is not in namespace %s of agent %s", id, ra.ns, ag)
	}
	if c.State != runtime.Running || c.SessionID != s.ID || c.Index != index ||
		c.Labels[runtime.LabelSession] != s.ID || c.Labels[runtime.LabelIndex] != fmt.Sprint(index) {
		mc.t.Fatalf("container %s: state %s, session %q, index %d, labels %v", id, c.State, c.SessionID, c.Index, c.Labels)
	}
	res, err := ra.rt.Exec(context.Background(), id, showEnv, 20*time.Second)
	if err != nil {
		mc.t.Fatalf("exec in %s on agent %s: %v", id, ag, err)
	}
	if want := fmt.Sprintf("%d %d %s\n", index, len(s.Containers), s.ID); res.ExitCode != 0 || string(res.Stdout) != want {
		mc.t.Fatalf("env of %s: exit %d, stdout %q, stderr %q; want %q", id, res.ExitCode, res.Stdout, res.Stderr, want)
	}
}

// execFirst runs showEnv through the manager (container 0).
func (mc *multiCluster) execFirst(s api.Session) string {
	mc.t.Helper()
	r := mc.do(mc.user, http.MethodPost, "/v1/sessions/"+s.ID+"/exec", map[string]any{"command": showEnv})
	mc.want(r, http.StatusOK)
	var res api.ExecResult
	r.JSON(mc.t, &res)
	if res.ExitCode != 0 {
		mc.t.Fatalf("exec through the manager: %+v", res)
	}
	return res.Stdout
}

// endAndClean terminates the session and waits until no container is left
// in any namespace.
func (mc *multiCluster) endAndClean(s api.Session) {
	mc.t.Helper()
	mc.terminate(s.ID)
	ended := mc.wait(s.ID, api.SessionTerminated)
	if ended.StatusInfo != "user-request" {
		mc.t.Errorf("session %s ended with status_info %q, want user-request (%+v)", s.ID, ended.StatusInfo, ended.StatusHistory)
	}
	testcluster.Eventually(mc.t, slowMachine, func() error {
		for ag, ra := range mc.agents {
			if cs := mc.containers(ra); len(cs) != 0 {
				return fmt.Errorf("agent %s still has containers in containerd: %v", ag, slices.Sorted(maps.Keys(cs)))
			}
		}
		return nil
	})
}

// A session of two one-core containers fits on no agent of one core: it
// waits PENDING, saying that a session's containers run on one agent. A
// session of two half-core containers fits on one agent, and runs there.
func TestMultiContainerSessionsOnContainerd(t *testing.T) {
	t.Parallel()
	mc := startMultiCluster(t)

	t.Run("no single agent holds it", func(t *testing.T) {
		mc := mc.in(t)
		s := mc.startCluster(2, 1)
		// Each agent has room for one of the containers, none for both:
		// a session's containers share one network, which is one agent's,
		// so it waits and says why.
		testcluster.Eventually(t, slowMachine, func() error {
			got := mc.get(s.ID)
			if got.Status != api.SessionPending || !strings.Contains(got.StatusInfo, "no agent has room for all 2 containers together") {
				return fmt.Errorf("session is %s (%s)", got.Status, got.StatusInfo)
			}
			return nil
		})
		for ag, ra := range mc.agents {
			if cs := mc.containers(ra); len(cs) != 0 {
				t.Fatalf("agent %s runs %d containers of a session that fits no agent", ag, len(cs))
			}
		}
		mc.want(mc.do(mc.user, http.MethodDelete, "/v1/sessions/"+s.ID, nil), http.StatusAccepted)
		mc.wait(s.ID, api.SessionCancelled)
	})

	t.Run("one agent, concentrated", func(t *testing.T) {
		mc := mc.in(t)
		s := mc.startCluster(2, 0.5)
		s = mc.wait(s.ID, api.SessionRunning)
		if len(s.Containers) != 2 || s.Containers[0].Agent != s.Containers[1].Agent {
			t.Fatalf("a session that fits on one agent was not concentrated there: %+v", s.Containers)
		}
		ag := s.Containers[0].Agent
		if got, want := mc.execFirst(s), "0 2 "+s.ID+"\n"; got != want {
			t.Fatalf("exec through the manager printed %q, want %q", got, want)
		}
		mc.checkContainer(s, 0, ag)
		mc.checkContainer(s, 1, ag)
		for other, ra := range mc.agents {
			if other == ag {
				continue
			}
			if cs := mc.containers(ra); len(cs) != 0 {
				t.Fatalf("agent %s runs %d containers, but the session is all on %s", other, len(cs), ag)
			}
		}
		for _, h := range s.StatusHistory {
			if h.Status == api.SessionScheduled && h.Reason != "placed on "+ag {
				t.Errorf("placement reason %q, want it to name %s alone", h.Reason, ag)
			}
		}
		mc.endAndClean(s)
	})
}
