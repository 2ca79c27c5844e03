package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-cluster/berth/shared/api"
)

// ListRegistries is GET /v1/registries (admins).
func (c *Client) ListRegistries(ctx context.Context, query url.Values) (*api.List[api.Registry], error) {
	return get[api.List[api.Registry]](ctx, c, "/v1/registries", query)
}

// GetRegistry is GET /v1/registries/{name}.
func (c *Client) GetRegistry(ctx context.Context, name string) (*api.Registry, error) {
	return get[api.Registry](ctx, c, registryPath(name), nil)
}

// CreateRegistry is POST /v1/registries (superadmin).
func (c *Client) CreateRegistry(ctx context.Context, in api.RegistryRequest) (*api.Registry, error) {
	return call[api.Registry](ctx, c, http.MethodPost, "/v1/registries", in)
}

// UpdateRegistry is PATCH /v1/registries/{name} (superadmin).
func (c *Client) UpdateRegistry(ctx context.Context, name string, in api.RegistryRequest) (*api.Registry, error) {
	return call[api.Registry](ctx, c, http.MethodPatch, registryPath(name), in)
}

// DeleteRegistry is DELETE /v1/registries/{name} (superadmin).
func (c *Client) DeleteRegistry(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, registryPath(name), nil, nil, nil)
}

func registryPath(name string) string { return "/v1/registries/" + url.PathEscape(name) }

// PullImage is POST /v1/images/pull (admins): the agents (none: every
// ALIVE, schedulable one) pull the image ahead of time.
func (c *Client) PullImage(ctx context.Context, in api.ImagePullRequest) (*api.ImagePullAccepted, error) {
	return call[api.ImagePullAccepted](ctx, c, http.MethodPost, "/v1/images/pull", in)
}

// RemoveImage is DELETE /v1/images/{ref}?agent=ID (admins).
func (c *Client) RemoveImage(ctx context.Context, ref, agent string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/images/"+(&url.URL{Path: ref}).EscapedPath(), url.Values{"agent": {agent}}, nil, nil)
}
