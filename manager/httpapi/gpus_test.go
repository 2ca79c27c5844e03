package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

func cudaShares(s slots.Slots) string {
	return slots.Format(slots.CUDAShares, s[slots.CUDAShares]).String()
}

const gib = int64(1) << 30

// fakeGPUs is what an agent started with -fake-gpus n reports: n GPUs of
// 16 GiB offering 1.0 share each.
func fakeGPUs(n int) []api.GPUDevice {
	var out []api.GPUDevice
	for i := range n {
		out = append(out, api.GPUDevice{UUID: fmt.Sprintf("GPU-fake-%d", i), Index: i, Minor: i, Name: "Fake GPU",
			MemoryBytes: 16 * gib, Shares: 100, Fake: true})
	}
	return out
}

// newGPUEnv is newSessionEnv with an agent of 8 cores, 16 GiB and two fake
// GPUs at quantum 0.1, registered through the API, and the default policy
// at limits.
func newGPUEnv(t *testing.T, limits string) *sessionEnv {
	t.Helper()
	s := testcluster.StartFake(t, withAgentToken).Servers[0]
	e := &sessionEnv{t: t, s: s, admin: testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)}
	in := registration("10.0.0.7:6001", api.Image{Name: baseImage, Digest: "sha256:aa", Size: 1 << 20})
	in.Capacity = mustSlots(`{"cpu":8,"mem":17179869184,"cuda.device":2,"cuda.shares":2}`)
	// Given out of index order: the manager keeps them by index.
	in.GPUs = []api.GPUDevice{fakeGPUs(2)[1], fakeGPUs(2)[0]}
	in.GPUShareQuantum = 10
	e.agent = register(t, s, in)
	e.capacity = api.AgentHeartbeat{Address: in.Address, Capacity: in.Capacity}
	r := testcluster.Do(t, http.MethodPatch, e.url("/v1/resource-policies/default"), e.admin,
		fmt.Sprintf(`{"total_resource_slots":%s,"max_containers_per_session":2}`, limits))
	wantStatus(t, r, http.StatusOK)
	return e
}

func gpuBody(slot string, amount float64) map[string]any {
	return map[string]any{"image": baseImage, "type": "interactive",
		"resources": map[string]any{"cpu": 0.5, "mem": 1 << 30, slot: amount}}
}

// gpusOf renders a session's slices as "uuid=share" per container.
func gpusOf(s api.Session) string {
	var parts []string
	for _, c := range s.Containers {
		for _, g := range c.GPUs {
			parts = append(parts, fmt.Sprintf("%s=%v", g.UUID, g.Share))
		}
	}
	return strings.Join(parts, ",")
}

// agentGPUs renders GET /v1/agents/{id}'s GPUs as "uuid allocated/total".
func agentGPUs(t *testing.T, e *sessionEnv) string {
	t.Helper()
	var parts []string
	for _, g := range getAgent(t, e.s, e.admin, e.agent.ID).GPUs {
		parts = append(parts, fmt.Sprintf("%s %v/%v", g.UUID, g.SharesAllocated, g.SharesTotal))
	}
	return strings.Join(parts, ", ")
}

