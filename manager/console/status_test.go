package console_test

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/manager/console"
	"github.com/berth-cluster/berth/shared/api"
)

// statusExport is one `export const NAME = [...]` or `= new Set([...])` of
// status.js; statusItem a quoted status in it.
var (
	statusExport = regexp.MustCompile(`(?m)^export const (\w+) = (?:new Set\()?\[([^\]]*)\]\)?;$`)
	statusItem   = regexp.MustCompile(`"([^"]*)"`)
)

// goSessionSets are the Go definitions the console's sets must equal, by
// the name status.js exports them under.
func goSessionSets() map[string][]api.SessionStatus {
	where := func(q func(api.SessionStatus) bool) []api.SessionStatus {
		var out []api.SessionStatus
		for _, s := range api.SessionStatuses() {
			if q(s) {
				out = append(out, s)
			}
		}
		return out
	}
	return map[string][]api.SessionStatus{
		"sessionStatuses": api.SessionStatuses(),
		"ended":           where(api.SessionStatus.Ended),
		"endingOrEnded":   where(api.SessionStatus.EndingOrEnded),
		"occupying":       where(api.SessionStatus.Occupying),
		"active":          where(api.SessionStatus.Active),
	}
}

// The console asks "has this session ended, may it still be terminated"
// of status.js: each of its sets is the Go method's, status for status (the
// list of all statuses in the Go order), and it has one for every method.
func TestTheConsoleStatusSetsAreTheGoOnes(t *testing.T) {
	t.Parallel()
	src, err := fs.ReadFile(console.Files(), "assets/status.js")
	if err != nil {
		t.Fatal(err)
	}
	want := goSessionSets()
	seen := map[string]bool{}
	for _, m := range statusExport.FindAllStringSubmatch(string(src), -1) {
		name := m[1]
		var got []api.SessionStatus
		for _, it := range statusItem.FindAllStringSubmatch(m[2], -1) {
			got = append(got, api.SessionStatus(it[1]))
		}
		w, ok := want[name]
		if !ok {
			t.Errorf("status.js exports %s, which no method of api.SessionStatus defines", name)
			continue
		}
		seen[name] = true
		if !slices.Equal(got, w) {
			t.Errorf("status.js's %s is %v; shared/api says %v", name, got, w)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("status.js does not export %s", name)
		}
	}
}

// No other module lists statuses of its own: a list beginning with a
// session status is a second definition that would drift.
func TestNoConsoleModuleListsStatusesOfItsOwn(t *testing.T) {
	t.Parallel()
	var names []string
	for _, s := range api.SessionStatuses() {
		names = append(names, string(s))
	}
	list := regexp.MustCompile(`\[\s*"(?:` + strings.Join(names, "|") + `)"\s*,`)
	files := console.Files()
	n := 0
	err := fs.WalkDir(files, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
			return err
		}
		n++
		if p == "assets/status.js" {
			return nil
		}
		src, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		if loc := list.FindIndex(src); loc != nil {
			t.Errorf("%s lists session statuses (%q…): take the set from status.js", p, src[loc[0]:loc[1]])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("walked only %d modules", n)
	}
}
