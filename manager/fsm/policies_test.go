package fsm

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// policyFSM is an FSM after the test log's bootstrap with one more policy.
func policyFSM(t *testing.T) (*FSM, *uint64) {
	t.Helper()
	f := newTestFSM()
	applyAll(t, f, testLog(t, 1, 0)[:1])
	index := uint64(10)
	apply(t, f, &index, PolicyCreate{Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{
		Name: "lab", TotalResourceSlots: slots.Limits{slots.CPU: 4000, slots.Mem: 8 << 30}, MaxContainersPerSession: 1,
		AllowedVfolderHosts: []string{"local"}}}})
	return f, &index
}

func apply(t *testing.T, f *FSM, index *uint64, c Command) *Response {
	t.Helper()
	e, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	*index++
	return f.ApplyEntry(*index, e)
}

func policy(t *testing.T, f *FSM, name string) *state.ResourcePolicy {
	t.Helper()
	p, err := f.State().Read().ResourcePolicy(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyUpdateChangesOnlyWhatItNames(t *testing.T) {
	f, index := policyFSM(t)
	gpu, lifetime := int64(150), int64(60)
	// Two updates of different fields, as two admins racing would send them:
	// both must hold.
	apply(t, f, index, PolicyUpdate{Name: "lab", Slots: map[slots.Name]*int64{slots.CPU: nil, slots.CUDAShares: &gpu}})
	r := apply(t, f, index, PolicyUpdate{Name: "lab", MaxSessionLifetime: &Nullable[int64]{Value: &lifetime}})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	p := policy(t, f, "lab")
	b, _ := json.Marshal(p.TotalResourceSlots)
	if string(b) != `{"cpu":null,"cuda.device":null,"cuda.shares":1.5,"mem":8589934592}` {
		t.Errorf("slots %s: cpu must be unlimited, cuda.shares set, mem kept", b)
	}
	if p.MaxSessionLifetime == nil || *p.MaxSessionLifetime != 60 || p.MaxContainersPerSession != 1 || p.AllowedVfolderHosts[0] != "local" {
		t.Errorf("policy %+v: lifetime must be 60 and the rest unchanged", p.ResourcePolicy)
	}
	apply(t, f, index, PolicyUpdate{Name: "lab", MaxSessionLifetime: &Nullable[int64]{}})
	if p := policy(t, f, "lab"); p.MaxSessionLifetime != nil {
		t.Errorf("a null update must clear max_session_lifetime, got %d", *p.MaxSessionLifetime)
	}
	if p.CreateIndex != 11 || p.ModifyIndex != 13 {
		t.Errorf("create/modify index %d/%d, want 11/13", p.CreateIndex, p.ModifyIndex)
	}
}

func TestPolicyUpdateDoesNotChangeTheStoredObject(t *testing.T) {
	f, index := policyFSM(t)
	before := policy(t, f, "lab")
	hosts := []string{"nfs"}
	apply(t, f, index, PolicyUpdate{Name: "lab", Slots: map[slots.Name]*int64{slots.Mem: nil}, AllowedVfolderHosts: &hosts})
	if _, ok := before.TotalResourceSlots[slots.Mem]; !ok || before.AllowedVfolderHosts[0] != "local" {
		t.Fatal("the update changed the object a reader holds; appliers must copy before changing")
	}
}

func TestPolicyRulesDecidedByTheFSM(t *testing.T) {
	f, index := policyFSM(t)
	// Keypairs of every kind hold "lab": an active one, an inactive one, and
	// one of an inactive user.
	inactive := api.StatusInactive
	for _, c := range []Command{
		UserCreate{User: state.User{Email: "a@x.io", Username: "a", Status: api.StatusActive, Domain: "default"},
			Keypair: state.Keypair{AccessKey: "AKA", User: "a@x.io", IsActive: true, ResourcePolicy: "lab"}},
		KeypairPut{Keypair: state.Keypair{AccessKey: "AKA2", User: "a@x.io", IsActive: false, ResourcePolicy: "lab"}},
		UserCreate{User: state.User{Email: "b@x.io", Username: "b", Status: api.StatusActive, Domain: "default"},
			Keypair: state.Keypair{AccessKey: "AKB", User: "b@x.io", IsActive: true, ResourcePolicy: "lab"}},
		UserUpdate{Email: "b@x.io", Status: &inactive},
	} {
		if r := apply(t, f, index, c); r.Err != nil {
			t.Fatalf("setup %T: %v", c, r.Err)
		}
	}
	tests := []struct {
		name   string
		cmd    Command
		kind   apierr.Kind
		detail string
	}{
		{"create an existing name", PolicyCreate{Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "lab"}}},
			apierr.Conflict, "a resource policy named lab already exists"},
		{"update a missing policy", PolicyUpdate{Name: "nope"}, apierr.NotFound, "no resource policy named nope"},
		{"delete a missing policy", PolicyDelete{Name: "nope"}, apierr.NotFound, "no resource policy named nope"},
		{"delete default", PolicyDelete{Name: "default"}, apierr.Conflict, "the default policy cannot be deleted"},
		{"delete in use, inactive keypairs and users included", PolicyDelete{Name: "lab"}, apierr.Conflict,
			"resource policy lab is in use: 3 keypairs of 2 users hold it, inactive ones included (a@x.io, b@x.io); move them to another policy first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := apply(t, f, index, tt.cmd)
			var ae *apierr.Error
			if !asAPIErr(r.Err, &ae) || ae.Kind != tt.kind || !strings.HasPrefix(ae.Detail, tt.detail) {
				t.Fatalf("got %v, want kind %d with detail %q", r.Err, tt.kind, tt.detail)
			}
		})
	}
	if policy(t, f, "lab") == nil || policy(t, f, "default") == nil {
		t.Fatal("a refused delete removed the policy")
	}
	for _, ak := range []string{"AKA", "AKA2", "AKB"} {
		if r := apply(t, f, index, KeypairDelete{AccessKey: ak}); r.Err != nil {
			t.Fatalf("delete keypair %s: %v", ak, r.Err)
		}
	}
	if r := apply(t, f, index, PolicyDelete{Name: "lab"}); r.Err != nil {
		t.Fatalf("delete the unused policy: %v", r.Err)
	}
	if policy(t, f, "lab") != nil {
		t.Fatal("the policy is still there")
	}
}

func TestPolicyInUseDetailCountsOneAndNamesAtMostThreeUsers(t *testing.T) {
	one := policyInUse("p", []*state.Keypair{{User: "a@x.io"}})
	if got := one.Error(); !strings.Contains(got, "1 keypair of 1 user holds it") {
		t.Errorf("singular: %s", got)
	}
	var kps []*state.Keypair
	for _, u := range []string{"e@x.io", "d@x.io", "c@x.io", "b@x.io", "a@x.io", "a@x.io"} {
		kps = append(kps, &state.Keypair{User: u})
	}
	if got := policyInUse("p", kps).Error(); !strings.Contains(got, "6 keypairs of 5 users hold it, inactive ones included (a@x.io, b@x.io, c@x.io and 2 more)") {
		t.Errorf("many: %s", got)
	}
}
