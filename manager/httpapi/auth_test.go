package httpapi_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/sign"
)

// TestLoginTokensAuthenticateUntilLogoutOrExpiry covers POST /v1/auth/login,
// GET /v1/auth/whoami and POST /v1/auth/logout with bearer tokens and the
// console's session cookie, on a manager whose clock moves only when told.
func TestLoginTokensAuthenticateUntilLogoutOrExpiry(t *testing.T) {
	t.Parallel()
	const ttl = 30 * time.Minute
	clock := newFakeClock()
	c := testcluster.StartFake(t, withClock(clock, ttl))
	s := c.Servers[0]
	base := testcluster.URL(s)
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	const email = "alice@example.com"
	createUser(t, s, admin, email, "alice", api.RoleUser)

	t.Run("wrong password and unknown email are 401 with one detail", func(t *testing.T) {
		cases := []struct{ name, email, password string }{
			{"wrong password", email, "Wrong-pass-1"},
			{"unknown email", "nobody@example.com", testPassword},
			{"unknown email, wrong password", "nobody@example.com", "Wrong-pass-1"},
			{"password of another user", testcluster.AdminEmail, testPassword},
		}
		details := map[string]bool{}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := loginAnswer(t, s, tc.email, tc.password)
				p := wantProblem(t, r, http.StatusUnauthorized, api.ProblemUnauthorized)
				if strings.Contains(p.Detail, tc.email) {
					t.Errorf("detail %q repeats the email", p.Detail)
				}
				if r.Header.Get("Set-Cookie") != "" {
					t.Errorf("a failed login set a cookie: %s", r.Header.Get("Set-Cookie"))
				}
				details[p.Detail] = true
			})
		}
		if len(details) != 1 {
			t.Errorf("failed logins answer different details, which tells whether an email exists: %v", details)
		}
	})

	t.Run("missing fields are 400 naming each", func(t *testing.T) {
		cases := []struct {
			name string
			body map[string]string
			want map[string][]string
		}{
			{"both missing", map[string]string{}, map[string][]string{
				"email": {"email is required"}, "password": {"password is required"}}},
			{"blank email", map[string]string{"email": "   ", "password": testPassword}, map[string][]string{
				"email": {"email is required"}}},
			{"empty password", map[string]string{"email": email, "password": ""}, map[string][]string{
				"password": {"password is required"}}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := testcluster.Do(t, http.MethodPost, base+"/v1/auth/login", "", tc.body)
				p := wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation)
				wantFields(t, p, tc.want)
			})
		}
	})

	t.Run("success returns a token expiring TokenTTL ahead and an HttpOnly session cookie", func(t *testing.T) {
		for _, login := range []string{email, "  Alice@Example.COM "} {
			r := loginAnswer(t, s, login, testPassword)
			wantStatus(t, r, http.StatusOK)
			var out api.LoginResponse
			r.JSON(t, &out)
			if out.Token == "" {
				t.Fatal("no token")
			}
			if want := clock.Now().Add(ttl); !out.ExpiresAt.Equal(want) {
				t.Errorf("expires_at %s, want %s (now + TokenTTL)", out.ExpiresAt, want)
			}
			var raw struct {
				ExpiresAt string `json:"expires_at"`
			}
			r.JSON(t, &raw)
			if _, err := time.Parse(time.RFC3339, raw.ExpiresAt); err != nil || !strings.HasSuffix(raw.ExpiresAt, "Z") {
				t.Errorf("expires_at %q is not an RFC 3339 UTC time", raw.ExpiresAt)
			}
			if out.User.Email != email || out.User.Role != api.RoleUser || out.User.Status != api.StatusActive {
				t.Errorf("user %+v, want %s, active, role user", out.User, email)
			}
			var cookie *http.Cookie
			for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
				if ck.Name == "berth_session" {
					cookie = ck
				}
			}
			if cookie == nil {
				t.Fatalf("no berth_session cookie in %q", r.Header.Values("Set-Cookie"))
			}
			if cookie.Value != out.Token || !cookie.HttpOnly || cookie.Path != "/" {
				t.Errorf("cookie %+v: want the token, HttpOnly, Path=/", cookie)
			}
			if cookie.SameSite != http.SameSiteStrictMode && cookie.SameSite != http.SameSiteLaxMode {
				t.Errorf("cookie SameSite %v, want Strict or Lax", cookie.SameSite)
			}
		}
	})

	t.Run("whoami names the caller by bearer token and by session cookie", func(t *testing.T) {
		token := testcluster.Login(t, s, email, testPassword)
		bearer := newRequest(t, http.MethodGet, base+"/v1/auth/whoami", nil)
		bearer.Header.Set("Authorization", "Bearer "+token)
		cookie := newRequest(t, http.MethodGet, base+"/v1/auth/whoami", nil)
		cookie.AddCookie(&http.Cookie{Name: "berth_session", Value: token})
		for name, req := range map[string]*http.Request{"bearer": bearer, "cookie": cookie} {
			t.Run(name, func(t *testing.T) {
				r := send(t, req)
				wantStatus(t, r, http.StatusOK)
				var me api.WhoAmI
				r.JSON(t, &me)
				if me.User.Email != email || me.AccessKey != "" {
					t.Errorf("whoami %+v, want %s without access_key", me, email)
				}
			})
		}
	})

	t.Run("requests without a valid credential are 401", func(t *testing.T) {
		cases := []struct{ name, header string }{
			{"none", ""},
			{"unknown bearer token", "Bearer not-a-token"},
			{"empty bearer token", "Bearer "},
			{"unsupported scheme", "Basic YWxpY2U6cHc="},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				req := newRequest(t, http.MethodGet, base+"/v1/auth/whoami", nil)
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				p := wantProblem(t, send(t, req), http.StatusUnauthorized, api.ProblemUnauthorized)
				if p.Detail == "" {
					t.Error("a 401 must say why")
				}
			})
		}
		t.Run("unknown session cookie", func(t *testing.T) {
			req := newRequest(t, http.MethodGet, base+"/v1/auth/whoami", nil)
			req.AddCookie(&http.Cookie{Name: "berth_session", Value: "not-a-token"})
			wantProblem(t, send(t, req), http.StatusUnauthorized, api.ProblemUnauthorized)
		})
	})

	t.Run("logout ends the token and clears the cookie", func(t *testing.T) {
		token := testcluster.Login(t, s, email, testPassword)
		other := testcluster.Login(t, s, email, testPassword)
		r := testcluster.Do(t, http.MethodPost, base+"/v1/auth/logout", token, nil)
		wantStatus(t, r, http.StatusNoContent)
		if len(r.Body) != 0 {
			t.Errorf("204 with a body: %s", r.Body)
		}
		cleared := false
		for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
			cleared = cleared || (ck.Name == "berth_session" && ck.Value == "" && ck.MaxAge < 0)
		}
		if !cleared {
			t.Errorf("logout did not clear berth_session: %q", r.Header.Values("Set-Cookie"))
		}
		wantProblem(t, whoami(t, s, token), http.StatusUnauthorized, api.ProblemUnauthorized)
		wantProblem(t, testcluster.Do(t, http.MethodPost, base+"/v1/auth/logout", token, nil), http.StatusUnauthorized, api.ProblemUnauthorized)
		// Only that token ended.
		wantStatus(t, whoami(t, s, other), http.StatusOK)
	})

	// Last: it moves the clock past every token issued so far.
	t.Run("a token expires TokenTTL after login", func(t *testing.T) {
		token := testcluster.Login(t, s, email, testPassword)
		clock.Advance(ttl - time.Second)
		wantStatus(t, whoami(t, s, token), http.StatusOK)
		clock.Advance(time.Second)
		p := wantProblem(t, whoami(t, s, token), http.StatusUnauthorized, api.ProblemUnauthorized)
		// The leader's sweep may already have removed it.
		if !strings.Contains(p.Detail, "expired") && !strings.Contains(p.Detail, "not valid") {
			t.Errorf("detail %q does not say the token expired", p.Detail)
		}
		wantStatus(t, whoami(t, s, testcluster.Login(t, s, email, testPassword)), http.StatusOK)
	})
}

