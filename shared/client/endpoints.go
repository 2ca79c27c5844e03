package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-cluster/berth/shared/api"
)

// Login exchanges an email and password for a bearer token. The request is
// sent without credentials, and the token is not kept: build a new Client
// with Config.Token to use it.
func (c *Client) Login(ctx context.Context, email, password string) (*api.LoginResponse, error) {
	var out api.LoginResponse
	in := api.LoginRequest{Email: email, Password: password}
	if err := c.doJSON(ctx, false, http.MethodPost, "/v1/auth/login", nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Logout ends the session of the client's bearer token.
func (c *Client) Logout(ctx context.Context) error {
	return c.Do(ctx, http.MethodPost, "/v1/auth/logout", nil, nil, nil)
}

// WhoAmI describes the caller.
func (c *Client) WhoAmI(ctx context.Context) (*api.WhoAmI, error) {
	return get[api.WhoAmI](ctx, c, "/v1/auth/whoami", nil)
}

// ChangePassword changes the caller's password.
func (c *Client) ChangePassword(ctx context.Context, oldPassword, newPassword string) error {
	in := api.PasswordChange{OldPassword: oldPassword, NewPassword: newPassword}
	return c.Do(ctx, http.MethodPost, "/v1/auth/password", nil, in, nil)
}

// Info returns GET /v1/info.
func (c *Client) Info(ctx context.Context) (*api.Info, error) {
	return get[api.Info](ctx, c, "/v1/info", nil)
}

// RaftConfiguration returns the Raft view of the cluster (superadmin).
func (c *Client) RaftConfiguration(ctx context.Context) (*api.RaftConfiguration, error) {
	return get[api.RaftConfiguration](ctx, c, "/v1/operator/raft", nil)
}

// RemoveRaftPeer removes a manager from the Raft configuration (superadmin).
func (c *Client) RemoveRaftPeer(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/operator/raft/peers/"+url.PathEscape(id), nil, nil, nil)
}

// ListUsers returns one page of users; query takes status, email, username,
// group, limit and cursor.
func (c *Client) ListUsers(ctx context.Context, query url.Values) (*api.List[api.User], error) {
	return get[api.List[api.User]](ctx, c, "/v1/users", query)
}

// GetUser returns one user by email.
func (c *Client) GetUser(ctx context.Context, email string) (*api.User, error) {
	return get[api.User](ctx, c, "/v1/users/"+url.PathEscape(email), nil)
}

// CreateUser sends POST /v1/users and returns the user with its first
// keypair, whose secret key the manager sends only this once. body is
// usually an api.UserCreate; any value with its JSON shape will do.
func (c *Client) CreateUser(ctx context.Context, body any) (*api.UserCreated, error) {
	var out api.UserCreated
	if err := c.Do(ctx, http.MethodPost, "/v1/users", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateUser sends PATCH /v1/users/{email} with body (usually an
// api.UserPatch, whose nil fields stay unchanged) and returns the user.
func (c *Client) UpdateUser(ctx context.Context, email string, body any) (*api.User, error) {
	var out api.User
	if err := c.Do(ctx, http.MethodPatch, "/v1/users/"+url.PathEscape(email), nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListKeypairs returns one page of keypairs; query takes user, is_active,
// limit and cursor.
func (c *Client) ListKeypairs(ctx context.Context, query url.Values) (*api.List[api.Keypair], error) {
	return get[api.List[api.Keypair]](ctx, c, "/v1/keypairs", query)
}

// ListResourcePolicies returns one page of resource policies.
func (c *Client) ListResourcePolicies(ctx context.Context, query url.Values) (*api.List[api.ResourcePolicy], error) {
	return get[api.List[api.ResourcePolicy]](ctx, c, "/v1/resource-policies", query)
}

// ListDomains returns one page of domains.
func (c *Client) ListDomains(ctx context.Context, query url.Values) (*api.List[api.Domain], error) {
	return get[api.List[api.Domain]](ctx, c, "/v1/domains", query)
}

func get[T any](ctx context.Context, c *Client, path string, query url.Values) (*T, error) {
	var out T
	if err := c.Do(ctx, http.MethodGet, path, query, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RecalculateUsage repairs derived occupancy and returns what differed
// (superadmin).
func (c *Client) RecalculateUsage(ctx context.Context) (*api.UsageRecalculation, error) {
	var out api.UsageRecalculation
	if err := c.Do(ctx, http.MethodPost, "/v1/maintenance/recalculate-usage", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
