package fsquota

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Mount is one line of /proc/self/mountinfo (proc(5)): where a filesystem
// is mounted, which of its directories (Root: a bind mount of a
// subdirectory shows that subdirectory) and with what options.
type Mount struct {
	Root, Point, FSType, Source string
	// Options are the mount's own (rw, nosuid, ...), SuperOptions the
	// filesystem's (prjquota, noquota, ...).
	Options, SuperOptions []string
}

// ProjectQuotas reports whether the mount's filesystem enforces project
// quotas: ext4 or XFS mounted with prjquota (XFS shows "pquota" given at
// mount as "prjquota"; "pqnoenforce" only accounts, so it does not count).
func (m Mount) ProjectQuotas() bool {
	if m.FSType != "ext4" && m.FSType != "xfs" {
		return false
	}
	for _, o := range slices.Concat(m.SuperOptions, m.Options) {
		if o == "prjquota" || o == "pquota" {
			return true
		}
	}
	return false
}

// ParseMountinfo reads mountinfo lines: "ID PARENT MAJ:MIN ROOT POINT
// OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS".
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		sep := slices.Index(f, "-")
		if sep < 6 || len(f) < sep+4 {
			return nil, fmt.Errorf("mountinfo line %d: %d fields, want ID PARENT MAJ:MIN ROOT POINT OPTIONS ... - TYPE SOURCE OPTIONS", n, len(f))
		}
		out = append(out, Mount{Root: unescape(f[3]), Point: unescape(f[4]), Options: strings.Split(f[5], ","),
			FSType: f[sep+1], Source: unescape(f[sep+2]), SuperOptions: strings.Split(f[sep+3], ",")})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

// unescape undoes the kernel's octal escapes of space, tab, newline and
// backslash (\040, \011, \012, \134) in paths.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// MountOf is the mount holding path (absolute, clean, symlinks resolved):
// of the mounts whose point is path or a directory above it, the one
// listed last. The kernel lists mounts in the order they were made, so a
// later mount on a directory above an earlier one hides it, and the last
// one that contains path is the one path is in.
func MountOf(mounts []Mount, path string) (Mount, bool) {
	for i := len(mounts) - 1; i >= 0; i-- {
		p := mounts[i].Point
		if p == path || p == "/" || strings.HasPrefix(path, p+"/") {
			return mounts[i], true
		}
	}
	return Mount{}, false
}

// resolve makes path absolute and clean with its symlinks resolved, as
// mountinfo names mount points.
func resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}
