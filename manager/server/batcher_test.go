package server_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/raftnode"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

func labSession(id, ak string) state.Session {
	return state.Session{ID: id, AccessKey: ak, Image: "berth/base:latest", Type: api.SessionBatch, ClusterSize: 1,
		Requested: slots.Slots{slots.CPU: 100, slots.Mem: 1 << 20}, CreatedAt: time.Now().UTC()}
}

// createConcurrently calls ProposeSessionCreate for every session at once
// and returns each one's outcome.
func createConcurrently(s *server.Server, sessions []state.Session) ([]*fsm.Response, []error) {
	resps, errs := make([]*fsm.Response, len(sessions)), make([]error, len(sessions))
	var wg sync.WaitGroup
	for i, sess := range sessions {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			resps[i], errs[i] = s.ProposeSessionCreate(ctx, sess)
		})
	}
	wg.Wait()
	return resps, errs
}

// TestConcurrentSessionCreatesShareEntriesAndEachGetsItsOwnAnswer: creates
// that arrive together are committed in fewer entries than sessions, and a
// refused one (unknown keypair, an id that exists) fails alone.
func TestConcurrentSessionCreatesShareEntriesAndEachGetsItsOwnAnswer(t *testing.T) {
	c := testcluster.StartDev(t, longHeartbeat)
	s := c.Servers[0]
	labSetup(t, s, 1)
	createSession(t, s, "taken", "AKLAB", 100)
	const n = 60
	var sessions []state.Session
	for i := range n {
		sessions = append(sessions, labSession(fmt.Sprintf("c%02d", i), "AKLAB"))
	}
	sessions[7].AccessKey = "AKNOBODY"
	sessions[31].ID = "taken"
	resps, errs := createConcurrently(s, sessions)
	for i, r := range resps {
		if errs[i] != nil {
			t.Fatalf("session %d: %v", i, errs[i])
		}
		switch i {
		case 7:
			if !apierr.Is(r.Err, apierr.Invalid) {
				t.Errorf("unknown keypair: %v, want invalid", r.Err)
			}
		case 31:
			if !apierr.Is(r.Err, apierr.Conflict) {
				t.Errorf("existing id: %v, want conflict", r.Err)
			}
		default:
			got, ok := r.Value.(*state.Session)
			if r.Err != nil || !ok || got.ID != sessions[i].ID || got.Status != api.SessionPending {
				t.Errorf("session %d: %+v, want %s PENDING", i, r, sessions[i].ID)
			}
		}
	}
	metrics := scrape(t, s)
	entries, batched := metricValue(metrics, "berth_session_create_batch_size_count"), metricValue(metrics, "berth_session_create_batch_size_sum")
	if batched != n || entries >= n {
		t.Errorf("%v sessions in %v entries: want all %d, in fewer entries than sessions", batched, entries, n)
	}
}

func TestSessionCreateOnAFollowerIsNotLeader(t *testing.T) {
	c := testcluster.Start(t, 3, longHeartbeat)
	_, err := c.Follower().ProposeSessionCreate(context.Background(), labSession("f1", "AKLAB"))
	if !errors.Is(err, raftnode.ErrNotLeader) {
		t.Fatalf("on a follower: %v, want ErrNotLeader", err)
	}
}

// TestLeadershipLossAnswersEveryQueuedCreate: creates keep coming while the
// leader loses its quorum; each one is answered (committed, or
// ErrNotLeader for the client to retry, or ErrOutcomeUnknown for a create
// that was appended and may still commit), none hangs.
func TestLeadershipLossAnswersEveryQueuedCreate(t *testing.T) {
	c := testcluster.Start(t, 3, longHeartbeat)
	leader := c.Leader()
	labSetup(t, leader, 1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	stop := make(chan struct{})
	for w := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				r, err := leader.ProposeSessionCreate(ctx, labSession(fmt.Sprintf("w%d-%d", w, i), "AKLAB"))
				cancel()
				kind := "committed"
				switch {
				case errors.Is(err, raftnode.ErrNotLeader):
					kind = "not leader"
				case errors.Is(err, raftnode.ErrOutcomeUnknown):
					// Appended before the quorum went: it may still commit
					// under a later leader, so the writer is told so.
					kind = "outcome unknown"
				case err != nil:
					kind = err.Error()
				case r.Err != nil:
					kind = r.Err.Error()
				}
				mu.Lock()
				outcomes[kind]++
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if outcomes["committed"] == 0 {
			return fmt.Errorf("no create committed yet")
		}
		return nil
	})
	for _, f := range c.Running() {
		if f != leader {
			c.Kill(c.Index(f))
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		close(stop)
		t.Fatal("creates still waiting 30 s after the leader lost its quorum")
	}
	close(stop)
	answered := outcomes["not leader"] + outcomes["outcome unknown"]
	if outcomes["committed"] == 0 || answered != 32 || len(outcomes) != 1+min(outcomes["not leader"], 1)+min(outcomes["outcome unknown"], 1) {
		t.Errorf("outcomes %v: want commits before, then not-leader or outcome-unknown for each of the 32 writers", outcomes)
	}
}
