package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// documentedBodyLimit is the documented request body limit (API.md: "Bodies over 1 MiB → 413").
const documentedBodyLimit = 1 << 20

// paddedLogin is a login body of exactly n bytes: a JSON object followed by
// spaces, which a decoder must accept.
func paddedLogin(t testing.TB, n int) []byte {
	b := mustJSON(t, map[string]string{"email": "nobody@example.com", "password": "Wrong-pass-1"})
	if len(b) > n {
		t.Fatalf("body of %d bytes cannot be padded to %d", len(b), n)
	}
	return append(b, bytes.Repeat([]byte(" "), n-len(b))...)
}

// onlyReader hides a reader's length, so the client sends the body chunked
// without a Content-Length.
type onlyReader struct{ io.Reader }

// TestRequestProblemsAreProblemJSON covers how malformed, oversized and
// misrouted requests are refused: each with its status, as
// application/problem+json, with the problem type and the field at fault.
func TestRequestProblemsAreProblemJSON(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFake(t)
	s := c.Servers[0]
	base := testcluster.URL(s)
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)

	cases := []struct {
		name   string
		method string
		path   string
		token  string
		body   string
		status int
		typ    string
		fields map[string][]string // nil: no field errors expected
		detail string              // a fragment of the detail
	}{
		{"unknown field in login", http.MethodPost, "/v1/auth/login", "", `{"email":"a@example.com","password":"x","emial":"b"}`,
			400, api.ProblemValidation, map[string][]string{"emial": {`unknown field "emial"`}}, "emial"},
		{"unknown field in user creation", http.MethodPost, "/v1/users", admin,
			`{"email":"n@example.com","username":"n","password":"Passw0rd!","nickname":"x"}`,
			400, api.ProblemValidation, map[string][]string{"nickname": {`unknown field "nickname"`}}, "nickname"},
		{"invalid JSON", http.MethodPost, "/v1/auth/login", "", `{"email":"a@example.com",,}`,
			400, api.ProblemValidation, nil, "not valid JSON"},
		{"truncated JSON", http.MethodPost, "/v1/auth/login", "", `{"email":"a@example.com"`,
			400, api.ProblemValidation, nil, "truncated"},
		{"field of the wrong type", http.MethodPost, "/v1/auth/login", "", `{"email":1,"password":"x"}`,
			400, api.ProblemValidation, map[string][]string{"email": {"email must be a string, not number"}}, ""},
		{"data after the object", http.MethodPost, "/v1/auth/login", "", `{"email":"a@example.com","password":"x"} {}`,
			400, api.ProblemValidation, nil, "after the JSON object"},
		{"a list instead of an object", http.MethodPost, "/v1/auth/login", "", `[]`,
			400, api.ProblemValidation, nil, "JSON object"},
		{"empty body", http.MethodPost, "/v1/auth/login", "", ``,
			400, api.ProblemValidation, nil, "empty"},
		{"unknown route", http.MethodGet, "/v1/no-such-thing", admin, ``,
			404, api.ProblemNotFound, nil, "/v1/no-such-thing"},
		{"unknown route without credentials", http.MethodGet, "/nope", "", ``,
			404, api.ProblemNotFound, nil, ""},
		{"unknown user", http.MethodGet, "/v1/users/ghost@example.com", admin, ``,
			404, api.ProblemNotFound, nil, "ghost@example.com"},
		{"bad list limit", http.MethodGet, "/v1/users?limit=0", admin, ``,
			400, api.ProblemValidation, map[string][]string{"limit": {"limit must be a whole number from 1 to 1000"}}, ""},
		{"bad status filter", http.MethodGet, "/v1/users?status=sleeping", admin, ``,
			400, api.ProblemValidation, map[string][]string{"status": {"status must be active or inactive"}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			r := testcluster.Do(t, tc.method, base+tc.path, tc.token, body)
			p := wantProblem(t, r, tc.status, tc.typ)
			if tc.fields == nil && len(p.Errors) > 0 {
				t.Errorf("unexpected field errors %+v", p.Errors)
			}
			if tc.fields != nil {
				wantFields(t, p, tc.fields)
			}
			wantDetail(t, p, tc.detail)
		})
	}

	t.Run("bodies over 1 MiB are 413", func(t *testing.T) {
		over := paddedLogin(t, documentedBodyLimit+1)
		cases := map[string]func() *http.Request{
			"with Content-Length": func() *http.Request {
				return newRequest(t, http.MethodPost, base+"/v1/auth/login", over)
			},
			"chunked": func() *http.Request {
				req, err := http.NewRequest(http.MethodPost, base+"/v1/auth/login", onlyReader{bytes.NewReader(over)})
				if err != nil {
					t.Fatal(err)
				}
				if req.ContentLength != 0 && req.ContentLength != -1 {
					t.Fatalf("request has a Content-Length %d; want it sent chunked", req.ContentLength)
				}
				return req
			},
			// The caller is authenticated before the body is looked at:
			// without credentials this is a 401.
			"far over, with Content-Length, authenticated": func() *http.Request {
				req := newRequest(t, http.MethodPost, base+"/v1/users", paddedLogin(t, 8*documentedBodyLimit))
				req.Header.Set("Authorization", "Bearer "+admin)
				return req
			},
		}
		for name, build := range cases {
			t.Run(name, func(t *testing.T) {
				p := wantProblem(t, send(t, build()), http.StatusRequestEntityTooLarge, api.ProblemTooLarge)
				wantDetail(t, p, "1 MiB")
			})
		}
	})

	t.Run("a body of exactly 1 MiB is read", func(t *testing.T) {
		// The padded login is well formed; its credentials are wrong.
		r := send(t, newRequest(t, http.MethodPost, base+"/v1/auth/login", paddedLogin(t, documentedBodyLimit)))
		wantProblem(t, r, http.StatusUnauthorized, api.ProblemUnauthorized)
	})

	t.Run("deleting a user is 405 and says to deactivate", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodDelete, base+"/v1/users/"+testcluster.AdminEmail, admin, nil)
		p := wantProblem(t, r, http.StatusMethodNotAllowed, api.ProblemMethod)
		wantDetail(t, p, "never deleted", "deactivate", `"status":"inactive"`)
		if allow := r.Header.Get("Allow"); allow == "" || strings.Contains(allow, http.MethodDelete) {
			t.Errorf("Allow %q: want the methods a user takes, without DELETE", allow)
		}
		// Still there.
		wantStatus(t, testcluster.Do(t, http.MethodGet, base+"/v1/users/"+testcluster.AdminEmail, admin, nil), http.StatusOK)
	})
}

