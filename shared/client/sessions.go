package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/berth-cluster/berth/shared/api"
)

// CreateSession starts a session with the caller's keypair; it is PENDING
// until the scheduler places it.
func (c *Client) CreateSession(ctx context.Context, in api.SessionCreate) (*api.Session, error) {
	return call[api.Session](ctx, c, http.MethodPost, "/v1/sessions", in)
}

// ListSessions returns one page of sessions; query takes status, owner,
// all, limit and cursor.
func (c *Client) ListSessions(ctx context.Context, query url.Values) (*api.List[api.Session], error) {
	return get[api.List[api.Session]](ctx, c, "/v1/sessions", query)
}

// GetSession returns one session.
func (c *Client) GetSession(ctx context.Context, id string) (*api.Session, error) {
	return get[api.Session](ctx, c, sessionPath(id), nil)
}

// WaitSession is a blocking read of a session: it answers once the session
// has changed past index (the index of an earlier answer; 0: at once) or
// wait has passed, with the session and the index to wait past next.
func (c *Client) WaitSession(ctx context.Context, id string, index uint64, wait time.Duration) (*api.Session, uint64, error) {
	q := url.Values{}
	if index > 0 {
		q.Set("index", strconv.FormatUint(index, 10))
		q.Set("wait", wait.String())
	}
	resp, err := c.DoRaw(ctx, http.MethodGet, sessionPath(id), q, nil, "")
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var out api.Session
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, 0, fmt.Errorf("GET %s: decoding the session: %w", sessionPath(id), err)
	}
	// A manager that does not say (an older one) is read again at once
	// next time: the caller then polls.
	at, _ := strconv.ParseUint(resp.Header.Get("X-Berth-Index"), 10, 64)
	return &out, at, nil
}

// TerminateSession ends a session and returns it as it is then
// (TERMINATING, or CANCELLED if it was still PENDING).
func (c *Client) TerminateSession(ctx context.Context, id string) (*api.Session, error) {
	var out api.Session
	if err := c.Do(ctx, http.MethodDelete, sessionPath(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExecSession runs a command in the session's first container. The call
// lasts as long as the command (up to timeoutS, 0 = the agent's default of
// 30 s); ctx should allow for it.
func (c *Client) ExecSession(ctx context.Context, id string, command []string, timeoutS int) (*api.ExecResult, error) {
	return call[api.ExecResult](ctx, c, http.MethodPost, sessionPath(id)+"/exec", api.ExecRequest{Command: command, TimeoutS: timeoutS})
}

// SessionLogs opens the output of the session's first container; the
// caller reads and closes it.
func (c *Client) SessionLogs(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, err := c.DoRaw(ctx, http.MethodGet, sessionPath(id)+"/logs", nil, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func sessionPath(id string) string { return "/v1/sessions/" + url.PathEscape(id) }
