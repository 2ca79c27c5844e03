package sign

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	testKey    = "AKTEST0123456789ABCD"
	testSecret = "0123456789abcdefghijABCDEFGHIJ0123456789"
	testSig    = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func TestParseHeaderAcceptsOnlyTheExactForm(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		wantErr string
	}{
		{"valid with space", Scheme + " Credential=" + testKey + ", Signature=" + testSig, ""},
		{"valid without space", Scheme + " Credential=" + testKey + ",Signature=" + testSig, ""},
		{"valid with several spaces", Scheme + " Credential=" + testKey + ",   Signature=" + testSig, ""},
		{"empty", "", "scheme"},
		{"bearer scheme", "Bearer abc", "scheme"},
		{"lowercase scheme", "berth-hmac-sha256 Credential=" + testKey + ", Signature=" + testSig, "scheme"},
		{"scheme only", Scheme, "scheme"},
		{"missing signature", Scheme + " Credential=" + testKey, "exactly two parameters"},
		{"missing credential", Scheme + " Signature=" + testSig, "exactly two parameters"},
		{"extra parameter", Scheme + " Credential=" + testKey + ", Signature=" + testSig + ", Extra=1", "exactly two parameters"},
		{"parameters swapped", Scheme + " Signature=" + testSig + ", Credential=" + testKey, "Credential=VALUE"},
		{"wrong parameter name", Scheme + " Cred=" + testKey + ", Signature=" + testSig, "Credential=VALUE"},
		{"empty credential", Scheme + " Credential=, Signature=" + testSig, "Credential is empty"},
		{"space before comma", Scheme + " Credential=" + testKey + " , Signature=" + testSig, "access key"},
		{"key without AK", Scheme + " Credential=XX" + testKey[2:] + ", Signature=" + testSig, "access key"},
		{"key too short", Scheme + " Credential=AK123, Signature=" + testSig, "access key"},
		{"key lowercase", Scheme + " Credential=AKtest0123456789abcd, Signature=" + testSig, "access key"},
		{"signature uppercase", Scheme + " Credential=" + testKey + ", Signature=" + strings.ToUpper(testSig), "lowercase hex"},
		{"signature short", Scheme + " Credential=" + testKey + ", Signature=" + testSig[:63], "64 lowercase hex"},
		{"signature long", Scheme + " Credential=" + testKey + ", Signature=" + testSig + "0", "64 lowercase hex"},
		{"signature not hex", Scheme + " Credential=" + testKey + ", Signature=" + strings.Repeat("g", 64), "lowercase hex"},
		{"trailing space", Scheme + " Credential=" + testKey + ", Signature=" + testSig + " ", "64 lowercase hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ak, sig, err := ParseHeader(tt.header)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseHeader: %v", err)
				}
				if ak != testKey || sig != testSig {
					t.Fatalf("got (%q, %q), want (%q, %q)", ak, sig, testKey, testSig)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseHeader accepted %q", tt.header)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyRejectsAnyTamperedPart(t *testing.T) {
	const date = "2025-01-02T03:04:05Z"
	base := func() (string, string, string, string, []byte) {
		return "POST", "/v1/users/a%40b.c", "limit=10&cursor=x", date, []byte(`{"a":1}`)
	}
	m, p, q, d, b := base()
	orig, err := CanonicalString(m, p, q, d, ContentHash(b))
	if err != nil {
		t.Fatal(err)
	}
	sig := Sign(testSecret, orig)
	if !Verify(testSecret, orig, sig) {
		t.Fatal("untampered request does not verify")
	}
	tests := []struct {
		name   string
		mutate func(m, p, q, d *string, b *[]byte)
	}{
		{"method", func(m, _, _, _ *string, _ *[]byte) { *m = "PUT" }},
		{"path", func(_, p, _, _ *string, _ *[]byte) { *p = "/v1/users/x%40b.c" }},
		{"query value", func(_, _, q, _ *string, _ *[]byte) { *q = "limit=11&cursor=x" }},
		{"query added", func(_, _, q, _ *string, _ *[]byte) { *q += "&all=true" }},
		{"date", func(_, _, _, d *string, _ *[]byte) { *d = "2025-01-02T03:04:06Z" }},
		{"body", func(_, _, _, _ *string, b *[]byte) { *b = []byte(`{"a":2}`) }},
		{"body removed", func(_, _, _, _ *string, b *[]byte) { *b = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, p, q, d, b := base()
			tt.mutate(&m, &p, &q, &d, &b)
			c, err := CanonicalString(m, p, q, d, ContentHash(b))
			if err != nil {
				t.Fatal(err)
			}
			if Verify(testSecret, c, sig) {
				t.Fatalf("tampered %s still verifies", tt.name)
			}
		})
	}
}

