package server_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// Sizes of the admission benchmark.
const (
	benchAgents   = 1000
	benchKeypairs = 100
	benchInFlight = 256
)

// BenchmarkAdmission is admission + placement throughput through a
// three-manager cluster with 1,000 simulated agents (agent records with a
// capacity; no containers: a test tool, not the product's runtime). b.N
// sessions are created with many proposals in flight, each a SessionCreate
// entry of its own, and the clock runs until all are SCHEDULED. Reported:
// sessions/s, creates/s (the creates alone), the p99 of one create's Raft
// commit, and the p99 from create to placement (the SCHEDULED time is the plan's, stamped when the leader
// planned it, so it omits the plan's own commit of a few milliseconds).
func BenchmarkAdmission(b *testing.B) {
	c := testcluster.Start(b, 3, longHeartbeat)
	leader := c.Leader()
	seedBenchCluster(b, leader)
	b.ResetTimer()
	start := time.Now()
	createLatency := proposeSessions(b, leader, b.N)
	created := time.Since(start)
	waitAllScheduled(b, leader, b.N)
	elapsed := time.Since(start)
	b.StopTimer()

	placed := placementLatencies(b, leader)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "sessions/s")
	// The creates alone: when this is close to sessions/s, the entries of
	// one session each, not the scheduler, are what limits admission.
	b.ReportMetric(float64(b.N)/created.Seconds(), "creates/s")
	b.ReportMetric(percentile(createLatency, 0.99), "p99-create-ms")
	b.ReportMetric(percentile(placed, 0.99), "p99-scheduled-ms")
	if plans := metricValue(scrape(b, leader), "berth_scheduler_plans_total"); plans > 0 {
		b.ReportMetric(float64(b.N)/plans, "sessions/plan")
	}
}

// seedBenchCluster records the agents and keypairs (on the default policy,
// which limits nothing that matters here), many proposals in flight.
func seedBenchCluster(b *testing.B, s *server.Server) {
	b.Helper()
	inParallel(b, s, benchAgents, nil, func(i int) fsm.Command {
		id := fmt.Sprintf("agent%04d", i)
		return fsm.AgentPut{Agent: state.Agent{ID: id, Secret: id, Address: "127.0.0.1:1", Status: state.AgentAlive, Schedulable: true,
			Capacity: slots.Slots{slots.CPU: 64000, slots.Mem: 256 << 30}, LastHeartbeatAt: time.Now().UTC()}}
	})
	inParallel(b, s, benchKeypairs, nil, func(i int) fsm.Command {
		return fsm.KeypairPut{Keypair: state.Keypair{AccessKey: fmt.Sprintf("AKBENCH%012d", i), SecretKey: "s",
			User: testcluster.AdminEmail, IsActive: true, ResourcePolicy: "default"}}
	})
}

// proposeSessions creates n sessions and returns each create's commit
// latency in milliseconds.
func proposeSessions(b *testing.B, s *server.Server, n int) []float64 {
	b.Helper()
	latencies := make([]float64, n)
	inParallel(b, s, n, latencies, func(i int) fsm.Command {
		return fsm.SessionCreate{Session: state.Session{ID: fmt.Sprintf("bench-%08d", i),
			AccessKey: fmt.Sprintf("AKBENCH%012d", i%benchKeypairs), Image: "berth/base:latest", Type: api.SessionBatch,
			ClusterSize: 1, Requested: slots.Slots{slots.CPU: 100, slots.Mem: 128 << 20}, CreatedAt: time.Now().UTC()}}
	})
	return latencies
}

// inParallel proposes cmd(i) for i < n with benchInFlight proposals in
// flight (Raft batches what is in flight into one append and one fsync).
// With latencies, entry i gets its commit time in ms.
func inParallel(b *testing.B, s *server.Server, n int, latencies []float64, cmd func(int) fsm.Command) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchInFlight)
	for range min(n, benchInFlight) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				r, err := s.Propose(context.Background(), cmd(i))
				if err == nil {
					err = r.Err
				}
				if err != nil {
					errs <- err
					return
				}
				if latencies != nil {
					latencies[i] = float64(time.Since(t0).Microseconds()) / 1000
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("propose: %v", err)
	}
}

// waitAllScheduled polls (every 2 ms, so the watching costs the cluster
// little) until n sessions exist on the leader and none is PENDING.
func waitAllScheduled(b *testing.B, s *server.Server, n int) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		pending := 0
		_ = s.State().Read().EachPending(func(*state.Session) bool { pending++; return true })
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d sessions still PENDING", pending)
		}
		time.Sleep(2 * time.Millisecond)
	}
	scheduled, err := s.State().Read().SessionsInStatus(api.SessionScheduled)
	if err != nil || len(scheduled) != n {
		b.Fatalf("%d sessions SCHEDULED of %d (%v)", len(scheduled), n, err)
	}
}

// placementLatencies are, per session, ms from created_at to the SCHEDULED
// entry of its history.
func placementLatencies(b *testing.B, s *server.Server) []float64 {
	b.Helper()
	var out []float64
	err := s.State().Read().EachSession(nil, func(sess *state.Session) error {
		for _, h := range sess.StatusHistory {
			if h.Status == api.SessionScheduled {
				out = append(out, float64(h.At.Sub(sess.CreatedAt).Microseconds())/1000)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return out
}

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// metricValue reads one unlabelled series from a /metrics text.
func metricValue(text, name string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}
