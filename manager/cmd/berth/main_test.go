package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/sign"
)

// fakeManager records requests and answers them with handler.
type fakeManager struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
}

func newFakeManager(t *testing.T, handler http.HandlerFunc) *fakeManager {
	t.Helper()
	m := &fakeManager{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.requests = append(m.requests, r.Clone(context.Background()))
		m.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *fakeManager) last(t *testing.T) *http.Request {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.requests) == 0 {
		t.Fatal("the manager received no request")
	}
	return m.requests[len(m.requests)-1]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type result struct {
	code           int
	stdout, stderr string
}

// berth runs one command line in-process with only the given environment.
func berth(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut, getenv)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func testUsers() api.List[api.User] {
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return api.List[api.User]{
		Items: []api.User{
			{
				Email: "admin@berth.local", Username: "admin", FullName: "Ada Admin", Role: api.RoleSuperadmin,
				Status: api.StatusActive, Domain: "default", Groups: []string{"default", "ops"}, CreatedAt: created,
			},
			{
				Email: "bob@example.com", Username: "bob", FullName: "=cmd|calc", Role: api.RoleUser,
				Status: api.StatusInactive, Domain: "default", NeedPasswordChange: true, CreatedAt: created,
			},
		},
		NextCursor: "c2",
	}
}

func TestUserListRendersEachOutputFormat(t *testing.T) {
	users := testUsers()
	m := newFakeManager(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, users)
	})
	env := map[string]string{"BERTH_ADDR": m.URL, "BERTH_TOKEN": "tok"}
	tests := []struct {
		name       string
		args       []string
		wantStdout string
		check      func(t *testing.T, stdout string)
		wantStderr string
	}{
		{
			name: "table",
			args: []string{"user", "list"},
			wantStdout: "" +
				"EMAIL              USERNAME  FULL_NAME  ROLE        STATUS    DOMAIN   GROUPS       NEED_PASSWORD_CHANGE  CREATED_AT\n" +
				"admin@berth.local  admin     Ada Admin  superadmin  active    default  default,ops  false                 2025-01-02T03:04:05Z\n" +
				"bob@example.com    bob       =cmd|calc  user        inactive  default  -            true                  2025-01-02T03:04:05Z\n",
			wantStderr: "More results: repeat with --cursor c2\n",
		},
		{
			name: "csv quotes and defuses formulas",
			args: []string{"user", "list", "-o", "csv"},
			wantStdout: "" +
				"email,username,full_name,role,status,domain,groups,need_password_change,created_at\n" +
				"admin@berth.local,admin,Ada Admin,superadmin,active,default,\"default,ops\",false,2025-01-02T03:04:05Z\n" +
				"bob@example.com,bob,'=cmd|calc,user,inactive,default,,true,2025-01-02T03:04:05Z\n",
			wantStderr: "More results: repeat with --cursor c2\n",
		},
		{
			name: "json is the API object",
			args: []string{"user", "list", "--output", "json"},
			check: func(t *testing.T, stdout string) {
				var got api.List[api.User]
				if err := json.Unmarshal([]byte(stdout), &got); err != nil {
					t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
				}
				if !reflect.DeepEqual(got, users) {
					t.Fatalf("got %+v\nwant %+v", got, users)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := berth(t, env, "", tt.args...)
			if res.code != 0 {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			if tt.check != nil {
				tt.check(t, res.stdout)
			} else if res.stdout != tt.wantStdout {
				t.Fatalf("stdout:\n%s\nwant:\n%s", res.stdout, tt.wantStdout)
			}
			if res.stderr != tt.wantStderr {
				t.Fatalf("stderr %q, want %q", res.stderr, tt.wantStderr)
			}
		})
	}
}

func TestListFlagsBecomeQueryParameters(t *testing.T) {
	m := newFakeManager(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"items": []any{}})
	})
	env := map[string]string{"BERTH_ADDR": m.URL, "BERTH_TOKEN": "tok"}
	tests := []struct {
		name      string
		args      []string
		wantPath  string
		wantQuery string
	}{
		{"user filters", []string{"user", "list", "--status", "active", "--email", "a@", "--username", "ad", "--group", "ops"},
			"/v1/users", "email=a%40&group=ops&status=active&username=ad"},
		{"user page", []string{"user", "list", "--limit", "5", "--cursor", "xyz"}, "/v1/users", "cursor=xyz&limit=5"},
		{"keypair any state", []string{"keypair", "list", "--user", "a@b.c"}, "/v1/keypairs", "user=a%40b.c"},
		{"keypair active", []string{"keypair", "list", "--active"}, "/v1/keypairs", "is_active=true"},
		{"keypair inactive", []string{"keypair", "list", "--active=false"}, "/v1/keypairs", "is_active=false"},
		{"policies", []string{"policy", "list"}, "/v1/resource-policies", ""},
		{"domains", []string{"domain", "list"}, "/v1/domains", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := berth(t, env, "", tt.args...)
			if res.code != 0 {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			r := m.last(t)
			if r.URL.Path != tt.wantPath || r.URL.Query().Encode() != tt.wantQuery {
				t.Fatalf("request %s?%s, want %s?%s", r.URL.Path, r.URL.Query().Encode(), tt.wantPath, tt.wantQuery)
			}
		})
	}
}

