package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// The attacks of a domain admin (and of an admin against a superadmin's
// objects in the same domain) on a real manager, each beside the same
// action on an object within the admin's reach, so every row would fail
// if the scope rule (scope.go) were too tight or too loose.

// logCapture is the manager's structured log as JSON lines.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// records are the log lines whose msg is msg, decoded.
func (l *logCapture) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(l.buf.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func withLog(w *logCapture) func(*server.Config) {
	return func(cfg *server.Config) { cfg.Log = slog.New(slog.NewJSONHandler(w, nil)) }
}

// scopeEnv: the superadmin admin@berth.local and, in domain default, the
// admin ada and the user uma; in domain d2, the admin eve, the monitor mona
// and the user dan. uma, dan and the superadmin each have a RUNNING session
// on the one (fake) agent and a user folder; eve has a folder; uma has
// invited ada to hers.
type scopeEnv struct {
	*sessionEnv
	log                      *logCapture
	ada, uma, eve, mona, dan string // login tokens
	umaKey, danKey, superKey string // access keys
	sSuper, sUma, sDan       string // session ids
	fSuper, fUma, fDan, fEve string // folder ids
	umaInvitation            string
}

const (
	umaEmail  = "uma@example.com"
	adaEmail  = "ada@example.com"
	danEmail  = "dan@d2.example"
	eveEmail  = "eve@d2.example"
	monaEmail = "mona@d2.example"
)

func newScopeEnv(t *testing.T) *scopeEnv {
	t.Helper()
	fa := newFakeAgentAPI(t)
	logs := &logCapture{}
	e := &scopeEnv{log: logs, sessionEnv: newSessionEnv(t, fa.addr(), `{"cpu":8,"mem":17179869184}`, `{"cpu":2,"mem":4294967296}`,
		withFolderHost(t.TempDir()), withLog(logs))}
	super := e.admin
	must := func(r *testcluster.Response, status int) *testcluster.Response {
		t.Helper()
		wantStatus(t, r, status)
		return r
	}
	do := func(method, path, token string, body any) *testcluster.Response {
		t.Helper()
		return testcluster.Do(t, method, e.url(path), token, body)
	}
	must(do(http.MethodPatch, "/v1/resource-policies/default", super, map[string]any{"allowed_vfolder_hosts": []string{"local"}}), http.StatusOK)
	must(do(http.MethodPost, "/v1/domains", super, map[string]any{"name": "d2"}), http.StatusCreated)
	must(do(http.MethodPost, "/v1/domains/d2/groups", super, map[string]any{"name": "g2"}), http.StatusCreated)
	must(do(http.MethodPost, "/v1/domains/default/groups", super, map[string]any{"name": "lab"}), http.StatusCreated)
	user := func(email, role, domain string) (string, string) {
		t.Helper()
		var u createdUser
		must(do(http.MethodPost, "/v1/users", super, map[string]any{"email": email, "username": strings.Split(email, "@")[0],
			"password": testPassword, "role": role, "domain": domain}), http.StatusCreated).JSON(t, &u)
		return testcluster.Login(t, e.s, email, testPassword), u.Keypair.AccessKey
	}
	e.ada, _ = user(adaEmail, api.RoleAdmin, "default")
	e.uma, e.umaKey = user(umaEmail, api.RoleUser, "default")
	e.eve, _ = user(eveEmail, api.RoleAdmin, "d2")
	e.mona, _ = user(monaEmail, api.RoleMonitor, "d2")
	e.dan, e.danKey = user(danEmail, api.RoleUser, "d2")
	var keys api.List[api.Keypair]
	must(do(http.MethodGet, "/v1/keypairs?user="+testcluster.AdminEmail, super, nil), http.StatusOK).JSON(t, &keys)
	if len(keys.Items) == 0 {
		t.Fatal("the superadmin has no keypair")
	}
	e.superKey = keys.Items[0].AccessKey

	folder := func(token, name string) string {
		t.Helper()
		var f api.Folder
		must(do(http.MethodPost, "/v1/folders", token, map[string]any{"name": name, "host": "local"}), http.StatusCreated).JSON(t, &f)
		return f.ID
	}
	e.fSuper, e.fUma, e.fDan, e.fEve = folder(super, "root-data"), folder(e.uma, "uma-data"), folder(e.dan, "dan-data"), folder(e.eve, "eve-data")
	var inv api.Invitation
	must(do(http.MethodPost, "/v1/folders/"+e.fUma+"/invitations", e.uma, map[string]any{"invitee": adaEmail, "permission": "ro"}), http.StatusCreated).JSON(t, &inv)
	e.umaInvitation = inv.ID

	e.sSuper, e.sUma, e.sDan = e.mustCreate(super, oneCPU(nil)).ID, e.mustCreate(e.uma, oneCPU(nil)).ID, e.mustCreate(e.dan, oneCPU(nil)).ID
	for _, id := range []string{e.sSuper, e.sUma, e.sDan} {
		e.place(id, 1)
	}
	e.beat(running(e.sSuper, 0, 0), running(e.sUma, 0, 0), running(e.sDan, 0, 0))
	for _, id := range []string{e.sSuper, e.sUma, e.sDan} {
		e.waitStatus(id, api.SessionRunning)
	}
	return e
}

// scopeCase is one request and the exact answer it must get: for an error
// the problem's type and detail (and field reasons, when given); for a
// success, fragments the body must and must not contain.
type scopeCase struct {
	name         string
	token        string
	method, path string
	body         any
	status       int
	problem      string
	detail       string
	fields       map[string][]string
	has, hasNot  []string
}

func (e *scopeEnv) check(t *testing.T, tc scopeCase) {
	t.Helper()
	r := testcluster.Do(t, tc.method, e.url(tc.path), tc.token, tc.body)
	if tc.problem != "" {
		p := wantProblem(t, r, tc.status, tc.problem)
		if p.Detail != tc.detail {
			t.Errorf("detail %q, want %q", p.Detail, tc.detail)
		}
		if tc.fields != nil {
			wantFields(t, p, tc.fields)
		}
		return
	}
	wantStatus(t, r, tc.status)
	for _, s := range tc.has {
		if !bytes.Contains(r.Body, []byte(s)) {
			t.Errorf("answer does not contain %q: %s", s, r.Body)
		}
	}
	for _, s := range tc.hasNot {
		if bytes.Contains(r.Body, []byte(s)) {
			t.Errorf("answer reveals %q: %s", s, r.Body)
		}
	}
}

// TestAdminsActOnlyWithinTheirDomainAndNeverOnASuperadmin performs each
// attack of issue 15 §4 and, beside it, the same action within reach.
// Rows run in order: the destructive ones come last.
func TestAdminsActOnlyWithinTheirDomainAndNeverOnASuperadmin(t *testing.T) {
	t.Parallel()
	e := newScopeEnv(t)
	super := e.admin
	get, post, patch, del := http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete
	const (
		notFound   = api.ProblemNotFound
		forbidden  = api.ProblemForbidden
		validation = api.ProblemValidation
		needsSuper = "this operation requires the superadmin role; you are admin"
	)
	noFolder := func(id string) string {
		return "no folder " + id + " that you can see; list yours with GET /v1/folders"
	}
	exec := map[string]any{"command": []string{"id"}}
	cases := []scopeCase{
		// Users of another domain.
		{name: "d2 admin reads a user of default", token: e.eve, method: get, path: "/v1/users/" + umaEmail,
			status: 404, problem: notFound, detail: "no user with email " + umaEmail},
		{name: "d2 admin reads a user of d2", token: e.eve, method: get, path: "/v1/users/" + danEmail, status: 200, has: []string{danEmail}},
		{name: "d2 admin lists users: only d2's", token: e.eve, method: get, path: "/v1/users", status: 200,
			has: []string{danEmail, monaEmail}, hasNot: []string{umaEmail, adaEmail, testcluster.AdminEmail}},
		{name: "d2 admin searches for a user of default", token: e.eve, method: get, path: "/v1/users?email=uma", status: 200, hasNot: []string{umaEmail}},
		{name: "d2 admin exports users: only d2's", token: e.eve, method: get, path: "/v1/export/users.csv", status: 200,
			has: []string{danEmail}, hasNot: []string{umaEmail, testcluster.AdminEmail}},
		{name: "d2 admin changes a user of default", token: e.eve, method: patch, path: "/v1/users/" + umaEmail, body: map[string]any{"full_name": "x"},
			status: 404, problem: notFound, detail: "no user with email " + umaEmail},
		{name: "d2 admin changes a user of d2", token: e.eve, method: patch, path: "/v1/users/" + danEmail, body: map[string]any{"full_name": "Dan"},
			status: 200, has: []string{`"full_name":"Dan"`}},
		{name: "d2 admin creates a user in default", token: e.eve, method: post, path: "/v1/users",
			body:   map[string]any{"email": "new@example.com", "username": "new", "password": testPassword, "domain": "default"},
			status: 403, problem: forbidden, detail: "an admin may create users only in their own domain d2",
			fields: map[string][]string{"domain": {"an admin may create users only in their own domain d2"}}},
		{name: "d2 admin creates a user in d2", token: e.eve, method: post, path: "/v1/users",
			body:   map[string]any{"email": "new@d2.example", "username": "new", "password": testPassword, "domain": "d2"},
			status: 201, has: []string{"new@d2.example"}},

		// Keypairs of another domain.
		{name: "d2 admin reads a keypair of default", token: e.eve, method: get, path: "/v1/keypairs/" + e.umaKey,
			status: 404, problem: notFound, detail: "no keypair with access key " + e.umaKey},
		{name: "d2 admin reads a keypair of d2", token: e.eve, method: get, path: "/v1/keypairs/" + e.danKey, status: 200, has: []string{e.danKey}},
		{name: "d2 admin lists keypairs: only d2's", token: e.eve, method: get, path: "/v1/keypairs", status: 200,
			has: []string{e.danKey}, hasNot: []string{e.umaKey, e.superKey}},
		{name: "d2 admin lists the keypairs of a user of default", token: e.eve, method: get, path: "/v1/keypairs?user=" + umaEmail,
			status: 200, hasNot: []string{e.umaKey}},
		{name: "d2 admin exports keypairs: only d2's", token: e.eve, method: get, path: "/v1/export/keypairs.csv", status: 200,
			has: []string{e.danKey}, hasNot: []string{e.umaKey, e.superKey}},
		{name: "d2 admin deactivates a keypair of default", token: e.eve, method: patch, path: "/v1/keypairs/" + e.umaKey, body: map[string]any{"is_active": false},
			status: 404, problem: notFound, detail: "no keypair with access key " + e.umaKey},
		{name: "d2 admin creates a keypair for a user of default", token: e.eve, method: post, path: "/v1/keypairs", body: map[string]any{"user": umaEmail},
			status: 400, problem: validation, detail: "no user with email " + umaEmail, fields: map[string][]string{"user": {"no user with email " + umaEmail}}},
		{name: "d2 admin creates a keypair for a user of d2", token: e.eve, method: post, path: "/v1/keypairs", body: map[string]any{"user": danEmail},
			status: 201, has: []string{danEmail, "secret_key"}},
		{name: "d2 admin reads the resources of a keypair of default", token: e.eve, method: get, path: "/v1/resources/me?access_key=" + e.umaKey,
			status: 404, problem: notFound, detail: "no keypair with access key " + e.umaKey,
			fields: map[string][]string{"access_key": {"no keypair with access key " + e.umaKey}}},
		{name: "d2 admin reads the resources of a keypair of d2", token: e.eve, method: get, path: "/v1/resources/me?access_key=" + e.danKey,
			status: 200, has: []string{e.danKey}},

		// Sessions of another domain.
		{name: "d2 admin reads a session of default", token: e.eve, method: get, path: "/v1/sessions/" + e.sUma,
			status: 404, problem: notFound, detail: "no session " + e.sUma},
		{name: "d2 admin reads a session of d2", token: e.eve, method: get, path: "/v1/sessions/" + e.sDan, status: 200, has: []string{e.sDan}},
		{name: "d2 admin lists every session: only d2's", token: e.eve, method: get, path: "/v1/sessions?all=true", status: 200,
			has: []string{e.sDan}, hasNot: []string{e.sUma, e.sSuper}},
		{name: "d2 admin lists the sessions of a user of default", token: e.eve, method: get, path: "/v1/sessions?owner=" + umaEmail,
			status: 200, hasNot: []string{e.sUma}},
		{name: "d2 admin exports sessions: only d2's", token: e.eve, method: get, path: "/v1/export/sessions.csv", status: 200,
			has: []string{e.sDan}, hasNot: []string{e.sUma, e.sSuper}},
		{name: "d2 admin execs in a session of default", token: e.eve, method: post, path: "/v1/sessions/" + e.sUma + "/exec", body: exec,
			status: 404, problem: notFound, detail: "no session " + e.sUma},
		{name: "d2 admin execs in a session of d2", token: e.eve, method: post, path: "/v1/sessions/" + e.sDan + "/exec", body: exec,
			status: 200, has: []string{`"stdout":"id\n"`}},
		{name: "d2 admin reads the logs of a session of default", token: e.eve, method: get, path: "/v1/sessions/" + e.sUma + "/logs",
			status: 404, problem: notFound, detail: "no session " + e.sUma},
		{name: "d2 admin reads the logs of a session of d2", token: e.eve, method: get, path: "/v1/sessions/" + e.sDan + "/logs",
			status: 200, has: []string{"line 1"}},
		{name: "d2 admin terminates a session of default", token: e.eve, method: del, path: "/v1/sessions/" + e.sUma,
			status: 404, problem: notFound, detail: "no session " + e.sUma},

		// A superadmin's objects, by an admin of the same domain.
		{name: "admin reads a superadmin", token: e.ada, method: get, path: "/v1/users/" + testcluster.AdminEmail,
			status: 404, problem: notFound, detail: "no user with email " + testcluster.AdminEmail},
		{name: "admin reads a user of their domain", token: e.ada, method: get, path: "/v1/users/" + umaEmail, status: 200, has: []string{umaEmail}},
		{name: "admin lists users: not the superadmin", token: e.ada, method: get, path: "/v1/users", status: 200,
			has: []string{umaEmail, adaEmail}, hasNot: []string{testcluster.AdminEmail, danEmail}},
		{name: "admin deactivates a superadmin", token: e.ada, method: patch, path: "/v1/users/" + testcluster.AdminEmail, body: map[string]any{"status": "inactive"},
			status: 404, problem: notFound, detail: "no user with email " + testcluster.AdminEmail},
		{name: "admin sets a superadmin's password", token: e.ada, method: patch, path: "/v1/users/" + testcluster.AdminEmail, body: map[string]any{"password": "Taken-over-1"},
			status: 404, problem: notFound, detail: "no user with email " + testcluster.AdminEmail},
		{name: "admin creates a keypair for a superadmin", token: e.ada, method: post, path: "/v1/keypairs", body: map[string]any{"user": testcluster.AdminEmail},
			status: 400, problem: validation, detail: "no user with email " + testcluster.AdminEmail,
			fields: map[string][]string{"user": {"no user with email " + testcluster.AdminEmail}}},
		{name: "admin creates a keypair for a user of their domain", token: e.ada, method: post, path: "/v1/keypairs", body: map[string]any{"user": umaEmail},
			status: 201, has: []string{umaEmail, "secret_key"}},
		{name: "admin reads a superadmin's keypair", token: e.ada, method: get, path: "/v1/keypairs/" + e.superKey,
			status: 404, problem: notFound, detail: "no keypair with access key " + e.superKey},
		{name: "admin deletes a superadmin's keypair", token: e.ada, method: del, path: "/v1/keypairs/" + e.superKey,
			status: 404, problem: notFound, detail: "no keypair with access key " + e.superKey},
		{name: "admin lists keypairs: not the superadmin's", token: e.ada, method: get, path: "/v1/keypairs", status: 200,
			has: []string{e.umaKey}, hasNot: []string{e.superKey, e.danKey}},
		{name: "admin reads the resources of a superadmin's keypair", token: e.ada, method: get, path: "/v1/resources/me?access_key=" + e.superKey,
			status: 404, problem: notFound, detail: "no keypair with access key " + e.superKey,
			fields: map[string][]string{"access_key": {"no keypair with access key " + e.superKey}}},
		{name: "admin reads a superadmin's session", token: e.ada, method: get, path: "/v1/sessions/" + e.sSuper,
			status: 404, problem: notFound, detail: "no session " + e.sSuper},
		{name: "admin lists every session: not the superadmin's", token: e.ada, method: get, path: "/v1/sessions?all=true", status: 200,
			has: []string{e.sUma}, hasNot: []string{e.sSuper, e.sDan}},
		{name: "admin exports sessions: not the superadmin's", token: e.ada, method: get, path: "/v1/export/sessions.csv", status: 200,
			has: []string{e.sUma}, hasNot: []string{e.sSuper}},
		{name: "admin execs in a superadmin's session", token: e.ada, method: post, path: "/v1/sessions/" + e.sSuper + "/exec", body: exec,
			status: 404, problem: notFound, detail: "no session " + e.sSuper},
		{name: "admin execs in a user's session of their domain", token: e.ada, method: post, path: "/v1/sessions/" + e.sUma + "/exec", body: exec,
			status: 200, has: []string{`"stdout":"id\n"`}},
		{name: "admin reads the logs of a superadmin's session", token: e.ada, method: get, path: "/v1/sessions/" + e.sSuper + "/logs",
			status: 404, problem: notFound, detail: "no session " + e.sSuper},
		{name: "admin reads the logs of a user's session of their domain", token: e.ada, method: get, path: "/v1/sessions/" + e.sUma + "/logs",
			status: 200, has: []string{"line 1"}},
		{name: "admin terminates a superadmin's session", token: e.ada, method: del, path: "/v1/sessions/" + e.sSuper,
			status: 404, problem: notFound, detail: "no session " + e.sSuper},
		{name: "admin reads a superadmin's folder", token: e.ada, method: get, path: "/v1/folders/" + e.fSuper,
			status: 404, problem: notFound, detail: noFolder(e.fSuper)},
		{name: "admin reads a user's folder of their domain", token: e.ada, method: get, path: "/v1/folders/" + e.fUma, status: 200, has: []string{"uma-data"}},
		{name: "admin deletes a superadmin's folder", token: e.ada, method: del, path: "/v1/folders/" + e.fSuper,
			status: 404, problem: notFound, detail: noFolder(e.fSuper)},
		{name: "admin adds a superadmin to a group", token: e.ada, method: post, path: "/v1/domains/default/groups/lab/members",
			body: map[string]any{"add": []string{testcluster.AdminEmail}}, status: 400, problem: validation, detail: "no user with email " + testcluster.AdminEmail,
			fields: map[string][]string{"add": {"no user with email " + testcluster.AdminEmail}}},
		{name: "admin adds a user of their domain to a group", token: e.ada, method: post, path: "/v1/domains/default/groups/lab/members",
			body: map[string]any{"add": []string{umaEmail}}, status: 200, has: []string{umaEmail}, hasNot: []string{testcluster.AdminEmail}},

		// Cluster objects: admins read them, only superadmins change them.
		{name: "d2 admin edits the global default policy", token: e.eve, method: patch, path: "/v1/resource-policies/default",
			body: map[string]any{"idle_timeout": 60}, status: 403, problem: forbidden, detail: needsSuper},
		{name: "admin of default edits the global default policy", token: e.ada, method: patch, path: "/v1/resource-policies/default",
			body: map[string]any{"idle_timeout": 60}, status: 403, problem: forbidden, detail: needsSuper},
		{name: "d2 admin reads the default policy", token: e.eve, method: get, path: "/v1/resource-policies/default", status: 200, has: []string{`"name":"default"`}},
		{name: "superadmin edits the default policy", token: super, method: patch, path: "/v1/resource-policies/default",
			body: map[string]any{"idle_timeout": 0}, status: 200, has: []string{`"idle_timeout":0`}},
		{name: "d2 admin creates a policy", token: e.eve, method: post, path: "/v1/resource-policies", body: map[string]any{"name": "sneaky"},
			status: 403, problem: forbidden, detail: needsSuper},
		{name: "superadmin creates a policy", token: super, method: post, path: "/v1/resource-policies", body: map[string]any{"name": "spare"},
			status: 201, has: []string{`"name":"spare"`}},
		{name: "d2 admin deletes a policy", token: e.eve, method: del, path: "/v1/resource-policies/spare", status: 403, problem: forbidden, detail: needsSuper},
		{name: "d2 admin makes the shared agent unschedulable", token: e.eve, method: patch, path: "/v1/agents/" + e.agent.ID,
			body: map[string]any{"schedulable": false}, status: 403, problem: forbidden, detail: needsSuper},
		{name: "d2 admin reads the shared agent", token: e.eve, method: get, path: "/v1/agents/" + e.agent.ID, status: 200, has: []string{`"schedulable":true`}},
		{name: "superadmin sets the agent schedulable", token: super, method: patch, path: "/v1/agents/" + e.agent.ID,
			body: map[string]any{"schedulable": true}, status: 200, has: []string{`"schedulable":true`}},

		// Groups and domains.
		{name: "d2 admin adds a user of another domain to a group", token: e.eve, method: post, path: "/v1/domains/d2/groups/g2/members",
			body: map[string]any{"add": []string{umaEmail}}, status: 400, problem: validation, detail: "no user with email " + umaEmail,
			fields: map[string][]string{"add": {"no user with email " + umaEmail}}},
		{name: "d2 admin adds a user of d2 to a group", token: e.eve, method: post, path: "/v1/domains/d2/groups/g2/members",
			body: map[string]any{"add": []string{danEmail}}, status: 200, has: []string{danEmail}},
		{name: "d2 admin lists the groups of default", token: e.eve, method: get, path: "/v1/domains/default/groups",
			status: 404, problem: notFound, detail: "no domain default"},
		{name: "d2 admin creates a group in default", token: e.eve, method: post, path: "/v1/domains/default/groups", body: map[string]any{"name": "evil"},
			status: 404, problem: notFound, detail: "no domain default"},
		{name: "d2 admin creates a group in d2", token: e.eve, method: post, path: "/v1/domains/d2/groups", body: map[string]any{"name": "g3"},
			status: 201, has: []string{`"domain":"d2"`}},
		{name: "d2 admin lists domains: only d2", token: e.eve, method: get, path: "/v1/domains", status: 200,
			has: []string{`"name":"d2"`}, hasNot: []string{`"name":"default"`}},

		// Folders and invitations of another domain.
		{name: "d2 admin reads a folder of default", token: e.eve, method: get, path: "/v1/folders/" + e.fUma,
			status: 404, problem: notFound, detail: noFolder(e.fUma)},
		{name: "d2 admin invites via a folder of default", token: e.eve, method: post, path: "/v1/folders/" + e.fUma + "/invitations",
			body: map[string]any{"invitee": danEmail, "permission": "rw"}, status: 404, problem: notFound, detail: noFolder(e.fUma)},
		{name: "d2 admin invites via their own folder", token: e.eve, method: post, path: "/v1/folders/" + e.fEve + "/invitations",
			body: map[string]any{"invitee": danEmail, "permission": "ro"}, status: 201, has: []string{danEmail}},
		{name: "d2 admin lists the files of a folder of default", token: e.eve, method: get, path: "/v1/folders/" + e.fUma + "/files",
			status: 404, problem: notFound, detail: noFolder(e.fUma)},
		{name: "d2 admin revokes an invitation of default", token: e.eve, method: del, path: "/v1/invitations/" + e.umaInvitation,
			status: 404, problem: notFound, detail: "no invitation " + e.umaInvitation + " from or to you"},

		// A monitor of d2 looks within d2 and changes nothing.
		{name: "d2 monitor reads a session of d2", token: e.mona, method: get, path: "/v1/sessions/" + e.sDan, status: 200, has: []string{e.sDan}},
		{name: "d2 monitor reads a session of default", token: e.mona, method: get, path: "/v1/sessions/" + e.sUma,
			status: 404, problem: notFound, detail: "no session " + e.sUma},
		{name: "d2 monitor lists users: only d2's", token: e.mona, method: get, path: "/v1/users", status: 200,
			has: []string{danEmail}, hasNot: []string{umaEmail, testcluster.AdminEmail}},
		{name: "d2 monitor execs in a session of d2", token: e.mona, method: post, path: "/v1/sessions/" + e.sDan + "/exec", body: exec,
			status: 403, problem: forbidden, detail: "only the owner or an admin may use session " + e.sDan},
		{name: "d2 monitor reads a folder of d2", token: e.mona, method: get, path: "/v1/folders/" + e.fDan, status: 200, has: []string{"dan-data"}},
		{name: "d2 monitor deletes a folder of d2", token: e.mona, method: del, path: "/v1/folders/" + e.fDan,
			status: 403, problem: forbidden, detail: "only the owner of folder dan-data or an admin may delete it; you have no permission on it"},
		{name: "d2 monitor deletes a folder of default", token: e.mona, method: del, path: "/v1/folders/" + e.fUma,
			status: 404, problem: notFound, detail: noFolder(e.fUma)},

		// Destructive, last.
		{name: "d2 admin deletes a folder of a user in default", token: e.eve, method: del, path: "/v1/folders/" + e.fUma,
			status: 404, problem: notFound, detail: noFolder(e.fUma)},
		{name: "admin revokes an invitation to a folder of their domain", token: e.ada, method: del, path: "/v1/invitations/" + e.umaInvitation, status: 204},
		{name: "d2 admin deletes a folder of a user in d2", token: e.eve, method: del, path: "/v1/folders/" + e.fDan, status: 204},
		{name: "admin deletes a user's folder of their domain", token: e.ada, method: del, path: "/v1/folders/" + e.fUma, status: 204},
		{name: "admin terminates a user's session of their domain", token: e.ada, method: del, path: "/v1/sessions/" + e.sUma, status: 202},
		{name: "d2 admin deactivates a user of default", token: e.eve, method: patch, path: "/v1/users/" + umaEmail, body: map[string]any{"status": "inactive"},
			status: 404, problem: notFound, detail: "no user with email " + umaEmail},
		{name: "d2 admin deactivates a user of d2", token: e.eve, method: patch, path: "/v1/users/" + danEmail, body: map[string]any{"status": "inactive"},
			status: 200, has: []string{`"status":"inactive"`}},
		{name: "superadmin deletes a policy", token: super, method: del, path: "/v1/resource-policies/spare", status: 204},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { e.check(t, tc) })
	}

	t.Run("the superadmin's objects are untouched and the superadmin sees everything", func(t *testing.T) {
		for _, tc := range []scopeCase{
			{token: super, method: get, path: "/v1/users/" + testcluster.AdminEmail, status: 200, has: []string{`"status":"active"`}},
			{token: super, method: get, path: "/v1/keypairs/" + e.superKey, status: 200, has: []string{`"is_active":true`}},
			{token: super, method: get, path: "/v1/sessions/" + e.sSuper, status: 200, has: []string{`"status":"RUNNING"`}},
			{token: super, method: get, path: "/v1/folders/" + e.fSuper, status: 200, has: []string{"root-data"}},
			{token: super, method: get, path: "/v1/resource-policies/default", status: 200, has: []string{`"idle_timeout":0`}},
			{token: super, method: get, path: "/v1/users", status: 200, has: []string{testcluster.AdminEmail, adaEmail, danEmail, monaEmail}},
			{token: super, method: get, path: "/v1/sessions?all=true", status: 200, has: []string{e.sSuper, e.sDan}},
		} {
			e.check(t, tc)
		}
	})
}

