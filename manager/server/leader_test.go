package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
)

// A manager that wins an election but cannot set its leadership up hands
// leadership to another instead of keeping it and doing nothing. Here m1
// and m2 cannot create the first-start objects (their bootstrap password
// breaks the policy: an injected failure) and m3, the only one that can,
// waits ten times longer before it stands for election, so m1 or m2 wins
// the first one. Kept, that leadership would leave the cluster without its
// first-start objects for good; handed over, it reaches m3, which creates
// them.
func TestALeaderThatCannotSetUpHandsLeadershipOver(t *testing.T) {
	c := testcluster.Start(t, 3, testcluster.InsecureRaft, func(cfg *server.Config) {
		if cfg.NodeID == "m3" {
			cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout = 5*time.Second, 5*time.Second
			return
		}
		cfg.BootstrapAdminPassword = "short" // refused by the password policy at setup
	})
	// Start waits until every manager has the first-start objects.
	if leader := c.Leader(); leader.ID() != "m3" {
		t.Fatalf("%s leads; only m3 can set up", leader.ID())
	}
	stepDowns := 0.0
	for _, s := range c.Servers[:2] {
		r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/metrics", "", nil)
		stepDowns += metricValue(string(r.Body), "berth_leader_step_downs_total")
	}
	if stepDowns < 1 {
		t.Fatalf("m1 and m2 stepped down %v times; one of them led first and could not set up", stepDowns)
	}
	testcluster.Login(t, c.Leader(), testcluster.AdminEmail, testcluster.AdminPassword)
}
