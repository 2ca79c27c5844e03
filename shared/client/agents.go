package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/berth-cluster/berth/shared/api"
)

// Agents and images: the admin views, and the calls an agent makes.
//
// A new agent's client sends its join token (the managers' -agent-token,
// or one from CreateAgentToken) as a header and no secret:
//
//	client.Config{Addrs: managers, Header: http.Header{api.AgentTokenHeader: {joinToken}}}
//
// Once registered, the agent's secret is its credential for everything,
// registering again included: client.Config{Addrs: managers, Token: secret}.

// ListAgents returns one page of agents; query takes status (ALIVE or
// LOST), limit and cursor.
func (c *Client) ListAgents(ctx context.Context, query url.Values) (*api.List[api.Agent], error) {
	return get[api.List[api.Agent]](ctx, c, "/v1/agents", query)
}

// GetAgent returns one agent.
func (c *Client) GetAgent(ctx context.Context, id string) (*api.Agent, error) {
	return get[api.Agent](ctx, c, agentPath(id), nil)
}

// SetAgentSchedulable lets the scheduler place new sessions on the agent,
// or stops it from doing so (what runs there stays).
func (c *Client) SetAgentSchedulable(ctx context.Context, id string, schedulable bool) (*api.Agent, error) {
	return call[api.Agent](ctx, c, http.MethodPatch, agentPath(id), api.AgentPatch{Schedulable: &schedulable})
}

// ListImages returns the images of the ALIVE agents with the agents that
// have each; query takes limit and cursor.
func (c *Client) ListImages(ctx context.Context, query url.Values) (*api.List[api.ClusterImage], error) {
	return get[api.List[api.ClusterImage]](ctx, c, "/v1/images", query)
}

// RegisterAgent registers an agent. Without in.ID it is a new agent and the
// answer carries its id and secret (sent only this once); with in.ID the
// client's Token must be the agent's secret.
func (c *Client) RegisterAgent(ctx context.Context, in api.AgentRegister) (*api.AgentRegistered, error) {
	return call[api.AgentRegistered](ctx, c, http.MethodPost, "/v1/agents/register", in)
}

// AgentHeartbeat reports the agent's liveness, capacity, images and
// containers.
func (c *Client) AgentHeartbeat(ctx context.Context, id string, in api.AgentHeartbeat) (*api.HeartbeatAnswer, error) {
	return call[api.HeartbeatAnswer](ctx, c, http.MethodPost, agentPath(id)+"/heartbeat", in)
}

// AgentDesired returns the containers the agent should run. With index > 0
// the manager holds the answer until its state passes index or wait
// elapses (wait 0: the manager's default, 30s); ctx should allow for it.
func (c *Client) AgentDesired(ctx context.Context, id string, index uint64, wait time.Duration) (*api.DesiredState, error) {
	q := url.Values{}
	if index > 0 {
		q.Set("index", strconv.FormatUint(index, 10))
	}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	return get[api.DesiredState](ctx, c, agentPath(id)+"/desired", q)
}

func agentPath(id string) string { return "/v1/agents/" + url.PathEscape(id) }
