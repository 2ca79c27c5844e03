// Command berth-agent runs the node daemon of Berth (see agent/). It also
// imports OCI image tarballs: berth-agent image import FILE.tar.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/berth-cluster/berth/agent"
	"github.com/berth-cluster/berth/agent/gpu"
	"github.com/berth-cluster/berth/agent/network"
	"github.com/berth-cluster/berth/agent/runtime/containerd"
	"github.com/berth-cluster/berth/agent/runtime/sim"
	"github.com/berth-cluster/berth/agent/simfleet"
	"github.com/berth-cluster/berth/shared/flagenv"
	"github.com/berth-cluster/berth/shared/jointoken"
	"github.com/berth-cluster/berth/shared/slots"
	"github.com/berth-cluster/berth/shared/tlsfiles"
	"github.com/berth-cluster/berth/shared/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "berth-agent:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "image" {
		return imageCmd(ctx, args[1:], getenv, stdout, stderr)
	}
	fs := flag.NewFlagSet("berth-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		managers     = fs.String("manager", "", "manager URLs, comma-separated: http://HOST:PORT[,http://HOST2:PORT]")
		token        = fs.String("token", "", "join token (prefer -token-file or BERTH_AGENT_TOKEN: ps shows the command line)")
		tokenFile    = fs.String("token-file", "", "file holding the join token (mode 0600): one from berth agent token create, or the managers' -agent-token")
		stateDir     = fs.String("state-dir", "", "directory for the agent's identity and container logs")
		socket       = fs.String("containerd", "/run/containerd/containerd.sock", "containerd socket")
		namespace    = fs.String("containerd-namespace", containerd.DefaultNamespace, "containerd namespace of this agent's containers and images")
		runcRoot     = fs.String("runc-root", "", "runc's state directory (default: containerd's; a private containerd sets its own)")
		httpAddr     = fs.String("http-addr", "127.0.0.1:6001", "listen address of the agent's API (exec, logs, metrics)")
		advertise    = fs.String("advertise-addr", "", "address the managers dial (default: -http-addr)")
		reservedCPU  = fs.String("reserved-cpu", "1", "cores kept for the system (decimal)")
		reservedMem  = fs.String("reserved-mem", "1GiB", "memory kept for the system (bytes or 512MiB, 1GiB…)")
		heartbeat    = fs.Duration("heartbeat", 3*time.Second, "how often to heartbeat to the managers (liveness, usage, the whole container list); container changes are reported as they happen besides")
		orphanGrace  = fs.Duration("orphan-grace", 30*time.Second, "how long a container the managers do not know may run before it is removed")
		stopGrace    = fs.Duration("stop-grace", 10*time.Second, "how long a stopped container has between SIGTERM and SIGKILL")
		endedLogs    = fs.Duration("ended-log-retention", containerd.DefaultEndedLogRetention, "how long the output of an ended container is kept for GET logs (negative: not kept)")
		fakeGPUs     = fs.Int("fake-gpus", 0, "offer N mock GPUs (go-nvml's mock DGX A100), marked fake everywhere; for development and tests: containers get only their environment")
		gpuShares    = fs.String("gpu-shares", "1", "cuda.shares each GPU offers (decimal; 1 = one whole GPU)")
		gpuQuantum   = fs.String("gpu-share-quantum", "0.1", "allocation quantum of cuda.shares (decimal); -gpu-shares must be a multiple of it")
		mpsDir       = fs.String("gpu-mps-dir", gpu.DefaultMPSDir, "directory of the MPS daemons' pipe and log directories, one per shared GPU (keep it short: it holds sockets)")
		cdiDirs      = fs.String("cdi-spec-dirs", strings.Join(cdi.DefaultSpecDirs, ","), "CDI spec directories, comma-separated: GPUs they describe are given to containers through CDI")
		tlsCA        = fs.String("tls-ca", "", "PEM CA bundle the managers' certificates are checked against (https:// manager URLs)")
		tlsCert      = fs.String("tls-cert", "", "PEM certificate: serve the agent's API over HTTPS (the managers run with -agent-tls)")
		tlsKey       = fs.String("tls-key", "", "PEM private key of -tls-cert")
		containerUID = fs.Int("container-uid", agent.DefaultContainerID, "uid sessions run as (not 0: root only where a session's policy allows it)")
		containerGID = fs.Int("container-gid", agent.DefaultContainerID, "gid sessions run as")
		folderUID    = fs.Int("folder-uid", agent.DefaultContainerID, "owner of the folder directories on -folder-host (the managers' -folder-uid)")
		folderGID    = fs.Int("folder-gid", agent.DefaultContainerID, "group of the folder directories (the managers' -folder-gid): every session is in it")
		seccompFile  = fs.String("seccomp-profile", "", "OCI seccomp profile (JSON) for every container instead of containerd's default profile")
		usernsRemap  = fs.String("userns-remap", "", "UID:GID:SIZE: run containers in a user namespace whose ids 0..SIZE-1 are the host's UID.. and GID.. (e.g. 100000:100000:65536)")
		imageGCHigh  = fs.Float64("image-gc-high", agent.DefaultImageGCHigh, "percent of the image store's disk past which images no container uses are removed, least recently used first (100: never)")
		imageGCLow   = fs.Float64("image-gc-low", agent.DefaultImageGCLow, "percent of the image store's disk image garbage collection frees down to")
		cniBinDir    = fs.String("cni-bin-dir", network.DefaultBinDir, "directory of the CNI plugins (Debian's containernetworking-plugins); empty: sessions get no network of their own (loopback only)")
		cniConfDir   = fs.String("cni-conf-dir", "", "directory whose first *.conflist is the template of every session's network (one bridge plugin with host-local addresses); empty: the agent writes its own")
		sessionCIDR  = fs.String("session-cidr", network.DefaultCIDR, "IPv4 range of the sessions' networks, a /25 per session; it must not overlap a route of the host")
		egress       = fs.Bool("session-egress", true, "let sessions reach beyond this node (masqueraded); false keeps every session on its own network")
		allowHost    = fs.String("session-allow-host-port", "", "ports of this host sessions may reach, PORT[/tcp|/udp] comma-separated (e.g. 53/udp for a resolver here); nothing else of the host is reachable")
		runtimeName  = fs.String("runtime", "containerd", "container runtime: containerd, or sim (simulated: nothing runs; for benchmarks and development, managers accept it only with -allow-simulated-agents)")
		simCount     = fs.Int("sim-count", 1, "with -runtime sim: how many simulated agents this process runs, each with its own id (state in -state-dir/sim-NNNN) and API listener (a port the system picks on -http-addr's host)")
		simDelay     = fs.Duration("sim-start-delay", 0, "with -runtime sim: how long a simulated container takes to start")
		simCPUs      = fs.Int("sim-cpus", simfleet.DefaultCPUs, "with -runtime sim: cores of each simulated node (before -reserved-cpu)")
		simMemory    = fs.String("sim-memory", "64GiB", "with -runtime sim: memory of each simulated node (before -reserved-mem)")
		simImages    = fs.String("sim-images", sim.DefaultImage, "with -runtime sim: images each simulated node has from the start, comma-separated (any other a session asks for is pretended pulled)")
		logLevel     = fs.String("log-level", "info", "debug, info, warn or error")
		showVersion  = fs.Bool("version", false, "print the version and exit")
	)
	folderHosts := flagenv.HostMap{}
	fs.Var(folderHosts, "folder-host", "storage folder host NAME=PATH (repeatable): the directory holding that host's folders here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := flagenv.Apply(fs, getenv, "folder-host"); err != nil {
		return err
	}
	if *showVersion {
		fmt.Fprintf(stdout, "berth-agent %s (%s)\n", version.Version, version.Commit)
		return nil
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	joinToken, err := readToken(fs, *token, *tokenFile, getenv, log)
	if err != nil {
		return err
	}
	milliCPU, err := slots.Parse(slots.CPU, *reservedCPU)
	if err != nil {
		return fmt.Errorf("-reserved-cpu: %w", err)
	}
	memBytes, err := slots.ParseSize(*reservedMem)
	if err != nil {
		return fmt.Errorf("-reserved-mem: %w", err)
	}
	shares, err := slots.Parse(slots.CUDAShares, *gpuShares)
	if err != nil {
		return fmt.Errorf("-gpu-shares: %w", err)
	}
	quantum, err := slots.Parse(slots.CUDAShares, *gpuQuantum)
	if err != nil {
		return fmt.Errorf("-gpu-share-quantum: %w", err)
	}
	if *stateDir == "" {
		return errors.New("-state-dir is required")
	}
	dir, err := filepath.Abs(*stateDir)
	if err != nil {
		return fmt.Errorf("-state-dir: %w", err)
	}
	sec, err := containerSecurity(*containerUID, *containerGID, *folderUID, *folderGID, *seccompFile, *usernsRemap, len(folderHosts) > 0)
	if err != nil {
		return err
	}
	switch *runtimeName {
	case "containerd":
		if given := givenFlags(fs, simOnly...); len(given) > 0 {
			return fmt.Errorf("%s: only with -runtime sim", strings.Join(given, ", "))
		}
	case "sim":
		if given := givenFlags(fs, containerdOnly...); len(given) > 0 {
			return fmt.Errorf("%s: no meaning with -runtime sim (nothing runs in a simulated container)", strings.Join(given, ", "))
		}
		memory, err := slots.ParseSize(*simMemory)
		if err != nil {
			return fmt.Errorf("-sim-memory: %w", err)
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg := simfleet.Config{Count: *simCount, StateDir: dir, HTTPAddr: *httpAddr, Advertise: *advertise,
			Runtime: sim.Config{StartDelay: *simDelay, Images: splitList(*simImages), EndedLogRetention: *endedLogs}, CPUs: *simCPUs, MemoryBytes: memory,
			FakeGPUs: *fakeGPUs, GPUShares: shares, GPUQuantum: quantum, Registry: reg,
			Agent: agent.Config{Managers: splitList(*managers), Token: joinToken,
				TLS:              tlsfiles.Files{Cert: *tlsCert, Key: *tlsKey, CA: *tlsCA},
				ReservedMilliCPU: milliCPU, ReservedMemBytes: memBytes, HeartbeatEvery: *heartbeat,
				OrphanGrace: *orphanGrace, StopGrace: *stopGrace, FolderHosts: folderHosts,
				ContainerUID: sec.uid, ContainerGID: sec.gid, FolderGID: sec.folderGID, Log: log, Version: version.Version}}
		if err := cfg.Check(); err != nil {
			return err
		}
		if cfg.Count == 1 {
			cfg.Started = func(_ int, a *agent.Agent) {
				fmt.Fprintf(stdout, "berth-agent %s serving on %s (simulated: -runtime sim)\n", version.Version, a.Addr())
			}
		} else {
			fmt.Fprintf(stdout, "berth-agent %s running %d simulated agents (-runtime sim), state in %s/sim-NNNN\n", version.Version, cfg.Count, dir)
		}
		return simfleet.Run(ctx, cfg)
	default:
		return fmt.Errorf("-runtime %q: must be containerd or sim", *runtimeName)
	}
	if sec.userns != nil {
		for name, path := range folderHosts {
			if err := containerd.CheckTraversable(path); err != nil {
				return fmt.Errorf("-folder-host %s: %w", name, err)
			}
		}
	}
	netFlags, err := networkFlags(*sessionCIDR, *allowHost)
	if err != nil {
		return err
	}
	// Before containerd: a bad GPU flag is a usage error whatever runs.
	gpus, err := openGPUs(*fakeGPUs, shares, quantum, *mpsDir, splitList(*cdiDirs), log)
	if err != nil {
		return err
	}
	defer gpus.Close()
	rt, err := containerd.New(ctx, containerd.Config{Socket: *socket, Namespace: *namespace, LogDir: filepath.Join(dir, "logs"), RuncRoot: *runcRoot,
		CDISpecDirs: splitList(*cdiDirs), EndedLogRetention: *endedLogs, HomeDir: filepath.Join(dir, "homes"),
		Seccomp: sec.seccomp, UserNS: sec.userns})
	if err != nil {
		return fmt.Errorf("connect to containerd at %s (is it running? scripts/containerd.sh start starts a private one): %w", *socket, err)
	}
	defer rt.Close()
	var netw agent.Network
	if *cniBinDir == "" {
		log.Warn("-cni-bin-dir is empty: sessions get no network of their own (loopback only, no egress, containers of a session cannot reach each other)")
	} else if sec.userns != nil {
		// runc 1.1 cannot mount sysfs in, nor exec into, a user-namespaced
		// container that joins a network namespace the host owns.
		log.Warn("-userns-remap: sessions get no network of their own (loopback only, no egress, containers of a session cannot reach each other): runc 1.1 cannot run a user-namespaced container in a network namespace the host owns")
	} else {
		m, err := network.New(ctx, network.Config{BinDir: *cniBinDir, ConfDir: *cniConfDir, StateDir: filepath.Join(dir, "net"),
			CIDR: netFlags.CIDR, Egress: *egress, AllowHostPorts: netFlags.AllowHostPorts}, network.Deps{Log: log})
		if err != nil {
			return fmt.Errorf("session networks: %w", err)
		}
		netw = m
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a, err := agent.New(agent.Config{
		Managers: splitList(*managers), Token: joinToken, StateDir: dir, HTTPAddr: *httpAddr, Advertise: *advertise,
		TLS:              tlsfiles.Files{Cert: *tlsCert, Key: *tlsKey, CA: *tlsCA},
		ReservedMilliCPU: milliCPU, ReservedMemBytes: memBytes, HeartbeatEvery: *heartbeat,
		OrphanGrace: *orphanGrace, StopGrace: *stopGrace, FolderHosts: folderHosts,
		ContainerUID: sec.uid, ContainerGID: sec.gid, FolderGID: sec.folderGID,
		ImageGCHigh: *imageGCHigh, ImageGCLow: *imageGCLow,
		Runtime: rt, Network: netw, GPUs: gpus, Log: log, Metrics: reg, Gatherer: reg, Version: version.Version,
	})
	if err != nil {
		return err
	}
	scheme := "http"
	if *tlsCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "berth-agent %s serving on %s://%s (containerd %s, namespace %s)\n", version.Version, scheme, a.Addr(), *socket, *namespace)
	return a.Run(ctx)
}

// simOnly are the flags of -runtime sim; containerdOnly those that mean
// nothing to it.
var (
	simOnly        = []string{"sim-count", "sim-start-delay", "sim-cpus", "sim-memory", "sim-images"}
	containerdOnly = []string{"containerd", "containerd-namespace", "runc-root", "seccomp-profile", "userns-remap", "cdi-spec-dirs", "gpu-mps-dir"}
)

// givenFlags are those of names given on the command line or in the
// environment, as -names.
func givenFlags(fs *flag.FlagSet, names ...string) []string {
	var out []string
	for _, n := range names {
		if flagenv.Given(fs, n) {
			out = append(out, "-"+n)
		}
	}
	return out
}

// agentTokenEnv carries the join token in the environment (BERTH_TOKEN,
// -token's own variable, also works but is what the CLI's login token is
// called too).
const agentTokenEnv = "BERTH_AGENT_TOKEN"

// readToken finds the join token in -token-file, BERTH_AGENT_TOKEN or
// -token (exactly one) and refuses a weak one. A token on the command line
// works but every local account sees it in ps, so it is warned about.
func readToken(fs *flag.FlagSet, value, file string, getenv func(string) string, log *slog.Logger) (string, error) {
	valueName := flagenv.Name("token")
	if flagenv.Given(fs, "token") {
		valueName = "-token"
		log.Warn("-token on the command line is visible to every local account (ps); use -token-file or " + agentTokenEnv)
	}
	secret, _, err := jointoken.Resolve(jointoken.Source{Name: "-token-file", Value: file, File: true},
		jointoken.Source{Name: agentTokenEnv, Value: getenv(agentTokenEnv)}, jointoken.Source{Name: valueName, Value: value})
	if err != nil {
		return "", err
	}
	if secret == "" {
		return "", errors.New("no join token: give -token-file FILE or " + agentTokenEnv + " (a token from berth agent token create, or the managers' -agent-token)")
	}
	if err := jointoken.Check("the join token", secret); err != nil {
		return "", err
	}
	return secret, nil
}

// imageCmd is `berth-agent image import [-containerd SOCK] [-containerd-namespace NS] FILE.tar`.
func imageCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		return errors.New("usage: berth-agent image import [-containerd SOCK] [-containerd-namespace NS] FILE.tar")
	}
	fs := flag.NewFlagSet("berth-agent image import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("containerd", "/run/containerd/containerd.sock", "containerd socket")
	namespace := fs.String("containerd-namespace", containerd.DefaultNamespace, "containerd namespace to import into")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := flagenv.Apply(fs, getenv); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("name one OCI image tarball to import")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("open image tarball: %w", err)
	}
	defer f.Close()
	logDir, err := os.MkdirTemp("", "berth-import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(logDir)
	rt, err := containerd.New(ctx, containerd.Config{Socket: *socket, Namespace: *namespace, LogDir: logDir})
	if err != nil {
		return fmt.Errorf("connect to containerd at %s: %w", *socket, err)
	}
	defer rt.Close()
	imgs, err := rt.ImportImage(ctx, f)
	if err != nil {
		return fmt.Errorf("import %s: %w", fs.Arg(0), err)
	}
	for _, im := range imgs {
		fmt.Fprintf(stdout, "imported %s %s (%d bytes)\n", im.Name, im.Digest, im.Size)
	}
	return nil
}