// The manual's fGPU walkthrough against an agent with two fake GPUs: the
// agent's GPUs are listed, halves share one GPU so a whole one still fits,
// the slices reach the session view and the agent, a request beyond what
// is free waits with the reason, and an ended session frees its slice.
func TestFractionalGPUsThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newGPUEnv(t, `{"cpu":null,"mem":null}`)

	t.Run("GET /v1/agents shows the GPUs with their shares", func(t *testing.T) {
		got := getAgent(t, e.s, e.admin, e.agent.ID)
		wantJSON(t, "gpus", got.GPUs, `[
			{"uuid":"GPU-fake-0","name":"Fake GPU","memory_bytes":17179869184,"shares_total":1,"shares_allocated":0,"fake":true},
			{"uuid":"GPU-fake-1","name":"Fake GPU","memory_bytes":17179869184,"shares_total":1,"shares_allocated":0,"fake":true}]`)
	})

	h1 := e.mustCreate(e.admin, gpuBody("cuda.shares", 0.5))
	h1 = e.waitStatus(h1.ID, api.SessionScheduled)
	h2 := e.mustCreate(e.admin, gpuBody("cuda.shares", 0.5))
	h2 = e.waitStatus(h2.ID, api.SessionScheduled)
	one := e.mustCreate(e.admin, gpuBody("cuda.shares", 1))
	one = e.waitStatus(one.ID, api.SessionScheduled)

	t.Run("two halves share one GPU and the whole share gets the other", func(t *testing.T) {
		for _, c := range []struct {
			s    api.Session
			want string
		}{{h1, "GPU-fake-0=0.5"}, {h2, "GPU-fake-0=0.5"}, {one, "GPU-fake-1=1"}} {
			if got := gpusOf(c.s); got != c.want {
				t.Errorf("session %s slices %q, want %q", c.s.ID, got, c.want)
			}
		}
		if got := agentGPUs(t, e); got != "GPU-fake-0 1/1, GPU-fake-1 1/1" {
			t.Errorf("agent GPUs %s", got)
		}
	})

	t.Run("the agent is sent each slice with its part of the GPU's memory", func(t *testing.T) {
		for _, d := range e.desired().Containers {
			want := []api.GPUSlice{{UUID: "GPU-fake-0", Index: 0, Minor: 0, Share: 50, MemoryBytes: 8 * gib, Fake: true}}
			if d.SessionID == one.ID {
				want = []api.GPUSlice{{UUID: "GPU-fake-1", Index: 1, Minor: 1, Share: 100, MemoryBytes: 16 * gib, Fake: true}}
			}
			if !slices.Equal(d.GPUs, want) {
				t.Errorf("desired %s GPUs %+v, want %+v", d.ID, d.GPUs, want)
			}
		}
	})

	t.Run("the manager's metrics show each GPU's allocated shares", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodGet, e.url("/metrics"), "", nil)
		wantStatus(t, r, http.StatusOK)
		for _, gpu := range []string{"GPU-fake-0", "GPU-fake-1"} {
			line := `berth_gpu_shares_allocated{agent="` + e.agent.ID + `",gpu="` + gpu + `",simulated="false"} 1` + "\n"
			if !strings.Contains(string(r.Body), line) {
				t.Errorf("/metrics lacks %q", line)
			}
		}
	})

	late := e.mustCreate(e.admin, gpuBody("cuda.shares", 0.3))
	t.Run("a slice beyond what is free waits and says why", func(t *testing.T) {
		testcluster.Eventually(t, 10*time.Second, func() error {
			got := e.get(e.admin, late.ID)
			if got.Status != api.SessionPending || got.StatusInfo != "no agent has cuda.shares 0.3 free (largest 0)" {
				return fmt.Errorf("late session %s %q", got.Status, got.StatusInfo)
			}
			return nil
		})
	})

	t.Run("a session that ends frees its slice for the one that waits", func(t *testing.T) {
		e.terminate(t, e.admin, one.ID)
		e.beat(running(h1.ID, 0, 0), running(h2.ID, 0, 0)) // one's container is gone
		e.waitStatus(one.ID, api.SessionTerminated)
		got := e.waitStatus(late.ID, api.SessionScheduled)
		if s := gpusOf(got); s != "GPU-fake-1=0.3" {
			t.Errorf("late slices %q", s)
		}
		if got := agentGPUs(t, e); got != "GPU-fake-0 1/1, GPU-fake-1 0.3/1" {
			t.Errorf("agent GPUs %s", got)
		}
	})
}

func TestWholeGPUsAndSlicesThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newGPUEnv(t, `{"cpu":null,"mem":null}`)
	whole := e.waitStatus(e.mustCreate(e.admin, gpuBody("cuda.device", 1)).ID, api.SessionScheduled)
	if got := whole.Containers[0].GPUs; len(got) != 1 || got[0].UUID != "GPU-fake-0" || got[0].Share != 1 {
		t.Fatalf("whole GPU slices %+v", got)
	}
	if d := e.desired().Containers; len(d) != 1 || len(d[0].GPUs) != 1 || !d[0].GPUs[0].Whole || d[0].GPUs[0].MemoryBytes != 16*gib {
		t.Fatalf("desired %+v", d)
	}
	t.Run("the indicator counts GPUs the placement would give", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodGet, e.url("/v1/resources/me"), e.admin, nil)
		wantStatus(t, r, http.StatusOK)
		var got api.ResourceIndicator
		r.JSON(t, &got)
		wantJSON(t, "free", got.Cluster.Free, `{"cpu":7.5,"mem":16106127360,"cuda.device":1,"cuda.shares":1}`)
		wantJSON(t, "largest", got.Cluster.LargestAgentFree, `{"cpu":7.5,"mem":16106127360,"cuda.device":1,"cuda.shares":1}`)
	})
	// A slice goes to the other GPU, which then holds no whole GPU.
	half := e.waitStatus(e.mustCreate(e.admin, gpuBody("cuda.shares", 0.25)).ID, api.SessionScheduled)
	if got := gpusOf(half); got != "GPU-fake-1=0.3" {
		t.Errorf("0.25 at quantum 0.1: slices %q, want GPU-fake-1=0.3", got)
	}
	if got := cudaShares(half.Containers[0].Slots); got != "0.3" {
		t.Errorf("the container holds cuda.shares %s, want 0.3", got)
	}
	wait := e.mustCreate(e.admin, gpuBody("cuda.device", 1))
	testcluster.Eventually(t, 10*time.Second, func() error {
		if got := e.get(e.admin, wait.ID); got.StatusInfo != "no agent has cuda.device 1 free (largest 0)" {
			return fmt.Errorf("whole GPU request %s %q", got.Status, got.StatusInfo)
		}
		return nil
	})
	t.Run("the indicator's fGPU maximum is what one GPU has left", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodGet, e.url("/v1/resources/me"), e.admin, nil)
		var got api.ResourceIndicator
		r.JSON(t, &got)
		wantJSON(t, "allocatable", got.Allocatable, `{"cpu":7,"mem":15032385536,"cuda.device":0,"cuda.shares":0.7}`)
	})
}

func TestGPUPolicyLimitsInTheIndicator(t *testing.T) {
	t.Parallel()
	// The manual: the admin limits fGPU to 1; the slider stops there even
	// though the node has two GPUs.
	e := newGPUEnv(t, `{"cpu":2,"mem":4294967296,"cuda.shares":1}`)
	r := testcluster.Do(t, http.MethodGet, e.url("/v1/resources/me"), e.admin, nil)
	wantStatus(t, r, http.StatusOK)
	var got api.ResourceIndicator
	r.JSON(t, &got)
	wantJSON(t, "allocatable", got.Allocatable, `{"cpu":2,"mem":4294967296,"cuda.device":2,"cuda.shares":1}`)
	e.waitStatus(e.mustCreate(e.admin, gpuBody("cuda.shares", 0.6)).ID, api.SessionScheduled)
	r = testcluster.Do(t, http.MethodGet, e.url("/v1/resources/me"), e.admin, nil)
	r.JSON(t, &got)
	wantJSON(t, "remaining", got.Remaining, `{"cpu":1.5,"mem":3221225472,"cuda.device":null,"cuda.shares":0.4}`)
	wantJSON(t, "allocatable", got.Allocatable, `{"cpu":1.5,"mem":3221225472,"cuda.device":1,"cuda.shares":0.4}`)
	// Over the policy in all: refused at once.
	p := wantProblem(t, e.create(e.admin, gpuBody("cuda.shares", 2)), http.StatusUnprocessableEntity, api.ProblemValidation)
	wantFields(t, p, map[string][]string{"resources.cuda.shares": {"cuda.shares 2 > 1 allowed by policy default"}})
}

