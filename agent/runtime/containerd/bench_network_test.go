package containerd

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	gocni "github.com/containerd/go-cni"

	"github.com/berth-cluster/berth/agent/network"
	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/agent/testenv"
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
		conf := testenv.CtrCNI(b, names)
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
