package containerd

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cluster/berth/agent/runtime"
)

// keptCapabilities is containerd's default set without DroppedCapabilities,
// in containerd's order: what root in a container may still do.
var keptCapabilities = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_KILL"}

// A session's user gets no capability at all and root a reduced bounding
// set; the image's USER does not decide who runs.
func TestSpecUserAndCapabilities(t *testing.T) {
	img := newFakeImage(t, ocispec.ImageConfig{Cmd: []string{"sh"}, User: "0:0"})
	for _, c := range []struct {
		name          string
		user          runtime.User
		wantEffective []string
	}{
		{"non-root", runtime.User{UID: 1000, GID: 1000, AdditionalGIDs: []uint32{2000}}, []string{}},
		{"root", runtime.User{}, keptCapabilities},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := generate(t, img, runtime.Spec{ID: "c", User: c.user}, v1Host)
			p := spec.Process
			if p.User.UID != c.user.UID || p.User.GID != c.user.GID || !slices.Equal(p.User.AdditionalGids, c.user.AdditionalGIDs) {
				t.Errorf("user %+v, want %+v (the image says 0:0)", p.User, c.user)
			}
			caps := p.Capabilities
			if !slices.Equal(caps.Bounding, keptCapabilities) {
				t.Errorf("bounding %q, want %q", caps.Bounding, keptCapabilities)
			}
			if !slices.Equal(caps.Effective, c.wantEffective) || !slices.Equal(caps.Permitted, c.wantEffective) {
				t.Errorf("effective %q permitted %q, want %q", caps.Effective, caps.Permitted, c.wantEffective)
			}
			if len(caps.Inheritable) != 0 || len(caps.Ambient) != 0 {
				t.Errorf("inheritable %q ambient %q, want none", caps.Inheritable, caps.Ambient)
			}
			for _, dropped := range DroppedCapabilities() {
				for _, set := range [][]string{caps.Bounding, caps.Effective, caps.Permitted} {
					if slices.Contains(set, dropped) {
						t.Errorf("%s kept", dropped)
					}
				}
			}
			if !p.NoNewPrivileges {
				t.Error("no_new_privs is off")
			}
		})
	}
}

// Without -seccomp-profile a container gets containerd's default profile as
// computed for its capabilities: without CAP_SYS_ADMIN nothing allows
// unshare, mount or setns. /proc and /sys are masked and read-only as
// containerd has them.
func TestSpecDefaultSeccompAndMaskedPaths(t *testing.T) {
	img := newFakeImage(t, ocispec.ImageConfig{Cmd: []string{"sh"}})
	spec := generate(t, img, runtime.Spec{ID: "c", User: runtime.User{UID: 1000, GID: 1000}}, v1Host)
	sc := spec.Linux.Seccomp
	if sc == nil {
		t.Fatal("no seccomp profile")
	}
	if sc.DefaultAction != specs.ActErrno || len(sc.Syscalls) < 2 {
		t.Errorf("profile default %s with %d rules: not containerd's default", sc.DefaultAction, len(sc.Syscalls))
	}
	allowed := map[string]bool{}
	for _, r := range sc.Syscalls {
		if r.Action == specs.ActAllow && len(r.Args) == 0 {
			for _, n := range r.Names {
				allowed[n] = true
			}
		}
	}
	if !allowed["read"] || !allowed["execve"] {
		t.Error("the profile does not allow read and execve: not a working profile")
	}
	for _, n := range []string{"unshare", "mount", "setns", "keyctl", "bpf", "kexec_load", "open_by_handle_at"} {
		if allowed[n] {
			t.Errorf("%s is allowed without condition", n)
		}
	}
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/acpi", "/proc/scsi", "/sys/firmware"} {
		if !slices.Contains(spec.Linux.MaskedPaths, p) {
			t.Errorf("%s is not masked (%q)", p, spec.Linux.MaskedPaths)
		}
	}
	for _, p := range []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"} {
		if !slices.Contains(spec.Linux.ReadonlyPaths, p) {
			t.Errorf("%s is not read-only (%q)", p, spec.Linux.ReadonlyPaths)
		}
	}
	for _, m := range spec.Mounts {
		if m.Destination == "/sys" && !slices.Contains(m.Options, "ro") {
			t.Errorf("/sys mounted %q, want ro", m.Options)
		}
	}

	custom := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	spec = generate(t, img, runtime.Spec{ID: "c"}, limits{defaultPids: 1, seccomp: custom})
	if spec.Linux.Seccomp == nil || spec.Linux.Seccomp.DefaultAction != specs.ActAllow || len(spec.Linux.Seccomp.Syscalls) != 0 {
		t.Errorf("with a profile: %+v, want it as given", spec.Linux.Seccomp)
	}
}

