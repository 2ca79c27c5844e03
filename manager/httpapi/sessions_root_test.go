package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// A user asks for root in their containers: refused unless their keypair's
// resource policy has allow_root, whoever asks (an admin's keypair on such a
// policy too); allowed, the agent is told to run the container as root; a
// policy that stops allowing it refuses the next request.
func TestRunAsRootNeedsAPolicyThatAllowsIt(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":8,"mem":17179869184}`, `{"cpu":8,"mem":17179869184}`)
	ann := createUser(t, e.s, e.admin, "ann@example.com", "ann", api.RoleUser)
	annToken := testcluster.Login(t, e.s, ann.User.Email, testPassword)
	root := oneCPU(map[string]any{"run_as_root": true})

	refused := func(t *testing.T, token, policy string) {
		t.Helper()
		p := wantProblem(t, e.create(token, root), http.StatusForbidden, api.ProblemForbidden)
		if !strings.Contains(p.Detail, "resource policy "+policy+" does not allow root") {
			t.Errorf("detail %q does not name policy %s", p.Detail, policy)
		}
		if len(p.Errors) != 1 || p.Errors[0].Field != "run_as_root" {
			t.Errorf("field errors %+v, want run_as_root", p.Errors)
		}
	}
	t.Run("the default policy refuses root to a user and to an admin", func(t *testing.T) {
		refused(t, annToken, "default")
		refused(t, e.admin, "default")
		var l api.List[api.Session]
		r := testcluster.Do(t, http.MethodGet, e.url("/v1/sessions?all=true"), e.admin, nil)
		wantStatus(t, r, http.StatusOK)
		r.JSON(t, &l)
		if len(l.Items) != 0 {
			t.Fatalf("refused requests left sessions: %+v", l.Items)
		}
	})
	t.Run("allow_root is a boolean", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodPost, e.url("/v1/resource-policies"), e.admin, map[string]any{"name": "bad", "allow_root": "yes"})
		p := wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation)
		if len(p.Errors) != 1 || p.Errors[0].Field != "allow_root" || p.Errors[0].Reason != "allow_root must be true or false" {
			t.Errorf("errors %+v", p.Errors)
		}
		r = e.create(annToken, oneCPU(map[string]any{"run_as_root": "yes"}))
		wantStatus(t, r, http.StatusBadRequest)
	})

	r := testcluster.Do(t, http.MethodPost, e.url("/v1/resource-policies"), e.admin, map[string]any{"name": "rooty", "allow_root": true})
	wantStatus(t, r, http.StatusCreated)
	var rooty api.ResourcePolicy
	r.JSON(t, &rooty)
	if !rooty.AllowRoot {
		t.Fatalf("created %+v, want allow_root", rooty)
	}
	r = testcluster.Do(t, http.MethodPatch, e.url("/v1/keypairs/"+ann.Keypair.AccessKey), e.admin, map[string]any{"resource_policy": "rooty"})
	wantStatus(t, r, http.StatusOK)

	s := e.mustCreate(annToken, root)
	plain := e.mustCreate(annToken, oneCPU(nil))
	if !s.RunAsRoot || plain.RunAsRoot {
		t.Fatalf("run_as_root of the sessions: %v and %v, want true and false", s.RunAsRoot, plain.RunAsRoot)
	}
	e.waitStatus(s.ID, api.SessionScheduled)
	e.waitStatus(plain.ID, api.SessionScheduled)
	byID := map[string]api.DesiredContainer{}
	for _, d := range e.desired().Containers {
		byID[d.SessionID] = d
	}
	if !byID[s.ID].RunAsRoot || byID[plain.ID].RunAsRoot {
		t.Errorf("the agent is told run_as_root %v and %v, want true and false", byID[s.ID].RunAsRoot, byID[plain.ID].RunAsRoot)
	}

	r = testcluster.Do(t, http.MethodPatch, e.url("/v1/resource-policies/rooty"), e.admin, map[string]any{"allow_root": false})
	wantStatus(t, r, http.StatusOK)
	refused(t, annToken, "rooty")
}

// The create applier decides again: a request the handler let through
// while the policy allowed root is refused when, by the time its entry is
// applied, the policy no longer does.
func TestRunAsRootIsDecidedAgainWhenApplied(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":8,"mem":17179869184}`, `{"cpu":8,"mem":17179869184}`)
	ann := createUser(t, e.s, e.admin, "ann@example.com", "ann", api.RoleUser)
	now := time.Now().UTC()
	entry := fsm.SessionCreate{Session: state.Session{ID: "s-raceroot0001", AccessKey: ann.Keypair.AccessKey, Image: baseImage,
		Type: api.SessionInteractive, Requested: mustSlots(`{"cpu":1,"mem":1073741824}`), CreatedAt: now, RunAsRoot: true}}
	resp, err := e.s.Propose(context.Background(), entry)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Err == nil || !strings.Contains(resp.Err.Error(), "resource policy default does not allow root") {
		t.Fatalf("applied a root session under the default policy: %v", resp.Err)
	}
	if got, _ := e.s.State().Read().Session("s-raceroot0001"); got != nil {
		t.Fatalf("the refused session was written: %+v", got)
	}
}
