// Package tlstest makes a throwaway CA and certificates for tests of TLS
// between managers, agents and clients, with shared/tlsgen (what `berth
// tls` uses). Test support only.
package tlstest

import (
	"testing"
	"time"

	"github.com/berth-cluster/berth/shared/tlsfiles"
	"github.com/berth-cluster/berth/shared/tlsgen"
)

// CA is a test certificate authority whose files live in a test's temp dir.
type CA struct {
	t   testing.TB
	dir string
	ca  *tlsgen.CA
	// File is the CA certificate's PEM file.
	File string
}

// NewCA makes a CA named name in a fresh temp dir.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := tlsgen.NewCA(time.Now(), name, 24*time.Hour)
	if err != nil {
		t.Fatalf("make CA: %v", err)
	}
	c := &CA{t: t, dir: t.TempDir(), ca: ca}
	cert, key := tlsgen.Files(c.dir, name+"-ca")
	if err := tlsgen.Write(cert, ca.CertPEM, key, ca.KeyPEM, false); err != nil {
		t.Fatal(err)
	}
	c.File = cert
	return c
}

// Issue makes a manager certificate for name (valid for TLS servers and
// clients at 127.0.0.1, ::1, localhost and name; managers, agents and
// clients may all use it) and returns its files with the CA.
func (ca *CA) Issue(name string) tlsfiles.Files {
	ca.t.Helper()
	return ca.IssueAs(name, tlsgen.Manager)
}

// IssueAs makes a certificate of the given role for name.
func (ca *CA) IssueAs(name string, role tlsgen.Role) tlsfiles.Files {
	ca.t.Helper()
	is, err := ca.ca.Issue(time.Now(), tlsgen.Request{Role: role, CommonName: name, DNSNames: []string{name}, Validity: time.Hour})
	if err != nil {
		ca.t.Fatalf("issue certificate for %s: %v", name, err)
	}
	cert, key := tlsgen.Files(ca.dir, name)
	if err := tlsgen.Write(cert, is.CertPEM, key, is.KeyPEM, true); err != nil {
		ca.t.Fatal(err)
	}
	return tlsfiles.Files{Cert: cert, Key: key, CA: ca.File}
}
