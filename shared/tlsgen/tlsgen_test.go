package tlsgen_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/shared/tlsgen"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newCA(t *testing.T) *tlsgen.CA {
	t.Helper()
	ca, err := tlsgen.NewCA(now, "Berth test CA", 5*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestNewCAIsAP256CAThatSignsOnlyLeaves(t *testing.T) {
	ca := newCA(t)
	c := ca.Cert
	if !c.IsCA || !c.MaxPathLenZero || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("not a path-length-0 signing CA: IsCA %v MaxPathLenZero %v usage %v", c.IsCA, c.MaxPathLenZero, c.KeyUsage)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("CA key is %T, want ECDSA P-256", c.PublicKey)
	}
	if c.Subject.CommonName != "Berth test CA" || !c.NotAfter.Equal(now.Add(5*365*24*time.Hour)) {
		t.Fatalf("subject %q, not after %s", c.Subject.CommonName, c.NotAfter)
	}
	back, err := tlsgen.ParseCA(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatalf("the CA does not read back: %v", err)
	}
	if !back.Cert.Equal(c) {
		t.Fatal("the CA read back is another certificate")
	}
}

// Each role gets the key usages it is used with and the default names; the
// extra names are added, the defaults kept.
func TestIssueGivesEachRoleItsUsagesAndNames(t *testing.T) {
	ca := newCA(t)
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for _, tc := range []struct {
		role    tlsgen.Role
		usage   []x509.ExtKeyUsage
		wantDNS []string
		wantIPs []string
	}{
		{tlsgen.Manager, both, []string{"localhost", tlsgen.ManagerDNSName, "m1.example.com"}, []string{"127.0.0.1", "::1", "10.0.0.11"}},
		{tlsgen.Agent, both, []string{"localhost", "m1.example.com"}, []string{"127.0.0.1", "::1", "10.0.0.11"}},
		{tlsgen.CLI, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, []string{"m1.example.com", "localhost"}, []string{"10.0.0.11", "127.0.0.1"}},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			is, err := ca.Issue(now, tlsgen.Request{Role: tc.role, CommonName: "node", Validity: 24 * time.Hour,
				DNSNames: []string{"m1.example.com", "localhost"}, IPs: []net.IP{net.ParseIP("10.0.0.11"), net.ParseIP("127.0.0.1")}})
			if err != nil {
				t.Fatal(err)
			}
			c := is.Cert
			if !slices.Equal(c.ExtKeyUsage, tc.usage) {
				t.Errorf("extended key usage %v, want %v", c.ExtKeyUsage, tc.usage)
			}
			if !slices.Equal(c.DNSNames, tc.wantDNS) {
				t.Errorf("DNS names %v, want %v", c.DNSNames, tc.wantDNS)
			}
			var got []string
			for _, ip := range c.IPAddresses {
				got = append(got, ip.String())
			}
			if !slices.Equal(got, tc.wantIPs) {
				t.Errorf("IPs %v, want %v", got, tc.wantIPs)
			}
			if c.IsCA {
				t.Error("a leaf certificate is a CA")
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca.Cert)
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: tc.usage}); err != nil {
				t.Errorf("does not verify against its CA: %v", err)
			}
			if _, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM); err != nil {
				t.Errorf("certificate and key are not a pair crypto/tls loads: %v", err)
			}
		})
	}
}

func TestIssueRefusesWhatItCannotMake(t *testing.T) {
	ca := newCA(t)
	for _, tc := range []struct {
		name string
		req  tlsgen.Request
		want string
	}{
		{"unknown role", tlsgen.Request{Role: "server", CommonName: "x", Validity: time.Hour}, `unknown certificate role "server"`},
		{"no name", tlsgen.Request{Role: tlsgen.Agent, Validity: time.Hour}, "needs a common name"},
		{"no validity", tlsgen.Request{Role: tlsgen.Agent, CommonName: "x"}, "validity must be positive"},
		{"outlives the CA", tlsgen.Request{Role: tlsgen.Agent, CommonName: "x", Validity: 6 * 365 * 24 * time.Hour}, "would outlive its CA, which expires 2031-02-28"},
		{"bad DNS name", tlsgen.Request{Role: tlsgen.Agent, CommonName: "x", Validity: time.Hour, DNSNames: []string{"https://m1"}}, `"https://m1" is not a DNS name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ca.Issue(now, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseCARefusesAMismatchedKeyAndALeaf(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	if _, err := tlsgen.ParseCA(ca.CertPEM, other.KeyPEM); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("another CA's key: %v", err)
	}
	leaf, err := ca.Issue(now, tlsgen.Request{Role: tlsgen.Agent, CommonName: "a1", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tlsgen.ParseCA(leaf.CertPEM, leaf.KeyPEM); err == nil || !strings.Contains(err.Error(), "not a CA certificate") {
		t.Fatalf("a leaf as CA: %v", err)
	}
}

// Keys are written 0600 whatever the umask, certificates 0644, and nothing
// is overwritten without force; with force a looser old key file ends up 0600.
func TestWriteKeepsKeysPrivateAndNeverOverwritesUnasked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	ca := newCA(t)
	cert, key := tlsgen.Files(dir, "ca")
	if err := tlsgen.Write(cert, ca.CertPEM, key, ca.KeyPEM, false); err != nil {
		t.Fatal(err)
	}
	mode := func(p string) os.FileMode {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
	if mode(key) != 0o600 || mode(cert) != 0o644 {
		t.Fatalf("modes key %v cert %v, want 0600 and 0644", mode(key), mode(cert))
	}

	other := newCA(t)
	err := tlsgen.Write(cert, other.CertPEM, key, other.KeyPEM, false)
	if err == nil || !strings.Contains(err.Error(), "exists: pass -force") {
		t.Fatalf("overwrite without force: %v", err)
	}
	if got, _ := tlsgen.LoadCA(cert, key); got == nil || !got.Cert.Equal(ca.Cert) {
		t.Fatal("a refused write changed the files")
	}

	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tlsgen.Write(cert, other.CertPEM, key, other.KeyPEM, true); err != nil {
		t.Fatal(err)
	}
	if got, err := tlsgen.LoadCA(cert, key); err != nil || !got.Cert.Equal(other.Cert) {
		t.Fatalf("forced write: %v", err)
	}
	if mode(key) != 0o600 {
		t.Fatalf("key mode after a forced write %v, want 0600", mode(key))
	}
}
