package containerd

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupInfo is what spec generation and OOM detection must know about the
// host's cgroups.
type cgroupInfo struct {
	// v2 is the unified hierarchy; false is v1 (or hybrid, which runc treats
	// as v1 for resource limits).
	v2 bool
	// swapAccounting: on v1, memory.memsw.* exists. runc fails to start a
	// container whose spec sets swap when it does not, so then swap is left
	// out (no swap accounting usually also means no swap to forbid).
	swapAccounting bool
}

// detectCgroups looks at the cgroupfs mounted at root.
func detectCgroups(root string) cgroupInfo {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		// runc ignores a missing memory.swap.max when asked for 0 swap.
		return cgroupInfo{v2: true, swapAccounting: true}
	}
	_, err := os.Stat(filepath.Join(root, "memory", "memory.memsw.limit_in_bytes"))
	return cgroupInfo{swapAccounting: err == nil}
}

// oomKills reads how many processes the kernel's OOM killer has killed in
// the container's cgroup. The cgroup outlives the task's exit until the task
// is deleted, which is exactly when List needs it. ok is false when the count
// cannot be read (systemd cgroup paths, cgroup gone, kernel too old).
func oomKills(root string, v2 bool, cgroupsPath string) (n int64, ok bool) {
	if cgroupsPath == "" || strings.Contains(cgroupsPath, ":") {
		// "slice:prefix:name" is the systemd driver's notation; its path on
		// disk is not derivable here.
		return 0, false
	}
	var file string
	if v2 {
		file = filepath.Join(root, cgroupsPath, "memory.events")
	} else {
		file = filepath.Join(root, "memory", cgroupsPath, "memory.oom_control")
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	return parseOOMKill(f)
}

// parseOOMKill finds the "oom_kill N" line that both v1's memory.oom_control
// and v2's memory.events carry.
func parseOOMKill(f io.Reader) (int64, bool) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, found := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !found || key != "oom_kill" {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
