package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-cluster/berth/shared/api"
)

// Usage is GET /v1/usage with the query (from, to, group_by, step).
func (c *Client) Usage(ctx context.Context, query url.Values) (*api.Usage, error) {
	var out api.Usage
	if err := c.Do(ctx, http.MethodGet, "/v1/usage", query, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
