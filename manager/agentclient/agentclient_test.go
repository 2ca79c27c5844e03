package agentclient

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// An agent's refusal of a WebSocket keeps its status and reason; an agent
// that cannot be reached is told apart; the secret goes with every call.
func TestWebSocketRefusalsAndUnreachableAgents(t *testing.T) {
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", api.ProblemContentType)
		w.WriteHeader(http.StatusBadGateway)
		_ = json.NewEncoder(w).Encode(api.Problem{Status: http.StatusBadGateway, Detail: "nothing answers on port 8080"})
	}))
	defer srv.Close()
	c := &Client{}
	ag := &state.Agent{ID: "a1", Address: strings.TrimPrefix(srv.URL, "http://"), Secret: "s3cret"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Tunnel(ctx, ag, "s-1-0", 8080)
	var ref *Refused
	if !errors.As(err, &ref) || ref.Status != http.StatusBadGateway || ref.Detail != "nothing answers on port 8080" || ref.Agent != "a1" {
		t.Fatalf("refused tunnel: %v", err)
	}
	if auth != "Bearer s3cret" {
		t.Errorf("the agent got Authorization %q", auth)
	}

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = c.WebSocket(ctx, &state.Agent{ID: "a2", Address: addr}, "/v1/containers/x/terminal", nil)
	var un *Unreachable
	if !errors.As(err, &un) || un.Agent != "a2" {
		t.Fatalf("an agent that is not there: %v", err)
	}
}

func TestCloseReasonSaysHowAnAgentsWebSocketEnded(t *testing.T) {
	for _, c := range []struct {
		err    error
		code   websocket.StatusCode
		reason string
	}{
		{websocket.CloseError{Code: websocket.StatusGoingAway, Reason: "agent a1 is shutting down"}, websocket.StatusGoingAway, "agent a1 is shutting down"},
		{websocket.CloseError{Code: websocket.StatusNormalClosure}, websocket.StatusNormalClosure, "agent a1 closed the connection"},
		{errors.New("read: connection reset by peer"), websocket.StatusInternalError, "lost the connection to agent a1: read: connection reset by peer"},
	} {
		code, reason := CloseReason("a1", c.err)
		if code != c.code || !strings.HasPrefix(reason, c.reason) {
			t.Errorf("CloseReason(%v) = %v %q, want %v %q", c.err, code, reason, c.code, c.reason)
		}
	}
}
