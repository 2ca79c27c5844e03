package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/agent/runtime/containerd"
	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
	"github.com/berth-cluster/berth/shared/slots"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The disconnect grace under faults (issue 23): real berth-agent processes
// on a private containerd run sessions that fill them while a nemesis
// stops one agent (SIGSTOP) for longer than the heartbeat timeout and less
// than the grace, sometimes killing the leader manager meanwhile. No
// session that was running when its agent disconnected, and whose
// container kept running, may ever be anything but RUNNING; no slot may be
// held twice (sessions that need the disconnected agents' slots never get
// them); at the end every container is the one it was.
func TestDisconnectedAgentsKeepTheirSessionsUnderFaults(t *testing.T) {
	const timeout, grace = 2 * time.Second, 40 * time.Second
	m := startManagers(t, "-heartbeat-timeout", timeout.String(), "-disconnect-grace", grace.String())
	ctx := context.Background()
	boot := m.newClient(t, m.urls(), "", nil)
	login, err := boot.Login(ctx, admin, password)
	if err != nil {
		t.Fatal(err)
	}
	adm := m.newClient(t, m.urls(), login.Token, nil)
	if _, err := adm.CreateResourcePolicy(ctx, map[string]any{"name": "disc", "max_containers_per_session": 1,
		"total_resource_slots": map[string]any{"cpu": 16, "mem": 16 << 30}}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateUser(ctx, api.UserCreate{Email: "train@example.com", Username: "train", Password: "Passw0rd!",
		Role: api.RoleUser, ResourcePolicy: "disc"}); err != nil {
		t.Fatal(err)
	}
	ulogin, err := boot.Login(ctx, "train@example.com", "Passw0rd!")
	if err != nil {
		t.Fatal(err)
	}
	user := m.newClient(t, m.urls(), ulogin.Token, nil)

	socket := testenv.Containerd(t)
	agentBin := buildAgent(t)
	var agents []*chaosAgent
	for range 2 {
		agents = append(agents, m.startAgent(agentBin, socket))
	}
	byID := map[string]*chaosAgent{}
	waitFor(t, 90*time.Second, func() error {
		l, err := adm.ListAgents(ctx, nil)
		if err != nil {
			return err
		}
		if len(l.Items) != 2 {
			return fmt.Errorf("%d agents", len(l.Items))
		}
		for _, ag := range l.Items {
			if ag.Status != api.AgentAlive || ag.Capacity[slots.CPU] != 1000 || len(ag.Images) == 0 {
				return fmt.Errorf("agent %s: %s, %d millicores, %d images", ag.ID, ag.Status, ag.Capacity[slots.CPU], len(ag.Images))
			}
		}
		for _, a := range agents {
			id, err := a.id()
			if err != nil {
				return err
			}
			byID[id] = a
		}
		return nil
	})

	// Eight sessions of a quarter core fill both agents; two more wait.
	quarter := slots.Slots{slots.CPU: 250, slots.Mem: 64 << 20}
	var train []string
	for range 8 {
		s, err := user.CreateSession(ctx, api.SessionCreate{Image: testenv.BaseImageName, Type: api.SessionBatch,
			Command: []string{"sleep", "86400"}, Resources: quarter})
		if err != nil {
			t.Fatal(err)
		}
		train = append(train, s.ID)
	}
	started := map[string]api.Session{}
	waitFor(t, 120*time.Second, func() error {
		for _, id := range train {
			s, err := adm.GetSession(ctx, id)
			if err != nil {
				return err
			}
			if s.Status != api.SessionRunning {
				return fmt.Errorf("session %s is %s (%s)", id, s.Status, s.StatusInfo)
			}
			started[id] = *s
		}
		return nil
	})
	pids := map[string]uint32{}
	for id, s := range started {
		pids[id] = byID[s.Containers[0].Agent].pid(t, id)
	}
	var waiting []string
	for range 2 {
		s, err := user.CreateSession(ctx, api.SessionCreate{Image: testenv.BaseImageName, Type: api.SessionBatch,
			Command: []string{"sleep", "86400"}, Resources: quarter})
		if err != nil {
			t.Fatal(err)
		}
		waiting = append(waiting, s.ID)
	}

	// The watcher reads every session through any manager, all along.
	stop := make(chan struct{})
	var violations sync.Map
	var disconnections sync.Map
	watch := make(chan struct{})
	go func() {
		defer close(watch)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			l, err := adm.ListSessions(ctx, url.Values{"all": {"true"}, "limit": {"100"}})
			if err == nil {
				for _, s := range l.Items {
					switch {
					case slices.Contains(train, s.ID) && s.Status != api.SessionRunning:
						violations.Store(s.ID+" "+string(s.Status), s.StatusInfo)
					case slices.Contains(waiting, s.ID) && s.Status != api.SessionPending:
						violations.Store(s.ID+" "+string(s.Status), "a waiting session got slots the agents' sessions hold: "+s.StatusInfo)
					}
				}
			}
			if ags, err := adm.ListAgents(ctx, url.Values{"status": {api.AgentDisconnected}}); err == nil {
				for _, ag := range ags.Items {
					disconnections.Store(ag.ID, true)
				}
			}
		}
	}()

	faults := agentNemesis(t, m, adm, agents, duration(t), timeout)
	close(stop)
	<-watch
	m.heal()
	for _, a := range agents {
		a.signal(syscall.SIGCONT)
	}
	m.waitReady(90 * time.Second)

	seen := 0
	disconnections.Range(func(_, _ any) bool { seen++; return true })
	t.Logf("agent nemesis: %d faults; the watcher saw %d agent(s) DISCONNECTED", faults, seen)
	if seen == 0 {
		t.Error("no agent was ever seen DISCONNECTED: the nemesis proved nothing")
	}
	violations.Range(func(k, v any) bool {
		t.Errorf("%s: %s", k, v)
		return true
	})
	waitFor(t, 60*time.Second, func() error {
		l, err := adm.ListAgents(ctx, nil)
		if err != nil {
			return err
		}
		for _, ag := range l.Items {
			if ag.Status != api.AgentAlive {
				return fmt.Errorf("agent %s is %s", ag.ID, ag.Status)
			}
		}
		return nil
	})
	for _, id := range train {
		s, err := adm.GetSession(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		was := started[id]
		if s.Status != api.SessionRunning || !s.StartedAt.Equal(*was.StartedAt) {
			t.Errorf("session %s: %s (%s), started_at %v (was %v)", id, s.Status, s.StatusInfo, s.StartedAt, was.StartedAt)
		}
		if pid := byID[was.Containers[0].Agent].pid(t, id); pid != pids[id] {
			t.Errorf("session %s runs in process %d, was %d: its container was replaced", id, pid, pids[id])
		}
	}
	for _, id := range waiting {
		if s, err := adm.GetSession(ctx, id); err != nil || s.Status != api.SessionPending {
			t.Errorf("waiting session %s: %v %v", id, s, err)
		}
	}
	rec, err := adm.RecalculateUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rec.Drift {
		t.Errorf("usage drifted under agent faults: %+v", d)
	}
}

// agentNemesis stops one agent at a time for longer than the heartbeat
// timeout and well within the grace; every other time it also kills the
// leader meanwhile and restarts it, so a new leader judges the
// disconnection. It waits for the agent to be ALIVE again between faults.
func agentNemesis(t *testing.T, m *managers, adm *client.Client, agents []*chaosAgent, d, timeout time.Duration) int {
	end := time.Now().Add(d)
	faults := 0
	for i := 0; time.Now().Before(end); i++ {
		a := agents[rand.IntN(len(agents))]
		a.signal(syscall.SIGSTOP)
		pause := timeout + time.Second + rand.N(3*time.Second)
		if i%2 == 1 {
			leader := -1
			if rc, err := adm.RaftConfiguration(context.Background()); err == nil {
				for j := range 3 {
					if rc.Leader == fmt.Sprintf("m%d", j+1) {
						leader = j
					}
				}
			}
			if leader >= 0 {
				m.kill(leader)
				wait(2 * time.Second)
				m.start(leader)
			}
		}
		wait(pause)
		a.signal(syscall.SIGCONT)
		faults++
		waitFor(t, 60*time.Second, func() error {
			l, err := adm.ListAgents(context.Background(), nil)
			if err != nil {
				return err
			}
			for _, ag := range l.Items {
				if ag.Status != api.AgentAlive {
					return fmt.Errorf("agent %s is %s", ag.ID, ag.Status)
				}
			}
			return nil
		})
	}
	return faults
}

// waitFor polls f (a process outside the test: nothing to wait on) until
// it holds or within has passed.
func waitFor(t *testing.T, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// buildAgent builds berth-agent once for the test.
func buildAgent(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "berth-agent")
	cmd := exec.Command("go", "build", "-tags", "no_dynamic_plugins", "-o", out, "github.com/berth-cluster/berth/agent/cmd/berth-agent")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build berth-agent: %v: %s", err, b)
	}
	return out
}

