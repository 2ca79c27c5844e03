package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/tlsfiles"
	"github.com/berth-cluster/berth/shared/tlsgen"
)

func mustBerth(t *testing.T, args ...string) string {
	t.Helper()
	res := berth(t, nil, "", args...)
	if res.code != 0 {
		t.Fatalf("berth %s: exit %d, stderr %q", strings.Join(args, " "), res.code, res.stderr)
	}
	return res.stdout
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM block", file)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The deploy/README.md walkthrough: a CA, then a certificate per role, with
// Nomad's single-dash flags; the files are where the output says, keys
// 0600, and each certificate is what its role needs.
func TestTLSCommandsMakeACAAndCertificatesPerRole(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	out := mustBerth(t, "tls", "ca", "create", "-dir", dir)
	if !strings.Contains(out, filepath.Join(dir, "ca.pem")) || !strings.Contains(out, filepath.Join(dir, "ca-key.pem")) {
		t.Fatalf("ca create printed %q, want both file names", out)
	}
	out = mustBerth(t, "tls", "cert", "create", "-manager", "-dir", dir, "-name", "m1",
		"-additional-dnsname", "m1.berth.internal", "-additional-ipaddress", "10.0.0.11", "--additional-ipaddress", "10.0.1.11")
	if !strings.Contains(out, filepath.Join(dir, "m1.pem")) || !strings.Contains(out, filepath.Join(dir, "m1-key.pem")) {
		t.Fatalf("cert create printed %q, want both file names", out)
	}
	mustBerth(t, "tls", "cert", "create", "-agent", "-dir", dir, "-name", "a1", "-additional-ipaddress", "10.0.1.21")
	mustBerth(t, "tls", "cert", "create", "--cli", "--dir", dir)

	for _, key := range []string{"ca-key.pem", "m1-key.pem", "a1-key.pem", "cli-key.pem"} {
		st, err := os.Stat(filepath.Join(dir, key))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", key, st.Mode().Perm())
		}
	}
	ca := readCert(t, filepath.Join(dir, "ca.pem"))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for _, tc := range []struct {
		file    string
		usage   []x509.ExtKeyUsage
		dns     []string
		ips     []string
		manager bool
	}{
		{"m1.pem", both, []string{"localhost", tlsgen.ManagerDNSName, "m1.berth.internal"}, []string{"127.0.0.1", "::1", "10.0.0.11", "10.0.1.11"}, true},
		{"a1.pem", both, []string{"localhost"}, []string{"127.0.0.1", "::1", "10.0.1.21"}, false},
		{"cli.pem", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil, false},
	} {
		c := readCert(t, filepath.Join(dir, tc.file))
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: tc.usage}); err != nil {
			t.Errorf("%s does not verify for %v against the CA: %v", tc.file, tc.usage, err)
		}
		if !slices.Equal(c.ExtKeyUsage, tc.usage) || !slices.Equal(c.DNSNames, tc.dns) {
			t.Errorf("%s: usage %v names %v, want %v %v", tc.file, c.ExtKeyUsage, c.DNSNames, tc.usage, tc.dns)
		}
		var ips []string
		for _, ip := range c.IPAddresses {
			ips = append(ips, ip.String())
		}
		if !slices.Equal(ips, tc.ips) {
			t.Errorf("%s: IPs %v, want %v", tc.file, ips, tc.ips)
		}
		if got := c.VerifyHostname(tlsgen.ManagerDNSName) == nil; got != tc.manager {
			t.Errorf("%s names %s: %v, want %v", tc.file, tlsgen.ManagerDNSName, got, tc.manager)
		}
	}
}