// Every bind mount is nosuid and nodev, whoever asks for it: the session's
// folders, the GPU's files, and a CDI spec that says suid.
func TestSpecEveryBindMountIsNosuidNodev(t *testing.T) {
	dir := t.TempDir()
	cdiSpec := `cdiVersion: "0.6.0"
kind: nvidia.com/gpu
devices:
- name: GPU-1
  containerEdits:
    mounts:
    - hostPath: /usr/lib/libcuda.so.550
      containerPath: /usr/lib/libcuda.so.1
      options: [ro, bind, suid, dev]
`
	if err := os.WriteFile(filepath.Join(dir, "nvidia.yaml"), []byte(cdiSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	img := newFakeImage(t, ocispec.ImageConfig{Cmd: []string{"sh"}})
	s := runtime.Spec{ID: "c", User: runtime.User{UID: 1000, GID: 1000},
		Mounts: []runtime.Mount{{Source: "/homes/c", Target: "/home/work"}, {Source: "/data/f", Target: "/home/work/f", ReadOnly: true}},
		GPU: runtime.GPUAccess{CDIDevices: []string{"nvidia.com/gpu=GPU-1"},
			Mounts: []runtime.Mount{{Source: "/run/mps/GPU-1", Target: "/run/nvidia-mps"}, {Source: "/dev/shm", Target: "/dev/shm"}}}}
	spec := generate(t, img, s, limits{defaultPids: 10, cdiDirs: []string{dir}})
	var binds []string
	for _, m := range spec.Mounts {
		if !isBind(m) {
			continue
		}
		binds = append(binds, m.Destination)
		if !slices.Contains(m.Options, "nosuid") || !slices.Contains(m.Options, "nodev") ||
			slices.Contains(m.Options, "suid") || slices.Contains(m.Options, "dev") {
			t.Errorf("bind at %s has options %q, want nosuid and nodev", m.Destination, m.Options)
		}
	}
	slices.Sort(binds)
	if want := []string{"/dev/shm", "/home/work", "/home/work/f", "/run/nvidia-mps", "/usr/lib/libcuda.so.1"}; !slices.Equal(binds, want) {
		t.Errorf("binds at %q, want %q", binds, want)
	}
}

func TestSpecUserNamespace(t *testing.T) {
	img := newFakeImage(t, ocispec.ImageConfig{Cmd: []string{"sh"}})
	spec := generate(t, img, runtime.Spec{ID: "c"}, limits{defaultPids: 1, userns: &IDMap{HostUID: 100000, HostGID: 200000, Size: 65536}})
	if !slices.ContainsFunc(spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace }) {
		t.Errorf("namespaces %+v lack a user namespace", spec.Linux.Namespaces)
	}
	if want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}; !slices.Equal(spec.Linux.UIDMappings, want) {
		t.Errorf("uid map %+v, want %+v", spec.Linux.UIDMappings, want)
	}
	if want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}; !slices.Equal(spec.Linux.GIDMappings, want) {
		t.Errorf("gid map %+v, want %+v", spec.Linux.GIDMappings, want)
	}
	plain := generate(t, img, runtime.Spec{ID: "c"}, v1Host)
	if slices.ContainsFunc(plain.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace }) {
		t.Error("a user namespace without -userns-remap")
	}
}

func TestParseIDMap(t *testing.T) {
	if m, err := ParseIDMap("100000:100000:65536"); err != nil || *m != (IDMap{HostUID: 100000, HostGID: 100000, Size: 65536}) {
		t.Errorf("ParseIDMap = %+v, %v", m, err)
	}
	for _, c := range []struct{ in, want string }{
		{"100000:100000", "not UID:GID:SIZE"},
		{"a:1:2", `"a" is not a number`},
		{"0:100000:65536", "host's root"},
		{"100000:100000:1000", "uid 1000 is mapped"},
		{"4294967000:100000:65536", "past the largest id"},
	} {
		if _, err := ParseIDMap(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseIDMap(%q) = %v, want an error saying %q", c.in, err, c.want)
		}
	}
}

func TestLoadSeccompProfile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := write("ok.json", `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}`)
	p, err := LoadSeccompProfile(ok)
	if err != nil || p.DefaultAction != specs.ActErrno || len(p.Syscalls) != 1 {
		t.Fatalf("LoadSeccompProfile = %+v, %v", p, err)
	}
	for _, c := range []struct{ name, path, want string }{
		{"missing file", filepath.Join(dir, "none.json"), "no such file"},
		{"not JSON", write("bad.json", "SCMP_ACT_ALLOW"), "not an OCI seccomp profile"},
		// Docker's own format has fields runtime-spec does not know.
		{"docker format", write("docker.json", `{"defaultAction":"SCMP_ACT_ERRNO","archMap":[]}`), "unknown field"},
		{"no default action", write("nodefault.json", `{"syscalls":[]}`), "defaultAction is required"},
		{"unknown action", write("action.json", `{"defaultAction":"SCMP_ACT_MAYBE"}`), `defaultAction "SCMP_ACT_MAYBE"`},
		{"rule without names", write("names.json", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}`), "syscalls[0] names no syscall"},
	} {
		if _, err := LoadSeccompProfile(c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}
