package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/shared/api"
)

// adminCall is one request an admin command sent.
type adminCall struct {
	method, path, query, body string
}

// adminFake is a manager that answers "METHOD PATH" from a table of
// canned JSON answers and records every request with its body.
type adminFake struct {
	url   string
	mu    sync.Mutex
	calls []adminCall
}

// adminAnswer is one canned answer; a nil body with a 2xx status answers
// 204 with nothing.
type adminAnswer struct {
	status int
	body   any
}

func newAdminFake(t *testing.T, answers map[string]adminAnswer) *adminFake {
	t.Helper()
	f := &adminFake{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		f.mu.Lock()
		f.calls = append(f.calls, adminCall{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(body)})
		f.mu.Unlock()
		a, ok := answers[r.Method+" "+r.URL.EscapedPath()]
		switch {
		case !ok:
			http.NotFound(w, r)
		case a.body == nil:
			w.WriteHeader(a.status)
		default:
			if p, isProblem := a.body.(api.Problem); isProblem {
				w.Header().Set("Content-Type", api.ProblemContentType)
				w.WriteHeader(a.status)
				_ = json.NewEncoder(w).Encode(p)
				return
			}
			writeJSON(w, a.status, a.body)
		}
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *adminFake) env() map[string]string {
	return map[string]string{"BERTH_ADDR": f.url, "BERTH_TOKEN": "tok"}
}

// only returns the one request the command sent.
func (f *adminFake) only(t *testing.T) adminCall {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) != 1 {
		t.Fatalf("the manager received %d requests, want 1: %+v", len(f.calls), f.calls)
	}
	return f.calls[0]
}

