// Package sign implements Berth's keypair request signing (docs/API.md,
// "Auth"): the client signs a canonical form of each request with the
// keypair's secret, and the manager recomputes and compares it.
//
//	Authorization: BERTH-HMAC-SHA256 Credential=ACCESS_KEY, Signature=HEX
//	X-Berth-Date: RFC 3339 time, fractional seconds allowed
//	X-Berth-Content-SHA256: lowercase hex SHA-256 of the body
//
// The signature is the lowercase hex HMAC-SHA256, keyed with the secret, of
//
//	METHOD \n ESCAPED_PATH \n SORTED_QUERY \n DATE \n CONTENT_SHA256
//
// CONTENT_SHA256 is the X-Berth-Content-SHA256 header, which is the same
// text SHA256_HEX(BODY) has always been: the header lets the verifier check
// the signature from the headers alone, before it reads a byte of the body,
// and then check the body against the signed hash as it streams in.
package sign

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	// Scheme is the Authorization scheme of a signed request.
	Scheme = "BERTH-HMAC-SHA256"
	// DateHeader carries the signing time, RFC 3339. Clients write
	// nanoseconds, so two identical requests signed in the same second
	// still differ: a signature is accepted only once.
	DateHeader = "X-Berth-Date"
	// ContentHeader carries the lowercase hex SHA-256 of the body; the
	// signature covers it.
	ContentHeader = "X-Berth-Content-SHA256"
	// MaxSkew is how far the signing time may be from the verifier's clock;
	// a verifier remembers the signatures it accepted for this long.
	MaxSkew = 5 * time.Minute
)

// EmptyContentHash is the content hash of a request without a body.
var EmptyContentHash = ContentHash(nil)

// Access key shape: "AK" then accessKeyTail characters of [A-Z0-9].
const (
	accessKeyPrefix = "AK"
	accessKeyTail   = 18
	signatureLen    = sha256.Size * 2
)

// ContentHash is the X-Berth-Content-SHA256 value of body.
func ContentHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// CheckContentHash reports whether h is a well-formed content hash: 64
// lowercase hex characters.
func CheckContentHash(h string) error {
	if !isLowerHex(h, signatureLen) {
		return fmt.Errorf("%s must be the %d lowercase hex characters of the body's SHA-256 (%s for no body)", ContentHeader, signatureLen, EmptyContentHash)
	}
	return nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// CanonicalString builds the text that is signed. method is upper-cased;
// escapedPath is url.URL.EscapedPath(); rawQuery is url.URL.RawQuery and is
// re-encoded with its keys sorted, so parameter order does not matter; date is
// the exact X-Berth-Date header text; contentHash is the exact
// X-Berth-Content-SHA256 header text (ContentHash of the body), which must be
// well-formed.
func CanonicalString(method, escapedPath, rawQuery, date, contentHash string) (string, error) {
	if err := CheckContentHash(contentHash); err != nil {
		return "", err
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("canonicalising query %q: %w", rawQuery, err)
	}
	var b strings.Builder
	b.WriteString(strings.ToUpper(method))
	b.WriteByte('\n')
	b.WriteString(escapedPath)
	b.WriteByte('\n')
	b.WriteString(q.Encode())
	b.WriteByte('\n')
	b.WriteString(date)
	b.WriteByte('\n')
	b.WriteString(contentHash)
	return b.String(), nil
}

// Sign returns the lowercase hex HMAC-SHA256 of canonical keyed with secret.
func Sign(secret, canonical string) string {
	return hex.EncodeToString(mac(secret, canonical))
}

// Verify reports whether signatureHex is the signature of canonical under
// secret. The comparison is constant-time; a signature that is not valid hex
// never verifies.
func Verify(secret, canonical, signatureHex string) bool {
	got, err := hex.DecodeString(signatureHex)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(secret, canonical))
}

func mac(secret, canonical string) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(canonical))
	return h.Sum(nil)
}

// FormatHeader renders the Authorization header value.
func FormatHeader(accessKey, signature string) string {
	return Scheme + " Credential=" + accessKey + ", Signature=" + signature
}

