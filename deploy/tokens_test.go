package deploy_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/shared/jointoken"
)

// tokenOnArgv matches a token given as a command-line value: -token X,
// -agent-token=X, -join-token "$t" (not the -file variants).
var tokenOnArgv = regexp.MustCompile(`(^|[\s"'])-(agent-|join-)?token(\s|=)`)

// Nothing the project ships or documents starts a daemon with a token on
// its command line, where ps shows it to every local account: scripts,
// systemd units and the READMEs pass tokens by file or environment.
func TestNoScriptUnitOrReadmePutsATokenOnTheCommandLine(t *testing.T) {
	// The pattern catches what the scripts used to do.
	for _, old := range []string{`bin/berth-agent -manager "http://$http" -token "$token" -state-dir`, `-agent-token "$token" -folder-host`,
		`-join-token=abc`} {
		if !tokenOnArgv.MatchString(old) {
			t.Fatalf("the pattern misses %q", old)
		}
	}
	if tokenOnArgv.MatchString(`-token-file "$f" -agent-token-file "$f" -join-token-file x`) {
		t.Fatal("the pattern matches the -file flags")
	}
	var files []string
	for _, glob := range []string{"../scripts/*.sh", "systemd/*", "config/*", "../Makefile", "../README.md", "README.md", "../.ci/*"} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 8 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if tokenOnArgv.MatchString(line) {
				t.Errorf("%s:%d passes a token on the command line (use -token-file / BERTH_AGENT_TOKEN): %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// Every placeholder token the documentation and example configuration
// show is one the daemons refuse at start.
func TestDeployPlaceholderTokensAreRefused(t *testing.T) {
	placeholder := regexp.MustCompile(`CHANGE-ME[-A-Za-z]*`)
	found := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range placeholder.FindAllString(string(b), -1) {
			found[m] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range jointoken.Examples {
		found[ex] = true
	}
	for p := range found {
		if strings.HasSuffix(p, "-token") && !slices.Contains(jointoken.Examples, p) {
			t.Errorf("deploy/ shows the placeholder token %q, which jointoken.Examples does not refuse", p)
		}
		if strings.HasSuffix(p, "-token") && !errors.Is(jointoken.Check("token", p), jointoken.ErrWeak) {
			t.Errorf("the placeholder %q is accepted", p)
		}
	}
}