func TestGPURequestValidation(t *testing.T) {
	t.Parallel()
	e := newGPUEnv(t, `{"cpu":null,"mem":null}`)
	res := func(extra map[string]any) map[string]any {
		r := map[string]any{"cpu": 1, "mem": 1 << 30}
		for k, v := range extra {
			r[k] = v
		}
		return map[string]any{"image": baseImage, "type": "interactive", "resources": r}
	}
	for _, tc := range []struct {
		name   string
		status int
		body   map[string]any
		fields map[string][]string
	}{
		{"both GPU kinds", 400, res(map[string]any{"cuda.device": 1, "cuda.shares": 0.5}),
			map[string][]string{"resources": {"ask for cuda.device (whole GPUs) or cuda.shares (fractions), not both"}}},
		{"a fraction of a whole GPU", 400, res(map[string]any{"cuda.device": 1.5}),
			map[string][]string{"resources.cuda.device": {"cuda.device has more precision than whole units allows"}}},
		{"finer than a hundredth of a GPU", 400, res(map[string]any{"cuda.shares": 0.005}),
			map[string][]string{"resources.cuda.shares": {"cuda.shares has more precision than 0.01 share allows"}}},
		{"more whole GPUs than any agent has", 422, res(map[string]any{"cuda.device": 3}),
			map[string][]string{"resources.cuda.device": {"no agent has cuda.device 3 (largest 2)"}}},
		{"more shares than any agent's GPUs offer", 422, res(map[string]any{"cuda.shares": 2.5}),
			map[string][]string{"resources.cuda.shares": {"no agent has cuda.shares 2.5 (largest 2)"}}},
		{"a fraction beside whole GPUs", 422, res(map[string]any{"cuda.shares": 1.5}),
			map[string][]string{"resources.cuda.shares": {"cuda.shares 1.5 is more than one GPU but not a whole number of GPUs: a fraction runs under one GPU's MPS daemon and cannot be held beside other GPUs; ask for at most one GPU's worth or whole GPUs"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typ := api.ProblemValidation
			p := wantProblem(t, e.create(e.admin, tc.body), tc.status, typ)
			wantFields(t, p, tc.fields)
		})
	}
	// Two GPUs' worth: both GPUs whole.
	s := e.waitStatus(e.mustCreate(e.admin, res(map[string]any{"cuda.shares": 2})).ID, api.SessionScheduled)
	if got := gpusOf(s); got != "GPU-fake-0=1,GPU-fake-1=1" {
		t.Errorf("2 shares: %q", got)
	}
}

func TestAgentGPUReports(t *testing.T) {
	t.Parallel()
	e := newGPUEnv(t, `{"cpu":null,"mem":null}`)
	t.Run("a heartbeat with the same GPUs writes nothing", func(t *testing.T) {
		hb := e.capacity
		hb.GPUs, hb.GPUShareQuantum = fakeGPUs(2), 10
		heartbeat(t, e.s, e.agent, hb)
		before := lastIndex(e.s)
		heartbeat(t, e.s, e.agent, hb)
		if after := lastIndex(e.s); after != before {
			t.Errorf("an unchanged GPU report wrote to Raft: %d → %d", before, after)
		}
	})
	t.Run("a heartbeat with other GPUs or quantum replaces them", func(t *testing.T) {
		hb := e.capacity
		hb.GPUs, hb.GPUShareQuantum = fakeGPUs(1), 25
		heartbeat(t, e.s, e.agent, hb)
		if got := agentGPUs(t, e); got != "GPU-fake-0 0/1" {
			t.Errorf("agent GPUs %s", got)
		}
		// The new quantum rounds 0.1 up to 0.25.
		s := e.waitStatus(e.mustCreate(e.admin, gpuBody("cuda.shares", 0.1)).ID, api.SessionScheduled)
		if got := gpusOf(s); got != "GPU-fake-0=0.25" {
			t.Errorf("slices %q", got)
		}
	})
	t.Run("a broken inventory is refused with every reason", func(t *testing.T) {
		in := registration("10.0.0.8:6001")
		in.GPUs = []api.GPUDevice{{UUID: "GPU-a", Shares: 100}, {UUID: "GPU-a", Shares: 0}, {Shares: 100, MemoryBytes: -1}}
		in.GPUShareQuantum = 200
		r := agentCall(t, e.s, http.MethodPost, "/v1/agents/register", testAgentToken, "", in)
		p := wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation)
		wantFields(t, p, map[string][]string{
			"gpus[1].uuid":         {"GPU GPU-a is listed twice"},
			"gpus[1].shares":       {"gpus[1].shares must be from 1 to 10000 (hundredths of a GPU; 100 = one GPU)"},
			"gpus[2].uuid":         {"gpus[2].uuid is required"},
			"gpus[2].memory_bytes": {"gpus[2].memory_bytes must not be negative"},
			"gpu_share_quantum":    {"gpu_share_quantum must be from 1 to what one GPU offers (100), in hundredths of a GPU"},
		})
	})
}
