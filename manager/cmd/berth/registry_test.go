package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-cluster/berth/shared/api"
)

// recorder answers every request with answer and keeps what was sent.
type recorder struct {
	*fakeManager
	mu    sync.Mutex
	calls []string // "METHOD PATH?QUERY BODY"
}

func newRecorder(t *testing.T, status int, answer any) *recorder {
	r := &recorder{}
	r.fakeManager = newFakeManager(t, func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.calls = append(r.calls, strings.TrimSpace(req.Method+" "+req.URL.RequestURI()+" "+string(b)))
		r.mu.Unlock()
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, answer)
	})
	return r
}

func (r *recorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return ""
	}
	return r.calls[len(r.calls)-1]
}

func TestRegistryCommandsSendWhatIsGivenAndThePasswordOnlyFromStdin(t *testing.T) {
	reg := api.Registry{Name: "lab", URL: "https://r.example.com", Username: "robot", PasswordSet: true}
	m := newRecorder(t, http.StatusOK, reg)
	env := map[string]string{"BERTH_ADDR": m.URL, "BERTH_TOKEN": "tok"}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"add with a password from stdin", "s3cret\n", []string{"registry", "add", "lab", "--url", "https://r.example.com", "--username", "robot", "--password-stdin"},
			`POST /v1/registries {"name":"lab","url":"https://r.example.com","username":"robot","password":"s3cret"}`},
		{"add over plain HTTP", "", []string{"registry", "add", "local", "--url", "http://127.0.0.1:5000", "--insecure-http"},
			`POST /v1/registries {"name":"local","url":"http://127.0.0.1:5000","insecure_http":true}`},
		{"add with a CA", "", []string{"registry", "add", "lab", "--url", "https://r.example.com", "--ca-cert", ca},
			`POST /v1/registries {"name":"lab","url":"https://r.example.com","ca_pem":"-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"}`},
		{"update the username only", "", []string{"registry", "update", "lab", "--username", "other"},
			`PATCH /v1/registries/lab {"username":"other"}`},
		{"remove the password", "", []string{"registry", "update", "lab", "--no-password"},
			`PATCH /v1/registries/lab {"password":""}`},
		{"pull on two agents", "", []string{"image", "pull", "r.example.com/lab/py:3", "--agent", "a1", "--agent", "a2"},
			`POST /v1/images/pull {"image":"r.example.com/lab/py:3","agents":["a1","a2"]}`},
		{"list what the policy allows", "", []string{"image", "list", "--allowed"}, `GET /v1/images?allowed=true`},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := berth(t, env, c.stdin, c.args...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			if got := m.last(); got != c.want {
				t.Fatalf("sent %s\nwant %s", got, c.want)
			}
			if strings.Contains(res.stdout, "s3cret") {
				t.Fatalf("the password is printed: %s", res.stdout)
			}
		})
	}
	// No password flag takes a value: it cannot be put on the command line.
	if res := berth(t, env, "", "registry", "add", "lab", "--url", "https://r.example.com", "--password", "s3cret"); res.code == 0 {
		t.Fatal("a password was taken from the command line")
	}
	if res := berth(t, env, "", "registry", "add", "lab", "--url", "https://r.example.com", "--username", "u", "--password-stdin"); res.code == 0 ||
		!strings.Contains(res.stderr, "standard input ended") {
		t.Fatalf("an empty stdin: %+v", res)
	}
	if res := berth(t, env, "x\n", "registry", "update", "lab", "--password-stdin", "--no-password"); res.code == 0 {
		t.Fatal("--password-stdin with --no-password was taken")
	}
	res := berth(t, env, "", "registry", "list", "-o", "json")
	if res.code != 0 || strings.Contains(res.stdout, `"password"`) {
		t.Fatalf("list: %+v", res)
	}
}

func TestImageRmNamesTheAgentAndKeepsTheReferencesSlashes(t *testing.T) {
	m := newRecorder(t, http.StatusNoContent, nil)
	env := map[string]string{"BERTH_ADDR": m.URL, "BERTH_TOKEN": "tok"}
	res := berth(t, env, "", "image", "rm", "127.0.0.1:5000/lab/base:1", "--agent", "a1")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if got := m.last(); got != "DELETE /v1/images/127.0.0.1:5000/lab/base:1?agent=a1" {
		t.Fatalf("sent %s", got)
	}
	if res := berth(t, env, "", "image", "rm", "x:1"); res.code == 0 || !strings.Contains(res.stderr, "--agent is required") {
		t.Fatalf("rm without --agent: %+v", res)
	}
}
