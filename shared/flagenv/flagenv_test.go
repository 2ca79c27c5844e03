package flagenv

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func TestEnvironmentFillsOnlyFlagsNotGiven(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("http-addr", "default", "")
	dir := fs.String("data-dir", "", "")
	n := fs.Int("bootstrap-expect", 0, "")
	var hosts list
	fs.Var(&hosts, "folder-host", "")
	if err := fs.Parse([]string{"-http-addr", "cli"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BERTH_HTTP_ADDR": "env", "BERTH_DATA_DIR": "/d", "BERTH_BOOTSTRAP_EXPECT": "3", "BERTH_FOLDER_HOST": "a=/x, b=/y"}
	if err := Apply(fs, func(k string) string { return env[k] }, "folder-host"); err != nil {
		t.Fatal(err)
	}
	if *addr != "cli" || *dir != "/d" || *n != 3 || strings.Join(hosts, "|") != "a=/x|b=/y" {
		t.Fatalf("addr %q dir %q n %d hosts %q", *addr, *dir, *n, hosts)
	}
	env = map[string]string{"BERTH_BOOTSTRAP_EXPECT": "three"}
	fs2 := flag.NewFlagSet("y", flag.ContinueOnError)
	fs2.Int("bootstrap-expect", 0, "")
	if err := Apply(fs2, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "BERTH_BOOTSTRAP_EXPECT") {
		t.Fatalf("a bad value must name its variable: %v", err)
	}
}

func TestFolderHostFlags(t *testing.T) {
	h := HostMap{}
	if err := h.Set("local=/srv/a"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"local=/srv/b", "noequals", "=/x", "x="} {
		if err := h.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
	dir := t.TempDir()
	errs := CheckHosts(map[string]string{"ok": dir, "rel": "data", "gone": dir + "/missing"})
	want := []string{
		"-folder-host gone=" + dir + "/missing: not a directory on this machine (mount the storage first)",
		"-folder-host rel=data: the path must be absolute",
	}
	if strings.Join(errs, "\n") != strings.Join(want, "\n") {
		t.Errorf("CheckHosts = %q, want %q", errs, want)
	}
}

func TestDaysTakesDaysAndGoDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "36h": 36 * time.Hour,
		"90m": 90 * time.Minute, "0": 0, "0d": 0, "30s": 30 * time.Second} {
		var d Days
		if err := d.Set(in); err != nil || time.Duration(d) != want {
			t.Errorf("%q: %v %v, want %v", in, time.Duration(d), err, want)
		}
	}
	for _, in := range []string{"7", "d", "-1d", "1.5d", "-5m", "7days", "1d-1h", "99999d"} {
		var d Days
		if err := d.Set(in); err == nil {
			t.Errorf("%q accepted as %v", in, time.Duration(d))
		}
	}
	d := Days(7 * 24 * time.Hour)
	if d.String() != "7d" {
		t.Errorf("7 days prints as %s", d.String())
	}
}
