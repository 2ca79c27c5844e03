package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"

	"github.com/berth-cluster/berth/shared/tlsfiles"
	"github.com/berth-cluster/berth/shared/tlsgen"
)

// tlsConfigs is how one manager serves and dials, derived from Config.TLS.
// With TLS off every field keeps Go's defaults (plain HTTP, the default
// transport), exactly as before TLS existed.
type tlsConfigs struct {
	httpServer *tls.Config // nil: plain HTTP
	raftServer *tls.Config // nil: plain TCP Raft transport
	raftClient *tls.Config

	peerScheme     string
	peerTransport  http.RoundTripper // nil: http.DefaultTransport
	peerClient     *http.Client
	agentScheme    string
	agentTransport http.RoundTripper
}

func newTLSConfigs(cfg Config) (*tlsConfigs, error) {
	tc := &tlsConfigs{peerScheme: "http", agentScheme: "http", peerClient: http.DefaultClient}
	var client *tls.Config
	if cfg.TLS.Serving() || cfg.AgentTLS {
		var err error
		if client, err = cfg.TLS.Client(); err != nil {
			return nil, fmt.Errorf("-tls-ca: %w", err)
		}
	}
	if cfg.TLS.Serving() {
		var err error
		// Clients of the API authenticate with tokens, keypairs and the
		// join and agent tokens, not certificates: browsers and the CLI
		// have none.
		if tc.httpServer, err = cfg.TLS.Server(false); err != nil {
			return nil, fmt.Errorf("-tls-cert: %w", err)
		}
		// The Raft port has no other authentication, so it is mutual TLS,
		// and both ends must hold manager certificates.
		if tc.raftServer, err = cfg.TLS.Server(true); err != nil {
			return nil, fmt.Errorf("-tls-cert: %w", err)
		}
		tc.raftServer.VerifyConnection = requireManagerPeer
		tc.raftClient = client.Clone()
		tc.raftClient.VerifyConnection = requireManagerPeer
		tr := tlsfiles.Transport(client)
		tc.peerScheme, tc.peerTransport, tc.peerClient = "https", tr, &http.Client{Transport: tr}
	}
	if cfg.AgentTLS {
		tc.agentScheme, tc.agentTransport = "https", tlsfiles.Transport(client)
	}
	return tc, nil
}

// requireManagerPeer admits a Raft peer only when its certificate is a
// manager's (it names tlsgen.ManagerDNSName). The cluster's CA also signs
// the agents' and users' certificates, and an agent's host is not trusted
// with the replicated state.
func requireManagerPeer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the Raft peer presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	if err := leaf.VerifyHostname(tlsgen.ManagerDNSName); err != nil {
		return fmt.Errorf("the Raft peer's certificate %q is not a manager certificate (it does not name %s); make managers' certificates with: berth tls cert create -manager",
			leaf.Subject.CommonName, tlsgen.ManagerDNSName)
	}
	return nil
}