func (f *adminFake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

var (
	adminCreated = time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	adminUser    = api.User{
		Email: "ada@example.com", Username: "ada", FullName: "Ada L", Role: api.RoleUser, Status: api.StatusActive,
		Domain: "default", Groups: []string{"ml"}, CreatedAt: adminCreated, ModifiedAt: adminCreated,
	}
	adminKeypair = api.Keypair{
		AccessKey: "AKAAAABBBBCCCCDDDDEE", User: "ada@example.com", IsActive: true, ResourcePolicy: "default",
		CreatedAt: adminCreated,
	}
	adminGroup = api.GroupDetail{
		Group:   api.Group{Name: "ml", Domain: "lab", Description: "ML team", IsActive: true, CreatedAt: adminCreated},
		Members: []string{"ada@example.com", "bob@example.com"},
	}
)

const adminSecret = "0123456789abcdefghij0123456789ABCDEFGHIJ"

func TestUserCreatePrintsTheSecretOnce(t *testing.T) {
	kp := adminKeypair
	kp.SecretKey = adminSecret
	answer := api.UserCreated{User: adminUser, Keypair: kp}
	tests := []struct {
		name     string
		env      map[string]string
		stdin    string
		args     []string
		wantBody string
	}{
		{
			name: "every flag",
			args: []string{"user", "create", "ada@example.com", "--username", "ada", "--full-name", "Ada L",
				"--password", "Passw0rd!", "--role", "admin", "--domain", "lab", "--group", "ml", "--group", "ops",
				"--inactive", "--need-password-change", "--resource-policy", "gpu", "--description", "d"},
			wantBody: `{"email":"ada@example.com","username":"ada","full_name":"Ada L","password":"Passw0rd!",` +
				`"role":"admin","domain":"lab","groups":["ml","ops"],"status":"inactive","need_password_change":true,` +
				`"resource_policy":"gpu","description":"d"}`,
		},
		{
			name:     "password from the environment",
			env:      map[string]string{"BERTH_NEW_PASSWORD": "Env-pass1"},
			args:     []string{"user", "create", "ada@example.com", "--username", "ada"},
			wantBody: `{"email":"ada@example.com","username":"ada","password":"Env-pass1"}`,
		},
		{
			name:     "password as a line of standard input",
			stdin:    "Stdin-pass1\n",
			args:     []string{"user", "create", "ada@example.com", "--username", "ada", "--password", "-"},
			wantBody: `{"email":"ada@example.com","username":"ada","password":"Stdin-pass1"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAdminFake(t, map[string]adminAnswer{"POST /v1/users": {http.StatusCreated, answer}})
			env := f.env()
			for k, v := range tt.env {
				env[k] = v
			}
			res := berth(t, env, tt.stdin, tt.args...)
			if res.code != 0 {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			if got := f.only(t); got.method != "POST" || got.path != "/v1/users" || got.body != tt.wantBody {
				t.Fatalf("sent %s %s %s\nwant POST /v1/users %s", got.method, got.path, got.body, tt.wantBody)
			}
			for _, want := range []string{"email:", "ada@example.com\n", "access_key:", kp.AccessKey + "\n", "secret_key:", adminSecret + "\n"} {
				if !strings.Contains(res.stdout, want) {
					t.Fatalf("stdout lacks %q:\n%s", want, res.stdout)
				}
			}
			if !strings.Contains(res.stderr, "shown only this once") {
				t.Fatalf("stderr does not say the secret is shown once: %q", res.stderr)
			}
		})
	}
}

func TestUserCreateJSONIsTheAnswerWithTheSecret(t *testing.T) {
	kp := adminKeypair
	kp.SecretKey = adminSecret
	answer := api.UserCreated{User: adminUser, Keypair: kp}
	f := newAdminFake(t, map[string]adminAnswer{"POST /v1/users": {http.StatusCreated, answer}})
	res := berth(t, f.env(), "", "user", "create", "ada@example.com", "--username", "ada", "--password", "Passw0rd!", "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	var got api.UserCreated
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, res.stdout)
	}
	if got.Keypair.SecretKey != adminSecret || got.User.Email != adminUser.Email {
		t.Fatalf("printed %+v", got)
	}
}

func TestUserCreateWithoutUsernameSendsNothing(t *testing.T) {
	f := newAdminFake(t, nil)
	res := berth(t, f.env(), "", "user", "create", "ada@example.com", "--password", "Passw0rd!")
	if res.code != 1 || !strings.Contains(res.stderr, `"username"`) || f.count() != 0 {
		t.Fatalf("exit %d, stderr %q, %d requests", res.code, res.stderr, f.count())
	}
}

// TestAdminCommandsSendExactlyTheirRequest checks, for each command, the
// method, path, query and body it sends: update commands send only the
// flags given.
func TestAdminCommandsSendExactlyTheirRequest(t *testing.T) {
	ak := adminKeypair.AccessKey
	kp := adminKeypair
	kp.SecretKey = adminSecret
	answers := map[string]adminAnswer{
		"PATCH /v1/users/ada@example.com":            {http.StatusOK, adminUser},
		"POST /v1/keypairs":                          {http.StatusCreated, kp},
		"GET /v1/keypairs/" + ak:                     {http.StatusOK, adminKeypair},
		"PATCH /v1/keypairs/" + ak:                   {http.StatusOK, adminKeypair},
		"DELETE /v1/keypairs/" + ak:                  {http.StatusNoContent, nil},
		"POST /v1/domains":                           {http.StatusCreated, api.Domain{Name: "lab", IsActive: true}},
		"GET /v1/domains/default/groups":             {http.StatusOK, api.List[api.Group]{Items: []api.Group{adminGroup.Group}}},
		"POST /v1/domains/lab/groups":                {http.StatusCreated, adminGroup.Group},
		"GET /v1/domains/lab/groups/ml":              {http.StatusOK, adminGroup},
		"PATCH /v1/domains/lab/groups/ml":            {http.StatusOK, adminGroup.Group},
		"POST /v1/domains/lab/groups/ml/members":     {http.StatusOK, adminGroup},
		"POST /v1/domains/default/groups/ml/members": {http.StatusOK, adminGroup},
	}
	tests := []struct {
		name       string
		args       []string
		want       adminCall
		wantStdout []string
		wantStderr string
	}{
		{
			name: "user update sends only the given fields",
			args: []string{"user", "update", "ada@example.com", "--full-name", "Ada Lovelace", "--need-password-change=false"},
			want: adminCall{"PATCH", "/v1/users/ada@example.com", "", `{"full_name":"Ada Lovelace","need_password_change":false}`},
		},
		{
			name: "user update replaces the groups",
			args: []string{"user", "update", "ada@example.com", "--group", "ml", "--group", "ops", "--role", "admin"},
			want: adminCall{"PATCH", "/v1/users/ada@example.com", "", `{"role":"admin","groups":["ml","ops"]}`},
		},
		{
			name: "user update with an empty group list clears it",
			args: []string{"user", "update", "ada@example.com", "--group", ""},
			want: adminCall{"PATCH", "/v1/users/ada@example.com", "", `{"groups":[]}`},
		},
		{
			name: "user update password, username, description",
			args: []string{"user", "update", "ada@example.com", "--password", "N3w-pass!", "--username", "ada2", "--description", ""},
			want: adminCall{"PATCH", "/v1/users/ada@example.com", "", `{"username":"ada2","password":"N3w-pass!","description":""}`},
		},
		{
			name:       "user deactivate",
			args:       []string{"user", "deactivate", "ada@example.com"},
			want:       adminCall{"PATCH", "/v1/users/ada@example.com", "", `{"status":"inactive"}`},
			wantStdout: []string{"email:", "ada@example.com\n"},
			wantStderr: "every keypair of theirs is inactive",
		},
		{
			name:       "user activate says keypairs stay inactive",
			args:       []string{"user", "activate", "ada@example.com"},
			want:       adminCall{"PATCH", "/v1/users/ada@example.com", "", `{"status":"active"}`},
			wantStderr: "Their keypairs stay inactive: re-enable each one with\n\"berth keypair activate ACCESS_KEY\"",
		},
		{
			name:       "keypair create prints the secret",
			args:       []string{"keypair", "create", "--user", "ada@example.com", "--resource-policy", "gpu", "--admin=false", "--rate-limit", "100"},
			want:       adminCall{"POST", "/v1/keypairs", "", `{"user":"ada@example.com","resource_policy":"gpu","is_admin":false,"rate_limit":100}`},
			wantStdout: []string{"access_key:", ak + "\n", "secret_key:", adminSecret + "\n"},
			wantStderr: "shown only this once",
		},
		{
			name: "keypair create leaves is_admin to the manager",
			args: []string{"keypair", "create", "--user", "ada@example.com"},
			want: adminCall{"POST", "/v1/keypairs", "", `{"user":"ada@example.com"}`},
		},
		{
			name:       "keypair get",
			args:       []string{"keypair", "get", ak},
			want:       adminCall{"GET", "/v1/keypairs/" + ak, "", ""},
			wantStdout: []string{"access_key:", ak + "\n", "resource_policy:", "default\n", "last_used:", "-\n"},
		},
		{
			name: "keypair update",
			args: []string{"keypair", "update", ak, "--rate-limit", "0"},
			want: adminCall{"PATCH", "/v1/keypairs/" + ak, "", `{"rate_limit":0}`},
		},
		{
			name: "keypair activate",
			args: []string{"keypair", "activate", ak},
			want: adminCall{"PATCH", "/v1/keypairs/" + ak, "", `{"is_active":true}`},
		},
		{
			name: "keypair deactivate",
			args: []string{"keypair", "deactivate", ak},
			want: adminCall{"PATCH", "/v1/keypairs/" + ak, "", `{"is_active":false}`},
		},
		{
			name:       "keypair delete",
			args:       []string{"keypair", "delete", ak},
			want:       adminCall{"DELETE", "/v1/keypairs/" + ak, "", ""},
			wantStdout: []string{"Deleted keypair " + ak + "\n"},
		},
		{
			name:       "domain create",
			args:       []string{"domain", "create", "lab", "--description", "the lab"},
			want:       adminCall{"POST", "/v1/domains", "", `{"name":"lab","description":"the lab"}`},
			wantStdout: []string{"name:", "lab\n"},
		},
		{
			name:       "group list defaults to the default domain",
			args:       []string{"group", "list"},
			want:       adminCall{"GET", "/v1/domains/default/groups", "", ""},
			wantStdout: []string{"NAME  DOMAIN  DESCRIPTION  IS_ACTIVE  CREATED_AT\n", "ml    lab     ML team      true       2025-05-06T07:08:09Z\n"},
		},
		{
			name: "group create",
			args: []string{"group", "create", "ml", "--domain", "lab", "--description", "ML team"},
			want: adminCall{"POST", "/v1/domains/lab/groups", "", `{"name":"ml","description":"ML team"}`},
		},
		{
			name:       "group get shows the members",
			args:       []string{"group", "get", "ml", "--domain", "lab"},
			want:       adminCall{"GET", "/v1/domains/lab/groups/ml", "", ""},
			wantStdout: []string{"members:", "ada@example.com,bob@example.com\n"},
		},
		{
			name: "group update",
			args: []string{"group", "update", "ml", "--domain", "lab", "--active=false"},
			want: adminCall{"PATCH", "/v1/domains/lab/groups/ml", "", `{"is_active":false}`},
		},
		{
			name:       "group add-member",
			args:       []string{"group", "add-member", "ml", "ada@example.com", "bob@example.com", "--domain", "lab"},
			want:       adminCall{"POST", "/v1/domains/lab/groups/ml/members", "", `{"add":["ada@example.com","bob@example.com"]}`},
			wantStdout: []string{"members:", "ada@example.com,bob@example.com\n"},
		},
		{
			name: "group remove-member",
			args: []string{"group", "remove-member", "ml", "bob@example.com"},
			want: adminCall{"POST", "/v1/domains/default/groups/ml/members", "", `{"remove":["bob@example.com"]}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAdminFake(t, answers)
			res := berth(t, f.env(), "", tt.args...)
			if res.code != 0 {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			if got := f.only(t); got != tt.want {
				t.Fatalf("sent\n%+v\nwant\n%+v", got, tt.want)
			}
			for _, s := range tt.wantStdout {
				if !strings.Contains(res.stdout, s) {
					t.Fatalf("stdout lacks %q:\n%s", s, res.stdout)
				}
			}
			if !strings.Contains(res.stderr, tt.wantStderr) {
				t.Fatalf("stderr %q lacks %q", res.stderr, tt.wantStderr)
			}
		})
	}
}

func TestUpdatesWithNothingToChangeSendNothing(t *testing.T) {
	for _, args := range [][]string{
		{"user", "update", "ada@example.com"},
		{"keypair", "update", adminKeypair.AccessKey},
		{"group", "update", "ml"},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			f := newAdminFake(t, nil)
			res := berth(t, f.env(), "", args...)
			if res.code != 1 || !strings.Contains(res.stderr, "nothing to change") || f.count() != 0 {
				t.Fatalf("exit %d, stderr %q, %d requests", res.code, res.stderr, f.count())
			}
		})
	}
}

