// Package folderfs holds the bytes of storage folders: each folder is the
// directory named by its id under its host's path (a local disk or an NFS
// mount, the same on every manager and agent). Every access goes through an
// os.Root opened on the folder's directory, so no path — "..", absolute, or
// a symlink pointing out — reaches anything outside it.
package folderfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berth-cluster/berth/shared/api"
)

// Errors the HTTP layer turns into statuses.
var (
	ErrNoHost   = errors.New("folder host not configured on this manager")
	ErrBadPath  = errors.New("bad path")
	ErrTooLarge = errors.New("over the folder's size limit")
	ErrNotFound = errors.New("no such file or directory")
	ErrIsDir    = errors.New("is a directory")
	// ErrNotRegular: a named pipe, socket or device, which is never opened
	// (opening a pipe for reading waits for a writer, holding a thread).
	ErrNotRegular = errors.New("not a regular file")
	ErrExists     = errors.New("already exists")
)

// uploadPrefix marks the temporary files uploads are written to before
// they are renamed into place, so a failed upload leaves no half file.
const uploadPrefix = ".berth-upload-"

// Modes of what the store makes: only the folders' owner and group (the
// containers' user, see Owner) and root reach a folder's bytes, so a file a
// session made setuid cannot be run by another account of the host.
const (
	DirMode  os.FileMode = 0o770
	FileMode os.FileMode = 0o660
)

// Option changes a Store.
type Option func(*Store)

// WithOwner gives every directory and file the store makes to uid:gid
// (the managers' -folder-uid and -folder-gid): the user sessions run as
// must own or share them to write. Without it they stay the process's.
func WithOwner(uid, gid int) Option {
	return func(s *Store) { s.owner = &owner{uid: uid, gid: gid} }
}

type owner struct{ uid, gid int } // -1: keep

// needs tells whether a file made by the process still has to be given
// away. A process that already creates files with the owner's ids (a
// manager whose primary group is -folder-gid) then makes no chown call at
// all, which a sandbox may forbid (systemd's SystemCallFilter=~@privileged).
func (o *owner) needs(st os.FileInfo) bool {
	if o == nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return !ok || (o.uid >= 0 && int(sys.Uid) != o.uid) || (o.gid >= 0 && int(sys.Gid) != o.gid)
}

// Store is the folders of the hosts configured on this process.
type Store struct {
	owner    *owner // nil: the process's own
	hosts    map[string]string
	ttl      time.Duration
	maxWalk  int
	now      func() time.Time
	uploads  atomic.Uint64
	mu       sync.Mutex
	measured map[string]measure // folder id → last walk
	// changes counts the writes through this store per folder, so a walk
	// that a write overtook does not cache a figure without it.
	changes map[string]uint64
	quota   quotaBook // quota.go: room held by uploads in flight
}

type measure struct {
	bytes int64
	at    time.Time
}

