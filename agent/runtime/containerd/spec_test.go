package containerd

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/content/local"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cluster/berth/agent/runtime"
)

// fakeImage is an oci.Image whose config lives in a local content store:
// enough for oci.WithImageConfig, with no daemon.
type fakeImage struct {
	store content.Store
	desc  ocispec.Descriptor
}

func (f fakeImage) Config(context.Context) (ocispec.Descriptor, error) { return f.desc, nil }
func (f fakeImage) ContentStore() content.Store                        { return f.store }

func newFakeImage(t *testing.T, cfg ocispec.ImageConfig) fakeImage {
	t.Helper()
	store, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blob, err := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config:   cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	desc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageConfig,
		Digest:    digest.FromBytes(blob),
		Size:      int64(len(blob)),
	}
	ctx := context.Background()
	if err := content.WriteBlob(ctx, store, "config", bytes.NewReader(blob), desc); err != nil {
		t.Fatal(err)
	}
	return fakeImage{store: store, desc: desc}
}

// generate runs spec generation the way NewContainer does, minus the
// snapshot: the rootfs is an empty folder (no /etc/group to read).
func generate(t *testing.T, img oci.Image, s runtime.Spec, l limits) *oci.Spec {
	t.Helper()
	spec, err := generateErr(t, img, s, l)
	if err != nil {
		t.Fatalf("GenerateSpec: %v", err)
	}
	return spec
}

func generateErr(t *testing.T, img oci.Image, s runtime.Spec, l limits) (*oci.Spec, error) {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), "berth")
	opts := append([]oci.SpecOpts{oci.WithRootFSPath(t.TempDir())}, specOpts(img, s, l)...)
	return oci.GenerateSpec(ctx, nil, &containers.Container{ID: s.ID}, opts...)
}

var v1Host = limits{defaultPids: 4096, cgroups: cgroupInfo{v2: false, swapAccounting: true}}

func TestSpecLimitsAndProcess(t *testing.T) {
	img := newFakeImage(t, ocispec.ImageConfig{
		Env:        []string{"PATH=/bin:/usr/bin", "LANG=C", "MODE=image"},
		Entrypoint: []string{"/bin/entry"},
		Cmd:        []string{"serve"},
		WorkingDir: "/srv",
	})
	s := runtime.Spec{
		ID:          "sess-1-0",
		SessionID:   "sess-1",
		Command:     []string{"/bin/sh", "-c", "sleep 1"},
		Env:         map[string]string{"MODE": "session", "B": "2", "A": "1"},
		WorkingDir:  "/home/work",
		MilliCPU:    500,
		MemoryBytes: 64 << 20,
		Pids:        100,
		Mounts: []runtime.Mount{
			{Source: "/data/shared", Target: "/home/work/shared", ReadOnly: true},
			{Source: "/data/scratch", Target: "/home/work/scratch"},
		},
	}
	spec := generate(t, img, s, v1Host)

	res := spec.Linux.Resources
	if got := *res.CPU.Quota; got != 50000 {
		t.Errorf("CFS quota = %d, want 50000", got)
	}
	if got := *res.CPU.Period; got != 100000 {
		t.Errorf("CFS period = %d, want 100000", got)
	}
	if got := *res.Memory.Limit; got != 64<<20 {
		t.Errorf("memory limit = %d, want %d", got, 64<<20)
	}
	if res.Memory.Swap == nil || *res.Memory.Swap != 64<<20 {
		t.Errorf("memory+swap = %v, want %d (no swap)", res.Memory.Swap, 64<<20)
	}
	if res.Memory.Swappiness == nil || *res.Memory.Swappiness != 0 {
		t.Errorf("swappiness = %v, want 0 on cgroup v1", res.Memory.Swappiness)
	}
	if res.Pids == nil || res.Pids.Limit != 100 {
		t.Errorf("pids = %+v, want 100", res.Pids)
	}

	if want := s.Command; !slices.Equal(spec.Process.Args, want) {
		t.Errorf("args = %q, want %q (the Spec's command replaces entrypoint and cmd)", spec.Process.Args, want)
	}
	wantEnv := []string{"PATH=/bin:/usr/bin", "LANG=C", "MODE=session", "A=1", "B=2"}
	if !slices.Equal(spec.Process.Env, wantEnv) {
		t.Errorf("env = %q, want %q", spec.Process.Env, wantEnv)
	}
	if spec.Process.Cwd != "/home/work" {
		t.Errorf("cwd = %q, want /home/work", spec.Process.Cwd)
	}
	if spec.Hostname != "sess-1-0" {
		t.Errorf("hostname = %q", spec.Hostname)
	}
	if spec.Linux.CgroupsPath != "/berth/sess-1-0" {
		t.Errorf("cgroups path = %q, want /berth/sess-1-0", spec.Linux.CgroupsPath)
	}

	wantMounts := []specs.Mount{
		{Destination: "/home/work/shared", Type: "bind", Source: "/data/shared", Options: []string{"rbind", "rprivate", "ro", "nosuid", "nodev"}},
		{Destination: "/home/work/scratch", Type: "bind", Source: "/data/scratch", Options: []string{"rbind", "rprivate", "rw", "nosuid", "nodev"}},
	}
	var binds []specs.Mount
	for _, m := range spec.Mounts {
		if m.Type == "bind" {
			binds = append(binds, m)
		}
	}
	if !reflect.DeepEqual(binds, wantMounts) {
		t.Errorf("bind mounts = %+v, want %+v", binds, wantMounts)
	}
	// The defaults (proc, dev, ...) are still there.
	if !slices.ContainsFunc(spec.Mounts, func(m specs.Mount) bool { return m.Destination == "/proc" }) {
		t.Error("default /proc mount lost")
	}
}

