package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/agent/runtime/containerd"
	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

func realRuntime(t *testing.T, socket, ns, logDir string) *containerd.Runtime {
	t.Helper()
	rt, err := containerd.New(context.Background(), containerd.Config{Socket: socket, Namespace: ns, LogDir: logDir, HomeDir: filepath.Join(filepath.Dir(logDir), "homes")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func runAgent(t *testing.T, dir string, rt runtime.Runtime, mgr *fakeManager) (stop func()) {
	t.Helper()
	a, err := New(Config{StateDir: dir, HTTPAddr: "127.0.0.1:0", HeartbeatEvery: 100 * time.Millisecond,
		DesiredWait: 300 * time.Millisecond, Runtime: rt, Host: fakeHost{}, Manager: mgr,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func reported(mgr *fakeManager, id string) (api.ContainerReport, int) {
	hb, _ := mgr.lastHeartbeat()
	n := 0
	var out api.ContainerReport
	for _, c := range hb.Containers {
		if c.ID == id {
			out = c
			n++
		}
	}
	return out, n
}

// An agent restarted while its container runs re-attaches to it: the same
// task keeps running and is reported once; a container removed behind the
// agent's back is then reported gone.
func TestRestartedAgentReattachesAndReportsVanishedContainers(t *testing.T) {
	t.Parallel()
	socket := testenv.Containerd(t)
	ns := testenv.Namespace(t)
	testenv.ImportBaseImage(t, socket, ns)
	dir, logDir := t.TempDir(), t.TempDir()
	mgr := newFakeManager()
	mgr.setDesired(api.DesiredContainer{ID: "sess1-0", SessionID: "sess1", Image: testenv.BaseImageName,
		Command: []string{"sleep", "3600"}, Slots: slots.Slots{slots.CPU: 500, slots.Mem: 64 << 20}})

	rt1 := realRuntime(t, socket, ns, logDir)
	stop := runAgent(t, dir, rt1, mgr)
	var pid uint32
	waitFor(t, func() error {
		cs, err := rt1.List(context.Background())
		if err != nil || len(cs) != 1 || cs[0].State != runtime.Running {
			return fmt.Errorf("containers %+v, %v", cs, err)
		}
		pid = cs[0].Pid
		if r, n := reported(mgr, "sess1-0"); n != 1 || r.Status != "running" {
			return fmt.Errorf("reported %d times as %+v", n, r)
		}
		return nil
	})
	stop()

	rt2 := realRuntime(t, socket, ns, logDir)
	runAgent(t, dir, rt2, mgr)
	_, before := mgr.lastHeartbeat()
	waitFor(t, func() error {
		if _, n := mgr.lastHeartbeat(); n < before+3 {
			return fmt.Errorf("waiting for heartbeats of the restarted agent")
		}
		r, n := reported(mgr, "sess1-0")
		if n != 1 || r.Status != "running" {
			return fmt.Errorf("reported %d times as %+v", n, r)
		}
		return nil
	})
	cs, err := rt2.List(context.Background())
	if err != nil || len(cs) != 1 || cs[0].Pid != pid || cs[0].State != runtime.Running {
		t.Fatalf("after the restart: %+v, %v; want the same task (pid %d) still running", cs, err, pid)
	}

	// Removed behind the agent's back (another client of containerd).
	other := realRuntime(t, socket, ns, t.TempDir())
	if err := other.Stop(context.Background(), "sess1-0", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := other.Remove(context.Background(), "sess1-0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() error {
		if r, _ := reported(mgr, "sess1-0"); r.Status != api.ContainerGone {
			return fmt.Errorf("reported as %+v, want gone", r)
		}
		return nil
	})
	if cs, _ := rt2.List(context.Background()); len(cs) != 0 {
		t.Fatalf("the agent started the removed container again: %+v", cs)
	}
}

func waitFor(t *testing.T, f func() error) {
	t.Helper()
	eventually(t, 30*time.Second, f)
}
