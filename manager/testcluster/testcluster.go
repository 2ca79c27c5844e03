// Package testcluster starts real managers in one process for tests: a
// one-node dev cluster (Raft in memory) or an N-node Raft cluster on
// loopback ports the OS picks, with mutual TLS from a CA of its own unless
// a test asks for InsecureRaft, each manager with its own temp data dir,
// stopped when the test ends.
package testcluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/auth"
	"github.com/berth-cluster/berth/manager/fakecluster"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/tlsfiles"
	"github.com/berth-cluster/berth/shared/tlsfiles/tlstest"
)

// AdminEmail and AdminPassword are the bootstrap superadmin of every test cluster.
const (
	AdminEmail    = "admin@berth.local"
	AdminPassword = "Admin-pass-1"
)

// Cluster is a set of in-process managers.
type Cluster struct {
	t       testing.TB
	mu      sync.Mutex
	cfgs    []server.Config
	Servers []*server.Server // nil while a node is stopped
	// CA is the PEM file of the CA that signed the managers' certificates
	// (Start without InsecureRaft); empty otherwise.
	CA string
	ca *tlstest.CA
	// fake: the managers run on manager/fakecluster (StartFake).
	fake bool
}

// timing is the Raft timing tests use: fast failover, still tolerant of a
// loaded two-core machine.
func timing() server.RaftTiming {
	return server.RaftTiming{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
	}
}

// Config is the configuration of a test manager with its own temp dir.
// Its password hashes cost the least argon2id allows: at the default cost
// (19 MiB, 2 passes; about 85 ms a hash under the race detector, with its
// shadow memory) the hashes of bootstraps, user creations and logins were
// most of what the API tests spent, and no test here is about the cost
// (manager/auth's are).
func Config(t testing.TB, id string) server.Config {
	var out io.Writer = io.Discard
	if os.Getenv("BERTH_TEST_LOG") != "" {
		out = os.Stderr
	}
	return server.Config{
		NodeID: id, HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		BootstrapAdminPassword: AdminPassword, Log: slog.New(slog.NewTextHandler(out, nil)),
		Out: io.Discard, RaftLog: out, RaftLogLevel: "warn", Raft: timing(), PasswordCost: auth.Cost{Time: 1, MemoryKiB: 8},
	}
}

// StartDev starts a one-node cluster and waits until it is bootstrapped.
func StartDev(t testing.TB, tweak ...func(*server.Config)) *Cluster {
	t.Helper()
	cfg := Config(t, "dev")
	cfg.Dev, cfg.RaftAddr = true, ""
	for _, f := range tweak {
		f(&cfg)
	}
	s, err := server.Start(cfg)
	if err != nil {
		t.Fatalf("start dev manager: %v", err)
	}
	c := &Cluster{t: t, cfgs: []server.Config{pin(cfg, s)}, Servers: []*server.Server{s}}
	t.Cleanup(c.Stop)
	c.WaitBootstrapped()
	return c
}

// StartFake starts one manager on manager/fakecluster instead of Raft: the
// API, the leader's duties and the HTTP listener are the real ones, every
// write is applied to the FSM at once, and the manager leads from the
// start. It is for tests about what the managers do rather than about
// consensus (replication, failover, forwarding, durability: those need
// Start or StartDev). It waits until the first-start objects exist.
func StartFake(t testing.TB, tweak ...func(*server.Config)) *Cluster {
	t.Helper()
	cfg := Config(t, "dev")
	cfg.Dev, cfg.RaftAddr = true, ""
	for _, f := range tweak {
		f(&cfg)
	}
	s, err := server.StartOn(cfg, fakecluster.New(cfg.NodeID, cfg.Log))
	if err != nil {
		t.Fatalf("start manager on a fake cluster: %v", err)
	}
	c := &Cluster{t: t, cfgs: []server.Config{pin(cfg, s)}, Servers: []*server.Server{s}, fake: true}
	t.Cleanup(c.Stop)
	c.WaitBootstrapped()
	return c
}

// InsecureRaft is a tweak for Start: plaintext Raft and HTTP, for tests
// about something other than the transport, where certificates would only
// cost time.
func InsecureRaft(cfg *server.Config) {
	cfg.TLS, cfg.InsecureRaft = tlsfiles.Files{}, true
}

