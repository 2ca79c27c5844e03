package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// runningSession starts a one-core session for a new user on the env's
// agent and returns it with the user's keypair.
func runningSession(t *testing.T, e *sessionEnv) (api.Session, createdUser) {
	t.Helper()
	user := createUser(t, e.s, e.admin, "ann@example.com", "ann", api.RoleUser)
	token := testcluster.Login(t, e.s, user.User.Email, testPassword)
	s := e.mustCreate(token, oneCPU(nil))
	e.place(s.ID, 1)
	e.beat(running(s.ID, 0, 0))
	e.waitStatus(s.ID, api.SessionRunning)
	return s, user
}

func recalculate(t *testing.T, e *sessionEnv) api.UsageRecalculation {
	t.Helper()
	r := testcluster.Do(t, http.MethodPost, e.url("/v1/maintenance/recalculate-usage"), e.admin, nil)
	wantStatus(t, r, http.StatusOK)
	var out api.UsageRecalculation
	r.JSON(t, &out)
	return out
}

// corrupt overwrites usage rows of the manager's state behind the FSM's
// back: the kind of drift the manual's RECALCULATE USAGE exists for.
func corrupt(t *testing.T, s *server.Server, rows map[string]*state.Usage) {
	t.Helper()
	tx := s.State().Write()
	defer tx.Abort()
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range rows {
			if !yield(k) {
				return
			}
		}
	}) {
		if err := tx.SetUsage(k, rows[k]); err != nil {
			t.Fatal(err)
		}
	}
	tx.Commit()
}

func driftMetric(t *testing.T, e *sessionEnv) string {
	t.Helper()
	resp, err := http.Get(e.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^berth_usage_drift (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no berth_usage_drift in /metrics")
	}
	return string(m[1])
}

func TestRecalculateUsageIsForSuperadminsOnly(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":2,"mem":4294967296}`)
	for _, role := range []string{api.RoleAdmin, api.RoleUser, api.RoleMonitor} {
		u := createUser(t, e.s, e.admin, role+"@example.com", role+"x", role)
		token := testcluster.Login(t, e.s, u.User.Email, testPassword)
		r := testcluster.Do(t, http.MethodPost, e.url("/v1/maintenance/recalculate-usage"), token, nil)
		wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden)
	}
	r := testcluster.Do(t, http.MethodPost, e.url("/v1/maintenance/recalculate-usage"), "", nil)
	wantProblem(t, r, http.StatusUnauthorized, api.ProblemUnauthorized)
}

func TestRecalculateUsageFindsAndFixesInjectedDrift(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":2,"mem":4294967296}`,
		func(cfg *server.Config) { cfg.UsageCheckEvery = -1 })
	s, user := runningSession(t, e)
	ak := user.Keypair.AccessKey

	clean := recalculate(t, e)
	if len(clean.Drift) != 0 || clean.Fixed != 0 || clean.Checked.Agents != 1 || clean.Checked.Keypairs < 2 {
		t.Fatalf("a clean cluster: %+v", clean)
	}
	if got := driftMetric(t, e); got != "0" {
		t.Errorf("berth_usage_drift %s on a clean cluster", got)
	}

	corrupt(t, e.s, map[string]*state.Usage{
		state.UsageKeypair(ak):       {Slots: slots.Slots{slots.CPU: 3000, slots.Mem: 1 << 30}, Sessions: 3},
		state.UsageAgent(e.agent.ID): nil,
	})
	got := recalculate(t, e)
	want := []api.UsageDrift{
		{Scope: "agent/" + e.agent.ID, Slot: "cpu", Recorded: "0", Actual: "1"},
		{Scope: "agent/" + e.agent.ID, Slot: "mem", Recorded: "0", Actual: "1073741824"},
		{Scope: "keypair/" + ak, Slot: "cpu", Recorded: "3", Actual: "1"},
		{Scope: "keypair/" + ak, Slot: "sessions", Recorded: "3", Actual: "1"},
	}
	if !slices.Equal(got.Drift, want) || got.Fixed != len(want) {
		t.Fatalf("drift %+v fixed %d, want %+v fixed %d", got.Drift, got.Fixed, want, len(want))
	}
	if m := driftMetric(t, e); m != "4" {
		t.Errorf("berth_usage_drift %s after finding 4 differences", m)
	}
	var ind api.ResourceIndicator
	r := testcluster.Do(t, http.MethodGet, e.url("/v1/resources/me?access_key="+ak), e.admin, nil)
	wantStatus(t, r, http.StatusOK)
	r.JSON(t, &ind)
	if cpuOf(ind.Occupied) != "1" {
		t.Errorf("after the repair the keypair occupies %s cores, want 1: %+v", cpuOf(ind.Occupied), ind)
	}
	if again := recalculate(t, e); len(again.Drift) != 0 || again.Fixed != 0 {
		t.Errorf("a second recalculation found %+v", again)
	}
	if got := e.get(e.admin, s.ID); got.Status != api.SessionRunning {
		t.Errorf("the session is %s after the repair", got.Status)
	}
}

