package console_test

import (
	"io"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/manager/console"
	"github.com/berth-cluster/berth/manager/testcluster"
)

func get(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestManagerServesTheConsoleAtRootWithoutShadowingTheAPI(t *testing.T) {
	t.Parallel()
	base := testcluster.URL(testcluster.StartFake(t).Servers[0])
	cases := []struct {
		name, method, path string
		status             int
		contentType        string
		body               string
	}{
		{"the page", http.MethodGet, "/", http.StatusOK, "text/html", `<script type="module" src="/assets/app.js">`},
		{"the page by name", http.MethodGet, "/index.html", http.StatusOK, "text/html", "<title>Berth console</title>"},
		{"a module", http.MethodGet, "/assets/app.js", http.StatusOK, "text/javascript", "import"},
		{"the stylesheet", http.MethodGet, "/assets/style.css", http.StatusOK, "text/css", ".sidebar"},
		{"an unknown page", http.MethodGet, "/nothing-here", http.StatusNotFound, "application/problem+json", "no route GET /nothing-here; the console is at /"},
		{"an unknown asset", http.MethodGet, "/assets/nope.js", http.StatusNotFound, "", ""},
		{"an unknown API path stays the API's", http.MethodGet, "/v1/nothing", http.StatusNotFound, "application/problem+json", "no route GET /v1/nothing"},
		{"health", http.MethodGet, "/healthz", http.StatusOK, "", ""},
		{"metrics", http.MethodGet, "/metrics", http.StatusOK, "text/plain", "berth_http_requests_total"},
		{"the API needs credentials", http.MethodGet, "/v1/users", http.StatusUnauthorized, "application/problem+json", ""},
		{"writes to / are the API's 404", http.MethodPost, "/", http.StatusNotFound, "application/problem+json", "no route POST /"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			req, _ := http.NewRequest(c.method, base+c.path, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status {
				t.Fatalf("%s %s: status %d, want %d (%s)", c.method, c.path, resp.StatusCode, c.status, b)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.contentType) {
				t.Errorf("Content-Type %q, want %s…", ct, c.contentType)
			}
			if !strings.Contains(string(b), c.body) {
				t.Errorf("body does not contain %q:\n%.300s", c.body, b)
			}
		})
	}
}

func TestConsolePagesForbidFramingAndForeignScripts(t *testing.T) {
	t.Parallel()
	base := testcluster.URL(testcluster.StartFake(t).Servers[0])
	for _, p := range []string{"/", "/assets/app.js"} {
		resp, _ := get(t, http.MethodGet, base+p)
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %q", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: Content-Security-Policy %q allows inline code", p, csp)
		}
		if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("%s: X-Frame-Options %q, want DENY", p, got)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q, want nosniff", p, got)
		}
	}
}

// importPattern finds the static and dynamic imports of a module.
var importPattern = regexp.MustCompile(`(?:from\s+|import\s*\(\s*|import\s+)"(\.{1,2}/[^"]+)"`)

// TestEveryModuleImportResolves catches a renamed or missing module without
// a browser: a broken import would leave the console blank.
func TestEveryModuleImportResolves(t *testing.T) {
	t.Parallel()
	files := console.Files()
	n := 0
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
			return err
		}
		src, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		for _, m := range importPattern.FindAllStringSubmatch(string(src), -1) {
			target := path.Join(path.Dir(p), m[1])
			if _, err := fs.Stat(files, target); err != nil {
				t.Errorf("%s imports %s: %v", p, m[1], err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("found only %d imports; the pattern no longer matches the modules", n)
	}
}

// The page carries a fresh style nonce in each answer, the same in its CSP
// and on its stylesheet link (where the terminal's script reads it), and
// is never cached; xterm.js is served from the console's own files as a
// JavaScript module, with its licence.
func TestThePageHasAFreshStyleNonceAndXtermIsServedLocally(t *testing.T) {
	t.Parallel()
	base := testcluster.URL(testcluster.StartFake(t).Servers[0])
	nonce := regexp.MustCompile(`nonce="([^"]+)"`)
	var seen []string
	for range 2 {
		resp, body := get(t, http.MethodGet, base+"/")
		m := nonce.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("the page has no nonce: %s", body)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "style-src 'self' 'nonce-"+m[1]+"'") {
			t.Errorf("CSP %q does not admit the page's nonce %s", csp, m[1])
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q: a page with a nonce must not be cached", cc)
		}
		seen = append(seen, m[1])
	}
	if seen[0] == seen[1] {
		t.Errorf("two answers share the nonce %s", seen[0])
	}
	for p, ct := range map[string]string{"/assets/vendor/xterm/xterm.mjs": "text/javascript", "/assets/vendor/xterm/addon-fit.mjs": "text/javascript",
		"/assets/vendor/xterm/xterm.css": "text/css", "/assets/vendor/xterm/LICENSE.xterm": "", "/assets/vendor/xterm/LICENSE.addon-fit": ""} {
		resp, body := get(t, http.MethodGet, base+p)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) {
			t.Errorf("%s: %d %s", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if strings.Contains(body, "sourceMappingURL") {
			t.Errorf("%s points at a source map that is not shipped", p)
		}
	}
}
