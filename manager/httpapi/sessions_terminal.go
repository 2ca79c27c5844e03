package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/berth-cluster/berth/manager/agentclient"
	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/wsnet"
)

// A terminal is two WebSockets joined by the manager: the user's, and the
// agent's (agent/terminal.go), which runs the process on a pseudo-terminal
// in the container. The manager passes input and output on one message at
// a time, checks what it passes (a resize is clamped, other text from the
// user is dropped), and closes each side with a reason when the other ends.

// terminalInputLimit bounds one message from the user: a paste arrives in
// pieces of this much at most.
const terminalInputLimit = 64 << 10

// sessionTerminal is GET /v1/sessions/{id}/terminal?container=N&command=…
func (a *API) sessionTerminal(c *Call) error {
	if !isWebSocket(c.R) {
		return apierr.New(apierr.Invalid, "a terminal is a WebSocket: send the upgrade (Connection: Upgrade, Upgrade: websocket), as berth session shell and the console do")
	}
	s, err := a.actionableSession(c)
	if err != nil {
		return err
	}
	q := c.R.URL.Query()
	command := q["command"]
	if slices.Contains(command, "") {
		return apierr.Fields{{Field: "command", Reason: "command words must not be empty; repeat command= once per word (command=ls&command=-la)"}}.Err()
	}
	if s.Status != api.SessionRunning {
		return apierr.New(apierr.Conflict, "session %s is %s; a terminal needs a RUNNING session", s.ID, s.Status)
	}
	ag, cid, err := a.sessionContainer(c, s)
	if err != nil {
		return err
	}
	agentQuery := url.Values{"command": command}
	// An absurd first size is taken as the largest, or ignored, as a
	// resize is.
	if cols, rows, ok := api.TerminalSize(atoi(q.Get("cols")), atoi(q.Get("rows"))); ok {
		agentQuery.Set("cols", strconv.Itoa(int(cols)))
		agentQuery.Set("rows", strconv.Itoa(int(rows)))
	}
	if err := a.streams.closing(); err != nil {
		return err
	}
	a.auditSessionAccess(c, s, "terminal", ag, cid, "command", command)

	// The agent first: its refusal (the container stopped, the command
	// does not exist) is still an HTTP answer to the user.
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.R.Context()))
	defer cancel()
	up, err := a.agents.WebSocket(ctx, ag, "/v1/containers/"+url.PathEscape(cid)+"/terminal", agentQuery)
	if err != nil {
		return a.agentError(c, ag, s, err, ctx)
	}
	defer up.CloseNow()
	user, err := websocket.Accept(c.W, c.R, nil)
	if err != nil {
		up.Close(websocket.StatusNormalClosure, "the user's connection failed")
		return nil // Accept answered
	}
	defer user.CloseNow()
	remove, ok := a.streams.add(func(reason string) {
		user.Close(websocket.StatusGoingAway, closeReason(reason))
		up.Close(websocket.StatusGoingAway, closeReason(reason))
		cancel()
	})
	defer remove()
	if !ok {
		user.Close(websocket.StatusGoingAway, "the manager is shutting down")
		return nil
	}
	go a.keepActive(ctx, s.ID)
	a.joinTerminal(ctx, cancel, s, ag, user, up)
	return nil
}

