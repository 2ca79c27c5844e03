package containerd

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/berth-cluster/berth/agent/runtime"
)

// gpuOpts gives a container its GPUs: CDI devices (the vendor's own recipe:
// device nodes, driver files, hooks) or explicit device nodes with cgroup
// rules, then Berth's own mounts (each replacing what was mounted at its
// target, so /dev/shm becomes the host's for MPS). They come before the
// Spec's environment, which therefore wins over any CDI edit of
// NVIDIA_VISIBLE_DEVICES.
func gpuOpts(g runtime.GPUAccess, cdiDirs []string) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if len(g.CDIDevices) > 0 {
		opts = append(opts, withCDIDevices(cdiDirs, g.CDIDevices))
	}
	for _, dev := range g.DeviceNodes {
		opts = append(opts, oci.WithLinuxDeviceFollowSymlinks(dev, "rwm"))
	}
	if len(g.Mounts) > 0 {
		opts = append(opts, withReplacingMounts(bindMounts(g.Mounts)))
	}
	return opts
}

// withCDIDevices injects CDI devices on the client side, from a cache of
// its own over dirs: containerd's helper would use the package's global
// registry, and a daemon-side injection needs the CRI plugin Berth does not
// run.
func withCDIDevices(dirs []string, devices []string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		cache, err := cdi.NewCache(cdi.WithSpecDirs(dirs...), cdi.WithAutoRefresh(false))
		if err != nil && cache == nil {
			return fmt.Errorf("read CDI specs in %s: %w", strings.Join(dirs, ", "), err)
		}
		// Errors of unrelated spec files do not matter as long as every
		// device resolves; InjectDevices says which do not.
		unresolved, err := cache.InjectDevices(s, devices...)
		if err != nil {
			if len(unresolved) > 0 {
				return fmt.Errorf("inject CDI devices %s (unresolved: %s): %w", strings.Join(devices, ", "), strings.Join(unresolved, ", "), err)
			}
			return fmt.Errorf("inject CDI devices %s: %w", strings.Join(devices, ", "), err)
		}
		return nil
	}
}

// withReplacingMounts appends mounts, dropping earlier mounts at the same
// destinations (the default tmpfs /dev/shm, for one).
func withReplacingMounts(ms []specs.Mount) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		replaced := make(map[string]bool, len(ms))
		for _, m := range ms {
			replaced[filepath.Clean(m.Destination)] = true
		}
		kept := s.Mounts[:0]
		for _, m := range s.Mounts {
			if !replaced[filepath.Clean(m.Destination)] {
				kept = append(kept, m)
			}
		}
		s.Mounts = append(kept, ms...)
		return nil
	}
}

// taskCgroupDir is the directory of the container's cgroup on a v2 host
// ("" on v1 or with the systemd driver's notation, where no single
// directory holds the limit).
func taskCgroupDir(root string, cg cgroupInfo, cgroupsPath string) string {
	if !cg.v2 || cgroupsPath == "" || strings.Contains(cgroupsPath, ":") {
		return ""
	}
	return filepath.Join(root, cgroupsPath)
}
