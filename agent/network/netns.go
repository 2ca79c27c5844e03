package network

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// newNetNS makes a network namespace and pins it at path (a bind mount of
// its /proc file), so it outlives every process in it: the agent attaches
// it before the container starts and detaches it after the container is
// gone, whatever the container did. IPv6 is off in it: the plugins give
// sessions IPv4 only, and a link-local IPv6 address would be a way around
// the IPv4 rules (to the host's bridge address).
func newNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create netns file %s: %w", path, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine, so its
		// namespace never serves another goroutine.
		runtime.LockOSThread()
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("unshare network namespace: %w", err)
			}
			self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
			if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("pin network namespace at %s: %w", path, err)
			}
			// /proc/sys/net is the namespace of the thread that opens it.
			for _, k := range []string{"all", "default"} {
				p := "/proc/sys/net/ipv6/conf/" + k + "/disable_ipv6"
				if err := os.WriteFile(p, []byte("1"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("turn IPv6 off in the namespace: %w", err)
				}
			}
			return nil
		}()
	}()
	if err := <-errc; err != nil {
		return errors.Join(err, removeNetNS(path))
	}
	return nil
}

// removeNetNS unpins and deletes a namespace file; a missing one, or one
// no longer mounted (after a reboot), is removed all the same.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}
