package simfleet_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/agent"
	"github.com/berth-cluster/berth/agent/simfleet"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

const token = "simulated-agents-join-here"

// syncBuffer is a log destination many agents write to at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func fleetConfig(t *testing.T, s *server.Server, count int, dir string, log io.Writer) simfleet.Config {
	return simfleet.Config{Count: count, StateDir: dir, HTTPAddr: "127.0.0.1:0", CPUs: 8, MemoryBytes: 16 << 30, FakeGPUs: 2,
		Registry: prometheus.NewRegistry(),
		Agent: agent.Config{Managers: []string{testcluster.URL(s)}, Token: token, ReservedMilliCPU: 1000, ReservedMemBytes: 1 << 30,
			HeartbeatEvery: 100 * time.Millisecond, Log: slog.New(slog.NewTextHandler(log, nil)), Version: "test"}}
}

// startFleet runs the fleet until the test ends (or stop is called).
func startFleet(t *testing.T, cfg simfleet.Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- simfleet.Run(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("fleet: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func agents(t *testing.T, s *server.Server, admin string) []api.Agent {
	t.Helper()
	r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/agents", admin, nil)
	var l api.List[api.Agent]
	r.JSON(t, &l)
	return l.Items
}

func session(t *testing.T, s *server.Server, admin, id string) api.Session {
	t.Helper()
	r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/sessions/"+id, admin, nil)
	var out api.Session
	r.JSON(t, &out)
	return out
}

func waitSession(t *testing.T, s *server.Server, admin, id string, ok func(api.Session) bool) api.Session {
	t.Helper()
	var got api.Session
	testcluster.Eventually(t, 20*time.Second, func() error {
		got = session(t, s, admin, id)
		if !ok(got) {
			return fmt.Errorf("session %s is %s (%s), exit code %v", id, got.Status, got.StatusInfo, got.ExitCode)
		}
		return nil
	})
	return got
}

// Three simulated agents in one process join a real manager through the
// agent's product paths, each with its own id, state, address and node,
// marked simulated; sessions placed on them run as their commands say,
// answer exec and logs through each agent's own API, and end; restarted,
// the agents keep their ids.
func TestAFleetOfSimulatedAgentsRunsSessionsThroughTheRealAgent(t *testing.T) {
	s := testcluster.StartDev(t, func(cfg *server.Config) { cfg.AgentToken, cfg.AllowSimulatedAgents = token, true }).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	dir := t.TempDir()
	cfg := fleetConfig(t, s, 3, dir, io.Discard)
	stop := startFleet(t, cfg)

	var got []api.Agent
	testcluster.Eventually(t, 20*time.Second, func() error {
		got = agents(t, s, admin)
		alive := 0
		for _, a := range got {
			if a.Status == api.AgentAlive {
				alive++
			}
		}
		if alive != 3 {
			return fmt.Errorf("%d of %d agents alive", alive, len(got))
		}
		return nil
	})
	var ids, hosts, addrs []string
	for _, a := range got {
		ids, hosts, addrs = append(ids, a.ID), append(hosts, a.Node.Hostname), append(addrs, a.Address)
		if !a.Simulated || a.Capacity[slots.CPU] != 7000 || a.Capacity[slots.Mem] != 15<<30 || a.Capacity[slots.CUDADevice] != 2 ||
			len(a.GPUs) != 2 || !a.GPUs[0].Fake || a.Node.ContainerdVersion != "berth-sim/1" || a.Node.Kernel != "simulated" ||
			len(a.Images) != 1 || a.Images[0].Name != "berth/base:latest" {
			t.Errorf("agent %+v: want a simulated node of 7 cores, 15 GiB and 2 fake GPUs with the base image", a)
		}
	}
	slices.Sort(hosts)
	if len(slices.Compact(slices.Clone(hosts))) != 3 || !strings.HasSuffix(hosts[0], "-sim-0000") || !strings.HasSuffix(hosts[2], "-sim-0002") {
		t.Errorf("host names %v", hosts)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(addrs)))) != 3 {
		t.Errorf("addresses %v: each agent has its own listener", addrs)
	}
	// An agent writes its identity after the manager recorded it, and
	// counts a heartbeat once one was answered: both may trail the list.
	testcluster.Eventually(t, 20*time.Second, func() error {
		for i := range 3 {
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("sim-%04d", i), "agent.json")); err != nil {
				return fmt.Errorf("state of agent %d: %v", i, err)
			}
		}
		return nil
	})
	testcluster.Eventually(t, 20*time.Second, func() error {
		mfs, err := cfg.Registry.Gather()
		if err != nil {
			return err
		}
		beats := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "berth_agent_heartbeats_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["simulated"] == "true" {
					beats[labels["sim_agent"]] = m.GetCounter().GetValue()
				}
			}
		}
		for _, i := range []string{"0", "1", "2"} {
			if beats[i] < 1 {
				return fmt.Errorf("heartbeats by simulated agent: %v, want every one of 0, 1, 2 at least once", beats)
			}
		}
		return nil
	})

	create := func(body map[string]any) api.Session {
		t.Helper()
		r := testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/sessions", admin, body)
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		var out api.Session
		r.JSON(t, &out)
		return out
	}
	resources := map[string]any{"cpu": 1, "mem": 1 << 30}
	interactive := create(map[string]any{"image": "berth/base:latest", "type": "interactive", "resources": resources, "command": []string{"sleep", "infinity"}})
	batch := create(map[string]any{"image": "berth/base:latest", "type": "batch", "resources": resources, "command": []string{"sh", "-c", "sleep 0.2; exit 3"}})

	running := waitSession(t, s, admin, interactive.ID, func(s api.Session) bool { return s.Status == api.SessionRunning })
	if !strings.Contains(running.StatusInfo, "placed on simulated agent "+running.Containers[0].Agent) {
		t.Errorf("status_info %q does not say the session is on a simulated agent", running.StatusInfo)
	}
	r := testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/sessions/"+interactive.ID+"/exec", admin, map[string]any{"command": []string{"echo", "hi"}})
	var res api.ExecResult
	r.JSON(t, &res)
	if r.Status != http.StatusOK || res.Stdout != "hi\n" || res.ExitCode != 0 {
		t.Errorf("exec echo hi: %d %+v", r.Status, res)
	}
	r = testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/sessions/"+interactive.ID+"/logs", admin, nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "[berth-sim]") || !strings.Contains(string(r.Body), "runs until stopped") {
		t.Errorf("logs: %d %s", r.Status, r.Body)
	}
	ended := waitSession(t, s, admin, batch.ID, func(s api.Session) bool { return s.ExitCode != nil })
	if *ended.ExitCode != 3 {
		t.Errorf("batch sh -c 'sleep 0.2; exit 3' ended %s with %d", ended.Status, *ended.ExitCode)
	}
	r = testcluster.Do(t, http.MethodDelete, testcluster.URL(s)+"/v1/sessions/"+interactive.ID, admin, nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("terminate: %d %s", r.Status, r.Body)
	}
	waitSession(t, s, admin, interactive.ID, func(s api.Session) bool { return s.Status == api.SessionTerminated })

	// Restarted, each agent registers again under its id.
	stop()
	cfg.Registry = prometheus.NewRegistry() // a new process's
	startFleet(t, cfg)
	testcluster.Eventually(t, 20*time.Second, func() error {
		again := agents(t, s, admin)
		var now []string
		for _, a := range again {
			now = append(now, a.ID)
		}
		if len(again) != 3 || !slices.Equal(slices.Sorted(slices.Values(now)), slices.Sorted(slices.Values(ids))) {
			return fmt.Errorf("agents after the restart %v, before %v", now, ids)
		}
		return nil
	})
}

