package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-cluster/berth/shared/api"
)

// GetResourcePolicy returns one resource policy by name.
func (c *Client) GetResourcePolicy(ctx context.Context, name string) (*api.ResourcePolicy, error) {
	return get[api.ResourcePolicy](ctx, c, policyPath(name), nil)
}

// CreateResourcePolicy sends POST /v1/resource-policies. body is a JSON
// object with the fields to set (api.ResourcePolicyRequest describes them);
// the manager gives absent ones their defaults.
func (c *Client) CreateResourcePolicy(ctx context.Context, body any) (*api.ResourcePolicy, error) {
	var out api.ResourcePolicy
	if err := c.Do(ctx, http.MethodPost, "/v1/resource-policies", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateResourcePolicy sends PATCH /v1/resource-policies/{name}. body holds
// only the fields to change; a field or slot sent as null becomes unlimited,
// which is why it is a map or raw object rather than a struct of pointers.
func (c *Client) UpdateResourcePolicy(ctx context.Context, name string, body any) (*api.ResourcePolicy, error) {
	var out api.ResourcePolicy
	if err := c.Do(ctx, http.MethodPatch, policyPath(name), nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteResourcePolicy deletes a policy no keypair holds.
func (c *Client) DeleteResourcePolicy(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, policyPath(name), nil, nil, nil)
}

// MyResources returns the resource indicator of the caller's keypair, or
// with accessKey set, of that keypair (admins: any; others: their own).
func (c *Client) MyResources(ctx context.Context, accessKey string) (*api.ResourceIndicator, error) {
	q := url.Values{}
	if accessKey != "" {
		q.Set("access_key", accessKey)
	}
	return get[api.ResourceIndicator](ctx, c, "/v1/resources/me", q)
}

func policyPath(name string) string { return "/v1/resource-policies/" + url.PathEscape(name) }
