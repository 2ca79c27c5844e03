package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/sign"
)

// Shared helpers of the external HTTP API tests.

// testPassword satisfies the password policy; every user the tests create has it.
const testPassword = "Passw0rd!"

// fakeClock is a clock that moves only when told, so token expiry, signing
// dates and the login rate limiter are exact.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now().UTC().Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// withClock makes a manager use the clock and a login token lifetime.
func withClock(clock *fakeClock, ttl time.Duration) func(*server.Config) {
	return func(cfg *server.Config) {
		cfg.Now = clock.Now
		cfg.TokenTTL = ttl
	}
}

// send performs req and reads the whole answer.
func send(t testing.TB, req *http.Request) *testcluster.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer of %s %s: %v", req.Method, req.URL, err)
	}
	return &testcluster.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// newRequest builds a request with an optional body (nil for none).
func newRequest(t testing.TB, method, url string, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// signedRequest builds a request signed with the keypair at the given time.
func signedRequest(t testing.TB, method, url string, kp api.Keypair, body []byte, at time.Time) *http.Request {
	t.Helper()
	req := newRequest(t, method, url, body)
	if err := sign.SignRequest(req, kp.AccessKey, kp.SecretKey, body, at); err != nil {
		t.Fatalf("sign %s %s: %v", method, url, err)
	}
	return req
}

// mustJSON encodes v.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantStatus fails the test unless the answer has the status.
func wantStatus(t testing.TB, r *testcluster.Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
}

// wantProblem checks that the answer is a problem+json of the status and
// type, whose body agrees with the status, and returns it.
func wantProblem(t testing.TB, r *testcluster.Response, status int, typ string) api.Problem {
	t.Helper()
	wantStatus(t, r, status)
	if ct := r.Header.Get("Content-Type"); ct != api.ProblemContentType {
		t.Errorf("Content-Type %q, want %q", ct, api.ProblemContentType)
	}
	var p api.Problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.Body, err)
	}
	if p.Type != typ {
		t.Errorf("problem type %q, want %q (detail %q)", p.Type, typ, p.Detail)
	}
	if p.Status != status {
		t.Errorf("problem status %d, want %d", p.Status, status)
	}
	if p.Title == "" {
		t.Error("problem has no title")
	}
	return p
}

// fieldReasons groups a problem's field errors by field, in order.
func fieldReasons(p api.Problem) map[string][]string {
	out := map[string][]string{}
	for _, e := range p.Errors {
		out[e.Field] = append(out[e.Field], e.Reason)
	}
	return out
}

// wantFields checks that the problem names exactly these fields with exactly
// these reasons (order within a field kept).
func wantFields(t testing.TB, p api.Problem, want map[string][]string) {
	t.Helper()
	got := fieldReasons(p)
	for f, reasons := range want {
		if !slices.Equal(got[f], reasons) {
			t.Errorf("field %s: reasons %q, want %q", f, got[f], reasons)
		}
	}
	for f, reasons := range got {
		if _, ok := want[f]; !ok {
			t.Errorf("unexpected field error %s: %q", f, reasons)
		}
	}
}

// wantDetail checks the problem's detail mentions every fragment.
func wantDetail(t testing.TB, p api.Problem, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if !strings.Contains(p.Detail, f) {
			t.Errorf("detail %q does not mention %q", p.Detail, f)
		}
	}
}

// createdUser is the answer of POST /v1/users.
type createdUser struct {
	User    api.User    `json:"user"`
	Keypair api.Keypair `json:"keypair"`
}

// createUser creates an active user in the default domain with testPassword
// and returns it with its first keypair.
func createUser(t testing.TB, s *server.Server, token, email, username, role string) createdUser {
	t.Helper()
	r := testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/users", token, map[string]any{
		"email": email, "username": username, "password": testPassword, "role": role,
	})
	wantStatus(t, r, http.StatusCreated)
	var out createdUser
	r.JSON(t, &out)
	return out
}

// loginAnswer logs in and returns the whole answer.
func loginAnswer(t testing.TB, s *server.Server, email, password string) *testcluster.Response {
	t.Helper()
	return testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/auth/login", "", map[string]string{"email": email, "password": password})
}

// whoami asks who the bearer of the token is.
func whoami(t testing.TB, s *server.Server, token string) *testcluster.Response {
	t.Helper()
	return testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/auth/whoami", token, nil)
}
