package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
)

// conflist is a CNI network configuration list, kept as raw JSON so that an
// operator's plugins and options pass through untouched.
type conflist map[string]any

// defaultConflist is the agent's own configuration when -cni-conf-dir is
// not given: a bridge with the sessions' range, masquerading for egress.
// It is a template: each session gets its own bridge and /25 of it
// (sessionConflist), and its first session's bridge is berth0.
func defaultConflist(cidr netip.Prefix, bridge string) []byte {
	doc := map[string]any{
		"cniVersion": "1.0.0",
		"name":       bridge,
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      bridge,
				"isGateway":   true,
				"ipMasq":      true,
				"hairpinMode": false,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]map[string]string{{{"subnet": cidr.String()}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
		},
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n')
}

// loadTemplate reads the template: the first *.conflist of confDir (in
// name order, as CNI runtimes do), which must run one bridge plugin with
// host-local addresses, because each session gets its own bridge and
// subnet from it.
func loadTemplate(confDir string) (conflist, string, error) {
	files, err := filepath.Glob(filepath.Join(confDir, "*.conflist"))
	if err != nil {
		return nil, "", err
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, "", fmt.Errorf("-cni-conf-dir %s has no *.conflist", confDir)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		return nil, "", err
	}
	var c conflist
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, "", fmt.Errorf("%s: %w", files[0], err)
	}
	if _, err := c.bridge(); err != nil {
		return nil, "", fmt.Errorf("%s: %w", files[0], err)
	}
	return c, files[0], nil
}

// plugins are the conflist's plugin entries.
func (c conflist) plugins() []map[string]any {
	list, _ := c["plugins"].([]any)
	var out []map[string]any
	for _, p := range list {
		if m, ok := p.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// types are the plugin types the conflist runs (IPAM included).
func (c conflist) types() []string {
	var out []string
	for _, p := range c.plugins() {
		if t, ok := p["type"].(string); ok {
			out = append(out, t)
		}
		if ipam, ok := p["ipam"].(map[string]any); ok {
			if t, ok := ipam["type"].(string); ok {
				out = append(out, t)
			}
		}
	}
	return out
}

// bridge is the conflist's one bridge plugin, with host-local addresses.
func (c conflist) bridge() (map[string]any, error) {
	var found map[string]any
	for _, p := range c.plugins() {
		if p["type"] == "bridge" {
			if found != nil {
				return nil, errors.New("the conflist runs two bridge plugins; the agent gives each session one bridge")
			}
			found = p
		}
	}
	if found == nil {
		return nil, errors.New("the conflist runs no bridge plugin; the agent gives each session its own bridge from it")
	}
	ipam, _ := found["ipam"].(map[string]any)
	if ipam == nil || ipam["type"] != "host-local" {
		return nil, errors.New("the bridge plugin's ipam must be host-local; the agent gives each session its own subnet from it")
	}
	return found, nil
}

// sessionConflist is the template made one session's: its name and bridge
// are the session's bridge, its addresses the session's subnet (leases
// under ipamDir), masquerading only with egress. The rest of the
// template's options are kept.
func sessionConflist(tmpl conflist, bridge string, subnet netip.Prefix, egress bool, ipamDir string) ([]byte, error) {
	// A deep copy through JSON: the template is shared by every session.
	raw, err := json.Marshal(tmpl)
	if err != nil {
		return nil, err
	}
	var c conflist
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	br, err := c.bridge()
	if err != nil {
		return nil, err
	}
	c["name"] = bridge
	br["bridge"] = bridge
	br["isGateway"] = true
	br["ipMasq"] = egress
	ipam := br["ipam"].(map[string]any)
	delete(ipam, "subnet")
	delete(ipam, "rangeStart")
	delete(ipam, "rangeEnd")
	delete(ipam, "gateway")
	ipam["ranges"] = [][]map[string]string{{{"subnet": subnet.String(), "gateway": gateway(subnet).String()}}}
	ipam["dataDir"] = ipamDir
	if _, ok := ipam["routes"]; !ok {
		ipam["routes"] = []map[string]string{{"dst": "0.0.0.0/0"}}
	}
	return json.MarshalIndent(c, "", "  ")
}
