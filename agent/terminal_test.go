package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/berth-cluster/berth/shared/api"
)

// runningAgent is an agent on the fake runtime running container c1.
func runningAgent(t *testing.T) (*Agent, *fakeRuntime, func()) {
	t.Helper()
	rt := newFakeRuntime("berth/base:latest")
	mgr := newFakeManager()
	a, stop := startAgent(t, t.TempDir(), rt, mgr)
	d := desired("c1", "berth/base:latest")
	d.Ports = []api.SessionPort{{Name: "web", Port: 8080, Protocol: api.PortHTTP}}
	mgr.setDesired(d)
	eventually(t, 5*time.Second, func() error {
		if a.ID() == "" || rt.runCount() == 0 {
			return fmt.Errorf("c1 not started")
		}
		return nil
	})
	return a, rt, stop
}

func dialTerminal(t *testing.T, a *Agent, query string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := http.Header{}
	h.Set("Authorization", "Bearer s3cret")
	return websocket.Dial(ctx, "ws://"+a.Addr()+"/v1/containers/c1/terminal"+query, &websocket.DialOptions{HTTPHeader: h})
}

// readUntil reads the terminal until its output holds want.
func readUntil(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got strings.Builder
	for !strings.Contains(got.String(), want) {
		typ, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("reading for %q (have %q): %v", want, got.String(), err)
		}
		if typ == websocket.MessageBinary {
			got.Write(b)
		}
	}
}

// The terminal relays input and output, applies resizes (clamped, absurd
// ones ignored), falls back to /bin/sh without bash, ends with the exit
// message and a normal close, and ends its process.
func TestAgentTerminalRelaysResizesAndReportsTheExit(t *testing.T) {
	a, rt, _ := runningAgent(t)
	c, _, err := dialTerminal(t, a, "?cols=100&rows=30")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	ctx := context.Background()
	readUntil(t, c, "$ /bin/sh")
	for _, m := range []string{`{"type":"resize","cols":120,"rows":40}`, `{"type":"resize","cols":0,"rows":40}`,
		`{"type":"resize","cols":-5,"rows":-5}`, `{"type":"resize","cols":99999,"rows":70000}`, `{"type":"what"}`, `not json`} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Write(ctx, websocket.MessageBinary, []byte("echo hi\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, c, "echo hi")
	p := rt.processes()[0]
	sizes, _ := p.state()
	want := [][2]uint16{{100, 30}, {120, 40}, {api.TerminalMaxCols, api.TerminalMaxRows}}
	if fmt.Sprint(sizes) != fmt.Sprint(want) {
		t.Errorf("sizes %v, want %v", sizes, want)
	}
	if err := c.Write(ctx, websocket.MessageBinary, []byte("exit 3\n")); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var exit api.TerminalMessage
	for exit.Type == "" {
		typ, b, err := c.Read(rctx)
		if err != nil {
			t.Fatalf("no exit message: %v", err)
		}
		if typ == websocket.MessageText {
			if err := json.Unmarshal(b, &exit); err != nil {
				t.Fatal(err)
			}
		}
	}
	if exit.Type != api.TerminalExit || exit.Code == nil || *exit.Code != 3 {
		t.Fatalf("exit message %+v", exit)
	}
	_, _, err = c.Read(rctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusNormalClosure {
		t.Fatalf("after the exit: %v, want a normal close", err)
	}
	eventually(t, 5*time.Second, func() error {
		if _, closed := p.state(); !closed {
			return errors.New("the process was not closed")
		}
		return nil
	})
}

// A manager that goes away ends the process; one without the secret is
// refused; a stopping agent closes its terminals saying so.
func TestAgentTerminalEndsWithItsConnectionAndWithTheAgent(t *testing.T) {
	a, rt, stop := runningAgent(t)
	c, _, err := dialTerminal(t, a, "")
	if err != nil {
		t.Fatal(err)
	}
	readUntil(t, c, "$ /bin/sh")
	c.CloseNow()
	eventually(t, 5*time.Second, func() error {
		if _, closed := rt.processes()[0].state(); !closed {
			return errors.New("the process outlived its terminal")
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws://"+a.Addr()+"/v1/containers/c1/terminal", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a terminal without the secret: %v, %+v", err, resp)
	}
	c2, _, err := dialTerminal(t, a, "?command=top")
	if err != nil {
		t.Fatal(err)
	}
	readUntil(t, c2, "$ top")
	go stop()
	_, _, err = c2.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || !strings.Contains(ce.Reason, "agent agent-test is shutting down") {
		t.Fatalf("a stopping agent's terminal ends with %v; want going away, saying so", err)
	}
}

// A tunnel goes only to a port the container's session declared, at its
// address on a session network; an agent without one says so.
func TestAgentTunnelsOnlyToDeclaredPortsOfAddressedContainers(t *testing.T) {
	a, _, _ := runningAgent(t)
	for port, want := range map[string]struct {
		status int
		detail string
	}{
		"9999":  {http.StatusForbidden, "declared no port 9999"},
		"8080":  {http.StatusConflict, "has no address on a session network"},
		"70000": {http.StatusBadRequest, "must be a number from 1 to 65535"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		h := http.Header{}
		h.Set("Authorization", "Bearer s3cret")
		_, resp, err := websocket.Dial(ctx, "ws://"+a.Addr()+"/v1/containers/c1/ports/"+port+"/tunnel", &websocket.DialOptions{HTTPHeader: h})
		cancel()
		if err == nil || resp == nil || resp.StatusCode != want.status {
			t.Fatalf("port %s: %v %+v, want %d", port, err, resp, want.status)
		}
		var p api.Problem
		_ = json.NewDecoder(resp.Body).Decode(&p)
		if !strings.Contains(p.Detail, want.detail) {
			t.Errorf("port %s: %q, want %q", port, p.Detail, want.detail)
		}
	}
}