// TestLoginRateLimitPerEmail proves that past the burst of attempts for one
// email every further attempt, even with the right password, is 429 with
// Retry-After until the bucket refills.
func TestLoginRateLimitPerEmail(t *testing.T) {
	t.Parallel()
	const burst = 10 // the manager's default LoginBurst
	clock := newFakeClock()
	c := testcluster.StartFake(t, withClock(clock, time.Hour))
	s := c.Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	const email = "limited@example.com"
	createUser(t, s, admin, email, "limited", api.RoleUser)

	for i := 1; i <= burst; i++ {
		r := loginAnswer(t, s, email, "Wrong-pass-1")
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("attempt %d of the burst: status %d, want 401; %s", i, r.Status, r.Body)
		}
	}
	var retry int
	for name, password := range map[string]string{"wrong password": "Wrong-pass-1", "right password": testPassword} {
		t.Run(name+" past the burst is 429", func(t *testing.T) {
			r := loginAnswer(t, s, email, password)
			p := wantProblem(t, r, http.StatusTooManyRequests, api.ProblemRateLimited)
			wantDetail(t, p, "too many login attempts")
			n, err := strconv.Atoi(r.Header.Get("Retry-After"))
			if err != nil || n < 1 {
				t.Fatalf("Retry-After %q, want a whole number of seconds ≥ 1", r.Header.Get("Retry-After"))
			}
			retry = n
		})
	}
	t.Run("the same email in another case is the same bucket", func(t *testing.T) {
		r := loginAnswer(t, s, " LIMITED@Example.com", testPassword)
		wantProblem(t, r, http.StatusTooManyRequests, api.ProblemRateLimited)
	})
	t.Run("another email is not limited", func(t *testing.T) {
		wantStatus(t, loginAnswer(t, s, testcluster.AdminEmail, testcluster.AdminPassword), http.StatusOK)
	})
	t.Run("after Retry-After the email may log in again", func(t *testing.T) {
		if retry == 0 {
			t.Fatal("no 429 answer carried Retry-After, so there is nothing to wait for")
		}
		clock.Advance(time.Duration(retry) * time.Second)
		wantStatus(t, loginAnswer(t, s, email, testPassword), http.StatusOK)
	})
}

