package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/berth-cluster/berth/shared/api"
)

// Administration of keypairs, domains and groups, and the CSV exports.

// CreateKeypair makes a keypair for a user. The answer carries the secret
// key, which the manager sends only this once.
func (c *Client) CreateKeypair(ctx context.Context, in api.KeypairCreate) (*api.Keypair, error) {
	return call[api.Keypair](ctx, c, http.MethodPost, "/v1/keypairs", in)
}

// GetKeypair returns one keypair (without its secret).
func (c *Client) GetKeypair(ctx context.Context, accessKey string) (*api.Keypair, error) {
	return get[api.Keypair](ctx, c, keypairPath(accessKey), nil)
}

// UpdateKeypair changes the fields of in that are not nil: activity,
// resource policy, rate limit.
func (c *Client) UpdateKeypair(ctx context.Context, accessKey string, in api.KeypairPatch) (*api.Keypair, error) {
	return call[api.Keypair](ctx, c, http.MethodPatch, keypairPath(accessKey), in)
}

// DeleteKeypair deletes a keypair.
func (c *Client) DeleteKeypair(ctx context.Context, accessKey string) error {
	return c.Do(ctx, http.MethodDelete, keypairPath(accessKey), nil, nil, nil)
}

func keypairPath(accessKey string) string {
	return "/v1/keypairs/" + url.PathEscape(accessKey)
}

// CreateDomain creates a domain (superadmin).
func (c *Client) CreateDomain(ctx context.Context, in api.DomainCreate) (*api.Domain, error) {
	return call[api.Domain](ctx, c, http.MethodPost, "/v1/domains", in)
}

// ListGroups returns the groups of a domain.
func (c *Client) ListGroups(ctx context.Context, domain string) (*api.List[api.Group], error) {
	return get[api.List[api.Group]](ctx, c, groupsPath(domain), nil)
}

// CreateGroup creates a group in a domain.
func (c *Client) CreateGroup(ctx context.Context, domain string, in api.GroupCreate) (*api.Group, error) {
	return call[api.Group](ctx, c, http.MethodPost, groupsPath(domain), in)
}

// GetGroup returns one group with its members.
func (c *Client) GetGroup(ctx context.Context, domain, group string) (*api.GroupDetail, error) {
	return get[api.GroupDetail](ctx, c, groupPath(domain, group), nil)
}

// UpdateGroup changes the fields of in that are not nil.
func (c *Client) UpdateGroup(ctx context.Context, domain, group string, in api.GroupPatch) (*api.Group, error) {
	return call[api.Group](ctx, c, http.MethodPatch, groupPath(domain, group), in)
}

// ChangeGroupMembers adds and removes members (emails of users of the
// domain) in one call and returns the group as it is afterwards.
func (c *Client) ChangeGroupMembers(ctx context.Context, domain, group string, add, remove []string) (*api.GroupDetail, error) {
	in := api.GroupMembersChange{Add: add, Remove: remove}
	return call[api.GroupDetail](ctx, c, http.MethodPost, groupPath(domain, group)+"/members", in)
}

func groupsPath(domain string) string {
	return "/v1/domains/" + url.PathEscape(domain) + "/groups"
}

func groupPath(domain, group string) string {
	return groupsPath(domain) + "/" + url.PathEscape(group)
}

// Export downloads GET /v1/export/{kind}.csv, where kind is users,
// keypairs, resource-policies or sessions; query takes that kind's list
// filters and filename. The body is returned unread, so that a large export
// can be streamed to its destination; the caller must close it. A transfer
// the manager cuts short (it does so when it fails mid-way) surfaces as a
// read error, never as a silently short file.
func (c *Client) Export(ctx context.Context, kind string, query url.Values) (io.ReadCloser, error) {
	if kind == "" {
		return nil, errors.New("exporting CSV: no kind given (users, keypairs, resource-policies or sessions)")
	}
	resp, err := c.DoRaw(ctx, http.MethodGet, "/v1/export/"+url.PathEscape(kind)+".csv", query, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// call sends in with method to path and decodes the answer into a new T.
func call[T any](ctx context.Context, c *Client, method, path string, in any) (*T, error) {
	var out T
	if err := c.Do(ctx, method, path, nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
