package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"testing"
	"time"
)

// Netns is a network namespace of one test joined to the host by a veth
// pair: the host end has HostAddr, the namespace's end AgentAddr (a /30
// of 10.208.0.0/12 no route of the host covers). A process started with
// Exec's prefix runs inside it and reaches the host only through the
// link, which Cut and Restore take down and up from the namespace's side.
type Netns struct {
	t         testing.TB
	Name      string
	HostAddr  netip.Addr
	AgentAddr netip.Addr
	inner     string // the namespace's end of the veth pair
}

// NewNetns makes the namespace and its link; both are removed when the
// test ends. Without root or ip it skips the test (fails it when CI=true).
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces)")
	}
	if _, err := lookPath("ip"); err != nil {
		missing = append(missing, "ip (Debian package iproute2, scripts/install-deps.sh)")
	}
	unavailable(t, "a network namespace", missing)
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(b[:])
	n := &Netns{t: t, Name: "btns" + h, inner: "btvi" + h[:8]}
	outer := "btvo" + h[:8]
	for try := 0; ; try++ {
		var r [3]byte
		if _, err := rand.Read(r[:]); err != nil {
			t.Fatal(err)
		}
		base := [4]byte{10, 208 + r[0]%16, r[1], r[2] &^ 3}
		n.HostAddr, n.AgentAddr = netip.AddrFrom4([4]byte{base[0], base[1], base[2], base[3] + 1}), netip.AddrFrom4([4]byte{base[0], base[1], base[2], base[3] + 2})
		match, err := run(10*time.Second, "ip", "-4", "route", "show", "match", netip.PrefixFrom(netip.AddrFrom4(base), 30).String())
		if err == nil && !routed(string(match)) || try > 20 {
			break
		}
	}
	t.Cleanup(func() {
		// Deleting the namespace deletes its end of the pair, and so both.
		if out, err := run(10*time.Second, "ip", "netns", "del", n.Name); err != nil {
			t.Errorf("remove network namespace %s: %v %s", n.Name, err, out)
		}
		_, _ = run(10*time.Second, "ip", "link", "del", outer)
	})
	for _, cmd := range [][]string{
		{"ip", "netns", "add", n.Name},
		{"ip", "link", "add", outer, "type", "veth", "peer", "name", n.inner, "netns", n.Name},
		{"ip", "addr", "add", n.HostAddr.String() + "/30", "dev", outer},
		{"ip", "link", "set", outer, "up"},
		{"ip", "netns", "exec", n.Name, "ip", "addr", "add", n.AgentAddr.String() + "/30", "dev", n.inner},
		{"ip", "netns", "exec", n.Name, "ip", "link", "set", n.inner, "up"},
		{"ip", "netns", "exec", n.Name, "ip", "link", "set", "lo", "up"},
	} {
		if out, err := run(10*time.Second, cmd[0], cmd[1:]...); err != nil {
			t.Fatalf("%v: %v %s", cmd, err, out)
		}
	}
	return n
}

// Exec is the command prefix that runs a program inside the namespace.
func (n *Netns) Exec() []string { return []string{"ip", "netns", "exec", n.Name} }

// Cut takes the namespace's end of the link down: nothing inside reaches
// the host any more.
func (n *Netns) Cut() { n.link("down") }

// Restore brings the link up again.
func (n *Netns) Restore() { n.link("up") }

func (n *Netns) link(state string) {
	n.t.Helper()
	if out, err := run(10*time.Second, "ip", "netns", "exec", n.Name, "ip", "link", "set", n.inner, state); err != nil {
		n.t.Fatalf("set the link %s %s: %v %s", n.inner, state, err, out)
	}
}
