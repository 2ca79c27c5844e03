package httpapi

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/auth"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/sign"
)

// Identity is the authenticated caller.
type Identity struct {
	User *state.User
	// Keypair is set when the request was signed with a keypair.
	Keypair *state.Keypair
	// TokenHash is set when the request carried a login token.
	TokenHash string
}

// Role is the role the caller acts with. A keypair without is_admin acts as
// a plain user even for an admin, so scripts can hold least privilege.
func (i *Identity) Role() string {
	if i.Keypair != nil && !i.Keypair.IsAdmin && i.User.Role != api.RoleMonitor {
		return api.RoleUser
	}
	return i.User.Role
}

// IsAdmin reports whether the caller acts as admin or superadmin.
func (i *Identity) IsAdmin() bool {
	r := i.Role()
	return r == api.RoleAdmin || r == api.RoleSuperadmin
}

func unauthorized(format string, args ...any) error {
	return apierr.New(apierr.Unauthorized, format, args...)
}

// authenticate resolves the caller from a bearer token, the console's
// cookie or a keypair signature, from the request's headers. Every failure
// is 401 with the reason, except that a reason never says whether an
// unknown credential exists.
func (a *API) authenticate(r *http.Request, rt *Route) (*Identity, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if len(r.CookiesNamed(sessionCookie)) > 1 {
			// The console sets one, for the path /. Another one came from
			// a page on the same host name (an app on the apps origin at
			// another port, say) to make this browser act as someone else.
			return nil, unauthorized("the request carries more than one %s cookie; a page other than the console set one: remove this site's cookies in the browser and log in again", sessionCookie)
		}
		if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
			who, err := a.tokenIdentity(c.Value)
			if err != nil {
				return nil, err
			}
			if err := a.checkCSRF(r, who.TokenHash); err != nil {
				return nil, err
			}
			return who, nil
		}
		return nil, unauthorized("this request needs credentials: log in (POST /v1/auth/login) and send Authorization: Bearer TOKEN, or sign it with a keypair")
	}
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		return a.tokenIdentity(strings.TrimSpace(tok))
	}
	if strings.HasPrefix(h, sign.Scheme+" ") {
		return a.keypairIdentity(r, h, rt)
	}
	return nil, unauthorized("unsupported Authorization scheme; use Bearer or %s", sign.Scheme)
}

// unknownKeySecret stands in for the secret of an access key that does not
// exist, so the failure costs the same HMAC as a wrong signature.
const unknownKeySecret = "berth-unknown-access-key"

// sessionCookie carries the console's login token (HttpOnly).
const sessionCookie = "berth_session"

// CSRFHeader must accompany every state-changing request authenticated by
// the session cookie; its value is the login response's csrf_token. A page
// of another origin can make the browser send the cookie but can neither
// read the token nor set a custom header without CORS, which Berth never
// grants.
const CSRFHeader = "X-Berth-CSRF"

// csrfToken is derived from the login token, so it needs no storage and dies
// with the login.
func (a *API) csrfToken(tokenHash string) string {
	return signClient(a.clusterSecret(), "csrf:"+tokenHash)[:32]
}

func (a *API) checkCSRF(r *http.Request, tokenHash string) error {
	if isWebSocket(r) {
		return checkSameOrigin(r)
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	got := r.Header.Get(CSRFHeader)
	if subtle.ConstantTimeCompare([]byte(got), []byte(a.csrfToken(tokenHash))) != 1 {
		return apierr.New(apierr.Forbidden, "a request authenticated by the session cookie must carry the %s header with the csrf_token from login", CSRFHeader)
	}
	return nil
}

// checkSameOrigin admits a WebSocket that the console cookie
// authenticates only from the console's own origin. A browser sends the
// cookie with a WebSocket opened by any page (a WebSocket is not bound by
// CORS, and cannot carry the CSRF header), but it always sends the page's
// Origin, which no page can forge: a terminal opened by a session's app on
// the apps origin, or by any other site, is refused.
func checkSameOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return apierr.New(apierr.Forbidden, "a WebSocket authenticated by the session cookie must come from the console's page (it has no Origin header); other clients send Authorization instead")
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
		return apierr.New(apierr.Forbidden, "a WebSocket from the page of %s may not use this console's session cookie; open it from the console at %s", origin, r.Host)
	}
	return nil
}

