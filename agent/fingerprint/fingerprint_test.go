package fingerprint

import (
	"errors"
	"testing"
)

type fakeHost struct {
	cpus  int
	files map[string]string
}

func (h fakeHost) NumCPU() int { return h.cpus }
func (h fakeHost) ReadFile(p string) ([]byte, error) {
	if s, ok := h.files[p]; ok {
		return []byte(s), nil
	}
	return nil, errors.New("no such file")
}
func (h fakeHost) Exists(p string) bool      { _, ok := h.files[p]; return ok }
func (h fakeHost) Kernel() (string, error)   { return "6.1.0-test", nil }
func (h fakeHost) Hostname() (string, error) { return "node-1", nil }

func TestReadFindsCoresMemoryAndCgroupVersion(t *testing.T) {
	cases := []struct {
		name    string
		host    fakeHost
		want    Facts
		wantErr string
	}{
		{"cgroup v1", fakeHost{8, map[string]string{"/proc/meminfo": "MemTotal:       16384000 kB\nMemFree: 1 kB\n"}},
			Facts{Hostname: "node-1", Kernel: "6.1.0-test", CPUs: 8, MemoryBytes: 16384000 * 1024, CgroupVersion: 1}, ""},
		{"cgroup v2", fakeHost{2, map[string]string{"/proc/meminfo": "MemTotal: 1024 kB\n", "/sys/fs/cgroup/cgroup.controllers": "cpu memory"}},
			Facts{Hostname: "node-1", Kernel: "6.1.0-test", CPUs: 2, MemoryBytes: 1024 * 1024, CgroupVersion: 2}, ""},
		{"no meminfo", fakeHost{1, map[string]string{}}, Facts{}, "read memory size: no such file"},
		{"garbled meminfo", fakeHost{1, map[string]string{"/proc/meminfo": "MemTotal: lots kB\n"}}, Facts{}, `MemTotal in /proc/meminfo is not a size: "MemTotal: lots kB"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Read(c.host)
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Arch = ""
			if got != c.want {
				t.Fatalf("facts %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestSystemReadsThisMachine(t *testing.T) {
	f, err := Read(System{})
	if err != nil {
		t.Fatal(err)
	}
	if f.CPUs < 1 || f.MemoryBytes < 64<<20 || f.Kernel == "" {
		t.Fatalf("implausible facts of this machine: %+v", f)
	}
}
