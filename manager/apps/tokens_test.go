package apps

import (
	"strings"
	"testing"
	"time"
)

// A token is never a cookie and a cookie never a token; a signature made
// with another cluster's secret, or over other content, is refused.
func TestTokensAndCookiesAreSignedAndNeverTakenForEachOther(t *testing.T) {
	k, other := key("secret-of-this-cluster"), key("secret-of-another")
	g := grant{Kind: kindToken, Session: "s-1", App: "web", User: "ann@example.com", Expires: time.Now().Add(time.Minute).Unix(), Nonce: "n1"}
	tok := sign(k, g)
	if got, err := verify(k, tok, kindToken); err != nil || got != g {
		t.Fatalf("verify(token) = %+v, %v", got, err)
	}
	if _, err := verify(k, tok, kindCookie); err == nil {
		t.Error("a token was taken for a cookie")
	}
	if _, err := verify(other, tok, kindToken); err == nil {
		t.Error("another cluster's key verified the token")
	}
	body, sig, _ := strings.Cut(tok, ".")
	forged := sign(k, grant{Kind: kindToken, Session: "s-2", App: "web", User: "ann@example.com", Expires: g.Expires, Nonce: "n1"})
	fbody, _, _ := strings.Cut(forged, ".")
	for _, bad := range []string{"", "x", body, body + ".", fbody + "." + sig, body + "." + sig + "x"} {
		if _, err := verify(k, bad, kindToken); err == nil {
			t.Errorf("verify(%q) accepted", bad)
		}
	}
}

func TestATokenIsTakenOnceUntilItExpires(t *testing.T) {
	var u usedTokens
	now := time.Unix(1000, 0)
	if !u.take("a", now.Add(time.Minute), now) || u.take("a", now.Add(time.Minute), now.Add(time.Second)) {
		t.Fatal("a nonce was taken twice within its life")
	}
	if !u.take("b", now.Add(time.Minute), now) {
		t.Fatal("another nonce was refused")
	}
	// Forgotten once expired (a token past its expiry is refused before).
	u.take("c", now.Add(2*time.Minute), now.Add(90*time.Second))
	if _, ok := u.seen["a"]; ok {
		t.Error("an expired nonce is still remembered")
	}
}

func TestEnvNameAndPrefix(t *testing.T) {
	if got := EnvName("my-app-2"); got != "BERTH_APP_PREFIX_MY_APP_2" {
		t.Errorf("EnvName = %s", got)
	}
	if got := Prefix("s-abc", "web"); got != "/s/s-abc/web/" {
		t.Errorf("Prefix = %s", got)
	}
}