func (a *API) tokenIdentity(token string) (*Identity, error) {
	tx := a.cluster.Read()
	hash := auth.HashToken(token)
	t, err := tx.Token(hash)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, unauthorized("the token is not valid (unknown, logged out, or revoked); log in again")
	}
	if !a.now().Before(t.ExpiresAt) {
		return nil, unauthorized("the token expired at %s; log in again", t.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"))
	}
	u, err := activeUser(tx, t.User)
	if err != nil {
		return nil, err
	}
	return &Identity{User: u, TokenHash: hash}, nil
}

// badSignature is the one answer for an unknown access key and a wrong
// signature.
func badSignature() error {
	return unauthorized("unknown access key or wrong signature; sign METHOD, PATH, sorted query, %s and %s (the body's SHA-256) with the secret key", sign.DateHeader, sign.ContentHeader)
}

// keypairIdentity checks a keypair signature from the headers: the
// signature covers X-Berth-Content-SHA256, and the body is checked against
// that as it is read (checkContent), after the caller is known. A request
// without the header is signed over the body itself (clients older than the
// header): a bodyless one over the empty body's hash; a body of a small JSON
// route is read (at most MaxBody, within the body deadline) once the
// signature's form, date and access key hold, and hashed; a stream's body is
// never read for an unverified caller, so a stream requires the header.
func (a *API) keypairIdentity(r *http.Request, header string, rt *Route) (*Identity, error) {
	ak, sig, err := sign.ParseHeader(header)
	if err != nil {
		return nil, unauthorized("malformed %s header: %v", sign.Scheme, err)
	}
	date := r.Header.Get(sign.DateHeader)
	at, err := sign.CheckDate(date, a.now())
	if err != nil {
		return nil, unauthorized("%s: %v", sign.DateHeader, err)
	}
	tx := a.cluster.Read()
	kp, err := tx.Keypair(ak)
	if err != nil {
		return nil, err
	}
	content := r.Header.Get(sign.ContentHeader)
	if content == "" {
		switch {
		case r.ContentLength == 0:
			content = sign.EmptyContentHash
		case rt.Stream:
			return nil, unauthorized("a signed upload must carry %s, the lowercase hex SHA-256 of the body, and sign it in its place: the body is checked against it as it streams in (berth and the Go client send it)", sign.ContentHeader)
		case kp == nil || !kp.IsActive:
			return nil, badSignature()
		default:
			body, err := readBody(r)
			if err != nil {
				return nil, err
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			content = sign.ContentHash(body)
		}
	}
	canon, err := sign.CanonicalString(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, date, content)
	if err != nil {
		return nil, unauthorized("cannot build the string to sign: %v", err)
	}
	// One answer for an unknown key and a wrong signature, and a signature
	// computed either way, so neither the text nor the time tells which
	// access keys exist.
	secret := unknownKeySecret
	if kp != nil {
		secret = kp.SecretKey
	}
	if !sign.Verify(secret, canon, sig) || kp == nil {
		return nil, badSignature()
	}
	if !a.replays.firstUse(sig, at, a.now()) {
		return nil, unauthorized("this signed request was already received (a replay): a signature is accepted once; sign every request anew, dated to the nanosecond (berth and the Go client do)")
	}
	// Checked after the signature so the answer reveals nothing to someone
	// who does not hold the secret.
	if !kp.IsActive {
		return nil, unauthorized("access key %s is inactive", ak)
	}
	u, err := activeUser(tx, kp.User)
	if err != nil {
		return nil, err
	}
	if kp.RateLimit > 0 {
		if ok, wait := a.keypairRate.AllowWith(ak, kp.RateLimit, rateWindow/time.Duration(kp.RateLimit)); !ok {
			return nil, &apierr.Error{Kind: apierr.RateLimited, RetryAfter: wait,
				Detail: fmt.Sprintf("access key %s may make %d requests per 15 minutes; wait %s", ak, kp.RateLimit, wait.Round(time.Second))}
		}
	}
	a.leader.KeypairUsed(ak)
	return &Identity{User: u, Keypair: kp}, nil
}

// rateWindow is the period a keypair's rate_limit counts requests over.
const rateWindow = 15 * time.Minute

func activeUser(tx *state.Txn, email string) (*state.User, error) {
	u, err := tx.User(email)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, unauthorized("the credential's user no longer exists")
	}
	if u.Status != api.StatusActive {
		return nil, unauthorized("user %s is inactive; none of its credentials authenticates", u.Email)
	}
	return u, nil
}
