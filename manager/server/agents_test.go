package server_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
	"github.com/berth-cluster/berth/shared/slots"
)

// agentClient is an agent's client of every manager of c, with failover.
func agentClient(t *testing.T, c *testcluster.Cluster, secret string) *client.Client {
	t.Helper()
	addrs := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		addrs[i] = testcluster.URL(s)
	}
	cl, err := client.New(client.Config{Addrs: addrs, TLS: c.ClientTLS(), Token: secret, MaxAttempts: 40, RetryBackoff: 100 * time.Millisecond,
		Header: http.Header{api.AgentTokenHeader: {"agents-welcome"}}})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestAgentsStayAliveAcrossLeaderFailover: agents beat through a client
// that fails over; their replicated last_heartbeat_at is older than the
// timeout when the leader dies (beats without news are not written), so
// only the new leader's grace period keeps them from being marked LOST.
// The agents' records must not change at all: a LOST-then-ALIVE flap would
// write them twice.
func TestAgentsStayAliveAcrossLeaderFailover(t *testing.T) {
	const timeout = 3 * time.Second
	c := testcluster.Start(t, 3, func(cfg *server.Config) {
		cfg.AgentToken = "agents-welcome"
		cfg.HeartbeatTimeout = timeout
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var ids []string
	var clients []*client.Client
	capacity := slots.Slots{slots.CPU: 4000, slots.Mem: 8 << 30}
	for i := range 2 {
		reg, err := agentClient(t, c, "").RegisterAgent(ctx, api.AgentRegister{
			Address: fmt.Sprintf("10.0.0.%d:6001", i+1), Capacity: capacity, Images: []api.Image{}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, reg.ID)
		clients = append(clients, agentClient(t, c, reg.Secret))
	}

	// Beat every 200 ms until the test ends, counting successes.
	var beats atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := cl.AgentHeartbeat(ctx, ids[i], api.AgentHeartbeat{Capacity: capacity}); err == nil {
					beats.Add(1)
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	old := c.Leader()
	modified := map[string]uint64{}
	for _, id := range ids {
		a, _ := old.State().Read().Agent(id)
		modified[id] = a.ModifyIndex
	}
	// Beat for longer than the timeout first, so the replicated
	// last_heartbeat_at (the registration's) is older than the timeout.
	start := time.Now()
	testcluster.Eventually(t, 20*time.Second, func() error {
		if since := time.Since(start); since < timeout+time.Second {
			return fmt.Errorf("beating for %s", since)
		}
		return nil
	})

	c.Kill(c.Index(old))
	leader := c.Leader()
	elected := time.Now()
	atElection := beats.Load()
	// The new leader has judged for longer than the timeout, and the
	// agents reached it many times meanwhile.
	testcluster.Eventually(t, 30*time.Second, func() error {
		if since := time.Since(elected); since < timeout+time.Second {
			return fmt.Errorf("the new leader has judged for %s", since)
		}
		if n := beats.Load() - atElection; n < 10 {
			return fmt.Errorf("%d heartbeats reached the new leader", n)
		}
		return nil
	})
	for _, id := range ids {
		a, err := leader.State().Read().Agent(id)
		if err != nil || a == nil {
			t.Fatalf("agent %s on the new leader: %v %v", id, a, err)
		}
		if a.Status != api.AgentAlive || a.ModifyIndex != modified[id] {
			t.Errorf("agent %s is %s, record modified at %d (was %d): the failover marked it LOST", id, a.Status, a.ModifyIndex, modified[id])
		}
	}
}
