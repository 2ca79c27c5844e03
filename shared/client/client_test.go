package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/sign"
)

const (
	testAccessKey = "AKTEST0123456789ABCD"
	testSecretKey = "0123456789abcdefghijABCDEFGHIJ0123456789"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, p api.Problem) {
	w.Header().Set("Content-Type", api.ProblemContentType)
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func noLeader(w http.ResponseWriter) {
	writeProblem(w, api.Problem{Type: api.ProblemNoLeader, Title: "No leader", Status: http.StatusServiceUnavailable})
}

// refusedAddr returns an http URL on which nothing listens.
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = -1
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewValidatesAddresses(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"one http address", Config{Addrs: []string{"http://127.0.0.1:8080"}}, ""},
		{"https with base path", Config{Addrs: []string{"https://m.example/berth/"}}, ""},
		{"several", Config{Addrs: []string{"http://a:1", "http://b:2"}}, ""},
		{"none", Config{}, "no manager address"},
		{"no scheme", Config{Addrs: []string{"127.0.0.1:8080"}}, "http:// or https://"},
		{"ftp", Config{Addrs: []string{"ftp://h"}}, "http:// or https://"},
		{"no host", Config{Addrs: []string{"http://"}}, "no host"},
		{"query", Config{Addrs: []string{"http://h/?a=1"}}, "query"},
		{"one bad among good", Config{Addrs: []string{"http://h", "h2"}}, `"h2"`},
		{"access key without secret", Config{Addrs: []string{"http://h"}, AccessKey: testAccessKey}, "together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestRequestsCarryTheConfiguredCredentials(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name  string
		cfg   Config
		call  func(context.Context, *Client) error
		check func(t *testing.T, r *http.Request, body []byte)
	}{
		{
			name: "bearer token",
			cfg:  Config{Token: "tok123", AccessKey: testAccessKey, SecretKey: testSecretKey},
			call: func(ctx context.Context, c *Client) error { _, err := c.WhoAmI(ctx); return err },
			check: func(t *testing.T, r *http.Request, _ []byte) {
				if got := r.Header.Get("Authorization"); got != "Bearer tok123" {
					t.Fatalf("Authorization %q", got)
				}
				if r.Header.Get(sign.DateHeader) != "" {
					t.Fatal("token request was also signed")
				}
			},
		},
		{
			name: "keypair signature on a GET with query and escaped path",
			cfg:  Config{AccessKey: testAccessKey, SecretKey: testSecretKey},
			call: func(ctx context.Context, c *Client) error {
				return c.Do(ctx, http.MethodGet, "/v1/users/"+url.PathEscape("a/b@c.d"), url.Values{"z": {"1"}, "a": {"x y"}}, nil, nil)
			},
			check: verifySignature(now),
		},
		{
			name: "keypair signature on a POST with body",
			cfg:  Config{AccessKey: testAccessKey, SecretKey: testSecretKey},
			call: func(ctx context.Context, c *Client) error {
				_, err := c.CreateUser(ctx, map[string]string{"email": "a@b.c"})
				return err
			},
			check: verifySignature(now),
		},
		{
			name: "anonymous",
			cfg:  Config{},
			call: func(ctx context.Context, c *Client) error { _, err := c.Info(ctx); return err },
			check: func(t *testing.T, r *http.Request, _ []byte) {
				if got := r.Header.Get("Authorization"); got != "" {
					t.Fatalf("Authorization %q on an anonymous client", got)
				}
			},
		},
		{
			name: "login never sends the old token",
			cfg:  Config{Token: "stale"},
			call: func(ctx context.Context, c *Client) error { _, err := c.Login(ctx, "a@b.c", "pw"); return err },
			check: func(t *testing.T, r *http.Request, body []byte) {
				if got := r.Header.Get("Authorization"); got != "" {
					t.Fatalf("Authorization %q on login", got)
				}
				var in api.LoginRequest
				if err := json.Unmarshal(body, &in); err != nil || in.Email != "a@b.c" || in.Password != "pw" {
					t.Fatalf("login body %s (%v)", body, err)
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/json" {
					t.Fatalf("Content-Type %q", ct)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					t.Error(err)
				}
				tt.check(t, r, body)
				seen.Store(true)
				writeJSON(w, http.StatusOK, map[string]any{})
			}))
			defer srv.Close()
			cfg := tt.cfg
			cfg.Addrs = []string{srv.URL}
			cfg.Now = func() time.Time { return now }
			if err := tt.call(context.Background(), newClient(t, cfg)); err != nil {
				t.Fatal(err)
			}
			if !seen.Load() {
				t.Fatal("server saw no request")
			}
		})
	}
}