// security is what the flags say about who containers run as and under
// which seccomp profile and user namespace.
type security struct {
	uid, gid  uint32
	folderGID uint32 // as the containers see it
	seccomp   *specs.LinuxSeccomp
	userns    *containerd.IDMap
}

// containerSecurity checks the flags of container security together,
// reporting every problem at once: an unusable one would otherwise surface
// only when the first session fails to start, or worse, start.
func containerSecurity(uid, gid, folderUID, folderGID int, seccompFile, usernsRemap string, folders bool) (security, error) {
	var (
		s    security
		errs []error
	)
	idOK := func(flag string, v int) bool {
		if v <= 0 || int64(v) > 1<<32-2 {
			errs = append(errs, fmt.Errorf("-%s %d: must be a positive id (root in a container is granted per session by a policy's allow_root)", flag, v))
			return false
		}
		return true
	}
	if idOK("container-uid", uid) && idOK("container-gid", gid) {
		s.uid, s.gid = uint32(uid), uint32(gid)
	}
	if idOK("folder-uid", folderUID) && idOK("folder-gid", folderGID) {
		s.folderGID = uint32(folderGID)
	}
	if seccompFile != "" {
		p, err := containerd.LoadSeccompProfile(seccompFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("-seccomp-profile: %w", err))
		}
		s.seccomp = p
	}
	if usernsRemap != "" {
		m, err := containerd.ParseIDMap(usernsRemap)
		if err != nil {
			errs = append(errs, fmt.Errorf("-userns-remap: %w", err))
		} else {
			s.userns = m
			if s.uid >= m.Size || s.gid >= m.Size {
				errs = append(errs, fmt.Errorf("-userns-remap %s maps %d ids: -container-uid %d and -container-gid %d must be below that", usernsRemap, m.Size, s.uid, s.gid))
			}
			// Folders belong to host ids; inside the namespace only the
			// mapped ones exist.
			g, inGID := m.ContainerGID(uint32(folderGID))
			u, inUID := m.ContainerUID(uint32(folderUID))
			switch {
			case inGID:
				s.folderGID = g
			case inUID && u == s.uid:
				s.folderGID = 0 // the folders are the session user's own
			case folders:
				errs = append(errs, fmt.Errorf("-userns-remap %s: folders owned by %d:%d are outside the map, so sessions could not write them: set -folder-uid and -folder-gid (here and on the managers) to host ids of the map, e.g. %d:%d for the container user %d:%d",
					usernsRemap, folderUID, folderGID, m.HostUID+s.uid, m.HostGID+s.gid, s.uid, s.gid))
			default:
				s.folderGID = 0
			}
		}
	}
	return s, errors.Join(errs...)
}

