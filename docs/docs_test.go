package docs_test

import (
	"bufio"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/manager/testcluster"
)

// root is the repository, seen from this package's directory.
const root = ".."

// repoFiles walks the repository for files whose names match keep, leaving
// out what is not the project's own (git, build and dev state, test data).
func repoFiles(t *testing.T, keep func(name string) bool) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".berth-dev", "bin", "testdata", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if keep(d.Name()) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// The documentation must stand alone: the product spec a session was given
// lives outside the repository, and a reader of a clone has none of it.
func TestNothingPointsOutsideTheRepository(t *testing.T) {
	outside := regexp.MustCompile(`\.\./shared/|shared/(DESIGN|API|DEPENDENCIES)\.md|reference-manual`)
	// The pattern catches what the docs used to say.
	for _, old := range []string{"See `../shared/DESIGN.md` and `../shared/API.md`.", "(shared/DEPENDENCIES.md)", "shared/API.md"} {
		if !outside.MatchString(old) {
			t.Fatalf("the pattern misses %q", old)
		}
	}
	self, err := filepath.Abs("docs_test.go")
	if err != nil {
		t.Fatal(err)
	}
	files := repoFiles(t, func(name string) bool {
		return strings.HasSuffix(name, ".md") || strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".sh") || name == "Makefile"
	})
	if len(files) < 100 {
		t.Fatalf("found only %d files", len(files))
	}
	for _, f := range files {
		if abs, _ := filepath.Abs(f); abs == self {
			continue
		}
		forEachLine(t, f, func(n int, line string) {
			if m := outside.FindString(line); m != "" {
				t.Errorf("%s:%d points outside the repository (%s): %s", f, n, m, strings.TrimSpace(line))
			}
		})
	}
}

// Every link of a Markdown file, and every repository document a line names
// (docs/API.md, manager/DESIGN.md, ...), is a file that exists.
func TestEveryDocumentLinkLeadsToAFile(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	named := regexp.MustCompile(`\b((?:docs|manager|agent|deploy)/[A-Z][A-Z_]*\.md)\b`)
	files := repoFiles(t, func(name string) bool { return strings.HasSuffix(name, ".md") })
	checked := 0
	for _, f := range files {
		forEachLine(t, f, func(n int, line string) {
			for _, m := range link.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				target, _, _ = strings.Cut(target, "#")
				checked++
				if _, err := os.Stat(filepath.Join(filepath.Dir(f), target)); err != nil {
					t.Errorf("%s:%d links to %s, which is not there", f, n, m[1])
				}
			}
			for _, m := range named.FindAllStringSubmatch(line, -1) {
				checked++
				if _, err := os.Stat(filepath.Join(root, m[1])); err != nil {
					t.Errorf("%s:%d names %s, which is not there", f, n, m[1])
				}
			}
		})
	}
	if checked < 30 {
		t.Fatalf("checked only %d links", checked)
	}
}

// The package tables of the design notes list every package of their tree,
// and only packages that exist.
func TestDesignNotesListEveryPackage(t *testing.T) {
	for _, c := range []struct {
		doc   string
		trees []string
	}{
		{"manager/DESIGN.md", []string{"manager"}},
		{"agent/DESIGN.md", []string{"agent"}},
		{"docs/ARCHITECTURE.md", []string{"shared", "tools"}},
	} {
		t.Run(c.doc, func(t *testing.T) {
			listed := tableNames(t, filepath.Join(root, c.doc))
			var want []string
			for _, tree := range c.trees {
				for _, dir := range packageDirs(t, tree) {
					want = append(want, tableName(c.doc, tree, dir))
				}
			}
			for _, p := range want {
				if !slices.Contains(listed, p) {
					t.Errorf("%s's package table does not list %s", c.doc, p)
				}
			}
			for _, p := range listed {
				if !slices.Contains(want, p) {
					t.Errorf("%s's package table lists %s, which is not a package", c.doc, p)
				}
			}
		})
	}
}

// tableName is how a design note names the package in dir: relative to its
// own tree (manager/DESIGN.md: `fsm`; the tree's root package by the tree's
// name), or from the repository root where one table covers several trees.
func tableName(doc, tree, dir string) string {
	if doc == "docs/ARCHITECTURE.md" {
		return filepath.ToSlash(dir)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(filepath.ToSlash(dir), tree), "/")
	if rel == "" {
		return tree
	}
	return rel
}

// packageDirs are the directories under tree (relative to the repository)
// that hold Go files, test-only packages included.
func packageDirs(t *testing.T, tree string) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(root, tree), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".go") {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			seen[rel] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for d := range seen {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	if len(dirs) == 0 {
		t.Fatalf("no packages under %s", tree)
	}
	return dirs
}

// tableNames are the first cells of the "| package | one job |" table.
func tableNames(t *testing.T, doc string) []string {
	t.Helper()
	cell := regexp.MustCompile("^\\| `([^`]+)` \\|")
	var names []string
	in := false
	forEachLine(t, doc, func(_ int, line string) {
		switch {
		case strings.HasPrefix(line, "| package |"):
			in = true
		case in && !strings.HasPrefix(line, "|"):
			in = false
		case in:
			if m := cell.FindStringSubmatch(line); m != nil {
				names = append(names, m[1])
			}
		}
	})
	if len(names) == 0 {
		t.Fatalf("%s has no package table", doc)
	}
	return names
}

// API.md's "Endpoints" section names exactly the routes a manager serves, as
// its OpenAPI document (generated from the route table) lists them.
func TestAPIDocumentListsEveryRoute(t *testing.T) {
	c := testcluster.StartDev(t)
	r := testcluster.Do(t, http.MethodGet, testcluster.URL(c.Servers[0])+"/v1/openapi.json", "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("openapi: %d %s", r.Status, r.Body)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	r.JSON(t, &doc)
	var served []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch m := strings.ToUpper(method); m {
			case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
				served = append(served, m+" "+path)
			}
		}
	}
	if len(served) < 50 {
		t.Fatalf("the manager serves only %d routes: %v", len(served), served)
	}

	documented := documentedRoutes(t, "API.md")
	for _, rt := range served {
		if !slices.Contains(documented, rt) {
			t.Errorf("docs/API.md does not document %s", rt)
		}
	}
	for _, rt := range documented {
		if !slices.Contains(served, rt) {
			t.Errorf("docs/API.md documents %s, which no manager serves", rt)
		}
	}
}

// documentedRoutes are the `METHOD /path` spans of the Endpoints section,
// without their query strings.
func documentedRoutes(t *testing.T, doc string) []string {
	t.Helper()
	route := regexp.MustCompile("`(GET|POST|PUT|PATCH|DELETE) (/[^`?\\s]*)[^`]*`")
	var routes []string
	in := false
	forEachLine(t, doc, func(_ int, line string) {
		if strings.HasPrefix(line, "## ") {
			in = line == "## Endpoints"
			return
		}
		if !in {
			return
		}
		for _, m := range route.FindAllStringSubmatch(line, -1) {
			if rt := m[1] + " " + m[2]; !slices.Contains(routes, rt) {
				routes = append(routes, rt)
			}
		}
	})
	if len(routes) == 0 {
		t.Fatalf("%s has no routes under ## Endpoints", doc)
	}
	return routes
}

func forEachLine(t *testing.T, file string, f func(n int, line string)) {
	t.Helper()
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for n := 1; sc.Scan(); n++ {
		f(n, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
}