func TestTLSCommandsRefuseWhatTheyCannotDoSafely(t *testing.T) {
	dir := t.TempDir()
	mustBerth(t, "tls", "ca", "create", "-dir", dir)
	mustBerth(t, "tls", "cert", "create", "-manager", "-dir", dir)
	caBefore, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a second CA over the first", []string{"tls", "ca", "create", "-dir", dir}, "ca.pem exists: pass -force to overwrite it"},
		{"a certificate over another", []string{"tls", "cert", "create", "-manager", "-dir", dir}, "manager.pem exists: pass -force"},
		{"no role", []string{"tls", "cert", "create", "-dir", dir, "-name", "x"}, "exactly one of -manager, -agent, -cli"},
		{"two roles", []string{"tls", "cert", "create", "-manager", "-agent", "-dir", dir, "-name", "x"}, "exactly one of -manager, -agent, -cli"},
		{"no CA", []string{"tls", "cert", "create", "-agent", "-dir", filepath.Join(dir, "empty")}, "make one with: berth tls ca create"},
		{"a bad IP address", []string{"tls", "cert", "create", "-agent", "-dir", dir, "-additional-ipaddress", "10.0.0"}, `"10.0.0" is not an IP address`},
		{"a bad DNS name", []string{"tls", "cert", "create", "-agent", "-dir", dir, "-name", "x", "-additional-dnsname", "https://a1"}, `"https://a1" is not a DNS name`},
		{"a path as name", []string{"tls", "cert", "create", "-agent", "-dir", dir, "-name", "../x"}, "plain file name prefix"},
		{"outliving the CA", []string{"tls", "cert", "create", "-agent", "-dir", dir, "-name", "x", "-days", "3650"}, "would outlive its CA"},
		{"an argument", []string{"tls", "cert", "create", "-agent", "-dir", dir, "a1"}, `unexpected argument "a1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := berth(t, nil, "", tc.args...)
			if res.code == 0 || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want a failure saying %q", res.code, res.stderr, tc.want)
			}
		})
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem")); string(after) != string(caBefore) {
		t.Fatal("a refused command changed the CA key")
	}
	if _, err := os.Stat(filepath.Join(dir, "x.pem")); err == nil {
		t.Fatal("a refused command wrote x.pem")
	}
	mustBerth(t, "tls", "cert", "create", "-manager", "-dir", dir, "-force")
	if res := berth(t, nil, "", "tls", "cert", "create", "-h"); res.code != 0 || !strings.Contains(res.stdout, "-additional-ipaddress") {
		t.Fatalf("-h: exit %d, stdout %q", res.code, res.stdout)
	}
}

// What berth tls makes is what a TLS cluster needs: two managers with its
// certificates form a cluster over mutual-TLS Raft, and the CLI trusting
// its CA logs in over HTTPS.
func TestTLSCommandsMakeCertificatesAClusterAccepts(t *testing.T) {
	dir := t.TempDir()
	mustBerth(t, "tls", "ca", "create", "-dir", dir)
	for _, n := range []string{"m1", "m2"} {
		mustBerth(t, "tls", "cert", "create", "-manager", "-dir", dir, "-name", n)
	}
	caFile := filepath.Join(dir, "ca.pem")
	c := testcluster.Start(t, 2, func(cfg *server.Config) {
		cert, key := tlsgen.Files(dir, cfg.NodeID)
		cfg.TLS = tlsfiles.Files{Cert: cert, Key: key, CA: caFile}
	})
	env := map[string]string{"BERTH_ADDR": testcluster.URL(c.Follower()), "BERTH_CA_CERT": caFile,
		"BERTH_CONFIG": filepath.Join(dir, "credentials.json"), "BERTH_PASSWORD": testcluster.AdminPassword}
	if res := berth(t, env, "", "login", "-e", testcluster.AdminEmail); res.code != 0 {
		t.Fatalf("login over HTTPS trusting the CA berth tls made: exit %d, stderr %q", res.code, res.stderr)
	}
	if res := berth(t, env, "", "whoami"); res.code != 0 || !strings.Contains(res.stdout, testcluster.AdminEmail) {
		t.Fatalf("whoami: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
}