// TestRoutesRefuseCallersWithoutTheRole proves role checks: authenticated
// but not allowed is 403 with a reason naming the role needed; monitor reads
// admin views but cannot write.
func TestRoutesRefuseCallersWithoutTheRole(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFake(t)
	s := c.Servers[0]
	base := testcluster.URL(s)
	super := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	createUser(t, s, super, "user@example.com", "plain", api.RoleUser)
	createUser(t, s, super, "monitor@example.com", "watcher", api.RoleMonitor)
	createUser(t, s, super, "admin@example.com", "boss", api.RoleAdmin)
	tokens := map[string]string{
		api.RoleSuperadmin: super,
		api.RoleUser:       testcluster.Login(t, s, "user@example.com", testPassword),
		api.RoleMonitor:    testcluster.Login(t, s, "monitor@example.com", testPassword),
		api.RoleAdmin:      testcluster.Login(t, s, "admin@example.com", testPassword),
	}
	newUser := func(email, name, role string) map[string]any {
		return map[string]any{"email": email, "username": name, "password": testPassword, "role": role}
	}
	cases := []struct {
		name   string
		role   string
		method string
		path   string
		body   any
		status int
		detail string // fragment of the 403's detail
		field  string // field a 403 names, if any
	}{
		{"user lists users", api.RoleUser, http.MethodGet, "/v1/users", nil, 403, "requires the admin role; you are user", ""},
		{"user reads a user", api.RoleUser, http.MethodGet, "/v1/users/admin@example.com", nil, 403, "admin role", ""},
		{"user creates a user", api.RoleUser, http.MethodPost, "/v1/users", newUser("u1@example.com", "u1", ""), 403, "admin role", ""},
		{"user reads the raft configuration", api.RoleUser, http.MethodGet, "/v1/operator/raft", nil, 403, "requires the superadmin role; you are user", ""},
		{"user asks whoami", api.RoleUser, http.MethodGet, "/v1/auth/whoami", nil, 200, "", ""},
		{"user reads info", api.RoleUser, http.MethodGet, "/v1/info", nil, 200, "", ""},
		{"monitor lists users", api.RoleMonitor, http.MethodGet, "/v1/users", nil, 200, "", ""},
		{"monitor reads a user", api.RoleMonitor, http.MethodGet, "/v1/users/user@example.com", nil, 200, "", ""},
		{"monitor creates a user", api.RoleMonitor, http.MethodPost, "/v1/users", newUser("m1@example.com", "m1", ""), 403, "requires the admin role; you are monitor", ""},
		{"monitor deletes a user", api.RoleMonitor, http.MethodDelete, "/v1/users/user@example.com", nil, 403, "admin role", ""},
		{"monitor reads the raft configuration", api.RoleMonitor, http.MethodGet, "/v1/operator/raft", nil, 403, "superadmin role", ""},
		{"admin lists users", api.RoleAdmin, http.MethodGet, "/v1/users", nil, 200, "", ""},
		{"admin creates a user", api.RoleAdmin, http.MethodPost, "/v1/users", newUser("a1@example.com", "a1", ""), 201, "", ""},
		{"admin creates a superadmin", api.RoleAdmin, http.MethodPost, "/v1/users", newUser("a2@example.com", "a2", api.RoleSuperadmin), 403, "only a superadmin may create a superadmin", "role"},
		{"admin reads the raft configuration", api.RoleAdmin, http.MethodGet, "/v1/operator/raft", nil, 403, "requires the superadmin role; you are admin", ""},
		{"superadmin reads the raft configuration", api.RoleSuperadmin, http.MethodGet, "/v1/operator/raft", nil, 200, "", ""},
		{"superadmin creates a superadmin", api.RoleSuperadmin, http.MethodPost, "/v1/users", newUser("s1@example.com", "s1", api.RoleSuperadmin), 201, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := testcluster.Do(t, tc.method, base+tc.path, tokens[tc.role], tc.body)
			if tc.status != http.StatusForbidden {
				wantStatus(t, r, tc.status)
				return
			}
			p := wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden)
			wantDetail(t, p, tc.detail)
			if tc.field != "" {
				wantFields(t, p, map[string][]string{tc.field: {tc.detail}})
			}
		})
	}
	t.Run("no credentials on an admin route is 401, not 403", func(t *testing.T) {
		wantProblem(t, testcluster.Do(t, http.MethodGet, base+"/v1/users", "", nil), http.StatusUnauthorized, api.ProblemUnauthorized)
	})
}

