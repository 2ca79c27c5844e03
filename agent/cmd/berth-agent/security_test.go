package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Container security flags are checked before anything starts: an
// unreadable or invalid seccomp profile, root as the container user, a user
// namespace map the container user or the folders fall outside of.
func TestContainerSecurityFlags(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"defaultAction":"SCMP_ACT_SOMETIMES"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	type flags struct {
		uid, gid, fuid, fgid int
		seccomp, userns      string
		folders              bool
	}
	def := flags{uid: 1000, gid: 1000, fuid: 1000, fgid: 1000}
	with := func(f func(*flags)) flags { c := def; f(&c); return c }
	tests := []struct {
		name      string
		in        flags
		wantErr   string
		folderGID uint32
	}{
		{"defaults", def, "", 1000},
		{"root as the container user", with(func(f *flags) { f.uid = 0 }), "-container-uid 0: must be a positive id", 0},
		{"unreadable profile", with(func(f *flags) { f.seccomp = filepath.Join(dir, "none.json") }), "-seccomp-profile: read seccomp profile", 0},
		{"invalid profile", with(func(f *flags) { f.seccomp = bad }), `defaultAction "SCMP_ACT_SOMETIMES" is not a seccomp action`, 0},
		{"valid profile", with(func(f *flags) { f.seccomp = good }), "", 1000},
		{"bad map", with(func(f *flags) { f.userns = "100000:100000" }), "-userns-remap: ", 0},
		{"user outside the map", with(func(f *flags) { f.userns = "100000:100000:65536"; f.uid = 70000 }), "-container-uid 70000 and -container-gid 1000 must be below", 0},
		{"folders outside the map", with(func(f *flags) { f.userns = "100000:100000:65536"; f.folders = true }), "set -folder-uid and -folder-gid (here and on the managers) to host ids of the map, e.g. 101000:101000", 0},
		{"folders inside the map", with(func(f *flags) { f.userns = "100000:100000:65536"; f.folders = true; f.fuid, f.fgid = 101000, 101000 }), "", 1000},
		{"no folders, no matter", with(func(f *flags) { f.userns = "100000:100000:65536" }), "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			s, err := containerSecurity(in.uid, in.gid, in.fuid, in.fgid, in.seccomp, in.userns, in.folders)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.folderGID != tc.folderGID {
				t.Errorf("folder group in containers %d, want %d", s.folderGID, tc.folderGID)
			}
			if (in.seccomp != "") != (s.seccomp != nil) || (in.userns != "") != (s.userns != nil) {
				t.Errorf("profile %v, map %v for flags %+v", s.seccomp, s.userns, in)
			}
		})
	}

	// The agent refuses to start with an invalid profile, saying why, before
	// it touches containerd.
	env := map[string]string{"BERTH_AGENT_TOKEN": "a-join-token-long-enough"}
	err := run(context.Background(), []string{"-manager", "http://127.0.0.1:1", "-state-dir", t.TempDir(),
		"-containerd", filepath.Join(dir, "none.sock"), "-seccomp-profile", bad}, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-seccomp-profile") || strings.Contains(err.Error(), "containerd") {
		t.Errorf("start with an invalid profile: %v", err)
	}
}

// Network flags are checked before anything starts, every problem at once.
func TestNetworkFlagsAreCheckedBeforeAnythingStarts(t *testing.T) {
	var out strings.Builder
	err := run(context.Background(), []string{"-manager", "http://127.0.0.1:1", "-state-dir", t.TempDir(),
		"-containerd", filepath.Join(t.TempDir(), "none.sock"), "-session-cidr", "10.88.0.1/16", "-session-allow-host-port", "70000"},
		func(k string) string {
			if k == agentTokenEnv {
				return goodToken
			}
			return ""
		}, io.Discard, &out)
	for _, want := range []string{"-session-cidr: 10.88.0.1/16 has host bits set (did you mean 10.88.0.0/16?)", "-session-allow-host-port: \"70000\": the port must be from 1 to 65535"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "containerd") {
		t.Errorf("containerd was tried before the flags were checked: %v", err)
	}
}
