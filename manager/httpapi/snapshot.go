package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
)

// MaxSnapshot bounds a snapshot sent to be restored; it is spooled to a
// file in the data directory, never held in memory.
const MaxSnapshot = 1 << 30

// SnapshotContentType is the media type of a Raft snapshot download.
const SnapshotContentType = "application/vnd.berth.snapshot"

// saveSnapshot answers with the leader's current state as a Raft snapshot,
// the backup an operator keeps.
func (a *API) saveSnapshot(c *Call) error {
	meta, rc, err := a.cluster.Raft().OpenSnapshot()
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
// snapshot (disaster recovery). The body streams to a file (the caller is
// authenticated by then, and the content hash is checked as it arrives),
// which is checked whole before Raft restores from it.
func (a *API) restoreSnapshot(c *Call) error {
	if c.R.ContentLength > MaxSnapshot {
		return apierr.New(apierr.TooLarge, "a snapshot of %d bytes is over the %d-byte limit", c.R.ContentLength, MaxSnapshot)
	}
	spool, err := os.CreateTemp(a.cfg.SpoolDir, ".restore-*.snap")
	if err != nil {
		return fmt.Errorf("spool the snapshot to restore: %w", err)
	}
	defer func() {
		spool.Close()
		if err := os.Remove(spool.Name()); err != nil {
			a.log.Warn("remove spooled snapshot", "file", spool.Name(), "err", err)
		}
	}()
	n, err := io.Copy(spool, io.LimitReader(c.R.Body, MaxSnapshot+1))
	if berr := bodyErr(err, "the snapshot"); berr != nil {
		return berr
	}
	if err != nil {
		return fmt.Errorf("spool the snapshot to restore: %w", err)
	}
	if n > MaxSnapshot {
		return apierr.New(apierr.TooLarge, "the snapshot is over the %d-byte limit", MaxSnapshot)
	}
	if n == 0 {
		return apierr.New(apierr.Invalid, "send the snapshot file as the request body (berth operator snapshot save wrote it)")
	}
	if err := fsm.CheckSnapshot(io.NewSectionReader(spool, 0, n)); err != nil {
		return apierr.New(apierr.Invalid, "this is not a snapshot this manager can restore (%v); take one with berth operator snapshot save", err)
	}
	// The snapshot's member records describe the cluster it was taken
	// from; the managers running now are what followers must forward to.
	live, err := a.cluster.Read().Members()
	if err != nil {
		return err
	}
	if err := a.cluster.Raft().Restore(io.NewSectionReader(spool, 0, n), n); err != nil {
		return err
	}
	if err := a.keepMembers(c, live); err != nil {
		return fmt.Errorf("the snapshot was restored, but recording the running managers' addresses again failed (the next leader records its own): %w", err)
	}
	a.log.Warn("cluster state replaced from an uploaded snapshot", "bytes", n, "by", c.Who.User.Email)
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

// keepMembers makes the member records after a restore those of the
// managers in the Raft configuration, with the addresses they had before it.
func (a *API) keepMembers(c *Call, live []*state.Member) error {
	servers, err := a.cluster.Raft().Servers()
	if err != nil {
		return err
	}
	inRaft := map[string]bool{}
	for _, s := range servers {
		inRaft[string(s.ID)] = true
	}
	restored, err := a.cluster.Read().Members()
	if err != nil {
		return err
	}
	for _, m := range restored {
		if !inRaft[m.ID] {
			if err := c.Propose(fsm.MemberDelete{ID: m.ID}); err != nil {
				return err
			}
		}
	}
	for _, m := range live {
		if !inRaft[m.ID] {
			continue
		}
		have, err := a.cluster.Read().Member(m.ID)
		if err != nil {
			return err
		}
		if have != nil && have.HTTPAddr == m.HTTPAddr && have.RaftAddr == m.RaftAddr {
			continue
		}
		if err := c.Propose(fsm.MemberPut{Member: state.Member{ID: m.ID, RaftAddr: m.RaftAddr, HTTPAddr: m.HTTPAddr}}); err != nil {
			return err
		}
	}
	return nil
}
