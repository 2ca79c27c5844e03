package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/creack/pty"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// fakeAgent stands in for berth-agent in the browser tests, which have no
// containerd: it registers through the public agent API, reads its desired
// containers and heartbeats what they do, like an agent does. A container
// "runs" its command as a process on this machine (the tests' commands are
// sh -c '...' and the keep-alive loop), so batch exit codes, logs and exec
// are real output, and the manager under test is the real one.
type fakeAgent struct {
	t      *testing.T
	base   string
	reg    api.AgentRegister
	id     string
	secret string
	srv    *httptest.Server
	dir    string

	mu     sync.Mutex
	ctrs   map[string]*fakeContainer // running or exited, not yet removed
	logs   map[string]*syncBuffer    // every container's output, kept after removal
	images []api.Image               // what it reports: the registration's, then pulled and removed ones
	// ports maps a container port to the local address its tunnel reaches
	// (an app of the test standing for the container's).
	ports map[string]string
}

type fakeContainer struct {
	d        api.DesiredContainer
	status   api.ContainerStatus // running, exited
	exitCode *int
	started  time.Time
	cancel   context.CancelFunc
}

// syncBuffer is a log written by a process and read by the API at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startFakeAgent registers an agent of 8 cores, 16 GiB and two fake GPUs
// that has the base image and the python image and mounts folder host
// "local", and runs it until the test ends.
func startFakeAgent(t *testing.T, s *server.Server) *fakeAgent {
	t.Helper()
	var capacity slots.Slots
	if err := json.Unmarshal([]byte(`{"cpu":8,"mem":17179869184,"cuda.device":2,"cuda.shares":2}`), &capacity); err != nil {
		t.Fatal(err)
	}
	a := &fakeAgent{t: t, base: testcluster.URL(s), dir: t.TempDir(), ctrs: map[string]*fakeContainer{}, logs: map[string]*syncBuffer{}, ports: map[string]string{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serveAgentAPI))
	t.Cleanup(a.srv.Close)
	a.reg = api.AgentRegister{Address: strings.TrimPrefix(a.srv.URL, "http://"), Capacity: capacity, Version: "test",
		Images: []api.Image{{Name: "berth/base:latest", Digest: "sha256:00", Size: 80 << 20}, {Name: "python:3.12", Digest: "sha256:01", Size: 400 << 20}},
		Node:   api.NodeInfo{Hostname: "fake-node", Arch: "amd64", CPUs: 8, MemoryBytes: 16 << 30},
		GPUs: []api.GPUDevice{
			{UUID: "GPU-fake-0", Index: 0, Minor: 0, Name: "A100-SXM4-40GB", MemoryBytes: 40 << 30, Shares: 100, Fake: true},
			{UUID: "GPU-fake-1", Index: 1, Minor: 1, Name: "A100-SXM4-40GB", MemoryBytes: 40 << 30, Shares: 100, Fake: true},
		},
		GPUShareQuantum: 10, FolderHosts: []string{"local"}}
	a.images = slices.Clone(a.reg.Images)
	var out api.AgentRegistered
	a.call(http.MethodPost, "/v1/agents/register", agentToken, a.reg, &out, http.StatusCreated)
	a.id, a.secret = out.ID, out.Secret
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.loop(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, c := range a.ctrs {
			c.cancel()
		}
	})
	return a
}

// call sends one request of the agent API's client side.
func (a *fakeAgent) call(method, path, token string, body, out any, want ...int) {
	a.t.Helper()
	if err := a.do(context.Background(), method, path, token, body, out, want...); err != nil {
		a.t.Fatal(err)
	}
}