// Managers that do not allow simulated agents refuse every agent of the
// fleet, with the reason in the agents' log, and record none.
func TestAFleetIsRefusedWhereSimulatedAgentsAreNotAllowed(t *testing.T) {
	s := testcluster.StartDev(t, func(cfg *server.Config) { cfg.AgentToken = token }).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	var log syncBuffer
	startFleet(t, fleetConfig(t, s, 2, t.TempDir(), &log))
	testcluster.Eventually(t, 20*time.Second, func() error {
		if n := strings.Count(log.String(), "this cluster does not accept simulated agents"); n < 2 {
			return fmt.Errorf("%d refusals in the log:\n%s", n, log.String())
		}
		return nil
	})
	if got := agents(t, s, admin); len(got) != 0 {
		t.Fatalf("agents recorded: %+v", got)
	}
}

func TestAFleetConfigurationIsCheckedAllAtOnce(t *testing.T) {
	cfg := simfleet.Config{Count: simfleet.MaxCount + 1, CPUs: -2, MemoryBytes: -1, FakeGPUs: -1, HTTPAddr: "nowhere"}
	err := simfleet.Run(context.Background(), cfg)
	for _, want := range []string{"-sim-count 10001: must be from 1 to 10000", "-sim-cpus -2", "-sim-memory -1", "-fake-gpus -1",
		"-state-dir is required", `-http-addr "nowhere" must be host:port`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