// joinTerminal relays between the user and the agent until either ends,
// then closes the other with the reason.
func (a *API) joinTerminal(ctx context.Context, cancel context.CancelFunc, s *state.Session, ag *state.Agent, user, up *websocket.Conn) {
	user.SetReadLimit(terminalInputLimit)
	up.SetReadLimit(terminalChunkLimit)
	done := make(chan struct{})
	// The user's side: input passes on, a resize is checked, the rest of
	// what a client may send is dropped.
	go func() {
		defer close(done)
		for {
			typ, b, err := user.Read(ctx)
			if err != nil {
				// A user who closed is said goodbye for; a connection that
				// failed (or that the manager cut: a stalled reader) is
				// dropped, without the handshake's wait.
				if errors.As(err, new(websocket.CloseError)) {
					up.Close(websocket.StatusNormalClosure, "the user closed the terminal")
				} else {
					up.CloseNow()
				}
				return
			}
			if typ == websocket.MessageText {
				var m api.TerminalMessage
				if json.Unmarshal(b, &m) != nil || m.Type != api.TerminalResize {
					continue
				}
				cols, rows, ok := api.TerminalSize(m.Cols, m.Rows)
				if !ok {
					continue
				}
				b, _ = json.Marshal(api.TerminalMessage{Type: api.TerminalResize, Cols: int(cols), Rows: int(rows)})
			}
			if err := a.writeWithin(ctx, up, typ, b); err != nil {
				return
			}
		}
	}()
	// The agent's side: output and the exit message pass on.
	for {
		typ, b, err := up.Read(ctx)
		if err != nil {
			code, reason := agentclient.CloseReason(ag.ID, err)
			if code == websocket.StatusGoingAway {
				reason = fmt.Sprintf("the terminal ended: %s", reason)
			}
			user.Close(code, closeReason(reason))
			break
		}
		if typ == websocket.MessageText {
			var m api.TerminalMessage
			if json.Unmarshal(b, &m) != nil || m.Type != api.TerminalExit || m.Code == nil {
				continue
			}
			b, _ = json.Marshal(api.TerminalMessage{Type: api.TerminalExit, Code: m.Code})
		}
		if err := a.writeWithin(ctx, user, typ, b); err != nil {
			// No closing handshake with the agent: it would mean reading
			// (and dropping) what the agent still sends meanwhile.
			a.log.Info("terminal closed: its user stopped reading", "session", s.ID, "err", err)
			up.CloseNow()
			break
		}
	}
	cancel()
	<-done
}

// terminalChunkLimit bounds one message from an agent (it sends 32 KiB).
const terminalChunkLimit = 64 << 10

// sessionPortForward is GET /v1/sessions/{id}/ports/{port}/forward?container=N:
// a WebSocket carrying one TCP connection to a port the session declared,
// made by the container's agent to the container's address.
func (a *API) sessionPortForward(c *Call) error {
	if !isWebSocket(c.R) {
		return apierr.New(apierr.Invalid, "a port-forward is a WebSocket: send the upgrade (Connection: Upgrade, Upgrade: websocket), as berth session port-forward does")
	}
	s, err := a.actionableSession(c)
	if err != nil {
		return err
	}
	port, err := declaredPort(s, c.R.PathValue("port"))
	if err != nil {
		return err
	}
	if s.Status != api.SessionRunning {
		return apierr.New(apierr.Conflict, "session %s is %s; a port-forward needs a RUNNING session", s.ID, s.Status)
	}
	ag, cid, err := a.sessionContainer(c, s)
	if err != nil {
		return err
	}
	if err := a.streams.closing(); err != nil {
		return err
	}
	a.auditSessionAccess(c, s, "port-forward", ag, cid, "port", port.Port)
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.R.Context()))
	defer cancel()
	up, err := a.agents.Tunnel(ctx, ag, cid, port.Port)
	if err != nil {
		return a.agentError(c, ag, s, err, ctx)
	}
	defer up.Close()
	user, err := websocket.Accept(c.W, c.R, nil)
	if err != nil {
		return nil
	}
	defer user.CloseNow()
	remove, ok := a.streams.add(func(reason string) {
		user.Close(websocket.StatusGoingAway, closeReason(reason))
		up.Close()
		cancel()
	})
	defer remove()
	if !ok {
		user.Close(websocket.StatusGoingAway, "the manager is shutting down")
		return nil
	}
	go a.keepActive(ctx, s.ID)
	relay(wsnet.NetConn(ctx, user), up, a.limits.StreamStall)
	return nil
}

// declaredPort is the port of s that ref names (its name or its number).
func declaredPort(s *state.Session, ref string) (api.SessionPort, error) {
	for _, p := range s.Ports {
		if p.Name == ref || strconv.Itoa(p.Port) == ref {
			return p, nil
		}
	}
	names := make([]string, len(s.Ports))
	for i, p := range s.Ports {
		names[i] = fmt.Sprintf("%s (%d/%s)", p.Name, p.Port, p.Protocol)
	}
	declared := "none"
	if len(names) > 0 {
		declared = strings.Join(names, ", ")
	}
	return api.SessionPort{}, apierr.New(apierr.NotFound, "session %s declares no port %q; it declares %s", s.ID, ref, declared)
}

// isWebSocket tells whether r asks for a WebSocket.
func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") && headerHas(r.Header, "Connection", "upgrade")
}

func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}