func (a *fakeAgent) do(ctx context.Context, method, path, token string, body, out any, want ...int) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token == agentToken {
		req.Header.Set(api.AgentTokenHeader, token)
	} else {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if len(want) == 0 {
		want = []int{http.StatusOK}
	}
	if !slices.Contains(want, resp.StatusCode) {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// loop is the agent's work: every beat, start what is desired and new,
// remove what is to stop, and report.
func (a *fakeAgent) loop(ctx context.Context) {
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	for {
		var ds api.DesiredState
		if err := a.do(ctx, http.MethodGet, "/v1/agents/"+a.id+"/desired", a.secret, nil, &ds); err == nil {
			a.apply(ds)
		}
		a.mu.Lock()
		images := slices.Clone(a.images)
		a.mu.Unlock()
		hb := api.AgentHeartbeat{Address: a.reg.Address, Capacity: a.reg.Capacity, Images: images, Containers: a.reports(),
			GPUs: a.reg.GPUs, GPUShareQuantum: a.reg.GPUShareQuantum, FolderHosts: a.reg.FolderHosts}
		_ = a.do(ctx, http.MethodPost, "/v1/agents/"+a.id+"/heartbeat", a.secret, hb, nil)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (a *fakeAgent) apply(ds api.DesiredState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range ds.Stop {
		if c, ok := a.ctrs[id]; ok {
			c.cancel()
			delete(a.ctrs, id)
		}
	}
	for _, d := range ds.Containers {
		if _, ok := a.ctrs[d.ID]; ok || len(d.Command) == 0 {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		c := &fakeContainer{d: d, status: "running", started: time.Now().UTC(), cancel: cancel}
		log := &syncBuffer{}
		a.logs[d.ID] = log
		a.ctrs[d.ID] = c
		cmd := processGroup(exec.CommandContext(ctx, d.Command[0], d.Command[1:]...))
		cmd.Dir = a.dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		for k, v := range d.Env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(log, "cannot start: %v\n", err)
			code := 127
			c.status, c.exitCode = "exited", &code
			continue
		}
		go func() {
			err := cmd.Wait()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			if ctx.Err() == nil {
				c.status, c.exitCode = "exited", &code
			}
		}()
	}
}

func (a *fakeAgent) reports() []api.ContainerReport {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []api.ContainerReport{}
	for id, c := range a.ctrs {
		started := c.started
		out = append(out, api.ContainerReport{ID: id, SessionID: c.d.SessionID, Index: c.d.Index, Status: c.status, ExitCode: c.exitCode,
			StartedAt: &started, CPUSeconds: time.Since(started).Seconds() / 10, MemoryWorkingSet: 96 << 20})
	}
	slices.SortFunc(out, func(x, y api.ContainerReport) int { return strings.Compare(x.ID, y.ID) })
	return out
}

// processGroup runs the command in a process group of its own and ends
// the whole group when its context ends, so the keep-alive loop's sleep
// does not outlive the test.
func processGroup(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// serveAgentAPI is the agent's own API the managers call: logs and exec.
func (a *fakeAgent) serveAgentAPI(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+a.secret {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if a.serveImages(w, r) {
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/containers/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	id, action, _ := strings.Cut(rest, "/")
	a.mu.Lock()
	log := a.logs[id]
	c := a.ctrs[id]
	running := c != nil && c.status == "running"
	a.mu.Unlock()
	switch {
	case action == "logs" && log != nil && r.URL.Query().Get("follow") == "true":
		a.followLog(w, r, id, log)
	case action == "logs" && log != nil:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, log.String())
	case action == "terminal" && running:
		a.terminal(w, r)
	case strings.HasPrefix(action, "ports/") && running:
		a.tunnel(w, r, strings.TrimSuffix(strings.TrimPrefix(action, "ports/"), "/tunnel"))
	case action == "exec" && running:
		var req api.ExecRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Command) == 0 {
			http.Error(w, "bad exec request", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		cmd := processGroup(exec.CommandContext(ctx, req.Command[0], req.Command[1:]...))
		cmd.Dir = a.dir
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		res := api.ExecResult{}
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				res.ExitCode, res.Stderr = 127, err.Error()+"\n"
			} else {
				res.ExitCode = ee.ExitCode()
			}
		}
		res.Stdout, res.Stderr = stdout.String(), res.Stderr+stderr.String()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	default:
		http.NotFound(w, r)
	}
}

// followLog writes the log and then what is added to it, until the
// container stops running.
func (a *fakeAgent) followLog(w http.ResponseWriter, r *http.Request, id string, log *syncBuffer) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	sent := 0
	for {
		text := log.String()
		if len(text) > sent {
			_, _ = io.WriteString(w, text[sent:])
			w.(http.Flusher).Flush()
			sent = len(text)
		}
		a.mu.Lock()
		c := a.ctrs[id]
		running := c != nil && c.status == "running"
		a.mu.Unlock()
		if !running {
			if text := log.String(); len(text) > sent {
				_, _ = io.WriteString(w, text[sent:])
			}
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// terminal is a shell of this machine on a pseudo-terminal, relayed over
// the WebSocket as the agent relays a container's.
func (a *fakeAgent) terminal(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	cols, _ := strconv.Atoi(r.URL.Query().Get("cols"))
	rows, _ := strconv.Atoi(r.URL.Query().Get("rows"))
	sh := exec.Command("/bin/sh")
	sh.Dir = a.dir
	sh.Env = []string{"PATH=" + os.Getenv("PATH"), "PS1=$ ", "TERM=xterm-256color"}
	tty, err := pty.StartWithSize(sh, &pty.Winsize{Cols: uint16(max(cols, 1)), Rows: uint16(max(rows, 1))})
	if err != nil {
		c.Close(websocket.StatusInternalError, err.Error())
		return
	}
	defer tty.Close()
	ctx := context.Background()
	go func() {
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				_ = sh.Process.Kill()
				return
			}
			if typ == websocket.MessageBinary {
				_, _ = tty.Write(b)
				continue
			}
			var m api.TerminalMessage
			if json.Unmarshal(b, &m) == nil && m.Type == api.TerminalResize {
				_ = pty.Setsize(tty, &pty.Winsize{Cols: uint16(m.Cols), Rows: uint16(m.Rows)})
			}
		}
	}()
	buf := make([]byte, 4096)
	for {
		n, err := tty.Read(buf)
		if n > 0 && c.Write(ctx, websocket.MessageBinary, buf[:n]) != nil {
			break
		}
		if err != nil {
			break
		}
	}
	_ = sh.Wait()
	code := sh.ProcessState.ExitCode()
	exit, _ := json.Marshal(api.TerminalMessage{Type: api.TerminalExit, Code: &code})
	_ = c.Write(ctx, websocket.MessageText, exit)
	c.Close(websocket.StatusNormalClosure, fmt.Sprintf("the process exited with code %d", code))
}

// tunnel carries one connection to the address the test gave the port.
func (a *fakeAgent) tunnel(w http.ResponseWriter, r *http.Request, port string) {
	a.mu.Lock()
	target := a.ports[port]
	a.mu.Unlock()
	conn, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		w.Header().Set("Content-Type", api.ProblemContentType)
		w.WriteHeader(http.StatusBadGateway)
		_ = json.NewEncoder(w).Encode(api.Problem{Status: http.StatusBadGateway, Detail: fmt.Sprintf("nothing answers on port %s: %v", port, err)})
		return
	}
	defer conn.Close()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws := websocket.NetConn(context.Background(), c, websocket.MessageBinary)
	defer ws.Close()
	go func() { _, _ = io.Copy(ws, conn); ws.Close() }()
	_, _ = io.Copy(conn, ws)
}

// port makes the container port reach addr.
func (a *fakeAgent) port(port int, addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ports[strconv.Itoa(port)] = addr
}

// serveImages answers the managers' image calls: a pull "finishes" at once
// (the image is reported from the next heartbeat on), a removal drops it
// unless a running container uses it. It reports whether it answered.
func (a *fakeAgent) serveImages(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/images/pull":
		var req api.AgentImagePull
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Image == "" {
			http.Error(w, "bad pull request", http.StatusBadRequest)
			return true
		}
		a.mu.Lock()
		if !slices.ContainsFunc(a.images, func(im api.Image) bool { return im.Name == req.Image }) {
			a.images = append(a.images, api.Image{Name: req.Image, Digest: "sha256:02", Size: 120 << 20})
		}
		a.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "{}")
		return true
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/v1/images/"):
		name := strings.TrimPrefix(r.URL.Path, "/v1/images/")
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, c := range a.ctrs {
			if c.d.Image == name && c.status == "running" {
				http.Error(w, "in use by "+c.d.ID, http.StatusConflict)
				return true
			}
		}
		i := slices.IndexFunc(a.images, func(im api.Image) bool { return im.Name == name })
		if i < 0 {
			http.Error(w, "no image "+name, http.StatusNotFound)
			return true
		}
		a.images = slices.Delete(a.images, i, i+1)
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}
