package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// With an idle timeout of 2 s, a session whose container uses nothing is
// ended with reason idle-timeout, while one that keeps its half core busy
// (measured from the agent's cpu_seconds, per requested core) stays.
func TestIdleTimeoutEndsIdleSessionsAndSparesBusyOnes(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":2,"mem":4294967296}`, withIdleEvery(100*time.Millisecond))
	r := testcluster.Do(t, http.MethodPatch, e.url("/v1/resource-policies/default"), e.admin, map[string]any{"idle_timeout": 2})
	wantStatus(t, r, http.StatusOK)
	user := createUser(t, e.s, e.admin, "ann@example.com", "ann", api.RoleUser)
	token := testcluster.Login(t, e.s, user.User.Email, testPassword)
	half := map[string]any{"resources": map[string]any{"cpu": 0.5, "mem": 1 << 30}}
	idle, busy := e.mustCreate(token, oneCPU(half)), e.mustCreate(token, oneCPU(half))
	e.place(idle.ID, 1)
	e.place(busy.ID, 1)

	// The agent's heartbeats: the busy container uses its half core in
	// full, the idle one 0.1 % of it.
	start := time.Now()
	report := func() {
		el := time.Since(start).Seconds()
		e.beat(running(idle.ID, 0, 0.0005*el), running(busy.ID, 0, 0.5*el))
	}
	var ended time.Time
	testcluster.Eventually(t, 20*time.Second, func() error {
		report()
		s := e.get(token, idle.ID)
		if s.Status == api.SessionRunning || s.Status == api.SessionScheduled {
			return fmt.Errorf("idle session still %s after %s", s.Status, time.Since(start).Round(time.Millisecond))
		}
		ended = time.Now()
		last := s.StatusHistory[len(s.StatusHistory)-1]
		if s.Status != api.SessionTerminating || last.Reason != "idle-timeout" {
			t.Fatalf("idle session ended as %s (%+v)", s.Status, s.StatusHistory)
		}
		return nil
	})
	if d := ended.Sub(start); d < 2*time.Second {
		t.Fatalf("idle session ended after %s, before its 2 s idle timeout", d)
	}
	// The busy one lives on, well past the timeout.
	tick := time.NewTicker(100 * time.Millisecond) // the agent's heartbeat cadence
	defer tick.Stop()
	for range tick.C {
		if time.Since(ended) > 3*time.Second {
			break
		}
		report()
	}
	if s := e.get(token, busy.ID); s.Status != api.SessionRunning {
		t.Fatalf("busy session is %s (%+v)", s.Status, s.StatusHistory)
	}
}
