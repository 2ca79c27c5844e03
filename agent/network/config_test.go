package network

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost is a host with the routes and links a test says.
type fakeHost struct {
	routes  []Route
	links   []string
	deleted []string
}

func (h *fakeHost) Routes() ([]Route, error) { return h.routes, nil }
func (h *fakeHost) Links() ([]string, error) { return h.links, nil }
func (h *fakeHost) DeleteLink(name string) error {
	h.deleted = append(h.deleted, name)
	return nil
}

// fakeFirewall records the rules it was given.
type fakeFirewall struct {
	rules string
	jumps []string
}

func (f *fakeFirewall) Restore(_ context.Context, rules string) error { f.rules = rules; return nil }
func (f *fakeFirewall) EnsureFirst(_ context.Context, builtin, chain string) error {
	f.jumps = append(f.jumps, builtin+" -> "+chain)
	return nil
}

// pluginDir is a CNI bin dir holding executables of the names.
func pluginDir(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newTest(t *testing.T, cfg Config, h *fakeHost) (*Manager, *fakeFirewall, error) {
	t.Helper()
	if cfg.BinDir == "" {
		cfg.BinDir = pluginDir(t, "bridge", "host-local", "loopback", "portmap")
	}
	cfg.StateDir = filepath.Join(t.TempDir(), "net")
	fw := &fakeFirewall{}
	m, err := New(context.Background(), cfg, Deps{Host: h, Firewall: fw})
	return m, fw, err
}

// The agent refuses to start on a range the host already routes, naming
// the route; its own session bridges' routes (a restart) are not a
// collision, and neither is a route elsewhere.
func TestASessionRangeThatCollidesWithAHostRouteIsRefused(t *testing.T) {
	cidr := netip.MustParsePrefix("10.88.0.0/16")
	for _, tc := range []struct {
		name  string
		route Route
		want  string
	}{
		{"a LAN inside the range", Route{Dst: netip.MustParsePrefix("10.88.5.0/24"), Device: "eth1"},
			"-session-cidr 10.88.0.0/16 collides with the host's route to 10.88.5.0/24 (dev eth1): choose a range the host does not route"},
		{"a range around it", Route{Dst: netip.MustParsePrefix("10.0.0.0/8"), Device: "wg0"},
			"-session-cidr 10.88.0.0/16 collides with the host's route to 10.0.0.0/8 (dev wg0)"},
		{"its own session bridge", Route{Dst: netip.MustParsePrefix("10.88.0.0/25"), Device: "berth0"}, ""},
		{"another range", Route{Dst: netip.MustParsePrefix("192.168.1.0/24"), Device: "eth0"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := newTest(t, Config{CIDR: cidr}, &fakeHost{routes: []Route{tc.route}})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// Missing plugins are named with the package that provides them.
func TestMissingPluginsAreNamedWithTheirPackage(t *testing.T) {
	_, _, err := newTest(t, Config{BinDir: pluginDir(t, "bridge")}, &fakeHost{})
	want := "CNI plugin(s) host-local, loopback not found in -cni-bin-dir"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "apt-get install containernetworking-plugins") {
		t.Fatalf("got %v, want %q and the package", err, want)
	}
}

func TestFlagsAreCheckedWithTheReason(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.88.0.0/26", "smaller than one session's /25"},
		{"10.88.0.1/16", "has host bits set (did you mean 10.88.0.0/16?)"},
		{"fd00::/64", "IPv4 networks only"},
		{"169.254.0.0/16", "overlaps the loopback or link-local range"},
		{"ten", "is not a network"},
	} {
		if _, err := ParseCIDR(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("-session-cidr %s: %v, want %q", tc.in, err, tc.want)
		}
	}
	if p, err := ParseCIDR(DefaultCIDR); err != nil || blocks(p) != 512 {
		t.Errorf("the default range: %v, %d sessions", err, blocks(p))
	}
	for _, tc := range []struct{ in, want string }{
		{"0", "from 1 to 65535"}, {"65536", "from 1 to 65535"}, {"53/icmp", "tcp or udp"}, {"x", "from 1 to 65535"},
	} {
		if _, err := ParseHostPorts(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("-session-allow-host-port %s: %v, want %q", tc.in, err, tc.want)
		}
	}
	if got, err := ParseHostPorts("8000, 53/udp,8000/tcp"); err != nil || len(got) != 2 || got[1] != (HostPort{53, "udp"}) {
		t.Errorf("ports %v, %v", got, err)
	}
}

// The rules are one ordered list: what sessions may send to the host,
// then through it. The order is the policy, so it is pinned here.
func TestTheRulesKeepSessionsApart(t *testing.T) {
	got := renderRules("BERTH", netip.MustParsePrefix("10.88.0.0/16"), []HostPort{{53, "udp"}},
		[]sessionRule{{subnet: netip.MustParsePrefix("10.88.0.0/25"), egress: true}, {subnet: netip.MustParsePrefix("10.88.0.128/25")}})
	want := `*filter
:BERTH-INPUT - [0:0]
:BERTH-FORWARD - [0:0]
-A BERTH-INPUT -s 10.88.0.0/16 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A BERTH-INPUT -s 10.88.0.0/16 -p udp -m udp --dport 53 -j ACCEPT
-A BERTH-INPUT -s 10.88.0.0/16 -j DROP
-A BERTH-FORWARD -d 10.88.0.0/16 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A BERTH-FORWARD -s 10.88.0.0/25 -d 10.88.0.0/25 -j ACCEPT
-A BERTH-FORWARD -s 10.88.0.128/25 -d 10.88.0.128/25 -j ACCEPT
-A BERTH-FORWARD -s 10.88.0.0/16 -d 169.254.0.0/16 -j DROP
-A BERTH-FORWARD -s 10.88.0.0/16 -d 10.88.0.0/16 -j DROP
-A BERTH-FORWARD -d 10.88.0.0/16 -j DROP
-A BERTH-FORWARD -s 10.88.0.128/25 -j DROP
-A BERTH-FORWARD -s 10.88.0.0/16 -j ACCEPT
COMMIT
`
	if got != want {
		t.Errorf("rules:\n%s\nwant:\n%s", got, want)
	}
}

// The agent's own configuration is a bridge with host-local addresses and
// masquerading; each session gets it with its own bridge, subnet, leases
// directory, and masquerading only with egress. An operator's template
// keeps its other plugins and options, and one without a bridge plugin is
// refused.
func TestEachSessionGetsTheTemplateWithItsOwnBridgeAndSubnet(t *testing.T) {
	m, fw, err := newTest(t, Config{}, &fakeHost{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fw.rules, "-A BERTH-INPUT -s 10.88.0.0/16 -j DROP") || len(fw.jumps) != 2 {
		t.Errorf("the rules at start: %s, jumps %v", fw.rules, fw.jumps)
	}
	raw, err := os.ReadFile(m.template)
	if err != nil || !strings.Contains(string(raw), `"bridge": "berth0"`) || !strings.Contains(string(raw), `"subnet": "10.88.0.0/16"`) {
		t.Fatalf("the default conflist %s: %v\n%s", m.template, err, raw)
	}
	conf, err := sessionConflist(m.tmpl, "berth3", blockSubnet(m.cfg.CIDR, 3), false, "/state/ipam")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Name    string `json:"name"`
		Plugins []struct {
			Type   string `json:"type"`
			Bridge string `json:"bridge"`
			IPMasq bool   `json:"ipMasq"`
			IPAM   struct {
				Ranges  [][]map[string]string `json:"ranges"`
				DataDir string                `json:"dataDir"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(conf, &doc); err != nil {
		t.Fatal(err)
	}
	p := doc.Plugins[0]
	if doc.Name != "berth3" || p.Bridge != "berth3" || p.IPMasq || p.IPAM.DataDir != "/state/ipam" ||
		p.IPAM.Ranges[0][0]["subnet"] != "10.88.1.128/25" || p.IPAM.Ranges[0][0]["gateway"] != "10.88.1.129" {
		t.Errorf("session conflist:\n%s", conf)
	}

	dir := t.TempDir()
	op := `{"cniVersion":"1.0.0","name":"lab","plugins":[{"type":"bridge","bridge":"lab0","mtu":1400,"ipam":{"type":"host-local","subnet":"10.1.0.0/16"}},{"type":"tuning","sysctl":{"net.core.somaxconn":"512"}}]}`
	if err := os.WriteFile(filepath.Join(dir, "10-lab.conflist"), []byte(op), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = newTest(t, Config{ConfDir: dir}, &fakeHost{})
	if err == nil || !strings.Contains(err.Error(), "CNI plugin(s) tuning not found") {
		t.Fatalf("a template whose plugin is missing: %v", err)
	}
	m, _, err = newTest(t, Config{ConfDir: dir, BinDir: pluginDir(t, "bridge", "host-local", "loopback", "tuning")}, &fakeHost{})
	if err != nil {
		t.Fatal(err)
	}
	conf, err = sessionConflist(m.tmpl, "berth0", blockSubnet(m.cfg.CIDR, 0), true, "/ipam")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"mtu": 1400`, `"type": "tuning"`, `"subnet": "10.88.0.0/25"`, `"ipMasq": true`} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("the operator's template made into a session's lacks %s:\n%s", want, conf)
		}
	}
	if strings.Contains(string(conf), "10.1.0.0/16") {
		t.Errorf("the template's own subnet is still there:\n%s", conf)
	}
	if err := os.WriteFile(filepath.Join(dir, "10-lab.conflist"), []byte(`{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"macvlan","master":"eth0","ipam":{"type":"dhcp"}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := newTest(t, Config{ConfDir: dir}, &fakeHost{}); err == nil || !strings.Contains(err.Error(), "runs no bridge plugin") {
		t.Fatalf("a template without a bridge: %v", err)
	}
}

func TestHostsAndClusterEnvNameEveryContainer(t *testing.T) {
	got := string(hostsFile(netip.MustParsePrefix("10.88.0.128/25"), 3, 2, "s-x-2"))
	want := "127.0.0.1\tlocalhost\n10.88.0.130\tmain1\n10.88.0.131\tsub1\n10.88.0.132\tsub2 s-x-2\n"
	if got != want {
		t.Errorf("hosts:\n%s\nwant:\n%s", got, want)
	}
	env := ClusterEnv(2, 3)
	if env["BERTH_CLUSTER_HOSTS"] != "main1,sub1,sub2" || env["BERTH_CLUSTER_ROLE"] != "sub" || env["BERTH_CLUSTER_IDX"] != "2" || env["BERTH_CLUSTER_SIZE"] != "3" {
		t.Errorf("env %v", env)
	}
	if env := ClusterEnv(0, 1); env["BERTH_CLUSTER_ROLE"] != "main" || env["BERTH_CLUSTER_IDX"] != "1" || env["BERTH_CLUSTER_HOSTS"] != "main1" {
		t.Errorf("env of a single container %v", env)
	}
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch lab\noptions edns0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := string(resolvConf(resolv)); strings.Contains(got, "127.0.0.53") || !strings.Contains(got, "nameserver 192.0.2.53\nsearch lab\noptions edns0\n") {
		t.Errorf("resolv.conf:\n%s", got)
	}
}
