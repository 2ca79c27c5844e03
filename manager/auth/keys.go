package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
)

const (
	accessKeyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	secretAlphabet    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// NewAccessKey returns "AK" followed by 18 random upper-case letters and digits.
func NewAccessKey(rnd io.Reader) (string, error) {
	s, err := randomString(rnd, accessKeyAlphabet, 18)
	if err != nil {
		return "", fmt.Errorf("make access key: %w", err)
	}
	return "AK" + s, nil
}

// NewSecretKey returns 40 random letters and digits.
func NewSecretKey(rnd io.Reader) (string, error) {
	s, err := randomString(rnd, secretAlphabet, 40)
	if err != nil {
		return "", fmt.Errorf("make secret key: %w", err)
	}
	return s, nil
}

// NewPassword returns a random password that satisfies the password policy.
func NewPassword(rnd io.Reader) (string, error) {
	s, err := randomString(rnd, secretAlphabet, 20)
	if err != nil {
		return "", fmt.Errorf("make password: %w", err)
	}
	// Fixed tail so the policy (letter, digit, special) always holds.
	return s + "-a1", nil
}

// randomString draws n characters uniformly from alphabet (rejection
// sampling, so no character is more likely than another).
func randomString(rnd io.Reader, alphabet string, n int) (string, error) {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, n)
	for len(out) < n {
		if _, err := io.ReadFull(rnd, buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

// NewToken returns a bearer token: 32 random bytes, URL-safe base64.
func NewToken(rnd io.Reader) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fmt.Errorf("make token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken is the form a token is stored and looked up in.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
