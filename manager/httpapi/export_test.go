package httpapi_test

import (
	"encoding/csv"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

func readCSV(t *testing.T, r *testcluster.Response) [][]string {
	t.Helper()
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if err != nil {
		t.Fatalf("parse CSV: %v\n%s", err, r.Body)
	}
	return rows
}

func attachmentName(t *testing.T, r *testcluster.Response) string {
	t.Helper()
	kind, params, err := mime.ParseMediaType(r.Header.Get("Content-Disposition"))
	if err != nil || kind != "attachment" {
		t.Fatalf("Content-Disposition %q: %v", r.Header.Get("Content-Disposition"), err)
	}
	return params["filename"]
}

func TestUserExportRoundTripsHostileValues(t *testing.T) {
	t.Parallel()
	a := startAdmin(t)
	hostile := []struct{ email, username, fullName string }{
		{"q@example.com", `say "hi", ok`, "line one\nline two"},
		{"f@example.com", "=cmd|' /C calc'!A0", "+SUM(1,2)"},
		{"m@example.com", "-2+3", "@import"},
		// Some spreadsheets skip a leading tab or carriage return before
		// they look for a formula.
		{"t@example.com", "tab", "\t=HYPERLINK(\"http://x\")"},
		{"r@example.com", "cr", "\r=1+1"},
		{"u@example.com", "ユーザー", "Zoë Ünïcode, 名前"},
	}
	for _, h := range hostile {
		wantStatus(t, a.do(http.MethodPost, "/v1/users", a.token, map[string]any{
			"email": h.email, "username": h.username, "full_name": h.fullName, "password": testPassword}), 201)
	}
	r := a.do(http.MethodGet, "/v1/export/users.csv?email=example.com", a.token, nil)
	rows := readCSV(t, r)
	if attachmentName(t, r) != "users.csv" {
		t.Errorf("default file name %q", attachmentName(t, r))
	}
	wantHeader := []string{"email", "username", "full_name", "role", "status", "domain", "groups", "need_password_change", "created_at"}
	if !slices.Equal(rows[0], wantHeader) {
		t.Fatalf("header %q", rows[0])
	}
	if len(rows) != 1+len(hostile) {
		t.Fatalf("%d rows, want %d (the filter must apply)", len(rows)-1, len(hostile))
	}
	guard := func(s string) string {
		if strings.ContainsAny(s[:1], "=+-@\t\r") {
			return "'" + s
		}
		return s
	}
	byEmail := map[string][]string{}
	for _, row := range rows[1:] {
		byEmail[row[0]] = row
	}
	for _, h := range hostile {
		row := byEmail[h.email]
		if row == nil {
			t.Fatalf("no row for %s", h.email)
		}
		// Writing CRLF line ends, encoding/csv drops a lone CR: "\r=1+1"
		// would arrive as the formula "=1+1" but for the guard.
		wantName := strings.ReplaceAll(guard(h.fullName), "\r", "")
		if row[1] != guard(h.username) || row[2] != wantName {
			t.Errorf("%s round-tripped as %q / %q, want %q / %q", h.email, row[1], row[2], guard(h.username), wantName)
		}
		if row[3] != "user" || row[4] != "active" || row[5] != "default" || row[7] != "false" || row[8] == "" {
			t.Errorf("row %q", row)
		}
	}
}

func TestExportFilenameRules(t *testing.T) {
	t.Parallel()
	a := startAdmin(t)
	long := strings.Repeat("a", 256)
	ok := []struct{ in, want string }{
		{"people", "people.csv"},
		{"people.CSV", "people.CSV"},
		// The whole name, extension included, is at most 255 characters.
		{strings.Repeat("b", 251), strings.Repeat("b", 251) + ".csv"},
		{strings.Repeat("c", 251) + ".csv", strings.Repeat("c", 251) + ".csv"},
		{strings.Repeat("é", 251), strings.Repeat("é", 251) + ".csv"},
		{"résumé 2026", "résumé 2026.csv"},
	}
	for _, c := range ok {
		r := a.do(http.MethodGet, "/v1/export/keypairs.csv?filename="+url.QueryEscape(c.in), a.token, nil)
		readCSV(t, r)
		if got := attachmentName(t, r); got != c.want {
			t.Errorf("filename %q → %q, want %q", c.in, got, c.want)
		}
	}
	bad := []struct{ in, reason string }{
		{long, "filename must be at most 255 characters with the .csv that is added (at most 251 before it; it has 256)"},
		{strings.Repeat("d", 252), "filename must be at most 255 characters with the .csv that is added (at most 251 before it; it has 252)"},
		{strings.Repeat("e", 252) + ".csv", "filename must be at most 255 characters (it has 256)"},
		{"a/b", `filename must not contain path separators (/ or \)`},
		{`a\b`, `filename must not contain path separators (/ or \)`},
		{"a\x01b", "filename must not contain control characters"},
		{"..", "filename must contain something besides dots and spaces"},
	}
	for _, c := range bad {
		for _, kind := range []string{"users", "keypairs"} {
			p := wantProblem(t, a.do(http.MethodGet, "/v1/export/"+kind+".csv?filename="+url.QueryEscape(c.in), a.token, nil), 400, api.ProblemValidation)
			wantFields(t, p, map[string][]string{"filename": {c.reason}})
		}
	}
}

func TestKeypairExportHonoursFiltersAndVisibility(t *testing.T) {
	t.Parallel()
	a := startAdmin(t)
	u := createUser(t, a.s, a.token, "kx@example.com", "kx", "user")
	createUser(t, a.s, a.token, "ky@example.com", "ky", "user")
	wantStatus(t, a.do(http.MethodPatch, "/v1/keypairs/"+u.Keypair.AccessKey, a.token, map[string]any{"is_active": false}), 200)

	rows := readCSV(t, a.do(http.MethodGet, "/v1/export/keypairs.csv?is_active=false", a.token, nil))
	if len(rows) != 2 || rows[1][0] != u.Keypair.AccessKey || rows[1][2] != "false" {
		t.Fatalf("inactive keypairs export %q", rows)
	}
	wantHeader := []string{"access_key", "user", "is_active", "is_admin", "resource_policy", "rate_limit", "concurrency_used", "created_at", "last_used"}
	if !slices.Equal(rows[0], wantHeader) {
		t.Fatalf("header %q", rows[0])
	}
	// A user exports only their own; the users export is for admins.
	tok := testcluster.Login(t, a.s, "ky@example.com", testPassword)
	rows = readCSV(t, a.do(http.MethodGet, "/v1/export/keypairs.csv", tok, nil))
	if len(rows) != 2 || rows[1][1] != "ky@example.com" {
		t.Fatalf("user's own export %q", rows)
	}
	wantProblem(t, a.do(http.MethodGet, "/v1/export/users.csv", tok, nil), 403, api.ProblemForbidden)
}
