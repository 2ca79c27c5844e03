package containerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/network"
	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/agent/testenv"
)

// A container joins the network namespace its session's network made for
// it (Spec.NetNS); its /etc/hosts is the agent's, read-only. Root in it
// cannot change its address or its links to pass for another session (no
// CAP_NET_ADMIN: not in its bounding set, and the network namespace is the
// host's). Not under a user namespace: runc 1.1.5 can neither mount sysfs
// for such a container nor exec into it (agent/DESIGN.md), so the agent
// runs -userns-remap without session networks.
func TestAContainerJoinsItsSessionNetwork(t *testing.T) {
	for _, userns := range []bool{false} {
		t.Run(fmt.Sprintf("userns %v", userns), func(t *testing.T) {
			names := testenv.Network(t)
			e := newEnv(t, true)
			dir := filepath.Dir(e.socket)
			if err := os.Chmod(dir, 0o711); err != nil {
				t.Fatal(err)
			}
			e.cfg.HomeDir = filepath.Join(dir, "homes")
			if userns {
				e.cfg.UserNS = &IDMap{HostUID: 300000, HostGID: 300000, Size: 65536}
			}
			rt := e.runtime(t)
			ctx := testCtx(t)
			m, err := network.New(ctx, network.Config{BinDir: testenv.CNIBinDir, StateDir: filepath.Join(dir, "net"), CIDR: names.CIDR,
				Egress: true, BridgePrefix: names.BridgePrefix, ChainPrefix: names.ChainPrefix}, network.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			id := uniqueID("net")
			att, err := m.Attach(ctx, network.Request{ContainerID: id, SessionID: "sess-" + id, Size: 1, Egress: true, Hostname: id})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := m.Detach(context.Background(), id); err != nil {
					t.Errorf("detach: %v", err)
				}
			})
			s := baseSpec(id, "sleep", "300")
			s.Home, s.NetNS = "/home/work", att.NetNS
			s.Mounts = []runtime.Mount{{Source: att.Hosts, Target: "/etc/hosts", ReadOnly: true}, {Source: att.ResolvConf, Target: "/etc/resolv.conf", ReadOnly: true}}
			if _, err := rt.Run(ctx, s); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rt.Remove(context.Background(), id) })
			res, err := rt.Exec(ctx, id, []string{"sh", "-c", "ip -4 addr show eth0; cat /etc/hosts"}, 20*time.Second)
			if err != nil || !strings.Contains(string(res.Stdout), "inet "+att.Address.String()+"/25") || !strings.Contains(string(res.Stdout), att.Address.String()+"\tmain1 "+id) {
				t.Fatalf("in the container: %v\n%s%s", err, res.Stdout, res.Stderr)
			}
			// The attack: root in the container takes another address, or
			// takes its link down, to pass for another session.
			for _, cmd := range []string{"ip addr add " + names.CIDR.Addr().Next().Next().Next().String() + "/25 dev eth0", "ip link set eth0 down", "echo x > /etc/hosts"} {
				res, err := rt.Exec(ctx, id, []string{"sh", "-c", cmd}, 20*time.Second)
				if err != nil || res.ExitCode == 0 {
					t.Errorf("root in the container ran %q: exit %d, %v", cmd, res.ExitCode, err)
				}
			}
			if err := rt.Stop(ctx, id, time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}
