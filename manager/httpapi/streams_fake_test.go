package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/berth-cluster/berth/shared/api"
)

// streamAgent stands in for an agent's streaming endpoints (agent/terminal.go,
// tunnel.go, streamed.go) behind the real manager: a terminal that echoes
// its input and says what size it is, a flood of output for a terminal
// whose command is "flood", tunnels to local listeners, followed logs and
// a streamed exec.
type streamAgent struct {
	*httptest.Server
	t *testing.T
	// ports maps a container port to the local address its tunnel dials.
	mu    sync.Mutex
	ports map[int]string
	// terminals counts terminals opened; ended those whose connection to
	// the manager has ended.
	terminals, ended atomic.Int32
	// flooded counts the bytes a flood terminal got the manager to take.
	flooded atomic.Int64
}

func newStreamAgent(t *testing.T) *streamAgent {
	f := &streamAgent{t: t, ports: map[int]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/containers/{id}/terminal", f.terminal)
	mux.HandleFunc("GET /v1/containers/{id}/ports/{port}/tunnel", f.tunnel)
	mux.HandleFunc("GET /v1/containers/{id}/logs", f.logs)
	mux.HandleFunc("POST /v1/containers/{id}/exec", f.exec)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *streamAgent) addr() string { return strings.TrimPrefix(f.URL, "http://") }

func (f *streamAgent) port(container int, addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ports[container] = addr
}

func (f *streamAgent) terminal(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	f.terminals.Add(1)
	defer f.ended.Add(1)
	defer c.CloseNow()
	ctx := context.Background()
	cmd := strings.Join(r.URL.Query()["command"], " ")
	if cmd == "flood" {
		chunk := make([]byte, 32<<10)
		for {
			if err := c.Write(ctx, websocket.MessageBinary, chunk); err != nil {
				return
			}
			f.flooded.Add(int64(len(chunk)))
		}
	}
	say := func(s string) { _ = c.Write(ctx, websocket.MessageBinary, []byte(s)) }
	say(fmt.Sprintf("ready %s %sx%s\r\n", cmd, r.URL.Query().Get("cols"), r.URL.Query().Get("rows")))
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageText {
			var m api.TerminalMessage
			_ = json.Unmarshal(b, &m)
			say(fmt.Sprintf("size %d %d\r\n", m.Cols, m.Rows))
			continue
		}
		say(string(b))
		var code int
		if _, err := fmt.Sscanf(string(b), "exit %d", &code); err == nil {
			exit, _ := json.Marshal(api.TerminalMessage{Type: api.TerminalExit, Code: &code})
			_ = c.Write(ctx, websocket.MessageText, exit)
			c.Close(websocket.StatusNormalClosure, fmt.Sprintf("the process exited with code %d", code))
			return
		}
	}
}

func (f *streamAgent) tunnel(w http.ResponseWriter, r *http.Request) {
	port, _ := strconv.Atoi(r.PathValue("port"))
	f.mu.Lock()
	target := f.ports[port]
	f.mu.Unlock()
	conn, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		w.Header().Set("Content-Type", api.ProblemContentType)
		w.WriteHeader(http.StatusBadGateway)
		_ = json.NewEncoder(w).Encode(api.Problem{Status: http.StatusBadGateway, Detail: fmt.Sprintf("nothing answers on port %d: connection refused", port)})
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

func (f *streamAgent) logs(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "query %s\n", r.URL.RawQuery)
	if r.URL.Query().Get("follow") != "true" {
		return
	}
	for i := 1; i <= 3; i++ {
		time.Sleep(100 * time.Millisecond)
		fmt.Fprintf(w, "line %d\n", i)
		w.(http.Flusher).Flush()
	}
}

func (f *streamAgent) exec(w http.ResponseWriter, r *http.Request) {
	var req api.ExecRequest
	_ = json.NewDecoder(r.Body).Decode(&req)
	if !req.Stream {
		_ = json.NewEncoder(w).Encode(api.ExecResult{ExitCode: 0, Stdout: "whole\n"})
		return
	}
	w.Header().Set("Content-Type", api.ExecStreamContentType)
	enc := json.NewEncoder(w)
	for i := 1; i <= 2; i++ {
		_ = enc.Encode(api.ExecEvent{Stream: "stdout", Data: []byte(fmt.Sprintf("step %d\n", i))})
		w.(http.Flusher).Flush()
		time.Sleep(50 * time.Millisecond)
	}
	code := 4
	_ = enc.Encode(api.ExecEvent{ExitCode: &code})
}
