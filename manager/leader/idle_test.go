package leader

import (
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

func TestOverdueSessions(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) *time.Time { v := t0.Add(time.Duration(s) * time.Second); return &v }
	hour := int64(3600)
	policy := func(idle int64, life *int64) *state.ResourcePolicy {
		return &state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "p", IdleTimeout: idle, MaxSessionLifetime: life}}
	}
	running := func(typ string, started *time.Time) *state.Session {
		return &state.Session{ID: "s-1", Type: typ, Status: api.SessionRunning, CreatedAt: t0, StartedAt: started,
			StatusHistory: []api.StatusChange{{Status: api.SessionPending, At: t0}, {Status: api.SessionRunning, At: *started}}}
	}
	tests := []struct {
		name    string
		session *state.Session
		policy  *state.ResourcePolicy
		now     time.Time
		seen    time.Time // activity the leader saw, not yet recorded
		// disconnected: one of the session's agents is DISCONNECTED.
		disconnected bool
		want         string
	}{
		{name: "idle past the timeout", session: running(api.SessionInteractive, at(10)), policy: policy(60, nil),
			now: *at(71), want: reasonIdle},
		{name: "idle exactly at the timeout is not yet over", session: running(api.SessionInteractive, at(10)),
			policy: policy(60, nil), now: *at(70)},
		{name: "idle timeout 0 means never", session: running(api.SessionInteractive, at(10)), policy: policy(0, nil),
			now: *at(1e6)},
		{name: "recorded activity counts", session: func() *state.Session {
			s := running(api.SessionInteractive, at(10))
			s.LastActivityAt = at(50)
			return s
		}(), policy: policy(60, nil), now: *at(100)},
		{name: "activity not yet recorded counts", session: running(api.SessionInteractive, at(10)), policy: policy(60, nil),
			now: *at(100), seen: *at(45)},
		{name: "a batch session is never idle", session: running(api.SessionBatch, at(10)), policy: policy(60, nil),
			now: *at(1000)},
		{name: "a session that waited long counts from when it ran", session: func() *state.Session {
			s := running(api.SessionInteractive, at(500))
			s.StartedAt = nil // the history alone says when it started to run
			return s
		}(), policy: policy(60, nil), now: *at(540)},
		{name: "not RUNNING is not idle", session: func() *state.Session {
			s := running(api.SessionInteractive, at(10))
			s.Status = api.SessionPreparing
			return s
		}(), policy: policy(60, nil), now: *at(1000)},
		{name: "lifetime over, busy or not", session: running(api.SessionBatch, at(10)), policy: policy(0, &hour),
			now: *at(3611), want: reasonLifetime},
		{name: "lifetime not over", session: running(api.SessionBatch, at(10)), policy: policy(0, &hour), now: *at(3610)},
		{name: "lifetime wins over idleness", session: running(api.SessionInteractive, at(10)), policy: policy(60, &hour),
			now: *at(4000), want: reasonLifetime},
		{name: "a session on a disconnected agent is never idle", session: running(api.SessionInteractive, at(10)),
			policy: policy(60, nil), now: *at(1000), disconnected: true},
		{name: "the lifetime runs on while the agent is disconnected", session: running(api.SessionInteractive, at(10)),
			policy: policy(60, &hour), now: *at(3611), disconnected: true, want: reasonLifetime},
		{name: "no policy, no limits", session: running(api.SessionInteractive, at(10)), now: *at(1e6)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := overdue(tt.session, tt.policy, tt.now, tt.seen, tt.disconnected); got != tt.want {
				t.Fatalf("overdue = %q, want %q", got, tt.want)
			}
		})
	}
}