// ParseHeader parses an Authorization header value written by FormatHeader.
// It is strict: the scheme, the two parameters in order, a well-formed access
// key and a 64-character lowercase hex signature are all required.
func ParseHeader(h string) (accessKey, signature string, err error) {
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || scheme != Scheme {
		return "", "", fmt.Errorf("authorization scheme must be %q followed by a space", Scheme)
	}
	parts := strings.Split(rest, ",")
	if len(parts) != 2 {
		return "", "", fmt.Errorf("authorization must have exactly two parameters, Credential=ACCESS_KEY, Signature=HEX; found %d", len(parts))
	}
	cred, err := param(parts[0], "Credential")
	if err != nil {
		return "", "", err
	}
	sig, err := param(strings.TrimLeft(parts[1], " "), "Signature")
	if err != nil {
		return "", "", err
	}
	if err := checkAccessKey(cred); err != nil {
		return "", "", err
	}
	if err := checkSignature(sig); err != nil {
		return "", "", err
	}
	return cred, sig, nil
}

// param returns the value of "name=value" in s.
func param(s, name string) (string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k != name {
		return "", fmt.Errorf("authorization parameter %q must be %s=VALUE", s, name)
	}
	if v == "" {
		return "", fmt.Errorf("authorization parameter %s is empty", name)
	}
	return v, nil
}

func checkAccessKey(k string) error {
	if len(k) != len(accessKeyPrefix)+accessKeyTail || !strings.HasPrefix(k, accessKeyPrefix) {
		return fmt.Errorf("access key %q must be %q followed by %d characters A-Z or 0-9", k, accessKeyPrefix, accessKeyTail)
	}
	for i := len(accessKeyPrefix); i < len(k); i++ {
		c := k[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return fmt.Errorf("access key %q must be %q followed by %d characters A-Z or 0-9", k, accessKeyPrefix, accessKeyTail)
		}
	}
	return nil
}

func checkSignature(s string) error {
	if len(s) != signatureLen {
		return fmt.Errorf("signature must be %d lowercase hex characters, got %d characters", signatureLen, len(s))
	}
	if !isLowerHex(s, signatureLen) {
		return fmt.Errorf("signature must be %d lowercase hex characters (0-9, a-f)", signatureLen)
	}
	return nil
}

// CheckDate parses date (RFC 3339, fractional seconds allowed) and checks it
// is within MaxSkew of now, in either direction.
func CheckDate(date string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, date)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time such as 2006-01-02T15:04:05.999999999Z", DateHeader, date)
	}
	d := t.Sub(now)
	switch {
	case d > MaxSkew:
		return time.Time{}, fmt.Errorf("%s is %s ahead of the server clock; at most %s is allowed (check the client's clock)", DateHeader, d.Round(time.Second), MaxSkew)
	case d < -MaxSkew:
		return time.Time{}, fmt.Errorf("%s is %s behind the server clock; at most %s is allowed (check the client's clock, or sign the request again)", DateHeader, (-d).Round(time.Second), MaxSkew)
	}
	return t, nil
}

// SignRequest sets the X-Berth-Date, X-Berth-Content-SHA256 and
// Authorization headers of req, signing it with the keypair at time now.
// body must be exactly the bytes req will send; if req.Body is nil and body
// is not empty, req.Body is set from it.
func SignRequest(req *http.Request, accessKey, secret string, body []byte, now time.Time) error {
	if err := SignRequestHash(req, accessKey, secret, ContentHash(body), now); err != nil {
		return err
	}
	if req.Body == nil && len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	return nil
}

// SignRequestHash is SignRequest for a body the caller streams: contentHash
// is ContentHash of exactly the bytes req will send.
func SignRequestHash(req *http.Request, accessKey, secret, contentHash string, now time.Time) error {
	if err := checkAccessKey(accessKey); err != nil {
		return fmt.Errorf("signing request: %w", err)
	}
	date := now.UTC().Format(time.RFC3339Nano)
	canonical, err := CanonicalString(req.Method, req.URL.EscapedPath(), req.URL.RawQuery, date, contentHash)
	if err != nil {
		return fmt.Errorf("signing request: %w", err)
	}
	req.Header.Set(DateHeader, date)
	req.Header.Set(ContentHeader, contentHash)
	req.Header.Set("Authorization", FormatHeader(accessKey, Sign(secret, canonical)))
	return nil
}
