package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/berth-cluster/berth/manager/agentclient"
	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// exec, logs, terminals and port-forwards are served by the agent that
// runs the session's container; the leader calls it with the agent's
// secret (manager/agentclient), so users never talk to agents directly.

const (
	// maxExecTimeoutS matches the agent's own bound on exec.
	maxExecTimeoutS = 600
	// agentCallSlack is added to the command's timeout for the round trip.
	agentCallSlack = 30 * time.Second
	// problemAgent is the problem type of an agent that failed the call.
	problemAgent = "https://berth.dev/problems/agent"
	// maxLogTail bounds ?tail= (the agent's bound).
	maxLogTail = 1_000_000
)

// execSession is POST /v1/sessions/{id}/exec.
func (a *API) execSession(c *Call) error {
	s, err := a.actionableSession(c)
	if err != nil {
		return err
	}
	var req api.ExecRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	var bad apierr.Fields
	if len(req.Command) == 0 || req.Command[0] == "" {
		bad.Add("command", "command must name the program to run, e.g. [\"echo\",\"hi\"]")
	}
	if req.TimeoutS < 0 || req.TimeoutS > maxExecTimeoutS {
		bad.Add("timeout_s", "timeout_s must be from 0 (the agent's default, 30) to %d seconds", maxExecTimeoutS)
	}
	if err := bad.Err(); err != nil {
		return err
	}
	if s.Status != api.SessionRunning {
		return apierr.New(apierr.Conflict, "session %s is %s; exec needs a RUNNING session", s.ID, s.Status)
	}
	ag, cid, err := a.sessionContainer(c, s)
	if err != nil {
		return err
	}
	a.auditSessionAccess(c, s, "exec", ag, cid, "command", req.Command)
	a.leader.SessionUsed(s.ID)
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode exec request: %w", err)
	}
	timeout := time.Duration(max(req.TimeoutS, 30))*time.Second + agentCallSlack
	ctx, cancel := context.WithTimeout(c.R.Context(), timeout)
	defer cancel()
	resp, err := a.agents.Do(ctx, ag, http.MethodPost, "/v1/containers/"+url.PathEscape(cid)+"/exec", nil, body)
	if err != nil {
		return a.agentError(c, ag, s, err, ctx)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return a.agentError(c, ag, s, agentclient.ReadRefusal(ag, resp), ctx)
	}
	if req.Stream {
		return a.relayStream(c, s, ag, resp, api.ExecStreamContentType)
	}
	var out api.ExecResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&out); err != nil {
		return a.agentProblem(c, ag, fmt.Sprintf("agent %s sent an exec result that is not JSON: %v", ag.ID, err))
	}
	return c.JSON(http.StatusOK, out)
}

// sessionLogs is GET /v1/sessions/{id}/logs?container=N&follow=true&since=&tail=:
// a container's output, streamed as the agent sends it; followed, until the
// container ends.
func (a *API) sessionLogs(c *Call) error {
	s, err := a.actionableSession(c)
	if err != nil {
		return err
	}
	q := c.R.URL.Query()
	agentQuery := url.Values{}
	var bad apierr.Fields
	switch f := q.Get("follow"); f {
	case "", "false":
	case "true":
		agentQuery.Set("follow", "true")
	default:
		bad.Add("follow", "follow must be true or false, not %q", f)
	}
	if since := q.Get("since"); since != "" {
		if _, err := time.Parse(time.RFC3339Nano, since); err != nil {
			bad.Add("since", "since %q must be an RFC 3339 time, e.g. 2025-01-02T15:04:05Z", since)
		}
		agentQuery.Set("since", since)
	}
	if tail := q.Get("tail"); tail != "" {
		if n, err := strconv.Atoi(tail); err != nil || n < 0 || n > maxLogTail {
			bad.Add("tail", "tail %q must be a number of lines from 0 to %d", tail, maxLogTail)
		}
		agentQuery.Set("tail", tail)
	}
	if err := bad.Err(); err != nil {
		return err
	}
	ag, cid, err := a.sessionContainer(c, s)
	if err != nil {
		return err
	}
	a.auditSessionAccess(c, s, "logs", ag, cid, "follow", agentQuery.Get("follow") == "true")
	if !s.Status.Ended() {
		a.leader.SessionUsed(s.ID)
	}
	resp, err := a.agents.Do(c.R.Context(), ag, http.MethodGet, "/v1/containers/"+url.PathEscape(cid)+"/logs", agentQuery, nil)
	if err != nil {
		return a.agentError(c, ag, s, err, c.R.Context())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return a.agentError(c, ag, s, agentclient.ReadRefusal(ag, resp), c.R.Context())
	}
	return a.relayStream(c, s, ag, resp, "text/plain; charset=utf-8")
}

