package containerd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseOOMKill(t *testing.T) {
	for in, want := range map[string]int64{
		"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n":                3, // v1 memory.oom_control
		"low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n": 1, // v2 memory.events
		"oom_kill 0\n": 0,
	} {
		n, ok := parseOOMKill(strings.NewReader(in))
		if !ok || n != want {
			t.Errorf("parseOOMKill(%q) = %d, %v; want %d", in, n, ok, want)
		}
	}
	// Kernels before 4.13 have no oom_kill line on v1.
	if _, ok := parseOOMKill(strings.NewReader("oom_kill_disable 0\nunder_oom 0\n")); ok {
		t.Error("no oom_kill line, yet ok")
	}
}

func TestOOMKillsPaths(t *testing.T) {
	root := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("memory/berth/c1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
	write("berth/c2/memory.events", "oom 1\noom_kill 2\n")
	if n, ok := oomKills(root, false, "/berth/c1"); !ok || n != 1 {
		t.Errorf("v1: %d %v", n, ok)
	}
	if n, ok := oomKills(root, true, "/berth/c2"); !ok || n != 2 {
		t.Errorf("v2: %d %v", n, ok)
	}
	if _, ok := oomKills(root, false, "system.slice:berth:c1"); ok {
		t.Error("systemd path read")
	}
	if _, ok := oomKills(root, false, "/berth/gone"); ok {
		t.Error("missing cgroup read")
	}
}

func TestDetectCgroups(t *testing.T) {
	v2 := t.TempDir()
	os.WriteFile(filepath.Join(v2, "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644)
	if got := detectCgroups(v2); !got.v2 {
		t.Errorf("v2 root: %+v", got)
	}
	v1 := t.TempDir()
	os.MkdirAll(filepath.Join(v1, "memory"), 0o755)
	if got := detectCgroups(v1); got.v2 || got.swapAccounting {
		t.Errorf("v1 without memsw: %+v", got)
	}
	os.WriteFile(filepath.Join(v1, "memory", "memory.memsw.limit_in_bytes"), nil, 0o644)
	if got := detectCgroups(v1); got.v2 || !got.swapAccounting {
		t.Errorf("v1 with memsw: %+v", got)
	}
}
