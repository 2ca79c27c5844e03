package containerd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"testing"

	gocni "github.com/containerd/go-cni"

	"github.com/berth-cluster/berth/agent/network"
	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/agent/testenv"
)

// ctr's CNI directories: `ctr run --cni` reads no flags for them.
const (
	ctrConfDir = "/etc/cni/net.d"
	ctrBinDir  = "/opt/cni/bin"
)

// BenchmarkRunToRunningWithNetwork measures create → running with a
// session network: the agent's attach (a pinned namespace, the bridge,
// host-local and loopback plugins through go-cni, the rules of a new
// session) and Runtime.Run joining it, against `ctr run -d --cni` with the
// same plugins on the same containerd and image. Every sample is a new
// session (its own bridge and rules), the agent's worst case. ctr reads
// its configuration from /etc/cni/net.d and the plugins from /opt/cni/bin:
// the benchmark puts its own conflist first there and links the plugins,
// and removes both after.
func BenchmarkRunToRunningWithNetwork(b *testing.B) {
	names := testenv.Network(b)
	e := newEnv(b, true)
	dir := filepath.Dir(e.socket)
	rt := e.runtime(b)
	ctx := context.Background()
	m, err := network.New(ctx, network.Config{BinDir: testenv.CNIBinDir, StateDir: filepath.Join(dir, "net"), CIDR: names.CIDR,
		Egress: true, BridgePrefix: names.BridgePrefix, ChainPrefix: names.ChainPrefix}, network.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	var runtimeMedian, ctrMedian float64
	b.Run("runtime", func(b *testing.B) {
		runtimeMedian = sampleWith(b, func(id string) error {
			att, err := m.Attach(ctx, network.Request{ContainerID: id, SessionID: "s-" + id, Size: 1, Egress: true, Hostname: id})
			if err != nil {
				return err
			}
			s := baseSpec(id, "sleep", "300")
			s.NetNS = att.NetNS
			s.Mounts = []runtime.Mount{{Source: att.Hosts, Target: "/etc/hosts", ReadOnly: true}, {Source: att.ResolvConf, Target: "/etc/resolv.conf", ReadOnly: true}}
			_, err = rt.Run(ctx, s)
			return err
		}, func(id string) error {
			if err := rt.Remove(ctx, id); err != nil {
				return err
			}
			return m.Detach(ctx, id)
		})
	})
	b.Run("ctr", func(b *testing.B) {
		conf := ctrNetwork(b, names)
		cni, err := gocni.New(gocni.WithPluginDir([]string{testenv.CNIBinDir}), gocni.WithConfListBytes(conf))
		if err != nil {
			b.Fatal(err)
		}
		runc := filepath.Join(dir, "runc")
		ctrMedian = sampleWith(b, func(id string) error {
			out, err := exec.Command("ctr", "--address", e.socket, "--namespace", e.ns,
				"run", "-d", "--cni", "--runc-root", runc, testenv.BaseImageName, id, "sleep", "300").CombinedOutput()
			if err != nil {
				return &ctrError{err: err, out: string(out)}
			}
			return nil
		}, func(id string) error {
			// ctr -d leaves the network to whoever removes the container:
			// DEL while the task still holds its namespace, as the agent does.
			cs, err := rt.List(ctx)
			if err != nil {
				return err
			}
			for _, c := range cs {
				if c.ID == id && c.Pid > 0 {
					if err := cni.Remove(ctx, e.ns+"-"+id, fmt.Sprintf("/proc/%d/ns/net", c.Pid)); err != nil {
						return err
					}
				}
			}
			return rt.Remove(ctx, id)
		})
		if runtimeMedian > 0 && ctrMedian > 0 {
			b.ReportMetric(runtimeMedian/ctrMedian, "runtime/ctr")
		}
	})
	if runtimeMedian > 0 && ctrMedian > 0 {
		b.Logf("create→running with a network, median: attach + Runtime.Run %.1f ms, ctr run -d --cni %.1f ms, ratio %.2f",
			runtimeMedian, ctrMedian, runtimeMedian/ctrMedian)
	}
}

// ctrNetwork installs, for the benchmark's length, the conflist ctr reads
// (the plugins the agent runs, on a bridge and range of the test's own)
// and returns it.
func ctrNetwork(b *testing.B, names testenv.NetworkNames) []byte {
	b.Helper()
	if entries, _ := os.ReadDir(ctrConfDir); len(entries) > 0 {
		b.Skipf("%s already holds a CNI configuration; ctr would use it", ctrConfDir)
	}
	bridge := names.BridgePrefix + "c"
	subnet := names.CIDR.String()
	conf, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": bridge, "plugins": []any{
		map[string]any{"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": true,
			"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": subnet}}},
				"routes": []map[string]string{{"dst": "0.0.0.0/0"}}, "dataDir": b.TempDir()}},
	}})
	for _, d := range []string{ctrConfDir, ctrBinDir} {
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
	file := filepath.Join(ctrConfDir, "00-berth-bench.conflist")
	if err := os.WriteFile(file, conf, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		os.Remove(file)
		_ = exec.Command("ip", "link", "del", bridge).Run()
	})
	for _, p := range []string{"bridge", "host-local"} {
		link := filepath.Join(ctrBinDir, p)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(testenv.CNIBinDir, p), link); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.Remove(link) })
	}
	return conf
}
