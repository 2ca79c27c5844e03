// Command berth-manager runs one manager of a Berth control plane.
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

	"github.com/berth-cluster/berth/manager/httpapi"
	secretbox "github.com/berth-cluster/berth/manager/secrets"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/shared/flagenv"
	"github.com/berth-cluster/berth/shared/jointoken"
	"github.com/berth-cluster/berth/shared/tlsfiles"
	"github.com/berth-cluster/berth/shared/version"
)

// defaultRaftAddr is where a manager that is not -dev serves Raft unless
// -raft-addr says otherwise.
const defaultRaftAddr = "127.0.0.1:8300"

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "berth-manager:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("berth-manager", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dev              = fs.Bool("dev", false, "run a one-node cluster (data in -data-dir, or a temp dir); Raft stays in memory and opens no port")
		nodeID           = fs.String("node-id", "", "this manager's id in the Raft cluster (default: the host name; 'dev' with -dev)")
		httpAddr         = fs.String("http-addr", "127.0.0.1:8080", "HTTP API listen address")
		advertiseHTTP    = fs.String("advertise-http", "", "HTTP address peers and clients use (default: -http-addr)")
		raftAddr         = fs.String("raft-addr", "", "Raft transport listen address (port 0 picks one; default "+defaultRaftAddr+"; none with -dev)")
		dataDir          = fs.String("data-dir", "", "directory for the Raft log, snapshots and first-start credentials")
		bootstrapExpect  = fs.Int("bootstrap-expect", 0, "number of managers in a new cluster listed in -peers")
		peers            = fs.String("peers", "", "every manager of a new cluster: id=raftaddr=httpaddr,...")
		join             = fs.String("join", "", "HTTP address of a running manager to join")
		joinToken        = fs.String("join-token", "", "shared secret managers present to join the cluster (prefer -join-token-file or BERTH_JOIN_TOKEN: ps shows the command line)")
		joinTokenFile    = fs.String("join-token-file", "", "file holding the join token (mode 0600)")
		agentToken       = fs.String("agent-token", "", "shared token agents may register with (prefer -agent-token-file or BERTH_AGENT_TOKEN: ps shows the command line)")
		agentTokenFile   = fs.String("agent-token-file", "", "file holding the shared agent token (mode 0600)")
		agentAutoApprove = fs.Bool("agent-auto-approve", true, "agents registered with the shared agent token take sessions at once (false: each waits for berth agent approve ID)")
		allowSimulated   = fs.Bool("allow-simulated-agents", false, "accept simulated agents (berth-agent -runtime sim), on which nothing runs: for benchmarks and development only")
		heartbeatTimeout = fs.Duration("heartbeat-timeout", 30*time.Second, "an agent silent this long is DISCONNECTED: it gets no new work, its sessions keep running and holding their slots")
		disconnectGrace  = fs.Duration("disconnect-grace", 5*time.Minute, "a DISCONNECTED agent silent this long since its last heartbeat is LOST: its sessions end ERROR agent-lost (at least -heartbeat-timeout; a policy's max_disconnect may shorten it)")
		usageCheckEvery  = fs.Duration("usage-check-every", time.Minute, "how often the leader checks derived usage against the session records and agents' reports, repairing drift (negative: never)")
		adminEmail       = fs.String("bootstrap-admin-email", "admin@berth.local", "email of the superadmin created on first start")
		tokenTTL         = fs.Duration("token-ttl", 12*time.Hour, "lifetime of login tokens")
		scheduler        = fs.String("scheduler", "fifo", "order PENDING sessions are taken in: fifo or drf (dominant resource fairness per keypair)")
		placement        = fs.String("placement", "concentrated", "how agents are picked: concentrated (bin-pack) or dispersed (spread)")
		tlsCert          = fs.String("tls-cert", "", "PEM certificate (berth tls cert create -manager): serve the API over HTTPS and Raft over mutual TLS (needs -tls-key and -tls-ca; required unless -dev or -insecure-raft)")
		tlsKey           = fs.String("tls-key", "", "PEM private key of -tls-cert")
		tlsCA            = fs.String("tls-ca", "", "PEM CA bundle trusted when dialing peer managers (and agents with -agent-tls), and required of Raft peers")
		insecureRaft     = fs.Bool("insecure-raft", false, "speak Raft over plaintext TCP without -tls-cert: whoever reaches -raft-addr can rewrite the cluster state; isolated networks only")
		agentTLS         = fs.Bool("agent-tls", false, "dial the agents' API (exec, logs) over HTTPS, trusting -tls-ca (agents run with -tls-cert)")
		appsAddr         = fs.String("apps-addr", "", "listen address of the apps origin, where sessions' web apps are served on a site apart from the console (e.g. :8443; HTTPS with -tls-cert); empty: no apps")
		appsDomain       = fs.String("apps-domain", "", "give each session an origin of its own: SESSION.DOMAIN (a wildcard DNS name, and certificate, pointing at -apps-addr); HOST or HOST:PORT as users reach it")
		logLevel         = fs.String("log-level", "info", "debug, info, warn or error")
		showVersion      = fs.Bool("version", false, "print the version and exit")
		allowGroup       = fs.Bool("allow-group-folders", true, "let admins create group folders (false: refused with 403)")
		folderUID        = fs.Int("folder-uid", server.DefaultFolderID, "owner of folder directories (0770) and uploaded files (0660): the agents' -container-uid, or one that shares -folder-gid")
		folderGID        = fs.Int("folder-gid", server.DefaultFolderID, "group of folder directories and uploaded files (the agents' -container-gid or a group their sessions are in)")
		uploadsPerUser   = fs.Int("max-uploads-per-user", 4, "uploads (and snapshot restores) one user may stream to this manager at once; beyond, 429")
		uploads          = fs.Int("max-uploads", 32, "uploads all users together may stream to this manager at once; beyond, 429")
		secretsKeyFile   = fs.String("secrets-key-file", "", "file of 64 hex digits (openssl rand -hex 32, mode 0600), the same on every manager: seals registry passwords in the replicated state (without it a registry with a password is refused)")
	)
	retention := flagenv.Days(server.DefaultSessionRetention)
	fs.Var(&retention, "session-retention", "how long finished sessions stay before the leader collects them (their usage stays in GET /v1/usage): DURATION like 7d, 36h, 90m; 0 keeps them for ever; under 1m is refused")
	folderHosts := flagenv.HostMap{}
	fs.Var(folderHosts, "folder-host", "storage folder host NAME=PATH (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := flagenv.Apply(fs, getenv, "folder-host"); err != nil {
		return err
	}
	if *showVersion {
		fmt.Fprintf(stdout, "berth-manager %s (%s)\n", version.Version, version.Commit)
		return nil
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	secrets, err := readSecrets(fs, log, []secretFlag{
		{name: "-agent-token", value: agentToken, file: *agentTokenFile, env: flagenv.Name("agent-token")},
		{name: "-join-token", value: joinToken, file: *joinTokenFile, env: flagenv.Name("join-token")},
	})
	if err != nil {
		return err
	}

	var box *secretbox.Box
	if *secretsKeyFile != "" {
		if box, err = secretbox.Load(*secretsKeyFile); err != nil {
			return err
		}
		log.Info("secrets key loaded", "key_id", box.KeyID())
	}

	if *nodeID == "" {
		if *dev {
			*nodeID = "dev"
		} else if h, err := os.Hostname(); err == nil {
			*nodeID = h
		}
	}
	if *dataDir == "" {
		if !*dev {
			return errors.New("-data-dir is required (only -dev may run without one)")
		}
		d, err := os.MkdirTemp("", "berth-dev-")
		if err != nil {
			return fmt.Errorf("make dev data dir: %w", err)
		}
		*dataDir = d
	}
	if *raftAddr == "" && !*dev {
		*raftAddr = defaultRaftAddr
	}
	if *folderUID <= 0 || *folderGID <= 0 {
		return fmt.Errorf("-folder-uid %d -folder-gid %d: folders must belong to the agents' container user or group, never root (sessions never run as the host's root)", *folderUID, *folderGID)
	}
	peerList, err := server.ParsePeers(*peers)
	if err != nil {
		return fmt.Errorf("-peers: %w", err)
	}
	if !flagenv.Given(fs, "disconnect-grace") {
		// Not asked for: the default, raised to a longer -heartbeat-timeout
		// (leader.Config), rather than a refusal of a grace nobody chose.
		*disconnectGrace = 0
	}
	abs, err := filepath.Abs(*dataDir)
	if err != nil {
		return fmt.Errorf("-data-dir: %w", err)
	}
	cfg := server.Config{
		NodeID: *nodeID, HTTPAddr: *httpAddr, AdvertiseHTTP: *advertiseHTTP, RaftAddr: *raftAddr, DataDir: abs,
		Dev: *dev, BootstrapExpect: *bootstrapExpect, Peers: peerList, Join: *join, JoinToken: secrets[1],
		TLS: tlsfiles.Files{Cert: *tlsCert, Key: *tlsKey, CA: *tlsCA}, InsecureRaft: *insecureRaft, AgentTLS: *agentTLS,
		AppsAddr: *appsAddr, AppsDomain: *appsDomain,
		AgentToken: secrets[0], AgentTokenNeedsApproval: !*agentAutoApprove, AllowSimulatedAgents: *allowSimulated, HeartbeatTimeout: *heartbeatTimeout, DisconnectGrace: *disconnectGrace, UsageCheckEvery: *usageCheckEvery, SessionRetention: time.Duration(retention), FolderHosts: folderHosts,
		NoGroupFolders: !*allowGroup, FolderUID: *folderUID, FolderGID: *folderGID, Secrets: box,
		HTTPLimits:          httpapi.Limits{UploadsPerUser: *uploadsPerUser, Uploads: *uploads},
		BootstrapAdminEmail: *adminEmail, BootstrapAdminPassword: getenv("BERTH_BOOTSTRAP_ADMIN_PASSWORD"),
		TokenTTL: *tokenTTL, Scheduler: *scheduler, Placement: *placement, Log: log, Out: stdout, RaftLog: stderr, RaftLogLevel: *logLevel,
	}
	srv, err := server.Start(cfg)
	if err != nil {
		return err
	}
	scheme := "http"
	if cfg.TLS.Serving() {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "berth-manager %s listening on %s://%s (node %s, data %s)\n", version.Version, scheme, srv.HTTPAddr(), cfg.NodeID, abs)
	if a := srv.AppsAddr(); a != "" {
		fmt.Fprintf(stdout, "sessions' apps on %s://%s\n", scheme, a)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info("shutting down")
	return srv.Close()
}

// secretFlag is a secret the manager takes as a value (-agent-token, or
// its environment variable env) or as a file (-agent-token-file).
type secretFlag struct {
	name  string
	value *string
	file  string
	env   string
}

// readSecrets reads each secret from its file or value and refuses a weak
// one. A value on the command line works but is visible to every local
// account through ps, so it is warned about.
func readSecrets(fs *flag.FlagSet, log *slog.Logger, flags []secretFlag) ([]string, error) {
	out := make([]string, len(flags))
	for i, f := range flags {
		valueName := f.env
		if flagenv.Given(fs, strings.TrimPrefix(f.name, "-")) {
			valueName = f.name
			log.Warn(f.name+" on the command line is visible to every local account (ps); use "+f.name+"-file or "+f.env, "flag", f.name)
		}
		secret, _, err := jointoken.Resolve(jointoken.Source{Name: f.name + "-file", Value: f.file, File: true},
			jointoken.Source{Name: valueName, Value: *f.value})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		if secret != "" {
			if err := jointoken.Check(f.name, secret); err != nil {
				return nil, err
			}
		}
		out[i] = secret
	}
	return out, nil
}