// Start starts n managers that form one cluster through static peers. They
// speak Raft over mutual TLS and serve the API over HTTPS with certificates
// from a CA made for the cluster (c.CA; reach them with c.Do, c.Login,
// c.ClientTLS); a tweak may replace the certificates, or drop TLS with
// InsecureRaft.
func Start(t testing.TB, n int, tweak ...func(*server.Config)) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	t.Cleanup(c.Stop)
	ca := tlstest.NewCA(t, "testcluster")
	c.CA, c.ca = ca.File, ca
	for i := 0; i < n; i++ {
		cfg := Config(t, fmt.Sprintf("m%d", i+1))
		cfg.TLS = ca.Issue(cfg.NodeID)
		for _, f := range tweak {
			f(&cfg)
		}
		s, err := server.Start(cfg)
		if err != nil {
			t.Fatalf("start manager %s: %v", cfg.NodeID, err)
		}
		c.cfgs = append(c.cfgs, pin(cfg, s))
		c.Servers = append(c.Servers, s)
	}
	// A tweak may have given the managers other certificates, or none.
	if tls := c.cfgs[0].TLS; !tls.Serving() {
		c.CA, c.ca = "", nil
	} else if tls.CA != c.CA {
		c.CA, c.ca = tls.CA, nil
	}
	peers := make([]server.Peer, n)
	for i, s := range c.Servers {
		peers[i] = server.Peer{ID: s.ID(), RaftAddr: s.RaftAddr(), HTTPAddr: s.HTTPAddr()}
	}
	for i, s := range c.Servers {
		c.cfgs[i].Peers = peers
		c.cfgs[i].BootstrapExpect = n
		if err := s.Bootstrap(peers); err != nil {
			t.Fatalf("bootstrap %s: %v", s.ID(), err)
		}
	}
	c.WaitBootstrapped()
	return c
}

// pin makes a restart reuse the addresses the OS picked the first time.
func pin(cfg server.Config, s *server.Server) server.Config {
	cfg.HTTPAddr = s.HTTPAddr()
	if !cfg.Dev {
		cfg.RaftAddr = s.RaftAddr()
	}
	return cfg
}

// Stop stops every running manager.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.Servers {
		if s != nil {
			_ = s.Close()
			c.Servers[i] = nil
		}
	}
}

// Kill stops manager i as a crash would.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	s := c.Servers[i]
	c.Servers[i] = nil
	c.mu.Unlock()
	if s == nil {
		c.t.Fatalf("manager %d is not running", i)
	}
	if err := s.Close(); err != nil {
		c.t.Logf("close manager %d: %v", i, err)
	}
	// A keep-alive connection to the stopped manager may still sit in the
	// shared transport's pool; a POST that picks it fails with EOF and, not
	// being idempotent, is rightly not retried. A crashed process would reset
	// those connections; drop them as the crash would.
	if tr, ok := http.DefaultTransport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
}

// Restart starts manager i again on its data dir and addresses.
func (c *Cluster) Restart(i int) *server.Server {
	c.t.Helper()
	if c.fake {
		c.t.Fatal("a manager on a fake cluster keeps no state to restart with; use StartDev or Start")
	}
	cfg := c.cfgs[i]
	cfg.Peers, cfg.BootstrapExpect = nil, 0
	var s *server.Server
	// The OS may hold the old port for a moment after close.
	Eventually(c.t, 10*time.Second, func() error {
		var err error
		s, err = server.Start(cfg)
		return err
	})
	c.mu.Lock()
	c.Servers[i] = s
	c.mu.Unlock()
	return s
}

