package fsquota

import (
	"math"
	"testing"
	"unsafe"
)

// TestProjectIDsAreDerivedFromTheFolderIDAndNeverZero: the same id every
// time (any agent, any restart), another for another folder and for each
// attempt, and never 0 or 2^32-1 (the kernel's invalid id).
func TestProjectIDsAreDerivedFromTheFolderIDAndNeverZero(t *testing.T) {
	// 1 + FNV-1a("f-abc123") (0xa9b03b8c, computed apart): fixed, so a change of the derivation (which
	// would move every labelled folder to a new project) fails here.
	if got, want := ProjectID("f-abc123", 0), uint32(0xa9b03b8d); got != want {
		t.Errorf("ProjectID(f-abc123, 0) = %#x, want %#x", got, want)
	}
	if ProjectID("f-abc123", 0) != ProjectID("f-abc123", 0) {
		t.Error("not deterministic")
	}
	seen := map[uint32]string{}
	for _, f := range []string{"f-abc123", "f-abc124", "f-zzzzzzzzzzzz", ""} {
		for k := range 3 {
			id := ProjectID(f, k)
			if id == 0 || id == math.MaxUint32 {
				t.Errorf("ProjectID(%q, %d) = %d", f, k, id)
			}
			if prev, dup := seen[id]; dup {
				t.Errorf("ProjectID(%q, %d) = %d, as %s", f, k, id, prev)
			}
			seen[id] = f
		}
	}
}

// The structures passed to the kernel have the sizes its headers give.
func TestKernelStructuresHaveTheKernelsSizes(t *testing.T) {
	if n := unsafe.Sizeof(fsxattr{}); n != 28 {
		t.Errorf("struct fsxattr is %d bytes, want 28", n)
	}
	if n := unsafe.Sizeof(ifDqblk{}); n != 72 {
		t.Errorf("struct if_dqblk is %d bytes, want 72", n)
	}
	// _IOR('X', 31, 28 bytes) and _IOW('X', 32, 28 bytes).
	ioc := func(dir, nr uintptr) uintptr { return dir<<30 | unsafe.Sizeof(fsxattr{})<<16 | 'X'<<8 | nr }
	if ioc(2, 31) != fsIOCFSGetXattr || ioc(1, 32) != fsIOCFSSetXattr {
		t.Errorf("ioctl numbers %#x %#x, want %#x %#x", fsIOCFSGetXattr, fsIOCFSSetXattr, ioc(2, 31), ioc(1, 32))
	}
}
