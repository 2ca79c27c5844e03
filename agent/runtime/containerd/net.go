package containerd

import (
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// withNetNS has the container join a network namespace the agent made and
// attached to its session's network (runtime.Spec.NetNS) instead of a new
// one. runc joins it before it makes a user namespace, so it works with
// -userns-remap too: the namespace stays owned by the host, and the
// container's root has no CAP_NET_ADMIN over it.
func withNetNS(path string) oci.SpecOpts {
	return oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: path})
}
