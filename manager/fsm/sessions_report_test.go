package fsm

import (
	"testing"
	"time"

	"github.com/berth-cluster/berth/shared/api"
)

func TestSessionsReportMovesTheLifecycle(t *testing.T) {
	cases := []struct {
		name    string
		typ     string
		reports [][]ContainerReport // successive reports from a1; containers 0 and 1
		status  api.SessionStatus
		reason  string
		exit    *int
	}{
		{"some created", api.SessionInteractive, [][]ContainerReport{{{Index: 0, Status: "created"}}}, api.SessionPreparing, "", nil},
		{"all running", api.SessionInteractive, [][]ContainerReport{{{Index: 0, Status: "running"}, {Index: 1, Status: "running"}}}, api.SessionRunning, "", nil},
		{"batch all exited", api.SessionBatch, [][]ContainerReport{{{Index: 0, Status: "running"}, {Index: 1, Status: "running"}},
			{exitReport("", 0, 0)}, {exitReport("", 1, 4)}}, api.SessionTerminated, "exited", ptr(4)},
		{"batch one exited", api.SessionBatch, [][]ContainerReport{{{Index: 0, Status: "running"}, exitReport("", 1, 0)}}, api.SessionRunning, "", nil},
		{"interactive exits", api.SessionInteractive, [][]ContainerReport{{{Index: 0, Status: "running"}, {Index: 1, Status: "running"}},
			{exitReport("", 1, 2)}}, api.SessionTerminated, "exited (code 2)", ptr(2)},
		{"failed", api.SessionBatch, [][]ContainerReport{{{Index: 1, Status: "failed", Reason: "image-missing: berth/base:latest"}}},
			api.SessionError, "image-missing: berth/base:latest", nil},
		{"gone", api.SessionInteractive, [][]ContainerReport{{{Index: 0, Status: "running"}}, {{Index: 0, Status: "gone"}}}, api.SessionError, "container vanished", nil},
		{"oom", api.SessionBatch, [][]ContainerReport{{{Index: 0, Status: "exited", Reason: "oom-killed", ExitCode: ptr(137)}}}, api.SessionError, "oom-killed", ptr(137)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, index, base := sessionFSM(t)
			mustApply(t, f, index, newSession("s", sessionKey, tc.typ, 1000, 2, base))
			mustApply(t, f, index, Plan{At: base, Placements: []Placement{{SessionID: "s", Containers: on("a1", "a1")}}})
			for i, rs := range tc.reports {
				for j := range rs {
					rs[j].SessionID = "s"
				}
				mustApply(t, f, index, SessionsReport{At: base.Add(time.Duration(i+1) * time.Second), Agent: "a1", Reports: rs})
			}
			s := session(t, f, "s")
			if s.Status != tc.status || s.StatusInfo != tc.reason {
				t.Fatalf("%s %q, want %s %q; history %v", s.Status, s.StatusInfo, tc.status, tc.reason, history(s))
			}
			if (s.ExitCode == nil) != (tc.exit == nil) || (s.ExitCode != nil && *s.ExitCode != *tc.exit) {
				t.Errorf("exit code %v, want %v", s.ExitCode, tc.exit)
			}
			if s.Status.Ended() != (s.TerminatedAt != nil) {
				t.Errorf("%s with terminated_at %v", s.Status, s.TerminatedAt)
			}
			if s.Status == api.SessionRunning && s.StartedAt == nil {
				t.Error("RUNNING without started_at")
			}
			if last := s.StatusHistory[len(s.StatusHistory)-1]; last.Status != s.Status {
				t.Errorf("the last history entry is %s, the status %s", last.Status, s.Status)
			}
		})
	}
}

func TestSessionsReportIgnoresWhatDoesNotApply(t *testing.T) {
	f, index, base := sessionFSM(t)
	mustApply(t, f, index, newSession("s", sessionKey, api.SessionInteractive, 1000, 1, base))
	mustApply(t, f, index, newSession("p", sessionKey, api.SessionInteractive, 1000, 1, base))
	mustApply(t, f, index, Plan{At: base, Placements: []Placement{{SessionID: "s", Containers: on("a1")}}})
	running := []ContainerReport{{SessionID: "s", Status: "running"}}
	mustApply(t, f, index, SessionsReport{At: base, Agent: "a1", Reports: running})
	before := session(t, f, "s").ModifyIndex
	for _, rep := range []SessionsReport{
		{At: base, Agent: "a1", Reports: running},                                             // nothing new
		{At: base, Agent: "a2", Reports: []ContainerReport{{SessionID: "s", Status: "gone"}}}, // not its container
		{At: base, Agent: "a1", Reports: []ContainerReport{{SessionID: "s", Index: 5, Status: "gone"}}},
		{At: base, Agent: "a1", Reports: []ContainerReport{{SessionID: "s", Status: "dancing"}}}, // no such status
		{At: base, Agent: "a1", Reports: []ContainerReport{{SessionID: "p", Status: "running"}}}, // PENDING
		{At: base, Agent: "a1", Reports: []ContainerReport{{SessionID: "ghost", Status: "running"}}},
	} {
		if r := mustApply(t, f, index, rep); r.Value.(int) != 0 {
			t.Errorf("report %+v changed %d sessions", rep.Reports, r.Value)
		}
	}
	if got := session(t, f, "s").ModifyIndex; got != before {
		t.Errorf("ignored reports rewrote the session (modify index %d → %d)", before, got)
	}
	// Once ended, a late report cannot revive it.
	mustApply(t, f, index, SessionsReport{At: base, Agent: "a1", Reports: []ContainerReport{exitReport("s", 0, 0)}})
	mustApply(t, f, index, SessionsReport{At: base, Agent: "a1", Reports: running})
	if s := session(t, f, "s"); s.Status != api.SessionTerminated || s.Containers[0].Status != "exited" {
		t.Errorf("after a late report: %s, container %s", s.Status, s.Containers[0].Status)
	}
}
