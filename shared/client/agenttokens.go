package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-cluster/berth/shared/api"
)

// Agent join tokens and approval (superadmin; admins may list tokens).

// CreateAgentToken issues an agent join token. The answer's Token is the
// only time the token is shown: hand it to the new node (a file or
// BERTH_AGENT_TOKEN), never on a command line.
func (c *Client) CreateAgentToken(ctx context.Context, in api.AgentTokenCreate) (*api.AgentToken, error) {
	return call[api.AgentToken](ctx, c, http.MethodPost, "/v1/agents/tokens", in)
}

// ListAgentTokens returns one page of agent tokens (never the tokens
// themselves); query takes limit and cursor.
func (c *Client) ListAgentTokens(ctx context.Context, query url.Values) (*api.List[api.AgentToken], error) {
	return get[api.List[api.AgentToken]](ctx, c, "/v1/agents/tokens", query)
}

// RevokeAgentToken ends a token: no agent registers with it afterwards.
func (c *Client) RevokeAgentToken(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/agents/tokens/"+url.PathEscape(id), nil, nil, nil)
}

// ApproveAgent lets sessions be placed on an agent that joined with a
// token without auto_approve.
func (c *Client) ApproveAgent(ctx context.Context, id string) (*api.Agent, error) {
	return call[api.Agent](ctx, c, http.MethodPost, agentPath(id)+"/approve", nil)
}
