package agent_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent"
	"github.com/berth-cluster/berth/agent/network"
	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// Session networks end to end: a real manager, a real agent on a private
// containerd, the real CNI plugins from /usr/lib/cni and the agent's real
// iptables chains. Every address the tests reach is on this machine: the
// sessions' bridges, the host's own addresses and a network namespace the
// test makes to stand for "outside", routed through the host by a veth.

// netCluster is a session cluster whose agent networks its sessions.
type netCluster struct {
	*sessionCluster
	names    testenv.NetworkNames
	netDir   string
	agentURL string // host:port of the agent's API, on every address
	gateway  string // the host's address on the first session's bridge
}

// startNetCluster starts a session cluster with networking; tweak changes
// the network's configuration (allowed host ports, egress).
func startNetCluster(t *testing.T, tweak func(*network.Config)) *netCluster {
	t.Helper()
	names := testenv.Network(t)
	nc := &netCluster{names: names}
	egress := true
	nc.sessionCluster = startSessionClusterWith(t, 0, func(cfg *agent.Config) {
		nc.netDir = filepath.Join(cfg.StateDir, "net")
		ncfg := network.Config{BinDir: testenv.CNIBinDir, StateDir: nc.netDir, CIDR: names.CIDR, Egress: true,
			BridgePrefix: names.BridgePrefix, ChainPrefix: names.ChainPrefix}
		if tweak != nil {
			tweak(&ncfg)
		}
		egress = ncfg.Egress
		m, err := network.New(context.Background(), ncfg, network.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Network = m
		// Runs once the agent has stopped (cleanups run last first): what
		// a failed test left attached is detached, as the next agent's
		// start would, so no namespace or bridge outlives the test.
		t.Cleanup(func() {
			if err := m.Sweep(context.Background(), nil); err != nil {
				t.Errorf("sweep the test's session networks: %v", err)
			}
		})
		// On every address, so that a container could reach it if the
		// rules let it: the host's bridge address included.
		cfg.HTTPAddr = "0.0.0.0:0"
	})
	var l api.List[api.Agent]
	nc.do(nc.admin, http.MethodGet, "/v1/agents", nil).JSON(t, &l)
	nc.agentURL = l.Items[0].Address
	if n := l.Items[0].Node.Network; n == nil || n.Mode != network.Mode || !slices.Contains(n.CNIPlugins, "bridge") || n.Egress != egress || n.CIDR != names.CIDR.String() {
		t.Fatalf("the agent's fingerprint reports its network as %+v", l.Items[0].Node.Network)
	}
	// Sessions of a tenth of a core, so that many fit.
	nc.want(nc.do(nc.admin, http.MethodPatch, "/v1/resource-policies/default", map[string]any{"max_containers_per_session": 2, "max_concurrent_sessions": nil}), http.StatusOK)
	return nc
}

// startSession starts a session of size containers running script in sh.
func (nc *netCluster) startSession(size int, script string, extra map[string]any) api.Session {
	nc.t.Helper()
	return nc.waitAddressed(nc.createSession(size, script, extra).ID)
}

// createSession creates a session and returns at once.
func (nc *netCluster) createSession(size int, script string, extra map[string]any) api.Session {
	nc.t.Helper()
	body := map[string]any{"image": testenv.BaseImageName, "type": api.SessionInteractive, "cluster_size": size,
		"command": []string{"sh", "-c", script}, "resources": map[string]any{"cpu": 0.1, "mem": 64 << 20}}
	for k, v := range extra {
		body[k] = v
	}
	r := nc.do(nc.user, http.MethodPost, "/v1/sessions", body)
	nc.want(r, http.StatusCreated)
	var s api.Session
	r.JSON(nc.t, &s)
	nc.t.Cleanup(func() { nc.do(nc.user, http.MethodDelete, "/v1/sessions/"+s.ID, nil) })
	return s
}

// waitAddressed waits until the session runs and every container of it
// has reported its address.
func (nc *netCluster) waitAddressed(id string) api.Session {
	nc.t.Helper()
	var s api.Session
	testcluster.Eventually(nc.t, slowMachine, func() error {
		s = nc.get(id)
		if s.Status != api.SessionRunning {
			return fmt.Errorf("session %s is %s (%s)", id, s.Status, s.StatusInfo)
		}
		for i, c := range s.Containers {
			if c.Address == "" {
				return fmt.Errorf("container %d has no address yet", i)
			}
		}
		return nil
	})
	return s
}

// exec runs a shell script in container index of the session, as the
// session's user, and returns its output and exit code.
func (nc *netCluster) exec(s api.Session, index int, script string) (string, int) {
	nc.t.Helper()
	res, err := nc.rt.Exec(context.Background(), fmt.Sprintf("%s-%d", s.ID, index), []string{"sh", "-c", script}, 30*time.Second)
	if err != nil {
		nc.t.Fatalf("exec in %s-%d: %v", s.ID, index, err)
	}
	return string(res.Stdout) + string(res.Stderr), res.ExitCode
}

// httpGet is an HTTP GET from inside a container with busybox nc (its
// wget crashes on name lookups in Debian's static busybox); it fails
// after 3 s without an answer.
func httpGet(addr string, port int) string {
	return fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %s %d`, addr, port)
}

// serveHTTP is a session command: sub containers serve "hello from subN"
// on 8080 with busybox httpd, the main one waits.
const serveHTTP = `if [ "$BERTH_CLUSTER_ROLE" = sub ]; then mkdir -p /tmp/www && echo "hello from sub$BERTH_CLUSTER_IDX" > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www; fi; trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done`

// unreachable asserts that the script (a connection attempt bounded at 3
// s) gets nothing: it fails, having waited for its timeout (the packets
// were dropped, not refused by a listener).
func (nc *netCluster) unreachable(s api.Session, index int, what, script string) {
	nc.t.Helper()
	start := time.Now()
	out, code := nc.exec(s, index, script)
	took := time.Since(start)
	if code == 0 || strings.Contains(out, "hello") || strings.Contains(out, "HTTP/1") {
		nc.t.Errorf("%s: reachable (exit %d): %s", what, code, out)
		return
	}
	if took < 2500*time.Millisecond {
		nc.t.Errorf("%s: failed after %v (%q), not by timing out: something answered", what, took.Round(time.Millisecond), out)
	}
}

// Two containers of one session: each knows the session's cluster from
// its environment and /etc/hosts, and main1 reaches busybox httpd in sub1
// by name.
func TestContainersOfASessionReachEachOtherByName(t *testing.T) {
	t.Parallel()
	nc := startNetCluster(t, nil)
	s := nc.startSession(2, serveHTTP, nil)
	if s.Containers[0].Agent != s.Containers[1].Agent {
		t.Fatalf("the containers are on two agents: %+v", s.Containers)
	}
	for i, want := range []string{"main1,sub1 main 1 2", "main1,sub1 sub 1 2"} {
		out, code := nc.exec(s, i, `echo "$BERTH_CLUSTER_HOSTS $BERTH_CLUSTER_ROLE $BERTH_CLUSTER_IDX $BERTH_CLUSTER_SIZE"`)
		if code != 0 || strings.TrimSpace(out) != want {
			t.Errorf("container %d: env %q (exit %d), want %q", i, out, code, want)
		}
	}
	hosts, _ := nc.exec(s, 0, "cat /etc/hosts")
	if !strings.Contains(hosts, s.Containers[1].Address+"\tsub1") || !strings.Contains(hosts, s.Containers[0].Address+"\tmain1") {
		t.Errorf("/etc/hosts of main1:\n%s\ncontainers %+v", hosts, s.Containers)
	}
	// /etc/hosts is the agent's, bound read-only, nosuid and nodev.
	if out, code := nc.exec(s, 0, "echo x >> /etc/hosts"); code == 0 {
		t.Errorf("a session wrote its /etc/hosts: %s", out)
	}
	if out, _ := nc.exec(s, 0, "grep ' /etc/hosts ' /proc/self/mountinfo"); !strings.Contains(out, "ro,nosuid,nodev") {
		t.Errorf("/etc/hosts is mounted %q", out)
	}
	// wget by name, as the issue has it; Debian's static busybox may crash
	// in its name lookup, which is then said and the address from
	// /etc/hosts used, as a program with a working resolver would.
	out, code := nc.exec(s, 0, "wget -qO- -T 5 http://sub1:8080/")
	if code != 0 {
		t.Logf("busybox wget http://sub1:8080/ exited %d (%q): reading sub1 from /etc/hosts instead", code, out)
		out, code = nc.exec(s, 0, httpGet("$(awk '$2 == \"sub1\" {print $1}' /etc/hosts)", 8080))
	}
	if code != 0 || !strings.Contains(out, "hello from sub1") {
		t.Fatalf("main1 did not reach sub1's httpd (exit %d): %s", code, out)
	}
}

// A second session of the same user cannot reach the first one's
// containers; the first one's own containers can (the control).
func TestASessionCannotReachAnotherSession(t *testing.T) {
	t.Parallel()
	nc := startNetCluster(t, nil)
	first := nc.startSession(2, serveHTTP, nil)
	second := nc.startSession(1, serveHTTP, nil)
	target := first.Containers[1].Address
	if out, code := nc.exec(first, 0, httpGet(target, 8080)); code != 0 || !strings.Contains(out, "hello from sub1") {
		t.Fatalf("control: main1 of the first session does not reach its sub1 at %s (exit %d): %s", target, code, out)
	}
	nc.unreachable(second, 0, "the second session to the first one's sub1 at "+target, httpGet(target, 8080))
	nc.unreachable(second, 0, "the second session to the first one's main1", "nc -w 3 "+first.Containers[0].Address+" 22 </dev/null")
}

// No container reaches the agent's API on any of the host's addresses (its
// bridge address, the host's own interfaces), nor a port the operator did
// not allow; a port allowed with -session-allow-host-port is reachable,
// which shows the rules, not the route, decide.
func TestSessionsReachNoHostPortButTheAllowedOnes(t *testing.T) {
	t.Parallel()
	allowed, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer allowed.Close()
	go http.Serve(allowed, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello from the host\n") }))
	allowedPort := allowed.Addr().(*net.TCPAddr).Port
	nc := startNetCluster(t, func(c *network.Config) {
		c.AllowHostPorts = []network.HostPort{{Port: uint16(allowedPort), Proto: "tcp"}}
	})
	s := nc.startSession(1, serveHTTP, nil)
	_, agentPort, _ := net.SplitHostPort(nc.agentURL)
	ap, _ := strconv.Atoi(agentPort)
	gw, _ := nc.exec(s, 0, "ip route 2>/dev/null | awk '/default/ {print $3}'; route -n 2>/dev/null | awk '$1 == \"0.0.0.0\" {print $2}'")
	gateway := strings.Fields(gw)
	if len(gateway) == 0 {
		t.Fatalf("no default gateway in the container: %q", gw)
	}
	hostAddrs := append([]string{gateway[0]}, hostIPv4s(t)...)
	for _, addr := range hostAddrs {
		nc.unreachable(s, 0, "the agent's API at "+addr, httpGet(addr, ap))
		if out, code := nc.exec(s, 0, httpGet(addr, allowedPort)); code != 0 || !strings.Contains(out, "hello from the host") {
			t.Errorf("control: the allowed port %d at %s is not reachable (exit %d): %s", allowedPort, addr, code, out)
		}
	}
	// The metadata range is never reached, whatever answers there.
	nc.unreachable(s, 0, "the metadata range", "nc -w 3 169.254.169.254 80 </dev/null")
}

// hostIPv4s are the host's own global IPv4 addresses on the interfaces of
// its default routes: where the agent's API is reached from. Addresses on
// the bridges and veths other tests make and remove meanwhile (the
// reliability suite's, in another package running at the same time) are
// not the host's, and may be gone by the time the session tries them.
func hostIPv4s(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "-4", "-o", "route", "show", "default").Output()
	if err != nil {
		t.Fatalf("ip route show default: %v", err)
	}
	var addrs []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		dev := ""
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "dev" {
				dev = f[i+1]
			}
		}
		if dev == "" {
			continue
		}
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			t.Fatalf("the default route's interface %s: %v", dev, err)
		}
		as, err := ifc.Addrs()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil && !ip.IP.IsLoopback() && ip.IP.IsGlobalUnicast() && !slices.Contains(addrs, ip.IP.String()) {
				addrs = append(addrs, ip.IP.String())
			}
		}
	}
	return addrs
}

// outside is a network namespace the test makes to stand for the world
// beyond the node: a veth pair from the host, an address of the benchmark
// range 198.18.0.0/15 routed to it (so nothing leaves the machine) and
// busybox httpd serving in it.
type outside struct {
	addr string
	port int
}

func makeOutside(t *testing.T) outside {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(b[:])
	ns, host, peer := "bto-"+h, "bto"+h, "bti"+h
	third, fourth := int(b[0])%256, int(b[1])%64*4
	hostAddr := fmt.Sprintf("198.18.%d.%d", third, fourth+1)
	o := outside{addr: fmt.Sprintf("198.18.%d.%d", third, fourth+2), port: 8080}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("link", "add", host, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
	run("link", "set", peer, "netns", ns)
	run("addr", "add", hostAddr+"/30", "dev", host)
	run("link", "set", host, "up")
	run("-n", ns, "addr", "add", o.addr+"/30", "dev", peer)
	run("-n", ns, "link", "set", peer, "up")
	run("-n", ns, "link", "set", "lo", "up")
	run("-n", ns, "route", "add", "default", "via", hostAddr)
	// Nothing may leave the machine: the host must route the address to
	// the veth, never to its default route.
	if out, _ := exec.Command("ip", "route", "get", o.addr).CombinedOutput(); !strings.Contains(string(out), "dev "+host) {
		t.Fatalf("the host does not route %s to the test's namespace: %s", o.addr, out)
	}
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("hello from outside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command("ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", fmt.Sprintf("%s:%d", o.addr, o.port), "-h", www)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	return o
}

// A session reaches a server beyond the node with egress on; a session
// created under a policy with allow_egress false does not, and neither
// does any session of an agent started with -session-egress=false.
func TestEgressFollowsThePolicyAndTheAgent(t *testing.T) {
	t.Parallel()
	o := makeOutside(t)
	get := httpGet(o.addr, o.port)
	t.Run("policy", func(t *testing.T) {
		nc := startNetCluster(t, nil)
		open := nc.startSession(1, serveHTTP, nil)
		testcluster.Eventually(t, 10*time.Second, func() error { // the server may still be starting
			if out, code := nc.exec(open, 0, get); code != 0 || !strings.Contains(out, "hello from outside") {
				return fmt.Errorf("a session with egress does not reach %s (exit %d): %s", o.addr, code, out)
			}
			return nil
		})
		nc.want(nc.do(nc.admin, http.MethodPatch, "/v1/resource-policies/default", map[string]any{"allow_egress": false}), http.StatusOK)
		closed := nc.startSession(1, serveHTTP, nil)
		nc.unreachable(closed, 0, "a session of a policy without egress to "+o.addr, get)
		// The open session, started before the change, keeps its egress.
		if out, code := nc.exec(open, 0, get); code != 0 || !strings.Contains(out, "hello from outside") {
			t.Errorf("the session started with egress lost it (exit %d): %s", code, out)
		}
	})
	t.Run("agent", func(t *testing.T) {
		nc := startNetCluster(t, func(c *network.Config) { c.Egress = false })
		s := nc.startSession(1, serveHTTP, nil)
		nc.unreachable(s, 0, "a session of an agent without egress to "+o.addr, get)
	})
}

// hostState is what this test's sessions may leave on the host (other
// tests on the machine change it too, so only what is the test's is
// compared): its bridges, the leases under its state directory, and
// every rule of the filter and nat tables that names its chains, its
// range or its bridges (the plugins' masquerading rules name the network,
// which is the bridge).
func (nc *netCluster) hostState() string {
	t := nc.t
	t.Helper()
	links, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(string(links), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			if name := strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]; strings.HasPrefix(name, nc.names.BridgePrefix) {
				names = append(names, name)
			}
		}
	}
	var leases []string
	_ = filepath.WalkDir(filepath.Join(nc.netDir, "ipam"), func(p string, d os.DirEntry, err error) error {
		if err == nil && p != filepath.Join(nc.netDir, "ipam") {
			leases = append(leases, strings.TrimPrefix(p, nc.netDir))
		}
		return nil
	})
	var rules []string
	for _, table := range []string{"filter", "nat"} {
		out, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "-A ") && (strings.Contains(l, nc.names.ChainPrefix) || strings.Contains(l, nc.names.CIDR.String()) ||
				strings.Contains(l, `name: \"`+nc.names.BridgePrefix)) {
				rules = append(rules, table+" "+l)
			}
		}
	}
	slices.Sort(names)
	slices.Sort(rules)
	return "bridges: " + strings.Join(names, " ") + "\nleases: " + strings.Join(leases, " ") + "\nrules:\n" + strings.Join(rules, "\n")
}

