package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Mode is how sessions are networked, as the fingerprint reports it.
const Mode = "bridge-per-session"

// cleanupTimeout bounds undoing a half-made attachment, which must happen
// even when the caller's ctx is what failed.
const cleanupTimeout = 30 * time.Second

// Manager attaches containers to their session's network and detaches
// them. One Manager owns StateDir, the bridges of BridgePrefix and the
// chains of ChainPrefix on its host.
type Manager struct {
	cfg  Config
	host Host
	fw   Firewall
	cni  CNI
	log  *slog.Logger
	tmpl conflist
	// template says where the template came from, for the fingerprint.
	template string

	mu       sync.Mutex
	sessions map[string]*record // by session id
	owner    map[string]string  // container id → session id
}

// Deps are the host interfaces; nil ones are the real host's.
type Deps struct {
	Host     Host
	Firewall Firewall
	CNI      CNI
	Log      *slog.Logger
}

// Facts are what the agent reports of its networking.
type Facts struct {
	Mode     string
	Plugins  []string
	Egress   bool
	CIDR     string
	Template string
}

// Request is one container to attach.
type Request struct {
	ContainerID string
	SessionID   string
	Index       int
	// Size is the session's cluster_size: every container's name is in
	// each /etc/hosts from the start.
	Size int
	// Egress: the session's policy allows it (the agent's -session-egress
	// must too).
	Egress bool
	// Hostname is the container's own host name, also in its /etc/hosts.
	Hostname string
	// Ports the session declared, kept with its record.
	Ports []Port
}

// Attachment is what the runtime needs to put the container on its network.
type Attachment struct {
	// NetNS is the network namespace the container joins.
	NetNS   string
	Address netip.Addr
	// Hosts and ResolvConf are host files for /etc/hosts and
	// /etc/resolv.conf (bind-mounted read-only).
	Hosts, ResolvConf string
	// Env is BERTH_CLUSTER_*.
	Env map[string]string
}

// New checks the host (plugins, iptables, the range against its routes),
// loads the records of an earlier run and rebuilds the agent's rules. A
// problem is reported with what to do about it; the agent then refuses to
// start.
func New(ctx context.Context, cfg Config, deps Deps) (*Manager, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, host: deps.Host, fw: deps.Firewall, cni: deps.CNI, log: deps.Log,
		sessions: map[string]*record{}, owner: map[string]string{}}
	if m.host == nil {
		m.host = System{}
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.cni == nil {
		m.cni = NewCNI(cfg.BinDir)
	}
	for _, d := range []string{cfg.StateDir, m.dir("sessions"), m.dir("ns")} {
		// Searchable by others: a remapped root must reach the hosts files.
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("network state: %w", err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, fmt.Errorf("network state: %w", err)
		}
	}
	if err := os.MkdirAll(m.dir("ipam"), 0o700); err != nil {
		return nil, fmt.Errorf("network state: %w", err)
	}
	if cfg.ConfDir != "" {
		t, file, err := loadTemplate(cfg.ConfDir)
		if err != nil {
			return nil, fmt.Errorf("-cni-conf-dir: %w", err)
		}
		m.tmpl, m.template = t, file
	} else {
		file := m.dir("cni", "berth.conflist")
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return nil, fmt.Errorf("network state: %w", err)
		}
		raw := defaultConflist(cfg.CIDR, bridgeName(cfg.BridgePrefix, 0))
		if err := writeFile(file, raw, 0o600); err != nil {
			return nil, fmt.Errorf("write the default CNI configuration: %w", err)
		}
		t, _, err := loadTemplate(filepath.Dir(file))
		if err != nil {
			return nil, err
		}
		m.tmpl, m.template = t, file
	}
	if err := checkPlugins(cfg.BinDir, append(m.tmpl.types(), "loopback")); err != nil {
		return nil, err
	}
	if m.fw == nil {
		if err := CheckIptables(); err != nil {
			return nil, err
		}
		m.fw = Iptables{}
	}
	if err := checkRoutes(m.host, cfg.CIDR, cfg.BridgePrefix); err != nil {
		return nil, err
	}
	if err := m.load(); err != nil {
		return nil, err
	}
	if err := m.applyRules(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) dir(parts ...string) string {
	return filepath.Join(append([]string{m.cfg.StateDir}, parts...)...)
}

