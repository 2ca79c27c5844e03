// Package tlsgen makes a Berth cluster's certificate authority and the
// certificates of its managers, agents and CLI users with Go's crypto/x509
// (ECDSA P-256), so that turning TLS on needs no openssl. `berth tls`
// writes what it makes to files; tests use it for throwaway CAs.
package tlsgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ManagerDNSName is a DNS name every manager certificate carries and no
// other kind does. The Raft port admits only peers whose certificate names
// it (as Nomad's servers require server.<region>.nomad): one CA signs the
// agents' and users' certificates too, and none of those may speak Raft.
const ManagerDNSName = "manager.berth"

// Role is what a certificate is for; it decides the extended key usages and
// the default names.
type Role string

// The roles `berth tls cert create` knows.
const (
	// Manager certificates serve the API and are used both ways on the
	// Raft port (mutual TLS), so they are server and client certificates.
	Manager Role = "manager"
	// Agent certificates serve the agent's API to the managers; client use
	// is allowed for symmetry with managers.
	Agent Role = "agent"
	// CLI certificates identify a user's client and serve nothing.
	CLI Role = "cli"
)

func (r Role) extKeyUsage() ([]x509.ExtKeyUsage, error) {
	switch r {
	case Manager, Agent:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, nil
	case CLI:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil
	}
	return nil, fmt.Errorf("unknown certificate role %q (manager, agent or cli)", string(r))
}

// DefaultDNSNames are the DNS names a certificate of role r always carries:
// localhost, so a node is reachable on its own host, and for managers
// ManagerDNSName. A CLI certificate serves nothing and names nothing.
func DefaultDNSNames(r Role) []string {
	switch r {
	case Manager:
		return []string{"localhost", ManagerDNSName}
	case Agent:
		return []string{"localhost"}
	}
	return nil
}

// DefaultIPs are the addresses a serving certificate always carries: the
// loopback addresses.
func DefaultIPs(r Role) []net.IP {
	if r == CLI {
		return nil
	}
	return []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
}

// CA is a certificate authority that can sign certificates.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
	key     *ecdsa.PrivateKey
}

// NewCA makes a self-signed CA named commonName, valid from now (less a
// minute of clock skew) for validity. Its certificates may not sign further
// CAs.
func NewCA(now time.Time, commonName string, validity time.Duration) (*CA, error) {
	if strings.TrimSpace(commonName) == "" {
		return nil, errors.New("the CA needs a common name")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("the CA's validity must be positive, not %s", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate the CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("sign the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("read back the CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: encodeCert(der), KeyPEM: keyPEM, key: key}, nil
}

// ParseCA reads a CA certificate and its private key (PEM, SEC 1 or
// PKCS #8) and checks that they belong together and may sign.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate in the CA certificate file")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse the CA certificate: %w", err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("the certificate %q is not a CA certificate", cert.Subject.CommonName)
	}
	key, err := decodeKey(keyPEM)
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("the CA key does not belong to the CA certificate %q", cert.Subject.CommonName)
	}
	return &CA{Cert: cert, CertPEM: certPEM, KeyPEM: keyPEM, key: key}, nil
}

// LoadCA reads a CA from its certificate and key files.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read the CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read the CA key: %w", err)
	}
	ca, err := ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w", certFile, keyFile, err)
	}
	return ca, nil
}

// Request describes a certificate to issue. The role's DefaultDNSNames and
// DefaultIPs are always included; DNSNames and IPs add to them.
type Request struct {
	Role       Role
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	Validity   time.Duration
}

// Issued is a certificate and its new private key.
type Issued struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// Issue makes a key and a certificate for req signed by ca, valid from now
// (less a minute of clock skew). A certificate may not outlive its CA.
func (ca *CA) Issue(now time.Time, req Request) (*Issued, error) {
	usage, err := req.Role.extKeyUsage()
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.CommonName) == "" {
		return nil, errors.New("the certificate needs a common name")
	}
	if req.Validity <= 0 {
		return nil, fmt.Errorf("the certificate's validity must be positive, not %s", req.Validity)
	}
	notAfter := now.Add(req.Validity)
	if notAfter.After(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("the certificate would outlive its CA, which expires %s: ask for fewer days or make a new CA",
			ca.Cert.NotAfter.UTC().Format(time.DateOnly))
	}
	dns, err := names(DefaultDNSNames(req.Role), req.DNSNames)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate the key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: req.CommonName},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usage,
		DNSNames:              dns,
		IPAddresses:           ips(DefaultIPs(req.Role), req.IPs),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign the certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("read back the certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: cert, CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// names joins the default DNS names with the extra ones, without
// duplicates, refusing what cannot be a DNS name.
func names(defaults, extra []string) ([]string, error) {
	out := append([]string{}, defaults...)
	var bad []string
	for _, n := range extra {
		n = strings.TrimSpace(n)
		if n == "" || strings.ContainsAny(n, " /:@\t") {
			bad = append(bad, fmt.Sprintf("%q is not a DNS name", n))
			continue
		}
		if !contains(out, n) {
			out = append(out, n)
		}
	}
	if len(bad) > 0 {
		return nil, errors.New(strings.Join(bad, "; "))
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func ips(defaults, extra []net.IP) []net.IP {
	out := append([]net.IP{}, defaults...)
	for _, ip := range extra {
		dup := false
		for _, have := range out {
			dup = dup || have.Equal(ip)
		}
		if !dup {
			out = append(out, ip)
		}
	}
	return out
}

// newSerial is a random positive 127-bit serial number, as RFC 5280 asks
// (unique per CA, at most 20 octets).
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("make a serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode the key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func decodeKey(keyPEM []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("no PEM private key in the CA key file")
	}
	switch b.Type {
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse the CA key: %w", err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse the CA key: %w", err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("the CA key is a %T; berth signs with ECDSA keys", k)
		}
		return ek, nil
	}
	return nil, fmt.Errorf("the CA key file holds a %q PEM block, not a private key", b.Type)
}

// Files names where a certificate and its key are written: Dir/Name.pem and
// Dir/Name-key.pem, the layout deploy/README.md and the example
// configuration use.
func Files(dir, name string) (cert, key string) {
	return filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
}

// Write writes a certificate (mode 0644) and its key (mode 0600), creating
// dir. Unless force is set it refuses, before writing anything, when either
// file exists: overwriting a CA key loses every certificate it signed.
func Write(certFile string, certPEM []byte, keyFile string, keyPEM []byte, force bool) error {
	if !force {
		for _, f := range []string{certFile, keyFile} {
			if _, err := os.Lstat(f); err == nil {
				return fmt.Errorf("%s exists: pass -force to overwrite it", f)
			} else if !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("check %s: %w", f, err)
			}
		}
	}
	// The key first: a certificate without its key is useless, and a key
	// written is never left with looser permissions.
	if err := writeFile(keyFile, keyPEM, 0o600, force); err != nil {
		return err
	}
	return writeFile(certFile, certPEM, 0o644, force)
}

// writeFile creates path with exactly mode. Without force it never replaces
// a file (O_EXCL); with force it writes a temporary file beside path and
// renames it over, so the mode is the one asked for even when the old file
// had another.
func writeFile(path string, data []byte, mode os.FileMode, force bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
		return finish(f, path, data, mode)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("create a temporary file beside %s: %w", path, err)
	}
	tmp := f.Name()
	if err := finish(f, path, data, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// finish sets the mode (the umask may have narrowed it), writes and
// closes f.
func finish(f *os.File, path string, data []byte, mode os.FileMode) error {
	err := f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
