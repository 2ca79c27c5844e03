package containerd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/identifiers"

	"github.com/berth-cluster/berth/agent/runtime"
)

// homePath is the host directory of a container's home (Spec.Home).
func (r *Runtime) homePath(id string) string {
	return filepath.Join(r.cfg.HomeDir, id)
}

// makeHome gives a container a fresh home directory, 0750 and owned by its
// user as the host sees it (through the user namespace map when there is
// one), so the session can write there and other host accounts cannot
// look in. A directory left by a container that no longer exists (an agent
// that died mid-start) is replaced; a living container's is never touched.
func (r *Runtime) makeHome(ctx context.Context, id string, u runtime.User) (string, error) {
	if r.cfg.HomeDir == "" {
		return "", errors.New("the runtime has no home directory configured (Config.HomeDir)")
	}
	dir := r.homePath(id)
	err := os.Mkdir(dir, 0o750)
	if errors.Is(err, fs.ErrExist) {
		if _, lerr := r.client.LoadContainer(ctx, id); lerr == nil {
			return "", fmt.Errorf("container already exists: %w", errdefs.ErrAlreadyExists)
		} else if !errdefs.IsNotFound(lerr) {
			return "", fmt.Errorf("check for a container owning home %s: %w", dir, lerr)
		}
		if err := os.RemoveAll(dir); err != nil {
			return "", fmt.Errorf("remove stale home %s: %w", dir, err)
		}
		err = os.Mkdir(dir, 0o750)
	}
	if err != nil {
		return "", fmt.Errorf("create home %s: %w", dir, err)
	}
	// Mkdir's mode passed through the umask; Chmod says it exactly.
	if err := os.Chmod(dir, 0o750); err != nil {
		return "", errors.Join(fmt.Errorf("set mode of home %s: %w", dir, err), os.RemoveAll(dir))
	}
	if err := os.Lchown(dir, int(r.cfg.UserNS.hostUID(u.UID)), int(r.cfg.UserNS.hostGID(u.GID))); err != nil {
		return "", errors.Join(fmt.Errorf("give home %s to its user: %w", dir, err), os.RemoveAll(dir))
	}
	return dir, nil
}

// removeHome deletes a container's home with what the session left in it.
func (r *Runtime) removeHome(id string) error {
	// An id containerd would refuse names no home of ours (and must never
	// name a path outside HomeDir).
	if r.cfg.HomeDir == "" || identifiers.Validate(id) != nil {
		return nil
	}
	if err := os.RemoveAll(r.homePath(id)); err != nil {
		return fmt.Errorf("remove home of %s: %w", id, err)
	}
	return nil
}

// CheckTraversable refuses a directory that the containers' remapped root
// could not reach: in a user namespace runc mounts the rootfs and the binds
// as that user, so every directory above them needs the search bit for
// others (0711 is enough).
func CheckTraversable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := abs; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s (mode %04o) is not searchable by others; with -userns-remap the remapped root must reach %s: chmod o+x %s", p, st.Mode().Perm(), abs, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
