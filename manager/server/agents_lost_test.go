package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
	"github.com/berth-cluster/berth/shared/slots"
)

// TestLeaderKilledWhileAnAgentIsDeclaredLostFreesItsSlotsOnce: the leader
// dies around the moment it declares a silent agent LOST, so the entry may
// or may not have been committed. Whichever way it went, every manager
// (the restarted one included, replaying the log) ends with the agent LOST,
// its session ERROR once, and no slot freed twice: usage equals what the
// session records make of it, the keypair holds nothing.
func TestLeaderKilledWhileAnAgentIsDeclaredLostFreesItsSlotsOnce(t *testing.T) {
	const timeout = 2 * time.Second
	c := testcluster.Start(t, 3, func(cfg *server.Config) {
		cfg.AgentToken = "agents-welcome"
		cfg.HeartbeatTimeout = timeout
		cfg.DisconnectGrace = timeout // LOST at once after DISCONNECTED: this test is about the loss
		cfg.UsageCheckEvery = -1      // the test looks for drift itself
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	capacity := slots.Slots{slots.CPU: 4000, slots.Mem: 8 << 30}
	reg, err := agentClient(t, c, "").RegisterAgent(ctx, api.AgentRegister{Address: "10.0.0.1:6001", Capacity: capacity,
		Images: []api.Image{{Name: "berth/base:latest", Digest: "sha256:aa", Size: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	ag := agentClient(t, c, reg.Secret)

	leader := c.Leader()
	admin, err := client.New(client.Config{Addrs: []string{testcluster.URL(leader)}, TLS: c.ClientTLS(),
		Token: c.Login(t, leader, testcluster.AdminEmail, testcluster.AdminPassword)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := admin.CreateSession(ctx, api.SessionCreate{Image: "berth/base:latest", Type: api.SessionInteractive,
		Resources: slots.Slots{slots.CPU: 1000, slots.Mem: 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	var lastBeat time.Time
	testcluster.Eventually(t, 30*time.Second, func() error {
		got, err := admin.GetSession(ctx, s.ID)
		if err != nil {
			return err
		}
		if got.Status == api.SessionPending {
			return fmt.Errorf("session is PENDING: %s", got.StatusInfo)
		}
		report := api.ContainerReport{ID: s.ID + "-0", SessionID: s.ID, Status: "running"}
		if _, err := ag.AgentHeartbeat(ctx, reg.ID, api.AgentHeartbeat{Capacity: capacity, Containers: []api.ContainerReport{report}}); err != nil {
			return err
		}
		lastBeat = time.Now()
		if got.Status != api.SessionRunning {
			return fmt.Errorf("session is %s", got.Status)
		}
		return nil
	})

	// Silence, then kill the leader as it judges the agent.
	testcluster.Eventually(t, 10*time.Second, func() error {
		if since := time.Since(lastBeat); since < timeout {
			return fmt.Errorf("silent for %s", since)
		}
		return nil
	})
	killed := c.Index(c.Leader())
	c.Kill(killed)
	c.Restart(killed)

	for _, m := range c.Running() {
		testcluster.Eventually(t, 30*time.Second, func() error {
			tx := m.State().Read()
			a, err := tx.Agent(reg.ID)
			if err != nil || a == nil || a.Status != state.AgentLost {
				return fmt.Errorf("manager %s: agent %+v (%v)", m.ID(), a, err)
			}
			sess, err := tx.Session(s.ID)
			if err != nil || sess == nil || sess.Status != api.SessionError || !strings.HasPrefix(sess.StatusInfo, "agent-lost: last heartbeat ") {
				return fmt.Errorf("manager %s: session %+v (%v)", m.ID(), sess, err)
			}
			return nil
		})
		tx := m.State().Read()
		sess, _ := tx.Session(s.ID)
		errors := 0
		for _, h := range sess.StatusHistory {
			if h.Status == api.SessionError {
				errors++
			}
		}
		if errors != 1 {
			t.Errorf("manager %s: the session became ERROR %d times: %+v", m.ID(), errors, sess.StatusHistory)
		}
		if drift, err := tx.UsageDrifts(); err != nil || len(drift) != 0 {
			t.Errorf("manager %s: usage drifted: %+v (%v)", m.ID(), drift, err)
		}
		used, n, err := tx.KeypairUsage(sess.AccessKey)
		if err != nil || n != 0 || len(used) != 0 {
			t.Errorf("manager %s: the keypair still holds %v in %d sessions (%v)", m.ID(), used, n, err)
		}
		if onAgent, err := tx.AgentUsages(); err != nil || len(onAgent) != 0 {
			t.Errorf("manager %s: agents still hold %v (%v)", m.ID(), onAgent, err)
		}
	}
}
