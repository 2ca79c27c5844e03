package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// asManager makes the test binary run berth-manager's main instead of the
// tests, so a test can start a real manager process without building one.
const asManager = "BERTH_TEST_RUN_MANAGER"

func TestMain(m *testing.M) {
	if os.Getenv(asManager) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// A -dev manager keeps Raft in memory: the process listens on its HTTP
// address and nowhere else, so no local account or neighbour can speak
// Raft to it. The same check on a manager with a Raft port finds the port,
// so it would fail if -dev opened one.
func TestDevManagerListensOnlyOnItsHTTPAddress(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		wantRaft bool
	}{
		{"dev", []string{"-dev"}, false},
		{"insecure-raft", []string{"-insecure-raft", "-raft-addr", "127.0.0.1:0"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-http-addr", "127.0.0.1:0", "-data-dir", t.TempDir(), "-node-id", "m1"}, tc.args...)
			pid, httpAddr, raftAddr := startManager(t, args)
			got := listening(t, pid)
			want := []string{httpAddr}
			if tc.wantRaft {
				want = append(want, raftAddr)
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("the manager listens on %v, want %v (raft %q)", got, want, raftAddr)
			}
			if !tc.wantRaft && raftAddr != "in-memory" {
				t.Fatalf("the dev manager's Raft address is %q, want in-memory", raftAddr)
			}
		})
	}
}

// startManager runs berth-manager with args until the test ends and
// returns its pid, HTTP address and Raft address once it has started.
func startManager(t *testing.T, args []string) (pid int, httpAddr, raftAddr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), asManager+"=1", "BERTH_BOOTSTRAP_ADMIN_PASSWORD=Admin-pass-1")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	// The JSON log's "manager started" line carries both addresses; it is
	// written once both listeners are open.
	started := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec struct{ Msg, HTTP, Raft string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "manager started" {
				started <- [2]string{rec.HTTP, rec.Raft}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-started:
		return cmd.Process.Pid, a[0], a[1]
	case <-ctx.Done():
		t.Fatal("the manager did not log that it started")
	}
	return 0, "", ""
}

// listening lists the TCP addresses process pid listens on: the sockets
// among its file descriptors that /proc/pid/net/tcp{,6} shows in state
// LISTEN.
func listening(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("read the manager's file descriptors: %v", err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			t.Fatalf("read /proc/%d/net/%s: %v", pid, table, err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			out = append(out, procAddr(t, f[1]))
		}
	}
	slices.Sort(out)
	return out
}

// procAddr decodes /proc/net/tcp's HEXIP:HEXPORT (the IP in host byte
// order, 32-bit words, little-endian here).
func procAddr(t *testing.T, s string) string {
	t.Helper()
	h, p, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(h)
	if err != nil {
		t.Fatalf("address %q: %v", s, err)
	}
	for i := 0; i+4 <= len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	ip := net.IP(raw)
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10))
}
