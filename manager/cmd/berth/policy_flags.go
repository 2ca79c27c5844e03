package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/slots"
)

// flagUnlimited is the flag value that sends null: no limit.
const flagUnlimited = "unlimited"

// policyFlags are the flags of "policy create" and "policy update", kept as
// text so that "unlimited" can be told from a number. Only the flags given
// are sent; the manager checks every range and says which rule a value
// breaks, so the CLI checks only that a value can be sent at all.
type policyFlags struct {
	values      map[string]*string
	allowRoot   *bool
	allowEgress *bool
}

// policyFlag is one flag: the request field it sets and how its text
// becomes that field's JSON value.
type policyFlag struct {
	flag, usage string
	set         func(body map[string]any, text string) error
}

func policyFlagList() []policyFlag {
	return []policyFlag{
		{"cpu", "most CPU cores in total, decimals allowed (e.g. 2.5), or unlimited", slotSetter(slots.CPU)},
		{"mem", "most memory in total: bytes or a size such as 4GiB or 512MiB, or unlimited", memSetter},
		{"cuda-device", "most whole GPUs in total, or unlimited", slotSetter(slots.CUDADevice)},
		{"cuda-shares", "most fractional GPU (fGPU) shares in total, e.g. 1 or 0.5, or unlimited", slotSetter(slots.CUDAShares)},
		{"max-containers-per-session", "containers one session may have (1 to 100)", wholeSetter("max_containers_per_session", false)},
		{"idle-timeout", "seconds (or a duration such as 30m) a session may be idle before it is ended; 0 = never", secondsSetter("idle_timeout", false)},
		{"max-concurrent-sessions", "sessions a keypair may run at once (1 to 100), or unlimited", wholeSetter("max_concurrent_sessions", true)},
		{"max-session-lifetime", "seconds (or a duration such as 24h) a session may live, or unlimited", secondsSetter("max_session_lifetime", true)},
		{"max-disconnect", "seconds (or a duration such as 10m) a disconnected agent keeps this policy's sessions before they end ERROR agent-lost; the managers' -disconnect-grace when smaller or when unlimited", secondsSetter("max_disconnect", true)},
		{"allowed-vfolder-hosts", "comma-separated folder hosts the keypairs may use (empty: none)", hostsSetter},
		{"max-vfolder-size", "most bytes per storage folder, or a size such as 100GiB, or unlimited", sizeSetter("max_vfolder_size")},
		{"max-vfolder-count", "storage folders a user may have (0 to 50)", wholeSetter("max_vfolder_count", false)},
		{"allowed-images", "comma-separated patterns over an image's full reference (registry.example.com/lab/*; * matches anything, / included) a session's image must match (empty: any image)", imagesSetter},
	}
}

func (f *policyFlags) register(cmd *cobra.Command) {
	f.values = map[string]*string{}
	for _, pf := range policyFlagList() {
		f.values[pf.flag] = cmd.Flags().String(pf.flag, "", pf.usage)
	}
	f.allowRoot = cmd.Flags().Bool("allow-root", false, "let sessions ask to run as root in their containers (--allow-root=false takes it back)")
	f.allowEgress = cmd.Flags().Bool("allow-egress", true, "let sessions reach beyond their node (default true; --allow-egress=false keeps new sessions on their own network)")
}

// body is the request body of the flags given; every flag that cannot be
// sent is reported at once.
func (f *policyFlags) body(cmd *cobra.Command) (map[string]any, error) {
	body := map[string]any{}
	var errs []error
	for _, pf := range policyFlagList() {
		if !cmd.Flags().Changed(pf.flag) {
			continue
		}
		if err := pf.set(body, strings.TrimSpace(*f.values[pf.flag])); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", pf.flag, err))
		}
	}
	if cmd.Flags().Changed("allow-root") {
		body["allow_root"] = *f.allowRoot
	}
	if cmd.Flags().Changed("allow-egress") {
		body["allow_egress"] = *f.allowEgress
	}
	return body, errors.Join(errs...)
}

// setSlot puts one slot into total_resource_slots (nil: unlimited).
func setSlot(body map[string]any, n slots.Name, v any) {
	m, _ := body["total_resource_slots"].(map[string]any)
	if m == nil {
		m = map[string]any{}
		body["total_resource_slots"] = m
	}
	m[string(n)] = v
}

func slotSetter(n slots.Name) func(map[string]any, string) error {
	return func(body map[string]any, text string) error {
		if text == flagUnlimited {
			setSlot(body, n, nil)
			return nil
		}
		// Sent as the decimal typed, not through a float, so 0.1 stays 0.1.
		if text == "" || !json.Valid([]byte(text)) || !strings.ContainsAny(text[:1], "-0123456789") {
			return fmt.Errorf("%q is not a number or %s", text, flagUnlimited)
		}
		setSlot(body, n, json.Number(text))
		return nil
	}
}

func memSetter(body map[string]any, text string) error {
	if text == flagUnlimited {
		setSlot(body, slots.Mem, nil)
		return nil
	}
	v, err := slots.ParseSize(text)
	if err != nil {
		return err
	}
	setSlot(body, slots.Mem, v)
	return nil
}

func wholeSetter(field string, nullable bool) func(map[string]any, string) error {
	return func(body map[string]any, text string) error {
		if nullable && text == flagUnlimited {
			body[field] = nil
			return nil
		}
		v, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			if nullable {
				return fmt.Errorf("%q is not a whole number or %s", text, flagUnlimited)
			}
			return fmt.Errorf("%q is not a whole number", text)
		}
		body[field] = v
		return nil
	}
}

func secondsSetter(field string, nullable bool) func(map[string]any, string) error {
	return func(body map[string]any, text string) error {
		if nullable && text == flagUnlimited {
			body[field] = nil
			return nil
		}
		v, err := parseSeconds(text)
		if err != nil {
			return err
		}
		body[field] = v
		return nil
	}
}

// parseSeconds reads a whole number of seconds or a Go duration (90m, 24h).
func parseSeconds(text string) (int64, error) {
	if v, err := strconv.ParseInt(text, 10, 64); err == nil {
		return v, nil
	}
	d, err := time.ParseDuration(text)
	if err != nil || d%time.Second != 0 {
		return 0, fmt.Errorf("%q is not a whole number of seconds or a duration such as 90m", text)
	}
	return int64(d / time.Second), nil
}

func sizeSetter(field string) func(map[string]any, string) error {
	return func(body map[string]any, text string) error {
		if text == flagUnlimited {
			body[field] = nil
			return nil
		}
		v, err := slots.ParseSize(text)
		if err != nil {
			return err
		}
		body[field] = v
		return nil
	}
}

func imagesSetter(body map[string]any, text string) error {
	patterns := []string{}
	for _, p := range strings.Split(text, ",") {
		if p = strings.TrimSpace(p); p != "" {
			patterns = append(patterns, p)
		}
	}
	body["allowed_images"] = patterns
	return nil
}

func hostsSetter(body map[string]any, text string) error {
	hosts := []string{}
	for _, h := range strings.Split(text, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	body["allowed_vfolder_hosts"] = hosts
	return nil
}
