package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/httpapi"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

// adminClient is the superadmin's client of servers, managers of c.
func adminClient(t *testing.T, c *testcluster.Cluster, servers ...*server.Server) *client.Client {
	t.Helper()
	addrs := make([]string, len(servers))
	for i, s := range servers {
		addrs[i] = testcluster.URL(s)
	}
	token := c.Login(t, servers[0], testcluster.AdminEmail, testcluster.AdminPassword)
	cl, err := client.New(client.Config{Addrs: addrs, TLS: c.ClientTLS(), Token: token, MaxAttempts: 40, RetryBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func createUser(ctx context.Context, c *client.Client, n int) error {
	_, err := c.CreateUser(ctx, map[string]any{
		"email": fmt.Sprintf("user%d@example.com", n), "username": fmt.Sprintf("user%d", n), "password": "Passw0rd!",
	})
	return err
}

// waitHasUsers waits until s has applied every user in emails.
func waitHasUsers(t *testing.T, s *server.Server, emails []string) {
	t.Helper()
	testcluster.Eventually(t, 20*time.Second, func() error {
		tx := s.State().Read()
		for _, e := range emails {
			if u, err := tx.User(e); err != nil || u == nil {
				return fmt.Errorf("%s lacks acknowledged user %s (err %v)", s.ID(), e, err)
			}
		}
		return nil
	})
}

func TestLeaderKillLosesNoAcknowledgedWrite(t *testing.T) {
	c := testcluster.Start(t, 3)
	cl := adminClient(t, c, c.Servers...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var mu sync.Mutex
	var acked []string
	var firstAfterKill time.Time
	var killedAt time.Time
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := w*100000 + i
				start := time.Now()
				err := createUser(ctx, cl, n)
				if err != nil {
					// An unacknowledged write may or may not have landed; only
					// acknowledged ones are promised.
					var p *api.Problem
					if errors.As(err, &p) && p.Status == 409 {
						continue
					}
					if ctx.Err() != nil {
						return
					}
					continue
				}
				mu.Lock()
				acked = append(acked, fmt.Sprintf("user%d@example.com", n))
				if !killedAt.IsZero() && start.After(killedAt) && firstAfterKill.IsZero() {
					firstAfterKill = time.Now()
				}
				mu.Unlock()
			}
		}(w)
	}
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	testcluster.Eventually(t, 30*time.Second, func() error {
		if ackedCount() < 10 {
			return fmt.Errorf("%d writes acknowledged before the kill", ackedCount())
		}
		return nil
	})
	old := c.Leader()
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	c.Kill(c.Index(old))
	before := ackedCount()
	testcluster.Eventually(t, 30*time.Second, func() error {
		if ackedCount() < before+10 {
			return fmt.Errorf("only %d writes acknowledged since the leader was killed", ackedCount()-before)
		}
		return nil
	})
	close(stop)
	wg.Wait()

	newLeader := c.Leader()
	if newLeader == old {
		t.Fatal("the killed manager is still the leader")
	}
	mu.Lock()
	t.Logf("failover: first write acknowledged %s after the leader was killed; %d writes acknowledged in all",
		firstAfterKill.Sub(killedAt).Round(time.Millisecond), len(acked))
	mu.Unlock()
	for _, s := range c.Running() {
		waitHasUsers(t, s, acked)
	}
}

func TestRestartedManagerCatchesUpFromSnapshotAndLog(t *testing.T) {
	c := testcluster.Start(t, 3, func(cfg *server.Config) {
		cfg.Raft.TrailingLogs = 4
		cfg.Raft.SnapshotThreshold = 8
	})
	cl := adminClient(t, c, c.Servers...)
	ctx := context.Background()
	follower := c.Follower()
	i := c.Index(follower)
	_, lastBefore, _ := follower.Node().Indexes()
	c.Kill(i)

	var emails []string
	for n := 0; n < 20; n++ {
		if err := createUser(ctx, cl, n); err != nil {
			t.Fatalf("create user %d with one manager down: %v", n, err)
		}
		emails = append(emails, fmt.Sprintf("user%d@example.com", n))
	}
	leader := c.Leader()
	if err := leader.Node().Snapshot(); err != nil {
		t.Fatal(err)
	}
	for n := 20; n < 25; n++ {
		if err := createUser(ctx, cl, n); err != nil {
			t.Fatal(err)
		}
		emails = append(emails, fmt.Sprintf("user%d@example.com", n))
	}

	restarted := c.Restart(i)
	waitHasUsers(t, restarted, emails)
	snapIndex, err := strconv.ParseUint(restarted.Node().Stats()["last_snapshot_index"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if snapIndex <= lastBefore {
		t.Fatalf("the restarted manager's last snapshot is at %d, not past its log end %d before the kill: it did not catch up from a snapshot", snapIndex, lastBefore)
	}
}

func TestManagerJoinsARunningClusterAndCanBeRemoved(t *testing.T) {
	const token = "join-secret"
	first := testcluster.Start(t, 1, func(cfg *server.Config) { cfg.JoinToken = token })
	seed := first.Servers[0]

	cfg := testcluster.Config(t, "joiner")
	cfg.TLS = first.Issue("joiner")
	cfg.Join = seed.HTTPAddr()
	cfg.JoinToken = token
	joiner, err := server.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { joiner.Close() })
	testcluster.Eventually(t, 20*time.Second, func() error {
		if leader, _ := joiner.Node().Leader(); leader != "m1" {
			return fmt.Errorf("joiner follows %q", leader)
		}
		if ms, _ := joiner.State().Read().Members(); len(ms) != 2 {
			return fmt.Errorf("joiner knows %d members", len(ms))
		}
		return nil
	})
	if joiner.Node().IsLeader() {
		t.Fatal("the joining manager must follow the existing leader")
	}
	cl := adminClient(t, first, joiner)
	// Two voters need both for a quorum: on a loaded machine the leader
	// may step down while the write commits (503 outcome unknown), and the
	// write may then have been applied, so a later 409 is the same win.
	testcluster.Eventually(t, 20*time.Second, func() error {
		err := createUser(context.Background(), cl, 1)
		var p *api.Problem
		if errors.As(err, &p) && p.Status == http.StatusConflict {
			return nil
		}
		return err
	})
	waitHasUsers(t, joiner, []string{"user1@example.com"})
	rc, err := cl.RaftConfiguration(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.Servers) != 2 || rc.Leader != "m1" {
		t.Fatalf("raft configuration after join: %+v", rc)
	}
	if err := cl.RemoveRaftPeer(context.Background(), "joiner"); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		servers, err := seed.Node().Servers()
		if err != nil || len(servers) != 1 {
			return fmt.Errorf("servers %v, %v", servers, err)
		}
		return nil
	})
}