func (m *Manager) sessionDir(id string) string { return m.dir("sessions", id) }

func (m *Manager) netnsPath(container string) string { return m.dir("ns", container) }

// load reads the records an earlier run left.
func (m *Manager) load() error {
	entries, err := os.ReadDir(m.dir("sessions"))
	if err != nil {
		return fmt.Errorf("read network records: %w", err)
	}
	for _, e := range entries {
		r, err := loadRecord(m.sessionDir(e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // made by a run that died before its record: swept
		}
		if err != nil {
			return fmt.Errorf("read network record: %w", err)
		}
		m.sessions[r.Session] = r
		for id := range r.Containers {
			m.owner[id] = r.Session
		}
	}
	return nil
}

// Facts implements the fingerprint's part.
func (m *Manager) Facts() Facts {
	return Facts{Mode: Mode, Plugins: Plugins(m.cfg.BinDir), Egress: m.cfg.Egress, CIDR: m.cfg.CIDR.String(), Template: m.template}
}

// Address is a container's address, if it is attached.
func (m *Manager) Address(container string) (netip.Addr, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.sessions[m.owner[container]]
	if r == nil {
		return netip.Addr{}, false
	}
	mb, ok := r.Containers[container]
	return mb.Address, ok
}

// Ports are the ports a container's session declared.
func (m *Manager) Ports(container string) []Port {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.sessions[m.owner[container]]; r != nil {
		return slices.Clone(r.Containers[container].Ports)
	}
	return nil
}

// Attach gives a container its network namespace on its session's
// network. The session's network is made with its first container (its
// bridge is the plugins' to create); the rules that isolate it are in
// place before any container of it has an address.
func (m *Manager) Attach(ctx context.Context, req Request) (Attachment, error) {
	dirName, err := sessionDirName(req.SessionID)
	if err != nil {
		return Attachment{}, err
	}
	if _, err := sessionDirName(req.ContainerID); err != nil {
		return Attachment{}, fmt.Errorf("container: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, attached := m.owner[req.ContainerID]; attached {
		// Attached by a start that did not finish: start again clean.
		if err := m.detach(ctx, req.ContainerID); err != nil {
			return Attachment{}, err
		}
	}
	r := m.sessions[req.SessionID]
	if r == nil {
		if r, err = m.newSession(ctx, dirName, req); err != nil {
			return Attachment{}, err
		}
	}
	att, err := m.attach(ctx, r, req)
	if err != nil && len(r.Containers) == 0 {
		err = errors.Join(err, m.teardown(context.WithoutCancel(ctx), r))
	}
	return att, err
}

// newSession takes the lowest free /25 for the session and makes its
// record, files and rules.
func (m *Manager) newSession(ctx context.Context, dirName string, req Request) (*record, error) {
	used := map[int]bool{}
	for _, r := range m.sessions {
		used[r.Block] = true
	}
	k := -1
	for i := range blocks(m.cfg.CIDR) {
		if !used[i] {
			k = i
			break
		}
	}
	if k < 0 {
		return nil, fmt.Errorf("no session network left: -session-cidr %s holds %d sessions of /%d and all are in use", m.cfg.CIDR, blocks(m.cfg.CIDR), SessionPrefixLen)
	}
	r := &record{Session: req.SessionID, Block: k, Bridge: bridgeName(m.cfg.BridgePrefix, k),
		Subnet: blockSubnet(m.cfg.CIDR, k), Egress: req.Egress && m.cfg.Egress, Size: max(req.Size, 1),
		Containers: map[string]member{}}
	dir := m.sessionDir(dirName)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clear network dir of session %s: %w", r.Session, err)
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("network dir of session %s: %w", r.Session, err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		return nil, err
	}
	conf, err := sessionConflist(m.tmpl, r.Bridge, r.Subnet, r.Egress, m.dir("ipam"))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("CNI configuration of session %s: %w", r.Session, err), os.RemoveAll(dir))
	}
	if err := writeFile(filepath.Join(dir, "net.conflist"), conf, 0o600); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	if err := writeFile(filepath.Join(dir, "resolv.conf"), resolvConf(m.cfg.ResolvConf), 0o644); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	if err := saveRecord(dir, r); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	m.sessions[r.Session] = r
	if err := m.applyRules(ctx); err != nil {
		return nil, errors.Join(err, m.teardown(context.WithoutCancel(ctx), r))
	}
	m.log.Info("session network made", "session", r.Session, "bridge", r.Bridge, "subnet", r.Subnet.String(), "egress", r.Egress)
	return r, nil
}

