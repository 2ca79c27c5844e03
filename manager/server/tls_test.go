package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
	"github.com/berth-cluster/berth/shared/tlsfiles"
	"github.com/berth-cluster/berth/shared/tlsfiles/tlstest"
)

// Three managers with certificates from one CA elect a leader over mutual
// TLS Raft, forward a follower's write to the leader over HTTPS, probe each
// other over HTTPS, and refuse a client that does not trust the CA.
func TestTLSClusterElectsForwardsAndRefusesUntrustedClients(t *testing.T) {
	ca := tlstest.NewCA(t, "berth-test")
	c := testcluster.Start(t, 3, func(cfg *server.Config) { cfg.TLS = ca.Issue(cfg.NodeID) })
	leader, follower := c.Leader(), c.Follower()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	dial, err := tlsfiles.Files{CA: ca.File}.Client()
	if err != nil {
		t.Fatal(err)
	}
	onlyFollower := []string{"https://" + follower.HTTPAddr()}
	anon, err := client.New(client.Config{Addrs: onlyFollower, TLS: dial})
	if err != nil {
		t.Fatal(err)
	}
	// Login writes a token: the follower forwards it to the leader.
	login, err := anon.Login(ctx, testcluster.AdminEmail, testcluster.AdminPassword)
	if err != nil {
		t.Fatalf("login through follower %s: %v", follower.ID(), err)
	}
	cl, err := client.New(client.Config{Addrs: onlyFollower, TLS: dial, Token: login.Token, MaxAttempts: 10, RetryBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := createUser(ctx, cl, 1); err != nil {
		t.Fatalf("create a user through follower %s: %v", follower.ID(), err)
	}
	waitHasUsers(t, leader, []string{"user1@example.com"})

	// The follower's view of its peers comes from /healthz probes over HTTPS.
	rc, err := cl.RaftConfiguration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rc.Servers {
		if m.State == api.MemberUnreachable {
			t.Errorf("member %s is %s to %s over HTTPS", m.ID, m.State, follower.ID())
		}
	}

	// A client that does not trust the CA is refused before any request.
	untrusting, err := client.New(client.Config{Addrs: onlyFollower, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = untrusting.Login(ctx, testcluster.AdminEmail, testcluster.AdminPassword)
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("login without the CA: %v; want a certificate error", err)
	}
}

// The Raft port speaks TLS and admits only callers with a certificate from
// the cluster's CA.
func TestTLSRaftPortRequiresAClientCertificate(t *testing.T) {
	ca := tlstest.NewCA(t, "berth-test")
	c := testcluster.Start(t, 1, func(cfg *server.Config) { cfg.TLS = ca.Issue(cfg.NodeID) })
	addr := c.Servers[0].RaftAddr()

	withCert, err := ca.Issue("probe").Client()
	if err != nil {
		t.Fatal(err)
	}
	noCert, err := tlsfiles.Files{CA: ca.File}.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := raftHandshake(addr, withCert); err != nil {
		t.Fatalf("a certificate from the CA was refused: %v", err)
	}
	err = raftHandshake(addr, noCert)
	if err == nil {
		t.Fatal("a caller without a certificate was admitted to the Raft port")
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatalf("want a refusal, got a timeout: %v", err)
	}
}

// raftHandshake completes a TLS handshake with the Raft port and waits for
// the server's verdict: with TLS 1.3 a refused client certificate shows as
// an alert on the first read; an admitted caller that sends nothing reads
// nothing until the deadline.
func raftHandshake(addr string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, err = conn.Read(make([]byte, 1))
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return nil
	}
	return fmt.Errorf("read after handshake: %w", err)
}

// A manager started with -join reaches the cluster over HTTPS and then
// speaks Raft with it over mutual TLS.
func TestTLSManagerJoinsOverHTTPS(t *testing.T) {
	ca := tlstest.NewCA(t, "berth-test")
	c := testcluster.Start(t, 1, func(cfg *server.Config) {
		cfg.TLS = ca.Issue(cfg.NodeID)
		cfg.JoinToken = "join-secret"
	})
	cfg := testcluster.Config(t, "m2")
	cfg.TLS = ca.Issue("m2")
	cfg.JoinToken = "join-secret"
	cfg.Join = c.Servers[0].HTTPAddr()
	s, err := server.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	testcluster.Eventually(t, 30*time.Second, func() error {
		servers, err := c.Servers[0].Node().Servers()
		if err != nil {
			return err
		}
		if len(servers) != 2 {
			return fmt.Errorf("raft configuration has %d servers", len(servers))
		}
		if applied, _, _ := s.Node().Indexes(); applied == 0 {
			return errors.New("the joined manager has applied nothing")
		}
		if m, _ := s.State().Read().Member("m1"); m == nil {
			return errors.New("the joined manager has not replicated the member records")
		}
		return nil
	})
}