// chaosAgent is a berth-agent process of one core on its own containerd
// namespace, speaking HTTPS to the three managers.
type chaosAgent struct {
	t     *testing.T
	cmd   *exec.Cmd
	state string
	rt    *containerd.Runtime
}

func (m *managers) startAgent(bin, socket string) *chaosAgent {
	t := m.t
	t.Helper()
	ns := testenv.Namespace(t)
	testenv.ImportBaseImage(t, socket, ns)
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(agentTok), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	a := &chaosAgent{t: t, state: filepath.Join(dir, "state")}
	a.cmd = exec.Command(bin, "-manager", strings.Join(m.urls(), ","), "-tls-ca", filepath.Join(m.tls, "ca.pem"),
		"-token-file", token, "-state-dir", a.state, "-containerd", socket, "-containerd-namespace", ns,
		"-http-addr", "127.0.0.1:0", "-reserved-cpu", strconv.Itoa(goruntime.NumCPU()-1), "-reserved-mem", "256MiB",
		"-heartbeat", "300ms", "-stop-grace", "1s", "-cni-bin-dir", "", "-log-level", "warn")
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(syscall.SIGCONT)
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = a.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = a.cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("agent log tail:\n%s", tail(b, 3000))
		}
	})
	if a.rt, err = containerd.New(context.Background(), containerd.Config{Socket: socket, Namespace: ns, LogDir: t.TempDir(), HomeDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.rt.Close() })
	return a
}

// id is the agent's id from its identity file (agent.json), once it has
// one.
func (a *chaosAgent) id() (string, error) {
	b, err := os.ReadFile(filepath.Join(a.state, "agent.json"))
	if err != nil {
		return "", fmt.Errorf("agent in %s has no identity yet: %w", a.state, err)
	}
	var ident struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &ident); err != nil || ident.ID == "" {
		return "", fmt.Errorf("agent identity %s: %v", b, err)
	}
	return ident.ID, nil
}

func (a *chaosAgent) signal(sig syscall.Signal) { _ = a.cmd.Process.Signal(sig) }

// pid is the process of the session's container as containerd runs it.
func (a *chaosAgent) pid(t *testing.T, session string) uint32 {
	t.Helper()
	cs, err := a.rt.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == session+"-0" && c.State == runtime.Running {
			return c.Pid
		}
	}
	return 0
}
