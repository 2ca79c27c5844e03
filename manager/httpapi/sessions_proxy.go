package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// exec and logs are served by the agent that runs the session's first
// container; the leader calls it with the agent's secret, which only the
// managers and that agent know, so users never talk to agents directly.

const (
	// maxExecTimeoutS matches the agent's own bound on exec.
	maxExecTimeoutS = 600
	// agentCallSlack is added to the command's timeout for the round trip.
	agentCallSlack = 30 * time.Second
	// problemAgent is the problem type of an agent that failed the call.
	problemAgent = "https://berth.dev/problems/agent"
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
	ag, cid, err := a.firstContainer(s)
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
	resp, err := a.callAgent(ctx, ag, http.MethodPost, "/v1/containers/"+url.PathEscape(cid)+"/exec", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return a.agentFailed(c, ag, s, resp)
	}
	var out api.ExecResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&out); err != nil {
		return a.agentProblem(c, ag, fmt.Sprintf("agent %s sent an exec result that is not JSON: %v", ag.ID, err))
	}
	return c.JSON(http.StatusOK, out)
}

// sessionLogs is GET /v1/sessions/{id}/logs: the first container's output,
// streamed as the agent sends it.
func (a *API) sessionLogs(c *Call) error {
	s, err := a.actionableSession(c)
	if err != nil {
		return err
	}
	ag, cid, err := a.firstContainer(s)
	if err != nil {
		return err
	}
	a.auditSessionAccess(c, s, "logs", ag, cid)
	if !s.Status.Ended() {
		a.leader.SessionUsed(s.ID)
	}
	resp, err := a.callAgent(c.R.Context(), ag, http.MethodGet, "/v1/containers/"+url.PathEscape(cid)+"/logs", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return a.agentFailed(c, ag, s, resp)
	}
	c.W.Header().Set("Content-Type", "text/plain; charset=utf-8")
	c.W.WriteHeader(http.StatusOK)
	if _, err := io.Copy(flushWriter{c.W}, resp.Body); err != nil {
		a.log.Warn("relay session logs", "session", s.ID, "agent", ag.ID, "err", err)
		panic(http.ErrAbortHandler) // the status is sent: cut the transfer so it does not look complete
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
// session by someone other than its owner (an admin's exec or log read; a
// terminal, when there is one, calls it too): who, what, whose and when, one
// structured line with audit=session-access to search for. It runs once the
// caller is allowed and before the agent is asked, so a call that then fails
// at the agent is recorded as well.
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

// firstContainer is the agent and id of container 0, where exec and logs go.
func (a *API) firstContainer(s *state.Session) (*state.Agent, string, error) {
	for _, ct := range s.Containers {
		if ct.Index != 0 || ct.Agent == "" {
			continue
		}
		ag, err := a.cluster.Read().Agent(ct.Agent)
		if err != nil {
			return nil, "", err
		}
		if ag == nil || ag.Address == "" {
			return nil, "", apierr.New(apierr.Conflict, "the agent of session %s (%s) is no longer known", s.ID, ct.Agent)
		}
		return ag, state.ContainerID(s.ID, 0), nil
	}
	return nil, "", apierr.New(apierr.Conflict, "session %s is %s and has no container yet", s.ID, s.Status)
}

// callAgent sends one request to an agent's API with the agent's secret.
func (a *API) callAgent(ctx context.Context, ag *state.Agent, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.cfg.AgentScheme+"://"+ag.Address+path, rd)
	if err != nil {
		return nil, fmt.Errorf("build request to agent %s: %w", ag.ID, err)
	}
	req.Header.Set("Authorization", "Bearer "+ag.Secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.cfg.AgentTransport.RoundTrip(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, apierr.New(apierr.Unavailable, "agent %s did not answer in time", ag.ID)
		}
		a.log.Warn("call agent", "agent", ag.ID, "address", ag.Address, "err", err)
		return nil, apierr.New(apierr.Unavailable, "could not reach agent %s at %s; retry, or check the agent", ag.ID, ag.Address)
	}
	return resp, nil
}

// agentFailed turns an agent's error answer into the caller's: the
// container gone or stopped is a conflict with the session's state; any
// other failure is the agent's (502), with its reason.
func (a *API) agentFailed(c *Call, ag *state.Agent, s *state.Session, resp *http.Response) error {
	var p api.Problem
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	detail := string(bytes.TrimSpace(raw))
	if json.Unmarshal(raw, &p) == nil && p.Detail != "" {
		detail = p.Detail
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return apierr.New(apierr.Conflict, "the container of session %s is gone from agent %s", s.ID, ag.ID)
	case http.StatusConflict:
		return apierr.New(apierr.Conflict, "the container of session %s is not running: %s", s.ID, detail)
	case http.StatusUnauthorized:
		a.log.Error("agent refused the managers' secret", "agent", ag.ID)
	}
	return a.agentProblem(c, ag, fmt.Sprintf("agent %s answered %d: %s", ag.ID, resp.StatusCode, detail))
}

// agentProblem answers 502: the manager is fine, the agent behind it is not.
func (a *API) agentProblem(c *Call, ag *state.Agent, detail string) error {
	a.log.Warn("agent call failed", "agent", ag.ID, "detail", detail)
	writeProblem(c.W, &api.Problem{Type: problemAgent, Title: "Agent failed", Status: http.StatusBadGateway, Detail: detail})
	return nil
}

// flushWriter sends each chunk on at once, so a long log arrives as it is read.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}
