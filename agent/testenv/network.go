package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CNIBinDir is where Debian's containernetworking-plugins puts the plugins.
const CNIBinDir = "/usr/lib/cni"

// ctr's CNI directories: `ctr run --cni` reads no flags for them.
const (
	CtrConfDir = "/etc/cni/net.d"
	CtrBinDir  = "/opt/cni/bin"
)

// NetworkNames are the host objects one test's session networks may use,
// none of which another test (of this binary or another one running at
// the same time) uses: a range for its sessions, and the prefixes of its
// bridges and iptables chains.
type NetworkNames struct {
	CIDR         netip.Prefix
	BridgePrefix string
	ChainPrefix  string
}

// Network checks what session networks need (root, the CNI plugins,
// iptables) and gives t names of its own. At cleanup it removes the
// test's chains and any bridge of its prefix that is left, failing the
// test if a bridge was left.
func Network(t testing.TB) NetworkNames {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces, bridges, iptables)")
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(CNIBinDir + "/" + p); err != nil {
			missing = append(missing, "the CNI plugin "+p+" in "+CNIBinDir+" (Debian package containernetworking-plugins, scripts/install-deps.sh)")
		}
	}
	for _, c := range []string{"iptables", "iptables-restore", "ip"} {
		if _, err := lookPath(c); err != nil {
			missing = append(missing, c+" (Debian package "+netPackage[c]+", scripts/install-deps.sh)")
		}
	}
	unavailable(t, "session networks", missing)
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(b[:])
	// A /21 (sixteen sessions) of 10.192.0.0/12 that no route of the host
	// covers; tests at the same time pick another with near certainty.
	n := NetworkNames{BridgePrefix: "bt" + h[:5], ChainPrefix: "BT" + strings.ToUpper(h)}
	for try := 0; ; try++ {
		var r [2]byte
		if _, err := rand.Read(r[:]); err != nil {
			t.Fatal(err)
		}
		block := (int(r[0])<<8 | int(r[1])) % 512 // 512 /21s in a /12
		third := 192<<8 + block*8                 // 10.192.0.0 + block × /21, as 2nd and 3rd octets
		n.CIDR = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(third >> 8), byte(third), 0}), 21)
		// Routes covering the range (match) or inside it (root).
		match, err1 := run(10*time.Second, "ip", "-4", "route", "show", "match", n.CIDR.String())
		root, err2 := run(10*time.Second, "ip", "-4", "route", "show", "root", n.CIDR.String())
		if err1 == nil && err2 == nil && !routed(string(match)+string(root)) || try > 20 {
			break
		}
	}
	t.Cleanup(func() {
		for _, c := range []string{n.ChainPrefix + "-INPUT", n.ChainPrefix + "-FORWARD"} {
			builtin := strings.TrimPrefix(c, n.ChainPrefix+"-")
			for exec.Command("iptables", "-w", "10", "-D", builtin, "-j", c).Run() == nil {
			}
			_ = exec.Command("iptables", "-w", "10", "-F", c).Run()
			_ = exec.Command("iptables", "-w", "10", "-X", c).Run()
		}
		out, _ := run(10*time.Second, "ip", "-o", "link", "show")
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			name := strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":")
			if strings.HasPrefix(name, n.BridgePrefix) {
				t.Errorf("bridge %s was left behind", name)
				_, _ = run(10*time.Second, "ip", "link", "del", name)
			}
		}
	})
	return n
}

// netPackage names the Debian package of each command.
var netPackage = map[string]string{"iptables": "iptables", "iptables-restore": "iptables", "ip": "iproute2"}

// routed tells whether `ip route show match` printed a route more specific
// than the default one.
func routed(out string) bool {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] != "default" {
			return true
		}
	}
	return false
}

// String names the objects, for logs.
func (n NetworkNames) String() string {
	return fmt.Sprintf("cidr %s, bridges %s*, chains %s-*", n.CIDR, n.BridgePrefix, n.ChainPrefix)
}

// CtrCNI installs, for the benchmark's length, the conflist `ctr run --cni`
// reads (the plugins the agent runs, on a bridge and range of names, which
// must be names of its own: ctr's network stays up between samples) and
// links the plugins where ctr looks for them; it returns the conflist.
func CtrCNI(b testing.TB, names NetworkNames) []byte {
	b.Helper()
	if entries, _ := os.ReadDir(CtrConfDir); len(entries) > 0 {
		b.Skipf("%s already holds a CNI configuration; ctr would use it", CtrConfDir)
	}
	bridge := names.BridgePrefix + "c"
	subnet := names.CIDR.String()
	conf, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": bridge, "plugins": []any{
		map[string]any{"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": true,
			"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": subnet}}},
				"routes": []map[string]string{{"dst": "0.0.0.0/0"}}, "dataDir": b.TempDir()}},
	}})
	for _, d := range []string{CtrConfDir, CtrBinDir} {
		// What is made here (/etc/cni too, say) goes again once empty.
		for _, p := range []string{filepath.Dir(d), d} {
			if _, err := os.Stat(p); err == nil {
				continue
			}
			if err := os.Mkdir(p, 0o755); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { os.Remove(p) })
		}
	}
	file := filepath.Join(CtrConfDir, "00-berth-bench.conflist")
	if err := os.WriteFile(file, conf, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		os.Remove(file)
		_ = exec.Command("ip", "link", "del", bridge).Run()
	})
	for _, p := range []string{"bridge", "host-local"} {
		link := filepath.Join(CtrBinDir, p)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(CNIBinDir, p), link); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.Remove(link) })
	}
	return conf
}
