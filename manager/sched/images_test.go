package sched

import "testing"

// Placement prefers an agent that already has the session's image (the
// others would pull it first); ties among those, and among those without,
// are broken as before. Never a condition: with no agent that has it, the
// session is placed anyway.
func TestPlacementPrefersAgentsThatHaveTheImage(t *testing.T) {
	kps := []*Keypair{unlimited("A")}
	agents := func() []*Agent {
		as := fourAgents() // concentrated alone would take a3, dispersed a1
		as[1].Images = []string{"127.0.0.1:5000/lab/base:1", "docker.io/library/python:3.12"}
		return as
	}
	for _, c := range []struct {
		image string
		s     Strategy
		want  string
	}{
		{"127.0.0.1:5000/lab/base:1", Concentrated, "a2"},
		{"127.0.0.1:5000/lab/base:1", Dispersed, "a2"},
		{"python:3.12", Concentrated, "a2"}, // the short form names the same image
		{"python:3.11", Concentrated, "a3"}, // nobody has it: as before
		{"python:3.11", Dispersed, "a1"},
		{"", Concentrated, "a3"},
	} {
		r := req("s", "A", cpu(1), 1)
		r.Image = c.image
		if got := place(t, cluster(kps, agents()...), r, c.s); got != c.want {
			t.Errorf("%s (%s): placed on %s, want %s", c.image, c.s, got, c.want)
		}
	}
	// An agent with the image but without room is passed over.
	as := agents()
	as[3].Images = []string{"docker.io/berth/base:latest"}
	r := req("s", "A", cpu(1), 1)
	r.Image = "berth/base:latest"
	if got := place(t, cluster(kps, as...), r, Concentrated); got != "a3" {
		t.Errorf("placed on %s, want a3 (a4, which has the image, is full)", got)
	}
	// A short name an agent reports is matched by its full form.
	as = agents()
	as[0].Images = []string{"berth/base:latest"}
	if got := place(t, cluster(kps, as...), r, Concentrated); got != "a1" {
		t.Errorf("placed on %s, want a1 (it has berth/base:latest)", got)
	}
}
