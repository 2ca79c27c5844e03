package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/shared/api"
)

// WaitSession reads at once without an index and blocks with one: it sends
// ?index=&wait= only then, and returns the index the manager says the
// answer is at (X-Berth-Index), or 0 from a manager that says nothing, so
// its caller knows to poll. A problem comes back as the problem.
func TestWaitSessionSendsTheIndexAndReadsTheAnswersIndex(t *testing.T) {
	var (
		mu      sync.Mutex
		queries []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/sessions/s-1" {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
		}
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		switch r.URL.Query().Get("index") {
		case "":
			w.Header().Set("X-Berth-Index", "41")
			writeJSON(w, http.StatusOK, api.Session{ID: "s-1", Status: api.SessionScheduled})
		case "41":
			w.Header().Set("X-Berth-Index", "57")
			writeJSON(w, http.StatusOK, api.Session{ID: "s-1", Status: api.SessionRunning})
		case "57":
			writeJSON(w, http.StatusOK, api.Session{ID: "s-1", Status: api.SessionRunning}) // an older manager
		default:
			writeProblem(w, api.Problem{Type: api.ProblemNotFound, Title: "Not found", Status: http.StatusNotFound, Detail: "no session s-1"})
		}
	}))
	defer srv.Close()
	c := newClient(t, Config{Addrs: []string{srv.URL}, Token: "tok"})
	ctx := context.Background()

	s, at, err := c.WaitSession(ctx, "s-1", 0, time.Minute)
	if err != nil || s.Status != api.SessionScheduled || at != 41 {
		t.Fatalf("first read: %+v at %d, %v", s, at, err)
	}
	s, at, err = c.WaitSession(ctx, "s-1", at, 20*time.Second)
	if err != nil || s.Status != api.SessionRunning || at != 57 {
		t.Fatalf("blocking read: %+v at %d, %v", s, at, err)
	}
	if _, at, err = c.WaitSession(ctx, "s-1", at, time.Second); err != nil || at != 0 {
		t.Fatalf("a manager without the header: at %d, %v; want 0", at, err)
	}
	_, _, err = c.WaitSession(ctx, "s-1", 99, time.Second)
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != http.StatusNotFound {
		t.Fatalf("a refused read: %v, want the 404 problem", err)
	}
	want := []string{"", "index=41&wait=20s", "index=57&wait=1s", "index=99&wait=1s"}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(queries, want) {
		t.Fatalf("queries %q, want %q", queries, want)
	}
}
