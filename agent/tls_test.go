package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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

// An agent with the cluster's CA registers and heartbeats with a manager
// serving HTTPS, and the manager reaches the agent's own HTTPS API for exec.
func TestAgentAndManagerTalkOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "berth-test")
	c := testcluster.StartDev(t, func(cfg *server.Config) {
		cfg.TLS = ca.Issue("m1")
		cfg.AgentTLS = true
		cfg.AgentToken = "agent-token"
	})
	s := c.Servers[0]
	base := "https://" + s.HTTPAddr()

	rt := newFakeRuntime("berth/base:latest")
	a, err := New(Config{Managers: []string{base}, Token: "agent-token", TLS: ca.Issue("n1"), StateDir: t.TempDir(),
		HTTPAddr: "127.0.0.1:0", ReservedMilliCPU: 1000, ReservedMemBytes: 1 << 30, HeartbeatEvery: 50 * time.Millisecond,
		DesiredWait: 200 * time.Millisecond, Runtime: rt, Host: fakeHost{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	dial, err := tlsfiles.Files{CA: ca.File}.Client()
	if err != nil {
		t.Fatal(err)
	}
	anon, err := client.New(client.Config{Addrs: []string{base}, TLS: dial})
	if err != nil {
		t.Fatal(err)
	}
	login, err := anon.Login(ctx, testcluster.AdminEmail, testcluster.AdminPassword)
	if err != nil {
		t.Fatalf("login over HTTPS: %v", err)
	}
	cl, err := client.New(client.Config{Addrs: []string{base}, TLS: dial, Token: login.Token})
	if err != nil {
		t.Fatal(err)
	}

	// Registered over HTTPS; the session below reaches RUNNING only when
	// the agent fetched its desired containers and heartbeat their state.
	testcluster.Eventually(t, 30*time.Second, func() error {
		var l api.List[api.Agent]
		if err := cl.Do(ctx, http.MethodGet, "/v1/agents", nil, nil, &l); err != nil {
			return err
		}
		if len(l.Items) != 1 || l.Items[0].ID != a.ID() || l.Items[0].Status != api.AgentAlive {
			return fmt.Errorf("agents: %+v", l.Items)
		}
		return nil
	})

	var sess api.Session
	if err := cl.Do(ctx, http.MethodPost, "/v1/sessions", nil, map[string]any{"image": "berth/base:latest", "type": api.SessionInteractive,
		"resources": map[string]any{"cpu": 1, "mem": 64 << 20}}, &sess); err != nil {
		t.Fatalf("create session: %v", err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		var got api.Session
		if err := cl.Do(ctx, http.MethodGet, "/v1/sessions/"+sess.ID, nil, nil, &got); err != nil {
			return err
		}
		if got.Status != api.SessionRunning {
			return fmt.Errorf("session is %s", got.Status)
		}
		return nil
	})
	var res api.ExecResult
	if err := cl.Do(ctx, http.MethodPost, "/v1/sessions/"+sess.ID+"/exec", nil, api.ExecRequest{Command: []string{"echo", "over-tls"}}, &res); err != nil {
		t.Fatalf("exec through the manager to the agent's HTTPS API: %v", err)
	}
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "over-tls") {
		t.Fatalf("exec answered %+v", res)
	}
}

// An agent without the cluster's CA cannot register: it does not trust the
// managers' certificate.
func TestAgentWithoutTheCARefusesTheManager(t *testing.T) {
	ca := tlstest.NewCA(t, "berth-test")
	c := testcluster.StartDev(t, func(cfg *server.Config) {
		cfg.TLS = ca.Issue("m1")
		cfg.AgentToken = "agent-token"
	})
	mgr := &httpManager{addrs: []string{"https://" + c.Servers[0].HTTPAddr()}, token: "agent-token"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := mgr.Register(ctx, api.AgentRegister{ID: "", Address: "127.0.0.1:1"}, "")
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("register without the CA: %v; want a certificate error", err)
	}
}
