package server_test

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/berth-cluster/berth/manager/auth"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/tlsfiles"
	"github.com/berth-cluster/berth/shared/tlsfiles/tlstest"
	"github.com/berth-cluster/berth/shared/tlsgen"
)

const (
	malloryEmail    = "mallory@evil.example"
	malloryPassword = "Mallory-pass-1"
)

// The attack of issue 15: someone who can open a connection to a manager's
// Raft port speaks Raft to it (hashicorp/raft's own transport) and sends
// AppendEntries with a higher term carrying a UserCreate of a superadmin,
// committed at once; then logs in as that superadmin. Against mutual TLS it
// must fail at the handshake, whatever the attacker presents short of a
// manager certificate of the cluster: nothing is applied, the term does not
// move, the login is refused. The rows that succeed show the test can
// fail: plaintext Raft (-insecure-raft) falls to the same attack, and over
// TLS the attacker's code works once it holds what only managers hold.
func TestRaftPortRefusesAnAttackerWithoutAManagerCertificate(t *testing.T) {
	ca := tlstest.NewCA(t, "cluster")
	otherCA := tlstest.NewCA(t, "other")
	// Each row's manager gets a certificate of its own name: the rows run
	// at once and would otherwise write the same files in the CA's dir.
	var issued atomic.Int32
	withTLS := func(cfg *server.Config) { cfg.TLS = ca.Issue(fmt.Sprintf("%s-%d", cfg.NodeID, issued.Add(1))) }
	for _, tc := range []struct {
		name    string
		cluster func(*server.Config)
		dial    func(t *testing.T) raft.StreamLayer // nil: plaintext TCP
		wantIn  bool
	}{
		{name: "insecure-raft, plaintext attacker", cluster: testcluster.InsecureRaft, wantIn: true},
		{name: "mutual TLS, plaintext attacker", cluster: withTLS},
		{name: "mutual TLS, attacker without a certificate", cluster: withTLS,
			dial: func(t *testing.T) raft.StreamLayer { return attackerStream(t, nil) }},
		{name: "mutual TLS, certificate from another CA", cluster: withTLS,
			dial: func(t *testing.T) raft.StreamLayer { return attackerStream(t, loadPair(t, otherCA.Issue("m9"))) }},
		{name: "mutual TLS, agent certificate from the cluster's CA", cluster: withTLS,
			dial: func(t *testing.T) raft.StreamLayer {
				return attackerStream(t, loadPair(t, ca.IssueAs("rogue-agent", tlsgen.Agent)))
			}},
		{name: "mutual TLS, CLI certificate from the cluster's CA", cluster: withTLS,
			dial: func(t *testing.T) raft.StreamLayer {
				return attackerStream(t, loadPair(t, ca.IssueAs("some-user", tlsgen.CLI)))
			}},
		// The trust boundary itself: a manager's certificate is what lets a
		// peer into the log.
		{name: "mutual TLS, manager certificate of the cluster", cluster: withTLS, wantIn: true,
			dial: func(t *testing.T) raft.StreamLayer { return attackerStream(t, loadPair(t, ca.Issue("m9"))) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // a cluster of its own each
			c := testcluster.Start(t, 1, tc.cluster, func(cfg *server.Config) { cfg.UsageCheckEvery = -1 })
			target := c.Servers[0]
			var trans *raft.NetworkTransport
			if tc.dial == nil {
				var err error
				trans, err = raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 1, 2*time.Second, quietRaftLog())
				if err != nil {
					t.Fatal(err)
				}
			} else {
				trans = raft.NewNetworkTransportWithLogger(tc.dial(t), 1, 2*time.Second, quietRaftLog())
			}
			defer trans.Close()

			attackTerm, err := appendCraftedSuperadmin(t, trans, target)
			if tc.wantIn {
				if err != nil {
					t.Fatalf("the attack that must succeed here failed: %v", err)
				}
				testcluster.Eventually(t, 20*time.Second, func() error {
					if r := loginStatus(t, c, target); r != http.StatusOK {
						return fmt.Errorf("login as the crafted superadmin: %d", r)
					}
					return nil
				})
				return
			}
			if err == nil {
				t.Fatal("the Raft port answered the attacker's AppendEntries")
			}
			t.Logf("refused: %v", err)
			if u, _ := target.State().Read().User(malloryEmail); u != nil {
				t.Fatalf("the crafted superadmin was applied: %+v", u)
			}
			if _, _, term := target.Node().Indexes(); term >= attackTerm {
				t.Fatalf("the manager took the attacker's term %d (now %d)", attackTerm, term)
			}
			if got := loginStatus(t, c, target); got != http.StatusUnauthorized {
				t.Fatalf("login as the crafted superadmin: %d, want 401", got)
			}
		})
	}
}

