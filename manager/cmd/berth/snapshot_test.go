package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/client"
	"github.com/berth-cluster/berth/shared/tlsfiles"
	"github.com/berth-cluster/berth/shared/tlsfiles/tlstest"
)

// The backup walkthrough of deploy/README.md on a 3-manager TLS cluster:
// log in trusting the CA, save a snapshot, change the state, restore the
// snapshot; every manager is back to the saved state.
func TestSnapshotSaveAndRestoreOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "berth-test")
	c := testcluster.Start(t, 3, func(cfg *server.Config) { cfg.TLS = ca.Issue(cfg.NodeID) })
	var addrs []string
	for _, s := range c.Servers {
		addrs = append(addrs, "https://"+s.HTTPAddr())
	}
	dir := t.TempDir()
	env := map[string]string{"BERTH_ADDR": strings.Join(addrs, ","), "BERTH_CA_CERT": ca.File,
		"BERTH_CONFIG": filepath.Join(dir, "credentials.json"), "BERTH_PASSWORD": testcluster.AdminPassword}
	run := func(t *testing.T, args ...string) result {
		t.Helper()
		return berth(t, env, "", args...)
	}
	must := func(t *testing.T, args ...string) string {
		t.Helper()
		res := run(t, args...)
		if res.code != 0 {
			t.Fatalf("berth %s: exit %d, stderr %q", strings.Join(args, " "), res.code, res.stderr)
		}
		return res.stdout
	}

	t.Run("without the CA the managers are not trusted", func(t *testing.T) {
		res := berth(t, map[string]string{"BERTH_ADDR": addrs[0], "BERTH_PASSWORD": testcluster.AdminPassword,
			"BERTH_CONFIG": filepath.Join(dir, "other.json")}, "", "login", "-e", testcluster.AdminEmail)
		if res.code == 0 || !strings.Contains(res.stderr, "certificate signed by unknown authority") {
			t.Fatalf("login without the CA: exit %d, stderr %q", res.code, res.stderr)
		}
	})
	must(t, "login", "-e", testcluster.AdminEmail)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial, err := tlsfiles.Files{CA: ca.File}.Client()
	if err != nil {
		t.Fatal(err)
	}
	creds, err := readCredentials(env["BERTH_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	// A loaded test machine may see a leader election, during the
	// followers' snapshot install above all: retry through it.
	cl, err := client.New(client.Config{Addrs: addrs, Token: creds.Token, TLS: dial, MaxAttempts: 40, RetryBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mkUser := func(name string) {
		t.Helper()
		if _, err := cl.CreateUser(ctx, map[string]any{"email": name + "@example.com", "username": name, "password": "Passw0rd!"}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}

	mkUser("before")
	file := filepath.Join(dir, "backup.snap")
	out := must(t, "operator", "snapshot", "save", file)
	if !strings.Contains(out, "Saved snapshot at index") {
		t.Fatalf("save printed %q", out)
	}
	if st, err := os.Stat(file); err != nil || st.Size() == 0 {
		t.Fatalf("snapshot file: %v", err)
	}
	mkUser("after")

	if res := run(t, "operator", "snapshot", "restore", file); res.code == 0 || !strings.Contains(res.stderr, "--yes") {
		t.Fatalf("restore without --yes: exit %d, stderr %q", res.code, res.stderr)
	}
	junk := filepath.Join(dir, "junk.snap")
	if err := os.WriteFile(junk, []byte("not a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := run(t, "operator", "snapshot", "restore", "--yes", junk); res.code == 0 || !strings.Contains(res.stderr, "not a snapshot") {
		t.Fatalf("restore of junk: exit %d, stderr %q", res.code, res.stderr)
	}
	must(t, "operator", "snapshot", "restore", "--yes", file)

	for _, s := range c.Servers {
		testcluster.Eventually(t, 20*time.Second, func() error {
			tx := s.State().Read()
			if u, err := tx.User("before@example.com"); err != nil || u == nil {
				return fmt.Errorf("%s lost the user saved in the snapshot (err %v)", s.ID(), err)
			}
			if u, err := tx.User("after@example.com"); err != nil || u != nil {
				return fmt.Errorf("%s still has the user made after the snapshot (err %v)", s.ID(), err)
			}
			return nil
		})
	}
	// The cluster still takes writes after the restore.
	mkUser("later")
}