func TestVerifyRejectsWrongSecretAndMalformedSignature(t *testing.T) {
	c, err := CanonicalString("GET", "/v1/info", "", "2025-01-02T03:04:05Z", EmptyContentHash)
	if err != nil {
		t.Fatal(err)
	}
	good := Sign(testSecret, c)
	tests := []struct {
		name, secret, sig string
	}{
		{"wrong secret", testSecret + "x", good},
		{"not hex", testSecret, "zz" + good[2:]},
		{"odd length", testSecret, good[1:]},
		{"empty", testSecret, ""},
		{"truncated", testSecret, good[:62]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if Verify(tt.secret, c, tt.sig) {
				t.Fatal("verified")
			}
		})
	}
}

func TestCanonicalStringIsIndependentOfQueryOrderAndMethodCase(t *testing.T) {
	const date = "2025-01-02T03:04:05Z"
	tests := []struct {
		name           string
		methodA, qA    string
		methodB, qB    string
		wantSameString bool
	}{
		{"keys reordered", "GET", "b=2&a=1", "GET", "a=1&b=2", true},
		{"repeated key keeps value order", "GET", "a=2&a=1", "GET", "a=1&a=2", false},
		{"escaping normalised", "GET", "q=a+b", "GET", "q=a%20b", true},
		{"method case", "get", "", "GET", "", true},
		{"empty vs present", "GET", "", "GET", "a=", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := CanonicalString(tt.methodA, "/v1/x", tt.qA, date, EmptyContentHash)
			if err != nil {
				t.Fatal(err)
			}
			b, err := CanonicalString(tt.methodB, "/v1/x", tt.qB, date, EmptyContentHash)
			if err != nil {
				t.Fatal(err)
			}
			if (a == b) != tt.wantSameString {
				t.Fatalf("canonical strings equal=%v, want %v:\n%q\n%q", a == b, tt.wantSameString, a, b)
			}
		})
	}
}

func TestCanonicalStringLayout(t *testing.T) {
	got, err := CanonicalString("delete", "/v1/a%2Fb", "z=1&a=2", "D", EmptyContentHash)
	if err != nil {
		t.Fatal(err)
	}
	// SHA-256 of zero bytes.
	want := "DELETE\n/v1/a%2Fb\na=2&z=1\nD\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestCanonicalStringRejectsUnparsableQuery(t *testing.T) {
	if _, err := CanonicalString("GET", "/", "a=%zz", "D", EmptyContentHash); err == nil {
		t.Fatal("accepted a malformed query")
	}
}

// The content hash is signed as sent, so only its one spelling is accepted:
// anything else could not be compared with the body's hash.
func TestCanonicalStringRejectsMalformedContentHash(t *testing.T) {
	good := ContentHash([]byte("x"))
	tests := []struct{ name, hash string }{
		{"empty", ""},
		{"uppercase", strings.ToUpper(good)},
		{"short", good[:63]},
		{"long", good + "0"},
		{"not hex", "g" + good[1:]},
		{"base64", "LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564="},
		{"with space", " " + good[1:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := CanonicalString("PUT", "/v1/x", "", "D", tt.hash); err == nil || !strings.Contains(err.Error(), ContentHeader) {
				t.Fatalf("accepted content hash %q (err %v)", tt.hash, err)
			}
			if CheckContentHash(tt.hash) == nil {
				t.Fatalf("CheckContentHash accepted %q", tt.hash)
			}
		})
	}
	if err := CheckContentHash(good); err != nil {
		t.Fatal(err)
	}
}

