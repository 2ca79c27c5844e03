// Package agentclient is how a manager calls an agent's API: plain
// requests (exec, logs), WebSockets (terminals) and TCP tunnels to the
// ports sessions declare, each with the agent's secret, which only the
// managers and that agent know. Users never talk to agents: the managers
// decide who may do what and then call the agent on their behalf.
package agentclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/wsnet"
)

// Client dials agents.
type Client struct {
	// Scheme is "http", or "https" when the agents serve TLS (-agent-tls).
	Scheme string
	// Transport carries every call (nil: http.DefaultTransport).
	Transport http.RoundTripper
}

func (c *Client) transport() http.RoundTripper {
	if c.Transport == nil {
		return http.DefaultTransport
	}
	return c.Transport
}

func (c *Client) url(ag *state.Agent, path string, query url.Values) string {
	scheme := c.Scheme
	if scheme == "" {
		scheme = "http"
	}
	u := scheme + "://" + ag.Address + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// Unreachable is a failure to get any answer from the agent.
type Unreachable struct {
	Agent   string
	Address string
	Err     error
}

func (e *Unreachable) Error() string {
	return fmt.Sprintf("could not reach agent %s at %s: %v", e.Agent, e.Address, e.Err)
}

func (e *Unreachable) Unwrap() error { return e.Err }

// Refused is an agent's error answer: its status and its reason.
type Refused struct {
	Agent  string
	Status int
	Detail string
}

func (e *Refused) Error() string {
	return fmt.Sprintf("agent %s answered %d: %s", e.Agent, e.Status, e.Detail)
}

// Do sends one request and returns the agent's answer, whatever its
// status; a failure to get one is an *Unreachable.
func (c *Client) Do(ctx context.Context, ag *state.Agent, method, path string, query url.Values, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(ag, path, query), rd)
	if err != nil {
		return nil, fmt.Errorf("build request to agent %s: %w", ag.ID, err)
	}
	req.Header.Set("Authorization", "Bearer "+ag.Secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.transport().RoundTrip(req)
	if err != nil {
		return nil, &Unreachable{Agent: ag.ID, Address: ag.Address, Err: err}
	}
	return resp, nil
}

// ReadRefusal reads an agent's error answer (problem+json or text).
func ReadRefusal(ag *state.Agent, resp *http.Response) *Refused {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	detail := string(bytes.TrimSpace(raw))
	var p api.Problem
	if json.Unmarshal(raw, &p) == nil && p.Detail != "" {
		detail = p.Detail
	}
	return &Refused{Agent: ag.ID, Status: resp.StatusCode, Detail: detail}
}

// WebSocket opens a WebSocket to the agent. An answer other than the
// upgrade is a *Refused, no answer an *Unreachable.
func (c *Client) WebSocket(ctx context.Context, ag *state.Agent, path string, query url.Values) (*websocket.Conn, error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+ag.Secret)
	conn, resp, err := websocket.Dial(ctx, c.url(ag, path, query), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: c.transport()}, HTTPHeader: h})
	if err == nil {
		return conn, nil
	}
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		ref := ReadRefusal(ag, resp)
		if ref.Detail == "" {
			ref.Detail = http.StatusText(resp.StatusCode)
		}
		return nil, ref
	}
	return nil, &Unreachable{Agent: ag.ID, Address: ag.Address, Err: err}
}

// Tunnel opens a TCP connection to port of the container, made by its
// agent to the container's address on its session's network.
func (c *Client) Tunnel(ctx context.Context, ag *state.Agent, container string, port int) (net.Conn, error) {
	ws, err := c.WebSocket(ctx, ag, "/v1/containers/"+url.PathEscape(container)+"/ports/"+strconv.Itoa(port)+"/tunnel", nil)
	if err != nil {
		return nil, err
	}
	// The connection outlives the dial: its context is its own.
	return wsnet.NetConn(context.WithoutCancel(ctx), ws), nil
}

// CloseReason is how an agent's WebSocket ended, in words for the user: the
// close reason the agent gave, or what went wrong.
func CloseReason(agent string, err error) (websocket.StatusCode, string) {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		reason := ce.Reason
		if reason == "" {
			reason = fmt.Sprintf("agent %s closed the connection (%s)", agent, ce.Code)
		}
		return ce.Code, reason
	}
	msg := "lost the connection to agent " + agent
	if err != nil && !strings.Contains(err.Error(), "EOF") {
		msg += ": " + err.Error()
	}
	return websocket.StatusInternalError, msg
}