// New returns the store of hosts (name → path). Usage measurements are
// reused for ttl; a walk stops after maxWalk entries (a lower bound then).
func New(hosts map[string]string, ttl time.Duration, maxWalk int, now func() time.Time, opts ...Option) *Store {
	if now == nil {
		now = time.Now
	}
	if maxWalk <= 0 {
		maxWalk = 1_000_000
	}
	h := make(map[string]string, len(hosts))
	for k, v := range hosts {
		h[k] = v
	}
	s := &Store{hosts: h, ttl: ttl, maxWalk: maxWalk, now: now, measured: map[string]measure{}, changes: map[string]uint64{}, quota: newQuotaBook()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Hosts lists the configured host names.
func (s *Store) Hosts() []string {
	out := make([]string, 0, len(s.hosts))
	for h := range s.hosts {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// Has reports whether the host is configured here.
func (s *Store) Has(host string) bool { _, ok := s.hosts[host]; return ok }

func (s *Store) dir(host, id string) (string, error) {
	p, ok := s.hosts[host]
	if !ok {
		return "", fmt.Errorf("%w: %s (start it with -folder-host %s=PATH)", ErrNoHost, host, host)
	}
	if !filepath.IsLocal(id) || strings.ContainsRune(id, '/') {
		return "", fmt.Errorf("%w: folder id %q", ErrBadPath, id)
	}
	return filepath.Join(p, id), nil
}

// Create makes the folder's directory.
func (s *Store) Create(host, id string) error {
	d, err := s.dir(host, id)
	if err != nil {
		return err
	}
	if err := os.Mkdir(d, DirMode); err != nil {
		return fmt.Errorf("create folder directory %s: %w", d, err)
	}
	// Mkdir's mode passed through the umask; Chmod says it exactly.
	if err := os.Chmod(d, DirMode); err != nil {
		return errors.Join(fmt.Errorf("set mode of folder directory %s: %w", d, err), os.Remove(d))
	}
	if st, err := os.Lstat(d); err == nil && s.owner.needs(st) {
		if err := os.Lchown(d, s.owner.uid, s.owner.gid); err != nil {
			return errors.Join(fmt.Errorf("give folder directory %s to %d:%d: %w", d, s.owner.uid, s.owner.gid, err), os.Remove(d))
		}
	}
	return nil
}

// mkdirs makes dir and its missing parents inside r, each DirMode and the
// owner's, like Create makes the folder itself.
func (s *Store) mkdirs(r *os.Root, dir string) error {
	if dir == "." {
		return nil
	}
	if err := s.mkdirs(r, path.Dir(dir)); err != nil {
		return err
	}
	err := r.Mkdir(dir, DirMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := r.Chmod(dir, DirMode); err != nil {
		return err
	}
	if st, err := r.Lstat(dir); err == nil && s.owner.needs(st) {
		return r.Lchown(dir, s.owner.uid, s.owner.gid)
	}
	return nil
}

// own gives a file the store wrote FileMode and the owner, through its
// descriptor (no path to race with).
func (s *Store) own(f *os.File) error {
	if err := f.Chmod(FileMode); err != nil {
		return err
	}
	if st, err := f.Stat(); err == nil && s.owner.needs(st) {
		return f.Chown(s.owner.uid, s.owner.gid)
	}
	return nil
}

// Remove deletes the folder's directory and everything in it.
func (s *Store) Remove(host, id string) error {
	d, err := s.dir(host, id)
	if err != nil {
		return err
	}
	s.forget(id)
	if err := os.RemoveAll(d); err != nil {
		return fmt.Errorf("remove folder directory %s: %w", d, err)
	}
	return nil
}

func (s *Store) root(host, id string) (*os.Root, error) {
	d, err := s.dir(host, id)
	if err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(d)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: the folder's directory %s is missing on this manager", ErrNotFound, d)
		}
		return nil, fmt.Errorf("open folder %s: %w", id, err)
	}
	return r, nil
}

// Clean turns a path given by a client into one relative to the folder:
// "", "." and "/" are the folder itself; ".." anywhere, other absolute
// paths, backslashes and NUL bytes are refused.
func Clean(p string) (string, error) {
	if p == "" || p == "/" || p == "." {
		return ".", nil
	}
	if strings.ContainsRune(p, 0) || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return "", fmt.Errorf("%w: %q must be a path inside the folder", ErrBadPath, p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q must not contain '..'", ErrBadPath, p)
		}
	}
	c := path.Clean(p)
	if !filepath.IsLocal(c) {
		return "", fmt.Errorf("%w: %q must be a path inside the folder", ErrBadPath, p)
	}
	return c, nil
}

// fsErr maps a root's error to this package's.
func fsErr(p string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s", ErrNotFound, p)
	case strings.Contains(err.Error(), "path escapes from parent"):
		// os.Root's refusal of a symlink (or ..) leading out of the folder.
		return fmt.Errorf("%w: %s leads outside the folder", ErrBadPath, p)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w: a part of %s is a file, not a directory", ErrBadPath, p)
	}
	return err
}

// List lists a directory of the folder.
func (s *Store) List(host, id, dir string) ([]api.FileEntry, error) {
	p, err := Clean(dir)
	if err != nil {
		return nil, err
	}
	r, err := s.root(host, id)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	d, err := r.Open(p)
	if err != nil {
		return nil, fsErr(p, err)
	}
	defer d.Close()
	st, err := d.Stat()
	if err != nil {
		return nil, fsErr(p, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is a file; download it with GET .../files/%s", ErrBadPath, p, p)
	}
	ents, err := d.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", p, err)
	}
	out := make([]api.FileEntry, 0, len(ents))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), uploadPrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed while listing
		}
		typ := "file"
		switch {
		case e.IsDir():
			typ = "dir"
		case e.Type()&fs.ModeSymlink != 0:
			typ = "symlink"
		case !e.Type().IsRegular():
			typ = "other"
		}
		out = append(out, api.FileEntry{Name: e.Name(), Path: path.Join(p, e.Name()), Type: typ, Size: info.Size(),
			ModifiedAt: info.ModTime().UTC()})
	}
	slices.SortFunc(out, func(a, b api.FileEntry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// File is an open file to download.
type File struct {
	*os.File
	Info fs.FileInfo
	root *os.Root
}

// Close closes the file and its root.
func (f *File) Close() error {
	err := f.File.Close()
	if rerr := f.root.Close(); err == nil {
		err = rerr
	}
	return err
}

// Open opens a regular file of the folder for reading. Anything else is
// refused before it is opened: a session can make a named pipe, and opening
// one for reading would wait for a writer forever. The open itself cannot
// block either (O_NONBLOCK, in case the name is swapped for a pipe after
// the check), and what it opened is checked again.
func (s *Store) Open(host, id, name string) (*File, error) {
	p, err := Clean(name)
	if err != nil {
		return nil, err
	}
	r, err := s.root(host, id)
	if err != nil {
		return nil, err
	}
	// Stat follows a symlink, inside the folder only (os.Root).
	st, err := r.Stat(p)
	if err == nil {
		err = notRegular(p, st)
	}
	if err != nil {
		r.Close()
		return nil, fsErr(p, err)
	}
	// os.Root opens every component with O_NOFOLLOW and resolves links
	// itself, within the folder.
	f, err := r.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		r.Close()
		return nil, fsErr(p, err)
	}
	if st, err = f.Stat(); err == nil {
		err = notRegular(p, st)
	}
	if err != nil {
		f.Close()
		r.Close()
		return nil, fsErr(p, err)
	}
	return &File{File: f, Info: st, root: r}, nil
}

// notRegular says why st is not a file to download, or nil.
func notRegular(p string, st fs.FileInfo) error {
	m := st.Mode()
	switch {
	case m.IsRegular():
		return nil
	case m.IsDir():
		return fmt.Errorf("%w: %s; list it with GET .../files?path=%s", ErrIsDir, p, p)
	}
	kind := "special file"
	switch {
	case m&fs.ModeNamedPipe != 0:
		kind = "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		kind = "socket"
	case m&fs.ModeCharDevice != 0:
		kind = "character device"
	case m&fs.ModeDevice != 0:
		kind = "block device"
	}
	return fmt.Errorf("%w: %s is a %s; only regular files can be downloaded", ErrNotRegular, p, kind)
}

// Write stores the content of body at name, creating the directories on
// the way, replacing a file that was there; the bytes go to a temporary file
// renamed into place only once the whole body has been read without error,
// so a failed or refused upload leaves nothing. size is the body's length
// when known (Content-Length), else -1: more than size bytes is ErrTooLarge.
// quota, when not nil, is the folder's size limit, and room under it is
// reserved before a byte is written (see reserve), so uploads running at
// once cannot together pass it: a *QuotaError (ErrTooLarge) when it is not
// there. It returns the bytes written.
func (s *Store) Write(host, id, name string, body io.Reader, size int64, quota *int64) (int64, error) {
	p, err := Clean(name)
	if err != nil {
		return 0, err
	}
	if p == "." {
		return 0, fmt.Errorf("%w: name the file to write", ErrBadPath)
	}
	r, err := s.root(host, id)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	dir := path.Dir(p)
	if err := s.mkdirs(r, dir); err != nil {
		return 0, fsErr(dir, err)
	}
	replaced := int64(0)
	if st, err := r.Lstat(p); err == nil && st.IsDir() {
		return 0, fmt.Errorf("%w: %s", ErrIsDir, p)
	} else if err == nil && st.Mode().IsRegular() {
		replaced = st.Size()
	}
	tmp := path.Join(dir, fmt.Sprintf("%s%d-%d", uploadPrefix, os.Getpid(), s.uploads.Add(1)))
	limit, over, done, err := s.reserve(host, id, tmp, size, replaced, quota)
	if err != nil {
		return 0, err
	}
	defer done()
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, FileMode)
	if err != nil {
		return 0, fsErr(tmp, err)
	}
	if err := s.own(f); err != nil {
		return 0, errors.Join(fmt.Errorf("own %s: %w", p, err), f.Close(), r.Remove(tmp))
	}
	src := body
	if limit >= 0 {
		src = io.LimitReader(body, limit+1)
	}
	n, err := io.Copy(f, src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && limit >= 0 && n > limit {
		err = over
	}
	if err != nil {
		if rerr := r.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("remove partial upload: %w", rerr))
		}
		if errors.Is(err, ErrTooLarge) {
			return 0, err
		}
		return 0, fmt.Errorf("write %s: %w", p, err)
	}
	if err := r.Rename(tmp, p); err != nil {
		_ = r.Remove(tmp)
		return 0, fsErr(p, err)
	}
	return n, nil
}