// TestExecAndLogsByAnotherUserAreAudited: an admin's exec and log read in
// a user's session leave one structured line each in the manager's log
// with who, what, whose and when; the owner's own do not.
func TestExecAndLogsByAnotherUserAreAudited(t *testing.T) {
	t.Parallel()
	e := newScopeEnv(t)
	const msg = "session accessed by someone other than its owner"
	if got := e.log.records(t, msg); len(got) != 0 {
		t.Fatalf("audit lines before any access: %v", got)
	}
	do := func(token, method, path string, body any) {
		t.Helper()
		wantStatus(t, testcluster.Do(t, method, e.url(path), token, body), http.StatusOK)
	}
	do(e.uma, http.MethodPost, "/v1/sessions/"+e.sUma+"/exec", map[string]any{"command": []string{"whoami"}})
	do(e.uma, http.MethodGet, "/v1/sessions/"+e.sUma+"/logs", nil)
	if got := e.log.records(t, msg); len(got) != 0 {
		t.Fatalf("the owner's own exec and logs were audited as someone else's: %v", got)
	}
	before := time.Now().UTC().Add(-time.Minute)
	do(e.ada, http.MethodPost, "/v1/sessions/"+e.sUma+"/exec", map[string]any{"command": []string{"cat", "/proc/1/environ"}})
	do(e.ada, http.MethodGet, "/v1/sessions/"+e.sUma+"/logs", nil)
	do(e.admin, http.MethodPost, "/v1/sessions/"+e.sDan+"/exec", map[string]any{"command": []string{"ls"}})
	// A refused attempt reaches no agent and is no access.
	wantStatus(t, testcluster.Do(t, http.MethodPost, e.url("/v1/sessions/"+e.sSuper+"/exec"), e.ada, map[string]any{"command": []string{"id"}}), http.StatusNotFound)

	got := e.log.records(t, msg)
	want := []map[string]any{
		{"audit": "session-access", "action": "exec", "actor": adaEmail, "actor_role": "admin", "owner": umaEmail, "session": e.sUma,
			"route": "POST /v1/sessions/" + e.sUma + "/exec", "container": e.sUma + "-0", "agent": e.agent.ID, "command": []any{"cat", "/proc/1/environ"}},
		{"audit": "session-access", "action": "logs", "actor": adaEmail, "actor_role": "admin", "owner": umaEmail, "session": e.sUma,
			"route": "GET /v1/sessions/" + e.sUma + "/logs", "container": e.sUma + "-0", "agent": e.agent.ID},
		{"audit": "session-access", "action": "exec", "actor": testcluster.AdminEmail, "actor_role": "superadmin", "owner": danEmail, "session": e.sDan,
			"route": "POST /v1/sessions/" + e.sDan + "/exec", "container": e.sDan + "-0", "agent": e.agent.ID, "command": []any{"ls"}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d audit lines, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		for k, v := range w {
			if fmt.Sprint(got[i][k]) != fmt.Sprint(v) {
				t.Errorf("audit line %d: %s = %v, want %v (line %v)", i, k, got[i][k], v, got[i])
			}
		}
		if _, ok := w["command"]; !ok {
			if _, ok := got[i]["command"]; ok {
				t.Errorf("audit line %d of a log read has a command: %v", i, got[i])
			}
		}
		at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(got[i]["at"]))
		if err != nil || at.Before(before) || at.After(time.Now().Add(time.Minute)) {
			t.Errorf("audit line %d: at %v is not the time of the access (%v)", i, got[i]["at"], err)
		}
		if got[i]["client"] != "127.0.0.1" {
			t.Errorf("audit line %d: client %v, want 127.0.0.1", i, got[i]["client"])
		}
	}
}

