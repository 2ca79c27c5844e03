package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// admin is a running manager (on a fake cluster) with a superadmin token.
type admin struct {
	t     *testing.T
	s     *server.Server
	token string
}

func startAdmin(t *testing.T, tweak ...func(*server.Config)) *admin {
	c := testcluster.StartFake(t, tweak...)
	s := c.Servers[0]
	return &admin{t: t, s: s, token: testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)}
}

func (a *admin) do(method, path, token string, body any) *testcluster.Response {
	a.t.Helper()
	return testcluster.Do(a.t, method, testcluster.URL(a.s)+path, token, body)
}

func (a *admin) keypairs(query string) []api.Keypair {
	a.t.Helper()
	r := a.do(http.MethodGet, "/v1/keypairs?"+query, a.token, nil)
	wantStatus(a.t, r, http.StatusOK)
	var l api.List[api.Keypair]
	r.JSON(a.t, &l)
	return l.Items
}

func (a *admin) signed(method, path string, kp api.Keypair, body any) *testcluster.Response {
	a.t.Helper()
	var b []byte
	if body != nil {
		b = mustJSON(a.t, body)
	}
	return send(a.t, signedRequest(a.t, method, testcluster.URL(a.s)+path, kp, b, time.Now()))
}

func TestUserUpdateRules(t *testing.T) {
	t.Parallel()
	a := startAdmin(t)
	createUser(t, a.s, a.token, "ann@example.com", "ann", "user")
	long := fmt.Sprintf("%065d", 0)

	cases := []struct {
		name   string
		body   any
		status int
		fields map[string][]string
	}{
		{"email cannot change", map[string]any{"email": "other@example.com"}, 400,
			map[string][]string{"email": {"the email is the user id and cannot be changed"}}},
		{"every rule at once", map[string]any{"username": long, "full_name": long, "password": "short", "role": "root", "status": "gone"}, 400,
			map[string][]string{
				"username":  {"username must be at most 64 characters"},
				"full_name": {"full_name must be at most 64 characters"},
				"password": {"password must be at least 8 characters long", "password must contain at least one digit",
					"password must contain at least one special character (such as ! @ # $ %)"},
				"role":   {"role must be one of superadmin, admin, user, monitor"},
				"status": {"status must be active or inactive"},
			}},
		{"groups outside the domain", map[string]any{"groups": []string{"nope"}}, 400,
			map[string][]string{"groups": {"group nope does not exist in domain default"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := wantProblem(t, a.do(http.MethodPatch, "/v1/users/ann@example.com", a.token, c.body), c.status, api.ProblemValidation)
			wantFields(t, p, c.fields)
		})
	}

	t.Run("fields change and need_password_change changes nothing else", func(t *testing.T) {
		r := a.do(http.MethodPatch, "/v1/users/ann@example.com", a.token, map[string]any{
			"username": "annie", "full_name": "Ann Example", "need_password_change": true, "description": "d", "groups": []string{"default"}})
		wantStatus(t, r, http.StatusOK)
		var u api.User
		r.JSON(t, &u)
		if u.Username != "annie" || u.FullName != "Ann Example" || !u.NeedPasswordChange || u.Description != "d" || len(u.Groups) != 1 {
			t.Fatalf("updated user %+v", u)
		}
		// The flag is descriptive: the user still logs in and works.
		tok := testcluster.Login(t, a.s, "ann@example.com", testPassword)
		wantStatus(t, whoami(t, a.s, tok), http.StatusOK)
	})

	t.Run("an admin cannot touch a superadmin or grant the role", func(t *testing.T) {
		createUser(t, a.s, a.token, "adm@example.com", "adm", "admin")
		tok := testcluster.Login(t, a.s, "adm@example.com", testPassword)
		// A superadmin is out of an admin's reach: answered as unknown.
		p := wantProblem(t, a.do(http.MethodPatch, "/v1/users/"+testcluster.AdminEmail, tok, map[string]any{"full_name": "x"}), 404, api.ProblemNotFound)
		wantDetail(t, p, "no user with email "+testcluster.AdminEmail)
		p = wantProblem(t, a.do(http.MethodPatch, "/v1/users/ann@example.com", tok, map[string]any{"role": "superadmin"}), 403, api.ProblemForbidden)
		wantFields(t, p, map[string][]string{"role": {"only a superadmin may grant the superadmin role"}})
	})

	t.Run("nobody deactivates themselves, and one superadmin always stays", func(t *testing.T) {
		p := wantProblem(t, a.do(http.MethodPatch, "/v1/users/"+testcluster.AdminEmail, a.token, map[string]any{"status": "inactive"}), 400, api.ProblemValidation)
		wantFields(t, p, map[string][]string{"status": {"you cannot deactivate your own account; ask another administrator"}})
		p = wantProblem(t, a.do(http.MethodPatch, "/v1/users/"+testcluster.AdminEmail, a.token, map[string]any{"role": "admin"}), 409, api.ProblemConflict)
		wantDetail(t, p, "last active superadmin")
		createUser(t, a.s, a.token, "root2@example.com", "root2", "superadmin")
		wantStatus(t, a.do(http.MethodPatch, "/v1/users/root2@example.com", a.token, map[string]any{"role": "admin"}), 200)
	})

	t.Run("unknown user", func(t *testing.T) {
		wantProblem(t, a.do(http.MethodPatch, "/v1/users/nobody@example.com", a.token, map[string]any{"full_name": "x"}), 404, api.ProblemNotFound)
	})
}

func TestDeactivationEndsEveryCredentialAndReactivationLeavesKeypairsOff(t *testing.T) {
	t.Parallel()
	a := startAdmin(t)
	u := createUser(t, a.s, a.token, "bob@example.com", "bob", "user")
	r := a.do(http.MethodPost, "/v1/keypairs", a.token, map[string]any{"user": "bob@example.com"})
	wantStatus(t, r, http.StatusCreated)
	var second api.Keypair
	r.JSON(t, &second)
	token := testcluster.Login(t, a.s, "bob@example.com", testPassword)
	wantStatus(t, a.signed(http.MethodGet, "/v1/auth/whoami", u.Keypair, nil), 200)

	wantStatus(t, a.do(http.MethodPatch, "/v1/users/bob@example.com", a.token, map[string]any{"status": "inactive"}), 200)
	for _, k := range a.keypairs("user=bob@example.com") {
		if k.IsActive {
			t.Errorf("keypair %s still active after deactivation", k.AccessKey)
		}
	}
	wantProblem(t, whoami(t, a.s, token), 401, api.ProblemUnauthorized)
	wantProblem(t, loginAnswer(t, a.s, "bob@example.com", testPassword), 403, api.ProblemForbidden)
	wantProblem(t, a.signed(http.MethodGet, "/v1/auth/whoami", u.Keypair, nil), 401, api.ProblemUnauthorized)

	// Someone re-enables a keypair while the user is inactive: still nothing.
	wantStatus(t, a.do(http.MethodPatch, "/v1/keypairs/"+second.AccessKey, a.token, map[string]any{"is_active": true}), 200)
	p := wantProblem(t, a.signed(http.MethodGet, "/v1/auth/whoami", second, nil), 401, api.ProblemUnauthorized)
	wantDetail(t, p, "inactive")

	// Reactivation: login works again, the keypairs stay as they were.
	wantStatus(t, a.do(http.MethodPatch, "/v1/users/bob@example.com", a.token, map[string]any{"status": "active"}), 200)
	testcluster.Login(t, a.s, "bob@example.com", testPassword)
	wantProblem(t, a.signed(http.MethodGet, "/v1/auth/whoami", u.Keypair, nil), 401, api.ProblemUnauthorized)
	if ks := a.keypairs("user=bob@example.com&is_active=false"); len(ks) != 1 || ks[0].AccessKey != u.Keypair.AccessKey {
		t.Fatalf("after reactivation the inactive keypairs are %+v, want only the first", ks)
	}
	wantStatus(t, a.signed(http.MethodGet, "/v1/auth/whoami", second, nil), 200)
	wantStatus(t, a.do(http.MethodPatch, "/v1/keypairs/"+u.Keypair.AccessKey, a.token, map[string]any{"is_active": true}), 200)
	wantStatus(t, a.signed(http.MethodGet, "/v1/auth/whoami", u.Keypair, nil), 200)
}

func TestUserListTabsFiltersAndStablePages(t *testing.T) {
	t.Parallel()
	a := startAdmin(t)
	wantStatus(t, a.do(http.MethodPost, "/v1/domains/default/groups", a.token, map[string]any{"name": "ml"}), 201)
	for i, spec := range []struct{ email, name, status string }{
		{"Carol@Example.com", "CarolX", "active"}, {"dave@example.com", "dave", "inactive"},
		{"erin@example.org", "erin-x", "active"}, {"frank@example.com", "frank", "inactive"},
	} {
		body := map[string]any{"email": spec.email, "username": spec.name, "password": testPassword, "status": spec.status}
		if i%2 == 0 {
			body["groups"] = []string{"ml"}
		}
		wantStatus(t, a.do(http.MethodPost, "/v1/users", a.token, body), 201)
	}
	list := func(q string) []string {
		r := a.do(http.MethodGet, "/v1/users?"+q, a.token, nil)
		wantStatus(t, r, 200)
		var l api.List[api.User]
		r.JSON(t, &l)
		var out []string
		for _, u := range l.Items {
			out = append(out, u.Email)
		}
		return out
	}
	// Newest first: the users made last come first.
	cases := []struct {
		query string
		want  []string
	}{
		{"status=inactive", []string{"frank@example.com", "dave@example.com"}},
		{"status=active&email=EXAMPLE.COM", []string{"carol@example.com"}},
		{"status=active&email=berth", []string{testcluster.AdminEmail}},
		{"username=x", []string{"erin@example.org", "carol@example.com"}},
		{"group=ml", []string{"erin@example.org", "carol@example.com"}},
		{"email=example.org&username=ERIN", []string{"erin@example.org"}},
	}
	for _, c := range cases {
		if got := list(c.query); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("?%s = %v, want %v", c.query, got, c.want)
		}
	}

	// Pages of 2 while users are created between pages: every user that
	// existed before the first page appears exactly once.
	before := list("limit=1000")
	seen := map[string]int{}
	cursor := ""
	for page := 0; ; page++ {
		r := a.do(http.MethodGet, "/v1/users?limit=2&cursor="+url.QueryEscape(cursor), a.token, nil)
		wantStatus(t, r, 200)
		var l api.List[api.User]
		r.JSON(t, &l)
		for _, u := range l.Items {
			seen[u.Email]++
		}
		createUser(t, a.s, a.token, fmt.Sprintf("p%d@example.com", page), fmt.Sprintf("p%d", page), "user")
		if l.NextCursor == "" {
			break
		}
		cursor = l.NextCursor
	}
	for _, e := range before {
		if seen[e] != 1 {
			t.Errorf("%s seen %d times across pages", e, seen[e])
		}
	}
}

