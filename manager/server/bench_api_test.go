package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/sign"
)

// BenchmarkAPILatencyUnderLoad is what API callers wait while the cluster is
// busy: 32 clients, each signed by one of 100 keypairs and talking over
// HTTP to one of the three managers (followers forward), issue b.N
// requests in all, in the mix a session list page (40 %), the resource
// indicator (30 %), a session create (20 %) and a single session read
// (10 %). Reported: p50 and p99 per kind, and requests/s.
func BenchmarkAPILatencyUnderLoad(b *testing.B) {
	// Plaintext, as the figures in docs/BENCHMARKS.md were measured.
	c := testcluster.Start(b, 3, longHeartbeat, testcluster.InsecureRaft)
	leader := c.Leader()
	seedBenchCluster(b, leader)
	createBody := []byte(`{"image":"` + benchImage + `","type":"batch","command":["true"],"resources":{"cpu":0.1,"mem":134217728}}`)
	now := signingClock()
	// One session per keypair so reads have something to read.
	ids := make([]string, benchKeypairs)
	for i := range ids {
		code, body := benchCall(b, now, testcluster.URL(leader), http.MethodPost, "/v1/sessions", i, createBody)
		if code != http.StatusCreated {
			b.Fatalf("seed session: %d %s", code, body)
		}
		ids[i] = string(bytes.SplitN(bytes.SplitN(body, []byte(`"id":"`), 2)[1], []byte(`"`), 2)[0])
	}
	kinds := []string{"list", "list", "list", "list", "indicator", "indicator", "indicator", "create", "create", "get"}
	var mu sync.Mutex
	lat := map[string][]float64{}
	b.ResetTimer()
	start := time.Now()
	inParallel(b, b.N, func(i int) error {
		base := testcluster.URL(c.Servers[i%len(c.Servers)])
		kind := kinds[i%len(kinds)]
		method, path, body := http.MethodGet, "", []byte(nil)
		switch kind {
		case "list":
			path = "/v1/sessions?limit=20"
		case "indicator":
			path = "/v1/resources/me"
		case "create":
			method, path, body = http.MethodPost, "/v1/sessions", createBody
		case "get":
			path = "/v1/sessions/" + ids[i%benchKeypairs]
		}
		t0 := time.Now()
		code, out := benchCall(b, now, base, method, path, i, body)
		ms := float64(time.Since(t0).Microseconds()) / 1000
		if code >= 300 {
			return fmt.Errorf("%s %s: %d %s", method, path, code, out)
		}
		mu.Lock()
		lat[kind] = append(lat[kind], ms)
		mu.Unlock()
		return nil
	}, 32)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	for _, k := range []string{"list", "indicator", "create", "get"} {
		b.ReportMetric(percentile(lat[k], 0.5), "p50-"+k+"-ms")
		b.ReportMetric(percentile(lat[k], 0.99), "p99-"+k+"-ms")
	}
}

// benchCall sends one request signed by bench keypair i at now() over HTTP.
func benchCall(b *testing.B, now func() time.Time, base, method, path string, i int, body []byte) (int, []byte) {
	req, err := http.NewRequestWithContext(context.Background(), method, base+path, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := sign.SignRequest(req, benchKey(i), benchSecret, body, now()); err != nil {
		b.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}
