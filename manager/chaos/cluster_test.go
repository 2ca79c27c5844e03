package chaos_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-cluster/berth/shared/tlsfiles"
	"github.com/berth-cluster/berth/shared/tlsgen"
)

// managers is three berth-manager processes, manager i in namespace ns[i]
// at address ip[i], bridged to the test's namespace.
type managers struct {
	t      *testing.T
	bin    string
	dir    string
	prefix string // names of links and namespaces
	bridge string
	ips    []string
	peers  string
	tls    string      // directory of the CA and the managers' certificates
	dial   *tls.Config // trusts the managers' CA
	// liveness are the agents' timing flags of every manager.
	liveness []string

	mu    sync.Mutex
	procs []*exec.Cmd // nil: not running
	cut   []bool
}

const (
	httpPort = 8080
	raftPort = 8300
	admin    = "admin@berth.local"
	password = "Chaos-admin-1"
	agentTok = "chaos-agents-join-token"
)

// ipCmd runs ip(8) and fails the test on error.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// needNetns skips (or, in CI, fails) without root and network namespaces.
func needNetns(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "no ip(8)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("the reliability suite needs root and ip netns (%s); CI must provide them", why)
	}
	t.Skipf("the reliability suite needs root and ip netns: %s", why)
}

// buildManager builds berth-manager once for the test.
func buildManager(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "berth-manager")
	cmd := exec.Command("go", "build", "-tags", "no_dynamic_plugins", "-o", out, "github.com/berth-cluster/berth/manager/cmd/berth-manager")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build berth-manager: %v: %s", err, b)
	}
	return out
}

// startManagers starts the three managers; liveness replaces their
// agent timing flags (default: -heartbeat-timeout 20s).
func startManagers(t *testing.T, liveness ...string) *managers {
	t.Helper()
	if liveness == nil {
		liveness = []string{"-heartbeat-timeout", "20s"}
	}
	needNetns(t)
	rnd := make([]byte, 3)
	if _, err := rand.Read(rnd); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(rnd)
	m := &managers{t: t, bin: buildManager(t), dir: t.TempDir(), prefix: "bc" + id, bridge: "bcb" + id,
		procs: make([]*exec.Cmd, 3), cut: make([]bool, 3), liveness: liveness}
	subnet := fmt.Sprintf("10.%d.%d", 100+int(rnd[0])%100, rnd[1])
	ipCmd(t, "link", "add", m.bridge, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", m.bridge).Run() })
	ipCmd(t, "addr", "add", subnet+".1/24", "dev", m.bridge)
	ipCmd(t, "link", "set", m.bridge, "up")
	var peers []string
	for i := range 3 {
		ns, veth := m.ns(i), m.veth(i)
		ip := fmt.Sprintf("%s.%d", subnet, 10+i)
		m.ips = append(m.ips, ip)
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		ipCmd(t, "link", "add", veth, "type", "veth", "peer", "name", veth+"p")
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", veth).Run() })
		ipCmd(t, "link", "set", veth+"p", "netns", ns)
		ipCmd(t, "-n", ns, "addr", "add", ip+"/24", "dev", veth+"p")
		ipCmd(t, "-n", ns, "link", "set", veth+"p", "up")
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
		ipCmd(t, "link", "set", veth, "master", m.bridge)
		ipCmd(t, "link", "set", veth, "up")
		peers = append(peers, fmt.Sprintf("m%d=%s:%d=%s:%d", i+1, ip, raftPort, ip, httpPort))
	}
	m.peers = strings.Join(peers, ",")
	m.certificates()
	t.Cleanup(m.stopAll)
	for i := range 3 {
		m.start(i)
	}
	m.waitReady(90 * time.Second)
	return m
}

func (m *managers) ns(i int) string   { return fmt.Sprintf("%s-n%d", m.prefix, i) }
func (m *managers) veth(i int) string { return fmt.Sprintf("%sv%d", m.prefix, i) }
func (m *managers) url(i int) string  { return fmt.Sprintf("https://%s:%d", m.ips[i], httpPort) }

func (m *managers) urls() []string { return []string{m.url(0), m.url(1), m.url(2)} }

// certificates makes the cluster's CA and a manager certificate per
// manager naming its address: the managers run as in production, mutual
// TLS on Raft and HTTPS.
func (m *managers) certificates() {
	m.t.Helper()
	m.tls = filepath.Join(m.dir, "tls")
	ca, err := tlsgen.NewCA(time.Now(), "chaos", 24*time.Hour)
	if err != nil {
		m.t.Fatal(err)
	}
	caCert, caKey := tlsgen.Files(m.tls, "ca")
	if err := tlsgen.Write(caCert, ca.CertPEM, caKey, ca.KeyPEM, false); err != nil {
		m.t.Fatal(err)
	}
	for i, ip := range m.ips {
		is, err := ca.Issue(time.Now(), tlsgen.Request{Role: tlsgen.Manager, CommonName: fmt.Sprintf("m%d", i+1),
			IPs: []net.IP{net.ParseIP(ip)}, Validity: 12 * time.Hour})
		if err != nil {
			m.t.Fatal(err)
		}
		cert, key := tlsgen.Files(m.tls, fmt.Sprintf("m%d", i+1))
		if err := tlsgen.Write(cert, is.CertPEM, key, is.KeyPEM, false); err != nil {
			m.t.Fatal(err)
		}
	}
	if m.dial, err = (tlsfiles.Files{CA: caCert}).Client(); err != nil {
		m.t.Fatal(err)
	}
}

// httpClient dials the managers over HTTPS, trusting their CA.
func (m *managers) httpClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: tlsfiles.Transport(m.dial)}
}