func TestCheckDateAllowsOnlyMaxSkew(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		date    string
		wantErr string
	}{
		{"exact", "2025-06-01T12:00:00Z", ""},
		{"at max ahead", now.Add(MaxSkew).Format(time.RFC3339), ""},
		{"at max behind", now.Add(-MaxSkew).Format(time.RFC3339), ""},
		{"other zone same instant", "2025-06-01T21:00:00+09:00", ""},
		{"fractional seconds", "2025-06-01T12:00:00.123456789Z", ""},
		{"milliseconds in another zone", "2025-06-01T21:00:00.5+09:00", ""},
		{"four minutes behind", now.Add(-4 * time.Minute).Format(time.RFC3339Nano), ""},
		{"six minutes behind", now.Add(-6 * time.Minute).Format(time.RFC3339Nano), "6m0s behind"},
		{"one second too far ahead", now.Add(MaxSkew + time.Second).Format(time.RFC3339), "5m1s ahead"},
		{"one second too far behind", now.Add(-MaxSkew - time.Second).Format(time.RFC3339), "5m1s behind"},
		{"a nanosecond too far ahead", now.Add(MaxSkew + time.Nanosecond).Format(time.RFC3339Nano), "ahead"},
		{"an hour behind", now.Add(-time.Hour).Format(time.RFC3339), "1h0m0s behind"},
		{"not RFC 3339", "Sun, 01 Jun 2025 12:00:00 GMT", "RFC 3339"},
		{"empty", "", "RFC 3339"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckDate(tt.date, now)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckDate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestSignRequestProducesAVerifiableRequest(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 123, time.FixedZone("X", 3600))
	tests := []struct {
		name, method, target string
		body                 []byte
	}{
		{"get with query", "GET", "http://h/v1/users?status=active&email=a%40b", nil},
		{"post with body", "POST", "http://h/v1/users", []byte(`{"email":"a@b"}`)},
		{"escaped path", "GET", "http://h/v1/users/a%40b.c", nil},
		{"upload", "PUT", "http://h/v1/folders/f/files/a.bin", []byte{0, 1, 2, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := SignRequest(req, testKey, testSecret, tt.body, now); err != nil {
				t.Fatal(err)
			}
			date := req.Header.Get(DateHeader)
			if date != "2025-06-01T11:00:00.000000123Z" {
				t.Fatalf("date header %q, want UTC RFC 3339 with nanoseconds", date)
			}
			if got, want := req.Header.Get(ContentHeader), ContentHash(tt.body); got != want {
				t.Fatalf("%s %q, want %q", ContentHeader, got, want)
			}
			if _, err := CheckDate(date, now); err != nil {
				t.Fatal(err)
			}
			ak, sig, err := ParseHeader(req.Header.Get("Authorization"))
			if err != nil {
				t.Fatal(err)
			}
			if ak != testKey {
				t.Fatalf("access key %q", ak)
			}
			var body []byte
			if req.Body != nil {
				if body, err = io.ReadAll(req.Body); err != nil {
					t.Fatal(err)
				}
			}
			if ContentHash(body) != req.Header.Get(ContentHeader) {
				t.Fatal("the body sent is not the one whose hash was signed")
			}
			c, err := CanonicalString(req.Method, req.URL.EscapedPath(), req.URL.RawQuery, date, req.Header.Get(ContentHeader))
			if err != nil {
				t.Fatal(err)
			}
			if !Verify(testSecret, c, sig) {
				t.Fatal("server-side recomputation does not verify")
			}
		})
	}
}

func TestSignRequestRejectsMalformedAccessKey(t *testing.T) {
	req, err := http.NewRequest("GET", "http://h/v1/info", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := SignRequest(req, "nope", testSecret, nil, time.Now()); err == nil {
		t.Fatal("signed with a malformed access key")
	}
	if req.Header.Get("Authorization") != "" {
		t.Fatal("Authorization set despite the error")
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(FormatHeader(testKey, testSig))
	f.Add(Scheme + " Credential=" + testKey + ",Signature=" + testSig)
	f.Add("Bearer x")
	f.Add(Scheme + " Credential=,Signature=")
	f.Add(Scheme + " ,,,")
	f.Fuzz(func(t *testing.T, h string) {
		ak, sig, err := ParseHeader(h)
		if err != nil {
			return
		}
		ak2, sig2, err := ParseHeader(FormatHeader(ak, sig))
		if err != nil {
			t.Fatalf("re-parsing the formatted header of %q: %v", h, err)
		}
		if ak2 != ak || sig2 != sig {
			t.Fatalf("round trip changed (%q, %q) into (%q, %q)", ak, sig, ak2, sig2)
		}
	})
}

func FuzzCanonicalString(f *testing.F) {
	f.Add("GET", "/v1/info", "", "2025-01-01T00:00:00Z", EmptyContentHash)
	f.Add("post", "/v1/users/a%40b", "b=1&a=2&a=1", "x", ContentHash([]byte(`{"k":"v"}`)))
	f.Add("GET", "/", "a=%zz;b", "", "")
	f.Add("PUT", "/", "", "", strings.ToUpper(EmptyContentHash))
	f.Fuzz(func(t *testing.T, method, path, query, date, hash string) {
		c, err := CanonicalString(method, path, query, date, hash)
		if err != nil {
			return
		}
		if CheckContentHash(hash) != nil {
			t.Fatalf("signed a malformed content hash %q", hash)
		}
		if !strings.HasSuffix(c, "\n"+hash) {
			t.Fatalf("canonical string %q does not end with the content hash", c)
		}
		again, err := CanonicalString(method, path, query, date, hash)
		if err != nil || again != c {
			t.Fatalf("not deterministic: %q vs %q (%v)", c, again, err)
		}
		sig := Sign("secret", c)
		if !Verify("secret", c, sig) {
			t.Fatal("own signature does not verify")
		}
		if Verify("secret2", c, sig) {
			t.Fatal("signature verifies under another secret")
		}
	})
}

// FuzzCheckDate: whatever date text a client sends, a date that is accepted
// lies within MaxSkew of now.
func FuzzCheckDate(f *testing.F) {
	f.Add("2025-06-01T12:00:00Z")
	f.Add("2025-06-01T12:00:00.123456789Z")
	f.Add("2025-06-01T21:04:59.5+09:00")
	f.Add("2025-06-01T12:00:00,5Z")
	f.Add("Sun, 01 Jun 2025 12:00:00 GMT")
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, date string) {
		got, err := CheckDate(date, now)
		if err != nil {
			return
		}
		if d := got.Sub(now); d > MaxSkew || d < -MaxSkew {
			t.Fatalf("accepted %q, %s from now", date, d)
		}
	})
}
