package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	"github.com/berth-cluster/berth/shared/sign"
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
// capacity and the base image; no containers: a test tool, not the
// product's runtime). b.N sessions are created the way the product creates
// them, POST /v1/sessions on the leader, signed by one of 100 keypairs,
// with many requests in flight; the handler runs in-process (no socket:
// what is measured is the manager, not the loopback). The clock runs until
// all are SCHEDULED. Reported: sessions/s, creates/s (the creates alone),
// the p99 of one create request, and the p99 from create to placement (the
// SCHEDULED time is the plan's, stamped when the leader planned it, so it
// omits the plan's own commit of a few milliseconds).
func BenchmarkAdmission(b *testing.B) { benchAdmission(b, 3) }

// BenchmarkAdmissionOneManager is BenchmarkAdmission on a one-manager
// cluster: what one manager's CPU sustains when it is not sharing two cores
// with two other managers applying the same log (in a real cluster each
// manager has its own machine and applies every entry in parallel).
func BenchmarkAdmissionOneManager(b *testing.B) { benchAdmission(b, 1) }

func benchAdmission(b *testing.B, managers int) {
	c := testcluster.Start(b, managers, longHeartbeat, testcluster.InsecureRaft) // comparable with the figures before TLS
	leader := c.Leader()
	seedBenchCluster(b, leader)
	seeded := scrape(b, leader) // the seeding's own entries are left out below
	b.ResetTimer()
	start := time.Now()
	createLatency := postSessions(b, leader, b.N, benchInFlight)
	created := time.Since(start)
	waitAllScheduled(b, leader, b.N)
	elapsed := time.Since(start)
	b.StopTimer()

	placed := placementLatencies(b, leader)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "sessions/s")
	// The creates alone: when this is close to sessions/s, admission, not
	// the scheduler, is what limits.
	b.ReportMetric(float64(b.N)/created.Seconds(), "creates/s")
	b.ReportMetric(percentile(createLatency, 0.99), "p99-create-ms")
	b.ReportMetric(percentile(placed, 0.99), "p99-scheduled-ms")
	metrics := scrape(b, leader)
	if plans := metricValue(metrics, "berth_scheduler_plans_total"); plans > 0 {
		b.ReportMetric(float64(b.N)/plans, "sessions/plan")
	}
	if entries := metricValue(metrics, "berth_session_create_batch_size_count"); entries > 0 {
		b.ReportMetric(float64(b.N)/entries, "sessions/entry")
	}
	// What one proposal of the run (creates and plans) waited for its
	// commit and apply, on average: with batches, this (not the number of
	// entries) sets the pace.
	delta := func(name string) float64 { return metricValue(metrics, name) - metricValue(seeded, name) }
	if n := delta("berth_raft_apply_duration_seconds_count"); n > 0 {
		b.ReportMetric(1000*delta("berth_raft_apply_duration_seconds_sum")/n, "commit-ms")
	}
}

// BenchmarkSessionCreateLatency is one POST /v1/sessions at a time on the
// leader of a three-manager cluster: what a lone request pays, which
// batching must not make worse. ns/op is the mean.
func BenchmarkSessionCreateLatency(b *testing.B) {
	c := testcluster.Start(b, 3, longHeartbeat, testcluster.InsecureRaft) // comparable with the figures before TLS
	leader := c.Leader()
	seedBenchCluster(b, leader)
	b.ResetTimer()
	lat := postSessions(b, leader, b.N, 1)
	b.StopTimer()
	b.ReportMetric(percentile(lat, 0.5), "p50-ms")
	b.ReportMetric(percentile(lat, 0.99), "p99-ms")
}

// seedBenchCluster records the agents and keypairs (on the default policy,
// which limits nothing that matters here), many proposals in flight.
func seedBenchCluster(b *testing.B, s *server.Server) {
	b.Helper()
	images := []api.Image{{Name: benchImage, Digest: "sha256:aa", Size: 1 << 20}}
	inParallel(b, benchAgents, func(i int) error {
		id := fmt.Sprintf("agent%04d", i)
		return proposeBench(s, fsm.AgentPut{Agent: state.Agent{ID: id, Secret: id, Address: "127.0.0.1:1", Status: state.AgentAlive,
			Schedulable: true, Capacity: slots.Slots{slots.CPU: 64000, slots.Mem: 256 << 30}, Images: images,
			LastHeartbeatAt: time.Now().UTC()}})
	}, benchInFlight)
	inParallel(b, benchKeypairs, func(i int) error {
		return proposeBench(s, fsm.KeypairPut{Keypair: state.Keypair{AccessKey: benchKey(i), SecretKey: benchSecret,
			User: testcluster.AdminEmail, IsActive: true, ResourcePolicy: "default"}})
	}, benchInFlight)
}

func proposeBench(s *server.Server, c fsm.Command) error {
	r, err := s.Propose(context.Background(), c)
	if err == nil {
		err = r.Err
	}
	return err
}

// The bench keypairs: access keys as the signing scheme wants them (AK and
// 18 characters).
const benchSecret = "bench-secret"

func benchKey(i int) string { return fmt.Sprintf("AKBENCH%013d", i%benchKeypairs) }

const benchImage = "berth/base:latest"

// postSessions creates n sessions through the leader's HTTP handler with
// inFlight requests at a time and returns each request's latency in ms.
func postSessions(b *testing.B, s *server.Server, n, inFlight int) []float64 {
	b.Helper()
	body := []byte(`{"image":"` + benchImage + `","type":"batch","command":["true"],"resources":{"cpu":0.1,"mem":134217728}}`)
	h := s.Handler()
	now := signingClock()
	latencies := make([]float64, n)
	inParallel(b, n, func(i int) error {
		req := httptest.NewRequest(http.MethodPost, "/v1/sessions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if err := sign.SignRequest(req, benchKey(i), benchSecret, body, now()); err != nil {
			return err
		}
		rec := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(rec, req)
		latencies[i] = float64(time.Since(t0).Microseconds()) / 1000
		if rec.Code != http.StatusCreated {
			return fmt.Errorf("POST /v1/sessions: %d %s", rec.Code, rec.Body.Bytes())
		}
		return nil
	}, inFlight)
	return latencies
}

// inParallel runs do(i) for i < n, inFlight at a time, and fails the
// benchmark with the first error.
// signingClock is the time, but never the same nanosecond twice: a manager
// accepts a signature once, and two requests of one bench keypair with one
// body dated alike would carry the same.
func signingClock() func() time.Time {
	var last atomic.Int64
	return func() time.Time {
		n := time.Now().UnixNano()
		for {
			prev := last.Load()
			next := max(n, prev+1)
			if last.CompareAndSwap(prev, next) {
				return time.Unix(0, next)
			}
		}
	}
}

func inParallel(b *testing.B, n int, do func(int) error, inFlight int) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, inFlight)
	for range min(n, inFlight) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := do(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
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