// TestInactiveUserCannotAuthenticate creates a user as inactive: logging in
// is 403 (the pair is right but the user may not) and its keypair does not
// authenticate.
func TestInactiveUserCannotAuthenticate(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFake(t)
	s := c.Servers[0]
	base := testcluster.URL(s)
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	r := testcluster.Do(t, http.MethodPost, base+"/v1/users", admin, map[string]any{
		"email": "sleepy@example.com", "username": "sleepy", "password": testPassword, "status": api.StatusInactive,
	})
	wantStatus(t, r, http.StatusCreated)
	var u createdUser
	r.JSON(t, &u)
	if u.User.Status != api.StatusInactive || u.Keypair.IsActive {
		t.Fatalf("created %+v with keypair active=%v; want inactive user and keypair", u.User, u.Keypair.IsActive)
	}
	t.Run("login is 403", func(t *testing.T) {
		wantProblem(t, loginAnswer(t, s, "sleepy@example.com", testPassword), http.StatusForbidden, api.ProblemForbidden)
	})
	t.Run("login with a wrong password is still 401", func(t *testing.T) {
		wantProblem(t, loginAnswer(t, s, "sleepy@example.com", "Wrong-pass-1"), http.StatusUnauthorized, api.ProblemUnauthorized)
	})
	t.Run("its keypair is 401", func(t *testing.T) {
		req := signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", u.Keypair, nil, time.Now())
		wantProblem(t, send(t, req), http.StatusUnauthorized, api.ProblemUnauthorized)
	})
}