// start runs manager i (again: its data dir keeps its state).
func (m *managers) start(i int) {
	m.t.Helper()
	ip := m.ips[i]
	logf, err := os.OpenFile(filepath.Join(m.dir, fmt.Sprintf("m%d.log", i+1)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		m.t.Fatal(err)
	}
	args := append([]string{"netns", "exec", m.ns(i), m.bin,
		"-node-id", fmt.Sprintf("m%d", i+1), "-http-addr", fmt.Sprintf("%s:%d", ip, httpPort),
		"-raft-addr", fmt.Sprintf("%s:%d", ip, raftPort), "-data-dir", filepath.Join(m.dir, fmt.Sprintf("m%d", i+1)),
		"-bootstrap-expect", "3", "-peers", m.peers, "-agent-token", agentTok,
		"-tls-cert", filepath.Join(m.tls, fmt.Sprintf("m%d.pem", i+1)), "-tls-key", filepath.Join(m.tls, fmt.Sprintf("m%d-key.pem", i+1)),
		"-tls-ca", filepath.Join(m.tls, "ca.pem"), "-log-level", "warn"}, m.liveness...)
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), "BERTH_BOOTSTRAP_ADMIN_PASSWORD="+password)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start manager %d: %v", i+1, err)
	}
	logf.Close()
	m.mu.Lock()
	m.procs[i] = cmd
	m.mu.Unlock()
	go func() { _ = cmd.Wait() }()
}

// kill stops manager i with SIGKILL.
func (m *managers) kill(i int) {
	m.mu.Lock()
	cmd := m.procs[i]
	m.procs[i] = nil
	m.mu.Unlock()
	if cmd != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (m *managers) signal(i int, sig syscall.Signal) {
	m.mu.Lock()
	cmd := m.procs[i]
	m.mu.Unlock()
	if cmd != nil {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	}
}

// setCut takes manager i off the network (both ways) or puts it back.
func (m *managers) setCut(i int, off bool) {
	state := "up"
	if off {
		state = "down"
	}
	if out, err := exec.Command("ip", "link", "set", m.veth(i), state).CombinedOutput(); err != nil {
		m.t.Errorf("ip link set %s %s: %v: %s", m.veth(i), state, err, out)
	}
	m.mu.Lock()
	m.cut[i] = off
	m.mu.Unlock()
}

// heal undoes every fault: links up, paused managers continued, dead
// ones started.
func (m *managers) heal() {
	for i := range 3 {
		m.setCut(i, false)
		m.signal(i, syscall.SIGCONT)
		m.mu.Lock()
		dead := m.procs[i] == nil
		m.mu.Unlock()
		if dead {
			m.start(i)
		}
	}
}

func (m *managers) stopAll() {
	for i := range 3 {
		m.kill(i)
	}
	if m.t.Failed() {
		for i := range 3 {
			b, _ := os.ReadFile(filepath.Join(m.dir, fmt.Sprintf("m%d.log", i+1)))
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			m.t.Logf("manager m%d log tail:\n%s", i+1, b)
		}
	}
}

// waitReady waits until every manager knows a leader and has applied the
// first-start objects.
func (m *managers) waitReady(within time.Duration) {
	m.t.Helper()
	deadline := time.Now().Add(within)
	hc := m.httpClient(0)
	for i := range 3 {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.url(i)+"/readyz", nil)
			resp, err := hc.Do(req)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if resp != nil {
				resp.Body.Close()
			}
			cancel()
			if ok {
				break
			}
			if time.Now().After(deadline) {
				m.t.Fatalf("manager m%d not ready within %s (%v)", i+1, within, err)
			}
			time.Sleep(100 * time.Millisecond) // polling a process outside the test: nothing to wait on
		}
	}
}

// tail is a log's last bytes, for failure messages.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}