func (m *Manager) attach(ctx context.Context, r *record, req Request) (Attachment, error) {
	addr, err := containerAddr(r.Subnet, req.Index)
	if err != nil {
		return Attachment{}, err
	}
	dir := m.sessionDir(r.Session)
	hosts := hostsPath(dir, req.Index)
	if err := writeFile(hosts, hostsFile(r.Subnet, max(r.Size, req.Index+1), req.Index, req.Hostname), 0o644); err != nil {
		return Attachment{}, fmt.Errorf("write /etc/hosts of %s: %w", req.ContainerID, err)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "net.conflist"))
	if err != nil {
		return Attachment{}, fmt.Errorf("read the CNI configuration of session %s: %w", r.Session, err)
	}
	ns := m.netnsPath(req.ContainerID)
	if err := removeNetNS(ns); err != nil {
		return Attachment{}, err
	}
	if err := newNetNS(ns); err != nil {
		return Attachment{}, err
	}
	got, err := m.cni.Add(ctx, conf, req.ContainerID, ns, addr)
	if err == nil && got != addr {
		err = fmt.Errorf("the plugins gave address %s where %s was asked for", got, addr)
	}
	if err != nil {
		undo, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		return Attachment{}, errors.Join(fmt.Errorf("CNI: %w", err),
			m.cni.Del(undo, conf, req.ContainerID, ns), removeNetNS(ns), os.Remove(hosts))
	}
	r.Containers[req.ContainerID] = member{Index: req.Index, Address: addr, Ports: slices.Clone(req.Ports)}
	m.owner[req.ContainerID] = r.Session
	if err := saveRecord(dir, r); err != nil {
		return Attachment{}, errors.Join(err, m.detach(context.WithoutCancel(ctx), req.ContainerID))
	}
	return Attachment{NetNS: ns, Address: addr, Hosts: hosts, ResolvConf: filepath.Join(dir, "resolv.conf"),
		Env: ClusterEnv(req.Index, r.Size)}, nil
}

// Detach takes a container off its session's network once it is gone:
// its veth and lease (CNI DEL), its namespace, and with the session's last
// container the bridge, the session's leases directory and its rules. A
// container the network does not know is not an error.
func (m *Manager) Detach(ctx context.Context, container string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.detach(ctx, container)
}

func (m *Manager) detach(ctx context.Context, container string) error {
	r := m.sessions[m.owner[container]]
	ns := m.netnsPath(container)
	if r == nil {
		return removeNetNS(ns)
	}
	dir := m.sessionDir(r.Session)
	conf, err := os.ReadFile(filepath.Join(dir, "net.conflist"))
	if err != nil {
		return fmt.Errorf("read the CNI configuration of session %s: %w", r.Session, err)
	}
	path := ns
	if !isNetNS(ns) {
		// Gone with a reboot: the plugins free the lease without it.
		path = ""
	}
	if err := m.cni.Del(ctx, conf, container, path); err != nil {
		return fmt.Errorf("CNI DEL of %s: %w", container, err)
	}
	if err := removeNetNS(ns); err != nil {
		return err
	}
	mb := r.Containers[container]
	delete(r.Containers, container)
	delete(m.owner, container)
	if err := removeIfExists(hostsPath(dir, mb.Index)); err != nil {
		return err
	}
	if len(r.Containers) == 0 {
		return m.teardown(ctx, r)
	}
	return saveRecord(dir, r)
}

