package server

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/berth-cluster/berth/manager/folderfs"
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

// folderUsageTTL is how long a folder's measured usage is reused by upload
// checks; each write through the API forgets it, so only what sessions wrote
// meanwhile can be missed for this long.
const folderUsageTTL = 5 * time.Second
