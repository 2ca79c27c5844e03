package httpapi_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"

	"github.com/berth-cluster/berth/manager/secrets"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/registrytest"
	"github.com/berth-cluster/berth/shared/tlsgen"
)

// Registries: who may see and change them, what is refused, and where a
// password may and may not appear. They run against a real registry
// (Debian's docker-registry): a registry object is probed when written.

// lockedBuffer collects a manager's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newBox(t *testing.T) *secrets.Box {
	t.Helper()
	key := make([]byte, secrets.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	box, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return box
}

// withSecrets gives the manager a secrets key and sends every log line
// (debug included, Raft's too) to log.
func withSecrets(box *secrets.Box, log *lockedBuffer) func(*server.Config) {
	return func(cfg *server.Config) {
		cfg.Secrets = box
		if log != nil {
			cfg.Log = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
			cfg.RaftLog, cfg.RaftLogLevel = log, "debug"
		}
	}
}

func TestRegistriesAreReadByAdminsAndChangedOnlyBySuperadmins(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	s := testcluster.StartDev(t, withSecrets(newBox(t), nil)).Servers[0]
	super := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	for _, u := range []struct{ email, role string }{{"adm@example.com", api.RoleAdmin}, {"mon@example.com", api.RoleMonitor}, {"user@example.com", api.RoleUser}} {
		createUser(t, s, super, u.email, strings.Split(u.email, "@")[0], u.role)
	}
	admin := testcluster.Login(t, s, "adm@example.com", testPassword)
	monitor := testcluster.Login(t, s, "mon@example.com", testPassword)
	user := testcluster.Login(t, s, "user@example.com", testPassword)
	do := func(token, method, path string, body any) *testcluster.Response {
		return testcluster.Do(t, method, testcluster.URL(s)+path, token, body)
	}
	body := map[string]any{"name": "lab", "url": "http://" + reg.Host, "insecure_http": true}

	// Attacks: an admin, a monitor and a user try to add, change and
	// remove a registry (which would send every pull of its host, with
	// its credentials, where they choose).
	for _, who := range []struct {
		name, token string
	}{{"admin", admin}, {"monitor", monitor}, {"user", user}} {
		p := wantProblem(t, do(who.token, http.MethodPost, "/v1/registries", body), http.StatusForbidden, api.ProblemForbidden)
		wantDetail(t, p, "requires the superadmin role")
	}
	wantStatus(t, do(super, http.MethodPost, "/v1/registries", body), http.StatusCreated)
	for _, who := range []string{admin, monitor, user} {
		wantStatus(t, do(who, http.MethodPatch, "/v1/registries/lab", map[string]any{"username": "x"}), http.StatusForbidden)
		wantStatus(t, do(who, http.MethodDelete, "/v1/registries/lab", nil), http.StatusForbidden)
	}
	// Admins and monitors read; a user does not even learn it exists.
	for _, who := range []string{admin, monitor, super} {
		var l api.List[api.Registry]
		r := do(who, http.MethodGet, "/v1/registries", nil)
		wantStatus(t, r, http.StatusOK)
		r.JSON(t, &l)
		if len(l.Items) != 1 || l.Items[0].Name != "lab" || l.Items[0].Host != reg.Host || !l.Items[0].InsecureHTTP {
			t.Fatalf("registries %+v", l.Items)
		}
		wantStatus(t, do(who, http.MethodGet, "/v1/registries/lab", nil), http.StatusOK)
	}
	wantStatus(t, do(user, http.MethodGet, "/v1/registries", nil), http.StatusForbidden)
	wantStatus(t, do(user, http.MethodGet, "/v1/registries/lab", nil), http.StatusForbidden)
	// Still as the superadmin made it.
	var got api.Registry
	do(super, http.MethodGet, "/v1/registries/lab", nil).JSON(t, &got)
	if got.Username != "" {
		t.Fatalf("changed by someone who may not: %+v", got)
	}
	wantStatus(t, do(super, http.MethodPatch, "/v1/registries/lab", map[string]any{"username": "robot"}), http.StatusOK)
	wantStatus(t, do(super, http.MethodDelete, "/v1/registries/lab", nil), http.StatusNoContent)
	wantStatus(t, do(super, http.MethodGet, "/v1/registries/lab", nil), http.StatusNotFound)
	wantStatus(t, do(super, http.MethodDelete, "/v1/registries/lab", nil), http.StatusNotFound)
}

