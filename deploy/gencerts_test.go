package deploy_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/client"
	"github.com/berth-cluster/berth/shared/tlsfiles"
)

// scripts/gen-certs.sh makes certificates a TLS cluster accepts: two
// managers with them form a cluster over mutual-TLS Raft and answer a
// client that trusts the CA it made.
func TestGenCertsScriptMakesWorkingClusterCertificates(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is not installed; scripts/gen-certs.sh needs it")
		}
		t.Skip("openssl is not installed")
	}
	dir := filepath.Join(t.TempDir(), "tls")
	cmd := exec.Command("bash", filepath.Join("..", "scripts", "gen-certs.sh"), dir,
		"m1:localhost,127.0.0.1", "m2:localhost,127.0.0.1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen-certs.sh: %v\n%s", err, out)
	}
	for _, name := range []string{"ca-key.pem", "m1-key.pem", "m2-key.pem"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	files := func(n string) tlsfiles.Files {
		return tlsfiles.Files{Cert: filepath.Join(dir, n+".pem"), Key: filepath.Join(dir, n+"-key.pem"), CA: filepath.Join(dir, "ca.pem")}
	}
	c := testcluster.Start(t, 2, func(cfg *server.Config) { cfg.TLS = files(cfg.NodeID) })

	dial, err := tlsfiles.Files{CA: filepath.Join(dir, "ca.pem")}.Client()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(client.Config{Addrs: []string{"https://" + c.Follower().HTTPAddr()}, TLS: dial})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	login, err := cl.Login(ctx, testcluster.AdminEmail, testcluster.AdminPassword)
	if err != nil {
		t.Fatalf("login over HTTPS with the script's CA: %v", err)
	}
	if login.User.Email != testcluster.AdminEmail {
		t.Fatalf("logged in as %q", login.User.Email)
	}
}
