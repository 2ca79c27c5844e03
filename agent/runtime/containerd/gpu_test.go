package containerd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cluster/berth/agent/runtime"
)

// Without CDI specs a GPU reaches a container as device nodes, each with a
// cgroup allow rule, plus bind mounts; a mount at /dev/shm replaces the
// default tmpfs (MPS clients share the host's). /dev/null and /dev/zero
// stand for /dev/nvidiactl and /dev/nvidia0, which this host lacks.
func TestSpecGivesGPUDeviceNodesWithCgroupRulesAndMounts(t *testing.T) {
	img := newFakeImage(t, ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"NVIDIA_VISIBLE_DEVICES=all"}})
	s := runtime.Spec{ID: "c", Env: map[string]string{"NVIDIA_VISIBLE_DEVICES": "GPU-1", "CUDA_VISIBLE_DEVICES": "GPU-1"},
		GPU: runtime.GPUAccess{
			DeviceNodes: []string{"/dev/null", "/dev/zero"},
			Mounts: []runtime.Mount{
				{Source: "/usr/lib/libcuda.so.550", Target: "/usr/local/nvidia/lib64/libcuda.so.1", ReadOnly: true},
				{Source: "/run/berth-mps/GPU-1/pipe", Target: "/run/nvidia-mps"},
				{Source: "/dev/shm", Target: "/dev/shm"},
			},
		}}
	spec := generate(t, img, s, v1Host)

	var paths []string
	for _, d := range spec.Linux.Devices {
		paths = append(paths, d.Path)
	}
	if !slices.Equal(paths, []string{"/dev/null", "/dev/zero"}) {
		t.Errorf("devices %q", paths)
	}
	var rules []string
	for _, r := range spec.Linux.Resources.Devices {
		if r.Allow && r.Major != nil && *r.Major == 1 && r.Minor != nil && (*r.Minor == 3 || *r.Minor == 5) && r.Access == "rwm" && r.Type == "c" {
			rules = append(rules, filepath.Base(map[int64]string{3: "null", 5: "zero"}[*r.Minor]))
		}
	}
	if !slices.Equal(rules, []string{"null", "zero"}) {
		t.Errorf("cgroup rules %+v: want allow c 1:3 and c 1:5 rwm", spec.Linux.Resources.Devices)
	}
	var shm []specs.Mount
	for _, m := range spec.Mounts {
		if m.Destination == "/dev/shm" {
			shm = append(shm, m)
		}
	}
	if want := []specs.Mount{{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate", "rw", "nosuid", "nodev"}}}; !reflect.DeepEqual(shm, want) {
		t.Errorf("/dev/shm mounts %+v, want only %+v", shm, want)
	}
	if !slices.ContainsFunc(spec.Mounts, func(m specs.Mount) bool {
		return m.Destination == "/usr/local/nvidia/lib64/libcuda.so.1" && slices.Contains(m.Options, "ro")
	}) {
		t.Errorf("no read-only driver library mount in %+v", spec.Mounts)
	}
	if want := []string{"NVIDIA_VISIBLE_DEVICES=GPU-1", "CUDA_VISIBLE_DEVICES=GPU-1"}; !slices.Equal(spec.Process.Env, want) {
		t.Errorf("env %q, want %q (the image's NVIDIA_VISIBLE_DEVICES overwritten)", spec.Process.Env, want)
	}
}

