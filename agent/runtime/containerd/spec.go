package containerd

import (
	"context"
	"sort"
	"strconv"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cluster/berth/agent/runtime"
)

const (
	// cfsPeriod is the CFS period in µs; the quota is MilliCPU thousandths
	// of it. 100 ms is the kernel's and Docker's default.
	cfsPeriod = 100000
	// minCFSQuota is the kernel's floor for cpu.cfs_quota_us (1 ms).
	minCFSQuota = 1000
	// maxHostname is Linux's HOST_NAME_MAX.
	maxHostname = 64
	// labelOOMKilled is set on a container when containerd reports an OOM
	// in it, so that an agent restarted after the exit still knows.
	labelOOMKilled = "berth.oom-killed"
)

// limits are the host-dependent inputs of spec generation.
type limits struct {
	defaultPids int64
	cgroups     cgroupInfo
	cdiDirs     []string // CDI spec directories, for Spec.GPU.CDIDevices
	// seccomp is the profile of every container (nil: containerd's default).
	seccomp *specs.LinuxSeccomp
	// userns maps the containers' ids to a range of the host's (nil: none).
	userns *IDMap
}

// specOpts turns a Berth Spec into OCI spec options. It is pure (no daemon):
// the image's config is read through img when the options are applied.
// Order matters: the image config first, then what the Spec overrides.
func specOpts(img oci.Image, s runtime.Spec, l limits) []oci.SpecOpts {
	opts := []oci.SpecOpts{oci.WithImageConfig(img)}
	opts = append(opts, gpuOpts(s.GPU, l.cdiDirs)...)
	if len(s.Command) > 0 {
		// The session's command is complete: it replaces the image's
		// entrypoint and cmd alike.
		opts = append(opts, oci.WithProcessArgs(s.Command...))
	}
	if s.Home != "" {
		// The image's HOME (often /root) is not where the home is; the
		// Spec's own environment may still say otherwise.
		opts = append(opts, oci.WithEnv([]string{"HOME=" + s.Home}))
	}
	if len(s.Env) > 0 {
		opts = append(opts, oci.WithEnv(envList(s.Env)))
	}
	if s.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(s.WorkingDir))
	}
	opts = append(opts, oci.WithHostname(hostname(s.ID)))
	if s.NetNS != "" {
		opts = append(opts, withNetNS(s.NetNS))
	}

	if s.MilliCPU > 0 {
		opts = append(opts, oci.WithCPUCFS(cfsQuota(s.MilliCPU), cfsPeriod))
	}
	if s.MemoryBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(s.MemoryBytes)))
		// OCI's swap is memory+swap: equal to the limit means no swap.
		if l.cgroups.swapAccounting {
			opts = append(opts, oci.WithMemorySwap(s.MemoryBytes))
		}
		if !l.cgroups.v2 {
			// Without memsw accounting the limit alone cannot forbid swap,
			// and swappiness 0 is v1's remaining way to keep the cgroup's
			// anonymous memory in RAM. v2 has no per-cgroup swappiness.
			opts = append(opts, withSwappiness(0))
		}
	}
	pids := s.Pids
	if pids <= 0 {
		pids = l.defaultPids
	}
	if pids > 0 {
		opts = append(opts, oci.WithPidsLimit(pids))
	}
	if len(s.Mounts) > 0 {
		opts = append(opts, oci.WithMounts(bindMounts(s.Mounts)))
	}
	// Who runs, then what the kernel lets them do: the default seccomp
	// profile is derived from the capabilities withUser leaves.
	opts = append(opts, withUser(s.User), withSeccomp(l.seccomp))
	if l.userns != nil {
		opts = append(opts, withUserNamespace(l.userns))
	}
	// Last: every mount is known by now, CDI's included.
	return append(opts, withHardenedBinds())
}

// cfsQuota converts thousandths of a core into a quota per cfsPeriod.
func cfsQuota(milliCPU int64) int64 {
	q := milliCPU * cfsPeriod / 1000
	if q < minCFSQuota {
		q = minCFSQuota
	}
	return q
}

// containerLabels are the containerd labels that let a restarted agent know
// each container: the Spec's own labels plus the session and index, which
// win over a Spec label of the same key.
func containerLabels(s runtime.Spec) map[string]string {
	labels := make(map[string]string, len(s.Labels)+2)
	for k, v := range s.Labels {
		labels[k] = v
	}
	labels[runtime.LabelSession] = s.SessionID
	labels[runtime.LabelIndex] = strconv.Itoa(s.Index)
	return labels
}

// envList renders env in a stable order so that specs are reproducible.
func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func hostname(id string) string {
	if len(id) > maxHostname {
		return id[:maxHostname]
	}
	return id
}

// bindMounts are recursive private binds: a mount made under the source later
// must not propagate into (or out of) a session's container. None lets a
// setuid file or a device node take effect (withHardenedBinds sees to the
// binds added by others).
func bindMounts(ms []runtime.Mount) []specs.Mount {
	out := make([]specs.Mount, 0, len(ms))
	for _, m := range ms {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		out = append(out, specs.Mount{
			Destination: m.Target,
			Type:        "bind",
			Source:      m.Source,
			Options:     []string{"rbind", "rprivate", mode, "nosuid", "nodev"},
		})
	}
	return out
}

// withSwappiness sets v1's memory.swappiness; containerd's oci package has
// no option for it.
func withSwappiness(v uint64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		if s.Linux.Resources.Memory == nil {
			s.Linux.Resources.Memory = &specs.LinuxMemory{}
		}
		s.Linux.Resources.Memory.Swappiness = &v
		return nil
	}
}
