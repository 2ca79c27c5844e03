package agent_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/agent/runtime/containerd"
	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// agentProcess is a berth-agent process the test can stop (SIGSTOP) and
// resume, as a hung agent or a frozen VM would be.
type agentProcess struct {
	t   *testing.T
	cmd *exec.Cmd
	log string
}

// buildAgent builds berth-agent into a directory of the test.
func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "berth-agent")
	cmd := exec.Command("go", "build", "-tags", "no_dynamic_plugins", "-o", bin, "./cmd/berth-agent")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build berth-agent: %v\n%s", err, out)
	}
	return bin
}

// startAgentProcess runs berth-agent on the private containerd's namespace
// until the test ends, offering one core; prefix (ip netns exec NAME) runs
// it inside a network namespace.
func startAgentProcess(t *testing.T, bin, manager, socket, ns string, prefix ...string) *agentProcess {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("agent-token-for-disconnects"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &agentProcess{t: t, log: filepath.Join(dir, "agent.log")}
	logFile, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	reserved := strconv.Itoa(goruntime.NumCPU() - 1)
	args := append(slices.Clone(prefix), bin, "-manager", manager, "-token-file", tokenFile, "-state-dir", filepath.Join(dir, "state"),
		"-containerd", socket, "-containerd-namespace", ns, "-http-addr", "127.0.0.1:0", "-reserved-cpu", reserved,
		"-reserved-mem", "256MiB", "-heartbeat", "200ms", "-stop-grace", "1s", "-cni-bin-dir", "", "-log-level", "debug")
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			if b, err := os.ReadFile(p.log); err == nil {
				t.Logf("agent log (tail):\n%s", tail(string(b), 4000))
			}
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *agentProcess) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal the agent %v: %v", sig, err)
	}
}

// agentStatus waits until the only agent has the status and returns it.
func (sc *sessionCluster) agentStatus(status string) api.Agent {
	sc.t.Helper()
	var ag api.Agent
	testcluster.Eventually(sc.t, slowMachine, func() error {
		var l api.List[api.Agent]
		sc.do(sc.admin, http.MethodGet, "/v1/agents", nil).JSON(sc.t, &l)
		if len(l.Items) != 1 {
			return fmt.Errorf("%d agents", len(l.Items))
		}
		if ag = l.Items[0]; ag.Status != status {
			return fmt.Errorf("agent %s is %s, want %s", ag.ID, ag.Status, status)
		}
		return nil
	})
	return ag
}

// container is the session's first container as containerd has it.
func (sc *sessionCluster) container(id string) (runtime.Container, bool) {
	sc.t.Helper()
	cs, err := sc.rt.List(context.Background())
	if err != nil {
		sc.t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == id+"-0" {
			return c, true
		}
	}
	return runtime.Container{}, false
}

