package httpapi

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/auth"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/ids"
)

// Bounds of an agent token's request: more agents than this from one token,
// or a token living longer than a year, is a master key again.
const (
	maxAgentTokenUses = 10000
	maxAgentTokenTTL  = 365 * 24 * 60 * 60 // seconds
)

// agentTokenPrefix starts every issued agent token, so a leaked one is
// recognisable (secret scanners, logs) for what it is.
const agentTokenPrefix = "berth-agent-"

// createAgentToken is POST /v1/agents/tokens (superadmin): a join token
// for agents, shown only in this answer; the managers keep its SHA-256.
func (a *API) createAgentToken(c *Call) error {
	var req api.AgentTokenCreate
	if err := c.Decode(&req); err != nil {
		return err
	}
	var bad apierr.Fields
	if req.Uses < 0 || req.Uses > maxAgentTokenUses {
		bad.Add("uses", "uses must be from 0 (any number of agents) to %d", maxAgentTokenUses)
	}
	if req.TTL < 0 || req.TTL > maxAgentTokenTTL {
		bad.Add("ttl", "ttl must be from 0 (never expires) to %d seconds (a year)", maxAgentTokenTTL)
	}
	if err := bad.Err(); err != nil {
		return err
	}
	id, err := ids.New(a.rnd, ids.AgentToken)
	if err != nil {
		return err
	}
	secret, err := auth.NewToken(a.rnd)
	if err != nil {
		return err
	}
	token := agentTokenPrefix + secret
	now := a.now().UTC()
	k := state.AgentToken{ID: id, Hash: auth.HashToken(token), Uses: req.Uses, AutoApprove: req.AutoApprove,
		CreatedBy: c.Who.User.Email, CreatedAt: now}
	if req.TTL > 0 {
		exp := now.Add(time.Duration(req.TTL) * time.Second)
		k.ExpiresAt = &exp
	}
	rec, err := propose[*state.AgentToken](c, fsm.AgentTokenCreate{Token: k})
	if err != nil {
		return err
	}
	a.log.Info("agent token created", "token_id", id, "by", c.Who.User.Email, "uses", req.Uses, "ttl_s", req.TTL, "auto_approve", req.AutoApprove)
	out := agentTokenView(rec, now)
	out.Token = token
	return c.JSON(http.StatusCreated, out)
}

// agentTokenView is a token without its hash; status is judged at now.
func agentTokenView(k *state.AgentToken, now time.Time) api.AgentToken {
	status := api.AgentTokenActive
	switch {
	case k.RevokedAt != nil:
		status = api.AgentTokenRevoked
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		status = api.AgentTokenExpired
	case k.Uses > 0 && k.Used >= k.Uses:
		status = api.AgentTokenUsedUp
	}
	return api.AgentToken{ID: k.ID, Status: status, Uses: k.Uses, Used: k.Used, ExpiresAt: k.ExpiresAt, AutoApprove: k.AutoApprove,
		CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt}
}

// listAgentTokens is GET /v1/agents/tokens (admins): every token, never
// a secret.
func (a *API) listAgentTokens(c *Call) error {
	toks, err := a.cluster.Read().AgentTokens()
	if err != nil {
		return err
	}
	now := a.now()
	views := make([]api.AgentToken, len(toks))
	for i, k := range toks {
		views[i] = agentTokenView(k, now)
	}
	out, err := pageOf(c, views, func(v api.AgentToken) string { return v.ID })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// revokeAgentToken is DELETE /v1/agents/tokens/{id} (superadmin).
func (a *API) revokeAgentToken(c *Call) error {
	id := c.R.PathValue("id")
	if err := c.Propose(fsm.AgentTokenRevoke{ID: id, At: a.now().UTC()}); err != nil {
		return err
	}
	a.log.Info("agent token revoked", "token_id", id, "by", c.Who.User.Email)
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

// approveAgent is POST /v1/agents/{id}/approve (superadmin): sessions may
// be placed on the agent from now on.
func (a *API) approveAgent(c *Call) error {
	id := c.R.PathValue("id")
	ag, err := propose[*state.Agent](c, fsm.AgentApprove{ID: id, By: c.Who.User.Email, At: a.now().UTC()})
	if err != nil {
		return err
	}
	a.log.Info("agent approved", "agent", id, "by", ag.ApprovedBy, "address", ag.Address)
	out, err := a.agentView(a.cluster.Read(), ag)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// joinAdmission is what a new agent's token says: the managers' shared
// token (approved as -agent-auto-approve says), or an issued token, which
// the FSM checks and counts when the agent is recorded.
type joinAdmission struct {
	shared    bool
	tokenHash string
}

// agentJoinToken checks the X-Berth-Agent-Token of a new agent. The
// shared token is compared in constant time; an issued token is found by
// its hash. The look-up here only answers early: whether the token still
// admits an agent is decided again inside Apply.
func (a *API) agentJoinToken(c *Call) (joinAdmission, error) {
	got := c.R.Header.Get(api.AgentTokenHeader)
	if a.cfg.AgentToken != "" && subtle.ConstantTimeCompare([]byte(got), []byte(a.cfg.AgentToken)) == 1 {
		return joinAdmission{shared: true}, nil
	}
	if got == "" {
		return joinAdmission{}, apierr.New(apierr.Unauthorized, fsm.WrongAgentToken)
	}
	hash := auth.HashToken(got)
	k, err := a.cluster.Read().AgentTokenByHash(hash)
	if err != nil {
		return joinAdmission{}, err
	}
	if k == nil {
		return joinAdmission{}, apierr.New(apierr.Unauthorized, fsm.WrongAgentToken)
	}
	if why := k.Refusal(a.now()); why != "" {
		return joinAdmission{}, apierr.New(apierr.Unauthorized, "%s; ask a superadmin for a new one (berth agent token create)", why)
	}
	return joinAdmission{tokenHash: hash}, nil
}

// tokenGuessesLeft refuses a client address that failed too often with a
// secret that admits a machine (an agent token, an agent's secret on
// registration, the join token): 429 until its bucket refills, even when
// this try would be right, so the answer never confirms a guess.
func (a *API) tokenGuessesLeft(c *Call) error {
	if blocked, wait := a.tokenFailures.Blocked(a.clientAddr(c.R)); blocked {
		return &apierr.Error{Kind: apierr.RateLimited, RetryAfter: wait,
			Detail: fmt.Sprintf("too many failed token attempts from this address; wait %s and try again", wait.Round(time.Second))}
	}
	return nil
}

// tokenFailed counts a refused token against the caller's address when
// err is an authentication failure, and returns err.
func (a *API) tokenFailed(c *Call, what string, err error) error {
	if apierr.Is(err, apierr.Unauthorized) {
		addr := a.clientAddr(c.R)
		a.tokenFailures.Allow(addr)
		a.log.Warn("refused "+what, "client", addr, "reason", apierr.Problem(err).Detail)
	}
	return err
}
