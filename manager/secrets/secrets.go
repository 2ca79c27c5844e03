// Package secrets seals the few secrets the managers must give back later
// (a registry's password, which the agents need to pull) so that they are
// kept encrypted in the Raft log, its snapshots and every backup: AES-256-GCM
// with a key from -secrets-key-file, the same file on every manager. The
// handler seals (the nonce is random, made there, never in Apply); the FSM
// stores the sealed bytes as they come; whoever needs the clear text opens
// them with the key.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// KeySize is the key's length: AES-256.
const KeySize = 32

// version is the first byte of a sealed value, so another scheme can be
// told apart later.
const version byte = 1

// ErrNoKey: the manager runs without -secrets-key-file.
var ErrNoKey = errors.New("this manager has no secrets key: start every manager with the same -secrets-key-file (64 hex digits, made with `openssl rand -hex 32`, mode 0600)")

// ErrOpen: a sealed value could not be opened with this key (another key,
// or the bytes were changed).
var ErrOpen = errors.New("the sealed secret does not open with this manager's -secrets-key-file (another key, or altered)")

// Box seals and opens with one key. The zero Box (and a nil *Box) has no
// key: Seal and Open fail with ErrNoKey.
type Box struct {
	aead cipher.AEAD
	id   string
}

// New makes a Box of a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secrets key: %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	// The key's id names it in records and logs without revealing it: a
	// keyed hash of a constant, so the id says nothing of the key.
	m := hmac.New(sha256.New, key)
	m.Write([]byte("berth secrets key id"))
	return &Box{aead: aead, id: hex.EncodeToString(m.Sum(nil))[:16]}, nil
}

// Load reads a key file: 64 hexadecimal digits (surrounding space allowed),
// in a regular file that not every local account can read (its owner and
// group may: a service's own group, as for the token files).
func Load(path string) (*Box, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("-secrets-key-file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("-secrets-key-file %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("-secrets-key-file %s can be read or written by every local account (mode %04o): chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-secrets-key-file: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("-secrets-key-file %s must hold %d hexadecimal digits (make one with `openssl rand -hex 32 > %s`)", path, 2*KeySize, path)
	}
	return New(key)
}

// HasKey reports whether the box can seal and open.
func (b *Box) HasKey() bool { return b != nil && b.aead != nil }

// KeyID names the key (16 hex digits of a keyed hash; "" without a key).
func (b *Box) KeyID() string {
	if !b.HasKey() {
		return ""
	}
	return b.id
}

// Seal encrypts plain, bound to context (e.g. "registry/NAME": a sealed
// value moved to another record does not open there), with a nonce read
// from rnd.
func (b *Box) Seal(rnd io.Reader, plain []byte, context string) ([]byte, error) {
	if !b.HasKey() {
		return nil, ErrNoKey
	}
	out := make([]byte, 1+b.aead.NonceSize(), 1+b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	out[0] = version
	if _, err := io.ReadFull(rnd, out[1:]); err != nil {
		return nil, fmt.Errorf("seal secret: nonce: %w", err)
	}
	return b.aead.Seal(out, out[1:], plain, []byte(context)), nil
}

// Open decrypts what Seal made with the same key and context.
func (b *Box) Open(sealed []byte, context string) ([]byte, error) {
	if !b.HasKey() {
		return nil, ErrNoKey
	}
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	plain, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(context))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