// TestInvitationsDoNotRevealEmailsOutsideTheDomain: inviting an unknown
// email and inviting a user of another domain get the same answer, word
// for word but the email; inviting within the domain works.
func TestInvitationsDoNotRevealEmailsOutsideTheDomain(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t)
	wantStatus(t, e.do(http.MethodPatch, "/v1/resource-policies/default", e.admin, map[string]any{"allowed_vfolder_hosts": []string{"local"}}), http.StatusOK)
	wantStatus(t, e.do(http.MethodPost, "/v1/domains", e.admin, map[string]any{"name": "d2"}), http.StatusCreated)
	for _, email := range []string{danEmail, "dora@d2.example"} {
		wantStatus(t, e.do(http.MethodPost, "/v1/users", e.admin, map[string]any{"email": email, "username": strings.Split(email, "@")[0],
			"password": testPassword, "domain": "d2"}), http.StatusCreated)
	}
	createUser(t, e.s, e.admin, umaEmail, "uma", api.RoleUser)
	dan := testcluster.Login(t, e.s, danEmail, testPassword)
	f := e.createFolder(dan, map[string]any{"name": "dan-data", "host": "local"})
	invite := func(email string) *testcluster.Response {
		return e.do(http.MethodPost, "/v1/folders/"+f.ID+"/invitations", dan, map[string]any{"invitee": email, "permission": "ro"})
	}
	const ghost = "ghost@nowhere.example"
	unknown := invite(ghost)
	p := wantProblem(t, unknown, http.StatusBadRequest, api.ProblemValidation)
	wantFields(t, p, map[string][]string{"invitee": {"no active user with email " + ghost}})
	for _, other := range []string{umaEmail, testcluster.AdminEmail} {
		r := invite(other)
		wantStatus(t, r, unknown.Status)
		if a, b := strings.ReplaceAll(string(r.Body), other, "EMAIL"), strings.ReplaceAll(string(unknown.Body), ghost, "EMAIL"); a != b {
			t.Errorf("inviting %s of another domain answers\n%s\nbut an unknown email\n%s", other, a, b)
		}
		if !slices.Equal(r.Header.Values("Content-Type"), unknown.Header.Values("Content-Type")) {
			t.Errorf("Content-Type %q, unknown email %q", r.Header.Values("Content-Type"), unknown.Header.Values("Content-Type"))
		}
	}
	wantStatus(t, invite("dora@d2.example"), http.StatusCreated)
}
