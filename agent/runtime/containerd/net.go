package containerd

import (
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// withNetNS has the container join a network namespace the agent made and
// attached to its session's network (runtime.Spec.NetNS) instead of a new
// one. The namespace is the host's: root in the container has no
// CAP_NET_ADMIN over it. Not with a user namespace: runc 1.1 cannot mount
// sysfs for such a container, nor exec into it (agent/DESIGN.md).
func withNetNS(path string) oci.SpecOpts {
	return oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: path})
}
