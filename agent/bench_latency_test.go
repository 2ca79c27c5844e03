package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gocni "github.com/containerd/go-cni"

	"github.com/berth-cluster/berth/agent"
	"github.com/berth-cluster/berth/agent/network"
	"github.com/berth-cluster/berth/agent/runtime/containerd"
	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
	"github.com/berth-cluster/berth/shared/slots"
)

// latencySamples is how many starts and stops each side gets at least.
const latencySamples = 20

// keepAliveScript is what an interactive session without a command runs
// (the managers' keepAlive): ctr runs the same, so both end the same way on
// SIGTERM.
const keepAliveScript = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"

// BenchmarkSessionStartStopVsCtr measures what a user sees: POST
// /v1/sessions → RUNNING and DELETE → TERMINATED through the HTTP API of a
// dev manager (in process, Raft in memory) with a real agent on a private
// containerd, its heartbeat at the default 3 s, the caller following the
// session with blocking reads (as `berth session start --wait` does).
// Against it, on the same containerd and image, in a namespace of its own:
// `ctr run -d` of the same command, and `ctr task kill` followed by `ctr
// task rm` (repeated until the task has exited and it succeeds). The two
// alternate, sample by sample; medians of at least latencySamples each.
// "loopback" is without session networks; "network" gives each session
// its network (a bridge, addresses, rules) against `ctr run -d --cni` with
// the same plugins. Between a start and its stop both sides wait, untimed,
// until the container's shell catches SIGTERM (waitTrapped). The untimed
// clean-up between samples waits until the
// agent has removed the container.
func BenchmarkSessionStartStopVsCtr(b *testing.B) {
	socket := testenv.Containerd(b)
	b.Run("loopback", func(b *testing.B) { benchStartStop(b, socket, false) })
	b.Run("network", func(b *testing.B) { benchStartStop(b, socket, true) })
}