func TestKeypairAdministration(t *testing.T) {
	t.Parallel()
	a := startAdmin(t, func(cfg *server.Config) { cfg.KeypairTouchEvery = 50 * time.Millisecond })
	u := createUser(t, a.s, a.token, "kim@example.com", "kim", "user")
	other := createUser(t, a.s, a.token, "lee@example.com", "lee", "user")
	userToken := testcluster.Login(t, a.s, "kim@example.com", testPassword)

	t.Run("create validates and shows the secret once", func(t *testing.T) {
		p := wantProblem(t, a.do(http.MethodPost, "/v1/keypairs", a.token, map[string]any{"user": "kim@example.com", "is_admin": true, "rate_limit": -1}), 400, api.ProblemValidation)
		wantFields(t, p, map[string][]string{"rate_limit": {"rate_limit must be 0 (no limit) or a positive number of requests per 15 minutes"}})
		p = wantProblem(t, a.do(http.MethodPost, "/v1/keypairs", a.token, map[string]any{"user": "kim@example.com", "is_admin": true}), 400, api.ProblemValidation)
		wantFields(t, p, map[string][]string{"is_admin": {"is_admin needs a user with the admin or superadmin role; kim@example.com is user"}})
		p = wantProblem(t, a.do(http.MethodPost, "/v1/keypairs", a.token, map[string]any{"user": "kim@example.com", "resource_policy": "gold"}), 400, api.ProblemValidation)
		wantFields(t, p, map[string][]string{"resource_policy": {"resource policy gold does not exist"}})
		r := a.do(http.MethodPost, "/v1/keypairs", a.token, map[string]any{"user": "kim@example.com"})
		wantStatus(t, r, 201)
		var k api.Keypair
		r.JSON(t, &k)
		if len(k.SecretKey) != 40 || k.IsAdmin || !k.IsActive || k.ResourcePolicy != "default" {
			t.Fatalf("created %+v", k)
		}
		r = a.do(http.MethodGet, "/v1/keypairs/"+k.AccessKey, a.token, nil)
		wantStatus(t, r, 200)
		var again api.Keypair
		r.JSON(t, &again)
		if again.SecretKey != "" {
			t.Fatal("GET showed the secret key")
		}
	})

	t.Run("a user sees only their own keypairs", func(t *testing.T) {
		r := a.do(http.MethodGet, "/v1/keypairs", userToken, nil)
		wantStatus(t, r, 200)
		var l api.List[api.Keypair]
		r.JSON(t, &l)
		for _, k := range l.Items {
			if k.User != "kim@example.com" {
				t.Errorf("user sees %s's keypair", k.User)
			}
		}
		wantProblem(t, a.do(http.MethodGet, "/v1/keypairs?user=lee@example.com", userToken, nil), 403, api.ProblemForbidden)
		wantProblem(t, a.do(http.MethodGet, "/v1/keypairs/"+other.Keypair.AccessKey, userToken, nil), 404, api.ProblemNotFound)
		wantProblem(t, a.do(http.MethodPatch, "/v1/keypairs/"+u.Keypair.AccessKey, userToken, map[string]any{"rate_limit": 1}), 403, api.ProblemForbidden)
	})

	t.Run("rate limit per 15 minutes is enforced", func(t *testing.T) {
		wantStatus(t, a.do(http.MethodPatch, "/v1/keypairs/"+other.Keypair.AccessKey, a.token, map[string]any{"rate_limit": 2}), 200)
		wantStatus(t, a.signed(http.MethodGet, "/v1/auth/whoami", other.Keypair, nil), 200)
		wantStatus(t, a.signed(http.MethodGet, "/v1/auth/whoami", other.Keypair, nil), 200)
		r := a.signed(http.MethodGet, "/v1/auth/whoami", other.Keypair, nil)
		p := wantProblem(t, r, 429, api.ProblemRateLimited)
		wantDetail(t, p, "2 requests per 15 minutes")
		if r.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
	})

	t.Run("last_used is recorded", func(t *testing.T) {
		wantStatus(t, a.signed(http.MethodGet, "/v1/auth/whoami", u.Keypair, nil), 200)
		testcluster.Eventually(t, 10*time.Second, func() error {
			r := a.do(http.MethodGet, "/v1/keypairs/"+u.Keypair.AccessKey, a.token, nil)
			var k api.Keypair
			r.JSON(t, &k)
			if k.LastUsed == nil {
				return fmt.Errorf("last_used still empty")
			}
			return nil
		})
	})

	t.Run("policy change, then delete", func(t *testing.T) {
		r := a.do(http.MethodPatch, "/v1/keypairs/"+u.Keypair.AccessKey, a.token, map[string]any{"resource_policy": "missing"})
		wantProblem(t, r, 400, api.ProblemValidation)
		wantStatus(t, a.do(http.MethodDelete, "/v1/keypairs/"+u.Keypair.AccessKey, a.token, nil), 204)
		wantProblem(t, a.do(http.MethodGet, "/v1/keypairs/"+u.Keypair.AccessKey, a.token, nil), 404, api.ProblemNotFound)
		wantProblem(t, a.signed(http.MethodGet, "/v1/auth/whoami", u.Keypair, nil), 401, api.ProblemUnauthorized)
	})
}

