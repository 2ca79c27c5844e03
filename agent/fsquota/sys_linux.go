package fsquota

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel interface, as include/uapi/linux/fs.h and quota.h define it
// (x/sys/unix has neither the structures nor the request numbers).
const (
	// FS_IOC_FSGETXATTR = _IOR('X', 31, struct fsxattr) and
	// FS_IOC_FSSETXATTR = _IOW('X', 32, struct fsxattr): read and set an
	// inode's extended flags and project id (ext4 and XFS alike).
	fsIOCFSGetXattr = 0x801c581f
	fsIOCFSSetXattr = 0x401c5820
	// FS_XFLAG_PROJINHERIT: what is created in the directory gets its
	// project id, and the kernel refuses (EXDEV) to rename or link into it
	// anything of another project.
	fsXFlagProjInherit = 0x00000200

	// QCMD(Q_SETQUOTA, PRJQUOTA) = Q_SETQUOTA (0x800008) << 8 | PRJQUOTA
	// (2): set the limits of one project id through the generic quota
	// interface, which ext4 and XFS both implement.
	qSetQuotaPrj = 0x800008<<8 | 2
	// QIF_BLIMITS: dqb_bhardlimit and dqb_bsoftlimit are to be set.
	qifBLimits = 1
)

// fsxattr is struct fsxattr (28 bytes).
type fsxattr struct {
	xflags, extsize, nextents, projid, cowextsize uint32
	pad                                           [8]byte
}

// ifDqblk is struct if_dqblk (72 bytes: the last field is padded to 8).
type ifDqblk struct {
	bhardlimit, bsoftlimit, curspace, ihardlimit, isoftlimit, curinodes, btime, itime uint64
	valid                                                                             uint32
	_                                                                                 uint32
}

// project reads f's project id and whether it has PROJINHERIT.
func project(f *os.File) (id uint32, inherit bool, err error) {
	var x fsxattr
	if err := ioctl(f, fsIOCFSGetXattr, unsafe.Pointer(&x)); err != nil {
		return 0, false, fmt.Errorf("read the project id of %s: %w", f.Name(), err)
	}
	return x.projid, x.xflags&fsXFlagProjInherit != 0, nil
}

// setProject gives f project id id; a directory also gets PROJINHERIT.
// The kernel allows it to the file's owner and to CAP_FOWNER, from the
// initial user namespace only.
func setProject(f *os.File, id uint32, dir bool) error {
	var x fsxattr
	if err := ioctl(f, fsIOCFSGetXattr, unsafe.Pointer(&x)); err != nil {
		return fmt.Errorf("read the project id of %s: %w", f.Name(), err)
	}
	x.projid = id
	if dir {
		x.xflags |= fsXFlagProjInherit
	}
	if err := ioctl(f, fsIOCFSSetXattr, unsafe.Pointer(&x)); err != nil {
		return fmt.Errorf("give %s project id %d: %w", f.Name(), id, err)
	}
	return nil
}

// setBlockLimit sets the hard block limit of project id on the filesystem
// holding f to kib KiB (the soft limit to none); 0 removes the limit (the
// interface's own meaning of 0). quotactl_fd(2) (Linux 5.14) names the
// filesystem by an open file instead of its block device, which a bind
// mount or a device-mapper name would make hard to find.
func setBlockLimit(f *os.File, id uint32, kib uint64) error {
	q := ifDqblk{bhardlimit: kib, valid: qifBLimits}
	var errno unix.Errno
	err := control(f, func(fd uintptr) {
		_, _, errno = unix.Syscall6(unix.SYS_QUOTACTL_FD, fd, qSetQuotaPrj, uintptr(id), uintptr(unsafe.Pointer(&q)), 0, 0)
	})
	if err == nil && errno != 0 {
		err = errno
	}
	return err
}

func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	var errno unix.Errno
	if err := control(f, func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg))
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

func control(f *os.File, fn func(fd uintptr)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(fn)
}