// veths are the host sides of the containers on the test's bridges.
func (nc *netCluster) veths() []string {
	out, _ := exec.Command("ip", "-o", "link", "show", "type", "veth").Output()
	var vs []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.Contains(l, " master "+nc.names.BridgePrefix) {
			vs = append(vs, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	return vs
}

// waitNetworkGone waits until the agent has detached every container: a
// session's network goes after its last container is removed.
func (nc *netCluster) waitNetworkGone() {
	nc.t.Helper()
	nc.waitNoContainers()
	testcluster.Eventually(nc.t, slowMachine, func() error {
		for _, sub := range []string{"ns", "sessions"} {
			if entries, _ := os.ReadDir(filepath.Join(nc.netDir, sub)); len(entries) != 0 {
				return fmt.Errorf("%s holds %d entries", sub, len(entries))
			}
		}
		return nil
	})
}

// Fifty sessions started and ended leave the host's links, the leases and
// the rules as they were: no bridge, no container's veth, no lease, no
// rule of theirs.
func TestFiftySessionsLeaveNothingBehind(t *testing.T) {
	t.Parallel()
	nc := startNetCluster(t, nil)
	before := nc.hostState()
	const total, batch = 50, 10
	seen := map[string]bool{}
	for done := 0; done < total; done += batch {
		// A batch is created at once, as users do: the agent starts its
		// containers side by side.
		var ss []api.Session
		for i := 0; i < batch; i++ {
			ss = append(ss, nc.createSession(1+i%2, serveHTTP, nil))
		}
		for i := range ss {
			ss[i] = nc.waitAddressed(ss[i].ID)
		}
		for _, v := range nc.veths() {
			seen[v] = true
		}
		for _, s := range ss {
			nc.terminate(s.ID)
		}
		for _, s := range ss {
			nc.wait(s.ID, api.SessionTerminated)
		}
	}
	if len(seen) < batch {
		t.Fatalf("saw %d veths on the test's bridges while %d sessions ran", len(seen), batch)
	}
	nc.waitNetworkGone()
	if after := nc.hostState(); after != before {
		t.Errorf("after %d sessions the host differs:\n--- before\n%s\n--- after\n%s", total, before, after)
	}
	for v := range seen {
		if err := exec.Command("ip", "link", "show", v).Run(); err == nil {
			t.Errorf("veth %s of an ended session is still there", v)
		}
	}
}

func (nc *netCluster) waitNoContainers() {
	nc.t.Helper()
	testcluster.Eventually(nc.t, slowMachine, func() error {
		cs, err := nc.rt.List(context.Background())
		if err != nil {
			return err
		}
		if len(cs) != 0 {
			return fmt.Errorf("%d containers left", len(cs))
		}
		return nil
	})
}

// brokenBridge is a CNI bin dir whose bridge plugin fails every ADD with a
// message of its own; the other plugins are the real ones.
func brokenBridge(t *testing.T, msg string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"host-local", "loopback"} {
		if err := os.Symlink(filepath.Join(testenv.CNIBinDir, p), filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	script := `#!/bin/sh
case "$CNI_COMMAND" in
ADD) printf '{"cniVersion":"1.0.0","code":999,"msg":"%s"}' "` + msg + `"; exit 1 ;;
VERSION) printf '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}' ;;
esac
exit 0
`
	if err := os.WriteFile(filepath.Join(dir, "bridge"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A CNI failure while a session starts ends it in ERROR with the plugin's
// own message, frees what it held, and leaves no network behind.
func TestACNIFailureEndsTheSessionWithThePluginsMessage(t *testing.T) {
	t.Parallel()
	const msg = "berth test: the bridge is out of order"
	bin := brokenBridge(t, msg)
	nc := startNetCluster(t, func(c *network.Config) { c.BinDir = bin })
	body := map[string]any{"image": testenv.BaseImageName, "type": api.SessionInteractive,
		"resources": map[string]any{"cpu": 1, "mem": 64 << 20}}
	r := nc.do(nc.user, http.MethodPost, "/v1/sessions", body)
	nc.want(r, http.StatusCreated)
	var s api.Session
	r.JSON(t, &s)
	s = nc.wait(s.ID, api.SessionError)
	if !strings.Contains(s.StatusInfo, msg) || !strings.Contains(s.StatusInfo, "network") {
		t.Errorf("status_info %q does not carry the plugin's message", s.StatusInfo)
	}
	var ind api.ResourceIndicator
	nc.do(nc.user, http.MethodGet, "/v1/resources/me", nil).JSON(t, &ind)
	if ind.Occupied["cpu"] != 0 {
		t.Errorf("the failed session still holds cpu %d", ind.Occupied["cpu"])
	}
	nc.waitNetworkGone()
}
