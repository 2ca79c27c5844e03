// Package network gives every session of the agent a network of its own
// through CNI (github.com/containerd/go-cni and the standard plugins): a
// bridge and a subnet per session, carved out of -session-cidr, names for
// its containers in /etc/hosts, and the host's firewall rules that keep
// sessions from each other, from the host and from the link-local metadata
// range (agent/DESIGN.md, "Session networks").
//
// Everything it needs after a restart is on disk under its state
// directory: one record per session, the CNI configuration each session
// was attached with, the containers' named network namespaces and
// host-local's leases. A new Manager on the same directory re-attaches, and
// sweeps what no live container owns.
package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Defaults of Config.
const (
	DefaultBinDir = "/usr/lib/cni"
	// DefaultCIDR is containerd's and Podman's customary range: every
	// session gets a /25 of it (512 sessions a node).
	DefaultCIDR = "10.88.0.0/16"
	// DefaultBridgePrefix names the bridges: berth0, berth1, …
	DefaultBridgePrefix = "berth"
	// DefaultChainPrefix names the agent's iptables chains: BERTH-INPUT,
	// BERTH-FORWARD.
	DefaultChainPrefix = "BERTH"
	// SessionPrefixLen is the size of each session's subnet: 125
	// containers besides the gateway, more than any policy allows (100).
	SessionPrefixLen = 25
	// maxBlocks bounds the bridges' numbers to four digits (IFNAMSIZ).
	maxBlocks = 4096
)

// MetadataRange is the link-local range of cloud metadata services, never
// reachable from a session.
var MetadataRange = netip.MustParsePrefix("169.254.0.0/16")

// Debian's package that provides the plugins, named when one is missing.
const pluginPackage = "containernetworking-plugins"

// requiredPlugins are what the agent's own configuration runs: the bridge
// and its addresses, and each container's loopback.
var requiredPlugins = []string{"bridge", "host-local", "loopback"}

// Config is how the agent networks its sessions.
type Config struct {
	// BinDir holds the CNI plugins (-cni-bin-dir).
	BinDir string
	// ConfDir, when set, holds the operator's conflist (-cni-conf-dir): its
	// first *.conflist is every session's template. Empty: the agent writes
	// its own (DefaultConflist) under StateDir/cni.
	ConfDir string
	// StateDir is the network's own directory (records, leases, netns).
	StateDir string
	// CIDR is -session-cidr; every session gets a /25 of it.
	CIDR netip.Prefix
	// Egress lets sessions reach beyond the node (-session-egress); a
	// session's policy can still deny it for that session.
	Egress bool
	// AllowHostPorts are the host's ports sessions may reach
	// (-session-allow-host-port); nothing else of the host is reachable.
	AllowHostPorts []HostPort
	// BridgePrefix and ChainPrefix name the host objects the agent owns
	// (tests run several agents on one host, each with its own).
	BridgePrefix, ChainPrefix string
	// ResolvConf is the host's resolver file the sessions' one is made
	// from (default /etc/resolv.conf).
	ResolvConf string
}

// HostPort is a port of the host that sessions may reach.
type HostPort struct {
	Port  uint16
	Proto string // tcp or udp
}

func (h HostPort) String() string { return strconv.Itoa(int(h.Port)) + "/" + h.Proto }

// ParseHostPorts reads -session-allow-host-port: PORT[/tcp|/udp], comma
// separated (tcp when not said).
func ParseHostPorts(s string) ([]HostPort, error) {
	var out []HostPort
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		num, proto, _ := strings.Cut(f, "/")
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" {
			return nil, fmt.Errorf("%q: the protocol must be tcp or udp", f)
		}
		n, err := strconv.ParseUint(num, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%q: the port must be from 1 to 65535", f)
		}
		hp := HostPort{Port: uint16(n), Proto: proto}
		if !slices.Contains(out, hp) {
			out = append(out, hp)
		}
	}
	return out, nil
}

// ParseCIDR reads -session-cidr: an IPv4 network that holds at least one
// session's /25.
func ParseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a network (e.g. %s): %w", s, DefaultCIDR, err)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%s: sessions get IPv4 networks only", p)
	}
	if p.Bits() > SessionPrefixLen {
		return netip.Prefix{}, fmt.Errorf("%s is smaller than one session's /%d", p, SessionPrefixLen)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set (did you mean %s?)", p, p.Masked())
	}
	if p.Overlaps(MetadataRange) || p.Overlaps(netip.MustParsePrefix("127.0.0.0/8")) {
		return netip.Prefix{}, fmt.Errorf("%s overlaps the loopback or link-local range", p)
	}
	return p, nil
}

func (c *Config) defaults() error {
	if c.BinDir == "" {
		c.BinDir = DefaultBinDir
	}
	if !c.CIDR.IsValid() {
		c.CIDR = netip.MustParsePrefix(DefaultCIDR)
	}
	if c.BridgePrefix == "" {
		c.BridgePrefix = DefaultBridgePrefix
	}
	if c.ChainPrefix == "" {
		c.ChainPrefix = DefaultChainPrefix
	}
	if c.ResolvConf == "" {
		c.ResolvConf = "/etc/resolv.conf"
	}
	if c.StateDir == "" {
		return errors.New("network: no state directory")
	}
	if len(c.BridgePrefix)+len(strconv.Itoa(maxBlocks-1)) > 15 {
		return fmt.Errorf("network: bridge prefix %q is too long for an interface name", c.BridgePrefix)
	}
	return nil
}

// checkPlugins finds every plugin the configuration runs in BinDir, or
// says which are missing and where they come from.
func checkPlugins(binDir string, types []string) error {
	var missing []string
	for _, t := range types {
		st, err := os.Stat(filepath.Join(binDir, t))
		if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("CNI plugin(s) %s not found in -cni-bin-dir %s: install Debian's %s (apt-get install %s), which provides them in %s",
		strings.Join(missing, ", "), binDir, pluginPackage, pluginPackage, DefaultBinDir)
}

// Plugins lists the executables of a CNI plugin directory, sorted.
func Plugins(binDir string) []string {
	entries, err := os.ReadDir(binDir)
	if err != nil {
		return []string{}
	}
	out := []string{}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			out = append(out, e.Name())
		}
	}
	return out
}
