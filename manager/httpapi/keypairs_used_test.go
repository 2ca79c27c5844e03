package httpapi_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// TestKeypairConcurrencyUsedCountsTheSessionRecords: concurrency_used of
// the keypair views and the keypairs CSV is the number of the keypair's
// sessions that occupy slots, the figure of the resource indicator, and
// drops when one ends. (It was always 0 before: the view never read it.)
func TestKeypairConcurrencyUsedCountsTheSessionRecords(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "127.0.0.1:1", `{"cpu":8,"mem":17179869184}`, `{"cpu":null}`)
	u := createUser(t, e.s, e.admin, "runner@example.com", "runner", api.RoleUser)
	tok := testcluster.Login(t, e.s, "runner@example.com", testPassword)
	ak := u.Keypair.AccessKey
	first := e.mustCreate(tok, oneCPU(nil))
	second := e.mustCreate(tok, oneCPU(nil))
	e.place(first.ID, 1)
	e.place(second.ID, 1)

	used := func() (view, list, csvCell, indicator int) {
		t.Helper()
		var k api.Keypair
		r := testcluster.Do(t, http.MethodGet, e.url("/v1/keypairs/"+ak), e.admin, nil)
		wantStatus(t, r, http.StatusOK)
		r.JSON(t, &k)
		var l api.List[api.Keypair]
		r = testcluster.Do(t, http.MethodGet, e.url("/v1/keypairs?user=runner@example.com"), e.admin, nil)
		wantStatus(t, r, http.StatusOK)
		r.JSON(t, &l)
		if len(l.Items) != 1 {
			t.Fatalf("keypairs of runner: %+v", l.Items)
		}
		rows := readCSV(t, testcluster.Do(t, http.MethodGet, e.url("/v1/export/keypairs.csv?user=runner@example.com"), e.admin, nil))
		if len(rows) != 2 || rows[0][6] != "concurrency_used" {
			t.Fatalf("keypairs CSV %q", rows)
		}
		var ind api.ResourceIndicator
		r = testcluster.Do(t, http.MethodGet, e.url("/v1/resources/me?access_key="+ak), e.admin, nil)
		wantStatus(t, r, http.StatusOK)
		r.JSON(t, &ind)
		n, err := strconv.Atoi(rows[1][6])
		if err != nil {
			t.Fatalf("concurrency_used cell %q", rows[1][6])
		}
		return k.ConcurrencyUsed, l.Items[0].ConcurrencyUsed, n, ind.Concurrency.Used
	}
	if v, l, c, i := used(); v != 2 || l != 2 || c != 2 || i != 2 {
		t.Fatalf("with two sessions: view %d, list %d, CSV %d, indicator %d; want 2 each", v, l, c, i)
	}
	e.terminate(t, e.admin, first.ID)
	e.beat(running(second.ID, 0, 0)) // the first's container is gone
	e.waitStatus(first.ID, api.SessionTerminated)
	if v, l, c, i := used(); v != 1 || l != 1 || c != 1 || i != 1 {
		t.Fatalf("after one ended: view %d, list %d, CSV %d, indicator %d; want 1 each", v, l, c, i)
	}
}

// TestSessionsListNewestFirst: GET /v1/sessions lists the newest session
// first, page after page.
func TestSessionsListNewestFirst(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "127.0.0.1:1", `{"cpu":8,"mem":17179869184}`, `{"cpu":null}`)
	var made []string
	for _, name := range []string{"first", "second", "third"} {
		made = append(made, e.mustCreate(e.admin, oneCPU(map[string]any{"name": name})).Name)
	}
	var got []string
	cursor := ""
	for {
		var l api.List[api.Session]
		r := testcluster.Do(t, http.MethodGet, e.url("/v1/sessions?limit=2&cursor="+cursor), e.admin, nil)
		wantStatus(t, r, http.StatusOK)
		r.JSON(t, &l)
		for _, s := range l.Items {
			got = append(got, s.Name)
		}
		if l.NextCursor == "" {
			break
		}
		cursor = l.NextCursor
	}
	if want := "third second first"; strings.Join(got, " ") != want {
		t.Fatalf("sessions listed %v, want %s (made %v)", got, want, made)
	}
}