// relayStream passes an agent's streamed answer on as it comes. The status
// is sent first; a transfer cut after it (the agent or the client went
// away, the client stalled, the manager is closing) is cut for the client
// too, so that it does not look complete.
func (a *API) relayStream(c *Call, s *state.Session, ag *state.Agent, resp *http.Response, contentType string) error {
	ctx, cancel := context.WithCancel(c.R.Context())
	defer cancel()
	remove, ok := a.streams.add(func(string) { cancel() })
	defer remove()
	if !ok {
		return apierr.New(apierr.Unavailable, "this manager is shutting down; retry")
	}
	go func() {
		<-ctx.Done()
		resp.Body.Close() // unblocks the copy when the manager closes
	}()
	c.W.Header().Set("Content-Type", contentType)
	c.W.WriteHeader(http.StatusOK)
	if _, err := io.Copy(a.stallWriter(c.W), resp.Body); err != nil {
		a.log.Warn("relay from agent", "session", s.ID, "agent", ag.ID, "path", c.R.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// actionableSession is the session of the path if the caller may act on it.
func (a *API) actionableSession(c *Call) (*state.Session, error) {
	s, err := a.visibleSession(c)
	if err != nil {
		return nil, err
	}
	if !canActOnSession(c.Who, a.cluster.Read(), s) {
		return nil, apierr.New(apierr.Forbidden, "only the owner or an admin may use session %s", s.ID)
	}
	return s, nil
}

// auditSessionAccess records in the manager's log every look inside a
// session by someone other than its owner (an admin's exec, log read,
// terminal or port-forward): who, what, whose and when, one structured line
// with audit=session-access to search for. It runs once the caller is
// allowed and before the agent is asked, so a call that then fails at the
// agent is recorded as well.
func (a *API) auditSessionAccess(c *Call, s *state.Session, action string, ag *state.Agent, container string, extra ...any) {
	if c.Who.User.Email == s.Owner {
		return
	}
	attrs := append([]any{"audit", "session-access", "action", action,
		"actor", c.Who.User.Email, "actor_role", c.Who.Role(), "client", a.clientAddr(c.R),
		"route", c.R.Method + " " + c.R.URL.Path, "session", s.ID, "owner", s.Owner,
		"agent", ag.ID, "container", container, "at", a.now().UTC()}, extra...)
	a.log.Info("session accessed by someone other than its owner", attrs...)
}

// sessionContainer is the agent and id of the container ?container=N names
// (default 0, the first, where exec and logs have always gone).
func (a *API) sessionContainer(c *Call, s *state.Session) (*state.Agent, string, error) {
	index := 0
	if v := c.R.URL.Query().Get("container"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, "", apierr.Fields{{Field: "container", Reason: fmt.Sprintf("container %q must be a container's index: 0, 1, …", v)}}.Err()
		}
		index = n
	}
	if len(s.Containers) == 0 {
		return nil, "", apierr.New(apierr.Conflict, "session %s is %s and has no container yet", s.ID, s.Status)
	}
	for _, ct := range s.Containers {
		if ct.Index != index {
			continue
		}
		if ct.Agent == "" {
			break
		}
		ag, err := a.cluster.Read().Agent(ct.Agent)
		if err != nil {
			return nil, "", err
		}
		if ag == nil || ag.Address == "" {
			return nil, "", apierr.New(apierr.Conflict, "the agent of session %s (%s) is no longer known", s.ID, ct.Agent)
		}
		return ag, state.ContainerID(s.ID, index), nil
	}
	return nil, "", apierr.New(apierr.NotFound, "session %s has no container %d: its containers are 0 to %d", s.ID, index, len(s.Containers)-1)
}

// agentError turns a failed call to an agent into the caller's answer: no
// answer is 503 (the agent may come back); the container gone or stopped
// is a conflict with the session's state; a request the agent found wrong
// (a command the container lacks) is the caller's; anything else is the
// agent's failure (502), with its reason.
func (a *API) agentError(c *Call, ag *state.Agent, s *state.Session, err error, ctx context.Context) error {
	var ref *agentclient.Refused
	if !errors.As(err, &ref) {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return apierr.New(apierr.Unavailable, "agent %s did not answer in time", ag.ID)
		}
		a.log.Warn("call agent", "agent", ag.ID, "address", ag.Address, "err", err)
		return apierr.New(apierr.Unavailable, "could not reach agent %s at %s; retry, or check the agent", ag.ID, ag.Address)
	}
	switch ref.Status {
	case http.StatusNotFound:
		return apierr.New(apierr.Conflict, "the container of session %s is gone from agent %s", s.ID, ag.ID)
	case http.StatusConflict:
		return apierr.New(apierr.Conflict, "the container of session %s is not running: %s", s.ID, ref.Detail)
	case http.StatusBadRequest:
		return apierr.New(apierr.Invalid, "%s", ref.Detail)
	case http.StatusUnauthorized:
		a.log.Error("agent refused the managers' secret", "agent", ag.ID)
	}
	return a.agentProblem(c, ag, ref.Error())
}

// agentProblem answers 502: the manager is fine, the agent behind it is not.
func (a *API) agentProblem(c *Call, ag *state.Agent, detail string) error {
	a.log.Warn("agent call failed", "agent", ag.ID, "detail", detail)
	writeProblem(c.W, &api.Problem{Type: problemAgent, Title: "Agent failed", Status: http.StatusBadGateway, Detail: detail})
	return nil
}
