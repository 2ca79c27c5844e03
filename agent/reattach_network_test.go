package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/network"
	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// A restarted agent finds its sessions' networks on disk: a container
// that ran on keeps its address and its session's rules, one that ended
// while the agent was away is detached at start, and what an agent that
// died mid-way left (a pinned namespace, a bridge no session owns) is
// swept. Ending the session then removes its network whole.
func TestARestartedAgentReattachesAndSweepsNetworks(t *testing.T) {
	t.Parallel()
	names := testenv.Network(t)
	socket := testenv.Containerd(t)
	ns := testenv.Namespace(t)
	testenv.ImportBaseImage(t, socket, ns)
	dir := t.TempDir()
	rt := realRuntime(t, socket, ns, filepath.Join(dir, "logs"))
	netDir := filepath.Join(dir, "net")
	open := func() *network.Manager {
		m, err := network.New(context.Background(), network.Config{BinDir: testenv.CNIBinDir, StateDir: netDir, CIDR: names.CIDR,
			Egress: true, BridgePrefix: names.BridgePrefix, ChainPrefix: names.ChainPrefix}, network.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	start := func(m *network.Manager, mgr *fakeManager) func() {
		a, err := New(Config{StateDir: dir, HTTPAddr: "127.0.0.1:0", HeartbeatEvery: 100 * time.Millisecond,
			DesiredWait: 300 * time.Millisecond, Runtime: rt, Network: m, Host: fakeHost{}, Manager: mgr,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		var once sync.Once
		stop := func() { once.Do(func() { cancel(); <-done }) }
		t.Cleanup(stop)
		return stop
	}
	m1 := open()
	t.Cleanup(func() {
		if err := open().Sweep(context.Background(), nil); err != nil {
			t.Errorf("final sweep: %v", err)
		}
	})
	mgr := newFakeManager()
	want := func(i int) api.DesiredContainer {
		return api.DesiredContainer{ID: fmt.Sprintf("s-net-%d", i), SessionID: "s-net", Index: i, ClusterSize: 2, Image: testenv.BaseImageName,
			Command: []string{"sleep", "3600"}, Slots: slots.Slots{slots.CPU: 100, slots.Mem: 64 << 20}}
	}
	mgr.setDesired(want(0), want(1))
	stop := start(m1, mgr)
	addr := func(id string) string {
		if r, _ := reported(mgr, id); r.Status == "running" {
			return r.Address
		}
		return ""
	}
	waitFor(t, func() error {
		if addr("s-net-0") == "" || addr("s-net-1") == "" {
			return fmt.Errorf("addresses reported: %q, %q", addr("s-net-0"), addr("s-net-1"))
		}
		return nil
	})
	first := addr("s-net-0")
	stop()

	// While the agent is away: container 1 ends and is removed behind its
	// back, and an agent that died mid-way left a namespace file and a
	// bridge of its prefix.
	if err := rt.Remove(context.Background(), "s-net-1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(netDir, "ns", "s-gone-0"), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	stale := names.BridgePrefix + "9"
	if out, err := exec.Command("ip", "link", "add", stale, "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v\n%s", err, out)
	}

	mgr.setDesired(want(0)) // container 1 is gone: the managers were told
	m2 := open()
	_, beats := mgr.lastHeartbeat()
	start(m2, mgr)
	waitFor(t, func() error {
		if _, n := mgr.lastHeartbeat(); n < beats+2 {
			return fmt.Errorf("waiting for heartbeats of the restarted agent")
		}
		if got := addr("s-net-0"); got != first {
			return fmt.Errorf("container 0 is reported at %q, want %q as before the restart", got, first)
		}
		return nil
	})
	if _, ok := m2.Address("s-net-1"); ok {
		t.Errorf("the removed container is still attached")
	}
	if _, err := os.Stat(filepath.Join(netDir, "ns", "s-gone-0")); !os.IsNotExist(err) {
		t.Errorf("the stale namespace file is still there: %v", err)
	}
	if out, _ := exec.Command("ip", "link", "show", stale).CombinedOutput(); !strings.Contains(string(out), "does not exist") {
		t.Errorf("the stale bridge is still there: %s", out)
	}
	// Container 0 still has its network: its namespace and the gateway.
	res, err := rt.Exec(context.Background(), "s-net-0", []string{"sh", "-c", "cat /etc/hosts; ping -c 1 -W 2 $(route -n | awk '$1 == \"0.0.0.0\" {print $2}') >/dev/null && echo gateway-ok"}, 20*time.Second)
	if err != nil || !strings.Contains(string(res.Stdout), first+"\tmain1") {
		t.Errorf("container 0 after the restart: %v, %q %q", err, res.Stdout, res.Stderr)
	}

	// The managers end the session: its network goes with it.
	mgr.mu.Lock()
	mgr.desired = api.DesiredState{Index: mgr.desired.Index + 1, Containers: []api.DesiredContainer{}, Stop: []string{"s-net-0"}}
	close(mgr.changed)
	mgr.changed = make(chan struct{})
	mgr.mu.Unlock()
	waitFor(t, func() error {
		for _, sub := range []string{"ns", "sessions"} {
			if entries, _ := os.ReadDir(filepath.Join(netDir, sub)); len(entries) != 0 {
				return fmt.Errorf("%s holds %d entries", sub, len(entries))
			}
		}
		out, _ := exec.Command("ip", "-o", "link", "show").Output()
		if strings.Contains(string(out), " "+names.BridgePrefix) {
			return fmt.Errorf("a bridge of the test is left:\n%s", out)
		}
		return nil
	})
}
