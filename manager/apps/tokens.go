package apps

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"
)

// Tokens and cookies are signed, not stored: any manager can check one
// (the key derives from the cluster secret, which every manager holds),
// and nothing is written to the log to open an app.
//
//   - A token is what POST /v1/sessions/{id}/apps/{name}/token gives the
//     session's owner, inside a URL on the apps origin: it names the
//     session, the app, the user, a nonce and an expiry a minute away, and
//     is taken once by a manager (used remembers its nonce until it
//     expires).
//   - A cookie is what opening that URL sets: the same names, no nonce, an
//     expiry of CookieTTL; HttpOnly, for the app's path alone.
//
// Each grants one app of one session to one user; whether that user may
// still use it (active, still the owner, the session still running) is
// decided again on every request.

// grant is the signed content of a token or a cookie.
type grant struct {
	Kind    string `json:"k"` // kindToken or kindCookie: one is never the other
	Session string `json:"s"`
	App     string `json:"a"`
	User    string `json:"u"`
	Expires int64  `json:"e"` // Unix seconds
	Nonce   string `json:"n,omitempty"`
}

const (
	kindToken  = "token"
	kindCookie = "cookie"
)

var errBadGrant = errors.New("not a valid signature")

// key is the signing key of the apps origin, derived from the cluster
// secret for this use alone.
func key(clusterSecret string) []byte {
	m := hmac.New(sha256.New, []byte(clusterSecret))
	m.Write([]byte("berth apps origin v1"))
	return m.Sum(nil)
}

func sign(k []byte, g grant) string {
	body, _ := json.Marshal(g)
	m := hmac.New(sha256.New, k)
	m.Write(body)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(body) + "." + enc.EncodeToString(m.Sum(nil))
}

// verify checks s's signature and kind and returns what it grants; expiry
// is the caller's to judge.
func verify(k []byte, s, kind string) (grant, error) {
	body64, sig64, ok := strings.Cut(s, ".")
	if !ok {
		return grant{}, errBadGrant
	}
	enc := base64.RawURLEncoding
	body, err1 := enc.DecodeString(body64)
	sig, err2 := enc.DecodeString(sig64)
	if err1 != nil || err2 != nil {
		return grant{}, errBadGrant
	}
	m := hmac.New(sha256.New, k)
	m.Write(body)
	if !hmac.Equal(sig, m.Sum(nil)) {
		return grant{}, errBadGrant
	}
	var g grant
	if err := json.Unmarshal(body, &g); err != nil || g.Kind != kind {
		return grant{}, errBadGrant
	}
	return g, nil
}

// usedTokens remembers the nonces of tokens this manager took, until they
// expire, so that each is taken once here. (Another manager of the cluster
// would take it once too, within the same minute: tokens are not written
// to the replicated log, see DESIGN.md.)
type usedTokens struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// maxUsedTokens bounds the memory: more tokens taken within one token
// lifetime than this are refused until older ones expire.
const maxUsedTokens = 100_000

// take records nonce, valid until expires; false if it was taken already
// (or too many are remembered).
func (u *usedTokens) take(nonce string, expires, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seen == nil {
		u.seen = map[string]time.Time{}
	}
	for n, exp := range u.seen {
		if !now.Before(exp) {
			delete(u.seen, n)
		}
	}
	if _, ok := u.seen[nonce]; ok || len(u.seen) >= maxUsedTokens {
		return false
	}
	u.seen[nonce] = expires
	return true
}
