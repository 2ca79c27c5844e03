package network

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The addresses of a session's /25, block k of the CIDR: .1 is the
// gateway (the host's side of the bridge), container i is at .2+i, so
// every container's address — and the session's /etc/hosts — is known
// before any of them starts.

// blocks is how many session subnets the CIDR holds.
func blocks(cidr netip.Prefix) int {
	return min(1<<(SessionPrefixLen-cidr.Bits()), maxBlocks)
}

// blockSubnet is the k-th /25 of the CIDR.
func blockSubnet(cidr netip.Prefix, k int) netip.Prefix {
	base := cidr.Masked().Addr().As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	n += uint32(k) << (32 - SessionPrefixLen)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), SessionPrefixLen)
}

func offset(subnet netip.Prefix, i int) netip.Addr {
	a := subnet.Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n += uint32(i)
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// gateway is the host's address on the session's bridge.
func gateway(subnet netip.Prefix) netip.Addr { return offset(subnet, 1) }

// maxContainers is how many containers a session subnet holds (the
// network, the gateway and the broadcast address are not theirs).
const maxContainers = 1<<(32-SessionPrefixLen) - 3

// containerAddr is container i's address in the session's subnet.
func containerAddr(subnet netip.Prefix, i int) (netip.Addr, error) {
	if i < 0 || i >= maxContainers {
		return netip.Addr{}, fmt.Errorf("container index %d: a session network holds containers 0 to %d", i, maxContainers-1)
	}
	return offset(subnet, 2+i), nil
}

// bridgeName is block k's bridge.
func bridgeName(prefix string, k int) string { return prefix + strconv.Itoa(k) }

// blockOf reads a bridge name back (-1: not one of ours).
func blockOf(prefix, name string) int {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || rest == "" {
		return -1
	}
	k, err := strconv.Atoi(rest)
	if err != nil || k < 0 || strconv.Itoa(k) != rest || k >= maxBlocks {
		return -1
	}
	return k
}

// HostName is container i's name in its session's /etc/hosts: main1 for
// container 0, sub1, sub2, … for the others.
func HostName(i int) string {
	if i == 0 {
		return "main1"
	}
	return "sub" + strconv.Itoa(i)
}

// ClusterEnv is what each container learns of its session's cluster.
func ClusterEnv(index, size int) map[string]string {
	size = max(size, 1)
	names := make([]string, size)
	for i := range names {
		names[i] = HostName(i)
	}
	role, idx := "main", 1
	if index > 0 {
		role, idx = "sub", index
	}
	return map[string]string{
		"BERTH_CLUSTER_HOSTS": strings.Join(names, ","),
		"BERTH_CLUSTER_ROLE":  role,
		"BERTH_CLUSTER_IDX":   strconv.Itoa(idx),
		"BERTH_CLUSTER_SIZE":  strconv.Itoa(size),
	}
}
