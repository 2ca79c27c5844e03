package sched

import (
	"fmt"
	"slices"
	"testing"

	"github.com/berth-cluster/berth/shared/slots"
)

// fakeSource is a cluster made by hand.
type fakeSource struct {
	keypairs map[string]*Keypair
	agents   []*Agent
}

func (f *fakeSource) Keypair(ak string) (*Keypair, error) { return f.keypairs[ak], nil }

func (f *fakeSource) Agent(id string) (*Agent, error) {
	for _, a := range f.agents {
		if a.ID == id {
			return a, nil
		}
	}
	return nil, nil
}

func (f *fakeSource) Agents() ([]*Agent, error) { return f.agents, nil }

func cpu(cores float64) slots.Slots { return slots.Slots{slots.CPU: int64(cores * 1000)} }

func cpuMem(cores float64, gib int64) slots.Slots {
	return slots.Slots{slots.CPU: int64(cores * 1000), slots.Mem: gib << 30}
}

func alive(id string, capacity, occupied slots.Slots) *Agent {
	return &Agent{ID: id, Alive: true, Schedulable: true, Capacity: capacity, Occupied: occupied}
}

// unlimited is a keypair with no limits but the containers per session.
func unlimited(ak string) *Keypair {
	return &Keypair{AccessKey: ak, MaxContainers: 10, Occupied: slots.Slots{}}
}

func req(id, ak string, r slots.Slots, created uint64) Request {
	return Request{SessionID: id, AccessKey: ak, Slots: r, Containers: 1, CreateIndex: created}
}

func cluster(kps []*Keypair, agents ...*Agent) *Cluster {
	src := &fakeSource{keypairs: map[string]*Keypair{}, agents: agents}
	for _, k := range kps {
		src.keypairs[k.AccessKey] = k
	}
	return NewCluster(src)
}

// summary renders decisions as "id@a1,a2" or "id:reason" (+ "!" when blocking).
func summary(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		switch {
		case d.Failure == nil:
			out = append(out, fmt.Sprintf("%s@%s", d.Request.SessionID, joinIDs(d.Agents)))
		case d.Blocking:
			out = append(out, fmt.Sprintf("%s!%s", d.Request.SessionID, d.Failure.Reason))
		default:
			out = append(out, fmt.Sprintf("%s:%s", d.Request.SessionID, d.Failure.Reason))
		}
	}
	return out
}

func joinIDs(ids []string) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ","
		}
		s += id
	}
	return s
}

func schedule(t *testing.T, c *Cluster, pending []Request, opt Options) []string {
	t.Helper()
	ds, err := Schedule(c, pending, opt)
	if err != nil {
		t.Fatal(err)
	}
	return summary(ds)
}

func wantDecisions(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("decisions:\n got  %q\n want %q", got, want)
	}
}
