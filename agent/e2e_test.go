package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent"
	"github.com/berth-cluster/berth/agent/runtime/containerd"
	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// A real agent on a real containerd joins a real manager: the manager shows
// it ALIVE with the node's real capacity and its images.
func TestAgentJoinsTheManagerWithItsRealCapacity(t *testing.T) {
	t.Parallel()
	socket := testenv.Containerd(t)
	ns := testenv.Namespace(t)
	testenv.ImportBaseImage(t, socket, ns)
	c := testcluster.StartDev(t, func(cfg *server.Config) { cfg.AgentToken = "agent-token" })
	s := c.Servers[0]

	rt, err := containerd.New(context.Background(), containerd.Config{Socket: socket, Namespace: ns, LogDir: t.TempDir(), HomeDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	a, err := agent.New(agent.Config{Managers: []string{testcluster.URL(s)}, Token: "agent-token", StateDir: t.TempDir(),
		HTTPAddr: "127.0.0.1:0", ReservedMilliCPU: 500, ReservedMemBytes: 256 << 20, HeartbeatEvery: 200 * time.Millisecond,
		Runtime: rt, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	token := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	var got api.Agent
	testcluster.Eventually(t, 20*time.Second, func() error {
		r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/agents", token, nil)
		var l api.List[api.Agent]
		r.JSON(t, &l)
		if len(l.Items) != 1 || l.Items[0].Status != api.AgentAlive {
			return fmt.Errorf("agents %+v", l.Items)
		}
		got = l.Items[0]
		return nil
	})
	wantCPU := int64(goruntime.NumCPU())*1000 - 500
	if got.Capacity[slots.CPU] != wantCPU || got.Capacity[slots.Mem] <= 0 || got.Node.ContainerdVersion == "" {
		t.Fatalf("agent %+v: want cpu %d millicores and a containerd version", got, wantCPU)
	}
	found := false
	for _, im := range got.Images {
		found = found || im.Name == testenv.BaseImageName
	}
	if !found {
		t.Fatalf("images %+v lack %s", got.Images, testenv.BaseImageName)
	}
}
