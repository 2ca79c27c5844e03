package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// Where the create handler's own copy of the admission rules disagreed
// with the scheduler, the handler accepted sessions that the scheduler then
// left PENDING for ever. Now both ask the same predicates: for each such
// case the handler answers 422 with its reasons, and the same session put
// into the log without the handler is left PENDING by the scheduler, with
// its own words; the neighbouring case the handler accepts, the scheduler
// places.
func TestTheCreateHandlerRefusesWhatTheSchedulerWouldNeverPlace(t *testing.T) {
	t.Parallel()
	zero := 0
	cases := []struct {
		name string
		// setup shapes the cluster (the agent has 4 cores and 8 GiB; the
		// policy allows 2 containers per session) and returns the folder
		// host the session mounts, if any, and the folder's id.
		setup         func(e *sessionEnv) (host, folder string)
		body          map[string]any
		fields        map[string][]string
		schedulerSays string
		accepted      map[string]any // a request the handler takes and the scheduler places
	}{
		{
			name: "max_containers_per_session 0 reads as 1",
			setup: func(e *sessionEnv) (string, string) {
				e.propose(fsm.PolicyUpdate{Name: "default", MaxContainersPerSession: &zero, ModifiedAt: time.Now().UTC()})
				return "", ""
			},
			body:          oneCPU(map[string]any{"cluster_size": 2}),
			fields:        map[string][]string{"cluster_size": {"cluster_size 2 > 1 containers per session allowed by policy default"}},
			schedulerSays: "cluster_size 2 > max_containers_per_session 1",
			accepted:      oneCPU(map[string]any{"cluster_size": 1}),
		},
		{
			name: "max_concurrent_sessions 0 lets no session run",
			setup: func(e *sessionEnv) (string, string) {
				e.propose(fsm.PolicyUpdate{Name: "default", MaxConcurrentSessions: &fsm.Nullable[int]{Value: &zero}, ModifiedAt: time.Now().UTC()})
				return "", ""
			},
			body: oneCPU(nil),
			fields: map[string][]string{"max_concurrent_sessions": {
				"policy default allows 0 concurrent sessions: no session can run; an administrator must raise max_concurrent_sessions"}},
			schedulerSays: "concurrency 0/0",
		},
		{
			name: "the folder host only on an agent too small",
			setup: func(e *sessionEnv) (string, string) {
				// The agent of the env has the host but one core; a second,
				// big agent has no folder host.
				e.capacity.Capacity = mustSlots(`{"cpu":1,"mem":8589934592}`)
				e.capacity.FolderHosts = []string{"local"}
				e.beat()
				in := registration("10.0.0.6:6001", api.Image{Name: baseImage, Digest: "sha256:aa", Size: 1 << 20})
				in.Capacity = mustSlots(`{"cpu":16,"mem":68719476736}`)
				register(e.t, e.s, in)
				fe := &folderEnv{t: e.t, s: e.s, admin: e.admin}
				f := fe.createFolder(e.admin, map[string]any{"name": "work", "host": "local"})
				return "local", f.ID
			},
			body: map[string]any{"image": baseImage, "type": "interactive", "mounts": []string{"work"},
				"resources": map[string]any{"cpu": 4, "mem": 1 << 30}},
			fields:        map[string][]string{"resources.cpu": {"no agent has cpu 4 (largest 1)"}},
			schedulerSays: "no agent has cpu 4 and mem 1GiB free at once",
			accepted: map[string]any{"image": baseImage, "type": "interactive", "mounts": []string{"work"},
				"resources": map[string]any{"cpu": 1, "mem": 1 << 30}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":null,"mem":null}`,
				func(cfg *server.Config) { cfg.FolderHosts = map[string]string{"local": dir} })
			host, folder := tc.setup(e)

			p := wantProblem(t, e.create(e.admin, tc.body), http.StatusUnprocessableEntity, api.ProblemValidation)
			wantFields(t, p, tc.fields)

			// The same session, put into the log as the handler would have.
			res := tc.body["resources"].(map[string]any)
			s := state.Session{ID: "s-direct", AccessKey: e.adminKey(), Image: baseImage, Type: api.SessionInteractive,
				Requested:   slots.Slots{slots.CPU: int64(toFloat(res["cpu"]) * 1000), slots.Mem: int64(toFloat(res["mem"]))},
				ClusterSize: 1, Status: api.SessionPending, Command: []string{}, Env: map[string]string{}, Mounts: []api.Mount{},
				Containers: []state.SessionContainer{}, CreatedAt: time.Now().UTC()}
			if n, ok := tc.body["cluster_size"].(int); ok {
				s.ClusterSize = n
			}
			if host != "" {
				s.Mounts = []api.Mount{{Host: host, Folder: folder, Target: "/home/work/work"}}
			}
			resp, err := e.s.ProposeSessionCreate(context.Background(), s)
			if err == nil {
				err = resp.Err
			}
			if err != nil {
				t.Fatalf("create the session without the handler: %v", err)
			}
			testcluster.Eventually(t, 10*time.Second, func() error {
				got := e.get(e.admin, s.ID)
				if got.Status != api.SessionPending || got.StatusInfo != tc.schedulerSays {
					return fmt.Errorf("session is %s (%q), want PENDING saying %q", got.Status, got.StatusInfo, tc.schedulerSays)
				}
				return nil
			})

			if tc.accepted != nil {
				// The refused session would hold the head of the queue.
				e.terminate(t, e.admin, s.ID)
				ok := e.mustCreate(e.admin, tc.accepted)
				e.waitStatus(ok.ID, api.SessionScheduled)
			}
		})
	}
}

// adminKey is the access key of the admin's keypair.
func (e *sessionEnv) adminKey() string {
	e.t.Helper()
	var me api.Keypair
	r := testcluster.Do(e.t, http.MethodGet, e.url("/v1/keypairs"), e.admin, nil)
	wantStatus(e.t, r, http.StatusOK)
	var l api.List[api.Keypair]
	r.JSON(e.t, &l)
	for _, k := range l.Items {
		if k.User == testcluster.AdminEmail {
			me = k
		}
	}
	if me.AccessKey == "" {
		e.t.Fatalf("the admin has no keypair in %+v", l.Items)
	}
	return me.AccessKey
}

// propose writes an entry as the leader would, failing the test if it is
// refused.
func (e *sessionEnv) propose(c fsm.Command) {
	e.t.Helper()
	resp, err := e.s.Propose(context.Background(), c)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		e.t.Fatalf("propose %T: %v", c, err)
	}
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case float64:
		return x
	}
	panic(fmt.Sprintf("not a number: %T", v))
}