var (
	accessKeyShape = regexp.MustCompile(`^AK[A-Z0-9]{18}$`)
	secretKeyShape = regexp.MustCompile(`^[A-Za-z0-9]{40}$`)
)

// flipHex changes one character of a lowercase hex string to another hex
// character, so the header stays well formed but the signature is wrong.
func flipHex(s string, i int) string {
	b := []byte(s)
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

// TestKeypairSignedRequests covers BERTH-HMAC-SHA256 signing: what a valid
// signature proves, every way a request can differ from what was signed, the
// ±15 minute date window, and the role a keypair acts with.
func TestKeypairSignedRequests(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFake(t)
	s := c.Servers[0]
	base := testcluster.URL(s)
	super := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	user := createUser(t, s, super, "kp-user@example.com", "kp-user", api.RoleUser)
	admin := createUser(t, s, super, "kp-admin@example.com", "kp-admin", api.RoleAdmin)
	monitor := createUser(t, s, super, "kp-monitor@example.com", "kp-monitor", api.RoleMonitor)

	t.Run("a new user's first keypair has the documented shape", func(t *testing.T) {
		for _, u := range []createdUser{user, admin, monitor} {
			kp := u.Keypair
			if !accessKeyShape.MatchString(kp.AccessKey) || !secretKeyShape.MatchString(kp.SecretKey) {
				t.Errorf("%s: access key %q / secret %q do not have the documented shape", u.User.Email, kp.AccessKey, kp.SecretKey)
			}
			if kp.User != u.User.Email || !kp.IsActive || kp.ResourcePolicy != "default" {
				t.Errorf("%s: keypair %+v, want active, on policy default, of the user", u.User.Email, kp)
			}
			if want := u.User.Role == api.RoleAdmin; kp.IsAdmin != want {
				t.Errorf("%s (role %s): keypair is_admin %v, want %v", u.User.Email, u.User.Role, kp.IsAdmin, want)
			}
			if len(u.User.Keypairs) != 1 || u.User.Keypairs[0] != kp.AccessKey {
				t.Errorf("%s: user lists keypairs %q, want [%s]", u.User.Email, u.User.Keypairs, kp.AccessKey)
			}
		}
	})

	t.Run("a valid signature authenticates as the keypair's user", func(t *testing.T) {
		r := send(t, signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", user.Keypair, nil, time.Now()))
		wantStatus(t, r, http.StatusOK)
		var me api.WhoAmI
		r.JSON(t, &me)
		if me.User.Email != user.User.Email || me.AccessKey != user.Keypair.AccessKey {
			t.Errorf("whoami %s / %q, want %s / %s", me.User.Email, me.AccessKey, user.User.Email, user.Keypair.AccessKey)
		}
	})

	newUserBody := func(email, name string) []byte {
		return mustJSON(t, map[string]string{"email": email, "username": name, "password": testPassword})
	}
	type request func(t *testing.T) *http.Request
	cases := []struct {
		name   string
		build  request
		status int
	}{
		{"query in another order than signed", func(t *testing.T) *http.Request {
			req := signedRequest(t, http.MethodGet, base+"/v1/auth/whoami?a=1&b=2", user.Keypair, nil, time.Now())
			req.URL.RawQuery = "b=2&a=1"
			return req
		}, http.StatusOK},
		{"date 4 minutes in the past", func(t *testing.T) *http.Request {
			return signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", user.Keypair, nil, time.Now().Add(-4*time.Minute))
		}, http.StatusOK},
		{"date 4 minutes in the future", func(t *testing.T) *http.Request {
			return signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", user.Keypair, nil, time.Now().Add(4*time.Minute))
		}, http.StatusOK},
		{"date 6 minutes in the past", func(t *testing.T) *http.Request {
			return signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", user.Keypair, nil, time.Now().Add(-6*time.Minute))
		}, http.StatusUnauthorized},
		{"date 6 minutes in the future", func(t *testing.T) *http.Request {
			return signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", user.Keypair, nil, time.Now().Add(6*time.Minute))
		}, http.StatusUnauthorized},
		{"date header missing", func(t *testing.T) *http.Request {
			req := signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", user.Keypair, nil, time.Now())
			req.Header.Del(sign.DateHeader)
			return req
		}, http.StatusUnauthorized},
		{"date not RFC 3339", func(t *testing.T) *http.Request {
			req := signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", user.Keypair, nil, time.Now())
			req.Header.Set(sign.DateHeader, time.Now().UTC().Format(http.TimeFormat))
			return req
		}, http.StatusUnauthorized},
		{"date changed after signing", func(t *testing.T) *http.Request {
			now := time.Now()
			req := signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", user.Keypair, nil, now)
			req.Header.Set(sign.DateHeader, now.Add(time.Minute).UTC().Format(time.RFC3339))
			return req
		}, http.StatusUnauthorized},
		{"signature with one hex character flipped", func(t *testing.T) *http.Request {
			req := signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", user.Keypair, nil, time.Now())
			ak, sig, err := sign.ParseHeader(req.Header.Get("Authorization"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", sign.FormatHeader(ak, flipHex(sig, 17)))
			return req
		}, http.StatusUnauthorized},
		{"signed with another keypair's secret", func(t *testing.T) *http.Request {
			forged := user.Keypair
			forged.SecretKey = admin.Keypair.SecretKey
			return signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", forged, nil, time.Now())
		}, http.StatusUnauthorized},
		{"path changed after signing", func(t *testing.T) *http.Request {
			// Admin's keypair may list users: only the signature can refuse it.
			req := signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", admin.Keypair, nil, time.Now())
			req.URL.Path = "/v1/users"
			return req
		}, http.StatusUnauthorized},
		{"query value changed after signing", func(t *testing.T) *http.Request {
			req := signedRequest(t, http.MethodGet, base+"/v1/users?limit=5", admin.Keypair, nil, time.Now())
			req.URL.RawQuery = "limit=6"
			return req
		}, http.StatusUnauthorized},
		{"query added after signing", func(t *testing.T) *http.Request {
			req := signedRequest(t, http.MethodGet, base+"/v1/users", admin.Keypair, nil, time.Now())
			req.URL.RawQuery = "email=kp"
			return req
		}, http.StatusUnauthorized},
		{"body changed after signing", func(t *testing.T) *http.Request {
			signedBody := newUserBody("signed@example.com", "signed")
			sent := newUserBody("forged@example.com", "forged")
			req := newRequest(t, http.MethodPost, base+"/v1/users", sent)
			if err := sign.SignRequest(req, admin.Keypair.AccessKey, admin.Keypair.SecretKey, signedBody, time.Now()); err != nil {
				t.Fatal(err)
			}
			return req
		}, http.StatusUnauthorized},
		{"body signed as empty but sent", func(t *testing.T) *http.Request {
			req := newRequest(t, http.MethodPost, base+"/v1/users", newUserBody("forged2@example.com", "forged2"))
			if err := sign.SignRequest(req, admin.Keypair.AccessKey, admin.Keypair.SecretKey, nil, time.Now()); err != nil {
				t.Fatal(err)
			}
			return req
		}, http.StatusUnauthorized},
		{"signed body sent unchanged", func(t *testing.T) *http.Request {
			return signedRequest(t, http.MethodPost, base+"/v1/users", admin.Keypair, newUserBody("signed@example.com", "signed"), time.Now())
		}, http.StatusCreated},
		{"unknown access key", func(t *testing.T) *http.Request {
			unknown := user.Keypair
			unknown.AccessKey = "AK" + strings.Repeat("Z", 18)
			return signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", unknown, nil, time.Now())
		}, http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := send(t, tc.build(t))
			if tc.status != http.StatusUnauthorized {
				wantStatus(t, r, tc.status)
				return
			}
			p := wantProblem(t, r, http.StatusUnauthorized, api.ProblemUnauthorized)
			if p.Detail == "" {
				t.Error("a 401 must say why")
			}
		})
	}
	t.Run("a request refused for its signature changed nothing", func(t *testing.T) {
		for _, email := range []string{"forged@example.com", "forged2@example.com"} {
			wantProblem(t, testcluster.Do(t, http.MethodGet, base+"/v1/users/"+email, super, nil), http.StatusNotFound, api.ProblemNotFound)
		}
	})

	t.Run("malformed Authorization headers are 401", func(t *testing.T) {
		ak := user.Keypair.AccessKey
		sig := strings.Repeat("a", 64)
		headers := map[string]string{
			"no parameters":          sign.Scheme + " ",
			"no signature":           sign.Scheme + " Credential=" + ak,
			"parameters swapped":     sign.Scheme + " Signature=" + sig + ", Credential=" + ak,
			"extra parameter":        sign.Scheme + " Credential=" + ak + ", Signature=" + sig + ", Nonce=1",
			"short access key":       sign.Scheme + " Credential=AK123, Signature=" + sig,
			"lowercase access key":   sign.Scheme + " Credential=" + strings.ToLower(ak) + ", Signature=" + sig,
			"signature not hex":      sign.Scheme + " Credential=" + ak + ", Signature=" + strings.Repeat("z", 64),
			"signature too short":    sign.Scheme + " Credential=" + ak + ", Signature=" + sig[:63],
			"uppercase hex":          sign.Scheme + " Credential=" + ak + ", Signature=" + strings.Repeat("A", 64),
			"empty signature":        sign.Scheme + " Credential=" + ak + ", Signature=",
			"scheme in another case": strings.ToLower(sign.Scheme) + " Credential=" + ak + ", Signature=" + sig,
		}
		for name, h := range headers {
			t.Run(name, func(t *testing.T) {
				req := newRequest(t, http.MethodGet, base+"/v1/auth/whoami", nil)
				req.Header.Set(sign.DateHeader, time.Now().UTC().Format(time.RFC3339))
				req.Header.Set("Authorization", h)
				wantProblem(t, send(t, req), http.StatusUnauthorized, api.ProblemUnauthorized)
			})
		}
	})

	t.Run("a keypair acts with its user's role", func(t *testing.T) {
		cases := []struct {
			name   string
			kp     api.Keypair
			method string
			path   string
			body   []byte
			status int
		}{
			{"admin keypair (is_admin) lists users", admin.Keypair, http.MethodGet, "/v1/users", nil, http.StatusOK},
			{"admin keypair asks whoami", admin.Keypair, http.MethodGet, "/v1/auth/whoami", nil, http.StatusOK},
			{"admin keypair creates a user", admin.Keypair, http.MethodPost, "/v1/users", newUserBody("by-key@example.com", "by-key"), http.StatusCreated},
			{"user keypair lists users", user.Keypair, http.MethodGet, "/v1/users", nil, http.StatusForbidden},
			{"monitor keypair lists users", monitor.Keypair, http.MethodGet, "/v1/users", nil, http.StatusOK},
			{"monitor keypair creates a user", monitor.Keypair, http.MethodPost, "/v1/users", newUserBody("by-mon@example.com", "by-mon"), http.StatusForbidden},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := send(t, signedRequest(t, tc.method, base+tc.path, tc.kp, tc.body, time.Now()))
				if tc.status == http.StatusForbidden {
					p := wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden)
					wantDetail(t, p, "admin role")
					return
				}
				wantStatus(t, r, tc.status)
			})
		}
	})

	t.Run("logout with a keypair is 400: there is no token to end", func(t *testing.T) {
		r := send(t, signedRequest(t, http.MethodPost, base+"/v1/auth/logout", user.Keypair, nil, time.Now()))
		wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation)
	})
}