// appendCraftedSuperadmin sends the attack through trans and returns the
// term it claimed. A false Success (the log moved under it) is retried;
// a transport error is the answer.
func appendCraftedSuperadmin(t *testing.T, trans *raft.NetworkTransport, target *server.Server) (uint64, error) {
	t.Helper()
	hash, err := auth.HashPassword(rand.Reader, malloryPassword)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	data, err := fsm.Encode(fsm.UserCreate{
		User: state.User{Email: malloryEmail, Username: "mallory", PasswordHash: hash, Role: api.RoleSuperadmin,
			Status: api.StatusActive, Domain: "default", Groups: []string{}, CreatedAt: now, ModifiedAt: now},
		Keypair: state.Keypair{AccessKey: "AKMALLORY000000000", SecretKey: "mallory-secret", User: malloryEmail,
			IsActive: true, IsAdmin: true, ResourcePolicy: "default", CreatedAt: now},
	})
	if err != nil {
		t.Fatal(err)
	}
	var term uint64
	for range 20 {
		// What a real attacker would probe for; the test reads it.
		stats := target.Node().Stats()
		lastIdx, _ := strconv.ParseUint(stats["last_log_index"], 10, 64)
		lastTerm, _ := strconv.ParseUint(stats["last_log_term"], 10, 64)
		_, _, cur := target.Node().Indexes()
		term = cur + 100
		req := &raft.AppendEntriesRequest{
			RPCHeader:         raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("mallory"), Addr: []byte(trans.LocalAddr())},
			Term:              term,
			PrevLogEntry:      lastIdx,
			PrevLogTerm:       lastTerm,
			Entries:           []*raft.Log{{Index: lastIdx + 1, Term: term, Type: raft.LogCommand, Data: data, AppendedAt: now}},
			LeaderCommitIndex: lastIdx + 1,
		}
		var resp raft.AppendEntriesResponse
		if err := trans.AppendEntries(raft.ServerID(target.ID()), raft.ServerAddress(target.RaftAddr()), req, &resp); err != nil {
			return term, err
		}
		if resp.Success {
			return term, nil
		}
	}
	return term, errors.New("the log kept moving: no AppendEntries matched it")
}

// attackerStream dials the Raft port over TLS presenting cert (none when
// nil) and, as an attacker would, trusting any server certificate.
func attackerStream(t *testing.T, cert *tls.Certificate) raft.StreamLayer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the attacker does not care who answers
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &tlsAttacker{Listener: ln, cfg: cfg}
}

type tlsAttacker struct {
	net.Listener
	cfg *tls.Config
}

func (a *tlsAttacker) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(addr), a.cfg)
}

func loadPair(t *testing.T, f tlsfiles.Files) *tls.Certificate {
	t.Helper()
	kp, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &kp
}

func loginStatus(t *testing.T, c *testcluster.Cluster, s *server.Server) int {
	t.Helper()
	r := c.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/auth/login", "",
		map[string]string{"email": malloryEmail, "password": malloryPassword})
	return r.Status
}

func quietRaftLog() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "attacker", Output: io.Discard})
}
