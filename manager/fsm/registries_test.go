package fsm

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// registryEntries are the registry entries of the determinism log: creates
// (one refused for its name, one for its host), updates (the password
// sealed bytes replaced, then removed), a delete and a refused one.
func registryEntries(base time.Time) []Command {
	sealed := []byte{1, 2, 3, 4}
	empty := []byte{}
	user := "robot"
	return []Command{
		RegistryCreate{Registry: state.Registry{Name: "lab", URL: "https://r.example.com", Host: "r.example.com", Username: "u", Password: sealed, KeyID: "k1", CreatedAt: base}},
		RegistryCreate{Registry: state.Registry{Name: "lab", URL: "https://s.example.com", Host: "s.example.com", CreatedAt: base}},  // refused: name
		RegistryCreate{Registry: state.Registry{Name: "lab2", URL: "https://r.example.com", Host: "r.example.com", CreatedAt: base}}, // refused: host
		RegistryCreate{Registry: state.Registry{Name: "hub", URL: "https://registry-1.docker.io", Host: "docker.io", CreatedAt: base}},
		RegistryUpdate{Name: "lab", ModifiedAt: base.Add(time.Second), Username: &user},
		RegistryUpdate{Name: "hub", ModifiedAt: base.Add(2 * time.Second), Password: &empty},
		RegistryDelete{Name: "hub"},
		RegistryDelete{Name: "hub"}, // refused: gone
	}
}

func TestRegistryEntriesDecideNameHostAndPassword(t *testing.T) {
	f := newTestFSM()
	index := uint64(1)
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var refused []string
	for _, c := range registryEntries(base) {
		if r := apply(t, f, &index, c); r.Err != nil {
			refused = append(refused, r.Err.Error())
		}
	}
	want := []string{"a registry named lab already exists", "registry lab already serves host r.example.com", "no registry named hub"}
	if len(refused) != len(want) {
		t.Fatalf("refused %q", refused)
	}
	for i, w := range want {
		if !strings.Contains(refused[i], w) {
			t.Errorf("refusal %d %q does not say %q", i, refused[i], w)
		}
	}
	lab, err := f.State().Read().Registry("lab")
	if err != nil || lab == nil || lab.Username != "robot" || string(lab.Password) != "\x01\x02\x03\x04" || lab.KeyID != "k1" {
		t.Fatalf("lab %+v, %v", lab, err)
	}
	if r, _ := f.State().Read().RegistryForHost("r.example.com"); r == nil || r.Name != "lab" {
		t.Fatalf("host index: %+v", r)
	}
	// An update removing the password removes its key id with it.
	empty := []byte{}
	mustApply(t, f, &index, RegistryUpdate{Name: "lab", Password: &empty})
	if lab, _ = f.State().Read().Registry("lab"); lab.Password != nil || lab.KeyID != "" {
		t.Fatalf("after removing the password: %+v", lab)
	}
}

// The create applier decides allowed_images against the policy as it is
// when the entry is applied, as it does allow_root.
func TestSessionCreateAppliesTheAllowedImagesOfThePolicyAsItIsThen(t *testing.T) {
	f, index, base := sessionFSM(t)
	patterns := []string{"registry.example.com/lab/*"}
	mustApply(t, f, index, PolicyUpdate{Name: "sessions", ModifiedAt: base, AllowedImages: &patterns})
	r := apply(t, f, index, newSession("x1", sessionKey, api.SessionBatch, 1000, 1, base))
	var e *apierr.Error
	if !asAPIErr(r.Err, &e) || e.Kind != apierr.Unprocessable || !strings.Contains(e.Detail, "is not allowed by resource policy sessions") {
		t.Fatalf("create of a disallowed image: %v", r.Err)
	}
	ok := newSession("x2", sessionKey, api.SessionBatch, 1000, 1, base)
	ok.Session.Image = "registry.example.com/lab/deep/python:3.12"
	mustApply(t, f, index, ok)
}

// A pulling container puts its session in PREPARING with the pull's words;
// a report of pulling after the container was made is stale and changes
// nothing; the digest a container reports is recorded.
func TestPullingReportsMoveTheSessionAndNeverBack(t *testing.T) {
	f, index, base := sessionFSM(t)
	mustApply(t, f, index, newSession("p1", sessionKey, api.SessionInteractive, 1000, 1, base))
	mustApply(t, f, index, Plan{Version: PlanVersion, At: base, Placements: []Placement{{SessionID: "p1", Containers: on("a1")}}})
	report := func(r ContainerReport) {
		mustApply(t, f, index, SessionsReport{At: base.Add(time.Second), Agent: "a1", Reports: []ContainerReport{r}})
	}
	report(ContainerReport{SessionID: "p1", Index: 0, Status: "pulling", Reason: "pulling x: 1.0/2.0 MiB"})
	if s := session(t, f, "p1"); s.Status != api.SessionPreparing || s.StatusInfo != "pulling x: 1.0/2.0 MiB" {
		t.Fatalf("session %s %q", s.Status, s.StatusInfo)
	}
	report(ContainerReport{SessionID: "p1", Index: 0, Status: "running", ImageDigest: "sha256:ab"})
	s := session(t, f, "p1")
	if s.Status != api.SessionRunning || s.StatusInfo != "" || s.Containers[0].ImageDigest != "sha256:ab" {
		t.Fatalf("session %s %q %+v", s.Status, s.StatusInfo, s.Containers)
	}
	report(ContainerReport{SessionID: "p1", Index: 0, Status: "pulling", Reason: "pulling x: 1.0/2.0 MiB"}) // delayed
	if s := session(t, f, "p1"); s.Status != api.SessionRunning || s.Containers[0].Status != "running" {
		t.Fatalf("a stale pulling report moved the session back: %s, %+v", s.Status, s.Containers)
	}
}
