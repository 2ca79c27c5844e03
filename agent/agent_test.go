package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

type fakeHost struct{}

func (fakeHost) NumCPU() int { return 4 }
func (fakeHost) ReadFile(string) ([]byte, error) {
	return []byte("MemTotal: 8388608 kB\n"), nil
}
func (fakeHost) Exists(string) bool        { return false }
func (fakeHost) Kernel() (string, error)   { return "6.1", nil }
func (fakeHost) Hostname() (string, error) { return "n1", nil }

func eventually(t *testing.T, within time.Duration, f func() error) {
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
		time.Sleep(10 * time.Millisecond)
	}
}

func startAgent(t *testing.T, dir string, rt *fakeRuntime, mgr *fakeManager) (*Agent, func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	a, err := New(Config{StateDir: dir, HTTPAddr: "127.0.0.1:0", ReservedMilliCPU: 1000, ReservedMemBytes: 1 << 30,
		HeartbeatEvery: 20 * time.Millisecond, DesiredWait: 200 * time.Millisecond, Runtime: rt, Host: fakeHost{}, Manager: mgr,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: reg, Gatherer: reg, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && err != context.Canceled {
				t.Errorf("agent run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return a, stop
}

func TestAgentRegistersHeartbeatsAndRunsWhatTheManagersWant(t *testing.T) {
	dir := t.TempDir()
	rt := newFakeRuntime("berth/base:latest")
	mgr := newFakeManager()
	a, stop := startAgent(t, dir, rt, mgr)

	eventually(t, 5*time.Second, func() error {
		if a.ID() != "agent-test" {
			return fmt.Errorf("not registered")
		}
		return nil
	})
	regs, _ := mgr.registrations()
	reg := regs[0]
	wantCap := slots.Slots{slots.CPU: 3000, slots.Mem: 7 << 30}
	if reg.Capacity[slots.CPU] != wantCap[slots.CPU] || reg.Capacity[slots.Mem] != wantCap[slots.Mem] || reg.Node.ContainerdVersion != "fake-1.0" {
		t.Fatalf("registration %+v", reg)
	}
	st, err := os.Stat(filepath.Join(dir, identityFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("identity file %v, %v", st, err)
	}

	mgr.setDesired(desired("c1", "berth/base:latest"))
	eventually(t, 5*time.Second, func() error {
		hb, _ := mgr.lastHeartbeat()
		for _, c := range hb.Containers {
			if c.ID == "c1" && c.Status == "running" {
				return nil
			}
		}
		return fmt.Errorf("heartbeat does not report c1 running: %+v", hb.Containers)
	})

	// Exec through the agent's API needs the secret.
	url := "http://" + a.Addr() + "/v1/containers/c1/exec"
	body, _ := json.Marshal(api.ExecRequest{Command: []string{"echo", "hi"}})
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("exec without the secret: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var res api.ExecResult
	_ = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if resp.StatusCode != 200 || res.Stdout != "[echo hi]" {
		t.Fatalf("exec: %d %+v", resp.StatusCode, res)
	}

	// Restart: same identity, the running container is re-attached, not
	// started again.
	stop()
	a2, _ := startAgent(t, dir, rt, mgr)
	eventually(t, 5*time.Second, func() error {
		if regs, _ := mgr.registrations(); len(regs) < 2 {
			return fmt.Errorf("not re-registered")
		}
		return nil
	})
	regs, secrets := mgr.registrations()
	if regs[1].ID != "agent-test" || secrets[1] != "s3cret" || a2.ID() != "agent-test" {
		t.Fatalf("re-registration %+v with secret %q", regs[1], secrets[1])
	}
	_, n := mgr.lastHeartbeat()
	eventually(t, 5*time.Second, func() error {
		if _, m := mgr.lastHeartbeat(); m < n+3 {
			return fmt.Errorf("few heartbeats since restart")
		}
		return nil
	})
	if n := rt.runCount(); n != 1 {
		t.Fatalf("container started %d times across the restart", n)
	}
}

func TestAgentRegistersAgainWhenTheManagersForgetIt(t *testing.T) {
	rt := newFakeRuntime()
	mgr := newFakeManager()
	a, _ := startAgent(t, t.TempDir(), rt, mgr)
	eventually(t, 5*time.Second, func() error {
		if a.ID() == "" {
			return fmt.Errorf("not registered")
		}
		return nil
	})
	mgr.mu.Lock()
	mgr.rejectHB = true
	mgr.mu.Unlock()
	eventually(t, 5*time.Second, func() error {
		if regs, _ := mgr.registrations(); len(regs) < 2 {
			return fmt.Errorf("no re-registration after a 401 heartbeat")
		}
		return nil
	})
}

func TestAgentReportsRuntimeErrorsAndStaysUp(t *testing.T) {
	rt := newFakeRuntime()
	mgr := newFakeManager()
	startAgent(t, t.TempDir(), rt, mgr)
	eventually(t, 5*time.Second, func() error {
		if _, n := mgr.lastHeartbeat(); n == 0 {
			return fmt.Errorf("no heartbeat")
		}
		return nil
	})
	rt.mu.Lock()
	rt.listErr = fmt.Errorf("connection refused: containerd is down")
	rt.mu.Unlock()
	eventually(t, 5*time.Second, func() error {
		hb, _ := mgr.lastHeartbeat()
		for _, e := range hb.Errors {
			if bytes.Contains([]byte(e), []byte("containerd is down")) {
				return nil
			}
		}
		return fmt.Errorf("heartbeat errors %q", hb.Errors)
	})
}

// stopArmingManager arms arm once the agent's desired-state query has
// received a stop list: the converge that follows is the one under test.
type stopArmingManager struct {
	*fakeManager
	arm func()
}

func (m *stopArmingManager) Desired(ctx context.Context, id, secret string, index uint64, wait time.Duration) (api.DesiredState, error) {
	ds, err := m.fakeManager.Desired(ctx, id, secret, index, wait)
	if err == nil && len(ds.Stop) > 0 && m.arm != nil {
		m.arm()
		m.arm = nil
	}
	return ds, err
}

// An agent that is told to end while a converge is between reading the
// containers and stopping the ended ones must not return before that stop
// is done: its caller (a restart, a test) takes the runtime back, and a
// stop begun after the return would race the caller and the agent's own
// wait for stops (sync.WaitGroup forbids Add during Wait).
func TestRunReturnsOnlyAfterTheStopsOfItsLastConverge(t *testing.T) {
	rt := newFakeRuntime("berth/base:latest")
	rt.containers["c1"] = runtime.Container{ID: "c1", SessionID: "s-c1", Image: "berth/base:latest", State: runtime.Running}
	fm := newFakeManager()
	fm.desired = api.DesiredState{Index: 1, Containers: []api.DesiredContainer{desired("c1", "berth/base:latest")}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	returned := make(chan struct{})
	mgr := &stopArmingManager{fakeManager: fm}
	mgr.arm = func() {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		rt.afterList = func() {
			cancel()
			// Give a Run that does not wait for its loops the time to
			// return before this converge goes on to stop c1.
			select {
			case <-returned:
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	reg := prometheus.NewRegistry()
	a, err := New(Config{StateDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", ReservedMilliCPU: 1000, ReservedMemBytes: 1 << 30,
		HeartbeatEvery: time.Hour, ResyncEvery: time.Hour, DesiredWait: 200 * time.Millisecond, Runtime: rt, Host: fakeHost{}, Manager: mgr,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: reg, Gatherer: reg, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx); close(returned) }()
	eventually(t, 5*time.Second, func() error {
		if a.ID() == "" {
			return fmt.Errorf("not registered")
		}
		return nil
	})
	fm.mu.Lock()
	fm.desired = api.DesiredState{Index: fm.desired.Index + 1, Stop: []string{"c1"}}
	close(fm.changed)
	fm.changed = make(chan struct{})
	fm.mu.Unlock()

	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its context ending")
	}
	rt.mu.Lock()
	removed := slices.Clone(rt.removed)
	rt.mu.Unlock()
	if !slices.Contains(removed, "c1") {
		t.Fatalf("Run returned before the stop of c1 its last converge began was done (removed: %v)", removed)
	}
}