// TestUnknownAccessKeyIsIndistinguishableFromWrongSignature: like a login
// for an unknown email, a request under an access key that does not exist
// must not be told apart from one under an existing key with a wrong
// signature, or anyone can probe which access keys exist (authn.go promises
// "a reason never says whether an unknown credential exists").
func TestUnknownAccessKeyIsIndistinguishableFromWrongSignature(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFake(t)
	s := c.Servers[0]
	base := testcluster.URL(s)
	super := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	known := createUser(t, s, super, "probe@example.com", "probe", api.RoleUser).Keypair
	wrongSecret := known
	wrongSecret.SecretKey = strings.Repeat("x", 40)
	unknown := wrongSecret
	unknown.AccessKey = "AK" + strings.Repeat("Q", 18)

	detail := map[string]string{}
	for name, kp := range map[string]api.Keypair{"existing key, wrong secret": wrongSecret, "unknown key": unknown} {
		r := send(t, signedRequest(t, http.MethodGet, base+"/v1/auth/whoami", kp, nil, time.Now()))
		detail[name] = wantProblem(t, r, http.StatusUnauthorized, api.ProblemUnauthorized).Detail
	}
	if detail["unknown key"] != detail["existing key, wrong secret"] {
		t.Errorf("an unknown access key answers %q but an existing one with a wrong signature %q: the difference tells which access keys exist",
			detail["unknown key"], detail["existing key, wrong secret"])
	}
}