func benchStartStop(b *testing.B, socket string, networked bool) {
	ctx := context.Background()
	dir := b.TempDir()
	ns, ctrNS := testenv.Namespace(b), testenv.Namespace(b)
	testenv.ImportBaseImage(b, socket, ns)
	testenv.ImportBaseImage(b, socket, ctrNS)

	var net agent.Network
	var ctrNet gocni.CNI
	ctrArgs := []string{"--address", socket, "--namespace", ctrNS}
	runArgs := []string{"run", "-d", "--runc-root", filepath.Join(filepath.Dir(socket), "runc")}
	if networked {
		names := testenv.Network(b)
		m, err := network.New(ctx, network.Config{BinDir: testenv.CNIBinDir, StateDir: filepath.Join(dir, "net"), CIDR: names.CIDR, Egress: true,
			BridgePrefix: names.BridgePrefix, ChainPrefix: names.ChainPrefix}, network.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Sweep(context.Background(), nil) })
		net = m
		// ctr's network on names of its own: it stays up between samples.
		conf := testenv.CtrCNI(b, testenv.Network(b))
		if ctrNet, err = gocni.New(gocni.WithPluginDir([]string{testenv.CNIBinDir}), gocni.WithConfListBytes(conf)); err != nil {
			b.Fatal(err)
		}
		runArgs = append(runArgs, "--cni")
	}

	c := testcluster.StartDev(b, func(cfg *server.Config) { cfg.AgentToken = "agent-token" })
	s := c.Servers[0]
	rt, err := containerd.New(ctx, containerd.Config{Socket: socket, Namespace: ns, LogDir: filepath.Join(dir, "logs"), HomeDir: filepath.Join(dir, "homes")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close() })
	a, err := agent.New(agent.Config{Managers: []string{testcluster.URL(s)}, Token: "agent-token", StateDir: filepath.Join(dir, "agent"),
		HTTPAddr: "127.0.0.1:0", StopGrace: 10 * time.Second, Host: fourCores{}, Runtime: rt, Network: net,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	b.Cleanup(func() { cancel(); <-done })

	admin := testcluster.Login(b, s, testcluster.AdminEmail, testcluster.AdminPassword)
	testcluster.Do(b, http.MethodPatch, testcluster.URL(s)+"/v1/resource-policies/default", admin, map[string]any{
		"total_resource_slots": map[string]any{"cpu": 2, "mem": 4 << 30}})
	testcluster.Do(b, http.MethodPost, testcluster.URL(s)+"/v1/users", admin, map[string]any{
		"email": "dev@example.com", "username": "dev", "password": "Passw0rd!", "role": api.RoleUser})
	user := testcluster.Login(b, s, "dev@example.com", "Passw0rd!")
	cl, err := client.New(client.Config{Addrs: []string{testcluster.URL(s)}, Token: user})
	if err != nil {
		b.Fatal(err)
	}
	testcluster.Eventually(b, slowMachine, func() error {
		var l api.List[api.Agent]
		testcluster.Do(b, http.MethodGet, testcluster.URL(s)+"/v1/agents", admin, nil).JSON(b, &l)
		if len(l.Items) != 1 || l.Items[0].Status != api.AgentAlive || len(l.Items[0].Images) == 0 {
			return fmt.Errorf("agents %+v", l.Items)
		}
		return nil
	})

	ctr := func(args ...string) error {
		out, err := exec.Command("ctr", append(append([]string{}, ctrArgs...), args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	var sessStart, sessStop, ctrStart, ctrStop []float64
	n := max(b.N, latencySamples)
	b.ResetTimer()
	for i := range n {
		t0 := time.Now()
		created, err := cl.CreateSession(ctx, api.SessionCreate{Image: testenv.BaseImageName, Type: api.SessionInteractive,
			Resources: slots.Slots{slots.CPU: 500, slots.Mem: 256 << 20}})
		if err != nil {
			b.Fatal(err)
		}
		waitSession(b, cl, created.ID, api.SessionRunning)
		sessStart = append(sessStart, ms(time.Since(t0)))
		b.StopTimer()
		waitTrapped(b, func() ([]uint32, error) {
			cs, err := rt.List(ctx)
			if err != nil || len(cs) != 1 {
				return nil, fmt.Errorf("containers %+v, %v", cs, err)
			}
			return rt.Pids(ctx, cs[0].ID)
		})
		b.StartTimer()
		t0 = time.Now()
		if _, err := cl.TerminateSession(ctx, created.ID); err != nil {
			b.Fatal(err)
		}
		waitSession(b, cl, created.ID, api.SessionTerminated)
		sessStop = append(sessStop, ms(time.Since(t0)))
		b.StopTimer()
		testcluster.Eventually(b, slowMachine, func() error { // the agent removed it
			cs, err := rt.List(ctx)
			if err != nil || len(cs) > 0 {
				return fmt.Errorf("containers %+v, %v", cs, err)
			}
			return nil
		})
		b.StartTimer()

		id := fmt.Sprintf("ctr-%d", i)
		t0 = time.Now()
		if err := ctr(append(append([]string{}, runArgs...), testenv.BaseImageName, id, "/bin/sh", "-c", keepAliveScript)...); err != nil {
			b.Fatal(err)
		}
		ctrStart = append(ctrStart, ms(time.Since(t0)))
		b.StopTimer()
		waitTrapped(b, func() ([]uint32, error) { return ctrPids(ctrArgs, id) })
		b.StartTimer()
		t0 = time.Now()
		if err := ctr("task", "kill", id); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(slowMachine)
		for { // rm refuses a task that has not exited yet
			err := ctr("task", "rm", id)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal(err)
			}
		}
		ctrStop = append(ctrStop, ms(time.Since(t0)))
		b.StopTimer()
		if ctrNet != nil {
			if err := ctrNet.Remove(ctx, ctrNS+"-"+id, ""); err != nil {
				b.Fatal(err)
			}
		}
		if err := ctr("containers", "rm", id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	ss, cs, sp, cp := median(sessStart), median(ctrStart), median(sessStop), median(ctrStop)
	b.ReportMetric(ss, "start-session-ms")
	b.ReportMetric(cs, "start-ctr-ms")
	b.ReportMetric(ss/cs, "start-session/ctr")
	b.ReportMetric(sp, "stop-session-ms")
	b.ReportMetric(cp, "stop-ctr-ms")
	b.ReportMetric(sp/cp, "stop-session/ctr")
	b.Logf("medians of %d: create → RUNNING %.1f ms vs ctr run -d %.1f ms (%.2f×); DELETE → TERMINATED %.1f ms vs ctr task kill + rm %.1f ms (%.2f×)",
		n, ss, cs, ss/cs, sp, cp, sp/cp)
	b.Logf("start samples: session %v, ctr %v", round1(sessStart), round1(ctrStart))
	b.Logf("stop samples: session %v, ctr %v", round1(sessStop), round1(ctrStop))
}

// waitTrapped waits (untimed) until a process of the container catches
// SIGTERM. Both sides report a start once the task is running, which can be
// before its shell has run `trap`; a SIGTERM before then reaches a PID 1
// without a handler, which the kernel ignores: ctr's task would never stop
// (and `ctr task rm` never succeed), the agent's only at its stop grace.
func waitTrapped(b *testing.B, pids func() ([]uint32, error)) {
	b.Helper()
	testcluster.Eventually(b, slowMachine, func() error {
		ps, err := pids()
		if err != nil {
			return err
		}
		for _, p := range ps {
			if catchesTERM(p) {
				return nil
			}
		}
		return fmt.Errorf("no process of %v catches SIGTERM yet", ps)
	})
}

// catchesTERM reads the process's caught signals (SigCgt, a hex mask with
// signal n at bit n-1).
func catchesTERM(pid uint32) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(status)) {
		if mask, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64)
			return err == nil && m&(1<<(int(syscall.SIGTERM)-1)) != 0
		}
	}
	return false
}

// ctrPids lists the host pids of a task ctr started (`ctr task ps`: a
// header, then PID and INFO columns).
func ctrPids(ctrArgs []string, id string) ([]uint32, error) {
	out, err := exec.Command("ctr", append(append([]string{}, ctrArgs...), "task", "ps", id)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ctr task ps %s: %v: %s", id, err, out)
	}
	var ps []uint32
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if p, err := strconv.ParseUint(f[0], 10, 32); err == nil {
			ps = append(ps, uint32(p))
		}
	}
	return ps, nil
}

// waitSession follows a session with blocking reads until it is in status.
func waitSession(b *testing.B, cl *client.Client, id string, status api.SessionStatus) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), slowMachine)
	defer cancel()
	var index uint64
	for {
		s, at, err := cl.WaitSession(ctx, id, index, 30*time.Second)
		if err != nil {
			b.Fatalf("session %s: %v", id, err)
		}
		if s.Status == status {
			return
		}
		if s.Status.Ended() {
			b.Fatalf("session %s ended %s (%s), want %s", id, s.Status, s.StatusInfo, status)
		}
		index = at
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func round1(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(int(x*10+0.5)) / 10
	}
	return out
}