// A real berth-agent process stopped with SIGSTOP (a hung agent: its
// containers run on) is DISCONNECTED after the heartbeat timeout and
// keeps its sessions through the grace: resumed, the running session is
// RUNNING on the same container with the same started_at, a session that
// needs its slots waited meanwhile, and a container that exited while the
// agent was stopped ends its session with its real exit code. Stopped past
// the grace, the agent is LOST, its session ERROR agent-lost with its slots
// freed, and the container is killed when the agent returns; the session
// that waited for the slots then runs.
func TestAStoppedAgentKeepsItsSessionsForTheGrace(t *testing.T) {
	t.Parallel()
	const timeout, grace = time.Second, 12 * time.Second
	sc, agentProc := startDisconnectCluster(t, timeout, grace, nil)
	// train runs on; exiter ends with 7 on SIGTERM; waiter needs more
	// than the agent has left while both hold their slots.
	train, exiter, stopped, waiter := startDisconnectSessions(sc)
	trainCt, ok := sc.container(train.ID)
	if !ok || trainCt.State != runtime.Running {
		t.Fatalf("the running session's container: %+v", trainCt)
	}

	// Stopped for longer than the timeout, less than the grace.
	agentProc.signal(syscall.SIGSTOP)
	pausedAt := time.Now()
	sc.agentStatus(api.AgentDisconnected)
	if got := sc.get(train.ID); got.Status != api.SessionRunning || !strings.Contains(got.StatusInfo, "disconnected since") {
		t.Fatalf("the session on the stopped agent is %s (%q)", got.Status, got.StatusInfo)
	}
	if got := sc.get(waiter.ID); got.Status != api.SessionPending {
		t.Fatalf("the session needing the stopped agent's slots is %s: they were given twice", got.Status)
	}
	sc.endExiter(exiter)
	sc.terminate(stopped.ID) // the user ends a session while its agent is away
	if got := sc.get(stopped.ID); got.Status != api.SessionTerminating {
		t.Fatalf("a session terminated while its agent is away is %s, want TERMINATING until the agent stops it", got.Status)
	}
	resumed := time.Now()
	agentProc.signal(syscall.SIGCONT)
	t.Logf("agent stopped for %s (timeout %s, grace %s)", time.Since(pausedAt).Round(time.Millisecond), timeout, grace)
	if time.Since(pausedAt) >= grace {
		t.Fatalf("the first pause took %s, past the %s grace: the machine is too slow for this test's timing", time.Since(pausedAt), grace)
	}
	sc.agentStatus(api.AgentAlive)
	sc.checkReconciled(train, trainCt, exiter, stopped, waiter, resumed)

	// Stopped past the grace: LOST.
	agentProc.signal(syscall.SIGSTOP)
	sc.agentStatus(api.AgentLost)
	lost := sc.wait(train.ID, api.SessionError)
	if !strings.HasPrefix(lost.StatusInfo, "agent-lost: last heartbeat ") || lost.Occupied[slots.CPU] != 0 {
		t.Fatalf("the session of the lost agent: %q, holding %v", lost.StatusInfo, lost.Occupied)
	}
	if _, ok := sc.container(train.ID); !ok {
		t.Fatal("the container died with its stopped agent; it must run on until the agent returns")
	}
	agentProc.signal(syscall.SIGCONT)
	sc.agentStatus(api.AgentAlive)
	testcluster.Eventually(t, slowMachine, func() error {
		if ct, ok := sc.container(train.ID); ok {
			return fmt.Errorf("the lost session's container is still there (%s)", ct.State)
		}
		return nil
	})
	sc.wait(waiter.ID, api.SessionRunning)
	sc.terminate(waiter.ID)
	sc.wait(waiter.ID, api.SessionTerminated)
}

