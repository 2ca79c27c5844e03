// Package console serves the web console: plain HTML, CSS and JavaScript
// modules embedded in the binary (web/), no build step. It only serves
// files; every page talks to the manager through the public API (/v1) with
// the login's HttpOnly session cookie and the X-Berth-CSRF header, so the
// console can do nothing a user could not do with curl, and a user who
// types an admin page's address sees only what the API lets them see.
package console

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/berth-cluster/berth/shared/api"
)

//go:embed web
var web embed.FS

// securityHeaders keep the console's pages from being framed or from
// running anything but its own files: no inline script, no other origin.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
	"X-Content-Type-Options": "nosniff",
	"X-Frame-Options":        "DENY",
	"Referrer-Policy":        "no-referrer",
}

// Files is the console's file tree (index.html, assets/).
func Files() fs.FS {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		// The embedded tree is fixed at build time; this cannot fail
		// unless the directive above changes.
		panic(fmt.Sprintf("console: embedded web directory: %v", err))
	}
	return sub
}

// Handler serves the console: / is the single page, its assets are under
// /assets/. Anything else is 404 (the API answers its own paths before
// this handler is asked).
func Handler() http.Handler {
	files := http.FileServerFS(Files())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			problem(w, http.StatusMethodNotAllowed, api.ProblemMethod, "Method not allowed",
				fmt.Sprintf("the console only serves pages (GET %s); the API is under /v1", r.URL.Path))
			return
		}
		for k, v := range securityHeaders {
			w.Header().Set(k, v)
		}
		p := path.Clean(r.URL.Path)
		switch {
		case p == "/" || p == "/index.html":
			// The page names its assets without a version, so it must
			// never be served stale after an upgrade.
			w.Header().Set("Cache-Control", "no-cache")
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/"
			files.ServeHTTP(w, r2)
		case strings.HasPrefix(p, "/assets/"):
			w.Header().Set("Cache-Control", "no-cache")
			files.ServeHTTP(w, r)
		default:
			problem(w, http.StatusNotFound, api.ProblemNotFound, "Not found",
				fmt.Sprintf("no route %s %s; the console is at / and the API under /v1 (see GET /v1/openapi.json)", r.Method, r.URL.Path))
		}
	})
}

// problem answers like the API does (problem+json), so a client that took a
// wrong path gets the same kind of answer wherever it lands.
func problem(w http.ResponseWriter, status int, typ, title, detail string) {
	w.Header().Set("Content-Type", api.ProblemContentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Problem{Type: typ, Title: title, Status: status, Detail: detail})
}