// Running lists the managers that are up.
func (c *Cluster) Running() []*server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*server.Server
	for _, s := range c.Servers {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Leader waits until exactly one running manager is leader and returns it.
func (c *Cluster) Leader() *server.Server {
	c.t.Helper()
	var leader *server.Server
	Eventually(c.t, 15*time.Second, func() error {
		leader = nil
		for _, s := range c.Running() {
			if s.IsLeader() {
				if leader != nil {
					return fmt.Errorf("two leaders: %s and %s", leader.ID(), s.ID())
				}
				leader = s
			}
		}
		if leader == nil {
			return fmt.Errorf("no leader among %d running managers", len(c.Running()))
		}
		return nil
	})
	return leader
}

// Follower returns a running manager that is not the leader.
func (c *Cluster) Follower() *server.Server {
	c.t.Helper()
	leader := c.Leader()
	for _, s := range c.Running() {
		if s != leader {
			return s
		}
	}
	c.t.Fatal("no follower is running")
	return nil
}

// Index returns the position of s in Servers.
func (c *Cluster) Index(s *server.Server) int {
	for i, x := range c.Servers {
		if x == s {
			return i
		}
	}
	return -1
}

// WaitBootstrapped waits until every running manager has applied the
// first-start objects and knows every member's HTTP address.
func (c *Cluster) WaitBootstrapped() {
	c.t.Helper()
	c.Leader()
	n := len(c.Running())
	Eventually(c.t, 15*time.Second, func() error {
		for _, s := range c.Running() {
			tx := s.State().Read()
			if v, _ := tx.Setting(state.SettingBootstrapped); v == "" {
				return fmt.Errorf("%s has not applied the bootstrap objects", s.ID())
			}
			if ms, _ := tx.Members(); len(ms) < n {
				return fmt.Errorf("%s knows %d of %d members", s.ID(), len(ms), n)
			}
		}
		return nil
	})
}

// URL is the base URL of manager s (https with TLS on).
func URL(s *server.Server) string { return s.URL() }

// Issue makes a manager certificate from the cluster's CA, for a manager
// that joins it.
func (c *Cluster) Issue(name string) tlsfiles.Files {
	c.t.Helper()
	if c.ca == nil {
		c.t.Fatal("the cluster's certificates do not come from testcluster's CA")
	}
	return c.ca.Issue(name)
}

// ClientTLS is the TLS configuration that trusts the cluster's CA; nil when
// the cluster runs without TLS.
func (c *Cluster) ClientTLS() *tls.Config {
	c.t.Helper()
	if c.CA == "" {
		return nil
	}
	cfg, err := tlsfiles.Files{CA: c.CA}.Client()
	if err != nil {
		c.t.Fatal(err)
	}
	return cfg
}

// HTTPClient dials the cluster's managers, trusting its CA.
func (c *Cluster) HTTPClient() *http.Client {
	c.t.Helper()
	tc := c.ClientTLS()
	if tc == nil {
		return http.DefaultClient
	}
	return &http.Client{Transport: tlsfiles.Transport(tc)}
}

// Eventually retries f until it returns nil or the deadline passes.
func Eventually(t testing.TB, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	wait := 10 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", within, err)
		}
		time.Sleep(wait)
		wait = min(wait*2, 200*time.Millisecond)
	}
}

// Response is a decoded HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Do sends a request with an optional bearer token and JSON body to a
// manager without TLS (a dev cluster, or InsecureRaft).
func Do(t testing.TB, method, url, token string, body any) *Response {
	t.Helper()
	return do(t, http.DefaultClient, method, url, token, body)
}

// Do sends a request as the package's Do does, trusting the cluster's CA.
func (c *Cluster) Do(t testing.TB, method, url, token string, body any) *Response {
	t.Helper()
	return do(t, c.HTTPClient(), method, url, token, body)
}

func do(t testing.TB, hc *http.Client, method, url, token string, body any) *Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Login returns a bearer token for the user from a manager without TLS.
func Login(t testing.TB, s *server.Server, email, password string) string {
	t.Helper()
	return login(t, http.DefaultClient, s, email, password)
}

// Login returns a bearer token for the user, trusting the cluster's CA.
func (c *Cluster) Login(t testing.TB, s *server.Server, email, password string) string {
	t.Helper()
	return login(t, c.HTTPClient(), s, email, password)
}

func login(t testing.TB, hc *http.Client, s *server.Server, email, password string) string {
	t.Helper()
	r := do(t, hc, http.MethodPost, URL(s)+"/v1/auth/login", "", map[string]string{"email": email, "password": password})
	if r.Status != http.StatusOK {
		t.Fatalf("login %s: %d %s", email, r.Status, r.Body)
	}
	var out struct{ Token string }
	r.JSON(t, &out)
	return out.Token
}
