package server

import (
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/berth-cluster/berth/shared/tlsfiles"
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
		// The Raft port has no other authentication, so it is mutual TLS.
		if tc.raftServer, err = cfg.TLS.Server(true); err != nil {
			return nil, fmt.Errorf("-tls-cert: %w", err)
		}
		tc.raftClient = client
		tr := tlsfiles.Transport(client)
		tc.peerScheme, tc.peerTransport, tc.peerClient = "https", tr, &http.Client{Transport: tr}
	}
	if cfg.AgentTLS {
		tc.agentScheme, tc.agentTransport = "https", tlsfiles.Transport(client)
	}
	return tc, nil
}