// openGPUs reads the GPUs through NVML, or makes n fake ones. The real
// library is loaded at run time: without it (or its driver) the node has no
// GPUs and the agent runs on.
func openGPUs(n int, shares, quantum int64, mpsDir string, cdiDirs []string, log *slog.Logger) (*gpu.Node, error) {
	cfg := gpu.Config{Shares: shares, Quantum: quantum, MPSDir: mpsDir, Host: gpu.Host{CDISpecDirs: cdiDirs}, Log: log}
	switch {
	case n < 0:
		return nil, fmt.Errorf("-fake-gpus %d: must not be negative", n)
	case n > 0:
		m, err := gpu.FakeMachine(n)
		if err != nil {
			return nil, fmt.Errorf("-fake-gpus: %w", err)
		}
		cfg.NVML, cfg.Fake = gpu.NewNVML(m), true
	default:
		cfg.NVML = gpu.NewNVML(nvml.New())
	}
	return gpu.Open(cfg)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// networkFlags reads -session-cidr and -session-allow-host-port, before
// anything is started: a bad value is a usage error.
func networkFlags(cidr, allowHost string) (network.Config, error) {
	var errs []error
	prefix, err := network.ParseCIDR(cidr)
	if err != nil {
		errs = append(errs, fmt.Errorf("-session-cidr: %w", err))
	}
	ports, err := network.ParseHostPorts(allowHost)
	if err != nil {
		errs = append(errs, fmt.Errorf("-session-allow-host-port: %w", err))
	}
	return network.Config{CIDR: prefix, AllowHostPorts: ports}, errors.Join(errs...)
}
