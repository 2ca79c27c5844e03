package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/manager/httpapi"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

func TestCookieSessionsNeedTheCSRFTokenToChangeAnything(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFake(t)
	s := c.Servers[0]
	r := loginAnswer(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	wantStatus(t, r, http.StatusOK)
	var login api.LoginResponse
	r.JSON(t, &login)
	if len(login.CSRFToken) != 32 {
		t.Fatalf("csrf_token %q, want 32 characters", login.CSRFToken)
	}
	body := mustJSON(t, map[string]any{"email": "csrf@example.com", "username": "csrf", "password": testPassword})
	withCookie := func(method, path string, body []byte, csrf string) *testcluster.Response {
		req := newRequest(t, method, testcluster.URL(s)+path, body)
		req.AddCookie(&http.Cookie{Name: "berth_session", Value: login.Token})
		if csrf != "" {
			req.Header.Set(httpapi.CSRFHeader, csrf)
		}
		return send(t, req)
	}

	wantStatus(t, withCookie(http.MethodGet, "/v1/users", nil, ""), http.StatusOK)
	for name, csrf := range map[string]string{"missing": "", "wrong": "0123456789abcdef0123456789abcdef"} {
		t.Run(name+" csrf header is refused", func(t *testing.T) {
			p := wantProblem(t, withCookie(http.MethodPost, "/v1/users", body, csrf), http.StatusForbidden, api.ProblemForbidden)
			wantDetail(t, p, httpapi.CSRFHeader)
		})
	}
	wantStatus(t, withCookie(http.MethodPost, "/v1/users", body, login.CSRFToken), http.StatusCreated)

	// Another login's CSRF token does not fit this session.
	other := loginAnswer(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	var otherLogin api.LoginResponse
	other.JSON(t, &otherLogin)
	body2 := mustJSON(t, map[string]any{"email": "csrf2@example.com", "username": "csrf2", "password": testPassword})
	wantProblem(t, withCookie(http.MethodPost, "/v1/users", body2, otherLogin.CSRFToken), http.StatusForbidden, api.ProblemForbidden)
}

func TestFollowerAsksTheLeaderAboutACredentialItHasNotSeenYet(t *testing.T) {
	c := testcluster.Start(t, 3, testcluster.InsecureRaft) // about credentials, not the transport
	leader := c.Leader()
	token := testcluster.Login(t, leader, testcluster.AdminEmail, testcluster.AdminPassword)
	// Whatever the follower has applied, a fresh token must work there at
	// once, on a route it answers itself and on a stale read.
	for _, f := range c.Running() {
		if f == leader {
			continue
		}
		wantStatus(t, testcluster.Do(t, http.MethodGet, testcluster.URL(f)+"/v1/info", token, nil), http.StatusOK)
		wantStatus(t, testcluster.Do(t, http.MethodGet, testcluster.URL(f)+"/v1/auth/whoami?stale=true", token, nil), http.StatusOK)
	}
	// A token the follower does not know goes to the leader (one hop), which
	// refuses it: the leader's own metrics show it answered.
	f := c.Follower()
	r := testcluster.Do(t, http.MethodGet, testcluster.URL(f)+"/v1/info", "no-such-token", nil)
	wantProblem(t, r, http.StatusUnauthorized, api.ProblemUnauthorized)
	m := testcluster.Do(t, http.MethodGet, testcluster.URL(leader)+"/metrics", "", nil)
	want := `berth_http_requests_total{code="401",method="GET",route="/v1/info"} 1`
	if !strings.Contains(string(m.Body), want) {
		t.Fatalf("the leader did not answer the forwarded request: no %q in its metrics", want)
	}
}
