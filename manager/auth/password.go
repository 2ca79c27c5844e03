// Package auth holds the credential primitives of the manager: password
// hashing and policy, bearer tokens, keypair generation, and login rate
// limiting. The HTTP middleware that uses them lives in httpapi.
package auth

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: OWASP's minimum recommendation (19 MiB, 2 passes),
// about 20 ms a hash on the reference machine, so a login is cheap for a
// person and expensive for a guesser.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
)

// Cost is the work one new argon2id hash takes: passes over its memory, and
// the memory in KiB. A zero field takes the default (argonTime,
// argonMemory). Every hash records its cost, so CheckPassword verifies it
// at the cost it was made with, whatever the cost of new hashes is now.
type Cost struct {
	Time      uint32
	MemoryKiB uint32
}

func (c Cost) withDefaults() Cost {
	if c.Time == 0 {
		c.Time = argonTime
	}
	if c.MemoryKiB == 0 {
		c.MemoryKiB = argonMemory
	}
	// argon2 needs 8 KiB per lane; the hash must record what was used.
	c.MemoryKiB = max(c.MemoryKiB, 8*argonThreads)
	return c
}

// Hash returns a PHC-format argon2id hash of password at cost c, with a
// salt read from rnd.
func (c Cost) Hash(rnd io.Reader, password string) (string, error) {
	c = c.withDefaults()
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return "", fmt.Errorf("read password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, c.Time, c.MemoryKiB, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, c.MemoryKiB, c.Time, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Dummy is a hash at cost c that no password is checked against in
// earnest: a login for an unknown email checks it, so that it costs as much
// as one with a wrong password.
func (c Cost) Dummy() string {
	h, err := c.Hash(bytes.NewReader(make([]byte, saltLen)), "no user has this password")
	if err != nil {
		panic(err) // reading a zero salt from memory cannot fail
	}
	return h
}

// HashPassword returns a PHC-format argon2id hash at the default cost with a
// salt read from rnd.
func HashPassword(rnd io.Reader, password string) (string, error) {
	return Cost{}.Hash(rnd, password)
}

// CheckPassword reports whether password matches the hash, in constant time.
func CheckPassword(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("stored password hash is not argon2id")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, fmt.Errorf("stored password hash has unsupported version %q", parts[2])
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, fmt.Errorf("stored password hash parameters %q: %w", parts[3], err)
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("stored password salt: %w", err)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil {
		return false, fmt.Errorf("stored password key: %w", err)
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// PasswordProblems lists every rule of the password policy the password
// breaks, each as a reason a person can act on; none means it is acceptable.
func PasswordProblems(pw string) []string {
	var out []string
	if len([]rune(pw)) < 8 {
		out = append(out, "password must be at least 8 characters long")
	}
	var letter, digit, special bool
	for _, r := range pw {
		switch {
		case unicode.IsLetter(r):
			letter = true
		case unicode.IsDigit(r):
			digit = true
		case unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsSpace(r):
			special = true
		}
	}
	if !letter {
		out = append(out, "password must contain at least one letter")
	}
	if !digit {
		out = append(out, "password must contain at least one digit")
	}
	if !special {
		out = append(out, "password must contain at least one special character (such as ! @ # $ %)")
	}
	return out
}
