// Package fingerprint finds what a node has: cores, memory, kernel, cgroup
// version. It reads the host through a small interface so tests can feed it
// any machine.
package fingerprint

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Host is what the fingerprint reads.
type Host interface {
	NumCPU() int
	ReadFile(path string) ([]byte, error)
	Exists(path string) bool
	Kernel() (string, error)
	Hostname() (string, error)
}

// Facts are the node's hardware and system facts.
type Facts struct {
	Hostname      string
	Arch          string
	Kernel        string
	CPUs          int
	MemoryBytes   int64
	CgroupVersion int
}

// Read fingerprints the host.
func Read(h Host) (Facts, error) {
	f := Facts{CPUs: h.NumCPU(), Arch: goruntime.GOARCH}
	meminfo, err := h.ReadFile("/proc/meminfo")
	if err != nil {
		return Facts{}, fmt.Errorf("read memory size: %w", err)
	}
	if f.MemoryBytes, err = memTotal(meminfo); err != nil {
		return Facts{}, err
	}
	if f.Kernel, err = h.Kernel(); err != nil {
		return Facts{}, fmt.Errorf("read kernel version: %w", err)
	}
	if f.Hostname, err = h.Hostname(); err != nil {
		return Facts{}, fmt.Errorf("read host name: %w", err)
	}
	f.CgroupVersion = 1
	if h.Exists("/sys/fs/cgroup/cgroup.controllers") {
		f.CgroupVersion = 2
	}
	return f, nil
}

// memTotal reads MemTotal (kB) from /proc/meminfo.
func memTotal(meminfo []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil || kb <= 0 {
				return 0, fmt.Errorf("MemTotal in /proc/meminfo is not a size: %q", sc.Text())
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no MemTotal line in /proc/meminfo")
}

// System is the Host of the machine the agent runs on.
type System struct{}

// NumCPU is the number of cores this process may use.
func (System) NumCPU() int { return goruntime.NumCPU() }

// ReadFile reads a file of the host.
func (System) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

// Exists reports whether a path exists.
func (System) Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Kernel is the kernel release.
func (System) Kernel() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", err
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// Hostname is the host's name.
func (System) Hostname() (string, error) { return os.Hostname() }
