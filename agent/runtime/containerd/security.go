package containerd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cluster/berth/agent/runtime"
)

// DroppedCapabilities lists what is taken out of containerd's default set for every
// container, root included: none of them is needed to run a program, and
// each is a way to harm the host or the other sessions. MKNOD makes device
// nodes (a raw disk in a folder); NET_RAW forges packets (ARP and DNS
// spoofing on the node's network); SYS_CHROOT is the first step of many
// escapes; SETFCAP writes file capabilities, which a host account that runs
// the file would get; AUDIT_WRITE writes into the host's audit log.
func DroppedCapabilities() []string {
	return []string{"CAP_MKNOD", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_SETFCAP", "CAP_AUDIT_WRITE"}
}

// withUser sets the process's user and its capabilities. Root keeps
// containerd's default set minus DroppedCapabilities in its bounding,
// permitted and effective sets; any other user gets that bounding set and
// nothing else (what it runs cannot gain a capability: no_new_privs and
// empty inheritable and ambient sets). The image's own USER is not used:
// the agent says who a session is.
func withUser(u runtime.User) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: slices.Clone(u.AdditionalGIDs)}
		var bounding []string
		if s.Process.Capabilities != nil {
			bounding = s.Process.Capabilities.Bounding
		}
		dropped := DroppedCapabilities()
		kept := slices.DeleteFunc(slices.Clone(bounding), func(c string) bool { return slices.Contains(dropped, c) })
		caps := &specs.LinuxCapabilities{Bounding: kept, Effective: []string{}, Permitted: []string{}, Inheritable: []string{}, Ambient: []string{}}
		if u.Root() {
			caps.Effective, caps.Permitted = slices.Clone(kept), slices.Clone(kept)
		}
		s.Process.Capabilities = caps
		s.Process.NoNewPrivileges = true
		return nil
	}
}

// withSeccomp installs profile, or containerd's default profile when nil.
// The default is computed from the capabilities, so it must follow
// withUser: without CAP_SYS_ADMIN it refuses unshare, mount, new user
// namespaces and the rest of what the capability would allow.
func withSeccomp(profile *specs.LinuxSeccomp) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if profile == nil {
			s.Linux.Seccomp = seccomp.DefaultProfile(s)
			return nil
		}
		p := *profile // the syscall lists are never changed: sharing them is safe
		s.Linux.Seccomp = &p
		return nil
	}
}

// withHardenedBinds makes every bind mount nosuid and nodev, whoever added
// it (Berth's folders and home, the GPU driver's files, a CDI spec): a
// setuid file or a device node written into a mounted directory must never
// work through it. It runs last, after every option that adds mounts.
func withHardenedBinds() oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		for i := range s.Mounts {
			m := &s.Mounts[i]
			if !isBind(*m) {
				continue
			}
			for _, o := range []string{"nosuid", "nodev"} {
				if !slices.Contains(m.Options, o) {
					m.Options = append(m.Options, o)
				}
			}
			m.Options = slices.DeleteFunc(m.Options, func(o string) bool { return o == "suid" || o == "dev" })
		}
		return nil
	}
}

func isBind(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// IDMap maps a container's ids 0..Size-1 to the host's HostUID.. and
// HostGID.. (-userns-remap UID:GID:SIZE).
type IDMap struct {
	HostUID, HostGID, Size uint32
}

// ParseIDMap reads UID:GID:SIZE.
func ParseIDMap(s string) (*IDMap, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%q is not UID:GID:SIZE (e.g. 100000:100000:65536)", s)
	}
	var v [3]uint32
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not UID:GID:SIZE: %q is not a number", s, p)
		}
		v[i] = uint32(n)
	}
	m := &IDMap{HostUID: v[0], HostGID: v[1], Size: v[2]}
	switch {
	case m.HostUID == 0 || m.HostGID == 0:
		return nil, fmt.Errorf("%q maps the containers' root to the host's root, which is no remapping", s)
	case m.Size < 1001:
		// The containers' default user is 1000: it must be inside the range.
		return nil, fmt.Errorf("%q: SIZE must be at least 1001 so that uid 1000 is mapped (65536 is usual)", s)
	case uint64(m.HostUID)+uint64(m.Size) > 1<<32-1 || uint64(m.HostGID)+uint64(m.Size) > 1<<32-1:
		return nil, fmt.Errorf("%q: the range goes past the largest id", s)
	}
	return m, nil
}

// hostUID is the host's uid for a container uid (itself without a map).
func (m *IDMap) hostUID(uid uint32) uint32 {
	if m == nil {
		return uid
	}
	return m.HostUID + uid
}

func (m *IDMap) hostGID(gid uint32) uint32 {
	if m == nil {
		return gid
	}
	return m.HostGID + gid
}

// ContainerUID is the container's uid of a host uid, if the map has it.
func (m *IDMap) ContainerUID(hostUID uint32) (uint32, bool) {
	if hostUID < m.HostUID || hostUID-m.HostUID >= m.Size {
		return 0, false
	}
	return hostUID - m.HostUID, true
}

// ContainerGID is the container's gid of a host gid, if the map has it.
func (m *IDMap) ContainerGID(hostGID uint32) (uint32, bool) {
	if hostGID < m.HostGID || hostGID-m.HostGID >= m.Size {
		return 0, false
	}
	return hostGID - m.HostGID, true
}

// Contains tells whether a container user, with its groups, is inside the map.
func (m *IDMap) contains(u runtime.User) bool {
	if m == nil {
		return true
	}
	if u.UID >= m.Size || u.GID >= m.Size {
		return false
	}
	for _, g := range u.AdditionalGIDs {
		if g >= m.Size {
			return false
		}
	}
	return true
}

func withUserNamespace(m *IDMap) oci.SpecOpts {
	return oci.WithUserNamespace(
		[]specs.LinuxIDMapping{{ContainerID: 0, HostID: m.HostUID, Size: m.Size}},
		[]specs.LinuxIDMapping{{ContainerID: 0, HostID: m.HostGID, Size: m.Size}})
}

// seccompAction tells whether runtime-spec defines the action; a profile
// naming another is refused rather than left for runc to fail on at each
// start.
func seccompAction(a specs.LinuxSeccompAction) bool {
	switch a {
	case specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap, specs.ActErrno,
		specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify:
		return true
	}
	return false
}

// LoadSeccompProfile reads an OCI seccomp profile (the linux.seccomp object
// of runtime-spec, as JSON) for -seccomp-profile, refusing what runc would
// refuse at every container start: an unreadable file, unknown fields, an
// action that does not exist, a rule without syscall names.
func LoadSeccompProfile(path string) (*specs.LinuxSeccomp, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seccomp profile: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var p specs.LinuxSeccomp
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("seccomp profile %s is not an OCI seccomp profile (runtime-spec linux.seccomp as JSON): %w", path, err)
	}
	var errs []error
	if p.DefaultAction == "" {
		errs = append(errs, errors.New("defaultAction is required"))
	} else if !seccompAction(p.DefaultAction) {
		errs = append(errs, fmt.Errorf("defaultAction %q is not a seccomp action", p.DefaultAction))
	}
	for i, sc := range p.Syscalls {
		if len(sc.Names) == 0 {
			errs = append(errs, fmt.Errorf("syscalls[%d] names no syscall", i))
		}
		if !seccompAction(sc.Action) {
			errs = append(errs, fmt.Errorf("syscalls[%d] action %q is not a seccomp action", i, sc.Action))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
	}
	return &p, nil
}
