package network

import (
	"context"
	"fmt"
	"net/netip"

	gocni "github.com/containerd/go-cni"
)

// CNI runs a session's configuration for one container. The product runs
// the plugins through go-cni; tests of the bookkeeping use a fake.
type CNI interface {
	// Add attaches the namespace (loopback, then the session's network)
	// with the address ip, and returns the address the plugins gave.
	Add(ctx context.Context, conf []byte, id, netns string, ip netip.Addr) (netip.Addr, error)
	// Del detaches it; it is safe to repeat, and to call on a namespace
	// that is gone (the plugins then free what they still can).
	Del(ctx context.Context, conf []byte, id, netns string) error
}

// goCNI runs CNI plugins from a directory through go-cni.
type goCNI struct{ binDir string }

// NewCNI is the product's CNI: the plugins of binDir.
func NewCNI(binDir string) CNI { return goCNI{binDir: binDir} }

func (g goCNI) load(conf []byte) (gocni.CNI, error) {
	// The session's network first (eth0), then loopback; a fresh instance
	// per call, since every session has a configuration of its own.
	return gocni.New(gocni.WithPluginDir([]string{g.binDir}), gocni.WithMinNetworkCount(2),
		gocni.WithConfListBytes(conf), gocni.WithLoNetwork)
}

// args asks host-local for the container's own address (CNI_ARGS IP),
// which plugins that do not know the key ignore.
func args(ip netip.Addr) []gocni.NamespaceOpts {
	return []gocni.NamespaceOpts{gocni.WithArgs("IgnoreUnknown", "1"), gocni.WithArgs("IP", ip.String())}
}

func (g goCNI) Add(ctx context.Context, conf []byte, id, netns string, ip netip.Addr) (netip.Addr, error) {
	c, err := g.load(conf)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("load CNI configuration: %w", err)
	}
	res, err := c.SetupSerially(ctx, id, netns, args(ip)...)
	if err != nil {
		return netip.Addr{}, err
	}
	if eth, ok := res.Interfaces["eth0"]; ok {
		for _, ipc := range eth.IPConfigs {
			if a, ok := netip.AddrFromSlice(ipc.IP.To4()); ok {
				return a, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("the CNI plugins gave eth0 no IPv4 address")
}

func (g goCNI) Del(ctx context.Context, conf []byte, id, netns string) error {
	c, err := g.load(conf)
	if err != nil {
		return fmt.Errorf("load CNI configuration: %w", err)
	}
	return c.Remove(ctx, id, netns)
}
