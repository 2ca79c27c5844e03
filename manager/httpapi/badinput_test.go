package httpapi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/manager/httpapi"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// The bad input sweep: every route that takes a body gets malformed JSON,
// wrong top-level shapes, each field with a wrong type, huge values and
// unicode edge cases; every route that needs credentials gets none; a user
// reaches for another user's objects. Every answer must be a 4xx
// problem, the replicated state must be exactly as before, and the
// manager must stay up. Routes are taken from the route table, so a new
// route is swept without anyone remembering to add it.

// stateDigest hashes every table of the manager's state.
func stateDigest(t *testing.T, s *server.Server) string {
	t.Helper()
	tx := s.State().Read()
	h := sha256.New()
	for _, tb := range state.Tables() {
		rows, err := tx.All(tb.Name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(rows)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s:%s\n", tb.Name, b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// badBodies are bodies no route accepts, by name.
func badBodies(in any) map[string]string {
	out := map[string]string{
		"truncated JSON":     `{`,
		"array":              `[]`,
		"string":             `"text"`,
		"number":             `42`,
		"two objects":        `{}{}`,
		"unknown field":      `{"no_such_field_anywhere":1}`,
		"trailing garbage":   `{} x`,
		"deeply nested":      strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000),
		"huge unknown field": `{"` + strings.Repeat("k", 100000) + `":1}`,
	}
	for name, ft := range jsonFields(in) {
		wrong := wrongTypeFor(ft)
		if wrong == "" {
			continue
		}
		out["field "+name+" of the wrong type"] = fmt.Sprintf(`{%q:%s}`, name, wrong)
	}
	return out
}

// jsonFields are the top-level JSON fields of a request body type, by name.
func jsonFields(in any) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	t := reflect.TypeOf(in)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return out
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if name != "" && name != "-" && f.IsExported() {
			out[name] = f.Type
		}
	}
	return out
}

// wrongTypeFor is a JSON value no field of type t accepts ("" when any
// value could do).
func wrongTypeFor(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()) || reflect.PointerTo(t).Implements(reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()) {
		return `[[true]]` // custom decoders: a nested array of booleans fits none of ours
	}
	switch t.Kind() {
	case reflect.String:
		return `{"x":1}`
	case reflect.Bool:
		return `"yes"`
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return `"many"`
	case reflect.Slice, reflect.Array:
		return `{"x":1}`
	case reflect.Map, reflect.Struct:
		return `[1,2]`
	}
	return ""
}

// edgeBodies are bodies that decode but hold values no route should take:
// every string field huge, with a NUL, or not UTF-8; every number out of
// range.
func edgeBodies(in any) map[string]string {
	out := map[string]string{}
	// The JSON strings of 2 MiB of "x" and of 100,000 "é", as %q writes
	// them (neither needs escaping), made without quoting megabytes rune by
	// rune for every field of every route.
	huge := `"` + strings.Repeat("x", 2<<20) + `"`
	long := `"` + strings.Repeat("é", 100000) + `"`
	for name, ft := range jsonFields(in) {
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.String:
			out["field "+name+" of 2 MiB"] = fmt.Sprintf(`{%q:%s}`, name, huge)
			out["field "+name+" with a NUL"] = fmt.Sprintf(`{%q:"a\u0000b"}`, name)
			out["field "+name+" of 100k characters"] = fmt.Sprintf(`{%q:%s}`, name, long)
		case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64:
			out["field "+name+" past int64"] = fmt.Sprintf(`{%q:1e400}`, name)
		}
	}
	return out
}

// pathFor fills a route's path parameters with objects of the test's
// cluster.
func pathFor(path string, ids map[string]string) string {
	for k, v := range ids {
		path = strings.ReplaceAll(path, "{"+k+"}", v)
	}
	return path
}

type sweepEnv struct {
	*sessionEnv
	super   string
	user    createdUser
	userTok string
	other   string // another user's login token
	session api.Session
}

func newSweepEnv(t *testing.T) *sweepEnv {
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":2,"mem":4294967296}`,
		func(cfg *server.Config) { cfg.UsageCheckEvery = -1; cfg.JoinToken = "join-secret" })
	s, user := runningSession(t, e)
	createUser(t, e.s, e.admin, "bob@example.com", "bob", api.RoleUser)
	r := testcluster.Do(t, http.MethodPost, e.url("/v1/domains/default/groups"), e.admin, map[string]any{"name": "lab"})
	wantStatus(t, r, http.StatusCreated)
	return &sweepEnv{sessionEnv: e, super: e.admin, user: user, session: s,
		userTok: testcluster.Login(t, e.s, user.User.Email, testPassword),
		other:   testcluster.Login(t, e.s, "bob@example.com", testPassword)}
}

// send sends raw as the body of method path with the credentials the route
// takes.
func (e *sweepEnv) send(t *testing.T, rt httpapi.Route, path string, raw []byte, withAuth bool) *testcluster.Response {
	t.Helper()
	req := newRequest(t, rt.Method, e.url(path), raw)
	if withAuth {
		switch {
		case rt.Path == "/v1/agents/register":
			req.Header.Set(api.AgentTokenHeader, testAgentToken)
		case strings.HasPrefix(rt.Path, "/v1/agents/{id}/"):
			req.Header.Set("Authorization", "Bearer "+e.agent.Secret)
		case rt.Path == "/v1/operator/raft/join":
			req.Header.Set(httpapi.JoinTokenHeader, "join-secret")
		default:
			req.Header.Set("Authorization", "Bearer "+e.super)
		}
	}
	return send(t, req)
}