func TestRecalculateUsageComparesRecordsWithTheAgentsReport(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":2,"mem":4294967296}`,
		func(cfg *server.Config) { cfg.UsageCheckEvery = -1 })
	s, _ := runningSession(t, e)
	// The agent runs a container no session placed there.
	ghost := api.ContainerReport{ID: "ghost-0", SessionID: "ghost", Status: "running"}
	e.beat(running(s.ID, 0, 1), ghost)
	got := recalculate(t, e)
	want := []api.UsageDrift{{Scope: "agent/" + e.agent.ID, Slot: "containers", Recorded: "1", Actual: "2"}}
	if !slices.Equal(got.Drift, want) || got.Fixed != 1 {
		t.Fatalf("drift %+v fixed %d, want %+v fixed 1", got.Drift, got.Fixed, want)
	}
	e.beat(running(s.ID, 0, 2)) // the agent removed the orphan
	if again := recalculate(t, e); len(again.Drift) != 0 {
		t.Errorf("drift after the orphan went: %+v", again.Drift)
	}
}

func TestPeriodicUsageCheckRepairsDriftByItself(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":2,"mem":4294967296}`,
		func(cfg *server.Config) { cfg.UsageCheckEvery = 100 * time.Millisecond })
	_, user := runningSession(t, e)
	key := state.UsageKeypair(user.Keypair.AccessKey)
	corrupt(t, e.s, map[string]*state.Usage{key: {Slots: slots.Slots{slots.CPU: 7000}, Sessions: 9}})
	testcluster.Eventually(t, 15*time.Second, func() error {
		drift, err := e.s.State().Read().UsageDrifts()
		if err != nil {
			return err
		}
		if len(drift) != 0 {
			return fmt.Errorf("still drifting: %+v", drift)
		}
		return nil
	})
	var found float64
	testcluster.Eventually(t, 15*time.Second, func() error {
		resp, err := http.Get(e.url("/metrics"))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^berth_usage_drift_found_total (\S+)$`).FindSubmatch(body)
		if m == nil {
			return fmt.Errorf("no berth_usage_drift_found_total")
		}
		if err := json.Unmarshal(m[1], &found); err != nil || found < 2 {
			return fmt.Errorf("found %s differences so far", m[1])
		}
		return nil
	})
}

func TestInfoCountsAgentsAndSessions(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":1,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`)
	_, user := runningSession(t, e)
	token := testcluster.Login(t, e.s, user.User.Email, testPassword)
	e.mustCreate(token, oneCPU(nil)) // the agent is full: it waits
	var info api.Info
	testcluster.Do(t, http.MethodGet, e.url("/v1/info"), token, nil).JSON(t, &info)
	if info.Sessions.Running != 1 || info.Sessions.Pending != 1 || info.Agents.Alive != 1 || info.Agents.Lost != 0 {
		t.Fatalf("info counts agents %+v sessions %+v", info.Agents, info.Sessions)
	}
	if info.Version == "" || info.License == "" || info.Cluster.Leader == "" || len(info.Cluster.Members) != 1 ||
		info.Cluster.Members[0].State != api.MemberLeader || info.Cluster.RaftIndex == 0 {
		t.Fatalf("info %+v", info)
	}
}