func TestProblemIsPrintedWithEveryFieldReason(t *testing.T) {
	m := newFakeManager(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", api.ProblemContentType)
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(api.Problem{
			Type: api.ProblemValidation, Title: "Invalid request", Status: 400, Detail: "2 query parameters are invalid",
			Errors: []api.FieldError{
				{Field: "status", Reason: "status must be active or inactive"},
				{Field: "limit", Reason: "limit must be at most 1000"},
			},
		})
	})
	res := berth(t, map[string]string{"BERTH_ADDR": m.URL, "BERTH_TOKEN": "tok"}, "", "user", "list", "--status", "x")
	if res.code != 1 {
		t.Fatalf("exit %d, want 1", res.code)
	}
	want := "Error: Invalid request (400)\n" +
		"  2 query parameters are invalid\n" +
		"  - status: status must be active or inactive\n" +
		"  - limit: limit must be at most 1000\n"
	if res.stderr != want {
		t.Fatalf("stderr:\n%s\nwant:\n%s", res.stderr, want)
	}
	if res.stdout != "" {
		t.Fatalf("stdout %q on error", res.stdout)
	}
}

func loginHandler(t *testing.T, wantPassword string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/auth/login":
			var in api.LoginRequest
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				t.Error(err)
			}
			if in.Password != wantPassword {
				w.Header().Set("Content-Type", api.ProblemContentType)
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"type":"`+api.ProblemUnauthorized+`","title":"Wrong email or password","status":401}`)
				return
			}
			writeJSON(w, http.StatusOK, api.LoginResponse{
				Token:     "tok-" + in.Email,
				ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
				User:      api.User{Email: in.Email, Role: api.RoleAdmin},
			})
		case "/v1/auth/whoami":
			writeJSON(w, http.StatusOK, api.WhoAmI{User: api.User{Email: strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer tok-")}})
		case "/v1/auth/logout":
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	}
}

func TestLoginSavesCredentialsReadableOnlyByOwner(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		stdin string
		args  []string
	}{
		{"password flag", nil, "", []string{"login", "-e", "a@b.c", "-p", "pw1"}},
		{"password from environment", map[string]string{"BERTH_PASSWORD": "pw1"}, "", []string{"login", "--email", "a@b.c"}},
		{"email and password from stdin", nil, "a@b.c\npw1\n", []string{"login"}},
		{"password from stdin without newline", nil, "pw1", []string{"login", "-e", "a@b.c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newFakeManager(t, loginHandler(t, "pw1"))
			path := filepath.Join(t.TempDir(), "sub", "credentials.json")
			env := map[string]string{"BERTH_ADDR": m.URL, "BERTH_CONFIG": path}
			for k, v := range tt.env {
				env[k] = v
			}
			res := berth(t, env, tt.stdin, tt.args...)
			if res.code != 0 {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			if !strings.Contains(res.stdout, "Logged in as a@b.c") {
				t.Fatalf("stdout %q", res.stdout)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Fatalf("credentials mode %v, want 0600", st.Mode().Perm())
			}
			creds, err := readCredentials(path)
			if err != nil {
				t.Fatal(err)
			}
			if creds.Token != "tok-a@b.c" || creds.Addr != m.URL {
				t.Fatalf("saved %+v", creds)
			}
			if r := m.last(t); r.Header.Get("Authorization") != "" {
				t.Fatalf("login sent Authorization %q", r.Header.Get("Authorization"))
			}
			// The saved login is used when the environment has no credentials,
			// including its address.
			res = berth(t, map[string]string{"BERTH_CONFIG": path}, "", "whoami", "-o", "csv")
			if res.code != 0 {
				t.Fatalf("whoami exit %d, stderr %q", res.code, res.stderr)
			}
			if !strings.Contains(res.stdout, "\na@b.c,") {
				t.Fatalf("whoami printed %q", res.stdout)
			}
		})
	}
}

func TestLoginReplacesAWorldReadableFileWithAPrivateOne(t *testing.T) {
	m := newFakeManager(t, loginHandler(t, "pw1"))
	path := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(path, []byte(`{"addr":"http://old","token":"old"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	res := berth(t, map[string]string{"BERTH_ADDR": m.URL, "BERTH_CONFIG": path}, "", "login", "-e", "a@b.c", "-p", "pw1")
	if res.code != 0 {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
}

func TestFailedLoginKeepsNoCredentials(t *testing.T) {
	m := newFakeManager(t, loginHandler(t, "pw1"))
	path := filepath.Join(t.TempDir(), "credentials.json")
	res := berth(t, map[string]string{"BERTH_ADDR": m.URL, "BERTH_CONFIG": path}, "", "login", "-e", "a@b.c", "-p", "wrong")
	if res.code != 1 || !strings.Contains(res.stderr, "Wrong email or password (401)") {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("credentials file exists after a failed login (%v)", err)
	}
}

func TestLogoutRemovesCredentials(t *testing.T) {
	m := newFakeManager(t, loginHandler(t, "pw1"))
	path := filepath.Join(t.TempDir(), "credentials.json")
	env := map[string]string{"BERTH_ADDR": m.URL, "BERTH_CONFIG": path}
	if res := berth(t, env, "", "login", "-e", "a@b.c", "-p", "pw1"); res.code != 0 {
		t.Fatalf("login: %q", res.stderr)
	}
	res := berth(t, env, "", "logout")
	if res.code != 0 {
		t.Fatalf("logout exit %d: %q", res.code, res.stderr)
	}
	if got := m.last(t).Header.Get("Authorization"); got != "Bearer tok-a@b.c" {
		t.Fatalf("logout sent Authorization %q", got)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("credentials file still there (%v)", err)
	}
}

func TestCredentialsComeFromTheEnvironmentFirst(t *testing.T) {
	m := newFakeManager(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, api.WhoAmI{})
	})
	saved := filepath.Join(t.TempDir(), "credentials.json")
	if err := writeCredentials(saved, credentials{Addr: "http://127.0.0.1:1", Token: "from-file"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, r *http.Request)
	}{
		{
			name: "token",
			env:  map[string]string{"BERTH_TOKEN": "from-env"},
			check: func(t *testing.T, r *http.Request) {
				if got := r.Header.Get("Authorization"); got != "Bearer from-env" {
					t.Fatalf("Authorization %q", got)
				}
			},
		},
		{
			name: "keypair",
			env:  map[string]string{"BERTH_ACCESS_KEY": "AKTEST0123456789ABCD", "BERTH_SECRET_KEY": "s3cret"},
			check: func(t *testing.T, r *http.Request) {
				ak, sig, err := sign.ParseHeader(r.Header.Get("Authorization"))
				if err != nil {
					t.Fatal(err)
				}
				c, err := sign.CanonicalString(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get(sign.DateHeader), r.Header.Get(sign.ContentHeader))
				if err != nil {
					t.Fatal(err)
				}
				if r.Header.Get(sign.ContentHeader) != sign.EmptyContentHash {
					t.Fatalf("%s %q on a request without a body", sign.ContentHeader, r.Header.Get(sign.ContentHeader))
				}
				if ak != "AKTEST0123456789ABCD" || !sign.Verify("s3cret", c, sig) {
					t.Fatal("request not signed with the keypair from the environment")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"BERTH_ADDR": m.URL, "BERTH_CONFIG": saved}
			for k, v := range tt.env {
				env[k] = v
			}
			if res := berth(t, env, "", "whoami"); res.code != 0 {
				t.Fatalf("exit %d: %q", res.code, res.stderr)
			}
			tt.check(t, m.last(t))
		})
	}
}

