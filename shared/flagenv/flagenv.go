// Package flagenv lets every command-line flag of a daemon come from the
// environment as BERTH_<FLAG> (dashes as underscores), so containers and
// systemd units can configure it without a long command line.
package flagenv

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Name is the environment variable of a flag.
func Name(flagName string) string {
	return "BERTH_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Apply sets every flag not given on the command line from its environment
// variable. Flags listed in repeatable take a comma-separated list.
func Apply(fs *flag.FlagSet, getenv func(string) string, repeatable ...string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		name := Name(f.Name)
		v := getenv(name)
		if v == "" {
			return
		}
		values := []string{v}
		for _, r := range repeatable {
			if r == f.Name {
				values = strings.Split(v, ",")
			}
		}
		for _, item := range values {
			if err := f.Value.Set(strings.TrimSpace(item)); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// Given reports whether the flag was set on the command line.
func Given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// HostMap collects repeated NAME=PATH flags (-folder-host) into a map.
type HostMap map[string]string

func (h HostMap) String() string { return fmt.Sprint(map[string]string(h)) }

// Set adds one NAME=PATH; a name given twice is an error.
func (h HostMap) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("folder host %q must be NAME=PATH", v)
	}
	if _, dup := h[name]; dup {
		return fmt.Errorf("folder host %s is given twice", name)
	}
	h[name] = path
	return nil
}

// CheckHosts reports each folder host whose path is not an absolute path
// to an existing directory, as a daemon's config check wants them.
func CheckHosts(hosts map[string]string) []string {
	var errs []string
	names := make([]string, 0, len(hosts))
	for n := range hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := hosts[n]
		if !filepath.IsAbs(p) {
			errs = append(errs, fmt.Sprintf("-folder-host %s=%s: the path must be absolute", n, p))
			continue
		}
		if st, err := os.Stat(p); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Sprintf("-folder-host %s=%s: not a directory on this machine (mount the storage first)", n, p))
		}
	}
	return errs
}

// Days is a duration flag that also takes whole days: "7d", "1d12h",
// "36h", "90m", "0". Go's durations stop at hours, and retentions are said
// in days.
type Days time.Duration

func (d *Days) String() string {
	v := time.Duration(*d)
	if v > 0 && v%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", v/(24*time.Hour))
	}
	return v.String()
}

// Set parses an optional whole number of days ("7d") followed by a Go
// duration ("12h").
func (d *Days) Set(v string) error {
	days, rest := int64(0), v
	if i := strings.IndexByte(v, 'd'); i >= 0 {
		n, err := strconv.ParseInt(v[:i], 10, 64)
		if err != nil || n < 0 || n > 100*365 {
			return fmt.Errorf("%q: days must be a whole number from 0 to 36500 before the d", v)
		}
		days, rest = n, v[i+1:]
	}
	var part time.Duration
	if rest != "" {
		var err error
		if part, err = time.ParseDuration(rest); err != nil {
			return fmt.Errorf("%q is not a duration (like 7d, 1d12h, 36h or 90m)", v)
		}
	}
	if part < 0 {
		return fmt.Errorf("%q is negative", v)
	}
	*d = Days(time.Duration(days)*24*time.Hour + part)
	return nil
}
