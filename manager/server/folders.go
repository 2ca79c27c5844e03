package server

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/berth-cluster/berth/manager/folderfs"
	"github.com/berth-cluster/berth/manager/fsm"
)

// DefaultFolderID is the uid and gid folders belong to when -folder-uid and
// -folder-gid are not given: the agents' default container user (1000,
// "work"), so that sessions can write the folders they mount.
const DefaultFolderID = 1000

// folderOwner is who folders belong to. Only root can give a file to
// another user; a manager that is not root (the systemd unit's berth user)
// keeps them its own and gives them the group, which it may do only for a
// group it is in: otherwise sessions could not write the folders, and the
// manager refuses to start.
func folderOwner(cfg Config) ([]folderfs.Option, error) {
	uid, gid := cfg.FolderUID, cfg.FolderGID
	if uid == 0 {
		uid = DefaultFolderID
	}
	if gid == 0 {
		gid = DefaultFolderID
	}
	if len(cfg.FolderHosts) == 0 {
		return nil, nil
	}
	if os.Geteuid() == 0 {
		return []folderfs.Option{folderfs.WithOwner(uid, gid)}, nil
	}
	groups, err := os.Getgroups()
	if err != nil {
		return nil, fmt.Errorf("read the manager's groups: %w", err)
	}
	if os.Getegid() != gid && !slices.Contains(groups, gid) {
		return nil, fmt.Errorf("the manager runs as uid %d, not root, and is not in group %d (-folder-gid): it could not give folders to the sessions' group; add its user to that group (usermod -aG; under the systemd unit, which forbids chown, make it the primary group: Group=) or run it as root", os.Geteuid(), gid)
	}
	// -1 keeps the owner: the manager's own user.
	return []folderfs.Option{folderfs.WithOwner(-1, gid)}, nil
}

// defaultFolderUsageEvery is how often the leader measures the storage
// folders on its hosts. Writes through the files API are checked against
// max_vfolder_size as they happen; this loop catches what sessions write,
// marking a folder over quota so it is no longer mounted read-write.
const defaultFolderUsageEvery = 30 * time.Second

// folderUsageTTL is how long a folder's measured usage is reused by upload
// checks; each write through the API forgets it, so only what sessions wrote
// meanwhile can be missed for this long.
const folderUsageTTL = 5 * time.Second

// startFolderUsageLoop runs the folder usage loop for one leadership; the
// returned function stops it and waits until it has.
func (s *Server) startFolderUsageLoop(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		every := s.cfg.FolderUsageEvery
		if every <= 0 {
			every = defaultFolderUsageEvery
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.measureFolders(ctx)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// measureFolders records, in one entry, the usage of every folder on a
// host this manager has whose usage changed; the FSM marks over-quota ones
// against their policy.
func (s *Server) measureFolders(ctx context.Context) {
	tx := s.fsm.State().Read()
	folders, err := tx.Folders()
	if err != nil {
		s.log.Error("list folders to measure", "err", err)
		return
	}
	var usage []fsm.FolderUsage
	for _, f := range folders {
		if ctx.Err() != nil {
			return
		}
		if !s.folders.Has(f.Host) {
			continue
		}
		used, err := s.folders.Usage(f.Host, f.ID)
		if err != nil {
			s.log.Warn("measure folder", "folder", f.ID, "host", f.Host, "err", err)
			continue
		}
		limit, err := tx.FolderSizeLimit(f)
		if err != nil {
			s.log.Error("folder size limit", "folder", f.ID, "err", err)
			continue
		}
		over := limit != nil && used > *limit
		if used != f.UsageBytes || over != f.OverQuota {
			usage = append(usage, fsm.FolderUsage{ID: f.ID, Bytes: used})
		}
	}
	if len(usage) == 0 {
		return
	}
	if _, err := s.propose(ctx, fsm.FoldersUsage{Usage: usage}); err != nil && ctx.Err() == nil {
		s.log.Warn("record folder usage", "folders", len(usage), "err", err)
	}
}
