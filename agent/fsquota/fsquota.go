// Package fsquota bounds storage folders with the filesystem's project
// quotas (ext4 and XFS mounted with prjquota): every file of a folder's
// directory is in the folder's project, and the project has a hard block
// limit, so what sessions write through a read-write mount stops at the
// limit with EDQUOT. Quotas is the agent's edge to it; System is the
// kernel's, through ioctl(2) and quotactl_fd(2) (no quota tools needed).
package fsquota

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Quotas is what the agent needs of project quotas. host is a folder
// host's directory (-folder-host NAME=PATH), folder a folder id: the
// folder's directory is host/folder.
type Quotas interface {
	// Enforced reports whether the filesystem holding host enforces
	// project quotas.
	Enforced(host string) (bool, error)
	// Label puts the folder's directory and everything in it into the
	// folder's project (ProjectID; PROJINHERIT on directories, so what is
	// made there later follows) and returns the project id.
	Label(ctx context.Context, host, folder string) (project uint32, err error)
	// SetLimit sets the project's hard block limit to bytes (rounded up
	// to whole KiB; 0 allows nothing more to be written).
	SetLimit(host string, project uint32, bytes int64) error
	// ClearLimit removes the project's limit.
	ClearLimit(host string, project uint32) error
}

// System is Quotas on this machine's kernel.
type System struct {
	// Mountinfo is the file listing the mounts (default
	// /proc/self/mountinfo).
	Mountinfo string
}

// Enforced looks up the mount holding host in mountinfo.
func (s System) Enforced(host string) (bool, error) {
	path, err := resolve(host)
	if err != nil {
		return false, fmt.Errorf("resolve folder host %s: %w", host, err)
	}
	name := s.Mountinfo
	if name == "" {
		name = "/proc/self/mountinfo"
	}
	f, err := os.Open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	mounts, err := ParseMountinfo(f)
	if err != nil {
		return false, err
	}
	m, ok := MountOf(mounts, path)
	return ok && m.ProjectQuotas(), nil
}

// Label gives the folder the first of its ProjectIDs that no other
// directory of the host carries (two folder ids may hash alike; this way
// they never share a project), then walks the folder's directory and
// relabels what is not in that project yet. Each directory is relabelled
// before it is read, so a file made in it during the walk is either
// listed or inherits the id. The walk does not follow symlinks out of the
// folder (os.Root) and leaves symlinks, pipes and devices alone: only
// directories and regular files hold blocks.
func (s System) Label(ctx context.Context, host, folder string) (uint32, error) {
	if !filepath.IsLocal(folder) || filepath.Base(folder) != folder {
		return 0, fmt.Errorf("folder id %q is not a plain name", folder)
	}
	taken, err := s.projectsBeside(host, folder)
	if err != nil {
		return 0, err
	}
	id := uint32(0)
	for k := 0; k < maxAttempts && id == 0; k++ {
		if p := ProjectID(folder, k); !taken[p] {
			id = p
		}
	}
	if id == 0 {
		return 0, fmt.Errorf("folder %s: its %d project ids are all taken by other folders of %s", folder, maxAttempts, host)
	}
	root, err := os.OpenRoot(filepath.Join(host, folder))
	if err != nil {
		return 0, fmt.Errorf("open folder %s: %w", folder, err)
	}
	defer root.Close()
	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walked
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		return relabel(root, name, id)
	})
	if err != nil {
		return 0, fmt.Errorf("put folder %s into project %d: %w", folder, id, err)
	}
	return id, nil
}

// relabel gives one file or directory of the folder project id id, if it
// is not in it yet.
func relabel(root *os.Root, name string, id uint32) error {
	// O_NONBLOCK: what was a file when listed may be a pipe by now.
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.IsDir() && !st.Mode().IsRegular() {
		return nil
	}
	cur, inherit, err := project(f)
	if err != nil {
		return err
	}
	if cur == id && (inherit || !st.IsDir()) {
		return nil
	}
	return setProject(f, id, st.IsDir())
}

// projectsBeside are the project ids of the host's other directories.
func (s System) projectsBeside(host, folder string) (map[uint32]bool, error) {
	entries, err := os.ReadDir(host)
	if err != nil {
		return nil, fmt.Errorf("list folder host %s: %w", host, err)
	}
	taken := map[uint32]bool{}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == folder {
			continue
		}
		f, err := os.OpenFile(filepath.Join(host, e.Name()), os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", e.Name(), err)
		}
		id, _, err := project(f)
		f.Close()
		if err != nil {
			return nil, err
		}
		taken[id] = true
	}
	return taken, nil
}

// SetLimit sets the project's hard block limit.
func (s System) SetLimit(host string, project uint32, bytes int64) error {
	if bytes < 0 {
		return fmt.Errorf("limit of project %d: %d bytes is negative", project, bytes)
	}
	// At least 1 KiB: 0 would mean no limit at all.
	kib := max(1, (uint64(bytes)+1023)/1024)
	return s.limit(host, project, kib)
}

// ClearLimit removes the project's limit.
func (s System) ClearLimit(host string, project uint32) error { return s.limit(host, project, 0) }

func (s System) limit(host string, project uint32, kib uint64) error {
	f, err := os.OpenFile(host, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("open folder host %s: %w", host, err)
	}
	defer f.Close()
	if err := setBlockLimit(f, project, kib); err != nil {
		return fmt.Errorf("set the block limit of project %d on %s to %d KiB (is it ext4 or XFS mounted with prjquota?): %w", project, host, kib, err)
	}
	return nil
}
