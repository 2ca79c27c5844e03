package fsquota

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Lines as /proc/self/mountinfo shows them.
const (
	lineRoot        = "22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro"
	lineExt4Prj     = "40 22 259:2 / /srv/folders rw,nosuid,nodev,relatime shared:20 - ext4 /dev/nvme0n1p2 rw,prjquota"
	lineExt4Plain   = "41 22 259:3 / /srv/plain rw,relatime shared:21 - ext4 /dev/nvme0n1p3 rw"
	lineXFSPrj      = "42 22 8:17 / /data rw,noatime shared:22 - xfs /dev/sdb1 rw,attr2,inode64,logbufs=8,logbsize=32k,prjquota"
	lineXFSPquota   = "43 22 8:18 / /data2 rw,noatime - xfs /dev/sdb2 rw,attr2,inode64,pquota"
	lineXFSNoquota  = "44 22 8:19 / /data3 rw,relatime shared:24 - xfs /dev/sdb3 rw,attr2,inode64,logbufs=8,logbsize=32k,noquota"
	lineXFSNoEnf    = "45 22 8:20 / /data4 rw,relatime - xfs /dev/sdb4 rw,attr2,inode64,pqnoenforce"
	lineNFS         = "46 22 0:50 / /mnt/nfs rw,relatime shared:25 - nfs4 10.0.0.2:/export rw,vers=4.2,rsize=1048576,prjquota"
	lineOverlay     = "47 22 0:51 / /var/lib/overlay rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w"
	lineBindSub     = "48 22 259:2 /folders/berth /var/lib/berth/folders rw,nosuid,nodev,relatime shared:20 - ext4 /dev/nvme0n1p2 rw,prjquota"
	lineBindOfPlain = "49 22 259:3 /sub /var/lib/berth/plain rw,relatime - ext4 /dev/nvme0n1p3 rw"
	lineSpace       = `50 22 259:2 / /srv/my\040folders rw,relatime - ext4 /dev/nvme0n1p2 rw,prjquota`
	// A tmpfs mounted over /srv after /srv/folders hides it.
	lineShadow = "51 22 0:60 / /srv rw,relatime - tmpfs tmpfs rw,size=1024k"
)

// TestProjectQuotasAreFoundFromTheMountHoldingTheFolderHost: only ext4 and
// XFS mounted with prjquota (or pquota) count, also through a bind mount
// of a subdirectory; accounting without enforcement, noquota, NFS and
// overlay do not.
func TestProjectQuotasAreFoundFromTheMountHoldingTheFolderHost(t *testing.T) {
	all := strings.Join([]string{lineRoot, lineExt4Prj, lineExt4Plain, lineXFSPrj, lineXFSPquota, lineXFSNoquota,
		lineXFSNoEnf, lineNFS, lineOverlay, lineBindSub, lineBindOfPlain, lineSpace}, "\n")
	mounts, err := ParseMountinfo(strings.NewReader(all))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path     string
		point    string
		fsType   string
		enforced bool
	}{
		{"/srv/folders", "/srv/folders", "ext4", true},
		{"/srv/folders/f-abc/x", "/srv/folders", "ext4", true},
		{"/srv/foldersX", "/", "ext4", false}, // a sibling with the same prefix is not under the mount
		{"/srv/plain/f", "/srv/plain", "ext4", false},
		{"/data/folders", "/data", "xfs", true},
		{"/data2/folders", "/data2", "xfs", true},
		{"/data3/folders", "/data3", "xfs", false},
		{"/data4/folders", "/data4", "xfs", false},
		{"/mnt/nfs/folders", "/mnt/nfs", "nfs4", false},
		{"/var/lib/overlay/x", "/var/lib/overlay", "overlay", false},
		{"/var/lib/berth/folders", "/var/lib/berth/folders", "ext4", true},
		{"/var/lib/berth/plain", "/var/lib/berth/plain", "ext4", false},
		{"/srv/my folders/f-1", "/srv/my folders", "ext4", true},
		{"/home/x", "/", "ext4", false},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			m, ok := MountOf(mounts, tc.path)
			if !ok || m.Point != tc.point || m.FSType != tc.fsType {
				t.Fatalf("mount %+v (found %v), want %s on %s", m, ok, tc.fsType, tc.point)
			}
			if got := m.ProjectQuotas(); got != tc.enforced {
				t.Errorf("project quotas %v, want %v (options %v %v)", got, tc.enforced, m.Options, m.SuperOptions)
			}
		})
	}
	if m, _ := MountOf(mounts, "/var/lib/berth/folders/f"); m.Root != "/folders/berth" || m.Source != "/dev/nvme0n1p2" {
		t.Errorf("bind mount %+v, want root /folders/berth of /dev/nvme0n1p2", m)
	}
}

// TestALaterMountOnADirectoryAboveHidesTheFolderHost: a tmpfs mounted on
// /srv after /srv/folders is what /srv/folders is now.
func TestALaterMountOnADirectoryAboveHidesTheFolderHost(t *testing.T) {
	mounts, err := ParseMountinfo(strings.NewReader(lineRoot + "\n" + lineExt4Prj + "\n" + lineShadow + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := MountOf(mounts, "/srv/folders/f-1"); m.FSType != "tmpfs" || m.ProjectQuotas() {
		t.Fatalf("mount %+v, want the tmpfs on /srv without project quotas", m)
	}
}

func TestMalformedMountinfoIsAnError(t *testing.T) {
	for _, line := range []string{
		"22 1 252:1 / / rw,relatime shared:1 ext4 /dev/vda1 rw", // no separator
		"22 1 252:1 / / rw - ext4 /dev/vda1",                    // no super options
		"22 1 - ext4 /dev/vda1 rw",                              // separator too early
	} {
		if _, err := ParseMountinfo(strings.NewReader(line)); err == nil {
			t.Errorf("%q parsed without an error", line)
		}
	}
}

// TestEnforcedReadsTheMountinfoOfTheResolvedHost: System.Enforced follows
// the host's symlinks to the directory mountinfo knows.
func TestEnforcedReadsTheMountinfoOfTheResolvedHost(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	info := filepath.Join(dir, "mountinfo")
	lines := lineRoot + "\n" + "60 22 259:2 / " + real + " rw,relatime - xfs /dev/sdc1 rw,prjquota\n"
	if err := os.WriteFile(info, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	s := System{Mountinfo: info}
	for path, want := range map[string]bool{real: true, link: true, dir: false} {
		got, err := s.Enforced(path)
		if err != nil || got != want {
			t.Errorf("Enforced(%s) = %v, %v; want %v", path, got, err, want)
		}
	}
	if _, err := s.Enforced(filepath.Join(dir, "missing")); err == nil {
		t.Error("a folder host that does not exist gave no error")
	}
}