// verifySignature checks a request the way the manager's middleware does.
func verifySignature(now time.Time) func(t *testing.T, r *http.Request, body []byte) {
	return func(t *testing.T, r *http.Request, body []byte) {
		ak, sig, err := sign.ParseHeader(r.Header.Get("Authorization"))
		if err != nil {
			t.Fatal(err)
		}
		if ak != testAccessKey {
			t.Fatalf("access key %q", ak)
		}
		date := r.Header.Get(sign.DateHeader)
		if _, err := sign.CheckDate(date, now); err != nil {
			t.Fatal(err)
		}
		if got := r.Header.Get(sign.ContentHeader); got != sign.ContentHash(body) {
			t.Fatalf("%s %q, but the body hashes to %q", sign.ContentHeader, got, sign.ContentHash(body))
		}
		c, err := sign.CanonicalString(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, date, sign.ContentHash(body))
		if err != nil {
			t.Fatal(err)
		}
		if !sign.Verify(testSecretKey, c, sig) {
			t.Fatalf("signature does not verify over %q", c)
		}
	}
}

func TestErrorAnswersAreDecoded(t *testing.T) {
	problem := api.Problem{
		Type:   api.ProblemValidation,
		Title:  "Invalid request",
		Status: http.StatusBadRequest,
		Detail: "2 fields are invalid",
		Errors: []api.FieldError{
			{Field: "password", Reason: "password must contain at least one digit"},
			{Field: "email", Reason: "email must contain @"},
		},
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		check   func(t *testing.T, err error)
	}{
		{
			name:    "problem with field errors",
			handler: func(w http.ResponseWriter, _ *http.Request) { writeProblem(w, problem) },
			check: func(t *testing.T, err error) {
				var p *api.Problem
				if !errors.As(err, &p) {
					t.Fatalf("%T %v is not a *api.Problem", err, err)
				}
				if p.Type != problem.Type || p.Status != 400 || p.Detail != problem.Detail || len(p.Errors) != 2 ||
					p.Errors[0] != problem.Errors[0] || p.Errors[1] != problem.Errors[1] {
					t.Fatalf("decoded %+v, want %+v", p, problem)
				}
			},
		},
		{
			name: "problem without status takes the HTTP status",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", api.ProblemContentType+"; charset=utf-8")
				w.WriteHeader(http.StatusConflict)
				_, _ = io.WriteString(w, `{"type":"`+api.ProblemConflict+`","title":"Conflict"}`)
			},
			check: func(t *testing.T, err error) {
				var p *api.Problem
				if !errors.As(err, &p) || p.Status != http.StatusConflict {
					t.Fatalf("got %v", err)
				}
			},
		},
		{
			name: "plain text error is truncated",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusBadGateway)
				_, _ = io.WriteString(w, "upstream broke "+strings.Repeat("x", 5000))
			},
			check: func(t *testing.T, err error) {
				var h *HTTPError
				if !errors.As(err, &h) {
					t.Fatalf("%T %v is not an *HTTPError", err, err)
				}
				if h.Status != http.StatusBadGateway || !strings.HasPrefix(h.Body, "upstream broke") || len(h.Body) > maxErrorBodyBytes+4 {
					t.Fatalf("got status %d body of %d bytes", h.Status, len(h.Body))
				}
				if !strings.Contains(err.Error(), "502") {
					t.Fatalf("error %q does not name the status", err)
				}
			},
		},
		{
			name: "503 of another kind is not retried",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				writeProblem(w, api.Problem{Type: api.ProblemInternal, Title: "Busy", Status: http.StatusServiceUnavailable})
			},
			check: func(t *testing.T, err error) {
				var p *api.Problem
				if !errors.As(err, &p) || p.Type != api.ProblemInternal {
					t.Fatalf("got %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				tt.handler(w, r)
			}))
			defer srv.Close()
			c := newClient(t, Config{Addrs: []string{srv.URL, srv.URL}})
			_, err := c.ListUsers(context.Background(), nil)
			if err == nil {
				t.Fatal("no error")
			}
			tt.check(t, err)
			if hits.Load() != 1 {
				t.Fatalf("server hit %d times, want 1 (error answers other than no-leader are final)", hits.Load())
			}
		})
	}
}

