package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

var testSession = api.Session{
	ID: "s-abcdefghijkl", Name: "nb", Owner: "ada@example.com", AccessKey: "AKAAAABBBBCCCCDDDDEE", Image: "berth/base:latest",
	Type: api.SessionBatch, Status: api.SessionRunning, StatusHistory: []api.StatusChange{
		{Status: api.SessionPending, At: adminCreated, Reason: "created"}, {Status: api.SessionRunning, At: adminCreated}},
	Requested: slots.Slots{slots.CPU: 500, slots.Mem: 512 << 20}, Occupied: slots.Slots{slots.CPU: 1000, slots.Mem: 1 << 30},
	Containers: []api.SessionContainer{{Agent: "agent-a", Status: "running"}, {Agent: "agent-b", Status: "running"}},
	CreatedAt:  adminCreated, StartedAt: &adminCreated,
}

func TestSessionCommandsSendExactlyTheirRequest(t *testing.T) {
	id := testSession.ID
	terminating := testSession
	terminating.Status = api.SessionTerminating
	answers := map[string]adminAnswer{
		"POST /v1/sessions":           {http.StatusCreated, testSession},
		"GET /v1/sessions":            {http.StatusOK, api.List[api.Session]{Items: []api.Session{testSession}}},
		"GET /v1/sessions/" + id:      {http.StatusOK, testSession},
		"DELETE /v1/sessions/" + id:   {http.StatusAccepted, terminating},
		"GET /v1/export/sessions.csv": {http.StatusOK, "x"},
	}
	tests := []struct {
		name       string
		args       []string
		want       adminCall
		wantStdout []string
	}{
		{
			name: "start with every flag and a command after --",
			args: []string{"session", "start", "--image", "berth/base:latest", "--type", "batch", "--cpu", "0.5", "--mem", "512MiB",
				"--cluster-size", "2", "--env", "A=1", "--env", "B=x=y", "--name", "nb", "--", "sh", "-c", "exit 3"},
			want: adminCall{"POST", "/v1/sessions", "", `{"name":"nb","image":"berth/base:latest","type":"batch",` +
				`"command":["sh","-c","exit 3"],"resources":{"cpu":0.5,"cuda.device":0,"cuda.shares":0,"mem":536870912},` +
				`"cluster_size":2,"env":{"A":"1","B":"x=y"}}`},
			wantStdout: []string{"id:", id, "agents:", "agent-a:running,agent-b:running", "requested:", "cpu=0.5 mem=512MiB",
				"occupied:", "cpu=1 mem=1GiB", "history:", "PENDING@2025-05-06T07:08:09Z(created) RUNNING@2025-05-06T07:08:09Z"},
		},
		{
			name:       "start with the defaults: interactive, 1 core, 1 GiB",
			args:       []string{"session", "start", "--image", "img", "--fgpu", "0.5"},
			want:       adminCall{"POST", "/v1/sessions", "", `{"image":"img","type":"interactive","resources":{"cpu":1,"cuda.device":0,"cuda.shares":0.5,"mem":1073741824}}`},
			wantStdout: []string{id},
		},
		{
			name:       "start as root",
			args:       []string{"session", "start", "--image", "img", "--root"},
			want:       adminCall{"POST", "/v1/sessions", "", `{"image":"img","type":"interactive","resources":{"cpu":1,"cuda.device":0,"cuda.shares":0,"mem":1073741824},"run_as_root":true}`},
			wantStdout: []string{id, "run_as_root:"},
		},
		{
			name:       "list with filters",
			args:       []string{"session", "list", "--status", "running", "--owner", "bob@example.com", "--all", "--limit", "3"},
			want:       adminCall{"GET", "/v1/sessions", "all=true&limit=3&owner=bob%40example.com&status=RUNNING", ""},
			wantStdout: []string{"ID", "STATUS", id, "RUNNING", "cpu=0.5 mem=512MiB"},
		},
		{
			name:       "get",
			args:       []string{"session", "get", id},
			want:       adminCall{"GET", "/v1/sessions/" + id, "", ""},
			wantStdout: []string{"status:", "RUNNING"},
		},
		{
			name:       "terminate",
			args:       []string{"session", "terminate", id},
			want:       adminCall{"DELETE", "/v1/sessions/" + id, "", ""},
			wantStdout: []string{"status:", "TERMINATING"},
		},
		{
			name: "export sessions",
			args: []string{"export", "sessions", "--status", "terminated", "--filename", "s"},
			want: adminCall{"GET", "/v1/export/sessions.csv", "filename=s&status=TERMINATED", ""},
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
				t.Errorf("sent %+v\nwant %+v", got, tt.want)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(res.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, res.stdout)
				}
			}
		})
	}
}

