package auth

import (
	"bytes"
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestPasswordHashVerifiesOnlyTheSamePassword(t *testing.T) {
	h, err := HashPassword(rand.Reader, "s3cret-pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pw   string
		want bool
	}{{"s3cret-pw", true}, {"s3cret-pW", false}, {"", false}} {
		ok, err := CheckPassword(h, c.pw)
		if err != nil || ok != c.want {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", c.pw, ok, err, c.want)
		}
	}
	if _, err := CheckPassword("$2a$10$bcrypt", "x"); err == nil {
		t.Error("a non-argon2id hash must be an error")
	}
}

// New hashes record the cost they were made at (the default is OWASP's
// minimum, 19 MiB and 2 passes), and a hash verifies at its own cost
// whatever the cost of new hashes is.
func TestAHashRecordsItsCostAndVerifiesAtIt(t *testing.T) {
	def, err := HashPassword(rand.Reader, "s3cret-pw")
	if err != nil {
		t.Fatal(err)
	}
	cheap, err := Cost{Time: 1, MemoryKiB: 64}.Hash(rand.Reader, "s3cret-pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ hash, params string }{{def, "$m=19456,t=2,p=1$"}, {cheap, "$m=64,t=1,p=1$"}} {
		if !strings.Contains(c.hash, c.params) {
			t.Errorf("hash %s does not record %s", c.hash, c.params)
		}
		if ok, err := CheckPassword(c.hash, "s3cret-pw"); !ok || err != nil {
			t.Errorf("hash %s does not verify its password: %v, %v", c.hash, ok, err)
		}
		if ok, _ := CheckPassword(c.hash, "s3cret-pW"); ok {
			t.Errorf("hash %s verifies another password", c.hash)
		}
	}
	dummy := Cost{Time: 1, MemoryKiB: 64}.Dummy()
	if !strings.Contains(dummy, "$m=64,t=1,p=1$") {
		t.Errorf("dummy hash %s is not at the cost asked for", dummy)
	}
	if ok, err := CheckPassword(dummy, ""); ok || err != nil {
		t.Errorf("the dummy hash verifies the empty password: %v, %v", ok, err)
	}
}

func TestPasswordProblemsReportsEveryRule(t *testing.T) {
	cases := []struct {
		pw   string
		want []string
	}{
		{"abc1!def", nil},
		{"", []string{"password must be at least 8 characters long", "password must contain at least one letter",
			"password must contain at least one digit", "password must contain at least one special character (such as ! @ # $ %)"}},
		{"abcdefgh", []string{"password must contain at least one digit", "password must contain at least one special character (such as ! @ # $ %)"}},
		{"12345678!", []string{"password must contain at least one letter"}},
		{"pässwörd1#", nil},
	}
	for _, c := range cases {
		got := PasswordProblems(c.pw)
		if len(got) != len(c.want) {
			t.Errorf("PasswordProblems(%q) = %q, want %q", c.pw, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("PasswordProblems(%q)[%d] = %q, want %q", c.pw, i, got[i], c.want[i])
			}
		}
	}
}

func TestKeysHaveTheDocumentedShape(t *testing.T) {
	ak, err := NewAccessKey(rand.Reader)
	if err != nil || !regexp.MustCompile(`^AK[A-Z0-9]{18}$`).MatchString(ak) {
		t.Fatalf("access key %q, %v", ak, err)
	}
	sk, err := NewSecretKey(rand.Reader)
	if err != nil || !regexp.MustCompile(`^[A-Za-z0-9]{40}$`).MatchString(sk) {
		t.Fatalf("secret key %q, %v", sk, err)
	}
	pw, err := NewPassword(rand.Reader)
	if err != nil || len(PasswordProblems(pw)) != 0 {
		t.Fatalf("generated password %q breaks the policy: %v %v", pw, PasswordProblems(pw), err)
	}
	// Rejection sampling must not bias: bytes >= 252 are skipped for a 36-letter alphabet.
	s, err := randomString(bytes.NewReader([]byte{255, 254, 0, 1}), accessKeyAlphabet, 2)
	if err != nil || s != "AB" {
		t.Fatalf("randomString skipped wrong bytes: %q %v", s, err)
	}
}

func TestLimiterRefusesPastTheBurstAndRefills(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiter(3, 10*time.Second, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("a@x"); !ok {
			t.Fatalf("attempt %d refused inside the burst", i+1)
		}
	}
	ok, wait := l.Allow("a@x")
	if ok || wait != 10*time.Second {
		t.Fatalf("4th attempt = %v, wait %v; want refused, 10s", ok, wait)
	}
	if ok, _ := l.Allow("b@x"); !ok {
		t.Fatal("another key must have its own bucket")
	}
	now = now.Add(10 * time.Second)
	if ok, _ := l.Allow("a@x"); !ok {
		t.Fatal("one attempt must be allowed after the refill interval")
	}
}
