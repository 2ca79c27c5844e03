package api

import "testing"

// Every status against every question, spelled out: the sets are part of
// the contract (docs/ARCHITECTURE.md) and of what the log appliers decide,
// so a change to one must show up here as a deliberate edit.
func TestSessionStatusSets(t *testing.T) {
	type answers struct{ ended, endingOrEnded, occupying, active bool }
	want := map[SessionStatus]answers{
		SessionPending:     {},
		SessionScheduled:   {occupying: true, active: true},
		SessionPreparing:   {occupying: true, active: true},
		SessionRunning:     {occupying: true, active: true},
		SessionTerminating: {endingOrEnded: true, occupying: true},
		SessionTerminated:  {ended: true, endingOrEnded: true},
		SessionError:       {ended: true, endingOrEnded: true},
		SessionCancelled:   {ended: true, endingOrEnded: true},
	}
	all := SessionStatuses()
	if len(all) != len(want) {
		t.Fatalf("SessionStatuses() = %v, want the %d of the table", all, len(want))
	}
	for _, s := range all {
		w, ok := want[s]
		if !ok {
			t.Fatalf("SessionStatuses() lists %s, which the table does not", s)
		}
		got := answers{s.Ended(), s.EndingOrEnded(), s.Occupying(), s.Active()}
		if got != w || !s.Known() {
			t.Errorf("%s: ended, ending or ended, occupying, active = %+v (known %v), want %+v", s, got, s.Known(), w)
		}
	}
	for _, s := range []SessionStatus{"", "running", "DONE"} {
		if s.Known() || s.Ended() || s.EndingOrEnded() || s.Occupying() || s.Active() {
			t.Errorf("%q, which is no status, answers yes to a question", s)
		}
	}
}

func TestContainerStatusSets(t *testing.T) {
	type answers struct{ reported, ended, waiting, present bool }
	want := map[ContainerStatus]answers{
		ContainerScheduled: {waiting: true},
		ContainerPulling:   {reported: true, waiting: true},
		ContainerCreated:   {reported: true, present: true},
		ContainerRunning:   {reported: true, present: true},
		ContainerExited:    {reported: true, ended: true},
		ContainerFailed:    {reported: true, ended: true},
		ContainerGone:      {reported: true, ended: true},
	}
	all := ContainerStatuses()
	if len(all) != len(want) {
		t.Fatalf("ContainerStatuses() = %v, want the %d of the table", all, len(want))
	}
	for _, s := range all {
		w, ok := want[s]
		if !ok {
			t.Fatalf("ContainerStatuses() lists %s, which the table does not", s)
		}
		if got := (answers{s.Reported(), s.Ended(), s.Waiting(), s.Present()}); got != w {
			t.Errorf("%s: reported, ended, waiting, present = %+v, want %+v", s, got, w)
		}
	}
	// "unknown" is what an agent sends for a task state it cannot read:
	// the managers must not take it for news.
	for _, s := range []ContainerStatus{"", "unknown", "RUNNING"} {
		if s.Reported() || s.Ended() || s.Waiting() || s.Present() {
			t.Errorf("%q, which is no status, answers yes to a question", s)
		}
	}
}