func TestCredentialsPathPrecedence(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"BERTH_CONFIG", map[string]string{"BERTH_CONFIG": "/x/c.json", "XDG_CONFIG_HOME": "/xdg", "HOME": "/h"}, "/x/c.json"},
		{"XDG_CONFIG_HOME", map[string]string{"XDG_CONFIG_HOME": "/xdg", "HOME": "/h"}, "/xdg/berth/credentials.json"},
		{"HOME", map[string]string{"HOME": "/h"}, "/h/.config/berth/credentials.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := credentialsPath(func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSingleObjectsAndRaftPeers(t *testing.T) {
	m := newFakeManager(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/operator/raft":
			writeJSON(w, http.StatusOK, api.RaftConfiguration{Leader: "m1", Servers: []api.Member{
				{ID: "m1", Address: "http://h1:8080", RaftAddr: "h1:8300", State: api.MemberLeader, Voter: true},
				{ID: "m2", Address: "http://h2:8080", RaftAddr: "h2:8300", State: api.MemberFollower, Voter: true},
			}})
		case "/v1/operator/raft/peers/m2":
			if r.Method != http.MethodDelete {
				t.Errorf("method %s", r.Method)
			}
			w.WriteHeader(http.StatusNoContent)
		case "/v1/users/a@b.c":
			writeJSON(w, http.StatusOK, api.User{Email: "a@b.c", Username: "a", Keypairs: []string{"AK1", "AK2"}})
		case "/v1/info":
			info := api.Info{Version: "1.2.3", Cluster: api.ClusterInfo{Leader: "m1", Members: []api.Member{{ID: "m1", State: "leader"}}}}
			info.Agents.Alive = 2
			writeJSON(w, http.StatusOK, info)
		default:
			http.NotFound(w, r)
		}
	})
	env := map[string]string{"BERTH_ADDR": m.URL, "BERTH_TOKEN": "tok"}
	tests := []struct {
		name     string
		args     []string
		contains []string
	}{
		{"list peers", []string{"operator", "raft", "list-peers"}, []string{
			"ID  ADDRESS         RAFT_ADDRESS  STATE     VOTER  LEADER\n",
			"m1  http://h1:8080  h1:8300       leader    true   true\n",
			"m2  http://h2:8080  h2:8300       follower  true   false\n",
		}},
		{"remove peer", []string{"operator", "raft", "remove-peer", "m2"}, []string{"Removed peer m2\n"}},
		{"user get", []string{"user", "get", "a@b.c"}, []string{"email:", "a@b.c\n", "keypairs:", "AK1,AK2\n"}},
		{"info", []string{"info"}, []string{"version:", "1.2.3\n", "members:", "m1=leader\n", "agents_alive:", "2\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := berth(t, env, "", tt.args...)
			if res.code != 0 {
				t.Fatalf("exit %d: %q", res.code, res.stderr)
			}
			for _, s := range tt.contains {
				if !strings.Contains(res.stdout, s) {
					t.Fatalf("stdout %q lacks %q", res.stdout, s)
				}
			}
		})
	}
}

func TestUsageErrorsExitNonZero(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown output format", []string{"info", "-o", "xml"}, `output format "xml"`},
		{"missing argument", []string{"user", "get"}, "accepts 1 arg"},
		{"bad address", []string{"info", "--addr", "localhost"}, "http:// or https://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := berth(t, map[string]string{"BERTH_TOKEN": "t"}, "", tt.args...)
			if res.code != 1 || !strings.Contains(res.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q, want mention of %q", res.code, res.stderr, tt.want)
			}
		})
	}
}
