package agent_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent"
	"github.com/berth-cluster/berth/shared/api"
)

// With heartbeats an hour apart, a session on containerd still becomes
// RUNNING, ends with its command's exit code, ends after DELETE, and ends
// ERROR when the OOM killer ends its container: every change reaches the
// manager as it happens, prompted by containerd's events (the agent's one
// heartbeat was at its start, before any session, and it converges without
// news only hourly too). The bound is the test's deadline (slowMachine),
// far inside the hour.
func TestSessionsMoveWithoutWaitingForAHeartbeat(t *testing.T) {
	t.Parallel()
	sc := startSessionClusterWith(t, 0, func(cfg *agent.Config) { cfg.HeartbeatEvery, cfg.ResyncEvery = time.Hour, time.Hour })

	s := sc.created(sc.do(sc.user, http.MethodPost, "/v1/sessions", map[string]any{"image": "berth/base:latest",
		"type": "interactive", "resources": map[string]any{"cpu": 0.5, "mem": 256 << 20}}))
	sc.wait(s.ID, api.SessionRunning)
	sc.terminate(s.ID)
	if got := sc.wait(s.ID, api.SessionTerminated); got.Containers[0].Status != api.ContainerExited {
		t.Errorf("terminated session's container %+v, want exited", got.Containers[0])
	}

	b := sc.created(sc.do(sc.user, http.MethodPost, "/v1/sessions", map[string]any{"image": "berth/base:latest",
		"type": "batch", "command": []string{"sh", "-c", "exit 3"}, "resources": map[string]any{"cpu": 0.5, "mem": 256 << 20}}))
	if got := sc.wait(b.ID, api.SessionTerminated); got.ExitCode == nil || *got.ExitCode != 3 {
		t.Errorf("batch session ended with exit code %v, want 3", got.ExitCode)
	}

	// tail keeps a line that never ends in memory: the OOM killer ends it.
	o := sc.created(sc.do(sc.user, http.MethodPost, "/v1/sessions", map[string]any{"image": "berth/base:latest",
		"type": "batch", "command": []string{"tail", "/dev/zero"}, "resources": map[string]any{"cpu": 0.5, "mem": 64 << 20}}))
	if got := sc.wait(o.ID, api.SessionError); got.StatusInfo != "oom-killed" {
		t.Errorf("OOM-killed session ended %s (%s), want ERROR (oom-killed)", got.Status, got.StatusInfo)
	}
}
