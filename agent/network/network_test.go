package network_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/agent/network"
	"github.com/berth-cluster/berth/agent/testenv"
)

// newManager starts a Manager on the real host with the test's own names.
func newManager(t *testing.T, dir string, tweak ...func(*network.Config)) (*network.Manager, testenv.NetworkNames) {
	t.Helper()
	names := testenv.Network(t)
	cfg := network.Config{BinDir: testenv.CNIBinDir, StateDir: dir, CIDR: names.CIDR, Egress: true,
		BridgePrefix: names.BridgePrefix, ChainPrefix: names.ChainPrefix}
	for _, f := range tweak {
		f(&cfg)
	}
	m, err := network.New(context.Background(), cfg, network.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return m, names
}

// inNS runs a command in a pinned network namespace.
func inNS(ns string, args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"--net=" + ns}, args...)...).CombinedOutput()
	return string(out), err
}

func TestASessionNetworkIsMadeAndRemovedWhole(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m, names := newManager(t, dir)
	var atts []network.Attachment
	for i := range 2 {
		att, err := m.Attach(ctx, network.Request{ContainerID: "s1-" + string(rune('0'+i)), SessionID: "s1", Index: i, Size: 2, Egress: true, Hostname: "h"})
		if err != nil {
			t.Fatal(err)
		}
		atts = append(atts, att)
	}
	if atts[0].Address.String() != names.CIDR.Addr().Next().Next().String() {
		t.Errorf("container 0 has %s, want the block's .2", atts[0].Address)
	}
	hosts, err := os.ReadFile(atts[1].Hosts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hosts), atts[0].Address.String()+"\tmain1\n") || !strings.Contains(string(hosts), atts[1].Address.String()+"\tsub1 h\n") {
		t.Errorf("/etc/hosts of sub1:\n%s", hosts)
	}
	if atts[1].Env["BERTH_CLUSTER_ROLE"] != "sub" || atts[1].Env["BERTH_CLUSTER_HOSTS"] != "main1,sub1" {
		t.Errorf("env %v", atts[1].Env)
	}
	// The two namespaces reach each other over the session's bridge.
	if out, err := inNS(atts[0].NetNS, "busybox", "ping", "-c", "1", "-W", "2", atts[1].Address.String()); err != nil {
		t.Errorf("main1 cannot ping sub1: %v\n%s", err, out)
	}
	if out, _ := inNS(atts[0].NetNS, "cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6"); strings.TrimSpace(out) != "1" {
		t.Errorf("IPv6 is on in the namespace: %q", out)
	}
	for _, a := range atts {
		if err := m.Detach(ctx, filepath.Base(a.NetNS)); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{"ns", "sessions", "ipam"} {
		if entries, _ := os.ReadDir(filepath.Join(dir, sub)); len(entries) != 0 {
			t.Errorf("%s still holds %d entries", sub, len(entries))
		}
	}
	if out, _ := exec.Command("ip", "link", "show", names.BridgePrefix+"0").CombinedOutput(); !strings.Contains(string(out), "does not exist") {
		t.Errorf("the bridge is still there: %s", out)
	}
}

// The agent's jumps stay first: a rule another tool put above them is
// passed again, and the jump is never doubled.
func TestTheJumpsAreFirstAgain(t *testing.T) {
	_, names := newManager(t, t.TempDir())
	in := names.ChainPrefix + "-INPUT"
	if out, err := exec.Command("iptables", "-w", "10", "-I", "INPUT", "1", "-s", "192.0.2.254/32", "-j", "ACCEPT").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	defer exec.Command("iptables", "-w", "10", "-D", "INPUT", "-s", "192.0.2.254/32", "-j", "ACCEPT").Run()
	if err := (network.Iptables{}).EnsureFirst(context.Background(), "INPUT", in); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("iptables", "-w", "10", "-S", "INPUT").Output()
	if err != nil {
		t.Fatal(err)
	}
	rules := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(rules) < 2 || rules[1] != "-A INPUT -j "+in || strings.Count(string(out), "-j "+in+"\n") != 1 {
		t.Errorf("INPUT after EnsureFirst:\n%s", out)
	}
}
