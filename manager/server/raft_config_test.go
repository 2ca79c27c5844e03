package server_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/tlsfiles/tlstest"
)

// A manager that would serve Raft to the network without mutual TLS, or
// send the join token across it in plaintext, refuses to start and says
// what to do; -dev has no Raft port to configure.
func TestManagerRefusesRaftOrJoinWithoutTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "cluster")
	peers := []server.Peer{{ID: "m1", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}}
	for _, tc := range []struct {
		name  string
		tweak func(*server.Config)
		want  []string // each in the error; none: it starts
	}{
		{"peers without TLS", func(c *server.Config) { c.Peers, c.BootstrapExpect = peers, 1 },
			[]string{"berth tls ca create", "berth tls cert create -manager", "-tls-cert, -tls-key and -tls-ca", "-insecure-raft"}},
		{"join without TLS", func(c *server.Config) { c.Join = "127.0.0.1:9"; c.JoinToken = "t" },
			[]string{"berth tls cert create -manager", "-insecure-raft"}},
		{"a restart without TLS", func(*server.Config) {}, []string{"berth tls ca create", "-insecure-raft"}},
		{"-insecure-raft and a certificate", func(c *server.Config) { c.TLS, c.InsecureRaft = ca.Issue("m1"), true },
			[]string{"-insecure-raft contradicts -tls-cert"}},
		{"-dev with -insecure-raft", func(c *server.Config) { c.Dev, c.RaftAddr, c.InsecureRaft = true, "", true },
			[]string{"-insecure-raft means nothing with -dev"}},
		{"-dev with -raft-addr", func(c *server.Config) { c.Dev = true },
			[]string{"-raft-addr means nothing with -dev"}},
		{"join over plain HTTP to another host", func(c *server.Config) {
			c.InsecureRaft, c.Join, c.JoinToken = true, "10.0.0.11:8080", "t"
		}, []string{"-join 10.0.0.11:8080", "join token across the network in plaintext"}},
		{"join to an http:// URL with TLS on", func(c *server.Config) {
			c.TLS, c.Join, c.JoinToken = ca.Issue("m1"), "http://m1.example.com:8080", "t"
		}, []string{"-join http://m1.example.com:8080", "in plaintext"}},
		{"join over HTTPS", func(c *server.Config) { c.TLS, c.Join, c.JoinToken = ca.Issue("m1"), "10.0.0.11:8080", "t" }, nil},
		{"join over plain HTTP to loopback", func(c *server.Config) {
			c.InsecureRaft, c.Join, c.JoinToken = true, "http://localhost:9", "t"
		}, nil},
		{"-insecure-raft said by name", func(c *server.Config) { c.InsecureRaft = true }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testcluster.Config(t, "m1")
			tc.tweak(&cfg)
			s, err := server.Start(cfg)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("started; want a refusal saying %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// A manager says at start, in its log and in its metrics, when an attacker
// on the network could read or rewrite what it serves: plaintext Raft
// (-insecure-raft, berth_raft_insecure 1) and a plain-HTTP API on a
// non-loopback address.
func TestManagerWarnsAboutPlaintextAtStart(t *testing.T) {
	const raftWarning, httpWarning = "raft runs over plaintext TCP", "plain HTTP on a non-loopback address"
	for _, tc := range []struct {
		name     string
		start    func(t *testing.T, log *slog.Logger) (*testcluster.Cluster, *server.Server)
		insecure string // berth_raft_insecure
		warns    []string
	}{
		{"-insecure-raft", func(t *testing.T, log *slog.Logger) (*testcluster.Cluster, *server.Server) {
			c := testcluster.Start(t, 1, testcluster.InsecureRaft, func(cfg *server.Config) { cfg.Log = log })
			return c, c.Servers[0]
		}, "1", []string{raftWarning}},
		{"mutual TLS", func(t *testing.T, log *slog.Logger) (*testcluster.Cluster, *server.Server) {
			c := testcluster.Start(t, 1, func(cfg *server.Config) { cfg.Log = log; cfg.HTTPAddr = "0.0.0.0:0" })
			return c, c.Servers[0]
		}, "0", nil},
		{"-dev on loopback", func(t *testing.T, log *slog.Logger) (*testcluster.Cluster, *server.Server) {
			c := testcluster.StartDev(t, func(cfg *server.Config) { cfg.Log = log })
			return c, c.Servers[0]
		}, "0", nil},
		{"-dev, plain HTTP on every address", func(t *testing.T, log *slog.Logger) (*testcluster.Cluster, *server.Server) {
			c := testcluster.StartDev(t, func(cfg *server.Config) { cfg.Log = log; cfg.HTTPAddr = "0.0.0.0:0" })
			return c, c.Servers[0]
		}, "0", []string{httpWarning}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // a manager and a log of its own each
			var buf syncBuffer
			c, s := tc.start(t, slog.New(slog.NewJSONHandler(&buf, nil)))
			warned := map[string]map[string]any{}
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["level"] != "WARN" {
					continue
				}
				for _, w := range []string{raftWarning, httpWarning} {
					if strings.Contains(rec["msg"].(string), w) {
						warned[w] = rec
					}
				}
			}
			for _, w := range []string{raftWarning, httpWarning} {
				want := strings.Contains(strings.Join(tc.warns, "|"), w)
				if rec, got := warned[w]; got != want {
					t.Errorf("warning %q logged: %v, want %v", w, got, want)
				} else if got && rec["raft_addr"] == nil && rec["http_addr"] == nil {
					t.Errorf("warning %q names no address: %v", w, rec)
				}
			}
			// Bound to every address, dialed on loopback (what the
			// certificate names).
			_, port, err := net.SplitHostPort(s.HTTPAddr())
			if err != nil {
				t.Fatal(err)
			}
			scheme, _, _ := strings.Cut(testcluster.URL(s), "://")
			r := c.Do(t, http.MethodGet, scheme+"://127.0.0.1:"+port+"/metrics", "", nil)
			if want := "\nberth_raft_insecure " + tc.insecure + "\n"; !strings.Contains(string(r.Body), want) {
				t.Errorf("metrics lack %q", strings.TrimSpace(want))
			}
		})
	}
}

// syncBuffer is a bytes.Buffer the manager's goroutines may log to while
// the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