func TestUserCreateProblemPrintsEveryReason(t *testing.T) {
	problem := api.Problem{
		Type: api.ProblemValidation, Title: "Invalid request", Status: http.StatusBadRequest, Detail: "3 fields are invalid",
		Errors: []api.FieldError{
			{Field: "email", Reason: "email must look like name@example.com"},
			{Field: "password", Reason: "password must be at least 8 characters"},
			{Field: "password", Reason: "password must contain at least one digit"},
		},
	}
	f := newAdminFake(t, map[string]adminAnswer{"POST /v1/users": {http.StatusBadRequest, problem}})
	res := berth(t, f.env(), "", "user", "create", "ada", "--username", "ada", "--password", "short")
	if res.code != 1 {
		t.Fatalf("exit %d, want 1", res.code)
	}
	want := "Error: Invalid request (400)\n" +
		"  3 fields are invalid\n" +
		"  - email: email must look like name@example.com\n" +
		"  - password: password must be at least 8 characters\n" +
		"  - password: password must contain at least one digit\n"
	if res.stderr != want {
		t.Fatalf("stderr:\n%s\nwant:\n%s", res.stderr, want)
	}
	if res.stdout != "" {
		t.Fatalf("stdout %q on error", res.stdout)
	}
}

// exportCSV has what a CSV re-encoder would change: CRLF line ends, a
// quoted newline and comma, a defused formula, unicode.
const exportCSV = "email,username,full_name\r\n" +
	"ada@example.com,ada,\"Lovelace, Ada\"\r\n" +
	"bob@example.com,'=cmd,\"two\nlines\"\r\n" +
	"zoë@example.com,zoë,Zoë\r\n"