// TestPasswordChange covers POST /v1/auth/password: every rule reported at
// once, the old password checked, and on success every other login token of
// the user revoked while the caller's keeps working.
func TestPasswordChange(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFake(t)
	s := c.Servers[0]
	base := testcluster.URL(s)
	super := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	const email = "changer@example.com"
	createUser(t, s, super, email, "changer", api.RoleUser)
	caller := testcluster.Login(t, s, email, testPassword)
	elsewhere := testcluster.Login(t, s, email, testPassword)
	const newPassword = "N3w-password"

	cases := []struct {
		name string
		body any
		want map[string][]string
	}{
		{"wrong old password", map[string]string{"old_password": "Wrong-pass-1", "new_password": newPassword},
			map[string][]string{"old_password": {"old_password is not the current password"}}},
		{"weak new password and no old password", map[string]string{"new_password": "short"},
			map[string][]string{
				"old_password": {"old_password is required"},
				"new_password": {
					"new_password must be at least 8 characters long",
					"new_password must contain at least one digit",
					"new_password must contain at least one special character (such as ! @ # $ %)",
				}}},
		{"empty new password", map[string]string{"old_password": testPassword},
			map[string][]string{"new_password": {
				"new_password must be at least 8 characters long",
				"new_password must contain at least one letter",
				"new_password must contain at least one digit",
				"new_password must contain at least one special character (such as ! @ # $ %)",
			}}},
		{"new password same as old", map[string]string{"old_password": testPassword, "new_password": testPassword},
			map[string][]string{"new_password": {"new_password must differ from the current password"}}},
		{"unknown field", map[string]string{"old_password": testPassword, "new_password": newPassword, "password": "x"},
			map[string][]string{"password": {`unknown field "password"`}}},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is 400", func(t *testing.T) {
			r := testcluster.Do(t, http.MethodPost, base+"/v1/auth/password", caller, tc.body)
			p := wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation)
			wantFields(t, p, tc.want)
		})
	}
	t.Run("without credentials is 401", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodPost, base+"/v1/auth/password", "", map[string]string{"old_password": testPassword, "new_password": newPassword})
		wantProblem(t, r, http.StatusUnauthorized, api.ProblemUnauthorized)
	})
	t.Run("refused changes revoke nothing", func(t *testing.T) {
		wantStatus(t, whoami(t, s, elsewhere), http.StatusOK)
	})

	t.Run("success is 204 and swaps the password", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodPost, base+"/v1/auth/password", caller, map[string]string{"old_password": testPassword, "new_password": newPassword})
		wantStatus(t, r, http.StatusNoContent)
		wantProblem(t, loginAnswer(t, s, email, testPassword), http.StatusUnauthorized, api.ProblemUnauthorized)
		wantStatus(t, loginAnswer(t, s, email, newPassword), http.StatusOK)
	})
	t.Run("the caller's token still works", func(t *testing.T) {
		wantStatus(t, whoami(t, s, caller), http.StatusOK)
	})
	t.Run("the user's other tokens are revoked", func(t *testing.T) {
		wantProblem(t, whoami(t, s, elsewhere), http.StatusUnauthorized, api.ProblemUnauthorized)
	})
	t.Run("other users' tokens are untouched", func(t *testing.T) {
		wantStatus(t, whoami(t, s, super), http.StatusOK)
	})
}
