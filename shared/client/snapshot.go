package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// SnapshotInfo says what a saved snapshot holds.
type SnapshotInfo struct {
	Index, Term uint64
	Bytes       int64
}

// SaveSnapshot has the leader take a Raft snapshot and writes it to w
// (superadmin); it is the cluster's backup.
func (c *Client) SaveSnapshot(ctx context.Context, w io.Writer) (*SnapshotInfo, error) {
	resp, err := c.DoRaw(ctx, http.MethodPost, "/v1/operator/snapshot", nil, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return nil, fmt.Errorf("download snapshot: %w", err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return nil, fmt.Errorf("download snapshot: got %d of %d bytes", n, resp.ContentLength)
	}
	info := &SnapshotInfo{Bytes: n}
	info.Index, _ = strconv.ParseUint(resp.Header.Get("X-Berth-Snapshot-Index"), 10, 64)
	info.Term, _ = strconv.ParseUint(resp.Header.Get("X-Berth-Snapshot-Term"), 10, 64)
	return info, nil
}

// RestoreSnapshot replaces the whole cluster state with a snapshot SaveSnapshot
// wrote (superadmin, with a login token: the body is not signed).
func (c *Client) RestoreSnapshot(ctx context.Context, r io.Reader) error {
	resp, err := c.DoRaw(ctx, http.MethodPost, "/v1/operator/snapshot/restore", nil, r, "application/octet-stream")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