func (e *sweepEnv) ids(rt httpapi.Route) map[string]string {
	id := e.session.ID
	if strings.HasPrefix(rt.Path, "/v1/agents/") {
		id = e.agent.ID
	}
	return map[string]string{"email": e.user.User.Email, "access_key": e.user.Keypair.AccessKey, "name": "default",
		"id": id, "domain": "default", "group": "lab"}
}

func wantRefused(t *testing.T, what string, r *testcluster.Response) {
	t.Helper()
	if r.Status < 400 || r.Status >= 500 {
		t.Errorf("%s: status %d, want a 4xx: %.300s", what, r.Status, r.Body)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != api.ProblemContentType {
		t.Errorf("%s: Content-Type %q, want %q", what, ct, api.ProblemContentType)
	}
	var p api.Problem
	if err := json.Unmarshal(r.Body, &p); err != nil || p.Status != r.Status || p.Detail == "" {
		t.Errorf("%s: problem %s (%v) says no reason", what, r.Body, err)
	}
}

func TestBadInputSweepEveryBodyRoute(t *testing.T) {
	t.Parallel()
	e := newSweepEnv(t)
	before := stateDigest(t, e.s)
	n := 0
	for _, rt := range e.s.API().Routes() {
		if rt.In == nil || rt.Method == http.MethodGet {
			continue
		}
		path := pathFor(rt.Path, e.ids(rt))
		for name, body := range badBodies(rt.In) {
			wantRefused(t, fmt.Sprintf("%s %s with %s", rt.Method, rt.Path, name), e.send(t, rt, path, []byte(body), true))
			n++
		}
		for name, body := range edgeBodies(rt.In) {
			wantRefused(t, fmt.Sprintf("%s %s with %s", rt.Method, rt.Path, name), e.send(t, rt, path, []byte(body), true))
			n++
		}
		if after := stateDigest(t, e.s); after != before {
			t.Fatalf("%s %s: refused requests changed the replicated state", rt.Method, rt.Path)
		}
	}
	wantStatus(t, testcluster.Do(t, http.MethodGet, e.url("/healthz"), "", nil), http.StatusOK)
	t.Logf("%d bad requests refused", n)
}

func TestEveryRouteThatNeedsCredentialsRefusesNone(t *testing.T) {
	t.Parallel()
	e := newSweepEnv(t)
	before := stateDigest(t, e.s)
	for _, rt := range e.s.API().Routes() {
		if rt.Access == httpapi.Public && !strings.HasPrefix(rt.Path, "/v1/agents/") && rt.Path != "/v1/operator/raft/join" {
			continue
		}
		if rt.Path == "/v1/auth/login" {
			continue
		}
		path := pathFor(rt.Path, e.ids(rt))
		var body []byte
		if rt.In != nil {
			body = []byte(`{}`)
		}
		r := e.send(t, rt, path, body, false)
		if r.Status != http.StatusUnauthorized {
			t.Errorf("%s %s without credentials: status %d, want 401: %.200s", rt.Method, rt.Path, r.Status, r.Body)
		}
	}
	if stateDigest(t, e.s) != before {
		t.Fatal("requests without credentials changed the replicated state")
	}
}

func TestAUserCannotReachAnotherUsersObjects(t *testing.T) {
	t.Parallel()
	e := newSweepEnv(t)
	before := stateDigest(t, e.s)
	sid, ak, email := e.session.ID, e.user.Keypair.AccessKey, e.user.User.Email
	tests := []struct {
		method, path string
		body         any
		status       int
	}{
		{http.MethodGet, "/v1/sessions/" + sid, nil, http.StatusNotFound},
		{http.MethodDelete, "/v1/sessions/" + sid, nil, http.StatusNotFound},
		{http.MethodPost, "/v1/sessions/" + sid + "/exec", map[string]any{"command": []string{"true"}}, http.StatusNotFound},
		{http.MethodGet, "/v1/sessions/" + sid + "/logs", nil, http.StatusNotFound},
		{http.MethodGet, "/v1/keypairs/" + ak, nil, http.StatusNotFound},
		{http.MethodPatch, "/v1/keypairs/" + ak, map[string]any{"is_active": false}, http.StatusForbidden},
		{http.MethodDelete, "/v1/keypairs/" + ak, nil, http.StatusForbidden},
		{http.MethodGet, "/v1/users/" + email, nil, http.StatusForbidden},
		{http.MethodPatch, "/v1/users/" + email, map[string]any{"full_name": "Mallory"}, http.StatusForbidden},
		{http.MethodGet, "/v1/resources/me?access_key=" + ak, nil, http.StatusForbidden},
		{http.MethodGet, "/v1/sessions?owner=" + email, nil, http.StatusForbidden},
	}
	for _, tt := range tests {
		r := testcluster.Do(t, tt.method, e.url(tt.path), e.other, tt.body)
		if r.Status != tt.status {
			t.Errorf("bob %s %s: status %d, want %d: %.200s", tt.method, tt.path, r.Status, tt.status, r.Body)
		}
	}
	if stateDigest(t, e.s) != before {
		t.Fatal("another user's requests changed the replicated state")
	}
}