func TestSpecImageDefaults(t *testing.T) {
	img := newFakeImage(t, ocispec.ImageConfig{
		Env:        []string{"PATH=/bin"},
		Entrypoint: []string{"/bin/entry"},
		Cmd:        []string{"serve", "--port=1"},
		WorkingDir: "/srv",
	})
	spec := generate(t, img, runtime.Spec{ID: "c"}, v1Host)
	if want := []string{"/bin/entry", "serve", "--port=1"}; !slices.Equal(spec.Process.Args, want) {
		t.Errorf("args = %q, want the image's %q", spec.Process.Args, want)
	}
	if spec.Process.Cwd != "/srv" {
		t.Errorf("cwd = %q, want the image's /srv", spec.Process.Cwd)
	}
	if !slices.Equal(spec.Process.Env, []string{"PATH=/bin"}) {
		t.Errorf("env = %q", spec.Process.Env)
	}
	res := spec.Linux.Resources
	if res.CPU != nil && res.CPU.Quota != nil {
		t.Errorf("no MilliCPU but CFS quota %d", *res.CPU.Quota)
	}
	if res.Memory != nil && res.Memory.Limit != nil {
		t.Errorf("no MemoryBytes but memory limit %d", *res.Memory.Limit)
	}
	if res.Pids == nil || res.Pids.Limit != 4096 {
		t.Errorf("pids = %+v, want the default 4096", res.Pids)
	}
}

func TestSpecCgroupVariants(t *testing.T) {
	img := newFakeImage(t, ocispec.ImageConfig{Cmd: []string{"sh"}})
	s := runtime.Spec{ID: "c", MemoryBytes: 1 << 30, MilliCPU: 2500}

	v2 := generate(t, img, s, limits{defaultPids: 10, cgroups: cgroupInfo{v2: true, swapAccounting: true}})
	mem := v2.Linux.Resources.Memory
	if mem.Swap == nil || *mem.Swap != 1<<30 {
		t.Errorf("v2 memory+swap = %v, want %d", mem.Swap, 1<<30)
	}
	if mem.Swappiness != nil {
		t.Errorf("v2 swappiness = %d, want unset (v2 has none)", *mem.Swappiness)
	}
	if got := *v2.Linux.Resources.CPU.Quota; got != 250000 {
		t.Errorf("2.5 cores: quota %d, want 250000", got)
	}

	noSwap := generate(t, img, s, limits{defaultPids: 10, cgroups: cgroupInfo{}})
	mem = noSwap.Linux.Resources.Memory
	if mem.Swap != nil {
		t.Errorf("v1 without memsw: swap %d set, runc would fail", *mem.Swap)
	}
	if mem.Swappiness == nil || *mem.Swappiness != 0 {
		t.Errorf("v1 without memsw: swappiness %v, want 0", mem.Swappiness)
	}
}

func TestCFSQuota(t *testing.T) {
	for _, c := range []struct{ milli, want int64 }{
		{1000, 100000}, {500, 50000}, {250, 25000}, {10, 1000}, {1, 1000}, {16000, 1600000},
	} {
		if got := cfsQuota(c.milli); got != c.want {
			t.Errorf("cfsQuota(%d) = %d, want %d", c.milli, got, c.want)
		}
	}
}

func TestContainerLabels(t *testing.T) {
	got := containerLabels(runtime.Spec{
		SessionID: "s1", Index: 3,
		Labels: map[string]string{"team": "a", runtime.LabelSession: "spoofed", runtime.LabelSlots: "[]"},
	})
	want := map[string]string{"team": "a", runtime.LabelSession: "s1", runtime.LabelIndex: "3", runtime.LabelSlots: "[]"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("labels = %v, want %v", got, want)
	}
}

func TestHostnameTruncated(t *testing.T) {
	long := string(slices.Repeat([]byte("a"), 80))
	if got := hostname(long); len(got) != 64 {
		t.Errorf("hostname of 80 chars → %d chars", len(got))
	}
}
