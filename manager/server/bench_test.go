package server_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/client"
)

// BenchmarkCreateUser is one user create through the HTTP API of a one-node
// cluster: decode, validation, argon2id hash, Raft commit (fsync), apply.
func BenchmarkCreateUser(b *testing.B) {
	c := testcluster.StartDev(b)
	token := testcluster.Login(b, c.Servers[0], testcluster.AdminEmail, testcluster.AdminPassword)
	cl, err := client.New(client.Config{Addrs: []string{testcluster.URL(c.Servers[0])}, Token: token})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := createUser(context.Background(), cl, i); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWhoAmI is an authenticated read: consistent (the leader confirms
// its leadership with a quorum first) and stale (answered locally), on a
// follower of a three-manager cluster (consistent reads are forwarded).
func BenchmarkWhoAmI(b *testing.B) {
	// Plaintext, as the figures in docs/BENCHMARKS.md were measured.
	c := testcluster.Start(b, 3, testcluster.InsecureRaft)
	f := c.Follower()
	token := testcluster.Login(b, f, testcluster.AdminEmail, testcluster.AdminPassword)
	cl, err := client.New(client.Config{Addrs: []string{testcluster.URL(f)}, Token: token})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		query url.Values
	}{{"consistent-via-follower", nil}, {"stale-on-follower", url.Values{"stale": {"true"}}}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for i := 0; i < b.N; i++ {
				if err := cl.Do(ctx, http.MethodGet, "/v1/auth/whoami", bc.query, nil, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
