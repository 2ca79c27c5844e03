package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/shared/api"
)

const goodToken = "berth-agent-0123456789abcdefghijklmnop"

// The agent refuses, before it touches anything, a join token that is
// short or the documentation's example, wherever it comes from; a token
// given twice is refused rather than one silently winning.
func TestAgentRefusesAWeakOrAmbiguousTokenAtStart(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	short := file("short", "0123456789\n", 0o600)
	example := file("example", "CHANGE-ME-agent-token\n", 0o600)
	open := file("open", goodToken+"\n", 0o644)
	good := file("good", goodToken+"\n", 0o600)
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"10-byte token in the environment", nil, map[string]string{"BERTH_AGENT_TOKEN": "0123456789"}, "the join token is 10 bytes, shorter than 16"},
		{"10-byte token in a file", []string{"-token-file", short}, nil, "the join token is 10 bytes, shorter than 16"},
		{"10-byte token on the command line", []string{"-token", "0123456789"}, nil, "the join token is 10 bytes, shorter than 16"},
		{"the deploy example in the environment", nil, map[string]string{"BERTH_AGENT_TOKEN": "CHANGE-ME-agent-token"}, `the example value "CHANGE-ME-agent-token"`},
		{"the deploy example in a file", []string{"-token-file", example}, nil, `the example value "CHANGE-ME-agent-token"`},
		{"a token file every account can read", []string{"-token-file", open}, nil, "can be read by every local account (mode 0644): chmod 600"},
		{"two ways at once", []string{"-token-file", good}, map[string]string{"BERTH_AGENT_TOKEN": goodToken}, "the token is given more than once (-token-file, BERTH_AGENT_TOKEN)"},
		{"no token", nil, nil, "no join token: give -token-file FILE or BERTH_AGENT_TOKEN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"-manager", "http://127.0.0.1:1", "-state-dir", t.TempDir(),
				"-containerd", filepath.Join(t.TempDir(), "none.sock")}, c.args...)
			var out bytes.Buffer
			err := run(context.Background(), args, func(k string) string { return c.env[k] }, &out, &out)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want it to say %q", err, c.want)
			}
		})
	}
	// Control: a good token from the file gets past the check, as far as
	// containerd, which is not there.
	var out bytes.Buffer
	err := run(context.Background(), []string{"-manager", "http://127.0.0.1:1", "-state-dir", t.TempDir(), "-token-file", good,
		"-containerd", filepath.Join(t.TempDir(), "none.sock")}, func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "connect to containerd at") {
		t.Fatalf("a good token: %v, want to reach the containerd connection", err)
	}
}

func TestReadTokenWarnsAboutTheCommandLine(t *testing.T) {
	for _, c := range []struct {
		args     []string
		env      string
		wantWarn bool
	}{
		{[]string{"-token", goodToken}, "", true},
		{nil, goodToken, false},
	} {
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.String("token", "", "")
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		got, err := readToken(fs, fs.Lookup("token").Value.String(), "", func(k string) string {
			if k == agentTokenEnv {
				return c.env
			}
			return ""
		}, log)
		if err != nil || got != goodToken {
			t.Fatalf("%v: %q, %v", c.args, got, err)
		}
		if warned := strings.Contains(logs.String(), "visible to every local account"); warned != c.wantWarn {
			t.Errorf("%v: warned %v, want %v (%s)", c.args, warned, c.wantWarn, logs.String())
		}
	}
}

// fakeManager answers an agent's registration, heartbeats and desired
// state, and records the join token each registration carried.
type fakeManager struct {
	mu     sync.Mutex
	tokens []string
}

func (m *fakeManager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(r.URL.Path, "/register"):
		m.mu.Lock()
		m.tokens = append(m.tokens, r.Header.Get(api.AgentTokenHeader))
		m.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(api.AgentRegistered{ID: "agent-fake00000000", Secret: strings.Repeat("s", 40)})
	case strings.HasSuffix(r.URL.Path, "/heartbeat"):
		_ = json.NewEncoder(w).Encode(api.HeartbeatAnswer{Status: api.AgentAlive, DesiredIndex: 1})
	case strings.HasSuffix(r.URL.Path, "/desired"):
		if r.URL.Query().Get("index") != "" {
			select { // a blocking query that never sees a change
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		}
		_ = json.NewEncoder(w).Encode(api.DesiredState{Index: 1, Containers: []api.DesiredContainer{}})
	default:
		http.NotFound(w, r)
	}
}

func (m *fakeManager) registeredWith() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.tokens...)
}

// The join token handed to the agent through BERTH_AGENT_TOKEN or
// -token-file reaches the managers but never the process's command line,
// which every local account reads (ps, /proc/PID/cmdline). The control row
// gives it with -token and finds it there: the check can fail.
func TestAgentTokenIsNotInTheProcessCommandLine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts a private containerd")
	}
	socket := testenv.Containerd(t)
	ns := testenv.Namespace(t)
	bin := filepath.Join(t.TempDir(), "berth-agent")
	if out, err := exec.Command("go", "build", "-tags", "no_dynamic_plugins", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	tokenFile := filepath.Join(t.TempDir(), "agent-token")
	if err := os.WriteFile(tokenFile, []byte(goodToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		args, env  []string
		inCmdline  bool
		mustWarnOf string
	}{
		{name: "BERTH_AGENT_TOKEN", env: []string{"BERTH_AGENT_TOKEN=" + goodToken}},
		{name: "-token-file", args: []string{"-token-file", tokenFile}},
		{name: "control: -token on the command line", args: []string{"-token", goodToken}, inCmdline: true, mustWarnOf: "visible to every local account"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mgr := &fakeManager{}
			srv := httptest.NewServer(mgr)
			t.Cleanup(srv.Close)
			args := append([]string{"-manager", srv.URL, "-state-dir", t.TempDir(), "-containerd", socket, "-containerd-namespace", ns,
				"-http-addr", "127.0.0.1:0", "-reserved-cpu", "0", "-reserved-mem", "0", "-heartbeat", "200ms"}, c.args...)
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), c.env...)
			var logs syncBuffer
			cmd.Stdout, cmd.Stderr = &logs, &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(20 * time.Second):
					_ = cmd.Process.Kill()
					<-exited
				}
			})
			deadline := time.Now().Add(60 * time.Second)
			for len(mgr.registeredWith()) == 0 {
				select {
				case err := <-exited:
					t.Fatalf("the agent exited before registering: %v\n%s", err, logs.String())
				case <-time.After(50 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("the agent did not register within 60s\n%s", logs.String())
				}
			}
			if got := mgr.registeredWith()[0]; got != goodToken {
				t.Fatalf("the agent registered with %q, want the token it was given", got)
			}
			cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline")
			if err != nil {
				t.Fatal(err)
			}
			if shown := bytes.Contains(cmdline, []byte(goodToken)); shown != c.inCmdline {
				t.Fatalf("token in /proc/PID/cmdline: %v, want %v\n%q", shown, c.inCmdline, cmdline)
			}
			if c.mustWarnOf != "" && !strings.Contains(logs.String(), c.mustWarnOf) {
				t.Errorf("no warning %q in the agent's log:\n%s", c.mustWarnOf, logs.String())
			}
		})
	}
}

// syncBuffer is a bytes.Buffer a process and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
