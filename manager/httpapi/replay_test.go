package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

// A captured signed request cannot be sent again: the second copy is 401
// saying it was replayed, and nothing it asks for happens twice; one dated
// 6 minutes ago is refused whether or not it was seen. An honest client
// sending the same request several times in the same second is served
// every time.
func TestASignedRequestIsAcceptedOnce(t *testing.T) {
	t.Parallel()
	a := startAdmin(t)
	admin := createUser(t, a.s, a.token, "boss@example.com", "boss", api.RoleAdmin)
	base := testcluster.URL(a.s)

	t.Run("the same signed request twice", func(t *testing.T) {
		body := mustJSON(t, map[string]any{"user": "boss@example.com"})
		first := signedRequest(t, http.MethodPost, base+"/v1/keypairs", admin.Keypair, body, time.Now())
		replay := first.Clone(context.Background())
		replay.Body = readerOnly{stringsReader(body)}
		wantStatus(t, send(t, first), http.StatusCreated)
		p := wantProblem(t, send(t, replay), http.StatusUnauthorized, api.ProblemUnauthorized)
		wantDetail(t, p, "already received (a replay)")
		var l api.List[api.Keypair]
		a.do(http.MethodGet, "/v1/keypairs?user=boss@example.com", a.token, nil).JSON(t, &l)
		if len(l.Items) != 2 {
			t.Errorf("boss has %d keypairs, want 2: the first one and the one the request made once", len(l.Items))
		}
	})
	t.Run("a bodyless read twice", func(t *testing.T) {
		req := signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", admin.Keypair, nil, time.Now())
		wantStatus(t, send(t, req), http.StatusOK)
		wantProblem(t, send(t, req.Clone(context.Background())), http.StatusUnauthorized, api.ProblemUnauthorized)
	})
	t.Run("a date 6 minutes old", func(t *testing.T) {
		req := signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", admin.Keypair, nil, time.Now().Add(-6*time.Minute))
		p := wantProblem(t, send(t, req), http.StatusUnauthorized, api.ProblemUnauthorized)
		wantDetail(t, p, "behind the server clock", "at most 5m0s")
	})
	t.Run("an honest client repeats itself within a second", func(t *testing.T) {
		frozen := time.Now()
		c, err := client.New(client.Config{Addrs: []string{base}, AccessKey: admin.Keypair.AccessKey, SecretKey: admin.Keypair.SecretKey,
			Now: func() time.Time { return frozen }})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if _, err := c.WhoAmI(context.Background()); err != nil {
				t.Fatalf("request %d of 5 with the clock stopped: %v", i+1, err)
			}
		}
	})
}

// The replay cache is the leader's for the requests it answers: a request
// sent through a follower is forwarded and accepted once (the follower does
// not check it first and then refuse it as its own replay), and the same
// request sent again to the leader, or through another follower, is a
// replay.
func TestAForwardedSignedRequestIsAcceptedOnceAcrossManagers(t *testing.T) {
	c := testcluster.Start(t, 3, testcluster.InsecureRaft) // about replays, not the transport
	leader := c.Leader()
	var followers []string
	for _, s := range c.Running() {
		if s != leader {
			followers = append(followers, testcluster.URL(s))
		}
	}
	super := testcluster.Login(t, leader, testcluster.AdminEmail, testcluster.AdminPassword)
	admin := createUser(t, leader, super, "boss@example.com", "boss", api.RoleAdmin)
	testcluster.Eventually(t, 10*time.Second, func() error {
		// The keypair must have reached the follower for the test to mean
		// anything either way; whoami is forwarded, so ask the state.
		for _, s := range c.Running() {
			if kp, err := s.State().Read().Keypair(admin.Keypair.AccessKey); err != nil || kp == nil {
				return errNotYet
			}
		}
		return nil
	})
	body := mustJSON(t, map[string]any{"email": "via-follower@example.com", "username": "viaf", "password": testPassword})
	req := signedRequest(t, http.MethodPost, followers[0]+"/v1/users", admin.Keypair, body, time.Now())
	copies := []*http.Request{}
	for _, target := range []string{testcluster.URL(leader), followers[1]} {
		r := req.Clone(context.Background())
		r.URL = mustURL(t, target+"/v1/users")
		r.Host = r.URL.Host
		r.Body = readerOnly{stringsReader(body)}
		copies = append(copies, r)
	}
	wantStatus(t, send(t, req), http.StatusCreated)
	for i, r := range copies {
		p := wantProblem(t, send(t, r), http.StatusUnauthorized, api.ProblemUnauthorized)
		if wantDetail(t, p, "a replay"); t.Failed() {
			t.Logf("copy %d", i+1)
		}
	}
}

var errNotYet = errors.New("not yet")

func stringsReader(b []byte) *strings.Reader { return strings.NewReader(string(b)) }

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