// teardown removes a session's network once it has no container: bridge,
// leases, files and rules.
func (m *Manager) teardown(ctx context.Context, r *record) error {
	var errs []error
	for id := range r.Containers {
		delete(m.owner, id)
	}
	delete(m.sessions, r.Session)
	errs = append(errs, m.host.DeleteLink(r.Bridge))
	errs = append(errs, removeIfExists(m.dir("ipam", r.Bridge)))
	errs = append(errs, removeIfExists(m.sessionDir(r.Session)))
	errs = append(errs, m.applyRules(ctx))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove the network of session %s: %w", r.Session, err)
	}
	m.log.Info("session network removed", "session", r.Session, "bridge", r.Bridge)
	return nil
}

// Sweep removes what no live container owns: attachments of containers
// that are gone, and namespaces, bridges, leases and session directories
// left by an agent that died mid-way. It runs at start, after the
// runtime has been listed.
func (m *Manager) Sweep(ctx context.Context, live map[string]bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(m.owner)) {
		if !live[id] {
			m.log.Info("detaching the network of a container that is gone", "container", id)
			errs = append(errs, m.detach(ctx, id))
		}
	}
	if entries, err := os.ReadDir(m.dir("ns")); err == nil {
		for _, e := range entries {
			if _, ok := m.owner[e.Name()]; !ok {
				errs = append(errs, removeNetNS(m.dir("ns", e.Name())))
			}
		}
	}
	if entries, err := os.ReadDir(m.dir("sessions")); err == nil {
		for _, e := range entries {
			if _, ok := m.sessions[e.Name()]; !ok {
				errs = append(errs, removeIfExists(m.sessionDir(e.Name())))
			}
		}
	}
	ours := map[string]bool{}
	for _, r := range m.sessions {
		ours[r.Bridge] = true
	}
	if entries, err := os.ReadDir(m.dir("ipam")); err == nil {
		for _, e := range entries {
			if !ours[e.Name()] {
				errs = append(errs, removeIfExists(m.dir("ipam", e.Name())))
			}
		}
	}
	links, err := m.host.Links()
	errs = append(errs, err)
	for _, l := range links {
		if blockOf(m.cfg.BridgePrefix, l) >= 0 && !ours[l] {
			m.log.Info("removing a session bridge no session owns", "bridge", l)
			errs = append(errs, m.host.DeleteLink(l))
		}
	}
	errs = append(errs, m.applyRules(ctx))
	return errors.Join(errs...)
}

// Ensure puts the agent's rules back if something removed them (a
// firewall reload): they are rebuilt whole and jumped to first.
func (m *Manager) Ensure(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applyRules(ctx)
}

// applyRules rebuilds the agent's chains from the records (m.mu held).
func (m *Manager) applyRules(ctx context.Context) error {
	var ss []sessionRule
	for _, id := range slices.Sorted(maps.Keys(m.sessions)) {
		r := m.sessions[id]
		ss = append(ss, sessionRule{subnet: r.Subnet, egress: r.Egress})
	}
	if err := m.fw.Restore(ctx, renderRules(m.cfg.ChainPrefix, m.cfg.CIDR, m.cfg.AllowHostPorts, ss)); err != nil {
		return fmt.Errorf("session firewall rules: %w", err)
	}
	in, fwd := chains(m.cfg.ChainPrefix)
	if err := m.fw.EnsureFirst(ctx, "INPUT", in); err != nil {
		return fmt.Errorf("session firewall rules: %w", err)
	}
	if err := m.fw.EnsureFirst(ctx, "FORWARD", fwd); err != nil {
		return fmt.Errorf("session firewall rules: %w", err)
	}
	return nil
}

// isNetNS tells whether path is a pinned network namespace (nsfs).
func isNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}