// With a CDI spec, the devices come from it (applied here, on the client
// side); the Spec's environment still wins over the CDI spec's.
func TestSpecInjectsCDIDevicesFromTheSpecDirs(t *testing.T) {
	dir := t.TempDir()
	cdiSpec := `cdiVersion: "0.6.0"
kind: nvidia.com/gpu
devices:
- name: GPU-1
  containerEdits:
    deviceNodes:
    - path: /dev/null
      type: c
      major: 1
      minor: 3
containerEdits:
  env:
  - NVIDIA_VISIBLE_DEVICES=void
  mounts:
  - hostPath: /usr/lib/libcuda.so.550
    containerPath: /usr/lib/libcuda.so.1
    options: [ro, nosuid, nodev, bind]
`
	if err := os.WriteFile(filepath.Join(dir, "nvidia.yaml"), []byte(cdiSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	img := newFakeImage(t, ocispec.ImageConfig{Cmd: []string{"sh"}})
	s := runtime.Spec{ID: "c", Env: map[string]string{"NVIDIA_VISIBLE_DEVICES": "GPU-1"}, GPU: runtime.GPUAccess{CDIDevices: []string{"nvidia.com/gpu=GPU-1"}}}
	spec := generate(t, img, s, limits{defaultPids: 10, cdiDirs: []string{dir}})
	if len(spec.Linux.Devices) != 1 || spec.Linux.Devices[0].Path != "/dev/null" {
		t.Errorf("devices %+v, want the CDI spec's /dev/null", spec.Linux.Devices)
	}
	if !slices.ContainsFunc(spec.Mounts, func(m specs.Mount) bool { return m.Destination == "/usr/lib/libcuda.so.1" }) {
		t.Errorf("mounts %+v lack the CDI spec's library", spec.Mounts)
	}
	if !slices.Contains(spec.Process.Env, "NVIDIA_VISIBLE_DEVICES=GPU-1") || slices.Contains(spec.Process.Env, "NVIDIA_VISIBLE_DEVICES=void") {
		t.Errorf("env %q: want the Spec's NVIDIA_VISIBLE_DEVICES only", spec.Process.Env)
	}

	// A device the specs do not know fails the spec, naming it.
	s.GPU.CDIDevices = []string{"nvidia.com/gpu=GPU-9"}
	_, err := generateErr(t, img, s, limits{defaultPids: 10, cdiDirs: []string{dir}})
	if err == nil || !strings.Contains(err.Error(), "unresolved: nvidia.com/gpu=GPU-9") {
		t.Errorf("unknown CDI device: %v", err)
	}
}

// The GPU hook runs between task create and start with the task's cgroup
// directory (cgroup v2): the task's init is in the cgroup and has not run
// the command yet. A hook that fails leaves no container behind.
func TestBeforeStartRunsBetweenTaskCreateAndStart(t *testing.T) {
	e := newEnv(t, true)
	rt := e.runtime(t)
	ctx := testCtx(t)
	id := uniqueID("gpu")
	var dirs []string
	var procs string
	s := baseSpec(id, "sleep", "60")
	s.GPU.BeforeStart = func(_ context.Context, dir string) error {
		dirs = append(dirs, dir)
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			if err != nil {
				return err
			}
			procs = strings.TrimSpace(string(b))
		}
		return nil
	}
	c, err := rt.Run(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Stop(context.Background(), id, time.Second); _ = rt.Remove(context.Background(), id) })
	want := ""
	if rt.cg.v2 {
		want = filepath.Join("/sys/fs/cgroup", cgroupsPathOf(t, rt, id))
		if procs != strconv.Itoa(int(c.Pid)) {
			t.Errorf("cgroup.procs at the hook = %q, want the task's init %d alone", procs, c.Pid)
		}
	}
	if !slices.Equal(dirs, []string{want}) {
		t.Errorf("hook called with %q, want once with %q", dirs, want)
	}

	failing := uniqueID("gpu")
	s = baseSpec(failing, "sleep", "60")
	s.GPU.BeforeStart = func(context.Context, string) error { return errors.New("no GPU memory cap") }
	_, err = rt.Run(ctx, s)
	if err == nil || !strings.Contains(err.Error(), "before start: no GPU memory cap") {
		t.Fatalf("failing hook: %v", err)
	}
	cs, err := rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := find(cs, failing); ok {
		t.Errorf("a container whose hook failed is still there")
	}
}