// A dev manager's Raft is in memory: a manager asking to join it is told so
// instead of being added as a voter no one can reach (which would stall
// the dev cluster's log for want of a quorum).
func TestJoiningADevManagerIsRefused(t *testing.T) {
	c := testcluster.StartDev(t, func(cfg *server.Config) { cfg.JoinToken = "right" })
	req := map[string]string{"id": "x", "raft_address": "127.0.0.1:1", "http_address": "127.0.0.1:2"}
	r := testcluster.Do(t, "POST", testcluster.URL(c.Servers[0])+"/v1/operator/raft/join", "", req)
	if r.Status != 401 {
		t.Fatalf("join without the token: %d %s", r.Status, r.Body)
	}
	resp := joinWithToken(t, testcluster.URL(c.Servers[0]), "right", req)
	if resp.Status != 409 || !strings.Contains(string(resp.Body), "runs with -dev") {
		t.Fatalf("join a dev manager: %d %s; want 409 saying it runs with -dev", resp.Status, resp.Body)
	}
	if servers, err := c.Servers[0].Node().Servers(); err != nil || len(servers) != 1 {
		t.Fatalf("raft configuration after the refused join: %v %v", servers, err)
	}
}

func joinWithToken(t *testing.T, base, token string, body map[string]string) *testcluster.Response {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, base+"/v1/operator/raft/join", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(httpapi.JoinTokenHeader, token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &testcluster.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func TestWrongJoinTokenIsRefused(t *testing.T) {
	c := testcluster.StartDev(t, func(cfg *server.Config) { cfg.JoinToken = "right" })
	r := testcluster.Do(t, "POST", testcluster.URL(c.Servers[0])+"/v1/operator/raft/join", "",
		map[string]string{"id": "x", "raft_address": "127.0.0.1:1", "http_address": "127.0.0.1:2"})
	if r.Status != 401 {
		t.Fatalf("join without the token: %d %s", r.Status, r.Body)
	}
}