func TestDomainsAndGroups(t *testing.T) {
	t.Parallel()
	a := startAdmin(t)
	createUser(t, a.s, a.token, "dadmin@example.com", "dadmin", "admin")
	adminToken := testcluster.Login(t, a.s, "dadmin@example.com", testPassword)

	wantStatus(t, a.do(http.MethodPost, "/v1/domains", a.token, map[string]any{"name": "research"}), 201)
	wantProblem(t, a.do(http.MethodPost, "/v1/domains", a.token, map[string]any{"name": "research"}), 409, api.ProblemConflict)
	p := wantProblem(t, a.do(http.MethodPost, "/v1/domains", a.token, map[string]any{"name": "bad/name"}), 400, api.ProblemValidation)
	wantFields(t, p, map[string][]string{"name": {"name must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"}})
	wantProblem(t, a.do(http.MethodPost, "/v1/domains", adminToken, map[string]any{"name": "x"}), 403, api.ProblemForbidden)
	r := a.do(http.MethodGet, "/v1/domains?limit=1", a.token, nil)
	var page api.List[api.Domain]
	r.JSON(t, &page)
	if len(page.Items) != 1 || page.Items[0].Name != "default" || page.NextCursor != "research" {
		t.Fatalf("first page of domains %+v", page)
	}
	r = a.do(http.MethodGet, "/v1/domains?limit=1&cursor=research", a.token, nil)
	r.JSON(t, &page)
	if len(page.Items) != 1 || page.Items[0].Name != "research" || page.NextCursor != "" {
		t.Fatalf("second page of domains %+v", page)
	}

	// An admin manages only their own domain.
	wantProblem(t, a.do(http.MethodGet, "/v1/domains/research/groups", adminToken, nil), 404, api.ProblemNotFound)
	wantProblem(t, a.do(http.MethodPost, "/v1/domains/research/groups", adminToken, map[string]any{"name": "g"}), 404, api.ProblemNotFound)
	wantStatus(t, a.do(http.MethodPost, "/v1/domains/default/groups", adminToken, map[string]any{"name": "vision", "description": "cv"}), 201)
	wantProblem(t, a.do(http.MethodPost, "/v1/domains/default/groups", adminToken, map[string]any{"name": "vision"}), 409, api.ProblemConflict)
	wantStatus(t, a.do(http.MethodPost, "/v1/domains/research/groups", a.token, map[string]any{"name": "physics"}), 201)

	// Users belong to groups of their own domain only.
	p = wantProblem(t, a.do(http.MethodPost, "/v1/users", a.token, map[string]any{
		"email": "gwen@example.com", "username": "gwen", "password": testPassword, "groups": []string{"physics"}}), 400, api.ProblemValidation)
	wantFields(t, p, map[string][]string{"groups": {"group physics does not exist in domain default"}})
	createUser(t, a.s, a.token, "gwen@example.com", "gwen", "user")
	wantStatus(t, a.do(http.MethodPost, "/v1/users", a.token, map[string]any{
		"email": "hal@example.com", "username": "hal", "password": testPassword, "domain": "research", "groups": []string{"physics"}}), 201)

	r = a.do(http.MethodPost, "/v1/domains/default/groups/vision/members", adminToken, map[string]any{"add": []string{"gwen@example.com", "DADMIN@example.com"}})
	wantStatus(t, r, 200)
	var g struct {
		api.Group
		Members []string `json:"members"`
	}
	r.JSON(t, &g)
	if fmt.Sprint(g.Members) != "[dadmin@example.com gwen@example.com]" {
		t.Fatalf("members %v", g.Members)
	}
	p = wantProblem(t, a.do(http.MethodPost, "/v1/domains/default/groups/vision/members", adminToken,
		map[string]any{"add": []string{"hal@example.com", "nobody@example.com"}}), 400, api.ProblemValidation)
	// To an admin, a user of another domain is as unknown as one that does not exist.
	wantFields(t, p, map[string][]string{"add": {"no user with email hal@example.com", "no user with email nobody@example.com"}})
	p = wantProblem(t, a.do(http.MethodPost, "/v1/domains/default/groups/vision/members", a.token,
		map[string]any{"add": []string{"hal@example.com", "nobody@example.com"}}), 400, api.ProblemValidation)
	wantFields(t, p, map[string][]string{"add": {"user hal@example.com belongs to domain research, not default", "no user with email nobody@example.com"}})
	wantStatus(t, a.do(http.MethodPost, "/v1/domains/default/groups/vision/members", adminToken, map[string]any{"remove": []string{"gwen@example.com"}}), 200)
	r = a.do(http.MethodGet, "/v1/users/gwen@example.com", adminToken, nil)
	var gwen api.User
	r.JSON(t, &gwen)
	if len(gwen.Groups) != 0 {
		t.Fatalf("gwen still in %v", gwen.Groups)
	}
	r = a.do(http.MethodPatch, "/v1/domains/default/groups/vision", adminToken, map[string]any{"description": "computer vision", "is_active": false})
	wantStatus(t, r, 200)
	var upd api.Group
	r.JSON(t, &upd)
	if upd.Description != "computer vision" || upd.IsActive {
		t.Fatalf("group after patch %+v", upd)
	}
	// An admin of default cannot see research's user.
	wantProblem(t, a.do(http.MethodGet, "/v1/users/hal@example.com", adminToken, nil), 404, api.ProblemNotFound)
}
