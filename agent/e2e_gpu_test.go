package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// On a real containerd, a container holding half of a fake GPU starts, and
// its processes see the slice: the GPU's UUID in NVIDIA_VISIBLE_DEVICES and
// CUDA_VISIBLE_DEVICES, MPS limits of half the GPU. A container without
// GPUs sees NVIDIA_VISIBLE_DEVICES=void whatever the session said.
func TestContainerWithAFakeHalfGPUSeesItsSlice(t *testing.T) {
	t.Parallel()
	socket := testenv.Containerd(t)
	ns := testenv.Namespace(t)
	testenv.ImportBaseImage(t, socket, ns)
	rt := realRuntime(t, socket, ns, t.TempDir())
	mgr := newFakeManager()
	startGPUAgent(t, t.TempDir(), rt, mgr, fakeGPUs(t, 1))

	uuid := "GPU-fa4e0000-0000-0000-0000-000000000000"
	half := api.DesiredContainer{ID: "gpu-0", SessionID: "gpu", Image: testenv.BaseImageName, Command: []string{"sleep", "3600"},
		Slots: slots.Slots{slots.CPU: 100, slots.Mem: 32 << 20, slots.CUDAShares: 50},
		GPUs:  []api.GPUSlice{{UUID: uuid, Index: 0, Minor: 0, Share: 50, MemoryBytes: 20480 << 20, Fake: true}}}
	none := api.DesiredContainer{ID: "cpu-0", SessionID: "cpu", Image: testenv.BaseImageName, Command: []string{"sleep", "3600"},
		Env: map[string]string{"NVIDIA_VISIBLE_DEVICES": "all"}, Slots: slots.Slots{slots.CPU: 100, slots.Mem: 32 << 20}}
	mgr.setDesired(half, none)
	waitFor(t, func() error {
		for _, id := range []string{"gpu-0", "cpu-0"} {
			if r, _ := reported(mgr, id); r.Status != "running" {
				return fmt.Errorf("%s reported as %+v", id, r)
			}
		}
		return nil
	})

	env := func(id string) map[string]string {
		res, err := rt.Exec(context.Background(), id, []string{"env"}, 20*time.Second)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("env in %s: %v, %+v", id, err, res)
		}
		out := map[string]string{}
		for _, line := range strings.Split(string(res.Stdout), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				out[k] = v
			}
		}
		return out
	}
	got := env("gpu-0")
	for k, want := range map[string]string{"NVIDIA_VISIBLE_DEVICES": uuid, "CUDA_VISIBLE_DEVICES": uuid,
		"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT": "0=20480M", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "50",
		"CUDA_MPS_PIPE_DIRECTORY": "/run/nvidia-mps", "BERTH_FAKE_GPUS": "true"} {
		if got[k] != want {
			t.Errorf("%s in the container = %q, want %q", k, got[k], want)
		}
	}
	if got := env("cpu-0"); got["NVIDIA_VISIBLE_DEVICES"] != "void" || got["CUDA_VISIBLE_DEVICES"] != "" {
		t.Errorf("container without GPUs: NVIDIA_VISIBLE_DEVICES=%q CUDA_VISIBLE_DEVICES=%q, want void and unset",
			got["NVIDIA_VISIBLE_DEVICES"], got["CUDA_VISIBLE_DEVICES"])
	}
}