// startDisconnectCluster starts a private containerd, a dev manager with
// the timeout and grace, and a berth-agent process of one core (inside the
// network namespace when there is one), and makes a user; the agent is
// ALIVE when it returns.
func startDisconnectCluster(t *testing.T, timeout, grace time.Duration, netns *testenv.Netns) (*sessionCluster, *agentProcess) {
	t.Helper()
	socket := testenv.Containerd(t)
	ns := testenv.Namespace(t)
	testenv.ImportBaseImage(t, socket, ns)
	bin := buildAgent(t)
	c := testcluster.StartDev(t, func(cfg *server.Config) {
		cfg.AgentToken = "agent-token-for-disconnects"
		cfg.HeartbeatTimeout, cfg.DisconnectGrace = timeout, grace
		if netns != nil {
			// The agent reaches the manager only through the namespace's link.
			cfg.HTTPAddr = netns.HostAddr.String() + ":0"
		}
	})
	sc := &sessionCluster{t: t, s: c.Servers[0], socket: socket}
	rt, err := containerd.New(context.Background(), containerd.Config{Socket: socket, Namespace: ns, LogDir: t.TempDir(), HomeDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	sc.rt = rt
	var prefix []string
	if netns != nil {
		prefix = netns.Exec()
	}
	agentProc := startAgentProcess(t, bin, testcluster.URL(sc.s), socket, ns, prefix...)
	sc.admin = testcluster.Login(t, sc.s, testcluster.AdminEmail, testcluster.AdminPassword)
	sc.want(sc.do(sc.admin, http.MethodPatch, "/v1/resource-policies/default", map[string]any{
		"total_resource_slots": map[string]any{"cpu": 4, "mem": 4 << 30}}), http.StatusOK)
	sc.want(sc.do(sc.admin, http.MethodPost, "/v1/users", map[string]any{
		"email": "dev@example.com", "username": "dev", "password": "Passw0rd!", "role": api.RoleUser}), http.StatusCreated)
	sc.user = testcluster.Login(t, sc.s, "dev@example.com", "Passw0rd!")
	if ag := sc.agentStatus(api.AgentAlive); ag.Capacity[slots.CPU] != 1000 {
		t.Fatalf("the agent offers %d millicores, want one core", ag.Capacity[slots.CPU])
	}
	return sc, agentProc
}

// startDisconnectSessions starts train (runs on, half a core), exiter
// (ends with 7 on SIGTERM, a quarter), stopped (a quarter, which the user
// terminates while the agent is away) and waiter (three quarters: more
// than the agent has left while the others hold their slots, and still
// after exiter and stopped ended).
func startDisconnectSessions(sc *sessionCluster) (train, exiter, stopped, waiter api.Session) {
	sc.t.Helper()
	start := func(cpu float64, command ...string) api.Session {
		r := sc.do(sc.user, http.MethodPost, "/v1/sessions", map[string]any{"image": testenv.BaseImageName, "type": api.SessionBatch,
			"command": command, "resources": map[string]any{"cpu": cpu, "mem": 64 << 20}})
		sc.want(r, http.StatusCreated)
		var s api.Session
		r.JSON(sc.t, &s)
		return s
	}
	train = sc.wait(start(0.5, "sleep", "3600").ID, api.SessionRunning)
	exiter = sc.wait(start(0.25, "sh", "-c", `trap "exit 7" TERM; while :; do sleep 0.1; done`).ID, api.SessionRunning)
	stopped = sc.wait(start(0.25, "sleep", "3600").ID, api.SessionRunning)
	waiter = start(0.75, "sleep", "3600")
	return train, exiter, stopped, waiter
}

// endExiter makes exiter's container exit with 7 while its agent cannot
// tell the managers: the session stays RUNNING until it can.
func (sc *sessionCluster) endExiter(exiter api.Session) {
	sc.t.Helper()
	ct, _ := sc.container(exiter.ID)
	if err := syscall.Kill(int(ct.Pid), syscall.SIGTERM); err != nil {
		sc.t.Fatalf("signal the exiting container's process %d: %v", ct.Pid, err)
	}
	testcluster.Eventually(sc.t, slowMachine, func() error {
		if ct, _ := sc.container(exiter.ID); ct.State != runtime.Exited {
			return fmt.Errorf("the exiting container is %s", ct.State)
		}
		return nil
	})
	if got := sc.get(exiter.ID); got.Status != api.SessionRunning {
		sc.t.Fatalf("with its agent away, the session whose container exited is already %s", got.Status)
	}
}

// checkReconciled checks the sessions after the agent's return (at
// resumed) within the grace: train runs on in the same container, exiter
// ended with its exit code at its real time (before the managers could
// hear of it), stopped (terminated while the agent was away) was stopped
// then, waiter still waits for train's slots.
func (sc *sessionCluster) checkReconciled(train api.Session, trainCt runtime.Container, exiter, stopped, waiter api.Session, resumed time.Time) {
	sc.t.Helper()
	sc.wait(stopped.ID, api.SessionTerminated)
	testcluster.Eventually(sc.t, slowMachine, func() error {
		if ct, ok := sc.container(stopped.ID); ok {
			return fmt.Errorf("the terminated session's container is still there (%s)", ct.State)
		}
		return nil
	})
	ended := sc.wait(exiter.ID, api.SessionTerminated)
	if ended.ExitCode == nil || *ended.ExitCode != 7 {
		sc.t.Errorf("the session whose container exited during the disconnection ended with exit code %v, want 7", ended.ExitCode)
	}
	if ended.TerminatedAt == nil || !ended.TerminatedAt.Before(resumed) || ended.TerminatedAt.Before(*exiter.StartedAt) {
		sc.t.Errorf("the session whose container exited during the disconnection ended at %v; want its real exit time, between its start %v and the agent's return %v",
			ended.TerminatedAt, exiter.StartedAt, resumed)
	}
	got := sc.get(train.ID)
	ct, _ := sc.container(train.ID)
	if got.Status != api.SessionRunning || !got.StartedAt.Equal(*train.StartedAt) || ct.Pid != trainCt.Pid || !ct.StartedAt.Equal(trainCt.StartedAt) {
		sc.t.Fatalf("after the return: %s, started_at %v (was %v), pid %d (was %d): want the same container running on",
			got.Status, got.StartedAt, train.StartedAt, ct.Pid, trainCt.Pid)
	}
	if strings.Contains(got.StatusInfo, "disconnected") {
		sc.t.Errorf("after the return the session still says %q", got.StatusInfo)
	}
	if got := sc.get(waiter.ID); got.Status != api.SessionPending {
		sc.t.Fatalf("the waiting session is %s while the running one still holds its slots", got.Status)
	}
}

// The same with the agent's network cut instead (the agent in its own
// network namespace, its link down): the agent runs on without a manager,
// its container's process too, it keeps the exit of the container that
// ended meanwhile, and when the link is back it reports everything and the
// managers reconcile as above.
func TestANetworkCutKeepsTheSessionsForTheGrace(t *testing.T) {
	t.Parallel()
	const timeout, grace = time.Second, 12 * time.Second
	netns := testenv.NewNetns(t)
	sc, agentProc := startDisconnectCluster(t, timeout, grace, netns)
	train, exiter, stopped, waiter := startDisconnectSessions(sc)
	trainCt, ok := sc.container(train.ID)
	if !ok || trainCt.State != runtime.Running {
		t.Fatalf("the running session's container: %+v", trainCt)
	}

	netns.Cut()
	cut := time.Now()
	sc.agentStatus(api.AgentDisconnected)
	if got := sc.get(waiter.ID); got.Status != api.SessionPending {
		t.Fatalf("the session needing the cut agent's slots is %s: they were given twice", got.Status)
	}
	sc.endExiter(exiter)
	sc.terminate(stopped.ID) // the user ends a session while its agent is away
	if got := sc.get(stopped.ID); got.Status != api.SessionTerminating {
		t.Fatalf("a session terminated while its agent is away is %s, want TERMINATING until the agent stops it", got.Status)
	}
	if err := agentProc.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the agent died when its network was cut: %v", err)
	}
	if ct, _ := sc.container(train.ID); ct.State != runtime.Running || ct.Pid != trainCt.Pid {
		t.Fatalf("the training container during the cut: %s pid %d (was %d)", ct.State, ct.Pid, trainCt.Pid)
	}
	resumed := time.Now()
	netns.Restore()
	t.Logf("network cut for %s (timeout %s, grace %s)", time.Since(cut).Round(time.Millisecond), timeout, grace)
	if time.Since(cut) >= grace {
		t.Fatalf("the cut took %s, past the %s grace: the machine is too slow for this test's timing", time.Since(cut), grace)
	}
	sc.agentStatus(api.AgentAlive)
	sc.checkReconciled(train, trainCt, exiter, stopped, waiter, resumed)
	sc.terminate(train.ID)
	sc.wait(train.ID, api.SessionTerminated)
	sc.wait(waiter.ID, api.SessionRunning)
}
