// Package console serves the web console: plain HTML, CSS and JavaScript
// modules embedded in the binary (web/), no build step. It only serves
// files; every page talks to the manager through the public API (/v1) with
// the login's HttpOnly session cookie and the X-Berth-CSRF header, so the
// console can do nothing a user could not do with curl, and a user who
// types an admin page's address sees only what the API lets them see.
package console

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/berth-cluster/berth/shared/api"
)

//go:embed web
var web embed.FS

// securityHeaders keep the console's pages from being framed or from
// running anything but its own files: no inline script, no eval, no other
// origin (connect-src 'self' covers the terminal's WebSocket).
var securityHeaders = map[string]string{
	"Content-Security-Policy": csp(""),
	"X-Content-Type-Options":  "nosniff",
	"X-Frame-Options":         "DENY",
	"Referrer-Policy":         "no-referrer",
}

// csp is the Content-Security-Policy; styleNonce, when set, also admits
// the <style> elements that carry it. The page's own scripts give every
// <style> they create that nonce (assets/terminal.js: xterm.js themes its
// terminal with such elements), so no style attribute and no style from
// anywhere else applies: markup injected into a page cannot style it.
func csp(styleNonce string) string {
	style := "style-src 'self'"
	if styleNonce != "" {
		style += " 'nonce-" + styleNonce + "'"
	}
	return "default-src 'self'; script-src 'self'; " + style + "; img-src 'self' data:; " +
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
}

// noncePlaceholder is replaced in index.html with each answer's nonce.
const noncePlaceholder = "BERTH-STYLE-NONCE"

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
	index, err := fs.ReadFile(Files(), "index.html")
	if err != nil || !bytes.Contains(index, []byte(noncePlaceholder)) {
		panic(fmt.Sprintf("console: index.html must name its style nonce %s: %v", noncePlaceholder, err))
	}
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
			// A nonce of its own for each answer, so never cached (and
			// the page names its assets without a version: it must not be
			// stale after an upgrade either).
			var n [16]byte
			if _, err := rand.Read(n[:]); err != nil {
				problem(w, http.StatusInternalServerError, api.ProblemInternal, "Internal error", "no randomness for the page's nonce")
				return
			}
			nonce := base64.StdEncoding.EncodeToString(n[:])
			w.Header().Set("Content-Security-Policy", csp(nonce))
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			body := bytes.ReplaceAll(index, []byte(noncePlaceholder), []byte(nonce))
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			if r.Method == http.MethodGet {
				_, _ = w.Write(body)
			}
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