// TestUserCreateValidationAndConflicts: POST /v1/users reports every broken
// rule at once with a reason for each, and a duplicate email or username is
// 409 naming which.
func TestUserCreateValidationAndConflicts(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFake(t)
	s := c.Servers[0]
	base := testcluster.URL(s)
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	createUser(t, s, admin, "taken@example.com", "taken", api.RoleUser)
	long := strings.Repeat("x", 65)

	cases := []struct {
		name   string
		body   map[string]any
		status int
		typ    string
		want   map[string][]string
	}{
		{"every rule broken at once", map[string]any{
			"email": "not-an-email", "username": long, "full_name": long, "password": "short",
			"role": "king", "status": "sleeping",
		}, 400, api.ProblemValidation, map[string][]string{
			"email":     {"email must look like name@example.com"},
			"username":  {"username must be at most 64 characters"},
			"full_name": {"full_name must be at most 64 characters"},
			"password": {
				"password must be at least 8 characters long",
				"password must contain at least one digit",
				"password must contain at least one special character (such as ! @ # $ %)",
			},
			"role":   {"role must be one of superadmin, admin, user, monitor"},
			"status": {"status must be active or inactive"},
		}},
		{"required fields missing", map[string]any{}, 400, api.ProblemValidation, map[string][]string{
			"email":    {"email is required"},
			"username": {"username is required"},
			"password": {
				"password must be at least 8 characters long",
				"password must contain at least one letter",
				"password must contain at least one digit",
				"password must contain at least one special character (such as ! @ # $ %)",
			},
		}},
		{"email over 64 characters", map[string]any{
			"email": strings.Repeat("e", 60) + "@example.com", "username": "longmail", "password": testPassword,
		}, 400, api.ProblemValidation, map[string][]string{"email": {"email must be at most 64 characters"}}},
		{"blank username", map[string]any{"email": "blank@example.com", "username": "   ", "password": testPassword},
			400, api.ProblemValidation, map[string][]string{"username": {"username is required"}}},
		{"duplicate email", map[string]any{"email": "taken@example.com", "username": "fresh", "password": testPassword},
			409, api.ProblemConflict, map[string][]string{"email": {"a user with email taken@example.com already exists"}}},
		{"duplicate email in another case", map[string]any{"email": "  Taken@Example.COM", "username": "fresh2", "password": testPassword},
			409, api.ProblemConflict, map[string][]string{"email": {"a user with email taken@example.com already exists"}}},
		{"duplicate username", map[string]any{"email": "fresh@example.com", "username": "taken", "password": testPassword},
			409, api.ProblemConflict, map[string][]string{"username": {"the username taken is taken by taken@example.com"}}},
		{"duplicate email and username", map[string]any{"email": "taken@example.com", "username": "taken", "password": testPassword},
			409, api.ProblemConflict, map[string][]string{
				"email":    {"a user with email taken@example.com already exists"},
				"username": {"the username taken is taken by taken@example.com"},
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := testcluster.Do(t, http.MethodPost, base+"/v1/users", admin, tc.body)
			p := wantProblem(t, r, tc.status, tc.typ)
			wantFields(t, p, tc.want)
		})
	}
	t.Run("exactly 64 characters is allowed", func(t *testing.T) {
		name := strings.Repeat("n", 64)
		r := testcluster.Do(t, http.MethodPost, base+"/v1/users", admin, map[string]any{
			"email": strings.Repeat("e", 52) + "@example.com", "username": name, "full_name": name, "password": testPassword,
		})
		wantStatus(t, r, http.StatusCreated)
	})
	t.Run("refused creations made no user", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodGet, base+"/v1/users?username=fresh", admin, nil)
		wantStatus(t, r, http.StatusOK)
		var list api.List[api.User]
		r.JSON(t, &list)
		if len(list.Items) != 0 {
			t.Errorf("refused creations left users %+v", list.Items)
		}
	})
}