// The password goes in and never comes out: not in an answer, not in a log
// line, not in the replicated state or a backup of it. The agents that
// pull from the registry get it, and no other.
func TestARegistryPasswordIsNeverShownLoggedOrKeptInTheClear(t *testing.T) {
	const password = "Pw-registry-9f3kq-unique"
	reg := registrytest.Start(t, registrytest.Options{TLS: true, Users: map[string]string{"robot": password}})
	reg.Push(registrytest.WithData(t, empty.Image, 1<<10, 1, 31), "lab/x:1")
	var log lockedBuffer
	box := newBox(t)
	e := newSessionEnv(t, "127.0.0.1:1", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`, withSecrets(box, &log))
	do := func(method, path string, body any) *testcluster.Response {
		return testcluster.Do(t, method, e.url(path), e.admin, body)
	}
	r := do(http.MethodPost, "/v1/registries", map[string]any{"name": "lab", "url": "https://" + reg.Host,
		"username": "robot", "password": password, "ca_pem": reg.CAPEM})
	wantStatus(t, r, http.StatusCreated)
	answers := []*testcluster.Response{r,
		do(http.MethodGet, "/v1/registries/lab", nil),
		do(http.MethodGet, "/v1/registries", nil),
		do(http.MethodPatch, "/v1/registries/lab", map[string]any{"password": password}),
	}
	for _, a := range answers {
		if bytes.Contains(a.Body, []byte(password)) || bytes.Contains(a.Body, []byte(`"password"`)) {
			t.Fatalf("an answer shows the password: %s", a.Body)
		}
	}
	var view api.Registry
	answers[1].JSON(t, &view)
	if !view.PasswordSet || view.Username != "robot" {
		t.Fatalf("view %+v", view)
	}
	// The replicated record holds sealed bytes that open with the key
	// (so this looks at the right place), never the clear text.
	rec, err := e.s.State().Read().Registry("lab")
	if err != nil || rec == nil {
		t.Fatal(rec, err)
	}
	if bytes.Contains(rec.Password, []byte(password)) {
		t.Fatal("the replicated record holds the password in the clear")
	}
	if plain, err := box.Open(rec.Password, "registry/lab"); err != nil || string(plain) != password {
		t.Fatalf("the sealed password does not open: %q, %v", plain, err)
	}
	snap := testcluster.Do(t, http.MethodPost, e.url("/v1/operator/snapshot"), e.admin, nil)
	wantStatus(t, snap, http.StatusOK)
	if !bytes.Contains(snap.Body, []byte(`"registries"`)) && !bytes.Contains(snap.Body, []byte("robot")) {
		t.Fatal("the snapshot does not hold the registry at all: this test would prove nothing")
	}
	if bytes.Contains(snap.Body, []byte(password)) {
		t.Fatal("a snapshot (the cluster backup) holds the password in the clear")
	}

	// An agent whose container pulls from the registry gets the password
	// in its desired state; the control that the log check below could
	// see it if it were written.
	s := e.mustCreate(e.admin, oneCPU(map[string]any{"image": reg.Host + "/lab/x:1"}))
	e.place(s.ID, 1)
	ds := e.desired()
	if len(ds.Registries) != 1 || ds.Registries[0].Password != password || ds.Registries[0].Host != reg.Host || ds.Registries[0].CAPEM != reg.CAPEM {
		t.Fatalf("desired registries %+v, want lab's credentials", ds.Registries)
	}
	// A rogue or merely other agent gets nothing of it: its desired state
	// names no registry.
	other := register(t, e.s, registration("127.0.0.1:2"))
	r = agentCall(t, e.s, http.MethodGet, "/v1/agents/"+other.ID+"/desired", "", other.Secret, nil)
	wantStatus(t, r, http.StatusOK)
	if bytes.Contains(r.Body, []byte(password)) || bytes.Contains(r.Body, []byte("registries")) {
		t.Fatalf("another agent's desired state carries registry credentials: %s", r.Body)
	}
	// Nor may it read the first agent's desired state with its secret.
	r = agentCall(t, e.s, http.MethodGet, "/v1/agents/"+e.agent.ID+"/desired", "", other.Secret, nil)
	wantStatus(t, r, http.StatusUnauthorized)
	if strings.Contains(log.String(), password) {
		t.Fatal("the manager's log holds the password")
	}
	if !strings.Contains(log.String(), "registry created") {
		t.Fatal("the log was not captured: this test would prove nothing")
	}
}

func TestWithoutASecretsKeyARegistryPasswordIsRefused(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	s := testcluster.StartDev(t).Servers[0]
	super := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	r := testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/registries", super, map[string]any{"name": "lab",
		"url": "http://" + reg.Host, "insecure_http": true, "username": "u", "password": "pw"})
	p := wantProblem(t, r, http.StatusConflict, api.ProblemConflict)
	wantFields(t, p, map[string][]string{"password": {"a registry password cannot be stored: this manager has no secrets key: start every manager with the same -secrets-key-file (64 hex digits, made with `openssl rand -hex 32`, mode 0600); or add the registry without a password"}})
	wantStatus(t, testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/registries/lab", super, nil), http.StatusNotFound)
	// Without a password it needs no key.
	r = testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/registries", super, map[string]any{"name": "lab",
		"url": "http://" + reg.Host, "insecure_http": true, "username": "u"})
	wantStatus(t, r, http.StatusCreated)
}

func TestBadRegistriesAreRefusedWithTheirReasons(t *testing.T) {
	plain := registrytest.Start(t, registrytest.Options{})
	secure := registrytest.Start(t, registrytest.Options{TLS: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	other, err := tlsgen.NewCA(time.Now(), "not the registry's CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s := testcluster.StartDev(t, withSecrets(newBox(t), nil)).Servers[0]
	super := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	post := func(body any) *testcluster.Response {
		return testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/registries", super, body)
	}
	wantStatus(t, post(map[string]any{"name": "lab", "url": "http://" + plain.Host, "insecure_http": true}), http.StatusCreated)
	for _, c := range []struct {
		name   string
		body   map[string]any
		status int
		fields map[string][]string
	}{
		{"nothing", map[string]any{}, 400, map[string][]string{
			"name": {"name is required"}, "url": {"url is required: https://HOST[:PORT] (or http://HOST[:PORT] with insecure_http)"}}},
		{"every field wrong at once", map[string]any{"name": "a/b", "url": "ftp://x", "password": "p", "ca_pem": "not PEM"}, 400, map[string][]string{
			"name":     {"name may contain only letters, digits, '.', '_' and '-'"},
			"url":      {`url "ftp://x" must be https://HOST[:PORT], or http://HOST[:PORT] with insecure_http`},
			"username": {"a password needs a username"},
			"ca_pem":   {"ca_pem holds no PEM certificate (paste the registry's CA certificate, -----BEGIN CERTIFICATE----- and all)"}}},
		{"credentials in the url", map[string]any{"name": "x", "url": "https://u:p@" + secure.Host}, 400, map[string][]string{
			"url": {"url must not hold credentials; send them as username and password"}}},
		{"a path", map[string]any{"name": "x", "url": "https://" + secure.Host + "/v2/lab"}, 400, map[string][]string{
			"url": {"url must be the registry's root, https://HOST[:PORT], with no path: references name the repositories"}}},
		{"plain http without saying so", map[string]any{"name": "x", "url": "http://" + plain.Host}, 400, map[string][]string{
			"url": {"url is plain http://: set insecure_http to true to pull from it without TLS (anyone on the path can read and change what is pulled)"}}},
		{"insecure_http on https", map[string]any{"name": "x", "url": "https://" + secure.Host, "insecure_http": true}, 400, map[string][]string{
			"insecure_http": {"insecure_http is for http:// URLs; this url is https://"}}},
		{"a password read back", map[string]any{"name": "x", "url": "https://" + secure.Host, "password_set": true}, 400, map[string][]string{
			"password_set": {`unknown field "password_set"`}}},
		{"unreachable", map[string]any{"name": "x", "url": "http://" + closed, "insecure_http": true}, 422, map[string][]string{
			"url": {fmt.Sprintf("the registry does not answer as its settings say: registry x (%s) could not be reached (Get \"http://%s/v2/\": dial tcp %s: connect: connection refused)", closed, closed, closed)}}},
		{"the CA of another authority", map[string]any{"name": "x", "url": "https://" + secure.Host, "ca_pem": string(other.CertPEM)}, 422, nil},
		{"the same name", map[string]any{"name": "lab", "url": "https://" + secure.Host, "ca_pem": secure.CAPEM}, 409, map[string][]string{
			"name": {"a registry named lab already exists"}}},
		{"the same host", map[string]any{"name": "lab2", "url": "http://" + plain.Host + "/", "insecure_http": true}, 409, map[string][]string{
			"url": {"registry lab already serves host " + plain.Host + "; change or remove it instead"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := post(c.body)
			typ := api.ProblemValidation
			if c.status == 409 {
				typ = api.ProblemConflict
			}
			p := wantProblem(t, r, c.status, typ)
			if c.fields != nil {
				wantFields(t, p, c.fields)
			} else if !strings.Contains(p.Detail, "TLS failed") || !strings.Contains(p.Detail, "ca_pem") {
				t.Fatalf("detail %q", p.Detail)
			}
		})
	}
	// A good TLS registry with its CA is taken; nothing else was.
	wantStatus(t, post(map[string]any{"name": "secure", "url": "https://" + secure.Host, "ca_pem": secure.CAPEM}), http.StatusCreated)
	var l api.List[api.Registry]
	testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/registries", super, nil).JSON(t, &l)
	if len(l.Items) != 2 {
		t.Fatalf("registries %+v", l.Items)
	}
	// A PATCH is checked as the registry it leaves.
	r := testcluster.Do(t, http.MethodPatch, testcluster.URL(s)+"/v1/registries/secure", super, map[string]any{"ca_pem": ""})
	wantProblem(t, r, http.StatusUnprocessableEntity, api.ProblemValidation)
	r = testcluster.Do(t, http.MethodPatch, testcluster.URL(s)+"/v1/registries/secure", super, map[string]any{"name": "renamed"})
	wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation)
	r = testcluster.Do(t, http.MethodPatch, testcluster.URL(s)+"/v1/registries/secure", super, map[string]any{})
	wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation)
}
