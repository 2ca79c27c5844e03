package agent

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/network"
	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
)

// fakeNetwork attaches by the book without touching the host.
type fakeNetwork struct {
	attachErr error
	attached  map[string]network.Request
	detached  []string
}

func (n *fakeNetwork) Attach(_ context.Context, r network.Request) (network.Attachment, error) {
	if n.attachErr != nil {
		return network.Attachment{}, n.attachErr
	}
	n.attached[r.ContainerID] = r
	return network.Attachment{NetNS: "/ns/" + r.ContainerID, Address: netip.MustParseAddr("10.88.0.2"), Hosts: "/h", ResolvConf: "/r",
		Env: network.ClusterEnv(r.Index, r.Size)}, nil
}
func (n *fakeNetwork) Detach(_ context.Context, id string) error {
	delete(n.attached, id)
	n.detached = append(n.detached, id)
	return nil
}
func (n *fakeNetwork) Address(id string) (netip.Addr, bool) {
	_, ok := n.attached[id]
	return netip.MustParseAddr("10.88.0.2"), ok
}
func (n *fakeNetwork) Sweep(context.Context, map[string]bool) error { return nil }
func (n *fakeNetwork) Ensure(context.Context) error                 { return nil }
func (n *fakeNetwork) Facts() network.Facts                         { return network.Facts{Mode: network.Mode} }

// A container starts in the namespace its network made, with /etc/hosts,
// /etc/resolv.conf and the cluster's variables, which win over the
// session's own; the report carries its address; removing it detaches it.
// A failed attach fails the start with the plugin's words and starts
// nothing; a failed run detaches what was attached.
func TestContainersStartOnTheirSessionsNetworkAndLeaveIt(t *testing.T) {
	rt := newFakeRuntime("img")
	clk := &clock{now: time.Unix(1000, 0)}
	c := newTestConverger(rt, clk)
	n := &fakeNetwork{attached: map[string]network.Request{}}
	c.net = n
	d := desired("a", "img")
	d.Index, d.ClusterSize, d.NoEgress = 1, 2, true
	d.Env = map[string]string{"BERTH_CLUSTER_ROLE": "main", "KEEP": "1"}
	c.setDesired([]api.DesiredContainer{d})
	if err := c.converge(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rt.runs) != 1 {
		t.Fatalf("runs %+v", rt.runs)
	}
	s := rt.runs[0]
	if s.NetNS != "/ns/a" || s.Env["BERTH_CLUSTER_ROLE"] != "sub" || s.Env["BERTH_CLUSTER_HOSTS"] != "main1,sub1" || s.Env["KEEP"] != "1" {
		t.Errorf("spec: netns %q, env %v", s.NetNS, s.Env)
	}
	if !hasMount(s.Mounts, "/h", "/etc/hosts") || !hasMount(s.Mounts, "/r", "/etc/resolv.conf") {
		t.Errorf("mounts %+v", s.Mounts)
	}
	if r := n.attached["a"]; r.Egress || r.Size != 2 || r.SessionID != "s-a" {
		t.Errorf("attach request %+v", r)
	}
	if r := reportByID(t, c)["a"]; r.Address != "10.88.0.2" {
		t.Errorf("report %+v", r)
	}
	c.setDesired(nil, "a")
	if err := c.converge(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.waitStops()
	if len(n.detached) != 1 || n.detached[0] != "a" {
		t.Errorf("detached %v", n.detached)
	}

	// The plugin fails: nothing runs, the reason says why.
	n.attachErr = errors.New(`CNI: plugin type="bridge" failed (add): no bridge today`)
	c.setDesired([]api.DesiredContainer{desired("b", "img")})
	if err := c.converge(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := reportByID(t, c)["b"]; r.Status != api.ContainerFailed || !strings.Contains(r.Reason, "network: CNI: plugin type=\"bridge\" failed (add): no bridge today") {
		t.Errorf("report of a failed attach %+v", r)
	}
	if len(rt.runs) != 1 {
		t.Errorf("a container ran without its network: %+v", rt.runs[1:])
	}
	// The runtime fails: what was attached is detached.
	n.attachErr = nil
	c.setDesired([]api.DesiredContainer{desired("c", "missing-image")})
	if err := c.converge(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, still := n.attached["c"]; still || n.detached[len(n.detached)-1] != "c" {
		t.Errorf("a container that did not start is still attached: %v, detached %v", n.attached, n.detached)
	}
}

func hasMount(ms []runtime.Mount, src, target string) bool {
	for _, m := range ms {
		if m.Source == src && m.Target == target && m.ReadOnly {
			return true
		}
	}
	return false
}