// csvServer serves body as the export of every kind, or cuts the transfer
// short after half of it when cut is set, as the manager does when it fails
// mid-way.
func csvServer(t *testing.T, body string, cut bool) (string, <-chan adminCall) {
	t.Helper()
	calls := make(chan adminCall, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls <- adminCall{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, ""}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		if !cut {
			_, _ = io.WriteString(w, body)
			return
		}
		_, _ = io.WriteString(w, body[:len(body)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, calls
}

func TestExportWritesExactlyTheServedBytes(t *testing.T) {
	addr, calls := csvServer(t, exportCSV, false)
	env := map[string]string{"BERTH_ADDR": addr, "BERTH_TOKEN": "tok"}

	t.Run("to standard output with the user filters", func(t *testing.T) {
		res := berth(t, env, "", "export", "users", "--filename", "all users", "--status", "active", "--email", "ex",
			"--username", "a", "--group", "ml")
		if res.code != 0 {
			t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
		}
		if res.stdout != exportCSV {
			t.Fatalf("stdout %q\nwant %q", res.stdout, exportCSV)
		}
		want := adminCall{"GET", "/v1/export/users.csv", "email=ex&filename=all+users&group=ml&status=active&username=a", ""}
		if got := <-calls; got != want {
			t.Fatalf("sent %+v, want %+v", got, want)
		}
	})

	t.Run("to a file with the keypair filters", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "kp.csv")
		res := berth(t, env, "", "export", "keypairs", "-O", path, "--user", "ada@example.com", "--active=false", "-o", "csv")
		if res.code != 0 {
			t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
		}
		if res.stdout != "" {
			t.Fatalf("stdout %q when writing to a file", res.stdout)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != exportCSV {
			t.Fatalf("file %q\nwant %q", got, exportCSV)
		}
		want := adminCall{"GET", "/v1/export/keypairs.csv", "is_active=false&user=ada%40example.com", ""}
		if c := <-calls; c != want {
			t.Fatalf("sent %+v, want %+v", c, want)
		}
		if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
			t.Fatalf("directory holds %d entries, want only the export", len(entries))
		}
	})

	t.Run("-o json does not apply", func(t *testing.T) {
		res := berth(t, env, "", "export", "users", "-o", "json")
		if res.code != 1 || !strings.Contains(res.stderr, "-o json does not apply") {
			t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
		}
	})
}

func TestExportCutShortFailsAndLeavesNoFile(t *testing.T) {
	addr, _ := csvServer(t, exportCSV, true)
	env := map[string]string{"BERTH_ADDR": addr, "BERTH_TOKEN": "tok"}
	dir := t.TempDir()
	res := berth(t, env, "", "export", "users", "-O", filepath.Join(dir, "users.csv"))
	if res.code != 1 || !strings.Contains(res.stderr, "saving the users export") {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a cut transfer left %v behind", entries)
	}
	res = berth(t, env, "", "export", "users")
	if res.code != 1 || !strings.Contains(res.stderr, "downloading the users export") {
		t.Fatalf("to stdout: exit %d, stderr %q", res.code, res.stderr)
	}
}
