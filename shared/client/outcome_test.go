package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/berth-cluster/berth/shared/api"
)

// A write whose outcome is unknown must not be sent again by the client:
// it may have been applied, and a second POST could apply it twice.
func TestOutcomeUnknownIsNotRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		writeProblem(w, api.Problem{Type: api.ProblemOutcomeUnknown, Title: "Outcome unknown", Status: http.StatusServiceUnavailable})
	}))
	defer srv.Close()
	c := newClient(t, Config{Addrs: []string{srv.URL, srv.URL}, Token: "t"})
	err := c.Do(context.Background(), http.MethodPost, "/v1/sessions", nil, map[string]string{"image": "x"}, nil)
	var p *api.Problem
	if !errors.As(err, &p) || p.Type != api.ProblemOutcomeUnknown {
		t.Fatalf("error %v, want the outcome-unknown problem", err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the write was sent %d times", n)
	}
}