func TestFailoverToTheNextManager(t *testing.T) {
	users := api.List[api.User]{Items: []api.User{{Email: "a@b.c"}}}
	tests := []struct {
		name     string
		first    func(t *testing.T) (addr string, hits *atomic.Int32)
		method   string
		wantSent int32 // requests the first address should have received
	}{
		{
			name: "connection refused",
			first: func(t *testing.T) (string, *atomic.Int32) {
				return refusedAddr(t), new(atomic.Int32)
			},
			method: http.MethodPost,
		},
		{
			name: "503 no leader",
			first: func(t *testing.T) (string, *atomic.Int32) {
				hits := new(atomic.Int32)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					hits.Add(1)
					noLeader(w)
				}))
				t.Cleanup(srv.Close)
				return srv.URL, hits
			},
			method:   http.MethodPost,
			wantSent: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			firstAddr, firstHits := tt.first(t)
			var secondHits atomic.Int32
			second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				secondHits.Add(1)
				writeJSON(w, http.StatusOK, users)
			}))
			defer second.Close()
			c := newClient(t, Config{Addrs: []string{firstAddr, second.URL}})
			var out api.List[api.User]
			if err := c.Do(context.Background(), tt.method, "/v1/users", nil, map[string]int{"x": 1}, &out); err != nil {
				t.Fatal(err)
			}
			if len(out.Items) != 1 || out.Items[0].Email != "a@b.c" {
				t.Fatalf("decoded %+v", out)
			}
			if firstHits.Load() != tt.wantSent || secondHits.Load() != 1 {
				t.Fatalf("hits first=%d second=%d", firstHits.Load(), secondHits.Load())
			}
			// The manager that answered is tried first next time.
			if _, err := c.ListUsers(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			if firstHits.Load() != tt.wantSent || secondHits.Load() != 2 {
				t.Fatalf("second call: hits first=%d second=%d", firstHits.Load(), secondHits.Load())
			}
		})
	}
}

func TestRetriesAreBounded(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		noLeader(w)
	}))
	defer srv.Close()
	c := newClient(t, Config{Addrs: []string{srv.URL, refusedAddr(t)}, MaxAttempts: 5})
	_, err := c.Info(context.Background())
	var p *api.Problem
	if !errors.As(err, &p) || p.Type != api.ProblemNoLeader {
		t.Fatalf("got %v, want the no-leader problem", err)
	}
	if !strings.Contains(err.Error(), "after 5 attempts") {
		t.Fatalf("error %q does not say how often it tried", err)
	}
	if hits.Load() != 3 {
		t.Fatalf("server hit %d times, want 3 of 5 attempts alternating with the refused address", hits.Load())
	}
}

func TestCancelledContextStopsRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		cancel()
		noLeader(w)
	}))
	defer srv.Close()
	// A long backoff: only cancellation can end the call quickly.
	c := newClient(t, Config{Addrs: []string{srv.URL}, MaxAttempts: 100, RetryBackoff: time.Hour})
	done := make(chan error, 1)
	go func() { _, err := c.Info(ctx); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("call did not return after its context was cancelled")
	}
	if hits.Load() != 1 {
		t.Fatalf("server hit %d times after cancellation", hits.Load())
	}
}

func TestTransportErrorsRetryOnlyIdempotentMethods(t *testing.T) {
	tests := []struct {
		method    string
		wantFirst int32
		wantOK    bool
	}{
		{http.MethodGet, 1, true},
		{http.MethodDelete, 1, true},
		{http.MethodPost, 1, false},
		{http.MethodPatch, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			var firstHits atomic.Int32
			first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				firstHits.Add(1)
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				_ = conn.Close()
			}))
			defer first.Close()
			second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			}))
			defer second.Close()
			// A fresh transport so the connection to first is new and Go's
			// own retry of reused connections does not interfere.
			hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			c := newClient(t, Config{Addrs: []string{first.URL, second.URL}, HTTPClient: hc})
			err := c.Do(context.Background(), tt.method, "/v1/x", nil, map[string]int{"a": 1}, nil)
			if (err == nil) != tt.wantOK {
				t.Fatalf("err = %v, want success %v", err, tt.wantOK)
			}
			if firstHits.Load() != tt.wantFirst {
				t.Fatalf("first hit %d times", firstHits.Load())
			}
		})
	}
}

func TestDoRawReturnsTheBodyAndDecodesProblems(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/export/users.csv":
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			_, _ = io.WriteString(w, "email\na@b.c\n")
		case "/v1/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
			_, _ = w.Write(b)
		default:
			writeProblem(w, api.Problem{Type: api.ProblemNotFound, Title: "Not found", Status: 404})
		}
	}))
	defer srv.Close()
	c := newClient(t, Config{Addrs: []string{srv.URL}, AccessKey: testAccessKey, SecretKey: testSecretKey})
	tests := []struct {
		name, path, body, ct string
		want                 string
		wantStatus           int
	}{
		{"csv export", "/v1/export/users.csv", "", "", "email\na@b.c\n", 0},
		{"upload echoed", "/v1/echo", "hello", "text/plain", "hello", 0},
		{"problem", "/v1/missing", "", "", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			resp, err := c.DoRaw(context.Background(), http.MethodGet, tt.path, nil, body, tt.ct)
			if tt.wantStatus != 0 {
				var p *api.Problem
				if !errors.As(err, &p) || p.Status != tt.wantStatus {
					t.Fatalf("got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("body %q, want %q", got, tt.want)
			}
			if tt.ct != "" && resp.Header.Get("Content-Type") != tt.ct {
				t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}
