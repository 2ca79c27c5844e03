package agent_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/agent"
	"github.com/berth-cluster/berth/agent/gpu"
	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// The manual's fGPU walkthrough end to end on an agent with two fake GPUs
// (-fake-gpus 2) and real containers: five sessions of half a GPU, four
// run (two per GPU) and the fifth waits saying why; each container's
// environment carries its slice; the indicator and the agents' view count
// the shares; a policy limit of 1 fGPU caps the slider.
func TestFakeGPUSessionsOnContainerd(t *testing.T) {
	t.Parallel()
	sc := startSessionClusterWith(t, 0, func(cfg *agent.Config) {
		m, err := gpu.FakeMachine(2)
		if err != nil {
			t.Fatal(err)
		}
		node, err := gpu.Open(gpu.Config{NVML: gpu.NewNVML(m), Fake: true, MPSDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		cfg.GPUs = node
	})
	half := func() api.Session {
		r := sc.do(sc.user, http.MethodPost, "/v1/sessions", map[string]any{"image": testenv.BaseImageName, "type": api.SessionInteractive,
			"resources": map[string]any{"cpu": 0.25, "mem": 256 << 20, "cuda.shares": 0.5}})
		sc.want(r, http.StatusCreated)
		var s api.Session
		r.JSON(t, &s)
		return s
	}
	var running []api.Session
	for range 4 {
		running = append(running, sc.wait(half().ID, api.SessionRunning))
	}
	waiting := half()
	// It stays PENDING, and once the scheduler has tried it says why.
	testcluster.Eventually(t, slowMachine, func() error {
		w := sc.get(waiting.ID)
		if w.Status != api.SessionPending || !strings.Contains(w.StatusInfo, "cuda.shares") {
			return fmt.Errorf("the fifth half is %s with %q, want PENDING with a reason naming cuda.shares", w.Status, w.StatusInfo)
		}
		return nil
	})

	perGPU := map[string]int{}
	for _, s := range running {
		if len(s.Containers) != 1 || len(s.Containers[0].GPUs) != 1 || s.Containers[0].GPUs[0].Share != 0.5 {
			t.Fatalf("session %s holds %+v, want one slice of 0.5", s.ID, s.Containers)
		}
		uuid := s.Containers[0].GPUs[0].UUID
		perGPU[uuid]++
		r := sc.do(sc.user, http.MethodPost, "/v1/sessions/"+s.ID+"/exec", map[string]any{"command": []string{"env"}})
		sc.want(r, http.StatusOK)
		var res api.ExecResult
		r.JSON(t, &res)
		for _, want := range []string{"CUDA_VISIBLE_DEVICES=" + uuid, "NVIDIA_VISIBLE_DEVICES=", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=50",
			"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=", "BERTH_FAKE_GPUS=true"} {
			if !strings.Contains(res.Stdout, want) {
				t.Errorf("session %s: env lacks %q:\n%s", s.ID, want, res.Stdout)
			}
		}
	}
	if len(perGPU) != 2 || perGPU["GPU-fa4e0000-0000-0000-0000-000000000000"] != 2 {
		t.Errorf("halves per GPU %v, want two on each", perGPU)
	}

	var ind api.ResourceIndicator
	sc.do(sc.user, http.MethodGet, "/v1/resources/me", nil).JSON(t, &ind)
	if got := ind.Occupied[slots.CUDAShares]; got != 200 {
		t.Errorf("the indicator shows cuda.shares %s occupied, want 2", slots.Format(slots.CUDAShares, got))
	}
	var agents api.List[api.Agent]
	sc.do(sc.admin, http.MethodGet, "/v1/agents", nil).JSON(t, &agents)
	if len(agents.Items) != 1 || len(agents.Items[0].GPUs) != 2 {
		t.Fatalf("agents %+v", agents.Items)
	}
	for _, g := range agents.Items[0].GPUs {
		if !g.Fake || g.SharesTotal != 1 || g.SharesAllocated != 1 {
			t.Errorf("GPU %+v, want fake, 1 of 1 allocated", g)
		}
	}

	// The manual: the admin limits fGPU to 1; once two halves end, the
	// slider stops at what the policy leaves.
	sc.want(sc.do(sc.admin, http.MethodPatch, "/v1/resource-policies/default",
		map[string]any{"total_resource_slots": map[string]any{"cuda.shares": 1}}), http.StatusOK)
	sc.terminate(waiting.ID)
	for _, s := range running[:3] {
		sc.terminate(s.ID)
		sc.wait(s.ID, api.SessionTerminated)
	}
	sc.do(sc.user, http.MethodGet, "/v1/resources/me", nil).JSON(t, &ind)
	if got := ind.Allocatable[slots.CUDAShares]; got != 50 {
		t.Errorf("fGPU slider maximum %s with 0.5 of 1 held, want 0.5 (%+v)", slots.Format(slots.CUDAShares, got), ind)
	}
}
