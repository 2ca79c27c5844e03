package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-cluster/berth/shared/api"
)

// ListFolderHosts is GET /v1/folder-hosts.
func (c *Client) ListFolderHosts(ctx context.Context) (*api.List[api.FolderHost], error) {
	return call[api.List[api.FolderHost]](ctx, c, http.MethodGet, "/v1/folder-hosts", nil)
}

// ListFolders is GET /v1/folders.
func (c *Client) ListFolders(ctx context.Context, query url.Values) (*api.List[api.Folder], error) {
	var out api.List[api.Folder]
	if err := c.Do(ctx, http.MethodGet, "/v1/folders", query, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetFolder is GET /v1/folders/{id} (id or name).
func (c *Client) GetFolder(ctx context.Context, ref string) (*api.Folder, error) {
	return call[api.Folder](ctx, c, http.MethodGet, folderPath(ref), nil)
}

// CreateFolder is POST /v1/folders.
func (c *Client) CreateFolder(ctx context.Context, in api.FolderCreate) (*api.Folder, error) {
	return call[api.Folder](ctx, c, http.MethodPost, "/v1/folders", in)
}

// DeleteFolder is DELETE /v1/folders/{id}.
func (c *Client) DeleteFolder(ctx context.Context, ref string) error {
	return c.Do(ctx, http.MethodDelete, folderPath(ref), nil, nil, nil)
}

// InviteToFolder is POST /v1/folders/{id}/invitations.
func (c *Client) InviteToFolder(ctx context.Context, ref string, in api.InvitationCreate) (*api.Invitation, error) {
	return call[api.Invitation](ctx, c, http.MethodPost, folderPath(ref)+"/invitations", in)
}

// ListInvitations is GET /v1/invitations.
func (c *Client) ListInvitations(ctx context.Context, query url.Values) (*api.List[api.Invitation], error) {
	var out api.List[api.Invitation]
	if err := c.Do(ctx, http.MethodGet, "/v1/invitations", query, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AnswerInvitation accepts or rejects an invitation.
func (c *Client) AnswerInvitation(ctx context.Context, id string, accept bool) (*api.Invitation, error) {
	verb := "reject"
	if accept {
		verb = "accept"
	}
	return call[api.Invitation](ctx, c, http.MethodPost, "/v1/invitations/"+url.PathEscape(id)+"/"+verb, nil)
}

// DeleteInvitation is DELETE /v1/invitations/{id}: the inviter revokes it,
// the invitee leaves the folder.
func (c *Client) DeleteInvitation(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/invitations/"+url.PathEscape(id), nil, nil, nil)
}

// ListFiles is GET /v1/folders/{id}/files?path=DIR.
func (c *Client) ListFiles(ctx context.Context, ref, dir string) (*api.List[api.FileEntry], error) {
	var out api.List[api.FileEntry]
	q := url.Values{}
	if dir != "" {
		q.Set("path", dir)
	}
	if err := c.Do(ctx, http.MethodGet, folderPath(ref)+"/files", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Upload is PUT /v1/folders/{id}/files/{path} with body as the content.
func (c *Client) Upload(ctx context.Context, ref, path string, body io.Reader) (*api.FileEntry, error) {
	p, err := filePath(ref, path)
	if err != nil {
		return nil, err
	}
	resp, err := c.DoRaw(ctx, http.MethodPut, p, nil, body, "application/octet-stream")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out api.FileEntry
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("PUT %s: %w", p, err)
	}
	return &out, nil
}

// Download is GET /v1/folders/{id}/files/{path}; the caller closes the body.
func (c *Client) Download(ctx context.Context, ref, path string) (io.ReadCloser, error) {
	p, err := filePath(ref, path)
	if err != nil {
		return nil, err
	}
	resp, err := c.DoRaw(ctx, http.MethodGet, p, nil, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// DeleteFile is DELETE /v1/folders/{id}/files/{path}.
func (c *Client) DeleteFile(ctx context.Context, ref, path string) error {
	p, err := filePath(ref, path)
	if err != nil {
		return err
	}
	return c.Do(ctx, http.MethodDelete, p, nil, nil, nil)
}

// MakeDirectory is POST /v1/folders/{id}/directories.
func (c *Client) MakeDirectory(ctx context.Context, ref, path string) (*api.FileEntry, error) {
	return call[api.FileEntry](ctx, c, http.MethodPost, folderPath(ref)+"/directories", api.DirectoryCreate{Path: path})
}

func folderPath(ref string) string { return "/v1/folders/" + url.PathEscape(ref) }

// filePath escapes each part of a path inside a folder.
func filePath(ref, path string) (string, error) {
	path = strings.TrimPrefix(path, "/")
	if path == "" {
		return "", fmt.Errorf("name a file inside folder %s", ref)
	}
	parts := strings.Split(path, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return folderPath(ref) + "/files/" + strings.Join(parts, "/"), nil
}
