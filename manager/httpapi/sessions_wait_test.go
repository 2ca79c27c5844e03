package httpapi_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// GET /v1/sessions/{id}?index=N waits until the session is written past N:
// writes to other sessions do not end the wait, its own does, and an
// answer carries the index to wait past next.
func TestSessionGetIsABlockingQuery(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`)
	createUser(t, e.s, e.admin, "other@example.com", "other", api.RoleUser)
	other := testcluster.Login(t, e.s, "other@example.com", testPassword)
	s := e.mustCreate(e.admin, oneCPU(nil))
	e.place(s.ID, 1)
	get := func(token, query string) (api.Session, uint64, *testcluster.Response) {
		r := testcluster.Do(t, http.MethodGet, e.url("/v1/sessions/"+s.ID+query), token, nil)
		var out api.Session
		if r.Status != http.StatusOK {
			return out, 0, r
		}
		r.JSON(t, &out)
		index, err := strconv.ParseUint(r.Header.Get("X-Berth-Index"), 10, 64)
		if err != nil {
			t.Fatalf("X-Berth-Index %q: %v", r.Header.Get("X-Berth-Index"), err)
		}
		return out, index, r
	}
	_, index, r := get(e.admin, "")
	wantStatus(t, r, http.StatusOK)

	type answer struct {
		s     api.Session
		index uint64
	}
	done := make(chan answer, 1)
	go func() {
		got, at, _ := get(e.admin, fmt.Sprintf("?index=%d&wait=20s", index))
		done <- answer{got, at}
	}()
	e.mustCreate(e.admin, oneCPU(nil)) // another session
	select {
	case a := <-done:
		t.Fatalf("answered for another session's write: %+v", a)
	case <-time.After(300 * time.Millisecond):
	}
	wantStatus(t, report(t, e, e.agent, containerReport(s.ID, 0, api.ContainerRunning, nil)), http.StatusNoContent)
	a := <-done
	if a.s.Status != api.SessionRunning || a.index <= index {
		t.Fatalf("answer %s at %d, want RUNNING past %d", a.s.Status, a.index, index)
	}

	start := time.Now()
	got, at, _ := get(e.admin, fmt.Sprintf("?index=%d&wait=200ms", a.index))
	if waited := time.Since(start); waited < 200*time.Millisecond || at != a.index || got.Status != api.SessionRunning {
		t.Errorf("answered after %s at %d (%s), want after the wait at %d", waited, at, got.Status, a.index)
	}

	// Someone who cannot see the session learns nothing by waiting on it.
	_, _, r = get(other, fmt.Sprintf("?index=%d&wait=1s", a.index))
	wantProblem(t, r, http.StatusNotFound, api.ProblemNotFound)
	_, _, r = get(e.admin, "?index=x&wait=10m")
	wantFields(t, wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation), map[string][]string{
		"index": {"index must be a whole number: the index of the previous answer"},
		"wait":  {"wait must be a duration from 0s to 5m0s, e.g. 30s"},
	})
}