// Mkdir makes a directory of the folder, with the directories on the way.
func (s *Store) Mkdir(host, id, name string) (api.FileEntry, error) {
	p, err := Clean(name)
	if err != nil {
		return api.FileEntry{}, err
	}
	if p == "." {
		return api.FileEntry{}, fmt.Errorf("%w: name the directory to make", ErrBadPath)
	}
	if strings.HasPrefix(path.Base(p), uploadPrefix) {
		return api.FileEntry{}, fmt.Errorf("%w: names starting with %s are kept for uploads", ErrBadPath, uploadPrefix)
	}
	r, err := s.root(host, id)
	if err != nil {
		return api.FileEntry{}, err
	}
	defer r.Close()
	if _, err := r.Lstat(p); err == nil {
		return api.FileEntry{}, fmt.Errorf("%w: %s", ErrExists, p)
	}
	if err := s.mkdirs(r, p); err != nil {
		return api.FileEntry{}, fsErr(p, err)
	}
	st, err := r.Lstat(p)
	if err != nil {
		return api.FileEntry{}, fsErr(p, err)
	}
	return api.FileEntry{Name: path.Base(p), Path: p, Type: "dir", Size: st.Size(), ModifiedAt: st.ModTime().UTC()}, nil
}

// Delete removes a file or a directory with everything in it.
func (s *Store) Delete(host, id, name string) error {
	p, err := Clean(name)
	if err != nil {
		return err
	}
	if p == "." {
		return fmt.Errorf("%w: to delete the folder itself use DELETE /v1/folders/{id}", ErrBadPath)
	}
	r, err := s.root(host, id)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := r.Lstat(p); err != nil {
		return fsErr(p, err)
	}
	if err := r.RemoveAll(p); err != nil {
		return fsErr(p, err)
	}
	s.forget(id)
	return nil
}

// Usage is the bytes of the folder's regular files, measured by a walk at
// most ttl old. Symlinks are not followed.
func (s *Store) Usage(host, id string) (int64, error) {
	s.mu.Lock()
	m, ok := s.measured[id]
	change := s.changes[id]
	s.mu.Unlock()
	if ok && s.now().Sub(m.at) < s.ttl {
		return m.bytes, nil
	}
	r, err := s.root(host, id)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var total int64
	seen := 0
	err = fs.WalkDir(r.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed during the walk
			}
			return err
		}
		if seen++; seen > s.maxWalk {
			return fs.SkipAll // a lower bound is enough to tell a folder over its limit
		}
		// An upload in flight is counted by the room it holds instead.
		if d.Type().IsRegular() && !(strings.HasPrefix(d.Name(), uploadPrefix) && s.quota.inFlight(id, p)) {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measure folder %s: %w", id, err)
	}
	s.mu.Lock()
	if s.changes[id] == change {
		s.measured[id] = measure{bytes: total, at: s.now()}
	}
	s.mu.Unlock()
	return total, nil
}

func (s *Store) forget(id string) {
	s.mu.Lock()
	delete(s.measured, id)
	s.changes[id]++
	s.mu.Unlock()
}