func TestSessionStartReportsEveryBadFlagAndSendsNothing(t *testing.T) {
	f := newAdminFake(t, nil)
	res := berth(t, f.env(), "", "session", "start", "--image", "img", "--cpu", "x", "--mem", "lots", "--env", "NOVALUE",
		"--port", "web", "--port", "db:x/tcp", "--port", "db:5432/udp")
	if res.code != 1 || f.count() != 0 {
		t.Fatalf("exit %d with %d requests, want 1 and none", res.code, f.count())
	}
	for _, w := range []string{"--cpu: cpu must be a number", "--mem:", `--env "NOVALUE" must be NAME=VALUE`,
		`--port "web" must be`, `--port "db:x/tcp" must be`, `--port "db:5432/udp" must be`} {
		if !strings.Contains(res.stderr, w) {
			t.Errorf("stderr %q lacks %q", res.stderr, w)
		}
	}
}

// exec prints the command's output on the matching streams as it comes
// (a streamed exec) and exits with its code, as the command itself would;
// -o json asks for the whole result at once.
func TestSessionExecExitsWithTheCommandsCode(t *testing.T) {
	var body string
	m := newFakeManager(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		if !strings.Contains(body, `"stream":true`) {
			writeJSON(w, http.StatusOK, api.ExecResult{ExitCode: 3, Stdout: "out\n", Stderr: "err\n"})
			return
		}
		w.Header().Set("Content-Type", api.ExecStreamContentType)
		code := 3
		for _, ev := range []api.ExecEvent{{Stream: "stdout", Data: []byte("out\n")}, {Stream: "stderr", Data: []byte("err\n")}, {ExitCode: &code}} {
			_ = json.NewEncoder(w).Encode(ev)
		}
	})
	env := map[string]string{"BERTH_ADDR": m.URL, "BERTH_TOKEN": "tok"}
	res := berth(t, env, "", "session", "exec", testSession.ID, "--timeout", "9", "--", "sh", "-c", "echo out; exit 3")
	if res.code != 3 || res.stdout != "out\n" || res.stderr != "err\n" {
		t.Fatalf("exit %d stdout %q stderr %q, want 3, the command's streams and nothing else", res.code, res.stdout, res.stderr)
	}
	if r := m.last(t); r.Method != http.MethodPost || r.URL.Path != "/v1/sessions/"+testSession.ID+"/exec" ||
		body != `{"command":["sh","-c","echo out; exit 3"],"timeout_s":9,"stream":true}` {
		t.Fatalf("sent %s %s %s", r.Method, r.URL.Path, body)
	}
	res = berth(t, env, "", "session", "exec", testSession.ID, "-o", "json", "--", "false")
	var got api.ExecResult
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != 3 || got.Stdout != "out\n" {
		t.Fatalf("json: exit %d, %v, %s", res.code, err, res.stdout)
	}
}

func TestSessionLogsPrintsTheText(t *testing.T) {
	m := newFakeManager(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "hello\nworld\n")
	})
	res := berth(t, map[string]string{"BERTH_ADDR": m.URL, "BERTH_TOKEN": "tok"}, "", "session", "logs", testSession.ID)
	if res.code != 0 || res.stdout != "hello\nworld\n" {
		t.Fatalf("exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	if r := m.last(t); r.URL.Path != "/v1/sessions/"+testSession.ID+"/logs" {
		t.Fatalf("asked for %s", r.URL.Path)
	}
}

func TestParsePortFlag(t *testing.T) {
	for in, want := range map[string]api.SessionPort{
		"notebook:8888": {Name: "notebook", Port: 8888, Protocol: "http"},
		"ssh:22/tcp":    {Name: "ssh", Port: 22, Protocol: "tcp"},
		"web:80/http":   {Name: "web", Port: 80, Protocol: "http"},
	} {
		if got, ok := parsePortFlag(in); !ok || got != want {
			t.Errorf("parsePortFlag(%q) = %+v, %v", in, got, ok)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2025, 1, 2, 15, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2025-01-02T14:04:05Z": time.Date(2025, 1, 2, 14, 4, 5, 0, time.UTC),
		"10m":                  now.Add(-10 * time.Minute),
		"1h30m":                now.Add(-90 * time.Minute),
	} {
		if got, err := parseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-5m", "2025-01-02"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}
