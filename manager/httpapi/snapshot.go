package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/fsm"
)

// MaxSnapshot bounds a snapshot sent to be restored; it is read whole into
// memory before the leader installs it.
const MaxSnapshot = 1 << 30

// SnapshotContentType is the media type of a Raft snapshot download.
const SnapshotContentType = "application/vnd.berth.snapshot"

// saveSnapshot answers with the leader's current state as a Raft snapshot,
// the backup an operator keeps.
func (a *API) saveSnapshot(c *Call) error {
	meta, rc, err := a.cluster.Node().OpenSnapshot()
	if err != nil {
		return err
	}
	defer rc.Close()
	h := c.W.Header()
	h.Set("Content-Type", SnapshotContentType)
	h.Set("Content-Length", strconv.FormatInt(meta.Size, 10))
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fmt.Sprintf("berth-%d-%d.snap", meta.Term, meta.Index)))
	h.Set("X-Berth-Snapshot-Index", strconv.FormatUint(meta.Index, 10))
	h.Set("X-Berth-Snapshot-Term", strconv.FormatUint(meta.Term, 10))
	c.W.WriteHeader(http.StatusOK)
	if _, err := io.Copy(c.W, rc); err != nil {
		// The status is sent; a short body is what the client sees.
		a.log.Warn("send snapshot", "index", meta.Index, "err", err)
	}
	return nil
}

// restoreSnapshot replaces the cluster's whole state with an uploaded
// snapshot (disaster recovery).
func (a *API) restoreSnapshot(c *Call) error {
	if c.R.ContentLength > MaxSnapshot {
		return apierr.New(apierr.TooLarge, "a snapshot of %d bytes is over the %d-byte limit", c.R.ContentLength, MaxSnapshot)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.W, c.R.Body, MaxSnapshot))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return apierr.New(apierr.TooLarge, "the snapshot is over the %d-byte limit", MaxSnapshot)
		}
		return apierr.New(apierr.Invalid, "could not read the snapshot: %v", err)
	}
	if len(body) == 0 {
		return apierr.New(apierr.Invalid, "send the snapshot file as the request body (berth operator snapshot save wrote it)")
	}
	if err := fsm.CheckSnapshot(bytes.NewReader(body)); err != nil {
		return apierr.New(apierr.Invalid, "this is not a snapshot this manager can restore (%v); take one with berth operator snapshot save", err)
	}
	if err := a.cluster.Node().Restore(bytes.NewReader(body), int64(len(body))); err != nil {
		return err
	}
	a.log.Warn("cluster state replaced from an uploaded snapshot", "bytes", len(body), "by", c.Who.User.Email)
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}
