package sched

import "testing"

// A session mounting folders goes only to agents that have every folder
// host it mounts, whatever else fits better; when none has them it waits
// saying which host is missing; a plan naming an agent without the host is
// refused on verification.
func TestSessionsArePlacedOnlyWhereTheirFolderHostsAre(t *testing.T) {
	withNFS := alive("a2", cpu(8), nil)
	withNFS.FolderHosts = []string{"local", "nfs"}
	bigger := alive("a1", cpu(64), nil)
	bigger.FolderHosts = []string{"local"}
	c := cluster([]*Keypair{unlimited("A")}, bigger, withNFS)

	r := req("s", "A", cpu(1), 1)
	r.FolderHosts = []string{"nfs"}
	for _, s := range []Strategy{Concentrated, Dispersed} {
		if got := place(t, c, r, s); got != "a2" {
			t.Errorf("%s placed a session mounting nfs on %s, want a2, the only agent with it", s, got)
		}
	}
	plain := req("p", "A", cpu(1), 2)
	if got := place(t, c, plain, Dispersed); got != "a1" {
		t.Errorf("a session without folders went to %s, want a1 (most free)", got)
	}

	missing := req("m", "A", cpu(1), 3)
	missing.FolderHosts = []string{"local", "scratch"}
	_, f, err := c.Place(missing, Concentrated)
	if err != nil {
		t.Fatal(err)
	}
	if f == nil || f.Reason != "no agent has the folder host scratch (-folder-host)" {
		t.Errorf("a session mounting a host no agent has: %+v", f)
	}

	f, err = c.CheckAgents(r, []string{"a1"})
	if err != nil {
		t.Fatal(err)
	}
	if f == nil || f.Reason != "agent a1 has no folder host nfs" {
		t.Errorf("verification of a plan on an agent without the host: %+v", f)
	}
}
