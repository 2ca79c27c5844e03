package network

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// record is a session's network as kept on disk: enough to attach its
// other containers, to detach every one of them and to rebuild the rules
// after a restart.
type record struct {
	Session string       `json:"session"`
	Block   int          `json:"block"`
	Bridge  string       `json:"bridge"`
	Subnet  netip.Prefix `json:"subnet"`
	Egress  bool         `json:"egress"`
	Size    int          `json:"size"`
	// Containers by id: their index and address.
	Containers map[string]member `json:"containers"`
}

type member struct {
	Index   int        `json:"index"`
	Address netip.Addr `json:"address"`
	Ports   []Port     `json:"ports,omitempty"`
}

// Port is a port a session declared (its protocol http or tcp).
type Port struct {
	Name     string `json:"name"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
}

// writeFile replaces a file whole (rename), so a reader — or a crash —
// never sees half of it.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func saveRecord(dir string, r *record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "record.json"), b, 0o600); err != nil {
		return fmt.Errorf("save network record of session %s: %w", r.Session, err)
	}
	return nil
}

func loadRecord(dir string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(dir, "record.json"))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if r.Containers == nil {
		r.Containers = map[string]member{}
	}
	return &r, nil
}

// hostsFile is container index's /etc/hosts: every container of the
// session by its name, and the container's own hostname.
func hostsFile(subnet netip.Prefix, size, index int, hostname string) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	for i := range max(size, 1) {
		a, err := containerAddr(subnet, i)
		if err != nil {
			break
		}
		names := HostName(i)
		if i == index && hostname != "" {
			names += " " + hostname
		}
		fmt.Fprintf(&b, "%s\t%s\n", a, names)
	}
	return b.Bytes()
}

// resolvConf is the sessions' /etc/resolv.conf: the host's, less the
// nameservers on loopback (a stub resolver such as systemd-resolved's
// 127.0.0.53 is the host's own, which sessions cannot reach).
func resolvConf(hostFile string) []byte {
	raw, err := os.ReadFile(hostFile)
	var b bytes.Buffer
	b.WriteString("# made by berth-agent from the host's " + hostFile + "\n")
	if err != nil {
		return b.Bytes()
	}
	servers := 0
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) < 2 {
				continue
			}
			a, err := netip.ParseAddr(f[1])
			if err != nil || a.IsLoopback() || !a.Is4() {
				continue
			}
			servers++
		case "search", "domain", "options":
		default:
			continue
		}
		b.WriteString(line + "\n")
	}
	if servers == 0 {
		b.WriteString("# the host names no nameserver sessions can reach (only loopback ones)\n")
	}
	return b.Bytes()
}

// sessionDirName keeps an id (a session's, a container's) a single path
// element.
func sessionDirName(id string) (string, error) {
	if id == "" || !filepath.IsLocal(id) || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") {
		return "", fmt.Errorf("id %q is not a plain name", id)
	}
	return id, nil
}

func hostsPath(dir string, index int) string {
	return filepath.Join(dir, "hosts-"+strconv.Itoa(index))
}

func removeIfExists(path string) error {
	if err := os.RemoveAll(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
