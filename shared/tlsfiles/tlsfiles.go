// Package tlsfiles turns certificate and key files into tls.Configs for the
// managers, the agents and the CLI. Certificates come from files an operator
// made (`berth tls`, shared/tlsgen, or their own CA; deploy/README.md);
// nothing here issues them.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// Files names a node's certificate, its key and the CA it trusts. All empty
// means TLS is off.
type Files struct {
	Cert string // PEM certificate (chain) this node presents
	Key  string // PEM private key of Cert
	CA   string // PEM CA bundle this node trusts when it dials, and verifies peers with
}

// Serving reports whether the node serves TLS (a certificate is given).
func (f Files) Serving() bool { return f.Cert != "" || f.Key != "" }

// Check reports a half-given pair or a certificate without a CA where a CA
// is required, naming the flags as flagPrefix+"cert" and so on.
func (f Files) Check(flagPrefix string, needCA bool) error {
	if (f.Cert == "") != (f.Key == "") {
		return fmt.Errorf("-%scert and -%skey must be given together", flagPrefix, flagPrefix)
	}
	if needCA && f.Serving() && f.CA == "" {
		return fmt.Errorf("-%scert needs -%sca: the CA that signed the other nodes' certificates", flagPrefix, flagPrefix)
	}
	return nil
}

// Pool reads a PEM CA bundle.
func Pool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("read CA bundle %s: no PEM certificate in it", file)
	}
	return pool, nil
}

func (f Files) keyPair() (tls.Certificate, error) {
	kp, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return kp, fmt.Errorf("load certificate %s and key %s: %w", f.Cert, f.Key, err)
	}
	return kp, nil
}

// Server is the configuration to serve with f's certificate; with
// requireClient, callers must present a certificate signed by f.CA (mutual
// TLS, as between managers on the Raft port).
func (f Files) Server(requireClient bool) (*tls.Config, error) {
	kp, err := f.keyPair()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{kp}}
	if requireClient {
		if f.CA == "" {
			return nil, errors.New("mutual TLS needs a CA bundle to verify clients with")
		}
		if cfg.ClientCAs, err = Pool(f.CA); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Client is the configuration to dial with: servers are verified against
// f.CA (the system roots when empty), and f's certificate, when given, is
// presented to servers that ask for one.
func (f Files) Client() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		pool, err := Pool(f.CA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if f.Serving() {
		kp, err := f.keyPair()
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg, nil
}

// Transport is an HTTP transport like http.DefaultTransport that dials with
// a copy of cfg: net/http writes to its transport's TLS configuration (the
// protocols it offers) on first use, so transports must not share one.
func Transport(cfg *tls.Config) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg.Clone()
	return tr
}
